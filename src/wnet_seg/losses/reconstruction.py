"""Reconstruction loss of the W-Net decoder: mean squared error over all pixels and channels."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor


def reconstruction_loss(
    recon: Tensor, target: Tensor, *, reduction: Literal["mean", "none"] = "mean"
) -> Tensor:
    """MSE between the decoder output and the (normalized) input image.

    Mean-reduced so its scale does not grow with image size and stays comparable to the soft N-cut
    (bounded by K); a sum-reduced loss drowns the N-cut. ``reduction="none"`` gives ``(B,)``.
    """
    if recon.shape != target.shape:
        raise ValueError(f"recon {tuple(recon.shape)} and target {tuple(target.shape)} differ")
    if reduction == "none":
        return F.mse_loss(recon, target, reduction="none").flatten(1).mean(1)
    if reduction == "mean":
        return F.mse_loss(recon, target)
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
