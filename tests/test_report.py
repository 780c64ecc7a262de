"""The HTML report: offline checks of the files, then the page as headless Chromium renders it."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wnet_seg.palette import colorize
from wnet_seg.report import (
    BrowserNotFoundError,
    ReportFrame,
    ReportSection,
    check_in_browser,
    colorize_labels,
    find_browser,
    label_color,
    write_report,
)

COLUMNS = [("miou", "mIoU (per image)"), ("miou_dataset", "mIoU (dataset)"), ("vi", "VI")]
ROWS = [  # as evaluate gives them: a baseline before the W-Net; the page puts the W-Net first
    {"method": "kmeans_rgb", "miou": 0.41, "miou_dataset": 0.38, "vi": 1.9},
    {"method": "wnet", "miou": 0.62, "miou_dataset": math.nan, "vi": 1.2},
    {"method": "wnet+tiles", "miou": 0.55, "miou_dataset": 0.57, "vi": 1.4},
]
WNET_SCORES = [0.8, 0.3, math.nan]  # frame 1 is the worst, frame 2 (NaN) sorts last


def tile_frame(seed: int, size: int = 16, tile: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A pixel-art frame of flat 4x4 tiles (grass, water, sand) and its class map."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, size=(size // tile, size // tile)).astype(np.uint8)
    truth = np.kron(classes, np.ones((tile, tile), dtype=np.uint8))
    colours = np.array([[60, 170, 60], [40, 90, 220], [230, 210, 120]], dtype=np.uint8)
    truth[0, 0] = 255  # one ignored pixel
    return colours[np.minimum(truth, 2)], truth


def evaluated_frame(i: int) -> ReportFrame:
    image, truth = tile_frame(i)
    classes = np.minimum(truth, 2).astype(np.int64)
    return ReportFrame(
        name=f"frame_{i}.png",
        image=image,
        truth=truth,
        outputs={
            "kmeans_rgb": (classes + 1) % 3,
            "wnet": classes * 2,
            "wnet+tiles": classes + 300,  # tile-identity ids beyond the 8-bit palette
        },
        scores={"wnet": WNET_SCORES[i], "wnet+tiles": 0.5, "kmeans_rgb": math.nan},
    )


def build_report(out: Path) -> Path:
    """An evaluation section (truth, 3 methods, 3 frames) and a segment section (no truth)."""
    evaluation = ReportSection(
        title="crafter test <evaluate>",
        columns=COLUMNS,
        rows=ROWS,
        frames=[evaluated_frame(i) for i in range(3)],
        notes="synthetic frames",
        class_names={0: "grass", 1: "water", 2: "sand"},
    )
    segmented = [tile_frame(10 + i)[0] for i in range(2)]
    segment = ReportSection(
        title="segment run",
        frames=[
            ReportFrame(name=f"shot_{i}.png", image=img, outputs={"wnet+tiles": img[..., 0] // 64})
            for i, img in enumerate(segmented)
        ],
        legend={"num_classes": 4, "tile_signatures": {"24": [0, 3], "25": [1, 2]}},
    )
    return write_report(out, "wnet-seg report", [evaluation, segment], machine="test box")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report(tmp_path_factory.mktemp("report"))


def image_sources(page: Path) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page.read_text())


# ------------------------------------------------------------------------------------ offline


def test_images_are_relative_files_and_nothing_is_fetched(report: Path) -> None:
    text = report.read_text()
    sources = image_sources(report)
    assert len(sources) == 3 * 5 + 2 * 2  # input, truth, 3 methods per frame; input + 1 output
    for src in sources:
        assert not src.startswith(("/", "file:", "data:")) and ":" not in src
        assert (report.parent / src).is_file(), src
    assert sorted(p.name for p in (report.parent / "report_files").iterdir()) == sorted(
        Path(s).name for s in sources
    )
    assert "http://" not in text and "https://" not in text
    assert "image-rendering: pixelated" in text


def test_same_inputs_give_the_same_bytes(report: Path, tmp_path: Path) -> None:
    again = build_report(tmp_path)
    assert again.read_bytes() == report.read_bytes()
    for src in image_sources(report):
        assert (tmp_path / src).read_bytes() == (report.parent / src).read_bytes(), src


def test_table_puts_wnet_first_and_highlights_the_best(report: Path) -> None:
    text = report.read_text()
    first_caption = re.search(r"<figcaption>(wnet[^<]*)</figcaption>", text)
    assert first_caption and first_caption.group(1) == "wnet 0.800"
    best = re.findall(r'<td class="num best" data-v="([^"]*)">', text)
    # Row by row: wnet has the best mIoU and VI (lowest), wnet+tiles the best dataset mIoU (not NaN).
    assert best == ["0.62", "1.2", "0.57"]
    assert "n/a" in text


def test_label_colours_match_the_palette_and_hash_large_ids() -> None:
    small = np.array([[0, 5], [19, 255]])
    assert np.array_equal(colorize_labels(small), colorize(small))
    large = np.array([[256, 300], [300, 70000]])
    rgb = colorize_labels(large)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert tuple(rgb[0, 1]) == tuple(rgb[1, 0]) == label_color(300)
    assert label_color(300) != label_color(301)


def test_a_mismatched_output_names_the_frame(tmp_path: Path) -> None:
    frame = evaluated_frame(0)
    frame.outputs["wnet"] = frame.outputs["wnet"][:8]
    with pytest.raises(ValueError, match="frame_0.png: wnet"):
        write_report(tmp_path, "bad", [ReportSection(title="x", frames=[frame])])


# ------------------------------------------------------------------------------------ Chromium


@pytest.fixture(scope="module")
def browser() -> str:
    try:
        return find_browser()
    except BrowserNotFoundError as err:
        pytest.skip(f"{err} (.ci/run installs it with apt-get and warns when it cannot)")


def test_page_renders_in_chromium(browser: str, report: Path, tmp_path: Path) -> None:
    seen = check_in_browser(report, tmp_path / "shot.png")
    assert seen["images"] == len(image_sources(report)) == seen["images_loaded"]
    evaluation, segment = seen["sections"]
    assert evaluation["rows"] == len(ROWS)
    assert evaluation["row_order"] == [r["method"] for r in ROWS]
    assert evaluation["frame_order"] == [0, 1, 2]
    assert (segment["rows"], segment["frames"]) == (0, 2)
    shot = np.asarray(Image.open(seen["screenshot"]).convert("RGB"), dtype=np.float64)
    assert shot.shape == (1600, 1280, 3)
    assert shot.std() > 20, "screenshot is (nearly) blank"
    assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 20, "screenshot has too few colours"


def test_buttons_sort_frames_and_table_in_chromium(browser: str, report: Path) -> None:
    # One click: worst frames first, and the mIoU column best first; a second click undoes/reverses.
    once = check_in_browser(report, press=("s0-worst", "s0-h1"))["sections"][0]
    assert once["frame_order"] == [1, 0, 2]
    assert once["row_order"] == ["wnet", "wnet+tiles", "kmeans_rgb"]
    twice = check_in_browser(report, press=("s0-worst", "s0-worst", "s0-h2", "s0-h2"))
    assert twice["sections"][0]["frame_order"] == [0, 1, 2]
    assert twice["sections"][0]["row_order"] == ["kmeans_rgb", "wnet+tiles", "wnet"]  # NaN last
