"""Which model set answers: the sidebar's switch between today's models and the lecture's, and the Retrain
page's list of sets with switching, restoring and deleting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from kws import config, store
from kws.ui import compare, state

_SWITCH_KEY = "model_set_switch"


#: What the sidebar offers, in its order: the app's set, then the lecture's (where ``models/lecture`` ships).
SET_CHOICES: dict[str, str] = {"app": "Today's models", "lecture": "The lecture's models (as it trained them)"}


def _set_chosen() -> None:
    st.session_state[state.SET_KEY] = st.session_state[_SWITCH_KEY]


def model_set_switch() -> None:
    """The sidebar's switch between today's models and the lecture's, where the lecture's set ships."""
    if not config.LECTURE_MODELS_DIR.is_dir():
        return
    choices = list(SET_CHOICES)
    current = st.session_state.get(state.SET_KEY, choices[0])
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
    st.dataframe(rows, hide_index=True, column_config=compare.comparison_columns(rows))
