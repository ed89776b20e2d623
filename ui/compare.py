"""Helpers of the AE vs VAE page: which two models to show, which classifier scores them, the
measurements of both, cached (the math is vae.compare's, the stored scores of the bundled models
vae.measures'), and what the numbers say."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from ui import explore, state
from ui.state import Active
from vae.classifier import CONFIDENT, digit_confidence
from vae.compare import (BUNDLED_PAIRS, HoleReport, code_region, decoded_fitted, decoded_grid, decoded_prior,
                         empty_mask, reconstruction_scores, walk_scores)
from vae.latent import decode, prior_samples
from vae.measures import (N_REFERENCE, N_WALKS, SCORES_DIR, ScoreStore, originals_scores, reference_digits,
                          score_name)

if TYPE_CHECKING:  # annotations only
    from vae.ownership import Entry
    from vae.classifier import DigitClassifier
    from vae.compare import PathReport
    from vae.maps.projection import Projection
    from vae.models import AutoEncoder


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
            n_prior: int, seed: int, start: int, end: int, steps: int, method: str, shown: int) -> Measured:
    """Decode and score the region, the prior and fitted samples, the walks and the reconstructions of
    each model, and its map plane. Of the prior samples only the first `shown` are decoded for the page
    (all `n_prior` are scored); the fitted samples are scored, not kept.

    Raises ValueError (from the core) for a model that cannot be measured, e.g. one whose codes are not finite."""
    cfp = state.classifier_fingerprint() if clf is not None else ""
    return Measured(reports=[_holes(m, clf, cfp, mode, float(extent), int(n_grid), int(n_prior), int(seed), int(shown))
                             for m in models],
                    paths=[explore.path(m, clf, start, end, steps, method) for m in models],
                    planes=[explore.plane(m) for m in models],
                    walks=[_share(_walks(m.fingerprint, m.dataset, int(steps), method, cfp, m.model, clf))
                           if clf is not None else None for m in models],
                    reference=[_share(_reference(m.fingerprint, m.dataset, cfp, m.model, clf))
                               if clf is not None else None for m in models],
                    originals=_share(_originals(models[0].dataset, cfp, clf)) if clf is not None else None)


# --- cached measures: scores apart from images, the bundled models' defaults read from vae.measures' store ----
# A set of scores is a few KB (its images are 3 KB each), so scores keep many entries and are what a
# student changing the seed, the region or the path finds again; images are decoded only where the page
# shows them. `_`-arguments are not hashed: each function is keyed by the model's fingerprint (and the
# classifier's, `cfp`) and its parameters.

def _share(scores: np.ndarray) -> float:
    return float((scores >= CONFIDENT).mean())


@st.cache_resource(show_spinner=False, max_entries=4)
def _store(cfp: str) -> ScoreStore:
    """The bundled models' stored scores made with this classifier, read once per server (shared, read-only)."""
    return ScoreStore(SCORES_DIR, cfp)


def _stored_or(owner: str, cfp: str, name: str, n: int, compute) -> np.ndarray:
    stored = _store(cfp).get(owner, name, n)
    return compute() if stored is None else stored


@st.cache_data(show_spinner=False, max_entries=12)
def _grid(fingerprint: str, dataset: str, mode: str, extent: float, n_grid: int, _a: Active):
    """The region's grid decoded (not scored) and its empty points: (region, points (n*n, 2), images, empty)."""
    p, y = explore.plane(_a)
    region = code_region(p, y, mode, extent)
    points, images, _ = decoded_grid(_a.model, None, region, n_grid)
    return region, points, images, empty_mask(points, y)


@st.cache_data(show_spinner=False, max_entries=256)
def _grid_scores(fingerprint: str, dataset: str, mode: str, extent: float, n_grid: int, cfp: str, _a: Active,
                 _clf) -> np.ndarray:
    return _stored_or(fingerprint, cfp, score_name("grid", mode, extent, n_grid), n_grid * n_grid,
                      lambda: digit_confidence(_clf, _grid(fingerprint, dataset, mode, extent, n_grid, _a)[2]))


@st.cache_data(show_spinner=False, max_entries=32)
def _prior_images(fingerprint: str, n: int, seed: int, shown: int, _model: AutoEncoder) -> np.ndarray:
    """The first `shown` of the n prior samples of `seed`, decoded. (shown, 28, 28)"""
    return decode(_model, prior_samples(n, _model.latent_dim, seed=seed)[:shown])


@st.cache_data(show_spinner=False, max_entries=256)
def _prior_scores(fingerprint: str, n: int, seed: int, cfp: str, _model: AutoEncoder, _clf) -> np.ndarray:
    return _stored_or(fingerprint, cfp, score_name("prior", n, seed), n,
                      lambda: decoded_prior(_model, _clf, n, seed)[1])


@st.cache_data(show_spinner=False, max_entries=256)
def _fitted_scores(fingerprint: str, dataset: str, n: int, seed: int, cfp: str, _model: AutoEncoder,
                   _clf) -> np.ndarray:
    return _stored_or(fingerprint, cfp, score_name("fitted", n, seed), n, lambda: decoded_fitted(
        _model, _clf, state.codes(fingerprint, dataset, _model)[0], n, seed)[1])


def _holes(a: Active, clf, cfp: str, mode: str, extent: float, n_grid: int, n_prior: int, seed: int,
           shown: int) -> HoleReport:
    region, points, grid_images, empty = _grid(a.fingerprint, a.dataset, mode, extent, n_grid, a)
    scored = clf is not None
    return HoleReport(
        points, grid_images, _prior_images(a.fingerprint, n_prior, seed, min(shown, n_prior), a.model),
        _grid_scores(a.fingerprint, a.dataset, mode, extent, n_grid, cfp, a, clf) if scored else None,
        _prior_scores(a.fingerprint, n_prior, seed, cfp, a.model, clf) if scored else None, region, empty=empty,
        fitted_scores=_fitted_scores(a.fingerprint, a.dataset, n_prior, seed, cfp, a.model, clf) if scored else None)


@st.cache_data(show_spinner=False, max_entries=64)
def _walks(fingerprint: str, dataset: str, steps: int, method: str, cfp: str, _model: AutoEncoder,
           _clf) -> np.ndarray:
    """Scores of the in-between steps of walks between N_WALKS random pairs of test digits (seed 0)."""
    return _stored_or(fingerprint, cfp, score_name("walks", method, steps, N_WALKS), N_WALKS * (steps - 2),
                      lambda: walk_scores(_model, _clf, state.codes(fingerprint, dataset, _model)[0], N_WALKS, steps,
                                          method, seed=0))


@st.cache_data(show_spinner=False, max_entries=64)
def _reference(fingerprint: str, dataset: str, cfp: str, _model: AutoEncoder, _clf) -> np.ndarray:
    """Scores of the model's reconstructions of the N_REFERENCE reference digits: what "as good as the model
    ever gets" is, beside every other share."""
    x = state.test_data(dataset).x_test
    idx = reference_digits(len(x))
    return _stored_or(fingerprint, cfp, score_name("reference", N_REFERENCE), len(idx),
                      lambda: reconstruction_scores(_model, _clf, x[idx]))


@st.cache_data(show_spinner=False, max_entries=4)
def _originals(dataset: str, cfp: str, _clf) -> np.ndarray:
    """Scores of the N_REFERENCE reference digits themselves."""
    x = state.test_data(dataset).x_test
    return _stored_or(dataset, cfp, score_name("originals", N_REFERENCE), len(reference_digits(len(x))),
                      lambda: originals_scores(_clf, x))


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
        def count(scores):
            return 0 if scores is None else len(scores)
        n = len(rep.grid_images)
        return cls(pair(rep.grid_share, n), pair(rep.empty_share, n), rep.empty_digit_share,
                   pair(rep.prior_share, count(rep.prior_scores)), pair(rep.fitted_share, count(rep.fitted_scores)),
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


FAIR = ("grid", "fitted", "walks")  # the measures taken on each model's own footing


def decode_alike(figs: Sequence[Figures]) -> bool:
    """Whether two models decode about equally well on every fair measure (no gap beyond sampling error)."""
    return all(getattr(figs[0], k) is not None and lead(getattr(figs[0], k), getattr(figs[1], k)) == 0 for k in FAIR)


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
    fair = {k: lead(getattr(vae, k), getattr(ae, k)) for k in FAIR}
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
