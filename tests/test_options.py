"""Training options, defined once: TrainConfig's defaults and checks, and the Retrain page's starting values."""

from __future__ import annotations

import dataclasses

from kws import config, options
from kws.options import OPTIONS, Range, TrainConfig


def test_every_option_is_a_field_of_train_config_with_its_default() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert set(OPTIONS) == set(defaults) - {"limit_per_split"}
    assert all(defaults[name] == spec.default for name, spec in OPTIONS.items())
    assert TrainConfig().other is True and TrainConfig().labels == (*config.LABELS, config.OTHER)


def test_ranges_say_what_they_accept() -> None:
    assert 1 in Range(1) and 0 not in Range(1) and str(Range(1)) == "at least 1"
    assert 0.5 not in Range(0, 0.5, high_open=True) and str(Range(0, 1, low_open=True, high_open=True)) == "in (0, 1)"
    assert float("nan") not in Range(0, 2)


def test_the_retrain_page_starts_from_a_run_of_a_few_minutes() -> None:
    defaults = options.page_defaults()
    assert defaults["models"] == ("perceptron", "cnn1", "cnn2_dropout") and defaults["epochs"] == 10
    assert defaults["other"] is True and OPTIONS["other"].widget.label == "Learn 'other' from the other words"
    TrainConfig(**defaults)  # a valid run as it stands
