"""The expected time of a training run: clips per split, the cost table, past runs' pace."""

from __future__ import annotations

from pathlib import Path

import pytest

from kws import config, estimate, options, store
from kws.config import LABELS
from kws.dataset import DatasetMissingError, scan
from kws.options import make_config


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs"
    monkeypatch.setenv("KWS_RUNS_DIR", str(path))
    return path


def test_split_counts_mirror_the_training_limit(data_dir: Path) -> None:
    full, keywords = estimate.split_counts(data_dir), estimate.split_counts(data_dir, other=False)
    assert full["train"] > full["validation"] > 0 and full["test"] > 0
    assert all(full[s] > keywords[s] > 0 for s in full)  # a run that learns other reads the other words too
    assert sum(keywords.values()) == sum(1 for it in scan(data_dir) if it.label in LABELS)
    assert estimate.split_counts(data_dir, limit=8) == {"train": 8, "validation": 8, "test": 8}
    assert estimate.split_counts(data_dir, limit=1) == {"train": 4, "validation": 4, "test": 4}  # one per label
    assert estimate.split_counts(data_dir, limit=6, other=False) == {"train": 6, "validation": 6, "test": 6}
    assert estimate.split_counts(data_dir, limit=1, other=False) == {"train": 3, "validation": 3, "test": 3}


def test_split_counts_without_dataset_say_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissingError, match="KWS_DATA_DIR"):
        estimate.split_counts(tmp_path)


def test_estimate_uses_past_runs_where_it_has_them_else_the_cost_table() -> None:
    cfg = make_config(models=["perceptron", "lstm"], epochs=10, limit_per_split=None)
    counts = {"train": 1000, "validation": 100, "test": 100}
    est = estimate.estimate(cfg, counts, rates={("perceptron", "standard", "today"): 0.1})
    assert est.sources == {"perceptron": "past runs", "lstm": "cost table"}
    examples = 1000 * (1 + cfg.augment_copies)
    assert est.per_model["perceptron"] == pytest.approx(estimate.MODEL_OVERHEAD_S + 0.1 * examples * 10 / 1000)
    assert est.per_model["lstm"] == pytest.approx(
        estimate.MODEL_OVERHEAD_S + estimate.COST_MS["standard"]["lstm"] * examples / 1000 * 10
    )
    assert est.total_seconds == pytest.approx(est.feature_seconds + sum(est.per_model.values()))
    text = est.describe()
    assert "Expected time" in text and "past runs" in text and "cost table" in text
    # augmented variants are made once a run, for every model: the first model carries their cost
    first = estimate.estimate(make_config(models=["lstm", "cnn1"], epochs=10), counts, rates={})
    augment_s = 1000 * cfg.augment_copies * estimate.AUGMENT_MS["standard"] / 1000
    assert first.per_model["lstm"] == pytest.approx(est.per_model["lstm"] + augment_s * 10)
    no_aug = estimate.estimate(make_config(models=["lstm"], epochs=10, augment=False), counts, rates={})
    assert no_aug.per_model["lstm"] == pytest.approx(
        estimate.MODEL_OVERHEAD_S + estimate.COST_MS["standard"]["lstm"] * 1000 * 10 / 1000
    )
    assert "Early stopping may finish sooner" in no_aug.describe()
    # a refit learns from the validation clips too, and runs every epoch
    refit_cfg = make_config(models=["lstm"], epochs=10, augment=False, fit_on="train+validation")
    refit = estimate.estimate(refit_cfg, counts, rates={})
    assert refit.per_model["lstm"] == pytest.approx(
        estimate.MODEL_OVERHEAD_S + estimate.COST_MS["standard"]["lstm"] * 1100 * 10 / 1000
    )
    assert "Early stopping" not in refit.describe() and not refit.early_stopping


def test_default_settings_are_estimated_to_finish_in_a_few_minutes(data_dir: Path) -> None:
    cfg = make_config(**options.page_defaults(), limit_per_split=None)
    est = estimate.estimate(cfg, estimate.split_counts(data_dir), rates={})
    assert 30 < est.total_seconds < 5 * 60


def test_past_rates_come_from_full_runs_in_the_model_sets(runs: Path) -> None:
    rates = estimate.past_rates()
    for info in store.list_models(config.SHIPPED_MODELS_DIR):
        if info.meta.get("split_counts", {}).get("train", 0) >= 1000:
            assert rates[(info.name, info.meta["feature_settings"]["name"], "today")] > 0


def test_the_lecture_networks_have_their_own_pace(runs: Path) -> None:
    """Under the same names and preset, the lecture's networks are smaller than today's: their past runs (the
    shipped lecture set) and their cost table are their own."""
    rates = estimate.past_rates()
    lecture = [i for i in store.list_models(config.LECTURE_MODELS_DIR)]
    assert lecture and all(rates[(i.name, i.meta["feature_settings"]["name"], "lecture")] > 0 for i in lecture)
    assert set(estimate.LECTURE_COST_MS) == set(config.ARCHITECTURES) - {"best"}
    counts = {"train": 1000, "validation": 100, "test": 100}
    today = make_config(models=["cnn2"], preset="lecture_exact", epochs=10, augment=False)
    theirs = make_config(models=["cnn2"], preset="lecture_exact", epochs=10, augment=False, zoo="lecture")
    assert (
        estimate.estimate(theirs, counts, rates={}).per_model["cnn2"]
        < estimate.estimate(today, counts, rates={}).per_model["cnn2"]
    )


def test_every_preset_and_architecture_has_a_cost() -> None:
    """The Retrain page offers every preset: each needs a figure per architecture, or the estimate fails."""
    from kws import config
    from kws.features import PRESETS

    for name in PRESETS:
        assert set(estimate.COST_MS[name]) == set(config.ARCHITECTURES), name
        assert name in estimate.FEATURE_MS and name in estimate.AUGMENT_MS, name
