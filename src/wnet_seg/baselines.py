"""Classical segmenters to compare the W-Net against, behind one interface.

``segment_baseline(name, rgb, k)`` takes an ``(H, W, 3)`` uint8 RGB image and ``k`` (the number of
ground-truth classes in the image, for the methods that need one) and returns an ``(H, W)`` int32
label map with ids ``0..n-1``. All are deterministic (fixed ``random_state``).

- ``kmeans_rgb``: k-means (k clusters) on the pixels' RGB values.
- ``kmeans_rgb_localmean``: k-means on 6-D features: the pixel's RGB and 4 x the mean RGB of the
  9x9 box around it (reflect padding at the border), both on the 0-255 scale. The local mean is
  what lets a multi-colour texture (grass with darker specks) become one cluster; it varies much
  less inside a texture than single pixels do, so it needs the larger weight to count. On 16
  Crafter validation frames (worlds 100000-100001) weights 1 / 2 / 4 / 8 gave per-image Hungarian
  mIoU 0.42 / 0.45 / 0.48 / 0.49 (at weight 4, windows 5 / 9 / 16: 0.48 / 0.48 / 0.45); 4 keeps
  the pixel's own colour as a tie-breaker.
- ``felzenszwalb``: scikit-image's graph-based segmentation with the setting of Felzenszwalb &
  Huttenlocher's paper: scale (their k) 500, sigma 0.8, min_size 20. It ignores ``k`` and picks its
  own number of segments (120-560, median 290, on 256x256 Crafter frames). The pre-blur matters:
  without it every dark speck cuts a texture (sigma 0 / 0.5 / 0.8: mIoU 0.34 / 0.44 / 0.49 on the
  same validation frames), at the price of thin segments along sharp edges, where the blur
  makes a ramp of in-between colours.
- ``slic``: scikit-image SLIC with ``n_segments = k``, the default compactness 10 in Lab space,
  and ``enforce_connectivity=False``. With k this small (a handful), SLIC's clusters follow colour
  and come out as scattered fragments; the connectivity pass then merges every fragment below its
  size threshold and often leaves 1-2 segments (same validation frames: mIoU 0.19 with the pass,
  0.35 without). Without it, SLIC is k-means on Lab + position seeded on a grid; it may
  return fewer than k segments. The commands behind these numbers: docs/metrics-and-baselines.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from sklearn.cluster import KMeans

RANDOM_STATE = 0
LOCAL_MEAN_WINDOW = 9
LOCAL_MEAN_WEIGHT = 4.0
FELZENSZWALB_SCALE = 500.0
FELZENSZWALB_SIGMA = 0.8
FELZENSZWALB_MIN_SIZE = 20
SLIC_COMPACTNESS = 10.0

Segmenter = Callable[[np.ndarray, int], np.ndarray]


def check_rgb(rgb: np.ndarray, name: str | None = None) -> np.ndarray:
    """Return ``rgb`` if it is an ``(H, W, 3)`` uint8 image, else raise a ``ValueError``."""
    where = f"{name}: " if name else ""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(
            f"{where}expected an (H, W, 3) RGB image, got shape {rgb.shape} "
            "(convert grey/RGBA first, e.g. with wnet_seg.data.io.load_rgb)"
        )
    if rgb.dtype != np.uint8:
        raise ValueError(f"{where}expected a uint8 image, got dtype {rgb.dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"{where}empty image of shape {rgb.shape}")
    return rgb


def _consecutive(labels: np.ndarray) -> np.ndarray:
    _, inv = np.unique(labels, return_inverse=True)
    return inv.reshape(labels.shape).astype(np.int32)


def _kmeans(features: np.ndarray, k: int, shape: tuple[int, int]) -> np.ndarray:
    """k-means on per-pixel features, fitted on the distinct feature vectors weighted by their
    counts (the same objective as on all pixels; pixel art has few distinct colours)."""
    uniq, inverse, counts = np.unique(features, axis=0, return_inverse=True, return_counts=True)
    k = min(k, len(uniq))
    if k <= 1:
        return np.zeros(shape, np.int32)
    km = KMeans(n_clusters=k, n_init=4, random_state=RANDOM_STATE)
    km.fit(uniq.astype(np.float64), sample_weight=counts.astype(np.float64))
    return _consecutive(km.labels_[inverse.ravel()].reshape(shape))


def local_mean(rgb: np.ndarray, window: int = LOCAL_MEAN_WINDOW) -> np.ndarray:
    """Mean colour over a ``window`` x ``window`` box around each pixel, float32 ``(H, W, 3)``."""
    return ndimage.uniform_filter(rgb.astype(np.float32), size=(window, window, 1), mode="reflect")


def kmeans_rgb(rgb: np.ndarray, k: int) -> np.ndarray:
    """k-means with ``k`` clusters on RGB colours."""
    rgb = check_rgb(rgb)
    return _kmeans(rgb.reshape(-1, 3), k, rgb.shape[:2])


def kmeans_rgb_localmean(
    rgb: np.ndarray,
    k: int,
    window: int = LOCAL_MEAN_WINDOW,
    weight: float = LOCAL_MEAN_WEIGHT,
) -> np.ndarray:
    """k-means with ``k`` clusters on [RGB, weight * (window x window mean RGB)]."""
    rgb = check_rgb(rgb)
    feats = np.concatenate([rgb.astype(np.float32), weight * local_mean(rgb, window)], axis=2)
    return _kmeans(feats.reshape(-1, 6), k, rgb.shape[:2])


def felzenszwalb(
    rgb: np.ndarray,
    k: int | None = None,
    scale: float = FELZENSZWALB_SCALE,
    sigma: float = FELZENSZWALB_SIGMA,
    min_size: int = FELZENSZWALB_MIN_SIZE,
) -> np.ndarray:
    """Felzenszwalb-Huttenlocher graph segmentation; ``k`` is ignored."""
    from skimage.segmentation import felzenszwalb as _fz

    rgb = check_rgb(rgb)
    return _consecutive(_fz(rgb, scale=scale, sigma=sigma, min_size=min_size, channel_axis=-1))


def slic(rgb: np.ndarray, k: int, compactness: float = SLIC_COMPACTNESS) -> np.ndarray:
    """SLIC with ``n_segments = k`` and no connectivity pass (see the module docstring)."""
    from skimage.segmentation import slic as _slic

    rgb = check_rgb(rgb)
    labels = _slic(
        rgb,
        n_segments=max(int(k), 1),
        compactness=compactness,
        start_label=0,
        channel_axis=-1,
        enforce_connectivity=False,
    )
    return _consecutive(labels)


BASELINES: dict[str, Segmenter] = {
    "kmeans_rgb": kmeans_rgb,
    "kmeans_rgb_localmean": kmeans_rgb_localmean,
    "felzenszwalb": felzenszwalb,
    "slic": slic,
}


def segment_baseline(name: str, rgb: np.ndarray, k: int) -> np.ndarray:
    """Segment ``rgb`` with the baseline ``name`` (a key of :data:`BASELINES`) into ~``k`` segments."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return BASELINES[name](rgb, int(k))
