"""Choose which trained candidate of each architecture to ship, on validation speakers only.

The validation split (505 clips) is nearly saturated for the better models (one or two errors), so two
candidates often tie. This script adds a harder view of the same speakers: each validation clip plus
``--copies`` microphone-like variants of it (the training augmentation: speed, shift, gain, noise; fixed
seed), and picks, per architecture, the candidate with the fewest errors over all of them; ties go to the
lower validation log-loss. The test split is never read.

With ``--incumbent DIR`` (usually ``models``), a model already shipped is replaced only when the winner beats it
by more than chance, and without more errors on the clean clips: an exact one-sided McNemar test on the clips
exactly one of the two gets wrong must give p < ``--alpha`` (0.05). Two stressed clips of 2,020 once replaced a
shipped ``best`` that then did worse on the test speakers; and the stressed clips alone can favour a run that
saw more of the very augmentation they are made with, at the cost of real recordings.

A model refitted on train + validation (``train --fit-on train+validation``) has learnt the very clips this
script scores, so it is skipped with a warning; compare its recipe through a run of that recipe on the train split.

    python experiments/choose.py models /path/to/run1 /path/to/run2 [--incumbent models] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kws import dataset  # noqa: E402
from kws.features import FeatureSettings  # noqa: E402
from kws.inference import load_models  # noqa: E402
from kws.segment import batch_windows  # noqa: E402
from kws.train import TrainConfig, augment  # noqa: E402


def validation_clips(data_dir: Path | None) -> tuple[list[np.ndarray], np.ndarray]:
    """The validation clips and their labels."""
    items = [it for it in dataset.scan(data_dir) if it.split == "validation"]
    waves = dataset.load_waveforms(items)
    return waves.clips, np.array([it.label_index for it in waves.items])


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))


def score_candidates(dirs: list[Path], data_dir: Path | None, copies: int, seed: int) -> list[dict[str, Any]]:
    """One row per (candidate folder, model): clean and stressed validation errors, clean log-loss."""
    clips, y = validation_clips(data_dir)
    inputs: dict[FeatureSettings, tuple[np.ndarray, np.ndarray]] = {}
    rows = []
    for folder in dirs:
        for model in load_models(folder):
            if "validation" in model.info.fitted_splits:
                logging.warning("%s in %s learnt from the validation clips (a refit): skipped", model.name, folder)
                continue
            if model.settings not in inputs:
                windows = batch_windows(clips, model.settings)
                stressed = augment(windows, np.random.default_rng(seed), copies, speed=TrainConfig.speed)
                inputs[model.settings] = (
                    dataset.featurize(list(windows), model.settings),
                    dataset.featurize(list(stressed), model.settings),
                )
            clean_x, stressed_x = inputs[model.settings]
            clean = model.predict_batch(clean_x)
            clean_wrong = clean.argmax(1) != y
            stressed_wrong = model.predict_batch(stressed_x).argmax(1) != np.tile(y, copies)
            rows.append(
                {
                    "model": model.name,
                    "candidate": str(folder),
                    "preset": model.settings.name,
                    "validation_errors": int(clean_wrong.sum()),
                    "stressed_errors": int(stressed_wrong.sum()),
                    "validation_log_loss": round(log_loss(clean, y), 5),
                    "clips": len(y) * (1 + copies),
                    # which of the clips (clean, then stressed) it got wrong, for the paired test
                    "_wrong": np.concatenate([clean_wrong, stressed_wrong]),
                }
            )
    return rows


def _rank(row: dict[str, Any]) -> tuple[int, float]:
    return row["validation_errors"] + row["stressed_errors"], row["validation_log_loss"]


def choose(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model: fewest clean + stressed errors, then lowest clean log-loss."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = best.get(row["model"])
        if current is None or _rank(row) < _rank(current):
            best[row["model"]] = row
    return best


def mcnemar_p(incumbent_wrong: np.ndarray, challenger_wrong: np.ndarray) -> float:
    """One-sided exact McNemar test: the chance of the challenger winning at least this often on the clips where
    exactly one of the two errs, were both equally good."""
    from scipy.stats import binomtest

    won = int((incumbent_wrong & ~challenger_wrong).sum())
    lost = int((challenger_wrong & ~incumbent_wrong).sum())
    return 1.0 if won + lost == 0 else float(binomtest(won, won + lost, 0.5, alternative="greater").pvalue)


def keep_incumbent(
    rows: list[dict[str, Any]], chosen: dict[str, dict[str, Any]], incumbent: str, alpha: float
) -> dict[str, dict[str, Any]]:
    """Per model, the incumbent's row unless ``chosen`` beats it significantly without more clean errors (sets
    ``p_vs_incumbent``)."""
    result = dict(chosen)
    for name, winner in chosen.items():
        held = next((r for r in rows if r["model"] == name and r["candidate"] == incumbent), None)
        if held is None or winner is held:
            continue
        p = mcnemar_p(held["_wrong"], winner["_wrong"])
        winner["p_vs_incumbent"] = round(p, 4)
        if p >= alpha or winner["validation_errors"] > held["validation_errors"]:
            result[name] = held
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", nargs="+", type=Path, help="model folders (each like models/)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--copies", type=int, default=4, help="stressed variants per validation clip")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--json", type=Path, default=None, help="also write every row and the choice here")
    parser.add_argument(
        "--incumbent",
        type=Path,
        help="the shipped folder: replaced only on a significant margin, clean errors no worse",
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level for --incumbent")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    candidates = args.candidates + (
        [args.incumbent] if args.incumbent and args.incumbent not in args.candidates else []
    )
    rows = score_candidates(candidates, args.data_dir, args.copies, args.seed)
    chosen = choose(rows)
    if args.incumbent:
        chosen = keep_incumbent(rows, chosen, str(args.incumbent), args.alpha)
    print(f"{'model':13} {'candidate':28} {'preset':9} {'val err':>7} {'stressed err':>12} {'val loss':>9}")
    for row in sorted(rows, key=lambda r: (r["model"], r["candidate"])):
        mark = " <- chosen" if chosen[row["model"]] is row else ""
        if "p_vs_incumbent" in row:
            mark += f" (p = {row['p_vs_incumbent']:.3f} against {args.incumbent})"
        print(
            f"{row['model']:13} {row['candidate'][-28:]:28} {row['preset']:9} {row['validation_errors']:7d} "
            f"{row['stressed_errors']:12d} {row['validation_log_loss']:9.4f}{mark}"
        )
    if args.json:

        def public(row: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in row.items() if k != "_wrong"}  # the mask is for the test, not the record

        out = {"rows": [public(r) for r in rows], "chosen": {name: public(r) for name, r in chosen.items()}}
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
