"""Fully connected CRF (Kraehenbuehl & Koltun 2011) over a soft segmentation, with pydensecrf.

The unary is ``-log p`` of the network's softmax (clipped away from 0). Two pairwise Potts terms:

- Gaussian (smoothness) on pixel position, ``exp(-|dx|^2 / (2 gaussian_sxy^2))``: removes isolated
  noisy pixels;
- bilateral (appearance) on position and colour, ``exp(-|dx|^2 / (2 bilateral_sxy^2)
  - |dRGB|^2 / (2 bilateral_srgb^2))``: pixels that are near and similar in colour prefer one label.

The bilateral features are built here, all three colour channels divided by ``bilateral_srgb``
(a known bug elsewhere scales only the first channels when ``schan`` has fewer entries).

Defaults are chosen for pixel art (e.g. Crafter at 256x256 with 16 px tiles), not photos:
``bilateral_sxy = 16`` (one tile: a tile's texture votes together, far tiles barely do; DeepLab's
photo setting, 80 px, reaches across five tiles), ``bilateral_srgb = 20`` (a texture's own shades,
a few tens of levels apart, still count as similar, while edges between materials, larger jumps on
the 0-255 scale, stay sharp), ``bilateral_compat = 10``; the Gaussian term keeps the usual
``sxy = 3``, ``compat = 3`` (small: pixel-art edges are one pixel sharp). Five mean-field
iterations converge; far more (150 in one public W-Net) only cost time.

How much the choice matters was checked on a proxy, as no trained model existed yet: k-means
(RGB + local mean) labels as 0.6-confidence unaries on 16 Crafter validation frames. Without CRF
per-image Hungarian mIoU 0.48; bilateral (sxy, srgb, compat) of (8, 20, 5), (16, 20, 5),
(16, 20, 10), (16, 40, 5) and DeepLab's (80, 13, 10) all gave 0.57-0.58. Re-check on the W-Net's
softmax. The command behind these numbers: docs/metrics-and-baselines.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class CRFConfig:
    """Dense CRF parameters (mirrors the ``crf`` group of the Hydra config); range-checked."""

    iterations: int = 5
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 16.0
    bilateral_srgb: float = 20.0
    bilateral_compat: float = 10.0
    clip: float = 1e-5

    def __post_init__(self) -> None:
        if int(self.iterations) != self.iterations or not 1 <= self.iterations <= 100:
            raise ValueError(f"crf.iterations must be an integer in 1..100, got {self.iterations}")
        for key in ("gaussian_sxy", "bilateral_sxy", "bilateral_srgb"):
            value = getattr(self, key)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"crf.{key} must be > 0, got {value}")
        for key in ("gaussian_compat", "bilateral_compat"):
            value = getattr(self, key)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"crf.{key} must be >= 0, got {value}")
        if not 0 < self.clip < 0.5:
            raise ValueError(f"crf.clip must be in (0, 0.5), got {self.clip}")


def bilateral_features(rgb: np.ndarray, sxy: float, srgb: float) -> np.ndarray:
    """``(5, H*W)`` float32 features ``[y/sxy, x/sxy, R/srgb, G/srgb, B/srgb]``, C-contiguous."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    colour = rgb.astype(np.float32).transpose(2, 0, 1) / np.float32(srgb)  # all 3 channels
    feats = np.concatenate([yy[None] / np.float32(sxy), xx[None] / np.float32(sxy), colour])
    return np.ascontiguousarray(feats.reshape(5, h * w), dtype=np.float32)


def gaussian_features(h: int, w: int, sxy: float) -> np.ndarray:
    """``(2, H*W)`` float32 features ``[y/sxy, x/sxy]``, C-contiguous."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    feats = np.stack([yy, xx]) / np.float32(sxy)
    return np.ascontiguousarray(feats.reshape(2, h * w), dtype=np.float32)


def _check_inputs(probs: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs)
    rgb = np.asarray(rgb)
    if probs.ndim != 3:
        raise ValueError(f"probs must be (K, H, W), got shape {probs.shape}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(f"probs must be floating point, got dtype {probs.dtype}")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("probs must be finite and non-negative")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(
            f"image must be (H, W, 3) RGB, got shape {rgb.shape}; convert grey/RGBA before the CRF "
            "(e.g. wnet_seg.data.io.load_rgb)"
        )
    if rgb.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got dtype {rgb.dtype}")
    if rgb.shape[:2] != probs.shape[1:]:
        raise ValueError(
            f"image is {rgb.shape[0]}x{rgb.shape[1]} but probs are {probs.shape[1]}x{probs.shape[2]}"
        )
    return probs, rgb


def crf_refine(
    probs: np.ndarray,
    rgb: np.ndarray,
    *,
    iterations: int = CRFConfig.iterations,
    gaussian_sxy: float = CRFConfig.gaussian_sxy,
    gaussian_compat: float = CRFConfig.gaussian_compat,
    bilateral_sxy: float = CRFConfig.bilateral_sxy,
    bilateral_srgb: float = CRFConfig.bilateral_srgb,
    bilateral_compat: float = CRFConfig.bilateral_compat,
    clip: float = CRFConfig.clip,
) -> np.ndarray:
    """Refine soft labels ``probs`` ``(K, H, W)`` on image ``rgb`` ``(H, W, 3)`` uint8.

    ``probs`` need not sum to exactly 1 (it is renormalized over K). Returns float32 ``(K, H, W)``
    marginals that sum to 1 per pixel. See the module docstring for the parameters.
    """
    import pydensecrf.densecrf as dcrf

    cfg = CRFConfig(
        iterations=iterations,
        gaussian_sxy=gaussian_sxy,
        gaussian_compat=gaussian_compat,
        bilateral_sxy=bilateral_sxy,
        bilateral_srgb=bilateral_srgb,
        bilateral_compat=bilateral_compat,
        clip=clip,
    )
    probs, rgb = _check_inputs(probs, rgb)
    k, h, w = probs.shape
    p = probs.astype(np.float64)
    total = p.sum(axis=0, keepdims=True)
    p = np.divide(p, total, out=np.full_like(p, 1.0 / k), where=total > 0)
    if k == 1:
        return np.ones((1, h, w), np.float32)

    unary = -np.log(np.clip(p, cfg.clip, 1.0)).reshape(k, h * w)
    crf = dcrf.DenseCRF(h * w, k)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    if cfg.gaussian_compat > 0:
        crf.addPairwiseEnergy(gaussian_features(h, w, cfg.gaussian_sxy), compat=cfg.gaussian_compat)
    if cfg.bilateral_compat > 0:
        crf.addPairwiseEnergy(
            bilateral_features(rgb, cfg.bilateral_sxy, cfg.bilateral_srgb),
            compat=cfg.bilateral_compat,
        )
    q = np.asarray(crf.inference(int(cfg.iterations)), dtype=np.float32).reshape(k, h, w)
    return q / q.sum(axis=0, keepdims=True)


def crf_config(params: dict | None = None) -> CRFConfig:
    """A :class:`CRFConfig` from CLI values; an unknown ``crf_params`` key is a clear error."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(CRFConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(
            f"unknown crf_params {unknown}; valid keys: {sorted(CRFConfig.__dataclass_fields__)}"
        )
    return CRFConfig(**params)


def crf_refine_config(probs: np.ndarray, rgb: np.ndarray, config: CRFConfig) -> np.ndarray:
    """:func:`crf_refine` with parameters from a :class:`CRFConfig`."""
    return crf_refine(probs, rgb, **asdict(config))
