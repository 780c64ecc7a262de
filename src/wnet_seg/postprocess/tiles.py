"""Tile pooling: segment tile-based pixel art one tile at a time, by the W-Net classes in each tile.

Most pixel-art games draw their world on a grid of tiles (8 or 16 art pixels): a grass tile, a
stone tile, a cow drawn over grass. A tile's *texture* is then the set of colours it is made of,
and the W-Net's per-pixel classes act as textons: a plain grass tile is "grass class only", a tree
tile "dark-green + brown", a cow tile "grass + cow-brown + white". Pooling gives every tile the
label of its **signature**: the classes covering at least ``min_share`` of its pixels, plus the
colour bins covering at least ``colour_share`` of them (:class:`TileConfig`; the K textons are
fewer than the materials of many games, and a minority colour is often what sets two apart).

The W-Net sees context, so the same tile can get different classes next to a tree and in open
grass (thin "halo" classes along texture boundaries). :class:`~wnet_seg.inference.Segmenter`
therefore labels each *distinct* tile of a frame **out of context**: the network segments a
periodic mosaic of that tile alone (``reps x reps`` copies, the centre copy is read), so identical
tiles always get the same signature. Tiles are "identical" within the frame's own noise level
(:func:`wnet_seg.grid.tile_keys`): exact on exact frames, tolerant on JPEG or resampled ones, so
pooling survives screenshots as found in the wild. The run remembers every tile it labelled
(:attr:`SignatureIds.memory`): a copy of it in a later frame, within that frame's noise, gets the
same id without being segmented again, so ids agree across the frames of a lossy folder and the
network only sees tiles that are new. A tile that is a sprite drawn on a tile seen more often (a
cow on grass, a key on the floor: :func:`_background`) is split from it: the pixels that agree
with the background take the background's ids, the sprite's pixels the id of their colour set
(not the W-Net's classes, which change with the sprite's pose and surroundings). A sprite that
covers most of its cell, or whose background JPEG has blurred past the strict tolerance, is found
by its copy on another background (a player on grass and on sand: :func:`_paired_background`);
a block drawn as a whole cell (a chest on a floor) is only ever seen on its own background.
Partial tiles at the frame's border keep their
in-context classes (:func:`pool_tiles`); HUD bands the detector left out of the grid keep their
per-pixel classes.

The grid (native scale, tile size, phase, bands, confidence) comes from :mod:`wnet_seg.grid`;
pooling is skipped when no grid is claimed.

Label ids: a tile whose signature is one class ``c`` keeps id ``c``; each mixed signature gets the
next free id from ``K`` on, recorded in a :class:`SignatureIds` shared by every frame of a run so
ids mean the same thing across frames (``SignatureIds.table`` says which classes each id mixes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from wnet_seg.grid import PIXEL_TOL, TILE_TOL, FrameGrid, tile_keys
from wnet_seg.tile_identity import IdentityState

MAX_ID = 255  # masks are 8-bit PNGs; see SignatureIds.assign


@dataclass(frozen=True)
class TileConfig:
    """Tile pooling options (the grid's own options: :class:`wnet_seg.grid.GridConfig`).

    Attributes:
        min_share: a class is part of a tile's signature when it covers at least this share of the
            tile's pixels.
        reps: the out-of-context mosaic of a tile has ``reps x reps`` copies (odd, >= 1).
        colour_split: tiles with one W-Net signature but different colours (bins of this many
            levels per channel) get different ids; 0 turns it off. The W-Net's K textons can put
            two materials of one colour family in one class; their tiles' colours tell them apart.
        colour_share: the colour bins of a tile's signature are those covering at least this
            share of its pixels (the most common one always; 1.0: the most common only). A grey
            door is a grey wall with a dark frame (MiniGrid), a mossy wall a wall with green
            spots (Craftax): the minority colour is what tells them apart.

        background_share: a tile whose pixels agree (within ``SPRITE_TOL`` x noise) with a
            tile seen more often on at least this share of them, but not all, is a sprite drawn
            on that tile (a cow on grass): the agreeing pixels take the background's labels, the
            others the id of the sprite's colour bins (those pixels only, so a cow is one id on
            grass and on sand, and in every pose). Two sprite-like tiles that show the same
            sprite on two different backgrounds are split the same way whatever share of their
            cell the sprite covers (the ``PAIR_*`` constants). 0 turns both off.

    All chosen on the validation splits of the five benchmark games (clean, JPEG 85, bilinear
    1.5 + JPEG 85, the shipped checkpoint; docs/experiments.md): colour_split 32 over 0 / 16 /
    64, colour_share 0.05 over 1.0 / 0.2 / 0.1 / 0.02, background_share 0.5 over 0.3 / 0.7.
    """

    min_share: float = 0.1
    reps: int = 3
    colour_split: int = 32
    colour_share: float = 0.05
    background_share: float = 0.5

    def __post_init__(self) -> None:
        if int(self.reps) != self.reps or self.reps < 1 or self.reps % 2 == 0:
            raise ValueError(f"tiles reps must be an odd integer >= 1, got {self.reps}")
        if not 0.0 < self.min_share <= 0.5:
            raise ValueError(f"tiles min_share must be in (0, 0.5], got {self.min_share}")
        if not 0 <= self.colour_split <= 256:
            raise ValueError(f"tiles colour_split must be in [0, 256], got {self.colour_split}")
        if not 0.0 <= self.background_share <= 1.0:
            raise ValueError(
                f"tiles background_share must be in [0, 1], got {self.background_share}"
            )
        if not 0.0 < self.colour_share <= 1.0:
            raise ValueError(f"tiles colour_share must be in (0, 1], got {self.colour_share}")


# Signature entries >= BUCKET_BASE are colour bins (TileConfig.colour_split), not W-Net classes.
BUCKET_BASE = 1000


def colour_bins(tile: np.ndarray, size: int, share: float) -> tuple[int, ...]:
    """``BUCKET_BASE`` + the bins (``size`` levels per channel) of the tile's colours that cover
    at least ``share`` of its pixels; the most common colour's bin always."""
    q = (np.asarray(tile).reshape(-1, 3).astype(np.int64) // size) * [1 << 16, 1 << 8, 1]
    values, counts = np.unique(q.sum(1), return_counts=True)
    keep = counts >= share * counts.sum()
    keep[counts.argmax()] = True
    return tuple(BUCKET_BASE + int(v) for v in values[keep])


@dataclass(frozen=True)
class TileGrid:
    """Square tiles of ``size`` pixels; a tile starts at row ``offset_y`` and column ``offset_x``."""

    size: int
    offset_y: int = 0
    offset_x: int = 0


@dataclass
class SignatureIds:
    """Ids of mixed tile signatures, shared by all frames of one run so ids agree across frames."""

    num_classes: int
    max_id: int | None = MAX_ID - 1  # 255 is the ignore id of masks; None: unbounded
    table: dict[tuple[int, ...], int] = field(default_factory=dict)
    overflowed: int = 0
    # Per mixed signature: how many of its tiles had each dominant class (see ``dominant``).
    dominants: dict[tuple[int, ...], dict[int, int]] = field(default_factory=dict, repr=False)
    # Classes whose id a (single class, colour bin) signature already holds; ``own_classes=False``
    # gives every such signature a new id (a process-local table made global later, canonically).
    owned: set[int] = field(default_factory=set, repr=False)
    own_classes: bool = True
    # The run's tile memory: prototypes matched tolerantly (per tile size), each one's (t, t)
    # ids, first copy and number of copies seen (sprites need a more frequent background).
    memory: IdentityState = field(default_factory=IdentityState, repr=False)
    memory_maps: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # (t, t) ids
    memory_tiles: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # first copy
    memory_counts: dict[int, int] = field(default_factory=dict, repr=False)  # copies seen
    memory_labels: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # W-Net classes
    # Sprite-like prototypes: the background they loosely agree with and their other pixels
    # (:func:`_loose_background`), for pairing a sprite with its copy on another background.
    memory_loose: dict[int, tuple[int, np.ndarray]] = field(default_factory=dict, repr=False)
    split: set[int] = field(default_factory=set, repr=False)  # prototypes split as sprites

    def dominant(self, signature: tuple[int, ...]) -> int:
        """The class that dominated most tiles of ``signature`` (its first class if unseen)."""
        counts = self.dominants.get(signature)
        return max(counts, key=lambda c: (counts[c], -c)) if counts else signature[0]

    def assign(self, signature: tuple[int, ...], dominant: int) -> int:
        """Id of ``signature`` (classes sorted, then colour bins); a single class keeps its own
        id (with colour bins: the first colour seen with it).

        Past ``max_id`` a new signature falls back to its dominant class (counted in
        ``overflowed``) so masks stay 8-bit.
        """
        if len(signature) == 1 and signature[0] < BUCKET_BASE:
            return signature[0]
        classes = [c for c in signature if c < BUCKET_BASE]
        if self.own_classes and len(classes) == 1 and classes[0] not in self.owned:
            self.owned.add(classes[0])
            self.table[signature] = classes[0]
        seen = self.dominants.setdefault(signature, {})
        seen[dominant] = seen.get(dominant, 0) + 1
        got = self.table.get(signature)
        if got is not None:
            return got
        new = self.num_classes + len(self.table) - len(self.owned)
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


def mosaic(tile: np.ndarray, reps: int) -> np.ndarray:
    """``reps x reps`` copies of ``tile`` side by side: the tile as a periodic texture."""
    return np.tile(tile, (reps, reps, 1))


def signature(labels: np.ndarray, num_classes: int, min_share: float) -> tuple[int, ...]:
    """Classes covering at least ``min_share`` of ``labels`` (its most frequent one if none)."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=num_classes)
    members = np.flatnonzero(counts >= max(min_share * counts.sum(), 1))
    return tuple(int(c) for c in members) or (int(counts.argmax()),)


def tile_signature(
    labels: np.ndarray, tile: np.ndarray, num_classes: int, config: TileConfig
) -> tuple[tuple[int, ...], int]:
    """Signature of one tile's pixels (their W-Net ``labels`` out of context, their RGB values;
    any shape) and its dominant class."""
    labels, tile = np.asarray(labels).ravel(), np.asarray(tile).reshape(-1, 3)
    dominant = int(np.bincount(labels.ravel(), minlength=num_classes).argmax())
    sig = signature(labels, num_classes, config.min_share)
    if config.colour_split:
        sig = (*sig, *colour_bins(tile, config.colour_split, config.colour_share))
    return sig, dominant


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


def region_grid(grid: FrameGrid) -> tuple[tuple[slice, slice], TileGrid]:
    """The native region inside the HUD bands and its tile grid (offsets relative to it)."""
    t = int(grid.tile)
    rs, cs = grid.region()
    return (rs, cs), TileGrid(t, (grid.offset[0] - rs.start) % t, (grid.offset[1] - cs.start) % t)


def pool_frame_labels(labels: np.ndarray, grid: FrameGrid, min_share: float = 0.1) -> np.ndarray:
    """Tile pooling (in context) of one frame's arbitrary native labels (e.g. a baseline's), with
    ids of its own; HUD bands keep their labels."""
    dense = np.unique(labels, return_inverse=True)[1].reshape(np.shape(labels))
    (rs, cs), tg = region_grid(grid)
    out = dense.astype(np.int64)
    ids = SignatureIds(int(dense.max()) + 1, max_id=None)
    out[rs, cs] = pool_tiles(dense[rs, cs], tg, ids, min_share)
    return out


# Segments a batch of uint8 RGB frames (N, H, W, 3) into per-pixel class ids (N, H, W).
TileSegmenter = Callable[[np.ndarray], np.ndarray]


def pool_out_of_context(
    labels: np.ndarray,
    native: np.ndarray,
    grid: FrameGrid,
    config: TileConfig,
    ids: SignatureIds,
    segment_frames: TileSegmenter,
    batch: int = 64,
) -> np.ndarray:
    """Tile pooling of native ``labels`` with each distinct whole tile segmented alone.

    ``labels`` are the in-context classes of the native frame ``native`` (kept in HUD bands and
    used for partial border tiles); ``grid`` is its :class:`~wnet_seg.grid.FrameGrid` (with a
    tile size); ``segment_frames`` runs the network on periodic mosaics of single tiles. Returns
    int64 ids.
    """
    labels = np.asarray(labels).astype(np.int64, copy=False)
    t = int(grid.tile)
    (rs, cs), tg = region_grid(grid)
    out = labels.copy()
    out[rs, cs] = pool_tiles(labels[rs, cs], tg, ids, config.min_share)
    keys, reps, (y0, x0) = tile_keys(native, grid)
    ny, nx = keys.shape
    if len(reps) == 0:
        return out

    def tile(r: int) -> np.ndarray:
        i, j = divmod(int(r), nx)
        return native[y0 + i * t : y0 + (i + 1) * t, x0 + j * t : x0 + (j + 1) * t]

    # Tiles seen in an earlier frame of the run (within this frame's noise) keep their labels.
    rows = np.stack([tile(r).reshape(-1) for r in reps])
    protos = ids.memory.tolerant_ids(rows, t, TILE_TOL * grid.noise).tolist()
    per_key = np.bincount(keys.ravel(), minlength=len(reps))
    for p, n in zip(protos, per_key.tolist(), strict=True):
        ids.memory_counts[p] = ids.memory_counts.get(p, 0) + n
    first = {p: int(reps[i]) for i, p in reversed(list(enumerate(protos)))}
    new = [p for p in dict.fromkeys(protos) if p not in ids.memory_maps]
    new.sort(key=lambda p: -ids.memory_counts[p])  # backgrounds before their sprites
    c = config.reps // 2
    centres: dict[int, np.ndarray] = {}
    for start in range(0, len(new), batch):
        chunk = new[start : start + batch]
        mosaics = np.stack([mosaic(tile(first[p]), config.reps) for p in chunk])
        got = np.asarray(segment_frames(mosaics))[:, c * t : (c + 1) * t, c * t : (c + 1) * t]
        centres.update(zip(chunk, got, strict=True))
    # A new prototype's pixels: the mean of its copies in this frame (JPEG noise averages out,
    # so a sprite's tile and its background's agree more closely; exact frames: the tile itself).
    copies = np.asarray(protos)[keys].ravel()
    for p in new:
        where = np.flatnonzero(copies == p)
        pixels = np.rint(np.mean([tile(r) for r in where], axis=0)).astype(np.uint8)
        ids.memory_tiles[p] = pixels
        ids.memory_maps[p] = _tile_map(p, pixels, centres[p], grid, config, ids)
    maps = np.stack([ids.memory_maps[p] for p in protos])  # (K, t, t)
    block = maps[keys].transpose(0, 2, 1, 3).reshape(ny * t, nx * t)
    out[y0 : y0 + ny * t, x0 : x0 + nx * t] = block
    return out


# Sprite pixels: agreement with the background within SPRITE_TOL * noise per channel (exact on
# exact frames; tighter than PIXEL_TOL so that unrelated JPEG'd tiles of one colour family do not
# agree), at least NOVEL_SHARE of the differing pixels of colours the background lacks.
SPRITE_TOL = 2.0
NOVEL_SHARE = 0.5
EDGE_SHARE = 0.75  # ... and the background visible on at least this share of the tile's edge


def _more_frequent(p: int, pixels: np.ndarray, ids: SignatureIds) -> list[int]:
    """The labelled prototypes of ``pixels``' shape seen more often than ``p``: its candidate
    backgrounds."""
    n = ids.memory_counts[p]
    return [
        q for q, c in ids.memory_counts.items()
        if c > n and q in ids.memory_maps and ids.memory_tiles[q].shape == pixels.shape
    ]  # fmt: skip


def _background(
    p: int, pixels: np.ndarray, grid: FrameGrid, config: TileConfig, ids: SignatureIds
) -> tuple[int, np.ndarray] | None:
    """The tile seen more often than ``p`` whose pixels agree with most of ``pixels`` (at least
    ``background_share`` of them, not all), and the agreeing pixels ``(t, t)``; or ``None``."""
    if config.background_share <= 0:
        return None
    cands = _more_frequent(p, pixels, ids)
    if not cands:
        return None
    diff = np.abs(np.stack([ids.memory_tiles[q] for q in cands]).astype(np.int16) - pixels)
    agree = (diff <= SPRITE_TOL * grid.noise).all(-1)  # (Q, t, t)
    share = agree.reshape(len(cands), -1).mean(1)
    best = int(share.argmax())
    if share[best] < config.background_share or share[best] == 1.0:
        return None
    # A sprite stands inside its cell: the background shows along the tile's edge (a key on the
    # floor), where an object that fills its cell (a door's frame) covers the edge.
    ring = np.ones(pixels.shape[:2], bool)
    ring[1:-1, 1:-1] = False
    if agree[best][ring].mean() < EDGE_SHARE:
        return None
    # A sprite brings colours of its own (a cow on grass); a variant of a tile recolours or
    # rearranges the tile's own colours (a hollow Tetris block and a solid one).
    ground = np.unique(ids.memory_tiles[cands[best]].reshape(-1, 3), axis=0).astype(np.int16)
    differ = np.unique(pixels[~agree[best]].reshape(-1, 3), axis=0, return_counts=True)
    near = np.abs(differ[0][:, None, :].astype(np.int16) - ground[None]) <= PIXEL_TOL * grid.noise
    novel = ~near.all(-1).any(1)
    if differ[1][novel].sum() < NOVEL_SHARE * differ[1].sum():
        return None
    # The split: JPEG bleeds a sprite's chroma into the background around it (a green ball on
    # a black floor), where luma still agrees; those pixels are the background's too.
    split = agree[best] | _agree(ids.memory_tiles[cands[best]], pixels, grid.noise)
    return cands[best], (agree[best] if split.all() else split)


# A sprite seen on two backgrounds (a player facing one way on grass and on sand) is a sprite
# whatever share of its cell it covers, and under JPEG too, where its background's pixels no
# longer agree within SPRITE_TOL x noise: its two copies agree loosely on the sprite where their
# backgrounds differ. A block drawn as a whole cell (a chest on a floor, a mossy wall) is only
# ever seen on its own background. Loose agreement: luma within LOOSE_TOL x noise (JPEG keeps
# luma and bleeds chroma), exact on exact frames. Chosen on the validation splits of the five
# benchmark games (docs/experiments.md, "A sprite seen on two backgrounds").
LOOSE_TOL = 2.0
PAIR_MIN_SHARE = 0.25  # the background covers at least this share of the tile (and not all)
PAIR_MIN_SPRITE = 0.3  # ... and the sprite at least this share (less: JPEG noise, a highlight)
PAIR_GROUND_RATIO = 4.0  # a background is seen at least this many times as often as the tile
PAIR_MASK_IOU = 0.5  # the two copies' sprite pixels overlap at least this much (IoU) ...
PAIR_MATCH = 0.5  # ... and agree on at least half of their common sprite pixels
PAIR_GROUND_DIFFER = 0.5  # the backgrounds differ on at least this share of the pixels both show
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _agree(a: np.ndarray, b: np.ndarray, noise: float) -> np.ndarray:
    """Pixels of ``a`` and ``b`` (RGB, broadcast) that agree loosely: luma within ``LOOSE_TOL x
    noise``, exact on exact frames."""
    if noise == 0:
        return (a == b).all(-1)
    diff = a.astype(np.float32) - b.astype(np.float32)
    return np.abs(diff @ _LUMA) <= LOOSE_TOL * noise


def _loose_background(
    p: int, pixels: np.ndarray, grid: FrameGrid, ids: SignatureIds
) -> tuple[int, np.ndarray] | None:
    """The tile seen more often than ``p`` that agrees loosely with most of ``pixels`` and the
    mask of the pixels that do not (the sprite, ``(t, t)``), or ``None``."""
    cands = _more_frequent(p, pixels, ids)
    if not cands:
        return None
    agree = _agree(np.stack([ids.memory_tiles[q] for q in cands]), pixels, grid.noise)
    share = agree.reshape(len(cands), -1).mean(1)
    best = int(share.argmax())
    if not PAIR_MIN_SHARE <= share[best] < 1.0:
        return None
    return cands[best], ~agree[best]


def _pairable(p: int, loose: tuple[int, np.ndarray], ids: SignatureIds) -> bool:
    """Prototype ``p`` with its loose background may be one copy of a paired sprite."""
    ground, mask = loose
    frequent = ids.memory_counts[ground] >= PAIR_GROUND_RATIO * ids.memory_counts[p]
    return frequent and mask.mean() >= PAIR_MIN_SPRITE


def _paired_background(
    p: int, pixels: np.ndarray, loose: tuple[int, np.ndarray], grid: FrameGrid, ids: SignatureIds
) -> int | None:
    """A sprite-like prototype that shows the same sprite as ``p`` on another background (its
    :attr:`SignatureIds.memory_loose` entry), or ``None``."""
    ground, mask = loose
    if not _pairable(p, loose, ids):
        return None
    tol = PIXEL_TOL * grid.noise
    here = ids.memory_tiles[ground].astype(np.int16)
    best, best_score = None, 0.0
    for q, (ground_q, mask_q) in ids.memory_loose.items():
        if q == p or ground_q == ground or mask_q.shape != mask.shape:
            continue
        if not _pairable(q, (ground_q, mask_q), ids):
            continue
        common = mask & mask_q
        iou = common.sum() / max((mask | mask_q).sum(), 1)
        if iou < PAIR_MASK_IOU:
            continue
        same = _agree(ids.memory_tiles[q], pixels, grid.noise)
        match = same[common].mean()
        visible = ~(mask | mask_q)
        if match < PAIR_MATCH or not visible.any():
            continue
        there = ids.memory_tiles[ground_q].astype(np.int16)
        if (np.abs(here - there) > tol).any(-1)[visible].mean() < PAIR_GROUND_DIFFER:
            continue
        if iou * match > best_score:
            best, best_score = q, iou * match
    return best


def _paired_split(pixels: np.ndarray, ground: int, partner: int, ids: SignatureIds) -> np.ndarray:
    """The pixels of a paired sprite's tile that are its background's: nearer the background's
    pixel than the partner's (which shows the sprite on another background)."""
    px = pixels.astype(np.float32)
    to_ground = ((px - ids.memory_tiles[ground]) ** 2).sum(-1)
    to_sprite = ((px - ids.memory_tiles[partner]) ** 2).sum(-1)
    return to_ground < to_sprite


def _some(mask: np.ndarray) -> bool:
    """Some but not all of ``mask`` is set."""
    return 0 < int(mask.sum()) < mask.size


def _split_map(
    pixels: np.ndarray,
    labels: np.ndarray,
    found: tuple[int, np.ndarray] | None,
    config: TileConfig,
    ids: SignatureIds,
) -> np.ndarray:
    """Ids of one tile's pixels ``(t, t)``: its signature's id everywhere, or for a sprite on a
    background ``found = (background, its pixels)`` the background's ids there and the id of the
    sprite's colour set elsewhere."""
    mine = np.ones(labels.shape, bool) if found is None else ~found[1]
    sig, dominant = tile_signature(labels[mine], pixels[mine], ids.num_classes, config)
    if found is not None and config.colour_split:
        # A sprite's own pixels go by their colours alone: the network's classes on them change
        # with its pose and with what the mosaic puts around it (a player facing four ways, an
        # arrow flying four ways), its colours do not.
        sig = colour_bins(pixels[mine], config.colour_split, config.colour_share)
    out = np.full(labels.shape, ids.assign(sig, dominant), np.int64)
    if found is not None:
        out[found[1]] = ids.memory_maps[found[0]][found[1]]
    return out


def _tile_map(
    p: int,
    pixels: np.ndarray,
    labels: np.ndarray,
    grid: FrameGrid,
    config: TileConfig,
    ids: SignatureIds,
) -> np.ndarray:
    """Ids of the pixels of tile prototype ``p`` ``(t, t)``: its signature's id everywhere, or,
    for a sprite on a background tile, the background's ids where the two agree and the id of
    the sprite's colour set elsewhere.

    A sprite is found by :func:`_background` (it agrees with a more frequent tile on most of its
    pixels) or by its copy on another background (:func:`_paired_background`); a pairing also
    splits the earlier copy for the frames still to come.
    """
    ids.memory_labels[p] = labels
    found = _background(p, pixels, grid, config, ids)
    loose = _loose_background(p, pixels, grid, ids) if config.background_share > 0 else None
    if loose is not None:
        ids.memory_loose[p] = loose
        q = None if found is not None else _paired_background(p, pixels, loose, grid, ids)
        if q is not None and _some(agree := _paired_split(pixels, loose[0], q, ids)):
            found = (loose[0], agree)
            tile_q, ground_q = ids.memory_tiles[q], ids.memory_loose[q][0]
            if q not in ids.split and _some(agree_q := _paired_split(tile_q, ground_q, p, ids)):
                ids.memory_maps[q] = _split_map(
                    tile_q, ids.memory_labels[q], (ground_q, agree_q), config, ids
                )
                ids.split.add(q)
    if found is not None:
        ids.split.add(p)
    return _split_map(pixels, labels, found, config, ids)
