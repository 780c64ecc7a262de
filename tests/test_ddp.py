"""Real multi-process DDP (gloo, 2 CPU processes) through the training CLI in a subprocess.

Lightning re-launches the command once per extra rank; the run must still make one run folder,
write its files from rank 0 only, save a loadable checkpoint, shard the data between the ranks
(each with half the global batch) and log validation metrics reduced over both ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wnet_seg.checkpoint import load_wnet, read_checkpoint

from .conftest import REPO, TINY

# The shared tiny model and output settings; each test sets its own data size and batch.
TINY_CLI = [o for o in TINY if not o.startswith(("data.length=", "data.batch_size="))]
RECORD = [
    "+callbacks.record._target_=wnet_seg.distributed.RecordSamples",
    "+callbacks.record.dirpath=${paths.output_dir}/samples",
]


def make_screenshots(root: Path, n: int, size: int = 40, seed: int = 0) -> Path:
    """``n`` blocky 'pixel-art' frames with class-id masks under ``root/images`` + ``root/masks``."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    palette = rng.integers(0, 256, size=(4, 3))
    for i in range(n):
        ids = rng.integers(0, 4, size=(size // 8, size // 8)).repeat(8, 0).repeat(8, 1)
        rgb = palette[ids].astype(np.uint8)
        Image.fromarray(rgb).save(root / "images" / f"f{i:02d}.png")
        Image.fromarray(ids.astype(np.uint8), mode="L").save(root / "masks" / f"f{i:02d}.png")
    return root


def run_cli(args: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, WNET_SEG_ROOT=str(REPO), PYTHONUNBUFFERED="1", HYDRA_FULL_ERROR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "wnet_seg.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


def test_ddp_cpu_two_processes_via_cli(tmp_path):
    data = make_screenshots(tmp_path / "shots", n=10)
    logs = tmp_path / "logs"
    # 10 frames, val_fraction 0.2 -> 8 train / 2 val; global batch 4 -> 2 per rank, 2 batches each.
    run_cli(
        [
            "trainer=ddp_cpu",
            "data=screenshots",
            f"data.path={data}",
            "data.num_workers=0",
            "data.val_fraction=0.2",
            "data.batch_size=4",
            "trainer.log_every_n_steps=1",
            "trainer.num_sanity_val_steps=0",
            f"paths.log_dir={logs}",
            *TINY_CLI,
            *RECORD,
        ],
        cwd=tmp_path,
    )
    runs = list((logs / "train" / "runs").iterdir())
    assert len(runs) == 1, f"one run folder per run, not per rank: {runs}"
    run = runs[0]
    # Rank 0 wrote the config, the panels and the only TensorBoard event file; rank 1 only its log.
    assert (run / "config.yaml").is_file() and (run / ".hydra" / "config.yaml").is_file()
    pngs = sorted(p.name for p in (run / "segmentations").iterdir())
    assert len(pngs) == 2 and pngs[0].endswith("_labels.png") and pngs[1].endswith("_panel.png")
    events = list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert len(events) == 1, events
    assert (run / "train_ddp_process_1.log").is_file()
    assert "run folder" not in (run / "train_ddp_process_1.log").read_text()

    ckpt = run / "checkpoints" / "last.ckpt"
    assert read_checkpoint(ckpt)["global_step"] == 4  # 2 batches x 2 alternating steps
    loaded = load_wnet(ckpt)
    assert loaded.model.num_classes == 4

    rec = [json.loads((run / "samples" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in rec] == [2, 2]
    assert all(bs == 2 for r in rec for bs in r["batch_sizes"]), "global batch 4 / 2 ranks"
    seen = [{i for batch in r["train_batches"] for i in batch} for r in rec]
    assert len(seen[0]) == len(seen[1]) == 4
    assert not seen[0] & seen[1], f"ranks trained on the same samples: {seen}"
    assert seen[0] | seen[1] == set(range(8))
    sums = [{s for batch in r["train_image_sums"] for s in batch} for r in rec]
    assert not sums[0] & sums[1], "ranks drew identical crops"
    # Each rank validated a different frame, yet both hold the same (reduced) metrics ...
    assert len(rec[0]["val_names"]) == len(rec[1]["val_names"]) == 1
    assert rec[0]["val_names"] != rec[1]["val_names"]
    for key in ("val/loss", "val/ncut", "val/miou", "val/miou_dataset", "val/miou_tiles"):
        assert rec[0]["metrics"][key] == pytest.approx(rec[1]["metrics"][key], rel=1e-6), key

    # ... equal to the metric over both validation frames, recomputed from the checkpoint.
    from wnet_seg.data.datasets import ImageDataset
    from wnet_seg.lightning_module import WNetModule
    from wnet_seg.metrics import SegmentationMeter

    module = WNetModule.from_checkpoint(str(ckpt)).eval()
    names = [Path(r["val_names"][0]) for r in rec]
    val = ImageDataset(names, [data / "masks" / n.name for n in names], train=False)
    meter = SegmentationMeter()
    per_image = []
    with torch.no_grad():
        for i in range(len(val)):
            sample = val[i]
            probs, _ = module(sample["image"][None])
            pred = probs[0].argmax(0).numpy()
            per_image.append(meter.update(pred, sample["mask"].numpy().astype(np.uint8))["miou"])
    expected = meter.compute()["miou"]
    assert rec[0]["metrics"]["val/miou"] == pytest.approx(expected, abs=1e-5)
    assert expected == pytest.approx(float(np.mean(per_image)))


def test_ranks_get_their_own_random_stream():
    """Same seed on every rank (seed_everything) must not mean the same crops on every rank."""
    from types import SimpleNamespace

    from wnet_seg.config import DataConf
    from wnet_seg.data.datamodule import WNetDataModule

    draws = []
    for rank in (0, 1, 0):
        torch.manual_seed(42)  # what seed_everything does in every process
        dm = WNetDataModule(DataConf(), seed=42)
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        dm._decorrelate_ranks()
        draws.append(torch.rand(4))
    assert not torch.equal(draws[0], draws[1])
    assert torch.equal(draws[0], draws[2])  # reproducible per rank
