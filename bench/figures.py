"""Milliseconds per figure: each builder of :mod:`kws.plots` on realistic inputs, and ``st.plotly_chart`` on it.

``python bench/figures.py [--runs 50]`` prints a markdown table of medians. Streamlit is imported first, as in the
app, so the figures carry the default template the pages send ("streamlit"). The ``st.plotly_chart`` columns
time the call inside a script run (``AppTest``): given the Figure, Streamlit copies it (``to_dict``), writes its
JSON and hashes that for the element id; given the same figure as a plain dict without the template, which is
what a builder returning dicts would hand it, Streamlit first validates it by building a ``go.Figure`` from it.
Inputs are what the Try it page shows for a 3-second recording (the waveform with the heard window and two
spotted words, the MFCC and log-mel pictures of one second) and the Compare,
Retrain and Dataset pages' charts for six models.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit  # noqa: F401  first: sets Plotly's default template, as in the app
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import plotly.io  # noqa: E402

from kws import plots  # noqa: E402
from kws.features import PRESETS, mfcc  # noqa: E402

RATE = 16000


def _word(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A speech-like burst: harmonics of a gliding pitch under a smooth envelope."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    phase = 2 * np.pi * np.cumsum(130 + 60 * t / seconds) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * np.sin(np.pi * np.arange(n) / (n - 1)) ** 2
    return (0.6 * x / np.abs(x).max() + 0.01 * rng.standard_normal(n)).astype(np.float32)


def builders() -> dict[str, Callable[[], Any]]:
    """Each figure the pages draw, as a call on fixed inputs."""
    rng = np.random.default_rng(0)
    settings = PRESETS["standard"]
    clip = 0.01 * rng.standard_normal(3 * RATE).astype(np.float32)
    clip[RATE : RATE + 6400] += _word(0.4, rng)
    feats = mfcc(clip[RATE - 4000 : 2 * RATE - 4000], settings)
    models = ["perceptron", "cnn1", "cnn2", "cnn2_dropout", "lstm", "best"]
    histories = {
        m: {k: list(rng.uniform(0.5, 1.0, 20)) for k in ("accuracy", "val_accuracy", "loss", "val_loss")}
        for m in models
    }
    params = [663, 20_000, 1_002_371, 1_002_371, 80_000, 300_000]
    measures = zip(models, params, rng.uniform(0.2, 3, 6), rng.uniform(0.94, 0.995, 6))
    rows = [{"model": m, "params": p, "latency_ms": float(t), "accuracy": float(a)} for m, p, t, a in measures]
    confusion = [[160, 3, 2], [4, 170, 1], [2, 0, 165]]
    return {
        "waveform": lambda: plots.waveform(clip, RATE, (0.75, 1.75), marks=[(0.9, 1.4, "bed"), (2.1, 2.6, "cat")]),
        "mfcc_heatmap_robust": lambda: plots.mfcc_heatmap_robust(feats, settings),
        "log_mel_heatmap": lambda: plots.log_mel_heatmap(feats, settings),
        "confusion_heatmap": lambda: plots.confusion_heatmap(confusion, title="cnn1"),
        "training_curves": lambda: plots.training_curves(histories, "accuracy"),
        "tradeoff_scatter": lambda: plots.tradeoff_scatter(rows, x="params"),
        "histogram": lambda: plots.histogram(list(rng.uniform(0.5, 1.0, 2000)), "Clip durations", "seconds"),
    }


def _ms(call: Callable[[], Any], runs: int) -> float:
    """Median wall time of ``call`` in ms, after two warm-up calls."""
    call(), call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _chart_page(figures: dict, runs: int) -> None:
    """A page that draws each figure ``runs`` times, as a Figure and as a plain dict, timing each call (a script
    of its own, run by ``AppTest``: it imports what it needs, and its annotations name only builtins)."""
    import statistics
    import time

    import streamlit as st

    def ms(name: str, figure: object) -> float:
        times = []
        for i in range(runs + 2):  # two warm-up calls
            start = time.perf_counter()
            st.plotly_chart(figure, key=f"{name}-{i}")  # one key each: the same figure twice is one element
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times[2:])

    def plain(figure: object) -> dict:
        spec = figure.to_dict()
        spec["layout"].pop("template")
        return spec

    st.session_state["ms"] = {n: (ms(n, f), ms(f"{n}-dict", plain(f))) for n, f in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed calls per figure (median reported)")
    args = parser.parse_args()
    calls = builders()
    built = {name: _ms(build, args.runs) for name, build in calls.items()}
    figures = {name: build() for name, build in calls.items()}
    page = AppTest.from_function(_chart_page, args=(figures, args.runs), default_timeout=600)
    page.run()
    if page.exception:
        raise SystemExit(page.exception[0].message)
    charts = page.session_state["ms"]
    print("| figure | build (ms) | st.plotly_chart (ms) | st.plotly_chart, as dict (ms) | spec (kB) |")
    print("|---|---:|---:|---:|---:|")
    for name, fig in figures.items():
        spec = len(plotly.io.to_json(fig, validate=False)) / 1000
        chart, chart_dict = charts[name]
        print(f"| {name} | {built[name]:.2f} | {chart:.2f} | {chart_dict:.2f} | {spec:.1f} |")


if __name__ == "__main__":
    main()
