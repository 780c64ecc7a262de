"""Defaults work from any folder, also for the built wheel (no source tree): packaged assets."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from .conftest import REPO

SCRIPT = """
import wnet_seg, sys
from pathlib import Path
print("module", Path(wnet_seg.__file__).parent)
from wnet_seg.inference import Segmenter
print("checkpoint", Segmenter.from_checkpoint().source)
from wnet_seg.demo import main
"""


def test_wheel_carries_the_demo_frames_and_checkpoint_and_runs_outside_the_repo(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         str(REPO), "-w", str(tmp_path / "whl")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "whl").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "wnet_seg/assets/demo/crafter.png" in names
    assert any(n.startswith("wnet_seg/assets/checkpoints/") for n in names)
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "OMP_NUM_THREADS": "1"}
    env.pop("WNET_SEG_ROOT", None)
    probe = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=work, env=env, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert f"module {tmp_path / 'site'}" in probe.stdout  # the wheel, not the source tree
    assert str(tmp_path / "site") in probe.stdout.split("checkpoint")[1]
    run = subprocess.run(
        [sys.executable, "-m", "wnet_seg.train", "experiment=overfit_demo", "trainer.max_steps=2",
         "data.length=4", "num_output_pngs=0", "trainer.enable_progress_bar=false"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert (work / "logs" / "overfit_demo").is_dir()
