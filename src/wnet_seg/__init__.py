"""wnet-seg: unsupervised texture segmentation of pixel-art game screenshots with a W-Net."""

__version__ = "0.1.0"
