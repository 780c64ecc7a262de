"""`make demo`: train the W-Net on the embedded Crafter frame on a CPU and report the result.

Runs the real training app with ``experiment=overfit_demo`` (extra Hydra overrides may follow on the
command line), then prints the final losses, the segmentation's mIoU against the frame's exact
ground-truth mask, and where the panels, checkpoints and TensorBoard logs are.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from hydra import compose, initialize_config_module

from wnet_seg.data.io import load_mask
from wnet_seg.metrics import hungarian_miou


def main(argv: list[str] | None = None) -> dict:
    from wnet_seg import train as train_mod

    overrides = list(sys.argv[1:] if argv is None else argv)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = Path("logs/overfit_demo/runs") / f"{stamp}_demo"
    t0 = time.time()
    with initialize_config_module(config_module="wnet_seg.conf", version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=["experiment=overfit_demo", f"paths.output_dir={out.resolve()}", *overrides],
        )
    result = train_mod.train(cfg)
    minutes = (time.time() - t0) / 60
    m = result["metrics"]
    labels = sorted(Path(result["output_dir"], "segmentations").glob("*_labels.png"))
    miou = None
    if labels and cfg.data.mask_path:
        gt = load_mask(cfg.data.mask_path)
        miou = hungarian_miou(load_mask(labels[0]), gt)
    print("\n=== wnet-seg demo: overfit the embedded Crafter frame ===")
    print(f"training time        : {minutes:.1f} min on this machine's CPU")
    for key in ("train/ncut", "train/recon", "val/ncut", "val/recon"):
        if key in m:
            print(f"{key:<21}: {m[key]:.4f}")
    if miou is not None:
        print(f"mIoU vs ground truth : {miou:.3f} (per-image Hungarian, {cfg.data.mask_path})")
    if result.get("pngs"):
        print(
            f"segmentation panel   : {result['pngs'][0]}  (image | reconstruction | segmentation)"
        )
    print(f"checkpoint           : {result.get('last_ckpt')}")
    print(f"TensorBoard          : tensorboard --logdir {result['tensorboard_dir']}")
    result["miou"] = miou
    return result


if __name__ == "__main__":
    main()
