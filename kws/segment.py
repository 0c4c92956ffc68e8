"""Finding the word: choose the 1-second window that holds the speech, and tell speech from silence and noise.

Recordings are rarely exactly one second. The window with the most energy holds the word; among the
near-best positions the middle one is taken, so a short word sits centred. Clips shorter than the window are
padded with zeros on both sides. Training, evaluation, the app and the CLI all turn a recording into model input
through :func:`model_input` (one clip) or :func:`model_inputs` (many): the window, then its MFCCs.
A window loud enough to be speech may still hold no voice (a clap, a tap, a hiss): :func:`aperiodicity` tells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kws.features import FeatureSettings, copy_window, mfcc, mfcc_batch, shapes

#: Energy frames for the search: 10 ms steps at 16 kHz.
_STEP = 160
#: The loudest 100 ms of the window below this level (dBFS) means "no speech detected".
SPEECH_THRESHOLD_DB = -55.0
#: Above this :func:`aperiodicity` a loud window holds no voice, so no word. Chosen on the train and validation
#: speakers' clips (4 of their 4,215 lie above it) and generated noise bursts (none below it): ``bench/voice.py``.
VOICE_THRESHOLD = 0.52

# The voicing measure works at 4 kHz (a voice's pitch and its first harmonics lie well below 2 kHz) on 25-ms
# frames 15 ms apart, looking for a pitch between 70 and 400 Hz.
_V_RATE = 4000
_V_FRAME = 100
_V_HOP = 60
_V_MIN_LAG = _V_RATE // 400
_V_MAX_LAG = _V_RATE // 70
_V_FFT = 256  # >= frame + the longest lag: the correlation below never wraps around
_V_LOUD_DB = 30.0  # frames this far below the loudest are background, not the sound being judged
_V_FRAMES = 2  # the sound must be pitched in at least this many frames (40 ms), not in one lucky frame


@dataclass(frozen=True)
class Window:
    """The samples the models hear, and where they came from in the recording (seconds)."""

    samples: np.ndarray
    start_s: float
    end_s: float
    level_db: float

    @property
    def has_speech(self) -> bool:
        return self.level_db >= SPEECH_THRESHOLD_DB


def loudness_db(samples: np.ndarray, span: int = 1600) -> float:
    """RMS level in dBFS of the loudest ``span`` samples (100 ms): robust to a short click or a long pause."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return -120.0
    if x.size <= span:
        rms = np.sqrt(np.mean(x**2))
    else:
        energy = np.concatenate(([0.0], np.cumsum(x**2)))
        rms = np.sqrt(np.max(energy[span:] - energy[:-span]) / span)
    return float(20.0 * np.log10(max(rms, 1e-6)))


def aperiodicity(samples: np.ndarray, rate: int = 16000) -> float:
    """How unlike a voice ``samples`` (a window, at ``rate``) sound: 0 for a steady pitch, about 0.1 for a
    vowel, 0.7 or more for noise. It is the normalised difference of YIN (de Cheveigné and Kawahara, 2002) at
    the best pitch lag, in the second most pitched of the frames within 30 dB of the loudest.

    Every word here has a vowel, so a loud window with no pitched moment is a noise that the models would
    still name: a clap or a tap on the microphone sounds like the consonants of "cat" to them, and most are sure
    of it. librosa's ``pyin`` makes the same voiced/unvoiced decision but takes ~100 ms a second of audio against
    ~0.3 ms here (``bench/voice.py``); its ``yin`` is fast but reports a pitch for noise too, with no measure of
    how periodic the frame was.
    """
    x = np.asarray(samples, dtype=np.float64)
    step = max(1, rate // _V_RATE)
    x = x[: x.size - x.size % step]
    x = sum(x[i::step] for i in range(step)) / step  # a crude low-pass, then every step-th sample
    span = _V_FRAME + _V_MAX_LAG
    if x.size < span:
        x = np.pad(x, (0, span - x.size))
    cum = np.concatenate(([0.0], np.cumsum(x**2)))  # cum[k]: the energy of the first k samples
    starts = np.arange(0, x.size - span + 1, _V_HOP)
    energy = cum[starts + _V_FRAME] - cum[starts]
    if energy.max() <= 0:
        return 1.0
    loud = energy >= energy.max() * 10 ** (-_V_LOUD_DB / 10)
    starts, energy = starts[loud], energy[loud]
    frames = sliding_window_view(x, span)[starts]
    # d(t) = sum over the frame of (x[j] - x[j + t])^2 = energy + energy shifted by t - 2 * correlation(t)
    spectrum = np.conj(np.fft.rfft(frames[:, :_V_FRAME], _V_FFT)) * np.fft.rfft(frames, _V_FFT)
    corr = np.fft.irfft(spectrum, _V_FFT)[:, 1 : _V_MAX_LAG + 1]
    lags = np.arange(1, _V_MAX_LAG + 1)
    at = starts[:, None] + lags
    diff = np.maximum(energy[:, None] + cum[at + _V_FRAME] - cum[at] - 2 * corr, 0.0)
    normalised = diff * lags / np.maximum(np.cumsum(diff, axis=1), 1e-20)  # YIN's cumulative mean normalisation
    best = np.sort(normalised[:, _V_MIN_LAG - 1 :].min(axis=1))
    return float(best[min(_V_FRAMES, best.size) - 1])


def _start(x: np.ndarray, length: int) -> int:
    """Where the ``length``-sample window with the most energy starts in ``x`` (longer than ``length``)."""
    energy = np.concatenate(([0.0], np.cumsum(x.astype(np.float64) ** 2)))
    starts = np.arange(0, x.size - length + 1, _STEP)
    totals = energy[starts + length] - energy[starts]
    best = totals.max()
    near = starts[totals >= best * 0.98] if best > 0 else starts[:1]
    # positions near the best form a run around the word; its middle centres the word in the window
    return int(near[len(near) // 2])


def _origin(x: np.ndarray, length: int) -> int:
    """Where the window starts in ``x``: negative for a short clip, which sits centred in zeros."""
    return -((length - x.size) // 2) if x.size <= length else _start(x, length)


def _place(x: np.ndarray, length: int, out: np.ndarray) -> tuple[int, int]:
    """Write the window of ``x`` into ``out`` (zeros around a short clip); returns (start, end) in ``x``."""
    return copy_window(x, _origin(x, length), out)


def find_window(samples: np.ndarray, settings: FeatureSettings) -> Window:
    """The ``clip_seconds`` window of ``samples`` (16 kHz) that holds the word."""
    length = shapes(settings).clip_samples
    x = np.asarray(samples, dtype=np.float32)
    rate = settings.sample_rate
    window = np.empty(length, dtype=np.float32)
    start, end = _place(x, length, window)
    # a clip shorter than the window is measured alone, not diluted by its zero padding
    level = loudness_db(x if x.size <= length else window)
    return Window(window, start / rate, end / rate, level)


def batch_windows(clips: Sequence[np.ndarray], settings: FeatureSettings) -> np.ndarray:
    """Stack the windows of many clips into ``(n, clip_samples)`` for :func:`kws.features.mfcc_batch`.

    The same placement as :func:`find_window`, without the loudness that only a single answer needs.
    """
    length = shapes(settings).clip_samples
    out = np.empty((len(clips), length), dtype=np.float32)
    for i, clip in enumerate(clips):
        _place(np.asarray(clip, dtype=np.float32), length, out[i])
    return out


def model_input(
    samples: np.ndarray, settings: FeatureSettings, window: Window | None = None
) -> tuple[Window, np.ndarray]:
    """The window of ``samples`` (16 kHz) and its MFCCs ``(n_frames, n_mfcc)`` under ``settings``.

    The one path from a recording to model input: training, evaluation, the app and the CLI call it (or
    :func:`model_inputs` for many clips), so no model ever hears features computed another way. ``window``, when
    given, is used as found (the app finds one window per clip length and shares it between settings).
    """
    if window is None:
        window = find_window(samples, settings)
    return window, mfcc(window.samples, settings)


def model_inputs(clips: Sequence[np.ndarray], settings: FeatureSettings) -> np.ndarray:
    """The MFCCs ``(n, n_frames, n_mfcc)`` of many recordings: :func:`model_input`'s features, in one batch.

    The windows are placed as :func:`find_window` places them and featurized together by
    :func:`kws.features.mfcc_batch` in one call.
    """
    return mfcc_batch(batch_windows(clips, settings), settings)


def shifted_windows(samples: np.ndarray, settings: FeatureSettings, shifts: tuple[int, ...]) -> np.ndarray:
    """The word's window moved by each of ``shifts`` samples (later for positive): ``(len(shifts), clip_samples)``.

    Test-time views: the recording's own audio where it has some, zeros beyond its ends, so a 1-second clip
    gives the zero-filled shifts that training's augmentation makes, and a longer recording its real context.
    Shift 0 is exactly :func:`find_window`'s window.
    """
    length = shapes(settings).clip_samples
    x = np.asarray(samples, dtype=np.float32)
    origin = _origin(x, length)
    out = np.empty((len(shifts), length), dtype=np.float32)
    for row, shift in zip(out, shifts):
        copy_window(x, origin + int(shift), row)
    return out
