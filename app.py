"""Latent Lab: see inside autoencoders. Run with `streamlit run app.py`.

The entry point is only a picture frame: page config, navigation and the shared sidebar.
Every screen lives in pages/, every computation in vae/.
"""

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
    # After the page is drawn, once per server (instant on every later run): import torch and the
    # rest in the background (the first page needs none of it), and start the map workers
    # (t-SNE, UMAP), so their libraries are loaded before anyone asks for a map.
    state.warm_libraries()
    state.map_service()
