"""A server-wide training queue: each training is a `python -m vae.train` subprocess.

    queue = TrainingQueue(jobs_dir)                 # one per server (the app caches it)
    job_id = queue.submit({"kind": "vae", "latent_dim": 2}, {"time_budget": 60}, "mnist", data_dir, "my vae",
                          owner=owner_id)
    queue.status(job_id)   # JobStatus: state, owner, queue position, epoch, step, progress, ETA, curves, preview
    queue.jobs(owner=owner_id)                      # one person's trainings, in submission order
    queue.cancel(job_id)   # a queued job is dropped; a running one gets SIGTERM and stops between steps

Why subprocesses: training holds the GIL for minutes; in a process of its own it cannot
stall the web server, it goes on when the user leaves the page, and cancelling is a signal.
Each job's settings travel as a JSON job file, `<jobs_dir>/<job_id>.json` (vae.train.job), and
the child is `python -m vae.train --config <job_id>.json --events <job_id>.jsonl --no-progress
--lifeline`, started in the repository root at a lower CPU priority than the server, with its stdin
a pipe that only the server holds (when the server dies the training stops). It writes every event
as a JSON line to the events file, which the queue reads incrementally (vae.events.EventLog).

Training is a shared resource of one classroom machine, so the queue has limits, read once from the
environment when it is made (vae.limits: trainings at once, threads each, waiting trainings, trainings
per person, the longest time budget, the most epochs, the trainers' niceness, the data roots).

The queue survives its server: its state lives in its folder (the files: vae.jobfiles). A queue made
on the folder after a restart or a crash finds every job there: waiting ones wait on, in submission
order; one that was running when its server died is an error (vae.events.INTERRUPTED) and is never
started again; finished ones keep their state. Only the queue that holds the folder's lock runs
trainings; another one on the same folder (a second server, or a second queue in this process) only
shows them, and refuses submit and cancel with a sentence, until the lock is free and it takes over.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .config import ModelConfig
from .data import check_data_folder, load_dataset
from .events import EventLog
from .jobfiles import FINISHED, LOCK_FILE, STATES, Job, JobState, QueueLock, kill_trainers, read_folder, sweep
from .limits import Limits
from .ownership import clean_name
from .paths import ROOT
from .train.job import TrainingJob

KILL_AFTER_S = 30.0  # a cancelled job that has not stopped by then is killed


# ---------------------------------------------------------------- the queue

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


class TrainingQueue:
    """Runs trainings as subprocesses, at most `max_running` at once; shared by all sessions."""

    def __init__(self, jobs_dir: str | os.PathLike, max_running: int | None = None,
                 threads_per_job: int | None = None, max_queued: int | None = None, *,
                 max_per_user: int | None = None, max_train_seconds: float | None = None,
                 max_epochs: int | None = None, nice: int | None = None,
                 data_roots: list[str | os.PathLike] | None = None, python: str = sys.executable,
                 poll_s: float = 0.5):
        Path(jobs_dir).mkdir(parents=True, exist_ok=True)
        self.jobs_dir = Path(jobs_dir).resolve()  # the trainers' command lines name their job files by it
        self.limits = Limits.from_env(max_running, threads_per_job, max_queued, max_per_user, max_train_seconds,
                                      max_epochs, nice, data_roots)
        self.max_running, self.threads_per_job = self.limits.max_running, self.limits.threads_per_job
        self.python = python
        self.poll_s = poll_s
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._folder_lock = QueueLock(self.jobs_dir / LOCK_FILE)
        self._monitor: threading.Thread | None = None
        self._closed = False
        self._last_submitted = 0.0
        with self._lock:
            self._refresh()
        atexit.register(self.shutdown)  # no training outlives the server

    @property
    def caps(self) -> dict:
        """The limits this queue enforces (vae.limits), for a form to show its ranges."""
        return self.limits.caps

    @property
    def read_only(self) -> bool:
        """True while another queue runs this folder's trainings (this one only shows them)."""
        with self._lock:
            self._refresh()
            return not self._folder_lock.held

    # -- public API

    def submit(self, model_cfg: dict, train_cfg: dict, dataset: str = "mnist", data_dir=None,
               name: str | None = None, *, owner: str | None = None) -> str:
        """Validate, check the caps and that the data is there, and queue a training for `owner` (an
        opaque id). Returns its job id. Raises ValueError (bad settings, over a cap, full queue) or
        DataError (no data, a folder outside the data roots), each with a sentence."""
        mcfg = ModelConfig.from_dict(dict(model_cfg))
        tcfg = self.limits.train_config(dict(train_cfg))
        if owner is not None and (not isinstance(owner, str) or not owner):
            raise ValueError("A training's owner must be a non-empty text id, or none.")
        if dataset == "custom" and not data_dir:
            raise ValueError("A custom dataset needs a folder: give the folder that holds its IDX files.")
        folder = None
        if data_dir:
            what = "a custom dataset" if dataset == "custom" else "the data folder"
            folder = str(check_data_folder(data_dir, list(self.limits.data_roots), what))  # resolved: no symlink leads out
        job_id = uuid.uuid4().hex[:12]
        spec = TrainingJob(mcfg, tcfg, dataset=dataset, download=False, name=clean_name(name) or mcfg.label,
                           data_dir=folder, job_id=job_id, submitted_at=time.time(),
                           owner=owner)  # a ValueError for an unknown dataset
        load_dataset(dataset, folder, download=False)  # a DataError says where to put the files
        with self._lock:
            self._refresh()
            if self._closed:
                raise ValueError("The server is shutting down; no new trainings start now.")
            if not self._folder_lock.held:
                raise ValueError(self._read_only_sentence())
            mine = sum(j.spec.owner == owner and j.state in ("queued", "running") for j in self._jobs.values())
            if mine >= self.limits.max_per_user:
                raise ValueError(self.limits.per_user_sentence())
            waiting = sum(j.state == "queued" for j in self._jobs.values())
            if waiting >= self.limits.max_queued:
                raise ValueError(f"The training queue is full ({waiting} trainings are waiting); "
                                 "try again when some have finished.")
            spec = replace(spec, submitted_at=max(spec.submitted_at, self._last_submitted + 1e-6))  # strict order
            self._last_submitted = spec.submitted_at
            job = Job(spec, self.jobs_dir / f"{job_id}.json", EventLog(self.jobs_dir / f"{job_id}.jsonl"))
            spec.write(job.config)
            job.save()
            self._jobs[job_id] = job
            self._schedule()
            self._ensure_monitor()
        return job_id

    def status(self, job_id: str) -> JobStatus | None:
        """The job's current snapshot, or None for an id this queue does not know."""
        with self._lock:
            self._refresh()
            self._poll()
            job = self._jobs.get(job_id)
            return self._snapshot(job) if job else None

    def jobs(self, owner: str | None = None) -> list[JobStatus]:
        """Every job in the folder (or only `owner`'s), in submission order."""
        with self._lock:
            self._refresh()
            self._poll()
            return [self._snapshot(j) for j in self._jobs.values() if owner is None or j.spec.owner == owner]

    def counts(self) -> dict:
        with self._lock:
            self._refresh()
            self._poll()
            states = [j.state for j in self._jobs.values()]
            return {s: states.count(s) for s in STATES}

    def cancel(self, job_id: str, owner: str | None = None) -> bool:
        """Cancel a queued or running job; False when it had already finished or is unknown. With
        `owner` (the one asking), only that owner's job: another's is refused with a ValueError."""
        with self._lock:
            self._refresh()
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return False
            if owner is not None and job.spec.owner != owner:
                raise ValueError("Only whoever started this training can cancel it.")
            if not self._folder_lock.held:
                raise ValueError(self._read_only_sentence())
            if job.state == "queued":
                job.finish("cancelled")
            elif job.cancel_at is None:
                job.cancel_at = time.time()
                job.save()  # a restart in between still knows it was cancelled
                job.send_signal(signal.SIGTERM)  # vae.train stops between steps, saves nothing
            self._schedule()
            return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every running training (each is recorded as interrupted; waiting ones wait on, on disk,
        for the next queue on this folder), wait for them to end and let go of the folder."""
        with self._lock:
            self._closed = True  # first, so that nothing below starts a waiting job
            running = [j for j in self._jobs.values() if j.proc is not None and j.proc.poll() is None]
            for job in running:
                job.interrupted = job.cancel_at is None  # a cancel asked for stays a cancel
                job.send_signal(signal.SIGTERM)
            procs = [j.proc for j in running]  # the monitor may reap them (and drop job.proc) meanwhile
        deadline = time.time() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with self._lock:
            self._poll()
            self._folder_lock.release()

    def wait(self, job_id: str, timeout: float = 120.0) -> JobStatus:
        """Block until the job has finished (for scripts and tests)."""
        deadline = time.time() + timeout
        while True:
            st = self.status(job_id)
            if st is None or st.finished or time.time() > deadline:
                return st
            time.sleep(0.2)

    # -- internals (called with the lock held)

    def _read_only_sentence(self) -> str:
        return (f"Another Latent Lab server runs the trainings in {self.jobs_dir}; this one only shows them, "
                "so start or cancel trainings there.")

    def _refresh(self) -> None:
        """Become the folder's runner when its lock is free (and pick up what a dead server left), or, while
        another queue holds it, read the folder again."""
        if self._closed or self._folder_lock.held:
            return
        if self._folder_lock.acquire():
            self._recover()
            return
        for config in sorted(self.jobs_dir.glob("*.json")):  # read-only: the runner's files are the truth
            if (job := self._jobs.get(config.stem)) is None:
                if (job := Job.read(config)) is not None:
                    self._jobs[config.stem] = job
            elif (st := JobState.read(config.with_suffix(".state"))) is not None:
                job.take(st)
        self._jobs = dict(sorted(self._jobs.items(), key=lambda kv: (kv[1].spec.submitted_at or 0.0, kv[0])))

    def _recover(self) -> None:
        """Take over the folder: sweep old files, stop any trainer that a dead server left running, record
        the jobs it was running as interrupted (done, if one had saved), and start the waiting ones."""
        sweep(self.jobs_dir)
        jobs = read_folder(self.jobs_dir)
        kill_trainers({str(j.config) for j in jobs if j.state not in FINISHED})  # no live server owns them
        for job in jobs:
            if job.state == "running":
                job.abandoned()
        self._jobs = {j.spec.job_id: j for j in jobs}
        self._last_submitted = max([self._last_submitted, *(j.spec.submitted_at or 0.0 for j in jobs)])
        self._schedule()
        if any(j.state == "queued" for j in jobs):
            self._ensure_monitor()

    def _poll(self) -> None:
        for job in self._jobs.values():
            if job.proc is None:
                continue
            rc = job.proc.poll()
            if rc is None:
                if job.state == "running":
                    p = job.log.read()
                    if p.checkpoint and Path(p.checkpoint).is_file():
                        job.finish("done")  # saved: done for the user even while the process still exits
                    elif job.cancel_at is not None and time.time() - job.cancel_at > KILL_AFTER_S:
                        job.proc.kill()
                continue
            job.proc.stdin.close()  # the lifeline of a process that has ended
            job.proc = None
            job.log.read(final=True)
            state, error = job.outcome(rc)
            if (state, error) != (job.state, job.error):
                job.finish(state, error)
        self._schedule()

    def _schedule(self) -> None:
        if self._closed or not self._folder_lock.held:
            return
        # a slot is a live process: a finished job whose process is still exiting holds its slot
        running = sum(j.proc is not None for j in self._jobs.values())
        for job in self._jobs.values():
            if running >= self.max_running:
                break
            if job.state == "queued":
                self._start(job)
                running += job.state == "running"

    def _start(self, job: Job) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(self.threads_per_job),
                   MKL_NUM_THREADS=str(self.threads_per_job))
        # Idle OpenMP threads sleep instead of spinning: on a shared, busy machine spinning threads
        # fight the other processes for the cores and training slows down many times over.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        argv = [self.python, "-m", "vae.train", "--config", str(job.config), "--events", str(job.log.path),
                "--no-progress", "--lifeline"]
        job.state, job.started_at = "running", time.time()
        job.save()  # before the process exists: after a crash from here on, it reads as interrupted, never waiting
        try:
            with open(job.config.with_suffix(".out"), "wb") as out, open(job.config.with_suffix(".log"), "wb") as log:
                # in the repository root, `python -m vae.train` finds the package without PYTHONPATH; its
                # stdin is the lifeline, a pipe whose write end only this process holds
                job.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=out,
                                            stderr=log)
        except OSError as e:
            job.finish("error", f"Could not start the training process: {e.strerror or e}.")
            return
        job.pid = job.proc.pid
        self.limits.lower_priority(job.pid)
        job.save()

    def _ensure_monitor(self) -> None:
        """A daemon thread that starts queued jobs when slots free up, even if no page is polling."""
        if self._monitor is not None and self._monitor.is_alive():
            return
        self._monitor = threading.Thread(target=self._watch, name="latent-lab-train-queue", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        while True:
            time.sleep(self.poll_s)
            with self._lock:
                self._poll()
                if self._closed or all(j.state in FINISHED and j.proc is None for j in self._jobs.values()):
                    self._monitor = None
                    return

    def _snapshot(self, job: Job) -> JobStatus:
        p = job.log.read()  # incremental: only what was appended since the last look
        position = 0
        if job.state == "queued":
            waiting = [j for j in self._jobs.values() if j.state == "queued"]
            position = waiting.index(job) + 1
        eta = p.eta_s
        if job.state == "running" and eta is not None and p.last_event_at:
            eta = max(0.0, eta - (time.time() - p.last_event_at))  # count down between events
        if job.state in FINISHED:
            eta = None
        spec = job.spec
        return JobStatus(
            job_id=spec.job_id, name=spec.name, state=job.state, position=position, label=spec.model.label,
            dataset=spec.dataset, epochs=spec.train.epochs, time_budget=spec.train.time_budget, epoch=p.epoch,
            step=p.step,
            steps_per_epoch=p.steps_per_epoch, progress=1.0 if job.state == "done" else p.progress,
            eta_s=eta, samples_per_s=p.samples_per_s, elapsed_s=p.elapsed_s,
            history={k: list(v) for k, v in p.history.items()}, steps={k: list(v) for k, v in p.steps.items()},
            originals=p.originals, reconstructions=p.reconstructions,
            checkpoint=p.checkpoint if job.state == "done" else None,
            metrics=dict(p.metrics) if p.metrics and job.state == "done" else None,
            error=job.error, cancelling=job.cancel_at is not None and job.state == "running",
            submitted_at=spec.submitted_at, owner=spec.owner,
            frame=getattr(p, "frame", None), frames=getattr(p, "frames", 0))
