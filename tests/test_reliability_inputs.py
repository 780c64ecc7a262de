"""Bad and unusual input files: each gets a clear message naming the file, and nothing else is lost.

Covers ``data/io.py`` (decoding every image mode, refusing broken files), ``data/datasets.py`` (the
skip/fail policy, masks checked against their image and ``classes.txt``) and the training run's
skip count (``train/skipped_files``, ``result["skipped_files"]``), with and without DataLoader
workers.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wnet_seg.config import DataConf
from wnet_seg.data.datamodule import WNetDataModule
from wnet_seg.data.datasets import DatasetError, ImageDataset, split_indices
from wnet_seg.data.io import ImageReadError, list_images, load_mask, load_rgb, read_classes
from wnet_seg.train import train

from .conftest import TINY, compose_train


def _png_bytes(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _write_png16_rgb(path: Path, rgb16: np.ndarray) -> None:
    """A 48-bit RGB PNG (Pillow cannot write one): IHDR bit depth 16, colour type 2."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    h, w, _ = rgb16.shape
    rows = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _good_rgb(h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---- single files: broken ----------------------------------------------------------------


def _make_bad(tmp_path: Path, kind: str) -> Path:
    good = _png_bytes(_good_rgb())
    path = tmp_path / f"{kind}.png"
    if kind == "zero_byte":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "corrupt":
        path.write_bytes(good[:64] + bytes(np.random.default_rng(1).integers(0, 256, 512).tolist()))
    elif kind == "text_named_png":
        path.write_text("this is a README, not a picture\n")
    elif kind == "header_only":
        path.write_bytes(good[:8])
    return path


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("zero_byte", "empty file"),
        ("truncated", "truncated"),
        ("corrupt", "not a readable image"),
        ("text_named_png", "not an image format"),
        ("header_only", "not a readable image"),
    ],
)
def test_broken_image_raises_clear_error_naming_the_file(tmp_path, kind, reason):
    path = _make_bad(tmp_path, kind)
    with pytest.raises(ImageReadError) as info:
        load_rgb(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert reason in message, message


def test_missing_file_is_an_image_read_error(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        load_rgb(tmp_path / "gone.png")


def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bytes(np.zeros((64, 64, 3), np.uint8)))
    # Pillow refuses images over 2 * MAX_IMAGE_PIXELS; shrink the limit instead of writing 180 MP.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageReadError, match="decompression bomb") as info:
        load_rgb(path)
    assert str(path) in str(info.value)


# ---- single files: unusual but valid -----------------------------------------------------


def test_palette_with_transparency_grey_and_rgba_decode_to_rgb(tmp_path):
    # Palette image: index 0 red (transparent), index 1 green.
    pal = Image.new("P", (4, 2))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putdata([0, 1, 1, 1, 1, 1, 1, 0])
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal.png", transparency=0)
    rgb = load_rgb(tmp_path / "pal.png")
    assert rgb.shape == (2, 4, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 0]  # transparent -> composited on black
    assert rgb[0, 1].tolist() == [0, 255, 0]

    grey = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    out = load_rgb(tmp_path / "grey.png")
    assert out.shape == (4, 6, 3) and (out[..., 1] == grey).all()

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = [[255, 0], [128, 255]]
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    out = load_rgb(tmp_path / "rgba.png")
    assert out[..., 0].tolist() == [[200, 0], [100, 200]]

    Image.fromarray(np.array([[0, 255]], np.uint8), mode="L").convert("1").save(tmp_path / "b.png")
    assert load_rgb(tmp_path / "b.png").tolist() == [[[0, 0, 0], [255, 255, 255]]]


def test_16_bit_grey_and_rgb_pngs_are_scaled_to_8_bits(tmp_path):
    grey16 = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    assert load_rgb(tmp_path / "g16.png")[0, :, 0].tolist() == [0, 1, 128, 255]

    # A dark 16-bit frame (all values < 256) stays dark: the file's bit depth decides the scale.
    dark = np.array([[0, 200, 255]], dtype=np.uint16)
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    assert load_rgb(tmp_path / "dark16.png")[0, :, 0].tolist() == [0, 1, 1]

    rgb16 = np.zeros((2, 3, 3), np.uint16)
    rgb16[0, 0] = [65535, 0, 32896]
    rgb16[1, 2] = [257 * 10, 257 * 20, 257 * 30]
    _write_png16_rgb(tmp_path / "rgb16.png", rgb16)
    out = load_rgb(tmp_path / "rgb16.png")
    assert out.shape == (2, 3, 3)
    assert out[0, 0].tolist() == [255, 0, 128]
    assert out[1, 2].tolist() == [10, 20, 30]


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(tmp_path / "anim.gif").n_frames == 3
    out = load_rgb(tmp_path / "anim.gif")
    assert out.shape == (6, 8, 3) and (out == [255, 0, 0]).all()


def test_cmyk_jpeg_decodes(tmp_path):
    Image.new("CMYK", (5, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    out = load_rgb(tmp_path / "cmyk.jpg")
    assert out.shape == (4, 5, 3) and out[..., 0].min() > 200 and out[..., 1].max() < 50


# ---- folders and the skip / fail policy --------------------------------------------------


def _folder(tmp_path: Path, n_good: int = 3, bad=("zero_byte", "truncated", "text_named_png")):
    root = tmp_path / "shots"
    root.mkdir()
    for i in range(n_good):
        Image.fromarray(_good_rgb(seed=i)).save(root / f"good{i}.png")
    for kind in bad:
        _make_bad(root, kind)
    (root / "notes.txt").write_text("not an image extension: never listed\n")
    (root / ".hidden.png").write_bytes(b"")  # hidden: never listed
    return root


def test_non_image_extensions_and_hidden_files_are_not_listed(tmp_path):
    root = _folder(tmp_path)
    names = [p.name for p in list_images(root)]
    assert "notes.txt" not in names and ".hidden.png" not in names
    assert len(names) == 6


def test_dataset_skips_each_bad_file_with_one_warning_and_counts_it(tmp_path, caplog):
    files = list_images(_folder(tmp_path))
    ds = ImageDataset(files, train=True, crop_size=16, on_bad_file="skip")
    with caplog.at_level(logging.WARNING, logger="wnet_seg.data.datasets"):
        for _ in range(2):  # a second pass must neither warn again nor retry the bad files
            names = [ds[i]["name"] for i in range(len(ds))]
    assert all(Path(n).name.startswith("good") for n in names)
    assert ds.skipped == {f for f in files if not f.name.startswith("good")}
    warnings = [r.getMessage() for r in caplog.records if "skipping bad file" in r.getMessage()]
    assert len(warnings) == 3
    for f in ds.skipped:
        assert sum(str(f) in w for w in warnings) == 1


def test_fail_policy_raises_naming_the_file(tmp_path):
    files = list_images(_folder(tmp_path, bad=("truncated",)))
    ds = ImageDataset(files, train=False, on_bad_file="fail")
    bad = next(i for i, f in enumerate(files) if f.name == "truncated.png")
    with pytest.raises(ImageReadError, match=r"truncated\.png.*on_bad_file=fail"):
        ds[bad]


def test_no_readable_image_fails_at_setup_with_clear_message(tmp_path):
    root = _folder(tmp_path, n_good=0)
    dm = WNetDataModule(DataConf(kind="screenshots", path=str(root)))
    with pytest.raises(
        DatasetError, match="none of the 3 image files under .* could be read"
    ) as info:
        dm.setup("fit")
    assert "zero_byte.png" in str(info.value) or "truncated.png" in str(info.value)
    # The dataset itself, if handed only bad files, says so instead of looping.
    ds = ImageDataset(list_images(root), train=False)
    with pytest.raises(DatasetError, match="no readable image among the 3 files"):
        ds[0]


def test_unreadable_validation_split_falls_back_to_a_readable_image(tmp_path, caplog):
    root = tmp_path / "shots"
    root.mkdir()
    Image.fromarray(_good_rgb()).save(root / "a.png")
    (root / "b.png").write_bytes(b"")
    # A split seed that puts the empty file (index 1) alone in validation.
    seed = next(s for s in range(100) if split_indices(2, 0.5, s)[1] == [1])
    dm = WNetDataModule(
        DataConf(kind="screenshots", path=str(root), val_fraction=0.5, split_seed=seed)
    )
    with caplog.at_level(logging.WARNING, logger="wnet_seg.data.datamodule"):
        dm.setup("fit")
    assert "no readable validation image" in caplog.text and "b.png: empty file" in caplog.text
    assert [f.name for f in dm.val_set.files] == ["a.png"]


def test_image_smaller_than_crop_is_padded_and_mask_padding_is_ignored(tmp_path):
    Image.fromarray(_good_rgb(10, 12)).save(tmp_path / "small.png")
    mask = np.full((10, 12), 3, np.uint8)
    Image.fromarray(mask, mode="L").save(tmp_path / "small_mask.png")
    ds = ImageDataset(
        [tmp_path / "small.png"], [tmp_path / "small_mask.png"], train=True, crop_size=32, aug=False
    )
    sample = ds[0]
    assert sample["image"].shape == (3, 32, 32)
    m = sample["mask"].numpy()
    assert (m == 3).sum() == 10 * 12 and set(np.unique(m).tolist()) == {3, 255}


# ---- masks -------------------------------------------------------------------------------


def test_mask_of_wrong_size_names_file_and_both_sizes(tmp_path):
    Image.fromarray(np.zeros((30, 40), np.uint8), mode="L").save(tmp_path / "m.png")
    with pytest.raises(ImageReadError) as info:
        load_mask(tmp_path / "m.png", expected_hw=(32, 48))
    msg = str(info.value)
    assert str(tmp_path / "m.png") in msg and "30x40" in msg and "32x48" in msg


def test_rgb_mask_is_refused_with_its_mode(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(ImageReadError, match=r"m\.png: mask must be single-channel.*mode RGB"):
        load_mask(tmp_path / "m.png")


def _labelled_dataset(tmp_path: Path, classes_inside_masks: bool = False) -> Path:
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    classes_file = (root / "masks" if classes_inside_masks else root) / "classes.txt"
    classes_file.write_text("0 sky\n1 ground\n# comment\n4 water\n")
    for i in range(4):
        Image.fromarray(_good_rgb(24, 24, seed=i)).save(root / "images" / f"{i}.png")
        mask = np.zeros((24, 24), np.uint8)
        mask[12:] = 1
        mask[0, 0] = 255
        if i == 2:
            mask[5, 5] = 7  # not declared in classes.txt
        if i == 3:
            mask = mask[:20]  # wrong size
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{i}.png")
    return root


@pytest.mark.parametrize("inside", [False, True])
def test_screenshot_masks_are_checked_against_classes_txt(tmp_path, caplog, inside):
    root = _labelled_dataset(tmp_path, classes_inside_masks=inside)
    assert read_classes(next(root.rglob("classes.txt"))) == {0: "sky", 1: "ground", 4: "water"}
    dm = WNetDataModule(DataConf(kind="screenshots", path=str(root), val_fraction=0.75))
    dm.setup("fit")
    ds = ImageDataset(
        dm.val_set.files + dm.train_set.files,
        dm.val_set.mask_files + dm.train_set.mask_files,
        train=False,
        valid_ids=dm.val_set.valid_ids,
    )
    assert dm.val_set.valid_ids == {0, 1, 4}
    with caplog.at_level(logging.WARNING, logger="wnet_seg.data.datasets"):
        served = {Path(ds[i]["name"]).name for i in range(len(ds))}
    assert served == {"0.png", "1.png"}
    text = caplog.text
    assert "masks/2.png: mask has ids [7] not declared in classes.txt (declared: 0-1, 4" in text
    assert "masks/3.png: mask is 20x24 (HxW) but its image is 24x24" in text

    strict = ImageDataset(
        ds.files, ds.mask_files, train=False, valid_ids=ds.valid_ids, on_bad_file="fail"
    )
    i2 = [f.name for f in strict.files].index("2.png")
    with pytest.raises(ImageReadError, match=r"ids \[7\] not declared"):
        strict[i2]


def test_bad_classes_txt_names_file_and_line(tmp_path):
    (tmp_path / "classes.txt").write_text("0 sky\nwater 1\n")
    with pytest.raises(ImageReadError, match=r"classes\.txt:2: expected 'id name'"):
        read_classes(tmp_path / "classes.txt")
    (tmp_path / "classes.txt").write_text("0 sky\n255 ignore\n")
    with pytest.raises(ImageReadError, match=r"classes\.txt:2: class id 255 outside 0\.\.254"):
        read_classes(tmp_path / "classes.txt")


# ---- a training run over a folder with bad files -----------------------------------------


def _scalar_values(run_dir: Path, tag: str) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    acc = EventAccumulator(str(files[0].parent), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.value for e in acc.Scalars(tag)]


@pytest.mark.parametrize("workers", [0, 1])
def test_training_skips_bad_files_logs_and_reports_the_count(tmp_path, caplog, workers):
    root = _folder(tmp_path, n_good=4)
    run = tmp_path / "run"
    # 7 files; val_fraction=0 validates on the first (good0.png); batch 1 and one epoch request
    # every training index once, so each broken file is hit (and replaced by the next good one).
    cfg = compose_train(
        [
            *TINY,
            "data=screenshots",
            f"data.path={root}",
            "data.val_fraction=0",
            "data.batch_size=1",
            f"data.num_workers={workers}",
            "trainer.max_epochs=1",
            "trainer.log_every_n_steps=1",
            "num_output_pngs=0",
            "trainer.num_sanity_val_steps=0",
        ],
        run,
    )
    with caplog.at_level(logging.WARNING):
        result = train(cfg)
    assert result["skipped_files"] == 3
    assert _scalar_values(run, "train/skipped_files")[-1] == 3.0
    warned = [r.getMessage() for r in caplog.records if "skipping bad file" in r.getMessage()]
    for name in ("zero_byte.png", "truncated.png", "text_named_png.png"):
        assert sum(name in w for w in warned) == 1, (name, warned)


def test_overfit_image_and_mask_are_checked_at_setup(tmp_path):
    bad = _make_bad(tmp_path, "truncated")
    with pytest.raises(ImageReadError, match=r"truncated\.png: not a readable image \(truncated"):
        WNetDataModule(DataConf(kind="overfit", path=str(bad))).setup("fit")

    Image.fromarray(_good_rgb(16, 16)).save(tmp_path / "frame.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[3, 3] = 9
    Image.fromarray(mask, mode="L").save(tmp_path / "frame_mask.png")
    (tmp_path / "classes.txt").write_text("0 sky\n1 ground\n")  # next to the mask
    conf = DataConf(
        kind="overfit", path=str(tmp_path / "frame.png"), mask_path=str(tmp_path / "frame_mask.png")
    )
    with pytest.raises(ImageReadError, match=r"frame_mask\.png: mask has ids \[9\] not declared"):
        WNetDataModule(conf).setup("fit")
