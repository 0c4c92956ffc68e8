"""Try it: four ways to give a clip (live mic, browser recorder, upload, test example), one result view."""

from __future__ import annotations

from functools import partial

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from kws import mic, ui
from kws.audio import load_audio
from kws.config import data_dir
from kws.dataset import missing_message
from kws.examples import graded, pick
from kws.ui import example_clips, is_new_file

ui.through_router()  # first: a page URL opened on a fresh server goes through app.py

# one buffer per browser session, fed by the WebRTC thread
buffer: mic.MicBuffer = st.session_state.setdefault("tryit_mic", mic.MicBuffer())
analyse = partial(ui.analyse, "tryit_result")  # the one result view below, whichever way the clip came


st.title("Try it")
st.write("Say **bed**, **happy** or **cat** (or give a clip) and watch every model answer side by side.")
if blocked := mic.microphone_blocked(st.context.url):
    st.warning(blocked, icon=":material/mic_off:")

live, recorder, uploader, example = ui.boxes("tryit_ways", 4)
with live:
    st.markdown("**:material/mic: Live microphone**")
    ctx = webrtc_streamer(
        key="tryit_webrtc",
        mode=WebRtcMode.SENDONLY,
        rtc_configuration=mic.rtc_configuration(),
        media_stream_constraints=mic.MEDIA_CONSTRAINTS,
        queued_audio_frames_callback=buffer.on_frames,
    )
    spot = st.toggle("Spot words as I speak", key="tryit_spot", help="Names each word as you say it, while you go on")
    state = buffer.step(ctx.state.playing)
    ui.live_status(state, spotting=spot)
    spotted = ui.live_spotting(buffer, on=spot and state == "listening", key="tryit_spotter")
    if state == "stopped":
        analyse("Live microphone", buffer.take, spotted=spotted)
with recorder:
    st.markdown("**:material/radio_button_checked: Record in the browser**")
    recorded = st.audio_input(
        "Record in the browser", sample_rate=16000, key="tryit_record", label_visibility="collapsed"
    )
    if is_new_file(recorded, "tryit_record_seen"):
        analyse("Browser recording", lambda: load_audio(recorded.getvalue()))
with uploader:
    st.markdown("**:material/upload_file: Upload a clip**")
    upload = st.file_uploader(
        "Upload a clip", type=["wav", "flac", "ogg", "mp3"], key="tryit_upload", label_visibility="collapsed"
    )
    if is_new_file(upload, "tryit_upload_seen"):
        analyse(f"Upload: {upload.name}", lambda: load_audio(upload.getvalue()))
with example:
    st.markdown("**:material/shuffle: Try an example**")
    clips = example_clips()
    if not clips:
        st.caption(missing_message(data_dir()))
    elif st.button("Random test clip", key="tryit_example"):
        chosen = pick(clips)
        analyse(f"Example {chosen.name} (test split)", lambda: load_audio(chosen.path), true_word=chosen.word)

result = st.session_state.get("tryit_result")
if result is None:
    st.info("Give a clip in one of the four ways above to see what the models hear.")
    if problem := ui.predictor_problem():  # loads the models now, while the user gets ready
        st.error(problem)
    st.stop()
st.divider()
if "error" in result:
    st.caption(result["source"])
    st.error(result["error"])
    st.stop()
if result["spotted"] is not None:
    st.markdown(ui.spotted_line(result["spotted"]))
prediction = ui.spotted_view(result, key="tryit_view")  # the loudest second, or a spotted word's
st.caption(
    f"{result['source']} · {prediction.clip.duration:.1f} s · loudest {prediction.window.level_db:.0f} dBFS · "
    f"all {len(prediction.answers)} models in {prediction.elapsed_ms:.1f} ms (each card: that model alone)"
)
for notice in prediction.clip.notices:
    st.warning(notice)
st.subheader(prediction.summary)
right = graded(prediction, result["true_word"]) if result["true_word"] else None
if right is not None:
    names = ", ".join(n for n, ok in right.items() if ok) or "none"
    st.markdown(f"True word: **{result['true_word']}** · right: {names} ({sum(right.values())} of {len(right)})")
if prediction.no_speech:
    st.warning(prediction.no_speech_reason)

wave, spectrum = st.columns(2)
marks = [(s.at_s, s.end_s, s.word) for s in ui.in_recording(result)]
shown = ui.clip_pictures(result, prediction, marks)  # PNGs, not Plotly charts: lighter for a browser to draw
ui.show_picture(wave, shown["wave"], shown["caption"])
mfcc_tab, mel_tab = spectrum.tabs(["MFCC (every model's input)", "Log-mel (what the CNNs see)"])
ui.show_picture(mfcc_tab, shown["mfcc"])
ui.show_picture(mel_tab, shown["mel"])
ui.players(prediction.clip, prediction.window)

prediction, right = ui.noise_control(result, prediction, right, key="tryit_noise")  # cards: the noisy answers
ui.model_cards(prediction, right, key="tryit_cards")
ui.listened_view(prediction, key="tryit_listened")  # occlusion maps, made when the switch is turned on
