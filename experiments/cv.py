"""Cross-validation by speaker: judge a training recipe on every train + validation clip, not 505 of them.

The validation split no longer separates the better recipes for ``best`` (2 errors in 505 clips), and the test
split must not choose. Here the train + validation speakers are dealt into ``--folds`` groups by a stable hash of
the speaker id (like the split itself, so a speaker's clips stay together and adding clips never moves old ones);
each group is held out once while the recipe trains on the others, so every one of those ~4,200 clips is
predicted by a model that never heard its speaker. The test split is never read.

Early stopping watches the held-out group, as it watches the validation split in a normal run, so the scores are
a little optimistic, alike for every recipe. Each fold trains on ~72% of the speakers against the usual 80%.

    python experiments/cv.py OUT.json --models best [--folds 5] [--seed 7] [--epochs N] [--copies N] [...]
    python experiments/cv.py --compare A.json B.json     # paired: the clips exactly one of the two recipes gets wrong
    python experiments/cv.py --compare A.json A.json:tta # the same models, with test-time views averaged
    python experiments/cv.py --bars A.json [B.json ...]  # each run's accuracy, its 95% interval, and its model's bar
    python experiments/cv.py --hard A.json B.json ...    # the clips every run gets wrong, and what the app makes of them

Each held-out clip is also answered on views of its window moved by ``VIEW_SHIFTS`` (``segment.shifted_windows``);
the record's ``tta`` entry scores the average over ``TTA_SHIFTS``, and ``OUT.views.npz`` keeps every view's
probabilities, so other averages can be read later without training again.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import probes  # noqa: E402
from choose import log_loss, mcnemar_p  # noqa: E402

from kws import config, dataset, evaluate, features, segment, train, zoo  # noqa: E402
from kws.audio import AudioError, load_audio  # noqa: E402
from kws.cli import UsageError, train_config  # noqa: E402
from kws.features import PRESETS  # noqa: E402

logger = logging.getLogger("cv")

#: Test-time views of each held-out clip, in samples (50 ms steps, within training's ±150 ms shifts).
VIEW_SHIFTS = (-1600, -800, 0, 800, 1600)
#: The views whose average probabilities the record scores as ``tta`` (rule ``tta_2026_11_24``).
TTA_SHIFTS = (-1600, 0, 1600)
#: ``best``'s network: "res2d" is the zoo's; "tc" is :func:`probes.tc_resnet8`, a probe (rule ``tc_2026_11_25``);
#: "ssn" is the zoo's with SubSpectral Norm in five bands for every batch norm, a probe (rule ``ssn_2026_11_26``).
BODIES = ("res2d", "tc", "ssn")
#: Sub-bands of the "ssn" body.
SSN_BANDS = 5
#: The issue's bars: the accuracy each shipped model must reach on the test split (speakers never heard).
BARS = {"perceptron": 0.82, "cnn1": 0.97, "cnn2": 0.98, "cnn2_dropout": 0.98, "lstm": 0.96, "best": 0.995}


def fold_of(speaker: str, folds: int) -> int:
    """The group a speaker is held out with: a stable hash, salted so it is independent of the split's."""
    return int(hashlib.sha1(f"cv:{speaker}".encode()).hexdigest(), 16) % folds


def deal(items: list[dataset.Item], folds: int, held_out: int) -> list[dataset.Item]:
    """The train + validation clips, with ``held_out``'s speakers as "validation" and the rest as "train"."""
    return [
        dataclasses.replace(it, split="validation" if fold_of(it.speaker, folds) == held_out else "train")
        for it in items
        if it.split != "test"
    ]


def run_fold(
    cfg: train.TrainConfig, settings: features.FeatureSettings, items: list[dataset.Item], fold: int
) -> dict[str, Any]:
    """Train ``cfg``'s one model without the held-out speakers; its probabilities for their clips."""
    started = time.perf_counter()
    data = train.prepare_data(cfg, settings, None, train.Progress(), items=items)
    if not len(data.y["validation"]) or not len(data.y["train"]):
        raise SystemExit(f"fold {fold} leaves nothing to train on or to hold out; use fewer --folds")
    name = cfg.models[0]

    def on_epoch(report: train.EpochReport) -> None:
        logs = ", ".join(f"{k} {v:.4f}" for k, v in report.logs.items() if k != "learning_rate")
        logger.info("fold %d, epoch %d/%d: %s", fold, report.epoch, report.epochs, logs)

    listener = train._Listener(name, 0, 1, cfg.epochs, train.Progress(on_epoch=on_epoch), None)
    model, history = train.fit_one(name, data, cfg, settings, listener)
    probs = np.asarray(model.predict(data.x["validation"], batch_size=512, verbose=0))
    views = view_probs(model, settings, [it for it in items if it.split == "validation"], data.paths["validation"])
    if not np.allclose(views[VIEW_SHIFTS.index(0)], probs, atol=1e-5):
        raise SystemExit("the unshifted view disagrees with the training features: the feature paths have parted")
    return {
        "fold": fold,
        "paths": data.paths["validation"],
        "labels": data.y["validation"],
        "probs": probs,
        "views": views,
        "train_clips": len(data.y["train"]),
        "epochs_run": len(history.get("loss", [])),
        "seconds": round(time.perf_counter() - started, 1),
        "skipped": data.skipped,
    }


def view_probs(model: Any, settings: features.FeatureSettings, held_out: list[dataset.Item], paths: list[str]):
    """Probabilities ``(len(VIEW_SHIFTS), n, labels)`` of the held-out clips (in ``paths``' order) on shifted views."""
    waves = dataset.load_waveforms(held_out)
    clips = {str(it.path): clip for it, clip in zip(waves.items, waves.clips)}
    windows = np.stack([segment.shifted_windows(clips[p], settings, VIEW_SHIFTS) for p in paths])  # (n, V, L)
    x = features.mfcc_batch(windows.reshape(-1, windows.shape[-1]), settings)
    probs = np.asarray(model.predict(x, batch_size=512, verbose=0)).reshape(len(paths), len(VIEW_SHIFTS), -1)
    return probs.transpose(1, 0, 2)


def scored(probs: np.ndarray, labels: np.ndarray, paths: list[str]) -> dict[str, Any]:
    """Errors, accuracy, log-loss and the wrong clips of one set of answers: what --compare pairs."""
    wrong = probs.argmax(1) != labels
    return {
        "clips": len(labels),
        "errors": int(wrong.sum()),
        "accuracy": round(float(1 - wrong.mean()), 5),
        "log_loss": round(log_loss(probs, labels), 5),
        "wrong": sorted(p for p, w in zip(paths, wrong) if w),
        "clips_sha256": clips_digest(paths),
    }


def summarise(
    cfg: train.TrainConfig,
    settings: features.FeatureSettings,
    folds: int,
    results: list[dict[str, Any]],
    head: str = probes.BEST_HEAD,
    body: str = BODIES[0],
) -> dict[str, Any]:
    """The JSON record: totals, per-fold rows and which clips were wrong (``word/file.wav``, for --compare)."""
    paths, labels, views = pooled(results)
    probs = np.concatenate([r["probs"] for r in results])
    wrong = probs.argmax(1) != labels
    tta = views[[VIEW_SHIFTS.index(s) for s in TTA_SHIFTS]].mean(0)
    return {
        "recipe": dataclasses.asdict(cfg) | {"models": list(cfg.models)},
        "feature_settings": settings.to_dict(),
        "head": head if cfg.models == ("best",) and body != "tc" else None,  # only best's ResNet has a choice of head
        "body": body if cfg.models == ("best",) else None,
        "folds": folds,
        "clips": len(labels),
        "errors": int(wrong.sum()),
        "accuracy": round(float(1 - wrong.mean()), 5),
        "log_loss": round(log_loss(probs, labels), 5),
        "per_fold": [
            {
                "fold": r["fold"],
                "held_out_clips": len(r["labels"]),
                "errors": int((r["probs"].argmax(1) != r["labels"]).sum()),
                "train_clips": r["train_clips"],
                "epochs_run": r["epochs_run"],
                "seconds": r["seconds"],
            }
            for r in results
        ],
        "wrong": sorted(p for p, w in zip(paths, wrong) if w),
        # which clips were held out, without listing 4,000 names: two runs can be paired only if these match
        "clips_sha256": clips_digest(paths),
        "skipped": [list(s) for r in results for s in r["skipped"]],
        "tta": {"shifts": list(TTA_SHIFTS)} | scored(tta, labels, paths),
    }


def pooled(results: list[dict[str, Any]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every fold's held-out clips together: names (``word/file.wav``), labels, and view probabilities."""
    names = [f"{Path(p).parent.name}/{Path(p).name}" for r in results for p in r["paths"]]
    labels = np.concatenate([r["labels"] for r in results])
    return names, labels, np.concatenate([r["views"] for r in results], axis=1)


def save_views(out: Path, results: list[dict[str, Any]]) -> Path:
    """Every view's probabilities beside the record, for averages the record does not score."""
    path = out.with_suffix(".views.npz")
    names, labels, views = pooled(results)
    np.savez_compressed(
        path, shifts=np.array(VIEW_SHIFTS), paths=np.array(names), labels=labels, probs=views.astype(np.float32)
    )
    return path


def load_record(spec: Path) -> dict[str, Any]:
    """A run's record, or with ``:tta`` after the file name, the same run's test-time-averaged answers."""
    name, _, part = str(spec).partition(":")
    record = json.loads(Path(name).read_text())
    if part and part not in record:
        raise SystemExit(f"{name} has no {part!r} entry (recorded before cv.py scored views)")
    return record[part] if part else record


def clips_digest(paths: list[str]) -> str:
    """SHA-256 of the sorted clip names: the identity of a run's held-out set."""
    return hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Paired comparison of two cross-validated recipes: ``choose.py``'s exact one-sided McNemar test, both ways."""
    if a["clips_sha256"] != b["clips_sha256"]:
        raise SystemExit("the two runs held out different clips (another dataset or --folds); they cannot be paired")
    # clips neither got wrong count for neither side of the test, so masks over the clips either got wrong suffice
    set_a, set_b = set(a["wrong"]), set(b["wrong"])
    either = sorted(set_a | set_b)
    wrong_a = np.array([c in set_a for c in either], dtype=bool)
    wrong_b = np.array([c in set_b for c in either], dtype=bool)
    return {
        "clips": a["clips"],
        "errors": [a["errors"], b["errors"]],
        "only_first_wrong": int((wrong_a & ~wrong_b).sum()),
        "only_second_wrong": int((wrong_b & ~wrong_a).sum()),
        "p_first_better": round(mcnemar_p(wrong_b, wrong_a), 4),
        "p_second_better": round(mcnemar_p(wrong_a, wrong_b), 4),
    }


def wilson(errors: int, clips: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of an accuracy: unlike the normal one, it behaves near 100%, where ours sit."""
    return evaluate.rate_interval(clips - errors, clips, z)


def against_bar(record: dict[str, Any]) -> dict[str, Any]:
    """One run's accuracy and 95% interval beside its model's bar, read as rule ``cv_shipped_2026_11_25`` says."""
    model = record["recipe"]["models"][0]
    bar = BARS[model]
    low, high = wilson(record["errors"], record["clips"])
    if low > bar:
        verdict = "clears the bar on unseen speakers"
    elif high < bar:
        verdict = "misses the bar on unseen speakers"
    else:
        verdict = f"the bar is within the noise of {record['clips']:,} clips"
    return {
        "model": model,
        "errors": record["errors"],
        "clips": record["clips"],
        "accuracy": record["accuracy"],
        "interval_95": [round(low, 5), round(high, 5)],
        "bar": bar,
        "verdict": verdict,
    }


def app_verdict(samples: np.ndarray, settings: features.FeatureSettings) -> dict[str, Any]:
    """What the app says of a recording before any model: its window's level, the voice check's measure, and
    "no speech" (too quiet), "no voice" (loud, but nothing pitched) or "a word" (the models are asked)."""
    window = segment.find_window(samples, settings)
    aperiodic = segment.aperiodicity(window.samples, settings.sample_rate)
    if not window.has_speech:
        says = "no speech"
    elif aperiodic > segment.VOICE_THRESHOLD:
        says = "no voice"
    else:
        says = "a word"
    return {"level_db": round(window.level_db, 1), "aperiodicity": round(aperiodic, 3), "app_says": says}


def hard_clips(runs: list[Path], data_dir: Path | None = None) -> dict[str, Any]:
    """The clips that every one of ``runs`` got wrong, each with what the app makes of it and what the runs
    answered (from each run's ``.views.npz``, unshifted view, where it has one); and each run scored as the app
    answers, leaving out the held-out clips it names no word for (too quiet, or no voice)."""
    records = [load_record(p) for p in runs]
    if len({r["clips_sha256"] for r in records}) > 1:
        raise SystemExit("the runs held out different clips (another dataset or --folds); they cannot be pooled")
    answers: list[dict[str, np.ndarray]] = []
    for path in runs:
        views = Path(str(path).partition(":")[0]).with_suffix(".views.npz")
        if views.is_file():
            with np.load(views) as z:
                answers.append(dict(zip(z["paths"].tolist(), z["probs"][list(z["shifts"]).index(0)])))
    held_out = [it for it in dataset.scan(data_dir) if it.split != "test"]  # what every cv run holds out
    names = [f"{it.path.parent.name}/{it.path.name}" for it in held_out]
    if clips_digest(names) != records[0]["clips_sha256"]:
        raise SystemExit("this dataset is not the one the runs held out (see --data-dir)")
    verdicts: dict[str, dict[str, Any]] = {}
    for name, item in zip(names, held_out):
        try:
            verdicts[name] = app_verdict(load_audio(item.path).samples, PRESETS["standard"])
        except (OSError, AudioError) as err:
            verdicts[name] = {"app_says": f"unreadable ({err})"}
    refused = {n for n, v in verdicts.items() if v["app_says"] != "a word"}
    every = sorted(set.intersection(*(set(r["wrong"]) for r in records)))
    rows = []
    for clip in every:
        heard = [config.LABELS[int(np.argmax(a[clip]))] for a in answers if clip in a]
        counts = {w: heard.count(w) for w in config.LABELS if w in heard}
        rows.append({"clip": clip, "label": clip.split("/")[0]} | verdicts[clip] | {"answers": counts})
    named = len(names) - len(refused)
    return {
        "runs": [str(p) for p in runs],
        "clips": len(names),
        "app_refuses": sorted(refused),
        "as_the_app_answers": [
            {
                "run": str(p),
                "errors": len(set(r["wrong"]) - refused),
                "named": named,
                "accuracy": round(1 - len(set(r["wrong"]) - refused) / named, 5),
            }
            for p, r in zip(runs, records)
        ],
        "every_run_wrong": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, help="JSON file to write")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two runs' JSON files")
    parser.add_argument("--bars", nargs="+", type=Path, metavar="RUN", help="each run's accuracy against its bar")
    parser.add_argument("--hard", nargs="+", type=Path, metavar="RUN", help="the clips every run gets wrong")
    parser.add_argument(
        "--models", nargs=1, default=["best"], choices=list(config.ARCHITECTURES), help="one architecture"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", type=int, nargs="+", metavar="FOLD", help="run only these folds (a quick check)")
    parser.add_argument("--data-dir", type=Path, help="dataset folder (default: KWS_DATA_DIR)")
    parser.add_argument("--preset", choices=list(PRESETS), default="standard")
    parser.add_argument("--level", choices=features.LEVELS, help="the preset's dB reference, changed (a probe)")
    parser.add_argument("--seed", type=int, default=train.TrainConfig.seed)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--copies", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--speed", type=float)
    parser.add_argument("--masks", type=int)
    parser.add_argument("--mixup", type=float)
    parser.add_argument("--head", choices=probes.BEST_HEADS, help="best's head, if not the zoo's (--models best only)")
    parser.add_argument(
        "--body",
        choices=BODIES,
        default=BODIES[0],
        help="best's body: the zoo's 2-D ResNet, TC-ResNet8, or the ResNet with SubSpectral Norm (probes)",
    )
    parser.add_argument("--patience", type=int)
    parser.add_argument("--centre", action="store_true", default=None, help="centre each window on its energy")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.compare:
        a, b = (load_record(p) for p in args.compare)
        print(json.dumps(compare(a, b), indent=2))
        return 0
    if args.bars:
        print(json.dumps([against_bar(load_record(p)) for p in args.bars], indent=2))
        return 0
    if args.hard:
        print(json.dumps(hard_clips(args.hard, args.data_dir), indent=2))
        return 0
    if args.out is None or args.folds < 2:
        parser.error("give OUT.json (or --compare A B) and at least 2 folds")
    try:
        cfg = train_config(args)  # the same reading of the options as `python -m kws train`
    except UsageError as err:
        parser.error(str(err))
    settings = cfg.settings
    if args.level:
        settings = dataclasses.replace(settings, level=args.level)
    head = args.head or probes.BEST_HEAD
    variant: dict[str, Any] = {}
    if head != probes.BEST_HEAD:
        if cfg.models != ("best",):
            parser.error("--head changes best's head; use it with --models best")
        variant["best"] = probes.best_builder(head=head)
    if args.body != BODIES[0]:
        if cfg.models != ("best",) or head != probes.BEST_HEAD:
            parser.error("--body changes best's whole network; use it with --models best and no --head")
        variant["best"] = probes.tc_resnet8 if args.body == "tc" else probes.best_builder(sub_bands=SSN_BANDS)
    items = dataset.scan(args.data_dir)
    with mock.patch.dict(zoo.ZOO, variant):  # fit_one builds by name; the zoo is restored afterwards
        results = [run_fold(cfg, settings, deal(items, args.folds, f), f) for f in (args.only or range(args.folds))]
    record = summarise(cfg, settings, args.folds, results, head, args.body)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    save_views(args.out, results)
    logger.info(
        "%s: %d of %d held-out clips wrong (%.2f%%)",
        cfg.models[0],
        record["errors"],
        record["clips"],
        100 * (1 - record["accuracy"]),
    )
    logger.info("with test-time views %s averaged: %d wrong", TTA_SHIFTS, record["tta"]["errors"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
