"""Files that ship inside the package, so defaults work from any folder and in a pip install.

``demo/``: the embedded labelled frames (MIT art) the demo and ``data=overfit`` use;
``checkpoints/``: the shipped checkpoint. The repository's ``data/demo`` and
``checkpoints/*.ckpt`` are links to these.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT_NAME = "wnet_multigame.ckpt"


def asset(relative: str) -> Path:
    """The packaged file ``relative`` (e.g. ``demo/crafter.png``); a clear error if missing."""
    path = ROOT / relative
    if not path.exists():
        raise FileNotFoundError(f"packaged asset {relative} not found under {ROOT}")
    return path


def default_checkpoint() -> Path:
    """The shipped checkpoint: ``$WNET_SEG_CHECKPOINT`` if set, else the packaged one."""
    env = os.environ.get("WNET_SEG_CHECKPOINT")
    path = Path(env) if env else ROOT / "checkpoints" / DEFAULT_CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint given and the shipped one is missing ({path}); pass ckpt=PATH"
        )
    return path
