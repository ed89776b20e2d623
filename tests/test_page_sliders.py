"""The Sliders page under AppTest: every start option, reset, many dimensions, AE and VAE, picks.

The live component itself runs only in a browser (tests/e2e/test_sliders_e2e.py); here its
payload is read back from the page's element tree: the start code, the dims, the reset token.
"""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests import apptest

from vae.checkpoint import ModelLibrary, default_library_dir

from vae.export import read_header
from vae.config import ModelConfig
from vae.models import build_model

from vae.paths import BUNDLED_MODELS, ROOT

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
    return apptest.open_page(PAGE, model_id, **state)


def live(at) -> list:
    """The live sliders component on the page (the other component is the Copy link button)."""
    return [el for el in at.get("bidi_component") if el.proto.component_name == "latent_lab.live_sliders"]


def payload(at) -> dict:
    (el,) = live(at)
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
    assert not at.exception and not live(at)
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
    assert at.query_params["start"] == "picked" and at.query_params["digit"] == "9"
    assert at.query_params["picks"] == "5,9"
    at.radio(key="sliders_start").set_value("digit").run()
    at.number_input(key="sliders_index").set_value(9).run()
    assert payload(at)["start"] == h["start"]  # the same code either way
    assert "picks" not in at.query_params  # a test digit's view does not need them
    at.number_input(key="sliders_index").set_value(0).run()
    send = at.button(key="sliders_send")
    assert not send.disabled
    send.click().run()  # opens Interpolate on the walk from the start (#0) to the closest digit (#0 itself)
    assert not at.exception
    assert at.session_state["picked_digits"] == [5, 9, 0]  # and the digit joins the picks
    assert at.title[0].value.endswith("Interpolate")
    assert at.radio(key="interp_source").value == "index"
    assert (at.number_input(key="interp_from_index").value, at.number_input(key="interp_to_index").value) == (0, 0)
    assert at.query_params["mode"] == "index" and at.query_params["from"] == "0" and at.query_params["to"] == "0"


def test_send_to_interpolate_walks_from_the_start_to_the_released_code():
    at = open_page()
    at.radio(key="sliders_start").set_value("class").run()
    at.selectbox(key="sliders_class").set_value(3).run()
    at.button(key="sliders_send").click().run()
    assert not at.exception
    frm, to = at.query_params["from"], at.query_params["to"]
    # from: the test digit nearest the class mean; to: the one nearest the sliders (still at the start)
    assert frm == to and at.session_state["picked_digits"] == [int(to)]
    assert at.radio(key="interp_source").value == "index"


def test_a_link_opens_the_sliders_as_they_were():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.query_params.update({"model": "vae-2d", "start": "digit", "digit": "42", "z": "1.5,-0.25"})
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.radio(key="sliders_start").value == "digit" and at.number_input(key="sliders_index").value == 42
    assert payload(at)["start"] == [1.5, -0.25]  # the link's slider values, shown first
    assert at.query_params["z"] == "1.5,-0.25" and at.query_params["digit"] == "42"
    assert any("to where you released the sliders" in m.value for m in at.markdown)
    at.button(key="sliders_reset").click().run()  # back to the start: the test digit's own code
    assert payload(at)["start"] != [1.5, -0.25] and "z" not in at.query_params
    at.radio(key="sliders_start").set_value("prior").run()
    at.number_input(key="sliders_seed").set_value(7).run()
    assert at.query_params["start"] == "prior" and at.query_params["seed"] == "7" and "digit" not in at.query_params


def test_bad_slider_links_fall_back_with_a_notice():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.query_params.update({"start": "picked", "digit": "123456", "z": "1,nan", "picks": "oops"})
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.radio(key="sliders_start").value == "digit" and at.number_input(key="sliders_index").value == 0
    (notice,) = at.info
    assert "could not be used" in notice.value and "start" in notice.value and "picks" in notice.value
    assert at.query_params["start"] == "digit" and at.query_params["digit"] == "0" and "z" not in at.query_params


def test_dims_of_a_big_model_are_in_the_link():
    model_id = saved("vae", "mlp", 16)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["active_model"] = model_id
    at.run()
    at.query_params.update({"dims": "3,15,0"})
    at.switch_page(PAGE).run()
    assert not at.exception
    assert sorted(payload(at)["dims"]) == [0, 3, 15] and at.query_params["model"] == model_id
    at.multiselect[0].set_value([1, 2]).run()
    assert sorted(int(v) for v in at.query_params["dims"].split(",")) == [1, 2]


def test_no_model_is_a_call_to_action(monkeypatch, tmp_path):
    monkeypatch.setattr("ui.state.BUNDLED_MODELS", tmp_path / "none")
    at = open_page()
    assert not live(at)
    assert any("No model" in i.value for i in at.info)


def sent(model_id: str, z, label="your drawing") -> tuple:
    """A code sent to the Sliders as ui.state.set_sent_code keeps it."""
    fp = ModelLibrary(default_library_dir(), BUNDLED_MODELS).get(model_id).fingerprint
    return ([float(v) for v in z], label, fp)


def test_a_sent_code_is_the_first_start_and_the_sliders_start_there():
    at = open_page(sent_code=sent("vae-2d", [1.25, -0.5]))
    start = at.radio(key="sliders_start")
    assert start.value == "sent" and start.options[0] == "your drawing"
    assert payload(at)["start"] == [1.25, -0.5]
    assert at.query_params["start"] == "sent"
    assert any("The code of your drawing, sent from another page" in c.value for c in at.caption)
    at.button(key="sliders_send").click().run()  # a walk from the sent code itself to the closest digit
    assert not at.exception
    assert at.title[0].value.endswith("Interpolate")
    assert at.radio(key="interp_source").value == "sent" and at.radio(key="interp_sent_end").value == "index"
    assert at.query_params["mode"] == "sent" and "from" not in at.query_params
    at = open_page(sent_code=sent("vae-2d", [1.25, -0.5]))
    at.radio(key="sliders_start").set_value("digit").run()  # the other starts are still there
    assert not at.exception and payload(at)["start"] != [1.25, -0.5]


def test_a_sent_code_far_out_widens_the_slider_ranges():
    at = open_page("ae-2d", sent_code=sent("ae-2d", [500.0, -400.0]))
    h = payload(at)
    assert h["start"] == [500.0, -400.0]
    (lo0, hi0), (lo1, hi1) = h["ranges"]
    assert lo0 <= 500 <= hi0 and lo1 <= -400 <= hi1


def test_a_sent_code_of_another_model_is_not_offered():
    at = open_page("vae-2d", sent_code=sent("ae-2d", [1.0, 2.0], "map point (1, 2)"))
    assert at.radio(key="sliders_start").options == ["test digit", "class mean", "origin", "prior sample"]
    assert any("belongs to another model" in c.value for c in at.caption)
    assert payload(at)["start"] != [1.0, 2.0]


def test_a_sent_code_label_is_plain_text():
    at = open_page(sent_code=sent("vae-2d", [0.5, 0.5], "**bold** [link](http://x)"))
    label = at.radio(key="sliders_start").options[0]
    assert "**" not in label.replace("\\*", "") and "\\[" in label
