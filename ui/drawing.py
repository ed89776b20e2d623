"""The Draw page's helpers: the pad read into an MNIST-style digit, what a model makes of it, its place on
a map, the same drawing in several models (AE vs VAE), and a sent code as a start on Sliders and Interpolate.

    x, problem = drawing.read_pad("draw_pad")       # the prepared (28, 28) digit, or a sentence, or (None, None)
    r = drawing.read(a, x, clf)                      # its code, its reconstruction, the classifier's verdicts
    spot = drawing.place(a, codes, r.z, method, params)   # where it lands on that map, exactly or approximately
    drawing.show_in_models(models, "compare_draw")  # the session's drawing in each model, side by side
    sent = drawing.sent_for(a)                       # (z, label) sent to this model's pages, or None

The session keeps its last drawing (strokes and the prepared digit as 784 bytes) in st.session_state,
so the pad shows it again when the page is opened again, and AE vs VAE can show it in both models.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ui import draw_pad, links, map_view, state
from ui.text import plain
from vae.classifier import DigitClassifier, predict_proba
from vae.compare import PathReport, path_report
from vae.drawing import DrawingError, clean_strokes, prepare_strokes
from vae.images import image_grid, to_uint8
from vae.latent import decode, encode
from vae.maps.projection import METHOD_LABELS, NativeProjection, default_params, make_projection
from vae.maps.service import MapJob
from vae.models import AutoEncoder

DRAWING = "draw_drawing"  # session_state: {"strokes", "size", "digest", "image": 784 bytes or None, "problem"}
LABEL = "your drawing"  # what a sent drawing is called on Sliders and Interpolate
K_NEAREST = 8
APPROXIMATE = ("placed among its nearest codes: {method} has no exact way to add a point, so the drawing sits at "
               "the distance-weighted mean of where its {k} nearest test codes (in latent space) are on the map.")


# --- the pad and the session's drawing --------------------------------------------------------------

def _digest(report: dict) -> str:
    return hashlib.sha1(json.dumps([report["size"], report["strokes"]]).encode()).hexdigest()


def _take(report: dict) -> dict | None:
    """Read a report of the pad into the session's drawing (None: the pad was cleared)."""
    if not report["strokes"]:
        return None
    held = {"strokes": [], "size": 280, "digest": _digest(report), "image": None, "problem": None}
    try:
        clean = clean_strokes(report["strokes"], report["size"])
        held["size"] = int(round(report["size"]))
        held["strokes"] = [[[round(float(x), 1), round(float(y), 1)] for x, y in s] for s in clean]
        held["image"] = to_uint8(prepare_strokes(held["strokes"], held["size"])).tobytes()
    except DrawingError as e:
        held["problem"] = str(e)
    return held


def read_pad(key: str = "draw_pad") -> tuple[np.ndarray | None, str | None]:
    """Mount the pad and read it. -> (the prepared digit (28, 28) in [0, 1], None), (None, the sentence
    saying why it cannot be read), or (None, None) when nothing is drawn."""
    held = st.session_state.get(DRAWING)
    report = draw_pad.draw_pad(key, init=held["strokes"] if held else None)
    if report is not None and (held is None or _digest(report) != held["digest"]):
        held = _take(report)
        if held is None:
            st.session_state.pop(DRAWING, None)
        else:
            st.session_state[DRAWING] = held
    if held is None:
        return None, None
    return (None, held["problem"]) if held["image"] is None else (held_image(), None)


def held_image() -> np.ndarray | None:
    """The session's last drawing, prepared (28, 28) in [0, 1], or None."""
    held = st.session_state.get(DRAWING)
    if not held or not held.get("image"):
        return None
    return np.frombuffer(held["image"], np.uint8).reshape(28, 28).astype(np.float32) / 255.0


# --- what a model makes of it ------------------------------------------------------------------------

@dataclass
class Reading:
    """One drawing in one model."""

    x: np.ndarray  # (28, 28) the prepared drawing
    z: np.ndarray  # (D,) its code (the posterior mean)
    x_hat: np.ndarray  # (28, 28) the reconstruction
    probs: np.ndarray | None  # (2, 10) the classifier on the drawing and on the reconstruction; None without one

    def verdict(self, which: int = 0) -> tuple[int, float] | None:
        """(class, probability) for the drawing (0) or the reconstruction (1)."""
        if self.probs is None:
            return None
        p = self.probs[which]
        return int(p.argmax()), float(p.max())


def read(model: AutoEncoder, x: np.ndarray, clf: DigitClassifier | None) -> Reading:
    """Encode the prepared drawing (as uint8, the form of an MNIST digit), decode its code, score both."""
    u8 = torch.from_numpy(to_uint8(x)[None])  # (1, 28, 28)
    z = encode(model, u8)[0]
    x_hat = decode(model, z[None])[0]
    probs = None if clf is None else predict_proba(clf, np.stack([u8[0].numpy() / 255.0, x_hat]).astype(np.float32))
    return Reading(u8[0].numpy().astype(np.float32) / 255.0, z, x_hat, probs)


def nearest_digits(codes: np.ndarray, z: np.ndarray, k: int = K_NEAREST) -> np.ndarray:
    """The k test digits whose codes are nearest to z, nearest first. (k,)"""
    from vae.maps import neighbours  # scikit-learn: loaded by the pages that place codes, not by Sliders

    return neighbours.nearest(codes, z[None], k)[0]


def code_text(z: np.ndarray, shown: int = 8) -> str:
    head = ", ".join(f"{v:.2f}" for v in z[:shown])
    return f"({head}{', …' if len(z) > shown else ''})" + (f", {len(z)} numbers" if len(z) > shown else "")


def verdict_text(v: tuple[int, float] | None) -> str:
    """The classifier's verdict in words (its classes are the digits 0 to 9)."""
    return "" if v is None else f"a {v[0]} ({v[1]:.0%} sure)"


# --- its place on a map -------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=16)
def _pca(fingerprint: str, dataset: str, _model: AutoEncoder):
    """PCA fitted to the model's test codes: the same fit (the same numbers) as the map service's PCA map."""
    return make_projection("pca").fit(state.codes(fingerprint, dataset, _model)[0])


@dataclass
class Spot:
    job: MapJob  # the map it is placed on
    point: np.ndarray | None  # (2,) on the map; None while the map is not ready
    exact: bool
    note: str  # how it was placed, a sentence


def place(a: state.Active, codes: np.ndarray, z: np.ndarray, method: str, params: dict) -> Spot:
    """Where the code z lands on the map `method` of this model: the native plane and PCA exactly (PCA's own
    transform), t-SNE and UMAP among its nearest codes (vae.maps.neighbours.place)."""
    job = map_view.request(a, codes, method, params)
    if job.status != "done":
        return Spot(job, None, False, f"The {METHOD_LABELS[method]} map is still being computed.")
    z2 = np.asarray(z, np.float32)[None]
    if method == "native":
        return Spot(job, NativeProjection().transform(z2)[0], True, "Placed exactly: the map's axes are the code's "
                    "own numbers" + (" (the first two)." if a.config.latent_dim > 2 else "."))
    if method == "pca":
        return Spot(job, _pca(a.fingerprint, a.dataset, a.model).transform(z2)[0], True,
                    "Placed exactly: PCA projects the drawing's code as it projects every test code.")
    from vae.maps import neighbours

    point = neighbours.place(codes, job.embedding, z2, K_NEAREST)[0]
    return Spot(job, point, False, "Approximately " + APPROXIMATE.format(method=METHOD_LABELS[method], k=K_NEAREST))


def map_choice(a: state.Active, link: links.Link) -> tuple[str, dict]:
    """The map the drawing is placed on: the Latent map page's method (and its settings) where this session
    has one, else native for a 2-d model and PCA otherwise; a radio changes it. -> (method, params)"""
    options = map_view.methods_for(a.config.latent_dim)
    seen = links.last("map")
    try:
        default = links.parse_choice(seen.get("method", ""), options)
    except ValueError:
        default = options[0] if a.config.latent_dim <= 2 else "pca"
    key = f"draw_method_{'plane' if a.config.latent_dim <= 2 else 'proj'}"
    method = st.radio("Place it on the map", options, format_func=METHOD_LABELS.get, horizontal=True,
                      key=link.field("method", key, links.choice(options), default, options),
                      help="The same maps as on the Latent map page (t-SNE and UMAP with its settings there).")
    params = default_params(method)
    wanted = {"perplexity": map_view.PERPLEXITIES, "n_neighbors": map_view.NEIGHBOURS, "min_dist": map_view.MIN_DISTS}
    for name, allowed in wanted.items():
        if name in params and name in seen:
            try:
                params[name] = type(params[name])(links.parse_choice(seen[name], allowed))
            except ValueError:
                pass
    return method, params


@st.fragment(run_every=map_view.LIVE_POLL_S)
def wait_for_map(a: state.Active, codes: np.ndarray, method: str, params: dict) -> None:
    """While a slow map computes: its progress, once a second; the page runs again when it is done."""
    job = state.map_service().request(a.fingerprint, codes, method, params)
    if job.status in ("done", "error"):
        st.rerun()
    st.progress(min(max(job.progress, 0.02), 1.0), text=map_view.progress_text(job, METHOD_LABELS[method]) +
                " · your drawing is placed on it when it is ready")
    if job.wait(map_view.LIVE_WAIT_S):
        st.rerun()


# --- the same drawing in several models (AE vs VAE) ---------------------------------------------------

def show_in_models(models: list[state.Active], key: str) -> None:
    """The session's drawing encoded and reconstructed by each model, side by side with the classifier's
    verdicts; a link to the Draw page where there is no drawing yet."""
    x = held_image()
    if x is None:
        st.caption("Draw a digit on the Draw page, and it shows here as both models read it.")
        st.page_link("pages/draw.py", label="Draw a digit", icon=":material/draw:")
        return
    clf, no_scores = state.scorer(models[0].dataset)
    cols = st.columns(1 + len(models))
    with cols[0].container(key=f"{key}_input"):
        st.image(image_grid(x[None], cols=1, scale=4), width=120)
        st.caption("Your drawing, as the models get it (28 × 28, like an MNIST digit)")
    for i, (col, a) in enumerate(zip(cols[1:], models)):
        r = read(a.model, x, clf)
        with col.container(key=f"{key}_model_{i}"):
            st.image(image_grid(r.x_hat[None], cols=1, scale=4), width=120)
            st.caption(plain(f"{a.entry.name}: its reconstruction"
                             + (f", read as {verdict_text(r.verdict(1))}" if r.probs is not None
                                else "") + f". Code {code_text(r.z, 4)}."))
    if clf is None:
        st.caption(no_scores)
    st.page_link("pages/draw.py", label="Draw another digit", icon=":material/draw:")


# --- a sent code on Sliders and Interpolate -----------------------------------------------------------

def sent_for(a: state.Active, say: bool = True) -> tuple[np.ndarray, str] | None:
    """The code sent to this model's pages (ui.state.sent_code) as (z (D,), label), or None: none was sent,
    or it belongs to another model (then, with `say`, a caption says so)."""
    sent = state.sent_code()
    if sent is None:
        return None
    z, label, fingerprint = sent
    if fingerprint != a.fingerprint or z.shape != (a.config.latent_dim,):
        if say:
            st.caption(f"The code sent from “{plain(label)}” belongs to another model, so it is not offered here. "
                       "Send it again with this model active.")
        return None
    return z, label


@st.cache_data(show_spinner=False, max_entries=32)
def _sent_path(fingerprint: str, z0_key: str, i1: int, steps: int, method: str, scored: bool, dataset: str,
               _z0: np.ndarray, _model: AutoEncoder, _clf) -> PathReport:
    z = state.codes(fingerprint, dataset, _model)[0]
    return path_report(_model, _clf if scored else None, _z0, z[i1], steps, method)


def sent_path(a: state.Active, clf, z0: np.ndarray, i1: int, steps: int, method: str) -> PathReport:
    """Interpolation from a sent code z0 to the code of test digit i1 (cached per model, code and path)."""
    z0 = np.asarray(z0, np.float32)
    return _sent_path(a.fingerprint, hashlib.sha1(z0.tobytes()).hexdigest(), int(i1), int(steps), method,
                      clf is not None, a.dataset, z0, a.model, clf)


def decoded(a: state.Active, z: np.ndarray) -> np.ndarray:
    """The decoder's image of one code. (28, 28)"""
    return decode(a.model, np.asarray(z, np.float32)[None])[0]
