"""Classical baselines: interface, determinism, and easy cases they must get right."""

from __future__ import annotations

import numpy as np
import pytest

from wnet_seg.baselines import BASELINES, local_mean, segment_baseline
from wnet_seg.metrics import hungarian_miou, pixel_accuracy


def two_colours(h: int = 32, w: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Left third one flat colour, the rest another; returns (rgb, gt)."""
    gt = np.zeros((h, w), np.uint8)
    gt[:, w // 3 :] = 1
    palette = np.array([[200, 40, 30], [30, 160, 70]], np.uint8)
    return palette[gt], gt


def tile_texture(h: int = 37, w: int = 53, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    return palette[rng.integers(0, 5, (h, w))]


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_returns_label_map_of_input_size(name: str):
    rgb = tile_texture()  # odd size on purpose
    labels = segment_baseline(name, rgb, 4)
    assert labels.shape == (37, 53)
    assert labels.dtype == np.int32
    assert labels.min() == 0
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))  # ids 0..n-1


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_deterministic(name: str):
    rgb = tile_texture(seed=1)
    assert np.array_equal(segment_baseline(name, rgb, 3), segment_baseline(name, rgb, 3))


@pytest.mark.parametrize("name", ["kmeans_rgb", "kmeans_rgb_localmean", "slic"])
def test_two_flat_colours_are_separated_perfectly(name: str):
    rgb, gt = two_colours()
    labels = segment_baseline(name, rgb, 2)
    assert hungarian_miou(labels, gt) == pytest.approx(1.0)


def test_felzenszwalb_respects_a_sharp_edge():
    rgb, gt = two_colours()
    labels = segment_baseline("felzenszwalb", rgb, 2)
    # No segment crosses the edge; sigma 0.8 pre-blur leaves 1 px strips on the ramp (<= 4 columns).
    assert pixel_accuracy(labels, gt) == pytest.approx(1.0)
    assert hungarian_miou(labels, gt) >= 1 - 4 / 16
    assert labels.max() + 1 <= 6


@pytest.mark.parametrize("name", ["kmeans_rgb", "kmeans_rgb_localmean"])
def test_kmeans_uses_k(name: str):
    rgb = tile_texture(seed=2)  # 5 distinct colours
    assert segment_baseline(name, rgb, 3).max() + 1 == 3
    # asking for more clusters than distinct colours is not an error (RGB only: 5 colours)
    if name == "kmeans_rgb":
        assert segment_baseline(name, rgb, 12).max() + 1 == 5
    flat = np.full((8, 8, 3), 77, np.uint8)
    assert np.array_equal(segment_baseline(name, flat, 4), np.zeros((8, 8), np.int32))


def test_kmeans_rgb_groups_equal_colours():
    rgb = tile_texture(seed=3)
    labels = segment_baseline("kmeans_rgb", rgb, 3)
    # every pixel of one colour gets one label
    colour_id = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)[1].reshape(rgb.shape[:2])
    for c in np.unique(colour_id):
        assert len(np.unique(labels[colour_id == c])) == 1


def test_local_mean_is_a_box_mean():
    rgb = np.zeros((9, 9, 3), np.uint8)
    rgb[4, 4] = [81, 162, 243]
    mean = local_mean(rgb, window=9)
    assert mean[4, 4] == pytest.approx([1.0, 2.0, 3.0])  # one pixel in 81
    assert mean.shape == (9, 9, 3) and mean.dtype == np.float32


def test_bad_input_is_rejected():
    grey = np.zeros((8, 8), np.uint8)
    rgba = np.zeros((8, 8, 4), np.uint8)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        segment_baseline("kmeans_rgb", grey, 2)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        segment_baseline("slic", rgba, 2)
    with pytest.raises(ValueError, match="uint8"):
        segment_baseline("felzenszwalb", np.zeros((8, 8, 3), np.float32), 2)
    with pytest.raises(KeyError, match="unknown baseline 'watershed'"):
        segment_baseline("watershed", np.zeros((8, 8, 3), np.uint8), 2)
    with pytest.raises(ValueError, match="k must be >= 1"):
        segment_baseline("kmeans_rgb", np.zeros((8, 8, 3), np.uint8), 0)
