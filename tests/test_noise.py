"""Mixing background noise at a chosen SNR (kws/noise.py): the asked ratio, repeatable, never clipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws import noise
from kws.features import PRESETS

RATE = 16000


def word_like(seconds: float = 1.0, level: float = 0.3) -> np.ndarray:
    """A pitched burst in the middle of silence: speech enough for the span and the SNR."""
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.exp(-(((t - seconds / 2) / 0.15) ** 2))
    return (level * envelope * np.sin(2 * np.pi * 180 * t)).astype(np.float32)


def measured_snr(signal: np.ndarray, mix: noise.Mix, span: tuple[int, int] | None = None) -> float:
    a, b = span or (0, signal.size)
    speech = mix.scale * signal.astype(np.float64)
    added = mix.samples.astype(np.float64) - speech
    return 10 * np.log10(np.mean(speech[a:b] ** 2) / np.mean(added[a:b] ** 2))


@pytest.mark.parametrize("snr", [30, 20, 10, 5, 0, -5])
def test_the_mix_has_the_asked_snr(snr: int) -> None:
    signal = word_like()
    hiss = np.random.default_rng(1).standard_normal(RATE).astype(np.float32) * 0.05
    mix = noise.mix_at_snr(signal, hiss, snr, np.random.default_rng(0))
    assert measured_snr(signal, mix) == pytest.approx(snr, abs=0.1)


def test_the_snr_is_measured_over_the_given_span_of_a_long_clip() -> None:
    """Over the second the models hear, not diluted by the silence around the word."""
    signal = np.concatenate([np.zeros(2 * RATE, np.float32), word_like(), np.zeros(RATE, np.float32)])
    span = noise.speech_span(signal, next(iter(PRESETS.values())))
    assert span[1] - span[0] == RATE and span[0] <= 2.5 * RATE <= span[1]
    hiss = np.random.default_rng(2).standard_normal(RATE // 2).astype(np.float32) * 0.05  # shorter: looped
    mix = noise.mix_at_snr(signal, hiss, 10, np.random.default_rng(0), span=span)
    assert mix.samples.size == signal.size
    assert measured_snr(signal, mix, span) == pytest.approx(10, abs=0.1)
    assert measured_snr(signal, mix) < 5  # over the whole clip the speech is rarer than the noise


def test_the_mix_is_repeatable_for_a_seed() -> None:
    signal, hiss = word_like(), np.random.default_rng(3).standard_normal(RATE).astype(np.float32) * 0.1
    first = noise.mix_at_snr(signal, hiss, 5, np.random.default_rng(7))
    again = noise.mix_at_snr(signal, hiss, 5, np.random.default_rng(7))
    other = noise.mix_at_snr(signal, hiss, 5, np.random.default_rng(8))
    assert np.array_equal(first.samples, again.samples) and first.noise_offset == again.noise_offset
    assert not np.array_equal(first.samples, other.samples)


def test_a_loud_mix_is_scaled_down_never_clipped() -> None:
    signal = word_like(level=0.95)
    hiss = np.random.default_rng(4).standard_normal(RATE).astype(np.float32) * 0.2
    mix = noise.mix_at_snr(signal, hiss, -5, np.random.default_rng(0))
    assert mix.scaled_down and mix.scale < 1
    assert np.abs(mix.samples).max() <= 1.0
    assert measured_snr(signal, mix) == pytest.approx(-5, abs=0.1)  # both turned down alike: the SNR stays
    quiet = noise.mix_at_snr(word_like(level=0.1), hiss, 30, np.random.default_rng(0))
    assert not quiet.scaled_down and quiet.scale == 1.0


def test_silent_noise_and_silent_signal_are_refused() -> None:
    with pytest.raises(noise.SilentNoiseError):
        noise.mix_at_snr(word_like(), np.zeros(RATE, np.float32), 10, np.random.default_rng(0))
    with pytest.raises(noise.SilentNoiseError):  # a whisper of noise: raising it would play its rounding
        noise.mix_at_snr(word_like(), np.full(RATE, 1e-4, np.float32), 10, np.random.default_rng(0))
    hiss = np.random.default_rng(5).standard_normal(RATE).astype(np.float32) * 0.1
    with pytest.raises(noise.SilentSignalError, match="nothing to cover"):
        noise.mix_at_snr(np.zeros(RATE, np.float32), hiss, 10, np.random.default_rng(0))


def write(path: Path, samples: np.ndarray) -> Path:
    sf.write(path, samples, RATE, subtype="PCM_16")
    return path


def test_noise_clips_skips_silent_and_unreadable_files(tmp_path: Path) -> None:
    folder = tmp_path / noise.NOISE_FOLDER
    folder.mkdir()
    rng = np.random.default_rng(6)
    good = [write(folder / f"{n}.wav", rng.standard_normal(RATE) * 0.05) for n in (2, 10)]
    write(folder / "3.wav", np.zeros(RATE))
    write(folder / "4.wav", rng.standard_normal(RATE) * 1e-4)  # about -80 dBFS: near-silence
    (folder / "5.wav").write_text("not audio")
    (folder / "notes.txt").write_text("not a wav")
    assert noise.noise_clips(tmp_path) == sorted(good)


def test_a_missing_folder_gives_no_clips(tmp_path: Path) -> None:
    assert noise.noise_clips(tmp_path / "nowhere") == []
    assert noise.noise_clips(tmp_path) == []  # a dataset without its noise folder


def test_kinds_and_a_seeded_choice(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    t = np.arange(RATE) / RATE
    hiss = rng.standard_normal(RATE) * 0.05
    rumble = 0.1 * np.sin(2 * np.pi * 90 * t) + 0.001 * rng.standard_normal(RATE)
    clatter = hiss * (t > 0.5)
    assert [noise.kind_of(x) for x in (hiss, rumble, clatter)] == ["steady hiss", "low rumble", "clatter"]
    paths = [write(tmp_path / f"{name}.wav", x) for name, x in (("a", hiss), ("b", rumble), ("c", clatter))]
    assert noise.by_kind(paths) == dict(zip(noise.KINDS, [[p] for p in paths]))
    assert noise.choose(paths, np.random.default_rng(1)) == noise.choose(paths, np.random.default_rng(1))
    with pytest.raises(noise.NoiseError):
        noise.choose([], np.random.default_rng(1))


def test_the_dataset_noise_is_found_and_sorted(data_dir: Path) -> None:
    if not noise.noise_folder(data_dir).is_dir():
        pytest.skip("this dataset has no background noise folder")
    clips = noise.noise_clips(data_dir)
    assert clips == sorted(clips) and 0 < len(clips) <= len(list(noise.noise_folder(data_dir).glob("*.wav")))
    assert all(noise.power_db(noise.read_noise(p)) >= noise.MIN_NOISE_DB for p in clips[:20])
