"""PMI colour affinity: exact against a dense reference, and it separates textures, not colours."""

from __future__ import annotations

import torch

from wnet_seg.losses.pmi import PMIAffinity, colour_ids, pmi_soft_ncut_loss, pmi_weight_table
from wnet_seg.losses.soft_ncut import soft_ncut_loss


def two_textures(h: int = 24, w: int = 24) -> torch.Tensor:
    """Left: a checkerboard of two greens; right: stripes of two blues. (1, 3, H, W) on 0-255."""
    img = torch.zeros(1, 3, h, w)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    left = xx < w // 2
    checker = (yy + xx) % 2 == 0
    img[0, 1] = torch.where(left, torch.where(checker, 200.0, 120.0), 0.0)
    img[0, 2] = torch.where(~left, torch.where(yy % 2 == 0, 220.0, 90.0), 0.0)
    return img


def dense_pmi_ncut(probs, image, radius, sigma_x, gamma):
    ids, n = colour_ids(image[0])
    table = pmi_weight_table(ids, n, radius, gamma=gamma).double()
    h, w = ids.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], 1).double()
    d2 = torch.cdist(pos, pos) ** 2
    f = ids.flatten()
    wmat = table[f][:, f] * torch.exp(-d2 / sigma_x**2) * (d2.sqrt() < radius)
    wmat.fill_diagonal_(1.0)
    p = probs[0].flatten(1)
    return probs.shape[1] - (((p @ wmat) * p).sum(1) / (p @ wmat.sum(1))).sum()


def test_matches_dense_reference_value_and_gradient():
    image = two_textures(14, 18)
    logits = torch.randn(
        1, 3, 14, 18, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    l1 = logits.clone().requires_grad_(True)
    ref = dense_pmi_ncut(l1.softmax(1), image, 3, 4.0, 2.0)
    ref.backward()
    l2 = logits.clone().requires_grad_(True)
    fast = pmi_soft_ncut_loss(l2.softmax(1), image, radius=3, gamma=2.0)
    fast.backward()
    torch.testing.assert_close(fast, ref, rtol=1e-6, atol=0)
    torch.testing.assert_close(l2.grad, l1.grad, rtol=1e-6, atol=1e-12)


def test_table_is_symmetric_and_separates_textures():
    image = two_textures()
    ids, n = colour_ids(image[0])
    assert n == 4
    table = pmi_weight_table(ids, n, 5)
    torch.testing.assert_close(table, table.T)
    green = [int(ids[0, 0]), int(ids[0, 1])]
    blue = [int(ids[0, -1]), int(ids[1, -1])]
    assert table[green[0], green[1]] == 1.0 and table[blue[0], blue[1]] == 1.0
    assert table[green[0], blue[0]] < 0.5


def test_texture_cut_is_cheaper_than_colour_cut():
    """PMI: splitting the two textures is cheap and splitting by colour is not; RGB cannot tell."""
    image = two_textures()
    h, w = image.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    by_texture = torch.stack([(xx < w // 2), (xx >= w // 2)]).double()[None]
    bright = image[0].max(0).values > 150
    by_colour = torch.stack([bright, ~bright]).double()[None]
    pmi = {
        name: pmi_soft_ncut_loss(p, image).item()
        for name, p in [("tex", by_texture), ("col", by_colour)]
    }
    rgb = {
        n: soft_ncut_loss(p, image, features="rgb").item()
        for n, p in [("tex", by_texture), ("col", by_colour)]
    }
    assert pmi["tex"] < 0.1 < 0.5 < pmi["col"]
    # The intensity-style Gaussian on RGB sees a texture's own colours as unrelated: the colour
    # split is free for it, so it cannot prefer the texture split.
    assert rgb["col"] <= rgb["tex"] + 1e-9


def test_quantizes_many_colours():
    image = torch.rand(1, 3, 32, 32) * 255
    ids, n = colour_ids(image[0], max_colours=64, levels=4)
    assert n <= 64 and ids.max() < n
    assert PMIAffinity(image, max_colours=64, levels=4).tables[0].shape == (n, n)
