"""The model store: ``<dir>/<name>.json`` with ``<name>.tflite`` (what answers), ``<name>.int8.tflite`` (its
full-integer copy, where it keeps the accuracy) and ``<name>.keras`` (what retraining starts from), and sets of
them replaced atomically.

The JSON carries the feature settings and label order the model was trained with, and the checksum of each
``.tflite`` file; loading reads them back, so a model always gets the input it was trained on, and a file changed
since (a partial copy, another model's file) is refused. A set of models is written into a staging folder and then
swapped in with one atomic rename (``renameat2(RENAME_EXCHANGE)`` on Linux), so a crash leaves either the
old set or the new one, never a mix. :class:`ModelCard` is the JSON typed, as the model tables read it
(:mod:`kws.cards`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from kws.config import ARCHITECTURES, LABEL_SETS, fit_splits
from kws.features import FeatureSettings
from kws.features import label as features_label

logger = logging.getLogger(__name__)

#: The precisions a model answers in: float32 (the default) and its full-integer copy.
PRECISIONS: tuple[str, ...] = ("float32", "int8")

#: Fields every model's JSON must hold; :func:`read_meta` refuses files without them.
REQUIRED_META = (
    "name",
    "architecture",
    "feature_settings",
    "labels",
    "params",
    "size_bytes",
    "test_accuracy",
    "per_class_accuracy",
    "confusion",
    "history",
    "train_seconds",
    "dataset_fingerprint",
    "versions",
    "created",
)


class ModelStoreError(RuntimeError):
    """A model folder that cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class OpenWorld:
    """A model's open-world scores on one split at the app's operating point, as its JSON records them
    (:class:`kws.evaluate.OpenScores` measured at training time); None where the JSON lacks them."""

    keyword_accuracy: float | None = None
    false_accept_rate: float | None = None
    false_reject_rate: float | None = None
    keyword_clips: int | None = None
    other_clips: int | None = None
    threshold: float | None = None

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any] | None) -> OpenWorld:
        saved = saved or {}
        return cls(
            keyword_accuracy=_number(saved.get("keyword_accuracy"), float),
            false_accept_rate=_number(saved.get("false_accept_rate"), float),
            false_reject_rate=_number(saved.get("false_reject_rate"), float),
            keyword_clips=_number(saved.get("keyword_clips"), int),
            other_clips=_number(saved.get("other_clips"), int),
            threshold=_number(saved.get("threshold"), float),
        )


@dataclass(frozen=True)
class ModelCard:
    """What a model's JSON says about it, typed: the one place that reads the metadata every model table shows
    (Home, Compare, Retrain's new-versus-current, ``kws evaluate``, ``kws train``).

    A key the JSON lacks (an older model's, one trained without the open-world scores, the int8 copies or the
    refit) gives None, an empty mapping or the field's documented default, so a card loads from any model's JSON
    and a table shows a gap rather than failing. The mappings are copies: a card changes nothing in the metadata
    it came from.
    """

    name: str
    architecture: str | None = None
    params: int | None = None
    labels: tuple[str, ...] = ()
    #: The saved :class:`kws.features.FeatureSettings` as a dict (tables show only its name and centring).
    feature_settings: dict[str, Any] = field(default_factory=dict, hash=False)
    #: Share of the test clips of the model's own labels that it names right.
    test_accuracy: float | None = None
    #: None as well for a refit on train + validation, which has no validation speakers left.
    validation_accuracy: float | None = None
    #: Recall per label, in label order (NaN for a label without test clips).
    per_class_accuracy: dict[str, float | None] = field(default_factory=dict, hash=False)
    #: Open-world scores per split ("test", "validation"); :meth:`open_world_on` gives an empty one for a split
    #: the JSON lacks.
    open_world: dict[str, OpenWorld] = field(default_factory=dict, hash=False)
    #: Bytes of the ``.keras`` file.
    size_bytes: int | None = None
    #: Bytes of each TFLite file the model ships, by precision (none for a precision it does not ship).
    tflite_bytes: dict[str, int | None] = field(default_factory=dict, hash=False)
    train_seconds: float | None = None
    #: Epochs run as recorded; :attr:`epochs` falls back on the history's length.
    epochs_run: int | None = None
    #: Per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (no ``val_*`` for a refit).
    history: dict[str, list[float]] = field(default_factory=dict, hash=False)
    #: The splits the model learnt from; metadata older than the refit means the train split.
    fit_on: tuple[str, ...] = ("train",)
    #: Test clips behind :attr:`test_accuracy` (few where training was limited with ``KWS_TRAIN_LIMIT``).
    test_clips: int | None = None

    @classmethod
    def from_meta(cls, name: str, meta: Mapping[str, Any]) -> ModelCard:
        """The card of model ``name`` from its JSON metadata; keys it lacks become None or empty."""
        return cls(
            name=name,
            architecture=meta.get("architecture"),
            params=_number(meta.get("params"), int),
            labels=tuple(meta.get("labels") or ()),
            feature_settings=dict(meta.get("feature_settings") or {}),
            test_accuracy=_number(meta.get("test_accuracy"), float),
            validation_accuracy=_number(meta.get("validation_accuracy"), float),
            per_class_accuracy={k: _number(v, float) for k, v in (meta.get("per_class_accuracy") or {}).items()},
            open_world={split: OpenWorld.from_dict(v) for split, v in (meta.get("open_world") or {}).items()},
            size_bytes=_number(meta.get("size_bytes"), int),
            tflite_bytes={p: e.get("size_bytes") for p in PRECISIONS if (e := _tflite_entry(meta, p)) is not None},
            train_seconds=_number(meta.get("train_seconds"), float),
            epochs_run=_number(meta.get("epochs_run"), int),
            history={k: list(v) for k, v in (meta.get("history") or {}).items() if v is not None},
            fit_on=fitted_splits(meta),
            test_clips=_number(meta.get("test_clips"), int),
        )

    @property
    def preset(self) -> str | None:
        """How tables name the model's features: the preset, and "centred" if so (:func:`kws.features.label`)."""
        return features_label(self.feature_settings) if "name" in self.feature_settings else None

    @property
    def epochs(self) -> int | None:
        """Epochs the model trained for: as recorded, else the length of its history; None where neither says."""
        return self.epochs_run or len(self.history.get("loss") or self.history.get("accuracy") or []) or None

    def open_world_on(self, split: str = "test") -> OpenWorld:
        """The open-world scores on ``split``; every field None where the JSON has none for it."""
        return self.open_world.get(split) or OpenWorld()

    def tflite_size_bytes(self, precision: str = "float32") -> int | None:
        """The size of the model's TFLite file in ``precision``; None where it ships none."""
        _check_precision(precision)
        return self.tflite_bytes.get(precision)


def _number(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (int or float), None kept as None."""
    return None if value is None else kind(value)


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from: {', '.join(PRECISIONS)}")


def _tflite_entry(meta: Mapping[str, Any], precision: str) -> dict[str, Any] | None:
    """The JSON's entry for the model's TFLite file in ``precision``; None where it ships none (an int8 copy that
    lost accuracy is recorded with ``shipped: false``)."""
    _check_precision(precision)
    entry = (meta.get("tflite") or {}).get(precision)
    return entry if entry and entry.get("file") and entry.get("shipped", True) else None


@dataclass(frozen=True)
class ModelInfo:
    """A model file and its metadata, not yet loaded."""

    name: str
    keras_path: Path
    meta: dict[str, Any]

    @property
    def settings(self) -> FeatureSettings:
        return FeatureSettings.from_dict(self.meta["feature_settings"])

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.meta["labels"])

    @property
    def fitted_splits(self) -> tuple[str, ...]:
        return fitted_splits(self.meta)

    @cached_property
    def card(self) -> ModelCard:
        """The model's metadata, typed (:class:`ModelCard`); read once per info."""
        return ModelCard.from_meta(self.name, self.meta)

    def tflite_path(self, precision: str = PRECISIONS[0]) -> Path | None:
        """The model's TFLite file in ``precision``; None where the model has none (no int8 copy shipped)."""
        entry = self._tflite_entry(precision)
        return None if entry is None else self.keras_path.with_name(entry["file"])

    def tflite_size_bytes(self, precision: str = PRECISIONS[0]) -> int | None:
        """The size of the model's TFLite file in ``precision``, as its JSON records it; None where it has none."""
        entry = self._tflite_entry(precision)
        return None if entry is None else entry.get("size_bytes")

    def tflite_sha256(self, precision: str = PRECISIONS[0]) -> str | None:
        """The checksum of the model's TFLite file in ``precision`` its JSON records (what loading checks)."""
        entry = self._tflite_entry(precision)
        return None if entry is None else entry.get("sha256")

    def _tflite_entry(self, precision: str) -> dict[str, Any] | None:
        return _tflite_entry(self.meta, precision)

    def flatbuffer(self, precision: str = PRECISIONS[0]) -> bytes:
        """The bytes of the model's TFLite file in ``precision``, once they match the checksum in its JSON.

        Raises :class:`ModelStoreError` in one sentence where the file is missing, unrecorded or changed.
        """
        json_path = self.keras_path.with_suffix(".json")
        entry = self._tflite_entry(precision)
        if entry is None:
            if precision == PRECISIONS[0]:
                raise ModelStoreError(
                    f"{json_path} records no TensorFlow Lite file; make one with "
                    f"`python -m kws convert {self.keras_path.parent}`."
                )
            raise ModelStoreError(f"{self.name} has no {precision} copy ({json_path}).")
        path = self.keras_path.with_name(entry["file"])
        try:
            blob = path.read_bytes()
        except OSError as err:
            raise ModelStoreError(f"{path} cannot be read ({err.strerror or err}).") from err
        if hashlib.sha256(blob).hexdigest() != entry.get("sha256"):
            raise ModelStoreError(
                f"{path} does not match the checksum in {json_path.name}: it changed or was cut off after it was "
                "made; copy the model's files again or retrain it."
            )
        return blob


def fitted_splits(meta: dict[str, Any]) -> tuple[str, ...]:
    """The dataset splits a model learnt from: ``("train",)``, or also ``"validation"`` for a final refit.

    A score on a split the model learnt from is not a held-out score; metadata older than the refit says nothing
    and means the train split.
    """
    return fit_splits(meta.get("fit_on"))


def order_key(name: str) -> tuple[int, str]:
    """Sort models in the lecture's order, unknown names last."""
    names = list(ARCHITECTURES)
    return (names.index(name) if name in names else len(names), name)


def read_meta(json_path: Path) -> dict[str, Any]:
    """Read and check one model's metadata."""
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelStoreError(f"{json_path}: unreadable model metadata ({err})") from err
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ModelStoreError(f"{json_path}: metadata lacks {', '.join(missing)}")
    return meta


def list_models(models_dir: str | Path) -> list[ModelInfo]:
    """Every model (a ``.json`` with its ``.tflite`` or ``.keras`` beside it) in ``models_dir``, in the lecture's
    order; whether its files are whole is checked when it is loaded (:meth:`ModelInfo.flatbuffer`)."""
    root = Path(models_dir)
    if not root.is_dir():
        raise ModelStoreError(f"No model folder at {root}.")
    infos = []
    for json_path in root.glob("*.json"):
        keras_path = json_path.with_suffix(".keras")
        if not keras_path.is_file() and not json_path.with_suffix(".tflite").is_file():
            logger.warning("ignoring %s: no %s or .tflite beside it", json_path, keras_path.name)
            continue
        meta = read_meta(json_path)
        if tuple(meta["labels"]) not in LABEL_SETS:
            logger.info("%s uses labels %s", json_path.name, meta["labels"])
        infos.append(ModelInfo(name=json_path.stem, keras_path=keras_path, meta=meta))
    if not infos:
        raise ModelStoreError(f"No models in {root}.")
    return sorted(infos, key=lambda i: order_key(i.name))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` through a temporary file in the same folder and ``os.replace`` it into place: a reader never
    sees half a file, and a failed write leaves no temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically (:func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, json.dumps(data, indent=1, sort_keys=False).encode())


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2``); False where the system cannot."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    func = getattr(libc, "renameat2", None)
    if func is None:
        return False
    at_fdcwd = -100
    rc = func(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def replace_dir(staging: Path, target: Path) -> None:
    """Make ``staging`` become ``target`` atomically, discarding the old ``target``.

    Both must be on one file system (``staging`` is made beside ``target``). Where an atomic exchange is not
    available the old folder is first renamed aside, so at every instant one complete set exists on disk.
    """
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old set
        return
    aside = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)  # put the old set back: a failed swap must not leave no set at all
        raise
    shutil.rmtree(aside, ignore_errors=True)


def staging_dir_for(target: Path) -> Path:
    """A fresh, empty folder beside ``target`` for building a new set."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
    staging.chmod(0o755)
    return staging


def model_files(info: ModelInfo) -> dict[str, Path]:
    """A model's files that exist, by what they are: the TFLite files that answer, the Keras file retraining
    starts from, and the JSON with labels and feature settings (what a downloaded model needs beside it)."""
    found = {
        "float32 .tflite": info.tflite_path("float32"),
        "int8 .tflite": info.tflite_path("int8"),
        ".keras": info.keras_path,
        ".json": info.keras_path.with_suffix(".json"),
    }
    return {kind: path for kind, path in found.items() if path is not None and path.is_file()}


def set_archive(infos: list[ModelInfo]) -> bytes:
    """A zip of every file of ``infos`` (:func:`model_files`), flat, as a set folder holds them."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info in infos:
            for path in model_files(info).values():
                archive.write(path, arcname=path.name)
    return buffer.getvalue()
