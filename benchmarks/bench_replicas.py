"""The class load through HAProxy against N replicas vs one process, figures printed.

    python -m benchmarks.bench_replicas                                   # direct vs 2 replicas, 20/35/50 students
    python -m benchmarks.bench_replicas --setups direct,1,2 --students 35 --minutes 2
    python -m benchmarks.bench_replicas --students 5 --minutes 0.5        # smoke run

For each setup and each class size it runs bench_class's simulated students (benchmarks/st_client.py over
Streamlit's websocket protocol, touring every page, changing widgets, fetching the pages' images) for
--minutes against:

- `direct`: one `streamlit run app.py` (bench_app's Server), students connecting to it;
- `N` (a number): `deploy/replicas.sh N`, N replicas on one fresh shared folder behind HAProxy with its
  sticky cookie (deploy/haproxy.cfg); each simulated student keeps the LLSERVER cookie its websocket got,
  and sends it with its image requests, as a browser does.

Each run starts on fresh folders (nothing cached from before but numba's compiled UMAP). It prints one row
per run (runs a second, rerun p50/p95, failed sessions, exceptions, the RSS of everything started, the load
average) and, per setup, the highest load held at p95 <= 750 ms. No trainings by default (--trainers):
with the embedded queue they run on one replica, which would measure the trainer, not the replicas.
Only 127.0.0.1; figures, not asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks import bench_class
from benchmarks.bench_app import DEFAULT_DATA_DIR, Server, app_env, free_port, mb
from benchmarks.bench_class import TARGET_P95_S, Class, pct, run_class
from benchmarks.st_client import Session
from vae.paths import ROOT

COOKIE = "LLSERVER"


def log(msg: str) -> None:
    print(f"[bench_replicas {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class StickySession(Session):
    """A simulated student that keeps the proxy's stickiness cookie, as a browser keeps it."""

    cookie = ""
    sticky = 0  # sessions that got the cookie (all of them behind the proxy, none direct)

    async def connect(self, timeout: float = 10.0) -> None:
        await super().connect(timeout)
        for value in self.ws.response.headers.get_all("Set-Cookie"):
            name, _, rest = value.partition("=")
            if name.strip() == COOKIE:
                self.cookie = f"{COOKIE}={rest.split(';')[0]}"
                StickySession.sticky += 1

    async def _get(self, path: str, timeout: float) -> int:
        async def go() -> int:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                cookie = f"Cookie: {self.cookie}\r\n" if self.cookie else ""
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{cookie}"
                             "Connection: close\r\n\r\n".encode())
                await writer.drain()
                data = await reader.read()
            finally:
                writer.close()
            head = data.partition(b"\r\n\r\n")[0]
            status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
            if status != 200:
                raise OSError(f"HTTP {status} for {path}")
            return len(data) - len(head) - 4
        return await asyncio.wait_for(go(), timeout)


def _descendants(root: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        out.extend(kids)
        todo.extend(kids)
    return out


class Fleet:
    """`deploy/replicas.sh N` as bench_class's sampler sees a server: `proc` (the script) and `children()`
    (every replica, its map workers, the proxy)."""

    def __init__(self, n: int, env: dict, port: int, first: int, log_path: Path):
        env = dict(env, LATENT_LAB_PROXY_PORT=str(port), LATENT_LAB_REPLICA_PORT=str(first))
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(["bash", str(ROOT / "deploy" / "replicas.sh"), str(n)], env=env, cwd=ROOT,
                                     stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, timeout: float = 240) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("deploy/replicas.sh exited early")
            try:
                urllib.request.urlopen(self.url + "/_stcore/health", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"the proxy did not answer within {timeout:.0f} s")

    def children(self, stats=None) -> list[int]:
        return _descendants(self.proc.pid)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _consecutive_free(n: int) -> int:
    for _ in range(100):
        port = free_port()
        try:
            for k in range(1, n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + k))
            return port
        except OSError:
            continue
    raise RuntimeError(f"no {n} consecutive free ports")


def one_run(setup: str, students: int, args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-replicas-{setup}-"))
    env = app_env(tmp / "home", tmp / "cache", args.data_dir)
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".pytest_cache" / "numba"))  # compiled once, as in the tests
    load0 = float(Path("/proc/loadavg").read_text().split()[0])
    if setup == "direct":
        port = free_port()
        env.pop("LATENT_LAB_CACHE", None)
        server = Server(env, port, tmp / "server.log")
    else:
        n = int(setup)
        port = free_port()
        server = Fleet(n, env, port, _consecutive_free(n), tmp / "replicas.log")
    StickySession.sticky = 0
    try:
        server.wait_healthy()
        c = Class(port=port, minutes=args.minutes, think=args.think, timeout=args.timeout, ramp=args.ramp,
                  train_budget=25.0, media=not args.no_media)

        async def go():
            c.closing = asyncio.Event()
            c.t0 = time.perf_counter()
            await run_class(c, server, students, args.trainers, args.seed)
        asyncio.run(go())
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    lat = sorted(r.seconds for r in c.records)
    loads = [s["load1"] for s in c.samples]
    rss = max((s["server"] + sum(r for _, r in s["kids"].values()) for s in c.samples), default=0)
    return {"setup": setup, "students": students, "runs_s": len(lat) / (args.minutes * 60 + args.ramp),
            "p50": pct(lat, 50), "p95": pct(lat, 95), "failed": len(c.failed), "exceptions": len(c.exceptions),
            "media_failed": c.fetched[2], "media": c.fetched[0], "rss": rss, "load0": load0,
            "load": sum(loads) / max(1, len(loads)), "sticky": StickySession.sticky,
            "why": sorted(set(c.failed.values()))[:3], "stalls": c.stalls[:2]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setups", default="direct,2", help="comma-separated: direct, or a number of replicas")
    p.add_argument("--students", default="20,35,50", help="class sizes, comma-separated (each at most 200)")
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--think", type=float, default=3.0)
    p.add_argument("--trainers", type=int, default=0)
    p.add_argument("--ramp", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-media", action="store_true")
    args = p.parse_args(argv)
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    if any(s != "direct" and not (s.isdigit() and 1 <= int(s) <= 16) for s in setups):
        p.error("--setups: each is 'direct' or a number of replicas from 1 to 16")
    if any(s != "direct" for s in setups) and shutil.which("haproxy") is None:
        p.error("haproxy is not installed (apt-get install haproxy)")
    sizes = [int(x) for x in args.students.split(",")]
    if not all(1 <= x <= bench_class.MAX_STUDENTS for x in sizes) or not 0 < args.minutes <= 30:
        p.error(f"--students: each 1 to {bench_class.MAX_STUDENTS}; --minutes above 0, at most 30")
    bench_class.Session = StickySession  # every simulated student keeps its proxy cookie

    rows = []
    for n in sizes:  # the setups take turns at each size, so they meet much the same other work on the machine
        for setup in setups:
            log(f"{setup}: {n} students for {args.minutes:g} min (think {args.think:g} s)")
            rows.append(one_run(setup, n, args))
            r = rows[-1]
            log(f"  {r['runs_s']:.1f} runs/s, p95 {r['p95'] * 1000:.0f} ms, {r['failed']} failed, load {r['load']:.1f}, "
                f"{r['sticky']} sessions with the proxy's cookie")
            for why in r["why"] + r["stalls"]:
                log(f"    {why[:300]}")
    print(f"\nClass load through the proxy: {args.minutes:g} min per run, think {args.think:g} s, "
          f"{args.trainers} trainers, {os.cpu_count()} CPU cores")
    print(f"{'setup':<12} {'students':>8} {'runs/s':>7} {'p50':>7} {'p95':>7} {'failed':>6} {'exc':>4} "
          f"{'img failed':>10} {'RSS peak':>9} {'load before/mean':>17}")
    for r in rows:
        name = "1 process" if r["setup"] == "direct" else f"{r['setup']} replicas"
        print(f"{name:<12} {r['students']:>8} {r['runs_s']:>7.1f} {r['p50'] * 1000:>5.0f}ms {r['p95'] * 1000:>5.0f}ms "
              f"{r['failed']:>6} {r['exceptions']:>4} {r['media_failed']:>4}/{r['media']:<5} {mb(r['rss']):>9} "
              f"{r['load0']:>8.1f}/{r['load']:.1f}")
    print(f"\nHighest load held at p95 <= {TARGET_P95_S * 1000:.0f} ms with no failed session:")
    for setup in setups:
        held = [r for r in rows if r["setup"] == setup and r["p95"] <= TARGET_P95_S and not r["failed"]]
        best = max(held, key=lambda r: r["runs_s"], default=None)
        name = "1 process" if setup == "direct" else f"{setup} replicas"
        print(f"  {name:<12} " + (f"{best['runs_s']:.1f} runs/s ({best['students']} students)" if best
                                  else "none of the loads tried"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
