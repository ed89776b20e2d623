"""The CPU work of the AE vs VAE page and of a map's first "Colour by neighbours kept", in process CPU seconds.

    python -m benchmarks.bench_compare                 # ~1-2 minutes on 2 cores
    python -m benchmarks.bench_compare --profile 25    # and cProfile's 25 costliest functions of its measurements

Wall-clock figures on a shared machine say more about the neighbours than about the code, so this
counts CPU seconds (`time.process_time`: every thread of the process, torch's included), which other
work inflates far less. It runs the page through AppTest (app.py's navigation, as tests/apptest.py
does) with the bundled models and classifier, the Python modules already imported (a server that has
been up), in a fresh library and cache folder:

- "cold": the page's first render on a server that has not measured these models yet (every
  st.cache_data and st.cache_resource emptied; the models, the classifier and the test digits load again);
- "warm": the next student opening it (a new session, the caches held);
- the settings a student changes (a new seed, a grid size, the path, the other bundled pair, back):
  each a rerun of the same session with one widget changed;
- the classifier alone: images a second, on the torch threads the server has and on one;
- neighbours kept: `ui.map_layers.kept` for each bundled model's PCA (16-d), t-SNE and UMAP map, the
  first time (its cache emptied) and cached.

Figures, not asserts; the class-load benchmark (bench_class) is the one with targets.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import tempfile
import time
from contextlib import contextmanager


@contextmanager
def _clock(out: dict, name: str):
    t0, c0 = time.perf_counter(), time.process_time()
    yield
    out[name] = (time.process_time() - c0, time.perf_counter() - t0)


def _row(name: str, cpu: float, wall: float) -> str:
    return f"  {name:<44} CPU {cpu:6.2f} s   wall {wall:6.2f} s"


def _classifier_rate(n: int = 2000, repeats: int = 3) -> list[tuple[int, float]]:
    """Images a second through vae.classifier.digit_confidence, decoded digits of the bundled 16-d VAE."""
    import torch

    from ui import state
    from vae.classifier import digit_confidence
    from vae.latent import decode, prior_samples

    clf = state.classifier()
    a = state.get_model("vae-16d")
    images = decode(a.model, prior_samples(n, a.model.latent_dim, seed=0))
    out = []
    threads = torch.get_num_threads()
    for t in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(t)
        digit_confidence(clf, images[:200])  # warm
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            digit_confidence(clf, images)
            times.append(time.perf_counter() - t0)
        out.append((t, n / statistics.median(times)))
    torch.set_num_threads(threads)
    return out


def _profile_measure(top: int) -> None:
    """cProfile of the page's measurements on a fresh server (AppTest runs a page on a thread of its own,
    which cProfile does not follow, so this calls what the page calls, ui.compare.measure, directly)."""
    import streamlit as st

    from ui import compare, state
    from vae.compare import BUNDLED_PAIRS
    from vae.measures import DEFAULT_GRID, N_PRIOR, WALK_STEPS

    st.cache_data.clear()
    st.cache_resource.clear()
    prof = cProfile.Profile()
    c0 = time.process_time()
    prof.enable()
    models = [state.get_model(i) for i in BUNDLED_PAIRS["16-d"]]
    clf, _ = compare.scorer(models)
    compare.measure(models, clf, *DEFAULT_GRID, N_PRIOR, 0, 3, 2, WALK_STEPS, "linear", 40)
    prof.disable()
    print(f"\nui.compare.measure of the 16-d pair on a fresh server: CPU {time.process_time() - c0:.2f} s; "
          f"cProfile's top {top} by internal time:")
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def _page() -> dict:
    import streamlit as st

    from tests.apptest import open_page

    figures: dict = {}
    open_page("pages/home.py")  # imports app.py, the pages' modules, torch (not counted)
    st.cache_data.clear()
    st.cache_resource.clear()
    with _clock(figures, "cold: first render of a fresh server"):
        at = open_page("pages/compare.py")
    with _clock(figures, "warm: the next student's first render"):
        open_page("pages/compare.py")
    seed = at.number_input(key="compare_seed")
    with _clock(figures, "a new seed (+1)"):
        seed.set_value(seed.value + 1).run()
    with _clock(figures, "grid 14 -> 18 points per side"):
        at.slider(key="compare_grid").set_value(18).run()
    with _clock(figures, "standard deviations 2 -> 3"):
        at.slider(key="compare_sds").set_value(3.0).run()
    with _clock(figures, "path: spherical"):
        at.radio(key="compare_method").set_value("spherical").run()
    with _clock(figures, "walk to another test digit"):
        at.number_input(key="compare_to").set_value(7).run()
    with _clock(figures, "the bundled 2-d pair (cold)"):
        at.radio(key="compare_pair").set_value("2-d").run()
    with _clock(figures, "back to the 16-d pair (cached)"):
        at.radio(key="compare_pair").set_value("16-d").run()
    assert not at.exception, [e.value for e in at.exception]
    return figures


def _cache_sizes() -> list[tuple[str, int]]:
    """(function, bytes) of every st.cache_data cache now, largest first: what the caches hold (a hit
    unpickles its entry, so an entry's bytes are also what each run reading it copies)."""
    from streamlit.runtime.caching.cache_data_api import get_data_cache_stats_provider

    sizes: dict[str, int] = {}
    for stats in get_data_cache_stats_provider().get_stats().values():
        for stat in stats:
            sizes[stat.cache_name] = sizes.get(stat.cache_name, 0) + stat.byte_length
    return sorted(sizes.items(), key=lambda r: -r[1])


def _neighbours() -> list[tuple[str, float, float, float, float, float]]:
    """(map, first CPU s, first wall s, cached wall s, share kept, CPU s to count them) per bundled PCA (above
    2-d), t-SNE and UMAP map; "first" is ui.map_layers.kept with its cache emptied (it finds the stored copy where
    python -m vae.assets made one), "to count" vae.maps.neighbours.kept_neighbours itself (a map with no copy)."""
    from ui import map_layers, state
    from vae.assets import MAPS_DIR
    from vae.maps.neighbours import kept_neighbours, kept_share
    from vae.maps.projection import default_params
    from vae.maps.service import MapStore, map_key

    store, out = MapStore(MAPS_DIR), []
    for model_id in ("vae-16d", "ae-16d", "vae-2d"):
        a = state.get_model(model_id)
        z = state.active_codes(a)
        for method in ("pca", "tsne", "umap"):
            if method == "pca" and a.model.latent_dim <= 2:
                continue  # offered only where PCA drops dimensions
            y = store.get(a.fingerprint, method, default_params(method))
            if y is None:
                continue
            key = map_key(a.fingerprint, method, default_params(method))
            map_layers.kept.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            kept = map_layers.kept(key, z, y)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            t0 = time.perf_counter()
            map_layers.kept(key, z, y)
            cached = time.perf_counter() - t0
            c0 = time.process_time()
            kept_neighbours(z, y, map_layers.K)
            out.append((f"{model_id} {method}", cpu, wall, cached, kept_share(kept, map_layers.K),
                        time.process_time() - c0))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print cProfile's N costliest functions (internal time) of the cold measurements")
    ap.add_argument("--skip-page", action="store_true", help="only the classifier and neighbours kept")
    args = ap.parse_args(argv)
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    tmp = tempfile.mkdtemp(prefix="bench-compare-")
    os.environ.update(LATENT_LAB_HOME=f"{tmp}/home", XDG_CACHE_HOME=f"{tmp}/cache")
    from vae.maps.service import MapService

    MapService.prestart = lambda self: None  # no map workers: this page draws no t-SNE or UMAP

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average "
          f"{os.getloadavg()[0]:.1f} before")
    for threads, rate in _classifier_rate():
        print(f"  classifier, {threads} thread{'s' if threads > 1 else ''}: {rate:,.0f} images/s")
    if not args.skip_page:
        print("\nAE vs VAE (the bundled 16-d pair, the page's defaults):")
        for name, (cpu, wall) in _page().items():
            print(_row(name, cpu, wall))
        print("\nst.cache_data after that tour (all entries of each function):")
        for name, size in _cache_sizes():
            print(f"  {name:<44} {size / 1e6:7.2f} MB")
        if args.profile:
            _profile_measure(args.profile)
    print("\nneighbours kept (10 nearest), through ui.map_layers.kept:")
    for name, cpu, wall, cached, share, count in _neighbours():
        print(f"  {name:<14} first: CPU {cpu:5.2f} s, wall {wall:5.2f} s; cached {cached * 1000:5.1f} ms; "
              f"kept {share:.0%}; counting them (no stored copy): CPU {count:5.2f} s")
    print(f"\nload average {os.getloadavg()[0]:.1f} after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
