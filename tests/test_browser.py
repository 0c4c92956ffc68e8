"""Try it in a real browser: Chromium's fake microphone speaks a test-split word into both recorders.

Runs ``streamlit run app.py`` and headless Debian Chromium (``/usr/bin/chromium``) through Playwright; skipped
where either is missing. Run only these with ``pytest -m browser``.

Screenshot: set ``KWS_SCREENSHOT=docs/screenshot_try_it.png`` (any path) to save the page after the live
microphone's prediction there; otherwise it goes to the test's temporary folder. ``docs/screenshot_try_it.png``
in the repository was made this way.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from browser_util import (
    boxes_of,
    charts_cut_off,
    chromium_page,
    chromium_pages,
    fake_mic_wav,
    lan_address,
    open_page,
    requires_browser,
    rows_of,
    self_signed_cert,
    streamlit_server,
    tables_scrolled,
    text_cut_off,
    wait_for_app,
    wait_for_charts,
    wait_for_pictures,
)

from kws.config import LECTURE_MODELS_DIR, OTHER

pytestmark = [pytest.mark.browser, requires_browser]

LEAD_S, TAIL_S = 2.0, 3.0  # the fake mic loops: 2 s silence, the word (1 s), 3 s silence
# Chromium starts the file when the page opens the microphone, but WebRTC took 0.6-7 s to connect here (under
# CPU load), so where the word falls in a live take is unknown. A take longer than one loop (6 s) always holds
# the whole word at least once, wherever the loop stands when frames start to arrive.
RECORD_MS = 7_500
RESULT_TIMEOUT_MS = 120_000  # a fresh server loads and compiles every model first
LAPTOP = {"width": 1366, "height": 900}  # a common laptop screen: the main area is ~900 px beside the sidebar
PHONE = {"width": 420, "height": 2600}  # a phone held upright (the sidebar folds away); tall, so every chart draws
QUIET_DB = -30  # the known clip peaks near -3 dBFS: a quieter take means the word was missed
BLOCKED = "Browsers give the microphone only"  # the start of kws.mic.microphone_blocked's warning


@pytest.fixture(scope="module")
def server(known_clip) -> str:
    with streamlit_server(env={"KWS_DATA_DIR": os.environ["KWS_DATA_DIR"]}) as url:
        yield url


@pytest.fixture
def mic_wav(known_clip, tmp_path) -> tuple[Path, str]:
    path, word = known_clip
    return fake_mic_wav(path, tmp_path / "fake-mic.wav", lead_s=LEAD_S, tail_s=TAIL_S), word


def open_try_it(page, server: str) -> None:
    """Try it, its first run finished: the prompt under the four ways in is the page's last line, and the run
    then loads the models. A click made while a loaded machine was still in that run was once lost (the
    example's result never came), so callers act only once the page is idle."""
    open_page(page, server, "Try it", timeout_ms=RESULT_TIMEOUT_MS)
    page.get_by_text("Try an example").first.wait_for()
    page.get_by_text("Give a clip in one of the four ways above").wait_for(timeout=RESULT_TIMEOUT_MS)
    wait_for_app(page, RESULT_TIMEOUT_MS)


def assert_heard(page, source: str, word: str) -> None:
    """The summary names the word (``other``: says it is none of the three), and the take was loud: the word
    itself was heard, not a lucky guess."""
    headline = re.compile(r"^Not one of the three words \(") if word == OTHER else f"Most models say: {word}"
    page.get_by_text(headline).wait_for(timeout=RESULT_TIMEOUT_MS)
    wait_for_app(page)
    caption = page.get_by_text(re.compile(rf"^{source} · ")).inner_text()
    level = int(re.search(r"loudest (-?\d+) dBFS", caption).group(1))
    assert level > QUIET_DB, caption
    assert page.get_by_text("Traceback").count() == 0


def webrtc_frame(page):
    """The live microphone's streamlit-webrtc component, which lives in its own iframe."""
    return page.frame_locator("iframe[title*='streamlit_webrtc']")


def live_button(page, name: str) -> None:
    """Press START or STOP on the live microphone."""
    webrtc_frame(page).get_by_role("button", name=name).click()


def start_live(page) -> None:
    """Press START and wait until the page says it is listening.

    If START still shows 10 s later, the click was lost or the connection failed before signalling (streamlit-webrtc
    shows STOP from then on), so it is pressed once more, as a user would. A connection that never comes up fails the
    test, with what the component shows. (One full run timed out here, its cause not captured.)
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # here: the module loads without Playwright

    live_button(page, "START")
    listening = page.get_by_text("Listening…")
    try:
        listening.wait_for(timeout=10_000)
        return
    except PlaywrightTimeout:
        if webrtc_frame(page).get_by_role("button", name="START").count():
            live_button(page, "START")
    try:
        listening.wait_for(timeout=30_000)
    except PlaywrightTimeout:
        shown = webrtc_frame(page).locator("body").inner_text(timeout=5_000)
        raise AssertionError(f"no 'Listening…' 40 s after START; the component shows: {shown!r}") from None


def speak_live(page) -> None:
    """START the live microphone, let the fake one play a whole loop, STOP."""
    start_live(page)
    page.wait_for_timeout(RECORD_MS)
    live_button(page, "STOP")


def test_live_microphone_through_webrtc(server, mic_wav, tmp_path) -> None:
    wav, word = mic_wav
    with chromium_page(fake_audio=wav, viewport={"width": 1920, "height": 1640}) as page:  # six cards in a row
        open_try_it(page, server)
        assert page.get_by_text(BLOCKED).count() == 0  # localhost: the browser gives the page its microphone
        speak_live(page)
        assert_heard(page, "Live microphone", word)
        wait_for_pictures(page, 2)
        page.wait_for_timeout(500)
        shot = Path(os.environ.get("KWS_SCREENSHOT") or tmp_path / "screenshot_try_it.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)


def test_another_word_on_the_live_microphone_is_not_one_of_the_three(server, other_clip, tmp_path) -> None:
    """A test-split word that is not a keyword, said through the fake microphone: the app says so in words."""
    wav = fake_mic_wav(other_clip, tmp_path / "other.wav", lead_s=LEAD_S, tail_s=TAIL_S)
    with chromium_page(fake_audio=wav, viewport=LAPTOP) as page:
        open_try_it(page, server)
        speak_live(page)
        assert_heard(page, "Live microphone", OTHER)
        assert page.get_by_text(re.compile(r"^Most models say: ")).count() == 0


def test_spotting_names_the_word_each_time_it_is_said(server, mic_wav) -> None:
    """The fake microphone says the word every 6 s: with spotting on, a take of two loops names it at least
    twice, once per saying (never twice for one), and names no other word; after STOP, the result keeps them."""
    wav, word = mic_wav
    with chromium_page(fake_audio=wav, viewport=LAPTOP) as page:
        open_try_it(page, server)
        page.get_by_text("Spot words as I speak").click()
        wait_for_app(page)
        start_live(page)
        # the list, read every 0.2 s until it holds two words (two loops of the fake microphone: 12 s of audio,
        # longer on a loaded machine, where the WebRTC audio itself comes late): a word once shown stays shown
        counts: list[int] = []
        while len(counts) < 60_000 // 200 and (not counts or counts[-1] < 2):
            page.wait_for_timeout(200)
            lines = re.findall(r"\w+ · at \d+\.\d s · \d of \d models", page.inner_text("body"))
            counts.append(len(lines))
        # a second later the list still holds those words: it may hold one more (on a loaded machine the page can
        # show a take's words seconds after they were said, so a third saying may land now), never one fewer
        page.wait_for_timeout(1_000)
        later = re.findall(r"\w+ · at \d+\.\d s · \d of \d models", page.inner_text("body"))
        assert set(lines) <= set(later), (lines, later)
        assert counts == sorted(counts), counts
        lines = later
        live_button(page, "STOP")
        said = [line.split(" · ")[0] for line in lines]
        times = sorted(float(line.split(" · at ")[1].split(" s")[0]) for line in lines)
        assert len(said) >= 2 and set(said) == {word}, lines
        assert all(later - earlier > 4 for earlier, later in zip(times, times[1:])), lines  # 6 s apart
        # after STOP the result view keeps the take's words: those shown live, plus any finished since
        kept = page.get_by_text("Spotted as you spoke").inner_text(timeout=RESULT_TIMEOUT_MS)
        found = re.findall(r"(\w+) at (\d+\.\d) s", kept)
        assert {w for w, _ in found} == {word} and len(found) >= len(lines), kept
        assert {f"{t:.1f}" for t in times} <= {t for _, t in found}, kept


def test_a_tap_on_the_live_microphone_is_no_word(server, tmp_path) -> None:
    """The fake microphone taps every 1.5 s (the models alone would call it "cat"): with spotting on, no word is
    listed, and after STOP the take's loudest second is "No voice detected", with no word named."""
    import numpy as np
    import soundfile as sf
    from _audio_util import clap

    tap = np.concatenate([np.zeros(9600), clap(0.3, seed=1), np.zeros(9600)])
    sf.write(tmp_path / "tap.wav", tap.astype(np.float32), 16000, subtype="PCM_16")
    with chromium_page(fake_audio=tmp_path / "tap.wav", viewport=LAPTOP) as page:
        open_try_it(page, server)
        page.get_by_text("Spot words as I speak").click()
        wait_for_app(page)
        for _ in range(3):  # WebRTC's audio sometimes starts seconds after "Listening…": a take of 0.6 s held none
            start_live(page)
            page.wait_for_timeout(RECORD_MS)
            assert not re.findall(r"\w+ · at \d+\.\d s · \d of \d models", page.inner_text("body"))  # none live
            live_button(page, "STOP")
            page.wait_for_timeout(1_000)  # the rerun STOP starts, so the caption read next is this take's
            wait_for_app(page, timeout_ms=RESULT_TIMEOUT_MS)
            caption = page.get_by_text(re.compile(r"^Live microphone · ")).inner_text(timeout=RESULT_TIMEOUT_MS)
            if float(re.search(r" · (\d+\.\d) s · ", caption).group(1)) >= 2.0:  # a take of at least one tap
                break
        page.get_by_text("No voice detected").wait_for()  # not "too quiet": the tap was loud enough for speech
        body = page.inner_text("body")
        assert "There is sound but no voice in it" in body and "Most models say" not in body
        assert "Spotted as you spoke: no word" in body


def test_two_people_on_the_live_microphone_at_once_each_hear_their_own_word(server, known_clips, tmp_path) -> None:
    """Two browsers, two voices, recording over the same seconds: each session's answer is its own word (one
    microphone buffer per session, each fed by its own WebRTC connection), never the other's or a mix."""
    words = list(known_clips)[:2]
    if len(words) < 2:
        pytest.skip("fewer than two words with a clip every model names correctly")
    wavs = [fake_mic_wav(known_clips[w], tmp_path / f"{w}.wav", lead_s=LEAD_S, tail_s=TAIL_S) for w in words]
    with chromium_pages(wavs, viewport=LAPTOP) as pages:
        for page in pages:
            open_try_it(page, server)
        for page in pages:
            live_button(page, "START")
        for page in pages:
            page.get_by_text("Listening…").wait_for(timeout=30_000)
        pages[0].wait_for_timeout(RECORD_MS)
        for page in pages:
            live_button(page, "STOP")
        for page, word in zip(pages, words):
            assert_heard(page, "Live microphone", word)


def test_browser_recorder(server, mic_wav) -> None:
    """On a laptop-sized screen: every model's card shows all its bars (six columns once cut them off)."""
    wav, word = mic_wav
    with chromium_page(fake_audio=wav, viewport=LAPTOP) as page:
        open_try_it(page, server)
        page.get_by_role("button", name="Record", exact=True).click()
        stop = page.get_by_role("button", name="Stop recording", exact=True)
        stop.wait_for()
        page.wait_for_timeout(RECORD_MS)
        stop.click()
        assert_heard(page, "Browser recording", word)
        wait_for_pictures(page, 2, timeout_ms=RESULT_TIMEOUT_MS)  # the waveform and the MFCC picture
        assert page.locator("[data-testid='stPlotlyChart']").count() == 0  # no Plotly for the browser to load
        assert page.locator("[data-testid='stProgress']").count() >= 6 * 3  # each card's three probabilities
        assert charts_cut_off(page) == []


def test_the_four_ways_in_wrap_rather_than_squeeze(server) -> None:
    """Four in a row on a wide screen, two by two on a laptop or a 1,024-px projector (sidebar open), one per row
    on a phone; at every width no box is narrow enough to cut its labels or buttons short (at 1,024 px they were
    130 px wide, "Random t…"; at 1,366 px, "Spot words as I sp…")."""
    with chromium_page(viewport={"width": 1920, "height": 900}) as page:
        open_try_it(page, server)
        for width, per_row in ((1920, 4), (1366, 2), (1024, 2), (420, 1)):
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(500)
            found = boxes_of(page, "tryit_ways")
            rows = [sorted(left for left, top, _ in found if top == row) for row in sorted({t for _, t, _ in found})]
            assert [len(r) for r in rows] == [per_row] * (4 // per_row), (width, found)
            assert min(w for _, _, w in found) > 260, (width, found)
            assert text_cut_off(page, ".st-key-tryit_ways") == [], width


def test_the_model_cards_keep_whole_rows(server) -> None:
    """Try it's six answer cards: one row, three and three, two by two, one per row (as the confusion matrices)."""
    with chromium_page(viewport=LAPTOP) as page:
        open_try_it(page, server)
        page.get_by_role("button", name="Random test clip").click()
        page.get_by_text("True word:").wait_for(timeout=RESULT_TIMEOUT_MS)
        # all six cards drawn: below the noise control, whose first use on a server sorts the noise clips first,
        # so on a loaded machine the result's caption can show a while before its cards
        page.locator(".st-key-tryit_cards [data-testid='stMetric']").nth(5).wait_for(timeout=RESULT_TIMEOUT_MS)
        wait_for_app(page)
        card = "[data-testid='stLayoutWrapper']:has(> [data-testid='stVerticalBlock'] [data-testid='stMetric'])"
        for width, rows in CARD_ROWS:
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(500)
            assert rows_of(page, f".st-key-tryit_cards {card}") == rows, width
            # each card's word on one line with its neighbours' ("CNN, two convolutions + dropout" took two
            # lines above it and put cnn2_dropout's word a line lower than lstm's and best's)
            assert rows_of(page, ".st-key-tryit_cards [data-testid='stMetric']") == rows, width


@pytest.mark.skipif(not LECTURE_MODELS_DIR.is_dir(), reason="no lecture set in models/lecture")
def test_the_lectures_set_follows_the_visitor_from_page_to_page(server) -> None:
    """The sidebar's switch, chosen on Home, holds on Try it: five cards, the lecture's, with no ``other`` bar;
    a second visitor at the same time still gets today's six."""
    with chromium_pages([None, None], viewport=LAPTOP) as (page, other):
        page.goto(server)
        wait_for_app(page, RESULT_TIMEOUT_MS)
        page.get_by_test_id("stSidebar").get_by_text("The lecture's models").click()
        wait_for_app(page)
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Try it").click()  # same session, no reload
        page.get_by_text("Try an example").first.wait_for(timeout=RESULT_TIMEOUT_MS)
        open_try_it(other, server)
        for visitor in (page, other):
            visitor.get_by_role("button", name="Random test clip").click()
            visitor.get_by_text("True word:").wait_for(timeout=RESULT_TIMEOUT_MS)
            wait_for_app(visitor)
        cards = ".st-key-tryit_cards [data-testid='stMetric']"
        page.locator(cards).nth(4).wait_for(timeout=RESULT_TIMEOUT_MS)
        other.locator(cards).nth(5).wait_for(timeout=RESULT_TIMEOUT_MS)
        assert page.locator(cards).count() == 5 and other.locator(cards).count() == 6
        assert page.locator(".st-key-tryit_cards").get_by_text(re.compile(r"^other \d+%$")).count() == 0


def test_plain_http_from_another_machine_says_the_microphone_is_blocked(server) -> None:
    """Opened at the server's network address over http, as a classroom would: the browser has no microphone
    API at all there, and the page says so instead of offering a START button that does nothing."""
    host = lan_address()
    if host is None:
        pytest.skip("this machine has no address besides loopback")
    with chromium_page(viewport=LAPTOP) as page:
        open_try_it(page, server.replace("localhost", host))
        assert page.evaluate("[window.isSecureContext, !!navigator.mediaDevices]") == [False, False]
        warning = page.get_by_text(BLOCKED).inner_text()
        assert f"http://{host}:" in warning and "upload a clip" in warning


def test_https_from_another_machine_hears_the_live_microphone(mic_wav, tmp_path) -> None:
    """The README's recipe for a classroom: the app over https (a self-signed certificate) at its network
    address; the browser then gives the page the microphone, and WebRTC carries the word to the models."""
    host = lan_address()
    if host is None:
        pytest.skip("this machine has no address besides loopback")
    wav, word = mic_wav
    tls = self_signed_cert(tmp_path, host)
    env = {"KWS_DATA_DIR": os.environ["KWS_DATA_DIR"]}
    with (
        streamlit_server(env=env, host=host, tls=tls) as url,
        chromium_page(
            fake_audio=wav,
            viewport=LAPTOP,
            ignore_https_errors=True,  # the certificate is our own
        ) as page,
    ):
        assert url.startswith(f"https://{host}:")
        open_try_it(page, url)
        assert page.evaluate("window.isSecureContext") and page.get_by_text(BLOCKED).count() == 0
        speak_live(page)
        assert_heard(page, "Live microphone", word)


@pytest.mark.parametrize(
    "title, charts", [("Home", False), ("Compare models", True), ("Retrain", False), ("Dataset", True)]
)
def test_pages_cut_nothing_short_on_a_1024_px_screen(server, title, charts) -> None:
    """A classroom projector's 1,024 px with the sidebar open leaves the page ~560 px: no text is cut to "…" (the
    Dataset page's split metric read "79 / 1…" in a quarter-width column) and no chart is drawn past its room.
    At 1,366 px every table shows all its columns (Retrain's list of sets was 925 px in 904), and at a phone's
    420 px still no text is cut (Retrain's model picker read "cnn2_dropout: CNN, two convolutions + drop…"). Try it
    has its own test above."""
    with chromium_page(viewport={"width": 1024, "height": 2600}) as page:  # tall: every chart on screen draws
        if title == "Home":
            page.goto(server)
            wait_for_app(page, RESULT_TIMEOUT_MS)
        else:
            open_page(page, server, title, timeout_ms=RESULT_TIMEOUT_MS)
        if charts:
            wait_for_charts(page, timeout_ms=RESULT_TIMEOUT_MS)
        assert page.get_by_text("Traceback").count() == 0
        assert text_cut_off(page, "[data-testid='stMain']") == []
        assert charts_cut_off(page) == []
        page.set_viewport_size(LAPTOP)  # on a laptop, no table needs scrolling sideways either
        page.wait_for_timeout(500)
        assert tables_scrolled(page) == []
        page.set_viewport_size(PHONE)  # nor is any text cut short on a phone (Retrain's model picker was)
        page.wait_for_timeout(500)
        assert text_cut_off(page, "[data-testid='stMain']") == []
        assert charts_cut_off(page) == []


#: Six cards per row at each window width (sidebar open): one row, two rows of three (never four and two), three
#: rows of two where a group of three no longer fits (it wrapped inside itself: rows of 2, 1, 2, 1), one per row.
CARD_ROWS = ((1920, [6]), (1366, [3, 3]), (1024, [2, 2, 2]), (420, [1] * 6))


def test_compare_page_confusion_matrices_and_tables_fit(server) -> None:
    """The confusion matrices keep whole rows at every width; on a laptop both tables show every column without
    sideways scrolling (fourteen columns in one table were 1,156 px in 904, hiding the latency)."""
    with chromium_page(viewport=LAPTOP) as page:
        open_page(page, server, "Compare models", timeout_ms=RESULT_TIMEOUT_MS)
        page.get_by_text("Confusion matrices").wait_for()
        wait_for_charts(page)
        assert page.get_by_text("Traceback").count() == 0
        assert charts_cut_off(page) == []
        page.locator("[data-testid='stDataFrame'] .dvn-scroller").nth(2).wait_for()  # scores, training, mistakes
        assert tables_scrolled(page) == []
        for width, rows in CARD_ROWS:
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(500)
            assert rows_of(page, "[class*='st-key-compare_confusion_']") == rows, width


SCATTER_BOXES = """() => {
    const chart = document.querySelector(".st-key-compare_tradeoff [data-testid='stPlotlyChart']");
    const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    return {
        names: [...chart.querySelectorAll(".scatterlayer .textpoint text")].map(box),
        points: [...chart.querySelectorAll(".scatterlayer path.point")].map(box),
        chart: box(chart),
    };
}"""


def _cross(a: list[float], b: list[float]) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5


def test_compare_scatter_names_stay_clear_of_each_other(server) -> None:
    """cnn2, cnn2_dropout and best sit within pixels of each other: every name readable, on both x axes."""
    with chromium_page(viewport=LAPTOP) as page:
        open_page(page, server, "Compare models", timeout_ms=RESULT_TIMEOUT_MS)
        for axis in ["latency per clip", "parameters"]:
            page.get_by_test_id("stRadioGroup").get_by_text(axis, exact=True).click()
            wait_for_app(page)
            wait_for_charts(page)
            page.wait_for_timeout(500)
            drawn = page.evaluate(SCATTER_BOXES)
            names, points = drawn["names"], drawn["points"]
            assert len(names) == len(points) >= 2, axis
            for i, name in enumerate(names):
                assert not [j for j, other in enumerate(names) if j != i and _cross(name, other)], (axis, i, names)
                assert not [j for j, p in enumerate(points) if j != i and _cross(name, p)], (axis, i, names, points)
                left, top, right, bottom = drawn["chart"]
                assert left <= name[0] and name[2] <= right and top <= name[1] and name[3] <= bottom, (axis, name)


@pytest.mark.parametrize("path", ["dataset", "try_it"])
def test_page_url_on_a_fresh_server_goes_through_the_router(path) -> None:
    """A bookmark to a page, opened before anyone opened ``/``, still gets app.py's router and sidebar."""
    with (
        streamlit_server(env={"KWS_DATA_DIR": os.environ["KWS_DATA_DIR"]}) as url,
        chromium_page() as page,
    ):
        page.goto(f"{url}/{path}")
        wait_for_app(page, RESULT_TIMEOUT_MS)
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_text("Keyword Studio").wait_for(timeout=30_000)  # app.py's sidebar, not the folder mode
        nav = page.locator("[data-testid='stSidebarNav']")
        assert nav.get_by_role("link", name="Compare models").count() == 1  # app.py's titles, not file names
        assert page.url.rstrip("/").endswith(path)
        assert page.get_by_text("Traceback").count() == 0


def test_opening_any_page_loads_the_models_in_the_background(tmp_path) -> None:
    """A visitor reading Home: the server loads the models meanwhile, quietly, once, and scores nothing until
    Compare asks (scoring in the warm-up took both cores from a first live take); the pages use what it loaded."""
    log = tmp_path / "server.log"
    with (
        streamlit_server(env={"KWS_DATA_DIR": os.environ["KWS_DATA_DIR"]}, log_path=log) as url,
        chromium_page(viewport=LAPTOP) as page,
    ):
        page.goto(url)
        wait_for_app(page, RESULT_TIMEOUT_MS)
        for _ in range(RESULT_TIMEOUT_MS // 500):  # nothing but Home was asked for
            if "warm-up: models loaded" in log.read_text():
                break
            page.wait_for_timeout(500)
        text = log.read_text()
        assert text.count("warm-up: models loaded") == 1 and text.count("warm-up:") == 1, text
        assert "Thread 'kws-warm-up'" not in text  # its "missing ScriptRunContext" warnings are filtered
        open_try_it(page, url)
        page.get_by_role("button", name="Random test clip").click()
        page.get_by_text("True word:").wait_for(timeout=RESULT_TIMEOUT_MS)
        open_page(page, url, "Compare models", timeout_ms=RESULT_TIMEOUT_MS)
        page.get_by_text("test clips wrong").wait_for(timeout=RESULT_TIMEOUT_MS)
        assert page.get_by_text("Traceback").count() == 0
        assert log.read_text().count("warm-up:") == 1  # started once per server, not once per page
