"""A map's points as the browser and an export need them: packed for the canvas map, as CSV, and
the picked ones back as test-set indices.

    points = pack_points(y, labels)      # compact arrays for the canvas map (ui/map_canvas)
    text = map_csv(y, labels)            # "index,label,x,y" lines
    picked = selected_indices(points_from_the_browser, n)

numpy only.
"""

from __future__ import annotations

import base64

import numpy as np


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
