"""experiments/probes.py: the networks probed for best's place build, train a step and save; by default best is the zoo's."""

from __future__ import annotations

import numpy as np
import pytest
from _audio_util import bench_script

from kws.config import LABELS
from kws.features import PRESETS, shapes

zoo = pytest.importorskip("kws.zoo")  # loads TensorFlow
keras = zoo.keras
probes = bench_script("probes", "experiments")


def _weights(model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def test_best_with_the_zoos_options_is_the_zoos_network() -> None:
    """The probes' best with no option is ``kws.zoo.best`` itself: same layers, same weights from the same seed."""
    shape = shapes(PRESETS["standard"]).input_shape
    keras.utils.set_random_seed(7)
    shipped = zoo.build("best", shape, len(LABELS))
    keras.utils.set_random_seed(7)
    probe = probes.best_builder()(shape, len(LABELS))
    assert [type(layer) for layer in probe.layers] == [type(layer) for layer in shipped.layers]
    assert all(np.array_equal(a, b) for a, b in zip(_weights(probe), _weights(shipped)))
    assert probes.best_builder(head="pool").keywords == {"head": "pool", "sub_bands": 0}


def test_best_frequency_head_keeps_the_frequency_rows() -> None:
    input_shape = shapes(PRESETS["standard"]).input_shape
    pooled = probes.best(input_shape, len(LABELS), head="pool")
    rows = zoo.build("best", input_shape, len(LABELS))  # the default since rule head_2026_11_24
    assert probes.BEST_HEAD == "freq"
    _, rows_out, channels = pooled.get_layer(index=-3).input.shape[1:]  # the last residual block's map
    summary = rows.get_layer("probabilities").input.shape[-1]
    assert summary == rows_out * channels and pooled.get_layer("probabilities").input.shape[-1] == channels
    assert rows.count_params() - pooled.count_params() == (rows_out - 1) * channels * len(LABELS)
    probs = np.asarray(rows(np.zeros((2, *input_shape), np.float32), training=False))
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="freq, pool"):
        probes.best(input_shape, len(LABELS), head="attention")


def test_tc_resnet8_the_probe_convolves_over_time_only_and_trains() -> None:
    """experiments/cv.py --body tc: a few tens of thousands of weights, four times shorter in time, one step of learning."""
    shape = shapes(PRESETS["standard"]).input_shape
    rng = np.random.default_rng(6)
    x = rng.normal(size=(8, *shape)).astype(np.float32)
    model = probes.tc_resnet8(shape, len(LABELS), (x.reshape(-1, shape[1]).mean(0), x.reshape(-1, shape[1]).var(0)))
    assert "tc_resnet8" not in zoo.ZOO and model.name == "best"  # a candidate for best's place, not a seventh model
    assert 50_000 < model.count_params() < 80_000
    convs = [layer for layer in model.layers if "Conv" in type(layer).__name__]
    assert convs and all(type(layer).__name__ == "Conv1D" for layer in convs)
    assert model.get_layer(index=-4).output.shape[1] == -(-shape[0] // 8)  # three stride-2 blocks
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    assert np.isfinite(model.fit(x, np.arange(8) % len(LABELS), batch_size=4, epochs=1, verbose=0).history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_subspectral_norm_normalises_each_band_on_its_own_and_saves(tmp_path) -> None:
    """experiments/cv.py --body ssn: each fifth of the frequency rows gets its own mean and spread per channel."""
    rng = np.random.default_rng(3)
    band_means = np.array([0.0, 5.0, -3.0, 10.0, 1.0])
    x = rng.normal(size=(16, 6, 10, 2)) * np.repeat(np.arange(1, 6), 2)[None, None, :, None]
    x = (x + np.repeat(band_means, 2)[None, None, :, None]).astype(np.float32)  # (batch, frames, rows, channels)
    layer = probes.SubSpectralNorm(5)
    y = np.asarray(layer(x, training=True))
    bands = y.reshape(16, 6, 5, 2, 2)  # (batch, frames, band, row in band, channel)
    np.testing.assert_allclose(bands.mean(axis=(0, 1, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(bands.std(axis=(0, 1, 3)), 1.0, atol=1e-2)
    one_norm = np.asarray(keras.layers.BatchNormalization()(x, training=True))
    assert np.abs(one_norm.reshape(16, 6, 5, 2, 2).mean(axis=(0, 1, 3))).max() > 0.5  # plain batch norm does not
    with pytest.raises(ValueError, match="sub-bands"):
        probes.SubSpectralNorm(3)(x)

    shape = shapes(PRESETS["standard"]).input_shape
    model = probes.best(shape, len(LABELS), sub_bands=5)
    plain = zoo.best(shape, len(LABELS))
    assert any(isinstance(layer, probes.SubSpectralNorm) for layer in model.layers)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert model.count_params() > plain.count_params()  # per-band scales and statistics
    clips = rng.normal(size=(4, *shape)).astype(np.float32)
    model.save(tmp_path / "ssn.keras")
    loaded = keras.saving.load_model(tmp_path / "ssn.keras")
    np.testing.assert_allclose(np.asarray(loaded(clips)), np.asarray(model(clips)), atol=1e-6)
