"""Models: one interface for AE and VAE, both architectures, any latent size from 1 to 128."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from vae.models import (
    AutoEncoder, LossOutput, ModelConfig, ModelOutput, Posterior, build_model, decoder_layers, run_decoder_layers,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")
KINDS = ("ae", "vae")
ARCHS = ("mlp", "conv")
DIMS = (1, 2, 16)
HIDDEN = (32, 16)  # tiny: every test runs in milliseconds


def tiny(kind="vae", arch="mlp", latent_dim=2, **kw) -> ModelConfig:
    return ModelConfig(kind=kind, arch=arch, latent_dim=latent_dim, hidden=kw.pop("hidden", HIDDEN), **kw)


def batch(n=5, seed=0) -> torch.Tensor:
    return torch.rand((n, 1, 28, 28), generator=torch.Generator().manual_seed(seed))  # (B, 1, 28, 28)


every_model = pytest.mark.parametrize("kind,arch,d", list(itertools.product(KINDS, ARCHS, DIMS)))


@every_model
def test_shapes_and_finite_loss(kind, arch, d):
    model = build_model(tiny(kind, arch, d), seed=0)
    x = batch()
    post = model.encode(x)
    assert isinstance(post, Posterior)
    assert post.mu.shape == post.logvar.shape == (5, d)
    z = post.sample(torch.Generator().manual_seed(0))
    assert z.shape == (5, d)
    assert model.decode(z).shape == (5, 1, 28, 28)
    out = model(x)
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == out.x_hat.shape == (5, 1, 28, 28)
    assert out.z.shape == (5, d)
    assert ((out.x_hat >= 0) & (out.x_hat <= 1)).all()
    parts = model.loss(x, out)
    assert isinstance(parts, LossOutput)
    for t in (parts.loss, parts.recon, parts.kl):
        assert t.shape == () and torch.isfinite(t)
    assert parts.kl_per_dim.shape == (d,)
    assert parts.recon > 0  # a Bernoulli NLL of non-binary pixels is positive
    parts.loss.backward()  # the objective is differentiable end to end
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@every_model
def test_one_interface(kind, arch, d):
    model = build_model(tiny(kind, arch, d), seed=0).eval()
    post = model.encode(batch())
    assert torch.equal(post.mode(), post.mu)
    kl = post.kl()
    assert kl.shape == (5,)
    assert torch.allclose(kl, post.kl_per_dim().sum(1))
    a = post.sample(torch.Generator().manual_seed(1))
    b = post.sample(torch.Generator().manual_seed(2))
    if kind == "ae":
        assert post.deterministic
        assert torch.equal(a, post.mu) and torch.equal(b, post.mu)
        assert torch.equal(kl, torch.zeros(5))
        assert torch.equal(post.std, torch.zeros_like(post.mu))
    else:
        assert not post.deterministic
        assert not torch.equal(a, b)
        assert (kl >= 0).all()


def test_vae_kl_matches_closed_form():
    mu = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    logvar = torch.tensor([[0.0, 0.0], [np.log(4.0), np.log(0.25)]], dtype=torch.float32)
    kl = Posterior(mu, logvar).kl_per_dim()
    var = logvar.exp()
    expected = 0.5 * (mu ** 2 + var - 1 - torch.log(var))
    assert torch.allclose(kl, expected)
    assert kl[0, 0] == 0  # the prior itself has zero KL


def test_logvar_is_clamped():
    model = build_model(tiny("vae", "mlp", 2), seed=0)
    with torch.no_grad():
        model.encoder[-1][-1].bias[2:] = 1e4  # logvar half of the last layer: absurdly large
    post = model.encode(batch())
    assert torch.isfinite(post.logvar).all() and torch.isfinite(post.kl()).all()
    assert post.logvar.max() <= 20.0


def test_ae_ignores_beta():
    x = batch()
    a = build_model(tiny("ae", beta=0.0), seed=0)
    b = build_model(tiny("ae", beta=50.0), seed=0)
    assert torch.equal(a.loss(x, a(x)).loss, b.loss(x, b(x)).loss)


def test_input_noise_only_while_training():
    model = build_model(tiny("ae", input_noise=0.5), seed=0)
    x = batch()
    model.eval()
    assert torch.equal(model(x).z, model(x).z)  # evaluation sees the clean input
    model.train()
    z1 = model(x, generator=torch.Generator().manual_seed(0)).z
    z2 = model(x, generator=torch.Generator().manual_seed(1)).z
    assert not torch.equal(z1, z2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("arch", ARCHS)
def test_build_model_seeded(kind, arch):
    cfg = tiny(kind, arch, 16)
    a, b, c = build_model(cfg, seed=3), build_model(cfg, seed=3), build_model(cfg, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_build_model_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(tiny(), seed=7)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("arch", ARCHS)
def test_sampling_seeded(arch):
    model = build_model(tiny("vae", arch, 16), seed=0)
    x = batch()
    post = model.encode(x)
    assert torch.equal(post.sample(torch.Generator().manual_seed(5)), post.sample(torch.Generator().manual_seed(5)))
    with torch.no_grad():
        out1 = model(x, generator=torch.Generator().manual_seed(5))
        out2 = model(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out1.logits, out2.logits)


def test_config_round_trip_and_defaults():
    cfg = ModelConfig(kind="ae", arch="conv", latent_dim=7, hidden=[64], beta=2, input_noise=0.1)
    assert cfg.hidden == (64,) and isinstance(cfg.beta, float)
    d = cfg.to_dict()
    assert d["hidden"] == [64]
    assert ModelConfig.from_dict(d) == cfg
    assert ModelConfig(hidden=128).hidden == (128,)


@pytest.mark.parametrize("kw", [
    {"latent_dim": 0}, {"latent_dim": 129}, {"latent_dim": -1}, {"latent_dim": 2.5}, {"latent_dim": True},
    {"kind": "gan"}, {"kind": "VAE"}, {"arch": "transformer"},
    {"hidden": ()}, {"hidden": (0,)}, {"hidden": (4,)}, {"hidden": (8192,)}, {"hidden": (64.5,)},
    {"hidden": (64, 64, 64, 64, 64)},
    {"beta": -0.1}, {"beta": float("nan")}, {"beta": float("inf")}, {"beta": "1"},
    {"input_noise": -0.1}, {"input_noise": 2.0},
])
def test_config_rejects_bad_values(kw):
    with pytest.raises(ValueError) as e:
        ModelConfig(**kw)
    msg = str(e.value)
    assert msg[0].isupper() and msg.endswith(".") and "\n" not in msg  # a sentence a user can act on


def test_config_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="Unknown model config fields: colour"):
        ModelConfig.from_dict({"kind": "vae", "colour": "red"})
    with pytest.raises(ValueError):
        ModelConfig.from_dict(["vae"])


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        tiny().latent_dim = 3


def test_extreme_latent_sizes_build():
    for d in (1, 128):
        assert build_model(tiny(latent_dim=d)).encode(batch(2)).mu.shape == (2, d)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("d", (1, 2, 16))
def test_numpy_decoder_matches_torch(arch, d):
    model = build_model(tiny("vae", arch, d), seed=0).eval()
    z = torch.randn((6, d), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = torch.sigmoid(model.decode(z))[:, 0].numpy()  # (B, 28, 28)
    spec = decoder_layers(model)
    assert all(isinstance(layer["weight"], np.ndarray) for layer in spec)
    assert spec[-1]["relu"] is False  # the logits layer has no ReLU
    got = run_decoder_layers(spec, z.numpy())
    assert got.shape == (6, 28, 28)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_one_class_for_both_kinds():
    assert type(build_model(tiny("ae"))) is type(build_model(tiny("vae"))) is AutoEncoder
