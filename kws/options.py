"""What a training run is asked to do and how it reports back, importable without TensorFlow.

The app's server and the CLI build and check a :class:`TrainConfig` before any training starts (the Retrain page,
the job manager); only the child process that trains (:mod:`kws.train`) loads TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kws import config, features


def check_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """``names`` as a list once every one is a known architecture (:data:`kws.config.ARCHITECTURES`)."""
    unknown = [n for n in names if n not in config.ARCHITECTURES]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}; choose from: {', '.join(config.ARCHITECTURES)}")
    return list(names)


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how; saved into every model's metadata."""

    models: tuple[str, ...] = tuple(config.ARCHITECTURES)
    preset: str = "standard"
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 2e-3
    augment: bool = True
    augment_copies: int = 1
    #: Epochs without a lower validation loss before stopping (the best weights are then restored); 0: no
    #: early stopping, keep the last epoch's weights.
    patience: int = 6
    #: "cosine": warm up for one epoch, then decay to ~0 by the last epoch; "plateau": halve on a stalled
    #: validation loss.
    schedule: str = config.SCHEDULES[0]
    #: Speed perturbation of augmented copies: a random rate in 1 ± this (0 = off); new voices, new tempos.
    speed: float = 0.1
    #: SpecAugment-style masks on augmented copies: this many time and frequency bands (0 = off).
    masks: int = 2
    #: Mixup (Zhang et al. 2018): each training example is blended with another of its batch, weight
    #: lambda ~ Beta(mixup, mixup), and so are their targets; 0 = off. Smooths the model between the clips it knows.
    mixup: float = 0.0
    seed: int = 42
    #: At most this many clips per split (None: all); tests use it for tiny runs.
    limit_per_split: int | None = None
    #: The splits the model learns from: "train", or "train+validation" for the final refit once a recipe has
    #: been chosen on validation (more speakers; nothing is then held out to watch, so no early stopping: the
    #: cosine schedule runs to its end, or to ``stop_at``, and those weights are kept).
    fit_on: str = config.FIT_ON[0]
    #: End after this epoch of the schedule (1-based) and keep its weights: how a refit stops where early
    #: stopping chose for the same recipe on validation (None: run all ``epochs``).
    stop_at: int | None = None
    #: Centre each window on its energy before the MFCCs (``FeatureSettings.centre``), for a linear model.
    centre: bool = False
    #: Learn a fourth answer, ``other``, from the dataset's other-word folders and its background noise (the
    #: open world); False trains the lecture's three labels only.
    other: bool = True

    @property
    def labels(self) -> tuple[str, ...]:
        """The label order the models of this run answer in (saved with each model)."""
        return config.labels_for(self.other)

    @property
    def settings(self) -> features.FeatureSettings:
        """The feature settings this run trains with, saved beside its models: the preset, centred if asked."""
        return replace(features.preset(self.preset), centre=self.centre)

    @property
    def fit_splits(self) -> tuple[str, ...]:
        """``fit_on`` as split names, in the order their clips are stacked for training."""
        return config.fit_splits(self.fit_on)

    @property
    def holds_out_validation(self) -> bool:
        """Whether the validation clips stay unseen (early stopping and validation scores need them)."""
        return "validation" not in self.fit_splits

    @property
    def variants_per_clip(self) -> int:
        """Fresh augmented variants of each training clip per epoch (0 when augmentation is off)."""
        return self.augment_copies if self.augment else 0

    def __post_init__(self) -> None:
        check_names(self.models)
        features.preset(self.preset)
        if self.epochs < 1 or self.batch_size < 1 or not 0 < self.learning_rate < 1:
            raise ValueError("epochs and batch size must be positive and the learning rate in (0, 1)")
        if self.schedule not in config.SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose from: {', '.join(config.SCHEDULES)}")
        if not 0 <= self.speed < 0.5 or self.masks < 0 or self.augment_copies < 0 or self.patience < 0:
            raise ValueError("speed must be in [0, 0.5), masks, copies and patience non-negative")
        if not 0 <= self.mixup <= 2:
            raise ValueError("mixup must be in [0, 2] (the Beta distribution's parameter; 0 = off)")
        if self.stop_at is not None and not 1 <= self.stop_at <= self.epochs:
            raise ValueError(f"stop_at must be an epoch from 1 to {self.epochs}")
        if self.fit_on not in config.FIT_ON:
            raise ValueError(f"unknown fit_on {self.fit_on!r}; choose from: {', '.join(config.FIT_ON)}")
        if not self.holds_out_validation:
            if self.schedule != "cosine":
                raise ValueError("the plateau schedule watches the validation loss; a refit needs the cosine one")
            object.__setattr__(self, "patience", 0)  # nothing held out to stop on; recorded as it ran


@dataclass
class EpochReport:
    """What a progress listener hears after every epoch."""

    model: str
    model_index: int
    n_models: int
    epoch: int
    epochs: int
    logs: dict[str, float]


@dataclass
class Progress:
    """Listeners for a run; every field is optional."""

    on_stage: Callable[[str, int, int], None] | None = None  # ("reading"|"features", done, total)
    on_epoch: Callable[[EpochReport], None] | None = None
    on_model_done: Callable[[str, dict[str, Any]], None] | None = None


class Cancelled(RuntimeError):
    """Training was cancelled; nothing was written to the target folder."""
