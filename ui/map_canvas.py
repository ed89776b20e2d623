"""The latent map as a 2-D canvas (ui/map_canvas.js): zoom, pan, click, box and lasso picks, a
clickable legend, hover events for the digit card (ui/map_hover.js), an optional walk drawn on top
(Interpolate, AE vs VAE) and a PNG export.

    picked = map_chart("map_scatter", map_id, y, labels, names, colors, axes, region=None, filename="latent-map",
                       picks=state.picks())   # the pick it starts with, until the user picks on this map
    map_chart("interp_map", map_id, y, labels, names, colors, axes, path=explore.walk(path_y, scores), pickable=False)

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
              picks: list[int] | None = None) -> list[int]:
    """Mount the map; -> the test-set indices the user picked on this map (in pick order), else `picks`.

    `map_id` names the map (model, method, parameters): a new id resets the view and the pick, the
    same id keeps both across reruns. `region` ((x0, x1), (y0, y1)) draws a dashed square (the
    manifold grid's, or the decoded region). Equal units on both axes: `equal`, by default where
    there is a region. `path` (from `walk`) is drawn on top and may change while the view stays.
    `pickable=False`: a map that only shows (no Box select or Lasso, a click picks nothing).
    `picks`: the pick to show until the user picks on this map (the session's, kept across pages and
    methods, or a link's); the browser draws it as if it had been picked there."""
    mine = _selection(st.session_state.get(key), map_id, len(y))  # the user's pick on this very map, if any
    initial = None if mine is not None or picks is None else selected_indices(list(picks), len(y))
    data = dict(_packed(map_id, y, labels), id=map_id, key=key, names=list(class_names), colors=list(colors),
                axes=list(axes), equal=bool(region is not None if equal is None else equal), height=int(height),
                filename=filename, pick=bool(pickable), path=path, picks=initial,
                region=None if region is None else [[float(v) for v in r] for r in region])
    # One JSON string: Streamlit checks each top-level value of a dict for dataframes, and a list
    # makes it import pandas and pyarrow (0.5 s) on a page that otherwise needs neither.
    result = _render(key=key, data={"json": json.dumps(data)}, on_selection_change=lambda: None)
    mine = _selection(result, map_id, len(y))
    return mine if mine is not None else (initial or [])


def _selection(result, map_id: str, n: int) -> list[int] | None:
    """The pick the browser reported for this map (None: none yet, or one on another map)."""
    sel = result.get("selection") if result else None
    if isinstance(sel, dict) and sel.get("id") == map_id and isinstance(sel.get("indices"), list):
        return selected_indices(sel["indices"], n)
    return None

