"""Denoising (vae.denoise): seeded, bounded corruption that grows with its level; reconstructions from any model;
errors against the clean digit; and, on the bundled models, the denoising AE's error below the plain AE's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae.assets import bundled_test_set
from vae.checkpoint import load_checkpoint
from vae.config import ModelConfig
from vae.denoise import (MAX_LEVEL, NOISE_KINDS, NOISY, as_images, corrupt, denoise, digit_errors, error_sweep,
                         gaussian_noise, is_denoising, levels_for, reconstruct, salt_and_pepper)
from vae.models import build_model
from vae.paths import BUNDLED_MODELS

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny(kind: str, arch: str) -> ModelConfig:
    return ModelConfig(kind=kind, arch=arch, latent_dim=2, hidden=(32,))


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """500 real test digits (the bundled test set, a fixed random choice), uint8 (500, 28, 28)."""
    x = bundled_test_set().x_test.numpy()
    return x[np.sort(np.random.default_rng(0).choice(len(x), 500, replace=False))]


LEVELS = {"gaussian": 0.5, "salt_pepper": 0.2}


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_corruption_is_seeded_bounded_and_keeps_the_shape(kind, digits):
    x = digits[:64]
    a, b, c = (corrupt(x, kind, LEVELS[kind], seed=s) for s in (3, 3, 4))
    assert a.shape == (64, 28, 28) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert not np.array_equal(a, as_images(x))
    # the same from (B, 1, 28, 28) floats, numpy or torch, as from (B, 28, 28) uint8
    floats = x[:, None].astype(np.float32) / 255.0
    np.testing.assert_array_equal(corrupt(floats, kind, LEVELS[kind], seed=3), a)
    np.testing.assert_array_equal(corrupt(torch.from_numpy(floats), kind, LEVELS[kind], seed=3), a)
    np.testing.assert_array_equal(corrupt(x, kind, 0.0, seed=3), as_images(x))  # level 0: unchanged
    assert corrupt(x[:0], kind, LEVELS[kind]).shape == (0, 28, 28)


def test_gaussian_noise_has_the_asked_strength():
    grey = np.full((200, 28, 28), 0.5, np.float32)  # far from the clipping at 0 and 1 for a small sigma
    noise = gaussian_noise(grey, 0.1, seed=0) - grey
    assert abs(noise.std() - 0.1) < 0.002 and abs(noise.mean()) < 0.002


def test_salt_and_pepper_sets_a_share_of_pixels_to_black_or_white_and_keeps_them():
    grey = np.full((200, 28, 28), 0.5, np.float32)  # every hit pixel changes
    low, high = salt_and_pepper(grey, 0.1, seed=0), salt_and_pepper(grey, 0.3, seed=0)
    hit_low, hit_high = low != 0.5, high != 0.5
    assert abs(hit_low.mean() - 0.1) < 0.005 and abs(hit_high.mean() - 0.3) < 0.005
    assert set(np.unique(high[hit_high])) == {0.0, 1.0} and abs((high[hit_high] == 1.0).mean() - 0.5) < 0.01
    # nested: the pixels hit at 0.1 are hit at 0.3 too, with the same colour (a slider moves smoothly)
    assert hit_high[hit_low].all() and np.array_equal(low[hit_low], high[hit_low])


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_the_noisy_inputs_error_rises_with_the_level(kind, digits):
    levels = levels_for(kind, 11)
    assert levels[0] == 0.0 and levels[-1] == MAX_LEVEL[kind]
    sweep = error_sweep({}, digits, kind, levels, seed=0)
    e = sweep.errors[NOISY]
    assert e[0] == 0.0 and np.all(np.diff(e) > 0), e
    assert list(sweep.errors) == [NOISY] and np.array_equal(sweep.levels, levels)


@pytest.mark.parametrize("kind, level", [("gaussian", -0.1), ("gaussian", 1.5), ("salt_pepper", 0.6),
                                         ("salt_pepper", float("nan")), ("speckle", 0.1)])
def test_bad_noise_is_one_sentence(kind, level, digits):
    with pytest.raises(ValueError, match=r"\.$"):
        corrupt(digits[:2], kind, level)


@pytest.mark.parametrize("bad", [np.zeros((2, 28, 27)), np.full((2, 28, 28), 1.5), np.full((2, 28, 28), np.nan)])
def test_digits_that_are_not_digits_are_refused(bad):
    with pytest.raises(ValueError, match=r"\.$"):
        corrupt(bad, "gaussian", 0.1)


def test_errors_are_mean_squared_pixel_differences():
    a = np.zeros((2, 28, 28), np.float32)
    b = a.copy()
    b[1, :14] = 1.0  # half the pixels off by 1
    np.testing.assert_allclose(digit_errors(a, b), [0.0, 0.5])
    with pytest.raises(ValueError, match="cannot be compared"):
        digit_errors(a, b[:1])


@pytest.mark.parametrize("kind", ["ae", "vae"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_every_model_kind_reconstructs_from_its_posterior_mean(kind, arch, digits):
    model = build_model(tiny(kind, arch), seed=0)
    noisy = corrupt(digits[:8], "salt_pepper", 0.2, seed=1)
    x_hat = reconstruct(model, noisy)
    assert x_hat.shape == (8, 28, 28) and 0.0 <= x_hat.min() and x_hat.max() <= 1.0
    with torch.no_grad():
        expected = torch.sigmoid(model.decode(model.encode(torch.from_numpy(noisy)[:, None]).mu))[:, 0].numpy()
    np.testing.assert_allclose(x_hat, expected, atol=1e-6)
    np.testing.assert_array_equal(reconstruct(model, noisy), x_hat)  # no sampling: the same every time
    result = denoise({"m": model}, digits[:8], "salt_pepper", 0.2, seed=1)
    np.testing.assert_array_equal(result.noisy, noisy)
    np.testing.assert_allclose(result.errors["m"], digit_errors(x_hat, digits[:8]), atol=1e-7)
    assert set(result.mean_errors()) == {NOISY, "m"}
    with pytest.raises(ValueError, match="noisy input itself"):
        denoise({NOISY: model}, digits[:8], "gaussian", 0.1)


def test_an_imported_onnx_model_reconstructs_as_its_native_self(tmp_path, digits):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from vae.checkpoint import ModelLibrary
    from vae.onnx.export import export_model
    from vae.onnx.model import OnnxAutoEncoder

    native = build_model(tiny("vae", "mlp"), seed=0)
    entry = ModelLibrary(tmp_path / "models").import_onnx(*export_model(native), name="imported")
    onnx_model, _ = load_checkpoint(entry.path)
    assert isinstance(onnx_model, OnnxAutoEncoder)
    noisy = corrupt(digits[:16], "gaussian", 0.4, seed=2)
    np.testing.assert_allclose(reconstruct(onnx_model, noisy), reconstruct(native, noisy), atol=1e-5)


def test_a_denoising_model_is_one_trained_with_input_noise():
    assert is_denoising(ModelConfig(kind="ae", input_noise=0.5)) and not is_denoising(ModelConfig(kind="ae"))


# ---------------------------------------------------------------- the bundled models

def bundled(name: str):
    path = BUNDLED_MODELS / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"the bundled {name} is not built yet (bash assets/build.sh)")
    return load_checkpoint(path)


@pytest.mark.parametrize("kind, level", [("gaussian", 0.3), ("gaussian", 0.5), ("gaussian", 0.8),
                                         ("salt_pepper", 0.1), ("salt_pepper", 0.25), ("salt_pepper", 0.4)])
def test_denoising_error_falls_with_the_denoising_model(kind, level, digits):
    """The bundled denoising AE redraws noisy test digits closer to the clean ones than the plain AE 16-d with
    the same layers and seed, and closer than the noisy input itself."""
    dae, meta = bundled("dae-16d")
    ae, _ = bundled("ae-16d")
    assert is_denoising(dae.config) and not is_denoising(ae.config)
    assert (dae.config.kind, dae.config.latent_dim, dae.config.hidden) == ("ae", 16, ae.config.hidden)
    errors = denoise({"plain": ae, "denoising": dae}, digits, kind, level, seed=0).mean_errors()
    print(kind, level, {k: round(v, 4) for k, v in errors.items()})
    assert errors["denoising"] < 0.6 * errors["plain"]
    assert errors["denoising"] < errors[NOISY]


# ---------------------------------------------------------------- the training form and the library table

FORM = dict(max_seconds=60, max_epochs=5, kind="ae", arch="mlp", latent_dim=16, hidden_text="512,256", beta=1.0,
            stop="epochs", time_budget=None, epochs=2, batch_size=128, lr=None, seed=0)


def test_the_training_form_passes_input_noise_through_and_checks_it():
    from ui.train_form import INPUT_NOISE, settings

    model, _ = settings(**FORM, input_noise=0.5)
    assert ModelConfig.from_dict(model).input_noise == 0.5  # what the queue builds the job's config from
    assert settings(**FORM)[0]["input_noise"] == 0.0  # no field: no noise
    for bad, typed in ((1.5, "1.5"), (-0.1, "-0.1"), (float("nan"), "nan")):
        with pytest.raises(ValueError) as e:
            settings(**FORM, input_noise=bad)
        assert str(e.value) == f"{INPUT_NOISE.rule()}; you typed {typed}."
    with pytest.raises(ValueError) as e:
        settings(**FORM, input_noise=None)
    assert str(e.value) == "Input noise (denoising) must be a number from 0 to 1; the field is empty."


def test_the_library_table_names_a_denoising_model():
    from types import SimpleNamespace

    from ui.library import LIBRARY_COLUMNS, library_rows

    rows = library_rows([SimpleNamespace(id=str(n), name=str(n), config=ModelConfig(kind="ae", input_noise=n), meta={},
                                         metrics={}, bundled=True, owner=None) for n in (0.0, 0.5)], None, None)
    assert [r["Noise"] for r in rows] == ["–", "0.5"] and set(rows[0]) <= set(LIBRARY_COLUMNS)
