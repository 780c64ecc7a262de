"""`make demo`, part 1: the embedded frames of three games, scored by the shared Scorer."""

from __future__ import annotations

import json

import numpy as np

from wnet_seg.assets import asset
from wnet_seg.data.io import load_mask, load_rgb
from wnet_seg.demo import GAMES, segment_demo_frames


def test_embedded_demo_games_are_labelled_and_provenanced():
    for game in GAMES:
        root = asset(f"demo/{game}")
        images = sorted((root / "images").glob("*.png"))
        assert len(images) >= 4, game
        ids = {int(line.split()[0]) for line in (root / "classes.txt").read_text().splitlines()}
        meta = json.loads((root / "provenance.json").read_text())
        assert meta.get("tile"), game  # the oracle tile lookup needs the capture's tile size
        for image in images:
            rgb, mask = load_rgb(image), load_mask(root / "masks" / image.name)
            assert rgb.shape[:2] == mask.shape, image
            assert set(np.unique(mask).tolist()) <= ids | {255}, image  # named classes or ignore


def test_demo_table_matches_the_scores_in_the_report(tmp_path, capsys):
    sections = segment_demo_frames(tmp_path)
    out = capsys.readouterr().out
    assert len(sections) == len(GAMES)
    for game in GAMES:
        rows = [line for line in out.splitlines() if line.startswith(game)]
        labels = " ".join(rows)
        assert "W-Net (default output)" in labels and "tile identity (oracle)" in labels
        assert "best classical" in labels
        scores = [float(line.split()[-2]) for line in rows]
        assert all(0.0 <= s <= 1.0 for s in scores)
    # The shipped checkpoint on Crafter's embedded frames (a regression floor, measured 0.846).
    crafter = next(line for line in out.splitlines() if line.startswith("crafter    W-Net"))
    assert float(crafter.split()[-2]) > 0.8
    assert np.isfinite(float(crafter.split()[-1]))
