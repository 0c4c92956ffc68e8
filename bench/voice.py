"""How well the voice check tells words from noise: the figures behind ``kws.segment.VOICE_THRESHOLD``.

A window loud enough to be speech is refused as "no voice" when :func:`kws.segment.aperiodicity` lies above
the threshold. This script measures, on the machine it runs on:

- real words refused: every clip of the dataset, split by split (the threshold was set on train + validation;
  the test speakers show what a new voice meets), and the validation clips in ``--copies`` microphone-like
  variants (the training augmentation: speed, shift, gain and 5-35 dB of noise; fixed seed);
- noise let through: ``--noises`` generated sounds of each kind (steady white, pink and brown noise; claps and
  taps: noise bursts dying away in 20 or 100 ms; fixed seed), each at a random level from -30 to -6 dBFS, and
  what the shipped models would have named without the check (``--models-dir``; skipped with ``--no-models``);
- the check's cost: the median time of :func:`aperiodicity` on one window, and of librosa's ``pyin`` on it.

    python bench/voice.py [--data-dir DIR] [--out bench/voice.json]

It writes every figure to ``--out`` and prints a markdown table; the README quotes it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kws import dataset  # noqa: E402
from kws.features import FeatureSettings  # noqa: E402
from kws.segment import VOICE_THRESHOLD, aperiodicity, find_window  # noqa: E402
from kws.train import TrainConfig, augment  # noqa: E402

logger = logging.getLogger("bench.voice")
RATE = 16000


def judged(windows: list[np.ndarray]) -> dict[str, Any]:
    """How many windows are too quiet, and how many of the rest have no voice (with their aperiodicity)."""
    settings = FeatureSettings()
    quiet = refused = 0
    scores = []
    for samples in windows:
        window = find_window(samples, settings)
        if not window.has_speech:
            quiet += 1
            continue
        score = aperiodicity(window.samples)
        scores.append(score)
        refused += score > VOICE_THRESHOLD
    loud = len(windows) - quiet
    return {
        "clips": len(windows),
        "too_quiet": quiet,
        "no_voice": int(refused),
        "no_voice_share": refused / max(loud, 1),
        "aperiodicity_median": float(np.median(scores)) if scores else None,
        "aperiodicity_p99_9": float(np.percentile(scores, 99.9)) if scores else None,
    }


def noise_kinds() -> dict[str, Any]:
    """Makers of one second of each kind of noise, from a generator."""

    def coloured(rng: np.random.Generator, slope: float, n: int = RATE) -> np.ndarray:
        spec = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n)
        freqs[0] = freqs[1]
        return np.fft.irfft(spec / freqs**slope, n=n)

    def burst(rng: np.random.Generator, decay_s: float) -> np.ndarray:
        x = np.zeros(RATE)
        at = int(rng.integers(RATE // 5, RATE // 2))
        n = RATE - at
        x[at:] = rng.standard_normal(n) * np.exp(-np.arange(n) / (decay_s * RATE))
        return x

    return {
        "white noise": lambda rng: coloured(rng, 0.0),
        "pink noise": lambda rng: coloured(rng, 0.5),
        "brown noise": lambda rng: coloured(rng, 1.0),
        "clap (dies in 20 ms)": lambda rng: burst(rng, 0.02),
        "tap in a room (dies in 100 ms)": lambda rng: burst(rng, 0.1),
    }


def at_level(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` with its loudest 100 ms at a random level from -30 to -6 dBFS."""
    from kws.segment import loudness_db

    gain = 10 ** ((rng.uniform(-30, -6) - loudness_db(x)) / 20)
    return np.clip(x * gain, -1, 1).astype(np.float32)


def bench_noise(count: int, seed: int, models_dir: Path | None) -> dict[str, Any]:
    """Each kind of noise: how many pass the voice check, and how many the shipped models would name."""
    predictor = None
    if models_dir is not None:
        from kws.inference import load_predictor

        predictor = load_predictor(models_dir)
    out = {}
    for kind, make in noise_kinds().items():
        rng = np.random.default_rng(seed)
        sounds = [at_level(make(rng), rng) for _ in range(count)]
        row = judged(sounds)
        if predictor is not None:
            # what the models alone say: a majority naming one word with no low-confidence flag among them
            named: dict[str, int] = {}
            for x in sounds:
                answers = predictor.predict(x, RATE).answers
                words = [a.word for a in answers if not a.low_confidence]
                for word in {w for w in words if 2 * words.count(w) > len(answers)}:
                    named[word] = named.get(word, 0) + 1
            row["named_without_check"] = sum(named.values())
            row["named_words"] = named
        out[kind] = row
    return out


def median_ms(fn: Any, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def cost_ms() -> dict[str, float]:
    """Median time of one :func:`aperiodicity` call on a loud noise window (every frame is judged), and of
    librosa's ``pyin``, which makes the same voiced/unvoiced decision, on the same window."""
    import librosa

    x = (0.1 * np.random.default_rng(0).standard_normal(RATE)).astype(np.float32)
    return {
        "aperiodicity": median_ms(lambda: aperiodicity(x), 500),
        "librosa_pyin": median_ms(lambda: librosa.pyin(x, fmin=70, fmax=400, sr=RATE, frame_length=640), 10),
    }


def bench_words(data_dir: Path | None, copies: int, seed: int) -> dict[str, Any]:
    """Every split's clips as recorded, and the validation clips made microphone-like."""
    items = dataset.scan(data_dir)
    out = {}
    for split in ("train", "validation", "test"):
        waves = dataset.load_waveforms([it for it in items if it.split == split])
        out[split] = judged(waves.clips)
        if split == "validation":
            windows = np.stack([find_window(c, FeatureSettings()).samples for c in waves.clips])
            stressed = augment(windows, np.random.default_rng(seed), copies, speed=TrainConfig.speed)
            out[f"validation, {copies} variants each"] = judged(list(stressed))
    return out


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"Voice check (aperiodicity above {r['threshold']}): {r['cost_ms']['aperiodicity']:.2f} ms a window "
        f"(librosa's pyin on the same window: {r['cost_ms']['librosa_pyin']:.0f} ms)",
        "",
        "| Sounds | Clips | Too quiet | No voice (refused) | Named without the check (most models sure of one word) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in {**r["words"], **r["noise"]}.items():
        named = row.get("named_without_check")
        words = ", ".join(f"{w} {n}" for w, n in sorted(row.get("named_words", {}).items()))
        lines.append(
            f"| {name} | {row['clips']:,} | {row['too_quiet']} | {row['no_voice']} ({pct(row['no_voice_share'])}) "
            f"| {'' if named is None else named}{f' ({words})' if words else ''} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="the dataset (default: KWS_DATA_DIR)")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--no-models", action="store_true", help="do not ask the models about the noise")
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--noises", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "voice.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "threshold": VOICE_THRESHOLD,
        "cost_ms": cost_ms(),
        "words": bench_words(args.data_dir, args.copies, args.seed),
        "noise": bench_noise(args.noises, args.seed, None if args.no_models else args.models_dir),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
