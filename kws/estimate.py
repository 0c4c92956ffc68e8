"""How long a training run will take, before it starts: a per-model cost table, or past runs' own pace.

The Retrain page shows :meth:`Estimate.describe` under its options, and a running job weights its progress
bar by the estimate's parts (:class:`kws.jobs.Job`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

from kws import config, dataset, modelsets

if TYPE_CHECKING:
    from kws.options import TrainConfig

#: Milliseconds per training example per epoch (fit + validation) on two CPU cores, tensorflow-cpu 2.21.
#: perceptron, cnn1 and best come from the shipped models' train_seconds; the others are measured with
#: synthetic batches on the same machine and scaled by the ratio seen for the first three.
COST_MS: dict[str, dict[str, float]] = {
    "standard": {"perceptron": 0.04, "cnn1": 0.19, "cnn2": 0.6, "cnn2_dropout": 0.7, "lstm": 0.45, "best": 2.8},
    "lecture": {"perceptron": 0.03, "cnn1": 0.08, "cnn2": 0.12, "cnn2_dropout": 0.12, "lstm": 0.12, "best": 0.5},
    # the CNNs' log-mel picture is 11 x 128 here: the standard figures scaled by its 1,408 cells against 1,960
    "lecture_exact": {"perceptron": 0.03, "cnn1": 0.14, "cnn2": 0.45, "cnn2_dropout": 0.5, "lstm": 0.12, "best": 2.0},
}
#: The same for the lecture's own networks (``zoo="lecture"``), from the shipped ``models/lecture`` set's
#: train_seconds (its 20 x 11 input, no augmentation).
LECTURE_COST_MS: dict[str, float] = {"perceptron": 0.04, "cnn1": 0.12, "cnn2": 0.14, "cnn2_dropout": 0.13, "lstm": 0.07}
#: Seconds per model for building, the first compile, scoring the test split and saving.
MODEL_OVERHEAD_S = 3.0
#: Seconds to start the training process (Python, TensorFlow) on two busy cores.
STARTUP_S = 8.0
#: Milliseconds per clip for reading, for MFCCs, and per augmented copy made each epoch (speed, shift, noise,
#: MFCCs); measured on the whole dataset (4,690 clips, 7,420 copies) on two busy cores.
READ_MS = 1.0
FEATURE_MS = {"standard": 2.0, "lecture": 1.0, "lecture_exact": 1.0}
AUGMENT_MS = {"standard": 1.0, "lecture": 1.0, "lecture_exact": 1.0}
#: Past runs with fewer training examples are dominated by overhead and say little about the rate.
_MIN_EXAMPLES_FOR_RATE = 1000


def duration(seconds: float) -> str:
    """Seconds in words: ``42 s``, or ``2 min 05 s`` from 90 s on."""
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"


def split_counts(data_dir: str | Path | None = None, limit: int | None = None, other: bool = True) -> dict[str, int]:
    """Clips per split that a run will read, mirroring ``kws.train``'s limit (at least one per label): with
    ``other``, the other words and noise too, as a run that learns the fourth answer reads them.

    Raises :class:`kws.dataset.DatasetMissingError` when there is no dataset.
    """
    items = dataset.scan(data_dir, other=other)
    labels = config.labels_for(other)
    counts = dict.fromkeys(dataset.SPLITS, 0)
    for split in dataset.SPLITS:
        for label in labels:
            n = sum(1 for it in items if it.split == split and it.label == label)
            counts[split] += n if limit is None else min(n, max(1, limit // len(labels)))
    return counts


@dataclass
class Estimate:
    """Expected seconds for a run, by part, and where each model's rate came from."""

    feature_parts: dict[str, float]
    per_model: dict[str, float]
    sources: dict[str, str]
    #: False for a refit: nothing is held out, so every epoch runs.
    early_stopping: bool = True

    @property
    def feature_seconds(self) -> float:
        return sum(self.feature_parts.values())

    @property
    def total_seconds(self) -> float:
        return self.feature_seconds + sum(self.per_model.values())

    def describe(self) -> str:
        """One sentence for the page: the total, the parts, and how it was estimated."""
        parts = ", ".join(f"{m} ~{duration(s)}" for m, s in self.per_model.items())
        past = [m for m, s in self.sources.items() if s == "past runs"]
        how = "a per-model cost table measured on a 2-core machine"
        if past:
            how = f"past runs' train_seconds/epochs_run for {', '.join(past)}" + (
                f" and {how} for the rest" if len(past) < len(self.sources) else ""
            )
        return (
            f"Expected time: up to about {duration(self.total_seconds)} (start-up and features "
            f"~{duration(self.feature_seconds)}; "
            f"{parts}).{' Early stopping may finish sooner.' if self.early_stopping else ''} Estimated from {how}."
        )


def past_rates() -> dict[tuple[str, str, str], float]:
    """Median ms per training example per epoch of each (model, preset, zoo) in the shipped, the lecture's and
    the retrained sets: the lecture's networks are other networks under the same names."""
    from kws import store

    folders = [s.path for s in modelsets.list_sets()]
    if config.LECTURE_MODELS_DIR.is_dir():
        folders.append(config.LECTURE_MODELS_DIR)
    seen: dict[tuple[str, str, str], list[float]] = {}
    for folder in folders:
        for info in store.list_models(folder):
            meta = info.meta
            # examples seen per epoch (augmented variants included); older metadata only has the clean count
            examples = int(meta.get("examples_per_epoch") or meta.get("split_counts", {}).get("train", 0))
            epochs = int(meta.get("epochs_run", 0))
            if examples >= _MIN_EXAMPLES_FOR_RATE and epochs > 0:
                rate = max(0.0, meta["train_seconds"] - MODEL_OVERHEAD_S) * 1000 / (epochs * examples)
                zoo = (meta.get("train_config") or {}).get("zoo", config.ZOOS[0])
                seen.setdefault((info.name, meta["feature_settings"]["name"], zoo), []).append(rate)
    return {key: median(rates) for key, rates in seen.items()}


def estimate(
    cfg: TrainConfig, counts: dict[str, int], rates: dict[tuple[str, str, str], float] | None = None
) -> Estimate:
    """Expected duration of ``cfg`` on ``counts`` clips per split (an upper bound: every epoch is run)."""
    rates = past_rates() if rates is None else rates
    clips = sum(counts.values())
    copies = cfg.variants_per_clip
    fitted = sum(counts[split] for split in cfg.fit_splits)  # a refit also learns from the validation clips
    examples = fitted * (1 + copies)
    feature_parts = {
        "starting": STARTUP_S,
        "reading": clips * READ_MS / 1000,
        "features": clips * FEATURE_MS[cfg.preset] / 1000,
    }
    # fresh augmented copies are made every epoch, once per run (all models share them): the first model pays.
    # Past runs' train_seconds already include that cost where the model came first.
    augment_s = fitted * copies * AUGMENT_MS[cfg.preset] / 1000
    per_model, sources = {}, {}
    for index, name in enumerate(cfg.models):
        rate = rates.get((name, cfg.preset, cfg.zoo))
        sources[name] = "past runs" if rate is not None else "cost table"
        table = LECTURE_COST_MS[name] if cfg.zoo == "lecture" else COST_MS[cfg.preset][name]
        epoch_s = (rate if rate is not None else table) * examples / 1000
        if rate is None and index == 0:
            epoch_s += augment_s
        per_model[name] = MODEL_OVERHEAD_S + epoch_s * cfg.epochs
    return Estimate(feature_parts, per_model, sources, early_stopping=cfg.holds_out_validation)
