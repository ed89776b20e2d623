"""Training benchmark (issue 2): the project's trainer against the classic PyTorch VAE recipe.

    PYTHONPATH=. python benchmarks/bench_train.py --data-dir ../shared/data          # about 7 minutes on 2 idle cores
    PYTHONPATH=. python benchmarks/bench_train.py --data-dir ../shared/data --quick  # smoke run

In one run on one machine, each training in its own subprocess (so its peak RSS is its own,
read with os.wait4, and thread settings cannot leak between runs):

  base   `import torch` alone, the floor under every peak RSS below.
  ref    the pytorch/examples vae/main.py recipe: torchvision MNIST with a per-item ToTensor
         through a DataLoader (batch 128, shuffled), MLP 784-400-20 (fc1, fc21, fc22, fc3, fc4),
         Adam 1e-3, 10 epochs, BCE summed + KL; test loss per image after every epoch.
  race   vae.train.train on the reference's network (MLP 784-400-20) with the default TrainConfig and a
         time budget of the reference's time / 5: when does it first reach the reference's
         final test loss?
  20d    a 20-d VAE (hidden 512, 256, the app's default) trained for 120 s; its test nats (target <= 100).
  2d     a 2-d VAE (hidden 512, 256) trained for 120 s; its test nats (target <= 150).

Clocks. The reference's clock stops while it evaluates on the test set (its slow per-item
test loader is not held against it); the project's clock is the trainer's own `elapsed_s`,
which includes its per-epoch test evaluation. Both choices favour the reference. The
project's time to the target is the end of the first epoch whose test loss is at or below
the reference's final loss, so it is rounded up to an epoch boundary.

Progress goes to stderr; the table goes to stdout. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_EXAMPLE_NATS = 105.6  # pytorch/examples vae after 10 epochs (its README's log)
TARGET_SPEEDUP = 5.0
TARGET_20D = 100.0
TARGET_2D = 150.0
TARGET_RSS_MB = 1024.0


def log(msg: str) -> None:
    print(f"[bench_train {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ children (run in subprocesses)

def child_reference(args) -> dict:
    """The pytorch/examples VAE recipe, kept as close to vae/main.py as a CPU run allows."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torchvision import datasets, transforms

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 400)
            self.fc21 = nn.Linear(400, 20)
            self.fc22 = nn.Linear(400, 20)
            self.fc3 = nn.Linear(20, 400)
            self.fc4 = nn.Linear(400, 784)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            return mu + torch.randn_like(std) * std

        def decode(self, z):
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 784))
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar

    def loss_function(recon_x, x, mu, logvar):
        bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    train_set = datasets.MNIST(args.data_dir, train=True, download=False, transform=transforms.ToTensor())
    test_set = datasets.MNIST(args.data_dir, train=False, download=False, transform=transforms.ToTensor())
    if args.train_subset:
        train_set = torch.utils.data.Subset(train_set, range(args.train_subset))
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=128, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=128, shuffle=False)
    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    history = {"epoch": [], "test_nats": [], "train_s": [], "wall_s": []}
    train_clock = 0.0
    t_wall = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        for data, _ in train_loader:
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            loss = loss_function(recon, data, mu, logvar)
            loss.backward()
            optimizer.step()
        train_clock += time.perf_counter() - t0
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for data, _ in test_loader:
                recon, mu, logvar = model(data)
                test_loss += loss_function(recon, data, mu, logvar).item()
        test_loss /= len(test_loader.dataset)
        for k, v in zip(history, (epoch, test_loss, train_clock, time.perf_counter() - t_wall)):
            history[k].append(v)
        log(f"reference epoch {epoch}/{args.epochs}: test {test_loss:.2f} nats, "
            f"{train_clock:.1f} s training ({time.perf_counter() - t_wall:.1f} s with evaluation)")
    return {"history": history, "final_nats": history["test_nats"][-1], "train_s": train_clock,
            "threads": torch.get_num_threads()}


def child_project(args) -> dict:
    """vae.train.train with the default TrainConfig and a time budget."""
    import torch

    from vae.config import ModelConfig, parse_hidden
    from vae.data import Dataset, load_dataset
    from vae.events import EpochEvent
    from vae.models import build_model
    from vae.train import TrainConfig, default_lr, train

    data = load_dataset("mnist", args.data_dir, download=False)
    if args.train_subset:
        data = Dataset(data.name, data.x_train[:args.train_subset], data.y_train[:args.train_subset],
                       data.x_test, data.y_test, data.source)
    mcfg = ModelConfig(kind="vae", arch="mlp", latent_dim=args.latent_dim, hidden=parse_hidden(args.hidden))
    # epochs=1000: the time budget, not the default 20 epochs, ends the run (as in the CLI)
    tcfg = TrainConfig(epochs=1000, time_budget=args.budget, threads=args.threads, seed=args.seed)
    model = build_model(mcfg, seed=args.seed)

    def progress(ev):
        if isinstance(ev, EpochEvent):
            log(f"{args.label} epoch {ev.epoch}: test {ev.test['nats']:.2f} nats at {ev.elapsed_s:.1f} s")

    done = train(model, data, tcfg, callback=progress)
    h = done.history
    return {"history": {"epoch": h["epoch"], "test_nats": h["test_nats"], "elapsed_s": h["elapsed_s"]},
            "final_nats": h["test_nats"][-1] if h["test_nats"] else float("nan"),
            "train_s": done.train_seconds, "stop_reason": done.reason, "threads": torch.get_num_threads(),
            "config": {"train": {**{k: getattr(tcfg, k) for k in ("epochs", "batch_size", "time_budget")},
                                 "lr": tcfg.lr or default_lr(mcfg)},
                       "model": mcfg.to_dict()}}


def run_child(kind: str, out_json: Path, argv: list[str]) -> tuple[dict, float]:
    """Run one training in a fresh interpreter; return its result and its peak RSS in MB."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--child-out", str(out_json), *argv]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)  # stderr: live progress
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not the sum of all children
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} run exited with code {proc.returncode} (see its stderr above)")
    return json.loads(out_json.read_text()), usage.ru_maxrss / 1024.0  # Linux: kilobytes


def first_reach(history: dict, target: float) -> float | None:
    for nats, t in zip(history["test_nats"], history["elapsed_s"]):
        if nats <= target:
            return t
    return None


# ------------------------------------------------------------------ parent

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("LATENT_LAB_DATA") or str(ROOT.parent / "shared" / "data"),
                   help="root holding MNIST/raw (default: $LATENT_LAB_DATA or ../shared/data)")
    p.add_argument("--threads", type=int, default=None, help="torch threads for every run (default: torch's)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 reference epoch on 6,000 digits, 5 s budgets; figures are meaningless")
    p.add_argument("--budget", type=float, default=None, help="seconds for the 20-d and 2-d runs (default 120)")
    p.add_argument("--race-budget", type=float, default=None,
                   help="time budget of the race run (default: the reference's time / 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write all results to this JSON file")
    # internal: one training in a subprocess
    p.add_argument("--child", choices=("ref", "project", "baseline"), help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=10, help=argparse.SUPPRESS)
    p.add_argument("--train-subset", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--latent-dim", type=int, default=20, help=argparse.SUPPRESS)
    p.add_argument("--hidden", default="512,256", help=argparse.SUPPRESS)
    p.add_argument("--label", default="project", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        if args.child == "baseline":  # what `import torch` alone costs, to read the peaks against
            import torch  # noqa: F401

            result = {}
        else:
            result = child_reference(args) if args.child == "ref" else child_project(args)
        Path(args.child_out).write_text(json.dumps(result))
        return 0

    budget = args.budget or (5.0 if args.quick else 120.0)
    common = ["--data-dir", args.data_dir, "--seed", str(args.seed)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    if args.quick:
        common += ["--train-subset", "6000"]
    results: dict = {"quick": args.quick, "cpu_count": os.cpu_count(), "threads": args.threads}
    rss: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))

    def attempt(name, kind, extra):
        try:
            res, peak = run_child(kind, tmp / f"{name}.json", common + extra)
            results[name] = res
            rss[name] = peak
            return res
        except Exception as e:  # one failed run still leaves the others' figures
            results[name] = {"error": f"{type(e).__name__}: {e}"}
            log(f"{name} failed: {e}")
            return None

    attempt("baseline", "baseline", [])
    ref_epochs = 1 if args.quick else 10
    log(f"reference recipe: {ref_epochs} epoch(s) through a DataLoader")
    ref = attempt("reference", "ref", ["--epochs", str(ref_epochs)])
    if ref:  # the reference's time to its own final loss: its first epoch at or below it (usually the last)
        h = ref["history"]
        ref["time_to_final_s"] = next(t for n, t in zip(h["test_nats"], h["train_s"]) if n <= ref["final_nats"])
    race_budget = args.race_budget or (
        ref["time_to_final_s"] / TARGET_SPEEDUP if ref else (5.0 if args.quick else 60.0))
    log(f"project trainer, 20-d VAE, time budget {race_budget:.1f} s (the reference's time / {TARGET_SPEEDUP:g})")
    # The race trains the reference's own network (784-400-20): the same model, the project's trainer.
    race = attempt("race", "project", ["--budget", f"{race_budget:.3f}", "--label", "race", "--hidden", "400"])
    log(f"project trainer, 20-d VAE, {budget:g} s")
    v20 = attempt("vae20", "project", ["--budget", str(budget), "--label", "20-d"])
    log(f"project trainer, 2-d VAE, {budget:g} s")
    v2 = attempt("vae2", "project", ["--budget", str(budget), "--latent-dim", "2", "--label", "2-d"])
    results["peak_rss_mb"] = rss

    # ---- the table
    rows = []

    def row(figure, measured, target="", ok=None):
        rows.append((figure, measured, target, "" if ok is None else ("yes" if ok else "NO")))

    def na(res, what="run"):
        return f"n/a ({res['error']})" if isinstance(res, dict) and "error" in res else f"n/a (no {what})"

    target = ref["final_nats"] if ref else None
    if ref:
        row(f"reference: test nats after {ref_epochs} epochs", f"{target:.2f}",
            f"~{REFERENCE_EXAMPLE_NATS} (pytorch/examples)")
        row("reference: training time to its final loss", f"{ref['time_to_final_s']:.1f} s")
    else:
        row("reference: test nats", na(results["reference"]))
    t_race = None
    if race and target is not None:
        t_race = first_reach(race["history"], target)
        if t_race is None:
            t20 = first_reach(v20["history"], target) if v20 else None
            row(f"project (budget {race_budget:.0f} s): time to {target:.2f} nats",
                f"not reached (best {min(race['history']['test_nats'], default=float('nan')):.2f})"
                + (f"; the {budget:g} s run reached it at {t20:.1f} s" if t20 else ""))
        else:
            row(f"project (budget {race_budget:.0f} s): time to {target:.2f} nats", f"{t_race:.1f} s")
    else:
        row("project: time to the reference's loss", na(results["race"]) if not race else "n/a (no reference)")
    if t_race:
        speedup = ref["time_to_final_s"] / t_race
        row("speed-up to the reference's quality", f"{speedup:.1f}x", f">= {TARGET_SPEEDUP:g}x",
            speedup >= TARGET_SPEEDUP)
    elif race and target is not None:
        row("speed-up to the reference's quality", f"< {TARGET_SPEEDUP:g}x (not reached in ref/{TARGET_SPEEDUP:g})",
            f">= {TARGET_SPEEDUP:g}x", False)
    else:
        row("speed-up to the reference's quality", "n/a (a run failed)", f">= {TARGET_SPEEDUP:g}x")
    for res, label, tgt in ((v20, "20-d", TARGET_20D), (v2, "2-d", TARGET_2D)):
        key = "vae20" if label == "20-d" else "vae2"
        if res:
            row(f"{label} VAE test nats after {res['train_s']:.0f} s ({len(res['history']['epoch'])} epochs)",
                f"{res['final_nats']:.2f}", f"<= {tgt:g}", res["final_nats"] <= tgt)
        else:
            row(f"{label} VAE test nats after {budget:g} s", na(results[key]), f"<= {tgt:g}")
    for name, peak in rss.items():
        if name == "baseline":
            row("peak RSS: python + import torch (no training)", f"{peak:.0f} MB")
        else:
            row(f"peak RSS: {name} run", f"{peak:.0f} MB", f"< {TARGET_RSS_MB:.0f} MB",
                peak < TARGET_RSS_MB if name != "reference" else None)

    print(f"\nTraining benchmark on {os.cpu_count()} CPU cores, torch threads: {args.threads or 'default'}"
          + ("  [--quick: smoke run, figures not meaningful]" if args.quick else ""))
    widths = [max(len(str(r[i])) for r in rows + [("figure", "measured", "target", "ok?")]) for i in range(4)]
    for i, r in enumerate([("figure", "measured", "target", "ok?")] + rows):
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    if ref and race:
        print("\nTest nats by elapsed time (reference: training clock; project: trainer clock):")
        print("  reference: " + ", ".join(f"{t:.0f}s {n:.1f}" for n, t in
                                          zip(ref["history"]["test_nats"], ref["history"]["train_s"])))
        for name in ("race", "vae20", "vae2"):
            res = results.get(name)
            if res and "history" in res:
                print(f"  {name}: " + ", ".join(f"{t:.0f}s {n:.1f}" for n, t in
                                                 zip(res["history"]["test_nats"], res["history"]["elapsed_s"])))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
