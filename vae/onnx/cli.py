"""The command line of vae.onnx: bring a model in, take one out.

    python -m vae.onnx import ENCODER.onnx DECODER.onnx [--name NAME] [--kind ae|vae]
                             [--dataset mnist|fashion-mnist] [--output logits|probabilities] [--no-metrics]
    python -m vae.onnx export CHECKPOINT.safetensors --out FOLDER

`import` validates the pair (vae.onnx.validate), adds it to the library ($LATENT_LAB_HOME/models, as the
app's), measures it on the test digits (as vae.evaluate does; --no-metrics skips that) and prints one
JSON line: id, path, name, kind, latent_dim, dataset, output, encoder_input, decoder_output, fingerprint,
metrics, seconds. `export` writes FOLDER/encoder.onnx and FOLDER/decoder.onnx and prints one JSON line.
A refusal prints {"error": sentence} (and the sentence on stderr) and exits with status 2; nothing is
stored.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .store import DATASETS, MAX_BYTES, OUTPUTS, OnnxError


def read_file(path: str) -> bytes:
    """A file's bytes, refused with a sentence when missing, unreadable or over the size limit (unread)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            size = p.stat().st_size
            if size > MAX_BYTES:
                raise OnnxError(f"{p.name} is over {MAX_BYTES // 2**20} MB, too large for a 28x28 model.")
            return f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise OnnxError(f"No file at {path}.") from None
    except IsADirectoryError:
        raise OnnxError(f"{path} is a folder; give the .onnx files themselves.") from None
    except OSError as e:
        raise OnnxError(f"Could not read {path}: {e.strerror or 'input/output error'}.") from None


def import_pair(args) -> dict:
    from ..checkpoint import ModelLibrary, default_library_dir
    from ..paths import BUNDLED_MODELS
    from . import store

    t0 = time.perf_counter()
    encoder, decoder = read_file(args.encoder), read_file(args.decoder)
    lib = ModelLibrary(default_library_dir(), BUNDLED_MODELS)
    output = {"probs": "probabilities"}.get(args.output, args.output)
    entry = lib.import_onnx(encoder, decoder, name=args.name, kind=args.kind, output=output,
                            dataset=args.dataset, filenames=(args.encoder, args.decoder))
    spec = entry.meta["onnx"]
    report = {"id": entry.id, "path": str(entry.path), "name": entry.name, "kind": spec.kind,
              "latent_dim": spec.latent_dim, "dataset": args.dataset, "output": spec.output,
              "encoder_input": spec.encoder_input, "decoder_output": spec.decoder_output,
              "fingerprint": entry.fingerprint}
    if not args.no_metrics:
        metrics = measure(lib, entry, args.dataset, args.data_dir)
        if metrics is not None:
            store.update(entry.path, metrics=metrics)
            report["metrics"] = metrics
    return {**report, "seconds": round(time.perf_counter() - t0, 2)}


def measure(lib, entry, dataset: str, data_dir: str | None) -> dict | None:
    """vae.evaluate's metrics of a stored pair on the test split at hand, or None (with a note) without one."""
    from ..assets import test_set
    from ..data import DataError, load_dataset
    from ..evaluate import evaluate

    try:
        try:  # with the training split, the kNN figure is evaluate's own; else test_set's bundled digits
            data = load_dataset(dataset, data_dir, download=False)
        except DataError:
            data = test_set(dataset, data_dir)
    except DataError as e:
        print(f"note: not measured ({e})", file=sys.stderr)
        return None
    model, _ = lib.load(entry.id)
    return evaluate(model, data)


def export_pair(args) -> dict:
    from .export import export_checkpoint

    t0 = time.perf_counter()
    return {**export_checkpoint(args.checkpoint, args.out), "seconds": round(time.perf_counter() - t0, 2)}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vae.onnx", description="Import an ONNX encoder and decoder into "
                                "Latent Lab's library, or export a Latent Lab model as ONNX.")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("import", help="validate and add an ONNX encoder/decoder pair to the library")
    i.add_argument("encoder", help="ONNX file: (B, 1, 28, 28) or (B, 784) floats in [0, 1] -> (B, D) "
                                   "or mean and log-variance (B, D) each")
    i.add_argument("decoder", help="ONNX file: (B, D) -> (B, 1, 28, 28) or (B, 784) logits or probabilities")
    i.add_argument("--name", default=None, help="the name shown in the app (default: e.g. 'VAE · ONNX · 20-d')")
    i.add_argument("--kind", choices=("ae", "vae"), default=None,
                   help="default: vae when the encoder gives two outputs, else ae")
    i.add_argument("--dataset", choices=DATASETS, default="mnist", help="what it was trained on (default mnist)")
    i.add_argument("--output", choices=(*OUTPUTS, "probs"), default=None,
                   help="what the decoder gives (default: probabilities when all in [0, 1] on test digits)")
    i.add_argument("--data-dir", default=None, help="where the test split is (MNIST: the bundled digits)")
    i.add_argument("--no-metrics", action="store_true", help="do not measure it on the test digits")
    e = sub.add_parser("export", help="write a Latent Lab checkpoint as encoder.onnx and decoder.onnx")
    e.add_argument("checkpoint", help="a .safetensors checkpoint saved by Latent Lab")
    e.add_argument("--out", required=True, help="the folder to write encoder.onnx and decoder.onnx into")
    return p


def main(argv: list[str] | None = None) -> int:
    from ..checkpoint import CheckpointError

    args = parser().parse_args(argv)
    try:
        report = import_pair(args) if args.command == "import" else export_pair(args)
    except (CheckpointError, OnnxError) as e:
        print(f"error: {e}", file=sys.stderr)
        print(json.dumps({"error": str(e)}))
        return 2
    print(json.dumps(report))
    return 0
