"""Segment a file or a folder of screenshots with a trained W-Net, on any number of processes.

    wnet-seg-segment input=shots/ output=out/                 # the shipped checkpoint
    wnet-seg-segment input=frame.png output=out/ crf=true ckpt=run/checkpoints/last.ckpt
    wnet-seg-segment input=shots/ output=out/ tiles=off       # per-pixel W-Net classes only
    wnet-seg-segment input=frames/ output=out/ trainer=ddp trainer.devices=8 batch_size=64
    wnet-seg-segment input=frames/ output=out/ trainer=ddp_cpu data.num_workers=2
    wnet-seg-segment input=my_game/ output=out/ adapt=true     # fine-tune on the folder first
    wnet-seg-segment input=shots/ output=out/ report=true      # + out/report.html

Writes ``output/masks/<relative path>.png`` (single-channel uint8 label ids, the input's exact
H x W), ``output/overlays/<relative path>.png``, ``output/frames.jsonl`` (one JSON object per
frame: file, native scale, tile grid found; :meth:`wnet_seg.inference.SegmentResult.record`),
``output/labels.json`` (what each id is: a W-Net class ``< K``, or a tile signature ``>= K``
listing the W-Net classes it mixes) and ``output/failures.jsonl`` (every file that could not be
read or segmented, with the reason; the exit code is then 1). Every frame goes through
:class:`wnet_seg.inference.Segmenter` inside Lightning's predict loop
(:mod:`wnet_seg.prediction`), so ``trainer=...`` spreads a folder over processes, GPUs and nodes
with identical outputs, and a rerun skips the frames already done (``overwrite=true`` redoes all).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pytorch_lightning as pl
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch.utils.data import DataLoader

from wnet_seg.data.io import ImageReadError, list_images, load_rgb
from wnet_seg.inference import VOTE_FRAMES, Segmenter, options_from
from wnet_seg.logs import quiet_lightning
from wnet_seg.postprocess.tiles import SignatureIds
from wnet_seg.prediction import (
    WORK,
    FolderFrames,
    FramesPerSecond,
    FrameWriter,
    Layout,
    SegmentPredictor,
    collate,
    finalize,
)

log = logging.getLogger("wnet_seg.segment")

# Lightning Trainer arguments that matter for the predict loop (the trainer group has more).
PREDICT_TRAINER_KEYS = ("accelerator", "devices", "num_nodes", "strategy", "precision")


@dataclass
class LoaderConf:
    num_workers: int = 0


@dataclass
class SegmentConf:
    input: str = "???"
    output: str = "segmentations"
    ckpt: str | None = None
    crf: bool = False
    crf_params: dict[str, Any] = field(default_factory=dict)
    tiles: str = "auto"
    tiles_params: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    native_scale: str = "auto"
    window: int = 512
    overlap: int = 32
    overlays: bool = True
    overlay_alpha: float = 0.5
    vote: bool = True
    overwrite: bool = False
    adapt: bool = False
    adapt_steps: int = 600
    progress: bool = True
    report: bool = False
    report_frames: int = 32
    data: LoaderConf = field(default_factory=LoaderConf)
    trainer: dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(name="segment_schema", node=SegmentConf)


def _launching_process() -> bool:
    """False in the processes a DDP launcher (Lightning, torchrun, SLURM) starts for ranks > 0."""
    return all(int(os.environ.get(k, "0")) == 0 for k in ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK"))


def clear_outputs(out: Path) -> None:
    """``overwrite=true``: forget every earlier result under ``out``."""
    for name in ("masks", "overlays", WORK):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("labels.json", "frames.jsonl", "failures.jsonl"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "report_files", ignore_errors=True)
    (out / "report.html").unlink(missing_ok=True)


def adapt(conf: SegmentConf) -> str:
    """``adapt=true``: fine-tune the checkpoint on the input folder (``experiment=finetune``, no
    labels) and return the adapted checkpoint, ``output/adapted.ckpt`` (kept: a rerun reuses it)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from wnet_seg.checkpoint import export_checkpoint
    from wnet_seg.train import train

    target = Path(conf.output) / "adapted.ckpt"
    if target.is_file():
        log.info("adapt=true: reusing %s", target)
        return str(target)
    overrides = [
        "experiment=finetune",
        f"data.path={Path(conf.input).resolve()}",
        f"init_from={conf.ckpt or 'shipped'}",
        f"trainer.max_steps={conf.adapt_steps}",
        f"trainer.enable_progress_bar={conf.progress}",
        f"paths.output_dir={(Path(conf.output) / 'adapt').resolve()}",
        "num_output_pngs=0",
    ]
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="wnet_seg.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    result = train(cfg)
    export_checkpoint(result["last_ckpt"], target)
    log.info("adapt=true: fine-tuned %d steps on %s -> %s", conf.adapt_steps, conf.input, target)
    return str(target)


def build_segmenter(conf: SegmentConf) -> Segmenter:
    # Only the default output is written: the network runs where tile pooling needs it.
    options = options_from(conf, window=conf.window, overlap=conf.overlap, per_pixel=False)
    seg = Segmenter.from_checkpoint(conf.ckpt, options=options)
    # Unbounded process-local ids; finalize() makes them global and 8-bit.
    seg.signature_ids = SignatureIds(seg.num_classes, max_id=None, own_classes=False)
    return seg


def run_segment(conf: SegmentConf) -> dict[str, Any]:
    """Segment every image of ``conf.input`` not done yet; return counts and failures (rank 0)."""
    if conf.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {conf.batch_size}")
    if conf.data.num_workers < 0:
        raise ValueError(f"data.num_workers must be >= 0, got {conf.data.num_workers}")
    src = Path(conf.input)
    files = list_images(src)
    if not files:
        raise FileNotFoundError(f"no images (png/jpg/bmp/gif/webp) under {src}")
    layout = Layout(conf.output)
    if conf.overwrite and _launching_process():
        clear_outputs(layout.out)
        (layout.out / "adapted.ckpt").unlink(missing_ok=True)
    if _launching_process() and (stale := layout.remove_partial()):
        log.info("removed %d half-written files of an interrupted run", stale)
    if conf.adapt:
        if conf.adapt_steps < 1:
            raise ValueError(f"adapt_steps must be >= 1, got {conf.adapt_steps}")
        conf.ckpt = adapt(conf)  # the launching process adapts; DDP ranks then reuse the file
    rels = [f.relative_to(src).as_posix() if src.is_dir() else f.name for f in files]
    todo = [r for r in rels if not layout.done(r)]
    seg = build_segmenter(conf)
    if conf.vote:  # every process votes on the same first frames: the same prior everywhere
        seg.fit_folder(_first_readable(files, VOTE_FRAMES))
    layout.out.mkdir(parents=True, exist_ok=True)
    writer = FrameWriter(layout, src, conf.overlay_alpha, conf.overlays)
    if not todo:  # everything segmented: at most the final masks are missing
        summary = finalize(layout, src, seg.num_classes, 0, 1, _alpha(conf))
        return {**summary, "segmented": 0, "already_done": len(rels), "rank": 0}
    kwargs = {k: v for k, v in conf.trainer.items() if k in PREDICT_TRAINER_KEYS}
    trainer = pl.Trainer(
        **kwargs,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=conf.progress,
        callbacks=[writer, *([FramesPerSecond()] if conf.progress else [])],
    )
    loader = DataLoader(
        FolderFrames(src, todo),
        batch_size=conf.batch_size,
        shuffle=False,
        num_workers=conf.data.num_workers,
        collate_fn=collate,
    )
    trainer.predict(SegmentPredictor(seg), dataloaders=loader, return_predictions=False)
    return {
        **writer.summary,
        "segmented": writer.written,
        "already_done": len(rels) - len(todo),
        "rank": trainer.global_rank,
        "checkpoint": str(seg.source),
    }


def write_segment_report(conf: SegmentConf, result: dict[str, Any]) -> Path:
    """``report=true``: ``output/report.html`` with the first ``report_frames`` frames (input |
    default output, with the scale and tile grid found) and the legend of ``labels.json``."""
    from wnet_seg.hostinfo import machine_description
    from wnet_seg.postprocess.tiles import BUCKET_BASE
    from wnet_seg.report import ReportFrame, ReportSection, write_report

    out, src = Path(conf.output), Path(conf.input)
    layout = Layout(out)
    records = [json.loads(line) for line in _lines(out / "frames.jsonl")]
    frames = []
    for row in records[: conf.report_frames]:
        mask = layout.mask(row["file"])
        if not mask.is_file():
            continue
        tile = "no tile grid" if row.get("tile") is None else f"tile {row['tile']} px"
        caption = f"{row['file']}: scale {row['scale']:.2f}, {tile}, conf {row['confidence']:.2f}"
        frames.append(
            ReportFrame(
                name=caption,
                image=load_rgb(src / row["file"] if src.is_dir() else src),
                outputs={"wnet (output)": np.asarray(Image.open(mask))},
            )
        )
    legend = None
    if (out / "labels.json").is_file():
        legend = json.loads((out / "labels.json").read_text())
        legend["tile_signatures"] = {
            i: [c for c in sig if c < BUCKET_BASE] for i, sig in legend["tile_signatures"].items()
        }
    failures = result.get("failures", {})
    section = ReportSection(
        title=str(conf.input),
        frames=frames,
        legend=legend,
        notes=(
            f"{len(records)} frames segmented, {len(failures)} failed (failures.jsonl); "
            f"{len(frames)} shown; checkpoint {result.get('checkpoint', conf.ckpt or 'shipped')}"
        ),
    )
    return write_report(out, "wnet-seg segment", [section], machine=machine_description())


def _lines(path: Path) -> list[str]:
    return (
        [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    )


def _first_readable(files: list[Path], n: int) -> list:
    out = []
    for f in files:
        if len(out) == n:
            break
        try:
            out.append(load_rgb(f))
        except ImageReadError:
            continue
    return out


def _alpha(conf: SegmentConf) -> float | None:
    return conf.overlay_alpha if conf.overlays else None


@hydra.main(version_base="1.3", config_path="conf", config_name="segment")
def _hydra_main(cfg: DictConfig) -> None:
    quiet_lightning()
    conf: SegmentConf = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    try:
        result = run_segment(conf)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        log.error("%s", err)
        sys.exit(2)
    if result["rank"] != 0:
        return
    failures = result.get("failures", {})
    print(
        f"{result.get('frames', 0)} frames segmented in {conf.output} ({result['segmented']} in "
        f"this run, {result['already_done']} already done), {len(failures)} failed"
    )
    for rel, row in failures.items():
        print(f"FAILED {rel}: {row['reason']}", file=sys.stderr)
    if conf.report:
        print(f"report: {write_segment_report(conf, result).resolve()}")
    if failures:
        sys.exit(1)


def main() -> None:
    from wnet_seg.overrides import check_overrides

    check_overrides(sys.argv[1:], SegmentConf, ("trainer",))
    _hydra_main()


if __name__ == "__main__":
    main()
