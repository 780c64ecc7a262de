"""Is the per-pixel output (``tiles=off``) losing by splitting materials or by mixing them?

For each frame the network's per-pixel classes are scored as the benchmark scores them
(Hungarian mIoU: one segment per true class) and with the best many-to-one merge (every
predicted class given to the true class it overlaps most): if merging the network's classes
cannot reach the classical baselines, post-processing will not either, and the network's
features are what has to change.

    python scripts/research/per_pixel_ceiling.py --split val --games minigrid craftax tetris

Uses the shipped checkpoint unless ``--checkpoint`` is given; clean frames; the first
``--limit`` frames of each game's split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from wnet_seg.data.degrade import parse_degradation
from wnet_seg.evaluate import labelled_pairs, load_pair
from wnet_seg.hostinfo import machine_description
from wnet_seg.inference import Segmenter
from wnet_seg.metrics import IGNORE_ID, contingency, hungarian_miou


def many_to_one_miou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean IoU over true classes after giving each predicted class to its majority class."""
    table = contingency(pred, gt, IGNORE_ID).table  # (predicted, true)
    merged = np.zeros((table.shape[1], table.shape[1]), np.int64)
    np.add.at(merged, table.argmax(1), table)
    inter = np.diag(merged).astype(np.float64)
    union = merged.sum(1) + merged.sum(0) - inter
    return float(np.mean(inter / np.maximum(union, 1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="data/bench")
    ap.add_argument("--split", default="val")
    ap.add_argument("--games", nargs="+", default=["minigrid", "craftax", "tetris"])
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args()
    seg = Segmenter.from_checkpoint(args.checkpoint, tiles=None)
    clean = parse_degradation("clean")
    print(
        "| game | Hungarian (benchmark) | many-to-one ceiling | predicted classes | true classes |"
    )
    print("|---|---|---|---|---|")
    for game in args.games:
        root = Path(args.data_dir) / game / args.split
        rows = []
        for image, mask in labelled_pairs(str(root / "images"), str(root / "masks"), args.limit):
            rgb, gt = load_pair(image, mask, clean)
            pred = seg.segment(rgb).labels
            valid = gt != IGNORE_ID
            rows.append(
                (
                    hungarian_miou(pred, gt),
                    many_to_one_miou(pred, gt),
                    len(np.unique(pred[valid])),
                    len(np.unique(gt[valid])),
                )
            )
        h, m, p, t = np.mean(rows, 0)
        print(f"| {game} ({len(rows)} frames) | {h:.3f} | {m:.3f} | {p:.1f} | {t:.1f} |")
    print(f"\n{machine_description()}")


if __name__ == "__main__":
    main()
