"""cache: the cache folder stays within KWS_CACHE_LIMIT_MB, dropping the least recently used feature sets and
TFLite copies first, and never anything that is not its own."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
from _audio_util import make_dataset

from kws import cache
from kws.dataset import load_features
from kws.features import PRESETS, preset

MB = 2**20


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("KWS_CACHE_DIR", str(folder))
    monkeypatch.delenv("KWS_CACHE_LIMIT_MB", raising=False)
    return folder


def put(path: Path, size: int, age_s: float) -> Path:
    """A file of ``size`` bytes last used ``age_s`` seconds ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_limit_from_the_environment(monkeypatch, caplog) -> None:
    monkeypatch.delenv("KWS_CACHE_LIMIT_MB", raising=False)
    assert cache.limit_bytes() == cache.DEFAULT_LIMIT_MB * MB
    monkeypatch.setenv("KWS_CACHE_LIMIT_MB", "0.5")
    assert cache.limit_bytes() == MB // 2
    monkeypatch.setenv("KWS_CACHE_LIMIT_MB", "0")
    assert cache.limit_bytes() == 0
    for bad in ("lots", "-3", "inf"):
        monkeypatch.setenv("KWS_CACHE_LIMIT_MB", bad)
        with caplog.at_level(logging.WARNING, logger="kws.cache"):
            assert cache.limit_bytes() == cache.DEFAULT_LIMIT_MB * MB
        assert f"KWS_CACHE_LIMIT_MB={bad!r} is not a size in megabytes" in caplog.text


def test_prune_drops_the_least_recently_used_first(root) -> None:
    oldest = put(root / "features-standard-a.npz", 400, age_s=300)
    old_copy = put(root / "tflite" / "best-a.tflite", 300, age_s=200)
    recent = put(root / "features-lecture-b.npz", 400, age_s=100)
    newest = put(root / "tflite" / "best-b.tflite", 300, age_s=0)
    foreign = put(root / "notes.txt", 5000, age_s=1000)  # not the cache's: never counted, never removed
    fresh_temp = put(root / ".features-x.npz.abc.tmp", 10, age_s=60)  # another process is writing it
    stale_temp = put(root / "tflite" / ".best-c.tflite.abc.tmp", 10, age_s=2 * cache.STALE_TEMP_SECONDS)
    stale_features = put(root / ".features-x.npz.def.tmp", 10, age_s=2 * cache.STALE_TEMP_SECONDS)
    someone_elses = put(root / ".editor-swap.tmp", 10, age_s=2 * cache.STALE_TEMP_SECONDS)  # a shared /tmp

    removed = cache.prune(limit=750)
    assert set(removed) == {stale_temp, stale_features, oldest, old_copy}
    assert all(p.exists() for p in (recent, newest, foreign, fresh_temp, someone_elses))
    assert cache.prune(limit=750) == []  # within the limit: nothing more


def test_the_file_just_written_stays_even_alone_over_the_limit(root) -> None:
    older = put(root / "features-standard-a.npz", 100, age_s=10)
    written = put(root / "features-standard-b.npz", 1000, age_s=3600)  # an old mtime: kept by name, not by age
    assert cache.prune(keep=written, limit=10) == [older]
    assert written.exists()


def test_reading_a_feature_set_keeps_it_longest(tmp_path, root, monkeypatch) -> None:
    """Three feature sets where two fit: the one read again outlives the one written after it."""
    data = tmp_path / "data"
    make_dataset(data)
    first = load_features(preset("standard"), data)
    (standard,) = root.glob("features-standard-*.npz")
    load_features(preset("lecture"), data)
    (lecture,) = root.glob("features-lecture-*.npz")
    # room for two standard-sized sets, not for those and the (smaller) lecture one
    limit = 2 * standard.stat().st_size + lecture.stat().st_size // 2
    monkeypatch.setenv("KWS_CACHE_LIMIT_MB", str(limit / MB))
    os.utime(standard, (0, 0))
    os.utime(lecture, (1, 1))
    again = load_features(preset("standard"), data)  # a hit marks it used
    np.testing.assert_array_equal(again.x, first.x)
    assert standard.stat().st_mtime > 1

    # a third set: the lecture one, least recently used, goes
    load_features(dataclasses.replace(PRESETS["standard"], centre=True), data)
    assert standard.exists() and not lecture.exists()
    assert len(list(root.glob("features-*.npz"))) == 2
    assert load_features(preset("lecture"), data).x.shape[0] == first.x.shape[0]  # made again on demand
