"""A hand-drawn digit prepared the way MNIST digits were, so a model trained on MNIST can read it.

    x = prepare_strokes(strokes, size=280)   # strokes in pad pixels -> (28, 28) float32 in [0, 1]
    x = prepare(raster)                      # any (H, W) image of a digit, white ink on black

MNIST's recipe (LeCun et al.): the ink's bounding box is scaled, keeping its aspect ratio, so that
its longer side is 20 pixels, with anti-aliasing; the result is put into a 28x28 field so that the
ink's centre of mass sits at the field's centre. Measured on the 10,000 MNIST test digits: the
longer side of the bounding box is exactly 20 pixels for every digit, and the centre of mass is at
(14.0, 14.0) in pixel indices (row, column), off by at most half a pixel (MNIST shifted by whole
pixels, as done here).

Strokes are first drawn at twice the pad's resolution with a round pen whose width is a fixed
share of the pad (PEN_SHARE: 20 px on a 280 px pad, what the pad shows), then scaled down with a
Lanczos filter, which is what makes the edges anti-aliased. Bad input (an empty pad, a dot, too
many points for a shared server, numbers that are not finite) raises DrawingError with a sentence.

numpy and PIL only: no torch, so the preparation runs and is tested without a model.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

SIDE = 28  # the MNIST field
BOX = 20  # the longer side of the ink's bounding box in the field
CENTRE = 14.0  # where the centre of mass goes (row and column, in pixel indices)
PAD = 280  # the drawing pad's side in CSS pixels
PEN_SHARE = 1 / 14  # the pen's width as a share of the pad's side
OVERSAMPLE = 2  # strokes are drawn at this multiple of the pad's resolution, then scaled down
MAX_STROKES = 100
MAX_POINTS = 4000  # all strokes together; the pad itself keeps far fewer
MIN_SPAN = 0.12  # the ink's longer side must cover at least this share of the pad (else: a dot)
INK_LEVEL = 0.02  # a pixel brighter than this share of the brightest is ink (for the bounding box)


class DrawingError(ValueError):
    """A drawing that cannot be read as a digit; the message is a sentence for the user."""


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not math.isfinite(size):
        raise DrawingError("The pad's size is not a number.")
    if not 28 <= size <= 2000:
        raise DrawingError(f"A pad from 28 to 2,000 pixels wide can be read, not {size:g}.")
    return int(round(size))


def clean_strokes(strokes, size: int = PAD) -> list[np.ndarray]:
    """Check and tidy strokes: a list of strokes, each a list of [x, y] points in pad pixels. Points off
    the pad are moved to its edge. -> one (K, 2) float array per non-empty stroke."""
    size = _check_size(size)
    if not isinstance(strokes, (list, tuple)):
        raise DrawingError("A drawing is a list of strokes, each a list of [x, y] points.")
    if len(strokes) > MAX_STROKES:
        raise DrawingError(f"The drawing has {len(strokes):,} strokes; at most {MAX_STROKES} are read. "
                           "Clear the pad and draw one digit.")
    out, total = [], 0
    for stroke in strokes:
        if not isinstance(stroke, (list, tuple)):
            raise DrawingError("A drawing is a list of strokes, each a list of [x, y] points.")
        total += len(stroke)
        if total > MAX_POINTS:
            raise DrawingError(f"The drawing has more than {MAX_POINTS:,} points; clear the pad and draw one digit.")
        if not len(stroke):
            continue
        try:
            pts = np.asarray(stroke, dtype=np.float64)
        except (TypeError, ValueError):
            raise DrawingError("A stroke's points must be pairs of numbers [x, y].") from None
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise DrawingError("A stroke's points must be pairs of numbers [x, y].")
        if not np.isfinite(pts).all():
            raise DrawingError("The drawing holds numbers that are not finite.")
        out.append(np.clip(pts, 0.0, float(size)))
    if not out:
        raise DrawingError("The pad is empty: draw a digit first.")
    return out


def rasterise(strokes, size: int = PAD, pen: float | None = None, oversample: int = OVERSAMPLE) -> np.ndarray:
    """Draw strokes (pad pixels) with a round pen of width `pen` (default: PEN_SHARE of the pad) on a black
    square, white ink, at `oversample` times the pad's resolution. -> (S, S) float32 in [0, 1]"""
    clean = clean_strokes(strokes, size)
    size = _check_size(size)
    f = int(oversample)
    width = (size * PEN_SHARE if pen is None else float(pen)) * f
    img = Image.new("L", (size * f, size * f), 0)
    ink = ImageDraw.Draw(img)
    r = width / 2
    for pts in clean:
        xy = [(float(x) * f, float(y) * f) for x, y in pts]
        if len(xy) > 1:
            ink.line(xy, fill=255, width=max(1, int(round(width))), joint="curve")
        for x, y in xy:  # round ends, and round joins where the line's own are not
            ink.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(img, np.float32) / 255.0


def _as_image(raster) -> np.ndarray:
    x = np.asarray(raster)
    if x.ndim != 2 or min(x.shape) < 8 or max(x.shape) > 4000:
        raise DrawingError("A digit image must be a 2-D picture between 8 and 4,000 pixels a side.")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DrawingError("A digit image must hold numbers.")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DrawingError("The image holds numbers that are not finite.")
    return np.clip(x, 0.0, 1.0)


def ink_box(x: np.ndarray, level: float = INK_LEVEL) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), bottom and right exclusive, of the pixels brighter than `level` times the
    brightest; None when there is no ink."""
    peak = float(x.max()) if x.size else 0.0
    if peak <= 0:
        return None
    mask = x > level * peak
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    """The ink's centre of mass (row, column) in pixel indices."""
    total = float(x.sum())
    if total <= 0:
        raise DrawingError("The pad is empty: draw a digit first.")
    rows, cols = np.arange(x.shape[0]), np.arange(x.shape[1])
    return float(x.sum(1) @ rows) / total, float(x.sum(0) @ cols) / total


def prepare(raster, min_span: float = MIN_SPAN) -> np.ndarray:
    """A digit image (H, W), white ink on black (floats in [0, 1], or uint8) -> the 28x28 MNIST-style
    digit: the ink's bounding box scaled to a longer side of 20 px (aspect kept, anti-aliased), then
    shifted by whole pixels so that its centre of mass is at (14, 14). (28, 28) float32 in [0, 1]"""
    x = _as_image(raster)
    box = ink_box(x)
    if box is None or float(x.max()) < 0.05:
        raise DrawingError("The pad is empty: draw a digit first.")
    top, bottom, left, right = box
    h, w = bottom - top, right - left
    if max(h, w) < min_span * max(x.shape):
        raise DrawingError("That is only a dot (or too small to read): draw one digit that fills most of the pad.")
    long = max(h, w)
    scale = BOX / long
    crop = x[top:bottom, left:right]
    # The shorter side gets a pixel of margin, so its edges fall inside pixels and come out grey (anti-
    # aliased) at the same scale as the longer side, rather than stretched to a whole number of pixels.
    out = [BOX if n == long else min(BOX, math.ceil(n * scale - 1e-6) + 1) for n in (h, w)]
    extra = [round(o / scale) - n if n != long else 0 for o, n in zip(out, (h, w))]
    crop = np.pad(crop, [(e // 2, e - e // 2) for e in (max(0, e) for e in extra)])
    small = Image.fromarray(np.ascontiguousarray(crop), mode="F").resize((out[1], out[0]), Image.Resampling.LANCZOS)
    small = np.clip(np.asarray(small, np.float32), 0.0, 1.0)
    if float(small.max()) <= 0:
        raise DrawingError("The pad is empty: draw a digit first.")
    small /= small.max()  # the brightest pixel is full white, as in MNIST
    cy, cx = centre_of_mass(small)
    dy, dx = int(round(CENTRE - cy)), int(round(CENTRE - cx))
    out = np.zeros((SIDE, SIDE), np.float32)
    # Paste `small` at (dy, dx); whatever would fall outside the field is cut off, as in MNIST.
    r0, c0 = max(0, dy), max(0, dx)
    r1, c1 = min(SIDE, dy + small.shape[0]), min(SIDE, dx + small.shape[1])
    out[r0:r1, c0:c1] = small[r0 - dy:r1 - dy, c0 - dx:c1 - dx]
    return out


def prepare_strokes(strokes, size: int = PAD, pen: float | None = None) -> np.ndarray:
    """Strokes drawn on a pad of `size` pixels -> the 28x28 MNIST-style digit (see `prepare`)."""
    return prepare(rasterise(strokes, size, pen))
