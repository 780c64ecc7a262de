"""W-Net architecture: shapes for any input size, softmax output, the paper's layer counts."""

from __future__ import annotations

import pytest
import torch

from wnet_seg.models import WNet, count_conv_layers, preset
from wnet_seg.models.wnet import WNetConfig, count_modules


@pytest.mark.parametrize("hw", [(32, 32), (17, 23), (1, 1), (40, 65), (64, 48)])
def test_forward_shapes_any_size(hw):
    torch.manual_seed(0)
    model = WNet(preset("small", num_classes=5)).eval()
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        probs, recon = model(x)
    assert probs.shape == (2, 5, *hw)
    assert recon.shape == (2, 3, *hw)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, *hw))
    assert (probs >= 0).all()


def test_paper_preset_counts():
    model = WNet(preset("paper", num_classes=16))
    assert count_modules(model) == 18
    assert count_conv_layers(model) == 46
    widths = [m.out_channels for m in model.encoder.head.modules()]
    assert widths == [16]
    # 64 -> 1024 channels in the bottleneck.
    assert model.encoder.bottleneck[3][1].out_channels == 1024


def test_first_and_last_modules_are_not_separable():
    model = WNet(preset("paper", num_classes=4))
    for unet in (model.encoder, model.decoder):
        assert isinstance(unet.down[0][0], torch.nn.Conv2d)  # regular 3x3
        assert isinstance(unet.up[-1][0], torch.nn.Conv2d)
        assert isinstance(unet.down[1][0], torch.nn.Sequential)  # depthwise + pointwise
        assert unet.down[1][0][0].groups == unet.down[1][0][0].in_channels


def test_separable_off_and_grayscale_input():
    model = WNet(WNetConfig(in_channels=1, num_classes=3, base_width=8, depth=2, separable=False))
    probs, recon = model.eval()(torch.randn(1, 1, 21, 13))
    assert probs.shape == (1, 3, 21, 13) and recon.shape == (1, 1, 21, 13)
    assert count_conv_layers(model) == 2 * (2 * 5 + 2 + 1)


def test_decoder_output_is_unbounded_linear():
    """No sigmoid/ReLU at the end: a reconstruction can be dark (negative normalized values)."""
    torch.manual_seed(0)
    model = WNet(preset("small", num_classes=4)).eval()
    with torch.no_grad():
        recon = model.decode(torch.full((1, 4, 16, 16), 0.25))
        model.decoder.head.bias.fill_(-5.0)
        recon2 = model.decode(torch.full((1, 4, 16, 16), 0.25))
    assert (recon2 < recon).all() and (recon2 < 0).any()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 1}, "num_classes"),
        ({"dropout": 1.0}, "dropout"),
        ({"depth": 0}, "depth"),
        ({"base_width": 0}, "base_width"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WNetConfig(**kwargs)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")


def test_paper_parameter_count_printed(capsys):
    n = sum(p.numel() for p in WNet(preset("paper", num_classes=16)).parameters())
    print(f"paper preset parameters (K=16): {n}")
    assert 1_000_000 < n < 20_000_000
