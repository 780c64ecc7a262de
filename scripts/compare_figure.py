"""Side-by-side figure: input | W-Net (+ CRF) | a classical baseline, one row per frame.

    python scripts/compare_figure.py --images data/crafter/test/images/000000.png --out docs/compare_crafter.png
    python scripts/compare_figure.py --images data/mario/images/000000.png --out docs/compare_mario.png --no-input

``--no-input`` leaves the input column out (for frames of commercial games, whose art must not be
committed: only the label maps are drawn). Baselines that need K get the W-Net's number of
segments in that frame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from wnet_seg.baselines import segment_baseline
from wnet_seg.data.io import load_rgb
from wnet_seg.inference import Segmenter
from wnet_seg.palette import colorize
from wnet_seg.postprocess.crf import CRFConfig


def _label(img: np.ndarray, text: str) -> np.ndarray:
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    draw.rectangle([0, 0, 8 + 6 * len(text), 12], fill=(0, 0, 0))
    draw.text((3, 0), text, fill=(255, 255, 255))
    return np.asarray(pil)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--ckpt", default=None, help="default: the shipped checkpoint")
    p.add_argument("--baseline", default="felzenszwalb")
    p.add_argument("--no-input", action="store_true", help="draw label maps only")
    p.add_argument("--scale", type=int, default=2, help="nearest-neighbour zoom of the figure")
    args = p.parse_args(argv)
    seg = Segmenter.from_checkpoint(args.ckpt, crf=CRFConfig())
    rows = []
    for path in args.images:
        rgb = load_rgb(path)
        wnet = seg.segment(rgb, crf=True)
        k = max(2, len(np.unique(wnet)))
        base = segment_baseline(args.baseline, rgb, k)
        cols = [] if args.no_input else [_label(rgb, "input")]
        cols += [_label(colorize(wnet), "W-Net + CRF"), _label(colorize(base % 255), args.baseline)]
        rows.append(np.concatenate(cols, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    fig = np.concatenate(rows, axis=0).repeat(args.scale, 0).repeat(args.scale, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(fig).save(args.out)
    print(f"wrote {args.out} ({fig.shape[1]}x{fig.shape[0]})")


if __name__ == "__main__":
    main()
