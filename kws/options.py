"""What a training run is asked to do and how it reports back, importable without TensorFlow.

Each training option is defined once, as a field of :class:`TrainConfig` made by :func:`option`: its name,
default, accepted values and help text. :class:`TrainConfig` checks every value against it, ``python -m kws
train`` makes one flag from each (``kws.cli``), and the Retrain page one widget from each that has a
:class:`Widget` (``kws.forms``). The app's server and the CLI build and check a :class:`TrainConfig` before any
training starts; only the child process that trains (:mod:`kws.train`) loads TensorFlow.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from kws import config, features

logger = logging.getLogger(__name__)

#: ``KWS_TRAIN_LIMIT=N``: at most about N clips per split in the app's runs (tests and demos of a few seconds).
LIMIT_ENV = "KWS_TRAIN_LIMIT"


def check_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """``names`` as a list once every one is a known architecture (:data:`kws.config.ARCHITECTURES`)."""
    unknown = [n for n in names if n not in config.ARCHITECTURES]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}; choose from: {', '.join(config.ARCHITECTURES)}")
    return list(names)


@dataclass(frozen=True)
class Range:
    """The numbers an option accepts: from ``low`` to ``high`` (None: no bound), each end included unless open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"{'above' if self.low_open else 'at least'} {self.low}"
        return f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"


@dataclass(frozen=True)
class Widget:
    """How the Retrain page shows an option (``kws.forms`` picks the kind of widget from the option)."""

    label: str
    #: The session key is ``retrain_<key>``.
    key: str
    #: The page's starting value where it differs from the option's default (a run of a few minutes).
    default: Any = None
    help: str | None = None
    #: A slider's stops; the CLI takes any value in the option's range.
    steps: tuple[Any, ...] = ()
    #: A number box's highest value, where the page offers less than the option's range.
    maximum: float | None = None
    #: Words for each choice.
    names: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Option:
    """One training option: a field of :class:`TrainConfig`, a flag of ``python -m kws train``, maybe a widget."""

    name: str
    default: Any
    #: The CLI flag's help; for a switch, what giving its flag does.
    help: str
    #: ``int``, ``float``, ``str``, ``bool``, or ``tuple`` (several of ``choices``).
    kind: type
    #: The CLI flag where it is not ``--<name>`` (``--no-<name>`` for a switch that is on by default).
    cli_flag: str = ""
    metavar: str | None = None
    bounds: Range | None = None
    #: The values a ``str`` option (or each item of a ``tuple`` one) may take.
    choices: tuple[str, ...] = ()
    widget: Widget | None = None

    @property
    def flag(self) -> str:
        """The CLI flag: a switch's flag turns it from its default to the other value."""
        if self.cli_flag:
            return self.cli_flag
        name = self.name.replace("_", "-")
        return f"--no-{name}" if self.kind is bool and self.default else f"--{name}"

    @property
    def dest(self) -> str:
        """The flag's attribute in an ``argparse`` namespace."""
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def page_default(self) -> Any:
        """The Retrain page's starting value."""
        return self.default if self.widget is None or self.widget.default is None else self.widget.default

    def check(self, value: Any) -> None:
        """Raise ``ValueError`` naming the option when ``value`` is not one it accepts (None: left unset)."""
        if value is None:
            return
        if self.kind is str and self.choices and value not in self.choices:
            raise ValueError(f"unknown {self.name} {value!r}; choose from: {', '.join(self.choices)}")
        if self.bounds is not None and value not in self.bounds:
            raise ValueError(f"{self.name} must be {self.bounds}")


def option(default: Any, help: str, *, kind: type | None = None, **spec: Any) -> Any:
    """A :class:`TrainConfig` field that is a training option; ``spec`` holds :class:`Option`'s other fields."""
    return field(default=default, metadata={"option": Option("", default, help, kind or type(default), **spec)})


#: The Retrain page's words for what a run may learn from (``config.FIT_ON``).
FIT_ON_NAMES: dict[str, str] = {
    "train": "the train split (early stopping watches the validation split)",
    "train+validation": "train + validation: the final refit, as the shipped best had (no early stopping)",
}


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how; saved into every model's metadata."""

    models: tuple[str, ...] = option(
        tuple(config.ARCHITECTURES),
        f"architectures to train: {', '.join(config.ARCHITECTURES)}",
        metavar="NAME",
        choices=tuple(config.ARCHITECTURES),
        widget=Widget("Models", "models", default=("perceptron", "cnn1", "cnn2_dropout"), names=config.ARCHITECTURES),
    )
    preset: str = option(
        "standard",
        "feature preset",
        choices=tuple(features.PRESETS),
        widget=Widget(
            "Features", "preset", help="lecture: 11 frames x 20 MFCCs; lecture_exact: the lecture's own librosa call"
        ),
    )
    epochs: int = option(
        30,
        "most epochs per model (early stopping may end sooner)",
        bounds=Range(1),
        widget=Widget("Epochs (at most)", "epochs", default=10, maximum=200),
    )
    batch_size: int = option(
        64, "examples per batch", bounds=Range(1), widget=Widget("Batch size", "batch", steps=(32, 64, 128, 256))
    )
    learning_rate: float = option(
        2e-3,
        "learning rate",
        cli_flag="--lr",
        metavar="RATE",
        bounds=Range(0, 1, low_open=True, high_open=True),
        widget=Widget("Learning rate", "lr", steps=(5e-4, 1e-3, 2e-3, 5e-3, 1e-2)),
    )
    augment: bool = option(
        True,
        "train on the clips as recorded",
        widget=Widget(
            "Augment (speed ±10%, shift, gain, noise, SpecAugment masks: a fresh variant of each training clip "
            "every epoch)",
            "aug",
        ),
    )
    augment_copies: int = option(
        1, "fresh augmented variants of each clip per epoch", cli_flag="--copies", metavar="N", bounds=Range(0)
    )
    #: Epochs without a lower validation loss before stopping (the best weights are then restored); 0: no
    #: early stopping, keep the last epoch's weights.
    patience: int = option(
        6, "early stopping after N epochs without progress (0 = off, keep the last)", metavar="N", bounds=Range(0)
    )
    #: "cosine": warm up for one epoch, then decay to ~0 by the last epoch; "plateau": halve on a stalled
    #: validation loss; "constant": the same rate throughout (the lecture's Adam).
    schedule: str = option(config.SCHEDULES[0], "learning-rate schedule", choices=config.SCHEDULES)
    #: Speed perturbation of augmented copies: a random rate in 1 ± this; new voices, new tempos.
    speed: float = option(
        0.1, "speed perturbation: rates in 1 ± F (0 = off)", metavar="F", bounds=Range(0, 0.5, high_open=True)
    )
    #: SpecAugment-style masks on augmented copies: this many time and frequency bands.
    masks: int = option(2, "SpecAugment: N time and N coefficient masks per variant", metavar="N", bounds=Range(0))
    #: Mixup (Zhang et al. 2018): each training example is blended with another of its batch, weight
    #: lambda ~ Beta(mixup, mixup), and so are their targets. Smooths the model between the clips it knows.
    mixup: float = option(
        0.0, "mixup: blend examples with weights ~ Beta(A, A) (0 = off)", metavar="A", bounds=Range(0, 2)
    )
    seed: int = option(
        42,
        "random seed (the same seed and settings give the same model)",
        bounds=Range(0, 2**32 - 1),
        widget=Widget("Seed (the same seed and settings give the same model)", "seed", maximum=2**31 - 1),
    )
    #: At most this many clips per split (None: all); tests use it for tiny runs.
    limit_per_split: int | None = None
    #: The splits the model learns from: "train", or "train+validation" for the final refit once a recipe has
    #: been chosen on validation (more speakers; nothing is then held out to watch, so no early stopping: the
    #: cosine schedule runs to its end, or to ``stop_at``, and those weights are kept).
    fit_on: str = option(
        config.FIT_ON[0],
        "train+validation: final refit of a recipe chosen on validation (no early stopping: see --stop-at)",
        choices=config.FIT_ON,
        widget=Widget("Learn from", "fit", names=FIT_ON_NAMES),
    )
    #: End after this epoch of the schedule (1-based) and keep its weights: how a refit stops where early
    #: stopping chose for the same recipe on validation (None: run all ``epochs``).
    stop_at: int | None = option(
        None, "end after epoch N of the schedule and keep its weights", kind=int, metavar="N", bounds=Range(1)
    )
    #: Centre each window on its energy before the MFCCs (``FeatureSettings.centre``), for a linear model.
    centre: bool = option(
        False,
        "centre each window on its energy (for a linear model)",
        widget=Widget(
            "Centre each window on its energy before the MFCCs (what the shipped perceptron learnt from)", "centre"
        ),
    )
    #: Which networks ``models`` names: today's, or the lecture's own (``kws.zoo.LECTURE_ZOO``: raw
    #: coefficients, its layer sizes, no ``best``).
    zoo: str = option(
        config.ZOOS[0],
        "which networks: today's, or the lecture's own at its layer sizes (no best)",
        choices=config.ZOOS,
        widget=Widget(
            "Networks",
            "zoo",
            names={"today": "today's", "lecture": "the lecture's own, at its layer sizes (no best)"},
            help="The lecture's networks with the lecture_exact preset, three labels and no augmentation train "
            "the set shipped in models/lecture.",
        ),
    )
    #: Learn a fourth answer, ``other``, from the dataset's other-word folders and its background noise (the
    #: open world); False trains the lecture's three labels only.
    other: bool = option(
        True,
        "learn the lecture's three labels only, without the fourth answer, other",
        widget=Widget("Learn 'other' from the other words", "other"),
    )

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
        for spec in OPTIONS.values():
            spec.check(getattr(self, spec.name))
        if self.zoo == "lecture" and "best" in self.models:
            raise ValueError("the lecture's zoo has no best; leave it out or train today's zoo")
        if self.stop_at is not None and self.stop_at > self.epochs:
            raise ValueError(f"stop_at must be an epoch from 1 to {self.epochs}")
        if not self.holds_out_validation:
            if self.schedule == "plateau":
                raise ValueError("the plateau schedule watches the validation loss; a refit needs cosine or constant")
            object.__setattr__(self, "patience", 0)  # nothing held out to stop on; recorded as it ran


#: Every training option by name, in :class:`TrainConfig`'s order.
OPTIONS: dict[str, Option] = {
    f.name: replace(f.metadata["option"], name=f.name) for f in fields(TrainConfig) if "option" in f.metadata
}


def page_defaults() -> dict[str, Any]:
    """The Retrain page's starting value of every option it shows (defaults that train in a few minutes)."""
    return {name: spec.page_default for name, spec in OPTIONS.items() if spec.widget is not None}


def train_limit() -> int | None:
    """``KWS_TRAIN_LIMIT`` as a positive int, else None (the whole dataset)."""
    raw = os.environ.get(LIMIT_ENV, "").strip()
    try:
        value = int(raw)
    except ValueError:
        if raw:
            logger.warning("ignoring %s=%r: not an integer", LIMIT_ENV, raw)
        return None
    return value if value > 0 else None


def make_config(**kwargs: Any) -> TrainConfig:
    """A ``TrainConfig`` for the app's runs, limited by ``KWS_TRAIN_LIMIT`` unless ``limit_per_split`` is given."""
    kwargs.setdefault("limit_per_split", train_limit())
    if "models" in kwargs:
        kwargs["models"] = tuple(kwargs["models"])
    return TrainConfig(**kwargs)


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
