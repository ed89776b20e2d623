"""Tools for walking a latent space: encode, decode, interpolate, traverse, grids, prior samples.

Codes are numpy float32 arrays (N, D); images are float32 arrays (N, 28, 28) in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from .data import to_float
from .images import image_grid
from .models import AutoEncoder


@torch.no_grad()
def encode(model: AutoEncoder, x: torch.Tensor, batch: int = 2000, with_logvar: bool = False):
    """Posterior means of uint8 digits (N, 28, 28) -> (N, D); optionally also logvar."""
    model.eval()
    device = next(model.parameters()).device
    mus, logvars = [], []
    for i in range(0, len(x), batch):
        post = model.encode(to_float(x[i:i + batch].to(device)))
        mus.append(post.mu.cpu())
        logvars.append(post.logvar.cpu())
    mu = torch.cat(mus).numpy() if mus else np.zeros((0, model.latent_dim), np.float32)
    if with_logvar:
        return mu, (torch.cat(logvars).numpy() if logvars else mu.copy())
    return mu


@torch.no_grad()
def decode(model: AutoEncoder, z, batch: int = 2000) -> np.ndarray:
    """Codes (N, D) -> images (N, 28, 28) in [0, 1]."""
    model.eval()
    device = next(model.parameters()).device
    z = torch.as_tensor(np.asarray(z, np.float32)).reshape(-1, model.latent_dim)
    out = [torch.sigmoid(model.decode(z[i:i + batch].to(device)))[:, 0].cpu() for i in range(0, len(z), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, 28, 28), np.float32)


def lerp(z0, z1, steps: int) -> np.ndarray:
    """Straight line from z0 to z1, endpoints included. (steps, D)"""
    if steps < 2:
        raise ValueError("An interpolation needs at least 2 steps.")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return ((1 - t) * np.asarray(z0, np.float32) + t * np.asarray(z1, np.float32)).astype(np.float32)


def slerp(z0, z1, steps: int) -> np.ndarray:
    """Spherical interpolation: the direction follows the great circle, the norm changes linearly.

    Under a Gaussian prior most mass sits near a shell of radius sqrt(D); a straight line between
    two codes cuts inside it, a spherical path stays near it.
    """
    if steps < 2:
        raise ValueError("An interpolation needs at least 2 steps.")
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if z0.size < 2 or n0 < 1e-8 or n1 < 1e-8:  # a 1-d code has no great circle to follow
        return lerp(z0, z1, steps)
    u0, u1 = z0 / n0, z1 / n1
    omega = np.arccos(np.clip(u0 @ u1, -1.0, 1.0))
    if omega < 1e-6:
        return lerp(z0, z1, steps)
    if np.pi - omega < 1e-6:  # opposite directions: any great circle works; pick one through a fixed axis
        axis = np.zeros_like(u0)
        axis[np.argmin(np.abs(u0))] = 1.0
        u1 = axis - (axis @ u0) * u0
        u1 /= np.linalg.norm(u1)
        direction = np.cos(t * np.pi) * u0 + np.sin(t * np.pi) * u1
    else:
        direction = (np.sin((1 - t) * omega) * u0 + np.sin(t * omega) * u1) / np.sin(omega)
    out = direction * ((1 - t) * n0 + t * n1)
    out[0], out[-1] = z0, z1
    return out.astype(np.float32)


def interpolate(z0, z1, steps: int, method: str = "linear") -> np.ndarray:
    if method not in ("linear", "spherical"):
        raise ValueError(f"Interpolation must be linear or spherical, not {method!r}.")
    return (lerp if method == "linear" else slerp)(z0, z1, steps)


def traverse(z, dim: int, values) -> np.ndarray:
    """Copies of z with dimension `dim` set to each value. (len(values), D)"""
    z = np.asarray(z, np.float32)
    if not 0 <= dim < z.shape[-1]:
        raise ValueError(f"Dimension {dim} is out of range for a {z.shape[-1]}-d code.")
    out = np.repeat(z[None, :], len(values), axis=0)
    out[:, dim] = np.asarray(values, np.float32)
    return out


def normal_cdf(x):
    """The standard normal CDF (float64), without importing scipy (about 70 MB in every app server)."""
    return torch.special.ndtr(torch.as_tensor(x, dtype=torch.float64)).numpy()


def normal_ppf(p):
    """The standard normal quantile function, the inverse of `normal_cdf` (float64)."""
    return torch.special.ndtri(torch.as_tensor(p, dtype=torch.float64)).numpy()


def grid_axis(n: int, lo: float, hi: float, probabilistic: bool) -> np.ndarray:
    """n values from lo to hi; with `probabilistic`, lo/hi are standard-normal quantiles and the
    points are evenly spaced in probability (inverse normal CDF), as under a VAE's prior."""
    if n < 2:
        raise ValueError("A grid needs at least 2 points per side.")
    if probabilistic:
        p = np.linspace(normal_cdf(lo), normal_cdf(hi), n)
        return normal_ppf(p).astype(np.float32)
    return np.linspace(lo, hi, n, dtype=np.float32)


def grid_codes(n: int, x_range, y_range, probabilistic: bool = False, base=None, dims=(0, 1)) -> np.ndarray:
    """An n x n grid of codes over two dims (the rest from `base`, default 0). Row-major, top row =
    highest y, so it reads like the scatter plot. (n*n, D)"""
    xs = grid_axis(n, *x_range, probabilistic)
    ys = grid_axis(n, *y_range, probabilistic)[::-1]
    d = 2 if base is None else len(base)
    base = np.zeros(d, np.float32) if base is None else np.asarray(base, np.float32)
    out = np.repeat(base[None, :], n * n, axis=0)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    out[:, dims[0]] = gx.ravel()
    out[:, dims[1]] = gy.ravel()
    return out


def prior_samples(n: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    """Codes drawn from N(0, I). (n, D)"""
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


PRIOR_PREVIEW = {"n": 16, "seed": 0, "cols": 8, "scale": 3}  # the Welcome page's picture


def prior_preview(model: AutoEncoder):
    """Sixteen codes drawn from the prior N(0, I) (seed 0) and decoded: a PIL mosaic, 8 per row, 3x.

    The Welcome page shows it; bundled models ship theirs in assets/previews (vae.assets)."""
    p = PRIOR_PREVIEW
    return image_grid(decode(model, prior_samples(p["n"], model.config.latent_dim, seed=p["seed"])),
                      cols=p["cols"], scale=p["scale"])


def class_means(z: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(c): z[labels == c].mean(axis=0) for c in np.unique(labels)}


@torch.no_grad()
def reconstruction_errors(model: AutoEncoder, x: torch.Tensor, batch: int = 2000) -> np.ndarray:
    """Per-digit reconstruction error (Bernoulli NLL in nats, from the posterior mean): an anomaly score."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(x), batch):
        xb = to_float(x[i:i + batch].to(device))
        logits = model.decode(model.encode(xb).mode())
        out.append(torch.nn.functional.binary_cross_entropy_with_logits(
            logits, xb, reduction="none").flatten(1).sum(1).cpu())
    return torch.cat(out).numpy()


# The manifold grid: the decoded square of a 1-d or 2-d model's latent plane, beside its map.
PERCENTILES = (1.0, 99.0)  # the region of an AE's grid: the codes' 1st-99th percentile per axis


def manifold_region(z: np.ndarray, probabilistic: bool,
                    percentiles: tuple[float, float] = PERCENTILES) -> tuple[tuple[float, float], tuple[float, float]]:
    """The square of the latent plane that the manifold grid decodes. ((x_lo, x_hi), (y_lo, y_hi))

    With `probabilistic` (a VAE) it is the prior's central mass: the standard-normal quantiles of
    the same percentiles, so the grid is evenly spaced in probability. Otherwise (an AE, which has no
    prior) it is the codes' own percentile range per axis. A 1-d model gets y = (0, 0).
    """
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or z.shape[1] not in (1, 2) or len(z) == 0:
        raise ValueError("A manifold grid needs 1-d or 2-d codes (N, 1) or (N, 2).")
    lo, hi = percentiles
    if not 0 < lo < hi < 100:
        raise ValueError("Percentiles must satisfy 0 < low < high < 100.")
    if probabilistic:
        q = float(normal_ppf(lo / 100)), float(normal_ppf(hi / 100))
        ranges = [q] * z.shape[1]
    else:
        ranges = []
        for d in range(z.shape[1]):
            a, b = np.percentile(z[:, d], [lo, hi]).astype(float)
            if b - a < 1e-6:  # a collapsed axis still gets a visible window
                a, b = a - 0.5, b + 0.5
            ranges.append((a, b))
    if len(ranges) == 1:
        ranges.append((0.0, 0.0))
    return (ranges[0][0], ranges[0][1]), (ranges[1][0], ranges[1][1])


def manifold_codes(n: int, region, latent_dim: int, probabilistic: bool) -> np.ndarray:
    """Codes of an n x n grid over `region` (row-major, top row = highest y, like the scatter),
    or for a 1-d model a strip of n codes from left to right. (n*n, 2) or (n, 1)"""
    (x_lo, x_hi), (y_lo, y_hi) = region
    if latent_dim == 1:
        return grid_axis(n, x_lo, x_hi, probabilistic)[:, None]
    if latent_dim != 2:
        raise ValueError("The manifold grid is drawn for 1-d and 2-d models only.")
    return grid_codes(n, (x_lo, x_hi), (y_lo, y_hi), probabilistic=probabilistic)
