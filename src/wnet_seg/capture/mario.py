"""Super Mario Bros. frames (240x256 NES screen) from several levels, moving right with random jumps.

Uses ``gym-super-mario-bros`` (which ships the ROM) on the ``nes-py`` emulator. They need numpy < 2,
so they run in a separate venv (:mod:`wnet_seg.capture.gamevenv`): :func:`capture_mario` runs this
file as a worker script with that venv's Python. This file therefore imports only the standard
library at module level. Frames are never committed (commercial game); labels are not produced.

Deterministic: the emulator is deterministic, and levels and button presses come from ``seed``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

# NES controller bits as nes-py's JoypadSpace defines them.
RIGHT, LEFT, DOWN, UP, START, SELECT, B, A = 128, 64, 32, 16, 8, 4, 2, 1
ALL_STAGES: tuple[str, ...] = tuple(f"{w}-{s}" for w in range(1, 9) for s in range(1, 5))
# One of each look: overworld, underground, treetops, castle, underwater, night, later worlds.
DEFAULT_LEVELS: tuple[str, ...] = ("1-1", "1-2", "1-3", "1-4", "2-2", "3-1", "5-3", "8-1")


def capture_mario(
    out: str | os.PathLike,
    num: int = 64,
    seed: int = 0,
    levels: list[str] | None = None,
    gap: int = 40,
    venv: str | os.PathLike | None = None,
    progress: bool = True,
) -> int:
    """Write ``num`` frames to ``out/images/*.png`` (+ ``out/frames.csv``); returns the count.

    ``levels`` like ``["1-1", "4-2"]`` (default :data:`DEFAULT_LEVELS`), equal shares of frames.
    A frame is kept about every ``gap`` emulator frames (60 per second; randomised +-50%).
    """
    from wnet_seg.capture.gamevenv import run_worker

    for lv in levels or []:
        if lv not in ALL_STAGES:
            raise ValueError(
                f"unknown Super Mario Bros. stage {lv!r}; use world-stage, e.g. 1-1..8-4"
            )
    args = ["--out", str(out), "--num", str(num), "--seed", str(seed), "--gap", str(gap)]
    args += ["--levels", ",".join(levels or DEFAULT_LEVELS)]
    return run_worker(
        Path(__file__), args, total=num, venv_path=venv, progress=progress, desc="mario"
    )


# ----------------------------------------------------------------------------- worker (games venv)


def _mostly_one_colour(frame, share: float = 0.9) -> bool:
    import numpy as np

    flat = frame.reshape(-1, 3).astype(np.int32)
    codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    return np.bincount(np.unique(codes, return_inverse=True)[1]).max() > share * len(codes)


def _worker(out: Path, num: int, seed: int, levels: list[str], gap: int) -> None:
    import numpy as np
    from gym_super_mario_bros.smb_env import SuperMarioBrosEnv
    from PIL import Image

    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    per_level = -(-num // len(levels))
    written = 0
    rows = []
    for level in levels:
        world, stage = (int(v) for v in level.split("-"))
        env = SuperMarioBrosEnv(rom_mode="vanilla", target=(world, stage))
        env.reset()
        jump, since, best_x, stuck, taken = 0, 0, 0, 0, 0
        next_gap = int(rng.integers(gap // 2, gap + gap // 2 + 1))
        while taken < per_level and written < num:
            if jump > 0:
                action, jump = RIGHT | B | A, jump - 1
            else:
                action = RIGHT | B
                if rng.random() < 0.06:
                    jump = int(rng.integers(4, 30))
            _, _, done, info = env.step(action)[:4]
            since += 1
            x = int(info.get("x_pos", 0))
            stuck = 0 if x > best_x else stuck + 1
            best_x = max(best_x, x)
            if done or stuck > 300:
                env.reset()
                best_x, stuck = 0, 0
                continue
            if since >= next_gap:
                frame = env.screen.copy()
                since = 0
                next_gap = int(rng.integers(gap // 2, gap + gap // 2 + 1))
                if _mostly_one_colour(frame):  # black transition / intro screens
                    continue
                name = f"{written:06d}.png"
                Image.fromarray(frame).save(out / "images" / name)
                rows.append([name, level, x])
                written += 1
                taken += 1
                print(f"FRAME {written}", flush=True)
        env.close()
    with open(out / "frames.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["file", "level", "x_pos"])
        wr.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Super Mario Bros. capture worker (games venv)")
    p.add_argument("--out", required=True)
    p.add_argument("--num", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--levels", default=",".join(DEFAULT_LEVELS))
    p.add_argument("--gap", type=int, default=40)
    a = p.parse_args(argv)
    _worker(Path(a.out), a.num, a.seed, a.levels.split(","), max(2, a.gap))
    return 0


if __name__ == "__main__":
    sys.exit(main())
