"""The N-cut side of the W-Net objective: one callable built from the typed :class:`LossConf`.

``NCutObjective(conf)(probs, image_255) -> (loss, logs)`` computes
``local_weight * local + global_weight * global + entropy_weight * entropy`` as the config says
(the fields and their meaning: :class:`wnet_seg.config.LossConf`). With the config's defaults it
is the paper's loss: the per-image soft N-cut on intensity, r = 5, sigma_I = 10, sigma_X = 4. New
affinity designs plug in here without touching the training step. The math lives in
:mod:`wnet_seg.losses.soft_ncut` (exact local N-cut) and :mod:`wnet_seg.losses.graph_ncut` (batch
graph, sampled dense N-cut).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from wnet_seg.losses.features import interior_weights, texture_features
from wnet_seg.losses.graph_ncut import batch_local_ncut, colour_rarity_weights, sampled_dense_ncut
from wnet_seg.losses.pmi import PMIAffinity
from wnet_seg.losses.soft_ncut import image_features, soft_ncut_loss

if TYPE_CHECKING:
    from wnet_seg.config import LossConf


class NCutObjective(nn.Module):
    """``forward(probs, image_255) -> (loss, logs)``: the N-cut terms of ``conf``."""

    def __init__(self, conf: LossConf) -> None:
        super().__init__()
        self.conf = conf

    def local_features(self, image_255: Tensor) -> Tensor:
        """Features ``(B, F, H, W)`` of the local term, on the ``sigma_i`` scale."""
        c = self.conf
        if c.features == "texture":
            return texture_features(image_255, **c.texture.kwargs())
        # intensity / rgb; PMI compares exact colours and weighs pairs itself (pair_weight).
        return image_features(image_255, "rgb" if c.features == "pmi" else c.features)

    def local(self, probs: Tensor, image_255: Tensor) -> Tensor:
        c = self.conf
        feats = self.local_features(image_255)
        pair_weight = PMIAffinity(image_255, c.radius) if c.features == "pmi" else None
        kwargs = dict(
            radius=c.radius, sigma_i=c.sigma_i, sigma_x=c.sigma_x, pair_weight=pair_weight
        )
        if c.batch_graph:
            return batch_local_ncut(probs, feats, **kwargs)
        return soft_ncut_loss(probs, image_255, features=feats, **kwargs)

    def sample_weights(self, image_255: Tensor) -> Tensor | None:
        """Per-pixel sampling weights ``(B, H*W)`` of the long-range term (``None``: uniform)."""
        c = self.conf
        weights = colour_rarity_weights(image_255, c.global_rarity) if c.global_rarity else None
        if c.global_gate:
            size = int(c.global_texture.scales[0]) if c.global_texture.scales else 16
            gate = c.global_gate_floor + (1 - c.global_gate_floor) * interior_weights(
                image_255, size, c.global_gate
            )
            weights = gate if weights is None else weights * gate
        return weights

    def long_range(self, probs: Tensor, image_255: Tensor) -> Tensor:
        c = self.conf
        return sampled_dense_ncut(
            probs,
            texture_features(image_255, **c.global_texture.kwargs()),
            samples=c.global_samples,
            sigma=c.global_sigma,
            weights=self.sample_weights(image_255),
        )

    def forward(self, probs: Tensor, image_255: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        c = self.conf
        logs: dict[str, Tensor] = {}
        loss = probs.new_zeros(())
        if c.local_weight:
            local = self.local(probs, image_255)
            loss = loss + c.local_weight * local
            logs["ncut_local"] = local.detach()
        if c.global_weight:
            glob = self.long_range(probs, image_255)
            loss = loss + c.global_weight * glob
            logs["ncut_global"] = glob.detach()
        if c.entropy_weight:
            ent = -(probs * probs.clamp_min(1e-8).log()).sum(1).mean()
            loss = loss + c.entropy_weight * ent
            logs["entropy"] = ent.detach()
        logs["ncut"] = loss.detach()
        return loss, logs
