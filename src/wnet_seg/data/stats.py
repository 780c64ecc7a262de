"""``wnet-seg-stats``: per-channel mean and std of a folder of screenshots, for ``data.mean/std``.

wnet-seg-stats data/bench/crafter/train            # prints the Hydra overrides to use
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from wnet_seg.data.datasets import screenshot_files
from wnet_seg.data.io import ImageReadError, load_rgb

log = logging.getLogger(__name__)


def channel_stats(
    files: list[Path], limit: int | None = None
) -> tuple[list[float], list[float], int]:
    """Exact mean/std over all pixels of the readable images (values in [0, 1]); unreadable skipped."""
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    used = 0
    for f in files[:limit] if limit else files:
        try:
            x = load_rgb(f).reshape(-1, 3).astype(np.float64) / 255.0
        except ImageReadError as err:
            log.warning("skipping %s", err)
            continue
        total += x.sum(0)
        total_sq += (x * x).sum(0)
        count += x.shape[0]
        used += 1
    if count == 0:
        raise RuntimeError("no readable image to compute statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 1e-12))
    return [round(float(v), 4) for v in mean], [round(float(v), 4) for v in std], used


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Per-channel mean/std of the images under a folder.")
    p.add_argument("path", help="image folder (a folder with images/ is understood)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many images")
    args = p.parse_args(argv)
    files, _ = screenshot_files(args.path, None)
    mean, std, used = channel_stats(files, args.limit)
    print(f"{used} images")
    print(f"data.mean=[{','.join(map(str, mean))}] data.std=[{','.join(map(str, std))}]")


if __name__ == "__main__":
    main()
