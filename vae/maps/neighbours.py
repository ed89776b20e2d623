"""Going between a map and latent space where the map has no exact inverse, and how much a map keeps.

    z = approx_codes(map_y, codes, points)        # codes under map points (t-SNE, UMAP: no inverse)
    y = place(codes, map_y, new_codes)            # where new codes land on such a map
    idx = nearest(codes, z, k=8)                  # the test digits nearest to codes, in latent space
    kept = kept_neighbours(codes, map_y, k=10)    # per dot: how many of its 10 latent neighbours stay on the map
    kept_share(kept, 10)                          # the map's figure: 1.0 for a map that keeps every neighbour

t-SNE and UMAP place each digit by its neighbours and forget the rest, so there is no formula from a
map point back to a code (umap-learn's `inverse_transform` exists, but is slow and needs the fitted
object, which the map service does not keep). The approximation here is the plain one a reader can
check: the inverse-distance-weighted mean of the codes of the k nearest dots (Shepard's
interpolation). It is exact on a dot, and between two clusters it blends their codes, which is what
the page says it does. `place` is the same idea the other way: a new code lands at the weighted mean
of the map positions of its nearest codes (what openTSNE's and UMAP's own `transform` start from).

The honesty figure is the share of each digit's k nearest neighbours in latent space that are also
among its k nearest on the map ("How to Use t-SNE Effectively", Wattenberg et al., 2016, warns that
sizes and gaps of t-SNE clusters mean little; this shows where neighbourhoods survive).

The figure takes ~0.5 s of CPU for 10,000 codes of 16 dimensions (the latent neighbours), once per map:
`python -m vae.assets` stores it for the bundled maps beside them (`save_kept`: `<map key>-kept10.npz`), a
page stores it beside any other map in the map cache, and `load_kept` finds it in either.

numpy and scikit-learn only, like the rest of vae.maps.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from pathlib import Path

import numpy as np
from sklearn.neighbors import NearestNeighbors

from ..fileio import atomic_write

EPS = 1e-12


def _check(a, name: str, cols: int | None = None) -> np.ndarray:
    a = np.asarray(a, np.float64)
    if a.ndim != 2 or (cols is not None and a.shape[1] != cols):
        want = f"(N, {cols})" if cols else "(N, D)"
        raise ValueError(f"{name} must be an array of shape {want}, not {a.shape}.")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds numbers that are not finite.")
    return a


def _blend(reference: np.ndarray, values: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """For each query: the inverse-distance-weighted mean of `values` at its k nearest `reference` points
    (exactly the value of a reference point it sits on)."""
    if len(reference) != len(values):
        raise ValueError(f"Got {len(reference)} map points but {len(values)} codes: they must be the same digits.")
    if not len(reference):
        raise ValueError("There are no points to blend from.")
    if len(queries) == 0:
        return np.zeros((0, values.shape[1]), np.float32)
    k = max(1, min(int(k), len(reference)))
    dist, idx = NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(queries)  # (M, k), nearest first
    w = 1.0 / np.maximum(dist, EPS) ** 2
    on_point = dist[:, 0] <= EPS
    w[on_point] = 0.0
    w[on_point, 0] = 1.0  # on a dot: its own value, not a blend
    w /= w.sum(1, keepdims=True)
    return np.einsum("mk,mkd->md", w, values[idx]).astype(np.float32)


def approx_codes(map_y, codes, points, k: int = 8) -> np.ndarray:
    """Codes under `points` (M, 2) of a map `map_y` (N, 2) of `codes` (N, D): for each point, the
    inverse-distance-weighted mean of the codes of its k nearest dots. (M, D) float32"""
    return _blend(_check(map_y, "The map", 2), _check(codes, "The codes"), _check(points, "The points", 2), k)


def place(codes, map_y, new_codes, k: int = 8) -> np.ndarray:
    """Where `new_codes` (M, D) land on the map `map_y` (N, 2) of `codes` (N, D): the inverse-distance-
    weighted mean of the map positions of their k nearest codes in latent space. (M, 2) float32"""
    codes = _check(codes, "The codes")
    new = _check(new_codes, "The new codes", codes.shape[1])
    return _blend(codes, _check(map_y, "The map", 2), new, k)


def nearest(codes, z, k: int = 8) -> np.ndarray:
    """Indices (M, k) of the k codes nearest to each of `z` (M, D), by Euclidean distance, nearest first."""
    codes = _check(codes, "The codes")
    z = _check(np.atleast_2d(z), "The code", codes.shape[1])
    k = max(1, min(int(k), len(codes)))
    return NearestNeighbors(n_neighbors=k).fit(codes).kneighbors(z, return_distance=False)


def kept_neighbours(codes, map_y, k: int = 10) -> np.ndarray:
    """Per dot, how many of its k nearest neighbours in latent space are among its k nearest on the map
    (exact neighbours, the dot itself excluded). (N,) uint8 in 0..k"""
    codes, map_y = _check(codes, "The codes"), _check(map_y, "The map", 2)
    if len(codes) != len(map_y):
        raise ValueError(f"Got {len(codes)} codes but {len(map_y)} map points: they must be the same digits.")
    if not 1 <= k < min(len(codes), 256):
        raise ValueError(f"Count from 1 to {min(len(codes), 256) - 1} neighbours, not {k}.")
    latent, on_map = _neighbours(codes, k), _neighbours(map_y, k)
    both = np.sort(np.concatenate([latent, on_map], axis=1), axis=1)  # (N, 2k): a shared index appears twice
    return (both[:, 1:] == both[:, :-1]).sum(1).astype(np.uint8)


def _neighbours(a: np.ndarray, k: int) -> np.ndarray:
    """Each point's k nearest other points (N, k), exact: a tree query for k + 1, the point itself dropped
    (where duplicates hide it, the farthest of the k + 1 goes instead). A k-d tree answers a 2-D map in
    tens of milliseconds, where brute force takes half a second for 10,000 points."""
    idx = NearestNeighbors(n_neighbors=k + 1).fit(a).kneighbors(a, return_distance=False)  # (N, k + 1)
    own = idx == np.arange(len(a))[:, None]
    own[~own.any(1), -1] = True
    return idx[~own].reshape(len(a), k)


def kept_share(kept, k: int = 10) -> float:
    """The map's figure: the mean share of latent neighbours a dot keeps on the map, in [0, 1]."""
    kept = np.asarray(kept)
    return float(kept.mean() / k) if len(kept) else float("nan")


def kept_path(folder, map_key: str, k: int = 10) -> Path:
    """Where the neighbours kept (of k) of the map `map_key` (vae.maps.service.map_key) are stored in `folder`."""
    return Path(folder) / f"{map_key}-kept{int(k)}.npz"


def _digest(map_y) -> str:
    """A hash of the map's coordinates: stored counts are used only with the very map they were counted on."""
    return hashlib.blake2b(np.ascontiguousarray(map_y, np.float32).tobytes(), digest_size=16).hexdigest()


def save_kept(folder, map_key: str, kept, map_y, k: int = 10) -> Path:
    """Store the neighbours kept (N,) of the map `map_y` (N, 2) (atomically: a reader sees the old file or the
    whole new one), with a hash of the map."""
    kept = np.asarray(kept)
    if kept.shape != (len(map_y),) or (len(kept) and (kept.min() < 0 or kept.max() > k)):
        raise ValueError(f"Neighbours kept must be one count from 0 to {k} per dot of the map.")
    path = kept_path(folder, map_key, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, kept=kept.astype(np.uint8), map=np.array(_digest(map_y)))
    atomic_write(path, buf.getvalue())
    return path


def load_kept(folders, map_key: str, map_y, k: int = 10) -> np.ndarray | None:
    """The stored neighbours kept (N,) uint8 of the map `map_y` (N, 2) named `map_key`, from the first of
    `folders` holding a valid copy counted on this very map; None where none does (then count them). A damaged
    file is never trusted."""
    digest = None
    for folder in folders:
        path = kept_path(folder, map_key, k)
        if not path.is_file():
            continue
        try:
            with np.load(path) as f:
                kept, made_on = f["kept"], str(f["map"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
            continue
        digest = digest or _digest(map_y)
        if made_on == digest and kept.shape == (len(map_y),) and kept.dtype == np.uint8 and \
                (not len(kept) or kept.max() <= k):
            return kept
    return None
