"""Sliders in a real browser: the digit follows a dragged slider, before the mouse is released.

For every bundled model: open the page, drag the first slider with mouse down / move / up, check
that the canvas changed *during* the drag and kept redrawing; then release (Python gets the code)
and reset. How many frames a second it draws is a figure, not a pass/fail criterion on a shared
machine: `python -m benchmarks.bench_sliders` measures it.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import assert_no_exception, open_from_sidebar, settled, shot, wait_for_app
from vae.checkpoint import ModelLibrary
from vae.paths import BUNDLED_MODELS

CANVAS = "canvas[data-testid=ll-canvas]"
# A checksum of the canvas pixels (red channel, position-weighted): changes whenever the image does.
PIXELS = """c => { const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
                   let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] * (1 + (i % 97)); return s; }"""


def bundled() -> list:
    if not BUNDLED_MODELS.is_dir():
        return []
    # The bundled folder doubles as the "user" folder so that nothing is created on disk.
    return [e for e in ModelLibrary(BUNDLED_MODELS, BUNDLED_MODELS).entries() if e.bundled]


def open_sliders(page, server) -> None:
    open_from_sidebar(page, server, "Sliders")
    page.wait_for_selector(CANVAS, timeout=90_000)
    wait_for_app(page)


def choose_model(page, name: str) -> None:
    canvas = page.locator(CANVAS)
    token = canvas.get_attribute("data-token")
    if page.locator('[data-testid="stSidebar"] [data-testid="stMarkdown"]', has_text=name).count():
        return  # already the active model (the sidebar shows its name under the picker)
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    page.locator('[role="option"]', has_text=name).first.click()
    page.wait_for_function(f"""() => {{ const c = document.querySelector('{CANVAS}') ||
        [...document.querySelectorAll('*')].map(e => e.shadowRoot && e.shadowRoot.querySelector('{CANVAS}'))
                                              .find(Boolean);
        return c && c.dataset.token !== '{token}'; }}""", timeout=90_000)
    wait_for_app(page)


def thumb(page):
    """The first slider and the page coordinates of its thumb."""
    slider = page.locator("input[type=range]").first
    lo, hi, v = slider.evaluate("e => [Number(e.min), Number(e.max), Number(e.value)]")
    box = slider.bounding_box()
    return slider, box, box["x"] + 8 + (v - lo) / (hi - lo) * (box["width"] - 16), box["y"] + box["height"] / 2


def drag(page) -> None:
    """Drag the first slider to and fro without releasing it; the digit must change, and keep being
    redrawn, while the mouse is down. Released at the end (then Python gets the code)."""
    canvas = page.locator(CANVAS)
    slider, box, x, y = thumb(page)
    before = canvas.evaluate(PIXELS)
    value_before = slider.input_value()
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 0.25 * box["width"] * (1 if x < box["x"] + box["width"] / 2 else -1), y, steps=4)
    during = canvas.evaluate(PIXELS)  # the mouse is still down
    assert during != before, "the digit did not change while the slider was being dragged"
    assert slider.input_value() != value_before
    frames = int(canvas.get_attribute("data-frames"))
    page.mouse.move(box["x"] + 0.1 * box["width"], y, steps=10)
    page.mouse.move(box["x"] + 0.9 * box["width"], y, steps=10)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")  # drawn by now
    assert int(canvas.get_attribute("data-frames")) > frames, "no frame drawn while the drag went on"
    assert canvas.evaluate(PIXELS) != during
    page.mouse.up()


def test_slider_drag_redraws_the_digit_live(page, server):
    open_sliders(page, server)
    assert_no_exception(page)
    shot(page, "sliders-open")
    drag(page)
    page.get_by_text("to where you released the sliders").wait_for(timeout=60_000)  # Python got the code
    settled(page)
    assert_no_exception(page)
    shot(page, "sliders-after-drag")
    # The released code is in the address (ui/links.py): a reload shows the same sliders.
    page.wait_for_function("() => new URLSearchParams(location.search).has('z')", timeout=30_000)
    values = page.locator("input[type=range]").evaluate_all("els => els.map(e => Number(e.value))")
    page.reload()
    page.wait_for_selector(CANVAS, timeout=90_000)
    settled(page)
    again = page.locator("input[type=range]").evaluate_all("els => els.map(e => Number(e.value))")
    assert len(again) == len(values) and all(abs(a - b) < 0.013 for a, b in zip(again, values))  # a slider step


def test_reset_returns_to_the_start(page, server):
    open_sliders(page, server)
    canvas = page.locator(CANVAS)
    start = canvas.evaluate(PIXELS)
    slider, box, x, y = thumb(page)
    value = slider.input_value()
    page.mouse.click(box["x"] + 0.1 * box["width"] if x > box["x"] + box["width"] / 2 else
                     box["x"] + 0.9 * box["width"], y)
    page.get_by_text("to where you released the sliders").wait_for(timeout=60_000)
    assert canvas.evaluate(PIXELS) != start
    page.get_by_role("button", name="Reset").click()
    page.wait_for_function("""() => !document.body.innerText.includes('to where you released the sliders')""",
                           timeout=60_000)
    wait_for_app(page)
    assert page.locator("input[type=range]").first.input_value() == value
    assert canvas.evaluate(PIXELS) == start
    assert_no_exception(page)


@pytest.mark.parametrize("entry", bundled(), ids=lambda e: e.id)
def test_every_bundled_model_redraws_while_dragged(page, server, entry):
    open_sliders(page, server)
    choose_model(page, entry.name)
    assert_no_exception(page)
    assert page.locator("input[type=range]").count() == min(entry.config.latent_dim, 8)
    drag(page)
    page.get_by_text("to where you released the sliders").wait_for(timeout=60_000)
    settled(page)
    assert_no_exception(page)
    shot(page, f"sliders-{entry.id}")


def test_sliders_link_send_to_interpolate_and_the_picks_link(page, server):
    """A link opens the sliders where it says (start, slider values); "Send to Interpolate" walks from the
    start to the closest digit; the link to interpolate the picks is readable in full and opens on them."""
    page.goto(f"{server}/sliders?model=vae-2d&start=picked&digit=42&picks=0-40,42,100-557&z=1.5,-0.25")
    page.wait_for_selector(CANVAS, timeout=90_000)
    settled(page)
    assert_no_exception(page)
    values = page.locator("input[type=range]").evaluate_all("els => els.map(e => Number(e.value))")
    # the link's slider values (to a slider's step)
    assert len(values) == 2 and all(abs(v - w) < 0.013 for v, w in zip(values, [1.5, -0.25]))
    assert page.get_by_text("to where you released the sliders").count() == 1
    link = page.locator('[data-testid="stPageLink"]', has_text="Interpolate the 500 picks")
    link.wait_for(timeout=30_000)
    clipped = link.evaluate("""e => [...e.querySelectorAll('*')].some(c => c.scrollWidth > c.clientWidth + 1)
                                    || e.scrollWidth > e.clientWidth + 1""")
    assert not clipped, link.inner_text()
    shot(page, "sliders-link")
    link.click()
    page.wait_for_url("**/interpolate?**mode=map**", timeout=60_000)
    page.get_by_text("500 digits are picked").wait_for(timeout=90_000)
    assert_no_exception(page)

    page.goto(f"{server}/sliders?model=vae-2d&start=digit&digit=7")
    page.wait_for_selector(CANVAS, timeout=90_000)
    settled(page)
    page.get_by_role("button", name="Send to Interpolate").click()
    page.wait_for_url("**/interpolate?**", timeout=60_000)
    page.get_by_role("heading", name="From test #7").wait_for(timeout=90_000)  # the start, to its closest digit
    wait_for_app(page)
    assert_no_exception(page)
    assert "mode=index" in page.url and "from=7" in page.url
