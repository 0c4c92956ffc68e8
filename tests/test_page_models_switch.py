"""The sidebar's model-set switch under AppTest: the lecture's set on Try it and Compare, for this visitor only."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kws import config, store

ROOT = Path(__file__).absolute().parent.parent
TIMEOUT = 300  # the first run loads a second model set on a busy 2-core machine

pytestmark = pytest.mark.skipif(not config.LECTURE_MODELS_DIR.is_dir(), reason="no lecture set in models/lecture")


def open_with_lecture(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    switch = at.sidebar.radio(key="model_set_switch")
    assert switch.options == ["Today's models", "The lecture's models (as it trained them)"]
    assert switch.value == "app"  # today's set until the visitor asks
    switch.set_value("lecture").run()
    assert at.session_state["model_set"] == "lecture"
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_try_it_answers_with_the_lectures_five_models(no_webrtc_session, known_clip) -> None:
    path, _ = known_clip
    at = open_with_lecture("pages/try_it.py")
    at.file_uploader(key="tryit_upload").set_value((path.name, path.read_bytes(), "audio/wav")).run()
    assert not at.exception, at.exception
    prediction = at.session_state["tryit_result"]["prediction"]
    lecture = [i.name for i in store.list_models(config.LECTURE_MODELS_DIR)]
    assert [a.name for a in prediction.answers] == lecture
    assert all(set(a.probabilities) == set(config.LABELS) for a in prediction.answers)  # three words, no other
    assert len([m for m in at.metric if m.label == "predicted"]) == len(lecture)
    assert at.subheader  # a verdict over the lecture's five


def test_compare_shows_the_lectures_set_and_its_overfitting() -> None:
    at = open_with_lecture("pages/compare.py")
    table, training = at.main.dataframe[0].value, at.main.dataframe[1].value
    assert list(table["model"]) == [i.name for i in store.list_models(config.LECTURE_MODELS_DIR)]
    assert "acc_other" not in table.columns
    gaps = dict(zip(training["model"], training["overfit_gap"]))
    # cnn2 learns its training clips by heart, dropout narrows the gap: the lecture's lesson, read off the page
    assert float(gaps["cnn2"].split()[0]) > float(gaps["cnn2_dropout"].split()[0])
    accuracy = dict(zip(table["model"], table["accuracy"]))
    assert accuracy["perceptron"] < accuracy["cnn1"] and accuracy["lstm"] < accuracy["perceptron"]


def test_the_switch_is_per_visitor_and_moves_no_shared_state() -> None:
    """One visitor on the lecture's set: their Home lists its models; another visitor's, and the app's active
    set for everyone (``active.json``), stay on today's."""
    from kws import modelsets

    before = modelsets.active_models_dir()
    lecture = open_with_lecture("pages/home.py")
    other = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    other.run()
    lecture_names = [i.name for i in store.list_models(config.LECTURE_MODELS_DIR)]
    assert list(lecture.dataframe[0].value["model"]) == lecture_names
    assert list(other.dataframe[0].value["model"]) == [i.name for i in store.list_models(before)]
    assert modelsets.active_models_dir() == before


def test_what_the_lectures_models_listened_to(no_webrtc_session, known_clip) -> None:
    """The occlusion maps and a lecture CNN's first convolution draw for its raw-coefficient input too."""
    path, _ = known_clip
    at = open_with_lecture("pages/try_it.py")
    at.file_uploader(key="tryit_upload").set_value((path.name, path.read_bytes(), "audio/wav")).run()
    at.toggle(key="tryit_listened").set_value(True).run()
    assert not at.exception, at.exception
    maps = at.session_state["tryit_listened_maps"][1]
    assert set(maps) == {i.name for i in store.list_models(config.LECTURE_MODELS_DIR)}
    assert at.selectbox(key="tryit_listened_conv").options == ["cnn1", "cnn2", "cnn2_dropout"]
