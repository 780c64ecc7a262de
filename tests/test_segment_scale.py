"""Segmenting a folder at scale: identical outputs on 1 or 2 processes, resumable, bad files listed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import REPO
from .test_segment_evaluate import make_checkpoint
from .test_tiles import tile_world

SHIPPED = REPO / "checkpoints" / "wnet_multigame.ckpt"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """The shipped checkpoint (it makes tile mixtures on these frames), else a tiny one."""
    return (
        SHIPPED if SHIPPED.is_file() else make_checkpoint(tmp_path_factory.mktemp("c") / "k.ckpt")
    )


def _folder(root: Path, n: int, corrupt: tuple[int, ...] = ()) -> Path:
    (root / "sub").mkdir(parents=True)
    for i in range(n):
        frame, _ = tile_world(4, 4, size=16, n_textures=6, seed=i)
        path = root / ("sub" if i % 3 == 0 else ".") / f"f{i:03d}.png"
        if i in corrupt:
            path.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        else:
            Image.fromarray(frame).save(path)
    return root


def _segment(src: Path, out: Path, ckpt: Path, *extra: str, wait: bool = True):
    cmd = [sys.executable, "-m", "wnet_seg.segment", f"input={src}", f"output={out}",
           f"ckpt={ckpt}", "progress=false", *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _outputs(out: Path) -> dict[str, bytes]:
    files = {}
    for sub in ("masks", "overlays"):
        for p in sorted((out / sub).rglob("*.png")):
            files[p.relative_to(out).as_posix()] = p.read_bytes()
    for name in ("labels.json", "frames.jsonl", "failures.jsonl"):
        files[name] = (out / name).read_bytes()
    return files


def test_two_gloo_processes_write_byte_identical_outputs(tmp_path, ckpt):
    src = _folder(tmp_path / "in", 12, corrupt=(5,))
    one = _segment(src, tmp_path / "one", ckpt, "batch_size=2")
    two = _segment(src, tmp_path / "two", ckpt, "batch_size=2", "trainer=ddp_cpu")
    assert one.returncode == two.returncode == 1, (one.stderr[-1500:], two.stderr[-1500:])
    a, b = _outputs(tmp_path / "one"), _outputs(tmp_path / "two")
    assert len([k for k in a if k.startswith("masks/")]) == 11
    assert a == b  # masks, overlays, ids, records and failures
    legend = json.loads(a["labels.json"])
    if ckpt == SHIPPED:
        assert len(legend["tile_signatures"]) >= 5, "the folder should produce tile mixtures"
    failures = [json.loads(x) for x in a["failures.jsonl"].splitlines()]
    assert [f["file"] for f in failures] == ["f005.png"] and "f005.png" in failures[0]["reason"]
    assert "FAILED f005.png" in one.stderr


def test_killed_run_resumes_and_ends_with_the_same_outputs(tmp_path, ckpt):
    src = _folder(tmp_path / "in", 24)
    reference = _segment(src, tmp_path / "ref", ckpt, "batch_size=1")
    assert reference.returncode == 0, reference.stderr[-1500:]
    out = tmp_path / "killed"
    proc = _segment(src, out, ckpt, "batch_size=1", wait=False)
    deadline = time.time() + 240

    def complete() -> list[Path]:  # a kill can leave a half-written ``.<name>.<tmp>.npz``
        return [p for p in (out / ".work").rglob("*.npz") if not p.name.startswith(".")]

    while time.time() < deadline and len(complete()) < 6:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p: p.stat().st_mtime_ns for p in complete()}
    assert 6 <= len(done_before) < 24, "the run should be killed half-way"
    rerun = _segment(src, out, ckpt, "batch_size=1")
    assert rerun.returncode == 0, rerun.stderr[-1500:]
    line = rerun.stdout.strip().splitlines()[-1]
    assert f"({24 - len(done_before)} in this run, {len(done_before)} already done)" in line
    assert all(p.stat().st_mtime_ns == t for p, t in done_before.items())  # written once
    assert _outputs(out) == _outputs(tmp_path / "ref")
    again = _segment(src, out, ckpt, "batch_size=1")  # nothing left: nothing rewritten
    assert "(0 in this run, 24 already done)" in again.stdout
    redo = _segment(src, out, ckpt, "batch_size=1", "overwrite=true")
    assert "(24 in this run, 0 already done)" in redo.stdout


def test_one_percent_corrupt_files_are_listed_and_every_good_frame_written(tmp_path, ckpt):
    src = _folder(tmp_path / "in", 100, corrupt=(42,))
    proc = _segment(src, tmp_path / "out", ckpt, "batch_size=16", "overlays=false")
    assert proc.returncode == 1
    masks = sorted((tmp_path / "out" / "masks").rglob("*.png"))
    assert len(masks) == 99 and not (tmp_path / "out" / "overlays").exists()
    for m in masks[:5]:
        assert np.asarray(Image.open(m)).shape == (64, 64)
    rows = (tmp_path / "out" / "failures.jsonl").read_text().splitlines()
    assert [json.loads(r)["file"] for r in rows] == ["sub/f042.png"]  # 42 % 3 == 0
    records = (tmp_path / "out" / "frames.jsonl").read_text().splitlines()
    assert len(records) == 99
    assert sorted(json.loads(r)["file"] for r in records) == sorted(
        m.relative_to(tmp_path / "out" / "masks").as_posix() for m in masks
    )


@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped checkpoint missing")
def test_adapt_fine_tunes_on_the_folder_then_segments_with_it(tmp_path):
    src = _folder(tmp_path / "in", 6)
    small = make_checkpoint(tmp_path / "k.ckpt", k=4)
    # The tiny checkpoint's architecture is not the finetune recipe's: a clear error, exit 2.
    bad = _segment(src, tmp_path / "bad", small, "adapt=true", "adapt_steps=2")
    assert bad.returncode == 2 and "cannot initialise from" in bad.stdout + bad.stderr
    proc = _segment(src, tmp_path / "out", SHIPPED, "adapt=true", "adapt_steps=4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    adapted = tmp_path / "out" / "adapted.ckpt"
    from wnet_seg.checkpoint import read_checkpoint

    assert read_checkpoint(adapted)["global_step"] == 4
    assert len(list((tmp_path / "out" / "masks").rglob("*.png"))) == 6


def test_half_written_files_of_a_killed_run_are_not_frames(tmp_path):
    """A SIGKILL during ``_atomic_write`` leaves ``.<name>.<random>.npz``: never a pending frame,
    removed when the next run starts."""
    from wnet_seg.prediction import Layout

    layout = Layout(tmp_path)
    (layout.work / "sub").mkdir(parents=True)
    (layout.work / "sub" / "a.png.npz").write_bytes(b"complete")
    (layout.work / "sub" / ".b.png.npz.x1y2.npz").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / ".c.png.z9.png").write_bytes(b"\x89PNG")
    assert layout.pending() == ["sub/a.png"]
    assert layout.remove_partial() == 2
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.png.npz"]
