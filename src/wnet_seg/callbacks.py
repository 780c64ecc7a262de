"""Checkpoint plumbing and data-health callbacks for crash-safe training.

- :class:`AtomicCheckpointIO`: every checkpoint Lightning writes goes to a temporary file that is
  renamed over the target, so a kill during saving never leaves a torn file; every checkpoint it
  reads is loaded with ``weights_only=True``.
- :class:`LastCheckpoint`: keeps ``checkpoints/last.ckpt`` current (every N optimizer steps, at each
  epoch end, when training ends, and when SIGTERM arrives), so ``ckpt_path=last`` resumes a killed
  or pre-empted run with its optimizer, scheduler and step counters.
- :class:`SkippedFilesMonitor`: one warning per skipped data file, also from DataLoader workers,
  and the count logged as ``train/skipped_files``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Callback, Checkpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from wnet_seg.checkpoint import atomic_torch_save, read_checkpoint

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save to a temporary file then rename: a kill during saving never leaves a torn checkpoint.

    Loads always use ``weights_only=True`` (via :func:`wnet_seg.checkpoint.read_checkpoint`), so a
    checkpoint carrying pickled code is refused instead of executed.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(
                f"{type(self).__name__} takes no storage_options, got {storage_options!r}"
            )
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict:
        return read_checkpoint(path)


class LastCheckpoint(Checkpoint):
    """Keep ``<dirpath>/last.ckpt`` a complete, resumable checkpoint of the newest training state.

    Written (through the trainer's checkpoint IO, atomic with :class:`AtomicCheckpointIO`):
    - whenever ``global_step`` crosses a multiple of ``every_n_steps`` (optimizer steps: the
      alternating schedule makes 2 a batch), at batch end;
    - at the end of every training epoch, after the LightningModule's epoch-end hook has stepped
      the LR schedulers (Lightning runs ``Checkpoint`` callbacks after the module there);
    - when training ends (e.g. ``max_steps`` reached mid-epoch);
    - when the process receives SIGTERM (SLURM pre-emption, ``kill``): Lightning's handler lets the
      current batch finish and raises ``SIGTERMException``; this callback saves before it exits.

    A state whose weights hold NaN/inf is never written, so a divergence cannot overwrite the last
    good checkpoint. Ctrl-C (``KeyboardInterrupt``) may land inside an optimizer step, so it saves
    nothing: the previous ``last.ckpt`` stays the resume point.
    """

    FILENAME = "last.ckpt"

    def __init__(self, dirpath: str | None = None, every_n_steps: int | None = None) -> None:
        super().__init__()
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1 or None, got {every_n_steps}")
        self.dirpath = dirpath
        self.every_n_steps = every_n_steps
        self._saved_step: int | None = None
        self._start_step = 0

    @property
    def path(self) -> Path:
        if self.dirpath is None:
            raise RuntimeError("LastCheckpoint.path is known once the trainer has set it up")
        return Path(self.dirpath) / self.FILENAME

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = str(Path(trainer.default_root_dir) / "checkpoints")
        if not isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO):
            log.warning(
                "LastCheckpoint: the trainer's checkpoint IO is %s, not AtomicCheckpointIO; a "
                "kill during saving could leave a torn %s",
                type(trainer.strategy.checkpoint_io).__name__,
                self.FILENAME,
            )

    def save(self, trainer: pl.Trainer, reason: str) -> bool:
        """Write ``last.ckpt`` now (all ranks must call it); ``False`` when skipped, with why."""
        if trainer.sanity_checking or trainer.fast_dev_run or trainer.global_step == 0:
            return False
        if self._saved_step == trainer.global_step:  # same decision on every rank (no fs check)
            return False
        bad = _first_nonfinite_parameter(trainer.lightning_module)
        if bad is not None:
            log.error(
                "not writing %s at global step %d (%s): parameter %s holds NaN/inf; the previous "
                "checkpoint is kept",
                self.path,
                trainer.global_step,
                reason,
                bad,
            )
            return False
        trainer.save_checkpoint(self.path, weights_only=False)  # full state; says so (no log line)
        self._saved_step = trainer.global_step
        # Every epoch end would repeat this line all run long: only the other saves are news.
        level = logging.DEBUG if reason.startswith("end of epoch") else logging.INFO
        log.log(level, "saved %s at global step %d (%s)", self.path, trainer.global_step, reason)
        return True

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        n = self.every_n_steps
        if not n:
            return
        done = self._saved_step if self._saved_step is not None else self._start_step
        if trainer.global_step // n > done // n:
            self.save(trainer, f"every {n} steps")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_step = trainer.global_step  # a resumed run counts from its checkpoint

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer, f"end of epoch {trainer.current_epoch}")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer, "end of training")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        self.save(trainer, "SIGTERM")
        if self.path.is_file():
            log.warning(
                "SIGTERM at global step %d: %s is current; resume with ckpt_path=%s "
                "(or ckpt_path=last)",
                trainer.global_step,
                self.path,
                self.path,
            )


def _first_nonfinite_parameter(module: torch.nn.Module | None) -> str | None:
    if module is None:
        return None
    for name, p in module.named_parameters():
        if not bool(torch.isfinite(p).all()):
            return name
    return None


class SkippedFilesMonitor(Callback):
    """Warn once per skipped data file and log the running count as ``train/skipped_files``.

    In the main process the dataset itself warns and keeps ``skip_reasons``; a DataLoader worker
    passes its skips along in each sample's ``skipped`` string (``"<path>\\t<reason>"`` lines),
    which only this callback sees.
    """

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def collect(self, batch: Any = None, datamodule: Any = None) -> None:
        """Merge the skips reported in ``batch`` and those of ``datamodule``'s datasets."""
        for name in ("train_set", "val_set"):
            dataset = getattr(datamodule, name, None)
            for path, why in getattr(dataset, "skip_reasons", {}).items():
                self.reasons.setdefault(str(path), why)
        texts = batch.get("skipped") if isinstance(batch, dict) else None
        if not texts:
            return
        for text in [texts] if isinstance(texts, str) else texts:
            for line in filter(None, str(text).split("\n")):
                path, _, why = line.partition("\t")
                if path not in self.reasons:
                    self.reasons[path] = why
                    log.warning("skipping bad file (%d skipped so far): %s", len(self.reasons), why)

    @property
    def count(self) -> int:
        return len(self.reasons)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        self.collect(batch, trainer.datamodule)
        pl_module.log(
            "train/skipped_files", float(self.count), on_step=True, on_epoch=False, batch_size=1
        )

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs,
        batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.collect(batch, trainer.datamodule)


class PrintValidation(Callback):
    """Prints the validation mIoU each time it is computed (a console view of the curve, for
    runs without TensorBoard such as ``make demo``)."""

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        parts = [
            f"{label} {float(m[key]):.3f}"
            for key, label in (("val/miou_tiles", "default output"), ("val/miou", "per pixel"))
            if key in m
        ]
        if parts:
            print(f"  step {trainer.global_step:>4}: val mIoU " + ", ".join(parts), flush=True)
