"""Training throughput, peak memory, FLOPs and MFU, soft N-cut share, and inference frames/s.

Trains through the real ``WNetModule`` and Lightning ``Trainer`` (alternating schedule: an encoder
step on the soft N-cut, then a whole-W-Net step on the reconstruction, per batch) on synthetic
pixel-art frames, one fresh subprocess per measurement (its own peak memory and compile cache).

- images/s: global batch / median step time after warm-up (compile happens in the warm-up).
- peak memory: the process's peak RSS on CPU; ``torch.cuda.max_memory_allocated`` on a GPU.
- model FLOPs per image: convolutions of one training step (encoder forward + backward, then
  W-Net forward + backward): forward FLOPs counted by ``torch.utils.flop_counter`` on the meta
  device, backward = 2x forward; the soft N-cut's element-wise work is not counted. MFU = achieved model FLOP/s over
  this machine's measured dense-matmul peak (fp32 on CPU; TF32 or bf16 on a GPU, as trained).
- N-cut share: soft N-cut forward + backward time / training-step time, same batch and precision.
- inference: frames/s of 256x240 frames (batch 1), argmax alone and followed by the dense CRF.

    python scripts/benchmark_train.py                  # CPU: small preset, 128 px, batch 2,4,8
    python scripts/benchmark_train.py --device cuda    # GPU: paper preset, 224 px, fp32 eager vs
                                                       #      bf16-mixed + channels_last + compile
    python scripts/benchmark_train.py --dry-run        # tiny shapes, seconds: checks the plumbing
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

MODES = {
    "fp32": dict(precision="32-true", channels_last=False, compile=False),
    "bf16": dict(precision="bf16-mixed", channels_last=False, compile=False),
    "fast": dict(precision="bf16-mixed", channels_last=True, compile=True),
}
MODE_LABEL = {
    "fp32": "fp32 eager",
    "bf16": "bf16-mixed eager",
    "fast": "bf16-mixed + channels_last + compile",
}
INFER_HW = (240, 256)


# ---- helpers run inside the workers -------------------------------------------------------------
def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _frames(n: int, h: int, w: int, seed: int = 0):
    """``n`` blocky pixel-art-like frames ``(n, 3, h, w)`` in [0, 1] (8x8 tiles, 6 colours)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    palette = torch.rand(6, 3, generator=g)
    ids = torch.randint(0, 6, (n, (h + 7) // 8, (w + 7) // 8), generator=g)
    ids = ids.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, :h, :w]
    return palette[ids].permute(0, 3, 1, 2).contiguous()


def _module(preset: str, num_classes: int, channels_last: bool, compile: bool):
    from wnet_seg.config import LossConf, ModelConf, OptimConf
    from wnet_seg.lightning_module import WNetModule

    return WNetModule(
        ModelConf(preset=preset, num_classes=num_classes).to_wnet_config(),
        LossConf(),
        OptimConf(),
        norm={"mean": [0.5] * 3, "std": [0.25] * 3},
        channels_last=channels_last,
        compile=compile,
    )


def _peak_bytes(device: str) -> int:
    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _autocast(device: str, precision: str):
    import contextlib

    import torch

    if precision == "bf16-mixed":
        return torch.autocast(device, dtype=torch.bfloat16)
    if precision == "16-mixed":
        return torch.autocast(device, dtype=torch.float16)
    return contextlib.nullcontext()


def train_worker(spec: dict) -> dict:
    """Time ``spec['steps']`` training steps after ``spec['warmup']``; then the N-cut alone."""
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, Dataset

    device, b, crop = spec["device"], spec["batch"], spec["crop"]
    torch.manual_seed(0)
    torch.set_float32_matmul_precision("high")
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    frames = _frames(16, crop, crop)

    class Frames(Dataset):
        def __len__(self) -> int:
            return (spec["warmup"] + spec["steps"]) * b

        def __getitem__(self, i: int) -> dict:
            return {"image": frames[i % len(frames)]}

    class StepTimer(pl.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            _sync(device)
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            _sync(device)
            self.times.append(time.perf_counter() - self.t0)

    if spec.get("compile_backend"):  # dry runs: Dynamo traces, no code generation (seconds)
        original = torch.nn.Module.compile

        def compile_with_backend(self, *args, **kwargs):
            return original(self, backend=spec["compile_backend"])

        torch.nn.Module.compile = compile_with_backend
    mode = MODES[spec["mode"]]
    module = _module(spec["preset"], spec["classes"], mode["channels_last"], mode["compile"])
    timer = StepTimer()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=mode["precision"],
        max_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    loader = DataLoader(Frames(), batch_size=b, shuffle=False, num_workers=0, drop_last=True)
    trainer.fit(module, train_dataloaders=loader)
    step = statistics.median(timer.times[spec["warmup"] :])

    # The soft N-cut alone (forward + closed-form backward), on this batch's encoder output.
    image = frames[:b].repeat((b + 15) // 16, 1, 1, 1)[:b].to(module.device)
    with torch.no_grad(), _autocast(device, mode["precision"]):
        probs = module.net.encode(module.net.normalize(image))
    ncut_times = []
    for _ in range(5):
        p = probs.detach().clone().requires_grad_(True)
        _sync(device)
        t0 = time.perf_counter()
        with _autocast(device, mode["precision"]):
            loss, _ = module.step.objective(p, image * 255.0)
        loss.backward()
        _sync(device)
        ncut_times.append(time.perf_counter() - t0)
    return {
        "step_s": step,
        "images_per_s": b / step,
        "peak_bytes": _peak_bytes(device),
        "base_bytes": 0 if device == "cuda" else base_rss,
        "ncut_s": statistics.median(ncut_times),
        "first_step_s": timer.times[0],
    }


def infer_worker(spec: dict) -> dict:
    """Frames/s of 256x240 frames, batch 1: W-Net + argmax, and W-Net + dense CRF + argmax."""
    import numpy as np
    import torch

    from wnet_seg.postprocess.crf import crf_refine

    device = spec["device"]
    torch.set_float32_matmul_precision("high")
    module = _module(spec["preset"], spec["classes"], False, False).eval().to(device)
    frames = _frames(4, *INFER_HW)
    rgb = [(f.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for f in frames]

    def segment(i: int, crf: bool) -> np.ndarray:
        with torch.no_grad():
            probs = module(frames[i % 4][None].to(device))[0][0]
            if not crf:
                return probs.argmax(0).cpu().numpy()
            return crf_refine(probs.float().cpu().numpy(), rgb[i % 4]).argmax(0)

    out = {}
    for crf in (False, True):
        n = spec["frames"]
        for i in range(2):  # warm-up
            segment(i, crf)
        _sync(device)
        t0 = time.perf_counter()
        for i in range(n):
            segment(i, crf)
        _sync(device)
        out["crf_fps" if crf else "fps"] = n / (time.perf_counter() - t0)
    return out


def matmul_worker(spec: dict) -> dict:
    """This machine's dense matmul peak (best of several n x n products), in FLOP/s."""
    import torch

    device, n = spec["device"], spec["n"]
    torch.set_float32_matmul_precision("high")  # TF32 on GPUs, as training uses
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[spec["dtype"]]
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(spec["repeats"]):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(spec["inner"]):
            a @ b
        _sync(device)
        best = min(best, (time.perf_counter() - t0) / spec["inner"])
    return {"flops_per_s": 2 * n**3 / best}


WORKERS = {"train": train_worker, "infer": infer_worker, "matmul": matmul_worker}


# ---- driver -------------------------------------------------------------------------------------
def model_flops_per_image(preset: str, classes: int, crop: int) -> float:
    """Conv/matmul FLOPs of one alternating training step for one image (meta device, no compute).

    Forward FLOPs are counted by ``FlopCounterMode``; the backward pass is taken as 2x its forward
    (the usual convention), because ``FlopCounterMode`` in torch 2.x counts a grouped convolution's
    backward as if it were dense (a depthwise 3x3 backward comes out ~65x too large here).
    Step = encoder forward + backward (N-cut) + W-Net forward + backward (reconstruction).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from wnet_seg.config import ModelConf
    from wnet_seg.models.wnet import WNet

    net = WNet(ModelConf(preset=preset, num_classes=classes).to_wnet_config()).to("meta")
    x = torch.zeros(1, 3, crop, crop, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as enc:
        probs = net.encode(x)
    with torch.no_grad(), FlopCounterMode(display=False) as dec:
        net.decode(probs)
    f_enc, f_dec = enc.get_total_flops(), dec.get_total_flops()
    return 3 * f_enc + 3 * (f_enc + f_dec)


def run_worker(kind: str, spec: dict, timeout: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, json.dumps(spec)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout > {timeout}s"}
    if out.returncode != 0:
        lines = (out.stderr or "").strip().splitlines() or ["killed (out of memory?)"]
        return {"error": f"exit {out.returncode}: {lines[-1][:120]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_line(device: str, threads: int | None) -> str:
    import torch

    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        mem = torch.cuda.get_device_properties(0).total_memory / 2**30
        return f"{name} ({mem:.0f} GiB), torch {torch.__version__}, CUDA {torch.version.cuda}"
    return (
        f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{threads or torch.get_num_threads()} thread(s) per measurement"
    )


def fmt(value, spec: str = ".1f") -> str:
    return format(value, spec) if isinstance(value, int | float) else str(value)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if any")
    p.add_argument("--preset", default=None, help="model preset (cpu: small, cuda: paper)")
    p.add_argument("--classes", type=int, default=None, help="K (small: 12, paper: 16)")
    p.add_argument("--crop", type=int, default=None, help="training crop (cpu: 128, cuda: 224)")
    p.add_argument("--batch-sizes", default=None, help="comma list (cpu: 2,4,8; cuda: 8,16)")
    p.add_argument("--modes", default=None, help="comma list of fp32,bf16,fast (cuda: fp32,fast)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (cpu: 5, cuda: 20)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (cpu: 2, cuda: 5)")
    p.add_argument("--frames", type=int, default=None, help="inference frames (cpu: 8, cuda: 50)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per measurement (cpu: 1, since a shared box oversubscribed by 2+ threads "
        "runs 10-100x slower; cuda: PyTorch's default)",
    )
    p.add_argument("--timeout", type=int, default=900, help="seconds per measurement")
    p.add_argument("--dry-run", action="store_true", help="tiny shapes: a plumbing check")
    p.add_argument("--skip-inference", action="store_true", help="training rows only")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        kind, spec = args.worker
        spec = json.loads(spec)
        if spec.get("threads"):
            import torch

            torch.set_num_threads(spec["threads"])
        print(json.dumps(WORKERS[kind](spec)))
        return {}

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible to PyTorch")
    gpu = device == "cuda"
    preset = args.preset or ("paper" if gpu else "small")
    classes = args.classes or (16 if preset == "paper" else 12)
    crop = args.crop or (224 if gpu else 128)
    sizes = [int(v) for v in (args.batch_sizes or ("8,16" if gpu else "2,4,8")).split(",")]
    modes = (args.modes or ("fp32,fast" if gpu else "fp32")).split(",")
    steps = args.steps or (20 if gpu else 5)
    warmup = args.warmup or (5 if gpu else 2)
    n_frames = args.frames or (50 if gpu else 8)
    threads = args.threads or (None if gpu else 1)
    matmul = dict(device=device, n=8192 if gpu else 2048, repeats=5, inner=10 if gpu else 2)
    matmul["threads"] = threads
    compile_backend = None
    if args.dry_run:
        preset, classes, crop, sizes, steps, warmup, n_frames = "small", 4, 32, [2], 2, 1, 2
        modes = (args.modes or "fp32,fast").split(",")
        compile_backend = "eager"  # exercise the compile path without minutes of codegen
        matmul.update(n=256, repeats=2, inner=1)
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"--modes: unknown {sorted(unknown)}; choose from {sorted(MODES)}")

    load = os.getloadavg()
    started = time.time()
    flops = model_flops_per_image(preset, classes, crop)
    peaks = {
        dt: run_worker("matmul", {**matmul, "dtype": dt}, args.timeout).get("flops_per_s")
        for dt in ({"bf16", "fp32"} if gpu else {"fp32"})
    }
    rows: list[dict] = []
    for b in sizes:
        for mode in modes:
            spec = dict(device=device, preset=preset, classes=classes, crop=crop, batch=b)
            spec.update(mode=mode, steps=steps, warmup=warmup, threads=threads)
            spec["compile_backend"] = compile_backend
            r = run_worker("train", spec, args.timeout)
            peak = peaks.get("fp32" if MODES[mode]["precision"] == "32-true" else "bf16")
            if "images_per_s" in r:
                r["tflops"] = r["images_per_s"] * flops / 1e12
                r["mfu"] = r["images_per_s"] * flops / peak if peak else None
                r["ncut_share"] = r["ncut_s"] / r["step_s"]
            rows.append({"batch": b, "mode": mode, **r})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    # Measure the matmul peak again at the end and keep the best: on a shared machine a burst of
    # load during one measurement would otherwise inflate every MFU.
    for dt in list(peaks):
        again = run_worker("matmul", {**matmul, "dtype": dt}, args.timeout).get("flops_per_s")
        peaks[dt] = max(v for v in (peaks[dt], again, 0.0) if v is not None) or None
    for r in rows:
        peak = peaks.get("fp32" if MODES[r["mode"]]["precision"] == "32-true" else "bf16")
        if "images_per_s" in r:
            r["mfu"] = r["images_per_s"] * flops / peak if peak else None
    infer = {
        name: run_worker(
            "infer",
            dict(
                device=device,
                preset=name,
                classes=16 if name == "paper" else 12,
                frames=n_frames,
                threads=threads,
            ),
            args.timeout,
        )
        for name in (
            [] if args.skip_inference else ["small"] if args.dry_run else ["small", "paper"]
        )
    }
    result = {
        "machine": machine_line(device, threads),
        "device": device,
        "load_average_before": load,
        "load_average_after": os.getloadavg(),
        "wall_s": time.time() - started,
        "config": dict(
            preset=preset,
            classes=classes,
            crop=crop,
            steps=steps,
            warmup=warmup,
            compile_backend=compile_backend or "inductor (default)",
        ),
        "model_gflops_per_image": flops / 1e9,
        "matmul_peak_tflops": {k: (v or 0) / 1e12 for k, v in peaks.items()},
        "train": rows,
        "inference": infer,
    }
    print(markdown(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


def _mem(r: dict) -> str:
    peak = r["peak_bytes"] / 2**20
    if not r.get("base_bytes"):
        return f"{peak:.0f}"
    return f"{peak:.0f} (+{(r['peak_bytes'] - r['base_bytes']) / 2**20:.0f})"


def markdown(res: dict) -> str:
    c = res["config"]
    lines = [
        f"Machine: {res['machine']}; load average {res['load_average_before'][0]:.1f} before, "
        f"{res['load_average_after'][0]:.1f} after; {res['wall_s']:.0f} s in all.",
        f"Training: preset `{c['preset']}`, K={c['classes']}, {c['crop']}x{c['crop']} crops, "
        f"alternating schedule; median of {c['steps']} steps after {c['warmup']} warm-up steps; "
        f"compile backend {c['compile_backend']}. "
        f"Model FLOPs per image per step: {res['model_gflops_per_image']:.2f} GFLOP. "
        "Matmul peak measured here: "
        + ", ".join(f"{k} {v:.2f} TFLOP/s" for k, v in sorted(res["matmul_peak_tflops"].items()))
        + ".",
        "",
        "Peak memory: "
        + (
            "torch.cuda.max_memory_allocated."
            if res["device"] == "cuda"
            else "process peak RSS, and in brackets its growth over the RSS before training "
            "(Python + PyTorch + Lightning + the model)."
        ),
        "",
        "| batch | mode | images/s | step ms | peak memory MiB | achieved TFLOP/s | MFU "
        "| soft N-cut share of step | first step s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["train"]:
        if "error" in r:
            lines.append(f"| {r['batch']} | {MODE_LABEL[r['mode']]} | {r['error']} |||||||")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") else "-"
        lines.append(
            f"| {r['batch']} | {MODE_LABEL[r['mode']]} | {r['images_per_s']:.2f} | "
            f"{1000 * r['step_s']:.0f} | {_mem(r)} | {r['tflops']:.3f} | "
            f"{mfu} | {100 * r['ncut_share']:.1f}% | {r['first_step_s']:.1f} |"
        )
    by = {(r["batch"], r["mode"]): r for r in res["train"] if "images_per_s" in r}
    for b in sorted({r["batch"] for r in res["train"]}):
        if (b, "fp32") in by and (b, "fast") in by:
            gain = by[(b, "fast")]["images_per_s"] / by[(b, "fp32")]["images_per_s"]
            lines.append(f"\nBatch {b}: bf16 + channels_last + compile = {gain:.2f}x fp32 eager.")
    if not res["inference"]:
        return "\n".join(lines)
    lines += [
        "",
        f"Inference, {INFER_HW[1]}x{INFER_HW[0]} frames, batch 1:",
        "",
        "| preset | frames/s (W-Net + argmax) | frames/s (W-Net + dense CRF) |",
        "|---|---|---|",
    ]
    for name, r in res["inference"].items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | |")
        else:
            lines.append(f"| {name} | {r['fps']:.2f} | {r['crf_fps']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
