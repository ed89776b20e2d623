"""The training queue on a shared classroom server: caps from the environment, trainings per person,
owners, data roots, the trainers' CPU priority, and a queue that survives its server (a restart, a
SIGKILL, a second queue on the same folder). Stand-in trainers as in tests/test_jobs.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.test_data import write_idx_folder
from tests.test_jobs import HANDSHAKE, MODEL, fake_python, queue_factory, read_line, ready_fifo, submit  # noqa: F401
from vae.config import ModelConfig
from vae.data import DataError
from vae.events import INTERRUPTED, EventWriter
from vae.jobfiles import JobState, trainer_pids
from vae.jobs import TrainingQueue
from vae.paths import ROOT
from vae.train import train_config
from vae.train.job import TrainingJob

CAPS = ("LATENT_LAB_MAX_TRAIN_SECONDS", "LATENT_LAB_MAX_EPOCHS", "LATENT_LAB_MAX_PER_USER", "LATENT_LAB_MAX_QUEUED",
        "LATENT_LAB_TRAIN_NICE", "LATENT_LAB_MAX_TRAININGS", "LATENT_LAB_TRAIN_THREADS")


def trainers(q: TrainingQueue, job_id: str) -> dict:
    """The live processes that train this job."""
    return trainer_pids({str(q.jobs_dir / f"{job_id}.json")})


def step_lines(q: TrainingQueue, job_id: str) -> int:
    path = q.jobs_dir / f"{job_id}.jsonl"
    return sum(json.loads(line)["kind"] == "step" for line in path.read_text().splitlines()) if path.exists() else 0


# ------------------------------------------------------------------ caps

def test_caps_come_from_the_environment_once(tmp_path, monkeypatch):
    for name in CAPS:
        monkeypatch.delenv(name, raising=False)
    q = TrainingQueue(tmp_path / "a", threads_per_job=1)
    assert q.caps == {"max_running": 1, "threads_per_job": 1, "max_queued": 32, "max_per_user": 2,
                      "max_train_seconds": 600, "max_epochs": 50, "nice": 10}
    for name, value in zip(CAPS, ("30", "5", "1", "4", "7", "2", "3")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LATENT_LAB_DATA_ROOTS", str(tmp_path / "data"))
    q = TrainingQueue(tmp_path / "b")
    assert q.caps == {"max_running": 2, "threads_per_job": 3, "max_queued": 4, "max_per_user": 1,
                      "max_train_seconds": 30, "max_epochs": 5, "nice": 7}
    assert q.limits.data_roots == ((tmp_path / "data").resolve(),)
    monkeypatch.setenv("LATENT_LAB_MAX_EPOCHS", "9")
    assert q.caps["max_epochs"] == 5  # read when the queue was made
    assert TrainingQueue(tmp_path / "c", max_epochs=3, nice=0).caps.items() >= {"max_epochs": 3, "nice": 0}.items()


@pytest.mark.parametrize("name, raw", [("LATENT_LAB_MAX_TRAIN_SECONDS", "0"), ("LATENT_LAB_MAX_EPOCHS", "1001"),
                                       ("LATENT_LAB_MAX_PER_USER", "two"), ("LATENT_LAB_TRAIN_NICE", "20")])
def test_a_bad_cap_is_one_sentence(tmp_path, monkeypatch, name, raw):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ValueError, match=f"^{name} must be a whole number of at least"):
        TrainingQueue(tmp_path / "jobs")


def test_trainings_over_a_cap_are_refused(queue_factory, data_root, fake_python):
    q = queue_factory(python=fake_python, max_train_seconds=600, max_epochs=50)
    with pytest.raises(ValueError) as e:
        submit(q, data_root, time_budget=601)
    assert str(e.value) == ("This server allows trainings of at most 600 seconds (LATENT_LAB_MAX_TRAIN_SECONDS); "
                            "ask for less.")
    with pytest.raises(ValueError) as e:
        submit(q, data_root, time_budget=None, epochs=51)
    assert str(e.value) == "This server allows trainings of at most 50 epochs (LATENT_LAB_MAX_EPOCHS); ask for fewer."
    assert q.jobs() == []
    asked = {"epochs only": {"time_budget": None, "epochs": 5}, "budget only": {"time_budget": 30},
             "neither": {"time_budget": None}, "both": {"time_budget": 600, "epochs": 50}}
    ids = {k: submit(q, data_root, **v) for k, v in asked.items()}
    got = {k: TrainingJob.read(q.jobs_dir / f"{i}.json").train for k, i in ids.items()}
    assert {k: (t.epochs, t.time_budget) for k, t in got.items()} == {  # every training ends within the cap
        "epochs only": (5, 600), "budget only": (50, 30), "neither": (20, 600), "both": (50, 600)}
    for i in ids.values():
        q.cancel(i)
    assert {q.wait(i, timeout=60).state for i in ids.values()} == {"cancelled"}


def test_each_person_may_have_two_trainings_at_once(queue_factory, data_root, fake_python):
    q = queue_factory(python=fake_python, max_per_user=2, max_running=1)
    ask = lambda owner: q.submit(MODEL, {"time_budget": 60}, "mnist", data_root, "m", owner=owner)  # noqa: E731
    a1, a2 = ask("alice"), ask("alice")
    with pytest.raises(ValueError) as e:
        ask("alice")
    assert str(e.value) == ("This server allows 2 trainings per person waiting or running at once "
                            "(LATENT_LAB_MAX_PER_USER); wait for one to finish, or cancel one.")
    b = ask("bob")  # another person is not held up
    assert [s.job_id for s in q.jobs(owner="alice")] == [a1, a2]
    assert [(s.job_id, s.owner) for s in q.jobs(owner="bob")] == [(b, "bob")]
    assert [s.job_id for s in q.jobs()] == [a1, a2, b] and q.jobs(owner="carol") == []
    assert TrainingJob.read(q.jobs_dir / f"{a1}.json").owner == "alice"
    assert q.cancel(a2)
    a3 = ask("alice")  # a cancelled one no longer counts
    with pytest.raises(ValueError, match="owner"):
        q.submit(MODEL, {"time_budget": 60}, "mnist", data_root, owner="")
    for j in (a1, a3, b):
        q.cancel(j)
        assert q.wait(j, timeout=60).state == "cancelled"


def test_names_are_plain_text(queue_factory, data_root, fake_python):
    q = queue_factory(python=fake_python)
    job = submit(q, data_root, name="  my\u202e\nvae\u200b ")
    assert q.status(job).name == "my vae" == TrainingJob.read(q.jobs_dir / f"{job}.json").name
    assert q.cancel(job) and q.wait(job, timeout=60).state == "cancelled"


def test_trainers_run_below_the_servers_priority(queue_factory, data_root, fake_python, ready_fifo):
    own = os.getpriority(os.PRIO_PROCESS, 0)
    q = queue_factory(python=fake_python, nice=12)
    job = submit(q, data_root, name=HANDSHAKE)
    assert read_line(ready_fifo) == "ready\n"
    pid = JobState.read(q.jobs_dir / f"{job}.state").pid
    assert list(trainers(q, job)) == [pid]
    assert os.getpriority(os.PRIO_PROCESS, pid) == max(12, own) and os.getpriority(os.PRIO_PROCESS, 0) == own
    assert q.cancel(job) and q.wait(job, timeout=60).state == "cancelled"


# ------------------------------------------------------------------ data roots

def test_a_data_folder_must_be_inside_the_data_roots(queue_factory, tmp_path, data_root, fake_python):
    root = tmp_path / "data"
    write_idx_folder(root / "digits")
    write_idx_folder(tmp_path / "outside")
    (root / "escape").symlink_to(tmp_path / "outside")
    (root / "alias").symlink_to(root / "digits")
    q = queue_factory(python=fake_python, data_roots=[root])
    for folder in (tmp_path / "outside", root / "escape", root / ".." / "outside", "/etc"):
        with pytest.raises(DataError) as e:
            q.submit(MODEL, {"epochs": 1}, "custom", folder)
        assert str(e.value) == (f"On this server a custom dataset must be a folder inside {root.resolve()}; "
                                f"{folder} is not.")
    with pytest.raises(DataError, match="the data folder must be a folder inside"):
        q.submit(MODEL, {"epochs": 1}, "mnist", data_root)  # MNIST's root is not among this queue's roots
    assert [p.name for p in q.jobs_dir.iterdir()] == ["queue.lock"]  # nothing was queued
    job = q.submit(MODEL, {"epochs": 1}, "custom", root / "alias")
    assert TrainingJob.read(q.jobs_dir / f"{job}.json").data_dir == str((root / "digits").resolve())
    assert q.cancel(job) and q.wait(job, timeout=60).state == "cancelled"


# ------------------------------------------------------------------ a queue that survives its server

SERVER = """\
import json, signal, sys
from vae.jobs import TrainingQueue
jobs_dir, fake, data, first = sys.argv[1:]
q = TrainingQueue(jobs_dir, python=fake, max_running=1, threads_per_job=1, data_roots=[data], poll_s=0.05)
model = {"kind": "vae", "arch": "mlp", "latent_dim": 2, "hidden": [32]}
ids = [q.submit(model, {"time_budget": 60}, "mnist", data, name, owner="alice") for name in (first, first)]
print(json.dumps(ids), flush=True)
signal.pause()
"""


def test_a_server_killed_by_sigkill(tmp_path, data_root, fake_python, ready_fifo, queue_factory):
    """The running job is shown as interrupted (its orphaned trainer stopped, never started again); the
    waiting one starts in the next server's queue, once."""
    jobs_dir = (tmp_path / "jobs").resolve()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(jobs_dir), fake_python, str(data_root), HANDSHAKE],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        running, waiting = json.loads(server.stdout.readline())
        assert read_line(ready_fifo) == "ready\n"
        st = JobState.read(jobs_dir / f"{running}.state")
        assert st.state == "running" and st.pid and JobState.read(jobs_dir / f"{waiting}.state").state == "queued"
    finally:
        server.kill()
        server.wait()
    orphan = {st.pid: str(jobs_dir / f"{running}.json")}
    assert trainer_pids(set(orphan.values())) == orphan  # its server is gone; it would train on

    q = queue_factory(python=fake_python, max_running=1)
    s = q.status(running)
    assert (s.state, s.error, s.owner, s.step) == ("error", INTERRUPTED, "alice", 3)
    assert trainers(q, running) == {} and step_lines(q, running) == 3  # stopped, and not started again
    assert q.status(waiting).state == "running" and read_line(ready_fifo) == "ready\n"  # it, too, says so
    assert len(trainers(q, waiting)) == 1 and step_lines(q, waiting) == 3
    assert TrainingQueue(jobs_dir).read_only  # and nobody else starts it: the folder is this queue's
    assert q.cancel(waiting) and q.wait(waiting, timeout=60).state == "cancelled"
    assert step_lines(q, waiting) == 3  # one run of it, not two


def test_a_restarted_queue_keeps_every_state(queue_factory, data_root, fake_python, ready_fifo, monkeypatch):
    first = queue_factory(python=fake_python, max_running=1)
    monkeypatch.setenv("FAKE_MODE", "fail")
    failed = submit(first, data_root)
    assert first.wait(failed, timeout=60).state == "error"
    monkeypatch.delenv("FAKE_MODE")
    running = submit(first, data_root, name=HANDSHAKE)
    waiting, cancelled = submit(first, data_root), submit(first, data_root)
    assert read_line(ready_fifo) == "ready\n"
    assert first.cancel(cancelled)
    first.shutdown(timeout=30)  # the server stops (Ctrl-C): atexit runs this
    assert first.status(running).error == INTERRUPTED and first.status(waiting).state == "queued"

    again = queue_factory(python=fake_python, max_running=1)
    assert [(s.job_id, s.state) for s in again.jobs()] == [
        (failed, "error"), (running, "error"), (waiting, "running"), (cancelled, "cancelled")]
    assert again.status(failed).error == "The loss diverged; try a lower learning rate."
    assert again.status(running).error == INTERRUPTED
    assert again.cancel(waiting) and again.wait(waiting, timeout=60).state == "cancelled"


def test_waiting_jobs_start_in_submission_order_after_a_restart(queue_factory, data_root, fake_python):
    first = queue_factory(python=fake_python, max_running=1)
    ids = [submit(first, data_root, name=f"m{i}") for i in range(4)]
    first.shutdown(timeout=30)
    again = queue_factory(python=fake_python, max_running=1)
    assert [again.status(j).state for j in ids] == ["error", "running", "queued", "queued"]
    assert [again.status(j).position for j in ids] == [0, 0, 1, 2]
    for j in ids[1:]:
        again.cancel(j)
    assert [again.wait(j, timeout=60).state for j in ids[1:]] == ["cancelled"] * 3


def write_left_behind(jobs_dir, job_id: str, state: JobState, events: list[dict]) -> None:
    """A job's files as a server that died while it was running leaves them."""
    jobs_dir.mkdir(exist_ok=True)
    TrainingJob(ModelConfig(latent_dim=2, hidden=(32,)), train_config(epochs=1), name="left", job_id=job_id,
                submitted_at=time.time(), owner="alice").write(jobs_dir / f"{job_id}.json")
    state.write(jobs_dir / f"{job_id}.state")
    writer = EventWriter(jobs_dir / f"{job_id}.jsonl")
    for event in events:
        writer.write(event)
    writer.close()


def test_what_a_dead_server_was_running_is_recorded(tmp_path, queue_factory, fake_python):
    jobs_dir = tmp_path / "jobs"
    checkpoint = tmp_path / "saved.safetensors"
    checkpoint.write_bytes(b"a model")
    started = JobState("running", pid=None, started_at=time.time())
    write_left_behind(jobs_dir, "saved", started, [{"kind": "saved", "checkpoint": str(checkpoint), "metrics": {}}])
    write_left_behind(jobs_dir, "cancelled", JobState("running", cancel_at=time.time()), [])
    write_left_behind(jobs_dir, "failed", started, [{"kind": "error", "message": "Training diverged."}])
    write_left_behind(jobs_dir, "silent", started, [])
    write_left_behind(jobs_dir, "nostate", started, [])
    (jobs_dir / "nostate.state").unlink()  # a job file alone is not listed
    write_left_behind(jobs_dir, "garbled", started, [])
    (jobs_dir / "garbled.state").write_text('{"state": "flying"}')
    q = queue_factory(python=fake_python)
    got = {s.job_id: (s.state, s.error) for s in q.jobs()}
    assert got == {"saved": ("done", None), "cancelled": ("cancelled", None), "failed": ("error", "Training diverged."),
                   "silent": ("error", INTERRUPTED)}
    assert q.status("saved").checkpoint == str(checkpoint) and q.status("saved").owner == "alice"
    assert JobState.read(jobs_dir / "silent.state").state == "error"  # recorded for the next restart


def test_one_queue_per_folder_runs_the_trainings(queue_factory, data_root, fake_python, ready_fifo):
    runner = queue_factory(python=fake_python, max_running=1)
    a, b = submit(runner, data_root, name=HANDSHAKE), submit(runner, data_root)
    assert read_line(ready_fifo) == "ready\n"
    viewer = queue_factory(python=fake_python, max_running=1)  # e.g. a cache cleared in the same server
    assert viewer.read_only and not runner.read_only and viewer.has_runner
    assert [(s.job_id, s.state) for s in viewer.jobs()] == [(a, "running"), (b, "queued")]
    assert viewer.status(a).step == 3  # it reads the runner's events
    handed = submit(viewer, data_root)  # written into the folder, queued: the runner takes it up
    assert viewer.status(handed).state == "queued" and runner.status(handed).position == 2
    assert viewer.cancel(b)  # a request in the folder, carried out by the runner
    assert runner.wait(b, timeout=60).state == "cancelled" and not (runner.jobs_dir / f"{b}.cancel").exists()
    assert len(trainers(runner, a)) == 1 and viewer.status(handed).position == 1
    assert viewer.cancel(a)  # a running one too: the runner sends it SIGTERM
    assert runner.wait(a, timeout=60).state == "cancelled"
    assert runner.status(handed).state == "running"
    assert (viewer.status(a).state, viewer.status(b).state, viewer.status(handed).state) == \
        ("cancelled", "cancelled", "running")
    runner.shutdown(timeout=30)
    assert not viewer.read_only  # the folder is free: the other queue takes over
    assert viewer.status(handed).error == INTERRUPTED
    c = submit(viewer, data_root)
    assert viewer.status(c).state == "running"
    assert viewer.cancel(c) and viewer.wait(c, timeout=60).state == "cancelled"


def test_a_queue_that_never_runs_trainings(queue_factory, data_root, fake_python):
    """The command line's queue (runner=False) never takes the folder: with no runner, what it submits waits
    in the folder, a waiting job it cancels is cancelled in place, and the next runner starts the rest."""
    cli = queue_factory(python=fake_python, runner=False)
    assert cli.read_only and not cli.has_runner
    kept, dropped = submit(cli, data_root), submit(cli, data_root)
    assert [cli.status(j).state for j in (kept, dropped)] == ["queued", "queued"]
    assert trainers(cli, kept) == {} and not cli.has_runner  # nothing started, the folder still free
    assert cli.cancel(dropped) and cli.status(dropped).state == "cancelled"
    assert not cli.cancel(dropped)
    server = queue_factory(python=fake_python, max_running=1)
    assert server.status(kept).state == "running" and server.status(dropped).state == "cancelled"
    assert cli.has_runner and cli.status(kept).state == "running"
    assert server.cancel(kept) and server.wait(kept, timeout=60).state == "cancelled"


def test_a_finishing_shutdown_lets_the_running_trainings_end(queue_factory, data_root, fake_python, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "fail")  # the stand-in ends at once, as a finished training would
    q = queue_factory(python=fake_python, max_running=1)
    first, second = submit(q, data_root), submit(q, data_root)
    q.shutdown(timeout=30, finish=True)
    assert q.status(first).error == "The loss diverged; try a lower learning rate."  # its own end, not INTERRUPTED
    assert JobState.read(q.jobs_dir / f"{second}.state").state in ("queued", "error")
