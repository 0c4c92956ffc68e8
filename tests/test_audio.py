"""audio.load_audio: every bad input gets its typed, one-sentence error; every good format arrives as 16 kHz mono."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from _audio_util import RATE, encode, tone

from kws import audio
from kws.audio import (
    AudioError,
    CorruptAudioError,
    EmptyAudioError,
    NotAudioError,
    TooLargeAudioError,
    TooShortAudioError,
    clip_from_array,
    load_audio,
)


def dominant_freq(x: np.ndarray, rate: int = RATE) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spec.argmax()])


# --- bad input --------------------------------------------------------------------------------------------------


def test_empty_bytes() -> None:
    with pytest.raises(EmptyAudioError):
        load_audio(b"")


def test_missing_path(tmp_path) -> None:
    with pytest.raises(AudioError, match="no file"):
        load_audio(tmp_path / "nope.wav")


def test_folder_is_not_audio(tmp_path) -> None:
    with pytest.raises(NotAudioError, match="is a folder, not an audio file"):
        load_audio(tmp_path)


def test_pipe_is_refused_without_reading(tmp_path) -> None:
    """A named pipe would block the reader forever (nobody writes to it): refused, not opened."""
    fifo = tmp_path / "clip.wav"
    os.mkfifo(fifo)
    with pytest.raises(NotAudioError, match="not a regular file"):
        load_audio(fifo)


@pytest.mark.parametrize(
    "data",
    [b"hello, this is not audio " * 40, np.random.default_rng(0).bytes(4096), b"RIFF" + b"\xff" * 100],
    ids=["text", "random", "riff-garbage"],
)
def test_not_audio(data: bytes) -> None:
    with pytest.raises(NotAudioError):
        load_audio(data)


def test_truncated_header() -> None:
    wav = encode(tone(1.0))
    with pytest.raises(CorruptAudioError):
        load_audio(wav[:20])


@pytest.mark.parametrize("keep", [44, 54, 44 + 16000], ids=["header-only", "ten-bytes", "half"])
def test_truncated_data_lying_header(keep: int) -> None:
    """The header says one second; the bytes hold less (a cut-off upload)."""
    wav = encode(tone(1.0), subtype="PCM_16")
    with pytest.raises(CorruptAudioError, match="truncated"):
        load_audio(wav[:keep])


def test_truncated_file_on_disk(tmp_path) -> None:
    path = tmp_path / "cut.wav"
    path.write_bytes(encode(tone(1.0))[: 44 + 5000])
    with pytest.raises(CorruptAudioError):
        load_audio(path)


def test_zero_samples() -> None:
    with pytest.raises(EmptyAudioError):
        load_audio(encode(np.zeros(0, np.float32)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_wav(bad: float) -> None:
    x = tone(0.5)
    x[100] = bad
    with pytest.raises(CorruptAudioError, match="NaN or infinity"):
        load_audio(encode(x, subtype="FLOAT"))


def test_over_long_file_is_cut_with_notice() -> None:
    clip = load_audio(encode(tone(3.0, rate=8000), rate=8000), max_seconds=2.0)
    assert clip.duration == pytest.approx(2.0, abs=0.01)
    assert len(clip.notices) == 1 and "only the first 2 s" in clip.notices[0]


def test_default_limit_is_max_seconds() -> None:
    clip = load_audio(encode(np.zeros(int((audio.MAX_SECONDS + 2) * 8000), np.int16), rate=8000, subtype="PCM_16"))
    assert clip.duration == pytest.approx(audio.MAX_SECONDS, abs=0.01)
    assert clip.notices


def test_huge_bytes_refused_before_decoding(monkeypatch) -> None:
    monkeypatch.setattr(audio, "MAX_BYTES", 10_000)
    with pytest.raises(TooLargeAudioError, match="limit"):
        load_audio(encode(tone(1.0)))  # 32 kB of valid WAV


def test_errors_are_one_sentence() -> None:
    for data in (b"", b"not audio at all" * 10, encode(tone(1.0))[:100]):
        with pytest.raises(AudioError) as info:
            load_audio(data)
        message = str(info.value)
        assert "\n" not in message and message.endswith(".")


# --- good input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subtype", "tol"),
    [("PCM_U8", 2e-2), ("PCM_16", 1e-3), ("PCM_24", 1e-3), ("PCM_32", 1e-3), ("FLOAT", 1e-3), ("DOUBLE", 1e-3)],
)
def test_wav_bit_depths(subtype: str, tol: float) -> None:
    x = tone(0.5)
    clip = load_audio(encode(x, subtype=subtype))
    assert clip.sample_rate == RATE and clip.samples.dtype == np.float32
    np.testing.assert_allclose(clip.samples, x, atol=tol)


def test_multichannel_resampled_to_16k_mono() -> None:
    rate = 44100
    left, right = tone(1.0, rate, freq=440.0), tone(1.0, rate, freq=440.0)
    stereo = np.stack([left, right, np.zeros_like(left), np.zeros_like(left)], axis=1)  # 4 channels
    clip = load_audio(encode(stereo, rate=rate, subtype="PCM_16"))
    assert clip.samples.ndim == 1
    assert clip.source_channels == 4 and clip.source_rate == rate
    assert len(clip.samples) == pytest.approx(RATE, abs=2)
    assert dominant_freq(clip.samples) == pytest.approx(440.0, abs=2.0)
    assert np.abs(clip.samples).max() == pytest.approx(0.15, abs=0.01)  # mean of the four channels


@pytest.mark.parametrize(("fmt", "subtype"), [("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_flac_and_ogg(fmt: str, subtype: str) -> None:
    rate = 22050
    clip = load_audio(encode(tone(1.0, rate, freq=1000.0), rate=rate, fmt=fmt, subtype=subtype))
    assert clip.source_rate == rate
    assert len(clip.samples) == pytest.approx(RATE, abs=50)
    assert dominant_freq(clip.samples) == pytest.approx(1000.0, abs=3.0)


def _mp3_bytes(tmp_path) -> bytes:
    """An MP3 made by a real encoder: libsndfile's (LAME, in the soundfile wheel), else ffmpeg or sox.

    (sox alone, as CI installs it, has no MP3 writer without libsox-fmt-mp3, so this test used to skip there.)
    """
    src, dst = tmp_path / "in.wav", tmp_path / "out.mp3"
    signal = tone(1.0, 44100, freq=1000.0)
    if "MP3" in sf.available_formats():
        sf.write(dst, signal, 44100, format="MP3")
        return dst.read_bytes()
    sf.write(src, signal, 44100, subtype="PCM_16")
    if shutil.which("ffmpeg"):
        cmd = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-b:a", "128k", str(dst)]
    elif shutil.which("sox"):
        cmd = ["sox", str(src), str(dst)]
    else:
        pytest.skip("no MP3 encoder: neither libsndfile's nor ffmpeg nor sox")
    if subprocess.run(cmd, capture_output=True).returncode != 0 or not dst.is_file():
        pytest.skip("the installed encoder cannot write MP3")
    return dst.read_bytes()


def test_mp3(tmp_path) -> None:
    clip = load_audio(_mp3_bytes(tmp_path))
    assert clip.source_rate == 44100
    assert 0.95 < clip.duration < 1.15  # encoders add a little padding
    assert dominant_freq(clip.samples) == pytest.approx(1000.0, abs=3.0)


def test_path_bytes_and_file_object_agree(tmp_path) -> None:
    data = encode(tone(0.3))
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    a = load_audio(path).samples
    b = load_audio(data).samples
    c = load_audio(io.BytesIO(data)).samples
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_loud_float_file_is_scaled_not_clipped() -> None:
    clip = load_audio(encode(tone(0.2, amp=3.0), subtype="FLOAT"))
    assert np.abs(clip.samples).max() == pytest.approx(1.0, abs=1e-6)


# --- samples already in memory ----------------------------------------------------------------------------------


def test_clip_from_array_int16_stereo_48k() -> None:
    """WebRTC's frames: 48 kHz s16 stereo."""
    x = (tone(0.5, 48000) * 32767).astype(np.int16)
    clip = clip_from_array(np.stack([x, x], axis=1), 48000)
    assert clip.source_channels == 2
    assert len(clip.samples) == pytest.approx(8000, abs=2)
    assert np.abs(clip.samples).max() == pytest.approx(0.3, abs=0.01)


def test_too_short_for_a_word() -> None:
    """A loud click is not silence, and a model would name it: refused, in the file's own time."""
    with pytest.raises(TooShortAudioError, match="lasts only 50 ms; a spoken word needs at least 0.1 s"):
        load_audio(encode(tone(0.05, rate=48000), rate=48000))
    with pytest.raises(TooShortAudioError, match="only 99 ms"):
        clip_from_array(tone(0.099, rate=8000), 8000)
    assert load_audio(encode(tone(audio.MIN_SECONDS))).duration == pytest.approx(audio.MIN_SECONDS)


def test_clip_from_array_bad_input() -> None:
    with pytest.raises(EmptyAudioError):
        clip_from_array(np.zeros(0, np.float32), RATE)
    with pytest.raises(CorruptAudioError):
        clip_from_array(np.array([0.0, np.nan], np.float32), RATE)


def test_clip_from_array_cuts_long_recordings() -> None:
    clip = clip_from_array(np.zeros(5 * RATE, np.float32), RATE, max_seconds=2.0)
    assert clip.duration == pytest.approx(2.0)
    assert clip.notices


def test_resampling_is_librosas_soxr_hq() -> None:
    import librosa

    from kws.audio import resample

    x = np.random.default_rng(0).standard_normal(48_013).astype(np.float32) * 0.1
    for rate in (8000, 22050, 44100, 48000):
        expected = librosa.resample(x, orig_sr=rate, target_sr=16000, res_type="soxr_hq")
        got = resample(x, rate)
        assert got.shape == expected.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-6)
