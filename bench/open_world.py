"""Other words: how often each model, and the app's verdict, names a keyword for a word that is not one.

Every clip of the chosen splits (keywords, other words and noise, by speakers on one side of the split only) goes
through :meth:`kws.inference.Predictor.predict_clip`, the app's own path: the loudest second, the speech and voice
gates, every model, the majority. It reports, with 95% Wilson intervals:

- per model, at the app's operating point (``config.LOW_CONFIDENCE``): keyword accuracy (top answer is the word),
  false accepts (other clips accepted as a keyword) and false rejects (keyword clips answered other, refused or
  below the operating point);
- the verdict: other clips whose headline names a keyword (``Most models say: <word>``), and keyword clips whose
  headline names their word; also the weaker forms (``No majority: <word> leads``, a split with a keyword in it);
- which other words ``best`` (or ``--model``) still accepts as a keyword, word by word.

    python bench/open_world.py [--models-dir models] [--splits validation test] [--out bench/results_open_world.json]

Choosing or tuning anything on the test split's figures is not allowed (README): they are reported.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kws import config, dataset  # noqa: E402
from kws.audio import load_audio  # noqa: E402
from kws.evaluate import rate_interval  # noqa: E402
from kws.inference import Prediction, load_predictor  # noqa: E402

logger = logging.getLogger("bench.open_world")


def rate(hits: int, n: int) -> dict[str, Any]:
    """``hits / n`` with its 95% interval, rounded for a JSON a reader opens."""
    if n == 0:
        return {"hits": 0, "clips": 0, "rate": None, "interval": None}
    low, high = rate_interval(hits, n)
    return {"hits": hits, "clips": n, "rate": round(hits / n, 4), "interval": [round(low, 4), round(high, 4)]}


def verdict(prediction: Prediction) -> tuple[str | None, str]:
    """The word the headline names (None: no word, or ``other``) and how strongly: "most" (a strict majority),
    "leads" (a plurality), "split" (a tie; the first keyword of it), or "none"."""
    if prediction.no_speech or prediction.majority is None:
        return None, "none"
    votes = sum(a.word == prediction.majority for a in prediction.answers)
    if prediction.split:
        keyword = next((w for w in prediction.split if w != config.OTHER), None)
        return keyword, "split"
    if prediction.majority == config.OTHER:
        return None, "most" if 2 * votes > len(prediction.answers) else "leads"
    return prediction.majority, "most" if 2 * votes > len(prediction.answers) else "leads"


def bench_split(predictor: Any, items: list[dataset.Item], focus: str) -> dict[str, Any]:
    """Every figure of one split (see the module's docstring)."""
    names = predictor.names
    per_model = {n: Counter() for n in names}
    verdicts: Counter = Counter()
    focus_by_word: dict[str, Counter] = defaultdict(Counter)
    for item in items:
        prediction = predictor.predict_clip(load_audio(item.path))
        keyword = item.label != config.OTHER
        for a in prediction.answers:
            counts = per_model[a.name]
            said = None if prediction.no_speech else a.word
            accepted = said not in (None, config.OTHER) and not a.low_confidence
            if keyword:
                counts["keyword_clips"] += 1
                counts["top_right"] += said == item.label
                counts["rejected"] += not accepted  # answered other, refused, or below the operating point
            else:
                counts["other_clips"] += 1
                counts["accepted"] += accepted
            if a.name == focus and not keyword:
                focus_by_word[item.word]["clips"] += 1
                focus_by_word[item.word]["accepted"] += accepted
        named, strength = verdict(prediction)
        if keyword:
            verdicts["keyword_clips"] += 1
            verdicts["keyword_named_most"] += named == item.label and strength == "most"
            verdicts["keyword_refused"] += prediction.no_speech
        else:
            verdicts["other_clips"] += 1
            verdicts["other_named_most"] += named is not None and strength == "most"
            verdicts["other_named_any"] += named is not None
            verdicts["other_refused"] += prediction.no_speech
    models = {}
    for name, c in per_model.items():
        models[name] = {
            "keyword_accuracy": rate(c["top_right"], c["keyword_clips"]),
            "false_accepts": rate(c["accepted"], c["other_clips"]),
            "false_rejects": rate(c["rejected"], c["keyword_clips"]),
        }
    return {
        "keyword_clips": verdicts["keyword_clips"],
        "other_clips": verdicts["other_clips"],
        "models": models,
        "verdict": {
            "other_named_a_keyword": rate(verdicts["other_named_most"], verdicts["other_clips"]),
            "other_named_a_keyword_any_form": rate(verdicts["other_named_any"], verdicts["other_clips"]),
            "other_refused_by_the_gates": rate(verdicts["other_refused"], verdicts["other_clips"]),
            "keyword_named_right": rate(verdicts["keyword_named_most"], verdicts["keyword_clips"]),
            "keyword_refused_by_the_gates": rate(verdicts["keyword_refused"], verdicts["keyword_clips"]),
        },
        "focus_model": focus,
        "focus_accepts_by_word": {
            w: rate(c["accepted"], c["clips"]) for w, c in sorted(focus_by_word.items(), key=lambda kv: kv[0])
        },
    }


def pct(r: dict[str, Any]) -> str:
    """ "4.7% (3.6-6.0)": a rate and its interval."""
    if r["rate"] is None:
        return "-"
    low, high = r["interval"]
    return f"{100 * r['rate']:.1f}% ({100 * low:.1f}-{100 * high:.1f})"


def markdown(result: dict[str, Any]) -> str:
    """One table per split, the verdict's lines under it, and the words the focus model still accepts."""
    lines = []
    for split, r in result["splits"].items():
        lines += [
            f"**{split}**: {r['keyword_clips']} keyword clips, {r['other_clips']} of other words and noise",
            "",
            "| Model | Keywords | False accepts | False rejects |",
            "|---|---:|---:|---:|",
        ]
        for name, m in r["models"].items():
            lines.append(
                f"| {name} | {pct(m['keyword_accuracy'])} | {pct(m['false_accepts'])} | {pct(m['false_rejects'])} |"
            )
        v = r["verdict"]
        lines += [
            "",
            f"Verdict: other clips headlined with a keyword {pct(v['other_named_a_keyword'])} (any form, leads "
            f"and splits too: {pct(v['other_named_a_keyword_any_form'])}); keyword clips headlined with their word "
            f"{pct(v['keyword_named_right'])}.",
            "",
        ]
        worst = sorted(r["focus_accepts_by_word"].items(), key=lambda kv: -(kv[1]["rate"] or 0))
        said = ", ".join(f"{w} {c['hits']}/{c['clips']}" for w, c in worst if c["hits"])
        lines += [f"{r['focus_model']} accepts as a keyword: {said or 'none'}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, default=config.SHIPPED_MODELS_DIR)
    parser.add_argument("--data-dir", type=Path, default=None, help="the dataset (default: KWS_DATA_DIR)")
    parser.add_argument("--splits", nargs="+", default=["validation", "test"], choices=dataset.SPLITS)
    parser.add_argument("--model", default="best", help="the model whose accepted other words are listed")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results_open_world.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    predictor = load_predictor(args.models_dir)
    if args.model not in predictor.names:
        parser.error(f"--model {args.model}: not one of {', '.join(predictor.names)}")
    items = dataset.scan(args.data_dir, other=True)
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "models_dir": str(args.models_dir),
        "threshold": config.LOW_CONFIDENCE,
        "splits": {},
    }
    for split in args.splits:
        chosen = [it for it in items if it.split == split]
        logger.info("%s: %d clips", split, len(chosen))
        result["splits"][split] = bench_split(predictor, chosen, args.model)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
