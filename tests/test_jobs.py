"""The background training manager: tiny real runs, cancel, one run at a time, estimates.

Every run uses a temporary ``KWS_RUNS_DIR`` and a few clips per split (``limit_per_split``), so nothing
touches the real ``runs/`` or ``models/`` and each run takes seconds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from kws import config, jobs, modelsets, store
from kws.dataset import DatasetMissingError
from kws.estimate import Estimate
from kws.jobs.manager import LOCK_FILE, STATUS_FILE, new_set_name
from kws.options import make_config

TINY = dict(limit_per_split=6, batch_size=4, augment_copies=1)


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs"
    monkeypatch.setenv("KWS_RUNS_DIR", str(path))
    return path


def wait_until(predicate, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


def shipped_stamp() -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in config.SHIPPED_MODELS_DIR.iterdir()}


# -- without training ---------------------------------------------------------------------------------------


def test_start_without_dataset_raises_and_frees_the_lock(runs: Path, tmp_path: Path) -> None:
    manager = jobs.TrainingManager()
    cfg = make_config(models=["perceptron"], epochs=1, **TINY)
    for _ in range(2):  # the second attempt is refused for the same reason, not as "busy"
        with pytest.raises(DatasetMissingError):
            manager.start(cfg, owner="ann", data_dir=tmp_path / "empty")
    assert manager.current() is None
    assert not (runs / STATUS_FILE).exists()


# -- tiny real runs ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_short_run_writes_a_complete_set_and_leaves_the_active_one(runs: Path, data_dir: Path) -> None:
    before = shipped_stamp()
    manager = jobs.TrainingManager()
    seen: list[str] = []
    job = manager.start(make_config(models=["perceptron", "cnn1"], epochs=2, **TINY), owner="ann", data_dir=data_dir)
    assert job.running and job.owner == "ann" and modelsets.SET_NAME.match(job.id)
    while (now := manager.current()) is not None and now.running:
        seen.append(now.state)
        time.sleep(0.05)
    final = manager.wait(60)
    assert final.state == "done", final.error
    assert final.fraction == 1.0 and "featurizing" in seen and "training" in seen
    assert set(final.histories) == {"perceptron", "cnn1"}
    assert all(len(h["loss"]) == 2 and len(h["val_accuracy"]) == 2 for h in final.histories.values())
    infos = store.list_models(runs / job.id)
    assert [i.name for i in infos] == ["perceptron", "cnn1"]
    for info in infos:
        assert all(key in info.meta for key in store.REQUIRED_META)
        assert info.meta["train_config"]["limit_per_split"] == 6 and info.meta["size_bytes"] > 0
    assert modelsets.active_models_dir() == config.SHIPPED_MODELS_DIR  # a run never switches the app by itself
    assert sorted(p.name for p in runs.iterdir()) == sorted([job.id, LOCK_FILE])  # no staging, no status
    assert shipped_stamp() == before


@pytest.mark.slow
def test_cancel_mid_run_leaves_the_active_set_and_writes_nothing(runs: Path, data_dir: Path) -> None:
    old = runs / "20260101-000000-aaaa"  # a retrained set in use before the run
    old.mkdir(parents=True)
    for info in store.list_models(config.SHIPPED_MODELS_DIR)[:1]:
        for path in (info.keras_path, info.keras_path.with_suffix(".json")):
            (old / path.name).write_bytes(path.read_bytes())
    modelsets.adopt(old.name)
    pointer = (runs / modelsets.ACTIVE_FILE).read_bytes()

    manager = jobs.TrainingManager()
    cfg = make_config(models=["perceptron", "cnn1"], epochs=500, patience=500, **TINY)
    job = manager.start(cfg, owner="ann", data_dir=data_dir)
    wait_until(lambda: (j := manager.current()) and j.epoch >= 2, what="two epochs")
    asked = time.monotonic()
    assert manager.cancel(job.id)
    assert manager.current().state == "cancelling"
    final = manager.wait(60)
    assert time.monotonic() - asked < 20
    assert final.state == "cancelled" and final.status_text.startswith("Cancelled")
    assert (runs / modelsets.ACTIVE_FILE).read_bytes() == pointer
    assert modelsets.active_models_dir() == old
    expected = [old.name, LOCK_FILE, modelsets.ACTIVE_FILE, ".active.lock"]
    assert sorted(p.name for p in runs.iterdir()) == sorted(expected)  # no new set, no staging, no status
    assert not manager.cancel(job.id)  # nothing left to cancel


@pytest.mark.slow
def test_train_stops_within_a_batch_or_two_of_cancel(tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    """kws.train's own guarantee, which the manager relies on (checked in-process, where batches can be counted)."""
    from kws import train

    cancel = threading.Event()
    batches_after_cancel: list[int] = []
    original = train._Listener.on_train_batch_end

    def counting(self, batch, logs=None):
        if cancel.is_set():
            batches_after_cancel.append(batch)
        return original(self, batch, logs)

    scratch = tmp_path / "scratch"  # where the run's augmented epochs wait on disk
    scratch.mkdir()
    stored: list[int] = []

    def on_epoch(report) -> None:
        stored.append(len(list(scratch.glob("*/*.npy"))))
        if report.epoch == 2:
            cancel.set()

    monkeypatch.setattr(train._Listener, "on_train_batch_end", counting)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    cfg = make_config(models=["perceptron"], epochs=50, patience=50, **TINY)
    target = tmp_path / "set"
    with pytest.raises(train.Cancelled):
        train.train(cfg, target, data_dir, progress=train.Progress(on_epoch=on_epoch), cancel=cancel)
    assert 1 <= len(batches_after_cancel) <= 2
    assert not target.exists() and list(tmp_path.iterdir()) == [scratch]
    assert stored == [1, 2]  # one file per epoch while it ran ...
    assert list(scratch.iterdir()) == []  # ... gone with the run


@pytest.mark.slow
def test_cancel_before_training_starts(runs: Path, data_dir: Path) -> None:
    manager = jobs.TrainingManager()
    job = manager.start(make_config(models=["perceptron"], epochs=3, **TINY), owner="ann", data_dir=data_dir)
    manager.cancel()
    final = manager.wait(60)
    assert final.state == "cancelled" and not final.histories
    assert not (runs / job.id).exists() and not list(runs.glob(".*staging*"))


@pytest.mark.slow
def test_two_concurrent_starts_one_is_refused(runs: Path, data_dir: Path) -> None:
    manager = jobs.TrainingManager()
    cfg = make_config(models=["perceptron"], epochs=500, patience=500, **TINY)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def attempt(owner: str) -> None:
        barrier.wait()
        try:
            outcomes.append(manager.start(cfg, owner=owner, data_dir=data_dir))
        except jobs.Busy as err:
            outcomes.append(err)

    threads = [threading.Thread(target=attempt, args=(who,)) for who in ("ann", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [o for o in outcomes if isinstance(o, jobs.Job)]
    refused = [o for o in outcomes if isinstance(o, jobs.Busy)]
    assert len(started) == 1 and len(refused) == 1
    assert started[0].owner in str(refused[0]) and "one training at a time" in str(refused[0])

    # a second manager on the same runs folder (as a second server process would be) is refused by the file lock
    other = jobs.TrainingManager()
    wait_until(lambda: (runs / STATUS_FILE).exists(), what="status file")
    with pytest.raises(jobs.Busy, match=started[0].owner):
        other.start(cfg, owner="cy", data_dir=data_dir)
    seen = other.current()
    assert seen is not None and seen.owner == started[0].owner and seen.running
    manager.cancel()
    assert manager.wait(60).state == "cancelled"
    assert other.current() is None  # the run is over for everyone
    again = other.start(make_config(models=["perceptron"], epochs=1, **TINY), owner="cy", data_dir=data_dir)
    assert other.wait(60).state == "done" and (runs / again.id).is_dir()


def test_a_run_in_another_process_is_shown_and_blocks_starting(runs: Path, data_dir: Path) -> None:
    runs.mkdir()
    foreign = jobs.Job(
        id=new_set_name(),
        owner="dora",
        cfg=make_config(models=["lstm"], epochs=3),
        estimate=Estimate({"reading": 1.0, "features": 1.0}, {"lstm": 10.0}, {"lstm": "cost table"}),
        started=time.time(),
        state="training",
        epoch=2,
    )
    (runs / STATUS_FILE).write_text(json.dumps(foreign.to_dict()))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR|os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)", str(runs / LOCK_FILE)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        manager = jobs.TrainingManager()
        seen = manager.current()
        assert seen is not None and seen.owner == "dora" and "lstm" in seen.summary and "epoch 2/3" in seen.summary
        with pytest.raises(jobs.Busy, match="dora"):
            manager.start(make_config(models=["perceptron"], epochs=1, **TINY), data_dir=data_dir)
    finally:
        holder.kill()
        holder.wait()
    # the other process died without cleaning up: its status file is stale and is removed
    assert manager.current() is None
    assert not (runs / STATUS_FILE).exists()


def test_leftover_staging_folders_are_removed_when_a_run_starts(runs: Path, data_dir: Path) -> None:
    stale = runs / ".20260101-000000-aaaa.staging-abc123"
    stale.mkdir(parents=True)
    (stale / "perceptron.keras").write_bytes(b"half")
    unrelated = runs / ".something.staging-x"
    unrelated.mkdir()
    manager = jobs.TrainingManager()
    manager.start(make_config(models=["perceptron"], epochs=1, **TINY), data_dir=data_dir)
    manager.cancel()
    manager.wait(60)
    assert not stale.exists() and unrelated.exists()
    assert os.path.exists(runs / LOCK_FILE)


def two_model_job(started: float) -> jobs.Job:
    """A run of perceptron then lstm, 4 epochs, expected to take 2 + 5 + 10 = 17 s."""
    return jobs.Job(
        id=new_set_name(),
        owner="ada",
        cfg=make_config(models=["perceptron", "lstm"], epochs=4),
        estimate=Estimate({"reading": 1.0, "features": 1.0}, {"perceptron": 5.0, "lstm": 10.0}, {}),
        started=started,
    )


def test_status_says_what_is_happening_from_start_to_the_last_save() -> None:
    job = two_model_job(started=time.time())
    assert job.status_text.startswith("Starting the training process")
    job.state, job.epoch, job.feature_fraction = "training", 3, 1.0
    assert job.status_text == "Training perceptron (1 of 2), epoch 3/4"
    job.finished_models, job.model_index, job.epoch = ["perceptron"], 1, 0
    assert job.status_text == "Training lstm (2 of 2), epoch 0/4"
    # after the last model: not "epoch 0/4" of a model that has finished
    job.finished_models = ["perceptron", "lstm"]
    assert job.status_text == "Saving the new set of 2 models" and job.fraction == 1.0
    assert job.seconds_left is None and "left" not in job.summary


def test_time_left_follows_this_runs_pace_not_the_estimate() -> None:
    """Estimated 17 s in all; a third done after 60 s (a slow day): about two minutes to go, not 11 s."""
    job = two_model_job(started=time.time() - 60)
    assert job.seconds_left is None  # still featurizing: no pace yet
    job.state, job.epoch, job.feature_fraction = "training", 3, 1.0
    done = (2 + 5 * 3 / 4) / 17
    assert job.fraction == pytest.approx(done)
    assert job.seconds_left == pytest.approx(60 * (1 - done) / done, rel=0.02)  # ~117 s
    assert re.search(r"\(34%; about 1 min 5\d s left at this pace, or less if early stopping", job.summary)
    job.state = "cancelling"
    assert job.seconds_left is None
