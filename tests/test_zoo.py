"""zoo: every architecture builds for every preset, trains a step on tiny data; unknown names list the valid ones."""

from __future__ import annotations

import numpy as np
import pytest

from kws.config import LABELS
from kws.features import PRESETS, shapes

zoo = pytest.importorskip("kws.zoo")  # loads TensorFlow
keras = zoo.keras


@pytest.mark.parametrize("preset_name", list(PRESETS))
@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_builds_with_the_settings_shape(name: str, preset_name: str) -> None:
    input_shape = shapes(PRESETS[preset_name]).input_shape
    model = zoo.build(name, input_shape, len(LABELS))
    assert model.name == name
    assert tuple(model.input_shape) == (None, *input_shape)
    assert tuple(model.output_shape) == (None, len(LABELS))
    probs = np.asarray(model(np.zeros((2, *input_shape), np.float32), training=False))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_trains_one_step(name: str) -> None:
    input_shape = shapes(PRESETS["standard"]).input_shape
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, *input_shape)).astype(np.float32)
    y = np.arange(12) % len(LABELS)
    stats = (x.reshape(-1, input_shape[1]).mean(0), x.reshape(-1, input_shape[1]).var(0))
    keras.utils.set_random_seed(0)
    model = zoo.build(name, input_shape, len(LABELS), stats)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=6, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_normalizer_uses_the_given_statistics() -> None:
    input_shape = (11, 20)
    mean, var = np.full(20, 3.0, np.float32), np.full(20, 4.0, np.float32)
    model = zoo.build("perceptron", input_shape, len(LABELS), (mean, var))
    norm = model.get_layer("normalize")
    out = np.asarray(norm(np.full((1, *input_shape), 5.0, np.float32)))
    np.testing.assert_allclose(out, 1.0, rtol=1e-5)  # (5 - 3) / sqrt(4)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError) as info:
        zoo.build("transformer", (49, 40), 3)
    for name in zoo.ZOO:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="unknown model 'x'"):
        zoo.check_names(["cnn1", "x"])
    assert zoo.check_names(("cnn1", "best")) == ["cnn1", "best"]


def test_every_architecture_is_named_and_documented() -> None:
    assert list(zoo.ARCHITECTURES) == list(zoo.ZOO)
    assert len(zoo.ZOO) == 6
    for name, builder in zoo.ZOO.items():
        assert (builder.__doc__ or "").strip(), f"{name} has no docstring"
