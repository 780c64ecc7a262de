"""Safe, self-describing checkpoints.

A wnet-seg checkpoint is a Lightning checkpoint (or a slim export of one) whose
``hyper_parameters`` hold only plain values:

    {"wnet_seg_version": "0.1.0", "format": 1,
     "model": {WNetConfig fields}, "norm": {"mean": [..], "std": [..]}, ...}

and whose ``state_dict`` holds the W-Net's tensors under the prefix ``net.``. Files are always read
with ``torch.load(weights_only=True)``: a checkpoint carrying pickled code is refused, never run.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from wnet_seg import __version__
from wnet_seg.models.wnet import WNet, WNetConfig

CHECKPOINT_FORMAT = 1
STATE_PREFIX = "net."


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used, with the reason."""


@dataclass
class LoadedWNet:
    """A W-Net rebuilt from a checkpoint, with what inference needs to feed it."""

    model: WNet
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hparams: dict[str, Any]
    path: Path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint dict with ``weights_only=True``; refuse pickled code with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"refusing to load {path}: it contains pickled objects other than tensors and plain "
            f"values (possibly code), which wnet-seg never executes. Details: {err}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a wnet-seg checkpoint (no state_dict)")
    return ckpt


def model_config_from_hparams(hparams: dict[str, Any], path: Path | str = "?") -> WNetConfig:
    """The W-Net architecture stored in a checkpoint's hyperparameters."""
    model = hparams.get("model")
    if not isinstance(model, dict):
        raise CheckpointError(
            f"{path} has no 'model' hyperparameters: not a wnet-seg checkpoint, or one written "
            "before format 1"
        )
    fmt = hparams.get("format", 0)
    if fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} uses checkpoint format {fmt}, newer than this wnet-seg ({__version__}) reads "
            f"(format {CHECKPOINT_FORMAT}); upgrade wnet-seg"
        )
    known = {f.name for f in fields(WNetConfig)}
    return WNetConfig(**{k: v for k, v in model.items() if k in known})


def load_wnet(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> LoadedWNet:
    """Rebuild the W-Net of a checkpoint in eval mode, with its input normalization."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    hparams = ckpt.get("hyper_parameters") or {}
    config = model_config_from_hparams(hparams, path)
    model = WNet(config)
    state = {
        k[len(STATE_PREFIX) :]: v
        for k, v in ckpt["state_dict"].items()
        if k.startswith(STATE_PREFIX) and "_orig_mod." not in k
    }
    # torch.compile'd modules store keys as net._orig_mod.<name>; accept those too.
    state.update(
        {
            k[len(STATE_PREFIX + "_orig_mod.") :]: v
            for k, v in ckpt["state_dict"].items()
            if k.startswith(STATE_PREFIX + "_orig_mod.")
        }
    )
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: weights do not fit the stored architecture: {err}"
        ) from None
    norm = hparams.get("norm") or {}
    mean = tuple(float(v) for v in norm.get("mean", (0.5,) * config.in_channels))
    std = tuple(float(v) for v in norm.get("std", (0.25,) * config.in_channels))
    model.to(map_location).eval()
    return LoadedWNet(model=model, mean=mean, std=std, hparams=hparams, path=path)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: never a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write a slim copy of a training checkpoint: weights (fp32) and hyperparameters only."""
    ckpt = read_checkpoint(src)
    slim = {
        "state_dict": {
            k: v.float() if v.is_floating_point() else v
            for k, v in ckpt["state_dict"].items()
            if k.startswith(STATE_PREFIX)
        },
        "hyper_parameters": ckpt.get("hyper_parameters", {}),
        "global_step": ckpt.get("global_step", 0),
        "epoch": ckpt.get("epoch", 0),
        "pytorch-lightning_version": ckpt.get("pytorch-lightning_version", ""),
    }
    atomic_torch_save(slim, dst)
    return Path(dst)
