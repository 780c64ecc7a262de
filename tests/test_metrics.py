"""Metrics on hand-made cases with known answers, and against slow brute-force references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from wnet_seg.data.io import IGNORE_ID
from wnet_seg.metrics import (
    METRIC_KEYS,
    SegmentationMeter,
    contingency,
    hungarian_miou,
    image_metrics,
    pixel_accuracy,
    rand_index,
    segmentation_covering,
    variation_of_information,
)


def halves(h: int = 4, w: int = 4, left: int = 0, right: int = 1) -> np.ndarray:
    out = np.full((h, w), left, np.uint8)
    out[:, w // 2 :] = right
    return out


# ---- slow references -----------------------------------------------------------------------------


def ref_rand_index(pred: np.ndarray, gt: np.ndarray) -> float:
    valid = gt != IGNORE_ID
    p, g = pred[valid].ravel(), gt[valid].ravel()
    same_p = p[:, None] == p[None, :]
    same_g = g[:, None] == g[None, :]
    iu = np.triu_indices(len(p), k=1)
    return float((same_p == same_g)[iu].mean())


def ref_vi(pred: np.ndarray, gt: np.ndarray) -> float:
    valid = gt != IGNORE_ID
    p, g = pred[valid].ravel().tolist(), gt[valid].ravel().tolist()
    n = len(p)
    joint: dict[tuple[int, int], int] = {}
    for a, b in zip(p, g, strict=True):
        joint[(a, b)] = joint.get((a, b), 0) + 1
    vi = 0.0
    for (a, b), c in joint.items():
        pab, pa, pb = c / n, p.count(a) / n, g.count(b) / n
        vi -= pab * (math.log(pab / pa) + math.log(pab / pb))  # H(G|P) + H(P|G)
    return vi


def ref_iou(pred: np.ndarray, gt: np.ndarray, a: int, b: int) -> float:
    valid = gt != IGNORE_ID
    pa, gb = (pred == a) & valid, (gt == b) & valid
    return (pa & gb).sum() / max((pa | gb).sum(), 1)


def ref_miou(pred: np.ndarray, gt: np.ndarray) -> float:
    valid = gt != IGNORE_ID
    ps, gs = np.unique(pred[valid]).tolist(), np.unique(gt[valid]).tolist()
    ps += [None] * max(0, len(gs) - len(ps))  # dummy segments score 0
    best = 0.0
    for perm in itertools.permutations(ps, len(gs)):
        total = sum(
            0.0 if a is None else ref_iou(pred, gt, a, b) for a, b in zip(perm, gs, strict=True)
        )
        best = max(best, total)
    return best / len(gs)


def ref_covering(pred: np.ndarray, gt: np.ndarray) -> float:
    valid = gt != IGNORE_ID
    ps, gs = np.unique(pred[valid]), np.unique(gt[valid])
    total = sum(((gt == b) & valid).sum() * max(ref_iou(pred, gt, a, b) for a in ps) for b in gs)
    return total / valid.sum()


def random_case(seed: int, h: int = 6, w: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 3, (h, w)).astype(np.uint8)
    gt[rng.random((h, w)) < 0.15] = IGNORE_ID
    pred = rng.integers(0, rng.integers(1, 5), (h, w)) * 7 - 3  # arbitrary ids, negative included
    return pred, gt


# ---- known answers -------------------------------------------------------------------------------


def test_permuted_labels_score_perfectly():
    gt = np.array([[0, 0, 1, 1], [2, 2, 1, 1], [2, 2, 3, 3]], np.uint8)
    pred = np.choose(gt, [5, 3, 7, 40]).astype(np.int64)
    m = image_metrics(pred, gt)
    assert m["miou"] == pytest.approx(1.0)
    assert m["pixel_acc"] == pytest.approx(1.0)
    assert m["covering"] == pytest.approx(1.0)
    assert m["pri"] == pytest.approx(1.0)
    assert m["vi"] == pytest.approx(0.0, abs=1e-12)


def test_one_segment_against_two_halves():
    gt = halves()  # 8 px of class 0, 8 px of class 1
    pred = np.zeros((4, 4), np.int32)
    # Both IoUs are 8/16; only one class can be matched: (0.5 + 0) / 2.
    assert hungarian_miou(pred, gt) == pytest.approx(0.25)
    assert pixel_accuracy(pred, gt) == pytest.approx(0.5)
    assert segmentation_covering(pred, gt) == pytest.approx(0.5)
    # 2*C(8,2) = 56 agreeing pairs (same half) of C(16,2) = 120; the 64 cross pairs disagree.
    assert rand_index(pred, gt) == pytest.approx(56 / 120)
    assert variation_of_information(pred, gt) == pytest.approx(math.log(2))


def test_two_halves_against_one_class():
    gt = np.zeros((4, 4), np.uint8)
    pred = halves()
    assert hungarian_miou(pred, gt) == pytest.approx(0.5)
    assert pixel_accuracy(pred, gt) == pytest.approx(1.0)  # over-segmentation is free here
    assert segmentation_covering(pred, gt) == pytest.approx(0.5)
    assert rand_index(pred, gt) == pytest.approx(56 / 120)
    assert variation_of_information(pred, gt) == pytest.approx(math.log(2))


def test_ignored_pixels_do_not_count():
    gt = halves(4, 6)
    gt[:, 2] = IGNORE_ID  # a column of the left half is unlabelled
    gt[0, 0] = IGNORE_ID
    pred = halves(4, 6, 3, 9).astype(np.int32)
    pred[:, 2] = 9  # wrong, but ignored
    pred[0, 0] = 42  # an extra segment living only on an ignored pixel
    m = image_metrics(pred, gt)
    assert m == pytest.approx(
        {"miou": 1.0, "pixel_acc": 1.0, "covering": 1.0, "pri": 1.0, "vi": 0.0}
    )
    c = contingency(pred, gt)
    assert c.n == 24 - 5
    assert IGNORE_ID not in c.gt_ids and 42 not in c.pred_ids


def test_no_valid_pixel_gives_nan_and_is_skipped_by_meter():
    gt = np.full((3, 3), IGNORE_ID, np.uint8)
    pred = np.zeros((3, 3), np.int32)
    assert all(math.isnan(v) for v in image_metrics(pred, gt).values())
    meter = SegmentationMeter()
    meter.update(pred, gt, "empty.png")
    meter.update(halves(), halves())
    out = meter.compute()
    assert meter.n_images == 1
    assert out["miou"] == pytest.approx(1.0) and out["miou_dataset"] == pytest.approx(1.0)


def test_unmatched_gt_classes_score_zero():
    gt = np.array([[0, 1, 2, 3]], np.uint8)
    pred = np.array([[0, 0, 1, 1]], np.int32)
    # Two segments of 2 px each against four 1 px classes: two matches of IoU 1/2, two zeros.
    assert hungarian_miou(pred, gt) == pytest.approx((0.5 + 0.5) / 4)


def test_hungarian_beats_greedy():
    # Class 0 = 9 px, class 1 = 3 px; segment B = the first 3 px, segment A = the other 9.
    # IoU(A,0) = 6/12 is the largest entry, so greedy takes it and leaves B on class 1 (IoU 0):
    # mean 0.25. The optimum is A -> class 1 (3/9) and B -> class 0 (3/9): mean 1/3.
    gt = np.array([[0] * 9 + [1] * 3], np.uint8)
    pred = np.array([[7] * 3 + [2] * 9], np.int32)
    assert ref_iou(pred, gt, 2, 0) == pytest.approx(0.5)
    assert hungarian_miou(pred, gt) == pytest.approx(1 / 3)


@pytest.mark.parametrize("seed", range(12))
def test_against_brute_force_references(seed: int):
    pred, gt = random_case(seed)
    m = image_metrics(pred, gt)
    assert m["pri"] == pytest.approx(ref_rand_index(pred, gt))
    assert m["vi"] == pytest.approx(ref_vi(pred, gt))
    assert m["miou"] == pytest.approx(ref_miou(pred, gt))
    assert m["covering"] == pytest.approx(ref_covering(pred, gt))
    # relabelling the prediction changes nothing
    _, inv = np.unique(pred, return_inverse=True)
    assert image_metrics(100 - inv.reshape(pred.shape), gt) == pytest.approx(m)


def test_vi_is_in_nats_and_symmetric():
    gt = np.array([[0, 1, 2, 3]], np.uint8)
    pred = np.zeros((1, 4), np.int32)
    assert variation_of_information(pred, gt) == pytest.approx(math.log(4))
    a, b = random_case(3)
    b = np.where(b == IGNORE_ID, 0, b)
    assert variation_of_information(a, b) == pytest.approx(
        variation_of_information(b.astype(np.int64), (a - a.min()).astype(np.uint8))
    )


# ---- dataset level -------------------------------------------------------------------------------


def test_dataset_miou_penalizes_inconsistent_ids():
    gt = halves()
    consistent, inconsistent = SegmentationMeter(), SegmentationMeter()
    for pred in (halves(4, 4, 0, 1), halves(4, 4, 0, 1)):
        consistent.update(pred.astype(np.int32), gt)
    for pred in (halves(4, 4, 0, 1), halves(4, 4, 1, 0)):  # ids swapped in the second frame
        inconsistent.update(pred.astype(np.int32), gt)
    assert consistent.compute()["miou"] == pytest.approx(1.0)
    assert inconsistent.compute()["miou"] == pytest.approx(1.0)  # per image: fine
    assert consistent.compute()["miou_dataset"] == pytest.approx(1.0)
    # Summed confusion [[8, 8], [8, 8]]: each IoU = 8 / (16 + 16 - 8) = 1/3.
    assert inconsistent.compute()["miou_dataset"] == pytest.approx(1 / 3)
    assert inconsistent.dataset_class_iou() == pytest.approx({0: 1 / 3, 1: 1 / 3})


def test_meter_means_match_per_image_values():
    meter = SegmentationMeter()
    cases = [random_case(s) for s in range(4)]
    per = [meter.update(p, g, f"img{i}.png") for i, (p, g) in enumerate(cases)]
    out = meter.compute()
    assert set(out) == set(METRIC_KEYS)
    for key in ("miou", "pixel_acc", "covering", "pri", "vi"):
        assert out[key] == pytest.approx(np.mean([s[key] for s in per]))
    # one matching over the summed confusion matrix, done by hand
    big_p = np.concatenate([p for p, _ in cases], axis=1)
    big_g = np.concatenate([g for _, g in cases], axis=1)
    assert out["miou_dataset"] == pytest.approx(hungarian_miou(big_p, big_g))
    assert meter.names == ["img0.png", "img1.png", "img2.png", "img3.png"]


def test_empty_meter_is_nan():
    assert all(math.isnan(v) for v in SegmentationMeter().compute().values())


# ---- bad input -----------------------------------------------------------------------------------


def test_shape_mismatch_names_the_file():
    meter = SegmentationMeter()
    with pytest.raises(
        ValueError, match=r"masks/frame_007\.png: prediction is 4x5 \(HxW\) but ground truth is 4x4"
    ):
        meter.update(np.zeros((4, 5), np.int32), halves(), name="masks/frame_007.png")
    with pytest.raises(ValueError, match="prediction is 4x5"):
        hungarian_miou(np.zeros((4, 5), np.int32), halves())
    assert meter.per_image == []


def test_rejects_non_label_maps():
    with pytest.raises(ValueError, match="integer ids"):
        hungarian_miou(np.zeros((4, 4), np.float32), halves())
    with pytest.raises(ValueError, match="2-D"):
        hungarian_miou(np.zeros((4, 4, 3), np.int32), halves())


def test_many_to_one_ceiling_of_the_research_script():
    """scripts/research/per_pixel_ceiling.py: a split class merges back to 1.0, two merged
    classes stay below it (a ceiling that only merges cannot undo a mix)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "research" / "per_pixel_ceiling.py"
    spec = importlib.util.spec_from_file_location("per_pixel_ceiling", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gt = np.repeat(np.array([[0, 0, 1, 1]], np.uint8), 4, 0)
    split = np.repeat(np.array([[0, 2, 1, 1]], np.uint8), 4, 0)
    assert module.many_to_one_miou(split, gt) == 1.0
    assert hungarian_miou(split, gt) < 1.0
    mixed = np.zeros_like(gt)
    assert module.many_to_one_miou(mixed, gt) == pytest.approx(0.25)
