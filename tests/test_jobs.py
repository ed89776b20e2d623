"""The training queue: validation before launch, queue places, cancel, errors, the events reader.

Most tests run a stand-in trainer (a tiny script that writes the same JSON-lines events as
`python -m vae.train` and obeys SIGTERM), so they check the queue in well under a second;
one `slow` test runs the real trainer for two seconds and finds the checkpoint in the library.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time

import numpy as np
import pytest

from vae.checkpoint import ModelLibrary, default_library_dir
from vae.data import DataError
from vae.jobs import EventLog, TrainingQueue, parse_hidden

MODEL = {"kind": "vae", "arch": "mlp", "latent_dim": 2, "hidden": (32,)}
FAKE_TRAINER = """\
#!{python}
# Stand-in for `python -m vae.train`: writes step events until SIGTERM, or fails, per $FAKE_MODE.
import json, os, signal, sys, time
args = sys.argv[1:]
events = args[args.index("--events") + 1]
mode = os.environ.get("FAKE_MODE", "run")
if mode == "fail":
    print(json.dumps({{"error": "The loss diverged; try a lower learning rate."}}))
    sys.exit(1)
if mode == "crash":
    sys.exit(3)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
with open(events, "a", buffering=1) as f:
    for step in range(1, 2000):
        if stop:
            f.write(json.dumps({{"kind": "error", "message": "Training was cancelled; nothing was saved."}}) + "\\n")
            sys.exit(130)
        f.write(json.dumps({{"kind": "step", "epoch": 1, "epochs": 3, "step": step, "steps_per_epoch": 2000,
                            "global_step": step, "loss": 100.0, "recon": 90.0, "kl": 10.0,
                            "samples_per_s": 5000.0, "elapsed_s": step * 0.02, "eta_s": 30.0,
                            "progress": step / 6000}}) + "\\n")
        time.sleep(0.02)
"""


@pytest.fixture
def fake_python(tmp_path):
    path = tmp_path / "fake-python"
    path.write_text(FAKE_TRAINER.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def queue_factory(tmp_path, data_root):
    made = []

    def make(**kw):
        kw.setdefault("threads_per_job", 1)
        q = TrainingQueue(tmp_path / "jobs", poll_s=0.05, **kw)
        made.append(q)
        return q

    yield make
    for q in made:
        q.shutdown(timeout=10)


def submit(q, data_root, **train):
    return q.submit(MODEL, {"time_budget": 60, **train}, "mnist", data_root, "test model")


def wait_for(predicate, timeout=30.0):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_parse_hidden():
    assert parse_hidden("512, 256") == (512, 256)
    assert parse_hidden("64") == (64,)
    for bad in ("", "abc", "512,,x"):
        with pytest.raises(ValueError, match="hidden|Hidden"):
            parse_hidden(bad)


@pytest.mark.parametrize("model, train, match", [
    ({**MODEL, "latent_dim": 0}, {}, "Latent dimension"),
    ({**MODEL, "kind": "gan"}, {}, "Model kind"),
    ({**MODEL, "hidden": (4,)}, {}, "Hidden layer sizes"),
    (MODEL, {"lr": 0.0}, "Learning rate"),
    (MODEL, {"batch_size": 0}, "Batch size"),
    (MODEL, {"epochs": 0, "time_budget": None}, "Epochs"),
])
def test_bad_settings_are_rejected_before_launch(queue_factory, data_root, fake_python, model, train, match):
    q = queue_factory(python=fake_python)
    with pytest.raises(ValueError, match=match):
        q.submit(model, {"time_budget": 60, **train}, "mnist", data_root)
    assert q.jobs() == []
    assert not list(q.jobs_dir.glob("*.jsonl"))


def test_missing_data_says_where_to_put_it(queue_factory, tmp_path, fake_python):
    q = queue_factory(python=fake_python)
    with pytest.raises(DataError, match="LATENT_LAB_DATA") as e:
        q.submit(MODEL, {"epochs": 1}, "mnist", tmp_path / "empty")
    assert str(tmp_path / "empty") in str(e.value)
    with pytest.raises(ValueError, match="folder"):
        q.submit(MODEL, {"epochs": 1}, "custom", None)
    assert q.jobs() == []


def test_queue_places_and_cancel(queue_factory, data_root, fake_python):
    q = queue_factory(python=fake_python, max_running=1)
    a, b, c = (submit(q, data_root) for _ in range(3))
    assert [q.status(j).state for j in (a, b, c)] == ["running", "queued", "queued"]
    assert [q.status(j).position for j in (a, b, c)] == [0, 1, 2]

    wait_for(lambda: q.status(a).step > 0)  # events flow while it runs
    s = q.status(a)
    assert s.epoch == 1 and s.steps_per_epoch == 2000 and 0 < s.progress < 1 and s.samples_per_s == 5000
    assert s.steps["recon"] and s.steps["recon"][-1] == 90.0

    assert q.cancel(b)  # a waiting job leaves the line at once
    assert q.status(b).state == "cancelled" and q.status(c).position == 1

    assert q.cancel(a)  # a running one gets SIGTERM and stops between steps
    assert q.status(a).cancelling or q.status(a).state == "cancelled"
    wait_for(lambda: q.status(a).state == "cancelled")
    assert q.status(a).error is None
    wait_for(lambda: q.status(c).state == "running")  # the freed slot goes to the next in line
    assert q.status(c).position == 0
    assert q.cancel(c)
    wait_for(lambda: q.status(c).finished)
    assert not q.cancel(c)  # finished: nothing to cancel
    assert q.counts()["cancelled"] == 3
    assert not list(default_library_dir().glob("*.safetensors"))


def test_two_slots_run_two_jobs(queue_factory, data_root, fake_python):
    q = queue_factory(python=fake_python, max_running=2)
    ids = [submit(q, data_root) for _ in range(3)]
    assert [q.status(j).state for j in ids] == ["running", "running", "queued"]
    for j in ids:
        q.cancel(j)


@pytest.mark.parametrize("mode, message", [
    ("fail", "The loss diverged; try a lower learning rate."),
    ("crash", "exit code 3"),
])
def test_a_failed_training_is_one_sentence(queue_factory, data_root, fake_python, monkeypatch, mode, message):
    monkeypatch.setenv("FAKE_MODE", mode)
    q = queue_factory(python=fake_python)
    job = submit(q, data_root)
    wait_for(lambda: q.status(job).finished)
    s = q.status(job)
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


def _epoch_event(epoch: int) -> dict:
    img = np.zeros((8, 28, 28), np.uint8).tolist()
    return {"kind": "epoch", "epoch": epoch, "epochs": 5, "train": {"loss": 150.0, "recon": 140.0, "kl": 10.0},
            "test": {"nats": 148.0, "recon": 139.0, "kl": 9.0, "kl_per_dim": [4.5, 4.5]}, "elapsed_s": 3.0,
            "eta_s": 12.0, "originals": img, "reconstructions": img}


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
                   {"time_budget": 2, "batch_size": 256}, "mnist", data_root, "  two-second AE  ")
    s = q.wait(job, timeout=240)
    assert s.state == "done", s.error
    assert s.progress == 1.0 and s.history["epoch"] and s.reconstructions.shape == (8, 28, 28)
    assert os.path.dirname(s.checkpoint) == str(default_library_dir())
    entry = ModelLibrary(default_library_dir()).get(s.entry_id)
    assert entry.name == "two-second AE" and entry.config.kind == "ae"
    assert {"test_nats", "knn_acc", "active_units"} <= set(s.metrics)
