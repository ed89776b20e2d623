"""The Few labels page's helpers: what is measured for a model (its curves, the pixels', the other bundled
models'), measured once on one background lane and kept on disk, then the chart and the pictures.

The numbers come from `vae.fewlabels`. A measurement runs on the server's one few-labels thread (a
`Lane`, `st.cache_resource`): sessions asking for the same one share it, and 35 students opening the page
at once queue behind one computation instead of running 35. It is stored under the cache folder
(`fewlabels/`, ~0.35 MB each), so each model and the pixel baseline are measured once per machine; the
page waits for it with a progress bar.
"""

from __future__ import annotations

import hashlib
import html
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np
# plotly looks for pandas in sys.modules without waiting for an import in progress (see ui/explore.py).
import pandas  # noqa: F401
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from ui import state
from vae.checkpoint import CheckpointError
from vae.data import DataError
from vae.fewlabels import DRAWS, KS, FewLabels, ResultStore, few_labels, pixels, result_key
from vae.fileio import file_lock
from vae.images import image_grid
from vae.paths import cache_dir

WAIT_S = 0.25  # how often the progress bar moves while a measurement runs
SHOWN_PER_CLASS = 10  # labelled digits shown per class (the caption counts the rest)
ACTIVE_COLOR, PIXEL_COLOR = "#D62728", "#444444"
OTHER_COLORS = ["#4C78A8", "#54A24B", "#B279A2", "#9D755D", "#72B7B2", "#EECA3B"]


# --- the lane: measurements one at a time, shared by every session -------------------------------------

@dataclass
class Job:
    key: str
    future: Future | None = None
    progress: float = 0.0  # of the draws done, written by the lane's thread


class Lane:
    """Few-labels measurements on one background thread, one at a time, each measured once: a request for
    one under way (or stored) gets that one. Results go to the store; one that cannot be stored stays
    in memory."""

    def __init__(self, store: ResultStore):
        self.store = store
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fewlabels")
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def job(self, key: str) -> Job | None:
        """The measurement under way (or done, not stored) for `key`, or None."""
        with self._lock:
            job = self._jobs.get(key)
        return None if job is None or (job.future.done() and job.future.exception()) else job

    def request(self, key: str, features: np.ndarray, labels: np.ndarray) -> Job:
        with self._lock:
            job = self._jobs.get(key)
            if job is None or (job.future.done() and job.future.exception()):
                job = self._jobs[key] = Job(key)
                job.future = self._pool.submit(self._measure, job, features, labels)
        return job

    def _measure(self, job: Job, features: np.ndarray, labels: np.ndarray) -> FewLabels:
        # Under a lock file beside the result: a replica on the same shared folder measuring it already
        # (deploy/README.md) is waited for and its file read, never measured twice.
        try:
            self.store.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # no lock then (file_lock says so), and put() says it could not store the result
        with file_lock(self.store.path(job.key).with_suffix(".lock")):
            result = self.store.get(job.key)
            if result is None:
                result = few_labels(features, labels, ks_for(labels), DRAWS,
                                    progress=lambda f: setattr(job, "progress", f))
                if self.store.put(job.key, result):
                    with self._lock:
                        self._jobs.pop(job.key, None)  # from now on the store has it
        job.progress = 1.0
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def ks_for(labels: np.ndarray) -> tuple[int, ...]:
    """The numbers of labels per class measured: vae.fewlabels.KS, those that leave every class a digit."""
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    return tuple(k for k in KS if k < smallest)


@st.cache_resource(show_spinner=False, on_release=Lane.close)
def lane() -> Lane:
    return Lane(ResultStore(cache_dir() / "fewlabels"))


class _Missing(Exception):
    """Not measured yet (never cached, so a later call looks again)."""


@st.cache_data(show_spinner=False, max_entries=32)  # ~0.8 MB each
def _kept(key: str, _result: FewLabels | None = None) -> FewLabels:
    """A measurement in memory: the one given the first time, else the stored one (raises _Missing)."""
    if _result is not None:
        return _result
    result = lane().store.get(key)
    if result is None:
        raise _Missing(key)
    return result


# --- what is measured for the active model --------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """One curve: the active model, another bundled model or the pixels."""

    key: str
    name: str  # plain text: shown in the legend (escaped) and captions
    role: str  # "active", "bundled" or "pixels"
    features: Callable[[], np.ndarray] = field(compare=False, repr=False)  # (N, D), computed on demand


@st.cache_data(show_spinner=False, max_entries=8)
def _digits_hash(dataset: str) -> str:
    """The test digits' fingerprint, for the pixel baseline's key (a custom dataset's folder may change)."""
    return hashlib.blake2b(np.ascontiguousarray(state.test_data(dataset).x_test.numpy()).tobytes(),
                           digest_size=8).hexdigest()


def _model_codes(entry_id: str) -> np.ndarray:
    m = state.get_model(entry_id)
    return state.codes(m.fingerprint, m.dataset, m.model)[0]


def sources(a: state.Active, labels: np.ndarray) -> list[Source]:
    """The active model, then every other bundled model trained on the same dataset, then the pixels."""
    ks = ks_for(labels)
    out = [Source(result_key(f"{a.fingerprint}-{a.dataset}", labels, ks), a.entry.name, "active",
                  lambda: state.active_codes(a))]
    for e in state.entries():
        if e.bundled and e.id != a.entry.id and e.meta.get("dataset", "mnist") == a.dataset:
            out.append(Source(result_key(f"{e.fingerprint}-{a.dataset}", labels, ks), e.name, "bundled",
                              lambda entry_id=e.id: _model_codes(entry_id)))
    data = state.test_data(a.dataset)
    out.append(Source(result_key(f"pixels-{a.dataset}-{_digits_hash(a.dataset)}", labels, ks), "pixels", "pixels",
                      lambda: pixels(data.x_test.numpy())))
    return out


def measure(srcs: list[Source], labels: np.ndarray) -> tuple[dict[str, FewLabels], list[str]]:
    """Every source's measurement: kept ones at once, the others on the lane, with a progress bar while
    they run. -> ({key: result}, a sentence for each that failed)."""
    results, waiting, problems = {}, [], []
    for s in srcs:
        try:
            results[s.key] = _kept(s.key)
        except _Missing:
            waiting.append(s)
    if not waiting:
        return results, problems
    bar = st.progress(0.0, text="Labelling the test digits from a few labelled ones…")
    jobs = []
    for s in waiting:
        job = lane().job(s.key)
        if job is None:
            try:
                job = lane().request(s.key, s.features(), labels)
            except (CheckpointError, DataError, ValueError, RuntimeError, OSError) as e:  # its curve is left out
                problems.append(f"{s.name}: {e}")
                continue
        jobs.append((s, job))
    while jobs:
        finished = [j.future.done() for _, j in jobs]
        if all(finished):
            break
        running = next(s for (s, _), f in zip(jobs, finished) if not f)
        bar.progress(min(sum(j.progress for _, j in jobs) / len(jobs), 1.0),
                     text=f"Labelling the test digits from a few labelled ones: {running.name} "
                          f"({sum(finished) + 1} of {len(jobs)})…")
        wait([j.future for _, j in jobs if not j.future.done()], timeout=WAIT_S, return_when=FIRST_COMPLETED)
    for s, job in jobs:
        try:
            results[s.key] = _kept(s.key, job.future.result())
        except ValueError as e:
            problems.append(f"{s.name}: {e}")
    bar.empty()
    return results, problems


# --- the chart and the pictures ---------------------------------------------------------------------------

def _style(role: str, i: int) -> dict:
    if role == "active":
        return dict(color=ACTIVE_COLOR, width=3.5)
    if role == "pixels":
        return dict(color=PIXEL_COLOR, width=2.5, dash="dash")
    return dict(color=OTHER_COLORS[i % len(OTHER_COLORS)], width=1.5, dash="dot")


def legend_name(s: Source) -> str:
    name = {"active": f"{s.name}, active", "bundled": s.name, "pixels": "raw pixels (no encoder)"}[s.role]
    return html.escape(name)  # plotly reads a few HTML tags in names: a model's name is text


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def chart(curves: list[tuple[Source, FewLabels]], method: str, k: int, n_classes: int,
          height: int = 440) -> go.Figure:
    """Accuracy (%) against labels per class (log axis) for each curve of `method`: its mean over the
    draws, a band of ±1 standard deviation for the active model and the pixels (error bars for the
    others), chance and the k shown below marked."""
    fig = go.Figure()
    others = 0
    for s, r in curves:
        ks, mean, sd = np.array(r.ks), 100 * r.mean(method), 100 * r.spread(method)
        style = _style(s.role, others)
        others += s.role == "bundled"
        name = legend_name(s)
        if s.role in ("active", "pixels") and r.draws > 1:
            fig.add_trace(go.Scatter(
                x=np.concatenate([ks, ks[::-1]]), y=np.concatenate([mean + sd, (mean - sd)[::-1]]),
                mode="lines", fill="toself", fillcolor=_rgba(style["color"], 0.16), line=dict(width=0),
                hoverinfo="skip", legendgroup=s.key, showlegend=False, name=name))
        fig.add_trace(go.Scatter(
            x=ks, y=mean, mode="lines+markers", name=name, legendgroup=s.key, line=style,
            marker=dict(size=8 if s.role == "active" else 6, color=style["color"]),
            error_y=dict(type="data", array=sd, visible=s.role == "bundled", thickness=1, width=3),
            customdata=np.stack([sd, 100 * r.lowest(method), 100 * r.highest(method)], axis=1),
            hovertemplate=(f"{name}<br>%{{x}} labelled per class: %{{y:.1f}}% right<br>"
                           f"±%{{customdata[0]:.1f}} (from %{{customdata[1]:.1f}} to %{{customdata[2]:.1f}}) "
                           f"over {r.draws} draws<extra></extra>")))
    chance = 100 / n_classes
    fig.add_hline(y=chance, line=dict(color="#888888", dash="dash", width=1.2),
                  annotation_text=f"chance ({chance:.0f}%)", annotation_position="top left")
    # The k shown below, as a trace: a shape on a log axis would take log10(k) (and plotly.py's add_vline
    # places its label in data units).
    fig.add_trace(go.Scatter(x=[k, k], y=[0, 100], mode="lines", line=dict(color="#AAAAAA", width=1),
                             hoverinfo="skip", showlegend=False))
    fig.add_annotation(x=np.log10(k), y=2, text=f"{k} shown below", showarrow=False, xanchor="left",
                       yanchor="bottom", font=dict(color="#777777", size=11))
    ks = curves[0][1].ks
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=10, b=10), hovermode="closest",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        xaxis=dict(title="labelled digits per class", type="log", tickvals=list(ks), ticktext=[str(v) for v in ks],
                   range=[np.log10(ks[0]) - 0.08, np.log10(ks[-1]) + 0.08]),
        yaxis=dict(title="other test digits labelled right (%)", range=[0, 100], ticksuffix="%"))
    return fig


def examples(x_test: np.ndarray, result: FewLabels, k: int, draw: int, shown: int = SHOWN_PER_CLASS) -> Image.Image:
    """The draw's labelled digits at k per class as one picture, a column per class (sorted), its first
    `shown` digits of each class down the column. x_test: uint8 (N, 28, 28)."""
    picked = result.labelled_at(k, draw)[:, :shown]  # (C, rows)
    return image_grid(x_test[picked.T.ravel()] / 255.0, cols=len(picked), scale=3)


def confusion(labels: np.ndarray, predicted: np.ndarray, names: list[str], height: int = 380) -> go.Figure:
    """Of the digits of each class (rows) that were labelled (predicted >= 0), the share given each
    label (columns), in %: the diagonal is labelled right, the rest are the misses."""
    classes = np.unique(labels)
    scored = predicted >= 0
    counts = np.zeros((len(classes), len(classes)), np.int64)
    np.add.at(counts, (np.searchsorted(classes, labels[scored]), np.searchsorted(classes, predicted[scored])), 1)
    share = 100 * counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ticks = [html.escape(names[int(c)]) for c in classes]
    fig = go.Figure(go.Heatmap(
        z=share, x=ticks, y=ticks, colorscale="Blues", zmin=0, zmax=100, showscale=False,
        text=np.round(share).astype(int), texttemplate="%{text}", customdata=counts,
        hovertemplate="a %{y} labelled %{x}: %{z:.1f}% (%{customdata:,} digits)<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title="labelled as", type="category", side="top"),
                      yaxis=dict(title="true class", type="category", autorange="reversed"))
    return fig
