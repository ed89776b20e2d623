"""A Latent Lab model as two ONNX graphs in the import contract, so it runs anywhere onnxruntime does.

    encoder, decoder = export_model(model)           # bytes of encoder.onnx and decoder.onnx
    paths = export_checkpoint("m.safetensors", "out/")   # writes out/encoder.onnx, out/decoder.onnx

encoder.onnx: x (B, 1, 28, 28) float32 in [0, 1] -> mu (B, D) and, for a VAE, logvar (B, D), clamped as
the model clamps it; decoder.onnx: z (B, D) -> logits (B, 1, 28, 28). The batch is free. Exported with
torch.onnx's default (dynamo) exporter, which needs onnxscript, into self-contained files (no external
data), then read back by vae.onnx.validate like any import.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import torch
from torch import nn

from ..fileio import atomic_write
from ..models import LOGVAR_MAX, LOGVAR_MIN
from .store import DECODER, ENCODER, OnnxError

OPSET = 18


class _Encoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):  # (B, 1, 28, 28) -> mu (B, D)[, logvar (B, D)]
        h = self.model.encoder(x)
        if self.model.kind == "ae":
            return h
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


class _Decoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z):  # (B, D) -> logits (B, 1, 28, 28)
        return self.model.decode(z)


def _export(module: nn.Module, example: torch.Tensor, input_name: str, output_names: list[str]) -> bytes:
    try:
        import onnxscript  # noqa: F401  (what torch.onnx's exporter needs; a sentence if it is missing)
    except ImportError:
        raise OnnxError("Exporting to ONNX needs onnxscript: pip install onnxscript.") from None
    batch = torch.export.Dim("batch", min=1, max=65536)
    with contextlib.redirect_stdout(sys.stderr):  # the exporter prints its progress; stdout is for JSON
        program = torch.onnx.export(module, (example,), None, input_names=[input_name], output_names=output_names,
                                    dynamic_shapes=({0: batch},), opset_version=OPSET, external_data=False,
                                    dynamo=True, verbose=False)
    return program.model_proto.SerializeToString()


def export_model(model) -> tuple[bytes, bytes]:
    """A native model's encoder and decoder as ONNX bytes (the import contract, logits out)."""
    if not hasattr(model, "config") or getattr(model, "runs_in_browser", True) is False:
        raise OnnxError("This model is an imported ONNX pair already; download its files instead.")
    model = model.eval()
    with torch.no_grad():
        x = torch.rand(2, 1, 28, 28)
        z = torch.zeros(2, model.latent_dim)
        outs = ["mu", "logvar"] if model.kind == "vae" else ["mu"]
        return (_export(_Encoder(model).eval(), x, "x", outs),
                _export(_Decoder(model).eval(), z, "z", ["logits"]))


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Export a .safetensors checkpoint into FOLDER/encoder.onnx and FOLDER/decoder.onnx (created if need be).
    Raises CheckpointError or OnnxError with a sentence."""
    from ..checkpoint import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    encoder, decoder = export_model(model)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / ENCODER, encoder)
        atomic_write(out / DECODER, decoder)
    except OSError as e:
        raise OnnxError(f"Could not write into {out}: {e.strerror or 'input/output error'}.") from None
    return {"encoder": str(out / ENCODER), "decoder": str(out / DECODER), "kind": model.kind,
            "latent_dim": model.latent_dim, "dataset": meta.get("dataset", "mnist"),
            "bytes": len(encoder) + len(decoder)}
