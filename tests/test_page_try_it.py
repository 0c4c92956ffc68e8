"""The Try it page under AppTest: every input path AppTest can drive, and what the user sees for each.

The live microphone (streamlit-webrtc) is opaque to AppTest: it is patched to be inert here and driven through
a real browser in ``test_browser.py``; its buffer has unit tests in ``test_mic.py``.
"""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

from kws.audio import load_audio
from kws.examples import Example, graded, pick
from kws.mic import MicBuffer
from kws.spotter import Spotter

ROOT = Path(__file__).absolute().parent.parent
TIMEOUT = 120  # the first run loads and compiles every model


def wav_bytes(samples: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def text_of(at: AppTest) -> str:
    """Everything the user reads on the page, one string."""
    parts = [
        e.value
        for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "error")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def open_try_it() -> AppTest:
    """The Try it page, opened through the router as a user would (the caller patches what it needs first)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/try_it.py").run()
    assert not at.exception
    return at


@pytest.fixture
def try_it(no_webrtc_session, predictor) -> AppTest:
    """The Try it page with the shipped models."""
    return open_try_it()


def upload(at: AppTest, name: str, data: bytes, mime: str = "audio/wav") -> AppTest:
    at.file_uploader(key="tryit_upload").set_value((name, data, mime)).run()
    assert not at.exception
    return at


def test_opens_with_four_ways_in(try_it: AppTest) -> None:
    assert "Try it" in [t.value for t in try_it.title]
    assert try_it.file_uploader(key="tryit_upload").allowed_type
    assert try_it.audio_input(key="tryit_record") is not None
    assert "four ways" in text_of(try_it)
    assert not try_it.subheader  # no result before a clip
    headings = [m.value for m in try_it.markdown if m.value.startswith("**:material/")]
    titles = [re.sub(r"\*\*:material/\w+: (.+)\*\*", r"\1", h) for h in headings]
    assert titles == ["Live microphone", "Record in the browser", "Upload a clip", "Try an example"]  # one style


def test_a_page_the_browser_will_not_give_the_microphone_says_so(no_webrtc_session, predictor, monkeypatch) -> None:
    """Served over plain http to another machine: the page says why recording cannot work, and what still does
    (the real check, with Chromium at a non-loopback address, is in test_browser.py)."""
    from kws import mic

    seen: list = []
    monkeypatch.setattr(mic, "microphone_blocked", lambda url: seen.append(url) or "No microphone over http.")
    at = open_try_it()
    assert seen and [w.value for w in at.warning] == ["No microphone over http."]
    assert at.file_uploader(key="tryit_upload") is not None  # the other ways in are still there


def test_the_microphone_warning_stays_away_where_the_browser_allows_it(try_it: AppTest) -> None:
    assert not try_it.warning  # AppTest has no page address: given the benefit of the doubt


def test_a_damaged_model_file_is_one_sentence_not_a_traceback(no_webrtc_session, damaged_models) -> None:
    at = open_try_it()
    (error,) = at.error
    assert error.value.startswith("The models could not be loaded:") and damaged_models.name in error.value
    assert "was cut off" in error.value
    at = upload(at, "tone.wav", wav_bytes(np.sin(np.arange(16000) / 3).astype(np.float32) * 0.3))
    assert "was cut off" in at.error[0].value  # a clip given anyway gets the same sentence


def test_spotting_is_a_switch_that_keeps_nothing_while_not_listening(try_it: AppTest) -> None:
    """Word spotting runs only during a live take (driven in test_browser.py); off the air it holds no state."""
    assert try_it.toggle(key="tryit_spot").value is False
    try_it.session_state["tryit_spotter"] = Spotter()  # a take whose end this page never saw
    try_it.toggle(key="tryit_spot").set_value(True).run()
    assert not try_it.exception
    assert "tryit_spotter" not in try_it.session_state  # not listening: the next take starts afresh
    assert "tryit_result" not in try_it.session_state  # and nothing was analysed for it


def stop_spotted_take(at: AppTest, stream: np.ndarray, max_seconds: float | None = None) -> list:
    """Run the page's STOP of a spotted live take of ``stream`` (16 kHz) whose looks are all still due (as on a
    server too busy to run the page's timer); the take's spotted words."""
    buffer = MicBuffer() if max_seconds is None else MicBuffer(max_seconds=max_seconds)
    buffer.step(playing=True)  # a take under way: the next run, with the component not playing, is its STOP
    for start in range(0, stream.size, 320):  # 20-ms frames, as WebRTC sends them
        buffer.add(np.round(stream[start : start + 320] * 32767).astype(np.int16), 16000)
    at.session_state["tryit_mic"] = buffer
    at.session_state["tryit_spotter"] = Spotter()  # no look made yet
    at.toggle(key="tryit_spot").set_value(True).run()
    assert not at.exception
    return at.session_state["tryit_result"]["spotted"]


def waveform_shapes(at: AppTest) -> tuple[float, list[tuple[float, float]]]:
    """Where the waveform's shaded window (what the models heard) starts, and the spans it outlines (words), as
    its picture's caption says them (to the hundredth of a second)."""
    caption = next(i.caption for c in at.get("image") for i in c.proto.imgs if i.caption.startswith("Shaded:"))
    heard = float(re.search(r"heard, ([\d.]+)–", caption).group(1))
    return heard, [(float(a), float(b)) for a, b in re.findall(r" · \w+ ([\d.]+)–([\d.]+) s", caption)]


def test_a_spotted_take_keeps_its_words_after_stop(try_it: AppTest, known_clips) -> None:
    """STOP on a spotted take whose looks were all still due: they are made then; the result view lists the
    take's words, outlines them on the waveform, and answers the loudest second or, on request, each spotted
    word's own second."""
    if len(known_clips) < 2:
        pytest.skip("fewer than two words with a clip every model names correctly")
    (quiet, quiet_path), (loud, loud_path) = list(known_clips.items())[:2]  # said at different levels
    stream = np.concatenate(
        [silence := np.zeros(16000, np.float32), 0.4 * load_audio(quiet_path).samples, silence, silence[:3200]]
        + [load_audio(loud_path).samples, silence[:9600]]
    )
    first, second = stop_spotted_take(try_it, stream)
    assert (first.word, second.word) == (quiet, loud) and 0.5 < first.at_s < 1.5 < 3.0 < second.at_s < 4.0
    assert first.end_s - first.at_s == pytest.approx(1.0)
    words = f"**{quiet}** at {first.at_s:.1f} s, **{loud}** at {second.at_s:.1f} s"
    assert f"Spotted as you spoke, 2 words: {words}." in text_of(try_it)
    assert "Live microphone" in text_of(try_it)
    assert "tryit_spotter" not in try_it.session_state

    spans = [(pytest.approx(s.at_s, abs=0.006), pytest.approx(s.end_s, abs=0.006)) for s in (first, second)]
    heard, outlined = waveform_shapes(try_it)  # a take is answered on its loudest second, one of the two words
    loudest = min((first, second), key=lambda s: abs(s.at_s - heard))
    assert try_it.subheader[0].value == f"Most models say: {loudest.word}"
    assert abs(heard - loudest.at_s) < 0.3 and outlined == spans
    view = try_it.radio(key="tryit_view")  # the loudest second is one of the words: offered once, as that word
    names = [f"{s.word} at {s.at_s:.1f} s" + " (the loudest)" * (s is loudest) for s in (first, second)]
    assert view.options == names and view.value == (loudest is second)
    other = second if loudest is first else first
    view.set_value(other is second).run()  # the other word's own second
    heard, outlined = waveform_shapes(try_it)
    assert try_it.subheader[0].value == f"Most models say: {other.word}"
    assert heard == pytest.approx(other.at_s, abs=0.006) and outlined == spans

    try_it.session_state["tryit_result"]["spotted"] = [other]  # had the spotter missed the loudest word
    try_it.run()
    view = try_it.radio(key="tryit_view")
    assert view.options == ["the loudest second", f"{other.word} at {other.at_s:.1f} s"] and view.value is None
    assert try_it.subheader[0].value == f"Most models say: {loudest.word}"


def test_a_word_spotted_after_the_recording_cap_is_listed_but_not_offered(try_it: AppTest, known_clips) -> None:
    """Spotting goes on past the recording's cap (30 s; 2.5 s here): a word said after it is listed, but neither
    outlined on nor answered from a recording that does not hold it."""
    if len(known_clips) < 2:
        pytest.skip("fewer than two words with a clip every model names correctly")
    (early, early_path), (late, late_path) = list(known_clips.items())[:2]
    gap = np.zeros(19200, np.float32)
    stream = np.concatenate([gap, load_audio(early_path).samples, gap, load_audio(late_path).samples, gap[:9600]])
    first, second = stop_spotted_take(try_it, stream, max_seconds=2.5)
    assert (first.word, second.word) == (early, late) and first.end_s < 2.5 < second.at_s
    assert f"2 words: **{early}** at {first.at_s:.1f} s, **{late}** at {second.at_s:.1f} s" in text_of(try_it)
    assert [r for r in try_it.radio if r.key == "tryit_view"] == []  # one word left, the loudest: nothing to choose
    assert [x0 for x0, _ in waveform_shapes(try_it)[1]] == [pytest.approx(first.at_s, abs=0.006)]


def test_upload_known_clip(try_it: AppTest, known_clip) -> None:
    path, word = known_clip
    at = upload(try_it, path.name, path.read_bytes())
    assert [s.value for s in at.subheader] == [f"Most models say: {word}"]
    assert not at.error
    assert len(at.get("audio")) == 1  # one second or less: the models hear all of it, one player
    metrics = [m for m in at.metric if m.label == "predicted"]
    assert len(metrics) == len(at.session_state["tryit_result"]["prediction"].answers)
    assert all(m.value == word for m in metrics)
    assert re.search(r"\d+\.\d ms · [\d,]+ parameters", text_of(at))
    assert f"Upload: {path.name}" in text_of(at)
    assert re.search(rf"all {len(metrics)} models in \d+\.\d ms", text_of(at))
    assert [t.label for t in at.tabs] == ["MFCC (every model's input)", "Log-mel (what the CNNs see)"]
    assert [len(tab.get("image")) for tab in at.tabs] == [1, 1]  # each picture a PNG, not a Plotly heatmap
    assert at.get("plotly_chart") == []  # the waveform a PNG too: no Plotly for the browser to load and draw
    assert any(
        i.caption.startswith("Shaded: the second the models heard") for c in at.get("image") for i in c.proto.imgs
    )


def test_another_word_is_said_to_be_none_of_the_three(try_it: AppTest, other_clip, predictor) -> None:
    at = upload(try_it, other_clip.name, other_clip.read_bytes())
    (headline,) = [s.value for s in at.subheader]
    assert headline.startswith("Not one of the three words (")
    answers = at.session_state["tryit_result"]["prediction"].answers
    four = [a for a, m in zip(answers, predictor.models) if "other" in m.labels]
    shown = [m.value for m in at.metric if m.label == "predicted"]
    assert shown.count("other") == len(four)
    bars = [p.proto.text for p in at.get("progress")]
    assert sum(t.startswith("other ") for t in bars) == len(four)  # the other bar beside the three words


def test_browser_recorder_known_clip(try_it: AppTest, known_clip) -> None:
    path, word = known_clip
    data = wav_bytes(np.concatenate([np.zeros(8000, np.float32), load_audio(path).samples]))
    try_it.audio_input(key="tryit_record").set_value(("clip.wav", data, "audio/wav")).run()
    assert not try_it.exception
    assert [s.value for s in try_it.subheader] == [f"Most models say: {word}"]
    assert "Browser recording" in text_of(try_it)
    assert len(try_it.get("audio")) == 2  # 1.5 s: the take, and the second the models heard


def test_example_button_shows_true_word_and_who_got_it(try_it: AppTest, predictor, data_dir) -> None:
    try_it.button(key="tryit_example").click().run()
    assert not try_it.exception
    text = text_of(try_it)
    found = re.search(r"Example (\w+/\S+\.wav) \(test split\)", text)
    assert found, text
    path = data_dir / found.group(1)
    expected = predictor.predict_clip(load_audio(path))
    word = path.parent.name
    assert [s.value for s in try_it.subheader] == [expected.summary]
    right = graded(expected, word)
    assert f"True word: **{word}**" in text
    assert f"({sum(right.values())} of {len(right)})" in text


def test_silence_says_no_speech_and_names_no_word(try_it: AppTest) -> None:
    at = upload(try_it, "silence.wav", wav_bytes(np.zeros(16000, np.float32)))
    assert [s.value for s in at.subheader] == ["No speech detected"]
    assert [w.value for w in at.warning] == [
        "Too quiet to be a word, so no word is named. Speak closer to the microphone, or louder."
    ]
    assert "Most models say" not in text_of(at)
    assert all(m.value == "—" for m in at.metric if m.label == "predicted")
    assert not at.get("progress")  # no probabilities shown for a word nobody said


def test_a_clap_says_no_voice_and_names_no_word(try_it: AppTest) -> None:
    """A clap is loud enough for speech, so 'too quiet' would be wrong: the page says it heard no voice."""
    clap = np.random.default_rng(0).standard_normal(4800) * np.exp(-np.arange(4800) / 320)
    at = upload(try_it, "clap.wav", wav_bytes(np.concatenate([np.zeros(8000), 0.3 * clap / np.abs(clap).max()])))
    assert [s.value for s in at.subheader] == ["No voice detected"]
    assert [w.value for w in at.warning] == [
        "There is sound but no voice in it (a noise, a clap or a tap?), so no word is named. "
        "Say the word aloud: a whisper has no voice either."
    ]
    assert all(m.value == "—" for m in at.metric if m.label == "predicted")


def test_long_upload_is_cut_with_a_notice(try_it: AppTest, known_clip) -> None:
    path, word = known_clip
    samples = np.concatenate([load_audio(path).samples, np.zeros(16000 * 34, np.float32)])
    at = upload(try_it, "long.wav", wav_bytes(samples))
    assert any("only the first 30 s were used" in w.value for w in at.warning)
    assert [s.value for s in at.subheader] == [f"Most models say: {word}"]
    # two players: the 30 s kept, and the second the models heard (the word, at the start)
    assert len(at.get("audio")) == 2
    heard = [c.value for c in at.caption if c.value.startswith("What the models hear: ")]
    assert heard and re.fullmatch(r"What the models hear: 0\.\d\d–1\.\d\d s", heard[0]), heard
    assert "The whole recording (30.0 s)" in [c.value for c in at.caption]


def _truncated_wav() -> bytes:
    data = wav_bytes(np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32))
    return data[: len(data) // 3]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        pytest.param("empty.wav", b"", "The file is empty.", id="empty"),
        # random bytes may pass for a broken MP3 stream: either sentence is honest
        pytest.param(
            "garbage.wav",
            bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)),
            "not an audio file|damaged",
            id="garbage",
        ),
        pytest.param(
            "notes.mp3", b"hello, this is plain text and not audio at all\n" * 20, "not an audio file", id="text"
        ),
        pytest.param("truncated.wav", _truncated_wav(), "truncated", id="truncated"),
        pytest.param("nan.wav", wav_bytes(np.full(16000, np.nan, np.float32), subtype="FLOAT"), "NaN", id="nan"),
    ],
)
def test_bad_files_get_one_clear_sentence(try_it: AppTest, name: str, data: bytes, message: str) -> None:
    at = upload(try_it, name, data)
    assert len(at.error) == 1
    assert re.search(message, at.error[0].value), at.error[0].value
    assert at.error[0].value.count(". ") == 0  # one sentence
    assert not at.subheader  # no prediction shown for a bad file
    at.run()  # a rerun keeps the message and does not analyse the same upload again
    assert len(at.error) == 1 and re.search(message, at.error[0].value)


def test_next_good_clip_replaces_an_error(try_it: AppTest, known_clip) -> None:
    path, word = known_clip
    upload(try_it, "empty.wav", b"")
    try_it.audio_input(key="tryit_record").set_value(("clip.wav", path.read_bytes(), "audio/wav")).run()
    assert not try_it.error
    assert [s.value for s in try_it.subheader] == [f"Most models say: {word}"]


def test_unexpected_failure_is_one_sentence_not_a_traceback(try_it: AppTest, known_clip, monkeypatch) -> None:
    class Broken:
        def predict_clip(self, clip):
            raise RuntimeError("simulated failure inside a model")

    from kws.ui import state

    monkeypatch.setattr(state, "get_predictor", lambda: Broken())
    path, _ = known_clip
    at = upload(try_it, path.name, path.read_bytes())
    assert [e.value for e in at.error] == ["Something went wrong analysing this clip."]
    assert "simulated failure" not in text_of(at) and not at.subheader


def test_no_dataset_hides_examples(no_webrtc_session, predictor, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("KWS_DATA_DIR", str(tmp_path / "nowhere"))
    at = open_try_it()
    assert not [b for b in at.button if b.key == "tryit_example"]
    assert "No dataset found" in text_of(at)


def test_pick_and_graded_are_plain_functions(known_clip, predictor) -> None:
    path, word = known_clip
    examples = [Example(path, word), Example(path.with_name("other.wav"), word)]
    assert pick(examples, random.Random(0)) == pick(examples, random.Random(0))
    prediction = predictor.predict_clip(load_audio(path))
    assert all(graded(prediction, word).values())
    assert not any(graded(prediction, "nope").values())
    silent = predictor.predict(np.zeros(16000, np.float32), 16000)
    assert silent.no_speech and not any(graded(silent, word).values())
    with pytest.raises(ValueError):
        pick([])


def test_low_confidence_answers_are_marked(try_it: AppTest, predictor, known_clip, monkeypatch) -> None:
    from kws.inference import Thresholds

    path, word = known_clip
    with monkeypatch.context() as patch:
        patch.setattr(predictor, "thresholds", Thresholds(low_confidence=1.01))  # every answer is unsure
        at = upload(try_it, path.name, path.read_bytes())
    metrics = [m for m in at.metric if m.label == "predicted"]
    assert metrics and all(m.value == word and m.delta == "low confidence" for m in metrics)
    at = upload(at, "again.wav", path.read_bytes())
    assert not any(m.delta for m in at.metric if m.label == "predicted")


def noise_line(at: AppTest) -> str:
    """The caption that says which noise clip was mixed in, at what SNR."""
    (line,) = [c.value for c in at.caption if c.value.startswith("Noise: ")]
    return line


def test_noise_at_30_db_keeps_the_word_and_at_minus_5_is_answered_again(try_it: AppTest, known_clip) -> None:
    """Real background noise, mixed in at the chosen SNR: every model answers the noisy clip, whose player and
    pictures are shown; a rerun reuses the answers instead of predicting again."""
    path, word = known_clip
    at = upload(try_it, path.name, path.read_bytes())
    snr = at.select_slider(key="tryit_noise_snr")
    assert snr.value == "off" and snr.options[:2] == ["off", "30 dB"] and snr.options[-1] == "-5 dB"
    assert at.selectbox(key="tryit_noise_kind").value == "random"
    at.select_slider(key="tryit_noise_snr").set_value(30).run()
    assert not at.exception
    line = noise_line(at)
    assert "**30 dB** SNR" in line and re.search(r"`_background_noise_/\d+\.wav`", line), line
    words = [m.value for m in at.metric if m.label == "predicted"]
    assert sum(w == word for w in words) > len(words) / 2  # barely audible noise: most models keep the word
    assert len(at.get("audio")) == 2  # the clean clip and the noisy one
    waves = [i.caption for c in at.get("image") for i in c.proto.imgs if i.caption.startswith("Shaded:")]
    assert len(waves) == 2  # the clean clip's waveform and the noisy one's, both with the heard second shaded
    assert len(at.get("image")) == 5  # and the clean clip's two pictures, the noisy clip's MFCCs
    assert not [c for c in at.get("plotly_chart") if "Waveform" in c.proto.spec]
    quiet, bars = text_of(at), [p.proto.text for p in at.get("progress")]

    at.select_slider(key="tryit_noise_snr").set_value(-5).run()
    assert not at.exception
    assert "**-5 dB** SNR" in noise_line(at) and noise_line(at).split("`")[1] == line.split("`")[1]  # same clip
    loud = text_of(at)
    assert loud != quiet and [p.proto.text for p in at.get("progress")] != bars  # answered again
    assert len(at.session_state["tryit_result"]["noisy"]) == 2
    at.run()
    assert text_of(at) == loud  # kept, not predicted again

    at.select_slider(key="tryit_noise_snr").set_value("off").run()
    assert [s.value for s in at.subheader] == [f"Most models say: {word}"]
    assert all(m.value == word for m in at.metric if m.label == "predicted")  # the cards are the clean ones again


def test_a_kind_of_noise_can_be_chosen(try_it: AppTest, known_clip) -> None:
    path, _ = known_clip
    at = upload(try_it, path.name, path.read_bytes())
    kinds = at.selectbox(key="tryit_noise_kind").options
    assert kinds[0] == "random" and len(kinds) > 1
    at.selectbox(key="tryit_noise_kind").set_value(kinds[1])
    at.select_slider(key="tryit_noise_snr").set_value(10).run()
    assert not at.exception and f"({kinds[1]})" in noise_line(at)


def test_silence_has_no_noise_control(try_it: AppTest) -> None:
    at = upload(try_it, "silence.wav", wav_bytes(np.zeros(16000, np.float32)))
    assert not [s for s in at.select_slider if s.key == "tryit_noise_snr"]
    assert "nothing for noise to cover" in text_of(at)


def test_no_dataset_offers_no_noise(no_webrtc_session, predictor, known_clip, monkeypatch, tmp_path) -> None:
    path, _ = known_clip
    data = path.read_bytes()
    monkeypatch.setenv("KWS_DATA_DIR", str(tmp_path / "nowhere"))
    at = upload(open_try_it(), path.name, data)
    assert not [s for s in at.select_slider if s.key == "tryit_noise_snr"]
    assert "Background noise comes from the dataset's `_background_noise_` folder" in text_of(at)


def test_what_each_model_listened_to_is_made_only_when_asked(try_it: AppTest, known_clip) -> None:
    """After an answer the switch is there and off (no maps made); turned on, one map per model, each titled with
    its name, on one shared colour scale, and the CNNs' first convolution; a rerun reuses the maps."""
    path, word = known_clip
    at = upload(try_it, path.name, path.read_bytes())
    switch = at.toggle(key="tryit_listened")
    assert switch.value is False and "tryit_listened_maps" not in at.session_state
    switch.set_value(True).run()
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    names = at.session_state["tryit_result"]["prediction"].answers
    maps = {s["layout"]["title"]["text"]: s for s in specs if len(s["data"]) == 2 and "drop" in str(s["data"][1])}
    assert sorted(maps) == sorted(f"{a.name}: {a.word}" for a in names)
    assert len({(s["data"][1]["zmin"], s["data"][1]["zmax"]) for s in maps.values()}) == 1  # one colour scale
    assert any("first convolution" in s["layout"]["title"]["text"] for s in specs)
    made = at.session_state["tryit_listened_maps"]
    at.run()
    assert at.session_state["tryit_listened_maps"] is made  # a rerun costs no new maps


def test_a_rerun_draws_the_clip_pictures_again_for_nothing(try_it: AppTest, known_clip, monkeypatch) -> None:
    """The three pictures are an answer's biggest server cost: made once per shown view, then reused by every
    rerun (another widget, ten visitors' worth); a new clip gets its own."""
    from kws import pictures

    drawn = []
    real = pictures.waveform_picture
    monkeypatch.setattr(pictures, "waveform_picture", lambda *a, **k: drawn.append(1) or real(*a, **k))
    path, _ = known_clip
    at = upload(try_it, path.name, path.read_bytes())
    assert len(drawn) == 1 and len(at.get("image")) == 3
    first = at.session_state["tryit_result"]["pictures"]
    at.toggle(key="tryit_listened").set_value(True).run()
    at.toggle(key="tryit_listened").set_value(False).run()
    assert len(drawn) == 1 and at.session_state["tryit_result"]["pictures"] is first
    assert len(at.get("image")) == 3  # still shown, from what was kept
    upload(at, "again.wav", path.read_bytes())
    assert len(drawn) == 2  # a new upload is a new result
