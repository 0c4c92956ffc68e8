"""segment: the word is centred in the window, silence is told from speech, and a clip becomes model input."""

from __future__ import annotations

import numpy as np
import pytest
from _audio_util import RATE, clap, real_data_dir, word_like

from kws.features import FeatureSettings, mfcc, preset, shapes
from kws.segment import (
    SPEECH_THRESHOLD_DB,
    VOICE_THRESHOLD,
    aperiodicity,
    batch_windows,
    find_window,
    loudness_db,
    model_input,
    model_inputs,
    shifted_windows,
)

S = preset("standard")


def embed(total_s: float, word_at_s: float, word_s: float = 0.4, noise_db: float = -70.0) -> np.ndarray:
    """A recording of ``total_s`` seconds with quiet noise and one word starting at ``word_at_s``."""
    rng = np.random.default_rng(0)
    x = (10 ** (noise_db / 20) * rng.standard_normal(int(total_s * RATE))).astype(np.float32)
    w = word_like(word_s, seed=5)
    start = int(word_at_s * RATE)
    x[start : start + len(w)] += w
    return x


@pytest.mark.parametrize("word_at", [0.9, 1.8, 2.5])
def test_word_is_centred_in_a_long_recording(word_at: float) -> None:
    x = embed(4.0, word_at)
    win = find_window(x, S)
    assert len(win.samples) == shapes(S).clip_samples
    assert win.end_s - win.start_s == pytest.approx(1.0)
    word_centre = word_at + 0.2
    window_centre = (win.start_s + win.end_s) / 2
    assert window_centre == pytest.approx(word_centre, abs=0.05)
    # the window holds the samples the recording has at the reported place
    start = round(win.start_s * RATE)
    np.testing.assert_array_equal(win.samples, x[start : start + len(win.samples)])
    assert win.has_speech


@pytest.mark.parametrize("word_at", [0.0, 3.6])
def test_word_at_an_edge_stays_inside_the_window(word_at: float) -> None:
    """The window cannot reach past the recording; it must still hold (nearly) all of the word."""
    x = embed(4.0, word_at)
    win = find_window(x, S)
    assert 0.0 <= win.start_s and win.end_s <= 4.0
    w = word_like(0.4, seed=5)
    a, b = round(win.start_s * RATE), round(win.end_s * RATE)
    w0 = int(word_at * RATE)
    inside = np.sum(w[max(a - w0, 0) : max(min(b - w0, len(w)), 0)] ** 2)
    assert inside / np.sum(w**2) > 0.97


def test_short_clip_is_padded_centred() -> None:
    w = word_like(0.5)
    win = find_window(w, S)
    assert len(win.samples) == RATE
    assert (win.start_s, win.end_s) == (0.0, pytest.approx(0.5))
    pad = (RATE - len(w)) // 2
    np.testing.assert_array_equal(win.samples[pad : pad + len(w)], w)
    assert not win.samples[:pad].any() and not win.samples[pad + len(w) :].any()


@pytest.mark.parametrize("short_by", [1, 3])
def test_a_clip_a_few_samples_short_is_padded_not_refused(short_by: int) -> None:
    """An odd shortfall leaves no room before the clip (pad 0 or 1): the window still holds it, zeros after."""
    w = word_like(1.0)[: RATE - short_by]
    win = find_window(w, S)
    pad = short_by // 2
    np.testing.assert_array_equal(win.samples[pad : pad + len(w)], w)
    assert not win.samples[:pad].any() and not win.samples[pad + len(w) :].any()
    assert (win.start_s, win.end_s) == (0.0, pytest.approx(len(w) / RATE))


def test_silence_is_no_speech() -> None:
    assert not find_window(np.zeros(2 * RATE, np.float32), S).has_speech
    assert not find_window(np.zeros(0, np.float32), S).has_speech
    hiss = (10 ** (-70 / 20) * np.random.default_rng(1).standard_normal(2 * RATE)).astype(np.float32)
    assert not find_window(hiss, S).has_speech


def test_speech_level_is_reported() -> None:
    win = find_window(embed(2.0, 0.8), S)
    assert win.level_db > SPEECH_THRESHOLD_DB
    assert win.level_db == pytest.approx(loudness_db(win.samples))


def test_loudness_db() -> None:
    assert loudness_db(np.zeros(0)) == -120.0
    assert loudness_db(np.full(3200, 0.5)) == pytest.approx(20 * np.log10(0.5), abs=1e-6)
    # the loudest 100 ms decides: a short burst in a long silence still counts
    x = np.zeros(5 * RATE)
    x[RATE : RATE + 1600] = 0.1
    assert loudness_db(x) == pytest.approx(-20.0, abs=1e-6)


def test_batch_windows() -> None:
    clips = [word_like(0.3), embed(2.5, 1.0), np.zeros(RATE, np.float32)]
    out = batch_windows(clips, S)
    assert out.shape == (3, RATE) and out.dtype == np.float32
    for row, clip in zip(out, clips):  # short, long and exact clips: the same placement as find_window
        np.testing.assert_array_equal(row, find_window(clip, S).samples)


@pytest.mark.parametrize("settings", [FeatureSettings(), preset("lecture_exact")], ids=["default", "lecture_exact"])
def test_model_input_is_the_window_then_its_mfccs(settings: FeatureSettings) -> None:
    clips = [word_like(0.3), embed(2.5, 1.0), np.zeros(RATE, np.float32)]  # short, long, silent
    for clip in clips:
        window, feats = model_input(clip, settings)
        expected = find_window(clip, settings)
        assert (window.start_s, window.end_s, window.level_db) == (expected.start_s, expected.end_s, expected.level_db)
        np.testing.assert_array_equal(window.samples, expected.samples)
        np.testing.assert_array_equal(feats, mfcc(expected.samples, settings))
    given = find_window(embed(2.0, 0.2), settings)  # a window handed in is used as it is, not found again
    window, feats = model_input(clips[0], settings, given)
    assert window is given
    np.testing.assert_array_equal(feats, mfcc(given.samples, settings))
    batch = model_inputs(clips, settings)
    np.testing.assert_array_equal(batch, np.stack([model_input(clip, settings)[1] for clip in clips]))


def test_shifted_windows_move_the_window_with_real_context_or_zeros() -> None:
    long, short = embed(2.5, 1.0), word_like(0.3)
    for clip in (long, short, embed(1.0, 0.3)):
        views = shifted_windows(clip, S, (-800, 0, 1600))
        window = find_window(clip, S).samples
        assert views.shape == (3, RATE) and views.dtype == np.float32
        np.testing.assert_array_equal(views[1], window)  # shift 0 is the window itself
        np.testing.assert_array_equal(views[0][800:], window[:-800])  # earlier: the word moves right
        np.testing.assert_array_equal(views[2][:-1600], window[1600:])  # later: the word moves left
    start = int(round(find_window(long, S).start_s * RATE))
    np.testing.assert_array_equal(shifted_windows(long, S, (-800,))[0][:800], long[start - 800 : start])  # real audio
    padded = shifted_windows(short, S, (-8000, 8000))  # beyond a short clip's ends: zeros, the word partly kept
    assert np.count_nonzero(padded[0][:8000]) == 0 and np.count_nonzero(padded[1][-8000:]) == 0
    far = shifted_windows(short, S, (40000,))  # wholly past the recording: silence, not an error
    assert not far.any()


def in_window(x: np.ndarray) -> np.ndarray:
    return find_window(x, S).samples


@pytest.mark.parametrize("seed", range(3))
def test_a_voice_is_pitched_and_noise_is_not(seed: int) -> None:
    """A gliding voice (alone or over a hiss 20 dB down) lies far below the threshold; a clap, hiss or rumble
    as loud as a word lies above it, whatever its colour."""
    rng = np.random.default_rng(seed)
    voice = word_like(0.5, seed=seed)
    hiss = (0.03 * rng.standard_normal(voice.size)).astype(np.float32)
    assert aperiodicity(in_window(voice)) < 0.2
    assert aperiodicity(in_window(voice + hiss)) < VOICE_THRESHOLD / 2
    rumble = np.cumsum(rng.standard_normal(RATE)).astype(np.float32)  # brown noise: its energy sits low, like a voice's
    rumble = 0.3 * (rumble - rumble.mean()) / np.abs(rumble - rumble.mean()).max()
    for noise in (clap(seed=seed), clap(seed=seed, decay_s=0.1), (0.1 * rng.standard_normal(RATE)).astype(np.float32)):
        assert aperiodicity(in_window(noise)) > VOICE_THRESHOLD


def test_aperiodicity_of_nothing_or_a_short_sound() -> None:
    assert aperiodicity(np.zeros(RATE, np.float32)) == 1.0
    assert aperiodicity(np.zeros(0, np.float32)) == 1.0
    assert aperiodicity(word_like(0.05)) < VOICE_THRESHOLD  # shorter than one frame and its longest lag
    # the same voice at 48 kHz measures as at 16 kHz: the measure brings every rate down to the same 4 kHz
    voice = word_like(0.4, rate=48000)
    assert aperiodicity(voice, 48000) == pytest.approx(aperiodicity(voice[::3], RATE), abs=0.05)


@pytest.mark.skipif(real_data_dir() is None, reason="the Speech Commands dataset is not at KWS_DATA_DIR")
def test_real_words_have_a_voice() -> None:
    """The threshold was set on the train and validation speakers (4 of their 4,215 clips lie above it); on the
    test speakers, no more than one clip in 500 may be refused as having no voice."""
    from kws.audio import load_audio
    from kws.dataset import scan

    clips = [it.path for it in scan(real_data_dir()) if it.split == "test"]
    windows = [find_window(load_audio(path).samples, S) for path in clips]
    refused = [p for p, w in zip(clips, windows) if w.has_speech and aperiodicity(w.samples) > VOICE_THRESHOLD]
    assert len(clips) > 400 and len(refused) <= len(clips) // 500, refused
