"""Typed, range-checked configuration for the user-facing knobs.

Hydra composes ``conf/train.yaml`` on top of the :class:`TrainConf` schema registered here, so a
misspelled key (``model.num_clases=8``) or a wrong type (``model.num_classes=abc``) fails at once
with Hydra's message naming the key. :func:`validate` then converts the composed config to these
dataclasses, whose ``__post_init__`` checks ranges and names the offending key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from wnet_seg.models.wnet import PRESETS, WNetConfig


class ConfigError(ValueError):
    """A config value outside its allowed range; the message names the key."""


def _check(ok: bool, key: str, allowed: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")


@dataclass
class ModelConf:
    """W-Net architecture: a preset plus optional overrides (None keeps the preset's value)."""

    preset: str = "small"
    num_classes: int = 12
    in_channels: int = 3
    base_width: int | None = None
    depth: int | None = None
    separable: bool | None = None
    dropout: float | None = None

    def __post_init__(self) -> None:
        _check(self.preset in PRESETS, "model.preset", f"one of {sorted(PRESETS)}", self.preset)
        _check(self.num_classes >= 2, "model.num_classes", ">= 2", self.num_classes)
        _check(self.in_channels >= 1, "model.in_channels", ">= 1", self.in_channels)
        _check(
            self.base_width is None or self.base_width >= 1,
            "model.base_width",
            ">= 1",
            self.base_width,
        )
        _check(self.depth is None or 1 <= self.depth <= 8, "model.depth", "in [1, 8]", self.depth)
        _check(
            self.dropout is None or 0.0 <= self.dropout < 1.0,
            "model.dropout",
            "in [0, 1)",
            self.dropout,
        )

    def to_wnet_config(self) -> WNetConfig:
        values = dict(PRESETS[self.preset])
        for key in ("base_width", "depth", "separable", "dropout"):
            if getattr(self, key) is not None:
                values[key] = getattr(self, key)
        return WNetConfig(in_channels=self.in_channels, num_classes=self.num_classes, **values)


SCHEDULES = ("alternating", "joint")


@dataclass
class LossConf:
    """Soft N-cut + reconstruction. ``sigma_i`` is on the 0-255 scale of the image features.

    ``schedule="alternating"`` is the paper's: per batch, update the encoder on the N-cut, then the
    whole W-Net on the reconstruction. ``"joint"`` minimizes the weighted sum with one optimizer.
    """

    schedule: str = "alternating"
    ncut_weight: float = 1.0
    recon_weight: float = 1.0
    radius: float = 5.0
    sigma_i: float = 10.0
    sigma_x: float = 4.0
    features: str = "intensity"
    feature_params: dict[str, Any] = field(default_factory=dict)
    nonfinite: str = "raise"

    def __post_init__(self) -> None:
        _check(
            self.schedule in SCHEDULES, "loss.schedule", f"one of {list(SCHEDULES)}", self.schedule
        )
        _check(self.ncut_weight >= 0, "loss.ncut_weight", ">= 0", self.ncut_weight)
        _check(self.recon_weight >= 0, "loss.recon_weight", ">= 0", self.recon_weight)
        _check(
            self.ncut_weight > 0 or self.recon_weight > 0,
            "loss.ncut_weight/recon_weight",
            "not both 0 (nothing to train)",
            (self.ncut_weight, self.recon_weight),
        )
        _check(self.radius >= 1, "loss.radius", ">= 1", self.radius)
        _check(self.sigma_i > 0, "loss.sigma_i", "> 0", self.sigma_i)
        _check(self.sigma_x > 0, "loss.sigma_x", "> 0", self.sigma_x)
        _check(
            self.nonfinite in ("raise", "skip"),
            "loss.nonfinite",
            "'raise' or 'skip'",
            self.nonfinite,
        )
        from wnet_seg.losses.objective import NCutSettings

        try:  # features / feature_params: the objective's own checks, reported as config errors
            NCutSettings(
                radius=self.radius,
                sigma_i=self.sigma_i,
                sigma_x=self.sigma_x,
                features=self.features,
                feature_params=dict(self.feature_params or {}),
            )
        except (TypeError, ValueError) as err:
            raise ConfigError(str(err)) from None


@dataclass
class OptimConf:
    """Adam (default) or SGD; the paper's step schedule divides the lr by 10 every N epochs."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    lr_step_epochs: int | None = None
    lr_gamma: float = 0.1
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        _check(self.name in ("adam", "adamw", "sgd"), "optim.name", "adam, adamw or sgd", self.name)
        _check(self.lr > 0, "optim.lr", "> 0", self.lr)
        _check(self.weight_decay >= 0, "optim.weight_decay", ">= 0", self.weight_decay)
        _check(0 <= self.momentum < 1, "optim.momentum", "in [0, 1)", self.momentum)
        _check(
            self.lr_step_epochs is None or self.lr_step_epochs >= 1,
            "optim.lr_step_epochs",
            ">= 1 or null",
            self.lr_step_epochs,
        )
        _check(0 < self.lr_gamma <= 1, "optim.lr_gamma", "in (0, 1]", self.lr_gamma)
        _check(
            self.grad_clip is None or self.grad_clip > 0, "optim.grad_clip", "> 0", self.grad_clip
        )


DATA_KINDS = ("overfit", "screenshots")


@dataclass
class DataConf:
    """What to train on and how to cut it.

    ``kind=overfit``: one image (``path``) repeated ``length`` times per epoch, validated once.
    ``kind=screenshots``: every image under ``path`` (recursive; a ``path/images`` folder is used
    when present), split train/val by ``split_seed``; masks (``masks_dir`` or ``path/masks``) with
    the same relative names are used for validation metrics only. ``val_path`` validates on a
    separate folder instead of a split of ``path`` (e.g. held-out worlds, with masks);
    ``extra_paths`` adds the images of more folders to training (e.g. frames of other games).
    Images reach the model in [0, 1]; ``mean``/``std`` normalize them inside the model (stored in
    checkpoints). ``batch_size`` is global: divided across DDP processes.
    """

    kind: str = "overfit"
    path: str = "data/demo/crafter.png"
    mask_path: str | None = None
    masks_dir: str | None = None
    length: int = 2000
    batch_size: int = 8
    val_batch_size: int = 1
    num_workers: int = 0
    crop_size: int | None = 128
    scale: int = 1
    native_scale: bool = False
    aug: bool = True
    val_fraction: float = 0.1
    val_path: str | None = None
    extra_paths: list[str] = field(default_factory=list)
    max_val_images: int | None = 64
    split_seed: int = 0
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])
    on_bad_file: str = "skip"

    def __post_init__(self) -> None:
        _check(self.kind in DATA_KINDS, "data.kind", f"one of {list(DATA_KINDS)}", self.kind)
        _check(bool(self.path), "data.path", "a file or folder path", self.path)
        _check(self.length >= 1, "data.length", ">= 1", self.length)
        _check(self.batch_size >= 1, "data.batch_size", ">= 1", self.batch_size)
        _check(self.val_batch_size >= 1, "data.val_batch_size", ">= 1", self.val_batch_size)
        _check(self.num_workers >= 0, "data.num_workers", ">= 0", self.num_workers)
        _check(
            self.crop_size is None or self.crop_size >= 8,
            "data.crop_size",
            ">= 8 or null",
            self.crop_size,
        )
        _check(
            self.scale >= 1, "data.scale", ">= 1 (integer nearest-neighbour upscale)", self.scale
        )
        _check(0 <= self.val_fraction < 1, "data.val_fraction", "in [0, 1)", self.val_fraction)
        _check(self.split_seed >= 0, "data.split_seed", ">= 0", self.split_seed)
        _check(
            self.max_val_images is None or self.max_val_images >= 1,
            "data.max_val_images",
            ">= 1 or null",
            self.max_val_images,
        )
        _check(
            len(self.mean) == len(self.std) >= 1,
            "data.mean/std",
            "lists of equal length",
            (self.mean, self.std),
        )
        _check(all(s > 0 for s in self.std), "data.std", "all > 0", self.std)
        _check(all(0 <= m <= 1 for m in self.mean), "data.mean", "all in [0, 1]", self.mean)
        _check(
            self.on_bad_file in ("skip", "fail"),
            "data.on_bad_file",
            "'skip' or 'fail'",
            self.on_bad_file,
        )


@dataclass
class TrainConf:
    """The whole training run. ``trainer``/``callbacks``/``logger`` are Lightning's own kwargs."""

    data: DataConf = field(default_factory=DataConf)
    model: ModelConf = field(default_factory=ModelConf)
    loss: LossConf = field(default_factory=LossConf)
    optim: OptimConf = field(default_factory=OptimConf)
    trainer: dict[str, Any] = field(default_factory=dict)
    callbacks: dict[str, Any] = field(default_factory=dict)
    logger: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, Any] = field(default_factory=dict)
    task_name: str = "train"
    tags: list[str] = field(default_factory=list)
    seed: int | None = 42
    train: bool = True
    test: bool = False
    ckpt_path: str | None = None
    visualize: bool = False
    channels_last: bool = False
    compile: bool = False
    image_log_every_n_steps: int = 50
    val_tiles: bool = True
    num_output_pngs: int = 8
    save_every_n_steps: int | None = None
    optimized_metric: str | None = None

    def __post_init__(self) -> None:
        _check(
            self.seed is None or 0 <= self.seed < 2**32,
            "seed",
            "in [0, 2**32) or null",
            self.seed,
        )
        _check(
            bool(self.task_name)
            and "/" not in self.task_name
            and self.task_name not in (".", ".."),
            "task_name",
            "a non-empty folder name without '/'",
            self.task_name,
        )
        _check(
            self.model.in_channels == 3,
            "model.in_channels",
            "3 (images are read as RGB)",
            self.model.in_channels,
        )
        _check(
            len(self.data.mean) == self.model.in_channels,
            "data.mean/std",
            f"lists of model.in_channels={self.model.in_channels} values",
            (self.data.mean, self.data.std),
        )
        _check(
            self.image_log_every_n_steps >= 1,
            "image_log_every_n_steps",
            ">= 1",
            self.image_log_every_n_steps,
        )
        _check(self.num_output_pngs >= 0, "num_output_pngs", ">= 0", self.num_output_pngs)
        _check(
            self.save_every_n_steps is None or self.save_every_n_steps >= 1,
            "save_every_n_steps",
            ">= 1 or null",
            self.save_every_n_steps,
        )


def register_configs() -> None:
    """Register the schema so ``train.yaml`` can list ``train_schema`` first in its defaults."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConf)


def validate(cfg: DictConfig) -> TrainConf:
    """Type- and range-check a composed config; raise :class:`ConfigError` naming the key."""
    schema = OmegaConf.structured(TrainConf)
    try:
        merged = OmegaConf.merge(schema, cfg)
        return OmegaConf.to_object(merged)  # runs every __post_init__
    except ConfigError:
        raise
    except Exception as err:  # omegaconf ValidationError / KeyError carry the full key
        raise ConfigError(str(err).splitlines()[0] + _key_hint(err)) from None


def _key_hint(err: Exception) -> str:
    key = getattr(err, "full_key", None)
    return f" (key: {key})" if key else ""
