"""Datasets of screenshots (and optional ground-truth masks, for validation metrics only).

Every sample is a dict: ``image`` float ``(C, H, W)`` in [0, 1], ``mask`` int64 ``(H, W)`` (255 =
ignore; all 255 when there is no mask), ``index``, ``name`` and ``skipped``.

Bad files: an unreadable image, or a mask that does not fit its image (size, mode, ids outside
``classes.txt``), is skipped (``on_bad_file="skip"``: the next file is served instead, the file is
never retried, and it is counted in ``skipped``) or raises (``"fail"``). In the main process the
dataset logs one warning per skipped file. Inside a DataLoader worker it cannot reach the main
process's count, so it hands ``"<path>\t<reason>"`` lines to the consumer in the sample's
``skipped`` string (empty otherwise), and :class:`wnet_seg.callbacks.SkippedFilesMonitor` warns
once per file and logs the count.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from wnet_seg.data.io import IGNORE_ID, ImageReadError, list_images, load_mask, load_rgb
from wnet_seg.data.transforms import center_crop, nearest_upscale, palette_jitter, train_transform

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset that cannot be used at all (e.g. no readable image); the message says why."""


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``uint8 (H, W, C)`` -> float ``(C, H, W)`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def find_mask(image_path: Path, image_root: Path, masks_dir: Path | None) -> Path | None:
    """The mask with the image's relative path (any extension -> ``.png``) under ``masks_dir``."""
    if masks_dir is None:
        return None
    rel = image_path.relative_to(image_root) if image_root.is_dir() else Path(image_path.name)
    cand = (masks_dir / rel).with_suffix(".png")
    return cand if cand.is_file() else None


def resolve_image_root(path: str | os.PathLike, masks_dir: str | None) -> tuple[Path, Path | None]:
    """``(image_root, masks_dir)``: a dataset folder with ``images/`` and ``masks/`` is understood."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"data path does not exist: {root}")
    if root.is_dir() and (root / "images").is_dir():
        masks = (
            Path(masks_dir)
            if masks_dir
            else (root / "masks" if (root / "masks").is_dir() else None)
        )
        return root / "images", masks
    masks = Path(masks_dir) if masks_dir else None
    if masks is None and root.is_dir() and (root / "masks").is_dir():
        masks = root / "masks"
    return root, masks


class ImageDataset(Dataset):
    """Images (with optional masks) served as training crops or full validation frames.

    Args:
        files: image paths. ``mask_files``: matching mask paths or ``None`` entries.
        train: random crops/flips (``aug``) of ``crop_size``; otherwise the full frame
            (centre-cropped to ``crop_size`` only when ``eval_crop`` is set).
        repeat: serve the list this many times per epoch (the overfit dataset).
        scale: integer nearest-neighbour upscale; ``native_scale``: undo a detected (integer or
            not, nearest or bilinear)
            upscale first so the model sees the game's own pixel grid.
    """

    def __init__(
        self,
        files: Sequence[str | os.PathLike],
        mask_files: Sequence[str | os.PathLike | None] | None = None,
        *,
        train: bool,
        crop_size: int | None = None,
        aug: bool = True,
        repeat: int = 1,
        scale: int = 1,
        native_scale: bool = False,
        eval_crop: int | None = None,
        on_bad_file: str = "skip",
        seed: int = 0,
        valid_ids: Collection[int] | None = None,
        cache: bool = False,
        augment: Sequence[str] = (),
        augment_prob: float = 0.0,
        colour_jitter: float = 0.0,
    ) -> None:
        self.files = [Path(f) for f in files]
        if not self.files:
            raise DatasetError("dataset has no image files")
        if on_bad_file not in ("skip", "fail"):
            raise ValueError(f"on_bad_file must be 'skip' or 'fail', got {on_bad_file!r}")
        self.mask_files = [
            None if m is None else Path(m) for m in (mask_files or [None] * len(self.files))
        ]
        if len(self.mask_files) != len(self.files):
            raise ValueError("mask_files must match files one to one")
        self.train, self.crop_size, self.aug = train, crop_size, aug
        self.repeat, self.scale, self.native_scale = repeat, scale, native_scale
        self.eval_crop, self.on_bad_file, self.seed = eval_crop, on_bad_file, seed
        self.valid_ids = None if valid_ids is None else frozenset(valid_ids)
        # Files found bad in this process: path -> reason. Never retried.
        self.skip_reasons: dict[Path, str] = {}
        # Decoded (image, mask) per file when ``cache`` (frames are small; read once).
        self._cache: dict[Path, tuple[np.ndarray, np.ndarray | None]] | None = {} if cache else None
        from wnet_seg.data.degrade import parse_degradation

        self.augment = [parse_degradation(a) for a in augment]
        self.augment_prob, self.colour_jitter = augment_prob, colour_jitter

    @property
    def skipped(self) -> set[Path]:
        """Files skipped so far in this process (a worker's skips reach the trainer via samples)."""
        return set(self.skip_reasons)

    def __len__(self) -> int:
        return len(self.files) * self.repeat

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Read file ``i`` (modulo the list) as (uint8 image, mask or None), at model resolution."""
        i %= len(self.files)
        key = self.files[i]
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        pair = self._read(i)
        if self._cache is not None:
            self._cache[key] = pair
        return pair

    def _read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        path = self.files[i]
        image = load_rgb(path)
        mpath = self.mask_files[i]
        mask = (
            load_mask(mpath, expected_hw=image.shape[:2], valid_ids=self.valid_ids)
            if mpath is not None
            else None
        )
        if self.native_scale:  # the pipeline's own detector (wnet_seg.grid), scale only
            from wnet_seg import grid as gridlib

            grid = gridlib.detect(image, gridlib.GridConfig(tile="off"))
            if grid.scale != 1.0:
                image = gridlib.to_native(image, grid)
                if mask is not None:
                    mask = gridlib.sample_native(mask, grid)
        return nearest_upscale(image, mask, self.scale)

    def _read_with_policy(self, index: int) -> tuple[int, np.ndarray, np.ndarray | None, list[str]]:
        """File ``index`` or, under the skip policy, the next readable one; plus new skip reports."""
        n = len(self.files)
        in_worker = get_worker_info() is not None
        reports: list[str] = []
        for step in range(n):
            i = (index + step) % n
            path = self.files[i]
            if path in self.skip_reasons:
                continue
            try:
                image, mask = self.load(i)
                return i, image, mask, reports
            except ImageReadError as err:
                if self.on_bad_file == "fail":
                    raise ImageReadError(
                        f"{err} [data.on_bad_file=fail; set data.on_bad_file=skip to skip such "
                        "files]"
                    ) from None
                self.skip_reasons[path] = str(err)
                if in_worker:
                    reports.append(f"{path}\t{err}")
                else:
                    log.warning(
                        "skipping bad file (%d skipped so far): %s", len(self.skip_reasons), err
                    )
        raise DatasetError(
            f"no readable image among the {n} files of this dataset (first: {self.files[0]}); "
            "every file was skipped as unreadable"
        )

    def __getitem__(self, index: int) -> dict:
        i, image, mask, reports = self._read_with_policy(index % len(self.files))
        if self.train:
            # Torch's RNG is seeded by seed_everything and re-seeded per worker and epoch by the
            # DataLoader, so crops are reproducible for a seed yet differ between epochs.
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
            image, mask = train_transform(
                image, mask, crop_size=self.crop_size, aug=self.aug, rng=rng
            )
            if self.augment and rng.random() < self.augment_prob:
                image = self.augment[int(rng.integers(len(self.augment)))](image)[0]
            if rng.random() < self.colour_jitter:
                image = palette_jitter(image, rng)
        elif self.eval_crop is not None:
            image, mask = center_crop(image, mask, self.eval_crop)
        if mask is None:
            mask = np.full(image.shape[:2], IGNORE_ID, dtype=np.uint8)
        return {
            "image": to_tensor(image),
            "mask": torch.from_numpy(np.ascontiguousarray(mask)).long(),
            "index": index,
            "name": str(self.files[i]),
            "skipped": "\n".join(reports),
        }


def screenshot_files(
    path: str | os.PathLike, masks_dir: str | None
) -> tuple[list[Path], list[Path | None]]:
    """Images under ``path`` (recursive, skipping a ``masks`` folder) and their masks, if any."""
    root, masks = resolve_image_root(path, masks_dir)
    files = [f for f in list_images(root) if masks is None or masks not in f.parents]
    if root.is_dir():
        files = [f for f in files if "masks" not in f.relative_to(root).parts[:1]]
    if not files:
        raise FileNotFoundError(f"no images (png/jpg/bmp/gif/webp) under {root}")
    return files, [find_mask(f, root, masks) for f in files]


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/val split of ``n`` items; at least one of each when ``n >= 2``."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def first_readable(files: Sequence[Path], what: str = "image files") -> Path:
    """The first file that loads; :class:`DatasetError` when none does (checked once at set-up).

    ``what`` names the set in the message, e.g. ``"training images under shots/"``.
    """
    errors = []
    for f in files:
        try:
            load_rgb(f)
            return f
        except ImageReadError as err:
            errors.append(str(err))
    raise DatasetError(
        f"none of the {len(files)} {what} could be read; first errors: " + "; ".join(errors[:3])
    )


def declared_class_ids(masks: str | os.PathLike | None) -> frozenset[int] | None:
    """Ids declared by the ``classes.txt`` inside or next to a mask folder (or mask file), if any."""
    from wnet_seg.data.io import find_classes_file, read_classes

    path = find_classes_file(masks)
    return None if path is None else frozenset(read_classes(path))
