"""Autoencoder and variational autoencoder behind one interface.

    from vae.config import ModelConfig
    from vae.models import build_model
    model = build_model(ModelConfig(kind="vae", arch="mlp", latent_dim=16))
    posterior = model.encode(x)          # x: (B, 1, 28, 28) floats in [0, 1]
    z = posterior.sample(generator)      # (B, D); an AE's posterior is deterministic
    logits = model.decode(z)             # (B, 1, 28, 28) Bernoulli logits
    out = model(x); loss = model.loss(x, out)

The API follows diffusers' AutoencoderKL: `encode` returns a posterior object, `decode`
returns logits, `forward` returns a named output, and bad configs raise a concise error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

IMAGE_SHAPE = (1, 28, 28)
N_PIXELS = 28 * 28
# Keeps exp(logvar) finite in float32 and stops a collapsing variance from blowing up the KL.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


class Posterior:
    """Diagonal Gaussian q(z|x). An AE's posterior is a point mass at `mu` (zero KL)."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor, deterministic: bool = False):
        self.mu = mu  # (B, D)
        self.logvar = logvar  # (B, D)
        self.deterministic = deterministic

    @property
    def std(self) -> torch.Tensor:
        if self.deterministic:
            return torch.zeros_like(self.mu)
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.deterministic:
            return self.mu
        eps = torch.randn(self.mu.shape, generator=generator, device=self.mu.device, dtype=self.mu.dtype)
        return self.mu + self.std * eps

    def mode(self) -> torch.Tensor:
        return self.mu

    def kl_per_dim(self) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) for each latent dimension, in nats. (B, D)"""
        if self.deterministic:
            return torch.zeros_like(self.mu)
        return 0.5 * (self.mu.pow(2) + self.logvar.exp() - 1.0 - self.logvar)

    def kl(self) -> torch.Tensor:
        """KL summed over latent dimensions, in nats. (B,)"""
        return self.kl_per_dim().sum(dim=1)


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (B, 1, 28, 28) Bernoulli logits of x_hat
    posterior: Posterior
    z: torch.Tensor  # (B, D) the code that was decoded

    @property
    def x_hat(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)


@dataclass
class LossOutput:
    """Per-image means, in nats."""

    loss: torch.Tensor  # recon + beta * kl, the training objective
    recon: torch.Tensor  # -log p(x|z), Bernoulli, summed over 784 pixels
    kl: torch.Tensor  # KL summed over dims
    kl_per_dim: torch.Tensor  # (D,)


def _mlp(sizes: list[int], last_activation: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class AutoEncoder(nn.Module):
    """One class for both kinds: a VAE's encoder also outputs logvar."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d, hidden = config.latent_dim, list(config.hidden)
        n_out = 2 * d if config.kind == "vae" else d
        if config.arch == "mlp":
            self.encoder = nn.Sequential(nn.Flatten(), _mlp([N_PIXELS, *hidden, n_out]))
            self.decoder = nn.Sequential(_mlp([d, *reversed(hidden), N_PIXELS]), nn.Unflatten(1, IMAGE_SHAPE))
        else:
            h = hidden[0]
            self.encoder = nn.Sequential(
                nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(),  # (B, 32, 14, 14)
                nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),  # (B, 64, 7, 7)
                nn.Flatten(), nn.Linear(64 * 7 * 7, h), nn.ReLU(), nn.Linear(h, n_out),
            )
            self.decoder = nn.Sequential(
                nn.Linear(d, h), nn.ReLU(), nn.Linear(h, 64 * 7 * 7), nn.ReLU(),
                nn.Unflatten(1, (64, 7, 7)),
                nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),  # (B, 32, 14, 14)
                nn.ConvTranspose2d(32, 1, 4, 2, 1),  # (B, 1, 28, 28)
            )

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> Posterior:
        h = self.encoder(x)  # (B, 2D) or (B, D)
        if self.config.kind == "ae":
            return Posterior(h, torch.full_like(h, LOGVAR_MIN), deterministic=True)
        mu, logvar = h.chunk(2, dim=1)
        return Posterior(mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits. (B, D) -> (B, 1, 28, 28)"""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> ModelOutput:
        x_in = x
        if self.training and self.config.input_noise > 0:
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x_in = (x + self.config.input_noise * noise).clamp(0.0, 1.0)
        posterior = self.encode(x_in)
        z = posterior.sample(generator)  # the ELBO's one-sample estimate, in training and evaluation alike
        return ModelOutput(self.decode(z), posterior, z)

    def loss(self, x: torch.Tensor, out: ModelOutput, beta: float | None = None) -> LossOutput:
        """Bernoulli NLL of the clean x plus beta * KL, averaged over the batch."""
        beta = self.config.beta if beta is None else beta
        recon = F.binary_cross_entropy_with_logits(out.logits, x, reduction="none").flatten(1).sum(1)  # (B,)
        kl_per_dim = out.posterior.kl_per_dim()  # (B, D)
        kl = kl_per_dim.sum(1)
        total = recon + (beta * kl if self.config.kind == "vae" else 0.0)
        return LossOutput(total.mean(), recon.mean(), kl.mean(), kl_per_dim.mean(0))


def build_model(config: ModelConfig, seed: int | None = None) -> AutoEncoder:
    """Build a fresh model; with a seed, its initial weights are reproducible."""
    if seed is None:
        return AutoEncoder(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoEncoder(config)


def decoder_layers(model: AutoEncoder) -> list[dict]:
    """The decoder as a plain list of layers (numpy weights), for re-implementing it elsewhere.

    The app's in-browser slider decodes with this spec in JavaScript; `run_decoder_layers`
    is the numpy reference that a test checks against torch.
    """
    spec: list[dict] = []
    for module in model.decoder.modules():
        if isinstance(module, nn.Linear):
            spec.append({"type": "linear", "weight": module.weight.detach().cpu().numpy(),
                         "bias": module.bias.detach().cpu().numpy(), "relu": False})
        elif isinstance(module, nn.ConvTranspose2d):
            spec.append({"type": "convT", "weight": module.weight.detach().cpu().numpy(),
                         "bias": module.bias.detach().cpu().numpy(), "relu": False,
                         "stride": module.stride[0], "padding": module.padding[0]})
        elif isinstance(module, nn.ReLU):
            spec[-1]["relu"] = True
    return spec


def run_decoder_layers(spec: list[dict], z):
    """Numpy reference of the decoder spec: (B, D) codes -> (B, 28, 28) probabilities."""
    import numpy as np

    h = np.asarray(z, dtype=np.float32)
    for layer in spec:
        if layer["type"] == "linear":
            h = h.reshape(h.shape[0], -1) @ layer["weight"].T + layer["bias"]
        else:
            w, s, p = layer["weight"], layer["stride"], layer["padding"]  # w: (C_in, C_out, k, k)
            if h.ndim == 2:
                side = int(round(math.sqrt(h.shape[1] / w.shape[0])))
                h = h.reshape(h.shape[0], w.shape[0], side, side)
            b, _, hin, win = h.shape
            k = w.shape[2]
            full = np.zeros((b, w.shape[1], (hin - 1) * s + k, (win - 1) * s + k), np.float32)
            for i in range(k):
                for j in range(k):
                    full[:, :, i:i + (hin - 1) * s + 1:s, j:j + (win - 1) * s + 1:s] += np.einsum(
                        "bchw,co->bohw", h, w[:, :, i, j])
            h = full[:, :, p:full.shape[2] - p, p:full.shape[3] - p] + layer["bias"][None, :, None, None]
        if layer["relu"]:
            h = np.maximum(h, 0)
    return 1.0 / (1.0 + np.exp(-h.reshape(h.shape[0], 28, 28)))
