"""Inference (Segmenter), the segment CLI and the evaluate CLI on odd, grey, RGBA, bad and big input."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wnet_seg.checkpoint import atomic_torch_save
from wnet_seg.data.io import load_mask, save_mask
from wnet_seg.inference import Segmenter
from wnet_seg.models import WNet, WNetConfig
from wnet_seg.postprocess.crf import CRFConfig

from .conftest import REPO


def make_checkpoint(path: Path, k: int = 3) -> Path:
    torch.manual_seed(0)
    config = WNetConfig(num_classes=k, base_width=4, depth=2, dropout=0.0)
    net = WNet(config).eval()
    ckpt = {
        "state_dict": {f"net.{n}": t for n, t in net.state_dict().items()},
        "hyper_parameters": {
            "format": 1,
            "model": asdict(config),
            "norm": {"mean": [0.5] * 3, "std": [0.25] * 3},
        },
    }
    atomic_torch_save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


def pixel_art(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    return small.repeat(4, 0).repeat(4, 1)[:h, :w]


def test_segmenter_odd_sizes_and_crf(ckpt):
    seg = Segmenter.from_checkpoint(ckpt, native_scale="off")
    for h, w in [(17, 23), (1, 5), (40, 33)]:
        rgb = pixel_art(h, w)
        labels = seg.segment(rgb)
        assert labels.shape == (h, w) and labels.dtype == np.uint8
        assert labels.max() < 3
    probs = seg.probs(pixel_art(20, 24), crf=False)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    seg.crf = CRFConfig()
    refined = seg.probs(pixel_art(20, 24))
    assert refined.shape == (3, 20, 24)
    np.testing.assert_allclose(refined.sum(0), 1.0, atol=1e-4)


def test_tiling_matches_shape_and_is_close_to_untiled(ckpt):
    rgb = pixel_art(150, 130, seed=1)
    whole = Segmenter.from_checkpoint(ckpt, native_scale="off", tile=512).probs(rgb)
    tiled = Segmenter.from_checkpoint(ckpt, native_scale="off", tile=64, overlap=16).probs(rgb)
    assert tiled.shape == whole.shape == (3, 150, 130)
    np.testing.assert_allclose(tiled.sum(0), 1.0, atol=1e-5)
    # Same network, tiles only change the context at tile borders: most labels agree.
    assert (tiled.argmax(0) == whole.argmax(0)).mean() > 0.7


def test_native_scale_segments_at_game_resolution(ckpt):
    native = pixel_art(32, 40, seed=2)
    big = native.repeat(3, 0).repeat(3, 1)
    seg = Segmenter.from_checkpoint(ckpt, native_scale="auto")
    labels = seg.segment(big)
    assert labels.shape == big.shape[:2]
    # Every 3x3 block has one label: the result respects the game's pixel grid.
    blocks = labels.reshape(32, 3, 40, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()
    np.testing.assert_array_equal(labels[::3, ::3], seg.segment(native))


def test_segment_many_equals_one_by_one(ckpt):
    seg = Segmenter.from_checkpoint(ckpt, native_scale="off")
    frames = [pixel_art(32, 32, seed=s) for s in range(3)]
    batched = seg.segment_many(frames)
    for f, b in zip(frames, batched, strict=True):
        np.testing.assert_array_equal(seg.segment(f), b)


def test_segment_cli_folder_with_bad_files(tmp_path, ckpt):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(pixel_art(17, 23)).save(src / "odd.png")
    Image.fromarray(pixel_art(24, 24)[..., 0]).convert("L").save(src / "sub" / "grey.png")
    rgba = np.dstack([pixel_art(20, 28), np.full((20, 28), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(src / "sub" / "alpha.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (src / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "wnet_seg.segment", f"input={src}", f"output={out}", f"ckpt={ckpt}",
         "progress=false", "batch_size=2"],
        capture_output=True, text=True, cwd=REPO, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "broken.png" in proc.stderr and "empty.jpg" in proc.stderr
    for rel, hw in [("odd.png", (17, 23)), ("sub/grey.png", (24, 24)), ("sub/alpha.png", (20, 28))]:
        mask = np.asarray(Image.open(out / "masks" / rel))
        assert mask.shape == hw and mask.dtype == np.uint8
        assert Image.open(out / "overlays" / rel).size == (hw[1], hw[0])


def test_segment_cli_missing_checkpoint_is_clear(tmp_path):
    Image.fromarray(pixel_art(8, 8)).save(tmp_path / "a.png")
    proc = subprocess.run(
        [sys.executable, "-m", "wnet_seg.segment", f"input={tmp_path / 'a.png'}",
         f"output={tmp_path / 'o'}", f"ckpt={tmp_path / 'nope.ckpt'}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "nope.ckpt" in proc.stdout + proc.stderr


def test_evaluate_cli_writes_table_json_chart_and_names_bad_mask(tmp_path, ckpt):
    root = tmp_path / "set"
    for i in range(3):
        rgb = pixel_art(32, 32, seed=i)
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(root / "images" / f"{i}.png")
        gt = (rgb[..., 0] > 127).astype(np.uint8)
        save_mask(gt if i < 2 else gt[:16], root / "masks" / f"{i}.png")  # frame 2: wrong size
    out = tmp_path / "eval"
    proc = subprocess.run(
        [sys.executable, "-m", "wnet_seg.evaluate", f"images={root}", f"ckpt={ckpt}", f"output={out}",
         "baselines=[kmeans_rgb,felzenszwalb]", "progress=false"],
        capture_output=True, text=True, cwd=REPO, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["results"]) == {
        "wnet", "wnet+crf", "wnet+tiles", "kmeans_rgb", "felzenszwalb",
        "kmeans_rgb+tiles", "felzenszwalb+tiles",
    }  # fmt: skip
    assert report["images"] == 2
    (bad,) = report["skipped"].values()
    assert "2.png" in bad and "16x32" in bad and "32x32" in bad
    for r in report["results"].values():
        assert 0.0 <= r["miou"] <= 1.0
    assert "| wnet |" in proc.stdout and (out / "metrics.png").is_file()
    assert load_mask(root / "masks" / "0.png").shape == (32, 32)


def test_evaluate_cli_tiles_off_and_bad_tiles_value(tmp_path, ckpt):
    root = tmp_path / "set"
    rgb = pixel_art(32, 32)
    (root / "images").mkdir(parents=True)
    Image.fromarray(rgb).save(root / "images" / "0.png")
    save_mask((rgb[..., 0] > 127).astype(np.uint8), root / "masks" / "0.png")
    base = [sys.executable, "-m", "wnet_seg.evaluate", f"images={root}", f"ckpt={ckpt}",
            "baselines=[kmeans_rgb]", "crf=false", "progress=false"]  # fmt: skip
    out = tmp_path / "eval"
    proc = subprocess.run(
        [*base, f"output={out}", "tiles=off"], capture_output=True, text=True, cwd=REPO, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(json.loads((out / "metrics.json").read_text())["results"]) == {"wnet", "kmeans_rgb"}
    bad = subprocess.run(
        [*base, f"output={tmp_path / 'bad'}", "tiles=sixteen"],
        capture_output=True, text=True, cwd=REPO, timeout=180,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "tiles must be 'auto', 'off' or a tile size" in bad.stderr + bad.stdout
    for typo, message in [
        ("+tiles_params.min_shar=0.2", "unknown tiles_params ['min_shar']"),
        ("+crf_params.iteration=3", "unknown crf_params ['iteration']"),
    ]:
        bad = subprocess.run(
            [*base, f"output={tmp_path / 'typo'}", typo],
            capture_output=True, text=True, cwd=REPO, timeout=180,
        )  # fmt: skip
        assert bad.returncode == 2, typo
        assert message in bad.stderr + bad.stdout and "Traceback" not in bad.stderr
