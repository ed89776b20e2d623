"""An imported ONNX encoder/decoder pair behind the interface of vae.models.AutoEncoder.

    model, meta = load_pair("<library>/my-vae-1a2b3c4d.onnxmodel")   # what vae.checkpoint.load_checkpoint returns
    posterior = model.encode(x)      # x: (B, 1, 28, 28) floats in [0, 1] -> Posterior (mu, logvar)
    logits = model.decode(z)         # (B, D) -> (B, 1, 28, 28) Bernoulli logits (probabilities converted)
    out = model(x); model.loss(x, out)   # AutoEncoder's own forward and loss, so evaluate's figures match

A torch Module with one empty parameter (vae.latent finds the device from it) whose encode/decode run the
two graphs in onnxruntime, so every page, vae.latent and vae.evaluate use it as they use a native model.
Thread-safe (onnxruntime sessions are), never trained: it has no weights torch can see. Its decoder is
a foreign graph, so it cannot be re-implemented in the browser: `model.decoder` raises
ServerDecodeOnly (a ValueError) with a sentence, which vae.models.decoder_layers lets through.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from ..models import LOGVAR_MAX, LOGVAR_MIN, AutoEncoder, Posterior
from .runtime import Graph
from .store import OnnxError, PairSpec, read_graphs

PROB_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps] before they become logits


class ServerDecodeOnly(ValueError):
    """This model's decoder runs only on the server (it is a foreign ONNX graph, not Latent Lab's layers)."""


class OnnxAutoEncoder(nn.Module):
    """Duck-types AutoEncoder: config (an OnnxConfig), kind, latent_dim, encode, decode, forward, loss."""

    runs_in_browser = False

    def __init__(self, encoder: bytes, decoder: bytes, spec: PairSpec, threads: int | None = None):
        super().__init__()
        self.spec = spec
        self.config = spec.config
        self._device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)
        self._encoder = Graph(encoder, spec.encoder_batch, threads)
        self._decoder = Graph(decoder, spec.decoder_batch, threads)

    kind = AutoEncoder.kind  # both read self.config, as a native model's do
    latent_dim = AutoEncoder.latent_dim

    @property
    def decoder(self):
        raise ServerDecodeOnly("This model's decoder is an imported ONNX graph, which Latent Lab cannot run in "
                               "the browser; it is decoded on the server.")

    def encode(self, x: torch.Tensor) -> Posterior:
        x_np = x.detach().to("cpu", torch.float32).numpy()  # (B, 1, 28, 28)
        if self.spec.encoder_input == "flat":
            x_np = x_np.reshape(len(x_np), -1)  # (B, 784)
        outs = self._run(self._encoder, x_np, "encoder")
        d, b = self.latent_dim, len(x_np)
        if any(o.shape != (b, d) for o in outs):
            raise OnnxError(f"The encoder gave codes of shape {tuple(outs[0].shape)} for {b} images, not ({b}, {d}).")
        mu = torch.from_numpy(outs[self.spec.mean_output]).to(x.device)
        if self.spec.logvar_output is None:
            return Posterior(mu, torch.full_like(mu, LOGVAR_MIN), deterministic=True)
        logvar = torch.from_numpy(outs[self.spec.logvar_output]).to(x.device)
        return Posterior(mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits. (B, D) -> (B, 1, 28, 28)"""
        z_np = z.detach().to("cpu", torch.float32).numpy().reshape(len(z), self.latent_dim)
        out = self._run(self._decoder, z_np, "decoder")[0]
        if out.size != len(z_np) * 784:
            raise OnnxError(f"The decoder gave {out.size} values for {len(z_np)} codes, not 784 per code.")
        out = out.reshape(len(z_np), 1, 28, 28)
        if self.spec.output == "probabilities":
            p = np.clip(out.astype(np.float64), PROB_EPS, 1.0 - PROB_EPS)
            out = (np.log(p) - np.log1p(-p)).astype(np.float32)
        return torch.from_numpy(out).to(z.device)

    def _run(self, graph: Graph, x: np.ndarray, who: str) -> list[np.ndarray]:
        if len(x) == 0:  # onnxruntime need not accept an empty batch; the answer is known
            shape = (0, 784) if who == "decoder" else (0, self.latent_dim)
            return [np.zeros(shape, np.float32) for _ in graph.outputs]
        return graph(x)

    forward = AutoEncoder.forward  # the same ELBO sample and loss as a native model: comparable figures
    loss = AutoEncoder.loss


def load_pair(path: str | os.PathLike, threads: int | None = None) -> tuple[OnnxAutoEncoder, dict]:
    """A stored pair (vae.onnx.store) as a model and its metadata; the graphs' hashes are checked first."""
    encoder, decoder, meta = read_graphs(path)
    model = OnnxAutoEncoder(encoder, decoder, meta["onnx"], threads)
    model.eval()
    return model, meta
