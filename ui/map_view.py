"""The Latent map page's widgets, figures and cached pictures (rendering only; numbers from `vae`).

    method, params = map_view.controls(latent_dim, link)   # kept in the address (ui.links)
    job = map_view.request(a, z, method, params)     # state.map_service(), briefly awaited if fast
    map_view.live_map(a, method, params, labels, names)   # while a slow map computes

    map_view.toggles(a, method)                      # -> (layer on, colour by neighbours kept)
    map_view.point_panel(a, method, z, y, point, names)   # the decoded clicked point, with "send" buttons

The finished map itself is ui/map_canvas (a 2-D canvas, ~70 KB for 10,000 digits); its hover card is
ui/hover_card; its layer and honesty colouring ui/map_layers.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
from PIL import Image

from ui import links, map_layers, state
from ui.figures import DIGIT_COLORS
from vae.images import image_grid, png_bytes, scatter_png
from vae.latent import decode, manifold_codes, manifold_region
from vae.maps.points import map_csv
from vae.maps.projection import FAST_METHODS, METHOD_LABELS, default_params
from vae.maps.service import MapJob

if TYPE_CHECKING:
    from ui.links import Link
    from vae.models import AutoEncoder

MAP_HEIGHT = 560
GRID_N = 20
PICKS_SHOWN = 24
MAX_PICKS = 500  # what ui.state.set_picks keeps
LIVE_POLL_S = 1.0  # the live view's redraw interval while a slow map computes
LIVE_WAIT_S = 0.6  # how long each redraw then waits for the map to end, so it shows without delay
LIVE_END_WAIT_S = 1.5  # the same wait once the map is nearly done (its last progress report is in)
NEARLY_DONE = 0.8
FAST_WAIT_S = 10.0  # the longest a page waits for a native or PCA map another session is computing

ABOUT = {
    "native": "The model's own latent plane: each axis is one latent dimension, so distances are real distances "
              "between codes.",
    "pca": "PCA: the flat view that keeps the most spread of the codes. Distances are faithful, but clusters that "
           "differ along the hidden dimensions can overlap.",
    "tsne": "t-SNE: keeps each digit's nearest neighbours together. Cluster sizes and the gaps between clusters "
            "mean little; which dots sit together means a lot.",
    "umap": "UMAP: like t-SNE it keeps neighbours together, and it keeps a little more of the global layout. "
            "Gaps and sizes are still not distances.",
}


def methods_for(latent_dim: int) -> list[str]:
    return (["native"] if latent_dim <= 2 else []) + ["pca", "tsne", "umap"]


PERPLEXITIES = [5, 10, 20, 30, 50, 100]
NEIGHBOURS = [5, 10, 15, 30, 50, 100]
MIN_DISTS = [0.0, 0.05, 0.1, 0.25, 0.5, 0.8, 0.99]


def controls(latent_dim: int, link: Link) -> tuple[str, dict]:
    """Method selector and its main parameters, kept in the page's address (`link`).
    -> (method, params) in the map service's key format."""
    options = methods_for(latent_dim)
    c1, c2, c3 = st.columns([2.2, 1, 1], vertical_alignment="bottom")
    # One key per kind of model, so switching from a 2-D to a 16-D model never keeps "native".
    key = f"map_method_{'plane' if latent_dim <= 2 else 'proj'}"
    link.field("method", key, links.choice(options), options[0] if latent_dim <= 2 else "tsne", options)
    method = c1.radio("Map", options, format_func=METHOD_LABELS.get, horizontal=True, key=key,
                      help="How the codes are laid out on the page. Native and PCA are instant; t-SNE and UMAP "
                           "take seconds the first time and are then kept on disk.")
    params = default_params(method)
    if method == "tsne":
        link.field("perplexity", "map_perplexity", links.choice(PERPLEXITIES), 30, PERPLEXITIES)
        params["perplexity"] = float(c2.select_slider(
            "Perplexity", PERPLEXITIES, key="map_perplexity",
            help="Roughly how many neighbours each digit tries to keep close. Small: many tight clumps; "
                 "large: smoother, more global layout."))
    elif method == "umap":
        link.field("n_neighbors", "map_n_neighbors", links.choice(NEIGHBOURS), 15, NEIGHBOURS)
        link.field("min_dist", "map_min_dist", links.choice(MIN_DISTS), 0.1, MIN_DISTS)
        params["n_neighbors"] = int(c2.select_slider(
            "Neighbours", NEIGHBOURS, key="map_n_neighbors",
            help="How many neighbours define each digit's surroundings. Small: local detail; large: global shape."))
        params["min_dist"] = round(float(c3.select_slider(
            "Min. distance", MIN_DISTS, key="map_min_dist",
            help="How tightly UMAP may pack dots. Small: dense clumps; large: evenly spread.")), 2)
    link.publish({"method": method, **params})
    return method, params


def axis_titles(method: str, latent_dim: int) -> tuple[str, str]:
    if method == "native":
        return ("z₁", "z₂") if latent_dim >= 2 else ("z₁", "(none: a 1-d code)")
    name = METHOD_LABELS[method].replace("Native latent plane", "z")
    return f"{name} 1", f"{name} 2"


# --- cached pictures -------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=16)
def csv_text(map_key: str, _y: np.ndarray, _labels: np.ndarray) -> str:
    """The map's coordinates as CSV, made once per map (`map_key`) rather than on every rerun."""
    return map_csv(_y, _labels)


@st.cache_data(show_spinner=False, max_entries=16)
def grid_png(fingerprint: str, _grid) -> bytes:
    """The manifold grid as PNG bytes, once per model."""
    return png_bytes(_grid)


def pca_preview(a: state.Active) -> np.ndarray:
    """The instant PCA view shown while a slower map computes: the map service's PCA map, which a
    model's warm-up has usually made already. (N, 2)"""
    return request(a, state.active_codes(a), "pca", default_params("pca")).embedding


@st.cache_data(show_spinner=False, max_entries=32)
def _manifold(fingerprint: str, region, latent_dim: int, probabilistic: bool, n: int, _model: AutoEncoder):
    images = decode(_model, manifold_codes(n, region, latent_dim, probabilistic))
    return image_grid(images, cols=n, scale=1, pad=0)


def manifold(a: state.Active, z: np.ndarray, n: int = GRID_N) -> tuple[Image.Image, tuple]:
    """The decoded grid over the region of the native plane (top row = highest z₂). -> (image, region)"""
    probabilistic = a.config.has_prior
    region = manifold_region(z[:, :2], probabilistic)
    region = tuple(tuple(round(v, 6) for v in r) for r in region)
    return _manifold(a.fingerprint, region, a.config.latent_dim, probabilistic, n, a.model), region


@st.cache_data(show_spinner=False, max_entries=64)
def _picked(fingerprint: str, dataset: str, indices: tuple[int, ...], _model: AutoEncoder):
    x = state.test_data(dataset).x_test[list(indices)].numpy().astype(np.float32) / 255.0
    z = state.codes(fingerprint, dataset, _model)[0][list(indices)]
    return x, decode(_model, z)


def picked_images(a: state.Active, indices) -> tuple[np.ndarray, np.ndarray]:
    """Originals and reconstructions (from the posterior mean) of picked digits. ((K,28,28), (K,28,28))"""
    return _picked(a.fingerprint, a.dataset, tuple(int(i) for i in indices), a.model)


# --- the map while it computes ---------------------------------------------------------------------

def request(a: state.Active, z: np.ndarray, method: str, params: dict) -> MapJob:
    """The map job from the shared map service. Native and PCA maps (milliseconds) are computed on
    the thread that first asks for them, so they are done here, or a moment later when another
    session asked first: they never show the live view."""
    job = state.map_service().request(a.fingerprint, z, method, params)
    if method in FAST_METHODS:
        job.wait(FAST_WAIT_S)
    return job


def progress_text(job, label: str) -> str:
    elapsed = f"{time.perf_counter() - job.started:.1f} s" if job.started else ""
    if job.status == "queued":
        return f"{label} is waiting for another map to finish…"
    if job.elsewhere:
        return f"{label} is being computed by another server of this class: {job.progress:.0%} done"
    if job.method == "tsne" and job.progress > 0:
        return f"{label}: {job.progress:.0%} of the optimisation · {elapsed}"
    if job.method == "tsne":
        return f"{label}: finding each digit's neighbours · {elapsed}"
    if job.method == "umap":
        return (f"{label} is computing · {elapsed} (it shows no intermediate picture; the first UMAP after a "
                "server start also compiles its code, once)")
    return f"{label} is computing · {elapsed}"


@st.fragment(run_every=LIVE_POLL_S)
def live_map(a: state.Active, method: str, params: dict, labels: np.ndarray, class_names: list[str]) -> None:
    """Poll the map job once a second and draw what there is: t-SNE's embedding as it forms, else the
    PCA view. When the job ends, rerun the page, which then draws the finished, pickable map.

    While it forms, the map is a picture (a PNG drawn by vae.images.scatter_png in tens of
    milliseconds): the dots still move, so there is nothing to hover or pick yet, and a picture
    costs the browser only a decode while the map it waits for needs the CPU."""
    job = state.map_service().request(a.fingerprint, state.active_codes(a), method, params)
    if job.status in ("done", "error"):
        st.rerun()
    label = METHOD_LABELS[method]
    st.progress(min(max(job.progress, 0.02), 1.0), text=progress_text(job, label))
    partial = job.embedding  # read once: the worker thread replaces it every few iterations
    if partial is not None:
        png = _live_png(f"{job.key}@{job.progress:.4f}@{id(partial)}", partial, labels)
        caption = (f"{label} as it forms: all {len(partial):,} digits, redrawn as the optimisation goes on. "
                   "Hovering and picking digits work once it is done.")
    else:
        png = _live_png(f"{a.fingerprint}-pca-preview", pca_preview(a), labels)
        caption = (f"Meanwhile, the PCA view of all {len(labels):,} digits (instant). {label} replaces it when "
                   "it is ready; hovering and picking digits work then.")
    with st.container(key="map_live"):
        st.markdown(legend_html(class_names), unsafe_allow_html=True)
        st.image(png, width="stretch")
        st.caption(caption)
    # Then watch the job a little longer than a poll would: a map that ends meanwhile is drawn at
    # once rather than up to a second later (the next poll). Short of the next poll, so a
    # click during the live view waits at most this long; only in the last stretch (t-SNE's last
    # progress report is in: a fraction of a second to go) it waits through to the end, so the
    # finished map never sits unseen between two polls.
    if job.wait(LIVE_END_WAIT_S if job.progress >= NEARLY_DONE else LIVE_WAIT_S):
        st.rerun()


def legend_html(class_names: list[str]) -> str:
    """The chart's legend as a line of coloured dots, for the map drawn as a picture."""
    items = "".join(f'<span style="margin-right:0.9em;white-space:nowrap"><span style="color:'
                    f'{DIGIT_COLORS[c % len(DIGIT_COLORS)]};font-size:1.2em">&#9679;</span> {html.escape(name)}</span>'
                    for c, name in enumerate(class_names))
    return f'<div data-testid="ll-live-legend" style="font-size:0.9em">{items}</div>'


@st.cache_data(show_spinner=False, max_entries=4)
def _live_png(version: str, _y: np.ndarray, _labels: np.ndarray) -> bytes:
    """The live view's picture, drawn once per intermediate embedding (`version`), not on every poll."""
    return scatter_png(_y, _labels, DIGIT_COLORS, size=(1200, MAP_HEIGHT))


# --- the layer and honesty toggles, the clicked point --------------------------------------------------

def kept_offered(method: str, latent_dim: int) -> bool:
    """Colouring by neighbours kept: for t-SNE and UMAP, and PCA where it drops dimensions."""
    return method in ("tsne", "umap") or (method == "pca" and latent_dim > 2)


def toggles(a: state.Active, method: str, link: Link) -> tuple[bool, bool]:
    """The map's two optional views, kept in the page's address (`link`).
    -> (digit-likeness layer on, colour by neighbours kept)"""
    c1, c2 = st.columns(2)
    layer = False
    if method in map_layers.EXACT:
        clf, why = state.scorer(a.dataset)
        if clf is None:
            c1.caption(why)
        else:
            layer = c1.toggle("Show where it decodes to a digit", key=link.field("layer", "map_layer", links.flag(), False),
                              help="Paints the map's background by how digit-like the decoder's output is at each "
                                   "point of the visible region (zoom in for detail). " + map_layers.LAYER_DARK)
    else:
        c1.caption(map_layers.NOT_OFFERED)
    kept = False
    if kept_offered(method, a.config.latent_dim):
        kept = c2.toggle("Colour by neighbours kept", key=link.field("kept", "map_kept", links.flag(), False),
                         help=f"Colours each digit by how many of its {map_layers.K} nearest neighbours in latent "
                              f"space are also among its {map_layers.K} nearest on this map: where a projection "
                              "keeps neighbourhoods and where it tears them apart.")
    link.publish({"layer": True if layer else None, "kept": True if kept else None})
    return layer, kept


def _code_text(z: np.ndarray, shown: int = 4) -> str:
    parts = ", ".join(f"{v:.2f}" for v in z[:shown])
    return f"({parts}{', …' if len(z) > shown else ''})"


def how_exact(method: str, latent_dim: int) -> str:
    if method == "native":
        return ("On the model's own plane the point *is* the code: this is exactly what the decoder draws there."
                if latent_dim <= 2 else "")
    if method == "pca":
        return ("Exact: the point of the PCA plane, mapped back to latent space by PCA's inverse (the "
                "dimensions the map hides sit at the codes' average).")
    return (f"Approximate: {METHOD_LABELS[method]} has no way back from the map to a code, so this is the "
            "distance-weighted mean of the codes of the 8 nearest dots on the map.")


def point_panel(a: state.Active, method: str, z: np.ndarray, y: np.ndarray, point, class_names: list[str]) -> None:
    """The clicked point of empty space: its code, the decoder's image there, the classifier's verdict, and
    buttons that send the code to Sliders or Interpolate."""
    code, exact = map_layers.point_code(a, method, z, y, point)
    image, probs = map_layers.decoded_point(a, code)
    box = st.container(key="map_point")
    box.markdown(f"**The point you clicked** ({point[0]:.2f}, {point[1]:.2f})")
    c1, c2 = box.columns([1, 4], vertical_alignment="top")
    c1.image(image_grid(image[None], cols=1, scale=4), width=112)
    c2.markdown(f"Code z = {_code_text(code)}. " + map_layers.verdict(probs, class_names))
    c2.caption(how_exact(method, a.config.latent_dim) + " Double-click the map to clear it.")
    label = f"{'about ' if not exact else ''}the {METHOD_LABELS[method]} point ({point[0]:.2f}, {point[1]:.2f})"
    row = c2.container(horizontal=True)  # buttons as wide as their words, wrapping where the column is narrow
    if row.button("Start Sliders here", key="map_point_sliders", icon=":material/tune:"):
        state.set_sent_code(code, label, a.fingerprint)
        links.go("pages/sliders.py", {"start": "sent"})
    if row.button("Use as an Interpolate endpoint", key="map_point_interpolate", icon=":material/timeline:"):
        state.set_sent_code(code, label, a.fingerprint)
        links.go("pages/interpolate.py", {"mode": "sent"})
