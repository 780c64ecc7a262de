"""Score a checkpoint on a cached Crafter split (npz from make_cache.py), with and without CRF.

Usage: python scripts/research/eval_ckpt.py CKPT [--cache data/research/crafter_val.npz] [--crf]
Inference goes through ``wnet_seg.inference.Segmenter`` (the same path as wnet-seg-evaluate).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from wnet_seg.inference import Segmenter
from wnet_seg.metrics import SegmentationMeter
from wnet_seg.postprocess.crf import CRFConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--cache", default="data/research/crafter_val.npz")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--crf", action="store_true")
    a = ap.parse_args()
    d = np.load(a.cache)
    images, masks = d["images"][: a.n], d["masks"][: a.n]
    seg = Segmenter.from_checkpoint(a.ckpt, crf=CRFConfig() if a.crf else None)
    t0 = time.time()
    meter = SegmentationMeter()
    for i in range(0, len(images), 8):
        for p, m in zip(seg.segment_many(list(images[i : i + 8])), masks[i : i + 8], strict=True):
            meter.update(p, m)
    r = meter.compute()
    print(
        f"{a.ckpt} on {a.cache} ({len(images)} frames, crf={a.crf}): miou {r['miou']:.3f} "
        f"miou_dataset {r['miou_dataset']:.3f} pixel_acc {r['pixel_acc']:.3f} "
        f"({time.time() - t0:.0f}s)"
    )


if __name__ == "__main__":
    main()
