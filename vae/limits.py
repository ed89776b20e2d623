"""The training queue's limits on one shared classroom machine, read once from the environment.

    limits = Limits.from_env(max_running=2)         # an argument wins over its variable
    tcfg = limits.train_config({"time_budget": 60})  # the settings within the caps, or a ValueError

    LATENT_LAB_MAX_TRAININGS      trainings that run at once (default 1); the rest wait in submission order
    LATENT_LAB_TRAIN_THREADS      torch threads per training (default: cores // max trainings)
    LATENT_LAB_MAX_QUEUED         trainings that may wait (default 32); more are refused
    LATENT_LAB_MAX_PER_USER       trainings one owner may have waiting or running at once (default 2)
    LATENT_LAB_MAX_TRAIN_SECONDS  the longest time budget a training may ask for (default 600); one that
                                  asks for none gets this budget, so that every training ends
    LATENT_LAB_MAX_EPOCHS         the most epochs a training may ask for (default 50; with only a time
                                  budget, this many are planned and the budget may stop it first)
    LATENT_LAB_TRAIN_NICE         the trainers' niceness (default 10; never below the server's own)
    LATENT_LAB_DATA_ROOTS         the folders a training's data may come from (vae.data.allowed_data_roots)

Every refusal is one sentence that names the cap, its value and its variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .data import allowed_data_roots
from .train import TrainConfig, train_config

WEEK_S = 7 * 86400


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def env_int(name: str, default: int, low: int = 1, high: int | None = None) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or high is not None and value > high:
        upto = f" and at most {high}" if high is not None else ""
        raise ValueError(f"{name} must be a whole number of at least {low}{upto}, not {raw!r}.")
    return value


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Limits:
    max_running: int = 1
    threads_per_job: int = 1
    max_queued: int = 32
    max_per_user: int = 2
    max_train_seconds: float = 600
    max_epochs: int = 50
    nice: int = 10
    data_roots: tuple[Path, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if min(self.max_running, self.threads_per_job, self.max_queued, self.max_per_user) < 1:
            raise ValueError("max_running, threads_per_job, max_queued and max_per_user must each be at least 1.")
        if not 0 < self.max_train_seconds <= WEEK_S or not 1 <= self.max_epochs <= 1000 or not 0 <= self.nice <= 19:
            raise ValueError("max_train_seconds must be up to a week, max_epochs 1 to 1000, nice 0 to 19.")

    @classmethod
    def from_env(cls, max_running: int | None = None, threads_per_job: int | None = None,
                 max_queued: int | None = None, max_per_user: int | None = None,
                 max_train_seconds: float | None = None, max_epochs: int | None = None, nice: int | None = None,
                 data_roots: list[str | os.PathLike] | None = None) -> Limits:
        """The limits: each argument that is given, else its environment variable, else its default."""
        running = max_running or env_int("LATENT_LAB_MAX_TRAININGS", 1)
        return cls(
            running, threads_per_job or env_int("LATENT_LAB_TRAIN_THREADS", max(1, cpu_count() // running)),
            max_queued or env_int("LATENT_LAB_MAX_QUEUED", 32), max_per_user or env_int("LATENT_LAB_MAX_PER_USER", 2),
            max_train_seconds or env_int("LATENT_LAB_MAX_TRAIN_SECONDS", 600, high=WEEK_S),
            max_epochs or env_int("LATENT_LAB_MAX_EPOCHS", 50, high=1000),
            env_int("LATENT_LAB_TRAIN_NICE", 10, low=0, high=19) if nice is None else nice,
            tuple(allowed_data_roots() if data_roots is None else [Path(r).resolve() for r in data_roots]))

    @property
    def caps(self) -> dict:
        """The numbers, for a form to show its ranges (the data roots: vae.data.allowed_data_roots)."""
        return {k: getattr(self, k) for k in ("max_running", "threads_per_job", "max_queued", "max_per_user",
                                               "max_train_seconds", "max_epochs", "nice")}

    def train_config(self, settings: dict) -> TrainConfig:
        """One training's settings within the caps, with the server's threads: epochs and a time budget
        asked for above a cap are refused; a training that asks for no budget gets the longest allowed."""
        settings = {k: v for k, v in settings.items() if k != "threads"}  # the server decides threads
        epochs, budget = settings.pop("epochs", None), settings.pop("time_budget", None)
        if _number(epochs) and epochs > self.max_epochs:
            raise ValueError(f"This server allows trainings of at most {self.max_epochs} epochs "
                             "(LATENT_LAB_MAX_EPOCHS); ask for fewer.")
        if _number(budget) and budget > self.max_train_seconds:
            raise ValueError(f"This server allows trainings of at most {self.max_train_seconds:g} seconds "
                             "(LATENT_LAB_MAX_TRAIN_SECONDS); ask for less.")
        if epochs is None:
            epochs = self.max_epochs if budget is not None else min(20, self.max_epochs)
        return train_config(epochs=epochs, time_budget=self.max_train_seconds if budget is None else budget,
                            threads=self.threads_per_job, **settings)

    def per_user_sentence(self) -> str:
        n = self.max_per_user
        return (f"This server allows {n} training{'s' * (n > 1)} per person waiting or running at once "
                "(LATENT_LAB_MAX_PER_USER); wait for one to finish, or cancel one.")

    def lower_priority(self, pid: int) -> None:
        """Set a trainer's niceness below the web server's, so that pages stay quick while a model trains."""
        try:
            os.setpriority(os.PRIO_PROCESS, pid, min(19, max(self.nice, os.getpriority(os.PRIO_PROCESS, 0))))
        except OSError:
            pass
