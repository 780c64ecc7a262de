"""What the network adds to the pooling: the default output of a checkpoint against the same
pipeline with a stand-in network that gives every pixel class 0 (signatures then come from the
tiles' colours, the run's tile memory and the sprite split alone).

    python scripts/research/null_network.py --split val --conditions clean jpeg:85

Scores the validation split by default (choices are made there); prints per-image / dataset-level
mIoU per game and condition, through the same :class:`wnet_seg.evaluate.Scorer` as the benchmark.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from wnet_seg.data.degrade import parse_degradation
from wnet_seg.evaluate import Scorer, labelled_pairs
from wnet_seg.hostinfo import machine_description
from wnet_seg.inference import Segmenter, SegmentOptions


class NullSegmenter(Segmenter):
    """The pipeline with a network that puts every pixel in class 0 (probability 1)."""

    def encode(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        out = np.zeros((len(frames), self.num_classes, *frames.shape[1:3]), np.float32)
        out[:, 0] = 1.0
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="data/bench")
    ap.add_argument("--split", default="val")
    ap.add_argument(
        "--games",
        nargs="+",
        default=["crafter", "craftax", "craftax-classic", "minigrid", "tetris"],
    )
    ap.add_argument("--conditions", nargs="+", default=["clean", "jpeg:85"])
    ap.add_argument("--limit", type=int, default=32)
    ap.add_argument("--ckpt", default=None, help="default: the shipped checkpoint")
    args = ap.parse_args()
    print("| game | condition | checkpoint | stand-in network (class 0 everywhere) |")
    print("|---|---|---|---|")
    for game in args.games:
        root = Path(args.data_dir) / game / args.split
        pairs = labelled_pairs(str(root / "images"), str(root / "masks"), args.limit)
        for cond in args.conditions:
            options = SegmentOptions()
            real = Segmenter.from_checkpoint(args.ckpt, options=options)
            null = NullSegmenter(real.net, options)
            scorer = Scorer(options, segmenters={"ckpt/": real, "null/": null})
            scorer.score_pairs(pairs, parse_degradation(cond))
            res = scorer.scores.results()
            cell = [
                f"{res[m]['miou']:.3f} / {res[m]['miou_dataset']:.3f}"
                for m in ("ckpt/wnet+tiles", "null/wnet+tiles")
            ]
            print(f"| {game} | {cond} | {cell[0]} | {cell[1]} |", flush=True)
    print(f"\nmIoU per image / dataset-level. Machine: {machine_description()}.")


if __name__ == "__main__":
    main()
