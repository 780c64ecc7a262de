"""The exact local soft N-cut against a dense, obvious N x N float64 reference."""

from __future__ import annotations

import math

import pytest
import torch

from wnet_seg.losses import image_features, neighbour_offsets, soft_ncut_loss


def dense_weights(
    feats: torch.Tensor, radius: float, sigma_i: float, sigma_x: float
) -> torch.Tensor:
    """W (N x N) of one image straight from the paper's formula: feats (F, H, W)."""
    _, h, w = feats.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], 1).double()  # (N, 2)
    f = feats.flatten(1).T.double()  # (N, F)
    dx2 = torch.cdist(pos, pos) ** 2
    df2 = torch.cdist(f, f) ** 2
    wmat = torch.exp(-df2 / sigma_i**2) * torch.exp(-dx2 / sigma_x**2)
    return wmat * (dx2.sqrt() < radius)


def dense_ncut(probs, image, radius, sigma_i, sigma_x, features):
    """Per-image J = K - sum_k p_k^T W p_k / p_k^T W 1, with autograd through everything."""
    feats = image_features(image.double(), features)
    out = []
    for b in range(probs.shape[0]):
        wmat = dense_weights(feats[b], radius, sigma_i, sigma_x)
        p = probs[b].flatten(1)  # (K, N)
        assoc_aa = ((p @ wmat) * p).sum(1)
        assoc_av = p @ wmat.sum(1)
        out.append(probs.shape[1] - (assoc_aa / assoc_av).sum())
    return torch.stack(out)


def random_case(b, k, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, h, w, generator=g, dtype=torch.float64) * 2
    # Piecewise-flat image with some noise: affinities spread over (0, 1], not all ~0.
    image = torch.randint(0, 4, (b, 3, h, w), generator=g).double() * 12
    image = image + torch.randn(b, 3, h, w, generator=g, dtype=torch.float64) * 3 + 100
    return logits, image


def test_paper_neighbourhood_has_69_offsets():
    assert 2 * len(neighbour_offsets(5)) + 1 == 69
    assert 2 * len(neighbour_offsets(1)) + 1 == 1  # |o| < 1: only the centre


@pytest.mark.parametrize("features", ["intensity", "rgb"])
@pytest.mark.parametrize("k", [2, 5, 8])
@pytest.mark.parametrize("radius", [1, 3, 5])
def test_matches_dense_reference_value_and_gradient(features, k, radius):
    h, w = (24, 24) if k == 8 else (12, 16)
    logits, image = random_case(3, k, h, w, seed=k * 10 + radius)
    sigma_i = 10.0 if features == "intensity" else 20.0

    logits_ref = logits.clone().requires_grad_(True)
    ref = dense_ncut(logits_ref.softmax(1), image, radius, sigma_i, 4.0, features)
    ref.sum().backward()

    logits_fast = logits.clone().requires_grad_(True)
    fast = soft_ncut_loss(
        logits_fast.softmax(1),
        image,
        radius=radius,
        sigma_i=sigma_i,
        sigma_x=4.0,
        features=features,
        reduction="none",
        eps=0.0,
    )
    fast.sum().backward()

    torch.testing.assert_close(fast, ref, rtol=1e-6, atol=0)
    torch.testing.assert_close(logits_fast.grad, logits_ref.grad, rtol=1e-6, atol=1e-12)


def test_gradient_wrt_probabilities_directly():
    _, image = random_case(2, 3, 9, 11, seed=3)
    g = torch.Generator().manual_seed(4)
    probs = torch.rand(2, 3, 9, 11, generator=g, dtype=torch.float64)
    p_ref = probs.clone().requires_grad_(True)
    dense_ncut(p_ref, image, 5, 10.0, 4.0, "intensity").sum().backward()
    p_fast = probs.clone().requires_grad_(True)
    soft_ncut_loss(p_fast, image, reduction="sum", eps=0.0).backward()
    torch.testing.assert_close(p_fast.grad, p_ref.grad, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("features", ["intensity", "rgb"])
def test_odd_size_matches_dense(features):
    logits, image = random_case(2, 4, 17, 23, seed=7)
    probs = logits.softmax(1)
    ref = dense_ncut(probs, image, 5, 10.0, 4.0, features)
    fast = soft_ncut_loss(probs, image, features=features, reduction="none", eps=0.0)
    torch.testing.assert_close(fast, ref, rtol=1e-6, atol=0)


def test_per_image_mean_not_batch_pooled():
    logits, image = random_case(3, 4, 10, 10, seed=11)
    probs = logits.softmax(1)
    per = soft_ncut_loss(probs, image, reduction="none")
    assert per.shape == (3,)
    torch.testing.assert_close(soft_ncut_loss(probs, image), per.mean())
    torch.testing.assert_close(soft_ncut_loss(probs, image, reduction="sum"), per.sum())
    # Each image's loss depends on that image only.
    torch.testing.assert_close(soft_ncut_loss(probs[1:2], image[1:2], reduction="none"), per[1:2])


def test_all_one_class_is_finite_with_zero_gradient_nan_free():
    k = 6
    probs = torch.zeros(2, k, 16, 16, dtype=torch.float64)
    probs[:, 2] = 1.0
    probs.requires_grad_(True)
    image = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 255
    loss = soft_ncut_loss(probs, image, reduction="none")
    assert torch.isfinite(loss).all()
    # One perfect cluster (ratio 1) and K-1 empty classes (ratio 0): J = K - 1.
    torch.testing.assert_close(loss, torch.full((2,), k - 1.0, dtype=torch.float64))
    loss.sum().backward()
    assert torch.isfinite(probs.grad).all()


def test_scale_matters_intensity_on_0_255():
    """A two-tone image: on 0-255 the cut between tones is free; on [0, 1] it is not (the bug)."""
    image = torch.zeros(1, 3, 16, 16, dtype=torch.float64)
    image[..., 8:] = 200.0
    probs = torch.zeros(1, 2, 16, 16, dtype=torch.float64)
    probs[:, 0, :, :8] = 1
    probs[:, 1, :, 8:] = 1
    good = soft_ncut_loss(probs, image)
    buggy = soft_ncut_loss(probs, image / 255.0)
    assert good.item() < 1e-6
    assert buggy.item() > 0.1


def test_float32_and_bfloat16_inputs():
    logits, image = random_case(2, 5, 20, 20, seed=5)
    ref = soft_ncut_loss(logits.softmax(1), image, reduction="none")
    f32 = soft_ncut_loss(logits.float().softmax(1), image.float(), reduction="none")
    torch.testing.assert_close(f32.double(), ref, rtol=1e-4, atol=1e-4)
    bf = soft_ncut_loss(logits.bfloat16().softmax(1), image.float(), reduction="none")
    assert bf.dtype == torch.float32 and torch.isfinite(bf).all()
    assert math.isclose(bf.mean().item(), ref.mean().item(), rel_tol=0.05)


def test_bad_arguments_raise_clear_errors():
    probs = torch.rand(1, 2, 8, 8).softmax(1)
    with pytest.raises(ValueError, match="features"):
        soft_ncut_loss(probs, torch.rand(1, 3, 8, 8), features="hsv")
    with pytest.raises(ValueError, match="differ"):
        soft_ncut_loss(probs, torch.rand(1, 3, 9, 8))
    with pytest.raises(ValueError, match="sigma"):
        soft_ncut_loss(probs, torch.rand(1, 3, 8, 8), sigma_i=0)
    with pytest.raises(ValueError, match="radius"):
        soft_ncut_loss(probs, torch.rand(1, 3, 8, 8), radius=0)
