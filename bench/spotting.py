"""Live spotting delay: how long after a word ends does Try it list it, with the machine idle or loaded.

A fresh ``streamlit run app.py`` and one headless Chromium whose fake microphone loops a WAV made from a
test-split clip: ``--lead`` (2 s) of silence, the word, ``--tail`` (3 s) of silence, so the word comes back every
~6 s. The page opens Try it, turns on "Spot words as I speak", presses START, waits for "Listening…", then reads
the spotted list every ``--poll-ms`` (80 ms) for ``--seconds`` (30) + ``--grace`` (10), noting when each line
(``bed · at 7.3 s · 6 of 6 models``) first appears; STOP ends the take. ``--runs`` (3) takes per load level.

Where each saying ends in wall time: Chromium's fake microphone starts its file from the beginning when a page
opens the microphone (measured, see ``/work/shared/notes/browser-mic-testing.md``), so an init script in the
component's frame records when ``getUserMedia`` resolved (``Date.now()``, the same clock as Python's
``time.time()`` on one machine). The k-th saying then ends at that moment + ``k`` loops + the word's end inside
the loop (the last 10 ms above ``--level-db``, -40 dBFS). Which saying a line names comes from its ``at X s``:
the take's clock (audio the server received since START), read as starting when "Listening…" appeared; that
reading only has to be right to within half a loop. The bench also reports how far the take's clock really is
from "Listening…" (``clock_offset_s``: negative when the server had audio before "Listening…" showed), from the
lines' ``at`` against where the word's window lies in the loop. Without a ``getUserMedia`` record the word's end
is taken from the take's clock with "Listening…" as zero, and the row says ``anchor: listening``.

Per load level: delays from the word's end to its line (p50, p95, max), words said (sayings that ended in the
``--seconds`` after "Listening…"; a line for one counts if it comes by ``--grace`` s later), listed, missed,
doubled (a saying listed twice) and wrong (a line naming another word). ``--hog 0,2`` runs the takes idle, then beside two busy CPU
processes (``stress-ng --cpu 2`` where installed, else Python busy loops).

    python bench/spotting.py [--runs 3] [--seconds 30] [--hog 0,2] [--out bench/results_spotting.json]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kws.config import data_dir as default_data_dir  # noqa: E402
from kws.examples import split_examples  # noqa: E402
from kws.features import FeatureSettings  # noqa: E402
from kws.segment import find_window  # noqa: E402
from kws.testing import CHROMIUM, chromium_args, fake_mic_wav, machine, open_page, serve_app, wait_for_app, write_record  # noqa: E402

logger = logging.getLogger("bench.spotting")

LINE = re.compile(r"(\w+) · at (\d+\.\d) s · (\d+) of (\d+) models")
#: In every frame: remember when each getUserMedia call resolved, in wall-clock milliseconds.
MIC_HOOK_JS = """(() => {
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) return;
    const original = md.getUserMedia.bind(md);
    window.__kwsMicOpened = [];
    md.getUserMedia = async (constraints) => {
        const stream = await original(constraints);
        window.__kwsMicOpened.push(Date.now());
        return stream;
    };
})();"""
SPOTTED_JS = """() => [...document.querySelectorAll("[data-testid='stMarkdownContainer']")]
    .map(e => e.innerText).filter(t => t.includes(" · at ") && t.includes(" models"))"""


@dataclass(frozen=True)
class Loop:
    """The fake microphone's file: how long one loop is, where the word ends and its 1-s window starts."""

    path: Path
    word: str
    source: str
    seconds: float
    word_end_s: float
    window_start_s: float


@dataclass
class Take:
    """One START-to-STOP take: when things happened (wall clock, s) and each line's first sighting."""

    hog: int
    run: int
    listening_at: float = 0.0
    mic_opened_at: list[float] = field(default_factory=list)
    stopped_reading_at: float = 0.0
    lines: list[dict[str, Any]] = field(default_factory=list)  # word, at_s, votes, models, seen_at


def make_loop(clip: Path, word: str, source: str, dest: Path, lead_s: float, tail_s: float, level_db: float) -> Loop:
    """Write the fake microphone's WAV and find the word's end (last 10 ms above ``level_db``) in it."""
    fake_mic_wav(clip, dest, lead_s=lead_s, tail_s=tail_s)
    samples, rate = sf.read(str(dest), dtype="float32")
    hop = rate // 100
    frames = samples[: samples.size // hop * hop].reshape(-1, hop)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = np.flatnonzero(db > level_db)
    if loud.size == 0:
        raise SystemExit(f"{clip} never rises above {level_db} dBFS")
    settings = FeatureSettings()
    if rate != settings.sample_rate:
        raise SystemExit(f"{clip} is at {rate} Hz, not {settings.sample_rate}")
    window = find_window(samples, settings)
    return Loop(dest, word, source, samples.size / rate, float((loud[-1] + 1) * hop / rate), float(window.start_s))


def pick_clip(args: argparse.Namespace) -> tuple[Path, str, str]:
    """``--clip`` (its folder names the word), or a test-split clip of ``--word`` picked with ``--seed``."""
    if args.clip:
        return args.clip, args.clip.parent.name, f"{args.clip.parent.name}/{args.clip.name}"
    examples = [e for e in split_examples(args.data_dir, "test") if e.word == args.word]
    if not examples:
        raise SystemExit(f"no test clip of {args.word!r} in {args.data_dir}")
    chosen = random.Random(args.seed).choice(examples)
    return chosen.path, chosen.word, chosen.name


@contextlib.contextmanager
def hogs(count: int) -> Iterator[str]:
    """``count`` busy CPU processes for the duration (``stress-ng`` where installed); yields what runs."""
    if count <= 0:
        yield "none"
        return
    if shutil.which("stress-ng"):
        procs = [subprocess.Popen(["stress-ng", "--cpu", str(count), "--quiet"], stdout=subprocess.DEVNULL)]
        what = f"stress-ng --cpu {count}"
    else:
        procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
        what = f"{count} python busy loops"
    try:
        time.sleep(1.0)  # let them start before the take
        yield what
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def webrtc_frame(page: Any) -> Any:
    """The live microphone's streamlit-webrtc component, in its own iframe (a frame locator)."""
    return page.frame_locator("iframe[title*='streamlit_webrtc']")


def mic_opened_at(page: Any) -> list[float]:
    """When the component's frame got the microphone, each time (wall clock, s), from :data:`MIC_HOOK_JS`."""
    for frame in page.frames:
        if "streamlit_webrtc" in frame.url:
            return [t / 1000 for t in frame.evaluate("() => window.__kwsMicOpened || []")]
    return []


def start_live(page: Any) -> float:
    """Press START and wait for "Listening…" (pressing once more if START still shows 10 s later, as
    ``tests/test_browser.py`` does); returns the wall-clock time it appeared."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    webrtc_frame(page).get_by_role("button", name="START").click()
    listening = page.get_by_text("Listening…")
    try:
        listening.wait_for(timeout=10_000)
    except PlaywrightTimeout:
        if webrtc_frame(page).get_by_role("button", name="START").count():
            webrtc_frame(page).get_by_role("button", name="START").click()
        listening.wait_for(timeout=30_000)
    return time.time()


def read_take(page: Any, take: Take, seconds: float, poll_s: float) -> None:
    """Read the spotted list every ``poll_s`` for ``seconds``, noting when each line first shows."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = time.time()
        for block in page.evaluate(SPOTTED_JS):
            for word, at, votes, models in LINE.findall(block):
                if (word, at) not in seen:
                    seen[word, at] = {"word": word, "at_s": float(at), "votes": int(votes), "models": int(models)}
                    seen[word, at]["seen_at"] = now
        time.sleep(poll_s)
    take.stopped_reading_at = time.time()
    take.lines = sorted(seen.values(), key=lambda line: line["at_s"])


def grade(take: Take, loop: Loop, seconds: float) -> dict[str, Any]:
    """Match the take's lines to the loop's sayings: delays, said, listed, missed, doubled, wrong.

    Counted are the sayings that ended within ``seconds`` after "Listening…"; the page was read ``--grace`` s
    longer, so that a late line for one of them still counts (its delay with it) rather than as missed.
    """
    opened = [t for t in take.mic_opened_at if t <= take.listening_at]
    start = opened[-1] if opened else None
    said_by = take.listening_at + seconds
    by_saying: dict[int, list[dict[str, Any]]] = {}
    offsets, wrong = [], 0
    for line in take.lines:
        if line["word"] != loop.word:
            wrong += 1
            continue
        if start is None:  # the take's clock, read from "Listening…"
            k = round((line["at_s"] - loop.window_start_s) / loop.seconds)
            end = take.listening_at + line["at_s"] - loop.window_start_s + loop.word_end_s
        else:  # the loop's own clock, from when the microphone opened
            window_at = take.listening_at + line["at_s"]  # roughly: the take's clock from "Listening…"
            k = round((window_at - start - loop.window_start_s) / loop.seconds)
            end = start + k * loop.seconds + loop.word_end_s
            offsets.append(start + k * loop.seconds + loop.window_start_s - line["at_s"] - take.listening_at)
        if take.listening_at <= end <= said_by:
            line["delay_s"] = round(line["seen_at"] - end, 3)
            # the same delay with the take's clock read from "Listening…", for comparison
            line["delay_listening_s"] = round(
                line["seen_at"] - (take.listening_at + line["at_s"] - loop.window_start_s + loop.word_end_s), 3
            )
            by_saying.setdefault(k, []).append(line)
    if start is None:
        said = None
    else:
        ends = [start + k * loop.seconds + loop.word_end_s for k in range(int((said_by - start) // loop.seconds) + 1)]
        said = int(sum(take.listening_at <= end <= said_by for end in ends))
    listed = len(by_saying)
    return {
        "anchor": "getUserMedia" if start is not None else "listening",
        "delays_s": [min(line["delay_s"] for line in lines) for lines in by_saying.values()],
        "delays_listening_s": [min(line["delay_listening_s"] for line in lines) for lines in by_saying.values()],
        "said": said,
        "listed": listed,
        "missed": None if said is None else said - listed,
        "doubled": sum(len(lines) - 1 for lines in by_saying.values()),
        "wrong": wrong,
        "clock_offset_s": round(float(np.median(offsets)), 3) if offsets else None,
    }


def run_takes(page: Any, hog: int, args: argparse.Namespace, loop: Loop) -> list[dict[str, Any]]:
    """``--runs`` takes beside ``hog`` busy processes, each graded."""
    out = []
    with hogs(hog) as hogging:
        for run in range(args.runs):
            take = Take(hog, run)
            take.listening_at = start_live(page)
            read_take(page, take, args.seconds + args.grace, args.poll_ms / 1000)
            take.mic_opened_at = mic_opened_at(page)
            webrtc_frame(page).get_by_role("button", name="STOP").click()
            page.wait_for_timeout(1_000)  # the rerun STOP starts, then the result view
            wait_for_app(page, timeout_ms=120_000)
            graded = grade(take, loop, args.seconds)
            logger.info("hog %d run %d (%s): %s", hog, run, hogging, graded)
            out.append({"hog": hog, "hogging": hogging, **asdict(take), **graded})
    return out


def summarise(takes: list[dict[str, Any]]) -> dict[str, Any]:
    """One row per load level: the delay percentiles and the word counts over its takes."""
    delays = [d for t in takes for d in t["delays_s"]]
    from_listening = [d for t in takes for d in t["delays_listening_s"]]

    def total(key: str) -> int | None:
        values = [t[key] for t in takes]
        return None if any(v is None for v in values) else sum(values)

    def pct(q: float) -> float | None:
        return round(float(np.percentile(delays, q)), 2) if delays else None

    return {
        "hog": takes[0]["hog"],
        "hogging": takes[0]["hogging"],
        "takes": len(takes),
        "anchor": ",".join(sorted({t["anchor"] for t in takes})),
        "p50_s": pct(50),
        "p95_s": pct(95),
        "max_s": round(max(delays), 2) if delays else None,
        "said": total("said"),
        "listed": total("listed"),
        "missed": total("missed"),
        "doubled": total("doubled"),
        "wrong": total("wrong"),
        "clock_offset_s": [t["clock_offset_s"] for t in takes],
        "p50_listening_s": round(float(np.median(from_listening)), 2) if from_listening else None,
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the figures."""
    head = (
        "| busy CPUs | takes | p50 s | p95 s | max s | said | listed | missed | doubled | wrong "
        "| clock offset s | p50 s from Listening… |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        offsets = ", ".join("?" if o is None else f"{o:+.2f}" for o in r["clock_offset_s"])
        lines.append(
            f"| {r['hog']} | {r['takes']} | {r['p50_s']} | {r['p95_s']} | {r['max_s']} | {r['said']} | {r['listed']} "
            f"| {r['missed']} | {r['doubled']} | {r['wrong']} | {offsets} | {r['p50_listening_s']} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="takes per load level")
    parser.add_argument("--seconds", type=float, default=30.0, help="sayings ending this long after Listening count")
    parser.add_argument("--hog", default="0", help="comma-separated busy CPU processes beside, e.g. 0,2")
    parser.add_argument("--poll-ms", type=float, default=80.0, help="how often the page is read")
    parser.add_argument("--word", default="happy", help="the word of the test clip picked")
    parser.add_argument("--clip", type=Path, default=None, help="this clip instead (its folder names the word)")
    parser.add_argument("--seed", type=int, default=7, help="which test clip of --word")
    parser.add_argument("--lead", type=float, default=2.0, help="seconds of silence before the word")
    parser.add_argument("--tail", type=float, default=3.0, help="seconds of silence after it")
    parser.add_argument("--level-db", type=float, default=-40.0, help="the word ends at its last 10 ms above this")
    parser.add_argument("--grace", type=float, default=10.0, help="read this much longer, for late lines")
    parser.add_argument("--data-dir", type=Path, default=None, help="the dataset (default: KWS_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=Path("bench/results_spotting.json"))
    args = parser.parse_args(argv)
    args.hogs = [int(n) for n in args.hog.split(",") if n.strip()]
    args.data_dir = args.data_dir or default_data_dir()
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the bench, write ``--out``, print the table."""
    from playwright.sync_api import sync_playwright

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    started, machine_at_start = time.strftime("%Y-%m-%dT%H:%M:%S"), machine()
    clip, word, source = pick_clip(args)
    takes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kws-spotting-") as tmp:
        loop = make_loop(clip, word, source, Path(tmp) / "mic.wav", args.lead, args.tail, args.level_db)
        logger.info("fake microphone: %s, %.2f s loop, word ends at %.2f s", source, loop.seconds, loop.word_end_s)
        with (
            serve_app(env={"KWS_DATA_DIR": str(args.data_dir)}) as server,
            sync_playwright() as p,
        ):
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=chromium_args(loop.path))
            context = browser.new_context(permissions=["microphone"], viewport={"width": 1366, "height": 900})
            context.add_init_script(MIC_HOOK_JS)  # runs in every frame, the component's iframe included
            page = context.new_page()
            page.set_default_timeout(120_000)
            open_page(page, server.url, "Try it", timeout_ms=120_000)
            page.get_by_text("Spot words as I speak").click()
            wait_for_app(page, timeout_ms=120_000)
            for hog in args.hogs:
                takes += run_takes(page, hog, args, loop)
            browser.close()
    rows = [summarise([t for t in takes if t["hog"] == hog]) for hog in args.hogs]
    result = {
        "bench": "spotting",
        "started": started,
        "machine": machine_at_start,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "loop": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(loop).items() if k != "path"},
        "rows": rows,
        "takes": takes,
    }
    write_record(args.out, result, table(rows))


if __name__ == "__main__":
    main()
