"""What both backends share: `JobStatus`, what a page sees of one training; `snapshot`, which makes one
from the job file, the backend's state and what the trainer's events say so far; `new_job`, a
submitted training's job, checked against the limits; `check_caps` and `check_owner`, the refusals of
a submit and of a cancel; `saved` (vae.jobfiles), the rule that a training which saved its model is done."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import ModelConfig
from ..data import check_data_folder, load_dataset
from ..events import Progress
from ..jobfiles import FINISHED, STATES, saved  # noqa: F401 -- saved: both backends take it from here
from ..limits import Limits
from ..ownership import clean_name
from ..train.job import TrainingJob


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one training, safe to hand to any number of page runs."""

    job_id: str
    name: str
    state: str  # queued, running, done, error, cancelled
    position: int  # place in the queue, 1 = next to start; 0 when not waiting
    label: str  # e.g. "VAE · MLP · 2-d"
    dataset: str
    epochs: int  # planned epochs (with a time budget, the budget may stop it first)
    time_budget: float | None
    epoch: int
    step: int
    steps_per_epoch: int
    progress: float  # 0..1
    eta_s: float | None
    samples_per_s: float | None
    elapsed_s: float
    history: dict
    steps: dict
    originals: np.ndarray | None
    reconstructions: np.ndarray | None
    checkpoint: str | None
    metrics: dict | None
    error: str | None
    cancelling: bool
    submitted_at: float
    owner: str | None = None  # the opaque id of whoever submitted it
    # the latent movie so far (vae.events.Progress.frame): the latest frame's points, labels, epoch, loss, step
    frame: dict | None = None
    frames: int = 0  # frames recorded so far

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def entry_id(self) -> str | None:
        """The library id of the saved model (the checkpoint's file stem)."""
        return Path(self.checkpoint).stem if self.checkpoint else None


def snapshot(spec: TrainingJob, state: str, p: Progress, *, position: int = 0, error: str | None = None,
             cancelling: bool = False) -> JobStatus:
    """The JobStatus of the job `spec` in `state`, from its events so far (`p`, vae.events.EventLog.read)."""
    eta = p.eta_s
    if state == "running" and eta is not None and p.last_event_at:
        eta = max(0.0, eta - (time.time() - p.last_event_at))  # count down between events
    if state in FINISHED:
        eta = None
    return JobStatus(
        job_id=spec.job_id, name=spec.name, state=state, position=position, label=spec.model.label,
        dataset=spec.dataset, epochs=spec.train.epochs, time_budget=spec.train.time_budget, epoch=p.epoch,
        step=p.step, steps_per_epoch=p.steps_per_epoch, progress=1.0 if state == "done" else p.progress,
        eta_s=eta, samples_per_s=p.samples_per_s, elapsed_s=p.elapsed_s,
        history={k: list(v) for k, v in p.history.items()}, steps={k: list(v) for k, v in p.steps.items()},
        originals=p.originals, reconstructions=p.reconstructions,
        checkpoint=p.checkpoint if state == "done" else None,
        metrics=dict(p.metrics) if p.metrics and state == "done" else None,
        error=error, cancelling=cancelling and state in ("queued", "running"),
        submitted_at=spec.submitted_at, owner=spec.owner,
        frame=getattr(p, "frame", None), frames=getattr(p, "frames", 0))


def new_job(limits: Limits, model_cfg: dict, train_cfg: dict, dataset: str, data_dir, name: str | None,
            owner: str | None) -> TrainingJob:
    """A new training's job, its settings checked against `limits` and its data found (read once, so that
    a missing file is a sentence now rather than a failed training later)."""
    mcfg = ModelConfig.from_dict(dict(model_cfg))
    tcfg = limits.train_config(dict(train_cfg))
    if owner is not None and (not isinstance(owner, str) or not owner):
        raise ValueError("A training's owner must be a non-empty text id, or none.")
    if dataset == "custom" and not data_dir:
        raise ValueError("A custom dataset needs a folder: give the folder that holds its IDX files.")
    folder = None
    if data_dir:
        what = "a custom dataset" if dataset == "custom" else "the data folder"
        folder = str(check_data_folder(data_dir, list(limits.data_roots), what))  # resolved: no symlink leads out
    spec = TrainingJob(mcfg, tcfg, dataset=dataset, download=False, name=clean_name(name) or mcfg.label,
                       data_dir=folder, job_id=uuid.uuid4().hex[:12], submitted_at=time.time(),
                       owner=owner)  # a ValueError for an unknown dataset
    load_dataset(dataset, folder, download=False)  # a DataError says where to put the files
    return spec


def wait_finished(status, job_id: str, timeout: float, poll_s: float) -> JobStatus | None:
    """Poll `status(job_id)` until the job has finished, is unknown (None) or `timeout` seconds have
    passed; the last status (for scripts and tests: both backends' `wait`)."""
    deadline = time.time() + timeout
    while True:
        st = status(job_id)
        if st is None or st.finished or time.time() > deadline:
            return st
        time.sleep(poll_s)


def full_sentence(waiting: int) -> str:
    return f"The training queue is full ({waiting} trainings are waiting); try again when some have finished."


def check_caps(limits: Limits, jobs: list[tuple[str | None, str]], owner: str | None) -> None:
    """Refuse one more training for `owner` (a ValueError with its sentence) when that person already has
    `max_per_user` waiting or running, or `max_queued` trainings wait; `jobs`: (owner, state) of each job."""
    if owner is not None and sum(o == owner and s in ("queued", "running") for o, s in jobs) >= limits.max_per_user:
        raise ValueError(limits.per_user_sentence())
    waiting = sum(s == "queued" for _, s in jobs)
    if waiting >= limits.max_queued:
        raise ValueError(full_sentence(waiting))


def check_owner(job_owner: str | None, owner: str | None) -> None:
    """A cancel asked for by `owner` (None: the operator, who may cancel any) of a job of `job_owner`."""
    if owner is not None and job_owner != owner:
        raise ValueError("Only whoever started this training can cancel it.")


def count_states(states: list[str]) -> dict:
    """How many jobs are in each state (a queue's `counts`)."""
    return {s: states.count(s) for s in STATES}
