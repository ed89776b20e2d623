"""What the latent-map page shows, as plain arrays: the manifold grid's region, digit sprite
sheets for hover previews, the picked digits, and the CSV export.

    from vae.mapview import manifold_region, manifold_codes, sprite_png, map_csv
    region = manifold_region(z, probabilistic=True)          # ((x_lo, x_hi), (y_lo, y_hi))
    codes = manifold_codes(20, region, latent_dim=2, probabilistic=True)   # (400, 2), top row = high y
    png = sprite_png(x_test, chunk=3, size=SPRITE_CHUNK)      # 250 digits in one PNG, row-major
    text = map_csv(y, labels)                                 # "index,label,x,y" lines
    points = pack_points(y, labels)                           # compact arrays for the canvas map

Everything here is numpy/PIL only, so a notebook can draw the same pictures as the page.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from .latent import grid_axis, grid_codes, normal_ppf

SPRITE_CHUNK = 250  # digits per sprite sheet: ~41 KB of PNG for MNIST, fetched when first hovered
SPRITE_COLS = 25
PERCENTILES = (1.0, 99.0)  # the region of an AE's grid: the codes' 1st-99th percentile per axis


def manifold_region(z: np.ndarray, probabilistic: bool,
                    percentiles: tuple[float, float] = PERCENTILES) -> tuple[tuple[float, float], tuple[float, float]]:
    """The square of the latent plane that the manifold grid decodes. ((x_lo, x_hi), (y_lo, y_hi))

    With `probabilistic` (a VAE) it is the prior's central mass: the standard-normal quantiles of
    the same percentiles, so the grid is evenly spaced in probability. Otherwise (an AE, which has no
    prior) it is the codes' own percentile range per axis. A 1-d model gets y = (0, 0).
    """
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or z.shape[1] not in (1, 2) or len(z) == 0:
        raise ValueError("A manifold grid needs 1-d or 2-d codes (N, 1) or (N, 2).")
    lo, hi = percentiles
    if not 0 < lo < hi < 100:
        raise ValueError("Percentiles must satisfy 0 < low < high < 100.")
    if probabilistic:
        q = float(normal_ppf(lo / 100)), float(normal_ppf(hi / 100))
        ranges = [q] * z.shape[1]
    else:
        ranges = []
        for d in range(z.shape[1]):
            a, b = np.percentile(z[:, d], [lo, hi]).astype(float)
            if b - a < 1e-6:  # a collapsed axis still gets a visible window
                a, b = a - 0.5, b + 0.5
            ranges.append((a, b))
    if len(ranges) == 1:
        ranges.append((0.0, 0.0))
    return (ranges[0][0], ranges[0][1]), (ranges[1][0], ranges[1][1])


def manifold_codes(n: int, region, latent_dim: int, probabilistic: bool) -> np.ndarray:
    """Codes of an n x n grid over `region` (row-major, top row = highest y, like the scatter),
    or for a 1-d model a strip of n codes from left to right. (n*n, 2) or (n, 1)"""
    (x_lo, x_hi), (y_lo, y_hi) = region
    if latent_dim == 1:
        return grid_axis(n, x_lo, x_hi, probabilistic)[:, None]
    if latent_dim != 2:
        raise ValueError("The manifold grid is drawn for 1-d and 2-d models only.")
    return grid_codes(n, (x_lo, x_hi), (y_lo, y_hi), probabilistic=probabilistic)


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


def map_csv(y: np.ndarray, labels: np.ndarray) -> str:
    """A map's coordinates as CSV text: a header, then `index,label,x,y` for every point."""
    y = np.asarray(y, np.float32)
    labels = np.asarray(labels)
    if y.ndim != 2 or y.shape[1] != 2 or len(labels) != len(y):
        raise ValueError("A map export needs coordinates (N, 2) and one label per point.")
    lines = ["index,label,x,y"]
    lines += [f"{i},{int(c)},{a:.6g},{b:.6g}" for i, (c, (a, b)) in enumerate(zip(labels, y.tolist()))]
    return "\n".join(lines) + "\n"


def pack_points(y: np.ndarray, labels: np.ndarray) -> dict:
    """A map's points for the browser, compact: each coordinate quantised to 16 bits over its own
    range (1/65,535 of the map's width: far below a pixel) and each label one byte, base64-encoded.
    About 67 KB for 10,000 digits. Non-finite coordinates are drawn at the range's low end.

        {"n", "x", "y": base64 uint16 (little-endian), "xr", "yr": [lo, hi], "labels": base64 uint8}
    """
    y = np.asarray(y, np.float64)
    labels = np.asarray(labels)
    if y.ndim != 2 or y.shape[1] != 2 or len(labels) != len(y):
        raise ValueError("A map needs coordinates (N, 2) and one label per point.")
    if len(labels) and (labels.min() < 0 or labels.max() > 255):
        raise ValueError("Map labels must be classes 0-255.")
    out = {"n": len(y), "labels": base64.b64encode(labels.astype(np.uint8).tobytes()).decode("ascii")}
    for axis, name in ((0, "x"), (1, "y")):
        v = y[:, axis]
        ok = v[np.isfinite(v)]
        lo, hi = (float(ok.min()), float(ok.max())) if len(ok) else (0.0, 1.0)
        if not hi > lo:
            hi = lo + 1.0
        q = np.rint((np.nan_to_num(v, nan=lo, posinf=hi, neginf=lo) - lo) / (hi - lo) * 65535)
        out[name] = base64.b64encode(np.clip(q, 0, 65535).astype("<u2").tobytes()).decode("ascii")
        out[name + "r"] = [lo, hi]
    return out


def selected_indices(points, n: int) -> list[int]:
    """Test-set indices of a map's picked points, in order, without duplicates, dropping anything
    that is not an index in [0, n). `points` are indices (the canvas map) or plotly selection points
    (dicts whose `customdata` is the index)."""
    out, seen = [], set()
    for p in points or ():
        c = p.get("customdata") if isinstance(p, dict) else p
        if isinstance(c, (list, tuple)):
            c = c[0] if c else None
        if isinstance(c, (bool, float)) and not (isinstance(c, float) and c.is_integer()):
            continue
        try:
            i = int(c)
        except (TypeError, ValueError):
            continue
        if 0 <= i < n and i not in seen:
            seen.add(i)
            out.append(i)
    return out


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
