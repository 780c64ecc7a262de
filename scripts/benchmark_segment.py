"""Segmentation speed: the default output (W-Net + tile pooling) in frames per second.

    python scripts/benchmark_segment.py                    # both parts below, CPU
    python scripts/benchmark_segment.py --frames 2000 --processes 1 2
    python scripts/benchmark_segment.py --gpu              # on a GPU machine: trainer=gpu / ddp

1. ``pipeline``: :meth:`wnet_seg.inference.Segmenter.segment_batch` in this process, batches of
   ``--batch`` 256x256 Crafter test-world frames, after a warm-up: frames/s of the whole default
   output and of the network alone, one thread per process unless ``--threads``.
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


def crafter_frames(n: int) -> list[np.ndarray]:
    from wnet_seg.capture.crafter import CRAFTER_BENCHMARK, render_crafter_frames

    spec = CRAFTER_BENCHMARK["test"]
    unique = min(n, 64)
    frames = [f for f, _ in render_crafter_frames(unique, 256, seed=spec.first_world)]
    return [frames[i % unique] for i in range(n)]


def pipeline(batch: int, batches: int) -> dict[str, float]:
    from wnet_seg.inference import Segmenter

    seg = Segmenter.from_checkpoint()
    frames = crafter_frames(batch * (batches + 1))
    seg.segment_batch(frames[:batch])  # warm-up
    t0, net = time.perf_counter(), 0.0
    for i in range(1, batches + 1):
        results = seg.segment_batch(frames[i * batch : (i + 1) * batch])
        net += sum(r.seconds["network"] for r in results)
    wall = time.perf_counter() - t0
    n = batch * batches
    return {"default_fps": n / wall, "network_fps": n / net}


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
    a = p.parse_args()
    import torch

    from wnet_seg.hostinfo import machine_description

    torch.set_num_threads(a.threads)
    print(f"machine: {machine_description()}")
    r = pipeline(a.batch, a.batches)
    print("\n| part | frames | frames/s |\n|---|---|---|")
    print(f"| pipeline, default output, batch {a.batch}, {a.threads} thread(s) | "
          f"{a.batch * a.batches} | {r['default_fps']:.1f} |")  # fmt: skip
    print(f"| pipeline, network only | {a.batch * a.batches} | {r['network_fps']:.1f} |")
    if a.skip_cli:
        return
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="wnet-seg-frames-"))
    for i, f in enumerate(crafter_frames(a.frames)):
        Image.fromarray(f).save(folder / f"{i:06d}.png")
    base = None
    for n in a.processes:
        took = cli_run(folder, n, a.batch, a.gpu)
        base = base or took
        print(f"| wnet-seg-segment, {n} process(es), whole run | {a.frames} | "
              f"{a.frames / took:.1f} ({base / took:.2f}x of 1 process) |")  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
