"""MFCC features: the one path from a 16 kHz waveform to model input, for training, evaluation, app and CLI.

A small frozen :class:`FeatureSettings` fixes every number; :func:`shapes` derives all sizes from it, and
:func:`mfcc` / :func:`mfcc_batch` compute exactly what ``librosa.feature.mfcc`` would (a test checks that),
with the mel filterbank and DCT precomputed so a single clip costs well under a millisecond.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

LEVELS = ("absolute", "peak")
FRAME_PADS = (None, "reflect", "constant")


@dataclass(frozen=True)
class FeatureSettings:
    """Everything that decides the model input; saved beside every model and read back at load time."""

    name: str = "standard"
    sample_rate: int = 16000
    clip_seconds: float = 1.0
    win_length: int = 400  # samples: 25 ms
    hop_length: int = 320  # samples: 20 ms
    n_fft: int = 512
    n_mels: int = 40
    n_mfcc: int = 40
    fmin: float = 20.0
    fmax: float = 7600.0
    #: Floor of the log-mel image, in dB below the clip's loudest cell: digital silence (zero padding, a
    #: muted mic) would otherwise sit at -100 dB, far below any real noise floor, and dominate the picture.
    top_db: float | None = 80.0
    #: The dB reference: "absolute" (power 1, so a quiet recording gives a dim picture) or "peak" (the clip's
    #: loudest cell, so the picture is the same at any recording level: loudness carries nothing about the
    #: word, and the quietest clips are far beyond the gain augmentation's reach).
    level: str = "absolute"
    #: Move each window's content so its energy centroid sits mid-window (zeros fill what moves in) before the
    #: MFCCs. A linear model reads every cell by its position, so a word said 100 ms early is a different
    #: pattern to it; convolutions and recurrence do not need this.
    centre: bool = False
    #: Keep every n-th sample before the spectrogram, with no low-pass filter first, the mel scale still laid
    #: out for ``sample_rate``: the lecture's ``wave[::3]``, kept so its models see exactly what they saw.
    decimate: int = 1
    #: None: frames start at the clip's first sample and all lie inside it. A ``numpy.pad`` mode ("reflect",
    #: "constant"): the signal is padded by ``n_fft // 2`` on each side and frame ``i`` is centred on sample
    #: ``i * hop_length`` (``librosa.feature.mfcc``'s ``center=True``; "reflect" was its default until 0.10).
    frame_pad: str | None = None

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"unknown level reference {self.level!r}; choose one of: {', '.join(LEVELS)}")
        if self.decimate < 1:
            raise ValueError("decimate must be 1 or more")
        if self.frame_pad not in FRAME_PADS:
            raise ValueError(f"unknown frame padding {self.frame_pad!r}; choose one of: reflect, constant, or none")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSettings:
        """Build from saved metadata; unknown keys are an error, so a model never gets silently wrong input."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown feature settings: {sorted(unknown)}")
        return cls(**data)

    def key(self) -> str:
        """A stable string naming these settings, for cache keys."""
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class Shapes:
    """Sizes derived from :class:`FeatureSettings`; the only place they are computed."""

    clip_samples: int
    n_frames: int
    n_coeffs: int

    @property
    def input_shape(self) -> tuple[int, int]:
        """Model input: time frames first, then MFCC coefficients."""
        return (self.n_frames, self.n_coeffs)

    def frame_times(self, settings: FeatureSettings) -> np.ndarray:
        """Centre of each frame in seconds, for plot axes."""
        centres = np.arange(self.n_frames) * settings.hop_length
        if settings.frame_pad is None:
            centres = centres + settings.n_fft / 2
        return centres * settings.decimate / settings.sample_rate


PRESETS: dict[str, FeatureSettings] = {
    # 40 coefficients over 25 ms windows every 20 ms: 49 x 40, enough detail for >99% with a small CNN.
    "standard": FeatureSettings(),
    # The lecture's input: 20 coefficients x 11 frames (it cut every third sample and used librosa defaults).
    "lecture": FeatureSettings(
        name="lecture", win_length=2048, hop_length=1395, n_fft=2048, n_mels=40, n_mfcc=20, fmax=8000.0
    ),
    # Exactly the lecture's ``librosa.feature.mfcc(wave[::3], sr=16000)``: every third sample, librosa's defaults
    # (2048-sample frames every 512, centred with reflection, 128 mel bands from 0 to 8 kHz, 20 coefficients).
    "lecture_exact": FeatureSettings(
        name="lecture_exact",
        win_length=2048,
        hop_length=512,
        n_fft=2048,
        n_mels=128,
        n_mfcc=20,
        fmin=0.0,
        fmax=8000.0,
        decimate=3,
        frame_pad="reflect",
    ),
}


def label(saved: dict[str, Any]) -> str:
    """How tables name a model's features, from its saved settings: the preset, and "centred" if so."""
    return saved["name"] + (", centred" if saved.get("centre") else "")


def preset(name: str) -> FeatureSettings:
    """Look a preset up by name; unknown names list the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown feature preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def shapes(settings: FeatureSettings) -> Shapes:
    """Derive all sizes from the settings (frames of n_fft samples of the decimated clip; inside it unless
    ``frame_pad`` centres them)."""
    clip_samples = int(round(settings.sample_rate * settings.clip_seconds))
    if settings.win_length > settings.n_fft:
        raise ValueError("win_length must not exceed n_fft")
    kept = -(-clip_samples // settings.decimate)
    if settings.frame_pad is None:
        n_frames = 1 + (kept - settings.n_fft) // settings.hop_length
    else:
        n_frames = 1 + kept // settings.hop_length
    return Shapes(clip_samples=clip_samples, n_frames=n_frames, n_coeffs=settings.n_mfcc)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


def mel_filterbank(settings: FeatureSettings) -> np.ndarray:
    """``(n_mels, n_fft // 2 + 1)`` triangular filters on Slaney's mel scale, each scaled to equal area: what
    ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` returns (a test checks it).

    Written out rather than taken from librosa: importing ``librosa.filters`` and its first call (numba, scipy.signal)
    cost ~1.7 s, most of a cold ``python -m kws predict``, for twenty lines of numpy.
    """
    fft_hz = np.linspace(0, settings.sample_rate / 2, 1 + settings.n_fft // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(settings.fmin), _hz_to_mel(settings.fmax), settings.n_mels + 2))
    ramps = np.subtract.outer(edges, fft_hz)
    lower = -ramps[:-2] / np.diff(edges)[:-1, None]
    upper = ramps[2:] / np.diff(edges)[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


@functools.lru_cache(maxsize=8)
def _tables(settings: FeatureSettings) -> tuple[np.ndarray, np.ndarray]:
    """Window (a periodic Hann of ``win_length``, centred in ``n_fft`` like librosa's) and mel filterbank, computed
    once per settings."""
    n = np.arange(settings.win_length)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / settings.win_length)
    window = np.zeros(settings.n_fft, np.float32)
    start = (settings.n_fft - settings.win_length) // 2
    window[start : start + settings.win_length] = hann
    return window, mel_filterbank(settings).astype(np.float32)


def copy_window(x: np.ndarray, start: int, out: np.ndarray) -> tuple[int, int]:
    """``out[i] = x[start + i]`` where ``x`` has that sample, zero elsewhere; returns the (start, end) copied from ``x``.

    ``start`` may be negative or run past the end: a short clip centred in zeros, a shifted view, a centred word.
    """
    lo = max(start, 0)
    hi = max(min(start + out.shape[-1], x.size), lo)  # lo == hi: nothing of x falls in the window
    out[: lo - start] = 0.0
    out[lo - start : hi - start] = x[lo:hi]
    out[hi - start :] = 0.0
    return lo, hi


@functools.lru_cache(maxsize=4)
def _positions(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64)


def centre_batch(clips: np.ndarray) -> np.ndarray:
    """Each row shifted (not rolled) so that its energy centroid falls on the middle sample; silent rows unchanged.

    The centroid of the squared samples follows the loud part of a clip, the word, rather than its edges.
    """
    clips = np.asarray(clips, dtype=np.float32)
    out = np.empty_like(clips)
    n = clips.shape[1]
    energy = np.square(clips, dtype=np.float64)
    total = energy.sum(axis=1)
    # elementwise, not a matrix product: BLAS's threads cost more than this is worth for one clip
    centroid = (energy * _positions(n)).sum(axis=1) / np.where(total > 0, total, 1.0)
    shifts = np.where(total > 0, np.rint((n - 1) / 2 - centroid), 0).astype(int)
    for row, clip, shift in zip(out, clips, shifts):
        copy_window(clip, -int(shift), row)
    return out


def mfcc_batch(clips: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """MFCCs of a batch of fixed-length clips: ``(n, clip_samples)`` -> ``(n, n_frames, n_mfcc)`` float32.

    Same maths as ``librosa.feature.mfcc(y[::decimate], sr, n_fft, hop_length, win_length, center=False, ...)``
    (``center=True, pad_mode=frame_pad`` where ``frame_pad`` is set; after :func:`centre_batch` where
    ``settings.centre`` asks for it):
    power spectrogram, mel filterbank, ``power_to_db`` (ref 1, or ``np.max`` for the "peak" level; ``top_db``
    per clip), orthonormal DCT-II.
    """
    geo = shapes(settings)
    clips = np.asarray(clips, dtype=np.float32)
    if clips.ndim != 2 or clips.shape[1] != geo.clip_samples:
        raise ValueError(f"expected clips of shape (n, {geo.clip_samples}), got {clips.shape}")
    if settings.centre:
        clips = centre_batch(clips)
    if settings.decimate > 1:
        clips = np.ascontiguousarray(clips[:, :: settings.decimate])
    if settings.frame_pad is not None:
        half = settings.n_fft // 2
        clips = np.pad(clips, ((0, 0), (half, half)), mode=settings.frame_pad)
    window, mel = _tables(settings)
    frames = np.lib.stride_tricks.sliding_window_view(clips, settings.n_fft, axis=1)
    frames = frames[:, : geo.n_frames * settings.hop_length : settings.hop_length]
    spec = scipy.fft.rfft(frames * window, axis=-1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel_power = power @ mel.T  # (n, frames, n_mels)
    log_mel = 10.0 * np.log10(np.maximum(mel_power, 1e-10))
    loudest = log_mel.max(axis=(1, 2), keepdims=True)
    if settings.level == "peak":
        log_mel -= loudest
        loudest = np.zeros_like(loudest)
    if settings.top_db is not None:
        log_mel = np.maximum(log_mel, loudest - settings.top_db)
    return mfcc_from_log_mel(log_mel, settings)


def mfcc_from_log_mel(log_mel: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """The MFCCs ``(..., n_frames, n_mfcc)`` float32 of a log-mel picture ``(..., n_frames, n_mels)``: its
    orthonormal DCT-II, the first ``n_mfcc`` coefficients kept.

    The last step of :func:`mfcc_batch`, and the way back from an edited picture (:mod:`kws.explain` masks
    patches of it) to what every model takes.
    """
    coeffs = scipy.fft.dct(np.asarray(log_mel), type=2, norm="ortho", axis=-1)[..., : settings.n_mfcc]
    return coeffs.astype(np.float32)


def mfcc(clip: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """MFCCs of one fixed-length clip: ``(clip_samples,)`` -> ``(n_frames, n_mfcc)``."""
    return mfcc_batch(np.asarray(clip)[None, :], settings)[0]


def inverse_dct(coeffs: np.ndarray, bands: int) -> np.ndarray:
    """Undo the orthonormal DCT-II of MFCCs along the last axis: ``(..., n_mfcc)`` -> ``(..., bands)``.

    Exact when ``n_mfcc == bands``; with fewer coefficients, the smoothed spectrum they keep (the missing ones
    taken as zero). The one definition of this maths: the app's picture and ``kws.zoo.InverseDCT`` use it.
    """
    return scipy.fft.idct(np.asarray(coeffs, np.float32), n=bands, type=2, norm="ortho", axis=-1)


def log_mel_from_mfcc(coeffs: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """The log-mel picture ``(..., n_frames, n_mels)`` that MFCCs ``(..., n_frames, n_mfcc)`` keep.

    What the convolutional models look at (``kws.zoo.InverseDCT`` does the same inside them); the app draws it.
    """
    return inverse_dct(coeffs, settings.n_mels)
