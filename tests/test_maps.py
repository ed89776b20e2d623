"""2-D maps: every projection gives finite (N, 2) coordinates; the map store survives damaged files;
the map service computes in the background and serves from disk; map keys are stable."""

from __future__ import annotations

import os
import re
import threading
import time

import numpy as np
import pytest

from vae.maps import CAN_PAUSE, MapService, MapStore, compute_map, default_params, map_key, resolve_params
from vae.projection import METHODS, make_projection

FAST_TSNE = {"perplexity": 10.0, "n_iter": 50, "early_iter": 25}  # a rough map in a fraction of a second


@pytest.fixture(scope="module", autouse=True)
def small_and_single_threaded(request):
    """300 points gain nothing from threads, and on a shared CI box extra threads cost several times over.
    UMAP's JIT compile costs tens of seconds; a cache outside the per-test temp folders pays it once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("vae.projection._threads", lambda: 1)
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
    t0 = time.monotonic()
    while job.status in ("queued", "running") and time.monotonic() - t0 < timeout:
        time.sleep(0.02)
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
    assert job.progress == 1.0 and job.seconds > 0 and job.n_points == 300
    check_map(job.embedding)
    assert np.array_equal(store.get("fp", "tsne", FAST_TSNE), job.embedding)

    fresh = MapService(MapStore(tmp_path / "maps"))  # after a restart
    again = fresh.request("fp", z, "tsne", FAST_TSNE)
    assert again.status == "done" and np.array_equal(again.embedding, job.embedding)


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
    """Stands in for `compute_map`: records when each map ran, and holds a method's maps at its gate."""

    def __init__(self, fail=()):
        self.runs = []  # (method, start, end), in the order they ended
        self.gates = {m: threading.Event() for m in MapService.LANES}
        self.fail = fail

    def __call__(self, z, method, params=None, seed=0, progress=None):
        start = time.perf_counter()
        if method in self.gates:
            assert self.gates[method].wait(10), f"{method} was never let through"
        self.runs.append((method, start, time.perf_counter()))
        if method in self.fail:
            raise ValueError(f"{method} failed")
        return np.random.default_rng(0).standard_normal((len(z), 2)).astype(np.float32)

    def ran(self, method: str) -> int:
        return sum(m == method for m, *_ in self.runs)


@pytest.fixture
def fake(monkeypatch) -> FakeMaps:
    fake = FakeMaps()
    monkeypatch.setattr("vae.maps.compute_map", fake)
    yield fake
    for gate in fake.gates.values():  # never leave a lane thread waiting
        gate.set()


def appears(service, method, timeout=10.0):
    t0 = time.monotonic()
    while (job := service.peek("fp", method)) is None and time.monotonic() - t0 < timeout:
        time.sleep(0.01)
    assert job is not None, f"no {method} map was requested"
    return job


def lanes_idle(service, z):
    """Once a later map on each lane is done, everything queued before it, and its follow-ups, has run."""
    for m in MapService.LANES:
        wait(service.request("other", z, m))


def test_prestart_can_wait_before_loading_the_libraries(tmp_path, monkeypatch):
    """The app starts its map workers a moment after the first page, so that page has the CPU to itself."""
    warmed = []
    monkeypatch.setattr("vae.mapworker.warm", lambda method: warmed.append((method, time.monotonic())))
    service = MapService(MapStore(tmp_path))
    t0 = time.monotonic()
    service.prestart(delay_s=0.5)
    assert not service.wait_ready(timeout=0.2) and warmed == []
    assert service.wait_ready(timeout=10)
    assert sorted(m for m, _ in warmed) == ["tsne", "umap"] and min(t for _, t in warmed) - t0 >= 0.5


def test_warm_up_runs_tsne_then_umap_never_side_by_side(tmp_path, z, fake):
    service = MapService(MapStore(tmp_path))
    service.warm_up("fp", z)
    assert service.peek("fp", "pca").status == "done"  # at once, on the caller's thread
    tsne = appears(service, "tsne")
    time.sleep(0.2)
    assert tsne.status == "running" and service.peek("fp", "umap") is None  # UMAP waits for its turn
    fake.gates["tsne"].set()
    fake.gates["umap"].set()
    umap = wait(appears(service, "umap"))
    assert wait(tsne).status == "done" and umap.status == "done", (tsne.error, umap.error)
    (first, _, tsne_end), (second, umap_start, _) = [r for r in fake.runs if r[0] != "pca"]
    assert (first, second) == ("tsne", "umap") and tsne_end <= umap_start


def test_warm_up_can_pause_between_its_maps(tmp_path, z, fake):
    """The app leaves a second between a t-SNE's end and the UMAP's start, for the page drawing the t-SNE."""
    fake.gates["tsne"].set()
    fake.gates["umap"].set()
    service = MapService(MapStore(tmp_path), chain_pause_s=0.5)
    service.warm_up("fp", z)
    umap = wait(appears(service, "umap"))
    assert umap.status == "done", umap.error
    (first, _, tsne_end), (second, umap_start, _) = [r for r in fake.runs if r[0] != "pca"]
    assert (first, second) == ("tsne", "umap") and umap_start - tsne_end >= 0.5


def test_warm_up_goes_on_after_a_failed_map(tmp_path, z, fake):
    fake.fail = ("tsne",)
    fake.gates["tsne"].set()
    fake.gates["umap"].set()
    service = MapService(MapStore(tmp_path))
    service.warm_up("fp", z, methods=("tsne", "umap"))
    assert wait(appears(service, "tsne")).status == "error"
    assert wait(appears(service, "umap")).status == "done"


def test_a_map_asked_for_during_warm_up_starts_at_once_and_runs_once(tmp_path, z, fake):
    service = MapService(MapStore(tmp_path))
    service.warm_up("fp", z)
    tsne = appears(service, "tsne")
    fake.gates["umap"].set()
    umap = wait(service.request("fp", z, "umap"))  # the map page asks for UMAP while t-SNE runs
    assert umap.status == "done" and tsne.status == "running"
    fake.gates["tsne"].set()
    assert wait(tsne).status == "done"
    lanes_idle(service, z)
    assert service.peek("fp", "umap") is umap and fake.ran("umap") == 2  # "fp" once, "other" once


@pytest.mark.parametrize("where", ["on disk", "in memory"])
def test_warm_up_skips_a_finished_map_to_the_next(tmp_path, z, fake, where):
    store = MapStore(tmp_path)
    service = MapService(store)
    if where == "on disk":
        store.put("fp", "tsne", {}, np.ones((300, 2)))
    else:
        fake.gates["tsne"].set()
        wait(service.request("fp", z, "tsne"))
        fake.gates["tsne"].clear()
    service.warm_up("fp", z)
    umap = service.peek("fp", "umap")
    assert umap is not None and umap.status in ("queued", "running")  # requested straight away
    fake.gates["umap"].set()
    assert wait(umap).status == "done"
    assert fake.ran("tsne") == (where == "in memory")


def test_nearest_neighbours_are_exact_and_exclude_the_point_itself(z):
    from vae.projection import nearest_neighbors

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
    from vae.projection import nearest_neighbors

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


def test_worker_protocol_round_trip_and_truncation():
    import io

    from vae import mapworker

    buf = io.BytesIO()
    y = np.arange(12, dtype=np.float32).reshape(6, 2)
    mapworker.send(buf, {"type": "done", "seconds": 1.5}, y)
    mapworker.send(buf, {"type": "progress", "done": 1, "total": 2})
    buf.seek(0)
    msg, arr = mapworker.receive(buf)
    assert msg == {"type": "done", "seconds": 1.5} and np.array_equal(arr, y)
    assert mapworker.receive(buf) == ({"type": "progress", "done": 1, "total": 2}, None)
    with pytest.raises(EOFError):
        mapworker.receive(buf)
    with pytest.raises(EOFError):  # a message cut short (the other end died mid-write)
        mapworker.receive(io.BytesIO(buf.getvalue()[:20]))
    with pytest.raises(ValueError):  # arrays travel as .npy, never pickled
        mapworker.send(io.BytesIO(), {"type": "done"}, np.array([object()]))


@pytest.fixture
def isolated(tmp_path):
    service = MapService(MapStore(tmp_path / "maps"), isolate=True, threads=1)
    yield service
    service.close()


def test_worker_process_computes_the_map_with_progress(isolated, z):
    seen = []
    job = isolated.request("fp", z, "tsne", FAST_TSNE)
    while job.status in ("queued", "running"):
        if job.embedding is not None and (not seen or seen[-1] is not job.embedding):
            seen.append(job.embedding)
        time.sleep(0.005)
    assert job.status == "done", job.error
    check_map(job.embedding)
    assert job.progress == 1.0 and len(seen) >= 2  # partial embeddings arrived while it ran
    assert np.allclose(job.embedding, compute_map(z, "tsne", FAST_TSNE), atol=1e-3)  # same map as in-process
    assert isolated.store.get("fp", "tsne", FAST_TSNE) is not None
    pid = isolated.worker_pids()[0]
    libraries = open(f"/proc/{pid}/maps").read() if os.path.exists(f"/proc/{pid}/maps") else ""
    assert "libtorch" not in libraries  # the worker stays light: numpy and the map libraries only
    if os.path.exists(f"/proc/{pid}/environ") and "GOMP_SPINCOUNT" not in os.environ:
        from vae.maps import GOMP_SPINCOUNT

        environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        assert f"GOMP_SPINCOUNT={GOMP_SPINCOUNT}".encode() in environ  # OpenMP yields soon on a busy machine
    if hasattr(os, "getpriority"):  # below the server: a page never waits for a map's CPU
        from vae.mapworker import NICENESS

        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS["tsne"])
    bad = wait(isolated.request("fp", z[:20], "tsne", {"perplexity": 30.0}))
    assert bad.status == "error" and bad.error.startswith("ValueError: Perplexity")  # the sentence gets through


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no process priorities on this platform")
def test_the_umap_worker_yields_to_the_tsne_worker(isolated, z):
    """UMAP's worker (a long numba compile at a server's start) runs below t-SNE's, which a user watches form."""
    assert wait(isolated.request("fp", z, "tsne", FAST_TSNE)).status == "done"  # the worker has set its priority
    tsne = os.getpriority(os.PRIO_PROCESS, isolated._workers["tsne"].pid)
    isolated._workers["umap"]._ensure()  # started, without a map (that would compile UMAP here)
    deadline = time.time() + 30
    while (umap := os.getpriority(os.PRIO_PROCESS, isolated._workers["umap"].pid)) <= tsne and time.time() < deadline:
        time.sleep(0.05)  # until the new process has lowered its own priority
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert umap > tsne > ours or (tsne == 19 and umap == 19)


def _process_state(pid: int) -> str:
    """R, S, T (stopped), ... from /proc/<pid>/stat."""
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]


def _wait_until(condition, timeout: float = 60.0) -> bool:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.skipif(not CAN_PAUSE, reason="warm-ups are paused on Linux only")
def test_a_warm_up_waits_while_the_other_lane_computes_a_map(isolated, z):
    """UMAP's warm-up (importing umap: seconds; compiling its numba code the first time on a machine:
    ~30 CPU s) is stopped while a t-SNE computes, and continues when the t-SNE ends."""
    umap = isolated._workers["umap"]
    isolated._queues["umap"].put(None)  # what prestart does
    assert _wait_until(lambda: umap._warming and umap.pid is not None)
    states = []
    job = isolated.request("fp", z, "tsne", {"perplexity": 10.0, "n_iter": 300, "early_iter": 25})
    while job.status in ("queued", "running"):
        states.append(_process_state(umap.pid))
        time.sleep(0.01)
    assert job.status == "done", job.error
    assert states.count("T") > 0.8 * len(states), states  # stopped while the t-SNE ran
    assert not umap.paused and _process_state(umap.pid) != "T"  # and running again after it


@pytest.mark.skipif(not CAN_PAUSE, reason="warm-ups are paused on Linux only")
def test_a_warm_up_runs_again_when_every_map_that_paused_it_has_let_go():
    from vae.maps import _WorkerProcess

    w = _WorkerProcess(lane="umap")
    try:
        w._ensure()
        assert not w.pause_warm_up()  # not warming up: a worker computing a map is never stopped
        w._warming = True  # (as during a warm-up)
        assert w.pause_warm_up() and w.pause_warm_up()  # two maps, one after the other's end is drawn
        assert _wait_until(lambda: _process_state(w.pid) == "T", 5)
        w.resume()
        time.sleep(0.2)
        assert w.paused and _process_state(w.pid) == "T"  # the second map still holds it
        w.resume()
        assert not w.paused and _wait_until(lambda: _process_state(w.pid) != "T", 5)
        assert w.pause_warm_up() and w.pause_warm_up()
        w.resume(now=True)  # a map asked of this worker: it runs at once
        assert not w.paused and _wait_until(lambda: _process_state(w.pid) != "T", 5)
        w.resume()  # a late let-go changes nothing
        assert not w.paused
    finally:
        w._warming = False
        w.stop()


@pytest.mark.skipif(not CAN_PAUSE, reason="warm-ups are paused on Linux only")
def test_a_map_asked_of_a_paused_lane_continues_its_warm_up(isolated, z):
    umap = isolated._workers["umap"]
    isolated._queues["umap"].put(None)
    assert _wait_until(lambda: umap._warming and umap.pid is not None)
    tsne = isolated.request("fp", z, "tsne", {"perplexity": 10.0, "n_iter": 100000, "early_iter": 25})  # minutes
    assert _wait_until(lambda: umap.paused and _process_state(umap.pid) == "T", 30)
    job = isolated.request("fp", z, "umap")
    assert job.status == "queued"  # behind the warm-up, which runs again at once
    assert not umap.paused and _wait_until(lambda: _process_state(umap.pid) != "T", 5)
    assert tsne.status == "running"


@pytest.mark.skipif(not CAN_PAUSE, reason="warm-ups are paused on Linux only")
def test_a_warm_up_with_a_map_queued_behind_it_is_not_paused(isolated, z):
    umap = isolated._workers["umap"]
    isolated._queues["umap"].put(None)
    assert _wait_until(lambda: umap._warming and umap.pid is not None)
    assert isolated.request("fp", z, "umap").status == "queued"  # waits for the warm-up, which must go on
    states = []
    job = isolated.request("fp", z, "tsne", {"perplexity": 10.0, "n_iter": 300, "early_iter": 25})
    while job.status in ("queued", "running") and umap._warming:
        states.append(_process_state(umap.pid))
        time.sleep(0.01)
    assert "T" not in states and not umap.paused


@pytest.mark.skipif(not CAN_PAUSE, reason="warm-ups are paused on Linux only")
def test_a_stopped_worker_dies_with_its_server(tmp_path):
    """A worker stopped while its server is killed does not linger (its parent-watch thread cannot
    run while stopped: the kernel's parent-death signal ends it)."""
    import signal
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parent = subprocess.Popen([sys.executable, "-c", """
import os, signal, subprocess, sys, time
w = subprocess.Popen([sys.executable, "-m", "vae.mapworker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
time.sleep(2)  # its set-up done
os.kill(w.pid, signal.SIGSTOP)
print(w.pid, flush=True)
time.sleep(600)
"""], cwd=root, stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    assert _wait_until(lambda: _process_state(worker) == "T", 10)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    if not _wait_until(lambda: not os.path.exists(f"/proc/{worker}") or _process_state(worker) == "Z", 20):
        os.kill(worker, signal.SIGKILL)
        pytest.fail("a stopped worker outlived its killed server")


def test_a_dead_worker_gives_a_sentence_and_is_replaced(isolated, z):
    import signal

    slow = {"perplexity": 10.0, "n_iter": 5000, "early_iter": 25}
    job = isolated.request("fp", z, "tsne", slow)
    deadline = time.time() + 60
    while job.embedding is None and time.time() < deadline:  # running in the worker
        time.sleep(0.01)
    os.kill(isolated.worker_pids()[0], signal.SIGKILL)  # say, the out-of-memory killer
    wait(job)
    assert job.status == "error" and "stopped unexpectedly" in job.error and "again" in job.error
    retry = wait(isolated.request("fp", z, "tsne", FAST_TSNE))  # a new worker takes over
    assert retry.status == "done", retry.error


def test_worker_stops_when_the_server_goes(tmp_path, z):
    import subprocess
    import sys

    from vae import mapworker

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-m", "vae.mapworker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            cwd=root)
    mapworker.send(proc.stdin, {"op": "map", "method": "pca"}, z)
    msg, y = mapworker.receive(proc.stdout)
    while msg["type"] == "progress":
        msg, y = mapworker.receive(proc.stdout)
    assert msg["type"] == "done" and y.shape == (300, 2)
    proc.stdin.close()  # what a server's exit (even a kill) does to the pipe
    assert proc.wait(timeout=30) == 0


def test_worker_ends_with_its_server_even_mid_job(tmp_path, z):
    """A server killed while its worker computes (a long t-SNE, a UMAP compile) leaves no worker behind."""
    import signal
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    np.save(tmp_path / "z.npy", z)
    parent = subprocess.Popen([sys.executable, "-c", f"""
import subprocess, sys, time, numpy as np
from vae import mapworker
w = subprocess.Popen([sys.executable, "-m", "vae.mapworker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
# a long t-SNE that reports nothing: the worker computes without touching its pipe
mapworker.send(w.stdin, {{"op": "map", "method": "tsne",
                          "params": {{"perplexity": 10.0, "n_iter": 100000, "report_every": 10**9}}}},
               np.load({str(tmp_path / "z.npy")!r}))
time.sleep(3)
print(w.pid, flush=True)
time.sleep(600)
"""], cwd=root, stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("the worker kept computing after its server was killed")
