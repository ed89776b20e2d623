"""Latent Lab: see inside autoencoders. Run with `streamlit run app.py`.

The entry point is only a picture frame: page config, navigation and the shared sidebar.
Every screen lives in pages/, every computation in vae/.

This file has two roles. `streamlit run app.py` first imports it as a module to find `app`,
an `st.App` whose lifespan hook starts importing torch as the server starts (ui.warmup): that
import then overlaps the browser loading Streamlit's front end. Every script run executes the
file as `__main__`, which draws the frame.
"""

import streamlit as st

from ui import memory, warmup


def frame() -> None:
    from ui import state
    from ui.layout import sidebar

    st.set_page_config(page_title="Latent Lab", page_icon=":material/science:", layout="wide")
    pages = [
        st.Page("pages/home.py", title="Welcome", icon=":material/science:", default=True),
        st.Page("pages/map.py", title="Latent map", icon=":material/scatter_plot:"),
        st.Page("pages/draw.py", title="Draw a digit", icon=":material/draw:"),
        st.Page("pages/sliders.py", title="Sliders", icon=":material/tune:"),
        st.Page("pages/interpolate.py", title="Interpolate", icon=":material/timeline:"),
        st.Page("pages/compare.py", title="AE vs VAE", icon=":material/compare:"),
        st.Page("pages/gallery.py", title="Samples & errors", icon=":material/photo_library:"),
        st.Page("pages/fewlabels.py", title="Few labels", icon=":material/label:"),
        st.Page("pages/denoise.py", title="Denoising", icon=":material/blur_on:"),
        st.Page("pages/train.py", title="Train & library", icon=":material/model_training:"),
    ]
    page = st.navigation(pages)
    sidebar()
    try:
        page.run()
    finally:
        # After the page is drawn, once per server (instant on every later run): the background
        # import, if the lifespan hook has not started it (AppTest), and the map workers (t-SNE,
        # UMAP), so their libraries are loaded before anyone asks for a map. Then the memory the
        # run freed goes back to the system.
        warmup.start()
        state.map_service()
        memory.release()


if __name__ == "__main__":
    frame()
else:
    app = st.App(__file__, lifespan=warmup.lifespan)
