"""The shared sidebar: the active model at a glance, a picker over the model library (class models
first, same-named models told apart), and who you are (workspace, log in, the Teacher expander)."""

from __future__ import annotations

import streamlit as st

from ui import identity, library, state
from ui.text import plain


_FRAMED = "_latent_lab_framed"  # session_state: this session has run through app.py


def ensure_frame() -> None:
    """Make sure this run came through app.py's navigation; call first thing in every page.

    Streamlit treats a folder named `pages/` as its old multipage mode until `st.navigation` has
    run once in the server process: the first visitor of a deep link (say /map, right after a
    restart) would get the page alone, without the sidebar or the layout. Leaving that mode and
    rerunning sends the run through app.py, which then shows the same page in its frame.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without it has no such mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        # Rerun only a session's very first run: later runs may carry a button click that a rerun
        # would drop (AppTest resets the mode before every run, so it meets this on each one).
        if not st.session_state.get(_FRAMED):
            st.rerun()


def _picked() -> None:
    choice = st.session_state.get("sidebar_model")
    if choice:
        state.set_active(choice)


def sidebar() -> None:
    st.session_state[_FRAMED] = True
    with st.sidebar:
        _active_model()
        st.divider()
        # last: its cookie writer, when mounted, adds its gap at the very bottom
        identity.sidebar_panel(st.session_state.get(state.ACTIVE))


def _active_model() -> None:
    entries = library.ordered(state.entries())
    if not entries:
        st.info("No models yet: train one on **Train & library**.")
        return
    by_id = {e.id: e for e in entries}
    me = identity.current()
    names = library.labels(entries, me)
    # The picker follows state.set_active() from any page (a trained or uploaded model becomes
    # active); a pick here goes through the callback, which runs before the next script run.
    st.session_state["sidebar_model"] = state.active_id()
    choice = st.selectbox("Active model", list(by_id), key="sidebar_model", format_func=names.get,
                          on_change=_picked,
                          help="Every page shows this model. Train or upload more on Train & library.")
    e = by_id[choice]
    cfg = e.config
    st.markdown(f"**{plain(e.name)}**")
    c1, c2 = st.columns(2)
    c1.metric("Kind", cfg.kind.upper())
    c2.metric("Latent dims", cfg.latent_dim)
    c1.metric("Architecture", cfg.arch.upper())
    fig = library.nats(e)
    c2.metric("Recon. nats", "–" if fig["recon"] is None else f"{fig['recon']:.1f}",
              help="Reconstruction error per test digit, in nats (lower is better): the figure every model has, "
                   "so an AE and a VAE compare on it.")
    if cfg.has_prior:
        c1.metric("−ELBO nats", "–" if fig["elbo"] is None else f"{fig['elbo']:.1f}",
                  help="Negative ELBO per test digit: reconstruction + KL, in nats (lower is better). Only a model "
                       "with a prior has one; an AE's would be its reconstruction alone, which is why comparing it "
                       "with a VAE's made the AE look better.")
    st.caption(f"Dataset: {plain(e.meta.get('dataset', 'mnist'))} · {library.whose(e, me)}"
               + (f" · β = {cfg.beta:g}" if cfg.has_prior else ""))
