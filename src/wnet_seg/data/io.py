"""Reading screenshots and masks robustly: every failure names the file.

Images come back as ``uint8`` RGB ``(H, W, 3)`` whatever their mode: palette, grey, grey+alpha,
RGBA (composited on black, which is what a game shows behind transparent pixels), 16-bit PNGs
(scaled to 8 bits), animated GIF/WebP (first frame). Masks come back as ``uint8`` class ids
``(H, W)``, 255 meaning "ignore".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
IGNORE_ID = 255


class ImageReadError(ValueError):
    """An image or mask file that cannot be used; the message names the file and why."""


def list_images(
    root: str | os.PathLike, extensions: Iterable[str] = IMAGE_EXTENSIONS
) -> list[Path]:
    """Every image file under ``root`` (recursive), sorted; ``root`` may also be a single file."""
    root = Path(root)
    exts = tuple(e.lower() for e in extensions)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"no such file or folder: {root}")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in exts and not _hidden(p, root)
    )


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        peak = 65535 if arr.max(initial=0) > 255 else 255
        return (arr.astype(np.float64) * (255.0 / peak)).round().astype(np.uint8)
    return (np.clip(arr.astype(np.float64), 0.0, 1.0) * 255).round().astype(np.uint8)


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image as ``uint8`` RGB ``(H, W, 3)``; raise :class:`ImageReadError` naming the file."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file (0 bytes)")
        with Image.open(path) as im:
            im.seek(0)  # first frame of an animation
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = _to_uint8(np.asarray(im))
                return np.repeat(arr[..., None], 3, axis=2)
            if mode == "P" or mode == "PA":
                im = im.convert("RGBA")
                mode = "RGBA"
            if mode in ("RGBA", "LA", "La", "RGBa"):
                rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
                alpha = rgba[..., 3:4] / 255.0
                return (rgba[..., :3] * alpha).round().astype(np.uint8)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except ImageReadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageReadError(
            f"{path}: not a readable image ({type(err).__name__}: {err})"
        ) from None


def load_mask(
    path: str | os.PathLike,
    expected_hw: tuple[int, int] | None = None,
    num_classes: int | None = None,
) -> np.ndarray:
    """Read a single-channel class-id mask ``(H, W)`` uint8; check its size and ids.

    ``expected_hw`` is the image's (height, width); ``num_classes`` the number of declared classes
    (ids ``0..num_classes-1`` are valid, plus 255 = ignore).
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "P", "I", "I;16", "1"):
                raise ImageReadError(
                    f"{path}: mask must be single-channel class ids (mode L or P), got mode {im.mode}"
                )
            mask = np.asarray(im)
    except ImageReadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageReadError(f"{path}: not a readable mask ({type(err).__name__}: {err})") from None
    if mask.max(initial=0) > 255:
        raise ImageReadError(f"{path}: mask ids above 255 (max {int(mask.max())})")
    mask = mask.astype(np.uint8)
    if expected_hw is not None and tuple(mask.shape) != tuple(expected_hw):
        raise ImageReadError(
            f"{path}: mask is {mask.shape[0]}x{mask.shape[1]} (HxW) but its image is "
            f"{expected_hw[0]}x{expected_hw[1]}"
        )
    if num_classes is not None:
        bad = np.unique(mask[(mask >= num_classes) & (mask != IGNORE_ID)])
        if bad.size:
            raise ImageReadError(
                f"{path}: mask has ids {bad.tolist()[:10]} outside the declared classes "
                f"0..{num_classes - 1} (255 = ignore)"
            )
    return mask


def read_classes(path: str | os.PathLike) -> dict[int, str]:
    """Parse a ``classes.txt`` (``id name`` per line) into ``{id: name}``."""
    out: dict[int, str] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        try:
            out[int(parts[0])] = parts[1] if len(parts) > 1 else str(parts[0])
        except ValueError:
            raise ImageReadError(f"{path}:{n}: expected 'id name', got {line!r}") from None
    return out


def save_mask(mask: np.ndarray, path: str | os.PathLike) -> None:
    """Write class ids as a single-channel 8-bit PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(mask, dtype=np.uint8), mode="L").save(path)
