"""2-D maps of latent codes with the scikit-learn contract: fit / fit_transform / transform.

    from vae.maps.projection import compute_map, make_projection
    proj = make_projection("tsne", seed=0, progress=lambda done, total, y: ...)
    y = proj.fit_transform(z)                      # (N, D) -> (N, 2)
    y = compute_map(z, "umap", {"n_neighbors": 30})  # the same, from a map's method and parameters

Methods: "native" (the first two latent dims; the model's own plane for 2-D models), "pca"
(an SVD in numpy), "tsne" (openTSNE, FFT-accelerated), "umap" (umap-learn). Each takes a seed,
and t-SNE reports progress with the embedding so far, so a page can draw it as it forms.
Fitted state ends in `_`. numpy and the projection libraries only: this runs in the map
worker processes, which never import torch.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable

import numpy as np

from ..paths import cache_dir

Progress = Callable[[int, int, "np.ndarray | None"], None]  # (done, total, embedding so far)
METHODS = ("native", "pca", "tsne", "umap")
METHOD_LABELS = {"native": "Native latent plane", "pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


def _threads() -> int:
    """Threads for openTSNE: $LATENT_LAB_MAP_THREADS, else every core (up to 8)."""
    try:
        wanted = int(os.environ.get("LATENT_LAB_MAP_THREADS", "0"))
    except ValueError:
        wanted = 0
    return wanted if wanted > 0 else max(1, min(os.cpu_count() or 1, 8))


class Projection:
    """Base: stores parameters; subclasses implement `_fit`."""

    name = "base"

    def __init__(self, seed: int = 0, progress: Progress | None = None):
        self.seed = seed
        self.progress = progress

    def _report(self, done: int, total: int, y=None) -> None:
        if self.progress is not None:
            self.progress(done, total, y)

    def fit(self, z: np.ndarray) -> "Projection":
        self.fit_transform(z)
        return self

    def fit_transform(self, z: np.ndarray) -> np.ndarray:
        z = np.ascontiguousarray(z, dtype=np.float32)
        if z.ndim != 2 or len(z) < 3:
            raise ValueError("A map needs at least 3 codes in a 2-D array (N, D).")
        if not np.isfinite(z).all():
            raise ValueError("The codes contain NaN or infinite values; the model may have diverged.")
        self.embedding_ = np.asarray(self._fit(z), dtype=np.float32)
        return self.embedding_

    def _fit(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def transform(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{METHOD_LABELS[self.name]} cannot place new points.")

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{METHOD_LABELS[self.name]} cannot map 2-D points back to codes.")


class NativeProjection(Projection):
    """The latent plane itself: dims (0, 1); a 1-D model is drawn against zero."""

    name = "native"

    def _fit(self, z):
        self.dim_ = z.shape[1]
        return self.transform(z)

    def transform(self, z):
        z = np.asarray(z, np.float32)
        return z[:, :2] if z.shape[1] >= 2 else np.c_[z[:, 0], np.zeros(len(z), np.float32)]

    def inverse_transform(self, y):
        y = np.asarray(y, np.float32)
        out = np.zeros((len(y), self.dim_), np.float32)
        out[:, :min(2, self.dim_)] = y[:, :min(2, self.dim_)]
        return out


class PCAProjection(Projection):
    """PCA by an SVD of the centred codes (numpy; the same numbers as scikit-learn's full-SVD PCA).

    Ten lines of numpy rather than scikit-learn here, because PCA runs in the app server itself
    (it must be instant) and importing scikit-learn there would add about 80 MB to every server.
    Each axis's sign is fixed (its largest loading positive), so a refit draws the same picture.
    """

    name = "pca"

    def _fit(self, z):
        z64 = np.asarray(z, np.float64)
        self.mean_ = z64.mean(axis=0)
        _, s, vt = np.linalg.svd(z64 - self.mean_, full_matrices=False)
        vt *= np.where(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]
        self.n_components_ = min(2, z.shape[1])
        self.components_ = vt[:self.n_components_]
        var = s ** 2
        self.explained_variance_ratio_ = var[:self.n_components_] / var.sum() if var.sum() > 0 else \
            np.zeros(self.n_components_)
        self._report(1, 1, None)
        return self.transform(z)

    def transform(self, z):
        y = (np.asarray(z, np.float64) - self.mean_) @ self.components_.T
        y = y if y.shape[1] == 2 else np.c_[y, np.zeros(len(y))]
        return y.astype(np.float32)

    def inverse_transform(self, y):
        y = np.asarray(y, np.float64)[:, :self.n_components_]
        return (y @ self.components_ + self.mean_).astype(np.float32)


def nearest_neighbors(z: np.ndarray, k: int, chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours by Euclidean distance, each point itself excluded.

    Brute force in chunks of rows, one chunk per core: a matmul for the distances, then the k-th
    smallest value per row (`np.partition` on the values: `np.argpartition` would write an int64
    index for every column) and the few entries at or below it. Rows that tie at the k-th
    distance (float32 rounding) go through `np.argpartition` alone. Exact, and on 10,000 codes
    faster than an approximate index (benchmarks/README.md). BLAS runs single-threaded inside the
    chunks, which already use every core. Returns (indices (N, k) int64, distances (N, k)
    float32), nearest first.
    """
    import contextlib
    from concurrent.futures import ThreadPoolExecutor

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn's dependency; without it BLAS may oversubscribe, nothing worse
        threadpool_limits = None

    z = np.ascontiguousarray(z, np.float32)
    n = len(z)
    k = min(k, n - 1)
    sq = np.einsum("ij,ij->i", z, z)
    idx = np.empty((n, k), np.int64)
    dist = np.empty((n, k), np.float32)

    def rows(i):  # numpy releases the GIL in matmul and partitioning: the chunks run on all cores
        d = z[i:i + chunk] @ z.T
        d *= -2
        d += sq[i:i + chunk, None]
        d += sq[None]
        r = np.arange(len(d))
        d[r, r + i] = np.inf
        kth = np.partition(d, k - 1, axis=1)[:, k - 1]
        hit_rows, hit_cols = np.nonzero(d <= kth[:, None])  # in row order
        count = np.bincount(hit_rows, minlength=len(d))
        start = np.cumsum(count) - count
        j = np.empty((len(d), k), np.int64)
        one = count == k  # exactly k hits: they are the row's neighbours
        j[one] = hit_cols[start[one, None] + np.arange(k)]
        tied = np.flatnonzero(~one)  # ties at the k-th distance (float32 rounding: ~13% of real codes' rows)
        j[tied] = np.argpartition(d[tied], k - 1, axis=1)[:, :k]
        v = np.take_along_axis(d, j, 1)
        order = np.argsort(v, axis=1, kind="stable")
        idx[i:i + chunk] = np.take_along_axis(j, order, 1)
        dist[i:i + chunk] = np.sqrt(np.maximum(np.take_along_axis(v, order, 1), 0))

    limits = threadpool_limits(1) if threadpool_limits else contextlib.nullcontext()
    with limits, ThreadPoolExecutor(_threads()) as pool:
        list(pool.map(rows, range(0, n, chunk)))
    return idx, dist


class TSNEProjection(Projection):
    """openTSNE with FFT-accelerated gradients, PCA initialisation and exact kNN affinities.

    The schedule (40 early-exaggeration iterations, then 80 normal ones, on an FFT grid half as
    fine as openTSNE's default) is much shorter than openTSNE's 250 + 500: it draws the same
    islands in the same places in a fraction of the time, so a class sees a new model's map in
    seconds (the measurements are in benchmarks/README.md, "t-SNE's schedule"). `n_iter` buys
    more polish.
    """

    name = "tsne"

    def __init__(self, perplexity: float = 30.0, n_iter: int = 80, early_iter: int = 40, seed: int = 0,
                 progress: Progress | None = None, report_every: int = 20):
        super().__init__(seed, progress)
        self.perplexity, self.n_iter, self.early_iter, self.report_every = perplexity, n_iter, early_iter, report_every

    def _fit(self, z):
        import openTSNE

        if not 2 <= self.perplexity <= 100 or 3 * self.perplexity >= len(z):
            raise ValueError(f"Perplexity must be from 2 to 100 and below a third of the points ({len(z)}).")
        total = self.early_iter + self.n_iter
        n_jobs = _threads()
        offset = [0]  # iterations of the phases before this one

        def callback(iteration, error, embedding):  # `iteration` counts from 1 within each phase
            self._report(min(offset[0] + iteration, total), total, np.asarray(embedding, np.float32).copy())

        k = min(len(z) - 1, int(3 * self.perplexity))
        neighbors = openTSNE.nearest_neighbors.PrecomputedNeighbors(*nearest_neighbors(z, k))
        aff = openTSNE.affinity.PerplexityBasedNN(perplexity=self.perplexity, knn_index=neighbors, n_jobs=n_jobs)
        init = openTSNE.initialization.pca(z, random_state=self.seed)
        emb = openTSNE.TSNEEmbedding(init, aff, negative_gradient_method="fft", n_jobs=n_jobs,
                                     ints_in_interval=2, random_state=self.seed, callbacks=callback if self.progress else None,
                                     callbacks_every_iters=self.report_every)
        # Early exaggeration keeps the points in a small blob, where a coarse interpolation grid does
        # as well as the default one (same KL and neighbours) at half the cost.
        emb = emb.optimize(n_iter=self.early_iter, exaggeration=12, momentum=0.5, min_num_intervals=20,
                           n_interpolation_points=2)
        offset[0] = self.early_iter
        emb = emb.optimize(n_iter=self.n_iter, momentum=0.8)
        return np.asarray(emb)


class UMAPProjection(Projection):
    name = "umap"

    """umap-learn on our exact kNN. umap-learn itself runs 200 epochs above 10,000 points but 500
    at exactly 10,000 (the test set); 200 draws the same picture in under half the time."""

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int | None = 200, seed: int = 0,
                 progress: Progress | None = None):
        super().__init__(seed, progress)
        self.n_neighbors, self.min_dist, self.n_epochs = n_neighbors, min_dist, n_epochs

    def _fit(self, z):
        os.environ.setdefault("NUMBA_CACHE_DIR", str(_numba_cache_dir()))
        import umap

        if not 2 <= self.n_neighbors < len(z):
            raise ValueError(f"UMAP needs 2 <= n_neighbors < number of points ({len(z)}).")
        if not 0.0 <= self.min_dist <= 1.0:
            raise ValueError("UMAP's min_dist must be from 0 to 1.")
        self._report(0, 1, None)
        # A fixed random_state makes umap single-threaded; we pass it anyway, since the map must be
        # reproducible (the class must not get a different picture on every refresh).
        idx, dist = nearest_neighbors(z, self.n_neighbors - 1)  # umap counts each point as its own neighbour
        idx = np.c_[np.arange(len(z)), idx]
        dist = np.c_[np.zeros(len(z), np.float32), dist]
        self.umap_ = umap.UMAP(n_neighbors=self.n_neighbors, min_dist=self.min_dist, n_epochs=self.n_epochs,
                               random_state=self.seed, n_jobs=1, precomputed_knn=(idx, dist, None))
        with warnings.catch_warnings():  # "no search index: transform unavailable" - we never transform
            warnings.simplefilter("ignore", UserWarning)
            y = self.umap_.fit_transform(z)
        self._report(1, 1, None)
        return y

    def inverse_transform(self, y):
        return self.umap_.inverse_transform(np.asarray(y, np.float32)).astype(np.float32)


def warm_up_umap() -> None:
    """Compile (or load from the disk cache) umap's numba functions on a toy problem, so the first
    real UMAP of a server does not pay numba's ~30 s compile. Safe to call from a background thread."""
    z = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    try:
        UMAPProjection(n_neighbors=8, n_epochs=10).fit_transform(z)
    except Exception:  # only an optimisation: a failure here shows up, with a message, on first real use
        pass


def warm_up_tsne() -> None:
    """Import openTSNE and scikit-learn's PCA, so the first real t-SNE starts computing at once."""
    try:
        TSNEProjection(perplexity=5, n_iter=5, early_iter=5).fit_transform(
            np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32))
    except Exception:
        pass


def _numba_cache_dir():
    return cache_dir() / "numba"


_CLASSES = {c.name: c for c in (NativeProjection, PCAProjection, TSNEProjection, UMAPProjection)}


def make_projection(method: str, **params) -> Projection:
    if method not in _CLASSES:
        raise ValueError(f"Unknown map method {method!r}; choose one of {', '.join(METHODS)}.")
    return _CLASSES[method](**params)


# A map's parameters as the app names them: the defaults, and what a cached map is keyed by.
DEFAULT_PARAMS = {
    "native": {},
    "pca": {},
    "tsne": {"perplexity": 30.0},
    "umap": {"n_neighbors": 15, "min_dist": 0.1},
}
FAST_METHODS = ("native", "pca")  # milliseconds: computed where they are asked for, never queued


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


def compute_map(z: np.ndarray, method: str, params: dict | None = None, seed: int = 0, progress=None) -> np.ndarray:
    """One projection of codes (N, D) -> (N, 2), with a progress hook (done, total, partial)."""
    return make_projection(method, seed=seed, progress=progress, **resolve_params(method, params)).fit_transform(z)


def warm(method: str) -> None:
    """Import (and, for UMAP, compile or load from numba's disk cache) what a slow method needs."""
    (warm_up_umap if method == "umap" else warm_up_tsne)()
