"""Evaluate the W-Net (raw, + CRF, + tile pooling) and classical baselines on the same labelled frames.

    wnet-seg-evaluate images=data/bench/crafter/test                # images/ + masks/ inside
    wnet-seg-evaluate images=shots/ masks=gt/ ckpt=run/checkpoints/last.ckpt baselines=[felzenszwalb]
    wnet-seg-evaluate images=data/bench/crafter/test ckpt=none      # baselines only

Writes ``output/metrics.json``, ``output/metrics.md`` (the table it prints) and ``output/metrics.png``
(a bar chart). ``degrade=jpeg:85`` (any condition of :mod:`wnet_seg.data.degrade`) scores the
frames as found in the wild: the condition is applied to each frame and, nearest-neighbour, to
its mask. Baselines that need a number of segments get the number of ground-truth classes in
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
from collections.abc import Callable
from dataclasses import dataclass, field
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
from wnet_seg.data.degrade import Degradation, parse_degradation
from wnet_seg.data.io import (
    IGNORE_ID,
    ImageReadError,
    find_classes_file,
    load_mask,
    load_rgb,
    read_classes,
)
from wnet_seg.grid import FrameGrid
from wnet_seg.hostinfo import machine_description
from wnet_seg.inference import (
    VOTE_FRAMES,
    FrameGeometry,
    Segmenter,
    SegmentOptions,
    frame_geometry,
    options_from,
    vote_grid,
)
from wnet_seg.logs import quiet_lightning
from wnet_seg.metrics import SegmentationMeter
from wnet_seg.postprocess.tiles import pool_frame_labels
from wnet_seg.report import ReportFrame, ReportSection, write_report
from wnet_seg.tile_identity import (
    IdentityState,
    colour_identity,
    tile_identity,
    tile_identity_oracle,
    tile_identity_robust,
)

log = logging.getLogger("wnet_seg.evaluate")

COLUMNS = [
    ("miou", "mIoU (per image)"),
    ("miou_dataset", "mIoU (dataset)"),
    ("pixel_acc", "pixel acc"),
    ("covering", "SC"),
    ("pri", "PRI"),
    ("vi", "VI"),
]


# The no-learning baselines of wnet_seg.tile_identity.
IDENTITY = ("tile_identity", "tile_identity_oracle", "tile_identity_robust", "colour_identity")


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
    identity: list[str] = field(default_factory=lambda: list(IDENTITY))
    oracle_tile: int | None = None
    vote: bool = True
    device: str = "cpu"
    native_scale: str = "auto"
    degrade: str = "clean"
    limit: int | None = None
    report: bool = True
    report_frames: int = 64
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


class MethodScores:
    """Per-method meters and time over a run of frames (one game and condition of a benchmark)."""

    def __init__(self) -> None:
        self.meters: dict[str, SegmentationMeter] = {}
        self.seconds: dict[str, float] = {}
        self.frames = 0

    def add(self, method: str, labels: np.ndarray, gt: np.ndarray, name: str, took: float) -> float:
        """Score one method's labels of one frame; returns its per-image mIoU."""
        meter = self.meters.setdefault(method, SegmentationMeter())
        self.seconds[method] = self.seconds.get(method, 0.0) + took
        return meter.update(labels, gt, name)["miou"]

    def results(self) -> dict[str, dict[str, float]]:
        n = max(1, self.frames)
        return {
            m: {**meter.compute(), "seconds_per_image": self.seconds[m] / n}
            for m, meter in self.meters.items()
        }


@dataclass
class Scorer:
    """Every method on the frames of one run (a dataset, or one game and condition).

    Each W-Net (``segmenters``: method-name prefix -> segmenter; ``""`` gives ``wnet``,
    ``wnet+crf``, ``wnet+tiles``) runs once per frame (:meth:`Segmenter.segment`): its per-pixel,
    CRF and pooled outputs come from that one pass. Classical ``baselines`` run on the
    full-resolution frame; ``<name>+tiles`` pools their labels on the same native tile grid the
    W-Net's pooling uses. ``identity`` baselines (:mod:`wnet_seg.tile_identity`) keep their ids
    across the run's frames; ``tile_identity_oracle`` gets the true ``oracle_tile`` (native px)
    and the condition's ``scale``. :meth:`fit_folder` votes one grid for the run's frames.
    """

    options: SegmentOptions
    segmenters: dict[str, Segmenter] = field(default_factory=dict)
    baselines: list[str] = field(default_factory=list)
    baseline_tiles: bool = True
    identity: list[str] = field(default_factory=list)
    oracle_tile: int | None = None
    scale: float = 1.0
    scores: MethodScores = field(default_factory=MethodScores)
    prior: FrameGrid | None = None

    def __post_init__(self) -> None:
        check_methods(self.baselines, self.identity)
        if "tile_identity_oracle" in self.identity and not self.oracle_tile:
            self.identity = [b for b in self.identity if b != "tile_identity_oracle"]
            log.warning("tile_identity_oracle left out: the true tile size is not known")
        self._states = {name: IdentityState() for name in self.identity}

    def fit_folder(self, frames: list[np.ndarray]) -> None:
        """Vote the shared grid on the run's first frames (every method then uses it)."""
        self.prior = vote_grid(frames, self.options)
        for seg in self.segmenters.values():
            seg.prior = self.prior

    def score_pairs(
        self,
        pairs: list[tuple[Path, Path]],
        condition: Degradation,
        *,
        vote: bool = True,
        report_frames: int = 0,
        name: Callable[[Path], str] = lambda p: p.name,
        progress: bool = False,
        desc: str = "evaluate",
    ) -> tuple[list[ReportFrame], dict[str, str]]:
        """Score every labelled frame of one run (evaluate, benchmark, demo): the folder vote on
        the first :data:`VOTE_FRAMES` readable frames, then each frame under ``condition``; an
        unreadable frame is skipped and named. Returns the first ``report_frames`` scored frames
        and ``{path: reason}`` of the skipped ones; the scores accumulate in :attr:`scores`."""
        if vote:
            self.fit_folder(list(_frames(pairs[:VOTE_FRAMES], condition)))
        frames: list[ReportFrame] = []
        skipped: dict[str, str] = {}
        for image_path, mask_path in tqdm(pairs, desc=desc, unit="img", disable=not progress):
            try:
                rgb, gt = load_pair(image_path, mask_path, condition)
            except ImageReadError as err:
                skipped[str(image_path)] = str(err)
                log.error("skipped: %s", err)
                continue
            frame = self.score(rgb, gt, name(image_path))
            if len(frames) < report_frames:
                frames.append(frame)
        return frames, skipped

    def score(self, rgb: np.ndarray, gt: np.ndarray, name: str) -> ReportFrame:
        """Every method's labels of one frame, scored; returned with their per-frame mIoU."""
        frame = ReportFrame(name=name, image=rgb, truth=gt)
        self.scores.frames += 1

        def add(method: str, labels: np.ndarray, took: float) -> None:
            frame.outputs[method] = labels
            frame.scores[method] = self.scores.add(method, labels, gt, name, took)

        geo = None
        for prefix, segmenter in self.segmenters.items():
            r = segmenter.segment(rgb)
            t_net = r.seconds["geometry"] + r.seconds["network"]
            add(f"{prefix}wnet", r.labels, r.seconds["network"])
            if r.crf_labels is not None:
                add(f"{prefix}wnet+crf", r.crf_labels, t_net + r.seconds["crf"])
            if self.options.tiles is not None:
                add(f"{prefix}wnet+tiles", r.tiled, t_net + r.seconds.get("tiles", 0.0))
            geo = geo or FrameGeometry(r.grid, r.native)
        t_geo = 0.0
        if geo is None and (self.identity or (self.options.tiles and self.baseline_tiles)):
            t0 = time.perf_counter()
            geo = frame_geometry(rgb, self.options, self.prior)
            t_geo = time.perf_counter() - t0
        self._classical(rgb, gt, geo, add)
        for b in self.identity:
            t0 = time.perf_counter()
            add(b, self._identity(b, rgb, geo), t_geo + time.perf_counter() - t0)
        return frame

    def _classical(self, rgb, gt, geo: FrameGeometry | None, add) -> None:
        k = max(1, len(np.setdiff1d(np.unique(gt), [IGNORE_ID])))
        for b in self.baselines:
            t0 = time.perf_counter()
            labels = segment_baseline(b, rgb, k)
            took = time.perf_counter() - t0
            add(b, labels, took)
            if self.options.tiles is not None and self.baseline_tiles:
                t0 = time.perf_counter()
                if geo is not None and geo.grid.tile is not None:  # per-frame ids
                    native = geo.to_native(labels)
                    pooled = pool_frame_labels(native, geo.grid, self.options.tiles.min_share)
                    labels = geo.to_input(pooled, rgb.shape[:2])
                add(f"{b}+tiles", labels, took + time.perf_counter() - t0)

    def _identity(self, name: str, rgb: np.ndarray, geo: FrameGeometry | None) -> np.ndarray:
        state = self._states[name]
        if name == "colour_identity":
            return colour_identity(rgb, state)
        if name == "tile_identity_oracle":
            return tile_identity_oracle(rgb, state, int(self.oracle_tile), scale=self.scale)
        grid = None if geo is None else geo.grid
        fn = tile_identity if name == "tile_identity" else tile_identity_robust
        return fn(rgb, state, self.options.grid, grid=grid)


def check_methods(baselines: list[str], identity: list[str]) -> None:
    """A ``ValueError`` naming any unknown baseline (and the valid names)."""
    unknown = [b for b in baselines if b not in BASELINES]
    unknown += [b for b in identity if b not in IDENTITY]
    if unknown:
        raise ValueError(
            f"unknown baselines {unknown}; choose from {sorted([*BASELINES, *IDENTITY])}"
        )


def dataset_tile(root: str | Path) -> int | None:
    """The native tile size a capture recorded (``provenance.json`` beside or above images/)."""
    for folder in (Path(root), Path(root).parent):
        path = folder / "provenance.json"
        if path.is_file():
            tile = json.loads(path.read_text()).get("tile")
            return int(tile) if tile else None
    return None


def load_pair(
    image_path: Path, mask_path: Path, condition: Degradation
) -> tuple[np.ndarray, np.ndarray]:
    """A frame and its mask, checked against each other, under ``condition``."""
    rgb = load_rgb(image_path)
    gt = load_mask(mask_path, expected_hw=rgb.shape[:2])
    return condition(rgb, gt)


def _frames(pairs: list[tuple[Path, Path]], condition: Degradation):
    """The readable frames of ``pairs`` under ``condition`` (for the folder vote)."""
    for image_path, mask_path in pairs:
        try:
            yield load_pair(image_path, mask_path, condition)[0]
        except ImageReadError:
            continue


def _display_name(path: Path, root: str) -> str:
    """``path`` relative to the dataset folder (or its ``images/``), for tables and reports."""
    for base in (Path(root) / "images", Path(root)):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return path.name


def class_names(mask_path: Path) -> dict[int, str] | None:
    """Ground-truth class names from the ``classes.txt`` beside a mask folder, if any."""
    found = find_classes_file(mask_path.parent)
    return read_classes(found) if found else None


def evaluate(conf: EvaluateConf) -> dict[str, Any]:
    """Score every method on every labelled frame; returns ``{method: {metric: value}}`` and more."""
    condition = parse_degradation(conf.degrade)
    options = options_from(conf)
    pairs = labelled_pairs(conf.images, conf.masks, conf.limit)
    segmenter = None
    if conf.ckpt != "none":
        segmenter = Segmenter.from_checkpoint(conf.ckpt, device=conf.device, options=options)
    scorer = Scorer(
        options,
        segmenters={} if segmenter is None else {"": segmenter},
        baselines=list(conf.baselines),
        baseline_tiles=conf.baseline_tiles,
        identity=list(conf.identity),
        oracle_tile=conf.oracle_tile or dataset_tile(conf.images),
        scale=condition.scale,
    )
    frames, skipped = scorer.score_pairs(
        pairs,
        condition,
        vote=conf.vote,
        report_frames=conf.report_frames,
        name=lambda p: _display_name(p, conf.images),
        progress=conf.progress,
    )
    scores = scorer.scores
    return {
        "frames": frames,
        "legend": None if segmenter is None else segmenter.legend(),
        "class_names": class_names(pairs[0][1]) if pairs else None,
        "results": scores.results(),
        "images": scores.frames,
        "condition": str(condition),
        "skipped": skipped,
        "checkpoint": None if segmenter is None else str(segmenter.source),
        "num_classes": None if segmenter is None else segmenter.num_classes,
    }


def report_section(report: dict[str, Any], title: str) -> ReportSection:
    """The HTML report's view of one evaluation: its table, frames and legends."""
    rows = [{"method": m, **r} for m, r in report["results"].items()]
    return ReportSection(
        title=title,
        columns=[*COLUMNS, ("seconds_per_image", "s/image")],
        rows=rows,
        frames=report.get("frames") or [],
        legend=report.get("legend"),
        class_names=report.get("class_names"),
        notes=f"{report['images']} frames; checkpoint {report['checkpoint']}",
    )


def write_outputs(report: dict[str, Any], out: Path, title: str) -> list[Path]:
    """``metrics.json`` (everything but the frames), ``metrics.md``, ``metrics.png`` and
    ``report.html``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    plain = {k: v for k, v in report.items() if k != "frames"}
    (out / "metrics.json").write_text(json.dumps(plain, indent=2, default=str))
    (out / "metrics.md").write_text(markdown_table(report) + "\n")
    bar_chart(report, out / "metrics.png")
    page = write_report(
        out, "wnet-seg evaluation", [report_section(report, title)], machine=machine_description()
    )
    return [out / "metrics.json", out / "metrics.md", out / "metrics.png", page]


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
    quiet_lightning()
    conf: EvaluateConf = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    try:
        report = evaluate(conf)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        sys.exit(2)
    written = write_outputs(report, Path(conf.output), f"{conf.images} ({report['condition']})")
    if not conf.report:
        written.pop()
        (Path(conf.output) / "report.html").unlink(missing_ok=True)
    print(
        f"{report['images']} labelled frames from {conf.images} ({report['condition']}); "
        f"checkpoint {report['checkpoint']}"
    )
    print(markdown_table(report))
    print("written: " + ", ".join(str(p) for p in written))


def main() -> None:
    from wnet_seg.overrides import check_overrides

    check_overrides(sys.argv[1:], EvaluateConf, ())
    _hydra_main()


if __name__ == "__main__":
    main()
