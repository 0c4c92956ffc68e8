"""TensorFlow and streamlit-webrtc in one process: loading TensorFlow first used to segfault (see kws/_tf.py).

Each check runs in a fresh interpreter: in this test process the order is already decided by whatever
was imported first. A crash shows as a negative return code (-11 for SIGSEGV).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from _audio_util import env_without

pytestmark = pytest.mark.slow  # training, conversion or fresh interpreters: not in the fast lane

pytest.importorskip("streamlit_webrtc")


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_without(), timeout=300)


ANSWER = "import numpy as np; import kws; p = kws.load_predictor('models'); p.predict(np.zeros(16000), 16000)"


@pytest.mark.parametrize(
    "code",
    [
        f"{ANSWER}; import streamlit_webrtc; import kws._tf",
        f"import streamlit_webrtc; {ANSWER}; import kws._tf",
        f"import tensorflow; {ANSWER}",
        f"import keras; {ANSWER}",
        f"import kws.train; import streamlit_webrtc; {ANSWER}",
    ],
    ids=["kws-first", "webrtc-first", "tensorflow-first", "keras-first", "training-first"],
)
def test_import_order_does_not_crash(code: str) -> None:
    """Answering never loads TensorFlow or libsrtp, so a notebook that imported TensorFlow or Keras first can use
    the models; a process that trains and streams loads them through :mod:`kws._tf`, which orders them. (A
    program that imports TensorFlow itself and then streamlit-webrtc still crashes, with or without kws.)"""
    proc = run(code + "; print('ok')")
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.strip() == "ok"


def test_srtp_works_after_tensorflow() -> None:
    """Not just importable: libsrtp's self-test and an SRTP protect/unprotect round trip run after TF loaded."""
    pytest.importorskip("pylibsrtp")
    code = """
import kws._tf
from kws._tf import tf
import pylibsrtp
tf.constant([1.0]) + 1.0
key = bytes(range(30))
policy = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
rx = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND)
packet = bytes.fromhex("80080001000000010000000a") + bytes(160)
protected = pylibsrtp.Session(policy=policy).protect(packet)
assert pylibsrtp.Session(policy=rx).unprotect(protected) == packet
print("ok")
"""
    proc = run(code)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.strip() == "ok"


def test_loading_tensorflow_prints_nothing() -> None:
    """On CPUs where oneDNN turns itself on, TensorFlow's libraries announce it on fd 2 while loading, past
    ``TF_CPP_MIN_LOG_LEVEL``: every process that imports the library must stay quiet, not only the CLI."""
    proc = run("import kws.inference; import kws._tf as t; print(t.tf.constant(2.0).numpy())")
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert (proc.stdout, proc.stderr) == ("2.0\n", "")


def test_the_start_up_filter_passes_on_everything_else() -> None:
    """Only the known noise is dropped: another line written to fd 2 meanwhile (by C code or Python) comes out
    after the block. (A process without stderr: ``test_lite.test_a_closed_stderr_leaves_stdout_alone``.)"""
    code = """
import os, sys
from kws._tf import STARTUP_NOISE, startup_noise_filtered
with startup_noise_filtered():
    os.write(2, f"I0000 port.cc:153] {STARTUP_NOISE[1]}. You may see...\\n".encode())
    os.write(2, b"a real warning\\n")
    print("from python", file=sys.stderr)
    print("still on stdout")
print("after", file=sys.stderr)
"""
    proc = run(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "still on stdout\n"
    assert proc.stderr == "a real warning\nfrom python\nafter\n"
