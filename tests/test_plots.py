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
