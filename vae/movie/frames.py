"""The latent movie's data, without torch: the fixed subset of test digits, the `Movie` itself, when
frames are taken, and the 2-D plane each frame is drawn on.

    index = subset_index(data.y_test.numpy())          # the same 2,000 digits for every model of a dataset
    at = frame_thresholds(frame_count(...), p_start)   # the progress (0..1) at which frames are taken
    live = LivePlane(); y = live.project(codes)        # a frame as it comes, (N, D) -> (N, 2)
    points, plane = fixed_plane(codes_per_frame)       # every frame on one plane, once the training ends

numpy only (the PCA is vae.maps.projection's, the same one the Latent map page draws with).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..maps.projection import PCAProjection

SUBSET = 2000  # test digits followed through a training
SUBSET_SEED = 17  # issue 17; fixed, so the subset never depends on a training's seed
PLANES = ("native", "pca")
MIN_FRAMES, MAX_FRAMES = 20, 100  # per training: at least MIN_FRAMES for any completed one
COST_SHARE = 0.03  # of the expected training time spent on frames, when that allows more than MIN_FRAMES
KNEE = 0.25  # progress up to which frames come geometrically closer towards the start
MAX_STORED_FRAMES, MAX_STORED_POINTS = 1000, 100_000  # what a checkpoint's movie may hold at most


def subset_index(labels: np.ndarray, n: int = SUBSET) -> np.ndarray:
    """(min(n, len(labels)),) int64 indices into the test split, ascending: an equal number of each class
    as far as the classes allow (a class with too few digits gives its share to the others), drawn with a
    fixed seed, so that every model of a dataset follows the same digits."""
    labels = np.asarray(labels).reshape(-1)
    n = min(int(n), len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.zeros(len(classes), np.int64)
    left = n
    for i, c in enumerate(np.argsort(counts, kind="stable")):  # the smallest classes first
        quota[c] = min(counts[c], -(-left // (len(classes) - i)))  # a ceiling share of what is left
        left -= quota[c]
    rng = np.random.default_rng(SUBSET_SEED)
    picks = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picks)).astype(np.int64) if picks else np.zeros(0, np.int64)


@dataclass(frozen=True, eq=False)
class Movie:
    """Where a fixed subset of test digits sat on a model's map at moments of its training.

    Frame 0 is the untrained model (step 0), the last one the end of the training (also when it was
    stopped by its time budget). `plane` is "native" for a 1- or 2-d model (its own latent plane; a
    1-d model's z1 is drawn against 0, as on the Latent map page) or "pca": every frame projected on
    one PCA basis, fitted to the last frame, so that the frames are comparable."""

    points: np.ndarray  # (F, N, 2) float32: frame f's 2-D position of each subset digit
    labels: np.ndarray  # (N,) int64
    index: np.ndarray  # (N,) int64 test-split indices (== subset_index(test labels))
    step: np.ndarray  # (F,) int64 global training step, strictly increasing, first 0 (untrained)
    epoch: np.ndarray  # (F,) float64 fractional epochs done (0.0 first)
    elapsed_s: np.ndarray  # (F,) float64 training seconds
    loss: np.ndarray  # (F,) float64 test loss on the subset, nats per digit (-ELBO for a VAE, recon for an AE)
    plane: str  # "native" or "pca"
    dataset: str | None = None  # what it was trained on ("mnist", "fashion", "custom")
    class_names: tuple[str, ...] | None = None  # a name per label value, for a legend

    def __post_init__(self) -> None:
        """Checked and put in canonical dtypes; ValueError with one sentence for anything inconsistent."""
        arrays = {"points": (np.float32, 3), "labels": (np.int64, 1), "index": (np.int64, 1), "step": (np.int64, 1),
                  "epoch": (np.float64, 1), "elapsed_s": (np.float64, 1), "loss": (np.float64, 1)}
        for key, (dtype, ndim) in arrays.items():
            value = np.asarray(getattr(self, key))
            if value.ndim != ndim or not (np.issubdtype(value.dtype, np.number) and value.dtype != np.bool_):
                raise ValueError(f"The movie's {key} must be a {ndim}-d array of numbers.")
            if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                raise ValueError(f"The movie's {key} holds NaN or infinite values.")
            if dtype is np.int64 and not np.issubdtype(value.dtype, np.integer):
                raise ValueError(f"The movie's {key} must be whole numbers.")
            object.__setattr__(self, key, np.ascontiguousarray(value, dtype=dtype))
        f, n = len(self.step), len(self.labels)
        if not 1 <= f <= MAX_STORED_FRAMES or not 1 <= n <= MAX_STORED_POINTS:
            raise ValueError(f"A movie holds 1 to {MAX_STORED_FRAMES} frames of 1 to {MAX_STORED_POINTS:,} digits.")
        if self.points.shape != (f, n, 2) or len(self.index) != n:
            raise ValueError("The movie's points, labels and index do not agree in shape.")
        if any(len(getattr(self, k)) != f for k in ("epoch", "elapsed_s", "loss")):
            raise ValueError("The movie's frame times and losses do not have one value per frame.")
        if self.step[0] != 0 or self.epoch[0] != 0 or (f > 1 and (np.diff(self.step) <= 0).any()):
            raise ValueError("The movie's steps must start at 0 (the untrained model) and increase.")
        if self.elapsed_s[0] < 0 or (np.diff(self.epoch) < 0).any() or (np.diff(self.elapsed_s) < 0).any():
            raise ValueError("The movie's epochs and times must not go backwards.")
        if self.index.min() < 0 or len(np.unique(self.index)) != n or self.labels.min() < 0:
            raise ValueError("The movie's index must hold distinct test-split positions, its labels classes.")
        if self.plane not in PLANES:
            raise ValueError(f"The movie's plane must be one of {', '.join(PLANES)}.")
        names = self.class_names
        if names is not None:
            if not isinstance(names, (list, tuple)) or not all(isinstance(s, str) for s in names):
                raise ValueError("The movie's class names must be texts.")
            object.__setattr__(self, "class_names", tuple(names))

    @property
    def frames(self) -> int:
        return len(self.step)

    def limits(self, margin: float = 0.04) -> tuple[tuple[float, float], tuple[float, float]]:
        """Fixed axis limits (x, y) over all frames, so that every frame is drawn on the same axes: the
        0.5th to 99.5th percentile of each axis (a few far-flung digits do not squash the rest), widened
        by `margin` of the range on each side."""
        out = []
        for axis in (0, 1):
            lo, hi = np.percentile(self.points[:, :, axis], [0.5, 99.5])
            span = hi - lo if hi > lo else 1.0
            out.append((float(lo - margin * span), float(hi + margin * span)))
        return out[0], out[1]


# ---------------------------------------------------------------- when frames are taken

def frame_count(expected_steps: float, step_s: float, frame_s: float) -> int:
    """How many frames a training of about `expected_steps` steps of `step_s` seconds gets, when one frame
    costs `frame_s` seconds: what COST_SHARE of the training time pays for, within MIN_FRAMES..MAX_FRAMES,
    and never more than one per step (plus the untrained one)."""
    affordable = COST_SHARE * expected_steps * step_s / max(frame_s, 1e-9)
    return int(max(2, min(np.clip(affordable, MIN_FRAMES, MAX_FRAMES), expected_steps + 1)))


def frame_thresholds(frames: int, p_start: float, expected_steps: float) -> np.ndarray:
    """The progress values (0..1, increasing) at which the frames between the first (untrained, p = 0)
    and the last (the end, p = 1) are taken; `frames` counts those two as well.

    A latent space takes shape fastest at the start: the untrained encoder's blur of digits sorts itself
    into clusters within the first few hundred steps, then mostly drifts and tightens. A movie with evenly
    spaced frames would show that formation in one or two frames and then twenty nearly identical ones.
    So half the frames come geometrically closer towards the start (equal ratios of steps, from
    `p_start`, where the schedule is made, to KNEE), and the other half are even from KNEE to the end.
    Each frame is at least one (expected) step after the one before."""
    inner = max(0, frames - 2)
    p_start = float(np.clip(p_start, 0.0, 1.0))
    if p_start < KNEE:
        n_geo = inner // 2
        geo = np.geomspace(max(p_start, 1e-9), KNEE, n_geo + 1)[:-1] if n_geo else np.zeros(0)
        even = KNEE + (1.0 - KNEE) * np.arange(inner - n_geo) / max(1, inner - n_geo)
        at = np.concatenate([geo, even])
    else:
        at = p_start + (1.0 - p_start) * np.arange(inner) / max(1, inner)
    total = max(2, round(expected_steps))
    steps = np.clip(np.ceil(at * total - 1e-9), 1, total - 1)  # whole steps, one frame per step at most:
    for i in range(1, len(steps)):  # pushed later where they crowd, then earlier where that ran past the end
        steps[i] = max(steps[i], steps[i - 1] + 1)
    for i in range(len(steps) - 1, -1, -1):
        steps[i] = min(steps[i], total - 1 if i == len(steps) - 1 else steps[i + 1] - 1)
    return steps[steps >= 1] / total


# ---------------------------------------------------------------- the plane each frame is drawn on

def native_points(codes: np.ndarray) -> np.ndarray:
    """A 1- or 2-d model's own plane: (z1, z2), or (z1, 0) for a 1-d model. (N, D) -> (N, 2) float32"""
    z = np.asarray(codes, np.float32)
    return z[:, :2].copy() if z.shape[1] >= 2 else np.c_[z[:, 0], np.zeros(len(z), np.float32)]


def _pca(codes: np.ndarray) -> PCAProjection:
    return PCAProjection().fit(np.asarray(codes, np.float32))


class LivePlane:
    """The frames of a training as they come, each on a 2-D plane. A larger model's frame is projected on
    its own PCA (the basis that the end will bring is not known yet), then turned or mirrored (an
    orthogonal Procrustes fit, a 2x2 rotation or reflection) to lie as close as it can to the frame before,
    so that the live map does not jump or flip from one frame to the next."""

    def __init__(self) -> None:
        self.previous_: np.ndarray | None = None

    def project(self, codes: np.ndarray) -> np.ndarray:
        if codes.shape[1] <= 2:
            return native_points(codes)
        y = _pca(codes).embedding_.astype(np.float64)  # (N, 2)
        if self.previous_ is not None:
            u, _, vt = np.linalg.svd(y.T @ self.previous_)
            y = y @ (u @ vt)
        self.previous_ = y
        return y.astype(np.float32)


def fixed_plane(codes: list[np.ndarray]) -> tuple[np.ndarray, str]:
    """Every frame's codes on one plane, (F, N, 2) float32, and its name: a 1- or 2-d model's own plane,
    else the PCA basis of the last frame (the trained model, as the Latent map page draws it), on which
    every earlier frame is projected too, so that a place on the plane means the same in every frame."""
    if codes[0].shape[1] <= 2:
        return np.stack([native_points(z) for z in codes]), "native"
    pca = _pca(codes[-1])
    return np.stack([pca.transform(np.asarray(z, np.float32)) for z in codes]), "pca"
