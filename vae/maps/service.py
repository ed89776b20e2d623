"""2-D maps computed once, in the background, and kept on disk.

    store = MapStore(cache_dir, readonly_dirs=[bundled_maps])
    service = MapService(store, isolate=True)       # one per server; maps in worker processes
    job = service.request(fingerprint, z, "tsne", {"perplexity": 30})
    job.status, job.progress, job.embedding         # "running" with partial embedding, then "done"

A map is keyed by the model's weights fingerprint, the method and its parameters. Finished
maps are written atomically as small .npz files (float32 coordinates), so a map seen before
loads in milliseconds, also after a restart. The service runs one t-SNE and one UMAP at a time,
in worker processes (`vae.mapworker`) for the app, and publishes t-SNE's intermediate
embeddings, so a page can draw the map as it forms.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import mapworker
from .fileio import atomic_write
from .projection import make_projection

DEFAULT_PARAMS = {
    "native": {},
    "pca": {},
    "tsne": {"perplexity": 30.0},
    "umap": {"n_neighbors": 15, "min_dist": 0.1},
}


def default_params(method: str) -> dict:
    return dict(DEFAULT_PARAMS[method])


def resolve_params(method: str, params: dict | None = None) -> dict:
    """The defaults overlaid with `params`, numbers in the defaults' types, so that a perplexity of
    30 and of 30.0 name the same map (and find the same cached file)."""
    defaults = DEFAULT_PARAMS.get(method, {})  # an unknown method is refused by make_projection, in words
    out = defaults | (params or {})
    for k, default in defaults.items():
        v = out[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if isinstance(default, float):
            out[k] = float(v)
        elif isinstance(default, int) and float(v).is_integer():
            out[k] = int(v)
    return out


def map_key(fingerprint: str, method: str, params: dict) -> str:
    blob = json.dumps({"m": method, "p": resolve_params(method, params)}, sort_keys=True)
    return f"{fingerprint}-{method}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


def compute_map(z: np.ndarray, method: str, params: dict | None = None, seed: int = 0, progress=None) -> np.ndarray:
    """One projection of codes (N, D) -> (N, 2), with a progress hook (done, total, partial)."""
    params = resolve_params(method, params)
    return make_projection(method, seed=seed, progress=progress, **params).fit_transform(z)


FAST_METHODS = ("native", "pca")  # milliseconds: computed on the caller's thread, never queued


class MapStore:
    """Finished maps as .npz files: one writable folder plus read-only ones (the bundled maps)."""

    def __init__(self, folder, readonly_dirs=()):
        self.folder = Path(folder)
        self.readonly_dirs = [Path(d) for d in readonly_dirs]

    def _paths(self, key: str):
        for d in (*self.readonly_dirs, self.folder):
            yield d / f"{key}.npz"

    def get(self, fingerprint: str, method: str, params: dict) -> np.ndarray | None:
        key = map_key(fingerprint, method, params)
        for path in self._paths(key):
            if path.is_file():
                try:
                    with np.load(path) as f:
                        y = f["y"].astype(np.float32)
                    if y.ndim == 2 and y.shape[1] == 2 and np.isfinite(y).all():
                        return y
                except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
                    continue  # a damaged cache file is recomputed, never trusted
        return None

    def put(self, fingerprint: str, method: str, params: dict, y: np.ndarray) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez_compressed(buf, y=np.asarray(y, np.float32))
        path = self.folder / f"{map_key(fingerprint, method, params)}.npz"
        atomic_write(path, buf.getvalue())
        return path


@dataclass
class MapJob:
    key: str
    method: str
    params: dict
    n_points: int
    status: str = "queued"  # queued, running, done, error
    progress: float = 0.0
    embedding: np.ndarray | None = field(default=None, repr=False)  # partial while running
    error: str = ""
    started: float = 0.0
    seconds: float = 0.0


# A worker that is only loading its libraries (UMAP's: numba compiling ~30 CPU s the first time on a
# machine) is stopped (SIGSTOP) while the other lane computes a map someone is waiting for, and
# continued (SIGCONT) a little after that map ends (once it is drawn), or at once when a map is
# asked of it. Linux only, where a stopped worker still dies with its server (PR_SET_PDEATHSIG, set
# by vae.mapworker); elsewhere the warm-up keeps running beside the map, at a lower priority.
CAN_PAUSE = sys.platform.startswith("linux")

# openTSNE's OpenMP threads wait for each other at every iteration. By default libgomp spins for
# 300,000 rounds first, which on a busy machine burns the time slices the other thread needs.
# Measured on 2 cores, t-SNE of 10,000 codes (default -> 10,000 rounds): idle 2.33-2.55 s -> 2.44-2.64 s;
# beside a process keeping one core busy 5.3-6.5 s -> 3.7-4.8 s; beside one busy half the time,
# 3.6-4.2 s -> 3.8-4.9 s (no clear difference). A classroom server is rarely idle.
GOMP_SPINCOUNT = "10000"


class _WorkerProcess:
    """One `python -m vae.mapworker` child and the pipes to it; started on first use, restarted if it died.

    One per lane and thread setting in a server process (see `_worker`), shared by every MapService
    there: recreating the service (say, after a cache clear) never starts a second set of workers.
    """

    def __init__(self, threads: int | None = None, lane: str | None = None):
        self.threads = threads
        self.lane = lane  # its CPU priority (vae.mapworker.NICENESS)
        self.warm = False  # its libraries are loaded (warm-up done in this process)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()  # one request at a time per process
        self._state = threading.Lock()  # guards the two flags below (taken without waiting for a request)
        self._warming = False  # a warm-up is running in the process
        self._pauses = 0  # maps that stopped the process (pause_warm_up) and have not resumed it yet

    def _ensure(self) -> subprocess.Popen:
        # Called by a lane's thread, which lives as long as the server: the worker's parent-death
        # signal (vae.mapworker) fires when the thread that started it ends.
        if self._proc is None or self._proc.poll() is not None:
            root = str(Path(__file__).resolve().parent.parent)
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
            if self.threads:
                env["LATENT_LAB_MAP_THREADS"] = str(self.threads)
            if self.lane:
                env["LATENT_LAB_MAP_LANE"] = self.lane
            env.setdefault("GOMP_SPINCOUNT", GOMP_SPINCOUNT)
            self.warm = False
            self._proc = subprocess.Popen([sys.executable, "-m", "vae.mapworker"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, env=env, cwd=root)
        return self._proc

    def call(self, message: dict, z: np.ndarray | None = None, on_progress=None) -> np.ndarray | None:
        """Send one request and relay its replies; returns the finished embedding (None for a warm-up)."""
        warming = message.get("op") == "warm"
        with self._lock:
            if warming and self.warm and self.pid is not None:
                return None
            proc = self._ensure()
            try:
                if warming:
                    with self._state:
                        self._warming = True
                mapworker.send(proc.stdin, message, z)
                while True:
                    reply, array = mapworker.receive(proc.stdout)
                    if reply["type"] == "progress":
                        if on_progress is not None:
                            on_progress(reply["done"], reply["total"], array)
                    elif reply["type"] == "done":
                        if warming:
                            self.warm = True
                        return array
                    else:
                        raise MapError(reply["message"])
            except (EOFError, OSError, ValueError) as e:
                self._kill()
                raise MapError("The map worker process stopped unexpectedly (out of memory?). Ask for the map "
                               "again to retry.") from e
            finally:
                if warming:
                    with self._state:
                        self._warming = False

    def pause_warm_up(self) -> bool:
        """Stop the process if it is only warming up (see CAN_PAUSE); -> whether this call holds it
        stopped, in which case it calls `resume()` once. It runs again when every holder has."""
        with self._state:
            if not (CAN_PAUSE and self._warming) or self.pid is None:
                return False
            if not self._pauses:
                try:
                    os.kill(self._proc.pid, signal.SIGSTOP)
                except OSError:
                    return False
            self._pauses += 1
            return True

    def resume(self, now: bool = False) -> None:
        """Let go of one `pause_warm_up` (`now`: of all of them, for a map asked of this worker)."""
        with self._state:
            if not self._pauses:
                return
            self._pauses = 0 if now else self._pauses - 1
            if not self._pauses and self._proc is not None:
                try:
                    os.kill(self._proc.pid, signal.SIGCONT)
                except OSError:
                    pass

    @property
    def paused(self) -> bool:
        return self._pauses > 0

    def stop(self) -> None:
        """Kill the process now, also mid-request (a long t-SNE, a paused warm-up): that request
        then ends in a MapError."""
        with self._state:
            self._kill()

    def _kill(self) -> None:
        self._pauses = 0  # (a stopped process dies of SIGKILL all the same)
        if self._proc is not None:
            try:
                self._proc.kill()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._proc = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None


class MapError(Exception):
    """A map could not be computed; the message is a sentence for the page."""


_WORKERS: dict[tuple[str, int | None], _WorkerProcess] = {}
_WORKERS_LOCK = threading.Lock()


def _worker(lane: str, threads: int | None) -> _WorkerProcess:
    with _WORKERS_LOCK:
        return _WORKERS.setdefault((lane, threads), _WorkerProcess(threads, lane))


def _later(delay_s: float, fn, *args) -> None:
    """Call fn(*args) now, or after `delay_s` seconds on a daemon timer (a stopping server never waits for it)."""
    if delay_s > 0:
        timer = threading.Timer(delay_s, fn, args)
        timer.daemon = True
        timer.start()
    else:
        fn(*args)


class MapService:
    """Computes maps in the background; shared by every browser session of one server.

    Native and PCA maps take milliseconds and are computed on the caller's thread. t-SNE and UMAP
    each have a lane: a queue and a thread that runs one map at a time, so a UMAP asked for never
    waits behind a t-SNE (only `warm_up` runs them one after the other, on purpose). With
    `isolate=True` (the app) each lane hands its maps to its own worker process (`vae.mapworker`),
    so the server's Python stays responsive and the maps run at full speed; with `isolate=False`
    (notebooks, tests) they run on the lane's thread.
    """

    LANES = ("tsne", "umap")

    def __init__(self, store: MapStore, isolate: bool = False, threads: int | None = None,
                 chain_pause_s: float = 0.0):
        self.store = store
        self.isolate = isolate
        # In a warm-up, the pause between one map's end and the next map's start: the page that
        # draws the finished map gets the CPU first.
        self.chain_pause_s = chain_pause_s
        self._jobs: dict[str, MapJob] = {}
        self._then: dict[str, list[tuple[str, ...]]] = {}  # job key -> maps to request once it has ended
        self._lock = threading.Lock()
        self._queues = {lane: queue.SimpleQueue() for lane in self.LANES}
        self._warm = {lane: threading.Event() for lane in self.LANES}
        self._workers = {lane: _worker(lane, threads) for lane in self.LANES} if isolate else {}
        # Daemon threads: a server being stopped never waits for a half-done t-SNE.
        for lane in self.LANES:
            threading.Thread(target=self._work, args=(lane,), name=f"latent-lab-map-{lane}", daemon=True).start()

    def _work(self, lane: str) -> None:
        while True:
            item = self._queues[lane].get()
            if item is None:  # warm-up
                try:
                    if self.isolate:
                        self._workers[lane].call({"op": "warm", "method": lane})
                    else:
                        mapworker.warm(lane)
                except Exception:  # only an optimisation: a real failure shows on first real use
                    pass
                self._warm[lane].set()
                continue
            self._run(*item)

    def prestart(self, delay_s: float = 0.0) -> None:
        """Start the workers and load (compile, for UMAP) their libraries, before anyone asks: now, or
        after `delay_s` seconds (so a page being drawn right now has the CPU to itself)."""
        def start():
            for lane in self.LANES:
                self._queues[lane].put(None)

        _later(delay_s, start)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for `prestart`'s warm-ups to finish; True if they did within `timeout` seconds."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        for event in self._warm.values():
            left = None if deadline is None else max(0.0, deadline - time.perf_counter())
            if not event.wait(left):
                return False
        return True

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers.values() if w.pid is not None]

    def request(self, fingerprint: str, z: np.ndarray, method: str, params: dict | None = None,
                seed: int = 0) -> MapJob:
        """Return the job for this map, starting it if nobody has asked before."""
        params = resolve_params(method, params)
        key = map_key(fingerprint, method, params)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.status != "error":
                return job
            cached = self.store.get(fingerprint, method, params)
            job = MapJob(key, method, params, len(z))
            run_here = cached is None and method not in self.LANES
            if cached is not None:
                job.status, job.progress, job.embedding = "done", 1.0, cached
            elif not run_here:
                self._queues[method].put((job, fingerprint, np.array(z, np.float32), seed))
                if method in self._workers:  # a map asked of a paused warm-up: let it finish, then the map
                    self._workers[method].resume(now=True)
            self._jobs[key] = job
        if run_here:  # milliseconds (or an unknown method's error): never queued behind a t-SNE
            self._run(job, fingerprint, np.array(z, np.float32), seed)
        return job

    def peek(self, fingerprint: str, method: str, params: dict | None = None) -> MapJob | None:
        params = resolve_params(method, params)
        return self._jobs.get(map_key(fingerprint, method, params))

    def _run(self, job: MapJob, fingerprint: str, z: np.ndarray, seed: int) -> None:
        job.status, job.started = "running", time.perf_counter()

        def progress(done, total, partial):
            job.progress = done / max(total, 1)
            if partial is not None:
                job.embedding = partial

        # Another lane's warm-up (UMAP's compile) waits while this map computes (see CAN_PAUSE),
        # unless a map is queued behind it. (Under the lock that `request` queues maps under.)
        with self._lock:
            paused = [w for lane, w in self._workers.items()
                      if lane != job.method and self._queues[lane].empty() and w.pause_warm_up()]
        try:
            if self.isolate and job.method in self._workers:
                y = self._workers[job.method].call({"op": "map", "method": job.method, "params": job.params,
                                                    "seed": seed}, z, progress)
            else:
                y = compute_map(z, job.method, job.params, seed=seed, progress=progress)
            try:
                self.store.put(fingerprint, job.method, job.params, y)
            except OSError:
                pass  # a read-only or full disk costs only the cache, not the map
            job.embedding, job.progress, job.status = y, 1.0, "done"
        except MapError as e:
            job.status, job.error = "error", str(e)
        except Exception as e:  # shown on the page as a sentence
            job.status, job.error = "error", f"{type(e).__name__}: {e}"
        finally:
            for w in paused:  # once this map is on screen (as for the next map of a warm-up chain)
                _later(self.chain_pause_s, w.resume)
            job.seconds = time.perf_counter() - job.started
            with self._lock:  # after the final status, so `_chain` either sees it or leaves a follow-up
                after = self._then.pop(job.key, [])
        for methods in after:
            _later(self.chain_pause_s, self._chain, fingerprint, z, methods)

    def close(self) -> None:
        """Stop the worker processes (they also stop by themselves when this process ends)."""
        for w in self._workers.values():
            w.stop()

    def warm_up(self, fingerprint: str, z: np.ndarray, methods=("pca", "tsne", "umap")) -> None:
        """Start the default maps of a newly trained, loaded or picked model before anyone asks.

        The fast ones are computed at once; the slow ones run one after another, in the order of
        `methods`, since side by side they share the machine's few cores and the first one (t-SNE,
        the map page's default view) would be ready later. A map asked for explicitly (`request`)
        still starts at once, and its turn in this line then finds it started or done.
        """
        for m in methods:
            if m not in self.LANES:
                self.request(fingerprint, z, m)
        self._chain(fingerprint, z, tuple(m for m in methods if m in self.LANES))

    def _chain(self, fingerprint: str, z: np.ndarray, methods: tuple[str, ...]) -> None:
        """Request `methods` in turn: each after the one before has ended (done or error)."""
        for i, m in enumerate(methods):
            job = self.request(fingerprint, z, m)
            with self._lock:
                if job.status in ("queued", "running"):
                    self._then.setdefault(job.key, []).append(methods[i + 1:])
                    return
