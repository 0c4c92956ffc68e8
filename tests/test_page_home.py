"""The home page under AppTest: what this is, the shipped models, links to every page, the data credit."""

from __future__ import annotations

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
