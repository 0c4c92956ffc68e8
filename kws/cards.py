"""One row builder for every "one row per model" table, read from :class:`kws.store.ModelCard`.

A table is a sequence of :class:`Column`: each has a key (the row's dict key), a getter on the card, and a
formatter (rounding for the app's tables, text for the command line's). :func:`rows` turns cards into rows with
the keys in column order. What a card does not hold (a latency measured now, the scores of a fresh evaluation,
which set a model belongs to) comes in as ``extra``, one mapping per card, and takes the place of the getter.

The tables: Home (:data:`HOME_COLUMNS`), Compare (:data:`kws.insights.COMPARISON_COLUMNS`), Retrain's
new-versus-current (:data:`kws.modelsets.COMPARE_COLUMNS`), ``kws evaluate`` (:data:`kws.evaluate.COLUMNS`, and
the text columns in :mod:`kws.cli`) and ``kws train``'s summary. Importing this module is cheap (no NumPy, no
TensorFlow, no Streamlit): :mod:`kws.store` is imported only where cards are read, so ``kws --help`` answers at
once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kws.store import ModelCard

logger = logging.getLogger(__name__)


class HasMeta(Protocol):
    """What a card is read from: a :class:`kws.store.ModelInfo`, or anything with its name and metadata."""

    @property
    def name(self) -> str: ...

    @property
    def meta(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Column:
    """One column of a model table.

    ``get`` reads the value from the card (None: the value only comes from ``extra``); ``fmt`` turns it into
    what the table shows and is handed None too, so it decides how a gap looks. ``spread``: the value is a
    mapping (accuracy per label, say), and each entry becomes a column of its own, keyed ``spread + entry``.
    ``header`` and ``right`` are for tables rendered as text: the title (the key where empty) and whether the
    column is right-aligned (numbers).
    """

    key: str
    get: Callable[[ModelCard], Any] | None = None
    fmt: Callable[[Any], Any] | None = None
    header: str = ""
    spread: str | None = None
    right: bool = False

    @property
    def title(self) -> str:
        return self.header or self.key


def rows(
    cards: Sequence[ModelCard],
    columns: Sequence[Column],
    extra: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One dict per card, its keys in column order.

    ``extra``: one mapping per card (same order), of values the cards do not hold; a column whose key is in a
    card's mapping takes the value from there instead of from its getter (a spread column: the whole mapping).
    """
    extra = extra if extra is not None else [{}] * len(cards)
    if len(extra) != len(cards):
        raise ValueError(f"{len(extra)} extra mappings for {len(cards)} cards")
    table = []
    for card, more in zip(cards, extra):
        row: dict[str, Any] = {}
        for column in columns:
            if column.key in more:
                value = more[column.key]
            else:
                value = column.get(card) if column.get is not None else None
            if column.spread is None:
                row[column.key] = column.fmt(value) if column.fmt else value
            else:
                for name, v in (value or {}).items():
                    row[f"{column.spread}{name}"] = column.fmt(v) if column.fmt else v
        table.append(row)
    return table


def cards_of(infos: Sequence[HasMeta]) -> list[ModelCard]:
    """The cards of ``infos``, read from each one's name and metadata (so stand-ins without a ``card`` work)."""
    from kws.store import ModelCard

    return [ModelCard.from_meta(info.name, info.meta) for info in infos]


def formatted(table: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> list[dict[str, Any]]:
    """Rows already built (by :func:`rows`) as ``columns`` show them: each column's ``fmt`` of the row's value
    (None where the row lacks the key) under the column's key; the getters are not used."""
    return [{c.key: c.fmt(row.get(c.key)) if c.fmt else row.get(c.key) for c in columns} for row in table]


def rounded(digits: int) -> Callable[[float | None], float | None]:
    """A formatter rounding to ``digits`` places, None kept."""
    return lambda value: None if value is None else round(value, digits)


def kb(size_bytes: int | None) -> float | None:
    """Bytes as kilobytes to one decimal, as the tables show file sizes; None kept."""
    return None if size_bytes is None else round(size_bytes / 1024, 1)


def joined(separator: str) -> Callable[[Sequence[str]], str]:
    """A formatter joining names (the splits a model learnt from) with ``separator``."""
    return separator.join


#: Columns more than one table shares.
MODEL = Column("model", lambda c: c.name)
ARCHITECTURE = Column("architecture", lambda c: c.architecture)
PARAMS = Column("params", lambda c: c.params)
SIZE_KB = Column("size_kb", lambda c: c.size_bytes, kb)
PRESET = Column("preset", lambda c: c.preset)

#: The Home page's table of the models in use: what each is, how big, how good.
HOME_COLUMNS: tuple[Column, ...] = (
    MODEL,
    ARCHITECTURE,
    Column("parameters", lambda c: c.params),
    Column("labels", lambda c: len(c.labels)),
    Column("test accuracy", lambda c: c.test_accuracy),
    Column("false accepts", lambda c: c.open_world_on("test").false_accept_rate),
    PRESET,
)


def home_rows(infos: Sequence[HasMeta]) -> list[dict[str, Any]]:
    """The Home page's table: one row per model of ``infos``, from metadata alone (no TensorFlow needed)."""
    return rows(cards_of(infos), HOME_COLUMNS)
