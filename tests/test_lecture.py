"""The lecture as it was: its networks at its sizes on its exact input, trained its way, shipped in models/lecture."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from _audio_util import make_dataset

from kws import config
from kws.features import preset, shapes
from kws.options import TrainConfig

LECTURE_DIR = config.LECTURE_MODELS_DIR


def test_the_lecture_recipe_is_refused_what_it_never_had() -> None:
    with pytest.raises(ValueError, match="no best"):
        TrainConfig(zoo="lecture", models=("perceptron", "best"))
    with pytest.raises(ValueError, match="zoo"):
        TrainConfig(zoo="1998")
    assert TrainConfig(zoo="lecture", models=("lstm",), schedule="constant").zoo == "lecture"


def test_the_lectures_networks_take_its_raw_coefficients() -> None:
    zoo = pytest.importorskip("kws.zoo")
    shape = shapes(preset("lecture_exact")).input_shape
    assert shape == (11, 20)
    for name in zoo.LECTURE_ZOO:
        model = zoo.build(name, shape, 3, which="lecture")
        assert model.name == name and tuple(model.output_shape) == (None, 3)
        kinds = {type(layer).__name__ for layer in model.layers}
        assert not kinds & {"Normalization", "InverseDCT", "CepstralMeanNorm"}, name  # raw MFCCs, as it fed them
        assert zoo.describe(name, "lecture") != zoo.describe(name, "today")  # its own sketch in the metadata
    lstm = zoo.build("lstm", shape, 3, which="lecture")
    recurrent = next(layer for layer in lstm.layers if type(layer).__name__ == "LSTM")
    assert recurrent.units == 16 and tuple(recurrent.input.shape) == (None, 20, 11)  # coefficients as its steps
    assert lstm.layers[-2].units == 1  # everything it heard through one unit
    with pytest.raises(ValueError, match="no 'best'"):
        zoo.build("best", shape, 3, which="lecture")


@pytest.mark.slow
def test_a_lecture_run_trains_its_way_and_keeps_the_sets_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train --zoo lecture``: constant rate, no early stopping, every epoch run; the lecture recipe is saved
    with each model; training into a folder keeps the other set inside it (models/lecture in models/). The
    dataset is found as the CLI finds it (``KWS_DATA_DIR``), and the other words are still scored."""
    train = pytest.importorskip("kws.train")
    import shutil

    from kws import dataset

    make_dataset(tmp_path / "data")
    (tmp_path / "data" / "yes").mkdir()  # another word: never learnt from, but scored on
    for path in (tmp_path / "data" / "cat").glob("*.wav"):
        shutil.copy(path, tmp_path / "data" / "yes" / path.name)
    others = [i for i in dataset.scan(tmp_path / "data", other=True) if i.label == config.OTHER]
    held_out = {s: sum(i.split == s for i in others) for s in ("validation", "test")}
    target = tmp_path / "models"
    (target / "lecture").mkdir(parents=True)
    (target / "lecture" / "kept.json").write_text("{}")
    cfg = TrainConfig(
        models=("perceptron", "lstm"),
        preset="lecture_exact",
        zoo="lecture",
        other=False,
        augment=False,
        epochs=3,
        batch_size=4,
        learning_rate=1e-3,
        schedule="constant",
        patience=0,
    )
    callbacks = train.fit_callbacks(cfg, train.keras.callbacks.Callback())
    assert [type(c).__name__ for c in callbacks] == ["Callback"]  # no schedule, no early stopping
    monkeypatch.setenv("KWS_DATA_DIR", str(tmp_path / "data"))
    result = train.train(cfg, target, None)
    assert (target / "lecture" / "kept.json").read_text() == "{}"
    for name in cfg.models:
        meta = json.loads((target / f"{name}.json").read_text())
        assert meta["train_config"]["zoo"] == "lecture" and meta["epochs_run"] == 3
        assert meta["labels"] == list(config.LABELS) and meta["feature_settings"]["decimate"] == 3
        assert meta["description"] == train.zoo.describe(name, "lecture")
        for split, count in held_out.items():  # how often it takes another word for a keyword, though three-label
            scores = meta["open_world"][split]
            assert scores["other_clips"] == count > 0 and 0.0 <= scores["false_accept_rate"] <= 1.0
        assert meta["split_counts"] == {"train": 6, "validation": 6, "test": 6}  # the other word not learnt
    assert set(result.metas) == set(cfg.models)


def _lecture_infos():
    from kws import store

    if not LECTURE_DIR.is_dir():
        pytest.skip("no lecture set in models/lecture")
    return store.list_models(LECTURE_DIR)


def test_the_shipped_lecture_set_is_the_lectures() -> None:
    """At least five models, 20-coefficient inputs, the three words only, trained as the lecture did."""
    infos = _lecture_infos()
    assert [i.name for i in infos] == ["perceptron", "cnn1", "cnn2", "cnn2_dropout", "lstm"]
    for info in infos:
        meta = json.loads((LECTURE_DIR / f"{info.name}.json").read_text())
        assert info.labels == config.LABELS and info.settings == preset("lecture_exact")
        assert shapes(info.settings).input_shape == (11, 20)
        recipe = meta["train_config"]
        assert (recipe["zoo"], recipe["augment"], recipe["other"], recipe["schedule"]) == (
            "lecture",
            False,
            False,
            "constant",
        )
        assert meta["epochs_run"] == recipe["epochs"] == 50
        assert meta["open_world"]["test"]["other_clips"] > 0  # scored on the other words it never learnt
        assert (LECTURE_DIR / f"{info.name}.tflite").is_file() and (LECTURE_DIR / f"{info.name}.keras").is_file()


def test_the_lecture_set_answers_through_litert_without_tensorflow(tmp_path: Path) -> None:
    """Its models load and answer in a fresh interpreter with neither TensorFlow nor Keras loaded."""
    import subprocess

    _lecture_infos()
    script = (
        "import sys, numpy as np\n"
        "from kws.inference import load_predictor\n"
        f"p = load_predictor({str(LECTURE_DIR)!r})\n"
        "t = np.arange(16000) / 16000\n"
        "clip = (0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-((t - 0.5) / 0.15) ** 2)).astype(np.float32)\n"
        "pred = p.predict(clip, 16000)\n"
        "assert len(pred.answers) == 5 and all(len(a.probabilities) == 3 for a in pred.answers)\n"
        "assert all(abs(sum(a.probabilities.values()) - 1) < 1e-3 for a in pred.answers)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=config.PROJECT_ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_the_lecture_models_answer_like_their_keras_files() -> None:
    """The shipped ``.tflite`` of each lecture model is its ``.keras`` (what the lecture's Keras would say)."""
    infos = _lecture_infos()
    keras = pytest.importorskip("kws._tf").keras
    rng = np.random.default_rng(0)
    x = rng.normal(-20, 40, size=(4, 11, 20)).astype(np.float32)
    from kws.inference import load_predictor

    predictor = load_predictor(LECTURE_DIR)
    for info, model in zip(infos, predictor.models):
        expected = np.asarray(keras.models.load_model(info.keras_path, compile=False)(x, training=False))
        got = model.predict_batch(x)
        np.testing.assert_allclose(got, expected, atol=1e-4)
