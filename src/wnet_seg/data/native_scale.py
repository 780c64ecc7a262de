"""Detect integer nearest-neighbour upscales of pixel art and work at the native resolution.

Screenshots of pixel-art games are often an integer upscale of the game's frame (a 768x720 capture
of a 256x240 NES frame is 3x). Each native pixel is then an ``f x f`` block of identical pixels, so
colour changes between neighbouring columns (rows) only happen on the block grid. We measure, per
axis, the mean absolute colour difference between neighbouring columns (rows) and look for the
largest factor ``f`` and phase for which (nearly) all of that "edge energy" lies on a grid of
period ``f``. Photos and smoothly resized images spread their edge energy everywhere, so they get 1.

A few stray columns/rows at the borders (a black frame line, a partial block from a crop) are
tolerated: a margin at each border is left out of the test, and the phase absorbs any crop offset.
Segmenting at native resolution is ``f**2`` times cheaper and matches the game's texture scale;
:func:`from_native` maps the labels back with nearest-neighbour (never blurring labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PixelGrid:
    """An ``factor`` x ``factor`` block grid; blocks start at row ``offset_y`` and column ``offset_x``
    (``0 <= offset < factor``; rows/columns before the offset form a partial first block)."""

    factor: int = 1
    offset_y: int = 0
    offset_x: int = 0


def _edge_energy(rgb: np.ndarray, axis: int) -> np.ndarray:
    """Mean |difference| between neighbouring pixels along ``axis`` (0: rows, 1: columns)."""
    a = rgb.astype(np.int16)
    d = np.abs(np.diff(a, axis=axis)).astype(np.float64)
    other = 1 - axis
    return d.mean(axis=(other, 2)) if d.ndim == 3 else d.mean(axis=other)


def _axis_factor(
    energy: np.ndarray, max_factor: int, tol: float, min_edges: int
) -> tuple[int, int] | None:
    """Largest ``(factor, offset)`` whose grid holds all but ``tol`` of the edge energy, or
    ``None`` if the axis has no edges at all (constant along this axis)."""
    total = energy.sum()
    if total <= 0:
        return None
    pos = np.arange(len(energy))  # boundary i lies between pixel i and i + 1
    for f in range(min(max_factor, max(1, len(energy) // 2)), 1, -1):
        residue = pos % f
        on = np.bincount(residue, weights=energy, minlength=f)
        p = int(np.argmax(on))
        if (total - on[p]) / total <= tol and np.count_nonzero(energy[residue == p]) >= min_edges:
            return f, (p + 1) % f
    return 1, 0


def detect_grid(
    rgb: np.ndarray,
    max_factor: int = 16,
    tol: float = 0.02,
    margin: int = 4,
    min_edges: int = 3,
) -> PixelGrid:
    """Find the nearest-neighbour upscale grid of an image ``(H, W[, C])``.

    ``tol``: the fraction of edge energy allowed off the grid (JPEG noise, overlays); ``margin``:
    pixels at each border left out of the test; ``min_edges``: grid lines that must show an edge.
    Both axes must agree; if they differ (non-square pixels), their gcd is used. An axis without any
    edge (e.g. vertical stripes have no row edges) follows the other one.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim not in (2, 3) or min(rgb.shape[:2]) < 2:
        raise ValueError(f"expected an image (H, W) or (H, W, C), got shape {rgb.shape}")
    m = margin if min(rgb.shape[:2]) > 2 * margin + 8 else 0
    inner = rgb[m : rgb.shape[0] - m, m : rgb.shape[1] - m]  # leave stray border pixels out
    fy = _axis_factor(_edge_energy(inner, 0), max_factor, tol, min_edges)
    fx = _axis_factor(_edge_energy(inner, 1), max_factor, tol, min_edges)
    if fy is not None:
        fy = (fy[0], (fy[1] + m) % fy[0])
    if fx is not None:
        fx = (fx[0], (fx[1] + m) % fx[0])
    if fy is None and fx is None:
        return PixelGrid()
    if fy is None:
        return PixelGrid(fx[0], 0, fx[1])
    if fx is None:
        return PixelGrid(fy[0], fy[1], 0)
    f = math.gcd(fy[0], fx[0])
    if f == 1:
        return PixelGrid()
    return PixelGrid(f, fy[1] % f, fx[1] % f)


def detect_scale(rgb: np.ndarray, **kwargs) -> int:
    """The integer nearest-neighbour upscale factor of ``rgb`` (1 for photo-like images).

    Keyword arguments go to :func:`detect_grid`.
    """
    return detect_grid(rgb, **kwargs).factor


def _block_index(n: int, factor: int, offset: int) -> np.ndarray:
    """Native index of each of ``n`` pixels along an axis (a partial first block is block 0)."""
    r = np.arange(n)
    return (r - offset) // factor + (1 if offset else 0)


def _representatives(n: int, factor: int, offset: int) -> np.ndarray:
    """For each native block along an axis, one pixel inside both the block and the image."""
    idx = _block_index(n, factor, offset)
    starts = np.flatnonzero(np.r_[True, np.diff(idx) > 0])
    ends = np.r_[starts[1:], n]
    return np.minimum(starts + factor // 2, ends - 1) if factor > 1 else starts


def to_native(
    rgb: np.ndarray, factor: int | PixelGrid, offset: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """Sample one pixel per ``factor x factor`` block (its centre, clipped to the image).

    ``factor`` may be a :class:`PixelGrid` (then ``offset`` comes from it). Returns the native
    image ``(ceil-ish H/f, W/f[, C])``, a view-free copy.
    """
    factor, offset = _unpack(factor, offset)
    if factor == 1 and offset == (0, 0):
        return np.array(rgb, copy=True)
    rgb = np.asarray(rgb)
    rows = _representatives(rgb.shape[0], factor, offset[0])
    cols = _representatives(rgb.shape[1], factor, offset[1])
    return rgb[rows][:, cols].copy()


def from_native(
    labels: np.ndarray,
    factor: int | PixelGrid,
    out_hw: tuple[int, int],
    offset: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Nearest-neighbour upscale of native ``labels`` (or any per-pixel map) back to ``out_hw``.

    The exact inverse of :func:`to_native`'s block layout: ``from_native(to_native(x, f), f, x.shape[:2])``
    equals ``x`` when ``x`` is an ``f``-times nearest upscale.
    """
    factor, offset = _unpack(factor, offset)
    labels = np.asarray(labels)
    h, w = int(out_hw[0]), int(out_hw[1])
    rows = _block_index(h, factor, offset[0])
    cols = _block_index(w, factor, offset[1])
    if rows[-1] >= labels.shape[0] or cols[-1] >= labels.shape[1]:
        raise ValueError(
            f"native map {labels.shape[:2]} too small for {h}x{w} at factor {factor}, "
            f"offset {offset} (needs {rows[-1] + 1}x{cols[-1] + 1})"
        )
    return labels[rows][:, cols]


def _unpack(factor: int | PixelGrid, offset: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    if isinstance(factor, PixelGrid):
        return factor.factor, (factor.offset_y, factor.offset_x)
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"scale factor must be >= 1, got {factor}")
    oy, ox = (int(offset[0]), int(offset[1]))
    if not (0 <= oy < factor and 0 <= ox < factor):
        raise ValueError(f"grid offset {offset} must lie in [0, {factor})")
    return factor, (oy, ox)


def resolve_grid(rgb: np.ndarray, native_scale: str | int = "auto") -> PixelGrid:
    """The grid to use for a ``native_scale`` option: ``"auto"`` detects it, an int forces that
    factor (offset 0), ``1``/``"off"`` works at full resolution."""
    if native_scale == "auto":
        return detect_grid(rgb)
    if native_scale in ("off", "none", None, False):
        return PixelGrid()
    try:
        f = int(native_scale)
    except (TypeError, ValueError):
        raise ValueError(
            f"native_scale must be 'auto', 'off' or an integer >= 1, got {native_scale!r}"
        ) from None
    if f < 1:
        raise ValueError(
            f"native_scale must be 'auto', 'off' or an integer >= 1, got {native_scale!r}"
        )
    return PixelGrid(f)
