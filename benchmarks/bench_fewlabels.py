"""The Few labels page: how long one model's curves take cold, the pixel baseline, and a stored result.

    python -m benchmarks.bench_fewlabels             # every bundled model and the pixels, 3 rounds, ~1.5 minutes
    python -m benchmarks.bench_fewlabels --rounds 1 --quick

Per bundled model: encoding the 10,000 test digits (what the page does once per model, `ui.state.codes`),
then vae.fewlabels.few_labels on the codes with the page's settings (8 values of k, 5 draws, both methods),
wall and CPU time (all threads together, which other work on the machine inflates less), and the chart
built from the result; "cold" is encode + measure + chart, the issue's figure (target: < 2 s for one
model). Then the pixel baseline (784-d, once per dataset and machine), and reading a stored result back
(what every later visit costs, besides Streamlit's memory cache). Figures, not asserts; the load average is printed, run it on an idle machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time


def _fmt(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):6.2f} s (max {max(seconds):5.2f})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="measurements per figure (3): their median and max")
    ap.add_argument("--quick", action="store_true", help="one model, one draw: a smoke run, figures mean nothing")
    args = ap.parse_args(argv)
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # bare mode: no "missing ScriptRunContext" noise

    import torch

    from ui.fewlabels import Source, chart
    from vae.assets import bundled_test_set
    from vae.checkpoint import ModelLibrary, load_checkpoint
    from vae.fewlabels import DRAWS, KS, ResultStore, few_labels, pixels
    from vae.latent import encode
    from vae.paths import BUNDLED_MODELS

    draws = 1 if args.quick else DRAWS
    data = bundled_test_set()
    labels = data.y_test.numpy()
    print(f"{len(labels):,} test digits, k in {KS}, {draws} draws; torch {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    entries = ModelLibrary(BUNDLED_MODELS).entries()[:1 if args.quick else None]
    print(f"{'model':<28} {'encode':>8} {'measure':>22} {'CPU':>7} {'chart':>7} {'cold':>22} {'CPU':>7}")
    last = None
    for e in entries:
        model, _ = load_checkpoint(e.path)
        enc, meas, cpu, fig, cold, cold_cpu = [], [], [], [], [], []
        for _ in range(args.rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            z = encode(model, data.x_test)
            t1, c1 = time.perf_counter(), time.process_time()
            last = few_labels(z, labels, KS, draws)
            t2, c2 = time.perf_counter(), time.process_time()
            chart([(Source("k", e.name, "active", lambda: z), last)], "knn", 10, 10)
            t3, c3 = time.perf_counter(), time.process_time()
            enc.append(t1 - t0), meas.append(t2 - t1), cpu.append(c2 - c1), fig.append(t3 - t2), cold.append(t3 - t0)
            cold_cpu.append(c3 - c0)
        print(f"{e.name:<28} {statistics.median(enc):6.2f} s {_fmt(meas):>22} {statistics.median(cpu):5.2f} s "
              f"{statistics.median(fig):5.2f} s {_fmt(cold):>22} {statistics.median(cold_cpu):5.2f} s")

    x = pixels(data.x_test.numpy())
    meas, cpu = [], []
    for _ in range(args.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        px = few_labels(x, labels, KS, draws)
        meas.append(time.perf_counter() - t0), cpu.append(time.process_time() - c0)
    print(f"{'raw pixels (784-d)':<28} {'':>8} {_fmt(meas):>22} {statistics.median(cpu):5.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(tmp)
        store.put("px", px)
        reads = []
        for _ in range(max(args.rounds, 5)):
            t0 = time.perf_counter()
            store.get("px")
            reads.append(time.perf_counter() - t0)
        size = store.path("px").stat().st_size
    print(f"a stored result read back: {1000 * statistics.median(reads):.1f} ms ({size / 1e6:.2f} MB on disk)")
    if not args.quick:
        knn = px.mean("knn")
        print(f"pixels, k-NN at 1 / 10 / 100 labels per class: {knn[0]:.1%} / {knn[KS.index(10)]:.1%} / {knn[-1]:.1%}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
