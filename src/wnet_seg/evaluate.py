"""Evaluate the W-Net (raw, + CRF, + tile pooling) and classical baselines on the same labelled frames.

    wnet-seg-evaluate images=data/crafter/test                # images/ + masks/ inside
    wnet-seg-evaluate images=shots/ masks=gt/ ckpt=run/checkpoints/last.ckpt baselines=[felzenszwalb]
    wnet-seg-evaluate images=data/crafter/test ckpt=none      # baselines only

Writes ``output/metrics.json``, ``output/metrics.md`` (the table it prints) and ``output/metrics.png``
(a bar chart). Baselines that need a number of segments get the number of ground-truth classes in
each image (an oracle the W-Net, with its fixed K, does not get). ``wnet+tiles`` is the default
output of ``wnet-seg-segment`` (tile pooling, :mod:`wnet_seg.postprocess.tiles`); with
``baseline_tiles=true`` every baseline is also scored after the same pooling (``<name>+tiles``), so
the effect of the pooling and of the W-Net can be told apart.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from PIL import Image, ImageDraw
from tqdm import tqdm

from wnet_seg.baselines import BASELINES, segment_baseline
from wnet_seg.data.datasets import screenshot_files
from wnet_seg.data.io import IGNORE_ID, ImageReadError, load_mask, load_rgb
from wnet_seg.data.native_scale import resolve_grid
from wnet_seg.metrics import SegmentationMeter
from wnet_seg.postprocess.crf import crf_config
from wnet_seg.postprocess.tiles import detect_tile_grid, pool_frame_labels, tile_config

log = logging.getLogger("wnet_seg.evaluate")

COLUMNS = [
    ("miou", "mIoU (per image)"),
    ("miou_dataset", "mIoU (dataset)"),
    ("pixel_acc", "pixel acc"),
    ("covering", "SC"),
    ("pri", "PRI"),
    ("vi", "VI"),
]


@dataclass
class EvaluateConf:
    images: str = "???"
    masks: str | None = None
    ckpt: str | None = None
    output: str = "evaluation"
    baselines: list[str] = field(
        default_factory=lambda: ["kmeans_rgb", "kmeans_rgb_localmean", "felzenszwalb", "slic"]
    )
    crf: bool = True
    crf_params: dict[str, Any] = field(default_factory=dict)
    tiles: str = "auto"
    tiles_params: dict[str, Any] = field(default_factory=dict)
    baseline_tiles: bool = True
    device: str = "cpu"
    native_scale: str = "auto"
    limit: int | None = None
    progress: bool = True


ConfigStore.instance().store(name="evaluate_schema", node=EvaluateConf)


def labelled_pairs(images: str, masks: str | None, limit: int | None) -> list[tuple[Path, Path]]:
    """(image, mask) pairs; images without a mask are left out (they cannot be scored)."""
    files, mask_files = screenshot_files(images, masks)
    pairs = [(f, m) for f, m in zip(files, mask_files, strict=True) if m is not None]
    if not pairs:
        raise FileNotFoundError(
            f"no image under {images} has a mask (looked in {masks or 'a masks/ folder beside images/'})"
        )
    return pairs[:limit] if limit else pairs


def evaluate(conf: EvaluateConf) -> dict[str, Any]:
    """Score every method on every labelled frame; returns ``{method: {metric: value}}`` and more."""
    unknown = [b for b in conf.baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {sorted(BASELINES)}")
    tile_cfg = tile_config(conf.tiles, conf.tiles_params)
    pool = tile_cfg.mode != "off"
    pairs = labelled_pairs(conf.images, conf.masks, conf.limit)
    methods: list[str] = []
    segmenter = None
    if conf.ckpt != "none":
        from wnet_seg.inference import Segmenter

        segmenter = Segmenter.from_checkpoint(
            conf.ckpt,
            device=conf.device,
            crf=crf_config(conf.crf_params),
            native_scale=conf.native_scale,
            tiles=tile_cfg if pool else None,
        )
        methods.append("wnet")
        if conf.crf:
            methods.append("wnet+crf")
        if pool:
            methods.append("wnet+tiles")
    methods += list(conf.baselines)
    if pool and conf.baseline_tiles:
        methods += [f"{b}+tiles" for b in conf.baselines]
    meters = {m: SegmentationMeter() for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    skipped: dict[str, str] = {}
    for image_path, mask_path in tqdm(
        pairs, desc="evaluate", unit="img", disable=not conf.progress
    ):
        try:
            rgb = load_rgb(image_path)
            gt = load_mask(mask_path, expected_hw=rgb.shape[:2])
        except ImageReadError as err:
            skipped[str(image_path)] = str(err)
            log.error("skipped: %s", err)
            continue
        k = max(1, len(np.setdiff1d(np.unique(gt), [IGNORE_ID])))
        if segmenter is not None:
            t0 = time.perf_counter()
            probs = segmenter.probs(rgb, crf=False)
            seconds["wnet"] += time.perf_counter() - t0
            meters["wnet"].update(probs.argmax(0), gt, str(mask_path))
            if conf.crf:
                t0 = time.perf_counter()
                refined = segmenter.probs(rgb, crf=True)
                seconds["wnet+crf"] += time.perf_counter() - t0
                meters["wnet+crf"].update(refined.argmax(0), gt, str(mask_path))
            if pool:
                t0 = time.perf_counter()
                pooled = segmenter.segment(rgb, crf=False, tiles=True)
                seconds["wnet+tiles"] += time.perf_counter() - t0
                meters["wnet+tiles"].update(pooled, gt, str(mask_path))
        baseline_grid = None
        if pool and conf.baseline_tiles and conf.baselines:
            # Baselines run at full resolution: look for tiles of the native sizes times the upscale.
            f = resolve_grid(rgb, conf.native_scale).factor
            scaled = replace(
                tile_cfg,
                mode=str(int(tile_cfg.mode) * f) if tile_cfg.mode.isdigit() else tile_cfg.mode,
                min_size=tile_cfg.min_size * f,
                max_size=tile_cfg.max_size * f,
            )
            baseline_grid = detect_tile_grid(rgb, scaled)
        for name in conf.baselines:
            t0 = time.perf_counter()
            labels = segment_baseline(name, rgb, k)
            took = time.perf_counter() - t0
            seconds[name] += took
            meters[name].update(labels, gt, str(mask_path))
            if pool and conf.baseline_tiles:
                t0 = time.perf_counter()
                if baseline_grid is not None:  # per-frame ids: baselines share no classes
                    labels = pool_frame_labels(labels, baseline_grid, tile_cfg.min_share)
                seconds[f"{name}+tiles"] += took + time.perf_counter() - t0
                meters[f"{name}+tiles"].update(labels, gt, str(mask_path))
    n = max(1, len(pairs) - len(skipped))
    results = {m: {**meters[m].compute(), "seconds_per_image": seconds[m] / n} for m in methods}
    return {
        "results": results,
        "images": len(pairs) - len(skipped),
        "skipped": skipped,
        "checkpoint": None if segmenter is None else str(segmenter.net.path),
        "num_classes": None if segmenter is None else segmenter.num_classes,
    }


def markdown_table(report: dict[str, Any]) -> str:
    head = "| method | " + " | ".join(title for _, title in COLUMNS) + " | s/image |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for method, r in report["results"].items():
        cells = [f"{r[key]:.3f}" if not math.isnan(r[key]) else "n/a" for key, _ in COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {r['seconds_per_image']:.3f} |")
    return "\n".join(lines)


def bar_chart(report: dict[str, Any], path: Path) -> None:
    """Per-image and dataset mIoU per method as a plain bar chart (no plotting dependency)."""
    results = report["results"]
    names = list(results)
    width, bar_h, pad, label_w = 640, 22, 8, 170
    img = Image.new("RGB", (width, pad + len(names) * (2 * bar_h + pad) + 24), "white")
    draw = ImageDraw.Draw(img)
    scale = width - label_w - 60
    y = pad
    for name in names:
        draw.text((6, y + bar_h // 2), name, fill="black")
        for key, colour in (("miou", (31, 119, 180)), ("miou_dataset", (255, 127, 14))):
            v = results[name][key]
            v = 0.0 if math.isnan(v) else v
            draw.rectangle([label_w, y, label_w + int(v * scale), y + bar_h - 3], fill=colour)
            draw.text((label_w + int(v * scale) + 4, y + 4), f"{v:.2f}", fill="black")
            y += bar_h
        y += pad
    draw.text((label_w, y), "blue: mIoU per image   orange: mIoU dataset", fill="black")
    img.save(path)


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def _hydra_main(cfg: DictConfig) -> None:
    conf: EvaluateConf = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    try:
        report = evaluate(conf)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        sys.exit(2)
    out = Path(conf.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    table = markdown_table(report)
    (out / "metrics.md").write_text(table + "\n")
    bar_chart(report, out / "metrics.png")
    print(
        f"{report['images']} labelled frames from {conf.images}; checkpoint {report['checkpoint']}"
    )
    print(table)
    print(f"written: {out / 'metrics.json'}, {out / 'metrics.md'}, {out / 'metrics.png'}")


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
