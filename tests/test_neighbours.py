"""vae.maps.neighbours: the neighbour approximation between a map and latent space, and the honesty figure."""

import numpy as np
import pytest

from vae.maps.neighbours import approx_codes, kept_neighbours, kept_share, nearest, place


@pytest.fixture
def cloud():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(500, 6)).astype(np.float32)
    map_y = (codes[:, :2] + 0.05 * rng.normal(size=(500, 2))).astype(np.float32)
    return codes, map_y


def test_approx_codes_shape_and_exact_at_the_maps_own_points(cloud):
    codes, map_y = cloud
    z = approx_codes(map_y, codes, map_y[:40])
    assert z.shape == (40, 6) and z.dtype == np.float32
    np.testing.assert_allclose(z, codes[:40], atol=1e-6)


def test_approx_codes_between_two_dots_blends_them():
    map_y = np.array([[0.0, 0.0], [1.0, 0.0]])
    codes = np.array([[0.0, 0.0, 0.0], [2.0, 4.0, 6.0]])
    np.testing.assert_allclose(approx_codes(map_y, codes, [[0.5, 0.0]], k=2), [[1.0, 2.0, 3.0]], atol=1e-6)
    near_first = approx_codes(map_y, codes, [[0.1, 0.0]], k=2)[0]
    assert 0 < near_first[0] < 1.0  # closer to the first dot's code


def test_approx_codes_stays_inside_the_hull_of_its_neighbours(cloud):
    codes, map_y = cloud
    z = approx_codes(map_y, codes, np.random.default_rng(1).uniform(-2, 2, (100, 2)))
    assert (z.min(0) >= codes.min(0) - 1e-6).all() and (z.max(0) <= codes.max(0) + 1e-6).all()


def test_place_is_exact_at_known_codes_and_the_right_shape(cloud):
    codes, map_y = cloud
    y = place(codes, map_y, codes[:25])
    assert y.shape == (25, 2)
    np.testing.assert_allclose(y, map_y[:25], atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        place(codes, map_y, np.zeros((2, 5)))


def test_nearest_returns_nearest_first(cloud):
    codes, _ = cloud
    idx = nearest(codes, codes[7], k=8)
    assert idx.shape == (1, 8) and idx[0, 0] == 7
    d = np.linalg.norm(codes[idx[0]] - codes[7], axis=1)
    assert (np.diff(d) >= -1e-9).all()


def test_honesty_is_one_for_the_identity_map_and_low_for_a_shuffled_one(cloud):
    codes, _ = cloud
    plane = codes[:, :2]
    kept = kept_neighbours(plane, plane, k=10)
    assert kept.shape == (500,) and kept_share(kept, 10) == 1.0
    shuffled = np.random.default_rng(2).permutation(plane)
    assert kept_share(kept_neighbours(plane, shuffled, k=10), 10) < 0.1
    assert 0 <= kept_neighbours(codes, plane, 10).min() <= kept_neighbours(codes, plane, 10).max() <= 10


@pytest.mark.parametrize("bad", [np.full((500, 2), np.nan), np.zeros((499, 2)), np.zeros((500, 3))])
def test_refusals_are_sentences(cloud, bad):
    codes, _ = cloud
    with pytest.raises(ValueError, match=r"\."):
        kept_neighbours(codes, bad)
