"""Keyword Studio's library: audio in, MFCC features, dataset, model zoo, training, store, inference.

Importing ``kws`` is cheap and never loads TensorFlow; modules that need it go through :mod:`kws._tf`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kws.config import LABELS

if TYPE_CHECKING:
    from pathlib import Path

    from kws.inference import Predictor

__all__ = ["LABELS", "load_predictor"]
__version__ = "0.1.0"


def load_predictor(models_dir: str | Path = "models") -> Predictor:
    """Load every model in ``models_dir`` once, ready for fast ``.predict(waveform, sample_rate)``."""
    from kws.inference import load_predictor as _load

    return _load(models_dir)
