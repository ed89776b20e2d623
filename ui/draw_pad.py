"""The drawing pad (ui/draw_pad.js, a Streamlit components v2 component of the project's own).

    drawn = draw_pad("draw_pad", init=strokes)   # -> {"size": 280, "strokes": [...], "rev": 3} or None

A black 280 x 280 square with white ink, like an MNIST digit; a mouse, a pen or a finger draws
(pointer events), Undo takes back the last stroke, Clear wipes it. The browser reports the strokes
when a stroke ends (and on Undo and Clear), never while drawing, as one small JSON text.

Why not `streamlit-drawable-canvas`: its 0.13 release does run on Streamlit 1.67 (it moved to
components v2), but it ships 413 KB of Fabric.js to every browser, reports Fabric's object JSON
(SVG paths, or a whole PNG as a data URL) where this needs the pen's points, and its author calls
it best effort. The pad here is under 200 lines of JavaScript on ui/components.py's helper.
"""

from __future__ import annotations

import json

import streamlit as st

from ui.components import component
from vae.drawing import PAD, PEN_SHARE

MAX_TEXT = 200_000  # characters of a report read at all (2,000 points take about 30,000)

_render = component("latent_lab.draw_pad", "draw_pad")


def parse_report(text) -> dict | None:
    """The browser's report -> {"size", "strokes", "rev"}, or None for nothing or a report that is not one
    (the strokes themselves are checked by vae.drawing)."""
    if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return None
    if not isinstance(value, dict) or not isinstance(value.get("strokes"), list):
        return None
    size, rev = value.get("size", PAD), value.get("rev", 0)
    return {"size": size, "strokes": value["strokes"], "rev": rev if isinstance(rev, int) else 0}


def draw_pad(key: str, init: list | None = None, size: int = PAD) -> dict | None:
    """Mount the pad; -> the browser's last report on it (None before the first stroke of this visit).
    `init`: strokes to show when the pad is first drawn (the session's last drawing)."""
    data = {"size": int(size), "pen": round(size * PEN_SHARE, 3),
            "init": None if not init else {"strokes": init}}
    result = _render(key=key, data={"json": json.dumps(data)}, on_drawing_change=lambda: None,
                     width="content")
    return parse_report(result.get("drawing") if result else None)
