"""The digit-likeness layer of the Latent map: how long the layer of a view takes the first time, and cached.

    python -m benchmarks.bench_layer               # the bundled 2-d AE (native) and 16-d VAE (PCA), ~30 s
    python -m benchmarks.bench_layer --views 12 --n 48

For each model and map it takes the whole map's view (as the page first asks for it) and `--views`
zoomed and panned views inside it, and times the path a page takes (ui.map_layers.layer_for, through
its st.cache_data): snapping the view, mapping the 48 x 48 points back to codes, decoding them, scoring
them with the digit classifier and drawing the PNG. "first" is a view nobody asked for before, "cached"
the same view asked again (what a second student, or a return to the view, gets); the CPU time of the
first time beside it (all of torch's threads together), which other work on the machine inflates less. It also prints the
size of what a new view sends to the browser (the layer's PNG, base64). Issue 15's target: under 1 s
the first time, instant when cached. Figures, not asserts; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import numpy as np


def _views(y: np.ndarray, count: int, seed: int = 0) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The whole map's view (4% padding, as the canvas starts), then `count` zooms (1.5x to 8x) at random
    places inside it."""
    lo, hi = y.min(0), y.max(0)
    pad = (hi - lo) * 0.04
    lo, hi = lo - pad, hi + pad
    rng = np.random.default_rng(seed)
    out = [((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1])))]
    for _ in range(count):
        zoom = rng.uniform(1.5, 8.0)
        span = (hi - lo) / zoom
        c = rng.uniform(lo + span / 2, hi - span / 2)
        out.append(((float(c[0] - span[0] / 2), float(c[0] + span[0] / 2)),
                    (float(c[1] - span[1] / 2), float(c[1] + span[1] / 2))))
    return out


def _ms(seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"median {statistics.median(ms):7.1f} ms  max {max(ms):7.1f} ms"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=8, help="zoomed views per map besides the whole map (8)")
    ap.add_argument("--n", type=int, default=None, help="layer points per side (the page's, 48)")
    args = ap.parse_args(argv)
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # bare mode: no "missing ScriptRunContext" noise

    import torch

    from ui import map_layers, state
    from vae.maps.projection import compute_map

    n = args.n or map_layers.LAYER_N
    print(f"layer of {n} x {n} points per view; torch {torch.__version__}, {torch.get_num_threads()} threads")
    t0 = time.perf_counter()
    state.classifier()
    print(f"classifier loaded in {time.perf_counter() - t0:.2f} s (once per server)")
    for model_id, method in (("ae-2d", "native"), ("vae-16d", "pca")):
        a = state.get_model(model_id)
        z = state.active_codes(a)
        y = compute_map(z, method)
        t0 = time.perf_counter()
        map_layers.plane(a, method)
        plane_s = time.perf_counter() - t0
        first, cpu, cached, sizes, shares = [], [], [], [], []
        for view in _views(y, args.views):
            t0, c0 = time.perf_counter(), time.process_time()
            q, png, scores = map_layers.layer_for(a, method, view, n)
            first.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            t0 = time.perf_counter()
            map_layers.layer_for(a, method, view, n)
            cached.append(time.perf_counter() - t0)
            sizes.append(len(png))
            shares.append(map_layers.visible_share(scores, q, view))
        print(f"\n{model_id}, {method} map (plane fitted in {plane_s * 1000:.0f} ms, once per model):")
        print(f"  first time: {_ms(first)}   (whole map {first[0] * 1000:.1f} ms)")
        print(f"  its CPU time, all threads: {_ms(cpu)}   (on a busy machine the wall time above grows, this not)")
        print(f"  cached:     {_ms(cached)}")
        print(f"  sent per view: {statistics.median(sizes) / 1024:.1f} KB of base64 PNG (max {max(sizes) / 1024:.1f} KB)")
        print(f"  digit-like share of the whole map's view {shares[0]:.0%}; zoomed views "
              f"{min(shares[1:], default=float('nan')):.0%} to {max(shares[1:], default=float('nan')):.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
