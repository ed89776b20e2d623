"""Images and figures shared by several pages (rendering only; the numbers come from `vae`)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from vae.latent import tile, to_uint8


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


def gif_bytes(frames: list[Image.Image], ms_per_frame: int = 120) -> bytes:
    """An animated GIF that plays the frames forwards then backwards, looping."""
    seq = frames + frames[-2:0:-1]
    buf = io.BytesIO()
    seq[0].save(buf, format="GIF", save_all=True, append_images=seq[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()
