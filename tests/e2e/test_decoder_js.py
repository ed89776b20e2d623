"""The browser's networks (ui/nets.js) against the numpy and torch references.

The decoder: the Sliders page's module (ui/decoder_component.js, with ui/nets.js inlined as Streamlit
gets it) runs in headless Chromium on a blank page: same packed bytes, same codes, and the pixels must
match `run_decoder_layers` on the unpacked weights within 1e-4. The digit classifier (the hover card's
digit-likeness score): the JS top-class probability of real and decoded digits equals
`vae.classifier.digit_confidence` within 2e-3 (float16 weights), and the numpy reference within 1e-5.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from ui.components import module_source
from vae.export import classifier_layers, pack_classifier, pack_decoder, run_classifier_layers, unpack_classifier, \
    unpack_decoder
from vae.config import ModelConfig
from vae.models import build_model, decoder_layers, run_decoder_layers

JS = module_source("decoder_component")  # what the Sliders page runs
NETS = module_source("nets")

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


CLASSIFY = """async ([src, b64, images]) => {
  const url = URL.createObjectURL(new Blob([src], {type: "text/javascript"}));
  const m = await import(url);
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const shifted = new Uint8Array(bytes.length + 3); shifted.set(bytes, 3);
  const model = m.parseClassifier(shifted.subarray(3));
  return images.map(x => { const r = m.classify(model, Float32Array.from(x)); return [r.p, r.label, ...r.probs]; });
}"""


def test_module_source_inlines_the_shared_file_once_per_module():
    assert 'from "./nets.js"' not in JS and JS.count("export function parseDecoder") == 0
    assert JS.count("function parseDecoder(") == 1 and "export { readHeader, parseDecoder, decode }" in JS
    hover = module_source("map_hover")
    assert 'from "./nets.js"' not in hover and hover.count("function classify(") == 1


def digits_to_score():
    """20 images: 10 real MNIST test digits and 10 decodings by the bundled 2-d AE of codes in and out of
    its clusters (so that some score high and some low)."""
    from vae.assets import test_set
    from vae.checkpoint import load_checkpoint
    from vae.latent import decode
    from vae.paths import BUNDLED_MODELS

    real = test_set("mnist").x_test[:10].numpy().astype(np.float32) / 255.0
    model, _ = load_checkpoint(BUNDLED_MODELS / "ae-2d.safetensors")
    z = np.random.default_rng(3).uniform(-30, 30, (10, 2)).astype(np.float32)
    return np.concatenate([real, decode(model, z)]).reshape(-1, 28, 28)


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2] / "assets" / "models" / "classifier.safetensors").exists(),
                    reason="no bundled classifier")
def test_js_classifier_matches_torch_on_real_and_decoded_digits(blank):
    from vae.classifier import digit_confidence, load_classifier, predict_proba

    clf = load_classifier()
    images = digits_to_score()
    blob = pack_classifier(classifier_layers(clf), "float16")
    got = np.asarray(blank.evaluate(CLASSIFY, [NETS, base64.b64encode(blob).decode(), images.reshape(-1, 784).tolist()]))
    want = digit_confidence(clf, images)
    np.testing.assert_allclose(got[:, 0], want, atol=2e-3, rtol=0)
    assert (got[:, 1] == predict_proba(clf, images).argmax(1)).all()
    np.testing.assert_allclose(got[:, 2:].sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got[:, 2:], run_classifier_layers(unpack_classifier(blob)[0], images), atol=1e-5, rtol=0)
    assert want.min() < 0.6 < 0.95 < want.max()  # clear digits and blurs both among them


def test_js_classifier_float32_is_torch_exactly(blank):
    """An untrained classifier with float32 weights: nothing but float rounding between JS and torch."""
    import torch

    from vae.classifier import DigitClassifier, predict_proba

    torch.manual_seed(0)
    clf = DigitClassifier().eval()
    images = np.random.default_rng(0).uniform(0, 1, (4, 28, 28)).astype(np.float32)
    images[0] = 0.0  # an all-black image: the zero-skipping loops must still add the biases
    blob = pack_classifier(classifier_layers(clf), "float32")
    got = np.asarray(blank.evaluate(CLASSIFY, [NETS, base64.b64encode(blob).decode(), images.reshape(-1, 784).tolist()]))
    np.testing.assert_allclose(got[:, 2:], predict_proba(clf, images), atol=1e-5, rtol=0)
