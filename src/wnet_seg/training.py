"""One training step of the W-Net, for both schedules, in plain PyTorch (no Lightning).

:class:`TrainStep` is the only place where losses become gradient steps: the Lightning module calls
it with Lightning's backward and clipping, and any other loop (a quick experiment, a benchmark)
calls it with plain ``loss.backward()``. Schedules (``LossConf.schedule``):

- ``alternating`` (the paper): one encoder step on the N-cut terms, then one step of the whole
  W-Net on the reconstruction; two optimizers (:meth:`TrainStep.parameter_groups`);
- ``joint``: one optimizer on ``ncut_weight * ncut + recon_weight * reconstruction``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from wnet_seg.config import LossConf
from wnet_seg.losses.objective import NCutObjective
from wnet_seg.losses.reconstruction import reconstruction_loss
from wnet_seg.models.wnet import WNet

log = logging.getLogger(__name__)

Backward = Callable[[Tensor], None]
Clip = Callable[[torch.optim.Optimizer], None]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message names the term and the step."""


@dataclass
class StepOutput:
    """What one step did: detached losses (``ncut``, ``recon``, ``loss`` and the objective's terms),
    the last forward pass's ``probs`` and ``recon`` (normalized units), and the name of the term
    that was non-finite when the batch was skipped (``None`` otherwise)."""

    losses: dict[str, Tensor] = field(default_factory=dict)
    probs: Tensor | None = None
    recon: Tensor | None = None
    skipped: str | None = None


class TrainStep:
    """``step(image01, optimizers) -> StepOutput``: one batch of the configured schedule."""

    def __init__(self, net: WNet, objective: NCutObjective, conf: LossConf) -> None:
        self.net, self.objective, self.conf = net, objective, conf

    def parameter_groups(self) -> list[list[nn.Parameter]]:
        """One parameter list per optimizer: encoder then all (alternating), or all (joint)."""
        everything = list(self.net.parameters())
        if self.conf.schedule == "alternating":
            return [list(self.net.encoder.parameters()), everything]
        return [everything]

    def losses(self, image01: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Forward pass and every loss term without any update (validation, diagnostics)."""
        x = self.net.normalize(image01)
        probs, recon = self.net(x)
        ncut, logs = self.objective(probs.float(), image01 * 255.0)
        rec = reconstruction_loss(recon.float(), x.float())
        return self._summary(ncut, rec, logs), probs, recon

    def __call__(
        self,
        image01: Tensor,
        optimizers: Sequence[torch.optim.Optimizer],
        *,
        backward: Backward | None = None,
        clip: Clip | None = None,
        step: int = 0,
    ) -> StepOutput:
        """Train on one batch of images ``(B, C, H, W)`` in [0, 1].

        ``backward`` defaults to ``loss.backward()``; ``clip(optimizer)`` runs between backward and
        step; ``step`` (the global step when the batch starts; each optimizer step adds 1) only goes
        into error messages.
        """
        backward = backward or (lambda loss: loss.backward())
        c = self.conf
        x = self.net.normalize(image01)
        image_255 = image01 * 255.0
        if c.schedule == "alternating":
            opt_enc, opt_all = optimizers
            ncut, logs = self.objective(self.net.encode(x), image_255)
            if not self._finite(ncut, "ncut", step):
                return StepOutput(skipped="ncut")
            self._update(opt_enc, c.ncut_weight * ncut, backward, clip)
            probs, recon = self.net(x)
            rec = reconstruction_loss(recon.float(), x.float())
            if not self._finite(rec, "reconstruction", step + 1):  # after the encoder's step
                return StepOutput(skipped="reconstruction")
            self._update(opt_all, c.recon_weight * rec, backward, clip)
        else:
            (opt,) = optimizers
            probs, recon = self.net(x)
            ncut, logs = self.objective(probs, image_255)
            rec = reconstruction_loss(recon.float(), x.float())
            for value, term in ((ncut, "ncut"), (rec, "reconstruction")):
                if not self._finite(value, term, step):
                    return StepOutput(skipped=term)
            self._update(opt, c.ncut_weight * ncut + c.recon_weight * rec, backward, clip)
        return StepOutput(self._summary(ncut, rec, logs), probs.detach(), recon.detach())

    def _summary(self, ncut: Tensor, rec: Tensor, logs: dict[str, Tensor]) -> dict[str, Tensor]:
        c = self.conf
        out = {k: v for k, v in logs.items() if k != "ncut"}
        out.update(
            ncut=ncut.detach(),
            recon=rec.detach(),
            loss=(c.ncut_weight * ncut + c.recon_weight * rec).detach(),
        )
        return out

    @staticmethod
    def _update(opt, loss: Tensor, backward: Backward, clip: Clip | None) -> None:
        opt.zero_grad(set_to_none=True)
        backward(loss)
        if clip is not None:
            clip(opt)
        opt.step()

    def _finite(self, value: Tensor, term: str, step: int) -> bool:
        if torch.isfinite(value).all():
            return True
        msg = f"non-finite {term} loss ({value.item()}) at global step {step}"
        if self.conf.nonfinite == "skip":
            log.warning("%s; skipping this batch", msg)
            return False
        raise NonFiniteLossError(msg + " (set loss.nonfinite=skip to skip such batches)")
