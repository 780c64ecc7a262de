"""Degradations for the benchmark's conditions: sizes, exact masks, determinism, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from wnet_seg.data.degrade import CONDITIONS, degrade, parse_degradation


def _tile_frame(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    mask = np.repeat(np.repeat(rng.integers(0, 4, (h // 8, w // 8)), 8, 0), 8, 1).astype(np.uint8)
    palette = rng.integers(0, 256, (4, 3)).astype(np.uint8)
    return palette[mask], mask


@pytest.mark.parametrize("spec", CONDITIONS)
def test_every_condition_keeps_image_and_mask_aligned(spec):
    image, mask = _tile_frame()
    out, m = degrade(image, mask, spec)
    d = parse_degradation(spec)
    assert out.shape[:2] == m.shape == d.output_size(48, 64)
    assert out.dtype == np.uint8 and m.dtype == np.uint8
    assert set(np.unique(m)) <= set(np.unique(mask))  # ids are never blended
    again, m2 = degrade(image, mask, spec)
    assert np.array_equal(out, again) and np.array_equal(m, m2)  # deterministic


def test_nearest_integer_upscale_is_exact_blocks():
    image, mask = _tile_frame()
    out, m = degrade(image, mask, "nearest:3")
    assert out.shape == (144, 192, 3)
    assert np.array_equal(out, image.repeat(3, 0).repeat(3, 1))
    assert np.array_equal(m, mask.repeat(3, 0).repeat(3, 1))
    assert parse_degradation("nearest:3").lossless and not parse_degradation("jpeg:85").lossless


def test_bilinear_mask_follows_the_pixels():
    image, mask = _tile_frame()
    out, m = degrade(image, mask, "bilinear:1.5")
    assert out.shape == (72, 96, 3)
    palette = {int(k): image[mask == k][0].astype(int) for k in np.unique(mask)}
    # Away from label edges the resized pixel has its label's colour (within rounding).
    inner = np.ones_like(m, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            inner &= np.roll(np.roll(m, dy, 0), dx, 1) == m
    ref = np.stack([palette[int(k)] for k in m[inner]])
    assert np.abs(out[inner].astype(int) - ref).max() <= 1


def test_jpeg_changes_pixels_not_size_and_composes_in_order():
    image, mask = _tile_frame()
    out, m = degrade(image, mask, "jpeg:85")
    assert out.shape == image.shape and np.array_equal(m, mask)
    assert not np.array_equal(out, image)
    d = parse_degradation("bilinear:1.5+jpeg:85")
    assert str(d) == "bilinear:1.5+jpeg:85" and d.scale == 1.5
    assert str(parse_degradation(" clean ")) == "clean" and parse_degradation(None).scale == 1.0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("blur:2", "expected one of"),
        ("jpeg:101", "1..100"),
        ("jpeg:8.5", "1..100"),
        ("nearest:x", "not a number"),
        ("bilinear:0", "resize factor"),
        ("nearest", "expected one of"),
    ],
)
def test_bad_specs_say_why(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_degradation(spec)


def test_wrong_sized_mask_is_refused():
    image, mask = _tile_frame()
    with pytest.raises(ValueError, match="does not match"):
        degrade(image, mask[:-1], "nearest:2")
