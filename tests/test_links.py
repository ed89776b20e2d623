"""ui.links' parsers and formats (pure): numbers, lists and picks from an address, with bounds; the picks'
two encodings round-trip; the farthest pair of picks (ui.explore). Then the Latent map's address under
AppTest: a link opens its view, the widgets write it back, bad values fall back with a notice, picks
round-trip and survive leaving the page, and "Send to Interpolate" lands on them."""

from __future__ import annotations

import numpy as np
import pytest

from streamlit.testing.v1 import AppTest

from tests.test_page_map import Finished, assert_finished_map, map_data
from vae.paths import BUNDLED_MODELS, ROOT
from ui import links
from ui.links import (decode_picks, encode_picks, fmt_float, parse_choice, parse_float, parse_floats, parse_int,
                      parse_ints)


@pytest.mark.parametrize("text,value", [("0", 0), ("42", 42), (" 7 ", 7), ("+3", 3), ("9999", 9999)])
def test_parse_int_in_bounds(text, value):
    assert parse_int(text, 0, 9999) == value


@pytest.mark.parametrize("text", ["", "x", "4.0", "1e3", "10000", "-1", "٣", "1_000", "9" * 40, "nan", "0x10"])
def test_parse_int_refuses_garbage_and_out_of_range(text):
    with pytest.raises(ValueError):
        parse_int(text, 0, 9999)


def test_parse_int_on_a_step_grid():
    assert parse_int("48", 8, 128, step=8) == 48
    with pytest.raises(ValueError, match="not one of 8, 16, 24"):
        parse_int("50", 8, 128, step=8)


@pytest.mark.parametrize("text,value", [("0", 0.0), ("2.5", 2.5), ("-0.125", -0.125), (".5", 0.5), ("1e-1", 0.1)])
def test_parse_float(text, value):
    assert parse_float(text, -10, 10) == value


@pytest.mark.parametrize("text", ["", "nan", "inf", "-inf", "1e999", "1,5", "two", "11", "--1"])
def test_parse_float_refuses_garbage_and_out_of_range(text):
    with pytest.raises(ValueError):
        parse_float(text, -10, 10)


def test_number_snaps_to_the_slider_grid():
    assert links.number(0.5, 10.0, 0.5)("2.3") == 2.5
    assert links.number(0.5, 10.0, 0.5)("10") == 10.0
    with pytest.raises(ValueError):
        links.number(0.5, 10.0, 0.5)("12")


def test_parse_choice_names_any_case_and_numbers_by_value():
    assert parse_choice("PCA", ["native", "pca"]) == "pca"
    assert parse_choice("30", [5, 10, 30]) == 30 and parse_choice("30.0", [5, 10, 30]) == 30
    assert parse_choice("0.1", [0.0, 0.05, 0.1]) == 0.1
    with pytest.raises(ValueError, match="not one of native, pca"):
        parse_choice("umapp", ["native", "pca"])
    with pytest.raises(ValueError, match=r"…"):  # a long list of options is cut short in the sentence
        parse_choice("3", list(range(100, 200)))


def test_parse_ints_and_floats():
    assert parse_ints("3,0,15", 0, 15, 16) == [3, 0, 15]
    for bad in ["", "3,3", "3,16", "a,b", ",".join(["1"] * 17)]:
        with pytest.raises(ValueError):
            parse_ints(bad, 0, 15, 16)
    assert parse_floats("0.5,-1.25", [(-3, 3), (-3, 3)]) == [0.5, -1.25]
    assert parse_floats("3.0004", [(-3, 3)]) == [3.0004]  # rounding slack at the edge
    for bad in ["0.5", "0.5,1,2", "0.5,nan", "0.5,9"]:
        with pytest.raises(ValueError):
            parse_floats(bad, [(-3, 3), (-3, 3)])


def test_fmt_float_is_short_and_parses_back():
    assert [fmt_float(v) for v in (0.0, -0.0, 2.5, 0.1, -1.2344, 30.0, -0.0004)] == \
           ["0", "0", "2.5", "0.1", "-1.234", "30", "0"]
    for v in np.random.default_rng(0).uniform(-3, 3, 50):
        assert abs(parse_float(fmt_float(v), -3, 3) - v) <= 5e-4


def test_picks_readable_with_ranges():
    assert encode_picks([17, 3, 20, 21, 22, 23, 3, 40, 41]) == "3,17,20-23,40,41"
    assert decode_picks("3,17,20-23,40,41", 10_000) == ([3, 17, 20, 21, 22, 23, 40, 41], None)
    assert decode_picks(" 5 , 2 ", 10) == ([2, 5], None)
    assert encode_picks([]) == "" and decode_picks("", 10) == ([], None)


@pytest.mark.parametrize("seed", range(5))
def test_picks_round_trip_and_long_ones_are_packed(seed):
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(10_000, size=int(rng.integers(1, 501)), replace=False).tolist())
    text = encode_picks(picks)
    assert decode_picks(text, 10_000) == (picks, None)
    if len(",".join(map(str, picks))) > links.READABLE:
        assert text.startswith("~") and len(text) < 2.2 * len(picks) + 4  # packed: ~1.4 characters a pick
    assert all(c.isalnum() or c in "~-_," for c in text)  # nothing a URL needs to escape but the comma


def test_500_scattered_picks_fit_a_short_address():
    picks = list(range(0, 10_000, 20))  # 500 picks, every 20th digit
    assert len(encode_picks(picks)) < 800
    assert decode_picks(encode_picks(picks), 10_000)[0] == picks


def test_picks_out_of_range_or_too_many_are_left_out_with_a_sentence():
    kept, note = decode_picks("3,9998-10002,20000", 10_000)
    assert kept == [3, 9998, 9999] and "4 not among the test digits (0 to 9,999)" in note
    kept, note = decode_picks("0-999999999", 10_000)  # a huge range costs nothing
    assert kept == list(range(500)) and "only the first 500 of 10,000 kept" in note
    kept, note = decode_picks(encode_picks(range(600)), 700)
    assert len(kept) == 500 and "first 500" in note


@pytest.mark.parametrize("text", ["x", "3;4", "5-2", "-3", "3,,a", "1.5", "~!!", "~gA", "~" + "_" * 30_000])
def test_garbage_picks_raise(text):
    with pytest.raises(ValueError):
        decode_picks(text, 10_000)


def test_query_refuses_names_a_page_does_not_have():
    with pytest.raises(KeyError):
        links._texts("map", {"user": "bob"})
    assert links._texts("map", {"method": "pca", "picks": [], "perplexity": None}) == \
           {"method": "pca", "picks": None, "perplexity": None}
    assert links._texts("sliders", {"z": [0.5, -1.0], "dims": [3, 1]}) == {"z": "0.5,-1", "dims": "3,1"}


def test_no_page_keeps_anything_about_the_user():
    names = {n for page in links.PARAMS.values() for n in page}
    assert not names & {"user", "owner", "workspace", "teacher", "email", "name", "session"}


def test_farthest_pair_of_picks():
    from ui.explore import farthest_pair

    z = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [-3.0, -4.0], [0.5, 0.5]])
    assert farthest_pair(z, [0, 1, 2, 3, 4]) == (2, 3)
    assert farthest_pair(z, [4, 1, 0]) == (1, 0)  # in the order of the picks
    assert farthest_pair(z, [3, 2]) == (3, 2)
    assert farthest_pair(np.zeros((5, 3)), [4, 2, 1]) == (4, 2)  # all the same: still two different digits
    rng = np.random.default_rng(0)
    z = rng.normal(size=(1000, 16))
    picks = rng.choice(1000, 500, replace=False).tolist()
    a, b = farthest_pair(z, picks)
    d = np.linalg.norm(z[picks][:, None] - z[picks][None], axis=-1)
    assert np.isclose(np.linalg.norm(z[a] - z[b]), d.max())


# --- the map page's address (AppTest; the other pages' are in their own page tests) ------------------

def open_link(params: dict, model_id: str | None = None) -> AppTest:
    """A fresh browser opening /map at an address with `params`."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    if model_id:
        at.session_state["active_model"] = model_id
    at.run()
    at.query_params.update(params)
    at.switch_page("pages/map.py").run()
    assert not at.exception, at.exception[0].value
    return at


@pytest.mark.usefixtures("fresh_app")
def test_a_lesson_link_opens_its_map_and_follows_the_widgets():
    at = open_link({"model": "ae-2d", "method": "pca"})
    assert at.radio[0].value == "pca" and at.selectbox(key="sidebar_model").value == "ae-2d"
    assert_finished_map(at, "PCA")
    assert at.query_params == {"model": "ae-2d", "method": "pca"} and not at.info
    at.radio[0].set_value("native").run()
    assert at.query_params == {"model": "ae-2d", "method": "native"}
    at.selectbox(key="sidebar_model").set_value("vae-16d").run()  # another model: its own default method
    assert at.query_params == {"model": "vae-16d", "method": "tsne", "perplexity": "30"} and not at.info


@pytest.mark.usefixtures("fresh_app")
def test_a_link_carries_the_method_parameters(monkeypatch):
    asked = (service := Finished()).asked
    monkeypatch.setattr("ui.state.map_service", lambda: service)
    at = open_link({"model": "vae-16d", "method": "umap", "n_neighbors": "50", "min_dist": "0.5"})
    assert asked[-1] == ("umap", {"n_neighbors": 50, "min_dist": 0.5})
    at = open_link({"model": "vae-16d", "method": "tsne", "perplexity": "5"})
    assert asked[-1] == ("tsne", {"perplexity": 5.0}) and at.query_params["perplexity"] == "5"


@pytest.mark.usefixtures("fresh_app")
@pytest.mark.parametrize("params,why", [
    ({"model": "vae-16d", "method": "native"}, "method"),  # no native plane for 16 dimensions
    ({"model": "vae-2d", "method": "t-sne; drop table"}, "method"),
    ({"model": "vae-16d", "method": "tsne", "perplexity": "42"}, "perplexity"),
    ({"model": "vae-2d", "picks": "3,x,9"}, "picks"),
    ({"model": "vae-2d", "picks": "3,12000"}, "not among the test digits"),
])
def test_bad_links_fall_back_with_a_notice(monkeypatch, params, why):
    monkeypatch.setattr("ui.state.map_service", Finished)
    at = open_link(params)
    (notice,) = at.info
    assert "could not be used" in notice.value and why in notice.value.replace("\\", "")
    assert at.radio[0].value in ("native", "tsne")
    assert at.query_params.get("perplexity") in (None, "30") and "x" not in at.query_params.get("picks", "")


@pytest.mark.usefixtures("fresh_app")
def test_picks_round_trip_through_the_address_and_survive_leaving_the_map():
    at = open_link({"model": "vae-2d", "method": "native", "picks": "3,17,20-22"})
    assert map_data(at)[0]["picks"] == [3, 17, 20, 21, 22]  # the canvas shows them as picked
    assert at.session_state["picked_digits"] == [3, 17, 20, 21, 22]
    assert at.button(key="map_to_sliders").label == "Send 5 to Sliders"
    assert at.query_params["picks"] == "3,17,20-22"
    at.switch_page("pages/sliders.py").run()  # away and back, as through the sidebar (no parameters)
    at.query_params.clear()
    at.switch_page("pages/map.py").run()
    assert map_data(at)[0]["picks"] == [3, 17, 20, 21, 22] and at.query_params["picks"] == "3,17,20-22"
    at.radio[0].set_value("pca").run()  # another method: the same picks on its map
    assert map_data(at)[0]["picks"] == [3, 17, 20, 21, 22]


@pytest.mark.usefixtures("fresh_app")
def test_send_to_interpolate_lands_on_the_picks_with_the_farthest_two_proposed():
    from ui.state import test_data
    from vae.checkpoint import load_checkpoint
    from vae.latent import encode

    picks = [0, 1, 2, 3, 4, 5, 6, 7]
    at = open_link({"model": "vae-2d", "picks": "0-7"})
    at.button(key="map_to_interpolate").click().run()
    assert not at.exception and at.title[0].value.endswith("Interpolate")
    assert at.radio(key="interp_source").value == "map" and at.query_params["picks"] == "0-7"
    model, _ = load_checkpoint(BUNDLED_MODELS / "vae-2d.safetensors")
    z = encode(model, test_data("mnist").x_test[picks])
    d = ((z[:, None] - z[None]) ** 2).sum(-1)
    a, b = sorted(np.unravel_index(int(np.argmax(d)), d.shape))
    assert (at.selectbox(key="interp_from_pick").value, at.selectbox(key="interp_to_pick").value) == (a, b)
    assert at.query_params["from"] == str(a) and at.query_params["to"] == str(b)


def test_the_draw_page_keeps_only_its_map_and_interpolate_its_walks_end():
    assert links._texts("draw", {"method": "pca"}) == {"method": "pca"}
    with pytest.raises(KeyError):
        links._texts("draw", {"z": [1.0, 2.0]})  # a drawing's code is the session's, never in an address
    assert links._texts("interpolate", {"mode": "sent", "end": "index", "to": 12}) == \
           {"mode": "sent", "end": "index", "to": "12"}
