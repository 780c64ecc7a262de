"""MiniGrid frames with exact per-pixel labels from the grid's own state.

MiniGrid (Farama, ``minigrid`` package, MIT licence) draws every cell with its own tile renderer
(``minigrid.core.grid.Grid.render_tile``: vector primitives at 3x resolution, averaged down to
anti-alias them); ``env.get_frame(highlight=False)`` is the whole grid, ``tile`` pixels per cell
(native 32), without the shading of the agent's field of view. Labels come from ``grid.get(i, j)``
and the agent's position and direction, drawn with the same renderer:

- opaque cells (``wall``, ``goal``, ``lava``, closed and locked doors) fill their whole cell, which
  is labelled per tile, waves, frames and key slots included;
- small objects (keys, balls, boxes, open doors) are drawn on the empty cell (black with grey grid
  lines on its top and left edges): labelled per sprite pixel, i.e. the pixels that differ from
  the empty cell's rendering get the object's class and the rest ``floor`` (so the black ring of a
  key or the inside of a box is ``floor``);
- the agent (a red triangle) is drawn over whatever its cell holds: the pixels that differ from the
  cell without the agent are ``agent``.

Anti-aliased edge pixels (blends of an object and the black floor) differ from the empty cell, so
they belong to the object. Class ids are fixed (:data:`MINIGRID_CLASSES`): an object outside the
table (a coloured floor tile, a wall that is not grey: no environment used here makes one) would be
labelled 255 (ignore).

Frames come from episodes of :data:`ENV_IDS`: episode seed ``s`` plays ``ENV_IDS[s % len]`` reset
with ``seed=s``; between frames a few random actions are played (turns and steps forward, and
toggling/picking up what the agent faces, so doors open and objects move). Everything is drawn by
the game from its seeded state, so the same seed gives the same frames in every process.
``tests/test_capture_minigrid.py`` re-renders each labelled pixel from the game's tile renderer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wnet_seg.capture import as_hw, write_frame_index
from wnet_seg.data.io import IGNORE_ID

NATIVE_TILE = 32  # minigrid.core.constants.TILE_PIXELS

# Varied layouts: a locked door and key, lava, six coloured doors between rooms, boxes and balls
# blocking doors, a corridor of rooms, many doors, moving balls, every kind of object, a lava gap.
ENV_IDS: tuple[str, ...] = (
    "MiniGrid-DoorKey-8x8-v0",
    "MiniGrid-LavaCrossingS9N2-v0",
    "MiniGrid-MultiRoom-N6-v0",
    "MiniGrid-ObstructedMaze-Full-v1",
    "MiniGrid-KeyCorridorS4R3-v0",
    "MiniGrid-LockedRoom-v0",
    "MiniGrid-Dynamic-Obstacles-8x8-v0",
    "MiniGrid-Playground-v0",
    "MiniGrid-BlockedUnlockPickup-v0",
    "MiniGrid-LavaGapS7-v0",
)

# MiniGrid's colours in its own index order (minigrid.core.constants.COLOR_TO_IDX).
COLOURS: tuple[str, ...] = ("red", "green", "blue", "purple", "yellow", "grey")
DOOR_STATES: tuple[str, ...] = ("open", "closed", "locked")
_NAMES = ["floor", "wall", "goal", "lava", "agent"]
_NAMES += [f"door_{c}_{s}" for c in COLOURS for s in DOOR_STATES]
_NAMES += [f"{kind}_{c}" for kind in ("key", "ball", "box") for c in COLOURS]
MINIGRID_CLASSES: dict[int, str] = dict(enumerate(_NAMES))
"""``{id: name}``: 0 floor (empty cell), 1 wall, 2 goal, 3 lava, 4 agent, 5..22 doors per colour and
state, 23..28 keys, 29..34 balls, 35..40 boxes (colours in MiniGrid's order)."""
CLASS_IDS: dict[str, int] = {name: i for i, name in MINIGRID_CLASSES.items()}

# Objects whose only (default) colour needs no suffix.
_PLAIN = {"wall_grey": "wall", "goal_green": "goal", "lava_red": "lava"}

# Actions (minigrid.core.actions.Actions).
LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE = range(6)


def cell_class(obj) -> str:
    """Class name of a grid cell's content (``None``: the empty cell, ``floor``)."""
    if obj is None:
        return "floor"
    if obj.type == "door":
        state = "open" if obj.is_open else "locked" if obj.is_locked else "closed"
        return f"door_{obj.color}_{state}"
    name = f"{obj.type}_{obj.color}"
    return _PLAIN.get(name, name)


def is_sprite(obj) -> bool:
    """Whether ``obj`` is drawn on the empty cell (labelled per pixel) rather than filling it."""
    return obj is not None and (
        obj.type in ("key", "ball", "box") or (obj.type == "door" and obj.is_open)
    )


def _check_scheme() -> None:
    """Fail loudly if the installed minigrid names or orders its colours differently."""
    from minigrid.core.constants import COLOR_TO_IDX

    if tuple(COLOR_TO_IDX) != COLOURS:
        raise RuntimeError(
            f"minigrid's colours {list(COLOR_TO_IDX)} differ from the expected {list(COLOURS)}; "
            "update wnet_seg.capture.minigrid.COLOURS"
        )


class CellLabeller:
    """Label maps of MiniGrid cells at ``tile`` pixels, from the game's own tile renderer (cached)."""

    def __init__(self, tile: int = NATIVE_TILE):
        if tile < 1:
            raise ValueError(f"tile must be >= 1 pixel, got {tile}")
        _check_scheme()
        self.tile = int(tile)
        self._cache: dict[tuple, np.ndarray] = {}

    def _render(self, obj, agent_dir: int | None = None) -> np.ndarray:
        """The cell as the frame shows it: the renderer's float tile, truncated to uint8 as
        ``Grid.render`` does when it pastes the tile into the frame."""
        from minigrid.core.grid import Grid

        tile = Grid.render_tile(obj, agent_dir=agent_dir, highlight=False, tile_size=self.tile)
        return tile.astype(np.uint8)

    def cell(self, obj, agent_dir: int | None = None) -> np.ndarray:
        """``(tile, tile)`` uint8 labels of a cell holding ``obj`` (and the agent if ``agent_dir``)."""
        key = (obj.encode() if obj is not None else None, agent_dir)
        if key not in self._cache:
            self._cache[key] = self._labels(obj, agent_dir)
        return self._cache[key]

    def _labels(self, obj, agent_dir: int | None) -> np.ndarray:
        t = self.tile
        cid = CLASS_IDS.get(cell_class(obj), IGNORE_ID)
        own = self._render(obj)
        if is_sprite(obj):
            drawn = (own != self._render(None)).any(axis=-1)
            labels = np.where(drawn, cid, CLASS_IDS["floor"]).astype(np.uint8)
        else:
            labels = np.full((t, t), cid, np.uint8)
        if agent_dir is not None:
            agent = (self._render(obj, agent_dir) != own).any(axis=-1)
            labels[agent] = CLASS_IDS["agent"]
        return labels

    def mask(self, env) -> np.ndarray:
        """``(height * tile, width * tile)`` labels of the whole grid of ``env`` (a MiniGridEnv)."""
        t, grid = self.tile, env.grid
        out = np.empty((grid.height * t, grid.width * t), np.uint8)
        ax, ay = (int(v) for v in env.agent_pos)
        for j in range(grid.height):
            for i in range(grid.width):
                here = env.agent_dir if (i, j) == (ax, ay) else None
                out[j * t : (j + 1) * t, i * t : (i + 1) * t] = self.cell(grid.get(i, j), here)
        return out


def _action(env, rng: np.random.Generator) -> int:
    """A random action, biased to use what the agent faces: toggle doors and boxes, pick up keys
    and balls, drop what it carries now and then; otherwise turn or step forward."""
    front = env.grid.get(*env.front_pos)
    r = rng.random()
    if front is not None and front.type == "door" and r < (0.1 if front.is_open else 0.6):
        return TOGGLE
    if front is not None and front.type == "box" and r < 0.3:
        return TOGGLE
    if front is not None and front.can_pickup() and env.carrying is None and r < 0.5:
        return PICKUP
    if front is None and env.carrying is not None and r < 0.15:
        return DROP
    return int(rng.choice((LEFT, RIGHT, FORWARD), p=(0.25, 0.25, 0.5)))


def make_env(env_id: str):
    """The bare MiniGrid environment (no gymnasium wrappers), not yet reset."""
    import gymnasium as gym
    import minigrid  # noqa: F401  (registers the MiniGrid-* ids)

    return gym.make(env_id).unwrapped


@dataclass
class MiniGridFrameInfo:
    """Where a frame came from: enough to regenerate it."""

    env_id: str
    episode_seed: int
    frame_in_episode: int
    step: int  # actions played since the episode's reset
    x: int  # crop's left edge in pixels (0: the whole grid)
    y: int


def episode_frames(
    episode_seed: int,
    num: int,
    labeller: CellLabeller | None = None,
    size: int | tuple[int, int] | None = None,
    steps: tuple[int, int] = (8, 30),
) -> Iterator[tuple[np.ndarray, np.ndarray, MiniGridFrameInfo]]:
    """``num`` frames ``(rgb, mask, info)`` of one episode, deterministic in ``episode_seed``.

    ``labeller`` sets the tile size (default: a native 32 px one). Before each frame
    ``steps[0]..steps[1]`` random actions are played; a finished episode (goal reached, lava,
    time out) is reset and goes on. Frames are whole grids; with ``size`` (``N`` or ``(H, W)``)
    they are cut to at most HxW pixels at a random tile-aligned offset.
    """
    labeller = labeller or CellLabeller()
    env_id = ENV_IDS[int(episode_seed) % len(ENV_IDS)]
    env = make_env(env_id)
    env.reset(seed=int(episode_seed))
    rng = np.random.default_rng([int(episode_seed), 0x6D67])
    played = 0
    for k in range(num):
        for _ in range(int(rng.integers(steps[0], steps[1] + 1))):
            _, _, terminated, truncated, _ = env.step(_action(env, rng))
            played += 1
            if terminated or truncated:
                env.reset()
        rgb = env.get_frame(highlight=False, tile_size=labeller.tile, agent_pov=False)
        mask = labeller.mask(env)
        x = y = 0
        if size is not None:
            rgb, mask, x, y = _crop(rgb, mask, as_hw(size), labeller.tile, rng)
        yield rgb, mask, MiniGridFrameInfo(env_id, int(episode_seed), k, played, x, y)
    env.close()


def _crop(rgb, mask, hw: tuple[int, int], tile: int, rng: np.random.Generator):
    """At most ``hw`` pixels of the frame, from a random tile-aligned corner."""
    h, w = min(hw[0], mask.shape[0]), min(hw[1], mask.shape[1])
    y = int(rng.integers(0, (mask.shape[0] - h) // tile + 1)) * tile
    x = int(rng.integers(0, (mask.shape[1] - w) // tile + 1)) * tile
    return rgb[y : y + h, x : x + w], mask[y : y + h, x : x + w], x, y


def render_minigrid_frames(
    num: int,
    seed: int = 0,
    frames_per_episode: int = 4,
    tile: int = NATIVE_TILE,
    size: int | tuple[int, int] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, MiniGridFrameInfo]]:
    """``num`` frames ``(rgb, mask, info)`` from episodes ``seed, seed + 1, ...`` (so the environment
    changes from one episode to the next), ``frames_per_episode`` from each."""
    if num < 0 or frames_per_episode < 1:
        raise ValueError(
            f"need num >= 0 and frames_per_episode >= 1, got {num}, {frames_per_episode}"
        )
    labeller = CellLabeller(tile)
    done, episode = 0, int(seed)
    while done < num:
        n = min(frames_per_episode, num - done)
        yield from episode_frames(episode, n, labeller, size)
        done += n
        episode += 1


def write_minigrid_dataset(
    out: str | os.PathLike,
    num: int,
    seed: int = 0,
    frames_per_episode: int = 4,
    tile: int = NATIVE_TILE,
    size: int | tuple[int, int] | None = None,
    progress: bool = True,
) -> int:
    """Write ``num`` frames to ``out/images``, ``out/masks``, ``out/classes.txt``,
    ``out/provenance.json`` and ``out/frames.csv`` (environment, episode seed, step of each frame)."""
    from wnet_seg.capture import provenance, write_dataset

    out = Path(out)
    infos: list[MiniGridFrameInfo] = []

    def frames():
        for rgb, mask, info in render_minigrid_frames(num, seed, frames_per_episode, tile, size):
            infos.append(info)
            yield rgb, mask

    record = provenance(
        "minigrid",
        seed,
        packages=("minigrid", "gymnasium"),
        num=num,
        tile=tile,
        size=None if size is None else list(as_hw(size)),
        frames_per_episode=frames_per_episode,
        envs=list(ENV_IDS),
    )
    n = write_dataset(
        frames(),
        out,
        MINIGRID_CLASSES,
        total=num,
        progress=progress,
        desc="minigrid",
        provenance=record,
    )
    write_frame_index(
        out,
        ["env_id", "episode_seed", "frame_in_episode", "step", "x", "y"],
        ((i.env_id, i.episode_seed, i.frame_in_episode, i.step, i.x, i.y) for i in infos),
    )
    return n


def capture(
    out: str | os.PathLike,
    num: int,
    seed: int = 0,
    size: int | tuple[int, int] | None = None,
    progress: bool = True,
) -> int:
    """The generic capture entry point (:mod:`wnet_seg.capture.games`): whole grids at 32 px per
    cell (192x352, 224x224 ... 800x800 pixels by environment); ``size`` cuts them to at most that."""
    return write_minigrid_dataset(out, num, seed=seed, size=size, progress=progress)
