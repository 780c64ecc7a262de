"""``wnet-seg-capture``: dataset folders that the loaders accept, benchmark splits by world seed."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("crafter")

from wnet_seg.capture.cli import main  # noqa: E402
from wnet_seg.capture.crafter import CRAFTER_CLASSES  # noqa: E402
from wnet_seg.data.io import list_images, load_mask, load_rgb, read_classes  # noqa: E402


def test_crafter_command_writes_a_loadable_dataset(tmp_path, capsys):
    out = tmp_path / "c"
    argv = ["crafter", "--num", "5", "--size", "48x80", "--seed", "3", "--frames-per-world", "3"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    assert "wrote 5 frames" in capsys.readouterr().out
    images = list_images(out / "images")
    assert [p.name for p in images] == [f"{i:06d}.png" for i in range(5)]
    classes = read_classes(out / "classes.txt")
    assert classes == CRAFTER_CLASSES
    for p in images:
        rgb = load_rgb(p)
        mask = load_mask(
            out / "masks" / p.name, expected_hw=rgb.shape[:2], num_classes=len(classes)
        )
        assert rgb.shape == (48, 80, 3)
        assert set(np.unique(mask).tolist()) <= set(classes)
    rows = list(csv.DictReader((out / "frames.csv").read_text().splitlines()))
    assert [int(r["world_seed"]) for r in rows] == [3, 3, 3, 4, 4]


def test_benchmark_command_splits_by_world(tmp_path):
    out = tmp_path / "bench"
    argv = ["crafter-benchmark", "--out", str(out), "--size", "32"]
    assert (
        main([*argv, "--num-train", "3", "--num-val", "2", "--num-test", "2", "--no-progress"]) == 0
    )
    worlds = {}
    for split in ("train", "val", "test"):
        assert len(list_images(out / split / "images")) == len(list_images(out / split / "masks"))
        rows = list(csv.DictReader((out / split / "frames.csv").read_text().splitlines()))
        worlds[split] = {int(r["world_seed"]) for r in rows}
    assert not (worlds["train"] & worlds["val"]) and not (worlds["train"] & worlds["test"])
    assert not (worlds["val"] & worlds["test"])


def test_bad_size_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        main(["crafter", "--out", "x", "--size", "big"])
    assert "size must be N or HxW" in capsys.readouterr().err


def test_atari_rom_ids_and_mario_levels_are_checked_before_any_install(tmp_path):
    from wnet_seg.capture.atari import rom_id
    from wnet_seg.capture.mario import ALL_STAGES, DEFAULT_LEVELS, capture_mario

    assert rom_id("MsPacman") == "ms_pacman"
    assert rom_id("SpaceInvaders") == "space_invaders"
    assert rom_id("pong") == "pong" and rom_id("ms-pacman") == "ms_pacman"
    assert set(DEFAULT_LEVELS) <= set(ALL_STAGES) and len(ALL_STAGES) == 32
    with pytest.raises(ValueError, match="9-9"):
        capture_mario(tmp_path, num=1, levels=["9-9"], venv=tmp_path / "never-made")
    assert not (tmp_path / "never-made").exists()


@pytest.mark.slow
def test_mario_and_atari_capture_for_real(tmp_path):
    """Runs the emulators in the games venv (made on first use: a minute or two of pip)."""
    from wnet_seg.capture.gamevenv import default_venv

    if not (default_venv() / "wnet-seg-requirements.txt").exists():
        pytest.skip(f"no emulator venv at {default_venv()} (made by `wnet-seg-capture mario`)")
    assert (
        main(
            [
                "mario",
                "--out",
                str(tmp_path / "m"),
                "--num",
                "3",
                "--levels",
                "1-1,2-2",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "atari",
                "--game",
                "Breakout",
                "--out",
                str(tmp_path / "a"),
                "--num",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )
    assert [load_rgb(p).shape for p in list_images(tmp_path / "m" / "images")] == [
        (240, 256, 3)
    ] * 3
    assert [load_rgb(p).shape for p in list_images(tmp_path / "a" / "images")] == [
        (210, 160, 3)
    ] * 3
