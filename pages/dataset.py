"""Dataset: what the models learnt from: words, speakers, splits, durations, loudness, and any clip to listen to."""

from __future__ import annotations

import streamlit as st

from kws import insights, plots, ui
from kws.config import DATASET_ATTRIBUTION, data_dir
from kws.dataset import SPLITS, DatasetMissingError, missing_message
from kws.features import PRESETS

ui.through_router()  # first: a page URL opened on a fresh server goes through app.py

st.title("Dataset")
st.caption(
    f"{DATASET_ATTRIBUTION}: P. Warden, “Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition”, "
    "2018, [arXiv:1804.03209](https://arxiv.org/abs/1804.03209). The keywords are bed, happy and cat; every other "
    "word and the background noise teach the models to answer `other`."
)
try:
    stats = ui.dataset_stats()
    items = ui.dataset_items()
except DatasetMissingError:
    st.info(missing_message(data_dir()))
    st.stop()

words = stats.counts_per_word()
splits = stats.clips_per_split()
with st.container(horizontal=True, horizontal_alignment="distribute"):  # wraps, where columns cut "79 / 1…"
    st.metric("clips", f"{len(stats.clips):,}", width="content")
    st.metric("words", stats.words, width="content")
    st.metric("speakers", f"{stats.speakers:,}", width="content")
    shares = " / ".join(f"{100 * splits[s] / len(stats.clips):.0f}" for s in SPLITS)
    st.metric("train / validation / test", f"{shares} %", width="content")
if stats.skipped:
    st.warning(f"{len(stats.skipped)} clips could not be read and are left out.")

st.subheader("Clips per word and split")
table = stats.word_split_table()
counts = {k: st.column_config.NumberColumn(k, format="localized") for k in table[0] if k != "word"}
st.dataframe(table, hide_index=True, column_config=counts)
st.caption(
    "The split hashes the speaker (the file name before `_nohash_`), so no test speaker is ever heard in "
    "training: test accuracy measures new voices, not memory. The other words come from the dataset's test "
    "speakers: those who say no keyword here are dealt into train and validation, the rest stay in test "
    "(docs/architecture.md). Noise clips have no speaker."
)
left, right = st.columns(2)
left.plotly_chart(plots.histogram(stats.durations, "Clip durations", "seconds"), key="dataset_durations")
right.plotly_chart(plots.histogram(stats.loudness, "Loudness (loudest 100 ms)", "dBFS"), key="dataset_loudness")

st.subheader("Browse the clips")
c1, c2, c3 = st.columns(3)
word = c1.selectbox("Word", insights.folders(items), key="dataset_word")
split = c2.selectbox("Split", [*SPLITS, "all"], key="dataset_split")
preset = c3.selectbox(
    "Features",
    list(PRESETS),
    key="dataset_preset",
    help="standard: what the models use now; lecture: its 20 × 11 input",
)
clips = insights.browse(items, word, split)
if not clips:
    st.info(f"No {word} clips in the {split} split.")
    st.stop()
if st.session_state.get("dataset_index", 0) >= len(clips):  # a smaller word/split was chosen
    st.session_state.dataset_index = 0
index = st.number_input(f"Clip number (0 to {len(clips) - 1})", 0, len(clips) - 1, key="dataset_index")
item = clips[index]
view = insights.clip_view(item.path, PRESETS[preset])
st.markdown(
    f"`{item.word}/{item.path.name}` ({item.label}) · speaker `{item.speaker}` · {item.split} split · {len(view.samples) / view.sample_rate:.2f} s"
)
st.audio(item.path.read_bytes(), format="audio/wav")
left, right = st.columns(2)
window = (view.window.start_s, view.window.end_s)
left.plotly_chart(plots.waveform(view.samples, view.sample_rate, window), key="dataset_waveform")
right.plotly_chart(plots.mfcc_heatmap_robust(view.features, view.settings), key="dataset_mfcc")
st.caption(
    f"The MFCCs are the model input: {view.features.shape[0]} time frames × {view.features.shape[1]} coefficients."
)
