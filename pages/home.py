"""Home: what this is, which models ship, and where to go next."""

from __future__ import annotations

import streamlit as st

from kws import ui
from kws.config import DATASET_ATTRIBUTION
from kws.store import ModelStoreError
from kws.ui import model_table

ui.through_router()  # first: a page URL opened on a fresh server goes through app.py

st.title("Keyword Studio")
st.markdown(
    "Say **bed**, **happy** or **cat** into your microphone and watch several neural networks, from a single "
    "perceptron to deeper networks, classify it side by side. "
    "You see what they hear (the waveform and its MFCC spectrogram) and how sure each one is."
)

st.subheader("The models")
try:
    rows = model_table()
except ModelStoreError as err:
    st.warning(f"No models to show: {err}")
else:
    st.dataframe(
        [{k: row[k] for k in ("model", "architecture", "parameters", "test accuracy")} for row in rows],
        hide_index=True,
        column_config={
            "parameters": st.column_config.NumberColumn(format="localized"),
            "test accuracy": st.column_config.NumberColumn(format="percent"),
        },
    )
    st.caption("Test accuracy: share of the held-out test speakers' clips each model names correctly.")

st.subheader("Go")
st.page_link("pages/try_it.py", label="Try it: speak, record, upload or pick an example", icon=":material/mic:")
st.page_link(
    "pages/compare.py", label="Compare models: accuracy, confusion, speed and size", icon=":material/leaderboard:"
)
st.page_link(
    "pages/retrain.py", label="Retrain: train the models again and watch them learn", icon=":material/model_training:"
)
st.page_link(
    "pages/dataset.py", label="Dataset: listen to clips and see what the data looks like", icon=":material/folder_open:"
)
st.caption(f"Data: {DATASET_ATTRIBUTION}.")
