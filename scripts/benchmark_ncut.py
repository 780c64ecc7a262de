"""Time and peak memory of the exact soft N-cut (forward + backward) against a straightforward version.

The straightforward version is what most public W-Net code does once it avoids the dense N x N
matrix: loop over the neighbour offsets on padded, shifted copies and let autograd record every step.
Ours (``wnet_seg.losses.soft_ncut_loss``) keeps only ``W p_k`` and uses the closed-form gradient.

Each measurement runs in a fresh subprocess so peak RSS is its own. Usage:

    python scripts/benchmark_ncut.py                      # the three issue configurations
    python scripts/benchmark_ncut.py --configs 2,8,64     # custom (B,K,H=W) triples, ';'-separated
    python scripts/benchmark_ncut.py --profile 4,32,224   # where the exact version's time goes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

DEFAULT_CONFIGS = [(4, 8, 224), (4, 32, 224), (1, 16, 1024)]


def straightforward_ncut(probs, image, radius=5, sigma_i=10.0, sigma_x=4.0):
    """Soft N-cut via shifted copies with autograd through the whole neighbour loop."""
    import torch
    import torch.nn.functional as F

    from wnet_seg.losses import image_features

    feats = image_features(image, "intensity")
    b, k, h, w = probs.shape
    r = int(math.ceil(radius))
    pp = F.pad(probs, (r, r, r, r))
    fp = F.pad(feats, (r, r, r, r))
    vp = F.pad(torch.ones_like(feats), (r, r, r, r))
    assoc_aa = probs.new_zeros(b, k)
    deg = torch.zeros_like(feats)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx >= radius * radius:
                continue
            sl = (..., slice(r + dy, r + dy + h), slice(r + dx, r + dx + w))
            wmap = torch.exp(-((feats - fp[sl]) ** 2).sum(1, keepdim=True) / sigma_i**2)
            wmap = wmap * math.exp(-(dy * dy + dx * dx) / sigma_x**2) * vp[sl]
            assoc_aa = assoc_aa + (probs * wmap * pp[sl]).sum((2, 3))
            deg = deg + wmap
    assoc_av = (probs * deg).sum((2, 3))
    return (k - (assoc_aa / (assoc_av + 1e-8)).sum(1)).mean()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _worker(impl: str, b: int, k: int, hw: int, repeats: int) -> dict:
    import torch

    from wnet_seg.losses import soft_ncut_loss

    torch.manual_seed(0)
    logits = torch.randn(b, k, hw, hw)
    image = torch.rand(b, 3, hw, hw) * 255
    fn = soft_ncut_loss if impl == "exact" else straightforward_ncut
    times = []
    base = _rss_bytes()
    for _ in range(repeats):
        x = logits.clone().requires_grad_(True)
        t0 = time.perf_counter()
        loss = fn(x.softmax(1), image)
        loss.backward()
        times.append(time.perf_counter() - t0)
        del loss, x
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": min(times), "peak_extra_bytes": max(0, peak - base)}


def _run(impl, b, k, hw, repeats, timeout):
    cmd = [sys.executable, __file__, "--worker", impl, f"{b},{k},{hw}", "--repeats", str(repeats)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout > {timeout}s"}
    if out.returncode != 0:
        tail = (out.stderr or "").strip().splitlines()[-1:] or ["killed"]
        return {"error": f"exit {out.returncode}: {tail[0][:80]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _best(results: list[dict]) -> dict:
    ok = [r for r in results if "seconds" in r]
    if not ok:
        return results[0]
    return {
        "seconds": min(r["seconds"] for r in ok),
        "peak_extra_bytes": max(r["peak_extra_bytes"] for r in ok),
    }


def profile(b: int, k: int, hw: int, repeats: int = 5) -> None:
    """Best-of-``repeats`` split of one forward+backward: weight maps, their application, the rest."""
    import torch

    from wnet_seg.losses import image_features, neighbour_offsets, soft_ncut_loss
    from wnet_seg.losses.soft_ncut import _affinity_apply, _gaussian_maps

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    torch.manual_seed(0)
    logits = torch.randn(b, k, hw, hw)
    image = torch.rand(b, 3, hw, hw) * 255
    probs, feats = logits.softmax(1), image_features(image)
    pairs = neighbour_offsets(5)

    def full():
        x = logits.clone().requires_grad_(True)
        soft_ncut_loss(x.softmax(1), image).backward()

    total = best(full)
    maps = best(lambda: [_gaussian_maps(feats[i], pairs, 10.0, 4.0) for i in range(b)])
    affinity = best(lambda: _affinity_apply(probs, feats, 5, 10.0, 4.0))
    print(f"(B, K, H=W) = ({b}, {k}, {hw}), threads {torch.get_num_threads()}, best of {repeats}")
    print(f"forward + backward (softmax included) : {total * 1e3:7.1f} ms")
    print(f"  W p and degree (_affinity_apply)     : {affinity * 1e3:7.1f} ms")
    print(f"    of which the {len(pairs)} weight maps/image : {maps * 1e3:7.1f} ms")
    # Why the exponent is clamped: exp() of arguments far below float32's range is much slower.
    n = len(pairs) * hw * hw
    low, ok = torch.rand(n) * -700, torch.rand(n) * -60
    print(f"exp of {n} values in [-700, 0]      : {best(lambda: low.exp()) * 1e3:7.2f} ms")
    print(f"exp of {n} values in [-60, 0]       : {best(lambda: ok.exp()) * 1e3:7.2f} ms")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=None, help="B,K,HW triples separated by ';'")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per process (best kept)")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="processes per implementation, interleaved (best kept)",
    )
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--profile", metavar="B,K,HW", help="time split of the exact version, then exit")
    p.add_argument("--worker", nargs=2, metavar=("IMPL", "B,K,HW"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.profile:
        profile(*(int(v) for v in args.profile.split(",")))
        return
    if args.worker:
        impl, spec = args.worker
        b, k, hw = (int(v) for v in spec.split(","))
        print(json.dumps(_worker(impl, b, k, hw, args.repeats)))
        return
    configs = (
        [tuple(int(v) for v in c.split(",")) for c in args.configs.split(";")]
        if args.configs
        else DEFAULT_CONFIGS
    )
    import torch

    print(
        f"machine: {platform.machine()} {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}; "
        f"forward+backward, best of {args.repeats} calls x {args.rounds} interleaved processes; "
        "peak = extra RSS over the inputs"
    )
    header = "| B | K | H=W | exact s | exact peak MB | straightforward s | straightforward peak MB | speed-up | memory ratio |"
    print(header)
    print("|" + "---|" * 9)
    for b, k, hw in configs:
        # Interleave the two implementations over several processes and keep each one's best, so a
        # burst of load from other programs does not land on one side only.
        runs: dict[str, list[dict]] = {"exact": [], "straightforward": []}
        for r in range(args.rounds):
            order = ["exact", "straightforward"] if r % 2 == 0 else ["straightforward", "exact"]
            for impl in order:
                runs[impl].append(_run(impl, b, k, hw, args.repeats, args.timeout))
        ours, ref = (_best(runs[i]) for i in ("exact", "straightforward"))

        def fmt(r, key, scale=1.0, digits=2):
            return f"{r[key] / scale:.{digits}f}" if key in r else r.get("error", "?")

        speed = (
            f"{ref['seconds'] / ours['seconds']:.1f}x"
            if "seconds" in ours and "seconds" in ref
            else "-"
        )
        mem = (
            f"{ours['peak_extra_bytes'] / max(ref['peak_extra_bytes'], 1):.3f}"
            if "peak_extra_bytes" in ours and "peak_extra_bytes" in ref
            else "-"
        )
        print(
            f"| {b} | {k} | {hw} | {fmt(ours, 'seconds')} | {fmt(ours, 'peak_extra_bytes', 2**20, 0)} | "
            f"{fmt(ref, 'seconds')} | {fmt(ref, 'peak_extra_bytes', 2**20, 0)} | {speed} | {mem} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
