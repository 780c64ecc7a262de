"""Paired image/mask transforms for pixel art: nearest-neighbour only, never blur a label.

Each transform takes and returns ``(image, mask)`` with ``image`` a ``uint8`` ``(H, W, C)`` array and
``mask`` a ``uint8`` ``(H, W)`` array or ``None``.
"""

from __future__ import annotations

import numpy as np

from wnet_seg.data.io import IGNORE_ID

Pair = tuple[np.ndarray, "np.ndarray | None"]


def nearest_upscale(image: np.ndarray, mask: np.ndarray | None, factor: int) -> Pair:
    """Integer nearest-neighbour upscale: every pixel becomes a ``factor x factor`` block."""
    if factor == 1:
        return image, mask
    image = image.repeat(factor, 0).repeat(factor, 1)
    if mask is not None:
        mask = mask.repeat(factor, 0).repeat(factor, 1)
    return image, mask


def pad_to(image: np.ndarray, mask: np.ndarray | None, size: int) -> Pair:
    """Pad bottom/right with edge pixels (mask with ignore) up to ``size`` on each side."""
    h, w = image.shape[:2]
    ph, pw = max(0, size - h), max(0, size - w)
    if not (ph or pw):
        return image, mask
    image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
    if mask is not None:
        mask = np.pad(mask, ((0, ph), (0, pw)), constant_values=IGNORE_ID)
    return image, mask


def random_crop(
    image: np.ndarray, mask: np.ndarray | None, size: int, rng: np.random.Generator
) -> Pair:
    """A ``size x size`` crop at a random position (padding first if the image is smaller)."""
    image, mask = pad_to(image, mask, size)
    h, w = image.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    image = image[y : y + size, x : x + size]
    if mask is not None:
        mask = mask[y : y + size, x : x + size]
    return image, mask


def center_crop(image: np.ndarray, mask: np.ndarray | None, size: int) -> Pair:
    image, mask = pad_to(image, mask, size)
    h, w = image.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    image = image[y : y + size, x : x + size]
    if mask is not None:
        mask = mask[y : y + size, x : x + size]
    return image, mask


def random_flip(image: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator) -> Pair:
    """Horizontal flip with probability 1/2 (game worlds are not symmetric top-to-bottom)."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
        if mask is not None:
            mask = mask[:, ::-1]
    return image, mask


def train_transform(
    image: np.ndarray,
    mask: np.ndarray | None,
    *,
    crop_size: int | None,
    aug: bool,
    rng: np.random.Generator,
) -> Pair:
    """Training view: random crop (or centre crop without augmentation) and random flip."""
    if crop_size is not None:
        image, mask = (
            random_crop(image, mask, crop_size, rng) if aug else center_crop(image, mask, crop_size)
        )
    if aug:
        image, mask = random_flip(image, mask, rng)
    return np.ascontiguousarray(image), None if mask is None else np.ascontiguousarray(mask)


def palette_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same frame in another palette: channels permuted, each through a random gamma in
    [0.6, 1.6]. Equal colours stay equal and different ones (almost always) different, so the
    textures and tile repeats survive while the colours are new (games the network never saw)."""
    lut = np.arange(256, dtype=np.float64) / 255.0
    tables = [np.round(255.0 * lut ** rng.uniform(0.6, 1.6)).astype(np.uint8) for _ in range(3)]
    order = rng.permutation(3)
    return np.ascontiguousarray(
        np.stack([tables[c][image[..., o]] for c, o in enumerate(order)], -1)
    )
