"""Train & library in a real browser: start a three-second training, leave the page and come back,
watch it finish, and find the new model active in the sidebar and the library.

Screenshots: test-artifacts/train-1-form.png, train-2-running.png, train-3-done.png, train-4-library.png.
"""

from __future__ import annotations

import re

from tests.e2e.conftest import assert_no_exception, shot, wait_for_app

NAME = "e2e quick VAE"


def nav(page, label: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=label).click()
    wait_for_app(page)


def test_train_a_model_and_watch_it_finish(server, page):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # here: without Playwright this skips

    page.set_viewport_size({"width": 1400, "height": 2100})  # Streamlit scrolls inside; a tall window shows all
    page.goto(server)  # the app's entry first: it registers the navigation, then the page is one click away
    wait_for_app(page)
    nav(page, "Train & library")
    page.locator('[data-testid="stFileUploader"]').wait_for(timeout=60_000)  # the page's last element
    page.locator('[data-testid="stDataFrame"]').wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    assert_no_exception(page)
    shot(page, "train-1-form")

    page.get_by_label("Time budget (seconds)").fill("3")
    page.keyboard.press("Enter")
    wait_for_app(page)
    page.get_by_label("Name (optional)").fill(NAME)
    page.keyboard.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_role("button", name="Cancel training").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"Starting|Epoch \d|Waiting for a free slot")).first.wait_for(timeout=60_000)
    try:  # the first steps draw the live curves; on a slow machine the run may end before that
        page.get_by_text(re.compile(r"^Epoch \d")).first.wait_for(timeout=30_000)
        page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=10_000)
    except PlaywrightTimeout:
        pass
    assert_no_exception(page)
    shot(page, "train-2-running")

    nav(page, "Welcome")  # training goes on in its own process while the user is elsewhere
    page.wait_for_timeout(1500)
    nav(page, "Train & library")
    page.get_by_text(NAME).first.wait_for(timeout=30_000)  # the session's job is shown again

    page.get_by_text("is saved in the library").wait_for(timeout=300_000)
    wait_for_app(page)
    page.wait_for_timeout(500)
    assert_no_exception(page)
    assert page.get_by_role("button", name="Cancel training").count() == 0  # the live refresh has stopped
    shot(page, "train-3-done")

    assert page.get_by_role("combobox", name="Active model").input_value() == NAME  # the sidebar's picker
    assert page.locator('[data-testid="stSidebar"]').get_by_text(NAME).count() >= 1
    assert page.get_by_role("combobox", name="Model to manage").input_value() == NAME  # the library's picker
    page.get_by_role("heading", name="Model library").scroll_into_view_if_needed()
    shot(page, "train-4-library")
