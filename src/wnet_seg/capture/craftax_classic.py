"""Craftax-Classic frames with exact per-pixel labels from the game's state.

Craftax-Classic (``craftax.craftax_classic`` in craftax 1.6.1, MIT licence) is Crafter re-written
in JAX: one 64x64-tile overworld. Frames are drawn by the exact NumPy re-implementation of its
``render_craftax_pixels`` in :mod:`wnet_seg.capture._craftax_common` at 16 px per tile, with the
light pinned to full daylight (no night tint, whatever the state's ``light_level``) and **without
the inventory strip** (cropped off).

Default frame: the game's local view of 7x9 tiles, 112x144 px, centred on the player like the
game's (moved onto the map near its edges, where the game would show grey out-of-map tiles);
``size`` asks for any other crop of the map around the player (up to 1024x1024).

Labels (ids shared with :mod:`wnet_seg.capture.craftax`, :data:`CLASSIC_CLASSES`):

- per tile: the block (``state.map``; the id is the game's ``BlockType`` value, 2 grass .. 16
  ripe_plant);
- per opaque sprite pixel (texture alpha 255): the player, zombies, cows, skeletons
  (``state.zombies``, ``cows``, ``skeletons``) and arrows (``state.arrows``). Classic blends the
  translucent drop shadows of the player, zombies, cows and skeletons (alpha 128): those darkened
  pixels keep the block's id, as do transparent ones. Nothing is ignored (no 255).

Worlds: ``generate_world(jax.random.PRNGKey(seed))``, one per seed, ``frames_per_world`` frames
each (default 8); the player gets 9 of every material and all tools (so random play places
tables, furnaces, stone and saplings and mines everything). Before each frame the player is put on
a random free grass/sand/path tile with health/food/drink/energy refilled, then 16 random actions
(half moves, never sleep, which tints the view) are played with the game's own ``craftax_step``.
Deterministic in ``seed``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from wnet_seg.capture._craftax_common import (
    CLASS_IDS,
    CLASSES,
    PLAYER_FILES,
    CraftaxGame,
    Engine,
    Scene,
    Sprite,
    block_atlas,
    check_blocks,
    jit_engine,
    load_sprite,
)

NUM_BLOCKS = 17  # Craftax-Classic's BlockType: invalid .. ripe_plant
CLASSIC_MOBS = ("zombie", "cow", "skeleton", "arrow")
CLASSIC_CLASSES: dict[int, str] = {
    i: n for i, n in CLASSES.items() if 2 <= i < NUM_BLOCKS or n in ("player", *CLASSIC_MOBS)
}
"""``classes.txt`` of Craftax-Classic: blocks grass .. ripe_plant, the player and its 4 mobs."""

_SLEEP = 6  # Action.SLEEP


def _assets() -> Path:
    from craftax.craftax_classic import constants

    return Path(constants.__file__).parent / "assets"


class CraftaxClassic(CraftaxGame):
    name = "craftax-classic"
    view = (7, 9)
    map_size = (64, 64)
    floors = 1
    walkable = ("grass", "sand", "path")
    other_actions = tuple(a for a in (0, *range(5, 17)) if a != _SLEEP)
    frames_per_world = 8
    classes = CLASSIC_CLASSES

    def _engine(self) -> Engine:
        import jax.numpy as jnp
        from craftax.craftax_classic.envs.craftax_state import (
            EnvParams,
            Inventory,
            StaticEnvParams,
        )
        from craftax.craftax_classic.game_logic import craftax_step
        from craftax.craftax_classic.world_gen import generate_world

        params, static = EnvParams(), StaticEnvParams()
        full = Inventory(**{f: jnp.asarray(9, jnp.int32) for f in Inventory.__dataclass_fields__})

        def generate(key):
            return generate_world(key, params, static).replace(inventory=full)

        def place(state, floor, pos):
            return state.replace(
                player_position=pos,
                player_health=jnp.asarray(9, jnp.int32),
                player_food=jnp.asarray(9, jnp.int32),
                player_drink=jnp.asarray(9, jnp.int32),
                player_energy=jnp.asarray(9, jnp.int32),
                is_sleeping=jnp.asarray(False),
            )

        def step(key, state, action):
            return craftax_step(key, state, action, params, static)[0]

        return jit_engine(generate, step, place)

    def _atlas(self) -> np.ndarray:
        from craftax.craftax_classic.constants import BlockType

        check_blocks(BlockType)
        return block_atlas(_assets(), NUM_BLOCKS)

    @functools.cached_property
    def sprites(self) -> dict[str, tuple[Sprite, ...]]:
        """The renderer's sprites: player (by direction - 1; 4: asleep), mobs (zombie, cow,
        skeleton), arrow. Classic keeps the translucent shadows of the player and the mobs."""
        assets, ids = _assets(), CLASS_IDS

        def load(pairs, clamp):
            return tuple(load_sprite(assets / f"{f}.png", ids[n], clamp) for f, n in pairs)

        return {
            "player": load(((f, "player") for f in PLAYER_FILES), clamp=False),
            "mobs": load(((n, n) for n in CLASSIC_MOBS[:3]), clamp=False),
            "arrow": load([("arrow-up", "arrow")], clamp=True),
        }

    def floor_maps(self, state, floor: int):
        return state.map, state.mob_map

    def scene(self, state) -> Scene:
        import jax

        s = jax.device_get(state)
        tables = self.sprites
        player = tuple(int(v) for v in s.player_position)
        sprites = [(*player, tables["player"][4 if s.is_sleeping else s.player_direction - 1])]
        for mobs, sprite in zip((s.zombies, s.cows, s.skeletons), tables["mobs"], strict=True):
            sprites += [(*mobs.position[i], sprite) for i in np.nonzero(mobs.mask)[0]]
        for i in np.nonzero(s.arrows.mask)[0]:
            sprites.append(
                (*s.arrows.position[i], tables["arrow"][0].oriented(s.arrow_directions[i]))
            )
        return Scene(np.array(s.map), sprites, player, 0)


GAME = CraftaxClassic()


# The generic capture entry point (:mod:`wnet_seg.capture.games`): 8 frames per world,
# 112x144 by default (the game's view).
capture = GAME.capture
