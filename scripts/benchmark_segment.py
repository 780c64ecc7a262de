"""Segmentation speed: the default output (W-Net + tile pooling) in frames per second.

    python scripts/benchmark_segment.py                    # both parts below, CPU
    python scripts/benchmark_segment.py --frames 2000 --processes 1 2
    python scripts/benchmark_segment.py --gpu              # on a GPU machine: trainer=gpu / ddp

1. ``pipeline``: :meth:`wnet_seg.inference.Segmenter.segment_batch` in this process, batches of
   ``--batch`` 256x256 Crafter test-world frames (160 distinct ones), after a warm-up batch:
   frames/s of the default output and milliseconds per frame of grid detection, network (the
   whole frame, or only the strips whole tiles leave out) and tile pooling (which includes the
   network on the mosaics of new tiles). Side by side: as ``wnet-seg-segment`` runs it (the
   folder vote, then ``per_pixel=False``), and every frame alone with the per-pixel pass of the
   library default. One thread per process unless ``--threads``.
2. ``cli``: whole ``wnet-seg-segment`` runs over a folder of ``--frames`` frames (written once,
   Crafter frames at 256x256, repeated), on 1 and 2 processes (``trainer=cpu`` /
   ``trainer=ddp_cpu``), timed as processes start to end (imports and model loading included),
   run one after another on the same machine so the ratio is side by side.
Prints a markdown table with the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def crafter_frames(n: int, condition: str = "clean") -> list[np.ndarray]:
    from wnet_seg.capture.crafter import CRAFTER_BENCHMARK, render_crafter_frames
    from wnet_seg.data.degrade import parse_degradation

    spec = CRAFTER_BENCHMARK["test"]
    unique = min(n, 160)
    degrade = parse_degradation(condition)
    frames = [degrade(f)[0] for f, _ in render_crafter_frames(unique, 256, seed=spec.first_world)]
    return [frames[i % unique] for i in range(n)]


def pipeline(
    batch: int, batches: int, per_pixel: bool, vote: bool, condition: str
) -> dict[str, float]:
    """Frames/s of the default output over ``batches`` batches after a warm-up batch, and the
    seconds per frame of each stage. ``vote``: the folder vote first (once per folder, not timed),
    as ``wnet-seg-segment`` does; ``per_pixel``: the network on every whole frame too."""
    from wnet_seg.inference import VOTE_FRAMES, Segmenter

    seg = Segmenter.from_checkpoint(per_pixel=per_pixel)
    frames = crafter_frames(batch * (batches + 1), condition)
    if vote:
        seg.fit_folder(frames[:VOTE_FRAMES])
    seg.segment_batch(frames[:batch])  # warm-up
    stages = {"geometry": 0.0, "network": 0.0, "tiles": 0.0}
    t0 = time.perf_counter()
    for i in range(1, batches + 1):
        for r in seg.segment_batch(frames[i * batch : (i + 1) * batch]):
            for k in stages:
                stages[k] += r.seconds.get(k, 0.0)
    wall = time.perf_counter() - t0
    n = batch * batches
    return {"fps": n / wall, **{f"{k}_ms": 1000 * v / n for k, v in stages.items()}}


def cli_run(folder: Path, processes: int, batch: int, gpu: bool) -> float:
    out = Path(tempfile.mkdtemp(prefix="wnet-seg-bench-"))
    trainer = (
        ("gpu" if processes == 1 else "ddp") if gpu else ("cpu" if processes == 1 else "ddp_cpu")
    )
    cmd = [sys.executable, "-m", "wnet_seg.segment", f"input={folder}", f"output={out}",
           f"trainer={trainer}", f"trainer.devices={processes}", f"batch_size={batch}",
           "overlays=false", "progress=false"]  # fmt: skip
    threads = max(1, (os.cpu_count() or 1) // processes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    took = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batches", type=int, default=8, help="pipeline part: timed batches")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=1, help="pipeline part: torch threads")
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--skip-cli", action="store_true")
    p.add_argument("--condition", default="clean", help="pipeline part: e.g. jpeg:85")
    a = p.parse_args()
    import torch

    from wnet_seg.hostinfo import machine_description

    torch.set_num_threads(a.threads)
    print(f"machine: {machine_description()}")
    n = a.batch * a.batches
    print(
        f"\npipeline: batches of {a.batch} 256x256 frames ({a.condition}), {a.threads} thread(s), "
        "one process"
    )
    print("\n| default output | frames | frames/s | grid ms | network ms | tiles ms |")
    print("|---|---|---|---|---|---|")
    for label, per_pixel, vote in (
        ("as wnet-seg-segment: folder vote, network only where the tiles need it", False, True),
        ("every frame alone, network on the whole frame (library default)", True, False),
    ):
        r = pipeline(a.batch, a.batches, per_pixel, vote, a.condition)
        print(f"| {label} | {n} | {r['fps']:.1f} | {r['geometry_ms']:.1f} | "
              f"{r['network_ms']:.1f} | {r['tiles_ms']:.1f} |", flush=True)  # fmt: skip
    if a.skip_cli:
        return
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="wnet-seg-frames-"))
    for i, f in enumerate(crafter_frames(a.frames)):
        Image.fromarray(f).save(folder / f"{i:06d}.png")
    print("\n| wnet-seg-segment (whole run: start-up, vote, PNG writing) | frames | frames/s |")
    print("|---|---|---|")
    base = None
    for n in a.processes:
        took = cli_run(folder, n, a.batch, a.gpu)
        base = base or took
        print(f"| {n} process(es) | {a.frames} | "
              f"{a.frames / took:.1f} ({base / took:.2f}x of 1 process) |")  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
