"""Finding the word: choose the 1-second window that holds the speech, and tell speech from silence.

Recordings are rarely exactly one second. The window with the most energy holds the word; among the
near-best positions the middle one is taken, so a short word sits centred. Clips shorter than the window are
padded with zeros on both sides. Training, evaluation, the app and the CLI all go through :func:`find_window`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kws.features import FeatureSettings, copy_window, shapes

#: Energy frames for the search: 10 ms steps at 16 kHz.
_STEP = 160
#: The loudest 100 ms of the window below this level (dBFS) means "no speech detected".
SPEECH_THRESHOLD_DB = -55.0


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


def batch_windows(clips: list[np.ndarray], settings: FeatureSettings) -> np.ndarray:
    """Stack the windows of many clips into ``(n, clip_samples)`` for :func:`kws.features.mfcc_batch`.

    The same placement as :func:`find_window`, without the loudness that only a single answer needs.
    """
    length = shapes(settings).clip_samples
    out = np.empty((len(clips), length), dtype=np.float32)
    for i, clip in enumerate(clips):
        _place(np.asarray(clip, dtype=np.float32), length, out[i])
    return out


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
