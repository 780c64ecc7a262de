"""Render Crafter benchmark frames once into an npz cache for the research harness.

Usage: python scripts/research/make_cache.py --split val --num 64 --out data/research/crafter_val.npz
Splits follow ``wnet_seg.capture.crafter.CRAFTER_BENCHMARK`` (disjoint world seeds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from wnet_seg.capture.crafter import CRAFTER_BENCHMARK, render_crafter_frames


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=sorted(CRAFTER_BENCHMARK), required=True)
    ap.add_argument("--num", type=int, default=None)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    spec = CRAFTER_BENCHMARK[a.split]
    num = spec.num_frames if a.num is None else a.num
    t0 = time.time()
    frames = list(
        render_crafter_frames(
            num, a.size, seed=spec.first_world, frames_per_world=spec.frames_per_world
        )
    )
    imgs = np.stack([f[0] for f in frames])
    masks = np.stack([f[1] for f in frames])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.out, images=imgs, masks=masks)
    print(f"{a.split}: {len(frames)} frames -> {a.out} in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
