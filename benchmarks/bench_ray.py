"""Trainings on Ray (issue 18): many at once, none lost, and a web replica killed mid-training.

    python -m benchmarks.bench_ray                # 10 trainings of 5 s each per backend, about 5 minutes
    python -m benchmarks.bench_ray --quick        # 3 trainings of 2 s: a smoke run, its figures mean nothing

What one run does, every training a 2-d MLP AE (hidden 32) on MNIST with a time budget of --budget seconds,
one thread each (LATENT_LAB_TRAIN_THREADS=1), in a fresh LATENT_LAB_HOME:

  0. one warm-up training, not counted, so that neither backend pays for a cold disk cache;
  1. embedded: --trainings submitted at once to the embedded queue with 2 slots (2 trainers of 1 thread:
     the machine's 2 cores); the wall time until every one has ended, and how many are done;
  2. ray: the same, through vae.jobs.make_queue with LATENT_LAB_RAY_ADDRESS naming a local head with
     2 CPUs (tests/ray_head.py), so Ray runs 2 at once and keeps the rest waiting;
  3. replica killed, both backends: a child process (the "web replica") makes the queue, submits
     --kill-trainings trainings and is killed with SIGKILL once one of them has taken its first steps;
     then a new queue on the same folder (or cluster) waits for all of them. The embedded queue's
     trainings die with their server (the lifeline: by design, on one machine), so they are recorded as
     interrupted; Ray's belong to the cluster and must all finish.

The head is started only for steps 2 and 3 and stopped after. Figures, not asserts; the table goes to
stdout, progress to stderr. On a machine shared with other work the wall times are inflated: say so.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = {"kind": "ae", "arch": "mlp", "latent_dim": 2, "hidden": [32]}
REPLICA = """\
import json, signal, sys
from vae.jobs import make_queue
n, budget = int(sys.argv[1]), float(sys.argv[2])
q = make_queue(max_running=2, max_per_user=100)
ids = [q.submit(json.loads(sys.argv[3]), {"time_budget": budget}, "mnist", None, f"replica {i}") for i in range(n)]
print(json.dumps(ids), flush=True)
signal.pause()
"""


def log(msg: str) -> None:
    print(f"[bench_ray {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_all(q, ids: list[str], timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while True:
        states = [q.status(j) for j in ids]
        if all(s is not None and s.finished for s in states) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def many_at_once(n: int, budget: float, timeout: float) -> dict:
    from vae.jobs import make_queue

    q = make_queue(max_running=2, max_per_user=n + 1, max_queued=max(32, n))
    began = time.monotonic()
    ids = [q.submit(MODEL, {"time_budget": budget}, "mnist", None, f"bench {i}") for i in range(n)]
    log(f"{type(q).__name__}: {n} submitted in {time.monotonic() - began:.2f} s")
    states = wait_all(q, ids, timeout)
    wall = time.monotonic() - began
    q.shutdown(timeout=30)
    done = sum(s is not None and s.state == "done" for s in states)
    errors = sorted({s.error for s in states if s is not None and s.error})
    return {"submitted": n, "done": done, "lost": n - done, "wall_s": round(wall, 1), "errors": errors}


def replica_killed(n: int, budget: float, timeout: float) -> dict:
    """A replica submits n trainings and is SIGKILLed once one has taken steps; a new queue waits for them."""
    from vae.jobs import make_queue

    replica = subprocess.Popen([sys.executable, "-c", REPLICA, str(n), str(budget), json.dumps(MODEL)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    ids = json.loads(replica.stdout.readline())
    viewer = make_queue(runner=False)  # only looks (the embedded one must not take the folder yet)
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if any((s := viewer.status(j)) is not None and s.state == "running" and s.step > 0 for j in ids):
            break
        time.sleep(0.2)
    running = sum((s := viewer.status(j)) is not None and s.state == "running" for j in ids)
    replica.send_signal(signal.SIGKILL)
    replica.wait()
    log(f"replica killed with {running} of {n} trainings running")
    q = make_queue(max_running=2, max_per_user=n + 1)  # the replica that comes back (or another one)
    states = wait_all(q, ids, timeout)
    q.shutdown(timeout=30)
    done = sum(s is not None and s.state == "done" for s in states)
    return {"submitted": n, "running_at_kill": running, "done": done, "lost": n - done,
            "errors": sorted({s.error for s in states if s is not None and s.error})}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trainings", type=int, default=10)
    p.add_argument("--budget", type=float, default=5.0, help="each training's time budget, seconds")
    p.add_argument("--kill-trainings", type=int, default=4)
    p.add_argument("--data-dir", default=os.environ.get("LATENT_LAB_DATA") or str(ROOT.parent / "shared" / "data"))
    p.add_argument("--timeout", type=float, default=900.0, help="per step, seconds")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.trainings, args.budget, args.kill_trainings = 3, 2.0, 2
    home = tempfile.mkdtemp(prefix="bench-ray-")
    os.environ.update(LATENT_LAB_HOME=f"{home}/home", XDG_CACHE_HOME=f"{home}/cache", LATENT_LAB_DATA=args.data_dir,
                      LATENT_LAB_TRAIN_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    for inherited in ("LATENT_LAB_RAY_ADDRESS", "LATENT_LAB_CACHE"):  # a live cluster's, a live queue's folder
        os.environ.pop(inherited, None)
    from tests.ray_head import LocalHead

    log("warm-up: one training, not counted (the first one reads torch and MNIST from disk)")
    many_at_once(1, 1.0, args.timeout)
    results: dict = {"load_before": os.getloadavg()[0]}
    log("embedded: many at once")
    results["embedded"] = many_at_once(args.trainings, args.budget, args.timeout)
    log("embedded: replica killed")
    os.environ["XDG_CACHE_HOME"] = f"{home}/cache-kill"  # a folder of its own
    results["embedded_kill"] = replica_killed(args.kill_trainings, args.budget, args.timeout)
    log("starting a local Ray head with 2 CPUs")
    began = time.monotonic()
    with LocalHead(num_cpus=2) as head:
        results["head_start_s"] = round(time.monotonic() - began, 1)
        os.environ["LATENT_LAB_RAY_ADDRESS"] = head.address
        log("ray: many at once")
        results["ray"] = many_at_once(args.trainings, args.budget, args.timeout)
        log("ray: replica killed")
        os.environ["LATENT_LAB_HOME"] = f"{home}/home-kill"
        results["ray_kill"] = replica_killed(args.kill_trainings, args.budget, args.timeout)
    results["load_after"] = os.getloadavg()[0]

    e, r, ek, rk = results["embedded"], results["ray"], results["embedded_kill"], results["ray_kill"]
    rows = [
        ("embedded: trainings done / submitted", f"{e['done']} / {e['submitted']}", "all", e["lost"] == 0),
        ("embedded: wall time, all at once", f"{e['wall_s']} s", "", None),
        ("ray: trainings done / submitted", f"{r['done']} / {r['submitted']}", "all", r["lost"] == 0),
        ("ray: wall time, all at once", f"{r['wall_s']} s", "about the embedded one's",
         r["wall_s"] <= 1.5 * e["wall_s"]),
        ("ray / embedded wall time", f"{r['wall_s'] / e['wall_s']:.2f}", "about 1", None),
        ("ray: replica killed, trainings lost", f"{rk['lost']} of {rk['submitted']} ({rk['running_at_kill']} running)",
         "0", rk["lost"] == 0),
        ("embedded: replica killed, trainings lost",
         f"{ek['lost']} of {ek['submitted']} ({ek['running_at_kill']} running)", "(by design: the lifeline)", None),
        ("ray head start", f"{results['head_start_s']} s", "", None),
        ("load average before / after", f"{results['load_before']:.1f} / {results['load_after']:.1f}", "", None),
    ]
    head = ("figure", "measured", "target", "ok?")
    table = [head] + [(a, b, c, "" if ok is None else ("yes" if ok else "NO")) for a, b, c, ok in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    for name in ("embedded", "ray", "embedded_kill", "ray_kill"):
        for error in results[name]["errors"]:
            print(f"{name}: {error}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
