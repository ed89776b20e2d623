"""Recording the latent movie while a model trains (the one part of vae.movie that needs torch).

    recorder = MovieRecorder(model, data, seed=cfg.seed, eval_batch=cfg.eval_batch)
    frame = recorder.take(step=0, epoch=0.0, elapsed_s=0.0)       # before the first step: the untrained map
    if recorder.due(global_step, progress): frame = recorder.take(...)
    movie = recorder.movie()                                      # when the training ends

vae.train.iter_train drives it and yields each frame as a vae.events.FrameEvent. A frame is one
forward pass over the subset's 2,000 test digits, in evaluation mode and without gradients: their
posterior means (the points) and the subset's test loss, from the same pass. The recorder uses a
generator of its own, so a training makes the same steps with or without a movie.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..data import CLASS_NAMES, Dataset, to_float
from ..events import FrameEvent
from ..models import AutoEncoder
from .frames import LivePlane, Movie, fixed_plane, frame_count, frame_thresholds, subset_index

# Steps trained before the schedule is made: by then a step's time is known (the first steps are
# slow: memory is being allocated), and with the learning rate still warming up the map has barely moved.
SCHEDULE_AFTER = 8


class MovieRecorder:
    """Takes the frames of one training. Frame times are the trainer's: steps, fractional epochs, seconds."""

    def __init__(self, model: AutoEncoder, data: Dataset, seed: int = 0, eval_batch: int = 2000):
        self.model = model
        self.device = next(model.parameters()).device
        labels = data.y_test.numpy()
        self.index = subset_index(labels)
        self.labels = labels[self.index].astype(np.int64)
        self.x = to_float(data.x_test[torch.from_numpy(self.index)].to(self.device))  # (N, 1, 28, 28), kept
        self.dataset = data.name
        self.class_names = CLASS_NAMES.get(data.name)
        self.seed, self.batch = seed, eval_batch
        self.gen = torch.Generator(self.device)
        self.live = LivePlane()
        self.codes: list[np.ndarray] = []  # per frame (N, D); float16 past 2-d (6 MB for 100 frames of 16-d)
        self.times: list[tuple[int, float, float, float]] = []  # step, epoch, elapsed_s, loss
        self.frame_s = 0.0  # the slowest frame so far
        self.thresholds: np.ndarray | None = None  # progress values still to come, once scheduled
        self._scheduled_from: tuple[float, int] | None = None  # (time, step) of the first step timed

    @torch.inference_mode()
    def take(self, step: int, epoch: float, elapsed_s: float) -> FrameEvent:
        """Record a frame now: the subset's posterior means and its test loss (beta = 1, the same posterior
        samples in every frame). The model's train/eval mode is restored."""
        t = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        self.gen.manual_seed(self.seed + 2)
        mus, loss = [], 0.0
        for i in range(0, len(self.x), self.batch):
            xb = self.x[i:i + self.batch]
            out = self.model(xb, generator=self.gen)
            loss += self.model.loss(xb, out, beta=1.0).loss.item() * len(xb)
            mus.append(out.posterior.mu.float().cpu())
        self.model.train(was_training)
        codes = torch.cat(mus).numpy()  # (N, D)
        loss /= len(self.x)
        self.codes.append(codes if codes.shape[1] <= 2 else codes.astype(np.float16))  # PCA'd later: halved
        self.times.append((int(step), float(epoch), float(elapsed_s), float(loss)))
        self.frame_s = max(self.frame_s, time.perf_counter() - t)
        points = self.live.project(codes) if np.isfinite(codes).all() else np.full((len(codes), 2), np.nan, np.float32)
        return FrameEvent(frame=len(self.times) - 1, step=int(step), epoch=float(epoch), elapsed_s=float(elapsed_s),
                          loss=loss, points=points, labels=self.labels, plane="native" if codes.shape[1] <= 2 else "pca")

    @property
    def last_step(self) -> int:
        return self.times[-1][0] if self.times else -1

    def due(self, global_step: int, progress: float, total_steps: int, seconds_left: float | None = None) -> bool:
        """Whether a frame is due after `global_step` of at most `total_steps` steps, at `progress` (0..1);
        `seconds_left` is what remains of a time budget (None: no budget). The schedule is made a few steps
        in (SCHEDULE_AFTER), when the time of a step and of a frame are known."""
        if self.thresholds is None:
            if self._scheduled_from is None:  # the first step is done: time the steps from here
                self._scheduled_from = (time.perf_counter(), global_step)
            t0, s0 = self._scheduled_from
            if global_step - s0 < min(SCHEDULE_AFTER, max(1, total_steps // 25)) and progress < 1:
                return False
            step_s = (time.perf_counter() - t0) / max(1, global_step - s0)
            expected = total_steps if seconds_left is None else min(total_steps, global_step + seconds_left / step_s)
            self.thresholds = frame_thresholds(frame_count(expected, step_s, self.frame_s), progress, expected)
        if len(self.thresholds) and progress >= self.thresholds[0]:
            # one frame per step: a second threshold passed meanwhile (a slow step, the test pass at an
            # epoch's end) waits for the next step, so a completed training keeps all its frames
            self.thresholds = self.thresholds[1:]
            return True
        return False

    def movie(self) -> Movie | None:
        """The frames so far as one Movie, on one plane (native, or the last frame's PCA), or None when the
        codes are not finite (a diverged model)."""
        if not self.codes or not all(np.isfinite(z).all() for z in self.codes):
            return None
        points, plane = fixed_plane(self.codes)
        step, epoch, elapsed, loss = (np.array(v) for v in zip(*self.times))
        return Movie(points=points, labels=self.labels, index=self.index, step=step, epoch=epoch, elapsed_s=elapsed,
                     loss=loss, plane=plane, dataset=self.dataset, class_names=self.class_names)
