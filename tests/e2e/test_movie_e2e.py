"""The latent movie in a real browser, on the Latent map page's "Watch it learn": the scrubber moves the
dots (their drawn places and the canvas's pixels differ between two frames, and the keyboard steps
frames), Play advances the frames by itself and stops at the end, and the GIF export downloads a GIF.

The server gets its own library holding one small 2-d VAE with a recorded history (a synthetic one, the
same as tests/test_page_movie.py's: ten classes moving out from one blob to a ring), so the test does
not wait for a training. Screenshots: test-artifacts/movie-1-first-frame.png, movie-2-last-frame.png.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import assert_no_exception, running_server, settled, shot
from tests.test_page_movie import synthetic_movie, tiny_model

FRAMES = 30


@pytest.fixture(scope="module")
def movie_server(tmp_path_factory):
    from vae.checkpoint import ModelLibrary
    from vae.movie import movie_meta, movie_tensors

    home = tmp_path_factory.mktemp("movie-home")
    m = synthetic_movie(frames=FRAMES, n=2000)
    entry = ModelLibrary(home / "home" / "models").save(
        tiny_model("vae"), name="movie VAE", dataset="mnist", metrics={"test_nats": 200.0},
        tensors=movie_tensors(m), movie=movie_meta(m))
    with running_server(home) as url:
        yield url, entry.id


def positions(page, digits=(0, 5, 100, 1999)) -> list[tuple[float, float]]:
    """Where the player draws these digits, in canvas pixels (so a page that shifts meanwhile changes nothing)."""
    return page.locator('[data-testid="ll-movie-canvas"]').evaluate(
        "(c, ds) => { const r = c.getBoundingClientRect(); return ds.map(i => { "
        "const p = window.__latentLabMovies.map_movie.toClient(i); return [p.x - r.left, p.y - r.top]; }); }",
        list(digits))


def pixels(page) -> str:
    return page.locator('[data-testid="ll-movie-canvas"]').evaluate("c => c.toDataURL()")


def frame(page) -> int:
    return page.evaluate("() => window.__latentLabMovies.map_movie.frame()")


def test_scrub_play_and_export_the_movie(movie_server, page):
    url, model_id = movie_server
    page.set_viewport_size({"width": 1400, "height": 2200})  # Streamlit scrolls inside; a tall window shows all
    page.goto(f"{url}/map?model={model_id}")
    page.locator('[data-testid="ll-map-canvas"]').wait_for(timeout=120_000)
    settled(page)
    assert page.locator('[data-testid="ll-movie"]').count() == 0  # folded: not mounted, nothing sent
    page.get_by_text("Watch it learn: this map forming during training").click()
    page.locator('[data-testid="ll-movie-canvas"]').wait_for(timeout=60_000)
    settled(page)
    status = page.get_by_test_id("ll-movie-status")
    assert status.inner_text().startswith(f"Frame 1 of {FRAMES} · epoch 0 of ")
    assert "(untrained)" in status.inner_text() and "test −ELBO" in status.inner_text()
    first, first_pixels = positions(page), pixels(page)
    assert_no_exception(page)
    shot(page, "movie-1-first-frame")

    scrubber = page.get_by_test_id("ll-movie-scrubber")
    scrubber.focus()
    page.keyboard.press("End")
    page.wait_for_function(f"() => window.__latentLabMovies.map_movie.frame() === {FRAMES - 1}", timeout=5_000)
    last = positions(page)
    moved = [((a - c) ** 2 + (b - d) ** 2) ** 0.5 for (a, b), (c, d) in zip(first, last)]
    assert min(moved) > 15, moved  # every watched digit left the blob for its place on the ring
    assert pixels(page) != first_pixels
    assert status.inner_text().startswith(f"Frame {FRAMES} of {FRAMES} · ")
    assert scrubber.input_value() == str(FRAMES - 1)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"() => window.__latentLabMovies.map_movie.frame() === {FRAMES - 2}", timeout=5_000)
    assert positions(page) != last
    shot(page, "movie-2-last-frame")

    page.keyboard.press("Home")
    page.wait_for_function("() => window.__latentLabMovies.map_movie.frame() === 0", timeout=5_000)
    assert positions(page) == first  # the same frame draws the same places
    page.get_by_test_id("ll-movie-play").click()
    page.wait_for_function("() => window.__latentLabMovies.map_movie.frame() > 0", timeout=10_000)
    now, slider, playing = page.evaluate("() => { const m = window.__latentLabMovies.map_movie; "
                                         "return [m.frame(), m.slider(), m.playing()]; }")  # together: it plays on
    assert playing and 0 < now < FRAMES - 1 and slider == now
    assert page.get_by_test_id("ll-movie-play").inner_text().endswith("Pause")
    # 30 frames at 6 a second: it plays to the end and stops there (by itself, no server involved)
    page.wait_for_function("() => !window.__latentLabMovies.map_movie.playing()", timeout=15_000)
    assert frame(page) == FRAMES - 1

    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download the movie (GIF)").click()
    d = download.value
    assert d.suggested_filename == f"latent-movie-{model_id}.gif"
    with open(d.path(), "rb") as f:
        assert f.read(6) == b"GIF89a"
    assert_no_exception(page)
