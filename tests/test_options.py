"""Training options, defined once: TrainConfig's defaults and checks, the CLI's train flags, the Retrain widgets."""

from __future__ import annotations

import dataclasses
import re

import pytest

from kws import cli, config, options
from kws.options import OPTIONS, Range, TrainConfig


def parse_train(*flags: str) -> TrainConfig:
    return cli.train_config(cli.build_parser().parse_args(["train", *flags]))


def test_train_limit_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(options.LIMIT_ENV, raising=False)
    assert options.train_limit() is None
    for raw, expected in (("12", 12), ("0", None), ("-3", None), ("many", None)):
        monkeypatch.setenv(options.LIMIT_ENV, raw)
        assert options.train_limit() == expected
    monkeypatch.setenv(options.LIMIT_ENV, "9")
    assert options.make_config(models=["perceptron"]).limit_per_split == 9


def test_every_option_is_a_field_of_train_config_with_its_default() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert set(OPTIONS) == set(defaults) - {"limit_per_split"}
    assert all(defaults[name] == spec.default for name, spec in OPTIONS.items())
    assert TrainConfig().other is True and TrainConfig().labels == (*config.LABELS, config.OTHER)


def test_no_flags_give_the_defaults_and_each_flag_its_option() -> None:
    assert parse_train() == TrainConfig()
    cfg = parse_train("--models", "lstm", "--epochs", "3", "--lr", "0.01", "--copies", "2", "--no-augment")
    assert (cfg.models, cfg.epochs, cfg.learning_rate, cfg.augment_copies, cfg.augment) == (
        ("lstm",),
        3,
        0.01,
        2,
        False,
    )
    assert parse_train("--centre").centre is True and parse_train("--fit-on", "train+validation").patience == 0


def test_no_other_trains_the_lectures_three_labels(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_train("--no-other").other is False and parse_train("--no-other").labels == config.LABELS
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--help"])
    assert "--no-other" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (("--epochs", "0"), "epochs must be at least 1"),
        (("--lr", "1"), "learning_rate must be in (0, 1)"),
        (("--speed", "0.5"), "speed must be in [0, 0.5)"),
        (("--mixup", "3"), "mixup must be in [0, 2]"),
        (("--epochs", "5", "--stop-at", "6"), "stop_at must be an epoch from 1 to 5"),
    ],
)
def test_a_value_out_of_its_range_is_one_usage_error(flags: tuple[str, ...], needle: str) -> None:
    with pytest.raises(cli.UsageError, match=re.escape(needle)):
        parse_train(*flags)


def test_ranges_say_what_they_accept() -> None:
    assert 1 in Range(1) and 0 not in Range(1) and str(Range(1)) == "at least 1"
    assert 0.5 not in Range(0, 0.5, high_open=True) and str(Range(0, 1, low_open=True, high_open=True)) == "in (0, 1)"
    assert float("nan") not in Range(0, 2)


def test_the_retrain_page_starts_from_a_run_of_a_few_minutes() -> None:
    defaults = options.page_defaults()
    assert defaults["models"] == ("perceptron", "cnn1", "cnn2_dropout") and defaults["epochs"] == 10
    assert defaults["other"] is True and OPTIONS["other"].widget.label == "Learn 'other' from the other words"
    options.make_config(**defaults)  # a valid run as it stands
