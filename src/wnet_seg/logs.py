"""Quiet logs: what Lightning prints that tells a user nothing about their run.

Dropped: Lightning's advertising tips ("💡 Tip: ... litlogger") and a deprecation warning that
Lightning itself triggers in torch (``LeafSpec``) every epoch. Everything else stays.
"""

from __future__ import annotations

import logging
import warnings


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


def quiet_lightning() -> None:
    """Install the filters (idempotent); the command-line apps call it first."""
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
