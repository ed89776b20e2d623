"""Replicas on one shared folder (deploy/README.md): several server processes with one LATENT_LAB_HOME and one
LATENT_LAB_CACHE. What one writes, the others see; a slow map is computed once for all of them; the classroom
rules (owners, caps) hold across them.

Each "replica" here is a separate Python process working on the shared folder with the same core objects a
server uses (ModelLibrary, MapService on a MapStore, TrainingQueue); the browser test through the proxy
(tests/e2e/test_proxy_e2e.py) runs real `streamlit run` replicas.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_jobs import MODEL, fake_python, queue_factory  # noqa: F401
from vae.checkpoint import CheckpointError, ModelLibrary, default_library_dir
from vae.fileio import file_lock
from vae.jobs import default_jobs_dir
from vae.maps.service import MapStore, map_key
from vae.ownership import Actor
from vae.paths import BUNDLED_MODELS, ROOT, cache_dir


@pytest.fixture
def shared(tmp_path, monkeypatch) -> Path:
    """One shared folder, as deploy/replicas.sh sets it up: LATENT_LAB_HOME, and its cache beside the models."""
    folder = tmp_path / "shared"
    monkeypatch.setenv("LATENT_LAB_HOME", str(folder))
    monkeypatch.setenv("LATENT_LAB_CACHE", str(folder / "cache"))
    return folder


def replica(script: str) -> subprocess.Popen:
    """Another process on the shared folder (this test's environment), running `script`; its stdout is a pipe."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def test_the_cache_is_the_shared_folder_when_named(shared, monkeypatch):
    assert cache_dir() == shared / "cache"
    assert default_jobs_dir(ray=False) == shared / "cache" / "jobs"  # one embedded queue for every replica
    assert default_library_dir() == shared / "models"
    monkeypatch.delenv("LATENT_LAB_CACHE")
    assert cache_dir() == Path(os.environ["XDG_CACHE_HOME"]) / "latent-lab"  # one server: as before


SAVE = """
from vae.checkpoint import ModelLibrary, default_library_dir
from vae.config import ModelConfig
from vae.models import build_model
from vae.paths import BUNDLED_MODELS
lib = ModelLibrary(default_library_dir(), BUNDLED_MODELS)
entry = lib.save(build_model(ModelConfig(kind="vae", latent_dim=2, hidden=(16,)), seed=0), name="from replica B",
                 owner="b" * 16)
print(entry.id)
"""


def test_a_model_saved_through_one_replica_is_listed_by_the_other(shared):
    here = ModelLibrary(default_library_dir(), BUNDLED_MODELS)  # this process: replica A, listing before
    before = {e.id for e in here.entries()}
    b = replica(SAVE)
    out, _ = b.communicate(timeout=120)
    assert b.returncode == 0, out
    new_id = out.split()[-1]
    assert new_id not in before
    entry = here.get(new_id)  # the same library object sees the other process's file, no restart
    assert entry.name == "from replica B" and entry.owner == "b" * 16
    # its owner's rights travel with the file: another person may not rename it here, its owner may
    with pytest.raises(CheckpointError):
        here.rename(new_id, "mine now", Actor("c" * 16))
    assert here.rename(new_id, "renamed on A", Actor("b" * 16)).name == "renamed on A"
    assert ModelLibrary(default_library_dir(), BUNDLED_MODELS).get(new_id).name == "renamed on A"


MAP = """
import hashlib, json, sys
import numpy as np
from vae.maps.service import MapService, MapStore
from vae.paths import cache_dir
z = np.random.default_rng(0).standard_normal((300, 4)).astype(np.float32)
service = MapService(MapStore(cache_dir() / "maps"), isolate=False)
job = service.request("fp-shared", z, "tsne", {"perplexity": 10})
print("asked", flush=True)
assert job.wait(timeout=240), job.status
y = job.future.result()
print(json.dumps({"computed": job.started > 0, "y": hashlib.sha1(y.tobytes()).hexdigest(), "error": job.error}))
"""


def test_the_same_map_asked_by_two_replicas_at_once_is_computed_once(shared):
    store = MapStore(cache_dir() / "maps")
    key = map_key("fp-shared", "tsne", {"perplexity": 10})
    # Hold the map's lock, as a third replica computing it would, until both have asked: then they ask
    # at the same time whatever their start-up times, and both must wait.
    with store.lock("fp-shared", "tsne", {"perplexity": 10}) as held:
        assert held and (store.folder / f"{key}.lock").is_file()
        replicas = [replica(MAP) for _ in range(2)]
        for r in replicas:
            assert r.stdout.readline().strip() == "asked"
        time.sleep(0.3)
        assert all(r.poll() is None for r in replicas)  # both waiting on the lock
    results = []
    for r in replicas:
        out, _ = r.communicate(timeout=240)
        assert r.returncode == 0, out
        results.append(json.loads(out.splitlines()[-1]))
    assert [r["error"] for r in results] == ["", ""]
    assert sorted(r["computed"] for r in results) == [False, True]  # once, by whichever took the lock first
    assert results[0]["y"] == results[1]["y"]  # the other read that very map
    assert store.get("fp-shared", "tsne", {"perplexity": 10}) is not None
    assert sorted(p.name for p in store.folder.iterdir()) == [f"{key}.lock", f"{key}.npz"]  # no temp files left


def test_a_replica_killed_while_computing_releases_the_map(shared):
    store = MapStore(cache_dir() / "maps")
    holder = replica("from vae.maps.service import MapStore\nfrom vae.paths import cache_dir\nimport time\n"
                     "with MapStore(cache_dir() / 'maps').lock('fp', 'tsne', {}) as held:\n"
                     "    print(held, flush=True)\n    time.sleep(600)\n")
    try:
        assert holder.stdout.readline().strip() == "True"
        with file_lock(store.folder / f"{map_key('fp', 'tsne', {})}.lock", blocking=False) as held:
            assert not held  # it is computing: a second replica would wait
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    with file_lock(store.folder / f"{map_key('fp', 'tsne', {})}.lock", blocking=False) as held:
        assert held  # the kernel released it with the process: nobody waits for a dead replica


def test_a_server_waiting_on_another_servers_map_shows_that_ones_progress(shared):
    """While another server holds a map's lock, the waiting job says so (elsewhere) with the progress the
    holder writes in the lock file, then reads the holder's map; a holder that stops without one leaves
    the map to the waiter, which then computes it itself."""
    from vae.maps.service import MapService

    z = np.random.default_rng(0).standard_normal((200, 4)).astype(np.float32)
    store = MapStore(cache_dir() / "maps")
    params = {"perplexity": 10}
    service = MapService(store, isolate=False)
    try:
        # flock locks belong to an open file, so a second open in this process is "another server"
        with store.lock("fp-a", "tsne", params) as held:
            assert held
            store.report("fp-a", "tsne", params, 0.42)
            job = service.request("fp-a", z, "tsne", params)
            deadline = time.time() + 10
            while time.time() < deadline and not job.elsewhere:
                time.sleep(0.05)
            time.sleep(0.4)  # a poll or more
            assert job.elsewhere and job.progress == pytest.approx(0.42) and job.status == "running"
            theirs = np.arange(400, dtype=np.float32).reshape(200, 2)
            store.put("fp-a", "tsne", params, theirs)
        assert job.wait(timeout=30) and np.array_equal(job.future.result(), theirs)
        assert job.started == 0 and job.elsewhere  # not computed here: the page says another server did

        with store.lock("fp-b", "tsne", params) as held:  # a holder that dies (or fails) without a map
            job = service.request("fp-b", z, "tsne", params)
            deadline = time.time() + 10
            while time.time() < deadline and not job.elsewhere:
                time.sleep(0.05)
            assert job.elsewhere and job.progress == 0.0  # it wrote no progress
        assert job.wait(timeout=120) and job.error == ""
        assert job.started > 0 and not job.elsewhere and job.future.result().shape == (200, 2)
        assert store.reported("fp-b", "tsne", params) > 0.5  # and it wrote its own progress for any waiter
    finally:
        service.close()


GUESS = """
import json, sys, time
import streamlit as st
from ui import identity
identity._cookie = {}.get
st.session_state = {}
spans = []
class Clock:  # the module's time, recording when each wrong guess's pause ran
    def __getattr__(self, name):
        return getattr(time, name)
    def sleep(self, s):
        start = time.time(); time.sleep(s); spans.append((start, time.time()))
identity.time = Clock()
print("ready", flush=True)
sys.stdin.readline()
assert not identity.become_teacher("wrong guess")
print(json.dumps(spans))
"""


def test_wrong_teacher_guesses_take_turns_across_replicas(shared, monkeypatch):
    """Two replicas (processes) on one LATENT_LAB_HOME guessing at the same moment: their pauses never
    overlap, so a class guessing on every replica is as slow as one guessing on one."""
    monkeypatch.setenv("LATENT_LAB_TEACHER_SECRET", "the real one")
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")
    procs = [subprocess.Popen([sys.executable, "-c", GUESS], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        spans = []
        for p in procs:
            out, _ = p.communicate(timeout=60)
            assert p.returncode == 0, out
            spans += json.loads(out.splitlines()[-1])
    finally:
        for p in procs:
            p.kill()
    (a0, a1), (b0, b1) = sorted(spans)
    assert a1 - a0 >= 1.0 and b1 - b0 >= 1.0  # each wrong guess paused
    assert b0 >= a1  # and the second began after the first had ended, on another process
    assert (shared / ".teacher-guesses.lock").is_file()


def test_training_caps_count_across_replicas(shared, queue_factory, data_root, fake_python):
    """Two replicas' queues on the one jobs folder: one runs the trainings, the other hands its submits over;
    a person's trainings count on both, and each replica lists the other's."""
    a = queue_factory(python=fake_python, max_per_user=2, max_running=1)
    b = queue_factory(python=fake_python, max_per_user=2, max_running=1)
    assert a.jobs_dir == b.jobs_dir and b.read_only and b.has_runner  # a holds the folder's lock
    ask = lambda q: q.submit(MODEL, {"time_budget": 60}, "mnist", data_root, "m", owner="alice")  # noqa: E731
    first, second = ask(a), ask(b)
    with pytest.raises(ValueError, match="2 trainings per person"):
        ask(b)
    with pytest.raises(ValueError, match="2 trainings per person"):
        ask(a)
    deadline = time.time() + 30
    while time.time() < deadline and a.status(second) is None:
        time.sleep(0.05)  # the runner takes the hand-off up within its poll_s
    assert [s.job_id for s in a.jobs(owner="alice")] == [first, second]
    assert [s.job_id for s in b.jobs(owner="alice")] == [first, second]
    assert b.cancel(second, owner="alice") and a.cancel(first, owner="alice")
    assert {a.wait(j, timeout=60).state for j in (first, second)} == {"cancelled"}
    assert all(b.status(j).state == "cancelled" for j in (first, second))


RUNNER = """
import sys
from vae.jobs import TrainingQueue, default_jobs_dir
q = TrainingQueue(default_jobs_dir(), python=sys.argv[1], poll_s=0.1, threads_per_job=1, max_running=1,
                  data_roots=[sys.argv[2]])
print("runner" if not q.read_only else "not the runner", flush=True)
sys.stdin.read()  # until the test closes our stdin
q.shutdown(timeout=10)
"""


@pytest.mark.usefixtures("fresh_app", "stub_maps")
def test_a_training_started_on_the_page_of_a_second_replica(shared, fake_python, data_root):
    """Replica A (another process) runs the shared folder's trainings; the Train page on replica B (this
    process, AppTest) starts one, sees it run on A, is held to the per-person cap, and cancels it."""
    from tests.test_page_train import MY_OWNER, open_page, texts
    from ui import training

    a = subprocess.Popen([sys.executable, "-c", RUNNER, fake_python, str(data_root)], cwd=ROOT, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        assert a.stdout.readline().strip() == "runner"
        at = open_page()
        q = training.queue()
        assert q.read_only and q.has_runner and q.jobs_dir == shared / "cache" / "jobs"
        at.button(key="train_start").click().run()
        assert not at.exception
        (job,) = q.jobs(owner=MY_OWNER)
        deadline = time.time() + 60
        while q.status(job.job_id).state != "running" and time.time() < deadline:
            time.sleep(0.2)  # A takes the hand-off up and starts its (stand-in) trainer
        assert q.status(job.job_id).state == "running"
        at.run()
        assert "Cancel training" in [b.label for b in at.button]  # B's page shows A's running training
        at.button(key="train_start").click().run()
        at.button(key="train_start").click().run()  # a third: over the cap, counted over both replicas
        assert "per person" in texts(at.error) and len(q.jobs(owner=MY_OWNER)) == 2
        for cancelled in (1, 2):  # the page's Cancel, once per training: A carries each one out
            at.run()
            at.button(key="train_cancel").click().run()
            deadline = time.time() + 60
            while (sum(s.state == "cancelled" for s in q.jobs(owner=MY_OWNER)) < cancelled
                   and time.time() < deadline):
                time.sleep(0.2)
            assert sum(s.state == "cancelled" for s in q.jobs(owner=MY_OWNER)) == cancelled
    finally:
        a.stdin.close()
        a.wait(30)


def test_a_few_labels_result_another_replica_is_measuring_is_waited_for(shared, monkeypatch):
    """The few-labels lane waits on the result's lock file while another replica measures it, then reads that
    replica's file instead of measuring it a second time."""
    import ui.fewlabels as fl
    from vae.fewlabels import ResultStore, few_labels

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    features = rng.standard_normal((200, 4)).astype(np.float32)
    theirs = few_labels(features, labels, fl.ks_for(labels), 2)  # what the other replica will have measured
    store = ResultStore(cache_dir() / "fewlabels")
    store.folder.mkdir(parents=True)
    monkeypatch.setattr(fl, "few_labels", lambda *a, **k: pytest.fail("measured a second time"))
    lane = fl.Lane(store)
    try:
        with file_lock(store.path("k").with_suffix(".lock")) as held:  # the other replica, measuring
            assert held
            job = lane.request("k", features, labels)
            time.sleep(0.3)
            assert not job.future.done()  # waiting for it
            assert store.put("k", theirs)
        got = job.future.result(timeout=30)
        assert np.array_equal(got.accuracy, theirs.accuracy) and job.progress == 1.0
    finally:
        lane.close()
