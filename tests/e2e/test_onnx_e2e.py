"""Bring your own model in a real browser, on a server of its own (its own LATENT_LAB_HOME and cache, so the
imported model never reaches the other browser tests' library): export the bundled 2-d VAE as ONNX with
the Train & library page's button, download the zip, upload its two files through the import form, and the
imported model becomes the active one; then its latent map, Sliders (decoded on the server, said so: a
slider moved redraws the digit) and Interpolate render without errors. A refused pair gets its one sentence.

Screenshots: test-artifacts/onnx-1-exported.png, onnx-2-imported.png, onnx-3-map.png, onnx-4-sliders.png,
onnx-5-interpolate.png, onnx-6-refused.png.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_no_exception, running_server, shot, wait_for_app

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

NAME = "e2e ONNX VAE"
MAP_API = "window.__latentLabMaps && window.__latentLabMaps.map_scatter"


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e-onnx-home")
    with running_server(home) as url:
        yield url, home / "home" / "models"  # the server's library (tests/e2e/conftest.start_server)


def nav(page, label: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=label).click()
    page.wait_for_selector("h1", timeout=90_000)
    wait_for_app(page, timeout=120_000)
    page.wait_for_selector('[data-testid="stSpinner"]', state="detached", timeout=120_000)


def uploader(page, label: str):
    """The file input of the uploader whose label is `label`."""
    box = page.locator('[data-testid="stFileUploader"]').filter(has_text=label)
    return box.locator('input[type="file"]')


def upload_pair(page, tmp: Path, encoder: bytes, decoder: bytes) -> None:
    if uploader(page, "Encoder (.onnx)").count() == 0:  # the import form is folded away until asked for
        page.locator('[data-testid="stCheckbox"]').filter(has_text="Import an ONNX model").locator("label").click()
        uploader(page, "Encoder (.onnx)").wait_for(state="attached", timeout=30_000)
        wait_for_app(page)
    (tmp / "encoder.onnx").write_bytes(encoder)
    (tmp / "decoder.onnx").write_bytes(decoder)
    uploader(page, "Encoder (.onnx)").set_input_files(str(tmp / "encoder.onnx"))
    page.get_by_text("encoder.onnx", exact=True).wait_for(timeout=30_000)
    uploader(page, "Decoder (.onnx)").set_input_files(str(tmp / "decoder.onnx"))
    page.get_by_text("decoder.onnx", exact=True).wait_for(timeout=30_000)
    wait_for_app(page)


def test_export_import_and_every_page_of_an_onnx_model(page, own_server, tmp_path):
    own_server, models = own_server
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.goto(own_server)
    page.wait_for_selector('[data-testid="stSidebarNav"] a:has-text("Train & library")', timeout=90_000)
    wait_for_app(page)
    nav(page, "Train & library")

    # export: pick the bundled 2-d VAE in the manage panel, press Export, download the zip
    picker = page.get_by_role("combobox", name="Model to manage")
    picker.click()
    page.get_by_role("option", name="VAE 2-d (bundled)").click()
    wait_for_app(page)
    t0 = time.perf_counter()
    page.get_by_role("button", name="Export as ONNX").click()
    page.get_by_role("button", name="Download as ONNX (.zip)").wait_for(timeout=180_000)
    exported_s = time.perf_counter() - t0
    assert_no_exception(page)
    shot(page, "onnx-1-exported")
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Download as ONNX (.zip)").click()
    with zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes())) as z:
        assert sorted(z.namelist()) == ["decoder.onnx", "encoder.onnx"]
        encoder, decoder = z.read("encoder.onnx"), z.read("decoder.onnx")

    # import: both files, a name, Import; the pair becomes the active model
    upload_pair(page, tmp_path, encoder, decoder)
    page.get_by_label("Name in the library (optional)").fill(NAME)
    page.keyboard.press("Enter")
    wait_for_app(page)
    t0 = time.perf_counter()
    page.get_by_role("button", name="Import the pair").click()
    page.get_by_text(f"Imported {NAME} into the library").wait_for(timeout=120_000)
    imported_s = time.perf_counter() - t0
    wait_for_app(page)
    print(f"export in the browser: {exported_s:.1f} s; upload to active model: {imported_s:.1f} s")
    assert_no_exception(page)
    assert page.get_by_role("combobox", name="Active model").input_value() == NAME
    assert len(list(models.glob("*.onnxmodel"))) == 1
    shot(page, "onnx-2-imported")

    # its latent map (the 2-d code itself): dots drawn
    nav(page, "Latent map")
    page.wait_for_function(f"() => {{ const m = {MAP_API}; return !!m && m.n() > 0; }}", timeout=120_000)
    assert page.evaluate(f"() => {MAP_API}.n()") >= 1000
    assert_no_exception(page)
    shot(page, "onnx-3-map")

    # Sliders: Streamlit's sliders, decoded on the server; a moved slider redraws the digit
    nav(page, "Sliders")
    page.get_by_text("Decoded on the server").wait_for(timeout=60_000)
    digit = page.locator('[data-testid="stImage"] img').first
    digit.wait_for(timeout=60_000)
    before = digit.get_attribute("src")
    thumb = page.locator('[class*="st-key-sliders_live_"] input[type=range]').first  # ui.decoder_component
    start = float(thumb.input_value())
    thumb.focus()
    for _ in range(30):
        page.keyboard.press("ArrowRight")
    wait_for_app(page)
    page.wait_for_function("(src) => { const i = document.querySelector('[data-testid=\"stImage\"] img'); "
                           "return i && i.getAttribute('src') !== src; }", arg=before, timeout=30_000)
    assert float(thumb.input_value()) > start
    assert_no_exception(page)
    shot(page, "onnx-4-sliders")

    # Interpolate: the walk's strip of decoded digits
    nav(page, "Interpolate")
    page.wait_for_selector('[data-testid="stImageCaption"]:has-text("10 steps, linear")', timeout=60_000)
    page.wait_for_function("() => { const m = (window.__latentLabMaps || {}).interp_map; "
                           "return !!m && m.pathLength() === 10; }", timeout=60_000)
    assert_no_exception(page)
    shot(page, "onnx-5-interpolate")


def test_a_refused_pair_gets_one_sentence_in_the_browser(page, own_server, tmp_path):
    from tests.test_onnx_hostile import CASES

    own_server, models = own_server
    before = sorted(p.name for p in models.iterdir())
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.goto(own_server)
    page.wait_for_selector('[data-testid="stSidebarNav"] a:has-text("Train & library")', timeout=90_000)
    wait_for_app(page)
    nav(page, "Train & library")
    encoder, decoder, _, word = CASES["decoder returning 3x32x32"]
    upload_pair(page, tmp_path, encoder, decoder)
    page.get_by_role("button", name="Import the pair").click()
    alert = page.locator('[data-testid="stAlertContentError"]')
    alert.first.wait_for(timeout=60_000)
    wait_for_app(page)
    text = alert.first.inner_text()
    assert word in text and "Traceback" not in text and text.count(". ") == 0, text
    assert_no_exception(page)
    assert sorted(p.name for p in models.iterdir()) == before  # nothing stored
    shot(page, "onnx-6-refused")
