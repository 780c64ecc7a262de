"""scripts/benchmark_grid.py: tuning frames are not the reported frames, and a run scores what
the detector returns."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_grid.py"


def _script():
    spec = importlib.util.spec_from_file_location("benchmark_grid", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_val_split_frames_differ_from_the_test_split():
    bench = _script()
    for name in bench.SYNTHETIC:
        val = bench.synthetic(name, 2, bench.DEV_SEED)
        test = bench.synthetic(name, 2, bench.FIRST_TEST_SEED)
        assert all(not np.array_equal(a.rgb, b.rgb) for a in val for b in test), name
    val_photos = bench.photo_crops(13, bench.DEV_SEED)
    test_photos = bench.photo_crops(13, bench.FIRST_TEST_SEED)
    assert (
        sum(np.array_equal(a.rgb, b.rgb) for a, b in zip(val_photos, test_photos, strict=True)) == 0
    )


def test_run_scores_right_grids_and_false_grids():
    bench = _script()
    maps = bench.synthetic("dense", 2, bench.DEV_SEED)
    result = bench.run(maps, "nearest:3", one_game=False)
    assert result["frames"] == 2 and result["right"] == 1.0 and result["phase_right"] == 1.0
    noise = bench.noise(2, bench.DEV_SEED)
    assert bench.run(noise, "clean", one_game=False)["false_grid"] == 0.0


def test_a_fallback_lossy_2x_reading_is_read_at_1x():
    """A sparse map under JPEG (validation frame): the first scale reading (6x, from the black
    area) gives no grid, the fallback 2x reading claims half the tile, and 1x gives the whole
    tile: the frame is read at 1x, as a first lossy 2x reading would be."""
    from wnet_seg import grid as grid_mod
    from wnet_seg.data.degrade import parse_degradation

    bench = _script()
    frame = bench.synthetic("sparse", 6, bench.DEV_SEED)[5]
    rgb = parse_degradation("jpeg:85")(frame.rgb)[0]
    cfg = grid_mod.GridConfig()
    palette = grid_mod.grid_scale.exact_palette(rgb)
    readings = grid_mod._scale_grids(rgb, cfg, None, palette)
    first = grid_mod._with_tiles(rgb, readings[0], cfg, None, True, palette)
    assert readings[0][1] and first.tile is None  # a lossy first reading without a grid
    two = next(r for r in readings if r[0].scale == 2.0)
    assert grid_mod._with_tiles(rgb, two, cfg, None, True, palette).tile == frame.tile // 2
    g = grid_mod.detect(rgb)
    assert (g.scale, g.tile) == (1.0, frame.tile)
    for a, b in zip(g.offset, frame.offset, strict=True):
        assert min((a - b) % g.tile, (b - a) % g.tile) <= 1


def test_a_sparse_map_keeps_the_confident_grid_coarsening_went_through():
    """A sparse map (validation frame, clean): the 8 px fit coarsens to the 24 px tile, then to
    48 px arrangements whose phase and size no longer tell; the 24 px grid is confident and is
    the one claimed."""
    from wnet_seg import grid as grid_mod

    bench = _script()
    frame = bench.synthetic("sparse", 21, bench.DEV_SEED)[20]
    nat = grid_mod._Native.of(frame.rgb, 0.0)
    chain = grid_mod._grid_fits(nat, grid_mod.GridConfig(), None)
    assert [f.tile for f in chain][:2] == [48, 24]  # coarsest first
    g = grid_mod.detect(frame.rgb)
    assert (g.scale, g.tile, tuple(g.offset)) == (1.0, 24, tuple(frame.offset))
    assert g.confidence >= grid_mod.MIN_CONFIDENCE


def test_a_costlier_coarsening_is_taken_when_it_is_more_confident(monkeypatch):
    """A sparse map (validation frame, bilinear x1.5 then JPEG 85): the 8 px fit's step to the
    24 px tile costs more than ``COARSEN_SLACK`` times as much, so without the confidence-gated
    step the 8 px grid is claimed; the 24 px grid is more confident and is taken."""
    from wnet_seg import grid as grid_mod
    from wnet_seg.data.degrade import parse_degradation

    bench = _script()
    frame = bench.synthetic("sparse", 14, bench.DEV_SEED)[13]
    rgb = parse_degradation("bilinear:1.5+jpeg:85")(frame.rgb)[0]
    g = grid_mod.detect(rgb)
    assert (round(g.scale, 2), g.tile) == (1.5, frame.tile) and frame.tile == 24
    nat = grid_mod._Native.of(grid_mod.to_native(rgb, g), g.noise)
    fine = grid_mod._fit_tiles(nat, grid_mod.GridConfig(), 8)
    coarse = grid_mod._fit_at(nat, 24, *g.offset)
    ratio = coarse.cost / fine.cost
    assert grid_mod.COARSEN_SLACK < ratio <= grid_mod.TENTATIVE_SLACK, ratio
    assert grid_mod._more_confident(nat, coarse, fine)
    monkeypatch.setattr(grid_mod, "TENTATIVE_SLACK", grid_mod.COARSEN_SLACK)
    assert grid_mod.detect(rgb).tile == 8  # without the gated step


def test_a_lossy_fractional_nearest_reading_competes_with_1x():
    """JPEG'd MiniGrid validation frames (1x, 32 px cells of flat colour with 1-px lines) fit a
    1.25x nearest upscale about as well as JPEG lets a true one: the 1x reading's grid is more
    confident and wins; read at 1.25x alone they give a 13 px grid."""
    pytest.importorskip("minigrid")
    from wnet_seg import grid as grid_mod
    from wnet_seg.capture.minigrid import render_minigrid_frames
    from wnet_seg.data.degrade import parse_degradation

    frames = [f[0] for f in render_minigrid_frames(16, seed=100_000, size=256)][13:]
    for rgb in (parse_degradation("jpeg:85")(f)[0] for f in frames):
        g = grid_mod.detect(rgb)
        assert (g.scale, g.tile) == (1.0, 32), (g.scale, g.tile)
        forced = grid_mod.detect(rgb, grid_mod.GridConfig(scale=1.25))
        assert forced.tile == 13 and forced.confidence < g.confidence


def test_a_coarser_tile_takes_its_own_phase_when_much_cheaper(monkeypatch):
    """A periodic-texture map (validation frame, JPEG 85; 32 px tiles whose 8 px texture starts
    one pixel off the tile): the arrangements of the 8 px fit put the 16 and 32 px grids at the
    texture's phase, which no confident grid follows, and the 8 px grid is claimed; the coarser
    tiles' own phases cost far less and give the true tile size."""
    from wnet_seg import grid as grid_mod
    from wnet_seg.data.degrade import parse_degradation

    bench = _script()
    frame = bench.synthetic("periodic", 21, bench.DEV_SEED)[20]
    rgb = parse_degradation("jpeg:85")(frame.rgb)[0]
    g = grid_mod.detect(rgb)
    assert (g.scale, g.tile) == (1.0, frame.tile) and frame.tile == 32
    monkeypatch.setattr(grid_mod, "PRIOR_PHASE_SLACK", float("inf"))  # never the own phase
    assert grid_mod.detect(rgb).tile == 8


def test_a_grid_on_size_evidence_alone_needs_more_confidence(monkeypatch):
    """An atari-like validation frame (flat playfield, bands, a few sprites) passes the size test
    by a hair and fails the phase test: no grid is claimed; with the plain threshold (0.5) it got
    a false 16 px grid."""
    from wnet_seg import grid as grid_mod

    frame = _script().atari_like(116, 0)[115]
    g = grid_mod.detect(frame.rgb)
    assert frame.tile is None and g.tile is None and g.confidence < 0.5
    monkeypatch.setattr(grid_mod, "SIZE_ONLY_CONFIDENCE", 0.5)  # no rescaling
    assert grid_mod.detect(frame.rgb).tile == 16
