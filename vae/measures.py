"""The AE vs VAE page's scored measures, named, and kept for the bundled models.

    names = default_scores(model, clf, x_test, z)     # {"reference/2000": (2000,), "walks/linear/10/100": ...}
    write_scores(SCORES_DIR, classifier_fp, {fingerprint: names, ...})   # python -m vae.assets does this
    store = ScoreStore(SCORES_DIR, classifier_fp)
    store.get(fingerprint, score_name("prior", N_PRIOR, 0), N_PRIOR)    # (400,) float32, or None: compute it

Every share on the page is the part of a set of decoded images that the digit classifier calls a
confident digit, and nearly all of the page's CPU time goes into the classifier (`vae.compare`). The
bundled models' shares of the page's default view (their reconstructions, the walks, seed 0's prior
and fitted samples, the default region's grid) are the same for every server, so `python -m vae.assets`
scores them once, with the same functions the page calls, and stores the scores beside the maps:
`assets/scores/<classifier fingerprint>.npz`, one array per model and measure. A page looks there
first and computes what is not there (a user's own model, another seed or region, a rebuilt
classifier, an old or damaged file). The scores are stored whole (float32), never as shares, so
the page shows and counts exactly what it would have computed.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .compare import (code_region, decoded_fitted, decoded_grid, decoded_prior, map_plane, reconstruction_scores,
                      walk_scores)
from .fileio import atomic_write
from .paths import ASSETS

SCORES_DIR = ASSETS / "scores"
# The page's measures and their defaults (pages/compare.py shows them; vae.assets scores these ahead of time).
N_PRIOR = 400  # samples from N(0, I), and as many from the Gaussian fitted to the codes, per model
N_WALKS = 100  # random pairs of test digits whose walks give the walk share
WALK_STEPS = 10
WALK_PATHS = ("linear", "spherical")
N_REFERENCE = 2000  # test digits whose reconstructions give the reference share (its error: about 1 point)
DEFAULT_GRID = ("sd", 2.0, 14)  # the region, its extent and the grid points per side the page opens with


def score_name(kind: str, *params) -> str:
    """The name of one scored measure, e.g. score_name("walks", "linear", 10, 100) == "walks/linear/10/100"."""
    return "/".join([kind, *(f"{p:g}" if isinstance(p, float) else str(p) for p in params)])


def reference_digits(n_test: int, n: int = N_REFERENCE) -> np.ndarray:
    """Indices of the n test digits whose reconstructions give the reference share: drawn at random (seed 0)
    and sorted, because the test split's first digits are not typical. (min(n, n_test),)"""
    return np.sort(np.random.default_rng(0).choice(n_test, min(n, n_test), replace=False))


def originals_scores(clf, x) -> np.ndarray:
    """The classifier's scores of the reference digits themselves, x the test digits (N, 28, 28) uint8."""
    from .classifier import digit_confidence

    return digit_confidence(clf, x[reference_digits(len(x))]).astype(np.float32)


def default_scores(model, clf, x, z) -> dict[str, np.ndarray]:
    """The scores of a model's default view on the page: x its test digits (N, 28, 28) uint8, z their codes
    (N, D) (posterior means). Computed by the page's own functions, so a stored copy is what the page computes."""
    plane, y = map_plane(z)
    mode, extent, n_grid = DEFAULT_GRID
    out = {score_name("reference", N_REFERENCE): reconstruction_scores(model, clf, x[reference_digits(len(x))]),
           score_name("grid", mode, extent, n_grid): decoded_grid(model, clf, code_region(plane, y, mode, extent),
                                                                  n_grid)[2],
           score_name("prior", N_PRIOR, 0): decoded_prior(model, clf, N_PRIOR, 0)[1],
           score_name("fitted", N_PRIOR, 0): decoded_fitted(model, clf, z, N_PRIOR, 0)[1]}
    for method in WALK_PATHS:
        out[score_name("walks", method, WALK_STEPS, N_WALKS)] = walk_scores(model, clf, z, N_WALKS, WALK_STEPS, method)
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def _path(folder, classifier_fp: str) -> Path:
    return Path(folder) / f"{classifier_fp}.npz"


def write_scores(folder, classifier_fp: str, scores: dict[str, dict[str, np.ndarray]]) -> Path:
    """Store {owner: {name: scores}} scored by the classifier `classifier_fp` (an owner is a model's fingerprint,
    or a dataset's name for its own digits' scores), replacing the files of other classifiers."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, **{f"{owner}:{name}": np.asarray(s, np.float32)
                                for owner, named in scores.items() for name, s in named.items()})
    path = _path(folder, classifier_fp)
    atomic_write(path, buf.getvalue())
    for old in folder.glob("*.npz"):
        if old != path:
            old.unlink()
    return path


class ScoreStore:
    """The scores stored for one classifier (an empty store where there are none, or the file is damaged).
    Read once; the arrays are read-only and may be shared by every session."""

    def __init__(self, folder, classifier_fp: str):
        self._scores: dict[str, np.ndarray] = {}
        try:
            with np.load(_path(folder, classifier_fp)) as f:
                for key in f.files:
                    s = f[key].astype(np.float32)
                    s.flags.writeable = False
                    self._scores[key] = s
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
            self._scores = {}  # a damaged file is recomputed, never trusted

    def __len__(self) -> int:
        return len(self._scores)

    def get(self, owner: str, name: str, n: int) -> np.ndarray | None:
        """The n scores of measure `name` of `owner` (a model's fingerprint, or a dataset), or None."""
        s = self._scores.get(f"{owner}:{name}")
        if s is None or s.shape != (n,) or not np.isfinite(s).all() or s.min() < 0 or s.max() > 1:
            return None
        return s
