"""No-learning baselines for tile games: label every pixel by the identity of its tile (or colour).

Each baseline is ``fn(rgb, state) -> labels (H, W) int64`` for a uint8 ``(H, W, 3)`` frame;
``state`` (:class:`IdentityState`) carries the ids of one run, so the same tile pattern (or
colour) gets the same id in every frame. All labels are made at native resolution and brought
back to the frame's exact size with nearest neighbour (:func:`wnet_seg.grid.from_native`).

- :func:`colour_identity`: every exact colour is one class.
- :func:`tile_identity`: what most tile extractors do: exact tile patterns (hashing) at the grid
  :func:`wnet_seg.grid.detect` finds; every distinct pattern is one class. Pixels outside whole
  tiles (partial border tiles, HUD bands) and frames without a grid fall back to exact colours.
- :func:`tile_identity_oracle`: exact patterns at the true tile size and phase: the ceiling of
  per-tile labels on clean frames.
- :func:`tile_identity_robust`: what the best extractors do: recover the native scale, snap each
  cell to its dominant colour, match tiles with a tolerance from the frame's noise level instead
  of exact hashing (exact when the frame is exact), fall back to tolerant colours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wnet_seg import grid as grid_mod
from wnet_seg.grid import FrameGrid, GridConfig


@dataclass
class IdentityState:
    """Ids shared by all frames of one run: exact patterns and colours by their bytes, tolerant
    tiles and colours by representatives (per tile size) matched within a tolerance."""

    exact: dict[bytes, int] = field(default_factory=dict)
    reps: dict[int, np.ndarray] = field(default_factory=dict)  # key -> (K, D) float32 rows
    rep_ids: dict[int, np.ndarray] = field(default_factory=dict)  # key -> (K,) ids
    next_id: int = 0

    def new_ids(self, n: int) -> np.ndarray:
        self.next_id += n
        return np.arange(self.next_id - n, self.next_id)

    def exact_ids(self, keys: list[bytes]) -> np.ndarray:
        """Ids of byte keys (new keys get new ids in order)."""
        out = np.empty(len(keys), np.int64)
        for i, key in enumerate(keys):
            got = self.exact.get(key)
            if got is None:
                got = self.exact[key] = int(self.new_ids(1)[0])
            out[i] = got
        return out

    def tolerant_ids(self, rows: np.ndarray, key: int, tol_rms: float) -> np.ndarray:
        """Ids of ``rows`` (N, D) uint8 within the run's group ``key``: a row within ``tol_rms``
        (RMS) of a stored representative takes the nearest one's id; the rest are clustered by
        leaders, most frequent first (each takes every remaining row within the tolerance) and
        the leaders are stored. Exact (``tol_rms == 0``): identical rows only."""
        first, inv, counts = grid_mod._exact_ids(rows)
        order = np.argsort(-counts, kind="stable")
        uniq = rows[first[order]].astype(np.float32)
        ids = np.full(len(uniq), -1, np.int64)
        thr = tol_rms**2 * uniq.shape[1]
        reps = self.reps.get(key, np.zeros((0, uniq.shape[1]), np.float32))
        rep_ids = self.rep_ids.get(key, np.zeros(0, np.int64))
        if len(reps):
            d2 = (uniq**2).sum(1)[:, None] + (reps**2).sum(1)[None, :] - 2 * uniq @ reps.T
            j = np.argmin(d2, 1)
            near = d2[np.arange(len(uniq)), j] <= thr + 1e-3
            ids[near] = rep_ids[j[near]]
        rest = np.flatnonzero(ids < 0)
        leaders = []
        while rest.size:
            lead = rest[0]
            d2 = ((uniq[rest] - uniq[lead]) ** 2).sum(1)
            ids[rest[d2 <= thr + 1e-3]] = self.new_ids(1)[0]
            leaders.append(lead)
            rest = rest[ids[rest] < 0]
        if leaders:
            self.reps[key] = np.concatenate([reps, uniq[leaders]])
            self.rep_ids[key] = np.concatenate([rep_ids, ids[leaders]])
        back = np.empty_like(ids)
        back[order] = ids
        return back[inv]


def _colour_ids(native: np.ndarray, state: IdentityState) -> np.ndarray:
    """Exact colour ids of every native pixel."""
    code = grid_mod._packed(native)
    uniq, inv = np.unique(code, return_inverse=True)
    table = state.exact_ids([b"c" + int(c).to_bytes(4, "little") for c in uniq])
    return table[inv.reshape(code.shape)]


def _tolerant_colour_ids(native: np.ndarray, state: IdentityState, tol: float) -> np.ndarray:
    """Colour ids matched within ``tol`` (per-pixel RMS over channels) to the run's colours."""
    if tol <= 0:
        return _colour_ids(native, state)
    flat = native.reshape(-1, 3)
    return state.tolerant_ids(flat, 0, tol).reshape(native.shape[:2])


def _tile_labels(native, grid: FrameGrid, tile_ids: np.ndarray, y0: int, x0: int, base):
    """Native labels: ``base`` everywhere, whole tiles overwritten by their ids."""
    out = base.copy()
    ny, nx = tile_ids.shape
    t = grid.tile
    out[y0 : y0 + ny * t, x0 : x0 + nx * t] = np.repeat(np.repeat(tile_ids, t, 0), t, 1)
    return out


def _tiles_of(native: np.ndarray, grid: FrameGrid) -> tuple[np.ndarray, int, int, tuple]:
    """Whole tiles ``(N, t*t*3)`` inside the grid's region (bands excluded) and where they start."""
    rs, cs = grid.region()
    t = grid.tile
    y0 = rs.start + (grid.offset[0] - rs.start) % t
    x0 = cs.start + (grid.offset[1] - cs.start) % t
    tiles, shape = grid_mod._whole_tiles(native[y0 : rs.stop, x0 : cs.stop], t, 0, 0)
    return tiles.reshape(len(tiles), -1), y0, x0, shape


def colour_identity(rgb: np.ndarray, state: IdentityState) -> np.ndarray:
    """Every exact colour is one class (ids shared across frames)."""
    return _colour_ids(grid_mod._check_rgb(rgb), state).astype(np.int64)


def _exact_tiles(rgb: np.ndarray, grid: FrameGrid, state: IdentityState) -> np.ndarray:
    native = grid_mod.to_native(rgb, grid)
    base = _colour_ids(native, state)
    if grid.tile is None:
        return grid_mod.from_native(base, grid, rgb.shape[:2])
    tiles, y0, x0, (ny, nx) = _tiles_of(native, grid)
    prefix = grid.tile.to_bytes(2, "little")
    ids = state.exact_ids([b"t" + prefix + row.tobytes() for row in tiles])
    labels = _tile_labels(native, grid, ids.reshape(ny, nx), y0, x0, base)
    return grid_mod.from_native(labels, grid, rgb.shape[:2])


def tile_identity(
    rgb: np.ndarray,
    state: IdentityState,
    config: GridConfig | None = None,
    grid: FrameGrid | None = None,
) -> np.ndarray:
    """Exact tile patterns at the grid :func:`~wnet_seg.grid.detect` finds, or at ``grid`` when
    given (e.g. the folder-voted grid every method of a benchmark shares); exact colours where
    there is no whole tile or no grid."""
    rgb = grid_mod._check_rgb(rgb)
    return _exact_tiles(rgb, grid or grid_mod.detect(rgb, config), state)


def tile_identity_oracle(
    rgb: np.ndarray,
    state: IdentityState,
    tile: int,
    offset: tuple[int, int] = (0, 0),
    scale: float = 1.0,
) -> np.ndarray:
    """Exact tile patterns at the true ``tile`` size and ``offset`` (native px) of a frame
    upscaled by ``scale`` (nearest cells from the frame's corner)."""
    rgb = grid_mod._check_rgb(rgb)
    h, w = rgb.shape[:2]
    kernel = "none" if scale == 1.0 else "nearest"
    nh = int(grid_mod._cell_index(h, scale, 0.0)[-1]) + 1
    nw = int(grid_mod._cell_index(w, scale, 0.0)[-1]) + 1
    grid = FrameGrid(
        float(scale), kernel, (0.0, 0.0), (h, w), (nh, nw), int(tile),
        (int(offset[0]) % tile, int(offset[1]) % tile), 1.0,
    )  # fmt: skip
    return _exact_tiles(rgb, grid, state)


def tile_identity_robust(
    rgb: np.ndarray,
    state: IdentityState,
    config: GridConfig | None = None,
    grid: FrameGrid | None = None,
) -> np.ndarray:
    """Native scale recovered, cells snapped to their dominant colour (:func:`to_native`),
    tiles matched within the frame's noise tolerance (``TILE_TOL * noise`` RMS; exact for exact
    frames), colours likewise (``PIXEL_TOL * noise``) where there is no whole tile."""
    rgb = grid_mod._check_rgb(rgb)
    grid = grid or grid_mod.detect(rgb, config)
    native = grid_mod.to_native(rgb, grid)
    base = _tolerant_colour_ids(native, state, grid_mod.PIXEL_TOL * grid.noise)
    if grid.tile is not None:
        tiles, y0, x0, (ny, nx) = _tiles_of(native, grid)
        if len(tiles):
            ids = state.tolerant_ids(tiles, grid.tile, grid_mod.TILE_TOL * grid.noise)
            base = _tile_labels(native, grid, ids.reshape(ny, nx), y0, x0, base)
    return grid_mod.from_native(base, grid, rgb.shape[:2]).astype(np.int64)
