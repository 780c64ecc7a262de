"""The tile-pooling numbers of docs/experiments.md: pooling variants, per-class IoU, grid statistics.

    python scripts/research/tile_pooling.py variants --ckpt CKPT [--cache data/research/crafter_val.npz]
    python scripts/research/tile_pooling.py per-class --ckpt CKPT
    python scripts/research/tile_pooling.py grid-stats data/mario/images data/atari/Pong/images ...

The previous release's checkpoint (the one the variants table was measured on) is in git history:
``git show 91c6a67:checkpoints/wnet_crafter.ckpt > /tmp/wnet_crafter_v2.ckpt``.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

from wnet_seg.data.io import list_images, load_rgb
from wnet_seg.grid import detect
from wnet_seg.inference import Segmenter
from wnet_seg.metrics import SegmentationMeter, _hungarian_mean_iou, contingency
from wnet_seg.postprocess.crf import CRFConfig
from wnet_seg.postprocess.tiles import (
    SignatureIds,
    TileConfig,
    TileGrid,
    mosaic,
    pool_tiles,
    tile_index,
)

CLASSES = Path("data/bench/crafter/val/classes.txt")


def _frames(cache: str) -> tuple[np.ndarray, np.ndarray]:
    d = np.load(cache)
    return d["images"], d["masks"]


def detect_tile_grid(rgb: np.ndarray) -> TileGrid | None:
    """The tile grid the pipeline's detector (wnet_seg.grid) finds, as a TileGrid."""
    g = detect(rgb)
    return None if g.tile is None else TileGrid(g.tile, *g.offset)


def whole_tiles(rgb: np.ndarray, grid: TileGrid) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Whole tiles ``(N, s, s, 3)`` row-major and their block ``(y0, x0, ny, nx)``."""
    s, y0, x0 = grid.size, grid.offset_y, grid.offset_x
    ny, nx = (rgb.shape[0] - y0) // s, (rgb.shape[1] - x0) // s
    crop = rgb[y0 : y0 + ny * s, x0 : x0 + nx * s]
    tiles = crop.reshape(ny, s, nx, s, -1).transpose(0, 2, 1, 3, 4).reshape(ny * nx, s, s, -1)
    return tiles, (y0, x0, ny, nx)


def distinct(tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One index per distinct (exact) tile and each tile's index into them."""
    _, first, inverse = np.unique(tiles.reshape(len(tiles), -1), axis=0, return_index=True,
                                  return_inverse=True)  # fmt: skip
    return first, inverse.reshape(-1)


def _majority(probs: np.ndarray, grid) -> np.ndarray:
    """Each tile takes the class with the largest summed probability."""
    k, h, w = probs.shape
    ty, tx = tile_index(h, w, grid)
    tile_of = ty[:, None] * (tx[-1] + 1) + tx[None, :]
    sums = np.zeros((tile_of.max() + 1, k))
    for c in range(k):
        sums[:, c] = np.bincount(tile_of.ravel(), weights=probs[c].ravel(), minlength=len(sums))
    return sums.argmax(1)[tile_of]


def _tile_dominant(labels: np.ndarray, grid, k: int) -> np.ndarray:
    """Every pixel gets its tile's most frequent class."""
    h, w = labels.shape
    ty, tx = tile_index(h, w, grid)
    tile_of = ty[:, None] * (tx[-1] + 1) + tx[None, :]
    counts = np.bincount((tile_of * k + labels).ravel(), minlength=(tile_of.max() + 1) * k)
    return counts.reshape(-1, k).argmax(1)[tile_of]


def _pure_tiles_only(labels: np.ndarray, grid, k: int, ids: SignatureIds, share: float):
    """Pure tiles pooled; in mixed tiles the dominant class's pixels keep it, the rest the mixture."""
    pooled = pool_tiles(labels, grid, ids, share)
    dominant = _tile_dominant(labels, grid, k)
    return np.where((pooled < k) | (labels == dominant), dominant, pooled)


def _out_of_context_labels(seg: Segmenter, img: np.ndarray, grid) -> np.ndarray:
    """Per-pixel classes of every whole tile segmented alone (3x3 mosaic, centre copy)."""
    out = seg.segment(img).labels.astype(np.int64)
    tiles, (y0, x0, ny, nx) = whole_tiles(img, grid)
    first, inverse = distinct(tiles)
    s = grid.size
    p = seg.encode(np.stack([mosaic(tiles[i], 3) for i in first]))
    centre = p[:, :, s : 2 * s, s : 2 * s].argmax(1)[inverse]
    out[y0 : y0 + ny * s, x0 : x0 + nx * s] = (
        centre.reshape(ny, nx, s, s).transpose(0, 2, 1, 3).reshape(ny * s, nx * s)
    )
    return out


def _carve_out(seg: Segmenter, img: np.ndarray, grid) -> np.ndarray:
    """Out-of-context signatures, then pixels of a class that forms pure tiles go back to it."""
    base = seg.segment(img).output.astype(np.int64)
    out = base.copy()
    k = seg.num_classes
    pure = set(np.unique(base[base < k]).tolist())
    table = {i: sig for sig, i in seg.signature_ids.table.items()}
    alone = _out_of_context_labels(seg, img, grid)
    for i in np.unique(base[base >= k]):
        sig = table[int(i)]
        if all(c in pure for c in sig):
            continue
        for c in sig:
            if c in pure:
                out[(base == i) & (alone == c)] = c
    return out


def variants(args) -> None:
    images, masks = _frames(args.cache)
    k_probe = Segmenter.from_checkpoint(args.ckpt, tiles=None)
    k = k_probe.num_classes
    rows: dict[str, SegmentationMeter] = collections.defaultdict(SegmentationMeter)
    shared = collections.defaultdict(lambda: SignatureIds(k, max_id=None))
    ooc = {
        s: Segmenter.from_checkpoint(args.ckpt, tiles=TileConfig(min_share=s)) for s in args.shares
    }
    carve = Segmenter.from_checkpoint(args.ckpt, tiles=TileConfig(min_share=0.1))
    crf = Segmenter.from_checkpoint(args.ckpt, crf=CRFConfig(), tiles=None)
    colour_ids: dict[int, int] = {}
    colour_sigs = SignatureIds(2**24, max_id=None)  # colour ids < 2^24, mixtures above
    for img, m in zip(images, masks, strict=True):
        grid = detect_tile_grid(img)
        probs = k_probe.segment(img).probs  # clean frames: native = full resolution
        raw = probs.argmax(0)
        rows["W-Net per pixel"].update(raw, m)
        crf_labels = crf.segment(img).output
        rows["+ CRF"].update(crf_labels, m)
        rows["majority class per tile"].update(_majority(probs, grid), m)
        for s in (0.1, 0.2):
            rows[f"signature in context, min_share {s}"].update(
                pool_tiles(raw, grid, shared[f"ic{s}"], s), m
            )
        rows["same after CRF (0.2)"].update(pool_tiles(crf_labels, grid, shared["crf"], 0.2), m)
        rows["pure tiles pooled, mixed kept per pixel (0.1)"].update(
            _pure_tiles_only(raw, grid, k, shared["pure"], 0.1), m
        )
        for s, seg in ooc.items():
            rows[f"out of context, min_share {s}"].update(seg.segment(img).output, m)
        rows["out of context 0.1 + carve-out"].update(_carve_out(carve, img, grid), m)
        packed = (
            (img[..., 0].astype(np.int64) << 16) | (img[..., 1].astype(np.int64) << 8) | img[..., 2]
        )
        values, inverse = np.unique(packed, return_inverse=True)
        lookup = np.array([colour_ids.setdefault(int(v), len(colour_ids)) for v in values])
        dense = lookup[inverse].reshape(packed.shape)
        rows["exact colours as textons (0.2)"].update(_colour_pool(dense, grid, colour_sigs), m)
    print(f"{args.ckpt} on {args.cache} ({len(images)} frames)")
    print("| variant | img | ds |\n|---|---|---|")
    for name, meter in rows.items():
        r = meter.compute()
        print(f"| {name} | {r['miou']:.3f} | {r['miou_dataset']:.3f} |")


def _colour_pool(dense: np.ndarray, grid, ids: SignatureIds) -> np.ndarray:
    """Signatures of exact colours (ids dense per run), min_share 0.2, tile by tile."""
    h, w = dense.shape
    ty, tx = tile_index(h, w, grid)
    tile_of = ty[:, None] * (tx[-1] + 1) + tx[None, :]
    out = np.empty(tile_of.max() + 1, dtype=np.int64)
    for t in range(len(out)):
        vals, counts = np.unique(dense[tile_of == t], return_counts=True)
        sig = tuple(int(v) for v in vals[counts >= 0.2 * counts.sum()]) or (
            int(vals[counts.argmax()]),
        )
        out[t] = ids.assign(sig, sig[0])
    return out[tile_of]


def per_class(args) -> None:
    images, masks = _frames(args.cache)
    names = [line.split()[1] for line in CLASSES.read_text().strip().splitlines()]
    seg = Segmenter.from_checkpoint(args.ckpt)
    k = seg.num_classes
    ic = SignatureIds(k, max_id=None)
    acc = {
        key: collections.defaultdict(list) for key in ("per pixel", "in context", "out of context")
    }
    for img, m in zip(images, masks, strict=True):
        result = seg.segment(img)
        preds = {
            "per pixel": result.labels,
            "in context": pool_tiles(result.labels, detect_tile_grid(img), ic, 0.1),
            "out of context": result.output,
        }
        for key, pred in preds.items():
            table = contingency(pred, m)
            per = _hungarian_mean_iou(table.table)[1]
            for gid, v in zip(table.gt_ids, per, strict=True):
                acc[key][int(gid)].append(v)
    for key, d in acc.items():
        print(key + ": " + ", ".join(f"{names[g]} {np.mean(v):.2f}" for g, v in sorted(d.items())))


def grid_stats(args) -> None:
    for folder in args.folders:
        found = collections.Counter()
        conf = []
        for path in list_images(Path(folder)):
            g = detect(load_rgb(path))
            conf.append(g.confidence)
            found[g.tile] += 1
        print(
            f"{folder}: {len(conf)} frames, grid confidence {min(conf):.2f}-{max(conf):.2f}, "
            f"grids found {dict(found)}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("variants", "per-class"):
        q = sub.add_parser(name)
        q.add_argument("--ckpt", default=None, help="default: the shipped checkpoint")
        q.add_argument("--cache", default="data/research/crafter_val.npz")
        q.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    g = sub.add_parser("grid-stats")
    g.add_argument("folders", nargs="+")
    args = p.parse_args()
    {"variants": variants, "per-class": per_class, "grid-stats": grid_stats}[args.cmd](args)


if __name__ == "__main__":
    main()
