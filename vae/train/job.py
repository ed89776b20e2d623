"""One training as data, and the JSON job file that carries it to `python -m vae.train --config FILE`.

    job = TrainingJob(ModelConfig(latent_dim=2), train_config(time_budget=60), data_dir="../shared/data")
    job.write("jobs/ab12.json")                      # atomically: a reader finds all of it or nothing
    TrainingJob.read("jobs/ab12.json") == job         # ValueError with one sentence if the file is bad

The training queue (vae.jobs) writes one per submission; the command line builds the same object
from its flags (vae/train/cli.py). A job file says what it is (`format`, `version`) and when it
was submitted and for whom (`owner`, an opaque id that the checkpoint records), so that it can be
read back later without its process.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..config import ModelConfig
from ..data import DATASETS
from ..fileio import atomic_write
from . import TrainConfig

JOB_FORMAT = "latent-lab-training-job"
JOB_VERSION = 1


@dataclass(frozen=True)
class TrainingJob:
    """One training as data: what to train, on which data, and where its checkpoint goes.

    The command-line flags build one; the training queue builds one and writes it as a JSON job
    file (`write`) for `python -m vae.train --config FILE` (`read`). Either way `run_job` runs it."""

    model: ModelConfig
    train: TrainConfig
    dataset: str = "mnist"
    data_dir: str | None = None  # data root, or a custom set's folder (None: $LATENT_LAB_DATA or the cache)
    download: bool = True  # fetch MNIST / Fashion-MNIST when missing
    name: str | None = None  # display name stored in the checkpoint (None: the model's label)
    out: str | None = None  # checkpoint path (None: the model library)
    half: bool = False  # store the weights as float16
    job_id: str | None = None  # the queue's id for it
    submitted_at: float | None = None  # time.time() when it was submitted
    owner: str | None = None  # the opaque id of whoever asked for it; the checkpoint records it

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelConfig) or not isinstance(self.train, TrainConfig):
            raise ValueError("A training job needs a ModelConfig and a TrainConfig.")
        if self.dataset not in DATASETS:
            raise ValueError(f"Unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}.")
        for key in ("data_dir", "name", "out", "job_id", "owner"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                raise ValueError(f"The job's {key} must be text or null, not {getattr(self, key)!r}.")
        for key in ("download", "half"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"The job's {key} must be true or false, not {getattr(self, key)!r}.")
        t = self.submitted_at
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
            raise ValueError(f"The job's submitted_at must be a time in seconds or null, not {t!r}.")

    def to_dict(self) -> dict:
        """The job file's content: plain JSON that says what it is (format, version) and when it came."""
        return {"format": JOB_FORMAT, "version": JOB_VERSION, "job_id": self.job_id,
                "submitted_at": self.submitted_at, "name": self.name, "model": self.model.to_dict(),
                "train": asdict(self.train), "dataset": self.dataset, "data_dir": self.data_dir,
                "download": self.download, "out": self.out, "half": self.half, "owner": self.owner}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingJob":
        if not isinstance(d, dict) or d.get("format") != JOB_FORMAT:
            raise ValueError(f"Not a Latent Lab training job: its format is not {JOB_FORMAT!r}.")
        if d.get("version") != JOB_VERSION:
            raise ValueError(f"Job format version {d.get('version')!r} is not one this Latent Lab reads; it reads "
                             f"version {JOB_VERSION}.")
        rest = {k: v for k, v in d.items() if k not in ("format", "version")}
        unknown = sorted(set(rest) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"Unknown training job fields: {', '.join(unknown)}.")
        return cls(**{**rest, "model": ModelConfig.from_dict(rest.get("model")),
                      "train": TrainConfig.from_dict(rest.get("train"))})

    def write(self, path: str | os.PathLike) -> None:
        """Write the job file atomically: a reader finds the whole file or none."""
        atomic_write(Path(path), (json.dumps(self.to_dict(), indent=2) + "\n").encode())

    @classmethod
    def read(cls, path: str | os.PathLike) -> "TrainingJob":
        """Read a job file; anything wrong with it raises ValueError with one sentence naming the file."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise ValueError(f"Could not read the job file {path}: {e.strerror or e}.") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"The job file {path} is not valid JSON (line {e.lineno}: {e.msg}).") from None
        except UnicodeDecodeError:
            raise ValueError(f"The job file {path} is not JSON text.") from None
        try:
            return cls.from_dict(d)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{str(e).rstrip('.')} (in the job file {path}).") from None
