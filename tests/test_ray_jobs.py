"""Trainings on Ray (vae.jobs.ray_backend) against a local head with 2 CPUs, started once for the session
(tests/ray_head.py: free ports, a temporary folder, stopped after). Skipped with a reason where Ray is not
installed, unless LATENT_LAB_REQUIRE_RAY=1 (CI), which makes a missing Ray a failure.

Through vae.jobs.make_queue with LATENT_LAB_RAY_ADDRESS set, as the app does: progress arrives through the
events file, a second queue object (another web replica) sees the same jobs and cancels them, a training
goes on when the process that submitted it is killed and its model lands in the library; the caps count the
cluster's jobs; a waiting training is cancelled at once and no longer counted; `python -m vae.jobs submit
--wait` and `list` against the head. Without Ray, or with a head that does not answer, the queue and the
command line say so in one sentence, at once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tests.ray_head import LocalHead, free_port, ray_command
from vae.checkpoint import ModelLibrary, default_library_dir
from vae.jobs import RayQueue, RayUnavailable, make_queue
from vae.jobs.cli import main
from vae.jobs.ray_backend import PREFIX
from vae.paths import ROOT

TINY = {"kind": "ae", "arch": "mlp", "latent_dim": 2, "hidden": (32,)}


@pytest.fixture(scope="session")
def ray_head():
    if ray_command() is None:
        if os.environ.get("LATENT_LAB_REQUIRE_RAY") == "1":
            pytest.fail("LATENT_LAB_REQUIRE_RAY=1 but Ray is not installed (pip install -r requirements-ray.txt).")
        pytest.skip("Ray is not installed (pip install -r requirements-ray.txt); LATENT_LAB_REQUIRE_RAY=1 makes "
                    "this a failure")
    with LocalHead(num_cpus=2) as head:
        yield head


@pytest.fixture
def on_ray(ray_head, data_root, monkeypatch):
    """The app's configuration for Ray: the variable set, trainings of one thread each."""
    monkeypatch.setenv("LATENT_LAB_RAY_ADDRESS", ray_head.address)
    monkeypatch.setenv("LATENT_LAB_DATA", str(data_root))
    monkeypatch.setenv("LATENT_LAB_TRAIN_THREADS", "1")
    return ray_head


def until(predicate, timeout: float = 180.0, what: str = "the condition"):
    """Poll `predicate` (a Ray job's life is seen only by asking) until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


REPLICA = """\
import json, signal, sys
from vae.jobs import make_queue
tiny = json.loads(sys.argv[1])
q = make_queue(max_per_user=1)
ids = [q.submit(tiny, {"time_budget": 2}, "mnist", None, "  short\\u202e AE ", owner="alice"),
       q.submit(tiny, {"time_budget": 120}, "mnist", None, "long AE", owner="bob")]
try:
    q.submit(tiny, {"time_budget": 60}, "mnist", None, "again", owner="bob")
    refused = None
except ValueError as e:
    refused = str(e)
print(json.dumps({"ids": ids, "refused": refused}), flush=True)
signal.pause()
"""


@pytest.mark.slow
def test_trainings_on_ray_survive_their_replica(on_ray, data_root):
    second = make_queue()  # a web replica that stays
    assert isinstance(second, RayQueue) and second.unavailable is None
    assert second.jobs_dir == (default_library_dir().parent / "jobs").resolve()  # next to the shared library
    assert second.caps["max_running"] == 2 and second.caps["threads_per_job"] == 1  # the cluster's 2 CPUs
    # the replica that submits them, in a process of its own, SIGKILLed while they run
    replica = subprocess.Popen([sys.executable, "-c", REPLICA, json.dumps(TINY)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True)
    try:
        told = json.loads(replica.stdout.readline())
        short, long = told["ids"]
        assert "allows 1 training per person" in told["refused"]  # counted from the cluster's jobs
        assert second.read_only is False and {s.job_id for s in second.jobs()} == {short, long}
        assert [s.job_id for s in second.jobs(owner="bob")] == [long]
        running = until(lambda: (s := second.status(long)).state == "running" and s.step > 0 and s,
                        what="the long training's first steps")
        assert running.steps["recon"] and running.samples_per_s and running.owner == "bob"
    finally:
        replica.kill()
        replica.wait()
    assert replica.returncode == -9  # it did not end on its own

    goes_on = until(lambda: (s := second.status(long)).step > running.step and s,
                    what="the long training's steps after its replica died")
    assert goes_on.state == "running"
    done = until(lambda: (s := second.status(short)).finished and s, what="the short training's end")
    assert done.state == "done", done.error
    assert os.path.dirname(done.checkpoint) == str(default_library_dir())
    entry = ModelLibrary(default_library_dir()).get(done.entry_id)
    assert entry.name == "short AE" and entry.owner == "alice" and entry.config.kind == "ae"
    assert done.history["epoch"] and done.reconstructions.shape == (8, 28, 28) and "knn_acc" in done.metrics

    with pytest.raises(ValueError, match="Only whoever started this training can cancel it"):
        second.cancel(long, owner="alice")
    assert second.cancel(long, owner="bob")
    assert second.status(long).cancelling  # running until its trainer has stopped
    stopped = until(lambda: (s := second.status(long)).finished and s, timeout=60, what="the cancel")
    assert stopped.state == "cancelled" and not stopped.cancelling
    assert not second.cancel(long)  # finished: nothing to cancel
    counts = second.counts()
    assert (counts["done"], counts["cancelled"], counts["running"], counts["queued"]) == (1, 1, 0, 0)
    assert len(list(default_library_dir().glob("*.safetensors"))) == 1  # the cancelled one saved nothing


def ended_on_the_cluster(address: str, ids: list[str]) -> bool:
    """Whether Ray itself has ended these jobs (the queue may call one cancelled before)."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    return all(str(client.get_job_status(PREFIX + j)) in ("STOPPED", "SUCCEEDED", "FAILED") for j in ids)


@pytest.mark.slow
def test_a_waiting_training_is_cancelled(on_ray):
    q = make_queue(max_per_user=1)
    busy = [q.submit(TINY, {"time_budget": 120}, "mnist", None, f"busy {i}") for i in range(2)]  # the operator's
    until(lambda: all(q.status(j).state == "running" for j in busy), what="both CPUs busy")
    waiting = q.submit(TINY, {"time_budget": 60}, "mnist", None, "alice's", owner="alice")
    s = q.status(waiting)
    assert (s.state, s.position, s.owner) == ("queued", 1, "alice")
    with pytest.raises(ValueError, match="allows 1 training per person"):  # the waiting one counts
        q.submit(TINY, {"time_budget": 60}, "mnist", None, "again", owner="alice")

    assert q.cancel(waiting, owner="alice")
    # Ray only queues the stop on the job's supervisor, which itself waits for a CPU: the cancel file makes
    # it cancelled now, on every replica, and no longer counted
    cancelled = until(lambda: (s := make_queue().status(waiting)).finished and s, timeout=60,
                      what="the waiting training's cancel")
    assert cancelled.state == "cancelled" and cancelled.error is None
    assert not q.cancel(waiting)
    again = q.submit(TINY, {"time_budget": 60}, "mnist", None, "alice's again", owner="alice")
    assert q.status(again).state == "queued" and q.status(again).position == 1  # the cancelled one left the line

    for job_id in (again, *busy):
        assert q.cancel(job_id)
    ids = [*busy, waiting, again]
    until(lambda: ended_on_the_cluster(on_ray.address, ids), timeout=120, what="the cluster ending them")
    assert [q.status(j).state for j in ids] == ["cancelled"] * 4  # the waiting ones exited at once when started
    assert not list(default_library_dir().glob("*.safetensors"))


@pytest.mark.slow
def test_the_command_line_on_ray(on_ray):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "vae.jobs", "submit", "--model", "ae", "--latent-dim", "2",
                           "--hidden", "32", "--time-budget", "2", "--name", "cli AE", "--wait"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    job_id, result = done.stdout.splitlines()[0], json.loads(done.stdout.splitlines()[-1])
    assert f"the Ray cluster at {on_ray.address} runs it" in done.stderr
    assert (result["id"], result["state"]) == (job_id, "done") and os.path.isfile(result["checkpoint"])
    shown = subprocess.run([sys.executable, "-m", "vae.jobs", "list"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    line = next(ln for ln in shown.stdout.splitlines() if ln.startswith(job_id))
    assert line.split()[1] == "done" and line.endswith("cli AE")


def test_a_head_that_does_not_answer_is_one_sentence(tmp_path, data_root, monkeypatch):
    pytest.importorskip("ray.job_submission", reason="needs Ray to reach the point of asking the head")
    q = RayQueue(f"http://127.0.0.1:{free_port()}", tmp_path / "jobs", data_roots=[data_root], timeout_s=3)
    began = time.monotonic()
    sentence = q.unavailable
    assert sentence.startswith(f"The Ray cluster at {q.address} does not answer (") and "unavailable" in sentence
    with pytest.raises(RayUnavailable) as e:
        q.submit(TINY, {"time_budget": 60}, "mnist", data_root, "m")
    assert str(e.value) == sentence and "\n" not in sentence
    assert q.jobs() == [] and q.status("nope") is None and q.counts()["running"] == 0
    with pytest.raises(RayUnavailable):  # cancel asks the cluster: it says the sentence too
        q.cancel("nope")
    assert time.monotonic() - began < 20  # refused at once, never a hang
    assert list((tmp_path / "jobs").iterdir()) == []  # nothing left behind by the refused submit


def test_the_command_line_with_a_head_that_does_not_answer(data_root, monkeypatch, capsys):
    pytest.importorskip("ray.job_submission", reason="needs Ray to reach the point of asking the head")
    monkeypatch.setenv("LATENT_LAB_RAY_ADDRESS", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("LATENT_LAB_DATA", str(data_root))
    for argv in (["submit", "--model", "ae", "--latent-dim", "2", "--time-budget", "10"], ["list"],
                 ["cancel", "0123456789ab"]):
        code = main(argv)
        out, err = capsys.readouterr()
        sentence = err.splitlines()[-1]
        assert code == 1 and out == "", argv  # the cluster, not the input: 1, not 2
        assert sentence.startswith("error: The Ray cluster at http://127.0.0.1:1 does not answer ("), argv
        assert "No training has the id" not in err and len(err.splitlines()) <= 2, argv


def test_a_head_that_never_answers_is_not_waited_for(tmp_path):
    """A dashboard that takes the connection and says nothing (a hung head): the timeout, then the sentence."""
    pytest.importorskip("ray.job_submission", reason="needs Ray to reach the point of asking the head")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts the connections; nobody ever reads or answers
        q = RayQueue(f"http://127.0.0.1:{silent.getsockname()[1]}", tmp_path / "jobs", timeout_s=2)
        began = time.monotonic()
        assert "does not answer (no answer within 2 s)" in q.unavailable
        assert q.jobs() == [] and q.unavailable  # the second look fails at once: the head is not asked again yet
        assert time.monotonic() - began < 10


def test_without_ray_installed_trainings_are_unavailable(tmp_path, data_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray.job_submission", None)  # an import of it raises ImportError
    monkeypatch.setenv("LATENT_LAB_RAY_ADDRESS", "head:8265")
    q = make_queue(tmp_path / "jobs", data_roots=[data_root])
    assert isinstance(q, RayQueue) and q.address == "http://head:8265"
    assert q.unavailable == ("Trainings run on a Ray cluster here (LATENT_LAB_RAY_ADDRESS is set), but Ray is not "
                             "installed, so trainings are unavailable: install requirements-ray.txt.")
    with pytest.raises(ValueError, match="Ray is not installed"):
        q.submit(TINY, {"time_budget": 60}, "mnist", data_root, "m")
    assert q.jobs() == [] and q.caps["max_running"] >= 1


def test_the_app_does_not_import_ray_without_the_variable(tmp_path):
    code = ("import sys; import vae.jobs, ui.training; from vae.jobs import make_queue, TrainingQueue; "
            "q = make_queue(sys.argv[1]); assert isinstance(q, TrainingQueue), q; "
            "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')]")
    env = {k: v for k, v in os.environ.items() if k != "LATENT_LAB_RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "jobs")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
