"""vae.compare: hole measurements, paths, regions and small helpers; every model kind and latent size.
Then ui.compare's choices for the AE vs VAE page: which two models, which classifier."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vae.checkpoint import load_checkpoint

from vae.paths import BUNDLED_MODELS
from vae.classifier import DEFAULT_PATH, DigitClassifier, load_classifier
from vae.compare import (BUNDLED_PAIRS, Region, code_region, hole_report, map_plane, pair_mismatch, pair_rows,
                         path_report, representative, worst)
from vae.latent import prior_samples
from vae.config import ModelConfig
from vae.models import build_model
from ui.compare import bundled_pairs, default_pair, scoring_dataset

KINDS_DIMS = [("ae", 1), ("ae", 2), ("vae", 2), ("vae", 5)]


def tiny(kind: str, dim: int):
    return build_model(ModelConfig(kind=kind, latent_dim=dim, hidden=(16,)), seed=0).eval()


@pytest.fixture(scope="module")
def clf():
    torch.manual_seed(0)
    return DigitClassifier().eval()  # untrained: scores are arbitrary but deterministic


def codes(dim: int, n: int = 300, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32) * np.arange(1, dim + 1)


@pytest.mark.parametrize("kind,dim", KINDS_DIMS)
def test_hole_report_shares_in_unit_interval_and_shapes(kind, dim, clf):
    model = tiny(kind, dim)
    plane, y = map_plane(codes(dim))
    assert y.shape == (300, 2)
    rep = hole_report(model, clf, code_region(plane, y, "codes"), n_grid=5, n_prior=30, seed=0)
    assert rep.grid_images.shape == (25, 28, 28) and rep.prior_images.shape == (30, 28, 28)
    assert rep.grid_points.shape == (25, 2) and rep.n_grid == 5
    assert 0.0 <= rep.grid_share <= 1.0 and 0.0 <= rep.prior_share <= 1.0
    assert ((rep.grid_scores >= 0.1 - 1e-6) & (rep.grid_scores <= 1 + 1e-6)).all()  # top of 10 probabilities


@pytest.mark.parametrize("kind,dim", KINDS_DIMS)
def test_hole_report_deterministic_under_seed(kind, dim, clf):
    model = tiny(kind, dim)
    region = code_region(*map_plane(codes(dim)))
    a = hole_report(model, clf, region, n_grid=4, n_prior=20, seed=7)
    b = hole_report(model, clf, region, n_grid=4, n_prior=20, seed=7)
    c = hole_report(model, clf, region, n_grid=4, n_prior=20, seed=8)
    np.testing.assert_array_equal(a.prior_images, b.prior_images)
    np.testing.assert_array_equal(a.prior_scores, b.prior_scores)
    assert a.prior_share == b.prior_share and a.grid_share == b.grid_share
    assert not np.array_equal(a.prior_images, c.prior_images)


def test_hole_report_without_classifier_has_no_scores():
    model = tiny("vae", 2)
    rep = hole_report(model, None, code_region(*map_plane(codes(2))), n_grid=3, n_prior=5)
    assert rep.grid_scores is None and rep.grid_share is None and rep.prior_share is None


def test_hole_report_rejects_bad_sizes(clf):
    model = tiny("vae", 2)
    region = code_region(*map_plane(codes(2)))
    with pytest.raises(ValueError, match="grid"):
        hole_report(model, clf, region, n_grid=1)
    with pytest.raises(ValueError, match="prior"):
        hole_report(model, clf, region, n_prior=0)
    with pytest.raises(ValueError, match="2-d space"):
        hole_report(tiny("vae", 3), clf, region, n_grid=3, n_prior=3)


@pytest.mark.parametrize("dim", [1, 2, 6])
def test_region_grid_lies_in_the_plane_and_the_box(dim):
    z = codes(dim)
    plane, y = map_plane(z)
    region = code_region(plane, y, "codes")
    points, zg = region.grid(6)
    assert zg.shape == (36, dim)
    k = min(dim, 2)  # a 1-d model has no second axis: its grid rows repeat
    np.testing.assert_allclose(plane.transform(zg)[:, :k], points[:, :k], atol=1e-4)  # round-trip through the plane
    assert points[:, 0].min() == pytest.approx(region.x_range[0])
    assert points[:, 0].max() == pytest.approx(region.x_range[1])
    assert points[0, 1] == pytest.approx(region.y_range[1])  # top row first, as on the map
    inside = ((y[:, 0] >= region.x_range[0]) & (y[:, 0] <= region.x_range[1])).mean()
    assert inside >= 0.98


def test_box_region_is_the_same_for_every_2d_model_and_centred_on_the_origin():
    r1 = code_region(*map_plane(codes(2)), mode="box", extent=2.5)
    r2 = code_region(*map_plane(codes(2, seed=3) * 10 + 4), mode="box", extent=2.5)
    assert r1.x_range == r2.x_range == (-2.5, 2.5) and r1.y_range == (-2.5, 2.5)
    plane, y = map_plane(codes(6) + 3)  # PCA: the map's plane passes through the codes' mean, not the origin
    r3 = code_region(plane, y, mode="box", extent=1.0)
    points, z_grid = r3.grid(3)
    np.testing.assert_allclose(z_grid[4], np.zeros(6), atol=1e-4)  # the centre decodes the latent origin itself
    np.testing.assert_allclose(plane.transform(z_grid), points, atol=1e-4)  # and the slice is drawn where it is
    assert r3.x_range[1] - r3.x_range[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="Region"):
        code_region(*map_plane(codes(2)), mode="circle")
    with pytest.raises(ValueError, match="half-width"):
        code_region(*map_plane(codes(2)), mode="box", extent=0)
    with pytest.raises(ValueError, match="low below high"):
        Region((1.0, 1.0), (0.0, 1.0), map_plane(codes(2))[0])


def test_map_plane_is_native_for_2d_and_pca_above():
    z2 = codes(2)
    plane, y = map_plane(z2)
    assert plane.name == "native"
    np.testing.assert_array_equal(y, z2)
    plane, y = map_plane(codes(8))
    assert plane.name == "pca" and y.shape == (300, 2)
    assert y[:, 0].var() >= y[:, 1].var()  # the first axis carries the most variance


@pytest.mark.parametrize("method", ["linear", "spherical"])
@pytest.mark.parametrize("kind,dim", KINDS_DIMS)
def test_path_report_endpoints_and_length(kind, dim, method, clf):
    model = tiny(kind, dim)
    z0, z1 = prior_samples(2, dim, seed=1)
    rep = path_report(model, clf, z0, z1, steps=7, method=method)
    assert rep.z.shape == (7, dim) and rep.images.shape == (7, 28, 28) and rep.scores.shape == (7,)
    np.testing.assert_allclose(rep.z[0], z0, atol=1e-5)
    np.testing.assert_allclose(rep.z[-1], z1, atol=1e-5)
    assert 0.0 <= rep.share <= 1.0 and 0 <= rep.weakest < 7
    assert rep.scores[rep.weakest] == rep.scores.min()


def test_path_report_rejects_bad_input(clf):
    model = tiny("vae", 2)
    with pytest.raises(ValueError, match="steps"):
        path_report(model, clf, [0, 0], [1, 1], steps=1)
    with pytest.raises(ValueError, match="linear or spherical"):
        path_report(model, clf, [0, 0], [1, 1], steps=3, method="cubic")


def test_representative_is_the_class_member_nearest_its_mean():
    z = np.array([[0, 0], [10, 0], [2, 0], [5, 5], [4, 0]], np.float32)
    labels = np.array([1, 1, 1, 2, 1])
    assert representative(z, labels, 1) == 4  # class mean (4, 0)
    assert representative(z, labels, 2) == 3
    with pytest.raises(ValueError, match="labelled 7"):
        representative(z, labels, 7)


def test_worst_orders_largest_first_and_clamps():
    errs = np.array([3.0, 9.0, 1.0, 9.0, 5.0])
    assert worst(errs, 3).tolist() == [1, 3, 4]
    assert worst(errs, 99).tolist() == [1, 3, 4, 0, 2]
    assert worst(errs, 0).tolist() == []


def test_pair_rows_puts_each_reconstruction_under_its_original():
    a = np.arange(5)[:, None, None] * np.ones((5, 2, 2))
    b = -a
    out = pair_rows(a, b, cols=3)
    assert out.shape == (12, 2, 2)
    assert [o[0, 0] for o in out] == [0, 1, 2, 0, -1, -2, 3, 4, 0, -3, -4, 0]
    with pytest.raises(ValueError):
        pair_rows(a, b[:3], cols=3)


def test_pair_mismatch_names_what_differs():
    ae = ModelConfig(kind="ae", latent_dim=2)
    assert pair_mismatch(ae, ModelConfig(kind="vae", latent_dim=2)) is None
    msg = pair_mismatch(ae, ModelConfig(kind="vae", latent_dim=16, hidden=(128,)))
    assert "architecture" in msg and "latent size (2 vs 16)" in msg and msg.endswith(".")
    assert "training data (mnist vs fashion)" in pair_mismatch(ae, ae, "mnist", "fashion")


@pytest.mark.parametrize("pair", sorted(BUNDLED_PAIRS))
def test_bundled_vae_dreams_more_digits_than_its_ae(pair):
    """The point of the AE vs VAE page, on the bundled models: prior samples decode to digits far more often."""
    paths = [BUNDLED_MODELS / f"{i}.safetensors" for i in BUNDLED_PAIRS[pair]]
    if not all(p.is_file() for p in paths) or not DEFAULT_PATH.is_file():
        pytest.skip("the bundled models or classifier are not built yet (bash assets/build.sh)")
    clf = load_classifier()
    (ae, _), (vae, _) = (load_checkpoint(p) for p in paths)
    shares = []
    for model in (ae, vae):
        region = code_region(*map_plane(prior_samples(500, model.latent_dim, seed=1)), mode="box")
        shares.append(hole_report(model, clf, region, n_grid=8, n_prior=400, seed=0).prior_share)
    assert shares[1] > shares[0], f"{pair}: AE {shares[0]:.2f} vs VAE {shares[1]:.2f}"


# --- ui.compare: the page's choices -----------------------------------------------------------------

def entries(*kinds: str) -> list:
    """Library entries as the page sees them: an id and a config (kinds like "ae", "vae")."""
    return [SimpleNamespace(id=f"{kind}{i}", config=ModelConfig(kind=kind)) for i, kind in enumerate(kinds)]


@pytest.mark.parametrize("kinds, pair", [
    (("vae", "ae", "vae"), ("ae1", "vae0")),  # an AE on the left, a VAE on the right, whatever the order
    (("ae", "ae", "vae", "vae"), ("ae0", "vae2")),  # the first of each
    (("vae", "vae"), ("vae0", "vae1")),  # no AE: the first model, then the first other VAE
    (("ae", "ae", "ae"), ("ae0", "ae2")),  # no VAE: the first and the last model
])
def test_default_pair_puts_a_model_without_prior_left_and_one_with_right(kinds, pair):
    assert default_pair(entries(*kinds)) == pair


def test_default_pair_of_one_model_is_that_model_twice():
    assert default_pair(entries("vae")) == ("vae0", "vae0")  # the page then asks for two different ones


def test_bundled_pairs_only_when_both_models_are_there():
    assert bundled_pairs(BUNDLED_PAIRS["2-d"]) == {"2-d": BUNDLED_PAIRS["2-d"]}
    assert bundled_pairs([*BUNDLED_PAIRS["2-d"], *BUNDLED_PAIRS["16-d"]]) == BUNDLED_PAIRS
    assert bundled_pairs([BUNDLED_PAIRS["16-d"][0], "my-model"]) == {}


@pytest.mark.parametrize("a, b", [("mnist", "mnist"), ("fashion", "mnist"), ("mnist", "fashion"),
                                  ("fashion", "custom")])
def test_scores_only_when_both_models_draw_digits(a, b):
    expected = "mnist" if a == b == "mnist" else (a if a != "mnist" else b)  # the first dataset that is not MNIST
    assert scoring_dataset([a, b]) == expected
