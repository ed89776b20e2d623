"""Denoising: corrupt test digits, reconstruct them, and measure the error against the clean digit.

    from vae.denoise import corrupt, reconstruct, digit_errors, error_sweep
    noisy = corrupt(x, "gaussian", 0.5, seed=0)     # x: (B, 28, 28) or (B, 1, 28, 28), uint8 or floats in [0, 1]
    x_hat = reconstruct(model, noisy)               # (B, 28, 28): decoded from the posterior mean
    err = digit_errors(x_hat, x)                    # (B,) mean squared pixel error against the CLEAN digit
    sweep = error_sweep({"plain": ae, "denoising": dae}, x, "salt_pepper", [0, 0.1, 0.2], seed=0)

Two kinds of noise. Gaussian: every pixel gets sigma * N(0, 1) added, then is clipped to [0, 1] (the
noise a model trained with `ModelConfig.input_noise = sigma` saw). Salt and pepper: a fraction p of the
pixels is set to 0 or to 1 (half each). Both draw their randomness once per seed and scale it with the
level, so a digit's noise at a higher level contains its noise at a lower one (the corrupted pixels at
p = 0.1 are among those at p = 0.2; Gaussian noise is the same pattern, stronger): a slider moves smoothly
and a sweep is a smooth curve.

The error is the mean squared pixel error (MSE) against the clean digit: the average over the 784 pixels of
(pixel − clean pixel)², 0 for a perfect copy, 1 for a negative of a black-and-white digit. It is the one
measure that also applies to the noisy input itself, the "no model" baseline (a Bernoulli cross-entropy of
a salt pixel of exactly 1 against a clean 0 would be infinite).

Works for any model with AutoEncoder's interface (AE, VAE, MLP, conv, and vae.onnx's OnnxAutoEncoder).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .models import AutoEncoder

NOISE_KINDS = ("gaussian", "salt_pepper")
NOISE_NAMES = {"gaussian": "Gaussian", "salt_pepper": "salt and pepper"}
MAX_LEVEL = {"gaussian": 1.0, "salt_pepper": 0.5}  # sigma up to 1; up to half of the pixels flipped
NOISY = "noisy input"  # the sweep's baseline: the corrupted digit itself, no model


def as_images(x) -> np.ndarray:
    """Digits as float32 (B, 28, 28) in [0, 1]: uint8 (0-255) or floats, numpy or torch,
    (B, 28, 28) or (B, 1, 28, 28). Anything else raises ValueError."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"Digits must be (B, 28, 28) or (B, 1, 28, 28), not {tuple(x.shape)}.")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
        raise ValueError("Digits given as floats must lie in [0, 1].")
    return x


def check_level(kind: str, level: float) -> float:
    if kind not in NOISE_KINDS:
        raise ValueError(f"Noise must be one of {', '.join(NOISE_KINDS)}, not {kind!r}.")
    hi = MAX_LEVEL[kind]
    if not (isinstance(level, (int, float, np.floating)) and 0.0 <= float(level) <= hi):
        what = "Gaussian noise's σ" if kind == "gaussian" else "The share of salt-and-pepper pixels"
        raise ValueError(f"{what} must be a number from 0 to {hi:g}, not {level!r}.")
    return float(level)


def _draws(shape: tuple, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seed's randomness for `shape` (B, 28, 28), three streams of one seed: a standard normal per pixel
    (Gaussian noise), a uniform per pixel (salt and pepper: whether it is hit) and a coin per pixel (salt or
    pepper)."""
    normal = np.random.default_rng([int(seed), 0]).standard_normal(shape).astype(np.float32)
    uniform = np.random.default_rng([int(seed), 1]).random(shape, dtype=np.float32)
    salt = np.random.default_rng([int(seed), 2]).random(shape) < 0.5
    return normal, uniform, salt


def gaussian_noise(x, sigma: float, seed: int = 0) -> np.ndarray:
    """x + sigma * N(0, 1) per pixel, clipped to [0, 1]. (B, 28, 28)"""
    return corrupt(x, "gaussian", sigma, seed)


def salt_and_pepper(x, p: float, seed: int = 0) -> np.ndarray:
    """A fraction p of the pixels (each with probability p) set to 0 or 1, half each. (B, 28, 28)"""
    return corrupt(x, "salt_pepper", p, seed)


def corrupt(x, kind: str, level: float, seed: int = 0) -> np.ndarray:
    """The digits with noise of `kind` at `level` (Gaussian sigma, or salt-and-pepper share p), seeded:
    the same seed gives the same noise, and level 0 gives the digits unchanged. (B, 28, 28) in [0, 1]"""
    x = as_images(x)
    level = check_level(kind, level)
    if level == 0.0:
        return x.copy()
    normal, uniform, salt = _draws(x.shape, seed)
    if kind == "gaussian":
        return np.clip(x + level * normal, 0.0, 1.0)
    # u < p picks the pixel (the same pixels and more as p grows); its own coin says salt or pepper, so a
    # picked pixel keeps its colour as p grows
    hit = uniform < level
    return np.where(hit, salt.astype(np.float32), x)


@torch.no_grad()
def reconstruct(model: AutoEncoder, x, batch: int = 1000) -> np.ndarray:
    """Each digit encoded to its posterior mean (an AE's code) and decoded: what the model draws, as on
    every page of the app. (B, 28, 28) in [0, 1]"""
    x = as_images(x)
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(x[i:i + batch]).unsqueeze(1).to(device)  # (b, 1, 28, 28)
        out.append(torch.sigmoid(model.decode(model.encode(xb).mode()))[:, 0].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 28, 28), np.float32)


def digit_errors(images, clean) -> np.ndarray:
    """Mean squared pixel error of each image against its clean digit. (B,)"""
    a, b = as_images(images), as_images(clean)
    if a.shape != b.shape:
        raise ValueError(f"{len(a)} images cannot be compared with {len(b)} clean digits.")
    return ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)


@dataclass
class Denoised:
    """Some digits, corrupted, and each model's reconstruction of the corrupted ones, with the errors."""

    clean: np.ndarray  # (B, 28, 28)
    noisy: np.ndarray  # (B, 28, 28)
    noisy_errors: np.ndarray  # (B,) the noisy input against the clean digit
    recons: dict[str, np.ndarray]  # model name -> (B, 28, 28)
    errors: dict[str, np.ndarray]  # model name -> (B,)

    def mean_errors(self) -> dict[str, float]:
        """The mean error over the digits, per model (and the noisy input under NOISY)."""
        return {NOISY: float(self.noisy_errors.mean()), **{k: float(v.mean()) for k, v in self.errors.items()}}


def denoise(models: dict[str, AutoEncoder], x, kind: str, level: float, seed: int = 0) -> Denoised:
    """Corrupt the digits (seeded) and let every model reconstruct them, each error against the clean digit."""
    if NOISY in models:
        raise ValueError(f"{NOISY!r} names the noisy input itself; give the models other names.")
    clean = as_images(x)
    noisy = corrupt(clean, kind, level, seed)
    recons = {name: reconstruct(m, noisy) for name, m in models.items()}
    return Denoised(clean, noisy, digit_errors(noisy, clean), recons,
                    {name: digit_errors(r, clean) for name, r in recons.items()})


@dataclass
class Sweep:
    """The mean error against the clean digits at each noise level, per model and for the noisy input."""

    kind: str
    levels: np.ndarray  # (L,)
    errors: dict[str, np.ndarray]  # NOISY and each model's name -> (L,)


def levels_for(kind: str, n: int = 21) -> np.ndarray:
    """n evenly spaced levels from 0 to the kind's maximum. (n,)"""
    check_level(kind, 0.0)
    return np.linspace(0.0, MAX_LEVEL[kind], n).round(6)


def error_sweep(models: dict[str, AutoEncoder], x, kind: str, levels=None, seed: int = 0) -> Sweep:
    """Error against the clean digits over noise levels (default `levels_for(kind)`): the noisy input itself
    (the baseline, no model) and each model's reconstruction of it, averaged over the digits."""
    levels = levels_for(kind) if levels is None else np.asarray([check_level(kind, v) for v in levels])
    errors: dict[str, list[float]] = {NOISY: [], **{name: [] for name in models}}
    for level in levels:
        result = denoise(models, x, kind, float(level), seed)
        for name, e in result.mean_errors().items():
            errors[name].append(e)
    return Sweep(kind, levels, {k: np.asarray(v) for k, v in errors.items()})


def is_denoising(config) -> bool:
    """Whether a model was trained on corrupted inputs (its config's `input_noise` above 0)."""
    return float(getattr(config, "input_noise", 0.0) or 0.0) > 0.0
