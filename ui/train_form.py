"""The training form's rules: what you asked for is what runs.

Streamlit's number_input, given a min and a max, keeps its previous value when a typed one is out of
range (a red outline only), and a training would then start with the old value. So the form's numeric
fields have no bounds, and "Start training" checks every one here, first: a field out of range (this
server's caps included) or empty stops the start with one sentence that names the field, its range
and what was typed:

    settings(caps, kind="vae", latent_dim=1000, ...)
    ValueError: Latent dimensions must be a whole number from 1 to 128; you typed 1000.

Plain Python (no Streamlit): the ranges are the core's (vae.config.ModelConfig, vae.train.TrainConfig),
the caps the queue's (vae.jobs.TrainingQueue).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vae.config import parse_hidden


def number_text(v: float) -> str:
    """1000 -> '1000', 4294967295 -> '4,294,967,295', 0.5 -> '0.5', 1e-05 -> '1e-05'."""
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}" if abs(v) >= 10_000 else str(int(v))
    return f"{v:g}"


@dataclass(frozen=True)
class Field:
    """One numeric field of the form and the numbers it takes."""

    label: str
    low: float
    high: float
    whole: bool = True
    above_low: bool = False  # the range excludes `low` (a learning rate is above 0)
    optional: str = ""  # what an empty field means, where empty is allowed ("auto")
    where: str = ""  # " on this server" when `high` is the server's cap

    def rule(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        span = (f"above {number_text(self.low)} and at most {number_text(self.high)}" if self.above_low
                else f"from {number_text(self.low)} to {number_text(self.high)}")
        return f"{self.label} must be {kind} {span}{self.where}" + (f", or empty for {self.optional}"
                                                                    if self.optional else "")

    def check(self, value):
        """The value as the training gets it (an int for a whole number; None for an allowed empty field),
        or ValueError with the sentence."""
        if value is None or value == "":
            if self.optional:
                return None
            raise ValueError(f"{self.rule()}; the field is empty.")
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = numeric and math.isfinite(value) and (not self.whole or float(value).is_integer())
        if ok:
            ok = (self.low < value if self.above_low else self.low <= value) and value <= self.high
        if not ok:
            raise ValueError(f"{self.rule()}; you typed {number_text(value) if numeric else repr(value)}.")
        return int(value) if self.whole else float(value)


LATENT_DIM = Field("Latent dimensions", 1, 128)
BETA = Field("β (KL weight)", 0, 100, whole=False)
INPUT_NOISE = Field("Input noise (denoising)", 0, 1, whole=False)
INPUT_NOISE_HELP = ("0 to 1; 0 trains on the digits as they are. Above 0, every training digit gets Gaussian noise "
                    "of this strength (σ, pixels clipped to 0..1) and the model must redraw the clean digit: a "
                    "denoising autoencoder, for the Denoising page. 0.5 works well.")
BATCH_SIZE = Field("Batch size", 1, 8192)
LEARNING_RATE = Field("Learning rate", 0, 1, whole=False, above_low=True, optional="auto")
SEED = Field("Seed", 0, 2**32 - 1)
MOST_EPOCHS = 1000  # vae.train.TrainConfig's own limit


def time_budget_field(max_seconds: float) -> Field:
    return Field("Time budget (seconds)", 1, int(max_seconds), where=" on this server")


def epochs_field(max_epochs: int) -> Field:
    capped = max_epochs < MOST_EPOCHS
    return Field("Epochs", 1, min(max_epochs, MOST_EPOCHS), where=" on this server" if capped else "")


def settings(*, max_seconds: float, max_epochs: int, kind: str, arch: str, latent_dim, hidden_text: str, beta,
             stop: str, time_budget, epochs, batch_size, lr, seed, input_noise=0.0) -> tuple[dict, dict]:
    """The form's values checked and converted: (model settings, training settings) for the queue.

    `stop` is "time" (the time budget counts, epochs are ignored) or "epochs"; `input_noise` is the std of
    the Gaussian noise put on the training inputs (ModelConfig.input_noise; 0, the default, for none).
    Raises ValueError with the first problem's sentence, fields in the order the form shows them."""
    model = dict(kind=kind, arch=arch, latent_dim=LATENT_DIM.check(latent_dim), hidden=parse_hidden(hidden_text),
                 beta=BETA.check(beta) if kind != "ae" else 1.0,  # β means nothing to an AE (its field is off)
                 input_noise=INPUT_NOISE.check(input_noise))
    if stop == "time":
        run = dict(epochs=None, time_budget=time_budget_field(max_seconds).check(time_budget))
    else:
        run = dict(epochs=epochs_field(max_epochs).check(epochs), time_budget=None)
    run.update(batch_size=BATCH_SIZE.check(batch_size), lr=LEARNING_RATE.check(lr), seed=SEED.check(seed))
    return model, run
