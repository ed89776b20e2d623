"""Latent dimensions one at a time: scores, ranking, ranges, starting codes, traversals, nearest."""

from __future__ import annotations

import numpy as np
import pytest

from vae.dims import dim_ranges, dim_scores, include, nearest, rank_dims, start_code, traversal_codes


def toy_codes(n=500, seed=0):
    """Dim 1 spread widely, dim 2 barely used, dim 0 in between. (n, 3)"""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 3)) * [1.0, 3.0, 0.05]).astype(np.float32)


def test_ae_scores_are_variances_and_rank_most_used_first():
    z = toy_codes()
    scores = dim_scores("ae", z)
    np.testing.assert_allclose(scores, z.astype(np.float64).var(axis=0))
    assert rank_dims(scores) == [1, 0, 2]


def test_vae_scores_prefer_the_checkpoint_kl_else_compute_it():
    z = toy_codes()
    assert list(dim_scores("vae", z, kl_per_dim=[0.1, 5.0, 2.0])) == [0.1, 5.0, 2.0]
    lv = np.zeros_like(z)  # unit posterior variance: KL = mu^2 / 2 on average
    computed = dim_scores("vae", z, lv, kl_per_dim=[1.0])  # wrong length: ignored
    np.testing.assert_allclose(computed, 0.5 * (z.astype(np.float64) ** 2).mean(axis=0))
    assert rank_dims(computed) == [1, 0, 2]


def test_rank_is_a_stable_permutation():
    assert rank_dims([1.0, 2.0, 2.0, 0.0]) == [1, 2, 0, 3]
    assert sorted(rank_dims(np.random.default_rng(1).random(128))) == list(range(128))


def test_ranges_vae_cover_the_prior_ae_cover_the_data():
    z = toy_codes()
    vae, ae = dim_ranges("vae", z), dim_ranges("ae", z)
    assert vae.shape == ae.shape == (3, 2)
    assert vae.tolist() == [[-3, 3]] * 3
    assert np.all(ae[:, 0] < z.min(0)) and np.all(ae[:, 1] > z.max(0))
    assert ae[2, 1] - ae[2, 0] < 1  # a narrow dim keeps a narrow slider
    assert np.all(dim_ranges("ae", np.zeros((0, 3), np.float32)) == [[-3, 3]] * 3)
    wide = include(vae, [10.0, 0.0, -20.0])
    assert wide[0, 1] > 10 and wide[2, 0] < -20 and wide[1].tolist() == vae[1].tolist()


def test_start_codes():
    z, labels = toy_codes(), np.arange(500) % 10
    np.testing.assert_array_equal(start_code("digit", z, index=7), z[7])
    np.testing.assert_allclose(start_code("class", z, labels, digit=3), z[labels == 3].mean(0), rtol=1e-6)
    assert start_code("origin", z).tolist() == [0.0, 0.0, 0.0]
    p = start_code("prior", z, seed=4)
    assert p.shape == (3,) and np.array_equal(p, start_code("prior", z, seed=4))
    assert not np.array_equal(p, start_code("prior", z, seed=5))
    with pytest.raises(ValueError, match="from 0 to 499"):
        start_code("digit", z, index=500)
    with pytest.raises(ValueError, match="label 11"):
        start_code("class", z, labels, digit=11)
    with pytest.raises(ValueError, match="Start from"):
        start_code("somewhere", z)


def test_traversal_sweeps_one_dim_at_a_time():
    z0 = np.array([0.5, -1.0, 2.0], np.float32)
    ranges = np.array([[-3, 3], [-1, 1], [0, 8]], np.float32)
    out = traversal_codes(z0, [2, 0], ranges, steps=5)
    assert out.shape == (10, 3)
    assert out[:5, 2].tolist() == [0, 2, 4, 6, 8] and np.all(out[:5, :2] == z0[:2])
    assert out[5:, 0].tolist() == [-3, -1.5, 0, 1.5, 3] and np.all(out[5:, 1:] == z0[1:])
    assert traversal_codes(z0, [], ranges).shape == (0, 3)
    with pytest.raises(ValueError):
        traversal_codes(z0, [0], ranges, steps=1)


def test_nearest():
    z = toy_codes()
    assert nearest(z, z[42]) == 42
    assert nearest(z, z[42] + 1e-4) == 42
    with pytest.raises(ValueError):
        nearest(np.zeros((0, 3), np.float32), [0, 0, 0])
