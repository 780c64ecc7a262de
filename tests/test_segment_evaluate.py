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
from wnet_seg.grid import GridConfig
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
    seg = Segmenter.from_checkpoint(ckpt, grid=GridConfig(scale="off"), crf=CRFConfig())
    for h, w in [(17, 23), (1, 5), (40, 33)]:
        rgb = pixel_art(h, w)
        r = seg.segment(rgb)
        for labels in (r.labels, r.crf_labels, r.output):
            assert labels.shape == (h, w) and labels.max() < 3
        assert r.probs.shape == (3, h, w)
        np.testing.assert_allclose(r.probs.sum(0), 1.0, atol=1e-5)
        assert r.pooled is None and r.grid.tile is None  # random pixels: no tile grid
        np.testing.assert_array_equal(r.output, r.crf_labels)  # no grid: the CRF's labels
        assert {"geometry", "network", "crf"} <= set(r.seconds)
    with pytest.raises(ValueError, match="window must be >= 16"):
        Segmenter.from_checkpoint(ckpt, window=8)


def test_windows_match_shape_and_are_close_to_one_pass(ckpt):
    rgb = pixel_art(150, 130, seed=1)
    whole = (
        Segmenter.from_checkpoint(ckpt, grid=GridConfig(scale="off"), window=512).segment(rgb).probs
    )
    seg = Segmenter.from_checkpoint(ckpt, grid=GridConfig(scale="off"), window=64, overlap=16)
    windowed = seg.segment(rgb).probs
    assert windowed.shape == whole.shape == (3, 150, 130)
    np.testing.assert_allclose(windowed.sum(0), 1.0, atol=1e-5)
    # Same network, windows only change the context at window borders: most labels agree.
    assert (windowed.argmax(0) == whole.argmax(0)).mean() > 0.7


def test_native_scale_segments_at_game_resolution(ckpt):
    native = pixel_art(32, 40, seed=2)
    big = native.repeat(3, 0).repeat(3, 1)
    seg = Segmenter.from_checkpoint(ckpt)
    result = seg.segment(big)
    labels = result.output
    # pixel_art draws 4x4 blocks, so the 3x capture is a 12x upscale of an 8x10 frame; 12 is past
    # GridConfig.max_scale (8), so its largest factor in range is found: 6 (a 16x20 native frame).
    assert labels.shape == big.shape[:2] and result.grid.scale == 6
    assert result.native.shape == (16, 20, 3)
    # Every 3x3 block has one label: the result respects the game's pixel grid.
    blocks = labels.reshape(32, 3, 40, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()
    np.testing.assert_array_equal(labels[::3, ::3], seg.segment(native).output)


def test_batch_equals_one_by_one_and_given_probs_skip_the_network(ckpt):
    seg = Segmenter.from_checkpoint(ckpt, grid=GridConfig(scale="off"))
    frames = [pixel_art(32, 32, seed=s) for s in range(3)] + [pixel_art(24, 40, seed=5)]
    batched = seg.segment_batch(frames)
    for f, b in zip(frames, batched, strict=True):
        np.testing.assert_array_equal(seg.segment(f).output, b.output)
        np.testing.assert_allclose(seg.segment(f).probs, b.probs, atol=1e-5)
    probs = seg.encode(np.stack(frames[:3]))
    given = seg.segment_batch(frames[:3], probs=probs)
    for r, b in zip(given, batched[:3], strict=True):
        np.testing.assert_array_equal(r.labels, b.labels)
    with pytest.raises(ValueError, match="do not match"):
        seg.segment_batch(frames[:2], probs=probs)


def test_segment_cli_folder_with_bad_files(tmp_path, ckpt):
    """Good frames all written, bad ones listed, exit 1; report=true shows every good frame."""
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
         "progress=false", "batch_size=2", "report=true"],
        capture_output=True, text=True, cwd=REPO, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "broken.png" in proc.stderr and "empty.jpg" in proc.stderr
    for rel, hw in [("odd.png", (17, 23)), ("sub/grey.png", (24, 24)), ("sub/alpha.png", (20, 28))]:
        mask = np.asarray(Image.open(out / "masks" / rel))
        assert mask.shape == hw and mask.dtype == np.uint8
        assert Image.open(out / "overlays" / rel).size == (hw[1], hw[0])
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert sorted(r["file"] for r in records) == ["odd.png", "sub/alpha.png", "sub/grey.png"]
    for r in records:
        assert {"file", "scale", "tile", "offset"} <= set(r) and r["scale"] in (1.0, 4.0)
    page = out / "report.html"
    assert f"report: {page.resolve()}" in proc.stdout
    html = page.read_text()
    assert html.count('class="frame"') == 3 and "3 frames segmented, 2 failed" in html
    for name in ("odd.png", "sub/grey.png", "sub/alpha.png"):
        assert name in html
    try:
        from wnet_seg.report import check_in_browser, find_browser

        find_browser()
    except RuntimeError:
        return  # the Chromium checks of report.py are in test_report.py (skipped the same way)
    seen = check_in_browser(page)
    assert seen["sections"][0]["frames"] == 3 and seen["images"] == seen["images_loaded"] == 6


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
        "tile_identity", "tile_identity_robust", "colour_identity",  # no tile size: no oracle
    }  # fmt: skip
    assert report["images"] == 2
    (bad,) = report["skipped"].values()
    assert "2.png" in bad and "16x32" in bad and "32x32" in bad
    for r in report["results"].values():
        assert 0.0 <= r["miou"] <= 1.0
    assert "| wnet |" in proc.stdout and (out / "metrics.png").is_file()
    page = (out / "report.html").read_text()  # the browser checks are in tests/test_report.py
    assert page.count('src="report_files/') >= 2 * (1 + 1 + len(report["results"]))
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
    assert set(json.loads((out / "metrics.json").read_text())["results"]) == {
        "wnet", "kmeans_rgb", "tile_identity", "tile_identity_robust", "colour_identity",
    }  # fmt: skip
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


def test_evaluate_under_a_degradation_scores_the_degraded_frames(tmp_path, ckpt):
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    for i in range(2):
        rgb = pixel_art(32, 32, seed=i)
        Image.fromarray(rgb).save(root / "images" / f"{i}.png")
        save_mask((rgb[..., 0] > 127).astype(np.uint8), root / "masks" / f"{i}.png")
    from wnet_seg.evaluate import EvaluateConf, evaluate

    conf = dict(images=str(root), ckpt=str(ckpt), baselines=["kmeans_rgb"], progress=False)
    clean = evaluate(EvaluateConf(**conf, crf=False))
    upscaled = evaluate(EvaluateConf(**conf, crf=False, degrade="nearest:2"))
    assert upscaled["condition"] == "nearest:2" and upscaled["images"] == 2
    # Lossless 2x: the W-Net works at the native scale, so its scores do not change.
    for m in ("wnet", "wnet+tiles"):
        assert upscaled["results"][m]["miou"] == pytest.approx(clean["results"][m]["miou"])
    with pytest.raises(ValueError, match="degrade step"):
        evaluate(EvaluateConf(**conf, degrade="blur:3"))
