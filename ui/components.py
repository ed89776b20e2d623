"""Registration of the app's own browser components (Streamlit components v2), from files beside this one."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

_HERE = Path(__file__).resolve().parent


def component(name: str, stem: str, **kwargs):
    """An st.components.v2 component whose code is ui/<stem>.js, styled by ui/<stem>.css where that file
    exists (or by a `css=` given here). Other keyword arguments (html=...) go to Streamlit as they are."""
    css = _HERE / f"{stem}.css"
    if "css" not in kwargs and css.exists():
        kwargs["css"] = css.read_text(encoding="utf-8")
    return st.components.v2.component(name, js=(_HERE / f"{stem}.js").read_text(encoding="utf-8"), **kwargs)
