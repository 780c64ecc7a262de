"""MiniGrid capture: every labelled pixel re-rendered by the game's tile renderer, ids, determinism."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("minigrid")

from minigrid.core.grid import Grid  # noqa: E402
from minigrid.core.world_object import Ball, Box, Door, Goal, Key, Lava, Wall  # noqa: E402

from wnet_seg.capture.minigrid import (  # noqa: E402
    ENV_IDS,
    MINIGRID_CLASSES,
    NATIVE_TILE,
    render_minigrid_frames,
    write_minigrid_dataset,
)
from wnet_seg.data.io import list_images, load_mask, load_rgb, read_classes  # noqa: E402

T = NATIVE_TILE
AGENT = 4


def _object(name: str):
    """The MiniGrid object a class name stands for (``None``: the empty cell)."""
    kind, *rest = name.split("_")
    if kind == "door":
        colour, state = rest
        return Door(colour, is_open=state == "open", is_locked=state == "locked")
    made = {"wall": Wall, "goal": Goal, "lava": Lava, "key": Key, "ball": Ball, "box": Box}
    return None if kind == "floor" else made[kind](*rest)


def _tile(cid: int, agent_dir: int | None = None) -> np.ndarray:
    obj = _object(MINIGRID_CLASSES[cid])
    tile = Grid.render_tile(obj, agent_dir=agent_dir, highlight=False, tile_size=T)
    return tile.astype(np.uint8)  # as Grid.render pastes it into the frame


def _is_sprite(name: str) -> bool:
    return name.split("_")[0] in ("key", "ball", "box") or name.endswith("_open")


def check_frame(rgb: np.ndarray, mask: np.ndarray) -> None:
    """Each cell shows exactly its labels: its pixels equal the game's own rendering of the class
    it holds, sprite pixels are those that differ from the empty cell, opaque cells are labelled
    whole, and the agent's cell equals the agent drawn over that class."""
    assert mask.shape == rgb.shape[:2] and mask.shape[0] % T == 0 and mask.shape[1] % T == 0
    empty = _tile(0)
    for j in range(mask.shape[0] // T):
        for i in range(mask.shape[1] // T):
            lab = mask[j * T : (j + 1) * T, i * T : (i + 1) * T]
            pix = rgb[j * T : (j + 1) * T, i * T : (i + 1) * T]
            ids = set(np.unique(lab).tolist())
            below = ids - {0, AGENT}
            assert 255 not in ids and len(below) <= 1, f"cell {i},{j} holds {ids}"
            under = below.pop() if below else 0
            name = MINIGRID_CLASSES[under]
            if AGENT in ids:
                assert any((_tile(under, d) == pix).all() for d in range(4)), f"agent {i},{j}"
                agent = lab == AGENT
                assert (pix[agent] != _tile(under)[agent]).any(axis=-1).all()
            else:
                assert (pix == _tile(under)).all(), f"cell {i},{j} is not {name}"
            drawn = (lab != 0) & (lab != AGENT)
            if _is_sprite(name):
                assert (drawn == (_tile(under) != empty).any(axis=-1)).all(), name
            elif under != 0:
                assert (drawn | (lab == AGENT)).all(), f"opaque {name} labelled whole"


@pytest.fixture(scope="module")
def frames():
    """Two frames from each environment (episodes 0..9)."""
    return list(render_minigrid_frames(2 * len(ENV_IDS), seed=0, frames_per_episode=2))


def test_every_pixel_matches_the_games_tile_renderer(frames):
    seen = set()
    for rgb, mask, _ in frames:
        check_frame(rgb, mask)
        seen |= {MINIGRID_CLASSES[c] for c in np.unique(mask).tolist()}
    assert {"floor", "wall", "goal", "lava", "agent"} <= seen
    for kind in ("key_", "ball_", "box_", "door_"):
        assert any(n.startswith(kind) for n in seen), kind
    for state in ("_closed", "_locked"):
        assert any(n.endswith(state) for n in seen), state
    assert {info.env_id for _, _, info in frames} == set(ENV_IDS)


def test_small_objects_are_labelled_per_sprite_pixel(frames):
    """A key or a ball covers part of its cell; the rest of the cell is floor."""
    checked = 0
    for _, mask, _ in frames:
        cells = mask.reshape(mask.shape[0] // T, T, mask.shape[1] // T, T).swapaxes(1, 2)
        for cell in cells.reshape(-1, T, T):
            name = MINIGRID_CLASSES[int(cell.max())]
            if name.startswith(("key_", "ball_")):
                share = (cell != 0).mean()
                assert 0.1 < share < 0.6 and (cell == 0).any(), (name, share)
                checked += 1
    assert checked >= 5


def _capture_files(out) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_dataset_is_deterministic_across_processes(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert write_minigrid_dataset(a, 5, seed=3, frames_per_episode=4, progress=False) == 5
    cli = [sys.executable, "-m", "wnet_seg.capture.cli", "minigrid", "--out", str(b)]
    subprocess.run([*cli, "--num", "5", "--seed", "3", "--no-progress"], check=True)
    assert _capture_files(a) == _capture_files(b)
    write_minigrid_dataset(c, 5, seed=100_000, frames_per_episode=4, progress=False)
    assert (a / "images" / "000000.png").read_bytes() != (c / "images" / "000000.png").read_bytes()

    assert read_classes(a / "classes.txt") == MINIGRID_CLASSES
    for path in list_images(a / "images"):
        rgb = load_rgb(path)
        mask = load_mask(a / "masks" / path.name, expected_hw=rgb.shape[:2])
        assert set(np.unique(mask).tolist()) <= set(MINIGRID_CLASSES)
        check_frame(rgb, mask)
    record = json.loads((a / "provenance.json").read_text())
    assert record["game"] == "minigrid" and record["seed"] == 3 and record["frames"] == 5
    assert record["versions"]["minigrid"] and record["committable"] is True
    rows = list(csv.DictReader((a / "frames.csv").read_text().splitlines()))
    assert [int(r["episode_seed"]) for r in rows] == [3, 3, 3, 3, 4]


def test_size_cuts_tile_aligned_windows():
    for rgb, mask, info in render_minigrid_frames(6, seed=5, frames_per_episode=3, size=(96, 160)):
        assert mask.shape == rgb.shape[:2] and mask.shape[0] <= 96 and mask.shape[1] <= 160
        assert info.x % T == 0 and info.y % T == 0
        check_frame(rgb, mask)
