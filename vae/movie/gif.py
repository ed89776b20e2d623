"""The latent movie as pictures: each frame drawn with PIL on fixed axes, and the animated GIF.

    png = frame_image(movie, f).save(...)            # one frame, RGB
    data = gif_bytes(movie, size=480, fps=8)          # every frame, looping, the last one held

Each frame shows the subset's digits as dots in the app's digit colours, an axis frame with ticks
(z1/z2 for a model's own plane, PC1/PC2 for the PCA basis), a legend of the classes and the caption
"epoch 3.2 · test loss 148.1 nats". The axes are the same in every frame (Movie.limits), so a dot
that moves on the picture moved on the plane. numpy and PIL only.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .frames import Movie

# The ten digit classes' colours, as on every page and map of the app (ui/figures.py has the same list;
# the core cannot import ui, and tests/test_movie.py checks that the two agree).
DIGIT_COLORS = ["#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B",
                "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D", "#7F7F7F"]
MIN_SIZE, MAX_SIZE = 160, 2000
MAX_FPS = 50
HOLD_LAST_S = 2.0  # the trained map stays on screen a while before the movie starts again
SUPERSAMPLE = 2  # dots are drawn at twice the size and scaled down: smooth edges


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _palette() -> Image.Image:
    """One fixed palette for every frame (no flicker from frame to frame): greys for text and lines, each
    digit colour, and three blends of each towards white for the dots' smoothed edges."""
    colours = [(v, v, v) for v in np.linspace(0, 255, 24).round().astype(int)]
    for c in map(_rgb, DIGIT_COLORS):
        colours += [tuple(int(round(255 + (x - 255) * t)) for x in c) for t in (1.0, 0.75, 0.5, 0.25)]
    flat = [v for c in colours for v in c]
    image = Image.new("P", (1, 1))
    image.putpalette(flat + flat[-3:] * (256 - len(colours)))
    return image


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round tick values (1, 2 or 5 times a power of ten apart) inside [lo, hi]."""
    raw = (hi - lo) / max(1, n)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _tick_text(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-9 else "0"


class _Layout:
    """Where everything goes on a picture of `size` pixels square."""

    def __init__(self, movie: Movie, size: int, names: list[str]):
        self.size = size
        self.font = ImageFont.load_default(size=max(9, round(size / 27)))
        self.small = ImageFont.load_default(size=max(8, round(size / 38)))
        self.classes = [int(c) for c in np.unique(movie.labels)]
        self.names = names
        legend_w = max(self.small.getlength(names[c]) for c in self.classes) + size * 0.06
        self.left, self.top = round(size * 0.11), round(size * 0.1)
        self.right = size - round(min(legend_w, size * 0.3)) - round(size * 0.03)
        self.bottom = size - round(size * 0.1)
        self.xlim, self.ylim = movie.limits()
        self.axes = ("z1", "z2") if movie.plane == "native" else ("PC1", "PC2")

    def pixels(self, points: np.ndarray, scale: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Plane coordinates -> pixel columns and rows (y up), at `scale` times the picture's size."""
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        px = self.left + (points[:, 0] - x0) / (x1 - x0) * (self.right - self.left)
        py = self.bottom - (points[:, 1] - y0) / (y1 - y0) * (self.bottom - self.top)
        return np.rint(px * scale).astype(np.int64), np.rint(py * scale).astype(np.int64)


def _dots(layout: _Layout, points: np.ndarray, labels: np.ndarray, order: np.ndarray) -> Image.Image:
    """The dots alone on white, drawn at SUPERSAMPLE times the size inside the axes and scaled down."""
    s = SUPERSAMPLE
    canvas = np.full((layout.size * s, layout.size * s, 3), 255, np.uint8)
    px, py = layout.pixels(points[order], s)
    colours = np.array([_rgb(DIGIT_COLORS[c % len(DIGIT_COLORS)]) for c in labels[order]], np.uint8)
    radius = max(1.5, layout.size / 230) * s
    r = int(math.ceil(radius))
    inside = ((px >= layout.left * s) & (px <= layout.right * s) & (py >= layout.top * s)
              & (py <= layout.bottom * s))
    px, py, colours = px[inside], py[inside], colours[inside]
    for dy in range(-r, r + 1):  # a disc stamped point by point, in a fixed shuffled order: no class on top
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= radius * radius:
                canvas[np.clip(py + dy, 0, len(canvas) - 1), np.clip(px + dx, 0, len(canvas) - 1)] = colours
    return Image.fromarray(canvas).resize((layout.size, layout.size), Image.Resampling.BOX)


def _frame(layout: _Layout, movie: Movie, f: int, order: np.ndarray) -> Image.Image:
    image = _dots(layout, movie.points[f], movie.labels, order)
    draw = ImageDraw.Draw(image)
    ink, grey, size = (30, 30, 30), (150, 150, 150), layout.size
    draw.rectangle((layout.left, layout.top, layout.right, layout.bottom), outline=grey, width=max(1, size // 400))
    for axis, (lo, hi) in enumerate((layout.xlim, layout.ylim)):
        for v in _ticks(lo, hi):
            point = np.array([[v, layout.ylim[0]]] if axis == 0 else [[layout.xlim[0], v]])
            px, py = (int(a[0]) for a in layout.pixels(point))
            if axis == 0:
                draw.line((px, layout.bottom, px, layout.bottom + size // 100), fill=grey)
                draw.text((px, layout.bottom + size // 80), _tick_text(v), fill=ink, font=layout.small, anchor="mt")
            else:
                draw.line((layout.left - size // 100, py, layout.left, py), fill=grey)
                draw.text((layout.left - size // 70, py), _tick_text(v), fill=ink, font=layout.small, anchor="rm")
    draw.text(((layout.left + layout.right) / 2, size - size // 60), layout.axes[0], fill=ink, font=layout.small,
              anchor="mb")
    draw.text((size // 60, (layout.top + layout.bottom) / 2), layout.axes[1], fill=ink, font=layout.small, anchor="lm")
    caption = f"epoch {movie.epoch[f]:.1f} · test loss {movie.loss[f]:.1f} nats"
    draw.text((layout.left, layout.top / 2), caption, fill=ink, font=layout.font, anchor="lm")
    draw.text((size - size // 40, layout.top / 2), f"{f + 1}/{movie.frames}", fill=grey, font=layout.small,
              anchor="rm")
    row = min(size / 22, (layout.bottom - layout.top) / max(1, len(layout.classes)))
    y0 = (layout.top + layout.bottom) / 2 - row * len(layout.classes) / 2
    x0 = layout.right + size * 0.04
    for i, c in enumerate(layout.classes):
        y, r = y0 + (i + 0.5) * row, max(2, size / 110)
        draw.ellipse((x0 - r, y - r, x0 + r, y + r), fill=DIGIT_COLORS[c % len(DIGIT_COLORS)])
        draw.text((x0 + 2.5 * r, y), layout.names[c], fill=ink, font=layout.small, anchor="lm")
    return image


def _names(movie: Movie, class_names) -> list[str]:
    names = list(class_names if class_names is not None else movie.class_names or [])
    top = int(movie.labels.max())
    return [str(names[c]) if c < len(names) else str(c) for c in range(top + 1)]


def _check(size: int, fps: int | None = None) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"The picture's size must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE}, "
                         f"not {size!r}.")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= MAX_FPS):
        raise ValueError(f"Frames per second must be a whole number from 1 to {MAX_FPS}, not {fps!r}.")


def frame_image(movie: Movie, f: int, size: int = 480, class_names=None) -> Image.Image:
    """Frame `f` of the movie as an RGB picture `size` pixels square."""
    _check(size)
    if not 0 <= f < movie.frames:
        raise ValueError(f"The movie has frames 0 to {movie.frames - 1}, not {f}.")
    order = np.random.default_rng(0).permutation(len(movie.labels))
    return _frame(_Layout(movie, size, _names(movie, class_names)), movie, f, order)


def gif_bytes(movie: Movie, size: int = 480, fps: int = 8, class_names=None) -> bytes:
    """The whole movie as an animated GIF, `size` pixels square, `fps` frames a second, looping, with the
    last frame held for HOLD_LAST_S. `class_names` (a name per label value) default to the movie's own."""
    _check(size, fps)
    layout = _Layout(movie, size, _names(movie, class_names))
    order = np.random.default_rng(0).permutation(len(movie.labels))
    palette = _palette()
    frames = [_frame(layout, movie, f, order).quantize(palette=palette, dither=Image.Dither.NONE)
              for f in range(movie.frames)]
    ms = round(1000 / fps)
    durations = [ms] * (len(frames) - 1) + [max(ms, round(1000 * HOLD_LAST_S))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   optimize=False, disposal=1)
    return buf.getvalue()
