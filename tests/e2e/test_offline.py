"""A classroom with no data folder and no network: every page works on the bundled models, and
training says where to put the training data. Runs its own server with LATENT_LAB_DATA pointing
at an empty folder (the bundled MNIST test digits stand in for the test split)."""

import pytest

from tests.e2e.conftest import assert_no_exception, shot, start_server, wait_for_app

PAGES = ["Welcome", "Latent map", "Draw a digit", "Sliders", "Interpolate", "AE vs VAE", "Samples & errors", "Few labels", "Denoising",
         "Train & library"]


@pytest.fixture(scope="module")
def offline_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("offline")
    (home / "no-data").mkdir()
    proc, url = start_server(home, None)  # LATENT_LAB_DATA -> an empty folder
    yield url
    proc.terminate()
    proc.wait(20)


def test_every_page_works_without_data(offline_server, page):
    page.goto(offline_server)
    page.wait_for_selector('[data-testid="stSidebarNav"]', timeout=90_000)
    wait_for_app(page)
    for name in PAGES:
        page.locator('[data-testid="stSidebarNav"] a', has_text=name).click()
        page.wait_for_selector("h1", timeout=90_000)
        wait_for_app(page, timeout=120_000)
        page.wait_for_selector('[data-testid="stSpinner"]', state="detached", timeout=120_000)
        assert_no_exception(page)
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0, name
    # the last page is Train & library: a sentence saying where the training data goes
    warning = page.get_by_text("No training data yet").first
    warning.wait_for(timeout=30_000)
    assert "MNIST" in warning.inner_text() and "LATENT_LAB_DATA" in warning.inner_text()
    shot(page, "offline-train")
