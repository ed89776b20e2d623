"""The embedded training queue: each training is a `python -m vae.train` subprocess of this server.

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
per person, the longest time budget, the most epochs, the trainers' niceness, the data roots). A
training with no owner is the operator's (the command line's, `python -m vae.jobs`): the per-person
cap does not count it; every other limit does.

The queue survives its server: its state lives in its folder (the files: vae.jobfiles). A queue made
on the folder after a restart or a crash finds every job there: waiting ones wait on, in submission
order; one that was running when its server died is an error (vae.events.INTERRUPTED) and is never
started again; finished ones keep their state. Only the queue that holds the folder's lock (the
runner) runs trainings. Any other queue on the folder (a second server, the command line, a second
queue in this process) shows them and hands its submits and cancels to the runner through the folder:
a submit writes the job's state, queued, then its job file; a cancel writes `<job_id>.cancel`; the
runner takes both up within `poll_s` (when the folder's mtime changed, and every RESCAN_S regardless,
for a file system whose mtimes lag). When the lock is free, a queue made with `runner=True` takes it
over. The caps are counted, and the job written, under the folder's `submit.lock`, so two queues on
one folder never both let in the last place.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from ..events import EventLog
from ..fileio import atomic_write
from ..jobfiles import (CANCEL_SUFFIX, FINISHED, LOCK_FILE, Job, JobState, QueueLock, kill_trainers, read_folder,
                        submit_lock, sweep)
from ..limits import Limits
from ..paths import ROOT
from .common import (JobStatus, check_caps, check_owner, count_states, new_job, saved, snapshot,
                     wait_finished)

KILL_AFTER_S = 30.0  # a cancelled job that has not stopped by then is killed
RESCAN_S = 5.0  # the runner looks for hand-offs at least this often, whatever the folder's mtime says
log = logging.getLogger(__name__)


class TrainingQueue:
    """Runs trainings as subprocesses, at most `max_running` at once; shared by all sessions."""

    def __init__(self, jobs_dir: str | os.PathLike, max_running: int | None = None,
                 threads_per_job: int | None = None, max_queued: int | None = None, *,
                 max_per_user: int | None = None, max_train_seconds: float | None = None,
                 max_epochs: int | None = None, nice: int | None = None,
                 data_roots: list[str | os.PathLike] | None = None, python: str = sys.executable,
                 poll_s: float = 0.5, runner: bool = True):
        Path(jobs_dir).mkdir(parents=True, exist_ok=True)
        self.jobs_dir = Path(jobs_dir).resolve()  # the trainers' command lines name their job files by it
        self.limits = Limits.from_env(max_running, threads_per_job, max_queued, max_per_user, max_train_seconds,
                                      max_epochs, nice, data_roots)
        self.max_running, self.threads_per_job = self.limits.max_running, self.limits.threads_per_job
        self.python = python
        self.poll_s = poll_s
        self.runner = runner  # False: never runs trainings, only shows them and hands submits over
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._folder_lock = QueueLock(self.jobs_dir / LOCK_FILE)
        self._monitor: threading.Thread | None = None
        self._closed = False
        self._last_submitted = 0.0
        self._folder_mtime: int | None = None  # the folder's, when the runner last looked for hand-offs
        self._scanned_at = float("-inf")  # time.monotonic() then
        with self._lock:
            self._refresh()  # a folder that takes no file locks is its sentence here (NoFileLocks) ...
            if not self.runner:
                self.has_runner  # noqa: B018 -- ... for a queue that never runs trainings too: it probes the lock
        atexit.register(self.shutdown)  # no training outlives the server

    @property
    def caps(self) -> dict:
        """The limits this queue enforces (vae.limits), for a form to show its ranges."""
        return self.limits.caps

    @property
    def read_only(self) -> bool:
        """True while another queue runs this folder's trainings (this one shows them and hands over)."""
        with self._lock:
            self._refresh()
            return not self._folder_lock.held

    @property
    def has_runner(self) -> bool:
        """Whether some queue, this one or another, runs the folder's trainings now."""
        with self._lock:
            if self._folder_lock.held:
                return True
            probe = QueueLock(self.jobs_dir / LOCK_FILE)
            if probe.acquire():
                probe.release()
                return False
            return True

    @property
    def unavailable(self) -> str | None:
        """Why trainings cannot be started now (never, here: the queue is this server's own)."""
        return None

    # -- public API

    def submit(self, model_cfg: dict, train_cfg: dict, dataset: str = "mnist", data_dir=None,
               name: str | None = None, *, owner: str | None = None) -> str:
        """Validate, check the caps and that the data is there, and queue a training for `owner` (an
        opaque id; None: the operator's). Returns its job id. Raises ValueError (bad settings, over a
        cap, full queue) or DataError (no data, a folder outside the data roots), each with a sentence."""
        spec = new_job(self.limits, model_cfg, train_cfg, dataset, data_dir, name, owner)
        with self._lock, submit_lock(self.jobs_dir):  # no other queue on the folder counts or writes meanwhile
            self._refresh()
            if self._closed:
                raise ValueError("The server is shutting down; no new trainings start now.")
            if self._folder_lock.held:
                self._take_handoffs(force=True)  # the runner counts what other queues handed over too
            check_caps(self.limits, [(j.spec.owner, j.state) for j in self._jobs.values()], owner)
            spec = replace(spec, submitted_at=max(spec.submitted_at, self._last_submitted + 1e-6))  # strict order
            self._last_submitted = spec.submitted_at
            job = Job(spec, self.jobs_dir / f"{spec.job_id}.json", EventLog(self.jobs_dir / f"{spec.job_id}.jsonl"))
            state_file = job.config.with_suffix(".state")
            try:  # the state first: the job file's rename is the moment a runner can see the job, whole
                JobState().write(state_file)  # queued: a runner takes it up (this one, or the lock's holder)
                spec.write(job.config)
            except OSError as e:
                state_file.unlink(missing_ok=True)
                raise ValueError(f"The jobs folder {self.jobs_dir} refused the training ({e.strerror or e}); "
                                 "nothing was queued.") from None
            self._jobs[spec.job_id] = job
            self._schedule()
        return spec.job_id

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
            return count_states([j.state for j in self._jobs.values()])

    def cancel(self, job_id: str, owner: str | None = None) -> bool:
        """Cancel a queued or running job; False when it had already finished or is unknown. With
        `owner` (the one asking), only that owner's job: another's is refused with a ValueError."""
        with self._lock:
            self._refresh()
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return False
            check_owner(job.spec.owner, owner)
            if not self._folder_lock.held:
                if job.state == "queued" and self._folder_lock.acquire():  # no runner now: cancel it in place
                    try:
                        if (st := JobState.read(job.config.with_suffix(".state"))) is not None:
                            job.take(st)
                        if job.state == "queued":
                            job.finish("cancelled")
                        return job.state == "cancelled"
                    finally:
                        self._folder_lock.release()
                atomic_write(job.config.with_suffix(CANCEL_SUFFIX), b"cancel\n")  # the runner carries it out
                return True
            self._cancel(job)
            self._schedule()
            return True

    def shutdown(self, timeout: float = 5.0, *, finish: bool = False) -> None:
        """Start nothing more; stop every running training (each is recorded as interrupted; waiting ones
        wait on, on disk, for the next queue on this folder), wait for them to end and let go of the
        folder. With `finish`, the running trainings go on to their end first (at most `timeout` s)."""
        with self._lock:
            self._closed = True  # first, so that nothing below starts a waiting job
            running = [j for j in self._jobs.values() if j.proc is not None and j.proc.poll() is None]
            if not finish:
                for job in running:
                    job.interrupted = job.cancel_at is None  # a cancel asked for stays a cancel
                    job.send_signal(signal.SIGTERM)
            procs = [j.proc for j in running]  # the monitor may reap them (and drop job.proc) meanwhile
        deadline = time.time() + timeout
        for i, proc in enumerate(procs):
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                if finish:  # out of time: as without `finish`
                    running[i].interrupted = running[i].cancel_at is None
                    proc.terminate()
                    try:
                        proc.wait(10)
                        continue
                    except subprocess.TimeoutExpired:
                        pass
                proc.kill()
                proc.wait()
        with self._lock:
            self._poll()
            self._folder_lock.release()

    def wait(self, job_id: str, timeout: float = 120.0) -> JobStatus:
        """Block until the job has finished (for scripts and tests)."""
        return wait_finished(self.status, job_id, timeout, 0.2)

    # -- internals (called with the lock held)

    def _refresh(self) -> None:
        """Become the folder's runner when its lock is free (and pick up what a dead server left), or, while
        another queue holds it, read the folder again."""
        if self._closed or self._folder_lock.held:
            return
        if self.runner and self._folder_lock.acquire():
            self._recover()
            return
        for config in sorted(self.jobs_dir.glob("*.json")):  # read-only: the runner's files are the truth
            if (job := self._jobs.get(config.stem)) is None:
                if (job := Job.read(config)) is not None:
                    self._jobs[config.stem] = job
            elif (st := JobState.read(config.with_suffix(".state"))) is not None:
                job.take(st)
        self._sort()

    def _sort(self) -> None:
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
        self._take_handoffs(force=True)
        self._schedule()
        self._ensure_monitor()  # the runner keeps looking for hand-offs while it holds the folder

    def _take_handoffs(self, force: bool = False) -> None:
        """The runner's side of the folder: adopt the jobs that other queues wrote into it and carry out
        their cancel requests. Looks when the folder changed (its mtime), so a poll mostly costs one stat,
        and every RESCAN_S regardless: on a shared file system an mtime may lag or stay within its tick."""
        try:
            mtime = self.jobs_dir.stat().st_mtime_ns
        except OSError:
            return
        if mtime == self._folder_mtime and time.monotonic() - self._scanned_at < RESCAN_S and not force:
            return
        self._folder_mtime, self._scanned_at = mtime, time.monotonic()
        for config in self.jobs_dir.glob("*.json"):
            if config.stem not in self._jobs and (job := Job.read(config)) is not None:
                if job.state == "running":  # not ours, and no queue but the runner starts trainers
                    job.abandoned()
                self._jobs[config.stem] = job
                self._last_submitted = max(self._last_submitted, job.spec.submitted_at or 0.0)
        self._sort()
        for request in self.jobs_dir.glob(f"*{CANCEL_SUFFIX}"):
            if (job := self._jobs.get(request.stem)) is not None and job.state not in FINISHED:
                self._cancel(job)
            request.unlink(missing_ok=True)

    def _cancel(self, job: Job) -> None:
        if job.state == "queued":
            job.finish("cancelled")
        elif job.cancel_at is None:
            job.cancel_at = time.time()
            job.save()  # a restart in between still knows it was cancelled
            job.send_signal(signal.SIGTERM)  # vae.train stops between steps, saves nothing

    def _poll(self) -> None:
        if self._folder_lock.held and not self._closed:
            self._take_handoffs()
        for job in self._jobs.values():
            if job.proc is None:
                continue
            rc = job.proc.poll()
            if rc is None:
                if job.state == "running":
                    if saved(job.log.read()):
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
        """A daemon thread that starts queued jobs when slots free up and takes up hand-offs, even if no
        page is polling."""
        if self._monitor is not None and self._monitor.is_alive():
            return
        self._monitor = threading.Thread(target=self._watch, name="latent-lab-train-queue", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        while True:
            time.sleep(self.poll_s)
            with self._lock:
                try:
                    self._poll()
                except Exception as e:  # noqa: BLE001 -- e.g. ESTALE on NFS: the next look may succeed
                    log.warning("The training queue could not look at %s (%s); it tries again.", self.jobs_dir, e)
                idle = all(j.state in FINISHED and j.proc is None for j in self._jobs.values())
                if self._closed or idle and not self._folder_lock.held:
                    self._monitor = None
                    return

    def _snapshot(self, job: Job) -> JobStatus:
        position = 0
        if job.state == "queued":
            waiting = [j for j in self._jobs.values() if j.state == "queued"]
            position = waiting.index(job) + 1
        return snapshot(job.spec, job.state, job.log.read(), position=position, error=job.error,
                        cancelling=job.cancel_at is not None and job.state == "running")
