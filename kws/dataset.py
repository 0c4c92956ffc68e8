"""The Speech Commands layout: listing, the speaker-honest split, and cached parallel featurization.

Files are ``<word>/<SPEAKER>_nohash_<N>.wav``. The split hashes the speaker (the part before ``_nohash_``)
exactly as the dataset's own ``which_set`` does, so a speaker is always on one side and adding clips never
moves old ones between sets.

**Other words.** Every folder but the keywords' holds ``other`` clips (TensorFlow's ``_unknown_``), and
``_background_noise_`` holds noise, also ``other`` (its ``_silence_``). These clips come from the dataset's
official test speakers, so its hash puts them all in ``test``. The speakers who also say a keyword stay there,
with their keyword clips. The 69 who say no keyword here (pinned in ``open_speakers.txt``) are dealt by a second
hash of their id into train (~75%) or validation: the models then learn other words from 53 speakers, are
checked on 16 more, and are tested on the keyword test speakers' own other words. Noise clips, which have no
speaker, are dealt by the dataset's hash of their file name. Every rule reads only the file's name and the
pinned list, so adding clips never moves old ones.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kws import cache, config, store
from kws.audio import AudioError, load_audio
from kws.features import FeatureSettings, shapes
from kws.segment import model_inputs

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "test")
VALIDATION_PERCENT = 10.0
TEST_PERCENT = 10.0
#: Of the pinned other-word-only speakers, this share goes to validation and the rest to train.
OPEN_VALIDATION_PERCENT = 25.0
#: The folder of background noise; its clips are ``other`` and also the noise mixed into training clips.
NOISE_FOLDER = "_background_noise_"
_MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # the constant of the dataset's reference split
_CHUNK = 128

#: ``progress(stage, done, total)``: stage is "reading" or "features".
Progress = Callable[[str, int, int], None]


class DatasetMissingError(FileNotFoundError):
    """No dataset where ``KWS_DATA_DIR`` points; the message says how to get one."""


def missing_message(directory: Path) -> str:
    """The one message every page and the CLI give when the dataset is absent."""
    return (
        f"No dataset found at {directory}. Fetch it with `python -m kws data fetch --dest {directory}` "
        "or point KWS_DATA_DIR at a folder holding bed/, happy/ and cat/."
    )


def speaker_of(path: str | Path) -> str:
    """The speaker id: the file name before ``_nohash_``."""
    return os.path.basename(path).split("_nohash_", 1)[0]


def _percent(key: str) -> float:
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
    return (int(digest, 16) % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)


@functools.cache
def open_speakers() -> frozenset[str]:
    """The pinned speakers of other words who say no keyword: the ones :func:`split_of` may train on."""
    lines = (Path(__file__).with_name("open_speakers.txt")).read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def split_of(path: str | Path) -> str:
    """train / validation / test from a stable hash of the speaker (the dataset's own ``which_set``), except
    for the pinned other-word-only speakers, who go to train or validation (see the module's docstring)."""
    return _split_of_speaker(speaker_of(path))


@functools.lru_cache(maxsize=65536)
def _split_of_speaker(speaker: str) -> str:
    """:func:`split_of` for one speaker: a scan asks once per speaker, not once per clip."""
    if speaker in open_speakers():
        return "validation" if _percent("other:" + speaker) < OPEN_VALIDATION_PERCENT else "train"
    percent = _percent(speaker)
    if percent < VALIDATION_PERCENT:
        return "validation"
    if percent < VALIDATION_PERCENT + TEST_PERCENT:
        return "test"
    return "train"


@dataclass(frozen=True)
class Item:
    """One clip of the dataset."""

    path: Path
    label: str
    speaker: str
    split: str
    #: The folder: the keyword itself, another word, or :data:`NOISE_FOLDER` (``label`` is then ``other``).
    word: str = ""

    @property
    def label_index(self) -> int:
        """The index in the four-label order (bed, happy, cat, other); a keyword's is the same in both orders."""
        return config.LABEL_SETS[0].index(self.label)

    @property
    def is_noise(self) -> bool:
        return self.word == NOISE_FOLDER


def other_folders(root: Path, labels: Sequence[str] = config.LABELS) -> list[Path]:
    """The folders of other words under ``root``, sorted, then the noise folder if there is one."""
    words = sorted(
        d for d in root.iterdir() if d.is_dir() and not d.name.startswith(("_", ".")) and d.name not in labels
    )
    noise = root / NOISE_FOLDER
    return words + ([noise] if noise.is_dir() else [])


def scan(directory: str | Path | None = None, labels: Sequence[str] = config.LABELS, other: bool = False) -> list[Item]:
    """Every clip of ``labels`` under ``directory`` (default :func:`kws.config.data_dir`), sorted by path; with
    ``other``, then every clip of the other folders (:func:`other_folders`), labelled :data:`kws.config.OTHER`."""
    root = Path(directory) if directory is not None else config.data_dir()
    if not root.is_dir() or not any((root / label).is_dir() for label in labels):
        raise DatasetMissingError(missing_message(root))
    folders = [(root / label, label) for label in labels if (root / label).is_dir()]
    if other:
        folders += [(folder, config.OTHER) for folder in other_folders(root, labels)]
    items = []
    for folder, label in folders:
        for name in sorted(n for n in os.listdir(folder) if n.endswith(".wav")):
            speaker = speaker_of(name)
            items.append(Item(folder / name, label, speaker, _split_of_speaker(speaker), folder.name))
    if not items:
        raise DatasetMissingError(missing_message(root))
    return items


def fingerprint(items: Sequence[Item], stats: Sequence[os.stat_result] | None = None) -> str:
    """A short hash of the clips' names and sizes: the same data gives the same fingerprint on any machine.

    ``stats`` (each item's ``stat()``, in order) saves stat-ing every file again where the caller has them.
    """
    stats = stats if stats is not None else [item.path.stat() for item in items]
    h = hashlib.sha1()
    for item, stat in zip(items, stats, strict=True):
        h.update(f"{item.word or item.label}/{item.path.name}:{stat.st_size}\n".encode())
    return h.hexdigest()[:16]


@dataclass
class Waveforms:
    """Decoded 16 kHz clips (variable length) of the items that could be read."""

    items: list[Item]
    clips: list[np.ndarray]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _read(item: Item) -> np.ndarray | str:
    try:
        return load_audio(item.path).samples
    except AudioError as err:
        return str(err)


_warned: set[tuple[str, float, str]] = set()
_warned_lock = threading.Lock()


def _warn_once(path: Path, reason: str) -> None:
    """Log an unreadable clip once per process and file version: the app's pages and evaluation each read the
    dataset, again after every change, which logged each bad clip again and again."""
    try:
        stamp = path.stat().st_mtime
    except OSError:
        stamp = -1.0
    key = (str(path), stamp, reason)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning("skipping %s: %s", path, reason)


def load_waveforms(items: Sequence[Item], progress: Progress | None = None) -> Waveforms:
    """Read every clip; a corrupt clip is skipped and reported, never fatal.

    One after another on purpose: decoding a short WAV is mostly Python work under the GIL, so threads only
    added contention (4,690 clips: 1.0 s alone, 1.4 s with 2 threads, 1.9 s with 4 on 2 cores; measured).
    """
    result = Waveforms(items=[], clips=[])
    for done, item in enumerate(items, start=1):
        out = _read(item)
        if isinstance(out, str):
            _warn_once(item.path, out)
            result.skipped.append((item.path, out))
        else:
            result.items.append(item)
            result.clips.append(out)
        if progress and (done % 256 == 0 or done == len(items)):
            progress("reading", done, len(items))
    return result


def read_and_featurize(
    items: Sequence[Item], settings: FeatureSettings, progress: Progress | None = None
) -> tuple[Waveforms, np.ndarray]:
    """Read and featurize in one pass, without keeping the waveforms (``clips`` of the result stays empty)."""
    read, (x,) = read_and_featurize_many(items, [settings], progress)
    return read, x


def read_and_featurize_many(
    items: Sequence[Item], settings: Sequence[FeatureSettings], progress: Progress | None = None
) -> tuple[Waveforms, list[np.ndarray]]:
    """Read every clip once and featurize it with each of ``settings``: one array per settings, in order.

    This thread reads chunk after chunk while a worker featurizes the chunk before: reading holds the GIL,
    the FFTs and matrix products mostly release it, so on two cores the two overlap. Models with different
    settings (the centred lecture perceptron beside the standard preset) share the one read.
    """
    read = Waveforms(items=[], clips=[])
    pending: list[list[Future[np.ndarray]]] = []
    with ThreadPoolExecutor(1) as pool:
        for start in range(0, len(items), _CHUNK):
            part = load_waveforms(items[start : start + _CHUNK])
            read.items += part.items
            read.skipped += part.skipped
            if part.clips:
                pending.append([pool.submit(model_inputs, part.clips, s) for s in settings])
            if progress:
                progress("reading", min(start + _CHUNK, len(items)), len(items))
        parts: list[list[np.ndarray]] = [[] for _ in settings]
        done, total = 0, len(read.items) * len(settings)
        for futures in pending:
            for out, future in zip(parts, futures):
                out.append(future.result())
                done += len(out[-1])
            if progress:
                progress("features", done, total)
    arrays = []
    for s, out in zip(settings, parts):
        arrays.append(np.concatenate(out) if out else np.zeros((0, *shapes(s).input_shape), np.float32))
    return read, arrays


def featurize(clips: Sequence[np.ndarray], settings: FeatureSettings, progress: Progress | None = None) -> np.ndarray:
    """Window and featurize many clips in parallel chunks: ``(n, n_frames, n_mfcc)`` float32."""
    geo = shapes(settings)
    out = np.empty((len(clips), *geo.input_shape), dtype=np.float32)
    starts = list(range(0, len(clips), _CHUNK))

    def work(start: int) -> int:
        part = clips[start : start + _CHUNK]
        out[start : start + len(part)] = model_inputs(list(part), settings)
        return len(part)

    done = 0
    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        for n in pool.map(work, starts):
            done += n
            if progress:
                progress("features", done, len(clips))
    return out


@dataclass
class FeatureSet:
    """Model inputs and labels of a whole dataset, with each clip's split."""

    x: np.ndarray
    y: np.ndarray
    splits: np.ndarray
    paths: list[str]
    skipped: list[tuple[str, str]]
    fingerprint: str

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        mask = self.splits == split
        return self.x[mask], self.y[mask]


def _files_stamp(items: Sequence[Item], stats: Sequence[os.stat_result]) -> str:
    """The clips' paths, sizes and modification times: any change to the files names a new cache file."""
    h = hashlib.sha1()
    for item, stat in zip(items, stats, strict=True):
        h.update(f"{item.path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _cache_key(files_stamp: str, settings: FeatureSettings) -> str:
    return hashlib.sha1(f"{settings.key()}\n{files_stamp}".encode()).hexdigest()[:20]


def load_features(
    settings: FeatureSettings,
    directory: str | Path | None = None,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> FeatureSet:
    """Features of the whole dataset, from the on-disk cache when the files and settings are unchanged."""
    return load_feature_sets([settings], directory, progress, use_cache)[settings]


def load_feature_sets(
    settings: Sequence[FeatureSettings],
    directory: str | Path | None = None,
    progress: Progress | None = None,
    use_cache: bool = True,
    splits: Sequence[str] | None = None,
) -> dict[FeatureSettings, FeatureSet]:
    """:func:`load_features` for several settings at once: each from its cache file where it has one, and all
    the others from a single read of the clips (``evaluate`` on a cold cache read the dataset once per setting).

    ``splits``: only the clips of these splits (their own cache file): scoring the test split on a fresh machine
    reads its ~500 clips, not the whole dataset.
    """
    items = scan(directory, other=True)
    if splits is not None:
        items = [item for item in items if item.split in splits]
        if not items:
            raise DatasetMissingError(f"The {' and '.join(splits)} split of this dataset holds no clips.")
    stats = [item.path.stat() for item in items]  # once, for every setting's cache key and the fingerprint
    stamp = _files_stamp(items, stats)
    wanted = list(dict.fromkeys(settings))
    files = {s: config.cache_dir() / f"features-{s.name}-{_cache_key(stamp, s)}.npz" for s in wanted}
    result: dict[FeatureSettings, FeatureSet] = {}
    for s in wanted:
        cached = _read_cache(files[s]) if use_cache and files[s].is_file() else None
        if cached is not None:
            result[s] = cached
            cache.mark_used(files[s])
            if progress:
                progress("features", len(cached.y), len(cached.y))
    missing = [s for s in wanted if s not in result]
    if missing:
        waves, arrays = read_and_featurize_many(items, missing, progress)
        # what the one read gives every setting alike: labels, splits, paths, skips, and the files' fingerprint
        shared = dict(
            y=np.array([it.label_index for it in waves.items], dtype=np.int64),
            splits=np.array([it.split for it in waves.items]),
            paths=[str(it.path) for it in waves.items],
            skipped=[(str(p), reason) for p, reason in waves.skipped],
            fingerprint=fingerprint(items, stats),
        )
        for s, x in zip(missing, arrays):
            result[s] = FeatureSet(x=x, **shared)
            if use_cache:
                _save_cache(files[s], result[s])
    return {s: result[s] for s in wanted}


def _read_cache(cache_file: Path) -> FeatureSet | None:
    """A cached feature set, or None (logged) when the file cannot be read: it is then made again."""
    try:
        with np.load(cache_file, allow_pickle=False) as data:
            skipped = [tuple(s.split("\t", 1)) for s in data["skipped"].tolist()]
            return FeatureSet(
                data["x"], data["y"], data["splits"], data["paths"].tolist(), skipped, str(data["fingerprint"])
            )
    except (OSError, KeyError, ValueError) as err:
        logger.warning("ignoring unreadable feature cache %s: %s", cache_file, err)
        return None


def _save_cache(cache_file: Path, fs: FeatureSet) -> None:
    """Write atomically (a crash never leaves a half-written cache that a later run trusts), then keep the cache
    folder within its bound (:func:`kws.cache.prune`)."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x=fs.x,
        y=fs.y,
        splits=fs.splits,
        paths=np.array(fs.paths),
        skipped=np.array(["\t".join(s) for s in fs.skipped], dtype=str),
        fingerprint=np.array(fs.fingerprint),
    )
    try:
        store.write_bytes_atomic(cache_file, buffer.getvalue())
    except OSError as err:
        logger.warning("could not write feature cache %s: %s", cache_file, err)
        return
    cache.prune(keep=cache_file)
