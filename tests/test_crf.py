"""Dense CRF: shapes, normalization, that it cleans noise, uses all colour channels, rejects bad input."""

from __future__ import annotations

import numpy as np
import pytest

from wnet_seg.postprocess.crf import CRFConfig, bilateral_features, crf_refine, crf_refine_config


def two_region_case(seed: int = 0, h: int = 32, w: int = 48, flip: float = 0.3):
    rng = np.random.default_rng(seed)
    gt = np.zeros((h, w), np.int64)
    gt[:, 20:] = 1
    rgb = np.array([[200, 40, 30], [30, 160, 70]], np.uint8)[gt]
    onehot = np.eye(2, dtype=bool)[gt].transpose(2, 0, 1)
    probs = np.where(onehot, 0.7, 0.3).astype(np.float32)
    flipped = rng.random((h, w)) < flip
    probs[:, flipped] = probs[::-1][:, flipped]
    return probs, rgb, gt


def test_output_shape_dtype_normalization():
    rng = np.random.default_rng(1)
    probs = rng.random((4, 13, 17)).astype(np.float32)  # odd size, not normalized
    rgb = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    out = crf_refine(probs, rgb)
    assert out.shape == (4, 13, 17) and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all()
    np.testing.assert_allclose(out.sum(axis=0), 1.0, atol=1e-5)


def test_non_contiguous_and_float64_inputs_are_accepted():
    probs, rgb, _ = two_region_case()
    out = crf_refine(probs.astype(np.float64)[:, :, ::-1], rgb[:, ::-1])
    assert out.shape == probs.shape


def test_noisy_two_region_map_gets_cleaner():
    probs, rgb, gt = two_region_case()
    before = (probs.argmax(0) == gt).mean()
    after = (crf_refine(probs, rgb).argmax(0) == gt).mean()
    assert before < 0.75
    assert after > 0.98


def test_zero_probabilities_are_clipped_not_infinite():
    probs, rgb, gt = two_region_case()
    hard = (probs > 0.5).astype(np.float32)  # exact zeros and ones
    out = crf_refine(hard, rgb)
    assert np.isfinite(out).all()


def test_all_three_colour_channels_are_used():
    # Two regions that differ ONLY in blue; the unary is informative only at the far left and right
    # columns. Using blue, the labels split at the colour edge (column 12); without it, by distance.
    h, w = 24, 40
    gt = np.zeros((h, w), np.int64)
    gt[:, 12:] = 1
    rgb = np.array([[100, 100, 40], [100, 100, 200]], np.uint8)[gt]
    probs = np.full((2, h, w), 0.5, np.float32)
    probs[:, :, :4] = np.array([0.95, 0.05])[:, None, None]
    probs[:, :, -4:] = np.array([0.05, 0.95])[:, None, None]
    with_blue = (crf_refine(probs, rgb).argmax(0) == gt).mean()
    blue_zeroed = rgb * np.array([1, 1, 0], np.uint8)
    without_blue = (crf_refine(probs, blue_zeroed).argmax(0) == gt).mean()
    assert with_blue == pytest.approx(1.0)
    assert without_blue < 0.9


def test_bilateral_features_scale_every_channel():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[1, 2] = [10, 20, 30]
    f = bilateral_features(rgb, sxy=2.0, srgb=10.0)
    assert f.shape == (5, 6) and f.dtype == np.float32 and f.flags.c_contiguous
    np.testing.assert_allclose(f[:, -1], [0.5, 1.0, 1.0, 2.0, 3.0])  # y/2, x/2, R/10, G/10, B/10


def test_single_class_is_all_ones():
    out = crf_refine(np.full((1, 4, 5), 0.3, np.float32), np.zeros((4, 5, 3), np.uint8))
    np.testing.assert_array_equal(out, np.ones((1, 4, 5), np.float32))


def test_config_round_trip_and_range_checks():
    probs, rgb, _ = two_region_case()
    cfg = CRFConfig(iterations=3, bilateral_srgb=15.0)
    np.testing.assert_array_equal(
        crf_refine_config(probs, rgb, cfg),
        crf_refine(probs, rgb, iterations=3, bilateral_srgb=15.0),
    )
    with pytest.raises(ValueError, match="crf.iterations"):
        CRFConfig(iterations=0)
    with pytest.raises(ValueError, match="crf.iterations"):
        CRFConfig(iterations=2.5)
    with pytest.raises(ValueError, match="crf.bilateral_srgb"):
        CRFConfig(bilateral_srgb=0)
    with pytest.raises(ValueError, match="crf.gaussian_compat"):
        CRFConfig(gaussian_compat=-1)
    with pytest.raises(ValueError, match="crf.bilateral_sxy"):
        crf_refine(probs, rgb, bilateral_sxy=float("nan"))


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((32, 48), np.uint8), r"\(H, W, 3\)"),  # grayscale: the caller converts
        (np.zeros((32, 48, 4), np.uint8), r"\(H, W, 3\)"),  # RGBA: the caller composites
        (np.zeros((32, 48, 3), np.float32), "uint8"),
        (np.zeros((30, 48, 3), np.uint8), "image is 30x48 but probs are 32x48"),
    ],
)
def test_bad_image_is_rejected(image: np.ndarray, match: str):
    probs, _, _ = two_region_case()
    with pytest.raises(ValueError, match=match):
        crf_refine(probs, image)


def test_bad_probs_are_rejected():
    _, rgb, _ = two_region_case()
    with pytest.raises(ValueError, match=r"\(K, H, W\)"):
        crf_refine(np.zeros((32, 48), np.float32), rgb)
    with pytest.raises(ValueError, match="finite and non-negative"):
        crf_refine(np.full((2, 32, 48), -0.1, np.float32), rgb)
    with pytest.raises(ValueError, match="floating point"):
        crf_refine(np.zeros((2, 32, 48), np.int64), rgb)
