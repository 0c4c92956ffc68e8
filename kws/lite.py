"""The serving engine: a model's ``.tflite`` file run by the LiteRT interpreter, without TensorFlow.

Every shipped model answers through its TensorFlow Lite file (float32, or the int8 copy); TensorFlow is needed only
to train and to convert (:mod:`kws.convert`). The interpreter comes from ``ai_edge_litert``, which loads in a fifth
of a second and, unlike TensorFlow, does not clash with streamlit-webrtc's libsrtp, so the app's server can load it
in any order. Where ``ai_edge_litert`` is missing, the same file runs on TensorFlow's own ``tf.lite.Interpreter``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import sys
import threading
import warnings
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

    def __init__(self, flatbuffer: bytes, preserve_all_tensors: bool = False):
        """``preserve_all_tensors`` keeps every intermediate tensor readable after a run, for
        :meth:`first_convolution`: LiteRT's debugging option, which costs memory and speed, so never for serving."""
        interpreter, self.runtime = interpreter_class()
        options = {"experimental_preserve_all_tensors": True} if preserve_all_tensors else {}
        with _native_stderr_silenced(), warnings.catch_warnings():  # XNNPACK announces itself on stderr
            warnings.filterwarnings("ignore", "Warning: Enabling `experimental_preserve_all_tensors`")
            self._interpreter = interpreter(model_content=flatbuffer, num_threads=1, **options)
            self._interpreter.allocate_tensors()
        self._preserved = preserve_all_tensors
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

    def _input(self, x: np.ndarray) -> np.ndarray:
        """MFCCs ``(1, frames, coeffs)`` as the interpreter takes them: quantized for a full-integer model."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape != self.input_shape:
            raise ValueError(f"expected input of shape {self.input_shape}, got {x.shape}")
        if self._in_q is not None:
            scale, zero = self._in_q
            info = np.iinfo(self.input_dtype)
            return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(self.input_dtype)
        return np.ascontiguousarray(x)

    def _run(self, x: np.ndarray, tensor: int) -> np.ndarray:
        """Run on MFCCs ``(1, frames, coeffs)`` and read ``tensor`` (a copy: the next call cannot change it)."""
        x = self._input(x)
        with self._lock:
            self._interpreter.set_tensor(self._in, x)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(tensor)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``(1, labels)`` for MFCCs ``(1, frames, coeffs)``."""
        return _dequantized(self._run(x, self._out), self._out_q)

    def batch(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, labels)`` for ``(n, frames, coeffs)``: one clip at a time, as the file was made
        for (a fixed batch of one lets the converter lower every layer)."""
        if len(x) == 0:
            return np.zeros((0, 0), np.float32)
        return np.concatenate([self(x[i : i + 1]) for i in range(len(x))])

    @functools.cached_property
    def _first_conv(self) -> dict[str, Any] | None:
        """The first ``CONV_2D``'s output tensor (its details), in execution order; None without one. Looked up
        when first asked for: serving interpreters never are."""
        convs = [op for op in self._interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
        if not convs:
            return None
        first = int(convs[0]["outputs"][0])
        return next((d for d in self._interpreter.get_tensor_details() if d["index"] == first), None)

    @property
    def has_convolution(self) -> bool:
        """True for a model with a 2-D convolution (the CNNs, the ResNet)."""
        return self._first_conv is not None

    def first_convolution(self, x: np.ndarray) -> np.ndarray | None:
        """What the model's first 2-D convolution (activation included, where the converter fused it) gives for
        MFCCs ``(1, frames, coeffs)``: ``(height, width, channels)`` float32, dequantized for an int8 model; None
        for a model with no ``CONV_2D`` (the LSTM, the perceptron).

        Read from the ``.tflite`` file itself, so it is the serving model's own arithmetic: the first ``CONV_2D``
        in the interpreter's execution order, its output tensor kept by ``preserve_all_tensors``.
        """
        if not self._preserved:
            raise ValueError("first_convolution needs a LiteRunner made with preserve_all_tensors=True")
        detail = self._first_conv
        if detail is None:
            return None
        return _dequantized(self._run(x, detail["index"]), _quantization(detail))[0]


def _dequantized(y: np.ndarray, quant: tuple[float, int] | None) -> np.ndarray:
    """``y`` as float32: an integer tensor mapped back through its ``(scale, zero point)``, a float one as it is."""
    if quant is None:
        return y
    scale, zero = quant
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


def _quantization(detail: dict[str, Any]) -> tuple[float, int] | None:
    """``(scale, zero point)`` of an integer tensor, ``None`` for a float one."""
    if np.issubdtype(detail["dtype"], np.floating):
        return None
    scale, zero = detail["quantization"]
    return float(scale), int(zero)
