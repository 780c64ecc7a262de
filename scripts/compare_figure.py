"""Side-by-side figure: input | W-Net (default output) | a classical baseline, one row per frame.

    python scripts/compare_figure.py --images data/bench/crafter/test/images/000000.png \
        data/bench/crafter/test/images/000008.png --masks --baseline felzenszwalb kmeans_rgb+tiles \
        --out docs/compare_crafter.png
    python scripts/compare_figure.py --images data/mario/images/000000.png --out docs/compare_mario.png --no-input

``--no-input`` leaves the input column out (for frames of commercial games, whose art must not be
committed: only the label maps are drawn). The W-Net column is what ``wnet-seg-segment`` writes
by default (tile pooling where the frame has a tile grid; ``--crf`` adds the CRF, ``--no-tiles``
turns pooling off). Baselines that need K get the W-Net's number of segments in that frame;
``<name>+tiles`` applies the same tile pooling to a baseline. ``--masks`` adds the ground truth
(``masks/`` beside ``images/``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from wnet_seg.baselines import segment_baseline
from wnet_seg.data.io import load_mask, load_rgb
from wnet_seg.inference import Segmenter
from wnet_seg.palette import colorize
from wnet_seg.postprocess.crf import CRFConfig
from wnet_seg.postprocess.tiles import TileConfig, detect_tile_grid, pool_frame_labels


def _label(img: np.ndarray, text: str) -> np.ndarray:
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    draw.rectangle([0, 0, 8 + 6 * len(text), 12], fill=(0, 0, 0))
    draw.text((3, 0), text, fill=(255, 255, 255))
    return np.asarray(pil)


def _baseline(name: str, rgb: np.ndarray, k: int) -> np.ndarray:
    """A baseline's labels; ``<name>+tiles`` pools them per tile like the W-Net's."""
    base_name, _, suffix = name.partition("+")
    labels = segment_baseline(base_name, rgb, k)
    if suffix == "tiles":
        grid = detect_tile_grid(rgb, TileConfig())
        if grid is not None:
            labels = pool_frame_labels(labels, grid)
    return labels


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--ckpt", default=None, help="default: the shipped checkpoint")
    p.add_argument("--baseline", nargs="+", default=["felzenszwalb"], help="one or more")
    p.add_argument("--masks", action="store_true", help="add the ground-truth column")
    p.add_argument("--no-input", action="store_true", help="draw label maps only")
    p.add_argument("--scale", type=int, default=2, help="nearest-neighbour zoom of the figure")
    p.add_argument("--crf", action="store_true", help="add the dense CRF to the W-Net")
    p.add_argument("--no-tiles", action="store_true", help="no tile pooling")
    args = p.parse_args(argv)
    tiles = None if args.no_tiles else TileConfig()
    seg = Segmenter.from_checkpoint(args.ckpt, crf=CRFConfig() if args.crf else None, tiles=tiles)
    rows = []
    for path in args.images:
        rgb = load_rgb(path)
        result = seg.segment(rgb)
        wnet, pooled = result.output, result.pooled is not None
        name = "W-Net" + (" + CRF" if args.crf else "") + (" + tiles" if pooled else "")
        k = max(2, len(np.unique(wnet)))
        cols = [] if args.no_input else [_label(rgb, "input")]
        if args.masks:
            mask_path = Path(path).parent.parent / "masks" / Path(path).with_suffix(".png").name
            cols.append(_label(colorize(load_mask(mask_path, expected_hw=rgb.shape[:2])), "truth"))
        cols.append(_label(colorize(wnet), name))
        for baseline in args.baseline:
            cols.append(_label(colorize(_baseline(baseline, rgb, k) % 255), baseline))
        rows.append(np.concatenate(cols, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    fig = np.concatenate(rows, axis=0).repeat(args.scale, 0).repeat(args.scale, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(fig).save(args.out)
    print(f"wrote {args.out} ({fig.shape[1]}x{fig.shape[0]})")


if __name__ == "__main__":
    main()
