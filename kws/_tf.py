"""The one place TensorFlow, Keras and the LiteRT interpreter are imported; every other module gets them here.

Why: with tensorflow-cpu 2.21 and pylibsrtp 1.0 (pulled in by aiortc for streamlit-webrtc), importing
TensorFlow first and pylibsrtp afterwards segfaults the process: libsrtp's self-test resolves ``HMAC_Init_ex``
to the BoringSSL copy exported by ``libtensorflow_framework.so.2``. Loading pylibsrtp first binds it to its own
OpenSSL. ``tests/test_import_order.py`` checks this in a fresh interpreter.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:  # must precede TensorFlow, see the module docstring
    import pylibsrtp  # noqa: F401
except ImportError:  # the library works without the microphone stack
    pass

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

try:  # kws.lite's interpreter, loaded after pylibsrtp like TensorFlow; without it the models answer through XLA
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    Interpreter = None

logging.getLogger("tensorflow").setLevel(logging.ERROR)

__all__ = ["Interpreter", "keras", "tf"]
