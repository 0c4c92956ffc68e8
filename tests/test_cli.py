"""The command line: exit codes, one-line errors, exactly one JSON document, and no TensorFlow for --help."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from _audio_util import RATE, clap, encode, env_without, have_shipped_models, make_dataset, shipped_models, word_like

from kws import cards, cli, config, store

#: The summary line for a clip with speech: which form depends on how the six models vote (kws.inference).
VERDICT = r"^(Most models say: |No majority: |The models are split: |Not one of the three words \()"


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m kws ...`` in a fresh interpreter, so stderr and imports are exactly what a user sees."""
    return subprocess.run(
        [sys.executable, "-m", "kws", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env_without(),
        cwd=config.PROJECT_ROOT,
    )


def table_rows(out: str) -> list[list[str]]:
    """The cells of each line of the markdown tables in ``out`` (header and separator lines included), without
    the padding that lines the columns up."""
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("|")]


@pytest.fixture
def files(tmp_path):
    """A spoken-like clip, a silent clip, a clap, a text file, a truncated WAV, an empty file and a 10-sample click."""
    paths = {
        "word": tmp_path / "word.wav",
        "silence": tmp_path / "silence.flac",
        "clap": tmp_path / "clap.wav",
        "text": tmp_path / "notes.wav",
        "cut": tmp_path / "cut.wav",
        "empty": tmp_path / "empty.wav",
        "click": tmp_path / "click.wav",
    }
    clip = np.zeros(RATE, np.float32)
    clip[4000:12000] = word_like(0.5, seed=4)
    sf.write(paths["word"], clip, RATE)
    sf.write(paths["silence"], np.zeros(RATE, np.float32), RATE, format="FLAC")
    sf.write(paths["clap"], np.concatenate([np.zeros(RATE // 2, np.float32), clap(0.3)]), RATE)
    paths["text"].write_text("this is not audio\n" * 20)
    paths["cut"].write_bytes(encode(clip)[:2000])
    paths["empty"].write_bytes(b"")
    sf.write(paths["click"], clip[8000:8010], RATE)
    return paths


@pytest.fixture
def with_shipped(monkeypatch):
    """Predict and evaluate with the session's already-loaded shipped models (loading them costs seconds)."""
    if not have_shipped_models():
        pytest.skip("no shipped models in models/")
    from kws import inference

    models, load = list(shipped_models()), inference.load_models

    def load_models(models_dir, precision="float32"):  # int8 copies load on their own
        return models if precision == "float32" else load(models_dir, precision)

    monkeypatch.setattr(inference, "load_models", load_models)
    monkeypatch.setattr(
        inference,
        "load_predictor",
        lambda models_dir, precision="float32": inference.Predictor(load_models(models_dir, precision)),
    )
    return config.SHIPPED_MODELS_DIR


# --- without TensorFlow -----------------------------------------------------------------------------------------


def test_help_does_not_import_tensorflow() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kws", "--help"],
        capture_output=True,
        text=True,
        env=env_without(),
        timeout=120,
    )
    assert proc.returncode == 0
    for command in ("train", "evaluate", "predict", "data", "bench"):
        assert command in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "kws.cli" in imported
    assert not {m for m in imported if m.split(".")[0] in {"tensorflow", "keras"}}


def test_markdown_table_titles_columns_and_aligns_numbers_right() -> None:
    columns = [cards.Column("model", header="Model"), cards.Column("acc", header="Accuracy", right=True)]
    table = cli.markdown_table([{"model": "cnn1", "acc": "91.8%"}, {"model": "best", "acc": "–"}], columns)
    assert table.splitlines() == [
        "| Model   |   Accuracy |",
        "|:--------|-----------:|",
        "| cnn1    |      91.8% |",
        "| best    |          – |",
    ]
    assert cli.markdown_table([], columns).splitlines()[0] == "| Model   | Accuracy   |"  # no rows: the header


def test_import_kws_does_not_import_tensorflow() -> None:
    code = "import sys, kws, kws.cli, kws.fetch; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=env_without(), timeout=120).returncode == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((), "required"),
        (("fly",), "invalid choice"),
        (("predict",), "required"),
        (("predict", "{missing}"), "no file"),
        (("predict", "{text}"), "not an audio file"),
        (("predict", "{cut}"), "truncated"),
        (("predict", "{empty}"), "empty"),
        (("predict", "{click}"), "lasts only 1 ms"),
        (("predict", "{word}", "--models-dir", "{missing}"), "No model folder"),
        (("evaluate", "--data-dir", "{missing}"), "No dataset found"),
        (("evaluate", "--split", "dev"), "invalid choice"),
        (("train", "--epochs", "0"), "at least 1"),
        (("train", "--lr", "abc"), "not a number"),
        (("train", "--data-dir", "{missing}"), "No dataset found"),
        (("train", "--models", "resnet"), "invalid choice"),
        (("data", "fetch", "--url", "file://{missing}", "--dest", "{dest}"), "download failed"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, files, args: tuple[str, ...], needle: str) -> None:
    names = {k: str(v) for k, v in files.items()} | {"missing": str(tmp_path / "missing"), "dest": str(tmp_path / "d")}
    proc = run_cli(*(a.format(**names) for a in args))
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert needle.lower() in proc.stderr.lower()


def test_a_damaged_model_file_exits_2_naming_it(files, damaged_models) -> None:
    """A cut-off model file: the message says what is wrong with which file, in one line."""
    proc = run_cli("predict", str(files["word"]), "--models-dir", str(damaged_models.parent))
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {damaged_models} does not match the checksum in ")
    assert "it changed or was cut off after it was made" in proc.stderr


# --- with the shipped models (loaded once per session) ----------------------------------------------------------


def test_predict_json_one_file(files, with_shipped, capsys) -> None:
    assert cli.main(["predict", str(files["word"]), "--json"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)  # the whole of stdout is one document
    assert isinstance(doc, dict)
    assert doc["file"] == str(files["word"])
    assert re.match(VERDICT, doc["summary"]) and doc["majority"] in config.LABEL_SETS[0]
    assert set(doc["window"]) == {"start_s", "end_s"}
    assert [m["name"] for m in doc["models"]] == [m.name for m in shipped_models()]
    for m in doc["models"]:
        assert m["word"] in config.LABEL_SETS[0] and 0 <= m["confidence"] <= 1
        assert isinstance(m["low_confidence"], bool) and m["latency_ms"] > 0
    assert doc["elapsed_ms"] > 0


def test_predict_json_several_files(files, with_shipped, capsys) -> None:
    assert cli.main(["predict", str(files["word"]), str(files["silence"]), "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert isinstance(docs, list) and [d["file"] for d in docs] == [str(files["word"]), str(files["silence"])]
    assert docs[1]["no_speech"] is True and docs[1]["summary"] == "No speech detected"
    assert docs[1]["majority"] is None and all(m["word"] is None for m in docs[1]["models"])


def test_predict_answers_the_readable_files_and_exits_2_for_the_rest(files, with_shipped, capsys) -> None:
    """One broken clip among several costs one line on stderr and the exit status, not the others' answers."""
    names = [str(files[k]) for k in ("word", "text", "silence")]
    assert cli.main(["predict", *names]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"error: {names[1]}: This is not an audio file we can read (WAV, FLAC, OGG or MP3)."]
    assert out.startswith(f"{names[0]}: ") and f"\n{names[2]}: " in out and names[1] not in out
    assert re.search(VERDICT, out, re.MULTILINE) and "No speech detected" in out
    silent = out.split(f"\n{names[2]}: ")[1].splitlines()[3:-1]  # one line per model, after the verdict and why
    assert silent and all(line.split()[1:3] == ["-", "-"] for line in silent)  # no word, so no confidence in one

    assert cli.main(["predict", *names, "--json"]) == 2
    out, err = capsys.readouterr()
    docs = json.loads(out)  # still one document, in the order the files were given
    assert [d["file"] for d in docs] == names and err.count("\n") == 1
    assert docs[1] == {"file": names[1], "error": err.removeprefix("error: ").strip()}
    assert docs[0]["majority"] in config.LABEL_SETS[0] and docs[2]["no_speech"] is True


def test_predict_with_no_readable_file_says_why_for_each(files, capsys) -> None:
    names = [str(files[k]) for k in ("text", "empty", "cut")]
    assert cli.main(["predict", *names, "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert [line.split(": ")[1] for line in lines] == names
    assert "not an audio file" in lines[0] and "empty" in lines[1] and "truncated" in lines[2]


def test_predict_says_why_no_word_is_named(files, with_shipped, capsys) -> None:
    assert cli.main(["predict", str(files["clap"]), str(files["silence"])]) == 0
    clap_out, silence_out = capsys.readouterr().out.split(f"\n{files['silence']}: ")
    assert clap_out.splitlines()[1:3] == [
        "No voice detected",
        "  There is sound but no voice in it (a noise, a clap or a tap?), so no word is named. "
        "Say the word aloud: a whisper has no voice either.",
    ]
    assert silence_out.splitlines()[1:3] == [
        "No speech detected",
        "  Too quiet to be a word, so no word is named. Speak closer to the microphone, or louder.",
    ]
    assert cli.main(["predict", str(files["clap"]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"] == "No voice detected" and doc["no_voice"] is True and doc["majority"] is None


def test_predict_text(files, with_shipped, capsys) -> None:
    assert cli.main(["predict", str(files["word"]), str(files["silence"])]) == 0
    out = capsys.readouterr().out
    assert re.search(VERDICT, out, re.MULTILINE) and "No speech detected" in out
    assert "the models hear" in out
    for m in shipped_models():
        assert out.count(f"  {m.name} ") == 2


def test_evaluate_markdown_and_json(tmp_path, with_shipped, monkeypatch, capsys, caplog) -> None:
    """A broken clip in the folder is skipped and named with its reason, not just counted."""
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    make_dataset(tmp_path / "data")
    broken = tmp_path / "data" / "bed" / "ffffffff_nohash_0.wav"
    broken.write_bytes(b"not audio at all" * 10)
    base = ["evaluate", "--data-dir", str(tmp_path / "data"), "--models-dir", str(with_shipped), "--split", "all"]
    with caplog.at_level(logging.WARNING, logger="kws.cli"):
        assert cli.main(base) == 0
    assert f"1 unreadable clip(s) were skipped: {broken}: This is not an audio file" in caplog.text
    out = capsys.readouterr().out
    lines = table_rows(out)
    assert lines[0][:9] == ["Model", "Labels", "Params", ".tflite", "int8", "Accuracy", "bed", "happy", "cat"]
    assert lines[0][-3:] == ["Keywords", "FA", "FR"]
    assert len(lines) == 2 + len(shipped_models())
    assert cli.main([*base, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["split"] == "all" and doc["clips"] == 18
    assert [d["path"] for d in doc["skipped"]] == [str(broken)]
    assert [r["model"] for r in doc["models"]] == [m.name for m in shipped_models()]


def test_unknown_model_name(tmp_path, capsys) -> None:
    make_dataset(tmp_path / "data")
    assert cli.main(["train", "--models", "cnn1", "resnet", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'resnet'" in err and "perceptron" in err


def test_train_then_predict(tmp_path, monkeypatch, capsys) -> None:
    """A one-epoch centred perceptron on a generated dataset: progress on stderr, a table on stdout, a loadable
    model that predicts with its own settings."""
    pytest.importorskip("kws.train")
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    make_dataset(tmp_path / "data")
    out_dir = tmp_path / "models"
    args = ["train", "--models", "perceptron", "--epochs", "1", "--no-augment", "--batch-size", "8", "--centre"]
    assert cli.main([*args, "--out", str(out_dir), "--data-dir", str(tmp_path / "data"), "--seed", "1"]) == 0
    captured = capsys.readouterr()
    assert "[1/1 perceptron] epoch 1/1" in captured.err
    assert table_rows(captured.out)[2][:2] == ["perceptron", "Perceptron"]
    names = sorted(p.name for p in out_dir.iterdir())
    assert names in (
        ["perceptron.int8.tflite", "perceptron.json", "perceptron.keras", "perceptron.tflite"],
        ["perceptron.json", "perceptron.keras", "perceptron.tflite"],  # an int8 copy that lost accuracy
    ), names
    meta = json.loads((out_dir / "perceptron.json").read_text())
    assert meta["feature_settings"]["centre"] is True and meta["train_config"]["centre"] is True  # read back below
    clip = tmp_path / "clip.wav"
    sf.write(clip, word_like(0.6), RATE)
    assert cli.main(["predict", str(clip), "--models-dir", str(out_dir), "--json"]) == 0
    assert [m["name"] for m in json.loads(capsys.readouterr().out)["models"]] == ["perceptron"]


def test_refit_learns_from_train_and_validation_and_claims_no_validation_score(tmp_path, monkeypatch, capsys) -> None:
    """``--fit-on train+validation``: the final refit of a chosen recipe; the test split stays unseen."""
    pytest.importorskip("kws.train")
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    make_dataset(tmp_path / "data", per_split=2)
    out_dir = tmp_path / "models"
    args = ["train", "--models", "perceptron", "--epochs", "3", "--copies", "1", "--batch-size", "8", "--seed", "1"]
    # stops where early stopping would have chosen for this recipe: epoch 2 of a 3-epoch schedule
    args += ["--fit-on", "train+validation", "--stop-at", "2", "--mixup", "0.2"]
    args += ["--out", str(out_dir), "--data-dir", str(tmp_path / "data")]
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "[1/1 perceptron] epoch 2/3" in err and "epoch 3/3" not in err and "val_loss" not in err
    meta = json.loads((out_dir / "perceptron.json").read_text())
    assert meta["fit_on"] == meta["train_config"]["fit_on"] == "train+validation"
    assert meta["validation_accuracy"] is None and not any(k.startswith("val_") for k in meta["history"])
    assert meta["train_config"]["patience"] == 0 and meta["train_config"]["stop_at"] == meta["epochs_run"] == 2
    assert meta["train_config"]["mixup"] == 0.2
    counts = meta["split_counts"]
    assert counts == {"train": 6, "validation": 6, "test": 6}  # the dataset's splits, as they are
    # every train and validation clip, each with one augmented variant per epoch; scored on the test split only
    assert meta["examples_per_epoch"] == 2 * (counts["train"] + counts["validation"])
    assert meta["test_clips"] == counts["test"]
    # evaluate says when a score is not a held-out one
    where = ["--models-dir", str(out_dir), "--data-dir", str(tmp_path / "data")]
    for split, warned in (("test", False), ("validation", True), ("all", True)):
        assert cli.main(["evaluate", *where, "--split", split]) == 0
        note = "Note: not held-out scores for the models that learnt from these clips: perceptron (train+validation)."
        assert (note in capsys.readouterr().out) is warned
    refused = ["train", "--fit-on", "train+validation", "--schedule", "plateau", "--data-dir", str(tmp_path / "data")]
    assert cli.main(refused) == 2
    assert "cosine" in capsys.readouterr().err
    assert cli.main(["train", "--mixup", "-1", "--data-dir", str(tmp_path / "data")]) == 2
    assert "mixup must be in [0, 2]" in capsys.readouterr().err


def test_internal_error_is_one_line_exit_1(monkeypatch, capsys) -> None:
    def boom(args):
        raise RuntimeError("something broke\non two lines")

    monkeypatch.setattr(cli, "cmd_data_fetch", boom)
    assert cli.main(["data", "fetch"]) == 1
    err = capsys.readouterr().err
    assert err == "error: unexpected RuntimeError: something broke on two lines (run with -v for details)\n"
    with pytest.raises(RuntimeError):
        cli.main(["-v", "data", "fetch"])


def test_interrupt_exits_130(monkeypatch, capsys) -> None:
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_data_fetch", interrupted)
    assert cli.main(["data", "fetch"]) == 130


def test_bench_options_are_listed(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["bench", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--runs", "--train", "--out", "--skip"):
        assert option in out


@pytest.mark.slow
@pytest.mark.skipif(not have_shipped_models(), reason="no shipped models in models/")
def test_predict_end_to_end_subprocess(files) -> None:
    """The real thing: a fresh process loads TensorFlow and the models; stdout is one JSON document."""
    proc = run_cli("predict", str(files["word"]), "--json")
    assert proc.returncode == 0, proc.stderr
    assert re.match(VERDICT, json.loads(proc.stdout)["summary"])
    assert "oneDNN" not in proc.stderr and "XNNPACK" not in proc.stderr and "Traceback" not in proc.stderr


def test_bench_smoke(tmp_path, with_shipped, monkeypatch, capsys) -> None:
    """The benchmark runs end to end on a tiny dataset and writes what it printed."""
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    make_dataset(tmp_path / "data")
    out = tmp_path / "results.json"
    args = ["bench", "--runs", "3", "--warmup", "1", "--data-dir", str(tmp_path / "data"), "--out", str(out)]
    assert cli.main([*args, "--models-dir", str(with_shipped)]) == 0
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    latency = results["latency"]
    assert latency["models"] == [m.name for m in shipped_models()]
    timed = ("predictor_predict", "predictor_predict_no_voice_check", "predictor_predict_in_turn")
    for method in (*timed, "predictor_predict_off_main_thread", "predictor_predict_int8"):
        stats = latency["all_models"][method]
        assert stats["runs"] == 3 and 0 < stats["median_ms"] <= stats["p90_ms"]
    assert 0 < latency["voice_check_only"]["median_ms"] and "The voice check alone" in printed
    assert "as the app calls it" in printed and "one step after another" in printed
    assert results["dataset"]["clips"] == 18 and results["dataset"]["cache_hit_s"] > 0
    assert "| int8 | .int8.tflite |" in printed and "cache hit" in printed
    int8 = {i.name for i in store.list_models(with_shipped) if i.tflite_path("int8") is not None}
    assert {p["model"] for p in latency["per_model"] if p["int8_bytes"] is not None} == int8  # "-" where none ships
    assert {p["model"] for p in latency["per_model"] if p["model"] in int8 and p["int8_bytes"] < p["float32_bytes"]}
    assert all((p["int8"] is None) == (p["model"] not in int8) for p in latency["per_model"])
    assert not list((tmp_path / "cache").glob("*"))  # the benchmark used a cache folder of its own


@pytest.mark.slow
def test_bench_train_keeps_the_models_where_asked(tmp_path, monkeypatch, capsys) -> None:
    """``bench --train --train-out DIR``: the timed run's six models stay there for ``evaluate`` to read."""
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    make_dataset(tmp_path / "data")
    kept, out = tmp_path / "trained", tmp_path / "results.json"
    args = ["bench", "--skip", "latency", "--skip", "dataset", "--train", "--train-epochs", "1"]
    args += ["--train-out", str(kept), "--data-dir", str(tmp_path / "data"), "--out", str(out)]
    assert cli.main(args) == 0
    trained = json.loads(out.read_text())["train"]
    assert list(trained["models"]) == list(config.ARCHITECTURES) and trained["max_epochs"] == 1
    assert sorted(p.stem for p in kept.glob("*.keras")) == sorted(config.ARCHITECTURES)
    for name, row in trained["models"].items():  # to the clip: 470/475 once came out as 99.0% (4 digits kept)
        exact = json.loads((kept / f"{name}.json").read_text())["test_accuracy"]
        assert abs(row["test_accuracy"] - exact) < 1e-6, name
    assert "Training all 6" in capsys.readouterr().out
    assert cli.main(["evaluate", "--models-dir", str(kept), "--data-dir", str(tmp_path / "data"), "--json"]) == 0
    assert {m["model"] for m in json.loads(capsys.readouterr().out)["models"]} == set(config.ARCHITECTURES)


def test_a_downloaded_set_without_keras_files_answers(files, tmp_path) -> None:
    """What Compare's downloads give (``.tflite`` and ``.json``, no ``.keras``) is enough for ``predict``."""
    import shutil

    folder = tmp_path / "downloaded"
    folder.mkdir()
    for path in config.SHIPPED_MODELS_DIR.iterdir():
        if path.suffix in {".tflite", ".json"}:
            shutil.copy2(path, folder / path.name)
    proc = run_cli("predict", str(files["word"]), "--models-dir", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["models"]) == len(list(folder.glob("*.json")))
