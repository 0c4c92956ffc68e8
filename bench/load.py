"""A classroom at once: N browser sessions upload test-split clips to Try it at the same moment.

For each N of ``--sessions`` it starts a fresh ``streamlit run app.py`` and one headless Chromium with N
browser contexts (one page each, so N Streamlit sessions). Each session opens Try it through the sidebar, as
a user does, and waits until its uploader is ready (see :func:`wait_uploader_ready`). Then, ``--clips`` times,
every session uploads its next clip at the same moment and waits for that clip's answer: the caption
``Upload: <file name> · ...`` names the clip the result belongs to, and the heading under it (``Most models say:
bed``, or another :attr:`kws.inference.Prediction.summary`) gives the answer. Every session has its own clips,
copied under names no other session uses, so an answer shown for another clip is caught.

Per N it reports: answers right (the word most models say is the clip's word), wrong, lost (no answer for the
clip within ``--timeout``), mixed up (an answer for a clip this session did not just upload), errors (the page
showed an error for the clip), p50/p95 seconds from ``set_input_files`` to the answer, the server's CPU seconds
per answer (utime + stime of the whole process from ``/proc/<pid>/stat``, from when every session was ready
to the last answer) and its resident memory (VmRSS at start, when ready, after; VmHWM after).

For every lost answer it records what the client saw, to tell whose fault it was: whether Chromium sent the
file (the ``PUT /_stcore/upload_file/...`` request and its status), whether the page's websocket to the server
closed or reopened, and what the uploader and the page showed at the timeout. ``--client naive`` uploads as
soon as the file input exists (right after the sidebar click), the way an impatient test client would, to
compare with the default ``careful`` client.

    python bench/load.py [--sessions 1,5,10,20] [--clips 3] [--timeout 120] [--out bench/results_load.json]

It writes every figure, and every answer, to ``--out`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kws.config import data_dir as default_data_dir  # noqa: E402
from kws.examples import Example, split_examples  # noqa: E402
from kws.testing import (  # noqa: E402
    APP_IDLE,
    CHROMIUM,
    SIDEBAR_NAV,
    SUMMARY_PATTERN,
    Server,
    chromium_args,
    machine,
    said_word,
    serve_app,
    write_record,
)

logger = logging.getLogger("bench.load")

UPLOAD_INPUT = ".st-key-tryit_upload input[type='file']"
UPLOADER = ".st-key-tryit_upload"
#: The heading the result view shows above the cards (:attr:`kws.inference.Prediction.summary`).
SUMMARY = re.compile(SUMMARY_PATTERN)
#: What the page shows, read in one go: the script's state, the source caption, the summary heading, errors.
#: True once the page may show this upload's outcome: checked inside the page every 100 ms (a round trip to the
#: driver per check, for twenty pages, was load of its own on the machine being measured).
SETTLED_JS = """([clip, earlier, summary]) => {
    const app = document.querySelector("[data-testid='stApp']");
    if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
    if (document.querySelector("[data-testid='stException']")) return true;
    const caps = [...document.querySelectorAll("[data-testid='stCaptionContainer']")]
        .map(e => e.textContent.trim()).filter(t => t.startsWith("Upload: "));
    if (!caps.length) return false;
    const name = caps[0].slice("Upload: ".length).split(" · ")[0];
    if (name !== clip) return !earlier.includes(name);
    const heads = [...document.querySelectorAll("[data-testid='stHeading']")].map(e => e.textContent.trim());
    return heads.some(h => new RegExp(summary).test(h))
        || document.querySelector("[data-testid='stAlert']") !== null;
}"""

PAGE_STATE_JS = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    const texts = sel => [...document.querySelectorAll(sel)].map(e => e.textContent.trim());
    const uploader = document.querySelector(".st-key-tryit_upload");
    return {
        script: app ? app.getAttribute("data-test-script-state") : null,
        captions: texts("[data-testid='stCaptionContainer']").filter(t => t.startsWith("Upload: ")),
        headings: texts("[data-testid='stHeading']"),
        alerts: texts("[data-testid='stAlert']"),
        exceptions: texts("[data-testid='stException']").length,
        uploader: uploader ? uploader.innerText.trim() : null,
        connection: texts("[data-testid='stConnectionStatus']"),
    };
}"""


@dataclass(frozen=True)
class UploadClip:
    """A test-split clip copied under a name that only one session uses."""

    path: Path
    word: str
    source: str  # the dataset's ``word/file.wav``


@dataclass
class Answer:
    """What one session got for one upload."""

    session: int
    round: int
    clip: str  # the file name, as the caption shows it
    word: str
    path: Path
    outcome: str = "lost"  # right | wrong | lost | mixed | error
    said: str | None = None  # the word most models say, from the summary
    seconds: float | None = None  # set_input_files to the answer on the page
    shown: str | None = None  # the caption or error the page showed
    diagnosis: dict[str, Any] = field(default_factory=dict)


@dataclass
class Network:
    """One page's traffic that matters for an upload: file PUTs and websocket opens and closes."""

    puts: list[dict[str, Any]] = field(default_factory=list)
    sockets_opened: int = 0
    sockets_closed: int = 0

    def watch(self, page: Any) -> None:
        """Follow ``page``'s uploads and websockets from now on."""
        pending: dict[int, dict[str, Any]] = {}  # id(request) -> its entry in self.puts

        def on_request(request: Any) -> None:
            if request.method == "PUT" and "/_stcore/upload_file/" in request.url:
                self.puts.append({"t": time.monotonic(), "status": None, "failed": None})
                pending[id(request)] = self.puts[-1]

        def on_response(response: Any) -> None:
            if (entry := pending.pop(id(response.request), None)) is not None:
                entry["status"] = response.status

        def on_failed(request: Any) -> None:
            if (entry := pending.pop(id(request), None)) is not None:
                entry["failed"] = request.failure

        def on_socket(socket: Any) -> None:
            if "/_stcore/stream" not in socket.url:
                return
            self.sockets_opened += 1
            socket.on("close", lambda _: setattr(self, "sockets_closed", self.sockets_closed + 1))

        page.on("request", on_request)
        page.on("response", on_response)
        page.on("requestfailed", on_failed)
        page.on("websocket", on_socket)

    def since(self, t: float) -> list[dict[str, Any]]:
        """The upload PUTs sent at or after monotonic time ``t`` (their times counted from ``t``)."""
        return [p | {"t": round(p["t"] - t, 2)} for p in self.puts if p["t"] >= t]


# --- the server process, from /proc ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far: every thread, those that have ended included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), counted after the name
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (the most ever resident) of process ``pid``, in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = round(int(value.split()[0]) / 1024, 1)
    return found


async def wait_quiet(pid: int, limit_s: float = 120.0, busy_share: float = 0.05, interval_s: float = 1.0) -> float:
    """Wait until the server uses under ``busy_share`` of one core over ``interval_s`` (its background warm-up
    over), at most ``limit_s``; returns the seconds waited."""
    start = time.monotonic()
    last = cpu_seconds(pid)
    while time.monotonic() - start < limit_s:
        await asyncio.sleep(interval_s)
        now = cpu_seconds(pid)
        if now - last < busy_share * interval_s:
            break
        last = now
    else:
        logger.warning("server still busy after %.0f s; measuring anyway", limit_s)
    return time.monotonic() - start


# --- one session ------------------------------------------------------------------------------------------------


async def open_try_it(page: Any, url: str, timeout_ms: float) -> None:
    """Open the app's home page, then Try it through the sidebar (as :func:`kws.testing.open_page` does)."""
    await page.goto(url, timeout=timeout_ms)  # not the default 30 s: twenty pages loading at once take longer
    await page.wait_for_selector(APP_IDLE, timeout=timeout_ms)
    await page.locator(SIDEBAR_NAV).get_by_role("link", name="Try it").click()
    await page.wait_for_url(lambda u: u.rstrip("/") != url.rstrip("/"), timeout=timeout_ms)


async def wait_uploader_ready(page: Any, timeout_ms: float, settle_s: float = 1.0) -> None:
    """Wait until an upload cannot be swallowed by the client's own timing.

    The file input must be attached, Try it's first script run must have reached its end (the "Give a clip ..."
    prompt below the four boxes is drawn), and the script must have stayed idle for ``settle_s``: a file set
    while the page's first run still loads the models goes into a run that a rerun may replace.
    """
    await page.locator(UPLOAD_INPUT).wait_for(state="attached", timeout=timeout_ms)
    await page.get_by_text("Give a clip in one of the four ways above").wait_for(timeout=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    idle_since: float | None = None
    while time.monotonic() < deadline:
        idle = await page.locator(APP_IDLE).count() > 0
        now = time.monotonic()
        if not idle:
            idle_since = None
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= settle_s:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("Try it never settled")


async def await_answer(page: Any, answer: Answer, earlier: set[str], network: Network, timeout_s: float) -> None:
    """Wait (checked in the page every 100 ms) until it shows ``answer.clip``'s result, an error for it, or a result
    for a clip other than this one and this session's earlier ones (mixed up); fill in ``answer``."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    start = time.monotonic()
    await page.locator(UPLOAD_INPUT).set_input_files(str(answer.path))
    state: dict[str, Any] = {}
    while (elapsed := time.monotonic() - start) < timeout_s:
        try:
            await page.wait_for_function(
                SETTLED_JS,
                arg=[answer.clip, sorted(earlier), SUMMARY_PATTERN],
                polling=100,
                timeout=(timeout_s - elapsed) * 1000,
            )
        except PlaywrightTimeout:
            state = await page.evaluate(PAGE_STATE_JS)
            break
        elapsed = time.monotonic() - start
        state = await page.evaluate(PAGE_STATE_JS)
        names = [c.removeprefix("Upload: ").split(" · ")[0] for c in state["captions"]]
        if state["script"] != "notRunning" or not names:
            if state["exceptions"] and state["script"] == "notRunning":
                answer.outcome, answer.seconds, answer.shown = "error", round(elapsed, 3), "exception"
                return
            await asyncio.sleep(0.1)
            continue
        name = names[0]
        if name == answer.clip:
            summaries = [h for h in state["headings"] if SUMMARY.match(h)]
            if summaries:
                answer.said = said_word(summaries[0])
                answer.outcome = "right" if answer.said == answer.word else "wrong"
            elif state["alerts"] or state["exceptions"]:
                answer.outcome = "error"
            else:
                await asyncio.sleep(0.1)
                continue
            answer.seconds, answer.shown = round(elapsed, 3), state["captions"][0]
            if answer.outcome == "error":
                answer.shown = " | ".join(state["alerts"]) or "exception"
            return
        if name not in earlier:
            answer.outcome, answer.seconds, answer.shown = "mixed", round(elapsed, 3), state["captions"][0]
            return
    answer.diagnosis = {
        "uploads_sent": network.since(start),
        "websockets_opened": network.sockets_opened,
        "websockets_closed": network.sockets_closed,
        "page": state,
    }
    logger.warning(
        "session %d: no answer for %s in %.0f s: %s", answer.session, answer.clip, timeout_s, answer.diagnosis
    )


async def run_session(
    index: int,
    browser: Any,
    url: str,
    clips: list[UploadClip],
    ready: asyncio.Barrier,
    rounds: list[asyncio.Barrier],
    args: argparse.Namespace,
) -> tuple[list[Answer], str | None, int]:
    """One user: open Try it, wait until ready, then upload ``clips`` one per round. Returns the answers, the
    error that stopped the session early, if any (the barriers are still passed so others go on), and how many
    times the page's websocket reopened (Streamlit's frontend empties its file uploaders when it reconnects)."""
    answers = [Answer(index, k, c.path.name, c.word, c.path) for k, c in enumerate(clips)]
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    network = Network()
    network.watch(page)
    problem = None
    try:
        await open_try_it(page, url, args.timeout * 1000)
        if args.client == "naive":
            await page.locator(UPLOAD_INPUT).wait_for(state="attached", timeout=args.timeout * 1000)
        else:
            await wait_uploader_ready(page, args.timeout * 1000)
    except Exception as err:  # one broken session is a figure, not the end of the bench
        problem = f"opening Try it: {err}"
        logger.warning("session %d: %s", index, problem)
    await ready.wait()
    for k, answer in enumerate(answers):
        await rounds[k].wait()
        if problem is None:
            try:
                earlier = {a.clip for a in answers[:k]}
                await await_answer(page, answer, earlier, network, args.timeout)
            except Exception as err:  # a failed round is a figure too
                problem = f"round {k}: {err}"
                answer.outcome, answer.shown = "error", str(err)[:300]
                logger.warning("session %d: %s", index, problem)
        else:
            answer.outcome, answer.shown = "error", problem
    await context.close()
    return answers, problem, max(0, network.sockets_opened - 1)


# --- one N ---------------------------------------------------------------------------------------------------


def choose_clips(examples: list[Example], sessions: int, clips: int, dest: Path, seed: int) -> list[list[UploadClip]]:
    """``clips`` different test clips per session, none shared, copied to ``dest`` as ``sNN-cK-<file>.wav``."""
    chosen = random.Random(seed).sample(examples, sessions * clips)
    out = []
    for s in range(sessions):
        mine = []
        for k in range(clips):
            example = chosen[s * clips + k]
            path = dest / f"s{s:02d}-c{k}-{example.path.name}"
            shutil.copyfile(example.path, path)
            mine.append(UploadClip(path, example.word, example.name))
        out.append(mine)
    return out


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile of ``values`` (None when empty)."""
    return round(float(np.percentile(values, q)), 2) if values else None


async def run_one(sessions: int, examples: list[Example], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """A fresh server and Chromium, ``sessions`` users uploading ``args.clips`` clips each: the figures."""
    clip_dir = work / f"clips-{sessions}"
    clip_dir.mkdir()
    clips = choose_clips(examples, sessions, args.clips, clip_dir, args.seed + sessions)
    log = work / f"server-{sessions}.log"
    env = {"KWS_DATA_DIR": str(args.data_dir)}
    with serve_app(env=env, log_path=log) as server:
        return await _drive(server, sessions, clips, args, log)


async def _drive(
    server: Server, sessions: int, clips: list[list[UploadClip]], args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    memory = {"start": memory_mb(server.pid)}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=chromium_args())
        ready = asyncio.Barrier(sessions + 1)
        rounds = [asyncio.Barrier(sessions + 1) for _ in range(args.clips)]
        tasks = [
            asyncio.create_task(run_session(i, browser, server.url, clips[i], ready, rounds, args))
            for i in range(sessions)
        ]
        opened = time.monotonic()
        await ready.wait()
        logger.info("N=%d: %d sessions on Try it in %.1f s", sessions, sessions, time.monotonic() - opened)
        # the careful client also lets the server finish its background warm-up, so that the CPU counted is the
        # answers'; the naive one uploads at once (into Try it's first run, while the models may still load)
        quiet_s = await wait_quiet(server.pid) if args.client == "careful" else 0.0
        memory["ready"] = memory_mb(server.pid)
        cpu_before = cpu_seconds(server.pid)
        for barrier in rounds:  # every session uploads its next clip at once, round after round
            await barrier.wait()
        results = await asyncio.gather(*tasks)
        cpu = cpu_seconds(server.pid) - cpu_before
        memory["after"] = memory_mb(server.pid)
        await browser.close()
    answers = [a for session_answers, _, _ in results for a in session_answers]
    counts = {o: sum(a.outcome == o for a in answers) for o in ("right", "wrong", "lost", "mixed", "error")}
    answered = counts["right"] + counts["wrong"]
    times = [a.seconds for a in answers if a.outcome in ("right", "wrong")]
    server_log = log.read_text(errors="replace")
    row = {
        "sessions": sessions,
        "clips_per_session": args.clips,
        "client": args.client,
        "uploads": len(answers),
        **counts,
        "p50_s": percentile(times, 50),
        "p95_s": percentile(times, 95),
        "max_s": round(max(times), 2) if times else None,
        "server_cpu_s": round(cpu, 2),
        "server_cpu_s_per_answer": round(cpu / answered, 3) if answered else None,
        "rss_start_mb": memory["start"].get("VmRSS"),
        "rss_ready_mb": memory["ready"].get("VmRSS"),
        "rss_after_mb": memory["after"].get("VmRSS"),
        "hwm_after_mb": memory["after"].get("VmHWM"),
        "waited_for_quiet_s": round(quiet_s, 1),
        "server_log_tracebacks": server_log.count("Traceback"),
        "websocket_reopened": sum(reopened for _, _, reopened in results),
        "sessions_broken": [problem for _, problem, _ in results if problem],
        "answers": [asdict(a) for a in answers],
    }
    logger.info("N=%d: %s", sessions, {k: v for k, v in row.items() if k != "answers"})
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the figures."""
    head = (
        "| sessions | uploads | right | wrong | lost | mixed | errors | p50 s | p95 s | CPU s / answer "
        "| RSS start → ready → after MB | HWM MB | websocket reopened |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['sessions']} | {r['uploads']} | {r['right']} | {r['wrong']} | {r['lost']} | {r['mixed']} "
            f"| {r['error']} | {r['p50_s']} | {r['p95_s']} | {r['server_cpu_s_per_answer']} "
            f"| {r['rss_start_mb']} → {r['rss_ready_mb']} → {r['rss_after_mb']} | {r['hwm_after_mb']} "
            f"| {r['websocket_reopened']} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="1,5,10,20", help="comma-separated N: browser sessions at once")
    parser.add_argument("--clips", type=int, default=3, help="clips each session uploads, one after another")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before an answer counts as lost")
    parser.add_argument(
        "--client", choices=["careful", "naive"], default="careful", help="how long to wait before uploading"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="the dataset (default: KWS_DATA_DIR)")
    parser.add_argument("--seed", type=int, default=7, help="which test clips each session gets")
    parser.add_argument("--out", type=Path, default=Path("bench/results_load.json"))
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy each server's log into this folder")
    args = parser.parse_args(argv)
    args.sessions_list = [int(n) for n in args.sessions.split(",") if n.strip()]
    args.data_dir = args.data_dir or default_data_dir()
    return args


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every N of ``--sessions``, one after another, each on a fresh server."""
    examples = split_examples(args.data_dir, "test")
    needed = max(args.sessions_list) * args.clips
    if len(examples) < needed:
        raise SystemExit(f"{needed} different test clips needed, the test split has {len(examples)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="kws-load-") as tmp:
        for sessions in args.sessions_list:
            rows.append(await run_one(sessions, examples, args, Path(tmp)))
            if args.keep_logs:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                shutil.copy(Path(tmp) / f"server-{sessions}.log", args.keep_logs / f"server-{sessions}.log")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Run the bench, write ``--out``, print the table."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    machine_at_start = machine()
    rows = asyncio.run(main_async(args))
    result = {
        "bench": "load",
        "started": started,
        "machine": machine_at_start,
        "settings": {
            "sessions": args.sessions_list,
            "clips": args.clips,
            "timeout_s": args.timeout,
            "client": args.client,
            "seed": args.seed,
        },
        "runs": rows,
    }
    write_record(args.out, result, table(rows))


if __name__ == "__main__":
    main()
