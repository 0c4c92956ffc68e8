"""experiments/train_speed.py: every (model, variant) is timed in its own process and lands in the results file."""

from __future__ import annotations

import json

import pytest
from _audio_util import bench_script

pytestmark = pytest.mark.slow  # training, conversion or fresh interpreters: not in the fast lane

pytest.importorskip("kws.train")  # loads TensorFlow


def _module():
    return bench_script("train_speed", "experiments")


def test_times_each_variant_and_writes_the_table(tmp_path, capsys) -> None:
    """Includes ``pair``, which runs two timing processes at once."""
    out = tmp_path / "speed.json"
    args = [
        "--models",
        "perceptron",
        "--variants",
        "default",
        "pair",
        "--examples",
        "256",
        "--rounds",
        "1",
        "--out",
        str(out),
    ]
    assert _module().main(args) == 0
    result = json.loads(out.read_text())
    assert result["examples_per_epoch"] == 256
    assert result["machine"]["cpu_count"] >= 1  # recorded by bench.py's machine(), at the start
    assert [(r["model"], r["variant"]) for r in result["rows"]] == [
        ("perceptron", "default"),
        ("perceptron", "pair"),
    ]
    assert all(r["seconds_per_epoch"] > 0 for r in result["rows"])
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("| perceptron |"))
    a, b = (r["seconds_per_epoch"] for r in result["rows"])
    assert line == f"| perceptron | {a:.2f} | {b:.2f} ({b / a:.2f}) |"  # later variants relative to the default
