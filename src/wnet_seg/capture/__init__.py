"""Capture real game frames (Crafter, Super Mario Bros, Atari) into dataset folders.

A dataset folder holds ``images/NNNNNN.png`` (RGB), optionally ``masks/NNNNNN.png`` (uint8 class
ids, same height and width, 255 = ignore) and ``classes.txt`` (``id name`` per line).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from wnet_seg.data.io import save_mask


def write_classes(classes: dict[int, str], path: str | os.PathLike) -> None:
    """Write ``classes.txt``: one ``id name`` line per class, sorted by id."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i} {name}\n" for i, name in sorted(classes.items())))


def write_dataset(
    frames: Iterable[tuple[np.ndarray, np.ndarray | None]],
    out: str | os.PathLike,
    classes: dict[int, str] | None = None,
    total: int | None = None,
    progress: bool = True,
    desc: str = "frames",
) -> int:
    """Write ``(rgb, mask)`` pairs as ``out/images/*.png`` and ``out/masks/*.png``; return the count.

    ``mask`` may be ``None`` (no labels); ``classes`` (if given) goes to ``out/classes.txt``.
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    if classes is not None:
        write_classes(classes, out / "classes.txt")
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, total=total, desc=desc, unit="frame")
    n = 0
    for n, (rgb, mask) in enumerate(frames, 1):
        name = f"{n - 1:06d}.png"
        Image.fromarray(np.asarray(rgb, dtype=np.uint8), mode="RGB").save(out / "images" / name)
        if mask is not None:
            save_mask(mask, out / "masks" / name)
    return n
