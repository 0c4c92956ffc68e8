"""The README's code answers a real WAV as the app does: the lines a newcomer copies must run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from _audio_util import env_without, word_like

from kws import inference
from kws.config import SHIPPED_MODELS_DIR

ROOT = Path(__file__).absolute().parent.parent


def test_the_downloaded_model_snippet_answers_like_the_app(tmp_path) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    sf.write(tmp_path / "clip.wav", word_like(0.6, seed=4), 16000)
    (tmp_path / "models").symlink_to(SHIPPED_MODELS_DIR)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_without() | {"PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = dict(re.findall(r"'(\w+)': (?:np\.float32\()?([0-9.e-]+)", proc.stdout))
    answer = next(
        a
        for a in inference.load_predictor(SHIPPED_MODELS_DIR).predict(word_like(0.6, seed=4), 16000).answers
        if a.name == "cnn1"
    )
    assert set(printed) == set(answer.probabilities)
    np.testing.assert_allclose(
        [float(printed[k]) for k in answer.probabilities], list(answer.probabilities.values()), atol=2e-3
    )
