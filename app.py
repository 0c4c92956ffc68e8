"""Keyword Studio: the entry point and router. Run with ``streamlit run app.py``."""

from __future__ import annotations

import logging

import streamlit as st

from kws import ui
from kws.config import DATASET_ATTRIBUTION

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="Keyword Studio", page_icon=":material/mic:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/try_it.py", title="Try it", icon=":material/mic:"),
    st.Page("pages/compare.py", title="Compare models", icon=":material/leaderboard:"),
    st.Page("pages/retrain.py", title="Retrain", icon=":material/model_training:"),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/folder_open:"),
]

with st.sidebar:
    st.markdown("**Keyword Studio** · say *bed*, *happy* or *cat*")
    ui.model_set_switch()
    st.caption(f"Data: {DATASET_ATTRIBUTION}.")

ui.warm_up()  # models load while the visitor reads the first page, not when they first press a button
st.navigation(pages).run()
