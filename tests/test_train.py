"""Training: the loss falls, seeds reproduce, cancel and time budgets stop between steps,
divergence raises TrainingError and saves nothing; the evaluation metrics."""

from __future__ import annotations

import json
import math
import signal
import threading
from dataclasses import asdict

import numpy as np
import pytest
import torch

import vae.evaluate as evaluation  # not `from ... import test_losses`: pytest would collect it as a test
import vae.train.cli as train_cli
from vae.config import ModelConfig
from vae.data import DataError, Dataset
from vae.evaluate import active_units, evaluate, knn_accuracy
from vae.events import DoneEvent, EpochEvent, StepEvent, event_to_dict
from vae.models import AutoEncoder, LossOutput, build_model
from vae.train import (
    TrainConfig, TrainingError, default_lr, init_output_bias, iter_train, train, train_config,
)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny(kind="vae", arch="mlp", latent_dim=4, **kw) -> ModelConfig:
    return ModelConfig(kind=kind, arch=arch, latent_dim=latent_dim, hidden=(64,), **kw)


def cfg(**kw) -> TrainConfig:
    kw = {"epochs": 1, "batch_size": 100, "lr": 3e-3, "warmup_steps": 5, "eval_batch": 500, **kw}
    return TrainConfig(**kw)


@pytest.fixture
def small(mnist_small) -> Dataset:
    """500 training digits, 200 test digits: a few steps per epoch."""
    d = mnist_small
    return Dataset("mnist", d.x_train[:500], d.y_train[:500], d.x_test[:200], d.y_test[:200])


@pytest.mark.slow
def test_loss_falls(mnist_small):
    model = build_model(tiny(), seed=0)
    before = evaluation.test_losses(model, mnist_small.x_test)["nats"]
    done = train(model, mnist_small, cfg(epochs=3))
    h = done.history
    assert done.reason == "completed" and done.epochs == 3
    assert h["epoch"] == [1, 2, 3]
    assert all(len(v) == 3 for v in h.values())
    assert h["test_nats"][-1] < h["test_nats"][0] < before
    assert h["test_nats"][-1] < 0.6 * before  # from ~540 nats (random) to well below
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert np.isclose(h["test_nats"][-1], h["test_recon"][-1] + h["test_kl"][-1])
    assert not model.training  # handed back ready for inference


@pytest.mark.slow
@pytest.mark.parametrize("kind,arch,n", [("vae", "mlp", 500), ("ae", "conv", 100)])
def test_seeded_runs_are_identical(small, kind, arch, n):
    data = Dataset("mnist", small.x_train[:n], small.y_train[:n], small.x_test[:n], small.y_test[:n])

    def run(seed):
        model = build_model(tiny(kind, arch, input_noise=0.1), seed=seed)
        done = train(model, data, cfg(epochs=2, batch_size=50, seed=seed))
        return model.state_dict(), done.history

    (a, ha), (b, hb), (c, _) = run(0), run(0), run(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert ha["test_nats"] == hb["test_nats"] and ha["train_loss"] == hb["train_loss"]
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_events_carry_progress(small):
    events = list(iter_train(build_model(tiny(), seed=0), small, cfg(epochs=2), report_every_s=0))
    steps = [e for e in events if isinstance(e, StepEvent)]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert isinstance(events[-1], DoneEvent) and sum(isinstance(e, DoneEvent) for e in events) == 1
    assert len(steps) == 2 * 5 and len(epochs) == 2  # 500 digits / batch 100, every step reported
    for e in steps:
        for field in ("epoch", "step", "loss", "samples_per_s", "eta_s"):
            assert math.isfinite(getattr(e, field)), field
        assert 1 <= e.epoch <= e.epochs == 2 and 1 <= e.step <= e.steps_per_epoch == 5
        assert e.samples_per_s > 0 and e.eta_s >= 0 and 0 < e.progress <= 1
    assert [e.global_step for e in steps] == list(range(1, 11))
    assert all(a.progress <= b.progress for a, b in zip(steps, steps[1:]))
    for e in epochs:
        assert set(e.train) == {"loss", "recon", "kl"} and math.isfinite(e.test["nats"])
        assert len(e.test["kl_per_dim"]) == 4
        assert e.originals.shape == e.reconstructions.shape == (8, 28, 28)
        assert e.originals.dtype == e.reconstructions.dtype == np.uint8
    for e in events:  # every event is JSON for the CLI's --events file and the app's job log
        d = event_to_dict(e)
        assert d["kind"] == e.kind
        json.dumps(d, allow_nan=False)


def test_callback_sees_every_event(small):
    seen = []
    done = train(build_model(tiny(), seed=0), small, cfg(), callback=seen.append)
    assert seen[-1] is done and done.reason == "completed" and done.epochs == 1


@pytest.mark.parametrize("as_callable", [False, True], ids=["event", "callable"])
def test_cancel_stops_between_steps(small, as_callable):
    cancel = threading.Event()
    model = build_model(tiny(), seed=0)
    steps = 0
    token = cancel.is_set if as_callable else cancel
    for ev in iter_train(model, small, cfg(epochs=50), cancel=token, report_every_s=0):
        if isinstance(ev, StepEvent):
            steps += 1
            if ev.global_step == 3:
                cancel.set()
    assert ev.kind == "done" and ev.reason == "cancelled"
    assert steps == 3  # the step in flight finished, no further step started
    assert ev.epochs == 0  # no epoch completed


def test_cancel_before_start(small):
    cancel = threading.Event()
    cancel.set()
    events = list(iter_train(build_model(tiny(), seed=0), small, cfg(), cancel=cancel))
    # the latent movie's first frame (the untrained model) comes before any step, so before the cancel is seen
    assert [e.kind for e in events] == ["frame", "done"] and events[-1].reason == "cancelled"
    assert events[-1].movie.frames == 1


def test_time_budget(small):
    done = train(build_model(tiny(), seed=0), small, cfg(epochs=1000, time_budget=0.5))
    assert done.reason == "time_budget"
    assert 0 <= done.epochs < 1000
    assert done.history["epoch"]  # what it learned in the budget is still reported


def test_nan_loss_raises(small, tmp_path):
    model = build_model(tiny(), seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(TrainingError, match="diverged"):
        train(model, small, cfg())


def test_loss_turning_nan_mid_run_raises(small, monkeypatch):
    real_loss = AutoEncoder.loss
    calls = [0]

    def loss(self, x, out, beta=None):
        calls[0] += 1
        parts = real_loss(self, x, out, beta)
        if calls[0] > 3:
            nan = parts.loss * float("nan")
            return LossOutput(nan, parts.recon, parts.kl, parts.kl_per_dim)
        return parts

    monkeypatch.setattr(AutoEncoder, "loss", loss)
    with pytest.raises(TrainingError):
        train(build_model(tiny(), seed=0), small, cfg(epochs=3))


def test_cli_saves_nothing_when_training_diverges(small, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train_cli, "load_dataset", lambda *a, **k: small)
    monkeypatch.setattr(AutoEncoder, "loss", lambda self, x, out, beta=None: LossOutput(
        (out.logits * float("nan")).sum(), torch.tensor(0.0), torch.tensor(0.0), torch.zeros(self.latent_dim)))
    handler = signal.getsignal(signal.SIGTERM)
    try:
        code = train_cli.main(["--epochs", "1", "--hidden", "32", "--latent-dim", "2", "--no-progress",
                               "--out", str(tmp_path / "m.safetensors")])
    finally:
        signal.signal(signal.SIGTERM, handler)
    out = capsys.readouterr()
    assert code == 1
    assert "diverged" in json.loads(out.out.strip())["error"]
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*.safetensors"))


def test_no_training_split(small):
    test_only = Dataset("mnist", None, None, small.x_test, small.y_test)
    with pytest.raises(DataError):
        list(iter_train(build_model(tiny(), seed=0), test_only, cfg()))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_device_is_a_training_error(small):
    with pytest.raises(TrainingError, match="CUDA"):
        list(iter_train(build_model(tiny(), seed=0), small, cfg(device="cuda")))


def test_train_config_defaults_are_valid():
    c = TrainConfig()
    assert c.epochs >= 1 and c.batch_size >= 1 and c.device == "cpu"


def test_epochs_default_to_the_time_budget():
    assert train_config().epochs == 20 and train_config(epochs=3).epochs == 3
    assert train_config(time_budget=60).epochs == 1000  # the budget, not an epoch count, ends the run
    assert train_config(epochs=5, time_budget=60).epochs == 5


def test_train_config_from_dict():
    c = TrainConfig(epochs=3, lr=0.01, time_budget=9.5, threads=2)
    assert TrainConfig.from_dict(json.loads(json.dumps(asdict(c)))) == c  # as the job file carries it
    with pytest.raises(ValueError, match="Unknown training settings: learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.01})
    with pytest.raises(ValueError, match="JSON object"):
        TrainConfig.from_dict([3])


@pytest.mark.parametrize("kw", [
    {"epochs": 0}, {"epochs": 1001}, {"epochs": 1.5}, {"epochs": True}, {"batch_size": 0}, {"batch_size": 10**6},
    {"lr": 0}, {"lr": -1e-3}, {"lr": 2.0}, {"lr": float("nan")}, {"time_budget": 0}, {"time_budget": -5},
    {"time_budget": float("nan")}, {"threads": 0}, {"device": "tpu"}, {"device": None}, {"warmup_steps": -1},
    {"eval_batch": 0}, {"seed": -1}, {"seed": 1.5},
])
def test_train_config_rejects_bad_values(kw):
    with pytest.raises(ValueError) as e:
        TrainConfig(**kw)
    msg = str(e.value)
    assert msg[0].isupper() and msg.endswith(".") and "\n" not in msg


# ------------------------------------------------------------------ evaluation


def test_test_losses_seeded(small):
    model = build_model(tiny(), seed=0)
    a, b = evaluation.test_losses(model, small.x_test, seed=1), evaluation.test_losses(model, small.x_test, seed=1)
    assert a == b
    assert np.isclose(a["nats"], a["recon"] + a["kl"])
    assert np.isclose(sum(a["kl_per_dim"]), a["kl"], rtol=1e-4)
    assert model.training  # restored


def test_active_units():
    rng = np.random.default_rng(0)
    mu = np.zeros((1000, 4), np.float32)
    mu[:, 0] = rng.standard_normal(1000)  # used
    mu[:, 1] = 0.01 * rng.standard_normal(1000)  # variance 1e-4: collapsed to the prior
    mu[:, 2] = 5.0  # constant
    mu[:, 3] = 0.5 * rng.standard_normal(1000)  # variance 0.25: used
    assert active_units(mu) == 2


def test_evaluate_metrics(small):
    model = build_model(tiny(), seed=0)
    m = evaluate(model, small, seed=0)
    assert set(m) >= {"test_nats", "recon_nats", "kl_nats", "kl_per_dim", "active_units", "knn_acc"}
    json.dumps(m, allow_nan=False)
    assert len(m["kl_per_dim"]) == 4 and 0 <= m["active_units"] <= 4 and 0 <= m["knn_acc"] <= 1
    assert abs(m["test_nats"] - m["recon_nats"] - m["kl_nats"]) < 0.01
    assert evaluate(model, small, seed=0) == m  # seeded: the same numbers every time


def test_knn_with_scarce_labels(small):
    """A small custom set may hold fewer than 10 digits of a class, and only a test split."""
    keep = torch.cat([torch.nonzero(small.y_test == 0).flatten()[:2], torch.nonzero(small.y_test != 0).flatten()])
    data = Dataset("custom", None, None, small.x_test[keep], small.y_test[keep])
    acc = knn_accuracy(build_model(tiny(), seed=0), data)
    assert 0 <= acc <= 1


def test_output_bias_starts_at_the_mean_training_image(small):
    from vae.data import to_float

    x = small.x_train
    mean = (x.double().mean(0) / 255).clamp(1e-3, 1 - 1e-3)
    mlp = build_model(tiny(), seed=0)
    assert init_output_bias(mlp, x, chunk=7)  # chunks that do not divide the split
    last = mlp.decoder[0][-1]
    assert torch.allclose(torch.sigmoid(last.bias.double()), mean.reshape(-1), atol=1e-5)
    with torch.no_grad():  # a fresh model now draws the mean image: a far lower first loss than grey
        fresh = build_model(tiny(), seed=0)
        xb = to_float(x[:64])
        assert mlp.loss(xb, mlp(xb)).recon < 0.8 * fresh.loss(xb, fresh(xb)).recon

    conv = build_model(tiny(arch="conv"), seed=0)
    assert init_output_bias(conv, x)
    out = [m for m in conv.decoder.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))][-1]
    assert math.isclose(float(torch.sigmoid(out.bias.detach())), float(mean.mean()), rel_tol=1e-3)


def test_training_applies_the_bias_start_unless_told_not_to(small):
    seen = {}
    for flag in (True, False):
        model = build_model(tiny(), seed=0)
        first = next(e for e in iter_train(model, small, cfg(init_output_bias=flag), report_every_s=0)
                     if isinstance(e, StepEvent))
        seen[flag] = first.loss
    assert seen[True] < seen[False]


def test_default_learning_rate_is_chosen_per_network():
    assert default_lr(tiny()) == 8e-3  # one hidden layer: the fast rate
    assert default_lr(ModelConfig(kind="vae", arch="mlp", latent_dim=2, hidden=(512, 256))) == 2e-3
    assert default_lr(tiny(arch="conv")) == 4e-3
    assert TrainConfig().lr is None and TrainConfig(lr=0.01).lr == 0.01
    with pytest.raises(ValueError, match="Learning rate"):
        TrainConfig(lr=0)
