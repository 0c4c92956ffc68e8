"""Which model set the app uses: the shipped ``models/`` or a retrained set under ``KWS_RUNS_DIR``.

The choice is one small JSON file (``<runs>/active.json``) replaced atomically, so switching sets is a
single step that a crash cannot leave half-done. The same file keeps the history of switches (newest last),
so the page can step back to the previous set, down to the shipped models. Retrained sets are folders
``<runs>/<YYYYMMDD-HHMMSS-xxxx>/`` written by :func:`kws.train.train`; the shipped folder is never written.

Importing this module is cheap (no TensorFlow): :mod:`kws.store` is imported only where a set is read.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kws import cards, config
from kws.cards import Column

if TYPE_CHECKING:
    from kws.store import ModelCard

logger = logging.getLogger(__name__)

ACTIVE_FILE = "active.json"
#: Serialises read-modify-write of ``active.json`` between sessions and server processes.
_ACTIVE_LOCK = ".active.lock"
#: The name the shipped ``models/`` folder goes by in the history and on the page.
SHIPPED = "shipped"
#: Names of retrained sets: a UTC timestamp and a random suffix, e.g. ``20261124-030158-a3f9``.
SET_NAME = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}$")
_HISTORY_LIMIT = 50


def active_models_dir() -> Path:
    """The folder of the set in use: the retrained set named in ``active.json``, else the shipped models."""
    name = _read_state()["set"]
    if name and (config.runs_dir() / name).is_dir():
        return config.runs_dir() / name
    return config.SHIPPED_MODELS_DIR


def _read_state() -> dict[str, Any]:
    """``{"set": name or None, "history": [{"set": ..., "since": ...}, ...]}``; unreadable means shipped."""
    pointer = config.runs_dir() / ACTIVE_FILE
    try:
        data = json.loads(pointer.read_text())
        name = data.get("set")
        history = [h for h in data.get("history", []) if isinstance(h, dict) and "set" in h]
    except FileNotFoundError:
        return {"set": None, "history": []}
    except (OSError, ValueError, AttributeError) as err:
        logger.warning("ignoring unreadable %s: %s", pointer, err)
        return {"set": None, "history": []}
    return {"set": name if isinstance(name, str) and name else None, "history": history}


def path_of(name: str) -> Path:
    """The folder of set ``name`` (:data:`SHIPPED` or a run name); ``ValueError`` for anything else."""
    if name == SHIPPED:
        return config.SHIPPED_MODELS_DIR
    if not SET_NAME.match(name):
        raise ValueError(f"not a model set name: {name!r}")
    return config.runs_dir() / name


def active_set() -> str:
    """The name of the set in use (:data:`SHIPPED` when no retrained set is active)."""
    directory = active_models_dir()
    return SHIPPED if directory == config.SHIPPED_MODELS_DIR else directory.name


@dataclass(frozen=True)
class ModelSet:
    """A folder of models the app could use, described from metadata alone."""

    name: str
    path: Path
    models: tuple[str, ...]
    preset: str
    created: str
    mean_test_accuracy: float
    test_clips: int
    active: bool


def _describe(name: str, path: Path, active: str) -> ModelSet | None:
    from kws import features, store

    try:
        infos = store.list_models(path)
    except store.ModelStoreError as err:
        logger.warning("skipping model set %s: %s", path, err)
        return None
    accs = [i.meta["test_accuracy"] for i in infos]
    return ModelSet(
        name=name,
        path=path,
        models=tuple(i.name for i in infos),
        preset="; ".join(sorted({features.label(i.meta["feature_settings"]) for i in infos})),
        created=max(i.meta["created"] for i in infos),
        mean_test_accuracy=sum(accs) / len(accs),
        test_clips=max(int(i.meta.get("test_clips", 0)) for i in infos),
        active=name == active,
    )


def list_sets() -> list[ModelSet]:
    """The shipped set and every complete retrained set, newest retrained set first.

    Hidden folders (training's staging folders) and anything not named like a run are ignored.
    """
    active = active_set()
    sets = []
    runs = config.runs_dir()
    if runs.is_dir():
        for path in sorted(runs.iterdir(), key=lambda p: p.name, reverse=True):
            if path.is_dir() and SET_NAME.match(path.name) and (described := _describe(path.name, path, active)):
                sets.append(described)
    shipped = _describe(SHIPPED, config.SHIPPED_MODELS_DIR, active)
    return ([shipped] if shipped else []) + sets


def set_rows(sets: list[ModelSet] | None = None) -> list[dict[str, Any]]:
    """One table row per set, for the page. No "created" column: a retrained set's name is its creation time, and
    without it the table fits a laptop's width (the shipped set's list of models is long)."""
    return [
        {
            "set": s.name,
            "in use": "✓" if s.active else "",
            "models": ", ".join(s.models),
            "features": s.preset,
            "mean test accuracy": round(s.mean_test_accuracy, 4),
            "test clips": s.test_clips,
        }
        for s in (sets if sets is not None else list_sets())
    ]


@contextmanager
def _locked() -> Iterator[None]:
    """Hold an exclusive lock on the runs folder's ``active.json`` so two switches never interleave."""
    runs = config.runs_dir()
    runs.mkdir(parents=True, exist_ok=True)
    fd = os.open(runs / _ACTIVE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_state(name: str, history: list[dict[str, Any]]) -> None:
    from kws import store

    state = {"set": None if name == SHIPPED else name, "history": history[-_HISTORY_LIMIT:]}
    store.write_json_atomic(config.runs_dir() / ACTIVE_FILE, state)  # one os.replace: the switch itself


def _check_usable(name: str) -> None:
    """Refuse to point the app at a folder it could not load (raises ``ModelStoreError``)."""
    from kws import store

    store.list_models(path_of(name))


def adopt(name: str) -> None:
    """Switch the app to set ``name`` in one atomic step, remembering the set it replaces."""
    _check_usable(name)
    with _locked():
        state = _read_state()
        history = state["history"] or [{"set": state["set"] or SHIPPED, "since": None}]
        if (state["set"] or SHIPPED) == name:
            return
        history.append({"set": name, "since": datetime.now(UTC).isoformat(timespec="seconds")})
        _write_state(name, history)
    logger.info("model set %s is now in use", name)


def previous_set() -> str | None:
    """The set in use before the current one (skipping sets whose folder is gone), or None."""
    history = _read_state()["history"]
    for entry in reversed(history[:-1]):
        name = entry["set"] or SHIPPED
        if name == SHIPPED or path_of(name).is_dir():
            return name
    return None


def restore_previous() -> str | None:
    """Step back to :func:`previous_set` (the history loses its newest entry); returns the set now in use."""
    with _locked():
        history = _read_state()["history"]
        while len(history) > 1:
            history.pop()
            name = history[-1]["set"] or SHIPPED
            if name == SHIPPED or path_of(name).is_dir():
                _write_state(name, history)
                logger.info("restored model set %s", name)
                return name
    return None


def exists(name: str) -> bool:
    """Whether set ``name`` is still there (a retrained set may have been deleted since a page was drawn)."""
    try:
        return path_of(name).is_dir()
    except ValueError:
        return False


def delete(name: str) -> None:
    """Remove retrained set ``name`` for good, to free its disk space (~12 MB for all six models).

    Refused (``ValueError``, one sentence) for the shipped models, the set in use, and a name that is not a set.
    The folder is first renamed to a hidden name in one step, under the lock that switching takes, so no switch can
    pick it meanwhile and lists stop showing it at once; then it is removed. The history's entries for it are
    skipped by :func:`previous_set` and :func:`restore_previous`.
    """
    if name == SHIPPED:
        raise ValueError("The shipped models cannot be deleted.")
    path = path_of(name)
    with _locked():
        if active_set() == name:
            raise ValueError(f"`{name}` is in use; switch the app to another set before deleting it.")
        if not path.is_dir():
            raise ValueError(f"There is no model set `{name}`.")
        doomed = path.with_name(f".deleting-{name}")
        os.rename(path, doomed)
    for leftover in path.parent.glob(".deleting-*"):  # this one, and any that a crash left half-removed
        shutil.rmtree(leftover, ignore_errors=True)
    logger.info("deleted model set %s", name)


def _epochs(card: ModelCard) -> int:
    """Epochs as recorded, else the length of the loss curve (0 without one)."""
    return card.epochs_run if card.epochs_run is not None else len(card.history.get("loss", []))


#: The Retrain page's new-versus-current table: the Compare table's keys (:data:`kws.insights.COMPARISON_COLUMNS`),
#: so one formatter serves both, with accuracies to 4 places; ``set`` (an extra) says which set a row is from.
COMPARE_COLUMNS: tuple[Column, ...] = (
    cards.MODEL,
    Column("set"),
    Column("accuracy", lambda c: c.test_accuracy, cards.rounded(4)),
    Column("per_class", lambda c: c.per_class_accuracy, cards.rounded(4), spread="acc_"),
    Column("train_s", lambda c: c.train_seconds),
    Column("epochs", _epochs),
    cards.PARAMS,
    Column("test_clips", lambda c: c.test_clips),
)


def compare_rows(new: str, baseline: str | None = None) -> list[dict[str, Any]]:
    """New models next to the same-named ones of ``baseline`` (default: the set in use), from metadata.

    Test accuracy is each run's own score on the speaker-disjoint test split; ``test_clips`` says how many
    clips that was (a run limited with ``KWS_TRAIN_LIMIT`` scores on a few clips only).
    """
    from kws import store

    baseline = baseline or active_set()
    old = {i.name: i.card for i in store.list_models(path_of(baseline))}
    pairs = []
    for info in store.list_models(path_of(new)):
        pairs.append((info.card, "new"))
        if info.name in old:
            pairs.append((old[info.name], f"in use ({baseline})"))
    return cards.rows([card for card, _ in pairs], COMPARE_COLUMNS, [{"set": label} for _, label in pairs])


def comparison_baseline(new: str) -> str:
    """What a new set is compared with: the set in use, or the one before it once the new set is adopted."""
    current = active_set()
    return (previous_set() or SHIPPED) if current == new else current
