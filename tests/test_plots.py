"""plots: the colour ranges that make a figure honest (no TensorFlow)."""

from __future__ import annotations

import numpy as np
from _audio_util import word_like

from kws import plots
from kws.features import PRESETS, mfcc


def _z_range(fig) -> tuple[float, float]:
    trace = fig.data[0]
    return trace.zmin, trace.zmax


def test_mfcc_colours_spread_over_a_words_range_but_not_over_rounding_noise() -> None:
    settings = PRESETS["standard"]
    clip = np.zeros(settings.sample_rate, np.float32)
    clip[4000:12000] = word_like(0.5, seed=2)
    lo, hi = _z_range(plots.mfcc_heatmap_robust(mfcc(clip, settings), settings))
    word = mfcc(clip, settings)[:, 1:]
    assert (lo, hi) == tuple(np.percentile(word, [1, 99]))  # a word: its own 1st-99th percentile
    assert hi - lo > plots._MIN_MFCC_SPAN

    silent = mfcc(np.zeros(settings.sample_rate, np.float32), settings)
    assert np.ptp(silent[:, 1:]) < 1e-3  # all but constant: only rounding differs
    lo, hi = _z_range(plots.mfcc_heatmap_robust(silent, settings))
    assert hi - lo == plots._MIN_MFCC_SPAN  # one flat colour, not stripes of noise
    assert lo <= silent[:, 1:].min() and silent[:, 1:].max() <= hi


def test_scatter_names_move_out_of_each_others_way() -> None:
    assert plots.label_positions([0.5], [0.5], ["best"]) == ["top center"]  # alone: above its point
    # cnn2 and cnn2_dropout share a parameter count and differ by half a point: on top of each other.
    spots = plots.label_positions([0.9, 0.9, 0.88], [0.8, 0.7, 0.68], ["cnn2", "cnn2_dropout", "cnn1"])
    assert len(set(spots)) == 3
    assert plots.label_positions([0.99], [0.5], ["cnn2_dropout"])[0] not in {"middle right", "top right"}  # room


def test_scatter_axes_are_set_so_every_point_and_name_fit() -> None:
    rows = [
        {"model": "perceptron", "params": 663, "accuracy": 0.943},
        {"model": "cnn2", "params": 1_002_371, "accuracy": 0.994},
        {"model": "cnn2_dropout", "params": 1_002_371, "accuracy": 0.990},
    ]
    fig = plots.tradeoff_scatter(rows, x="params")
    low, high = fig.layout.xaxis.range
    assert fig.layout.xaxis.type == "log" and low < np.log10(663) and np.log10(1_002_371) < high
    low, high = fig.layout.yaxis.range
    assert low < 0.943 and 0.994 < high
    assert fig.layout.xaxis.title.text == "parameters (log scale)"
    assert fig.data[0].textposition[1] != fig.data[0].textposition[2]


def test_scatter_leaves_out_a_model_without_the_measure() -> None:
    rows = [
        {"model": "cnn1", "latency_ms": 1.1, "accuracy": 0.987},
        {"model": "lstm", "latency_ms": None, "accuracy": 0.979},
    ]
    assert list(plots.tradeoff_scatter(rows).data[0].text) == ["cnn1"]
    assert not plots.tradeoff_scatter(rows[1:]).data  # nothing to draw, and no error
