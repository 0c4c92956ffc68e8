"""Evaluation: accuracy, per-class accuracy and confusion matrix, on the test split or any folder."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kws import config, dataset, features, store

if TYPE_CHECKING:
    from kws.inference import LoadedModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scores:
    """How one model did on a set of clips; ``confusion[true][predicted]`` counts clips."""

    accuracy: float
    per_class: dict[str, float]
    confusion: list[list[int]]
    n: int


def scores_from_predictions(y_true: np.ndarray, y_pred: np.ndarray, labels=config.LABELS) -> Scores:
    """Accuracy, per-class accuracy (recall) and confusion matrix from label indices."""
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (np.asarray(y_true), np.asarray(y_pred)), 1)
    totals = confusion.sum(axis=1)
    per_class = {
        label: float(confusion[i, i] / totals[i]) if totals[i] else float("nan") for i, label in enumerate(labels)
    }
    n = int(confusion.sum())
    accuracy = float(np.trace(confusion) / n) if n else float("nan")
    return Scores(accuracy=accuracy, per_class=per_class, confusion=confusion.tolist(), n=n)


def score(model: Any, x: np.ndarray, y: np.ndarray) -> Scores:
    """Score a Keras model on features ``x`` with true label indices ``y``."""
    probs = model.predict(x, batch_size=512, verbose=0)
    return scores_from_predictions(y, probs.argmax(axis=1))


@dataclass
class Evaluation:
    """Every model's scores on one set of clips, plus each clip's predictions for error browsing."""

    split: str
    paths: list[str]
    y_true: np.ndarray
    predictions: dict[str, np.ndarray]  # model -> (n, n_labels) probabilities
    scores: dict[str, Scores]
    skipped: list[tuple[str, str]]


def evaluate(
    models_dir: str | Path,
    data_dir: str | Path | None = None,
    split: str = "test",
    progress: dataset.Progress | None = None,
    models: Sequence[LoadedModel] | None = None,
    precision: str = "float32",
) -> Evaluation:
    """Score every model in ``models_dir`` on ``split`` ("test", "validation", "train" or "all") of a dataset.

    Each model gets features made with its own saved settings (one read of the clips for all of them).
    ``models``: those of ``models_dir`` already loaded (the app's cached predictor holds them), so they are not
    loaded a second time. ``precision``: which TFLite files answer when the models are loaded here.
    """
    from kws.inference import load_models

    if split not in (*dataset.SPLITS, "all"):
        raise ValueError(f"unknown split {split!r}; choose from: {', '.join((*dataset.SPLITS, 'all'))}")
    models = load_models(models_dir, precision) if models is None else models
    only = None if split == "all" else (split,)
    by_settings = dataset.load_feature_sets([m.settings for m in models], data_dir, progress, splits=only)
    any_set = next(iter(by_settings.values()))
    mask = np.ones(len(any_set.y), bool) if split == "all" else any_set.splits == split
    if not mask.any():
        raise dataset.DatasetMissingError(f"The {split} split of this dataset holds no clips.")
    y_true = any_set.y[mask]
    predictions, scores = {}, {}
    for m in models:
        fs = by_settings[m.settings]
        probs = m.predict_batch(fs.x[mask])
        predictions[m.name] = probs
        scores[m.name] = scores_from_predictions(y_true, probs.argmax(axis=1), m.labels)
    return Evaluation(
        split=split,
        paths=[p for p, keep in zip(any_set.paths, mask) if keep],
        y_true=y_true,
        predictions=predictions,
        scores=scores,
        skipped=any_set.skipped,
    )


def _kb(size_bytes: int | None) -> float | None:
    return None if size_bytes is None else round(size_bytes / 1024, 1)


def table(evaluation: Evaluation, models_dir: str | Path) -> list[dict[str, Any]]:
    """One row per model: architecture, parameters, size, accuracy and per-class accuracy."""
    infos = {i.name: i for i in store.list_models(models_dir)}
    rows = []
    for name, s in evaluation.scores.items():
        meta = infos[name].meta
        rows.append(
            {
                "model": name,
                "architecture": meta["architecture"],
                "preset": features.label(meta["feature_settings"]),
                "params": meta["params"],
                "size_kb": round(meta["size_bytes"] / 1024, 1),
                "tflite_kb": _kb(infos[name].tflite_size_bytes("float32")),
                "int8_kb": _kb(infos[name].tflite_size_bytes("int8")),
                "accuracy": s.accuracy,
                **{f"acc_{label}": v for label, v in s.per_class.items()},
                "clips": s.n,
                "fit_on": "+".join(infos[name].fitted_splits),
            }
        )
    return rows
