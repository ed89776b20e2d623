"""Latent Lab: see inside autoencoders. Run with `streamlit run app.py`.

The entry point is only a picture frame: page config, navigation and the shared sidebar.
Every screen lives in pages/, every computation in vae/.
"""

import streamlit as st

from ui.layout import sidebar

st.set_page_config(page_title="Latent Lab", page_icon="🧪", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Welcome", icon="🧪", default=True),
    st.Page("pages/map.py", title="Latent map", icon="🗺️"),
    st.Page("pages/sliders.py", title="Sliders", icon="🎚️"),
    st.Page("pages/interpolate.py", title="Interpolate", icon="↔️"),
    st.Page("pages/compare.py", title="AE vs VAE", icon="⚖️"),
    st.Page("pages/gallery.py", title="Samples & errors", icon="🖼️"),
    st.Page("pages/train.py", title="Train & library", icon="🏋️"),
]

page = st.navigation(PAGES)
sidebar()
page.run()
