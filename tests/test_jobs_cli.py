"""`python -m vae.jobs submit|list|cancel` against the embedded queue: with no server running (the command
trains it itself with --wait; without, the job waits in the folder and a cancel takes it out in place), and
with a server running the folder (the command hands its submit and cancel to it). Most runs call the
command's `main` in this process (the same code, without a second torch import); one runs it as
`python -m vae.jobs`. The server's trainers are the stand-ins of tests/test_jobs.py; the --wait test trains
for real for two seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from tests.test_jobs import HANDSHAKE, fake_python, read_line, ready_fifo  # noqa: F401
from vae.checkpoint import ModelLibrary, default_library_dir
from vae.jobs import RayQueue, TrainingQueue, cli, default_jobs_dir
from vae.jobs.cli import main
from vae.paths import ROOT
from vae.train.job import TrainingJob

TINY = ["--model", "ae", "--latent-dim", "2", "--hidden", "32"]


@pytest.fixture
def cli_env(data_root, monkeypatch):
    """The embedded queue in this test's cache folder, trainings of one thread from the shared MNIST."""
    monkeypatch.delenv("LATENT_LAB_RAY_ADDRESS", raising=False)
    monkeypatch.setenv("LATENT_LAB_DATA", str(data_root))
    monkeypatch.setenv("LATENT_LAB_TRAIN_THREADS", "1")
    monkeypatch.setenv("LATENT_LAB_MAX_PER_USER", "1")  # the operator's trainings are not counted by it


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def listed(capsys, *argv: str) -> dict[str, str]:
    """`list`: job id -> its line."""
    code, lines, _ = run(capsys, "list", *argv)
    assert code == 0
    return {line.split()[0]: line for line in lines}


@pytest.mark.slow
def test_submit_wait_trains_here_when_no_server_runs(cli_env, capsys):
    code, out, err = run(capsys, "submit", *TINY, "--time-budget", "2", "--name", "  class\u202e AE ", "--wait")
    assert code == 0, err
    job_id, result = out[0], json.loads(out[-1])
    assert "no server runs the trainings here, so this command trains it" in err
    assert (result["id"], result["state"], result["name"]) == (job_id, "done", "class AE")
    assert os.path.dirname(result["checkpoint"]) == str(default_library_dir())
    entry = ModelLibrary(default_library_dir()).get(os.path.basename(result["checkpoint"]).rsplit(".", 1)[0])
    assert entry.name == "class AE" and entry.owner is None  # the operator's: the teacher manages it
    assert {"test_nats", "recon_nats", "knn_acc"} <= set(result["metrics"])
    line = listed(capsys)[job_id]
    assert line.split()[1] == "done" and "100%" in line and "operator" in line and line.endswith("class AE")
    assert not TrainingQueue(default_jobs_dir(), runner=False).has_runner  # it let go of the folder when done


def test_without_a_server_a_job_waits_in_the_folder_and_cancels_in_place(cli_env, capsys):
    first, second = (run(capsys, "submit", *TINY, "--epochs", "1", "--name", n) for n in ("first", "second"))
    assert first[0] == second[0] == 0  # the operator may queue more than LATENT_LAB_MAX_PER_USER
    assert "no server runs the trainings in" in first[2] and "it starts when one does" in first[2]
    a, b = first[1][0], second[1][0]
    lines = listed(capsys)
    assert [lines[a].split()[1:5], lines[b].split()[1:5]] == [["queued", "waiting,", "number", "1"],
                                                               ["queued", "waiting,", "number", "2"]]
    assert TrainingJob.read(default_jobs_dir() / f"{a}.json").train.epochs == 1
    code, _, err = run(capsys, "cancel", b)
    assert code == 0 and "Cancelling “second”" in err
    assert listed(capsys)[b].split()[1] == "cancelled" and listed(capsys)[a].split()[1] == "queued"
    code, _, err = run(capsys, "cancel", b)
    assert code == 0 and "had already ended (cancelled)" in err
    assert run(capsys, "cancel", "nosuchjob")[0] == 1
    assert listed(capsys, "--owner", "someone") == {}
    q = TrainingQueue(default_jobs_dir(), runner=False)
    assert not q.has_runner  # none of the commands took the folder: nothing was started
    assert [(s.job_id, s.state) for s in q.jobs()] == [(a, "queued"), (b, "cancelled")]


def test_with_a_server_the_command_hands_over(cli_env, capsys, fake_python, ready_fifo):
    server = TrainingQueue(default_jobs_dir(), python=fake_python, poll_s=0.05, max_running=1)
    try:
        code, out, err = run(capsys, "submit", *TINY, "--time-budget", "60", "--name", HANDSHAKE,
                             "--owner", "alice")
        assert code == 0 and "the server that runs the trainings in" in err
        job_id = out[0]
        assert read_line(ready_fifo) == "ready\n"  # the server took it up and started its trainer
        s = server.status(job_id)
        assert (s.state, s.owner, s.step) == ("running", "alice", 3)
        assert listed(capsys)[job_id].split()[1] == "running"
        assert run(capsys, "cancel", job_id)[0] == 0
        assert server.wait(job_id, timeout=60).state == "cancelled"
        assert listed(capsys)[job_id].split()[1] == "cancelled"
    finally:
        server.shutdown(timeout=10)


def test_bad_input_is_one_sentence(cli_env, capsys):
    code, out, err = run(capsys, "submit", *TINY, "--out", "x.safetensors", "--threads", "4")
    assert code == 2 and out == []
    assert err.strip() == ("error: --out, --threads cannot go with a queued training: its model goes into the "
                           "library, and the server sets threads and device.")
    code, _, err = run(capsys, "submit", *TINY, "--latent-dim", "0")
    assert code == 2 and err.splitlines() == [f"Trainings in {default_jobs_dir().resolve()}.",  # which folder
                                              "error: Latent dimension must be between 1 and 128, not 0."]
    code, _, err = run(capsys, "submit", *TINY, "--epochs", "500")
    assert code == 2 and "at most 50 epochs (LATENT_LAB_MAX_EPOCHS)" in err and len(err.splitlines()) == 2
    assert listed(capsys) == {}
    with pytest.raises(SystemExit) as e:
        main(["submit", "--help"])
    assert e.value.code == 0
    help_text = capsys.readouterr().out
    assert "--latent-dim" in help_text and "--wait" in help_text and "--owner" in help_text
    assert "--lifeline" not in help_text and "--out" not in help_text


def test_the_command_runs_as_a_module(cli_env, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "vae.jobs", "submit", *TINY, "--epochs", "1", "--name", "m"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    shown = subprocess.run([sys.executable, "-m", "vae.jobs", "list"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    assert shown.returncode == 0 and shown.stdout.split()[:2] == [job_id, "queued"]


def test_wait_exits_1_when_the_training_fails(cli_env, capsys, fake_python, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "fail")  # the server's stand-in trainer fails at once
    server = TrainingQueue(default_jobs_dir(), python=fake_python, poll_s=0.05, max_running=1)
    try:
        code, out, err = run(capsys, "submit", *TINY, "--time-budget", "60", "--name", "m", "--wait")
        assert code == 1, err
        result = json.loads(out[-1])
        assert (result["id"], result["state"]) == (out[0], "error")
        assert result["error"] == "The loss diverged; try a lower learning rate."
    finally:
        server.shutdown(timeout=10)


def test_wait_exits_130_when_the_training_is_cancelled(cli_env, capsys, fake_python, ready_fifo):
    server = TrainingQueue(default_jobs_dir(), python=fake_python, poll_s=0.05, max_running=1)
    codes = []
    waiting = threading.Thread(target=lambda: codes.append(main(["submit", *TINY, "--time-budget", "60", "--name",
                                                                 HANDSHAKE, "--wait"])))
    try:
        waiting.start()
        assert read_line(ready_fifo) == "ready\n"  # the server runs it; the command waits for it
        [job] = server.jobs()
        assert server.cancel(job.job_id)
        waiting.join(60)
        assert codes == [130]
        out = capsys.readouterr().out.splitlines()
        assert json.loads(out[-1])["state"] == "cancelled"
    finally:
        server.shutdown(timeout=10)
        waiting.join(60)


def test_wait_gives_up_on_a_cluster_that_stopped_answering(tmp_path, monkeypatch, capsys):
    """`submit --wait` on Ray while the cluster does not answer: the last status it said stays `queued`
    forever, so the command stops waiting (after GIVE_UP_S) with a sentence and exit code 1."""
    monkeypatch.setattr(cli, "GIVE_UP_S", 0.0)
    q = RayQueue("http://127.0.0.1:1", tmp_path / "jobs", timeout_s=1)  # nothing listens there (or no Ray)
    looks = []

    def status(job_id):  # what a queue says from the cluster's last answer
        looks.append(job_id)
        assert len(looks) < 50, "the command never gave up"
        return SimpleNamespace(state="queued", position=1, progress=0.0, finished=False, epoch=0)

    monkeypatch.setattr(q, "status", status)
    assert cli._wait(q, "0123456789ab") == 1
    err = capsys.readouterr().err
    assert "error: Stopped waiting: the Ray cluster at http://127.0.0.1:1 has not answered for 0 s" in err


def test_an_unusable_jobs_folder_is_one_sentence(cli_env, capsys, tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache should be")
    monkeypatch.setenv("LATENT_LAB_CACHE", str(blocked))
    for argv in (["submit", *TINY, "--epochs", "1"], ["list"], ["cancel", "0123456789ab"]):
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == [] and err.startswith("error: The jobs folder cannot be used ("), argv
        assert "\n" not in err.strip(), argv
