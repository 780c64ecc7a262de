"""``wnet-seg-benchmark``: every labelled game's test split x every condition x every method.

    wnet-seg-capture benchmark --out data/bench          # the splits (once)
    wnet-seg-benchmark                                    # the shipped checkpoint + held-out ones
    wnet-seg-benchmark games=[minigrid] conditions=[clean,jpeg:85] limit=16

For every game under ``data_dir`` (``<game>/<split>/{images,masks}``) and every condition of
:mod:`wnet_seg.data.degrade`, the frames are degraded (masks nearest-neighbour) and scored like
``wnet-seg-evaluate`` does (:func:`wnet_seg.evaluate.score_frame`): each checkpoint's W-Net (per
pixel, + CRF if asked, the default tile-pooled output), the classical baselines (+ tiles) and the
no-learning identity baselines, all in one table. ``checkpoints`` maps a label to a path; a
``{game}`` in a path is that game, ``{family}`` its art family (``families``: games sharing
their textures are held out together), e.g. ``checkpoints/heldout/{family}.ckpt``, the
checkpoint trained without that family (the held-out-game protocol); a missing file leaves the
label out for that game. Writes ``benchmark.json``, ``benchmark.md`` and
``report.html`` to ``output`` and prints the tables.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from wnet_seg.data.degrade import CONDITIONS, parse_degradation
from wnet_seg.evaluate import (
    COLUMNS,
    IDENTITY,
    Scorer,
    check_methods,
    class_names,
    dataset_tile,
    labelled_pairs,
)
from wnet_seg.hostinfo import machine_description
from wnet_seg.inference import Segmenter, SegmentOptions, options_from
from wnet_seg.logs import quiet_lightning
from wnet_seg.report import ReportSection, write_report

log = logging.getLogger("wnet_seg.benchmark")


@dataclass
class BenchmarkConf:
    data_dir: str = "data/bench"
    split: str = "test"
    games: list[str] = field(
        default_factory=lambda: ["crafter", "craftax", "craftax-classic", "minigrid", "tetris"]
    )
    conditions: list[str] = field(default_factory=lambda: list(CONDITIONS))
    checkpoints: dict[str, str | None] = field(
        default_factory=lambda: {"shipped": None, "heldout": "checkpoints/heldout/{family}.ckpt"}
    )
    # Games that share their art are held out together: {family} names the group.
    families: dict[str, str] = field(
        default_factory=lambda: {"craftax": "crafter", "craftax-classic": "crafter"}
    )
    baselines: list[str] = field(
        default_factory=lambda: ["kmeans_rgb", "kmeans_rgb_localmean", "felzenszwalb", "slic"]
    )
    identity: list[str] = field(default_factory=lambda: list(IDENTITY))
    vote: bool = True
    crf: bool = False
    crf_params: dict[str, Any] = field(default_factory=dict)
    tiles: str = "auto"
    tiles_params: dict[str, Any] = field(default_factory=dict)
    baseline_tiles: bool = True
    native_scale: str = "auto"
    limit: int | None = None
    output: str = "docs/benchmark"
    report: bool = True
    report_frames: int = 3
    device: str = "cpu"
    progress: bool = True


ConfigStore.instance().store(name="benchmark_schema", node=BenchmarkConf)


def available_games(conf: BenchmarkConf) -> list[str]:
    """The configured games whose split folder exists (others are reported and skipped)."""
    found = []
    for game in conf.games:
        if (Path(conf.data_dir) / game / conf.split / "masks").is_dir():
            found.append(game)
        else:
            log.warning("no %s/%s/%s/masks: skipping %s", conf.data_dir, game, conf.split, game)
    if not found:
        raise FileNotFoundError(
            f"no game of {conf.games} has a {conf.split} split under {conf.data_dir} "
            "(wnet-seg-capture benchmark --out DIR writes them)"
        )
    return found


def _segmenters(conf: BenchmarkConf, game: str, options: SegmentOptions) -> dict[str, Segmenter]:
    """Fresh segmenters (ids per game and condition) for the checkpoints that exist for ``game``."""
    out = {}
    for label, path in conf.checkpoints.items():
        family = conf.families.get(game, game)
        resolved = None if path is None else Path(str(path).format(game=game, family=family))
        if resolved is not None and not resolved.is_file():
            continue
        out[f"{label}/"] = Segmenter.from_checkpoint(resolved, device=conf.device, options=options)
    return out


def run_benchmark(conf: BenchmarkConf) -> dict[str, Any]:
    """Score every game x condition; returns ``{"runs": [...], "games": [...], ...}``."""
    conditions = [parse_degradation(c) for c in conf.conditions]
    options = options_from(conf)
    check_methods(list(conf.baselines), list(conf.identity))
    runs = []
    for game in available_games(conf):
        root = Path(conf.data_dir) / game / conf.split
        pairs = labelled_pairs(str(root), None, conf.limit)
        names = class_names(pairs[0][1])
        for condition in conditions:
            segmenters = _segmenters(conf, game, options)
            scorer = Scorer(
                options,
                segmenters=segmenters,
                baselines=list(conf.baselines),
                baseline_tiles=conf.baseline_tiles,
                identity=list(conf.identity),
                oracle_tile=dataset_tile(root),
                scale=condition.scale,
            )
            t0 = time.perf_counter()
            frames, skipped = scorer.score_pairs(
                pairs,
                condition,
                vote=conf.vote,
                report_frames=conf.report_frames,
                progress=conf.progress,
                desc=f"{game} {condition}",
            )
            scores = scorer.scores
            runs.append(
                {
                    "game": game,
                    "condition": str(condition),
                    "images": scores.frames,
                    "seconds": time.perf_counter() - t0,
                    "results": scores.results(),
                    "skipped": skipped,
                    "checkpoints": {k: str(s.source) for k, s in segmenters.items()},
                    "grid": None if scorer.prior is None else scorer.prior.record(),
                    "frames": frames,
                    "class_names": names,
                }
            )
            log.info(
                "%s %s: %d frames in %.0f s", game, condition, scores.frames, runs[-1]["seconds"]
            )
    return {
        "runs": runs,
        "machine": machine_description(),
        "split": conf.split,
        "data_dir": conf.data_dir,
    }


def _cell(r: dict[str, float] | None) -> str:
    if r is None:
        return "-"
    f = [("n/a" if math.isnan(r[k]) else f"{r[k]:.3f}") for k in ("miou", "miou_dataset")]
    return f"{f[0]} / {f[1]}"


def markdown_tables(bench: dict[str, Any]) -> str:
    """One table per game: methods x conditions, each cell per-image / dataset mIoU."""
    out = []
    games = list(dict.fromkeys(r["game"] for r in bench["runs"]))
    for game in games:
        runs = [r for r in bench["runs"] if r["game"] == game]
        methods = list(dict.fromkeys(m for r in runs for m in r["results"]))
        head = "| method | " + " | ".join(r["condition"] for r in runs) + " |"
        lines = [f"### {game} ({runs[0]['images']} {bench['split']} frames)", "", head]
        lines.append("|" + "---|" * (len(runs) + 1))
        for m in methods:
            lines.append(f"| {m} | " + " | ".join(_cell(r["results"].get(m)) for r in runs) + " |")
        out.append("\n".join(lines))
    out.append(f"mIoU per image / dataset-level. Machine: {bench['machine']}.")
    return "\n\n".join(out)


CLASSICAL = ("kmeans_rgb", "kmeans_rgb_localmean", "felzenszwalb", "slic")


def _best_classical(results: dict[str, dict]) -> tuple[str, dict] | None:
    """The classical baseline (pooled or not) with the best per-image mIoU in one run."""
    found = [(m, r) for m, r in results.items() if m.split("+")[0] in CLASSICAL]
    return max(found, key=lambda mr: mr[1]["miou"]) if found else None


def summary_table(bench: dict[str, Any]) -> str:
    """The headline: per game and condition, the W-Net's default output (each checkpoint), the
    tile lookups and the best classical segmenter; per-image / dataset mIoU."""
    conditions = list(dict.fromkeys(r["condition"] for r in bench["runs"]))
    head = "| game | method | " + " | ".join(conditions) + " |"
    lines = [head, "|" + "---|" * (len(conditions) + 2)]
    for game in dict.fromkeys(r["game"] for r in bench["runs"]):
        runs = {r["condition"]: r for r in bench["runs"] if r["game"] == game}
        methods = [m for m in runs[conditions[0]]["results"] if m.endswith("/wnet+tiles")]
        methods += [m for m in ("tile_identity", "tile_identity_oracle", "tile_identity_robust")]
        for m in methods:
            cells = [_cell(runs[c]["results"].get(m)) for c in conditions]
            if set(cells) == {"-"}:
                continue
            name = f"W-Net default ({m.split('/')[0]})" if "/" in m else m
            lines.append(f"| {game} | {name} | " + " | ".join(cells) + " |")
        best = [_best_classical(runs[c]["results"]) for c in conditions]
        cells = ["-" if b is None else f"{_cell(b[1])} ({b[0]})" for b in best]
        lines.append(f"| {game} | best classical | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge_benchmarks(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One benchmark from several runs of it (e.g. games split over two processes); every part
    must score the same split. The machine line lists each part's."""
    if not parts:
        raise ValueError("nothing to merge")
    splits = {p["split"] for p in parts}
    if len(splits) != 1:
        raise ValueError(f"parts score different splits: {sorted(splits)}")
    machines = list(dict.fromkeys(p["machine"] for p in parts))
    return {
        **parts[0],
        "runs": [r for p in parts for r in p["runs"]],
        "machine": "; ".join(machines),
    }


def change_table(before: dict[str, Any], after: dict[str, Any], method: str) -> str:
    """Per game and condition: ``method``'s per-image mIoU before -> after, and the change."""
    old = {(r["game"], r["condition"]): r["results"].get(method) for r in before["runs"]}
    runs = [r for r in after["runs"] if (r["game"], r["condition"]) in old]
    conditions = list(dict.fromkeys(r["condition"] for r in runs))
    lines = ["| game | " + " | ".join(conditions) + " |", "|" + "---|" * (len(conditions) + 1)]
    for game in dict.fromkeys(r["game"] for r in runs):
        cells = []
        for c in conditions:
            new = next((r["results"].get(method) for r in runs if r["game"] == game and
                        r["condition"] == c), None)  # fmt: skip
            was = old.get((game, c))
            if new is None or was is None:
                cells.append("-")
            else:
                cells.append(
                    f"{was['miou']:.3f} -> {new['miou']:.3f} ({new['miou'] - was['miou']:+.3f})"
                )
        lines.append(f"| {game} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_benchmark(bench: dict[str, Any], out: Path, report: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    plain = {
        **bench,
        "runs": [{k: v for k, v in r.items() if k != "frames"} for r in bench["runs"]],
    }
    (out / "benchmark.json").write_text(json.dumps(plain, indent=2, default=str) + "\n")
    summary = "## Summary\n\n" + summary_table(bench) + "\n\n## Every method\n\n"
    (out / "benchmark.md").write_text(summary + markdown_tables(bench) + "\n")
    written = [out / "benchmark.json", out / "benchmark.md"]
    if report:
        sections = [
            ReportSection(
                title=f"{r['game']} — {r['condition']}",
                columns=[*COLUMNS, ("seconds_per_image", "s/image")],
                rows=[{"method": m, **v} for m, v in r["results"].items()],
                frames=r["frames"],
                class_names=r["class_names"],
                notes=f"{r['images']} frames, {r['seconds']:.0f} s",
            )
            for r in bench["runs"]
        ]
        written.append(write_report(out, "wnet-seg benchmark", sections, machine=bench["machine"]))
    return written


@hydra.main(version_base="1.3", config_path="conf", config_name="benchmark")
def _hydra_main(cfg: DictConfig) -> None:
    quiet_lightning()
    conf: BenchmarkConf = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    try:
        bench = run_benchmark(conf)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        log.error("%s", err)
        sys.exit(2)
    written = write_benchmark(bench, Path(conf.output), conf.report)
    print(markdown_tables(bench))
    print("written: " + ", ".join(str(p) for p in written))


def main() -> None:
    from wnet_seg.overrides import check_overrides

    check_overrides(sys.argv[1:], BenchmarkConf, ())
    _hydra_main()


if __name__ == "__main__":
    main()
