"""Crash safety of training: atomic checkpoints, resume after SIGKILL / SIGTERM, NaN detection.

The kill tests start the real CLI (``python -m wnet_seg.train``) in a subprocess, slowed down by
:class:`SlowDown` (a test-only callback added with ``+callbacks.slow._target_=...``) so that the
signal lands mid-run, then resume in-process from ``last.ckpt`` and check the planned step count.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from wnet_seg.callbacks import AtomicCheckpointIO, LastCheckpoint
from wnet_seg.checkpoint import CheckpointError, atomic_torch_save, load_wnet, read_checkpoint
from wnet_seg.train import train
from wnet_seg.training import NonFiniteLossError

from .conftest import REPO, TINY, compose_train

PROBES: list[dict] = []


class SlowDown(pl.Callback):
    """Test helper: sleep after every batch and write the global step to ``progress`` (if set)."""

    def __init__(self, seconds: float = 0.2, progress: str | None = None) -> None:
        self.seconds, self.progress = seconds, progress

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.progress:
            Path(self.progress).write_text(str(trainer.global_step))
        time.sleep(self.seconds)


class Probe(pl.Callback):
    """Test helper: record the optimizer/scheduler state and counters when training (re)starts."""

    def on_train_start(self, trainer, pl_module) -> None:
        PROBES.append(
            {
                "global_step": trainer.global_step,
                "epoch": trainer.current_epoch,
                # deep copies: the live tensors keep changing as training goes on
                "optimizers": [copy.deepcopy(o.state_dict()) for o in trainer.optimizers],
                "schedulers": [
                    copy.deepcopy(c.scheduler.state_dict()) for c in trainer.lr_scheduler_configs
                ],
                "lrs": [o.param_groups[0]["lr"] for o in trainer.optimizers],
            }
        )


def _tiny(**replace: str) -> list[str]:
    """``TINY`` with some keys replaced (Hydra refuses the same key twice)."""
    keep = [o for o in TINY if o.split("=", 1)[0] not in replace]
    return [*keep, *(f"{k}={v}" for k, v in replace.items())]


def _assert_same_tensors(a, b, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


# ---- atomic writes -----------------------------------------------------------------------


def test_atomic_save_keeps_the_old_file_when_the_write_dies(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"state_dict": {"w": torch.ones(3)}}, path)

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")  # a torn write, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(read_checkpoint(path)["state_dict"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left


def test_last_ckpt_every_n_steps_before_any_validation_and_atomic(tmp_path, monkeypatch):
    saved: list[tuple[str, int]] = []
    original = AtomicCheckpointIO.save_checkpoint

    def recording(self, checkpoint, path, storage_options=None):
        saved.append((Path(path).name, checkpoint["global_step"]))
        return original(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", recording)
    # 40 crops / batch 2 = 20 batches an epoch; stop after 4 batches (8 alternating steps), long
    # before the epoch's validation: the periodic saves must not wait for val/loss.
    cfg = compose_train(
        _tiny(**{"data.length": "40"})
        + ["trainer.max_steps=8", "save_every_n_steps=3", "trainer.num_sanity_val_steps=0"],
        tmp_path,
    )
    result = train(cfg)
    last = [step for name, step in saved if name == "last.ckpt"]
    # alternating: global_step is 2, 4, 6, 8 after each batch; multiples of 3 are crossed at 4
    # (3), 6 (6) and the end of training writes step 8.
    assert last == [4, 6, 8], saved
    ckpt_dir = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["last.ckpt"]  # no tmp, no last-v1
    assert read_checkpoint(result["last_ckpt"])["global_step"] == 8


# ---- resume ------------------------------------------------------------------------------


def test_resume_restores_optimizer_scheduler_and_step_counters(tmp_path):
    # 4 crops / batch 2 = 2 batches = 4 steps an epoch; the LR is divided by 10 every epoch.
    base = _tiny() + [
        "optim.lr_step_epochs=1",
        "trainer.max_epochs=10",
        "trainer.num_sanity_val_steps=0",
        "+callbacks.probe._target_=tests.test_reliability_training.Probe",
    ]
    PROBES.clear()
    first = train(compose_train([*base, "trainer.max_steps=8"], tmp_path / "a"))
    ckpt = read_checkpoint(first["last_ckpt"])
    assert ckpt["global_step"] == 8 and ckpt["epoch"] == 1
    assert [s["last_epoch"] for s in ckpt["lr_schedulers"]] == [2, 2]  # stepped after epochs 0, 1

    second = train(
        compose_train(
            [*base, "trainer.max_steps=12", f"ckpt_path={first['last_ckpt']}"], tmp_path / "b"
        )
    )
    start = PROBES[-1]
    assert start["global_step"] == 8
    _assert_same_tensors(start["optimizers"], ckpt["optimizer_states"], "optimizer_states")
    assert start["optimizers"][0]["state"], "Adam moments must be restored, not fresh"
    assert start["schedulers"] == ckpt["lr_schedulers"]
    assert start["lrs"] == pytest.approx([1e-3 * 0.1**2] * 2)  # two epochs of decay carried over
    final = read_checkpoint(second["last_ckpt"])
    assert final["global_step"] == 12 and final["epoch"] == 2
    # Exactly one LR step per epoch, as in an uninterrupted 12-step run (Lightning re-runs
    # on_train_epoch_end when it resumes from an end-of-epoch checkpoint; that must not decay
    # the LR twice).
    assert [s["last_epoch"] for s in final["lr_schedulers"]] == [3, 3]


def test_resume_with_a_different_architecture_fails_with_the_reason(tmp_path):
    first = train(compose_train(_tiny() + ["trainer.max_steps=2"], tmp_path / "a"))
    cfg = compose_train(
        _tiny(**{"model.num_classes": "6"})
        + ["trainer.max_steps=4", f"ckpt_path={first['last_ckpt']}"],
        tmp_path / "b",
    )
    with pytest.raises(CheckpointError, match="model.num_classes is 4 in the checkpoint, 6 now"):
        train(cfg)


# ---- kills -------------------------------------------------------------------------------


def _launch(tmp_path: Path, extra: list[str]) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "wnet_seg.train",
        *_tiny(**{"data.length": "400"}),
        f"paths.log_dir={tmp_path / 'logs'}",
        "task_name=crash",
        "trainer.max_steps=40",
        "trainer.num_sanity_val_steps=0",
        "num_output_pngs=0",
        "+callbacks.slow._target_=tests.test_reliability_training.SlowDown",
        f"+callbacks.slow.progress={tmp_path / 'progress'}",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"training exited early (rc {proc.returncode}):\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for training:\n{proc.stdout.read()}")
        time.sleep(0.05)


def _runs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "logs" / "crash" / "runs").glob("*/checkpoints/last.ckpt"))


def _step(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (OSError, ValueError):
        return 0


def _resume_to(tmp_path: Path, planned: int) -> dict:
    """Resume in-process with ``ckpt_path=last`` (the newest run of the task) up to ``planned``."""
    PROBES.clear()
    out = tmp_path / "resumed"
    cfg = compose_train(
        [
            *_tiny(**{"data.length": "400"}),
            f"paths.log_dir={tmp_path / 'logs'}",
            f"paths.output_dir={out}",
            "task_name=crash",
            "ckpt_path=last",
            f"trainer.max_steps={planned}",
            "trainer.num_sanity_val_steps=0",
            "num_output_pngs=0",
            "+callbacks.probe._target_=tests.test_reliability_training.Probe",
        ]
    )
    return train(cfg)


def test_sigkill_mid_run_then_resume_from_last_reaches_planned_steps(tmp_path):
    proc = _launch(tmp_path, ["save_every_n_steps=4", "+callbacks.slow.seconds=0.25"])
    try:
        _wait_for(
            proc,
            lambda: _runs(tmp_path) and read_checkpoint(_runs(tmp_path)[0])["global_step"] >= 8,
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    killed = read_checkpoint(_runs(tmp_path)[0])
    assert 8 <= killed["global_step"] < 40  # killed mid-run, with a valid checkpoint on disk

    result = _resume_to(tmp_path, planned=40)
    assert PROBES[-1]["global_step"] == killed["global_step"]  # resumed, not restarted
    final = read_checkpoint(result["last_ckpt"])
    assert final["global_step"] == 40
    assert load_wnet(result["last_ckpt"]).model.num_classes == 4


def test_sigterm_saves_last_ckpt_at_the_signal_and_exits_143(tmp_path):
    # No periodic saves and a 200-batch epoch: the only checkpoint can come from the signal.
    progress = tmp_path / "progress"
    proc = _launch(tmp_path, ["save_every_n_steps=null", "+callbacks.slow.seconds=0.25"])
    try:
        _wait_for(proc, lambda: progress.is_file() and _step(progress) >= 6)
        assert not _runs(tmp_path), "no checkpoint may exist before the signal"
        os.kill(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, output
    assert "SIGTERM at global step" in output
    (last,) = _runs(tmp_path)
    saved = read_checkpoint(last)
    assert saved["global_step"] == _step(progress)  # the step reached when the signal came
    assert 6 <= saved["global_step"] < 40
    assert not [p for p in last.parent.iterdir() if p.name.endswith(".tmp")]

    result = _resume_to(tmp_path, planned=40)
    assert PROBES[-1]["global_step"] == saved["global_step"]
    assert read_checkpoint(result["last_ckpt"])["global_step"] == 40


# ---- NaN / inf ---------------------------------------------------------------------------


def _poison(monkeypatch, target: str, after_calls: int) -> None:
    """Make ``target`` (ncut objective or reconstruction loss) return NaN from call ``after_calls``."""
    import wnet_seg.training as lm

    calls = {"n": 0}
    if target == "ncut":
        original = lm.NCutObjective.forward

        def forward(self, probs, image):
            loss, logs = original(self, probs, image)
            calls["n"] += 1
            return (loss * float("nan") if calls["n"] > after_calls else loss), logs

        monkeypatch.setattr(lm.NCutObjective, "forward", forward)
    else:
        original_rec = lm.reconstruction_loss

        def rec(recon, x):
            calls["n"] += 1
            loss = original_rec(recon, x)
            return loss + float("inf") if calls["n"] > after_calls else loss

        monkeypatch.setattr(lm, "reconstruction_loss", rec)


@pytest.mark.parametrize("term, shown", [("ncut", "ncut"), ("recon", "reconstruction")])
def test_nonfinite_loss_stops_at_once_naming_term_and_step(tmp_path, monkeypatch, term, shown):
    _poison(monkeypatch, term, after_calls=2)  # the 3rd training batch goes bad
    cfg = compose_train(
        _tiny(**{"data.length": "40"})
        + ["trainer.max_steps=20", "save_every_n_steps=2", "trainer.num_sanity_val_steps=0"],
        tmp_path,
    )
    with pytest.raises(NonFiniteLossError) as info:
        train(cfg)
    # Batches 1-2 took steps 1-4; the ncut of batch 3 is checked before step 5, its
    # reconstruction after the encoder's step 5.
    step = 4 if term == "ncut" else 5
    assert f"non-finite {shown} loss" in str(info.value)
    assert f"at global step {step}" in str(info.value)
    assert "loss.nonfinite=skip" in str(info.value)
    # The last checkpoint before the failure is intact and finite.
    last = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 4
    assert all(
        torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point()
    )


def test_nonfinite_skip_policy_skips_bad_batches_and_finishes(tmp_path, monkeypatch):
    import wnet_seg.training as lm

    original = lm.NCutObjective.forward
    calls = {"n": 0}

    def forward(self, probs, image):  # every other batch's N-cut is NaN
        loss, logs = original(self, probs, image)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] % 2 == 0 else loss), logs

    monkeypatch.setattr(lm.NCutObjective, "forward", forward)
    cfg = compose_train(
        _tiny(**{"data.length": "16"})
        + ["loss.nonfinite=skip", "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0"],
        tmp_path,
    )
    result = train(cfg)
    # 8 batches, 4 skipped before any step: 4 batches x 2 alternating steps.
    assert read_checkpoint(result["last_ckpt"])["global_step"] == 8
    assert result["metrics"]["train/skipped_batches"] == 4.0


def test_last_checkpoint_refuses_to_overwrite_with_nonfinite_weights(tmp_path):
    first = train(compose_train(_tiny() + ["trainer.max_steps=2"], tmp_path))
    good = read_checkpoint(first["last_ckpt"])

    class FakeTrainer:
        sanity_checking = False
        fast_dev_run = False
        global_step = 6

        def __init__(self, module):
            self.lightning_module = module

        def save_checkpoint(self, path):  # pragma: no cover - must not be reached
            raise AssertionError("a NaN state must not be saved")

    module = torch.nn.Linear(2, 2)
    with torch.no_grad():
        module.weight[0, 0] = float("nan")
    cb = LastCheckpoint(dirpath=str(tmp_path / "checkpoints"))
    assert cb.save(FakeTrainer(module), "test") is False
    assert read_checkpoint(first["last_ckpt"])["global_step"] == good["global_step"]
