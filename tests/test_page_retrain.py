"""The Retrain page under AppTest: with and without data, disabled, a tiny run end to end, a busy server.

Every test uses a temporary ``KWS_RUNS_DIR`` and ``KWS_TRAIN_LIMIT=6`` (two clips per word and split), and a
fresh training manager, so runs take seconds and never touch the real ``runs/`` or ``models/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from _audio_util import make_model_set
from streamlit.testing.v1 import AppTest

from kws import config, jobs, modelsets, options, store, ui
from kws.dataset import missing_message

ROOT = Path(__file__).absolute().parent.parent
PAGE = str(ROOT / "pages" / "retrain.py")


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs"
    monkeypatch.setenv("KWS_RUNS_DIR", str(path))
    monkeypatch.setenv(options.LIMIT_ENV, "6")
    monkeypatch.delenv("KWS_DISABLE_RETRAIN", raising=False)
    ui.training_manager.clear()
    yield path
    manager = ui.training_manager()
    manager.cancel()
    manager.wait(60)
    ui.training_manager.clear()


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "success", "error") for e in at.get(kind)]
    return "\n".join(str(p) for p in parts)


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    return found[0] if found else None


def test_page_shows_the_controls_and_an_estimate(runs: Path, data_dir: Path) -> None:
    at = open_page()
    assert at.button_group(key="retrain_models").value == list(options.page_defaults()["models"])
    assert at.number_input(key="retrain_epochs").value == options.page_defaults()["epochs"]
    assert at.radio(key="retrain_preset").options == ["standard", "lecture", "lecture_exact"]
    shown = texts(at)
    assert "Expected time" in shown and "Estimated from" in shown
    assert f"{options.LIMIT_ENV}=6" in shown
    # words, not a dict; the limit of 6 keeps one clip of each of the four labels (what the run will read)
    assert "Clips per split: train 4, validation 4, test 4" in shown
    assert button(at, "Start training") is not None
    sets = at.dataframe[0].value
    assert list(sets["set"]) == [modelsets.SHIPPED] and list(sets["in use"]) == ["✓"]


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list:
    """The configs the page asks the training manager to start; it trains nothing and says "recorded"."""
    configs: list = []

    def start(self, cfg, owner="someone", data_dir=None):
        configs.append(cfg)
        raise jobs.Busy("recorded")

    monkeypatch.setattr(jobs.TrainingManager, "start", start)
    return configs


def test_the_other_switch_reaches_the_run(runs: Path, data_dir: Path, asked: list) -> None:
    at = open_page()
    other = at.toggle(key="retrain_other")
    assert other.label == "Learn 'other' from the other words" and other.value is True
    other.set_value(False).run()
    button(at, "Start training").click().run()
    assert not at.exception, at.exception
    assert [cfg.other for cfg in asked] == [False] and "recorded" in texts(at)


def test_the_lecture_networks_reach_the_run_and_best_is_refused_with_them(
    runs: Path, data_dir: Path, asked: list
) -> None:
    at = open_page()
    zoo = at.radio(key="retrain_zoo")
    assert zoo.value == "today" and zoo.label == "Networks"
    zoo.set_value("lecture")
    at.button_group(key="retrain_models").set_value(["perceptron", "best"]).run()
    assert "Cannot train this choice: the lecture's zoo has no best" in " ".join(w.value for w in at.warning)
    assert button(at, "Start training").disabled
    at.button_group(key="retrain_models").set_value(["perceptron", "lstm"]).run()
    assert not at.warning and "Expected time" in texts(at)
    button(at, "Start training").click().run()
    assert not at.exception, at.exception
    assert [(cfg.zoo, cfg.models) for cfg in asked] == [("lecture", ("perceptron", "lstm"))]


def test_without_dataset_the_page_says_how_to_get_it(runs: Path, tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("KWS_DATA_DIR", str(empty))
    at = open_page()
    assert missing_message(empty) in [w.value for w in at.warning]
    assert button(at, "Start training") is None and not at.button_group
    assert at.dataframe  # switching model sets needs no dataset


def test_disabled_retraining_hides_every_control(runs: Path, monkeypatch) -> None:
    monkeypatch.setenv("KWS_DISABLE_RETRAIN", "1")
    at = open_page()
    assert "turned off" in at.info[0].value and "KWS_DISABLE_RETRAIN" in at.info[0].value
    assert not at.button and not at.button_group and not at.number_input and not at.dataframe


@pytest.mark.slow
def test_a_tiny_run_shows_progress_then_the_comparison_and_switches(runs: Path, data_dir: Path) -> None:
    at = open_page()
    at.button_group(key="retrain_models").set_value(["perceptron"])
    at.number_input(key="retrain_epochs").set_value(2)
    at.text_input(key="retrain_owner").set_value("ann")
    assert at.radio(key="retrain_fit").value == "train"
    at.radio(key="retrain_fit").set_value("train+validation").run()  # the shipped best's final refit
    assert "Early stopping" not in texts(at)  # the estimate knows a refit runs every epoch
    at.number_input(key="retrain_seed").set_value(3)
    assert at.toggle(key="retrain_centre").value is False
    at.toggle(key="retrain_centre").set_value(True)  # the shipped perceptron's centred input
    button(at, "Start training").click().run()
    assert not at.exception, at.exception
    seen_progress, seen_cancel = [], False
    deadline = time.monotonic() + 120
    while at.get("progress") or not at.subheader or at.subheader[0].value != "New models vs the ones in use":
        assert time.monotonic() < deadline, "the run did not finish"
        seen_progress += [p.value for p in at.get("progress")]
        seen_cancel = seen_cancel or button(at, "Cancel training") is not None
        time.sleep(0.3)
        at.run()
        assert not at.exception, at.exception
    assert seen_progress and seen_cancel  # the starter saw progress and could cancel
    job = ui.training_manager().current()
    assert job.state == "done"
    meta = store.read_meta(config.runs_dir() / job.id / "perceptron.json")
    assert meta["fit_on"] == "train+validation" and meta["train_config"]["seed"] == 3
    assert meta["feature_settings"]["centre"] is True and meta["train_config"]["centre"] is True
    comparison = at.dataframe[0].value
    assert list(comparison["set"]) == ["new", f"in use ({modelsets.SHIPPED})"]
    assert {"accuracy", "acc_bed", "acc_happy", "acc_cat", "train_s", "params"} <= set(comparison.columns)
    columns = json.loads(at.dataframe[0].proto.columns)
    formats = {k: v.get("type_config", {}).get("format") for k, v in columns.items()}
    assert formats["accuracy"] == formats["acc_cat"] == "percent"  # as on the Compare page, not 0.9432
    assert (formats["params"], formats["train_s"]) == ("localized", "%.0f")  # 852,803 and whole seconds
    assert columns["accuracy"]["label"] == "test accuracy" and columns["set"]["label"] == "set"
    curves = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert curves == ["Training accuracy", "Training loss"]  # the final curves, as the Compare page draws them

    button(at, "Use these models").click().run()
    assert modelsets.active_set() == job.id
    assert f"The app now uses `{job.id}`." in texts(at)
    assert "The app uses these models." in texts(at)
    assert button(at, f"Restore the previous set ({modelsets.SHIPPED})").click().run()
    assert modelsets.active_models_dir() == config.SHIPPED_MODELS_DIR

    at.selectbox(key="retrain_doomed").set_value(job.id).run()  # the run's own set, deleted from the list below
    button(at, "Delete it for good").click().run()
    assert not at.exception, at.exception
    assert f"The set this run made, `{job.id}`, has been deleted." in texts(at)
    assert button(at, "Use these models") is None and not modelsets.exists(job.id)


def test_a_retrained_set_can_be_deleted_but_not_the_one_in_use(runs: Path, data_dir: Path) -> None:
    old, current = make_model_set(runs, "20260101-000000-aaaa"), make_model_set(runs, "20260102-000000-bbbb")
    modelsets.adopt(current)
    at = open_page()
    doomed = at.selectbox(key="retrain_doomed")
    assert doomed.options == [old]  # neither the shipped models nor the set in use are offered
    assert button(at, "Delete it for good").disabled
    doomed.set_value(old).run()
    button(at, "Delete it for good").click().run()
    assert not at.exception, at.exception
    assert f"Deleted `{old}`." in texts(at)
    assert list(at.dataframe[0].value["set"]) == [modelsets.SHIPPED, current]
    assert not modelsets.exists(old) and modelsets.active_set() == current
    assert not [s for s in at.selectbox if s.key == "retrain_doomed"]  # nothing left to delete: no control


@pytest.mark.slow
def test_a_second_user_sees_who_is_training_and_cannot_start(runs: Path, data_dir: Path) -> None:
    manager = ui.training_manager()
    cfg = options.make_config(models=["perceptron"], epochs=500, patience=500)
    job = manager.start(cfg, owner="bob", data_dir=data_dir)
    at = open_page()
    assert "bob started training perceptron" in texts(at)
    assert at.get("progress") and button(at, "Start training") is None
    assert button(at, "Cancel training") is None  # only bob's session can cancel
    manager.cancel(job.id)
    manager.wait(60)
    at.run()
    assert button(at, "Start training") is not None
    assert "cancelled" not in texts(at)  # someone else's outcome is not reported to this session


def test_the_router_opens_the_page(runs: Path, data_dir: Path) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("pages/retrain.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Retrain the models"
