"""Evaluation: accuracy, per-class accuracy and confusion matrix, on the test split or any folder."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kws import cache, cards, config, dataset, store
from kws.cards import Column

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


def score(model: Any, x: np.ndarray, y: np.ndarray, labels: Sequence[str] = config.LABELS) -> Scores:
    """Score a Keras model on features ``x`` with true label indices ``y``."""
    probs = model.predict(x, batch_size=512, verbose=0)
    return scores_from_predictions(y, probs.argmax(axis=1), labels)


@dataclass(frozen=True)
class OpenScores:
    """How a model does in the open world, at one confidence threshold (the way keyword-spotting people measure).

    A clip is *accepted* as a keyword when the model's top answer is a keyword with at least ``threshold``
    probability (:func:`accepted`). ``false_accept_rate``: other-word and noise clips accepted as a keyword;
    ``false_reject_rate``: keyword clips not accepted (answered ``other``, or not sure); ``keyword_accuracy``:
    keyword clips whose top answer is their own word, whatever its probability (the lecture's accuracy).
    """

    keyword_accuracy: float
    false_accept_rate: float
    false_reject_rate: float
    keyword_clips: int
    other_clips: int
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rate_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of the rate ``hits / n``: unlike the normal one, it behaves near
    0% and 100%, where false accepts and accuracies sit."""
    if n <= 0:
        raise ValueError("no clips")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def _top(probs: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per clip: the top answer's index in ``labels``, whether it is a keyword, and its probability."""
    probs = np.asarray(probs)
    top = probs.argmax(axis=1)
    keyword = np.array([label != config.OTHER for label in labels])[top]
    return top, keyword, probs[np.arange(len(top)), top].astype(np.float64)  # thresholds compare in float64


def accepted(probs: np.ndarray, labels: Sequence[str], threshold: float) -> np.ndarray:
    """Per clip, the index (in ``labels``) of the keyword accepted at ``threshold``, or -1 where none is."""
    top, keyword, confidence = _top(probs, labels)
    return np.where(keyword & (confidence >= threshold), top, -1)


def _truth(y_true: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """True labels (four-label indices, :attr:`kws.dataset.Item.label_index`) as indices into ``labels``, -1 for
    other: keyword indices are the same in every label order, and a three-label model has no ``other``."""
    y = np.asarray(y_true)
    return np.where(y < len(config.LABELS), y, -1)


def open_scores(
    y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str], threshold: float = config.LOW_CONFIDENCE
) -> OpenScores:
    """:class:`OpenScores` of answers ``probs`` (in ``labels`` order) to clips of four-label truth ``y_true``."""
    truth = _truth(y_true, labels)
    is_kw = truth >= 0
    answer = accepted(probs, labels, threshold)
    top = np.asarray(probs).argmax(axis=1) if len(truth) else np.zeros(0, np.int64)
    nan = float("nan")
    return OpenScores(
        keyword_accuracy=float(np.mean(top[is_kw] == truth[is_kw])) if is_kw.any() else nan,
        false_accept_rate=float(np.mean(answer[~is_kw] >= 0)) if (~is_kw).any() else nan,
        false_reject_rate=float(np.mean(answer[is_kw] < 0)) if is_kw.any() else nan,
        keyword_clips=int(is_kw.sum()),
        other_clips=int((~is_kw).sum()),
        threshold=float(threshold),
    )


#: The confidence thresholds a DET curve sweeps.
DET_THRESHOLDS: np.ndarray = np.round(np.linspace(0.0, 1.0, 101), 3)


def det_curve(
    y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str], thresholds: np.ndarray = DET_THRESHOLDS
) -> dict[str, list[float]]:
    """False-accept and false-reject rates as the confidence threshold moves (a DET curve's points): at each
    threshold, the rates :func:`open_scores` gives there, from one pass over the answers."""
    is_kw = _truth(y_true, labels) >= 0
    _, keyword, confidence = _top(probs, labels)
    taken = keyword[None, :] & (confidence[None, :] >= np.asarray(thresholds)[:, None])  # (threshold, clip)
    nan = [float("nan")] * len(thresholds)
    return {
        "threshold": [float(t) for t in thresholds],
        "false_accept_rate": taken[:, ~is_kw].mean(axis=1).tolist() if (~is_kw).any() else nan,
        "false_reject_rate": (~taken[:, is_kw]).mean(axis=1).tolist() if is_kw.any() else nan,
    }


def confusion_with_other(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> list[list[int]]:
    """The 4 x 4 confusion (rows: true bed, happy, cat, other; columns: answered the same) of a model of any
    label order: a three-label model never answers ``other``, so its last column is zero."""
    four = config.LABEL_SETS[0]
    answer = np.array([four.index(label) for label in labels])[np.asarray(probs).argmax(axis=1)]
    confusion = np.zeros((len(four), len(four)), dtype=np.int64)
    np.add.at(confusion, (np.asarray(y_true), answer), 1)
    return confusion.tolist()


@dataclass
class Evaluation:
    """Every model's scores on one set of clips, plus each clip's predictions for error browsing."""

    split: str
    paths: list[str]
    y_true: np.ndarray
    predictions: dict[str, np.ndarray]  # model -> (n, n_labels) probabilities
    #: Over the clips of the model's own labels (a three-label model: the keyword clips only).
    scores: dict[str, Scores]
    skipped: list[tuple[str, str]]
    #: Keyword accuracy, false accepts and false rejects over every clip, at the app's operating point.
    open: dict[str, OpenScores] = field(default_factory=dict)
    #: model -> its four-label order (:data:`kws.config.LABEL_SETS`); ``y_true`` is in that order too.
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def confusion(self, model: str) -> list[list[int]]:
        """The model's 4 x 4 confusion over every clip (:func:`confusion_with_other`)."""
        return confusion_with_other(self.y_true, self.predictions[model], self.labels[model])

    def det(self, model: str) -> dict[str, list[float]]:
        """The model's DET curve over every clip (:func:`det_curve`)."""
        return det_curve(self.y_true, self.predictions[model], self.labels[model])


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
    inputs = {s: np.ascontiguousarray(fs.x[mask]) for s, fs in by_settings.items()}
    digests = {s: hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest() for s, x in inputs.items()}
    # two at a time: each model's interpreter lets go of the GIL while it computes (this machine has two cores)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="kws-evaluate") as pool:
        answered = list(pool.map(lambda m: _predictions(m, inputs[m.settings], digests[m.settings]), models))
    predictions, scores, opens = {}, {}, {}
    for m, probs in zip(models, answered):
        predictions[m.name] = probs
        own = y_true < len(m.labels)  # a three-label model is scored on the keyword clips
        scores[m.name] = scores_from_predictions(y_true[own], probs[own].argmax(axis=1), m.labels)
        opens[m.name] = open_scores(y_true, probs, m.labels)
    return Evaluation(
        split=split,
        paths=[p for p, keep in zip(any_set.paths, mask) if keep],
        y_true=y_true,
        predictions=predictions,
        scores=scores,
        skipped=any_set.skipped,
        open=opens,
        labels={m.name: tuple(m.labels) for m in models},
    )


def _predictions(model: LoadedModel, x: np.ndarray, digest: str) -> np.ndarray:
    """``model``'s probabilities for the inputs ``x`` (``digest``: a hash of their bytes), from the cache folder
    where this very file (its checksum) has answered these very inputs before, else computed and kept there.

    Scoring a split answers each clip one call at a time (the files take a batch of one), seconds per model on
    two cores; what the cache keys on is all an answer depends on, so a kept answer is the same answer.
    """
    sha = model.info.tflite_sha256(model.precision)
    if sha is None:
        return model.predict_batch(x)
    key = hashlib.blake2b(f"{sha}|{model.runner.runtime}|{digest}|{x.shape}".encode(), digest_size=12).hexdigest()
    path = config.cache_dir() / f"predictions-{model.name}-{key}.npy"
    try:
        kept = np.load(path, allow_pickle=False)
        if kept.shape == (len(x), len(model.labels)):
            cache.mark_used(path)
            return kept
    except (OSError, ValueError):  # not there yet, or a damaged file: answer again
        pass
    probs = model.predict_batch(x)
    out = io.BytesIO()
    np.save(out, probs, allow_pickle=False)
    try:
        store.write_bytes_atomic(path, out.getvalue())
        cache.prune(keep=path)
    except OSError as err:  # a full or read-only cache folder costs speed, not the result
        logger.warning("could not keep %s's answers in %s: %s", model.name, path.parent, err)
    return probs


#: ``kws evaluate``'s table, one row per model: what the model is from its card; labels, accuracy, accuracy per
#: label and clips (over the model's own labels) and the open-world scores (over every clip) from the evaluation
#: (:func:`fresh_scores`), so a model missing from ``evaluation.open`` has no open-world keys.
COLUMNS: tuple[Column, ...] = (
    cards.MODEL,
    cards.ARCHITECTURE,
    cards.PRESET,
    cards.PARAMS,
    cards.SIZE_KB,
    Column("tflite_kb", lambda c: c.tflite_size_bytes("float32"), cards.kb),
    Column("int8_kb", lambda c: c.tflite_size_bytes("int8"), cards.kb),
    Column("labels"),
    Column("accuracy"),
    Column("per_class", spread="acc_"),
    Column("clips"),
    Column("open", spread=""),
    Column("fit_on", lambda c: c.fit_on, cards.joined("+")),
)

#: The fields of :class:`OpenScores` the table shows, in its order.
OPEN_COLUMNS = ("keyword_accuracy", "false_accept_rate", "false_reject_rate", "keyword_clips", "other_clips")


def fresh_scores(evaluation: Evaluation, name: str) -> dict[str, Any]:
    """Model ``name``'s scores in ``evaluation``, keyed by the :data:`COLUMNS` they fill: the split just
    evaluated, not the test scores its card holds."""
    s = evaluation.scores[name]
    opened = evaluation.open.get(name)
    return {
        "labels": len(evaluation.labels.get(name, ())) or len(s.per_class),
        "accuracy": s.accuracy,
        "per_class": s.per_class,
        "clips": s.n,
        "open": {k: getattr(opened, k) for k in OPEN_COLUMNS} if opened is not None else {},
    }


def table(evaluation: Evaluation, models_dir: str | Path) -> list[dict[str, Any]]:
    """One row per evaluated model, in the evaluation's order (:data:`COLUMNS`): what the model is from its card
    (read from ``models_dir``), what it scored from :func:`fresh_scores`."""
    infos = {i.name: i for i in store.list_models(models_dir)}
    names = list(evaluation.scores)
    model_cards = [infos[name].card for name in names]
    return cards.rows(model_cards, COLUMNS, [fresh_scores(evaluation, name) for name in names])
