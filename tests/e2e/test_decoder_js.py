"""The Sliders page's JavaScript decoder (ui/decoder_component.js) against the numpy reference.

Runs the module in headless Chromium on a blank page: same packed bytes, same codes, and the
pixels must match `run_decoder_layers` on the unpacked weights within 1e-4.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from vae.export import pack_decoder, unpack_decoder
from vae.config import ModelConfig
from vae.models import build_model, decoder_layers, run_decoder_layers

JS = (Path(__file__).resolve().parents[2] / "ui" / "decoder_component.js").read_text()

RUN = """async ([src, b64, codes]) => {
  const url = URL.createObjectURL(new Blob([src], {type: "text/javascript"}));
  const m = await import(url);
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  // An unaligned view, as Streamlit may hand over: the decoder must copy, not alias.
  const shifted = new Uint8Array(bytes.length + 1); shifted.set(bytes, 1);
  const model = m.parseDecoder(shifted.subarray(1));
  return codes.map(z => Array.from(m.decode(model, z)));
}"""


@pytest.fixture
def blank(browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto("about:blank")
    yield page
    ctx.close()


@pytest.mark.parametrize("arch,latent_dim,hidden", [("mlp", 2, (64, 32)), ("mlp", 16, (128, 64)),
                                                    ("conv", 3, (32,)), ("conv", 1, (16,))])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_js_decoder_matches_numpy(blank, arch, latent_dim, hidden, dtype):
    model = build_model(ModelConfig(kind="vae", arch=arch, latent_dim=latent_dim, hidden=hidden), seed=1)
    blob = pack_decoder(decoder_layers(model), dtype)
    spec, _ = unpack_decoder(blob)
    codes = np.random.default_rng(0).normal(0, 2, (3, latent_dim)).astype(np.float32)
    got = np.asarray(blank.evaluate(RUN, [JS, base64.b64encode(blob).decode(), codes.tolist()]), np.float32)
    want = run_decoder_layers(spec, codes).reshape(len(codes), -1)
    assert got.shape == want.shape == (3, 784)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert want.std() > 1e-2  # a varied image, not a constant one that would match anything


def bundled_models() -> list[Path]:
    from vae.checkpoint import ModelLibrary
    from vae.paths import BUNDLED_MODELS

    if not BUNDLED_MODELS.is_dir():
        return []
    return [e.path for e in ModelLibrary(BUNDLED_MODELS, BUNDLED_MODELS).entries() if e.bundled]  # autoencoders only


@pytest.mark.parametrize("path", bundled_models(), ids=lambda p: p.stem)
def test_js_decoder_matches_numpy_on_bundled_models(blank, path):
    """Trained weights: larger activations and real ReLU sparsity, as the page meets them."""
    from vae.checkpoint import load_checkpoint

    model, _ = load_checkpoint(path)
    blob = pack_decoder(decoder_layers(model), "float16")
    spec, _ = unpack_decoder(blob)
    codes = np.random.default_rng(0).normal(0, 1.5, (4, model.latent_dim)).astype(np.float32)
    got = np.asarray(blank.evaluate(RUN, [JS, base64.b64encode(blob).decode(), codes.tolist()]), np.float32)
    np.testing.assert_allclose(got, run_decoder_layers(spec, codes).reshape(len(codes), -1), atol=1e-4, rtol=0)
