"""Welcome: what Latent Lab is, the active model's prior samples, and where to go next."""

import streamlit as st

from ui import links, state
from ui.text import plain
from ui.layout import ensure_frame
from vae.checkpoint import CheckpointError

ensure_frame()

st.title(":material/science: Latent Lab")
links.Link("home").publish({})
st.markdown(
    "An **autoencoder** squeezes each 28×28 digit into a handful of numbers, its *latent code*, and "
    "learns to redraw the digit from that code. A **variational** autoencoder (VAE) is trained to keep "
    "those codes spread like a bell curve, so every point of its latent space decodes to something "
    "digit-like. Latent Lab lets you look inside both: map the codes, drag them, walk between digits, "
    "and measure where a latent space has holes."
)

# Drawn from the library's metadata and, for a bundled model, its stored picture: on a fresh
# server this page is sent before torch has been imported (see ui.state).
e = state.active_entry()
if e is not None:
    try:
        preview = state.prior_preview(e)
    except CheckpointError as err:
        st.error(f"The active model could not be loaded: {plain(err)}")
    else:
        st.subheader(f"Dreamed up by {plain(e.name)}")
        st.caption("Sixteen codes drawn at random from the prior N(0, I) and decoded. A VAE turns most of them into "
                   "digits; a plain AE often does not, because nothing made its codes fill the space.")
        st.image(preview, width=560)

st.subheader("Where to go")
c1, c2 = st.columns(2)  # two wide columns: a page link does not wrap, and three cut the longer labels
with c1:
    st.page_link("pages/map.py", label="**Latent map**: every test digit as a dot", icon=":material/scatter_plot:")
    st.page_link("pages/sliders.py", label="**Sliders**: drag a code, watch the digit morph", icon=":material/tune:")
    st.page_link("pages/interpolate.py", label="**Interpolate**: walk from one digit to another", icon=":material/timeline:")
with c2:
    st.page_link("pages/compare.py", label="**AE vs VAE**: holes, shown and measured", icon=":material/compare:")
    st.page_link("pages/gallery.py", label="**Samples & errors**: samples, worst redraws", icon=":material/photo_library:")
    st.page_link("pages/train.py", label="**Train & library**: train, upload, manage models", icon=":material/model_training:")
