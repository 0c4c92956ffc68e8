"""Robustness: every model's keyword accuracy and false accepts on the test split as real background noise gets
louder.

For each test clip one noise clip of the dataset's ``_background_noise_`` folder is drawn by a seeded rng and
mixed in at each SNR of :data:`SNRS` (:func:`kws.noise.mix_at_snr`), the SNR measured over the second the models
hear: the window :func:`kws.segment.find_window` finds in the *clean* clip with the set's first model's settings
(every preset's window is one second, so this is the window all of them hear). The clip keeps the same noise
clip and loop offset at every SNR, so only the noise's level changes along a curve. Each model then hears the
noisy clip through the one feature path (:func:`kws.segment.model_inputs`, with its own settings) and answers in
one batch per SNR. A clip that is silent where the models listen cannot be given an SNR and is left out of every
column. Keyword accuracy is over the keyword clips (an ``other`` answer to one is wrong); false accepts over the
clips of other words and noise, at the app's operating point (:func:`kws.evaluate.open_scores`, as ``evaluate``
reports them), for every model: a three-label model accepts whatever it is sure of.

The result is stored as JSON in the cache folder under a key of the model set (its JSON files' bytes), the test
split's files, the noise, the seed and the SNRs, so the Compare page draws it at once. :func:`start` runs
:func:`measure` in a background thread for the app (one job per key); numpy only, no Streamlit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kws import config, dataset, noise, store
from kws.segment import model_inputs

logger = logging.getLogger(__name__)

#: The SNRs measured, loudest speech first (dB); "clean" (no noise) is added before them.
SNRS: tuple[int, ...] = (30, 25, 20, 15, 10, 5, 0, -5)
CLEAN = "clean"
#: Seconds per test clip per level (clean and each SNR) and feature setting for mixing, MFCCs and answering, and
#: seconds for loading the models and reading the noise: the shipped set (two settings) takes ~50 s on the real
#: test split (1,720 clips, 9 levels) on two busy cores. The page's estimate is built from them.
SECONDS_PER_CLIP_LEVEL = 0.0015
STARTUP_S = 2.0

#: ``progress(done, total)``: called from the measuring thread after each clip.
Progress = Callable[[int, int], None]


def models_stamp(models_dir: str | Path) -> str:
    """A hash of the set's model JSON files' bytes: retraining or swapping a model names a new result."""
    h = hashlib.sha1()
    for path in sorted(Path(models_dir).glob("*.json")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def test_items(data_dir: str | Path | None) -> list[dataset.Item]:
    """The test split's clips, keywords and other words, that a result measures (one scan of the dataset)."""
    items = [item for item in dataset.scan(data_dir, other=True) if item.split == "test"]
    if not items:
        raise dataset.DatasetMissingError("The test split of this dataset holds no clips.")
    return items


def _noise(data_dir: str | Path | None) -> list[Path]:
    clips = noise.noise_clips(data_dir if data_dir is not None else config.data_dir())
    if not clips:
        folder = noise.noise_folder(data_dir if data_dir is not None else config.data_dir())
        raise dataset.DatasetMissingError(f"No usable background noise in {folder}: nothing to mix in.")
    return clips


def _path(stamp: str, fingerprint: str, noise_clips: Sequence[Path], seed: int, snrs: Sequence[int]) -> Path:
    """The stored result's file, named by everything the result depends on."""
    noise_names = ",".join(p.name for p in noise_clips)
    text = f"{stamp}\n{fingerprint}\n{noise_names}\n{seed}\n{list(snrs)}"
    return config.cache_dir() / f"robustness-{hashlib.sha1(text.encode()).hexdigest()[:20]}.json"


def result_path(
    models_dir: str | Path,
    data_dir: str | Path | None = None,
    seed: int = 0,
    snrs: Sequence[int] = SNRS,
    items: Sequence[dataset.Item] | None = None,
) -> Path:
    """Where the result for this model set, test split, noise, seed and SNRs is stored (it may not exist yet);
    ``items``: :func:`test_items`, where the caller has them.

    Raises :class:`kws.dataset.DatasetMissingError` where there is no dataset or no usable noise.
    """
    items = test_items(data_dir) if items is None else items
    return _path(models_stamp(models_dir), dataset.fingerprint(items), _noise(data_dir), seed, snrs)


def load(
    models_dir: str | Path, data_dir: str | Path | None = None, seed: int = 0, snrs: Sequence[int] = SNRS
) -> dict[str, Any] | None:
    """The stored result for this model set and dataset, or None where none is stored (or it is unreadable)."""
    return read(result_path(models_dir, data_dir, seed, snrs))


def read(path: Path) -> dict[str, Any] | None:
    """The result stored at ``path`` (:func:`result_path`), or None where none is (or it is unreadable)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        logger.warning("ignoring unreadable robustness result %s: %s", path, err)
        return None


def estimate_seconds(
    models_dir: str | Path,
    data_dir: str | Path | None = None,
    snrs: Sequence[int] = SNRS,
    items: Sequence[dataset.Item] | None = None,
) -> float:
    """About how long :func:`measure` takes here: clips x levels x distinct feature settings (``items``: as in
    :func:`result_path`)."""
    n_settings = len({json.dumps(i.meta["feature_settings"], sort_keys=True) for i in store.list_models(models_dir)})
    clips = len(test_items(data_dir) if items is None else items)
    return STARTUP_S + clips * (len(snrs) + 1) * max(n_settings, 1) * SECONDS_PER_CLIP_LEVEL


def measure(
    models_dir: str | Path,
    data_dir: str | Path | None = None,
    snrs: Sequence[int] = SNRS,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every model's keyword accuracy and false-accept rate clean and at each of ``snrs`` (see the module
    docstring), stored and returned.

    Returns ``{"snrs": ["clean", 30, ...], "accuracy": {model: [...]}, "false_accepts": {model: [...]}, "clips": n
    keyword clips, "other_clips": m, "seed": seed, "noise_clips": k, "silent_clips": s, "models_stamp": ...,
    "data_fingerprint": ...}`` (a false-accept rate is None where the test split holds no other clips). Raises
    :class:`kws.dataset.DatasetMissingError` where there is no test split or no usable noise.
    """
    from kws.evaluate import open_scores
    from kws.inference import load_models

    items = test_items(data_dir)
    noise_paths = _noise(data_dir)
    models = load_models(models_dir)
    settings = list(dict.fromkeys(m.settings for m in models))
    reference = settings[0]
    waves = dataset.load_waveforms(items)
    noises = [noise.read_noise(p) for p in noise_paths]
    levels: list[float | None] = [None, *snrs]  # None: the clean clip
    # each clip's MFCCs at every level, made as it is mixed: a clip's windows are 8x its features
    feats: dict[Any, list[list[np.ndarray]]] = {s: [[] for _ in levels] for s in settings}
    y: list[int] = []
    silent = 0
    for i, (item, clip) in enumerate(zip(waves.items, waves.clips)):
        draw = np.random.default_rng([seed, i])
        chosen = noises[int(draw.integers(len(noises)))]
        span = noise.speech_span(clip, reference)
        try:
            # the same fresh rng at every level: the same loop offset, so only the noise's level changes
            noisy = [
                clip
                if snr is None
                else noise.mix_at_snr(clip, chosen, snr, np.random.default_rng([seed, i, 1]), span).samples
                for snr in levels
            ]
        except noise.SilentSignalError:
            silent += 1
        else:
            y.append(item.label_index)
            for s in settings:
                batch = model_inputs(noisy, s)
                for level, row in enumerate(batch):
                    feats[s][level].append(row)
        if progress:
            progress(i + 1, len(waves.items))
    truth = np.asarray(y, dtype=np.int64)
    accuracy: dict[str, list[float]] = {}
    false_accepts: dict[str, list[float]] = {}
    for m in models:
        row, accepted = [], []
        for level in range(len(levels)):
            stack = feats[m.settings][level]
            if not stack:
                row.append(float("nan"))
                accepted.append(None)
                continue
            scores = open_scores(truth, m.predict_batch(np.stack(stack)), m.labels)
            row.append(scores.keyword_accuracy)
            accepted.append(None if np.isnan(scores.false_accept_rate) else scores.false_accept_rate)
        accuracy[m.name] = row
        false_accepts[m.name] = accepted
    keyword_clips = int(np.sum(truth < len(config.LABELS)))
    result = {
        "snrs": [CLEAN, *snrs],
        "accuracy": accuracy,
        "false_accepts": false_accepts,
        "clips": keyword_clips,
        "other_clips": len(y) - keyword_clips,
        "silent_clips": silent,
        "seed": seed,
        "noise_clips": len(noise_paths),
        "models_stamp": models_stamp(models_dir),
        "data_fingerprint": dataset.fingerprint(items),
    }
    path = _path(result["models_stamp"], result["data_fingerprint"], noise_paths, seed, snrs)
    try:
        store.write_json_atomic(path, result)
    except OSError as err:
        logger.warning("could not store the robustness result %s: %s", path, err)
    return result


# --- background jobs for the app -----------------------------------------------------------------------------


@dataclass
class Job:
    """One :func:`measure` running in a thread; the page reads it, only the thread writes it."""

    fraction: float = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


_JOBS: dict[str, Job] = {}
_JOBS_LOCK = threading.Lock()


def job(path: Path) -> Job | None:
    """The job measuring the result stored at ``path`` (:func:`result_path`), running or finished, if one was
    started here."""
    with _JOBS_LOCK:
        return _JOBS.get(str(path))


def start(models_dir: str | Path, data_dir: str | Path | None = None) -> Job:
    """Start measuring in a daemon thread, or return the job already measuring the same key (one per key)."""
    key = str(result_path(models_dir, data_dir))
    with _JOBS_LOCK:
        running = _JOBS.get(key)
        if running is not None and running.error is None:
            return running
        new = _JOBS[key] = Job()

    def on_progress(done: int, total: int) -> None:  # runs in the measuring thread
        new.fraction = done / max(total, 1)

    def work() -> None:  # runs in the measuring thread
        try:
            new.result = measure(models_dir, data_dir, progress=on_progress)
        except Exception as err:  # reported on the page in one line; the traceback goes to the log
            logger.exception("measuring robustness failed")
            new.error = f"{type(err).__name__}: {err}"

    new.thread = threading.Thread(target=work, name="kws-robustness", daemon=True)
    new.thread.start()
    return new
