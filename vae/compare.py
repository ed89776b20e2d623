"""Measuring holes in a latent space: how much of it decodes to something that looks like a digit.

    plane, y = map_plane(z)                          # the native plane (2-D) or PCA of the codes
    region = code_region(plane, y, mode="box")       # a square around the origin, in that plane
    report = hole_report(model, clf, region, n_grid=16, n_prior=400, seed=0)
    report.grid_share, report.prior_share            # shares judged a confident digit, in [0, 1]
    path = path_report(model, clf, z0, z1, steps=10, method="spherical")

"Looks like a digit" is the bundled classifier's top class probability (`vae.classifier`);
a decoded image counts as a confident digit at `CONFIDENT` or above. An AE and a VAE of the
same architecture differ most here: prior samples and grid points between the AE's clusters
decode to blurs, while the VAE's KL term leaves few such holes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .classifier import CONFIDENT, DigitClassifier, digit_confidence
from .latent import decode, grid_codes, interpolate, prior_samples
from .config import ModelConfig
from .models import AutoEncoder
from .maps.projection import Projection, make_projection

REGION_MODES = ("box", "codes")
BUNDLED_PAIRS = {"2-d": ("ae-2d", "vae-2d"), "16-d": ("ae-16d", "vae-16d")}  # (AE id, VAE id)


def map_plane(z: np.ndarray) -> tuple[Projection, np.ndarray]:
    """The 2-D view of a latent space: the model's own plane for <= 2 dims, else PCA fitted on the codes.

    Both can place new codes (`transform`) and map plane points back to codes (`inverse_transform`),
    so a path or a grid lives in the same picture as the test digits. Returns (plane, coords (N, 2)).
    """
    z = np.asarray(z, np.float32)
    plane = make_projection("native" if z.shape[1] <= 2 else "pca", seed=0)
    return plane, plane.fit_transform(z)


@dataclass(frozen=True, eq=False)
class Region:
    """A box in a map plane; its grid points are decoded through the plane back to latent codes.

    `shift` (D,) moves the decoded slice off the map's own plane, parallel to it: a PCA map's plane passes
    through the codes' mean, and a box around the latent origin should slice through the origin itself.
    """

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    plane: Projection = field(repr=False)
    shift: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for lo, hi in (self.x_range, self.y_range):
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError("A region needs finite bounds with low below high on both axes.")

    def grid(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """An n x n grid, row-major with the top row at the highest y: (plane points (n*n, 2), codes (n*n, D))."""
        y = grid_codes(n, self.x_range, self.y_range)
        z = self.plane.inverse_transform(y)
        return y, (z if self.shift is None else z + self.shift).astype(np.float32)


def code_region(plane: Projection, y: np.ndarray, mode: str = "box", extent: float = 3.0) -> Region:
    """The box to probe. "box": a square of +-extent around the latent origin, where the prior N(0, I) puts
    its mass (the same square for every model of a 2-D space); "codes": where the test codes lie (1st to 99th
    percentile on each axis, with a 5 % margin)."""
    if mode not in REGION_MODES:
        raise ValueError(f"Region must be one of {REGION_MODES}, not {mode!r}.")
    if mode == "box":
        if not (np.isfinite(extent) and extent > 0):
            raise ValueError("The box half-width must be a positive number.")
        dim = plane.inverse_transform(np.zeros((1, 2), np.float32)).shape[1]
        centre = plane.transform(np.zeros((1, dim), np.float32))  # the latent origin, seen on the map
        shift = -plane.inverse_transform(centre)[0]  # what the map plane misses of the origin (0 for 2-D)
        cx, cy = (float(v) for v in centre[0])
        return Region((cx - extent, cx + extent), (cy - extent, cy + extent), plane, shift.astype(np.float32))
    y = np.asarray(y, np.float32)
    if len(y) < 2 or not np.isfinite(y).all():
        raise ValueError("A region from the codes needs at least two finite codes.")
    lo, hi = np.percentile(y, [1, 99], axis=0)
    pad = np.maximum(0.05 * (hi - lo), 1e-3)  # a 1-D model's flat second axis still gets a thin box
    lo, hi = lo - pad, hi + pad
    return Region((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1])), plane)


def _scores(clf: DigitClassifier | None, images: np.ndarray) -> np.ndarray | None:
    return None if clf is None else digit_confidence(clf, images).astype(np.float32)


def _share(scores: np.ndarray | None, threshold: float) -> float | None:
    return None if scores is None or not len(scores) else float((scores >= threshold).mean())


@dataclass
class HoleReport:
    """Decoded grid and prior samples of one model, with the classifier's score of each image."""

    grid_points: np.ndarray  # (n*n, 2) plane coordinates
    grid_images: np.ndarray  # (n*n, 28, 28)
    prior_images: np.ndarray  # (n_prior, 28, 28)
    grid_scores: np.ndarray | None  # (n*n,) top class probability; None without a classifier
    prior_scores: np.ndarray | None  # (n_prior,)
    region: Region | None = field(default=None, repr=False)
    threshold: float = CONFIDENT

    @property
    def n_grid(self) -> int:
        return int(round(np.sqrt(len(self.grid_images))))

    @property
    def grid_share(self) -> float | None:
        """Share of grid points that decode to a confident digit."""
        return _share(self.grid_scores, self.threshold)

    @property
    def prior_share(self) -> float | None:
        """Share of prior samples N(0, I) that decode to a confident digit."""
        return _share(self.prior_scores, self.threshold)


def decoded_grid(model: AutoEncoder, clf: DigitClassifier | None, region: Region, n_grid: int = 16):
    """Decode an n_grid x n_grid grid over `region` and score each image.
    -> (points (n*n, 2), images (n*n, 28, 28), scores (n*n,) or None)"""
    if not 2 <= n_grid <= 64:
        raise ValueError(f"The grid needs from 2 to 64 points per side, not {n_grid}.")
    points, z_grid = region.grid(n_grid)
    if z_grid.shape[1] != model.latent_dim:
        raise ValueError(f"The region belongs to a {z_grid.shape[1]}-d space, the model has {model.latent_dim}.")
    images = decode(model, z_grid)
    return points, images, _scores(clf, images)


def decoded_prior(model: AutoEncoder, clf: DigitClassifier | None, n_prior: int = 400, seed: int = 0):
    """Decode `n_prior` codes drawn from N(0, I) and score each. -> (images (n, 28, 28), scores (n,) or None)"""
    if not 1 <= n_prior <= 10_000:
        raise ValueError(f"Draw from 1 to 10,000 prior samples, not {n_prior}.")
    images = decode(model, prior_samples(n_prior, model.latent_dim, seed=seed))
    return images, _scores(clf, images)


def hole_report(model: AutoEncoder, clf: DigitClassifier | None, region: Region, n_grid: int = 16,
                n_prior: int = 400, seed: int = 0, threshold: float = CONFIDENT) -> HoleReport:
    """Decode an n_grid x n_grid grid over `region` and `n_prior` codes drawn from N(0, I), and score each.
    (The two halves, `decoded_grid` and `decoded_prior`, depend on different settings: a page caches
    them apart, so moving the region never decodes the prior samples again.)"""
    points, grid_images, grid_scores = decoded_grid(model, clf, region, n_grid)
    prior_images, prior_scores = decoded_prior(model, clf, n_prior, seed)
    return HoleReport(points, grid_images, prior_images, grid_scores, prior_scores, region, threshold)


@dataclass
class PathReport:
    """An interpolation: its codes, the decoded strip and the classifier's score per step."""

    z: np.ndarray  # (steps, D)
    images: np.ndarray  # (steps, 28, 28)
    scores: np.ndarray | None  # (steps,)
    threshold: float = CONFIDENT

    @property
    def share(self) -> float | None:
        return _share(self.scores, self.threshold)

    @property
    def weakest(self) -> int | None:
        """The step that looks least like a digit (None without scores)."""
        return None if self.scores is None else int(np.argmin(self.scores))


def path_report(model: AutoEncoder, clf: DigitClassifier | None, z0, z1, steps: int = 10,
                method: str = "linear", threshold: float = CONFIDENT) -> PathReport:
    """Interpolate from z0 to z1 (endpoints included), decode every step and score it."""
    if not 2 <= steps <= 100:
        raise ValueError(f"An interpolation takes from 2 to 100 steps, not {steps}.")
    z = interpolate(z0, z1, steps, method)
    images = decode(model, z)
    return PathReport(z, images, _scores(clf, images), threshold)


def representative(z: np.ndarray, labels, digit: int) -> int:
    """Index of the test digit of class `digit` whose code lies closest to that class's mean code."""
    labels = np.asarray(labels)
    idx = np.flatnonzero(labels == digit)
    if not len(idx):
        raise ValueError(f"There is no test digit labelled {digit}.")
    zc = np.asarray(z, np.float32)[idx]
    return int(idx[np.argmin(((zc - zc.mean(0)) ** 2).sum(1))])


def worst(errors: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest errors, largest first (ties broken by index, so it is stable)."""
    errors = np.asarray(errors)
    k = max(0, min(int(k), len(errors)))
    return np.argsort(-errors, kind="stable")[:k]


def pair_rows(a: np.ndarray, b: np.ndarray, cols: int) -> np.ndarray:
    """Two image sets (N, H, W) -> rows of `cols` from a, each followed by the matching row of b.

    With `tile(out, cols)` every original sits right above its reconstruction. (2N', H, W),
    the last row padded with blanks."""
    if a.shape != b.shape:
        raise ValueError("Both image sets must have the same shape.")
    if cols < 1:
        raise ValueError("Give at least one column.")
    n, h, w = a.shape
    rows = -(-n // cols)
    pad = rows * cols - n
    blank = np.zeros((pad, h, w), a.dtype)
    a2 = np.concatenate([a, blank]).reshape(rows, cols, h, w)
    b2 = np.concatenate([b, blank.astype(b.dtype)]).reshape(rows, cols, h, w)
    return np.stack([a2, b2], axis=1).reshape(2 * rows * cols, h, w)


def pair_mismatch(a: ModelConfig, b: ModelConfig, dataset_a: str = "mnist", dataset_b: str = "mnist") -> str | None:
    """One sentence on how two models differ in what must match for a fair AE vs VAE comparison."""
    diffs = []
    if dataset_a != dataset_b:
        diffs.append(f"training data ({dataset_a} vs {dataset_b})")
    if a.arch != b.arch or a.hidden != b.hidden:
        diffs.append(f"architecture ({a.arch} {list(a.hidden)} vs {b.arch} {list(b.hidden)})")
    if a.latent_dim != b.latent_dim:
        diffs.append(f"latent size ({a.latent_dim} vs {b.latent_dim})")
    if not diffs:
        return None
    return ("These two models differ in " + " and ".join(diffs)
            + ", so part of the gap below may come from that rather than from AE vs VAE.")
