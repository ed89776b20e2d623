"""Cached measurements and figures (plotly bars and histograms, the walk drawn on the canvas map) for the
Interpolate, AE vs VAE and Samples & errors pages.

The numbers come from `vae.compare` and `vae.latent`; this module only caches them per model
fingerprint and parameters (`st.cache_data`, so returning to a page is instant) and draws them.
"""

from __future__ import annotations

import numpy as np
# plotly looks for pandas in sys.modules without waiting for an import in progress, so a chart
# drawn while another thread (ui.warmup, another session) is still importing
# pandas would fail; an import statement does wait for it to finish.
import pandas  # noqa: F401
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from ui import state
from vae.images import image_grid, to_uint8
from vae.classifier import CONFIDENT, DigitClassifier, digit_confidence
from vae.compare import PathReport, map_plane, path_report
from vae.latent import decode, encode, prior_samples, reconstruction_errors
from vae.models import AutoEncoder
from vae.maps.projection import Projection

GOOD, BAD = "#2E9E4F", "#D62728"


# --- the classifier (state.scorer gives it, or the reason there is none) -----------------------------

def scores(clf: DigitClassifier, images: np.ndarray) -> np.ndarray:
    """How much each image looks like a digit: the classifier's top class probability. (N,)"""
    return digit_confidence(clf, images)


# --- cached computations (keyed by fingerprint and parameters; `_`-arguments are not hashed) --------

@st.cache_data(show_spinner=False, max_entries=32)
def _plane(fingerprint: str, dataset: str, _model: AutoEncoder) -> tuple[Projection, np.ndarray]:
    return map_plane(state.codes(fingerprint, dataset, _model)[0])


def plane(a: state.Active) -> tuple[Projection, np.ndarray]:
    """The model's map plane (native for 2-D, PCA otherwise) and the test codes in it. (plane, (N, 2))"""
    return _plane(a.fingerprint, a.dataset, a.model)


@st.cache_data(show_spinner=False, max_entries=128)
def _path(fingerprint: str, dataset: str, i0: int, i1: int, steps: int, method: str, scored: bool,
          _model: AutoEncoder, _clf) -> PathReport:
    z = state.codes(fingerprint, dataset, _model)[0]
    return path_report(_model, _clf if scored else None, z[i0], z[i1], steps, method)


def path(a: state.Active, clf, i0: int, i1: int, steps: int, method: str) -> PathReport:
    """Interpolation between the codes of test digits i0 and i1."""
    return _path(a.fingerprint, a.dataset, int(i0), int(i1), int(steps), method, clf is not None, a.model, clf)


@st.cache_data(show_spinner=False, max_entries=16)
def _errors(fingerprint: str, dataset: str, _model: AutoEncoder) -> np.ndarray:
    return reconstruction_errors(_model, state.test_data(dataset).x_test)


def errors(a: state.Active) -> np.ndarray:
    """Reconstruction error of every test digit, in nats. (N,)"""
    return _errors(a.fingerprint, a.dataset, a.model)


@st.cache_data(show_spinner=False, max_entries=64)
def _reconstructions(fingerprint: str, dataset: str, indices: tuple[int, ...], _model: AutoEncoder):
    x = state.test_data(dataset).x_test[list(indices)]  # (K, 28, 28) uint8
    return x.numpy().astype(np.float32) / 255.0, decode(_model, encode(_model, x))


def reconstructions(a: state.Active, indices) -> tuple[np.ndarray, np.ndarray]:
    """Originals and reconstructions of the given test digits. ((K, 28, 28), (K, 28, 28))"""
    return _reconstructions(a.fingerprint, a.dataset, tuple(int(i) for i in indices), a.model)


@st.cache_data(show_spinner=False, max_entries=64)
def _prior_images(fingerprint: str, n: int, seed: int, _model: AutoEncoder) -> np.ndarray:
    return decode(_model, prior_samples(n, _model.latent_dim, seed=seed))


def prior_images(a: state.Active, n: int, seed: int) -> np.ndarray:
    return _prior_images(a.fingerprint, int(n), int(seed), a.model)


def farthest_pair(z: np.ndarray, indices) -> tuple[int, int]:
    """The two of `indices` (two or more test-set indices) whose codes in `z` (N, D) are farthest apart,
    by Euclidean distance in latent space, in the order of `indices`: the most different pair."""
    idx = np.asarray(list(indices), dtype=np.int64)
    c = np.asarray(z, dtype=np.float64)[idx]  # (K, D)
    sq = (c * c).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (c @ c.T)  # (K, K) squared distances
    np.fill_diagonal(d2, -np.inf)  # never a digit with itself, even when all codes are the same
    a, b = sorted(np.unravel_index(int(np.argmax(d2)), d2.shape))
    return int(idx[a]), int(idx[b])


def share_delta(share: float, other: float, lower_is_better: bool = False) -> dict:
    """st.metric keyword arguments for the difference of two shares, in percentage points (grey when equal;
    red when higher with `lower_is_better`, as for the empty share)."""
    pts = round(100 * (share - other))
    if pts == 0:
        return dict(delta="±0 pts", delta_color="off", delta_arrow="off")
    return dict(delta=f"{pts:+d} pts", delta_color="inverse" if lower_is_better else "normal")


# --- images ---------------------------------------------------------------------------------------

def frames(images: np.ndarray, scale: int = 5) -> list[Image.Image]:
    """One enlarged PIL image per digit, for an animated GIF."""
    return [image_grid(img[None], cols=1, scale=scale, pad=0) for img in images]


EMPTY_EDGE = (31, 119, 180)  # the outer edge of a tile whose grid point has no test code nearby


def scored_grid(images: np.ndarray, scores: np.ndarray | None, cols: int, threshold: float = CONFIDENT,
                scale: int = 2, empty: np.ndarray | None = None) -> Image.Image:
    """A mosaic like `image_grid`, each digit framed: red where the classifier does not call it a confident digit;
    with `empty` (N,) bool, the frame's outer pixel is blue where the point is empty (no test code nearby)."""
    if scores is None and empty is None:
        return image_grid(images, cols=cols, scale=scale)
    n, f = len(images), 2
    rows = max(1, -(-n // cols))
    tiles = np.full((rows * cols, 28 + 2 * f, 28 + 2 * f, 3), 90, np.uint8)  # (R*C, 32, 32, 3) grey frames
    if scores is not None:
        tiles[:n][np.asarray(scores) < threshold] = (214, 39, 40)
    if empty is not None:
        edge = np.zeros(tiles.shape[1:3], bool)
        edge[[0, -1], :] = edge[:, [0, -1]] = True
        ei, ej = np.nonzero(edge)
        sel = np.flatnonzero(np.asarray(empty, bool))[:, None]
        tiles[sel, ei[None], ej[None]] = EMPTY_EDGE
    tiles[:n, f:-f, f:-f] = to_uint8(np.asarray(images))[..., None]
    h = 28 + 2 * f
    mosaic = tiles.reshape(rows, cols, h, h, 3).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * h, 3)
    img = Image.fromarray(np.ascontiguousarray(mosaic), mode="RGB")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def pair_images(originals: np.ndarray, recons: np.ndarray, scale: int = 3) -> list[Image.Image]:
    """Original and reconstruction side by side, one small picture per digit."""
    return [image_grid(np.stack([o, r]), cols=2, scale=scale) for o, r in zip(originals, recons)]


# --- figures --------------------------------------------------------------------------------------

def axis_names(p: Projection) -> tuple[str, str]:
    if p.name == "native":
        return "z₁", "z₂"
    ratio = p.explained_variance_ratio_
    return tuple(f"PC {i + 1} ({ratio[i]:.0%} of variance)" if i < len(ratio) else f"PC {i + 1}" for i in range(2))


def _step_colors(scores, threshold: float, n: int) -> list[str]:
    if scores is None:
        return ["#333333"] * n
    return [GOOD if s >= threshold else BAD for s in scores]


def walk(path_y: np.ndarray, scores: np.ndarray | None = None, threshold: float = CONFIDENT) -> dict:
    """An interpolation's steps as the map (ui/map_canvas) draws them over the dots: positions, a colour
    per step (green where the decoded step looks like a digit, red where not, dark without scores) and
    the text shown when a step is hovered."""
    path_y = np.asarray(path_y, dtype=float).reshape(-1, 2)
    n = len(path_y)
    text = [f"step {k + 1} of {n}" + ("" if scores is None else f" · looks like a digit: {scores[k]:.2f}")
            for k in range(n)]
    return dict(x=[round(float(v), 5) for v in path_y[:, 0]], y=[round(float(v), 5) for v in path_y[:, 1]],
                colors=_step_colors(scores, threshold, n), text=text)


def score_chart(scores: np.ndarray, threshold: float = CONFIDENT, height: int = 230) -> go.Figure:
    """Per step, how much the decoded image looks like a digit; the confident threshold drawn across."""
    n = len(scores)
    fig = go.Figure(go.Bar(
        x=np.arange(1, n + 1), y=scores, marker_color=_step_colors(scores, threshold, n),
        hovertemplate="step %{x}: %{y:.2f}<extra></extra>"))
    fig.add_hline(y=threshold, line=dict(color="#555555", dash="dash", width=1.5))  # the confident threshold
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), bargap=0.15,
                      xaxis=dict(title="step", dtick=1 if n <= 30 else None),
                      yaxis=dict(title="looks like a digit", range=[0, 1.02], tickvals=[0, 0.5, threshold, 1]))
    return fig


def error_histogram(errs: np.ndarray, cutoff: float | None = None, height: int = 280) -> go.Figure:
    """Histogram of reconstruction errors, with the worst digits' cutoff marked."""
    fig = go.Figure(go.Histogram(x=errs, nbinsx=80, marker_color="#4C78A8",
                                 hovertemplate="%{x} nats: %{y} digits<extra></extra>"))
    if cutoff is not None:
        fig.add_vline(x=cutoff, line=dict(color=BAD, dash="dash", width=1.5),
                      annotation_text="worst shown", annotation_position="top right")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      xaxis_title="reconstruction error (nats)", yaxis_title="test digits")
    return fig
