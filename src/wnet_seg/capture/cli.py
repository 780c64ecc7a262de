"""``wnet-seg-capture``: write dataset folders of real game frames.

Subcommands: ``list`` (every game, labels yes/no, art licence, what to install), one per game
(``crafter``, ``craftax``, ``craftax-classic``, ``minigrid``, ``tetris``: frames + exact masks;
``mario``, ``atari``: frames only), ``benchmark`` (train/val/test splits of every labelled game,
disjoint seeds), ``crafter-benchmark`` (the standard Crafter splits by world seed),
``crafter-demo`` (the committed demo frame), ``crafter-figures`` (the figures in ``docs/``) and
``label-stats`` (class shares of a folder). The NES and Atari games run in a separate virtual
environment (``docs/data.md``); their frames are never committed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from wnet_seg.capture.crafter import CRAFTER_BENCHMARK
from wnet_seg.capture.games import GAMES, SPLIT_SEEDS, labelled_games, listing

# Games served by the generic subcommand (crafter, mario and atari have their own options).
GENERIC_GAMES = tuple(g for g in GAMES if g not in ("crafter", "mario", "atari"))


def _size(text: str) -> int | tuple[int, int]:
    """``256`` or ``HxW`` (e.g. ``144x256``)."""
    try:
        if "x" in text.lower():
            h, w = text.lower().split("x")
            return int(h), int(w)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or HxW, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wnet-seg-capture",
        description="Write dataset folders of real game frames (Crafter, Craftax, MiniGrid, NES Tetris"
        " with exact labels; Super Mario Bros., Atari frames only). `list` shows every game.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every game: labels yes/no, art licence, what to install")

    for name in GENERIC_GAMES:
        g = sub.add_parser(name, help=f"{name} frames with exact masks ({GAMES[name].label_kind})")
        g.add_argument("--out", required=True, help="output folder (images/, masks/, classes.txt)")
        g.add_argument("--num", type=int, default=64, help="number of frames (default 64)")
        g.add_argument("--seed", type=int, default=0, help="seed (same seed, same bytes)")
        g.add_argument(
            "--size", type=_size, default=None, help="frame size N or HxW (game default)"
        )
        g.add_argument("--no-progress", action="store_true", help="no progress bar")

    bench = sub.add_parser("benchmark", help="train/val/test splits of every labelled game")
    bench.add_argument("--out", default="data/bench", help="output folder (default data/bench)")
    bench.add_argument(
        "--games",
        default=",".join(labelled_games()),
        help=f"comma-separated (default: {','.join(labelled_games())})",
    )
    bench.add_argument(
        "--num", default=None, help="frames per split train,val,test (default: per game)"
    )
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")

    c = sub.add_parser("crafter", help="Crafter frames with exact per-pixel masks")
    c.add_argument("--out", required=True, help="output folder (images/, masks/, classes.txt)")
    c.add_argument("--num", type=int, default=200, help="number of frames (default 200)")
    c.add_argument("--size", type=_size, default=256, help="frame size N or HxW px (default 256)")
    c.add_argument(
        "--seed", type=int, default=0, help="first world seed (worlds seed, seed+1, ...)"
    )
    c.add_argument("--frames-per-world", type=int, default=10, help="crops per world (default 10)")
    c.add_argument("--tile", type=int, default=16, help="pixels per tile (native 16)")
    c.add_argument("--align", choices=["tile", "pixel"], default="tile", help="crop grid alignment")
    c.add_argument(
        "--shadow",
        choices=["material", "object", "ignore"],
        default="material",
        help="label of the sprites' translucent drop-shadow pixels (default: material below)",
    )
    c.add_argument("--no-progress", action="store_true", help="no progress bar")

    b = sub.add_parser("crafter-benchmark", help="standard Crafter train/val/test splits")
    b.add_argument(
        "--out", default="data/bench/crafter", help="output folder (default data/bench/crafter)"
    )
    b.add_argument("--size", type=_size, default=256, help="frame size N or HxW px (default 256)")
    for split in ("train", "val", "test"):
        spec = CRAFTER_BENCHMARK[split]
        b.add_argument(
            f"--num-{split}",
            type=int,
            default=spec.num_frames,
            help=f"{split} frames (default {spec.num_frames}, {spec.frames_per_world} per world, "
            f"worlds from {spec.first_world})",
        )
    b.add_argument("--no-progress", action="store_true", help="no progress bar")

    d = sub.add_parser("crafter-demo", help="the small demo frame committed under data/demo")
    d.add_argument("--out", default="data/demo", help="output folder (default data/demo)")
    d.add_argument("--seed", type=int, default=0, help="first world seed searched (default 0)")
    m = sub.add_parser(
        "mario", help="Super Mario Bros. frames (240x256), in a separate emulator venv"
    )
    m.add_argument("--out", required=True, help="output folder (images/, frames.csv)")
    m.add_argument("--num", type=int, default=64, help="number of frames (default 64)")
    m.add_argument("--seed", type=int, default=0, help="seed of the random jumps (default 0)")
    m.add_argument(
        "--levels", default=None, help="comma-separated stages, e.g. 1-1,2-2 (default: 8 varied)"
    )
    m.add_argument("--gap", type=int, default=40, help="emulator frames between kept frames")
    m.add_argument(
        "--venv", default=None, help="emulator venv (default ~/.cache/wnet-seg/games-venv)"
    )
    m.add_argument("--no-progress", action="store_true", help="no progress bar")

    a = sub.add_parser("atari", help="Atari 2600 frames (210x160), in a separate emulator venv")
    a.add_argument("--out", required=True, help="output folder (images/, frames.csv)")
    a.add_argument("--game", default="Pong", help="ALE game, e.g. Pong, Breakout, MsPacman")
    a.add_argument("--num", type=int, default=64, help="number of frames (default 64)")
    a.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    a.add_argument("--gap", type=int, default=30, help="emulator frames between kept frames")
    a.add_argument(
        "--venv", default=None, help="emulator venv (default ~/.cache/wnet-seg/games-venv)"
    )
    a.add_argument("--no-progress", action="store_true", help="no progress bar")

    st = sub.add_parser("label-stats", help="pixel share and frame count of each class in a folder")
    st.add_argument("folder", help="dataset folder with masks/ and classes.txt")

    f = sub.add_parser("crafter-figures", help="docs/crafter_alignment.png and docs/data_grid.png")
    f.add_argument("--out", default="docs", help="output folder (default docs)")
    return p


def _label_stats(folder: str) -> None:
    """Print, per class, its share of all labelled pixels and the number of frames showing it."""
    from pathlib import Path

    import numpy as np

    from wnet_seg.data.io import list_images, load_mask, read_classes

    root = Path(folder)
    classes = read_classes(root / "classes.txt")
    masks = list_images(root / "masks")
    if not masks:
        raise SystemExit(f"{root / 'masks'}: no masks found")
    pixels = np.zeros(256, np.int64)
    frames = np.zeros(256, np.int64)
    for path in masks:
        counts = np.bincount(load_mask(path).ravel(), minlength=256)
        pixels += counts
        frames += counts > 0
    total = pixels.sum()
    print(f"{len(masks)} masks, {total} pixels ({pixels[255]} ignored)")
    print(f"{'id':>3} {'class':<10} {'pixels %':>9} {'frames':>7}")
    for cid in range(256):
        if pixels[cid] or cid in classes:
            name = classes.get(cid, "ignore" if cid == 255 else "?")
            print(f"{cid:>3} {name:<10} {100 * pixels[cid] / total:>9.3f} {frames[cid]:>7}")


def _benchmark(args: argparse.Namespace) -> None:
    """Write ``out/<game>/{train,val,test}`` for each game; seeds from :data:`SPLIT_SEEDS`.

    Crafter keeps its standard splits (:data:`CRAFTER_BENCHMARK`, worlds by seed range)."""
    from pathlib import Path

    from wnet_seg.capture.crafter import write_crafter_benchmark

    games = [g.strip() for g in args.games.split(",") if g.strip()]
    unknown = [g for g in games if g not in GAMES or not GAMES[g].labels]
    if unknown:
        raise SystemExit(f"not labelled games: {unknown}; choose from {labelled_games()}")
    counts = None
    if args.num:
        try:
            counts = tuple(int(v) for v in args.num.split(","))
            assert len(counts) == 3
        except (ValueError, AssertionError):
            raise SystemExit(
                f"--num must be three integers train,val,test, got {args.num!r}"
            ) from None
    for name in games:
        sizes = counts or GAMES[name].splits
        if name == "crafter":
            from dataclasses import replace

            specs = {
                split: replace(spec, num_frames=n)
                for (split, spec), n in zip(CRAFTER_BENCHMARK.items(), sizes, strict=True)
            }
            write_crafter_benchmark(
                Path(args.out) / name, splits=specs, progress=not args.no_progress
            )
        else:
            capture = GAMES[name].capture_fn()
            for split, n in zip(SPLIT_SEEDS, sizes, strict=True):
                capture(
                    Path(args.out) / name / split,
                    n,
                    SPLIT_SEEDS[split],
                    size=GAMES[name].size,
                    progress=not args.no_progress,
                )
        print(f"{name}: train/val/test {sizes} -> {args.out}/{name}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    if args.command == "list":
        print(listing())
    elif args.command in GENERIC_GAMES:
        capture = GAMES[args.command].capture_fn()
        n = capture(args.out, args.num, args.seed, size=args.size, progress=not args.no_progress)
        print(f"wrote {n} frames to {args.out} in {time.perf_counter() - t0:.1f} s")
    elif args.command == "benchmark":
        _benchmark(args)
        print(f"done in {time.perf_counter() - t0:.1f} s")
    elif args.command == "crafter":
        from wnet_seg.capture.crafter import write_crafter_dataset

        n = write_crafter_dataset(
            args.out,
            args.num,
            size=args.size,
            seed=args.seed,
            frames_per_world=args.frames_per_world,
            tile=args.tile,
            align=args.align,
            shadow=args.shadow,
            progress=not args.no_progress,
        )
        print(f"wrote {n} frames to {args.out} in {time.perf_counter() - t0:.1f} s")
    elif args.command == "crafter-benchmark":
        from dataclasses import replace

        from wnet_seg.capture.crafter import write_crafter_benchmark

        splits = {
            name: replace(spec, num_frames=getattr(args, f"num_{name}"))
            for name, spec in CRAFTER_BENCHMARK.items()
        }
        counts = write_crafter_benchmark(
            args.out, size=args.size, splits=splits, progress=not args.no_progress
        )
        for name, n in counts.items():
            worlds = splits[name].worlds()
            print(f"{name}: {n} frames from worlds {worlds[0]}..{worlds[-1]} -> {args.out}/{name}")
        print(f"done in {time.perf_counter() - t0:.1f} s")
    elif args.command == "crafter-demo":
        from wnet_seg.capture.crafter import write_demo

        info = write_demo(args.out, seed=args.seed)
        print(
            f"wrote {args.out}/crafter.png, crafter_mask.png, classes.txt "
            f"(world {info.world_seed}, x={info.x}, y={info.y})"
        )
    elif args.command == "mario":
        from wnet_seg.capture.mario import capture_mario

        levels = args.levels.split(",") if args.levels else None
        n = capture_mario(
            args.out, args.num, args.seed, levels, args.gap, args.venv, not args.no_progress
        )
        print(f"wrote {n} frames to {args.out} in {time.perf_counter() - t0:.1f} s")
    elif args.command == "atari":
        from wnet_seg.capture.atari import capture_atari

        n = capture_atari(
            args.out,
            args.game,
            args.num,
            args.seed,
            gap=args.gap,
            venv=args.venv,
            progress=not args.no_progress,
        )
        print(f"wrote {n} frames to {args.out} in {time.perf_counter() - t0:.1f} s")
    elif args.command == "label-stats":
        _label_stats(args.folder)
    elif args.command == "crafter-figures":
        from wnet_seg.capture.figures import write_figures

        for path in write_figures(args.out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
