"""Keyword Studio: the entry point and router. Run with ``streamlit run app.py``."""

from __future__ import annotations

import logging

import streamlit as st

from kws.config import DATASET_ATTRIBUTION

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="Keyword Studio", page_icon="🎙️", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/try_it.py", title="Try it", icon="🎙️"),
    st.Page("pages/compare.py", title="Compare models", icon="📊"),
    st.Page("pages/retrain.py", title="Retrain", icon="🏋️"),
    st.Page("pages/dataset.py", title="Dataset", icon="🗂️"),
]

with st.sidebar:
    st.markdown("**Keyword Studio** · say *bed*, *happy* or *cat*")
    st.caption(f"Data: {DATASET_ATTRIBUTION}.")

st.navigation(pages).run()
