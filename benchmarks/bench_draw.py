"""How long the server takes from a stroke's end to the drawing placed on the map, on the bundled models.

    python -m benchmarks.bench_draw [--rounds 5]

Two figures per bundled model and map method (t-SNE and UMAP from their bundled maps):
- page: one run of the Draw page under AppTest with a new drawing, as the pad's report makes it run
  (prepare, encode, decode, classify, 8 nearest, place, the map's data with the mark), AppTest's own
  overhead included, after one warm-up run;
- steps: the same core calls without Streamlit, each timed (median of the rounds, milliseconds).
The issue's target is under 300 ms. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

SEVEN = [[[80, 60], [200, 60], [120, 230]]]


def jittered(k: int) -> list:
    """A new drawing each round (so the page reads it again): the 7, moved a little."""
    rng = np.random.default_rng(k)
    dx, dy = rng.uniform(-20, 20, 2)
    return [[[x + dx, y + dy] for x, y in s] for s in SEVEN]


def page_times(model_id: str, method: str, rounds: int) -> list[float]:
    from streamlit.testing.v1 import AppTest

    from ui import draw_pad
    from vae.paths import ROOT

    report = {"v": None}
    real = draw_pad.draw_pad

    def fake(key, init=None, size=280):
        real(key, init, size)
        return report["v"]

    draw_pad.draw_pad = fake
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["active_model"] = model_id
        at.session_state[f"draw_method_{'plane' if method == 'native' else 'proj'}"] = method
        at.switch_page("pages/draw.py")
        at.run()
        report["v"] = {"size": 280, "strokes": jittered(1000), "rev": 0}
        at.run()  # warm: the codes, the map, the PCA fit are cached from here on
        out = []
        for k in range(rounds):
            report["v"] = {"size": 280, "strokes": jittered(k), "rev": k + 1}
            t0 = time.perf_counter()
            at.run()
            out.append(time.perf_counter() - t0)
            assert not at.exception, at.exception[0].value
        return out
    finally:
        draw_pad.draw_pad = real


def step_times(model_id: str, method: str, rounds: int) -> dict[str, float]:
    import torch

    from vae.assets import MAPS_DIR, test_set
    from vae.checkpoint import ModelLibrary
    from vae.classifier import load_classifier, predict_proba
    from vae.drawing import prepare_strokes
    from vae.images import to_uint8
    from vae.latent import decode, encode
    from vae.maps import neighbours
    from vae.maps.projection import default_params, make_projection
    from vae.maps.service import MapStore
    from vae.paths import BUNDLED_MODELS

    entry = ModelLibrary(BUNDLED_MODELS, BUNDLED_MODELS).get(model_id)
    from vae.checkpoint import load_checkpoint

    model, _ = load_checkpoint(entry.path)
    clf = load_classifier()
    codes = encode(model, test_set("mnist").x_test)
    y = MapStore(MAPS_DIR).get(entry.fingerprint, method, default_params(method))
    pca = make_projection("pca").fit(codes)
    times: dict[str, list[float]] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        value = fn()
        times.setdefault(name, []).append(1000 * (time.perf_counter() - t0))
        return value

    for k in range(rounds + 1):
        x = timed("prepare", lambda: prepare_strokes(jittered(k)))
        u8 = torch.from_numpy(to_uint8(x)[None])
        z = timed("encode", lambda: encode(model, u8)[0])
        x_hat = timed("decode", lambda: decode(model, z[None])[0])
        timed("classify", lambda: predict_proba(clf, np.stack([x, x_hat])))
        timed("nearest 8", lambda: neighbours.nearest(codes, z[None], 8))
        if method == "native":
            timed("place", lambda: z[:2])
        elif method == "pca":
            timed("place", lambda: pca.transform(z[None]))
        else:
            timed("place", lambda: neighbours.place(codes, y, z[None], 8))
    return {name: statistics.median(v[1:]) for name, v in times.items()}  # the first round warms up


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    from vae.maps.service import MapService

    MapService.prestart = lambda self: None  # bundled maps only: no worker processes needed
    rows = []
    for model_id in ("vae-2d", "ae-2d", "vae-16d", "ae-16d"):
        for method in (["native"] if model_id.endswith("2d") else []) + ["pca", "tsne", "umap"]:
            pages = page_times(model_id, method, args.rounds)
            steps = step_times(model_id, method, args.rounds)
            rows.append((model_id, method, statistics.median(pages) * 1000, max(pages) * 1000, steps))
    names = list(rows[0][4])
    print(f"{'model':8} {'method':7} {'page p50':>9} {'page max':>9}  " + " ".join(f"{n:>10}" for n in names)
          + f" {'steps sum':>10}")
    for model_id, method, p50, pmax, steps in rows:
        print(f"{model_id:8} {method:7} {p50:8.0f}ms {pmax:8.0f}ms  " + " ".join(f"{steps[n]:8.1f}ms" for n in names)
              + f" {sum(steps.values()):8.1f}ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
