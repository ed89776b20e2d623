"""Denoising in a real browser: the page opens from the sidebar with its rows of digit pictures (clean, noisy, the
active model's and the bundled denoising model's reconstructions) and its chart; moving the noise slider redraws
the noisy row and leaves the clean one (test-artifacts/denoise-*.png)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import assert_no_exception, open_from_sidebar, settled, shot, wait_for_app
from ui.denoise import N_SHOWN
from vae.paths import BUNDLED_MODELS

ROW = ".st-key-denoise_row_{} [data-testid='stImage'] img"


def sources(page, row: str) -> list[str]:
    return page.locator(ROW.format(row)).evaluate_all("imgs => imgs.map(i => i.src)")


def loaded(page, row: str) -> bool:
    """Whether every picture of the row has been drawn (not only placed)."""
    return page.locator(ROW.format(row)).evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")


def tall(page) -> None:
    """Make the viewport as tall as the page, so a screenshot shows all of it (Streamlit scrolls inside)."""
    h = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(h + 40, 6000))})
    page.wait_for_timeout(800)


def one_row(page, row: str) -> bool:
    """Whether the row's pictures stand side by side on one line (none wrapped below)."""
    return len(set(page.locator(ROW.format(row)).evaluate_all(
        "imgs => imgs.map(i => Math.round(i.getBoundingClientRect().top))"))) == 1


def set_slider(page, key: str, value: float) -> None:
    """Move a Streamlit slider to `value` with the keyboard, as a user can. A rerun that lands between two key
    presses can re-render the slider and take its focus, so read the value back and press again until it is there."""
    thumb = page.locator(f".st-key-{key} input[type=range]")
    step = float(thumb.get_attribute("step"))
    page.mouse.move(2, 2)
    for _ in range(5):
        now = float(thumb.input_value())
        presses = round(abs(value - now) / step)
        if presses == 0:
            return
        for _ in range(presses):
            thumb.focus()
            page.keyboard.press("ArrowRight" if value > now else "ArrowLeft")
        wait_for_app(page)
    assert abs(float(thumb.input_value()) - value) < step / 2


def test_the_denoising_page_renders_and_the_slider_changes_the_noisy_row(page, server):
    if not (BUNDLED_MODELS / "dae-16d.safetensors").is_file():
        pytest.skip("the bundled denoising model is not built yet (bash assets/build.sh)")
    open_from_sidebar(page, server, "Denoising")
    page.get_by_role("heading", name="Denoising").wait_for(timeout=90_000)
    page.wait_for_selector(ROW.format("denoiser"), timeout=90_000)
    page.wait_for_selector(".st-key-denoise_chart .main-svg", timeout=90_000)
    settled(page)
    assert_no_exception(page)
    for row in ("clean", "noisy", "active", "denoiser"):
        assert len(sources(page, row)) == N_SHOWN and loaded(page, row) and one_row(page, row), row
    captions = page.locator(".st-key-denoise_row_denoiser [data-testid='stImageCaption']").all_inner_texts()
    assert len(captions) == N_SHOWN and all(c.startswith("error 0.") for c in captions)
    clean, noisy = sources(page, "clean"), sources(page, "noisy")
    page.set_viewport_size({"width": 1280, "height": 800})  # a classroom laptop, the sidebar open
    page.wait_for_timeout(500)
    assert all(one_row(page, row) for row in ("clean", "noisy", "active", "denoiser"))
    tall(page)
    shot(page, "denoise-gaussian")

    set_slider(page, "denoise_level_gaussian", 0.7)
    page.wait_for_function(f"() => [...document.querySelectorAll(\"{ROW.format('noisy')}\")].map(i => i.src)"
                           f".join() !== {','.join(noisy)!r}", timeout=60_000)
    page.wait_for_function("() => location.search.includes('level=0.7')", timeout=60_000)
    settled(page)
    assert sources(page, "clean") == clean and sources(page, "noisy") != noisy and loaded(page, "noisy")
    assert_no_exception(page)

    page.locator(".st-key-denoise_noise").get_by_text("Salt and pepper", exact=True).click()
    page.wait_for_function("() => location.search.includes('noise=salt_pepper')", timeout=60_000)
    settled(page)
    assert sources(page, "clean") == clean and loaded(page, "noisy")
    assert_no_exception(page)
    tall(page)
    shot(page, "denoise-salt-pepper")
