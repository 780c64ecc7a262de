"""Safe, self-describing checkpoints: the one owner of every checkpoint read.

A wnet-seg checkpoint is a Lightning checkpoint (or a slim export of one) whose
``hyper_parameters`` hold only plain values:

    {"wnet_seg_version": "0.1.0", "format": 2,
     "model": {WNetConfig fields}, "norm": {"mean": [..], "std": [..]},
     "loss": {LossConf fields}, "optim": {OptimConf fields}}

and whose ``state_dict`` holds the W-Net's tensors under the prefix ``net.``. Files are always read
with ``torch.load(weights_only=True)`` (here and nowhere else): a checkpoint carrying pickled code
is refused, never run. Older formats are upgraded on load (:func:`upgrade_hparams`); every
failure is a :class:`CheckpointError` that names the file and the reason.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from wnet_seg import __version__
from wnet_seg.models.wnet import WNet, WNetConfig

# 2: the loss config is the typed LossConf (format 1 kept graph/texture options in feature_params).
CHECKPOINT_FORMAT = 2
STATE_PREFIX = "net."
# Format-1 ``loss.feature_params`` keys that became LossConf fields, and its texture keys.
_V1_LOSS_KEYS = (
    "batch_graph",
    "local_weight",
    "global_weight",
    "global_samples",
    "global_sigma",
    "global_rarity",
    "entropy_weight",
)
_V1_TEXTURE_KEYS = ("scales", "rgb_weight", "mean_weight", "std_weight", "window")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used, with the reason."""


@dataclass
class LoadedWNet:
    """A W-Net rebuilt from a checkpoint (normalization included), its upgraded hyperparameters
    and where it came from."""

    model: WNet
    hparams: dict[str, Any]
    path: Path


@dataclass
class TrainingSettings:
    """Everything a checkpoint says about how it was trained, typed (see :func:`read_settings`)."""

    model: WNetConfig
    loss: Any  # wnet_seg.config.LossConf
    optim: Any  # wnet_seg.config.OptimConf
    norm: dict[str, list[float]]
    state: dict[str, torch.Tensor]  # the W-Net's tensors, prefix "net." removed
    hparams: dict[str, Any]
    path: Path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint dict with ``weights_only=True``; refuse pickled code with a clear error.

    ``torch.load(weights_only=True)`` unpickles with an allow-list (tensors, containers, numbers,
    strings): a pickle that names any other callable (``os.system``, ``builtins.open``, a class
    with ``__reduce__``...) stops before that callable is ever looked up or called.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read checkpoint {path}: empty file (0 bytes)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(_refusal(path, err)) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"cannot read checkpoint {path}: truncated or not a torch.save file ({first})"
        ) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"{path} holds a {type(ckpt).__name__}, not a checkpoint dict: not a wnet-seg checkpoint"
        )
    if "state_dict" not in ckpt:
        if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            keys = ", ".join(list(ckpt)[:3])
            raise CheckpointError(
                f"{path} is a bare state_dict ({len(ckpt)} tensors: {keys}, ...), not a wnet-seg "
                "checkpoint: it has no hyper_parameters saying which architecture the weights fit"
            )
        raise CheckpointError(
            f"{path} is not a wnet-seg checkpoint (no 'state_dict'; keys: {sorted(map(str, ckpt))[:8]})"
        )
    if not isinstance(ckpt["state_dict"], dict):
        raise CheckpointError(f"{path}: 'state_dict' is a {type(ckpt['state_dict']).__name__}")
    return ckpt


def _refusal(path: Path, err: Exception) -> str:
    """Why the weights-only unpickler stopped, without torch's advice to switch it off."""
    text = str(err)
    m = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if m:
        return (
            f"refusing to load {path}: it references {m.group(1)}, which unpickling would call; "
            "wnet-seg loads only tensors and plain values (weights_only=True) and never runs code "
            "from a checkpoint. Use checkpoints written by wnet-seg-train."
        )
    detail = text.split("WeightsUnpickler error:", 1)[-1].split("Check the documentation")[0]
    detail = " ".join(detail.split()) or type(err).__name__
    return (
        f"refusing to load {path}: not a plain torch.save file of tensors and values ({detail}); "
        "it is damaged or carries pickled objects, which wnet-seg never unpickles"
    )


def check_format(hparams: Any, path: Path | str = "?") -> int:
    """The checkpoint's ``format``; :class:`CheckpointError` for a newer or malformed one."""
    if not isinstance(hparams, dict):
        raise CheckpointError(f"{path} has no hyper_parameters dict: not a wnet-seg checkpoint")
    fmt = hparams.get("format", 0)
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 0:
        raise CheckpointError(
            f"{path}: checkpoint 'format' must be a non-negative int, got {fmt!r}"
        )
    if fmt > CHECKPOINT_FORMAT:
        written = hparams.get("wnet_seg_version", "an unknown version")
        raise CheckpointError(
            f"{path} uses checkpoint format {fmt} (written by wnet-seg {written}), newer than "
            f"this wnet-seg ({__version__}) reads (format {CHECKPOINT_FORMAT}); upgrade wnet-seg"
        )
    return fmt


def model_config_from_hparams(hparams: dict[str, Any], path: Path | str = "?") -> WNetConfig:
    """The W-Net architecture stored in a checkpoint's hyperparameters."""
    check_format(hparams, path)
    model = hparams.get("model")
    if not isinstance(model, dict):
        raise CheckpointError(
            f"{path} has no 'model' hyperparameters: not a wnet-seg checkpoint, or one written "
            "before format 1"
        )
    known = {f.name for f in fields(WNetConfig)}
    unknown = sorted(set(model) - known)
    if unknown:
        raise CheckpointError(
            f"{path}: model settings {unknown} are unknown to this wnet-seg ({__version__}); the "
            f"checkpoint was written by wnet-seg {hparams.get('wnet_seg_version', '?')}"
        )
    try:
        return WNetConfig(**model)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: invalid model settings {model}: {err}") from None


def check_resumable(path: str | os.PathLike, hparams: dict[str, Any]) -> dict[str, Any]:
    """Read ``path`` and check that training with ``hparams`` can resume from it.

    The architecture must match exactly, and so must what shapes the optimizer state: the loss
    schedule (one or two optimizers), the optimizer and whether an LR schedule exists. Other
    settings (learning rate, loss weights, sigmas...) may change on resume. Returns the checkpoint.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    old = ckpt.get("hyper_parameters")
    config = model_config_from_hparams(old if isinstance(old, dict) else {}, path)
    differences = []
    new_model = dict(hparams.get("model") or {})
    for key, value in sorted(asdict(config).items()):
        if key in new_model and new_model[key] != value:
            differences.append(
                f"model.{key} is {value!r} in the checkpoint, {new_model[key]!r} now"
            )
    old_loss, new_loss = old.get("loss") or {}, hparams.get("loss") or {}
    old_optim, new_optim = old.get("optim") or {}, hparams.get("optim") or {}

    def lr_schedule(optim: dict) -> str:
        return "set" if optim.get("lr_step_epochs") else "null"

    for key, was, now in (
        (
            "loss.schedule",
            old_loss.get("schedule", "alternating"),
            new_loss.get("schedule", "alternating"),
        ),
        ("optim.name", old_optim.get("name"), new_optim.get("name")),
        ("optim.lr_step_epochs", lr_schedule(old_optim), lr_schedule(new_optim)),
    ):
        if was != now:
            differences.append(f"{key} is {was} in the checkpoint, {now} now")
    if differences:
        raise CheckpointError(
            f"cannot resume from {path}: " + "; ".join(differences) + ". Use the checkpoint's "
            "settings, or start a new run (ckpt_path=null)."
        )
    return ckpt


def upgrade_hparams(hparams: dict[str, Any], path: Path | str = "?") -> dict[str, Any]:
    """Hyperparameters of any readable format as the current format describes them.

    Format 0/1 -> 2: the graph, long-range and entropy options that rode in
    ``loss.feature_params`` become :class:`~wnet_seg.config.LossConf` fields, its texture keys
    ``loss.texture`` and ``loss.global_feature_params`` ``loss.global_texture``.
    """
    fmt = check_format(hparams, path)
    hp = {k: (dict(v) if isinstance(v, dict) else v) for k, v in hparams.items()}
    if fmt < 2 and isinstance(hp.get("loss"), dict):
        loss = dict(hp["loss"])
        params = dict(loss.pop("feature_params", None) or {})
        for key in _V1_LOSS_KEYS:
            if key in params:
                loss[key] = params.pop(key)
        if "global_feature_params" in params:
            loss["global_texture"] = params.pop("global_feature_params")
        texture = {k: params.pop(k) for k in _V1_TEXTURE_KEYS if k in params}
        if params:
            raise CheckpointError(f"{path}: unknown loss.feature_params {sorted(params)}")
        if texture:
            loss["texture"] = texture
        for key in ("texture", "global_texture"):
            scales = (loss.get(key) or {}).get("scales")
            if isinstance(scales, int | float):
                loss[key]["scales"] = [int(scales)]
        hp["loss"] = loss
    hp["format"] = CHECKPOINT_FORMAT
    return hp


def _state_of_net(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The W-Net's tensors without the ``net.`` prefix (``torch.compile``'s ``_orig_mod.`` too)."""
    state = {}
    for key, value in ckpt["state_dict"].items():
        if key.startswith(STATE_PREFIX):
            state[key[len(STATE_PREFIX) :].replace("_orig_mod.", "")] = value
    return state


def _typed(cls: type, values: Any, key: str, path: Path) -> Any:
    """``values`` (a plain dict) as the dataclass ``cls``, with the schema's own checks."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), values or {}))
    except Exception as err:  # ConfigError, omegaconf ValidationError: name the file and key
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: invalid {key} settings: {first}") from None


def read_settings(path: str | os.PathLike) -> TrainingSettings:
    """Read a checkpoint, upgrade it and rebuild its typed settings (architecture, loss, optimizer,
    normalization) and the network's tensors. The one place a checkpoint's config is converted."""
    from wnet_seg.config import LossConf, OptimConf

    path = Path(path)
    ckpt = read_checkpoint(path)
    hp = upgrade_hparams(ckpt.get("hyper_parameters") or {}, path)
    model = model_config_from_hparams(hp, path)
    norm = hp.get("norm") or {}
    return TrainingSettings(
        model=model,
        loss=_typed(LossConf, hp.get("loss"), "loss", path),
        optim=_typed(OptimConf, hp.get("optim"), "optim", path),
        norm={"mean": list(norm.get("mean") or []), "std": list(norm.get("std") or [])},
        state=_state_of_net(ckpt),
        hparams=hp,
        path=path,
    )


def build_wnet(
    config: WNetConfig, state: dict[str, torch.Tensor], norm: dict[str, Any], path: Path | str
) -> WNet:
    """A W-Net of ``config`` with ``state`` loaded and ``norm`` as its input normalization."""
    model = WNet(config, mean=norm.get("mean") or None, std=norm.get("std") or None)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: weights do not fit the stored architecture: {err}"
        ) from None
    return model


def load_wnet(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> LoadedWNet:
    """Rebuild the W-Net of a checkpoint in eval mode, with its input normalization."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    hparams = upgrade_hparams(ckpt.get("hyper_parameters") or {}, path)
    config = model_config_from_hparams(hparams, path)
    model = build_wnet(config, _state_of_net(ckpt), hparams.get("norm") or {}, path)
    model.to(map_location).eval()
    return LoadedWNet(model=model, hparams=hparams, path=path)


def load_weights(net: WNet, path: str | os.PathLike) -> None:
    """Copy a checkpoint's weights into ``net`` (fine-tuning); its architecture must be the same.

    A different architecture or number of classes is a :class:`CheckpointError` naming every
    differing setting; the optimizer and schedule of the checkpoint are not used.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    hparams = upgrade_hparams(ckpt.get("hyper_parameters") or {}, path)
    config = model_config_from_hparams(hparams, path)
    differ = [
        f"model.{k} is {v!r} in the checkpoint, {getattr(net.config, k)!r} here"
        for k, v in asdict(config).items()
        if getattr(net.config, k) != v
    ]
    if differ:
        raise CheckpointError(
            f"cannot initialise from {path}: " + "; ".join(differ) + ". Use the checkpoint's "
            "architecture (e.g. model.num_classes, model.base_width) to fine-tune it."
        )
    net.load_state_dict(build_wnet(config, _state_of_net(ckpt), {}, path).state_dict())


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A process killed at any point leaves either the old file or the new one, never a torn mix; a
    killed write may leave a hidden ``.<name>.*.tmp`` beside it, which nothing reads.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (power loss), where the OS allows syncing a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write a slim copy of a training checkpoint: weights (fp32) and hyperparameters only."""
    ckpt = read_checkpoint(src)
    slim = {
        "state_dict": {
            k: v.float() if v.is_floating_point() else v
            for k, v in ckpt["state_dict"].items()
            if k.startswith(STATE_PREFIX)
        },
        "hyper_parameters": upgrade_hparams(ckpt.get("hyper_parameters") or {}, src),
        "global_step": ckpt.get("global_step", 0),
        "epoch": ckpt.get("epoch", 0),
        "pytorch-lightning_version": ckpt.get("pytorch-lightning_version", ""),
    }
    atomic_torch_save(slim, dst)
    return Path(dst)
