"""The command line: `python -m vae.train` and `python -m vae.evaluate` end with exactly one JSON line
on stdout; every user error is exit code 2, one line on stderr and {"error": ...}, never a traceback.
The flags and a JSON job file (--config) build the same job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vae.checkpoint import ModelLibrary, load_checkpoint
from vae.config import ModelConfig, parse_hidden
from vae.evaluate import main as evaluate_main
from vae.events import INTERRUPTED, EventLog
from vae.paths import ROOT
from vae.train import train_config
from vae.train.cli import main as train_main
from vae.train.cli import read_command_line
from vae.train.job import JOB_FORMAT, JOB_VERSION, TrainingJob

METRICS = ("test_nats", "recon_nats", "kl_nats", "active_units", "train_seconds", "epochs", "checkpoint")
TINY = ["--model", "vae", "--arch", "mlp", "--latent-dim", "2", "--hidden", "64", "--threads", "1"]


def run(module: str, *args, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENT_LAB_HOME": str(home), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def one_json_line(p: subprocess.CompletedProcess) -> dict:
    lines = p.stdout.splitlines()
    assert len(lines) == 1, p.stdout + p.stderr
    return json.loads(lines[0])


def assert_user_error(p: subprocess.CompletedProcess, *words: str) -> None:
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    err = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), p.stderr
    msg = one_json_line(p)["error"]
    assert msg and "\n" not in msg and msg in err[0]
    for w in words:
        assert w in msg, msg


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    """One real CLI run, shared by the tests below: a 3-second budget on the full MNIST."""
    tmp = tmp_path_factory.mktemp("cli")
    out = tmp / "cli.safetensors"
    p = run("vae.train", *TINY, "--epochs", 1, "--time-budget", 3, "--data-dir", data_root, "--dataset", "mnist",
            "--out", out, "--name", "from the CLI", home=tmp / "home")
    return p, out, tmp


@pytest.mark.slow
def test_train_prints_one_json_line(trained):
    p, out, _ = trained
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    result = one_json_line(p)
    for k in METRICS:
        assert k in result, k
    assert result["checkpoint"] == str(out)
    assert result["epochs"] in (0, 1) and 0 < result["train_seconds"] < 60
    assert 0 < result["test_nats"] < 550  # it learned something in 3 s (a random decoder is ~540)
    assert abs(result["test_nats"] - result["recon_nats"] - result["kl_nats"]) < 0.01
    assert 0 <= result["active_units"] <= 2


@pytest.mark.slow
def test_trained_checkpoint_loads(trained):
    p, out, _ = trained
    model, meta = load_checkpoint(out)
    assert model.config.latent_dim == 2 and model.config.hidden == (64,)
    assert meta["name"] == "from the CLI" and meta["dataset"] == "mnist"
    assert meta["metrics"]["test_nats"] == one_json_line(p)["test_nats"]
    assert meta["history"]["test_nats"]
    # no --lr: the measured default for a one-hidden-layer MLP, recorded as the rate that was used
    assert meta["train"]["lr"] == 8e-3 and meta["train"]["batch_size"] == 256 and meta["train"]["init_output_bias"]


@pytest.mark.slow
def test_evaluate_prints_one_json_line(trained, data_root):
    _, out, tmp = trained
    p = run("vae.evaluate", out, "--data-dir", data_root, home=tmp / "home")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    result = one_json_line(p)
    for k in ("test_nats", "recon_nats", "kl_nats", "kl_per_dim", "active_units", "knn_acc"):
        assert k in result, k
    assert result["test_nats"] == load_checkpoint(out)[1]["metrics"]["test_nats"]  # same seed, same numbers
    assert 0.1 <= result["knn_acc"] <= 1.0


@pytest.fixture(scope="module")
def user_errors(tmp_path_factory, data_root):
    """The user errors that need a real process (exit code, clean stderr), run side by side."""
    tmp = tmp_path_factory.mktemp("cli-errors")
    bad = tmp / "bad.safetensors"
    bad.write_bytes(b"\x80\x04not really a pickle")
    cases = {
        "nowhere": ("vae.train", *TINY, "--epochs", 1, "--data-dir", tmp / "nowhere", "--no-download"),
        "latent-0": ("vae.train", *TINY, "--latent-dim", 0, "--epochs", 1, "--data-dir", data_root),
        "bad-checkpoint": ("vae.evaluate", bad, "--data-dir", data_root),
    }
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = {k: pool.submit(run, *args, home=tmp / "home") for k, args in cases.items()}
        return {k: f.result() for k, f in futures.items()} | {"tmp": tmp}


def test_train_bad_data_dir(user_errors):
    assert_user_error(user_errors["nowhere"], str(user_errors["tmp"] / "nowhere"))


def test_train_latent_dim_0(user_errors):
    assert_user_error(user_errors["latent-0"], "Latent dimension")
    assert not (user_errors["tmp"] / "home").exists()  # nothing saved


def test_evaluate_bad_checkpoint(user_errors):
    assert_user_error(user_errors["bad-checkpoint"], "pickle")


def in_process(main, argv, capsys) -> subprocess.CompletedProcess:
    """The same checks without starting Python again: main() returns before training starts."""
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out.out, out.err)


def test_train_broken_data(tmp_path, capsys):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"\x00\x00\x08\x03\x00")  # cut inside the header
    p = in_process(train_main, [*TINY, "--epochs", 1, "--data-dir", tmp_path / "data"], capsys)
    assert_user_error(p, str(raw))


@pytest.mark.parametrize("args,word", [
    (["--latent-dim", "129"], "Latent dimension"),
    (["--hidden", "abc"], "Hidden sizes"),
    (["--beta", "-1"], "Beta"),
    (["--epochs", "0"], "Epochs"),
    (["--lr", "5"], "Learning rate"),
    (["--seed", "-1"], "Seed"),
    (["--device", "tpu"], "Device"),
    (["--out", "/no/such/folder/m.safetensors"], "--out"),
], ids=["latent-129", "hidden", "beta", "epochs", "lr", "seed", "device", "out"])
def test_train_bad_settings(tmp_path, data_root, capsys, args, word):
    p = in_process(train_main, [*TINY, "--epochs", 1, "--data-dir", data_root, *args], capsys)
    assert_user_error(p, word)
    assert not (tmp_path / "home").exists()  # nothing saved


def test_hidden_sizes_parse_with_the_one_parser():
    assert read_command_line(["--hidden", " 512, 256 "])[0].model.hidden == (512, 256)
    assert parse_hidden("64") == (64,) and parse_hidden("512;256") == (512, 256)
    for bad in ("", "abc", "512,,x"):
        with pytest.raises(ValueError, match="hidden|Hidden"):
            parse_hidden(bad)


def test_evaluate_missing_checkpoint(tmp_path, capsys):
    p = in_process(evaluate_main, [tmp_path / "missing.safetensors"], capsys)
    assert_user_error(p, "No checkpoint")


def test_train_events_file_that_cannot_be_opened(tmp_path, data_root, capsys):
    handler = signal.getsignal(signal.SIGTERM)
    try:
        p = in_process(train_main, [*TINY, "--epochs", 1, "--data-dir", data_root,
                                    "--events", tmp_path / "no" / "such" / "events.jsonl"], capsys)
    finally:
        signal.signal(signal.SIGTERM, handler)  # main() installs its own
    assert_user_error(p, "--events")


# ------------------------------------------------------------------ the job file (--config)

def test_flags_and_job_file_build_the_same_job(tmp_path):
    job, _ = read_command_line([*TINY, "--beta", "2", "--input-noise", "0.1", "--time-budget", "30", "--lr", "0.01",
                                "--no-bias-init", "--seed", "7", "--dataset", "fashion", "--data-dir", str(tmp_path),
                                "--no-download", "--name", "flags", "--out", str(tmp_path / "m.safetensors"),
                                "--half"])
    assert job.model == ModelConfig(kind="vae", arch="mlp", latent_dim=2, hidden=(64,), beta=2.0, input_noise=0.1)
    assert job.train == train_config(time_budget=30.0, lr=0.01, init_output_bias=False, seed=7, threads=1)
    assert (job.dataset, job.data_dir, job.download, job.name, job.half) == ("fashion", str(tmp_path), False,
                                                                           "flags", True)
    job.write(tmp_path / "job.json")
    from_file, args = read_command_line(["--config", str(tmp_path / "job.json"), "--events", "e.jsonl",
                                         "--no-progress"])
    assert from_file == job and args.events == "e.jsonl" and args.no_progress


def test_job_file_says_what_it_is(tmp_path):
    job = TrainingJob(ModelConfig(latent_dim=2), train_config(epochs=3), job_id="ab12", submitted_at=1.7e9)
    job.write(tmp_path / "job.json")
    d = json.loads((tmp_path / "job.json").read_text())
    assert (d["format"], d["version"], d["job_id"], d["submitted_at"]) == (JOB_FORMAT, JOB_VERSION, "ab12", 1.7e9)
    assert d["model"]["hidden"] == [512, 256] and d["train"]["epochs"] == 3 and d["train"]["lr"] is None
    assert TrainingJob.read(tmp_path / "job.json") == job
    assert not [p for p in tmp_path.iterdir() if p.name != "job.json"]  # no temp file left beside it
    owned = TrainingJob(ModelConfig(latent_dim=2), train_config(epochs=3), owner="alice-hash")
    assert TrainingJob.from_dict(owned.to_dict()) == owned and owned.to_dict()["owner"] == "alice-hash"
    older = {k: v for k, v in d.items() if k != "owner"}  # a job file written before owners were recorded
    assert TrainingJob.from_dict(older).owner is None


GOOD_JOB = TrainingJob(ModelConfig(latent_dim=2, hidden=(64,)), train_config(epochs=1)).to_dict()


@pytest.mark.parametrize("content, words", [
    (None, ["Could not read the job file"]),
    ("{not json", ["is not valid JSON", "line 1"]),
    (b"\xff\xfe", ["is not JSON text"]),
    ([1, 2], ["Not a Latent Lab training job"]),
    ({**GOOD_JOB, "format": "something-else"}, ["Not a Latent Lab training job"]),
    ({**GOOD_JOB, "version": 99}, ["version 99", "reads version 1"]),
    ({**GOOD_JOB, "colour": "blue"}, ["Unknown training job fields: colour"]),
    ({**GOOD_JOB, "model": {**GOOD_JOB["model"], "latent_dim": 0}}, ["Latent dimension"]),
    ({**GOOD_JOB, "train": {**GOOD_JOB["train"], "epochs": 0}}, ["Epochs"]),
    ({**GOOD_JOB, "train": {**GOOD_JOB["train"], "speed": 9}}, ["Unknown training settings: speed"]),
    ({**GOOD_JOB, "dataset": "cifar"}, ["Unknown dataset"]),
    ({**GOOD_JOB, "half": "yes"}, ["half"]),
    ({**GOOD_JOB, "owner": 3}, ["owner"]),
], ids=["missing", "not-json", "not-text", "a-list", "format", "version", "unknown-field", "latent-0", "epochs-0",
        "unknown-setting", "dataset", "half", "owner"])
def test_bad_job_file_is_one_sentence(tmp_path, capsys, content, words):
    path = tmp_path / "job.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    p = in_process(train_main, ["--config", path], capsys)
    assert_user_error(p, *words)
    assert str(path) in one_json_line(p)["error"]


def test_job_file_goes_with_no_settings_flags(tmp_path, capsys):
    TrainingJob.from_dict(GOOD_JOB).write(tmp_path / "job.json")
    p = in_process(train_main, ["--config", tmp_path / "job.json", "--epochs", 3, "--name", "x"], capsys)
    assert_user_error(p, "--config", "--epochs", "--name")


# ------------------------------------------------------------------ a job of the server's queue

def server_job(tmp_path, data_root, **kw) -> Path:
    job = TrainingJob(ModelConfig(latent_dim=2, hidden=(64,)), train_config(threads=1, **kw), data_dir=str(data_root),
                      download=False, name="VAE 2-d (bundled)", owner="alice-hash", job_id="j1", submitted_at=1.0)
    job.write(tmp_path / "job.json")
    return tmp_path / "job.json"


@pytest.mark.slow
def test_a_job_saves_its_owner_and_keeps_bundled_names_free(tmp_path, data_root):
    before = time.time()
    p = run("vae.train", "--config", server_job(tmp_path, data_root, epochs=1, time_budget=1), "--no-progress",
            home=tmp_path / "home")
    assert p.returncode == 0, p.stderr
    entry = ModelLibrary(tmp_path / "home" / "models").get(Path(one_json_line(p)["checkpoint"]).stem)
    assert entry.owner == "alice-hash" and before <= entry.created <= time.time()
    assert entry.name == "VAE 2-d (bundled) (2)"  # the bundled model's name stays the bundled model's


@pytest.mark.slow
def test_a_training_stops_when_its_server_is_gone(tmp_path, data_root):
    """--lifeline: stdin is a pipe whose write end only the server holds; its end stops the training."""
    events = tmp_path / "job.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENT_LAB_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "vae.train", "--config", server_job(tmp_path, data_root, epochs=5),
                             "--events", events, "--no-progress", "--lifeline"], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)  # sends nothing, then closes stdin: as a server that is gone
    assert proc.returncode == 130, err
    assert json.loads(out.strip().splitlines()[-1]) == {"error": INTERRUPTED}
    assert EventLog(events).read(final=True).error == INTERRUPTED
    assert not list((tmp_path / "home").rglob("*.safetensors"))  # nothing was saved
