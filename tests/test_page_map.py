"""The Latent map page under AppTest: every bundled model with every method that applies, the live
view while a map computes, errors as sentences, a 1-d AE, no model at all, and the payload size.

Slow maps (t-SNE, UMAP) are never computed here: the test writes a stand-in embedding into the
private map cache first (or stubs the map service), so these tests check the page, not the maths.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from vae.paths import BUNDLED_MODELS, ROOT

from vae.maps.projection import compute_map, default_params
from vae.maps.service import MapError, MapJob, MapStore

BUNDLED = ["vae-2d", "ae-2d", "vae-16d", "ae-16d"]
N_TEST = 10_000


pytestmark = pytest.mark.usefixtures("fresh_app")


def app(model_id: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    if model_id:
        at.session_state["active_model"] = model_id
    at.switch_page("pages/map.py")
    return at


def captions(at) -> str:
    return " | ".join(c.value for c in at.caption)


def running_job(method: str = "tsne", **fields) -> MapJob:
    """A map job as the service has it while a worker computes it."""
    job = MapJob("k", method, default_params(method), N_TEST, started=time.perf_counter(), **fields)
    job.future.set_running_or_notify_cancel()
    return job


def run_until_done(at, timeout: float = 60) -> AppTest:
    """Rerun while the page shows the live view (AppTest does not run fragments on a timer)."""
    deadline = time.time() + timeout
    while ("Meanwhile" in captions(at) or "as it forms" in captions(at)) and time.time() < deadline:
        time.sleep(0.3)
        at.run()
    return at


def seed_slow_maps(model_id: str) -> None:
    """Stand-in t-SNE and UMAP maps in the private cache, so the page finds them finished."""
    from ui.state import library
    from vae.paths import cache_dir

    fp = library().get(model_id).fingerprint  # the id of a bundled or a saved model
    store = MapStore(cache_dir() / "maps")
    y = np.random.default_rng(0).standard_normal((N_TEST, 2)).astype(np.float32)
    for method in ("tsne", "umap"):
        store.put(fp, method, default_params(method), y)


def map_data(at) -> list[dict]:
    """The data of every canvas map on the page (ui/map_canvas), as the browser receives it."""
    return [json.loads(json.loads(el.proto.json)["json"]) for el in at.get("bidi_component")
            if "map_canvas" in el.proto.component_name]


def assert_finished_map(at, method_label: str) -> None:
    assert not at.exception, at.exception[0].value
    assert f"{method_label} of all 10,000 test digits" in captions(at)
    assert not at.get("plotly_chart")
    (data,) = map_data(at)
    assert data["n"] == N_TEST and len(data["names"]) == 10
    assert len(json.dumps(data)) < 1_000_000  # what the browser receives for the map
    assert [b.label for b in at.get("download_button")][-1].startswith("Download the map's coordinates")


def untrained(kind: str, latent_dim: int) -> str:
    """A small untrained model saved in the private library (the page must not care); -> its id."""
    from ui.state import library
    from vae.config import ModelConfig
    from vae.models import build_model

    model = build_model(ModelConfig(kind=kind, latent_dim=latent_dim, hidden=(32,)), seed=0)
    return library().save(model, name=f"untrained {kind} {latent_dim}-d", dataset="mnist").id


@pytest.mark.parametrize("model_id", BUNDLED + ["untrained ae 2-d", "untrained vae 16-d"])
def test_every_method_of_every_model(model_id):
    if model_id.startswith("untrained"):
        _, kind, dim = model_id.split()
        model_id = untrained(kind, int(dim[:-2]))
    elif not (BUNDLED_MODELS / f"{model_id}.safetensors").is_file():
        pytest.skip(f"bundled model {model_id} is not built yet")
    seed_slow_maps(model_id)
    at = app(model_id)
    at.run()
    assert not at.exception, at.exception[0].value
    radio = at.radio[0]
    from ui.state import library

    two_d = library().get(model_id).config.latent_dim <= 2
    assert radio.options == (["Native latent plane"] if two_d else []) + ["PCA", "t-SNE", "UMAP"]
    assert radio.value == ("native" if two_d else "tsne")
    for method, label in [("native", "Native latent plane"), ("pca", "PCA"), ("tsne", "t-SNE"), ("umap", "UMAP")]:
        if method == "native" and not two_d:
            continue
        radio = at.radio[0]
        radio.set_value(method).run()
        run_until_done(at)
        assert_finished_map(at, label)
        grid_shown = any("What the decoder draws" in c.value for c in at.caption)
        assert grid_shown == (method == "native")


def test_live_view_then_the_finished_map(monkeypatch):
    """While t-SNE runs: the PCA view at once, then the partial embedding, with a progress bar."""
    from ui import state

    job = running_job()
    asked = []

    class Stub:
        def request(self, fingerprint, z, method, params=None, seed=0):
            asked.append((method, params))
            if method == "pca":  # the instant view beside the live one
                return MapJob.finished("pca", method, {}, compute_map(z, "pca"))
            return job

    monkeypatch.setattr(state, "map_service", lambda: Stub())
    at = app("vae-2d")
    at.run()
    at.radio[0].set_value("tsne").run()
    assert not at.exception
    assert "Meanwhile, the PCA view of all 10,000 digits" in captions(at)
    # The live view is a picture (cheap for the browser to redraw), with a legend; the chart comes at the end.
    assert len(at.get("progress")) == 1 and not map_data(at) and len(at.get("image")) == 1
    assert any("ll-live-legend" in m.value for m in at.markdown)
    first = at.get("image")[0].proto.imgs[0].url

    job.progress, job.embedding = 0.4, np.random.default_rng(1).standard_normal((N_TEST, 2)).astype(np.float32)
    at.run()
    assert "t-SNE as it forms: all 10,000 digits" in captions(at)
    assert "40%" in at.get("progress")[0].proto.text
    assert len(at.get("image")) == 1 and at.get("image")[0].proto.imgs[0].url != first  # the forming map now

    job.progress = 1.0
    job.future.set_result(job.embedding)
    at.run()
    assert_finished_map(at, "t-SNE")
    assert ("tsne", {"perplexity": 30.0}) in asked


@pytest.mark.parametrize("progress", [0.5, 0.9])
def test_a_nearly_done_map_is_awaited_not_left_to_the_next_poll(monkeypatch, progress):
    """Each redraw of the live view waits a little for the map to end; once the last progress report
    is in, it waits through to the end, so the finished map is drawn at once, not a poll later."""
    from ui import map_view, state

    y = np.random.default_rng(1).standard_normal((N_TEST, 2)).astype(np.float32)
    waits = []

    class Job(MapJob):
        def wait(self, timeout=None):  # the map ends during the wait the live view asks for
            waits.append(timeout)
            if not self.future.done():
                self.future.set_result(y)
            return True

    job = Job("k", "tsne", {"perplexity": 30.0}, N_TEST, progress=progress, embedding=y, started=time.perf_counter())
    job.future.set_running_or_notify_cancel()

    class Stub:
        def request(self, fingerprint, z, method, params=None, seed=0):
            return job

    monkeypatch.setattr(state, "map_service", lambda: Stub())
    at = app("vae-16d")
    at.run()
    assert waits == [map_view.LIVE_END_WAIT_S if progress >= map_view.NEARLY_DONE else map_view.LIVE_WAIT_S]
    assert_finished_map(at, "t-SNE")  # drawn in the same run, once the wait saw it end


class Finished:
    """A map service whose every map is done at once (the codes' first two dimensions); records requests."""

    def __init__(self):
        self.asked = []

    def request(self, fingerprint, z, method, params=None, seed=0):
        self.asked.append((method, dict(params or {})))
        return MapJob.finished("k", method, params, z[:, :2])


def test_parameters_reach_the_map_service(monkeypatch):
    asked = (service := Finished()).asked
    monkeypatch.setattr("ui.state.map_service", lambda: service)
    at = app("vae-2d")
    at.run()
    at.radio[0].set_value("tsne").run()
    at.select_slider(key="map_perplexity").set_value(50).run()
    assert asked[-1] == ("tsne", {"perplexity": 50.0})
    at.radio[0].set_value("umap").run()
    at.select_slider(key="map_n_neighbors").set_value(30).run()
    at.select_slider(key="map_min_dist").set_value(0.5).run()
    assert asked[-1] == ("umap", {"n_neighbors": 30, "min_dist": 0.5})
    assert not at.exception


def test_a_failed_map_is_one_sentence(monkeypatch):
    from ui import state

    class Stub:
        def request(self, fingerprint, z, method, params=None, seed=0):
            job = MapJob("k", method, params, len(z))
            job.future.set_exception(MapError("ValueError: The codes contain NaN or infinite values; the model "
                                              "may have diverged."))
            return job

    monkeypatch.setattr(state, "map_service", lambda: Stub())
    at = app("vae-2d")
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "could not be computed" in at.error[0].value
    assert "diverged" in at.error[0].value


def test_a_1d_autoencoder_is_drawn_against_zero():
    from ui.state import library
    from vae.config import ModelConfig
    from vae.models import build_model

    entry = library().save(build_model(ModelConfig(kind="ae", latent_dim=1, hidden=(32,)), seed=0),
                           name="tiny 1-d AE", dataset="mnist")
    at = app(entry.id)
    at.run()
    run_until_done(at)
    assert_finished_map(at, "Native latent plane")
    assert any("only this one row" in c.value for c in at.caption)
    at.radio[0].set_value("pca").run()
    run_until_done(at)
    assert_finished_map(at, "PCA")


def test_no_model_is_a_call_to_action(monkeypatch):
    from ui import state

    monkeypatch.setattr(state, "entries", lambda: [])
    at = app()
    at.run()
    assert not at.exception
    assert any("No model is loaded yet" in i.value for i in at.info)


def test_the_map_of_10000_points_is_compact_and_keeps_every_point():
    at = app("vae-2d")
    at.run()
    (data,) = map_data(at)
    size = len(json.dumps(data))
    assert size < 120_000, size  # 16-bit coordinates and 8-bit labels, base64: about 70 KB
    assert data["n"] == N_TEST and data["equal"] and data["region"]  # the native plane: square units, the grid's square
    assert data["filename"] == "latent-map-vae-2d-native" and data["axes"] == ["z₁", "z₂"]
    at.radio[0].set_value("pca").run()
    (pca,) = map_data(at)
    assert pca["id"] != data["id"] and not pca["equal"] and pca["region"] is None  # a new map: a new view


def test_picked_digits_show_with_their_reconstructions(monkeypatch):
    """What the page does with a pick from the map (the browser side is tests/e2e/test_map_e2e.py)."""
    from ui import map_canvas

    picks = [7, 3]
    real = map_canvas.map_chart

    def chart(*args, **kwargs):
        real(*args, **kwargs)
        return list(picks)

    monkeypatch.setattr(map_canvas, "map_chart", chart)
    at = app("vae-2d")
    at.run()
    assert not at.exception
    assert any(m.value == "**Originals**" for m in at.markdown)
    assert [b.label for b in at.button][:2] == ["Send 2 to Sliders", "Send 2 to Interpolate"]
    at.button(key="map_to_sliders").click().run()
    assert at.session_state["picked_digits"] == [3, 7]  # in test-set order

    picks[:] = list(range(600))
    at = app("vae-2d")
    at.run()
    assert "Showing 24 of the 600 picked digits" in captions(at) and "the first 500 are sent on" in captions(at)
    assert at.button(key="map_to_sliders").label == "Send 500 to Sliders"


def test_a_busy_map_service_does_not_hold_up_native_or_pca(monkeypatch, tmp_path):
    """With both slow lanes busy (other sessions' t-SNE and UMAP), the instant maps still come at once."""
    import threading

    from ui import state
    from vae.maps.service import MapService

    gate = threading.Event()

    def slow(z, method, params=None, seed=0, progress=None):
        if method in ("native", "pca"):
            return compute_map(z, method, params, seed, progress)
        assert gate.wait(60)
        return np.zeros((len(z), 2), np.float32)

    monkeypatch.setattr("vae.maps.service.compute_map", slow)
    service = MapService(MapStore(tmp_path / "maps"))
    monkeypatch.setattr(state, "map_service", lambda: service)
    z = np.zeros((N_TEST, 4), np.float32)
    busy = [service.request("other", z, m) for m in ("tsne", "umap")]
    try:
        at = app("vae-2d")
        at.run()
        assert_finished_map(at, "Native latent plane")
        at.radio[0].set_value("pca").run()
        assert_finished_map(at, "PCA")
        at.radio[0].set_value("umap").run()
        assert "waiting for another map" in at.get("progress")[0].proto.text  # behind the other session's UMAP
    finally:
        gate.set()
    assert all(job.wait(10) for job in busy)



# --- showing the holes: the layer, neighbours kept, a clicked point -----------------------------------

LAYER_TOGGLE = "Show where it decodes to a digit"
KEPT_TOGGLE = "Colour by neighbours kept"


def toggles(at) -> list[str]:
    return [t.label for t in at.toggle]


def channel_data(at) -> list[dict]:
    """The data of the layer's channel (ui/map_layers.layer_channel), as the browser receives it."""
    return [json.loads(json.loads(el.proto.json)["json"]) for el in at.get("bidi_component")
            if "map_layer" in el.proto.component_name]


def test_the_layer_is_offered_on_native_and_pca_maps_only():
    from ui.map_layers import NOT_OFFERED

    seed_slow_maps("ae-2d")
    at = app("ae-2d")
    at.run()
    assert toggles(at) == [LAYER_TOGGLE]  # native: the layer; no neighbours to lose on the model's own plane
    assert not channel_data(at) and not map_data(at)[0]["layer"]
    at.toggle(key="map_layer").set_value(True).run()
    assert not at.exception
    (data,) = map_data(at)
    assert data["layer"] and data["space"]
    (channel,) = channel_data(at)
    assert channel == {"key": "map_scatter", "layer": None}  # until the browser says its view
    assert "Painting the layer" in " ".join(m.value for m in at.markdown)
    at.radio[0].set_value("pca").run()
    assert toggles(at) == [LAYER_TOGGLE] and channel_data(at)  # PCA of a 2-d model is a rotation: nothing lost
    for method in ("tsne", "umap"):
        at.radio[0].set_value(method).run()
        assert LAYER_TOGGLE not in toggles(at) and not channel_data(at)
        assert NOT_OFFERED in captions(at) and not map_data(at)[0]["layer"]


def test_the_view_the_browser_asks_for_gets_its_layer(monkeypatch):
    import base64
    import io

    from PIL import Image

    from ui import map_layers

    view = ((-4.0, 6.5), (-3.0, 2.0))
    monkeypatch.setattr(map_layers, "asked_view", lambda key, map_id: view)
    at = app("vae-2d")
    at.run()
    at.toggle(key="map_layer").set_value(True).run()
    assert not at.exception
    (data,), (channel,) = map_data(at), channel_data(at)
    layer = channel["layer"]
    assert layer["id"] == data["id"] and [tuple(r) for r in layer["view"]] == list(map_layers.quantise_view(view))
    img = Image.open(io.BytesIO(base64.b64decode(layer["png"])))
    assert img.size == (map_layers.LAYER_N, map_layers.LAYER_N) and img.mode == "RGBA"
    legend = " ".join(m.value for m in at.markdown if "ll-layer-legend" in m.value)
    assert "not confident the decoded image is a digit" in legend and "% of the visible region</b>" in legend


def test_dots_coloured_by_neighbours_kept_with_the_maps_figure():
    import base64

    from vae.maps.neighbours import kept_neighbours, kept_share

    seed_slow_maps("vae-16d")
    at = app("vae-16d")
    at.run()  # t-SNE, the default view of a 16-d model (the bundled map, else a stand-in)
    assert toggles(at) == [KEPT_TOGGLE]
    assert map_data(at)[0]["colorBy"] is None
    at.toggle(key="map_kept").set_value(True).run()
    assert not at.exception
    color = map_data(at)[0]["colorBy"]
    values = np.frombuffer(base64.b64decode(color["values"]), np.uint8)
    assert len(values) == N_TEST and color["max"] == 10 and values.max() <= 10
    from ui import state

    from vae.assets import MAPS_DIR
    from vae.paths import cache_dir

    a = state.get_model("vae-16d")
    y = MapStore(cache_dir() / "maps", readonly_dirs=[MAPS_DIR]).get(a.fingerprint, "tsne", default_params("tsne"))
    expected = kept_neighbours(state.active_codes(a), y, 10)
    assert (values == expected).all()
    figure = f"on average **{kept_share(expected, 10) * 10:.1f} of each digit's 10 nearest neighbours**"
    assert figure in captions(at) and "misread-tsne" in captions(at)
    at.radio[0].set_value("pca").run()
    assert toggles(at) == [LAYER_TOGGLE, KEPT_TOGGLE]  # PCA of 16 dimensions also loses neighbours
    values = np.frombuffer(base64.b64decode(map_data(at)[0]["colorBy"]["values"]), np.uint8)
    assert 0 < values.mean() < 10


@pytest.mark.parametrize("method", ["native", "tsne"])
def test_a_clicked_point_of_empty_space_is_decoded_and_sent(monkeypatch, method):
    """What the page does with a click on empty space (the browser side is tests/e2e/test_holes_map_e2e.py)."""
    from ui import map_canvas

    seed_slow_maps("ae-2d")
    monkeypatch.setattr(map_canvas, "clicked_point", lambda key, map_id: (2.5, -4.0))
    at = app("ae-2d")
    at.run()
    if method != "native":
        at.radio[0].set_value(method).run()
    assert not at.exception
    assert map_data(at)[0]["point"] == {"x": 2.5, "y": -4.0}  # the cross stays where the click was
    assert any("**The point you clicked** (2.50, -4.00)" in m.value for m in at.markdown)
    said = " ".join(m.value for m in at.markdown)
    assert "the classifier" in said.lower() or "Not a confident digit" in said
    if method == "native":
        assert "Code z = (2.50, -4.00)." in said and "the point *is* the code" in captions(at)
    else:
        assert "Approximate: t-SNE has no way back" in captions(at)
    at.button(key="map_point_sliders").click().run()
    z, label, fingerprint = at.session_state["sent_code"]
    from ui import state

    assert fingerprint == state.get_model("ae-2d").fingerprint and len(z) == 2
    if method == "native":
        assert z == [2.5, -4.0] and label == "the Native latent plane point (2.50, -4.00)"
    else:
        assert label.startswith("about the t-SNE point")


def test_marks_travel_with_the_map_and_refuse_what_is_not_a_point(monkeypatch):
    """map_chart(marks=...) for a drawn digit's place (ui/map_canvas.js draws them and keeps them in view)."""
    from ui import map_canvas

    real = map_canvas.map_chart
    marks = [{"x": 1.25, "y": -40.0, "label": "your drawing " * 10, "color": "#111"}]

    def chart(*args, **kwargs):
        return real(*args, **kwargs, marks=marks)

    monkeypatch.setattr(map_canvas, "map_chart", chart)
    at = app("vae-2d")
    at.run()
    assert not at.exception
    (mark,) = map_data(at)[0]["marks"]
    assert (mark["x"], mark["y"], mark["color"]) == (1.25, -40.0, "#111") and len(mark["label"]) == 60
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite coordinates"):  # the caller's mistake, said in a sentence
            map_canvas._mark({"x": bad, "y": 0.0})


def test_the_layer_and_neighbours_kept_travel_in_the_address():
    seed_slow_maps("vae-16d")
    at = app("vae-16d")
    at.query_params["method"] = "pca"
    at.query_params["layer"] = "1"
    at.query_params["kept"] = "1"
    at.run()
    assert not at.exception
    assert at.toggle(key="map_layer").value and at.toggle(key="map_kept").value
    assert at.query_params["layer"] == "1" and at.query_params["kept"] == "1"
    at.toggle(key="map_layer").set_value(False).run()
    assert "layer" not in at.query_params and at.query_params["kept"] == "1"
