"""Shared fixtures: compose the real Hydra config with small, fast overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

REPO = Path(__file__).resolve().parents[1]

# Two cores are shared by everything in CI; one intra-op thread per test process keeps runs stable.
torch.set_num_threads(1)
os.environ.setdefault("WNET_SEG_ROOT", str(REPO))


def compose_train(overrides: list[str], output_dir: Path | None = None):
    """The real ``conf/train.yaml`` composed with ``overrides`` (and a run folder under tmp)."""
    import wnet_seg.train  # noqa: F401  (registers the schema and resolvers)

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="wnet_seg.conf", version_base="1.3"):
        extra = (
            [f"paths.output_dir={output_dir}", f"paths.log_dir={output_dir}/logs"]
            if output_dir
            else []
        )
        return compose(config_name="train", overrides=[*overrides, *extra])


TINY = [
    "data.length=4",
    "data.batch_size=2",
    "data.crop_size=32",
    "model.num_classes=4",
    "model.base_width=4",
    "model.depth=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "num_output_pngs=1",
]


@pytest.fixture
def tiny_overrides() -> list[str]:
    return list(TINY)
