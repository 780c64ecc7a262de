"""Checkpoints are data, never code: malicious pickles are refused without running, foreign or
damaged files fail with the reason, and wnet-seg checkpoints describe themselves.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from wnet_seg import __version__
from wnet_seg.callbacks import AtomicCheckpointIO
from wnet_seg.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    export_checkpoint,
    load_wnet,
    read_checkpoint,
)
from wnet_seg.train import train

from .conftest import TINY, compose_train


class Payload:
    """Unpickling this creates ``marker`` (via ``builtins.open``): stands in for any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real (tiny) training checkpoint."""
    out = tmp_path_factory.mktemp("trained")
    result = train(compose_train([*TINY, "trainer.max_steps=2", "num_output_pngs=0"], out))
    return Path(result["last_ckpt"])


def _malicious(tmp_path: Path, legacy: bool = False) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    ckpt = {
        "state_dict": {"net.w": torch.zeros(1)},
        "hyper_parameters": {"format": 1, "model": {"num_classes": 4}},
        "callbacks": {"innocent looking": Payload(marker)},
    }
    path = tmp_path / ("legacy.ckpt" if legacy else "evil.ckpt")
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    return path, marker


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-format"])
def test_malicious_pickle_is_refused_without_running_its_payload(tmp_path, legacy):
    path, marker = _malicious(tmp_path, legacy)
    # Positive control: the payload is live, an unrestricted unpickler runs it.
    pickle.loads(pickle.dumps(Payload(tmp_path / "control")))
    assert (tmp_path / "control").exists()

    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert not marker.exists(), "the checkpoint's payload ran"
    assert message.startswith(f"refusing to load {path}")
    assert "open" in message  # names what it refused
    assert "weights_only=False" not in message  # never advises turning the protection off


def test_every_loading_entry_point_refuses_the_malicious_checkpoint(tmp_path):
    path, marker = _malicious(tmp_path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_wnet(path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        AtomicCheckpointIO().load_checkpoint(path)  # what Lightning's resume calls
    for i, extra in enumerate(["train=false", "trainer.max_steps=2"]):  # evaluate / resume
        cfg = compose_train([*TINY, extra, f"ckpt_path={path}"], tmp_path / f"run{i}")
        with pytest.raises(CheckpointError, match="refusing to load"):
            train(cfg)
    assert not marker.exists()


def test_checkpoint_stores_format_version_and_plain_config(trained):
    ckpt = read_checkpoint(trained)
    hp = ckpt["hyper_parameters"]
    assert hp["format"] == CHECKPOINT_FORMAT and hp["wnet_seg_version"] == __version__
    assert hp["model"]["num_classes"] == 4 and hp["model"]["base_width"] == 4
    assert hp["loss"]["schedule"] == "alternating" and hp["optim"]["name"] == "adam"
    assert len(hp["norm"]["mean"]) == 3

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, str | int | float | bool)

    assert plain(dict(hp)), hp
    # Everything else a resume needs is in the same file.
    assert {"optimizer_states", "lr_schedulers", "loops", "global_step", "epoch"} <= set(ckpt)


def test_exported_and_old_format_checkpoints_load(trained, tmp_path):
    slim = export_checkpoint(trained, tmp_path / "slim.ckpt")
    assert load_wnet(slim).model.num_classes == 4
    old = read_checkpoint(trained)
    del old["hyper_parameters"]["format"], old["hyper_parameters"]["wnet_seg_version"]
    torch.save(old, tmp_path / "old.ckpt")  # written before the format field existed: format 0
    assert load_wnet(tmp_path / "old.ckpt").model.num_classes == 4


def _variant(trained: Path, tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.ckpt"
    if kind == "truncated":
        data = trained.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "zero_byte":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("model weights: see attachment\n")
    elif kind == "torchvision_state_dict":
        import torchvision

        torch.save(torchvision.models.squeezenet1_1().state_dict(), path)
    elif kind == "other_lightning":
        torch.save(
            {
                "state_dict": {"layer.weight": torch.ones(2, 2)},
                "hyper_parameters": {"lr": 0.1},
                "global_step": 10,
            },
            path,
        )
    elif kind == "tensor":
        torch.save(torch.ones(3), path)
    else:
        ckpt = read_checkpoint(trained)
        hp = ckpt["hyper_parameters"]
        if kind == "future_format":
            hp["format"] = CHECKPOINT_FORMAT + 98
            hp["wnet_seg_version"] = "9.0.0"
        elif kind == "string_format":
            hp["format"] = "one"
        elif kind == "unknown_model_key":
            hp["model"]["attention_heads"] = 8
        elif kind == "wrong_shapes":
            hp["model"]["num_classes"] = 7
        elif kind == "invalid_model_value":
            hp["model"]["num_classes"] = 1
        torch.save(ckpt, path)
    return path


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("truncated", "truncated or not a torch.save file"),
        ("zero_byte", "empty file"),
        ("text", "not a plain torch.save file of tensors and values (Unsupported operand"),
        ("tensor", "holds a Tensor, not a checkpoint dict"),
        ("torchvision_state_dict", "is a bare state_dict"),
        ("other_lightning", "has no 'model' hyperparameters"),
        ("future_format", f"format {CHECKPOINT_FORMAT + 98} (written by wnet-seg 9.0.0), newer"),
        ("string_format", "'format' must be a non-negative int, got 'one'"),
        ("unknown_model_key", "model settings ['attention_heads'] are unknown"),
        ("wrong_shapes", "weights do not fit the stored architecture"),
        ("invalid_model_value", "invalid model settings"),
    ],
)
def test_foreign_or_damaged_checkpoint_fails_with_its_reason(trained, tmp_path, kind, reason):
    path = _variant(trained, tmp_path, kind)
    with pytest.raises(CheckpointError) as info:
        load_wnet(path)
    assert str(path) in str(info.value)
    assert reason in str(info.value), str(info.value)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"checkpoint not found: {tmp_path / 'nope.ckpt'}"):
        read_checkpoint(tmp_path / "nope.ckpt")


def test_format_1_checkpoint_upgrades_to_the_typed_loss_schema(tmp_path):
    """Checkpoints written before the typed loss schema (format 1, options in loss.feature_params)
    load as the LossConf of the config that trained them."""
    from dataclasses import asdict

    from wnet_seg.checkpoint import read_settings
    from wnet_seg.config import validate

    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "wnet_multigame.ckpt"
    old = read_checkpoint(shipped)["hyper_parameters"]
    assert old["format"] == 1 and "feature_params" in old["loss"]
    settings = read_settings(shipped)
    expected = validate(compose_train(["experiment=multigame"], tmp_path)).loss
    assert asdict(settings.loss) == asdict(expected)
    assert settings.hparams["format"] == CHECKPOINT_FORMAT
    # An exported copy is written in the current format and reads back the same.
    slim = export_checkpoint(shipped, tmp_path / "upgraded.ckpt")
    assert read_checkpoint(slim)["hyper_parameters"]["format"] == CHECKPOINT_FORMAT
    assert asdict(read_settings(slim).loss) == asdict(expected)
    bad = read_checkpoint(shipped)
    bad["hyper_parameters"]["loss"]["feature_params"]["colour_magic"] = 3
    torch.save(bad, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match=r"unknown loss.feature_params \['colour_magic'\]"):
        read_settings(tmp_path / "bad.ckpt")
