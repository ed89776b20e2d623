"""AppTest of the Interpolate, AE vs VAE and Samples & errors pages: smoke per page and model, and their state.

Each test gets a private library with tiny untrained models (so nothing depends on the bundled
assets) and a tiny stand-in digit classifier; the real MNIST test digits come from LATENT_LAB_DATA.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from vae.paths import ROOT

import vae.classifier
from vae.assets import test_set as bundled_test_set
from vae.checkpoint import CheckpointError, ModelLibrary, default_library_dir, load_checkpoint
from vae.latent import encode
from vae.classifier import DigitClassifier
from vae.config import ModelConfig
from vae.models import build_model

PAGES = ["pages/interpolate.py", "pages/compare.py", "pages/gallery.py"]


@pytest.fixture
def lib(data_root, monkeypatch):
    """Ids of tiny models in the private library: a 1-d and a 2-d AE, a 2-d and a 5-d VAE."""
    monkeypatch.setenv("LATENT_LAB_DATA", str(data_root))
    st.cache_data.clear()
    st.cache_resource.clear()
    torch.manual_seed(0)
    clf = DigitClassifier().eval()
    monkeypatch.setattr(vae.classifier, "load_classifier", lambda: clf)
    library = ModelLibrary(default_library_dir())
    ids = {}
    for key, kind, dim in (("ae1", "ae", 1), ("ae2", "ae", 2), ("vae2", "vae", 2), ("vae5", "vae", 5)):
        model = build_model(ModelConfig(kind=kind, latent_dim=dim, hidden=(32,)), seed=0)
        ids[key] = library.save(model, name=f"tiny {kind} {dim}-d", dataset="mnist").id
    yield ids
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(page: str, model_id: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    if model_id is not None:
        at.session_state["active_model"] = model_id
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def plotly_spec(at: AppTest, key: str) -> dict:
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        if el.proto.id and key in el.proto.id:
            return spec
    raise AssertionError(f"no plotly chart with key {key}")


def values(v) -> np.ndarray:
    """A plotly array, plain or binary-encoded ({'dtype': 'f4', 'bdata': base64})."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), np.dtype(v["dtype"])).astype(float)
    return np.asarray(v, float)


def map_data(at: AppTest, key: str) -> dict:
    """What the page hands the canvas map (ui/map_canvas.js) with this key."""
    for el in at.get("bidi_component"):
        if el.proto.component_name == "latent_lab.map_canvas" and el.proto.id.endswith(f"-{key}"):
            return json.loads(json.loads(el.proto.json)["json"])  # the map is one JSON string (ui/map_canvas.py)
    raise AssertionError(f"no canvas map with key {key}")


def path_points(at: AppTest, key: str = "interp_map") -> np.ndarray:
    path = map_data(at, key)["path"]
    return np.c_[path["x"], path["y"]]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("model", ["ae1", "ae2", "vae5"])
def test_page_runs_without_exception(lib, page, model):
    at = open_page(page, lib[model])
    assert at.title and at.title[0].value


def test_interpolate_steps_change_the_strip_length(lib):
    at = open_page("pages/interpolate.py", lib["vae2"])
    assert "10 steps" in at.image[0].captions[0]
    assert len(values(plotly_spec(at, "interp_scores")["data"][0]["y"])) == 10
    first = map_data(at, "interp_map")
    assert first["n"] == 10_000 and first["pick"] is False  # every test digit on the map; it only shows
    at.slider(key="interp_steps").set_value(5).run()
    assert not at.exception
    assert "5 steps" in at.image[0].captions[0]
    assert len(values(plotly_spec(at, "interp_scores")["data"][0]["y"])) == 5
    assert len(path_points(at)) == 5
    walk = map_data(at, "interp_map")
    assert walk["id"] == first["id"]  # the same map: the browser keeps its zoom while the walk changes
    assert len(walk["path"]["colors"]) == 5 and walk["path"]["text"][0].startswith("step 1 of 5 · looks like a digit")
    assert at.get("download_button")[1].proto.label == "Animated GIF"


def test_interpolate_method_switch_bends_the_path_but_keeps_the_ends(lib):
    at = open_page("pages/interpolate.py", lib["vae2"])
    linear = path_points(at)
    at.radio(key="interp_method").set_value("spherical").run()
    assert not at.exception
    spherical = path_points(at)
    np.testing.assert_allclose(spherical[[0, -1]], linear[[0, -1]], atol=1e-4)
    assert not np.allclose(spherical, linear, atol=1e-4)
    assert "spherical" in at.image[0].captions[0]


def test_interpolate_by_index_and_from_the_map(lib):
    at = open_page("pages/interpolate.py", lib["ae2"])
    at.radio(key="interp_source").set_value("index").run()
    at.number_input(key="interp_from_index").set_value(7).run()
    assert not at.exception
    assert "test #7" in at.subheader[0].value
    at.radio(key="interp_source").set_value("map").run()
    assert not at.exception and "Latent map" in at.info[0].value  # nothing picked yet: a call to action
    at.session_state["picked_digits"] = [11, 42, 5]
    at.run()
    assert not at.exception
    far = farthest(lib["ae2"], [11, 42, 5])  # the two most different picks are proposed
    ends = (at.selectbox(key="interp_from_pick").value, at.selectbox(key="interp_to_pick").value)
    assert ends == far and f"From test #{far[0]} " in at.subheader[0].value
    assert at.query_params["mode"] == "map" and at.query_params["picks"] == "5,11,42"
    at.selectbox(key="interp_to_pick").set_value(11).run()  # any two can be chosen
    assert f"to test #11 " in at.subheader[0].value and at.query_params["to"] == "11"


def farthest(model_id: str, picks: list[int]) -> tuple[int, int]:
    """The two picks farthest apart in the model's latent space, worked out here from scratch."""
    from tests.conftest import DATA_ROOT
    from vae.checkpoint import load_checkpoint
    from vae.data import load_dataset
    from vae.latent import encode

    model, _ = load_checkpoint(ModelLibrary(default_library_dir()).get(model_id).path)
    z = encode(model, load_dataset("mnist", DATA_ROOT, download=False).x_test[picks])
    pairs = [(a, b) for a in range(len(picks)) for b in range(a + 1, len(picks))]
    a, b = max(pairs, key=lambda ab: float(((z[ab[0]] - z[ab[1]]) ** 2).sum()))
    return picks[a], picks[b]


def open_link(page: str, params: dict, model_id: str | None = None) -> AppTest:
    """A fresh browser opening `page` at an address with `params` (a lesson link)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    if model_id is not None:
        at.session_state["active_model"] = model_id
    at.run()
    at.query_params.update(params)
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_interpolate_link_opens_its_view_and_follows_the_widgets(lib):
    at = open_link("pages/interpolate.py", {"model": lib["vae2"], "mode": "index", "from": "7", "to": "9",
                                            "steps": "5", "path": "spherical"})
    assert at.radio(key="interp_source").value == "index" and at.radio(key="interp_method").value == "spherical"
    assert at.slider(key="interp_steps").value == 5 and at.number_input(key="interp_to_index").value == 9
    assert "5 steps, spherical, from test #7" in at.image[0].captions[0]
    assert not at.info  # nothing to say about a good link
    at.slider(key="interp_steps").set_value(12).run()
    assert at.query_params == {"model": lib["vae2"], "mode": "index", "steps": "12", "path": "spherical",
                               "from": "7", "to": "9"}


def test_interpolate_bad_link_falls_back_with_a_notice(lib):
    at = open_link("pages/interpolate.py", {"model": "no-such-model", "mode": "zigzag", "steps": "99",
                                            "path": "curvy", "from": "-1", "picks": "11,42"})
    assert at.radio(key="interp_source").value == "class" and at.slider(key="interp_steps").value == 10
    assert at.radio(key="interp_method").value == "linear"
    assert "could not be used" in at.info[0].value and "mode" in at.info[0].value and "steps" in at.info[0].value
    assert any("no-such-model" in t.value.replace("\\", "") for t in at.toast)  # the unknown model, in a toast
    assert at.query_params["model"] != "no-such-model" and at.query_params["mode"] == "class"


def test_interpolate_link_on_picks(lib):
    at = open_link("pages/interpolate.py", {"mode": "map", "picks": "5,11,42", "from": "11", "to": "5"},
                   lib["ae2"])
    assert at.session_state["picked_digits"] == [5, 11, 42]
    assert (at.selectbox(key="interp_from_pick").value, at.selectbox(key="interp_to_pick").value) == (11, 5)
    at = open_link("pages/interpolate.py", {"mode": "map", "picks": "5,11,42", "from": "12"}, lib["ae2"])
    assert at.selectbox(key="interp_from_pick").value == farthest(lib["ae2"], [5, 11, 42])[0]  # 12 is no pick
    assert "from" in at.info[0].value


def test_compare_link_opens_its_view(lib):
    at = open_link("pages/compare.py", {"pair": "any", "left": lib["ae2"], "right": lib["vae2"], "region": "codes",
                                        "half": "2.5", "grid": "8", "seed": "5", "from": "7", "to": "9",
                                        "path": "spherical"})
    pair = (at.selectbox(key="compare_left").value, at.selectbox(key="compare_right").value)
    assert pair == (lib["ae2"], lib["vae2"])
    assert at.radio(key="compare_region").value == "codes" and at.slider(key="compare_grid").value == 8
    assert at.slider(key="compare_extent").value == 2.5 and at.number_input(key="compare_seed").value == 5
    assert at.number_input(key="compare_from").value == 7 and at.radio(key="compare_method").value == "spherical"
    assert any("from test #7" in h.value for h in at.subheader) and not at.info
    at.slider(key="compare_grid").set_value(10).run()
    assert at.query_params["grid"] == "10" and at.query_params["left"] == lib["ae2"]


def test_compare_bad_link_falls_back_to_the_default_pair(lib):
    at = open_link("pages/compare.py", {"pair": "any", "left": "gone", "right": lib["vae5"], "grid": "99",
                                        "half": "x", "seed": "-4"})
    left = at.selectbox(key="compare_left").value
    assert left != "gone" and at.selectbox(key="compare_right").value == lib["vae5"]
    assert at.slider(key="compare_grid").value == 14 and at.slider(key="compare_extent").value == 3.0
    notice = at.info[0].value
    assert all(name in notice for name in ("left", "grid", "half", "seed"))
    assert at.query_params["left"] == left and at.query_params["grid"] == "14"


def test_compare_shows_model_names_as_plain_text(lib):
    library = ModelLibrary(default_library_dir())
    odd = library.save(build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(32,)), seed=1),
                       name="**big** [x](http://e.org) <b>", dataset="mnist").id
    at = open_link("pages/compare.py", {"pair": "any", "left": odd, "right": lib["vae2"]})
    (card,) = [m.value for m in at.markdown if m.value.startswith("**AE**")]
    assert "\\*\\*big\\*\\*" in card and "\\[x\\]" in card and "\\<b\\>" in card


def test_gallery_link(lib):
    at = open_link("pages/gallery.py", {"model": lib["vae2"], "seed": "5", "count": "16", "first": "32",
                                        "worst": "8"})
    assert at.number_input(key="gallery_seed").value == 5 and at.slider(key="gallery_count").value == 16
    assert at.number_input(key="gallery_first").value == 32 and at.slider(key="gallery_worst").value == 8
    at = open_link("pages/gallery.py", {"model": lib["vae2"], "count": "9", "first": "99999"})
    assert at.slider(key="gallery_count").value == 48 and at.number_input(key="gallery_first").value == 0
    assert "count" in at.info[0].value and "first" in at.info[0].value


def test_compare_measures_both_models_and_warns_on_mismatch(lib):
    at = open_page("pages/compare.py")
    at.radio(key="compare_pair").set_value("any").run()
    at.selectbox(key="compare_left").set_value(lib["ae2"]).run()
    at.selectbox(key="compare_right").set_value(lib["vae2"]).run()
    assert not at.exception
    assert not at.warning  # same architecture and latent size
    shares = [m for m in at.main.metric if "nats" not in m.label]
    assert len(shares) == 12  # six per model: grid, empty, empty -> digit, prior, fitted, walks
    for m in shares:
        assert m.value == "–" or (m.value.endswith("%") and 0 <= int(m.value[:-1]) <= 100)
    assert sum(m.value.endswith("%") for m in shares) >= 10  # only "empty points -> digit" may have none
    nats = [m.label for m in at.main.metric if "nats" in m.label]
    assert nats == ["Recon. nats", "Recon. nats", "KL nats", "−ELBO nats"]  # an AE has no ELBO
    assert any("An AE has no prior, so no KL term and no ELBO" in c.value for c in at.caption)
    assert any(c.value.startswith("Reference: its reconstructions") for c in at.caption)
    assert any(m.value.startswith("**Measured fairly") for m in at.markdown)
    at.selectbox(key="compare_right").set_value(lib["vae5"]).run()
    assert not at.exception
    assert "latent size (2 vs 5)" in at.warning[0].value


@pytest.fixture
def bundled_pairs():
    """The bundled models and the real classifier (skip where they are not built)."""
    from vae.compare import BUNDLED_PAIRS
    from vae.paths import BUNDLED_MODELS

    if not vae.classifier.DEFAULT_PATH.is_file() or not all(
            (BUNDLED_MODELS / f"{i}.safetensors").is_file() for pair in BUNDLED_PAIRS.values() for i in pair):
        pytest.skip("the bundled models or classifier are not built yet (bash assets/build.sh)")
    st.cache_data.clear()
    st.cache_resource.clear()
    yield BUNDLED_PAIRS
    st.cache_data.clear()
    st.cache_resource.clear()


def test_compare_explanation_follows_the_bundled_pairs_numbers(bundled_pairs):
    """The 16-d pair (the default) shows the textbook gap in samples; the 2-d pair shows it only in samples
    fitted to each model's codes, and the page says what its numbers say, not the textbook picture."""
    at = open_page("pages/compare.py")
    assert at.radio(key="compare_pair").value == "16-d" and at.radio(key="compare_region").value == "sd"
    text = [m.value for m in at.markdown]
    head = next(t for t in text if t.startswith("**Measured fairly"))
    assert "the VAE decodes more to digits on samples from a Gaussian fitted" in head
    assert "no more holes" not in head
    assert any("rarely draws a digit" in t for t in text)  # N(0, I) is a speck of an AE's 16-d space
    assert not any("Why the AE's space has holes and the VAE's does not" in t for t in text)
    assert not any("bundled 2-d pair" in c.value for c in at.caption)

    at.radio(key="compare_pair").set_value("2-d").run()
    assert not at.exception
    text = [m.value for m in at.markdown]
    head = next(t for t in text if t.startswith("**Measured fairly"))
    shares = {m.label: [] for m in at.main.metric}
    for m in at.main.metric:
        shares[m.label].append(m.value)
    (ae_grid, vae_grid), (ae_fit, vae_fit) = ([int(v.rstrip("%")) for v in shares[k]]
                                              for k in ("Grid → digit", "Fitted → digit"))
    # the bundled 2-d pair (rebuilt with its movie): the VAE decodes clearly more of its fitted samples,
    # and the two are level on the region's grid; the headline says exactly that, and nothing more
    assert vae_fit - ae_fit >= 10 and abs(vae_grid - ae_grid) <= 2
    assert "the VAE decodes more to digits on samples from a Gaussian fitted" in head
    assert "about the same on the region's grid" in head and "no more holes" not in head
    assert "\n\nThe AE's codes leave more of the region empty" in head  # the verdict is one Markdown block
    assert not any("does not show the textbook gap" in c.value for c in at.caption)  # its numbers show one
    metrics = {n: load_checkpoint(ROOT / "assets" / "models" / f"{n}.safetensors")[1]["metrics"]
               for n in ("ae-2d", "vae-2d")}
    assert shares["Recon. nats"] == [f"{metrics['ae-2d']['recon_nats']:.1f}", f"{metrics['vae-2d']['recon_nats']:.1f}"]
    assert shares["−ELBO nats"] == [f"{metrics['vae-2d']['test_nats']:.1f}"]


def test_compare_same_model_twice_asks_for_two(lib):
    at = open_page("pages/compare.py")
    at.radio(key="compare_pair").set_value("any").run()
    at.selectbox(key="compare_left").set_value(lib["vae2"]).run()
    at.selectbox(key="compare_right").set_value(lib["vae2"]).run()
    assert not at.exception and "two different models" in at.info[0].value


def test_compare_region_box_and_codes(lib):
    at = open_page("pages/compare.py")
    at.radio(key="compare_pair").set_value("any").run()
    at.selectbox(key="compare_left").set_value(lib["ae2"]).run()
    at.selectbox(key="compare_right").set_value(lib["vae2"]).run()
    assert at.radio(key="compare_region").value == "sd"  # the fair one: each model's own standard deviations
    assert at.slider(key="compare_sds").value == 2.0 and at.slider(key="compare_extent").disabled
    sd_rects = [map_data(at, f"compare_map_{k}")["region"] for k in (0, 1)]
    for rect, key in zip(sd_rects, ("ae2", "vae2")):  # ± 2 sd of each model's own test codes around their mean
        model = load_checkpoint(ModelLibrary(default_library_dir()).get(lib[key]).path)[0]
        z = encode(model, bundled_test_set("mnist").x_test).astype(np.float64)
        np.testing.assert_allclose(rect, np.c_[z.mean(0) - 2 * z.std(0), z.mean(0) + 2 * z.std(0)], rtol=1e-3,
                                   atol=1e-4)
    at.slider(key="compare_sds").set_value(1.0).run()
    half = map_data(at, "compare_map_0")["region"]
    assert np.diff(half[0])[0] == pytest.approx(np.diff(sd_rects[0][0])[0] / 2, rel=1e-4)
    at.radio(key="compare_region").set_value("box").run()
    at.slider(key="compare_extent").set_value(2.0).run()
    assert not at.exception and at.slider(key="compare_sds").disabled
    rect = map_data(at, "compare_map_0")["region"]
    assert rect[0] == [-2.0, 2.0]  # around the origin of a 2-d model's own plane
    at.radio(key="compare_region").set_value("codes").run()
    assert not at.exception
    rects = [map_data(at, f"compare_map_{k}")["region"] for k in (0, 1)]
    assert rects[0] != rects[1] and rects[0][0] != [-2.0, 2.0]  # each model's own range


def test_pages_without_the_classifier_show_images_and_a_sentence(lib, monkeypatch):
    def missing():
        raise CheckpointError("The digit classifier is missing.")

    monkeypatch.setattr(vae.classifier, "load_classifier", missing)
    for page in PAGES:
        at = open_page(page, lib["vae2"])
        assert any("classifier is missing" in c.value for c in at.caption)
        assert at.image


def test_gallery_controls(lib):
    at = open_page("pages/gallery.py", lib["vae2"])
    assert len(at.main.metric) == 2
    at.slider(key="gallery_worst").set_value(8).run()
    assert not at.exception
    worst = next(im for im in at.image if len(im.captions) > 1)
    assert len(worst.captions) == 8 and "nats" in worst.captions[0]
    at.number_input(key="gallery_first").set_value(32).run()
    at.number_input(key="gallery_seed").set_value(5).run()
    assert not at.exception


def test_scores_only_for_digits(lib):
    from ui import state

    clf, why = state.scorer("fashion")
    assert clf is None and "fashion" in why
    clf, why = state.scorer("mnist")
    assert clf is not None and why == ""


def test_walk_colours_each_step_by_its_score():
    from ui.explore import BAD, GOOD, walk

    w = walk(np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]), np.array([0.95, 0.3, 0.81]), threshold=0.8)
    assert w["x"] == [0.0, 0.5, 1.0] and w["y"] == [1.0, 0.5, 0.0]
    assert w["colors"] == [GOOD, BAD, GOOD]
    assert w["text"][1] == "step 2 of 3 · looks like a digit: 0.30"
    plain = walk(np.zeros((4, 2)))  # no classifier: no scores, one colour
    assert len(set(plain["colors"])) == 1 and plain["text"][3] == "step 4 of 4"
