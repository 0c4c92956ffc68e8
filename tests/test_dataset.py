"""dataset: the speaker-honest stable split, scanning, corrupt clips, and the feature cache."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _audio_util import RATE, make_dataset, real_data_dir, word_like

from kws import config, dataset
from kws.dataset import DatasetMissingError, load_features, scan, speaker_of, split_of
from kws.features import preset, shapes


def reference_which_set(filename: str, validation_percentage: float = 10.0, testing_percentage: float = 10.0) -> str:
    """The dataset's own ``which_set`` from TensorFlow's speech_commands example (input_data.py)."""
    base_name = os.path.basename(filename)
    hash_name = re.sub(r"_nohash_.*$", "", base_name)
    hash_name_hashed = hashlib.sha1(hash_name.encode("utf-8")).hexdigest()
    percentage_hash = (int(hash_name_hashed, 16) % (2**27 - 1 + 1)) * (100.0 / (2**27 - 1))
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < (testing_percentage + validation_percentage):
        return "test"
    return "train"


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A generated dataset folder and an empty feature cache of its own."""
    root = tmp_path / "data"
    make_dataset(root)
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    return root


def test_speaker_of() -> None:
    assert speaker_of("bed/0a7c2a8d_nohash_0.wav") == "0a7c2a8d"
    assert speaker_of("/x/cat/ffd2ba2f_nohash_12.wav") == "ffd2ba2f"


def test_split_matches_the_datasets_own_rule() -> None:
    names = [f"{i:08x}_nohash_{i % 3}.wav" for i in range(0, 5000, 7)]
    assert [split_of(n) for n in names] == [reference_which_set(n) for n in names]
    assert {split_of(n) for n in names} == {"train", "validation", "test"}


def test_split_is_per_speaker_not_per_file() -> None:
    for speaker in ("0a7c2a8d", "ffd2ba2f", "1234abcd"):
        assert len({split_of(f"{w}/{speaker}_nohash_{n}.wav") for w in config.LABELS for n in range(5)}) == 1


def test_adding_a_clip_moves_no_other_clip(tiny) -> None:
    before = {item.path: item.split for item in scan(tiny)}
    sf.write(tiny / "cat" / "99999999_nohash_0.wav", word_like(1.0), RATE)
    sf.write(tiny / "bed" / "00000000_nohash_7.wav", word_like(1.0), RATE)  # a new take of a known speaker
    after = {item.path: item.split for item in scan(tiny)}
    assert len(after) == len(before) + 2
    assert all(after[p] == s for p, s in before.items())


def test_scan_lists_labels_sorted(tiny) -> None:
    items = scan(tiny)
    assert {it.label for it in items} == set(config.LABELS)
    assert [it.path for it in items if it.label == "bed"] == sorted(it.path for it in items if it.label == "bed")
    assert all(it.label_index == config.LABELS.index(it.label) for it in items)
    assert {it.split for it in items} == set(dataset.SPLITS)


def test_missing_dataset_says_how_to_fetch(tmp_path) -> None:
    for root in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(DatasetMissingError, match="data fetch"):
            scan(root)
    (tmp_path / "bed").mkdir()  # a folder but no clips
    with pytest.raises(DatasetMissingError):
        scan(tmp_path)


def test_corrupt_clip_is_skipped_and_reported(tiny, caplog) -> None:
    bad = tiny / "happy" / "deadbeef_nohash_0.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    n_good = len(scan(tiny)) - 1
    with caplog.at_level(logging.WARNING, logger="kws.dataset"):
        fs = load_features(preset("standard"), tiny, use_cache=False)
    assert len(fs.y) == len(fs.x) == len(fs.paths) == n_good
    assert [p for p, _ in fs.skipped] == [str(bad)]
    assert str(bad) not in fs.paths
    assert any("deadbeef" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kws.dataset"):  # models with other settings read it again
        again = load_features(preset("lecture"), tiny, use_cache=False)
    assert [p for p, _ in again.skipped] == [str(bad)]  # still reported to the caller ...
    assert not any("deadbeef" in r.getMessage() for r in caplog.records)  # ... but logged once per process


def test_streamed_featurizing_matches_reading_then_featurizing(tiny, monkeypatch) -> None:
    """Reading and featurizing overlap chunk by chunk; the result must not depend on where chunks end."""
    bad = tiny / "cat" / "deadbeef_nohash_0.wav"
    bad.write_bytes(b"not audio at all")
    items = scan(tiny)
    monkeypatch.setattr(dataset, "_CHUNK", 5)  # several chunks, one holding the corrupt clip
    stages: list[tuple[str, int, int]] = []
    read, x = dataset.read_and_featurize(items, preset("lecture"), lambda *a: stages.append(a))
    waves = dataset.load_waveforms(items)
    np.testing.assert_array_equal(x, dataset.featurize(waves.clips, preset("lecture")))
    assert read.items == waves.items and read.clips == [] and [p for p, _ in read.skipped] == [bad]
    assert stages[-1] == ("features", len(waves.items), len(waves.items))
    assert ("reading", len(items), len(items)) in stages


def test_features_have_the_settings_shape(tiny) -> None:
    for name in ("standard", "lecture"):
        fs = load_features(preset(name), tiny, use_cache=False)
        assert fs.x.shape[1:] == shapes(preset(name)).input_shape
        assert fs.x.dtype == np.float32
        assert set(fs.splits) == set(dataset.SPLITS)
        x, y = fs.subset("test")
        assert len(x) == len(y) == int((fs.splits == "test").sum())


def test_feature_cache_hit_and_miss(tiny, monkeypatch) -> None:
    cache = config.cache_dir()
    first = load_features(preset("standard"), tiny)
    files = sorted(cache.glob("features-standard-*.npz"))
    assert len(files) == 1

    calls = []
    real_load = dataset.load_waveforms
    monkeypatch.setattr(dataset, "load_waveforms", lambda *a, **k: calls.append(1) or real_load(*a, **k))

    again = load_features(preset("standard"), tiny)  # hit: nothing is read
    assert calls == []
    np.testing.assert_array_equal(again.x, first.x)
    assert again.paths == first.paths and again.fingerprint == first.fingerprint

    load_features(preset("lecture"), tiny)  # other settings: miss, a second file
    assert calls == [1]
    assert len(list(cache.glob("features-lecture-*.npz"))) == 1

    load_features(preset("standard"), tiny, use_cache=False)  # bypass: read again, nothing written
    assert calls == [1, 1]
    assert len(list(cache.glob("*.npz"))) == 2

    clip = next((tiny / "bed").glob("*.wav"))  # a changed file: miss
    sf.write(clip, word_like(1.0, seed=42), RATE)
    os.utime(clip, ns=(0, 10**18))
    load_features(preset("standard"), tiny)
    assert calls == [1, 1, 1]
    assert len(list(cache.glob("features-standard-*.npz"))) == 2


def test_unreadable_cache_is_ignored(tiny) -> None:
    load_features(preset("standard"), tiny)
    (cache_file,) = config.cache_dir().glob("*.npz")
    cache_file.write_bytes(b"not an npz")
    fs = load_features(preset("standard"), tiny)
    assert len(fs.y) == len(scan(tiny))


def test_fingerprint_is_stable(tiny) -> None:
    assert dataset.fingerprint(scan(tiny)) == dataset.fingerprint(scan(tiny))


# --- the real dataset -------------------------------------------------------------------------------------------

REAL = real_data_dir()
needs_real = pytest.mark.skipif(REAL is None, reason="the Speech Commands dataset is not at KWS_DATA_DIR")


@needs_real
def test_real_split_keeps_each_speaker_on_one_side() -> None:
    items = scan(REAL)
    splits_of_speaker: dict[str, set[str]] = defaultdict(set)
    for it in items:
        splits_of_speaker[it.speaker].add(it.split)
    assert all(len(s) == 1 for s in splits_of_speaker.values())
    counts = {s: sum(it.split == s for it in items) for s in dataset.SPLITS}
    # ~80/10/10 by speaker; clips per speaker vary, so allow some slack
    assert 0.05 < counts["validation"] / len(items) < 0.15
    assert 0.05 < counts["test"] / len(items) < 0.15
    assert all(it.split == reference_which_set(str(it.path)) for it in items)


def test_several_settings_share_one_read(tiny, monkeypatch) -> None:
    """Evaluating models of two presets on a cold cache reads each clip once, not once per preset, and each
    preset's features equal what it gets alone; a second call comes from the two cache files."""
    settings = [preset("standard"), preset("lecture"), preset("standard")]  # a repeat is featurized once
    reads: list = []
    real_read = dataset._read
    monkeypatch.setattr(dataset, "_read", lambda item: reads.append(item.path) or real_read(item))
    sets = dataset.load_feature_sets(settings, tiny)
    assert list(sets) == settings[:2]
    assert sorted(reads) == sorted(item.path for item in scan(tiny))  # every clip read exactly once
    for s, fs in sets.items():
        alone = load_features(s, tiny, use_cache=False)
        np.testing.assert_array_equal(fs.x, alone.x)
        assert fs.paths == alone.paths and list(fs.y) == list(alone.y) and list(fs.splits) == list(alone.splits)
    reads.clear()
    clips = [item.path for item in scan(tiny)]
    stat_calls: list = []
    real_stat = Path.stat
    monkeypatch.setattr(Path, "stat", lambda self, **kw: stat_calls.append(self) or real_stat(self, **kw))
    again = dataset.load_feature_sets(settings, tiny)
    assert reads == [] and all(np.array_equal(again[s].x, sets[s].x) for s in sets)
    assert [p for p in stat_calls if p in clips] == clips  # both settings' cache keys from one stat of each clip


def test_one_split_is_read_alone_and_cached_apart(tmp_path, monkeypatch) -> None:
    """Scoring the test split reads only its clips (a fresh Compare page: ~500 clips, not the whole dataset), into a
    cache file of its own that the whole dataset's does not overwrite."""
    from kws.features import PRESETS

    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    make_dataset(tmp_path / "data", per_split=2)
    read: list[str] = []
    original = dataset.load_waveforms

    def spy(items, *args, **kwargs):
        read.extend(it.split for it in items)
        return original(items, *args, **kwargs)

    monkeypatch.setattr(dataset, "load_waveforms", spy)
    settings = PRESETS["standard"]
    test_only = dataset.load_feature_sets([settings], tmp_path / "data", splits=("test",))[settings]
    assert set(read) == {"test"} and set(test_only.splits) == {"test"}
    whole = dataset.load_feature_sets([settings], tmp_path / "data")[settings]
    assert set(whole.splits) == {"train", "validation", "test"}
    assert len(list((tmp_path / "cache").glob("features-*.npz"))) == 2
    np.testing.assert_array_equal(test_only.x, whole.x[whole.splits == "test"])
    with pytest.raises(dataset.DatasetMissingError, match="nowhere split of this dataset holds no clips"):
        dataset.load_feature_sets([settings], tmp_path / "data", splits=("nowhere",))
