"""The N-cut side of the W-Net objective, built from the ``loss`` config.

One place that turns config values (affinity features, sigmas, radius, graph options) into a
callable the Lightning module uses, so new affinity designs plug in without touching the training
loop. ``forward(probs, image_255) -> (loss, logs)``.

Options beyond the paper (all off by default, so the defaults are the paper's loss):

- ``features="texture"``: the local affinity compares colour statistics over a texture-scale box
  (:func:`wnet_seg.losses.features.texture_features`, parameters in ``feature_params``) instead of
  single pixels' intensity.
- ``batch_graph``: the N-cut of the whole batch as one graph (the disjoint union of the images'
  local graphs) instead of the mean of per-image N-cuts, so a class need not appear in every image.
- ``global_weight > 0``: adds ``global_weight`` times the exact soft N-cut of the complete graph on
  ``global_samples`` random pixels per image pooled over the batch, with affinity
  ``exp(-|f(u) - f(v)|^2 / global_sigma^2)`` on texture features (``global_feature_params``), so
  the same texture anywhere (any image of the batch) is pulled into one class. With
  ``global_rarity = a > 0`` pixels are sampled with weight ``count(their colour)^-a`` so small
  sprites are not left out of the sample.
- ``entropy_weight > 0``: adds the mean per-pixel entropy of the softmax. Soft assignments make the
  N-cut's symmetric start a slow saddle (a class at probability ``a`` on a perfect cluster scores
  only ``a``); a small push towards confident pixels lets classes commit early.

See :mod:`wnet_seg.losses.graph_ncut` for the math.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from wnet_seg.losses.features import texture_features
from wnet_seg.losses.graph_ncut import (
    batch_local_ncut,
    colour_rarity_weights,
    sampled_dense_ncut,
)
from wnet_seg.losses.soft_ncut import image_features, soft_ncut_loss

FEATURE_MODES = ("intensity", "rgb", "texture")
# Keys that may also be given inside ``feature_params`` (for configs whose schema only passes
# ``features`` and ``feature_params``); they are moved onto the settings' own fields.
_GRAPH_KEYS = (
    "batch_graph",
    "local_weight",
    "global_weight",
    "global_samples",
    "global_sigma",
    "global_feature_params",
    "global_rarity",
    "entropy_weight",
)
_TEXTURE_KEYS = ("scales", "rgb_weight", "mean_weight", "std_weight", "window")


@dataclass
class NCutSettings:
    """Affinity and neighbourhood of the soft N-cut. ``sigma_i`` is on the 0-255 scale."""

    radius: float = 5.0
    sigma_i: float = 10.0
    sigma_x: float = 4.0
    features: str = "intensity"
    feature_params: dict[str, Any] = field(default_factory=dict)
    batch_graph: bool = False
    local_weight: float = 1.0
    global_weight: float = 0.0
    global_samples: int = 256
    global_sigma: float = 15.0
    global_feature_params: dict[str, Any] = field(default_factory=dict)
    global_rarity: float = 0.0
    entropy_weight: float = 0.0

    def __post_init__(self) -> None:
        params = dict(self.feature_params or {})
        for key in _GRAPH_KEYS:
            if key in params:
                setattr(self, key, params.pop(key))
        self.feature_params = params
        self.global_feature_params = dict(self.global_feature_params or {})
        if self.features not in FEATURE_MODES:
            raise ValueError(f"loss.features must be one of {FEATURE_MODES}, got {self.features!r}")
        if self.features != "texture" and params:
            raise ValueError(
                f"loss.feature_params {sorted(params)} only apply to features='texture'"
            )
        for name, p in (
            ("feature_params", params),
            ("global_feature_params", self.global_feature_params),
        ):
            bad = sorted(set(p) - set(_TEXTURE_KEYS))
            if bad:
                raise ValueError(
                    f"unknown loss.{name} keys {bad}; expected some of {_TEXTURE_KEYS}"
                )
        if self.global_rarity < 0:
            raise ValueError(f"global_rarity must be >= 0, got {self.global_rarity}")
        if self.entropy_weight < 0:
            raise ValueError(f"entropy_weight must be >= 0, got {self.entropy_weight}")
        if self.local_weight < 0 or self.global_weight < 0:
            raise ValueError(
                f"loss weights must be >= 0, got local_weight={self.local_weight}, "
                f"global_weight={self.global_weight}"
            )
        if self.local_weight == 0 and self.global_weight == 0:
            raise ValueError("local_weight and global_weight are both 0: no N-cut left")
        if int(self.global_samples) < 2:
            raise ValueError(f"global_samples must be >= 2, got {self.global_samples}")
        if self.global_sigma <= 0:
            raise ValueError(f"global_sigma must be > 0, got {self.global_sigma}")


def _texture_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    kw = dict(params)
    if "scales" in kw:
        s = kw["scales"]
        kw["scales"] = (int(s),) if isinstance(s, int | float) else tuple(int(v) for v in s)
    return kw


class NCutObjective(nn.Module):
    """``forward(probs, image_255) -> (loss, logs)``: the soft N-cut (paper's by default)."""

    def __init__(self, settings: NCutSettings) -> None:
        super().__init__()
        self.settings = settings

    def features(self, image_255: Tensor) -> Tensor:
        """Local-affinity features ``(B, F, H, W)`` on the ``sigma_i`` scale."""
        s = self.settings
        if s.features in ("intensity", "rgb"):
            return image_features(image_255, s.features)  # type: ignore[arg-type]
        if s.features == "texture":
            return texture_features(image_255, **_texture_kwargs(s.feature_params))
        raise ValueError(f"unknown affinity features {s.features!r}")

    def global_features(self, image_255: Tensor) -> Tensor:
        """Features of the long-range term ``(B, F, H, W)`` on the ``global_sigma`` scale."""
        return texture_features(image_255, **_texture_kwargs(self.settings.global_feature_params))

    def forward(self, probs: Tensor, image_255: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        s = self.settings
        logs: dict[str, Tensor] = {}
        loss = probs.new_zeros(())
        if s.local_weight:
            feats = self.features(image_255)
            if s.batch_graph:
                local = batch_local_ncut(
                    probs, feats, radius=s.radius, sigma_i=s.sigma_i, sigma_x=s.sigma_x
                )
            else:
                local = soft_ncut_loss(
                    probs,
                    image_255,
                    radius=s.radius,
                    sigma_i=s.sigma_i,
                    sigma_x=s.sigma_x,
                    features=feats,
                )
            loss = loss + s.local_weight * local
            logs["ncut_local"] = local.detach()
        if s.global_weight:
            glob = sampled_dense_ncut(
                probs,
                self.global_features(image_255),
                samples=int(s.global_samples),
                sigma=s.global_sigma,
                weights=colour_rarity_weights(image_255, s.global_rarity)
                if s.global_rarity
                else None,
            )
            loss = loss + s.global_weight * glob
            logs["ncut_global"] = glob.detach()
        if s.entropy_weight:
            ent = -(probs * probs.clamp_min(1e-8).log()).sum(1).mean()
            loss = loss + s.entropy_weight * ent
            logs["entropy"] = ent.detach()
        logs["ncut"] = loss.detach()
        return loss, logs
