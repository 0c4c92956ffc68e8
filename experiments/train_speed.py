"""Seconds per training epoch of each architecture under the speed-ups one would try first on a CPU.

Training all six takes ~11 minutes here against a 3-minute aim. This script measures, on inputs of the
standard preset's shape (random numbers: the speed of a step does not depend on the values), one epoch of as
many examples as a default run sees (clean clips + one augmented copy each) for:

- ``default``: what ``kws.train`` does (batch 64, float32, TensorFlow graph with oneDNN);
- ``batch128``: twice the batch (fewer, larger steps);
- ``xla``: ``jit_compile=True``, the XLA compilation that makes inference fast;
- ``bf16``: Keras's ``mixed_bfloat16`` policy (slower where the CPU has avx512_bf16 but no AMX; see
  ``docs/experiments.md`` for a machine with AMX);
- ``one_core``: TensorFlow limited to one thread;
- ``pair``: two such one-core trainings in two processes at the same time, each one's epoch timed. Below twice
  the default, two models trained side by side, one core each, finish sooner than one after the other.

Each variant runs in its own process, one after another, so that a policy or a compiled graph cannot leak into
the next. Every number comes from this run.

    python experiments/train_speed.py [--models best cnn2] [--examples 7400] [--rounds 2] [--out experiments/train_speed.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # kws is imported where it is needed: the parent process never loads TensorFlow
VARIANTS = {
    "default": {},
    "batch128": {"batch_size": 128},
    "xla": {"jit_compile": True},
    "bf16": {"policy": "mixed_bfloat16"},
    "one_core": {"threads": 1},
    "pair": {"threads": 1},  # two one-core trainings at the same time; the time is each one's epoch
}

logger = logging.getLogger("kws.bench.train_speed")


def epoch_seconds(
    name: str, examples: int, batch_size: int = 64, jit_compile: bool = False, policy: str = "", threads: int = 0
) -> float:
    """Mean seconds of two timed epochs of ``name`` on random standard-preset inputs (after a short warm-up)."""
    import numpy as np

    from kws import features, zoo
    from kws._tf import keras, tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    if policy:
        keras.mixed_precision.set_global_policy(policy)
    settings = features.preset("standard")
    shape = features.shapes(settings).input_shape
    rng = np.random.default_rng(0)
    x = rng.normal(size=(examples, *shape)).astype("float32")
    y = rng.integers(0, 3, examples)
    stats = (np.zeros(shape[-1]), np.ones(shape[-1]))
    model = zoo.build(name, shape, 3, stats, bands=settings.n_mels)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    model.fit(x[: batch_size * 4], y[: batch_size * 4], batch_size=batch_size, epochs=1, verbose=0)  # trace, warm
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - t0)
    return sum(times) / len(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["best", "cnn2", "lstm"], help="architectures to time")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--examples", type=int, default=7400, help="examples per epoch (default: a default run's)")
    parser.add_argument("--rounds", type=int, default=2, help="sweeps over every (model, variant); median kept")
    parser.add_argument("--out", default=str(ROOT / "experiments" / "train_speed.json"), help="results file")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.one:
        name, variant = args.one
        print(json.dumps(epoch_seconds(name, args.examples, **VARIANTS[variant])))
        return 0
    from kws.cli import _load_bench  # bench/bench.py, loaded by path as `python -m kws bench` does

    machine = _load_bench().machine()  # at the start, as the main benchmark records it
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):  # whole sweeps take turns, so a slow spell of the machine hits every variant
        for name in args.models:
            for variant in args.variants:
                cmd = [sys.executable, __file__, "--one", name, variant, "--examples", str(args.examples)]
                env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"}
                children = [
                    subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
                    for _ in range(2 if variant == "pair" else 1)
                ]
                outputs = [child.communicate()[0] for child in children]
                if any(child.returncode for child in children):
                    raise RuntimeError(f"timing {name} {variant} failed")
                seconds = statistics.mean(float(out.strip().splitlines()[-1]) for out in outputs)
                times.setdefault((name, variant), []).append(seconds)
                logger.info("%s %s: %.2f s per epoch", name, variant, seconds)
    median = {key: round(statistics.median(runs), 2) for key, runs in times.items()}
    rows = [
        {
            "model": name,
            "variant": variant,
            "seconds_per_epoch": median[name, variant],
            "runs": [round(t, 2) for t in runs],
        }
        for (name, variant), runs in times.items()
    ]
    result = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "examples_per_epoch": args.examples,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\nSeconds per epoch of {args.examples} examples (standard preset input), {os.cpu_count()} CPUs, median of"
        f" {args.rounds} round(s); in brackets, the time relative to default (above 1: slower):\n"
    )
    print("| Model | " + " | ".join(args.variants) + " |")
    print("|---|" + "---:|" * len(args.variants))
    for name in args.models:
        base, *others = (median[name, v] for v in args.variants)
        print(f"| {name} | " + " | ".join([f"{base:.2f}"] + [f"{t:.2f} ({t / base:.2f})" for t in others]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
