"""The decoder packed for the browser: round trips, size, header fields, alignment, bad input."""

from __future__ import annotations

import itertools
import struct

import numpy as np
import pytest
import torch

from vae.export import pack_decoder, read_header, unpack_decoder, with_extra
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
