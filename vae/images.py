"""Digit images as numpy arrays and pictures: mosaics, uint8, PNG, the hover card's sprite sheets and
a map drawn as a PNG. numpy and PIL only, no torch, so a notebook draws the same pictures as a page."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


def tile(images: np.ndarray, cols: int, pad: int = 2, value: float = 1.0) -> np.ndarray:
    """Images (N, H, W) -> one mosaic (rows*H', cols*W') with `pad` pixels between tiles."""
    n, h, w = images.shape
    rows = max(1, -(-n // cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), value, dtype=images.dtype)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return out


def image_grid(images: np.ndarray, cols: int, scale: int = 2, pad: int = 2, invert: bool = False) -> Image.Image:
    """Images (N, 28, 28) in [0, 1] -> one PIL mosaic, enlarged `scale` times with crisp pixels."""
    imgs = 1.0 - images if invert else images
    mosaic = to_uint8(tile(np.asarray(imgs, np.float32), cols, pad=pad, value=0.35))
    img = Image.fromarray(mosaic, mode="L")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


SPRITE_CHUNK = 250  # digits per sprite sheet: ~41 KB of PNG for MNIST, fetched when first hovered
SPRITE_COLS = 25


def sprite_sheet(x: np.ndarray, cols: int = SPRITE_COLS) -> np.ndarray:
    """uint8 digits (N, H, W) -> one sheet (rows*H, cols*W), digit i at row i // cols, column i % cols."""
    x = np.asarray(x)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise ValueError("A sprite sheet needs uint8 digits of shape (N, H, W).")
    n, h, w = x.shape
    rows = max(1, -(-n // cols))
    pad = np.zeros((rows * cols - n, h, w), np.uint8)
    full = np.concatenate([x, pad]) if len(pad) else x
    return full.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def sprite_chunks(n: int, size: int = SPRITE_CHUNK) -> int:
    return max(1, -(-n // size))


def sprite_png(x: np.ndarray, chunk: int, size: int = SPRITE_CHUNK, cols: int = SPRITE_COLS) -> bytes:
    """Digits [chunk*size, (chunk+1)*size) of uint8 `x` (N, H, W) as one greyscale PNG sheet."""
    if not 0 <= chunk < sprite_chunks(len(x), size):
        raise ValueError(f"Sprite chunk {chunk} is out of range for {len(x)} digits.")
    sheet = sprite_sheet(np.asarray(x[chunk * size:(chunk + 1) * size]), cols)
    buf = io.BytesIO()
    Image.fromarray(sheet, mode="L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def scatter_png(y: np.ndarray, labels: np.ndarray, colors: list[str], size: tuple[int, int] = (960, 560),
                radius: int = 2, pad: int = 10) -> bytes:
    """All points as coloured dots in one PNG: a picture of a map for the moments when an interactive
    chart would cost more than it gives (t-SNE redrawn as it forms, the instant preview). A few tens of
    milliseconds for 10,000 points, where a browser takes about half a second per WebGL redraw on a
    machine without a GPU. `colors[label]` is a "#rrggbb" string; equal units on both axes."""
    y = np.asarray(y, np.float64)
    labels = np.asarray(labels, np.int64)
    if y.ndim != 2 or y.shape[1] != 2 or len(y) != len(labels):
        raise ValueError("scatter_png needs points (N, 2) and N labels.")
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    ok = np.isfinite(y).all(axis=1)
    y, labels = y[ok], labels[ok]
    if len(y):
        lo, hi = y.min(axis=0), y.max(axis=0)
        span = np.maximum(hi - lo, 1e-12)
        scale = min((w - 2 * pad) / span[0], (h - 2 * pad) / span[1])
        off_x, off_y = (w - span[0] * scale) / 2, (h - span[1] * scale) / 2
        px = np.rint(off_x + (y[:, 0] - lo[0]) * scale).astype(np.int64)
        py = np.rint(h - off_y - (y[:, 1] - lo[1]) * scale).astype(np.int64)  # y grows upwards
        palette = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colors], np.uint8)
        rgb = palette[labels % len(palette)]
        order = np.random.default_rng(0).permutation(len(y))  # no class is always drawn on top
        px, py, rgb = px[order], py[order], rgb[order]
        for dx in range(-radius, radius + 1):
            for dy in range(-radius, radius + 1):
                if dx * dx + dy * dy <= radius * radius + 1:
                    img[np.clip(py + dy, 0, h - 1), np.clip(px + dx, 0, w - 1)] = rgb
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
