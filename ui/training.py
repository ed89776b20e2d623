"""Streamlit-side helpers of the Train & library page: the shared queue, "your trainings" (started,
polled, adopted once finished), the server's caps and load, the job panel and its figures.

The queue itself (`vae.jobs.TrainingQueue`) is pure Python; here it becomes one `st.cache_resource`
for the whole server, so every session sees the same queue. It records each training's owner and
survives a restart, so "your trainings" are the queue's jobs of your identity (ui.identity): a reload,
another tab or a restarted server finds them again. The form's rules are ui.train_form's; the
library's (pickers, manage panel, uploads) ui.library's.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
# plotly looks for pandas in sys.modules without waiting for an import in progress, so a chart
# drawn while another thread (ui.warmup, another session) is still importing
# pandas would fail; an import statement does wait for it to finish.
import pandas  # noqa: F401
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from ui import movie, train_form
from ui.library import activate
from ui.text import plain
from vae.data import DataError, default_root, load_dataset
from vae.jobs import JobStatus, TrainingQueue, make_queue
from vae.train import default_lr
from vae.train.job import TrainingJob
from vae.images import image_grid

TRAIN_COLOR, TEST_COLOR = "#1f77b4", "#ff7f0e"
DATASET_NAMES = {"mnist": "MNIST digits", "fashion": "Fashion-MNIST", "custom": "Custom folder (IDX files)"}

# session_state keys of the page (the browser tests read them too)
PENDING = "train_pending"  # ids of your trainings this session saw queued or running (adopted when they end)


@st.cache_resource(show_spinner=False)
def queue() -> TrainingQueue:
    """The server's training queue (vae.jobs.make_queue: Ray with LATENT_LAB_RAY_ADDRESS, else its own; limits
    from LATENT_LAB_MAX_TRAININGS / LATENT_LAB_TRAIN_THREADS)."""
    return make_queue()


def data_problem(dataset: str) -> str | None:
    """Why the training data cannot be read (the core's sentence), or None when it is there."""
    return _data_problem(dataset, str(default_root()))


@st.cache_data(ttl=60, show_spinner=False)
def _data_problem(dataset: str, root: str) -> str | None:
    try:
        load_dataset(dataset, root, download=False)
    except DataError as e:
        return str(e)
    return None


# --- your trainings -------------------------------------------------------------------------------

def start_training(q: TrainingQueue, owner: str, *, dataset: str, data_dir: str | None, name: str | None,
                   **form) -> str:
    """Check the form's values (ui.train_form.settings: kind, arch, latent_dim, hidden_text, beta, stop,
    time_budget, epochs, batch_size, lr, seed) and queue a training owned by `owner`. Returns its job id.

    Raises ValueError (a field out of range, bad settings, over the server's caps, a full queue) or
    DataError (no data, a folder outside the allowed ones), each with a sentence; nothing is queued then."""
    caps = q.caps
    model, run = train_form.settings(max_seconds=caps["max_train_seconds"], max_epochs=caps["max_epochs"], **form)
    job_id = q.submit(model, run, dataset, (data_dir or "").strip() or None, name, owner=owner)
    st.session_state[PENDING] = [*st.session_state.get(PENDING, []), job_id]
    return job_id


CANCEL_PROBLEM = "train_cancel_problem"  # why the last Cancel did not go through (shown once)


def cancel(q: TrainingQueue, job_id: str, owner: str) -> None:
    """The Cancel button's callback: the queue's refusal (not yours, the cluster not answering) becomes a
    sentence the page shows on its next run, not a traceback."""
    try:
        q.cancel(job_id, owner)
    except (ValueError, RuntimeError, OSError) as e:
        st.session_state[CANCEL_PROBLEM] = str(e) or "The training could not be cancelled; try again."


def cancel_problem() -> None:
    if problem := st.session_state.pop(CANCEL_PROBLEM, None):
        st.error(plain(problem), icon=":material/error:")


def my_jobs(q: TrainingQueue, owner: str) -> list[JobStatus]:
    """Snapshots of the trainings `owner` submitted, from any session, oldest first."""
    return q.jobs(owner=owner)


def any_running(jobs: list[JobStatus]) -> bool:
    """Whether one of these trainings is still queued or running (the panel then refreshes)."""
    return any(not j.finished for j in jobs)


def adopt_finished(jobs: list[JobStatus]) -> list[JobStatus]:
    """Handle each of your trainings that this session saw queued or running and that has ended since,
    exactly once: a finished model becomes the active one. Trainings that had ended before this session
    first looked (a reload, a new tab) are only listed, never re-activated. Returns the ones handled;
    when there are any the page reruns the whole app, so that the sidebar shows the new active model."""
    pending = set(st.session_state.get(PENDING, [])) | {j.job_id for j in jobs if not j.finished}
    fresh = [j for j in jobs if j.finished and j.job_id in pending]
    st.session_state[PENDING] = [j.job_id for j in jobs if not j.finished]
    for j in fresh:
        if j.state == "done":
            activate(j.entry_id)
    return fresh


def shown_job(jobs: list[JobStatus]) -> JobStatus:
    """The training the panel shows: the newest one still queued or running, else the latest."""
    return next((j for j in reversed(jobs) if not j.finished), jobs[-1])


def caps(q: TrainingQueue) -> None:
    """One caption: this server's limits per training and per person."""
    caps = q.caps
    per = caps["max_per_user"]
    st.caption(f"On this server a training runs for at most {train_form.number_text(caps['max_train_seconds'])} "
               f"seconds and {caps['max_epochs']} epochs, and each person may have {per} training"
               f"{'s' if per > 1 else ''} waiting or running at a time.")


def server_load(q: TrainingQueue) -> None:
    """One caption: how many trainings this server runs at once, and how many run and wait now."""
    if problem := q.unavailable:  # Ray missing or its cluster not answering: one sentence
        st.warning(plain(problem), icon=":material/cloud_off:")
    c = q.counts()
    st.caption(f"This server trains up to {q.max_running} model{'s' if q.max_running > 1 else ''} at once, "
               f"with {q.threads_per_job} CPU thread{'s' if q.threads_per_job > 1 else ''} each; more wait in "
               f"line. Now: {c['running']} running, {c['queued']} waiting.")


def other_trainings(jobs: list[JobStatus], shown: JobStatus) -> None:
    """Your trainings other than the shown one, newest first, in an expander (names as plain text)."""
    others = [j for j in jobs if j is not shown]
    if not others:
        return
    with st.expander(f"Your other trainings ({len(others)})"):
        for j in reversed(others):
            st.text(f"{j.name} ({j.label}): {j.state}"
                    + (f", number {j.position} in the queue" if j.state == "queued" else ""))


# --- figures and text -------------------------------------------------------------------------------

def duration(seconds: float | None) -> str:
    """42 -> '0:42', 3725 -> '1:02:05'; unknown -> '–'."""
    if seconds is None:
        return "–"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_text(job: JobStatus) -> str:
    """One line under the progress bar: epoch, step, ETA and speed."""
    if job.epoch == 0:
        return "Starting: loading PyTorch and the training digits…"
    epochs = f"epoch {job.epoch}" + ("" if job.time_budget else f" of {job.epochs}")
    parts = [epochs, f"step {job.step:,} of {job.steps_per_epoch:,}"]
    if job.time_budget:
        parts.append(f"time budget {duration(job.time_budget)}")
    parts.append(f"ETA {duration(job.eta_s)}")
    if job.samples_per_s:
        parts.append(f"{job.samples_per_s:,.0f} digits/s")
    text = " · ".join(parts)
    return text[0].upper() + text[1:]


def loss_figure(job: JobStatus) -> go.Figure:
    """Reconstruction and KL per digit (nats): live training batches as a line, test set per epoch as dots."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Reconstruction (nats)", "KL divergence (nats)"),
                        horizontal_spacing=0.12)
    h, s = job.history, job.steps
    for col, key in ((1, "recon"), (2, "kl")):
        show = col == 1
        if s["epoch"]:
            fig.add_trace(go.Scatter(x=s["epoch"], y=s[key], mode="lines", name="train (batches)",
                                     line=dict(color=TRAIN_COLOR, width=1.5), showlegend=show,
                                     legendgroup="train"), row=1, col=col)
        if h["epoch"]:
            fig.add_trace(go.Scatter(x=h["x"], y=h[f"train_{key}"], mode="markers", name="train (epoch mean)",
                                     marker=dict(color=TRAIN_COLOR, size=8, symbol="circle-open"), cliponaxis=False,
                                     showlegend=show, legendgroup="train_mean"), row=1, col=col)
            fig.add_trace(go.Scatter(x=h["x"], y=h[f"test_{key}"], mode="lines+markers", name="test",
                                     marker=dict(color=TEST_COLOR, size=8), line=dict(color=TEST_COLOR, width=2),
                                     cliponaxis=False, showlegend=show, legendgroup="test"), row=1, col=col)
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10), uirevision=job.job_id,
                      legend=dict(orientation="h", yanchor="bottom", y=-0.45, x=0))
    return fig


def preview_image(job: JobStatus):
    """Originals over their reconstructions, one PIL mosaic (2 rows of 8)."""
    both = np.concatenate([job.originals, job.reconstructions]).astype(np.float32) / 255.0  # (16, 28, 28)
    return image_grid(both, cols=len(job.originals), scale=3)


@st.cache_data(show_spinner=False, max_entries=256)
def _job_file(path: str) -> TrainingJob | None:
    """A job's settings as the queue wrote them (`<jobs_dir>/<job_id>.json`, written once, never changed)."""
    try:
        return TrainingJob.read(path)
    except ValueError:
        return None


def model_of(q: TrainingQueue, job: JobStatus) -> tuple[bool, int]:
    """Whether the training's model has a prior (a VAE), and its latent dimensions, from its job file (an
    unreadable one: the snapshot's label, "VAE · MLP · 2-d")."""
    spec = _job_file(str(q.jobs_dir / f"{job.job_id}.json"))
    if spec is not None:
        return spec.model.has_prior, spec.model.latent_dim
    return job.label.upper().startswith("VAE"), 2


def settings_text(q: TrainingQueue, job: JobStatus) -> str:
    """The settings a training runs with, as the queue stored them (plain text): kind, architecture, latent
    dimensions, hidden sizes, β, when it stops, batch, learning rate (or auto and its value), seed, data."""
    spec = _job_file(str(q.jobs_dir / f"{job.job_id}.json"))
    if spec is None:  # unreadable: what the snapshot knows
        return f"{job.label} · {DATASET_NAMES.get(job.dataset, job.dataset)}"
    m, t = spec.model, spec.train
    hidden = ",".join(map(str, m.hidden))
    stop = f"{t.epochs} epochs" + (f" or {train_form.number_text(t.time_budget)} s, whichever ends first"
                                   if t.time_budget else "")
    lr = f"learning rate {t.lr:g}" if t.lr is not None else f"learning rate auto ({default_lr(m):g})"
    data = DATASET_NAMES.get(spec.dataset, spec.dataset) + (f" in {spec.data_dir}" if spec.dataset == "custom" else "")
    return " · ".join([m.kind.upper(), m.arch.upper(), f"{m.latent_dim} latent dims", f"hidden {hidden}",
                       *([f"β {m.beta:g}"] if m.has_prior else []), stop, f"batch {t.batch_size}", lr,
                       f"seed {t.seed}", data])


def job_panel(q: TrainingQueue, job: JobStatus) -> None:
    """One training at a glance: its settings, state, progress, test metrics, its map forming (the latest frame
    of the latent movie), loss curves and reconstructions."""
    st.markdown(f"#### {plain(job.name)}")
    st.caption(f"{plain(settings_text(q, job))} · submitted at {datetime.fromtimestamp(job.submitted_at):%H:%M:%S}")
    if job.state == "queued":
        st.info(f"Waiting for a free slot: **number {job.position}** in the queue. Trainings take turns "
                "so that a whole class cannot overload the server.", icon=":material/hourglass_top:")
    elif job.state == "running":
        st.progress(job.progress, text="Cancelling…" if job.cancelling else progress_text(job))
    elif job.state == "done":
        st.success(f"Done in {duration(job.elapsed_s)}: **{plain(job.name)}** is saved in the library and is now "
                   "the active model on every page.", icon=":material/task_alt:")
        st.page_link("pages/map.py", label="See its latent map", icon=":material/scatter_plot:")
    elif job.state == "cancelled":
        st.warning("Training was cancelled; nothing was saved.", icon=":material/stop_circle:")
    else:
        st.error(plain(job.error), icon=":material/error:")

    prior, dim = model_of(q, job)
    h, m = job.history, job.metrics or {}
    if h["epoch"]:  # the library's figures (ui.library.nats): an AE has a reconstruction, no ELBO and no KL
        c = st.columns(4)
        c[0].metric("Recon. nats", f"{m.get('recon_nats', h['test_recon'][-1]):.1f}",
                    help="Reconstruction error per test digit, in nats (lower is better): the one figure every kind "
                         "of model has.")
        c[1].metric("−ELBO nats", f"{m.get('test_nats', h['test_nats'][-1]):.1f}" if prior else "–",
                    help="Negative ELBO per test digit, reconstruction + KL, in nats (lower is better). VAE only: "
                         "an AE has no prior, so no ELBO.")
        c[2].metric("KL nats", f"{m.get('kl_nats', h['test_kl'][-1]):.2f}" if prior else "–",
                    help="KL term per test digit, in nats (VAE only).")
        c[3].metric("kNN accuracy", f"{m['knn_acc']:.0%}" if "knn_acc" in m else "–",
                    help="How well 10 labelled digits per class classify the rest from their codes alone "
                         "(measured when the training ends).")
    movie.live_frame(job, prior, dim)
    if job.steps["epoch"] or h["epoch"]:
        st.plotly_chart(loss_figure(job), key="train_loss_chart", config={"displaylogo": False})
        st.caption("The line follows the training batches as they go; the dots are whole epochs, with "
                   "the test digits in orange. Both should fall and then level off.")
    if job.originals is not None:
        st.image(preview_image(job), caption="Top: test digits. Bottom: how the model redraws them after "
                 f"epoch {h['epoch'][-1] if h['epoch'] else job.epoch}.")
