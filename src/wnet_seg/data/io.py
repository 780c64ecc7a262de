"""Reading screenshots and masks robustly: every failure names the file.

Images come back as ``uint8`` RGB ``(H, W, 3)`` whatever their mode: palette, grey, grey+alpha,
RGBA (composited on black, which is what a game shows behind transparent pixels), 16-bit PNGs
(scaled to 8 bits), animated GIF/WebP (first frame). Masks come back as ``uint8`` class ids
``(H, W)``, 255 meaning "ignore".

Any failure to decode (empty, truncated or corrupt file, a non-image with an image extension, a
decompression bomb over Pillow's ``MAX_IMAGE_PIXELS``) raises :class:`ImageReadError` whose message
starts with the file's path, so callers can skip the file or stop with a clear message.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
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


def _to_uint8(arr: np.ndarray, bits16: bool = False) -> np.ndarray:
    """8-bit view of a grey image: 16-bit data scaled by 255/65535, floats clipped to [0, 1].

    ``bits16`` says the file is 16-bit (PIL mode ``I;16*``), so even a dark frame whose values are
    all below 256 is scaled; 32-bit integer images (mode ``I``) are treated as 16-bit only when a
    value exceeds 255.
    """
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        peak = 65535 if bits16 or arr.max(initial=0) > 255 else 255
        arr = np.clip(arr.astype(np.float64), 0, peak)
        return (arr * (255.0 / peak)).round().astype(np.uint8)
    return (np.clip(arr.astype(np.float64), 0.0, 1.0) * 255).round().astype(np.uint8)


# Pillow raises more than OSError/ValueError on bad files: a plugin's parser can fail with
# struct.error, IndexError, TypeError, DecompressionBombError... Decoding therefore catches every
# Exception (the message keeps its type); KeyboardInterrupt/SystemExit are not Exceptions.


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
            if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
                arr = _to_uint8(np.asarray(im), bits16=mode.startswith("I;16"))
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
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except Exception as err:
        raise ImageReadError(_describe(path, err, "image")) from None


def _describe(path: Path, err: BaseException, what: str) -> str:
    """``<path>: not a readable <what> (<why>)`` with a plain-words reason for common cases."""
    if isinstance(err, Image.DecompressionBombError):
        why = f"decompression bomb guard: {err}"
    elif isinstance(err, UnidentifiedImageError):
        why = "not an image format Pillow recognises"
    elif isinstance(err, OSError) and "truncated" in str(err):
        why = f"truncated file ({err})"
    elif isinstance(err, MemoryError):
        why = "too large to decode in memory"
    else:
        why = f"{type(err).__name__}: {err}"
    return f"{path}: not a readable {what} ({why})"


def load_mask(
    path: str | os.PathLike,
    expected_hw: tuple[int, int] | None = None,
    num_classes: int | None = None,
    valid_ids: Collection[int] | None = None,
) -> np.ndarray:
    """Read a single-channel class-id mask ``(H, W)`` uint8; check its size and ids.

    ``expected_hw`` is the image's (height, width); ``num_classes`` the number of declared classes
    (ids ``0..num_classes-1`` are valid, plus 255 = ignore); ``valid_ids`` the declared ids (as in a
    ``classes.txt``), 255 always allowed. Errors name the file, the sizes or the stray ids.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty mask file (0 bytes)")
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "P", "I", "I;16", "1"):
                raise ImageReadError(
                    f"{path}: mask must be single-channel class ids (mode L or P), got mode {im.mode}"
                )
            mask = np.asarray(im)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such mask file") from None
    except Exception as err:
        raise ImageReadError(_describe(path, err, "mask")) from None
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
    if valid_ids is not None:
        allowed = np.zeros(256, dtype=bool)
        allowed[[i for i in valid_ids if 0 <= i <= 255]] = True
        allowed[IGNORE_ID] = True
        present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
        bad = present[~allowed[present]]
        if bad.size:
            raise ImageReadError(
                f"{path}: mask has ids {bad.tolist()[:10]} not declared in classes.txt "
                f"(declared: {_id_ranges(valid_ids)}; 255 = ignore)"
            )
    return mask


def _id_ranges(ids: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    out: list[str] = []
    for i in sorted(set(ids)):
        if out and i == int(out[-1].split("-")[-1]) + 1:
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    return ", ".join(out)


def read_classes(path: str | os.PathLike) -> dict[int, str]:
    """Parse a ``classes.txt`` (``id name`` per line, ids 0..254) into ``{id: name}``."""
    out: dict[int, str] = {}
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ImageReadError(f"{path}: cannot read classes file ({err})") from None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        try:
            cid = int(parts[0])
        except ValueError:
            raise ImageReadError(f"{path}:{n}: expected 'id name', got {line!r}") from None
        if not 0 <= cid < IGNORE_ID:
            raise ImageReadError(f"{path}:{n}: class id {cid} outside 0..254 (255 = ignore)")
        out[cid] = parts[1] if len(parts) > 1 else str(parts[0])
    return out


def find_classes_file(masks_dir: str | os.PathLike | None) -> Path | None:
    """The ``classes.txt`` that declares a mask folder's ids: inside it or next to it, if any.

    ``wnet-seg-capture`` writes ``out/images``, ``out/masks`` and ``out/classes.txt``; a hand-made
    dataset may keep ``classes.txt`` inside ``masks/``. ``masks_dir`` may also be a mask file.
    """
    if masks_dir is None:
        return None
    base = Path(masks_dir)
    folder = base if base.is_dir() else base.parent
    for cand in (folder / "classes.txt", folder.parent / "classes.txt"):
        if cand.is_file():
            return cand
    return None


def save_mask(mask: np.ndarray, path: str | os.PathLike) -> None:
    """Write class ids as a single-channel 8-bit PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(mask, dtype=np.uint8), mode="L").save(path)
