"""The Retrain page in a real headless Chromium: start a tiny run and watch the live curves appear.

Serves the app with ``streamlit run`` (``KWS_RUNS_DIR`` in a temporary folder, ``KWS_TRAIN_LIMIT=6``), so the
run takes seconds and nothing touches the real ``runs/`` or ``models/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser_util import chromium_page, requires_browser, streamlit_server, tables_scrolled, wait_for_app

from kws import modelsets

pytestmark = [pytest.mark.browser, pytest.mark.slow, requires_browser]


def test_a_tiny_run_draws_live_curves_and_ends_with_the_comparison(tmp_path: Path, data_dir: Path) -> None:
    runs = tmp_path / "runs"
    env = {"KWS_RUNS_DIR": str(runs), "KWS_TRAIN_LIMIT": "6", "KWS_DATA_DIR": str(data_dir)}
    with streamlit_server(env=env, log_path=tmp_path / "server.log") as url, chromium_page() as page:
        page.goto(url)  # through the router, as a user would (a fresh server's first deep link skips it)
        wait_for_app(page)
        page.locator("[data-testid='stSidebarNav']").get_by_text("Retrain").click()
        page.get_by_text("Retrain the models").wait_for()
        wait_for_app(page)
        page.get_by_text("Expected time").wait_for()
        epochs = page.get_by_label("Epochs (at most)")
        epochs.fill("3")
        epochs.press("Enter")
        wait_for_app(page)
        page.get_by_role("button", name="Start training").click()

        # live: the progress bar, then both charts with a line per model as epochs finish
        page.get_by_role("button", name="Cancel training").wait_for(timeout=60_000)
        page.locator("[data-testid='stProgress']").first.wait_for()
        page.locator(".js-plotly-plot .legendtext", has_text="perceptron (train)").first.wait_for(timeout=120_000)
        page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
        # the fragment redraws both charts every second, and a tiny run may end meanwhile (the page then reruns
        # into the results view): under CI's load one read found two "Training loss" titles in passing, so wait
        # for both titles to stand together rather than reading once
        page.wait_for_function(
            """() => {
                const titles = [...document.querySelectorAll(".js-plotly-plot .gtitle")].map(t => t.textContent);
                return titles.includes("Training loss") && titles.includes("Training accuracy");
            }""",
            timeout=30_000,
        )

        page.get_by_text("New models vs the ones in use").wait_for(timeout=180_000)
        page.get_by_role("button", name="Use these models").click()
        page.get_by_text("The app uses these models.").wait_for()
        page.get_by_role("button", name="Restore the previous set (shipped)").wait_for()
        wait_for_app(page)
        page.screenshot(path=str(tmp_path / "retrain.png"), full_page=True)
        page.set_viewport_size({"width": 1366, "height": 900})  # a laptop: both tables show all their columns
        page.wait_for_timeout(500)
        assert tables_scrolled(page) == []

    # the server process switched the app to the new set, in the temporary runs folder only
    active = json.loads((runs / modelsets.ACTIVE_FILE).read_text())["set"]
    assert modelsets.SET_NAME.match(active) and (runs / active / "perceptron.keras").is_file()
