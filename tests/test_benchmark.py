"""``wnet-seg-benchmark``: games x conditions x methods in one table, held-out checkpoints per game."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from wnet_seg.benchmark import BenchmarkConf, markdown_tables, run_benchmark, write_benchmark
from wnet_seg.data.io import save_mask

from .conftest import REPO
from .test_segment_evaluate import make_checkpoint, pixel_art


def _game(root, name: str, frames: int = 2) -> None:
    split = root / name / "test"
    (split / "images").mkdir(parents=True)
    for i in range(frames):
        rgb = pixel_art(32, 32, seed=i + hash(name) % 100)
        Image.fromarray(rgb).save(split / "images" / f"{i:06d}.png")
        save_mask((rgb[..., 1] > 127).astype(np.uint8), split / "masks" / f"{i:06d}.png")
    (split / "classes.txt").write_text("0 dark\n1 bright\n")
    if name == "beta":
        (split / "provenance.json").write_text('{"game": "beta", "tile": 4}')


def test_every_game_condition_and_method_in_one_table(tmp_path):
    data = tmp_path / "bench"
    _game(data, "alpha")
    _game(data, "beta")
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    shipped = make_checkpoint(ckpts / "shipped.ckpt")
    make_checkpoint(ckpts / "heldout-alpha.ckpt", k=4)  # only alpha has a held-out checkpoint
    conf = BenchmarkConf(
        data_dir=str(data),
        games=["alpha", "beta", "missing"],
        conditions=["clean", "nearest:2", "jpeg:85"],
        checkpoints={"shipped": str(shipped), "heldout": str(ckpts / "heldout-{family}.ckpt")},
        baselines=["kmeans_rgb"],
        progress=False,
        report=False,
    )
    bench = run_benchmark(conf)
    runs = {(r["game"], r["condition"]): r for r in bench["runs"]}
    assert set(runs) == {(g, c) for g in ("alpha", "beta") for c in conf.conditions}
    for (game, _), r in runs.items():
        expected = {"shipped/wnet", "shipped/wnet+tiles", "kmeans_rgb", "kmeans_rgb+tiles"}
        expected |= {"tile_identity", "tile_identity_robust", "colour_identity"}
        if game == "beta":  # its capture says the tile size: the oracle is scored too
            expected.add("tile_identity_oracle")
        if game == "alpha":
            expected |= {"heldout/wnet", "heldout/wnet+tiles"}
        assert set(r["results"]) == expected and r["images"] == 2
        for v in r["results"].values():
            assert 0 <= v["miou"] <= 1
    # Lossless 2x upscale: the W-Net segments at the native scale, same scores as clean.
    for m in ("shipped/wnet", "shipped/wnet+tiles"):
        assert (
            runs[("beta", "nearest:2")]["results"][m]["miou"]
            == (runs[("beta", "clean")]["results"][m]["miou"])
        )
    table = markdown_tables(bench)
    assert "### alpha" in table and "| clean | nearest:2 | jpeg:85 |" in table
    assert "heldout/wnet+tiles" in table and "Machine:" in table
    written = write_benchmark(bench, tmp_path / "out", report=False)
    plain = json.loads(written[0].read_text())
    assert len(plain["runs"]) == 6 and "frames" not in plain["runs"][0]


def test_cli_bad_condition_exits_2(tmp_path):
    data = tmp_path / "bench"
    _game(data, "alpha", frames=1)
    proc = subprocess.run(
        [sys.executable, "-m", "wnet_seg.benchmark", f"data_dir={data}", "games=[alpha]",
         "conditions=[sharpen:2]", f"output={tmp_path / 'o'}", "progress=false"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "degrade step 'sharpen:2'" in proc.stderr + proc.stdout


def _bench(game_scores: dict[tuple[str, str], float], machine: str = "box") -> dict:
    runs = [
        {"game": g, "condition": c, "images": 1, "results": {"shipped/wnet+tiles":
         {"miou": v, "miou_dataset": v / 2}, "tile_identity": {"miou": 0.5, "miou_dataset": 0.4}}}
        for (g, c), v in game_scores.items()
    ]  # fmt: skip
    return {"runs": runs, "machine": machine, "split": "test", "data_dir": "d"}


def test_merged_parts_and_change_table():
    from wnet_seg.benchmark import change_table, merge_benchmarks, summary_table

    a = _bench({("alpha", "clean"): 0.8, ("alpha", "jpeg:85"): 0.6}, "box, load 1")
    b = _bench({("beta", "clean"): 0.9, ("beta", "jpeg:85"): 0.7}, "box, load 2")
    merged = merge_benchmarks([a, b])
    assert [r["game"] for r in merged["runs"]] == ["alpha", "alpha", "beta", "beta"]
    assert merged["machine"] == "box, load 1; box, load 2"
    summary = summary_table(merged)
    assert "| beta | W-Net default (shipped) | 0.900 / 0.450 | 0.700 / 0.350 |" in summary
    before = _bench({("alpha", "clean"): 0.7, ("alpha", "jpeg:85"): 0.65})
    table = change_table(before, merged, "shipped/wnet+tiles")
    assert "| alpha | 0.700 -> 0.800 (+0.100) | 0.650 -> 0.600 (-0.050) |" in table
    assert "beta" not in table  # no earlier score: left out
    with pytest.raises(ValueError, match="different splits"):
        merge_benchmarks([a, {**b, "split": "val"}])
