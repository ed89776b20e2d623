"""Trainings in the background, on whichever backend this server is configured for.

    queue = make_queue()          # one per server (ui.training caches it); the command line makes its own
    job_id = queue.submit({"kind": "vae", "latent_dim": 2}, {"time_budget": 60}, "mnist", None, "my vae",
                          owner=owner_id)
    queue.status(job_id)          # JobStatus: state, position, epoch, progress, ETA, curves, preview, ...
    queue.jobs(owner=owner_id); queue.cancel(job_id, owner=owner_id); queue.counts(); queue.caps

Two backends, one interface (submit, status, jobs, cancel, counts, caps, read_only, unavailable, wait,
shutdown; JobStatus):

- embedded (vae.jobs.embedded.TrainingQueue, the default): each training is a `python -m vae.train`
  child process of the server that holds the jobs folder's lock, `$XDG_CACHE_HOME/latent-lab/jobs`;
- Ray (vae.jobs.ray_backend.RayQueue), when LATENT_LAB_RAY_ADDRESS names a Ray cluster's dashboard
  (http://head:8265): each training is a Ray job running the same trainer command anywhere in the
  cluster, with its events and job file in `$LATENT_LAB_HOME/jobs`, a folder every machine shares.

`python -m vae.jobs submit|list|cancel` (vae/jobs/cli.py) drives either from a terminal.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..checkpoint import default_library_dir
from ..paths import cache_dir
from .common import JobStatus
from .embedded import KILL_AFTER_S, TrainingQueue
from .ray_backend import RayQueue, RayUnavailable

RAY_ADDRESS_VAR = "LATENT_LAB_RAY_ADDRESS"

__all__ = ["JobStatus", "KILL_AFTER_S", "RAY_ADDRESS_VAR", "RayQueue", "RayUnavailable", "TrainingQueue",
           "default_jobs_dir", "make_queue", "ray_address"]


def ray_address() -> str | None:
    """The Ray cluster trainings run on ($LATENT_LAB_RAY_ADDRESS), or None for the embedded queue."""
    return os.environ.get(RAY_ADDRESS_VAR, "").strip() or None


def default_jobs_dir(ray: bool | None = None) -> Path:
    """Where the queue keeps its job files: the cache for the embedded queue (one machine), next to the
    library for Ray ($LATENT_LAB_HOME/jobs, which every replica and worker must share)."""
    if ray if ray is not None else ray_address():
        return default_library_dir().parent / "jobs"
    return cache_dir() / "jobs"


def make_queue(jobs_dir: str | os.PathLike | None = None, **limits) -> TrainingQueue | RayQueue:
    """The configured queue: a RayQueue on $LATENT_LAB_RAY_ADDRESS when it is set, else the embedded
    TrainingQueue. `jobs_dir` defaults to default_jobs_dir(); `limits` go to the queue (for the embedded
    one also `runner=False`: a queue that never runs trainings itself). A jobs folder that cannot be made
    or written raises its OSError; one whose file system takes no file locks, vae.jobfiles.NoFileLocks
    (an OSError whose text is one sentence)."""
    address = ray_address()
    folder = Path(jobs_dir) if jobs_dir is not None else default_jobs_dir(ray=address is not None)
    if address is not None:
        limits.pop("runner", None)
        limits.pop("max_running", None)  # the cluster's CPUs decide
        return RayQueue(address, folder, **limits)
    return TrainingQueue(folder, **limits)
