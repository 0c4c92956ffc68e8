"""kws.store.ModelCard and kws.cards: every model's JSON reads into a card, and the model tables keep their columns."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kws import cards, config, evaluate, store
from kws.cards import Column
from kws.store import ModelCard, OpenWorld

SHIPPED_JSON = sorted(config.SHIPPED_MODELS_DIR.glob("*.json")) + sorted(config.LECTURE_MODELS_DIR.glob("*.json"))

#: A model's JSON from before the open-world scores, the TFLite files, ``epochs_run`` and the refit.
OLD_META = {
    "architecture": "CNN, one convolution",
    "params": 1234,
    "size_bytes": 4096,
    "labels": ["bed", "happy", "cat"],
    "feature_settings": {"name": "lecture"},
    "test_accuracy": 0.75,
    "per_class_accuracy": {"bed": 0.5, "happy": 0.75, "cat": 1.0},
    "history": {"loss": [1.0, 0.5, 0.25], "accuracy": [0.5, 0.7, 0.9]},
    "train_seconds": 3,
}


@pytest.mark.parametrize("path", SHIPPED_JSON, ids=[f"{p.parent.name}/{p.stem}" for p in SHIPPED_JSON])
def test_every_shipped_model_reads_into_a_card(path: Path) -> None:
    meta = json.loads(path.read_text())
    card = ModelCard.from_meta(path.stem, meta)
    assert card.name == path.stem and card.architecture == meta["architecture"]
    assert card.labels in config.LABEL_SETS and list(card.per_class_accuracy) == list(card.labels)
    assert card.params > 0 and card.size_bytes > 0 and 0 < card.test_accuracy <= 1
    assert card.preset and card.epochs and card.train_seconds > 0 and card.fit_on == ("train",)
    assert card.tflite_size_bytes("float32") == meta["tflite"]["float32"]["size_bytes"]
    assert (card.tflite_size_bytes("int8") is None) is (not meta["tflite"]["int8"].get("shipped"))
    test = card.open_world_on("test")
    assert test.false_accept_rate == meta["open_world"]["test"]["false_accept_rate"]
    assert set(card.open_world) == {"test", "validation"}


@pytest.mark.parametrize("folder", [config.SHIPPED_MODELS_DIR, config.LECTURE_MODELS_DIR], ids=["today", "lecture"])
def test_a_model_info_has_its_card_once(folder: Path) -> None:
    for info in store.list_models(folder):
        assert info.card == ModelCard.from_meta(info.name, info.meta)
        assert info.card is info.card  # read once, not per table
        assert info.card.tflite_size_bytes("int8") == info.tflite_size_bytes("int8")


def test_an_old_three_label_model_reads_with_gaps() -> None:
    card = ModelCard.from_meta("cnn1", OLD_META)
    assert card.labels == ("bed", "happy", "cat") and card.preset == "lecture"
    assert card.open_world == {} and card.open_world_on("test") == OpenWorld()
    assert card.open_world_on("validation").false_accept_rate is None
    assert card.tflite_size_bytes("float32") is None and card.tflite_size_bytes("int8") is None
    assert card.validation_accuracy is None and card.test_clips is None and card.epochs_run is None
    assert card.epochs == 3  # from the history
    assert card.fit_on == ("train",) and card.train_seconds == 3.0
    with pytest.raises(ValueError, match="unknown precision"):
        card.tflite_size_bytes("float16")


def test_an_empty_meta_still_reads() -> None:
    card = ModelCard.from_meta("x", {})
    assert card.architecture is None and card.params is None and card.labels == () and card.preset is None
    assert card.epochs is None and card.history == {} and card.per_class_accuracy == {}


def test_a_card_copies_what_it_reads() -> None:
    meta = json.loads(json.dumps(OLD_META))
    card = ModelCard.from_meta("cnn1", meta)
    card.history["loss"].append(0.1)
    card.per_class_accuracy["bed"] = 0.0
    assert meta == OLD_META


def test_rows_keep_column_order_spread_columns_and_extras() -> None:
    card = ModelCard.from_meta("cnn1", OLD_META)
    columns = (
        Column("params", lambda c: c.params),
        cards.MODEL,
        Column("per_class", lambda c: c.per_class_accuracy, cards.rounded(1), spread="acc_"),
        Column("latency_ms"),
        Column("size_kb", lambda c: c.size_bytes, cards.kb),
        Column("gap", fmt=lambda v: "-" if v is None else v),
    )
    (row,) = cards.rows([card], columns)
    assert list(row) == ["params", "model", "acc_bed", "acc_happy", "acc_cat", "latency_ms", "size_kb", "gap"]
    assert row == {
        "params": 1234,
        "model": "cnn1",
        **{"acc_bed": 0.5, "acc_happy": 0.8, "acc_cat": 1.0},
        "latency_ms": None,
        "size_kb": 4.0,
        "gap": "-",  # a formatter sees the gap and decides how it looks
    }
    fresh = {"latency_ms": 1.5, "per_class": {"cat": 0.25}, "params": 7}
    (row,) = cards.rows([card], columns, [fresh])
    assert list(row) == ["params", "model", "acc_cat", "latency_ms", "size_kb", "gap"]
    assert (row["params"], row["acc_cat"], row["latency_ms"]) == (7, 0.2, 1.5)  # extras replace the card's values
    with pytest.raises(ValueError, match="1 extra mappings for 2 cards"):
        cards.rows([card, card], columns, [fresh])


def test_formatted_shows_built_rows_through_the_columns() -> None:
    columns = (Column("b", fmt=str), Column("a"), Column("c", fmt=lambda v: v or "-"))
    assert cards.formatted([{"a": 1, "b": 2}], columns) == [{"b": "2", "a": 1, "c": "-"}]


def model_table_today(infos) -> list[dict]:
    """What ``kws.ui._model_table`` builds from each model's metadata (the Home page's table)."""
    from kws import features

    return [
        {
            "model": i.name,
            "architecture": i.meta["architecture"],
            "parameters": i.meta["params"],
            "labels": len(i.meta["labels"]),
            "test accuracy": i.meta["test_accuracy"],
            "false accepts": (i.meta.get("open_world", {}).get("test") or {}).get("false_accept_rate"),
            "preset": features.label(i.meta["feature_settings"]),
        }
        for i in infos
    ]


@pytest.mark.parametrize("folder", [config.SHIPPED_MODELS_DIR, config.LECTURE_MODELS_DIR], ids=["today", "lecture"])
def test_home_rows_are_the_home_pages_table(folder: Path) -> None:
    infos = store.list_models(folder)
    assert cards.home_rows(infos) == model_table_today(infos)
    assert list(cards.home_rows(infos)[0]) == [c.key for c in cards.HOME_COLUMNS]
    old = SimpleNamespace(name="old", meta=OLD_META)  # a stand-in with a name and metadata is enough
    assert cards.home_rows([old]) == model_table_today([old])
    assert cards.home_rows([old])[0]["false accepts"] is None


def fake_evaluation(infos, without_open: str) -> evaluate.Evaluation:
    scores = {i.name: evaluate.Scores(0.5, dict.fromkeys(i.labels, 0.25), [[1]], 9) for i in infos}
    opens = {i.name: evaluate.OpenScores(0.7, 0.2, 0.1, 5, 7, 0.6) for i in infos if i.name != without_open}
    labels = {i.name: i.labels for i in infos}
    return evaluate.Evaluation("validation", [], np.zeros(0), {}, scores, [], opens, labels)


def test_the_evaluate_table_takes_its_scores_from_the_evaluation_not_the_card() -> None:
    infos = store.list_models(config.LECTURE_MODELS_DIR)
    rows = evaluate.table(fake_evaluation(infos, without_open="cnn1"), config.LECTURE_MODELS_DIR)
    assert [r["model"] for r in rows] == [i.name for i in infos]
    by_name = {r["model"]: r for r in rows}
    kept = ["model", "architecture", "preset", "params", "size_kb", "tflite_kb", "int8_kb", "labels", "accuracy"]
    scored = ["acc_bed", "acc_happy", "acc_cat", "clips"]
    open_keys = ["keyword_accuracy", "false_accept_rate", "false_reject_rate", "keyword_clips", "other_clips"]
    assert list(by_name["perceptron"]) == [*kept, *scored, *open_keys, "fit_on"]
    assert list(by_name["cnn1"]) == [*kept, *scored, "fit_on"]  # no open-world scores: no such keys
    perceptron = by_name["perceptron"]
    assert perceptron["accuracy"] == 0.5 and perceptron["acc_cat"] == 0.25 and perceptron["false_accept_rate"] == 0.2
    assert perceptron["labels"] == 3 and perceptron["clips"] == 9 and perceptron["fit_on"] == "train"
    assert by_name["cnn1"]["int8_kb"] is None and perceptron["int8_kb"] == 2.5
