"""Merge `wnet-seg-benchmark` outputs run in parts into one benchmark.md / benchmark.json.

    python scripts/benchmark_merge.py docs/benchmark/part_a docs/benchmark/part_b \\
        --out docs/benchmark --before docs/benchmark/before_grid --method shipped/wnet+tiles

Each part keeps its own report.html (frames are not stored in benchmark.json); the merged
benchmark.md links them, opens with the summary table and, with ``--before``, the change of
``--method`` per game and condition against an earlier benchmark of the same split.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from wnet_seg.benchmark import change_table, markdown_tables, merge_benchmarks, summary_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("parts", nargs="+", type=Path, help="benchmark output folders")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--before", type=Path, help="an earlier benchmark output folder")
    ap.add_argument("--method", default="shipped/wnet+tiles")
    args = ap.parse_args()
    parts = [json.loads((p / "benchmark.json").read_text()) for p in args.parts]
    bench = merge_benchmarks(parts)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.json").write_text(json.dumps(bench, indent=2, default=str) + "\n")
    reports = [p / "report.html" for p in args.parts if (p / "report.html").exists()]
    text = ["## Summary", "", summary_table(bench), ""]
    if reports:
        links = ", ".join(f"[{r.parent.name}]({os.path.relpath(r, args.out)})" for r in reports)
        text += [f"Frames, truth and every method's output: {links}.", ""]
    if args.before:
        before = json.loads((args.before / "benchmark.json").read_text())
        text += [
            f"## Change of `{args.method}` since `{args.before}` (per-image mIoU)",
            "",
            change_table(before, bench, args.method),
            "",
        ]
    text += ["## Every method", "", markdown_tables(bench), ""]
    (args.out / "benchmark.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
