"""Segment a file or a folder of screenshots with a trained W-Net.

    wnet-seg-segment input=shots/ output=out/                 # the shipped checkpoint
    wnet-seg-segment input=frame.png output=out/ crf=true ckpt=run/checkpoints/last.ckpt
    wnet-seg-segment input=shots/ output=out/ tiles=off       # per-pixel W-Net classes only

Writes ``output/masks/<relative path>.png`` (single-channel uint8 label ids, the input's exact
H x W), ``output/overlays/<relative path>.png``, ``output/frames.jsonl`` (one JSON object per
frame: file, native scale, tile grid found; :meth:`wnet_seg.inference.SegmentResult.record`) and
``output/labels.json`` (what each id is: a W-Net class ``< K``, or a tile signature ``>= K``
listing the W-Net classes it mixes; see :mod:`wnet_seg.postprocess.tiles`). Every frame goes
through :class:`wnet_seg.inference.Segmenter`. A file that cannot be read or segmented is reported
by name and skipped; the exit code is non-zero at the end if any file failed.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from tqdm import tqdm

from wnet_seg.data.io import ImageReadError, list_images, load_rgb, save_mask
from wnet_seg.inference import Segmenter, overlay
from wnet_seg.postprocess.crf import crf_config
from wnet_seg.postprocess.tiles import tile_config

log = logging.getLogger("wnet_seg.segment")


@dataclass
class SegmentConf:
    input: str = "???"
    output: str = "segmentations"
    ckpt: str | None = None
    crf: bool = False
    crf_params: dict[str, Any] = field(default_factory=dict)
    tiles: str = "auto"
    tiles_params: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    batch_size: int = 1
    native_scale: str = "auto"
    window: int = 512
    overlap: int = 32
    overlay_alpha: float = 0.5
    progress: bool = True


ConfigStore.instance().store(name="segment_schema", node=SegmentConf)


def run_segment(conf: SegmentConf) -> dict[str, Any]:
    """Segment every image of ``conf.input``; return ``{"ok": [...], "failed": {path: reason}}``."""
    if conf.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {conf.batch_size}")
    src = Path(conf.input)
    files = list_images(src)
    if not files:
        raise FileNotFoundError(f"no images (png/jpg/bmp/gif/webp) under {src}")
    crf = crf_config(conf.crf_params)  # checked even with crf=false: a typo is an error
    seg = Segmenter.from_checkpoint(
        conf.ckpt,
        device=conf.device,
        crf=crf if conf.crf else None,
        tiles=tile_config(conf.tiles, conf.tiles_params),
        native_scale=conf.native_scale,
        window=conf.window,
        overlap=conf.overlap,
    )
    out = Path(conf.output)
    out.mkdir(parents=True, exist_ok=True)
    ok: list[str] = []
    failed: dict[str, str] = {}
    records = []
    bar = tqdm(total=len(files), desc="segment", unit="img", disable=not conf.progress)
    for start in range(0, len(files), conf.batch_size):
        loaded = []
        for path in files[start : start + conf.batch_size]:
            try:
                loaded.append((path, load_rgb(path)))
            except ImageReadError as err:
                failed[str(path)] = str(err)
                log.error("failed: %s", err)
        try:
            results = seg.segment_batch([rgb for _, rgb in loaded])
        except (ValueError, RuntimeError) as err:  # retry one by one to isolate the bad frame
            log.warning("batch failed (%s); segmenting its frames one by one", err)
            results = [None] * len(loaded)
        for (path, rgb), result in zip(loaded, results, strict=True):
            rel = path.relative_to(src) if src.is_dir() else Path(path.name)
            try:
                result = result or seg.segment(rgb)
                save_mask(result.output, (out / "masks" / rel).with_suffix(".png"))
                ov = (out / "overlays" / rel).with_suffix(".png")
                ov.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(overlay(rgb, result.output, conf.overlay_alpha)).save(ov)
                records.append(result.record(rel.as_posix()))
                ok.append(str(path))
            except (ValueError, RuntimeError, OSError) as err:
                failed[str(path)] = str(err)
                log.error("failed: %s: %s", path, err)
        bar.update(min(conf.batch_size, len(files) - start))
    bar.close()
    (out / "frames.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    legend = seg.legend()
    overflowed = legend["tiles_given_dominant_class_after_ids_ran_out"]
    if overflowed:
        log.warning(
            "%d tile(s) had a new class mixture after the 8-bit ids ran out; they took their "
            "dominant W-Net class (segment fewer, more similar frames per run to avoid this)",
            overflowed,
        )
    (out / "labels.json").write_text(json.dumps(legend, indent=2))
    log.info("segmented %d file(s) into %s; %d failed", len(ok), out, len(failed))
    return {
        "ok": ok,
        "failed": failed,
        "checkpoint": str(seg.source),
        "num_classes": seg.num_classes,
    }


@hydra.main(version_base="1.3", config_path="conf", config_name="segment")
def _hydra_main(cfg: DictConfig) -> None:
    conf: SegmentConf = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    try:
        result = run_segment(conf)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        log.error("%s", err)
        sys.exit(2)
    print(f"{len(result['ok'])} segmented, {len(result['failed'])} failed -> {conf.output}")
    for path, reason in result["failed"].items():
        print(f"FAILED {path}: {reason}", file=sys.stderr)
    if result["failed"]:
        sys.exit(1)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
