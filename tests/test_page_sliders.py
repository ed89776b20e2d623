"""The Sliders page under AppTest: every start option, reset, many dimensions, AE and VAE, picks.

The live component itself runs only in a browser (tests/e2e/test_sliders_e2e.py); here its
payload is read back from the page's element tree: the start code, the dims, the reset token.
"""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from vae.checkpoint import ModelLibrary, default_library_dir

from vae.export import read_header
from vae.config import ModelConfig
from vae.models import build_model

from vae.paths import ROOT

APP = str(ROOT / "app.py")
PAGE = "pages/sliders.py"


@pytest.fixture(autouse=True)
def fresh_caches(data_root):
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def saved(kind="vae", arch="mlp", d=16) -> str:
    """A tiny untrained model in the test's private library; returns its id."""
    model = build_model(ModelConfig(kind=kind, arch=arch, latent_dim=d, hidden=(32, 16)), seed=0)
    return ModelLibrary(default_library_dir()).save(model, name=f"tiny {kind} {arch} {d}-d", dataset="mnist").id


def open_page(model_id=None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if model_id:
        at.session_state["active_model"] = model_id
    for k, v in state.items():
        at.session_state[k] = v
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception[0].value if at.exception else ""
    return at


def payload(at) -> dict:
    (el,) = at.get("bidi_component")
    return read_header(el.proto.bytes)[0]


def strips(at) -> int:
    return len(at.image) - 1  # one image is the closest real digit


def test_bundled_2d_model_defaults_to_test_digit_zero():
    at = open_page()
    h = payload(at)
    assert h["dims"] == [0, 1] and len(h["start"]) == 2 and len(h["ranges"]) == 2
    assert all(lo <= -3 and hi >= 3 for lo, hi in h["ranges"])  # a VAE's sliders cover the prior
    assert not at.multiselect  # two dims: every one has a slider
    assert strips(at) == 2
    assert at.radio(key="sliders_start").value == "digit"


def test_16d_shows_the_8_most_informative_and_others_on_request():
    at = open_page(saved("vae", "mlp", 16))
    h = payload(at)
    assert len(h["dims"]) == 8 and len(h["start"]) == 16
    (ms,) = at.multiselect
    assert ms.key.startswith("sliders_dims_") and len(ms.value) == 8
    ms.set_value([3, 15, 0]).run()
    assert not at.exception
    assert sorted(payload(at)["dims"]) == [0, 3, 15] and strips(at) == 3
    ms.set_value([]).run()
    assert not at.exception and not at.get("bidi_component")
    assert any("at least one dimension" in i.value for i in at.info)


@pytest.mark.parametrize("kind,arch,d", [("ae", "conv", 1), ("ae", "mlp", 16), ("vae", "conv", 3),
                                         ("vae", "mlp", 128)])
def test_ae_and_vae_any_size(kind, arch, d):
    at = open_page(saved(kind, arch, d))
    h = payload(at)
    assert len(h["start"]) == d and len(h["dims"]) == min(d, 8)
    assert [l["type"] for l in h["layers"]][-1] == ("convT" if arch == "conv" else "linear")
    if kind == "ae":  # no prior: ranked and ranged by the test codes' spread
        assert any("span of the test codes" in c.value for c in at.caption)
        assert all(" · var " in label for label in h["labels"])
    else:  # a prior N(0, I): ranked by KL, ranged by the prior
        assert any("the bulk of the prior N(0, I)" in c.value for c in at.caption)
        assert all(label.endswith(" nats") for label in h["labels"])


@pytest.mark.parametrize("source", ["digit", "class", "origin", "prior"])
def test_every_start(source):
    at = open_page(saved("vae", "mlp", 4))
    first = payload(at)
    at.radio(key="sliders_start").set_value(source).run()
    assert not at.exception
    h = payload(at)
    if source == "origin":
        assert h["start"] == [0.0] * 4
    if source == "class":
        at.selectbox(key="sliders_class").set_value(7).run()
        h7 = payload(at)
        assert h7["start"] != h["start"] and h7["token"] != h["token"]
    if source == "prior":
        at.number_input(key="sliders_seed").set_value(3).run()
        assert payload(at)["start"] != h["start"]
    if source == "digit":
        at.number_input(key="sliders_index").set_value(9999).run()
        assert not at.exception and payload(at)["start"] != first["start"]


def test_reset_gives_a_new_token_for_the_same_start():
    at = open_page()
    before = payload(at)
    at.button(key="sliders_reset").click().run()
    assert not at.exception
    after = payload(at)
    assert after["start"] == before["start"] and after["token"] != before["token"]
    assert at.session_state["sliders_resets"] == 1


def test_picks_from_the_map_are_a_start_and_the_nearest_digit_can_be_sent():
    at = open_page(picked_digits=[5, 9])
    assert at.radio(key="sliders_start").value == "picked"
    assert at.selectbox(key="sliders_pick").value == 5
    at.selectbox(key="sliders_pick").set_value(9).run()
    h = payload(at)
    at.radio(key="sliders_start").set_value("digit").run()
    at.number_input(key="sliders_index").set_value(9).run()
    assert payload(at)["start"] == h["start"]  # the same code either way
    at.number_input(key="sliders_index").set_value(0).run()
    send = at.button(key="sliders_send")
    assert not send.disabled  # test #0 is its own nearest code, and not yet a pick
    send.click().run()
    assert not at.exception
    assert at.session_state["picked_digits"] == [5, 9, 0]
    assert at.button(key="sliders_send").disabled


def test_no_model_is_a_call_to_action(monkeypatch, tmp_path):
    monkeypatch.setattr("ui.state.BUNDLED_MODELS", tmp_path / "none")
    at = open_page()
    assert not at.get("bidi_component")
    assert any("No model" in i.value for i in at.info)
