"""How soon the Interpolate and AE vs VAE pages show their walk on the latent map, in headless Chromium.

    python -m benchmarks.bench_pages [--rounds 3] [--data-dir ../shared/data]

Starts the real app (`streamlit run app.py`, as the browser tests do), and per round, for each page:
a fresh browser context (empty HTTP cache, as on a first visit) opens the app, clicks the page in
the sidebar, and the clock stops when every map of the page has drawn its walk (the canvas map's
test hook `window.__latentLabMaps[key].pathLength()`). Round 1 includes the server's first
computation of the walk and codes; later rounds hit its caches. No target: issue #5 sets none for
these pages; the figures go in closing notes. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, wait_for_app
from vae.paths import ROOT

PAGES = (("Interpolate", ("interp_map",)), ("AE vs VAE", ("compare_map_0", "compare_map_1")))
DRAWN = """(keys) => { const m = window.__latentLabMaps || {};
  return keys.every(k => m[k] && m[k].state.root && m[k].state.root.isConnected && m[k].pathLength() > 0); }"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data-dir", default=os.environ.get("LATENT_LAB_DATA", str(ROOT.parent / "shared" / "data")))
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    proc, url = start_server(home, Path(args.data_dir))
    times: dict[str, list[float]] = {name: [] for name, _ in PAGES}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(args.rounds):
                for name, keys in PAGES:
                    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = ctx.new_page()
                    page.goto(url)
                    page.wait_for_selector(f'[data-testid="stSidebarNav"] a:has-text("{name}")', timeout=90_000)
                    wait_for_app(page)
                    t0 = time.perf_counter()
                    page.locator('[data-testid="stSidebarNav"] a', has_text=name).click()
                    page.wait_for_function(DRAWN, arg=list(keys), timeout=120_000)
                    times[name].append(time.perf_counter() - t0)
                    ctx.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    print("| page: click in the sidebar → the walk drawn on every map | round 1 | later rounds (median) |")
    print("|---|---|---|")
    for name, ts in times.items():
        later = f"{statistics.median(ts[1:]):.2f} s" if len(ts) > 1 else "n/a"
        print(f"| {name} | {ts[0]:.2f} s | {later} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
