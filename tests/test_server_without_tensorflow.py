"""The app's server never loads TensorFlow or Keras: every page, an upload answered on Try it, Compare's scores.

In a fresh interpreter (this test process has long loaded TensorFlow for training tests). With Keras loaded, Streamlit
calls ``keras.backend.clear_session()`` (a full garbage collection) after every script run, which held the GIL for
~0.3 s per run and starved the WebRTC audio during live spotting; serving through LiteRT keeps it out.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _audio_util import env_without

pytestmark = pytest.mark.slow  # training, conversion or fresh interpreters: not in the fast lane

ROOT = Path(__file__).absolute().parent.parent

CODE = f"""
import io, sys
import numpy as np, soundfile as sf
import streamlit_webrtc.component as component
from streamlit.testing.v1 import AppTest

component.get_this_session_info = lambda: None  # as the page tests do: AppTest has no WebRTC session
at = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=120)
at.run()
shown = []
for page in ("pages/try_it.py", "pages/compare.py", "pages/dataset.py", "pages/retrain.py", "pages/home.py"):
    at.switch_page(page).run()
    assert not at.exception, (page, at.exception)
    shown.append(page)
at.switch_page("pages/try_it.py").run()
t = np.arange(16000) / 16000
wav = io.BytesIO()
sf.write(wav, (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t)).astype(np.float32), 16000, format="WAV")
at.file_uploader[0].set_value(("tone.wav", wav.getvalue(), "audio/wav")).run()
assert not at.exception, at.exception
assert any("Upload: tone.wav" in c.value for c in at.caption), [c.value for c in at.caption]
print(len(shown), "tensorflow" in sys.modules, "keras" in sys.modules)
"""


def test_no_page_loads_tensorflow() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, env=env_without(), timeout=600, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-3:] == ["5", "False", "False"], proc.stdout[-2000:]
