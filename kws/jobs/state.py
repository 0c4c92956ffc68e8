"""One training run's state as every session reads it: plain data, its progress and what it says in words.

The manager (:mod:`kws.jobs.manager`) updates a :class:`Job` from the training child's events and mirrors it to
``<runs>/training.json``, where another server process reads it back (:meth:`Job.from_dict`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any

from kws.estimate import Estimate, duration
from kws.options import TrainConfig, make_config

RUNNING_STATES = ("featurizing", "training", "cancelling")


@dataclass
class Job:
    """A training run's state: plain data, copied for readers, mirrored to ``training.json``."""

    id: str
    owner: str
    cfg: TrainConfig
    estimate: Estimate
    started: float
    pid: int = field(default_factory=os.getpid)
    state: str = "featurizing"  # featurizing | training | cancelling | done | cancelled | failed
    stage: str = "starting"
    stage_done: int = 0
    stage_total: int = 0
    feature_fraction: float = 0.0
    clips_total: int = 0
    features_base: int = 0
    model_index: int = 0
    epoch: int = 0
    histories: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    finished_models: list[str] = field(default_factory=list)
    error: str | None = None
    finished: float | None = None

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def fraction(self) -> float:
        """Share of the expected work done, weighting parts by their estimated seconds."""
        if self.state == "done":
            return 1.0
        est = self.estimate
        done = self.feature_fraction * est.feature_seconds
        for i, name in enumerate(self.cfg.models):
            if name in self.finished_models:
                done += est.per_model[name]
            elif i == self.model_index and self.state != "featurizing":
                done += est.per_model[name] * self.epoch / self.cfg.epochs
        return min(1.0, done / max(est.total_seconds, 1e-9))

    @property
    def seconds_left(self) -> float | None:
        """Seconds still to go at the pace this run has kept so far, or ``None`` before there is a pace (5% of
        the work, 10 s). The pace of the run itself, not the estimate: the same networks train several times
        slower on a busy machine than on an idle one."""
        done = self.fraction
        if not self.running or self.state == "cancelling" or not 0.05 <= done < 1 or self.elapsed < 10:
            return None
        return self.elapsed * (1 - done) / done

    @property
    def status_text(self) -> str:
        """What is happening now, in words."""
        if self.state == "featurizing" and not self.stage_total:
            return "Starting the training process (loading TensorFlow)"
        if self.state == "featurizing":
            words = {"reading": "Reading clips", "features": "Computing MFCC features"}
            return f"{words.get(self.stage, self.stage)} {self.stage_done:,}/{self.stage_total:,}"
        if self.state == "training":
            n = len(self.cfg.models)
            if len(self.finished_models) >= n:  # the last model is saved; the set is being swapped in
                return f"Saving the new set of {n} model{'s' if n > 1 else ''}"
            name = self.cfg.models[min(self.model_index, n - 1)]
            return f"Training {name} ({self.model_index + 1} of {n}), epoch {self.epoch}/{self.cfg.epochs}"
        if self.state == "cancelling":
            return "Cancelling…"
        if self.state == "done":
            return f"Finished in {duration(self.elapsed)}"
        if self.state == "cancelled":
            return "Cancelled: nothing was saved"
        return f"Failed: {self.error}"

    @property
    def summary(self) -> str:
        """Who is training what, for every session to see."""
        cfg = self.cfg
        return (
            f"{self.owner} started training {', '.join(cfg.models)} ({cfg.preset} features, up to {cfg.epochs} "
            f"epochs) {duration(self.elapsed)} ago: {self.status_text} ({self.fraction:.0%}{self._left_text})."
        )

    @property
    def _left_text(self) -> str:
        left = self.seconds_left
        if left is None:
            return ""
        sooner = ", or less if early stopping ends a model sooner" if self.estimate.early_stopping else ""
        return f"; about {duration(left)} left at this pace{sooner}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["cfg"]["models"] = list(self.cfg.models)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        data = dict(data)
        data["cfg"] = make_config(**data["cfg"])
        data["estimate"] = Estimate(**data["estimate"])
        return cls(**data)

    def on_event(self, event: dict[str, Any]) -> None:
        """Apply one progress event of the training child: a featurization stage, an epoch, or a finished model."""
        kind = event.get("event")
        if kind == "stage":
            stage, done, total = event["stage"], event["done"], event["total"]
            if stage == "reading":
                self.clips_total = total
            elif stage == "features" and self.stage == "features" and self.stage_done >= self.stage_total:
                self.features_base += self.stage_total  # the next split began
            self.stage, self.stage_done, self.stage_total = stage, done, total
            self.feature_fraction = max(self.feature_fraction, self._stage_fraction())
        elif kind == "epoch":
            if self.state == "featurizing":
                self.state, self.feature_fraction = "training", 1.0
            self.model_index, self.epoch = event["model_index"], event["epoch"]
            hist = self.histories.setdefault(event["model"], {})
            for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
                if key in event["logs"]:
                    hist.setdefault(key, []).append(event["logs"][key])
        elif kind == "model_done":
            self.finished_models.append(event["name"])
            self.model_index = min(self.model_index + 1, len(self.cfg.models) - 1)
            self.epoch = 0

    def _stage_fraction(self) -> float:
        """Share of the preparation done: start-up, reading, then the MFCCs of each split in turn."""
        parts = self.estimate.feature_parts
        order = list(parts)
        stage = self.stage if self.stage in parts else order[0]
        if stage == "features":
            share = (self.features_base + self.stage_done) / max(self.clips_total, 1)
        else:
            share = self.stage_done / max(self.stage_total, 1)
        done = sum(parts[k] for k in order[: order.index(stage)]) + parts[stage] * min(share, 1.0)
        return min(1.0, done / max(sum(parts.values()), 1e-9))
