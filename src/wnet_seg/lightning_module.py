"""LightningModule: a W-Net trained with the soft N-cut and the reconstruction loss.

A thin wrapper: training is :class:`wnet_seg.training.TrainStep` (one step for both schedules,
with Lightning's backward and clipping), validation scores the frames through the segmentation
pipeline (:class:`wnet_seg.inference.Segmenter`, the same path as ``wnet-seg-segment``) into
:class:`wnet_seg.metrics.ValidationMetrics`, panels are drawn by :class:`wnet_seg.panels.PanelLogger`.
Lightning counts every optimizer step, so with the alternating schedule ``global_step`` (and
``trainer.max_steps``) advance by 2 a batch.

Hyperparameters are stored as plain dicts (model, loss, optim, norm, format) so checkpoints load
with ``weights_only=True``; :meth:`WNetModule.from_checkpoint` rebuilds the typed settings once.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytorch_lightning as pl
import torch

from wnet_seg import __version__
from wnet_seg.checkpoint import CHECKPOINT_FORMAT, build_wnet, read_settings
from wnet_seg.config import LossConf, OptimConf
from wnet_seg.grid import GridConfig
from wnet_seg.inference import Segmenter, SegmentOptions
from wnet_seg.losses.objective import NCutObjective
from wnet_seg.metrics import ValidationMetrics
from wnet_seg.models.wnet import WNet, WNetConfig
from wnet_seg.postprocess.tiles import SignatureIds, TileConfig
from wnet_seg.training import TrainStep


class WNetModule(pl.LightningModule):
    def __init__(
        self,
        model: WNetConfig,
        loss: LossConf,
        optim: OptimConf,
        norm: dict[str, list[float]],
        *,
        net: WNet | None = None,
        channels_last: bool = False,
        compile: bool = False,
        val_tiles: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            {
                "format": CHECKPOINT_FORMAT,
                "wnet_seg_version": __version__,
                "model": asdict(model),
                "loss": asdict(loss),
                "optim": asdict(optim),
                "norm": {k: list(v) for k, v in norm.items()},
                "val_tiles": val_tiles,
            }
        )
        self.automatic_optimization = False
        self.net = net if net is not None else WNet(model, mean=norm["mean"], std=norm["std"])
        if channels_last:
            self.net.to_channels_last()
        if compile:
            # In place (``nn.Module.compile``): ``net.encode`` runs compiled too, and parameter
            # names stay ``net.encoder.*``/``net.decoder.*``, so checkpoints load either way.
            self.net.encoder.compile()
            self.net.decoder.compile()
        self.loss_conf, self.optim_conf = loss, optim
        self.step = TrainStep(self.net, NCutObjective(loss), loss)
        self.val_metrics = ValidationMetrics(model.num_classes, tiles=val_tiles)
        self._val_segmenter: Segmenter | None = None

    @classmethod
    def from_checkpoint(cls, path: str, **kwargs) -> WNetModule:
        """The module of a checkpoint (weights-only read; ``CheckpointError`` says what is wrong)."""
        s = read_settings(path)
        net = build_wnet(s.model, s.state, s.norm, s.path)
        val_tiles = bool(s.hparams.get("val_tiles", True))
        return cls(s.model, s.loss, s.optim, net.norm, net=net, val_tiles=val_tiles, **kwargs)

    def forward(self, image01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(probs, recon)`` for images in [0, 1]; ``recon`` is in normalized units."""
        return self.net(self.net.normalize(image01))

    # ---- training ------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> dict | None:
        clip = self.optim_conf.grad_clip
        opts = self.optimizers()
        out = self.step(
            batch["image"],
            opts if isinstance(opts, list) else [opts],
            backward=self.manual_backward,
            clip=(lambda opt: self.clip_gradients(opt, clip, "norm")) if clip else None,
            step=self.global_step,
        )
        if out.skipped:
            self.log("train/skipped_batches", 1.0, reduce_fx="sum", on_step=False, on_epoch=True)
            return None
        bs = batch["image"].shape[0]
        for key, value in out.losses.items():
            self.log(f"train/{key}", value, prog_bar=key in ("ncut", "recon"), batch_size=bs)
        return {"probs": out.probs, "recon": out.recon}

    def on_train_epoch_start(self) -> None:
        self._sync_schedulers(self.current_epoch)

    def on_train_epoch_end(self) -> None:
        self._sync_schedulers(self.current_epoch + 1)

    def _sync_schedulers(self, epochs_done: int) -> None:
        """Step each per-epoch LR scheduler until it has stepped once per finished epoch.

        Idempotent, so resuming stays exact: Lightning re-runs ``on_train_epoch_end`` when it resumes
        from a checkpoint saved at epoch end and skips it when it resumes from one saved after the
        epoch's last batch; a plain ``step()`` here would decay the LR once too often or too rarely.
        """
        scheds = self.lr_schedulers()
        for sched in scheds if isinstance(scheds, list) else [scheds] if scheds else []:
            while sched.last_epoch < epochs_done:
                sched.step()

    def configure_optimizers(self):
        make, make_sched = self.optim_conf.optimizer(), self.optim_conf.scheduler()
        opts = [make(params) for params in self.step.parameter_groups()]
        return (opts, [make_sched(op) for op in opts]) if make_sched else opts

    # ---- validation ----------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self.val_metrics.reset()
        tiles = TileConfig() if self.val_metrics.tiles else None
        self._val_segmenter = Segmenter(
            self.net,
            SegmentOptions(tiles=tiles, grid=GridConfig(scale="off")),
            signature_ids=SignatureIds(self.net.num_classes, max_id=None),
        )

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        image, mask = batch["image"], batch["mask"]
        losses, probs, recon = self.step.losses(image)
        for key in ("ncut", "recon", "loss"):
            self.log(f"val/{key}", losses[key], sync_dist=True, batch_size=image.shape[0])
        valid = [i for i, m in enumerate(mask) if bool((m != 255).any())]
        if valid and self._val_segmenter is not None:
            frames = (image[valid] * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1)
            results = self._val_segmenter.segment_batch(list(frames.cpu().numpy()), probs[valid])
            for r, i in zip(results, valid, strict=True):
                gt = mask[i].cpu().numpy().astype(np.uint8)
                self.val_metrics.update(
                    r.labels, gt, r.pooled if r.pooled is not None else r.labels
                )
        return {"probs": probs, "recon": recon}

    def on_validation_epoch_end(self) -> None:
        state = torch.from_numpy(self.val_metrics.state()).to(self.device)
        if self.trainer.world_size > 1:
            state = self.trainer.strategy.reduce(state, reduce_op="sum")
        for key, value in self.val_metrics.compute(state.cpu().numpy()).items():
            self.log(f"val/{key}", float(value), rank_zero_only=False)
