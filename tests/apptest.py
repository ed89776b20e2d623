"""One way for page tests to open a page under AppTest: through app.py, with the model and session state given."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from vae.paths import ROOT

APP = str(ROOT / "app.py")


def open_page(page: str, model_id: str | None = None, **state) -> AppTest:
    """Run `page` (e.g. "pages/draw.py") once with `model_id` active and `state` in session_state; no exception."""
    at = AppTest.from_file(APP, default_timeout=120)
    if model_id:
        at.session_state["active_model"] = model_id
    for k, v in state.items():
        at.session_state[k] = v
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception[0].value if at.exception else ""
    return at
