"""Streamlit glue shared by the pages: cached resources and small display helpers.

Models are loaded once per server and model folder (``st.cache_resource``) and never changed after loading;
the key includes the folder's modification time, so a retrained set is picked up without a restart.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from kws import store
from kws.modelsets import active_models_dir

logger = logging.getLogger(__name__)


def _dir_stamp(models_dir: Path) -> float:
    return max((p.stat().st_mtime for p in models_dir.glob("*.json")), default=0.0)


@st.cache_resource(show_spinner="Loading the models…")
def _predictor(models_dir: str, stamp: float):
    from kws.inference import load_predictor

    return load_predictor(models_dir)


def get_predictor():
    """The predictor of the active model set, loaded once per server."""
    models_dir = active_models_dir()
    return _predictor(str(models_dir), _dir_stamp(models_dir))


@st.cache_data(show_spinner=False)
def _model_table(models_dir: str, stamp: float) -> list[dict]:
    return [
        {
            "model": i.name,
            "architecture": i.meta["architecture"],
            "parameters": i.meta["params"],
            "test accuracy": i.meta["test_accuracy"],
            "preset": i.meta["feature_settings"]["name"],
        }
        for i in store.list_models(models_dir)
    ]


def model_table() -> list[dict]:
    """One row per model of the active set, from metadata alone (no TensorFlow needed)."""
    models_dir = active_models_dir()
    return _model_table(str(models_dir), _dir_stamp(models_dir))
