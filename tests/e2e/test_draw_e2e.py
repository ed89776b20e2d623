"""Draw a digit in a real browser: a stroke drawn with the mouse (down, move, up) on the pad is read when
it ends, placed on the map as a marked point, and shown with its 8 nearest test digits; a pen stroke
(pointer events of type "pen") draws too; Undo empties the pad; the drawing starts the Sliders.
Screenshots: test-artifacts/draw-*.png."""

from __future__ import annotations

from tests.e2e.conftest import assert_no_exception, open_from_sidebar, settled, shot

PAD = "canvas[data-testid=ll-draw-canvas]"
SEVEN = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]  # corners of a 7, as shares of the pad's side


def open_draw(page, server) -> None:
    open_from_sidebar(page, server, "Draw a digit")
    page.wait_for_selector(PAD, timeout=90_000)
    page.wait_for_function("() => window.__latentLabMaps && window.__latentLabMaps.draw_map", timeout=90_000)
    settled(page)


def stroke(page, points, steps: int = 12) -> None:
    """One stroke with the mouse through `points` (shares of the pad's side)."""
    box = page.locator(PAD).bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


def marks(page) -> list:
    return page.evaluate("() => window.__latentLabMaps.draw_map.state.d.marks || []")


def neighbours_caption(page):
    return page.locator('[data-testid="stCaptionContainer"]', has_text="#").filter(has_text=" · ")


def test_a_mouse_stroke_is_placed_on_the_map_with_its_neighbours(page, server):
    open_draw(page, server)
    assert marks(page) == []
    assert page.get_by_text("Draw a digit on the pad").count() == 1
    stroke(page, SEVEN)
    page.wait_for_function("() => (window.__latentLabMaps.draw_map.state.d.marks || []).length === 1",
                           timeout=60_000)
    settled(page)
    assert_no_exception(page)
    (mark,) = marks(page)
    assert mark["label"] == "your drawing"
    text = neighbours_caption(page).first.inner_text()
    assert text.count("#") == 8, text
    assert page.get_by_text("read by the classifier as a 7").count() == 1
    assert page.evaluate("() => window.__latentLabPad.strokes().length") == 1
    # the mark is on the map's canvas, inside its plot
    where = page.evaluate(f"() => window.__latentLabMaps.draw_map.dataToClient({mark['x']}, {mark['y']})")
    plot = page.locator("[data-testid=ll-map-canvas]").bounding_box()
    assert plot["x"] <= where["x"] <= plot["x"] + plot["width"] and plot["y"] <= where["y"] <= plot["y"] + plot["height"]
    shot(page, "draw-seven")
    page.locator("[data-testid=ll-map]").scroll_into_view_if_needed()
    shot(page, "draw-seven-map")

    page.locator("[data-testid=ll-draw-pad] button", has_text="Undo").click()
    page.wait_for_function("() => (window.__latentLabMaps.draw_map.state.d.marks || []).length === 0",
                           timeout=60_000)
    settled(page)
    assert page.get_by_text("Draw a digit on the pad").count() == 1


def test_a_pen_stroke_draws_and_a_dot_gets_a_sentence(page, server):
    open_draw(page, server)
    box = page.locator(PAD).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)  # a single dot
    page.wait_for_selector("text=That is only a dot", timeout=60_000)
    settled(page)
    shot(page, "draw-dot")
    page.locator("[data-testid=ll-draw-pad] button", has_text="Clear").click()
    settled(page)
    # A pen: pointer events of type "pen" (what a stylus on a tablet sends), a vertical stroke: a 1.
    page.locator(PAD).evaluate("""(c, box) => {
        const fire = (type, fy) => c.dispatchEvent(new PointerEvent(type, {pointerId: 7, pointerType: 'pen',
            isPrimary: true, bubbles: true, cancelable: true, button: 0, buttons: type === 'pointerup' ? 0 : 1,
            clientX: box.x + box.width / 2, clientY: box.y + fy * box.height}));
        fire('pointerdown', 0.15);
        for (let k = 1; k <= 20; k++) fire('pointermove', 0.15 + 0.7 * k / 20);
        fire('pointerup', 0.85);
    }""", box)
    page.wait_for_function("() => (window.__latentLabMaps.draw_map.state.d.marks || []).length === 1",
                           timeout=60_000)
    settled(page)
    assert_no_exception(page)
    assert page.get_by_text("read by the classifier as a 1").count() == 1
    shot(page, "draw-pen-one")


def test_the_drawing_starts_the_sliders(page, server):
    open_draw(page, server)
    stroke(page, SEVEN)
    page.wait_for_function("() => (window.__latentLabMaps.draw_map.state.d.marks || []).length === 1",
                           timeout=60_000)
    settled(page)
    page.get_by_role("button", name="Start Sliders from this drawing").click()
    page.wait_for_selector("canvas[data-testid=ll-canvas]", timeout=90_000)
    settled(page)
    assert_no_exception(page)
    checked = page.locator('[data-testid="stRadio"] label:has(input:checked)').first.inner_text()
    assert "your drawing" in checked
    assert "start=sent" in page.url
    shot(page, "draw-to-sliders")
