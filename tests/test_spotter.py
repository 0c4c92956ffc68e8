"""spotter: words said in a running take, each named once, through the microphone buffer and the real models."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from kws.audio import load_audio
from kws.mic import MicBuffer
from kws.spotter import LOOK_SECONDS, Spotter

RATE, FRAME, LOOK_EVERY_S = 48000, 960, 0.5  # WebRTC's rate and 20-ms frames; the page looks twice a second


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), np.float32)


def spot_stream(predictor, stream_16k: np.ndarray) -> Spotter:
    """Feed a 16 kHz stream to a MicBuffer as 48 kHz int16 frames, looking every half second, as the page does."""
    stream = librosa.resample(stream_16k, orig_sr=16000, target_sr=RATE)
    buffer, spotter, next_look = MicBuffer(), Spotter(), LOOK_EVERY_S
    for start in range(0, stream.size - FRAME + 1, FRAME):
        buffer.add(np.round(stream[start : start + FRAME] * 32767).astype(np.int16), RATE)
        if (start + FRAME) / RATE >= next_look:
            next_look += LOOK_EVERY_S
            spotter.look(predictor, *buffer.recent(LOOK_SECONDS))
    return spotter


def test_each_word_of_a_take_is_named_once_in_order(predictor, known_clips) -> None:
    if len(known_clips) < 2:
        pytest.skip("fewer than two words with a clip every model names correctly")
    words = list(known_clips)
    parts, starts, t = [silence(1.0)], [], 1.0
    for word in words:
        clip = load_audio(known_clips[word]).samples
        parts += [clip, silence(1.2)]
        starts.append(t)
        t += clip.size / 16000 + 1.2
    spotter = spot_stream(predictor, np.concatenate(parts + [silence(1.0)]))
    assert [s.word for s in spotter.spotted] == words  # each once: overlapping looks saw each several times
    for said, start in zip(spotter.spotted, starts):
        assert start - 0.5 < said.at_s < start + 0.6  # the window starts near the clip
        assert said.votes * 2 > said.models
    assert spotter.looks > 2 * len(words)


def test_silence_and_a_word_cut_off_by_the_end_are_not_words(predictor, known_clip) -> None:
    path, _ = known_clip
    assert spot_stream(predictor, silence(4.0)).spotted == []
    half = load_audio(path).samples
    # the take stops in the middle of the word: it is never wholly inside a look, so never named
    cut = np.concatenate([silence(2.0), half[: half.size // 2]])
    assert spot_stream(predictor, cut).spotted == []
