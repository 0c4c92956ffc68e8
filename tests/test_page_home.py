"""The home page under AppTest: what this is, the shipped models, links to every page, the data credit."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from kws import store
from kws.config import DATASET_ATTRIBUTION
from kws.modelsets import active_models_dir

ROOT = Path(__file__).absolute().parent.parent


def open_home() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def test_home_says_what_this_is() -> None:
    at = open_home()
    assert at.title[0].value == "Keyword Studio"
    intro = at.markdown[0].value
    assert "bed" in intro and "happy" in intro and "cat" in intro
    assert intro.count(". ") + intro.endswith(".") == 2  # two sentences


def test_home_lists_the_models_in_a_table() -> None:
    at = open_home()
    table = at.dataframe[0].value
    names = [info.name for info in store.list_models(active_models_dir())]
    assert list(table["model"]) == names  # whatever set is there, in the store's order
    assert list(table.columns) == ["model", "architecture", "parameters", "test accuracy"]
    assert (table["parameters"] > 0).all()
    assert table["test accuracy"].between(0, 1).all()


def test_home_links_every_page() -> None:
    at = open_home()
    links = at.get("page_link")
    assert {link.proto.page for link in links} == {"try_it", "compare", "retrain", "dataset"}
    assert all(link.proto.label for link in links)


def test_attribution_is_visible() -> None:
    at = open_home()
    shown = [c.value for c in at.sidebar.caption] + [c.value for c in at.caption]
    assert any(DATASET_ATTRIBUTION in text for text in shown)


def test_config_keeps_security_defaults_and_an_upload_limit() -> None:
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert 1 <= config["server"]["maxUploadSize"] <= 50


def test_under_apptest_the_app_starts_no_warm_up(monkeypatch) -> None:
    """Every AppTest run is a fresh server: a background load would outlive its test (see test_browser.py for
    the warm-up on a real server)."""
    from kws.ui import state

    started = []
    monkeypatch.setattr(state, "_warm_up_thread", lambda: started.append(True))
    open_home()
    assert started == []


def test_warm_up_loads_the_models_and_leaves_scoring_to_compare(monkeypatch, caplog) -> None:
    """Scoring the test split in the warm-up took both cores while a first visitor's live take needed them."""
    from kws.ui import state

    done = []
    monkeypatch.setattr(state, "get_predictor", lambda models_dir=None: done.append("models"))
    monkeypatch.setattr(state, "evaluation", lambda split: done.append(split))
    with caplog.at_level(logging.INFO, logger="kws.ui"):
        state._warm_up()
    assert done == ["models"]
    assert "warm-up: models loaded" in caplog.text


def test_the_warm_up_thread_imports_no_module_plotly_peeks_at() -> None:
    """Plotly takes pandas from ``sys.modules`` without the import lock: while the warm-up imported pandas, the
    first confusion matrix built on the page's thread failed ("partially initialized module 'pandas' has no
    attribute 'Series'"). A fresh interpreter loads the shipped models as the warm-up does."""
    code = (
        "import sys\n"
        "from kws.ui import state\n"
        "assert 'pandas' not in sys.modules, 'imported before the warm-up'\n"
        "state._warm_up()\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'xarray') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_warm_up_without_a_dataset_or_with_broken_models_stops_without_raising(monkeypatch, caplog) -> None:
    """The pages say what is missing, in their place; the thread only logs it."""
    from kws.dataset import DatasetMissingError
    from kws.ui import state

    def no_data(models_dir=None) -> None:
        raise DatasetMissingError("no dataset here")

    def broken(models_dir=None) -> None:
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(state, "get_predictor", no_data)
    with caplog.at_level(logging.INFO, logger="kws.ui"):
        state._warm_up()
        assert "warm-up stopped: no dataset here" in caplog.text
        monkeypatch.setattr(state, "get_predictor", broken)
        state._warm_up()
    assert "warm-up failed" in caplog.text and "something unexpected" in caplog.text


def test_only_the_warm_up_threads_missing_context_warning_is_dropped() -> None:
    from kws.ui import state

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "missing ScriptRunContext!", None, None)
    record.threadName = "kws-warm-up"
    assert not state._not_from_warm_up(record)
    record.threadName = "webrtc-callback"  # any other thread calling st.* still warns
    assert state._not_from_warm_up(record)
