"""The command line: ``python -m kws train | evaluate | predict | convert | robustness | data fetch | bench``.

Results go to stdout (a markdown table, readable lines, or exactly one JSON document with ``--json``); progress
and logs go to stderr. Bad input (a missing or broken file, an unknown model, no dataset, bad arguments) ends
with exit status 2 and one line on stderr, never a traceback. TensorFlow is imported only inside the
subcommands that need it, and only after the cheap checks, so ``--help`` and input errors answer at once.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from kws import cards, config
from kws.cards import Column

logger = logging.getLogger(__name__)
SKIPPED_SHOWN = 5  # unreadable clips named in evaluate's warning; --json lists every one

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

_BENCH_SCRIPT = config.PROJECT_ROOT / "bench" / "bench.py"


class UsageError(Exception):
    """Bad input found by the CLI itself; printed as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so every error is one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input. Only modules already imported can have raised theirs, so looking
    them up in ``sys.modules`` answers without importing anything."""
    found: list[type[BaseException]] = [UsageError]
    for module, name in (
        ("kws.audio", "AudioError"),
        ("kws.dataset", "DatasetMissingError"),
        ("kws.store", "ModelStoreError"),
        ("kws.fetch", "FetchError"),
    ):
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "unknown error"


def _error(message: str) -> None:
    """A failure for humans: one ``error:`` line on stderr, never a traceback."""
    print(f"error: {_one_line(message)}", file=sys.stderr)


def _say(message: str) -> None:
    """Progress for humans: stderr, so stdout stays clean for results and JSON."""
    print(message, file=sys.stderr, flush=True)


# --- shared helpers ------------------------------------------------------------------------------------------------


def _models_dir(arg: str | None) -> Path:
    """The folder to use: ``--models-dir``, else the active set (a retrained one, or the shipped models)."""
    if arg:
        return Path(arg)
    from kws.modelsets import active_models_dir

    return active_models_dir()


def _check_models_dir(path: Path) -> None:
    """Fail fast, before any model loads, when there is nothing to load: a folder with no ``.tflite`` (what
    answers, as a downloaded model has) and no ``.keras`` (what ``convert`` starts from)."""
    if not path.is_dir():
        raise UsageError(f"No model folder at {path}.")
    if not any(path.glob("*.tflite")) and not any(path.glob("*.keras")):
        raise UsageError(f"No models in {path}; train some with `python -m kws train --out {path}`.")


def _load_tensorflow() -> None:
    """Import TensorFlow through :mod:`kws._tf`, which orders the imports and filters its start-up noise."""
    import kws._tf  # noqa: F401


class _StageReport:
    """Prints reading / feature progress at most every 10% per stage."""

    def __init__(self) -> None:
        self.shown: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        step = 100 * done // max(total, 1) // 10
        if self.shown.get(stage, -1) < step:
            self.shown[stage] = step
            _say(f"{stage}: {done}/{total}")


def _pct(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"


def _size(kb: float) -> str:
    return f"{kb / 1024:.1f} MB" if kb >= 1024 else f"{kb:.0f} KB"


def _finite(value: Any) -> Any:
    """JSON has no NaN: a class without clips reports null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _print_json(data: Any) -> None:
    print(json.dumps(_finite(data), indent=2, allow_nan=False))


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """A GitHub markdown table (pandas' ``to_markdown``) of ``rows``, whose values are already text: one column
    per entry of ``columns``, under its title, right-aligned where it says so (numbers)."""
    import pandas as pd

    frame = pd.DataFrame([[row.get(c.key) for c in columns] for row in rows], columns=[c.title for c in columns])
    align = ["right" if c.right else "left" for c in columns] if rows else None  # tabulate fails on none
    return frame.to_markdown(index=False, colalign=align, disable_numparse=True)


# --- train ---------------------------------------------------------------------------------------------------------


def train_config(args: argparse.Namespace) -> Any:
    """The ``TrainConfig`` a namespace of ``train``'s options asks for (flags as :func:`add_train_options` makes
    them); options it lacks or leaves unset keep their defaults (``experiments/cv.py`` takes a subset). A bad
    value or combination raises :class:`UsageError`."""
    from kws.options import OPTIONS, TrainConfig

    chosen: dict[str, Any] = {}
    for spec in OPTIONS.values():
        value = getattr(args, spec.dest, None)
        if spec.kind is bool:
            if value:  # a switch's flag turns it from its default
                chosen[spec.name] = not spec.default
        elif value is not None:
            chosen[spec.name] = tuple(value) if spec.kind is tuple else value
    try:
        return TrainConfig(**chosen)
    except ValueError as err:
        raise UsageError(str(err)) from err


#: ``kws train``'s summary of the models it made, as text.
TRAIN_COLUMNS: tuple[Column, ...] = (
    Column("model", lambda c: c.name, header="Model"),
    Column("architecture", lambda c: c.architecture, header="Architecture"),
    Column("params", lambda c: c.params, "{:,}".format, header="Params", right=True),
    Column("accuracy", lambda c: c.test_accuracy, _pct, header="Test accuracy", right=True),
    Column("epochs", lambda c: c.epochs_run, str, header="Epochs", right=True),
    Column("train_s", lambda c: c.train_seconds, lambda s: f"{s:.0f} s", header="Time", right=True),
)


def cmd_train(args: argparse.Namespace) -> int:
    from kws import dataset

    cfg = train_config(args)  # bad options or no dataset: exit 2 before TensorFlow loads
    dataset.scan(args.data_dir)
    _load_tensorflow()
    from kws.store import ModelCard
    from kws.train import Progress, train

    out = Path(args.out) if args.out else config.SHIPPED_MODELS_DIR
    started: dict[str, float] = {}

    def on_epoch(report: Any) -> None:
        logs = report.logs
        started.setdefault(report.model, time.perf_counter())
        parts = [f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs]
        _say(
            f"[{report.model_index + 1}/{report.n_models} {report.model}] "
            f"epoch {report.epoch}/{report.epochs}: " + ", ".join(parts)
        )

    def on_model_done(name: str, meta: dict[str, Any]) -> None:
        _say(f"{name}: test accuracy {_pct(meta['test_accuracy'])} after {meta['epochs_run']} epochs")

    _say(f"training {', '.join(cfg.models)} on the {cfg.preset} preset into {out}")
    result = train(
        cfg, out, args.data_dir, Progress(on_stage=_StageReport(), on_epoch=on_epoch, on_model_done=on_model_done)
    )
    model_cards = [ModelCard.from_meta(name, meta) for name, meta in result.metas.items()]
    print(markdown_table(cards.rows(model_cards, TRAIN_COLUMNS), TRAIN_COLUMNS))
    print(f"\nSaved to {result.out_dir} in {result.seconds:.0f} s.")
    return EXIT_OK


# --- evaluate ------------------------------------------------------------------------------------------------------


def _file_size(kb: float | None) -> str:
    return "-" if kb is None else _size(kb)


def evaluate_text_columns(labels: Sequence[str]) -> tuple[Column, ...]:
    """How ``kws evaluate`` shows :func:`kws.evaluate.table`'s rows as text: percentages, sizes in KB or MB, one
    column per label of any model ("-" for a model without that label)."""
    return (
        Column("model", header="Model"),
        Column("labels", fmt=str, header="Labels", right=True),
        Column("params", fmt="{:,}".format, header="Params", right=True),
        Column("tflite_kb", fmt=_file_size, header=".tflite", right=True),
        Column("int8_kb", fmt=_file_size, header="int8", right=True),
        Column("accuracy", fmt=_pct, header="Accuracy", right=True),
        *(
            Column(f"acc_{label}", fmt=lambda v: "-" if v is None else _pct(v), header=label, right=True)
            for label in labels
        ),
        Column("keyword_accuracy", fmt=_pct, header="Keywords", right=True),
        Column("false_accept_rate", fmt=_pct, header="FA", right=True),
        Column("false_reject_rate", fmt=_pct, header="FR", right=True),
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from kws import dataset

    dataset.scan(args.data_dir)  # fail fast, before the models load
    models_dir = _models_dir(args.models_dir)
    _check_models_dir(models_dir)
    from kws import evaluate

    result = evaluate.evaluate(models_dir, args.data_dir, args.split, progress=_StageReport(), precision=args.precision)
    rows = evaluate.table(result, models_dir)
    if result.skipped:  # which ones and why: a count alone leaves the user to hunt for them
        shown = "; ".join(f"{path}: {reason}" for path, reason in result.skipped[:SKIPPED_SHOWN])
        more = len(result.skipped) - SKIPPED_SHOWN
        logger.warning(
            "%d unreadable clip(s) were skipped: %s%s", len(result.skipped), shown, f"; and {more} more" * (more > 0)
        )
    n = len(result.y_true)
    if args.json:
        _print_json(
            {
                "split": args.split,
                "clips": n,
                "models_dir": str(models_dir),
                "precision": args.precision,
                "skipped": [{"path": p, "reason": r} for p, r in result.skipped],
                "models": rows,
            }
        )
        return EXIT_OK
    labels = list(dict.fromkeys(k.removeprefix("acc_") for r in rows for k in r if k.startswith("acc_")))
    columns = evaluate_text_columns(labels)
    first = rows[0] if rows else {}
    where = "speakers never heard in training" if args.split == "test" else "see the README for the split"
    print(
        f"Accuracy on the {args.split} split, {args.precision} models: {n} clips ({where}), "
        f"{first.get('keyword_clips', 0)} of keywords and {first.get('other_clips', 0)} of other words and noise.\n"
        "Accuracy and the per-word recalls are over each model's own labels; Keywords: keyword clips named as "
        f"their word; FA: other clips accepted as a keyword; FR: keyword clips answered other or below "
        f"{config.LOW_CONFIDENCE:.0%} confidence.\n"
    )
    print(markdown_table(cards.formatted(rows, columns), columns))
    seen = {"train", "validation"} if args.split == "all" else {args.split}
    learnt: dict[str, list[str]] = {}  # the splits a model learnt from -> the models, for one note, not one each
    for r in rows:
        if seen & set(config.fit_splits(r["fit_on"])):
            learnt.setdefault(r["fit_on"], []).append(r["model"])
    if learnt:
        who = "; ".join(f"{', '.join(models)} ({splits})" for splits, models in learnt.items())
        print(f"\nNote: not held-out scores for the models that learnt from these clips: {who}.")
    return EXIT_OK


# --- predict -------------------------------------------------------------------------------------------------------


def cmd_predict(args: argparse.Namespace) -> int:
    """Answer every readable file; each unreadable one costs one line on stderr and makes the exit status 2, but
    does not throw away the others' answers (``predict *.wav`` over a folder with one broken clip)."""
    from kws.audio import AudioError, load_audio

    clips, failed = {}, {}
    for i, name in enumerate(args.files):  # decode everything first: bad files fail before the models load
        try:
            clips[i] = load_audio(name)
        except AudioError as err:
            failed[i] = _one_line(f"{name}: {err}")
            _error(failed[i])
    if not clips:
        return EXIT_BAD_INPUT
    models_dir = _models_dir(args.models_dir)
    _check_models_dir(models_dir)
    from kws import inference

    predictor = inference.load_predictor(models_dir, precision=args.precision)
    results = {i: predictor.predict_clip(clip) for i, clip in clips.items()}
    status = EXIT_BAD_INPUT if failed else EXIT_OK
    if args.json:
        docs = [
            {"file": name, "error": failed[i]}
            if i in failed
            else {"file": name, "summary": results[i].summary, **results[i].to_dict()}
            for i, name in enumerate(args.files)
        ]
        _print_json(docs[0] if len(docs) == 1 else docs)
        return status
    for n, (i, p) in enumerate(results.items()):
        if n:
            print()
        w = p.window
        print(f"{args.files[i]}: {p.clip.duration:.2f} s, the models hear {w.start_s:.2f}-{w.end_s:.2f} s")
        for notice in p.clip.notices:
            print(f"  note: {notice}")
        print(p.summary)
        if p.no_speech_reason:
            print(f"  {p.no_speech_reason}")
        width = max(len(a.name) for a in p.answers)
        for a in p.answers:
            # no speech: no word is named, so no confidence in one either (as the app withholds both)
            word, confidence = ("-", "-") if p.no_speech else (a.word, _pct(a.confidence))
            flag = "  low confidence" if a.low_confidence and not p.no_speech else ""
            print(f"  {a.name:<{width}}  {word:<6} {confidence:>6}  {a.latency_ms:6.1f} ms{flag}")
        print(f"  all {len(p.answers)} models together: {p.elapsed_ms:.1f} ms (per model above: its time alone)")
    return status


# --- convert -------------------------------------------------------------------------------------------------------


def cmd_convert(args: argparse.Namespace) -> int:
    from kws import dataset

    dataset.scan(args.data_dir)  # the int8 copies calibrate on the dataset: exit 2 before TensorFlow loads
    models_dir = _models_dir(args.models_dir)
    _check_models_dir(models_dir)
    _load_tensorflow()
    from kws.convert import convert_folder

    for name, entry in convert_folder(models_dir, args.data_dir).items():
        int8 = entry["int8"]
        kept = f"int8 {int8['size_bytes'] / 1024:.0f} KB" if int8.get("shipped") else f"no int8 copy ({int8['reason']})"
        _say(f"{name}: float32 {entry['float32']['size_bytes'] / 1024:.0f} KB, {kept}")
    return EXIT_OK


# --- robustness ----------------------------------------------------------------------------------------------------


def cmd_robustness(args: argparse.Namespace) -> int:
    from kws import dataset, robustness

    models_dir = _models_dir(args.models_dir)
    _check_models_dir(models_dir)
    dataset.scan(args.data_dir)  # no dataset: exit 2 before any model loads
    robustness.result_path(models_dir, args.data_dir)  # no usable noise: exit 2 as well
    _say(f"mixing background noise into the test split for the models in {models_dir}")
    started = time.perf_counter()
    shown = _StageReport()
    result = robustness.measure(models_dir, args.data_dir, progress=lambda done, total: shown("clips", done, total))
    snrs = result["snrs"]
    columns = [
        Column("model", header="Model"),
        *(Column(str(s), header=str(s) if s == robustness.CLEAN else f"{s} dB", right=True) for s in snrs),
    ]

    def by_snr(values: dict[str, list[float | None]]) -> list[dict[str, str]]:
        return [{"model": name, **{str(s): _pct(v) for s, v in zip(snrs, vs)}} for name, vs in values.items()]

    print("Keyword accuracy:\n")
    print(markdown_table(by_snr(result["accuracy"]), columns))
    if result["other_clips"]:
        print(f"\nFalse accepts (other clips named as a keyword at {config.LOW_CONFIDENCE:.0%} or more):\n")
        print(markdown_table(by_snr(result["false_accepts"]), columns))
    print(
        f"\n{result['clips']} keyword and {result['other_clips']} other test clips ({result['silent_clips']} silent ones left out), one of "
        f"{result['noise_clips']} noise clips each (seed {result['seed']}); {time.perf_counter() - started:.0f} s."
    )
    return EXIT_OK


# --- data fetch ----------------------------------------------------------------------------------------------------


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from kws import fetch

    dest = Path(args.dest) if args.dest else config.data_dir()
    counts = fetch.fetch(args.url, dest, sha256=args.sha256, force=args.force)
    print(f"Installed {sum(counts.values())} clips at {dest}: " + ", ".join(f"{w} {n}" for w, n in counts.items()))
    print(f"Data: {config.DATASET_ATTRIBUTION}.")
    return EXIT_OK


# --- bench ---------------------------------------------------------------------------------------------------------


def _load_bench() -> ModuleType | None:
    """``bench/bench.py`` lives beside the package, not in it; load it by path when the checkout has it."""
    if not _BENCH_SCRIPT.is_file():
        return None
    spec = importlib.util.spec_from_file_location("kws_bench", _BENCH_SCRIPT)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cmd_bench(args: argparse.Namespace) -> int:
    if args.train:  # only training needs TensorFlow; the latency and dataset parts answer through LiteRT
        _load_tensorflow()
    return int(args.bench_module.run(args))


# --- parser and entry point ----------------------------------------------------------------------------------------


def _number(kind: type) -> Callable[[str], float]:
    """An argparse type for a whole number or a number; the option's range is checked by ``TrainConfig``."""

    def parse(text: str) -> float:
        try:
            return kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None

    return parse


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """One flag per training option (:data:`kws.options.OPTIONS`): its help, choices and default from there."""
    from kws.options import OPTIONS

    for spec in OPTIONS.values():
        if spec.kind is bool:
            parser.add_argument(spec.flag, action="store_true", default=None, help=spec.help)
            continue
        shown = "all" if spec.default == spec.choices else spec.default
        help_text = spec.help if spec.default is None else f"{spec.help} (default: {shown})"
        if spec.kind is tuple:
            kind: dict[str, Any] = {"nargs": "+", "choices": list(spec.choices)}
        elif spec.choices:
            kind = {"choices": list(spec.choices)}
        else:
            kind = {"type": _number(spec.kind)}
        parser.add_argument(spec.flag, metavar=spec.metavar, help=help_text, **kind)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m kws", description="Keyword Studio: spot the words " + ", ".join(config.LABELS) + "."
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, and tracebacks for internal errors"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train models and install them atomically")
    add_train_options(p)
    p.add_argument("--out", metavar="DIR", help=f"model folder to write into (default: {config.SHIPPED_MODELS_DIR})")
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder (default: KWS_DATA_DIR)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score every model; prints a markdown table")
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder (default: KWS_DATA_DIR)")
    p.add_argument("--models-dir", metavar="DIR", help="model folder (default: the active set)")
    p.add_argument("--split", choices=["test", "validation", "train", "all"], default="test")
    p.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    p.add_argument(
        "--precision",
        choices=["float32", "int8"],
        default="float32",
        help="which TFLite files answer (default: float32)",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="what every model hears in audio files")
    p.add_argument("files", nargs="+", metavar="FILE", help="WAV, FLAC, OGG or MP3")
    p.add_argument("--models-dir", metavar="DIR", help="model folder (default: the active set)")
    p.add_argument("--json", action="store_true", help="one JSON document (a list for several files)")
    p.add_argument(
        "--precision",
        choices=["float32", "int8"],
        default="float32",
        help="which TFLite files answer (default: float32)",
    )
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("convert", help="give a folder's .keras models their TFLite files (float32 and int8)")
    p.add_argument("--models-dir", metavar="DIR", help="model folder (default: the active set)")
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder, for the int8 calibration (default: KWS_DATA_DIR)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("robustness", help="accuracy on the test split against background noise; a markdown table")
    p.add_argument("--models-dir", metavar="DIR", help="model folder (default: the active set)")
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder (default: KWS_DATA_DIR)")
    p.set_defaults(func=cmd_robustness)

    p = sub.add_parser("data", help="get the dataset")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = data_sub.add_parser("fetch", help="download Speech Commands and unpack bed, happy and cat")
    f.add_argument("--url", default=config.DATASET_URL, help="archive URL (http, https or file)")
    f.add_argument("--dest", metavar="DIR", help="where to install (default: KWS_DATA_DIR)")
    f.add_argument("--sha256", metavar="HEX", help="refuse the archive unless its SHA-256 matches")
    f.add_argument("--force", action="store_true", help="replace a destination that already holds files")
    f.set_defaults(func=cmd_data_fetch)

    bench = _load_bench()
    if bench is not None:
        p = sub.add_parser("bench", help="measure inference latency and featurization speed")
        bench.add_arguments(p)
        p.set_defaults(func=cmd_bench, bench_module=bench)
    return parser


def _configure_logging(verbose: bool) -> None:
    """The one place logging is configured: warnings from everyone, progress (INFO) from kws, on stderr."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kws").setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 internal error, 2 bad input, 130 interrupted)."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as err:
        _error(str(err))
        return EXIT_BAD_INPUT
    _configure_logging(args.verbose)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as err:
        if isinstance(err, _user_errors()):
            _error(str(err))
            return EXIT_BAD_INPUT
        if args.verbose:
            raise
        _error(f"unexpected {type(err).__name__}: {_one_line(str(err))} (run with -v for details)")
        return EXIT_FAILED
