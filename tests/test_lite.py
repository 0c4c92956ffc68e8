"""lite and convert: every architecture's TFLite file answers like Keras; the int8 copy ships only when it keeps the
accuracy; a file changed after it was made is refused; nothing native reaches stdout or stderr; the serving path
loads neither TensorFlow nor Keras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from _audio_util import env_without, save_model, word_like

from kws import store
from kws.config import LABELS, SHIPPED_MODELS_DIR
from kws.features import PRESETS, mfcc, shapes
from kws.segment import find_window

pytestmark = pytest.mark.slow  # training, conversion or fresh interpreters: not in the fast lane

zoo = pytest.importorskip("kws.zoo")  # loads TensorFlow
convert = pytest.importorskip("kws.convert")
lite = pytest.importorskip("kws.lite")
inference = pytest.importorskip("kws.inference")


def python(code: str, **kwargs) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter: its own stdout and stderr, and its own ``sys.modules``, as a user has."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env_without(), timeout=300, **kwargs
    )


def ops(runner: lite.LiteRunner) -> set[str]:
    return {op["op_name"] for op in runner._interpreter._get_ops_details()}


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_every_architecture_converts_and_answers_like_keras(name: str) -> None:
    input_shape = shapes(PRESETS["standard"]).input_shape
    zoo.keras.utils.set_random_seed(3)
    model = zoo.build(name, input_shape, len(LABELS))
    runner = lite.LiteRunner(convert.float_flatbuffer(model, input_shape))
    x = np.random.default_rng(1).normal(size=(4, 1, *input_shape)).astype(np.float32)
    for clip in x:
        np.testing.assert_allclose(runner(clip), np.asarray(model(clip, training=False)), atol=1e-5)
    np.testing.assert_allclose(runner.batch(x[:, 0]), np.asarray(model(x[:, 0], training=False)), atol=1e-5)
    assert runner.input_shape == (1, *input_shape) and not runner.quantized
    if name == "lstm":  # unrolled in the file: straight-line kernels, no interpreted loop
        assert "WHILE" not in ops(runner) and not any(getattr(layer, "unroll", False) for layer in model.layers)
    with pytest.raises(ValueError, match="expected input of shape"):
        runner(x[:2, 0])


def test_the_names_the_app_offers_are_the_zoo() -> None:
    from kws.config import ARCHITECTURES

    assert list(zoo.ZOO) == list(ARCHITECTURES)


def separable(n: int, input_shape: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs whose label is which third of the coefficients is loud: a task a model learns in a few epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(LABELS), n)
    x = rng.normal(size=(n, *input_shape)).astype(np.float32)
    third = input_shape[1] // 3
    for i, label in enumerate(y):
        x[i, :, label * third : (label + 1) * third] += 3.0
    return x, y


def test_export_writes_float32_and_an_int8_copy_that_keeps_the_accuracy(tmp_path) -> None:
    input_shape = shapes(PRESETS["lecture"]).input_shape
    zoo.keras.utils.set_random_seed(1)
    model = zoo.build("perceptron", input_shape, len(LABELS))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = separable(600, input_shape)
    model.fit(x, y, epochs=15, verbose=0)
    validation = separable(200, input_shape, seed=1)
    entry = convert.export(model, tmp_path, "perceptron", x, validation)
    assert (tmp_path / "perceptron.tflite").read_bytes()
    int8 = entry["int8"]
    assert int8["shipped"] and int8["file"] == "perceptron.int8.tflite" and int8["validation_clips"] == 200
    assert abs(int8["float32_validation_accuracy"] - int8["validation_accuracy"]) * 100 <= convert.INT8_MAX_LOSS_POINTS
    quantized = lite.LiteRunner((tmp_path / "perceptron.int8.tflite").read_bytes())
    assert quantized.quantized and quantized.input_dtype == np.int8
    probs = quantized.batch(validation[0][:20])
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1, atol=0.05)  # dequantized softmax
    assert entry["float32"]["size_bytes"] == (tmp_path / "perceptron.tflite").stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["perceptron.int8.tflite", "perceptron.tflite"]


def test_an_int8_copy_that_loses_accuracy_is_not_shipped(tmp_path, monkeypatch) -> None:
    input_shape = shapes(PRESETS["lecture"]).input_shape
    model = zoo.build("perceptron", input_shape, len(LABELS))
    x, y = separable(60, input_shape)
    (tmp_path / "perceptron.int8.tflite").write_bytes(b"an older copy")
    real_runner = convert.LiteRunner

    class Worse(real_runner):  # the int8 file answers one label whatever it hears
        def batch(self, x):
            out = super().batch(x)
            return np.eye(len(LABELS), dtype=np.float32)[np.zeros(len(x), int)] if self.quantized else out

    monkeypatch.setattr(convert, "LiteRunner", Worse)
    monkeypatch.setattr(convert, "_accuracy", lambda runner, x, y: 0.0 if runner.quantized else 1.0)
    entry = convert.export(model, tmp_path, "perceptron", x, (x, y))
    assert not entry["int8"]["shipped"] and "100.00 points below float32" in entry["int8"]["reason"]
    assert not (tmp_path / "perceptron.int8.tflite").exists()  # the older copy does not stay beside the new model


def test_loading_checks_each_file_against_its_checksum(tmp_path) -> None:
    save_model(tmp_path, "cnn1", "cnn1", "standard")
    assert [m.precision for m in inference.load_models(tmp_path)] == ["float32"]
    blob = (tmp_path / "cnn1.tflite").read_bytes()
    (tmp_path / "cnn1.tflite").write_bytes(blob[: len(blob) // 2])  # cut off
    with pytest.raises(store.ModelStoreError, match=r"cnn1.tflite does not match the checksum in cnn1.json"):
        inference.load_models(tmp_path)
    (tmp_path / "cnn1.tflite").unlink()
    with pytest.raises(store.ModelStoreError, match="cnn1.tflite cannot be read"):
        inference.load_models(tmp_path)
    (tmp_path / "cnn1.tflite").write_bytes(blob)
    # save_model ships no int8 copy: asked for int8, the model answers in float32 and says so
    assert [m.precision for m in inference.load_models(tmp_path, precision="int8")] == ["float32"]
    meta = json.loads((tmp_path / "cnn1.json").read_text())
    del meta["tflite"]
    (tmp_path / "cnn1.json").write_text(json.dumps(meta))
    with pytest.raises(store.ModelStoreError, match=r"records no TensorFlow Lite file; make one with `python -m kws"):
        inference.load_models(tmp_path)


def test_the_shipped_models_answer_in_float32_and_int8_alike() -> None:
    """Every shipped model whose JSON ships an int8 copy answers through it (the rest in float32, their JSON saying
    why); on a word-like clip the int8 copies mostly agree with float32."""
    floats = inference.load_models(SHIPPED_MODELS_DIR)
    ints = inference.load_models(SHIPPED_MODELS_DIR, precision="int8")
    assert [m.name for m in floats] == [m.name for m in ints] and len(floats) == 6
    shipped = {m.name: m.info.meta["tflite"]["int8"] for m in floats}
    assert any(e["shipped"] for e in shipped.values())
    assert all(e["shipped"] or e["reason"] for e in shipped.values())
    assert [m.precision for m in ints] == ["int8" if shipped[m.name]["shipped"] else "float32" for m in ints]
    assert all(m.runner.quantized == (m.precision == "int8") for m in ints)
    for f, i in zip(floats, ints):
        x = mfcc(find_window(word_like(0.6, seed=2), f.settings).samples, f.settings)[None]
        assert np.max(np.abs(f(x) - i(x))) < 0.35, f.name


def test_one_runner_serves_many_threads() -> None:
    input_shape = shapes(PRESETS["standard"]).input_shape
    zoo.keras.utils.set_random_seed(5)
    model = zoo.build("best", input_shape, len(LABELS))
    runner = lite.LiteRunner(convert.float_flatbuffer(model, input_shape))
    clips = np.random.default_rng(2).normal(size=(16, 1, *input_shape)).astype(np.float32)
    alone = [runner(c) for c in clips]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(runner, list(clips) * 8))
    for a, b in zip(alone * 8, together):
        np.testing.assert_array_equal(a, b)


SERVE = f"""
import sys
import numpy as np
from kws import inference
p = inference.load_predictor({str(SHIPPED_MODELS_DIR)!r})
answer = p.predict(np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1, 16000)
print(len(answer.answers), "tensorflow" in sys.modules, "keras" in sys.modules, p.models[0].runner.runtime)
"""


def test_answering_loads_neither_tensorflow_nor_keras() -> None:
    proc = python(SERVE)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (proc.stdout, proc.stderr) == ("6 False False ai_edge_litert\n", "")


def test_without_ai_edge_litert_the_same_files_run_on_tensorflow() -> None:
    """Where the LiteRT package is missing, ``tf.lite.Interpreter`` runs the same files with the same answers."""
    code = "import sys; sys.modules['ai_edge_litert'] = None\n" + SERVE.replace(
        "print(", "print(np.round(answer.answers[0].confidence, 5), "
    )
    fallback = python(code)
    assert fallback.returncode == 0, fallback.stderr[-2000:]
    confidence, n, tf_loaded, _, runtime = fallback.stdout.split()
    assert (n, tf_loaded, runtime) == ("6", "True", "tf.lite")
    own = python(SERVE.replace("print(", "print(np.round(answer.answers[0].confidence, 5), "))
    assert own.stdout.split()[0] == confidence


def test_converting_prints_nothing_on_stdout(tmp_path) -> None:
    """Converting and starting XNNPACK write to the process's own stdout; a fresh process that converts and runs a
    model shows nothing there (``predict --json`` depends on it), and answering shows nothing on stderr either."""
    code = """
import numpy as np
from kws import convert, zoo
from kws.features import PRESETS, shapes
from kws.lite import LiteRunner
shape = shapes(PRESETS["standard"]).input_shape
blob = convert.float_flatbuffer(zoo.build("lstm", shape, 3), shape)
LiteRunner(blob)(np.zeros((1, *shape), np.float32))
"""
    proc = python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == ""


def test_a_closed_stderr_leaves_stdout_alone() -> None:
    """A process started without stderr (``2>&-``): silencing XNNPACK's line must not take stdout instead."""
    code = f"""
from kws import inference
m = inference.load_models({str(SHIPPED_MODELS_DIR)!r})[0]
print(m.precision)
"""
    proc = python(code, preexec_fn=close_stderr)
    assert proc.returncode == 0 and proc.stdout == "float32\n", (proc.returncode, proc.stdout[-500:])


def close_stderr() -> None:
    os.close(2)


def test_convert_gives_an_old_folder_its_files(tmp_path) -> None:
    """``convert_folder`` (``python -m kws convert``) on a folder of ``.keras`` models made before models shipped
    as TFLite: each JSON then records float32 and int8 files that load and answer like Keras."""
    pytest.importorskip("kws.dataset")
    from _audio_util import make_dataset

    data = tmp_path / "data"
    make_dataset(data, per_split=4)
    original = save_model(tmp_path / "m", "cnn1", "cnn1", "standard", seed=4)
    meta = json.loads((tmp_path / "m" / "cnn1.json").read_text())
    del meta["tflite"]
    (tmp_path / "m" / "cnn1.json").write_text(json.dumps(meta))
    (tmp_path / "m" / "cnn1.tflite").unlink()
    entries = convert.convert_folder(tmp_path / "m", data)
    assert set(entries["cnn1"]) == {"float32", "int8"}
    (m,) = inference.load_models(tmp_path / "m")
    x = mfcc(word_like(1.0), m.settings)[None]
    np.testing.assert_allclose(m(x), np.asarray(original(x, training=False)), atol=1e-5)
    assert json.loads((tmp_path / "m" / "cnn1.json").read_text())["tflite"] == entries["cnn1"]
    assert Path(tmp_path / "m" / "cnn1.tflite").is_file()
