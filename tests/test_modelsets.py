"""Model sets: listing, adopting and restoring atomically, never touching the shipped models.

Sets are made by copying one shipped model's files (no training, no TensorFlow), in a temporary runs folder.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from _audio_util import make_model_set as make_set
from _audio_util import smallest_shipped_model

from kws import config, modelsets, store

SHIPPED_MODEL = smallest_shipped_model()


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs"
    monkeypatch.setenv("KWS_RUNS_DIR", str(path))
    return path


def shipped_stamp() -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in config.SHIPPED_MODELS_DIR.iterdir()}


def test_without_active_file_the_shipped_models_are_used(runs: Path) -> None:
    assert modelsets.active_models_dir() == config.SHIPPED_MODELS_DIR
    assert modelsets.active_set() == modelsets.SHIPPED
    assert modelsets.previous_set() is None
    sets = modelsets.list_sets()
    assert [s.name for s in sets] == [modelsets.SHIPPED] and sets[0].active


def test_list_sets_ignores_staging_and_foreign_folders(runs: Path) -> None:
    make_set(runs, "20260101-000000-aaaa")
    make_set(runs, "20260102-000000-bbbb")
    (runs / ".20260103-000000-cccc.staging-x1").mkdir()  # a run still being written
    (runs / "notes").mkdir()
    (runs / "20260104-000000-dddd").mkdir()  # empty: not a usable set
    names = [s.name for s in modelsets.list_sets()]
    assert names == [modelsets.SHIPPED, "20260102-000000-bbbb", "20260101-000000-aaaa"]
    rows = modelsets.set_rows()
    assert [r["in use"] for r in rows] == ["✓", "", ""]
    assert rows[1]["test clips"] == 6
    assert list(rows[1]) == ["set", "in use", "models", "features", "mean test accuracy", "test clips"]
    assert 0 < rows[1]["mean test accuracy"] <= 1  # a share; the page shows it as a percentage


def test_adopt_then_restore_walks_back_to_the_shipped_models(runs: Path) -> None:
    before = shipped_stamp()
    a, b = make_set(runs, "20260101-000000-aaaa"), make_set(runs, "20260102-000000-bbbb")
    modelsets.adopt(a)
    assert modelsets.active_models_dir() == runs / a
    assert modelsets.previous_set() == modelsets.SHIPPED
    modelsets.adopt(b)
    assert modelsets.active_set() == b and modelsets.previous_set() == a
    assert modelsets.restore_previous() == a
    assert modelsets.active_set() == a
    assert modelsets.restore_previous() == modelsets.SHIPPED
    assert modelsets.active_models_dir() == config.SHIPPED_MODELS_DIR
    assert modelsets.previous_set() is None and modelsets.restore_previous() is None
    assert shipped_stamp() == before  # switching never writes the shipped folder


def test_adopting_the_set_in_use_changes_nothing(runs: Path) -> None:
    a = make_set(runs, "20260101-000000-aaaa")
    modelsets.adopt(a)
    text = (runs / modelsets.ACTIVE_FILE).read_text()
    modelsets.adopt(a)
    assert (runs / modelsets.ACTIVE_FILE).read_text() == text


def test_restore_skips_sets_that_were_deleted(runs: Path) -> None:
    a, b = make_set(runs, "20260101-000000-aaaa"), make_set(runs, "20260102-000000-bbbb")
    modelsets.adopt(a)
    modelsets.adopt(b)
    shutil.rmtree(runs / a)
    assert modelsets.previous_set() == modelsets.SHIPPED
    assert modelsets.restore_previous() == modelsets.SHIPPED
    shutil.rmtree(runs / b)  # the active folder vanishing falls back to the shipped models
    assert modelsets.active_models_dir() == config.SHIPPED_MODELS_DIR


def test_delete_removes_a_retrained_set_and_refuses_the_rest(runs: Path) -> None:
    a, b = make_set(runs, "20260101-000000-aaaa"), make_set(runs, "20260102-000000-bbbb")
    (runs / ".deleting-20251231-000000-ffff" / "half").mkdir(parents=True)  # what a crash mid-removal leaves
    before = shipped_stamp()
    modelsets.adopt(a)
    modelsets.adopt(b)
    with pytest.raises(ValueError, match="shipped models cannot be deleted"):
        modelsets.delete(modelsets.SHIPPED)
    with pytest.raises(ValueError, match=f"`{b}` is in use; switch the app to another set"):
        modelsets.delete(b)
    with pytest.raises(ValueError, match="not a model set name"):
        modelsets.delete("../models")
    with pytest.raises(ValueError, match="There is no model set `20260103-000000-cccc`"):
        modelsets.delete("20260103-000000-cccc")
    assert modelsets.exists(a) and not modelsets.exists("../models")

    modelsets.delete(a)
    assert not modelsets.exists(a) and sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == [
        b,
        modelsets.ACTIVE_FILE,
    ]
    assert not list(runs.glob(".deleting-*"))  # its own hidden copy and the crash's leftover are gone
    assert [s.name for s in modelsets.list_sets()] == [modelsets.SHIPPED, b]
    assert modelsets.previous_set() == modelsets.SHIPPED  # the history skips the deleted set
    assert modelsets.active_set() == b and shipped_stamp() == before


def test_bad_names_and_unusable_sets_are_refused(runs: Path) -> None:
    (runs / "20260104-000000-dddd").mkdir(parents=True)
    with pytest.raises(ValueError, match="not a model set name"):
        modelsets.adopt("../models")
    with pytest.raises(store.ModelStoreError):
        modelsets.adopt("20260104-000000-dddd")
    with pytest.raises(store.ModelStoreError):
        modelsets.adopt("20260105-000000-eeee")  # no such folder
    assert not (runs / modelsets.ACTIVE_FILE).exists()


def test_unreadable_active_file_means_shipped_and_can_be_replaced(runs: Path) -> None:
    runs.mkdir()
    (runs / modelsets.ACTIVE_FILE).write_text("{not json")
    assert modelsets.active_models_dir() == config.SHIPPED_MODELS_DIR
    a = make_set(runs, "20260101-000000-aaaa")
    modelsets.adopt(a)
    assert modelsets.active_set() == a


@pytest.mark.parametrize("first", [True, False], ids=["first-switch", "later-switch"])
def test_a_crash_while_switching_leaves_the_old_state(runs: Path, monkeypatch: pytest.MonkeyPatch, first: bool) -> None:
    a, b = make_set(runs, "20260101-000000-aaaa"), make_set(runs, "20260102-000000-bbbb")
    if not first:
        modelsets.adopt(a)
    pointer = runs / modelsets.ACTIVE_FILE
    before = pointer.read_bytes() if pointer.exists() else None
    active, previous = modelsets.active_models_dir(), modelsets.previous_set()

    def crash(src, dst):  # the process dies just before the one step that switches
        raise OSError("simulated crash in os.replace")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        modelsets.adopt(b)
    with pytest.raises(OSError, match="simulated crash"):
        modelsets.restore_previous() if not first else modelsets.adopt(a)
    monkeypatch.undo()
    monkeypatch.setenv("KWS_RUNS_DIR", str(runs))

    assert (pointer.read_bytes() if pointer.exists() else None) == before
    assert modelsets.active_models_dir() == active and modelsets.previous_set() == previous
    leftovers = [p.name for p in runs.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    modelsets.adopt(b)  # and the next switch works
    assert modelsets.active_set() == b


def test_concurrent_switches_keep_every_history_entry(runs: Path) -> None:
    names = [make_set(runs, f"2026010{i}-000000-aaaa") for i in range(1, 7)]
    threads = [threading.Thread(target=modelsets.adopt, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = json.loads((runs / modelsets.ACTIVE_FILE).read_text())["history"]
    assert sorted(h["set"] for h in history[1:]) == names
    assert history[0]["set"] == modelsets.SHIPPED
    assert modelsets.active_set() == history[-1]["set"]


def test_compare_rows_pairs_new_models_with_the_set_in_use(runs: Path) -> None:
    a = make_set(runs, "20260101-000000-aaaa", accuracy=0.25)
    rows = modelsets.compare_rows(a)
    assert [r["set"] for r in rows] == ["new", f"in use ({modelsets.SHIPPED})"]
    assert rows[0]["accuracy"] == 0.25 and rows[1]["accuracy"] == round(SHIPPED_MODEL.meta["test_accuracy"], 4)
    assert {f"acc_{w}" for w in config.LABELS} <= set(rows[0])  # the Compare table's keys: one formatter for both
    assert {"train_s", "params", "epochs", "test_clips"} <= set(rows[0])
    assert modelsets.comparison_baseline(a) == modelsets.SHIPPED
    modelsets.adopt(a)  # once adopted, it is compared with the set it replaced
    assert modelsets.comparison_baseline(a) == modelsets.SHIPPED
