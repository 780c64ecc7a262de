"""Multi-process helpers: Hydra multirun + Lightning DDP, and a per-rank sample recorder.

Lightning's DDP launcher (``_SubprocessScriptLauncher``) starts ranks 1..N-1 by re-running
``sys.argv`` with ``hydra.run.dir=<HydraConfig.run.dir>``. In a multirun (``-m``) that is wrong
twice: ``sys.argv`` holds ``-m`` and the sweep (each child would start a whole sweep of its own),
and ``hydra.run.dir`` is not the job's folder (``hydra.sweep.dir/<job.num>``).
:func:`ddp_multirun_job` fixes both for the duration of one job and tears the process group down
afterwards so the next job of the sweep can start a fresh one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

log = logging.getLogger(__name__)

# Environment variables Lightning's subprocess launcher sets in the launching process.
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Hydra command-line flags that take a value and must reach the DDP children unchanged.
_VALUE_FLAGS = ("-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir")


def in_multirun() -> bool:
    """True inside a Hydra multirun job (``-m``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _config_flags(argv: list[str]) -> list[str]:
    """The ``--config-name``/``--config-path``/``--config-dir`` flags (with values) of ``argv``."""
    kept: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in _VALUE_FLAGS:
            kept += [arg, next(it, "")]
        elif arg.split("=", 1)[0] in _VALUE_FLAGS:
            kept.append(arg)
    return kept


@contextlib.contextmanager
def ddp_multirun_job() -> Iterator[None]:
    """Make one multirun job safe for DDP re-launching; a no-op outside a multirun.

    Inside: ``sys.argv`` is this job's own overrides (no ``-m``, no sweep syntax) and Hydra's
    ``run.dir`` is the job's output folder, which is what the launcher hands the children. After:
    ``sys.argv`` and the DDP environment variables are restored and the process group destroyed.
    """
    if not in_multirun():
        yield
        return
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    hc = HydraConfig.get()
    saved_argv = list(sys.argv)
    saved_env = {k: os.environ.get(k) for k in _DDP_ENV}
    old_run_dir = hc.run.dir
    sys.argv = [saved_argv[0], *_config_flags(saved_argv[1:]), *list(hc.overrides.task)]
    with read_write(hc), open_dict(hc):
        hc.run.dir = hc.runtime.output_dir
    try:
        yield
    finally:
        sys.argv = saved_argv
        with read_write(hc), open_dict(hc):
            hc.run.dir = old_run_dir
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class RecordSamples(pl.Callback):
    """Debug callback: each rank writes what it trained and validated on to a JSON file.

    ``<dirpath>/rank<global_rank>.json`` holds the dataset ``index`` and pixel sum (a content
    fingerprint) of every training sample (per batch), the per-process batch sizes, the
    validation sample names, the world size and the final (already reduced) ``callback_metrics``. The DDP tests use it to prove the sampler gives
    each rank different samples and that logged metrics agree across ranks. Enable with
    ``+callbacks.record_samples._target_=wnet_seg.distributed.RecordSamples
    +callbacks.record_samples.dirpath=${paths.output_dir}/samples``.
    """

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.train_batches: list[list[int]] = []
        self.train_image_sums: list[list[float]] = []
        self.val_names: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int) -> None:
        self.train_batches.append([int(i) for i in batch["index"]])
        self.train_image_sums.append([round(float(x.sum()), 3) for x in batch["image"]])

    def on_validation_batch_start(
        self, trainer, pl_module, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not trainer.sanity_checking:
            self.val_names.extend(str(n) for n in batch["name"])

    def on_fit_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        record = {
            "global_rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "train_batches": self.train_batches,
            "batch_sizes": [len(b) for b in self.train_batches],
            "train_image_sums": self.train_image_sums,
            "val_names": self.val_names,
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1},
        }
        path = self.dirpath / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(record, indent=1))
