"""What the Craftax captures share: the class table, an exact re-implementation of the games' pixel
renderer for any crop of a floor, and the capture loop (worlds, floors, random play, files).

Craftax (Matthews et al. 2024, ``craftax`` package, MIT licence) is a JAX re-write of Crafter; the
full game (:mod:`wnet_seg.capture.craftax`) and Craftax-Classic
(:mod:`wnet_seg.capture.craftax_classic`) draw their local view with ``render_craftax_pixels``: a
block texture per tile, then RGBA sprites (items, player, mobs, projectiles) composited on top as
``below * (1 - alpha) + rgb * alpha`` in float32, then darkness, night and sleep tints. Here the
same arithmetic in NumPy draws any rectangle of the player's floor at 16 px per tile (the games'
art), with the light pinned to full daylight (no darkness, night or sleep tint: exact textures);
the float result is rounded to the nearest uint8. The inventory/HUD strip is not drawn (cropped
off). ``tests/test_capture_craftax.py`` checks the pixels against the game's own renderer.

Labels: blocks per tile (the class id *is* Craftax's ``BlockType`` value, with the renderer's
display swaps applied); items, the player, mobs and projectiles per sprite pixel: a pixel whose
texture alpha is 255 gets the sprite's class, others keep what is below. Craftax clamps alpha to
0/1 (so there a translucent drop shadow is simply not drawn); Craftax-Classic blends the shadows
(alpha 128) of the player, zombies, cows and skeletons, whose darkened pixels keep the block's id.

Class ids (:data:`CLASSES`, fixed; both games use the same ids, Classic a subset):

- 0..36 blocks, Craftax's ``BlockType`` order: 0 invalid, 1 out_of_bounds (both never in a frame:
  crops stay on the map), 2 grass, 3 water, 4 stone, 5 tree, 6 wood, 7 path, 8 coal, 9 iron,
  10 diamond, 11 crafting_table, 12 furnace, 13 sand, 14 lava, 15 plant, 16 ripe_plant (Classic
  ends here), 17 wall, 18 darkness, 19 wall_moss, 20 stalagmite, 21 sapphire, 22 ruby, 23 chest,
  24 fountain, 25 fire_grass, 26 ice_grass, 27 gravel, 28 fire_tree, 29 ice_shrub,
  30 enchantment_table_fire, 31 enchantment_table_ice, 32 necromancer, 33 grave, 34 grave2,
  35 grave3, 36 necromancer_vulnerable;
- 65 torch, 66 ladder_down, 67 ladder_up, 68 ladder_down_blocked (64 + ``ItemType``);
- 80 player;
- 81..88 melee mobs: zombie, gnome_warrior, orc_soldier, lizard, knight, troll, pigman,
  frost_troll; 89..91 passive: cow, bat, snail; 92..99 ranged: skeleton, gnome_archer, orc_mage,
  kobold, knight_archer, deep_thing, fire_elemental, ice_elemental;
- 100..104 projectiles: arrow, dagger, fireball, iceball, slimeball.
"""

from __future__ import annotations

import abc
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wnet_seg.capture import as_hw, write_frame_index

TILE = 16  # pixels per tile of the games' art

# Class ids 0..36: Craftax's BlockType values (Craftax-Classic's 0..16 are the same blocks).
BLOCK_CLASSES: tuple[str, ...] = (
    "invalid",
    "out_of_bounds",
    "grass",
    "water",
    "stone",
    "tree",
    "wood",
    "path",
    "coal",
    "iron",
    "diamond",
    "crafting_table",
    "furnace",
    "sand",
    "lava",
    "plant",
    "ripe_plant",
    "wall",
    "darkness",
    "wall_moss",
    "stalagmite",
    "sapphire",
    "ruby",
    "chest",
    "fountain",
    "fire_grass",
    "ice_grass",
    "gravel",
    "fire_tree",
    "ice_shrub",
    "enchantment_table_fire",
    "enchantment_table_ice",
    "necromancer",
    "grave",
    "grave2",
    "grave3",
    "necromancer_vulnerable",
)
ITEM_BASE = 64  # items: 64 + Craftax's ItemType value
ITEM_CLASSES: tuple[str, ...] = ("none", "torch", "ladder_down", "ladder_up", "ladder_down_blocked")
PLAYER_ID = 80
MOB_BASE = 81  # mobs (melee, passive, ranged, in the games' type-id order), then projectiles
MOB_CLASSES: tuple[str, ...] = (
    "zombie",
    "gnome_warrior",
    "orc_soldier",
    "lizard",
    "knight",
    "troll",
    "pigman",
    "frost_troll",
    "cow",
    "bat",
    "snail",
    "skeleton",
    "gnome_archer",
    "orc_mage",
    "kobold",
    "knight_archer",
    "deep_thing",
    "fire_elemental",
    "ice_elemental",
    "arrow",
    "dagger",
    "fireball",
    "iceball",
    "slimeball",
)

CLASSES: dict[int, str] = {i: n for i, n in enumerate(BLOCK_CLASSES)}
CLASSES.update({ITEM_BASE + i: n for i, n in enumerate(ITEM_CLASSES) if n != "none"})
CLASSES[PLAYER_ID] = "player"
CLASSES.update({MOB_BASE + i: n for i, n in enumerate(MOB_CLASSES)})
"""``{id: name}``: blocks 0..36, items 65..68, player 80, mobs 81..99, projectiles 100..104."""

CLASS_IDS: dict[str, int] = {n: i for i, n in CLASSES.items()}
NEVER_IN_VIEW = ("invalid", "out_of_bounds")  # only off the map, and crops stay on the map

# Block textures whose file is not "<class name>.png" (as in the games' load_all_textures).
_BLOCK_FILES = {
    "invalid": "debug_tile.png",
    "crafting_table": "table.png",
    "plant": "plant_on_grass.png",
    "ripe_plant": "ripe_plant_on_grass.png",
    "wall": "wall2.png",
}
_FLAT_BLOCKS = {"out_of_bounds": 128, "darkness": 0}  # drawn as one grey level, no file
# Player textures by the game's index: direction - 1 (left, right, up, down), 4 = asleep.
PLAYER_FILES = ("player-left", "player-right", "player-up", "player-down", "player-sleep")


@dataclass(frozen=True)
class Sprite:
    """A 16x16 sprite: ``rgb`` and ``alpha`` (in [0, 1]) as float32, and the class it labels."""

    rgb: np.ndarray
    alpha: np.ndarray
    label: int

    def oriented(self, direction: Sequence[int]) -> Sprite:
        """A projectile drawn for ``direction`` (row, col step) as the games do: the up-pointing
        texture flipped vertically when moving down or right, transposed when moving sideways."""
        rgb, alpha = self.rgb, self.alpha
        if direction[0] > 0 or direction[1] > 0:
            rgb, alpha = rgb[::-1], alpha[::-1]
        if direction[1] != 0:
            rgb, alpha = rgb.transpose(1, 0, 2), alpha.T
        return Sprite(np.ascontiguousarray(rgb), np.ascontiguousarray(alpha), self.label)


@dataclass(frozen=True)
class Scene:
    """One floor as drawn: block ids per tile (``[row, col]``) and sprites in drawing order."""

    blocks: np.ndarray
    sprites: list[tuple[int, int, Sprite]]  # (row, col, sprite)
    player: tuple[int, int]  # (row, col)
    floor: int


def read_rgba(path: Path) -> np.ndarray:
    """A texture file as ``(16, 16, 4)`` uint8, as the games read it."""
    from PIL import Image

    with Image.open(path) as img:
        rgba = np.asarray(img.convert("RGBA"))
    if rgba.shape != (TILE, TILE, 4):
        raise RuntimeError(f"{path}: expected a 16x16 texture, got {rgba.shape}")
    return rgba


def load_sprite(path: Path, label: int, clamp: bool = True) -> Sprite:
    """The sprite in ``path``; ``clamp``: alpha 0/1 (``alpha // 255``), as the games mostly do."""
    rgba = read_rgba(path)
    a = rgba[..., 3]
    alpha = (a // 255).astype(np.float32) if clamp else a.astype(np.float32) / np.float32(255)
    return Sprite(rgba[..., :3].astype(np.float32), alpha, label)


def block_atlas(assets: Path, num_blocks: int) -> np.ndarray:
    """Block textures ``(num_blocks, 16, 16, 3)`` float32, indexed by block id."""
    atlas = np.zeros((num_blocks, TILE, TILE, 3), np.float32)
    for i, name in enumerate(BLOCK_CLASSES[:num_blocks]):
        if name in _FLAT_BLOCKS:
            atlas[i] = _FLAT_BLOCKS[name]
        else:
            atlas[i] = read_rgba(assets / _BLOCK_FILES.get(name, f"{name}.png"))[..., :3]
    return atlas


def check_blocks(block_enum: Any) -> None:
    """Fail loudly if the installed game numbers its blocks differently from :data:`CLASSES`."""
    names = tuple(b.name.lower() for b in block_enum)
    if names != BLOCK_CLASSES[: len(names)] or [b.value for b in block_enum] != list(
        range(len(names))
    ):
        raise RuntimeError(
            f"craftax's BlockType {names} differs from the expected {BLOCK_CLASSES[: len(names)]}; "
            "update wnet_seg.capture._craftax_common.BLOCK_CLASSES"
        )


def render(
    scene: Scene, atlas: np.ndarray, y: int, x: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Image ``(height, width, 3)`` uint8 and labels ``(height, width)`` of the floor's pixel
    rectangle with top-left corner ``(y, x)`` (pixel = tile * 16); it must lie on the floor."""
    rows, cols = scene.blocks.shape
    if y < 0 or x < 0 or y + height > rows * TILE or x + width > cols * TILE:
        raise ValueError(
            f"crop y={y} x={x} height={height} width={width} is not inside the "
            f"{rows * TILE}x{cols * TILE} px floor"
        )
    r0, c0 = y // TILE, x // TILE
    r1, c1 = -(-(y + height) // TILE), -(-(x + width) // TILE)
    blocks = scene.blocks[r0:r1, c0:c1]
    nr, nc = blocks.shape
    canvas = atlas[blocks].transpose(0, 2, 1, 3, 4).reshape(nr * TILE, nc * TILE, 3)
    labels = np.repeat(np.repeat(blocks.astype(np.uint8), TILE, axis=0), TILE, axis=1)
    for r, c, sprite in scene.sprites:
        if r0 <= r < r1 and c0 <= c < c1:
            py, px = (r - r0) * TILE, (c - c0) * TILE
            region = (slice(py, py + TILE), slice(px, px + TILE))
            a = sprite.alpha[..., None]
            canvas[region] = canvas[region] * (1 - a) + sprite.rgb * a
            labels[region][sprite.alpha == 1] = sprite.label
    oy, ox = y - r0 * TILE, x - c0 * TILE
    canvas = canvas[oy : oy + height, ox : ox + width]
    rgb = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return rgb, np.ascontiguousarray(labels[oy : oy + height, ox : ox + width])


def crop_around(
    player: tuple[int, int], size: tuple[int, int], floor: tuple[int, int]
) -> tuple[int, int]:
    """Top-left ``(y, x)`` of the ``size`` crop centred on the player's tile, moved onto the floor
    where it would stick out. Centred, a crop of the game's view size is exactly the game's view."""
    (h, w), (rows, cols) = size, floor
    y = player[0] * TILE + TILE // 2 - h // 2
    x = player[1] * TILE + TILE // 2 - w // 2
    return min(max(y, 0), rows * TILE - h), min(max(x, 0), cols * TILE - w)


@dataclass(frozen=True)
class Engine:
    """The game's own JAX world generation and step, jitted once per process."""

    new_world: Callable  # key -> state
    place: Callable  # (state, floor, (row, col)) -> state with the player there, refreshed
    play: Callable  # (key, state, actions) -> state after the actions


def jit_engine(generate: Callable, step: Callable, place: Callable) -> Engine:
    """Jit ``generate(key)``, ``place(state, floor, pos)`` and ``step(key, state, action)`` (played
    over an action array with ``lax.scan``). Their states' leaves are made arrays of fixed, not
    weak, dtypes: the scan's output is, and a state differing only in that would compile again."""
    import jax
    import jax.numpy as jnp

    def strong(state):
        return jax.tree.map(lambda leaf: jnp.asarray(leaf).astype(jnp.asarray(leaf).dtype), state)

    def play(key, state, actions):
        def body(s, key_action):
            return step(key_action[0], s, key_action[1]), None

        keys = jax.random.split(key, actions.shape[0])
        return jax.lax.scan(body, state, (keys, actions))[0]

    return Engine(
        jax.jit(lambda key: strong(generate(key))),
        jax.jit(lambda state, floor, pos: strong(place(state, floor, pos))),
        jax.jit(play),
    )


@dataclass(frozen=True)
class FrameInfo:
    """Where a frame came from: enough to find it again."""

    world_seed: int
    frame_in_world: int
    floor: int
    y: int  # crop's top edge in floor pixels
    x: int  # crop's left edge in floor pixels


class CraftaxGame(abc.ABC):
    """One of the two games: its engine, art and state layout. The frame loop is shared."""

    name: str  # its entry in wnet_seg.capture.games
    view: tuple[int, int]  # the game's local view in tiles (rows, cols): the default frame size
    map_size: tuple[int, int]  # a floor's tiles (rows, cols)
    floors: int  # floors a world has
    walkable: tuple[str, ...]  # blocks the player may be put on
    other_actions: tuple[int, ...]  # random-play actions besides the four moves
    classes: dict[int, str]  # classes.txt
    frames_per_world: int  # default frames of one world
    steps = 16  # default random actions before each frame

    @functools.cached_property
    def engine(self) -> Engine:
        return self._engine()

    @functools.cached_property
    def atlas(self) -> np.ndarray:
        """Block textures ``(blocks, 16, 16, 3)`` float32, indexed by block id."""
        return self._atlas()

    @abc.abstractmethod
    def _engine(self) -> Engine: ...

    @abc.abstractmethod
    def _atlas(self) -> np.ndarray: ...

    @abc.abstractmethod
    def floor_maps(self, state, floor: int) -> tuple[Any, Any]:
        """``(blocks, mob_map)`` of ``floor`` (device arrays): where the player may be put."""

    @abc.abstractmethod
    def scene(self, state) -> Scene:
        """What the game's renderer draws on the player's floor (``state`` on the device)."""

    def view_size(self, size: int | tuple[int, int] | None) -> tuple[int, int]:
        """``size`` in pixels ``(H, W)``; ``None``: the game's view (the map part of its frame)."""
        return as_hw(size) if size is not None else (self.view[0] * TILE, self.view[1] * TILE)

    def random_actions(self, rng: np.random.Generator, steps: int) -> np.ndarray:
        """Half moves (left, right, up, down), half uniform over :attr:`other_actions`."""
        moves = rng.integers(1, 5, steps)
        others = np.asarray(self.other_actions)[rng.integers(0, len(self.other_actions), steps)]
        return np.where(rng.random(steps) < 0.5, moves, others).astype(np.int32)

    def world_states(self, world_seed: int, num: int, steps: int) -> Iterator[Any]:
        """``num`` game states (on the device) of world ``world_seed``, one per frame. Before each,
        the player is put on a random free walkable tile of the next floor (the floors in a random
        order) with full health, food, drink and energy; then ``steps`` random actions are played
        (mobs spawn, move and shoot)."""
        import jax

        rng = np.random.default_rng([int(world_seed), 0xC4AF7A])
        key = jax.random.PRNGKey(int(world_seed))
        state = self.engine.new_world(key)
        order = np.concatenate(
            [rng.permutation(self.floors) for _ in range(-(-num // self.floors))]
        )
        for k in range(num):
            floor = int(order[k])
            state = self.engine.place(state, floor, self._free_tile(state, floor, rng))
            actions = self.random_actions(rng, steps)
            state = self.engine.play(jax.random.fold_in(key, k), state, actions)
            yield state

    def world_frames(
        self, world_seed: int, num: int, size: tuple[int, int], steps: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray, FrameInfo]]:
        """``num`` frames ``(rgb, mask, info)`` of world ``world_seed``: :meth:`world_states`, each
        drawn as the ``size`` crop around the player."""
        for k, state in enumerate(self.world_states(world_seed, num, steps)):
            scene = self.scene(state)
            y, x = crop_around(scene.player, size, scene.blocks.shape)
            rgb, mask = render(scene, self.atlas, y, x, *size)
            yield rgb, mask, FrameInfo(int(world_seed), k, scene.floor, y, x)

    def _free_tile(self, state, floor: int, rng: np.random.Generator) -> np.ndarray:
        import jax

        blocks, mobs = jax.device_get(self.floor_maps(state, floor))
        rows, cols = np.nonzero(np.isin(blocks, [CLASS_IDS[b] for b in self.walkable]) & ~mobs)
        i = int(rng.integers(0, len(rows)))
        return np.array([rows[i], cols[i]], np.int32)

    def _defaults(self, frames_per_world: int | None, steps: int | None) -> tuple[int, int]:
        return (
            self.frames_per_world if frames_per_world is None else frames_per_world,
            self.steps if steps is None else steps,
        )

    def frames(
        self,
        num: int,
        seed: int = 0,
        size: int | tuple[int, int] | None = None,
        frames_per_world: int | None = None,
        steps: int | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, FrameInfo]]:
        """``num`` frames ``(rgb, mask, info)`` from worlds ``seed, seed + 1, ...``,
        ``frames_per_world`` each, deterministic in ``seed``; ``size``: see :meth:`view_size`.
        A new ``steps`` compiles the game's step again (the actions are one ``lax.scan``)."""
        frames_per_world, steps = self._defaults(frames_per_world, steps)
        h, w = self.view_size(size)
        rows, cols = self.map_size
        if not (1 <= h <= rows * TILE and 1 <= w <= cols * TILE):
            raise ValueError(f"frame size {h}x{w} must fit the {rows * TILE}x{cols * TILE} px map")
        if num < 0 or frames_per_world < 1 or steps < 1:
            raise ValueError(
                f"need num >= 0, frames_per_world >= 1 and steps >= 1, "
                f"got {num}, {frames_per_world}, {steps}"
            )
        done, world = 0, int(seed)
        while done < num:
            n = min(frames_per_world, num - done)
            yield from self.world_frames(world, n, (h, w), steps)
            done += n
            world += 1

    def capture(
        self,
        out: str | os.PathLike,
        num: int,
        seed: int = 0,
        size: int | tuple[int, int] | None = None,
        progress: bool = True,
        frames_per_world: int | None = None,
        steps: int | None = None,
    ) -> int:
        """Write ``num`` frames as a dataset folder, plus ``frames.csv`` (world seed, floor and crop
        of each frame); returns the count."""
        from wnet_seg.capture import provenance, write_dataset

        out = Path(out)
        frames_per_world, steps = self._defaults(frames_per_world, steps)
        infos: list[FrameInfo] = []

        def frames():
            for rgb, mask, info in self.frames(num, seed, size, frames_per_world, steps):
                infos.append(info)
                yield rgb, mask

        record = provenance(
            self.name,
            seed,
            packages=("craftax", "jax", "jaxlib"),
            num=num,
            size=list(self.view_size(size)),
            frames_per_world=frames_per_world,
            steps=steps,
        )
        n = write_dataset(
            frames(),
            out,
            self.classes,
            total=num,
            progress=progress,
            desc=self.name,
            provenance=record,
        )
        write_frame_index(
            out,
            ["world_seed", "frame_in_world", "floor", "y", "x"],
            ((i.world_seed, i.frame_in_world, i.floor, i.y, i.x) for i in infos),
        )
        return n
