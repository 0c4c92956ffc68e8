"""How long one answer takes each model: window, MFCCs and one forward pass, as a user waits for it."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from kws.features import FeatureSettings
from kws.segment import model_input


class _Timed(Protocol):
    """What latency timing needs of a model: :class:`kws.inference.LoadedModel` fits."""

    name: str
    settings: FeatureSettings

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


def median_latency_ms(models: Sequence[_Timed], clips: Sequence[np.ndarray], rounds: int = 5) -> dict[str, float]:
    """Median milliseconds per clip for each model: find the word, MFCCs with its settings, one forward pass.

    That is what one answer costs a user; the first call per model is a warm-up and is not counted. The models
    take turns, ``rounds`` times over the clips, in the opposite order each round: a shared machine's speed
    drifts within seconds, and timing one model's calls all at once would give that drift to whichever model
    comes last (a 0.7-ms model can then read slower than a 0.9-ms one).
    """
    if not clips:
        return {}
    for model in models:
        model(model_input(clips[0], model.settings)[1][None])
    times: dict[str, list[float]] = {model.name: [] for model in models}
    for turn in range(rounds):
        for model in models if turn % 2 == 0 else reversed(models):
            for clip in clips:
                t0 = time.perf_counter()
                _, feats = model_input(clip, model.settings)
                model(feats[None])
                times[model.name].append((time.perf_counter() - t0) * 1000)
    return {name: float(statistics.median(t)) for name, t in times.items()}
