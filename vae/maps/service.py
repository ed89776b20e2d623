"""2-D maps computed once, in the background, and kept on disk.

    store = MapStore(cache_dir, readonly_dirs=[bundled_maps])
    service = MapService(store, isolate=True)       # one per server; slow maps in worker processes
    job = service.request(fingerprint, z, "tsne", {"perplexity": 30})
    job.status, job.progress, job.embedding         # "running" with the embedding so far, then "done"
    job.wait(timeout=1.0)                           # True once it has ended (done or error)

A map is keyed by the model's weights fingerprint, the method and its parameters. Finished
maps are written atomically as small .npz files (float32 coordinates), so a map seen before
loads in milliseconds, also after a restart. Several servers (replicas behind a proxy) may share
one folder: a slow map is computed under a lock file beside it (`<key>.lock`, fcntl.flock), so a
second server asking for the same map waits for the first one's file and reads it (its job shows
the holder's progress, which the holder writes in the lock file), and a holder that dies releases
its lock with its process: a waiter then computes the map itself.

Native and PCA maps take milliseconds and are computed on the caller's thread. t-SNE and UMAP
each have a lane: a one-thread executor that runs that method's maps one at a time, so a UMAP
never waits behind a t-SNE. A job wraps the executor's Future. With `isolate=True` (the app)
each lane hands its maps to its own worker process (`vae.maps.worker`), so the server's Python
stays responsive; with `isolate=False` (notebooks, tests) they run on the lane's thread.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from multiprocessing import Pipe
from pathlib import Path
from threading import Lock

import numpy as np

from ..fileio import atomic_write, file_lock
from ..paths import ROOT
from . import worker
from .projection import compute_map, resolve_params, warm

LANES = ("tsne", "umap")
# openTSNE's OpenMP threads wait for each other at every iteration. By default libgomp spins for
# 300,000 rounds first, which on a busy machine burns the time slices the other thread needs
# (benchmarks/README.md, "GOMP_SPINCOUNT").
GOMP_SPINCOUNT = "10000"
LOCK_POLL_S = 0.25  # how often a server waiting on another's map looks at its lock and progress


def map_key(fingerprint: str, method: str, params: dict) -> str:
    blob = json.dumps({"m": method, "p": resolve_params(method, params)}, sort_keys=True)
    return f"{fingerprint}-{method}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


class MapStore:
    """Finished maps as .npz files: one writable folder plus read-only ones (the bundled maps)."""

    def __init__(self, folder, readonly_dirs=()):
        self.folder = Path(folder)
        self.readonly_dirs = [Path(d) for d in readonly_dirs]

    def get(self, fingerprint: str, method: str, params: dict) -> np.ndarray | None:
        name = f"{map_key(fingerprint, method, params)}.npz"
        for path in (d / name for d in (*self.readonly_dirs, self.folder)):
            if path.is_file():
                try:
                    with np.load(path) as f:
                        y = f["y"].astype(np.float32)
                    if y.ndim == 2 and y.shape[1] == 2 and np.isfinite(y).all():
                        return y
                except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
                    continue  # a damaged cache file is recomputed, never trusted
        return None

    def lock(self, fingerprint: str, method: str, params: dict, blocking: bool = True):
        """A `with` block holding this map's lock file, across processes and machines on the folder: True
        when held; False (only with blocking=False) while another holder computes the map; None where
        the folder takes no lock file."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # file_lock then says None
        return file_lock(self._lock_path(fingerprint, method, params), blocking=blocking)

    def report(self, fingerprint: str, method: str, params: dict, fraction: float) -> None:
        """The lock holder's progress, written in the lock file for servers waiting on it."""
        try:
            self._lock_path(fingerprint, method, params).write_text(f"{fraction:.4f}")
        except OSError:
            pass  # the waiters then show less, nothing else

    def reported(self, fingerprint: str, method: str, params: dict) -> float:
        """The progress the holder of this map's lock last wrote (0 when it has written none)."""
        try:
            return min(max(float(self._lock_path(fingerprint, method, params).read_text()), 0.0), 1.0)
        except (OSError, ValueError):
            return 0.0  # none yet, or read while the holder was writing it

    def _lock_path(self, fingerprint: str, method: str, params: dict) -> Path:
        return self.folder / f"{map_key(fingerprint, method, params)}.lock"

    def put(self, fingerprint: str, method: str, params: dict, y: np.ndarray) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez_compressed(buf, y=np.asarray(y, np.float32))
        path = self.folder / f"{map_key(fingerprint, method, params)}.npz"
        atomic_write(path, buf.getvalue())
        return path


class MapError(Exception):
    """A map could not be computed; the message is a sentence for the page."""


@dataclass
class MapJob:
    """One map being computed (or found): its Future, and what a page draws meanwhile."""

    key: str
    method: str
    params: dict
    n_points: int
    future: Future = field(default_factory=Future, repr=False)
    progress: float = 0.0
    embedding: np.ndarray | None = field(default=None, repr=False)  # the embedding so far, then the map
    started: float = 0.0  # time.perf_counter() when it started computing; 0 if it never had to
    seconds: float = 0.0
    elsewhere: bool = False  # another server on the shared folder computes it; progress is that one's

    @classmethod
    def finished(cls, key: str, method: str, params: dict, y: np.ndarray) -> "MapJob":
        """A job for a map that is already there (cached on disk, or given)."""
        job = cls(key, method, params, len(y), progress=1.0, embedding=y)
        job.future.set_result(y)
        return job

    @property
    def status(self) -> str:
        """queued, running, done or error."""
        if self.future.done():
            return "error" if self.future.cancelled() or self.future.exception() is not None else "done"
        return "running" if self.future.running() else "queued"

    @property
    def error(self) -> str:
        """The sentence a page shows for a failed map ("" while it has not failed)."""
        if not self.future.done():
            return ""
        if self.future.cancelled():
            return "The map was cancelled; ask for it again."
        e = self.future.exception()
        if e is None:
            return ""
        return str(e) if isinstance(e, MapError) else f"{type(e).__name__}: {e}"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` seconds for the map to end; -> whether it has (done or error)."""
        return not wait_all([self.future], timeout).not_done


class WorkerProcess:
    """One `python -m vae.maps.worker` child for a lane: started on first use, restarted if it died.

    Its lane's single thread makes every call, so calls never overlap; `stop()` may come from any
    thread and kills the child at once (a call in flight then ends in a MapError)."""

    def __init__(self, lane: str, threads: int | None = None):
        self.lane = lane  # its CPU priority (vae.maps.worker.NICENESS)
        self.threads = threads
        self.warm = False  # its libraries are loaded
        self._proc: subprocess.Popen | None = None
        self._conn = None
        self._lifeline: int | None = None  # the write end of the child's lifeline pipe (see vae.maps.worker)
        self._lock = Lock()  # guards starting and stopping

    def _ensure(self):
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return self._conn
            self._close()
            ours, theirs = Pipe()
            read_end, self._lifeline = os.pipe()
            env = dict(os.environ, LATENT_LAB_MAP_LANE=self.lane)
            env.setdefault("GOMP_SPINCOUNT", GOMP_SPINCOUNT)
            if self.threads:
                env["LATENT_LAB_MAP_THREADS"] = str(self.threads)
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "vae.maps.worker", str(theirs.fileno()), str(read_end)],
                    pass_fds=(theirs.fileno(), read_end), stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
            finally:
                theirs.close()  # the child has its own copies: our end then reads EOF if it dies
                os.close(read_end)
            self._conn, self.warm = ours, False
            return self._conn

    def call(self, message: dict, z: np.ndarray | None = None, on_progress=None) -> np.ndarray | None:
        """Send one request and relay its progress; -> the finished embedding (None for a warm-up)."""
        warming = message.get("op") == "warm"
        if warming and self.warm and self.pid is not None:
            return None
        conn = self._ensure()
        try:
            worker.send(conn, message, z)
            while True:
                reply, array = worker.receive(conn)
                if reply["type"] == "progress":
                    if on_progress is not None:
                        on_progress(reply["done"], reply["total"], array)
                elif reply["type"] == "done":
                    self.warm = self.warm or warming
                    return array
                else:
                    raise MapError(reply["message"])
        except (EOFError, OSError, ValueError) as e:
            self.stop()
            raise MapError("The map worker process stopped unexpectedly (out of memory?). Ask for the map "
                           "again to retry.") from e

    def stop(self) -> None:
        """Kill the child now, also mid-request."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._proc is not None:
            try:
                self._proc.kill()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self._conn is not None:
            self._conn.close()
        if self._lifeline is not None:
            os.close(self._lifeline)
        self._proc = self._conn = self._lifeline = None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None


class MapService:
    """Computes maps in the background; shared by every browser session of one server."""

    def __init__(self, store: MapStore, isolate: bool = False, threads: int | None = None):
        self.store = store
        self._jobs: dict[str, MapJob] = {}
        self._lock = Lock()
        self._lanes = {lane: ThreadPoolExecutor(1, thread_name_prefix=f"latent-lab-map-{lane}") for lane in LANES}
        self._workers = {lane: WorkerProcess(lane, threads) for lane in LANES} if isolate else {}
        self._warm_ups: list[Future] = []

    def request(self, fingerprint: str, z: np.ndarray, method: str, params: dict | None = None,
                seed: int = 0) -> MapJob:
        """The job for this map, started if nobody has asked before (or the last try failed)."""
        params = resolve_params(method, params)
        key = map_key(fingerprint, method, params)
        here = False  # native or PCA, computed on this thread below
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.status != "error":
                return job
            cached = self.store.get(fingerprint, method, params)
            if cached is not None:
                job = MapJob.finished(key, method, params, cached)
            else:
                job = MapJob(key, method, params, len(z))
                if method in LANES:
                    job.future = self._lanes[method].submit(self._compute, job, fingerprint, np.array(z, np.float32),
                                                            seed)
                else:  # milliseconds (or an unknown method's error): never queued behind a t-SNE
                    here = job.future.set_running_or_notify_cancel()
            self._jobs[key] = job
        if here:
            try:
                job.future.set_result(self._compute(job, fingerprint, np.array(z, np.float32), seed))
            except Exception as e:  # the job's `error` says it in a sentence
                job.future.set_exception(e)
        return job

    def peek(self, fingerprint: str, method: str, params: dict | None = None) -> MapJob | None:
        return self._jobs.get(map_key(fingerprint, method, resolve_params(method, params)))

    def _compute(self, job: MapJob, fingerprint: str, z: np.ndarray, seed: int) -> np.ndarray:
        if job.method not in LANES:  # milliseconds: a second server computing it too costs nothing
            return self._computed(job, fingerprint, z, seed)
        while True:
            with self.store.lock(fingerprint, job.method, job.params, blocking=False) as held:
                if held is not False:  # ours (or no lock file possible: computed unlocked, as one server would)
                    y = self.store.get(fingerprint, job.method, job.params)  # another server's, finished meanwhile
                    if y is not None:
                        job.embedding, job.progress = y, 1.0
                        return y
                    job.elsewhere = False  # (that one stopped without its map: computed here after all)
                    return self._computed(job, fingerprint, z, seed, report=bool(held))
            # Another server computes this map: wait for its file, showing the progress it writes.
            job.elsewhere = True
            job.progress = self.store.reported(fingerprint, job.method, job.params)
            time.sleep(LOCK_POLL_S)

    def _computed(self, job: MapJob, fingerprint: str, z: np.ndarray, seed: int,
                  report: bool = False) -> np.ndarray:
        job.started = time.perf_counter()
        reported = 0.0  # when the progress was last written for other servers
        if report:
            self.store.report(fingerprint, job.method, job.params, 0.0)

        def progress(done, total, partial):
            nonlocal reported
            job.progress = done / max(total, 1)
            if partial is not None:
                job.embedding = partial
            if report and time.perf_counter() - reported >= LOCK_POLL_S:
                reported = time.perf_counter()
                self.store.report(fingerprint, job.method, job.params, job.progress)

        try:
            w = self._workers.get(job.method)
            if w is not None:
                y = w.call({"op": "map", "method": job.method, "params": job.params, "seed": seed}, z, progress)
            else:
                y = compute_map(z, job.method, job.params, seed=seed, progress=progress)
            try:
                self.store.put(fingerprint, job.method, job.params, y)
            except OSError:
                pass  # a read-only or full disk costs only the cache, not the map
            job.embedding, job.progress = y, 1.0
            return y
        finally:
            job.seconds = time.perf_counter() - job.started

    def warm_up(self, fingerprint: str, z: np.ndarray, methods=("pca", "tsne", "umap")) -> None:
        """Start the default maps of a newly trained, loaded or picked model before anyone asks.

        The fast ones are computed at once; the slow ones run one after another, in the order of
        `methods` (each asked for when the one before has ended), since side by side they would
        share the machine's few cores and the first one (t-SNE, the map page's default view) would
        be ready later. A map asked for explicitly still starts at once on its own lane.
        """
        slow = [m for m in methods if m in LANES]
        for m in methods:
            if m not in LANES:
                self.request(fingerprint, z, m)
        self._chain(fingerprint, z, slow)

    def _chain(self, fingerprint: str, z: np.ndarray, methods: list[str]) -> None:
        if methods:
            job = self.request(fingerprint, z, methods[0])
            job.future.add_done_callback(lambda _: self._chain(fingerprint, z, methods[1:]))

    def prestart(self) -> None:
        """Start the worker processes and load (for UMAP: compile, once per machine) their libraries,
        so the first map anyone asks for starts computing at once. A map asked for meanwhile waits
        for its own lane's warm-up only."""
        with self._lock:
            if not self._warm_ups:
                self._warm_ups = [self._lanes[lane].submit(self._warm, lane) for lane in LANES]

    def _warm(self, lane: str) -> None:
        try:
            if lane in self._workers:
                self._workers[lane].call({"op": "warm", "method": lane})
            else:
                warm(lane)
        except Exception:  # only an optimisation: a real failure shows, in words, on first real use
            pass

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for `prestart`'s warm-ups; True if they ended within `timeout` seconds."""
        return not wait_all(self._warm_ups, timeout).not_done

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers.values() if w.pid is not None]

    def close(self) -> None:
        """Stop the worker processes (they also end by themselves when this process ends)."""
        for w in self._workers.values():
            w.stop()
        for lane in self._lanes.values():
            lane.shutdown(wait=False, cancel_futures=True)
