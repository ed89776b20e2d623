"""App benchmark (issue 5): starts the real app, drives it in headless Chromium, prints figures.

    python -m benchmarks.bench_app --data-dir ../shared/data           # about 10 minutes
    python -m benchmarks.bench_app --data-dir ../shared/data --quick   # smoke run
    python -m benchmarks.bench_app --skip-libs --port 8605

What it does, in one run on one machine:

  1. trains a "never seen" 20-d VAE with `python -m vae.train --time-budget` into a staging
     folder (its codes also feed the library timings);
  2. starts `python -m streamlit run app.py` with a fresh LATENT_LAB_HOME and XDG_CACHE_HOME
     (nothing cached from earlier runs) and LATENT_LAB_DATA pointing at the data;
  3. in headless Chromium (Playwright, /usr/bin/chromium) measures: start to first page
     rendered; the map page of the default bundled model after clicking it, and the bytes it
     received; for every bundled model, the live slider's canvas redraws per second during a
     mouse drag and with an input event every animation frame; the server's RSS, and what
     extra browser sessions add; then it copies the new model into the library, opens its
     map and asks for t-SNE (first picture, final map), UMAP (final map), and t-SNE again
     (a map seen before; PCA again if t-SNE never finished);
  4. stops the server and times the libraries of issue 5's table on 10,000 20-d codes of the
     MNIST test digits, each in a fresh subprocess.

How "done" is judged. The benchmark decodes Streamlit's websocket messages (ForwardMsg
protobufs) to know when a script run starts and finishes, and reads the page's DOM for a
picture (plotly chart, canvas, image, component) and for busy markers (st.progress,
st.spinner). A map counts as final when its file has appeared in the map cache
($XDG_CACHE_HOME/latent-lab/maps/<fingerprint>-<method>-*.npz, written by vae.maps.service.MapService
when a map is finished), a whole-page script run has finished after that, and the page shows
a chart and no busy marker. Times are taken in this process when the browser's events arrive
(a few ms of overhead, which counts against the app). Byte counts are websocket payloads after
decompression plus HTTP bodies, so they are upper bounds on what crosses the wire.

Every figure is measured in its own try/except: a missing page or element prints
"n/a (reason)" and the rest goes on. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path

from vae.paths import ROOT

DEFAULT_DATA_DIR = os.environ.get("LATENT_LAB_DATA") or str(ROOT.parent / "shared" / "data")
CHROMIUM = os.environ.get("LATENT_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
NEW_MODEL_NAME = "Bench 20-d (never seen)"
METHOD_LABELS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP", "native": "Native latent plane"}

# JS helpers: query through open shadow roots (components v2 render inside one).
DEEP = """
const deepAll = (root, sel) => {
  const out = [...root.querySelectorAll(sel)];
  for (const el of root.querySelectorAll('*')) if (el.shadowRoot) out.push(...deepAll(el.shadowRoot, sel));
  return out;
};
const shown = el => { const r = el.getBoundingClientRect(); return r.width > 2 && r.height > 2; };
const main = document.querySelector('[data-testid="stMain"]') || document.body;
"""
PICTURE_SEL = ('.js-plotly-plot, [data-testid="stVegaLiteChart"], [data-testid="stDeckGlJsonChart"], canvas, '
               'iframe, [data-testid="stImage"] img, img')
MAP_SEL = ('.js-plotly-plot, [data-testid="stVegaLiteChart"], [data-testid="stDeckGlJsonChart"], canvas, '
           'iframe, .st-key-map_live img')  # a chart or the live map's picture; the home page's images are no map
BUSY_SEL = '[data-testid="stProgress"], [data-testid="stSpinner"], [data-testid="stSkeleton"]'
PAGE_STATE_JS = "() => {" + DEEP + f"""
  return {{picture: deepAll(main, '{PICTURE_SEL}').some(shown),
           map: deepAll(main, '{MAP_SEL}').some(shown),
           busy: deepAll(main, '{BUSY_SEL}').some(shown),
           exception: !!document.querySelector('[data-testid="stException"]'),
           progress: deepAll(main, '[data-testid="stProgress"]').map(e => e.innerText.trim()).join(' / '),
           title: (main.querySelector('h1') || {{}}).innerText || ''}};
}}"""
TWO_FRAMES_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


def log(msg: str) -> None:
    print(f"[bench_app {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class NA(Exception):
    """A figure that cannot be measured; the message says why."""


# ------------------------------------------------------------------ results table

class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, figure: str, measured: str, target: str = "", ok: bool | None = None) -> None:
        self.rows.append((figure, measured, target, "" if ok is None else ("yes" if ok else "NO")))
        log(f"{figure}: {measured}" + (f" (target {target})" if target else ""))

    def measure(self, figure: str, target: str, fn) -> None:
        """Run fn() -> (measured, ok) or a list of (figure, measured, target, ok); failures become n/a."""
        try:
            out = fn()
        except NA as e:
            self.add(figure, f"n/a ({e})", target)
            return
        except Exception as e:  # a benchmark reports, it does not crash
            traceback.print_exc(file=sys.stderr)
            self.add(figure, f"n/a ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})", target)
            return
        if isinstance(out, list):
            for row in out:
                self.add(*row)
        else:
            self.add(figure, out[0], target, out[1])

    def print(self, header: str) -> None:
        head = ("figure", "measured", "target", "ok?")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(4)]
        print("\n" + header)
        print(" | ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
        print("-+-".join("-" * w for w in widths))
        for r in self.rows:
            print(" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def secs(t: float) -> str:
    return f"{t:.2f} s" if t < 10 else f"{t:.1f} s"


def mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


# ------------------------------------------------------------------ server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict, port: int, log_path: Path):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log_path, "w")
        self.log_path = log_path
        self.t_start = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 90) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early (code {self.proc.returncode}); see {self.log_path}")
            try:
                urllib.request.urlopen(self.url + "/_stcore/health", timeout=1)
                return time.perf_counter()
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"streamlit did not answer within {timeout:.0f} s")

    def rss(self, field: str = "VmRSS") -> int:
        """Bytes of the server process (and none of its children)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise NA(f"no {field} in /proc/{self.proc.pid}/status")

    @staticmethod
    def _stats() -> dict[int, list[str]]:
        """Every process's /proc/<pid>/stat fields after the command name (state, ppid, ...: see proc(5))."""
        out = {}
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                out[int(stat.split("/")[2])] = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
        return out

    def children(self, stats: dict | None = None) -> list[int]:
        """Pids of the server's child processes (the map workers; a training, if one runs)."""
        return [pid for pid, fields in (stats or self._stats()).items() if int(fields[1]) == self.proc.pid]

    def children_rss(self) -> tuple[int, list[str]]:
        """Total RSS of the child processes and a short description of each."""
        total, parts = 0, []
        for pid in self.children():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            rss = next((int(ln.split()[1]) * 1024 for ln in status.splitlines() if ln.startswith("VmRSS:")), 0)
            name = next((c.decode() for c in cmd if c.startswith(b"vae.")), cmd[0].decode())
            total += rss
            parts.append(f"{name} {mb(rss)}")
        return total, parts

    def cpu_seconds(self, by_type: bool = False) -> dict:
        """CPU seconds used so far (user + system) by: the server, each of its map workers, Chromium, this benchmark.
        With `by_type`, Chromium's also split by process (browser, renderer, gpu-process, ...)."""
        tick = os.sysconf("SC_CLK_TCK")
        stats = self._stats()
        kids = set(self.children(stats))
        out = {"server": 0.0, "t-SNE worker": 0.0, "UMAP worker": 0.0, "chromium": 0.0, "benchmark": 0.0}
        for pid, fields in stats.items():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            used = (int(fields[11]) + int(fields[12])) / tick
            if pid == self.proc.pid:
                out["server"] += used
            elif pid in kids and b"vae.maps.worker" in cmd:
                try:  # which lane: vae.maps.service passes it in the worker's environment
                    umap = b"LATENT_LAB_MAP_LANE=umap" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                except OSError:
                    umap = False
                out["UMAP worker" if umap else "t-SNE worker"] += used
            elif b"chrom" in cmd.split(b"\0")[0]:
                out["chromium"] += used
                if by_type:  # which Chromium process: the browser, a renderer, the GPU process, ...
                    kind = next((a[7:].decode() for a in cmd.replace(b"\0", b" ").split() if a.startswith(b"--type=")),
                                "browser")  # (Chromium rewrites its command line as one space-separated string)
                    out[f"  chromium {kind}"] = out.get(f"  chromium {kind}", 0.0) + used
            elif pid == os.getpid() or (int(fields[1]) == os.getpid() and b"node" in cmd):
                out["benchmark"] += used  # this script and Playwright's driver (node)
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ------------------------------------------------------------------ browser side

class Tracker:
    """Follows one page's Streamlit websocket: script runs started/finished, bytes received."""

    def __init__(self, page):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._msg = ForwardMsg
        self.page = page
        self.ws_bytes = 0
        self.http_bytes = 0
        self.running = False
        self.started: list[float] = []
        self.finished: list[float] = []  # any run, fragment runs included
        self.full_finished: list[float] = []  # whole-page runs
        page.on("websocket", self._on_ws)
        try:  # HTTP bodies (component assets, media, sprites) via the DevTools protocol
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.on("Network.loadingFinished", self._on_http)
            self._cdp = cdp
        except Exception:
            self._cdp = None

    def _on_ws(self, ws) -> None:
        if "_stcore/stream" in ws.url:
            ws.on("framereceived", self._on_frame)

    def _on_http(self, params) -> None:
        self.http_bytes += int(params.get("encodedDataLength") or 0)

    def _on_frame(self, payload) -> None:
        t = time.perf_counter()
        data = payload if isinstance(payload, (bytes, bytearray)) else payload.encode()
        self.ws_bytes += len(data)
        try:
            msg = self._msg()
            msg.ParseFromString(bytes(data))
            kind = msg.WhichOneof("type")
        except Exception:
            return
        if kind == "session_status_changed":
            running = msg.session_status_changed.script_is_running
            if running and not self.running:
                self.started.append(t)
            self.running = running
        elif kind == "script_finished":
            status = msg.script_finished
            if status == self._msg.FINISHED_EARLY_FOR_RERUN:
                return  # st.rerun(): another run follows at once
            self.finished.append(t)
            if status != self._msg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                self.full_finished.append(t)
            self.running = False

    @property
    def bytes(self) -> int:
        return self.ws_bytes + self.http_bytes

    def finished_after(self, t: float, full: bool = False) -> bool:
        return any(f > t for f in (self.full_finished if full else self.finished))

    def state(self) -> dict:
        return self.page.evaluate(PAGE_STATE_JS)

    def pump(self, ms: int = 20) -> None:
        self.page.wait_for_timeout(ms)  # lets Playwright deliver events to the handlers above

    def wait_idle(self, after: float, timeout: float = 60, need_picture: bool = False,
                  rerun_grace: float = 3.0) -> float:
        """Time at which a script run that started after `after` has finished and the page is drawn.

        If no run starts within `rerun_grace` seconds (the action did not rerun anything), the
        page is taken as it is."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            now = time.perf_counter()
            ran = self.finished_after(after)
            if (ran and not self.running) or (not ran and not self.running and now - after > rerun_grace
                                              and not any(s > after for s in self.started)):
                st = self.state()
                if st["exception"]:
                    raise NA("the page shows an exception")
                if not need_picture or st["picture"]:
                    self.page.evaluate(TWO_FRAMES_JS)
                    return time.perf_counter()
            self.pump(20)
        raise NA(f"the page was not idle{' with a picture' if need_picture else ''} within {timeout:.0f} s")


STATE_POLL_IDLE_S = float(os.environ.get("BENCH_STATE_POLL_IDLE_S", "0.5"))

CLICK_CLOCK_JS = ("document.addEventListener('click', () => { window.__llClickAt = Date.now() / 1000; }, true);")


def asked_at(page, before: float) -> float:
    """When the click just made reached the page, on this process's perf_counter clock.

    Playwright needs a few round trips before it clicks (find the element, scroll, wait until it
    is stable): tens of milliseconds that are the benchmark's, not the user's. The page records
    the moment its click event fires (CLICK_CLOCK_JS); both clocks are the system's wall clock.
    Falls back on `before` (the time taken before the click call) if the page saw no click."""
    try:
        at = page.evaluate("() => window.__llClickAt || 0")
    except Exception:
        at = 0
    if not at:
        return before
    t = time.perf_counter() - (time.time() - at)
    return t if before - 0.05 <= t <= time.perf_counter() else before


def first_page(page, tracker: Tracker, server: "Server", need_picture: bool = True,
               timeout: float = 120) -> tuple[float, float]:
    """Open a just-started server's first page. -> (seconds from the server's start to its health
    check answering, to the first page rendered: its script run finished, title and picture drawn)."""
    t_health = server.wait_healthy()
    page.goto(server.url, wait_until="commit")
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if tracker.finished and not tracker.running:
            st = tracker.state()
            if st["title"] and (st["picture"] or not need_picture):
                page.evaluate(TWO_FRAMES_JS)
                return t_health - server.t_start, time.perf_counter() - server.t_start
        tracker.pump(20)
    raise NA(f"the first page did not finish rendering within {timeout:.0f} s")


def app_env(home: Path, cache: Path, data_dir: str) -> dict:
    """The environment of an app server under test: its own model library and caches, the data."""
    return dict(os.environ, LATENT_LAB_HOME=str(home), XDG_CACHE_HOME=str(cache), LATENT_LAB_DATA=data_dir,
                PYTHONUNBUFFERED="1")


def open_page(browser) -> tuple:
    """A fresh browser context at 1400 x 1000 that records its clicks (CLICK_CLOCK_JS).
    -> (context, page, Tracker of the page)"""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.add_init_script(CLICK_CLOCK_JS)
    page = ctx.new_page()
    return ctx, page, Tracker(page)


def click_nav(page, url_path: str, title: str) -> None:
    nav = page.locator(f'[data-testid="stSidebarNav"] a[href$="/{url_path}"]')
    if nav.count() == 0:
        nav = page.locator('[data-testid="stSidebarNav"] a', has_text=title)
    if nav.count() == 0:
        raise NA(f"no '{title}' link in the sidebar navigation")
    nav.first.click()


def page_exists(url_path: str) -> bool:
    return (ROOT / "pages" / f"{url_path}.py").is_file()


def select_model(page, tracker: Tracker, name: str, timeout: float = 60) -> None:
    """Pick a model in the shared sidebar's 'Active model' selectbox and wait for the rerun."""
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first
    try:  # a page just opened may report its first run finished before the sidebar is drawn
        box.wait_for(state="visible", timeout=30_000)
    except Exception:
        raise NA("no model selectbox in the sidebar") from None
    if box.inner_text().strip().splitlines()[-1:] == [name] or name in box.inner_text():
        return
    t = time.perf_counter()
    box.click()
    option = page.get_by_role("option", name=name, exact=True)
    try:
        option.first.click(timeout=5000)
    except Exception:
        page.keyboard.press("Escape")
        raise NA(f"no model named {name!r} in the sidebar") from None
    tracker.wait_idle(t, timeout)


def choose_option(page, label: str, timeout: float = 10.0) -> None:
    """Click the option `label` in whatever widget the page uses: radio, pills, segmented control, tabs
    or a selectbox. Retried until `timeout`: a page in the middle of a rerun may not show it yet."""
    deadline = time.perf_counter() + timeout
    while True:
        if _choose_option_once(page, label):
            return
        if time.perf_counter() > deadline:
            raise NA(f"no '{label}' choice on the page")
        page.wait_for_timeout(100)


def _choose_option_once(page, label: str) -> bool:
    main = page.locator('[data-testid="stMain"]')
    exact = main.get_by_text(label, exact=True)
    for i in range(exact.count()):
        el = exact.nth(i)
        try:
            if not el.is_visible():
                continue
            inside_select = el.evaluate("e => !!e.closest('[data-testid=\"stSelectbox\"]')")
            el.click(timeout=5000)
        except Exception:  # replaced by a rerun between finding and clicking it
            continue
        if inside_select:  # it was the selectbox showing this value; pick it from the list
            opt = page.get_by_role("option", name=label, exact=True)
            if opt.count():
                opt.first.click()
            else:
                page.keyboard.press("Escape")
        return True
    boxes = main.locator('[data-testid="stSelectbox"]')
    for i in range(boxes.count()):
        boxes.nth(i).click()
        opt = page.get_by_role("option", name=label, exact=True)
        if opt.count():
            opt.first.click()
            return True
        page.keyboard.press("Escape")
    return False


def map_files(cache: Path, fingerprint: str, method: str | None) -> list[str]:
    """Finished maps of this model and method (None: any): the server's cache, or the bundled maps."""
    pattern = f"{fingerprint}-{method or '*'}-*.npz"
    return glob.glob(str(cache / "latent-lab" / "maps" / pattern)) + glob.glob(str(ROOT / "assets" / "maps" / pattern))


def wait_final_map(tracker: Tracker, t_ask: float, cache: Path, fingerprint: str, method: str | None,
                   timeout: float) -> tuple[float, float | None, float | None, str]:
    """For a map asked for at t_ask: (seconds to the final map on screen, to the map file appearing
    or None, to the first picture or None, a note)."""
    t_file = t_ask if map_files(cache, fingerprint, method) else None
    t_picture = stable_since = None
    t_state = -1e9  # when the page was last asked for its state
    deadline = t_ask + timeout
    while time.perf_counter() < deadline:
        now = time.perf_counter()
        if t_file is None and map_files(cache, fingerprint, method):
            t_file = now
        # Asking the page costs its renderer a walk of the DOM (and a DevTools round trip): every
        # 20 ms, ~0.25 CPU s of renderer and as much of browser and benchmark per t-SNE, taken from
        # the map being timed. Between the first picture and the map file (nothing final can show
        # before the file is written) the page is asked only every STATE_POLL_IDLE_S.
        if t_picture is not None and t_file is None and now - t_state < STATE_POLL_IDLE_S:
            tracker.pump(20)
            continue
        t_state = now
        st = tracker.state()
        if st["exception"]:
            raise NA("the page shows an exception")
        if st["map"] and t_picture is None and any(x > t_ask for x in tracker.started):
            t_picture = now
        ok = st["map"] and not st["busy"] and not tracker.running
        rel = lambda t: None if t is None else t - t_ask  # noqa: E731
        # The page draws the finished map in a whole-page run (live_map's st.rerun, or the click's own run).
        if t_file is not None and ok and tracker.finished_after(max(t_file, t_ask), full=True):
            tracker.page.evaluate(TWO_FRAMES_JS)
            return time.perf_counter() - t_ask, rel(t_file), rel(t_picture), ""
        # Fallback for a page that does not use the map cache: idle, drawn and not busy for 3 s.
        if ok and tracker.finished_after(t_ask):
            stable_since = stable_since or now
            if t_file is None and now - stable_since > 3.0:
                return stable_since - t_ask, None, rel(t_picture), "no map file seen; judged from the page"
        else:
            stable_since = None
        tracker.pump(20)
    says = tracker.state().get("progress")
    says = f"; the page says '{says[:100]}'" if says else ""
    if t_file is not None:
        raise NA(f"computed in {t_file - t_ask:.1f} s but not on screen within {timeout:.0f} s{says}")
    raise NA(f"no final {METHOD_LABELS.get(method, '')} map within {timeout:.0f} s{says}")


SYNTHETIC_DRAG_JS = """async ([el, ms]) => {
  const canvas = el.getRootNode().querySelector('[data-testid="ll-canvas"]');
  const lo = Number(el.min), hi = Number(el.max);
  const f0 = Number(canvas.dataset.frames || 0), t0 = performance.now();
  let n = 0;
  await new Promise(done => {
    const step = now => {
      const frac = (now - t0) / ms;
      if (frac >= 1) return done();
      el.value = String(lo + (hi - lo) * frac);
      el.dispatchEvent(new Event('input', {bubbles: true}));
      n++;
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const s = (performance.now() - t0) / 1000;
  return {frames: Number(canvas.dataset.frames || 0) - f0, seconds: s, inputs: n};
}"""


def slider_parts(page):
    canvas = page.locator('[data-testid="ll-canvas"]').first
    try:
        canvas.wait_for(state="visible", timeout=30_000)
    except Exception:
        if page.locator('[data-testid="stMain"] [data-testid="stSlider"]').count():
            raise NA("only Streamlit's st.slider here: it reports on release, no frames while dragging") from None
        raise NA("no live-slider canvas (data-testid=ll-canvas) on the Sliders page") from None
    rng = page.locator('.ll-row input[type="range"]').first
    if rng.count() == 0:
        raise NA("no range input in the live-slider component")
    rng.scroll_into_view_if_needed()
    return canvas, rng


def drag_fps(page, duration: float, rate: float = 120.0) -> dict:
    """Drag the first live slider across its range with the mouse; count the component's canvas redraws.

    Playwright sends each mouse move as a round trip, so on a busy machine the input rate, not the
    component, can be what limits the figure; the input events per second are reported with it."""
    canvas, rng = slider_parts(page)
    box = rng.bounding_box()
    handle = rng.element_handle()
    handle.evaluate("el => { el.__benchInputs = 0; el.addEventListener('input', () => el.__benchInputs++); }")
    frames = lambda: int(canvas.get_attribute("data-frames") or 0)  # noqa: E731
    y = box["y"] + box["height"] / 2
    x0, x1 = box["x"] + 4, box["x"] + box["width"] - 4
    page.mouse.move(x0, y)
    page.mouse.down()
    page.evaluate(TWO_FRAMES_JS)
    handle.evaluate("el => { el.__benchInputs = 0; }")
    f0, t0 = frames(), time.perf_counter()
    n = max(2, int(duration * rate))
    for i in range(1, n + 1):
        wait = t0 + i / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        page.mouse.move(x0 + (x1 - x0) * i / n, y)
    page.evaluate(TWO_FRAMES_JS)
    f1, t1 = frames(), time.perf_counter()
    inputs = handle.evaluate("el => el.__benchInputs")
    page.mouse.up()
    decode_ms = canvas.get_attribute("data-decode-ms")
    return {"fps": (f1 - f0) / (t1 - t0), "frames": f1 - f0, "seconds": t1 - t0, "inputs": inputs,
            "input_rate": inputs / (t1 - t0), "decode_ms": float(decode_ms) if decode_ms else None}


def synthetic_drag_fps(page, duration: float) -> dict:
    """The same slider moved from inside the page: one input event per animation frame, no round trips."""
    _, rng = slider_parts(page)
    r = page.evaluate(SYNTHETIC_DRAG_JS, [rng.element_handle(), duration * 1000])
    r["fps"] = r["frames"] / r["seconds"]
    r["input_rate"] = r["inputs"] / r["seconds"]
    return r


# ------------------------------------------------------------------ library timings (subprocesses)

def lib_child(method: str, codes_path: str) -> dict:
    """One timing in a fresh interpreter; prints JSON."""
    import numpy as np

    z = np.load(codes_path).astype(np.float32)
    out: dict = {"n": len(z), "dim": z.shape[1]}
    t = time.perf_counter()
    if method == "sklearn_tsne":
        from sklearn.manifold import TSNE
        out["import_s"] = time.perf_counter() - t
        t = time.perf_counter()
        TSNE(n_components=2, random_state=0).fit_transform(z)
    elif method == "opentsne_default":
        import openTSNE
        out["import_s"] = time.perf_counter() - t
        t = time.perf_counter()
        openTSNE.TSNE(n_jobs=2, random_state=0).fit(z)
    elif method == "opentsne_project":
        from vae.maps.projection import TSNEProjection
        out["import_s"] = time.perf_counter() - t
        p = TSNEProjection(seed=0)
        out["schedule"] = {"early_iter": p.early_iter, "n_iter": p.n_iter, "perplexity": p.perplexity}
        t = time.perf_counter()
        import openTSNE  # noqa: F401  (imported inside _fit; keep it out of the fit time)
        out["import_s"] += time.perf_counter() - t
        t = time.perf_counter()
        p.fit_transform(z)
    elif method == "umap":
        from vae.maps.projection import UMAPProjection
        import umap  # noqa: F401
        out["import_s"] = time.perf_counter() - t
        t = time.perf_counter()
        UMAPProjection(seed=0).fit_transform(z)
        out["first_s"] = time.perf_counter() - t
        t = time.perf_counter()
        UMAPProjection(seed=1).fit_transform(z)
        out["later_s"] = time.perf_counter() - t
        return out
    elif method == "pca":
        from vae.maps.projection import PCAProjection
        out["import_s"] = time.perf_counter() - t
        PCAProjection(seed=0).fit_transform(z[:100])  # warm sklearn's lazy imports
        t = time.perf_counter()
        PCAProjection(seed=0).fit_transform(z)
    else:
        raise SystemExit(f"unknown method {method}")
    out["fit_s"] = time.perf_counter() - t
    return out


def run_lib(method: str, codes: Path, env: dict, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_app", "--lib-child", method, "--codes", str(codes)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise NA(f"exit {r.returncode}: {tail[:120]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def library_timings(table: Table, codes: Path, note: str, env: dict, tmp: Path, timeout: float) -> None:
    def fit(method, label, issue):
        def go():
            r = run_lib(method, codes, env, timeout)
            return f"{secs(r['fit_s'])} fit (+{r['import_s']:.1f} s import)", None
        table.measure(f"lib: {label} [{note}]", f"issue table: {issue}", go)

    fit("sklearn_tsne", "scikit-learn TSNE, defaults", "35.5 s")
    fit("opentsne_default", "openTSNE, defaults, 2 threads", "37.0 s")
    fit("opentsne_project", "openTSNE, project schedule (TSNEProjection)", "12.4 s")

    def umap_runs():
        numba = tmp / "numba-cache"
        shutil.rmtree(numba, ignore_errors=True)
        cold = run_lib("umap", codes, dict(env, NUMBA_CACHE_DIR=str(numba)), timeout)
        rows = [(f"lib: umap-learn first fit, fresh process, empty numba cache [{note}]",
                 f"{secs(cold['first_s'])} fit + {cold['import_s']:.1f} s import = "
                 f"{secs(cold['first_s'] + cold['import_s'])}", "issue table: 36.5 s", None),
                (f"lib: umap-learn later fit, same process [{note}]", secs(cold["later_s"]),
                 "issue table: 5.7 s", None)]
        try:
            warm = run_lib("umap", codes, dict(env, NUMBA_CACHE_DIR=str(numba)), timeout)
            rows.append((f"lib: umap-learn first fit, fresh process, numba disk cache warm [{note}]",
                         f"{secs(warm['first_s'])} fit + {warm['import_s']:.1f} s import = "
                         f"{secs(warm['first_s'] + warm['import_s'])}", "", None))
        except Exception as e:
            rows.append(("lib: umap-learn first fit, numba disk cache warm", f"n/a ({e})", "", None))
        return rows

    table.measure("lib: umap-learn", "issue table: 36.5 s / 5.7 s", umap_runs)
    fit("pca", "PCA (PCAProjection, numpy SVD)", "0.1 s")


def make_codes(model_path: Path | None, data_dir: str, out: Path, n: int | None) -> str:
    """Codes of the MNIST test digits from the model; returns a note saying which."""
    import numpy as np

    from vae.assets import test_set
    from vae.checkpoint import load_checkpoint
    from vae.latent import encode
    from vae.paths import BUNDLED_MODELS

    note = ""
    if model_path is None or not model_path.is_file():
        cands = sorted(BUNDLED_MODELS.glob("*16d*.safetensors")) or sorted(BUNDLED_MODELS.glob("*.safetensors"))
        if not cands:
            raise NA("no trained model and no bundled model to encode the test digits with")
        model_path = cands[0]
        note = f"codes of the bundled {model_path.stem}, not a fresh 20-d VAE; "
    model, _ = load_checkpoint(model_path)
    z = encode(model, test_set("mnist", data_dir).x_test)
    if n:
        z = z[:n]
    np.save(out, z)
    return note + f"{len(z):,} codes, {z.shape[1]}-d"


# ------------------------------------------------------------------ the run

def train_never_seen(data_dir: str, out: Path, env: dict, budget: float, name: str = NEW_MODEL_NAME) -> dict:
    """Train the "never seen" 20-d VAE with `python -m vae.train --time-budget`; -> its summary (JSON).
    Raises RuntimeError with the trainer's last line when it fails."""
    r = subprocess.run([sys.executable, "-m", "vae.train", "--model", "vae", "--latent-dim", "20",
                        "--time-budget", str(budget), "--data-dir", data_dir, "--no-download",
                        "--out", str(out), "--name", name, "--no-progress"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=budget + 300)
    if r.returncode != 0:
        raise RuntimeError((r.stdout.strip().splitlines() or r.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(r.stdout.strip().splitlines()[-1])


def add_to_library(home: Path, src: Path) -> str:
    """Copy a checkpoint into the server's model library, never listed half-copied; -> its fingerprint."""
    from vae.checkpoint import weights_fingerprint

    lib = home / "models"
    lib.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, lib / ".bench-copy.tmp")  # not *.safetensors: the library ignores it
    os.replace(lib / ".bench-copy.tmp", lib / src.name)
    return weights_fingerprint(lib / src.name)


def open_map_of(page, tracker: Tracker, server: Server, name: str) -> tuple[float, float, dict]:
    """In a fresh session, pick the model `name` and click Latent map, as a user would.
    -> (when the pick began, when the click reached the page, CPU seconds by process at the click)"""
    t0 = time.perf_counter()
    page.goto(server.url, wait_until="commit")  # a fresh session, whose sidebar lists the new model
    tracker.wait_idle(t0, timeout=60)
    t_pick = time.perf_counter()
    select_model(page, tracker, name)
    cpu = server.cpu_seconds(by_type=True)
    t0 = time.perf_counter()
    click_nav(page, "map", "Latent map")
    return t_pick, asked_at(page, t0), cpu


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help="root holding MNIST/raw (default: $LATENT_LAB_DATA or ../shared/data)")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: a 3 s model, short drags, 2 extra sessions, library timings on 500 codes")
    p.add_argument("--skip-libs", action="store_true", help="skip the library timings")
    p.add_argument("--skip-app", action="store_true", help="skip the browser part (library timings only)")
    p.add_argument("--train-budget", type=float, default=None, help="seconds to train the new 20-d VAE (default 30)")
    p.add_argument("--sessions", type=int, default=None, help="extra browser sessions for the memory figure (5)")
    p.add_argument("--map-timeout", type=float, default=None,
                   help="seconds to wait for a final map (240; --quick: 60)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (server log, caches)")
    p.add_argument("--lib-child", help=argparse.SUPPRESS)
    p.add_argument("--codes", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.lib_child:
        print(json.dumps(lib_child(args.lib_child, args.codes)))
        return 0

    quick = args.quick
    train_budget = args.train_budget or (3.0 if quick else 30.0)
    sessions = args.sessions or (2 if quick else 5)
    map_timeout = args.map_timeout or (60.0 if quick else 240.0)
    drag_s = 1.0 if quick else 2.0
    tmp = Path(tempfile.mkdtemp(prefix="bench-app-"))
    home, cache = tmp / "home", tmp / "cache"
    env = app_env(home, cache, args.data_dir)
    table = Table()
    log(f"temp folder {tmp}")

    # 1. the never-seen model, trained before the server starts so it does not compete with it
    staged = tmp / "staging" / "bench-never-seen-20d.safetensors"
    staged.parent.mkdir(parents=True)
    log(f"training a 20-d VAE for {train_budget:g} s (the 'never seen' model)")
    try:
        trained = train_never_seen(args.data_dir, staged, env, train_budget)
        log(f"trained: {trained.get('test_nats')} test nats in {trained.get('train_seconds')} s")
    except Exception as e:
        log(f"training the new model failed: {e}")
        staged = None

    if not args.skip_app:
        try:
            run_app(args, table, env, tmp, cache, home, staged, sessions, map_timeout, drag_s)
        except Exception as e:  # e.g. Playwright or Chromium missing
            traceback.print_exc(file=sys.stderr)
            table.add("app benchmark", f"n/a ({type(e).__name__}: {str(e).splitlines()[0][:150]})")

    if not args.skip_libs:
        codes = tmp / "codes.npy"
        try:
            note = make_codes(staged, args.data_dir, codes, 500 if quick else None)
            log(f"library timings on {note}")
            library_timings(table, codes, note, env, tmp, timeout=900)
        except Exception as e:
            table.add("library timings", f"n/a ({type(e).__name__}: {e})")

    table.print(f"App benchmark on {os.cpu_count()} CPU cores"
                + ("  [--quick: smoke run, figures not meaningful]" if quick else ""))
    if args.keep:
        print(f"\nkept {tmp} (server.log, caches)")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def run_app(args, table: Table, env: dict, tmp: Path, cache: Path, home: Path, staged: Path | None,
            sessions: int, map_timeout: float, drag_s: float) -> None:
    from playwright.sync_api import sync_playwright

    from vae.checkpoint import ModelLibrary
    from vae.paths import BUNDLED_MODELS

    bundled = [e for e in ModelLibrary(tmp / "empty-library", BUNDLED_MODELS).entries() if e.bundled]
    port = args.port or free_port()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)  # a browser already open
        _, page, tracker = open_page(browser)
        log(f"starting streamlit on port {port}")
        server = Server(env, port, tmp / "server.log")
        try:
            # ---- start to first page
            def start():
                t_health, t = first_page(page, tracker, server, need_picture=bool(bundled))
                return [("start: server answers /_stcore/health", secs(t_health), "", None),
                        ("start: first page rendered in the browser", secs(t), "< 5 s", t < 5)]
            table.measure("start: first page rendered in the browser", "< 5 s", start)

            # ---- map page of a bundled model, and what it sends
            def bundled_map():
                if not page_exists("map"):
                    raise NA("pages/map.py does not exist yet")
                if not bundled:
                    raise NA("no bundled models in assets/models")
                e = ([e for e in bundled if e.id == "vae-2d"] or bundled)[0]  # the app's default model
                ws0, http0, t0 = tracker.ws_bytes, tracker.http_bytes, time.perf_counter()
                click_nav(page, "map", "Latent map")
                t0 = asked_at(page, t0)
                t, t_file, t_pic, note = wait_final_map(tracker, t0, cache, e.fingerprint, None, 60)
                ws = tracker.ws_bytes - ws0
                page.wait_for_timeout(500)  # late HTTP fetches (chart code, component assets) belong to the load
                http = tracker.http_bytes - http0
                precomputed = bool(glob.glob(str(ROOT / "assets" / "maps" / f"{e.fingerprint}-*.npz")))
                return [(f"map page of a bundled model ({e.name}) after clicking it",
                         secs(t) + (f"; first picture {secs(t_pic)}" if t_pic is not None else "")
                         + ("" if precomputed else "; no precomputed maps in assets/maps")
                         + (f"; {note}" if note else ""), "< 2 s", t < 2),
                        ("map payload: websocket bytes while the map page loads", mb(ws), "< 1 MB", ws < 1e6),
                        ("  plus HTTP (static chart code etc., browser-cached after the first visit)", mb(http),
                         "", None)]
            table.measure("map page of a bundled model after clicking it", "< 2 s", bundled_map)

            # ---- slider frames per second, every bundled model
            def sliders():
                if not page_exists("sliders"):
                    raise NA("pages/sliders.py does not exist yet")
                t0 = time.perf_counter()
                click_nav(page, "sliders", "Sliders")
                tracker.wait_idle(t0, timeout=60)
                rows = []
                for e in bundled:
                    try:
                        select_model(page, tracker, e.name)
                        r = drag_fps(page, drag_s)
                        page.wait_for_timeout(200)
                        tracker.wait_idle(time.perf_counter() - 0.2, timeout=60)  # the release reruns the page
                        detail = (f"{r['fps']:.0f} fps ({r['frames']} frames / {r['seconds']:.1f} s; "
                                  f"{r['input_rate']:.0f} mouse input events/s"
                                  + (f"; decode {r['decode_ms']:.2f} ms" if r["decode_ms"] is not None else "") + ")")
                        rows.append((f"slider fps, mouse drag: {e.name}", detail, ">= 30", r["fps"] >= 30))
                        r = synthetic_drag_fps(page, drag_s)
                        rows.append((f"slider fps, an input event every animation frame: {e.name}",
                                     f"{r['fps']:.0f} fps ({r['frames']} frames / {r['seconds']:.1f} s)",
                                     ">= 30", r["fps"] >= 30))
                    except NA as err:
                        rows.append((f"slider fps: {e.name}", f"n/a ({err})", ">= 30", None))
                return rows
            table.measure("slider fps during a drag", ">= 30", sliders)

            # ---- server memory with MNIST and the bundled models loaded
            base_rss = [None]

            def memory():
                # Every page once first (the library table loads pandas, AE vs VAE the classifier, ...):
                # the figure is the server as a class really uses it, not just the pages measured above.
                for path, title in (("interpolate", "Interpolate"), ("compare", "AE vs VAE"),
                                    ("gallery", "Samples & errors"), ("train", "Train & library"),
                                    ("map", "Latent map")):
                    if page_exists(path):
                        t0 = time.perf_counter()
                        click_nav(page, path, title)
                        tracker.wait_idle(t0, timeout=120)
                page.wait_for_timeout(1000)
                base_rss[0] = server.rss()
                return (mb(base_rss[0]) + f" (peak {mb(server.rss('VmHWM'))})", base_rss[0] < 1e9)
            table.measure("server RSS, MNIST and bundled models loaded, every page visited (1 session)", "< 1 GB", memory)

            def workers():
                total, parts = server.children_rss()
                if not parts:
                    raise NA("no child processes")
                return [("  map worker processes (t-SNE, UMAP) beside it (info)",
                         f"{mb(total)}: " + ", ".join(parts), "", None),
                        ("  server and workers together (info)", mb(total + (base_rss[0] or server.rss())), "", None)]
            table.measure("  map worker processes (info)", "", workers)

            def extra_sessions():
                if base_rss[0] is None:
                    raise NA("no base RSS")
                target = "map" if page_exists("map") else ("sliders" if page_exists("sliders") else "")
                opened = []
                for i in range(sessions):
                    c = browser.new_context(viewport={"width": 1400, "height": 1000})
                    pg = c.new_page()
                    tr = Tracker(pg)
                    t0 = time.perf_counter()
                    pg.goto(f"{server.url}/{target}", wait_until="commit")
                    tr.wait_idle(t0, timeout=120)
                    opened.append(c)
                page.wait_for_timeout(2000)
                after = server.rss()
                per = (after - base_rss[0]) / sessions
                for c in opened:
                    c.close()
                return (f"{mb(per)} per session ({sessions} sessions on /{target or 'home'}: "
                        f"{mb(base_rss[0])} -> {mb(after)})", per < 50e6)
            table.measure("extra RSS per additional browser session", "< 50 MB", extra_sessions)

            # ---- a model the server has never seen: first picture, final t-SNE, UMAP, seen before
            nm: dict = {}  # state shared by the never-seen model's steps

            def open_new_model():
                if staged is None:
                    raise NA("the new model could not be trained")
                if not page_exists("map"):
                    raise NA("pages/map.py does not exist yet")
                nm["fp"] = add_to_library(home, staged)
                nm["t_sel"], t0, nm["cpu0"] = open_map_of(page, tracker, server, NEW_MODEL_NAME)
                nm["t0"] = t0
                deadline = t0 + 60
                while time.perf_counter() < deadline:
                    if tracker.state()["map"] and any(x > t0 for x in tracker.started):
                        t = time.perf_counter() - t0
                        return secs(t), t < 1
                    tracker.pump(10)
                raise NA("no chart within 60 s")
            table.measure("map, never-seen model: first useful picture (from opening the page)", "< 1 s",
                          open_new_model)

            def new_tsne():
                if "t0" not in nm:
                    raise NA("the map page of the new model did not open")
                t0 = nm["t0"]
                b0 = tracker.ws_bytes
                cpu0 = nm["cpu0"]
                choose_option(page, METHOD_LABELS["tsne"])  # the page's default for a 20-d model: then a no-op
                t_final, t_file, _, note = wait_final_map(tracker, t0, cache, nm["fp"], "tsne", map_timeout)
                cpu1 = server.cpu_seconds(by_type=True)
                nm["tsne_done"] = True
                return [("map, never-seen model: final t-SNE on screen (from opening the page)",
                         secs(t_final) + (f"; map computed at {secs(t_file)}" if t_file is not None else "")
                         + f"; {secs(t_final + t0 - nm['t_sel'])} from picking the model"
                         + (f"; {note}" if note else ""), "< 5 s", t_final < 5),
                        ("  websocket bytes while the t-SNE map formed (live redraws included)",
                         mb(tracker.ws_bytes - b0), "", None),
                        ("  CPU seconds used meanwhile, by process (2 cores: 2 CPU s per second)",
                         ", ".join(f"{k} {cpu1.get(k, 0.0) - cpu0.get(k, 0.0):.1f}" for k in {**cpu0, **cpu1}), "", None)]
            table.measure("map, never-seen model: final t-SNE on screen", "< 5 s", new_tsne)

            def new_umap():
                if "t0" not in nm:
                    raise NA("the map page of the new model did not open")
                tracker.wait_idle(time.perf_counter(), timeout=60)
                t1 = time.perf_counter()
                choose_option(page, METHOD_LABELS["umap"])
                t1 = asked_at(page, t1)
                t_final, t_file, t_pic, note = wait_final_map(tracker, t1, cache, nm["fp"], "umap", map_timeout)
                return (secs(t_final) + (f"; map computed at {secs(t_file)}" if t_file is not None else "")
                        + (f"; first picture {secs(t_pic)}" if t_pic is not None else "")
                        + (f"; {note}" if note else ""), t_final < 5)
            table.measure("map, never-seen model: final UMAP on screen (from asking)", "< 5 s", new_umap)

            def seen_before():
                if "t0" not in nm:
                    raise NA("the map page of the new model did not open")
                method, note = "tsne", ""
                if not nm.get("tsne_done"):  # fall back on PCA, so the figure exists even on a slow machine
                    method, note = "pca", "PCA, as t-SNE never finished; "
                    tracker.wait_idle(time.perf_counter(), timeout=60)
                    t = time.perf_counter()
                    choose_option(page, METHOD_LABELS["pca"])
                    wait_final_map(tracker, t, cache, nm["fp"], "pca", 60)  # the first time
                    t = time.perf_counter()
                    choose_option(page, METHOD_LABELS["umap"])  # away, then back
                    tracker.wait_idle(t, timeout=60)
                tracker.wait_idle(time.perf_counter(), timeout=60)
                t2 = time.perf_counter()
                choose_option(page, METHOD_LABELS[method])
                t2 = asked_at(page, t2)
                t_seen, _, _, why = wait_final_map(tracker, t2, cache, nm["fp"], method, 30)
                return note + secs(t_seen) + (f"; {why}" if why else ""), t_seen < 0.3
            table.measure("map seen before (the t-SNE map again, from asking)", "< 0.3 s", seen_before)

            table.measure("server RSS at the end (after the new model's maps; info)", "",
                          lambda: (mb(server.rss()) + f" (peak {mb(server.rss('VmHWM'))}); workers "
                                   + mb(server.children_rss()[0]), None))
        finally:
            server.stop()
            browser.close()


if __name__ == "__main__":
    sys.exit(main())
