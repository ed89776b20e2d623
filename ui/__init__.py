"""Streamlit-aware helpers shared by the pages (the `vae` core never imports Streamlit)."""
