"""Per-pixel affinity features for the soft N-cut: colour plus local texture statistics.

The paper's affinity compares single pixels' intensities. On pixel art a texture (grass with dark
specks, stone with cracks) is several flat colours repeated on a grid, so pixel colour calls two
pixels of the same texture dissimilar. Statistics over a window at the texture's scale fix that:
the mean (and standard deviation) of a periodic texture over a box whose side is a multiple of the
period is the same wherever the box sits, so every pixel of a uniform texture region gets the same
descriptor, and different materials get different ones. ``scale`` is that window in pixels
(16 suits the 8 and 16 px tiles of most pixel-art games); nothing assumes tiles are grid-aligned.

All features stay on the 0-255 scale of the input, each group multiplied by its weight, so one
``sigma_i`` (on the 0-255 scale) applies to the concatenation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def box_mean(x: Tensor, size: int) -> Tensor:
    """Mean over a ``size`` x ``size`` box around each pixel (reflect padding), same shape as ``x``."""
    if size < 1:
        raise ValueError(f"box size must be >= 1, got {size}")
    if size == 1:
        return x
    lo, hi = size // 2, (size - 1) // 2
    h, w = x.shape[-2:]
    mode = "reflect" if max(lo, hi) < min(h, w) else "replicate"
    x = F.pad(x, (lo, hi, lo, hi), mode=mode)
    # Separable: a row pass then a column pass (size/2 times cheaper than a 2-D pool).
    return F.avg_pool2d(F.avg_pool2d(x, (1, size), stride=1), (size, 1), stride=1)


def box_std(x: Tensor, size: int, mean: Tensor | None = None) -> Tensor:
    """Standard deviation over the same box as :func:`box_mean`."""
    m = box_mean(x, size) if mean is None else mean
    return (box_mean(x * x, size) - m * m).clamp_min(0).sqrt()


def _window_stats(x: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Mean and std of every ``size`` x ``size`` window fully inside ``x``, indexed by the window's
    top-left pixel: ``(B, C, H - size + 1, W - size + 1)`` each."""
    m = F.avg_pool2d(F.avg_pool2d(x, (1, size), stride=1), (size, 1), stride=1)
    q = F.avg_pool2d(F.avg_pool2d(x * x, (1, size), stride=1), (size, 1), stride=1)
    return m, (q - m * m).clamp_min(0).sqrt()


def homogeneous_window_stats(x: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Mean and std of the most homogeneous ``size`` x ``size`` window containing each pixel.

    Of all windows that contain the pixel and lie inside the image, the one with the smallest
    summed channel standard deviation is chosen (a Kuwahara filter with every offset). Inside a
    uniform periodic texture all full windows are equivalent; at a boundary the pixel takes the
    statistics of a window on its own side instead of a blend of both textures, so descriptors do
    not form a continuum of mixtures across region boundaries. Output ``(B, C, H, W)`` each.
    """
    b, c, h, w = x.shape
    size = int(min(size, h, w))
    mean, std = _window_stats(x, size)
    hh, ww = mean.shape[-2:]
    score = std.sum(1, keepdim=True)
    pad = size - 1
    # Windows covering pixel (y, x) have top-left in [y - size + 1, y] x [x - size + 1, x]: a min
    # pool over that range (off-image windows padded with +inf) finds the best one.
    padded = F.pad(score, (pad, pad, pad, pad), value=float("inf"))
    _, idx = F.max_pool2d(-padded, size, stride=1, return_indices=True)
    wp = ww + 2 * pad
    iy, ix = idx // wp - pad, idx % wp - pad
    flat = (iy * ww + ix).flatten(2)
    both = torch.cat([mean, std], 1).flatten(2)
    picked = both.gather(2, flat.expand(-1, 2 * c, -1)).view(b, 2 * c, h, w)
    return picked[:, :c], picked[:, c:]


@torch.no_grad()
def texture_features(
    image_255: Tensor,
    scales: Sequence[int] = (16,),
    rgb_weight: float = 0.0,
    mean_weight: float = 1.0,
    std_weight: float = 1.0,
    window: str = "centred",
) -> Tensor:
    """Affinity features ``(B, F, H, W)``: weighted pixel colour, then box mean and box standard
    deviation of the colour at each scale in ``scales``, all on the input's 0-255 scale.

    A weight of 0 drops that group. ``image_255`` is ``(B, C, H, W)`` on the 0-255 scale.
    ``window="centred"``: the box centred on the pixel; ``"homogeneous"``: the most homogeneous box
    containing the pixel (:func:`homogeneous_window_stats`; sharp at region boundaries).
    """
    if window not in ("centred", "homogeneous"):
        raise ValueError(f"window must be 'centred' or 'homogeneous', got {window!r}")
    if image_255.dim() != 4:
        raise ValueError(f"image must be (B, C, H, W), got {tuple(image_255.shape)}")
    if not scales and rgb_weight == 0:
        raise ValueError("texture_features needs at least one scale or a nonzero rgb_weight")
    x = image_255.float()
    out = []
    if rgb_weight:
        out.append(x * rgb_weight)
    for s in scales:
        if window == "homogeneous":
            m, sd = homogeneous_window_stats(x, int(s))
        else:
            m = box_mean(x, int(s))
            sd = box_std(x, int(s), m) if std_weight else m
        if mean_weight:
            out.append(m * mean_weight)
        if std_weight:
            out.append(sd * std_weight)
    if not out:
        raise ValueError("all feature weights are 0: no features left")
    return torch.cat(out, 1)


@torch.no_grad()
def interior_weights(image_255: Tensor, size: int, tau: float) -> Tensor:
    """Per-pixel weight ``(B, H*W)`` in (0, 1]: how far the pixel is from a region boundary, judged
    by its own statistics. ``exp(-(|s_c - s_h| / tau)^2)`` where ``s_c`` is the mean and std of the
    centred ``size`` box and ``s_h`` those of the most homogeneous box containing the pixel (0-255
    scale): inside a uniform texture both boxes agree (weight 1); near a boundary the centred box
    blends two textures (weight near 0). Used to keep blended descriptors out of the long-range
    N-cut's sample, where they would form spurious "boundary" clusters.
    """
    x = image_255.float()
    cm = box_mean(x, size)
    centred = torch.cat([cm, box_std(x, size, cm)], 1)
    hm, hs = homogeneous_window_stats(x, size)
    d2 = (centred - torch.cat([hm, hs], 1)).pow(2).sum(1)
    return torch.exp(-d2 / (tau * tau)).flatten(1)
