"""Pointwise-mutual-information affinity for the soft N-cut (after Isola et al. 2014, "Crisp
boundary detection using pointwise mutual information").

A texture in pixel art is a few exact colours that sit next to each other again and again; the
border between two textures is where colours meet that rarely do. Per image, count how often each
pair of colours occurs within the N-cut's neighbourhood (``|X(u) - X(v)| < r``), and weight a pair
of pixels by how much more often their colours co-occur than chance:

    w_F(a, b) = min(1, (P(a, b)^rho / (P(a) P(b)))^gamma)

so colours of one texture (co-occurring more than chance) are fully connected, and the rare pairs
found only along borders get weights near 0. Nothing is learned and nothing is game-specific:
the statistics are the image's own. Colours are exact when an image has at most ``max_colours``
of them (pixel art), else quantized to ``levels`` per channel (photos, JPEG captures).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from wnet_seg.losses.soft_ncut import (
    PAPER_RADIUS,
    PAPER_SIGMA_X,
    _pair_slices,
    neighbour_offsets,
    soft_ncut_loss,
)


def colour_ids(image_255: Tensor, max_colours: int = 512, levels: int = 8) -> tuple[Tensor, int]:
    """Per-pixel colour index ``(H, W)`` long and the number of colours, for one ``(C, H, W)`` image."""
    x = image_255.round().clamp(0, 255).long()
    packed = x[0]
    for c in range(1, x.shape[0]):
        packed = packed * 256 + x[c]
    uniq, inv = torch.unique(packed, return_inverse=True)
    if uniq.numel() <= max_colours:
        return inv, int(uniq.numel())
    q = (x * levels) // 256
    packed = q[0]
    for c in range(1, q.shape[0]):
        packed = packed * levels + q[c]
    uniq, inv = torch.unique(packed, return_inverse=True)
    return inv, int(uniq.numel())


def pmi_weight_table(
    ids: Tensor, n: int, radius: float, rho: float = 1.0, gamma: float = 1.0
) -> Tensor:
    """``(n, n)`` affinities ``min(1, (P(a,b)^rho / P(a)P(b))^gamma)`` from the pairs within ``radius``."""
    h, w = ids.shape
    counts = torch.zeros(n * n, dtype=torch.float64, device=ids.device)
    for dy, dx in neighbour_offsets(radius):
        if dy >= h or abs(dx) >= w:
            continue
        a, b = _pair_slices(h, w, dy, dx)
        counts += torch.bincount((ids[a] * n + ids[b]).flatten(), minlength=n * n).double()
    c = counts.view(n, n)
    c = c + c.T  # both directions: symmetric, so W stays symmetric
    total = c.sum()
    if total == 0:
        return torch.ones(n, n, dtype=torch.float32, device=ids.device)
    p = c / total
    marg = p.sum(1)
    ratio = p.pow(rho) / (marg[:, None] * marg[None, :]).clamp_min(1e-30)
    return ratio.pow(gamma).clamp(max=1.0).float()


class PMIAffinity:
    """``pair_weight`` callable for :func:`soft_ncut_loss`: per-image colour co-occurrence weights."""

    def __init__(
        self,
        image_255: Tensor,
        radius: float = PAPER_RADIUS,
        rho: float = 1.0,
        gamma: float = 1.0,
        max_colours: int = 512,
        levels: int = 8,
    ) -> None:
        self.ids: list[Tensor] = []
        self.tables: list[Tensor] = []
        with torch.no_grad():
            for img in image_255:
                ids, n = colour_ids(img, max_colours, levels)
                self.ids.append(ids)
                self.tables.append(pmi_weight_table(ids, n, radius, rho, gamma))

    def __call__(self, i: int, a: tuple, b: tuple) -> Tensor:
        ids, table = self.ids[i], self.tables[i]
        return table[ids[a], ids[b]].unsqueeze(0)


def pmi_soft_ncut_loss(
    probs: Tensor,
    image_255: Tensor,
    *,
    radius: float = PAPER_RADIUS,
    sigma_x: float = PAPER_SIGMA_X,
    rho: float = 1.0,
    gamma: float = 1.0,
    max_colours: int = 512,
    levels: int = 8,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> Tensor:
    """The exact per-image soft N-cut with the PMI colour affinity in place of the intensity term."""
    affinity = PMIAffinity(image_255, radius, rho, gamma, max_colours, levels)
    return soft_ncut_loss(
        probs,
        image_255,
        radius=radius,
        sigma_x=sigma_x,
        features="rgb",
        reduction=reduction,
        pair_weight=affinity,
    )
