"""The one place TensorFlow and Keras are imported, for training and conversion; every other module gets them here.

The app's server and the CLI's ``predict`` and ``evaluate`` never load this: they answer through LiteRT
(:mod:`kws.lite`).

Why: with tensorflow-cpu 2.21 and pylibsrtp 1.0 (pulled in by aiortc for streamlit-webrtc), importing
TensorFlow first and pylibsrtp afterwards segfaults the process: libsrtp's self-test resolves ``HMAC_Init_ex``
to the BoringSSL copy exported by ``libtensorflow_framework.so.2``. Loading pylibsrtp first binds it to its own
OpenSSL. ``tests/test_import_order.py`` checks this in a fresh interpreter.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: TensorFlow's start-up chatter. TF 2.21 logs through absl before absl is initialised, so ``TF_CPP_MIN_LOG_LEVEL``
#: does not reach these lines. On CPUs where oneDNN turns itself on (AVX-512 VNNI/BF16, AMX), two of its libraries
#: announce it while loading: four lines on stderr that would break the CLI's one-line errors and clutter the app's
#: log (measured: absent on some machines of this kind, present on others).
STARTUP_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on")


@contextlib.contextmanager
def startup_noise_filtered() -> Iterator[None]:
    """Capture file descriptor 2 for the block, then pass on every line but :data:`STARTUP_NOISE`.

    Nothing else is lost: whatever another thread writes meanwhile comes out when the block ends. A process with
    no stderr at all is left alone.
    """
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = fcntl.fcntl(2, fcntl.F_DUPFD_CLOEXEC, 3)
    except OSError:  # fd 2 is closed: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines()
                if line.strip() and not any(noise in line for noise in STARTUP_NOISE)
            ]
            if kept:
                with contextlib.suppress(Exception):
                    print("\n".join(kept), file=sys.stderr, flush=True)


try:  # must precede TensorFlow, see the module docstring
    import pylibsrtp  # noqa: F401
except ImportError:  # the library works without the microphone stack
    pass

with startup_noise_filtered():
    import keras
    import tensorflow as tf

logging.getLogger("tensorflow").setLevel(logging.ERROR)

__all__ = ["keras", "tf"]
