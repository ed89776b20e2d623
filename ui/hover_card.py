"""The hover card of the maps (ui/map_hover.js): the hovered test digit's picture next to the cursor.

    hover_card.hover_digits(dataset)   # once per page, after its maps

Digit images are not in the map; the card fetches them in sprite sheets the first time one of a
sheet is hovered, and the browser keeps them for the whole visit.
"""

from __future__ import annotations

import base64
import hashlib

import streamlit as st

from ui import state
from ui.components import component
from vae.images import SPRITE_CHUNK, SPRITE_COLS, sprite_chunks, sprite_png


@st.cache_data(show_spinner=False, max_entries=256)
def _sheet(dataset: str, chunk: int) -> str:
    return base64.b64encode(sprite_png(state.test_data(dataset).x_test.numpy(), chunk)).decode("ascii")


_HOVER = component("latent_lab_map_hover", "map_hover", html='<div class="ll-status"></div>',
                   css=".ll-status { font-size: 0.85rem; opacity: 0.65; }")
_WANT = "map_hover_want"


def _on_want() -> None:
    value = (st.session_state.get("map_hover") or {}).get("want")
    if isinstance(value, int):
        st.session_state[_WANT] = value


@st.fragment
def hover_digits(dataset: str) -> None:
    """Mount the hover card for the map on this page. Runs as a fragment: fetching a sprite sheet
    reruns only this, not the page (and never resends the figure). The card says "digit 7 · #123" for
    digit datasets, "Sneaker · #123" for others."""
    noun = "digit" if dataset in ("mnist", "custom") else ""
    data = state.test_data(dataset)
    n = len(data.x_test)
    chunk = st.session_state.pop(_WANT, None)
    png = _sheet(dataset, chunk) if isinstance(chunk, int) and 0 <= chunk < sprite_chunks(n) else None
    # The browser keeps sheets for the whole visit, keyed by where the digits came from.
    source = hashlib.sha1(f"{dataset}|{data.source}|{n}".encode()).hexdigest()[:12]
    _HOVER(key="map_hover", on_want_change=_on_want, data={
        "key": source, "n": n, "size": SPRITE_CHUNK, "cols": SPRITE_COLS, "noun": noun,
        "bytes_per_sheet": sheet_bytes(dataset), "chunk": chunk if png else None, "png": png})


@st.cache_data(show_spinner=False, max_entries=8)
def sheet_bytes(dataset: str) -> int:
    """The PNG size of the first sprite sheet, to tell the user what a hover costs."""
    return len(sprite_png(state.test_data(dataset).x_test.numpy(), 0))
