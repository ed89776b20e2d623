"""A server-wide training queue: each training is a `python -m vae.train` subprocess.

    queue = TrainingQueue(jobs_dir)                 # one per server (the app caches it)
    job_id = queue.submit({"kind": "vae", "latent_dim": 2}, {"time_budget": 60}, "mnist", data_dir, "my vae")
    queue.status(job_id)   # JobStatus: state, queue position, epoch, step, progress, ETA, curves, preview
    queue.cancel(job_id)   # a queued job is dropped; a running one gets SIGTERM and stops between steps

Why subprocesses: training holds the GIL for minutes; in a process of its own it cannot
stall the web server, it goes on when the user leaves the page, and cancelling is a signal.
Each job's settings travel as a JSON job file, `<jobs_dir>/<job_id>.json` (vae.train.job), and
the child is `python -m vae.train --config <job_id>.json --events <job_id>.jsonl --no-progress`,
started in the repository root. It writes every event as a JSON line to the events file, which
the queue reads incrementally (vae.events.EventLog: a half-written last line waits for the next read).

Training is a shared resource, so at most `max_running` trainings run at once with
`threads_per_job` torch threads each; the rest wait in submission order. Both default to
the environment:

    LATENT_LAB_MAX_TRAININGS   trainings that run at once (default 1)
    LATENT_LAB_TRAIN_THREADS   torch threads per training (default: cores // max trainings)
    LATENT_LAB_MAX_QUEUED      trainings that may wait (default 32); more are refused
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import ModelConfig
from .data import load_dataset
from .events import EventLog
from .paths import ROOT
from .train import train_config
from .train.job import TrainingJob

STATES = ("queued", "running", "done", "error", "cancelled")
FINISHED = ("done", "error", "cancelled")
KILL_AFTER_S = 30.0  # a cancelled job that has not stopped by then is killed
KEEP_FILES_S = 7 * 86400  # job, event and log files of old jobs are swept after a week
JOB_FILES = (".json", ".jsonl", ".out", ".log")  # per job: its settings, events, stdout, stderr


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _env_int(name: str, default: int, low: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low:
        raise ValueError(f"{name} must be a whole number of at least {low}, not {raw!r}.")
    return value


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
    epochs: int  # planned epochs (1000 with a time budget: the budget stops it)
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

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def entry_id(self) -> str | None:
        """The library id of the saved model (the checkpoint's file stem)."""
        return Path(self.checkpoint).stem if self.checkpoint else None


@dataclass
class _Job:
    spec: TrainingJob  # what the job file says
    config: Path  # the job file
    log: EventLog
    state: str = "queued"
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    cancel_at: float | None = None
    error: str | None = None


class TrainingQueue:
    """Runs trainings as subprocesses, at most `max_running` at once; shared by all sessions."""

    def __init__(self, jobs_dir: str | os.PathLike, max_running: int | None = None,
                 threads_per_job: int | None = None, max_queued: int | None = None,
                 python: str = sys.executable, poll_s: float = 0.5):
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.max_running = max_running or _env_int("LATENT_LAB_MAX_TRAININGS", 1)
        self.threads_per_job = threads_per_job or _env_int(
            "LATENT_LAB_TRAIN_THREADS", max(1, cpu_count() // self.max_running))
        self.max_queued = max_queued or _env_int("LATENT_LAB_MAX_QUEUED", 32)
        if self.max_running < 1 or self.threads_per_job < 1 or self.max_queued < 1:
            raise ValueError("max_running, threads_per_job and max_queued must each be at least 1.")
        self.python = python
        self.poll_s = poll_s
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.RLock()
        self._monitor: threading.Thread | None = None
        self._closed = False
        self._sweep()
        atexit.register(self.shutdown)  # no training outlives the server

    # -- public API

    def submit(self, model_cfg: dict, train_cfg: dict, dataset: str = "mnist", data_dir=None,
               name: str | None = None) -> str:
        """Validate, check that the data is there, and queue a training. Returns its job id.

        Raises ValueError (bad settings, full queue) or DataError (no data), each with a sentence."""
        mcfg = ModelConfig.from_dict(dict(model_cfg))
        settings = {k: v for k, v in train_cfg.items() if k != "threads"}  # the server decides threads
        tcfg = train_config(**settings, threads=self.threads_per_job)
        if dataset == "custom" and not data_dir:
            raise ValueError("A custom dataset needs a folder: give the folder that holds its IDX files.")
        job_id = uuid.uuid4().hex[:12]
        spec = TrainingJob(mcfg, tcfg, dataset=dataset, download=False, name=(name or "").strip()[:100] or mcfg.label,
                           data_dir=str(Path(data_dir).expanduser().resolve()) if data_dir else None,
                           job_id=job_id, submitted_at=time.time())  # a ValueError for an unknown dataset
        load_dataset(dataset, data_dir, download=False)  # a DataError says where to put the files
        with self._lock:
            if self._closed:
                raise ValueError("The server is shutting down; no new trainings start now.")
            waiting = sum(j.state == "queued" for j in self._jobs.values())
            if waiting >= self.max_queued:
                raise ValueError(f"The training queue is full ({waiting} trainings are waiting); "
                                 "try again when some have finished.")
            config = self.jobs_dir / f"{job_id}.json"
            spec.write(config)
            self._jobs[job_id] = _Job(spec, config, EventLog(self.jobs_dir / f"{job_id}.jsonl"))
            self._schedule()
            self._ensure_monitor()
        return job_id

    def status(self, job_id: str) -> JobStatus | None:
        """The job's current snapshot, or None for an id this server does not know."""
        with self._lock:
            self._poll()
            job = self._jobs.get(job_id)
            return self._snapshot(job) if job else None

    def jobs(self) -> list[JobStatus]:
        """Every job this server knows, in submission order."""
        with self._lock:
            self._poll()
            return [self._snapshot(j) for j in self._jobs.values()]

    def counts(self) -> dict:
        with self._lock:
            self._poll()
            states = [j.state for j in self._jobs.values()]
            return {s: states.count(s) for s in STATES}

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when it had already finished or is unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return False
            if job.state == "queued":
                job.state = "cancelled"
            elif job.cancel_at is None:
                job.cancel_at = time.time()
                try:
                    job.proc.send_signal(signal.SIGTERM)  # vae.train stops between steps, saves nothing
                except ProcessLookupError:
                    pass
            self._schedule()
            return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every training and wait for them to stop (the server is going away)."""
        with self._lock:
            self._closed = True  # first, so that no cancel below starts a waiting job
            for job in self._jobs.values():
                if job.state in ("queued", "running"):
                    self.cancel(job.spec.job_id)
            procs = [j.proc for j in self._jobs.values() if j.proc is not None and j.proc.poll() is None]
        deadline = time.time() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with self._lock:
            self._poll()

    def wait(self, job_id: str, timeout: float = 120.0) -> JobStatus:
        """Block until the job has finished (for scripts and tests)."""
        deadline = time.time() + timeout
        while True:
            st = self.status(job_id)
            if st is None or st.finished or time.time() > deadline:
                return st
            time.sleep(0.2)

    # -- internals (called with the lock held)

    def _poll(self) -> None:
        for job in self._jobs.values():
            if job.state != "running":
                continue
            rc = job.proc.poll()
            if rc is None:
                p = job.log.read()
                if p.checkpoint and Path(p.checkpoint).is_file():
                    job.state = "done"  # saved: done for the user even while the process still exits
                elif job.cancel_at is not None and time.time() - job.cancel_at > KILL_AFTER_S:
                    job.proc.kill()
                continue
            job.log.read(final=True)
            job.state, job.error = self._outcome(job, rc)
        self._schedule()

    def _outcome(self, job: _Job, rc: int) -> tuple[str, str | None]:
        p = job.log.state
        if p.checkpoint and Path(p.checkpoint).is_file():
            return "done", None
        if job.cancel_at is not None:
            return "cancelled", None
        if p.error:
            return "error", p.error
        if rc < 0:
            sig = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            return "error", (f"The training process was stopped by {sig} (perhaps the machine ran out of "
                             "memory); nothing was saved.")
        message = _last_error(self.jobs_dir / f"{job.spec.job_id}.out")
        return "error", message or (f"The training process ended with exit code {rc} and saved nothing; "
                                    f"its log is {self.jobs_dir / (job.spec.job_id + '.log')}.")

    def _schedule(self) -> None:
        if self._closed:
            return
        # a slot is a live process: a finished job whose process is still exiting holds its slot
        running = sum(j.proc is not None and j.proc.poll() is None for j in self._jobs.values())
        for job in self._jobs.values():
            if running >= self.max_running:
                break
            if job.state == "queued":
                self._start(job)
                running += job.state == "running"

    def _start(self, job: _Job) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(self.threads_per_job),
                   MKL_NUM_THREADS=str(self.threads_per_job))
        # Idle OpenMP threads sleep instead of spinning: on a shared, busy machine spinning threads
        # fight the other processes for the cores and training slows down many times over.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        argv = [self.python, "-m", "vae.train", "--config", str(job.config), "--events", str(job.log.path),
                "--no-progress"]
        stem = self.jobs_dir / job.spec.job_id
        try:
            with open(stem.with_suffix(".out"), "wb") as out, open(stem.with_suffix(".log"), "wb") as log:
                # in the repository root, `python -m vae.train` finds the package without PYTHONPATH
                job.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=log)
        except OSError as e:
            job.state, job.error = "error", f"Could not start the training process: {e.strerror or e}."
            return
        job.state, job.started_at = "running", time.time()

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
                if self._closed or all(j.state in FINISHED for j in self._jobs.values()):
                    self._monitor = None
                    return

    def _snapshot(self, job: _Job) -> JobStatus:
        p = job.log.state
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
            submitted_at=spec.submitted_at)

    def _sweep(self) -> None:
        now = time.time()
        for p in self.jobs_dir.glob("*"):
            try:
                if p.suffix in JOB_FILES and now - p.stat().st_mtime > KEEP_FILES_S:
                    p.unlink()
            except OSError:
                pass


def _last_error(path: Path) -> str | None:
    """The message of the `{"error": ...}` line that `python -m vae.train` prints when it gives up."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict) and d.get("error"):
            return str(d["error"])
    return None
