"""Quality regression: the shipped checkpoint keeps its measured quality on Crafter test frames.

Frames are rendered here from the test split's worlds (``CRAFTER_BENCHMARK["test"]``, never used
for training or selection) and segmented through the same inference path as ``wnet-seg-evaluate``:
the default output (tile pooling, no CRF) and the plain per-pixel W-Net. Baselines run here too, so
each comparison is measured, not assumed. Measured on these 8 frames (2-core CPU dev box; `pytest -s
tests/test_quality_regression.py` prints them):

| method | per image | dataset |
|---|---|---|
| W-Net + tile pooling (default) | 0.917 | 0.854 |
| exact tile identity (no learning, same grid) | 0.846 | 0.765 |
| W-Net per pixel | 0.458 | 0.321 |
| k-means RGB + local mean, oracle K | 0.453 | 0.071 |
| k-means RGB, oracle K, + the same tile pooling | 0.803 | 0.194 |

The floors sit under those values so a regression fails. The default output must also stay
above the exact tile lookup (the pooling splits sprites from the ground they stand on).
(The shipped model was selected on pooled validation mIoU, so its per-pixel output is not its best
side; the floor for it only guards against a broken network.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CKPT = Path(__file__).resolve().parents[1] / "checkpoints" / "wnet_multigame.ckpt"
N_FRAMES = 8
MIOU_FLOOR = 0.85  # measured 0.917
DATASET_MIOU_FLOOR = 0.74  # measured 0.854
MARGIN_OVER_KMEANS = 0.35  # over k-means + local mean per image; measured +0.464
DATASET_FACTOR_OVER_POOLED_KMEANS = 3.5  # measured 0.854 / 0.194 = 4.4
MARGIN_OVER_TILE_IDENTITY = 0.02  # per image; measured +0.071
RAW_MIOU_FLOOR = 0.40  # the per-pixel network alone; measured 0.458


@pytest.fixture(scope="module")
def test_frames():
    from wnet_seg.capture.crafter import CRAFTER_BENCHMARK, render_crafter_frames

    spec = CRAFTER_BENCHMARK["test"]
    return list(
        render_crafter_frames(
            N_FRAMES, 256, seed=spec.first_world, frames_per_world=spec.frames_per_world
        )
    )


@pytest.mark.skipif(not CKPT.is_file(), reason=f"shipped checkpoint {CKPT} missing")
def test_shipped_checkpoint_keeps_its_quality_on_crafter_test_frames(test_frames):
    from wnet_seg.baselines import segment_baseline
    from wnet_seg.grid import detect
    from wnet_seg.inference import Segmenter
    from wnet_seg.metrics import SegmentationMeter
    from wnet_seg.postprocess.tiles import SignatureIds, TileGrid, pool_tiles
    from wnet_seg.tile_identity import IdentityState, tile_identity

    seg = Segmenter.from_checkpoint(CKPT)
    results = seg.segment_batch([rgb for rgb, _ in test_frames])
    ours, raw, base, pooled_base, lookup = (SegmentationMeter() for _ in range(5))
    state = IdentityState()
    for (rgb, mask), result in zip(test_frames, results, strict=True):
        assert result.output.shape == mask.shape
        ours.update(result.output, mask)
        raw.update(result.labels, mask)
        k = len(set(np.unique(mask).tolist()) - {255})
        base.update(segment_baseline("kmeans_rgb_localmean", rgb, k), mask)
        km = segment_baseline("kmeans_rgb", rgb, k)
        km = np.unique(km, return_inverse=True)[1].reshape(km.shape)
        found = detect(rgb)
        assert found.tile == 16
        grid = TileGrid(16, *found.offset)
        ids = SignatureIds(int(km.max()) + 1, max_id=None)
        pooled_base.update(pool_tiles(km, grid, ids), mask)
        lookup.update(tile_identity(rgb, state, grid=result.grid), mask)
    r, rr, b, pb = ours.compute(), raw.compute(), base.compute(), pooled_base.compute()
    ti = lookup.compute()
    for name, m in [("W-Net + tiles", r), ("W-Net per pixel", rr), ("k-means + local mean", b),
                    ("k-means + tiles", pb), ("tile identity", ti)]:  # fmt: skip
        print(f"{name}: {m['miou']:.3f} per image, {m['miou_dataset']:.3f} dataset")  # pytest -s
    assert np.isfinite(r["miou"]) and np.isfinite(r["miou_dataset"])
    assert r["miou"] >= MIOU_FLOOR, f"W-Net mIoU {r['miou']:.3f} fell below {MIOU_FLOOR}"
    assert r["miou"] >= b["miou"] + MARGIN_OVER_KMEANS, (
        f"W-Net {r['miou']:.3f} is not {MARGIN_OVER_KMEANS} above k-means {b['miou']:.3f}"
    )
    assert r["miou"] >= ti["miou"] + MARGIN_OVER_TILE_IDENTITY, (
        f"W-Net {r['miou']:.3f} is not {MARGIN_OVER_TILE_IDENTITY} above tile identity "
        f"{ti['miou']:.3f}"
    )
    # Per image, also above k-means given the oracle K and the same pooling (+0.089).
    assert r["miou"] >= pb["miou"], f"W-Net {r['miou']:.3f} < pooled k-means {pb['miou']:.3f}"
    assert r["miou_dataset"] >= DATASET_MIOU_FLOOR, f"dataset mIoU {r['miou_dataset']:.3f}"
    assert r["miou_dataset"] >= DATASET_FACTOR_OVER_POOLED_KMEANS * pb["miou_dataset"], (
        f"dataset mIoU {r['miou_dataset']:.3f} not {DATASET_FACTOR_OVER_POOLED_KMEANS}x pooled "
        f"k-means {pb['miou_dataset']:.3f}"
    )
    assert rr["miou"] >= RAW_MIOU_FLOOR, f"per-pixel W-Net mIoU {rr['miou']:.3f}"
