"""The Draw page under AppTest: no drawing yet, a drawing given as the pad's report (the pad itself runs
only in a browser: tests/e2e/test_draw_e2e.py), its reading, its exact or approximate place on every
kind of map, bad drawings as sentences, Clear, the send buttons, and the same drawing in two models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests import apptest

from ui.draw_pad import MAX_TEXT, parse_report
from vae.drawing import prepare_strokes
from vae.images import to_uint8
from vae.paths import ROOT

APP = str(ROOT / "app.py")
PAGE = "pages/draw.py"
SEVEN = [[[80, 60], [200, 60], [120, 230]]]
FOUR = [[[150, 40], [70, 160], [210, 160]], [[170, 100], [170, 250]]]

pytestmark = pytest.mark.usefixtures("fresh_app")


class Pad:
    """Stands in for the browser: what the pad reports on the next run (None: nothing yet)."""

    def __init__(self, monkeypatch):
        from ui import draw_pad

        self.report = None
        self.mounted: list[dict] = []
        real = draw_pad.draw_pad

        def fake(key, init=None, size=280):
            self.mounted.append({"key": key, "init": init})
            real(key, init, size)
            return None if self.report is None else dict(self.report)

        monkeypatch.setattr(draw_pad, "draw_pad", fake)

    def draw(self, strokes, size=280):
        self.report = {"size": size, "strokes": strokes, "rev": 1}


@pytest.fixture
def pad(monkeypatch):
    return Pad(monkeypatch)


def open_page(model_id=None, **state) -> AppTest:
    return apptest.open_page(PAGE, model_id, **state)


def captions(at) -> str:
    return " | ".join(c.value for c in at.caption)


def map_data(at) -> dict:
    (data,) = [json.loads(json.loads(el.proto.json)["json"]) for el in at.get("bidi_component")
               if "map_canvas" in el.proto.component_name]
    return data


def pad_data(at) -> dict:
    (data,) = [json.loads(json.loads(el.proto.json)["json"]) for el in at.get("bidi_component")
               if el.proto.component_name == "latent_lab.draw_pad"]
    return data


def code_of(model_id: str, strokes) -> np.ndarray:
    """The drawing's code, computed here without the page: prepared, as uint8, encoded."""
    from ui.state import get_model
    from vae.latent import encode

    return encode(get_model(model_id).model, torch.from_numpy(to_uint8(prepare_strokes(strokes))[None]))[0]


def test_without_a_drawing_the_page_says_what_to_do(pad):
    at = open_page()
    assert at.title[0].value.endswith("Draw a digit")
    assert any("Draw a digit on the pad" in i.value for i in at.info)
    p = pad_data(at)
    assert p == {"size": 280, "pen": 20.0, "init": None}
    data = map_data(at)
    assert data["marks"] == [] and data["n"] == 10_000 and data["pick"] is False
    assert not at.button  # nothing to send yet
    assert at.query_params["method"] == "native"


def test_a_drawing_shows_its_reading_neighbours_and_exact_place(pad):
    at = open_page()
    pad.draw(SEVEN)
    at.run()
    assert not at.exception
    text = captions(at)
    assert "read by the classifier as a 7" in text and "Its reconstruction by VAE 2" in text
    neighbours = [c.value for c in at.caption if c.value.startswith("#")]
    assert len(neighbours) == 1 and neighbours[0].count("#") == 8
    z = code_of("vae-2d", SEVEN)
    (mark,) = map_data(at)["marks"]
    assert mark["label"] == "your drawing"
    np.testing.assert_allclose([mark["x"], mark["y"]], z[:2], atol=1e-5)  # the native plane: exactly its code
    assert "Placed exactly" in text
    assert any(m.value.startswith("**Its code** (") for m in at.markdown)
    # from the next run on, the pad gets the drawing back, to show it when the page is opened again
    at.run()
    assert pad.mounted[-1]["init"] == [[[80.0, 60.0], [200.0, 60.0], [120.0, 230.0]]]
    assert at.session_state["draw_drawing"]["problem"] is None


def test_the_nearest_digits_are_nearest_in_latent_space(pad):
    from ui.state import active_codes, get_model

    at = open_page("vae-16d")
    pad.draw(FOUR)
    at.run()
    shown = [int(t.split(":")[0][1:]) for c in at.caption if c.value.startswith("#") for t in c.value.split(" · ")]
    z = code_of("vae-16d", FOUR)
    d = np.linalg.norm(active_codes(get_model("vae-16d")) - z, axis=1)
    assert shown == np.argsort(d)[:8].tolist()


def test_pca_places_exactly_where_the_map_service_puts_codes(pad):
    """A code's place by PCA's transform is the map's own: a test digit's code lands on its own dot."""
    from ui import drawing, map_view
    from ui.state import active_codes, get_model

    at = open_page("vae-16d")
    assert at.radio(key="draw_method_proj").value == "pca"
    pad.draw(SEVEN)
    at.run()
    (mark,) = map_data(at)["marks"]
    a = get_model("vae-16d")
    codes = active_codes(a)
    y = map_view.request(a, codes, "pca", {}).embedding
    for i in (0, 17, 9999):
        spot = drawing.place(a, codes, codes[i], "pca", {})
        assert spot.exact
        np.testing.assert_allclose(spot.point, y[i], atol=1e-4)
    expected = drawing.place(a, codes, code_of("vae-16d", SEVEN), "pca", {}).point
    np.testing.assert_allclose([mark["x"], mark["y"]], expected, atol=1e-5)


def test_tsne_places_among_the_nearest_codes_and_says_so(pad):
    from ui import drawing, map_view
    from ui.state import active_codes, get_model, library
    from vae.maps.projection import default_params
    from vae.maps.service import MapStore
    from vae.paths import cache_dir

    fp = library().get("ae-16d").fingerprint
    stand_in = np.random.default_rng(0).standard_normal((10_000, 2)).astype(np.float32)
    MapStore(cache_dir() / "maps").put(fp, "tsne", default_params("tsne"), stand_in)  # where none is bundled
    at = open_page("ae-16d")
    at.radio(key="draw_method_proj").set_value("tsne").run()
    pad.draw(SEVEN)
    at.run()
    assert not at.exception
    assert "Approximately placed among its nearest codes" in captions(at)
    assert "t-SNE has no exact way to add a point" in captions(at)
    (mark,) = map_data(at)["marks"]
    assert np.isfinite([mark["x"], mark["y"]]).all()
    a = get_model("ae-16d")
    codes = active_codes(a)
    y = map_view.request(a, codes, "tsne", default_params("tsne")).embedding
    spot = drawing.place(a, codes, codes[42], "tsne", default_params("tsne"))
    assert not spot.exact
    np.testing.assert_allclose(spot.point, y[42], atol=1e-5)  # a code of the set lands on its own dot


def test_the_map_page_s_method_is_the_default(pad):
    at = open_page("vae-16d", links_last={"map": {"method": "umap", "n_neighbors": "30"}})
    assert at.radio(key="draw_method_proj").value == "umap"


@pytest.mark.parametrize("strokes, words", [([[[100, 100]]], "only a dot"), ([[[10, 10], [12, 11]]], "only a dot"),
                                            ([[[1, float("nan")], [5, 5]]], "not finite")])
def test_a_bad_drawing_is_one_sentence(pad, strokes, words):
    at = open_page()
    pad.draw(strokes)
    at.run()
    assert not at.exception
    (warning,) = at.warning
    assert words in warning.value
    assert map_data(at)["marks"] == [] and not at.button


def test_clear_forgets_the_drawing(pad):
    at = open_page()
    pad.draw(SEVEN)
    at.run()
    assert "draw_drawing" in at.session_state
    pad.draw([])
    at.run()
    assert not at.exception and "draw_drawing" not in at.session_state
    assert any("Draw a digit on the pad" in i.value for i in at.info)


@pytest.mark.parametrize("button, title, control", [("draw_to_sliders", "Sliders", ("sliders_start", "sent")),
                                                    ("draw_to_interpolate", "Interpolate", ("interp_source", "sent"))])
def test_the_drawing_can_be_sent(pad, button, title, control):
    from ui.state import library

    at = open_page()
    pad.draw(SEVEN)
    at.run()
    at.button(key=button).click().run()
    assert not at.exception, at.exception[0].value if at.exception else ""
    z, label, fp = at.session_state["sent_code"]
    np.testing.assert_allclose(z, code_of("vae-2d", SEVEN), atol=1e-5)
    assert label == "your drawing" and fp == library().get("vae-2d").fingerprint
    assert at.title[0].value.endswith(title)
    assert at.radio(key=control[0]).value == control[1]


SHOW = """
from ui import drawing, state
drawing.show_in_models([state.get_model("ae-2d"), state.get_model("vae-2d")], "t_draw")
"""


def test_show_in_models_reads_the_drawing_in_both(pad, monkeypatch):
    import streamlit as st

    links = []
    monkeypatch.setattr(st, "page_link", lambda page, **kw: links.append(page))  # no navigation in this script
    at = AppTest.from_string(SHOW, default_timeout=120)
    at.run()
    assert not at.exception
    assert any("Draw a digit on the Draw page" in c.value for c in at.caption) and not at.image
    assert links == ["pages/draw.py"]
    at = open_page()
    pad.draw(FOUR)
    at.run()
    held = at.session_state["draw_drawing"]
    both = AppTest.from_string(SHOW, default_timeout=120)
    both.session_state["draw_drawing"] = held
    both.run()
    assert not both.exception
    assert len(both.image) == 3  # the drawing and one reconstruction per model
    text = captions(both)
    assert "AE 2\\-d" in text and "VAE 2\\-d" in text and text.count("read as a ") == 2


@pytest.mark.parametrize("text", [None, "", "not json", "[1, 2]", '{"strokes": 3}', "x" * (MAX_TEXT + 1),
                                  '{"strokes": ' + "[" * 50_000 + "]" * 50_000 + "}"])
def test_a_report_that_is_not_one_is_nothing(text):
    assert parse_report(text) is None


def test_a_report_is_read():
    assert parse_report('{"size": 280, "strokes": [[[1, 2]]], "rev": 4}') == {"size": 280, "strokes": [[[1, 2]]],
                                                                              "rev": 4}
