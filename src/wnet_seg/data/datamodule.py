"""LightningDataModule serving the overfit image or a folder of screenshots."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader

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
        sources = [(files, masks)]
        for extra in c.extra_paths:  # more (unlabelled) training frames, e.g. other games
            more, _ = screenshot_files(extra, None)
            sources.append((more, [None] * len(more)))
        if c.balance:  # every folder as many samples per epoch as the largest one
            largest = max(len(f) for f, _ in sources)
            sources = [(_repeat(f, largest), _repeat(m, largest)) for f, m in sources]
        files = [f for fs, _ in sources for f in fs]
        masks = [m for _, ms in sources for m in ms]
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
            **self._augment(),
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

    def _augment(self) -> dict:
        c = self.cfg
        return dict(augment=c.augment, augment_prob=c.augment_prob, colour_jitter=c.colour_jitter)

    def _setup_separate_val(self, files: list, masks: list, common: dict) -> None:
        """Train on every image under ``path``; validate on ``val_path`` (e.g. other worlds/games)."""
        c = self.cfg
        first_readable(files, f"image files under {c.path}")
        self.train_set = ImageDataset(
            files, masks, train=True, crop_size=c.crop_size, aug=c.aug, **common, **self._augment()
        )
        sets = []
        for folder in [c.val_path, *c.extra_val_paths]:
            vfiles, vmasks = screenshot_files(folder, None)
            first_readable(vfiles, f"validation images under {folder}")
            if c.max_val_images is not None:
                vfiles, vmasks = vfiles[: c.max_val_images], vmasks[: c.max_val_images]
            ids = declared_class_ids(resolve_image_root(folder, None)[1])  # each game its own
            sets.append(ImageDataset(vfiles, vmasks, train=False, **dict(common, valid_ids=ids)))
        self.val_set = sets[0] if len(sets) == 1 else ImageDatasets(sets)
        log.info(
            "screenshots: %d train images under %s (+%d folders), %d val under %s (+%d folders)",
            len(files),
            c.path,
            len(c.extra_paths),
            len(self.val_set),
            c.val_path,
            len(c.extra_val_paths),
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


def _repeat(items: list, n: int) -> list:
    """``items`` cycled to length ``n`` (``n >= len(items)``)."""
    return [items[i % len(items)] for i in range(n)]


class ImageDatasets(ConcatDataset):
    """Several :class:`ImageDataset` s as one (e.g. validation folders of several games, each
    checked against its own ``classes.txt``); skipped files are reported for all of them."""

    @property
    def skip_reasons(self) -> dict:
        return {k: v for d in self.datasets for k, v in d.skip_reasons.items()}

    @property
    def skipped(self) -> set:
        return set(self.skip_reasons)
