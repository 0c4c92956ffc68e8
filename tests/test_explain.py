"""Occlusion maps (kws.explain): a model that listens to one band is caught listening there, on any settings, and
the shipped models' maps and first convolutions come out of their TFLite files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from _audio_util import RATE, have_shipped_models, word_like

from kws import explain
from kws.features import PRESETS, FeatureSettings, log_mel_from_mfcc, mfcc_from_log_mel, shapes

LABELS = ("bed", "happy", "cat")
BAND = slice(20, 25)  # the one band the fake model listens to: one patch row of PATCH_BANDS = 5


@dataclass
class OneBandModel:
    """A model that names "happy" by how loud mel bands 20-24 are, and hears nothing else."""

    settings: FeatureSettings
    labels: tuple[str, ...] = LABELS
    calls: int = 0

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        loudness = log_mel_from_mfcc(x, self.settings)[:, :, BAND].mean(axis=(1, 2))
        happy = 1 / (1 + np.exp(-(loudness + 40) / 10))  # -20 dB: 0.88; silence (-80 dB): 0.02
        rest = (1 - happy) / 2
        return np.stack([rest, happy, rest], axis=1).astype(np.float32)


def picture_features(settings: FeatureSettings, seed: int = 0) -> np.ndarray:
    """MFCCs of a busy log-mel picture (-30 to -10 dB everywhere, one -80 dB cell of silence)."""
    geo = shapes(settings)
    picture = np.random.default_rng(seed).uniform(-30, -10, (geo.n_frames, settings.n_mels))
    picture[0, 0] = -80.0
    return mfcc_from_log_mel(picture, settings)


def test_a_model_that_hears_one_band_is_caught_listening_there() -> None:
    settings = PRESETS["standard"]
    model = OneBandModel(settings)
    drop = explain.occlusion(model, picture_features(settings), LABELS.index("happy"))
    assert model.calls == 1  # the clip and every masked copy in one batch
    by_band = drop.sum(axis=0)
    assert int(np.argmax(by_band)) in range(BAND.start, BAND.stop)
    assert np.all(drop[:, BAND] > 0)  # every stretch of that band counts
    outside = np.delete(drop, np.r_[BAND], axis=1)
    assert np.abs(outside).max() < 1e-4 < drop[:, BAND].min()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_map_has_the_pictures_shape_under_any_settings(preset: str) -> None:
    settings = PRESETS[preset]
    drop = explain.occlusion(OneBandModel(settings), picture_features(settings), 1)
    assert drop.shape == (shapes(settings).n_frames, settings.n_mels)
    assert drop.dtype == np.float32
    assert explain.patch_frames(settings) >= 1


def test_each_copy_is_the_clip_with_one_patch_silenced() -> None:
    settings = PRESETS["standard"]  # 40 of 40 coefficients: the DCT round trip is exact
    feats = picture_features(settings)
    x, tiles = explain.masked_inputs(feats, settings, frames=5, bands=5)
    assert len(tiles) == 10 * 8 and x.shape == (1 + len(tiles), *feats.shape)
    np.testing.assert_array_equal(x[0], feats)
    picture = log_mel_from_mfcc(feats, settings)
    (t, b) = tiles[13]
    masked = log_mel_from_mfcc(x[14], settings)
    np.testing.assert_allclose(masked[t, b], -80.0, atol=1e-3)  # the clip's own quiet level
    masked[t, b] = picture[t, b]
    np.testing.assert_allclose(masked, picture, atol=1e-3)  # and nothing else moved
    covered = np.zeros(picture.shape, int)
    for t, b in tiles:
        covered[t, b] += 1
    assert np.all(covered == 1)  # stride = patch: the tiles cover the picture once


def test_one_colour_scale_for_all_maps() -> None:
    maps = {"a": np.array([[0.2, -0.1]]), "b": np.array([[0.5, 0.0]])}
    assert explain.shared_range(maps) == (-0.5, 0.5)
    assert explain.shared_range({"a": np.zeros((2, 2))}) == (-0.05, 0.05)  # no blowing noise up


@pytest.mark.skipif(not have_shipped_models(), reason="no shipped models")
def test_the_shipped_models_maps_for_a_word_like_clip(predictor) -> None:
    prediction = predictor.predict(word_like(0.5), RATE)
    maps = explain.occlusion_maps(predictor, prediction)
    assert list(maps) == predictor.names
    for model in predictor.models:
        drop = maps[model.name]
        assert drop.shape == (shapes(model.settings).n_frames, model.settings.n_mels)
        assert np.isfinite(drop).all() and np.abs(drop).max() <= 1.0
    assert any(m.max() > 0.01 for m in maps.values())  # silencing the sound matters to someone


@pytest.mark.skipif(not have_shipped_models(), reason="no shipped models")
def test_the_cnns_first_convolutions_come_from_their_tflite_files(predictor) -> None:
    runners = explain.convolution_runners(predictor.models)
    assert "cnn1" in runners and "lstm" not in runners and "perceptron" not in runners
    prediction = predictor.predict(word_like(0.5), RATE)
    model = next(m for m in predictor.models if m.name == "cnn1")
    maps = runners["cnn1"].first_convolution(explain.heard(predictor, prediction, model.settings)[None])
    geo = shapes(model.settings)
    assert maps.shape[:2] == (geo.n_frames, model.settings.n_mels) and maps.shape[2] > 1
    assert maps.min() >= 0  # the ReLU fused into the convolution
    channels = explain.strongest_channels(maps, count=4)
    assert len(channels) == 4 and maps[:, :, channels[0]].mean() >= maps[:, :, channels[-1]].mean()
