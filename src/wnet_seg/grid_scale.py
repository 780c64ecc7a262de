"""Native pixel scale of a screenshot: which upscale (factor, kernel, phase) made it, if any.

A screenshot of pixel art is often the game's frame resized: an emulator's integer nearest
upscale, a browser's or viewer's bilinear rescale by 1.5, then maybe JPEG. Along one axis, such an
image is a 1-D resampling of the native image with cells of ``s`` input pixels starting at
``origin``. We test that hypothesis directly: fit the best signal the hypothesis can produce
(piecewise constant on the cells for ``"nearest"``, piecewise linear between cell centres for
``"linear"``) and compare its residual with the residual of the same model shifted by half a cell.
A true hypothesis reconstructs the image down to its noise (JPEG) while the shifted one cannot
(``rho`` = residual ratio near 0); photos, noise, gradients and the wrong factors give ``rho``
near 1. Multiples of the true factor fail too (a shift by half of ``2s`` is a whole native pixel:
as bad as the best phase), divisors pass, so the largest passing factor wins.

Work per axis is kept small: the image lines are reduced to a few random signed sums (a linear
map commutes with resampling, so each sum is itself a resampled signal), candidate factors come
from the spectrum of the gradient (cell boundaries) and second-difference (cell centres for the
linear kernel) profiles, gated by the strength of that comb; the phase seeds come from the comb's
Fourier phase. Both axes must pass the same hypothesis.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
from scipy.linalg import lapack

KERNELS = ("nearest", "linear")

PROJECTIONS = 4  # random signed sums of image lines per axis
MAX_LINES = 128  # image lines used per axis (evenly spaced); enough signal, bounded cost
MAX_LENGTH = 384  # pixels per line (a centre window): 48 cells even at 8x
TIE = 0.02  # a pixel centre this close (px) to a cell boundary may belong to either cell
MIN_SCALE = 1.2  # smallest non-integer factor proposed (1.2x and up)
# Factors always tested (DPI scalings, emulator and viewer zooms); spectral peaks add others.
COMMON = (1.25, 4 / 3, 1.5, 5 / 3, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
# Thirds are only tried on exact-palette frames (lossless fits): on JPEG'd 1x frames of 8 and
# 16 px tiles 4/3 fits as well as JPEG lets a true factor (Tetris/MiniGrid train frames, dungeons).
LOSSY_COMMON = tuple(s for s in COMMON if Fraction(s).limit_denominator(8).denominator != 3)

# Measured on Crafter train worlds and the benchmark's synthetic maps with train seeds (< 1000),
# clean, nearest 1.5-4x, bilinear 1.25-3x, JPEG 85 and combinations:
# residual ratio (best phase / null) accepted as an upscale: true hypotheses 0.00 (lossless) to
# 0.30 (bilinear 1.5 + JPEG 85; nearest 1.5 + JPEG 85 up to 0.40, then missed); on clean and
# JPEG 1x Crafter the best wrong factor >= 0.47 (sparse synthetic maps lower: RESIDUAL_SPREAD).
RHO_MAX = 0.36
# Residual per degree of freedom (grey levels^2) of a lossless fit: rounding only. Measured on
# clean bilinear upscales (1.25-3x) of Crafter train and synthetic maps: <= 1.04.
LOSSLESS_RESIDUAL = 2.0
# A nearest upscale copies pixels: its clean fits reproduce the frame exactly (residual <= 1e-9 on
# nearest 1.25-3x upscales of every val family). Bilinear's rounding allowance above would pass
# 1x frames of flat art with 1-px lines, which a 4/3 nearest upscale (cells of 1, 1 and 2 px)
# nearly reproduces: 0.36-0.64 on clean MiniGrid val frames, 0.10-0.29 on JPEGs of mostly black
# ones that pass the palette test.
NEAREST_LOSSLESS = 0.05
# Lossy frames: a hypothesis' residual may be at most this many times the smallest passing one.
RESIDUAL_SPREAD = 2.0
# Palette test (exact_palette): clean frames <= 0.002 of rare-colour pixels (Crafter, Craftax,
# Craftax-Classic, MiniGrid, Tetris val frames, synthetic maps); a JPEG 85 of a 9 x 11 tile map
# that is mostly one tile: 0.0064.
PALETTE_RARE_SHARE = 0.004

# RGB -> (luma, chroma / 2, chroma / 2) for exact-palette frames; luma only for lossy ones: JPEG
# stores chroma at half resolution (4:2:0), which makes 1x frames look like 2x chroma upscales.
_LUMA_CHROMA = np.array(
    [[0.299, -0.169 / 2, 0.5 / 2], [0.587, -0.331 / 2, -0.419 / 2], [0.114, 0.5 / 2, -0.081 / 2]],
    np.float32,
)
_LUMA = _LUMA_CHROMA[:, :1].copy()


@functools.lru_cache(maxsize=16)
def _signs(k: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    return (rng.integers(0, 2, (k, n)) * 2 - 1).astype(np.float32) / np.float32(np.sqrt(n))


def axis_signals(rgb: np.ndarray, axis: int, chroma: bool = True) -> tuple[np.ndarray, int]:
    """``PROJECTIONS`` random signed sums of the image lines along ``axis`` (0: down, 1: across),
    in luma and (``chroma``) half-weighted chroma, over a centre window of at most
    ``MAX_LENGTH`` px.

    Returns ``(PROJECTIONS, L)`` float64 (each line centred first) and the window's start. The sums are normalised so
    that noise keeps its per-pixel variance.
    """
    x = rgb if axis == 1 else rgb.transpose(1, 0, 2)
    start = max(0, (x.shape[1] - MAX_LENGTH) // 2)  # a centre window bounds the cost
    x = x[:: max(1, x.shape[0] // MAX_LINES), start : start + MAX_LENGTH]
    x = x.astype(np.float32) @ (_LUMA_CHROMA if chroma else _LUMA)
    lines = x.transpose(0, 2, 1).reshape(-1, x.shape[1])
    lines -= lines.mean(1, keepdims=True)
    return (_signs(PROJECTIONS, lines.shape[0]) @ lines).astype(np.float64), start


def wrap(origin: float, s: float) -> float:
    """``origin`` modulo ``s`` into ``(-s, 0]``."""
    return -((-origin) % s)


def wrap_origin(origin: float, s: float) -> float:
    """``origin`` modulo ``s`` into ``(0.5 - s, 0.5]``: the cell holding pixel 0's centre is 0."""
    return 0.5 - ((0.5 - origin) % s)


def _profiles(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient profile (edge between pixel j and j+1, at position j+1) and second-difference
    profile (pixel j+1, centre at j+1.5), summed over the signals."""
    d = np.diff(z, axis=1)
    return np.abs(d).sum(0), np.abs(np.diff(d, axis=1)).sum(0)


def _comb(profile: np.ndarray, pos: np.ndarray, s: float) -> tuple[float, float]:
    """(strength, phase) of the comb of period ``s`` in ``profile``: normalised Fourier magnitude
    at ``1/s`` and the position (mod ``s``) of its teeth."""
    w = profile - profile.mean()
    f = (w * np.exp(-2j * np.pi * pos / s)).sum()
    return abs(f) / (np.abs(w).sum() + 1e-12), (-np.angle(f) / (2 * np.pi)) % 1.0 * s


def _snap(s: float) -> float:
    """A factor within 1 % of a fraction with denominator <= 4 (0.2 % for <= 8) becomes it:
    spectral peaks are broadened by leakage, and real upscales use simple factors."""
    for den, tol in ((4, 0.01), (8, 0.002)):
        f = Fraction(s).limit_denominator(den)
        if abs(float(f) - s) <= tol * s:
            return float(f)
    return s


def _spectral_peaks(profile: np.ndarray, max_scale: float, n: int = 2) -> list[float]:
    """Frequencies of the ``n`` strongest spectral peaks of a profile (sub-bin refined)."""
    w = profile - profile.mean()
    nfft = 1 << int(np.ceil(np.log2(8 * len(w))))
    a = np.abs(np.fft.rfft(w, nfft))
    i = np.flatnonzero((a[1:-1] >= a[:-2]) & (a[1:-1] > a[2:])) + 1
    i = i[i / nfft >= 1.0 / (max_scale + 0.5)]
    out = []
    for j in i[np.argsort(-a[i])][:n]:
        y0, y1, y2 = a[j - 1], a[j], a[j + 1]
        den = y0 - 2 * y1 + y2
        out.append((j + (0.5 * (y0 - y2) / den if den < 0 else 0.0)) / nfft)
    return out


def candidates(z: np.ndarray, max_scale: float, peaks: bool = True) -> list[float]:
    """Factors to test: with ``peaks`` (exact-palette frames) ``COMMON`` plus the factors of the
    strongest peaks of the gradient (cell boundaries) and second-difference (cell centres)
    profiles, with their aliases (a frequency f above 1/2 shows at 1 - f), snapped to simple
    fractions, near-duplicates (1.5 %) of a common factor dropped; else ``LOSSY_COMMON``."""
    p, q = _profiles(z)
    found = [s for s in (COMMON if peaks else LOSSY_COMMON) if s <= max_scale]
    for f in (_spectral_peaks(p, max_scale) + _spectral_peaks(q, max_scale)) if peaks else ():
        for s in (1.0 / f, 1.0 / (1.0 - f)):
            s = _snap(s)
            if MIN_SCALE <= s <= max_scale and all(abs(s - k) > 0.015 * k for k in found):
                found.append(s)
    return sorted(found, reverse=True)


def _phase_grid(s: float) -> np.ndarray:
    """Origins to scan for the nearest kernel. Integer factors: the integers. ``p/q``: the ``p``
    tie origins ``0.5 + k/q`` (where cell partitions change; tie pixels may then join either
    side, which covers the partitions on both sides). Other factors: 1/8 px steps."""
    if float(s).is_integer():
        return -np.arange(int(s), dtype=np.float64)
    f = Fraction(s).limit_denominator(8)
    if abs(float(f) - s) < 1e-9:
        return 0.5 - np.arange(f.numerator) / f.denominator
    return -np.arange(0.0, s, 0.125)


def nearest_residuals(z: np.ndarray, scales, origins) -> np.ndarray:
    """Residual per degree of freedom of the best piecewise-constant fit on cells of
    ``scales[r]`` px from ``origins[r]``, for every hypothesis row at once (``inf`` when the
    cells leave no freedom).

    A pixel whose centre lies on a cell boundary (resizers break such ties either way, Pillow
    inconsistently) joins the neighbouring cell it matches best.
    """
    k, n_px = z.shape
    sc = np.asarray(scales, float)[:, None]
    org = np.asarray(origins, float)[:, None]
    rows = len(org)
    m = int(np.ceil((n_px + sc.min()) / sc.min())) + 1
    b = org + sc * np.arange(1, m + 1)[None, :] - 0.5
    lo = np.clip(np.ceil(b - TIE), 0, n_px).astype(np.int64)
    hi = np.clip(np.ceil(b + TIE), 0, n_px).astype(np.int64)
    bounds = np.stack([lo, hi], -1).reshape(rows, -1)
    starts = np.concatenate([np.zeros((rows, 1), np.int64), bounds], 1)
    ends = np.concatenate([bounds, np.full((rows, 1), n_px, np.int64)], 1)
    c1 = np.concatenate([np.zeros((k, 1)), np.cumsum(z, 1)], 1)
    c2 = np.concatenate([[0.0], np.cumsum((z**2).sum(0))])
    sums = c1[:, ends] - c1[:, starts]  # blocks alternate: cell, tie pixel (0 or 1 px), cell...
    count = ends - starts
    cell_sum, cell_n = sums[:, :, 0::2], count[:, 0::2]
    within = (c2[ends[:, 0::2]] - c2[starts[:, 0::2]]) - (cell_sum**2).sum(0) / np.maximum(
        cell_n, 1
    )
    res = within.sum(1)
    df = np.maximum(cell_n - 1, 0).sum(1)
    tie = count[:, 1::2] == 1
    if tie.any():
        mean = cell_sum / np.maximum(cell_n, 1)
        tie_val = sums[:, :, 1::2]

        def join_cost(cells: slice) -> np.ndarray:
            nc = cell_n[:, cells]
            d = ((tie_val - mean[:, :, cells]) ** 2).sum(0) * nc / (nc + 1)
            return np.where(nc > 0, d, np.inf)

        best = np.minimum(join_cost(slice(0, -1)), join_cost(slice(1, None)))
        joined = tie & np.isfinite(best)
        res = res + np.where(joined, best, 0.0).sum(1)
        df = df + joined.sum(1)
    return np.where(df > 0, res / np.maximum(df, 1), np.inf)


def linear_weights(n_px: int, scales: np.ndarray, origins: np.ndarray) -> tuple[np.ndarray, ...]:
    """Linear interpolation between native cell centres, as Pillow/OpenCV upscale, for rows of
    hypotheses ``(scales[r], origins[r])``: pixel ``j`` is ``w0 * native[i0] + w1 * native[i1]``
    (edges clamped). Returns ``(i0, i1, w0, w1)`` of shape ``(R, n_px)`` and ``n_cells`` (R,)."""
    s, o = np.asarray(scales, float)[:, None], np.asarray(origins, float)[:, None]
    u = (np.arange(n_px)[None, :] + 0.5 - o) / s - 0.5
    n = (np.floor((n_px - 0.5 - o[:, 0]) / s[:, 0]) + 1).astype(np.int64)
    i0 = np.floor(u).astype(np.int64)
    t = u - i0
    t[i0 < 0] = 0.0
    i0 = np.clip(i0, 0, n[:, None] - 1)
    t[i0 >= n[:, None] - 1] = 0.0
    return i0, np.minimum(i0 + 1, n[:, None] - 1), 1.0 - t, t, n


def _group_sum(v: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Column sums of ``v`` (K, L) per sorted group index ``idx`` (L,): ``(K, n)``."""
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    out = np.zeros((v.shape[0], n))
    out[:, idx[starts]] = np.add.reduceat(v, starts, axis=1)
    return out


def solve_normal_tridiagonal(diag: np.ndarray, off: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``x`` with ``T x = rhs`` for the symmetric positive definite tridiagonal ``T`` (``diag``,
    ``off``) of regularised least-squares normal equations: LAPACK's LDL^T (``pttrf/pttrs``),
    2-3x faster than a pivoting solve on many right-hand sides; that one if ``T`` is not
    numerically positive definite."""
    d, e, info = lapack.dpttrf(diag, off)
    if info == 0:
        x, info = lapack.dpttrs(d, e, rhs)
        if info == 0:
            return x
    return lapack.dgtsv(off.copy(), diag, off.copy(), rhs)[3]


def linear_solve(z: np.ndarray, scales, origins) -> tuple[np.ndarray, tuple]:
    """Least-squares native signals whose linear upscale best matches ``z`` (K, L), for every
    hypothesis row at once (one block-diagonal tridiagonal system). Returns the native values
    ``(sum of n_cells, K)`` and ``(g0, g1, w0, w1, n)`` (flat global cell indices and weights)."""
    k, n_px = z.shape
    i0, i1, w0, w1, n = linear_weights(n_px, np.atleast_1d(scales), np.atleast_1d(origins))
    first = (np.cumsum(n) - n)[:, None]
    g0, g1, w0, w1 = (i0 + first).ravel(), (i1 + first).ravel(), w0.ravel(), w1.ravel()
    total = int(n.sum())
    diag = np.bincount(g0, w0 * w0, total) + np.bincount(g1, w1 * w1, total) + 1e-9
    off = np.bincount(g0, w0 * w1, total)[: total - 1]  # zero across hypothesis blocks
    zz = np.tile(z, (1, len(n)))
    rhs = (_group_sum(zz * w0, g0, total) + _group_sum(zz * w1, g1, total)).T.copy()
    return solve_normal_tridiagonal(diag, off, rhs), (g0, g1, w0, w1, n)


def linear_residuals(z: np.ndarray, scales, origins) -> np.ndarray:
    """Residual per degree of freedom of the linear-kernel fit of each hypothesis row."""
    k, n_px = z.shape
    native, (g0, g1, w0, w1, n) = linear_solve(z, scales, origins)
    rec = native[g0] * w0[:, None] + native[g1] * w1[:, None]
    res = ((np.tile(z, (1, len(n))).T - rec) ** 2).reshape(len(n), -1).sum(1)
    df = n_px - n
    return np.where(df > 0, res / np.maximum(df, 1), np.inf)


@dataclass(frozen=True)
class Hypothesis:
    """One tested upscale of one axis: cells of ``scale`` px, cell 0 starting at ``origin`` (in
    ``(0.5 - scale, 0.5]``); residual per degree of freedom there and at the null origin."""

    scale: float
    kernel: str
    origin: float
    residual: float
    null: float

    @property
    def rho(self) -> float:
        return self.residual / self.null if np.isfinite(self.null) and self.null > 0 else np.inf


def _nearest_hypotheses(z: np.ndarray, scales: list[float]) -> list[Hypothesis]:
    """Best origin per factor over its phase scan; the null is the median over the scan (for a
    scan of 2 origins, factor 2, the half-cell shift of the best). The scan of a ``p/q`` factor
    only has tie origins, whose tie pixels may join either side: comparing them with a tie-free
    origin would flatter them. All factors are fitted in one batch."""
    grids = [_phase_grid(s) for s in scales]
    shifted = [g - s / 2 if len(g) < 3 else g[:0] for s, g in zip(scales, grids, strict=True)]
    parts = grids + shifted
    factor = [*scales, *scales]
    sc = np.concatenate([np.full(len(g), f) for f, g in zip(factor, parts, strict=True)])
    org = np.concatenate(parts)
    r_all = np.empty(len(sc))
    for lo, hi in ((0, 2), (2, 4), (4, np.inf)):  # batches of similar cell counts (less padding)
        rows = (sc >= lo) & (sc < hi)
        if rows.any():
            r_all[rows] = nearest_residuals(z, sc[rows], org[rows])
    bounds = np.cumsum([0] + [len(g) for g in parts])
    out = []
    for j, (s, g) in enumerate(zip(scales, grids, strict=True)):
        r = r_all[bounds[j] : bounds[j + 1]]
        i = int(np.argmin(r))
        if len(shifted[j]):
            null = float(r_all[bounds[len(grids) + j] + i])
        else:
            finite = r[np.isfinite(r)]
            null = float(np.median(finite)) if len(finite) > 1 else np.inf
        out.append(Hypothesis(s, "nearest", wrap_origin(g[i], s), float(r[i]), null))
    return out


def _linear_hypotheses(z: np.ndarray, scales: list[float]) -> list[Hypothesis]:
    """Linear kernel: 4 origins per factor (the null is the one half a cell from the best),
    then the promising factors (ratio under 2 ``RHO_MAX``) refined by 6 origins around the best."""
    s = np.repeat(scales, LINEAR_COARSE)
    o = -np.tile(np.arange(LINEAR_COARSE), len(scales)) * s / LINEAR_COARSE
    r = linear_residuals(z, s, o).reshape(len(scales), LINEAR_COARSE)
    best = np.argmin(r, 1)
    rows = np.arange(len(scales))
    null = r[rows, (best + LINEAR_COARSE // 2) % LINEAR_COARSE]
    origin = o.reshape(len(scales), -1)[rows, best]
    res = r[rows, best]
    refine = np.flatnonzero(res <= 2 * RHO_MAX * null)
    if len(refine):
        steps = np.array([-1, 1, -0.5, 0.5, -0.25, 0.25]) / (2 * LINEAR_COARSE)
        sr = np.repeat(np.asarray(scales)[refine], len(steps))
        orr = np.repeat(origin[refine], len(steps)) + np.tile(steps, len(refine)) * sr
        rr = linear_residuals(z, sr, orr).reshape(len(refine), -1)
        j = np.argmin(rr, 1)
        better = rr[np.arange(len(refine)), j] < res[refine]
        res[refine] = np.where(better, rr[np.arange(len(refine)), j], res[refine])
        origin[refine] = np.where(
            better, orr.reshape(len(refine), -1)[np.arange(len(refine)), j], origin[refine]
        )
    return [
        Hypothesis(float(sc), "linear", wrap_origin(float(oo), float(sc)), float(rv), float(nv))
        for sc, oo, rv, nv in zip(scales, origin, res, null, strict=True)
    ]


LINEAR_COARSE = 4  # origins per factor in the linear kernel's coarse scan
MAX_LINEAR = 4.0  # viewers' bilinear zooms; beyond 4x screenshots are nearest upscales


def test_axis(z: np.ndarray, scales: list[float]) -> list[Hypothesis]:
    """Every (factor, kernel) hypothesis of one axis (the linear kernel up to ``MAX_LINEAR``)."""
    linear = [s for s in scales if s <= MAX_LINEAR]
    return _nearest_hypotheses(z, scales) + (_linear_hypotheses(z, linear) if linear else [])


def _shifted(hyps: list[Hypothesis], start: int) -> list[Hypothesis]:
    """Hypotheses fitted on a window starting at ``start``, with frame origins."""
    return [replace(h, origin=wrap_origin(h.origin + start, h.scale)) for h in hyps]


def fit_forced(
    rgb: np.ndarray, scale: float, palette: bool, kernels=KERNELS
) -> tuple[Hypothesis, Hypothesis]:
    """The best origins of a given factor (no acceptance test): the kernel whose summed ratio
    over both axes is smaller."""
    (zy, sy), (zx, sx) = axis_signals(rgb, 0, palette), axis_signals(rgb, 1, palette)
    fits = []
    for kernel in kernels:
        fit = _nearest_hypotheses if kernel == "nearest" else _linear_hypotheses
        fits.append((_shifted(fit(zy, [scale]), sy)[0], _shifted(fit(zx, [scale]), sx)[0]))
    return min(fits, key=lambda v: v[0].rho + v[1].rho)


def exact_palette(rgb: np.ndarray) -> bool:
    """Whether the frame's colours form a palette: at most ``PALETTE_RARE_SHARE`` of the pixels
    have a colour seen at most twice (JPEG leaves a tail of one-off colours). Colours are hashed
    into 2**18 buckets (a collision only makes a rare colour look common). (A JPEG of a frame of
    few flat colours, e.g. a MiniGrid floor, can pass: its near copies of each colour are
    frequent; clean pixel art has such near colours too, Crafter's shading, so they tell
    nothing.)"""
    h, w = rgb.shape[:2]
    y0, x0 = max(0, (h - 256) // 2), max(0, (w - 256) // 2)
    x = rgb[y0 : y0 + 256, x0 : x0 + 256].astype(np.uint32)  # a centre crop is enough
    code = (x[..., 0] << 16) | (x[..., 1] << 8) | x[..., 2]
    bucket = ((code * np.uint32(2654435761)) >> np.uint32(14)).ravel()
    counts = np.bincount(bucket, minlength=1 << 18)
    return float((counts[bucket] <= 2).mean()) <= PALETTE_RARE_SHARE


def lossless(*fits: Hypothesis) -> bool:
    """Whether every fit reproduces its axis up to rounding: residual <= ``NEAREST_LOSSLESS``
    for the nearest kernel, ``LOSSLESS_RESIDUAL`` for the linear one (deconvolution rounds)."""
    limit = {"nearest": NEAREST_LOSSLESS, "linear": LOSSLESS_RESIDUAL}
    return all(h.residual <= limit[h.kernel] for h in fits)


def decide(
    hy: list[Hypothesis],
    hx: list[Hypothesis],
    rho_max: float = RHO_MAX,
    palette: bool = False,
) -> list[tuple[Hypothesis, Hypothesis]]:
    """The accepted ``(y, x)`` hypotheses, best first (see :func:`ranked`), from those whose (factor, kernel) passes both axes
    (``rho <= rho_max``):

    1. lossless fits (:func:`lossless` on both axes: a clean nearest or
       bilinear upscale) when there are any;
    2. none when the frame has an exact palette (a clean frame that no upscale reproduces
       losslessly is native);
    3. otherwise (lossy frames) those whose residual is within ``RESIDUAL_SPREAD`` times the
       smallest one of their axis: in sparse frames a wrong factor whose cells follow the tile
       lattice can pass the ratio test, not with the residual of the true one.

    The simplest, then largest factor comes first (its divisors pass too); at that factor the
    kernel with the smaller summed ratio. The others are alternatives :func:`wnet_seg.grid.detect` tries when
    the first one leads to no tile grid (a floor of lines every 32 px, 3x upscaled, is also a
    lossless 32/9 upscale).
    """
    by_key = {(h.scale, h.kernel): h for h in hy}
    passing = [
        (by_key[(h.scale, h.kernel)], h)
        for h in hx
        if (h.scale, h.kernel) in by_key and max(h.rho, by_key[(h.scale, h.kernel)].rho) <= rho_max
    ]
    ok = [v for v in passing if lossless(*v)]
    if not ok and passing and not palette:
        floor = [min(v[a].residual for v in passing) for a in (0, 1)]
        ok = [
            v for v in passing
            if all(v[a].residual <= RESIDUAL_SPREAD * floor[a] + LOSSLESS_RESIDUAL for a in (0, 1))
        ]  # fmt: skip
    return ranked(ok)


def ranked(fits: list[tuple[Hypothesis, Hypothesis]]) -> list[tuple[Hypothesis, Hypothesis]]:
    """One ``(y, x)`` fit per factor, the simplest fraction first, then the largest factor (a
    true factor's divisors pass too: 3x before 1.5x; two passing factors that are not multiples
    of each other are one ambiguity, and real upscales use simple factors: 3x before 32/9, which
    also reproduces a floor of lines every 32 px losslessly); per factor the kernel with the
    smaller summed ratio."""
    best: dict[float, tuple[Hypothesis, Hypothesis]] = {}
    for v in fits:
        key = v[0].scale
        if key not in best or v[0].rho + v[1].rho < best[key][0].rho + best[key][1].rho:
            best[key] = v
    return [best[k] for k in sorted(best, key=lambda k: (_denominator(k), -k))]


def _denominator(s: float) -> int:
    return Fraction(s).limit_denominator(16).denominator


def fit_scale(
    rgb: np.ndarray, max_scale: float, palette: bool
) -> list[tuple[Hypothesis, Hypothesis]]:
    """The upscales ``(y, x)`` a frame passes, best first; empty when it is not an upscale (see
    :func:`decide`; ``palette``: :func:`exact_palette` of the frame). The x axis tests every
    candidate, the y axis those that pass on x. Factors outside ``COMMON`` (from spectral peaks)
    are only tried on exact-palette frames, where only lossless fits count: on lossy 1x frames
    the tile lattice's harmonics propose factors such as 16/13 that fit as well as JPEG lets a
    true one. (A bilinear upscale of flat pixel art can pass the palette test: its blends only
    show at edges.)"""
    zx, sx = axis_signals(rgb, 1, palette)
    hx = test_axis(zx, candidates(zx, max_scale, palette))
    hx = [h for h in hx if h.rho <= RHO_MAX]
    if not hx:
        return []
    zy, sy = axis_signals(rgb, 0, palette)
    hy = []
    for kernel, fit in (("nearest", _nearest_hypotheses), ("linear", _linear_hypotheses)):
        scales = [h.scale for h in hx if h.kernel == kernel]
        hy += fit(zy, scales) if scales else []

    return [
        (_shifted([y], sy)[0], _shifted([x], sx)[0]) for y, x in decide(hy, hx, RHO_MAX, palette)
    ]
