"""Fixed-width cards and rows of boxes that wrap where the page is narrow.

Streamlit has no "wrap below a width" option, so the rules are CSS container queries aimed at a keyed
container's own ``st-key-<key>`` class, Streamlit's documented hook for styling one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

#: Width in pixels of one model's card (Try it) or chart (Compare's confusion matrices). Six equal columns would
#: leave ~110 px each on a 1,366-px screen, narrower than the 150 px a Plotly chart draws at, and cut its bars off.
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
    flow two by two (a group wrapping inside itself would give rows of 2, 1, 2, 1). That is CSS (the groups become
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

    ``st.columns`` squeezes columns until the window is under 640 px: Try it's four boxes would be 130 px wide
    at 1,024 px with the sidebar open, their buttons cut off. Streamlit has no option for "wrap below a width", so the rule is CSS aimed at the row's
    own ``st-key-<key>`` class (Streamlit's documented hook for styling a keyed container): a container query, so
    it follows the width the page really has, sidebar open or closed, not the window's.
    """
    _below_width(key, {TWO_PER_ROW_PX: "{item} {{flex: 1 1 40%}}", ONE_PER_ROW_PX: "{item} {{flex: 1 1 100%}}"})
    with st.container(horizontal=True, key=key):
        return [st.container(border=True, height="stretch") for _ in range(count)]
