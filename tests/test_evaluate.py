"""evaluate: scores from predictions, and a whole evaluation of the shipped models on a tiny folder."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from _audio_util import have_shipped_models, make_dataset, real_data_dir, shipped_models

from kws import config, evaluate


def test_scores_from_predictions() -> None:
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    y_pred = np.array([0, 0, 2, 1, 0, 2, 2, 2, 1, 2])
    s = evaluate.scores_from_predictions(y_true, y_pred)
    assert s.n == 10
    assert s.accuracy == pytest.approx(0.7)
    assert s.per_class == {"bed": pytest.approx(2 / 3), "happy": 0.5, "cat": 0.8}
    assert s.confusion == [[2, 0, 1], [1, 1, 0], [0, 1, 4]]


def test_class_without_clips_is_nan() -> None:
    s = evaluate.scores_from_predictions(np.array([0, 0]), np.array([0, 1]))
    assert math.isnan(s.per_class["cat"]) and s.accuracy == 0.5


@pytest.fixture
def tiny_real(tmp_path, monkeypatch):
    """Three test-split clips per word, copied from the real dataset (or generated clips where it is absent),
    plus one corrupt clip; the shipped models come from the session cache."""
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    from kws import inference

    models = list(shipped_models())  # load before patching: shipped_models itself calls load_models
    monkeypatch.setattr(inference, "load_models", lambda models_dir, precision="float32": models)
    root = tmp_path / "data"
    real = real_data_dir()
    if real is None:
        make_dataset(root)
        split = "all"
    else:
        from kws.dataset import scan

        items = [it for it in scan(real) if it.split == "test"]
        for word in config.LABELS:
            (root / word).mkdir(parents=True)
            for it in [i for i in items if i.label == word][:3]:
                shutil.copy(it.path, root / word / it.path.name)
        split = "test"
    (root / "cat" / "0ea0e2f4_nohash_9.wav").write_bytes(b"RIFF....WAVEbroken")
    return root, split


@pytest.mark.skipif(not have_shipped_models(), reason="no shipped models in models/")
def test_evaluate_tiny_folder(tiny_real) -> None:
    root, split = tiny_real
    result = evaluate.evaluate(config.SHIPPED_MODELS_DIR, root, split)
    n = sum(1 for _ in root.rglob("*.wav")) - 1
    names = [m.name for m in shipped_models()]
    shipped_labels = {m.name: m.labels for m in shipped_models()}
    assert len(result.y_true) == len(result.paths) == n
    assert [p.endswith("0ea0e2f4_nohash_9.wav") for p, _ in result.skipped] == [True]
    assert list(result.scores) == list(result.predictions) == names
    for name in names:
        assert result.predictions[name].shape == (n, len(shipped_labels[name]))  # each model's own label order
        assert result.scores[name].n == n
        assert sum(map(sum, result.scores[name].confusion)) == n
    rows = evaluate.table(result, config.SHIPPED_MODELS_DIR)
    assert [r["model"] for r in rows] == names
    assert set(rows[0]) >= {"model", "architecture", "preset", "params", "size_kb", "accuracy", "clips"}
    assert {f"acc_{w}" for w in config.LABELS} <= set(rows[0])
    if split == "test":  # real clips: the strongest model gets most of them
        assert max(r["accuracy"] for r in rows) >= 0.75


@pytest.mark.skipif(not have_shipped_models(), reason="no shipped models in models/")
def test_models_already_loaded_are_used_not_loaded_again(tiny_real, predictor, monkeypatch) -> None:
    """The app hands in its cached predictor's models: the scores are the same, and nothing is loaded."""
    from kws import inference

    root, split = tiny_real
    expected = evaluate.evaluate(config.SHIPPED_MODELS_DIR, root, split)

    def no_loading(models_dir, precision="float32"):
        raise AssertionError("models were loaded again")

    monkeypatch.setattr(inference, "load_models", no_loading)
    given = evaluate.evaluate(config.SHIPPED_MODELS_DIR, root, split, models=predictor.models)
    assert list(given.predictions) == list(expected.predictions)
    for name, probs in expected.predictions.items():
        np.testing.assert_allclose(given.predictions[name], probs, atol=1e-5)


@pytest.mark.skipif(not have_shipped_models(), reason="no shipped models in models/")
def test_a_model_file_answers_the_same_inputs_once_then_from_the_cache(tiny_real, monkeypatch) -> None:
    """Scoring a split is seconds of one-clip calls per model: the answers are kept in the cache folder under the
    file's checksum and a hash of the inputs, so a fresh server's Compare reads them; other inputs, or a damaged
    kept file, are answered afresh."""
    from kws import inference

    root, split = tiny_real
    calls = []
    real = inference.LoadedModel.predict_batch
    monkeypatch.setattr(inference.LoadedModel, "predict_batch", lambda m, x: calls.append(m.name) or real(m, x))
    first = evaluate.evaluate(config.SHIPPED_MODELS_DIR, root, split)
    names = [m.name for m in shipped_models()]
    assert sorted(calls) == sorted(names)
    kept = sorted((config.cache_dir()).glob("predictions-*.npy"))
    assert len(kept) == len(names)
    again = evaluate.evaluate(config.SHIPPED_MODELS_DIR, root, split)
    assert sorted(calls) == sorted(names)  # nothing answered again
    for name in names:
        np.testing.assert_array_equal(again.predictions[name], first.predictions[name])
    kept[0].write_bytes(b"not an array")
    evaluate.evaluate(config.SHIPPED_MODELS_DIR, root, split)
    assert len(calls) == len(names) + 1  # the damaged file's model answered again, the others read theirs
    (root / "bed" / sorted((root / "bed").glob("*.wav"))[0].name).unlink()  # other inputs
    evaluate.evaluate(config.SHIPPED_MODELS_DIR, root, split)
    assert len(calls) == 2 * len(names) + 1


@pytest.mark.skipif(not have_shipped_models(), reason="no shipped models in models/")
def test_unknown_split(tiny_real) -> None:
    root, _ = tiny_real
    with pytest.raises(ValueError, match="unknown split"):
        evaluate.evaluate(config.SHIPPED_MODELS_DIR, root, "dev")


@pytest.mark.skipif(not have_shipped_models(), reason="no shipped models in models/")
def test_empty_split(tmp_path, monkeypatch) -> None:
    """A folder whose speakers all fall in other splits: a clear error, not a division by zero."""
    from kws import dataset, inference

    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    models = list(shipped_models())
    monkeypatch.setattr(inference, "load_models", lambda models_dir, precision="float32": models)
    make_dataset(tmp_path / "data")
    for path in (tmp_path / "data").rglob("*.wav"):
        if dataset.split_of(path) == "validation":
            path.unlink()
    with pytest.raises(dataset.DatasetMissingError, match="validation split"):
        evaluate.evaluate(config.SHIPPED_MODELS_DIR, tmp_path / "data", "validation")
