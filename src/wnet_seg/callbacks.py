"""Checkpoint plumbing: atomic writes and weights-only reads."""

from __future__ import annotations

from typing import Any

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from wnet_seg.checkpoint import atomic_torch_save, read_checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save to a temporary file then rename: a kill during saving never leaves a torn checkpoint.

    Loads always use ``weights_only=True`` (via :func:`wnet_seg.checkpoint.read_checkpoint`), so a
    checkpoint carrying pickled code is refused instead of executed.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(
                f"{type(self).__name__} takes no storage_options, got {storage_options!r}"
            )
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict:
        return read_checkpoint(path)
