"""The Latent map shows the holes, in a real browser, on the bundled 2-d AE (`?model=ae-2d`): hovering empty
space reports the point under the cursor (no dot, data coordinates), the digit-likeness layer paints the
empty space, a click on empty space decodes that point with its send buttons, and zooming asks for the layer
of the new view (and only the layer travels: the dots are not sent again).

Screenshots: test-artifacts/holes-map-*.png.
"""

from __future__ import annotations

import json
import time

from tests.e2e.conftest import assert_no_exception, shot, wait_for_app

API = "window.__latentLabMaps && window.__latentLabMaps.map_scatter"
DOTS = b'\\"labels\\": \\"'  # in the map canvas's data (JSON in JSON): the dots' classes
CHANNEL = b'function channel('  # the layer channel's code, which comes with its data

# A spot of the plot with no dot within `gap` px, away from the frame and the ticks, as far from the centre
# of the codes as `side` asks ("near": the emptiest spot among those nearest the dots' middle).
EMPTY_JS = """([gap, side]) => {
  const m = %s, S = m.state, r = S.over.getBoundingClientRect(), n = m.n();
  const xs = [], ys = [];
  for (let i = 0; i < n; i++) { const p = m.toClient(i); xs.push(p.x - r.left); ys.push(p.y - r.top); }
  const cx = xs.reduce((a, b) => a + b) / n, cy = ys.reduce((a, b) => a + b) / n;
  let best = null;
  for (let py = 40; py < S.h - 70; py += 6) for (let px = 90; px < S.w - 40; px += 6) {
    let near = Infinity;
    for (let i = 0; i < n; i++) { const dx = xs[i] - px, dy = ys[i] - py; near = Math.min(near, dx * dx + dy * dy); }
    if (near < gap * gap) continue;
    const d = Math.hypot(px - cx, py - cy), score = side === "near" ? -d : d;
    if (!best || score > best.score) best = { score, px, py, x: r.left + px, y: r.top + py };
  }
  return best;
}""" % API

# Sample the map canvas at spots with no dot within 6 px (and off the grid lines' pixels): their mean grey level.
EMPTY_PIXELS_JS = """() => {
  const m = %s, S = m.state, n = m.n(), c = S.base, k = c.width / S.w, ctx = c.getContext('2d');
  const xs = [], ys = [];
  for (let i = 0; i < n; i++) { xs.push(S.sx[i]); ys.push(S.sy[i]); }
  const out = [];
  for (let py = 30; py < S.h - 60; py += 17) for (let px = 75; px < S.w - 30; px += 17) {
    let free = true;
    for (let i = 0; i < n && free; i++) { const dx = xs[i] - px, dy = ys[i] - py; free = dx * dx + dy * dy > 36; }
    if (!free) continue;
    const d = ctx.getImageData(Math.round(px * k) + 1, Math.round(py * k) + 1, 1, 1).data;
    out.push((d[0] + d[1] + d[2]) / 3);
  }
  return out;
}""" % API


def open_ae_map(page, server) -> None:
    page.goto(f"{server}/map?model=ae-2d")
    wait_for_app(page)
    page.wait_for_function(f"() => {{ const m = {API}; return !!m && m.n() === 10000; }}", timeout=120_000)
    wait_for_app(page)
    assert_no_exception(page)
    page.evaluate(f"() => {API}.state.over.scrollIntoView({{block: 'center'}})")  # the mouse reaches the window only
    page.wait_for_timeout(100)


def listen_hover(page) -> None:
    page.evaluate("""() => { window.__hoverSeen = [];
        window.addEventListener('latent-lab-map-hover', e => window.__hoverSeen.push(e.detail)); }""")


def test_hovering_empty_space_reports_the_point_under_the_cursor(page, server):
    open_ae_map(page, server)
    listen_hover(page)
    spot = page.evaluate(EMPTY_JS, [25, "far"])
    assert spot, "no empty spot on the AE's map"
    page.mouse.move(spot["x"] - 20, spot["y"] - 20)
    page.mouse.move(spot["x"], spot["y"], steps=4)
    page.wait_for_timeout(100)
    last = page.evaluate("() => window.__hoverSeen[window.__hoverSeen.length - 1]")
    assert last is not None and last["index"] is None and last["name"] == "" and last["key"] == "map_scatter"
    # The data coordinates are the cursor's: the map puts them back at the same pixel.
    back = page.evaluate(f"([x, y]) => {API}.dataToClient(x, y)", [last["x"], last["y"]])
    assert abs(back["x"] - spot["x"]) < 1.5 and abs(back["y"] - spot["y"]) < 1.5
    assert (last["clientX"], last["clientY"]) == (spot["x"], spot["y"])
    shot(page, "holes-map-hover-empty")
    # Over a dot the event names it; off the plot it is null.
    p0 = page.evaluate(f"() => {API}.toClient(0)")
    page.mouse.move(p0["x"], p0["y"], steps=3)
    page.wait_for_timeout(50)
    over_dot = page.evaluate("() => window.__hoverSeen[window.__hoverSeen.length - 1]")
    assert over_dot is not None and over_dot["index"] is not None
    page.mouse.move(5, 5)
    page.wait_for_timeout(50)
    assert page.evaluate("() => window.__hoverSeen[window.__hoverSeen.length - 1]") is None


def test_the_layer_paints_empty_space_and_a_zoom_asks_for_the_new_view(page, server):
    frames = []  # the websocket messages the page receives
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f.encode() if isinstance(f, str) else f)))
    open_ae_map(page, server)
    assert any(DOTS in f for f in frames)  # the page with its map came this way
    blank = page.evaluate(EMPTY_PIXELS_JS)
    assert len(blank) > 50 and min(blank) > 225, "without the layer, empty space is white (or a grid line)"
    page.get_by_text("Show where it decodes to a digit").click()
    t0 = time.perf_counter()
    page.wait_for_function(f"() => {API}.state.root.dataset.layer", timeout=60_000)
    print(f"layer drawn {time.perf_counter() - t0:.2f} s after the toggle")
    wait_for_app(page)
    assert_no_exception(page)
    painted = page.evaluate(EMPTY_PIXELS_JS)
    dark = sum(v < 200 for v in painted)
    print(f"empty spots painted dark: {dark} of {len(painted)}")
    # The bundled 2-d AE decodes most of its plane to digits (the layer is clear there), with dark bands
    # where one digit turns into another: some empty spots must be dark now.
    assert dark >= 5 and min(painted) < 150, "the layer paints empty space where the decoder draws no digit"
    legend = page.locator('[data-testid="ll-layer-legend"]').inner_text()
    assert "not confident the decoded image is a digit" in legend and "of the visible region" in legend
    first_text = page.evaluate(f"() => {API}.state.root.dataset.layer")
    first = json.loads(first_text)
    shot(page, "holes-map-layer")

    # Zoom into the middle of the map: once the view settles the map asks for, and draws, the new view's layer.
    box = page.locator('[data-testid="ll-map-canvas"]').bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.45)
    page.wait_for_timeout(1000)  # what a hover fetches (the hover card's) comes before the zoom's count starts
    wait_for_app(page)
    asked = int(page.evaluate(f"() => {API}.state.root.dataset.layerAsked"))
    frames.clear()
    page.mouse.wheel(0, -500)
    t0 = time.perf_counter()
    page.wait_for_function(f"() => Number({API}.state.root.dataset.layerAsked) > {asked}", timeout=5_000)
    page.wait_for_function(f"(old) => {API}.state.root.dataset.layer && {API}.state.root.dataset.layer !== old",
                           arg=first_text, timeout=30_000)
    print(f"new view's layer drawn {time.perf_counter() - t0:.2f} s after the wheel "
          f"(including the {300} ms the view must rest)")
    second = json.loads(page.evaluate(f"() => {API}.state.root.dataset.layer"))
    span = lambda v: (v[0][1] - v[0][0]) * (v[1][1] - v[1][0])  # noqa: E731
    assert span(second) < span(first) * 0.8, (first, second)
    wait_for_app(page)
    page.wait_for_timeout(300)
    print(f"websocket bytes received for the zoom: {sum(map(len, frames)):,} in {len(frames)} frames; "
          f"the layer's: {sum(len(f) for f in frames if CHANNEL in f):,}")
    assert any(CHANNEL in f for f in frames), "the new layer came through its channel"
    assert not any(DOTS in f for f in frames), "a new view sends the layer, not the 70 KB of dots again"
    assert sum(len(f) for f in frames if CHANNEL in f) < 20_000  # a 48 x 48 picture and a tiny module
    shot(page, "holes-map-layer-zoomed")


def test_a_click_on_empty_space_decodes_that_point(page, server):
    open_ae_map(page, server)
    spot = page.evaluate(EMPTY_JS, [25, "near"])
    page.mouse.click(spot["x"], spot["y"])
    page.get_by_text("The point you clicked").wait_for(timeout=30_000)
    page.get_by_role("button", name="Use as an Interpolate endpoint").wait_for(timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert page.evaluate(f"() => {API}.picked()") == 0  # empty space picks nothing
    text = page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    assert "Code z = (" in text and "the point is the code" in text
    # The cross stays on the map where the click was (the page echoes it), and the decoded image is there.
    point = page.evaluate(f"() => {API}.state.root.dataset.point")
    x, y = (float(v) for v in point.split(","))
    at = page.evaluate(f"([x, y]) => {API}.dataToClient(x, y)", [x, y])
    assert abs(at["x"] - spot["x"]) < 1.5 and abs(at["y"] - spot["y"]) < 1.5
    img = page.locator('.st-key-map_point [data-testid="stImage"] img')
    assert img.evaluate("el => el.naturalWidth") == 112
    page.evaluate("() => document.querySelector('.st-key-map_point').scrollIntoView({block: 'end'})")
    page.wait_for_timeout(200)
    shot(page, "holes-map-clicked-point")  # the cross on the map and the decoded point under it
    page.get_by_role("button", name="Start Sliders here").click()
    page.wait_for_url("**/sliders?**start=sent**", timeout=30_000)


def test_a_tsne_map_coloured_by_neighbours_kept(page, server):
    page.goto(f"{server}/map?model=vae-16d&method=tsne")  # the bundled t-SNE map: no waiting
    wait_for_app(page)
    page.wait_for_function(f"() => {{ const m = {API}; return !!m && m.n() === 10000; }}", timeout=120_000)
    assert page.get_by_text("Show where it decodes to a digit").count() == 0
    assert page.get_by_text("offered on the native and PCA maps only").count() == 1
    page.get_by_text("Colour by neighbours kept").click()
    page.get_by_text("nearest neighbours in latent space stay among its 10 nearest").wait_for(timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    scale = page.locator('[data-testid="ll-map-scale"]')
    assert scale.is_visible() and "latent neighbours kept" in scale.inner_text()
    groups = page.evaluate(f"() => {API}.state.byValue.map(g => g.length)")
    assert len(groups) == 11 and sum(groups) == 10_000 and max(groups) < 10_000  # dots of many values
    page.evaluate(f"() => {API}.state.over.scrollIntoView({{block: 'center'}})")
    page.wait_for_timeout(200)
    shot(page, "holes-map-tsne-neighbours-kept")
