"""Tile-identity baselines (wnet_seg.tile_identity): exact, oracle, robust and colour ids."""

from __future__ import annotations

import numpy as np
import pytest

from wnet_seg.data.degrade import parse_degradation
from wnet_seg.grid import detect
from wnet_seg.metrics import hungarian_miou
from wnet_seg.tile_identity import (
    IdentityState,
    colour_identity,
    tile_identity,
    tile_identity_oracle,
    tile_identity_robust,
)


def distinct_tiles(n: int = 6, t: int = 16, seed: int = 0) -> np.ndarray:
    """Tiles that differ clearly: each a base colour with a few rectangles of a second one."""
    rng = np.random.default_rng(seed)
    tiles = []
    for _ in range(n):
        tile = np.empty((t, t, 3), np.uint8)
        a, b = rng.integers(0, 256, (2, 3))
        tile[:] = a
        for _ in range(3):
            y, x = rng.integers(0, t - 2, 2)
            h, w = rng.integers(2, t // 2, 2)
            tile[y : y + h, x : x + w] = b
        tile[rng.integers(0, t), rng.integers(0, t)] = b  # a single-pixel detail
        tiles.append(tile)
    return np.stack(tiles)


def tile_map(rows: int, cols: int, tiles: np.ndarray, seed: int = 1):
    """(frame, per-pixel tile-type map, layout) of a map in runs of tile types."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, len(tiles), (rows // 2 + 1, cols // 2 + 1))
    layout = np.repeat(np.repeat(coarse, 2, 0), 2, 1)[:rows, :cols]
    t = tiles.shape[1]
    frame = tiles[layout].transpose(0, 2, 1, 3, 4).reshape(rows * t, cols * t, 3)
    types = np.repeat(np.repeat(layout, t, 0), t, 1).astype(np.uint8)
    return np.ascontiguousarray(frame), types, layout


def brute_force(rgb: np.ndarray, t: int, oy: int, ox: int) -> np.ndarray:
    """Reference: a dict of tile bytes over whole tiles, colours elsewhere."""
    h, w, _ = rgb.shape
    ids: dict[bytes, int] = {}
    out = np.full((h, w), -1, np.int64)
    for y in range(oy, h - t + 1, t):
        for x in range(ox, w - t + 1, t):
            key = b"t" + rgb[y : y + t, x : x + t].tobytes()
            out[y : y + t, x : x + t] = ids.setdefault(key, len(ids))
    for y, x in zip(*np.nonzero(out < 0), strict=True):
        out[y, x] = ids.setdefault(b"c" + rgb[y, x].tobytes(), len(ids))
    return out


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when the two label maps are equal up to renaming the labels."""
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist(), strict=True))
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


TILES = distinct_tiles()
FRAME, TYPES, LAYOUT = tile_map(10, 11, TILES)


def test_tile_identity_equals_brute_force_reference():
    crop = FRAME[5:150, 9:170]  # partial border tiles on every side
    g = detect(crop)
    assert (g.tile, g.offset) == (16, (11, 7))
    labels = tile_identity(crop, IdentityState())
    assert labels.shape == crop.shape[:2] and labels.dtype == np.int64
    assert same_partition(labels, brute_force(crop, 16, 11, 7))
    oracle = tile_identity_oracle(crop, IdentityState(), 16, (11, 7))
    assert same_partition(oracle, labels)


def test_ids_are_shared_across_frames():
    state = IdentityState()
    a = tile_identity(FRAME[:96, :96], state)
    b = tile_identity(FRAME[32:128, 16:112], state)
    # the same tile (type at layout[2, 1]) has the same id in both frames
    assert a[32, 16] == b[0, 0] and a[40, 20] == b[8, 4]
    c = colour_identity(FRAME[:32, :32], state)
    d = colour_identity(FRAME[:32, :32][::-1], state)
    assert np.array_equal(c[::-1], d)


def test_no_grid_falls_back_to_exact_colours():
    rng = np.random.default_rng(2)
    noise = rng.integers(0, 4, (64, 64, 3), dtype=np.uint8) * 60
    labels = tile_identity(noise, IdentityState())
    colours = colour_identity(noise, IdentityState())
    assert same_partition(labels, colours)


def test_oracle_on_an_upscale():
    up = parse_degradation("nearest:2")(FRAME[:128, :128])[0]
    labels = tile_identity_oracle(up, IdentityState(), 16, (0, 0), scale=2.0)
    assert same_partition(labels, np.kron(TYPES[:128, :128], np.ones((2, 2), np.uint8)))


@pytest.mark.parametrize("condition", ["jpeg:85", "bilinear:1.5+jpeg:85"])
def test_robust_finds_the_tiles_after_lossy_degradations(condition):
    deg = parse_degradation(condition)
    frame, types = deg(FRAME[:144, :160], TYPES[:144, :160])
    state = IdentityState()
    robust = tile_identity_robust(frame, state)
    assert robust.shape == frame.shape[:2]
    assert hungarian_miou(robust, types) >= 0.95
    exact = tile_identity(frame, IdentityState())
    assert hungarian_miou(exact, types) < 0.5  # exact hashing breaks under JPEG
    again = tile_identity_robust(deg(FRAME[16:160, 32:192])[0], state)
    assert len(np.unique(again)) <= len(np.unique(robust)) + 2  # ids reused across frames
