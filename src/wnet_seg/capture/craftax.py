"""Craftax (the full game) frames with exact per-pixel labels from the game's state.

Craftax 1.6.1 (``craftax.craftax``, MIT licence) has worlds of 9 floors of 48x48 tiles: the
overworld, a dungeon, the gnomish mines, the sewers, the vaults, the troll mines, the fire and ice
levels and the necromancer's graveyard. Frames are drawn by the exact NumPy re-implementation of
its ``render_craftax_pixels`` in :mod:`wnet_seg.capture._craftax_common` at 16 px per tile, with
the light pinned to full daylight everywhere (no night, no cave darkness, whatever the state's
``light_level`` and ``light_map``) and **without the inventory/HUD strip** (cropped off).

Default frame: the game's local view of 9x11 tiles, 144x176 px, centred on the player like the
game's (moved onto the floor near its edges, where the game would show grey out-of-map tiles);
``size`` asks for any other crop of the floor around the player (up to 768x768).

Labels (ids in :data:`CLASSES`, fixed; ``classes.txt`` lists them):

- per tile: the block (``state.map``; the id is Craftax's ``BlockType`` value), as the renderer
  shows it: the necromancer as ``necromancer_vulnerable`` while he is, like the game does;
- per opaque sprite pixel (texture alpha 255; Craftax draws only those, its alpha is clamped to
  0/1): items (torch, ladders; a closed ladder down as ``ladder_down_blocked``), the player, mobs
  (``melee_mobs``, ``passive_mobs``, ``ranged_mobs``: zombie .. ice_elemental, cow, bat, snail)
  and projectiles (``mob_projectiles``, ``player_projectiles``: arrow, dagger, fireball, iceball,
  slimeball); transparent pixels keep what is below. Nothing is ignored (no 255).

Worlds: ``generate_world(jax.random.PRNGKey(seed))``, one per seed, ``frames_per_world`` frames
each (default 9: each floor once, in a random order); the player gets a full inventory and both
spells, so random play places torches, tables and plants, shoots arrows and casts spells. Before
each frame the player is put on a random free walkable tile of its floor with health, food, drink,
energy and mana refilled; then 16 random actions (half moves; never sleep or rest, which darken
the view or freeze the player) are played with the game's own ``craftax_step``, so mobs spawn,
move and shoot. Deterministic in ``seed``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from wnet_seg.capture._craftax_common import (
    CLASS_IDS,
    CLASSES,
    MOB_CLASSES,
    NEVER_IN_VIEW,
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

CRAFTAX_CLASSES: dict[int, str] = {i: n for i, n in CLASSES.items() if n not in NEVER_IN_VIEW}
"""``classes.txt`` of Craftax: every class of the table but the two off-map blocks."""

# (texture, class) of ItemType values 1..4 (0: no item).
ITEMS = (
    ("torch_in_inventory", "torch"),
    ("ladder_down", "ladder_down"),
    ("ladder_up", "ladder_up"),
    ("ladder_down_blocked", "ladder_down_blocked"),
)
# Mob classes (and texture names) by type id, as in the game's load_all_textures.
MELEE = MOB_CLASSES[0:8]  # zombie .. frost_troll
PASSIVE = MOB_CLASSES[8:11]  # cow, bat, snail
RANGED = MOB_CLASSES[11:19]  # skeleton .. ice_elemental
# Projectile type ids 0..7 -> (texture, class): mob and player projectiles share the table.
PROJECTILES = (
    ("arrow-up", "arrow"),
    ("dagger", "dagger"),
    ("fireball", "fireball"),
    ("iceball", "iceball"),
    ("arrow-up", "arrow"),
    ("slimeball", "slimeball"),
    ("fireball", "fireball"),
    ("iceball", "iceball"),
)
_NO_SLEEP_REST = (6, 17)  # Action.SLEEP, Action.REST


def _assets() -> Path:
    from craftax.craftax import constants

    return Path(constants.__file__).parent / "assets"


class Craftax(CraftaxGame):
    name = "craftax"
    view = (9, 11)
    map_size = (48, 48)
    floors = 9
    walkable = ("grass", "sand", "path", "fire_grass", "ice_grass")  # CAN_PLACE_ITEM_BLOCKS
    other_actions = tuple(a for a in (0, *range(5, 43)) if a not in _NO_SLEEP_REST)
    frames_per_world = 9
    classes = CRAFTAX_CLASSES

    def _engine(self) -> Engine:
        import jax.numpy as jnp
        from craftax.craftax.craftax_state import EnvParams, StaticEnvParams
        from craftax.craftax.game_logic import craftax_step
        from craftax.craftax.world_gen.world_gen import generate_world, get_new_full_inventory

        params, static = EnvParams(), StaticEnvParams()

        def generate(key):
            state = generate_world(key, params, static)
            return state.replace(
                inventory=get_new_full_inventory(), learned_spells=jnp.ones(2, dtype=bool)
            )

        def place(state, floor, pos):
            return state.replace(
                player_level=jnp.asarray(floor, jnp.int32),
                player_position=pos,
                player_health=jnp.asarray(9.0, jnp.float32),
                player_food=jnp.asarray(9, jnp.int32),
                player_drink=jnp.asarray(9, jnp.int32),
                player_energy=jnp.asarray(9, jnp.int32),
                player_mana=jnp.asarray(9, jnp.int32),
                is_sleeping=jnp.asarray(False),
                is_resting=jnp.asarray(False),
            )

        def step(key, state, action):
            return craftax_step(key, state, action, params, static)[0]

        return jit_engine(generate, step, place)

    def _atlas(self) -> np.ndarray:
        from craftax.craftax.constants import BlockType

        check_blocks(BlockType)
        return block_atlas(_assets(), len(BlockType))

    @functools.cached_property
    def sprites(self) -> dict[str, tuple[Sprite, ...]]:
        """The renderer's sprite tables, each indexed like the game's: items (by ``ItemType`` value
        - 1), player (by direction - 1; 4: asleep), mobs (by type id), projectiles (by type id)."""

        def load(pairs):
            return tuple(load_sprite(_assets() / f"{f}.png", CLASS_IDS[n]) for f, n in pairs)

        return {
            "items": load(ITEMS),
            "player": load((f, "player") for f in PLAYER_FILES),
            "melee": load((n, n) for n in MELEE),
            "passive": load((n, n) for n in PASSIVE),
            "ranged": load((n, n) for n in RANGED),
            "projectiles": load(PROJECTILES),
        }

    def floor_maps(self, state, floor: int):
        return state.map[floor], state.mob_map[floor]

    def scene(self, state) -> Scene:
        import jax
        from craftax.craftax.constants import MONSTERS_KILLED_TO_CLEAR_LEVEL, BlockType, ItemType
        from craftax.craftax.util.game_logic_utils import is_boss_vulnerable

        vulnerable = bool(is_boss_vulnerable(state))
        s = jax.device_get(state)
        level = int(s.player_level)
        blocks = np.array(s.map[level])
        if vulnerable:
            blocks[blocks == BlockType.NECROMANCER.value] = BlockType.NECROMANCER_VULNERABLE.value
        items = np.array(s.item_map[level])
        if s.monsters_killed[level] < MONSTERS_KILLED_TO_CLEAR_LEVEL:
            items[items == ItemType.LADDER_DOWN.value] = ItemType.LADDER_DOWN_BLOCKED.value
        tables = self.sprites
        sprites = [
            (r, c, tables["items"][items[r, c] - 1])
            for r, c in zip(*np.nonzero(items), strict=True)
        ]
        player = tuple(int(v) for v in s.player_position)
        sprites.append((*player, tables["player"][4 if s.is_sleeping else s.player_direction - 1]))
        for mobs, table in (
            (s.melee_mobs, "melee"),
            (s.passive_mobs, "passive"),
            (s.ranged_mobs, "ranged"),
        ):
            for i in np.nonzero(mobs.mask[level])[0]:
                sprites.append((*mobs.position[level, i], tables[table][mobs.type_id[level, i]]))
        for shots, dirs in (
            (s.mob_projectiles, s.mob_projectile_directions),
            (s.player_projectiles, s.player_projectile_directions),
        ):
            for i in np.nonzero(shots.mask[level])[0]:
                sprite = tables["projectiles"][shots.type_id[level, i]].oriented(dirs[level, i])
                sprites.append((*shots.position[level, i], sprite))
        return Scene(blocks, sprites, player, level)


GAME = Craftax()


# The generic capture entry point (:mod:`wnet_seg.capture.games`): 9 frames per world,
# 144x176 by default (the game's view).
capture = GAME.capture
