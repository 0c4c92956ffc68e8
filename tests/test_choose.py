"""bench/choose.py: candidates are compared on validation speakers (clean and stressed), never on test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _audio_util import bench_script, have_shipped_models, make_dataset

from kws import config

pytest.importorskip("kws.train")  # loads TensorFlow


def _choose_module():
    return bench_script("choose")


def _row(model: str, candidate: str, val: int, stressed: int, loss: float) -> dict:
    return {
        "model": model,
        "candidate": candidate,
        "validation_errors": val,
        "stressed_errors": stressed,
        "validation_log_loss": loss,
    }


def test_fewest_errors_win_and_ties_go_to_the_lower_loss() -> None:
    choose = _choose_module().choose
    rows = [
        _row("cnn1", "a", 6, 81, 0.06),
        _row("cnn1", "b", 5, 57, 0.03),
        _row("best", "a", 1, 20, 0.008),
        _row("best", "b", 2, 19, 0.007),  # same total, lower loss
        _row("lstm", "a", 3, 40, 0.02),
    ]
    chosen = choose(rows)
    assert {name: row["candidate"] for name, row in chosen.items()} == {"cnn1": "b", "best": "b", "lstm": "a"}


def test_candidates_are_scored_on_validation_clips_only(tmp_path: Path, monkeypatch) -> None:
    if not have_shipped_models():
        pytest.skip("no shipped models in models/")
    module = _choose_module()
    make_dataset(tmp_path / "data")
    other = tmp_path / "other"
    other.mkdir()
    for suffix in (".keras", ".json"):
        shutil.copy2(config.SHIPPED_MODELS_DIR / f"perceptron{suffix}", other / f"perceptron{suffix}")
    read_splits: set[str] = set()
    original = module.dataset.load_waveforms

    def spy(items, *args, **kwargs):
        read_splits.update(it.split for it in items)
        return original(items, *args, **kwargs)

    monkeypatch.setattr(module.dataset, "load_waveforms", spy)
    rows = module.score_candidates([config.SHIPPED_MODELS_DIR, other], tmp_path / "data", copies=2, seed=0)
    assert read_splits == {"validation"}
    names = [r["model"] for r in rows]
    assert names.count("perceptron") == 2 and len(names) == len(list(config.SHIPPED_MODELS_DIR.glob("*.json"))) + 1
    for row in rows:
        assert row["clips"] == 6 * 3  # 2 speakers x 3 words, plus 2 stressed copies of each
        assert 0 <= row["validation_errors"] <= 6 and 0 <= row["stressed_errors"] <= 12
    # the same model in two folders scores the same
    a, b = (r for r in rows if r["model"] == "perceptron")
    assert (a["validation_errors"], a["stressed_errors"]) == (b["validation_errors"], b["stressed_errors"])
    assert set(module.choose(rows)) == set(names)
