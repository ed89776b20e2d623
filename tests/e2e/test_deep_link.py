"""A fresh server whose first visitor opens a deep link (/map) still shows the app's frame.

Streamlit runs a `pages/` folder in its old multipage mode until `st.navigation` has run once;
ui.layout.ensure_frame() leaves that mode. This needs its own fresh server process.
"""

from tests.conftest import DATA_ROOT
from tests.e2e.conftest import assert_no_exception, shot, start_server, wait_for_app


def test_deep_link_on_a_fresh_server_shows_sidebar_and_navigation(tmp_path, page):
    proc, url = start_server(tmp_path, DATA_ROOT if (DATA_ROOT / "MNIST").is_dir() else None)
    try:
        page.goto(url + "/map")
        page.get_by_text("Active model").first.wait_for(timeout=90_000)
        wait_for_app(page)
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Latent map" in nav and "Train & library" in nav and "map.py" not in nav
        page.get_by_role("heading", name="Latent map").wait_for(timeout=60_000)
        assert_no_exception(page)
        shot(page, "deep-link-map")
    finally:
        proc.terminate()
        proc.wait(20)
