"""Project-wide constants and the environment variables that move files around."""

from __future__ import annotations

import os
from pathlib import Path

#: The three keywords, in the order every model, table and chart uses.
LABELS: tuple[str, ...] = ("bed", "happy", "cat")

#: The fourth answer of an open-world model: any word that is not a keyword, and background noise (TensorFlow's
#: ``_unknown_`` and ``_silence_`` in one class). Its clips are every dataset folder but the keywords'.
OTHER = "other"

#: The label orders a model may have: the lecture's three words, or the three words and ``other`` last.
LABEL_SETS: tuple[tuple[str, ...], ...] = (LABELS + (OTHER,), LABELS)


#: The app's operating point: a keyword answer below this probability is "not sure" (not accepted), and scores
#: of false accepts and rejects are taken there (``kws.inference.Thresholds``, ``kws.evaluate.open_scores``).
LOW_CONFIDENCE = 0.6


def labels_for(other: bool) -> tuple[str, ...]:
    """The label order of a model that learns ``other`` (``other=True``) or only the three words."""
    return LABEL_SETS[0] if other else LABEL_SETS[1]


#: Architectures by name with display names, in the order the lecture introduced them, then ours.
ARCHITECTURES: dict[str, str] = {
    "perceptron": "Perceptron",
    "cnn1": "CNN, one convolution",
    "cnn2": "CNN, two convolutions",
    "cnn2_dropout": "CNN, two convolutions + dropout",
    "lstm": "LSTM",
    "best": "Small ResNet",
}

#: Learning-rate schedules ``kws.train`` knows; the first is the default.
SCHEDULES: tuple[str, ...] = ("cosine", "plateau", "constant")

#: Which networks a run builds under the architecture names: today's (``kws.zoo.ZOO``), or the lecture's own
#: at its layer sizes on raw coefficients (``kws.zoo.LECTURE_ZOO``, no ``best``).
ZOOS: tuple[str, ...] = ("today", "lecture")

#: What a model may be fitted on; the first is the default. The second is the final refit once a recipe has been
#: chosen on validation: more speakers, but no validation score of its own.
FIT_ON: tuple[str, ...] = ("train", "train+validation")


def fit_splits(fit_on: str | None) -> tuple[str, ...]:
    """A ``fit_on`` value as split names, in the order their clips are stacked; none means the train split."""
    return tuple((fit_on or FIT_ON[0]).split("+"))


PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Shipped models: committed to git, never overwritten by a retrain.
SHIPPED_MODELS_DIR = PROJECT_ROOT / "models"

#: The second shipped set: the lecture's five networks trained as it trained them (its input, three words).
LECTURE_MODELS_DIR = SHIPPED_MODELS_DIR / "lecture"

DATASET_ATTRIBUTION = "Speech Commands dataset by Google, CC BY 4.0"
DATASET_URL = "http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz"


def data_dir() -> Path:
    """Where the dataset lives: ``KWS_DATA_DIR``, else ``data/speech_commands`` in the project."""
    return Path(os.environ.get("KWS_DATA_DIR", PROJECT_ROOT / "data" / "speech_commands"))


def cache_dir() -> Path:
    """Feature cache: ``KWS_CACHE_DIR``, else ``.cache/`` in the project (git-ignored)."""
    return Path(os.environ.get("KWS_CACHE_DIR", PROJECT_ROOT / ".cache"))


def runs_dir() -> Path:
    """Retrained model sets and the active-set pointer: ``KWS_RUNS_DIR``, else ``runs/`` (git-ignored)."""
    return Path(os.environ.get("KWS_RUNS_DIR", PROJECT_ROOT / "runs"))


def retrain_enabled() -> bool:
    """Public deployments set ``KWS_DISABLE_RETRAIN=1`` to hide training."""
    return os.environ.get("KWS_DISABLE_RETRAIN", "").strip().lower() not in {"1", "true", "yes", "on"}
