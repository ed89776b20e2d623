"""Helpers of the Denoising page: which models denoise, which test digits are shown, the corrupted digits and
each model's reconstructions (cached per model fingerprint), the rows of pictures and the error chart.

The numbers are vae.denoise's (error = mean squared pixel error against the clean digit); this module
caches them (`st.cache_data`, keyed by fingerprints and settings) and draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
# plotly looks for pandas in sys.modules without waiting for an import in progress (see ui/explore.py)
import pandas  # noqa: F401
import plotly.graph_objects as go
import streamlit as st

from ui import state
from vae.denoise import MAX_LEVEL, NOISY, corrupt, digit_errors, error_sweep, is_denoising, reconstruct
from vae.images import image_grid
from vae.models import AutoEncoder
from vae.ownership import Entry

BUNDLED_DENOISER = "dae-16d"
N_SHOWN = 8  # test digits in the row of pictures
N_SWEEP = 500  # test digits averaged for each point of the chart (a fixed random choice, seed 0)
SWEEP_LEVELS = 21  # points of the chart, from no noise to the kind's maximum
STEP = {"gaussian": 0.05, "salt_pepper": 0.025}  # the slider's step
DEFAULT_LEVEL = {"gaussian": 0.5, "salt_pepper": 0.2}
LEVEL_LABEL = {"gaussian": "Noise strength σ", "salt_pepper": "Share of pixels flipped"}
LEVEL_HELP = {"gaussian": "Every pixel gets σ times a random number from N(0, 1) added, then is clipped to the "
                          "range from black (0) to white (1). σ = 0 leaves the digits as they are.",
              "salt_pepper": "This share of the pixels, picked at random, is set to white (salt) or black "
                             "(pepper), half each. 0 leaves the digits as they are."}
COLORS = {NOISY: "#8C8C8C", "active": "#4C78A8", "denoiser": "#F58518"}


def denoisers(entries: list[Entry], dataset: str) -> list[str]:
    """Ids of the library's denoising models (trained with input noise above 0) for `dataset`, the bundled
    one first."""
    ids = [e.id for e in entries if is_denoising(e.config) and e.meta.get("dataset", "mnist") == dataset]
    return sorted(ids, key=lambda i: i != BUNDLED_DENOISER)


def shown_digits(n_test: int, seed: int, n: int = N_SHOWN) -> tuple[int, ...]:
    """`n` different test digits picked at random under `seed` (each press of "New digits" is a new seed)."""
    rng = np.random.default_rng([int(seed), 17])
    return tuple(int(i) for i in rng.choice(n_test, size=min(n, n_test), replace=False))


def sweep_digits(n_test: int) -> np.ndarray:
    """The chart's test digits: N_SWEEP of them at random (seed 0), sorted. (N_SWEEP,)"""
    return np.sort(np.random.default_rng(0).choice(n_test, min(N_SWEEP, n_test), replace=False))


@st.cache_data(show_spinner=False, max_entries=64)
def noisy_digits(dataset: str, indices: tuple[int, ...], kind: str, level: float, seed: int):
    """The clean test digits and their corrupted copies. ((K, 28, 28), (K, 28, 28)) in [0, 1]"""
    x = state.test_data(dataset).x_test[list(indices)]  # (K, 28, 28) uint8
    clean = x.numpy().astype(np.float32) / 255.0
    return clean, corrupt(clean, kind, level, seed)


@st.cache_data(show_spinner=False, max_entries=128)
def _recons(fingerprint: str, dataset: str, indices: tuple[int, ...], kind: str, level: float, seed: int,
            _model: AutoEncoder):
    clean, noisy = noisy_digits(dataset, indices, kind, level, seed)
    x_hat = reconstruct(_model, noisy)
    return x_hat, digit_errors(x_hat, clean)


def recons(a: state.Active, dataset: str, indices, kind: str, level: float, seed: int):
    """The model's reconstructions of the corrupted digits and their errors against the clean ones.
    ((K, 28, 28), (K,))"""
    return _recons(a.fingerprint, dataset, tuple(indices), kind, float(level), int(seed), a.model)


@st.cache_data(show_spinner=False, max_entries=8)
def noisy_sweep(dataset: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The noise levels of the chart and the noisy input's own mean error at each. ((L,), (L,))"""
    x = state.test_data(dataset).x_test
    s = error_sweep({}, x[sweep_digits(len(x))], kind, _levels(kind), seed=0)
    return s.levels, s.errors[NOISY]


@st.cache_data(show_spinner=False, max_entries=32)
def _sweep(fingerprint: str, dataset: str, kind: str, _model: AutoEncoder) -> np.ndarray:
    x = state.test_data(dataset).x_test
    return error_sweep({"model": _model}, x[sweep_digits(len(x))], kind, _levels(kind), seed=0).errors["model"]


def sweep(a: state.Active, dataset: str, kind: str) -> np.ndarray:
    """The model's mean error against the clean digits at each of the chart's levels. (L,)"""
    return _sweep(a.fingerprint, dataset, kind, a.model)


def _levels(kind: str) -> np.ndarray:
    return np.linspace(0.0, MAX_LEVEL[kind], SWEEP_LEVELS).round(6)


# --- drawing --------------------------------------------------------------------------------------

@dataclass
class Row:
    """One row of pictures: what it is, its digits, and each digit's error against the clean one (None for
    the clean digits themselves)."""

    key: str  # "clean", "noisy", "active", "denoiser": the row's container is .st-key-denoise_row_<key>
    title: str
    images: np.ndarray  # (K, 28, 28)
    errors: np.ndarray | None = None  # (K,)
    note: str = ""  # a second line under the title (the model's name)


def error_text(e: float) -> str:
    return f"{e:.3f}"


def rows(rows: list[Row], scale: int = 3) -> None:
    """Each row: its title and mean error on the left, its digits (each with its error below) on the right."""
    for row in rows:
        left, right = st.container(key=f"denoise_row_{row.key}").columns([1.3, 8], vertical_alignment="center")
        left.markdown(f"**{row.title}**")
        if row.note:
            left.caption(row.note)  # a model name: the caller passes it through ui.text.plain
        if row.errors is not None:
            left.caption(f"error {error_text(float(np.mean(row.errors)))} on average")
        pictures = [image_grid(img[None], cols=1, scale=scale, pad=0) for img in row.images]
        captions = None if row.errors is None else [f"error {error_text(e)}" for e in row.errors]
        right.image(pictures, width=28 * scale, caption=captions)


def chart(levels: np.ndarray, lines: dict[str, tuple[str, np.ndarray]], kind: str, level: float,
          height: int = 360) -> go.Figure:
    """Error against the clean digits over the noise levels, one line per {key: (name, errors)}, coloured by
    key (NOISY, "active", "denoiser"), the current level marked."""
    fig = go.Figure()
    for key, (name, errors) in lines.items():
        dash = "dot" if key == NOISY else "solid"
        fig.add_trace(go.Scatter(
            x=levels, y=errors, mode="lines+markers", name=name, marker=dict(size=5),
            line=dict(color=COLORS.get(key, "#333333"), dash=dash, width=2.5),
            hovertemplate="%{y:.3f}"))
    fig.add_vline(x=level, line=dict(color="#555555", dash="dash", width=1.5),
                  annotation_text="now", annotation_position="top")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),  # below: "now" is above
                      xaxis=dict(title=LEVEL_LABEL[kind], range=[-0.01 * MAX_LEVEL[kind], 1.01 * MAX_LEVEL[kind]]),
                      yaxis=dict(title="error against the clean digit", rangemode="tozero"))
    return fig
