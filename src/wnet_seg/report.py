"""A self-contained HTML report of segmentations: metric tables, bar charts and every frame's outputs.

    path = write_report("evaluation", "Crafter test", [ReportSection(...)], machine="2-core CPU")
    check_in_browser(path, "docs/report.png")    # what headless Chromium sees after load

``write_report`` writes ``out_dir/report.html`` and one PNG per picture under
``out_dir/report_files/`` (``s<section>-f<frame>-<kind>.png`` at the image's native size), referenced
by relative paths: the folder opens offline, can be moved or zipped whole, and a page of hundreds of
frames stays a small HTML file whose images the browser loads lazily. The browser upscales the
pictures by an integer zoom with ``image-rendering: pixelated``, so pixel art is never blurred.
The page needs no network, no CDN and no framework; a little vanilla JS sorts the metric tables
(click a header), orders frames worst first (a button), and on ``load`` writes what it measured into
``data-*`` attributes of ``<body>``, which ``check_in_browser`` reads back from ``--dump-dom``.
Same inputs give the same bytes.

Label colours: ids ``0..255`` take :func:`wnet_seg.palette.colorize`'s fixed colours; other ids
(e.g. tile-identity ids ``>= 256``) take a colour hashed from the id, the same in every report.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wnet_seg.palette import PALETTE

FILES_DIR = "report_files"
TARGET_WIDTH = 256
"""Frames are zoomed by the largest integer that keeps them at most this wide (at least 1x)."""
CHART_KEYS = (("miou", "mIoU per image", "#1f77b4"), ("miou_dataset", "mIoU dataset", "#ff7f0e"))
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # Lets the page's async measuring finish before the DOM is dumped (virtual time runs fast).
    "--virtual-time-budget=10000",
)


@dataclass
class ReportFrame:
    """One frame: its input, optional ground truth, each method's label map and per-frame mIoU."""

    name: str
    image: np.ndarray
    truth: np.ndarray | None = None
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class ReportSection:
    """One run (dataset x methods): a metrics table, its chart, its frames and its legend.

    ``legend`` is ``labels.json``'s shape (``num_classes`` and ``tile_signatures``);
    ``class_names`` names the ground-truth ids; ``lower_is_better`` names the metric keys whose
    best value is the smallest (for the highlight and the first click on a header).
    """

    title: str
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    frames: list[ReportFrame] = field(default_factory=list)
    notes: str = ""
    legend: dict[str, Any] | None = None
    class_names: dict[int, str] | None = None
    lower_is_better: frozenset[str] = frozenset({"vi", "seconds_per_image"})


def write_report(
    out_dir: str | Path,
    title: str,
    sections: Sequence[ReportSection],
    *,
    subtitle: str = "",
    machine: str = "",
) -> Path:
    """Write ``out_dir/report.html`` and its pictures (``report_files/``, replaced); return the page."""
    out = Path(out_dir)
    files = out / FILES_DIR
    if files.exists():
        shutil.rmtree(files)  # no stale pictures from an earlier, larger report
    files.mkdir(parents=True)
    header = f"<h1>{escape(title)}</h1>"
    if subtitle:
        header += f'\n<p class="subtitle">{escape(subtitle)}</p>'
    if machine:
        header += f'\n<p class="machine">machine: {escape(machine)}</p>'
    body = "\n".join(_section_html(i, s, files) for i, s in enumerate(sections))
    page = _PAGE.format(title=escape(title), css=_CSS, header=header, body=body, js=_JS)
    path = out / "report.html"
    path.write_text(page, encoding="utf-8", newline="\n")
    return path


# ---------------------------------------------------------------------------------------- colours


def label_color(label: int) -> tuple[int, int, int]:
    """The colour of one label id: the fixed palette for ``0..255``, a stable hash otherwise."""
    if 0 <= label <= 255:
        r, g, b = PALETTE[label]
        return int(r), int(g), int(b)
    r, g, b = hashlib.blake2b(str(label).encode(), digest_size=3).digest()
    return r, g, b


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """``(H, W)`` integer label map -> ``(H, W, 3)`` uint8 RGB with :func:`label_color`."""
    labels = np.asarray(labels)
    if labels.size and labels.min() >= 0 and labels.max() <= 255:
        return PALETTE[labels.astype(np.intp)]  # the common case, without np.unique's sort
    ids, inverse = np.unique(labels.ravel(), return_inverse=True)
    colours = np.array([label_color(int(i)) for i in ids], dtype=np.uint8).reshape(-1, 3)
    return colours[inverse].reshape(*labels.shape, 3)


def _hex(label: int) -> str:
    return "#{:02x}{:02x}{:02x}".format(*label_color(label))


# ---------------------------------------------------------------------------------------- sections


def _section_html(index: int, section: ReportSection, files: Path) -> str:
    """A section: heading, notes, metrics table, chart, frames and legend."""
    sid = f"s{index}"
    methods = _method_order(section)
    parts = [f'<section class="report" id="{sid}">', f"<h2>{escape(section.title)}</h2>"]
    if section.notes:
        parts.append(f'<p class="notes">{escape(section.notes)}</p>')
    if section.rows:
        parts.append(_table_html(sid, section))
        parts.append(_chart_html(section))
    if section.frames:
        parts.append(_frames_html(sid, section, methods, files))
    parts.append(_legend_html(section))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _method_order(section: ReportSection) -> list[str]:
    """The table's methods, then any other outputs; W-Net variants first, otherwise as given."""
    names = [str(r["method"]) for r in section.rows]
    for frame in section.frames:
        names += [m for m in frame.outputs if m not in names]
    return sorted(dict.fromkeys(names), key=lambda m: not m.startswith("wnet"))


def _value(row: dict[str, Any], key: str) -> float:
    v = row.get(key)
    return float("nan") if v is None else float(v)


def _table_html(sid: str, section: ReportSection) -> str:
    """The metrics table: numbers right-aligned, the best of each column highlighted."""
    head = [f'<th id="{sid}-h0" data-first="asc">method</th>']
    for c, (key, header) in enumerate(section.columns, start=1):
        first = "asc" if key in section.lower_is_better else "desc"
        head.append(f'<th id="{sid}-h{c}" class="num" data-first="{first}">{escape(header)}</th>')
    best = {key: _best(section, key) for key, _ in section.columns}
    body = []
    for row in section.rows:
        cells = [f"<td>{escape(str(row['method']))}</td>"]
        for key, _ in section.columns:
            v = _value(row, key)
            cls = "num best" if v == best[key] else "num"
            text, data = ("n/a", "") if math.isnan(v) else (f"{v:.3f}", f"{v:.6g}")
            cells.append(f'<td class="{cls}" data-v="{data}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<table class="metrics" title="click a header to sort">\n<thead><tr>'
        + "".join(head)
        + "</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def _best(section: ReportSection, key: str) -> float | None:
    values = [v for v in (_value(r, key) for r in section.rows) if not math.isnan(v)]
    if not values:
        return None
    return min(values) if key in section.lower_is_better else max(values)


def _chart_html(section: ReportSection) -> str:
    """Inline SVG: a horizontal bar per method and mIoU key present in the columns (0..1)."""
    keys = [k for k in CHART_KEYS if k[0] in dict(section.columns)]
    if not keys:
        return ""
    label_w, bar_w, bar_h, gap = 190, 380, 14, 10
    group_h = len(keys) * bar_h + gap
    height = 24 + len(section.rows) * group_h
    out = [f'<svg class="chart" width="{label_w + bar_w + 60}" height="{height}" role="img">']
    for i, (_, name, colour) in enumerate(keys):
        x = label_w + i * 150
        out.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{x + 16}" y="14">{escape(name)}</text>')
    y = 24
    for row in section.rows:
        method = escape(str(row["method"]))
        out.append(f'<text x="{label_w - 6}" y="{y + bar_h}" text-anchor="end">{method}</text>')
        for j, (key, name, colour) in enumerate(keys):
            v = _value(row, key)
            top = y + j * bar_h
            w = 0.0 if math.isnan(v) else min(max(v, 0.0), 1.0) * bar_w
            text = "n/a" if math.isnan(v) else f"{v:.3f}"
            out.append(
                f'<rect x="{label_w}" y="{top}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{colour}"><title>{method} {escape(name)}: {text}</title></rect>'
            )
            out.append(f'<text x="{label_w + w + 4:.1f}" y="{top + bar_h - 3}">{text}</text>')
        y += group_h
    out.append("</svg>")
    return "\n".join(out)


def _frames_html(sid: str, section: ReportSection, methods: list[str], files: Path) -> str:
    """One row per frame (input | truth | each method's output), a 'worst first' button if scored."""
    first = methods[0] if methods else ""
    sizes = [_check_frame(frame) for frame in section.frames]
    zoom = max(1, TARGET_WIDTH // max(max(w for _, w in sizes), 1))
    rows = [
        _frame_html(f"{sid}-f{i}", i, frame, methods, first, size, zoom, files)
        for i, (frame, size) in enumerate(zip(section.frames, sizes, strict=True))
    ]
    summary = f"{len(rows)} frame(s), zoom {zoom}x"
    if any(first in f.scores for f in section.frames):
        label = f"worst frames first (by {first})"
        summary = (
            f'<button type="button" class="worst" id="{sid}-worst" data-frames="{sid}-frames" '
            f'data-label="{escape(label)}" aria-pressed="false">{escape(label)}</button> {summary}'
        )
    head = f"<p>{summary}</p>"
    return f'{head}\n<div class="frames" id="{sid}-frames">\n' + "\n".join(rows) + "\n</div>"


def _frame_html(
    fid: str,
    index: int,
    frame: ReportFrame,
    methods: list[str],
    first: str,
    hw: tuple[int, int],
    zoom: int,
    files: Path,
) -> str:
    """One frame's row of pictures, each saved as a PNG and captioned with its per-frame score."""
    size = f'width="{hw[1] * zoom}" height="{hw[0] * zoom}"'
    cells = [(frame.name, "input", frame.image)]
    if frame.truth is not None:
        cells.append(("ground truth", "truth", colorize_labels(frame.truth)))
    for m, method in enumerate(methods):
        if method in frame.outputs:
            caption = f"{method} {_score_text(frame.scores.get(method))}".rstrip()
            cells.append((caption, f"m{m}", colorize_labels(frame.outputs[method])))
    figures = []
    for caption, kind, rgb in cells:
        name = f"{fid}-{kind}.png"
        Image.fromarray(rgb).save(files / name)
        figures.append(
            f'<figure><img src="{FILES_DIR}/{name}" {size} loading="lazy" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    score = frame.scores.get(first)
    data = "" if score is None or math.isnan(score) else f"{score:.6g}"
    return (
        f'<div class="frame" data-index="{index}" data-score="{data}">'
        + "".join(figures)
        + "</div>"
    )


def _check_frame(frame: ReportFrame) -> tuple[int, int]:
    """Validate shapes and dtypes (so a bad frame fails with its name); return ``(H, W)``."""
    img = frame.image
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(
            f"{frame.name}: image must be uint8 (H, W, 3), got {img.dtype} {img.shape}"
        )
    hw = img.shape[:2]
    maps = {"truth": frame.truth} if frame.truth is not None else {}
    for key, labels in {**maps, **frame.outputs}.items():
        if labels.shape != hw or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"{frame.name}: {key} must be an integer {hw} label map, "
                f"got {labels.dtype} {labels.shape}"
            )
    return hw


def _score_text(score: float | None) -> str:
    if score is None:
        return ""
    return "n/a" if math.isnan(score) else f"{score:.3f}"


def _legend_html(section: ReportSection) -> str:
    """Swatches: W-Net classes and the tile signatures mixing them; ground-truth class names."""
    groups = []
    if section.legend:
        k = int(section.legend.get("num_classes") or 0)
        items = [f"{_swatch(i)}class {i}" for i in range(k)]
        signatures = section.legend.get("tile_signatures") or {}
        for sig in sorted(signatures, key=int):
            mixed = " ".join(_swatch(int(c)) + str(int(c)) for c in signatures[sig])
            items.append(f"{_swatch(int(sig))}{int(sig)} = tiles mixing {mixed}")
        groups.append(("W-Net classes and tile signatures", items))
    if section.class_names:
        items = [f"{_swatch(int(i))}{escape(n)}" for i, n in sorted(section.class_names.items())]
        groups.append(("ground truth (black: ignored)", items))
    return "\n".join(
        f'<div class="legend"><h3>{title}</h3><ul>'
        + "".join(f"<li>{item}</li>" for item in items)
        + "</ul></div>"
        for title, items in groups
    )


def _swatch(label: int) -> str:
    return f'<span class="sw" style="background:{_hex(label)}"></span>'


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{header}
{body}
<script>{js}</script>
</body>
</html>
"""

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
.subtitle, .machine, .notes { color: #555; white-space: pre-wrap; }
section.report { border-top: 2px solid #ccc; margin-top: 2em; }
table.metrics { border-collapse: collapse; margin: 1em 0; }
table.metrics th, table.metrics td { border: 1px solid #ddd; padding: 3px 8px; }
table.metrics th { background: #f2f2f2; cursor: pointer; user-select: none; }
table.metrics th[data-dir="asc"]::after { content: " \\25B2"; }
table.metrics th[data-dir="desc"]::after { content: " \\25BC"; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { background: #d9f2d9; font-weight: bold; }
svg.chart { font: 12px system-ui, sans-serif; display: block; margin-bottom: 1em; }
button.worst[aria-pressed="true"] { background: #ffe9a8; }
.frame { display: flex; gap: 8px; overflow-x: auto; padding: 6px 0; border-bottom: 1px solid #eee; }
figure { margin: 0; flex: none; }  /* scroll sideways rather than shrink (and resample) */
figcaption { font-size: 12px; width: 0; min-width: 100%; overflow-wrap: anywhere; }
img { image-rendering: pixelated; display: block; background: #eee; }
.legend ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
.sw { display: inline-block; width: 12px; height: 12px; border: 1px solid #888;
      vertical-align: middle; margin: 0 3px; }
"""

_JS = r"""
"use strict";
// Sorting helper: numbers or strings, missing values (NaN) always last.
function compare(a, b, sign) {
  const aMissing = Number.isNaN(a), bMissing = Number.isNaN(b);
  if (aMissing || bMissing) return aMissing - bMissing;
  return sign * (a < b ? -1 : a > b ? 1 : 0);
}
function cellValue(row, col) {
  const cell = row.cells[col];
  if (cell.dataset.v === undefined) return cell.textContent;
  return cell.dataset.v === "" ? NaN : Number(cell.dataset.v);
}
// A header's first click sorts best first; the next one reverses.
function sortTable(th) {
  const body = th.closest("table").tBodies[0];
  const flip = { asc: "desc", desc: "asc" };
  const dir = th.dataset.dir === th.dataset.first ? flip[th.dataset.first] : th.dataset.first;
  for (const other of th.parentNode.cells) delete other.dataset.dir;
  th.dataset.dir = dir;
  const sign = dir === "asc" ? 1 : -1;
  const rows = Array.from(body.rows);
  rows.sort((a, b) => compare(cellValue(a, th.cellIndex), cellValue(b, th.cellIndex), sign));
  body.append(...rows);
}
function frameScore(frame) {
  return frame.dataset.score === "" ? NaN : Number(frame.dataset.score);
}
// Worst frames first (by the first method's score), or back to the original order.
function toggleWorst(button) {
  const box = document.getElementById(button.dataset.frames);
  const worst = button.getAttribute("aria-pressed") !== "true";
  const frames = Array.from(box.children);
  frames.sort(worst ? (a, b) => compare(frameScore(a), frameScore(b), 1)
                    : (a, b) => a.dataset.index - b.dataset.index);
  box.append(...frames);
  button.setAttribute("aria-pressed", String(worst));
  button.textContent = worst ? "original order" : button.dataset.label;
}
// Resolves once an image has loaded or failed (img.decode() can hang off-screen in headless).
function settled(img) {
  if (img.complete) return null;
  return new Promise((done) => {
    img.addEventListener("load", done);
    img.addEventListener("error", done);
  });
}
// On load, write what the page shows into <body data-*> (read by check_in_browser).
// ?check loads every lazy image first; ?press=id1,id2 clicks those elements in order.
async function measure() {
  const params = new URLSearchParams(location.search);
  const images = Array.from(document.images);
  if (params.has("check")) {
    images.forEach((img) => { img.loading = "eager"; });
    await Promise.all(images.map(settled));
  }
  for (const id of (params.get("press") || "").split(",").filter(Boolean)) {
    const element = document.getElementById(id);
    if (!element) throw new Error(`press: no element with id ${id}`);
    element.click();
  }
  const sections = Array.from(document.querySelectorAll("section.report"), (s) => {
    const rows = Array.from(s.querySelectorAll("table.metrics tbody tr"));
    const frames = Array.from(s.querySelectorAll(".frames > .frame"));
    return {
      title: s.querySelector("h2").textContent,
      rows: rows.length,
      row_order: rows.map((r) => r.cells[0].textContent),
      frames: frames.length,
      frame_order: frames.map((f) => Number(f.dataset.index)),
    };
  });
  const data = document.body.dataset;
  data.images = images.length;
  data.imagesLoaded = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  data.sections = JSON.stringify(sections);
  data.ready = "true";
}
document.querySelectorAll("table.metrics th").forEach((th) => {
  th.addEventListener("click", () => sortTable(th));
});
document.querySelectorAll("button.worst").forEach((b) => {
  b.addEventListener("click", () => toggleWorst(b));
});
window.addEventListener("load", () => measure().catch((err) => {
  document.body.dataset.error = String(err);
}));
"""


# ---------------------------------------------------------------------------------------- browser


class BrowserNotFoundError(RuntimeError):
    """No headless Chromium on PATH."""


def find_browser() -> str:
    """The first of :data:`BROWSERS` on PATH."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserNotFoundError(
        f"no headless Chromium on PATH (looked for {', '.join(BROWSERS)}); "
        "install it, e.g. `apt-get install chromium`"
    )


def check_in_browser(
    html_path: str | Path,
    screenshot_path: str | Path | None = None,
    timeout: float = 60,
    *,
    press: Sequence[str] = (),
    window_size: tuple[int, int] = (1280, 1600),
) -> dict[str, Any]:
    """Open the page in headless Chromium and return what its DOM says after load.

    ``press`` lists element ids the page clicks (in order) before measuring, e.g.
    ``("s0-worst",)`` or a table header ``"s0-h1"``. Returns ``images``, ``images_loaded``,
    ``sections`` (per section: ``rows``, ``row_order``, ``frames``, ``frame_order``, ``title``),
    ``browser`` and ``screenshot`` (the PNG written at ``window_size``, or None).
    """
    browser = find_browser()
    url = Path(html_path).resolve().as_uri() + "?check"
    if press:
        url += "&press=" + ",".join(press)
    body = _body_attributes(_run_browser(browser, ["--dump-dom", url], timeout))
    if "data-error" in body:
        raise RuntimeError(f"{html_path}: the page's measuring failed: {body['data-error']}")
    if body.get("data-ready") != "true":
        raise RuntimeError(f"{html_path}: the page did not finish measuring (body: {body})")
    result: dict[str, Any] = {
        "images": int(body["data-images"]),
        "images_loaded": int(body["data-images-loaded"]),
        "sections": json.loads(body["data-sections"]),
        "browser": browser,
        "screenshot": None,
    }
    if screenshot_path is not None:
        shot = Path(screenshot_path).resolve()
        shot.unlink(missing_ok=True)
        size = f"--window-size={window_size[0]},{window_size[1]}"
        _run_browser(browser, [f"--screenshot={shot}", size, url], timeout)
        if not shot.is_file():
            raise RuntimeError(f"{browser} wrote no screenshot to {shot}")
        result["screenshot"] = str(shot)
    return result


def _run_browser(browser: str, args: list[str], timeout: float) -> str:
    """Run headless Chromium with a fresh profile; return its stdout, kill it all on timeout."""
    with tempfile.TemporaryDirectory(prefix="wnet-seg-chromium-") as profile:
        cmd = [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", *args]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as expired:
            with contextlib.suppress(ProcessLookupError):  # the browser and its renderers
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RuntimeError(
                f"{browser} did not finish within {timeout} s: {' '.join(cmd)}"
            ) from expired
    if proc.returncode != 0:
        raise RuntimeError(f"{browser} exited with {proc.returncode}: {err[-2000:]}")
    return out


class _BodyParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and not self.attrs:
            self.attrs = {k: v or "" for k, v in attrs}


def _body_attributes(dom: str) -> dict[str, str]:
    parser = _BodyParser()
    parser.feed(dom)
    return parser.attrs
