"""The open world: other words and noise in the dataset, their split, and how answers of ``other`` are scored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws import config, dataset, evaluate
from kws.inference import said
from tests._audio_util import RATE, make_noisy_dataset, saying, word_like

FOUR = config.LABEL_SETS[0]


def test_the_pinned_other_word_speakers_are_learnt_from_and_the_rest_keep_the_dataset_hash() -> None:
    pinned = sorted(dataset.open_speakers())
    assert len(pinned) == 69
    splits = [dataset.split_of(f"up/{s}_nohash_0.wav") for s in pinned]
    assert "test" not in splits and splits.count("train") > splits.count("validation") > 0
    # the same speaker lands on the same side whatever the word or take
    assert {dataset.split_of(f"{w}/{pinned[0]}_nohash_{n}.wav") for w in ("up", "bed", "wow") for n in (0, 3)} == {
        splits[0]
    }
    # any other speaker keeps the dataset's own which_set, keywords and other words alike
    for name in ("0a7c2a8d", "ffffffff", "1234abcd"):
        assert name not in dataset.open_speakers()
        assert dataset.split_of(f"yes/{name}_nohash_0.wav") == dataset.split_of(f"bed/{name}_nohash_1.wav")


def test_scan_lists_other_words_and_noise_as_other_only_when_asked(tmp_path: Path) -> None:
    root = make_noisy_dataset(tmp_path / "data")
    (root / "yes").mkdir()
    sf.write(root / "yes" / "022cd682_nohash_0.wav", word_like(0.5, seed=3), RATE)
    keywords = dataset.scan(root)
    assert {it.label for it in keywords} == set(config.LABELS)
    items = dataset.scan(root, other=True)
    others = [it for it in items if it.label == config.OTHER]
    assert {it.word for it in others} == {"yes", dataset.NOISE_FOLDER}
    assert items[: len(keywords)] == keywords  # the keywords first, unchanged
    yes = next(it for it in others if it.word == "yes")
    assert yes.split in ("train", "validation") and yes.label_index == 3
    assert sum(it.is_noise for it in others) == 2


def _probs(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, np.float32)


def test_open_scores_count_false_accepts_and_false_rejects_at_the_threshold() -> None:
    y = np.array([0, 1, 2, 3, 3])  # bed, happy, cat, two other clips
    probs = _probs(
        [
            [0.9, 0.05, 0.0, 0.05],  # bed, sure: accepted
            [0.1, 0.5, 0.0, 0.4],  # happy but not sure: a false reject, yet its top answer is right
            [0.0, 0.0, 0.1, 0.9],  # answered other: a false reject
            [0.0, 0.0, 0.95, 0.05],  # an other word accepted as cat: a false accept
            [0.1, 0.1, 0.1, 0.7],  # rightly other
        ]
    )
    s = evaluate.open_scores(y, probs, FOUR, threshold=0.6)
    assert (s.keyword_clips, s.other_clips) == (3, 2)
    assert s.keyword_accuracy == pytest.approx(2 / 3)
    assert s.false_reject_rate == pytest.approx(2 / 3)
    assert s.false_accept_rate == pytest.approx(1 / 2)
    assert evaluate.accepted(probs, FOUR, 0.6).tolist() == [0, -1, -1, 2, -1]
    assert evaluate.confusion_with_other(y, probs, FOUR) == [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 1, 1],
    ]


def test_a_three_label_model_accepts_every_other_word_it_is_sure_of() -> None:
    y = np.array([0, 3, 3])
    probs = _probs([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.4, 0.3, 0.3]])
    s = evaluate.open_scores(y, probs, config.LABELS, threshold=0.6)
    assert s.false_accept_rate == pytest.approx(1 / 2) and s.false_reject_rate == 0.0
    assert evaluate.confusion_with_other(y, probs, config.LABELS)[3] == [1, 1, 0, 0]


def test_the_det_curve_runs_from_the_argmax_answer_to_refusing_everything() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=200)
    probs = rng.dirichlet(np.ones(4), size=200).astype(np.float32)
    det = evaluate.det_curve(y, probs, FOUR)
    fa, fr = np.array(det["false_accept_rate"]), np.array(det["false_reject_rate"])
    assert det["threshold"][0] == 0.0 and det["threshold"][-1] == 1.0
    assert np.all(np.diff(fa) <= 1e-9) and np.all(np.diff(fr) >= -1e-9)  # a higher threshold accepts less
    assert fa[-1] == 0.0 and fr[-1] == 1.0
    at_zero = evaluate.open_scores(y, probs, FOUR, threshold=0.0)
    assert fa[0] == pytest.approx(at_zero.false_accept_rate)


def test_most_models_saying_other_is_said_in_plain_words(predictor) -> None:
    p = predictor.predict(word_like(0.5), RATE)
    other = saying(p, "other", "other", "other", "other", "cat", "bed")
    assert other.majority == "other" and other.to_dict()["majority"] == "other"
    assert other.summary == "Not one of the three words (4 of 6 models say other)"
    split = saying(p, "other", "other", "other", "cat", "cat", "cat")
    assert split.summary == "The models are split: cat / none of the three (other) (3 each)"
    assert said("bed") == "bed"


def test_the_open_world_bench_agrees_with_what_training_recorded(data_dir: Path, tmp_path: Path, capsys) -> None:
    """bench/open_world.py answers every validation clip through the app's path (gates, majority); each model's
    false accepts there are the ones its JSON recorded through :func:`kws.evaluate.open_scores` at training time
    (a clip the gates refuse may move one), and the verdict's figures hold together."""
    from _audio_util import bench_script, shipped_models

    bench = bench_script("open_world")
    out = tmp_path / "open.json"
    assert bench.main(["--data-dir", str(data_dir), "--splits", "validation", "--out", str(out)]) == 0
    result = json.loads(out.read_text())["splits"]["validation"]
    for m in shipped_models():
        recorded = m.info.meta.get("open_world", {}).get("validation")
        if config.OTHER not in m.labels or not recorded:
            continue
        mine = result["models"][m.name]
        assert mine["false_accepts"]["clips"] == recorded["other_clips"] == result["other_clips"]
        assert abs(mine["false_accepts"]["rate"] - recorded["false_accept_rate"]) * recorded["other_clips"] <= 2
        low, high = mine["false_accepts"]["interval"]
        assert low <= mine["false_accepts"]["rate"] <= high
    verdict = result["verdict"]
    assert verdict["other_named_a_keyword"]["hits"] <= verdict["other_named_a_keyword_any_form"]["hits"]
    by_word = result["focus_accepts_by_word"]
    assert sum(c["clips"] for c in by_word.values()) == result["other_clips"]
    assert sum(c["hits"] for c in by_word.values()) == result["models"]["best"]["false_accepts"]["hits"]
    assert "| best |" in capsys.readouterr().out
