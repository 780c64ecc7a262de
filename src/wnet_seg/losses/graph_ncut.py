"""Soft N-cut on the graph of a whole minibatch, with optional long-range (sampled dense) edges.

The paper's loss cuts each image's local graph on its own: ``J_b = K - sum_k A_bk / D_bk``. Two
consequences hurt texture segmentation:

- every class must be used in every image (an empty class scores 0 instead of ~1), so an image with
  fewer textures than K is split into blobs to fill the classes;
- nothing ties a class to the same texture in another image or far away in the same image: with a
  5 px window any partition into large blobs with short boundaries is cheap.

Here the batch is one graph, the disjoint union of the images' local graphs (:func:`batch_local_ncut`):
``J = K - sum_k (sum_b A_bk) / (sum_b D_bk)``. It is still the exact soft N-cut, of a bigger graph;
a class only has to be used somewhere in the batch. :func:`sampled_dense_ncut` adds long-range edges:
the exact soft N-cut of the complete graph on a random subsample of pixels pooled over the batch,
with affinity ``exp(-|f(u) - f(v)|^2 / sigma^2)`` on texture features only (no distance term), so
the same texture anywhere, in any image, is pulled into one class. Memory is O((B*M)^2) for M
samples per image; the gradient flows into the sampled pixels' probabilities.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wnet_seg.losses.soft_ncut import PAPER_RADIUS, PAPER_SIGMA_I, PAPER_SIGMA_X, _affinity_apply


class _BatchSoftNCut(torch.autograd.Function):
    """``K - sum_k sum_b p_bk^T W_b p_bk / sum_b p_bk^T d_b`` with a closed-form backward."""

    @staticmethod
    def forward(ctx, probs, feats, radius, sigma_i, sigma_x, eps, pair_weight=None):  # type: ignore[override]
        wp, deg = _affinity_apply(probs, feats, radius, sigma_i, sigma_x, pair_weight)
        assoc_aa = (probs * wp).sum(dim=(0, 2, 3))  # (K,)
        denom = (probs * deg).sum(dim=(0, 2, 3)) + eps  # (K,)
        loss = probs.shape[1] - (assoc_aa / denom).sum()
        ctx.save_for_backward(wp, deg, assoc_aa, denom)
        return loss

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        wp, deg, assoc_aa, denom = ctx.saved_tensors
        a = (2.0 / denom).view(1, -1, 1, 1)
        b = (assoc_aa / (denom * denom)).view(1, -1, 1, 1)
        return (deg * b - wp * a) * grad_out, None, None, None, None, None, None


def batch_local_ncut(
    probs: Tensor,
    feats: Tensor,
    *,
    radius: float = PAPER_RADIUS,
    sigma_i: float = PAPER_SIGMA_I,
    sigma_x: float = PAPER_SIGMA_X,
    eps: float = 1e-8,
    pair_weight=None,
) -> Tensor:
    """Exact soft N-cut of the union of the batch's local graphs (paper's affinity, any features).

    ``probs`` ``(B, K, H, W)``; ``feats`` ``(B, F, H, W)`` on the ``sigma_i`` scale. Returns a scalar
    in ``[0, K]``. ``pair_weight`` (e.g. :class:`wnet_seg.losses.pmi.PMIAffinity`) replaces the
    Gaussian feature term, as in :func:`wnet_seg.losses.soft_ncut.soft_ncut_loss`.
    """
    if probs.dim() != 4 or feats.dim() != 4:
        raise ValueError(
            f"probs and feats must be 4-D, got {tuple(probs.shape)}, {tuple(feats.shape)}"
        )
    if feats.shape[0] != probs.shape[0] or feats.shape[-2:] != probs.shape[-2:]:
        raise ValueError(f"probs {tuple(probs.shape)} and feats {tuple(feats.shape)} differ")
    if sigma_i <= 0 or sigma_x <= 0:
        raise ValueError(f"sigma_i and sigma_x must be > 0, got {sigma_i}, {sigma_x}")
    p = probs if probs.dtype == torch.float64 else probs.float()  # accumulate in >= fp32
    return _BatchSoftNCut.apply(
        p, feats.detach().to(p.dtype), radius, sigma_i, sigma_x, eps, pair_weight
    )


def colour_rarity_weights(image_255: Tensor, power: float = 0.5) -> Tensor:
    """Per-pixel sampling weights ``(B, H*W)``: ``count(pixel's exact colour in its image)^-power``.

    Rare colours (small sprites, a lone tile) get sampled about as often as the colours that cover
    half the frame, so the long-range term sees them; ``power=0`` is uniform sampling.
    """
    x = image_255.round().clamp(0, 255).long()
    packed = x[:, 0]
    for c in range(1, x.shape[1]):
        packed = packed * 256 + x[:, c]
    out = []
    for img in packed.flatten(1):
        _, inv, counts = torch.unique(img, return_inverse=True, return_counts=True)
        out.append(counts[inv].float().pow(-power))
    return torch.stack(out)


def sample_pixels(
    probs: Tensor,
    feats: Tensor,
    samples: int,
    generator: torch.Generator | None = None,
    weights: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """``samples`` random pixels per image (without replacement), pooled: probabilities
    ``(B*M, K)`` (with gradient) and features ``(B*M, F)``. ``weights`` ``(B, H*W)``, if given,
    makes pixel ``u`` more likely in proportion to ``weights[u]`` (else uniform)."""
    b, k, h, w = probs.shape
    n = h * w
    m = min(int(samples), n)
    if weights is None:
        idx = torch.rand(b, n, generator=generator, device=probs.device).argsort(1)[:, :m]
    else:
        idx = torch.multinomial(weights, m, replacement=False, generator=generator)
    p = probs.flatten(2).gather(2, idx[:, None].expand(b, k, m))
    f = feats.flatten(2).gather(2, idx[:, None].expand(b, feats.shape[1], m))
    return p.permute(0, 2, 1).reshape(b * m, k), f.permute(0, 2, 1).reshape(b * m, -1)


def dense_ncut(p: Tensor, f: Tensor, sigma: float, eps: float = 1e-8) -> Tensor:
    """Exact soft N-cut ``K - sum_k p_k^T W p_k / p_k^T d`` of the complete graph on ``n`` points:
    ``p`` ``(n, K)`` probabilities, ``f`` ``(n, F)`` features, ``W = exp(-|f_u - f_v|^2 / sigma^2)``."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    with torch.no_grad():
        f = f.to(p.dtype if p.dtype == torch.float64 else torch.float32)
        wmat = torch.cdist(f, f).pow_(2).div_(-(sigma * sigma)).exp_()
        deg = wmat.sum(1)
    p = p if p.dtype == torch.float64 else p.float()
    wmat, deg = wmat.to(p.dtype), deg.to(p.dtype)
    assoc_aa = (p * (wmat @ p)).sum(0)
    assoc_av = (p * deg[:, None]).sum(0)
    return p.shape[1] - (assoc_aa / (assoc_av + eps)).sum()


def sampled_dense_ncut(
    probs: Tensor,
    feats: Tensor,
    *,
    samples: int,
    sigma: float,
    generator: torch.Generator | None = None,
    weights: Tensor | None = None,
    eps: float = 1e-8,
) -> Tensor:
    """Long-range term: :func:`dense_ncut` on ``samples`` random pixels per image, pooled over the
    batch (cross-image edges included); ``weights`` as in :func:`sample_pixels`. Scalar in ``[0, K]``."""
    p, f = sample_pixels(probs, feats.detach(), samples, generator, weights)
    return dense_ncut(p, f, sigma, eps)
