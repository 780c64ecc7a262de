"""Segment screenshots with a trained W-Net: pixel-grid aware, tiled for big frames, optional CRF.

:class:`Segmenter` turns an RGB ``uint8`` frame of any size into class probabilities and labels
of exactly the input's height and width:

1. ``native_scale="auto"`` undoes an integer nearest-neighbour upscale (a 768x720 capture of a
   256x240 NES frame is segmented at 256x240) and maps the result back with nearest neighbour;
2. frames larger than ``tile`` are cut into overlapping tiles whose probabilities are averaged,
   so memory stays bounded whatever the frame size;
3. the dense CRF (optional) refines the probabilities on the native-resolution image;
4. tile pooling (on by default, :mod:`wnet_seg.postprocess.tiles`) relabels each tile of a
   detected tile grid by the set of W-Net classes the network gives that tile out of context;
   frames without a grid are left as they are. Ids ``>= K`` name such mixtures and agree across
   all frames of one ``Segmenter``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wnet_seg.checkpoint import LoadedWNet, load_wnet
from wnet_seg.data.native_scale import PixelGrid, from_native, resolve_grid, to_native
from wnet_seg.postprocess.crf import CRFConfig, crf_refine_config
from wnet_seg.postprocess.tiles import SignatureIds, TileConfig, pool_out_of_context

DEFAULT_CHECKPOINT_NAME = "wnet_multigame.ckpt"


def default_checkpoint() -> Path:
    """The shipped checkpoint: ``$WNET_SEG_CHECKPOINT``, ``./checkpoints/``, or the source tree's."""
    env = os.environ.get("WNET_SEG_CHECKPOINT")
    candidates = [Path(env)] if env else []
    candidates += [
        Path.cwd() / "checkpoints" / DEFAULT_CHECKPOINT_NAME,
        Path(__file__).resolve().parents[2] / "checkpoints" / DEFAULT_CHECKPOINT_NAME,
    ]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(
        "no checkpoint given and the shipped one was not found (looked in: "
        + ", ".join(str(c) for c in candidates)
        + "); pass ckpt=PATH"
    )


def _tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    if n <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, n - tile, step))
    starts.append(n - tile)
    return starts


@dataclass
class Segmenter:
    """A loaded W-Net plus the inference options; call :meth:`probs` or :meth:`segment`."""

    net: LoadedWNet
    device: torch.device
    crf: CRFConfig | None = None
    native_scale: str | int = "auto"
    tile: int = 512
    overlap: int = 32
    tiles: TileConfig | None = None
    signature_ids: SignatureIds | None = None

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: str | os.PathLike | None = None,
        *,
        device: str = "cpu",
        crf: CRFConfig | None = None,
        native_scale: str | int = "auto",
        tile: int = 512,
        overlap: int = 32,
        tiles: TileConfig | None = TileConfig(),  # noqa: B008 (never mutated)
    ) -> Segmenter:
        """Load ``ckpt`` (default: the shipped one). ``tiles=None`` turns tile pooling off."""
        if tile < 16:
            raise ValueError(f"tile must be >= 16, got {tile}")
        if not 0 <= overlap < tile:
            raise ValueError(f"overlap must be in [0, tile), got {overlap}")
        dev = torch.device(device)
        net = load_wnet(ckpt if ckpt is not None else default_checkpoint(), map_location=dev)
        return cls(
            net=net,
            device=dev,
            crf=crf,
            native_scale=native_scale,
            tile=tile,
            overlap=overlap,
            tiles=tiles,
        )

    @property
    def num_classes(self) -> int:
        return self.net.model.num_classes

    def _normalized(self, frames: list[np.ndarray]) -> torch.Tensor:
        mean = torch.tensor(self.net.mean, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(self.net.std, device=self.device).view(1, -1, 1, 1)
        x = torch.from_numpy(np.stack(frames)).to(self.device).permute(0, 3, 1, 2)
        return (x.float() / 255.0 - mean) / std

    @torch.no_grad()
    def _network_probs(self, rgb: np.ndarray) -> np.ndarray:
        """``(K, H, W)`` softmax of the network on a native-resolution frame, tiled if large."""
        x = self._normalized([rgb])
        h, w = rgb.shape[:2]
        if h <= self.tile and w <= self.tile:
            return self.net.model.encode(x)[0].float().cpu().numpy()
        out = torch.zeros(self.num_classes, h, w)
        count = torch.zeros(1, h, w)
        for y in _tile_starts(h, self.tile, self.overlap):
            for xs in _tile_starts(w, self.tile, self.overlap):
                patch = x[..., y : y + self.tile, xs : xs + self.tile]
                p = self.net.model.encode(patch)[0].float().cpu()
                out[:, y : y + p.shape[1], xs : xs + p.shape[2]] += p
                count[:, y : y + p.shape[1], xs : xs + p.shape[2]] += 1
        return (out / count).numpy()

    def grid(self, rgb: np.ndarray) -> PixelGrid:
        return resolve_grid(rgb, self.native_scale)

    def native_frame(self, rgb: np.ndarray) -> tuple[np.ndarray, PixelGrid]:
        """The frame at the game's native resolution (undoing an integer upscale) and its grid."""
        grid = self.grid(rgb)
        return (to_native(rgb, grid) if grid.factor > 1 else rgb), grid

    def _refined(self, p: np.ndarray, native: np.ndarray, crf: bool | None) -> np.ndarray:
        use_crf = self.crf is not None if crf is None else crf
        return crf_refine_config(p, native, self.crf or CRFConfig()) if use_crf else p

    def probs(self, rgb: np.ndarray, *, crf: bool | None = None) -> np.ndarray:
        """Class probabilities ``(K, H, W)`` float32 at the input's full resolution (no pooling)."""
        rgb = _as_rgb(rgb)
        native, grid = self.native_frame(rgb)
        p = self._refined(self._network_probs(native), native, crf)
        if grid.factor > 1:
            p = np.stack([from_native(c, grid, rgb.shape[:2]) for c in p])
        return p.astype(np.float32, copy=False)

    def labels_from_probs(
        self, p: np.ndarray, native: np.ndarray, *, tiles: bool | None = None
    ) -> np.ndarray:
        """Argmax of native-resolution probabilities, tile-pooled when enabled and a grid is found."""
        labels = p.argmax(0)
        use_tiles = self.tiles is not None if tiles is None else tiles
        if use_tiles:
            labels = self.pool(labels, native, self.tiles or TileConfig())
        return labels.astype(np.uint8)

    @torch.no_grad()
    def pool(self, labels: np.ndarray, native: np.ndarray, cfg: TileConfig) -> np.ndarray:
        """Tile pooling of native-resolution ``labels`` (unchanged when the frame has no grid).

        Each distinct whole tile is segmented alone, as a ``cfg.reps`` x ``cfg.reps`` periodic
        mosaic; see :func:`wnet_seg.postprocess.tiles.pool_out_of_context`.
        """
        if self.signature_ids is None:
            self.signature_ids = SignatureIds(self.num_classes)

        def segment_frames(frames: np.ndarray) -> np.ndarray:
            return self.net.model.encode(self._normalized(list(frames))).argmax(1).cpu().numpy()

        return pool_out_of_context(labels, native, cfg, self.signature_ids, segment_frames)

    def segment(
        self, rgb: np.ndarray, *, crf: bool | None = None, tiles: bool | None = None
    ) -> np.ndarray:
        """Label ids ``(H, W)`` uint8, exactly the input's size (``< K``: W-Net classes)."""
        rgb = _as_rgb(rgb)
        native, grid = self.native_frame(rgb)
        p = self._refined(self._network_probs(native), native, crf)
        labels = self.labels_from_probs(p, native, tiles=tiles)
        return from_native(labels, grid, rgb.shape[:2]) if grid.factor > 1 else labels

    @torch.no_grad()
    def segment_many(
        self, frames: list[np.ndarray], *, crf: bool | None = None, tiles: bool | None = None
    ) -> list[np.ndarray]:
        """Like :meth:`segment` for several frames; same-size frames share one network batch."""
        frames = [_as_rgb(f) for f in frames]
        natives, grids = (
            zip(*(self.native_frame(f) for f in frames), strict=True) if frames else ((), ())
        )
        shapes = {n.shape for n in natives}
        if len(natives) < 2 or len(shapes) != 1 or max(next(iter(shapes))[:2]) > self.tile:
            return [self.segment(f, crf=crf, tiles=tiles) for f in frames]
        batch = self.net.model.encode(self._normalized(list(natives))).float().cpu().numpy()
        out = []
        for p, native, frame, grid in zip(batch, natives, frames, grids, strict=True):
            labels = self.labels_from_probs(self._refined(p, native, crf), native, tiles=tiles)
            out.append(from_native(labels, grid, frame.shape[:2]) if grid.factor > 1 else labels)
        return out


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {rgb.dtype}")
    return np.ascontiguousarray(rgb[..., :3])


def overlay(rgb: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The frame blended with its colorized segmentation (uint8 RGB)."""
    from wnet_seg.palette import colorize

    seg = colorize(labels).astype(np.float32)
    out = (1 - alpha) * _as_rgb(rgb).astype(np.float32) + alpha * seg
    return out.round().clip(0, 255).astype(np.uint8)
