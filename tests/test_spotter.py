"""spotter: words said in a running take, each named once, through the microphone buffer and the real models."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from _audio_util import clap

from kws.audio import load_audio
from kws.mic import MicBuffer
from kws.spotter import FEED_SECONDS, MAX_BEHIND_SECONDS, Spotter

RATE, FRAME = 48000, 960  # WebRTC's rate and 20-ms frames


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), np.float32)


def spot_stream(predictor, stream_16k: np.ndarray, every_s: float = 0.5) -> Spotter:
    """Feed a 16 kHz stream to a MicBuffer as 48 kHz int16 frames, the page asking for words every ``every_s``
    (twice a second when the server keeps up), and once more at STOP."""
    stream = librosa.resample(stream_16k, orig_sr=16000, target_sr=RATE)
    buffer, spotter, next_ask = MicBuffer(), Spotter(), every_s
    for start in range(0, stream.size - FRAME + 1, FRAME):
        buffer.add(np.round(stream[start : start + FRAME] * 32767).astype(np.int16), RATE)
        if (start + FRAME) / RATE >= next_ask:
            next_ask += every_s
            spotter.feed(predictor, *buffer.recent(FEED_SECONDS))
    spotter.feed(predictor, *buffer.recent(FEED_SECONDS), final=True)
    return spotter


def three_words(known_clips) -> tuple[np.ndarray, list[str], list[float]]:
    """Silence, then each word with 1.2 s of silence after it; the words and where each starts."""
    words = list(known_clips)
    parts, starts, t = [silence(1.0)], [], 1.0
    for word in words:
        clip = load_audio(known_clips[word]).samples
        parts += [clip, silence(1.2)]
        starts.append(t)
        t += clip.size / 16000 + 1.2
    return np.concatenate(parts + [silence(1.0)]), words, starts


def test_each_word_of_a_take_is_named_once_in_order(predictor, known_clips) -> None:
    if len(known_clips) < 2:
        pytest.skip("fewer than two words with a clip every model names correctly")
    stream, words, starts = three_words(known_clips)
    spotter = spot_stream(predictor, stream)
    assert [s.word for s in spotter.spotted] == words  # each once: overlapping looks saw each several times
    for said, start in zip(spotter.spotted, starts):
        assert start - 0.5 < said.at_s < start + 0.6  # the window starts near the clip
        assert said.end_s - said.at_s == pytest.approx(1.0)
        assert said.votes * 2 > said.models
    assert spotter.looks > 2 * len(words)


def test_a_page_that_asks_late_gets_the_same_words(predictor, known_clips) -> None:
    """A loaded server runs the page's half-second timer late: asking once every 2.7 s (a word's whole span
    passes between two asks) or every 5.5 s, the looks are made on the take's clock all the same."""
    stream, words, _ = three_words(known_clips)
    often = spot_stream(predictor, stream)
    for every_s in (2.7, MAX_BEHIND_SECONDS - 0.5):
        late = spot_stream(predictor, stream, every_s=every_s)
        assert late.spotted == often.spotted and late.looks == often.looks, every_s
    # a server stalled for the whole take looks back only so far, on the same clock: the later words, each once
    stalled = spot_stream(predictor, stream, every_s=stream.size / 16000 + 1)
    assert stalled.looks < often.looks and stalled.spotted
    for late, early in zip(reversed(stalled.spotted), reversed(often.spotted)):
        assert late.word == early.word and abs(late.at_s - early.at_s) < 0.3


def test_claps_are_not_words(predictor, known_clips) -> None:
    """A clap or a tap on the microphone sounds like "cat" to the models; the voice check keeps it off the list."""
    stream, words, starts = three_words(known_clips)
    tap = np.concatenate([silence(1.5), clap(0.3, seed=1), silence(1.5)])
    spotted = spot_stream(predictor, np.concatenate([tap, stream, tap, tap])).spotted
    assert [s.word for s in spotted] == words
    assert [s.at_s for s in spotted] == pytest.approx([tap.size / 16000 + t for t in starts], abs=0.3)


def test_silence_and_a_word_cut_off_by_the_end_are_not_words(predictor, known_clip) -> None:
    path, _ = known_clip
    assert spot_stream(predictor, silence(4.0)).spotted == []
    half = load_audio(path).samples
    # the take stops in the middle of the word: it is never wholly inside a look, so never named
    cut = np.concatenate([silence(2.0), half[: half.size // 2]])
    assert spot_stream(predictor, cut).spotted == []
