"""What the pages share per server and per visitor: which model set this visitor answers with, the models
loaded once per server, the warm-up, and the cached tables and dataset indexes.

Models are loaded once per server and model folder (``st.cache_resource``) and never changed after loading, and
so are the large read-only tables (example clips, the dataset index, a split's evaluation): ``st.cache_data``
would hand every rerun a fresh unpickled copy (thousands of paths, ~25 ms a rerun for the examples alone), so
callers read them and never change them. Every cache key includes the folder's (or the dataset's) modification
time, so a retrained set or a changed dataset is picked up without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from kws import cards, config, modelsets, store

logger = logging.getLogger(__name__)


#: The visitor's choice of model set: "app" (the shipped or retrained set in use) or "lecture". A plain session
#: key, set by the sidebar's radio (``_SWITCH_KEY``) when it changes, so a run that draws no sidebar keeps it.
SET_KEY = "model_set"


def active_models_dir() -> Path:
    """The folder this visitor's pages answer with: the lecture's set where they chose it in the sidebar, else
    the app's set (the shipped models or the retrained set in use). One visitor's choice moves no one else's."""
    if st.session_state.get(SET_KEY) == "lecture" and config.LECTURE_MODELS_DIR.is_dir():
        return config.LECTURE_MODELS_DIR
    return modelsets.active_models_dir()


def through_router() -> None:
    """Send a page opened by its own URL on a freshly started server through ``app.py``'s router.

    With a ``pages/`` folder beside ``app.py``, Streamlit 1.67 starts in its old folder-based mode and, until
    some session has run ``st.navigation``, runs a requested page file alone: no shared sidebar, no wide
    layout, file names as titles. Every page calls this first; in that mode it turns the flag off and reruns,
    and the rerun runs ``app.py``, which routes to the same URL. (``PagesManager`` is internal, hence the pin.)
    AppTest resets the flag before every run, as if each were a fresh server; rerunning there would swallow
    the widget event that started the run, so under AppTest pages keep running as they always have.
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not config.get_option("global.appTest"):
        PagesManager.uses_pages_directory = False
        st.rerun()


def _dir_stamp(models_dir: Path) -> float:
    return max((p.stat().st_mtime for p in models_dir.glob("*.json")), default=0.0)


def _data_stamp(data_dir: Path) -> float:
    """Adding or removing clips changes a word folder's mtime, so this key notices a changed dataset."""
    if not data_dir.is_dir():
        return 0.0
    return max((p.stat().st_mtime for p in data_dir.iterdir() if p.is_dir()), default=0.0)


@st.cache_resource(show_spinner="Loading the models…", max_entries=4)  # bounded: sets can be switched often
def _predictor(models_dir: str, stamp: float):
    from kws.inference import load_predictor

    return load_predictor(models_dir)


def get_predictor(models_dir: Path | None = None):
    """The predictor of ``models_dir``, by default this visitor's set (:func:`active_models_dir`), loaded once
    per server."""
    models_dir = models_dir or active_models_dir()
    return _predictor(str(models_dir), _dir_stamp(models_dir))


def warm_up() -> None:
    """Load the active models in the background, once per server, as soon as any page is opened.

    A page that needs them meanwhile waits for the same computation (Streamlit computes each cached value once)
    rather than starting its own. Scoring the test split is left to the first visit to Compare, which asks for it:
    here it would take both cores while the first visitor's live take needs them. Not under AppTest, where every
    run is a fresh server and a thread would outlive its test. The thread imports only what the models need:
    Plotly reads pandas from ``sys.modules`` without taking the import lock, so a pandas half-imported here
    breaks a chart built meanwhile on the page's thread.
    """
    from streamlit import config

    if not config.get_option("global.appTest"):
        _warm_up_thread()


_WARM_UP_THREAD = "kws-warm-up"


def _not_from_warm_up(record: logging.LogRecord) -> bool:
    """Drop Streamlit's "missing ScriptRunContext" warning for the warm-up thread, which has no page by design
    (each cached call warned; the warning still tells when another thread calls ``st.*`` by mistake)."""
    return record.threadName != _WARM_UP_THREAD


@st.cache_resource(show_spinner=False)
def _warm_up_thread() -> threading.Thread:
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_not_from_warm_up)
    thread = threading.Thread(target=_warm_up, name=_WARM_UP_THREAD, daemon=True)
    thread.start()
    return thread


def _warm_up() -> None:
    from kws.dataset import DatasetMissingError

    start = time.monotonic()
    try:
        get_predictor(modelsets.active_models_dir())  # the app's set: a thread has no visitor to ask
        logger.info("warm-up: models loaded in %.1f s", time.monotonic() - start)
    except (store.ModelStoreError, DatasetMissingError) as err:  # the page that needs them says so, in its place
        logger.info("warm-up stopped: %s", err)
    except Exception:
        logger.exception("warm-up failed; pages will load what they need themselves")


def cannot_load(err: store.ModelStoreError) -> str:
    """The one sentence every page shows when the active set's models cannot be loaded."""
    return f"The models could not be loaded: {err}"


def predictor_problem() -> str | None:
    """Load the active set's predictor now (once per server), so the first word waits for nothing; or why it
    cannot be loaded, in one sentence for the page, never a traceback (a damaged model file, say)."""
    try:
        get_predictor()
    except store.ModelStoreError as err:
        return cannot_load(err)
    return None


def analyse(
    key: str, source: str, load: Callable[[], Any], true_word: str | None = None, spotted: list | None = None
) -> None:
    """Decode (``load`` gives a :class:`kws.audio.Clip`) and classify into ``st.session_state[key]``, with the
    words ``spotted`` during a live take, if it was spotted (:func:`live_spotting`).

    Bad input becomes one sentence for the user, kept there until the next clip; anything unexpected is logged
    for the server and shown as one sentence too, never as a traceback.
    """
    from kws.audio import AudioError

    try:
        prediction = get_predictor().predict_clip(load())
        st.session_state[key] = {
            "source": source,
            "prediction": prediction,
            "true_word": true_word,
            "spotted": spotted,
        }
    except AudioError as err:
        st.session_state[key] = {"source": source, "error": str(err)}
    except store.ModelStoreError as err:
        st.session_state[key] = {"source": source, "error": cannot_load(err)}
    except Exception:
        logger.exception("analysing %s failed", source)
        st.session_state[key] = {"source": source, "error": "Something went wrong analysing this clip."}


def is_new_file(upload, key: str) -> bool:
    """True once per newly given file (upload or recording), so a rerun does not analyse the same file again.

    ``key`` is a session-state key of the calling page (e.g. ``tryit_upload_seen``) that remembers the file id.
    """
    seen = None if upload is None else upload.file_id
    new = upload is not None and st.session_state.get(key) != seen
    st.session_state[key] = seen
    return new


@st.cache_resource
def training_manager():
    """The server's one background-training manager (Retrain page): shared by every session and rerun."""
    from kws.jobs import TrainingManager

    return TrainingManager()


@st.cache_data(show_spinner=False)
def _model_table(models_dir: str, stamp: float) -> list[dict]:
    return cards.home_rows(store.list_models(models_dir))


def model_table() -> list[dict]:
    """One row per model of the active set, from metadata alone (no TensorFlow needed)."""
    models_dir = active_models_dir()
    return _model_table(str(models_dir), _dir_stamp(models_dir))


@st.cache_data(show_spinner=False)
def _model_infos(models_dir: str, stamp: float) -> list[store.ModelInfo]:
    return store.list_models(models_dir)


def model_infos() -> list[store.ModelInfo]:
    """Every model of the active set with its metadata (no model is loaded)."""
    models_dir = active_models_dir()
    return _model_infos(str(models_dir), _dir_stamp(models_dir))


@st.cache_resource(show_spinner=False, max_entries=4)
def _example_clips(directory: str, data_stamp: float) -> list:
    from kws.examples import split_examples

    return split_examples(directory, "test")


def example_clips() -> list:
    """Test-split clips for "Try an example" (indexed once per dataset folder); ``[]`` when there is no dataset."""
    from kws.config import data_dir
    from kws.dataset import DatasetMissingError

    try:
        return _example_clips(str(data_dir()), _data_stamp(data_dir()))
    except DatasetMissingError:
        return []


@st.cache_resource(show_spinner="Scoring every model on the test split…", max_entries=4)
def _evaluation(models_dir: str, stamp: float, data_dir: str, data_stamp: float, split: str):
    from kws.evaluate import evaluate

    # the cached predictor's models: loading and compiling all six again cost seconds more per set
    return evaluate(models_dir, data_dir, split, models=_predictor(models_dir, stamp).models)


def evaluation(split: str = "test"):
    """Every active model's predictions on a split (:class:`kws.evaluate.Evaluation`); raises DatasetMissingError."""
    from kws.config import data_dir

    models_dir, data = active_models_dir(), data_dir()
    return _evaluation(str(models_dir), _dir_stamp(models_dir), str(data), _data_stamp(data), split)


@st.cache_resource(show_spinner="Reading every clip of the dataset…", max_entries=4)
def _dataset_stats(data_dir: str, data_stamp: float):
    from kws.insights import dataset_stats

    return dataset_stats(data_dir)


def dataset_stats():
    """Durations, loudness, words, speakers and splits of every clip (:class:`kws.insights.DatasetStats`)."""
    from kws.config import data_dir

    return _dataset_stats(str(data_dir()), _data_stamp(data_dir()))


@st.cache_resource(show_spinner=False, max_entries=4)
def _dataset_items(data_dir: str, data_stamp: float):
    from kws.dataset import scan

    return scan(data_dir, other=True)


def dataset_items():
    """Every clip of the dataset with its word, speaker and split; raises DatasetMissingError."""
    from kws.config import data_dir

    return _dataset_items(str(data_dir()), _data_stamp(data_dir()))
