"""Capture real game frames into dataset folders (the games: :mod:`wnet_seg.capture.games`).

A dataset folder holds ``images/NNNNNN.png`` (RGB), optionally ``masks/NNNNNN.png`` (uint8 class
ids, same height and width, 255 = ignore), ``classes.txt`` (``id name`` per line) and
``provenance.json`` (game, seed, package versions: enough to regenerate it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wnet_seg.data.io import save_mask


def as_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """A ``size`` option (one int: square, or ``(height, width)``) as ``(height, width)``."""
    if isinstance(size, int | np.integer):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def write_frame_index(out: str | os.PathLike, columns: list[str], rows: Iterable[Iterable]) -> None:
    """``out/frames.csv``: a ``file`` column (``000000.png``, ... as :func:`write_dataset` names
    the frames) then ``columns``, one row per frame in order."""
    import csv

    with open(Path(out) / "frames.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["file", *columns])
        for i, row in enumerate(rows):
            wr.writerow([f"{i:06d}.png", *row])


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
    provenance: dict[str, Any] | None = None,
) -> int:
    """Write ``(rgb, mask)`` pairs as ``out/images/*.png`` and ``out/masks/*.png``; return the count.

    ``mask`` may be ``None`` (no labels); ``classes`` (if given) goes to ``out/classes.txt`` and
    ``provenance`` (see :func:`provenance`) to ``out/provenance.json``, with the frame count.
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
    if provenance is not None:
        record = {**provenance, "frames": n}
        (out / "provenance.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return n


def provenance(game: str, seed: int, packages: Iterable[str] = (), **details: Any) -> dict:
    """What :func:`write_dataset` records in ``provenance.json``: the game, its seed, the versions
    of wnet-seg and of ``packages``, the game's art licence and label kind, plus ``details``.
    No time stamp, so the same capture writes the same bytes."""
    from wnet_seg import __version__
    from wnet_seg.capture.games import GAMES

    versions = {"wnet-seg": __version__}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info = GAMES.get(game)
    record: dict[str, Any] = {"game": game, "seed": int(seed), "versions": versions}
    if info is not None:
        record.update(
            licence=info.licence,
            tile=info.tile,
            labels=info.label_kind,
            committable=info.committable,
        )
    record.update(details)
    return record
