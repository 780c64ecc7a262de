"""Screenshots as found in the wild: resized, re-encoded. Paired image/mask degradations.

A condition is a spec string, steps joined by ``+`` and applied left to right:

- ``clean``: nothing;
- ``nearest:F``: nearest-neighbour resize by the factor ``F`` (an emulator's integer upscale is
  ``nearest:3``; non-integer factors are allowed);
- ``bilinear:F``: bilinear resize by ``F`` (a browser's or an image viewer's rescale);
- ``jpeg:Q``: save as JPEG at quality ``Q`` (1-100, Pillow's libjpeg, 4:2:0 chroma) and read back.

``bilinear:1.5+jpeg:85`` is a frame resized, then saved as JPEG. The image goes through every step;
the mask (class ids) only through the resizes, always with nearest neighbour and the same output
size, so labels are never blurred and stay aligned with the pixels they describe (a pixel takes
the id of the source pixel its centre falls in, the one a bilinear resize weighs most).
Everything is deterministic.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

KINDS = ("nearest", "bilinear", "jpeg")
CONDITIONS = ("clean", "nearest:3", "jpeg:85", "bilinear:1.5", "bilinear:1.5+jpeg:85")
"""The benchmark's standard conditions."""


@dataclass(frozen=True)
class Step:
    kind: str
    value: float

    def __str__(self) -> str:
        v = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.kind}:{v}"


@dataclass(frozen=True)
class Degradation:
    """A parsed condition; ``str()`` gives its canonical spec (``clean`` when empty)."""

    steps: tuple[Step, ...] = ()

    def __str__(self) -> str:
        return "+".join(str(s) for s in self.steps) or "clean"

    @property
    def scale(self) -> float:
        """Product of the resize factors: output pixels per input pixel along each axis."""
        out = 1.0
        for s in self.steps:
            if s.kind != "jpeg":
                out *= s.value
        return out

    @property
    def lossless(self) -> bool:
        """True when every step is a nearest-neighbour resize by an integer factor (or none)."""
        return all(s.kind == "nearest" and float(s.value).is_integer() for s in self.steps)

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        for s in self.steps:
            if s.kind != "jpeg":
                h, w = _resized(h, w, s.value)
        return h, w

    def __call__(
        self, image: np.ndarray, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Degrade a uint8 RGB ``(H, W, 3)`` image and (optionally) its ``(H, W)`` id mask."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"degrade expects a uint8 (H, W, 3) image, got {image.dtype} {image.shape}"
            )
        if mask is not None and np.shape(mask) != image.shape[:2]:
            raise ValueError(
                f"mask {np.shape(mask)} does not match its image {image.shape[:2]} (H, W)"
            )
        for s in self.steps:
            if s.kind == "jpeg":
                image = _jpeg(image, int(s.value))
                continue
            h, w = _resized(*image.shape[:2], s.value)
            resample = Image.Resampling.NEAREST if s.kind == "nearest" else Image.BILINEAR
            image = np.asarray(Image.fromarray(image).resize((w, h), resample))
            if mask is not None:
                mask = np.asarray(
                    Image.fromarray(np.asarray(mask, np.uint8)).resize(
                        (w, h), Image.Resampling.NEAREST
                    )
                )
        return np.ascontiguousarray(image), None if mask is None else np.ascontiguousarray(mask)


def _resized(h: int, w: int, factor: float) -> tuple[int, int]:
    return max(1, round(h * factor)), max(1, round(w * factor))


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def parse_degradation(spec: str | Degradation | None) -> Degradation:
    """``"bilinear:1.5+jpeg:85"`` -> :class:`Degradation`; a bad spec is a ``ValueError`` saying why."""
    if isinstance(spec, Degradation):
        return spec
    text = "clean" if spec is None else str(spec).strip().lower()
    if text in ("", "clean", "none"):
        return Degradation()
    steps = []
    for part in text.split("+"):
        kind, sep, value = part.strip().partition(":")
        if kind not in KINDS or not sep:
            raise ValueError(
                f"degrade step {part!r} in {spec!r}: expected one of "
                + ", ".join(f"{k}:<value>" for k in KINDS)
                + " (joined by '+'), or 'clean'"
            )
        try:
            v = float(value)
        except ValueError:
            raise ValueError(f"degrade step {part!r}: {value!r} is not a number") from None
        if kind == "jpeg" and not (1 <= v <= 100 and v.is_integer()):
            raise ValueError(f"degrade step {part!r}: JPEG quality must be an integer in 1..100")
        if kind != "jpeg" and not 0.05 <= v <= 16:
            raise ValueError(f"degrade step {part!r}: resize factor must be in [0.05, 16]")
        steps.append(Step(kind, v))
    return Degradation(tuple(steps))


def degrade(
    image: np.ndarray, mask: np.ndarray | None = None, spec: str | Degradation = "clean"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply the condition ``spec`` to an image and its mask (see the module docstring)."""
    return parse_degradation(spec)(image, mask)
