"""Evaluation of a trained model on the test split.

    python -m vae.evaluate my-vae.safetensors --data-dir ../shared/data
    python -m vae.evaluate ~/.local/share/latent-lab/models/my-vae-1a2b3c4d.onnxmodel   # an imported ONNX pair

prints one JSON line: test_nats (negative ELBO, beta = 1), recon_nats, kl_nats, kl_per_dim,
active_units (dims whose posterior mean varies across the test set: Cov > 0.01) and knn_acc
(a 3-nearest-neighbour classifier on the codes given only 10 labelled digits per class).
For an AE, test_nats is the reconstruction term alone (its KL is zero by construction). An imported
ONNX pair (vae.onnx: the `path` its import prints) is measured the same way, through onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from .data import DATASETS, DataError, Dataset, load_dataset, to_float
from .fewlabels import draw_labelled, knn_predict
from .latent import encode
from .models import AutoEncoder

ACTIVE_UNIT_THRESHOLD = 0.01
LABELS_PER_CLASS = 10
KNN_K = 3


@torch.no_grad()
def test_losses(model: AutoEncoder, x: torch.Tensor, batch: int = 2000, seed: int = 0) -> dict:
    """Negative ELBO (beta = 1) and its parts on uint8 digits, per image in nats (the trainer's
    per-epoch test figure, and `evaluate`'s). The model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    recon = kl = 0.0
    kl_dims = torch.zeros(model.latent_dim)
    for i in range(0, len(x), batch):
        xb = to_float(x[i:i + batch].to(device))  # (B, 1, 28, 28)
        out = model(xb, generator=gen)
        parts = model.loss(xb, out, beta=1.0)
        n = len(xb)
        recon += parts.recon.item() * n
        kl += parts.kl.item() * n
        kl_dims += parts.kl_per_dim.cpu() * n
    model.train(was_training)
    n = len(x)
    return {"nats": (recon + kl) / n, "recon": recon / n, "kl": kl / n, "kl_per_dim": (kl_dims / n).tolist()}


def active_units(mu: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Dimensions whose posterior mean varies across inputs (Burda et al.): Var_x[E_q[z_d]] > threshold."""
    return int((mu.var(axis=0) > threshold).sum())


def knn_accuracy(model: AutoEncoder, data: Dataset, per_class: int = LABELS_PER_CLASS, k: int = KNN_K,
                 seed: int = 0) -> float:
    """Accuracy on the test split of a kNN classifier fitted on `per_class` labelled codes per class.

    The labelled digits come from the training split (or, when only the test split is at hand,
    from the test split, scored on the rest). The draw and the vote are vae.fewlabels' (whose Few labels
    page measures the same on the test split, for 1 to 100 labels per class).
    """
    rng = np.random.default_rng(seed)
    pool_x, pool_y = (data.x_train, data.y_train) if data.x_train is not None else (data.x_test, data.y_test)
    labels = pool_y.numpy()
    picks = np.concatenate(draw_labelled(labels, per_class, rng))  # fewer where a small custom set has fewer
    test_mask = np.ones(len(data.x_test), bool)
    if data.x_train is None:
        test_mask[picks] = False
    z_test = encode(model, data.x_test[torch.from_numpy(test_mask)])
    # Ties go to the lowest class, scikit-learn's rule, which this metric has always had.
    predicted = knn_predict(encode(model, pool_x[picks]), labels[picks], z_test, min(k, len(picks)), ties="lowest")
    return float((predicted == data.y_test.numpy()[test_mask]).mean())


def evaluate(model: AutoEncoder, data: Dataset, seed: int = 0) -> dict:
    """All test metrics of a model, as plain JSON-ready numbers."""
    model.eval()
    losses = test_losses(model, data.x_test, seed=seed)
    mu = encode(model, data.x_test)
    return {
        "test_nats": round(losses["nats"], 3),
        "recon_nats": round(losses["recon"], 3),
        "kl_nats": round(losses["kl"], 3),
        "kl_per_dim": [round(v, 4) for v in losses["kl_per_dim"]],
        "active_units": active_units(mu),
        "knn_acc": round(knn_accuracy(model, data, seed=seed), 4),
    }


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError, load_checkpoint

    p = argparse.ArgumentParser(prog="python -m vae.evaluate", description="Evaluate a Latent Lab checkpoint or an imported ONNX model.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, or the folder of an imported ONNX pair")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--dataset", choices=DATASETS, default=None, help="default: the one it was trained on")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        model, meta = load_checkpoint(args.checkpoint)
        data = load_dataset(args.dataset or meta.get("dataset", "mnist"), args.data_dir)
    except (CheckpointError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        print(json.dumps({"error": str(e)}))
        return 2
    metrics = evaluate(model, data, seed=args.seed)
    print(json.dumps({"checkpoint": args.checkpoint, **metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
