"""The command line of training, `python -m vae.train` (vae/train/__main__.py runs `main`).

    python -m vae.train --model vae --arch mlp --latent-dim 16 --epochs 20 \\
        --data-dir ../shared/data --dataset mnist --out my-vae.safetensors
    python -m vae.train --config job.json --events job.jsonl --no-progress --lifeline   # the training queue

The settings come from the flags (for people) or whole from a JSON job file (vae/train/job.py,
which the queue writes); both become one `TrainingJob`, and `run_job` trains, evaluates and saves
it. It shows a progress bar on stderr and ends with one JSON line on stdout: the metrics and the
checkpoint's path, or {"error": ...}. Bad input is one sentence and exit code 2.

The command line is for one person at their own machine, so --data-dir may name any folder; the
server's queue (vae.jobs) checks that a student's folder lies inside its data roots before it writes
the job file. With --lifeline, the queue holds the write end of this process's stdin: when the server
dies (even by SIGKILL) stdin closes and the training stops between steps, saving nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

from ..checkpoint import CheckpointError, ModelLibrary, default_library_dir, save_checkpoint
from ..config import ARCHS, KINDS, ModelConfig, parse_hidden
from ..data import DATASETS, DataError, load_dataset
from ..evaluate import evaluate
from ..events import INTERRUPTED, EpochEvent, EventWriter, StepEvent
from ..models import build_model
from ..movie import movie_meta, movie_tensors
from ..paths import BUNDLED_MODELS
from . import DEFAULT_LR_NOTE, TrainConfig, TrainingError, default_lr, iter_train, train_config
from .job import TrainingJob

SETTINGS = ("model", "arch", "latent_dim", "hidden", "beta", "input_noise", "epochs", "time_budget", "batch_size",
            "lr", "no_bias_init", "seed", "device", "threads", "dataset", "data_dir", "no_download", "out", "name",
            "half", "no_movie")  # the flags that say what to train; a job file says all of it


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vae.train", description="Train an AE or VAE on 28x28 digits.")
    p.add_argument("--model", choices=KINDS, default="vae")
    p.add_argument("--arch", choices=ARCHS, default="mlp")
    p.add_argument("--latent-dim", type=int, default=16)
    p.add_argument("--hidden", type=str, default="512,256", help="comma-separated hidden sizes, e.g. 512,256")
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--input-noise", type=float, default=0.0, help="denoising: std of input noise")
    p.add_argument("--epochs", type=int, default=None, help="default: 20, or 1000 with --time-budget")
    p.add_argument("--time-budget", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate (warm-up, then cosine decay); default: {DEFAULT_LR_NOTE}")
    p.add_argument("--no-bias-init", action="store_true",
                   help="start the decoder's output bias at 0 instead of the mean training image")
    p.add_argument("--no-movie", action="store_true",
                   help="do not record the latent movie (where 2,000 test digits sit on the map as it trains)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--dataset", choices=DATASETS, default="mnist")
    p.add_argument("--data-dir", default=None, help="data root (default: $LATENT_LAB_DATA or a cache folder)")
    p.add_argument("--no-download", action="store_true", help="never try to download the dataset")
    p.add_argument("--out", default=None, help="checkpoint path (default: the model library)")
    p.add_argument("--name", default=None, help="a display name stored in the checkpoint")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (half the file size)")
    p.add_argument("--config", default=None, metavar="JOB.json",
                   help="take the whole job (all the settings above) from this JSON job file")
    p.add_argument("--events", default=None, help="also write every event as a JSON line to this file")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--lifeline", action="store_true",
                   help="stop, saving nothing, when standard input closes (the queue's server is gone)")
    return p


def read_command_line(argv: list[str] | None = None) -> tuple[TrainingJob, argparse.Namespace]:
    """The job that the command line asks for, from --config or from the flags, and the parsed flags.
    Bad settings raise ValueError with a sentence (argparse itself exits on malformed flags)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.config:
        given = [f"--{k.replace('_', '-')}" for k in SETTINGS if getattr(args, k) != parser.get_default(k)]
        if given:
            raise ValueError(f"--config takes the whole job from its file, so {', '.join(given)} cannot go with it.")
        return TrainingJob.read(args.config), args
    model = ModelConfig(kind=args.model, arch=args.arch, latent_dim=args.latent_dim, hidden=parse_hidden(args.hidden),
                        beta=args.beta, input_noise=args.input_noise)
    train_cfg = train_config(epochs=args.epochs, time_budget=args.time_budget, batch_size=args.batch_size,
                             lr=args.lr, seed=args.seed, device=args.device, threads=args.threads,
                             init_output_bias=not args.no_bias_init, movie=not args.no_movie)
    job = TrainingJob(model, train_cfg, dataset=args.dataset, data_dir=args.data_dir, download=not args.no_download,
                      name=args.name, out=args.out, half=args.half)
    return job, args


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    print(json.dumps({"error": message}))
    return code


def _watch_lifeline(cancel: threading.Event, lost: threading.Event) -> None:
    """Cancel the training when stdin reaches its end: the server that holds its write end is gone."""
    def watch():
        while sys.stdin.buffer.read(4096):
            pass
        lost.set()
        cancel.set()

    threading.Thread(target=watch, name="latent-lab-lifeline", daemon=True).start()


def run_job(job: TrainingJob, events: str | os.PathLike | None = None, progress: bool = False,
            lifeline: bool = False) -> int:
    """Train, evaluate and save one job, as `python -m vae.train` does: prints one JSON line (the metrics
    and the checkpoint, or {"error": ...}) and returns the exit code: 0 saved, 1 failed, 2 bad input,
    130 cancelled. `events` also gets every event as a JSON line. SIGTERM cancels between steps, and so
    does the end of stdin with `lifeline`. The checkpoint records the job's owner and when it was saved."""
    tcfg = job.train if job.train.lr is not None else replace(job.train, lr=default_lr(job.model))  # as recorded
    out = Path(job.out) if job.out else None
    if out is not None and not out.parent.is_dir():
        return _fail(f"The folder for the checkpoint (--out), {out.parent}, does not exist.")
    try:
        data = load_dataset(job.dataset, job.data_dir, download=job.download)
    except DataError as e:
        return _fail(str(e))
    try:
        writer = EventWriter(events)
    except OSError as e:
        return _fail(f"Could not open the --events file {events}: {e.strerror}.")
    cancel, lost = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())  # the queue cancels a training with SIGTERM
    if lifeline:
        _watch_lifeline(cancel, lost)
    bar = None
    if progress:
        from tqdm import tqdm  # only a person at a terminal needs it
        bar = tqdm(total=tcfg.epochs if not tcfg.time_budget else int(tcfg.time_budget), file=sys.stderr,
                   unit="epoch" if not tcfg.time_budget else "s", dynamic_ncols=True)
    model = build_model(job.model, seed=tcfg.seed)
    done = None
    try:
        for ev in iter_train(model, data, tcfg, cancel=cancel):
            writer.write(ev)
            if bar is not None and isinstance(ev, (StepEvent, EpochEvent)):
                bar.n = ev.epoch - 1 + (ev.step / ev.steps_per_epoch) if isinstance(ev, StepEvent) else ev.epoch
                if tcfg.time_budget:
                    bar.n = int(ev.elapsed_s)
                post = {"loss": f"{ev.loss:.1f}"} if isinstance(ev, StepEvent) else {"test": f"{ev.test['nats']:.1f}"}
                bar.set_postfix(post, refresh=False)
                bar.n = round(bar.n, 2)
                bar.refresh()
            done = ev
    except (TrainingError, DataError) as e:
        writer.error(str(e))
        return _fail(str(e), 1)
    finally:
        if bar is not None:
            bar.close()
    if lost.is_set() and done.reason == "cancelled":
        writer.error(INTERRUPTED)
        return _fail(INTERRUPTED, 130)
    if done.reason == "cancelled" or done.epochs == 0 and not done.history["epoch"]:
        writer.error("Training was cancelled; nothing was saved.")
        return _fail("Training was cancelled before it finished; nothing was saved.", 130)
    metrics = evaluate(model, data, seed=tcfg.seed)
    name = job.name or job.model.label
    storage = "float16" if job.half else "float32"
    meta = dict(dataset=job.dataset, metrics=metrics, history=done.history,
                train=dict(asdict(tcfg), stop_reason=done.reason, train_seconds=done.train_seconds))
    tensors = None
    if done.movie is not None:  # the latent movie: its arrays beside the weights, its description in the metadata
        tensors, meta["movie"] = movie_tensors(done.movie), movie_meta(done.movie)
    try:
        if out is not None:
            path = save_checkpoint(out, model, storage=storage, tensors=tensors, name=name, owner=job.owner,
                                   created=time.time(), **meta)
        else:  # the library cleans the name and keeps bundled and class models' names theirs
            library = ModelLibrary(default_library_dir(), BUNDLED_MODELS)
            path = library.save(model, name=name, owner=job.owner, storage=storage, tensors=tensors, **meta).path
    except (CheckpointError, OSError) as e:
        writer.error(f"Could not save the checkpoint: {e}")
        return _fail(f"Could not save the checkpoint: {e}", 1)
    result = {k: v for k, v in metrics.items() if k != "kl_per_dim"}
    result.update(train_seconds=round(done.train_seconds, 2), epochs=done.epochs, stop_reason=done.reason,
                  checkpoint=str(path))
    writer.saved(str(path), result)
    writer.close()
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        job, args = read_command_line(argv)
    except ValueError as e:
        return _fail(str(e))
    return run_job(job, args.events, progress=not args.no_progress, lifeline=args.lifeline)
