"""The Retrain page's widgets: one per training option, built from its :class:`~kws.options.Option`.

Each widget's label, starting value, range and choices come from the option (``kws.options``), and its session key
is ``retrain_<key>``; the kind of widget follows from the option: several choices are pills, one of a few
choices a radio, stops a slider, a switch a toggle, a number a number box.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from kws.options import OPTIONS, Option


def widget(spec: Option) -> Any:
    """Draw ``spec``'s widget in the current container; returns the value chosen."""
    w = spec.widget
    if w is None:
        raise ValueError(f"the option {spec.name!r} has no widget on the Retrain page")
    key, value = f"retrain_{w.key}", spec.page_default
    describe = w.names.get if w.names else str
    if spec.kind is tuple:
        return st.pills(
            w.label, list(spec.choices), selection_mode="multi", default=list(value), wrap=True,
            format_func=lambda n: f"{n}: {w.names[n]}" if w.names else n, key=key, help=w.help,
        )  # fmt: skip
    if spec.choices:
        return st.radio(w.label, list(spec.choices), index=spec.choices.index(value), format_func=describe, key=key,
                        help=w.help)  # fmt: skip
    if w.steps:
        return st.select_slider(w.label, w.steps, value, key=key, help=w.help)
    if spec.kind is bool:
        return st.toggle(w.label, value, key=key, help=w.help)
    bounds = spec.bounds
    low = None if bounds is None else bounds.low
    high = w.maximum if w.maximum is not None else None if bounds is None else bounds.high
    return st.number_input(w.label, low, high, value, key=key, help=w.help)


def widgets(*names: str) -> dict[str, Any]:
    """Draw the widgets of the options ``names``, in order, in the current container; their values by name."""
    return {name: widget(OPTIONS[name]) for name in names}
