"""Class-load benchmark: a class of simulated students against one real server, figures printed.

    python -m benchmarks.bench_class                              # 35 students, 3 minutes
    python -m benchmarks.bench_class --students 3 --minutes 1     # smoke run
    python -m benchmarks.bench_class --students 35 --think 2 --trainers 3 --keep
    python -m benchmarks.bench_class --pages "Latent map,Welcome"  # tour only some pages

What one run does:

  1. starts `python -m streamlit run app.py` on 127.0.0.1 with a fresh LATENT_LAB_HOME and
     XDG_CACHE_HOME in a temp folder and LATENT_LAB_DATA pointing at the data (bench_app's Server);
  2. lets --students simulated students join over --ramp seconds, each one a Streamlit session
     over its own websocket (benchmarks/st_client.py: Streamlit's own protocol, no browser). Each
     opens the default page, then tours every page of the app's navigation in a random order,
     again and again; on each page it changes 1-3 widgets found in the page's deltas (a radio, a
     select_slider, a number_input, ...: any value-carrying widget except those that delete,
     rename, upload or cancel), thinking --think seconds (x 0.5-1.5) before every action, and
     fetches the page's images over HTTP as a browser would. Fragments with run_every rerun by
     themselves as in the browser. The first --trainers students go to Train & library first,
     set the time budget to --train-budget seconds and press "Start training", then tour on;
  3. times every run a student asked for, from sending the BackMsg to its script_finished
     (through st.rerun() chains; a run whose script_finished Streamlit never sent counts as
     finished at its last message, and is counted apart); a run that has not finished within
     --timeout seconds, a lost connection or a failed connect makes its session a failed one;
     exception elements in the deltas count as exceptions;
  4. samples the server's RSS, its children's (map workers, trainings) and the load average every
     second from /proc; stops the students after --minutes, takes the end figures with every
     session still open, then closes them and stops the server.

Only 127.0.0.1, a bounded number of students (at most 200) and a bounded time (--minutes plus
the ramp and one --timeout); figures, not asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.bench_app import DEFAULT_DATA_DIR, Server, Table as _Table, app_env, free_port, mb
from benchmarks.st_client import CHANGEABLE, Session, Widget

TRAIN_PAGE = "Train & library"
SKIP_KEYS = re.compile(r"delete|rename|upload|cancel|custom_dir", re.I)  # destructive or off the tour
MAX_STUDENTS = 200
TARGET_P95_S = 0.750
TARGET_RSS = 1.5e9


def log(msg: str) -> None:
    print(f"[bench_class {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Table(_Table):
    def add(self, figure: str, measured: str, target: str = "", ok: bool | None = None) -> None:
        self.rows.append((figure, measured, target, "" if ok is None else ("yes" if ok else "NO")))


@dataclass
class Record:
    student: int
    page: str
    action: str
    seconds: float
    status: str  # ok, error, timeout, closed
    at: float  # seconds since the first student joined


@dataclass
class Class:
    """What the students share: the clock, the settings and everything measured."""

    port: int
    minutes: float
    think: float
    timeout: float
    ramp: float
    train_budget: float
    media: bool
    pages: list[str] | None = None  # tour only these page titles (None: every page)
    t0: float = field(default_factory=time.perf_counter)
    records: list[Record] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    exceptions: list[tuple[int, str, str]] = field(default_factory=list)  # student, page, message
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # st.error alerts
    notes: list[str] = field(default_factory=list)
    stalls: list[str] = field(default_factory=list)  # what the first timed-out runs had received
    lost: list[str] = field(default_factory=list)  # runs whose script_finished never came (st_client)
    connected: int = 0
    trainings_asked: int = 0
    fetched: list[int] = field(default_factory=lambda: [0, 0, 0])  # images fetched, their bytes, failed
    fragment_runs: list[float] = field(default_factory=list)
    auto_reruns: int = 0
    samples: list[dict] = field(default_factory=list)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    busy: int = 0  # students inside a run right now
    end: dict | None = None  # the last sample, every session still open

    def left(self) -> float:
        return self.t0 + self.ramp + self.minutes * 60 - time.perf_counter()

    def fail(self, i: int, why: str) -> None:
        self.failed.setdefault(i, why)

    async def pause(self, rng: random.Random) -> bool:
        """Wait one think time (cut short at the end); False when the time is up."""
        await asyncio.sleep(max(0.0, min(self.think * rng.uniform(0.5, 1.5), self.left())))
        return self.left() > 0


async def ask(c: Class, i: int, s: Session, page: str, action: str, **kw):
    c.busy += 1
    try:
        r = await s.rerun(timeout=c.timeout, **kw)
    finally:
        c.busy -= 1
    c.records.append(Record(i, page, action, r.seconds if r.seconds is not None else c.timeout, r.status,
                            round(r.t0 - c.t0, 2)))
    if r.lost_finish:
        c.lost.append(f"student {i}, {page}: {action}, asked at {r.t0 - c.t0:.1f} s")
    if r.status == "timeout":
        c.fail(i, f"a run ({page}: {action}) did not finish within {c.timeout:g} s")
        if len(c.stalls) < 3:
            c.stalls.append(f"student {i}, {page}: {action}, asked at {r.t0 - c.t0:.1f} s; {r.messages} messages, "
                            "the last: " + "; ".join(f"{t:.2f} s {w}" for t, w in r.trace))
    elif r.status == "closed":
        c.fail(i, f"connection lost ({page}: {action}): {'; '.join(r.errors)[:150]}")
    c.exceptions.extend((i, page, e) for e in r.exceptions)
    c.errors.extend((i, page, e) for e in r.errors if r.status in ("ok", "error"))
    if c.media and r.media and r.status == "ok":
        n, nbytes, bad = await s.fetch_media(r.media)
        c.fetched[0] += n
        c.fetched[1] += nbytes
        c.fetched[2] += bad
    return r


def pick_widget(s: Session, rng: random.Random, frame_only: bool) -> Widget | None:
    """A widget a student would change now: mostly on the page, now and then the sidebar's."""
    ok = [w for w in s.widgets.values() if w.kind in CHANGEABLE and not w.disabled
          and not (w.key and SKIP_KEYS.search(w.key)) and not (frame_only and not w.sidebar)]
    main = [w for w in ok if not w.sidebar]
    side = [w for w in ok if w.sidebar]
    pool = side if (side and (not main or rng.random() < 0.1)) else main
    return rng.choice(pool) if pool else None


async def start_training(c: Class, i: int, s: Session, rng: random.Random) -> bool:
    """Set a short time budget and press Start training on the page now shown."""
    stop = s.find(key="train_stop")
    if stop is not None and stop.options and "time" not in str(stop.value):
        timed = next((o for o in stop.options if "time" in o), None)
        if timed and await c.pause(rng):
            s.change(stop, timed)
            await ask(c, i, s, TRAIN_PAGE, "training: stop after a time budget", fragment_id=stop.fragment_id)
    budget = s.find(key="train_budget") or next((w for w in s.widgets.values() if "budget" in w.label.lower()), None)
    if budget is not None and await c.pause(rng):
        s.change(budget, int(c.train_budget) if budget.is_int else float(c.train_budget))
        await ask(c, i, s, TRAIN_PAGE, "training: set the time budget", fragment_id=budget.fragment_id)
    elif budget is None:
        c.notes.append(f"student {i}: no time-budget input on {TRAIN_PAGE}; trained with the page's default")
    button = s.find(key="train_start") or s.find(label="Start training")
    if button is None:
        c.notes.append(f"student {i}: no 'Start training' button on {TRAIN_PAGE}")
        return False
    if not await c.pause(rng):
        return False
    r = await ask(c, i, s, TRAIN_PAGE, "training: Start training", trigger=button, fragment_id=button.fragment_id)
    c.trainings_asked += 1
    if r.errors:
        c.notes.append(f"student {i}: Start training answered: {r.errors[0][:150]}")
    return True


async def student(c: Class, i: int, seed: int, trainer: bool) -> None:
    rng = random.Random(seed * 100_003 + i)
    await asyncio.sleep(rng.uniform(0, c.ramp))
    s = Session("127.0.0.1", c.port)
    try:
        try:
            await s.connect(timeout=c.timeout)
        except Exception as e:
            c.fail(i, f"connect: {type(e).__name__}: {e}"[:200])
            return
        c.connected += 1
        await ask(c, i, s, "(first page)", "open the app", page_name="")
        if not s.pages:
            c.fail(i, "no navigation after the first run")
            return
        trained = not trainer
        while c.left() > 0 and not s.closed:
            tour = [t for t in s.pages if c.pages is None or t in c.pages or t == TRAIN_PAGE and not trained]
            rng.shuffle(tour)
            if not trained and TRAIN_PAGE in tour:
                tour.remove(TRAIN_PAGE)
                tour.insert(0, TRAIN_PAGE)
            for title in tour:
                if not await c.pause(rng) or s.closed:
                    break
                page = s.pages.get(title)
                if page is None:  # the navigation changed under the student
                    continue
                await ask(c, i, s, title, "open page", page_hash=page.page_script_hash)
                if not trained and title == TRAIN_PAGE:
                    trained = await start_training(c, i, s, rng)
                for _ in range(rng.randint(1, 3)):
                    if s.closed or not await c.pause(rng):
                        break
                    w = pick_widget(s, rng, frame_only=trainer and title == TRAIN_PAGE)
                    value = w.random_value(rng) if w is not None else None
                    if value is None:
                        continue
                    s.change(w, value)
                    where = "sidebar " if w.sidebar else ""
                    await ask(c, i, s, title, f"{where}{w.kind} {w.key or w.label}"[:60], fragment_id=w.fragment_id)
    finally:
        c.fragment_runs.extend(s.fragment_runs)
        c.auto_reruns += s.auto_reruns_sent
        c.exceptions.extend((i, p, e) for p, e in s.exceptions)  # in runs the student did not ask for
        try:
            await asyncio.wait_for(c.closing.wait(), c.timeout + 30)
        except asyncio.TimeoutError:
            pass
        await s.close()


# ------------------------------------------------------------------ /proc sampling

def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _rss(pid: int) -> int:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _kind(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    if b"vae.maps.worker" in cmd:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            env = []
        return "UMAP worker" if b"LATENT_LAB_MAP_LANE=umap" in env else "t-SNE worker"
    if b"vae.train" in cmd:
        return "training"
    return os.path.basename(cmd.split(b"\0")[0].decode(errors="replace")) or "?"


def cpu_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (all cores: user, nice, system, irq, softirq, steal)."""
    f = _read("/proc/stat").splitlines()[0].split()[1:]
    ticks = [int(x) for x in f]
    return (sum(ticks[:3]) + sum(ticks[5:8])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds(server: Server) -> tuple[float, float]:
    """CPU seconds of (the server with its children: the finished trainings it reaped and the live
    ones, the map workers; this benchmark)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in [server.proc.pid, *server.children()]:
        fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)[-1].split()
        if len(fields) > 14:
            total += sum(int(x) for x in fields[11:15 if pid == server.proc.pid else 13]) / tick
    return total, sum(os.times()[:2])


def sample(server: Server, t0: float) -> dict:
    kids = {pid: (_kind(pid), rss) for pid in server.children() if (rss := _rss(pid))}  # (an exiting one: 0)
    return {"t": round(time.perf_counter() - t0, 1), "server": _rss(server.proc.pid), "kids": kids,
            "load1": float(_read("/proc/loadavg").split()[0] or 0)}


async def sampler(c: Class, server: Server, stop: asyncio.Event) -> None:
    while not stop.is_set():
        c.samples.append(await asyncio.to_thread(sample, server, c.t0))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


async def progress(c: Class, every: float = 20.0) -> None:
    while True:
        await asyncio.sleep(every)
        done = sorted(r.seconds for r in c.records)
        last = c.samples[-1] if c.samples else {}
        log(f"{time.perf_counter() - c.t0:5.0f} s: {c.connected} connected, {len(done)} runs, "
            f"p95 {pct(done, 95) * 1000:.0f} ms, {len(c.failed)} failed, {len(c.exceptions)} exceptions, "
            f"server {mb(last.get('server', 0))}, load {last.get('load1', 0):.1f}")


# ------------------------------------------------------------------ the run

async def run_class(c: Class, server: Server, students: int, trainers: int, seed: int) -> None:
    stop = asyncio.Event()
    bg = [asyncio.create_task(sampler(c, server, stop)), asyncio.create_task(progress(c))]
    tasks = [asyncio.create_task(student(c, i, seed, i < trainers)) for i in range(students)]
    await asyncio.sleep(max(0.0, c.left()))
    log("time is up: the students finish their runs in progress")
    deadline = time.perf_counter() + c.timeout + 5
    while c.busy and time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
    end = await asyncio.to_thread(sample, server, c.t0)
    end["sessions"] = sum(1 for t in tasks if not t.done())
    c.samples.append(end)
    c.closing.set()
    await asyncio.wait(tasks, timeout=60)
    stop.set()
    for t in bg + tasks:
        t.cancel()
    await asyncio.gather(*bg, *tasks, return_exceptions=True)
    c.end = end


def pct(xs: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted xs (0 when empty)."""
    if not xs:
        return 0.0
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]


def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def trainings(cache: Path) -> tuple[int, int, list[str]]:
    """(submitted, saved, error messages) from the training queue's job files."""
    jobs = cache / "latent-lab" / "jobs"
    submitted = len(list(jobs.glob("*.json")))
    saved, errors = 0, []
    for events in jobs.glob("*.jsonl"):
        for line in _read(str(events)).splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("kind") == "saved":
                saved += 1
            elif ev.get("kind") == "error":
                errors.append(str(ev.get("message", ""))[:150])
    return submitted, saved, errors


def report(c: Class, args, cache: Path, log_path: Path, load0: tuple, cpu: tuple) -> None:
    recs = c.records
    lat = sorted(r.seconds for r in recs)
    p95 = pct(lat, 95)
    t = Table()
    t.add("students connected", f"{c.connected} of {args.students} ({args.trainers} of them train)")
    t.add("runs asked for (page opens, widget changes, training)",
          f"{len(recs)}: {sum(r.action == 'open page' for r in recs)} page opens, "
          f"{sum(r.action not in ('open page', 'open the app') for r in recs)} widget changes/clicks; "
          f"{len(recs) / max(1e-9, c.minutes * 60 + c.ramp):.1f} runs/s")
    t.add("rerun latency p95 (BackMsg -> script_finished)", ms(p95), f"<= {ms(TARGET_P95_S)}", bool(lat) and p95 <= TARGET_P95_S)
    t.add("  p50 / p99 / max", f"{ms(pct(lat, 50))} / {ms(pct(lat, 99))} / {ms(lat[-1] if lat else 0)}"
          + (f"; {sum(r.status == 'timeout' for r in recs)} timed out (counted at {c.timeout:g} s)"
             if any(r.status == 'timeout' for r in recs) else ""))
    t.add("failed sessions", str(len(c.failed)), "0", not c.failed)
    t.add("exceptions (exception elements, compile errors)", str(len(c.exceptions)), "0", not c.exceptions)
    peak_server = max((s["server"] for s in c.samples), default=0)
    peak_all = max((s["server"] + sum(r for _, r in s["kids"].values()) for s in c.samples), default=0)
    end = c.end or (c.samples[-1] if c.samples else {"server": 0, "kids": {}})
    t.add(f"server RSS peak, {args.students} sessions", mb(peak_server), f"<= {mb(TARGET_RSS)}",
          bool(peak_server) and peak_server <= TARGET_RSS)
    t.add(f"server RSS at the end, {end.get('sessions', '?')} sessions open", mb(end["server"]),
          f"<= {mb(TARGET_RSS)}", bool(end["server"]) and end["server"] <= TARGET_RSS)
    kid_peak: dict[str, int] = {}
    for s in c.samples:
        for kind, rss in s["kids"].values():
            kid_peak[kind] = max(kid_peak.get(kind, 0), rss)
    t.add("  children's RSS peaks (info)", ", ".join(f"{k} {mb(v)}" for k, v in sorted(kid_peak.items())) or "none")
    t.add("  server and children together, peak (info)", mb(peak_all))
    submitted, saved, terr = trainings(cache)
    ran = len({pid for s in c.samples for pid, (kind, _) in s["kids"].items() if kind == "training"})
    t.add("trainings: Start pressed / queued / ran / finished",
          f"{c.trainings_asked} / {submitted} / {ran} / {saved}" + (f"; errors: {terr[:2]}" if terr else ""),
          f"{args.trainers} started", c.trainings_asked >= args.trainers and submitted >= args.trainers)
    training_at = {round(s["t"]) for s in c.samples if any(k == "training" for k, _ in s["kids"].values())}
    during = sorted(r.seconds for r in recs if round(r.at) in training_at)
    other = sorted(r.seconds for r in recs if round(r.at) not in training_at)
    t.add("  p95 while a training ran / while none ran (info)",
          f"{ms(pct(during, 95))} ({len(during)} runs) / {ms(pct(other, 95))} ({len(other)} runs)")
    t.add("  runs whose script_finished never came (info; timed at their last message)",
          f"{len(c.lost)}" + (f", e.g. {c.lost[0]}" if c.lost else ""))
    frag = sorted(c.fragment_runs)
    t.add("run_every fragments: auto reruns sent, their runs p50/p95 (info)",
          f"{c.auto_reruns} sent; {len(frag)} runs, {ms(pct(frag, 50))} / {ms(pct(frag, 95))}")
    if c.media:
        t.add("images fetched over HTTP (info)", f"{c.fetched[0]} ({mb(c.fetched[1])}), {c.fetched[2]} failed")
    loads = [s["load1"] for s in c.samples]
    t.add("load average (1 min) during the run (info)",
          f"mean {sum(loads) / max(1, len(loads)):.1f}, max {max(loads, default=0):.1f}; before the server "
          f"started {load0[0]:.1f} (5 min {load0[1]:.1f}); {os.cpu_count()} cores")
    busy, app, bench, wall = cpu
    t.add("CPU seconds during the run (info)",
          f"machine {busy:.0f} of {os.cpu_count() * wall:.0f} available; the server and its children {app:.0f}, "
          f"this benchmark's students {bench:.0f}, other work {max(0.0, busy - app - bench):.0f}")
    t.print(f"Class benchmark: {args.students} students, {args.minutes:g} min, think {args.think:g} s, "
            f"{args.trainers} trainers, on {os.cpu_count()} CPU cores")

    by_page = defaultdict(list)
    for r in recs:
        by_page[r.page].append(r.seconds)
    slow = [r for r in recs if r.seconds >= p95] if recs else []
    slow_pages = Counter(r.page for r in slow)
    print("\nRerun latency per page (all runs a student asked for on it)")
    print(f"{'page':<18} {'runs':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  share of runs >= overall p95")
    for page, xs in sorted(by_page.items(), key=lambda kv: -pct(sorted(kv[1]), 95)):
        xs.sort()
        print(f"{page:<18} {len(xs):>5} {ms(pct(xs, 50)):>8} {ms(pct(xs, 95)):>8} {ms(pct(xs, 99)):>8} "
              f"{ms(xs[-1]):>8}  {slow_pages.get(page, 0)}/{len(slow)}")
    by_action = defaultdict(list)
    for r in recs:
        by_action[(r.page, r.action)].append(r.seconds)
    print("\nSlowest kinds of run (p95)")
    for (page, action), xs in sorted(by_action.items(), key=lambda kv: -pct(sorted(kv[1]), 95))[:10]:
        xs.sort()
        print(f"  {page:<18} {action:<48} {len(xs):>4} runs, p50 {ms(pct(xs, 50)):>7}, p95 {ms(pct(xs, 95)):>7}")
    print("\nTimeline (by when the run was asked for)")
    print(f"{'seconds':>9} {'runs':>5} {'p50':>8} {'p95':>8}  training  server RSS  load (1 min)")
    for w in range(0, int(max((r.at for r in recs), default=0)) + 1, 20):
        xs = sorted(r.seconds for r in recs if w <= r.at < w + 20)
        ss = [s for s in c.samples if w <= s["t"] < w + 20]
        print(f"{w:>4}-{w + 20:<4} {len(xs):>5} {ms(pct(xs, 50)):>8} {ms(pct(xs, 95)):>8}  "
              f"{sum(1 for x in range(w, w + 20) if x in training_at):>4}/20 s  "
              f"{mb(max((s['server'] for s in ss), default=0)):>10}  {max((s['load1'] for s in ss), default=0):.1f}")
    print("\nThe 5 slowest runs")
    for r in sorted(recs, key=lambda r: -r.seconds)[:5]:
        print(f"  {ms(r.seconds):>8} at {r.at:6.1f} s  student {r.student:2d}  {r.page}: {r.action} ({r.status})")
    if c.failed:
        print("\nFailed sessions")
        for i, why in sorted(c.failed.items())[:10]:
            print(f"  student {i}: {why}")
    for stall in c.stalls:
        print(f"  timed out: {stall}")
    for title, items in (("Exceptions (first 5)", c.exceptions), ("st.error messages shown (first 5, info)", c.errors)):
        if items:
            print(f"\n{title}: {len(items)}, {len(set(m for _, _, m in items))} distinct")
            for (i, page, m), n in Counter(items).most_common(5):
                print(f"  student {i} on {page}: {m}")
    text = _read(str(log_path))
    tracebacks = [ln for ln in text.splitlines() if re.match(r"^\w*(Error|Exception)\b.*:", ln)]
    print(f"\nserver.log: {text.count('Traceback')} tracebacks" + (": " + "; ".join(
        f"{m[:120]} (x{n})" for m, n in Counter(tracebacks).most_common(3)) if tracebacks else ""))
    for note in dict.fromkeys(c.notes):
        print(f"note: {note}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=35)
    p.add_argument("--minutes", type=float, default=3.0, help="how long the students tour after the ramp")
    p.add_argument("--think", type=float, default=3.0, help="seconds between actions (x 0.5-1.5)")
    p.add_argument("--trainers", type=int, default=3, help="students that start a training")
    p.add_argument("--train-budget", type=float, default=25.0, help="their trainings' time budget (s)")
    p.add_argument("--ramp", type=float, default=10.0, help="students join over this many seconds")
    p.add_argument("--timeout", type=float, default=30.0, help="a run slower than this fails its session")
    p.add_argument("--port", type=int, default=None, help="default: a free one")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pages", help="tour only these pages (titles, comma-separated; default: every page)")
    p.add_argument("--no-media", action="store_true", help="do not fetch the pages' images over HTTP")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (server.log, runs.json, caches)")
    args = p.parse_args(argv)
    if not 1 <= args.students <= MAX_STUDENTS:
        p.error(f"--students must be 1 to {MAX_STUDENTS}")
    if not 0 < args.minutes <= 60:
        p.error("--minutes must be above 0 and at most 60")
    args.trainers = max(0, min(args.trainers, args.students))

    if args.trainers and not (Path(args.data_dir) / "MNIST" / "raw").is_dir():
        log(f"warning: no {Path(args.data_dir) / 'MNIST' / 'raw'}: the trainings will be refused (pass --data-dir)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-class-"))
    home, cache = tmp / "home", tmp / "cache"
    port = args.port or free_port()
    load0 = tuple(float(x) for x in _read("/proc/loadavg").split()[:2])
    log(f"temp folder {tmp}; starting streamlit on 127.0.0.1:{port}; load average {load0[0]:.2f}")
    server = Server(app_env(home, cache, args.data_dir), port, tmp / "server.log")
    try:
        server.wait_healthy()
        log(f"server up after {time.perf_counter() - server.t_start:.1f} s; {args.students} students join over "
            f"{args.ramp:g} s and tour for {args.minutes:g} min")
        c = Class(port=port, minutes=args.minutes, think=args.think, timeout=args.timeout, ramp=args.ramp,
                  train_budget=args.train_budget, media=not args.no_media,
                  pages=[t.strip() for t in args.pages.split(",")] if args.pages else None)
        busy0, own0, wall0 = cpu_busy_seconds(), own_cpu_seconds(server), time.perf_counter()

        async def go():
            c.closing = asyncio.Event()  # bound to this loop
            c.t0 = time.perf_counter()
            await run_class(c, server, args.students, args.trainers, args.seed)
        asyncio.run(go())
        own1 = own_cpu_seconds(server)
        cpu = (cpu_busy_seconds() - busy0, own1[0] - own0[0], own1[1] - own0[1], time.perf_counter() - wall0)
    finally:
        server.stop()
    report(c, args, cache, tmp / "server.log", load0, cpu)
    if args.keep:
        (tmp / "runs.json").write_text(json.dumps([asdict(r) for r in c.records]))
        (tmp / "samples.json").write_text(json.dumps(c.samples))
        print(f"\nkept {tmp} (server.log, runs.json, samples.json, caches)")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
