"""LightningDataModule serving the overfit image or a folder of screenshots."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from wnet_seg.config import DataConf
from wnet_seg.data.datasets import (
    DatasetError,
    ImageDataset,
    declared_class_ids,
    first_readable,
    resolve_image_root,
    screenshot_files,
    split_indices,
)
from wnet_seg.data.io import load_mask, load_rgb

log = logging.getLogger(__name__)


class WNetDataModule(pl.LightningDataModule):
    """Builds train/val datasets from a :class:`DataConf`.

    ``batch_size`` in the config is the global batch: each of ``world_size`` processes loads
    ``batch_size // world_size`` (Lightning's DDP adds the distributed sampler that shards the data).
    """

    def __init__(self, cfg: DataConf, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.seed = seed
        self.train_set: ImageDataset | None = None
        self.val_set: ImageDataset | None = None

    @property
    def per_device_batch_size(self) -> int:
        world = self.trainer.world_size if self.trainer is not None else 1
        if self.cfg.batch_size % world:
            log.warning(
                "data.batch_size=%d is not divisible by %d processes; using %d per process",
                self.cfg.batch_size,
                world,
                max(1, self.cfg.batch_size // world),
            )
        return max(1, self.cfg.batch_size // world)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        c = self.cfg
        common = dict(
            scale=c.scale,
            native_scale=c.native_scale,
            on_bad_file=c.on_bad_file,
            seed=self.seed,
            cache=c.cache,
        )
        if c.kind == "overfit":
            path = Path(c.path)
            image = load_rgb(path)  # fail at once, naming the file, if the one image is unreadable
            if c.mask_path:
                ids = declared_class_ids(c.mask_path)
                load_mask(c.mask_path, expected_hw=image.shape[:2], valid_ids=ids)
                common["valid_ids"] = ids
            files, masks = [path], [c.mask_path]
            self.train_set = ImageDataset(
                files,
                masks,
                train=True,
                crop_size=c.crop_size,
                aug=c.aug,
                repeat=c.length,
                **common,
            )
            self.val_set = ImageDataset(files, masks, train=False, **common)
            return
        files, masks = screenshot_files(c.path, c.masks_dir)
        if c.max_train_images is not None:
            files, masks = files[: c.max_train_images], masks[: c.max_train_images]
        common["valid_ids"] = declared_class_ids(resolve_image_root(c.path, c.masks_dir)[1])
        for extra in c.extra_paths:  # more (unlabelled) training frames, e.g. other games
            more, _ = screenshot_files(extra, None)
            files, masks = files + more, masks + [None] * len(more)
        if c.val_path:
            self._setup_separate_val(files, masks, common)
            return
        train_idx, val_idx = split_indices(len(files), c.val_fraction, c.split_seed)
        # No readable (training) image at all: fail now, naming the first errors (each check stops
        # at the first readable file, so this costs a read or two on a healthy dataset).
        first_readable(files, f"image files under {c.path}")
        first_readable([files[i] for i in train_idx], f"training images under {c.path}")
        if c.max_val_images is not None:
            val_idx = val_idx[: c.max_val_images]
        self.train_set = ImageDataset(
            [files[i] for i in train_idx],
            [masks[i] for i in train_idx],
            train=True,
            crop_size=c.crop_size,
            aug=c.aug,
            **common,
        )
        val = val_idx or train_idx[:1]
        try:
            first_readable([files[i] for i in val])
        except DatasetError as err:  # validation would fail mid-run: use a readable train image
            fallback = files.index(first_readable([files[i] for i in train_idx]))
            log.warning("no readable validation image (%s); validating on %s", err, files[fallback])
            val = [fallback]
        self.val_set = ImageDataset(
            [files[i] for i in val], [masks[i] for i in val], train=False, **common
        )
        log.info("screenshots: %d train / %d val images under %s", len(train_idx), len(val), c.path)

    def _setup_separate_val(self, files: list, masks: list, common: dict) -> None:
        """Train on every image under ``path``; validate on ``val_path`` (e.g. other worlds/games)."""
        c = self.cfg
        first_readable(files, f"image files under {c.path}")
        self.train_set = ImageDataset(
            files, masks, train=True, crop_size=c.crop_size, aug=c.aug, **common
        )
        vfiles, vmasks = screenshot_files(c.val_path, None)
        first_readable(vfiles, f"validation images under {c.val_path}")
        if c.max_val_images is not None:
            vfiles, vmasks = vfiles[: c.max_val_images], vmasks[: c.max_val_images]
        vcommon = dict(
            common, valid_ids=declared_class_ids(resolve_image_root(c.val_path, None)[1])
        )
        self.val_set = ImageDataset(vfiles, vmasks, train=False, **vcommon)
        log.info(
            "screenshots: %d train images under %s, %d val under %s",
            len(files),
            c.path,
            len(vfiles),
            c.val_path,
        )

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None
        self._decorrelate_ranks()
        return DataLoader(
            self.train_set,
            batch_size=self.per_device_batch_size,
            shuffle=True,
            num_workers=self.cfg.num_workers,
            drop_last=len(self.train_set) >= self.per_device_batch_size,
            persistent_workers=self.cfg.num_workers > 0,
        )

    def _decorrelate_ranks(self) -> None:
        """Give each DDP process its own torch RNG stream (seed + rank).

        Every process runs ``seed_everything(seed)``, and with ``num_workers=0`` random crops and
        flips are drawn in the main process, so without this all ranks would cut the same crops
        (and draw the same dropout masks) from their different samples. Workers (``num_workers>0``)
        are already seeded per rank by Lightning.
        """
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return
        torch.manual_seed(self.seed + 1_000_003 * trainer.global_rank)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None
        return DataLoader(
            self.val_set,
            batch_size=self.cfg.val_batch_size,
            shuffle=False,
            num_workers=self.cfg.num_workers,
        )

    @property
    def skipped_files(self) -> int:
        return sum(len(d.skipped) for d in (self.train_set, self.val_set) if d is not None)
