"""Shared fixtures: where the dataset is, the streamlit-webrtc patch for AppTest, and a known clip.

``KWS_DATA_DIR`` defaults to ``../shared/data/speech_commands`` next to the checkout when unset, so the tests
find the shared dataset without copying it into the repository. Tests that need the data take the
``data_dir`` fixture and are skipped cleanly where there is none.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the app runs from the checkout; tests import kws and tests.* from it
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("KWS_DATA_DIR", str((ROOT.parent / "shared" / "data" / "speech_commands").resolve()))
# pylibsrtp must be loaded before TensorFlow in any process that may load both (see kws/_tf.py)
try:
    import pylibsrtp  # noqa: F401
except ImportError:
    pass


@pytest.fixture
def data_dir() -> Path:
    """The dataset folder (``KWS_DATA_DIR``); skips the test where it is absent."""
    path = Path(os.environ["KWS_DATA_DIR"])
    if not all((path / word).is_dir() for word in ("bed", "happy", "cat")):
        pytest.skip(f"no Speech Commands dataset at {path} (set KWS_DATA_DIR)")
    return path


@pytest.fixture
def no_webrtc_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a page that calls ``webrtc_streamer`` run under AppTest.

    AppTest has no real Runtime, so streamlit-webrtc's session lookup fails with
    ``Mock object has no attribute '_session_mgr'``; without a session the component is inert (never playing).
    """
    component = pytest.importorskip("streamlit_webrtc.component")
    monkeypatch.setattr(component, "get_this_session_info", lambda: None)


@pytest.fixture
def damaged_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped set, copied, with its last model's ``.tflite`` (what answers) cut off after 1,000 bytes, made
    the app's active set: what a failed copy or a half-finished download leaves behind."""
    from kws import config, modelsets, store
    from kws.ui import state

    folder = tmp_path / "damaged"
    shutil.copytree(config.SHIPPED_MODELS_DIR, folder)
    victim = store.list_models(folder)[-1].tflite_path()
    victim.write_bytes(victim.read_bytes()[:1000])
    monkeypatch.setattr(modelsets, "active_models_dir", lambda: folder)
    monkeypatch.setattr(state, "active_models_dir", lambda: folder)
    return victim


@pytest.fixture(scope="session")
def predictor():
    """The app's own cached predictor (``kws.ui.state.get_predictor``): AppTests in this process reuse it."""
    from kws.ui import get_predictor

    return get_predictor()


@pytest.fixture(scope="session")
def known_clips(predictor) -> dict[str, Path]:
    """For each word that has one, a test-split clip that every current model names correctly and confidently.

    Chosen deterministically (first such clip in path order among each word's first 40), so tests work with any
    model set.
    """
    path = Path(os.environ["KWS_DATA_DIR"])
    if not path.is_dir():
        pytest.skip(f"no Speech Commands dataset at {path}")
    from kws.audio import load_audio
    from kws.examples import split_examples

    examples = split_examples(path, "test")
    found = {}
    for word in ("cat", "happy", "bed"):
        for example in [e for e in examples if e.word == word][:40]:
            prediction = predictor.predict_clip(load_audio(example.path))
            if all(a.word == word and not a.low_confidence for a in prediction.answers) and not prediction.no_speech:
                found[word] = example.path
                break
    return found


@pytest.fixture(scope="session")
def other_clip(predictor) -> Path:
    """A test-split clip of another word (not a keyword) that every model with an ``other`` answer answers other,
    chosen deterministically (the first in path order among 60); skips for a model set without ``other``."""
    from kws import config, dataset
    from kws.audio import load_audio

    path = Path(os.environ["KWS_DATA_DIR"])
    if not path.is_dir():
        pytest.skip(f"no Speech Commands dataset at {path}")
    if not any(config.OTHER in m.labels for m in predictor.models):
        pytest.skip("no model of this set answers other")
    items = dataset.scan(path, other=True)
    candidates = [it for it in items if it.label == config.OTHER and not it.is_noise and it.split == "test"][:60]
    for item in candidates:
        prediction = predictor.predict_clip(load_audio(item.path))
        if not prediction.no_speech and all(
            a.word == config.OTHER for a, m in zip(prediction.answers, predictor.models) if config.OTHER in m.labels
        ):
            return item.path
    pytest.skip("no test clip of another word that every model answers other")


@pytest.fixture(scope="session")
def known_clip(known_clips) -> tuple[Path, str]:
    """One of :func:`known_clips`: ``(path, word)``, trying cat, happy, bed in that order."""
    if not known_clips:
        pytest.skip("no test clip that every model names correctly")
    word, path = next(iter(known_clips.items()))
    return path, word
