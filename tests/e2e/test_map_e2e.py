"""The Latent map in a real browser: the canvas scatter, PNG and CSV export, the hover card with the
digit, a click and a box that pick digits (originals vs reconstructions), wheel zoom and reset,
sending the pick on, and a t-SNE map as it forms.

Screenshots: test-artifacts/map-*.png.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_no_exception, shot, wait_for_app

CANVAS = '[data-testid="ll-map-canvas"]'
CARD = "#latent-lab-hover-card"
API = "window.__latentLabMaps && window.__latentLabMaps.map_scatter"

# Screen position and test-set index of one point of the finished map (a sparse one, so the
# mouse lands on it and not on a neighbour).
POINT_JS = """() => {
  const m = %s, n = m.n();
  const xy = [...Array(n).keys()].map(i => m.toClient(i));
  const r = m.state.over.getBoundingClientRect();
  let best = null;
  for (let i = 0; i < n; i += 7) {
    const p = xy[i];
    if (p.x < r.left + 80 || p.y < r.top + 40 || p.x > r.right - 40 || p.y > r.bottom - 70) continue;
    let near = 0;
    for (let j = 0; j < n; j += 3) { const dx = xy[j].x - p.x, dy = xy[j].y - p.y; if (dx * dx + dy * dy < 100) near++; }
    if (best === null || near < best.near) best = {x: p.x, y: p.y, idx: i, near};
    if (near <= 1) return best;
  }
  return best;
}""" % API


def map_ready(page) -> None:
    page.wait_for_function(f"() => {{ const m = {API}; return !!m && m.n() > 0; }}", timeout=120_000)


def open_map(page, server) -> float:
    """Open the app, then the map page from the sidebar (the way a student does); -> seconds from the
    click to the finished, pickable map."""
    page.goto(server)
    wait_for_app(page)
    t0 = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"] a', has_text="Latent map").click()
    map_ready(page)
    seconds = time.perf_counter() - t0
    wait_for_app(page)
    return seconds


def test_scatter_hover_and_pick(page, server):
    print(f"map page of vae-2d: finished, pickable map {open_map(page, server):.1f} s after the click")
    assert_no_exception(page)
    n = page.evaluate(f"() => {API}.n()")
    assert n == 10_000
    drawn = page.evaluate(f"() => {API}.state.root.dataset.points")
    assert int(drawn) > 9_000  # every dot inside the view is drawn (a few may sit under the frame)
    shot(page, "map-native")

    # Export: "Save PNG" saves the map at twice the screen size; the CSV has every point.
    with page.expect_download(timeout=30_000) as png:
        page.get_by_role("button", name="Save PNG").click()
    assert png.value.suggested_filename == "latent-map-vae-2d-native.png"
    data = Path(png.value.path()).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    with page.expect_download(timeout=30_000) as csv:
        page.get_by_role("button", name="Download the map's coordinates (CSV)").click()
    lines = Path(csv.value.path()).read_text().splitlines()
    assert lines[0] == "index,label,x,y" and len(lines) == 10_001
    wait_for_app(page)

    pt = page.evaluate(POINT_JS)
    page.mouse.move(pt["x"] - 30, pt["y"] - 30)
    page.mouse.move(pt["x"], pt["y"], steps=5)
    t0 = time.perf_counter()
    page.wait_for_function(
        f"() => {{ const c = document.querySelector('{CARD}'); return c && c.style.display === 'block' "
        "&& c.dataset.shown; }", timeout=20_000)
    print(f"hover card with the digit (first sheet of 250 fetched) after {time.perf_counter() - t0:.2f} s")
    shown = page.evaluate(f"() => document.querySelector('{CARD}').dataset.shown")
    label = page.locator(CARD).inner_text()
    assert f"#{shown}" in label and label.startswith("digit ")
    assert int(shown) == pt["idx"]  # the dot under the mouse, not a neighbour
    ink = page.evaluate(f"""() => {{ const c = document.querySelector('{CARD} canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s / (d.length / 4); }}""")
    assert 5 < ink < 200, ink  # a white digit on black, not an empty or blank card
    shot(page, "map-hover")

    page.mouse.click(pt["x"], pt["y"])
    # The page streams in: "Originals" shows before the buttons under it, so wait for the button.
    page.get_by_role("button", name="Send 1 to Sliders").wait_for(timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert page.get_by_text("Reconstructions", exact=True).count() == 1
    page.get_by_role("button", name="to Sliders").scroll_into_view_if_needed()
    shot(page, "map-picked")

    # A box around the middle of the map picks many digits; the page says how many it shows.
    wait_for_app(page)
    page.get_by_role("button", name="Box select").click()
    box = page.locator(CANVAS).bounding_box()
    cx, cy = box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5
    page.mouse.move(cx - 60, cy - 60)
    page.mouse.down()
    page.mouse.move(cx + 60, cy + 60, steps=8)
    page.mouse.up()
    page.get_by_text("picked digits (those with the lowest").wait_for(timeout=30_000)
    boxed = page.evaluate(f"() => {API}.picked()")
    assert boxed > 24
    page.get_by_role("button", name=f"Send {min(boxed, 500):,} to Sliders").wait_for(timeout=30_000)

    # A lasso with Shift held adds the digits it goes around to the pick.
    page.get_by_role("button", name="Lasso").click()
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    for fx, fy in ((0.45, 0.2), (0.45, 0.45), (0.15, 0.45), (0.15, 0.21)):
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_function(f"() => {API}.picked() > {boxed}", timeout=5_000)
    boxed = page.evaluate(f"() => {API}.picked()")
    page.wait_for_function(f"() => document.body.innerText.includes('Send {min(boxed, 500):,} to Sliders')",
                           timeout=30_000)
    wait_for_app(page)

    # The legend hides a class (and its dots cannot be picked meanwhile), and shows it again.
    drawn = int(page.evaluate(f"() => {API}.state.root.dataset.points"))
    page.locator('[data-testid="ll-map-legend"] button', has_text="1").click()
    page.wait_for_function(f"() => Number({API}.state.root.dataset.points) < {drawn}", timeout=5_000)
    shot(page, "map-legend-hides-1")
    page.locator('[data-testid="ll-map-legend"] button', has_text="1").click()
    page.wait_for_function(f"() => Number({API}.state.root.dataset.points) === {drawn}", timeout=5_000)

    # Zoom into the middle with the wheel and back: the pick stays, the view comes back.
    before = page.evaluate(f"() => {API}.toClient(0)")
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(200)
    zoomed = page.evaluate(f"() => {API}.toClient(0)")
    assert abs(zoomed["x"] - before["x"]) + abs(zoomed["y"] - before["y"]) > 5
    page.get_by_role("button", name="Reset view").click()
    back = page.evaluate(f"() => {API}.toClient(0)")
    assert abs(back["x"] - before["x"]) < 1 and abs(back["y"] - before["y"]) < 1
    assert page.evaluate(f"() => {API}.picked()") == boxed
    wait_for_app(page)
    assert_no_exception(page)
    page.get_by_role("button", name="to Sliders").scroll_into_view_if_needed()
    shot(page, "map-box-picked")

    page.get_by_role("button", name="to Sliders").click()
    page.wait_for_url("**/sliders?**start=picked**", timeout=30_000)  # on the picks (ui/links.py)


@pytest.mark.slow  # computes a real t-SNE unless the bundled maps are built: ~15 s on an idle 2-core machine
def test_tsne_map_forms_then_finishes(page, server):
    open_map(page, server)
    page.get_by_text("t-SNE", exact=True).click()
    t0 = time.perf_counter()
    page.wait_for_function(
        """() => document.querySelector('[data-testid="ll-live-legend"]') ||
                 document.body.innerText.includes('t-SNE of all 10,000 test digits')""", timeout=60_000)
    print(f"t-SNE: first picture after {time.perf_counter() - t0:.1f} s")
    if page.locator('[data-testid="ll-live-legend"]').count():
        assert page.locator('[data-testid="stProgress"]').count() == 1
        shot(page, "map-tsne-preview")
        page.get_by_text("t-SNE as it forms").wait_for(timeout=180_000)
        print(f"t-SNE: first intermediate embedding after {time.perf_counter() - t0:.1f} s")
        page.wait_for_timeout(1000)
        shot(page, "map-tsne-forming")
    try:
        page.get_by_text("t-SNE of all 10,000 test digits").wait_for(timeout=600_000)
    finally:
        shot(page, "map-tsne")
    print(f"t-SNE: finished map after {time.perf_counter() - t0:.1f} s")
    map_ready(page)
    wait_for_app(page)
    assert_no_exception(page)
    shot(page, "map-tsne")
