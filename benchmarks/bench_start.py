"""Start to first page, then the bundled map page, on several fresh servers: their spread.

    python -m benchmarks.bench_start                  # 5 rounds, ~1 minute
    python -m benchmarks.bench_start --rounds 10 --pause 3

`bench_app.py` measures both figures once per run; on this 2-core machine one run says little.
Each round here starts the real app (`python -m streamlit run app.py`, fresh model library and
caches) with a browser already open, and measures as bench_app.py does:
- start: from starting the server to the first page rendered in Chromium (its script run
  finished, the title and the picture of prior samples drawn);
- then, after `--pause` seconds (default 0: a click as soon as the page is there, as in
  bench_app.py), the Latent map of the default bundled model: from the click to the final map
  on screen.
It prints each round, the CPU seconds of the server and Chromium in the start window, and the
medians. Figures, not asserts; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import bench_app as B  # the server, browser and page helpers

DEFAULT_MODEL = "vae-2d"


NAV_TIMING_JS = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {origin: performance.timeOrigin, html: n.responseEnd, dom: n.domContentLoadedEventEnd, load: n.loadEventEnd};
}"""


def timeline(page, tracker: B.Tracker, server: B.Server) -> str:
    """Where a start's seconds went, from the server's start: the page's HTML received, its scripts
    loaded (the load event), the first script run started and finished on the server."""
    try:
        nav = page.evaluate(NAV_TIMING_JS)
    except Exception:
        return ""
    offset = time.perf_counter() - time.time()  # perf_counter = wall clock + offset

    def at(ms):
        return (nav["origin"] + ms) / 1000 + offset - server.t_start

    parts = [f"HTML {at(nav['html']):.2f}", f"scripts loaded {at(nav['load']):.2f}"]
    if tracker.started:
        parts.append(f"first run {tracker.started[0] - server.t_start:.2f}")
    if tracker.finished:
        parts.append(f"-{tracker.finished[0] - server.t_start:.2f}")
    return ", " + " ".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=B.DEFAULT_DATA_DIR)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pause", type=float, default=0.0, help="seconds between the first page and the map click")
    args = p.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from vae.checkpoint import ModelLibrary

    from vae.paths import BUNDLED_MODELS

    tmp = Path(tempfile.mkdtemp(prefix="bench-start-"))
    entry = next(e for e in ModelLibrary(tmp / "empty", BUNDLED_MODELS).entries() if e.id == DEFAULT_MODEL)
    starts, maps = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=B.CHROMIUM, args=B.CHROMIUM_ARGS)
        for i in range(1, args.rounds + 1):
            run = tmp / f"round-{i}"
            home, cache = run / "home", run / "cache"
            env = B.app_env(home, cache, args.data_dir)
            run.mkdir(parents=True)
            ctx, page, tracker = B.open_page(browser)
            server = B.Server(env, B.free_port(), run / "server.log")
            try:
                cpu0 = server.cpu_seconds()
                t_health, t_start = B.first_page(page, tracker, server)
                cpu1 = server.cpu_seconds()
                starts.append(t_start)
                line = (f"round {i}: first page {t_start:.2f} s (health {t_health:.2f} s{timeline(page, tracker, server)}; "
                        f"CPU s meanwhile: server {cpu1['server']:.1f}, Chromium {cpu1['chromium'] - cpu0['chromium']:.1f})")
                time.sleep(args.pause)
                t0 = time.perf_counter()
                B.click_nav(page, "map", "Latent map")
                t0 = B.asked_at(page, t0)
                try:
                    t_map, _, t_pic, note = B.wait_final_map(tracker, t0, cache, entry.fingerprint, None, 60)
                    maps.append(t_map)
                    line += f"; bundled map {t_map:.2f} s after the click" + (f" ({note})" if note else "")
                except B.NA as e:
                    line += f"; bundled map n/a ({e})"
                print(line, flush=True)
            finally:
                server.stop()
                ctx.close()
            time.sleep(2)  # let the stopped server's workers exit
    if starts:
        print(f"first page, {len(starts)} rounds: " + ", ".join(f"{r:.2f}" for r in starts)
              + f" s; median {statistics.median(starts):.2f} s; under 5 s in {sum(r < 5 for r in starts)} "
              f"of {len(starts)} (target < 5 s)")
    if maps:
        print(f"bundled map after the click (pause {args.pause:g} s), {len(maps)} rounds: "
              + ", ".join(f"{r:.2f}" for r in maps) + f" s; median {statistics.median(maps):.2f} s; under 2 s in "
              f"{sum(r < 2 for r in maps)} of {len(maps)} (target < 2 s)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
