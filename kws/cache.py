"""A bound on the cache folder: its derived files go least recently used first once it holds too much.

Why: every new state of the dataset or new feature setting adds a feature file (~37 MB for the standard preset);
nothing else ever removes them, so a server that retrains for weeks fills its disk. Everything here is made again
from the dataset, so dropping the oldest costs a recomputation, never a result. Readers already treat a file that
vanishes under them as a miss (:func:`kws.dataset.load_feature_sets`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from kws import config

logger = logging.getLogger(__name__)

#: What the cache holds, relative to :func:`kws.config.cache_dir`: feature sets, each model file's answers to a
#: split (:func:`kws.evaluate.evaluate`), and TFLite copies that older versions kept there, removed like the rest.
PATTERNS: tuple[str, ...] = ("features-*.npz", "predictions-*.npy", "tflite/*.tflite")

#: Temporary files of writes that never finished (a killed process); removed once this old.
STALE_TEMP_SECONDS = 3600

#: ``KWS_CACHE_LIMIT_MB`` when unset: room for ~20 feature sets.
DEFAULT_LIMIT_MB = 1024


def limit_bytes() -> int:
    """The cache's bound in bytes: ``KWS_CACHE_LIMIT_MB`` (megabytes, may be fractional), else the default.

    A value that is not a non-negative number is logged and the default used: a typo must not stop the app.
    """
    raw = os.environ.get("KWS_CACHE_LIMIT_MB", "").strip()
    if raw:
        try:
            mb = float(raw)
            if mb >= 0 and mb != float("inf"):
                return int(mb * 2**20)
        except ValueError:
            pass
        logger.warning("KWS_CACHE_LIMIT_MB=%r is not a size in megabytes; using %d", raw, DEFAULT_LIMIT_MB)
    return DEFAULT_LIMIT_MB * 2**20


def mark_used(path: Path) -> None:
    """Record that ``path`` was just read (its modification time), so :func:`prune` keeps it longest.

    The access time would say so by itself, but most file systems are mounted ``relatime`` or ``noatime``.
    """
    with contextlib.suppress(OSError):
        os.utime(path)


def _stale_temps(root: Path, now: float) -> list[Path]:
    """Temporary files of cache writes (``.NAME.XXXX.tmp``, :func:`kws.store.write_bytes_atomic`) older than an
    hour; only those named after :data:`PATTERNS`, since the cache folder may be shared (``/tmp``)."""
    found = []
    for pattern in PATTERNS:
        where = root / pattern
        for path in where.parent.glob(f".{where.name}.*.tmp"):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                    found.append(path)
    return found


def prune(keep: Path | None = None, limit: int | None = None, root: Path | None = None) -> list[Path]:
    """Delete the least recently used cache files until the folder holds at most ``limit`` bytes.

    ``keep``: the file just written, which stays even when it alone is over the limit. ``limit`` defaults to
    :func:`limit_bytes`, ``root`` to the cache folder. Files that are not the cache's own are never touched.
    Returns what was removed.
    """
    root = config.cache_dir() if root is None else Path(root)
    limit = limit_bytes() if limit is None else limit
    removed = []
    for path in _stale_temps(root, time.time()):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    files = []
    for pattern in PATTERNS:
        for path in root.glob(pattern):
            with contextlib.suppress(OSError):
                st = path.stat()
                files.append((st.st_mtime_ns, path.name, st.st_size, path))
    total = sum(size for _, _, size, _ in files)
    freed = 0
    for _, _, size, path in sorted(files):  # oldest use first
        if total - freed <= limit:
            break
        if keep is not None and path == Path(keep):
            continue
        try:
            path.unlink()
        except FileNotFoundError:  # another process pruned it first
            pass
        except OSError as err:
            logger.warning("cannot remove %s from the cache (%s)", path, err)
            continue
        freed += size
        removed.append(path)
    if freed:
        logger.info(
            "cache: removed %d least recently used files (%.0f MB) to stay within %.0f MB",
            len(removed),
            freed / 2**20,
            limit / 2**20,
        )
    return removed
