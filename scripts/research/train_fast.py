"""Fast research harness: train a small W-Net on cached Crafter frames, score it against ground truth.

Plain PyTorch (no Lightning) so one idea costs a few CPU minutes. Frames come from
``scripts/research/make_cache.py``. Masks are used ONLY for evaluation on the validation cache.

Example:
    python scripts/research/train_fast.py --tag base --steps 600 --global-weight 1
Writes ``data/research/runs/<tag>.json`` (config, val mIoU curve, time) and prints a summary line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from wnet_seg.losses.features import interior_weights, texture_features
from wnet_seg.losses.graph_ncut import batch_local_ncut, colour_rarity_weights, sampled_dense_ncut
from wnet_seg.losses.reconstruction import reconstruction_loss
from wnet_seg.losses.soft_ncut import soft_ncut_loss
from wnet_seg.metrics import SegmentationMeter
from wnet_seg.models.wnet import WNet, preset

MEAN, STD = 0.5, 0.25


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", required=True)
    ap.add_argument("--train", default="data/research/crafter_train.npz")
    ap.add_argument("--val", default="data/research/crafter_val.npz")
    ap.add_argument("--val-n", type=int, default=32)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--schedule", choices=["joint", "alternate"], default="joint")
    ap.add_argument("--rec-weight", type=float, default=1.0)
    # local term
    ap.add_argument("--local-weight", type=float, default=1.0)
    ap.add_argument("--local-feats", choices=["rgb", "intensity", "tex", "pmi"], default="rgb")
    ap.add_argument("--batch-graph", type=int, default=1)
    ap.add_argument("--radius", type=float, default=5.0)
    ap.add_argument("--sigma-i", type=float, default=10.0)
    ap.add_argument("--sigma-x", type=float, default=4.0)
    # texture features (for local 'tex' and the global term)
    ap.add_argument("--scales", default="16")
    ap.add_argument("--rgb-w", type=float, default=0.0)
    ap.add_argument("--mean-w", type=float, default=1.0)
    ap.add_argument("--std-w", type=float, default=1.0)
    ap.add_argument("--window", default="centred")
    ap.add_argument("--local-rgb-w", type=float, default=0.0)
    # global term
    ap.add_argument("--global-weight", type=float, default=0.0)
    ap.add_argument("--global-samples", type=int, default=256)
    ap.add_argument("--global-sigma", type=float, default=10.0)
    ap.add_argument("--rarity", type=float, default=0.0)
    ap.add_argument("--gate", type=float, default=0.0)
    ap.add_argument("--gate-floor", type=float, default=0.1)
    ap.add_argument("--ent-weight", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_args()


def to_input(x255: torch.Tensor) -> torch.Tensor:
    return (x255 / 255.0 - MEAN) / STD


@torch.no_grad()
def evaluate(net: WNet, images: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    net.eval()
    meter = SegmentationMeter()
    used = set()
    for i in range(0, len(images), 8):
        x = torch.from_numpy(images[i : i + 8]).permute(0, 3, 1, 2).float()
        pred = net.encode(to_input(x)).argmax(1).numpy()
        for p, m in zip(pred, masks[i : i + 8], strict=True):
            meter.update(p, m)
            used.update(np.unique(p).tolist())
    net.train()
    r = meter.compute()
    return {"miou": r["miou"], "miou_dataset": r["miou_dataset"], "classes_used": len(used)}


def main() -> None:
    a = parse()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    tr = np.load(a.train)["images"]
    va = np.load(a.val)
    vi, vm = va["images"][: a.val_n], va["masks"][: a.val_n]
    cfg = preset("small", num_classes=a.k, base_width=a.width, depth=a.depth, dropout=a.dropout)
    net = WNet(cfg)
    scales = tuple(int(s) for s in a.scales.split(",") if s)
    tex_kw = dict(
        scales=scales, rgb_weight=a.rgb_w, mean_weight=a.mean_w, std_weight=a.std_w, window=a.window
    )
    if a.schedule == "joint":
        opts = [torch.optim.Adam(net.parameters(), lr=a.lr)]
    else:
        opts = [
            torch.optim.Adam(net.encoder.parameters(), lr=a.lr),
            torch.optim.Adam(net.parameters(), lr=a.lr),
        ]
    log = {"args": vars(a), "evals": []}
    t0 = time.time()
    h = w = a.crop
    for step in range(1, a.steps + 1):
        ids = rng.integers(0, len(tr), a.batch)
        ys = rng.integers(0, tr.shape[1] - h + 1, a.batch)
        xs = rng.integers(0, tr.shape[2] - w + 1, a.batch)
        crop = np.stack([tr[i, y : y + h, x : x + w] for i, y, x in zip(ids, ys, xs, strict=True)])
        x255 = torch.from_numpy(crop).permute(0, 3, 1, 2).float()
        xin = to_input(x255)
        tex = (
            texture_features(x255, **tex_kw)
            if (a.global_weight or a.local_feats == "tex")
            else None
        )
        lf = a.local_feats
        if a.local_feats == "tex":
            lf = texture_features(x255, **{**tex_kw, "rgb_weight": a.local_rgb_w})

        def sample_weights(img):
            wts = colour_rarity_weights(img, a.rarity) if a.rarity else None
            if a.gate:
                g = a.gate_floor + (1 - a.gate_floor) * interior_weights(img, scales[0], a.gate)
                wts = g if wts is None else wts * g
            return wts

        def ncut_terms(probs):
            terms = {}
            if a.local_weight:
                if a.batch_graph:
                    feats = lf if isinstance(lf, torch.Tensor) else None
                    if feats is None:
                        from wnet_seg.losses.soft_ncut import image_features

                        feats = image_features(x255, "rgb" if lf == "pmi" else lf)
                    pw = None
                    if a.local_feats == "pmi":
                        from wnet_seg.losses.pmi import PMIAffinity

                        feats, pw = x255, PMIAffinity(x255, a.radius)
                    terms["local"] = batch_local_ncut(
                        probs,
                        feats,
                        radius=a.radius,
                        sigma_i=a.sigma_i,
                        sigma_x=a.sigma_x,
                        pair_weight=pw,
                    )
                else:
                    terms["local"] = soft_ncut_loss(
                        probs,
                        x255,
                        radius=a.radius,
                        sigma_i=a.sigma_i,
                        sigma_x=a.sigma_x,
                        features=lf,
                    )
            if a.global_weight:
                terms["global"] = sampled_dense_ncut(
                    probs,
                    tex,
                    samples=a.global_samples,
                    sigma=a.global_sigma,
                    weights=sample_weights(x255),
                )
            if a.ent_weight:
                terms["ent"] = -(probs * probs.clamp_min(1e-8).log()).sum(1).mean()
            return terms

        if a.schedule == "joint":
            probs, recon = net(xin)
            terms = ncut_terms(probs)
            rec = reconstruction_loss(recon, xin)
            loss = (
                a.local_weight * terms.get("local", 0)
                + a.global_weight * terms.get("global", 0)
                + a.ent_weight * terms.get("ent", 0)
            )
            loss = loss + a.rec_weight * rec
            opts[0].zero_grad()
            loss.backward()
            opts[0].step()
        else:
            probs = net.encode(xin)
            terms = ncut_terms(probs)
            loss = (
                a.local_weight * terms.get("local", 0)
                + a.global_weight * terms.get("global", 0)
                + a.ent_weight * terms.get("ent", 0)
            )
            opts[0].zero_grad()
            loss.backward()
            opts[0].step()
            probs, recon = net(xin)
            rec = reconstruction_loss(recon, xin)
            opts[1].zero_grad()
            (a.rec_weight * rec).backward()
            opts[1].step()
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss at step {step}")
        if step % 50 == 0:
            parts = " ".join(f"{k}={v.item():.3f}" for k, v in terms.items())
            print(
                f"[{a.tag}] step {step} {parts} rec={float(rec):.4f} t={time.time() - t0:.0f}s",
                flush=True,
            )
        if step % a.eval_every == 0 or step == a.steps:
            r = evaluate(net, vi, vm)
            r.update(step=step, time_s=round(time.time() - t0, 1))
            log["evals"].append(r)
            print(f"[{a.tag}] EVAL {r}", flush=True)
    out = Path("data/research/runs")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{a.tag}.json").write_text(json.dumps(log, indent=1))
    torch.save(net.state_dict(), out / f"{a.tag}.pt")
    best = max(log["evals"], key=lambda e: e["miou"])
    print(
        f"[{a.tag}] DONE best val miou {best['miou']:.3f} (ds {best['miou_dataset']:.3f}) "
        f"@ {best['step']}; final {log['evals'][-1]}"
    )


if __name__ == "__main__":
    main()
