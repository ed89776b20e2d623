"""Streamlit-side helpers of the Train & library page: the shared queue, the session's trainings
(started, polled, adopted once finished), the one-off messages, uploads, downloads, figures and table rows.

The queue itself (`vae.jobs.TrainingQueue`) is pure Python; here it becomes one
`st.cache_resource` for the whole server, so every session sees the same queue.
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

from ui import state
from vae.checkpoint import Entry, slugify
from vae.config import parse_hidden
from vae.data import DataError, default_root, load_dataset
from vae.jobs import JobStatus, TrainingQueue
from vae.paths import cache_dir
from vae.images import image_grid

TRAIN_COLOR, TEST_COLOR = "#1f77b4", "#ff7f0e"
DATASET_NAMES = {"mnist": "MNIST digits", "fashion": "Fashion-MNIST", "custom": "Custom folder (IDX files)"}

# session_state keys of the page (the browser tests read them too)
JOBS = "train_jobs"  # ids of the trainings this session started (newest last)
ADOPTED = "train_adopted"  # finished job ids already handled (their model made active once)
FLASH = "train_flash"  # (level, message) shown once above the library
UPLOADED = "train_uploaded"  # file ids of uploads already stored
FOLLOW = "train_follow_active"  # set when a model became active or was deleted; the manage picker follows
PICK = "train_pick"  # the manage picker's widget


@st.cache_resource(show_spinner=False)
def queue() -> TrainingQueue:
    """The server's training queue (limits from LATENT_LAB_MAX_TRAININGS / LATENT_LAB_TRAIN_THREADS)."""
    return TrainingQueue(cache_dir() / "jobs")


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


# --- the session's trainings ----------------------------------------------------------------------

def start_training(q: TrainingQueue, *, kind: str, arch: str, latent_dim: int, hidden_text: str, beta: float,
                   epochs: int | None, time_budget: float | None, batch_size: int, lr: float | None, seed: int,
                   dataset: str, data_dir: str | None, name: str | None) -> str:
    """Queue a training with the form's values and count it among this session's. Returns its job id.

    Raises ValueError (bad settings, full queue) or DataError (no data), each with a sentence."""
    job_id = q.submit(
        dict(kind=kind, arch=arch, latent_dim=int(latent_dim), hidden=parse_hidden(hidden_text), beta=float(beta)),
        dict(epochs=int(epochs) if epochs else None, time_budget=float(time_budget) if time_budget else None,
             batch_size=int(batch_size), lr=None if lr is None else float(lr), seed=int(seed)),
        dataset, (data_dir or "").strip() or None, name)
    st.session_state[JOBS] = [*st.session_state.get(JOBS, []), job_id]
    return job_id


def session_jobs(q: TrainingQueue) -> list[JobStatus]:
    """Snapshots of the trainings this session started, oldest first. Ids the queue no longer knows
    (the server restarted) are forgotten."""
    ids = st.session_state.get(JOBS, [])
    jobs = [j for j in map(q.status, ids) if j is not None]
    if len(jobs) != len(ids):
        st.session_state[JOBS] = [j.job_id for j in jobs]
    return jobs


def any_running(q: TrainingQueue) -> bool:
    """Whether one of this session's trainings is still queued or running (its panel then refreshes)."""
    return any(not j.finished for j in session_jobs(q))


def activate(entry_id: str) -> None:
    """Make a model the active one, with the manage picker following it on the next run."""
    state.set_active(entry_id)
    follow_active()


def follow_active() -> None:
    """Point the manage picker at the active model on the next run (e.g. after its pick was deleted)."""
    st.session_state[FOLLOW] = True


def adopt_finished(jobs: list[JobStatus]) -> list[JobStatus]:
    """Handle each training that ended since the last look, exactly once: a finished model becomes the
    active one. Returns those trainings; when there are any the page reruns the whole app, so that the
    sidebar shows the new active model and the refresh stops."""
    adopted = st.session_state.get(ADOPTED, [])
    fresh = [j for j in jobs if j.finished and j.job_id not in adopted]
    if fresh:
        st.session_state[ADOPTED] = [*adopted, *(j.job_id for j in fresh)]
    for j in fresh:
        if j.state == "done":
            activate(j.entry_id)
    return fresh


def shown_job(jobs: list[JobStatus]) -> JobStatus:
    """The training the panel shows: the newest one still queued or running, else the latest."""
    return next((j for j in reversed(jobs) if not j.finished), jobs[-1])


def server_load(q: TrainingQueue) -> None:
    """One caption: how many trainings this server runs at once, and how many run and wait now."""
    c = q.counts()
    st.caption(f"This server trains up to {q.max_running} model{'s' if q.max_running > 1 else ''} at once, "
               f"with {q.threads_per_job} CPU thread{'s' if q.threads_per_job > 1 else ''} each; more wait in "
               f"line. Now: {c['running']} running, {c['queued']} waiting.")


def other_trainings(jobs: list[JobStatus], shown: JobStatus) -> None:
    """The session's trainings other than the shown one, newest first, in an expander (names as plain text)."""
    others = [j for j in jobs if j is not shown]
    if not others:
        return
    with st.expander(f"Your other trainings in this session ({len(others)})"):
        for j in reversed(others):
            st.text(f"{j.name} ({j.label}): {j.state}"
                    + (f", number {j.position} in the queue" if j.state == "queued" else ""))


# --- the library ------------------------------------------------------------------------------------

# How a kept message is shown, by its level (an explicit table: a level is never looked up on `st`).
FLASH_LEVELS = {"success": st.success, "info": st.info, "error": st.error}


def flash(level: str, text: str) -> None:
    """Keep a message to show once above the library, after the rerun that usually follows an action."""
    if level not in FLASH_LEVELS:
        raise ValueError(f"Unknown message level {level!r}: use one of {', '.join(FLASH_LEVELS)}.")
    st.session_state[FLASH] = (level, text)


def show_flash() -> None:
    """Show the kept message, if any, and forget it."""
    if (kept := st.session_state.pop(FLASH, None)) is not None:
        level, text = kept
        FLASH_LEVELS[level](text)


def sync_pick(ids: list[str], active_id: str | None) -> None:
    """Before the manage picker is drawn: point it at the active model (else the first) when a model just
    became active or was deleted, or when its choice left the library; otherwise the user's pick stays."""
    if st.session_state.pop(FOLLOW, False) or st.session_state.get(PICK) not in ids:
        st.session_state[PICK] = active_id if active_id in ids else ids[0]


def download_button(entry: Entry) -> None:
    """The model's checkpoint file as a download; the file is read only when the button is pressed."""
    st.download_button("Download .safetensors", data=entry.path.read_bytes, icon=":material/download:",
                       file_name=f"{slugify(entry.name)}.safetensors", mime="application/octet-stream",
                       key="train_download", on_click="ignore")


def store_upload(upload) -> Entry | None:
    """Store an uploaded checkpoint (an `UploadedFile`) in the library once, and make it the active model.

    Returns its entry, or None when there is no upload or it was stored already (Streamlit hands the same
    file to every later run). Raises CheckpointError with a sentence for a file that is not accepted."""
    if upload is None or upload.file_id in st.session_state.get(UPLOADED, []):
        return None
    added = state.library().import_bytes(upload.getvalue(), upload.name)
    st.session_state[UPLOADED] = [*st.session_state.get(UPLOADED, []), upload.file_id]
    activate(added.id)
    return added


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


def library_rows(entries: list[Entry], active_id: str | None) -> list[dict]:
    """One table row per model, with the metrics the checkpoint carries."""
    rows = []
    for e in entries:
        cfg, m = e.config, e.metrics
        rows.append({
            "Name": e.name,
            "Active": e.id == active_id,
            "Model": f"{cfg.kind.upper()} · {cfg.arch.upper()}",
            "Latent dims": cfg.latent_dim,
            "β": f"{cfg.beta:g}" if cfg.has_prior else "–",  # an AE has no KL term, so no β
            "Dataset": e.meta.get("dataset", "mnist"),
            "Test nats": m.get("test_nats"),
            "KL nats": m.get("kl_nats"),
            "Active units": m.get("active_units"),
            "kNN acc": m.get("knn_acc"),
            "Source": "bundled" if e.bundled else "saved",
        })
    return rows


LIBRARY_COLUMNS = {
    "Name": st.column_config.TextColumn("Name", width="medium"),
    "Active": st.column_config.CheckboxColumn("Active", width="small", help="The model every page shows"),
    "Model": st.column_config.TextColumn("Model", width="small", help="AE or VAE, MLP or convolutional"),
    "Latent dims": st.column_config.NumberColumn("Dims", width="small", help="Latent dimensions"),
    "Dataset": st.column_config.TextColumn("Dataset", width="small"),
    "Source": st.column_config.TextColumn("Source", width="small", help="Bundled with the app, or saved here"),
    "β": st.column_config.TextColumn("β", width="small", help="KL weight (VAE only; – for an AE)"),
    "Test nats": st.column_config.NumberColumn("Test nats", format="%.1f",
                                               help="Negative ELBO per test digit (lower is better)"),
    "KL nats": st.column_config.NumberColumn("KL nats", format="%.2f", help="KL term per test digit"),
    "Active units": st.column_config.NumberColumn("Active units", help="Latent dimensions the codes really use"),
    "kNN acc": st.column_config.ProgressColumn("kNN acc", format="percent", min_value=0.0, max_value=1.0,
                                               width="small", help="3-NN accuracy from 10 labelled codes per class"),
}


def job_panel(job: JobStatus) -> None:
    """One training at a glance: its state, progress, test metrics, loss curves and reconstructions."""
    st.markdown(f"#### {job.name}")
    st.caption(f"{job.label} · {DATASET_NAMES[job.dataset]} · submitted at "
               f"{datetime.fromtimestamp(job.submitted_at):%H:%M:%S}")
    if job.state == "queued":
        st.info(f"Waiting for a free slot: **number {job.position}** in the queue. Trainings take turns "
                "so that a whole class cannot overload the server.", icon=":material/hourglass_top:")
    elif job.state == "running":
        st.progress(job.progress, text="Cancelling…" if job.cancelling else progress_text(job))
    elif job.state == "done":
        st.success(f"Done in {duration(job.elapsed_s)}: **{job.name}** is saved in the library and is now "
                   "the active model on every page.", icon=":material/task_alt:")
        st.page_link("pages/map.py", label="See its latent map", icon=":material/scatter_plot:")
    elif job.state == "cancelled":
        st.warning("Training was cancelled; nothing was saved.", icon=":material/stop_circle:")
    else:
        st.error(job.error, icon=":material/error:")

    h, m = job.history, job.metrics or {}
    if h["epoch"]:
        c = st.columns(4)
        c[0].metric("Test nats", f"{m.get('test_nats', h['test_nats'][-1]):.1f}",
                    help="Reconstruction + KL per test digit, in nats (lower is better).")
        c[1].metric("Reconstruction", f"{h['test_recon'][-1]:.1f}", help="Test reconstruction term, in nats.")
        c[2].metric("KL", f"{h['test_kl'][-1]:.2f}", help="Test KL term, in nats (zero for an AE).")
        c[3].metric("kNN accuracy", f"{m['knn_acc']:.0%}" if "knn_acc" in m else "–",
                    help="How well 10 labelled digits per class classify the rest from their codes alone "
                         "(measured when the training ends).")
    if job.steps["epoch"] or h["epoch"]:
        st.plotly_chart(loss_figure(job), key="train_loss_chart", config={"displaylogo": False})
        st.caption("The line follows the training batches as they go; the dots are whole epochs, with "
                   "the test digits in orange. Both should fall and then level off.")
    if job.originals is not None:
        st.image(preview_image(job), caption="Top: test digits. Bottom: how the model redraws them after "
                 f"epoch {h['epoch'][-1] if h['epoch'] else job.epoch}.")
