"""Streamlit glue shared by the pages: cached resources and small display helpers.

Models are loaded once per server and model folder (``st.cache_resource``) and never changed after loading;
the key includes the folder's modification time, so a retrained set is picked up without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from kws import config, features, modelsets, store

logger = logging.getLogger(__name__)

#: The visitor's choice of model set: "app" (the shipped or retrained set in use) or "lecture". A plain session
#: key, set by the sidebar's radio (``_SWITCH_KEY``) when it changes, so a run that draws no sidebar keeps it.
SET_KEY = "model_set"
_SWITCH_KEY = "model_set_switch"
#: What the sidebar offers, in its order: the app's set, then the lecture's (where ``models/lecture`` ships).
SET_CHOICES: dict[str, str] = {"app": "Today's models", "lecture": "The lecture's models (as it trained them)"}


def active_models_dir() -> Path:
    """The folder this visitor's pages answer with: the lecture's set where they chose it in the sidebar, else
    the app's set (the shipped models or the retrained set in use). One visitor's choice moves no one else's."""
    if st.session_state.get(SET_KEY) == "lecture" and config.LECTURE_MODELS_DIR.is_dir():
        return config.LECTURE_MODELS_DIR
    return modelsets.active_models_dir()


def _set_chosen() -> None:
    st.session_state[SET_KEY] = st.session_state[_SWITCH_KEY]


def model_set_switch() -> None:
    """The sidebar's switch between today's models and the lecture's, where the lecture's set ships."""
    if not config.LECTURE_MODELS_DIR.is_dir():
        return
    choices = list(SET_CHOICES)
    current = st.session_state.get(SET_KEY, choices[0])
    st.radio(
        "Models",
        choices,
        index=choices.index(current) if current in choices else 0,
        format_func=SET_CHOICES.get,
        key=_SWITCH_KEY,
        on_change=_set_chosen,
        help="The lecture's five networks at its sizes on its 20 x 11 MFCC input, three words, no augmentation: "
        "see the perceptron miss and cnn2 learn its training clips by heart. Only your pages change.",
    )


def through_router() -> None:
    """Send a page opened by its own URL on a freshly started server through ``app.py``'s router.

    With a ``pages/`` folder beside ``app.py``, Streamlit 1.67 starts in its old folder-based mode and, until
    some session has run ``st.navigation``, runs a requested page file alone: no shared sidebar, no wide
    layout, file names as titles. Every page calls this first; in that mode it turns the flag off and reruns,
    and the rerun runs ``app.py``, which routes to the same URL. (``PagesManager`` is internal, hence the pin.)
    AppTest resets the flag before every run, as if each were a fresh server; rerunning there would swallow
    the widget event that started the run, so under AppTest pages keep running as they always have.
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not config.get_option("global.appTest"):
        PagesManager.uses_pages_directory = False
        st.rerun()


def _dir_stamp(models_dir: Path) -> float:
    return max((p.stat().st_mtime for p in models_dir.glob("*.json")), default=0.0)


@st.cache_resource(show_spinner="Loading the models…", max_entries=4)  # bounded: sets can be switched often
def _predictor(models_dir: str, stamp: float):
    from kws.inference import load_predictor

    return load_predictor(models_dir)


def get_predictor(models_dir: Path | None = None):
    """The predictor of ``models_dir``, by default this visitor's set (:func:`active_models_dir`), loaded once
    per server."""
    models_dir = models_dir or active_models_dir()
    return _predictor(str(models_dir), _dir_stamp(models_dir))


def warm_up() -> None:
    """Load the active models, and import what the first table needs (pandas, pyarrow), in the background, once
    per server, as soon as any page is opened.

    A page that needs them meanwhile waits for the same computation (Streamlit computes each cached value once)
    rather than starting its own. Scoring the test split is left to the first visit to Compare, which asks for it:
    done here it took both cores while the first visitor's live take needed them. Not under AppTest, where every
    run is a fresh server and a thread would outlive its test.
    """
    from streamlit import config

    if not config.get_option("global.appTest"):
        _warm_up_thread()


_WARM_UP_THREAD = "kws-warm-up"


def _not_from_warm_up(record: logging.LogRecord) -> bool:
    """Drop Streamlit's "missing ScriptRunContext" warning for the warm-up thread, which has no page by design
    (each cached call warned; the warning still tells when another thread calls ``st.*`` by mistake)."""
    return record.threadName != _WARM_UP_THREAD


@st.cache_resource(show_spinner=False)
def _warm_up_thread() -> threading.Thread:
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_not_from_warm_up)
    thread = threading.Thread(target=_warm_up, name=_WARM_UP_THREAD, daemon=True)
    thread.start()
    return thread


def _warm_up() -> None:
    from kws.dataset import DatasetMissingError

    start = time.monotonic()
    # the first table's import (st.dataframe: pandas and pyarrow, ~0.5 s) beside the models' loading
    threading.Thread(target=_import_tables, name=_WARM_UP_THREAD, daemon=True).start()
    try:
        get_predictor(modelsets.active_models_dir())  # the app's set: a thread has no visitor to ask
        logger.info("warm-up: models loaded in %.1f s", time.monotonic() - start)
    except (store.ModelStoreError, DatasetMissingError) as err:  # the page that needs them says so, in its place
        logger.info("warm-up stopped: %s", err)
    except Exception:
        logger.exception("warm-up failed; pages will load what they need themselves")


def _import_tables() -> None:
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401


def cannot_load(err: store.ModelStoreError) -> str:
    """The one sentence every page shows when the active set's models cannot be loaded."""
    return f"The models could not be loaded: {err}"


def predictor_problem() -> str | None:
    """Load the active set's predictor now (once per server), so the first word waits for nothing; or why it
    cannot be loaded, in one sentence for the page (a damaged model file once gave a traceback here)."""
    try:
        get_predictor()
    except store.ModelStoreError as err:
        return cannot_load(err)
    return None


def analyse(
    key: str, source: str, load: Callable[[], Any], true_word: str | None = None, spotted: list | None = None
) -> None:
    """Decode (``load`` gives a :class:`kws.audio.Clip`) and classify into ``st.session_state[key]``, with the
    words ``spotted`` during a live take, if it was spotted (:func:`live_spotting`).

    Bad input becomes one sentence for the user, kept there until the next clip; anything unexpected is logged
    for the server and shown as one sentence too, never as a traceback.
    """
    from kws.audio import AudioError

    try:
        prediction = get_predictor().predict_clip(load())
        st.session_state[key] = {
            "source": source,
            "prediction": prediction,
            "true_word": true_word,
            "spotted": spotted,
        }
    except AudioError as err:
        st.session_state[key] = {"source": source, "error": str(err)}
    except store.ModelStoreError as err:
        st.session_state[key] = {"source": source, "error": cannot_load(err)}
    except Exception:
        logger.exception("analysing %s failed", source)
        st.session_state[key] = {"source": source, "error": "Something went wrong analysing this clip."}


@st.cache_data(show_spinner=False)
def _model_table(models_dir: str, stamp: float) -> list[dict]:
    return [
        {
            "model": i.name,
            "architecture": i.meta["architecture"],
            "parameters": i.meta["params"],
            "labels": len(i.labels),
            "test accuracy": i.meta["test_accuracy"],
            "false accepts": (i.meta.get("open_world", {}).get("test") or {}).get("false_accept_rate"),
            "preset": features.label(i.meta["feature_settings"]),
        }
        for i in store.list_models(models_dir)
    ]


def model_table() -> list[dict]:
    """One row per model of the active set, from metadata alone (no TensorFlow needed)."""
    models_dir = active_models_dir()
    return _model_table(str(models_dir), _dir_stamp(models_dir))


def training_curves(histories: dict, key: str) -> None:
    """Accuracy and loss per epoch side by side, training solid and validation dashed, one colour per model: the
    same pair, in the same order, on the Compare page (saved curves) and the Retrain page (live ones)."""
    from kws.plots import training_curves as chart

    left, right = st.columns(2)
    left.plotly_chart(chart(histories, "accuracy"), key=f"{key}_accuracy")
    right.plotly_chart(chart(histories, "loss"), key=f"{key}_loss")


def model_sets(key: str) -> None:
    """The Retrain page's list of model sets, a switcher and "restore the previous set"; widget keys start with
    ``key``, and ``st.session_state[f"{key}_note"]`` carries a one-off message across the rerun a switch needs."""
    from kws import modelsets

    note_key = f"{key}_note"
    st.subheader("Model sets")
    if st.session_state.get(note_key):
        st.success(st.session_state[note_key])
        st.session_state[note_key] = None
    sets = modelsets.list_sets()
    percent = st.column_config.NumberColumn(  # as every other table; a short title: the table fits a laptop
        "test accuracy", format="percent", help="The mean of the set's models' accuracy on the test split"
    )
    st.dataframe(modelsets.set_rows(sets), hide_index=True, column_config={"mean test accuracy": percent})
    # ModelStoreError: e.g. the set was deleted since the list was drawn
    switch = ("Use this set", modelsets.adopt, "The app now uses `{}`.", (ValueError, store.ModelStoreError))
    _on_a_set("Switch the app to", [s.name for s in sets], *switch, f"{key}_choice", f"{key}_switch", note_key)
    previous = modelsets.previous_set()
    if previous and st.button(f"Restore the previous set ({previous})", key=f"{key}_restore"):
        st.session_state[note_key] = f"Restored `{modelsets.restore_previous()}`."
        st.rerun()
    deletable = [s.name for s in sets if s.name != modelsets.SHIPPED and not s.active]
    if deletable:
        with st.expander("Delete a retrained set"):
            # ValueError: e.g. someone switched the app to it meanwhile
            delete = ("Delete it for good", modelsets.delete, "Deleted `{}`.", (ValueError,))
            _on_a_set("Set", deletable, *delete, f"{key}_doomed", f"{key}_delete", note_key)


def _on_a_set(
    label: str,
    names: list[str],
    button: str,
    act: Callable[[str], Any],
    done: str,
    errors: tuple[type[Exception], ...],
    choice_key: str,
    button_key: str,
    note_key: str,
) -> None:
    """A set picker and a button that does ``act`` to the chosen set: on success a note (``done`` with the set's
    name) for the rerun it takes, else the error's one sentence on the page."""
    choice = st.selectbox(label, names, index=None, placeholder="choose a set", key=choice_key)
    if st.button(button, disabled=choice is None, key=button_key):
        try:
            act(choice)
            st.session_state[note_key] = done.format(choice)
            st.rerun()
        except errors as err:
            st.error(str(err))


def new_vs_current(new_set: str) -> None:
    """The Retrain page's table of a finished run's models beside the same-named ones it is compared with, in
    the Compare page's titles and formats (percentages, separators, whole seconds)."""
    from kws import modelsets

    rows = modelsets.compare_rows(new_set, modelsets.comparison_baseline(new_set))
    st.dataframe(rows, hide_index=True, column_config=comparison_columns(rows))


@st.cache_resource
def training_manager():
    """The server's one background-training manager (Retrain page): shared by every session and rerun."""
    from kws.jobs import TrainingManager

    return TrainingManager()


@st.cache_data(show_spinner=False)
def _example_clips(directory: str, data_stamp: float) -> list:
    from kws.examples import split_examples

    return split_examples(directory, "test")


def example_clips() -> list:
    """Test-split clips for "Try an example" (indexed once per dataset folder); ``[]`` when there is no dataset."""
    from kws.config import data_dir
    from kws.dataset import DatasetMissingError

    try:
        return _example_clips(str(data_dir()), _data_stamp(data_dir()))
    except DatasetMissingError:
        return []


def is_new_file(upload, key: str) -> bool:
    """True once per newly given file (upload or recording), so a rerun does not analyse the same file again.

    ``key`` is a session-state key of the calling page (e.g. ``tryit_upload_seen``) that remembers the file id.
    """
    seen = None if upload is None else upload.file_id
    new = upload is not None and st.session_state.get(key) != seen
    st.session_state[key] = seen
    return new


#: Width in pixels of one model's card (Try it) or chart (Compare's confusion matrices). Six equal columns left
#: ~110 px each on a 1,366-px screen (145 px on a 1,600-px one), narrower than the 150 px a Plotly chart draws at,
#: so the bars were cut off (the winning word's among them).
CARD_WIDTH = 220
_GAP_PX = 16  # Streamlit's "small" gap (1rem)


def _below_width(key: str, rules: dict[int, str]) -> None:
    """The app's CSS: for the keyed container ``key``, each rule of ``rules`` applies where the container (not
    the window) is narrower than its width in px; ``{item}`` in a rule stands for each of the row's children.

    It aims at the row's own ``st-key-<key>`` class, Streamlit's documented hook for styling a keyed container,
    and ``st.html`` of a ``<style>`` alone takes no room on the page.
    """
    row = f".st-key-{key}"
    item = f"{row} > [data-testid='stLayoutWrapper']"
    queries = "".join(f"@container (max-width: {px - 1}px) {{{rule.format(item=item)}}}" for px, rule in rules.items())
    st.html(f"<style>{row} {{container-type: inline-size}}{queries}</style>")


def in_groups(items: list, render: Callable[[Any], None], key: str, per_group: int = 3, border: bool = True) -> None:
    """``render(item)`` in fixed-width cards, side by side, in groups of ``per_group`` that wrap as a whole.

    Six cards stand in one row where the page is wide enough and in two rows of three where it is not, never
    four and two: each group is one fixed-width block of the outer, wrapping row. Where the page is narrower
    than one group (1,024 px with the sidebar open leaves 562 px for 696), the groups dissolve and the cards
    flow two by two: a group wrapping inside itself gave rows of 2, 1, 2, 1. That is CSS (the groups become
    ``display: contents`` under a container query on the row's ``st-key-<key>`` class), as in :func:`boxes`.
    """
    group_width = per_group * CARD_WIDTH + (per_group - 1) * _GAP_PX + 4  # +4: rounding must not wrap a group
    _below_width(key, {group_width: "{item}, {item} > [data-testid='stHorizontalBlock'] {{display: contents}}"})
    with st.container(horizontal=True, gap="small", key=key):
        for start in range(0, len(items), per_group):
            with st.container(horizontal=True, gap="small", width=group_width):
                for item in items[start : start + per_group]:
                    with st.container(border=border, width=CARD_WIDTH, height="stretch"):
                        render(item)


#: Below this width a row of :func:`boxes` goes two per row, and below :data:`ONE_PER_ROW_PX` one per row.
TWO_PER_ROW_PX = 1000
ONE_PER_ROW_PX = 520


def boxes(key: str, count: int) -> list:
    """``count`` bordered boxes of equal width: all in one row where the page has room (1,000 px and more), two
    per row below that, one per row below 520 px.

    ``st.columns`` squeezes columns until the window is under 640 px: Try it's four boxes were 130 px wide at
    1,024 px with the sidebar open, with their buttons cut off, and 213 px on a 1,366-px laptop, with the spotting
    switch's label cut. Streamlit has no option for "wrap below a width", so the rule is CSS aimed at the row's
    own ``st-key-<key>`` class (Streamlit's documented hook for styling a keyed container): a container query, so
    it follows the width the page really has, sidebar open or closed, not the window's.
    """
    _below_width(key, {TWO_PER_ROW_PX: "{item} {{flex: 1 1 40%}}", ONE_PER_ROW_PX: "{item} {{flex: 1 1 100%}}"})
    with st.container(horizontal=True, key=key):
        return [st.container(border=True, height="stretch") for _ in range(count)]


def live_status(state: str, spotting: bool) -> None:
    """What the live microphone box says: how to use it, or that it is listening (and for what)."""
    if state != "listening":
        st.caption("Press START, wait for *listening*, say one word, press STOP.")
    elif spotting:
        st.info("Listening… say words a second or more apart, then press STOP.", icon=":material/graphic_eq:")
    else:
        st.info("Listening… say one word, then press STOP.", icon=":material/graphic_eq:")


def live_spotting(buffer, on: bool, key: str) -> list | None:
    """While ``on``: the words spotted in the running take, newest first, looked for twice a second.

    On the first run not ``on`` (STOP pressed, or the switch turned off), the looks still due, and one at the very
    end, catch a word finished since the last one; the take's :class:`kws.spotter.Spotter` is dropped (the next
    take starts with none, its clock restarted), and its words are returned, for the result view; ``None`` when no
    take was spotted.
    """
    if on:
        _spotting(buffer, key)
        return None
    spotter = st.session_state.pop(key, None)
    if spotter is None:
        return None
    _feed(spotter, buffer, final=True)
    return spotter.spotted


def _feed(spotter, buffer, final: bool = False) -> None:
    from kws.spotter import FEED_SECONDS

    if (recent := buffer.recent(FEED_SECONDS)) is not None:
        spotter.feed(get_predictor(), *recent, final=final)


@st.fragment(run_every=0.5)
def _spotting(buffer, key: str) -> None:
    from kws.spotter import Spotter

    spotter = st.session_state.setdefault(key, Spotter())
    _feed(spotter, buffer)
    if not spotter.spotted:
        st.caption("No word yet: say bed, happy or cat, a second or more apart.")
        return
    # one element for the list: one per word left the older lines blank for a moment as a new word arrived
    lines = [f"**{s.word}** · at {s.at_s:.1f} s · {s.votes} of {s.models} models" for s in spotter.spotted[-6:]]
    st.markdown("  \n".join(reversed(lines)))


def spotted_line(spotted: list) -> str:
    """The words a spotted take held, in order, for the result view."""
    if not spotted:
        return "Spotted as you spoke: no word (say each a second or more apart, and finish before STOP)."
    words = ", ".join(f"**{s.word}** at {s.at_s:.1f} s" for s in spotted)
    return f"Spotted as you spoke, {len(spotted)} word{'s' * (len(spotted) != 1)}: {words}."


def in_recording(result: dict) -> list:
    """The spotted words that lie in the recording: spotting goes on past its 30-s cap, the recording does not."""
    duration = result["prediction"].clip.duration
    return [s for s in result["spotted"] or [] if s.end_s <= duration + 0.05]


def spotted_view(result: dict, key: str):
    """The prediction the result view shows: for a spotted take with words, a choice between the loudest second
    (what a take is answered on) and each spotted word's own second, answered by every model on demand.

    A word whose second is the loudest one is offered once, as "cat at 0.3 s (the loudest)", and a take whose only
    word is the loudest offers no choice: "the loudest second" beside that word named the same second twice.
    """
    from kws.spotter import SAME_WORD_SECONDS  # the spotter's own rule for "the same word"

    prediction, spotted = result["prediction"], in_recording(result)
    start = prediction.window.start_s
    loudest = next((i for i, s in enumerate(spotted) if abs(s.at_s - start) < SAME_WORD_SECONDS), None)
    choices: list[int | None] = ([] if loudest is not None else [None]) + list(range(len(spotted)))  # None: loudest
    if len(choices) < 2:
        return prediction

    # the choice is an index into this take's words: a new take (other words) starts again from the loudest second
    words = tuple((s.word, round(s.at_s, 2)) for s in spotted)
    if st.session_state.get(f"{key}_words") != words:
        st.session_state.pop(key, None)
        st.session_state[f"{key}_words"] = words

    def name(i: int | None) -> str:
        if i is None:
            return "the loudest second"
        return f"{spotted[i].word} at {spotted[i].at_s:.1f} s" + (" (the loudest)" if i == loudest else "")

    chosen = st.radio(
        "Show the models' answers for",
        choices,
        index=choices.index(loudest),
        format_func=name,
        key=key,
        horizontal=True,
    )
    if chosen is None or chosen == loudest:
        return prediction
    said, views = spotted[chosen], result.setdefault("views", {})
    if chosen not in views:
        views[chosen] = get_predictor().predict_span(prediction.clip, said.at_s, said.end_s)
    return views[chosen]


def players(clip, window) -> None:
    """The recording and, where it is longer than what the models hear, that window alone.

    In a take of several seconds, hearing which second was picked explains an answer that the whole take
    does not (a cough chosen over the word, say).
    """
    from kws.audio import to_wav_bytes

    whole = to_wav_bytes(clip.samples)
    if clip.duration <= window.end_s - window.start_s + 0.05:
        st.audio(whole, format="audio/wav")
        return
    left, right = st.columns(2)
    left.caption(f"The whole recording ({clip.duration:.1f} s)")
    left.audio(whole, format="audio/wav")
    right.caption(f"What the models hear: {window.start_s:.2f}–{window.end_s:.2f} s")
    right.audio(to_wav_bytes(window.samples), format="audio/wav")


#: The noise control's choices: off, then 30 dB (barely audible) down to -5 dB (noise louder than the word).
NOISE_SNRS: tuple[str | int, ...] = ("off", *range(30, -10, -5))


@st.cache_data(show_spinner="Sorting the background noise…")
def _noise_bank(noise_dir: str, stamp: float) -> dict[str, list[Path]]:
    from kws import noise

    return noise.by_kind(noise.noise_clips(Path(noise_dir).parent))


def _noisy(result: dict, prediction, snr: int, kind: str, bank: dict[str, list[Path]]) -> dict:
    """The noisy clip's prediction and the line that says how it was made, for ``(snr, kind)`` on the shown
    view (the loudest second or a spotted word's): made once, then kept in ``result["noisy"]``."""
    import zlib
    from dataclasses import replace

    import numpy as np

    from kws import noise

    made = result.setdefault("noisy", {})
    cache_key = (snr, kind, prediction.window.start_s)
    if cache_key in made:
        return made[cache_key]
    # seeded by the kind and the clip: reruns and other SNRs keep the same noise, another clip draws afresh
    rng = np.random.default_rng(zlib.crc32(f"{kind}|{result['source']}".encode()))
    pool = [p for clips in bank.values() for p in clips] if kind == noise.RANDOM else bank[kind]
    clip, window = prediction.clip, prediction.window
    path = noise.choose(sorted(pool), rng)
    rate = clip.sample_rate
    span = (round(window.start_s * rate), round(window.end_s * rate))  # the clean clip's heard second
    try:
        mix = noise.mix_at_snr(clip.samples, noise.read_noise(path), snr, rng, span=span)
    except noise.NoiseError as err:
        made[cache_key] = {"prediction": None, "line": str(err)}
        return made[cache_key]
    noisy = replace(clip, samples=mix.samples, notices=())
    if prediction is result["prediction"]:
        answered = get_predictor().predict_clip(noisy)
    else:  # a spotted word's second: answer the same stretch of the noisy take
        answered = get_predictor().predict_span(noisy, window.start_s, window.end_s)
    named = next(k for k, clips in bank.items() if path in clips)
    line = (
        f"Noise: `{noise.NOISE_FOLDER}/{path.name}` ({named}) at **{snr} dB** SNR over the second the models hear"
        f" · all {len(answered.answers)} models again in {answered.elapsed_ms:.1f} ms"
    )
    if mix.scaled_down:
        line += f" · the mix went past full scale, so all of it was turned down {-20 * np.log10(mix.scale):.1f} dB"
    made[cache_key] = {"prediction": answered, "line": line}
    return made[cache_key]


def noise_control(result: dict, prediction, right: dict[str, bool] | None, key: str) -> tuple:
    """Try it's noise control: real background noise mixed into the shown clip at a chosen SNR
    (:mod:`kws.noise`), every model answering again; returns the prediction and grades the cards then show (the
    noisy ones while noise is on, else those given).

    Widgets are keyed ``{key}_snr`` and ``{key}_kind``. Without the dataset's noise folder the control is one
    line saying where noise would come from; a clip with no speech has nothing for noise to cover, and says so.
    """
    from kws import noise, pictures, plots
    from kws.config import data_dir
    from kws.examples import graded

    st.markdown("**:material/noise_aware: Add background noise**")
    folder = noise.noise_folder(data_dir())
    bank = _noise_bank(str(folder), folder.stat().st_mtime) if folder.is_dir() else {}
    if not bank:
        st.caption(f"Background noise comes from the dataset's `{noise.NOISE_FOLDER}` folder, not found at {folder}.")
        return prediction, right
    if not prediction.window.has_speech:
        st.caption("No speech in this clip, so there is nothing for noise to cover.")
        return prediction, right
    left, middle = st.columns([3, 1])
    snr = left.select_slider(
        "Signal-to-noise ratio (speech over noise, in the second the models hear)",
        NOISE_SNRS,
        value="off",
        format_func=lambda v: v if isinstance(v, str) else f"{v} dB",
        key=f"{key}_snr",
    )
    kind = middle.selectbox("Noise", [noise.RANDOM, *bank], key=f"{key}_kind")
    if snr == "off":
        return prediction, right
    made = _noisy(result, prediction, int(snr), kind, bank)
    noisy = made["prediction"]
    if noisy is None:
        st.caption(made["line"])
        return prediction, right
    st.caption(made["line"])
    kept = sum(a.word == b.word for a, b in zip(noisy.answers, prediction.answers)) if not noisy.no_speech else 0
    st.markdown(
        f"With noise: **{noisy.summary}** · {kept} of {len(noisy.answers)} models keep their answer "
        f"(without noise: {prediction.summary}) · the cards below answer the noisy clip"
    )
    if noisy.no_speech:
        st.caption(noisy.no_speech_reason)
    wave, spectrum = st.columns(2)
    heard = (noisy.window.start_s, noisy.window.end_s)
    wave.plotly_chart(plots.waveform(noisy.clip.samples, noisy.clip.sample_rate, heard, title="Waveform with noise"))
    spectrum.image(pictures.mfcc_picture(noisy.features, noisy.feature_settings, "MFCC with noise"), width="stretch")
    players(noisy.clip, noisy.window)
    true_word = result.get("true_word")
    return noisy, (graded(noisy, true_word) if true_word else right)


def model_cards(prediction, right: dict[str, bool] | None, key: str) -> None:
    """Every model's card for ``prediction`` (marked right or wrong where the true word is known)."""
    in_groups(
        prediction.answers,
        lambda a: model_card(a, prediction.no_speech, None if right is None else right[a.name]),
        key=key,
    )


def listened_view(prediction, key: str) -> None:
    """The "What each model listened to" view, behind a switch: every model's occlusion map on one colour scale
    (:func:`kws.explain.occlusion_maps`), then the first convolution's feature maps of a chosen CNN.

    The maps cost ~70 ms of both cores per clip (``bench/occlusion.py``), so they are made only once the switch is on, and kept for the
    prediction they explain (``st.session_state[f"{key}_maps"]``): reruns for other widgets, ten users' worth,
    cost nothing, and a new clip or a spotted word's second gets its own.
    """
    from kws import explain, plots

    if not st.toggle(
        "What each model listened to",
        key=key,
        help="Silences each patch of the clip's picture in turn and shows how much each model's answer drops.",
    ):
        return
    predictor = get_predictor()
    names = [a.name for a in prediction.answers]
    if names != predictor.names:
        st.info("The models changed since this answer: give the clip again to see what they listened to.")
        return
    cached = st.session_state.get(f"{key}_maps")
    if cached is None or cached[0] is not prediction:  # the prediction itself, not its id: ids are reused
        with st.spinner("Silencing the clip patch by patch…"):
            cached = (prediction, explain.occlusion_maps(predictor, prediction))
        st.session_state[f"{key}_maps"] = cached
    maps = cached[1]
    z_range = explain.shared_range(maps)
    st.caption(
        f"Red: where silencing a patch ({explain.PATCH_SECONDS:.1f} s by {explain.PATCH_BANDS} mel bands) lowered "
        "the probability of the word that model named, and by how much; blue: where it raised it; one colour scale "
        "for every model. Each map is the second the models heard (shaded on the waveform), so nothing more is "
        "marked; the perceptron hears it centred on its loudness."
    )
    words = dict(zip(names, (a.word for a in prediction.answers)))
    for start in range(0, len(predictor.models), 3):
        for column, model in zip(st.columns(3), predictor.models[start : start + 3]):
            feats = explain.heard(predictor, prediction, model.settings)
            title = f"{model.name}: {words[model.name]}"
            column.plotly_chart(plots.occlusion_heatmap(maps[model.name], feats, model.settings, title, z_range))
    _first_convolution(predictor, prediction, key)


@st.cache_resource(show_spinner=False, max_entries=4)
def _convolution_runners(models_dir: str, stamp: float) -> dict:
    """The CNNs' debugging interpreters (:func:`kws.explain.convolution_runners`), made once per model set."""
    from kws import explain

    return explain.convolution_runners(_predictor(models_dir, stamp).models)


def _first_convolution(predictor, prediction, key: str) -> None:
    """The strongest channels of a chosen CNN's first convolution on this clip, read from its ``.tflite`` file."""
    from kws import explain, plots

    models_dir = active_models_dir()
    runners = _convolution_runners(str(models_dir), _dir_stamp(models_dir))
    if not runners:
        return
    name = st.selectbox("First convolution of", list(runners), key=f"{key}_conv", help="Its 8 busiest channels")
    model = next(m for m in predictor.models if m.name == name)
    maps = runners[name].first_convolution(explain.heard(predictor, prediction, model.settings)[None])
    channels = explain.strongest_channels(maps)
    title = f"{name}: first convolution, its {len(channels)} busiest of {maps.shape[-1]} channels"
    st.plotly_chart(plots.feature_maps(maps, channels, model.settings, title))


def model_card(answer, no_speech: bool, correct: bool | None = None) -> None:
    """One model's answer: word, confidence, probabilities on the shared 0-1 scale, architecture, latency, size.

    With no speech detected the word and bars are withheld: a model always picks some label, which would
    read as a claim that a word was heard. The probabilities are progress bars, not a chart: six charts per answer
    were most of what a browser drew for it, and ten people answering at once on one machine waited for that.
    """
    # Material icons come with Streamlit's own font: they render even where the system has no emoji font
    mark = "" if correct is None else (" :green[:material/check_circle:]" if correct else " :red[:material/cancel:]")
    st.markdown(f"**{answer.name}**{mark}")
    if no_speech:
        st.metric("predicted", "—", help="No word is named: see why above the cards.")
    else:
        flag = "low confidence" if answer.low_confidence else None
        st.metric("predicted", answer.word, delta=flag, delta_color="orange", delta_arrow="off")
        st.markdown(f"confidence **{answer.confidence:.0%}**")
        with st.container(key=f"ui_bars_{answer.name}", gap="small"):
            for label, p in answer.probabilities.items():
                st.progress(min(max(p, 0.0), 1.0), text=f"{label} {p:.0%}")
    # the architecture last: "CNN, two convolutions + dropout" takes two lines, and above the word it put that
    # card's word a line lower than its neighbours'
    st.caption(f"{answer.architecture}  \n{answer.latency_ms:.1f} ms · {answer.params:,} parameters")


def model_downloads(infos: list[store.ModelInfo], key: str) -> None:
    """Download buttons for one chosen model's files and for the whole set as a zip; the bytes are read only when
    a button is pressed, and pressing one does not rerun the page."""
    name = st.selectbox("Model", [i.name for i in infos], key=f"{key}_model")
    info = next(i for i in infos if i.name == name)
    files = store.model_files(info)
    with st.container(horizontal=True):
        for kind, path in files.items():
            size = path.stat().st_size / 1024
            st.download_button(
                f"{kind} ({size:,.0f} KB)",
                data=lambda path=path: path.read_bytes(),
                file_name=path.name,
                mime="application/octet-stream",
                on_click="ignore",
                key=f"{key}_{name}_{kind}",
            )
        st.download_button(
            f"Whole set, {len(infos)} models (.zip)",
            data=lambda: store.set_archive(infos),
            file_name="keyword-studio-models.zip",
            mime="application/zip",
            on_click="ignore",
            type="primary",
            key=f"{key}_set",
        )


# --- Compare and Dataset pages: cached on the model folder's and the dataset's modification times ----------


def _data_stamp(data_dir: Path) -> float:
    """Adding or removing clips changes a word folder's mtime, so this key notices a changed dataset."""
    if not data_dir.is_dir():
        return 0.0
    return max((p.stat().st_mtime for p in data_dir.iterdir() if p.is_dir()), default=0.0)


@st.cache_data(show_spinner=False)
def _model_infos(models_dir: str, stamp: float) -> list[store.ModelInfo]:
    return store.list_models(models_dir)


def model_infos() -> list[store.ModelInfo]:
    """Every model of the active set with its metadata (no model is loaded)."""
    models_dir = active_models_dir()
    return _model_infos(str(models_dir), _dir_stamp(models_dir))


def comparison_columns(rows: list[dict]) -> dict:
    """Titles and number formats in ``st.dataframe`` for rows keyed like :func:`kws.insights.comparison_rows`
    (the Compare table, and :func:`kws.modelsets.compare_rows` on the Retrain page)."""
    from kws.insights import column_help, column_title

    keys = list(rows[0]) if rows else []
    formats = {"params": "localized", "latency_ms": "%.1f", "train_s": "%.0f"}
    rates = ("accuracy", "keyword_accuracy", "false_accept_rate", "false_reject_rate")
    formats |= {k: "percent" for k in keys if k in rates or k.startswith("acc_")}
    config: dict = {}
    for k in keys:
        label, tip = column_title(k), column_help(k)
        if k == "model":
            config[k] = st.column_config.TextColumn(label, pinned=True)
        elif k in formats:
            config[k] = st.column_config.NumberColumn(label, help=tip, format=formats[k])
        else:
            config[k] = st.column_config.Column(label, help=tip)
    return config


def latencies() -> tuple[dict[str, float], str]:
    """Median latency per clip of each active model, and what it was measured on: the predictor's own timing,
    made as it loaded (:attr:`kws.inference.Predictor.latency_ms`), so Compare times nothing again (timing nine
    test clips there took 0.3 s of its first visit)."""
    return get_predictor().latency_ms, (
        "a synthetic one-second clip as the models loaded (15 calls each; the cost does not depend on what is said)"
    )


@st.cache_data(show_spinner="Scoring every model on the test split…")
def _evaluation(models_dir: str, stamp: float, data_dir: str, data_stamp: float, split: str):
    from kws.evaluate import evaluate

    # the cached predictor's models: loading and compiling all six again cost seconds more per set
    return evaluate(models_dir, data_dir, split, models=_predictor(models_dir, stamp).models)


def det_view(key: str) -> None:
    """Every model's DET curve on the test split on one chart, the app's operating point marked on each; a
    caption instead where there is no dataset or the models cannot load (the page's last part says why)."""
    from kws import plots
    from kws.config import LOW_CONFIDENCE
    from kws.dataset import DatasetMissingError

    try:
        result = evaluation("test")
    except (DatasetMissingError, store.ModelStoreError):
        st.caption("The curves need the test split and loadable models: see below.")
        return
    if not any(s.other_clips and s.keyword_clips for s in result.open.values()):
        st.info("The test split holds no clips of other words or noise, so there are no false accepts to count.")
        return
    curves = {name: result.det(name) for name in result.predictions}
    st.plotly_chart(plots.det_chart(curves, LOW_CONFIDENCE), key=key)
    first = next(iter(result.open.values()))
    st.caption(
        f"Each line moves the confidence a keyword answer needs from 0 to 100%: {first.other_clips:,} test clips "
        f"of other words and noise give the false accepts, {first.keyword_clips:,} keyword clips the false "
        f"rejects (answered other, or not sure). Dots: the app's operating point, {LOW_CONFIDENCE:.0%}. Lower "
        "left is better; a three-label model cannot answer other, so it starts at 100% false accepts."
    )


def evaluation(split: str = "test"):
    """Every active model's predictions on a split (:class:`kws.evaluate.Evaluation`); raises DatasetMissingError."""
    from kws.config import data_dir

    models_dir, data = active_models_dir(), data_dir()
    return _evaluation(str(models_dir), _dir_stamp(models_dir), str(data), _data_stamp(data), split)


@st.cache_data(show_spinner="Reading every clip of the dataset…")
def _dataset_stats(data_dir: str, data_stamp: float):
    from kws.insights import dataset_stats

    return dataset_stats(data_dir)


def dataset_stats():
    """Durations, loudness, words, speakers and splits of every clip (:class:`kws.insights.DatasetStats`)."""
    from kws.config import data_dir

    return _dataset_stats(str(data_dir()), _data_stamp(data_dir()))


@st.cache_data(show_spinner=False)
def _dataset_items(data_dir: str, data_stamp: float):
    from kws.dataset import scan

    return scan(data_dir, other=True)


def dataset_items():
    """Every clip of the dataset with its word, speaker and split; raises DatasetMissingError."""
    from kws.config import data_dir

    return _dataset_items(str(data_dir()), _data_stamp(data_dir()))


# --- Compare page: robustness to background noise -------------------------------------------------------------


def _robustness_chart(result: dict, key: str) -> None:
    from kws import plots

    st.plotly_chart(plots.robustness_lines(result["snrs"], result["accuracy"]), key=f"{key}_chart")
    accepts = {name: row for name, row in result.get("false_accepts", {}).items() if any(v is not None for v in row)}
    if accepts:  # a test split without other words has no false accepts to draw
        title, y_title = "False accepts against background noise", "other clips named as a keyword"
        st.plotly_chart(plots.robustness_lines(result["snrs"], accepts, title, y_title), key=f"{key}_accepts")
    others = f" and {result['other_clips']} of other words and noise" if result.get("other_clips") else ""
    st.caption(
        f"{result['clips']} keyword test clips{others}, each mixed with one of {result['noise_clips']} clips of the dataset's "
        f"`_background_noise_` folder (drawn with seed {result['seed']}; same clip and offset at every level), the "
        "SNR measured over the second the models hear. 0 dB: the noise is as loud as the word."
    )


@st.cache_data(show_spinner=False, max_entries=8)
def _robustness_target(
    models_dir: str, stamp: float, data_dir: str, data_stamp: float, noise_stamp: float
) -> tuple[str, float]:
    """Where the active set's robustness result is stored, and about how long measuring it takes: both read the
    dataset's test split, the noise folder's 408 clips and the set's JSONs (~0.2 s), so once per state of them,
    not on every rerun of Compare or every poll of the progress."""
    from kws import robustness

    return str(robustness.result_path(models_dir, data_dir)), robustness.estimate_seconds(models_dir, data_dir)


def _robustness_key() -> tuple[Path, float]:
    from kws.config import data_dir
    from kws.noise import noise_folder

    models_dir, data = active_models_dir(), data_dir()
    noise = noise_folder(data)
    path, seconds = _robustness_target(
        str(models_dir),
        _dir_stamp(models_dir),
        str(data),
        _data_stamp(data),
        noise.stat().st_mtime if noise.is_dir() else 0.0,
    )
    return Path(path), seconds


def robustness_view(key: str) -> None:
    """The stored robustness chart of the active set at once; else a button that measures it in a background
    thread (:func:`kws.robustness.start`) and a fragment that shows its progress, then the chart."""
    from kws import robustness
    from kws.config import data_dir
    from kws.dataset import DatasetMissingError, missing_message

    data = data_dir()
    try:
        path, seconds = _robustness_key()
    except DatasetMissingError as err:
        st.info(missing_message(data) if not (data / "bed").is_dir() else str(err))
        return
    result = robustness.read(path)
    if result is not None:
        _robustness_chart(result, key)
        return
    if robustness.job(path) is None:
        if not st.button(f"Measure (about {seconds:.0f} s)", key=f"{key}_measure"):
            st.caption("Every model on every test clip, clean and with noise at 30 dB down to -5 dB SNR.")
            return
        robustness.start(active_models_dir(), data)
    _robustness_progress(key)


@st.fragment(run_every=1.0)
def _robustness_progress(key: str) -> None:
    """Reruns every second (the page around it does not) until the job has a result or an error."""
    from kws import robustness

    path, _ = _robustness_key()
    job = robustness.job(path)
    if job is None:
        return
    if job.error is not None:
        st.warning(f"Measuring failed: {job.error}")
    elif robustness.read(path) is not None:
        st.rerun()  # the whole page, which now draws the stored result: this fragment stops polling
    elif job.result is not None:  # done, but it could not be stored
        _robustness_chart(job.result, key)
    else:
        st.progress(job.fraction, text=f"Mixing noise into the test clips… {job.fraction:.0%}")
