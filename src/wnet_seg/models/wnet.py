"""The W-Net of Xia & Kulis (2017): two stacked U-Nets, U_Enc (image -> K-way softmax) and
U_Dec (K-way soft segmentation -> image).

At the paper's size (``base_width=64``, ``depth=4``) each U-Net has 9 modules (4 down, a bottleneck,
4 up) of two 3x3 convolutions, each followed by ReLU then batch norm, 4 transposed convolutions and
a final 1x1 convolution: 18 modules and 46 convolutional layers in all. Every module except the
first and last of each U-Net uses depthwise-separable convolutions. Plain ``nn.Module``s; nothing
here knows about Lightning.

The network owns its input normalization (``mean``/``std`` per channel, stored in checkpoints
beside the architecture): :meth:`WNet.normalize` is the one place frames in [0, 1] become network
input, and :meth:`WNet.encode_frames` segments frames as they come (uint8 or [0, 1]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class WNetConfig:
    """Architecture of a W-Net; stored in checkpoints so a model rebuilds from plain values."""

    in_channels: int = 3
    num_classes: int = 12
    base_width: int = 64
    depth: int = 4
    separable: bool = True
    dropout: float = 0.65

    def __post_init__(self) -> None:
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {self.in_channels}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.base_width < 1:
            raise ValueError(f"base_width must be >= 1, got {self.base_width}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


# Default input normalization (per channel, images in [0, 1]); `wnet-seg-stats` measures a dataset's.
DEFAULT_MEAN = 0.5
DEFAULT_STD = 0.25

PRESETS: dict[str, dict] = {
    # The paper: 64 -> 1024 channels, 4 poolings, separable convs, dropout 0.65 (drop probability).
    "paper": dict(base_width=64, depth=4, separable=True, dropout=0.65),
    # Trains in minutes on a laptop CPU; same topology, 16 -> 128 channels, 3 poolings.
    "small": dict(base_width=16, depth=3, separable=True, dropout=0.1),
}


def preset(name: str, **overrides) -> WNetConfig:
    """A named architecture (``paper`` or ``small``) with optional field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return WNetConfig(**{**PRESETS[name], **overrides})


def _conv3x3(cin: int, cout: int, separable: bool) -> nn.Module:
    if not separable:
        return nn.Conv2d(cin, cout, 3, padding=1)
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),  # depthwise
        nn.Conv2d(cin, cout, 1),  # pointwise
    )


class ConvModule(nn.Sequential):
    """One U-Net module: (3x3 conv -> ReLU -> BatchNorm) twice, optional dropout."""

    def __init__(self, cin: int, cout: int, separable: bool, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = [
            _conv3x3(cin, cout, separable),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(cout),
            _conv3x3(cout, cout, separable),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(cout),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class UNet(nn.Module):
    """A U-Net with ``depth`` poolings; widths ``base_width * 2**level``; skip connections."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_width: int,
        depth: int,
        separable: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        widths = [base_width * 2**i for i in range(depth + 1)]
        n_modules = 2 * depth + 1
        # First and last module use regular convs (the paper); the others separable if asked.
        self.down = nn.ModuleList()
        cin = in_channels
        for i, w in enumerate(widths[:-1]):
            self.down.append(ConvModule(cin, w, separable and i > 0, dropout))
            cin = w
        self.bottleneck = ConvModule(cin, widths[-1], separable and n_modules > 2, dropout)
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for i, w in enumerate(reversed(widths[:-1])):
            last = i == depth - 1
            self.upsample.append(nn.ConvTranspose2d(w * 2, w, 2, stride=2))
            self.up.append(ConvModule(w * 2, w, separable and not last, 0.0 if last else dropout))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.multiple = 2**depth

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for module in self.down:
            x = module(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for upsample, module, skip in zip(self.upsample, self.up, reversed(skips), strict=True):
            x = module(torch.cat([skip, upsample(x)], dim=1))
        return self.head(x)


def _pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # Replicate: no invented colours at the border (zeros would be a fake dark texture).
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


class WNet(nn.Module):
    """W-Net: ``encode`` gives K-way softmax probabilities, ``decode`` reconstructs the image.

    Inputs of any height and width work: they are padded to a multiple of ``2**depth`` inside
    and cropped back. ``encode``/``decode``/``forward`` take normalized input
    (:meth:`normalize`); :meth:`encode_frames` takes frames as they come.
    """

    def __init__(
        self,
        config: WNetConfig | None = None,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        **kwargs,
    ) -> None:
        super().__init__()
        if config is None:
            config = WNetConfig(**kwargs)
        elif kwargs:
            raise TypeError("pass either a WNetConfig or keyword arguments, not both")
        self.config = config
        c = config
        mean = [DEFAULT_MEAN] * c.in_channels if mean is None else list(mean)
        std = [DEFAULT_STD] * c.in_channels if std is None else list(std)
        if len(mean) != c.in_channels or len(std) != c.in_channels or min(std) <= 0:
            raise ValueError(f"need {c.in_channels} means and stds > 0, got {mean}, {std}")
        # Not in the state dict (checkpoints keep them as plain values beside the architecture).
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.memory_format = torch.contiguous_format
        self.encoder = UNet(
            c.in_channels, c.num_classes, c.base_width, c.depth, c.separable, c.dropout
        )
        self.decoder = UNet(
            c.num_classes, c.in_channels, c.base_width, c.depth, c.separable, c.dropout
        )

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def norm(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}`` as stored in checkpoints."""
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}

    def to_channels_last(self) -> WNet:
        """Weights and (from :meth:`normalize` on) inputs in channels-last memory format."""
        self.memory_format = torch.channels_last
        return self.to(memory_format=torch.channels_last)

    def normalize(self, image01: Tensor) -> Tensor:
        """Network input from images ``(B, C, H, W)`` in [0, 1]."""
        x = (image01 - self.mean) / self.std
        return x.contiguous(memory_format=self.memory_format)

    def denormalize(self, x: Tensor) -> Tensor:
        """Back to [0, 1] units (e.g. the decoder's reconstruction)."""
        return x * self.std + self.mean

    def encode_frames(self, frames: np.ndarray | Tensor) -> Tensor:
        """Soft segmentation ``(B, K, H, W)`` of frames: uint8 ``(B, H, W, C)`` (array or tensor,
        as read from image files) or float ``(B, C, H, W)`` in [0, 1]."""
        x = torch.as_tensor(frames)
        if x.dtype == torch.uint8:
            x = x.to(self.mean.device).permute(0, 3, 1, 2).float().div_(255.0)
        return self.encode(self.normalize(x.to(self.mean.device, self.mean.dtype)))

    def encode_logits(self, x: Tensor) -> Tensor:
        """Segmentation logits ``(B, K, H, W)`` for a normalized image ``(B, C, H, W)``."""
        xp, (h, w) = _pad_to_multiple(x, self.encoder.multiple)
        return self.encoder(xp)[..., :h, :w]

    def encode(self, x: Tensor) -> Tensor:
        """Soft segmentation ``(B, K, H, W)``: softmax over classes (no ReLU before it)."""
        return self.encode_logits(x).softmax(dim=1)

    def decode(self, probs: Tensor) -> Tensor:
        """Reconstruction ``(B, C, H, W)`` of the normalized image; linear output (no squashing)."""
        pp, (h, w) = _pad_to_multiple(probs, self.decoder.multiple)
        return self.decoder(pp)[..., :h, :w]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        probs = self.encode(x)
        return probs, self.decode(probs)


def count_conv_layers(module: nn.Module) -> int:
    """Convolutional layers as the paper counts them: a depthwise+pointwise pair counts once."""
    n = 0
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d):
            n += 1
        elif isinstance(m, nn.Conv2d) and not (m.groups > 1 and m.groups == m.in_channels):
            n += 1  # pointwise or regular conv; the depthwise half of a pair is not counted
    return n


def count_modules(model: WNet) -> int:
    return sum(isinstance(m, ConvModule) for m in model.modules())
