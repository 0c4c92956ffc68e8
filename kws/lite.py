"""TensorFlow Lite copies of the models, for answering one clip at a time.

Why: for one clip the models are tiny and the cost is mostly the call itself. An XLA-compiled TensorFlow call
costs ~0.8 ms a model here; the same model converted to TensorFlow Lite and run by the LiteRT interpreter with
its XNNPACK kernels answers in ~0.3 ms (cnn1 0.1 ms, the perceptron a few microseconds), with the same
probabilities to ~1e-6 (``bench/results_latency.json`` has both). The ``.keras`` file stays the one source of
truth: its TFLite copy is derived, converted once per model file and TensorFlow version, and kept in the cache
folder (like the feature cache), so loading later reads it in milliseconds. A model that will not convert keeps
its XLA path (:mod:`kws.inference`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kws import cache, config, store
from kws._tf import Interpreter, keras, tf

logger = logging.getLogger(__name__)

#: One stderr silencing at a time (they save and restore the same file descriptor).
_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block: XNNPACK announces itself there, past ``sys.stderr``,
    when the first interpreter starts, and the CLI's errors must stay one line.

    The whole process's stderr goes for those few milliseconds; a descriptor that is not open is left alone.
    """
    with _STDERR_LOCK:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            saved: int | None = fcntl.fcntl(2, fcntl.F_DUPFD_CLOEXEC, 3)
        except OSError:  # no stderr at all: nothing to silence
            saved = None
        try:
            if saved is not None:
                devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.dup2(devnull, 2)
                finally:
                    os.close(devnull)
            yield
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)


#: False where the LiteRT package is missing: every model then answers through XLA.
AVAILABLE = Interpreter is not None


#: Bumped whenever :func:`convert` changes what it makes, so older cached copies are not used.
RECIPE = 1


def _unrolled(layer: Any) -> Any:
    """A fresh copy of ``layer``, with its loop unrolled where it has one (recurrent layers)."""
    cfg = layer.get_config()
    if "unroll" in cfg:
        cfg["unroll"] = True
    return layer.__class__.from_config(cfg)


def convert(model: Any, input_shape: tuple[int, ...]) -> bytes:
    """The TFLite flatbuffer of ``model`` for a batch of one ``input_shape`` (weights frozen in).

    Recurrent layers are unrolled over the fixed number of frames first: TFLite runs the LSTM as straight-line
    kernels in ~0.34 ms, against ~0.65 ms for its loop (and ~0.43 ms through XLA). A fixed batch of one lets the
    converter lower the rest; the wrapper model makes Keras freeze the variables (a bare ``tf.function`` leaves
    them as resources the interpreter cannot read). ``model`` itself is not changed.
    """
    copy = keras.models.clone_model(model, clone_function=_unrolled)
    copy.set_weights(model.get_weights())
    inputs = keras.Input(input_shape, batch_size=1)
    wrapper = keras.Model(inputs, copy(inputs, training=False))
    # Keras prints "Saved artifact at ..." while exporting for the converter: keep it off `predict --json`'s stdout
    with contextlib.redirect_stdout(io.StringIO()):
        return tf.lite.TFLiteConverter.from_keras_model(wrapper).convert()


def cache_path(keras_path: Path) -> Path:
    """Where the TFLite copy of ``keras_path`` is kept: named by the file's bytes, the TensorFlow version and
    :data:`RECIPE`."""
    digest = hashlib.sha256(Path(keras_path).read_bytes()).hexdigest()[:24]
    name = f"{Path(keras_path).stem}-{digest}-tf{tf.__version__}-r{RECIPE}.tflite"
    return config.cache_dir() / "tflite" / name


def flatbuffer_for(
    keras_path: Path, model: Any, input_shape: tuple[int, ...], fresh: bool = False
) -> tuple[bytes, bool] | None:
    """The TFLite copy of the model saved at ``keras_path`` and whether it came from the cache: from the cache
    unless ``fresh``, else converted now and cached.

    None (logged) when the model will not convert; a cache that cannot be read or written only costs a conversion.
    """
    path = cache_path(keras_path)
    if not fresh:
        try:
            blob = path.read_bytes()
            cache.mark_used(path)
            return blob, True
        except FileNotFoundError:
            pass
        except OSError as err:
            logger.warning("cannot read %s (%s); converting again", path, err)
    try:
        blob = convert(model, input_shape)
    except Exception as err:  # an op TFLite lacks: the caller keeps the XLA path
        logger.warning("%s will not convert to TFLite (%s)", keras_path.name, err)
        return None
    try:
        store.write_bytes_atomic(path, blob)
    except OSError as err:
        logger.warning("cannot cache the TFLite copy at %s (%s)", path, err)
    else:
        cache.prune(keep=path)
    return blob, False


class LiteRunner:
    """One model's TFLite interpreter: probabilities for one clip's MFCCs, safe to call from many threads.

    An interpreter holds its tensors between calls, so one call at a time (a lock); the models of a clip run
    on different interpreters, and the interpreter lets go of the GIL while it computes.
    """

    def __init__(self, flatbuffer: bytes):
        if Interpreter is None:
            raise RuntimeError("the LiteRT interpreter (ai-edge-litert) is not installed")
        with _native_stderr_silenced():  # XNNPACK announces itself on stderr the first time
            self._interpreter = Interpreter(model_content=flatbuffer, num_threads=1)
            self._interpreter.allocate_tensors()
        (inp,) = self._interpreter.get_input_details()
        (out,) = self._interpreter.get_output_details()
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in inp["shape"])
        self._in, self._out = inp["index"], out["index"]
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``(1, labels)`` for MFCCs ``(1, frames, coeffs)``."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape != self.input_shape:
            raise ValueError(f"expected input of shape {self.input_shape}, got {x.shape}")
        with self._lock:
            self._interpreter.set_tensor(self._in, x)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._out)  # a copy: the next call cannot change it
