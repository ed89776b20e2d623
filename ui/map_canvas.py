"""The latent map as a 2-D canvas (ui/map_canvas.js): zoom, pan, click, box and lasso picks, a
clickable legend, hover events for the card (ui/map_hover.js) over dots and empty space alike, an
optional walk drawn on top (Interpolate, AE vs VAE), marks, a clicked point of empty space, a
background layer (ui/map_layers.py), dots coloured by a value, and a PNG export.

    picked = map_chart("map_scatter", map_id, y, labels, names, colors, axes, region=None, filename="latent-map",
                       picks=state.picks())   # the pick it starts with, until the user picks on this map
    map_chart("interp_map", map_id, y, labels, names, colors, axes, path=explore.walk(path_y, scores), pickable=False)
    map_chart(..., marks=[{"x": 1.0, "y": -2.0, "label": "your drawing", "color": "#111"}])  # always in view
    map_chart(..., space=True); clicked_point("map_scatter", map_id)   # (x, y) of a click on empty space, or None

It replaces plotly's WebGL scatter on the map page: without a GPU (a school laptop, CI) plotly
needs 0.6-1 s of the browser's main thread per redraw and 1.5 s to load plotly.js once, where
the canvas draws 10,000 dots in about 10 ms. The points travel as 16-bit coordinates and 8-bit
labels (vae.maps.points.pack_points, ~67 KB for 10,000 digits).
"""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from ui.components import component
from vae.maps.points import pack_points, selected_indices

_render = component("latent_lab.map_canvas", "map_canvas")


@st.cache_data(show_spinner=False, max_entries=16)
def _packed(map_id: str, _y: np.ndarray, _labels: np.ndarray) -> dict:
    return pack_points(_y, _labels)


def map_chart(key: str, map_id: str, y: np.ndarray, labels: np.ndarray, class_names: list[str],
              colors: list[str], axes: tuple[str, str], region=None, filename: str = "latent-map",
              height: int = 560, path: dict | None = None, pickable: bool = True, equal: bool | None = None,
              picks: list[int] | None = None, marks: list[dict] | None = None, space: bool = False,
              layer: bool = False, color_by: dict | None = None) -> list[int]:
    """Mount the map; -> the test-set indices the user picked on this map (in pick order), else `picks`.

    `map_id` names the map (model, method, parameters): a new id resets the view and the pick, the
    same id keeps both across reruns. `region` ((x0, x1), (y0, y1)) draws a dashed square (the
    manifold grid's, or the decoded region). Equal units on both axes: `equal`, by default where
    there is a region. `path` (from `walk`) is drawn on top and may change while the view stays.
    `pickable=False`: a map that only shows (no Box select or Lasso, a click picks nothing).
    `picks`: the pick to show until the user picks on this map (the session's, kept across pages and
    methods, or a link's); the browser draws it as if it had been picked there.
    `marks`: points drawn on top as a ring and a label ({x, y, label, color}); the view widens to show a new
    one. `space`: a click on empty space is a point (`clicked_point`), drawn as a cross. `layer`: the
    background layer is on (its pictures come through ui.map_layers.layer_channel, mounted after this with
    the same key). `color_by`: {"values": base64 uint8 per dot, "max": int, "label": str}, from
    ui.map_layers.color_values: the dots take a sequential colour by value."""
    mine = _selection(st.session_state.get(key), map_id, len(y))  # the user's pick on this very map, if any
    initial = None if mine is not None or picks is None else selected_indices(list(picks), len(y))
    data = dict(_packed(map_id, y, labels), id=map_id, key=key, names=list(class_names), colors=list(colors),
                axes=list(axes), equal=bool(region is not None if equal is None else equal), height=int(height),
                filename=filename, pick=bool(pickable), path=path, picks=initial,
                region=None if region is None else [[float(v) for v in r] for r in region],
                marks=[_mark(m) for m in marks or []], space=bool(space), layer=bool(layer), colorBy=color_by,
                point=_point_json(clicked_point(key, map_id)) if space else None)
    # One JSON string: Streamlit checks each top-level value of a dict for dataframes, and a list
    # makes it import pandas and pyarrow (0.5 s) on a page that otherwise needs neither.
    result = _render(key=key, data={"json": json.dumps(data)}, on_selection_change=lambda: None,
                     on_point_change=lambda: None)
    mine = _selection(result, map_id, len(y))
    return mine if mine is not None else (initial or [])


def _selection(result, map_id: str, n: int) -> list[int] | None:
    """The pick the browser reported for this map (None: none yet, or one on another map)."""
    sel = result.get("selection") if result else None
    if isinstance(sel, dict) and sel.get("id") == map_id and isinstance(sel.get("indices"), list):
        return selected_indices(sel["indices"], n)
    return None



def clicked_point(key: str, map_id: str) -> tuple[float, float] | None:
    """The point of empty space last clicked on the map `key` while it showed `map_id` (data coordinates),
    or None: none yet, cleared by a double-click, or one on another map."""
    p = (st.session_state.get(key) or {}).get("point")
    if not isinstance(p, dict) or p.get("id") != map_id:
        return None
    try:
        x, y = float(p["x"]), float(p["y"])
    except (KeyError, TypeError, ValueError):
        return None
    return (x, y) if np.isfinite(x) and np.isfinite(y) else None


def _point_json(p) -> dict | None:
    return None if p is None else {"x": p[0], "y": p[1]}


def _mark(m: dict) -> dict:
    x, y = float(m["x"]), float(m["y"])
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ValueError("A mark on the map needs finite coordinates.")
    return {"x": x, "y": y, "label": str(m.get("label", ""))[:60], "color": str(m.get("color", "#111"))[:32]}
