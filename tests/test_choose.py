"""experiments/choose.py: candidates are compared on validation speakers (clean and stressed), never on test."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from _audio_util import bench_script, have_shipped_models, make_dataset

from kws import config
from kws.store import fitted_splits

pytest.importorskip("kws.train")  # loads TensorFlow


def _choose_module():
    return bench_script("choose", "experiments")


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


def test_candidates_are_scored_on_validation_clips_only(tmp_path: Path, monkeypatch, caplog) -> None:
    if not have_shipped_models():
        pytest.skip("no shipped models in models/")
    module = _choose_module()
    make_dataset(tmp_path / "data")
    other = tmp_path / "other"
    other.mkdir()
    for src in config.SHIPPED_MODELS_DIR.glob("perceptron.*"):  # its files, with the int8 copy where it ships one
        shutil.copy2(src, other / src.name)
    # a refit learnt the validation clips: nothing is left to score it on
    for src in config.SHIPPED_MODELS_DIR.glob("lstm.*"):
        if src.suffix != ".json":
            shutil.copy2(src, other / src.name)
    meta = json.loads((config.SHIPPED_MODELS_DIR / "lstm.json").read_text())
    (other / "lstm.json").write_text(json.dumps(meta | {"fit_on": "train+validation"}))
    read_splits: set[str] = set()
    original = module.dataset.load_waveforms

    def spy(items, *args, **kwargs):
        read_splits.update(it.split for it in items)
        return original(items, *args, **kwargs)

    monkeypatch.setattr(module.dataset, "load_waveforms", spy)
    rows = module.score_candidates([config.SHIPPED_MODELS_DIR, other], tmp_path / "data", copies=2, seed=0)
    assert read_splits == {"validation"}
    names = [r["model"] for r in rows]
    shipped = [json.loads(p.read_text()) for p in config.SHIPPED_MODELS_DIR.glob("*.json")]
    assert names.count("perceptron") == 2
    assert len(names) == sum("validation" not in fitted_splits(m) for m in shipped) + 1
    assert not any(r["model"] == "lstm" and r["candidate"] == str(other) for r in rows)
    assert f"lstm in {other} learnt from the validation clips" in caplog.text
    for row in rows:
        assert row["clips"] == 6 * 3  # 2 speakers x 3 words, plus 2 stressed copies of each
        assert 0 <= row["validation_errors"] <= 6 and 0 <= row["stressed_errors"] <= 12
    # the same model in two folders scores the same
    a, b = (r for r in rows if r["model"] == "perceptron")
    assert (a["validation_errors"], a["stressed_errors"]) == (b["validation_errors"], b["stressed_errors"])
    assert set(module.choose(rows)) == set(names)


def test_mcnemar_counts_only_the_clips_where_the_two_disagree() -> None:
    p = _choose_module().mcnemar_p
    never, always = np.zeros(20, bool), np.ones(20, bool)
    assert p(always, always) == 1.0  # both wrong everywhere: no evidence either way
    incumbent = np.zeros(20, bool)
    incumbent[:8] = True  # the challenger fixes 8 clips and breaks none
    assert p(incumbent, never) == pytest.approx(0.5**8)
    challenger = np.zeros(20, bool)
    challenger[8:13] = True  # ...or fixes 8 and breaks 5
    assert p(incumbent, challenger) == pytest.approx(sum(math.comb(13, k) for k in range(8, 14)) / 2**13)


def test_a_shipped_model_is_replaced_only_on_a_significant_margin() -> None:
    module = _choose_module()

    def row(model: str, candidate: str, wrong: np.ndarray) -> dict:
        return _row(model, candidate, 0, int(wrong.sum()), 0.01) | {"_wrong": wrong}

    base = np.zeros(2525, bool)
    base[:18] = True
    close = np.zeros(2525, bool)
    close[2:18] = True  # two errors fewer: what once replaced a shipped best
    far = np.zeros(2525, bool)
    far[16:18] = True  # sixteen fewer
    rows = [
        row("best", "models", base),
        row("best", "run", close),
        row("cnn2", "models", base),
        row("cnn2", "run", far),
    ]
    chosen = module.choose(rows)
    assert {n: r["candidate"] for n, r in chosen.items()} == {"best": "run", "cnn2": "run"}
    kept = module.keep_incumbent(rows, chosen, "models", alpha=0.05)
    assert {n: r["candidate"] for n, r in kept.items()} == {"best": "models", "cnn2": "run"}
    assert rows[1]["p_vs_incumbent"] == pytest.approx(0.25)  # 2 fixed, 0 broken
    assert rows[3]["p_vs_incumbent"] < 0.001


def test_a_significant_win_with_more_clean_errors_keeps_the_shipped_model() -> None:
    """Fewer stressed errors can come from training on more of the augmentation they are made with."""
    module = _choose_module()
    held_wrong = np.zeros(2525, bool)
    held_wrong[505:605] = True  # 100 stressed errors, no clean ones
    new_wrong = np.zeros(2525, bool)
    new_wrong[:3] = True  # 3 clean errors, no stressed ones
    rows = [
        _row("perceptron", "models", 0, 100, 0.4) | {"_wrong": held_wrong},
        _row("perceptron", "run", 3, 0, 0.4) | {"_wrong": new_wrong},
    ]
    chosen = module.choose(rows)
    assert chosen["perceptron"]["candidate"] == "run"
    kept = module.keep_incumbent(rows, chosen, "models", alpha=0.05)
    assert kept["perceptron"]["candidate"] == "models" and rows[1]["p_vs_incumbent"] < 0.001
