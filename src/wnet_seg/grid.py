"""Native pixel scale and tile grid of a game screenshot, with a confidence.

Screenshots as found in the wild are resized (emulator nearest x3, a viewer's bilinear x1.5) and
JPEG-compressed; tile-based games draw their world on a grid of 8-64 px tiles that may scroll by
any offset, under HUD bands, with sprites off the grid. :func:`detect` recovers both layers:

1. **Native scale** (:mod:`wnet_seg.grid_scale`): the upscale (factor, kernel, phase) whose
   resampling model reconstructs the frame down to its noise, tested per axis against the same
   model shifted by half a cell. Photos, noise and gradients fit no factor: scale 1.0.
2. **Native image** (:func:`to_native`): each native cell snapped to its dominant colour (median of
   the cell's pixels for nearest upscales, least-squares deconvolution for bilinear ones) and the
   frame's **noise** level (0 for exact frames, else from what the scale fit knows: see
   :func:`noise_level`), which sets every
   matching tolerance below.
3. **Tile size and phase**, at native resolution: candidate sizes from the autocorrelation of the
   Laplacian (repeats at a shift), the phase of each from where "same tile as the next one" maps
   switch (they change only on tile boundaries), then a description-length (MDL) choice: the
   size/phase whose tolerant tile dictionary plus entropy-coded tile map describe the frame in the
   fewest bits per covered pixel. Tiles inside one colour cost one pixel in the dictionary, so big
   uniform areas are no evidence for any size; a size whose tiles always come in fixed ``m x m``
   arrangements (a 16 px tile built of 8 px quarters, a floor tile with a dot every 4 px that
   looks 8-periodic) is replaced by the arrangement when that describes the frame in fewer bits.
4. **HUD bands**: runs of whole-tile rows/columns at the frame's edges whose tiles repeat nowhere
   are left out, and the grid is refitted without them.
5. **Confidence** in [0, 1] from two kinds of evidence, in tiles' worth of bits: how much the
   chosen phase saves over the phase shifted by half a tile (the weaker axis), and how much the
   chosen size saves over the sizes one pixel off. A grid is claimed when its phase is pinned,
   or when its size is and its phase is no worse than the half shift (a frame of one texture,
   such as a floor of lines, tells its size but not its phase). Photos, noise, gradients and flat
   bands save nothing on either; smooth tiles (JPEG blocks of a gradient) count as flat. Below
   ``GridConfig.min_confidence`` no grid is claimed (``tile`` None; ``candidate`` keeps the size
   for :func:`vote`).
6. **The tile layer checks the scale layer**: when the preferred upscale gives no grid, the
   other accepted factors (and 1x, after a lossy fit) are fitted too, and the most confident
   grid wins.

:func:`vote` fixes the scale and tile size shared by the frames of one folder, with their most
common tile phase; :func:`refit` then fits each frame's own phase (scrolling) under that prior,
keeping the folder's where the frame cannot tell (``PRIOR_PHASE_SLACK``). :func:`tile_keys` gives every whole tile
an id, tolerant to the frame's noise (exact for exact frames). Labels go back to the input's exact
size with :func:`from_native` (nearest neighbour, never blurred).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
from scipy.sparse import csr_matrix

from wnet_seg import grid_scale

# --- Constants, measured on train data only: synthetic maps of scripts/benchmark_grid.py with
# seeds < 1000 and Crafter train worlds (seeds < 100000), under the benchmark's conditions. ---

# A folder's voted tile phase (``refit``) is kept unless the frame's own best phase describes it
# in less than 1 / PRIOR_PHASE_SLACK of the bits: one-pixel lines on a tile's border (a MiniGrid
# floor) fit the phase one pixel off as well, and JPEG noise can tip a frame to it. Chosen on
# validation (docs/experiments.md): 1.1 fixes MiniGrid only, 1.2-1.6 also a Craftax-Classic
# frame; 2.5 breaks the phase of scrolled crops.
PRIOR_PHASE_SLACK = 1.2

# Noise level (grey levels) of native images, which sets every tolerance (noise_level): 0 for
# exact ones, NOISE_FLOOR for clean deconvolved bilinear upscales (rounding), LOSSY_NOISE for the
# rest (JPEG: copies of one tile differ by RMS up to 20, so a fixed level, not an estimate).
NOISE_FLOOR = 1.0
LOSSY_NOISE = 6.0
# Pixels match within PIXEL_TOL * noise per channel (24 for JPEG: the same pixel of two copies of
# a tile differs by <= 21 in 90 % of pixels, different tiles' pixels by >= 37 in 95 %); tiles match
# within an RMS difference of TILE_TOL * noise (16: copies <= 20 RMS, different tiles >= 11-42).
PIXEL_TOL = 4.0
TILE_TOL = 2.7
# ... and their mean luma within DC_TOL * noise (2.4 for JPEG). Copies of one tile keep their mean
# luma (JPEG codes luma at full resolution, a deconvolved bilinear upscale keeps local means):
# <= 1.43 grey levels over 791 copies in synthetic maps and Craftax train frames under JPEG 85 and
# bilinear 1.5 + JPEG 85, while RGB RMS reaches 29 (4:2:0 chroma). JPEG blocks of a gradient,
# or a bilinear upscale's interpolation pattern on one, are copies of each other up to a mean
# shift of their slope times the block size: the tolerance alone would take them for one tile.
DC_TOL = 0.4
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# Lossy frames: a tile whose neighbouring pixels all differ by at most max(SMOOTH_STEP * noise,
# SMOOTH_MIN) is flat too (a smooth shading, described by its mean like a uniform tile): JPEG'd
# gradients repeat their 8 px blocks exactly along their level lines, and a bilinear upscale's
# rounding pattern repeats on one; such repeats are not tiles. Measured under JPEG 85 (8 frames
# each): pixel-art tiles that are not uniform have steps >= 24 (Craftax, 1st percentile; the
# dotted floor of sparse synthetic maps >= 15), smooth random fields <= 8 (median).
SMOOTH_STEP = 2.0
SMOOTH_MIN = 6.0
# Exact frames (a palette): steps of at most SMOOTH_EXACT grey levels make a tile flat (a gentle
# gradient has few enough colours to pass the palette test, and its JPEG blocks repeat exactly).
SMOOTH_EXACT = 4
# MDL: bits per dictionary pixel (a pixel-art palette of ~64 colours).
BITS_PER_PIXEL = 6.0
# _coarsen accepts m x m arrangements while their grid's MDL cost is at most this many times the
# finer one's: true coarsenings (8 -> 16 on dotted-floor dungeons, 8 -> 24 and 16 -> 32 on maps
# with periodic or uniform parts, clean or JPEG 85) cost 1.1-2.8x; false ones (Crafter train
# 16 -> 32: 5.6-8x, median 8.1) more.
COARSEN_SLACK = 3.3
# A step up to TENTATIVE_SLACK is taken only when the coarser grid is confident and more
# confident than the finer one (_more_confident). Val: 3.3 (no such step) -> 4.0/4.5/6.0 sparse
# bilinear+JPEG 88 -> 92 %, every other cell equal, no false grids.
TENTATIVE_SLACK = 4.5
# Best sizes whose frame-aligned phases are fitted too (_fit_tiles). Val (summed right-share of
# the 50 game/synthetic cells): 0 -> 4834, 1 -> 4838, 2 -> 4834 with ~2 fits more per frame.
ALIGNED_SIZES = 1
THREE_HALVES = True  # also fit 3/2 of the best size (see _fit_tiles)
SIZE_CANDIDATES = 4  # tile sizes (autocorrelation peaks, not multiples of a stronger one) fitted
# Confidence (_confidence) from two kinds of evidence, in tiles' worth of bits (_evidence): how
# much the fitted grid saves over the phase shifted by half a tile (the weaker axis: PHASE_*) and
# over the sizes one pixel off (SIZE_*). A grid is claimed when it beats both and one of them by a
# margin: its phase (>= PHASE_TILES tiles and >= PHASE_SHARE of its tiles) or its size (>=
# SIZE_TILES and >= SIZE_SHARE of its tiles; frames of one texture, e.g. a floor of lines, tell
# the size, not the phase); and when most of its non-flat tiles are copies (>= REPEAT_SHARE:
# JPEG's blocks make a photo's smooth areas flat at their phase, evidence without a repeated
# tile). Chosen on 36 frames per family (synthetic seed 1, the captures' train frames) under the
# benchmark's five conditions, checked on seed 0 / val frames (scripts/benchmark_grid.py --split
# val): no false grid on either; photos reach 0.034 of their tiles in phase evidence with a worse
# size, 0.064 in size evidence; right grids of small game frames (Craftax under JPEG) 0.05-0.1.
PHASE_TILES = 12.0
PHASE_SHARE = 0.03
SIZE_TILES = 6.0
SIZE_SHARE = 0.08
REPEAT_SHARE = 0.35
MIN_CONFIDENCE = 0.5
# A grid that passes the size test but fails the phase test needs this confidence (rescaled to
# 0.5 by _confidence) to be claimed. Validation: such false grids on flat Atari-like playfields
# 0.50-0.52 (3 of 200 frames), such true grids 0.58 and up.
SIZE_ONLY_CONFIDENCE = 0.55
VOTE_CONFIDENCE = 2.0  # summed confidence of the agreeing frames that vote() needs
BAND_SHARE = 0.6  # a tile row/column is HUD-like when this share of its tiles repeats nowhere


@dataclass
class GridConfig:
    """Options of :func:`detect`.

    Attributes:
        scale: ``"auto"`` (detect), ``"off"`` (1.0, the frame is native) or a factor >= 1 (input
            px per native px; the kernel and phase are still fitted).
        tile: ``"auto"``, ``"off"`` (no tile grid) or a tile size in native px (phase fitted).
        min_tile, max_tile: tile sizes ``"auto"`` considers (native px).
        max_scale: largest upscale factor ``"auto"`` considers.
        min_confidence: below it ``detect`` claims no grid (``tile=None``).
        bands: look for HUD/status bands at the frame's edges and leave them out.
    """

    scale: str | float = "auto"
    tile: str | int = "auto"
    min_tile: int = 8
    max_tile: int = 64
    max_scale: float = 8.0
    min_confidence: float = MIN_CONFIDENCE
    bands: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.scale, str) and self.scale not in ("auto", "off"):
            self.scale = _number("scale", self.scale, float)
        if not isinstance(self.scale, str) and not 1.0 <= float(self.scale) <= 64.0:
            raise ValueError(f"grid scale must be 'auto', 'off' or in [1, 64], got {self.scale}")
        if isinstance(self.tile, str) and self.tile not in ("auto", "off"):
            self.tile = _number("tile", self.tile, int)
        if not isinstance(self.tile, str) and not 2 <= int(self.tile) <= 1024:
            raise ValueError(f"grid tile must be 'auto', 'off' or in [2, 1024], got {self.tile}")
        if not 2 <= self.min_tile <= self.max_tile:
            raise ValueError(
                f"grid min_tile/max_tile must satisfy 2 <= min_tile <= max_tile, got "
                f"{self.min_tile}/{self.max_tile}"
            )
        if not 1.2 <= self.max_scale <= 64:
            raise ValueError(f"grid max_scale must be in [1.2, 64], got {self.max_scale}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"grid min_confidence must be in [0, 1], got {self.min_confidence}")


def _number(name: str, value: str, kind: type) -> float | int:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"grid {name} must be 'auto', 'off' or a number, got {value!r}") from None


@dataclass(frozen=True)
class FrameGrid:
    """What :func:`detect` found in one frame.

    Attributes:
        scale: input px per native px (1.0: the frame is native).
        kernel: the upscale's kernel, ``"nearest"``, ``"linear"`` or ``"none"`` (scale 1).
        origin: ``(y, x)`` input-px position of native cell (0, 0)'s top-left corner, in
            ``(0.5 - scale, 0.5]`` (cell 0 holds pixel 0's centre; the frame's edge may cut it).
        input_hw, native_hw: frame size and native image size.
        tile: tile size in native px; ``None`` when no grid is claimed.
        offset: ``(y, x)`` native px of a whole tile's top-left corner, ``0 <= offset < tile``.
        confidence: evidence for the tile grid in [0, 1] (0 without one).
        bands: HUD/status bands left out of the grid: ``("rows" | "cols", start, stop)`` native px.
        noise: the native image's noise level (grey levels; 0 = exact, matching is exact).
        candidate: the best tile size found, also when its confidence is too low to claim it
            (``tile`` None); :func:`vote` pools these over a folder. None without any fit.
    """

    scale: float = 1.0
    kernel: str = "none"
    origin: tuple[float, float] = (0.0, 0.0)
    input_hw: tuple[int, int] = (0, 0)
    native_hw: tuple[int, int] = (0, 0)
    tile: int | None = None
    offset: tuple[int, int] = (0, 0)
    confidence: float = 0.0
    bands: tuple[tuple[str, int, int], ...] = ()
    noise: float = 0.0
    candidate: int | None = None

    def record(self) -> dict:
        """JSON-able summary."""
        return {
            "scale": float(self.scale),
            "kernel": self.kernel,
            "origin": [float(v) for v in self.origin],
            "input_hw": [int(v) for v in self.input_hw],
            "native_hw": [int(v) for v in self.native_hw],
            "tile": None if self.tile is None else int(self.tile),
            "offset": [int(v) for v in self.offset],
            "confidence": round(float(self.confidence), 4),
            "bands": [[a, int(b), int(c)] for a, b, c in self.bands],
            "noise": round(float(self.noise), 3),
            "candidate": None if self.candidate is None else int(self.candidate),
        }

    def region(self) -> tuple[slice, slice]:
        """Native rows and columns inside the grid (outside every band)."""
        (y0, y1), (x0, x1) = (0, self.native_hw[0]), (0, self.native_hw[1])
        for axis, start, stop in self.bands:
            if axis == "rows":
                y0, y1 = (stop, y1) if start == 0 else (y0, start)
            else:
                x0, x1 = (stop, x1) if start == 0 else (x0, start)
        return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))

    def tile_block(self) -> tuple[int, int, int, int]:
        """``(y0, x0, ny, nx)``: the whole tiles inside :meth:`region` (what :func:`tile_keys`
        sees) are ``ny`` rows by ``nx`` columns of them from native row ``y0``, column ``x0``."""
        if self.tile is None:
            raise ValueError("the grid has no tile size (detect claimed no grid)")
        rs, cs = self.region()
        t = int(self.tile)
        y0 = rs.start + (self.offset[0] - rs.start) % t
        x0 = cs.start + (self.offset[1] - cs.start) % t
        return y0, x0, max(0, (rs.stop - y0) // t), max(0, (cs.stop - x0) // t)


# ------------------------------------------------------------------------- native resolution


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (H, W, 3) frame, got {rgb.dtype} {rgb.shape}")
    if min(rgb.shape[:2]) < 2:
        raise ValueError(f"frame {rgb.shape[0]}x{rgb.shape[1]} is too small")
    return rgb


def _cell_index(n_px: int, scale: float, origin: float) -> np.ndarray:
    """Native cell of each input pixel along an axis (the cell its centre falls in)."""
    return np.floor((np.arange(n_px) + 0.5 - origin) / scale).astype(np.int64)


def _cell_members(n_px: int, scale: float, origin: float) -> np.ndarray:
    """``(cells, m)`` input pixels of every cell along an axis, leaving out pixels whose centre
    lies on a cell boundary (resizers assign those either way) unless that leaves none; short
    cells repeat their pixels."""
    u = (np.arange(n_px) + 0.5 - origin) / scale
    idx = np.floor(u).astype(np.int64)
    edge = np.minimum(u - idx, idx + 1 - u) * scale < grid_scale.TIE
    n = int(idx[-1]) + 1
    keep = ~edge | (np.bincount(idx[~edge], minlength=n) == 0)[idx]
    px, cell = np.flatnonzero(keep), idx[keep]
    starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    lengths = np.diff(np.r_[starts, len(px)])
    m = int(lengths.max())
    return px[starts[:, None] + np.arange(m)[None, :] % lengths[:, None]]


def to_native(rgb: np.ndarray, grid: FrameGrid) -> np.ndarray:
    """The native image ``grid.native_hw`` (uint8 RGB): each native cell's dominant colour.

    Nearest upscales take the per-channel median of the cell's pixels (exact when the upscale is
    lossless and integer; robust to JPEG); linear upscales are deconvolved by least squares (the
    cell values whose linear interpolation best matches the frame), which undoes the blending.
    """
    rgb = _check_rgb(rgb)
    if grid.kernel == "none" or grid.scale == 1.0:
        return rgb.copy()
    if grid.kernel == "linear":
        return _deconvolve(rgb, grid.scale, grid.origin)
    rows = _cell_members(rgb.shape[0], grid.scale, grid.origin[0])
    cols = _cell_members(rgb.shape[1], grid.scale, grid.origin[1])
    my, mx = rows.shape[1], cols.shape[1]
    if _cells_uniform(rgb, grid, rows[:, 0], cols[:, 0]):  # lossless: the median is any member
        return rgb[rows[:, 0]][:, cols[:, 0]]
    block = rgb[rows[:, :, None, None], cols[None, None, :, :]]  # (ny, my, nx, mx, 3)
    if my * mx == 1:
        return block[:, 0, :, 0].copy()
    block = block.transpose(0, 2, 4, 1, 3).reshape(len(rows), len(cols), 3, my * mx)
    return np.partition(block, (my * mx) // 2, axis=-1)[..., (my * mx) // 2]


def _cells_uniform(rgb: np.ndarray, grid: FrameGrid, rows: np.ndarray, cols: np.ndarray) -> bool:
    """Whether every input pixel equals the pixel ``(rows[cell y], cols[cell x])`` of its cell (a
    lossless nearest upscale): each input row against its cell's row, then, within those rows,
    each column against its cell's column. The first rows go first: a lossy frame fails there."""
    h, w = rgb.shape[:2]
    rep = rows[np.clip(_cell_index(h, grid.scale, grid.origin[0]), 0, len(rows) - 1)]
    band = min(h, 4 * math.ceil(grid.scale))
    if not (np.array_equal(rgb[rep[:band]], rgb[:band]) and np.array_equal(rgb[rep], rgb)):
        return False
    sub = rgb[rows]
    rep = cols[np.clip(_cell_index(w, grid.scale, grid.origin[1]), 0, len(cols) - 1)]
    return np.array_equal(sub[:, rep], sub)


def _deconvolve(rgb: np.ndarray, scale: float, origin: tuple[float, float]) -> np.ndarray:
    """Separable least-squares inverse of a linear upscale, rounded to uint8."""
    h, w, _ = rgb.shape
    x = _deconvolve_axis(rgb.astype(np.float64).reshape(h, w * 3), scale, origin[0])
    nh = x.shape[0]
    x = x.reshape(nh, w, 3).transpose(1, 0, 2).reshape(w, nh * 3)
    x = _deconvolve_axis(x, scale, origin[1])
    out = x.reshape(-1, nh, 3).transpose(1, 0, 2)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _deconvolve_axis(y: np.ndarray, scale: float, origin: float) -> np.ndarray:
    """Least-squares native rows ``x`` (n, M) with ``A x ~ y`` (L, M), ``A`` the linear upscale
    along axis 0 (two weights per pixel): solves the tridiagonal normal equations."""
    i0, i1, w0, w1, n = (v[0] for v in grid_scale.linear_weights(len(y), [scale], [origin]))
    px = np.arange(len(y))
    a = csr_matrix(
        (np.r_[w0, w1], (np.r_[px, px], np.r_[i0, i1])), shape=(len(y), int(n))
    )  # duplicates (i0 == i1 at the edges) are summed
    ata = (a.T @ a).tocsr()
    diag = ata.diagonal() + 1e-9
    off = ata.diagonal(1).copy()
    return grid_scale.solve_normal_tridiagonal(diag, off, np.asarray(a.T @ y))


def from_native(labels: np.ndarray, grid: FrameGrid, out_hw: tuple[int, int]) -> np.ndarray:
    """Native ``labels`` (or any per-cell map, extra trailing axes allowed) at the input's exact
    size ``out_hw``: each input pixel takes its cell's value (nearest neighbour; never blurs).

    ``from_native(to_native(x, g), g, x.shape[:2])`` equals ``x`` for a lossless nearest upscale.
    """
    labels = np.asarray(labels)
    h, w = int(out_hw[0]), int(out_hw[1])
    if grid.kernel == "none" or grid.scale == 1.0:
        if labels.shape[:2] != (h, w):
            raise ValueError(f"labels {labels.shape[:2]} must be {h}x{w} at scale 1")
        return labels.copy()
    rows = np.clip(_cell_index(h, grid.scale, grid.origin[0]), 0, None)
    cols = np.clip(_cell_index(w, grid.scale, grid.origin[1]), 0, None)
    if rows[-1] >= labels.shape[0] or cols[-1] >= labels.shape[1]:
        raise ValueError(
            f"native map {labels.shape[:2]} too small for {h}x{w} at scale {grid.scale}, origin "
            f"{grid.origin} (needs {rows[-1] + 1}x{cols[-1] + 1})"
        )
    return labels[rows][:, cols]


def sample_native(labels: np.ndarray, grid: FrameGrid) -> np.ndarray:
    """A full-resolution label map at the native cells: each cell takes the label of the input
    pixel nearest its centre (nearest neighbour; for maps that are not colours, e.g. masks)."""
    labels = np.asarray(labels)
    if grid.kernel == "none" or grid.scale == 1.0:
        return labels.copy()

    def centres(n_cells: int, n_px: int, origin: float) -> np.ndarray:
        c = np.floor(origin + (np.arange(n_cells) + 0.5) * grid.scale)
        return np.clip(c, 0, n_px - 1).astype(np.int64)

    rows = centres(grid.native_hw[0], labels.shape[0], grid.origin[0])
    cols = centres(grid.native_hw[1], labels.shape[1], grid.origin[1])
    return labels[rows][:, cols]


def _packed(native: np.ndarray) -> np.ndarray:
    """One int32 per pixel (RGB), so comparing pixels is one comparison."""
    x = native.astype(np.int32)
    return (x[..., 0] << 16) | (x[..., 1] << 8) | x[..., 2]


def noise_level(kernel: str, palette: bool, lossy_fit: bool) -> float:
    """Noise level (grey levels) of a native image: 0 (exact matching) when the frame's colours
    form a palette and the resampling is undone exactly (none, or nearest with a lossless fit: a
    cell's pixels are one colour); ``NOISE_FLOOR`` for a lossless bilinear fit (deconvolution
    rounds); else ``LOSSY_NOISE``: a lossy fit, or a frame without a palette, which at 1x or
    nearest means JPEG (or a photo). Frame-level noise estimates fail both ways on pixel art:
    busy clean textures look noisy, JPEG'd frames that are mostly black look clean."""
    if kernel == "linear":
        return LOSSY_NOISE if lossy_fit else NOISE_FLOOR
    return 0.0 if palette and not lossy_fit else LOSSY_NOISE


# ----------------------------------------------------------------------------- tile matching


@functools.lru_cache(maxsize=32)
def _hash_weights(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.integers(1, 2**63, size=(2, n), dtype=np.uint64) | np.uint64(1)


@functools.lru_cache(maxsize=256)
def _projection(n: int, dims: int = 32) -> np.ndarray:
    rng = np.random.default_rng(n + 1)
    return (rng.standard_normal((n, dims)) / math.sqrt(dims)).astype(np.float32)


def _exact_ids(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first index, id of every row, count) of the distinct rows of ``rows`` (N, D) ints, by a
    random 64-bit wrapping polynomial hash (a collision among 10**4 rows: ~1e-11)."""
    keys = rows.astype(np.uint64, copy=False) @ _hash_weights(rows.shape[1])[0]  # wraps mod 2**64
    _, first, inv, cnt = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    return first, inv.reshape(-1), cnt


@functools.lru_cache(maxsize=32)
def _luma_weights(n: int) -> np.ndarray:
    return np.tile(_LUMA / (n // 3), n // 3)


def _mean_luma(rows: np.ndarray) -> np.ndarray:
    """Mean luma of each row of interleaved RGB pixels ``(N, 3 * P)``."""
    return rows.astype(np.float32, copy=False) @ _luma_weights(rows.shape[1])


def cluster_rows(rows: np.ndarray, tol_rms: float, dc_tol: float = math.inf) -> np.ndarray:
    """Ids of ``rows`` (N, D) uint8: identical rows always share one; with ``tol_rms > 0`` rows
    whose RMS difference is within ``tol_rms`` (and, for interleaved RGB rows, whose mean luma
    differs by at most ``dc_tol``) share one too.

    Leader clustering: the most frequent unassigned row takes every unassigned row within the
    tolerance (so members are within ``2 * tol_rms`` of each other; distances exact).
    """
    first, inv, cnt = _exact_ids(rows)
    if tol_rms <= 0 or len(first) == 1:
        return inv
    uniq = rows[first].astype(np.float32)
    thr = tol_rms**2 * uniq.shape[1]
    sq = (uniq * uniq).sum(1)
    luma = _mean_luma(uniq) if math.isfinite(dc_tol) else np.zeros(len(uniq), np.float32)
    lab = np.full(len(uniq), -1, np.int64)
    k = 0
    for i in np.argsort(-cnt, kind="stable"):
        if lab[i] >= 0:
            continue
        free = np.flatnonzero(lab < 0)
        d2 = sq[free] + sq[i] - 2 * (uniq[free] @ uniq[i])
        lab[free[(d2 <= thr) & (np.abs(luma[free] - luma[i]) <= dc_tol)]] = k
        lab[i] = k
        k += 1
    return lab[inv]


def _whole_tiles(image: np.ndarray, tile: int, oy: int, ox: int) -> tuple[np.ndarray, tuple]:
    """Whole tiles ``(N, tile*tile[, C])`` of an ``(H, W[, C])`` image in row-major order and
    their count ``(ny, nx)``."""
    h, w = image.shape[:2]
    ny, nx = max(0, (h - oy) // tile), max(0, (w - ox) // tile)
    crop = image[oy : oy + ny * tile, ox : ox + nx * tile]
    tiles = crop.reshape(ny, tile, nx, tile, *image.shape[2:]).swapaxes(1, 2)
    return tiles.reshape(ny * nx, tile * tile, *image.shape[2:]), (ny, nx)


@dataclass(frozen=True)
class _Native:
    """A native image with what every grid fit reads, computed once per image (a frame's
    detection fits ~20 grids to it): packed colours and each pixel's largest step to its lower
    and right neighbours."""

    image: np.ndarray  # (H, W, 3) uint8
    noise: float
    code: np.ndarray  # (H, W) packed RGB (_packed), uint64 for hashing
    planes: np.ndarray  # (3, H, W) int16
    planes8: np.ndarray  # (3, H, W) uint8
    steps: np.ndarray  # (2, H, W) uint8: max over channels of |down|, |right| step; 0 past the edge

    @classmethod
    def of(cls, image: np.ndarray, noise: float) -> _Native:
        p8 = np.ascontiguousarray(np.moveaxis(image, -1, 0))
        steps = np.zeros((2, *image.shape[:2]), np.uint8)
        for axis, (a, b) in enumerate(((p8[:, 1:], p8[:, :-1]), (p8[:, :, 1:], p8[:, :, :-1]))):
            d = np.maximum(a, b) - np.minimum(a, b)  # |a - b| without leaving uint8
            out = steps[0, :-1] if axis == 0 else steps[1, :, :-1]
            np.maximum(np.maximum(d[0], d[1]), d[2], out=out)
        code = _packed(image).astype(np.uint64)
        return cls(image, float(noise), code, p8.astype(np.int16), p8, steps)

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]

    def tile_steps(self, tile: int, oy: int, ox: int, ny: int, nx: int) -> np.ndarray:
        """Largest 4-neighbour step inside each whole tile (``(ny * nx,)``, row-major)."""
        t, y1, x1 = tile, oy + ny * tile, ox + nx * tile
        down, right = self.steps[0, oy:y1, ox:x1], self.steps[1, oy:y1, ox:x1]
        if t > 20:  # few, big tiles: one strided reduction
            d = down.reshape(ny, t, nx, t)[:, : t - 1].max((1, 3))
            r = right.reshape(ny, t, nx, t)[:, :, :, : t - 1].max((1, 3))
            return np.maximum(d, r).reshape(-1)
        # small tiles: fold the tiles' rows (columns) but their last together, then reduce
        d, r = down[0::t].copy(), right[:, 0::t].copy()
        for k in range(1, t - 1):
            np.maximum(d, down[k::t], out=d)
            np.maximum(r, right[:, k::t], out=r)
        return np.maximum(d.reshape(ny, nx, t).max(2), r.reshape(ny, t, nx).max(1)).reshape(-1)

    def gather(self, image: np.ndarray, tile: int, oy: int, ox: int, nx: int, which: np.ndarray):
        """Whole tiles ``(n, tile * tile[, C])`` of ``image`` (this frame's ``image`` or ``code``)
        at row-major tile indices ``which`` (``nx`` tiles a row), copying only those tiles."""
        ny = (image.shape[0] - oy) // tile
        crop = image[oy : oy + ny * tile, ox : ox + nx * tile]
        view = crop.reshape(ny, tile, nx, tile, *image.shape[2:])  # a view: no copy
        return view[which // nx, :, which % nx].reshape(len(which), tile * tile, *image.shape[2:])

    def tile_stats(self, tile: int, oy: int, ox: int, ny: int, nx: int):
        """Per whole tile (row-major) and channel: the spread ``max - min`` ``(N, 3)`` int16 and the
        sum ``(N, 3)`` int64, reduced along the tile's rows in one strided pass, then per tile."""
        a = self.planes8[:, oy : oy + ny * tile, ox : ox + nx * tile].reshape(3, ny, tile, -1)
        starts = np.arange(0, nx * tile, tile)
        hi = np.maximum.reduceat(a.max(2), starts, axis=2)
        lo = np.minimum.reduceat(a.min(2), starts, axis=2)
        total = np.add.reduceat(a.sum(2, dtype=np.int32), starts, axis=2)
        spread = (hi.astype(np.int16) - lo).reshape(3, -1).T
        return spread, total.reshape(3, -1).T.astype(np.int64)


def _tile_ids(nat: _Native, tile: int, oy: int, ox: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(id per whole tile, flat flag per tile, (ny, nx)) for scoring a grid. Flat tiles (one
    colour, within the pixel tolerance when lossy, or smooth: see ``SMOOTH_*``) are grouped by
    colour; the others exactly, or (lossy) identical ones first, then by single-linkage matching
    on random projections. Ids of uniform groups come first."""
    h, w = nat.shape
    ny, nx = max(0, (h - oy) // tile), max(0, (w - ox) // tile)
    ids = np.zeros(ny * nx, np.int64)
    steps = nat.tile_steps(tile, oy, ox, ny, nx)
    if nat.noise == 0:
        uniform = steps == 0  # no step inside: one colour
        smooth = ~uniform & (steps <= SMOOTH_EXACT)
        key = nat.code[oy : oy + ny * tile : tile, ox : ox + nx * tile : tile].reshape(-1)
        key = key.astype(np.int64)
        if smooth.any():  # keyed by their mean colour
            mean = nat.gather(nat.image, tile, oy, ox, nx, np.flatnonzero(smooth)).mean(1)
            mean = np.rint(mean / (2 * SMOOTH_EXACT)).astype(np.int64)
            key[smooth] = -1 - ((mean[:, 0] << 16) | (mean[:, 1] << 8) | mean[:, 2])
        uniform |= smooth  # flat: keyed by their colour, smooth ones by their mean colour
        colour = key[uniform, None]
    else:
        tol_px = PIXEL_TOL * nat.noise
        spread, total = nat.tile_stats(tile, oy, ox, ny, nx)
        uniform = (spread <= tol_px).all(1) | (steps <= _smooth_step(nat.noise))
        colour = np.rint(total[uniform] / (tile * tile) / (2 * tol_px)).astype(np.int64)
    k = 0
    if uniform.any():
        ids[uniform] = _exact_ids(colour)[1]
        k = int(ids[uniform].max()) + 1
    if (~uniform).any():
        rest = np.flatnonzero(~uniform)
        first, inv, _ = _exact_ids(nat.gather(nat.code, tile, oy, ox, nx, rest))
        if nat.noise > 0 and len(first) > 1:
            rows = nat.gather(nat.image, tile, oy, ox, nx, rest[first])
            rows = rows.reshape(len(first), -1).astype(np.float32)
            inv = _single_linkage(rows, TILE_TOL * nat.noise, DC_TOL * nat.noise)[inv]
        ids[~uniform] = k + inv
    return ids, uniform, (ny, nx)


def _smooth_step(noise: float) -> float:
    return max(SMOOTH_STEP * noise, SMOOTH_MIN)


PAIR_CHUNK = 4096  # tile pairs compared at once (_single_linkage) above GRAM_ROWS distinct tiles
GRAM_ROWS = 2048  # up to this many: distances from one Gram matrix


def _single_linkage(rows: np.ndarray, tol_rms: float, dc_tol: float) -> np.ndarray:
    """Connected components of "RMS difference within ``tol_rms`` (on 32 random projections)
    and mean luma within ``dc_tol``" over interleaved RGB rows ``(N, 3 * P)``. Only pairs within
    the luma tolerance are compared (rows sorted by mean luma: a window each)."""
    n = len(rows)
    p = rows @ _projection(rows.shape[1])
    luma = _mean_luma(rows)
    order = np.argsort(luma, kind="stable")
    ends = np.searchsorted(luma[order], luma[order] + dc_tol, side="right")
    counts = ends - np.arange(n) - 1  # partners j > i (in luma order) of each row
    total = int(counts.sum())
    if total == 0:
        return np.arange(n)
    i = np.repeat(np.arange(n), counts)
    j = i + 1 + np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    a, b = order[i], order[j]
    thr = tol_rms**2 * rows.shape[1]
    if n <= GRAM_ROWS:  # |pa - pb|^2 = |pa|^2 + |pb|^2 - 2 pa.pb from one Gram matrix (BLAS)
        sq = (p * p).sum(1)
        close = sq[a] + sq[b] - 2 * (p @ p.T)[a, b] <= thr
    else:
        close = np.empty(total, bool)
        for s in range(0, total, PAIR_CHUNK):  # small temporaries: big ones cost page faults
            d = p[a[s : s + PAIR_CHUNK]] - p[b[s : s + PAIR_CHUNK]]
            d *= d
            close[s : s + PAIR_CHUNK] = d.sum(1) <= thr
    if not close.any():
        return np.arange(n)
    return _components(a[close], b[close], n)


def _components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Connected components of the undirected graph on ``n`` nodes with edges ``(a, b)``,
    numbered by their smallest node (as ``scipy.sparse.csgraph.connected_components`` numbers
    them): each node takes the smallest label across its edges, with pointer jumping, until
    nothing changes. A few small vectorised passes beat building a sparse matrix here."""
    lab = np.arange(n)
    while True:
        m = np.minimum(lab[a], lab[b])
        new = lab.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]
        if np.array_equal(new, lab):
            return np.unique(lab, return_inverse=True)[1]
        lab = new


def tile_keys(native: np.ndarray, grid: FrameGrid, exact: bool = False) -> tuple[np.ndarray, ...]:
    """Ids of every whole tile of the grid and one representative tile index per id.

    Returns ``(ids (ny, nx), representatives (K,), (y0, x0))``: tile ``(i, j)`` covers native rows
    ``y0 + i*tile ...`` and columns ``x0 + j*tile ...`` (bands excluded); ``representatives[k]``
    is the row-major index of the first tile with id ``k``. Near-identical tiles (within the
    frame's noise, ``grid.noise``) share an id, different ones do not; an exact frame
    (``noise == 0``) or ``exact=True`` matches exactly (the same as hashing the tile bytes).
    """
    native = np.asarray(native)
    y0, x0, ny, nx = grid.tile_block()
    t = int(grid.tile)
    tiles, _ = _whole_tiles(native[y0 : y0 + ny * t, x0 : x0 + nx * t], t, 0, 0)
    if len(tiles) == 0:
        return np.zeros((ny, nx), np.int64), np.zeros(0, np.int64), (y0, x0)
    noise = 0.0 if exact else grid.noise
    if noise == 0:
        first, inv, _ = _exact_ids(tiles.reshape(len(tiles), -1))
        order = np.argsort(first)
        ids = np.argsort(order)[inv]
    else:
        raw = cluster_rows(tiles.reshape(len(tiles), -1), TILE_TOL * noise, DC_TOL * noise)
        _, first, inv = np.unique(raw, return_index=True, return_inverse=True)
        order = np.argsort(first)
        ids = np.argsort(order)[inv.reshape(-1)]
    reps = np.full(int(ids.max()) + 1, -1, np.int64)
    reps[ids[::-1]] = np.arange(len(ids))[::-1]
    return ids.reshape(ny, nx), reps, (y0, x0)


# --------------------------------------------------------------------------- tile size/phase


def _same(nat: _Native, axis: int, d: int) -> np.ndarray:
    """Pixels equal (within the pixel tolerance per channel) to the pixel ``d`` further along
    ``axis``."""
    tol, code, planes = PIXEL_TOL * nat.noise, nat.code, nat.planes
    if tol <= 0:
        a = code[:, d:] if axis == 1 else code[d:]
        b = code[:, :-d] if axis == 1 else code[:-d]
        return a == b
    a = planes[:, :, d:] if axis == 1 else planes[:, d:]
    b = planes[:, :, :-d] if axis == 1 else planes[:, :-d]
    diff = np.abs(a - b)
    return (diff[0] <= tol) & (diff[1] <= tol) & (diff[2] <= tol)


def _size_candidates(native: np.ndarray, cfg: GridConfig) -> list[int]:
    """Tile sizes where the Laplacian's autocorrelation (axis shifts averaged) peaks above both
    neighbouring shifts: the ``SIZE_CANDIDATES`` strongest peaks that are not multiples of a
    stronger one, from the Laplacian of the image and of its 2x2 box blur (JPEG noise swamps
    the first, 1-px details the second), merged in turn; plus their halves (a tile whose copies
    are mostly two tiles apart peaks at twice its size; :func:`_coarsen` goes back up)."""
    h, w = native.shape[:2]
    hi = min(cfg.max_tile, h // 2, w // 2)
    if hi < cfg.min_tile:
        return []
    x = native.astype(np.float32) @ _projection(3, 2)  # two random colour mixes (H, W, 2)
    blur = x.copy()
    blur[:-1] += x[1:]
    blur[:, :-1] += blur[:, 1:].copy()
    lists = [_peaks(_laplacian(v), cfg.min_tile, hi) for v in (x, blur / 4)]
    out: list[int] = []
    for size in (t for pair in zip(*lists, strict=False) for t in pair):
        if all(size % t for t in out) and len(out) < SIZE_CANDIDATES:
            out.append(size)
    halves = [t // 2 for t in out if t % 2 == 0 and t // 2 >= cfg.min_tile]
    return out + [t for t in halves if t not in out]


def _laplacian(x: np.ndarray) -> np.ndarray:
    lap = 4 * x
    lap[1:] -= x[:-1]
    lap[:-1] -= x[1:]
    lap[:, 1:] -= x[:, :-1]
    lap[:, :-1] -= x[:, 1:]
    return lap


def _peaks(lap: np.ndarray, lo: int, hi: int) -> list[int]:
    """Sizes in ``[lo, hi]`` by decreasing autocorrelation peak contrast (positive only), each
    not a multiple of an earlier one. Only axis shifts are needed: the autocorrelation at
    ``(0, d)`` is the sum of the rows' 1-D autocorrelations (and likewise for columns)."""
    e = np.zeros(hi + 2)
    for lines in (lap.transpose(2, 0, 1), lap.transpose(2, 1, 0)):  # rows, then columns
        lines = np.ascontiguousarray(lines).reshape(-1, lines.shape[-1])
        n = scipy.fft.next_fast_len(lines.shape[1] + hi + 2)  # zero padding: no wrap-around
        f = scipy.fft.rfft(lines, n=n, axis=1)
        ac = scipy.fft.irfft((f.real**2 + f.imag**2).sum(0), n=n)
        if ac[0] <= 0:
            return []
        e += ac[: hi + 2] / (2 * ac[0])
    sizes = np.arange(lo, hi + 1)
    contrast = e[sizes] - np.maximum(e[sizes - 1], e[sizes + 1])
    out: list[int] = []
    for i in np.argsort(-contrast):
        if contrast[i] <= 0 or len(out) == SIZE_CANDIDATES:
            break
        if all(sizes[i] % t for t in out):
            out.append(int(sizes[i]))
    return out


def _box_sums(m: np.ndarray, t: int) -> np.ndarray:
    """Sums of ``m`` (bool) over every ``t x t`` window: ``(h - t + 1, w - t + 1)`` int16 (t <= 181).
    Along each axis, window sums of 1, 2, 4, ... entries by doubling, and the binary digits of
    ``t`` added end to end: ~2 log2(t) array additions instead of 2 t, and exact."""
    return _window_sums(_window_sums(m.astype(np.int16), t, 0), t, 1)


def _window_sums(a: np.ndarray, t: int, axis: int) -> np.ndarray:
    """Sums of ``t`` consecutive entries of ``a`` along ``axis`` (0 or 1): length ``n - t + 1``."""
    n = a.shape[axis] - t + 1

    def part(x: np.ndarray, start: int, length: int) -> np.ndarray:
        return x[start : start + length] if axis == 0 else x[:, start : start + length]

    out, at, w, sums = None, 0, 1, a  # sums: windows of w entries at every position
    while True:
        if t & w:
            out = part(sums, at, n).copy() if out is None else out + part(sums, at, n)
            at += w
        if 2 * w > t:
            return out
        length = sums.shape[axis] - w
        sums = part(sums, 0, length) + part(sums, w, length)
        w *= 2


def _phase(nat: _Native, tile: int) -> tuple[int, int]:
    """Tile phase ``(y, x)``: where the maps "pixel equals the pixel one tile right / below"
    are most nearly constant inside every tile. At the true phase a tile is compared with one
    whole neighbour, which is the same tile (all pixels match) or another one; a shifted tile
    straddles two pairs and mixes both. Minimises the summed within-tile variance ``m (1 - m)``
    of the binary maps (``m`` the share of matching pixels in a tile), over all ``tile**2``
    phases at once with window sums; a pixel tolerance makes it robust to JPEG."""
    score = np.zeros((tile, tile))
    h, w = nat.shape
    for axis in (0, 1):
        if (w if axis == 1 else h) < 2 * tile or min(h, w) < tile:
            continue
        m = _same(nat, axis, tile)
        frac = _box_sums(m, tile).astype(np.float32) / (tile * tile)
        var = frac * (1 - frac)
        py, px = var.shape[0] // tile * tile, var.shape[1] // tile * tile  # whole lattices only
        if py and px:
            score += var[:py, :px].reshape(py // tile, tile, px // tile, tile).sum((0, 2))
    oy, ox = np.unravel_index(int(np.argmin(score)), score.shape)
    return int(oy), int(ox)


@dataclass
class _Fit:
    tile: int
    oy: int
    ox: int
    cost: float  # description length per covered pixel, relative to raw pixels
    repeats: int  # non-uniform tiles that are copies of an earlier one
    nonuniform: int
    ids: np.ndarray = field(repr=False)  # (ny, nx) tile ids
    uniform: np.ndarray = field(repr=False)  # (ny, nx) bool


def _fit_at(nat: _Native, tile: int, oy: int, ox: int) -> _Fit | None:
    """MDL cost of the grid ``(tile, oy, ox)``: a dictionary (uniform tiles one pixel, others
    ``tile**2`` pixels at ``BITS_PER_PIXEL``) plus the entropy-coded map, per covered pixel.
    ``None`` with fewer than 2 whole tiles."""
    ids, uniform, (ny, nx) = _tile_ids(nat, tile, oy, ox)
    n = len(ids)
    if n < 2:
        return None
    counts = np.bincount(ids)
    kinds_uniform = np.zeros(len(counts), bool)
    kinds_uniform[ids[uniform]] = True
    dict_px = kinds_uniform.sum() + (~kinds_uniform & (counts > 0)).sum() * tile * tile
    map_bits = -(np.log2(counts[ids] / n)).sum()
    cost = (dict_px * BITS_PER_PIXEL + map_bits) / (n * tile * tile * BITS_PER_PIXEL)
    nu = counts[~kinds_uniform]
    repeats = int((nu[nu >= 2] - 1).sum())
    return _Fit(
        tile, oy, ox, float(cost), repeats, int((~uniform).sum()),
        ids.reshape(ny, nx), uniform.reshape(ny, nx),
    )  # fmt: skip


def _arrangement_cost(fit: _Fit, m: int, a: int, b: int) -> tuple[float, float]:
    """(cost of the tile map as ``m x m`` arrangements starting at tile ``(a, b)``, cost of the
    same tiles as they are), both in bits per covered pixel relative to raw pixels."""
    ids = fit.ids[a:, b:]
    ny, nx = ids.shape[0] // m, ids.shape[1] // m
    if ny * nx < 2:
        return math.inf, math.inf
    sub = ids[: ny * m, : nx * m]
    blocks = sub.reshape(ny, m, nx, m).transpose(0, 2, 1, 3).reshape(ny * nx, m * m)
    uni = fit.uniform[a:, b:][: ny * m, : nx * m]
    t2, n = fit.tile**2, sub.size
    kinds, first, counts = np.unique(sub.ravel(), return_index=True, return_counts=True)
    kind_px = np.where(uni.ravel()[first], 1, t2).sum()
    k = len(kinds)
    flat_bits = kind_px * BITS_PER_PIXEL - (counts * np.log2(counts / n)).sum()
    _, _, bcnt = _exact_ids(blocks)
    arr_bits = (
        kind_px * BITS_PER_PIXEL
        + len(bcnt) * m * m * math.log2(max(k, 2))
        - (bcnt * np.log2(bcnt / len(blocks))).sum()
    )
    raw = n * t2 * BITS_PER_PIXEL
    return arr_bits / raw, flat_bits / raw


def _coarsen(nat: _Native, fit: _Fit, max_tile: int) -> list[_Fit]:
    """Replace the tile by ``m x m`` arrangements of it (m = 2, 3) while the arrangements
    describe the tile map in fewer bits and the coarser grid's own MDL cost is at most
    ``COARSEN_SLACK`` times the finer one's (sparse maps make few, cheap arrangements), or at
    most ``TENTATIVE_SLACK`` times when the coarser grid is the more confident one (lossy
    sparse maps: a true 8 -> 24 step measured 3.5-3.7x on JPEG frames).
    Returns every grid of the way, coarsest first (``fit`` last)."""
    chain = [fit]
    improved = True
    while improved:
        improved = False
        for m in (2, 3):
            if fit.tile * m > max_tile:
                continue
            arr, flat, a, b = min(
                (_arrangement_cost(fit, m, a, b) + (a, b) for a in range(m) for b in range(m)),
                key=lambda r: r[0] - r[1],
            )
            if arr >= flat:
                continue
            t = fit.tile * m
            new = _fit_at(nat, t, (fit.oy + a * fit.tile) % t, (fit.ox + b * fit.tile) % t)
            # A periodic interior need not start where its tile does (a texture of 8 px in a
            # 32 px tile, one pixel in): the coarser tile's own phase replaces the arrangements'
            # when it costs less than 1 / PRIOR_PHASE_SLACK of it (near-ties keep the chain's).
            if new is not None and (own := _phase(nat, t)) != (new.oy, new.ox):
                alt = _fit_at(nat, t, *own)
                if alt is not None and alt.cost * PRIOR_PHASE_SLACK < new.cost:
                    new = alt
            if new is None or new.cost > TENTATIVE_SLACK * fit.cost:
                continue
            if new.cost <= COARSEN_SLACK * fit.cost or _more_confident(nat, new, fit):
                fit, improved = new, True
                chain.insert(0, fit)
                break
    return chain


def _more_confident(nat: _Native, coarse: _Fit, fine: _Fit) -> bool:
    """Whether ``coarse`` is a confident grid and more confident than ``fine``."""
    c = _confidence(_evidence(nat, coarse))
    return c >= MIN_CONFIDENCE and c > _confidence(_evidence(nat, fine))


def _fit_tiles(
    nat: _Native, cfg: GridConfig, size: int | None, phase: tuple[int, int] | None = None
) -> _Fit | None:
    """Best tile grid of a native image (``size`` fixed when given), or ``None``: the first of
    :func:`_grid_fits`."""
    fits = _grid_fits(nat, cfg, size, phase)
    return fits[0] if fits else None


def _grid_fits(
    nat: _Native, cfg: GridConfig, size: int | None, phase: tuple[int, int] | None = None
) -> list[_Fit]:
    """Best tile grid of a native image (``size`` fixed when given): with an automatic size, the
    coarsest grid :func:`_coarsen` reaches first, then the finer ones it went through; empty when
    no grid fits. With a fixed size, a folder's voted ``phase`` is kept unless the frame's own
    best phase costs less than ``1 / PRIOR_PHASE_SLACK`` of it."""
    sizes = [size] if size else _size_candidates(nat.image, cfg)
    fits: dict[int, _Fit] = {}
    for t in sizes:
        if min(nat.shape) < 2 * t:
            continue
        phases = [_phase(nat, t)]
        if 2 * t in fits:  # a half of a candidate: also its phase, modulo the half (cheaper wins)
            phases.append((fits[2 * t].oy % t, fits[2 * t].ox % t))
        tried = [f for o in dict.fromkeys(phases) if (f := _fit_at(nat, t, *o)) is not None]
        if tried:
            fits[t] = min(tried, key=lambda f: f.cost)
    # The phase map can be fooled by one-pixel tile borders that match the background (NES
    # blocks): for the ALIGNED_SIZES best sizes the frame-aligned phases compete on description
    # length too (frames are usually captured whole, the tile grid starting at the corner).
    for t in sorted(fits, key=lambda t: fits[t].cost)[:ALIGNED_SIZES]:
        oy, ox = fits[t].oy, fits[t].ox
        for o in [o for o in dict.fromkeys([(0, 0), (oy, 0), (0, ox)]) if o != (oy, ox)]:
            if (f := _fit_at(nat, t, *o)) is not None and f.cost < fits[t].cost:
                fits[t] = f
    if not fits:
        return []
    if size and phase is not None and size in fits:
        own, shared = fits[size], (phase[0] % size, phase[1] % size)
        if (own.oy, own.ox) != shared:
            f = _fit_at(nat, size, *shared)
            if f is not None and f.cost <= PRIOR_PHASE_SLACK * own.cost:
                fits[size] = f
    best = min(fits.values(), key=lambda f: f.cost)
    if size is None and THREE_HALVES:
        # A tile whose interior repeats with a period p (a dot every 4 px) gives autocorrelation
        # peaks at every multiple of p, often with a dip at the tile itself: 2p wins, the tile
        # may be 3p. _coarsen reaches 4p, 6p; 3p is fitted here and kept when cheaper.
        t = best.tile * 3 // 2
        if best.tile % 2 == 0 and t not in fits and t <= cfg.max_tile and min(nat.shape) >= 2 * t:
            alt = _fit_at(nat, t, *_phase(nat, t))
            if alt is not None and alt.cost < best.cost:
                best = alt
    return [best] if size else _coarsen(nat, best, cfg.max_tile)


@dataclass(frozen=True)
class _Evidence:
    phase: float  # tiles' worth of bits the phase saves over the half-shifted one (weaker axis)
    size: float  # ... the size saves over the sizes one native pixel smaller and larger
    tiles: int  # whole tiles of the grid
    repeats: float  # share of its non-flat tiles that are copies of another one


def _evidence(nat: _Native, fit: _Fit) -> _Evidence:
    """Evidence for a grid: how many tiles' worth of description (bits over ``tile**2 *
    BITS_PER_PIXEL``) the fitted grid saves over (a) the phase shifted by half a tile along one
    axis, the smaller of the two axes, and (b) the sizes ``tile - 1`` and ``tile + 1`` at the same
    origin, the smaller of the two. A photo or noise compresses at no phase and no size, a
    uniform area equally well at all; a texture periodic at the tile size, or flat horizontal
    bands (an Atari playfield), tell at most one phase axis; a tile map tells both, and its copies
    stop matching one pixel off its size."""
    t, n = fit.tile, fit.ids.size

    def saved(others) -> float:
        costs = [f.cost for f in others if f is not None]
        return 0.0 if len(costs) < len(others) else min(costs) - fit.cost

    half = [
        _fit_at(nat, t, (fit.oy + dy) % t, (fit.ox + dx) % t)
        for dy, dx in ((t // 2, 0), (0, t // 2))
    ]
    off = [_fit_at(nat, s, fit.oy % s, fit.ox % s) for s in (t - 1, t + 1)]
    return _Evidence(saved(half) * n, saved(off) * n, n, fit.repeats / max(fit.nonuniform, 1))


def _confidence(ev: _Evidence) -> float:
    """Confidence in [0, 1], >= 0.5 exactly when the grid beats its half-shifted phase and the
    sizes one pixel off, one of them by a margin, and most of its non-flat tiles are copies (see
    ``PHASE_*``, ``SIZE_*``, ``REPEAT_SHARE``): each test ``x >= threshold`` becomes
    ``1 - 2**(-x / threshold)`` (0.5 at the threshold), "and" the smaller, "or" the larger; a
    grid that passes on size alone is rescaled so that ``SIZE_ONLY_CONFIDENCE`` gives 0.5."""

    def part(x: float, threshold: float) -> float:
        return float(1.0 - 2.0 ** (-max(x, 0.0) / threshold))

    n = max(ev.tiles, 1)
    phase = min(part(ev.phase, PHASE_TILES), part(ev.phase / n, PHASE_SHARE))
    size = min(part(ev.size, SIZE_TILES), part(ev.size / n, SIZE_SHARE))
    if ev.size < 0:  # worse than a size one pixel off: below 0.5 whatever the phase says
        phase = min(phase, 0.5 * (1.0 + ev.size / n))
    if ev.phase < 0:
        size = min(size, 0.5 * (1.0 + ev.phase / n))
    conf = min(max(phase, size), part(ev.repeats, REPEAT_SHARE))
    if phase < 0.5:  # the size test alone: SIZE_ONLY_CONFIDENCE maps to 0.5 (both sides linear)
        k = SIZE_ONLY_CONFIDENCE
        conf = 0.5 * conf / k if conf < k else 0.5 + 0.5 * (conf - k) / (1.0 - k)
    return conf


# ------------------------------------------------------------------------------------ detect


def _scale_grids(rgb: np.ndarray, cfg: GridConfig, prior: FrameGrid | None, palette: bool):
    """Readings of the frame's scale layer (no tiles yet), best first, each with whether its fit
    is lossy: the accepted upscales (``scale="auto"``: all of them, for :func:`detect` to check
    against the tile layer), else the forced or prior factor; a native (1x) reading last."""
    h, w = rgb.shape[:2]
    fits = []
    if prior is not None:
        if prior.kernel != "none":
            fits = [grid_scale.fit_forced(rgb, prior.scale, palette, (prior.kernel,))]
    elif cfg.scale == "auto":
        fits = grid_scale.fit_scale(rgb, cfg.max_scale, palette)
    elif cfg.scale != "off" and float(cfg.scale) > 1:
        fits = [grid_scale.fit_forced(rgb, float(cfg.scale), palette)]
    out = []
    for fy, fx in fits:
        nh = int(_cell_index(h, fy.scale, fy.origin)[-1]) + 1
        nw = int(_cell_index(w, fx.scale, fx.origin)[-1]) + 1
        grid = FrameGrid(fx.scale, fx.kernel, (fy.origin, fx.origin), (h, w), (nh, nw))
        out.append((grid, not grid_scale.lossless(fy, fx)))
    return out + [(FrameGrid(input_hw=(h, w), native_hw=(h, w)), False)]


MAX_READINGS = 4  # scale readings detect() fits tiles to when the first one gives no grid


def detect(
    rgb: np.ndarray, config: GridConfig | None = None, prior: FrameGrid | None = None
) -> FrameGrid:
    """The native scale and tile grid of a uint8 ``(H, W, 3)`` frame (see the module docstring).

    ``prior`` (e.g. from :func:`vote`) fixes the scale, kernel and tile size; the phases of both
    layers are still fitted to this frame. With ``scale="auto"`` the tile layer checks the scale
    layer: when the preferred accepted upscale (simplest fraction, then largest:
    :func:`wnet_seg.grid_scale.ranked`) leads to no tile grid, the other readings (the other
    accepted factors, then 1x when the first one is lossy; at most ``MAX_READINGS``) are fitted
    too and the most confident grid wins. Big uniform areas under JPEG pass large factors; a
    grid at 1x is still a right grid in input pixels when the upscale was real. A lossy 2x
    (first or fallback reading) is read at 1x too when 1x gives the same grid: JPEG's
    quantisation removes most of a 1x frame's period-2 detail, which makes it fit a 2x upscale.
    Returns a :class:`FrameGrid`.
    """
    cfg = config or GridConfig()
    rgb = _check_rgb(rgb)
    palette = grid_scale.exact_palette(rgb)
    readings = _scale_grids(rgb, cfg, prior, palette)
    if prior is not None:
        size, want = prior.tile, prior.tile is not None
    else:
        size = None if cfg.tile in ("auto", "off") else int(cfg.tile)
        want = cfg.tile != "off"
    (grid, lossy), others = readings[0], readings[1:-1][: MAX_READINGS - 2]
    if lossy:  # a lossless upscale's 1x reading only adds its cells' pattern (a gradient's steps)
        others += readings[-1:]
    phase = None if prior is None or prior.tile is None else prior.offset
    out = _with_tiles(rgb, (grid, lossy), cfg, size, want, palette, phase)
    if not (want and prior is None and cfg.scale == "auto" and others):
        return out
    out_lossy, native = lossy, None  # native: the 1x reading's grid, once fitted
    if out.tile is not None and lossy and _fractional_nearest(grid):
        # JPEG'd 1x frames of flat art with 1-px lines (MiniGrid) fit a 1.25x or 1.5x nearest
        # upscale about as well as JPEG lets a true one: the 1x reading competes on confidence.
        native = _with_tiles(rgb, readings[-1], cfg, size, want, palette)
        if native.tile is not None and native.confidence > out.confidence:
            return native
    if out.tile is None:
        tried = [_with_tiles(rgb, r, cfg, size, want, palette) for r in others]
        claimed = [i for i, g in enumerate(tried) if g.tile is not None]
        if not claimed:
            return out
        best = max(claimed, key=lambda i: tried[i].confidence)
        out, out_lossy = tried[best], others[best][1]
        if lossy:  # the 1x reading was fitted last
            native = tried[-1]
    if out_lossy and out.scale == 2.0:
        if native is None:
            native = _with_tiles(rgb, readings[-1], cfg, size, want, palette)
        if native.tile is not None and native.tile == 2 * out.tile:
            return native
    return out


def _fractional_nearest(grid: FrameGrid) -> bool:
    """A nearest-neighbour upscale by a factor that is not a whole number."""
    return grid.kernel == "nearest" and abs(grid.scale - round(grid.scale)) > 1e-6


def _with_tiles(
    rgb, reading: tuple[FrameGrid, bool], cfg: GridConfig, size, want, palette, phase=None
):
    """A scale reading ``(grid, lossy fit)`` with its noise level (:func:`noise_level`) and,
    when ``want``, its tile layer (``phase``: a folder's voted tile phase, see :func:`_fit_tiles`)."""
    grid, lossy = reading
    native = to_native(rgb, grid)
    grid = _replace(grid, noise=noise_level(grid.kernel, palette, lossy))
    if not want:
        return grid
    return _tile_grid(native, grid, cfg, size, forced=size is not None, phase=phase)


def _tile_grid(
    native, grid: FrameGrid, cfg: GridConfig, size: int | None, forced: bool, phase=None
):
    """``grid`` with its tile layer: the coarsest fitted grid that is confident (see
    :func:`_grid_fits`: a sparse map's few tiles may coarsen to arrangements that no longer tell
    their phase, while the tile they are made of does), else the coarsest one, unclaimed."""
    nat = _Native.of(native, grid.noise)
    out = None
    for fit in _grid_fits(nat, cfg, size, phase):
        claim = _claim(native, nat, grid, cfg, fit, forced, phase)
        if claim.tile is not None:
            return claim
        out = claim if out is None else out
    return grid if out is None else out


def _claim(native, nat: _Native, grid: FrameGrid, cfg: GridConfig, fit: _Fit, forced, phase):
    """``grid`` with the tile layer ``fit`` (HUD bands found and left out, the grid refitted
    inside them), claimed when confident or ``forced``."""
    bands: tuple[tuple[str, int, int], ...] = ()
    scored, scored_fit = nat, fit  # the evidence is weighed where the grid was fitted
    if cfg.bands:
        bands = _find_bands(fit, native.shape[:2])
        if bands:
            inner = _replace(grid, bands=bands).region()
            sub = _Native.of(native[inner], grid.noise)
            inner_phase = (
                None
                if phase is None
                else (
                    (phase[0] - inner[0].start) % fit.tile,
                    (phase[1] - inner[1].start) % fit.tile,
                )
            )
            refit = _fit_tiles(sub, cfg, fit.tile, inner_phase)
            if refit is not None:
                scored, scored_fit = sub, refit
                fit = _Fit(
                    refit.tile, (refit.oy + inner[0].start) % refit.tile,
                    (refit.ox + inner[1].start) % refit.tile, refit.cost, refit.repeats,
                    refit.nonuniform, refit.ids, refit.uniform,
                )  # fmt: skip
    conf = _confidence(_evidence(scored, scored_fit))
    if conf < cfg.min_confidence and not forced:
        return _replace(grid, confidence=conf, candidate=fit.tile)
    return _replace(
        grid, tile=fit.tile, offset=(fit.oy, fit.ox), confidence=conf, bands=bands,
        candidate=fit.tile,
    )  # fmt: skip


def _find_bands(fit: _Fit, native_hw: tuple[int, int]) -> tuple[tuple[str, int, int], ...]:
    """HUD bands: runs of whole-tile rows (columns) from the frame's edges where most tiles are
    non-uniform and repeat nowhere else; the band ends where the first such row ends."""
    counts = np.bincount(fit.ids.ravel())
    unexplained = ~fit.uniform & (counts[fit.ids] == 1)
    bands = []
    t = fit.tile
    for axis, name in ((1, "rows"), (0, "cols")):
        share = unexplained.mean(axis=axis)
        n_lines = len(share)
        if n_lines < 4:
            continue
        start_px = fit.oy if name == "rows" else fit.ox
        limit = native_hw[0] if name == "rows" else native_hw[1]
        k = 0
        while k < n_lines // 3 and share[k] >= BAND_SHARE:
            k += 1
        if k:
            bands.append((name, 0, start_px + k * t))
        k = 0
        while k < n_lines // 3 and share[n_lines - 1 - k] >= BAND_SHARE:
            k += 1
        if k:
            bands.append((name, start_px + (n_lines - k) * t, limit))
    return tuple(bands)


def _replace(grid: FrameGrid, **changes) -> FrameGrid:
    from dataclasses import replace

    return replace(grid, **changes)


def refit(rgb: np.ndarray, shared: FrameGrid, config: GridConfig | None = None) -> FrameGrid:
    """:func:`detect` with ``shared``'s scale, kernel and tile size as a prior (phases refitted)."""
    return detect(rgb, config, prior=shared)


def vote(grids: list[FrameGrid], min_share: float = 0.5) -> FrameGrid | None:
    """The grid shared by the frames of one folder, or ``None`` when they do not agree.

    Every frame with a fit proposes its (scale, kernel, tile size), claimed or not (``candidate``:
    a frame showing too little alone still votes, with its low confidence). The most common
    proposal wins if at least ``min_share`` of the proposing frames make it and their summed
    confidence reaches ``VOTE_CONFIDENCE`` (photos propose scattered sizes with confidences near
    0). Phases may differ per frame (scrolling): the result carries the most common one among
    the agreeing frames that claimed the size (the first on ties); :func:`refit` fits each
    frame's own and keeps this one where the frame fits it about as well. Its confidence is the agreeing frames' mean confidence
    times their share."""
    proposing = [g for g in grids if g.candidate is not None]
    if not proposing:
        return None
    keys = [(round(g.scale, 3), g.kernel, g.candidate) for g in proposing]
    best = max(set(keys), key=lambda k: (keys.count(k), k))
    agree = [g for g, k in zip(proposing, keys, strict=True) if k == best]
    total = sum(g.confidence for g in agree)
    if len(agree) < min_share * len(proposing) or total < VOTE_CONFIDENCE:
        return None
    conf = total / len(proposing)
    phases = [tuple(g.offset) for g in agree if g.tile == best[2]]
    first = agree[0]
    if phases:
        common = max(dict.fromkeys(phases), key=phases.count)
        first = next(g for g in agree if g.tile == best[2] and tuple(g.offset) == common)
    return _replace(first, tile=best[2], confidence=float(conf))
