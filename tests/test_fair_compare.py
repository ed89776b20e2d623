"""A fair AE vs VAE comparison (vae.compare, ui.compare.verdict, ui.library.nats): regions in each model's own
standard deviations, emptiness, fitted-Gaussian samples, the reference share, and the text chosen from the numbers.

The invariants: emptiness is 0 where codes cover the region densely and 1 far from them; every fair measure
is blind to the scale of an AE's codes (codes x 10 with the decoder's first layer / 10 changes no share, while
the prior's share does change); a model measured twice, or against a copy of itself, gives the same figures.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from vae.classifier import DEFAULT_PATH, DigitClassifier, load_classifier
from vae.compare import (BUNDLED_PAIRS, EMPTY_RADIUS, _spread, code_region, empty_mask, fitted_samples,
                         hole_report, map_plane, reconstruction_scores, walk_scores)
from vae.config import ModelConfig
from vae.latent import encode, prior_samples
from vae.models import build_model
from vae.paths import BUNDLED_MODELS
from ui.compare import Figures, decode_alike, lead, verdict
from ui.library import nats


@pytest.fixture(scope="module")
def clf():
    torch.manual_seed(0)
    return DigitClassifier().eval()  # untrained: scores are arbitrary but deterministic


def digits(n: int = 200, seed: int = 0) -> torch.Tensor:
    """Blobby uint8 'digits' (N, 28, 28): enough structure that codes spread out."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 7, 7, generator=g)
    return (nn.functional.interpolate(x, size=28, mode="bilinear")[:, 0] * 255).to(torch.uint8)


def tiny(kind: str, dim: int, seed: int = 0):
    return build_model(ModelConfig(kind=kind, latent_dim=dim, hidden=(16,)), seed=seed).eval()


def scaled(model, factor: float):
    """The same AE with codes `factor` times larger: the encoder's last layer times factor, the decoder's
    first layer divided by it, so every image decoded from the scaled codes is the same."""
    out = copy.deepcopy(model)
    last = [m for m in out.encoder.modules() if isinstance(m, nn.Linear)][-1]
    first = [m for m in out.decoder.modules() if isinstance(m, nn.Linear)][0]
    with torch.no_grad():
        last.weight *= factor
        last.bias *= factor
        first.weight /= factor
    return out


# --- regions and emptiness --------------------------------------------------------------------------

def test_sd_region_is_k_standard_deviations_around_the_mean_at_any_scale():
    z = np.random.default_rng(0).normal(size=(500, 2)).astype(np.float32) * [3.0, 0.5] + [10.0, -4.0]
    plane, y = map_plane(z)
    r = code_region(plane, y, "sd", extent=2.0)
    sd, mean = y.std(0), y.mean(0)
    assert r.x_range == pytest.approx((mean[0] - 2 * sd[0], mean[0] + 2 * sd[0]), rel=1e-5)
    assert r.y_range == pytest.approx((mean[1] - 2 * sd[1], mean[1] + 2 * sd[1]), rel=1e-5)
    r10 = code_region(*map_plane(z * 10), "sd", extent=2.0)
    assert np.allclose(r10.x_range, np.multiply(r.x_range, 10), rtol=1e-5)
    assert np.allclose(r10.y_range, np.multiply(r.y_range, 10), rtol=1e-5)
    assert code_region(plane, y).x_range == r.x_range  # "sd" with ±2 is the default
    with pytest.raises(ValueError, match="standard deviations"):
        code_region(plane, y, "sd", extent=0)


def test_sd_region_of_a_1d_model_has_a_thin_second_axis():
    z = np.random.default_rng(0).normal(size=(300, 1)).astype(np.float32)
    r = code_region(*map_plane(z), "sd", extent=2.0)
    assert r.y_range[0] < 0 < r.y_range[1] and r.y_range[1] - r.y_range[0] < 0.01


def test_empty_is_zero_where_codes_cover_the_region_densely_and_one_far_from_them():
    g = np.linspace(-1, 1, 81)
    y = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)  # a dense lattice of codes, spacing 0.025
    plane = map_plane(y.astype(np.float32))[0]
    region = code_region(plane, y, "sd", extent=1.5)  # well inside the lattice (its sd is about 0.58)
    points, _ = region.grid(12)
    assert not empty_mask(points, y).any()
    assert empty_mask(points + 100.0, y).all()  # a region far from every code is all empty
    rep = hole_report(tiny("ae", 2), None, region, n_grid=6, n_prior=4, codes=y.astype(np.float32))
    assert rep.empty_share == 0.0 and rep.empty_digit_share is None


def test_empty_mask_counts_the_radius_in_the_codes_own_standard_deviations():
    y = np.random.default_rng(1).normal(size=(400, 2)) * [5.0, 0.2]
    points = np.random.default_rng(2).normal(size=(300, 2)) * [5.0, 0.2] * 1.5
    m = empty_mask(points, y)
    assert 0 < m.sum() < len(m)  # some points near codes, some not
    np.testing.assert_array_equal(m, empty_mask(points * 10, y * 10))  # the same at any scale
    np.testing.assert_array_equal(m, empty_mask(points * [1, 7], y * [1, 7]))  # and per axis
    assert empty_mask(points, y, radius=2 * EMPTY_RADIUS).sum() <= m.sum()  # a larger radius finds more codes
    assert empty_mask(points, y[:0]).all()
    with pytest.raises(ValueError, match="radius"):
        empty_mask(points, y, radius=0)


@pytest.mark.parametrize("seed", range(6))
def test_empty_mask_is_the_brute_force_answer(seed):
    """The binned search finds exactly the points that have a code within the radius, measured pair by pair:
    clustered and spread codes, points inside and far outside, a large radius, a single code, no points."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(int(rng.integers(1, 2000)), 2)) * rng.uniform(0.01, 50, 2) + rng.normal(size=2) * 5
    if seed % 2:
        y = np.concatenate([y, y[:50] + 1e-6])  # near-duplicate codes: more than one per cell
    points = rng.normal(size=(int(rng.integers(0, 500)), 2)) * y.std(0) * rng.uniform(0.5, 4) + y.mean(0)
    radius = float(rng.choice([EMPTY_RADIUS, 0.5, 3.0]))
    w = (points / _spread(y))[:, None, :] - (y / _spread(y))[None]
    want = ((w ** 2).sum(-1) <= radius ** 2).any(1) if len(points) else np.zeros(0, bool)
    np.testing.assert_array_equal(empty_mask(points, y, radius), ~want)
    assert empty_mask(points[:1], y[:1], radius).shape == (min(1, len(points)),)


# --- fitted samples ---------------------------------------------------------------------------------

def test_fitted_samples_are_the_prior_draws_moved_to_the_codes_mean_and_covariance():
    rng = np.random.default_rng(0)
    a = np.array([[2.0, 0.0, 0.0], [1.5, 0.5, 0.0], [0.0, 0.3, 0.1]])
    z = (rng.normal(size=(4000, 3)) @ a.T + [5.0, -1.0, 2.0]).astype(np.float32)
    s = fitted_samples(z, 20_000 // 2, seed=3)
    assert s.shape == (10_000, 3) and s.dtype == np.float32
    np.testing.assert_allclose(s.mean(0), z.mean(0), atol=0.1)
    np.testing.assert_allclose(np.cov(s, rowvar=False), np.cov(z, rowvar=False), atol=0.15)
    eps = prior_samples(10_000, 3, seed=3)
    chol = np.linalg.cholesky(np.cov(z.astype(np.float64), rowvar=False))
    np.testing.assert_allclose(s, z.mean(0) + eps @ chol.T, atol=1e-3)  # the same draws as the prior's
    np.testing.assert_array_equal(s, fitted_samples(z, 10_000, seed=3))
    np.testing.assert_allclose(fitted_samples(z * 10, 50, seed=1), fitted_samples(z, 50, seed=1) * 10, rtol=1e-4,
                               atol=1e-3)
    assert np.isfinite(fitted_samples(np.ones((10, 2), np.float32), 5)).all()  # degenerate codes: no crash
    with pytest.raises(ValueError, match="two finite codes"):
        fitted_samples(z[:1], 5)


# --- scale invariance and self-consistency ----------------------------------------------------------

@pytest.mark.parametrize("dim", [2, 5])  # the native plane, and PCA
def test_fair_shares_ignore_the_scale_of_an_ae_s_codes_and_the_prior_s_does_not(dim, clf):
    x = digits(300)
    ae = tiny("ae", dim, seed=dim)
    big = scaled(ae, 10.0)
    figures = []
    for model in (ae, big):
        z = encode(model, x)
        plane, y = map_plane(z)
        rep = hole_report(model, clf, code_region(plane, y, "sd", 2.0), n_grid=8, n_prior=200, seed=0, codes=z)
        figures.append((z, rep, reconstruction_scores(model, clf, x), walk_scores(model, clf, z, 20, 6)))
    (z, a, rec_a, walk_a), (zb, b, rec_b, walk_b) = figures
    np.testing.assert_allclose(zb, 10 * z, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b.grid_scores, a.grid_scores, atol=1e-4)
    np.testing.assert_array_equal(b.empty, a.empty)
    np.testing.assert_allclose(b.fitted_scores, a.fitted_scores, atol=1e-4)
    np.testing.assert_allclose(rec_b, rec_a, atol=1e-4)
    np.testing.assert_allclose(walk_b, walk_a, atol=1e-4)
    for t in (0.3, 0.5, 0.7, 0.9):  # the same shares at any threshold
        a.threshold = b.threshold = t
        assert (a.grid_share, a.empty_share, a.empty_digit_share, a.fitted_share) == \
               (b.grid_share, b.empty_share, b.empty_digit_share, b.fitted_share)
    assert not np.allclose(a.prior_images, b.prior_images, atol=1e-3)  # N(0, I) is not on the AE's footing


@pytest.mark.parametrize("mode", ["sd", "codes", "box"])
def test_a_model_and_a_copy_of_itself_measure_the_same(mode, clf):
    x = digits(200, seed=1)
    vae = tiny("vae", 2)
    figs = []
    for model in (vae, copy.deepcopy(vae)):
        z = encode(model, x)
        plane, y = map_plane(z)
        rep = hole_report(model, clf, code_region(plane, y, mode), n_grid=6, n_prior=50, seed=4, codes=z)
        figs.append(Figures.of(rep, 0.5, 100, float((reconstruction_scores(model, clf, x) >= 0.9).mean())))
    assert figs[0] == figs[1]
    text = verdict([True, True], figs, "the region")
    assert "about equally well" in text[0] and "the left model" in text[0] and "AE" not in " ".join(text)


def test_hole_report_without_codes_has_no_empty_or_fitted_figures(clf):
    model = tiny("vae", 2)
    rep = hole_report(model, clf, code_region(*map_plane(prior_samples(100, 2))), n_grid=3, n_prior=5)
    assert rep.empty is None and rep.empty_share is None and rep.fitted_share is None
    with pytest.raises(ValueError, match="dimensions"):
        hole_report(model, clf, code_region(*map_plane(prior_samples(100, 2))), n_grid=3, n_prior=5,
                    codes=prior_samples(100, 3))


def test_walk_scores_leave_out_the_endpoints(clf):
    model = tiny("vae", 2)
    z = prior_samples(50, 2, seed=2)
    s = walk_scores(model, clf, z, n_pairs=7, steps=5, method="spherical", seed=1)
    assert s.shape == (7 * 3,) and ((s >= 0.1 - 1e-6) & (s <= 1 + 1e-6)).all()
    np.testing.assert_array_equal(s, walk_scores(model, clf, z, n_pairs=7, steps=5, method="spherical", seed=1))
    with pytest.raises(ValueError, match="steps"):
        walk_scores(model, clf, z, steps=2)


# --- the text follows the numbers ------------------------------------------------------------------

def figs(grid=0.7, empty=0.1, prior=0.7, fitted=0.7, walks=0.7, reference=0.8, n=400, empty_digit=0.5) -> Figures:
    return Figures((grid, n), (empty, n), empty_digit, (prior, n), (fitted, n), (walks, n), reference)


def test_lead_is_zero_within_twice_the_sampling_error():
    assert lead((0.70, 400), (0.66, 400)) == 0  # 4 points: could be chance at 400 each
    assert lead((0.80, 400), (0.66, 400)) == 1 and lead((0.66, 400), (0.80, 400)) == -1
    assert lead((0.70, 100_000), (0.69, 100_000)) == 0  # never below 2 points, however many samples
    assert lead(None, (0.5, 10)) == 0 and lead((0.5, 0), (0.1, 10)) == 0


def test_verdict_says_the_textbook_picture_only_when_the_vae_leads():
    ae, vae = figs(grid=0.40, fitted=0.30, walks=0.5, prior=0.01, empty=0.3), figs(grid=0.7, fitted=0.7, walks=0.8)
    text = verdict([False, True], [ae, vae], "±2 sd")
    assert text[0].startswith("**Measured fairly, the VAE decodes more to digits on the region's grid, samples")
    assert "no more holes" not in " ".join(text)
    assert "rarely draws a digit" in " ".join(text)  # 1 % of prior samples
    assert any(t.startswith("The AE's codes leave more of the region empty") for t in text)
    assert verdict([True, False], [vae, ae], "±2 sd") == text  # the same whichever side the AE is on


def test_verdict_says_so_when_the_ae_has_no_holes_in_what_it_decodes():
    ae, vae = figs(grid=0.70, empty=0.24, prior=0.61), figs(grid=0.72, empty=0.08, prior=0.72)
    text = verdict([False, True], [ae, vae], "±2 sd")
    assert text[0] == ("**Measured fairly, the AE and the VAE decode about equally well: the AE's space has no more "
                       "holes than the VAE's in what it decodes.**")
    joined = " ".join(text)
    assert "24% against 8%" in joined and "Under the prior they differ" in joined and "rarely" not in joined
    assert "81%" not in joined and "80% (the AE)" in joined  # the reference line, from the figures


def test_decode_alike_only_when_no_fair_measure_shows_a_gap():
    """The page's note on the bundled 2-d pair ("does not show the textbook gap") is shown only when its numbers
    say so, also after the pair is rebuilt."""
    assert decode_alike([figs(grid=0.70, fitted=0.66), figs(grid=0.72, fitted=0.70)])
    assert not decode_alike([figs(fitted=0.42), figs(fitted=0.54)])  # the 16-d pair's fitted samples
    assert not decode_alike([figs(walks=0.9), figs(walks=0.7)])  # the AE ahead is a gap too
    none = Figures(None, None, None, None, None, None, None)
    assert not decode_alike([none, none])  # nothing scored: nothing to say


def test_verdict_when_the_ae_leads_or_the_measures_disagree():
    text = verdict([False, True], [figs(grid=0.9, fitted=0.9), figs(grid=0.5, fitted=0.5)], "r")
    assert text[0].startswith("**Measured fairly, the AE decodes more to digits on the region's grid and samples")
    assert "the two are about the same on walks" in text[0]
    mixed = verdict([False, True], [figs(grid=0.9, fitted=0.4), figs(grid=0.5, fitted=0.8)], "r")[0]
    assert "the VAE decodes more to digits on samples" in mixed and "the AE decodes more to digits on the region" \
        in mixed
    same_prior = " ".join(verdict([False, True], [figs(prior=0.7), figs(prior=0.71)], "r"))
    assert "happen to cover the prior's patch about as well" in same_prior


def test_verdict_without_a_classifier_speaks_of_empty_space_only():
    none = Figures(None, (0.2, 196), None, None, None, None, None)
    text = verdict([False, True], [none, Figures(None, (0.05, 196), None, None, None, None, None)], "r")
    assert len(text) == 1 and text[0].startswith("The AE's codes leave more of the region empty")


# --- nats on the same footing ----------------------------------------------------------------------

def entry(kind: str, **metrics):
    return SimpleNamespace(config=ModelConfig(kind=kind), metrics=metrics)


def test_nats_gives_every_model_its_reconstruction_and_only_a_vae_its_elbo():
    assert nats(entry("ae", test_nats=130.6, recon_nats=130.6, kl_nats=0.0)) == {"recon": 130.6, "kl": None,
                                                                                "elbo": None}
    assert nats(entry("vae", test_nats=139.1, recon_nats=132.4, kl_nats=6.8)) == {"recon": 132.4, "kl": 6.8,
                                                                                 "elbo": 139.1}
    older = nats(entry("vae", test_nats=100.0, kl_nats=20.0))  # saved before recon_nats was recorded
    assert older["recon"] == pytest.approx(80.0) and older["elbo"] == 100.0
    assert nats(entry("ae", test_nats=70.0))["recon"] == 70.0  # an AE's test nats are its reconstruction
    assert nats(entry("vae", test_nats=70.0)) == {"recon": None, "kl": None, "elbo": 70.0}
    assert nats(entry("ae")) == {"recon": None, "kl": None, "elbo": None}


# --- the bundled pairs, as assets/README.md records them --------------------------------------------

def bundled(pair: str):
    from vae.checkpoint import load_checkpoint

    paths = [BUNDLED_MODELS / f"{i}.safetensors" for i in BUNDLED_PAIRS[pair]]
    if not all(p.is_file() for p in paths) or not DEFAULT_PATH.is_file():
        pytest.skip("the bundled models or classifier are not built yet (bash assets/build.sh)")
    from vae.assets import test_set

    x = test_set("mnist").x_test
    out = []
    for p in paths:
        model = load_checkpoint(p)[0]
        z = encode(model, x)
        plane, y = map_plane(z)
        out.append(hole_report(model, load_classifier(), code_region(plane, y, "sd", 2.0), n_grid=14, n_prior=400,
                               seed=0, codes=z))
    return out


def test_bundled_16d_pair_shows_the_gap_in_samples():
    ae, vae = bundled("16-d")
    assert vae.prior_share - ae.prior_share > 0.3  # recorded: 50% vs 1%
    assert lead((vae.fitted_share, 400), (ae.fitted_share, 400)) == 1  # recorded: 52% vs 42%


def test_bundled_2d_pair_decodes_alike_and_differs_in_empty_space():
    ae, vae = bundled("2-d")
    assert lead((ae.grid_share, 196), (vae.grid_share, 196)) == 0  # recorded: 69% vs 72%
    assert lead((ae.empty_share, 196), (vae.empty_share, 196)) == 1  # recorded: 24% vs 8%


@pytest.mark.usefixtures("fresh_app", "stub_maps")
@pytest.mark.parametrize("model, shown", [("ae-16d", {"Recon. nats": "recon_nats"}),
                                          ("vae-16d", {"Recon. nats": "recon_nats", "−ELBO nats": "test_nats"})])
def test_sidebar_shows_reconstruction_nats_for_every_model_and_the_elbo_for_a_vae_only(model, shown):
    """The figures the checkpoint recorded (vae.evaluate's), under these names only; read from the checkpoint,
    so a rebuilt model (assets/build.sh) keeps the test true."""
    from streamlit.testing.v1 import AppTest

    from vae.checkpoint import read_header
    from vae.paths import ROOT

    path = BUNDLED_MODELS / f"{model}.safetensors"
    if not path.is_file():
        pytest.skip("the bundled models are not built yet (bash assets/build.sh)")
    metrics = read_header(path)["metrics"]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["active_model"] = model
    at.run()
    assert not at.exception, at.exception
    nats_shown = {m.label: m.value for m in at.sidebar.metric if "nats" in m.label}
    # never "Test nats", which made an AE look better than a VAE
    assert nats_shown == {label: f"{metrics[key]:.1f}" for label, key in shown.items()}


def test_library_table_has_reconstruction_nats_and_the_elbo_only_for_a_vae():
    from ui.library import LIBRARY_COLUMNS, library_rows

    rows = library_rows([SimpleNamespace(id=k, name=k, config=ModelConfig(kind=k), meta={}, metrics=m, bundled=True,
                                         owner=None)
                         for k, m in (("ae", {"test_nats": 66.0, "recon_nats": 66.0, "kl_nats": 0.0}),
                                      ("vae", {"test_nats": 98.0, "recon_nats": 76.8, "kl_nats": 21.3}))],
                        None, None)  # bundled models: whose they are needs no identity
    assert [(r["Recon. nats"], r["-ELBO nats"], r["KL nats"]) for r in rows] == [(66.0, None, None),
                                                                                 (76.8, 98.0, 21.3)]
    assert "Test nats" not in rows[0] and set(rows[0]) <= set(LIBRARY_COLUMNS)


def test_scored_grid_marks_empty_points_with_a_blue_edge_and_weak_ones_red():
    from ui.explore import BAD, EMPTY_EDGE, scored_grid

    img = np.asarray(scored_grid(np.zeros((4, 28, 28)), np.array([0.95, 0.1, 0.95, 0.1]), cols=2, threshold=0.9,
                                 scale=1, empty=np.array([True, False, False, True])))
    red = tuple(int(BAD[i:i + 2], 16) for i in (1, 3, 5))
    assert img.shape == (64, 64, 3)
    outer = [tuple(img[r, c]) for r, c in ((0, 0), (0, 32), (32, 0), (32, 32))]  # each tile's corner
    inner = [tuple(img[r + 1, c + 1]) for r, c in ((0, 0), (0, 32), (32, 0), (32, 32))]
    assert outer == [EMPTY_EDGE, red, (90, 90, 90), EMPTY_EDGE]  # empty points: blue outside, whatever the score
    assert inner == [(90, 90, 90), red, (90, 90, 90), red]  # a weak digit: red inside
