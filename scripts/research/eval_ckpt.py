"""Score checkpoints on a cached Crafter split (npz from make_cache.py): per pixel and pooled.

Usage: python scripts/research/eval_ckpt.py CKPT [CKPT ...] [--cache data/research/crafter_val.npz] [--crf]
Inference goes through ``wnet_seg.inference.Segmenter`` (the same path as wnet-seg-evaluate);
"tiles" is the default output (tile pooling), "per pixel" the argmax with ``tiles=off``.
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
    ap.add_argument("ckpt", nargs="+")
    ap.add_argument("--cache", default="data/research/crafter_val.npz")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--crf", action="store_true")
    a = ap.parse_args()
    d = np.load(a.cache)
    images, masks = d["images"][: a.n], d["masks"][: a.n]
    for ckpt in a.ckpt:
        seg = Segmenter.from_checkpoint(ckpt, crf=CRFConfig() if a.crf else None)
        t0 = time.time()
        meters = {"per pixel": SegmentationMeter(), "tiles": SegmentationMeter()}
        for i in range(0, len(images), 8):
            batch, gts = list(images[i : i + 8]), masks[i : i + 8]
            outputs = {
                "per pixel": seg.segment_many(batch, tiles=False),
                "tiles": seg.segment_many(batch),
            }
            for key, preds in outputs.items():
                for p, m in zip(preds, gts, strict=True):
                    meters[key].update(p, m)
        scores = {k: m.compute() for k, m in meters.items()}
        print(
            f"{ckpt} on {a.cache} ({len(images)} frames, crf={a.crf}): "
            + "  ".join(
                f"{k} miou {r['miou']:.3f} miou_dataset {r['miou_dataset']:.3f}"
                for k, r in scores.items()
            )
            + f" ({time.time() - t0:.0f}s)"
        )


if __name__ == "__main__":
    main()
