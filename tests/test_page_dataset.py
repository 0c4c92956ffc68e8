"""The Dataset page under AppTest: counts, speakers, splits, histograms, clip browsing, the credit, no-data message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kws import insights
from kws.config import DATASET_ATTRIBUTION, LABELS
from kws.dataset import SPLITS, missing_message, scan

ROOT = Path(__file__).absolute().parent.parent


def open_dataset() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/dataset.py").run(timeout=120)
    assert not at.exception, at.exception
    return at


def chart(at: AppTest, key: str) -> dict:
    (found,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    return found


def test_the_credit_is_on_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KWS_DATA_DIR", str(tmp_path))  # shown even where there is no data
    at = open_dataset()
    credit = at.main.caption[0].value
    assert DATASET_ATTRIBUTION in credit and "arXiv:1804.03209" in credit and "Warden" in credit


def test_counts_speakers_splits_and_histograms(data_dir: Path) -> None:
    items = scan(data_dir, other=True)
    spoken = [it for it in items if not it.is_noise]
    at = open_dataset()
    metrics = {m.label: m.value for m in at.main.metric}
    assert metrics["clips"] == f"{len(items):,}"
    assert metrics["words"] == str(len({it.word for it in spoken}))
    assert metrics["speakers"] == f"{len({it.speaker for it in spoken}):,}"  # noise clips have no speaker
    per_split = [sum(it.split == s for it in items) for s in SPLITS]
    shares = " / ".join(f"{100 * n / len(items):.0f}" for n in per_split) + " %"  # the counts are in the table
    assert metrics["train / validation / test"] == shares

    table = at.main.dataframe[0].value.set_index("word")
    groups = [*LABELS, *(["other words"] * any(it.label == "other" and not it.is_noise for it in items))]
    groups += ["background noise"] * any(it.is_noise for it in items)
    assert list(table.index) == [*groups, "all clips", "speakers"]
    for word in LABELS:
        assert table.loc[word, "total"] == sum(it.label == word for it in items)
    if "background noise" in groups:
        assert table.loc["background noise", "total"] == sum(it.is_noise for it in items)
    assert list(table.loc["all clips", list(SPLITS)]) == per_split
    columns = json.loads(at.main.dataframe[0].proto.columns)
    assert {columns[c]["type_config"]["format"] for c in [*SPLITS, "total"]} == {"localized"}  # 1,213, not 1213

    durations, loudness = chart(at, "dataset_durations"), chart(at, "dataset_loudness")
    assert len(durations["data"][0]["x"]) == len(loudness["data"][0]["x"]) == len(items)
    assert durations["data"][0]["type"] == "histogram"


def test_browse_a_clip_by_word_and_split(data_dir: Path) -> None:
    at = open_dataset()
    assert len(at.get("audio")) == 1  # the first train clip of the first word, ready to play
    at.selectbox(key="dataset_word").set_value("cat")
    at.selectbox(key="dataset_split").set_value("test")
    at.selectbox(key="dataset_preset").set_value("lecture")
    at.number_input(key="dataset_index").set_value(3).run()
    assert not at.exception
    expected = insights.browse(scan(data_dir, other=True), "cat", "test")[3]
    assert f"`cat/{expected.path.name}`" in at.main.markdown[0].value
    assert f"speaker `{expected.speaker}` · test split" in at.main.markdown[0].value
    assert len(at.get("audio")) == 1
    assert chart(at, "dataset_waveform")["data"][0]["type"] == "scatter"
    mfcc = chart(at, "dataset_mfcc")["data"][0]
    assert mfcc["z"]["shape"] == "20, 11"  # the lecture's 20 coefficients x 11 frames (plotly's binary array)
    assert "11 time frames × 20 coefficients" in at.main.caption[-1].value


def test_a_high_clip_number_survives_a_smaller_split(data_dir: Path) -> None:
    at = open_dataset()
    at.number_input(key="dataset_index").set_value(1000).run()
    assert not at.exception
    at.selectbox(key="dataset_split").set_value("test").run()  # fewer than 1000 clips: back to the first
    assert not at.exception
    assert at.number_input(key="dataset_index").value == 0


def test_without_the_dataset_the_page_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KWS_DATA_DIR", str(tmp_path))
    at = open_dataset()
    assert [i.value for i in at.main.info] == [missing_message(tmp_path)]
    assert not at.main.metric and not at.main.dataframe and not at.get("audio")


def test_other_words_and_noise_are_browsable_and_playable(data_dir: Path) -> None:
    items = scan(data_dir, other=True)
    others = [w for w in insights.folders(items) if w not in LABELS]
    if not others:
        pytest.skip("this dataset has no other words or noise")
    at = open_dataset()
    for folder in others[:1] + others[-1:]:  # an other word, and the noise where there is some
        at.selectbox(key="dataset_word").set_value(folder)
        at.selectbox(key="dataset_split").set_value("all")
        at.number_input(key="dataset_index").set_value(0).run()
        assert not at.exception
        expected = insights.browse(items, folder, "all")[0]
        assert f"`{folder}/{expected.path.name}` (other)" in at.main.markdown[0].value
        assert len(at.get("audio")) == 1
