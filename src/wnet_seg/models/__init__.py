"""W-Net architecture: two stacked U-Nets."""

from wnet_seg.models.wnet import PRESETS, UNet, WNet, WNetConfig, count_conv_layers, preset

__all__ = ["PRESETS", "UNet", "WNet", "WNetConfig", "count_conv_layers", "preset"]
