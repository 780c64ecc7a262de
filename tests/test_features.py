"""Texture features and the batch-graph / long-range soft N-cut terms of the objective."""

from __future__ import annotations

import pytest
import torch

from wnet_seg.config import ConfigError, LossConf, TextureConf
from wnet_seg.losses.features import box_mean, box_std, texture_features
from wnet_seg.losses.graph_ncut import batch_local_ncut, dense_ncut, sampled_dense_ncut
from wnet_seg.losses.objective import NCutObjective
from wnet_seg.losses.soft_ncut import soft_ncut_loss


def _tiled(tile: torch.Tensor, ny: int, nx: int) -> torch.Tensor:
    return tile.repeat(1, 1, ny, nx)


def test_box_mean_matches_direct_average():
    x = torch.rand(2, 3, 20, 17) * 255
    got = box_mean(x, 5)
    pad = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    want = torch.nn.functional.avg_pool2d(pad, 5, stride=1)
    assert torch.allclose(got, want, atol=1e-4)
    assert box_mean(x, 1) is x


def test_periodic_texture_has_constant_descriptor():
    g = torch.Generator().manual_seed(0)
    tile = torch.randint(0, 256, (1, 3, 8, 8), generator=g).float()
    img = _tiled(tile, 8, 8)  # 64x64, period 8
    f = texture_features(img, scales=(16,))  # 16 is a multiple of the period
    inner = f[..., 8:-8, 8:-8]
    assert inner.std(dim=(-2, -1)).max() < 1e-3
    assert torch.allclose(inner[:, :3, 0, 0], tile.mean(dim=(-2, -1))[0], atol=1e-3)
    assert torch.allclose(inner[:, 3:, 0, 0], tile.std(dim=(-2, -1), unbiased=False)[0], atol=1e-2)


def test_texture_features_weights_and_errors():
    img = torch.rand(1, 3, 12, 12) * 255
    assert texture_features(img, scales=(4, 8)).shape == (1, 12, 12, 12)
    f = texture_features(img, scales=(4,), rgb_weight=0.5, std_weight=0)
    assert f.shape == (1, 6, 12, 12)
    assert torch.allclose(f[:, :3], img * 0.5)
    with pytest.raises(ValueError, match="weights are 0"):
        texture_features(img, scales=(4,), mean_weight=0, std_weight=0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        texture_features(img[0])
    assert torch.all(box_std(img, 3) >= 0)


def test_batch_local_ncut_of_one_image_equals_paper_loss():
    probs = torch.rand(1, 4, 16, 16).softmax(1)
    img = torch.rand(1, 3, 16, 16) * 255
    a = batch_local_ncut(probs, img, sigma_i=20.0)
    b = soft_ncut_loss(probs, img, sigma_i=20.0, features="rgb")
    assert torch.allclose(a, b, atol=1e-5)


def test_batch_local_ncut_gradient_matches_autograd_reference():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    img = torch.rand(2, 1, 6, 7, dtype=torch.float64) * 255
    loss = batch_local_ncut(logits.softmax(1), img, radius=2.5, sigma_i=40.0, sigma_x=3.0)
    (g,) = torch.autograd.grad(loss, logits)
    # Dense reference on the union graph.
    ys, xs = torch.meshgrid(torch.arange(6.0), torch.arange(7.0), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], 1).double()
    d2 = torch.cdist(pos, pos) ** 2
    p = logits.softmax(1).flatten(2)  # (B, K, N)
    aa = torch.zeros(3, dtype=torch.float64)
    av = torch.zeros(3, dtype=torch.float64)
    for b in range(2):
        f = img[b].flatten(1).T
        w = torch.exp(-(torch.cdist(f, f) ** 2) / 40.0**2) * torch.exp(-d2 / 9.0) * (d2 < 2.5**2)
        aa = aa + (p[b] * (p[b] @ w)).sum(1)
        av = av + (p[b] * w.sum(1)).sum(1)
    ref = 3 - (aa / (av + 1e-8)).sum()
    (g_ref,) = torch.autograd.grad(ref, logits)
    assert torch.allclose(loss, ref, atol=1e-8)
    assert torch.allclose(g, g_ref, atol=1e-8)


def test_dense_ncut_rewards_grouping_identical_features():
    f = torch.tensor([[0.0], [0.0], [100.0], [100.0]])
    good = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    bad = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert dense_ncut(good, f, sigma=10.0) < 1e-6
    assert dense_ncut(bad, f, sigma=10.0) > 0.9


def test_sampled_dense_ncut_is_finite_and_differentiable():
    logits = torch.randn(3, 5, 20, 20, requires_grad=True)
    feats = texture_features(torch.rand(3, 3, 20, 20) * 255, scales=(4,))
    loss = sampled_dense_ncut(logits.softmax(1), feats, samples=50, sigma=15.0)
    loss.backward()
    assert 0 <= loss.item() <= 5
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_objective_default_is_paper_loss_and_options_parse():
    probs = torch.rand(2, 4, 12, 12).softmax(1)
    img = torch.rand(2, 3, 12, 12) * 255
    loss, logs = NCutObjective(LossConf())(probs, img)
    assert torch.allclose(loss, soft_ncut_loss(probs, img))
    conf = LossConf(
        features="texture",
        texture=TextureConf(scales=[8], rgb_weight=0.5),
        batch_graph=True,
        global_weight=1,
        global_texture=TextureConf(scales=[8]),
        global_rarity=0.5,
        global_gate=10.0,
        entropy_weight=0.1,
    )
    loss, logs = NCutObjective(conf)(probs, img)
    assert {"ncut", "ncut_local", "ncut_global", "entropy"} <= set(logs)
    assert torch.isfinite(loss)
    pmi, _ = NCutObjective(LossConf(features="pmi"))(probs, img)
    from wnet_seg.losses.pmi import pmi_soft_ncut_loss

    assert torch.allclose(pmi, pmi_soft_ncut_loss(probs, img))  # the library term is the PMI cut
    with pytest.raises(ConfigError, match="loss.texture.window must be one of"):
        LossConf(features="texture", texture=TextureConf(window="round"))
    with pytest.raises(ConfigError, match="loss.features must be one of"):
        LossConf(features="hog")


def test_homogeneous_window_is_sharp_at_a_boundary():
    g = torch.Generator().manual_seed(1)
    a = _tiled(torch.randint(0, 128, (1, 3, 4, 4), generator=g).float(), 8, 4)  # 32x16
    b = _tiled(torch.randint(128, 256, (1, 3, 4, 4), generator=g).float(), 8, 4)
    img = torch.cat([a, b], -1)  # left half texture a, right half texture b
    f = texture_features(img, scales=(8,), window="homogeneous")
    left, right = f[..., :16], f[..., 16:]
    # Every pixel, even next to the boundary, gets its own texture's statistics.
    assert torch.allclose(left, left[..., :1, :1].expand_as(left), atol=1e-3)
    assert torch.allclose(right, right[..., :1, :1].expand_as(right), atol=1e-3)
    assert not torch.allclose(left[..., 0, 0], right[..., 0, 0])
    centred = texture_features(img, scales=(8,))
    assert not torch.allclose(centred[..., 15], centred[..., 0])  # the centred box blends
    with pytest.raises(ValueError, match="window"):
        texture_features(img, window="kuwahara")


def test_batch_local_ncut_accepts_pmi_pair_weight():
    from wnet_seg.losses.pmi import PMIAffinity, pmi_soft_ncut_loss

    g = torch.Generator().manual_seed(2)
    img = torch.randint(0, 4, (1, 3, 12, 12), generator=g).float() * 60
    probs = torch.rand(1, 3, 12, 12, generator=g).softmax(1)
    a = batch_local_ncut(probs, img, pair_weight=PMIAffinity(img))
    b = pmi_soft_ncut_loss(probs, img)
    assert torch.allclose(a, b, atol=1e-5)


def test_sampling_weights_favour_rare_colours_and_interiors():
    from wnet_seg.losses.features import interior_weights
    from wnet_seg.losses.graph_ncut import colour_rarity_weights

    img = torch.zeros(1, 3, 32, 32)
    img[..., :2, :2] = 255.0  # a 4-pixel sprite on a flat background
    w = colour_rarity_weights(img, power=0.5).view(32, 32)
    assert torch.isclose(w[0, 0] / w[10, 10], torch.tensor((1020 / 4) ** 0.5))
    g = torch.Generator().manual_seed(3)
    tile_a = torch.randint(0, 100, (1, 3, 4, 4), generator=g).float()
    tile_b = torch.randint(150, 256, (1, 3, 4, 4), generator=g).float()
    two = torch.cat([_tiled(tile_a, 8, 4), _tiled(tile_b, 8, 4)], -1)  # 32x32, boundary at x=16
    inside = interior_weights(two, size=8, tau=10.0).view(32, 32)
    assert inside[16, 4] > 0.99 and inside[16, 27] > 0.99  # deep inside each texture
    assert inside[16, 15] < 0.01  # next to the boundary the centred box blends both
