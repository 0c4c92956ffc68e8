"""Live spotting on Try it: the words found while a take runs, and the choice between them in its result."""

from __future__ import annotations

import streamlit as st

from kws.ui import state


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
        spotter.feed(state.get_predictor(), *recent, final=final)


@st.fragment(run_every=0.5)
def _spotting(buffer, key: str) -> None:
    from kws.spotter import Spotter

    spotter = st.session_state.setdefault(key, Spotter())
    _feed(spotter, buffer)
    if not spotter.spotted:
        st.caption("No word yet: say bed, happy or cat, a second or more apart.")
        return
    # one element for the list: one per word would blank the older lines for a moment as a new word arrives
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
        views[chosen] = state.get_predictor().predict_span(prediction.clip, said.at_s, said.end_s)
    return views[chosen]
