"""Tile pooling: segment tile-based pixel art one tile at a time, by the W-Net classes in each tile.

Most pixel-art games draw their world on a grid of tiles (8 or 16 art pixels): a grass tile, a
stone tile, a cow drawn over grass. A tile's *texture* is then the set of colours it is made of,
and the W-Net's per-pixel classes act as textons: a plain grass tile is "grass class only", a tree
tile "dark-green + brown", a cow tile "grass + cow-brown + white". Pooling gives every tile the
label of its **signature**: the classes covering at least ``min_share`` of its pixels.

The W-Net sees context, so the same tile can get different classes next to a tree and in open
grass (thin "halo" classes along texture boundaries). :class:`~wnet_seg.inference.Segmenter`
therefore labels each *distinct* tile of a frame **out of context**: the network segments a
periodic mosaic of that tile alone (``reps x reps`` copies, the centre copy is read), so identical
tiles always get the same signature. Partial tiles at the frame's border keep their in-context
classes (:func:`pool_tiles`).

The grid is found from the frame itself and pooling is skipped when there is none:

- **tile size**: tiles repeat exactly, so the share of pixels equal to the pixel ``s`` columns
  (rows) away peaks at the tile size; we scan ``s`` from ``min_size`` to ``max_size`` for the
  peak over the neighbouring shifts (``min_peak`` or nothing; multiples of the tile size peak too, so the
  smallest size with at least 40 % of the top peak wins);
- **phase**: the offset at which the frame has the fewest distinct tiles (a misaligned grid cuts
  tiles in two and multiplies the distinct ones).

Label ids: a tile whose signature is one class ``c`` keeps id ``c``; each mixed signature gets the
next free id from ``K`` on, recorded in a :class:`SignatureIds` shared by every frame of a run so
ids mean the same thing across frames (``SignatureIds.table`` says which classes each id mixes).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

MAX_ID = 255  # masks are 8-bit PNGs; see SignatureIds.assign


@dataclass
class TileConfig:
    """Tile pooling options.

    Attributes:
        mode: ``"auto"`` (detect the grid, pool only when one is found), ``"off"``, or a tile size
            in native pixels (the phase is still detected).
        min_share: a class is part of a tile's signature when it covers at least this share of the
            tile's pixels.
        reps: the out-of-context mosaic of a tile has ``reps x reps`` copies (odd, >= 1).
        min_size, max_size: the tile sizes (native pixels) ``"auto"`` tries.
        min_peak: how much more often pixels repeat at the tile size than at the shifts next to it
            (share of pixels) for ``"auto"`` to accept a grid. Measured: Crafter frames 0.34-0.54
            at 16 px; our Super Mario Bros frames 0.01-0.19 (27 of 64 pass); Atari frames under
            0.03 (mostly flat background), which keep per-pixel labels.
    """

    mode: str = "auto"
    min_share: float = 0.1
    reps: int = 3
    min_size: int = 4
    max_size: int = 64
    min_peak: float = 0.05

    def __post_init__(self) -> None:
        self.mode = str(self.mode)
        if self.mode not in ("auto", "off") and not (self.mode.isdigit() and int(self.mode) >= 2):
            raise ValueError(
                f"tiles must be 'auto', 'off' or a tile size >= 2 (native pixels), got {self.mode!r}"
            )
        if int(self.reps) != self.reps or self.reps < 1 or self.reps % 2 == 0:
            raise ValueError(f"tiles reps must be an odd integer >= 1, got {self.reps}")
        if not 0.0 < self.min_share <= 0.5:
            raise ValueError(f"tiles min_share must be in (0, 0.5], got {self.min_share}")
        if not 2 <= self.min_size <= self.max_size:
            raise ValueError(
                f"tiles min_size/max_size must satisfy 2 <= min_size <= max_size, got "
                f"{self.min_size}/{self.max_size}"
            )
        if not 0.0 <= self.min_peak < 1.0:
            raise ValueError(f"tiles min_peak must be in [0, 1), got {self.min_peak}")


def tile_config(mode: str, params: dict | None = None) -> TileConfig:
    """A :class:`TileConfig` from CLI values; an unknown ``tiles_params`` key is a clear error."""
    params = dict(params or {})
    known = {f for f in TileConfig.__dataclass_fields__ if f != "mode"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown tiles_params {unknown}; valid keys: {sorted(known)}")
    return TileConfig(mode=mode, **params)


@dataclass(frozen=True)
class TileGrid:
    """Square tiles of ``size`` pixels; a tile starts at row ``offset_y`` and column ``offset_x``."""

    size: int
    offset_y: int = 0
    offset_x: int = 0


def _packed(rgb: np.ndarray) -> np.ndarray:
    """One int64 per pixel (all channels), so comparing pixels is one comparison."""
    a = np.asarray(rgb)
    if a.ndim == 2:
        return a.astype(np.int64)
    out = np.zeros(a.shape[:2], dtype=np.int64)
    for c in range(a.shape[2]):
        out = (out << 16) | a[..., c].astype(np.int64)
    return out


def _repeat_share_packed(p: np.ndarray, shift: int) -> float:
    h, w = p.shape
    shares = []
    if shift < w:
        shares.append(np.count_nonzero(p[:, shift:] == p[:, :-shift]) / (h * (w - shift)))
    if shift < h:
        shares.append(np.count_nonzero(p[shift:] == p[:-shift]) / ((h - shift) * w))
    return float(np.mean(shares)) if shares else 0.0


def tile_size_peaks(rgb: np.ndarray, sizes: list[int]) -> list[float]:
    """For each size: how much more pixels repeat at it than at the shifts ``size +- 1``."""
    p = _packed(rgb)
    share = {s: _repeat_share_packed(p, s) for s in range(min(sizes) - 1, max(sizes) + 2) if s >= 1}
    return [share[s] - max(share.get(s - 1, 0.0), share.get(s + 1, 0.0)) for s in sizes]


def _distinct_tiles(rgb: np.ndarray, size: int, oy: int, ox: int) -> float:
    """Distinct whole tiles per tile at phase ``(oy, ox)`` (partial border tiles left out)."""
    h, w = rgb.shape[:2]
    ny, nx = (h - oy) // size, (w - ox) // size
    if ny * nx < 2:
        return 1.0
    crop = rgb[oy : oy + ny * size, ox : ox + nx * size]
    tiles = crop.reshape(ny, size, nx, size, -1).transpose(0, 2, 1, 3, 4).reshape(ny * nx, -1)
    # Two random 64-bit projections (wrapping arithmetic) as a tile hash: ~100x faster than
    # np.unique(axis=0); a collision needs two equal 64-bit sums twice, negligible for a count.
    keys = tiles.astype(np.uint64) @ _hash_weights(tiles.shape[1])
    return len(np.unique(keys, axis=0)) / (ny * nx)


@functools.lru_cache(maxsize=8)
def _hash_weights(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.integers(1, 2**63, size=(n, 2), dtype=np.uint64) | np.uint64(1)


def tile_phase(rgb: np.ndarray, size: int) -> tuple[int, int]:
    """The offset ``(oy, ox)`` of a ``size`` grid with the fewest distinct tiles.

    Rows and columns are fitted one after the other (strips of whole tiles), so the cost is
    ``2 * size`` tile counts instead of ``size**2``.
    """
    ox = int(np.argmin([_distinct_tiles(rgb, size, 0, x) for x in range(size)]))
    oy = int(np.argmin([_distinct_tiles(rgb, size, y, ox) for y in range(size)]))
    return oy, ox


def detect_tile_grid(rgb: np.ndarray, config: TileConfig | None = None) -> TileGrid | None:
    """The frame's tile grid, or ``None`` when it shows none (photos, most Atari frames)."""
    cfg = config or TileConfig()
    if cfg.mode == "off":
        return None
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = rgb[..., None]
    if cfg.mode.isdigit():
        size = int(cfg.mode)
    else:
        fits = list(range(cfg.min_size, min(cfg.max_size, min(rgb.shape[:2]) // 2) + 1))
        if not fits:
            return None
        peaks = tile_size_peaks(rgb, fits)
        if max(peaks) < cfg.min_peak:
            return None
        # Multiples of the tile size peak as well: take the smallest size with a near-top peak.
        size = min(
            s for s, p in zip(fits, peaks, strict=True) if p >= max(cfg.min_peak, 0.4 * max(peaks))
        )
    oy, ox = tile_phase(rgb, size)
    return TileGrid(size, oy, ox)


@dataclass
class SignatureIds:
    """Ids of mixed tile signatures, shared by all frames of one run so ids agree across frames."""

    num_classes: int
    max_id: int | None = MAX_ID - 1  # 255 is the ignore id of masks; None: unbounded
    table: dict[tuple[int, ...], int] = field(default_factory=dict)
    overflowed: int = 0
    # Per mixed signature: how many of its tiles had each dominant class (see ``dominant``).
    dominants: dict[tuple[int, ...], dict[int, int]] = field(default_factory=dict, repr=False)

    def dominant(self, signature: tuple[int, ...]) -> int:
        """The class that dominated most tiles of ``signature`` (its first class if unseen)."""
        counts = self.dominants.get(signature)
        return max(counts, key=lambda c: (counts[c], -c)) if counts else signature[0]

    def assign(self, signature: tuple[int, ...], dominant: int) -> int:
        """Id of ``signature`` (classes sorted); a single class keeps its own id.

        Past ``max_id`` a new signature falls back to its dominant class (counted in
        ``overflowed``) so masks stay 8-bit.
        """
        if len(signature) == 1:
            return signature[0]
        seen = self.dominants.setdefault(signature, {})
        seen[dominant] = seen.get(dominant, 0) + 1
        got = self.table.get(signature)
        if got is not None:
            return got
        new = self.num_classes + len(self.table)
        if self.max_id is not None and new > self.max_id:
            self.overflowed += 1
            return dominant
        self.table[signature] = new
        return new


def tile_index(h: int, w: int, grid: TileGrid) -> tuple[np.ndarray, np.ndarray]:
    """Tile row of every row and tile column of every column (a partial first tile is tile 0)."""
    s = grid.size
    ty = (np.arange(h) - grid.offset_y + s) // s - (1 if grid.offset_y == 0 else 0)
    tx = (np.arange(w) - grid.offset_x + s) // s - (1 if grid.offset_x == 0 else 0)
    return ty, tx


def whole_tiles(rgb: np.ndarray, grid: TileGrid) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The whole tiles ``(N, size, size, C)`` in row-major order and their block ``(y0, x0, ny, nx)``."""
    h, w = rgb.shape[:2]
    s = grid.size
    y0, x0 = grid.offset_y, grid.offset_x
    ny, nx = (h - y0) // s, (w - x0) // s
    crop = rgb[y0 : y0 + ny * s, x0 : x0 + nx * s]
    tiles = crop.reshape(ny, s, nx, s, -1).transpose(0, 2, 1, 3, 4).reshape(ny * nx, s, s, -1)
    return tiles, (y0, x0, ny, nx)


def distinct(tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of one copy of each distinct tile, and each tile's index into them."""
    flat = tiles.reshape(len(tiles), -1)
    keys = flat.astype(np.uint64) @ _hash_weights(flat.shape[1])
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def mosaic(tile: np.ndarray, reps: int) -> np.ndarray:
    """``reps x reps`` copies of ``tile`` side by side: the tile as a periodic texture."""
    return np.tile(tile, (reps, reps, 1))


def signature(labels: np.ndarray, num_classes: int, min_share: float) -> tuple[int, ...]:
    """Classes covering at least ``min_share`` of ``labels`` (its most frequent one if none)."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=num_classes)
    members = np.flatnonzero(counts >= max(min_share * counts.sum(), 1))
    return tuple(int(c) for c in members) or (int(counts.argmax()),)


def pool_tiles(
    labels: np.ndarray,
    grid: TileGrid,
    ids: SignatureIds,
    min_share: float = 0.1,
) -> np.ndarray:
    """Relabel every tile of ``grid`` (partial border tiles included) by its signature (int64)."""
    labels = np.asarray(labels)
    h, w = labels.shape
    k = ids.num_classes
    if labels.size and int(labels.max()) >= k:
        raise ValueError(f"labels must be < num_classes={k}, got max {int(labels.max())}")
    ty, tx = tile_index(h, w, grid)
    nty, ntx = int(ty[-1]) + 1, int(tx[-1]) + 1
    tile_of = ty[:, None] * ntx + tx[None, :]
    counts = np.bincount(
        (tile_of * k + labels.astype(np.int64)).ravel(), minlength=nty * ntx * k
    ).reshape(nty * ntx, k)
    sizes = counts.sum(1, keepdims=True)
    member = counts >= np.maximum(min_share * sizes, 1)
    dominant = counts.argmax(1)
    tile_ids = np.empty(nty * ntx, dtype=np.int64)
    for t in range(nty * ntx):
        sig = tuple(int(c) for c in np.flatnonzero(member[t])) or (int(dominant[t]),)
        tile_ids[t] = ids.assign(sig, int(dominant[t]))
    return tile_ids[tile_of]


def pool_frame_labels(labels: np.ndarray, grid: TileGrid, min_share: float = 0.1) -> np.ndarray:
    """Tile pooling of one frame's arbitrary labels (e.g. a baseline's), with ids of its own."""
    dense = np.unique(labels, return_inverse=True)[1].reshape(np.shape(labels))
    return pool_tiles(dense, grid, SignatureIds(int(dense.max()) + 1, max_id=None), min_share)


# Segments a batch of uint8 RGB frames (N, H, W, 3) into per-pixel class ids (N, H, W).
TileSegmenter = Callable[[np.ndarray], np.ndarray]


def pool_out_of_context(
    labels: np.ndarray,
    frame: np.ndarray,
    grid: TileGrid,
    config: TileConfig,
    ids: SignatureIds,
    segment_frames: TileSegmenter,
    batch: int = 64,
) -> np.ndarray:
    """Tile pooling with each distinct whole tile of ``grid`` segmented alone (module docstring).

    ``labels`` are the in-context classes of ``frame`` (used for partial border tiles);
    ``segment_frames`` runs the network on periodic mosaics of single tiles. Returns int64 ids.
    """
    labels = np.asarray(labels).astype(np.int64, copy=False)
    out = pool_tiles(labels, grid, ids, config.min_share)
    tiles, (y0, x0, ny, nx) = whole_tiles(np.asarray(frame), grid)
    if len(tiles) == 0:
        return out
    first, inverse = distinct(tiles)
    s, c = grid.size, config.reps // 2
    tile_ids = np.empty(len(first), dtype=np.int64)
    for start in range(0, len(first), batch):
        mosaics = np.stack([mosaic(tiles[i], config.reps) for i in first[start : start + batch]])
        centre = np.asarray(segment_frames(mosaics))[:, c * s : (c + 1) * s, c * s : (c + 1) * s]
        for j, lab in enumerate(centre):
            dominant = int(np.bincount(lab.ravel(), minlength=ids.num_classes).argmax())
            tile_ids[start + j] = ids.assign(
                signature(lab, ids.num_classes, config.min_share), dominant
            )
    block = tile_ids[inverse].reshape(ny, nx)
    out[y0 : y0 + ny * s, x0 : x0 + nx * s] = np.repeat(np.repeat(block, s, 0), s, 1)
    return out
