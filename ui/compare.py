"""Helpers of the AE vs VAE page: which two models to show, which classifier scores them, and the
measurements of both (the math is vae.compare's, the caching ui.explore's)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ui import explore, state
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
    return state.scorer(scoring_dataset(m.dataset for m in models))


@dataclass(frozen=True)
class Measured:
    """Both models' measurements, in the order of the models."""

    reports: list[HoleReport]  # the decoded region (and its empty points), prior and fitted samples, scored
    paths: list[PathReport]  # the walk between the two test digits, scored
    planes: list[tuple[Projection, np.ndarray]]  # each model's map plane and its test codes in it, (N, 2)
    walks: list[float | None]  # share of in-between steps of walks between many random test pairs
    reference: list[float | None]  # share of each model's reconstructions of real test digits
    originals: float | None  # share of the real test digits themselves (of the left model's dataset)


def measure(models: Sequence[Active], clf: DigitClassifier | None, mode: str, extent: float, n_grid: int,
            n_prior: int, seed: int, start: int, end: int, steps: int, method: str) -> Measured:
    """Decode and score the region, the prior and fitted samples, the walks and the reconstructions of
    each model, and its map plane.

    Raises ValueError (from the core) for a model that cannot be measured, e.g. one whose codes are not finite."""
    scored = clf is not None
    return Measured(reports=[explore.holes(m, clf, mode, extent, n_grid, n_prior, seed) for m in models],
                    paths=[explore.path(m, clf, start, end, steps, method) for m in models],
                    planes=[explore.plane(m) for m in models],
                    walks=[explore.walks_share(m, clf, steps, method) if scored else None for m in models],
                    reference=[explore.reference_share(m, clf) if scored else None for m in models],
                    originals=explore.originals_share(models[0].dataset, clf) if scored else None)


# --- what the numbers say -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Figures:
    """One model's shares, each with the number of images it counts (for its sampling error)."""

    grid: tuple[float, int] | None  # share of grid points decoding to a confident digit
    empty: tuple[float, int] | None  # share of grid points with no test code nearby
    empty_digit: float | None  # share of those empty points decoding to a confident digit
    prior: tuple[float, int] | None
    fitted: tuple[float, int] | None
    walks: tuple[float, int] | None
    reference: float | None  # its reconstructions of real test digits

    @classmethod
    def of(cls, rep: HoleReport, walks: float | None, n_walk: int, reference: float | None) -> Figures:
        def pair(share, count):
            return None if share is None else (share, count)
        n = len(rep.grid_images)
        return cls(pair(rep.grid_share, n), pair(rep.empty_share, n), rep.empty_digit_share,
                   pair(rep.prior_share, len(rep.prior_images)),
                   pair(rep.fitted_share, 0 if rep.fitted_images is None else len(rep.fitted_images)),
                   pair(walks, n_walk), reference)


def lead(a: tuple[float, int] | None, b: tuple[float, int] | None, z: float = 2.0) -> int:
    """+1 where share a is above share b by more than z times the sampling error of their difference, -1 where
    below, 0 where the gap could be chance (or a figure is missing). Shares come as (share, count)."""
    if a is None or b is None or min(a[1], b[1]) < 1:
        return 0
    (p, n), (q, m) = a, b
    se = math.sqrt(p * (1 - p) / n + q * (1 - q) / m)
    gap = p - q
    return 0 if abs(gap) <= max(z * se, 0.02) else (1 if gap > 0 else -1)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _pct(f) -> str:
    return "–" if f is None else f"{(f[0] if isinstance(f, tuple) else f):.0%}"


def verdict(has_prior: Sequence[bool], figs: Sequence[Figures], region: str) -> list[str]:
    """What the measured figures of two models say, as Markdown paragraphs chosen from the numbers (never the
    textbook picture where they disagree). `region` names the region ("±2 of each model's own standard
    deviations"). For an AE and a VAE (in either order) the text speaks of "the AE" and "the VAE"; for two
    models of one kind, of "the left model" and "the right model". No user text goes in."""
    if len(set(has_prior)) == 2:
        i, j = (0, 1) if not has_prior[0] else (1, 0)
        ae, vae, A, V = figs[i], figs[j], "the AE", "the VAE"
    else:
        ae, vae, A, V = figs[0], figs[1], "the left model", "the right model"
    out = []
    fair = {k: lead(getattr(vae, k), getattr(ae, k)) for k in ("grid", "fitted", "walks")}
    if all(getattr(f, "grid") is None for f in figs):  # no classifier: only the empty space is measured
        fair = {}
    if fair:
        names = {"grid": "the region's grid", "fitted": "samples from a Gaussian fitted to each model's codes",
                 "walks": "walks between test digits"}
        ups = [names[k] for k, v in fair.items() if v > 0]
        downs = [names[k] for k, v in fair.items() if v < 0]
        evens = [names[k] for k, v in fair.items() if v == 0]
        if not ups and not downs:
            head = f"**Measured fairly, {A} and {V} decode about equally well" + (
                f": {A}'s space has no more holes than {V}'s in what it decodes.**" if A == "the AE" else ".**")
        else:
            parts = ([f"{V} decodes more to digits on {_and(ups)}"] if ups else []) + \
                    ([f"{A} decodes more to digits on {_and(downs)}"] if downs else []) + \
                    ([f"the two are about the same on {_and(evens)}"] if evens else [])
            head = f"**Measured fairly, {'; '.join(parts)}.**"
        out.append(head)
        words = {1: f"{V} ahead", -1: f"{A} ahead", 0: "about the same"}
        out.append(f"Over the region ({region}): {A} {_pct(ae.grid)}, {V} {_pct(vae.grid)} of grid points decode to "
                   f"a digit ({words[fair['grid']]}). From a Gaussian fitted to each model's own codes: {A} "
                   f"{_pct(ae.fitted)}, {V} {_pct(vae.fitted)} ({words[fair['fitted']]}). Walks between random "
                   f"pairs of test digits: {A} {_pct(ae.walks)}, {V} {_pct(vae.walks)} ({words[fair['walks']]}).")
    e = lead(ae.empty, vae.empty)
    if ae.empty is not None and vae.empty is not None:
        where = {1: f"{A}'s codes leave more of the region empty than {V}'s",
                 -1: f"{V}'s codes leave more of the region empty than {A}'s",
                 0: "Both leave about as much of the region empty"}[e]
        text = f"{where[0].upper()}{where[1:]}: {_pct(ae.empty)} against {_pct(vae.empty)} of grid points have no test code nearby."
        if ae.empty_digit is not None or vae.empty_digit is not None:
            text += (f" Those empty points still decode to a digit {_pct(ae.empty_digit)} ({A}) and "
                     f"{_pct(vae.empty_digit)} ({V}) of the time.")
        out.append(text)
    p = lead(vae.prior, ae.prior)
    if ae.prior is not None and A == "the AE":
        if p > 0:
            out.append(f"Under the prior they differ: samples from N(0, I) decode to a digit {_pct(vae.prior)} of the "
                       f"time in the VAE against {_pct(ae.prior)} in the AE. The VAE was trained to keep its codes "
                       "where N(0, I) puts its samples; the AE never saw that prior, so for it N(0, I) is an "
                       "arbitrary patch of its space" + (", and used that way as a generator it rarely draws a digit."
                                                          if ae.prior[0] < 0.25 else "."))
        else:
            out.append(f"Samples from N(0, I) decode to a digit {_pct(ae.prior)} of the time in the AE and "
                       f"{_pct(vae.prior)} in the VAE: here the AE's codes happen to cover the prior's patch "
                       f"{'about as well' if p == 0 else 'better'}, though nothing in its training asked for it.")
    if ae.reference is not None and vae.reference is not None:
        out.append(f"For scale: their reconstructions of real test digits score {_pct(ae.reference)} ({A}) and "
                   f"{_pct(vae.reference)} ({V}): a share near theirs is as good as these models get, even on digits "
                   "they have codes for.")
    return out
