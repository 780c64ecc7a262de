"""Native-scale detection (:mod:`wnet_seg.grid`, scale layer): factors 1..6 of nearest upscales
recovered from cropped and bordered captures; noise and gradients give 1, smooth upscales their
factor."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wnet_seg.grid import GridConfig, detect, from_native, to_native

SCALE_ONLY = GridConfig(tile="off")


def detect_scale(rgb: np.ndarray) -> float:
    return detect(rgb, SCALE_ONLY).scale


def pixel_art(h: int, w: int, seed: int) -> np.ndarray:
    """Random tile-based pixel art: 4x4 tiles from a small palette plus single-pixel detail."""
    rng = np.random.default_rng(seed)
    pal = rng.integers(0, 256, size=(6, 3), dtype=np.uint8)
    tiles = rng.integers(0, 6, size=(-(-h // 4), -(-w // 4)))
    img = pal[np.kron(tiles, np.ones((4, 4), int))[:h, :w]]
    dots = rng.random((h, w)) < 0.15
    img[dots] = pal[rng.integers(0, 6, size=dots.sum())]
    return img


def up(img: np.ndarray, f: int) -> np.ndarray:
    return np.repeat(np.repeat(img, f, axis=0), f, axis=1)


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("seed", [0, 1])
def test_recovers_factor_of_nearest_upscale(factor, seed):
    native = pixel_art(60, 64, seed)
    big = up(native, factor)
    grid = detect(big, SCALE_ONLY)
    assert grid.scale == factor
    back = to_native(big, grid)
    np.testing.assert_array_equal(back, native)
    np.testing.assert_array_equal(from_native(back, grid, big.shape[:2]), big)


@pytest.mark.parametrize("factor", [2, 3, 4, 6])
def test_cropped_and_bordered_captures(factor):
    """A capture cropped mid-block on the top/left with a black frame line on the right.

    (The replaced detector also ignored 2 columns of random noise at a border; this one does not
    for every factor: stray noise makes the frame lossy, and a lossy frame needs a clear fit.)"""
    native = pixel_art(40, 48, 7)
    big = up(native, factor)[1:, 1:]
    line = np.zeros((big.shape[0], 1, 3), np.uint8)
    cap = np.concatenate([big, line], axis=1)
    grid = detect(cap, SCALE_ONLY)
    assert grid.scale == factor
    assert grid.origin == (-1.0, -1.0)  # native cell 0 starts one pixel before the crop
    small = to_native(cap, grid)
    back = from_native(small, grid, cap.shape[:2])
    np.testing.assert_array_equal(back[:, : big.shape[1]], big)


def test_nes_like_768x720_is_3x():
    native = pixel_art(240, 256, 11)
    grid = detect(up(native, 3), SCALE_ONLY)
    assert grid.scale == 3 and to_native(up(native, 3), grid).shape == (240, 256, 3)


def test_photo_like_images_are_1x():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(noise).resize((160, 160), Image.BILINEAR))
    assert detect_scale(smooth) == 4  # a bilinear upscale is an upscale: its source is recovered
    yy, xx = np.mgrid[0:120, 0:160]
    grad = np.stack([xx * 1.5, yy * 2.0, (xx + yy) * 0.8], -1) + rng.normal(0, 3, (120, 160, 3))
    assert detect_scale(np.clip(grad, 0, 255).astype(np.uint8)) == 1
    # a bicubic 3x upscale of pixel art is still found as a 3x upscale (fitted as linear)
    art = Image.fromarray(pixel_art(40, 40, 2)).resize((120, 120), Image.BICUBIC)
    assert detect_scale(np.asarray(art)) == 3


def test_degenerate_and_options():
    assert detect_scale(np.zeros((10, 12, 3), np.uint8)) == 1
    img = up(pixel_art(30, 30, 5), 2)
    assert detect(img, GridConfig(scale="off", tile="off")).scale == 1.0
    assert detect(img, GridConfig(scale=4, tile="off")).scale == 4.0  # forced
    with pytest.raises(ValueError, match="scale"):
        GridConfig(scale="huge")
    with pytest.raises(ValueError, match="too small"):
        from_native(np.zeros((3, 3)), detect(img, SCALE_ONLY), (60, 60))


def test_real_game_frame():
    """The committed Crafter demo frame is native (1x); its nearest upscales are found."""
    from pathlib import Path

    from wnet_seg.data.io import load_rgb

    frame = load_rgb(Path(__file__).resolve().parents[1] / "data" / "demo" / "crafter.png")
    assert detect_scale(frame) == 1
    for f in (2, 3, 5):
        cap = up(frame, f)[3:, 2:]
        grid = detect(cap, SCALE_ONLY)
        assert grid.scale == f
        np.testing.assert_array_equal(from_native(to_native(cap, grid), grid, cap.shape[:2]), cap)


def test_nearest_fit_with_a_residual_is_not_lossless():
    """A nearest upscale copies pixels, so its fit of a clean frame is exact; a nearest fit that
    leaves a residual (a 1x frame of 1-px lines that a 4/3 upscale nearly reproduces) is not
    lossless, which on an exact-palette frame means native. Bilinear keeps its rounding margin."""
    from wnet_seg.grid_scale import LOSSLESS_RESIDUAL, Hypothesis, decide, lossless

    def fits(kernel: str, residual: float) -> list[Hypothesis]:
        return [Hypothesis(4 / 3, kernel, 0.0, residual, 5 * residual + 1.0)]

    assert lossless(*fits("nearest", 1e-10)) and not lossless(*fits("nearest", 0.4))
    assert lossless(*fits("linear", 0.4)) and not lossless(*fits("linear", LOSSLESS_RESIDUAL + 1))
    assert decide(fits("nearest", 0.4), fits("nearest", 0.4), palette=True) == []
    assert decide(fits("nearest", 0.0), fits("nearest", 0.0), palette=True)[0][0].scale == 4 / 3
    assert decide(fits("linear", 0.4), fits("linear", 0.4), palette=True)[0][0].scale == 4 / 3


def test_minigrid_frames_with_one_pixel_lines_are_native():
    """Two MiniGrid frames (32 px tiles, 1-px grid lines, anti-aliased shapes) that a 4/3 nearest
    upscale of 24 px tiles nearly reproduces (residual ~0.4): read at 1x, tile 32."""
    pytest.importorskip("minigrid")
    from wnet_seg.capture.minigrid import render_minigrid_frames

    frames = list(render_minigrid_frames(6, seed=0, frames_per_episode=2))[4:]
    for rgb, _, _ in frames:
        grid = detect(rgb)
        assert (grid.scale, grid.tile) == (1.0, 32)
