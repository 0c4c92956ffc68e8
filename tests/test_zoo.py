"""zoo: every architecture builds for every preset, trains a step on tiny data; unknown names list the valid ones."""

from __future__ import annotations

import numpy as np
import pytest
from _audio_util import reference_log_mel

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
        sketch = zoo.describe(name)  # what the metadata keeps: a whole sketch, never cut mid-arrow
        assert sketch.endswith(".") and not sketch.rstrip(".").endswith("->")
        assert "\n" not in sketch and "  " not in sketch
    assert zoo.describe("best").endswith("the frequency rows flattened -> dropout -> softmax.")


def test_inverse_dct_gives_back_librosas_log_mel() -> None:
    """With as many coefficients as bands (standard) the CNNs see exactly the log-mel picture."""
    from kws.features import mfcc

    y = np.random.default_rng(3).normal(scale=0.1, size=16000).astype(np.float32)
    coeffs = mfcc(y, PRESETS["standard"])
    picture = np.asarray(zoo.InverseDCT(PRESETS["standard"].n_mels)(coeffs[None]))[0]
    np.testing.assert_allclose(picture, reference_log_mel(y, PRESETS["standard"]), atol=2e-3)


def test_inverse_dct_of_fewer_coefficients_keeps_exactly_them() -> None:
    """lecture: 20 coefficients of 40 bands -> the smoothed 40-band spectrum whose DCT starts with those 20."""
    import scipy.fft

    coeffs = np.random.default_rng(4).normal(size=(2, 11, 20)).astype(np.float32)
    picture = np.asarray(zoo.InverseDCT(40)(coeffs))
    assert picture.shape == (2, 11, 40)
    back = scipy.fft.dct(picture, norm="ortho", axis=-1)
    np.testing.assert_allclose(back[..., :20], coeffs, atol=1e-4)
    np.testing.assert_allclose(back[..., 20:], 0.0, atol=1e-4)
    with pytest.raises(ValueError, match="cannot come from"):
        zoo.InverseDCT(10)(coeffs)


@pytest.mark.parametrize("name", ["cnn1", "best"])
def test_cnns_standardise_with_one_scale_and_see_the_mel_bands(name: str, tmp_path) -> None:
    """One common spread (per-coefficient scaling would re-weight the picture), lecture's 40 bands, and a
    save/load round trip that keeps the layer."""
    shape = shapes(PRESETS["lecture"]).input_shape
    mean, var = np.zeros(shape[1], np.float32), np.linspace(1.0, 9.0, shape[1]).astype(np.float32)
    model = zoo.build(name, shape, len(LABELS), (mean, var), bands=PRESETS["lecture"].n_mels)
    np.testing.assert_allclose(np.asarray(model.get_layer("normalize").variance).ravel(), 5.0, rtol=1e-5)
    assert tuple(model.get_layer("as_image").output.shape) == (None, shape[0], 40, 1)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(5).normal(size=(3, *shape)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5)


def test_the_layer_and_the_apps_picture_agree() -> None:
    """``kws.zoo.InverseDCT`` inside the models and ``features.log_mel_from_mfcc`` in the app are the same maths."""
    from kws.features import log_mel_from_mfcc

    s = PRESETS["lecture"]
    coeffs = np.random.default_rng(7).normal(size=(11, 20)).astype(np.float32)
    inside = np.asarray(zoo.InverseDCT(s.n_mels)(coeffs[None]))[0]
    np.testing.assert_allclose(inside, log_mel_from_mfcc(coeffs, s), atol=1e-4)
