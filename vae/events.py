"""The events of a training: what `vae.train.iter_train` yields, and the JSON-lines file they travel in.

    for event in iter_train(model, data, cfg): ...     # FrameEvent, StepEvent, EpochEvent, then one DoneEvent
    writer = EventWriter(path); writer.write(event)     # `python -m vae.train --events FILE`
    log = EventLog(path); log.read().progress           # the training queue, while the child writes

One line of JSON per event. Besides the training's own events, the command line writes a
`saved` event (checkpoint path and metrics) or an `error` event (one sentence) at the end.
A frame of the latent movie (vae.movie) travels compactly: its points as base64 float16, its
labels as base64 bytes (about 14 KB a line for 2,000 digits); the reader keeps only the latest.
The writer and the reader of that file live here together; numpy and the standard library only.
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

MAX_CURVE_POINTS = 600  # step-level loss points kept per training by the reader (older ones are thinned)
# A training that its server left behind: the trainer's last word when its lifeline breaks, and what the
# training queue shows, after a restart, for a job that was running when the server died.
INTERRUPTED = "The server restarted while this model was training; nothing was saved. Start it again."


@dataclass
class StepEvent:
    epoch: int  # 1-based, the epoch in progress
    epochs: int
    step: int  # step within the epoch
    steps_per_epoch: int
    global_step: int
    loss: float
    recon: float
    kl: float
    samples_per_s: float
    elapsed_s: float
    eta_s: float
    progress: float  # 0..1
    kind: str = "step"


@dataclass
class EpochEvent:
    epoch: int
    epochs: int
    train: dict  # loss, recon, kl (means over the epoch)
    test: dict  # nats, recon, kl, kl_per_dim
    elapsed_s: float
    eta_s: float
    originals: np.ndarray = field(repr=False)  # (8, 28, 28) uint8 test digits
    reconstructions: np.ndarray = field(repr=False)  # (8, 28, 28) uint8
    kind: str = "epoch"


@dataclass
class FrameEvent:
    """A frame of the latent movie (vae.movie): where the fixed subset of test digits sits on the map now."""

    frame: int  # 0-based: frame 0 is the untrained model
    step: int  # global training step
    epoch: float  # fractional epochs done
    elapsed_s: float
    loss: float  # test loss on the subset, nats per digit
    points: np.ndarray = field(repr=False)  # (N, 2) float32: a larger model's own PCA, aligned to the frame before
    labels: np.ndarray = field(repr=False)  # (N,) int64
    plane: str = "native"  # "native" (1-/2-d model) or "pca"
    kind: str = "frame"


@dataclass
class DoneEvent:
    reason: str  # "completed", "time_budget" or "cancelled"
    epochs: int  # epochs fully completed
    train_seconds: float
    history: dict
    movie: object = field(default=None, repr=False)  # vae.movie.Movie or None; not written to the events file
    kind: str = "done"


Event = FrameEvent | StepEvent | EpochEvent | DoneEvent
MAX_FRAME_POINTS = 100_000  # a frame line the reader takes at most


def event_to_dict(event: Event) -> dict:
    """The event as JSON-ready values (images as nested lists, a frame's points and labels as base64)."""
    if isinstance(event, FrameEvent):
        d = {k: getattr(event, k) for k in ("kind", "frame", "step", "epoch", "elapsed_s", "loss", "plane")}
        d["n"] = len(event.labels)
        d["points"] = base64.b64encode(np.asarray(event.points, "<f2").tobytes()).decode("ascii")
        d["labels"] = base64.b64encode(np.asarray(event.labels, np.uint8).tobytes()).decode("ascii")
        return d
    d = asdict(event)
    d.pop("movie", None)  # the checkpoint keeps the movie; the file has had its frames one by one
    for k in ("originals", "reconstructions"):
        if k in d:
            d[k] = d[k].tolist()
    return d


def frame_from_dict(d: dict) -> dict:
    """A frame line back: {"points": (N, 2) float32, "labels": (N,) int64, "epoch", "loss", "step", "frame",
    "elapsed_s", "plane"}. ValueError (or KeyError, TypeError) for a line that does not hold one."""
    n = int(d["n"])
    points = np.frombuffer(base64.b64decode(d["points"], validate=True), "<f2")
    labels = np.frombuffer(base64.b64decode(d["labels"], validate=True), np.uint8)
    if not 0 < n <= MAX_FRAME_POINTS or points.size != 2 * n or labels.size != n:
        raise ValueError("A frame's points and labels do not agree with its size.")
    return {"points": points.astype(np.float32).reshape(n, 2), "labels": labels.astype(np.int64),
            "epoch": float(d["epoch"]), "loss": float(d["loss"]), "step": int(d["step"]), "frame": int(d["frame"]),
            "elapsed_s": float(d["elapsed_s"]), "plane": str(d.get("plane", "native"))}


class EventWriter:
    """Appends events to a JSON-lines file, a whole line at a time (line-buffered: a reader in another
    process sees each event as soon as it is written). With no path it writes nothing."""

    def __init__(self, path: str | os.PathLike | None):
        self._file = open(path, "a", buffering=1) if path else None  # OSError: the caller says which file

    def write(self, event: Event | dict) -> None:
        if self._file is not None:
            d = event if isinstance(event, dict) else event_to_dict(event)
            self._file.write(json.dumps(d) + "\n")

    def saved(self, checkpoint: str, metrics: dict) -> None:
        self.write({"kind": "saved", "checkpoint": checkpoint, "metrics": metrics})

    def error(self, message: str) -> None:
        self.write({"kind": "error", "message": message})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# ---------------------------------------------------------------- reading the events file

@dataclass
class Progress:
    """What the events of one training say so far (fed line by line by `EventLog`)."""

    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps_per_epoch: int = 0
    progress: float = 0.0
    eta_s: float | None = None
    samples_per_s: float | None = None
    elapsed_s: float = 0.0
    # one entry per finished epoch: epoch, train_recon, train_kl, test_recon, test_kl, test_nats, and x:
    # where it ended in (fractional) epochs, which is below `epoch` when a time budget cut it short
    history: dict = field(default_factory=lambda: {k: [] for k in (
        "epoch", "x", "train_recon", "train_kl", "test_recon", "test_kl", "test_nats")})
    # step-level training losses for a live curve: fractional epoch, recon, kl
    steps: dict = field(default_factory=lambda: {"epoch": [], "recon": [], "kl": []})
    originals: np.ndarray | None = None  # (8, 28, 28) uint8 test digits
    reconstructions: np.ndarray | None = None  # (8, 28, 28) uint8, after the latest epoch
    stop_reason: str | None = None  # from the done event: completed, time_budget, cancelled
    checkpoint: str | None = None  # from the saved event
    metrics: dict | None = None
    error: str | None = None  # from an error event
    last_event_at: float = 0.0  # time.time() when the latest event was read
    # the latent movie so far: the latest frame (frame_from_dict's dict: points, labels, epoch, loss, step, ...)
    frame: dict | None = None
    frames: int = 0  # frames recorded so far


class EventLog:
    """Incremental reader of a JSON-lines events file that another process is still writing."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.offset = 0
        self.state = Progress()
        self.bad_lines = 0

    def read(self, final: bool = False) -> Progress:
        """Read what was appended since the last call. A torn last line is kept for later
        (or, with final=True, once the writer has exited, tried and dropped if broken)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return self.state
        end = chunk.rfind(b"\n") + 1
        complete, rest = chunk[:end], chunk[end:]
        self.offset += end
        lines = complete.splitlines()
        if final and rest.strip():
            lines.append(rest)
            self.offset += len(rest)
        for line in lines:
            self.feed(line)
        return self.state

    def feed(self, line: bytes | str) -> None:
        try:
            event = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            self.bad_lines += 1
            return
        if not isinstance(event, dict):
            self.bad_lines += 1
            return
        try:
            self._apply(event)
        except (KeyError, TypeError, ValueError):
            self.bad_lines += 1

    def _apply(self, ev: dict) -> None:
        s = self.state
        kind = ev.get("kind")
        s.last_event_at = time.time()
        if kind == "step":
            s.epoch, s.epochs = int(ev["epoch"]), int(ev["epochs"])
            s.step, s.steps_per_epoch = int(ev["step"]), int(ev["steps_per_epoch"])
            s.progress = max(s.progress, float(ev["progress"]))
            s.eta_s = _finite(ev.get("eta_s"))
            s.samples_per_s = _finite(ev.get("samples_per_s"))
            s.elapsed_s = float(ev["elapsed_s"])
            s.steps["epoch"].append(s.epoch - 1 + s.step / max(1, s.steps_per_epoch))
            s.steps["recon"].append(float(ev["recon"]))
            s.steps["kl"].append(float(ev["kl"]))
            if len(s.steps["epoch"]) > MAX_CURVE_POINTS:  # thin the older half, keep the recent detail
                for k, v in s.steps.items():
                    half = len(v) // 2
                    s.steps[k] = v[:half:2] + v[half:]
        elif kind == "epoch":
            h = s.history
            epoch = int(ev["epoch"])
            last = s.steps["epoch"][-1] if s.steps["epoch"] else float(epoch)
            h["epoch"].append(epoch)
            h["x"].append(last if epoch - 1 < last < epoch - 0.02 else float(epoch))
            h["train_recon"].append(float(ev["train"]["recon"]))
            h["train_kl"].append(float(ev["train"]["kl"]))
            h["test_recon"].append(float(ev["test"]["recon"]))
            h["test_kl"].append(float(ev["test"]["kl"]))
            h["test_nats"].append(float(ev["test"]["nats"]))
            s.epoch, s.epochs = int(ev["epoch"]), int(ev["epochs"])
            s.elapsed_s = float(ev["elapsed_s"])
            s.eta_s = _finite(ev.get("eta_s"))
            s.originals = np.asarray(ev["originals"], dtype=np.uint8)
            s.reconstructions = np.asarray(ev["reconstructions"], dtype=np.uint8)
        elif kind == "frame":
            s.frame = frame_from_dict(ev)
            s.frames += 1
        elif kind == "done":
            s.stop_reason = str(ev["reason"])
            s.elapsed_s = float(ev.get("train_seconds", s.elapsed_s))
            s.eta_s = 0.0
        elif kind == "saved":
            s.checkpoint = str(ev["checkpoint"])
            s.metrics = dict(ev.get("metrics") or {})
            s.progress = 1.0
        elif kind == "error":
            s.error = str(ev.get("message") or "Training failed.")


def _finite(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
