"""What the Latent map shows besides its dots: the digit-likeness layer, the dots coloured by neighbours
kept, and the code under a clicked point of empty space.

    to_codes = map_layers.plane(a, method)            # exact map point -> code (native, PCA), else None
    map_layers.layer_channel("map_scatter", job.key, a, method)   # after map_chart(..., layer=True)
    kept = map_layers.kept(job.key, z, y)              # (N,) uint8, once per map
    map_chart(..., color_by=map_layers.color_values(kept))
    z, exact = map_layers.point_code(a, method, z_all, y, (x, y))

The layer travels apart from the map: `layer_channel` is a fragment around a tiny component
(ui/map_layers.js), which reports the view the user settled on and receives the
layer's n x n picture, so a zoom or a pan reruns only that fragment and sends a few KB, never the
70 KB of dots. Views are snapped outward to a power-of-two grid (`quantise_view`) so that small pans
find the cached layer; every cache here is bounded and keyed by the model's fingerprint.
"""

from __future__ import annotations

import base64
import json
import math
from typing import TYPE_CHECKING, Callable

import numpy as np
import streamlit as st

from ui import state
from ui.components import component
from vae.assets import MAPS_DIR
from vae.classifier import CONFIDENT, predict_proba
from vae.latent import decode
from vae.maps.projection import make_projection
from vae.paths import cache_dir

if TYPE_CHECKING:
    from vae.maps.projection import Projection

LAYER_N = 40  # layer points per side: 1,600 decodes and scores, ~0.85 s of CPU (48: 1.2 s; benchmarks/bench_layer.py)
SNAP = 8  # a view is snapped outward to a grid of at most 1/SNAP of its span (a power of two)
K = 10  # neighbours for the honesty colouring
EXACT = ("native", "pca")  # maps with an exact way back from a point to a code

LAYER_DARK = ("Dark: the classifier is not confident the decoded image is a digit (its top class "
              f"below {CONFIDENT:.0%}); clear: it decodes to a confident digit.")
NOT_OFFERED = ("The digit-likeness layer is offered on the native and PCA maps only: t-SNE and UMAP have no "
               "formula from an empty spot back to a code, so their empty space would be painted by a guess.")
KEPT_MEANS = ("A low number marks a digit whose surroundings the map changed: t-SNE and UMAP keep who sits "
              "next to whom, but [cluster sizes and the gaps between clusters are not distances]"
              "(https://distill.pub/2016/misread-tsne/).")

_channel = component("latent_lab.map_layer", "map_layers")


# --- the plane: a map point's code --------------------------------------------------------------------

@st.cache_resource(show_spinner=False, max_entries=16)
def _plane(fingerprint: str, dataset: str, method: str, _z: np.ndarray) -> Projection:
    """The fitted native or PCA projection of a model's test codes (never mutated once made)."""
    return make_projection(method, seed=0).fit(_z)


def plane(a: state.Active, method: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """Map points (M, 2) -> codes (M, D) for a map with an exact inverse: the native plane (the point is the
    code) and PCA (its plane's `inverse_transform`, the same fit as the map service's PCA map); else None."""
    if method not in EXACT:
        return None
    return _plane(a.fingerprint, a.dataset, method, state.active_codes(a)).inverse_transform


def point_code(a: state.Active, method: str, z: np.ndarray, map_y: np.ndarray, point) -> tuple[np.ndarray, bool]:
    """The code (D,) under a point of the map and whether it is exact: through the plane for native and PCA,
    else the distance-weighted mean of the codes of the 8 nearest dots (vae.maps.neighbours.approx_codes)."""
    p = np.asarray(point, np.float64).reshape(1, 2)
    to_codes = plane(a, method)
    if to_codes is not None:
        return np.asarray(to_codes(p), np.float32)[0], True
    from vae.maps.neighbours import approx_codes  # scikit-learn, only where a t-SNE or UMAP point asks for it

    return approx_codes(map_y, z, p)[0], False


# --- the decoded point -------------------------------------------------------------------------------

def decoded_point(a: state.Active, z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The decoder's image (28, 28) at code z, and the classifier's class probabilities (10,) (None without)."""
    image = decode(a.model, np.asarray(z, np.float32).reshape(1, -1))[0]
    clf, _ = state.scorer(a.dataset)
    return image, None if clf is None else predict_proba(clf, image[None])[0]


def verdict(probs: np.ndarray | None, names: list[str]) -> str:
    """One sentence on the classifier's view of a decoded image."""
    if probs is None:
        return ""
    c = int(np.argmax(probs))
    name = names[c] if c < len(names) else str(c)
    if probs[c] >= CONFIDENT:
        return f"The classifier calls it a confident {name} ({probs[c]:.0%})."
    return f"Not a confident digit: the classifier's best guess is {name}, at {probs[c]:.0%}."


# --- the layer ----------------------------------------------------------------------------------------

def quantise_view(view) -> tuple[tuple[float, float], tuple[float, float]]:
    """A view ((x0, x1), (y0, y1)) snapped outward, each axis to multiples of the largest power of two at
    most its span / SNAP: it covers the view, at most 25% larger, and nearby views share it."""
    out = []
    for lo, hi in view:
        lo, hi = float(lo), float(hi)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError("A view needs finite bounds with low below high on both axes.")
        step = 2.0 ** math.floor(math.log2((hi - lo) / SNAP))
        out.append((math.floor(lo / step) * step, math.ceil(hi / step) * step))
    return out[0], out[1]


def visible_share(scores: np.ndarray, layer_view, view, threshold: float = CONFIDENT) -> float:
    """The share of the layer's points inside `view` (the visible region) that decode to a confident digit;
    row 0 of `scores` is the highest y. NaN where no point is inside."""
    n_rows, n_cols = scores.shape
    (x0, x1), (y0, y1) = layer_view
    xs = x0 + (np.arange(n_cols) + 0.5) * (x1 - x0) / n_cols
    ys = y1 - (np.arange(n_rows) + 0.5) * (y1 - y0) / n_rows
    (vx0, vx1), (vy0, vy1) = view
    inside = ((ys >= vy0) & (ys <= vy1))[:, None] & ((xs >= vx0) & (xs <= vx1))[None, :]
    return float((scores[inside] >= threshold).mean()) if inside.any() else float("nan")


@st.cache_data(show_spinner=False, max_entries=64)
def _layer(fingerprint: str, method: str, view, n: int, _a: state.Active) -> tuple[str, np.ndarray]:
    """The layer over a quantised view: (base64 PNG, scores (n, n)), ~10 KB an entry."""
    from vae.likeness import layer_png, likeness_layer

    clf, _ = state.scorer(_a.dataset)
    layer = likeness_layer(_a.model, clf, plane(_a, method), view, n=n)
    return base64.b64encode(layer_png(layer)).decode("ascii"), layer.scores


def layer_for(a: state.Active, method: str, view, n: int = LAYER_N):
    """-> (the quantised view, base64 PNG, scores (n, n)) of the layer covering `view`."""
    q = quantise_view(view)
    png, scores = _layer(a.fingerprint, method, q, n, a)
    return q, png, scores


def asked_view(key: str, map_id: str):
    """The view the map `key` last asked a layer for, while it showed `map_id` (None: none yet)."""
    v = (st.session_state.get(f"{key}_layer") or {}).get("view")
    if not isinstance(v, dict) or v.get("id") != map_id:
        return None
    try:
        (x0, x1), (y0, y1) = ((float(a), float(b)) for a, b in v["view"])
        quantise_view(((x0, x1), (y0, y1)))  # checks it
    except (KeyError, TypeError, ValueError):
        return None
    return (x0, x1), (y0, y1)


def layer_legend(share: float | None) -> str:
    """The layer's legend: a colour bar from clear to dark, what dark means and the visible share."""
    bar = ('<span style="display:inline-block;width:7em;height:0.7em;vertical-align:-0.05em;border:1px solid '
           '#ccc;border-radius:2px;background:linear-gradient(to right,rgba(20,20,35,0.78),rgba(20,20,35,0))">'
           '</span>')
    said = "" if share is None or math.isnan(share) else \
        f" <b>{share:.0%} of the visible region</b> decodes to a confident digit."
    return f'<div data-testid="ll-layer-legend" style="font-size:0.9em">not a digit {bar} a digit · ' \
           f"{LAYER_DARK}{said}</div>"


@st.fragment
def layer_channel(key: str, map_id: str, a: state.Active, method: str) -> None:
    """The layer of the view the map `key` shows (asked for by the browser when a view settles), and its
    legend. A fragment: a new view reruns only this."""
    view = asked_view(key, map_id)
    payload, share = None, None
    if view is not None:
        q, png, scores = layer_for(a, method, view)
        payload = {"id": map_id, "view": [list(q[0]), list(q[1])], "png": png}
        share = visible_share(scores, q, view)
    _channel(key=f"{key}_layer", data={"json": json.dumps({"key": key, "layer": payload})},
             on_view_change=lambda: None)
    st.markdown(layer_legend(share) if view is not None else
                layer_legend(None) + '<div style="font-size:0.85em;opacity:0.7">Painting the layer…</div>',
                unsafe_allow_html=True)


# --- projection honesty ------------------------------------------------------------------------------

@st.cache_data(show_spinner="Counting the neighbours each digit keeps…", max_entries=16)
def kept(map_key: str, _z: np.ndarray, _y: np.ndarray) -> np.ndarray:
    """Per dot, how many of its K nearest neighbours in latent space stay among its K nearest on the map,
    once per map (`map_key`): stored beside a bundled map (python -m vae.assets), else counted once (~0.5 s of
    CPU for 16-d codes) and stored beside the map in the map cache, for every later server. (N,) uint8"""
    from vae.maps.neighbours import kept_neighbours, load_kept, save_kept

    cached = cache_dir() / "maps"  # the map service's own folder (ui.state.map_service)
    stored = load_kept([MAPS_DIR, cached], map_key, _y, K)
    if stored is not None:
        return stored
    counted = kept_neighbours(_z, _y, K)
    try:
        save_kept(cached, map_key, counted, _y, K)
    except OSError:
        pass  # a read-only or full cache: counted again on the next server, nothing else changes
    return counted


def color_values(values: np.ndarray, label: str = f"of {K} latent neighbours kept on the map") -> dict:
    """The dots' colour values for map_chart(color_by=...): base64 uint8, like the labels."""
    v = np.clip(np.asarray(values), 0, K).astype(np.uint8)
    return {"values": base64.b64encode(v.tobytes()).decode("ascii"), "max": K, "label": label}


def kept_caption(values: np.ndarray) -> str:
    from vae.maps.neighbours import kept_share

    share = kept_share(values, K)
    return (f"Coloured by neighbours kept: on average **{share * K:.1f} of each digit's {K} nearest neighbours** "
            f"in latent space stay among its {K} nearest on this map ({share:.0%}). " + KEPT_MEANS)
