"""The Few labels page under AppTest: its chart, figures and pictures for the active model, the pixels and the
other bundled models; every curve measured once and stored; at 1 label per class both methods agree; a lesson
link opens its view (and a bad one falls back with a notice); an imported ONNX model measures as its native
twin. The lane that measures: one job per key, shared, stored."""

from __future__ import annotations

import numpy as np
import pytest

from tests import apptest
from ui import fewlabels
from vae.checkpoint import ModelLibrary, default_library_dir
from vae.fewlabels import ResultStore, few_labels
from vae.paths import BUNDLED_MODELS

PAGE = "pages/fewlabels.py"


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fewlabels-cache")


@pytest.fixture
def app(fresh_app, shared_cache, monkeypatch):
    """Page tests share one cache folder, so the curves are measured once for the module (~10 s)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared_cache))
    return shared_cache


def metrics(at) -> dict[str, str]:
    return {m.label.replace("\\", ""): m.value for m in at.metric}


def captions(at) -> str:
    return " | ".join(c.value.replace("\\", "") for c in at.caption)


def test_the_page_shows_the_curves_the_figures_and_the_labelled_digits(app):
    at = apptest.open_page(PAGE, "vae-2d")
    assert len(at.get("plotly_chart")) == 2  # the curves and the misses
    m = metrics(at)
    assert {"VAE 2-d (bundled), k-nearest neighbours", "VAE 2-d (bundled), nearest class mean",
            "Raw pixels, k-nearest neighbours"} <= set(m)
    assert all(10 < float(v.rstrip("%")) <= 100 for v in m.values() if v.endswith("%"))
    assert "10 labelled digits per class: 9,900 test digits labelled" in captions(at)
    assert len(at.main.image) == 1
    stored = sorted((app / "latent-lab" / "fewlabels").glob("*.npz"))
    bundled = [e for e in ModelLibrary(default_library_dir(), BUNDLED_MODELS).entries() if e.bundled]
    assert len(stored) == len(bundled) + 1  # every bundled model and the pixels, measured once
    assert not at.warning and not at.error


def test_one_label_per_class_gives_both_methods_the_same_answer(app):
    """With one labelled digit per class the class mean is that digit, and 3 voters of 3 classes tie: 1-NN."""
    at = apptest.open_page(PAGE, "ae-2d")
    at.select_slider(key="fewlabels_k").set_value(1).run()
    m = metrics(at)
    assert m["AE 2-d (bundled), k-nearest neighbours"] == m["AE 2-d (bundled), nearest class mean"]
    assert "9,990 test digits labelled" in captions(at)
    first = at.main.image[0].value[0]
    at.select_slider(key="fewlabels_draw").set_value(3).run()
    assert not at.exception and "Draw 3 of 5" in captions(at)
    assert at.main.image[0].value[0] != first  # another draw, other labelled digits
    assert at.query_params["k"] == "1" and at.query_params["draw"] == "3"


def test_a_lesson_link_opens_its_view(app):
    at = apptest.AppTest.from_file(apptest.APP, default_timeout=120)
    at.run()
    at.query_params.update({"model": "vae-16d", "method": "mean", "k": "5", "draw": "2"})
    at.switch_page(PAGE).run()
    assert not at.exception
    assert (at.radio(key="fewlabels_method").value, at.select_slider(key="fewlabels_k").value,
            at.select_slider(key="fewlabels_draw").value) == ("mean", 5, 2)
    assert "VAE 16-d (bundled), nearest class mean" in metrics(at) and not at.info
    assert dict(at.query_params) == {"model": "vae-16d", "method": "mean", "k": "5", "draw": "2"}


def test_a_bad_link_falls_back_with_a_notice(app):
    at = apptest.AppTest.from_file(apptest.APP, default_timeout=120)
    at.run()
    at.query_params.update({"model": "vae-2d", "k": "7", "draw": "9"})
    at.switch_page(PAGE).run()
    assert not at.exception
    (notice,) = at.info
    text = notice.value.replace("\\", "")
    assert "could not be used" in text and "k:" in text and "draw:" in text
    assert at.select_slider(key="fewlabels_k").value == 10 and at.select_slider(key="fewlabels_draw").value == 1


def test_an_imported_onnx_model_measures_as_its_native_twin(app):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from vae.checkpoint import load_checkpoint
    from vae.onnx.export import export_model

    native, _ = load_checkpoint(BUNDLED_MODELS / "vae-2d.safetensors")
    enc, dec = export_model(native)
    entry = ModelLibrary(default_library_dir(), BUNDLED_MODELS).import_onnx(enc, dec, name="onnx twin", owner="me")
    at = apptest.open_page(PAGE, entry.id)
    m = metrics(at)
    twin = float(m["onnx twin, k-nearest neighbours"].rstrip("%"))
    native_at = apptest.open_page(PAGE, "vae-2d")
    assert abs(twin - float(metrics(native_at)["VAE 2-d (bundled), k-nearest neighbours"].rstrip("%"))) <= 0.2


# --- the lane ----------------------------------------------------------------------------------------------

def blobs(seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), 120)
    return (3 * rng.standard_normal((10, 4)))[y] + rng.standard_normal((len(y), 4)), y


def test_the_lane_measures_each_key_once_and_stores_it(tmp_path):
    x, y = blobs()
    lane = fewlabels.Lane(ResultStore(tmp_path / "store"))
    try:
        job = lane.request("k1", x, y)
        assert lane.request("k1", x, y) is job  # asked twice: one job
        result = job.future.result(timeout=60)
        assert job.progress == 1.0 and "k1" in lane.store and lane.job("k1") is None  # stored: the job is gone
        np.testing.assert_array_equal(result.accuracy, few_labels(x, y, fewlabels.ks_for(y)).accuracy)
        again = lane.request("k1", x, y)  # a later request reads the stored one
        np.testing.assert_array_equal(again.future.result(timeout=60).accuracy, result.accuracy)
    finally:
        lane.close()


def test_a_result_that_cannot_be_stored_stays_in_memory(tmp_path):
    x, y = blobs(1)
    (tmp_path / "file").write_text("")
    lane = fewlabels.Lane(ResultStore(tmp_path / "file" / "store"))  # under a file: cannot be written
    try:
        job = lane.request("k", x, y)
        job.future.result(timeout=60)
        assert "k" not in lane.store and lane.job("k") is job
        bad = lane.request("bad", x + np.nan, y)
        with pytest.raises(ValueError, match="not finite"):
            bad.future.result(timeout=60)
        assert lane.job("bad") is None  # a failed one is asked again
    finally:
        lane.close()
