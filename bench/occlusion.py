"""Milliseconds for "What each model listened to": every model's occlusion map for one clip, and each model's share.

``python bench/occlusion.py [--runs 20] [--models-dir models]`` answers a generated speech-like clip, then times
:func:`kws.explain.occlusion_maps` (all models, warm) and :func:`kws.explain.occlusion` per model, and prints
medians with the patch count per model, and the first convolutions' feature maps read through the debugging
interpreters of :func:`kws.explain.convolution_runners` (made once; their making is timed too). Nothing is
written; on a shared machine, run it twice.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from kws import explain  # noqa: E402
from kws.inference import load_predictor  # noqa: E402

logger = logging.getLogger(__name__)
RATE = 16000


def _word(seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    """A speech-like burst in a second of near-silence: harmonics of a gliding pitch under a smooth envelope."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    phase = 2 * np.pi * np.cumsum(130 + 60 * np.arange(n) / n) / RATE
    burst = sum(np.sin(k * phase) / k for k in range(1, 8)) * np.sin(np.pi * np.arange(n) / n) ** 2
    clip = 0.001 * rng.standard_normal(RATE)
    clip[(RATE - n) // 2 : (RATE + n) // 2] += 0.3 * burst / np.abs(burst).max()
    return clip.astype(np.float32)


def _median_ms(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        work()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--models-dir", default="models")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    predictor = load_predictor(args.models_dir)
    prediction = predictor.predict(_word(), RATE)
    explain.occlusion_maps(predictor, prediction)  # warm
    print("| model | patches | ms |\n|---|---|---|")
    words = {a.name: a.word for a in prediction.answers}
    for model in predictor.models:
        feats = predictor.features_for(prediction.window.samples, model.settings)[1]
        index = model.labels.index(words[model.name])
        frames = explain.patch_frames(model.settings)
        count = len(explain.patches(feats.shape[0], model.settings.n_mels, frames, explain.PATCH_BANDS))
        ms = _median_ms(partial(explain.occlusion, model, feats, index), args.runs)
        print(f"| {model.name} | {count} | {ms:.1f} |")
    total = _median_ms(lambda: explain.occlusion_maps(predictor, prediction), args.runs)
    print(f"| **all {len(predictor.models)} maps** | | **{total:.1f}** |")
    made = _median_ms(lambda: explain.convolution_runners(predictor.models), 3)
    runners = explain.convolution_runners(predictor.models)
    feats = prediction.features[None]
    convs = _median_ms(lambda: [r.first_convolution(feats) for r in runners.values()], args.runs)
    print(
        f"\nFirst convolutions of {len(runners)} models: {convs:.1f} ms (their interpreters made once: {made:.0f} ms)"
    )


if __name__ == "__main__":
    main()
