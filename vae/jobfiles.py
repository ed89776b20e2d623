"""The training queue's folder on disk, so that the queue survives a restart of its server.

Per job, `<jobs_dir>/<job_id>` plus a suffix:

    .json    the job file (vae.train.job.TrainingJob: settings, owner, submission time); written once
    .state   the queue's record of the job (`JobState`): queued, running (with the trainer's pid),
             done, error (with its sentence) or cancelled, and when a cancel was asked for; rewritten
             atomically at every change, and "running" is written *before* the trainer starts, so a
             crash can never leave a started job looking as if it still waits
    .jsonl   the trainer's events (vae.events), .out its stdout (its last JSON line), .log its stderr
    .cancel  a cancel asked for by a queue that does not run the trainings (the runner, or on Ray the
             job itself, carries it out)

and two lock files: `queue.lock`, whose `flock` holder runs the trainings (any other queue on the
folder, in this process or another, only reads it: `QueueLock`), and `submit.lock`, held while a
queue counts the caps and writes a new job (`submit_lock`), so that two replicas never both let in
the last place. A job is listed when both its job file and its state file can be read (`Job.read`);
a submit writes the state first, so the job file's rename is the moment the job appears.

A folder that takes no file locks (NFS mounted without them) is one sentence, `NoFileLocks`, where a
queue is made: without locks no queue could tell that it alone runs the trainings.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from .events import INTERRUPTED, EventLog, Progress
from .fileio import atomic_write, file_lock
from .train.job import TrainingJob
from .untrusted import bounded_json

STATES = ("queued", "running", "done", "error", "cancelled")
FINISHED = ("done", "error", "cancelled")
KEEP_FILES_S = 7 * 86400  # the files of a finished job are swept a week after its last change
CANCEL_SUFFIX = ".cancel"  # a cancel asked for through the folder
JOB_FILES = (".json", ".state", ".jsonl", ".out", ".log", CANCEL_SUFFIX)  # per job: settings, state, events, ...
LOCK_FILE = "queue.lock"
SUBMIT_LOCK = "submit.lock"


def saved(p: Progress) -> bool:
    """Whether the trainer whose events are `p` saved its model: such a training is done, whatever its
    process did after (stopped, failed, still exiting). Both backends decide by this."""
    return bool(p.checkpoint) and Path(p.checkpoint).is_file()


class NoFileLocks(OSError):
    """The jobs folder's file system refuses `flock` (NFS without locking): one sentence."""

    def __init__(self, jobs_dir: Path, e: OSError):
        super().__init__(f"The jobs folder {jobs_dir} takes no file locks ({e.strerror or e}), so no queue can "
                         "tell that it alone runs its trainings; mount it with locking (for NFS: without "
                         "`nolock`, with the lock service running).")


@contextmanager
def submit_lock(jobs_dir: Path):
    """Hold `<jobs_dir>/submit.lock` while a queue counts its caps and writes a new job (vae.fileio.file_lock:
    -> True, or None where the folder cannot hold the file: unlocked, as a single queue would be)."""
    with ExitStack() as stack:
        try:
            held = stack.enter_context(file_lock(jobs_dir / SUBMIT_LOCK))
        except OSError as e:
            raise NoFileLocks(jobs_dir, e) from None
        yield held


@dataclass
class JobState:
    """What the queue knows of one job besides its settings: the `.state` file."""

    state: str = "queued"
    pid: int | None = None  # the trainer's process id while it runs
    started_at: float | None = None
    ended_at: float | None = None
    cancel_at: float | None = None  # when a cancel was asked for
    error: str | None = None

    @classmethod
    def read(cls, path: Path) -> JobState | None:
        """The state in the file, or None when it is missing or not one of ours."""
        try:
            d = bounded_json(path.read_bytes()[:100_000])
        except OSError:
            return None
        if not isinstance(d, dict) or d.get("state") not in STATES:
            return None
        num = lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None  # noqa: E731
        pid = d.get("pid")
        return cls(d["state"], pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
                   num(d.get("started_at")), num(d.get("ended_at")), num(d.get("cancel_at")),
                   str(d["error"])[:1000] if d.get("error") is not None else None)

    def write(self, path: Path) -> None:
        atomic_write(path, (json.dumps(asdict(self)) + "\n").encode())


@dataclass
class Job:
    """One training as the queue holds it: its job file, its events, its state (saved in the state
    file at every change) and, while this queue's trainer for it lives, its process."""

    spec: TrainingJob  # what the job file says
    config: Path  # the job file
    log: EventLog
    state: str = "queued"
    error: str | None = None
    proc: subprocess.Popen | None = None
    pid: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    cancel_at: float | None = None
    interrupted: bool = False  # stopped by the server's shutdown, not by its user

    @classmethod
    def read(cls, config: Path) -> Job | None:
        """The job whose job file is `config`, as its state file records it; None unless both are readable."""
        st = JobState.read(config.with_suffix(".state"))
        try:
            spec = TrainingJob.read(config) if st is not None else None
        except ValueError:
            spec = None
        if spec is None or spec.job_id != config.stem:
            return None
        return cls(spec, config, EventLog(config.with_suffix(".jsonl")), st.state, st.error, None, st.pid,
                   st.started_at, st.ended_at, st.cancel_at)

    def take(self, st: JobState) -> None:
        """What another queue's state file says now (a read-only queue follows the runner's)."""
        self.state, self.error, self.pid, self.cancel_at = st.state, st.error, st.pid, st.cancel_at

    def save(self) -> None:
        """Write the state file; a disk that refuses costs the record, not the training."""
        try:
            JobState(self.state, self.pid, self.started_at, self.ended_at, self.cancel_at,
                     self.error).write(self.config.with_suffix(".state"))
        except OSError:
            pass

    def send_signal(self, sig: int) -> None:
        try:
            self.proc.send_signal(sig)
        except (ProcessLookupError, AttributeError):  # ended meanwhile, or never started
            pass

    def abandoned(self) -> None:
        """Record a job that a server which died was running (its trainer is gone): done if it had saved,
        cancelled if that was asked for, else the trainer's last error, else vae.events.INTERRUPTED."""
        p = self.log.read(final=True)
        if saved(p):
            self.finish("done")
        elif self.cancel_at is not None:
            self.finish("cancelled")
        else:
            self.finish("error", p.error or INTERRUPTED)

    def finish(self, state: str, error: str | None = None) -> None:
        self.state, self.error, self.ended_at = state, error, time.time()
        self.save()

    def outcome(self, rc: int) -> tuple[str, str | None]:
        """The state and sentence of a trainer that ended with exit code `rc`, its events read to the end."""
        p = self.log.state
        if saved(p):
            return "done", None
        if self.interrupted:
            return "error", INTERRUPTED
        if self.cancel_at is not None:
            return "cancelled", None
        if p.error:
            return "error", p.error
        if rc < 0:
            sig = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            return "error", (f"The training process was stopped by {sig} (perhaps the machine ran out of "
                             "memory); nothing was saved.")
        message = last_error(self.config.with_suffix(".out"))
        return "error", message or (f"The training process ended with exit code {rc} and saved nothing; "
                                    f"its log is {self.config.with_suffix('.log')}.")


def read_folder(jobs_dir: Path) -> list[Job]:
    """Every readable job in the folder, in submission order."""
    jobs = filter(None, map(Job.read, jobs_dir.glob("*.json")))
    return sorted(jobs, key=lambda j: (j.spec.submitted_at or 0.0, j.spec.job_id))


class QueueLock:
    """An exclusive `flock` on `<jobs_dir>/queue.lock`, taken without waiting. flock locks belong to an
    open file, so two queues of one process exclude each other as two processes do, and the kernel
    drops the lock when its process dies, however it dies. The file is opened non-inheritable, so a
    trainer never holds its server's lock."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another queue holds it
            os.close(fd)
            return False
        except OSError as e:  # ENOLCK and the like: this folder takes no locks at all
            os.close(fd)
            raise NoFileLocks(self.path.parent, e) from None
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops its lock
            self._fd = None


def _job_file_of(pid: int, configs: set[str]) -> str | None:
    """The job file among `configs` that process `pid` trains (`... --config FILE ...`), if it lives."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return None
    if status[status.rfind(b")") + 2:][:1] in (b"Z", b"X"):  # ended, not yet reaped
        return None
    for i, arg in enumerate(args[:-1]):
        if arg == b"--config" and os.fsdecode(args[i + 1]) in configs:
            return os.fsdecode(args[i + 1])
    return None


def trainer_pids(configs: set[str]) -> dict[int, str]:
    """Live processes training one of these job files, found by their command line: pid -> job file.
    Linux's /proc; elsewhere none are found."""
    try:
        pids = [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) != os.getpid()]
    except OSError:
        return {}
    return {pid: config for pid in pids if (config := _job_file_of(pid, configs))}


def kill_trainers(configs: set[str], timeout: float = 10.0) -> list[int]:
    """SIGKILL every live trainer of these job files (orphans of a server that died) and wait until each
    has ended, at most `timeout` seconds in all. Through a pidfd, checked again once open, so a pid that
    was reused meanwhile is never hit."""
    killed, deadline = [], time.monotonic() + timeout
    for pid in trainer_pids(configs) if configs else ():
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone already
            continue
        try:
            if _job_file_of(pid, configs):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                select.select([fd], [], [], max(0.0, deadline - time.monotonic()))  # readable once it has ended
                killed.append(pid)
        except OSError:
            pass
        finally:
            os.close(fd)
    return killed


def sweep(jobs_dir: Path, keep_s: float = KEEP_FILES_S) -> int:
    """Delete the files of every job that is not waiting or running (finished, or unreadable) once all its
    files are older than `keep_s`. Returns how many files went."""
    now, n = time.time(), 0
    stems: dict[str, list[Path]] = {}
    for p in jobs_dir.iterdir():
        if p.suffix in JOB_FILES and p.is_file():
            stems.setdefault(p.stem, []).append(p)
    for stem, files in stems.items():
        st = JobState.read(jobs_dir / f"{stem}.state")
        if st is not None and st.state not in FINISHED and (jobs_dir / f"{stem}.json").is_file():
            continue
        try:
            if all(now - p.stat().st_mtime > keep_s for p in files):
                for p in files:
                    p.unlink()
                    n += 1
        except OSError:
            pass
    return n


def last_error(path: Path) -> str | None:
    """The message of the `{"error": ...}` line that `python -m vae.train` prints when it gives up."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        d = bounded_json(line)
        if isinstance(d, dict) and d.get("error"):
            return str(d["error"])
    return None
