"""Interpolate from a sent code (a drawing, a map point) to a test digit, under AppTest: the walk starts
exactly at the sent code and ends at the chosen digit's code, by class or by index; a code of another
model is not offered."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests import apptest

from vae.checkpoint import ModelLibrary, default_library_dir
from vae.paths import BUNDLED_MODELS, ROOT

APP = str(ROOT / "app.py")
PAGE = "pages/interpolate.py"

pytestmark = pytest.mark.usefixtures("fresh_app")


def sent(model_id: str, z, label="your drawing") -> tuple:
    fp = ModelLibrary(default_library_dir(), BUNDLED_MODELS).get(model_id).fingerprint
    return ([float(v) for v in z], label, fp)


def open_page(model_id="vae-2d", **state) -> AppTest:
    return apptest.open_page(PAGE, model_id, **state)


def walk(at) -> dict:
    (data,) = [json.loads(json.loads(el.proto.json)["json"]) for el in at.get("bidi_component")
               if "map_canvas" in el.proto.component_name]
    return data["path"]


def codes(model_id: str) -> tuple[np.ndarray, np.ndarray]:
    from ui.state import active_codes, get_model, test_data

    a = get_model(model_id)
    return active_codes(a), test_data(a.dataset).y_test.numpy()


def test_the_walk_starts_at_the_sent_code_and_ends_at_a_class_representative():
    from vae.compare import representative

    z0 = [2.5, -1.5]
    at = open_page(sent_code=sent("vae-2d", z0))
    assert at.radio(key="interp_source").options[-1] == "from your drawing"
    at.radio(key="interp_source").set_value("sent").run()
    assert not at.exception
    at.selectbox(key="interp_sent_class").set_value(6).run()
    z, labels = codes("vae-2d")
    i1 = representative(z, labels, 6)
    path = walk(at)
    n = at.slider(key="interp_steps").value
    assert len(path["x"]) == n
    np.testing.assert_allclose([path["x"][0], path["y"][0]], z0, atol=1e-4)  # the native plane: the code itself
    np.testing.assert_allclose([path["x"][-1], path["y"][-1]], z[i1], atol=1e-4)
    assert at.subheader[0].value == f"From your drawing to test #{i1} (a 6)"
    assert at.query_params["mode"] == "sent" and at.query_params["end"] == "class" and at.query_params["to"] == "6"
    assert "from" not in at.query_params


def test_the_walk_can_end_at_a_test_digit_by_index():
    z0 = [0.0, 3.0]
    at = open_page(sent_code=sent("vae-2d", z0))
    at.radio(key="interp_source").set_value("sent").run()
    at.radio(key="interp_sent_end").set_value("index").run()
    at.number_input(key="interp_sent_index").set_value(123).run()
    assert not at.exception
    z, _ = codes("vae-2d")
    path = walk(at)
    np.testing.assert_allclose([path["x"][-1], path["y"][-1]], z[123], atol=1e-4)
    assert at.subheader[0].value.startswith("From your drawing to test #123")
    assert at.query_params["end"] == "index" and at.query_params["to"] == "123"
    assert len(at.image) >= 2  # the strip, and the decoded sent code beside the test digit


def test_a_16d_walk_from_a_sent_code_scores_every_step():
    z, _ = codes("vae-16d")
    at = open_page("vae-16d", sent_code=sent("vae-16d", z[7] + 0.5), interp_source="sent")
    at.radio(key="interp_source").set_value("sent").run()
    assert not at.exception
    assert any("look like a confident digit" in c.value for c in at.caption)
    assert len(walk(at)["x"]) == at.slider(key="interp_steps").value


def test_a_sent_code_of_another_model_is_not_offered():
    at = open_page("vae-2d", sent_code=sent("vae-16d", np.zeros(16)))
    assert at.radio(key="interp_source").options == ["by class", "by test index", "from the picks"]
    assert any("belongs to another model" in c.value for c in at.caption)


def test_a_link_to_the_sent_mode_without_a_sent_code_falls_back_with_a_notice():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.query_params.update({"model": "vae-2d", "mode": "sent", "to": "3"})
    at.switch_page(PAGE)
    at.run()
    assert not at.exception
    assert at.radio(key="interp_source").value == "class"
    assert any("mode" in i.value and "sent" in i.value for i in at.info)
