"""Typed, range-checked configuration for the user-facing knobs.

Hydra composes ``conf/train.yaml`` on top of the :class:`TrainConf` schema registered here, so a
misspelled key (``model.num_clases=8``) or a wrong type (``model.num_classes=abc``) fails at once
with Hydra's message naming the key. :func:`validate` then converts the composed config to these
dataclasses, whose ``__post_init__`` checks ranges and names the offending key.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from wnet_seg.assets import asset
from wnet_seg.losses.soft_ncut import PAPER_RADIUS, PAPER_SIGMA_I, PAPER_SIGMA_X
from wnet_seg.models.wnet import DEFAULT_MEAN, DEFAULT_STD, PRESETS, WNetConfig


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
LOCAL_FEATURES = ("intensity", "rgb", "texture", "pmi")
WINDOWS = ("centred", "homogeneous")


@dataclass
class TextureConf:
    """Colour statistics over texture-scale boxes (:func:`wnet_seg.losses.features.texture_features`).

    Each group (pixel colour, box mean, box standard deviation at every scale) is multiplied by its
    weight, all on the 0-255 scale; a weight of 0 drops the group. ``window``: ``centred`` box or
    the most ``homogeneous`` box containing the pixel (sharp at region boundaries).
    """

    scales: list[int] = field(default_factory=lambda: [16])
    rgb_weight: float = 0.0
    mean_weight: float = 1.0
    std_weight: float = 1.0
    window: str = "centred"

    def check(self, key: str) -> None:
        """Range checks; ``key`` (e.g. ``loss.texture``) prefixes the names in messages."""
        _check(all(int(v) >= 1 for v in self.scales), f"{key}.scales", "sizes >= 1", self.scales)
        for name in ("rgb_weight", "mean_weight", "std_weight"):
            _check(getattr(self, name) >= 0, f"{key}.{name}", ">= 0", getattr(self, name))
        _check(self.window in WINDOWS, f"{key}.window", f"one of {list(WINDOWS)}", self.window)
        groups = self.rgb_weight > 0 or (
            bool(self.scales) and self.mean_weight + self.std_weight > 0
        )
        _check(groups, key, "a texture with at least one nonzero feature group", asdict(self))

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``texture_features``."""
        return dict(
            scales=tuple(int(v) for v in self.scales),
            rgb_weight=self.rgb_weight,
            mean_weight=self.mean_weight,
            std_weight=self.std_weight,
            window=self.window,
        )


@dataclass
class LossConf:
    """The whole objective, typed: these fields *are* the settings of
    :class:`wnet_seg.losses.objective.NCutObjective`, stored as they are in checkpoints.

    ``total = ncut_weight * ncut + recon_weight * reconstruction``, where
    ``ncut = local_weight * local + global_weight * global + entropy_weight * entropy``:

    - local: the paper's soft N-cut (``radius``, ``sigma_i`` on the 0-255 scale, ``sigma_x``) on
      ``features``: ``intensity`` (paper), ``rgb``, ``texture`` (statistics of ``texture``) or
      ``pmi`` (colour co-occurrence affinity, :mod:`wnet_seg.losses.pmi`); per image, or with
      ``batch_graph`` over the batch as one graph (a class need not appear in every crop);
    - global (off when ``global_weight=0``): the exact dense soft N-cut over ``global_samples``
      pixels per image pooled over the batch, affinity ``exp(-|f(u)-f(v)|^2/global_sigma^2)`` on
      ``global_texture`` statistics; pixels sampled with weight ``count(colour)^-global_rarity``,
      times ``global_gate_floor + (1 - floor) * interior`` when ``global_gate = tau > 0``
      (:func:`wnet_seg.losses.features.interior_weights`);
    - entropy: mean per-pixel entropy of the softmax (lets classes commit early).

    ``schedule="alternating"`` is the paper's: per batch, update the encoder on the N-cut, then the
    whole W-Net on the reconstruction; ``"joint"`` minimizes the total with one optimizer.
    """

    schedule: str = "alternating"
    ncut_weight: float = 1.0
    recon_weight: float = 1.0
    local_weight: float = 1.0
    features: str = "intensity"
    texture: TextureConf = field(default_factory=TextureConf)
    radius: float = PAPER_RADIUS
    sigma_i: float = PAPER_SIGMA_I
    sigma_x: float = PAPER_SIGMA_X
    batch_graph: bool = False
    global_weight: float = 0.0
    global_samples: int = 256
    global_sigma: float = 15.0
    global_texture: TextureConf = field(default_factory=TextureConf)
    global_rarity: float = 0.0
    global_gate: float = 0.0
    global_gate_floor: float = 0.1
    entropy_weight: float = 0.0
    nonfinite: str = "raise"

    def __post_init__(self) -> None:
        _check(
            self.schedule in SCHEDULES, "loss.schedule", f"one of {list(SCHEDULES)}", self.schedule
        )
        for name in ("ncut_weight", "recon_weight", "local_weight", "global_weight"):
            _check(getattr(self, name) >= 0, f"loss.{name}", ">= 0", getattr(self, name))
        _check(
            self.ncut_weight > 0 or self.recon_weight > 0,
            "loss.ncut_weight/recon_weight",
            "not both 0 (nothing to train)",
            (self.ncut_weight, self.recon_weight),
        )
        _check(
            self.local_weight > 0 or self.global_weight > 0 or self.ncut_weight == 0,
            "loss.local_weight/global_weight",
            "not both 0 while ncut_weight > 0 (no N-cut left)",
            (self.local_weight, self.global_weight),
        )
        _check(
            self.features in LOCAL_FEATURES,
            "loss.features",
            f"one of {list(LOCAL_FEATURES)}",
            self.features,
        )
        _check(
            self.features == "texture" or self.texture == TextureConf(),
            "loss.texture",
            "left at its defaults unless loss.features=texture (it would be ignored)",
            asdict(self.texture),
        )
        self.texture.check("loss.texture")
        self.global_texture.check("loss.global_texture")
        _check(self.radius >= 1, "loss.radius", ">= 1", self.radius)
        _check(self.sigma_i > 0, "loss.sigma_i", "> 0", self.sigma_i)
        _check(self.sigma_x > 0, "loss.sigma_x", "> 0", self.sigma_x)
        _check(self.global_samples >= 2, "loss.global_samples", ">= 2", self.global_samples)
        _check(self.global_sigma > 0, "loss.global_sigma", "> 0", self.global_sigma)
        _check(self.global_rarity >= 0, "loss.global_rarity", ">= 0", self.global_rarity)
        _check(self.global_gate >= 0, "loss.global_gate", ">= 0 (0: off)", self.global_gate)
        _check(
            0 < self.global_gate_floor <= 1,
            "loss.global_gate_floor",
            "in (0, 1]",
            self.global_gate_floor,
        )
        _check(self.entropy_weight >= 0, "loss.entropy_weight", ">= 0", self.entropy_weight)
        _check(
            self.nonfinite in ("raise", "skip"),
            "loss.nonfinite",
            "'raise' or 'skip'",
            self.nonfinite,
        )


OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass
class OptimConf:
    """Adam (default), AdamW or SGD; the paper's step schedule divides the lr by 10 every N epochs.

    :meth:`optimizer` and :meth:`scheduler` turn it into factories (``functools.partial``) that
    take the parameters (or the optimizer), as the Lightning module needs them.
    """

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    lr_step_epochs: int | None = None
    lr_gamma: float = 0.1
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        _check(self.name in OPTIMIZERS, "optim.name", "adam, adamw or sgd", self.name)
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

    def optimizer(self) -> Callable[..., torch.optim.Optimizer]:
        """``factory(params) -> optimizer`` with this config's settings."""
        if self.name == "sgd":
            return functools.partial(
                torch.optim.SGD, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
            )
        cls = torch.optim.AdamW if self.name == "adamw" else torch.optim.Adam
        return functools.partial(cls, lr=self.lr, weight_decay=self.weight_decay)

    def scheduler(self) -> Callable[..., torch.optim.lr_scheduler.LRScheduler] | None:
        """``factory(optimizer) -> per-epoch StepLR``, or ``None`` without an LR schedule."""
        if not self.lr_step_epochs:
            return None
        return functools.partial(
            torch.optim.lr_scheduler.StepLR, step_size=self.lr_step_epochs, gamma=self.lr_gamma
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
    ``extra_paths`` adds the images of more folders to training (e.g. frames of other games),
    ``balance`` repeats the smaller folders so each gives as many samples per epoch as the
    largest, ``extra_val_paths`` adds labelled validation folders (each with its classes.txt).
    Training augmentations (images only; masks never change): with probability ``augment_prob``
    a condition drawn from ``augment`` (non-resizing :mod:`wnet_seg.data.degrade` specs, e.g.
    ``jpeg:85``), and with probability ``colour_jitter`` a new palette (channels permuted, each
    channel through a random gamma in [0.6, 1.6]).
    ``max_train_images`` keeps the first N training images of ``path`` (sorted names);
    ``cache`` keeps decoded frames in memory (each process, each worker) instead of reading
    them again every epoch. Images reach the model in [0, 1]; ``mean``/``std`` normalize them
    inside the model (stored in checkpoints). ``batch_size`` is global: divided across DDP
    processes.
    """

    kind: str = "overfit"
    # The embedded demo frame and its mask (packaged, so the default works from any folder).
    path: str = field(default_factory=lambda: str(asset("demo/crafter.png")))
    mask_path: str | None = field(default_factory=lambda: str(asset("demo/crafter_mask.png")))
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
    extra_val_paths: list[str] = field(default_factory=list)
    extra_paths: list[str] = field(default_factory=list)
    balance: bool = False
    augment: list[str] = field(default_factory=list)
    augment_prob: float = 0.0
    colour_jitter: float = 0.0
    max_val_images: int | None = 64
    max_train_images: int | None = None
    cache: bool = False
    split_seed: int = 0
    mean: list[float] = field(default_factory=lambda: [DEFAULT_MEAN] * 3)
    std: list[float] = field(default_factory=lambda: [DEFAULT_STD] * 3)
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
        _check(0 <= self.augment_prob <= 1, "data.augment_prob", "in [0, 1]", self.augment_prob)
        _check(0 <= self.colour_jitter <= 1, "data.colour_jitter", "in [0, 1]", self.colour_jitter)
        from wnet_seg.data.degrade import parse_degradation

        for spec in self.augment:
            try:
                d = parse_degradation(spec)
            except ValueError as err:
                raise ConfigError(f"data.augment: {err}") from None
            _check(d.scale == 1, "data.augment", "conditions that keep the frame size", spec)
        _check(
            self.max_train_images is None or self.max_train_images >= 1,
            "data.max_train_images",
            ">= 1 or null",
            self.max_train_images,
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
    init_from: str | None = None
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
