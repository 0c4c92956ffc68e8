"""Keras models to the TensorFlow Lite files that answer: float32, and a full-integer int8 copy.

This is the TensorFlow side of serving: :func:`export` runs where a model is trained (:func:`kws.train.train`) or
converted (``python -m kws convert``) and writes ``<name>.tflite`` (what answers) and, when it keeps the accuracy,
``<name>.int8.tflite``; their checksums go into the model's JSON, which :mod:`kws.store` checks at load.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kws import store
from kws._tf import keras, tf
from kws.lite import LiteRunner

logger = logging.getLogger(__name__)

#: An int8 copy ships only if its accuracy is at most this far below float32's (in points, on validation).
INT8_MAX_LOSS_POINTS = 0.5
#: Training clips the int8 converter calibrates its ranges on.
REPRESENTATIVE_CLIPS = 300


def _unrolled(layer: Any) -> Any:
    """A fresh copy of ``layer``, with its loop unrolled where it has one (recurrent layers)."""
    cfg = layer.get_config()
    if "unroll" in cfg:
        cfg["unroll"] = True
    return layer.__class__.from_config(cfg)


def _converter(model: Any, input_shape: tuple[int, ...]) -> Any:
    """A TFLite converter for ``model`` on a batch of one ``input_shape``, weights frozen in.

    Recurrent layers are unrolled over the fixed number of frames: TFLite runs the LSTM as straight-line kernels
    about twice as fast as its loop. A fixed batch of one lets the converter lower the rest; the wrapper model makes
    Keras freeze the variables (a bare ``tf.function`` leaves them as resources the interpreter cannot read).
    ``model`` itself is not changed.
    """
    copy = keras.models.clone_model(model, clone_function=_unrolled)
    copy.set_weights(model.get_weights())
    inputs = keras.Input(input_shape, batch_size=1)
    wrapper = keras.Model(inputs, copy(inputs, training=False))
    return tf.lite.TFLiteConverter.from_keras_model(wrapper)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keras prints "Saved artifact at ..." while exporting for the converter: keep it off the CLI's stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def float_flatbuffer(model: Any, input_shape: tuple[int, ...]) -> bytes:
    """The float32 TFLite file of ``model``."""
    converter = _converter(model, input_shape)
    with _quiet():
        return converter.convert()


def int8_flatbuffer(model: Any, input_shape: tuple[int, ...], representative: np.ndarray) -> bytes:
    """The full-integer TFLite file of ``model`` (int8 weights, activations, input and output), its ranges
    calibrated on ``representative`` inputs ``(n, *input_shape)``."""
    converter = _converter(model, input_shape)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None].astype(np.float32)] for x in representative)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with _quiet():
        return converter.convert()


def _accuracy(runner: LiteRunner, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(runner.batch(x).argmax(axis=1) == y)) if len(y) else float("nan")


def file_entry(path: Path, blob: bytes) -> dict[str, Any]:
    """Write ``blob`` to ``path`` atomically; its entry in the model JSON's ``tflite`` (file, checksum, size)."""
    store.write_bytes_atomic(path, blob)
    return {"file": path.name, "sha256": hashlib.sha256(blob).hexdigest(), "size_bytes": len(blob)}


def export(
    model: Any,
    folder: Path,
    name: str,
    train_x: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``<folder>/<name>.tflite`` and, if it keeps the accuracy, ``<name>.int8.tflite``; return the
    model JSON's ``tflite`` entry (files, checksums, sizes, the int8 check and its figures).

    The float32 file must answer as Keras does (to 1e-4 on a few training inputs), or this raises: a file that
    answers differently must not ship. The int8 copy is calibrated on training clips and kept if its validation
    accuracy is within :data:`INT8_MAX_LOSS_POINTS` of the float32 file's (a model refitted on the validation split
    has seen those clips, so for it this measures what quantization changes, not how well it generalises).
    """
    input_shape = tuple(int(d) for d in model.input_shape[1:])
    blob = float_flatbuffer(model, input_shape)
    runner = LiteRunner(blob)
    probe = train_x[: min(8, len(train_x))].astype(np.float32)
    gap = float(np.max(np.abs(runner.batch(probe) - model.predict(probe, verbose=0)))) if len(probe) else 0.0
    if not gap < 1e-4:
        raise RuntimeError(f"the TFLite file of {name} answers differently from its Keras model (by {gap:.2g})")
    entry: dict[str, Any] = {"float32": file_entry(folder / f"{name}.tflite", blob)}
    x_val, y_val = validation
    float_acc = _accuracy(runner, x_val, y_val)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train_x), size=min(REPRESENTATIVE_CLIPS, len(train_x)), replace=False)
    int8_path = folder / f"{name}.int8.tflite"
    try:
        int8_blob = int8_flatbuffer(model, input_shape, train_x[np.sort(pick)])
        int8_acc = _accuracy(LiteRunner(int8_blob), x_val, y_val)
    except Exception as err:  # an op without an int8 kernel: the float32 file still answers
        logger.warning("%s has no int8 copy: %s", name, err)
        int8_path.unlink(missing_ok=True)
        entry["int8"] = {"shipped": False, "reason": f"does not convert ({err})"}
        return entry
    loss = 100 * (float_acc - int8_acc)
    check = {
        "validation_accuracy": int8_acc,
        "float32_validation_accuracy": float_acc,
        "validation_clips": int(len(y_val)),
        "max_loss_points": INT8_MAX_LOSS_POINTS,
    }
    if not loss <= INT8_MAX_LOSS_POINTS:
        int8_path.unlink(missing_ok=True)
        logger.info("%s: int8 not shipped, %.2f points below float32 on validation", name, loss)
        entry["int8"] = {"shipped": False, "reason": f"{loss:.2f} points below float32", **check}
        return entry
    entry["int8"] = {"shipped": True, **file_entry(int8_path, int8_blob), **check}
    return entry


def convert_folder(models_dir: str | Path, data_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Give every ``.keras`` model in ``models_dir`` its TFLite files and record them in its JSON (each JSON
    replaced atomically, after its files are in place); return each model's ``tflite`` entry.

    For model folders made before models shipped as TFLite. The int8 copies calibrate on the dataset's training
    split and are checked on its validation split, read with each model's own feature settings.
    """
    from kws import dataset, zoo  # noqa: F401  zoo registers the layers saved models contain

    infos = [i for i in store.list_models(models_dir) if i.keras_path.is_file()]
    feature_sets = dataset.load_feature_sets([i.settings for i in infos], data_dir)
    entries = {}
    for info in infos:
        model = keras.saving.load_model(info.keras_path, compile=False)
        fs = feature_sets[info.settings]
        train_x = np.concatenate([fs.subset(s)[0] for s in info.fitted_splits])
        entry = export(model, info.keras_path.parent, info.name, train_x, fs.subset("validation"))
        store.write_json_atomic(info.keras_path.with_suffix(".json"), info.meta | {"tflite": entry})
        entries[info.name] = entry
        logger.info("%s: %s", info.name, ", ".join(f"{p} {e.get('size_bytes', '-')} B" for p, e in entry.items()))
    return entries
