"""lite: every architecture's TFLite copy answers like Keras; copies are cached by the model's bytes; a model whose
copy will not convert, load or agree answers through XLA instead; nothing native reaches stdout or stderr."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from _audio_util import env_without, save_model, word_like

from kws.config import LABELS
from kws.features import PRESETS, mfcc, shapes

zoo = pytest.importorskip("kws.zoo")  # loads TensorFlow
lite = pytest.importorskip("kws.lite")
inference = pytest.importorskip("kws.inference")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test converts into its own cache folder."""
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def python(code: str, cache: Path, **kwargs) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter converting into ``cache``: its own stdout and stderr, as a user sees them."""
    env = env_without() | {"KWS_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, **kwargs)


def ops(runner: lite.LiteRunner) -> set[str]:
    return {op["op_name"] for op in runner._interpreter._get_ops_details()}


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_every_architecture_converts_and_answers_like_keras(name: str) -> None:
    input_shape = shapes(PRESETS["standard"]).input_shape
    zoo.keras.utils.set_random_seed(3)
    model = zoo.build(name, input_shape, len(LABELS))
    runner = lite.LiteRunner(lite.convert(model, input_shape))
    x = np.random.default_rng(1).normal(size=(4, 1, *input_shape)).astype(np.float32)
    for clip in x:
        np.testing.assert_allclose(runner(clip), np.asarray(model(clip, training=False)), atol=1e-5)
    assert runner.input_shape == (1, *input_shape)
    if name == "lstm":  # unrolled in the copy: straight-line kernels, no interpreted loop
        assert "WHILE" not in ops(runner) and not any(getattr(layer, "unroll", False) for layer in model.layers)
    with pytest.raises(ValueError, match="expected input of shape"):
        runner(x[:2, 0])


def test_a_copy_is_converted_once_and_named_by_the_model_bytes(tmp_path, own_cache, monkeypatch) -> None:
    original = save_model(tmp_path / "a", "cnn1", "cnn1", "standard", seed=1)
    save_model(tmp_path / "b", "cnn1", "cnn1", "standard", seed=2)
    shape = shapes(PRESETS["standard"]).input_shape
    path_a, path_b = (lite.cache_path(tmp_path / d / "cnn1.keras") for d in "ab")
    assert path_a != path_b and path_a.parent == own_cache / "tflite" and f"-r{lite.RECIPE}." in path_a.name
    blob, cached = lite.flatbuffer_for(tmp_path / "a" / "cnn1.keras", original, shape)
    assert not cached and path_a.read_bytes() == blob and not path_b.exists()
    assert [p.name for p in path_a.parent.iterdir()] == [path_a.name]  # no temporary file left behind

    monkeypatch.setattr(lite, "convert", lambda *a: pytest.fail("converted again"))
    assert lite.flatbuffer_for(tmp_path / "a" / "cnn1.keras", original, shape) == (blob, True)


def test_models_without_a_working_copy_answer_through_xla(tmp_path, monkeypatch, caplog) -> None:
    """A damaged cached copy is converted again and replaces the bad file; a copy that will not convert and one
    that answers differently make their model fall back to XLA on its own, with a warning, still answering as
    Keras does beside the TFLite models."""
    originals = {
        "perceptron": save_model(tmp_path, "perceptron", "perceptron", "lecture", seed=1),
        "cnn1": save_model(tmp_path, "cnn1", "cnn1", "standard", seed=2),
        "best": save_model(tmp_path, "best", "best", "standard", seed=3),
        "lstm": save_model(tmp_path, "lstm", "lstm", "standard", seed=4),
    }
    assert [m.engine for m in inference.load_models(tmp_path)] == ["tflite"] * 4  # converted and cached
    lite.cache_path(tmp_path / "cnn1.keras").write_bytes(b"not a flatbuffer")
    real_convert, real_runner = lite.convert, lite.LiteRunner

    def convert(model, shape):
        if model.name == "lstm":
            raise RuntimeError("an op TFLite lacks")
        return real_convert(model, shape)

    class Off(real_runner):
        def __call__(self, x):
            lecture = self.input_shape[1:] == shapes(PRESETS["lecture"]).input_shape  # the perceptron's copy
            return super().__call__(x) + (0.1 if lecture else 0.0)

    lite.cache_path(tmp_path / "lstm.keras").unlink()
    monkeypatch.setattr(lite, "convert", convert)
    monkeypatch.setattr(lite, "LiteRunner", Off)
    with caplog.at_level(logging.WARNING, logger="kws"):
        loaded = {m.name: m for m in inference.load_models(tmp_path)}
    engines = {n: m.engine for n, m in loaded.items()}
    assert engines == {"perceptron": "xla", "cnn1": "tflite", "lstm": "xla", "best": "tflite"}
    said = [r.getMessage() for r in caplog.records]
    assert any("cnn1 does not run" in m and m.endswith("converting it again") for m in said), said
    assert lite.cache_path(tmp_path / "cnn1.keras").read_bytes() != b"not a flatbuffer"  # replaced
    assert any("perceptron answers differently" in m for m in said) and "perceptron answers through XLA" in said
    assert any("lstm.keras will not convert" in m for m in said) and "lstm answers through XLA" in said
    for name, m in loaded.items():
        x = mfcc(word_like(1.0), m.settings)[None]
        np.testing.assert_allclose(m(x), np.asarray(originals[name](x, training=False)), atol=1e-5)
    predictor = inference.Predictor(list(loaded.values()), timing_runs=1)  # XLA and TFLite models side by side
    alone = [m(predictor.features_for(word_like(1.0), m.settings)[1][None])[0] for m in loaded.values()]
    together = predictor.predict(word_like(1.0), 16000)
    assert predictor.fused
    for answer, probs in zip(together.answers, alone):
        np.testing.assert_allclose(list(answer.probabilities.values()), probs, atol=1e-5)


def test_a_cache_that_cannot_be_read_or_written_costs_only_a_conversion(tmp_path, caplog) -> None:
    original = save_model(tmp_path, "cnn1", "cnn1", "standard", seed=1)
    path = lite.cache_path(tmp_path / "cnn1.keras")
    path.mkdir(parents=True)  # in the copy's place: reading it and replacing it both fail
    shape = shapes(PRESETS["standard"]).input_shape
    with caplog.at_level(logging.WARNING, logger="kws.lite"):
        blob, cached = lite.flatbuffer_for(tmp_path / "cnn1.keras", original, shape)
    assert not cached and lite.LiteRunner(blob).input_shape == (1, *shape)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "cannot read" in said and "cannot cache the TFLite copy" in said
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left behind
    assert [m.engine for m in inference.load_models(tmp_path)] == ["tflite"]


def test_one_runner_serves_many_threads(tmp_path) -> None:
    input_shape = shapes(PRESETS["standard"]).input_shape
    zoo.keras.utils.set_random_seed(5)
    model = zoo.build("best", input_shape, len(LABELS))
    runner = lite.LiteRunner(lite.convert(model, input_shape))
    clips = np.random.default_rng(2).normal(size=(16, 1, *input_shape)).astype(np.float32)
    alone = [runner(c) for c in clips]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(runner, list(clips) * 8))
    for a, b in zip(alone * 8, together):
        np.testing.assert_array_equal(a, b)


def test_load_refuses_an_unknown_engine(tmp_path) -> None:
    save_model(tmp_path, "cnn1", "cnn1", "standard")
    with pytest.raises(ValueError, match="unknown engine 'onnx'; choose from: tflite, xla"):
        inference.load_models(tmp_path, engine="onnx")
    assert [m.engine for m in inference.load_models(tmp_path, engine="xla")] == ["xla"]


def test_converting_prints_nothing(tmp_path) -> None:
    """Converting and starting XNNPACK write to the process's own stdout and stderr; a fresh process that
    converts and runs a model shows neither (the CLI's --json output and one-line errors depend on it)."""
    save_model(tmp_path, "lstm", "lstm", "standard")
    code = f"""
from kws import inference
m = inference.load_models({str(tmp_path)!r})[0]
assert m.engine == "tflite", m.engine
"""
    proc = python(code, tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (proc.stdout, proc.stderr) == ("", ""), (proc.stdout[-500:], proc.stderr[-500:])
    assert any((tmp_path / "cache" / "tflite").iterdir())


def test_a_closed_stderr_leaves_stdout_alone(tmp_path) -> None:
    """A process started without stderr (``2>&-``): silencing XNNPACK's line must not take stdout instead."""
    save_model(tmp_path, "cnn1", "cnn1", "standard")
    code = f"""
from kws import inference
m = inference.load_models({str(tmp_path)!r})[0]
print(m.engine)
"""
    proc = python(code, tmp_path / "cache", preexec_fn=close_stderr)
    assert proc.returncode == 0 and proc.stdout == "tflite\n", (proc.returncode, proc.stdout[-500:])


def close_stderr() -> None:
    os.close(2)
