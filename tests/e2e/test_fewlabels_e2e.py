"""Few labels in a real browser: opened from the sidebar, the page measures (a progress bar, then the chart),
draws the curves of the active model, the pixels and the other bundled models with chance marked, the
labelled digits and the misses; the method radio redraws the figures. Screenshots: test-artifacts/fewlabels-*.png."""

from __future__ import annotations

from tests.e2e.conftest import assert_no_exception, open_from_sidebar, settled, shot

CHART = '[data-testid="stPlotlyChart"]'


def open_fewlabels(page, server) -> None:
    open_from_sidebar(page, server, "Few labels")
    # a cold server measures every curve first (seconds on a busy machine), behind a progress bar
    page.wait_for_selector(f"{CHART} .legend", timeout=180_000)
    settled(page)


def test_the_page_draws_the_curves_the_labelled_digits_and_the_misses(page, server):
    open_fewlabels(page, server)
    assert_no_exception(page)
    charts = page.locator(CHART)
    assert charts.count() == 2
    curves = charts.first.inner_text()
    for text in ("VAE 2-d (bundled), active", "VAE 16-d (bundled)", "AE 2-d (bundled)", "raw pixels (no encoder)",
                 "chance (10%)", "labelled digits per class", "10 shown below"):
        assert text in curves, text
    assert charts.first.locator(".scatterlayer .trace").count() >= 6  # a curve per source, bands, the k line
    assert charts.nth(1).locator(".heatmaplayer").count() == 1  # the misses
    image = page.locator('[data-testid="stImage"] img').last
    image.wait_for(timeout=30_000)
    box = image.bounding_box()
    assert box["width"] > 200 and box["height"] > 200  # ten columns of ten labelled digits
    assert page.get_by_text("9,900 test digits labelled").count() == 1
    shot(page, "fewlabels-knn")

    page.locator('[data-testid="stRadio"] label', has_text="nearest class mean").click()
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stMetricLabel]')]"
                           ".some(e => e.innerText.includes('Raw pixels, nearest class mean'))", timeout=60_000)
    settled(page)
    assert_no_exception(page)
    assert "method=mean" in page.url and "k=10" in page.url
    shot(page, "fewlabels-mean")
