"""The Denoising page under AppTest: clean, noisy and both models' rows of real test digits with their errors, the
chart of error against noise level, the slider, "New digits", its lesson link, the active model being the
denoising model, and a library with no denoising model."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from tests import apptest
from ui import denoise
from vae.paths import BUNDLED_MODELS, ROOT

PAGE = "pages/denoise.py"

pytestmark = pytest.mark.usefixtures("fresh_app")


@pytest.fixture(autouse=True)
def built():
    for name in ("ae-16d", "dae-16d"):
        if not (BUNDLED_MODELS / f"{name}.safetensors").is_file():
            pytest.skip(f"the bundled {name} is not built yet (bash assets/build.sh)")


def rows(at) -> list:
    """The page's rows of pictures (st.image elements, each a row of digits)."""
    return list(at.image)


def mean_errors(at) -> list[float]:
    return [float(m.group(1)) for c in at.caption if (m := re.fullmatch(r"error ([0-9.]+) on average", c.value))]


def traces(at) -> list[str]:
    (chart,) = at.get("plotly_chart")
    return [t.get("name") for t in json.loads(chart.proto.spec)["data"]]


def test_the_page_shows_clean_noisy_and_both_models_with_their_errors():
    at = apptest.open_page(PAGE, "ae-16d")
    assert at.selectbox(key="denoise_model").value == "dae-16d"
    assert not at.info and not at.warning
    shown = rows(at)
    assert len(shown) == 4 and all(len(r.value) == denoise.N_SHOWN for r in shown)
    assert shown[0].captions == [""] * denoise.N_SHOWN  # the clean digits have no error
    assert all(all(c.startswith("error ") for c in r.captions) for r in shown[1:])
    noisy, plain_ae, denoising = mean_errors(at)
    assert denoising < plain_ae < noisy  # Gaussian noise of 0.5 by default
    assert traces(at) == ["Noisy input (no model)", "Active model", "Denoising model"]
    assert at.query_params == {"model": "ae-16d", "noise": "gaussian", "level": "0.5", "denoiser": "dae-16d",
                               "digits": "0"}


def test_the_slider_changes_the_noisy_row_and_new_digits_the_clean_one():
    at = apptest.open_page(PAGE, "ae-16d")
    clean, noisy = rows(at)[0].value, rows(at)[1].value
    errors = mean_errors(at)
    at.slider(key="denoise_level_gaussian").set_value(0.8).run()
    assert not at.exception
    assert rows(at)[0].value == clean and rows(at)[1].value != noisy
    assert mean_errors(at)[0] > errors[0] and at.query_params["level"] == "0.8"
    at.radio(key="denoise_noise").set_value("salt_pepper").run()
    assert at.slider(key="denoise_level_salt_pepper").value == 0.2 and at.query_params["noise"] == "salt_pepper"
    at.button(key="denoise_new").click().run()
    assert not at.exception and rows(at)[0].value != clean and at.query_params["digits"] == "1"


def test_a_lesson_link_opens_its_view_and_bad_values_fall_back():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.query_params.update({"model": "ae-16d", "noise": "salt_pepper", "level": "0.3", "digits": "7"})
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.radio(key="denoise_noise").value == "salt_pepper"
    assert at.slider(key="denoise_level_salt_pepper").value == 0.3 and not at.info
    assert at.query_params["digits"] == "7"
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.query_params.update({"model": "ae-16d", "noise": "gaussian", "level": "7", "denoiser": "gone"})
    at.switch_page(PAGE).run()
    assert not at.exception and at.slider(key="denoise_level_gaussian").value == 0.5
    assert at.selectbox(key="denoise_model").value == "dae-16d"
    notice = at.info[0].value
    assert "level" in notice and "denoiser" in notice


def test_the_active_denoising_model_is_shown_once_with_a_sentence():
    at = apptest.open_page(PAGE, "dae-16d")
    assert "active model is this denoising model itself" in at.info[0].value
    assert len(rows(at)) == 3 and traces(at) == ["Noisy input (no model)", "Active model"]


def test_without_a_denoising_model_the_page_says_so_and_shows_the_active_model(tmp_path, monkeypatch):
    plain_only = tmp_path / "bundled"
    plain_only.mkdir()
    for name in ("ae-16d", "vae-2d"):
        (plain_only / f"{name}.safetensors").symlink_to(BUNDLED_MODELS / f"{name}.safetensors")
    monkeypatch.setattr("ui.state.BUNDLED_MODELS", plain_only)
    at = apptest.open_page(PAGE, "vae-2d")
    assert "No denoising model for mnist" in at.info[0].value
    assert not at.get("selectbox") or all(s.key != "denoise_model" for s in at.selectbox)
    assert len(rows(at)) == 3 and traces(at) == ["Noisy input (no model)", "Active model"]
    assert "denoiser" not in at.query_params
