"""Native scale and tile grid detection (wnet_seg.grid): each case a small synthetic frame with a
known answer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wnet_seg.data.degrade import parse_degradation
from wnet_seg.grid import (
    FrameGrid,
    GridConfig,
    detect,
    from_native,
    refit,
    tile_keys,
    to_native,
    vote,
)


def pixel_tile(rng: np.random.Generator, t: int, palette: np.ndarray) -> np.ndarray:
    """A pixel-art tile: a base colour and a few rectangles and dots of other palette colours."""
    tile = np.empty((t, t, 3), np.uint8)
    tile[:] = palette[0]
    for _ in range(4):
        y, x = rng.integers(0, t, 2)
        h, w = rng.integers(1, t // 2 + 1, 2)
        tile[y : y + h, x : x + w] = palette[rng.integers(1, len(palette))]
    ys, xs = rng.integers(0, t, (2, 3))
    tile[ys, xs] = palette[rng.integers(1, len(palette))]
    return tile


def tile_map(
    rows: int, cols: int, t: int = 16, kinds: int = 8, seed: int = 0, tiles=None, layout=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A frame of ``rows x cols`` tiles in runs (like a game map): (frame, layout, tiles)."""
    rng = np.random.default_rng(seed)
    if tiles is None:
        palette = rng.integers(0, 256, (16, 3)).astype(np.uint8)
        tiles = np.stack(
            [pixel_tile(rng, t, palette[rng.choice(16, 4, replace=False)]) for _ in range(kinds)]
        )
    if layout is None:
        coarse = rng.integers(0, len(tiles), (rows // 2 + 1, cols // 2 + 1))
        layout = np.repeat(np.repeat(coarse, 2, 0), 2, 1)[:rows, :cols]
        flip = rng.random((rows, cols)) < 0.3
        layout[flip] = rng.integers(0, len(tiles), int(flip.sum()))
    frame = tiles[layout].transpose(0, 2, 1, 3, 4).reshape(rows * t, cols * t, 3)
    return np.ascontiguousarray(frame), layout, tiles


def crop(frame: np.ndarray, y: int, x: int, h: int, w: int, t: int):
    """A crop and the offset of its first whole tile."""
    return frame[y : y + h, x : x + w].copy(), ((-y) % t, (-x) % t)


MAP, _, _ = tile_map(12, 12)  # 192 x 192 px of 16 px tiles


def test_config_checks_name_the_option():
    for kwargs, name in (
        ({"scale": "big"}, "scale"),
        ({"scale": 0.5}, "scale"),
        ({"tile": "huge"}, "tile"),
        ({"tile": 1}, "tile"),
        ({"min_tile": 32, "max_tile": 16}, "min_tile"),
        ({"max_scale": 1.0}, "max_scale"),
        ({"min_confidence": 2.0}, "min_confidence"),
    ):
        with pytest.raises(ValueError, match=name):
            GridConfig(**kwargs)
    assert GridConfig(scale="2.5").scale == 2.5 and GridConfig(tile="16").tile == 16


@pytest.mark.parametrize(
    ("condition", "kernel"),
    [
        ("clean", "none"),
        ("nearest:2", "nearest"),
        ("nearest:3", "nearest"),
        ("nearest:1.5", "nearest"),
        ("nearest:2.5", "nearest"),
        ("bilinear:2", "linear"),
        ("bilinear:1.5", "linear"),
        ("bilinear:2.5", "linear"),
        ("jpeg:85", "none"),
        ("nearest:3+jpeg:85", "nearest"),
        ("bilinear:1.5+jpeg:85", "linear"),
    ],
)
def test_scale_tile_and_phase_under_each_degradation(condition, kernel):
    frame, offset = crop(MAP, 5, 9, 128, 128, 16)
    deg = parse_degradation(condition)
    g = detect(deg(frame)[0])
    assert g.scale == pytest.approx(deg.scale, rel=0.01)
    assert g.kernel == kernel
    assert (g.tile, g.offset) == (16, offset)
    assert 0.5 <= g.confidence <= 1.0


def test_large_uniform_area_with_dotted_floor_gives_16_not_4_or_8():
    """Rooms of a floor with a dot every 4 px and many wall variants on a big black area."""
    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, (8, 3)).astype(np.uint8)
    floor = np.empty((16, 16, 3), np.uint8)
    floor[:] = palette[0]
    floor[2::4, 2::4] = palette[1]
    walls = [pixel_tile(rng, 16, palette[[2, 3, 4, 5]]) for _ in range(6)]
    tiles = np.stack([np.zeros((16, 16, 3), np.uint8), floor, *walls])
    layout = np.zeros((12, 14), np.int64)
    for r0, c0, r1, c1 in ((1, 1, 6, 7), (6, 8, 11, 13)):
        layout[r0:r1, c0:c1] = 2 + rng.integers(0, 6, (r1 - r0, c1 - c0))
        layout[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1] = 1
    big, _, _ = tile_map(12, 14, tiles=tiles, layout=layout)
    frame, offset = crop(big, 3, 6, 184, 208, 16)
    for condition in ("clean", "jpeg:85"):
        g = detect(parse_degradation(condition)(frame)[0])
        assert (g.scale, g.tile, g.offset) == (1.0, 16, offset), condition


def dotted_rooms(t: int, seed: int = 3) -> tuple[np.ndarray, tuple[int, int]]:
    """Two rooms of a floor with a dot every 4 px, walled by wall variants, on a black area:
    ``t`` px tiles, cropped off the grid (frame, offset of the first whole tile)."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (8, 3)).astype(np.uint8)
    floor = np.empty((t, t, 3), np.uint8)
    floor[:] = palette[0]
    floor[2::4, 2::4] = palette[1]
    walls = [pixel_tile(rng, t, palette[[2, 3, 4, 5]]) for _ in range(6)]
    tiles = np.stack([np.zeros((t, t, 3), np.uint8), floor, *walls])
    layout = np.zeros((18, 20), np.int64)
    for r0, c0, r1, c1 in ((1, 1, 8, 9), (9, 10, 17, 19)):
        layout[r0:r1, c0:c1] = 2 + rng.integers(0, 6, (r1 - r0, c1 - c0))
        layout[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1] = 1
    big, _, _ = tile_map(18, 20, t=t, tiles=tiles, layout=layout)
    return crop(big, 5, 7, 18 * t - 12, 20 * t - 12, t)


def test_dotted_12px_floor_is_three_times_its_dot_period(monkeypatch):
    """The dot period's multiples all peak; when 8 (twice the period) is the best candidate,
    3/2 of it (12, three periods) is fitted too and wins on description length."""
    import wnet_seg.grid as grid_mod

    frame, offset = dotted_rooms(12)
    nat = grid_mod._Native.of(frame, 0.0)
    monkeypatch.setattr(grid_mod, "_size_candidates", lambda image, cfg: [8])
    fit = grid_mod._fit_tiles(nat, GridConfig(), None)
    assert (fit.tile, (fit.oy, fit.ox)) == (12, offset)
    monkeypatch.setattr(grid_mod, "THREE_HALVES", False)
    assert grid_mod._fit_tiles(nat, GridConfig(), None).tile != 12  # the path under test


def test_hud_band_is_found_and_left_out():
    frame, offset = crop(MAP, 0, 3, 160, 160, 16)
    hud = np.zeros((21, 160, 3), np.uint8)
    hud[:] = (20, 20, 60)
    rng = np.random.default_rng(1)
    for x in range(4, 150, 7):  # text: random 5 x 9 glyphs
        glyph = rng.random((9, 5)) < 0.5
        hud[6:15, x : x + 5][glyph] = (250, 240, 90)
    g = detect(np.concatenate([hud, frame]))
    assert g.tile == 16 and g.offset == ((21 + offset[0]) % 16, offset[1])
    rows = [(a, b) for axis, a, b in g.bands if axis == "rows"]
    assert rows and rows[0][0] == 0 and 16 <= rows[0][1] <= 37  # the band, to a tile row
    rs, _ = g.region()
    ids, _, (y0, _) = tile_keys(np.concatenate([hud, frame]), g)
    assert y0 >= rows[0][1] and ids.shape[0] == (g.native_hw[0] - y0) // 16


def test_sprites_off_the_grid_do_not_move_it():
    frame, offset = crop(MAP, 7, 2, 160, 176, 16)
    rng = np.random.default_rng(2)
    sprite = rng.integers(0, 256, (12, 12, 3)).astype(np.uint8)
    for y, x in rng.integers(0, 140, (8, 2)):
        frame[y : y + 12, x : x + 12] = sprite
    g = detect(frame)
    assert (g.tile, g.offset) == (16, offset)


@pytest.mark.parametrize("kind", ["smooth", "noise", "gradient"])
def test_no_grid_and_scale_one_on_photo_like_frames(kind):
    rng = np.random.default_rng(5)
    if kind == "noise":
        frame = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
    elif kind == "gradient":
        yy, xx = np.mgrid[0:160, 0:160] / 159.0
        frame = np.stack([yy * 255, xx * 200 + 20, (1 - yy) * 120 + xx * 60], -1).astype(np.uint8)
    else:
        from scipy.ndimage import gaussian_filter

        field = gaussian_filter(rng.standard_normal((160, 160, 3)), (6, 6, 0))
        frame = ((field - field.min()) / np.ptp(field) * 255).astype(np.uint8)
    for condition in ("clean", "jpeg:85"):
        g = detect(parse_degradation(condition)(frame)[0])
        assert g.tile is None and g.scale == 1.0 and g.confidence < 0.5, (kind, condition)


def test_scrolling_frames_vote_on_size_and_refit_their_phase():
    frames, offsets = [], []
    for y, x in ((0, 0), (3, 11), (9, 5), (14, 1)):
        f, o = crop(MAP, y, x, 128, 128, 16)
        frames.append(parse_degradation("nearest:2")(f)[0])
        offsets.append(o)
    grids = [detect(f) for f in frames]
    shared = vote(grids)
    assert shared is not None and (shared.scale, shared.tile) == (2.0, 16)
    for f, o in zip(frames, offsets, strict=True):
        g = refit(f, shared)
        assert (g.scale, g.tile, g.offset) == (2.0, 16, o)
    # A frame with little to show alone still gets the shared size (mostly one uniform colour).
    sparse = frames[0].copy()
    sparse[64:] = 0
    assert refit(sparse, shared).tile == 16
    assert vote([FrameGrid(), FrameGrid()]) is None


def line_room(seed: int, n: int = 9) -> np.ndarray:
    """A MiniGrid-like room: a floor of 32 px tiles with one-pixel lines on their top and left
    edges, objects filling some tiles' interiors. The phase one pixel off each axis describes it
    as well (the lines then lie on the tiles' far edges): only the frame's corner tells them apart."""
    rng = np.random.default_rng(seed)
    frame = line_floor(n, n)
    palette = rng.integers(0, 256, (8, 3)).astype(np.uint8)
    objects = [pixel_tile(rng, 31, palette[rng.choice(8, 4, replace=False)]) for _ in range(4)]
    for _ in range(16):
        i, j = rng.integers(0, n, 2)
        frame[i * 32 + 1 : i * 32 + 32, j * 32 + 1 : j * 32 + 32] = objects[rng.integers(0, 4)]
    return frame


def test_vote_carries_the_most_common_phase():
    grids = [FrameGrid(tile=16, offset=o, confidence=0.9, candidate=16) for o in
             [(3, 5), (0, 1), (0, 1), (7, 2)]]  # fmt: skip
    assert vote(grids).offset == (0, 1)


def test_refit_keeps_the_folder_phase_where_the_frame_cannot_tell():
    """Under JPEG, a frame whose phases (0, 0) and (0, 1) fit about equally keeps the folder's;
    a frame scrolled by (5, 9) px still gets its own phase, not the folder's."""
    room = line_room(1)
    frame = parse_degradation("jpeg:85")(room[:256, :256].copy())[0]
    alone = detect(frame)
    assert (alone.tile, alone.offset) == (32, (0, 0))
    for phase in ((0, 0), (0, 1)):
        folder = FrameGrid(tile=32, offset=phase, confidence=0.9, candidate=32)
        assert refit(frame, folder).offset == phase
    scrolled = parse_degradation("jpeg:85")(room[5:261, 9:265].copy())[0]
    folder = FrameGrid(tile=32, offset=(0, 0), confidence=0.9, candidate=32)
    assert refit(scrolled, folder).offset in {(27, 23), (28, 24)}


def test_native_round_trip_and_exact_sizes():
    frame, _ = crop(MAP, 2, 2, 128, 144, 16)
    up = parse_degradation("nearest:3")(frame)[0]
    g = detect(up)
    native = to_native(up, g)
    assert native.shape[:2] == g.native_hw and np.array_equal(native, frame)
    assert np.array_equal(from_native(native, g, up.shape[:2]), up)
    lossy = parse_degradation("nearest:3+jpeg:85")(frame)[0]
    g = detect(lossy)
    native = to_native(lossy, g)
    assert native.shape[:2] == frame.shape[:2]
    assert np.abs(native.astype(int) - frame).mean() < 6  # cells snapped to their colour
    labels = from_native(
        np.arange(native.shape[0] * native.shape[1]).reshape(native.shape[:2]), g, lossy.shape[:2]
    )
    assert labels.shape == lossy.shape[:2]  # the input's exact size, labels never blurred
    assert set(np.unique(labels[::3, ::3])) <= set(range(native.size // 3))


def test_to_native_is_the_median_of_each_cell():
    """The nearest-upscale path (a lossless frame takes one member per cell, others the median)
    against a per-cell loop over the pixels whose centre falls inside the cell (not on its
    boundary: resizers assign those either way)."""

    def members(n: int, scale: float, origin: float) -> tuple[np.ndarray, np.ndarray]:
        u = (np.arange(n) + 0.5 - origin) / scale
        return np.floor(u), np.abs(u - np.rint(u)) * scale < 1e-6

    frame, _ = crop(MAP, 2, 2, 64, 80, 16)
    for cond in ("nearest:3", "nearest:2.5"):
        up = parse_degradation(cond)(frame)[0]
        g = detect(up, GridConfig(scale=cond.split(":")[1], tile="off"))
        assert np.array_equal(to_native(up, g), frame), cond
        noisy = up.copy()
        noisy[7, 11] += 40  # one pixel off: no longer a lossless upscale, medians
        noisy[30:33, 30:33] = rng_colours(9)  # a cell of 9 different colours (at 3x)
        (ry, ty), (rx, tx) = (
            members(up.shape[0], g.scale, g.origin[0]),
            members(up.shape[1], g.scale, g.origin[1]),
        )
        got = to_native(noisy, g)
        for y, x in np.ndindex(*g.native_hw):
            cell = noisy[(ry == y) & ~ty][:, (rx == x) & ~tx].reshape(-1, 3)
            if len(cell) % 2:  # an odd count: the median is unique
                np.testing.assert_array_equal(got[y, x], np.median(cell, axis=0), (cond, y, x))
            else:  # even: the median lies between the middle two values
                s = np.sort(cell, axis=0)
                assert (
                    (s[len(cell) // 2 - 1] <= got[y, x]) & (got[y, x] <= s[len(cell) // 2])
                ).all()


def rng_colours(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (3, 3, 3), dtype=np.uint8)


def test_tile_keys_exact_and_tolerant():
    frame, layout, _ = tile_map(8, 8, seed=4)
    g = detect(frame)
    ids, reps, (y0, x0) = tile_keys(frame, g)
    assert (y0, x0) == (0, 0) and g.noise == 0
    # exact: the same as hashing the tile bytes
    keys = {}
    expect = [keys.setdefault(frame[i : i + 16, j : j + 16].tobytes(), len(keys))
              for i in range(0, 128, 16) for j in range(0, 128, 16)]  # fmt: skip
    assert np.array_equal(ids.ravel(), expect) and len(reps) == len(keys)
    jpeg = parse_degradation("jpeg:85")(frame)[0]
    gj = detect(jpeg)
    assert gj.noise > 0
    ids_j, _, _ = tile_keys(jpeg, gj)
    # near-identical copies share an id, different tiles do not: a bijection with the layout
    pairs = set(zip(ids_j.ravel().tolist(), layout.ravel().tolist(), strict=True))
    assert len(pairs) == len(set(layout.ravel().tolist())) == len(set(ids_j.ravel().tolist()))
    assert len(np.unique(tile_keys(jpeg, gj, exact=True)[0])) > len(np.unique(ids_j))


def test_record_is_json_and_forced_options():
    g = detect(MAP[:128, :128], GridConfig(tile="off"))
    assert g.tile is None
    g = detect(MAP[:128, :128], GridConfig(scale="off", tile=16))
    rec = json.loads(json.dumps(g.record()))
    assert rec["scale"] == 1.0 and rec["tile"] == 16 and rec["offset"] == [0, 0]
    assert 0.0 <= rec["confidence"] <= 1.0
    with pytest.raises(ValueError, match="uint8"):
        detect(np.zeros((10, 10), np.float32))


def line_floor(rows: int, cols: int, t: int = 32) -> np.ndarray:
    """A frame of one tile: black with a grey line on its top and left edge (a MiniGrid floor)."""
    tile = np.zeros((t, t, 3), np.uint8)
    tile[0, :] = tile[:, 0] = 100
    return np.ascontiguousarray(np.tile(tile, (rows, cols, 1)))


def test_one_texture_frame_tells_its_size_at_its_scale():
    """A floor of lines: every phase describes it equally well, so only the size is evidence; and
    3x upscaled it is also an exact 32/9 upscale (27 native px per tile), the simpler 3x wins."""
    floor = line_floor(6, 6)
    g = detect(floor)
    assert (g.scale, g.tile) == (1.0, 32) and g.confidence >= 0.5
    up = detect(parse_degradation("nearest:3")(floor)[0])
    assert (up.scale, up.tile) == (3.0, 32) and up.confidence >= 0.5


def test_small_frame_of_few_tile_kinds_claims_its_grid():
    """9 x 11 tiles, mostly one textured ground tile (a Craftax view): too few tiles for the
    phase alone to be decisive, but their copies stop matching one pixel off the size."""
    rng = np.random.default_rng(8)
    palette = rng.integers(0, 256, (10, 3)).astype(np.uint8)
    tiles = np.stack(
        [pixel_tile(rng, 16, palette[rng.choice(10, 4, replace=False)]) for _ in range(4)]
    )
    layout = np.zeros((9, 11), np.int64)
    layout[rng.random((9, 11)) < 0.15] = rng.integers(1, 4)
    frame, _, _ = tile_map(9, 11, tiles=tiles, layout=layout)
    for condition in ("clean", "jpeg:85"):
        g = detect(parse_degradation(condition)(frame)[0])
        assert (g.scale, g.tile, g.offset) == (1.0, 16, (0, 0)), condition


def test_jpeg_blocks_of_a_smooth_frame_are_no_grid():
    """JPEG codes 8 x 8 blocks: a gentle gradient's blocks repeat exactly along its level lines
    and a photo's smooth areas turn flat at the block phase; neither is a tile grid."""
    yy, xx = np.mgrid[0:256, 0:256] / 255.0
    gradient = np.stack([140 + 30 * xx, 70 + 20 * xx, 90 + 10 * yy], -1).astype(np.uint8)
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(2)
    field = gaussian_filter(rng.standard_normal((256, 256, 3)), (10, 10, 0))
    smooth = ((field - field.min()) / np.ptp(field) * 255).astype(np.uint8)
    for frame in (gradient, smooth):
        for condition in ("jpeg:85", "bilinear:1.5+jpeg:85", "nearest:3"):
            g = detect(parse_degradation(condition)(frame)[0])
            assert g.tile is None and g.confidence < 0.5, condition


def test_tolerant_matching_keeps_mean_luma_apart():
    """Two tiles alike but for a mean shift of 6 grey levels are different tiles under JPEG-level
    noise (copies keep their mean luma), while noisy copies of one tile stay one tile."""
    from wnet_seg.grid import DC_TOL, LOSSY_NOISE, TILE_TOL, cluster_rows

    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, (64, 3)).astype(np.int16)
    copies = [base + rng.integers(-3, 4, base.shape) for _ in range(3)]
    brighter = base + 6
    rows = np.stack([c.ravel() for c in [*copies, brighter]]).clip(0, 255).astype(np.uint8)
    ids = cluster_rows(rows, TILE_TOL * LOSSY_NOISE, DC_TOL * LOSSY_NOISE)
    assert len(set(ids[:3])) == 1 and ids[3] != ids[0]
    assert len(set(cluster_rows(rows, TILE_TOL * LOSSY_NOISE))) == 1  # without the luma test


def test_scale_readings_simplest_fraction_first():
    from wnet_seg.grid_scale import Hypothesis, ranked

    def fit(s: float, rho: float) -> tuple:
        h = Hypothesis(scale=s, kernel="nearest", origin=0.0, residual=rho, null=1.0)
        return (h, h)

    order = [
        v[0].scale for v in ranked([fit(1.5, 0.1), fit(32 / 9, 0.0), fit(3.0, 0.2), fit(3.0, 0.1)])
    ]
    assert order == [3.0, 1.5, 32 / 9]
    assert ranked([fit(3.0, 0.2), fit(3.0, 0.1)])[0][0].rho == 0.1


def test_tile_steps_match_a_direct_reference():
    """Each tile's largest 4-neighbour step inside it, small (fold) and big (strided) tiles."""
    from wnet_seg.grid import _Native

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (70, 90, 3)).astype(np.uint8)
    image[:30, :40] = 7  # flat tiles: step 0
    nat = _Native.of(image, 0.0)
    for tile, oy, ox in ((8, 3, 5), (12, 0, 0), (21, 4, 2), (32, 1, 9)):
        ny, nx = (70 - oy) // tile, (90 - ox) // tile
        want = []
        for r in range(ny):
            for c in range(nx):
                t = image[oy + r * tile : oy + (r + 1) * tile, ox + c * tile : ox + (c + 1) * tile]
                t = t.astype(int)
                want.append(max(np.abs(np.diff(t, axis=0)).max(), np.abs(np.diff(t, axis=1)).max()))
        assert nat.tile_steps(tile, oy, ox, ny, nx).tolist() == want, tile


def test_components_and_chunked_linkage_match_scipy(monkeypatch):
    """Connected components as scipy numbers them (by smallest node), and single linkage gives
    the same groups from the Gram matrix and from pairs compared in chunks."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    import wnet_seg.grid as grid_mod

    rng = np.random.default_rng(2)
    for n, m in ((1, 0), (5, 0), (30, 12), (200, 150), (500, 2000)):
        a, b = rng.integers(0, n, (2, m))
        graph = csr_matrix((np.ones(m, np.int8), (a, b)), shape=(n, n))
        want = connected_components(graph, directed=False)[1]
        assert grid_mod._components(a, b, n).tolist() == want.tolist(), (n, m)

    base = rng.integers(0, 256, (40, 48)).astype(np.float32)
    rows = np.concatenate([base + rng.normal(0, 3, base.shape) for _ in range(6)])
    whole = grid_mod._single_linkage(rows, 6.0, 8.0)
    monkeypatch.setattr(grid_mod, "GRAM_ROWS", 0)  # the chunked pairs path
    monkeypatch.setattr(grid_mod, "PAIR_CHUNK", 7)
    assert grid_mod._single_linkage(rows, 6.0, 8.0).tolist() == whole.tolist()
    assert 1 < len(set(whole.tolist())) < len(rows)  # some rows grouped, not all


def test_half_size_tile_fits_its_own_phase(monkeypatch):
    """A half of a fitted size tries its own phase as well as the inherited one: a wrong phase
    at 32 px must not push the 16 px grid off its phase."""
    import wnet_seg.grid as grid_mod

    frame, offset = crop(MAP, 5, 9, 128, 128, 16)
    nat = grid_mod._Native.of(frame, 0.0)
    real = grid_mod._phase

    def wrong_at_32(n, tile):
        oy, ox = real(n, tile)
        return ((oy + 8) % tile, (ox + 8) % tile) if tile == 32 else (oy, ox)

    monkeypatch.setattr(grid_mod, "_phase", wrong_at_32)
    monkeypatch.setattr(grid_mod, "_size_candidates", lambda image, cfg: [32, 16])
    fit = grid_mod._fit_tiles(nat, GridConfig(), None)
    assert (fit.tile, (fit.oy, fit.ox)) == (16, offset)


def test_box_sums_and_tridiagonal_solve_match_direct_references():
    """Window sums (by doubling, the binary digits of the size added end to end) against a
    double loop; the normal-equation solve (LDL^T, pivoting fallback) against a dense solve."""
    from wnet_seg.grid import _box_sums
    from wnet_seg.grid_scale import solve_normal_tridiagonal

    rng = np.random.default_rng(4)
    m = rng.random((40, 53)) < 0.4
    for t in (1, 2, 3, 7, 8, 20, 21, 32, 40):
        want = np.array(
            [[m[y : y + t, x : x + t].sum() for x in range(53 - t + 1)] for y in range(40 - t + 1)]
        )
        assert np.array_equal(_box_sums(m, t), want), t
    n = 30
    off = rng.uniform(-1, 1, n - 1)
    rhs = rng.normal(size=(n, 4))
    for diag in (rng.uniform(2.5, 4, n), rng.uniform(-1, 1, n)):  # SPD, then indefinite
        dense = np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)
        want = np.linalg.solve(dense, rhs)
        np.testing.assert_allclose(solve_normal_tridiagonal(diag, off, rhs), want, atol=1e-8)
