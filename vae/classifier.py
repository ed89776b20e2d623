"""A small digit classifier that scores how much an image looks like a digit.

    python -m vae.classifier --data-dir ../shared/data --out assets/models/classifier.safetensors

trains it. `digit_confidence(clf, images)` returns the highest class probability per image:
decoded images from a latent hole score low. Weights are saved in safetensors with a JSON header,
like the models, and read by the same header reader (vae.checkpoint.read_header).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from .checkpoint import CheckpointError, read_header
from .data import DataError, load_dataset, to_float
from .fileio import atomic_write
from .paths import BUNDLED_MODELS

FORMAT = "latent-lab-classifier/1"
CONFIDENT = 0.9  # "a confident digit": the classifier gives one class at least this probability
DEFAULT_PATH = BUNDLED_MODELS / "classifier.safetensors"
REBUILD = "rebuild it with `python -m vae.classifier` (see assets/README.md)"


class DigitClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 49, 128), nn.ReLU(), nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 10) logits


# Images per forward pass when scoring: a batch's activations (~26 MB) stay close to the CPU's caches,
# where 2,000 at once (200 MB) made the ReLUs and pools wait on memory (benchmarks/README.md, "Class load").
BATCH = 256


def _eval_logits(clf: DigitClassifier, x: torch.Tensor) -> torch.Tensor:
    """clf's logits in eval mode (B, 10), as `forward` computes them but with 4-5x less CPU time: in
    channels-last memory order (what oneDNN's convolutions want; `load_classifier` stores the weights so),
    each ReLU after the max pool that follows it (they commute exactly, both take maxima, and the ReLU then
    touches a quarter of the values), in place, and without the dropout, which eval mode skips anyway."""
    if not isinstance(getattr(clf, "net", None), nn.Sequential):  # another scorer of the same contract
        return clf(x)
    layers = [m for m in clf.net if not isinstance(m, nn.Dropout)]
    h = x.contiguous(memory_format=torch.channels_last)  # (B, 1, 28, 28)
    i = 0
    while i < len(layers):
        if isinstance(layers[i], nn.ReLU):
            if i + 1 < len(layers) and isinstance(layers[i + 1], nn.MaxPool2d):
                h = layers[i + 1](h)
                i += 1
            h = h.relu_()
        else:
            h = layers[i](h)
        i += 1
    return h


@torch.no_grad()
def predict_proba(clf: DigitClassifier, images) -> np.ndarray:
    """Images (N, 28, 28) floats in [0, 1] (or uint8) -> class probabilities (N, 10)."""
    clf.eval()
    x = torch.as_tensor(np.asarray(images))
    x = to_float(x) if x.dtype == torch.uint8 else x.float().reshape(-1, 1, 28, 28)
    return torch.cat([torch.softmax(_eval_logits(clf, x[i:i + BATCH]), 1) for i in range(0, len(x), BATCH)]).numpy() \
        if len(x) else np.zeros((0, 10), np.float32)


def digit_confidence(clf: DigitClassifier, images) -> np.ndarray:
    """Max class probability per image: near 1 looks like a clear digit, near 0.1 like noise."""
    p = predict_proba(clf, images)
    return p.max(1) if len(p) else np.zeros(0, np.float32)


def train_classifier(data, epochs: int = 3, seed: int = 0, progress=None) -> tuple[DigitClassifier, float]:
    torch.manual_seed(seed)
    clf = DigitClassifier()
    opt = torch.optim.Adam(clf.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    n, bs = len(data.x_train), 128
    for epoch in range(epochs):
        clf.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - bs + 1, bs):
            idx = perm[i:i + bs]
            x = to_float(data.x_train[idx])
            # small random shifts make it judge shapes, not exact pixel positions
            dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
            x = torch.roll(x, (dy, dx), dims=(2, 3))
            loss = nn.functional.cross_entropy(clf(x), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if progress:
            progress(epoch + 1, epochs)
    acc = float((predict_proba(clf, data.x_test).argmax(1) == data.y_test.numpy()).mean())
    return clf, acc


def fingerprint(clf: DigitClassifier) -> str:
    """A short hash of the classifier's weights (whatever their memory order): scores stored with one
    classifier (vae.measures) are used with that classifier only."""
    h = hashlib.sha256()
    for name, t in sorted(clf.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def save_classifier(clf: DigitClassifier, path, **meta) -> None:
    header = {"format": FORMAT, **meta}
    tensors = {k: v.contiguous() for k, v in clf.state_dict().items()}
    atomic_write(Path(path), st_save(tensors, metadata={"latent_lab": json.dumps(header)}))


def load_classifier(path=DEFAULT_PATH) -> DigitClassifier:
    """The classifier saved at `path`; CheckpointError with a sentence if it is missing or unreadable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"The digit classifier is missing ({path}); {REBUILD}.") from None
    except OSError as e:
        raise CheckpointError(f"Could not read the digit classifier at {path} ({e.strerror}); {REBUILD}.") from None
    try:
        read_header(data, path.name, fmt=FORMAT)
    except CheckpointError as e:
        raise CheckpointError(f"{e} The digit classifier is unusable; {REBUILD}.") from None
    clf = DigitClassifier()
    try:
        clf.load_state_dict(st_load(data))
    except Exception:  # damaged weights (safetensors) or another network's (torch): the file needs rebuilding
        raise CheckpointError(f"The digit classifier at {path} is damaged or made for another version; "
                              f"{REBUILD}.") from None
    return clf.eval().to(memory_format=torch.channels_last)  # for _eval_logits: 3x less CPU than the default order


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vae.classifier", description="Train the bundled digit classifier.")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (1 makes a run reproducible)")
    p.add_argument("--out", default=str(DEFAULT_PATH))
    args = p.parse_args(argv)
    try:
        data = load_dataset("mnist", args.data_dir)
    except DataError as e:
        print(json.dumps({"error": str(e)}))
        return 2
    if args.threads:
        torch.set_num_threads(max(1, args.threads))
    t0 = time.time()
    clf, acc = train_classifier(data, args.epochs, args.seed,
                                progress=lambda e, n: print(f"epoch {e}/{n}", file=sys.stderr))
    save_classifier(clf, args.out, test_accuracy=acc, epochs=args.epochs, seed=args.seed)
    print(json.dumps({"test_accuracy": round(acc, 4), "train_seconds": round(time.time() - t0, 1), "out": args.out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
