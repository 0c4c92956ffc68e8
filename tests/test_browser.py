"""Try it in a real browser: Chromium's fake microphone speaks a test-split word into both recorders.

Runs ``streamlit run app.py`` and headless Debian Chromium (``/usr/bin/chromium``) through Playwright; skipped
where either is missing. Run only these with ``pytest -m browser``.

Screenshot: set ``KWS_SCREENSHOT=docs/screenshot_try_it.png`` (any path) to save the page after the live
microphone's prediction there; otherwise it goes to the test's temporary folder. ``docs/screenshot_try_it.png``
in the repository was made this way.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser_util import (
    chromium_page,
    fake_mic_wav,
    open_page,
    requires_browser,
    streamlit_server,
    wait_for_app,
    wait_for_charts,
)

pytestmark = [pytest.mark.browser, requires_browser]

RECORD_MS = 5_000
RESULT_TIMEOUT_MS = 120_000  # the first clip of a fresh server loads and compiles every model


@pytest.fixture(scope="module")
def server(known_clip) -> str:
    with streamlit_server(env={"KWS_DATA_DIR": os.environ["KWS_DATA_DIR"]}) as url:
        yield url


@pytest.fixture
def mic_wav(known_clip, tmp_path) -> tuple[Path, str]:
    path, word = known_clip
    # 3 s lead (not 2): under CPU load WebRTC took up to ~2 s to connect, and frames before that are lost
    return fake_mic_wav(path, tmp_path / "fake-mic.wav", lead_s=3.0, tail_s=3.0), word


def open_try_it(page, server: str) -> None:
    open_page(page, server, "Try it", timeout_ms=RESULT_TIMEOUT_MS)
    page.get_by_text("Try an example").first.wait_for()


def test_live_microphone_through_webrtc(server, mic_wav, tmp_path) -> None:
    wav, word = mic_wav
    with chromium_page(fake_audio=wav, viewport={"width": 1600, "height": 1550}) as page:
        open_try_it(page, server)
        component = page.frame_locator("iframe[title*='streamlit_webrtc']")
        component.get_by_role("button", name="START").click()
        page.get_by_text("Listening…").wait_for(timeout=30_000)
        page.wait_for_timeout(RECORD_MS)  # the fake mic: 3 s silence, the word, 3 s silence (one word per take)
        component.get_by_role("button", name="STOP").click()
        page.get_by_text(f"Most models say: {word}").wait_for(timeout=RESULT_TIMEOUT_MS)
        assert page.get_by_text("Live microphone").count() >= 1
        wait_for_app(page)
        wait_for_charts(page)
        page.wait_for_timeout(500)
        shot = Path(os.environ.get("KWS_SCREENSHOT") or tmp_path / "screenshot_try_it.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)


def test_browser_recorder(server, mic_wav) -> None:
    wav, word = mic_wav
    with chromium_page(fake_audio=wav) as page:
        open_try_it(page, server)
        page.get_by_role("button", name="Record", exact=True).click()
        page.get_by_role("button", name="Stop recording", exact=True).wait_for()
        page.wait_for_timeout(RECORD_MS)
        page.get_by_role("button", name="Stop recording", exact=True).click()
        page.get_by_text(f"Most models say: {word}").wait_for(timeout=RESULT_TIMEOUT_MS)
        assert page.get_by_text("Browser recording").count() >= 1
        assert page.get_by_text("Traceback").count() == 0
