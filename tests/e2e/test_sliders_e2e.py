"""Sliders in a real browser: the digit follows a dragged slider, before the mouse is released.

For every bundled model: open the page, drag the first slider with mouse down / move / up,
check the canvas changed *during* the drag, count the frames drawn per second of dragging
and read the in-browser decode time; then release (Python gets the code) and reset.
Two frame rates: with Playwright's mouse (bounded by how fast it can send events on a busy
machine) and with input events sent in the page at 120 Hz (a fast real mouse); the display
caps both at its refresh rate (60 Hz headless), as every frame is drawn in requestAnimationFrame.
Figures are printed (run with -s) and written to test-artifacts/sliders-fps.json; they are
not asserted, as timing on a shared machine is no pass/fail criterion.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import ARTIFACTS, assert_no_exception, shot, wait_for_app
from vae.checkpoint import BUNDLED_DIR, ModelLibrary
from vae.export import pack_decoder
from vae.models import decoder_layers

CANVAS = "canvas[data-testid=ll-canvas]"
# A checksum of the canvas pixels (red channel, position-weighted): changes whenever the image does.
PIXELS = """c => { const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
                   let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] * (1 + (i % 97)); return s; }"""
FIGURES: dict[str, dict] = {}


def bundled() -> list:
    if not BUNDLED_DIR.is_dir():
        return []
    # The bundled folder doubles as the "user" folder so that nothing is created on disk.
    return [e for e in ModelLibrary(BUNDLED_DIR, BUNDLED_DIR).entries() if e.bundled]


def settled(page) -> None:
    """Wait until the script run is over and no element is greyed out as stale."""
    wait_for_app(page)
    page.wait_for_function("""() => !document.querySelector('[data-stale="true"]')""", timeout=60_000)


def open_sliders(page, server) -> None:
    """Open the app at its root (so that a fresh server switches to app.py's navigation), then Sliders."""
    page.goto(server)
    page.wait_for_selector('[data-testid="stSidebarNav"] a:has-text("Samples & errors")', timeout=90_000)
    wait_for_app(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Sliders").click()
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


# Input events at 120 Hz (a fast mouse) straight to the slider, for `ms`: how many frames get drawn.
SYNTHETIC = """async (input, ms) => {
  const canvas = input.getRootNode().querySelector('canvas');
  const lo = Number(input.min), hi = Number(input.max), f0 = Number(canvas.dataset.frames);
  const t0 = performance.now();
  let k = 0;
  await new Promise(done => { const id = setInterval(() => {
    input.value = lo + (hi - lo) * (0.5 + 0.4 * Math.sin(++k / 12));
    input.dispatchEvent(new Event('input', {bubbles: true}));
    if (performance.now() - t0 > ms) { clearInterval(id); done(); }
  }, 1000 / 120); });
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return {frames: Number(canvas.dataset.frames) - f0, seconds: (performance.now() - t0) / 1000, events: k};
}"""


def synthetic_fps(page, seconds: float = 1.5) -> float:
    r = page.locator("input[type=range]").first.evaluate(SYNTHETIC, seconds * 1000)
    return round(r["frames"] / r["seconds"], 1)


def drag_and_measure(page, seconds: float = 1.5) -> dict:
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
    f0, t0 = int(canvas.get_attribute("data-frames")), time.perf_counter()
    left, right = box["x"] + 0.1 * box["width"], box["x"] + 0.9 * box["width"]
    while time.perf_counter() - t0 < seconds:
        page.mouse.move(left, y, steps=30)
        page.mouse.move(right, y, steps=30)
    f1, t1 = int(canvas.get_attribute("data-frames")), time.perf_counter()
    decode_ms = float(canvas.get_attribute("data-decode-ms"))
    page.mouse.up()
    return {"fps_during_drag": round((f1 - f0) / (t1 - t0), 1), "frames": f1 - f0,
            "decode_ms": decode_ms, "decode_bound_fps": round(1000 / max(decode_ms, 1e-3))}


def test_slider_drag_redraws_the_digit_live(page, server):
    open_sliders(page, server)
    assert_no_exception(page)
    shot(page, "sliders-open")
    drag_and_measure(page, seconds=0.3)
    page.get_by_text("to where you released the sliders").wait_for(timeout=60_000)  # Python got the code
    settled(page)
    assert_no_exception(page)
    shot(page, "sliders-after-drag")


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
    page.wait_for_function(f"""() => !document.body.innerText.includes('to where you released the sliders')""",
                           timeout=60_000)
    wait_for_app(page)
    assert page.locator("input[type=range]").first.input_value() == value
    assert canvas.evaluate(PIXELS) == start
    assert_no_exception(page)


@pytest.mark.parametrize("entry", bundled(), ids=lambda e: e.id)
def test_frames_per_second_for_every_bundled_model(page, server, entry):
    open_sliders(page, server)
    choose_model(page, entry.name)
    assert_no_exception(page)
    n = page.locator("input[type=range]").count()
    assert n == min(entry.config.latent_dim, 8)
    fps_120hz = synthetic_fps(page)
    figures = drag_and_measure(page)
    figures["fps_at_120hz_input"] = fps_120hz
    from vae.checkpoint import load_checkpoint

    model, _ = load_checkpoint(entry.path)
    figures["payload_bytes"] = len(pack_decoder(decoder_layers(model), "float16"))
    figures["sliders"] = n
    FIGURES[entry.id] = figures
    print(f"\n{entry.id}: {figures}")
    page.get_by_text("to where you released the sliders").wait_for(timeout=60_000)
    settled(page)
    shot(page, f"sliders-{entry.id}")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "sliders-fps.json").write_text(json.dumps(FIGURES, indent=2))
