"""2-D maps computed once, in the background, and kept on disk.

    store = MapStore(cache_dir, readonly_dirs=[bundled_maps])
    service = MapService(store)                     # one per server
    job = service.request(fingerprint, z, "tsne", {"perplexity": 30})
    job.status, job.progress, job.embedding         # "running" with partial embedding, then "done"

A map is keyed by the model's weights fingerprint, the method and its parameters. Finished
maps are written atomically as small .npz files (float32 coordinates), so a map seen before
loads in milliseconds, also after a restart. The service runs one map at a time per worker
thread and publishes t-SNE's intermediate embeddings, so a page can draw the map as it forms.
"""

from __future__ import annotations

import hashlib
import io
import json
import queue
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checkpoint import atomic_write
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


FAST_METHODS = ("native", "pca")


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


class MapService:
    """Computes maps on background threads; shared by every browser session of one server."""

    def __init__(self, store: MapStore, workers: int = 1):
        self.store = store
        self._jobs: dict[str, MapJob] = {}
        self._lock = threading.Lock()
        # Daemon threads: a server being stopped never waits for a half-done t-SNE.
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"latent-lab-map-{i}", daemon=True).start()

    def _work(self) -> None:
        while True:
            self._run(*self._queue.get())

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
            run_here = cached is None and method in FAST_METHODS
            if cached is not None:
                job.status, job.progress, job.embedding = "done", 1.0, cached
            elif not run_here:
                self._queue.put((job, fingerprint, np.array(z, np.float32), seed))
            self._jobs[key] = job
        if run_here:  # milliseconds: never queued behind a t-SNE or UMAP that takes seconds
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

        try:
            y = compute_map(z, job.method, job.params, seed=seed, progress=progress)
            try:
                self.store.put(fingerprint, job.method, job.params, y)
            except OSError:
                pass  # a read-only or full disk costs only the cache, not the map
            job.embedding, job.progress, job.status = y, 1.0, "done"
        except Exception as e:  # shown on the page as a sentence
            job.status, job.error = "error", f"{type(e).__name__}: {e}"
        finally:
            job.seconds = time.perf_counter() - job.started

    def warm_up(self, fingerprint: str, z: np.ndarray, methods=("pca", "umap", "tsne")) -> None:
        """Start the default maps of a newly trained or loaded model before anyone asks."""
        for m in methods:
            self.request(fingerprint, z, m)
