"""The data figures in ``docs/``: Crafter label alignment and a grid of captured frames.

``wnet-seg-capture crafter-figures --out docs`` writes ``crafter_alignment.png`` and
``data_grid.png``; both are deterministic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from wnet_seg.palette import colorize


def _label(img: np.ndarray, text: str, height: int = 14) -> np.ndarray:
    """``img`` with a white caption strip above it."""
    strip = Image.new("RGB", (img.shape[1], height), (255, 255, 255))
    ImageDraw.Draw(strip).text((2, 1), text, fill=(0, 0, 0))
    return np.concatenate([np.asarray(strip), img], axis=0)


def _hstack(images: list[np.ndarray], gap: int = 6) -> np.ndarray:
    h = max(i.shape[0] for i in images)
    parts = []
    for k, im in enumerate(images):
        if im.shape[0] < h:
            pad = np.full((h - im.shape[0], im.shape[1], 3), 255, np.uint8)
            im = np.concatenate([im, pad], axis=0)
        parts.append(im)
        if k < len(images) - 1:
            parts.append(np.full((h, gap, 3), 255, np.uint8))
    return np.concatenate(parts, axis=1)


def _vstack(images: list[np.ndarray], gap: int = 6) -> np.ndarray:
    w = max(i.shape[1] for i in images)
    parts = []
    for k, im in enumerate(images):
        if im.shape[1] < w:
            pad = np.full((im.shape[0], w - im.shape[1], 3), 255, np.uint8)
            im = np.concatenate([im, pad], axis=1)
        parts.append(im)
        if k < len(images) - 1:
            parts.append(np.full((gap, w, 3), 255, np.uint8))
    return np.concatenate(parts, axis=0)


def _up(img: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1)


def legend(classes: dict[int, str], ids: list[int], width: int, cols: int = 6) -> np.ndarray:
    """A white strip with one colour swatch and name per class id."""
    rows = -(-len(ids) // cols)
    im = Image.new("RGB", (width, 16 * rows + 4), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    pal = colorize(np.array([ids], dtype=np.uint8))[0]
    cw = width // cols
    for k, (cid, col) in enumerate(zip(ids, pal, strict=True)):
        x, y = (k % cols) * cw + 2, (k // cols) * 16 + 2
        draw.rectangle([x, y, x + 11, y + 11], fill=tuple(int(v) for v in col), outline=(0, 0, 0))
        draw.text((x + 15, y), f"{cid} {classes[cid]}", fill=(0, 0, 0))
    return np.asarray(im)


def crafter_alignment_figure(seed: int = 1, scale: int = 2) -> np.ndarray:
    """Top: crafter's own view around the player (full daylight, inventory strip dropped), our crop
    of the same world rectangle, their absolute difference (black = identical), our labels. Bottom: a
    256x256 frame, its colourised labels and an overlay (50 % blend with tile grid)."""
    import crafter

    from wnet_seg.capture.crafter import (
        AREA,
        CRAFTER_CLASSES,
        NATIVE_TILE,
        CropRenderer,
        _add_extras,
        _fast_worldgen,
        _make_deterministic,
        find_demo_frame,
    )

    t = NATIVE_TILE
    env = crafter.Env(area=(AREA, AREA), view=(9, 9), size=(9 * t, 9 * t), seed=seed, reward=False)
    with _fast_worldgen():
        env.reset()
    _make_deterministic(env._world)
    _add_extras(env, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    world, player = env._world, env._player
    # Put the player next to a cow so the view shows creatures.
    cows = [o for o in world.objects if type(o).__name__ == "Cow"]
    for k in rng.permutation(len(cows)):
        cx, cy = (int(v) for v in cows[k].pos)
        material, obj = world[(cx + 1, cy)]
        inside = 5 <= cx < AREA - 5 and 4 <= cy < AREA - 4
        if inside and obj is None and material in ("grass", "sand", "path"):
            world.move(player, (cx + 1, cy))
            break
    world.daylight = 1.0
    game = env.render()[: 7 * t]
    px, py = (int(v) for v in player.pos)
    rgb, mask = CropRenderer(world, env._textures).render((px - 4) * t, (py - 3) * t, 9 * t, 7 * t)
    diff = np.abs(game.astype(int) - rgb.astype(int)).astype(np.uint8)
    ndiff = int((diff > 0).any(-1).sum())
    top = _hstack(
        [
            _label(_up(game, scale), "crafter's own view (LocalView)"),
            _label(_up(rgb, scale), "our world crop, same tiles"),
            _label(_up(diff * 255, scale), f"|difference|: {ndiff} pixels differ"),
            _label(_up(colorize(mask), scale), "our labels"),
        ]
    )

    frame, labels, info = find_demo_frame()
    color = colorize(labels)
    overlay = (0.5 * frame + 0.5 * color).astype(np.uint8)
    overlay[::t] = 0
    overlay[:, ::t] = 0
    bottom = _hstack(
        [
            _label(_up(frame, scale), f"frame (world {info.world_seed}, x={info.x}, y={info.y})"),
            _label(_up(color, scale), "labels (colourised)"),
            _label(_up(overlay, scale), "overlay + 16 px tile grid"),
        ]
    )
    ids = sorted(set(np.unique(labels).tolist()) | set(np.unique(mask).tolist()))
    return _vstack([top, bottom, legend(CRAFTER_CLASSES, ids, bottom.shape[1])])


def data_grid_figure(num: int = 4, seed: int = 100_000, size: int = 256) -> np.ndarray:
    """``num`` Crafter frames (one per val-split world) above their colourised labels."""
    from wnet_seg.capture.crafter import CRAFTER_CLASSES, render_crafter_frames

    frames = list(render_crafter_frames(num, size, seed=seed, frames_per_world=1))
    top = _hstack([f for f, _ in frames], gap=4)
    bottom = _hstack([colorize(m) for _, m in frames], gap=4)
    grid = _vstack([top, bottom], gap=4)
    ids = sorted(set().union(*(np.unique(m).tolist() for _, m in frames)))
    return _vstack([grid, legend(CRAFTER_CLASSES, ids, grid.shape[1], cols=6)], gap=2)


def write_figures(out: str | os.PathLike = "docs") -> list[Path]:
    """Write ``crafter_alignment.png`` and ``data_grid.png`` under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "crafter_alignment.png", out / "data_grid.png"]
    Image.fromarray(crafter_alignment_figure()).save(paths[0], optimize=True)
    Image.fromarray(data_grid_figure()).save(paths[1], optimize=True)
    return paths
