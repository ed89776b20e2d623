"""Digit images as numpy arrays and pictures: mosaics, uint8, PNG. numpy and PIL only, no torch."""

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
