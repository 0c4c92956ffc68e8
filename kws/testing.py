"""Drive the app as a user does: serve it with ``streamlit run``, open it in Debian's Chromium through Playwright.

Shared by the browser tests (``tests/browser_util.py`` adds pytest's skip markers) and the benches that load a
real server (``bench/load.py``, ``bench/spotting.py``), so both measure the same app the same way. Nothing here
imports Playwright or pytest at module level: ``import kws.testing`` works without either.

See ``/work/shared/notes/browser-mic-testing.md`` for the measured behaviour these helpers rely on (Chromium's
fake microphone loops its WAV from the moment a page opens the microphone).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

ROOT = Path(__file__).absolute().parent.parent
CHROMIUM = Path(os.environ.get("KWS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Streamlit has finished a script run: its status widget says nothing is running.
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
#: The sidebar's page links (``st.navigation``).
SIDEBAR_NAV = "[data-testid='stSidebarNav']"
#: How every :attr:`kws.inference.Prediction.summary` heading begins: a page that shows one has answered. Also a
#: JavaScript regular expression, for checks that run inside the page.
SUMMARY_PATTERN = (
    r"^(Most models say: |No majority: |The models are split: |Not one of the three words|No speech detected"
    r"|No voice detected)"
)


def said_word(summary: str) -> str | None:
    """The word a summary heading puts first (what :attr:`kws.inference.Prediction.majority` is): a keyword,
    ``"other"`` where it says not one of the three words, None for no speech or no voice."""
    if summary.startswith("Not one of the three words"):
        return "other"
    for pattern in (
        r"^Most models say: (.+)$",
        r"^No majority: (.+) leads",
        r"^The models are split: (.+?)(?: / | \()",
    ):
        if m := re.match(pattern, summary):
            return "other" if m.group(1).startswith("none of the three") else m.group(1)
    return None


def chromium_args(fake_audio: str | Path | None = None) -> list[str]:
    """Chromium's command line arguments, with a fake microphone looping ``fake_audio`` (a WAV) if given."""
    args = list(CHROMIUM_ARGS)
    if fake_audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={Path(fake_audio).absolute()}")
    return args


def free_port() -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_mic_wav(clip: str | Path, dest: str | Path, lead_s: float = 2.0, tail_s: float = 3.0) -> Path:
    """Write ``clip`` padded with silence, for ``--use-file-for-fake-audio-capture``.

    The lead covers the ~0.6 s WebRTC needs to connect; the tail makes one recording of ~4-5 s hold exactly
    one word although Chromium loops the file.
    """
    samples, rate = sf.read(str(clip), dtype="float32", always_2d=False)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    padded = np.concatenate(
        [np.zeros(int(lead_s * rate), np.float32), samples, np.zeros(int(tail_s * rate), np.float32)]
    )
    dest = Path(dest)
    sf.write(str(dest), padded, rate, subtype="PCM_16")
    return dest


def _healthy(url: str) -> bool:
    context = ssl._create_unverified_context() if url.startswith("https:") else None  # our own self-signed cert
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2, context=context) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


@dataclass(frozen=True)
class Server:
    """A running ``streamlit run app.py``: its base URL, process id (for /proc figures) and log file."""

    url: str
    pid: int
    log: Path


@contextlib.contextmanager
def serve_app(
    root: str | Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    log_path: str | Path | None = None,
    host: str = "localhost",
    tls: tuple[Path, Path] | None = None,
) -> Iterator[Server]:
    """Run ``streamlit run app.py`` on a free port; yield it once ``/_stcore/health`` answers ok.

    ``env`` adds to the current environment (``KWS_DATA_DIR`` passes through). The server's output goes to
    ``log_path`` (a temporary file by default, removed afterwards) and is logged if it fails to start. ``host``
    is the address in the URL (the server listens on every interface); ``tls`` (certificate, key) serves https.
    """
    port = free_port()
    url = f"{'https' if tls else 'http'}://{host}:{port}"
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    if tls:
        cmd += ["--server.sslCertFile", str(tls[0]), "--server.sslKeyFile", str(tls[1])]
    full_env = {**os.environ, **(env or {})}
    log = Path(log_path) if log_path else Path(os.environ.get("TMPDIR", "/tmp")) / f"streamlit-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=str(root), env=full_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start (exit {proc.poll()}):\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        yield Server(url, proc.pid, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path is None:
            logger.debug("streamlit log:\n%s", log.read_text()[-4000:])
            log.unlink(missing_ok=True)


@contextlib.contextmanager
def streamlit_server(*args: Any, **kwargs: Any) -> Iterator[str]:
    """:func:`serve_app` (same arguments), yielding only the base URL (what most tests need)."""
    with serve_app(*args, **kwargs) as server:
        yield server.url


def wait_for_app(page: Any, timeout_ms: float = 90_000) -> None:
    """Wait until Streamlit has finished a script run (the status widget says nothing is running)."""
    page.wait_for_selector(APP_IDLE, timeout=timeout_ms)


def open_page(page: Any, base_url: str, title: str, timeout_ms: float = 90_000) -> None:
    """Open the app at its home page, then go to the page titled ``title`` through the sidebar, as a user does.

    (Opening a page's URL directly also works, even on a fresh server: see ``kws.ui.state.through_router`` and
    ``test_page_url_on_a_fresh_server_goes_through_the_router``.)
    """
    page.goto(base_url, timeout=timeout_ms)
    wait_for_app(page, timeout_ms)
    page.locator(SIDEBAR_NAV).get_by_role("link", name=title).click()
    page.wait_for_url(lambda url: url.rstrip("/") != base_url.rstrip("/"), timeout=timeout_ms)
    wait_for_app(page, timeout_ms)


def cpu_model() -> str:
    """The processor's name (``/proc/cpuinfo``'s "model name", else ``platform.processor()``), kept with each
    bench record. It does not tell every pair of machines apart (two that both said "AMD EPYC" ran the benches
    2x apart), so figures are compared within one record, against a yardstick measured in the same run."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine a bench runs on, taken as it starts: platform, processor, CPUs and load average (a busy
    machine moves every figure)."""
    import platform

    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "load_avg_at_start": os.getloadavg(),
    }


def write_record(out: Path, record: dict[str, Any], table: str) -> None:
    """Write a bench run's JSON record to ``out`` and print its markdown table: how every browser bench ends."""
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    logger.info("wrote %s", out)
    print(table)
