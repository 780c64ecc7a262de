"""A misspelled command-line key names the nearest valid one, before Hydra composes anything.

``wnet-seg-train model.num_clases=8`` stops with ``unknown key model.num_clases: did you mean
model.num_classes?`` (exit 2). Keys are checked against the app's typed schema; what the schema
leaves open (Lightning's own ``trainer.*``, ``callbacks.*``, ``logger.*``, the ``*_params`` dicts)
and Hydra's own keys (``hydra.*``, ``+``/``~`` overrides, config-group choices) pass through.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import typing
from collections.abc import Sequence


def _fields(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}


def unknown_key(key: str, schema: type) -> str | None:
    """A message for ``key`` (dotted) if the schema has no such field, else ``None``."""
    node: type | None = schema
    path: list[str] = []
    for part in key.split("."):
        fields = _fields(node) if node is not None else {}
        if not fields:  # an open dict (or a value): anything goes below it
            return None
        if part not in fields:
            close = difflib.get_close_matches(part, list(fields), n=1, cutoff=0.6)
            where = ".".join(path) or "the top level"
            hint = (
                f"did you mean {'.'.join([*path, close[0]])}?"
                if close
                else (f"valid keys at {where}: {', '.join(sorted(fields))}")
            )
            return f"unknown key {key}: {hint}"
        path.append(part)
        tp = fields[part]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        node = (
            tp
            if dataclasses.is_dataclass(tp)
            else next((a for a in args if dataclasses.is_dataclass(a)), None)
        )
    return None


def check_overrides(argv: Sequence[str], schema: type, groups: Sequence[str] = ()) -> None:
    """Exit 2 with a suggestion if an override ``key=value`` in ``argv`` misspells a key."""
    for arg in argv:
        if arg.startswith(("-", "+", "~")) or "=" not in arg:
            continue
        key = arg.split("=", 1)[0]
        if key.startswith("hydra.") or key == "hydra" or key in groups:
            continue
        message = unknown_key(key, schema)
        if message:
            print(f"error: {message}", file=sys.stderr)
            raise SystemExit(2)
