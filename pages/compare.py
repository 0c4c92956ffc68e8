"""Compare models: every model of the active set side by side, and the test clips a chosen model gets wrong."""

from __future__ import annotations

import streamlit as st

from kws import insights, plots, ui
from kws.config import data_dir
from kws.dataset import DatasetMissingError, missing_message
from kws.store import ModelStoreError

ui.through_router()  # first: a page URL opened on a fresh server goes through app.py

st.title("Compare models")
try:
    infos = ui.model_infos()
except ModelStoreError as err:
    st.warning(f"No models to compare: {err}")
    st.stop()
names = [i.name for i in infos]
if not set(st.session_state.get("compare_curves", [])) <= set(names):  # another model set became active
    del st.session_state.compare_curves  # back to the default pair, not to an empty chart
try:
    latency, timed_on = ui.latencies()
except ModelStoreError as err:
    latency, timed_on = {}, f"nothing (the models could not be loaded: {err})"
rows = insights.comparison_rows(infos, latency)
scores, training = insights.split_table(rows)

st.subheader("Every model")
st.dataframe(scores, hide_index=True, column_config=ui.comparison_columns(scores))
st.caption(
    "From each model's saved metadata: accuracy on the speaker-disjoint test split (no test speaker was heard "
    "in training). Latency: median per clip (finding the word, MFCCs, one forward pass through the model's "
    f"float32 TensorFlow Lite file), timed on {timed_on}."
)

st.subheader("Confusion matrices")
st.caption(
    "Rows: the true word (other: other words and noise); columns: what the model said. Colour: share of the row."
)
ui.in_groups(
    infos,
    lambda i: st.plotly_chart(
        plots.confusion_heatmap(i.meta["confusion"], i.labels, title=i.name), key=f"compare_confusion_{i.name}"
    ),
    key="compare_confusions",
    border=False,
)

st.subheader("Other words: false accepts against false rejects")
det = st.container()  # filled last: scoring the test split waits until the rest of the page is on its way

st.subheader("Training")
st.dataframe(training, hide_index=True, column_config=ui.comparison_columns(training))
shown = st.multiselect("Models", names, default=insights.default_curve_models(names), key="compare_curves")
curves = insights.histories(infos, shown)
ui.training_curves(curves, key="compare_curves")
st.caption(
    "Solid: training; dashed: validation. A widening gap is a model learning its training speakers by heart. "
    "A model refitted on train + validation has no validation curve: it learnt those speakers too."
)

st.subheader("Accuracy against cost")
axes = {"latency_ms": "latency per clip", "params": "parameters"} if latency else {"params": "parameters"}
x_axis = st.radio("Against", list(axes), format_func=axes.get, horizontal=True, key="compare_x_axis")
st.plotly_chart(plots.tradeoff_scatter(rows, x=x_axis, y="accuracy"), key="compare_tradeoff")

st.subheader("Robustness to background noise")
ui.robustness_view(key="compare_robustness")

st.subheader("Take the models away")
st.caption(
    "Each model answers through its `.tflite` file (int8: the full-integer copy); `.keras` is what retraining "
    "starts from; the `.json` holds the labels and feature settings. README: answering a WAV with them."
)
ui.model_downloads(infos, key="compare_downloads")

st.subheader("Test clips a model gets wrong")
model = st.selectbox("Model", names, key="compare_model")
with det:
    ui.det_view(key="compare_det")
try:
    evaluation = ui.evaluation("test")
except DatasetMissingError:
    st.info(missing_message(data_dir()))
    st.stop()
except ModelStoreError as err:
    st.warning(ui.cannot_load(err))
    st.stop()
mistakes = insights.misclassified(evaluation, model)
st.markdown(
    f"**{model}** gets **{len(mistakes)}** of {len(evaluation.y_true)} test clips wrong (most confident first)."
)
if not mistakes:
    st.stop()
st.dataframe(insights.mistakes_table(mistakes), hide_index=True)
settings = next(i.settings for i in infos if i.name == model)
for mistake in ui.page_of(mistakes, key="compare_page"):
    ui.mistake_card(mistake, model, settings)
