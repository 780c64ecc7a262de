"""LightningModule: a W-Net trained with the soft N-cut and the reconstruction loss.

Schedules (``loss.schedule``):
- ``alternating`` (the paper): for every batch, one encoder step on the soft N-cut, then one step
  of the whole W-Net on the reconstruction loss (two optimizers, manual optimization). Lightning
  counts every optimizer step, so ``global_step`` (and ``trainer.max_steps``) advance by 2 a batch.
- ``joint``: one optimizer on ``ncut_weight * ncut + recon_weight * recon``; 1 step a batch.

Hyperparameters are plain dicts (model, loss, optim, norm) so checkpoints load with
``weights_only=True`` and rebuild the network without this code's classes being pickled.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from wnet_seg import __version__
from wnet_seg.checkpoint import CHECKPOINT_FORMAT
from wnet_seg.losses.objective import NCutObjective, NCutSettings
from wnet_seg.losses.reconstruction import reconstruction_loss
from wnet_seg.models.wnet import WNet, WNetConfig
from wnet_seg.palette import colorize

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message names the term and the step."""


class WNetModule(pl.LightningModule):
    def __init__(
        self,
        model: dict[str, Any],
        loss: dict[str, Any],
        optim: dict[str, Any],
        norm: dict[str, Any],
        image_log_every_n_steps: int = 50,
        channels_last: bool = False,
        compile: bool = False,
        val_tiles: bool = True,
        format: int = CHECKPOINT_FORMAT,
        wnet_seg_version: str = __version__,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.net = WNet(WNetConfig(**model))
        self.loss_cfg = dict(loss)
        self.ncut = NCutObjective(
            NCutSettings(
                radius=loss.get("radius", 5.0),
                sigma_i=loss.get("sigma_i", 10.0),
                sigma_x=loss.get("sigma_x", 4.0),
                features=loss.get("features", "intensity"),
                feature_params=dict(loss.get("feature_params") or {}),
            )
        )
        self.register_buffer("mean", torch.tensor(norm["mean"]).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(norm["std"]).view(1, -1, 1, 1), persistent=False)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self._channels_last = channels_last
        if compile:
            # Compile the encoder and decoder U-Nets in place (``nn.Module.compile``): every call,
            # ``net.encode`` in the alternating schedule included, runs compiled, and parameter
            # names stay ``net.encoder.*``/``net.decoder.*``, so checkpoints load either way.
            self.net.encoder.compile()
            self.net.decoder.compile()
        self._val_meter = None
        self._val_tiles_meter = None
        self._val_conf: Tensor | None = None

    # ---- helpers -------------------------------------------------------------------------
    @property
    def schedule(self) -> str:
        return self.loss_cfg.get("schedule", "alternating")

    def normalize(self, image01: Tensor) -> Tensor:
        x = (image01 - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self._channels_last else x

    def forward(self, image01: Tensor) -> tuple[Tensor, Tensor]:
        """``(probs, recon)`` for images in [0, 1]; ``recon`` is in normalized units."""
        return self.net(self.normalize(image01))

    def _finite(self, value: Tensor, term: str) -> bool:
        if torch.isfinite(value).all():
            return True
        msg = f"non-finite {term} loss ({value.item()}) at global step {self.global_step}"
        if self.loss_cfg.get("nonfinite", "raise") == "skip":
            log.warning("%s; skipping this batch", msg)
            self.log("train/skipped_batches", 1.0, reduce_fx="sum", on_step=False, on_epoch=True)
            return False
        raise NonFiniteLossError(msg + " (set loss.nonfinite=skip to skip such batches)")

    def _step(self, opt, loss: Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        clip = self.hparams.optim.get("grad_clip")
        if clip:
            self.clip_gradients(opt, gradient_clip_val=clip, gradient_clip_algorithm="norm")
        opt.step()

    # ---- training ------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> None:
        image = batch["image"]
        x = self.normalize(image)
        w_ncut = float(self.loss_cfg.get("ncut_weight", 1.0))
        w_rec = float(self.loss_cfg.get("recon_weight", 1.0))
        net = self.net
        if self.schedule == "alternating":
            opt_enc, opt_all = self.optimizers()
            probs = net.encode(x)
            ncut, extra = self.ncut(probs, image * 255.0)
            if not self._finite(ncut, "ncut"):
                return
            self._step(opt_enc, w_ncut * ncut)
            probs, recon = net(x)
            rec = reconstruction_loss(recon.float(), x.float())
            if not self._finite(rec, "reconstruction"):
                return
            self._step(opt_all, w_rec * rec)
        else:
            opt = self.optimizers()
            probs, recon = net(x)
            ncut, extra = self.ncut(probs, image * 255.0)
            rec = reconstruction_loss(recon.float(), x.float())
            if not (self._finite(ncut, "ncut") and self._finite(rec, "reconstruction")):
                return
            self._step(opt, w_ncut * ncut + w_rec * rec)
        bs = image.shape[0]
        self.log("train/ncut", ncut.detach(), prog_bar=True, batch_size=bs)
        self.log("train/recon", rec.detach(), prog_bar=True, batch_size=bs)
        self.log("train/loss", (w_ncut * ncut + w_rec * rec).detach(), batch_size=bs)
        for key, value in extra.items():
            if key != "ncut":
                self.log(f"train/{key}", value, batch_size=bs)
        if (batch_idx % self.hparams.image_log_every_n_steps) == 0:
            self.log_panel("train/panel", image, probs, recon)

    def on_train_epoch_start(self) -> None:
        self._sync_schedulers(self.current_epoch)

    def on_train_epoch_end(self) -> None:
        self._sync_schedulers(self.current_epoch + 1)

    def _sync_schedulers(self, epochs_done: int) -> None:
        """Step each (per-epoch) LR scheduler until it has stepped once per finished epoch.

        Idempotent, so resuming stays exact: Lightning re-runs ``on_train_epoch_end`` when it resumes
        from a checkpoint saved at epoch end, and skips it when it resumes from one saved after the
        epoch's last batch; a plain ``step()`` here would decay the LR once too often or too rarely.
        """
        for sched in self._schedulers():
            while sched.last_epoch < epochs_done:
                sched.step()

    def _schedulers(self) -> list:
        s = self.lr_schedulers()
        if s is None:
            return []
        return s if isinstance(s, list) else [s]

    # ---- validation ----------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        from wnet_seg.metrics import SegmentationMeter

        self._val_meter = SegmentationMeter()
        self._val_tiles_meter = SegmentationMeter()
        self._val_signature_ids = None
        self._val_conf = torch.zeros(
            self.net.num_classes, 256, dtype=torch.float64, device=self.device
        )

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        image, mask = batch["image"], batch["mask"]
        probs, recon = self(image)
        x = self.normalize(image)
        ncut, _ = self.ncut(probs.float(), image * 255.0)
        rec = reconstruction_loss(recon.float(), x.float())
        w_ncut = float(self.loss_cfg.get("ncut_weight", 1.0))
        w_rec = float(self.loss_cfg.get("recon_weight", 1.0))
        bs = image.shape[0]
        self.log("val/ncut", ncut, sync_dist=True, batch_size=bs)
        self.log("val/recon", rec, sync_dist=True, batch_size=bs)
        self.log("val/loss", w_ncut * ncut + w_rec * rec, sync_dist=True, batch_size=bs)
        pred = probs.argmax(1)
        valid = mask != 255
        if valid.any():
            idx = pred[valid] * 256 + mask[valid]
            self._val_conf += torch.bincount(idx, minlength=self._val_conf.numel()).view_as(
                self._val_conf
            )
            frames = (image * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
            for p, g, name, frame in zip(
                pred.cpu().numpy(), mask.cpu().numpy(), batch["name"], frames, strict=True
            ):
                if (g != 255).any():
                    self._val_meter.update(p, g.astype(np.uint8), name)
                    if self.hparams.get("val_tiles", False):
                        self._val_tiles_meter.update(self._pooled(p, frame), g.astype(np.uint8))
        if batch_idx == 0:
            self.log_panel("val/panel", image, probs, recon)

    @torch.no_grad()
    def _pooled(self, labels: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """Tile pooling of one validation frame, as :class:`wnet_seg.inference.Segmenter` does."""
        from wnet_seg.postprocess.tiles import SignatureIds, TileConfig, pool_out_of_context

        if self._val_signature_ids is None:
            self._val_signature_ids = SignatureIds(self.net.num_classes, max_id=None)

        def segment_frames(frames: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float() / 255.0
            return self.net.encode(self.normalize(x)).argmax(1).cpu().numpy()

        return pool_out_of_context(
            labels, frame, TileConfig(), self._val_signature_ids, segment_frames
        )

    def on_validation_epoch_end(self) -> None:
        if self._val_meter is None or self._val_conf is None:
            return
        n = torch.tensor(float(self._val_meter.n_images), device=self.device)
        n_all = (
            self.trainer.strategy.reduce(n.clone(), reduce_op="sum")
            if self.trainer.world_size > 1
            else n
        )
        if n_all.item() == 0:
            return
        stats = self._val_meter.compute() if self._val_meter.n_images else {}
        for key in ("miou", "pixel_acc", "covering", "pri", "vi"):
            local = torch.tensor(stats.get(key, 0.0) * self._val_meter.n_images, device=self.device)
            total = (
                self.trainer.strategy.reduce(local, reduce_op="sum")
                if self.trainer.world_size > 1
                else local
            )
            self.log(f"val/{key}", (total / n_all).float(), rank_zero_only=False)
        if self.hparams.get("val_tiles", False) and self._val_tiles_meter is not None:
            # Every rank logs the same reduced value (a rank with no frame adds 0 to the sums).
            stats_t = self._val_tiles_meter.compute() if self._val_tiles_meter.n_images else {}
            local = torch.tensor(
                stats_t.get("miou", 0.0) * self._val_tiles_meter.n_images, device=self.device
            )
            if self.trainer.world_size > 1:
                local = self.trainer.strategy.reduce(local, reduce_op="sum")
            self.log("val/miou_tiles", (local / n_all).float(), rank_zero_only=False)
        conf = self._val_conf
        if self.trainer.world_size > 1:
            conf = self.trainer.strategy.reduce(conf, reduce_op="sum")
        self.log("val/miou_dataset", float(_dataset_miou(conf.cpu().numpy())))

    # ---- images --------------------------------------------------------------------------
    @torch.no_grad()
    def log_panel(self, tag: str, image: Tensor, probs: Tensor, recon: Tensor) -> None:
        """TensorBoard panel: input | reconstruction | colorized argmax segmentation (rank 0)."""
        if self.global_rank != 0 or self.logger is None:
            return
        experiment = getattr(self.logger, "experiment", None)
        if experiment is None or not hasattr(experiment, "add_image"):
            return
        panel = make_panel(image[0], recon[0] * self.std[0] + self.mean[0], probs[0])
        experiment.add_image(tag, panel, self.global_step, dataformats="HWC")

    # ---- optimizers ----------------------------------------------------------------------
    def configure_optimizers(self):
        o = self.hparams.optim

        def make(params):
            if o["name"] == "sgd":
                return torch.optim.SGD(
                    params,
                    lr=o["lr"],
                    momentum=o.get("momentum", 0.9),
                    weight_decay=o.get("weight_decay", 0.0),
                )
            cls = torch.optim.AdamW if o["name"] == "adamw" else torch.optim.Adam
            return cls(params, lr=o["lr"], weight_decay=o.get("weight_decay", 0.0))

        if self.schedule == "alternating":
            opts = [make(self.net.encoder.parameters()), make(self.net.parameters())]
        else:
            opts = [make(self.net.parameters())]
        step = o.get("lr_step_epochs")
        if not step:
            return opts
        scheds = [
            torch.optim.lr_scheduler.StepLR(op, step_size=step, gamma=o.get("lr_gamma", 0.1))
            for op in opts
        ]
        return opts, scheds


def _dataset_miou(conf: np.ndarray) -> float:
    """Dataset-level Hungarian mIoU from a dense (K pred x 256 GT) confusion matrix."""
    from wnet_seg.metrics import _hungarian_mean_iou

    conf = conf[:, :255]
    cols = conf.sum(0) > 0
    if not cols.any():
        return math.nan
    rows = conf.sum(1) > 0
    return _hungarian_mean_iou(conf[rows][:, cols])[0]


def make_panel(image01: Tensor, recon01: Tensor, probs: Tensor) -> np.ndarray:
    """``uint8 (H, 3W, 3)``: image | reconstruction | colorized argmax segmentation."""
    img = (image01.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    rec = (recon01.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    if img.shape[2] == 1:
        img, rec = img.repeat(3, 2), rec.repeat(3, 2)
    seg = colorize(probs.argmax(0).cpu().numpy().astype(np.uint8))
    return np.concatenate([img[..., :3], rec[..., :3], seg], axis=1)
