"""Craftax and Craftax-Classic captures: pixels equal the games' own renderer, labels match the
games' textures, the class table is fixed, captures are deterministic, seeds differ."""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import subprocess
import sys
from collections import defaultdict
from unittest import mock

import numpy as np
import pytest

pytest.importorskip("craftax")

from wnet_seg.capture import craftax as full  # noqa: E402
from wnet_seg.capture import craftax_classic as classic  # noqa: E402
from wnet_seg.capture._craftax_common import (  # noqa: E402
    CLASS_IDS,
    CLASSES,
    TILE,
    check_blocks,
    render,
)
from wnet_seg.data.io import list_images, load_mask, load_rgb, read_classes  # noqa: E402

T = TILE
MODULES = {"craftax": full, "craftax-classic": classic}
# Tests that play a game: the first one in a process compiles its JAX world generation and step,
# ~10 s for Classic but ~40 s for the full game on 2 cores, so the full game's are marked slow.
PLAYED = [pytest.param("craftax", marks=pytest.mark.slow), "craftax-classic"]
PACKAGES = {"craftax": "craftax.craftax", "craftax-classic": "craftax.craftax_classic"}


@functools.cache
def reference(name: str):
    """The game's own pixel renderer at 16 px (jitted) and its texture tables. Only the 16 px set
    is built (the game's ``load_all_textures`` would also build 10 and 64 px ones, for minutes)."""
    import jax

    renderer = importlib.import_module(f"{PACKAGES[name]}.renderer")
    constants = importlib.import_module(f"{PACKAGES[name]}.constants")
    textures = constants.load_all_textures_given_size(T)
    with mock.patch.object(renderer, "load_all_textures", lambda: {T: textures}):
        fn = jax.jit(renderer.make_craftax_pixel_renderer(T))
    return fn, {k: np.asarray(v) for k, v in textures.items()}


def game_view(name: str, state) -> np.ndarray:
    """The game's frame of ``state`` in full light, map part only, rounded to uint8."""
    import jax.numpy as jnp

    pinned = state.replace(light_level=jnp.asarray(1.0, jnp.float32))
    if name == "craftax":  # caves and dungeons: every tile lit
        pinned = pinned.replace(light_map=jnp.ones_like(state.light_map))
    pixels = np.asarray(reference(name)[0](pinned))[: MODULES[name].GAME.view[0] * T]
    return np.rint(pixels).astype(np.uint8)


def _orientations(rgb: np.ndarray, alpha: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """A projectile texture as drawn moving up, down, left and right."""
    out = []
    for flip in (False, True):
        r, a = (rgb[::-1], alpha[::-1]) if flip else (rgb, alpha)
        out += [(r, a), (r.transpose(1, 0, 2), a.T)]
    return out


@functools.cache
def game_sprites(name: str) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """Per class, the 16x16 ``(premultiplied rgb, alpha)`` sprites of the game's texture tables."""
    t = reference(name)[1]
    vr, vc = MODULES[name].GAME.view
    out: dict[int, list] = defaultdict(list)

    def add(cls: str, rgb: np.ndarray, alpha: np.ndarray) -> None:
        out[CLASS_IDS[cls]].append((rgb[..., :3] * alpha[..., None], alpha))

    py, px = (vr // 2) * T, (vc // 2) * T  # the player textures span the view, padded
    for i in range(5):
        rgb = t["full_map_player_textures"][i][py : py + T, px : px + T]
        add("player", rgb, t["full_map_player_textures_alpha"][i][py : py + T, px : px + T, 0])
    if name == "craftax":
        for value, (_, cls) in enumerate(full.ITEMS, 1):
            tex = t["full_map_item_textures"][value][:T, :T]
            add(cls, tex, tex[..., 3])
        for key, names in (
            ("melee", full.MELEE),
            ("passive", full.PASSIVE),
            ("ranged", full.RANGED),
        ):
            for i, cls in enumerate(names):
                alpha = t[f"{key}_mob_texture_alphas"][i][..., 0]
                add(cls, t[f"{key}_mob_textures"][i], alpha)
        for i, (_, cls) in enumerate(full.PROJECTILES):
            shot = t["projectile_textures"][i], t["projectile_texture_alphas"][i][..., 0]
            for rgb, alpha in _orientations(*shot):
                add(cls, rgb, alpha)
    else:
        for cls in ("zombie", "cow", "skeleton"):
            add(cls, t[f"{cls}_texture"], t[f"{cls}_texture_alpha"][..., 0])
        for rgb, alpha in _orientations(t["arrow_texture"], t["arrow_texture_alpha"][..., 0]):
            add("arrow", rgb, alpha)
    return out


def check_labels(name: str, rgb: np.ndarray, mask: np.ndarray) -> None:
    """In a tile-aligned frame, a pixel labelled with a block shows the game's texture of that block
    at its place in the tile (Classic: or a translucent shadow over it), and a pixel labelled with a
    sprite class shows an opaque texel of one of that class's sprites in the game's tables."""
    t = reference(name)[1]
    blocks = t["full_map_block_textures"][:, :T, :T]
    sprites = game_sprites(name)
    shadow = np.zeros((T, T), bool)
    for cands in sprites.values():
        for _, alpha in cands:
            shadow |= (alpha > 0) & (alpha < 1)
    ys, xs = np.indices(mask.shape)
    for cid in np.unique(mask).tolist():
        sel = mask == cid
        pix, yy, xx = rgb[sel].astype(np.float32), ys[sel] % T, xs[sel] % T
        if cid < len(blocks):
            wrong = (pix != blocks[cid][yy, xx]).any(1)
            assert not wrong.any() or (name == "craftax-classic" and shadow[yy, xx][wrong].all())
        else:
            ok = np.zeros(len(pix), bool)
            for tex, alpha in sprites[cid]:
                ok |= (alpha[yy, xx] == 1) & (tex[yy, xx] == pix).all(1)
            assert ok.all(), CLASSES[cid]


@pytest.mark.parametrize("name", PLAYED)
def test_frames_equal_the_games_renderer(name):
    """The game's own ``render_craftax_pixels`` (light pinned to 1) gives the same bytes as our crop
    of its view, on every floor, and the labels match the game's textures."""
    game = MODULES[name].GAME
    (vr, vc), (rows, cols) = game.view, game.map_size
    checked, floors, seen = 0, set(), set()
    for seed in (0, 1):
        for state in game.world_states(seed, 9, game.steps):
            scene = game.scene(state)
            r, c = scene.player
            if not (vr // 2 <= r < rows - vr // 2 and vc // 2 <= c < cols - vc // 2):
                continue  # the game's view would show grey out-of-map tiles
            y, x = (r - vr // 2) * T, (c - vc // 2) * T
            rgb, mask = render(scene, game.atlas, y, x, vr * T, vc * T)
            np.testing.assert_array_equal(rgb, game_view(name, state))
            check_labels(name, rgb, mask)
            checked, floors = checked + 1, floors | {scene.floor}
            seen |= set(np.unique(mask).tolist())
    assert checked >= 10
    assert CLASS_IDS["player"] in seen and len(seen) >= 12
    assert len(floors) >= (7 if name == "craftax" else 1)


@pytest.mark.parametrize("name", MODULES)
def test_textures_equal_the_games_tables(name):
    """Every block and sprite we draw equals the game's own processed texture (covers the classes
    the frames above happen not to show)."""
    game, t = MODULES[name].GAME, reference(name)[1]
    np.testing.assert_array_equal(game.atlas, t["full_map_block_textures"][:, :T, :T])
    ours: dict[int, list] = defaultdict(list)
    for key, table in game.sprites.items():
        for s in table:
            turns = key in ("projectiles", "arrow")
            variants = _orientations(s.rgb, s.alpha) if turns else [(s.rgb, s.alpha)]
            ours[s.label] += [(rgb * a[..., None], a) for rgb, a in variants]
    theirs = game_sprites(name)
    assert set(ours) == set(theirs)
    for cid, cands in theirs.items():
        for tex, alpha in cands:
            assert any(np.array_equal(alpha, a) and np.array_equal(tex, r) for r, a in ours[cid]), (
                CLASSES[cid]
            )


def test_class_table_is_fixed():
    from craftax.craftax.constants import BlockType
    from craftax.craftax_classic.constants import BlockType as ClassicBlockType

    check_blocks(BlockType)
    check_blocks(ClassicBlockType)
    assert len(set(CLASSES.values())) == len(CLASSES) and max(CLASSES) < 255
    fixed = {2: "grass", 18: "darkness", 36: "necromancer_vulnerable", 65: "torch", 80: "player"}
    fixed |= {81: "zombie", 89: "cow", 92: "skeleton", 100: "arrow", 104: "slimeball"}
    assert all(CLASSES[i] == n for i, n in fixed.items())
    for table in (full.CRAFTAX_CLASSES, classic.CLASSIC_CLASSES):
        assert all(CLASSES[i] == n for i, n in table.items())
    assert set(classic.CLASSIC_CLASSES) < set(full.CRAFTAX_CLASSES)
    assert {0, 1} & set(full.CRAFTAX_CLASSES) == set()  # off-map blocks are never in a crop


def _files(root) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("name", PLAYED)
def test_capture_is_deterministic_and_seeds_differ(name, tmp_path):
    mod = MODULES[name]
    num = 9 if name == "craftax" else 4
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert mod.capture(a, num, seed=3, progress=False) == num
    mod.capture(b, num, seed=3, progress=False)
    mod.capture(c, num, seed=4, progress=False)
    assert _files(a) == _files(b)
    assert read_classes(a / "classes.txt") == mod.GAME.classes
    h, w = (v * T for v in mod.GAME.view)
    images, masks = list_images(a / "images"), list_images(a / "masks")
    assert len(images) == len(masks) == num
    for img, msk, other in zip(images, masks, list_images(c / "images"), strict=True):
        rgb, mask = load_rgb(img), load_mask(msk)
        assert rgb.shape == (h, w, 3) and mask.shape == (h, w)
        assert set(np.unique(mask).tolist()) <= set(mod.GAME.classes)
        check_labels(name, rgb, mask)  # the written files, crops moved at map edges included
        assert not np.array_equal(rgb, load_rgb(other))
    record = json.loads((a / "provenance.json").read_text())
    assert record["game"] == name and record["seed"] == 3 and record["frames"] == num
    assert record["size"] == [h, w] and record["versions"]["craftax"] == "1.6.1"
    assert record["versions"]["jax"] and record["labels"]
    rows = (a / "frames.csv").read_text().splitlines()[1:]
    assert len(rows) == num and {r.split(",")[1] for r in rows} == {"3"}
    if name == "craftax":  # 9 frames of one world: each floor once
        assert sorted(int(r.split(",")[3]) for r in rows) == list(range(9))


@pytest.mark.parametrize("name", PLAYED)
def test_other_sizes_and_errors(name):
    game = MODULES[name].GAME
    for rgb, mask, info in game.frames(2, seed=5, size=(100, 200)):
        assert rgb.shape == (100, 200, 3) and mask.shape == (100, 200)
        assert (
            0 <= info.y <= game.map_size[0] * T - 100 and 0 <= info.x <= game.map_size[1] * T - 200
        )
    with pytest.raises(ValueError, match="map"):
        next(game.frames(1, size=game.map_size[0] * T + 1))


def _digest_code(name: str) -> str:
    return (
        f"import hashlib\nfrom wnet_seg.capture.{MODULES[name].__name__.rsplit('.', 1)[1]} "
        "import GAME\nh = hashlib.sha256()\n"
        "for rgb, mask, _ in GAME.frames(3, seed=2):\n"
        "    h.update(rgb.tobytes()); h.update(mask.tobytes())\n"
        "print(h.hexdigest())\n"
    )


@pytest.mark.slow  # a fresh process compiles the game again (Classic 10-30 s, Craftax 30-70 s)
@pytest.mark.parametrize("name", MODULES)
def test_same_bytes_in_another_process(name):
    """A fresh process (its own JAX compilation, hash seed) makes the same frames."""
    out = subprocess.run(
        [sys.executable, "-c", _digest_code(name)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONHASHSEED="123"),
    ).stdout.strip()
    h = hashlib.sha256()
    for rgb, mask, _ in MODULES[name].GAME.frames(3, seed=2):
        h.update(rgb.tobytes())
        h.update(mask.tobytes())
    assert out == h.hexdigest()
