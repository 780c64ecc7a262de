"""Unsupervised segmentation metrics: predicted label maps against ground truth with an ignore id.

Predicted ids are arbitrary integers (a segmenter's cluster ids mean nothing by themselves), so every
metric here is invariant to relabelling the prediction. Ground truth is ``(H, W)`` uint8 class ids;
pixels equal to :data:`~wnet_seg.data.io.IGNORE_ID` (255) are dropped from *every* count, for both
the prediction and the ground truth, before anything is computed.

Everything is derived from the contingency table ``n[i, j]`` = number of valid pixels with predicted
id ``i`` and ground-truth id ``j`` (no pairwise pixel loops). Regions are label ids, not connected
components: a class split into several blobs is one region, as in the class masks we evaluate on.

Metrics per image:

- ``miou``: one-to-one Hungarian matching (maximum total IoU) between predicted segments and the
  ground-truth classes present; unmatched classes score 0; mean over the classes present.
- ``pixel_acc``: many-to-one accuracy; each predicted segment takes its majority class.
- ``covering``: segmentation covering of the ground truth by the prediction, as in BSDS500:
  ``sum over GT regions R of |R| * max_{R'} IoU(R, R') / N``.
- ``pri``: probabilistic Rand index; with a single ground truth this is the Rand index, the
  fraction of unordered pixel pairs on which the two labellings agree (same/different).
- ``vi``: variation of information ``H(P|G) + H(G|P)`` in nats (natural log), as BSDS500 reports.

Over a dataset, :class:`SegmentationMeter` also computes ``miou_dataset``: ONE Hungarian matching on
the confusion matrix summed over all images, which rewards a segmenter that gives the same texture
the same id in every frame (per-image methods such as k-means cannot have that).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from wnet_seg.data.io import IGNORE_ID

METRIC_KEYS = ("miou", "miou_dataset", "pixel_acc", "covering", "pri", "vi")


@dataclass(frozen=True)
class Contingency:
    """Counts of valid pixels per (predicted id, ground-truth id) pair, and the ids of each axis."""

    table: np.ndarray  # (P, G) int64
    pred_ids: np.ndarray  # (P,)
    gt_ids: np.ndarray  # (G,)

    @property
    def n(self) -> int:
        return int(self.table.sum())


def check_pair(pred: np.ndarray, gt: np.ndarray, name: str | None = None) -> None:
    """Raise ``ValueError`` (naming ``name``, e.g. the mask file) unless pred/gt are usable together."""
    where = f"{name}: " if name else ""
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if gt.ndim != 2:
        raise ValueError(
            f"{where}ground truth must be a 2-D (H, W) label map, got shape {gt.shape}"
        )
    if pred.ndim != 2:
        raise ValueError(
            f"{where}prediction must be a 2-D (H, W) label map, got shape {pred.shape}"
        )
    if pred.shape != gt.shape:
        raise ValueError(
            f"{where}prediction is {pred.shape[0]}x{pred.shape[1]} (HxW) but ground truth is "
            f"{gt.shape[0]}x{gt.shape[1]}"
        )
    if not (np.issubdtype(pred.dtype, np.integer) or pred.dtype == bool):
        raise ValueError(f"{where}prediction must hold integer ids, got dtype {pred.dtype}")
    if not (np.issubdtype(gt.dtype, np.integer) or gt.dtype == bool):
        raise ValueError(f"{where}ground truth must hold integer ids, got dtype {gt.dtype}")


def contingency(
    pred: np.ndarray, gt: np.ndarray, ignore_id: int = IGNORE_ID, name: str | None = None
) -> Contingency:
    """Contingency table of ``pred`` against ``gt`` over pixels where ``gt != ignore_id``."""
    check_pair(pred, gt, name)
    valid = np.asarray(gt) != ignore_id
    p = np.asarray(pred)[valid].astype(np.int64, copy=False)
    g = np.asarray(gt)[valid].astype(np.int64, copy=False)
    pred_ids, p_idx = np.unique(p, return_inverse=True)
    gt_ids, g_idx = np.unique(g, return_inverse=True)
    n_p, n_g = len(pred_ids), len(gt_ids)
    table = np.bincount(p_idx * n_g + g_idx, minlength=n_p * n_g).reshape(n_p, n_g)
    return Contingency(table.astype(np.int64), pred_ids, gt_ids)


def _iou_matrix(table: np.ndarray) -> np.ndarray:
    table = table.astype(np.float64)
    union = table.sum(1, keepdims=True) + table.sum(0, keepdims=True) - table
    return np.divide(table, union, out=np.zeros_like(table), where=union > 0)


def _hungarian_mean_iou(table: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean IoU over GT classes (columns) after one-to-one matching; also the per-class IoUs."""
    iou = _iou_matrix(table)
    per_class = np.zeros(table.shape[1])
    if table.size:
        rows, cols = linear_sum_assignment(iou, maximize=True)
        per_class[cols] = iou[rows, cols]
    return (float(per_class.mean()) if per_class.size else math.nan), per_class


def hungarian_miou(pred: np.ndarray, gt: np.ndarray, ignore_id: int = IGNORE_ID) -> float:
    """Per-image mIoU under the best one-to-one matching of segments to GT classes (NaN if no pixel)."""
    return _hungarian_mean_iou(contingency(pred, gt, ignore_id).table)[0]


def _pixel_acc(table: np.ndarray) -> float:
    n = table.sum()
    return float(table.max(axis=1).sum() / n) if n else math.nan


def pixel_accuracy(pred: np.ndarray, gt: np.ndarray, ignore_id: int = IGNORE_ID) -> float:
    """Many-to-one pixel accuracy: each predicted segment is labelled with its majority GT class."""
    return _pixel_acc(contingency(pred, gt, ignore_id).table)


def _covering(table: np.ndarray) -> float:
    n = table.sum()
    if not n:
        return math.nan
    gt_sizes = table.sum(axis=0).astype(np.float64)
    return float((gt_sizes * _iou_matrix(table).max(axis=0)).sum() / n)


def segmentation_covering(pred: np.ndarray, gt: np.ndarray, ignore_id: int = IGNORE_ID) -> float:
    """Covering of the ground truth by the prediction (BSDS500 "SC"), in [0, 1]."""
    return _covering(contingency(pred, gt, ignore_id).table)


def _rand_index(table: np.ndarray) -> float:
    # Agreeing pairs = C(N,2) + sum n_ij^2 - (sum a_i^2 + sum b_j^2) / 2, from the pair counts.
    t = table.astype(np.float64)
    n = t.sum()
    if n < 2:
        return math.nan if n == 0 else 1.0
    pairs = n * (n - 1) / 2
    agree = pairs + (t**2).sum() - ((t.sum(1) ** 2).sum() + (t.sum(0) ** 2).sum()) / 2
    return float(agree / pairs)


def rand_index(pred: np.ndarray, gt: np.ndarray, ignore_id: int = IGNORE_ID) -> float:
    """Rand index over unordered pairs of valid pixels (PRI with one ground truth), in [0, 1]."""
    return _rand_index(contingency(pred, gt, ignore_id).table)


def _entropy(counts: np.ndarray, n: float) -> float:
    p = counts[counts > 0] / n
    return float(-(p * np.log(p)).sum())


def _vi(table: np.ndarray) -> float:
    t = table.astype(np.float64)
    n = t.sum()
    if not n:
        return math.nan
    h_joint = _entropy(t.ravel(), n)
    # VI = H(P|G) + H(G|P) = 2 H(P,G) - H(P) - H(G); clip the float round-off below 0.
    return max(0.0, 2 * h_joint - _entropy(t.sum(1), n) - _entropy(t.sum(0), n))


def variation_of_information(pred: np.ndarray, gt: np.ndarray, ignore_id: int = IGNORE_ID) -> float:
    """Variation of information in nats (natural log); 0 iff identical up to relabelling."""
    return _vi(contingency(pred, gt, ignore_id).table)


def image_metrics(
    pred: np.ndarray, gt: np.ndarray, ignore_id: int = IGNORE_ID, name: str | None = None
) -> dict[str, float]:
    """All per-image metrics from one contingency table (NaN everywhere if no valid pixel)."""
    return _table_metrics(contingency(pred, gt, ignore_id, name).table)


def _table_metrics(table: np.ndarray) -> dict[str, float]:
    return {
        "miou": _hungarian_mean_iou(table)[0],
        "pixel_acc": _pixel_acc(table),
        "covering": _covering(table),
        "pri": _rand_index(table),
        "vi": _vi(table),
    }


@dataclass
class SegmentationMeter:
    """Accumulates (pred, gt) pairs; :meth:`compute` gives the means of the per-image metrics
    (images with no valid pixel are skipped) and ``miou_dataset``, the mIoU of one Hungarian
    matching on the confusion matrix summed over all images (mean over GT classes seen)."""

    ignore_id: int = IGNORE_ID
    per_image: list[dict[str, float]] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)
    _confusion: defaultdict[tuple[int, int], int] = field(
        default_factory=lambda: defaultdict(int), repr=False
    )

    def update(self, pred: np.ndarray, gt: np.ndarray, name: str | None = None) -> dict[str, float]:
        """Add one image; returns its own metrics. ``name`` (e.g. the mask path) goes in errors."""
        c = contingency(pred, gt, self.ignore_id, name)
        t = c.table
        for i, j in zip(*np.nonzero(t), strict=True):
            self._confusion[(int(c.pred_ids[i]), int(c.gt_ids[j]))] += int(t[i, j])
        scores = _table_metrics(t)
        self.per_image.append(scores)
        self.names.append(name)
        return scores

    def confusion(self) -> Contingency:
        """The dataset confusion matrix (pred ids x GT ids) accumulated so far."""
        if not self._confusion:
            return Contingency(
                np.zeros((0, 0), np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
            )
        keys = np.array(list(self._confusion.keys()), dtype=np.int64)
        pred_ids, pi = np.unique(keys[:, 0], return_inverse=True)
        gt_ids, gi = np.unique(keys[:, 1], return_inverse=True)
        table = np.zeros((len(pred_ids), len(gt_ids)), np.int64)
        table[pi, gi] = np.fromiter(self._confusion.values(), dtype=np.int64, count=len(keys))
        return Contingency(table, pred_ids, gt_ids)

    def dataset_class_iou(self) -> dict[int, float]:
        """IoU per GT class under the single dataset-level matching."""
        c = self.confusion()
        per_class = _hungarian_mean_iou(c.table)[1]
        return {int(g): float(v) for g, v in zip(c.gt_ids, per_class, strict=True)}

    @property
    def n_images(self) -> int:
        """Images added that had at least one valid pixel."""
        return sum(not math.isnan(s["miou"]) for s in self.per_image)

    def compute(self) -> dict[str, float]:
        """Means over images of each metric, plus ``miou_dataset`` (NaN when nothing was added)."""
        out: dict[str, float] = {}
        valid = [s for s in self.per_image if not math.isnan(s["miou"])]
        for key in METRIC_KEYS:
            if key == "miou_dataset":
                out[key] = _hungarian_mean_iou(self.confusion().table)[0]
            else:
                out[key] = float(np.mean([s[key] for s in valid])) if valid else math.nan
        return out


MetricAccumulator = SegmentationMeter


PER_IMAGE_KEYS = ("miou", "pixel_acc", "covering", "pri", "vi")


class ValidationMetrics:
    """Validation scores of one epoch, as sums that add up exactly over processes.

    Per-image metrics of the per-pixel output (and, with ``tiles``, the per-image mIoU of the
    pooled output) are kept as sums and a frame count; the dataset-level mIoU of the per-pixel
    classes as a dense ``(K, 256)`` confusion matrix (class ids mean the same on every process;
    tile-signature ids do not, so the pooled output has no dataset-level entry). :meth:`state` is
    one float64 vector: sum it over processes and pass it to :meth:`compute`.
    """

    def __init__(self, num_classes: int, tiles: bool) -> None:
        self.num_classes, self.tiles = num_classes, tiles
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.sums = np.zeros(len(PER_IMAGE_KEYS))
        self.tiles_sum = 0.0
        self.confusion = np.zeros((self.num_classes, 256))

    def update(self, labels: np.ndarray, gt: np.ndarray, pooled: np.ndarray | None = None) -> None:
        """Add one frame (skipped when its mask has no valid pixel)."""
        valid = np.asarray(gt) != IGNORE_ID
        if not valid.any():
            return
        scores = image_metrics(labels, gt)
        self.count += 1
        self.sums += [scores[k] for k in PER_IMAGE_KEYS]
        idx = np.asarray(labels)[valid].astype(np.int64) * 256 + np.asarray(gt)[valid]
        self.confusion += np.bincount(idx, minlength=self.confusion.size).reshape(
            self.confusion.shape
        )
        if self.tiles and pooled is not None:
            self.tiles_sum += hungarian_miou(pooled, gt)

    def state(self) -> np.ndarray:
        return np.concatenate([[self.count], self.sums, [self.tiles_sum], self.confusion.ravel()])

    def compute(self, state: np.ndarray | None = None) -> dict[str, float]:
        """Means over frames (``{}`` when no frame had a mask) from ``state`` (default: own)."""
        s = self.state() if state is None else np.asarray(state, dtype=np.float64)
        count = s[0]
        if count == 0:
            return {}
        n = len(PER_IMAGE_KEYS)
        out = {k: float(v / count) for k, v in zip(PER_IMAGE_KEYS, s[1 : 1 + n], strict=True)}
        conf = s[2 + n :].reshape(self.num_classes, 256)[:, :IGNORE_ID]
        cols, rows = conf.sum(0) > 0, conf.sum(1) > 0
        out["miou_dataset"] = (
            _hungarian_mean_iou(conf[rows][:, cols])[0] if cols.any() else math.nan
        )
        if self.tiles:
            out["miou_tiles"] = float(s[1 + n] / count)
        return out
