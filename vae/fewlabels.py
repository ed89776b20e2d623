"""Learning from few labels: how well the test digits are labelled from k labelled ones per class.

The encoder never saw a label, yet digits of one class may still sit together in its latent space.
This measures how much: draw k labelled test digits per class, label all the other test digits from
them, count how many come out right. Two ways to label (METHODS):

- "knn": a vote of the 3 nearest labelled digits (Euclidean); a tie goes to the tied class with the
  nearest neighbour. So with 1 labelled digit per class (3 voters of 3 classes) it is 1-NN, and at 2 it
  is 1-NN unless the 2nd and 3rd nearest agree. The tie rule matters: scikit-learn's (the lowest
  class) costs 3-NN 16 points at 1 per class and 4 at 10 on the bundled VAE's codes. `vae.evaluate`'s
  knn_acc (3-NN from 10 labelled digits per class) uses this module's draw and vote, with its old
  scikit-learn tie rule (`ties="lowest"`), so its values stay what they were.
- "mean": nearest class mean: each class is the mean of its labelled digits; a digit gets the nearest.

The features may be codes (N, D) or flattened pixels (N, 784), the baseline every encoder has to
beat. Within a draw the labelled digits for k per class are the first k of one random order per class,
so the labelled sets grow with k (a learning curve), and every model and the pixels get the same draws
for the same labels and seed. A draw costs one matrix product from all digits to its max(ks) labelled
ones per class, then a pass per labelled digit that keeps each class's two nearest: ~0.1 s a draw for
10,000 16-d codes, ~0.7 s for pixels (benchmarks/bench_fewlabels.py).

numpy only (no torch, no Streamlit):

    from vae.fewlabels import few_labels
    result = few_labels(codes, labels)          # (N, D) float, (N,) int
    result.mean("knn"), result.spread("knn")   # accuracy per k, over the draws
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fileio import atomic_write

KS = (1, 2, 3, 5, 10, 20, 50, 100)
DRAWS = 5
KNN_K = 3  # neighbours that vote, once every class has that many labelled digits
METHODS = ("knn", "mean")
METHOD_LABELS = {"knn": "k-nearest neighbours", "mean": "nearest class mean"}
VERSION = 1  # of the measurement: a change to the draws or the vote must change the stored results' keys
_CHUNK = 2048  # digits per block of the distance matrix (bounded memory: 2048 x 1000 floats)


def draw_labelled(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Per class (in sorted order), `per_class` distinct indices of that class's digits in a random order
    (all of them, shuffled, when it has fewer). Any first n of a class's indices are a uniform draw of n."""
    labels = np.asarray(labels)
    return [rng.choice(pool, min(per_class, len(pool)), replace=False)
            for pool in (np.flatnonzero(labels == c) for c in np.unique(labels))]


def squared_distances(x: np.ndarray, y: np.ndarray, rank_only: bool = False) -> np.ndarray:
    """All squared Euclidean distances between the rows of x (N, D) and y (M, D). (N, M)

    One matrix product, |x|^2 - 2 x.y + |y|^2: in float64 for codes (exact enough to order near ties),
    float32 for wide features such as pixels (twice as fast; their distances are large). With
    `rank_only`, |x|^2 is left out: each row is then off by a constant, which orders it the same."""
    dtype = np.float64 if x.shape[1] <= 256 else np.float32
    x, y = x.astype(dtype, copy=False), y.astype(dtype, copy=False)
    d = x @ (-2 * y).T
    d += np.einsum("ij,ij->i", y, y)[None, :]
    if not rank_only:
        d += np.einsum("ij,ij->i", x, x)[:, None]
    return d


def vote(d: np.ndarray, y_lab: np.ndarray, n_neighbors: int, ties: str = "nearest") -> np.ndarray:
    """The majority label of each row's `n_neighbors` nearest columns, from distances d (N, M) to labelled
    points y_lab (M,). (N,) A tie goes to the tied class with the nearest neighbour ("nearest": so with one
    labelled digit per class, 3 voters from 3 classes make it 1-NN), or to the lowest label ("lowest":
    scikit-learn's KNeighborsClassifier rule, which `vae.evaluate`'s knn_acc has always used)."""
    if ties not in ("nearest", "lowest"):
        raise ValueError(f"ties must be 'nearest' or 'lowest', not {ties!r}.")
    classes, y_idx = np.unique(y_lab, return_inverse=True)
    n = min(n_neighbors, d.shape[1])
    near = np.argpartition(d, n - 1, axis=1)[:, :n] if n < d.shape[1] else np.tile(np.arange(n), (len(d), 1))
    near = np.take_along_axis(near, np.take_along_axis(d, near, 1).argsort(axis=1, kind="stable"), 1)
    votes = y_idx[near]  # (N, n), nearest first
    counts = (votes[:, :, None] == np.arange(len(classes))).sum(axis=1)  # (N, C)
    if ties == "lowest":
        return classes[np.argmax(counts, axis=1)]
    rows = np.arange(len(d))[:, None]
    first = np.argmax(counts[rows, votes] == counts.max(axis=1, keepdims=True), axis=1)  # nearest of the winners
    return classes[votes[np.arange(len(d)), first]]


def knn_predict(z_lab: np.ndarray, y_lab: np.ndarray, z: np.ndarray, n_neighbors: int = KNN_K,
                ties: str = "nearest") -> np.ndarray:
    """k-NN labels of z (N, D) from labelled points z_lab (M, D) with labels y_lab (M,). (N,)"""
    z_lab, y_lab = np.asarray(z_lab), np.asarray(y_lab)
    out = [vote(squared_distances(z[i:i + _CHUNK], z_lab, rank_only=True), y_lab, n_neighbors, ties)
           for i in range(0, len(z), _CHUNK)]
    return np.concatenate(out) if out else np.zeros(0, y_lab.dtype)


def _scores(lab: np.ndarray, block: np.ndarray) -> np.ndarray:
    """|y|^2 - 2 y.x for labelled rows y of lab (M, D) against the digits x of block (B, D), float32: per
    digit, the squared distances less |x|^2, which orders them the same. (M, B), one column a digit."""
    lab = lab.astype(np.float32, copy=False)
    out = (-2 * lab) @ block.astype(np.float32, copy=False).T
    out += np.einsum("ij,ij->i", lab, lab)[:, None]
    return out


def _three_nearest_vote(a: np.ndarray, b: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """The 3-NN vote, ties to the nearest, from each class's two smallest distances a <= b, (C, B) each
    (inf where a class has fewer labelled digits), and the class of each digit's nearest, c1 (B,). (B,)

    The nearest class loses only when the 2nd and 3rd nearest share another class c2: then c2's two
    nearest both come before c1's second and before any third class's nearest."""
    cols = np.arange(a.shape[1])
    rest = a.copy()
    rest[c1, cols] = np.inf
    c2 = np.argmin(rest, axis=0)
    rest[c2, cols] = np.inf
    wins = b[c2, cols] < np.minimum(b[c1, cols], rest.min(axis=0))
    return np.where(wins, c2, c1)


@dataclass(frozen=True)
class FewLabels:
    """Accuracy against labels per class, for both METHODS, over seeded draws."""

    ks: tuple[int, ...]
    classes: np.ndarray  # (C,) the class labels, sorted
    accuracy: np.ndarray  # (len(METHODS), len(ks), draws) in [0, 1]: of the digits not labelled
    labelled: np.ndarray  # (draws, C, max(ks)) test indices; k labels per class are the first k of each row
    predictions: np.ndarray  # (len(METHODS), len(ks), draws, N) labels given (int8 for digits); -1: labelled

    @property
    def draws(self) -> int:
        return self.accuracy.shape[2]

    def _m(self, method: str) -> np.ndarray:
        if method not in METHODS:
            raise ValueError(f"The method must be one of {', '.join(METHODS)}, not {method!r}.")
        return self.accuracy[METHODS.index(method)]

    def _k(self, k: int) -> int:
        if k not in self.ks:
            raise ValueError(f"{k} labels per class was not measured; the measured ones are "
                             f"{', '.join(map(str, self.ks))}.")
        return self.ks.index(k)

    def mean(self, method: str) -> np.ndarray:
        """Mean accuracy over the draws, per k. (len(ks),)"""
        return self._m(method).mean(axis=1)

    def spread(self, method: str) -> np.ndarray:
        """Standard deviation of the accuracy over the draws, per k (0 for one draw). (len(ks),)"""
        return self._m(method).std(axis=1)

    def lowest(self, method: str) -> np.ndarray:
        return self._m(method).min(axis=1)

    def highest(self, method: str) -> np.ndarray:
        return self._m(method).max(axis=1)

    def at(self, method: str, k: int, draw: int = 0) -> float:
        """The accuracy of one draw at k labels per class."""
        return float(self._m(method)[self._k(k), draw])

    def labelled_at(self, k: int, draw: int = 0) -> np.ndarray:
        """The labelled test indices of one draw at k per class, a row per class. (C, k)"""
        return self.labelled[draw, :, :self.ks[self._k(k)]]

    def predicted(self, method: str, k: int, draw: int = 0) -> np.ndarray:
        """The labels one draw gave every test digit at k per class (-1 for the labelled ones). (N,)"""
        self._m(method)
        return self.predictions[METHODS.index(method), self._k(k), draw]


def _check(features: np.ndarray, labels: np.ndarray, ks: Sequence[int], draws: int) -> tuple[int, ...]:
    if features.ndim != 2 or len(features) != len(labels) or labels.ndim != 1:
        raise ValueError(f"The features must be one row per label, (N, D) and (N,), not {features.shape} "
                         f"and {labels.shape}.")
    if not np.all(np.isfinite(features)):
        raise ValueError("The features hold values that are not finite numbers, so no distances can be taken.")
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks:
        raise ValueError("Give at least one number of labels per class.")
    if ks[0] < 1:
        raise ValueError(f"Each class needs at least 1 labelled digit, not {ks[0]}.")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ValueError("Labelling needs digits of at least two classes.")
    if ks[-1] >= counts.min():
        raise ValueError(f"{ks[-1]} labels per class are too many: class {classes[counts.argmin()]} has only "
                         f"{counts.min()} digits, and at least one must be left to label.")
    if not 1 <= int(draws) <= 100:
        raise ValueError(f"The number of draws must be between 1 and 100, not {draws}.")
    return ks


def few_labels(features: np.ndarray, labels: np.ndarray, ks: Sequence[int] = KS, draws: int = DRAWS,
               seed: int = 0, progress: Callable[[float], None] | None = None) -> FewLabels:
    """Label the digits from k labelled ones per class, for every k in `ks`, over `draws` seeded draws.

    features (N, D) (codes, or flattened pixels), labels (N,). `progress(fraction)` is called after each
    draw. Raises ValueError with a sentence for bad input (k of 0, or k leaving a class nothing to label)."""
    features, labels = np.asarray(features), np.asarray(labels)
    ks = _check(features, labels, ks, draws)
    features = features.astype(np.float32, copy=False)
    rng = np.random.default_rng(seed)
    n, top = len(labels), ks[-1]
    classes = np.unique(labels)
    acc = np.zeros((len(METHODS), len(ks), draws))
    small = classes.min() >= 0 and classes.max() < 127  # digits: a byte a label (0.8 MB for 10,000 digits)
    preds = np.full((len(METHODS), len(ks), draws, n), -1, np.int8 if small else np.int32)
    picked = np.zeros((draws, len(classes), top), np.int64)
    for d in range(draws):
        picked[d] = np.stack(draw_labelled(labels, top, rng))  # (C, top)
        # Row t * C + c is class c's t-th labelled digit: the first k rows per class are k's labels.
        lab_x = features[picked[d].T.ravel()]
        means = [features[picked[d, :, :k]].mean(axis=1) for k in ks]  # per k, (C, D)
        for i in range(0, n, _CHUNK):
            block = features[i:i + _CHUNK]
            rows = slice(i, i + len(block))
            dist = _scores(lab_x, block).reshape(top, len(classes), len(block))  # (top, C, B)
            # Each class's two smallest distances so far, a <= b, as its labelled digits come in.
            a, b = np.full((2, len(classes), len(block)), np.inf, np.float32)
            j = 0
            for t in range(top):
                np.minimum(b, np.maximum(a, dist[t]), out=b)
                np.minimum(a, dist[t], out=a)
                if t + 1 == ks[j]:
                    nearest = np.argmin(a, axis=0)
                    preds[0, j, d, rows] = classes[_three_nearest_vote(a, b, nearest)]
                    preds[1, j, d, rows] = classes[np.argmin(_scores(means[j], block), axis=0)]
                    j += 1
        for j, k in enumerate(ks):
            scored = np.ones(n, bool)
            scored[picked[d, :, :k].ravel()] = False
            preds[:, j, d, ~scored] = -1
            acc[:, j, d] = (preds[:, j, d, scored] == labels[scored]).mean(axis=1)
        if progress is not None:
            progress((d + 1) / draws)
    return FewLabels(ks, classes, acc, picked, preds)


def pixels(x: np.ndarray) -> np.ndarray:
    """uint8 digits (N, 28, 28) -> the pixel features (N, 784) in [0, 1], float32."""
    x = np.asarray(x)
    return (x.reshape(len(x), -1).astype(np.float32) / 255.0)


# --- results kept on disk (one .npz each, keyed by what was measured and how) --------------------------

_FIELDS = ("ks", "classes", "accuracy", "labelled", "predictions")


def result_key(name: str, labels: np.ndarray, ks: Sequence[int] = KS, draws: int = DRAWS, seed: int = 0) -> str:
    """A file-safe key for the measurement of features `name` (a model's weights fingerprint, or
    "pixels-<dataset>") on these labels with these settings."""
    h = hashlib.blake2b(json.dumps([VERSION, sorted({int(k) for k in ks}), int(draws), int(seed)]).encode(),
                        digest_size=8)
    h.update(np.ascontiguousarray(labels, np.int64).tobytes())
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(name))[:80] + "-" + h.hexdigest()


class ResultStore:
    """Measured FewLabels kept as files in `folder`, so each is measured once per machine (written
    atomically; a file that cannot be read counts as missing, one that cannot be written is skipped)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> FewLabels | None:
        try:
            with np.load(self.path(key), allow_pickle=False) as f:
                r = {name: f[name] for name in _FIELDS}
        except (OSError, KeyError, ValueError):
            return None
        return FewLabels(tuple(int(k) for k in r["ks"]), r["classes"], r["accuracy"], r["labelled"],
                         r["predictions"])

    def put(self, key: str, result: FewLabels) -> bool:
        buf = io.BytesIO()
        np.savez_compressed(buf, ks=np.asarray(result.ks), classes=result.classes, accuracy=result.accuracy,
                            labelled=result.labelled, predictions=result.predictions)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path(key), buf.getvalue())
        except OSError:
            return False
        return True
