"""What serving through LiteRT costs a user: a cold ``predict``, the first answer in a browser, a warm call.

Every measure runs in fresh processes, ``--repeats`` times (3), and keeps the median and every value:

- ``predict``: a cold ``python -m kws predict <test clip>``, wall seconds and peak resident memory;
- ``tensorflow``: a bare ``python -c "import tensorflow"`` in the same rounds (taking turns with ``predict``),
  and the ratio of ``predict``'s medians to its medians;
- ``tryit``: a fresh ``streamlit run app.py`` and one headless Chromium (launched before the clock starts); from
  ``page.goto(<url>/try_it)`` until the uploaded test clip's answer is shown (its caption ``Upload: <name> · ...``
  and a summary heading such as ``Most models say: happy``). Included: the page's first load on a server that has
  just answered its health check, its first script run (models loading), the wait until the uploader is ready
  (file input attached, the page's prompt drawn, the script idle), the upload and the answer;
- ``compare``: another fresh server; from ``page.goto(<url>/compare)`` until the page has rendered: the script
  idle, its last line ("... test clips wrong") and first table shown, and every Plotly chart drawn (the time the
  last chart was drawn, not the second of settling after it that tells no more are coming);
- ``warm``: all six models on one clip, median ms of ``load_predictor('models').predict`` over 200 calls after
  10 warm-up calls, in float32 and in int8, each repeat in its own process.

Peak memory comes from ``/usr/bin/time -v`` ("Maximum resident set size"), or, without it, from a helper Python
process that runs the command and reads its own ``RUSAGE_CHILDREN`` (one child each, so the maximum is that
child's).

    python bench/serving.py [--repeats 3] [--out bench/results_serving.json] [--skip tryit compare]

It writes every value to ``--out`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kws.config import data_dir as default_data_dir  # noqa: E402
from kws.examples import Example, split_examples  # noqa: E402
from kws.testing import APP_IDLE, CHROMIUM, ROOT, SUMMARY_PATTERN, chromium_args, machine, serve_app, write_record  # noqa: E402

logger = logging.getLogger("bench.serving")

MEASURES = ("predict", "tensorflow", "tryit", "compare", "warm")
TIME = Path("/usr/bin/time")
UPLOAD_INPUT = ".st-key-tryit_upload input[type='file']"
#: Try it's first run has reached its end: the prompt below the four boxes.
TRYIT_PROMPT = "Give a clip in one of the four ways above"
#: The heading the result view shows above the cards (:attr:`kws.inference.Prediction.summary`).
SUMMARY = re.compile(SUMMARY_PATTERN)
#: Compare's last line, drawn once it has scored the test split.
COMPARE_LAST = "test clips wrong"
PAGE_TIMEOUT_S = 120.0
VIEWPORT = {"width": 1366, "height": 3000}  # tall: Plotly draws only the charts on screen
BARS = {"ratio": 0.3, "rss_mb": 300.0, "page_s": 3.0, "warm_ms": 2.0}
#: Runs a command and prints its exit status and peak RSS (KB) as JSON: used without /usr/bin/time.
RUSAGE_HELPER = (
    "import json, resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(json.dumps({'rc': rc, 'maxrss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
)
#: A fresh process: load the predictor, time ``predict`` on one clip, print the figures as JSON.
WARM_CHILD = """
import json, statistics, sys, time
import soundfile as sf
from kws.inference import load_predictor
clip, precision, warmup, calls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
samples, rate = sf.read(clip, dtype="float32", always_2d=False)
t0 = time.perf_counter()
predictor = load_predictor("models", precision=precision)
load_s = time.perf_counter() - t0
for _ in range(warmup):
    predictor.predict(samples, rate)
times = []
for _ in range(calls):
    t = time.perf_counter()
    predictor.predict(samples, rate)
    times.append((time.perf_counter() - t) * 1000)
print(json.dumps({"median_ms": statistics.median(times), "load_s": load_s, "models": len(predictor.models)}))
"""


# --- one process: wall seconds and peak memory ------------------------------------------------------------------


def timed_run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd`` in a fresh process from the repository root: (wall seconds, peak RSS in MB)."""
    if TIME.is_file():
        t0 = time.perf_counter()
        done = subprocess.run(
            [str(TIME), "-v", *cmd], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"{cmd} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        kb = re.findall(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        return wall, int(kb[-1]) / 1024
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RUSAGE_HELPER, *cmd], cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0  # includes the helper's own start (~20 ms)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if done.returncode != 0 or report["rc"] != 0:
        raise RuntimeError(f"{cmd} failed (exit {report['rc']}):\n{done.stderr[-2000:]}")
    return wall, report["maxrss_kb"] / 1024  # Linux reports KB


def cold_runs(clip: Path, repeats: int, skip: set[str], env: dict[str, str]) -> dict[str, dict[str, list[float]]]:
    """``predict`` and ``import tensorflow`` taking turns, ``repeats`` rounds: each one's wall s and peak MB."""
    commands = {
        "predict": [sys.executable, "-m", "kws", "predict", str(clip)],
        "tensorflow": [sys.executable, "-c", "import tensorflow"],
    }
    values: dict[str, dict[str, list[float]]] = {}
    for r in range(repeats):
        for name, cmd in commands.items():
            if name in skip:
                continue
            wall, rss = timed_run(cmd, env)
            figures = values.setdefault(name, {"wall_s": [], "rss_mb": []})
            figures["wall_s"].append(round(wall, 3))
            figures["rss_mb"].append(round(rss, 1))
            logger.info("round %d: %s %.2f s, %.0f MB", r + 1, name, wall, rss)
    return values


# --- a fresh server and one Chromium ------------------------------------------------------------------------------


def _poll(page: Any, done: Callable[[], bool], what: str, deadline: float) -> None:
    """Evaluate ``done`` every 50 ms until it holds; a TimeoutError naming ``what`` past ``deadline``."""
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {PAGE_TIMEOUT_S:.0f} s")
        page.wait_for_timeout(50)


def _idle(page: Any) -> bool:
    return page.locator(APP_IDLE).count() > 0


def try_it_once(page: Any, url: str, clip: Path) -> dict[str, Any]:
    """Open Try it, upload ``clip`` once the uploader is ready, wait for its answer: seconds since ``goto``, and
    the summary shown."""
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    t0 = time.perf_counter()
    page.goto(f"{url}/try_it")
    page.locator(UPLOAD_INPUT).wait_for(state="attached", timeout=PAGE_TIMEOUT_S * 1000)
    page.get_by_text(TRYIT_PROMPT).wait_for(timeout=PAGE_TIMEOUT_S * 1000)
    _poll(page, lambda: _idle(page), "Try it's first run", deadline)
    ready = time.perf_counter() - t0
    page.locator(UPLOAD_INPUT).set_input_files(str(clip))
    caption = f"Upload: {clip.name} · "

    def answered() -> bool:
        state = page.evaluate(
            """() => ({
                captions: [...document.querySelectorAll("[data-testid='stCaptionContainer']")].map(e => e.innerText),
                headings: [...document.querySelectorAll("[data-testid='stHeading']")].map(e => e.innerText.trim()),
            })"""
        )
        summaries = [h for h in state["headings"] if SUMMARY.match(h)]
        if any(c.startswith(caption) for c in state["captions"]) and summaries:
            shown.append(summaries[0])
        return bool(shown)

    shown: list[str] = []
    _poll(page, answered, f"the answer for {clip.name}", deadline)
    return {"answer_s": round(time.perf_counter() - t0, 3), "uploader_ready_s": round(ready, 3), "said": shown[0]}


def compare_once(page: Any, url: str) -> dict[str, Any]:
    """Open Compare and wait until it has rendered: seconds since ``goto`` until its last chart was drawn."""
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    t0 = time.perf_counter()
    page.goto(f"{url}/compare")
    page.get_by_text(COMPARE_LAST).wait_for(timeout=PAGE_TIMEOUT_S * 1000)
    page.locator("[data-testid='stDataFrame'] .dvn-scroller").first.wait_for(timeout=PAGE_TIMEOUT_S * 1000)
    _poll(page, lambda: _idle(page), "Compare's script run", deadline)
    text_s = time.perf_counter() - t0
    drawn = """() => {
        const charts = document.querySelectorAll("[data-testid='stPlotlyChart']");
        return [...charts].every(c => c.querySelector(".main-svg")) ? charts.length : -1;
    }"""
    last, since, settled = -1, t0, 1.0  # seconds without a new chart before calling it done
    while True:
        count, now = page.evaluate(drawn), time.perf_counter()
        if count != last:
            last, since = count, now
        elif count > 0 and now - since >= settled:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"Compare's charts: still loading ({last} drawn)")
        page.wait_for_timeout(50)
    return {"rendered_s": round(since - t0, 3), "text_s": round(text_s, 3), "charts": last}


def browser_runs(measure: str, clip: Path, repeats: int, data: Path, work: Path) -> list[dict[str, Any]]:
    """``repeats`` times: a fresh server, one Chromium, one visit of ``measure``'s page."""
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as p:
        for r in range(repeats):
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=chromium_args())
            try:
                page = browser.new_context(viewport=VIEWPORT).new_page()
                log = work / f"server-{measure}-{r}.log"
                with serve_app(env={"KWS_DATA_DIR": str(data)}, log_path=log) as server:
                    row = try_it_once(page, server.url, clip) if measure == "tryit" else compare_once(page, server.url)
                if "Traceback" in log.read_text(errors="replace"):
                    logger.warning("%s: the server logged a traceback (%s)", measure, log)
            finally:
                browser.close()
            logger.info("round %d: %s %s", r + 1, measure, row)
            runs.append(row)
    return runs


# --- warm -------------------------------------------------------------------------------------------------------


def warm_runs(clip: Path, precision: str, repeats: int, env: dict[str, str]) -> list[dict[str, Any]]:
    """``repeats`` fresh processes, each timing ``predict`` on ``clip`` (200 calls after 10 warm-up calls)."""
    runs = []
    for r in range(repeats):
        cmd = [sys.executable, "-c", WARM_CHILD, str(clip), precision, "10", "200"]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"warm {precision} failed:\n{done.stderr[-2000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        logger.info("round %d: warm %s %.3f ms (%d models)", r + 1, precision, row["median_ms"], row["models"])
        runs.append(row)
    return runs


# --- the report -------------------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    """The median, rounded for the table."""
    return round(statistics.median(values), 3)


def summarise(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: measure, median, values, bar and whether the median meets it."""
    rows: list[dict[str, Any]] = []

    def add(measure: str, values: list[float], bar: str, met: bool | None, value: float | None = None) -> None:
        rows.append(
            {
                "measure": measure,
                "median": value if value is not None else median(values),
                "values": values,
                "bar": bar,
                "met": met,
            }
        )

    pred, tf = results.get("predict"), results.get("tensorflow")
    if pred:
        add("predict cold: wall s", pred["wall_s"], "", None)
        add("predict cold: peak RSS MB", pred["rss_mb"], f"≤ {BARS['rss_mb']:.0f}", None)
        rows[-1]["met"] = rows[-1]["median"] <= BARS["rss_mb"]
    if tf:
        add("import tensorflow: wall s", tf["wall_s"], "", None)
        add("import tensorflow: peak RSS MB", tf["rss_mb"], "", None)
    if pred and tf:
        ratio = round(median(pred["wall_s"]) / median(tf["wall_s"]), 3)
        add("predict / import tensorflow: wall", [], f"≤ {BARS['ratio']}", ratio <= BARS["ratio"], ratio)
        rss_ratio = round(median(pred["rss_mb"]) / median(tf["rss_mb"]), 3)
        add("predict / import tensorflow: peak RSS", [], "", None, rss_ratio)
    if runs := results.get("tryit"):
        values = [r["answer_s"] for r in runs]
        add("Try it: open → upload answered, s", values, f"≤ {BARS['page_s']:.0f}", None)
        rows[-1]["met"] = rows[-1]["median"] <= BARS["page_s"]
        add("Try it: open → uploader ready, s", [r["uploader_ready_s"] for r in runs], "", None)
    if runs := results.get("compare"):
        values = [r["rendered_s"] for r in runs]
        add("Compare: open → rendered, s", values, f"≤ {BARS['page_s']:.0f}", None)
        rows[-1]["met"] = rows[-1]["median"] <= BARS["page_s"]
        add("Compare: open → text and first table, s", [r["text_s"] for r in runs], "", None)
    for precision in ("float32", "int8"):
        if runs := results.get(f"warm_{precision}"):
            values = [round(r["median_ms"], 3) for r in runs]
            add(f"warm predict ({precision}), ms", values, f"≤ {BARS['warm_ms']:.0f}", None)
            rows[-1]["met"] = rows[-1]["median"] <= BARS["warm_ms"]
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the figures."""
    lines = ["| measure | median | values | bar | met? |", "|---|---|---|---|---|"]
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "no")
        values = ", ".join(f"{v:g}" for v in r["values"])
        lines.append(f"| {r['measure']} | {r['median']:g} | {values} | {r['bar']} | {met} |")
    return "\n".join(lines)


def test_clip(data: Path) -> Example:
    """The first test-split clip of "happy" (any word's, without one): the same clip every run."""
    examples = split_examples(data, "test")
    return next((e for e in examples if e.word == "happy"), examples[0])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per measure")
    parser.add_argument("--out", type=Path, default=Path("bench/results_serving.json"))
    parser.add_argument("--skip", nargs="*", choices=MEASURES, default=[], help="measures to leave out")
    parser.add_argument("--data-dir", type=Path, default=None, help="the dataset (default: KWS_DATA_DIR)")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir or default_data_dir()
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the measures not skipped, write ``--out``, print the table."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    skip = set(args.skip)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    machine_at_start = machine()
    example = test_clip(args.data_dir)
    env = {**os.environ, "KWS_DATA_DIR": str(args.data_dir)}
    logger.info("clip: %s (%s)", example.name, example.word)
    results: dict[str, Any] = cold_runs(example.path, args.repeats, skip, env)
    with tempfile.TemporaryDirectory(prefix="kws-serving-") as tmp:
        clip = Path(tmp) / f"serving-{example.path.parent.name}-{example.path.name}"
        shutil.copyfile(example.path, clip)  # a name that says which clip the caption is for
        for measure in ("tryit", "compare"):
            if measure not in skip:
                results[measure] = browser_runs(measure, clip, args.repeats, args.data_dir, Path(tmp))
    if "warm" not in skip:
        for precision in ("float32", "int8"):
            results[f"warm_{precision}"] = warm_runs(example.path, precision, args.repeats, env)
    rows = summarise(results)
    record = {
        "bench": "serving",
        "started": started,
        "machine": machine_at_start,
        "settings": {
            "repeats": args.repeats,
            "skip": sorted(skip),
            "clip": example.name,
            "peak_rss_from": "/usr/bin/time -v" if TIME.is_file() else "RUSAGE_CHILDREN of a helper process",
            "bars": BARS,
        },
        "results": results,
        "summary": rows,
    }
    write_record(args.out, record, table(rows))


if __name__ == "__main__":
    main()
