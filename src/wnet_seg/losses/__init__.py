"""Losses of the W-Net: exact soft normalized cut and reconstruction."""

from wnet_seg.losses.reconstruction import reconstruction_loss
from wnet_seg.losses.soft_ncut import image_features, neighbour_offsets, soft_ncut_loss

__all__ = ["image_features", "neighbour_offsets", "reconstruction_loss", "soft_ncut_loss"]
