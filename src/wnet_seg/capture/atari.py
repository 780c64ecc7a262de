"""Atari 2600 frames (210x160 screen) from the Arcade Learning Environment, random play.

Uses ``ale-py`` (which ships the ROMs) directly through ``ALEInterface`` (no gym wrapper). It runs
in the same separate venv as the NES emulator (:mod:`wnet_seg.capture.gamevenv`) so that the
project's environment stays untouched; this file is run there as a worker script and imports only
the standard library at module level. Frames are never committed; labels are not produced.

Deterministic: ALE is seeded with ``seed``, sticky actions are off, actions come from ``seed``.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from pathlib import Path

DEFAULT_GAMES: tuple[str, ...] = ("Pong", "Breakout", "MsPacman")


def rom_id(game: str) -> str:
    """``"MsPacman"`` / ``"ms_pacman"`` / ``"ms-pacman"`` -> ALE's ROM id ``"ms_pacman"``."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", game.strip())
    return snake.replace("-", "_").lower()


def capture_atari(
    out: str | os.PathLike,
    game: str = "Pong",
    num: int = 64,
    seed: int = 0,
    gap: int = 30,
    warmup: int = 60,
    venv: str | os.PathLike | None = None,
    progress: bool = True,
) -> int:
    """Write ``num`` frames of ``game`` to ``out/images/*.png`` (+ ``out/frames.csv``).

    Random actions from the game's minimal action set; the first ``warmup`` frames after each
    reset are skipped and a frame is kept about every ``gap`` emulator frames (randomised +-50%).
    """
    from wnet_seg.capture.gamevenv import run_worker

    args = ["--out", str(out), "--game", rom_id(game), "--num", str(num), "--seed", str(seed)]
    args += ["--gap", str(gap), "--warmup", str(warmup)]
    return run_worker(
        Path(__file__), args, total=num, venv_path=venv, progress=progress, desc=rom_id(game)
    )


# ----------------------------------------------------------------------------- worker (games venv)


def _worker(out: Path, game: str, num: int, seed: int, gap: int, warmup: int) -> None:
    import numpy as np
    from ale_py import ALEInterface, LoggerMode, roms
    from PIL import Image

    available = roms.get_all_rom_ids()
    if game not in available:
        raise SystemExit(
            f"unknown Atari game {game!r}; ale-py ships: {', '.join(sorted(available))}"
        )
    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setInt("random_seed", int(seed) % (2**31))
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(roms.get_rom_path(game))
    actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows, written, since, t = [], 0, 0, 0
    next_gap = int(rng.integers(gap // 2, gap + gap // 2 + 1))
    action = actions[0]
    while written < num:
        if rng.random() < 0.25:  # change action now and then, like a twitchy player
            action = actions[int(rng.integers(0, len(actions)))]
        ale.act(action)
        t += 1
        since += 1
        if ale.game_over():
            ale.reset_game()
            t, since = 0, 0
            continue
        if t >= warmup and since >= next_gap:
            since = 0
            next_gap = int(rng.integers(gap // 2, gap + gap // 2 + 1))
            name = f"{written:06d}.png"
            Image.fromarray(ale.getScreenRGB()).save(out / "images" / name)
            rows.append([name, game, t])
            written += 1
            print(f"FRAME {written}", flush=True)
    with open(out / "frames.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["file", "game", "frame_since_reset"])
        wr.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Atari capture worker (games venv)")
    p.add_argument("--out", required=True)
    p.add_argument("--game", default="pong")
    p.add_argument("--num", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gap", type=int, default=30)
    p.add_argument("--warmup", type=int, default=60)
    a = p.parse_args(argv)
    _worker(Path(a.out), rom_id(a.game), a.num, a.seed, max(2, a.gap), max(0, a.warmup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
