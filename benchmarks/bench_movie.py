"""Latent movie benchmark (issue 17): what recording the movie costs a training. Target: < 5% of its time.

    PYTHONPATH=. python benchmarks/bench_movie.py --data-dir ../shared/data                 # ~15 min on 2 idle cores
    PYTHONPATH=. python benchmarks/bench_movie.py --data-dir ../shared/data --quick         # smoke run
    PYTHONPATH=. python benchmarks/bench_movie.py --data-dir ../shared/data --configs mlp2 --epochs 1,5,20

Each configuration trains on the full MNIST (60,000 digits, the default recipe: batch 256) with the
movie on and off, `--repeats` times each, interleaved (on, off, then off, on, ...), so that a machine
whose load changes meanwhile weighs on both sides alike. Two figures per row:

  wall   the median training time (the trainer's own clock, its per-epoch test passes included)
         with the movie over the median without it, minus 1. On a shared, noisy machine this moves
         by several percent from run to run either way: read it with its spread (min-max).
  share  the time spent inside the recorder (its frames: a forward pass over the 2,000 subset digits
         and the PCA of a larger model's codes) over the training time, in the same runs: the cost
         itself, far less noisy than a difference of two wall times.

A time-budget row (`--budget`, the app's default 60 s) cannot cost time, only steps: it reports the
share of the budget that went to frames and the steps made with and without the movie.
Progress goes to stderr; the table goes to stdout. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

CONFIGS = {  # name -> ModelConfig settings
    "mlp2": dict(kind="vae", arch="mlp", latent_dim=2, hidden=(512, 256)),
    "mlp16": dict(kind="vae", arch="mlp", latent_dim=16, hidden=(512, 256)),
    "conv16": dict(kind="vae", arch="conv", latent_dim=16, hidden=(256,)),
}
TARGET = 0.05


def log(msg: str) -> None:
    print(f"[bench_movie {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Timed:
    """Adds up the seconds spent in MovieRecorder.take while installed."""

    def __init__(self):
        from vae.movie import record

        self.record, self.real, self.seconds = record, record.MovieRecorder.take, 0.0

    def __enter__(self):
        real = self.real

        def take(recorder, *a, **k):
            t = time.perf_counter()
            try:
                return real(recorder, *a, **k)
            finally:
                self.seconds += time.perf_counter() - t

        self.record.MovieRecorder.take = take
        return self

    def __exit__(self, *exc):
        self.record.MovieRecorder.take = self.real


def one(data, name: str, movie: bool, epochs: int | None, budget: float | None, threads: int, device: str) -> dict:
    from vae.config import ModelConfig
    from vae.models import build_model
    from vae.train import train, train_config

    model = build_model(ModelConfig(**CONFIGS[name]), seed=0)
    cfg = train_config(epochs=epochs, time_budget=budget, threads=threads, device=device, movie=movie)
    steps = []
    with Timed() as timed:
        done = train(model, data, cfg, callback=lambda ev: steps.append(ev.global_step) if ev.kind == "step" else None)
    frames = done.movie.frames if done.movie is not None else 0
    return {"seconds": done.train_seconds, "record_s": timed.seconds, "frames": frames,
            "steps": steps[-1] if steps else 0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--configs", default="mlp2,mlp16,conv16")
    p.add_argument("--epochs", default="3", help="comma-separated epoch counts, one row each")
    p.add_argument("--budget", type=float, default=60.0, help="a time-budget row for mlp2 (0: none)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="mlp2, 1 epoch, a 15 s budget, one repeat")
    args = p.parse_args(argv)
    if args.quick:
        args.configs, args.epochs, args.budget, args.repeats = "mlp2", "1", 15.0, 1
    from vae.data import load_dataset

    torch.set_num_threads(args.threads)
    data = load_dataset("mnist", args.data_dir, download=False)
    rows = []
    for name in args.configs.split(","):
        for epochs in map(int, args.epochs.split(",")):
            runs = {True: [], False: []}
            for r in range(args.repeats):
                for movie in ((True, False) if r % 2 == 0 else (False, True)):
                    runs[movie].append(one(data, name, movie, epochs, None, args.threads, args.device))
                    log(f"{name} {epochs} ep movie={movie}: {runs[movie][-1]}")
            on, off = ([x["seconds"] for x in runs[m]] for m in (True, False))
            rows.append((f"{name}, {epochs} ep", runs[True][0]["frames"],
                         1000 * statistics.median(x["record_s"] / max(1, x["frames"]) for x in runs[True]),
                         f"{min(off):.1f}-{max(off):.1f}", f"{min(on):.1f}-{max(on):.1f}",
                         f"{100 * (statistics.median(on) / statistics.median(off) - 1):+.1f}%",
                         f"{100 * statistics.median(x['record_s'] / x['seconds'] for x in runs[True]):.1f}%"))
    if args.budget:
        runs = {m: one(data, "mlp2", m, None, args.budget, args.threads, args.device) for m in (True, False)}
        log(f"mlp2 budget {args.budget:g} s: {runs}")
        on = runs[True]
        rows.append((f"mlp2, {args.budget:g} s budget", on["frames"], 1000 * on["record_s"] / max(1, on["frames"]),
                     f"{runs[False]['steps']} steps", f"{on['steps']} steps",
                     f"{100 * (on['steps'] / max(1, runs[False]['steps']) - 1):+.1f}% steps",
                     f"{100 * on['record_s'] / on['seconds']:.1f}%"))
    print(f"threads {args.threads}, device {args.device}, {args.repeats} repeat(s) each side, interleaved; "
          f"target: recording < {100 * TARGET:.0f}% of the training time")
    print("| training | frames | ms/frame | without movie (s) | with movie (s) | wall overhead | share recording |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(f"{v:.0f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
