"""The Compare models page under AppTest: the table, confusions, curves and scatter, and the mistakes view.

With the dataset every part shows; without it the metadata parts still do and the mistakes view says how
to get the data. Nothing is patched: the page's caches make the second and later runs quick.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kws import store
from kws.config import LABELS, OTHER
from kws.dataset import missing_message
from kws.modelsets import active_models_dir
from tests._audio_util import make_noisy_dataset

ROOT = Path(__file__).absolute().parent.parent
FIRST_RUN_S = 300  # loading TensorFlow, the models and scoring the test split, on a busy 2-core machine


def model_names() -> list[str]:
    return [info.name for info in store.list_models(active_models_dir())]


def open_compare(**state: object) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page("pages/compare.py").run(timeout=FIRST_RUN_S)
    assert not at.exception, at.exception
    return at


def charts(at: AppTest, key_prefix: str) -> list[dict]:
    """The plotly figures (as dicts) whose widget key starts with ``key_prefix``."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart") if f"-{key_prefix}" in c.proto.id]


def check_metadata_parts(at: AppTest) -> None:
    """Table, confusions, curves and scatter: the parts that need no dataset."""
    names = model_names()
    table, training = at.main.dataframe[0].value, at.main.dataframe[1].value
    assert list(table["model"]) == list(training["model"]) == names  # one row per model, in the store's order
    for column in ("params", "size_kb", "accuracy", "latency_ms"):
        assert column in table.columns
    assert list(training.columns) == ["model", "architecture", "train_s", "epochs", "overfit_gap", "preset", "fit_on"]
    refits = training["fit_on"] == "train + validation"
    assert (training["overfit_gap"][refits] == "— (refit)").all()
    assert training["overfit_gap"][~refits].str.fullmatch(r"[+-]\d+\.\d pts").all()
    answered = {label for i in store.list_models(active_models_dir()) for label in i.labels}
    assert [f"acc_{w}" for w in LABELS + (OTHER,) if w in answered] == [
        c for c in table.columns if c.startswith("acc_")
    ]
    assert table["accuracy"].between(0, 1).all() and (table["params"] > 0).all()
    assert (table["latency_ms"] > 0).all()
    columns = json.loads(at.main.dataframe[0].proto.columns)
    assert columns["model"].get("pinned") is True  # the name stays in view while the wide table scrolls
    assert columns["accuracy"]["type_config"]["format"] == "percent"
    assert columns["acc_bed"]["label"] == "bed" and "'bed'" in columns["acc_bed"]["help"]  # the header says the rest

    confusions = charts(at, "compare_confusion_")
    assert len(confusions) == len(names)
    assert [c["layout"]["title"]["text"] for c in confusions] == names
    assert {(c["data"][0]["zmin"], c["data"][0]["zmax"]) for c in confusions} == {(0, 1)}  # one colour scale

    curves = [c["layout"]["title"]["text"] for c in charts(at, "compare_curves_")]
    assert curves == ["Training accuracy", "Training loss"]  # the Retrain page draws the same pair, same order
    shown = at.multiselect(key="compare_curves").value
    assert shown == (["cnn2", "cnn2_dropout"] if {"cnn2", "cnn2_dropout"} <= set(names) else names)
    (scatter,) = charts(at, "compare_tradeoff")
    assert scatter["data"][0]["text"] == names


def test_a_damaged_model_file_is_one_sentence_not_a_traceback(data_dir: Path, damaged_models: Path) -> None:
    """The metadata parts still show (they read the JSON files); what needs the models says why it cannot."""
    at = open_compare()
    assert len(at.main.dataframe[0].value) == len(model_names())
    warning = at.warning[-1].value
    assert warning.startswith("The models could not be loaded:") and damaged_models.name in warning
    assert any("the models could not be loaded" in c.value for c in at.caption)  # no latency column either


def test_with_the_dataset_every_part_shows(data_dir: Path) -> None:
    at = open_compare()
    check_metadata_parts(at)
    assert any("timed on a synthetic one-second clip as the models loaded" in c.value for c in at.caption)
    assert at.radio(key="compare_x_axis").options == ["latency per clip", "parameters"]
    (det,) = charts(at, "compare_det")  # the real dataset has other words in its test split
    lines = [t for t in det["data"] if t["mode"] == "lines"]
    assert [t["name"] for t in lines] == model_names()
    assert all(0 < min(t["x"]) and max(t["y"]) <= 1 for t in lines)
    assert any("operating point, 60%" in c.value for c in at.caption)
    at.radio(key="compare_x_axis").set_value("params").run()
    (scatter,) = charts(at, "compare_tradeoff")
    assert scatter["data"][0]["x"] == list(at.main.dataframe[0].value["params"])
    assert scatter["layout"]["xaxis"]["type"] == "log"
    assert at.main.markdown[0].value.startswith(f"**{model_names()[0]}** gets")


def test_the_clips_perceptron_gets_wrong(data_dir: Path) -> None:
    names = model_names()
    if "perceptron" not in names:
        pytest.skip("no perceptron in the active set")
    at = open_compare()
    at.selectbox(key="compare_model").set_value("perceptron").run(timeout=FIRST_RUN_S)
    assert not at.exception
    summary = at.main.markdown[0].value
    assert summary.startswith("**perceptron** gets **")
    wrong = int(summary.split("**")[3])
    assert wrong > 0  # the linear model makes mistakes
    mistakes = at.main.dataframe[2].value
    assert len(mistakes) == wrong
    assert list(mistakes.columns) == ["clip", "true word", *names]  # what every model said
    assert all("✗" in said for said in mistakes["perceptron"])

    shown = min(wrong, 5)
    assert len(at.get("audio")) == shown  # each one playable
    assert len(at.get("image")) == shown  # and its MFCC picture beside it
    for i in range(shown):
        detail = at.main.markdown[1 + i].value
        assert "true word **" in detail and "perceptron said **" in detail
        answers = at.main.dataframe[3 + i].value
        assert list(answers["model"]) == names
        true_word = detail.split("true word **")[1].split("**")[0]
        assert not answers.set_index("model").loc["perceptron", "right"]
        assert list(answers["right"]) == [w == true_word for w in answers["says"]]

    if wrong > 5:
        first = at.main.markdown[1].value
        at.number_input(key="compare_page").set_value(2).run()
        assert not at.exception
        assert at.main.markdown[1].value != first
        assert len(at.get("audio")) == min(wrong - 5, 5)


def test_without_the_dataset_the_metadata_parts_still_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KWS_DATA_DIR", str(tmp_path))
    at = open_compare(compare_model="gone", compare_curves=["gone"])  # choices left from another model set
    check_metadata_parts(at)
    assert any("synthetic" in c.value for c in at.caption)  # latency as the models loaded, and it says on what
    assert [i.value for i in at.info] == [missing_message(tmp_path)] * 2  # robustness, then the mistakes view
    assert not at.get("audio") and not at.get("image")


def test_every_model_and_the_whole_set_can_be_downloaded() -> None:
    """A button per file of the chosen model (named as on disk) and one for the set as a zip holding them all."""
    import io
    import zipfile

    at = open_compare()
    names = model_names()
    infos = store.list_models(active_models_dir())
    int8 = {i.name for i in infos if i.tflite_path("int8") is not None}  # shipped where it kept its accuracy
    assert int8, "no shipped model has an int8 copy to offer"
    for name in names:
        at.selectbox(key="compare_downloads_model").set_value(name).run()
        assert not at.exception, at.exception
        labels = [b.proto.label.split(" (")[0] for b in at.get("download_button")]
        files = ["float32 .tflite", *(["int8 .tflite"] if name in int8 else []), ".keras", ".json"]
        assert labels == [*files, f"Whole set, {len(names)} models"], name
    with zipfile.ZipFile(io.BytesIO(store.set_archive(infos))) as archive:
        held = set(archive.namelist())
    assert {f"{n}.tflite" for n in names} | {f"{n}.json" for n in names} | {f"{n}.keras" for n in names} <= held
    assert {f"{n}.int8.tflite" for n in int8} <= held and not {f"{n}.int8.tflite" for n in set(names) - int8} & held


def test_a_stored_robustness_result_is_drawn_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One line per model from the stored file (a made-up one under the right key); no button."""
    from kws import robustness, store

    data = make_noisy_dataset(tmp_path / "data")
    monkeypatch.setenv("KWS_DATA_DIR", str(data))
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    names = model_names()
    fake = {"snrs": ["clean", *robustness.SNRS], "clips": 6, "seed": 0, "noise_clips": 2}
    fake["accuracy"] = {name: [1.0 - 0.05 * i for i in range(len(fake["snrs"]))] for name in names}
    fake["false_accepts"] = {name: [0.02 * i for i in range(len(fake["snrs"]))] for name in names}
    fake["other_clips"] = 4
    store.write_json_atomic(robustness.result_path(active_models_dir(), data), fake)
    at = open_compare()
    (chart,) = charts(at, "compare_robustness_chart")
    assert [line["name"] for line in chart["data"]] == names
    assert chart["data"][0]["x"] == ["clean", *(f"{s} dB" for s in robustness.SNRS)]
    (accepts,) = charts(at, "compare_robustness_accepts")  # false accepts against SNR, beside accuracy
    assert [line["name"] for line in accepts["data"]] == names and accepts["data"][0]["y"][-1] == pytest.approx(0.16)
    assert any("6 keyword test clips and 4 of other words" in c.value and "seed 0" in c.value for c in at.caption)
    assert not [b for b in at.button if b.label.startswith("Measure")]
    del fake["false_accepts"], fake["other_clips"]  # a result stored before false accepts were measured
    store.write_json_atomic(robustness.result_path(active_models_dir(), data), fake)
    at = open_compare()
    assert charts(at, "compare_robustness_chart") and not charts(at, "compare_robustness_accepts")


def test_without_a_stored_result_measuring_is_offered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_noisy_dataset(tmp_path / "data")
    monkeypatch.setenv("KWS_DATA_DIR", str(data))
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    at = open_compare()
    (button,) = [b for b in at.button if b.key == "compare_robustness_measure"]
    assert button.label.startswith("Measure (about ") and button.label.endswith(" s)")
    assert not charts(at, "compare_robustness_chart")
