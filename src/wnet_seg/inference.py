"""The segmentation pipeline: one call per frame (or per batch) from pixels to every output.

    seg = Segmenter.from_checkpoint()        # the shipped checkpoint, default options
    result = seg.segment(rgb)                # a SegmentResult
    result.output                            # what wnet-seg-segment writes

``wnet-seg-segment``, ``wnet-seg-evaluate``, validation during training and the research scripts
all go through :meth:`Segmenter.segment_batch`; the options are fixed when the ``Segmenter`` is
built (:class:`SegmentOptions`). For each frame, once:

1. **native scale**: an integer nearest-neighbour upscale is undone (a 768x720 capture of a
   256x240 NES frame is segmented at 256x240);
2. **network**: class probabilities of the native frame (frames larger than ``window`` are cut
   into overlapping windows whose probabilities are averaged, so memory stays bounded);
3. **CRF** (optional): the dense CRF refines those probabilities;
4. **tile pooling** (default, :mod:`wnet_seg.postprocess.tiles`): when the frame shows a tile
   grid, each distinct tile is segmented alone and labelled by the set of W-Net classes in it;
   ids ``>= K`` name such mixtures and agree across all frames of one ``Segmenter``;
5. everything is mapped back to the input's exact height and width (nearest neighbour).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wnet_seg import grid as gridlib
from wnet_seg.assets import default_checkpoint
from wnet_seg.checkpoint import load_wnet
from wnet_seg.grid import FrameGrid, GridConfig
from wnet_seg.models.wnet import WNet
from wnet_seg.postprocess.crf import CRFConfig, crf_config, crf_refine_config
from wnet_seg.postprocess.tiles import (
    BUCKET_BASE,
    SignatureIds,
    TileConfig,
    pool_out_of_context,
)

# Native pixels of context the network sees around the strips a tile grid leaves out, when only
# those are segmented in context (SegmentOptions.per_pixel=False).
CONTEXT = 32

# Frames of a folder whose grids are voted into a shared one (Segmenter.fit_folder).
VOTE_FRAMES = (
    32  # measured: 16 JPEG MiniGrid test frames do not agree, 32 do (every game, condition)
)


@dataclass(frozen=True)
class SegmentOptions:
    """What the pipeline does; fixed for the life of a :class:`Segmenter`.

    Attributes:
        crf: dense-CRF settings, or ``None`` for no CRF.
        tiles: tile-pooling settings, or ``None`` for per-pixel output only.
        grid: how the native scale and the tile grid are found (:class:`wnet_seg.grid.GridConfig`:
            ``scale`` auto/off/factor, ``tile`` auto/off/size, sizes, confidence, bands).
        window: frames larger than this (native pixels) are segmented in overlapping windows.
        overlap: overlap of those windows, in pixels.
        per_pixel: run the network on every whole frame (:attr:`SegmentResult.labels` and
            ``probs``). ``False`` (``wnet-seg-segment``, which writes the default output only):
            where tile pooling covers the frame, the network runs only on what its whole tiles
            leave out (HUD bands, partial tiles at the edges; with :data:`CONTEXT` pixels around
            them) and on the mosaics of new tiles; ``labels`` and ``probs`` are then ``None``. The
            default output is the same wherever whole tiles cover the frame.
    """

    crf: CRFConfig | None = None
    tiles: TileConfig | None = field(default_factory=TileConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    window: int = 512
    overlap: int = 32
    per_pixel: bool = True

    def __post_init__(self) -> None:
        if self.window < 16:
            raise ValueError(f"window must be >= 16, got {self.window}")
        if not 0 <= self.overlap < self.window:
            raise ValueError(f"overlap must be in [0, window), got {self.overlap}")
        if self.grid.tile == "off":
            object.__setattr__(self, "tiles", None)  # no grid, nothing to pool
        elif self.tiles is None and self.grid.tile == "auto":
            object.__setattr__(self, "grid", replace(self.grid, tile="off"))  # nothing to find


GRID_PARAMS = ("min_tile", "max_tile", "min_confidence", "bands")
TILE_PARAMS = ("min_share", "reps", "colour_split", "colour_share", "background_share")


def segment_options(
    *,
    tiles: str | int = "auto",
    tiles_params: dict[str, Any] | None = None,
    native_scale: str | float = "auto",
    crf: CRFConfig | None = None,
    window: int = 512,
    overlap: int = 32,
    per_pixel: bool = True,
) -> SegmentOptions:
    """The options of the command-line apps: ``tiles=auto|off|<size>`` and ``tiles_params``
    (pooling: ``min_share``, ``reps``; grid: ``min_tile``, ``max_tile``, ``min_confidence``,
    ``bands``), ``native_scale=auto|off|<factor>``, ``per_pixel`` (:class:`SegmentOptions`). An
    unknown key or bad value says which."""
    params = dict(tiles_params or {})
    unknown = sorted(set(params) - set(GRID_PARAMS) - set(TILE_PARAMS))
    if unknown:
        raise ValueError(
            f"unknown tiles_params {unknown}; valid keys: {sorted(GRID_PARAMS + TILE_PARAMS)}"
        )
    mode = str(tiles)
    if mode not in ("auto", "off") and not (mode.isdigit() and int(mode) >= 2):
        raise ValueError(
            f"tiles must be 'auto', 'off' or a tile size >= 2 (native px), got {mode!r}"
        )
    grid = GridConfig(
        scale=str(native_scale),
        tile=mode if mode in ("auto", "off") else int(mode),
        **{k: v for k, v in params.items() if k in GRID_PARAMS},
    )
    pooling = (
        None
        if mode == "off"
        else TileConfig(**{k: v for k, v in params.items() if k in TILE_PARAMS})
    )
    return SegmentOptions(
        crf=crf, tiles=pooling, grid=grid, window=window, overlap=overlap, per_pixel=per_pixel
    )


def options_from(conf: Any, **extra: Any) -> SegmentOptions:
    """:func:`segment_options` from an app's config (``tiles``, ``tiles_params``,
    ``native_scale``, ``crf``, ``crf_params``; ``extra``: e.g. ``window``). ``crf_params`` is
    checked even with ``crf=false``, so a typo is an error either way."""
    crf = crf_config(conf.crf_params)
    return segment_options(
        tiles=conf.tiles,
        tiles_params=conf.tiles_params,
        native_scale=conf.native_scale,
        crf=crf if conf.crf else None,
        **extra,
    )


@dataclass
class SegmentResult:
    """Everything the pipeline found for one frame. Label maps have the input's exact size.

    Attributes:
        labels: per-pixel W-Net classes (argmax of the network), ``(H, W)``; ``None`` when the
            network ran only where the tiles do not reach (``SegmentOptions.per_pixel=False``).
        probs: the network's class probabilities ``(K, h, w)`` at native resolution (or ``None``,
            as ``labels``).
        native: the native-resolution frame ``(h, w, 3)`` the network saw.
        grid: what :func:`wnet_seg.grid.detect` found: native scale, tile size (``None``: no
            grid), phase, bands, confidence.
        crf_labels: per-pixel classes after the CRF (``None`` without CRF).
        pooled: tile-pooled ids (``None`` when no grid was found or pooling is off).
        seconds: time spent per stage (``geometry``, ``network``, ``crf``, ``tiles``).
    """

    labels: np.ndarray | None
    probs: np.ndarray | None
    native: np.ndarray
    grid: FrameGrid
    crf_labels: np.ndarray | None = None
    pooled: np.ndarray | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def tiled(self) -> np.ndarray:
        """The tile-pooled output, or the per-pixel classes where there is no grid."""
        return self.pooled if self.pooled is not None else self.labels  # type: ignore[return-value]

    @property
    def output(self) -> np.ndarray:
        """The pipeline's final labels: pooled where a grid was found, else CRF, else per pixel."""
        if self.pooled is not None:
            return self.pooled
        return self.labels if self.crf_labels is None else self.crf_labels  # type: ignore[return-value]

    def record(self, file: str) -> dict[str, Any]:
        """The JSON line ``wnet-seg-segment`` writes for this frame (``frames.jsonl``): ``file``,
        ``scale`` (input px per native px), ``tile`` (native px or null), ``offset`` ([y, x]
        native px), ``confidence``, plus kernel, origin, sizes, bands and noise."""
        g = self.grid.record()
        return {"file": file, **g, "pooled": self.pooled is not None}


@dataclass(frozen=True)
class FrameGeometry:
    """Where a frame's pixels come from: what the detector found and the native frame."""

    grid: FrameGrid
    native: np.ndarray

    def to_native(self, labels: np.ndarray) -> np.ndarray:
        """A full-resolution label map sampled at the native cells (nearest)."""
        return gridlib.sample_native(labels, self.grid)

    def to_input(self, labels: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        """A native-resolution map back at the input's exact size ``hw`` (nearest)."""
        return gridlib.from_native(labels, self.grid, hw)


def frame_geometry(
    rgb: np.ndarray, options: SegmentOptions, prior: FrameGrid | None = None
) -> FrameGeometry:
    """Native scale, native frame and tile grid of a uint8 RGB frame, as the pipeline sees it
    (also what the baselines' tile pooling uses, so every method is pooled on the same grid).
    ``prior``: a folder's voted grid (scale and tile size fixed, phases refitted)."""
    rgb = _as_rgb(rgb)
    h, w = rgb.shape[:2]
    if min(h, w) < 2:  # nothing to detect in a line of pixels
        return FrameGeometry(FrameGrid(input_hw=(h, w), native_hw=(h, w)), rgb)
    grid = gridlib.detect(rgb, options.grid, prior=prior)
    return FrameGeometry(grid, gridlib.to_native(rgb, grid))


def vote_grid(frames: list[np.ndarray], options: SegmentOptions) -> FrameGrid | None:
    """The grid the first :data:`VOTE_FRAMES` frames of a folder agree on (``None``: none)."""
    if options.tiles is None and options.grid.scale != "auto":
        return None
    sample = [_as_rgb(f) for f in frames[:VOTE_FRAMES]]
    return gridlib.vote([gridlib.detect(f, options.grid) for f in sample if min(f.shape[:2]) >= 2])


def _starts(n: int, window: int, overlap: int) -> list[int]:
    if n <= window:
        return [0]
    starts = list(range(0, n - window, max(1, window - overlap)))
    return [*starts, n - window]


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {rgb.dtype}")
    return np.ascontiguousarray(rgb[..., :3])


class Segmenter:
    """A W-Net plus fixed :class:`SegmentOptions`; :meth:`segment_batch` runs the pipeline."""

    def __init__(
        self,
        net: WNet,
        options: SegmentOptions | None = None,
        *,
        source: str | os.PathLike | None = None,
        signature_ids: SignatureIds | None = None,
    ) -> None:
        self.net = net
        self.options = options or SegmentOptions()
        self.source = None if source is None else Path(source)
        self.signature_ids = signature_ids or SignatureIds(net.num_classes)
        self.prior: FrameGrid | None = None  # a folder's voted grid (fit_folder)

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: str | os.PathLike | None = None,
        *,
        device: str = "cpu",
        options: SegmentOptions | None = None,
        **fields: Any,
    ) -> Segmenter:
        """Load ``ckpt`` (default: the shipped one) with ``options``, or the :class:`SegmentOptions`
        made of ``fields`` (e.g. ``tiles=None, crf=CRFConfig()``)."""
        if options is not None and fields:
            raise TypeError("pass either options or SegmentOptions fields, not both")
        opts = options or SegmentOptions(**fields)
        loaded = load_wnet(ckpt if ckpt is not None else default_checkpoint(), device)
        return cls(loaded.model, opts, source=loaded.path)

    @property
    def num_classes(self) -> int:
        return self.net.num_classes

    @property
    def device(self) -> torch.device:
        return self.net.mean.device

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, K, H, W)`` float32 of same-size uint8 frames ``(N, H, W, 3)``;
        frames larger than ``options.window`` are segmented in overlapping windows."""
        frames = np.asarray(frames)
        n, h, w = frames.shape[:3]
        win, overlap = self.options.window, self.options.overlap
        if h <= win and w <= win:
            return self.net.encode_frames(frames).float().cpu().numpy()
        out = np.zeros((n, self.num_classes, h, w), np.float32)
        count = np.zeros((1, 1, h, w), np.float32)
        for y in _starts(h, win, overlap):
            for x in _starts(w, win, overlap):
                patch = np.ascontiguousarray(frames[:, y : y + win, x : x + win])
                p = self.net.encode_frames(patch).float().cpu().numpy()
                out[:, :, y : y + p.shape[2], x : x + p.shape[3]] += p
                count[..., y : y + p.shape[2], x : x + p.shape[3]] += 1
        return out / count

    def fit_folder(self, frames: list[np.ndarray]) -> FrameGrid | None:
        """Vote the grid shared by the frames of one folder (the first :data:`VOTE_FRAMES` are
        enough) and use it as the prior of every later frame: frames that show too little on
        their own (a small window, mostly one floor) get the folder's scale and tile size, with
        their own phase. ``None`` (no prior) when the frames do not agree or show no grid."""
        self.prior = vote_grid(frames, self.options)
        return self.prior

    def segment(self, frame: np.ndarray) -> SegmentResult:
        return self.segment_batch([frame])[0]

    def segment_batch(
        self, frames: list[np.ndarray], probs: np.ndarray | torch.Tensor | None = None
    ) -> list[SegmentResult]:
        """Run the pipeline on ``frames`` (uint8 RGB, any sizes); same-size frames share one
        network batch. ``probs`` (``(N, K, H, W)``, e.g. from a training forward pass) skips the
        network; it needs frames at native resolution (``native_scale="off"``)."""
        frames = [_as_rgb(f) for f in frames]
        t0 = time.perf_counter()
        geometries = [frame_geometry(f, self.options, self.prior) for f in frames]
        t_geometry = (time.perf_counter() - t0) / max(1, len(frames))
        whole = [probs is not None or self._whole_frame(g.grid) for g in geometries]
        natives = [g.native for g, w in zip(geometries, whole, strict=True) if w]
        network, seconds = self._network(natives, probs)
        ran = iter(zip(network, seconds, strict=True))
        out = []
        for frame, geo, w in zip(frames, geometries, whole, strict=True):
            if w:
                p, took = next(ran)
                labels = p.argmax(0)
            else:
                t0 = time.perf_counter()
                p, labels = None, self._uncovered_labels(geo.native, geo.grid)
                took = time.perf_counter() - t0
            out.append(
                self._finish(
                    frame.shape[:2], geo, p, labels, {"geometry": t_geometry, "network": took}
                )
            )
        return out

    def _whole_frame(self, grid: FrameGrid) -> bool:
        """Whether the network runs on the whole frame (else only where whole tiles do not reach)."""
        opts = self.options
        return opts.per_pixel or opts.crf is not None or opts.tiles is None or grid.tile is None

    def _uncovered_labels(self, native: np.ndarray, grid: FrameGrid) -> np.ndarray:
        """Per-pixel classes (int64, native size) of what the grid's whole tiles leave out (HUD
        bands, partial tiles at the edges), each strip segmented with :data:`CONTEXT` pixels
        around it; 0 under the whole tiles, which tile pooling labels."""
        h, w = native.shape[:2]
        y0, x0, ny, nx = grid.tile_block()
        y1, x1 = y0 + ny * int(grid.tile), x0 + nx * int(grid.tile)
        labels = np.zeros((h, w), np.int64)
        # rows above and below the whole tiles, then columns left and right of them
        for a, b, c, d in ((0, y0, 0, w), (y1, h, 0, w), (y0, y1, 0, x0), (y0, y1, x1, w)):
            if b <= a or d <= c:
                continue
            ca, cc = max(0, a - CONTEXT), max(0, c - CONTEXT)
            crop = native[None, ca : min(h, b + CONTEXT), cc : min(w, d + CONTEXT)]
            got = self.encode(np.ascontiguousarray(crop))[0].argmax(0)
            labels[a:b, c:d] = got[a - ca : b - ca, c - cc : d - cc]
        return labels

    def _network(
        self, natives: list[np.ndarray], probs: np.ndarray | torch.Tensor | None
    ) -> tuple[list[np.ndarray], list[float]]:
        """Probabilities of every native frame (same-size frames batched) and seconds per frame."""
        if probs is not None:
            p = (
                probs.detach().float().cpu().numpy()
                if torch.is_tensor(probs)
                else np.asarray(probs)
            )
            if p.shape[0] != len(natives) or any(
                q.shape[1:] != n.shape[:2] for q, n in zip(p, natives, strict=True)
            ):
                raise ValueError(
                    f"probs {p.shape} do not match the {len(natives)} native frames "
                    "(given probabilities need native_scale='off')"
                )
            return list(p), [0.0] * len(natives)
        out: list[np.ndarray | None] = [None] * len(natives)
        seconds = [0.0] * len(natives)
        groups: dict[tuple, list[int]] = {}
        for i, n in enumerate(natives):
            groups.setdefault(n.shape, []).append(i)
        for idx in groups.values():
            t0 = time.perf_counter()
            batch = self.encode(np.stack([natives[i] for i in idx]))
            took = (time.perf_counter() - t0) / len(idx)
            for j, i in enumerate(idx):
                out[i], seconds[i] = batch[j], took
        return out, seconds  # type: ignore[return-value]

    def _finish(
        self,
        hw: tuple[int, int],
        geo: FrameGeometry,
        p: np.ndarray | None,
        labels: np.ndarray,
        seconds: dict[str, float],
    ) -> SegmentResult:
        """CRF, tile pooling and mapping back for one frame (``p`` ``None``: the network ran only
        where the tiles do not reach, ``labels`` holds those classes)."""
        opts = self.options
        crf_labels = pooled = None
        if opts.crf is not None:
            t0 = time.perf_counter()
            crf_labels = crf_refine_config(p, geo.native, opts.crf).argmax(0)
            seconds["crf"] = time.perf_counter() - t0
        if opts.tiles is not None and geo.grid.tile is not None:
            t0 = time.perf_counter()
            pooled = pool_out_of_context(
                labels, geo.native, geo.grid, opts.tiles, self.signature_ids, self._mosaic_labels
            )
            seconds["tiles"] = time.perf_counter() - t0
        return SegmentResult(
            labels=None if p is None else geo.to_input(labels, hw),
            probs=p,
            native=geo.native,
            grid=geo.grid,
            crf_labels=None if crf_labels is None else geo.to_input(crf_labels, hw),
            pooled=None if pooled is None else geo.to_input(pooled, hw),
            seconds=seconds,
        )

    def _mosaic_labels(self, mosaics: np.ndarray) -> np.ndarray:
        return self.encode(mosaics).argmax(1)

    def legend(self) -> dict[str, Any]:
        """What each output id means (written as ``labels.json``)."""
        ids = self.signature_ids
        return {
            "num_classes": self.num_classes,
            "tile_signatures": {str(i): list(sig) for sig, i in ids.table.items()},
            "tiles_given_dominant_class_after_ids_ran_out": ids.overflowed,
            "note": "ids < num_classes are W-Net classes; larger ids are tiles mixing the listed "
            f"classes; entries >= {BUCKET_BASE} are colour bins (colour_split, colour_share)",
        }


def overlay(rgb: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The frame blended with its colorized segmentation (uint8 RGB)."""
    from wnet_seg.palette import colorize

    seg = colorize(labels).astype(np.float32)
    out = (1 - alpha) * _as_rgb(rgb).astype(np.float32) + alpha * seg
    return out.round().clip(0, 255).astype(np.uint8)
