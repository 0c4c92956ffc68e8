"""The numbers behind the Compare and Dataset pages, kept out of the pages so they can be unit-tested.

Three groups: the model comparison (metadata plus each model's latency), the test clips a
model gets wrong (with what every other model said), and dataset statistics with clip browsing. Nothing here
imports Streamlit; TensorFlow is only touched through models handed in by the caller.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

from kws import cards, config, dataset
from kws.audio import load_audio
from kws.cards import Column
from kws.features import FeatureSettings
from kws.segment import Window, loudness_db, model_input

if TYPE_CHECKING:
    from kws.evaluate import Evaluation
    from kws.store import ModelInfo

logger = logging.getLogger(__name__)

# --- comparing models -------------------------------------------------------------------------------------

#: Column titles for the comparison table (keys stay short so charts can address them). Titles are short so the
#: whole table fits a laptop's page (it had 14 columns 1,386 px wide in 904 px of room); :data:`COLUMN_HELP`
#: says the rest in each header's tooltip.
COLUMN_TITLES: dict[str, str] = {
    "model": "model",
    "architecture": "architecture",
    "params": "params",
    "size_kb": "KB",
    "accuracy": "test accuracy",
    "latency_ms": "ms / clip",
    "train_s": "train (s)",
    "epochs": "epochs",
    "overfit_gap": "train − val",
    "preset": "features",
    "fit_on": "learnt from",
    "set": "set",
    "test_clips": "test clips",
    "keyword_accuracy": "keywords",
    "false_accept_rate": "false accepts",
    "false_reject_rate": "false rejects",
}

#: Header tooltips of the comparison table; ``acc_<word>`` columns get theirs from :func:`column_help`.
COLUMN_HELP: dict[str, str] = {
    "params": "Trainable and fixed weights in the network",
    "size_kb": "Size of the saved model file, in kilobytes",
    "accuracy": (
        "Share of the test clips (speakers never heard in training) of the model's own labels that it names right"
    ),
    "keyword_accuracy": "Share of the test keyword clips whose top answer is their own word",
    "false_accept_rate": (
        "Share of the test clips of other words and noise the model names as a keyword with at least 60% "
        "confidence (a three-label model has no other answer)"
    ),
    "false_reject_rate": "Share of the test keyword clips answered other, or with less than 60% confidence",
    "latency_ms": (
        "Median time to answer one clip: finding the word, MFCCs and one forward pass through the model's "
        "TensorFlow Lite copy (XLA where a model will not convert)"
    ),
    "train_s": "Wall-clock seconds the training run took on the machine that trained it",
    "epochs": "Passes over the training clips before training stopped",
    "overfit_gap": (
        "Training minus validation accuracy at the last epoch, in percentage points: how much it learnt its speakers"
        " by heart. A refit on train + validation has no validation speakers left, so no gap"
    ),
    "preset": "The feature settings the model was trained on (and is always fed)",
    "fit_on": "The dataset splits it learnt from; a final refit also learnt the validation speakers",
}


def column_title(key: str) -> str:
    """The header of comparison column ``key`` (a per-word accuracy column is titled by its word alone)."""
    return COLUMN_TITLES.get(key, key.removeprefix("acc_"))


def column_help(key: str) -> str | None:
    """The header tooltip of comparison column ``key``, if it has one."""
    if key.startswith("acc_"):
        return f"Share of the test clips of '{key.removeprefix('acc_')}' the model names right (its recall)"
    return COLUMN_HELP.get(key)


def overfit_gap(history: Mapping[str, Sequence[float]]) -> float | None:
    """Training minus validation accuracy at the last epoch: how much a model learnt its speakers by heart."""
    train, val = history.get("accuracy") or [], history.get("val_accuracy") or []
    if not train or not val:
        return None
    return float(train[-1] - val[-1])


#: The Compare page's table, one row per model (titles: :data:`COLUMN_TITLES`). ``latency_ms`` is measured on
#: the page, so it comes in as an extra; a final refit also learnt the validation speakers, so it has no
#: validation curve or gap.
COMPARISON_COLUMNS: tuple[Column, ...] = (
    cards.MODEL,
    cards.ARCHITECTURE,
    cards.PARAMS,
    cards.SIZE_KB,
    Column("accuracy", lambda c: c.test_accuracy),
    Column("per_class", lambda c: c.per_class_accuracy, spread="acc_"),
    Column("keyword_accuracy", lambda c: c.open_world_on("test").keyword_accuracy),
    Column("false_accept_rate", lambda c: c.open_world_on("test").false_accept_rate),
    Column("false_reject_rate", lambda c: c.open_world_on("test").false_reject_rate),
    Column("latency_ms"),
    Column("train_s", lambda c: c.train_seconds, cards.rounded(1)),
    Column("epochs", lambda c: c.epochs),
    Column("overfit_gap", lambda c: overfit_gap(c.history)),
    cards.PRESET,
    Column("fit_on", lambda c: c.fit_on, cards.joined(" + ")),
)


def comparison_rows(infos: Sequence[ModelInfo], latency_ms: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """One row per model from its metadata alone (no dataset needed); latency is ``None`` where unmeasured."""
    latency_ms = latency_ms or {}
    model_cards = cards.cards_of(infos)
    return cards.rows(model_cards, COMPARISON_COLUMNS, [{"latency_ms": latency_ms.get(c.name)} for c in model_cards])


#: The comparison columns about how a model was built and trained (the rest: what it scores and costs to run).
TRAINING_COLUMNS = ("architecture", "train_s", "epochs", "overfit_gap", "preset", "fit_on")


def split_table(rows: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """:func:`comparison_rows` as two tables, each keyed by model: what a model scores and costs to run, and how
    it was built and trained. All columns in one table would be ~1,150 px wide, wider than a laptop's page, and
    scrolling it sideways hides the latency; the training columns sit best beside the training curves anyway."""
    scores = [{k: v for k, v in row.items() if k not in TRAINING_COLUMNS} for row in rows]
    training = [{"model": row["model"], **{k: row[k] for k in TRAINING_COLUMNS if k in row}} for row in rows]
    for row in training:
        if "overfit_gap" in row:
            row["overfit_gap"] = gap_text(row["overfit_gap"])
    return scores, training


def gap_text(gap: float | None) -> str:
    """The overfitting gap as a reader takes it: "+1.2 pts" (a difference of two accuracies is in points, not
    percent), and "— (refit)" where there is no validation curve, which the table showed as "None"."""
    return "— (refit)" if gap is None else f"{gap * 100:+.1f} pts"


def histories(infos: Sequence[ModelInfo], names: Sequence[str] | None = None) -> dict[str, dict[str, list[float]]]:
    """Each model's saved training history (``loss``, ``accuracy``, ``val_*``), optionally only ``names``."""
    return {i.name: i.meta.get("history") or {} for i in infos if names is None or i.name in names}


def default_curve_models(names: Sequence[str]) -> list[str]:
    """The pair that shows overfitting best (cnn2 against cnn2_dropout) when both exist, else every model."""
    pair = ["cnn2", "cnn2_dropout"]
    return pair if all(n in names for n in pair) else list(names)


# --- the clips a model gets wrong -------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One model's word for a clip and how sure it was."""

    word: str
    confidence: float


@dataclass(frozen=True)
class Mistake:
    """A test clip the chosen model got wrong, with every model's answer (the chosen one included)."""

    path: str
    true_word: str
    model: str
    answers: dict[str, Answer]

    @property
    def predicted(self) -> Answer:
        return self.answers[self.model]

    @property
    def name(self) -> str:
        """``word/file.wav``: short, and enough to find the file."""
        return f"{Path(self.path).parent.name}/{Path(self.path).name}"


def misclassified(evaluation: Evaluation, model: str, labels: Sequence[str] | None = None) -> list[Mistake]:
    """The clips ``model`` gets wrong, its most confident mistakes first. A clip's true word is in the four-label
    order (``other`` for other words and noise); each model's answer is read in its own label order, so a
    three-label model is wrong on every other word."""
    if model not in evaluation.predictions:
        raise KeyError(f"no predictions for {model!r}; have {', '.join(evaluation.predictions)}")
    truth = [config.LABEL_SETS[0][int(y)] for y in evaluation.y_true]

    def words(name: str) -> list[str]:
        own = labels or evaluation.labels.get(name) or config.LABEL_SETS[0]
        return [own[int(i)] for i in evaluation.predictions[name].argmax(axis=1)]

    said = {name: words(name) for name in evaluation.predictions}
    mistakes = []
    for i, true_word in enumerate(truth):
        if said[model][i] == true_word:
            continue
        answers = {
            name: Answer(word=said[name][i], confidence=float(probs[i].max()))
            for name, probs in evaluation.predictions.items()
        }
        mistakes.append(Mistake(evaluation.paths[i], true_word, model, answers))
    return sorted(mistakes, key=lambda m: (-m.predicted.confidence, m.path))


def mistakes_table(mistakes: Sequence[Mistake]) -> list[dict[str, Any]]:
    """One row per mistake: the clip, the true word, then each model's word (✓ where right)."""
    rows = []
    for m in mistakes:
        row: dict[str, Any] = {"clip": m.name, "true word": m.true_word}
        for name, a in m.answers.items():
            row[name] = f"{a.word} {'✓' if a.word == m.true_word else '✗'} {a.confidence:.0%}"
        rows.append(row)
    return rows


def answers_table(mistake: Mistake) -> list[dict[str, Any]]:
    """What every model said about one clip: word, confidence, right or wrong."""
    return [
        {"model": name, "says": a.word, "confidence": a.confidence, "right": a.word == mistake.true_word}
        for name, a in mistake.answers.items()
    ]


# --- one clip, as the models see it -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClipView:
    """A recording, the window the models hear, and its MFCCs under one feature setting."""

    samples: np.ndarray
    sample_rate: int
    window: Window
    features: np.ndarray
    settings: FeatureSettings


def clip_view(path: str | Path, settings: FeatureSettings) -> ClipView:
    """Decode a clip and compute what a model with ``settings`` gets to see (the app's one feature path)."""
    clip = load_audio(path)
    window, feats = model_input(clip.samples, settings)
    return ClipView(clip.samples, clip.sample_rate, window, feats, settings)


# --- dataset statistics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipStat:
    """One clip's place in the dataset and the two numbers the histograms show."""

    path: str
    label: str
    speaker: str
    split: str
    duration_s: float
    loudness_db: float
    #: The folder: a keyword, another word, or the background noise.
    word: str = ""

    @property
    def group(self) -> str:
        """What the clip is to the models: its keyword, :data:`OTHER_WORDS` or :data:`NOISE`."""
        if self.label != config.OTHER:
            return self.label
        return NOISE if self.word == dataset.NOISE_FOLDER else OTHER_WORDS


#: The Dataset page's names for the two kinds of ``other`` clip.
OTHER_WORDS, NOISE = "other words", "background noise"


@dataclass
class DatasetStats:
    """Per-clip facts of the whole dataset; the summaries are computed from them on demand."""

    clips: list[ClipStat]
    skipped: list[tuple[str, str]]

    def counts_per_word(self) -> dict[str, int]:
        """Clips of each keyword, then of all other words together and of the background noise."""
        counts = Counter(c.group for c in self.clips)
        return {group: counts[group] for group in (*config.LABELS, OTHER_WORDS, NOISE) if group in counts}

    @property
    def words(self) -> int:
        """How many different words are spoken: the keywords and every other-word folder."""
        return len({c.word or c.label for c in self.clips if c.group != NOISE})

    def clips_per_split(self) -> dict[str, int]:
        counts = Counter(c.split for c in self.clips)
        return {split: counts[split] for split in dataset.SPLITS}

    @property
    def speakers(self) -> int:
        return len({c.speaker for c in self.clips if c.group != NOISE})

    def speakers_per_split(self) -> dict[str, int]:
        return {s: len({c.speaker for c in self.clips if c.split == s and c.group != NOISE}) for s in dataset.SPLITS}

    def word_split_table(self) -> list[dict[str, Any]]:
        """Clips per word and split, plus totals: the class balance at a glance."""
        counts = Counter((c.group, c.split) for c in self.clips)
        rows = []
        groups = list(self.counts_per_word())
        for word in [*groups, "all clips"]:
            row: dict[str, Any] = {"word": word}
            words = groups if word == "all clips" else (word,)
            for split in dataset.SPLITS:
                row[split] = sum(counts[(w, split)] for w in words)
            row["total"] = sum(row[s] for s in dataset.SPLITS)
            rows.append(row)
        speakers = self.speakers_per_split()
        rows.append({"word": "speakers", **speakers, "total": self.speakers})
        return rows

    @property
    def durations(self) -> list[float]:
        return [c.duration_s for c in self.clips]

    @property
    def loudness(self) -> list[float]:
        return [c.loudness_db for c in self.clips]


def _clip_stat(item: dataset.Item) -> ClipStat | str:
    """Duration from the header and loudness from the samples, in one open; a broken file gives its reason."""
    try:
        with sf.SoundFile(str(item.path)) as f:
            rate, frames = f.samplerate, f.frames
            samples = f.read(dtype="float32", always_2d=True).mean(axis=1)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        return f"unreadable ({err})"
    if rate <= 0 or frames <= 0:
        return "holds no audio"
    level = loudness_db(samples, span=max(1, rate // 10))
    return ClipStat(str(item.path), item.label, item.speaker, item.split, frames / rate, level, item.word)


def dataset_stats(directory: str | Path | None = None, workers: int | None = None) -> DatasetStats:
    """Statistics of every clip (about a second for the 4,690 clips here); raises DatasetMissingError."""
    items = dataset.scan(directory, other=True)
    workers = workers or min(4, os.cpu_count() or 1)
    clips, skipped = [], []
    with ThreadPoolExecutor(workers) as pool:
        for item, out in zip(items, pool.map(_clip_stat, items, chunksize=64)):
            if isinstance(out, str):
                logger.warning("skipping %s: %s", item.path, out)
                skipped.append((str(item.path), out))
            else:
                clips.append(out)
    return DatasetStats(clips=clips, skipped=skipped)


def browse(items: Sequence[dataset.Item], word: str, split: str) -> list[dataset.Item]:
    """The clips of one folder (a keyword, another word or the noise) in one split (``split="all"`` for every
    split), in path order."""
    return [it for it in items if (it.word or it.label) == word and (split == "all" or it.split == split)]


def folders(items: Sequence[dataset.Item]) -> list[str]:
    """The folders to browse: the keywords, then the other words, then the noise (as :func:`kws.dataset.scan`)."""
    return list(dict.fromkeys(it.word or it.label for it in items))
