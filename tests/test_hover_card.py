"""The hover card's specs (ui/hover_card.py): how a map point becomes a code, and what the browser gets.

Invariants: the native plane is the code itself; the PCA plane is exactly
make_projection("pca").fit(codes).inverse_transform, and the plane the map service draws; an
approximate map is vae.maps.neighbours.approx_codes, exact on its dots; a map that is not the PCA of
its codes is never decoded as one; the bundle carries each model's decoder once, and the page mounts
the card without an exception.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ui import hover_card
from ui.state import Active
from vae.config import ModelConfig
from vae.export import read_header, unpack_decoder, unpack_parts
from vae.maps.projection import compute_map, make_projection
from vae.models import build_model, decoder_layers, run_decoder_layers


def active(d: int, kind: str = "vae", name: str = "m") -> Active:
    model = build_model(ModelConfig(kind=kind, arch="mlp", latent_dim=d, hidden=(32, 16)), seed=0)
    return Active(SimpleNamespace(name=name, id=name), model, {}, f"{name}-{kind}-{d}")


def codes(d: int, n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 1, (n, d)) * np.linspace(3, 0.5, d) + 2.0).astype(np.float32)


@pytest.mark.parametrize("d", [1, 2])
def test_native_plane_is_the_code(d):
    z = codes(d)
    y = compute_map(z, "native")
    spec = hover_card.decode_spec(active(d), "m", "native", z, y)
    assert spec.plane == "native" and spec.components.shape == (2, d)
    np.testing.assert_array_equal(spec.to_codes(y), z)  # every dot's own code
    pts = np.array([[0.5, -1.0], [7.0, 3.0]])
    np.testing.assert_array_equal(spec.to_codes(pts), make_projection("native").fit(z).inverse_transform(pts))


@pytest.mark.parametrize("d", [1, 2, 5, 16])
def test_pca_plane_is_the_projections_inverse_and_the_map_services(d):
    z = codes(d)
    y = compute_map(z, "pca")  # what the map service draws (vae.maps.service computes maps this way)
    spec = hover_card.decode_spec(active(d), "m", "pca", z, y)
    assert spec.plane == "pca"
    proj = make_projection("pca").fit(z)
    pts = np.random.default_rng(1).normal(0, 3, (20, 2))
    if d == 1:
        pts[:, 1] = 0.0  # a 1-d model's PCA map has no second axis
    np.testing.assert_allclose(spec.to_codes(pts), proj.inverse_transform(pts), atol=1e-5, rtol=0)
    # and the plane maps the codes onto the very positions drawn
    np.testing.assert_allclose((z - spec.mean) @ spec.components.T, y, atol=1e-4, rtol=0)


def test_pca_plane_from_the_pages_projection():
    """AE vs VAE passes the projection it drew with (ui.explore.plane): the same plane."""
    z = codes(6)
    proj = make_projection("pca").fit(z)
    spec = hover_card.decode_spec(active(6), "m", "pca", z, proj.transform(z), projection=proj)
    assert spec.plane == "pca"
    np.testing.assert_allclose(spec.mean, proj.mean_)
    np.testing.assert_allclose(spec.components, proj.components_)


def test_a_map_that_is_not_this_pca_is_decoded_approximately():
    z = codes(5)
    y = compute_map(z, "pca")
    for wrong in (y * -1.0, y[::-1].copy(), y + 1.0):
        assert hover_card.decode_spec(active(5), "m", "pca", z, wrong).plane == "approx"


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_approximate_map_is_approx_codes_and_exact_on_dots(method):
    from vae.maps.neighbours import approx_codes

    z = codes(8)
    y = np.random.default_rng(2).normal(0, 10, (len(z), 2)).astype(np.float32)  # any layout will do
    spec = hover_card.decode_spec(active(8), "m", method, z, y, map_id="map-1")
    assert spec.plane == "approx" and spec.codes.dtype == np.float16 and spec.map_id == "map-1"
    np.testing.assert_array_equal(spec.to_codes(y[:50]), z[:50].astype(np.float16).astype(np.float32))
    pts = np.array([[0.0, 0.0], [3.0, -4.0], [100.0, 100.0]])
    got = spec.to_codes(pts)
    assert got.shape == (3, 8)
    np.testing.assert_allclose(got, approx_codes(y, z, pts, k=8), atol=5e-3, rtol=0)  # float16 codes


def test_bundle_has_each_decoder_once_and_every_map():
    a, b = active(2, "ae", "ae"), active(2, "vae", "vae")
    z = codes(2)
    y = np.random.default_rng(3).normal(size=(len(z), 2)).astype(np.float32)
    specs = [hover_card.decode_spec(a, "left", "native", z, z), hover_card.decode_spec(b, "right", "native", z, z),
             hover_card.decode_spec(a, "t", "tsne", z, y)]
    header, parts = unpack_parts(hover_card.bundle(specs, linked=True))
    assert header["linked"] is True and header["k"] == hover_card.K == 8 and 0 < header["threshold"] < 1
    assert [m["key"] for m in header["maps"]] == ["left", "right", "t"]
    assert [m["plane"] for m in header["maps"]] == ["native", "native", "approx"]
    decoders = sorted(k for k in parts if k.startswith("decoder-"))
    assert decoders == ["decoder-0", "decoder-1"] and header["maps"][2]["decoder"] == header["maps"][0]["decoder"]
    # the decoder the browser gets draws what the model draws
    spec, _ = unpack_decoder(parts[header["maps"][1]["decoder"]])
    with torch.no_grad():
        want = torch.sigmoid(b.model.decode(torch.from_numpy(z[:4])))[:, 0].numpy()
    assert np.abs(run_decoder_layers(spec, z[:4]) - want).max() < 2e-3
    t = header["maps"][2]
    np.testing.assert_array_equal(np.frombuffer(parts[t["codes"]], "<f2").reshape(-1, 2), z.astype(np.float16))
    np.testing.assert_array_equal(np.frombuffer(parts[t["positions"]], "<f4").reshape(-1, 2), y)
    assert header["maps"][0]["components"] == [[1.0, 0.0], [0.0, 1.0]] and header["maps"][0]["mean"] == [0.0, 0.0]


def test_bundle_token_follows_the_content():
    a = active(2)
    z = codes(2)
    one = read_header(hover_card.bundle([hover_card.decode_spec(a, "m", "native", z, z)]), b"LLB1")[0]["token"]
    same = read_header(hover_card.bundle([hover_card.decode_spec(a, "m", "native", z, z)]), b"LLB1")[0]["token"]
    linked = read_header(hover_card.bundle([hover_card.decode_spec(a, "m", "native", z, z)], True), b"LLB1")[0]["token"]
    y = compute_map(z, "pca")
    pca = read_header(hover_card.bundle([hover_card.decode_spec(a, "m", "pca", z, y)]), b"LLB1")[0]["token"]
    assert one == same and len({one, linked, pca}) == 3


def test_specs_refuse_what_they_cannot_decode():
    with pytest.raises(ValueError, match="one of native, pca, approx"):
        hover_card.DecodeSpec("m", "x", "f", b"", "tsne", 2)
    with pytest.raises(ValueError, match="codes and their map positions"):
        hover_card.DecodeSpec("m", "x", "f", b"", "approx", 2, codes=np.zeros((3, 2)), positions=np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"components \(2, 3\)"):
        hover_card.DecodeSpec("m", "x", "f", b"", "pca", 3, mean=np.zeros(3), components=np.zeros((2, 2)))


def test_classifier_blob_scores_like_the_classifier():
    from vae.classifier import digit_confidence
    from vae.export import run_classifier_layers, unpack_classifier

    try:
        clf = hover_card.state.classifier()
    except Exception:
        pytest.skip("no bundled classifier")
    blob = hover_card.classifier_blob()
    x = np.random.default_rng(0).uniform(0, 1, (8, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(run_classifier_layers(unpack_classifier(blob)[0], x).max(1), digit_confidence(clf, x),
                               atol=2e-3)
    assert len(blob) < 1_000_000  # float16: what one page load costs


def _page(decoders: str, linked: bool):
    import numpy as np

    from ui import hover_card, state
    from vae.maps.projection import compute_map

    a = state.get_model("ae-2d")
    z = state.active_codes(a)
    method = {"native": "native", "pca": "pca", "tsne": "tsne"}[decoders]
    y = compute_map(z, method) if method != "tsne" else np.random.default_rng(0).normal(size=(len(z), 2))
    specs = [hover_card.decode_spec(a, f"m{k}", method, z, y) for k in range(2 if linked else 1)]
    hover_card.hover_digits(a.dataset, specs, linked=linked)


@pytest.mark.parametrize("decoders,linked", list(itertools.product(["native", "pca", "tsne"], [False, True])))
def test_the_card_mounts_with_decoders(fresh_app, decoders, linked):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page, args=(decoders, linked), default_timeout=120).run()
    assert not at.exception, at.exception
