"""The process manager: at most one training run per runs folder, in a child process, observable and cancellable.

A :class:`TrainingManager` (one per server process; the page gets it through ``kws.ui.state.training_manager``)
starts :mod:`kws.jobs.child` and turns its events into a :class:`~kws.jobs.state.Job`, in a watcher thread, so
page reruns and page switches never interrupt the run (see the class for why not a plain thread). Two locks keep
it to one run: a ``threading.RLock`` within the process and an ``fcntl.flock`` on ``<runs>/train.lock`` between
processes. While a run goes on, its state is mirrored to ``<runs>/training.json`` so another server process can
show who is training what.

Each run writes a new set ``<runs>/<YYYYMMDD-HHMMSS-xxxx>/`` (atomically, by :func:`kws.train.train`); the app
switches to it only when a user adopts it (:func:`kws.modelsets.adopt`).
"""

from __future__ import annotations

import copy
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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kws import config, modelsets
from kws.estimate import estimate, split_counts
from kws.jobs.state import Job

if TYPE_CHECKING:
    from kws.options import TrainConfig

logger = logging.getLogger(__name__)

LOCK_FILE = "train.lock"
STATUS_FILE = "training.json"


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

    The run itself is a child process (``python -m kws.jobs.child``), watched by a thread here. Why not train in
    a thread of the server: Streamlit calls ``keras.backend.clear_session()`` after every script run (any page,
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
                counts = split_counts(data_dir, cfg.limit_per_split, cfg.other)
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
                    [sys.executable, "-m", "kws.jobs.child", json.dumps(request)],
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
                    with self._lock:
                        self._job.on_event(event)
                    self._mirror(force=event.get("event") != "stage")
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


def _remove_stale_staging(runs: Path) -> None:
    """Remove staging folders a crashed run left; only called while holding the training lock."""
    for path in runs.glob(".*.staging-*"):
        if modelsets.SET_NAME.match(path.name[1:].split(".staging-")[0]):
            logger.info("removing leftover staging folder %s", path)
            shutil.rmtree(path, ignore_errors=True)
