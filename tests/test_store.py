"""store: a saved model comes back with its own settings and labels; sets are swapped atomically or not at all."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from _audio_util import fake_meta, save_model, word_like

from kws import inference, store
from kws.config import LABELS
from kws.features import PRESETS, mfcc, shapes


@pytest.fixture(scope="module")
def mixed_set(tmp_path_factory) -> tuple[Path, dict]:
    """A folder with a standard-preset CNN and a lecture-preset perceptron."""
    folder = tmp_path_factory.mktemp("models")
    originals = {
        "cnn1": save_model(folder, "cnn1", "cnn1", "standard", seed=1),
        "perceptron": save_model(folder, "perceptron", "perceptron", "lecture", seed=2),
    }
    return folder, originals


def test_roundtrip_keeps_settings_labels_and_weights(mixed_set) -> None:
    folder, originals = mixed_set
    loaded = {m.name: m for m in inference.load_models(folder)}
    assert list(loaded) == ["perceptron", "cnn1"]  # the lecture's order, not the file system's
    assert loaded["perceptron"].settings == PRESETS["lecture"]
    assert loaded["cnn1"].settings == PRESETS["standard"]
    for name, m in loaded.items():
        assert m.labels == LABELS
        x = mfcc(word_like(1.0), m.settings)[None]
        expected = np.asarray(originals[name](x, training=False))
        np.testing.assert_allclose(m(x), expected, rtol=1e-4, atol=1e-5)


def test_each_model_gets_its_own_features(mixed_set) -> None:
    folder, _ = mixed_set
    predictor = inference.Predictor(inference.load_models(folder))
    prediction = predictor.predict(word_like(1.0), 16000)
    assert [a.name for a in prediction.answers] == ["perceptron", "cnn1"]
    assert prediction.feature_settings == PRESETS["lecture"]  # a tie: the first model's, for display
    assert prediction.features.shape == shapes(PRESETS["lecture"]).input_shape


def test_the_app_draws_the_features_most_models_use(tmp_path) -> None:
    save_model(tmp_path, "perceptron", "perceptron", "lecture")
    save_model(tmp_path, "cnn1", "cnn1", "standard")
    save_model(tmp_path, "best", "best", "standard")
    prediction = inference.Predictor(inference.load_models(tmp_path)).predict(word_like(1.0), 16000)
    assert prediction.answers[0].name == "perceptron"
    assert prediction.feature_settings == PRESETS["standard"]
    assert prediction.features.shape == shapes(PRESETS["standard"]).input_shape


def test_list_models_reads_metadata(mixed_set) -> None:
    folder, _ = mixed_set
    infos = store.list_models(folder)
    assert [i.name for i in infos] == ["perceptron", "cnn1"]
    assert infos[0].settings == PRESETS["lecture"] and infos[0].labels == LABELS
    assert infos[0].keras_path == folder / "perceptron.keras"


def test_settings_that_do_not_fit_the_model_are_refused(tmp_path) -> None:
    save_model(tmp_path, "perceptron", "perceptron", "standard")
    meta = json.loads((tmp_path / "perceptron.json").read_text())
    meta["feature_settings"] = PRESETS["lecture"].to_dict()
    (tmp_path / "perceptron.json").write_text(json.dumps(meta))
    with pytest.raises(store.ModelStoreError, match="does not match its settings"):
        inference.load_models(tmp_path)


def test_broken_folders(tmp_path, caplog) -> None:
    with pytest.raises(store.ModelStoreError, match="No model folder"):
        store.list_models(tmp_path / "missing")
    with pytest.raises(store.ModelStoreError, match="No models"):
        store.list_models(tmp_path)
    (tmp_path / "orphan.json").write_text(json.dumps(fake_meta("orphan", "cnn1", "standard")))
    with caplog.at_level(logging.WARNING, logger="kws.store"), pytest.raises(store.ModelStoreError):
        store.list_models(tmp_path)
    assert any("orphan" in r.getMessage() for r in caplog.records)


def test_bad_metadata(tmp_path) -> None:
    (tmp_path / "a.keras").write_bytes(b"")
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(store.ModelStoreError, match="unreadable"):
        store.list_models(tmp_path)
    (tmp_path / "a.json").write_text(json.dumps({"name": "a"}))
    with pytest.raises(store.ModelStoreError, match="lacks .*feature_settings"):
        store.list_models(tmp_path)


def test_a_file_that_is_not_a_model_is_refused(tmp_path) -> None:
    save_model(tmp_path, "cnn1", "cnn1", "standard")
    meta = json.loads((tmp_path / "cnn1.json").read_text())
    junk = b"not a flatbuffer"
    meta["tflite"]["float32"] = {"file": "cnn1.tflite", "sha256": hashlib.sha256(junk).hexdigest(), "size_bytes": 16}
    (tmp_path / "cnn1.tflite").write_bytes(junk)
    (tmp_path / "cnn1.json").write_text(json.dumps(meta))
    with pytest.raises(store.ModelStoreError, match="cnn1.tflite: cannot load"):
        inference.load_models(tmp_path)


# --- atomic writes and swaps ------------------------------------------------------------------------------------


def make_set(folder: Path, tag: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "m.json").write_text(tag)
    (folder / "m.keras").write_text(tag)
    return folder


def contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def test_write_json_atomic(tmp_path) -> None:
    target = tmp_path / "sub" / "a.json"
    store.write_json_atomic(target, {"x": 1})
    assert json.loads(target.read_text()) == {"x": 1}
    with pytest.raises(TypeError):
        store.write_json_atomic(target, {"x": object()})  # fails half-way through writing
    assert json.loads(target.read_text()) == {"x": 1}
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_replace_dir_new_target(tmp_path) -> None:
    staging = make_set(tmp_path / "staging", "new")
    store.replace_dir(staging, tmp_path / "models")
    assert contents(tmp_path / "models") == {"m.json": "new", "m.keras": "new"}
    assert not staging.exists()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "rename-aside"])
def test_replace_dir_swaps_sets(tmp_path, monkeypatch, exchange: bool) -> None:
    if not exchange:
        monkeypatch.setattr(store, "_exchange", lambda a, b: False)
    target = make_set(tmp_path / "models", "old")
    staging = store.staging_dir_for(target)
    assert staging.parent == target.parent and not any(staging.iterdir())
    (staging / "m.json").write_text("new")
    store.replace_dir(staging, target)
    assert contents(target) == {"m.json": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # no staging or aside folders left


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "rename-aside"])
def test_replace_dir_failure_keeps_the_old_set(tmp_path, monkeypatch, exchange: bool) -> None:
    """A staging folder that vanished (a crashed run) must leave the old set in place."""
    if not exchange:
        monkeypatch.setattr(store, "_exchange", lambda a, b: False)
    target = make_set(tmp_path / "models", "old")
    with pytest.raises(OSError):
        store.replace_dir(tmp_path / "gone", target)
    assert contents(target) == {"m.json": "old", "m.keras": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_replace_dir_failure_after_moving_aside(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(store, "_exchange", lambda a, b: False)
    target = make_set(tmp_path / "models", "old")
    staging = make_set(tmp_path / "staging", "new")
    real_rename = store.os.rename

    def flaky(src, dst):
        if Path(src) == staging:
            raise OSError("disk trouble")
        return real_rename(src, dst)

    monkeypatch.setattr(store.os, "rename", flaky)
    with pytest.raises(OSError, match="disk trouble"):
        store.replace_dir(staging, target)
    assert contents(target) == {"m.json": "old", "m.keras": "old"}


def test_order_key() -> None:
    names = ["best", "zzz", "perceptron", "lstm", "cnn2_dropout", "cnn1", "cnn2"]
    assert sorted(names, key=store.order_key) == ["perceptron", "cnn1", "cnn2", "cnn2_dropout", "lstm", "best", "zzz"]
