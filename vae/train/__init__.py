"""Training: one loop for the app and the command line.

    python -m vae.train --model vae --arch mlp --latent-dim 16 --epochs 20 \\
        --data-dir ../shared/data --dataset mnist --out my-vae.safetensors

shows a progress bar on stderr and ends with one JSON line of metrics on stdout (the command
line and its JSON job files: vae/train/cli.py and vae/train/job.py). From Python, `iter_train`
yields events (vae.events: steps, epoch ends, frames of the latent movie, the finish) and `train` runs
it with a callback. Both can be cancelled between steps and stop on a time budget. With `movie` on
(the default) the training records where 2,000 fixed test digits sit on the map at 20 to 100 moments
(vae.movie; the DoneEvent carries the Movie, the command line stores it in the checkpoint).

Speed comes from holding the whole split as one uint8 tensor and slicing batches from it
(no DataLoader, no per-item transforms), a thread count that fits the machine, and a recipe
chosen for quick convergence on a few CPU cores: batch 256, fused Adam at a peak rate chosen per
network (`default_lr`) with a linear warm-up and a cosine decay over the run (or its time
budget), and the decoder's output bias started at the mean image. The measurements behind these
defaults: benchmarks/README.md, "Training recipe: why these defaults".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..config import ModelConfig
from ..data import DataError, Dataset, to_float
from ..evaluate import test_losses
from ..events import DoneEvent, EpochEvent, Event, FrameEvent, StepEvent
from ..models import AutoEncoder
from ..movie.record import MovieRecorder

PREVIEW = 8  # test digits whose reconstructions are shown after every epoch


class TrainingError(Exception):
    """Training could not go on (diverged, bad device); the message says what to change."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 256
    lr: float | None = None  # peak learning rate; None: default_lr(model config), chosen per network
    seed: int = 0
    device: str = "cpu"
    time_budget: float | None = None  # seconds; stop after this even if epochs remain
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    warmup_steps: int = 100
    eval_batch: int = 2000
    init_output_bias: bool = True  # start the decoder at the mean training image (see init_output_bias)
    movie: bool = True  # record the latent movie (vae.movie): the subset's map at 20 to 100 moments

    def __post_init__(self) -> None:
        if not _whole(self.epochs) or not 1 <= self.epochs <= 1000:
            raise ValueError(f"Epochs must be a whole number from 1 to 1000, not {self.epochs!r}.")
        if not _whole(self.batch_size) or not 1 <= self.batch_size <= 8192:
            raise ValueError(f"Batch size must be a whole number from 1 to 8192, not {self.batch_size!r}.")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and 0 < self.lr <= 1):
            raise ValueError(f"Learning rate must be above 0 and at most 1, not {self.lr!r}.")
        if not _whole(self.seed) or not 0 <= self.seed < 2**32:  # numpy's generators refuse negative seeds
            raise ValueError(f"Seed must be a whole number from 0 to 2**32 - 1, not {self.seed!r}.")
        if self.time_budget is not None and not (
                isinstance(self.time_budget, (int, float)) and 0 < self.time_budget <= 7 * 86400):
            raise ValueError(f"Time budget must be a positive number of seconds, not {self.time_budget!r}.")
        if self.threads is not None and (not _whole(self.threads) or self.threads < 1):
            raise ValueError(f"Threads must be a whole number of at least 1, not {self.threads!r}.")
        if not _whole(self.warmup_steps) or self.warmup_steps < 0:
            raise ValueError(f"Warm-up steps must be a whole number of at least 0, not {self.warmup_steps!r}.")
        if not _whole(self.eval_batch) or self.eval_batch < 1:
            raise ValueError(f"The evaluation batch must be a whole number of at least 1, not {self.eval_batch!r}.")
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ValueError(f"Device must be cpu, cuda or mps, not {self.device!r}.")
        for key in ("init_output_bias", "movie"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"The training's {key} setting must be true or false, not {getattr(self, key)!r}.")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ValueError("The training settings must be a JSON object.")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"Unknown training settings: {', '.join(unknown)}.")
        return cls(**d)


def train_config(epochs: int | None = None, time_budget: float | None = None, **settings) -> TrainConfig:
    """A TrainConfig whose epochs, when not given, are 20, or 1000 with a time budget (the budget stops it)."""
    if epochs is None:
        epochs = 1000 if time_budget else 20
    return TrainConfig(epochs=epochs, time_budget=time_budget, **settings)


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def resolve_device(name: str) -> torch.device:
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise TrainingError("CUDA was asked for but no CUDA GPU is available here; use --device cpu.")
    if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise TrainingError("MPS was asked for but is not available here; use --device cpu.")
    return torch.device(name)


def init_output_bias(model: AutoEncoder, x_train: torch.Tensor, chunk: int = 10000) -> bool:
    """Set the decoder's output bias to the logit of the mean training image, so that training starts
    from "every pixel at its average brightness" instead of "every pixel grey" and spends no steps
    learning the average. Per pixel for an MLP decoder (784 biases); one value, the mean brightness,
    for the conv decoder's single output channel. Returns False if the decoder's last layer has no
    such bias. For a model trained from scratch: it overwrites that bias."""
    last = None
    for module in model.decoder.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            last = module
    if last is None or last.bias is None or len(x_train) == 0:
        return False
    total = torch.zeros(x_train.shape[1:], dtype=torch.float64, device=x_train.device)
    for i in range(0, len(x_train), chunk):  # chunks: a float copy of all of MNIST would be 188 MB
        total += x_train[i:i + chunk].to(torch.float64).sum(0)
    mean = (total / (255.0 * len(x_train))).clamp(1e-3, 1 - 1e-3)
    with torch.no_grad():
        if isinstance(last, nn.Linear) and last.out_features == mean.numel():
            last.bias.copy_(torch.logit(mean).reshape(-1).to(last.bias))
        elif last.bias.numel() == 1:
            last.bias.fill_(float(torch.logit(mean.mean())))
        else:
            return False
    return True


LR_SHALLOW_MLP, LR_DEEP_MLP, LR_CONV = 8e-3, 2e-3, 4e-3
DEFAULT_LR_NOTE = (f"{LR_SHALLOW_MLP:g} for a one-hidden-layer MLP, {LR_DEEP_MLP:g} for a deeper one, "
                   f"{LR_CONV:g} for conv")


def default_lr(config: ModelConfig) -> float:
    """The peak learning rate (batch 256, Adam, warm-up + cosine) that trained this kind of network
    fastest on MNIST in benchmarks/bench_train.py: a one-hidden-layer MLP takes the highest rate;
    a deeper MLP falls behind at that rate on long runs, so it gets a lower one; the conv network
    sits between them (only short runs were compared)."""
    if config.arch == "conv":
        return LR_CONV
    return LR_SHALLOW_MLP if len(config.hidden) <= 1 else LR_DEEP_MLP


def _adam(model: AutoEncoder, lr: float) -> torch.optim.Optimizer:
    """Adam, fused into one kernel per step where this torch supports it for the device (CPU and CUDA
    in recent releases): the same updates for less time per step."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def _lr_factor(progress: float, step: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5% of the base rate over the run's progress."""
    warm = min(1.0, (step + 1) / max(1, warmup))
    return warm * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def _is_cancelled(cancel) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if hasattr(cancel, "is_set") else bool(cancel())


def iter_train(model: AutoEncoder, data: Dataset, cfg: TrainConfig, cancel=None,
               report_every_s: float = 0.25) -> Iterator[Event]:
    """Train `model` in place, yielding events. Raises TrainingError if the loss stops being finite."""
    if data.x_train is None:
        raise DataError(f"The {data.name} training split is missing; training needs it.")
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model.to(device).train()
    x_train = data.x_train.to(device)  # (N, 28, 28) uint8: 47 MB for MNIST, converted per batch
    x_test = data.x_test.to(device)
    if cfg.init_output_bias:
        init_output_bias(model, x_train)
    n = len(x_train)
    bs = min(cfg.batch_size, n)
    steps_per_epoch = n // bs  # drop the ragged last batch: every step sees a full batch
    total_steps = steps_per_epoch * cfg.epochs
    shuffle_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator(device).manual_seed(cfg.seed + 1)
    peak_lr = cfg.lr or default_lr(model.config)
    opt = _adam(model, peak_lr)
    preview = data.x_test[:PREVIEW]
    history: dict[str, list] = {k: [] for k in (
        "epoch", "train_loss", "train_recon", "train_kl", "test_nats", "test_recon", "test_kl", "elapsed_s")}

    recorder = MovieRecorder(model, data, cfg.seed, cfg.eval_batch) if cfg.movie and len(data.x_test) >= 2 else None
    t0 = time.perf_counter()
    last_report = t0
    global_step = 0
    reason = "completed"
    epochs_done = 0

    def progress_now() -> float:
        p = global_step / total_steps
        if cfg.time_budget:
            p = max(p, (time.perf_counter() - t0) / cfg.time_budget)
        return min(1.0, p)

    def eta(p: float) -> float:
        elapsed = time.perf_counter() - t0
        return elapsed * (1 - p) / p if p > 0 else float("nan")

    def frame() -> FrameEvent:
        ev = recorder.take(global_step, global_step / steps_per_epoch, time.perf_counter() - t0)
        if not (math.isfinite(ev.loss) and np.isfinite(ev.points).all()):
            raise TrainingError(f"Training diverged by step {global_step} (the test loss is {ev.loss}). Try a "
                                "lower learning rate or a smaller beta.")
        return ev

    if recorder:
        yield frame()  # the untrained model
    for epoch in range(1, cfg.epochs + 1):
        perm = torch.randperm(n, generator=shuffle_gen).to(device)
        sums = torch.zeros(3, device=device)  # loss, recon, kl (kept on device: no sync per step)
        steps_done = 0
        for step in range(steps_per_epoch):
            if _is_cancelled(cancel):
                reason = "cancelled"
                break
            if cfg.time_budget and time.perf_counter() - t0 >= cfg.time_budget:
                reason = "time_budget"
                break
            for g in opt.param_groups:
                g["lr"] = peak_lr * _lr_factor(progress_now(), global_step, cfg.warmup_steps)
            xb = to_float(x_train[perm[step * bs:(step + 1) * bs]])  # (B, 1, 28, 28)
            out = model(xb, generator=noise_gen)
            parts = model.loss(xb, out)
            opt.zero_grad(set_to_none=True)
            parts.loss.backward()
            opt.step()
            sums += torch.stack([parts.loss.detach(), parts.recon.detach(), parts.kl.detach()])
            global_step += 1
            steps_done += 1
            if recorder and recorder.due(global_step, progress_now(), total_steps,
                                         cfg.time_budget and cfg.time_budget - (time.perf_counter() - t0)):
                yield frame()
            now = time.perf_counter()
            if now - last_report >= report_every_s:
                last_report = now
                loss = parts.loss.item()
                if not math.isfinite(loss):
                    raise TrainingError(f"Training diverged at epoch {epoch}, step {step + 1} (the loss is "
                                        f"{loss}). Try a lower learning rate or a smaller beta.")
                p = progress_now()
                yield StepEvent(epoch, cfg.epochs, step + 1, steps_per_epoch, global_step, loss,
                                parts.recon.item(), parts.kl.item(), global_step * bs / (now - t0),
                                now - t0, eta(p), p)
        if steps_done == 0:
            break
        means = (sums / steps_done).tolist()
        if not all(math.isfinite(v) for v in means):
            raise TrainingError(f"Training diverged in epoch {epoch} (the loss is not finite). "
                                "Try a lower learning rate or a smaller beta.")
        test = test_losses(model, x_test, cfg.eval_batch, seed=cfg.seed)
        if steps_done == steps_per_epoch:
            epochs_done = epoch
        elapsed = time.perf_counter() - t0
        for k, v in zip(("epoch", "train_loss", "train_recon", "train_kl", "test_nats", "test_recon",
                         "test_kl", "elapsed_s"),
                        (epoch, *means, test["nats"], test["recon"], test["kl"], elapsed)):
            history[k].append(v)
        with torch.no_grad():
            model.eval()
            rec = torch.sigmoid(model.decode(model.encode(to_float(preview.to(device))).mode()))
            model.train()
        yield EpochEvent(epoch, cfg.epochs, dict(zip(("loss", "recon", "kl"), means)), test, elapsed,
                         eta(progress_now()), preview.numpy(),
                         (rec[:, 0] * 255).round().byte().cpu().numpy())
        if reason != "completed":
            break
    model.eval()
    if recorder and global_step > recorder.last_step:
        yield frame()  # the end, also of a training stopped early
    yield DoneEvent(reason, epochs_done, time.perf_counter() - t0, history, recorder.movie() if recorder else None)


def train(model: AutoEncoder, data: Dataset, cfg: TrainConfig, callback: Callable[[Event], None] | None = None,
          cancel=None) -> DoneEvent:
    """Run `iter_train` to the end, passing each event to `callback`; returns the final event."""
    done = None
    for event in iter_train(model, data, cfg, cancel=cancel):
        if callback:
            callback(event)
        done = event
    return done
