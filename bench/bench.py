"""Keyword Studio benchmark: what a user waits for, measured on this machine.

1. Latency: every model on one clip through LiteRT, window and MFCCs included, warm: ``Predictor.predict`` as the
   app calls it (the models on the predictor's threads beside the voice check; also timed from another thread,
   without the check, and every step on the calling thread in turn), with the float32 files and the int8 copies,
   and each model alone, each timed warm in blocks of consecutive calls that take turns over several rounds in one
   process, so that load from other programs hits all of them alike.
2. Featurizing the whole dataset: reading (decoding) alone, a cold ``load_features(use_cache=False)``, the first
   cached run (which writes the cache) and a cache hit, in a temporary ``KWS_CACHE_DIR`` so "cold" is cold.
3. ``--train``: the wall time of training all six architectures with the standard preset (into a temporary folder).

Run ``python bench/bench.py`` or ``python -m kws bench``. Writes ``bench/results.json`` and prints markdown tables;
every number comes from this run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results.json"

logger = logging.getLogger("kws.bench")


def _at_least_1(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options; shared by this script and ``python -m kws bench``."""
    parser.add_argument("--models-dir", metavar="DIR", help="model folder (default: the active set)")
    parser.add_argument("--data-dir", metavar="DIR", help="dataset folder (default: KWS_DATA_DIR)")
    parser.add_argument("--runs", type=_at_least_1, default=200, help="timed calls per method (default: 200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls per method first (default: 10)")
    parser.add_argument(
        "--skip", choices=["latency", "dataset"], action="append", default=[], help="leave a part out (repeatable)"
    )
    parser.add_argument("--train", action="store_true", help="also time training all six (standard preset)")
    parser.add_argument("--train-epochs", type=int, help="epochs for --train (default: TrainConfig's)")
    parser.add_argument(
        "--train-out", metavar="DIR", help="keep the models --train made here (default: a temporary folder)"
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"results file (default: {DEFAULT_OUT})")


# --- helpers --------------------------------------------------------------------------------------------------------


def summary_ms(times_s: list[float]) -> dict[str, float]:
    """Median, 90th percentile, mean and minimum in milliseconds."""
    ms = np.asarray(times_s) * 1000
    return {
        "median_ms": round(float(np.median(ms)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "min_ms": round(float(ms.min()), 3),
        "runs": len(ms),
    }


def in_blocks(methods: dict[str, Callable[[], Any]], runs: int, warmup: int, rounds: int = 5) -> dict[str, list[float]]:
    """Time every method ``runs`` times: in ``rounds`` rounds, each method runs a block of consecutive calls
    (after ``warmup`` untimed ones the first time, two later), so every method is measured warm, as an app
    calls it, yet a change in the machine's load during the run touches all methods alike.
    """
    times: dict[str, list[float]] = {name: [] for name in methods}
    per_block = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
    for index, block in enumerate(per_block):
        for name, fn in methods.items():
            for _ in range(warmup if index == 0 else 2):
                fn()
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return times


@contextlib.contextmanager
def env(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the duration of a block."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def machine() -> dict[str, Any]:
    """Where the numbers come from; load average too, since this machine may be shared."""
    from kws.testing import cpu_model

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    with contextlib.suppress(OSError):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(s: dict[str, float]) -> str:
    return f"{s['median_ms']:.2f} / {s['p90_ms']:.2f}"


# --- 1. latency -----------------------------------------------------------------------------------------------------


def pick_clip(data_dir: str | None) -> tuple[np.ndarray, str]:
    """The first "happy" clip of the test split when the dataset is here, else a generated word-like sound."""
    from kws import dataset

    try:
        items = [it for it in dataset.scan(data_dir) if it.split == "test" and it.label == "happy"]
    except dataset.DatasetMissingError:
        items = []
    if items:
        from kws.audio import load_audio

        return load_audio(items[0].path).samples, f"{items[0].label}/{items[0].path.name}"
    t = np.arange(16000) / 16000
    x = 0.3 * np.sin(2 * np.pi * (150 + 80 * t) * t) * np.sin(np.pi * t) ** 2
    return x.astype(np.float32), "generated 1 s tone sweep (no dataset found)"


def bench_latency(models_dir: Path, data_dir: str | None, runs: int, warmup: int) -> dict[str, Any]:
    """Warm latency of one clip: every model together as the app calls them, each alone, float32 and int8."""
    from kws import inference, store
    from kws.segment import aperiodicity

    samples, source = pick_clip(data_dir)
    t_load = time.perf_counter()
    predictor = inference.load_predictor(models_dir)
    load_s = time.perf_counter() - t_load
    models = predictor.models
    t_load = time.perf_counter()
    int8 = inference.load_predictor(models_dir, precision="int8")
    int8_load_s = time.perf_counter() - t_load
    logger.info("latency: %d models from %s, %d runs each, clip %s", len(models), models_dir, runs, source)

    def features(m: inference.LoadedModel) -> np.ndarray:
        return predictor.features_for(samples, m.settings)[1][None]

    window = predictor.features_for(samples, predictor.display_settings)[0].samples
    unchecked = inference.Predictor(models, inference.Thresholds(no_voice=None), timing_runs=1)
    in_turn = inference.Predictor(models, timing_runs=1, overlap=False)  # models and check on this thread, in turn
    app_thread = ThreadPoolExecutor(1)  # the app calls predict from a session's script thread
    methods: dict[str, Callable[[], Any]] = {
        "features": lambda: features(models[0]),
        "voice": lambda: aperiodicity(window),
        "all/predictor": lambda: predictor.predict(samples, 16000),
        "all/predictor_int8": lambda: int8.predict(samples, 16000),
        "all/predictor_no_voice_check": lambda: unchecked.predict(samples, 16000),
        "all/predictor_in_turn": lambda: in_turn.predict(samples, 16000),
        "all/predictor_off_main": lambda: app_thread.submit(predictor.predict, samples, 16000).result(),
    }
    for m, q in zip(models, int8.models):
        methods[f"{m.name}/float32"] = lambda m=m: m(features(m))
        if q.precision == "int8":  # a model whose int8 copy lost accuracy ships none: float32 answers for it
            methods[f"{m.name}/int8"] = lambda m=q: m(features(m))
    times = in_blocks(methods, runs, warmup)
    app_thread.shutdown()
    stats = {name: summary_ms(t) for name, t in times.items()}
    infos = {i.name: i for i in store.list_models(models_dir)}
    per_model = [
        {
            "model": m.name,
            "params": int(m.meta.get("params", 0)),
            "float32": stats[f"{m.name}/float32"],
            "int8": stats.get(f"{m.name}/int8"),
            "float32_bytes": infos[m.name].tflite_path("float32").stat().st_size,
            "int8_bytes": _size(infos[m.name].tflite_path("int8")),
        }
        for m in models
    ]
    return {
        "clip": source,
        "models_dir": str(models_dir),
        "models": [m.name for m in models],
        "runtime": models[0].runner.runtime,
        "load_s": round(load_s, 2),
        "load_int8_s": round(int8_load_s, 2),
        "features_only": stats["features"],
        "voice_check_only": stats["voice"],
        "all_models": {
            "predictor_predict": stats["all/predictor"],
            "predictor_predict_int8": stats["all/predictor_int8"],
            "predictor_predict_no_voice_check": stats["all/predictor_no_voice_check"],
            "predictor_predict_in_turn": stats["all/predictor_in_turn"],
            "predictor_predict_off_main_thread": stats["all/predictor_off_main"],
        },
        "per_model": per_model,
    }


def _size(path: Path | None) -> int | None:
    """A file's size in bytes; None for a copy the model does not ship."""
    return None if path is None else path.stat().st_size


def latency_markdown(r: dict[str, Any]) -> str:
    rows = [
        [
            p["model"],
            f"{p['params']:,}",
            ms(p["float32"]),
            f"{p['float32_bytes'] / 1024:,.0f} KB",
            ms(p["int8"]) if p["int8"] else "-",
            f"{p['int8_bytes'] / 1024:,.0f} KB" if p["int8_bytes"] else "-",
        ]
        for p in r["per_model"]
    ]
    a = r["all_models"]
    rows.append(
        [
            f"**all {len(r['models'])} models** (Predictor.predict)",
            "",
            ms(a["predictor_predict"]),
            "",
            ms(a["predictor_predict_int8"]),
            "",
        ]
    )
    head = (
        f"Latency per clip through {r['runtime']}, window and MFCCs included, warm; median / p90 in ms over "
        f"{a['predictor_predict']['runs']} runs."
    )
    notes = (
        f"Clip: {r['clip']}. Window + MFCC alone: {ms(r['features_only'])} ms. "
        f"The voice check alone (part of Predictor.predict): {ms(r['voice_check_only'])} ms; Predictor.predict "
        f"without it: {ms(a['predictor_predict_no_voice_check'])} ms. Called from another thread, as the app calls "
        f"it: {ms(a['predictor_predict_off_main_thread'])} ms; with everything on the calling thread, one step after "
        f"another: {ms(a['predictor_predict_in_turn'])} ms. Loading the models took {r['load_s']:.2f} s "
        f"(int8: {r['load_int8_s']:.2f} s)."
    )
    header = ["Model", "Params", "float32", ".tflite", "int8", ".int8.tflite"]
    return "\n".join([head, "", table(header, rows), "", notes])


# --- 2. featurizing the dataset -------------------------------------------------------------------------------------


def bench_dataset(data_dir: str | None, preset_name: str = "standard") -> dict[str, Any]:
    from kws import dataset
    from kws.features import preset

    settings = preset(preset_name)
    items = dataset.scan(data_dir)
    logger.info("dataset: %d clips, preset %s", len(items), preset_name)
    waves, read_s = timed(lambda: dataset.load_waveforms(items))
    _, feat_s = timed(lambda: dataset.featurize(waves.clips, settings))
    with tempfile.TemporaryDirectory(prefix="kws-bench-cache-") as cache, env("KWS_CACHE_DIR", cache):
        _, cold_s = timed(lambda: dataset.load_features(settings, data_dir, use_cache=False))
        _, first_s = timed(lambda: dataset.load_features(settings, data_dir, use_cache=True))
        hits = [timed(lambda: dataset.load_features(settings, data_dir, use_cache=True))[1] for _ in range(3)]
        cache_bytes = sum(f.stat().st_size for f in Path(cache).glob("*.npz"))
    return {
        "clips": len(items),
        "skipped": len(waves.skipped),
        "preset": preset_name,
        "cpus": os.cpu_count(),
        "read_s": round(read_s, 3),
        "featurize_s": round(feat_s, 3),
        "cold_no_cache_s": round(cold_s, 3),
        "first_run_writing_cache_s": round(first_s, 3),
        "cache_hit_s": round(statistics.median(hits), 3),
        "cache_file_mb": round(cache_bytes / 1e6, 1),
        "note": "the OS file cache holds the clips after the first read; 'cold' means no feature cache",
    }


def dataset_markdown(d: dict[str, Any]) -> str:
    rows = [
        ["read + decode only", f"{d['read_s']:.2f}", f"{1000 * d['read_s'] / d['clips']:.2f}"],
        ["window + MFCC only", f"{d['featurize_s']:.2f}", f"{1000 * d['featurize_s'] / d['clips']:.2f}"],
        [
            "load_features, use_cache=False",
            f"{d['cold_no_cache_s']:.2f}",
            f"{1000 * d['cold_no_cache_s'] / d['clips']:.2f}",
        ],
        ["load_features, empty cache (writes it)", f"{d['first_run_writing_cache_s']:.2f}", ""],
        ["load_features, cache hit", f"{d['cache_hit_s']:.3f}", ""],
    ]
    head = (
        f"Featurizing the whole dataset ({d['clips']} clips, {d['preset']} preset, {d['cpus']} CPUs). "
        "A cold `load_features` reads the next chunk while a worker thread featurizes the one before."
    )
    foot = f"Cache file: {d['cache_file_mb']} MB. Note: {d['note']}."
    return "\n".join([head, "", table(["Step", "Seconds", "ms per clip"], rows), "", foot])


# --- 3. training ----------------------------------------------------------------------------------------------------


def bench_train(data_dir: str | None, epochs: int | None, keep: str | None = None) -> dict[str, Any]:
    """Time training all six; ``keep``: a folder for the trained models (``evaluate --models-dir`` reads it)."""
    from kws.train import TrainConfig, train

    cfg = TrainConfig(preset="standard", **({"epochs": epochs} if epochs else {}))
    logger.info("training %s for up to %d epochs", ", ".join(cfg.models), cfg.epochs)
    with tempfile.TemporaryDirectory(prefix="kws-bench-train-") as out:
        result, seconds = timed(lambda: train(cfg, Path(keep) if keep else Path(out) / "models", data_dir))
    return {
        "preset": cfg.preset,
        "max_epochs": cfg.epochs,
        "total_s": round(seconds, 1),
        "models": {
            name: {
                "train_s": meta["train_seconds"],
                "epochs_run": meta["epochs_run"],
                "test_accuracy": round(meta["test_accuracy"], 6),  # 4 digits printed 470/475 as 99.0%
            }
            for name, meta in result.metas.items()
        },
    }


def train_markdown(t: dict[str, Any]) -> str:
    rows = [
        [n, f"{m['train_s']:.1f}", m["epochs_run"], f"{100 * m['test_accuracy']:.1f}%"] for n, m in t["models"].items()
    ]
    head = (
        f"Training all {len(t['models'])} ({t['preset']} preset, up to {t['max_epochs']} epochs): "
        f"{t['total_s']:.0f} s in all."
    )
    return "\n".join([head, "", table(["Model", "Seconds", "Epochs", "Test accuracy"], rows)])


# --- entry points ---------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Run the chosen parts, print markdown to stdout, write the JSON results; returns an exit status."""
    from kws.modelsets import active_models_dir

    models_dir = Path(args.models_dir) if args.models_dir else active_models_dir()
    results: dict[str, Any] = {"created": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
    sections: list[str] = []
    if "latency" not in args.skip:
        results["latency"] = bench_latency(models_dir, args.data_dir, args.runs, args.warmup)
        sections.append(latency_markdown(results["latency"]))
    from kws import dataset

    if args.train:
        dataset.scan(args.data_dir)  # no dataset: fail now, not after the latency runs
    if "dataset" not in args.skip:
        try:
            results["dataset"] = bench_dataset(args.data_dir)
            sections.append(dataset_markdown(results["dataset"]))
        except dataset.DatasetMissingError as err:
            logger.warning("skipping the dataset benchmark: %s", err)
            results["dataset"] = {"skipped": str(err)}
    if args.train:
        results["train"] = bench_train(args.data_dir, args.train_epochs, args.train_out)
        sections.append(train_markdown(results["train"]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print("\n\n".join(sections))
    print(f"\nResults written to {out}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    if str(ROOT) not in sys.path:  # run as a script from a checkout
        sys.path.insert(0, str(ROOT))
    from kws.cli import main as cli_main

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
