"""Helpers of the AE vs VAE page: which two models to show, which classifier scores them, and the
measurements of both (the math is vae.compare's, the caching ui.explore's)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ui import explore
from vae.compare import BUNDLED_PAIRS

if TYPE_CHECKING:  # annotations only
    import numpy as np

    from ui.state import Active
    from vae.ownership import Entry
    from vae.classifier import DigitClassifier
    from vae.compare import HoleReport, PathReport
    from vae.maps.projection import Projection


def bundled_pairs(ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """The bundled AE/VAE pairs whose two models are both in the library, e.g. {"2-d": ("ae-2d", "vae-2d")}."""
    present = set(ids)
    return {k: pair for k, pair in BUNDLED_PAIRS.items() if all(i in present for i in pair)}


def default_pair(entries: Sequence[Entry]) -> tuple[str, str]:
    """The two models "any two" starts from: the first without a prior (an AE) on the left, the first
    other one with a prior (a VAE) on the right; the first and last models where there is no such one."""
    ids = [e.id for e in entries]
    left = next((e.id for e in entries if not e.config.has_prior), ids[0])
    right = next((e.id for e in entries if e.config.has_prior and e.id != left), ids[-1])
    return left, right


def scoring_dataset(datasets: Iterable[str]) -> str:
    """The dataset that decides the "looks like a digit" scores of a pair: the classifier judges MNIST
    digits, so both models must draw them; otherwise the first other dataset (named in the sentence)."""
    return next((d for d in datasets if d != "mnist"), "mnist")


def scorer(models: Sequence[Active]) -> tuple[DigitClassifier | None, str]:
    """The classifier for both models and "", or None and the sentence saying why there are no scores."""
    return explore.scorer(scoring_dataset(m.dataset for m in models))


@dataclass(frozen=True)
class Measured:
    """Both models' measurements, in the order of the models."""

    reports: list[HoleReport]  # the decoded region and prior samples, scored
    paths: list[PathReport]  # the walk between the two test digits, scored
    planes: list[tuple[Projection, np.ndarray]]  # each model's map plane and its test codes in it, (N, 2)


def measure(models: Sequence[Active], clf: DigitClassifier | None, mode: str, extent: float, n_grid: int,
            n_prior: int, seed: int, start: int, end: int, steps: int, method: str) -> Measured:
    """Decode and score the region, the prior samples and the walk for each model, and its map plane.

    Raises ValueError (from the core) for a model that cannot be measured, e.g. one whose codes are not finite."""
    return Measured(reports=[explore.holes(m, clf, mode, extent, n_grid, n_prior, seed) for m in models],
                    paths=[explore.path(m, clf, start, end, steps, method) for m in models],
                    planes=[explore.plane(m) for m in models])

