"""Latent Lab: see inside autoencoders. Run with `streamlit run app.py`.

The entry point is only a picture frame: page config, navigation and the shared sidebar.
Every screen lives in pages/, every computation in vae/.
"""

# Every run imports pandas before any page can draw: plotly looks for pandas in sys.modules
# without waiting for an import in progress, so a page drawing a chart while another session's
# thread was still importing pandas could fail. An import statement does wait.
import pandas  # noqa: F401
import streamlit as st

from ui import state
from ui.layout import sidebar

st.set_page_config(page_title="Latent Lab", page_icon=":material/science:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Welcome", icon=":material/science:", default=True),
    st.Page("pages/map.py", title="Latent map", icon=":material/scatter_plot:"),
    st.Page("pages/sliders.py", title="Sliders", icon=":material/tune:"),
    st.Page("pages/interpolate.py", title="Interpolate", icon=":material/timeline:"),
    st.Page("pages/compare.py", title="AE vs VAE", icon=":material/compare:"),
    st.Page("pages/gallery.py", title="Samples & errors", icon=":material/photo_library:"),
    st.Page("pages/train.py", title="Train & library", icon=":material/model_training:"),
]

page = st.navigation(PAGES)
sidebar()
try:
    page.run()
finally:
    # After the page is drawn: start the map workers (t-SNE, UMAP) once per server, so their
    # libraries are loaded before anyone asks for a map. Instant on every later run.
    state.map_service()
