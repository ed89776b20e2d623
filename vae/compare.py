"""Measuring holes in a latent space, on the same footing for an AE and a VAE.

    plane, y = map_plane(z)                          # the native plane (2-D) or PCA of the codes
    region = code_region(plane, y, mode="sd", extent=2)  # +-2 of the codes' own standard deviations
    report = hole_report(model, clf, region, n_grid=16, n_prior=400, seed=0, codes=z)
    report.grid_share, report.empty_share, report.prior_share, report.fitted_share
    path = path_report(model, clf, z0, z1, steps=10, method="spherical")
    reference = reconstruction_scores(model, clf, x)  # what the model's own reconstructions score

"Looks like a digit" is the bundled classifier's top class probability (`vae.classifier`);
a decoded image counts as a confident digit at `CONFIDENT` or above.

Fair means the same footing for both models. An AE has no prior: its codes may sit anywhere, at any
scale, so a square around the origin or samples from N(0, I) probe a VAE where its codes are and an
AE wherever that square happens to fall. The fair measures are taken in each model's own units: a
region of +-k of its codes' standard deviations around their mean ("sd"), samples from a Gaussian
fitted to its own codes ("fitted"), and emptiness (grid points with no test code nearby, "nearby"
also in its own standard deviations). Multiplying an AE's codes by 10 (and dividing its decoder's
first layer by 10) changes none of these; it changes the prior samples completely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .classifier import CONFIDENT, DigitClassifier, digit_confidence
from .latent import decode, encode, grid_codes, interpolate, prior_samples
from .config import ModelConfig
from .models import AutoEncoder
from .maps.projection import Projection, make_projection

REGION_MODES = ("sd", "codes", "box")
# (AE id, VAE id); the first is the page's default: the 16-d pair shows the textbook gap, measured
# fairly, and the 2-d pair mostly does not (assets/README.md, "The bundled AE/VAE pairs, measured")
BUNDLED_PAIRS = {"16-d": ("ae-16d", "vae-16d"), "2-d": ("ae-2d", "vae-2d")}
EMPTY_RADIUS = 0.1  # a grid point is empty with no test code this close, in the codes' own standard deviations


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


def code_region(plane: Projection, y: np.ndarray, mode: str = "sd", extent: float = 2.0) -> Region:
    """The box to probe, in the map plane of the codes `y` (N, 2).

    "sd": +-extent of the codes' own standard deviations (per map axis) around their mean: the same footing
    for every model, whatever the scale of its codes. "codes": where the test codes lie (1st to 99th
    percentile on each axis, with a 5 % margin). "box": a square of +-extent around the latent origin,
    where the prior N(0, I) puts its mass (the same square for every model of a 2-D space; fair for a
    VAE, whose codes are pulled there, but not for an AE, whose codes may lie anywhere)."""
    if mode not in REGION_MODES:
        raise ValueError(f"Region must be one of {REGION_MODES}, not {mode!r}.")
    if mode in ("box", "sd") and not (np.isfinite(extent) and extent > 0):
        raise ValueError("The box half-width must be a positive number." if mode == "box" else
                         "The number of standard deviations must be a positive number.")
    if mode == "box":
        dim = plane.inverse_transform(np.zeros((1, 2), np.float32)).shape[1]
        centre = plane.transform(np.zeros((1, dim), np.float32))  # the latent origin, seen on the map
        shift = -plane.inverse_transform(centre)[0]  # what the map plane misses of the origin (0 for 2-D)
        cx, cy = (float(v) for v in centre[0])
        return Region((cx - extent, cx + extent), (cy - extent, cy + extent), plane, shift.astype(np.float32))
    y = np.asarray(y, np.float64)
    if len(y) < 2 or not np.isfinite(y).all():
        raise ValueError("A region from the codes needs at least two finite codes.")
    if mode == "sd":
        centre, half = y.mean(0), extent * _spread(y)
        lo, hi = centre - half, centre + half
    else:
        lo, hi = np.percentile(y, [1, 99], axis=0)
        pad = np.maximum(0.05 * (hi - lo), 1e-3)  # a 1-D model's flat second axis still gets a thin box
        lo, hi = lo - pad, hi + pad
    return Region((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1])), plane)


def _spread(y: np.ndarray) -> np.ndarray:
    """Standard deviation of each map axis (2,); a flat axis (a 1-D model's second one) counts as 1e-3
    of the other, or 1e-3 when both are flat, so a box and a distance stay defined."""
    sd = np.asarray(y, np.float64).std(0)
    return np.where(sd > 0, sd, max(1e-3 * float(sd.max()), 1e-3))


def empty_mask(points: np.ndarray, y: np.ndarray, radius: float = EMPTY_RADIUS) -> np.ndarray:
    """Which of the plane points (M, 2) have no test code (y (N, 2), on the same map plane) within `radius`
    standard deviations of the codes: distances are measured after dividing each axis by its spread, so
    the answer is the same at any scale of the codes. -> (M,) bool, True where the point is empty.

    Exact, without measuring every pair: the codes are binned in square cells of side `radius`, so a code
    within `radius` of a point lies in the point's own cell or one of its 8 neighbours (~100 candidates a
    point instead of 10,000: a 24 x 24 grid in ~5 ms instead of ~120)."""
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError("The emptiness radius must be a positive number.")
    y = np.asarray(y, np.float64)
    if not len(y):
        return np.ones(len(points), bool)
    scale = _spread(y)
    yw, pw = y / scale, np.asarray(points, np.float64) / scale
    cy, cp = np.floor(yw / radius).astype(np.int64), np.floor(pw / radius).astype(np.int64)
    lo = np.minimum(cy.min(0), cp.min(0, initial=cy.min())) - 1
    rows = max(int(cy[:, 1].max()), int(cp[:, 1].max(initial=0))) - int(lo[1]) + 2  # cells per column, with margin
    cell = (cy[:, 0] - lo[0]) * rows + (cy[:, 1] - lo[1])
    order = np.argsort(cell, kind="stable")
    cell, yw = cell[order], yw[order]
    near = np.zeros(len(pw), bool)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            q = (cp[:, 0] + dx - lo[0]) * rows + (cp[:, 1] + dy - lo[1])
            start, stop = np.searchsorted(cell, q, "left"), np.searchsorted(cell, q, "right")
            counts = stop - start
            if not counts.any():
                continue
            owner = np.repeat(np.arange(len(pw)), counts)  # one row per (point, candidate code)
            idx = np.repeat(start - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
            d2 = ((yw[idx] - pw[owner]) ** 2).sum(1)
            near[owner[d2 <= radius * radius]] = True
    return ~near


def fitted_samples(z: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Codes drawn from a Gaussian fitted to the codes z (N, D): their mean and full covariance. The draws
    are the prior samples of the same seed, moved and shaped (mean + L eps, L the Cholesky factor), so
    they are the prior's samples on the model's own footing. (n, D)"""
    z = np.asarray(z, np.float64)
    if len(z) < 2 or not np.isfinite(z).all():
        raise ValueError("A Gaussian fitted to the codes needs at least two finite codes.")
    cov = np.atleast_2d(np.cov(z, rowvar=False))
    cov = cov + np.eye(len(cov)) * 1e-6 * max(float(np.trace(cov)) / len(cov), 1e-12)  # never singular
    eps = prior_samples(n, z.shape[1], seed=seed).astype(np.float64)
    return (z.mean(0) + eps @ np.linalg.cholesky(cov).T).astype(np.float32)


def _scores(clf: DigitClassifier | None, images: np.ndarray) -> np.ndarray | None:
    return None if clf is None else digit_confidence(clf, images).astype(np.float32)


def _share(scores: np.ndarray | None, threshold: float) -> float | None:
    return None if scores is None or not len(scores) else float((scores >= threshold).mean())


@dataclass
class HoleReport:
    """One model's region grid, prior samples and fitted-Gaussian samples, decoded, with the classifier's
    score of each image, and which grid points are empty (no test code nearby)."""

    grid_points: np.ndarray  # (n*n, 2) plane coordinates
    grid_images: np.ndarray  # (n*n, 28, 28)
    prior_images: np.ndarray  # (n_prior, 28, 28) from hole_report; a page may keep only the first few it shows
    grid_scores: np.ndarray | None  # (n*n,) top class probability; None without a classifier
    prior_scores: np.ndarray | None  # (n_prior,)
    region: Region | None = field(default=None, repr=False)
    threshold: float = CONFIDENT
    empty: np.ndarray | None = None  # (n*n,) bool: no test code within EMPTY_RADIUS; None without the codes
    fitted_images: np.ndarray | None = None  # (n_prior, 28, 28) from a Gaussian fitted to the model's codes (or
    # None where only their scores are kept)
    fitted_scores: np.ndarray | None = None  # (n_prior,)

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

    @property
    def fitted_share(self) -> float | None:
        """Share of the fitted Gaussian's samples that decode to a confident digit."""
        return _share(self.fitted_scores, self.threshold)

    @property
    def empty_share(self) -> float | None:
        """Share of the region's grid points with no test code nearby (None without the codes)."""
        return None if self.empty is None else float(self.empty.mean())

    @property
    def empty_digit_share(self) -> float | None:
        """Share of the empty grid points that still decode to a confident digit (None if none is empty)."""
        if self.empty is None or self.grid_scores is None or not self.empty.any():
            return None
        return _share(self.grid_scores[self.empty], self.threshold)


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


def _check_samples(n: int) -> None:
    if not 1 <= n <= 10_000:
        raise ValueError(f"Draw from 1 to 10,000 prior samples, not {n}.")


def decoded_prior(model: AutoEncoder, clf: DigitClassifier | None, n_prior: int = 400, seed: int = 0):
    """Decode `n_prior` codes drawn from N(0, I) and score each. -> (images (n, 28, 28), scores (n,) or None)"""
    _check_samples(n_prior)
    images = decode(model, prior_samples(n_prior, model.latent_dim, seed=seed))
    return images, _scores(clf, images)


def decoded_fitted(model: AutoEncoder, clf: DigitClassifier | None, z: np.ndarray, n: int = 400, seed: int = 0):
    """Decode `n` codes from a Gaussian fitted to the model's codes z (N, D) and score each.
    -> (images (n, 28, 28), scores (n,) or None)"""
    _check_samples(n)
    if np.shape(z)[1:] != (model.latent_dim,):
        raise ValueError(f"The codes are {np.shape(z)[1:]}-shaped, the model has {model.latent_dim} dimensions.")
    images = decode(model, fitted_samples(z, n, seed))
    return images, _scores(clf, images)


def hole_report(model: AutoEncoder, clf: DigitClassifier | None, region: Region, n_grid: int = 16,
                n_prior: int = 400, seed: int = 0, threshold: float = CONFIDENT, codes: np.ndarray | None = None,
                radius: float = EMPTY_RADIUS) -> HoleReport:
    """Decode an n_grid x n_grid grid over `region` and `n_prior` codes drawn from N(0, I), and score each;
    with the model's test `codes` (N, D) also the grid's empty points and as many samples of a Gaussian
    fitted to the codes. (The halves, `decoded_grid`, `decoded_prior`, `decoded_fitted` and `empty_mask`,
    depend on different settings: a page caches them apart, so moving the region decodes only the grid.)"""
    points, grid_images, grid_scores = decoded_grid(model, clf, region, n_grid)
    prior_images, prior_scores = decoded_prior(model, clf, n_prior, seed)
    if codes is None:
        return HoleReport(points, grid_images, prior_images, grid_scores, prior_scores, region, threshold)
    empty = empty_mask(points, region.plane.transform(codes), radius)
    fitted_images, fitted_scores = decoded_fitted(model, clf, codes, n_prior, seed)
    return HoleReport(points, grid_images, prior_images, grid_scores, prior_scores, region, threshold, empty,
                      fitted_images, fitted_scores)


def reconstruction_scores(model: AutoEncoder, clf: DigitClassifier, x) -> np.ndarray:
    """The classifier's score of the model's reconstructions of real digits x (N, 28, 28) uint8 (decoded
    from the posterior means): the reference for every share, what the model gets on digits it has
    codes for. (N,)"""
    return digit_confidence(clf, decode(model, encode(model, x))).astype(np.float32)


def walk_scores(model: AutoEncoder, clf: DigitClassifier, z: np.ndarray, n_pairs: int = 100, steps: int = 10,
                method: str = "linear", seed: int = 0) -> np.ndarray:
    """Scores of the in-between steps of walks between `n_pairs` random pairs of the codes z (N, D) (the
    endpoints, which are test codes themselves, left out): a walk share that one lucky pair cannot make.
    (n_pairs * (steps - 2),)"""
    if not 3 <= steps <= 100 or not 1 <= n_pairs <= 1000:
        raise ValueError("Walks take 3 to 100 steps, between 1 and 1,000 pairs.")
    z = np.asarray(z, np.float32)
    pairs = np.random.default_rng(seed).choice(len(z), size=(n_pairs, 2))
    zs = np.concatenate([interpolate(z[i], z[j], steps, method)[1:-1] for i, j in pairs])
    return digit_confidence(clf, decode(model, zs)).astype(np.float32)


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
