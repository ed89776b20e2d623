"""2-D maps: every projection gives finite (N, 2) coordinates; the map store survives damaged files;
the map service computes in the background and serves from disk; map keys are stable."""

from __future__ import annotations

import os
import re
import threading
import time

import numpy as np
import pytest

from vae.maps import worker
from vae.maps.projection import METHODS, compute_map, default_params, make_projection, nearest_neighbors, resolve_params
from vae.maps.service import LANES, MapService, MapStore, WorkerProcess, map_key

FAST_TSNE = {"perplexity": 10.0, "n_iter": 50, "early_iter": 25}  # a rough map in a fraction of a second


@pytest.fixture(scope="module", autouse=True)
def small_and_single_threaded(request):
    """300 points gain nothing from threads, and on a shared CI box extra threads cost several times over.
    UMAP's JIT compile costs tens of seconds; a cache outside the per-test temp folders pays it once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("vae.maps.projection._threads", lambda: 1)
        mp.setenv("NUMBA_NUM_THREADS", "1")
        if "NUMBA_CACHE_DIR" not in os.environ:
            mp.setenv("NUMBA_CACHE_DIR", str(request.config.cache.mkdir("numba")))
        yield


@pytest.fixture(scope="module")
def z() -> np.ndarray:
    """300 codes in 8-d from three blobs, so a good map keeps three groups apart."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 8)) * 6
    return (centres.repeat(100, axis=0) + rng.standard_normal((300, 8))).astype(np.float32)


def check_map(y: np.ndarray, n: int = 300) -> None:
    assert y.shape == (n, 2) and y.dtype == np.float32
    assert np.isfinite(y).all()
    assert y.std(axis=0).min() > 0  # not collapsed to a point or a line


def wait(job, timeout=60.0):
    assert job.wait(timeout), f"the {job.method} map did not end within {timeout} s"
    return job


# ------------------------------------------------------------------ projections


def test_native(z):
    proj = make_projection("native")
    y = proj.fit_transform(z)
    check_map(y)
    assert np.array_equal(y, z[:, :2]) and proj.embedding_ is y
    back = proj.inverse_transform(y)
    assert back.shape == (300, 8) and np.array_equal(back[:, :2], y) and (back[:, 2:] == 0).all()


def test_native_for_a_1d_model(z):
    y = make_projection("native").fit_transform(z[:, :1])
    assert y.shape == (300, 2) and (y[:, 1] == 0).all()


def test_pca(z):
    proj = make_projection("pca", seed=0)
    y = proj.fit_transform(z)
    check_map(y)
    assert np.array_equal(y, make_projection("pca", seed=0).fit_transform(z))
    assert proj.explained_variance_ratio_[0] >= proj.explained_variance_ratio_[1]
    np.testing.assert_allclose(proj.transform(z), y, atol=1e-4)
    assert proj.inverse_transform(y).shape == (300, 8)
    from sklearn.decomposition import PCA  # the same numbers as scikit-learn, up to each axis's sign

    ref = PCA(n_components=2).fit(z)
    np.testing.assert_allclose(np.abs(y), np.abs(ref.transform(z)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(proj.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-6)
    np.testing.assert_allclose(proj.inverse_transform(y), ref.inverse_transform(ref.transform(z)), atol=1e-4)


def test_pca_of_one_dimension_and_of_identical_codes(z):
    y = make_projection("pca").fit_transform(z[:, :1])
    assert y.shape == (300, 2) and (y[:, 1] == 0).all()
    same = make_projection("pca")
    y = same.fit_transform(np.ones((10, 4), np.float32))
    assert np.isfinite(y).all() and (y == 0).all() and (same.explained_variance_ratio_ == 0).all()


def test_tsne_reports_partial_maps(z):
    seen = []
    proj = make_projection("tsne", seed=0, progress=lambda done, total, y: seen.append((done, total, y)),
                           **FAST_TSNE)
    y = proj.fit_transform(z)
    check_map(y)
    assert seen, "no progress was reported"
    dones = [d for d, _, _ in seen]
    assert dones == [20, 45, 65] and {t for _, t, _ in seen} == {75}  # 25 + 50 iterations, every 20 within each phase
    assert all(p is None or p.shape == (300, 2) for _, _, p in seen)


def test_the_default_tsne_schedule_reports_up_to_its_end(z):
    seen = []
    make_projection("tsne", seed=0, perplexity=10.0,
                    progress=lambda done, total, y: seen.append((done, total))).fit_transform(z)
    assert seen == [(d, 120) for d in (20, 40, 60, 80, 100, 120)]  # 40 early + 80 normal iterations


def test_tsne_is_seeded(z):
    a = make_projection("tsne", seed=1, **FAST_TSNE).fit_transform(z)
    b = make_projection("tsne", seed=1, **FAST_TSNE).fit_transform(z)
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_umap(z):
    calls = []
    proj = make_projection("umap", seed=0, n_neighbors=10, n_epochs=30,
                           progress=lambda done, total, y: calls.append(done / total))
    check_map(proj.fit_transform(z))
    assert calls[-1] == 1.0


@pytest.mark.parametrize("method", METHODS)
def test_bad_codes_are_refused(method):
    for bad in (np.zeros((2, 4)), np.zeros(10), np.full((50, 4), np.nan)):
        with pytest.raises(ValueError):
            make_projection(method).fit_transform(bad)


def test_bad_parameters_are_refused(z):
    with pytest.raises(ValueError, match="Unknown map method"):
        make_projection("mds")
    with pytest.raises(ValueError, match="Perplexity"):
        make_projection("tsne", perplexity=50).fit_transform(z[:100])
    with pytest.raises(ValueError, match="n_neighbors"):
        make_projection("umap", n_neighbors=1).fit_transform(z)


def test_compute_map(z):
    check_map(compute_map(z, "pca"))
    check_map(compute_map(z, "tsne", FAST_TSNE))
    with pytest.raises(ValueError):
        compute_map(z, "mds")


# ------------------------------------------------------------------ keys


def test_map_key_is_stable():
    # pinned: bundled maps in assets/maps are found by these names; a change would orphan them
    assert map_key("0123456789abcdef", "tsne", {"perplexity": 30.0}) == "0123456789abcdef-tsne-f5b3e85c47"
    assert map_key("0123456789abcdef", "umap", default_params("umap")) == "0123456789abcdef-umap-7619ad4ca3"
    assert map_key("0123456789abcdef", "pca", {}) == "0123456789abcdef-pca-46c08d87bd"


def test_map_key_ignores_order_and_number_types():
    k = map_key("fp", "umap", {"n_neighbors": 15, "min_dist": 0.1})
    assert k == map_key("fp", "umap", {"min_dist": 0.1, "n_neighbors": 15})
    assert k == map_key("fp", "umap", {"n_neighbors": 15.0, "min_dist": 0.1})
    assert k == map_key("fp", "umap", {})  # the defaults
    assert map_key("fp", "tsne", {"perplexity": 30}) == map_key("fp", "tsne", {"perplexity": 30.0})
    assert resolve_params("umap", {"n_neighbors": 15.0})["n_neighbors"] == 15
    assert isinstance(resolve_params("umap", {"n_neighbors": 15.0})["n_neighbors"], int)


def test_map_key_tells_maps_apart():
    keys = {map_key("fp", "tsne", {}), map_key("fp", "tsne", {"perplexity": 50}), map_key("fp2", "tsne", {}),
            map_key("fp", "umap", {}), map_key("fp", "pca", {})}
    assert len(keys) == 5
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", k) for k in keys)  # safe as a file name


# ------------------------------------------------------------------ the store


def test_store_round_trip(tmp_path, z):
    store = MapStore(tmp_path / "maps")
    assert store.get("fp", "pca", {}) is None
    y = z[:, :2].astype(np.float64) * 3
    path = store.put("fp", "pca", {}, y)
    assert path.parent == tmp_path / "maps" and path.name == map_key("fp", "pca", {}) + ".npz"
    got = store.get("fp", "pca", {})
    assert got.dtype == np.float32 and np.array_equal(got, y.astype(np.float32))
    assert store.get("fp", "tsne", {}) is None and store.get("other", "pca", {}) is None
    assert [p.name for p in (tmp_path / "maps").iterdir()] == [path.name]  # no temp file left


def test_store_reads_bundled_maps_without_writing_there(tmp_path, z):
    bundled, user = tmp_path / "bundled", tmp_path / "user"
    MapStore(bundled).put("fp", "pca", {}, z[:, :2])
    before = sorted(bundled.iterdir())
    store = MapStore(user, readonly_dirs=[bundled])
    assert np.array_equal(store.get("fp", "pca", {}), z[:, :2])
    store.put("fp", "tsne", {}, z[:, :2])
    assert sorted(bundled.iterdir()) == before and (user / (map_key("fp", "tsne", {}) + ".npz")).is_file()


def _damage(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif how == "garbage":
        path.write_bytes(b"not a map at all" * 10)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "flipped":
        path.write_bytes(data[:40] + bytes(b ^ 0xFF for b in data[40:80]) + data[80:])
    elif how == "pickle":
        np.savez(path.open("wb"), y=np.array([object()], dtype=object))
    elif how == "wrong-shape":
        np.savez(path.open("wb"), y=np.zeros((10, 3)))
    elif how == "nan":
        np.savez(path.open("wb"), y=np.full((10, 2), np.nan))
    elif how == "no-y":
        np.savez(path.open("wb"), x=np.zeros((10, 2)))


DAMAGE = ["truncated", "garbage", "empty", "flipped", "pickle", "wrong-shape", "nan", "no-y"]


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_cache_file_is_ignored(tmp_path, z, how):
    store = MapStore(tmp_path)
    _damage(store.put("fp", "pca", {}, z[:, :2]), how)
    assert store.get("fp", "pca", {}) is None


# ------------------------------------------------------------------ the service


def test_service_computes_then_serves_from_disk(tmp_path, z):
    store = MapStore(tmp_path / "maps")
    service = MapService(store)
    job = service.request("fp", z, "tsne", FAST_TSNE)
    assert service.request("fp", z, "tsne", FAST_TSNE) is job  # asked twice, computed once
    assert service.peek("fp", "tsne", FAST_TSNE) is job
    wait(job)
    assert job.status == "done", job.error
    assert job.progress == 1.0 and job.seconds > 0 and job.n_points == 300 and job.error == ""
    check_map(job.embedding)
    assert np.array_equal(store.get("fp", "tsne", FAST_TSNE), job.embedding)
    assert job.future.result() is job.embedding

    fresh = MapService(MapStore(tmp_path / "maps"))  # after a restart
    again = fresh.request("fp", z, "tsne", FAST_TSNE)
    assert again.status == "done" and np.array_equal(again.embedding, job.embedding)


def test_fast_maps_are_done_when_asked_for(tmp_path, z):
    service = MapService(MapStore(tmp_path))
    for method in ("native", "pca"):
        job = service.request("fp", z, method)
        assert job.status == "done" and job.wait(0)  # computed on the asking thread, never queued
        check_map(job.embedding)


def test_service_recomputes_over_a_damaged_file(tmp_path, z):
    store = MapStore(tmp_path)
    _damage(store.put("fp", "pca", {}, np.zeros((300, 2))), "truncated")
    job = wait(MapService(store).request("fp", z, "pca"))
    assert job.status == "done"
    check_map(job.embedding)
    assert store.get("fp", "pca", {}) is not None  # repaired on disk


def test_service_reports_errors_and_retries(tmp_path, z):
    service = MapService(MapStore(tmp_path))
    job = wait(service.request("fp", z[:20], "tsne", {"perplexity": 30.0}))
    assert job.status == "error" and "Perplexity" in job.error and job.embedding is None
    retry = service.request("fp", z[:20], "tsne", {"perplexity": 30.0})
    assert retry is not job  # a failed map may be asked for again
    wait(retry)


def test_service_survives_a_read_only_cache(tmp_path, z):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    job = wait(MapService(MapStore(blocker)).request("fp", z, "pca"))
    assert job.status == "done"
    check_map(job.embedding)


def test_no_map_for_unknown_method(tmp_path, z):
    job = wait(MapService(MapStore(tmp_path)).request("fp", z, "mds"))
    assert job.status == "error" and "Unknown map method" in job.error


class FakeMaps:
    """Stands in for `compute_map`: records the order t-SNEs and UMAPs ran in, and holds each method's
    maps at its gate (native and PCA pass straight through)."""

    def __init__(self, fail=()):
        self.started, self.ended = [], []  # methods, in the order they started / ended
        self.gates = {m: threading.Event() for m in LANES}
        self.fail = fail

    def __call__(self, z, method, params=None, seed=0, progress=None):
        if method in self.gates:
            self.started.append(method)
            assert self.gates[method].wait(10), f"{method} was never let through"
            self.ended.append(method)
        if method in self.fail:
            raise ValueError(f"{method} failed")
        return np.random.default_rng(0).standard_normal((len(z), 2)).astype(np.float32)

    def open(self):
        for gate in self.gates.values():
            gate.set()


@pytest.fixture
def fake(monkeypatch) -> FakeMaps:
    fake = FakeMaps()
    monkeypatch.setattr("vae.maps.service.compute_map", fake)
    yield fake
    fake.open()  # never leave a lane thread waiting


def asked_for(service, method, timeout=10.0):
    """The job of a map that a done-callback asks for (it runs just after the job before it ends)."""
    deadline = time.monotonic() + timeout
    while (job := service.peek("fp", method)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job is not None, f"no {method} map was asked for"
    return job


def test_warm_up_runs_tsne_then_umap_never_side_by_side(tmp_path, z, fake):
    service = MapService(MapStore(tmp_path))
    service.warm_up("fp", z)
    assert service.peek("fp", "pca").status == "done"  # the fast one at once
    tsne = service.peek("fp", "tsne")
    assert tsne.status in ("queued", "running") and service.peek("fp", "umap") is None  # UMAP waits for it
    fake.open()
    wait(tsne)
    wait(asked_for(service, "umap"))  # asked for as soon as the t-SNE ended
    assert fake.started == ["tsne", "umap"] and fake.ended == ["tsne", "umap"]


def test_warm_up_goes_on_after_a_failed_map(tmp_path, z, fake):
    fake.fail = ("tsne",)
    fake.open()
    service = MapService(MapStore(tmp_path))
    service.warm_up("fp", z)
    assert wait(service.peek("fp", "tsne")).status == "error"
    assert wait(asked_for(service, "umap")).status == "done"


def test_a_map_asked_for_during_warm_up_starts_at_once_and_runs_once(tmp_path, z, fake):
    service = MapService(MapStore(tmp_path))
    service.warm_up("fp", z)
    umap = service.request("fp", z, "umap")  # someone opens UMAP while the warm-up's t-SNE runs
    fake.gates["umap"].set()
    assert wait(umap).status == "done" and fake.ended == ["umap"]  # it did not wait for the t-SNE
    fake.gates["tsne"].set()
    wait(service.peek("fp", "tsne"))
    assert service.peek("fp", "umap") is umap and fake.started.count("umap") == 1  # the chain found it done


@pytest.mark.parametrize("where", ["on disk", "in memory"])
def test_warm_up_skips_a_finished_map_to_the_next(tmp_path, z, fake, where):
    store = MapStore(tmp_path)
    service = MapService(store)
    if where == "on disk":
        store.put("fp", "tsne", default_params("tsne"), z[:, :2])
    else:
        fake.gates["tsne"].set()
        wait(service.request("fp", z, "tsne"))
    service.warm_up("fp", z)
    umap = service.peek("fp", "umap")
    assert umap is not None  # requested straight away
    fake.gates["umap"].set()
    assert wait(umap).status == "done"
    assert fake.started.count("tsne") == (where == "in memory")


def test_prestart_warms_each_lane_once_and_a_map_waits_only_for_its_own_lane(tmp_path, z, fake, monkeypatch):
    gates = {lane: threading.Event() for lane in LANES}
    warmed = []

    def warm(method):
        warmed.append(method)
        assert gates[method].wait(10)

    monkeypatch.setattr("vae.maps.service.warm", warm)
    service = MapService(MapStore(tmp_path))
    service.prestart()
    service.prestart()  # a second call starts nothing more
    assert not service.wait_ready(0.05)
    gates["tsne"].set()
    fake.open()
    assert wait(service.request("fp", z, "tsne")).status == "done"  # while UMAP still warms up
    umap = service.request("fp", z, "umap")
    assert not umap.wait(0.05) and umap.status == "queued"  # behind its own lane's warm-up
    gates["umap"].set()
    assert wait(umap).status == "done" and service.wait_ready(10)
    assert sorted(warmed) == ["tsne", "umap"]


def test_nearest_neighbours_are_exact_and_exclude_the_point_itself(z):
    idx, dist = nearest_neighbors(z, 7, chunk=64)  # several chunks, the last one short
    full = np.linalg.norm(z[:, None] - z[None], axis=2)
    np.fill_diagonal(full, np.inf)
    want = np.sort(full, axis=1)[:, :7]
    assert idx.shape == (300, 7) and not (idx == np.arange(300)[:, None]).any()
    np.testing.assert_allclose(dist, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.take_along_axis(full, idx, 1), want, rtol=1e-4, atol=1e-4)
    assert (np.diff(dist, axis=1) >= 0).all()  # nearest first


def test_nearest_neighbours_with_ties_at_the_kth_distance():
    """Codes on a grid (many equal distances, as a collapsed AE gives): still k distinct, exact ones."""
    g = np.stack(np.meshgrid(np.arange(6), np.arange(6)), -1).reshape(-1, 2).astype(np.float32)
    z = np.r_[g, g[:5]]  # and a few exact duplicates
    idx, dist = nearest_neighbors(z, 5, chunk=16)
    full = np.linalg.norm(z[:, None] - z[None], axis=2)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :5], atol=1e-5)
    assert all(len(set(r)) == 5 for r in idx.tolist()) and not (idx == np.arange(len(z))[:, None]).any()

    # One chunk where some rows tie and others do not (a real model's codes: ~13% of rows tie).
    mixed = np.r_[np.random.default_rng(1).normal(0, 3, (40, 2)).astype(np.float32), g]
    idx, dist = nearest_neighbors(mixed, 5, chunk=len(mixed))
    full = np.linalg.norm(mixed[:, None] - mixed[None], axis=2)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :5], atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(full, idx, 1), dist, atol=1e-5)
    assert all(len(set(r)) == 5 for r in idx.tolist()) and not (idx == np.arange(len(mixed))[:, None]).any()



# ------------------------------------------------------------------ the worker process


def test_worker_protocol_round_trip():
    from multiprocessing import Pipe

    a, b = Pipe()
    y = np.arange(12, dtype=np.float32).reshape(6, 2)
    worker.send(a, {"type": "done", "seconds": 1.5}, y)
    worker.send(a, {"type": "progress", "done": 1, "total": 2})
    msg, arr = worker.receive(b)
    assert msg == {"type": "done", "seconds": 1.5} and np.array_equal(arr, y)
    assert worker.receive(b) == ({"type": "progress", "done": 1, "total": 2}, None)
    with pytest.raises(ValueError):  # arrays travel as .npy, never pickled
        worker.send(a, {"type": "done"}, np.array([object()]))
    a.close()
    with pytest.raises(EOFError):  # the other end is gone
        worker.receive(b)


@pytest.fixture
def process(request):
    w = WorkerProcess(getattr(request, "param", "tsne"), threads=1)
    yield w
    w.stop()


def test_worker_process_computes_the_map_with_progress(process, z):
    seen = []
    y = process.call({"op": "map", "method": "tsne", "params": FAST_TSNE}, z,
                     on_progress=lambda done, total, partial: seen.append((done, total, partial.shape)))
    check_map(y)
    assert seen == [(20, 75, (300, 2)), (45, 75, (300, 2)), (65, 75, (300, 2))]  # partial maps on the way
    assert np.allclose(y, compute_map(z, "tsne", FAST_TSNE), atol=1e-3)  # the same map as in-process
    pid = process.pid
    if os.path.exists(f"/proc/{pid}/maps"):
        assert "libtorch" not in open(f"/proc/{pid}/maps").read()  # numpy and the map libraries only
    if os.path.exists(f"/proc/{pid}/environ") and "GOMP_SPINCOUNT" not in os.environ:
        from vae.maps.service import GOMP_SPINCOUNT

        environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        assert f"GOMP_SPINCOUNT={GOMP_SPINCOUNT}".encode() in environ  # OpenMP yields soon on a busy machine
    from vae.maps.service import MapError

    with pytest.raises(MapError, match="^ValueError: Perplexity"):  # the sentence gets through
        process.call({"op": "map", "method": "tsne", "params": {"perplexity": 30.0}}, z[:20])
    assert process.pid == pid  # and the worker goes on


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no process priorities on this platform")
@pytest.mark.parametrize("process", LANES, indirect=True)
def test_each_lane_runs_below_the_server(process, z):
    """t-SNE below the server (a page never waits for a map's CPU); UMAP (its first start on a machine
    compiles it) lower still, below a t-SNE that someone watches form."""
    process.call({"op": "map", "method": "pca"}, z)  # started, its priority set before it serves
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, process.pid) == min(19, ours + worker.NICENESS[process.lane])
    assert worker.NICENESS["umap"] > worker.NICENESS["tsne"] > 0


def test_a_dead_worker_gives_a_sentence_and_is_replaced(process, z):
    import signal

    from vae.maps.service import MapError

    def kill(*_):  # say, the out-of-memory killer, mid-map
        os.kill(process.pid, signal.SIGKILL)

    with pytest.raises(MapError, match="stopped unexpectedly.*again"):
        process.call({"op": "map", "method": "tsne", "params": {**FAST_TSNE, "n_iter": 5000}}, z, on_progress=kill)
    check_map(process.call({"op": "map", "method": "tsne", "params": FAST_TSNE}, z))  # a new worker takes over


def test_closing_the_service_ends_a_map_in_flight_with_a_sentence(tmp_path, z):
    service = MapService(MapStore(tmp_path), isolate=True, threads=1)
    job = service.request("fp", z, "tsne", {**FAST_TSNE, "n_iter": 100000})  # minutes
    deadline = time.monotonic() + 60
    while job.embedding is None and time.monotonic() < deadline:  # until it computes in the worker
        time.sleep(0.01)
    assert job.status == "running"
    service.close()
    assert wait(job, 10).status == "error" and "stopped" in job.error
    assert service.worker_pids() == []


SERVER = """
import sys, threading, time
import numpy as np
from vae.maps.service import WorkerProcess
z = np.load(sys.argv[1])
w = WorkerProcess("tsne", threads=1)
w.call({"op": "map", "method": "pca"}, z)  # the worker is up
if sys.argv[2] == "mid-map":  # a long t-SNE that reports nothing: the worker never touches its pipe
    params = {"perplexity": 10.0, "n_iter": 100000, "report_every": 10**9}
    threading.Thread(target=w.call, args=({"op": "map", "method": "tsne", "params": params}, z), daemon=True).start()
    time.sleep(2)
print(w.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("when", ["between maps", "mid-map"])
def test_the_worker_ends_with_its_server(tmp_path, z, when):
    """A server killed (kill -9: no clean-up runs) leaves no worker behind, idle or computing."""
    import signal
    import subprocess
    import sys

    from vae.paths import ROOT

    np.save(tmp_path / "z.npy", z)
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path / "z.npy"), when], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    pid = int(server.stdout.readline())
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    pytest.fail(f"the worker outlived its killed server ({when})")
