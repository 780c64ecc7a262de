"""`make demo`: what the tool is for, in a few minutes on a CPU.

1. **Segment**: the embedded labelled frames of three games (Crafter, Craftax, MiniGrid; MIT art,
   ``wnet_seg/assets/demo``) with the shipped checkpoint, scored against their exact labels next
   to the no-learning tile lookup and the best classical segmenter; a table per game.
2. **Train**: a short real run of the broad recipe (``experiment=broad``: the shipped objective on
   several games, balanced, augmented) on frames it captures itself (Crafter and MiniGrid training worlds), validated on the embedded frames; the
   validation mIoU is printed as it climbs.
3. **Report**: ``report.html`` with every frame, its truth and each method's output.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from wnet_seg.assets import asset
from wnet_seg.data.degrade import parse_degradation
from wnet_seg.evaluate import Scorer, dataset_tile, labelled_pairs, report_section
from wnet_seg.hostinfo import machine_description
from wnet_seg.inference import Segmenter, segment_options
from wnet_seg.logs import quiet_lightning
from wnet_seg.report import write_report

GAMES = ("crafter", "craftax", "minigrid")
CLASSICAL = ("kmeans_rgb", "felzenszwalb")
TRAIN_STEPS = 150


def segment_demo_frames(out: Path) -> list:
    """Part 1: score every method on each game's embedded frames; returns report sections."""
    clean = parse_degradation("clean")
    sections = []
    options = segment_options()
    print(f"{'game':<10} {'method':<30} {'mIoU per image':>15} {'mIoU dataset':>13}")
    for game in GAMES:
        root = asset(f"demo/{game}")
        scorer = Scorer(
            options,
            segmenters={"": Segmenter.from_checkpoint(options=options)},
            baselines=list(CLASSICAL),
            baseline_tiles=False,
            identity=["tile_identity", "tile_identity_oracle"],
            oracle_tile=dataset_tile(root),
        )
        pairs = labelled_pairs(str(root), None, None)
        frames, _ = scorer.score_pairs(pairs, clean, report_frames=len(pairs))
        results = scorer.scores.results()
        best = max(CLASSICAL, key=lambda b: results[b]["miou"])
        rows = [
            ("W-Net (default output)", "wnet+tiles"),
            ("tile identity", "tile_identity"),
            ("tile identity (oracle)", "tile_identity_oracle"),
            (f"best classical: {best}", best),
        ]
        for label, key in rows:
            r = results[key]
            print(f"{game:<10} {label:<30} {r['miou']:>15.3f} {r['miou_dataset']:>13.3f}")
        report = {
            "results": results,
            "frames": frames,
            "images": len(frames),
            "checkpoint": str(scorer.segmenters[""].source),
            "legend": scorer.segmenters[""].legend(),
        }
        sections.append(report_section(report, f"{game} ({len(frames)} embedded frames)"))
    return sections


def train_demo(out: Path, steps: int) -> dict:
    """Part 2: capture training frames, then a short run of the broad recipe."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from wnet_seg.capture.crafter import capture as capture_crafter
    from wnet_seg.train import train

    data = out / "data"
    capture_crafter(data / "crafter", 64, seed=0, progress=False)
    folders = [str(data / "crafter")]
    try:
        from wnet_seg.capture.minigrid import capture as capture_minigrid

        capture_minigrid(data / "minigrid", 64, seed=0, size=256, progress=False)
        folders.append(str(data / "minigrid"))
    except ImportError:  # the minigrid extra is not installed: Crafter frames only
        pass
    overrides = [
        "experiment=broad",
        f"data.path={folders[0]}",
        f"data.extra_paths=[{','.join(folders[1:])}]",
        f"data.val_path={asset('demo/crafter')}",
        f"data.extra_val_paths=[{asset('demo/minigrid')}]",
        "data.max_val_images=8",
        f"trainer.max_steps={steps}",
        f"trainer.val_check_interval={steps // 3}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.num_sanity_val_steps=0",
        "trainer.log_every_n_steps=10",
        f"paths.output_dir={(out / 'run').resolve()}",
        "num_output_pngs=2",
        "+callbacks.print_validation._target_=wnet_seg.callbacks.PrintValidation",
    ]
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="wnet_seg.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return train(cfg)


def main(argv: list[str] | None = None) -> dict:
    args = list(sys.argv[1:] if argv is None else argv)
    steps = int(args[0]) if args else TRAIN_STEPS
    quiet_lightning()
    out = Path("logs/demo") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    print("=== 1. segment the embedded frames (shipped checkpoint) ===")
    sections = segment_demo_frames(out)
    t1 = time.time()
    print(f"({t1 - t0:.0f} s)\n\n=== 2. train the broad recipe for {steps} steps ===")
    result = train_demo(out, steps)
    t2 = time.time()
    print(f"({t2 - t1:.0f} s; checkpoint {result.get('last_ckpt')})")
    print(f"TensorBoard: tensorboard --logdir {result['tensorboard_dir']}")
    print("\n=== 3. report ===")
    page = write_report(
        out, "wnet-seg demo", sections, subtitle="embedded frames, shipped checkpoint",
        machine=machine_description(),
    )  # fmt: skip
    print(f"report: {page.resolve()}")
    print(f"total {time.time() - t0:.0f} s on {machine_description()}")
    return {"report": page, "train": result, "sections": sections}


if __name__ == "__main__":
    main()
