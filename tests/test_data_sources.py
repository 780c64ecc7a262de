"""Training on several games: balanced folders, validation folders of several games, augmentation."""

from __future__ import annotations

import numpy as np
from PIL import Image

from wnet_seg.config import DataConf
from wnet_seg.data.datamodule import WNetDataModule
from wnet_seg.data.io import save_mask
from wnet_seg.data.transforms import palette_jitter


def _folder(root, n: int, classes: str | None = None, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    for i in range(n):
        rgb = rng.integers(0, 4, (24, 24, 1)).repeat(3, 2).astype(np.uint8) * 60
        Image.fromarray(rgb).save(root / "images" / f"{i}.png")
        if classes is not None:
            save_mask((rgb[..., 0] > 100).astype(np.uint8), root / "masks" / f"{i}.png")
    if classes is not None:
        (root / "classes.txt").write_text(classes)
    return str(root)


def test_balance_repeats_smaller_folders_and_val_folders_keep_their_classes(tmp_path):
    big = _folder(tmp_path / "big", 6)
    small = _folder(tmp_path / "small", 2, seed=1)
    val_a = _folder(tmp_path / "va", 2, "0 dark\n1 bright\n", seed=2)
    val_b = _folder(tmp_path / "vb", 3, "0 floor\n1 wall\n", seed=3)
    conf = DataConf(
        kind="screenshots", path=big, extra_paths=[small], val_path=val_a,
        extra_val_paths=[val_b], balance=True, crop_size=16,
    )  # fmt: skip
    dm = WNetDataModule(conf)
    dm.setup("fit")
    names = [f.parent.parent.name for f in dm.train_set.files]
    assert names.count("big") == names.count("small") == 6  # 2 frames repeated 3 times
    assert len(dm.val_set) == 5 and {s["name"].split("/")[-3] for s in dm.val_set} == {"va", "vb"}
    assert all((s["mask"] != 255).any() for s in dm.val_set)
    unbalanced = WNetDataModule(DataConf(kind="screenshots", path=big, extra_paths=[small]))
    unbalanced.setup("fit")
    assert len(unbalanced.train_set) + len(unbalanced.val_set) == 8


def test_augmentations_change_pixels_never_masks(tmp_path):
    folder = _folder(tmp_path / "a", 2, "0 dark\n1 bright\n")
    plain = WNetDataModule(
        DataConf(kind="screenshots", path=folder, val_fraction=0, crop_size=None, aug=False)
    )
    plain.setup("fit")
    jittered = WNetDataModule(
        DataConf(
            kind="screenshots", path=folder, val_fraction=0, crop_size=None, aug=False,
            augment=["jpeg:50"], augment_prob=1.0, colour_jitter=1.0,
        )
    )  # fmt: skip
    jittered.setup("fit")
    a, b = plain.train_set[0], jittered.train_set[0]
    assert a["name"] == b["name"] and (a["mask"] == b["mask"]).all()
    assert not np.allclose(a["image"].numpy(), b["image"].numpy())


def test_palette_jitter_keeps_equal_colours_equal():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image[4:] = image[:4]  # two copies of the same texture
    out = palette_jitter(image, np.random.default_rng(1))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[4:], out[:4]) and not np.array_equal(out, image)
