"""kws.insights: the comparison rows, the mistakes view, latency timing and the dataset statistics."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from _audio_util import speakers_by_split, tone

from kws import config, insights, timing
from kws.dataset import DatasetMissingError, scan, split_of
from kws.evaluate import Evaluation
from kws.features import PRESETS, shapes


def fake_info(name: str, history: dict | None = None) -> SimpleNamespace:
    """What comparison_rows reads of a :class:`kws.store.ModelInfo`: the name and the metadata."""
    meta = {
        "architecture": name.upper(),
        "params": 1234,
        "size_bytes": 2048,
        "test_accuracy": 0.9,
        "per_class_accuracy": {"bed": 0.8, "happy": 0.9, "cat": 1.0},
        "train_seconds": 12.345,
        "feature_settings": {"name": "standard"},
        "history": history if history is not None else {"accuracy": [0.5, 0.99], "val_accuracy": [0.5, 0.8]},
    }
    return SimpleNamespace(name=name, meta=meta)


# --- comparison -------------------------------------------------------------------------------------------


def test_comparison_rows_come_from_metadata_one_per_model() -> None:
    refit = fake_info("b", history={"accuracy": [0.5, 0.99]})
    refit.meta["fit_on"] = "train+validation"
    rows = insights.comparison_rows([fake_info("a"), refit], {"a": 1.5})
    assert [r["model"] for r in rows] == ["a", "b"]
    a, b = rows
    assert a["params"] == 1234 and a["size_kb"] == 2.0 and a["accuracy"] == 0.9
    assert (a["acc_bed"], a["acc_happy"], a["acc_cat"]) == (0.8, 0.9, 1.0)
    assert a["latency_ms"] == 1.5 and b["latency_ms"] is None  # unmeasured stays empty, not zero
    assert a["train_s"] == 12.3 and a["epochs"] == 2 and a["preset"] == "standard"
    assert a["overfit_gap"] == pytest.approx(0.19) and b["overfit_gap"] is None
    assert (a["fit_on"], b["fit_on"]) == ("train", "train + validation")  # metadata without the key: train
    assert set(insights.COLUMN_TITLES) - {"set", "test_clips"} <= set(a)  # those two: Retrain's table only


def test_split_table_keeps_every_column_once_and_the_model_in_both() -> None:
    rows = insights.comparison_rows([fake_info("a"), fake_info("b")], {"a": 1.5})
    scores, training = insights.split_table(rows)
    assert [r["model"] for r in scores] == [r["model"] for r in training] == ["a", "b"]
    assert list(training[0]) == ["model", *insights.TRAINING_COLUMNS]
    assert set(scores[0]) | set(training[0]) == set(rows[0]) and set(scores[0]) & set(training[0]) == {"model"}
    assert [k for k in scores[0] if k.startswith("acc_")] == ["acc_bed", "acc_happy", "acc_cat"]  # label order
    assert scores[0]["latency_ms"] == 1.5 and training[1]["train_s"] == rows[1]["train_s"]
    assert training[0]["overfit_gap"] == insights.gap_text(rows[0]["overfit_gap"])


def test_the_gap_reads_in_points_and_a_refit_has_none() -> None:
    assert [insights.gap_text(g) for g in (0.19, -0.0062, 0.0)] == ["+19.0 pts", "-0.6 pts", "+0.0 pts"]
    assert insights.gap_text(None) == "— (refit)"  # no validation speakers left: not "None"


def test_every_comparison_column_has_a_title_and_the_numbers_say_what_they_are() -> None:
    rows = insights.comparison_rows([fake_info("a")], {"a": 1.5})
    assert [insights.column_title(k) for k in ("acc_bed", "acc_cat", "accuracy")] == ["bed", "cat", "test accuracy"]
    assert "'happy'" in insights.column_help("acc_happy")  # a header of one word needs its tooltip
    unexplained = [k for k in rows[0] if k not in ("model", "architecture") and not insights.column_help(k)]
    assert unexplained == []


def test_comparison_rows_of_the_shipped_models() -> None:
    from kws.store import list_models

    infos = list_models(config.SHIPPED_MODELS_DIR)
    rows = insights.comparison_rows(infos)
    assert [r["model"] for r in rows] == [i.name for i in infos]
    assert all(0 < r["accuracy"] <= 1 and r["params"] > 0 and r["size_kb"] > 0 for r in rows)


def test_default_curves_show_the_overfitting_pair_when_there() -> None:
    assert insights.default_curve_models(["perceptron", "cnn2", "cnn2_dropout"]) == ["cnn2", "cnn2_dropout"]
    assert insights.default_curve_models(["perceptron", "cnn1"]) == ["perceptron", "cnn1"]
    hist = insights.histories([fake_info("a"), fake_info("b")], ["b"])
    assert list(hist) == ["b"] and hist["b"]["accuracy"] == [0.5, 0.99]


class FakeModel:
    """Stands in for a LoadedModel: records its calls, answers after a fixed delay."""

    def __init__(self, name: str, delay_s: float) -> None:
        self.name, self.settings, self.delay_s, self.calls = name, PRESETS["standard"], delay_s, 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        assert x.shape == (1, *shapes(self.settings).input_shape)
        self.calls += 1
        time.sleep(self.delay_s)
        return np.full((1, 3), 1 / 3, np.float32)


def test_median_latency_times_each_model_after_a_warm_up() -> None:
    fast, slow = FakeModel("fast", 0.0), FakeModel("slow", 0.02)
    clips = [tone(1.0), tone(0.7), tone(1.3)]
    result = timing.median_latency_ms([fast, slow], clips, rounds=2)
    assert set(result) == {"fast", "slow"}
    assert fast.calls == slow.calls == 1 + 2 * len(clips)
    assert result["slow"] >= 20 > result["fast"]
    assert timing.median_latency_ms([fast], []) == {}


class DriftingModel(FakeModel):
    """Costs the same as its twin, but every call anyone makes slows the machine by 1 ms (a drifting CPU)."""

    def __init__(self, name: str, clock: list[int]) -> None:
        super().__init__(name, 0.0)
        self.clock = clock

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.delay_s = 0.001 * self.clock[0]
        self.clock[0] += 1
        return super().__call__(x)


def test_median_latency_shares_a_drifting_machine_fairly() -> None:
    """Timed one after the other, the second of two equal models would come out ~16 ms slower here; in turns,
    each gets early and late calls alike."""
    clock = [0]
    first, second = DriftingModel("first", clock), DriftingModel("second", clock)
    result = timing.median_latency_ms([first, second], [tone(1.0)] * 3, rounds=5)
    assert clock[0] == 2 * (1 + 5 * 3)  # the slowdown reached 31 ms
    assert abs(result["first"] - result["second"]) < 8


# --- mistakes ---------------------------------------------------------------------------------------------


def small_evaluation() -> Evaluation:
    """Four clips (bed, happy, cat, cat) and two models; ``a`` is wrong on clips 1 and 3, ``b`` only on 3."""
    a = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.05, 0.9, 0.05]], np.float32)
    b = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.2, 0.7, 0.1]], np.float32)
    return Evaluation(
        split="test",
        paths=["/d/bed/x_nohash_0.wav", "/d/happy/y_nohash_0.wav", "/d/cat/z_nohash_0.wav", "/d/cat/w_nohash_1.wav"],
        y_true=np.array([0, 1, 2, 2]),
        predictions={"a": a, "b": b},
        scores={},
        skipped=[],
    )


def test_misclassified_lists_the_wrong_clips_most_confident_first() -> None:
    mistakes = insights.misclassified(small_evaluation(), "a")
    assert [m.name for m in mistakes] == ["cat/w_nohash_1.wav", "happy/y_nohash_0.wav"]
    first = mistakes[0]
    assert first.true_word == "cat" and first.predicted.word == "happy"
    assert first.predicted.confidence == pytest.approx(0.9)
    assert set(first.answers) == {"a", "b"}  # what every other model said too
    assert mistakes[1].answers["b"].word == "happy"  # b got this one right
    assert [m.name for m in insights.misclassified(small_evaluation(), "b")] == ["cat/w_nohash_1.wav"]


def test_misclassified_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="a, b"):
        insights.misclassified(small_evaluation(), "nope")


def test_mistake_tables_mark_right_and_wrong() -> None:
    mistakes = insights.misclassified(small_evaluation(), "a")
    table = insights.mistakes_table(mistakes)
    assert list(table[1]) == ["clip", "true word", "a", "b"]
    assert table[1]["a"] == "bed ✗ 60%" and table[1]["b"] == "happy ✓ 80%"
    answers = insights.answers_table(mistakes[1])
    assert [(r["model"], r["says"], r["right"]) for r in answers] == [("a", "bed", False), ("b", "happy", True)]


def test_clip_view_gives_the_model_input_for_each_preset(tmp_path: Path) -> None:
    path = tmp_path / "clip.wav"
    sf.write(path, np.concatenate([np.zeros(8000, np.float32), tone(0.5), np.zeros(8000, np.float32)]), 16000)
    for settings in PRESETS.values():
        view = insights.clip_view(path, settings)
        assert view.features.shape == shapes(settings).input_shape
        assert len(view.samples) == 24000 and view.sample_rate == 16000
        assert 0 <= view.window.start_s < view.window.end_s <= 1.5


# --- dataset statistics -----------------------------------------------------------------------------------


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """Two speakers per split, every word; clips of 0.5 s and 1 s at known levels; one broken file."""
    speakers = speakers_by_split(2)
    for word in config.LABELS:
        (tmp_path / word).mkdir()
        for ids in speakers.values():
            for k, speaker in enumerate(ids):
                seconds = 0.5 if k == 0 else 1.0
                sf.write(tmp_path / word / f"{speaker}_nohash_0.wav", tone(seconds, amp=0.5), 16000, subtype="PCM_16")
    (tmp_path / "cat" / "deadbeef_nohash_9.wav").write_bytes(b"RIFF not really a wav")
    return tmp_path


def test_dataset_stats_of_a_known_folder(tiny_dataset: Path) -> None:
    stats = insights.dataset_stats(tiny_dataset)
    assert len(stats.clips) == 18 and len(stats.skipped) == 1 and "deadbeef" in stats.skipped[0][0]
    assert stats.counts_per_word() == {"bed": 6, "happy": 6, "cat": 6}
    assert stats.clips_per_split() == {"train": 6, "validation": 6, "test": 6}
    assert stats.speakers == 6 and stats.speakers_per_split() == {"train": 2, "validation": 2, "test": 2}
    assert sorted(set(stats.durations)) == [0.5, 1.0]
    assert stats.loudness == pytest.approx([20 * np.log10(0.5 / np.sqrt(2))] * 18, abs=0.1)  # a sine's RMS
    assert all(c.split == split_of(c.path) for c in stats.clips)
    table = {row["word"]: row for row in stats.word_split_table()}
    assert table["bed"] == {"word": "bed", "train": 2, "validation": 2, "test": 2, "total": 6}
    assert table["all clips"]["total"] == 18 and table["speakers"]["total"] == 6


def test_dataset_stats_without_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissingError):
        insights.dataset_stats(tmp_path)


def test_browse_filters_by_word_and_split(tiny_dataset: Path) -> None:
    items = scan(tiny_dataset)
    test_cats = insights.browse(items, "cat", "test")
    assert len(test_cats) == 2 and all(it.label == "cat" and it.split == "test" for it in test_cats)
    assert len(insights.browse(items, "cat", "all")) == 7  # the broken file is listed; reading it is what fails
    assert [it.path for it in test_cats] == sorted(it.path for it in test_cats)


def test_dataset_stats_of_the_real_dataset_are_quick(data_dir: Path) -> None:
    start = time.perf_counter()
    stats = insights.dataset_stats(data_dir)
    elapsed = time.perf_counter() - start
    counts = stats.counts_per_word()
    assert sum(counts.values()) + len(stats.skipped) == len(scan(data_dir, other=True))
    assert list(counts)[:3] == list(config.LABELS) and min(counts[w] for w in config.LABELS) > 1000
    assert set(counts) - set(config.LABELS) <= {insights.OTHER_WORDS, insights.NOISE}
    splits = stats.clips_per_split()
    assert splits["train"] > splits["validation"] > 0 and splits["test"] > 0
    assert 1000 < stats.speakers < len(stats.clips)
    assert all(0 < d <= 1.01 for d in stats.durations)
    assert all(-121 <= db <= 0.5 for db in stats.loudness)
    assert elapsed < 30, f"dataset statistics took {elapsed:.1f} s"
