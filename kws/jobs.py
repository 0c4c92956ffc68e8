"""Background training for the Retrain page: one run at a time, observable by every session, cancellable.

A :class:`TrainingManager` (one per server process; the page gets it through ``kws.ui.training_manager``)
runs :func:`kws.train.train` in a child process (``python -m kws.jobs``) watched by a thread, so page reruns
and page switches never interrupt it (see the class for why not a plain thread). Two locks keep it to one run:
a ``threading.RLock`` within the process and an ``fcntl.flock`` on ``<runs>/train.lock`` between processes.
While a run goes on, its state is mirrored to ``<runs>/training.json`` so another server process can show who
is training what.

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
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

from kws import config, dataset, modelsets

if TYPE_CHECKING:
    from kws.options import EpochReport, TrainConfig

logger = logging.getLogger(__name__)

LIMIT_ENV = "KWS_TRAIN_LIMIT"
LOCK_FILE = "train.lock"
STATUS_FILE = "training.json"

#: Milliseconds per training example per epoch (fit + validation) on two CPU cores, tensorflow-cpu 2.21.
#: perceptron, cnn1 and best come from the shipped models' train_seconds; the others were measured with
#: synthetic batches on the same machine and scaled by the ratio seen for the first three.
COST_MS: dict[str, dict[str, float]] = {
    "standard": {"perceptron": 0.04, "cnn1": 0.19, "cnn2": 0.6, "cnn2_dropout": 0.7, "lstm": 0.45, "best": 2.8},
    "lecture": {"perceptron": 0.03, "cnn1": 0.08, "cnn2": 0.12, "cnn2_dropout": 0.12, "lstm": 0.12, "best": 0.5},
}
#: Seconds per model for building, the first compile, scoring the test split and saving.
MODEL_OVERHEAD_S = 3.0
#: Seconds to start the training process (Python, TensorFlow) on two busy cores.
STARTUP_S = 8.0
#: Milliseconds per clip for reading, for MFCCs, and per augmented copy made each epoch (speed, shift, noise,
#: MFCCs); measured on the whole dataset (4,690 clips, 7,420 copies) on two busy cores.
READ_MS = 1.0
FEATURE_MS = {"standard": 2.0, "lecture": 1.0}
AUGMENT_MS = {"standard": 1.0, "lecture": 1.0}
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
    from kws.options import TrainConfig

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
        parts = ", ".join(f"{m} ~{_duration(s)}" for m, s in self.per_model.items())
        past = [m for m, s in self.sources.items() if s == "past runs"]
        how = "a per-model cost table measured on a 2-core machine"
        if past:
            how = f"past runs' train_seconds/epochs_run for {', '.join(past)}" + (
                f" and {how} for the rest" if len(past) < len(self.sources) else ""
            )
        return (
            f"Expected time: up to about {_duration(self.total_seconds)} (start-up and features "
            f"~{_duration(self.feature_seconds)}; "
            f"{parts}).{' Early stopping may finish sooner.' if self.early_stopping else ''} Estimated from {how}."
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
            # examples seen per epoch (augmented variants included); older metadata only has the clean count
            examples = int(meta.get("examples_per_epoch") or meta.get("split_counts", {}).get("train", 0))
            epochs = int(meta.get("epochs_run", 0))
            if examples >= _MIN_EXAMPLES_FOR_RATE and epochs > 0:
                rate = max(0.0, meta["train_seconds"] - MODEL_OVERHEAD_S) * 1000 / (epochs * examples)
                seen.setdefault((info.name, meta["feature_settings"]["name"]), []).append(rate)
    return {key: median(rates) for key, rates in seen.items()}


def estimate(cfg: TrainConfig, counts: dict[str, int], rates: dict[tuple[str, str], float] | None = None) -> Estimate:
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
        rate = rates.get((name, cfg.preset))
        sources[name] = "past runs" if rate is not None else "cost table"
        epoch_s = (rate if rate is not None else COST_MS[cfg.preset][name]) * examples / 1000
        if rate is None and index == 0:
            epoch_s += augment_s
        per_model[name] = MODEL_OVERHEAD_S + epoch_s * cfg.epochs
    return Estimate(feature_parts, per_model, sources, early_stopping=cfg.holds_out_validation)


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
        the work, 10 s). The expected time shown before the start comes from past runs on whatever day they
        ran, and this machine trained the same networks 3.5 times slower on one day than on another."""
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
            f"epochs) {_duration(self.elapsed)} ago: {self.status_text} ({self.fraction:.0%}{self._left_text})."
        )

    @property
    def _left_text(self) -> str:
        left = self.seconds_left
        if left is None:
            return ""
        sooner = ", or less if early stopping ends a model sooner" if self.estimate.early_stopping else ""
        return f"; about {_duration(left)} left at this pace{sooner}"

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
    """Owns at most one training run; every method is safe to call from any session's script thread.

    The run itself is a child process (``python -m kws.jobs``), watched by a thread here. Why not train in a
    thread of the server: Streamlit calls ``keras.backend.clear_session()`` after every script run (any page,
    any user), which resets Keras' process-wide naming and seed state under a model being built, so a rerun at
    the wrong moment fails the build ("The name "conv2d" is used 2 times in the model"). A child process is
    out of its reach; it also keeps a training crash from taking the server down.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: _mirror is called with and without it held
        self._job: Job | None = None
        self._proc: subprocess.Popen | None = None
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
        return _read_status(status)

    # -- control -------------------------------------------------------------------------------------------
    def start(self, cfg: TrainConfig, owner: str = "someone", data_dir: str | Path | None = None) -> Job:
        """Start ``cfg`` in the background and return its job; :class:`Busy` if a run is going on.

        Raises :class:`kws.dataset.DatasetMissingError` (before anything starts) when there is no dataset.
        """
        runs = config.runs_dir()
        data_dir = Path(data_dir) if data_dir is not None else config.data_dir()
        with self._lock:
            if self._job is not None and self._job.running:
                raise Busy(f"Only one training at a time: {self._job.summary}")
            runs.mkdir(parents=True, exist_ok=True)
            fd = _try_flock(runs / LOCK_FILE)
            if fd is None:
                other = _read_status(runs / STATUS_FILE)
                raise Busy(f"Only one training at a time: {other.summary if other else 'another server is training.'}")
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
                request = {"cfg": job.to_dict()["cfg"], "out_dir": str(runs / job.id), "data_dir": str(data_dir)}
                # the child inherits the lock's descriptor: the lock is held until both processes are gone
                proc = subprocess.Popen(
                    [sys.executable, "-m", "kws.jobs", json.dumps(request)],
                    cwd=config.PROJECT_ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    bufsize=1,
                    pass_fds=(fd,),
                )
            except BaseException:
                os.close(fd)
                raise
            self._job, self._proc = job, proc
            self._status_path = runs / STATUS_FILE
            self._mirror(force=True)
            self._thread = threading.Thread(
                target=self._watch, args=(proc, fd), name=f"kws-train-{job.id}", daemon=True
            )
            self._thread.start()
            logger.info("training %s started by %s (pid %d): %s", job.id, job.owner, proc.pid, ", ".join(cfg.models))
            return copy.deepcopy(job)

    def cancel(self, job_id: str | None = None) -> bool:
        """Ask the running job (``job_id``, if given) to stop; it stops within a batch or two."""
        with self._lock:
            if self._job is None or not self._job.running or (job_id and job_id != self._job.id):
                return False
            self._job.state = "cancelling"
            try:
                self._proc.stdin.write("cancel\n")
                self._proc.stdin.flush()
            except (OSError, ValueError):  # the child is already gone; _watch records the outcome
                pass
            logger.info("training %s: cancel requested", self._job.id)
        return True

    def wait(self, timeout: float | None = None) -> Job | None:
        """Block until the running job ends (for tests and scripts); returns its final state."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            return copy.deepcopy(self._job)

    # -- the watcher thread ----------------------------------------------------------------------------------
    def _watch(self, proc: subprocess.Popen, fd: int) -> None:
        """Runs in a thread of the server: turns the child's events into job state, then frees the lock."""
        end: dict[str, Any] = {}
        try:
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    logger.warning("training child said: %s", line.rstrip())
                    continue
                if event.get("event") == "end":
                    end = event
                else:
                    self._on_event(event)
        finally:
            code = proc.wait()
            for stream in (proc.stdin, proc.stdout):
                stream.close()
            if self._status_path is not None:
                self._status_path.unlink(missing_ok=True)
            os.close(fd)  # with the child gone, this releases the file lock
            with self._lock:
                job = self._job
                job.state = end.get("state") or "failed"
                job.error = end.get("error") or (None if end else f"the training process exited with code {code}")
                job.finished = time.time()
            logger.info("training %s: %s", job.id, job.state)

    def _on_event(self, event: dict[str, Any]) -> None:
        """One progress event from the child: featurization stage, finished epoch, or finished model."""
        with self._lock:
            job = self._job
            kind = event.get("event")
            if kind == "stage":
                stage, done, total = event["stage"], event["done"], event["total"]
                if stage == "reading":
                    job.clips_total = total
                elif stage == "features" and job.stage == "features" and job.stage_done >= job.stage_total:
                    job.features_base += job.stage_total  # the next split began
                job.stage, job.stage_done, job.stage_total = stage, done, total
                job.feature_fraction = max(job.feature_fraction, _feature_fraction(job))
            elif kind == "epoch":
                if job.state == "featurizing":
                    job.state, job.feature_fraction = "training", 1.0
                job.model_index, job.epoch = event["model_index"], event["epoch"]
                hist = job.histories.setdefault(event["model"], {})
                for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
                    if key in event["logs"]:
                        hist.setdefault(key, []).append(event["logs"][key])
            elif kind == "model_done":
                job.finished_models.append(event["name"])
                job.model_index = min(job.model_index + 1, len(job.cfg.models) - 1)
                job.epoch = 0
        self._mirror(force=kind != "stage")

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


def _read_status(path: Path) -> Job | None:
    try:
        return Job.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError) as err:
        logger.warning("unreadable %s: %s", path, err)
        return None


def _feature_fraction(job: Job) -> float:
    """Share of the preparation done: start-up, reading, then the MFCCs of each split in turn."""
    parts = job.estimate.feature_parts
    order = list(parts)
    stage = job.stage if job.stage in parts else order[0]
    if stage == "features":
        share = (job.features_base + job.stage_done) / max(job.clips_total, 1)
    else:
        share = job.stage_done / max(job.stage_total, 1)
    done = sum(parts[k] for k in order[: order.index(stage)]) + parts[stage] * min(share, 1.0)
    return min(1.0, done / max(sum(parts.values()), 1e-9))


def _remove_stale_staging(runs: Path) -> None:
    """Remove staging folders a crashed run left; only called while holding the training lock."""
    for path in runs.glob(".*.staging-*"):
        if modelsets.SET_NAME.match(path.name[1:].split(".staging-")[0]):
            logger.info("removing leftover staging folder %s", path)
            shutil.rmtree(path, ignore_errors=True)


# -- the training child process ---------------------------------------------------------------------------


def _worker(request: dict[str, Any]) -> None:
    """``python -m kws.jobs REQUEST``: train, reporting JSON lines on stdout; "cancel" (or EOF) on stdin stops it.

    EOF means the server went away: the run is cancelled rather than left training for nobody.
    """
    from kws.train import Cancelled, Progress, train

    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries go to the log, never into the event stream
    emit_lock = threading.Lock()
    cancel = threading.Event()

    def emit(**event: Any) -> None:
        with emit_lock:
            events.write(json.dumps(event) + "\n")

    def listen() -> None:  # runs in a thread of the child: waits for "cancel" or the end of stdin
        for line in sys.stdin:
            if line.strip() == "cancel":
                break
        cancel.set()

    def on_stage(stage: str, done: int, total: int) -> None:  # featurization; stops early when cancelled
        if cancel.is_set():
            raise Cancelled("training was cancelled")
        emit(event="stage", stage=stage, done=done, total=total)

    def on_epoch(report: EpochReport) -> None:
        emit(event="epoch", model=report.model, model_index=report.model_index, epoch=report.epoch, logs=report.logs)

    threading.Thread(target=listen, daemon=True, name="cancel-listener").start()
    progress = Progress(
        on_stage=on_stage, on_epoch=on_epoch, on_model_done=lambda name, meta: emit(event="model_done", name=name)
    )
    try:
        train(make_config(**request["cfg"]), request["out_dir"], request["data_dir"], progress=progress, cancel=cancel)
        emit(event="end", state="cancelled" if cancel.is_set() else "done")
    except Cancelled:
        emit(event="end", state="cancelled")
    except Exception as err:  # reported on the page; the traceback goes to the server's log
        logger.exception("training failed")
        emit(event="end", state="failed", error=f"{type(err).__name__}: {err}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _worker(json.loads(sys.argv[1]))
