"""Images and figures shared by several pages (rendering only; the numbers come from `vae`)."""

from __future__ import annotations

import io

from PIL import Image

# The ten digit classes' colours, the same on every page and map.
DIGIT_COLORS = ["#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B",
                "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D", "#7F7F7F"]


def gif_bytes(frames: list[Image.Image], ms_per_frame: int = 120) -> bytes:
    """An animated GIF that plays the frames forwards then backwards, looping."""
    seq = frames + frames[-2:0:-1]
    buf = io.BytesIO()
    seq[0].save(buf, format="GIF", save_all=True, append_images=seq[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()
