"""Background noise: mix the dataset's real noise into a clip at a chosen signal-to-noise ratio.

The noise is the dataset's ``_background_noise_`` folder: 408 one-second clips (running water, dishes, an
exercise bike, white and pink noise, near-silence) at many levels. Its files carry numbers, not names, so each
clip's kind is measured from its sound (:func:`kind_of`): a steady hiss, a steady low rumble, or a sound that
changes within the second (clatter). Clips quieter than :data:`MIN_NOISE_DB` are left out: scaling one up to a
speech-like level would play back its 16-bit rounding, not a room.

**The SNR** is ``10 * log10(P_signal / P_noise)``, both powers (mean squared samples) taken over the same
``span`` of the clip: the 1-second window the models hear (:func:`speech_span`, which is
:func:`kws.segment.find_window`), so that 0 dB means the models hear noise as loud as the word, however long the
silence around the word. A mix that would go past full scale is scaled down as a whole (speech and noise alike,
so the SNR stays as asked) and :attr:`Mix.scale` says by how much; nothing is clipped. numpy only: no Streamlit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from kws.features import FeatureSettings
from kws.segment import find_window

logger = logging.getLogger(__name__)

#: The folder of the dataset that holds the noise.
NOISE_FOLDER = "_background_noise_"
#: Noise clips whose power is below this (dBFS) are skipped: near-silence cannot be raised to an SNR honestly.
MIN_NOISE_DB = -60.0
#: A signal whose power over its span is below this (dBFS) holds nothing for noise to cover.
MIN_SIGNAL_DB = -90.0
#: The kinds :func:`kind_of` tells apart, in the order the app offers them.
KINDS: tuple[str, ...] = ("steady hiss", "low rumble", "clatter")
#: Any usable clip, of whatever kind.
RANDOM = "random"
#: Above this spectral centroid (Hz) a steady noise is a hiss, below it a rumble.
_HISS_HZ = 1000.0
#: A noise whose 100-ms levels span more than this (dB) within its second changes: clatter.
_CHANGING_DB = 6.0


class NoiseError(ValueError):
    """A mix that cannot be made; ``str(err)`` is one sentence for the user."""


class SilentSignalError(NoiseError):
    """The signal holds no sound over its span: an SNR of nothing is meaningless."""


class SilentNoiseError(NoiseError):
    """The noise is (nearly) silent: no gain makes it reach the SNR honestly."""


@dataclass(frozen=True)
class Mix:
    """A noisy clip and how it was made."""

    samples: np.ndarray  # float32, within [-1, 1]
    snr_db: float
    #: Applied to the whole mix after adding (1.0: none); below 1 the sum went past full scale and was scaled down.
    scale: float
    #: Where in the noise clip the loop started (samples): the noise is looped or cut to the signal's length.
    noise_offset: int

    @property
    def scaled_down(self) -> bool:
        return self.scale < 1.0


def power_db(samples: np.ndarray) -> float:
    """Mean power of ``samples`` in dBFS (-inf for silence)."""
    x = np.asarray(samples, dtype=np.float64)
    p = float(np.mean(x**2)) if x.size else 0.0
    return 10.0 * np.log10(p) if p > 0 else float("-inf")


def read_noise(path: str | Path) -> np.ndarray:
    """A noise clip as float32 mono samples (the dataset's noise is 16 kHz mono already)."""
    data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)


def noise_folder(data_dir: str | Path) -> Path:
    """Where the dataset keeps its background noise."""
    return Path(data_dir) / NOISE_FOLDER


def noise_clips(data_dir: str | Path) -> list[Path]:
    """The usable noise clips of the dataset, sorted by path: readable WAVs at :data:`MIN_NOISE_DB` or louder.

    ``[]`` where there is no dataset or no noise folder; an unreadable file is logged and skipped.
    """
    folder = noise_folder(data_dir)
    if not folder.is_dir():
        return []
    usable = []
    for path in sorted(folder.glob("*.wav")):
        try:
            samples = read_noise(path)
        except (sf.LibsndfileError, RuntimeError, ValueError) as err:
            logger.info("noise clip %s skipped: unreadable (%s)", path.name, err)
            continue
        if samples.size == 0 or not np.isfinite(samples).all() or power_db(samples) < MIN_NOISE_DB:
            logger.debug("noise clip %s skipped: empty, invalid or near-silent", path.name)
            continue
        usable.append(path)
    return usable


def kind_of(samples: np.ndarray, rate: int = 16000) -> str:
    """Which of :data:`KINDS` a noise sounds like: clatter where its 100-ms levels span more than 6 dB, else a
    hiss or a rumble by its spectral centroid (above or below 1 kHz)."""
    x = np.asarray(samples, dtype=np.float64)
    frame = rate // 10
    if x.size >= 2 * frame:
        levels = 10 * np.log10(np.mean(x[: x.size // frame * frame].reshape(-1, frame) ** 2, axis=1) + 1e-20)
        if levels.max() - levels.min() > _CHANGING_DB:
            return "clatter"
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / rate)
    centroid = float((spectrum * freqs).sum() / max(spectrum.sum(), 1e-20))
    return "steady hiss" if centroid >= _HISS_HZ else "low rumble"


def by_kind(paths: list[Path]) -> dict[str, list[Path]]:
    """The clips of each of :data:`KINDS` that has any, in that order, each list in ``paths``' order."""
    kinds = {path: kind_of(read_noise(path)) for path in paths}
    return {k: found for k in KINDS if (found := [p for p in paths if kinds[p] == k])}


def choose(clips: list[Path], rng: np.random.Generator) -> Path:
    """One of ``clips``, drawn by ``rng`` (seed it for a choice that stays put across reruns)."""
    if not clips:
        raise NoiseError("There is no usable background noise to mix in.")
    return clips[int(rng.integers(len(clips)))]


def speech_span(samples: np.ndarray, settings: FeatureSettings) -> tuple[int, int]:
    """Where the window the models hear lies in ``samples`` (start, end): the span an SNR is measured over."""
    window = find_window(samples, settings)
    rate = settings.sample_rate
    return round(window.start_s * rate), round(window.end_s * rate)


def mix_at_snr(
    signal: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    rng: np.random.Generator,
    span: tuple[int, int] | None = None,
) -> Mix:
    """``signal`` plus ``noise`` at ``snr_db``: the noise, looped (or cut) to the signal's length from a start
    ``rng`` draws, is scaled so that ``10 * log10(P_signal / P_noise) == snr_db`` over ``span`` (sample indices;
    the whole clip when None; :func:`speech_span` gives the window the models hear).

    A sum past full scale is scaled down as a whole, never clipped. Raises :class:`SilentSignalError` when the
    signal is silent over the span and :class:`SilentNoiseError` when the noise is below :data:`MIN_NOISE_DB`.
    """
    x = np.asarray(signal, dtype=np.float64)
    n = np.asarray(noise, dtype=np.float64)
    start, end = span if span is not None else (0, x.size)
    start, end = max(0, start), min(x.size, end)
    if end <= start or power_db(x[start:end]) < MIN_SIGNAL_DB:
        raise SilentSignalError("The clip holds no sound where the models listen, so there is nothing to cover.")
    if n.size == 0 or power_db(n) < MIN_NOISE_DB:
        raise SilentNoiseError(f"This noise clip is quieter than {MIN_NOISE_DB:.0f} dBFS: too quiet to mix in.")
    offset = int(rng.integers(n.size))
    fitted = np.resize(np.roll(n, -offset), x.size)  # np.resize repeats the noise as often as needed
    p_signal = np.mean(x[start:end] ** 2)
    p_noise = np.mean(fitted[start:end] ** 2)
    if p_noise <= 0:  # a noise with a silent stretch exactly where the speech is
        raise SilentNoiseError("This noise clip is silent where the models listen: too quiet to mix in.")
    gain = np.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    mixed = x + gain * fitted
    peak = float(np.abs(mixed).max())
    scale = 1.0 if peak <= 1.0 else 1.0 / peak
    if scale < 1.0:
        logger.debug("mix at %g dB peaked at %.2f: scaled down by %.1f dB", snr_db, peak, -20 * np.log10(scale))
    samples = np.clip(mixed * scale, -1.0, 1.0).astype(np.float32)  # the clip only catches rounding
    return Mix(samples=samples, snr_db=float(snr_db), scale=scale, noise_offset=offset)
