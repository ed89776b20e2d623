"""The networks packed for the browser: the decoder and the digit classifier (round trips, size, header
fields, alignment, bad input) and bundles of parts."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from vae.export import (BUNDLE_MAGIC, CLASSIFIER_MAGIC, classifier_layers, pack_classifier, pack_decoder, pack_parts,
                        read_header, run_classifier_layers, unpack_classifier, unpack_decoder, unpack_parts, with_extra)
from vae.config import ModelConfig
from vae.models import build_model, decoder_layers, run_decoder_layers

every_model = pytest.mark.parametrize("kind,arch,d", list(itertools.product(("ae", "vae"), ("mlp", "conv"), (1, 2, 16))))


def tiny(kind, arch, d):
    return build_model(ModelConfig(kind=kind, arch=arch, latent_dim=d, hidden=(32, 16)), seed=0)


def codes(d, n=4):
    return np.random.default_rng(0).normal(0, 1.5, (n, d)).astype(np.float32)


@every_model
def test_float32_round_trip_is_exact(kind, arch, d):
    spec = decoder_layers(tiny(kind, arch, d))
    back, header = unpack_decoder(pack_decoder(spec, "float32"))
    assert header["dtype"] == "float32" and len(back) == len(spec)
    for a, b in zip(spec, back):
        assert a["type"] == b["type"] and a["relu"] == b["relu"]
        np.testing.assert_array_equal(a["weight"], b["weight"])
        np.testing.assert_array_equal(a["bias"], b["bias"])
    np.testing.assert_array_equal(run_decoder_layers(spec, codes(d)), run_decoder_layers(back, codes(d)))


@every_model
def test_float16_is_half_the_size_and_draws_the_same_digit(kind, arch, d):
    model = tiny(kind, arch, d)
    spec = decoder_layers(model)
    n_params = sum(p.numel() for p in model.decoder.parameters())
    b32, b16 = pack_decoder(spec, "float32"), pack_decoder(spec, "float16")
    assert len(b32) - read_header(b32)[1] == 4 * n_params
    assert len(b16) - read_header(b16)[1] == 2 * n_params
    back, _ = unpack_decoder(b16)
    with torch.no_grad():
        want = torch.sigmoid(model.decode(torch.from_numpy(codes(d))))[:, 0].numpy()
    assert np.abs(run_decoder_layers(back, codes(d)) - want).max() < 2e-3


def test_weights_start_aligned_and_extra_fields_travel():
    spec = decoder_layers(tiny("vae", "mlp", 3))
    blob = pack_decoder(spec, extra={"token": "abc", "start": [0.5, -1.0, 2.0]})
    header, start = read_header(blob)
    assert blob[:4] == b"LLD1" and start % 8 == 0
    assert header["token"] == "abc" and header["start"] == [0.5, -1.0, 2.0]
    again = with_extra(blob, {"token": "xyz"})
    h2, s2 = read_header(again)
    assert h2["token"] == "xyz" and h2["digest"] == header["digest"] and s2 % 8 == 0
    assert again[s2:] == blob[start:]  # weights untouched


def test_digest_follows_the_weights_only():
    a, b = tiny("vae", "mlp", 2), tiny("vae", "mlp", 2)
    da = read_header(pack_decoder(decoder_layers(a), extra={"x": 1}))[0]["digest"]
    assert da == read_header(pack_decoder(decoder_layers(b)))[0]["digest"]
    with torch.no_grad():
        b.decoder[0][0].bias.add_(1.0)
    assert da != read_header(pack_decoder(decoder_layers(b)))[0]["digest"]


def test_bad_input_is_one_clear_error():
    spec = decoder_layers(tiny("vae", "mlp", 2))
    with pytest.raises(ValueError, match="float32 or float16"):
        pack_decoder(spec, "int8")
    with pytest.raises(ValueError, match="no layers"):
        pack_decoder([])
    with pytest.raises(ValueError, match="may not replace"):
        pack_decoder(spec, extra={"layers": []})
    with pytest.raises(ValueError, match="not a packed decoder"):
        read_header(b"PK\x03\x04....")
    with pytest.raises(ValueError, match="truncated"):
        read_header(b"LLD1" + struct.pack("<I", 99) + b"{}")
    blob = pack_decoder(spec)
    with pytest.raises(ValueError, match="truncated"):
        unpack_decoder(blob[:-10])


# --- the digit classifier ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clf():
    from vae.classifier import DigitClassifier

    torch.manual_seed(0)
    return DigitClassifier().eval()


def images(n=6):
    x = np.random.default_rng(1).uniform(0, 1, (n, 28, 28)).astype(np.float32)
    x[0] = 0.0
    return x


def test_classifier_layers_follow_the_network(clf):
    spec = classifier_layers(clf)
    assert [(l["type"], l["relu"], l.get("pool")) for l in spec] == [
        ("conv", True, 2), ("conv", True, 2), ("linear", True, None), ("linear", False, None)]
    assert spec[0]["weight"].shape == (32, 1, 3, 3) and spec[0]["padding"] == 1
    assert spec[2]["weight"].shape == (128, 64 * 7 * 7)


def test_classifier_numpy_reference_is_torch_in_eval_mode(clf):
    from vae.classifier import predict_proba

    clf.train()  # predict_proba switches to eval (dropout off); the packed spec has no dropout at all
    np.testing.assert_allclose(run_classifier_layers(classifier_layers(clf), images()), predict_proba(clf, images()),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype,atol", [("float32", 0.0), ("float16", 2e-3)])
def test_classifier_round_trip(clf, dtype, atol):
    spec = classifier_layers(clf)
    blob = pack_classifier(spec, dtype)
    back, header = unpack_classifier(blob)
    assert blob[:4] == CLASSIFIER_MAGIC and read_header(blob, CLASSIFIER_MAGIC)[1] % 8 == 0
    assert header["dtype"] == dtype and header["input"] == [1, 28, 28] and header["classes"] == 10
    n_params = sum(p.numel() for p in clf.parameters())
    assert len(blob) - read_header(blob, CLASSIFIER_MAGIC)[1] == n_params * (4 if dtype == "float32" else 2)
    for a, b in zip(spec, back):
        assert a["type"] == b["type"] and a["relu"] == b["relu"] and a.get("pool") == b.get("pool")
        np.testing.assert_allclose(a["weight"], b["weight"], atol=atol * 10, rtol=1e-3 if atol else 0)
    p, q = run_classifier_layers(spec, images()), run_classifier_layers(back, images())
    assert np.abs(p.max(1) - q.max(1)).max() <= atol + 1e-7


@pytest.mark.skipif(not (Path(__file__).resolve().parents[1] / "assets" / "models" / "classifier.safetensors").exists(),
                    reason="no bundled classifier")
def test_bundled_classifier_in_float16_scores_real_digits_as_torch_does():
    from vae.assets import test_set
    from vae.classifier import digit_confidence, load_classifier

    trained = load_classifier()
    x = test_set("mnist").x_test[:200].numpy().astype(np.float32) / 255.0
    back, _ = unpack_classifier(pack_classifier(classifier_layers(trained)))
    np.testing.assert_allclose(run_classifier_layers(back, x).max(1), digit_confidence(trained, x), atol=2e-3, rtol=0)


def test_classifier_packing_refuses_what_it_cannot_run(clf):
    from torch import nn

    with pytest.raises(ValueError, match="cannot be packed"):
        classifier_layers(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)))
    with pytest.raises(ValueError, match="stride 1"):
        classifier_layers(nn.Sequential(nn.Conv2d(1, 4, 3, stride=2)))
    with pytest.raises(ValueError, match="ending in a linear"):
        pack_classifier(classifier_layers(nn.Sequential(nn.Conv2d(1, 4, 3))))
    with pytest.raises(ValueError, match="float32 or float16"):
        pack_classifier(classifier_layers(clf), "bfloat16")
    blob = pack_classifier(classifier_layers(clf))
    with pytest.raises(ValueError, match="not a packed classifier"):
        unpack_classifier(pack_decoder(decoder_layers(tiny("vae", "mlp", 2))))
    with pytest.raises(ValueError, match="not a packed decoder"):
        unpack_decoder(blob)
    with pytest.raises(ValueError, match="truncated"):
        unpack_classifier(blob[:-100])


# --- bundles -------------------------------------------------------------------------------------

def test_parts_round_trip_aligned():
    parts = {"a": b"12345", "b": np.arange(7, dtype="<f4").tobytes(), "empty": b""}
    blob = pack_parts({"kind": "test", "x": [1, 2]}, parts)
    header, back = unpack_parts(blob)
    assert blob[:4] == BUNDLE_MAGIC and header["kind"] == "test" and header["x"] == [1, 2]
    assert back == parts
    start = read_header(blob, BUNDLE_MAGIC)[1]
    assert start % 8 == 0 and all(off % 8 == 0 for off, _ in header["parts"].values())


def test_parts_bad_input():
    with pytest.raises(ValueError, match="may not set 'parts'"):
        pack_parts({"parts": 1}, {})
    blob = pack_parts({}, {"a": b"x" * 64})
    with pytest.raises(ValueError, match="truncated"):
        unpack_parts(blob[:-8])
    with pytest.raises(ValueError, match="not a packed bundle"):
        unpack_parts(b"LLD1" + blob[4:])
