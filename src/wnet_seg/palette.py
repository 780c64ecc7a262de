"""A fixed colour palette for drawing label maps, so the same id has the same colour in every figure.

Ids 0..19 get hand-picked, well separated colours; ids 20..254 get colours spread around the hue
circle by the golden ratio (deterministic, no randomness); id 255 (the "ignore" id) is black.
"""

from __future__ import annotations

import colorsys

import numpy as np

_BASE = [
    (128, 128, 128),  # 0 grey
    (31, 119, 180),  # 1 blue
    (44, 160, 44),  # 2 green
    (150, 150, 170),  # 3 light slate
    (140, 86, 75),  # 4 brown
    (240, 220, 130),  # 5 sand yellow
    (20, 90, 30),  # 6 dark green
    (255, 90, 0),  # 7 orange
    (40, 40, 40),  # 8 near-black
    (230, 170, 140),  # 9 salmon
    (80, 235, 235),  # 10 cyan
    (188, 120, 40),  # 11 ochre
    (120, 60, 160),  # 12 purple
    (255, 255, 255),  # 13 white
    (214, 39, 40),  # 14 red
    (0, 190, 120),  # 15 teal green
    (230, 230, 0),  # 16 yellow
    (255, 0, 255),  # 17 magenta
    (160, 255, 100),  # 18 lime
    (0, 70, 200),  # 19 deep blue
]


def _make_palette() -> np.ndarray:
    pal = np.zeros((256, 3), dtype=np.uint8)
    pal[: len(_BASE)] = np.array(_BASE, dtype=np.uint8)
    golden = 0.618033988749895
    for i in range(len(_BASE), 255):
        hue = (i * golden) % 1.0
        sat = 0.55 + 0.45 * ((i * 7) % 3) / 2
        val = 0.65 + 0.35 * ((i * 5) % 4) / 3
        r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
        pal[i] = (round(r * 255), round(g * 255), round(b * 255))
    pal[255] = (0, 0, 0)
    pal.setflags(write=False)
    return pal


PALETTE: np.ndarray = _make_palette()
"""``(256, 3)`` uint8, read-only: the colour of each label id."""


def colorize(mask: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """Map an integer label map ``(H, W)`` to RGB ``(H, W, 3)`` uint8 with a fixed palette.

    Ids must lie in ``0..255`` (255 = ignore, drawn black with the default palette).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"colorize expects a 2-D label map, got shape {mask.shape}")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"label ids must lie in 0..255, got {mask.min()}..{mask.max()}")
    pal = PALETTE if palette is None else np.asarray(palette, dtype=np.uint8)
    if pal.ndim != 2 or pal.shape[1] != 3 or pal.shape[0] <= int(mask.max(initial=0)):
        raise ValueError(f"palette must be (N, 3) with N > max id, got {pal.shape}")
    return pal[mask.astype(np.intp)]
