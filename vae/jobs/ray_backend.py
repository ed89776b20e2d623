"""Trainings as Ray jobs, for a Latent Lab spread over several machines (LATENT_LAB_RAY_ADDRESS).

    queue = RayQueue("http://head:8265", jobs_dir)   # what vae.jobs.make_queue makes when the variable is set
    queue.submit(...); queue.status(job_id); queue.jobs(owner=...); queue.cancel(job_id)   # as TrainingQueue

Each training is one job of the Ray Jobs API (ray.job_submission.JobSubmissionClient) whose entrypoint
is the trainer command the embedded queue runs, `python -m vae.train --config <jobs_dir>/<id>.json
--events <jobs_dir>/<id>.jsonl --no-progress`, in the repository root at the trainers' niceness,
reserving `threads_per_job` CPUs (entrypoint_num_cpus). Ray starts as many at once as the cluster has
CPUs for, anywhere in it, and keeps the rest PENDING (the page's "waiting"). No lifeline: a job belongs
to the cluster, so it goes on when the web replica that submitted it restarts or dies.

The cluster holds the queue's state. A job's submission id is `latent-lab-<id>` and its metadata names
the jobs folder, the owner and the name; every replica lists the cluster's jobs (list_jobs, cached for
`poll_s`) and reads the job files and the trainers' events from the folder, so every replica shows
every training, with its live curves, and may cancel it: `<id>.cancel` into the folder, then stop_job
(SIGTERM; the trainer stops between steps). Ray only queues the stop of a PENDING job on its supervisor,
which itself waits for a CPU; the file makes a waiting job cancelled at once on every replica, uncounted
by the caps, and its entrypoint exits at once when it finally starts. A training that saved its model is
done, whatever Ray says of its process after (vae.jobfiles.saved). The per-person and queue caps count
the cluster's jobs, under the folder's submit.lock (two replicas never both take the last place). What
the cluster needs (README):
the jobs folder, the library ($LATENT_LAB_HOME) and the repository with its Python at the same paths
on every machine, and a head whose RAY_JOB_START_TIMEOUT_SECONDS is longer than a training may wait
for a CPU (Ray fails a job that waits longer; its default is 15 minutes).

Ray is imported here only, when a queue first talks to the cluster. Without Ray, or with a head that
does not answer within `timeout_s`, `unavailable` is one sentence, submit raises it as a ValueError,
and the lists show what the cluster said last: never a hang, never a traceback.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import threading
import time
from pathlib import Path

from ..events import EventLog, Progress
from ..fileio import atomic_write
from ..jobfiles import CANCEL_SUFFIX, FINISHED, KEEP_FILES_S, submit_lock
from ..limits import Limits, env_int
from ..paths import ROOT
from ..train.job import TrainingJob
from ..untrusted import bounded_json
from .common import (JobStatus, check_caps, check_owner, count_states, new_job, saved, snapshot,
                     wait_finished)

PREFIX = "latent-lab-"  # of every submission id this app makes
STATES_OF = {"PENDING": "queued", "RUNNING": "running", "STOPPED": "cancelled", "SUCCEEDED": "done", "FAILED": "error"}
JOB_ID = re.compile(r"[0-9a-f]{12}")  # what vae.jobs.common.new_job makes; a job id read back names files
PASS_ENV = ("LATENT_LAB_HOME", "LATENT_LAB_DATA", "XDG_CACHE_HOME", "XDG_DATA_HOME")  # where a trainer saves, reads
RETRY_S = 15.0  # after the cluster failed to answer, calls fail at once for this long, then try again
SLOTS_TTL_S = 60.0  # how long the cluster's CPU count is trusted
WAITED_TOO_LONG = ("This training waited longer for a free CPU than the Ray cluster allows (its head's "
                   "RAY_JOB_START_TIMEOUT_SECONDS) and was dropped; nothing was saved. Start it again.")
NOT_SAVED = "The training ended without saving a model; nothing was saved."


class RayUnavailable(ValueError):
    """Ray is not installed, or the cluster does not answer: one sentence for the page."""


def dashboard_url(address: str) -> str:
    """The Jobs API's address: the head's dashboard, http://host:8265 (a scheme is added if missing)."""
    address = address.strip().rstrip("/")
    if not address:
        raise ValueError("LATENT_LAB_RAY_ADDRESS is empty; set it to the Ray dashboard's address, e.g. "
                         "http://head:8265, or unset it to train on this server.")
    return address if "://" in address else f"http://{address}"


def _first_line(text: object, limit: int = 300) -> str:
    line = next((s.strip() for s in str(text or "").splitlines() if s.strip()), "")
    return line[:limit].rstrip(" .:") or "no reason given"


class RayQueue:
    """The TrainingQueue interface over a Ray cluster's Jobs API; any number of replicas may hold one."""

    def __init__(self, address: str, jobs_dir: str | os.PathLike, *, threads_per_job: int | None = None,
                 max_queued: int | None = None, max_per_user: int | None = None,
                 max_train_seconds: float | None = None, max_epochs: int | None = None, nice: int | None = None,
                 data_roots: list[str | os.PathLike] | None = None, python: str = sys.executable,
                 timeout_s: float = 10.0, poll_s: float = 1.0):
        self.address = dashboard_url(address)
        Path(jobs_dir).mkdir(parents=True, exist_ok=True)
        self.jobs_dir = Path(jobs_dir).resolve()
        # one thread each unless told: on a cluster more trainings at once serve a class better than faster ones
        threads = threads_per_job or env_int("LATENT_LAB_TRAIN_THREADS", 1)
        self.limits = Limits.from_env(None, threads, max_queued, max_per_user, max_train_seconds, max_epochs,
                                      nice, data_roots)
        self.threads_per_job = self.limits.threads_per_job
        self.python, self.timeout_s, self.poll_s = python, timeout_s, poll_s
        self._lock = threading.RLock()
        self._client = None
        self._problem, self._problem_at = None, 0.0  # why the cluster did not answer, and when
        self._listed: dict[str, object] = {}  # job id -> the cluster's JobDetails, as last listed
        self._listed_at = float("-inf")
        self._specs: dict[str, TrainingJob] = {}
        self._logs: dict[str, EventLog] = {}
        self._errors: dict[str, str] = {}
        self._cancelled: set[str] = set()  # jobs whose cancel file was seen (it stays until the job is swept)
        self._slots: tuple[int, float] | None = None
        self._closed = False

    # -- what the pages read

    @property
    def caps(self) -> dict:
        return {**self.limits.caps, "max_running": self.max_running, "threads_per_job": self.threads_per_job}

    @property
    def max_running(self) -> int:
        """How many trainings the cluster runs at once: its CPUs over the threads of one (read once a minute)."""
        with self._lock:
            if self._slots is None or time.monotonic() > self._slots[1]:
                slots = self._count_slots()  # None: not known (yet): the configured number, asked again soon
                self._slots = (slots or self.limits.max_running, time.monotonic() + (SLOTS_TTL_S if slots else RETRY_S))
            return self._slots[0]

    @property
    def read_only(self) -> bool:
        return False  # every replica submits and cancels: the cluster is the queue

    @property
    def unavailable(self) -> str | None:
        """Why trainings cannot be started now (Ray missing, the cluster not answering), or None."""
        with self._lock:
            try:
                self._connect()
            except RayUnavailable as e:
                return str(e)
            return None

    # -- the TrainingQueue interface

    def submit(self, model_cfg: dict, train_cfg: dict, dataset: str = "mnist", data_dir=None,
               name: str | None = None, *, owner: str | None = None) -> str:
        """As TrainingQueue.submit; the job file goes into the shared folder and the job to the cluster."""
        spec = new_job(self.limits, model_cfg, train_cfg, dataset, data_dir, name, owner)
        with self._lock:
            if self._closed:
                raise ValueError("The server is shutting down; no new trainings start now.")
            self._connect()  # a cluster that does not answer is its sentence before anything is written
            with submit_lock(self.jobs_dir):  # no other replica counts or submits meanwhile
                return self._submit(spec, owner)

    def _submit(self, spec: TrainingJob, owner: str | None) -> str:
        """submit's count and write, with the queue's lock and the folder's submit.lock held."""
        listed = self._list(fresh=True, stale_ok=False)
        active = [(job_id, d) for job_id, d in listed.items() if STATES_OF.get(str(d.status)) in ("queued", "running")]
        check_caps(self.limits, [((d.metadata or {}).get("owner") or None, self._state(job_id, d)[0])
                                 for job_id, d in active], owner)
        config = self.jobs_dir / f"{spec.job_id}.json"
        try:
            spec.write(config)
        except OSError as e:
            raise ValueError(f"The jobs folder {self.jobs_dir} refused the training ({e.strerror or e}); "
                             "nothing was queued.") from None
        try:
            self._call("submit_job", entrypoint=self.entrypoint(spec), submission_id=PREFIX + spec.job_id,
                       entrypoint_num_cpus=self.threads_per_job, runtime_env={"env_vars": self._env()},
                       metadata={"latent_lab_jobs": str(self.jobs_dir), "job_id": spec.job_id,
                                 "owner": owner or "", "name": spec.name})
        except BaseException as e:
            config.unlink(missing_ok=True)
            if isinstance(e, RuntimeError):  # the cluster refused it (a Ray job with this id exists, a bad request)
                raise ValueError(f"The Ray cluster refused the training: {_first_line(e)}.") from None
            raise
        self._specs[spec.job_id] = spec
        self._listed_at = float("-inf")  # the next look lists it
        return spec.job_id

    def status(self, job_id: str) -> JobStatus | None:
        with self._lock:
            return next((s for s in self._statuses() if s.job_id == job_id), None)

    def jobs(self, owner: str | None = None) -> list[JobStatus]:
        with self._lock:
            return [s for s in self._statuses() if owner is None or s.owner == owner]

    def counts(self) -> dict:
        return count_states([s.state for s in self.jobs()])

    def cancel(self, job_id: str, owner: str | None = None) -> bool:
        """As TrainingQueue.cancel: the job's cancel file, then Ray stops the job (SIGTERM to the trainer,
        which stops between steps). A waiting job is cancelled at once; a running one once it has stopped."""
        with self._lock:
            d = self._list(fresh=True, stale_ok=False).get(job_id)
            if d is None or self._state(job_id, d)[0] in FINISHED:
                return False
            check_owner((d.metadata or {}).get("owner") or None, owner)
            request = self.jobs_dir / f"{job_id}{CANCEL_SUFFIX}"
            try:  # first: from now on the job is cancelled on every replica, and exits at once if it starts
                atomic_write(request, b"cancel\n")
            except OSError as e:
                raise ValueError(f"The training could not be cancelled: the jobs folder {self.jobs_dir} refused "
                                 f"its cancel file ({e.strerror or e}).") from None
            self._cancelled.add(job_id)
            self._listed_at = float("-inf")
            try:
                stopped, problem = self._call("stop_job", d.submission_id), None
            except RuntimeError as e:
                stopped, problem = False, e
            if stopped:
                return True
            now = self._list(fresh=True).get(job_id)  # stop_job False: it had ended; a RuntimeError: look again
            if now is not None and str(now.status) == "PENDING":
                return True  # its cancel file keeps it out of the line and makes it exit when it starts
            request.unlink(missing_ok=True)  # ended meanwhile, or running on: what it does is what it shows
            self._cancelled.discard(job_id)
            if problem is not None and now is not None and str(now.status) == "RUNNING":
                raise ValueError(f"The Ray cluster did not stop the training ({_first_line(problem)}); "
                                 "try again.") from None
            return False

    def wait(self, job_id: str, timeout: float = 120.0) -> JobStatus | None:
        """Block until the job has finished (for scripts and tests)."""
        return wait_finished(self.status, job_id, timeout, 0.5)

    def shutdown(self, timeout: float = 5.0, *, finish: bool = False) -> None:
        """Let go of the cluster. The trainings go on: they are the cluster's, not this replica's."""
        with self._lock:
            self._closed = True

    def entrypoint(self, spec: TrainingJob) -> str:
        """The shell command the Ray job runs: the embedded queue's trainer command, without the lifeline."""
        q = shlex.quote
        config, events, cancel = (self.jobs_dir / f"{spec.job_id}{x}" for x in (".json", ".jsonl", CANCEL_SUFFIX))
        return (f"cd {q(str(ROOT))} || exit 1; test -e {q(str(cancel))} && exit 0; "  # cancelled while it waited
                f"exec nice -n {self.limits.nice} {q(self.python)} -m vae.train "
                f"--config {q(str(config))} --events {q(str(events))} --no-progress")

    # -- internals (called with the lock held)

    def _env(self) -> dict[str, str]:
        n = str(self.threads_per_job)
        env = {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n,
               "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        return {**env, **{k: os.environ[k] for k in PASS_ENV if os.environ.get(k)}}

    def _connect(self):
        if self._client is not None:
            return self._client
        if self._problem is not None and time.monotonic() - self._problem_at < RETRY_S:
            raise RayUnavailable(self._problem)
        try:
            from ray.job_submission import JobSubmissionClient
        except ImportError:
            self._fail("Trainings run on a Ray cluster here (LATENT_LAB_RAY_ADDRESS is set), but Ray is not "
                       "installed, so trainings are unavailable: install requirements-ray.txt.")
        timeout = (min(3.0, self.timeout_s), self.timeout_s)  # to connect, to answer

        class Client(JobSubmissionClient):  # every request of the Jobs API with a timeout
            def _do_request(self, method, endpoint, **kwargs):
                kwargs.setdefault("timeout", timeout)
                return super()._do_request(method, endpoint, **kwargs)

        try:
            client = self._client = Client(self.address)
        except Exception as e:  # noqa: BLE001 -- requests, Ray and pydantic each raise their own
            self._fail(self._unreachable(e))
        self._problem = None
        self._sweep()  # may fail (and forget the client): the caller's own call then says so
        return client

    def _unreachable(self, e: BaseException) -> str:
        names = {c.__name__ for c in type(e).__mro__}
        why = (f"no answer within {self.timeout_s:g} s" if "Timeout" in names else
               "nothing answered there" if "ConnectionError" in names else _first_line(e))
        return (f"The Ray cluster at {self.address} does not answer ({why}), so trainings are "
                "unavailable for now; start its head or correct LATENT_LAB_RAY_ADDRESS (the dashboard's "
                "address, e.g. http://head:8265).")

    def _fail(self, sentence: str):
        self._client, self._problem, self._problem_at = None, sentence, time.monotonic()
        raise RayUnavailable(sentence)

    def _call(self, method: str, *args, **kwargs):
        """One Jobs API call. A request that fails (no answer, a refused connection) makes the cluster
        unavailable for RETRY_S; the cluster's own refusals stay RuntimeErrors for the caller."""
        client = self._connect()
        try:
            return getattr(client, method)(*args, **kwargs)
        except RuntimeError:
            raise
        except Exception as e:  # noqa: BLE001
            self._fail(self._unreachable(e))

    def _list(self, fresh: bool = False, stale_ok: bool = True) -> dict:
        """This app's jobs on the cluster for this folder: job id -> JobDetails, listed at most once a poll_s."""
        if fresh or time.monotonic() - self._listed_at >= self.poll_s:
            try:
                details = self._call("list_jobs")
            except (RayUnavailable, RuntimeError) as e:
                if stale_ok:
                    return self._listed  # what the cluster said last
                if isinstance(e, RayUnavailable):
                    raise
                raise ValueError(f"The Ray cluster refused to list its jobs: {_first_line(e)}.") from None
            mine = {}
            for d in details:
                meta = d.metadata or {}
                if (d.submission_id or "").startswith(PREFIX) and meta.get("latent_lab_jobs") == str(self.jobs_dir):
                    job_id = meta.get("job_id") or d.submission_id[len(PREFIX):]
                    if isinstance(job_id, str) and JOB_ID.fullmatch(job_id):  # it names files: only ours
                        mine[job_id] = d
            self._listed, self._listed_at = mine, time.monotonic()
        return self._listed

    def _spec(self, job_id: str) -> TrainingJob | None:
        if job_id not in self._specs:
            try:
                self._specs[job_id] = TrainingJob.read(self.jobs_dir / f"{job_id}.json")
            except ValueError:  # not (yet) on this replica's view of the folder: not listed
                return None
        return self._specs[job_id]

    def _statuses(self) -> list[JobStatus]:
        rows = [(job_id, spec, d) for job_id, d in self._list().items() if (spec := self._spec(job_id))]
        rows.sort(key=lambda r: (r[1].submitted_at or 0.0, r[0]))
        out, waiting = [], 0
        for job_id, spec, d in rows:
            state, p = self._state(job_id, d)
            error = None
            if state == "error":
                error = NOT_SAVED if str(d.status) == "SUCCEEDED" else self._error(job_id, d, p)
            waiting += state == "queued"
            out.append(snapshot(spec, state, p, position=waiting if state == "queued" else 0, error=error,
                                cancelling=self._cancel_asked(job_id)))
        return out

    def _state(self, job_id: str, d) -> tuple[str, Progress]:
        """Our state of a listed job, and its events so far: saved is done; a cancel asked for (its file) makes a
        waiting or ended job cancelled (a running one runs until it stops); ended unsaved, SUCCEEDED is an error."""
        log = self._logs.setdefault(job_id, EventLog(self.jobs_dir / f"{job_id}.jsonl"))
        ray_state = STATES_OF.get(str(d.status), "error")
        p = log.read(final=ray_state in FINISHED)
        if saved(p):
            return "done", p
        if self._cancel_asked(job_id):
            return ("running" if ray_state == "running" else "cancelled"), p
        return ("error" if ray_state == "done" else ray_state), p

    def _cancel_asked(self, job_id: str) -> bool:
        """Whether some replica asked for this job to be cancelled: its cancel file in the jobs folder."""
        if job_id not in self._cancelled and (self.jobs_dir / f"{job_id}{CANCEL_SUFFIX}").exists():
            self._cancelled.add(job_id)
        return job_id in self._cancelled

    def _error(self, job_id: str, d, p) -> str:
        """The sentence of a failed job: the trainer's own (its events, else its last JSON line in the job's
        logs), else what Ray says of it."""
        if job_id not in self._errors:
            message = p.error
            if message is None and d.error_type == "JOB_SUPERVISOR_ACTOR_START_TIMEOUT":
                message = WAITED_TOO_LONG
            if message is None:
                try:
                    logs = self._call("get_job_logs", d.submission_id) or ""
                except (RuntimeError, RayUnavailable):
                    logs = ""
                for line in reversed(logs[-100_000:].splitlines()):
                    if isinstance(j := bounded_json(line), dict) and j.get("error"):
                        message = str(j["error"])[:1000]
                        break
            if message is None:
                message = f"The training failed on the Ray cluster ({_first_line(d.message)}); nothing was saved."
            self._errors[job_id] = message
        return self._errors[job_id]

    def _count_slots(self) -> int | None:
        try:
            self._connect()  # a head that does not answer is not asked again here
            from ray.util.state import list_nodes

            nodes = list_nodes(address=self.address, timeout=max(1, int(self.timeout_s)),
                               raise_on_missing_output=False)
            cpus = sum(float((n.resources_total or {}).get("CPU", 0)) for n in nodes if str(n.state) == "ALIVE")
        except Exception:  # noqa: BLE001 -- no Ray, no answer
            return None
        return max(1, int(cpus // self.threads_per_job)) if cpus > 0 else None  # no node has joined yet

    def _sweep(self) -> None:
        """Forget the jobs of this folder that finished more than a week ago: on the cluster and their files."""
        now_ms = time.time() * 1000
        try:
            for job_id, d in self._list(fresh=True, stale_ok=False).items():
                if d.end_time and STATES_OF.get(str(d.status)) in FINISHED and now_ms - d.end_time > KEEP_FILES_S * 1000:
                    self._call("delete_job", d.submission_id)
                    for suffix in (".json", ".jsonl", CANCEL_SUFFIX):
                        (self.jobs_dir / f"{job_id}{suffix}").unlink(missing_ok=True)
        except (ValueError, RuntimeError, OSError):
            pass  # next time
