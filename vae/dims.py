"""Latent dimensions one at a time: which matter most, their ranges, starting codes, traversals.

    scores = dim_scores("vae", mu, logvar, kl_per_dim=meta["metrics"].get("kl_per_dim"))
    dims = rank_dims(scores)[:8]                      # the most informative first
    z0 = start_code("class", mu, labels, digit=3)      # where the sliders start
    ranges = include(dim_ranges("vae", mu), z0)        # (D, 2): the slider limits
    codes = traversal_codes(z0, dims, ranges, steps=9) # (len(dims) * 9, D), row by row

Codes are numpy float32 arrays (N, D). Informative means: for a VAE, the KL of a dimension
(nats; a dimension with KL near 0 is ignored by the decoder); for an AE, which has no KL, the
variance of the test codes along that dimension.
"""

from __future__ import annotations

import numpy as np

from .latent import class_means, prior_samples, traverse

STARTS = ("digit", "class", "origin", "prior")
PRIOR_RANGE = 3.0  # a VAE's sliders span ±3 standard deviations of the N(0, I) prior


def dim_scores(kind: str, codes: np.ndarray, logvars: np.ndarray | None = None, kl_per_dim=None) -> np.ndarray:
    """How much each dimension is used. VAE: KL in nats (the checkpoint's own figure when it has
    one, else averaged over `codes`/`logvars`); AE: the variance of the codes. (D,)"""
    codes = np.asarray(codes, np.float64)
    d = codes.shape[1]
    if kind == "vae":
        if kl_per_dim is not None and len(kl_per_dim) == d and np.all(np.isfinite(kl_per_dim)):
            return np.asarray(kl_per_dim, np.float64)
        if logvars is not None and len(codes):
            lv = np.asarray(logvars, np.float64)
            return (0.5 * (codes ** 2 + np.exp(lv) - 1.0 - lv)).mean(axis=0)
    if len(codes) < 2:
        return np.zeros(d)
    return codes.var(axis=0)


def rank_dims(scores) -> list[int]:
    """Dimension indices, most informative first (ties: lower index first)."""
    scores = np.asarray(scores, np.float64)
    return [int(i) for i in np.lexsort((np.arange(len(scores)), -scores))]


def dim_ranges(kind: str, codes: np.ndarray, pad: float = 0.05) -> np.ndarray:
    """Slider limits per dimension. (D, 2)

    VAE: ±3, where the prior N(0, I) puts 99.7% of its mass (widen for a start code with `include`).
    AE: the test codes' own range along that dimension, padded by `pad` of its span; an AE has no
    prior, and its codes can live anywhere.
    """
    codes = np.asarray(codes, np.float32)
    d = codes.shape[1]
    if kind == "vae" or len(codes) == 0:
        lo, hi = np.full(d, -PRIOR_RANGE), np.full(d, PRIOR_RANGE)
    else:
        lo, hi = codes.min(axis=0).astype(np.float64), codes.max(axis=0).astype(np.float64)
        span = np.maximum(hi - lo, 1e-3)
        lo, hi = lo - pad * span, hi + pad * span
    return np.stack([lo, hi], axis=1).astype(np.float32)


def include(ranges: np.ndarray, z) -> np.ndarray:
    """Ranges widened (by a tenth of their span) wherever the code z lies outside them. (D, 2)"""
    out = np.array(ranges, np.float32, copy=True)
    z = np.asarray(z, np.float32)
    margin = 0.1 * (out[:, 1] - out[:, 0])
    out[:, 0] = np.where(z < out[:, 0], z - margin, out[:, 0])
    out[:, 1] = np.where(z > out[:, 1], z + margin, out[:, 1])
    return out


def start_code(source: str, codes: np.ndarray, labels=None, *, index: int = 0, digit: int = 0,
               seed: int = 0) -> np.ndarray:
    """Where the sliders start: a test digit's code, a class's mean code, the origin or a prior
    sample. (D,)"""
    codes = np.asarray(codes, np.float32)
    d = codes.shape[1]
    if source == "digit":
        if not 0 <= int(index) < len(codes):
            raise ValueError(f"Pick a test digit from 0 to {len(codes) - 1}, not {index}.")
        return codes[int(index)].copy()
    if source == "class":
        means = class_means(codes, np.asarray(labels))
        if int(digit) not in means:
            raise ValueError(f"No test digit has the label {digit}.")
        return means[int(digit)].astype(np.float32)
    if source == "origin":
        return np.zeros(d, np.float32)
    if source == "prior":
        return prior_samples(1, d, seed=int(seed))[0]
    raise ValueError(f"Start from one of {', '.join(STARTS)}, not {source!r}.")


def traversal_codes(z, dims, ranges, steps: int = 9) -> np.ndarray:
    """For each dim in `dims`, `steps` copies of z with that dim swept evenly over its range.
    (len(dims) * steps, D), one dim after the other."""
    if steps < 2:
        raise ValueError("A traversal needs at least 2 steps.")
    z = np.asarray(z, np.float32)
    ranges = np.asarray(ranges, np.float32)
    rows = [traverse(z, d, np.linspace(ranges[d, 0], ranges[d, 1], steps)) for d in dims]
    return np.concatenate(rows) if rows else np.zeros((0, len(z)), np.float32)


def nearest(codes: np.ndarray, z) -> int:
    """Index of the code closest to z (Euclidean): the real digit nearest a slider setting."""
    codes = np.asarray(codes, np.float32)
    if len(codes) == 0:
        raise ValueError("There are no codes to search.")
    return int(np.argmin(((codes - np.asarray(z, np.float32)) ** 2).sum(axis=1)))
