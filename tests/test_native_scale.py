"""Native-scale detection: factors 1..6 of nearest upscales recovered, photo-like images give 1."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wnet_seg.data.native_scale import (
    PixelGrid,
    detect_grid,
    detect_scale,
    from_native,
    resolve_grid,
    to_native,
)


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
    assert detect_scale(big) == factor
    back = to_native(big, factor)
    np.testing.assert_array_equal(back, native)
    np.testing.assert_array_equal(from_native(back, factor, big.shape[:2]), big)


@pytest.mark.parametrize("factor", [2, 3, 4, 6])
def test_cropped_and_bordered_captures(factor):
    """A capture cropped mid-block on the top/left with 2 stray columns of noise on the right."""
    native = pixel_art(40, 48, 7)
    big = up(native, factor)[1:, 1:]
    noise = np.random.default_rng(3).integers(0, 256, size=(big.shape[0], 2, 3), dtype=np.uint8)
    cap = np.concatenate([big, noise], axis=1)
    grid = detect_grid(cap)
    assert grid.factor == factor
    assert (grid.offset_y, grid.offset_x) == ((factor - 1) % factor, (factor - 1) % factor)
    small = to_native(cap, grid)
    back = from_native(small, grid, cap.shape[:2])
    np.testing.assert_array_equal(back[:, : big.shape[1]], big)


def test_nes_like_768x720_is_3x():
    native = pixel_art(240, 256, 11)
    assert detect_scale(up(native, 3)) == 3
    assert to_native(up(native, 3), 3).shape == (240, 256, 3)


def test_photo_like_images_are_1x():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(noise).resize((160, 160), Image.BILINEAR))
    assert detect_scale(smooth) == 1
    yy, xx = np.mgrid[0:120, 0:160]
    grad = np.stack([xx * 1.5, yy * 2.0, (xx + yy) * 0.8], -1) + rng.normal(0, 3, (120, 160, 3))
    assert detect_scale(np.clip(grad, 0, 255).astype(np.uint8)) == 1
    # a smooth (bicubic) 3x upscale of pixel art is not a nearest-neighbour upscale either
    art = Image.fromarray(pixel_art(40, 40, 2)).resize((120, 120), Image.BICUBIC)
    assert detect_scale(np.asarray(art)) == 1


def test_degenerate_and_options():
    assert detect_scale(np.zeros((10, 12, 3), np.uint8)) == 1
    stripes = up(pixel_art(1, 30, 4), 3)[:1].repeat(20, axis=0)  # vertical stripes, no row edges
    assert detect_scale(stripes) == 3
    img = up(pixel_art(30, 30, 5), 2)
    assert resolve_grid(img, "auto").factor == 2
    assert resolve_grid(img, "off") == PixelGrid()
    assert resolve_grid(img, 4).factor == 4
    with pytest.raises(ValueError, match="native_scale"):
        resolve_grid(img, "huge")
    with pytest.raises(ValueError, match="too small"):
        from_native(np.zeros((3, 3)), 2, (20, 20))


def test_real_game_frame():
    """The committed Crafter demo frame is native (1x); its nearest upscales are found."""
    from pathlib import Path

    from wnet_seg.data.io import load_rgb

    frame = load_rgb(Path(__file__).resolve().parents[1] / "data" / "demo" / "crafter.png")
    assert detect_scale(frame) == 1
    for f in (2, 3, 5):
        grid = detect_grid(up(frame, f)[3:, 2:])
        assert (grid.factor, grid.offset_y, grid.offset_x) == (f, (-3) % f, (-2) % f)
        np.testing.assert_array_equal(to_native(up(frame, f), f), frame)
