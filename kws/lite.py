"""The serving engine: a model's ``.tflite`` file run by the LiteRT interpreter, without TensorFlow.

Every shipped model answers through its TensorFlow Lite file (float32, or the int8 copy); TensorFlow is needed only
to train and to convert (:mod:`kws.convert`). The interpreter comes from ``ai_edge_litert``, which loads in a fifth
of a second and, unlike TensorFlow, does not clash with streamlit-webrtc's libsrtp, so the app's server can load it
in any order. Where ``ai_edge_litert`` is missing, the same file runs on TensorFlow's own ``tf.lite.Interpreter``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

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


def interpreter_class() -> tuple[Any, str]:
    """The interpreter class and where it comes from: ``ai_edge_litert``, else TensorFlow's ``tf.lite``."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        logger.info("ai_edge_litert is not installed: the models run on tf.lite.Interpreter")
        from kws._tf import tf  # orders the imports: see kws._tf

        return tf.lite.Interpreter, "tf.lite"
    return Interpreter, "ai_edge_litert"


class LiteRunner:
    """One model's TFLite interpreter: probabilities for one clip's MFCCs, safe to call from many threads.

    An interpreter holds its tensors between calls, so one call at a time (a lock); the models of a clip run
    on different interpreters, and the interpreter lets go of the GIL while it computes. A full-integer (int8)
    model gets its input quantized and its output dequantized here, so both kinds take and give float32.
    """

    def __init__(self, flatbuffer: bytes):
        interpreter, self.runtime = interpreter_class()
        with _native_stderr_silenced():  # XNNPACK announces itself on stderr the first time
            self._interpreter = interpreter(model_content=flatbuffer, num_threads=1)
            self._interpreter.allocate_tensors()
        (inp,) = self._interpreter.get_input_details()
        (out,) = self._interpreter.get_output_details()
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in inp["shape"])
        self._in, self._out = inp["index"], out["index"]
        self.input_dtype: type = inp["dtype"]
        self._in_q: tuple[float, int] | None = _quantization(inp)
        self._out_q: tuple[float, int] | None = _quantization(out)
        self._lock = threading.Lock()

    @property
    def quantized(self) -> bool:
        """True for a full-integer model (int8 input and output)."""
        return self._in_q is not None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``(1, labels)`` for MFCCs ``(1, frames, coeffs)``."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape != self.input_shape:
            raise ValueError(f"expected input of shape {self.input_shape}, got {x.shape}")
        if self._in_q is not None:
            scale, zero = self._in_q
            info = np.iinfo(self.input_dtype)
            x = np.clip(np.round(x / scale) + zero, info.min, info.max).astype(self.input_dtype)
        else:
            x = np.ascontiguousarray(x)
        with self._lock:
            self._interpreter.set_tensor(self._in, x)
            self._interpreter.invoke()
            y = self._interpreter.get_tensor(self._out)  # a copy: the next call cannot change it
        if self._out_q is not None:
            scale, zero = self._out_q
            return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
        return y

    def batch(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, labels)`` for ``(n, frames, coeffs)``: one clip at a time, as the file was made
        for (a fixed batch of one lets the converter lower every layer)."""
        if len(x) == 0:
            return np.zeros((0, 0), np.float32)
        return np.concatenate([self(x[i : i + 1]) for i in range(len(x))])


def _quantization(detail: dict[str, Any]) -> tuple[float, int] | None:
    """``(scale, zero point)`` of an integer tensor, ``None`` for a float one."""
    if np.issubdtype(detail["dtype"], np.floating):
        return None
    scale, zero = detail["quantization"]
    return float(scale), int(zero)
