"""The N-cut side of the W-Net objective, built from the ``loss`` config.

One place that turns config values (affinity features, sigmas, radius) into a callable the
Lightning module uses, so new affinity designs plug in without touching the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from wnet_seg.losses.soft_ncut import image_features, soft_ncut_loss


@dataclass
class NCutSettings:
    """Affinity and neighbourhood of the soft N-cut. ``sigma_i`` is on the 0-255 scale."""

    radius: float = 5.0
    sigma_i: float = 10.0
    sigma_x: float = 4.0
    features: str = "intensity"
    feature_params: dict[str, Any] = field(default_factory=dict)


class NCutObjective(nn.Module):
    """``forward(probs, image_255) -> (loss, logs)``: the per-image-averaged soft N-cut."""

    def __init__(self, settings: NCutSettings) -> None:
        super().__init__()
        self.settings = settings

    def features(self, image_255: Tensor) -> Tensor:
        s = self.settings
        if s.features in ("intensity", "rgb"):
            return image_features(image_255, s.features)  # type: ignore[arg-type]
        raise ValueError(f"unknown affinity features {s.features!r}")

    def forward(self, probs: Tensor, image_255: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        s = self.settings
        loss = soft_ncut_loss(
            probs,
            image_255,
            radius=s.radius,
            sigma_i=s.sigma_i,
            sigma_x=s.sigma_x,
            features=self.features(image_255),
        )
        return loss, {"ncut": loss.detach()}
