"""The training pipeline through the real Hydra config (compose API) and the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from wnet_seg.checkpoint import CheckpointError, load_wnet, read_checkpoint
from wnet_seg.config import ConfigError, validate
from wnet_seg.train import train

from .conftest import REPO, compose_train


def event_tags(run_dir: Path) -> EventAccumulator:
    files = list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {run_dir}"
    acc = EventAccumulator(str(files[0].parent), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


@pytest.mark.parametrize("schedule", ["alternating", "joint"])
def test_fast_dev_run_both_schedules(tmp_path, tiny_overrides, schedule):
    cfg = compose_train([*tiny_overrides, f"loss.schedule={schedule}", "debug=fdr"], tmp_path)
    result = train(cfg)
    assert torch.isfinite(torch.tensor(result["metrics"]["train/ncut"]))
    assert Path(result["pngs"][0]).is_file()


def test_tensorboard_scalars_images_checkpoint_and_resume(tmp_path, tiny_overrides):
    first = tmp_path / "first"
    # 8 crops / batch 2 = 4 batches an epoch; stop after 2 batches (4 steps), mid-epoch.
    base = [
        *tiny_overrides,
        "data.length=8",
        "trainer.log_every_n_steps=1",
        "trainer.val_check_interval=1",
        "trainer.max_epochs=10",
    ]
    cfg = compose_train([*base, "trainer.max_steps=4", "image_log_every_n_steps=1"], first)
    result = train(cfg)
    acc = event_tags(first)
    scalars = set(acc.Tags()["scalars"])
    assert {
        "train/ncut",
        "train/recon",
        "train/loss",
        "val/ncut",
        "val/loss",
        "val/miou",
    } <= scalars
    assert any(t.startswith("lr-") for t in scalars)
    assert {"train/panel", "val/panel"} <= set(acc.Tags()["images"])
    last = Path(result["last_ckpt"])
    assert read_checkpoint(last)["global_step"] == 4  # 2 batches x 2 alternating optimizer steps
    assert (first / "config.yaml").is_file()

    loaded = load_wnet(last)  # weights-only rebuild for inference
    assert loaded.model.num_classes == 4

    second = tmp_path / "second"
    cfg2 = compose_train([*base, "trainer.max_steps=8", f"ckpt_path={last}"], second)
    train(cfg2)
    assert read_checkpoint(second / "checkpoints" / "last.ckpt")["global_step"] == 8


def test_evaluate_checkpoint_without_training(tmp_path, tiny_overrides):
    run = tmp_path / "run"
    result = train(compose_train([*tiny_overrides, "trainer.max_steps=2"], run))
    out = tmp_path / "eval"
    res = train(
        compose_train([*tiny_overrides, "train=false", f"ckpt_path={result['last_ckpt']}"], out)
    )
    assert "val/miou" in res["metrics"] and 0.0 <= res["metrics"]["val/miou"] <= 1.0
    assert Path(res["pngs"][0]).is_file()


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.num_classes=abc", "num_classes"),
        ("model.num_clases=8", "num_clases"),
        ("loss.sigma_i=ten", "sigma_i"),
    ],
)
def test_bad_override_fails_at_composition_naming_the_key(tmp_path, override, key):
    with pytest.raises(Exception, match=key):
        compose_train([override], tmp_path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.num_classes=1", "model.num_classes must be >= 2"),
        ("loss.sigma_x=0", "loss.sigma_x must be > 0"),
        ("loss.radius=0.5", "loss.radius must be >= 1"),
        ("data.batch_size=0", "data.batch_size must be >= 1"),
        ("loss.schedule=sometimes", "loss.schedule must be one of"),
    ],
)
def test_out_of_range_values_name_key_and_range(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose_train([override], tmp_path))


def test_cli_bad_override_exits_nonzero_with_message(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "wnet_seg.train", "model.num_clases=8", f"paths.log_dir={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "num_clases" in proc.stderr


def test_overfit_loss_decreases(tmp_path):
    cfg = compose_train(
        [
            "experiment=overfit_demo",
            "data.length=48",
            "data.batch_size=2",
            "data.crop_size=48",
            "trainer.enable_progress_bar=false",
            "trainer.log_every_n_steps=1",
            "num_output_pngs=0",
        ],
        tmp_path,
    )
    train(cfg)
    ncut = [e.value for e in event_tags(tmp_path).Scalars("train/ncut")]
    recon = [e.value for e in event_tags(tmp_path).Scalars("train/recon")]
    assert len(ncut) >= 20
    k = 5
    assert sum(ncut[-k:]) / k < sum(ncut[:k]) / k
    assert sum(recon[-k:]) / k < sum(recon[:k]) / k


def test_screenshots_with_separate_validation_folder(tmp_path, tiny_overrides, capsys):
    """Train on every frame of one folder (no masks needed), validate on labelled held-out frames;
    ``PrintValidation`` (the demo's console curve) prints the scores that were logged."""
    import numpy as np
    from PIL import Image

    from wnet_seg.data.io import save_mask

    rng = np.random.default_rng(0)
    for i in range(3):
        tile = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        (tmp_path / "train").mkdir(exist_ok=True)
        Image.fromarray(tile).save(tmp_path / "train" / f"{i}.png")
        (tmp_path / "val" / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(tile).save(tmp_path / "val" / "images" / f"{i}.png")
        save_mask((tile[..., 0] > 127).astype(np.uint8), tmp_path / "val" / "masks" / f"{i}.png")
    cfg = compose_train(
        [
            *tiny_overrides,
            "data=screenshots",
            f"data.path={tmp_path / 'train'}",
            f"data.val_path={tmp_path / 'val'}",
            f"data.extra_paths=[{tmp_path / 'more'}]",
            "data.num_workers=0",
            "+callbacks.print_validation._target_=wnet_seg.callbacks.PrintValidation",
        ],
        tmp_path / "run",
    )
    (tmp_path / "more").mkdir()
    Image.fromarray(tile).save(tmp_path / "more" / "other_game.png")
    result = train(cfg)
    assert 0.0 <= result["metrics"]["val/miou"] <= 1.0
    printed = [line for line in capsys.readouterr().out.splitlines() if "val mIoU" in line]
    assert printed, "PrintValidation printed nothing"
    assert f"per pixel {result['metrics']['val/miou']:.3f}" in printed[-1]
    from wnet_seg.config import validate
    from wnet_seg.data.datamodule import WNetDataModule

    dm = WNetDataModule(validate(cfg).data)
    dm.setup("fit")
    assert len(dm.train_set.files) == 4 and len(dm.val_set.files) == 3


def test_init_from_copies_weights_and_refuses_another_architecture(tmp_path, tiny_overrides):
    """experiment=finetune's mechanism: weights from a checkpoint, a fresh optimizer."""
    from wnet_seg.checkpoint import load_weights
    from wnet_seg.config import validate
    from wnet_seg.train import build_module

    first = train(compose_train([*tiny_overrides, "trainer.max_steps=2"], tmp_path / "a"))
    module = build_module(validate(compose_train(tiny_overrides, tmp_path / "b")))
    load_weights(module.net, first["last_ckpt"])
    saved = read_checkpoint(first["last_ckpt"])["state_dict"]
    for name, tensor in module.net.state_dict().items():
        assert torch.equal(tensor, saved[f"net.{name}"]), name
    tuned = train(
        compose_train(
            [*tiny_overrides, "trainer.max_steps=2", f"init_from={first['last_ckpt']}"],
            tmp_path / "c",
        )
    )
    assert read_checkpoint(tuned["last_ckpt"])["global_step"] == 2  # a new run, not a resume
    other = [*tiny_overrides, "model.num_classes=5", f"init_from={first['last_ckpt']}"]
    with pytest.raises(CheckpointError, match="model.num_classes is 4 in the checkpoint, 5 here"):
        train(compose_train(other, tmp_path / "d"))
