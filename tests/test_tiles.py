"""Tile pooling: grid detection as pooling sees it, signatures, shared ids, tolerant pooling on
lossy frames, and the out-of-context property."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wnet_seg.grid import GridConfig, detect
from wnet_seg.inference import segment_options
from wnet_seg.postprocess.tiles import SignatureIds, TileConfig, TileGrid, pool_tiles, signature

CKPT = Path(__file__).resolve().parents[1] / "checkpoints" / "wnet_multigame.ckpt"


def tile_world(rows: int, cols: int, size: int = 16, n_textures: int = 4, seed: int = 0):
    """A frame of ``rows x cols`` tiles drawn from ``n_textures`` random textures, and its tile map."""
    rng = np.random.default_rng(seed)
    textures = rng.integers(0, 256, (n_textures, size, size, 3), dtype=np.uint8)
    layout = rng.integers(0, n_textures, (rows, cols))
    frame = textures[layout].transpose(0, 2, 1, 3, 4).reshape(rows * size, cols * size, 3)
    return frame, layout


@pytest.mark.parametrize("size", [8, 16])
@pytest.mark.parametrize("crop", [(0, 0), (5, 9), (3, 0)])
def test_grid_size_and_phase_are_found(size, crop):
    frame, _ = tile_world(12, 14, size=size)
    cy, cx = crop
    grid = detect(frame[cy:, cx:])
    assert (grid.tile, grid.offset) == (size, ((size - cy) % size, (size - cx) % size))


def test_no_grid_in_noise_or_gradients():
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    ramp = np.broadcast_to(np.arange(128, dtype=np.uint8)[None, :, None], (128, 128, 3))
    assert detect(noise).tile is None
    assert detect(np.ascontiguousarray(ramp)).tile is None
    assert detect(noise, GridConfig(tile="off")).tile is None
    assert detect(noise, GridConfig(tile=16)).tile == 16  # forced size


def test_signature_threshold_and_fallback():
    lab = np.array([0] * 85 + [3] * 10 + [5] * 5)
    assert signature(lab, 8, 0.1) == (0, 3)
    assert signature(lab, 8, 0.05) == (0, 3, 5)
    assert signature(lab, 8, 0.5) == (0,)


def test_pool_tiles_ids_are_shared_and_partial_tiles_pooled():
    ids = SignatureIds(num_classes=4)
    lab = np.zeros((20, 20), dtype=np.int64)
    lab[0:8, 8:16] = 2  # a pure tile of class 2
    lab[8:16, 0:8][:4] = 1  # half class 1, half class 0: mixed signature (0, 1)
    lab[16:20, 16:20] = 3  # a partial border tile (4 x 4) of class 3
    out = pool_tiles(lab, TileGrid(8), ids, min_share=0.1)
    assert out.shape == lab.shape and out.dtype == np.int64
    assert (out[0:8, 8:16] == 2).all() and (out[0:8, 0:8] == 0).all()
    mixed = ids.table[(0, 1)]
    assert mixed == 4 and (out[8:16, 0:8] == mixed).all()
    assert (out[16:20, 16:20] == 3).all()
    # A second frame with the same mixture gets the same id; a new mixture the next one.
    lab2 = np.zeros((8, 16), dtype=np.int64)
    lab2[:4, :8] = 1
    lab2[:4, 8:] = 3
    out2 = pool_tiles(lab2, TileGrid(8), ids, min_share=0.1)
    assert (out2[:, :8] == mixed).all() and (out2[:, 8:] == 5).all()
    assert ids.table == {(0, 1): 4, (0, 3): 5}
    with pytest.raises(ValueError, match="num_classes"):
        pool_tiles(np.full((8, 8), 7), TileGrid(8), ids)


def test_signature_ids_stay_8bit():
    ids = SignatureIds(num_classes=250)
    assert [ids.assign((0, k), 0) for k in range(1, 6)] == [250, 251, 252, 253, 254]
    assert ids.assign((1, 2), dominant=2) == 2 and ids.overflowed == 1  # past 254: dominant class


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tiles": "tiles"}, "tiles must be"),
        ({"tiles": "1"}, "tiles must be"),
        ({"tiles_params": {"min_share": 0.0}}, "min_share"),
        ({"tiles_params": {"reps": 2}}, "reps"),
        ({"tiles_params": {"min_tile": 10, "max_tile": 8}}, "min_tile"),
        ({"tiles_params": {"min_peak": 0.1}}, "unknown tiles_params"),
        ({"native_scale": "huge"}, "scale"),
    ],
)
def test_tile_options_reject_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        segment_options(**kwargs)
    assert segment_options(tiles="off").tiles is None
    assert segment_options(tiles="16").grid.tile == 16
    assert TileConfig() == segment_options().tiles


@pytest.mark.skipif(not CKPT.is_file(), reason="shipped checkpoint missing")
def test_identical_tiles_get_one_label_whatever_their_neighbours():
    """The out-of-context pass: a tile's label cannot depend on the tiles around it."""
    from wnet_seg.inference import Segmenter

    frame, layout = tile_world(10, 10, size=16, n_textures=5, seed=3)
    seg = Segmenter.from_checkpoint(CKPT)
    labels = seg.segment(frame).output
    tile_labels = labels.reshape(10, 16, 10, 16).transpose(0, 2, 1, 3).reshape(100, -1)
    assert (tile_labels == tile_labels[:, :1]).all()  # one id per tile
    per_texture = {t: set(tile_labels[layout.ravel() == t, 0]) for t in range(5)}
    assert all(len(v) == 1 for v in per_texture.values())
    # Ids persist across frames of one Segmenter.
    again = seg.segment(frame).output
    np.testing.assert_array_equal(labels, again)
    # JPEG-compressed: identical tiles are still one label (tolerant matching).
    from wnet_seg.data.degrade import degrade

    lossy = seg.segment(degrade(frame, None, "jpeg:85")[0])
    assert lossy.grid.tile == 16 and lossy.grid.noise > 0
    lossy_tiles = lossy.output.reshape(10, 16, 10, 16).transpose(0, 2, 1, 3).reshape(100, -1)
    assert (lossy_tiles == lossy_tiles[:, :1]).all()
    assert all(len({*lossy_tiles[layout.ravel() == t, 0]}) == 1 for t in range(5))
    # Without a grid the pooled and plain outputs agree.
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    result = seg.segment(noise)
    assert result.grid.tile is None and result.pooled is None
    np.testing.assert_array_equal(result.output, result.labels)


@pytest.mark.skipif(not CKPT.is_file(), reason="shipped checkpoint missing")
def test_segment_cli_writes_tile_legend_and_consistent_ids(tmp_path):
    import json
    import subprocess
    import sys

    from PIL import Image

    from .conftest import REPO

    src = tmp_path / "in"
    src.mkdir()
    from wnet_seg.capture.crafter import render_crafter_frames

    ((a, _),) = render_crafter_frames(1, 256, seed=3)  # a real game frame, 16 px tiles
    b = a[:, list(range(16, 256)) + list(range(16))]  # rotated by one tile column: new neighbours
    Image.fromarray(a).save(src / "a.png")
    Image.fromarray(np.ascontiguousarray(b)).save(src / "b.png")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "wnet_seg.segment", f"input={src}", f"output={out}",
         "progress=false", "batch_size=2"],
        capture_output=True, text=True, cwd=REPO, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    legend = json.loads((out / "labels.json").read_text())
    k = legend["num_classes"]
    ma = np.asarray(Image.open(out / "masks" / "a.png"))
    mb = np.asarray(Image.open(out / "masks" / "b.png"))
    assert set(np.unique(np.concatenate([ma, mb])).tolist()) - set(range(k)) <= {
        int(i) for i in legend["tile_signatures"]
    }
    # The same tile in another place of another frame keeps its id.
    np.testing.assert_array_equal(mb, ma[:, list(range(16, 256)) + list(range(16))])
    # The CLI runs the network only where tiles need it: the same partition as the library's
    # whole-frame pass.
    from wnet_seg.inference import Segmenter

    assert _same_partition(Segmenter.from_checkpoint(CKPT).segment(a).output, ma)


@pytest.mark.skipif(not CKPT.is_file(), reason="shipped checkpoint missing")
def test_validation_pooling_matches_inference():
    """val/miou_tiles (training) scores exactly what wnet-seg-segment outputs."""
    import torch

    from wnet_seg.inference import Segmenter
    from wnet_seg.lightning_module import WNetModule

    frame, _ = tile_world(8, 8, size=16, n_textures=5, seed=7)
    result = Segmenter.from_checkpoint(CKPT).segment(frame)
    assert result.pooled is not None
    module = WNetModule.from_checkpoint(str(CKPT)).eval()
    captured = []
    module.val_metrics.update = lambda labels, gt, pooled: captured.append((labels, pooled))
    module.on_validation_epoch_start()
    batch = {
        "image": torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0,
        "mask": torch.zeros(1, *frame.shape[:2], dtype=torch.long),
    }
    with torch.no_grad():
        module.validation_step(batch, 0)
    ((labels, pooled),) = captured
    np.testing.assert_array_equal(labels, result.labels)
    np.testing.assert_array_equal(pooled, result.output)


@pytest.mark.skipif(not CKPT.is_file(), reason="shipped checkpoint missing")
def test_pooling_works_at_native_resolution_of_upscaled_frames():
    from wnet_seg.inference import Segmenter

    frame, _ = tile_world(6, 6, size=16, n_textures=4, seed=11)
    big = frame.repeat(3, 0).repeat(3, 1)  # a 3x nearest-neighbour capture
    seg = Segmenter.from_checkpoint(CKPT)
    native = seg.segment(frame).output
    assert seg.signature_ids.table  # pooling did happen
    np.testing.assert_array_equal(seg.segment(big).output, native.repeat(3, 0).repeat(3, 1))


def _counting_network(calls: list[int], distinct: bool = False):
    """A stand-in network that counts the tiles it is shown and labels each one class 0, or
    (``distinct``) the next class of 4: a tile segmented twice would get a second id."""

    def segment(mosaics: np.ndarray) -> np.ndarray:
        first = sum(calls)
        calls.append(len(mosaics))
        if not distinct:
            return np.zeros(mosaics.shape[:3], np.int64)
        cls = (first + np.arange(len(mosaics))) % 4
        return np.broadcast_to(cls[:, None, None], mosaics.shape[:3]).copy()

    return segment


def _row_of_tiles(tiles: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(tiles, axis=1)


def test_colour_set_splits_tiles_the_network_merges():
    """Tiles of one W-Net signature differ when a minority colour covers >= colour_share of one
    of them (a grey wall and a grey door with a dark frame); below the share they stay one."""
    from wnet_seg.grid import FrameGrid
    from wnet_seg.postprocess.tiles import pool_out_of_context

    wall = np.full((16, 16, 3), 100, np.uint8)
    door = wall.copy()
    door[2:14, 2] = door[2:14, 13] = door[2, 2:14] = door[13, 2:14] = 0  # 44 px = 17 %
    speck = wall.copy()
    speck[5, 5:8] = 0  # 3 px = 1 %
    frame = _row_of_tiles([wall, door, speck, wall])
    grid = FrameGrid(input_hw=frame.shape[:2], native_hw=frame.shape[:2], tile=16, confidence=1)
    labels = np.zeros(frame.shape[:2], np.int64)
    config = TileConfig(colour_share=0.05, background_share=0)  # whole tiles (no sprites)
    out = pool_out_of_context(labels, frame, grid, config, SignatureIds(4), _counting_network([]))
    ids = out[0, ::16]
    assert ids[0] == ids[3] == ids[2] and ids[1] != ids[0]
    # Dominant colour only (colour_share=1): the door is the wall.
    out = pool_out_of_context(
        labels,
        frame,
        grid,
        TileConfig(colour_share=1.0, background_share=0),
        SignatureIds(4),
        _counting_network([]),
    )
    assert len(set(out[0, ::16])) == 1


def test_tiles_seen_in_an_earlier_frame_keep_their_id_and_skip_the_network():
    """The run's tile memory: a noisy copy of a tile in a later frame matches the first copy
    within the frame's noise (same id across frames, so dataset-level ids agree) and is not
    segmented again; a new tile is."""
    from wnet_seg.grid import FrameGrid
    from wnet_seg.postprocess.tiles import pool_out_of_context

    rng = np.random.default_rng(0)
    a, b, c = (rng.integers(40, 200, (16, 16, 3)).astype(np.uint8) for _ in range(3))
    ids, calls = SignatureIds(4), []
    net = _counting_network(calls, distinct=True)
    config = TileConfig(colour_share=0.05, colour_split=256)  # one colour bin: ids by class only

    def pool(tiles, noise):
        frame = _row_of_tiles(tiles)
        grid = FrameGrid(
            input_hw=frame.shape[:2], native_hw=frame.shape[:2], tile=16, confidence=1, noise=noise
        )
        labels = np.zeros(frame.shape[:2], np.int64)
        return pool_out_of_context(labels, frame, grid, config, ids, net)[0, ::16]

    first = pool([a, b, a], 0.0)
    assert calls == [2]
    jitter = rng.integers(-3, 4, a.shape)
    noisy_a = np.clip(a.astype(int) + jitter, 0, 255).astype(np.uint8)
    second = pool([noisy_a, c, b], 6.0)
    assert calls == [2, 1]  # only c was new
    assert second[0] == first[0] and second[2] == first[1]
    assert len({*first, *second}) == 3 and len(ids.memory_maps) == 3


def test_sprites_are_split_from_the_tile_they_stand_on():
    """A tile that agrees with a more frequent tile on most of its pixels is a sprite drawn on
    it: the agreeing pixels take the background's id, the sprite's pixels one id of their own,
    the same on two backgrounds (a cow on grass and on sand)."""
    from wnet_seg.grid import FrameGrid
    from wnet_seg.postprocess.tiles import pool_out_of_context

    rng = np.random.default_rng(1)
    grass = rng.integers(60, 120, (16, 16, 3)).astype(np.uint8)
    sand = rng.integers(160, 220, (16, 16, 3)).astype(np.uint8)
    body = np.zeros((16, 16), bool)
    body[4:12, 3:13] = True  # 80 px = 31 %
    cow_grass, cow_sand = grass.copy(), sand.copy()
    cow_grass[body] = cow_sand[body] = (250, 250, 250)
    frame = np.concatenate(
        [
            _row_of_tiles([grass, grass, cow_grass, grass]),
            _row_of_tiles([sand, sand, cow_sand, sand]),
        ]
    )
    grid = FrameGrid(input_hw=frame.shape[:2], native_hw=frame.shape[:2], tile=16, confidence=1)
    labels = np.zeros(frame.shape[:2], np.int64)
    out = pool_out_of_context(
        labels, frame, grid, TileConfig(), SignatureIds(4), _counting_network([])
    )
    tiles = out.reshape(2, 16, 4, 16).transpose(0, 2, 1, 3)  # (row, col, 16, 16)
    grass_id, sand_id = tiles[0, 0, 0, 0], tiles[1, 0, 0, 0]
    assert grass_id != sand_id
    cow = tiles[0, 2][body]
    assert len(set(cow)) == 1 and cow[0] not in (grass_id, sand_id)
    assert (tiles[0, 2][~body] == grass_id).all() and (tiles[1, 2][~body] == sand_id).all()
    assert (tiles[1, 2][body] == cow[0]).all()  # one id for the cow on both backgrounds
    # Off: the cow's tile is one id, its grass included.
    out = pool_out_of_context(
        labels, frame, grid, TileConfig(background_share=0), SignatureIds(4), _counting_network([])
    )
    assert len(set(out[:16, 32:48].ravel())) == 1


def test_a_sprite_is_one_id_whatever_the_network_says_of_it():
    """A sprite's own pixels go by their colours: a stand-in network that gives every new tile
    another class (as the W-Net's classes change with a sprite's pose and surroundings) still
    leaves the cow one id on grass and on sand, and facing left or right; a tile that is not a
    sprite keeps the network's classes in its signature."""
    from wnet_seg.grid import FrameGrid
    from wnet_seg.postprocess.tiles import MAX_ID, pool_out_of_context

    rng = np.random.default_rng(2)
    grass = rng.integers(60, 120, (16, 16, 3)).astype(np.uint8)
    sand = rng.integers(160, 220, (16, 16, 3)).astype(np.uint8)
    body = np.zeros((16, 16), bool)
    body[5:11, 3:12] = True
    body[3:5, 10:12] = True  # a head: facing right
    left = body[:, ::-1]
    cows = []
    for ground, shape in ((grass, body), (sand, body), (grass, left)):
        cow = ground.copy()
        cow[shape] = (120, 60, 20)
        cow[shape & (np.arange(16)[:, None] == 7)] = (250, 250, 250)  # a white stripe
        cows.append(cow)
    frame = np.concatenate(
        [
            _row_of_tiles([grass, grass, cows[0], grass, grass]),
            _row_of_tiles([sand, sand, cows[1], sand, grass]),
            _row_of_tiles([grass, cows[2], grass, grass, grass]),
        ]
    )
    grid = FrameGrid(input_hw=frame.shape[:2], native_hw=frame.shape[:2], tile=16, confidence=1)
    labels = np.zeros(frame.shape[:2], np.int64)
    calls: list[int] = []
    ids = SignatureIds(4)
    out = pool_out_of_context(
        labels, frame, grid, TileConfig(), ids, _counting_network(calls, distinct=True)
    )
    assert sum(calls) == 5  # grass, sand and three cow tiles: each got another class
    tiles = out.reshape(3, 16, 5, 16).transpose(0, 2, 1, 3)
    ids_of = [set(tiles[0, 2][body]), set(tiles[1, 2][body]), set(tiles[2, 1][left])]
    assert all(len(s) == 1 for s in ids_of) and ids_of[0] == ids_of[1] == ids_of[2]
    (cow,) = ids_of[0]
    assert cow < MAX_ID and cow not in (tiles[0, 0, 0, 0], tiles[1, 0, 0, 0])
    # grass and sand are not sprites: the network's classes (0 and 1) are part of their ids
    assert {c for c in ids.table if c[0] < 4} and tiles[0, 0, 0, 0] != tiles[1, 0, 0, 0]


def _player_frames(noise: int, seed: int = 3):
    """Three frames: a player covering 60 % of its cell on grass, then on sand, then on grass
    again, each among tiles of its ground; and a chest drawn as a whole cell on the floor in
    each. ``noise``: each frame's pixels jittered by up to this many levels (a lossy frame)."""
    rng = np.random.default_rng(seed)
    grass = rng.integers(60, 120, (16, 16, 3)).astype(np.uint8)
    sand = rng.integers(160, 220, (16, 16, 3)).astype(np.uint8)
    floor = rng.integers(20, 50, (16, 16, 3)).astype(np.uint8)
    body = np.zeros((16, 16), bool)
    body[1:15, 2:14] = (
        True  # 168 px = 66 %: the background shows on 34 %, under the strict test's 50 %
    )
    player = np.zeros(
        (16, 16, 3), np.uint8
    )  # three colours of its own (mid-bin: jitter keeps them)
    player[:, :] = (240, 208, 144)  # skin
    player[6:, :] = (48, 80, 208)  # shirt
    player[11:, :] = (112, 48, 16)  # trousers
    chest = floor.copy()
    chest[body] = player[body][::-1]  # as large, but only ever on the floor
    frames = []
    for ground in (grass, sand, grass):
        on = ground.copy()
        on[body] = player[body]
        tiles = [ground] * 6 + [on, floor, floor, chest]
        frame = _row_of_tiles(tiles[:5]), _row_of_tiles(tiles[5:])
        frame = np.concatenate(frame)
        if noise:
            jitter = rng.integers(-noise, noise + 1, frame.shape)
            frame = np.clip(frame.astype(int) + jitter, 0, 255).astype(np.uint8)
        frames.append(frame)
    return frames, body


@pytest.mark.parametrize("noise", [0, 3])
def test_a_sprite_seen_on_two_backgrounds_is_split(noise):
    """A player that covers most of its cell fails the background-share test, but seen on grass
    and on sand it is a sprite: from the frame that shows the second background on, its pixels
    take one id on both grounds and the ground's pixels the ground's id (the earlier copy is
    split for later frames too); exact on exact frames, loose (luma) on jittered ones. A chest
    drawn as a whole cell, only ever on the floor, stays one id."""
    from wnet_seg.grid import FrameGrid
    from wnet_seg.postprocess.tiles import pool_out_of_context

    frames, body = _player_frames(noise)
    ids = SignatureIds(4)
    outs = []
    for frame in frames:
        grid = FrameGrid(
            input_hw=frame.shape[:2], native_hw=frame.shape[:2], tile=16, confidence=1,
            noise=2.0 * noise,
        )  # fmt: skip
        labels = np.zeros(frame.shape[:2], np.int64)
        out = pool_out_of_context(labels, frame, grid, TileConfig(), ids, _counting_network([]))
        outs.append(out.reshape(2, 16, 5, 16).transpose(0, 2, 1, 3))  # (row, col, 16, 16)
    first, second, third = outs
    assert len(set(first[1, 1].ravel())) == 1  # one background seen: not split yet
    sprite = set()
    for tiles in (second, third):
        ground = tiles[0, 0, 0, 0]
        assert (tiles[1, 1][~body] == ground).mean() >= 0.9
        got = tiles[1, 1][body]
        assert (got != ground).mean() >= 0.9
        sprite |= {int(np.bincount(got[got != ground]).argmax())}
    assert len(sprite) == 1 and second[0, 0, 0, 0] != third[0, 0, 0, 0]
    for tiles in outs:
        assert len(set(tiles[1, 4].ravel())) == 1  # the chest is one id, its floor included
    # Off with the sprite split: the player's tile stays one id.
    ids = SignatureIds(4)
    for frame in frames:
        grid = FrameGrid(input_hw=frame.shape[:2], native_hw=frame.shape[:2], tile=16, confidence=1)
        labels = np.zeros(frame.shape[:2], np.int64)
        cfg = TileConfig(background_share=0)
        out = pool_out_of_context(labels, frame, grid, cfg, ids, _counting_network([]))
        assert len(set(out[16:32, 16:32].ravel())) == 1


def _floor_with_ball() -> tuple[np.ndarray, np.ndarray]:
    """A MiniGrid-like 2 x 6 map of 32 px tiles (black floor, grey lines on the top and left of
    each cell; a blue box above a green ball), saved as JPEG 85; and the ball's true mask."""
    from wnet_seg.data.degrade import parse_degradation

    floor = np.zeros((32, 32, 3), np.uint8)
    floor[0], floor[:, 0] = 100, 100
    box, ball = floor.copy(), floor.copy()
    box[4:28, 4:28] = (0, 0, 255)
    yy, xx = np.mgrid[:32, :32]
    disc = (yy - 17.5) ** 2 + (xx - 17.5) ** 2 <= 10.5**2
    ball[disc] = (0, 255, 0)
    frame = np.concatenate(
        [
            _row_of_tiles([floor, floor, box, floor, floor, floor]),
            _row_of_tiles([floor, floor, ball, floor, floor, floor]),
        ]
    )
    jpeg, _ = parse_degradation("jpeg:85")(frame, np.zeros(frame.shape[:2], np.uint8))
    return jpeg, disc


def test_a_sprite_on_a_jpeg_floor_keeps_the_floor_its_chroma_bleeds_into():
    """Under JPEG a green ball bleeds its chroma into the black floor around it and the box above
    bleeds into the ball tile's grey line, where luma still agrees with the floor: those pixels go
    to the floor, not to the ball (the split is luma-tolerant; finding the sprite is not)."""
    from wnet_seg.grid import LOSSY_NOISE, FrameGrid
    from wnet_seg.postprocess.tiles import pool_out_of_context

    frame, disc = _floor_with_ball()
    grid = FrameGrid(
        input_hw=frame.shape[:2], native_hw=frame.shape[:2], tile=32, confidence=1,
        noise=LOSSY_NOISE,
    )  # fmt: skip
    labels = np.zeros(frame.shape[:2], np.int64)
    out = pool_out_of_context(
        labels, frame, grid, TileConfig(), SignatureIds(4), _counting_network([])
    )
    tile = out[32:64, 64:96]
    floor_id = out[40, 8]
    assert (tile[~disc] == floor_id).mean() >= 0.85  # 0.89; per channel alone 0.78
    assert (tile[disc] != floor_id).mean() >= 0.97


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """The two label maps split the pixels the same way (ids may be numbered differently)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1).shape[1]
    return pairs == len(np.unique(a)) == len(np.unique(b))


@pytest.mark.skipif(not CKPT.is_file(), reason="shipped checkpoint missing")
def test_network_runs_only_where_whole_tiles_do_not_reach():
    """per_pixel=False (wnet-seg-segment): the default output is the same where whole tiles cover
    the frame; the network sees only the strips they leave out (with context) and new tiles."""
    from wnet_seg.inference import CONTEXT, Segmenter

    world, _ = tile_world(10, 10, size=16, n_textures=5, seed=3)
    frame = world[5:, 9:]  # partial tiles along the top and left edges
    full = Segmenter.from_checkpoint(CKPT)
    lean = Segmenter.from_checkpoint(CKPT, per_pixel=False)
    shapes: list[tuple[int, ...]] = []
    encode = lean.encode
    lean.encode = lambda x: (shapes.append(np.shape(x)[1:3]), encode(x))[1]
    a, b = full.segment(frame), lean.segment(frame)
    assert b.labels is None and b.probs is None and b.pooled is not None
    assert frame.shape[:2] not in shapes  # never the whole frame
    # top strip (11 rows + context) and left strip (7 columns + context, beside the 144 rows of
    # whole tiles and the context above them)
    assert (11 + CONTEXT, 151) in shapes and (155, 7 + CONTEXT) in shapes
    y0, x0, ny, nx = a.grid.tile_block()
    assert (y0, x0, ny, nx) == (11, 7, 9, 9)
    block = (slice(y0, y0 + 16 * ny), slice(x0, x0 + 16 * nx))
    assert _same_partition(a.output[block], b.output[block])
    # the strips' in-context classes come from crops: nearly the whole frame's
    strips = lean._uncovered_labels(b.native, b.grid)
    edge = np.ones(frame.shape[:2], bool)
    edge[block] = False
    assert (strips[edge] == a.labels[edge]).mean() > 0.9
    # a frame the whole tiles cover exactly: the same output, no per-pixel pass at all
    shapes.clear()
    a, b = full.segment(world), lean.segment(world)
    assert _same_partition(a.output, b.output)
    assert all(s == (48, 48) for s in shapes)  # only 3 x 3 mosaics of tiles not seen before
    # no grid (noise): the whole frame, per pixel
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert lean.segment(noise).labels is not None
