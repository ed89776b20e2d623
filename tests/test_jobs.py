"""The training queue: validation before launch, the job file, queue places, cancel, errors, the events file.

Most tests run a stand-in trainer (a tiny script started as the queue starts `python -m vae.train`,
which reads the job file, writes the same JSON-lines events and waits for SIGTERM), so they check
the queue in well under a second and wait only on the queue's own `wait` or on the stand-in saying
it is ready; one `slow` test runs the real trainer for two seconds and finds the checkpoint in the
library.
"""

from __future__ import annotations

import json
import os
import select
import stat
import sys
import time

import numpy as np
import pytest

from vae.checkpoint import ModelLibrary, default_library_dir
from vae.config import ModelConfig
from vae.data import DataError
from vae.events import DoneEvent, EpochEvent, EventLog, EventWriter, StepEvent
from vae.jobfiles import KEEP_FILES_S
from vae.jobs import TrainingQueue
from vae.paths import ROOT
from vae.train import train_config
from vae.train.job import JOB_FORMAT, TrainingJob

MODEL = {"kind": "vae", "arch": "mlp", "latent_dim": 2, "hidden": (32,)}
HANDSHAKE = "handshake"  # a job of this name makes the stand-in write a line to $FAKE_READY once its events are out
FAKE_TRAINER = """\
#!__PYTHON__
# Stand-in for `python -m vae.train --config JOB --events EVENTS --no-progress --lifeline`: checks that it was started
# like that, in the repository root, with a job file; writes three step events and waits for SIGTERM.
# $FAKE_MODE=fail or crash: it fails at once instead.
import json, os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # taken by sigwait below, never lost in between
args = sys.argv[1:]
if (args[:3] != ["-m", "vae.train", "--config"] or args[4:5] != ["--events"]
        or args[6:] != ["--no-progress", "--lifeline"] or os.getcwd() != "__ROOT__"):
    print(json.dumps({"error": f"The stand-in trainer was started as {args} in {os.getcwd()}."}))
    sys.exit(2)
job = json.load(open(args[3]))
if job.get("format") != "__FORMAT__":
    print(json.dumps({"error": "The stand-in trainer was given no job file."}))
    sys.exit(2)
mode = os.environ.get("FAKE_MODE", "run")
if mode == "fail":
    print(json.dumps({"error": "The loss diverged; try a lower learning rate."}))
    sys.exit(1)
if mode == "crash":
    sys.exit(3)
with open(args[5], "a", buffering=1) as f:
    for step in (1, 2, 3):
        f.write(json.dumps({"kind": "step", "epoch": 1, "epochs": job["train"]["epochs"], "step": step,
                            "steps_per_epoch": 2000, "global_step": step, "loss": 100.0, "recon": 90.0,
                            "kl": 10.0, "samples_per_s": 5000.0, "elapsed_s": step * 0.02, "eta_s": 30.0,
                            "progress": step / 6000}) + "\\n")
    if job["name"] == "__HANDSHAKE__":
        with open(os.environ["FAKE_READY"], "w") as ready:
            ready.write("ready\\n")
    signal.sigwait({signal.SIGTERM})
    f.write(json.dumps({"kind": "error", "message": "Training was cancelled; nothing was saved."}) + "\\n")
sys.exit(130)
"""


@pytest.fixture
def fake_python(tmp_path):
    path = tmp_path / "fake-python"
    script = FAKE_TRAINER
    for token, value in (("__PYTHON__", sys.executable), ("__ROOT__", str(ROOT)), ("__FORMAT__", JOB_FORMAT),
                         ("__HANDSHAKE__", HANDSHAKE)):
        script = script.replace(token, value)
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def ready_fifo(tmp_path, monkeypatch):
    """A FIFO the stand-in writes a line to once the events of a job named HANDSHAKE are in its file."""
    path = tmp_path / "ready.fifo"
    os.mkfifo(path)
    monkeypatch.setenv("FAKE_READY", str(path))
    return path


def read_line(fifo, timeout: float = 60.0) -> str:
    """Block until a process writes into the FIFO (opened without waiting for a writer), at most `timeout` s."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        assert readable, "the stand-in trainer never said it was ready"
        return os.read(fd, 100).decode()
    finally:
        os.close(fd)


@pytest.fixture
def queue_factory(tmp_path, data_root):
    """Queues on one folder, with MNIST and the test's own folder as data roots and room for many trainings."""
    made = []

    def make(**kw):
        kw.setdefault("threads_per_job", 1)
        kw.setdefault("max_per_user", 10)
        kw.setdefault("data_roots", [data_root, tmp_path])
        q = TrainingQueue(tmp_path / "jobs", poll_s=0.05, **kw)
        made.append(q)
        return q

    yield make
    for q in made:
        q.shutdown(timeout=10)


def submit(q, data_root, name="test model", **train):
    return q.submit(MODEL, {"time_budget": 60, **train}, "mnist", data_root, name)


@pytest.mark.parametrize("model, train, match", [
    ({**MODEL, "latent_dim": 0}, {}, "Latent dimension"),
    ({**MODEL, "kind": "gan"}, {}, "Model kind"),
    ({**MODEL, "hidden": (4,)}, {}, "Hidden layer sizes"),
    ({**MODEL, "depth": 3}, {}, "Unknown model config fields: depth"),
    (MODEL, {"lr": 0.0}, "Learning rate"),
    (MODEL, {"batch_size": 0}, "Batch size"),
    (MODEL, {"epochs": 0, "time_budget": None}, "Epochs"),
])
def test_bad_settings_are_rejected_before_launch(queue_factory, data_root, fake_python, model, train, match):
    q = queue_factory(python=fake_python)
    with pytest.raises(ValueError, match=match):
        q.submit(model, {"time_budget": 60, **train}, "mnist", data_root)
    assert q.jobs() == []
    assert [p.name for p in q.jobs_dir.iterdir()] == ["queue.lock"]  # no job file, no events file


def test_missing_data_says_where_to_put_it(queue_factory, tmp_path, fake_python):
    q = queue_factory(python=fake_python)
    with pytest.raises(DataError, match="LATENT_LAB_DATA") as e:
        q.submit(MODEL, {"epochs": 1}, "mnist", tmp_path / "empty")
    assert str(tmp_path / "empty") in str(e.value)
    with pytest.raises(ValueError, match="folder"):
        q.submit(MODEL, {"epochs": 1}, "custom", None)
    with pytest.raises(ValueError, match="Unknown dataset"):
        q.submit(MODEL, {"epochs": 1}, "cifar", None)
    assert q.jobs() == []


def test_the_settings_travel_as_a_job_file(queue_factory, data_root, fake_python):
    q = queue_factory(python=fake_python, threads_per_job=2)
    before = time.time()
    job_id = q.submit({**MODEL, "beta": 2}, {"time_budget": 60, "seed": 3, "threads": 16}, "mnist", data_root,
                      "  my vae  ")
    job = TrainingJob.read(q.jobs_dir / f"{job_id}.json")
    assert job.model == ModelConfig(**{**MODEL, "beta": 2.0})
    # epochs: the server's most (the budget may end it first); threads: the server's; lr None: the network's
    assert job.train == train_config(time_budget=60, seed=3, threads=2, epochs=q.caps["max_epochs"])
    assert (job.dataset, job.data_dir, job.download) == ("mnist", str(data_root.resolve()), False)
    assert (job.job_id, job.name, job.out) == (job_id, "my vae", None)
    s = q.status(job_id)
    assert before <= job.submitted_at == s.submitted_at <= time.time()
    assert (s.name, s.label, s.epochs, s.time_budget) == ("my vae", "VAE · MLP · 2-d", 50, 60)
    assert q.cancel(job_id) and q.wait(job_id).state == "cancelled"  # the stand-in accepted how it was started


def test_queue_places_and_cancel(queue_factory, data_root, fake_python, ready_fifo):
    q = queue_factory(python=fake_python, max_running=1)
    a = submit(q, data_root, name=HANDSHAKE)
    b, c = submit(q, data_root), submit(q, data_root)
    assert [q.status(j).state for j in (a, b, c)] == ["running", "queued", "queued"]
    assert [q.status(j).position for j in (a, b, c)] == [0, 1, 2]

    assert read_line(ready_fifo) == "ready\n"  # its events are written; it waits for SIGTERM
    s = q.status(a)  # events are read while it runs
    assert s.state == "running" and s.epoch == 1 and s.step == 3 and s.steps_per_epoch == 2000
    assert s.progress == 3 / 6000 and s.samples_per_s == 5000 and s.eta_s is not None
    assert s.steps["recon"] == [90.0] * 3 and s.steps["epoch"] == [1 / 2000, 2 / 2000, 3 / 2000]

    assert q.cancel(b)  # a waiting job leaves the line at once
    assert q.status(b).state == "cancelled" and q.status(c).position == 1

    assert q.cancel(a)  # a running one gets SIGTERM and stops between steps
    assert q.status(a).cancelling or q.status(a).state == "cancelled"
    s = q.wait(a, timeout=60)
    assert s.state == "cancelled" and s.error is None and not s.cancelling
    assert q.status(c).state == "running" and q.status(c).position == 0  # the freed slot went to the next in line
    assert q.cancel(c)
    assert q.wait(c, timeout=60).state == "cancelled"
    assert not q.cancel(c)  # finished: nothing to cancel
    assert q.counts()["cancelled"] == 3
    assert not list(default_library_dir().glob("*.safetensors"))


def test_only_its_owner_cancels_a_training(queue_factory, data_root, fake_python):
    q = queue_factory(python=fake_python, max_running=1)
    q.submit(MODEL, {"epochs": 1}, "mnist", data_root, owner="alice")  # running
    waiting = q.submit(MODEL, {"epochs": 1}, "mnist", data_root, owner="alice")
    with pytest.raises(ValueError, match="Only whoever started this training can cancel it"):
        q.cancel(waiting, owner="bob")
    assert q.status(waiting).state == "queued"  # nothing changed
    assert q.cancel(waiting, owner="alice") and q.status(waiting).state == "cancelled"
    for j in q.jobs():
        q.cancel(j.job_id)


def test_two_slots_run_two_jobs(queue_factory, data_root, fake_python):
    q = queue_factory(python=fake_python, max_running=2)
    ids = [submit(q, data_root) for _ in range(3)]
    assert [q.status(j).state for j in ids] == ["running", "running", "queued"]
    for j in ids:
        q.cancel(j)
    assert [q.wait(j, timeout=60).state for j in ids] == ["cancelled"] * 3


@pytest.mark.parametrize("mode, message", [
    ("fail", "The loss diverged; try a lower learning rate."),
    ("crash", "exit code 3"),
])
def test_a_failed_training_is_one_sentence(queue_factory, data_root, fake_python, monkeypatch, mode, message):
    monkeypatch.setenv("FAKE_MODE", mode)
    q = queue_factory(python=fake_python)
    s = q.wait(submit(q, data_root), timeout=60)
    assert s.state == "error" and message in s.error and "\n" not in s.error


def test_limits_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_LAB_MAX_TRAININGS", "3")
    monkeypatch.setenv("LATENT_LAB_TRAIN_THREADS", "2")
    q = TrainingQueue(tmp_path / "jobs")
    assert (q.max_running, q.threads_per_job) == (3, 2)
    monkeypatch.delenv("LATENT_LAB_TRAIN_THREADS")
    assert TrainingQueue(tmp_path / "jobs").threads_per_job >= 1
    monkeypatch.setenv("LATENT_LAB_MAX_TRAININGS", "none")
    with pytest.raises(ValueError, match="LATENT_LAB_MAX_TRAININGS"):
        TrainingQueue(tmp_path / "jobs")


def test_full_queue_is_refused(queue_factory, data_root, fake_python):
    q = queue_factory(python=fake_python, max_running=1, max_queued=1)
    submit(q, data_root)
    submit(q, data_root)
    with pytest.raises(ValueError, match="queue is full"):
        submit(q, data_root)
    assert len(q.jobs()) == 2 and len(list(q.jobs_dir.glob("*.json"))) == 2


def test_old_job_files_are_swept(tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    old, new = time.time() - KEEP_FILES_S - 60, time.time()
    for stem, mtime in (("old", old), ("new", new)):
        for suffix in (".json", ".jsonl", ".out", ".log"):
            (jobs / f"{stem}{suffix}").write_text("{}")
            os.utime(jobs / f"{stem}{suffix}", (mtime, mtime))
    (jobs / "notes.txt").write_text("not ours")
    os.utime(jobs / "notes.txt", (old, old))
    TrainingQueue(jobs)
    assert sorted(p.name for p in jobs.iterdir()) == ["new.json", "new.jsonl", "new.log", "new.out", "notes.txt",
                                                      "queue.lock"]


# ---------------------------------------------------------------- the events file

def _epoch_event(epoch: int) -> dict:
    img = np.zeros((8, 28, 28), np.uint8).tolist()
    return {"kind": "epoch", "epoch": epoch, "epochs": 5, "train": {"loss": 150.0, "recon": 140.0, "kl": 10.0},
            "test": {"nats": 148.0, "recon": 139.0, "kl": 9.0, "kl_per_dim": [4.5, 4.5]}, "elapsed_s": 3.0,
            "eta_s": 12.0, "originals": img, "reconstructions": img}


def test_events_written_are_events_read(tmp_path):
    path = tmp_path / "job.jsonl"
    digits = np.arange(8 * 28 * 28, dtype=np.int64).reshape(8, 28, 28).astype(np.uint8)
    writer = EventWriter(path)
    writer.write(StepEvent(1, 2, 10, 10, 10, 120.0, 110.0, 10.0, 900.0, 1.5, 4.5, 0.5))  # the epoch's last step
    writer.write(EpochEvent(1, 2, {"loss": 118.0, "recon": 108.0, "kl": 10.0},
                            {"nats": 115.0, "recon": 106.0, "kl": 9.0, "kl_per_dim": [9.0]}, 3.0, 3.0,
                            digits, 255 - digits))
    writer.write(DoneEvent("time_budget", 1, 3.1, {"epoch": [1]}))
    writer.saved("/models/m.safetensors", {"test_nats": 115.0})
    writer.close()
    log = EventLog(path)
    p = log.read(final=True)
    assert log.bad_lines == 0
    assert (p.epoch, p.epochs, p.step, p.steps_per_epoch, p.progress, p.samples_per_s) == (1, 2, 10, 10, 1.0, 900.0)
    assert p.steps == {"epoch": [1.0], "recon": [110.0], "kl": [10.0]}
    assert p.history["test_nats"] == [115.0] and p.history["x"] == [1.0]  # the epoch ran to its end
    assert np.array_equal(p.originals, digits) and np.array_equal(p.reconstructions, 255 - digits)
    assert p.stop_reason == "time_budget" and p.elapsed_s == 3.1 and p.eta_s == 0.0
    assert p.checkpoint == "/models/m.safetensors" and p.metrics == {"test_nats": 115.0} and p.error is None
    EventWriter(None).write(DoneEvent("completed", 1, 1.0, {}))  # no path: nothing written, nothing raised


def test_events_file_with_a_torn_last_line(tmp_path):
    path = tmp_path / "job.jsonl"
    step = {"kind": "step", "epoch": 1, "epochs": 5, "step": 10, "steps_per_epoch": 468, "global_step": 10,
            "loss": 200.0, "recon": 190.0, "kl": 10.0, "samples_per_s": 3000.0, "elapsed_s": 0.5,
            "eta_s": float("nan"), "progress": 0.004}
    whole = json.dumps(_epoch_event(1))
    path.write_text(json.dumps(step) + "\n" + whole[:100])  # the writer is mid-line
    log = EventLog(path)
    p = log.read()
    assert p.step == 10 and p.eta_s is None and p.history["epoch"] == [] and log.bad_lines == 0
    with open(path, "a") as f:
        f.write(whole[100:] + "\n")
    p = log.read()
    assert p.history["epoch"] == [1] and p.history["test_nats"] == [148.0]
    assert p.history["x"] == [10 / 468]  # the epoch was cut short after step 10: its dot goes there
    assert p.reconstructions.shape == (8, 28, 28) and p.reconstructions.dtype == np.uint8
    with open(path, "a") as f:  # a writer killed mid-line: dropped once it has exited
        f.write('{"kind": "saved", "checkpoi')
    p = log.read(final=True)
    assert p.checkpoint is None and log.bad_lines == 1
    with open(path, "a") as f:
        f.write("\n" + json.dumps({"kind": "error", "message": "Training was cancelled."}) + "\n")
    assert log.read().error == "Training was cancelled."


def test_events_reader_thins_long_curves(tmp_path):
    path = tmp_path / "job.jsonl"
    lines = [json.dumps({"kind": "step", "epoch": 1, "epochs": 1, "step": i, "steps_per_epoch": 5000,
                         "global_step": i, "loss": 1.0, "recon": 1.0, "kl": 0.0, "samples_per_s": 1.0,
                         "elapsed_s": i, "eta_s": 1.0, "progress": i / 5000}) for i in range(1, 3001)]
    path.write_text("\n".join(lines) + "\n")
    p = EventLog(path).read()
    xs = p.steps["epoch"]
    assert len(xs) <= 600 and xs == sorted(xs) and xs[-1] == 3000 / 5000


@pytest.mark.slow
def test_a_short_real_training_lands_in_the_library(queue_factory, data_root):
    q = queue_factory(max_running=1)
    job = q.submit({"kind": "ae", "arch": "mlp", "latent_dim": 2, "hidden": (64,)},
                   {"time_budget": 2, "batch_size": 256}, "mnist", data_root, "  two-second AE  ", owner="alice")
    s = q.wait(job, timeout=240)
    assert s.state == "done", s.error
    assert s.progress == 1.0 and s.history["epoch"] and s.reconstructions.shape == (8, 28, 28)
    assert os.path.dirname(s.checkpoint) == str(default_library_dir())
    entry = ModelLibrary(default_library_dir()).get(s.entry_id)
    assert entry.name == "two-second AE" and entry.config.kind == "ae" and entry.owner == s.owner == "alice"
    assert {"test_nats", "knn_acc", "active_units"} <= set(s.metrics)
    # what the trainer ran is what the job file said (the learning rate filled in with the network's default)
    spec = TrainingJob.read(q.jobs_dir / f"{job}.json")
    assert {k: entry.meta["train"][k] for k in ("epochs", "batch_size", "time_budget", "threads", "seed")} == \
        {"epochs": spec.train.epochs, "batch_size": 256, "time_budget": 2, "threads": 1, "seed": 0}


def test_a_folder_without_file_locks_is_one_sentence(tmp_path, monkeypatch):
    """NFS mounted without locks: flock fails with ENOLCK. That is not 'another queue holds it' (then no queue
    would ever run the trainings) but one sentence where the queue is made, for a runner and a viewer alike."""
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    for runner in (True, False):
        with pytest.raises(OSError) as e:
            TrainingQueue(tmp_path / "jobs", runner=runner)
        assert str(e.value).startswith(f"The jobs folder {(tmp_path / 'jobs').resolve()} takes no file locks (")
        assert "mount it with locking" in str(e.value) and "\n" not in str(e.value)
