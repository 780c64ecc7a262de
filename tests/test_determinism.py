"""Same seed and config on CPU -> the same losses, step for step, and the same weights.

Two runs of :func:`wnet_seg.train.train` in this process (each re-seeds with ``seed``), compared on
their TensorBoard scalars; a third run with another seed must differ, so the comparison is not
vacuous.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from wnet_seg.checkpoint import read_checkpoint
from wnet_seg.train import train

from .conftest import TINY, compose_train

TAGS = ("train/ncut", "train/recon", "train/loss")


def _run(out: Path, seed: int) -> tuple[dict[str, list[tuple[int, float]]], dict]:
    cfg = compose_train(
        [
            *TINY,
            f"seed={seed}",
            "trainer.max_steps=8",
            "trainer.max_epochs=4",
            "trainer.log_every_n_steps=1",
            "trainer.num_sanity_val_steps=0",
            "num_output_pngs=0",
        ],
        out,
    )
    result = train(cfg)
    (events,) = {p.parent for p in (out / "tensorboard").rglob("events.out.tfevents.*")}
    acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
    acc.Reload()
    scalars = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in TAGS}
    return scalars, read_checkpoint(result["last_ckpt"])["state_dict"]


def test_same_seed_same_losses_and_weights_other_seed_differs(tmp_path):
    a, wa = _run(tmp_path / "a", seed=7)
    b, wb = _run(tmp_path / "b", seed=7)
    c, wc = _run(tmp_path / "c", seed=8)
    assert len(a["train/ncut"]) == 4  # 4 batches (8 alternating optimizer steps), all logged
    for tag in TAGS:
        assert a[tag] == b[tag], tag  # bit-identical floats, same steps
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["train/ncut"] != c["train/ncut"]
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
