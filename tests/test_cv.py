"""experiments/cv.py: speakers stay together, every train + validation clip is held out once, the test split is never read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _audio_util import RATE, bench_script, make_dataset

from kws import dataset
from kws.features import preset

pytestmark = pytest.mark.slow  # training, conversion or fresh interpreters: not in the fast lane

pytest.importorskip("kws.train")  # loads TensorFlow


def _module():
    return bench_script("cv", "experiments")


def test_folds_keep_speakers_together_and_leave_the_test_split_out(tmp_path: Path) -> None:
    cv = _module()
    make_dataset(tmp_path / "data", per_split=4)
    items = dataset.scan(tmp_path / "data")
    assert cv.fold_of("0c40e715", 5) == cv.fold_of("0c40e715", 5) and 0 <= cv.fold_of("0c40e715", 5) < 5
    seen: dict[str, int] = {}
    for held_out in range(3):
        dealt = cv.deal(items, 3, held_out)
        assert {it.split for it in dealt} <= {"train", "validation"}
        assert len(dealt) == sum(it.split != "test" for it in items)  # test clips are dropped, not moved
        for it in dealt:
            if it.split == "validation":
                assert seen.setdefault(str(it.path), held_out) == held_out  # held out in one fold only
        speakers = {s: {it.split for it in dealt if it.speaker == s} for s in {it.speaker for it in dealt}}
        assert all(len(splits) == 1 for splits in speakers.values())  # a speaker is never on both sides
    assert len(seen) == len([it for it in items if it.split != "test"])  # every clip held out exactly once


def test_a_tiny_run_holds_out_every_clip_once_and_compares(tmp_path: Path, monkeypatch) -> None:
    cv = _module()
    make_dataset(tmp_path / "data", per_split=3)
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    test_paths = {str(it.path) for it in dataset.scan(tmp_path / "data") if it.split == "test"}
    read: list[str] = []
    original = cv.train.dataset.load_waveforms

    def spy(items, *args, **kwargs):
        read.extend(str(it.path) for it in items)
        return original(items, *args, **kwargs)

    monkeypatch.setattr(cv.train.dataset, "load_waveforms", spy)
    levels: list[tuple[str, bool]] = []
    featurize = cv.train.dataset.featurize

    def featurize_spy(clips, settings, *args, **kwargs):
        levels.append((settings.level, settings.centre))
        return featurize(clips, settings, *args, **kwargs)

    monkeypatch.setattr(cv.train.dataset, "featurize", featurize_spy)
    out = tmp_path / "cv.json"
    common = ["--models", "perceptron", "--preset", "lecture", "--folds", "2", "--epochs", "1", "--copies", "0"]
    common += ["--level", "peak", "--mixup", "0.3", "--centre"]
    assert cv.main([str(out), *common, "--data-dir", str(tmp_path / "data")]) == 0
    assert read and not set(read) & test_paths
    record = json.loads(out.read_text())
    every = [f"{it.path.parent.name}/{it.path.name}" for it in dataset.scan(tmp_path / "data") if it.split != "test"]
    assert record["clips"] == 18 == len(every)  # 6 speakers x 3 words
    assert record["clips_sha256"] == cv.clips_digest(every)  # each train + validation clip held out once
    assert sum(f["held_out_clips"] for f in record["per_fold"]) == 18
    assert all(f["held_out_clips"] + f["train_clips"] == 18 for f in record["per_fold"])
    assert set(record["wrong"]) <= set(every) and record["errors"] == len(record["wrong"])
    assert record["recipe"]["models"] == ["perceptron"] and record["recipe"]["epochs"] == 1
    assert record["recipe"]["mixup"] == 0.3 and record["head"] is None  # only best has a head to choose
    assert record["feature_settings"] == {**preset("lecture").to_dict(), "level": "peak", "centre": True}
    assert levels and set(levels) == {("peak", True)}  # the probe's settings are the ones the folds trained on
    same = cv.compare(record, record)
    assert same["only_first_wrong"] == same["only_second_wrong"] == 0 and same["p_first_better"] == 1.0
    # test-time views: each clip answered on shifted windows, the registered average scored like a run of its own
    views = np.load(out.with_suffix(".views.npz"))
    assert list(views["shifts"]) == list(cv.VIEW_SHIFTS) and views["probs"].shape == (len(cv.VIEW_SHIFTS), 18, 4)
    assert sorted(views["paths"]) == sorted(every) and np.allclose(views["probs"].sum(-1), 1.0, atol=1e-4)
    tta = record["tta"]
    assert tta["shifts"] == list(cv.TTA_SHIFTS) and tta["clips_sha256"] == record["clips_sha256"]
    picked = views["probs"][[cv.VIEW_SHIFTS.index(s) for s in cv.TTA_SHIFTS]].mean(0)
    assert tta["wrong"] == sorted(p for p, w in zip(views["paths"], picked.argmax(1) != views["labels"]) if w)
    assert cv.load_record(Path(f"{out}:tta")) == tta and cv.load_record(out) == record
    with pytest.raises(SystemExit, match="no 'nope' entry"):
        cv.load_record(Path(f"{out}:nope"))


def test_compare_is_paired_on_the_clips_only_one_recipe_gets_wrong() -> None:
    cv = _module()
    clips = [f"bed/{i:08x}_nohash_0.wav" for i in range(100)]
    a = {"clips": 100, "clips_sha256": cv.clips_digest(clips), "errors": 10, "wrong": clips[:10]}
    b = {"clips": 100, "clips_sha256": cv.clips_digest(clips[::-1]), "errors": 2, "wrong": clips[:2]}
    result = cv.compare(a, b)
    assert (result["only_first_wrong"], result["only_second_wrong"]) == (8, 0)
    assert result["p_second_better"] == pytest.approx(0.5**8, abs=1e-4) and result["p_first_better"] == 1.0
    with pytest.raises(SystemExit, match="different clips"):
        cv.compare(a, b | {"clips_sha256": cv.clips_digest(clips[:50])})


def test_hard_lists_the_clips_every_run_misses_with_what_the_app_says(tmp_path: Path, capsys) -> None:
    """--hard: the clips wrong in every run, each with the app's verdict (a word, too quiet, no voice) and the
    runs' answers, and every run scored without the held-out clips the app names no word for."""
    cv = _module()
    data = tmp_path / "data"
    make_dataset(data)
    held_out = [it for it in dataset.scan(data) if it.split != "test"]
    names = [f"{it.path.parent.name}/{it.path.name}" for it in held_out]
    quiet, noisy, spoken, other = names[0], names[1], names[2], names[3]
    sf.write(data / quiet, np.full(RATE, 1e-5, np.float32), RATE)  # -100 dBFS: "no speech"
    sf.write(data / noisy, np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32), RATE)  # hiss
    digest = cv.clips_digest(names)

    def run(name: str, wrong: list[str]) -> Path:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"clips": len(names), "clips_sha256": digest, "wrong": wrong}))
        return path

    a = run("a", [quiet, noisy, spoken, other])
    b = run("b", [quiet, noisy, spoken])
    probs = np.tile([0.1, 0.2, 0.7], (len(cv.VIEW_SHIFTS), len(names), 1)).astype(np.float32)
    np.savez(a.with_suffix(".views.npz"), shifts=np.array(cv.VIEW_SHIFTS), paths=np.array(names), probs=probs)

    assert cv.main(["--hard", str(a), str(b), "--data-dir", str(data)]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["clip"]: r for r in result["every_run_wrong"]}
    assert set(rows) == {quiet, noisy, spoken}
    assert rows[quiet]["app_says"] == "no speech" and rows[quiet]["level_db"] < -55
    assert rows[noisy]["app_says"] == "no voice" and rows[noisy]["aperiodicity"] > 0.52
    assert rows[spoken]["app_says"] == "a word" and rows[spoken]["answers"] == {"cat": 1}  # a's views only
    assert result["app_refuses"] == sorted([quiet, noisy])
    named = len(names) - 2
    assert [(r["errors"], r["named"]) for r in result["as_the_app_answers"]] == [(2, named), (1, named)]

    c = tmp_path / "c.json"
    c.write_text(json.dumps({"clips": 2, "clips_sha256": cv.clips_digest(names[:2]), "wrong": []}))
    with pytest.raises(SystemExit, match="different clips"):
        cv.hard_clips([a, c], data)
    with pytest.raises(SystemExit, match="not the one the runs held out"):
        cv.hard_clips([c], data)


def test_wilson_interval_matches_the_textbook_and_stays_inside_zero_one() -> None:
    cv = _module()
    low, high = cv.wilson(errors=1, clips=10)  # 9 of 10 right: [0.596, 0.982] in every table
    assert (round(low, 3), round(high, 3)) == (0.596, 0.982)
    low, high = cv.wilson(errors=0, clips=475)
    assert 0.99 < low < 1 and high == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cv.wilson(0, 0)


def test_against_bar_reads_the_interval_three_ways(tmp_path: Path, capsys) -> None:
    cv = _module()

    def run(model: str, errors: int) -> dict:
        return {"recipe": {"models": [model]}, "errors": errors, "clips": 4215, "accuracy": 1 - errors / 4215}

    assert cv.against_bar(run("perceptron", 500))["verdict"].startswith("clears")  # 88.1%, bar 82%
    assert cv.against_bar(run("perceptron", 900))["verdict"].startswith("misses")  # 78.6%
    middle = cv.against_bar(run("best", 22))  # 99.48% against 99.5%
    assert "within the noise" in middle["verdict"] and middle["bar"] == 0.995
    assert middle["interval_95"][0] < 0.995 < middle["interval_95"][1]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run("lstm", 100)))
    assert cv.main(["--bars", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["model"] == "lstm"


def test_the_head_option_builds_best_with_it_and_restores_the_zoo(tmp_path: Path, monkeypatch) -> None:
    cv = _module()
    make_dataset(tmp_path / "data", per_split=2)
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    summaries: list[int] = []
    fit_one = cv.train.fit_one

    def spy(name, *args, **kwargs):
        model, history = fit_one(name, *args, **kwargs)
        summaries.append(model.get_layer("probabilities").input.shape[-1])
        return model, history

    monkeypatch.setattr(cv.train, "fit_one", spy)
    out = tmp_path / "cv.json"
    common = ["--preset", "lecture", "--folds", "2", "--epochs", "1", "--copies", "0"]
    common += ["--data-dir", str(tmp_path / "data")]
    with pytest.raises(SystemExit) as exit_info:
        cv.main([str(out), "--models", "perceptron", "--head", "pool", *common])
    assert exit_info.value.code == 2  # the head belongs to best only
    original = cv.zoo.ZOO["best"]
    assert cv.main([str(out), "--models", "best", "--head", "pool", *common]) == 0
    assert json.loads(out.read_text())["head"] == "pool"
    assert summaries == [48, 48]  # the earlier head: a global average of the 48 channels
    assert cv.zoo.ZOO["best"] is original
    assert cv.main([str(out), "--models", "best", *common]) == 0
    assert json.loads(out.read_text())["head"] == "freq" and summaries[2] > 48  # frequency rows x 48 channels


def _layer_kinds_per_fold(cv, monkeypatch, part: str) -> list[set[str]]:
    """Watch cv.py's training: for each fold's model, the class names of its layers that contain ``part``."""
    kinds: list[set[str]] = []
    fit_one = cv.train.fit_one

    def spy(name, *args, **kwargs):
        model, history = fit_one(name, *args, **kwargs)
        kinds.append({type(layer).__name__ for layer in model.layers if part in type(layer).__name__})
        return model, history

    monkeypatch.setattr(cv.train, "fit_one", spy)
    return kinds


def test_the_body_option_needs_best_alone_and_its_own_head(tmp_path: Path) -> None:
    cv = _module()
    make_dataset(tmp_path / "data", per_split=2)
    common = ["--preset", "lecture", "--folds", "2", "--data-dir", str(tmp_path / "data")]
    for wrong in (["--models", "lstm", "--body", "tc"], ["--models", "best", "--body", "tc", "--head", "pool"]):
        with pytest.raises(SystemExit) as exit_info:
            cv.main([str(tmp_path / "cv.json"), *wrong, *common])
        assert exit_info.value.code == 2  # the body replaces best's whole network, head included


@pytest.mark.parametrize(
    ("body", "part", "kinds", "head"),
    [
        ("tc", "Conv", {"Conv1D"}, None),  # TC-ResNet8: temporal convolutions only
        # the zoo's ResNet with per-band batch norm in every batch norm's place (the stem's two norms stay)
        ("ssn", "Norm", {"Normalization", "CepstralMeanNorm", "SubSpectralNorm"}, "freq"),
    ],
)
def test_the_body_option_trains_its_network_as_best_and_restores_the_zoo(
    tmp_path: Path, monkeypatch, body: str, part: str, kinds: set[str], head: str | None
) -> None:
    cv = _module()
    make_dataset(tmp_path / "data", per_split=2)
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    seen = _layer_kinds_per_fold(cv, monkeypatch, part)
    out = tmp_path / "cv.json"
    original = cv.zoo.ZOO["best"]
    common = ["--preset", "lecture", "--folds", "2", "--epochs", "1", "--copies", "0"]
    assert cv.main([str(out), "--models", "best", "--body", body, *common, "--data-dir", str(tmp_path / "data")]) == 0
    record = json.loads(out.read_text())
    assert record["body"] == body and record["head"] == head
    assert seen == [kinds, kinds]  # one model per fold
    assert cv.zoo.ZOO["best"] is original
