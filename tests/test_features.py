"""features: the shapes follow from the settings, and the fast MFCC equals librosa's reference numerically."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
from _audio_util import reference_log_mel, tone, word_like

from kws.features import PRESETS, FeatureSettings, centre_batch, label, mfcc, mfcc_batch, preset, shapes


def reference_mfcc(y: np.ndarray, s: FeatureSettings) -> np.ndarray:
    """librosa's own pipeline with the same numbers: (frames, coeffs)."""
    log_mel = reference_log_mel(y, s).T
    return librosa.feature.mfcc(S=log_mel, n_mfcc=s.n_mfcc, dct_type=2, norm="ortho").T


@pytest.mark.parametrize(
    ("name", "clip_samples", "input_shape"),
    [("standard", 16000, (49, 40)), ("lecture", 16000, (11, 20)), ("lecture_exact", 16000, (11, 20))],
)
def test_preset_shapes(name: str, clip_samples: int, input_shape: tuple[int, int]) -> None:
    geo = shapes(preset(name))
    assert geo.clip_samples == clip_samples
    assert geo.input_shape == input_shape
    assert len(geo.frame_times(preset(name))) == input_shape[0]


@pytest.mark.parametrize("name", list(PRESETS))
def test_output_has_the_shape_the_settings_say(name: str) -> None:
    s = preset(name)
    x = word_like(1.0)
    assert mfcc(x, s).shape == shapes(s).input_shape
    assert mfcc(x, s).dtype == np.float32


def test_shapes_follow_custom_settings() -> None:
    s = FeatureSettings(name="custom", clip_seconds=0.5, hop_length=160, n_fft=400, n_mfcc=13)
    geo = shapes(s)
    assert geo.clip_samples == 8000
    assert geo.input_shape == (1 + (8000 - 400) // 160, 13)
    assert mfcc(np.zeros(8000, np.float32), s).shape == geo.input_shape


@pytest.mark.parametrize("level", ["absolute", "peak"])
@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("signal", ["word", "tone", "noise", "silence"])
def test_matches_librosa(name: str, signal: str, level: str) -> None:
    s = dataclasses.replace(preset(name), level=level)
    rng = np.random.default_rng(1)
    y = {
        "word": word_like(1.0, seed=3),
        "tone": tone(1.0, freq=700.0),
        "noise": (0.1 * rng.standard_normal(16000)).astype(np.float32),
        "silence": np.zeros(16000, np.float32),
    }[signal]
    ours = mfcc(y, s)
    ref = reference_mfcc(y, s)
    assert ours.shape == ref.shape
    # float32 against float64: agreement to a small fraction of the coefficients' range (hundreds of dB)
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=0.05)


@pytest.mark.parametrize("signal", ["word", "noise"])
def test_lecture_exact_is_the_lectures_own_call(signal: str) -> None:
    """``lecture_exact`` is ``librosa.feature.mfcc(wave[::3], sr=16000)`` with librosa's defaults, as the lecture
    called it (reflect padding, its default then), not just numbers of the same size."""
    y = word_like(1.0, seed=4) if signal == "word" else (0.1 * np.random.default_rng(2).standard_normal(16000))
    expected = librosa.feature.mfcc(y=np.asarray(y, np.float64)[::3], sr=16000, pad_mode="reflect").T
    np.testing.assert_allclose(mfcc(np.asarray(y, np.float32), preset("lecture_exact")), expected, atol=0.05)


def test_frames_of_a_decimated_centred_clip_are_timed_in_the_clip() -> None:
    """With every third sample and centred frames, frame ``i`` sits at ``i * hop * 3`` samples of the clip."""
    s = preset("lecture_exact")
    times = shapes(s).frame_times(s)
    np.testing.assert_allclose(times, np.arange(11) * 512 * 3 / 16000)
    with pytest.raises(ValueError, match="frame padding"):
        FeatureSettings(frame_pad="wrap")
    with pytest.raises(ValueError, match="decimate"):
        FeatureSettings(decimate=0)


def test_batch_equals_single() -> None:
    s = preset("standard")
    clips = np.stack([word_like(1.0, seed=i) for i in range(4)])
    batch = mfcc_batch(clips, s)
    for i in range(4):
        np.testing.assert_allclose(batch[i], mfcc(clips[i], s), rtol=1e-6, atol=1e-5)


def test_peak_level_makes_the_features_the_same_at_any_recording_level() -> None:
    """Why "peak" exists: a clip 40 dB quieter gives the same picture, where "absolute" shifts it."""
    y = word_like(1.0, seed=5)
    peak = dataclasses.replace(preset("standard"), level="peak")
    np.testing.assert_allclose(mfcc(0.01 * y, peak), mfcc(y, peak), atol=1e-3)
    absolute = dataclasses.replace(preset("standard"), level="absolute")
    assert np.abs(mfcc(0.01 * y, absolute) - mfcc(y, absolute)).max() > 100  # c0 falls by 40 dB x sqrt(40 bands)


def test_unknown_level_is_refused_and_old_metadata_means_absolute() -> None:
    with pytest.raises(ValueError, match="level reference"):
        FeatureSettings(level="rms")
    saved = {k: v for k, v in preset("lecture").to_dict().items() if k != "level"}  # written before the field
    assert FeatureSettings.from_dict(saved).level == "absolute"


def test_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="expected clips of shape"):
        mfcc(np.zeros(15000, np.float32), preset("standard"))


def test_settings_roundtrip_and_unknown_keys() -> None:
    s = preset("lecture")
    assert FeatureSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown feature settings"):
        FeatureSettings.from_dict({**s.to_dict(), "dither": 0.1})


def test_cache_key_is_stable_and_distinct() -> None:
    assert preset("standard").key() == FeatureSettings().key()
    keys = {p.key() for p in PRESETS.values()}
    assert len(keys) == len(PRESETS)
    assert dataclasses.replace(preset("standard"), n_mels=32).key() != preset("standard").key()


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError) as info:
        preset("nope")
    for name in PRESETS:
        assert name in str(info.value)


def test_window_longer_than_fft_is_refused() -> None:
    with pytest.raises(ValueError, match="win_length"):
        shapes(FeatureSettings(win_length=1024, n_fft=512))


@pytest.mark.parametrize("name", list(PRESETS))
def test_log_mel_from_mfcc_is_what_they_keep(name: str) -> None:
    """Exact librosa log-mel for standard (40 of 40); for lecture (20 of 40) the spectrum whose DCT starts with them."""
    import scipy.fft

    from kws.features import log_mel_from_mfcc

    s = PRESETS[name]
    y = np.random.default_rng(6).normal(scale=0.1, size=16000).astype(np.float32)
    coeffs = mfcc(y, s)
    picture = log_mel_from_mfcc(coeffs, s)
    assert picture.shape == (shapes(s).n_frames, s.n_mels)
    if s.n_mfcc == s.n_mels:
        np.testing.assert_allclose(picture, reference_log_mel(y, s), atol=2e-3)
    back = scipy.fft.dct(picture, norm="ortho", axis=-1)
    np.testing.assert_allclose(back[:, : s.n_mfcc], coeffs, atol=1e-3)
    np.testing.assert_allclose(back[:, s.n_mfcc :], 0.0, atol=1e-3)


def _centroid(row: np.ndarray) -> float:
    energy = row.astype(np.float64) ** 2
    return float(energy @ np.arange(len(row)) / energy.sum())


def test_centring_moves_the_word_to_the_middle_without_wrapping() -> None:
    n = shapes(preset("lecture")).clip_samples
    clips = np.zeros((3, n), np.float32)
    clips[0, 1000:4000] = word_like(3000 / 16000)[:3000]  # early
    clips[1, n - 2500 :] = 0.5  # late, up to the last sample
    centred = centre_batch(clips)
    for row, before in zip(centred[:2], clips[:2]):
        assert abs(_centroid(row) - (n - 1) / 2) <= 1
        assert np.abs(row).sum() == pytest.approx(np.abs(before).sum(), rel=1e-6)  # moved, nothing cut
    assert not centred[1, -1000:].any()  # what moved out of the end did not come back at the start
    assert not centred[2].any()  # silence stays as it is
    already = centre_batch(centred)
    np.testing.assert_array_equal(already, centred)  # centring twice changes nothing


def test_centre_setting_is_part_of_the_one_feature_path() -> None:
    plain = preset("lecture")
    centred = dataclasses.replace(plain, centre=True)
    n = shapes(plain).clip_samples
    clips = np.zeros((2, n), np.float32)
    clips[0, 2000:6000] = word_like(0.25)[:4000]
    clips[1, 9000:13000] = word_like(0.25)[:4000]  # the same word, 440 ms later
    np.testing.assert_allclose(mfcc_batch(clips, centred), mfcc_batch(centre_batch(clips), plain), atol=1e-4)
    a, b = mfcc_batch(clips, centred)
    np.testing.assert_allclose(a, b, atol=1e-3)  # once centred, early and late are the same input
    assert not np.allclose(*mfcc_batch(clips, plain), atol=1e-3)
    assert centred.key() != plain.key()  # cached features never mix the two
    saved = {k: v for k, v in plain.to_dict().items() if k != "centre"}  # metadata written before the field
    assert FeatureSettings.from_dict(saved).centre is False
    assert FeatureSettings.from_dict(centred.to_dict()) == centred
    assert (label(saved), label(centred.to_dict())) == ("lecture", "lecture, centred")  # what tables show


def test_the_filterbank_and_window_are_librosas() -> None:
    """``kws.features`` writes out the mel filterbank and window that librosa computes, for every preset."""
    import librosa

    from kws.features import _tables, mel_filterbank

    for settings in PRESETS.values():
        expected = librosa.filters.mel(
            sr=settings.sample_rate,
            n_fft=settings.n_fft,
            n_mels=settings.n_mels,
            fmin=settings.fmin,
            fmax=settings.fmax,
        )
        np.testing.assert_allclose(mel_filterbank(settings), expected, rtol=1e-5, atol=1e-8)
        window = librosa.util.pad_center(
            librosa.filters.get_window("hann", settings.win_length, fftbins=True), size=settings.n_fft
        )
        np.testing.assert_allclose(_tables(settings)[0], window, atol=1e-6)
