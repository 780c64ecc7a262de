"""Side-by-side figure: input | truth | W-Net (default output) | other methods, one row per frame.

    python scripts/compare_figure.py --dataset data/bench/crafter/test --frames 0 8 \
        --methods wnet+tiles tile_identity felzenszwalb --degrade clean bilinear:1.5+jpeg:85 \
        --out docs/compare_crafter.png
    python scripts/compare_figure.py --dataset data/bench/tetris/test --frames 3 --no-input ...

Every column is an output of :class:`wnet_seg.evaluate.Scorer` (the same scoring path as
``wnet-seg-evaluate`` and the benchmark, the folder's grid voted on its first frames), drawn with
the fixed palette and its per-frame mIoU. ``--degrade`` draws each frame under each condition (a
row per frame and condition). ``--no-input`` leaves the input out (commercial art must not be
committed: label maps only).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from wnet_seg.data.degrade import parse_degradation
from wnet_seg.evaluate import IDENTITY, Scorer, _frames, dataset_tile, labelled_pairs, load_pair
from wnet_seg.inference import VOTE_FRAMES, Segmenter, segment_options
from wnet_seg.report import colorize_labels


def _label(img: np.ndarray, text: str) -> np.ndarray:
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    draw.rectangle([0, 0, 8 + 6 * len(text), 12], fill=(0, 0, 0))
    draw.text((3, 0), text, fill=(255, 255, 255))
    return np.asarray(pil)


def _fit(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour to ``hw`` (frames of one row share a size; labels never blurred)."""
    return np.asarray(Image.fromarray(img).resize((hw[1], hw[0]), Image.Resampling.NEAREST))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="a folder with images/ and masks/")
    p.add_argument("--frames", type=int, nargs="+", default=[0], help="frame indices")
    p.add_argument("--methods", nargs="+", default=["wnet+tiles", "tile_identity", "felzenszwalb"])
    p.add_argument("--degrade", nargs="+", default=["clean"], help="conditions, one row each")
    p.add_argument("--ckpt", default=None, help="default: the shipped checkpoint")
    p.add_argument("--no-input", action="store_true", help="draw label maps only")
    p.add_argument("--scale", type=int, default=2, help="nearest-neighbour zoom of the figure")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    pairs = labelled_pairs(a.dataset, None, None)
    options = segment_options()
    wnet = any(m.startswith("wnet") for m in a.methods)
    classical = sorted(
        {m.split("+")[0] for m in a.methods if not m.startswith("wnet")} - set(IDENTITY)
    )
    rows = []
    for spec in a.degrade:
        condition = parse_degradation(spec)
        scorer = Scorer(
            options,
            segmenters={"": Segmenter.from_checkpoint(a.ckpt, options=options)} if wnet else {},
            baselines=classical,
            identity=[m for m in a.methods if m in IDENTITY],
            oracle_tile=dataset_tile(a.dataset),
            scale=condition.scale,
        )
        scorer.fit_folder(list(_frames(pairs[:VOTE_FRAMES], condition)))
        for i in a.frames:
            rgb, gt = load_pair(*pairs[i], condition)
            frame = scorer.score(rgb, gt, pairs[i][0].name)
            hw = (256, round(256 * rgb.shape[1] / rgb.shape[0]))
            cols = [] if a.no_input else [_label(_fit(rgb, hw), f"input ({condition})")]
            cols.append(_label(_fit(colorize_labels(gt), hw), "truth"))
            for m in a.methods:
                score = frame.scores[m]
                text = m if math.isnan(score) else f"{m} {score:.2f}"
                cols.append(_label(_fit(colorize_labels(frame.outputs[m]), hw), text))
            rows.append(np.concatenate(cols, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    fig = np.concatenate(rows, axis=0).repeat(a.scale, 0).repeat(a.scale, 1)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(fig).save(a.out)
    print(f"wrote {a.out} ({fig.shape[1]}x{fig.shape[0]})")


if __name__ == "__main__":
    main()
