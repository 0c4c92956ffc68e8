"""train: augmentation does what a microphone would, the schedule decays, saved files carry no optimizer."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from kws.config import LABELS

pytestmark = pytest.mark.slow  # training, conversion or fresh interpreters: not in the fast lane

train = pytest.importorskip("kws.train")  # loads TensorFlow


def _tone(freq: float, n: int = 16000, rate: int = 16000) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def _peak_hz(x: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def test_speed_perturbation_moves_pitch_by_the_rate() -> None:
    out = train.speed_perturb(np.stack([_tone(440), _tone(440)]), np.array([1.0, 1.1]))
    np.testing.assert_allclose(out[0], _tone(440), atol=1e-6)  # rate 1 is the identity
    assert _peak_hz(out[1]) == pytest.approx(484, abs=2)
    # played faster about the centre: the ends run out of signal and become silence
    slow_word = np.zeros((1, 16000), np.float32)
    slow_word[0, 4000:12000] = _tone(300, 8000)
    fast = train.speed_perturb(slow_word, np.array([1.5]))
    assert np.all(fast[0, :1300] == 0) and np.abs(fast[0, 6000:10000]).max() > 0.4


def test_augment_shifts_scales_and_adds_noise_within_range() -> None:
    rng = np.random.default_rng(0)
    windows = np.zeros((20, 16000), np.float32)
    windows[:, 2000:6000] = _tone(500, 4000)  # energy centred on sample 4000
    out = train.augment(windows, rng, copies=3, speed=0.1)
    assert out.shape == (60, 16000) and out.dtype == np.float32
    assert np.all(np.abs(out) <= 1.0)
    assert not np.allclose(out[:20], out[20:40])  # every copy is drawn anew
    # the word moved by at most the largest shift (2400), the speed change about the centre (~400) and the
    # pull of noise spread over the window (SNR >= 5 dB: under a quarter of the energy, ~1000 samples)
    energy = out.astype(np.float64) ** 2
    centroid = (energy * np.arange(16000)).sum(axis=1) / energy.sum(axis=1)
    assert np.all(np.abs(centroid - 4000) < 2400 + 400 + 1000)
    assert centroid.std() > 500  # and it did move
    # most copies carry noise where the word is not
    assert np.mean(np.abs(out[:, 12000:]).max(axis=1) > 0) > 0.5
    gains = np.sqrt(energy.sum(axis=1) / (windows[0].astype(np.float64) ** 2).sum())
    assert gains.min() < 0.5 and gains.max() > 1.2  # -12..+6 dB


def test_spec_masks_fill_bands_with_the_mean() -> None:
    rng = np.random.default_rng(1)
    x = np.ones((200, 49, 40), np.float32)
    fill = np.full(40, 7.0, np.float32)
    out = train.spec_masks(x, rng, count=2, fill=fill)
    assert out.shape == x.shape and np.all(x == 1.0)  # input untouched
    masked = out == 7.0
    assert 0.02 < masked.mean() < 0.4
    # a masked time band covers every coefficient of its frames (unless a frequency band is also there)
    frame_full = masked.all(axis=2).any(axis=1)
    coeff_full = masked.all(axis=1).any(axis=1)
    assert frame_full.mean() > 0.5 and coeff_full.mean() > 0.5
    assert np.array_equal(train.spec_masks(x, rng, count=0, fill=fill), x)


def test_cosine_schedule_warms_up_then_decays() -> None:
    cfg = train.TrainConfig(models=("perceptron",), epochs=20, learning_rate=3e-3, schedule="cosine")
    rates = [train.cosine_lr(e, cfg=cfg) for e in range(cfg.epochs)]
    assert rates[0] == pytest.approx(1e-3)
    assert rates[1] == pytest.approx(3e-3)
    assert all(a >= b for a, b in zip(rates[1:], rates[2:]))
    assert rates[-1] == pytest.approx(0.02 * 3e-3)


def test_bad_recipe_values_are_refused() -> None:
    with pytest.raises(ValueError, match="schedule"):
        train.TrainConfig(schedule="step")
    with pytest.raises(ValueError, match="speed"):
        train.TrainConfig(speed=0.7)
    with pytest.raises(ValueError, match="patience"):
        train.TrainConfig(patience=-1)
    with pytest.raises(ValueError, match="fit_on"):
        train.TrainConfig(fit_on="all")
    with pytest.raises(ValueError, match="stop_at"):
        train.TrainConfig(epochs=30, stop_at=31)
    with pytest.raises(ValueError, match="plateau"):
        train.TrainConfig(fit_on="train+validation", schedule="plateau")


def test_early_stopping_needs_held_out_clips_and_a_patience() -> None:
    def stops_early(cfg: train.TrainConfig) -> bool:
        callbacks = train.fit_callbacks(cfg, train.keras.callbacks.Callback())
        return any(isinstance(c, train.keras.callbacks.EarlyStopping) for c in callbacks)

    assert stops_early(train.TrainConfig())
    assert not stops_early(train.TrainConfig(patience=0))
    refit = train.TrainConfig(fit_on="train+validation")
    assert refit.fit_splits == ("train", "validation") and not refit.holds_out_validation
    assert refit.patience == 0 and not stops_early(refit)  # recorded as it runs: nothing held out to stop on


def test_saved_model_has_no_optimizer_state_and_predicts_the_same(tmp_path: Path) -> None:
    keras = train.keras
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 49, 40)).astype(np.float32)
    y = np.arange(16) % len(LABELS)
    model = train.zoo.build("best", (49, 40), len(LABELS), (x.mean((0, 1)), x.var((0, 1))))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "best.keras"
    train.save_for_inference(model, path)
    with zipfile.ZipFile(path) as archive:
        import h5py

        with archive.open("model.weights.h5") as raw, h5py.File(raw, "r") as weights:
            assert "optimizer" not in weights
    weights_bytes = sum(w.nbytes for w in model.get_weights())
    assert path.stat().st_size < 2 * weights_bytes  # was ~3.5x with the optimizer's moments
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


def test_augmented_epochs_are_made_once_and_shared_by_every_model() -> None:
    settings = train.features.preset("lecture")
    rng = np.random.default_rng(2)
    windows = (0.1 * rng.standard_normal((6, 16000))).astype(np.float32)
    feats = train.dataset.featurize(list(windows), settings)
    y = np.arange(6) % len(LABELS)
    data = train._Data(
        x={"train": feats, "validation": feats[:3], "test": feats[:3]},
        y={"train": y, "validation": y[:3], "test": y[:3]},
        stats=(feats.reshape(-1, feats.shape[-1]).mean(0), feats.reshape(-1, feats.shape[-1]).var(0)),
        fingerprint="test",
        skipped=[],
        train_windows=windows,
    )
    cfg = train.TrainConfig(models=("perceptron", "cnn1"), preset="lecture", augment_copies=2, batch_size=4)
    shared = train.AugmentedEpochs(data, settings, cfg)
    first = np.array(shared.features(0))
    assert first.shape == (12, *feats.shape[1:])
    second = np.array(shared.features(1))
    assert not np.allclose(second, first)  # a new epoch, new variants
    stored = Path(shared._dir.name)
    assert sorted(f.name for f in stored.iterdir()) == ["epoch0000.npy", "epoch0001.npy"]
    # the second model gets the very same variants, read back from disk rather than held in memory
    np.testing.assert_array_equal(shared.features(0), first)
    assert isinstance(shared.features(0), np.memmap)
    # an epoch's variants depend on the seed and the epoch only, not on the order they were asked for
    other = train.AugmentedEpochs(data, settings, cfg)
    np.testing.assert_array_equal(other.features(1), second)
    other.close()
    batches = train._EpochBatches(data, shared, seed=0, batch_size=4)
    assert len(batches) == 5  # 6 clean + 12 variants in batches of 4
    batches.on_epoch_begin()
    seen = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert np.array_equal(np.bincount(seen), np.bincount(np.tile(y, 3)))
    assert batches.epoch == 0 and shared._current[0] == 0
    batches.on_epoch_end()
    batches.on_epoch_begin()
    assert batches.epoch == 1 and shared._current[0] == 1
    shared.close()
    assert not stored.exists()


def test_mixup_blends_inputs_and_targets_with_one_weight_per_example() -> None:
    n = 8
    x = np.zeros((n, 5, n), np.float32)
    x[np.arange(n), :, np.arange(n)] = 1.0  # example i carries a 1 in column i only: the blend can be read back
    y = np.arange(n) % len(LABELS)
    mixed, targets = train.mix_batch(x, y, np.random.default_rng(3), alpha=0.4)
    assert mixed.shape == x.shape and mixed.dtype == np.float32 and targets.shape == (n, len(LABELS))
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)
    onehot = np.eye(len(LABELS))[y]
    for i in range(n):
        weights = mixed[i, 0]  # lam on i, 1 - lam on its partner (all on i when it drew itself)
        assert np.all(mixed[i] == weights) and weights.sum() == pytest.approx(1.0) and weights[i] > 0
        np.testing.assert_allclose(targets[i], weights @ onehot, atol=1e-6)  # the targets blend like the inputs
        assert np.count_nonzero(weights) <= 2
    assert np.any(mixed != x)  # not a no-op
    again = train.mix_batch(x, y, np.random.default_rng(3), alpha=0.4)
    np.testing.assert_array_equal(again[0], mixed)


def test_mixup_batches_are_soft_repeatable_and_train(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    feats = rng.normal(size=(12, 11, 20)).astype(np.float32)
    y = np.arange(12) % len(LABELS)
    flat = feats.reshape(-1, 20)
    data = train._Data(
        x={"train": feats, "validation": feats[:6], "test": feats[:6]},
        y={"train": y, "validation": y[:6], "test": y[:6]},
        stats=(flat.mean(0), flat.var(0)),
        fingerprint="test",
        skipped=[],
        train_windows=np.zeros((12, 16000), np.float32),
    )
    cfg = train.TrainConfig(models=("perceptron",), preset="lecture", augment=False, batch_size=4, epochs=2, mixup=0.2)
    settings = train.features.preset("lecture")
    variants = train.AugmentedEpochs(data, settings, cfg)
    batches = train._EpochBatches(data, variants, cfg.seed, cfg.batch_size, cfg.mixup)
    batches.on_epoch_begin()
    xb, yb = batches[1]
    assert yb.shape == (4, len(LABELS)) and np.allclose(yb.sum(1), 1.0)
    np.testing.assert_array_equal(batches[1][0], xb)  # asked again, the same blend
    plain = train._EpochBatches(data, variants, cfg.seed, cfg.batch_size)
    plain.on_epoch_begin()
    assert plain[1][1].dtype == np.int64  # without mixup the labels stay indices
    listener = train._Listener("perceptron", 0, 1, cfg.epochs, train.Progress(), None)
    model, history = train.fit_one("perceptron", data, cfg, settings, listener)
    assert len(history["loss"]) == 2 and all(np.isfinite(history["val_loss"]))
    assert 0 <= history["val_accuracy"][-1] <= 1
    variants.close()


def test_mixup_out_of_range_is_refused() -> None:
    for bad in (-0.1, 2.5):
        with pytest.raises(ValueError, match="mixup"):
            train.TrainConfig(mixup=bad)


def test_a_three_label_model_goes_on_to_learn_other_keeping_its_answers(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    feats = rng.normal(size=(16, 11, 20)).astype(np.float32)
    flat = feats.reshape(-1, 20)
    old = train.zoo.build("perceptron", (11, 20), 3, (flat.mean(0), flat.var(0)))
    old.save(tmp_path / "perceptron.keras")
    model = train.warm_start(tmp_path / "perceptron.keras", 4)
    assert model.output_shape == (None, 4)
    before, after = old.predict(feats, verbose=0), model.predict(feats, verbose=0)
    np.testing.assert_array_equal(after[:, :3].argmax(1), before.argmax(1))  # the same words at first
    assert after[:, 3].max() < after[:, :3].max(1).min()  # and other unlikely until it is learnt
    assert train.warm_start(tmp_path / "perceptron.keras", 3).output_shape == (None, 3)
    with pytest.raises(ValueError, match="cannot go on"):
        train.warm_start(tmp_path / "perceptron.keras", 2)


def test_real_noise_is_mixed_into_augmented_variants() -> None:
    windows = np.zeros((40, 16000), np.float32)
    windows[:, 4000:12000] = 0.3 * np.sin(np.linspace(0, 900, 8000, dtype=np.float32))
    hum = np.sin(2 * np.pi * 50 * np.arange(16000) / 16000).astype(np.float32)
    bank = train.noise_bank([hum, np.zeros(16000, np.float32)], 16000)
    assert bank.shape == (1, 32000)  # the silent clip is left out
    np.testing.assert_allclose(np.sqrt(np.mean(bank**2)), 1.0, rtol=1e-3)
    out = train.augment(windows, np.random.default_rng(0), 1, max_shift=0, noise=bank)
    # where the word is silent, a hum at 50 Hz appears in some rows: the real noise, not generated noise
    quiet = out[:, :3000]
    hums = [_peak_hz(row[:2048]) < 80 for row in quiet if np.abs(row).max() > 0]
    assert any(hums) and not all(hums)
