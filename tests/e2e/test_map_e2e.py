"""The Latent map in a real browser: the WebGL scatter, PNG and CSV export, the hover card with the
digit, a click and a box that pick digits (originals vs reconstructions), sending the pick on, and a
t-SNE map as it forms.

Screenshots: test-artifacts/map-*.png.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_no_exception, shot, wait_for_app

CHART = ".st-key-map_scatter .js-plotly-plot"
CARD = "#latent-lab-hover-card"

# Screen position and test-set index of one point of the finished map (a sparse one, so the
# mouse lands on it and not on a neighbour).
POINT_JS = """() => {
  const gd = document.querySelector('%s');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  let best = null;
  for (const t of gd._fullData) {
    for (let i = 0; i < t.x.length; i += 7) {
      const px = xa._offset + xa.l2p(t.x[i]), py = ya._offset + ya.l2p(t.y[i]);
      if (px < 40 || py < 40 || px > xa._length + xa._offset - 40 || py > ya._length + ya._offset - 40) continue;
      let near = 0;
      for (let j = 0; j < t.x.length; j += 3) {
        const dx = xa.l2p(t.x[j]) + xa._offset - px, dy = ya.l2p(t.y[j]) + ya._offset - py;
        if (dx * dx + dy * dy < 100) near++;
      }
      if (best === null || near < best.near) best = {x: r.left + px, y: r.top + py, idx: t.customdata[i], near};
      if (near <= 1) return best;
    }
  }
  return best;
}""" % CHART


def open_map(page, server) -> float:
    """Open the app, then the map page from the sidebar (the way a student does); -> seconds from the
    click to the finished, pickable map."""
    page.goto(server)
    wait_for_app(page)
    t0 = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"] a', has_text="Latent map").click()
    page.wait_for_selector(CHART, timeout=120_000)
    seconds = time.perf_counter() - t0
    wait_for_app(page)
    return seconds


def test_scatter_hover_and_pick(page, server):
    print(f"map page of vae-2d: finished, pickable map {open_map(page, server):.1f} s after the click")
    assert_no_exception(page)
    assert page.locator(".st-key-map_scatter canvas").count() > 0  # WebGL scatter
    n = page.evaluate(f"() => document.querySelector('{CHART}')._fullData.reduce((s, t) => s + t.x.length, 0)")
    assert n == 10_000
    shot(page, "map-native")

    # Export: the modebar's camera saves a PNG (plotly toImage, WebGL included); the CSV has every point.
    page.locator(CHART).hover()
    with page.expect_download(timeout=30_000) as png:
        page.locator('.st-key-map_scatter .modebar-btn[data-title="Download plot as a PNG"]').click()
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
    ink = page.evaluate(f"""() => {{ const c = document.querySelector('{CARD} canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s / (d.length / 4); }}""")
    assert 5 < ink < 200, ink  # a white digit on black, not an empty or blank card
    shot(page, "map-hover")

    page.mouse.click(pt["x"], pt["y"])
    page.get_by_text("Originals").wait_for(timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert page.get_by_text("Reconstructions", exact=True).count() == 1
    page.get_by_role("button", name="to Sliders").scroll_into_view_if_needed()
    shot(page, "map-picked")

    # A box around the middle of the map picks many digits; the page says how many it shows.
    # (Twice at most: on a loaded machine a drag that starts while plotly is still redrawing can be lost;
    # the second try must then work, and a screenshot shows the first.)
    for attempt in (1, 2):
        wait_for_app(page)
        chart = page.locator(CHART)
        chart.scroll_into_view_if_needed()
        chart.hover()
        page.locator('.st-key-map_scatter [data-title="Box Select"]').click()
        page.wait_for_timeout(200)
        box = chart.bounding_box()
        cx, cy = box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5
        page.mouse.move(cx - 60, cy - 60)
        page.mouse.down()
        page.mouse.move(cx + 60, cy + 60, steps=8)
        page.mouse.up()
        try:
            page.get_by_text("picked digits (those with the lowest").wait_for(timeout=30_000)
            break
        except Exception:
            shot(page, f"map-box-try-{attempt}-failed")
            if attempt == 2:
                raise
    wait_for_app(page)
    assert_no_exception(page)
    page.get_by_role("button", name="to Sliders").scroll_into_view_if_needed()
    shot(page, "map-box-picked")

    page.get_by_role("button", name="to Sliders").click()
    page.wait_for_url("**/sliders", timeout=30_000)


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
    page.wait_for_selector(CHART, timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    shot(page, "map-tsne")
