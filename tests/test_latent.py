"""Latent tools: interpolation endpoints and norms, traversals, grids, prior samples, encode/decode, tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm

from vae.images import tile, to_uint8
from vae.latent import (
    class_means, decode, encode, grid_axis, grid_codes, interpolate, lerp, prior_samples, reconstruction_errors,
    slerp, traverse,
)
from vae.config import ModelConfig
from vae.models import build_model


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def codes(d: int, seed: int, n: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return build_model(ModelConfig(kind="vae", arch="mlp", latent_dim=3, hidden=(32,)), seed=0).eval()


@pytest.fixture(scope="module")
def digits():
    return torch.randint(0, 256, (7, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------ interpolation


@pytest.mark.parametrize("f", [lerp, slerp])
@pytest.mark.parametrize("d", [1, 2, 16, 128])
def test_endpoints_are_exact(f, d):
    z0, z1 = codes(d, 0)
    path = f(z0, z1, 9)
    assert path.shape == (9, d) and path.dtype == np.float32
    assert np.array_equal(path[0], z0) and np.array_equal(path[-1], z1)
    assert np.isfinite(path).all()


def test_lerp_is_a_straight_line():
    z0, z1 = codes(4, 1)
    path = lerp(z0, z1, 5)
    np.testing.assert_allclose(path[2], (z0 + z1) / 2, atol=1e-6)
    steps = np.diff(path, axis=0)
    np.testing.assert_allclose(steps, np.broadcast_to(steps[0], steps.shape), atol=1e-6)  # evenly spaced


@pytest.mark.parametrize("d", [2, 3, 16, 128])
def test_slerp_keeps_the_norm_of_equal_norm_endpoints(d):
    z0, z1 = codes(d, 2)
    z1 = z1 / np.linalg.norm(z1) * np.linalg.norm(z0)
    path = slerp(z0, z1, 17)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z0), rtol=1e-5)
    # whereas the straight line cuts inside the shell
    assert np.linalg.norm(lerp(z0, z1, 17)[8]) < np.linalg.norm(z0)


def test_slerp_norm_changes_linearly():
    z0, z1 = np.array([3.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    path = slerp(z0, z1, 5)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), [3.0, 2.5, 2.0, 1.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(path[2] / np.linalg.norm(path[2]), [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)


@pytest.mark.parametrize("d", [2, 16])
def test_slerp_between_opposite_codes(d):
    z0 = codes(d, 3)[0]
    path = slerp(z0, -z0, 7)
    assert np.isfinite(path).all()
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z0), rtol=1e-5)
    assert np.array_equal(path[0], z0) and np.array_equal(path[-1], -z0)


@pytest.mark.parametrize("z0,z1", [([0.0, 0.0], [1.0, 2.0]), ([1.0, 2.0], [2.0, 4.0]), ([0.0], [0.0]),
                                   ([1.5], [-2.0]), ([1.0], [3.0])], ids=["zero", "parallel", "zeros", "1d", "1d-same"])
def test_slerp_degenerate_cases_fall_back_to_a_line(z0, z1):
    path = slerp(z0, z1, 5)
    np.testing.assert_allclose(path, lerp(z0, z1, 5), atol=1e-6)


def test_interpolate_dispatch_and_errors():
    z0, z1 = codes(3, 4)
    assert np.array_equal(interpolate(z0, z1, 4, "linear"), lerp(z0, z1, 4))
    assert np.array_equal(interpolate(z0, z1, 4, "spherical"), slerp(z0, z1, 4))
    for bad in (lambda: interpolate(z0, z1, 4, "cubic"), lambda: lerp(z0, z1, 1), lambda: slerp(z0, z1, 0)):
        with pytest.raises(ValueError):
            bad()


# ------------------------------------------------------------------ traversal, grids, prior


def test_traverse():
    z = codes(5, 5)[0]
    values = np.linspace(-3, 3, 7)
    out = traverse(z, 2, values)
    assert out.shape == (7, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 2], values, rtol=1e-6)
    others = np.delete(out, 2, axis=1)
    assert (others == np.delete(z, 2)).all()
    for dim in (-1, 5):
        with pytest.raises(ValueError):
            traverse(z, dim, values)


def test_grid_axis_linear():
    a = grid_axis(5, -2.0, 2.0, probabilistic=False)
    np.testing.assert_allclose(a, [-2, -1, 0, 1, 2])
    with pytest.raises(ValueError):
        grid_axis(1, -2, 2, False)


@pytest.mark.parametrize("n", [5, 11, 21])
def test_grid_axis_probabilistic_uses_the_inverse_normal_cdf(n):
    a = grid_axis(n, -2.5, 2.5, probabilistic=True)
    assert a.shape == (n,) and a.dtype == np.float32
    np.testing.assert_allclose(a[[0, -1]], [-2.5, 2.5], rtol=1e-5)
    np.testing.assert_allclose(a, -a[::-1], atol=1e-5)  # symmetric
    assert abs(a[n // 2]) < 1e-5  # the median of the prior sits in the middle
    p = norm.cdf(a.astype(np.float64))
    np.testing.assert_allclose(np.diff(p), np.full(n - 1, (p[-1] - p[0]) / (n - 1)), rtol=1e-4)  # even in probability
    gaps = np.diff(a)
    assert gaps[0] > gaps[n // 2 - 1]  # so the values crowd near 0 and spread in the tails


def test_grid_codes_shape_and_order():
    n = 4
    g = grid_codes(n, (-1.0, 1.0), (-2.0, 2.0))
    assert g.shape == (n * n, 2) and g.dtype == np.float32
    rows = g.reshape(n, n, 2)
    assert (rows[:, :, 1] == rows[:, :1, 1]).all()  # one y per row
    assert (np.diff(rows[:, 0, 1]) < 0).all()  # top row first: y falls down the rows
    assert (np.diff(rows[0, :, 0]) > 0).all()  # x rises along a row
    np.testing.assert_allclose(g[0], [-1.0, 2.0])  # top left
    np.testing.assert_allclose(g[n - 1], [1.0, 2.0])  # top right
    np.testing.assert_allclose(g[-1], [1.0, -2.0])  # bottom right


def test_grid_codes_over_chosen_dims_of_a_base_code():
    base = np.arange(5, dtype=np.float32) + 10
    g = grid_codes(3, (-1, 1), (-1, 1), probabilistic=True, base=base, dims=(1, 3))
    assert g.shape == (9, 5)
    assert (g[:, [0, 2, 4]] == base[[0, 2, 4]]).all()
    np.testing.assert_allclose(g[4, [1, 3]], [0.0, 0.0], atol=1e-6)  # the centre of a symmetric grid


def test_prior_samples_are_seeded():
    a, b, c = prior_samples(1000, 8, seed=3), prior_samples(1000, 8, seed=3), prior_samples(1000, 8, seed=4)
    assert a.shape == (1000, 8) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.mean()) < 0.1 and abs(a.std() - 1) < 0.1


# ------------------------------------------------------------------ encode / decode


def test_encode_returns_posterior_means(model, digits):
    z = encode(model, digits)
    assert z.shape == (7, 3) and z.dtype == np.float32
    with torch.no_grad():
        mu = model.encode(digits.unsqueeze(1).float() / 255).mu.numpy()
    np.testing.assert_allclose(z, mu, atol=1e-6)
    np.testing.assert_allclose(encode(model, digits, batch=2), z, atol=1e-6)  # batching changes nothing
    z2, logvar = encode(model, digits, with_logvar=True)
    assert np.array_equal(z2, z) and logvar.shape == (7, 3)


def test_decode_returns_images(model):
    z = prior_samples(5, 3)
    x = decode(model, z)
    assert x.shape == (5, 28, 28) and x.dtype == np.float32
    assert ((x >= 0) & (x <= 1)).all()
    np.testing.assert_allclose(decode(model, z, batch=2), x, atol=1e-6)
    np.testing.assert_allclose(decode(model, z[0]), x[:1], atol=1e-6)  # one code (D,) is one image


def test_empty_inputs(model):
    assert encode(model, torch.zeros((0, 28, 28), dtype=torch.uint8)).shape == (0, 3)
    assert decode(model, np.zeros((0, 3), np.float32)).shape == (0, 28, 28)


def test_reconstruction_errors(model, digits):
    err = reconstruction_errors(model, digits)
    assert err.shape == (7,) and (err > 0).all()


def test_class_means():
    z = np.array([[0, 0], [2, 2], [10, 10]], np.float32)
    means = class_means(z, np.array([1, 1, 7]))
    assert set(means) == {1, 7}
    np.testing.assert_allclose(means[1], [1, 1])


# ------------------------------------------------------------------ images


def test_tile():
    images = np.stack([np.full((3, 4), i / 10, np.float32) for i in range(5)])  # (5, 3, 4)
    m = tile(images, cols=2, pad=1, value=1.0)
    assert m.shape == (3 * (3 + 1) + 1, 2 * (4 + 1) + 1)
    for i in range(5):
        r, c = divmod(i, 2)
        assert (m[1 + r * 4:1 + r * 4 + 3, 1 + c * 5:1 + c * 5 + 4] == images[i]).all()
    assert (m[0] == 1.0).all() and (m[:, 0] == 1.0).all()  # padding
    assert (m[9:12, 6:10] == 1.0).all()  # the empty sixth cell
    assert tile(images, cols=8, pad=0).shape == (3, 32)


def test_to_uint8():
    out = to_uint8(np.array([-0.5, 0.0, 0.5, 1.0, 2.0]))
    assert out.dtype == np.uint8 and out.tolist() == [0, 0, 128, 255, 255]
