"""How well does an affinity feature space separate Crafter's classes? A cheap proxy: one k-means
(K clusters) fitted on 40,000 random pixels of all frames, every pixel labelled by its nearest
centre, scored with per-image and dataset-level Hungarian mIoU (plus per-class IoU with --per-class).

Usage: python scripts/research/descriptor_kmeans.py [--cache data/research/crafter_val.npz] [--n 32]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.cluster import KMeans

from wnet_seg.capture.crafter import CRAFTER_CLASSES
from wnet_seg.losses.features import texture_features
from wnet_seg.metrics import SegmentationMeter, _hungarian_mean_iou, contingency


def variants(x: torch.Tensor) -> dict[str, torch.Tensor]:
    def tf(**kw):
        return texture_features(x, **kw)

    h16 = tf(scales=(16,), window="homogeneous")
    return {
        "rgb": x,
        "mean9": tf(scales=(9,), std_weight=0),
        "mean16": tf(scales=(16,), std_weight=0),
        "mean16+std16": tf(scales=(16,)),
        "rgb+mean16+std16": tf(scales=(16,), rgb_weight=1.0),
        "mean8+mean16+std16": torch.cat([tf(scales=(8,), std_weight=0), tf(scales=(16,))], 1),
        "homog16 (mean+std)": h16,
        "homog16+0.3rgb": tf(scales=(16,), window="homogeneous", rgb_weight=0.3),
        "homog8": tf(scales=(8,), window="homogeneous"),
        "homog16+0.5homog4": torch.cat([h16, 0.5 * tf(scales=(4,), window="homogeneous")], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="data/research/crafter_val.npz")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--per-class", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    d = np.load(a.cache)
    images, masks = d["images"][: a.n], d["masks"][: a.n]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    rng = np.random.default_rng(0)
    for name, fe in variants(x).items():
        f = fe.permute(0, 2, 3, 1).reshape(-1, fe.shape[1]).numpy()
        idx = rng.choice(len(f), 40000, replace=False)
        km = KMeans(a.k, n_init=2, random_state=0).fit(f[idx])
        lab = km.predict(f).reshape(masks.shape)
        meter, per = SegmentationMeter(), {}
        for p, m in zip(lab, masks, strict=True):
            meter.update(p, m)
            c = contingency(p, m)
            for g, v in zip(c.gt_ids, _hungarian_mean_iou(c.table)[1], strict=True):
                per.setdefault(int(g), []).append(v)
        r = meter.compute()
        line = f"{name:22s} K={a.k} miou {r['miou']:.3f} miou_dataset {r['miou_dataset']:.3f}"
        if a.per_class:
            line += " " + str(
                {CRAFTER_CLASSES[g]: round(float(np.mean(v)), 2) for g, v in sorted(per.items())}
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
