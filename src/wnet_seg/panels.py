"""Image panels of a run: image | reconstruction | segmentation, in TensorBoard and as PNGs.

:class:`PanelLogger` (a Lightning callback) logs a panel of the first frame of every
``every_n_steps``-th training batch and of the first validation batch, from what the module's
``training_step``/``validation_step`` return (``probs`` and ``recon``); :func:`write_segmentations`
writes panels and raw label PNGs of the first validation frames at the end of a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor

from wnet_seg.data.io import save_mask
from wnet_seg.models.wnet import WNet
from wnet_seg.palette import colorize


def _uint8(image01: Tensor) -> np.ndarray:
    img = (image01.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return img.repeat(3, 2) if img.shape[2] == 1 else img[..., :3]


def make_panel(image01: Tensor, recon01: Tensor, probs: Tensor) -> np.ndarray:
    """``uint8 (H, 3W, 3)``: image | reconstruction | colorized argmax segmentation."""
    seg = colorize(probs.argmax(0).cpu().numpy().astype(np.uint8))
    return np.concatenate([_uint8(image01), _uint8(recon01), seg], axis=1)


class PanelLogger(pl.Callback):
    """TensorBoard panels ``train/panel`` (every ``every_n_steps`` batches) and ``val/panel``."""

    def __init__(self, every_n_steps: int = 50) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx % self.every_n_steps == 0:
            self._log(trainer, pl_module, "train/panel", batch, outputs)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if batch_idx == 0 and not trainer.sanity_checking:
            self._log(trainer, pl_module, "val/panel", batch, outputs)

    @torch.no_grad()
    def _log(self, trainer, pl_module, tag: str, batch: Any, outputs: Any) -> None:
        if not isinstance(outputs, dict) or outputs.get("probs") is None:
            return
        experiment = getattr(trainer.logger, "experiment", None)
        if trainer.global_rank != 0 or not hasattr(experiment, "add_image"):
            return
        net: WNet = pl_module.net
        recon01 = net.denormalize(outputs["recon"][:1].float())[0]
        panel = make_panel(batch["image"][0], recon01, outputs["probs"][0])
        experiment.add_image(tag, panel, trainer.global_step, dataformats="HWC")


@torch.no_grad()
def write_segmentations(net: WNet, dataset, out: Path, limit: int) -> list[Path]:
    """Panels and raw label PNGs (``<i>_<name>_panel.png``/``_labels.png``) of the first
    ``limit`` frames of ``dataset`` (samples with an ``image`` in [0, 1] and a ``name``)."""
    if limit <= 0 or dataset is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    net.eval()
    device = net.mean.device
    written = []
    for i in range(min(limit, len(dataset))):
        sample = dataset[i]
        image = sample["image"][None].to(device)
        probs, recon = net(net.normalize(image))
        stem = f"{i:03d}_{Path(sample['name']).stem}"
        Image.fromarray(make_panel(image[0], net.denormalize(recon)[0], probs[0])).save(
            out / f"{stem}_panel.png"
        )
        save_mask(probs[0].argmax(0).cpu().numpy().astype(np.uint8), out / f"{stem}_labels.png")
        written.append(out / f"{stem}_panel.png")
    return written
