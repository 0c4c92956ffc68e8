"""Background training for the Retrain page: one run at a time, observable by every session, cancellable.

A :class:`TrainingManager` (one per server process; the page gets it through ``kws.ui.training_manager``)
runs :func:`kws.train.train` in a thread, so page reruns and page switches never interrupt it. Two locks keep
it to one run: a ``threading.Lock`` within the process and an ``fcntl.flock`` on ``<runs>/train.lock``
between processes. While a run goes on, its state is mirrored to ``<runs>/training.json`` so another server
process can show who is training what.

Each run writes a new set ``<runs>/<YYYYMMDD-HHMMSS-xxxx>/`` (atomically, by :func:`kws.train.train`); the app
switches to it only when a user adopts it (:func:`kws.modelsets.adopt`).

``KWS_TRAIN_LIMIT=N`` limits every split to about N clips (``TrainConfig.limit_per_split``): tests and demos
use it for runs of a few seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import fcntl
import json
import logging
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

from kws import config, dataset, modelsets

if TYPE_CHECKING:
    from kws.train import EpochReport, TrainConfig

logger = logging.getLogger(__name__)

LIMIT_ENV = "KWS_TRAIN_LIMIT"
LOCK_FILE = "train.lock"
STATUS_FILE = "training.json"

#: Defaults that finish in about three minutes on two CPU cores with the whole dataset.
DEFAULT_MODELS: tuple[str, ...] = ("perceptron", "cnn1", "cnn2_dropout")
DEFAULT_EPOCHS = 10
BATCH_SIZES: tuple[int, ...] = (32, 64, 128, 256)
LEARNING_RATES: tuple[float, ...] = (5e-4, 1e-3, 2e-3, 5e-3, 1e-2)

#: Milliseconds per training example per epoch (fit + validation) on two CPU cores, tensorflow-cpu 2.21.
#: perceptron, cnn1 and best come from the shipped models' train_seconds; the others were measured with
#: synthetic batches on the same machine and scaled by the ratio seen for the first three.
COST_MS: dict[str, dict[str, float]] = {
    "standard": {"perceptron": 0.04, "cnn1": 0.19, "cnn2": 0.6, "cnn2_dropout": 0.7, "lstm": 0.45, "best": 2.8},
    "lecture": {"perceptron": 0.03, "cnn1": 0.08, "cnn2": 0.12, "cnn2_dropout": 0.12, "lstm": 0.12, "best": 0.5},
}
#: Seconds per model for building, the first compile, scoring the test split and saving.
MODEL_OVERHEAD_S = 3.0
#: Milliseconds per clip for reading, for MFCCs, and for one augmented copy (window, noise, MFCCs).
READ_MS = 3.0
FEATURE_MS = {"standard": 5.0, "lecture": 1.0}
AUGMENT_MS = {"standard": 5.5, "lecture": 1.2}
#: Past runs with fewer training examples are dominated by overhead and say little about the rate.
_MIN_EXAMPLES_FOR_RATE = 1000


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
    """A ``TrainConfig`` honouring ``KWS_TRAIN_LIMIT`` (imports TensorFlow on first use)."""
    from kws.train import TrainConfig

    kwargs.setdefault("limit_per_split", train_limit())
    if "models" in kwargs:
        kwargs["models"] = tuple(kwargs["models"])
    return TrainConfig(**kwargs)


def split_counts(data_dir: str | Path | None = None, limit: int | None = None) -> dict[str, int]:
    """Clips per split that a run will read, mirroring ``kws.train``'s limit (at least one per word).

    Raises :class:`kws.dataset.DatasetMissingError` when there is no dataset.
    """
    items = dataset.scan(data_dir)
    counts = dict.fromkeys(dataset.SPLITS, 0)
    for split in dataset.SPLITS:
        for label in config.LABELS:
            n = sum(1 for it in items if it.split == split and it.label == label)
            counts[split] += n if limit is None else min(n, max(1, limit // len(config.LABELS)))
    return counts


@dataclass
class Estimate:
    """Expected seconds for a run, by part, and where each model's rate came from."""

    feature_parts: dict[str, float]
    per_model: dict[str, float]
    sources: dict[str, str]

    @property
    def feature_seconds(self) -> float:
        return sum(self.feature_parts.values())

    @property
    def total_seconds(self) -> float:
        return self.feature_seconds + sum(self.per_model.values())

    def describe(self) -> str:
        """One sentence for the page: the total, the parts, and how it was estimated."""
        parts = ", ".join(f"{m} ~{_duration(s)}" for m, s in self.per_model.items())
        past = [m for m, s in self.sources.items() if s == "past runs"]
        how = "a per-model cost table measured on a 2-core machine"
        if past:
            how = f"past runs' train_seconds/epochs_run for {', '.join(past)}" + (
                f" and {how} for the rest" if len(past) < len(self.sources) else ""
            )
        return (
            f"Expected time: up to about {_duration(self.total_seconds)} (features ~{_duration(self.feature_seconds)}; "
            f"{parts}). Early stopping may finish sooner. Estimated from {how}."
        )


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"


def past_rates() -> dict[tuple[str, str], float]:
    """Median ms per training example per epoch of each (model, preset) in the shipped and retrained sets."""
    from kws import store

    seen: dict[tuple[str, str], list[float]] = {}
    for s in modelsets.list_sets():
        for info in store.list_models(s.path):
            meta = info.meta
            examples = int(meta.get("split_counts", {}).get("train", 0))
            epochs = int(meta.get("epochs_run", 0))
            if examples >= _MIN_EXAMPLES_FOR_RATE and epochs > 0:
                rate = max(0.0, meta["train_seconds"] - MODEL_OVERHEAD_S) * 1000 / (epochs * examples)
                seen.setdefault((info.name, meta["feature_settings"]["name"]), []).append(rate)
    return {key: median(rates) for key, rates in seen.items()}


def estimate(cfg: TrainConfig, counts: dict[str, int], rates: dict[tuple[str, str], float] | None = None) -> Estimate:
    """Expected duration of ``cfg`` on ``counts`` clips per split (an upper bound: every epoch is run)."""
    rates = past_rates() if rates is None else rates
    clips = sum(counts.values())
    copies = cfg.augment_copies if cfg.augment else 0
    examples = counts["train"] * (1 + copies)
    feature_parts = {
        "reading": clips * READ_MS / 1000,
        "features": clips * FEATURE_MS[cfg.preset] / 1000,
        "augment": counts["train"] * copies * AUGMENT_MS[cfg.preset] / 1000,
    }
    per_model, sources = {}, {}
    for name in cfg.models:
        rate = rates.get((name, cfg.preset))
        sources[name] = "past runs" if rate is not None else "cost table"
        rate = rate if rate is not None else COST_MS[cfg.preset][name]
        per_model[name] = MODEL_OVERHEAD_S + rate * examples * cfg.epochs / 1000
    return Estimate(feature_parts=feature_parts, per_model=per_model, sources=sources)


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
    stage: str = "reading"
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
    def status_text(self) -> str:
        """What is happening now, in words."""
        if self.state == "featurizing" and not self.stage_total:
            return "Starting: listing the clips and loading TensorFlow"
        if self.state == "featurizing":
            words = {"reading": "Reading clips", "features": "Computing MFCC features", "augment": "Augmenting"}
            count = f" {self.stage_done:,}/{self.stage_total:,}" if self.stage != "augment" else " the training clips"
            return f"{words.get(self.stage, self.stage)}{count}"
        if self.state == "training":
            n = len(self.cfg.models)
            name = self.cfg.models[min(self.model_index, n - 1)]
            return f"Training {name} ({self.model_index + 1} of {n}), epoch {self.epoch}/{self.cfg.epochs}"
        if self.state == "cancelling":
            return "Cancelling…"
        if self.state == "done":
            return f"Finished in {_duration(self.elapsed)}"
        if self.state == "cancelled":
            return "Cancelled: nothing was saved"
        return f"Failed: {self.error}"

    @property
    def summary(self) -> str:
        """Who is training what, for every session to see."""
        cfg = self.cfg
        return (
            f"{self.owner} started training {', '.join(cfg.models)} ({cfg.preset} features, up to {cfg.epochs} "
            f"epochs) {_duration(self.elapsed)} ago: {self.status_text} ({self.fraction:.0%})."
        )

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


class Busy(RuntimeError):
    """Another run holds the server (or another server process holds the runs folder); the message says whose."""


def new_set_name() -> str:
    """A fresh set name: UTC time and a random suffix (matches :data:`kws.modelsets.SET_NAME`)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _try_flock(path: Path) -> int | None:
    """An open descriptor holding an exclusive ``flock`` on ``path``, or None when someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class TrainingManager:
    """Owns at most one training thread; every method is safe to call from any session's script thread."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: _mirror is called with and without it held
        self._job: Job | None = None
        self._cancel: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._status_path: Path | None = None
        self._last_mirror = 0.0

    # -- reading -------------------------------------------------------------------------------------------
    def current(self) -> Job | None:
        """A copy of this process's running or last job; else a run in another process, if any."""
        with self._lock:
            job = copy.deepcopy(self._job)
        if job is not None and job.running:
            return job
        return self.foreign() or job

    def foreign(self, runs_dir: Path | None = None) -> Job | None:
        """The run another server process is doing on this runs folder (from its ``training.json``), or None."""
        runs = runs_dir or config.runs_dir()
        status = runs / STATUS_FILE
        if not status.is_file():
            return None
        with self._lock:
            if self._job is not None and self._job.running and self._status_path == status:
                return None  # our own mirror
        fd = _try_flock(runs / LOCK_FILE)
        if fd is not None:  # nobody holds the lock: the file is a leftover of a crashed run
            try:
                status.unlink(missing_ok=True)
            finally:
                os.close(fd)
            return None
        try:
            return Job.from_dict(json.loads(status.read_text()))
        except (OSError, ValueError, TypeError, KeyError) as err:
            logger.warning("unreadable %s: %s", status, err)
            return None

    # -- control -------------------------------------------------------------------------------------------
    def start(self, cfg: TrainConfig, owner: str = "someone", data_dir: str | Path | None = None) -> Job:
        """Start ``cfg`` in a background thread and return its job; :class:`Busy` if a run is going on.

        Raises :class:`kws.dataset.DatasetMissingError` (before any thread starts) when there is no dataset.
        """
        runs = config.runs_dir()
        data_dir = Path(data_dir) if data_dir is not None else config.data_dir()
        with self._lock:
            if self._job is not None and self._job.running:
                raise Busy(f"Only one training at a time: {self._job.summary}")
            runs.mkdir(parents=True, exist_ok=True)
            fd = _try_flock(runs / LOCK_FILE)
            if fd is None:
                other = None
                try:
                    other = Job.from_dict(json.loads((runs / STATUS_FILE).read_text()))
                except (OSError, ValueError, TypeError, KeyError):
                    pass
                who = other.summary if other else "another server process is training."
                raise Busy(f"Only one training at a time: {who}")
            try:
                counts = split_counts(data_dir, cfg.limit_per_split)
                _remove_stale_staging(runs)
                job = Job(
                    id=new_set_name(),
                    owner=owner.strip() or "someone",
                    cfg=cfg,
                    estimate=estimate(cfg, counts),
                    started=time.time(),
                )
                self._job, self._cancel = job, threading.Event()
                self._status_path = runs / STATUS_FILE
                self._mirror(force=True)
                self._thread = threading.Thread(
                    target=self._run,
                    args=(job, runs, data_dir, fd, self._cancel),
                    name=f"kws-train-{job.id}",
                    daemon=True,
                )
                self._thread.start()
            except BaseException:
                os.close(fd)
                raise
            logger.info("training %s started by %s: %s", job.id, job.owner, ", ".join(cfg.models))
            return copy.deepcopy(job)

    def cancel(self, job_id: str | None = None) -> bool:
        """Ask the running job (``job_id``, if given) to stop; it stops within a batch or two."""
        with self._lock:
            if self._job is None or not self._job.running or (job_id and job_id != self._job.id):
                return False
            self._job.state = "cancelling"
            self._cancel.set()
        logger.info("training %s: cancel requested", job_id or self._job.id)
        return True

    def wait(self, timeout: float | None = None) -> Job | None:
        """Block until the running job ends (for tests and scripts); returns its final state."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            return copy.deepcopy(self._job)

    # -- the training thread ---------------------------------------------------------------------------------
    def _run(self, job: Job, runs: Path, data_dir: Path, fd: int, cancel: threading.Event) -> None:
        """Body of the training thread: trains into ``<runs>/<job.id>``, records the outcome, frees the locks."""
        from kws.train import Cancelled, Progress, train

        progress = Progress(on_stage=self._on_stage, on_epoch=self._on_epoch, on_model_done=self._on_model_done)
        state, error = "done", None
        try:
            train(job.cfg, runs / job.id, data_dir, progress=progress, cancel=cancel)
        except Cancelled:
            state = "cancelled"
        except Exception as err:  # reported on the page; the thread must not die silently
            logger.exception("training %s failed", job.id)
            state, error = "failed", f"{type(err).__name__}: {err}"
        finally:
            if self._status_path is not None:
                self._status_path.unlink(missing_ok=True)
            os.close(fd)  # releases the file lock
            with self._lock:
                self._job.state = "cancelled" if cancel.is_set() and state == "done" else state
                self._job.error = error
                self._job.finished = time.time()
            logger.info("training %s: %s", job.id, self._job.state)

    def _on_stage(self, stage: str, done: int, total: int) -> None:
        """Featurization progress (runs in the training thread); raises to stop early when cancelled."""
        from kws.train import Cancelled

        with self._lock:
            job = self._job
            if self._cancel is not None and self._cancel.is_set():
                raise Cancelled("training was cancelled")
            if stage == "reading":
                job.clips_total = total
            elif stage == "features" and job.stage == "features" and job.stage_done >= job.stage_total:
                job.features_base += job.stage_total  # the next split began
            job.stage, job.stage_done, job.stage_total = stage, done, total
            job.feature_fraction = max(job.feature_fraction, _feature_fraction(job))
        self._mirror()

    def _on_epoch(self, report: EpochReport) -> None:
        """One epoch finished (runs in the training thread): extend the curves."""
        with self._lock:
            job = self._job
            if job.state == "featurizing":
                job.state, job.feature_fraction = "training", 1.0
            job.model_index, job.epoch = report.model_index, report.epoch
            hist = job.histories.setdefault(report.model, {})
            for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
                if key in report.logs:
                    hist.setdefault(key, []).append(report.logs[key])
        self._mirror(force=True)

    def _on_model_done(self, name: str, meta: dict[str, Any]) -> None:
        """A model is scored and staged (runs in the training thread)."""
        with self._lock:
            self._job.finished_models.append(name)
            self._job.model_index = min(self._job.model_index + 1, len(self._job.cfg.models) - 1)
            self._job.epoch = 0
        self._mirror(force=True)

    def _mirror(self, force: bool = False) -> None:
        """Copy the job to ``training.json`` (at most twice a second) for other server processes."""
        now = time.monotonic()
        if self._status_path is None or (not force and now - self._last_mirror < 0.5):
            return
        from kws import store

        with self._lock:
            data = self._job.to_dict()
        self._last_mirror = now
        try:
            store.write_json_atomic(self._status_path, data)
        except OSError as err:
            logger.warning("could not write %s: %s", self._status_path, err)


def _feature_fraction(job: Job) -> float:
    """Share of featurization done: reading, then MFCCs of each split in turn, then augmentation."""
    parts = job.estimate.feature_parts
    if job.stage == "reading":
        done = parts["reading"] * job.stage_done / max(job.stage_total, 1)
    elif job.stage == "features":
        done = parts["reading"] + parts["features"] * (job.features_base + job.stage_done) / max(job.clips_total, 1)
    else:
        done = parts["reading"] + parts["features"] + parts["augment"] * job.stage_done / max(job.stage_total, 1)
    return min(1.0, done / max(sum(parts.values()), 1e-9))


def _remove_stale_staging(runs: Path) -> None:
    """Remove staging folders a crashed run left; only called while holding the training lock."""
    for path in runs.glob(".*.staging-*"):
        if modelsets.SET_NAME.match(path.name[1:].split(".staging-")[0]):
            logger.info("removing leftover staging folder %s", path)
            shutil.rmtree(path, ignore_errors=True)
