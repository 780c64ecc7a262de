"""Exact soft normalized-cut loss (Xia & Kulis 2017, eq. 3) in O(B*K*N) memory.

    J(P) = K - sum_k  assoc(A_k, A_k) / assoc(A_k, V)
         = K - sum_k  (p_k^T W p_k) / (p_k^T d),        d = W 1

    w(u, v) = exp(-|F(u) - F(v)|^2 / sigma_i^2) * exp(-|X(u) - X(v)|^2 / sigma_x^2)
              if |X(u) - X(v)| < radius, else 0.

``F`` is a per-pixel feature on the **0-255 scale** (the paper's sigma_i = 10 assumes it; applying
sigma_i = 10 to [0, 1] images makes the intensity term ~1, a common bug). ``X`` is the pixel position.

How it stays exact and small:
- ``W`` is never materialized. It is a sum of shifted, spatially varying diagonal maps, one per
  offset ``o`` with ``|o| < radius``. ``W`` is symmetric, so each pair ``(o, -o)`` shares one weight
  map and contributes to both ends of every edge.
- ``d = W 1`` depends only on the image and needs no gradient.
- ``d (p_k^T W p_k) / d p_k = 2 W p_k``, so the forward pass keeps ``W p_k`` (B x K x H x W) and the
  backward pass is closed-form: no autograd graph through the neighbour loop.
Time O(B*K*N*|offsets|), memory O(B*K*N) plus one image's weight maps (O(N*|offsets|)). The loss is computed per image and then reduced.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

FeatureMode = Literal["intensity", "rgb"]
# pair_weight(image_index, slice_a, slice_b) -> (1, h', w') feature affinity of the pixel pairs.
PairWeight = Callable[[int, tuple, tuple], Tensor]

# The paper's neighbourhood and bandwidths (sigma_i on the 0-255 scale); every default refers here.
PAPER_RADIUS = 5.0
PAPER_SIGMA_I = 10.0
PAPER_SIGMA_X = 4.0

# ITU-R BT.601 luma, the usual "intensity" of an RGB image.
_LUMA = (0.299, 0.587, 0.114)


def neighbour_offsets(radius: float) -> list[tuple[int, int]]:
    """Offsets ``(dy, dx)`` with ``dy^2 + dx^2 < radius^2`` in one half-plane (centre excluded).

    Each returned offset stands for the pair ``(o, -o)``. ``radius=5`` gives 34 pairs, i.e. 69
    offsets counting the centre and both signs, as in the paper.
    """
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    r = int(math.ceil(radius))
    out = []
    for dy in range(0, r + 1):
        for dx in range(-r, r + 1):
            if dy == 0 and dx <= 0:
                continue
            if dy * dy + dx * dx < radius * radius:
                out.append((dy, dx))
    return out


def image_features(image: Tensor, features: FeatureMode | Tensor = "intensity") -> Tensor:
    """Per-pixel affinity features ``(B, F, H, W)`` from an image on the 0-255 scale.

    ``"intensity"`` (the paper): BT.601 luma of RGB, or the single channel of a grey image.
    ``"rgb"``: the colour channels themselves. A tensor is taken as ready-made features.
    """
    if isinstance(features, Tensor):
        if features.dim() != 4:
            raise ValueError(f"feature tensor must be (B, F, H, W), got {tuple(features.shape)}")
        return features
    if image.dim() != 4:
        raise ValueError(f"image must be (B, C, H, W), got {tuple(image.shape)}")
    if features == "rgb":
        return image
    if features == "intensity":
        if image.shape[1] == 1:
            return image
        if image.shape[1] < 3:
            raise ValueError(f"intensity needs 1 or 3+ channels, got {image.shape[1]}")
        w = image.new_tensor(_LUMA).view(1, 3, 1, 1)
        return (image[:, :3] * w).sum(1, keepdim=True)
    raise ValueError(f"features must be 'intensity', 'rgb' or a tensor, got {features!r}")


def _pair_slices(h: int, w: int, dy: int, dx: int):
    """Slices (a, b) so that pixel ``a`` at ``u`` pairs with pixel ``b`` at ``u + (dy, dx)``."""
    ys_a, ys_b = slice(0, h - dy), slice(dy, h)
    if dx >= 0:
        xs_a, xs_b = slice(0, w - dx), slice(dx, w)
    else:
        xs_a, xs_b = slice(-dx, w), slice(0, w + dx)
    return (..., ys_a, xs_a), (..., ys_b, xs_b)


# Bytes of one (classes x pixels) block of ``p`` processed at a time: keeps ``p`` and ``W p`` blocks
# cache-resident across the ~34 offset pairs instead of streaming the whole batch from RAM each time.
_BLOCK_BYTES = 4 * 2**20


# Pad value for features outside the image: its squared difference to any real feature is huge, so
# the Gaussian weight of a pair that leaves the image is exactly 0 (no NaN: only one side is padded).
_OUTSIDE = 1e15
# Pair weights below this are set to 0. Every degree is >= 1 (the centre weight), so what they
# could add is < 1e-30 relative: far below float32 and float64 resolution.
_NEGLIGIBLE = 1e-30
_LOG_FLOOR = -80.0  # exp(-80) ~ 1.8e-35 < _NEGLIGIBLE, still a normal float32


def _gaussian_maps(
    f: Tensor, pairs: list[tuple[int, int]], sigma_i: float, sigma_x: float
) -> Tensor:
    """Weight maps ``(J, H, W)`` of one image: ``maps[j, u] = w(u, u + o_j)``, 0 where ``u + o_j`` is outside.

    All pairs are built in one stacked buffer so the exponential runs once over ``J * N`` values
    instead of as ``J`` small kernels (the small kernels were ~40 % of the whole loss's time).
    The spatial term is folded into the exponent: ``exp(-|dF|^2 / sigma_i^2 - |o|^2 / sigma_x^2)``.
    """
    nf, h, w = f.shape
    r = max([abs(dx) for _, dx in pairs] + [dy for dy, _ in pairs] + [0])
    fp = torch.nn.functional.pad(f[None], (r, r, 0, r), value=_OUTSIDE)[0]
    d2 = f.new_empty(len(pairs), h, w)
    tmp = f.new_empty(len(pairs), h, w) if nf > 1 else d2
    for c in range(nf):
        for j, (dy, dx) in enumerate(pairs):
            torch.sub(fp[c, dy : dy + h, r + dx : r + dx + w], f[c], out=tmp[j])
        if nf == 1:
            d2.square_()
        elif c == 0:
            torch.mul(tmp, tmp, out=d2)
        else:
            d2.addcmul_(tmp, tmp)
    log_spatial = f.new_tensor([-(dy * dy + dx * dx) / (sigma_x * sigma_x) for dy, dx in pairs])
    logw = d2.mul_(-1.0 / (sigma_i * sigma_i)).add_(log_spatial.view(-1, 1, 1))
    # exp() of arguments far below float32's range takes a slow path (10x); clamp them, then set
    # the weights under _NEGLIGIBLE to exactly 0 (pairs leaving the image included).
    wmaps = logw.clamp_(min=_LOG_FLOOR).exp_()
    return torch.nn.functional.threshold_(wmaps, _NEGLIGIBLE, 0.0)


@torch.no_grad()
def _affinity_apply(
    probs: Tensor,
    feats: Tensor,
    radius: float,
    sigma_i: float,
    sigma_x: float,
    pair_weight: PairWeight | None = None,
) -> tuple[Tensor, Tensor]:
    """Return ``(W p, d)``: ``W p_k`` for every class ``(B, K, H, W)`` and degree ``d`` ``(B, 1, H, W)``.

    Per image: the weight map of each symmetric offset pair is computed once (``w(u, u) = 1`` for the
    centre), then applied to blocks of classes, each pair adding to both ends of its edges.
    ``pair_weight(i, a, b)``, when given, replaces the Gaussian feature term of image ``i`` for the
    pixels at slices ``a`` and ``b`` (the spatial term still multiplies it).
    """
    bsz, k, h, w = probs.shape
    wp = torch.empty_like(probs)
    deg = torch.ones_like(feats[:, :1])
    pairs = [(dy, dx) for dy, dx in neighbour_offsets(radius) if dy < h and abs(dx) < w]
    slices = [_pair_slices(h, w, dy, dx) for dy, dx in pairs]
    block = max(1, _BLOCK_BYTES // (h * w * probs.element_size()))
    for i in range(bsz):
        d = deg[i]
        if pair_weight is None:
            full = _gaussian_maps(feats[i].to(probs.dtype), pairs, sigma_i, sigma_x)
            d[0].add_(full.sum(0))  # the "a" end of every edge; the "b" end is added below
            maps = [(a, b, full[j][a[1:]].unsqueeze(0)) for j, (a, b) in enumerate(slices)]
            for _a, b, wmap in maps:
                d[b].add_(wmap)
        else:
            maps = []
            for (dy, dx), (a, b) in zip(pairs, slices, strict=True):
                spatial = math.exp(-(dy * dy + dx * dx) / (sigma_x * sigma_x))
                wmap = pair_weight(i, a, b).to(probs.dtype).mul_(spatial)
                d[a].add_(wmap)
                d[b].add_(wmap)
                maps.append((a, b, wmap))
        for k0 in range(0, k, block):
            p, out = probs[i, k0 : k0 + block], wp[i, k0 : k0 + block]
            out.copy_(p)
            for a, b, wmap in maps:
                out[a].addcmul_(wmap, p[b])
                out[b].addcmul_(wmap, p[a])
    return wp, deg


class _SoftNCut(torch.autograd.Function):
    """Per-image soft N-cut with a closed-form backward; see the module docstring."""

    @staticmethod
    def forward(ctx, probs, feats, radius, sigma_i, sigma_x, eps, pair_weight=None):  # type: ignore[override]
        wp, deg = _affinity_apply(probs, feats, radius, sigma_i, sigma_x, pair_weight)
        assoc_aa = (probs * wp).sum(dim=(2, 3))  # (B, K)  p_k^T W p_k
        assoc_av = (probs * deg).sum(dim=(2, 3))  # (B, K)  p_k^T d
        denom = assoc_av + eps
        loss = probs.shape[1] - (assoc_aa / denom).sum(1)  # (B,)
        ctx.save_for_backward(wp, deg, assoc_aa, denom)
        return loss

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        wp, deg, assoc_aa, denom = ctx.saved_tensors
        # dJ/dp_k(u) = -(2 (W p_k)(u) / denom_k - assoc_aa_k d(u) / denom_k^2)
        g = grad_out.view(-1, 1)  # folded into the (B, K) scalars: no extra pass over (B, K, H, W)
        a = (2.0 * g / denom)[..., None, None]
        b = (g * assoc_aa / (denom * denom))[..., None, None]
        grad = torch.addcmul(deg * b, wp, a, value=-1.0)  # one pass fewer than (deg*b - wp*a)
        return grad, None, None, None, None, None, None


def soft_ncut_loss(
    probs: Tensor,
    image: Tensor,
    *,
    radius: float = PAPER_RADIUS,
    sigma_i: float = PAPER_SIGMA_I,
    sigma_x: float = PAPER_SIGMA_X,
    features: FeatureMode | Tensor = "intensity",
    reduction: Literal["mean", "sum", "none"] = "mean",
    eps: float = 1e-8,
    pair_weight: PairWeight | None = None,
) -> Tensor:
    """Soft N-cut loss of a soft segmentation, exactly as in the W-Net paper.

    Args:
        probs: ``(B, K, H, W)`` class probabilities (softmax output; gradients flow into it).
        image: ``(B, C, H, W)`` image on the **0-255 scale** (used without gradient).
        radius: neighbourhood radius ``r``; pairs with ``|X(u) - X(v)| < r`` interact (paper: 5).
        sigma_i: feature bandwidth on the 0-255 scale (paper: 10).
        sigma_x: spatial bandwidth in pixels (paper: 4).
        features: ``"intensity"`` (paper), ``"rgb"``, or a ``(B, F, H, W)`` feature tensor on the
            same scale as ``sigma_i``.
        reduction: ``"mean"`` over the batch, ``"sum"``, or ``"none"`` for the ``(B,)`` per-image losses.
        eps: added to each ``assoc(A_k, V)`` so an empty class gives a finite loss, not NaN.
        pair_weight: advanced; a callable ``(i, slice_a, slice_b) -> (1, h', w')`` giving the
            feature affinity of the pixel pairs of image ``i`` in place of the Gaussian on
            ``features`` (e.g. :mod:`wnet_seg.losses.pmi`). The spatial term still applies.

    Returns:
        The loss, in ``[0, K]`` per image (0: every class is a perfect cluster).
    """
    if probs.dim() != 4:
        raise ValueError(f"probs must be (B, K, H, W), got {tuple(probs.shape)}")
    if probs.dtype in (torch.float16, torch.bfloat16):
        probs = probs.float()  # accumulate over ~69 offsets in at least fp32 (autocast-safe)
    feats = image_features(image, features).to(probs.dtype)
    if feats.shape[0] != probs.shape[0] or feats.shape[-2:] != probs.shape[-2:]:
        raise ValueError(
            f"probs {tuple(probs.shape)} and image/features {tuple(feats.shape)} differ in batch or size"
        )
    if sigma_i <= 0 or sigma_x <= 0:
        raise ValueError(f"sigma_i and sigma_x must be > 0, got {sigma_i}, {sigma_x}")
    per_image = _SoftNCut.apply(probs, feats.detach(), radius, sigma_i, sigma_x, eps, pair_weight)
    if reduction == "none":
        return per_image
    if reduction == "mean":
        return per_image.mean()
    if reduction == "sum":
        return per_image.sum()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
