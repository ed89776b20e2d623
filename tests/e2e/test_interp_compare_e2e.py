"""In a real browser: Interpolate (method, steps, GIF download), AE vs VAE and Samples & errors.

Screenshots go to test-artifacts/ (interpolate-*.png, compare-16d.png, compare.png (2-d), gallery.png).
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import assert_no_exception, open_from_sidebar, shot, wait_for_app

STRIP_CAPTION = '[data-testid="stImageCaption"]'
COMPARE = ("compare_map_0", "compare_map_1")


def open_page(page, server, link: str) -> None:
    """Open a page from the sidebar and wait until it is drawn and nothing spins."""
    open_from_sidebar(page, server, link)
    page.wait_for_selector("h1", timeout=90_000)
    wait_for_app(page, timeout=120_000)
    page.wait_for_selector('[data-testid="stSpinner"]', state="detached", timeout=120_000)


def tall(page) -> None:
    """Make the viewport as tall as the page, so a screenshot shows all of it (Streamlit scrolls inside)."""
    h = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(h + 40, 6000))})
    page.wait_for_timeout(800)


def download(page, label: str) -> bytes:
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name=label).click()
    return Path(info.value.path()).read_bytes()


MAPS = "window.__latentLabMaps || {}"


def path_lengths(page, steps: int, keys=("interp_map",)) -> list[int]:
    """Number of steps of the walk drawn on each canvas map (ui/map_canvas.js), once every map shows
    `steps` of them (or after 60 s, to fail with what is drawn)."""
    js = f"() => {{ const m = {MAPS}; return {list(keys)!r}.map(k => m[k] ? m[k].pathLength() : 0); }}"
    try:
        page.wait_for_function(f"() => ({js})().every(n => n === {steps})", timeout=60_000)
    except Exception:
        shot(page, "path-missing")
    return page.evaluate(js)


def set_slider(page, key: str, value: int) -> None:
    """Move a Streamlit slider to `value` with the keyboard, the way a user can. A rerun that lands
    between two key presses can re-render the slider and take its focus, so read the value back
    and press again until it is there."""
    thumb = page.locator(f".st-key-{key} input[type=range]")
    # Off the maps first, as a user reaching for the slider is: a pointer resting on a map keeps the
    # hover card fetching digit images, and each answer reruns its fragment.
    page.mouse.move(2, 2)
    for _ in range(5):
        now = int(float(thumb.input_value()))
        if now == value:
            return
        for _ in range(abs(value - now)):
            thumb.focus()
            page.keyboard.press("ArrowRight" if value > now else "ArrowLeft")
        wait_for_app(page)
    assert int(float(thumb.input_value())) == value


def test_interpolate_in_the_browser(page, server):
    open_page(page, server, "Interpolate")
    assert_no_exception(page)
    page.wait_for_selector(f'{STRIP_CAPTION}:has-text("10 steps, linear")', timeout=60_000)
    assert path_lengths(page, 10) == [10]  # the path drawn over the map, one marker per step
    assert page.evaluate(f"() => ({MAPS}).interp_map.n()") == 10_000  # every test digit
    # Hovering a step of the walk names it and its score.
    page.locator('.st-key-interp_map [data-testid="ll-map-canvas"]').scroll_into_view_if_needed()
    step = page.evaluate(f"() => ({MAPS}).interp_map.stepClient(4)")
    page.mouse.move(step["x"], step["y"])  # straight there: no dot on the way asks for its digit image
    page.wait_for_function(f"() => ({MAPS}).interp_map.state.root.dataset.step === '4'", timeout=5_000)
    shot(page, "interpolate-linear")
    page.mouse.move(5, 5)

    page.locator(".st-key-interp_method").get_by_text("spherical", exact=True).click()
    page.wait_for_selector(f'{STRIP_CAPTION}:has-text("spherical")', timeout=60_000)
    wait_for_app(page)
    set_slider(page, "interp_steps", 14)
    page.wait_for_selector(f'{STRIP_CAPTION}:has-text("14 steps, spherical")', timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert path_lengths(page, 14) == [14]

    gif = download(page, "Animated GIF")
    assert gif[:6] in (b"GIF87a", b"GIF89a") and len(gif) > 1000
    png = download(page, "Strip as PNG")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    tall(page)
    shot(page, "interpolate-spherical")

    page.set_viewport_size({"width": 1400, "height": 1000})
    page.locator(".st-key-interp_source").get_by_text("by test index", exact=True).click()
    page.wait_for_selector(".st-key-interp_from_index input", timeout=60_000)
    box = page.locator(".st-key-interp_from_index input")
    box.fill("42")
    box.press("Enter")
    page.wait_for_selector(f'{STRIP_CAPTION}:has-text("from test #42")', timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)


def test_compare_in_the_browser(page, server):
    open_page(page, server, "AE vs VAE")
    assert_no_exception(page)
    if page.get_by_text("Comparing needs two models").count():  # only one bundled model was built
        shot(page, "compare-one-model")
        return
    page.wait_for_selector('[data-testid="stMain"] [data-testid="stMetric"]', timeout=120_000)
    wait_for_app(page)
    metrics = page.locator('[data-testid="stMain"] [data-testid="stMetricValue"]').all_inner_texts()
    shares = [m.strip() for m in metrics if m.strip().endswith("%")]
    assert len(shares) >= 10, metrics  # six shares per model ("–" where no grid point is empty)
    assert len(metrics) == 12 + 4, metrics  # and the nats: reconstruction for both, KL and -ELBO for the VAE
    assert path_lengths(page, 10, COMPARE) == [10, 10]  # the same walk over both latent maps
    assert page.get_by_text("Why the AE's space has holes").count() == 0  # no fixed textbook box any more
    assert page.get_by_text("Measured fairly", exact=False).count() >= 1
    pair = page.locator(".st-key-compare_pair")
    default_16d = pair.locator("label:has(input:checked)").inner_text().startswith("Bundled 16-d")
    tall(page)
    shot(page, "compare" if not default_16d else "compare-16d")

    pair2 = pair.get_by_text("Bundled 2-d pair", exact=False)
    if default_16d and pair2.count():  # the 2-d pair: native planes, and the page's note on what it shows
        page.set_viewport_size({"width": 1400, "height": 1000})
        pair2.click()
        page.wait_for_function(f"""() => {{ const m = {MAPS}; return {list(COMPARE)!r}.every(k =>
            m[k] && m[k].state.d.axes[0] === 'z₁'); }}""", timeout=120_000)  # both maps on their own plane
        page.wait_for_selector('[data-testid="stSpinner"]', state="detached", timeout=120_000)
        wait_for_app(page)
        assert_no_exception(page)
        # the rebuilt 2-d pair: the VAE clearly ahead on samples fitted to each model's codes, so the verdict
        # says that and the note "does not show the textbook gap" (shown only when the figures agree) is absent
        assert page.get_by_text("the VAE decodes more to digits on samples from a Gaussian fitted",
                                exact=False).count() >= 1
        assert page.get_by_text("does not show the textbook gap", exact=False).count() == 0
        assert path_lengths(page, 10, COMPARE) == [10, 10]
        tall(page)
        shot(page, "compare")


def test_gallery_in_the_browser(page, server):
    open_page(page, server, "Samples & errors")
    assert_no_exception(page)
    page.wait_for_selector('[data-testid="stMain"] [data-testid="stMetric"]', timeout=120_000)
    page.wait_for_selector('[data-testid="stSpinner"]', state="detached", timeout=120_000)
    wait_for_app(page)
    assert page.locator('[data-testid="stMain"] img').count() >= 2 + 20  # samples, reconstructions, 20 worst
    png = download(page, "Samples as PNG")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    tall(page)
    shot(page, "gallery")
