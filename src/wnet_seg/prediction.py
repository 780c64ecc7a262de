"""Segmenting a folder at scale: Lightning's predict loop, any number of processes, resumable.

``wnet-seg-segment`` runs :class:`SegmentPredictor` (a LightningModule around the
:class:`~wnet_seg.inference.Segmenter`) through ``Trainer.predict``; Lightning's distributed
sampler gives each process its own frames (``trainer=ddp``, ``trainer.devices=N``,
``trainer.num_nodes=M``; ``trainer=ddp_cpu`` for 2 gloo processes on CPU). Two phases:

1. **predict** (:class:`FrameWriter`, after every batch): each frame's labels go to
   ``out/.work/<rel>.npz`` (atomic), with the tile signatures its ids stand for in this process
   and their pixel counts and its ``frames.jsonl`` record (one file: a kill cannot separate them);
   unreadable or failing frames to ``.work/failures-*``. A frame with an ``.npz`` is done: a rerun
   skips it, so a killed run resumes where it stopped.
2. **finalize** (every process, at the end): mixture ids are made global and identical whatever
   the number of processes: the signatures already in ``labels.json`` keep their ids (ids never
   change once written), new ones get the next ids in a canonical order (most pixels first, then
   the classes), beyond 8 bits the signature's dominant class. Each process then writes the final
   ``masks/`` and ``overlays/`` of its share of the pending frames (atomically: a mask that exists
   is complete), and process 0 writes ``frames.jsonl`` and ``failures.jsonl``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from PIL import Image
from pytorch_lightning.callbacks import BasePredictionWriter, TQDMProgressBar
from torch.utils.data import Dataset

from wnet_seg.data.io import ImageReadError, load_rgb, save_mask
from wnet_seg.inference import Segmenter, overlay
from wnet_seg.postprocess.tiles import BUCKET_BASE, MAX_ID

WORK = ".work"


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` then rename over ``path``: a file that exists is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Layout:
    """Where each output of a frame (``rel``: its path relative to the input, as POSIX) goes."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        self.work = self.out / WORK

    def mask(self, rel: str) -> Path:
        return (self.out / "masks" / rel).with_suffix(".png")

    def overlay(self, rel: str) -> Path:
        return (self.out / "overlays" / rel).with_suffix(".png")

    def labels(self, rel: str) -> Path:
        return self.work / f"{rel}.npz"

    def done(self, rel: str) -> bool:
        return self.labels(rel).is_file()

    def pending(self) -> list[str]:
        """Frames segmented (``.npz``) whose final mask is not written yet, sorted."""
        rels = (
            p.relative_to(self.work).as_posix()[: -len(".npz")]
            for p in self.work.rglob("*.npz")
            if not _partial(p)
        )
        return sorted(r for r in rels if not self.mask(r).is_file())

    def remove_partial(self) -> int:
        """Delete the temporary files a killed run left half-written; return how many."""
        stale = [p for d in (self.work, self.out / "masks", self.out / "overlays")
                 if d.is_dir() for p in d.rglob(".*") if p.is_file() and _partial(p)]  # fmt: skip
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)


def _partial(path: Path) -> bool:
    """A temporary file of :func:`_atomic_write` (``.<name>.<random><suffix>``), not an output."""
    return path.name.startswith(".")


class FolderFrames(Dataset):
    """The frames to segment, read in the loader (workers): a bad file becomes an error entry."""

    def __init__(self, root: Path, rels: list[str]) -> None:
        self.root, self.rels = root, rels

    def __len__(self) -> int:
        return len(self.rels)

    def path(self, rel: str) -> Path:
        return self.root / rel if self.root.is_dir() else self.root

    def __getitem__(self, i: int) -> dict[str, Any]:
        rel = self.rels[i]
        try:
            return {"rel": rel, "rgb": load_rgb(self.path(rel)), "error": None}
        except ImageReadError as err:
            return {"rel": rel, "rgb": None, "error": str(err)}


def collate(items: list[dict]) -> list[dict]:
    """Frames of any sizes: a batch is the list (the Segmenter batches same-size frames)."""
    return items


class SegmentPredictor(pl.LightningModule):
    """``predict_step``: the segmentation pipeline on one batch, errors per frame."""

    def __init__(self, segmenter: Segmenter) -> None:
        super().__init__()
        self.segmenter = segmenter
        self.net = segmenter.net  # a submodule, so Lightning moves it to the device

    def predict_step(self, batch: list[dict], batch_idx: int = 0) -> list[dict]:
        good = [b for b in batch if b["error"] is None]
        try:
            results = self.segmenter.segment_batch([b["rgb"] for b in good])
        except (ValueError, RuntimeError):  # isolate the frame that fails
            results = [self._one(b["rgb"]) for b in good]
        by_rel = dict(zip((b["rel"] for b in good), results, strict=True))
        out = []
        for b in batch:
            r = by_rel.get(b["rel"])
            if isinstance(r, Exception):
                out.append({"rel": b["rel"], "error": f"{type(r).__name__}: {r}"})
            elif r is None:
                out.append({"rel": b["rel"], "error": b["error"]})
            else:
                out.append({"rel": b["rel"], "result": r})
        return out

    def _one(self, rgb: np.ndarray) -> Any:
        try:
            return self.segmenter.segment(rgb)
        except (ValueError, RuntimeError) as err:
            return err


class FramesPerSecond(TQDMProgressBar):
    """Lightning's progress bar with this process's frames and frames per second."""

    def on_predict_start(self, trainer, pl_module) -> None:
        super().on_predict_start(trainer, pl_module)
        self._frames, self._t0 = 0, time.perf_counter()

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dl_idx=0) -> None:
        super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dl_idx)
        self._frames += len(batch)
        rate = self._frames / max(1e-9, time.perf_counter() - self._t0)
        self.predict_progress_bar.set_postfix(frames=self._frames, frames_per_s=f"{rate:.1f}")


class FrameWriter(BasePredictionWriter):
    """Phase 1 after each batch, phase 2 (:func:`finalize`) at the end of the predict loop."""

    def __init__(self, layout: Layout, root: Path, overlay_alpha: float, overlays: bool) -> None:
        super().__init__(write_interval="batch")
        self.layout, self.root = layout, root
        self.overlay_alpha, self.overlays = overlay_alpha, overlays
        self.written = 0
        self.summary: dict[str, Any] = {}

    def _log_file(self, trainer: pl.Trainer, kind: str) -> Path:
        self.layout.work.mkdir(parents=True, exist_ok=True)
        return self.layout.work / f"{kind}-{os.getpid()}-rank{trainer.global_rank}.jsonl"

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ) -> None:
        ids = pl_module.segmenter.signature_ids
        failures = []
        for item in prediction:
            rel = item["rel"]
            if "result" not in item:
                failures.append({"file": rel, "reason": item["error"]})
                continue
            r = item["result"]
            # the record goes into the frame's .npz: a kill between two files cannot lose it
            _atomic_write(
                self.layout.labels(rel),
                lambda tmp, out=r.output, rec=r.record(rel): _save_labels(tmp, out, ids, rec),
            )
            self.written += 1
        if failures:
            with self._log_file(trainer, "failures").open("a") as f:
                f.writelines(json.dumps(row) + "\n" for row in failures)

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        self.summary = finalize(
            self.layout,
            self.root,
            pl_module.segmenter.num_classes,
            trainer.global_rank,
            trainer.world_size,
            self.overlay_alpha if self.overlays else None,
        )


def _save_labels(path: Path, labels: np.ndarray, ids, record: dict[str, Any]) -> None:
    """One frame's process-local labels, what its mixture ids stand for and its
    ``frames.jsonl`` record, as one ``.npz``."""
    present, counts = np.unique(labels, return_counts=True)
    sigs = {i: sig for sig, i in ids.table.items()}
    mixed = [int(i) for i in present if i >= ids.num_classes]
    padded = np.full((len(mixed), max((len(sigs[i]) for i in mixed), default=0)), -1, np.int64)
    for row, i in enumerate(mixed):
        padded[row, : len(sigs[i])] = sigs[i]
    np.savez(
        path,
        labels=labels.astype(np.uint32 if labels.max(initial=0) >= 2**16 else np.uint16),
        ids=np.array(mixed, np.int64),
        signatures=padded,
        pixels=np.array([counts[present == i][0] for i in mixed], np.int64),
        dominant=np.array([ids.dominant(sigs[i]) for i in mixed], np.int64),
        record=np.array(json.dumps(record)),
    )


def _gather(obj: Any) -> list[Any]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _frame_table(npz) -> dict[int, tuple[tuple[int, ...], int, int]]:
    """Local id -> (signature, pixels, dominant class) of one frame's ``.npz``."""
    return {
        int(i): (tuple(int(c) for c in sig if c >= 0), int(n), int(d))
        for i, sig, n, d in zip(
            npz["ids"], npz["signatures"], npz["pixels"], npz["dominant"], strict=True
        )
    }


def finalize(
    layout: Layout,
    root: Path,
    num_classes: int,
    rank: int = 0,
    world: int = 1,
    overlay_alpha: float | None = 0.5,
) -> dict[str, Any]:
    """Phase 2 (module docstring); every process calls it. Returns what was written."""
    _barrier()  # every process has written its last frame
    pending = layout.pending()
    mine = pending[rank::world]
    tables = {}
    pixels: Counter = Counter()
    dominants: dict[tuple, Counter] = {}
    for rel in mine:
        with np.load(layout.labels(rel)) as npz:
            tables[rel] = _frame_table(npz)
        for sig, n, d in tables[rel].values():
            pixels[sig] += n
            dominants.setdefault(sig, Counter())[d] += n
    gathered = _gather((pixels, dominants))
    legend_path = layout.out / "labels.json"
    if rank == 0:
        total: Counter = Counter()
        dom: dict[tuple, Counter] = {}
        for p, d in gathered:
            total.update(p)
            for sig, c in d.items():
                dom.setdefault(sig, Counter()).update(c)
        legend = _extend_legend(legend_path, num_classes, total, dom)
        _atomic_write(legend_path, lambda tmp: tmp.write_text(json.dumps(legend, indent=2)))
    _barrier()
    legend = json.loads(legend_path.read_text())
    global_ids = {tuple(sig): int(i) for i, sig in legend["tile_signatures"].items()}
    fallback = {tuple(s["signature"]): s["class"] for s in legend["given_dominant_class"]}
    for rel in mine:
        with np.load(layout.labels(rel)) as npz:
            labels = npz["labels"].astype(np.int64)
        lut_keys = np.array(sorted(tables[rel]), np.int64)
        final = labels.copy()
        for i in lut_keys:
            sig = tables[rel][int(i)][0]
            final[labels == i] = global_ids.get(sig, fallback.get(sig, sig[0]))
        final = final.astype(np.uint8)
        if overlay_alpha is not None:
            rgb = load_rgb(root / rel if root.is_dir() else root)
            picture = overlay(rgb, final, overlay_alpha)
            _atomic_write(layout.overlay(rel), lambda tmp, p=picture: Image.fromarray(p).save(tmp))
        _atomic_write(layout.mask(rel), lambda tmp, m=final: save_mask(m, tmp))
    _barrier()
    summary = {"finalized": len(mine)}
    if rank == 0:
        summary.update(_merge_logs(layout))
    return summary


def _extend_legend(
    path: Path, num_classes: int, pixels: Counter, dominants: dict[tuple, Counter]
) -> dict[str, Any]:
    """``labels.json`` with the new signatures appended (existing ids never change)."""
    legend = (
        json.loads(path.read_text())
        if path.is_file()
        else {"num_classes": num_classes, "tile_signatures": {}, "given_dominant_class": []}
    )
    table = legend["tile_signatures"]
    known = {tuple(sig) for sig in table.values()}
    known |= {tuple(s["signature"]) for s in legend["given_dominant_class"]}
    new = sorted((s for s in pixels if s not in known), key=lambda s: (-pixels[s], s))
    for sig in new:  # a one-class signature with a colour bin: the biggest takes the class id
        classes = [c for c in sig if c < BUCKET_BASE]
        if len(classes) == 1 and str(classes[0]) not in table:
            table[str(classes[0])] = list(sig)
    known |= {tuple(sig) for sig in table.values()}
    next_id = num_classes + sum(int(i) >= num_classes for i in table)
    for sig in (s for s in new if s not in known):
        if next_id <= MAX_ID - 1:
            legend["tile_signatures"][str(next_id)] = list(sig)
            next_id += 1
        else:  # 8-bit masks: 255 is the ignore id
            cls = dominants[sig].most_common(1)[0][0]
            legend["given_dominant_class"].append({"signature": list(sig), "class": int(cls)})
    legend["note"] = (
        "ids < num_classes are W-Net classes; larger ids are tiles mixing the listed classes; "
        f"entries >= {BUCKET_BASE} are colour bins (tiles_params.colour_split, colour_share); "
        "given_dominant_class: mixtures past the 8-bit ids, labelled with their dominant class"
    )
    return legend


def _merge_logs(layout: Layout) -> dict[str, Any]:
    """``frames.jsonl`` from every segmented frame's ``.npz`` (the record logs of older runs
    where one lacks it) and ``failures.jsonl`` from every process's logs (latest entry wins)."""
    out: dict[str, Any] = {}
    records: dict[str, dict] = {}
    for path in sorted(layout.work.glob("records-*.jsonl")):  # runs before records in .npz
        for line in path.read_text().splitlines():
            row = json.loads(line)
            records[row["file"]] = row
    for path in layout.work.rglob("*.npz"):
        if path.name.startswith("."):
            continue  # a half-written temporary file
        with np.load(path) as npz:
            if "record" in npz.files:
                row = json.loads(str(npz["record"]))
                records[row["file"]] = row
    failures: dict[str, dict] = {}
    for path in sorted(layout.work.glob("failures-*.jsonl"), key=lambda p: p.stat().st_mtime):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            failures[row["file"]] = row
    failures = {f: row for f, row in failures.items() if f not in records}  # fixed since
    for name, rows in (("frames.jsonl", records), ("failures.jsonl", failures)):
        text = "".join(json.dumps(rows[k]) + "\n" for k in sorted(rows))
        _atomic_write(layout.out / name, lambda tmp, t=text: tmp.write_text(t))
    out["frames"], out["failures"] = len(records), failures
    return out
