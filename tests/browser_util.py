"""Helpers for real-browser tests: serve the app with ``streamlit run`` and drive Debian's Chromium via Playwright.

The server and page helpers live in :mod:`kws.testing` (the load benches use them too) and are re-exported here,
with pytest's skip marker. Reusable by any page's browser test::

    from browser_util import chromium_page, fake_mic_wav, requires_browser, streamlit_server

    pytestmark = [pytest.mark.browser, requires_browser]

    def test_x(tmp_path):
        wav = fake_mic_wav(clip_path, tmp_path / "mic.wav")
        with streamlit_server() as url, chromium_page(fake_audio=wav) as page:
            page.goto(f"{url}/try_it")

Chromium's fake microphone plays ``fake_audio`` in a loop from the moment a page opens the microphone; see
``/work/shared/notes/browser-mic-testing.md`` for the measured behaviour these helpers rely on.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from kws.testing import (  # noqa: F401  (re-exported: the tests import them from here)
    CHROMIUM,
    ROOT,
    chromium_args,
    fake_mic_wav,
    free_port,
    open_page,
    serve_app,
    streamlit_server,
    wait_for_app,
)

logger = logging.getLogger(__name__)


def _have_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


#: Skip marker for tests that need Chromium and Playwright (never installs anything).
requires_browser = pytest.mark.skipif(
    not (CHROMIUM.is_file() and _have_playwright()),
    reason=f"needs Playwright (python) and Chromium at {CHROMIUM}",
)


def lan_address() -> str | None:
    """This machine's address on its network, not loopback (``None`` without one): how another machine would
    open the app. A UDP "connect" sends nothing; it only asks the kernel which interface would be used."""
    candidates = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere
        candidates.append(s.getsockname()[0])
    with contextlib.suppress(OSError):
        candidates += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    return next((a for a in candidates if not a.startswith("127.") and a != "0.0.0.0"), None)


def self_signed_cert(dest: str | Path, host: str) -> tuple[Path, Path]:
    """A throw-away certificate and key for ``host`` (``cryptography`` comes with aiortc): what the README's
    openssl command makes, for serving the app over https in a test."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    dest = Path(dest)
    cert_file, key_file = dest / "cert.pem", dest / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@contextlib.contextmanager
def chromium_pages(
    fake_audios: Sequence[str | Path | None],
    viewport: dict[str, int] | None = None,
    default_timeout_ms: float = 60_000,
    **context_args: Any,
) -> Iterator[list[Any]]:
    """One Playwright page per entry of ``fake_audios``, each in its own headless Debian Chromium whose fake
    microphone plays that WAV (a browser's fake microphone is set at launch, so two voices need two browsers)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as p:
        browsers = []
        try:
            pages = []
            for fake_audio in fake_audios:
                args = chromium_args(fake_audio)
                browsers.append(p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args))
                context = browsers[-1].new_context(
                    permissions=["microphone"],
                    viewport=viewport or {"width": 1600, "height": 1000},
                    **context_args,
                )
                pages.append(context.new_page())
                pages[-1].set_default_timeout(default_timeout_ms)
            yield pages
        finally:
            for browser in browsers:
                browser.close()


@contextlib.contextmanager
def chromium_page(
    fake_audio: str | Path | None = None,
    viewport: dict[str, int] | None = None,
    default_timeout_ms: float = 60_000,
    **context_args: Any,
) -> Iterator[Any]:
    """A Playwright page in headless Debian Chromium with a fake microphone playing ``fake_audio`` (a WAV)."""
    with chromium_pages([fake_audio], viewport, default_timeout_ms, **context_args) as (page,):
        yield page


def wait_for_charts(page: Any, timeout_ms: float = 30_000, settle_ms: float = 1_000) -> None:
    """Wait until every Plotly chart on the page has drawn and no new one has come for ``settle_ms``.

    Streamlit loads Plotly lazily, chart by chart: "every chart present has drawn" once held while the first six
    charts in the page were later ones and the confusion matrices above them had not yet arrived.
    """
    drawn = """() => {
        const charts = document.querySelectorAll("[data-testid='stPlotlyChart']");
        return [...charts].every(c => c.querySelector(".main-svg")) ? charts.length : -1;
    }"""
    deadline = time.monotonic() + timeout_ms / 1000
    last, since = -1, time.monotonic()
    while True:
        count, now = page.evaluate(drawn), time.monotonic()
        if count != last:
            last, since = count, now
        elif count > 0 and now - since >= settle_ms / 1000:
            return
        if now > deadline:
            raise TimeoutError(f"charts still loading after {timeout_ms / 1000:.0f} s ({last} drawn)")
        page.wait_for_timeout(100)


def wait_for_pictures(page: Any, count: int, timeout_ms: float = 30_000) -> None:
    """Wait until at least ``count`` of the page's ``st.image`` pictures (Try it's waveform and feature pictures,
    :mod:`kws.pictures`) are decoded and laid out with a width."""
    drawn = """() => [...document.querySelectorAll("[data-testid='stImage'] img")]
        .filter(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0).length"""
    page.wait_for_function(f"({drawn})() >= {count}", timeout=timeout_ms)


def charts_cut_off(page: Any) -> list[str]:
    """Plotly charts drawn wider than the element that holds them, so part of them is hidden: Plotly draws at
    150 px or more, whatever room a column leaves it. Charts in a hidden tab (no width at all) are not counted."""
    return page.evaluate(
        """() => [...document.querySelectorAll("[data-testid='stPlotlyChart']")].flatMap(c => {
            const svg = c.querySelector(".main-svg"), room = c.getBoundingClientRect().width;
            const drawn = svg ? Number(svg.getAttribute("width")) : 0;
            return room > 0 && drawn > room + 1 ? [`${Math.round(drawn)} px drawn in ${Math.round(room)} px`] : [];
        })"""
    )


def boxes_of(page: Any, key: str) -> list[tuple[int, int, int]]:
    """(left, top, width) in px of each box in the row of :func:`kws.ui.layout.boxes` keyed ``key``."""
    return [
        tuple(round(v) for v in xyw)
        for xyw in page.evaluate(
            f"""() => [...document.querySelectorAll(".st-key-{key} > [data-testid='stLayoutWrapper']")].map(e => {{
                const r = e.getBoundingClientRect(); return [r.x, r.y, r.width]; }})"""
        )
    ]


def rows_of(page: Any, selector: str) -> list[int]:
    """How many elements matching ``selector`` stand in each row, top to bottom (rows by the elements' tops)."""
    tops = page.evaluate(
        f"""() => [...document.querySelectorAll("{selector}")].map(e => Math.round(e.getBoundingClientRect().top))"""
    )
    return [tops.count(top) for top in sorted(set(tops))]


def tables_scrolled(page: Any) -> list[tuple[int, int]]:
    """(drawn width, room) in px of each ``st.dataframe`` too wide for its room, which the reader must scroll
    sideways to see the rest of (the grid is drawn on a canvas, so no text is cut to "…" to find)."""
    return [
        tuple(pair)
        for pair in page.evaluate(
            """() => [...document.querySelectorAll("[data-testid='stDataFrame'] .dvn-scroller")]
                .map(s => [s.scrollWidth, s.clientWidth]).filter(([drawn, room]) => drawn > room + 1)"""
        )
    ]


def text_cut_off(page: Any, selector: str) -> list[str]:
    """Texts under ``selector`` that their element cuts short with an ellipsis (a label squeezed to "Spot wo…")."""
    return page.evaluate(
        f"""() => [...document.querySelectorAll("{selector} *")].filter(e =>
            e.clientWidth > 0 && getComputedStyle(e).textOverflow === "ellipsis" && e.scrollWidth > e.clientWidth + 1
        ).map(e => e.innerText)"""
    )
