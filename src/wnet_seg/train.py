"""Training entry point: a thin ``@hydra.main`` around a plain, testable :func:`train`.

wnet-seg-train                                   # the default: overfit the demo frame
wnet-seg-train experiment=overfit_demo
wnet-seg-train data=screenshots data.path=shots/ model.num_classes=8
wnet-seg-train ckpt_path=last                     # resume the newest run of this task
wnet-seg-train train=false ckpt_path=run/checkpoints/last.ckpt visualize=true
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from wnet_seg.checkpoint import CheckpointError, check_resumable, load_weights
from wnet_seg.config import ConfigError, TrainConf, register_configs, validate
from wnet_seg.data.datamodule import WNetDataModule
from wnet_seg.data.datasets import DatasetError
from wnet_seg.data.io import ImageReadError
from wnet_seg.lightning_module import WNetModule
from wnet_seg.logs import quiet_lightning
from wnet_seg.panels import write_segmentations

log = logging.getLogger("wnet_seg.train")

register_configs()
if not OmegaConf.has_resolver("wnet_run_id"):
    # Unique per launch even when two runs start in the same second (pid + random suffix).
    _RUN_ID = f"{os.getpid()}-{secrets.token_hex(2)}"
    OmegaConf.register_new_resolver("wnet_run_id", lambda: _RUN_ID)


def resolve_ckpt_path(ckpt_path: str | None, paths: dict[str, Any], task_name: str) -> str | None:
    """``last`` -> the newest ``last.ckpt`` among this task's runs; other values are paths."""
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        runs = Path(paths["log_dir"]) / task_name / "runs"
        candidates = sorted(runs.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise FileNotFoundError(
                f"ckpt_path=last: no {runs}/*/checkpoints/last.ckpt to resume from"
            )
        return str(candidates[-1])
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path: no such checkpoint file: {ckpt_path}")
    return ckpt_path


def resolve_init_from(value: str) -> str:
    """``init_from=shipped`` is the shipped checkpoint; other values are paths."""
    if value == "shipped":
        from wnet_seg.assets import default_checkpoint

        return str(default_checkpoint())
    return value


def build_module(conf: TrainConf) -> WNetModule:
    return WNetModule(
        conf.model.to_wnet_config(),
        conf.loss,
        conf.optim,
        norm={"mean": list(conf.data.mean), "std": list(conf.data.std)},
        channels_last=conf.channels_last,
        compile=conf.compile,
        val_tiles=conf.val_tiles,
    )


def _instantiate_all(section: dict[str, Any]) -> list[Any]:
    return [
        hydra.utils.instantiate(v)
        for v in section.values()
        if isinstance(v, dict) and "_target_" in v
    ]


def build_trainer(conf: TrainConf, output_dir: Path) -> pl.Trainer:
    from wnet_seg.callbacks import AtomicCheckpointIO, SkippedFilesMonitor
    from wnet_seg.panels import PanelLogger

    callbacks = [
        *_instantiate_all(conf.callbacks),
        SkippedFilesMonitor(),
        PanelLogger(conf.image_log_every_n_steps),
    ]
    loggers = _instantiate_all(conf.logger)
    kwargs = dict(conf.trainer)
    plugins = list(kwargs.pop("plugins", None) or [])
    plugins.append(AtomicCheckpointIO())
    return pl.Trainer(
        callbacks=callbacks,
        logger=loggers or False,
        plugins=plugins,
        default_root_dir=str(output_dir),
        **kwargs,
    )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (and/or evaluate) as the config says; return the final metrics and output paths."""
    conf = validate(cfg)
    output_dir = Path(conf.paths["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    if conf.seed is not None:
        pl.seed_everything(conf.seed, workers=True)
    torch.set_float32_matmul_precision("high")

    datamodule = WNetDataModule(conf.data, seed=conf.seed or 0)
    ckpt_path = resolve_ckpt_path(conf.ckpt_path, conf.paths, conf.task_name)
    if ckpt_path is not None and not conf.train:
        module = WNetModule.from_checkpoint(ckpt_path)
    else:
        module = build_module(conf)
        if conf.init_from and ckpt_path is None:  # fine-tune: weights only, a new optimizer
            load_weights(module.net, resolve_init_from(conf.init_from))
            log.info("initialised the W-Net from %s", conf.init_from)
    trainer = build_trainer(conf, output_dir)
    if trainer.is_global_zero:
        OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
        log.info("run folder: %s", output_dir)

    if conf.train:
        if ckpt_path is not None:
            check_resumable(ckpt_path, module.hparams)  # clear reason instead of a shape error
        _fit_or_exit_on_sigterm(trainer, module, datamodule, ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if not conf.train or conf.test:
        metrics.update(
            {k: float(v) for k, v in trainer.validate(module, datamodule=datamodule)[0].items()}
        )

    result: dict[str, Any] = {"metrics": metrics, "output_dir": str(output_dir)}
    if trainer.is_global_zero:
        datamodule.setup("validate")
        pngs = write_segmentations(
            module.net, datamodule.val_set, output_dir / "segmentations", conf.num_output_pngs
        )
        result["pngs"] = [str(p) for p in pngs]
        result["skipped_files"] = _skipped_files(trainer, datamodule)
        ckpt_dir = output_dir / "checkpoints"
        result["last_ckpt"] = (
            str(ckpt_dir / "last.ckpt") if (ckpt_dir / "last.ckpt").exists() else None
        )
        result["tensorboard_dir"] = str(output_dir / "tensorboard")
        if conf.visualize and pngs:
            show_panel(pngs[0])
    return result


def _fit_or_exit_on_sigterm(trainer: pl.Trainer, module, datamodule, ckpt_path) -> None:
    """``trainer.fit``; on SIGTERM (checkpoint already saved by ``LastCheckpoint``) re-raise with
    exit status 143 (128 + SIGTERM), so a job script sees the run was stopped, not finished."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:
        log.warning("stopped by SIGTERM at global step %d", trainer.global_step)
        raise SIGTERMException(143) from None


def _skipped_files(trainer: pl.Trainer, datamodule: WNetDataModule) -> int:
    """Bad data files skipped in this run, DataLoader workers included (``SkippedFilesMonitor``)."""
    from wnet_seg.callbacks import SkippedFilesMonitor

    monitors = [cb for cb in trainer.callbacks if isinstance(cb, SkippedFilesMonitor)]
    if not monitors:
        return datamodule.skipped_files
    monitors[0].collect(datamodule=datamodule)
    return monitors[0].count


def show_panel(path: Path) -> None:
    """Open the panel in a window when a display exists; say where it is otherwise."""
    if not (
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or sys.platform in ("darwin", "win32")
    ):
        log.info("visualize=true but no display; the panel is at %s", path)
        return
    try:
        from PIL import Image

        Image.open(path).show()
    except Exception as err:  # a missing viewer must not fail the run
        log.warning("could not open a window (%s); the panel is at %s", err, path)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Train; return ``cfg.optimized_metric`` (for sweepers such as Optuna) when it is set.

    In a multirun a failure is raised (Hydra records the job, or Optuna the trial, as failed and
    the sweep goes on); a single run exits with status 2 on a config error.
    """
    quiet_lightning()
    from wnet_seg.distributed import ddp_multirun_job, in_multirun

    sweeping = in_multirun()
    try:
        with ddp_multirun_job():
            result = train(cfg)
    except ConfigError as err:
        log.error("config error: %s", err)
        if sweeping:
            raise
        raise SystemExit(2) from None
    except (DatasetError, ImageReadError, CheckpointError, FileNotFoundError) as err:
        log.error("%s: %s", type(err).__name__, err)
        if sweeping:
            raise
        raise SystemExit(2) from None
    return optimized_value(result["metrics"], cfg.get("optimized_metric"), strict=sweeping)


def optimized_value(
    metrics: dict[str, float], metric: str | None, strict: bool = False
) -> float | None:
    """The value a sweeper optimizes (``None`` when no ``optimized_metric`` is set).

    ``strict`` (multiruns): a missing or non-finite value raises, so the sweeper records a failed
    trial. Returning NaN instead would crash hydra-optuna-sweeper 1.3 (optuna 2.x refuses NaN and
    the plugin's failure path then tells the trial twice).
    """
    if not metric:
        return None
    if metric not in metrics:
        msg = (
            f"optimized_metric={metric!r} was not logged by this run (logged: {sorted(metrics)}); "
            "val/miou needs ground-truth masks: use hparams_search=optuna_loss without them"
        )
        if strict:
            raise KeyError(msg)
        log.warning(msg)
        return None
    value = float(metrics[metric])
    if strict and not math.isfinite(value):
        raise FloatingPointError(f"optimized_metric={metric!r} is {value}: trial failed")
    return value


TRAIN_GROUPS = ("data", "model", "loss", "optim", "trainer", "callbacks", "logger", "paths",
                "experiment", "debug", "hparams_search")  # fmt: skip


def cli() -> None:
    """``wnet-seg-train``: a misspelled key is named (with the nearest valid one) before Hydra runs."""
    from wnet_seg.overrides import check_overrides

    check_overrides(sys.argv[1:], TrainConf, TRAIN_GROUPS)
    main()


if __name__ == "__main__":
    cli()
