"""Hydra multirun and Optuna sweeps through the real CLI (tiny settings), and their configs."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from wnet_seg.checkpoint import read_checkpoint
from wnet_seg.train import optimized_value

from .test_ddp import RECORD, TINY_CLI, run_cli

OVERFIT = ["data.length=8", "data.batch_size=4", "trainer.num_sanity_val_steps=0"]


def compose_with_hydra(overrides: list[str]):
    import wnet_seg.train  # noqa: F401  (schema + resolvers)

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="wnet_seg.conf", version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_multirun_two_jobs_each_ddp(tmp_path):
    """``-m`` with DDP: each job re-launches its rank-1 child with the job's own overrides and folder."""
    logs = tmp_path / "logs"
    proc = run_cli(
        [
            "-m",
            "trainer=ddp_cpu",
            "loss.ncut_weight=0.5,1",
            *OVERFIT,
            f"paths.log_dir={logs}",
            *TINY_CLI,
            *RECORD,
        ],
        cwd=tmp_path,
    )
    assert not (logs / "train" / "runs").exists(), "a child wrote outside its sweep job folder"
    sweeps = list((logs / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1, f"a child started a sweep of its own: {sweeps}"
    for job, weight in (("0", 0.5), ("1", 1.0)):
        run = sweeps[0] / job
        assert OmegaConf.load(run / "config.yaml").loss.ncut_weight == weight
        assert read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 4
        assert (run / "train_ddp_process_1.log").is_file()
        ranks = [json.loads((run / "samples" / f"rank{r}.json").read_text()) for r in (0, 1)]
        seen = [{i for b in r["train_batches"] for i in b} for r in ranks]
        assert [r["world_size"] for r in ranks] == [2, 2] and not seen[0] & seen[1]
    assert proc.stdout.count("#0 :") == 1 and proc.stdout.count("#1 :") == 1


def test_optuna_sweep_survives_config_error_and_nan_trials(tmp_path):
    """3 trials: lr=-1 (config error), lr=inf (NaN loss), lr=1e-3; the study finishes on the last.

    The seeded sampler (seed 16, optuna 2.10 pinned by hydra-optuna-sweeper 1.3) draws the three
    choices in that order; the assertions below check the order, so a different draw fails loudly.
    """
    logs = tmp_path / "logs"
    proc = run_cli(
        [
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.sampler.seed=16",
            "hydra.sweeper.params=null",
            "optim.lr=choice(0.001,inf,-1)",
            *OVERFIT,
            f"paths.log_dir={logs}",
            *TINY_CLI,
        ],
        cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    failures = [line for line in out.splitlines() if "Failed experiment" in line]
    assert len(failures) == 2, out[-4000:]
    assert "optim.lr must be > 0" in failures[0]
    assert "non-finite" in failures[1]
    sweep = next((logs / "train" / "multiruns").iterdir())
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_params"] == {"optim.lr": 0.001}
    assert 0.0 <= results["best_value"] <= 1.0  # a validation mIoU
    best_run = sweep / "2"
    assert OmegaConf.load(best_run / "config.yaml").optim.lr == 0.001
    assert (best_run / "checkpoints" / "last.ckpt").is_file()


def test_optimized_value_fails_trials_instead_of_returning_nan():
    metrics = {"val/miou": 0.4, "val/loss": math.nan}
    assert optimized_value(metrics, None) is None
    assert optimized_value(metrics, "val/miou", strict=True) == 0.4
    assert math.isnan(optimized_value(metrics, "val/loss"))  # a single run just reports it
    with pytest.raises(FloatingPointError, match="val/loss"):
        optimized_value(metrics, "val/loss", strict=True)
    with pytest.raises(KeyError, match="optuna_loss"):
        optimized_value(metrics, "val/pri", strict=True)
    assert optimized_value(metrics, "val/pri") is None


def test_hparams_search_configs():
    cfg = compose_with_hydra(["hparams_search=optuna"])
    assert cfg.optimized_metric == "val/miou"
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert sweeper.max_failure_rate == 1.0 and str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert sweeper.sampler.seed == 1234 and "model.num_classes" in sweeper.params

    cfg = compose_with_hydra(["hparams_search=optuna_loss"])
    assert cfg.optimized_metric == "val/loss" and cfg.hydra.sweeper.direction == "minimize"
    assert set(cfg.hydra.sweeper.params) == {"optim.lr", "optim.weight_decay"}


def test_slurm_launcher_config():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install .[cluster]")
    from hydra.utils import instantiate

    cfg = compose_with_hydra(
        [
            "hydra/launcher=slurm",
            "trainer=ddp",
            "trainer.num_nodes=2",
            "hydra.launcher.gpus_per_node=4",
        ]
    )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert launcher["nodes"] == 2 and launcher["gpus_per_node"] == launcher["tasks_per_node"] == 4
    assert type(instantiate(cfg.hydra.launcher)).__name__ == "SlurmLauncher"
