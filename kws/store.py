"""The model store: ``<dir>/<name>.json`` with ``<name>.tflite`` (what answers), ``<name>.int8.tflite`` (its
full-integer copy, where it keeps the accuracy) and ``<name>.keras`` (what retraining starts from), and sets of
them replaced atomically.

The JSON carries the feature settings and label order the model was trained with, and the checksum of each
``.tflite`` file; loading reads them back, so a model always gets the input it was trained on, and a file changed
since (a partial copy, another model's file) is refused. A set of models is written into a staging folder and then
swapped in with one atomic rename (``renameat2(RENAME_EXCHANGE)`` on Linux), so a crash leaves either the
old set or the new one, never a mix.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kws.config import ARCHITECTURES, LABEL_SETS, fit_splits
from kws.features import FeatureSettings

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

    def tflite_path(self, precision: str = PRECISIONS[0]) -> Path | None:
        """The model's TFLite file in ``precision``; None where the model has none (no int8 copy shipped)."""
        entry = self._tflite_entry(precision)
        return None if entry is None else self.keras_path.with_name(entry["file"])

    def tflite_size_bytes(self, precision: str = PRECISIONS[0]) -> int | None:
        """The size of the model's TFLite file in ``precision``, as its JSON records it; None where it has none."""
        entry = self._tflite_entry(precision)
        return None if entry is None else entry.get("size_bytes")

    def _tflite_entry(self, precision: str) -> dict[str, Any] | None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose from: {', '.join(PRECISIONS)}")
        entry = (self.meta.get("tflite") or {}).get(precision)
        return entry if entry and entry.get("file") and entry.get("shipped", True) else None

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
