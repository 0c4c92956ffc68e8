"""Training: seeded, augmented like a real microphone, early-stopped, observable and cancellable.

:func:`train` writes every model of a run into a staging folder and swaps it in only when all are done
(:func:`kws.store.replace_dir`): a crash or a cancel leaves the previous models untouched.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import platform
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import librosa
import numpy as np

from kws import config, convert, dataset, features, noise, store, zoo
from kws._tf import keras, tf
from kws.evaluate import Scores, open_scores, score
from kws.features import FeatureSettings, shapes
from kws.options import Cancelled, EpochReport, Progress, TrainConfig
from kws.segment import batch_windows

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What :func:`train` produced."""

    out_dir: Path
    metas: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


class _StopAt(keras.callbacks.Callback):
    """Ends training after epoch ``last`` (1-based) of a longer schedule."""

    def __init__(self, last: int):
        super().__init__()
        self.last = last

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch + 1 >= self.last:
            self.model.stop_training = True


class _Listener(keras.callbacks.Callback):
    """Reports epochs and stops between batches when the cancel event is set."""

    def __init__(self, name: str, index: int, n_models: int, epochs: int, progress: Progress, cancel):
        super().__init__()
        self.info = (name, index, n_models, epochs)
        self.progress, self.cancel = progress, cancel

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if self.cancel is not None and self.cancel.is_set():
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.progress.on_epoch and not (self.cancel is not None and self.cancel.is_set()):
            name, index, n_models, epochs = self.info
            clean = {k: float(v) for k, v in (logs or {}).items()}
            self.progress.on_epoch(EpochReport(name, index, n_models, epoch + 1, epochs, clean))


#: Of the noisy variants, this share gets the dataset's real background noise (where the run has some), the rest
#: generated white, pink or brown noise.
REAL_NOISE_SHARE = 0.6


def augment(
    windows: np.ndarray,
    rng: np.random.Generator,
    copies: int,
    max_shift: int = 2400,
    speed: float = 0.0,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """Microphone-like variants of 1-second windows: speed (1 ± ``speed``), time shift (±150 ms), gain
    (-12..+6 dB), noise.

    Noise (on 80% of clips) is at 5-35 dB SNR, cut at a random offset from a bank of unit-RMS rows twice a window
    long: :data:`REAL_NOISE_SHARE` of the time from ``noise`` (the training split's real background noise, from
    :func:`noise_bank`), otherwise from generated white, pink or brown noise. Row by row into one preallocated
    array: whole-array temporaries of this size cost more in page faults than the arithmetic.
    """
    n, length = windows.shape
    bank = _coloured_noise(rng, 48, 2 * length)
    if noise is not None and len(noise):
        real = rng.random(n * copies) < REAL_NOISE_SHARE
        picks = rng.integers(0, len(noise), size=n * copies)
    else:
        real = np.zeros(n * copies, bool)
        picks = np.zeros(n * copies, np.int64)
    out = np.empty((copies * n, length), dtype=np.float32)
    for copy in range(copies):
        source = windows if not speed else speed_perturb(windows, rng.uniform(1 - speed, 1 + speed, size=n))
        shifts = rng.integers(-max_shift, max_shift + 1, size=n)
        gains = (10 ** (rng.uniform(-12, 6, size=n) / 20)).astype(np.float32)
        noise_rows, noise_starts = rng.integers(0, len(bank), size=n), rng.integers(0, length, size=n)
        snrs = 10 ** (rng.uniform(5, 35, size=n) / 20)
        noisy = rng.random(n) < 0.8
        for i in range(n):
            row, shift = out[copy * n + i], int(shifts[i])
            if shift >= 0:  # row[t] = source[t - shift]
                row[:shift] = 0.0
                row[shift:] = source[i, : length - shift]
            else:
                row[: length + shift] = source[i, -shift:]
                row[length + shift :] = 0.0
            row *= gains[i]
            if noisy[i]:
                level = np.sqrt(np.dot(row, row) / length) + 1e-6
                j = copy * n + i
                source_bank, source_row = (noise, picks[j]) if real[j] else (bank, noise_rows[i])
                cut = source_bank[source_row, noise_starts[i] : noise_starts[i] + length]
                row += cut * np.float32(level / snrs[i])
    np.clip(out, -1.0, 1.0, out=out)
    return out


def speed_perturb(windows: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Play each window ``rates[i]`` times as fast about its centre (pitch and tempo move together, like
    Kaldi's speed perturbation); linear interpolation, silence beyond the ends. Simulates other voices cheaply.
    """
    n, length = windows.shape
    out = np.empty((n, length), dtype=np.float32)
    grid = np.arange(length, dtype=np.float64)
    centre = (length - 1) / 2
    for i in range(n):
        out[i] = np.interp((grid - centre) * rates[i] + centre, grid, windows[i], left=0.0, right=0.0)
    return out


def spec_masks(x: np.ndarray, rng: np.random.Generator, count: int, fill: np.ndarray) -> np.ndarray:
    """SpecAugment-style masking: ``count`` time bands (≤10% of frames) and ``count`` coefficient bands (≤10%)
    per example, set to ``fill`` (the training mean per coefficient, i.e. 0 after the model's normaliser).
    """
    n, frames, coeffs = x.shape
    out = x.copy()
    for size, axis in ((frames, 1), (coeffs, 2)):
        widest = max(1, size // 10)
        idx = np.arange(size)[None, :]
        for _ in range(count):
            width = rng.integers(0, widest + 1, size=n)
            start = rng.integers(0, size, size=n)
            hit = (idx >= start[:, None]) & (idx < (start + width)[:, None])  # (n, size)
            mask = hit[:, :, None] if axis == 1 else hit[:, None, :]
            out = np.where(mask, fill[None, None, :], out)
    return out.astype(np.float32, copy=False)


def mix_batch(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, alpha: float, n_classes: int = len(config.LABELS)
) -> tuple[np.ndarray, np.ndarray]:
    """Mixup within a batch: example ``i`` becomes ``lam_i * x[i] + (1 - lam_i) * x[j]`` for a random partner
    ``j`` of the same batch, ``lam_i ~ Beta(alpha, alpha)``, and its target the same blend of the two one-hot
    labels. Blending MFCCs is blending what the model sees: its input normalisation and cepstral mean removal
    are linear, so they commute with the blend.
    """
    n = len(y)
    lam = rng.beta(alpha, alpha, size=n).astype(np.float32)
    partner = rng.permutation(n)
    onehot = np.eye(n_classes, dtype=np.float32)[y]
    shape = (n,) + (1,) * (x.ndim - 1)
    mixed = lam.reshape(shape) * x + (1 - lam).reshape(shape) * x[partner]
    return mixed.astype(np.float32, copy=False), lam[:, None] * onehot + (1 - lam)[:, None] * onehot[partner]


def _coloured_noise(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    """Unit-RMS noise rows with power falling as 1/f^0 (white), 1/f (pink) or 1/f^2 (brown)."""
    spec = np.fft.rfft(rng.standard_normal((n, length)), axis=1)
    freqs = np.fft.rfftfreq(length)
    freqs[0] = freqs[1]
    slope = rng.choice([0.0, 0.5, 1.0], size=(n, 1))
    noise = np.fft.irfft(spec / freqs[None, :] ** slope, n=length, axis=1)
    noise /= np.sqrt(np.mean(noise**2, axis=1, keepdims=True)) + 1e-12
    return noise.astype(np.float32)


def noise_bank(clips: list[np.ndarray], length: int) -> np.ndarray:
    """Unit-RMS rows ``2 * length`` long from real noise clips (each looped to fill its row), for :func:`augment`;
    clips quieter than :data:`kws.noise.MIN_NOISE_DB` are left out (raised to an SNR they would be rounding)."""
    rows = []
    for clip in clips:
        clip = np.asarray(clip, np.float32)
        power = float(np.mean(clip**2)) if len(clip) else 0.0
        if power <= 10 ** (noise.MIN_NOISE_DB / 10):
            continue
        rows.append(np.resize(clip, 2 * length) / np.float32(np.sqrt(power)))
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 2 * length), np.float32)


def versions() -> dict[str, str]:
    """Library versions, for the metadata: a model says what made it."""
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "librosa": librosa.__version__,
    }


@dataclass
class _Data:
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    stats: tuple[np.ndarray, np.ndarray]
    fingerprint: str
    skipped: list[tuple[str, str]]
    train_windows: np.ndarray  # 1-second training windows, re-augmented every epoch
    #: Clips per split of the dataset; ``x["train"]`` holds every clip fitted on (train + validation in a refit).
    split_counts: dict[str, int] = field(default_factory=dict)
    #: The file behind each row of ``x[split]`` (unreadable clips are not there).
    paths: dict[str, list[str]] = field(default_factory=dict)
    #: The fitted splits' real background noise as :func:`noise_bank` rows, mixed into augmented variants.
    noise: np.ndarray | None = None
    #: The label order the run's models answer in.
    labels: tuple[str, ...] = config.LABELS
    #: For a run without ``other``: the held-out splits' clips of other words and noise, which its models never
    #: learn from but are scored on, so every model's metadata says how often it takes them for a keyword.
    open_x: dict[str, np.ndarray] = field(default_factory=dict)

    def open_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A held-out split's features and four-label truth, with :attr:`open_x`'s clips of other words after its
        own (labelled ``other``)."""
        extra = self.open_x.get(split)
        if extra is None or not len(extra):
            return self.x[split], self.y[split]
        truth = np.full(len(extra), config.LABEL_SETS[0].index(config.OTHER), dtype=np.int64)
        return np.concatenate([self.x[split], extra]), np.concatenate([self.y[split], truth])


class AugmentedEpochs:
    """Each epoch's augmented training features, made once per run and shared by every model of the run.

    Every model then sees the same variants (a fair comparison), and the ~2 s an epoch of augmenting and
    featurizing is paid once, not once per model. Memory stays bounded: only the epoch in use is held; the
    others wait in a temporary folder (standard preset ~30 MB an epoch, ~0.9 GB for 30 epochs on disk, not in
    RAM) that :meth:`close` removes. Each epoch draws from its own seed, so its variants do not depend on the
    order in which epochs are asked for.
    """

    def __init__(self, data: _Data, settings: FeatureSettings, cfg: TrainConfig):
        self.data, self.settings, self.cfg = data, settings, cfg
        self._dir: tempfile.TemporaryDirectory | None = None
        self._written: set[int] = set()
        self._current: tuple[int, np.ndarray] | None = None

    @property
    def copies(self) -> int:
        return self.cfg.variants_per_clip

    def features(self, epoch: int) -> np.ndarray:
        """The augmented variants for ``epoch`` (0-based), ``(copies * n_train, frames, coeffs)``."""
        if self._current is not None and self._current[0] == epoch:
            return self._current[1]
        if epoch in self._written:
            feats = np.load(self._path(epoch), mmap_mode="r")
        else:
            feats = self._make(epoch)
            np.save(self._path(epoch), feats)
            self._written.add(epoch)
        self._current = (epoch, feats)
        return feats

    def _make(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.cfg.seed, epoch])
        extra = augment(self.data.train_windows, rng, self.copies, speed=self.cfg.speed, noise=self.data.noise)
        feats = dataset.featurize(list(extra), self.settings)
        if self.cfg.masks:
            feats = spec_masks(feats, rng, self.cfg.masks, self.data.stats[0])
        return feats

    def _path(self, epoch: int) -> Path:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="kws-epochs-")
        return Path(self._dir.name) / f"epoch{epoch:04d}.npy"

    def close(self) -> None:
        """Delete the stored epochs (also done when the object is collected)."""
        self._current = None
        self._written.clear()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


class _EpochBatches(keras.utils.PyDataset):
    """Training batches: the clean clips plus that epoch's augmented variants, shuffled anew every epoch.

    Epochs advance in ``on_epoch_begin``: Keras also calls ``on_epoch_end`` once before the first epoch,
    which would skip epoch 0's variants and make one set too many.
    """

    def __init__(self, data: _Data, epochs: AugmentedEpochs, seed: int, batch_size: int, mixup: float = 0.0):
        super().__init__()
        self.data, self.epochs, self.batch_size, self.mixup, self.seed = data, epochs, batch_size, mixup, seed
        self.rng = np.random.default_rng(seed)
        self.epoch = -1  # before the first epoch
        self._ready_for: int | None = None
        self.x: np.ndarray | None = None
        self.y: np.ndarray | None = None

    def _refresh(self) -> None:
        epoch = max(self.epoch, 0)
        x, y = self.data.x["train"], self.data.y["train"]
        if self.epochs.copies > 0:
            x = np.concatenate([x, self.epochs.features(epoch)])
            y = np.tile(y, 1 + self.epochs.copies)  # each variant keeps its clip's label
        order = self.rng.permutation(len(y))
        self.x, self.y = x[order], y[order]
        self._ready_for = epoch

    def __len__(self) -> int:
        examples = len(self.data.y["train"]) * (1 + self.epochs.copies)
        return -(-examples // self.batch_size)

    def __getitem__(self, index: int):
        if self._ready_for is None:  # asked before the first epoch began (Keras may peek)
            self._refresh()
        sl = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if not self.mixup:
            return self.x[sl], self.y[sl]
        # drawn from (seed, epoch, batch): the same blend whichever order Keras asks for batches in
        rng = np.random.default_rng([self.seed, max(self.epoch, 0), index, 1])
        return mix_batch(self.x[sl], self.y[sl], rng, self.mixup, len(self.data.labels))

    def on_epoch_begin(self) -> None:
        self.epoch += 1
        if self._ready_for != self.epoch:
            self._refresh()


def _limit(
    items: list[dataset.Item], limit: int | None, seed: int, labels: tuple[str, ...] = config.LABELS
) -> list[dataset.Item]:
    if limit is None:
        return items
    rng = np.random.default_rng(seed)
    kept: list[dataset.Item] = []
    for split in dataset.SPLITS:
        part = [it for it in items if it.split == split]
        # keep every label in every split, so tiny runs still see all words
        for label in labels:
            group = [it for it in part if it.label == label]
            take = max(1, limit // len(labels))
            kept += [group[i] for i in sorted(rng.permutation(len(group))[:take])]
    return kept


def prepare_data(
    cfg: TrainConfig,
    settings: FeatureSettings,
    data_dir: Path | None,
    progress: Progress,
    items: list[dataset.Item] | None = None,
) -> _Data:
    """Read the clips and featurize each split; keep the training windows for fresh augmentation.

    ``x["train"]`` is what the model learns from: the train split, plus the validation split in a refit.
    ``items``: the clips with their splits, instead of scanning ``data_dir`` (cross-validation deals its own).
    """
    dealt = items is not None  # cross-validation's own clips: no other words beside them
    if items is None:
        items = dataset.scan(data_dir, other=cfg.other)
    items = _limit(items, cfg.limit_per_split, cfg.seed, cfg.labels)
    waves = dataset.load_waveforms(items, progress.on_stage)
    splits = np.array([it.split for it in waves.items])
    labels = np.array([it.label_index for it in waves.items], dtype=np.int64)
    index = {split: np.flatnonzero(splits == split) for split in dataset.SPLITS}
    x = {s: dataset.featurize([waves.clips[i] for i in idx], settings, progress.on_stage) for s, idx in index.items()}
    counts = {split: len(idx) for split, idx in index.items()}
    # the clips learnt from, each split's in scan order: the rows of x["train"] (the train split, or more in a refit)
    index["train"] = np.concatenate([index[s] for s in cfg.fit_splits])
    if not cfg.holds_out_validation:
        x["train"] = np.concatenate([x[s] for s in cfg.fit_splits])
    y = {split: labels[idx] for split, idx in index.items()}
    paths = {split: [str(waves.items[i].path) for i in idx] for split, idx in index.items()}
    flat = x["train"].reshape(-1, x["train"].shape[-1])
    noise_clips = [waves.clips[i] for i in index["train"] if waves.items[i].is_noise]
    if cfg.augment and not noise_clips and not cfg.other:
        noise_clips = _noise_clips(data_dir, cfg.fit_splits)
    held_out = [s for s in ("validation", "test") if s not in cfg.fit_splits]
    open_x = {} if cfg.other or dealt else _open_clips(data_dir, held_out, settings)
    return _Data(
        x=x,
        y=y,
        stats=(flat.mean(0), flat.var(0)),
        fingerprint=dataset.fingerprint(items),
        skipped=[(str(p), r) for p, r in waves.skipped],
        train_windows=batch_windows([waves.clips[i] for i in index["train"]], settings),
        split_counts=counts,
        paths=paths,
        noise=noise_bank(noise_clips, shapes(settings).clip_samples) if cfg.augment else None,
        labels=cfg.labels,
        open_x=open_x,
    )


def _open_clips(data_dir: Path | None, splits: list[str], settings: FeatureSettings) -> dict[str, np.ndarray]:
    """The features of ``splits``' clips of other words and noise (none where the dataset has no other folders)."""
    items = [it for it in dataset.scan(data_dir, other=True) if it.label == config.OTHER and it.split in splits]
    if not items:
        return {}
    waves = dataset.load_waveforms(items)
    return {
        split: dataset.featurize([c for c, it in zip(waves.clips, waves.items) if it.split == split], settings)
        for split in splits
    }


def _noise_clips(data_dir: Path | None, splits: tuple[str, ...]) -> list[np.ndarray]:
    """The real background noise of ``splits`` for a run that does not learn ``other`` (none where the dataset
    has no noise folder): its keywords are still mixed with real rooms."""
    noise = [it for it in dataset.scan(data_dir, other=True) if it.is_noise and it.split in splits]
    return dataset.load_waveforms(noise).clips if noise else []


def fit_one(
    name: str,
    data: _Data,
    cfg: TrainConfig,
    settings: FeatureSettings,
    listener: _Listener,
    shared: AugmentedEpochs | None = None,
    start_from: Path | None = None,
):
    """Build, compile and fit one architecture; returns the model and its history.

    ``shared``: the run's augmented variants, common to all its models (made here when training one alone).
    ``start_from``: a ``.keras`` file of this architecture to go on from instead of random weights
    (:func:`warm_start`).
    """
    keras.utils.set_random_seed(cfg.seed)
    if start_from is not None:
        model = warm_start(start_from, len(data.labels))
    else:
        shape = features.shapes(settings).input_shape
        model = zoo.build(name, shape, len(data.labels), data.stats, bands=settings.n_mels, which=cfg.zoo)
    # mixup's targets are blends of two labels, so its runs learn from (and are validated on) one-hot targets;
    # with one-hot labels the loss is the same cross-entropy, so the two kinds of run report comparable figures
    soft = cfg.mixup > 0
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate),
        loss="categorical_crossentropy" if soft else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    variants = shared or AugmentedEpochs(data, settings, cfg)
    val_y = data.y["validation"]
    if soft:
        val_y = np.eye(len(data.labels), dtype=np.float32)[val_y]
    try:
        history = model.fit(
            _EpochBatches(data, variants, cfg.seed, cfg.batch_size, cfg.mixup),
            validation_data=(data.x["validation"], val_y) if cfg.holds_out_validation else None,
            epochs=cfg.epochs,
            verbose=0,
            callbacks=fit_callbacks(cfg, listener),
        )
    finally:
        if shared is None:
            variants.close()
    return model, history.history


def warm_start(path: Path, n_classes: int):
    """The model in ``path`` with an output layer of ``n_classes``: a three-label model going on to learn
    ``other`` keeps everything it knows, and its new output starts from the mean of the old ones' weights with a
    bias that makes ``other`` unlikely at first, so its first answers are still its old ones."""
    old = keras.models.load_model(path, compile=False)
    head = old.layers[-1]
    kernel, bias = head.get_weights()
    if kernel.shape[1] == n_classes:
        return old
    if kernel.shape[1] > n_classes:
        raise ValueError(f"{path.name} answers {kernel.shape[1]} labels; cannot go on to learn only {n_classes}")
    extra = n_classes - kernel.shape[1]
    out = keras.layers.Dense(n_classes, activation="softmax", name=head.name + "_open")(head.input)
    model = keras.Model(old.inputs, out, name=old.name)
    mean = kernel.mean(axis=1, keepdims=True)
    model.layers[-1].set_weights(
        [np.concatenate([kernel] + [mean] * extra, axis=1), np.concatenate([bias, np.full(extra, bias.min() - 2.0)])]
    )
    return model


def fit_callbacks(cfg: TrainConfig, listener: keras.callbacks.Callback) -> list[keras.callbacks.Callback]:
    """Progress, early stopping (restoring the best weights) and the learning-rate schedule of ``cfg``."""
    callbacks: list[keras.callbacks.Callback] = [listener]
    if cfg.patience > 0 and cfg.holds_out_validation:
        # under a cosine schedule the best epochs come last: stop early only in its second half
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=cfg.patience,
                restore_best_weights=True,
                start_from_epoch=cfg.epochs // 2 if cfg.schedule == "cosine" else 2,
            )
        )
    if cfg.stop_at is not None:
        callbacks.append(_StopAt(cfg.stop_at))
    if cfg.schedule == "cosine":
        callbacks.append(keras.callbacks.LearningRateScheduler(functools.partial(cosine_lr, cfg=cfg)))
    elif cfg.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(1, cfg.patience // 2))
        )
    return callbacks


def cosine_lr(epoch: int, lr: float = 0.0, *, cfg: TrainConfig) -> float:
    """One warm-up epoch at a third of the rate, then cosine decay to 2% of it by the last epoch."""
    if epoch == 0:
        return cfg.learning_rate / 3
    progress = (epoch - 1) / max(1, cfg.epochs - 2)
    return float(cfg.learning_rate * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(1.0, progress)))))


def build_meta(
    name: str,
    model,
    scores: Scores,
    history: dict,
    cfg: TrainConfig,
    settings: FeatureSettings,
    seconds: float,
    data: _Data,
) -> dict[str, Any]:
    """Everything a model's JSON holds (size is filled in after saving)."""
    return {
        "name": name,
        "architecture": zoo.ARCHITECTURES[name],
        "description": zoo.describe(name, cfg.zoo),
        "preset": settings.name,
        "feature_settings": settings.to_dict(),
        "labels": list(cfg.labels),
        "params": int(model.count_params()),
        "size_bytes": 0,
        "test_accuracy": scores.accuracy,
        "test_clips": scores.n,
        # of the weights kept (early stopping restores the lowest validation loss, not the best accuracy);
        # none for a refit, which learnt from those clips
        "validation_accuracy": (
            score(model, data.x["validation"], data.y["validation"], cfg.labels).accuracy
            if cfg.holds_out_validation
            else None
        ),
        # keyword accuracy, false accepts and false rejects at the app's operating point, per split held out
        "open_world": {
            split: open_scores(truth, model.predict(x, batch_size=512, verbose=0), cfg.labels).to_dict()
            for split, (x, truth) in ((s, data.open_split(s)) for s in ("validation", "test"))
            if len(truth) and (split == "test" or cfg.holds_out_validation)
        },
        "fit_on": cfg.fit_on,
        "per_class_accuracy": scores.per_class,
        "confusion": scores.confusion,
        "history": {k: [float(v) for v in vals] for k, vals in history.items() if k != "learning_rate"},
        "epochs_run": len(history.get("loss", [])),
        "train_seconds": round(seconds, 2),
        "dataset_fingerprint": data.fingerprint,
        "split_counts": {s: int(n) for s, n in data.split_counts.items()},
        # clean clips plus the fresh augmented variants seen each epoch: what a per-example time rate divides by
        "examples_per_epoch": int(len(data.y["train"]) * (1 + cfg.variants_per_clip)),
        "train_config": asdict(cfg) | {"models": list(cfg.models)},
        "versions": versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def save_for_inference(model, path: Path):
    """Save weights and architecture without the optimizer state, which would triple the file; return that
    uncompiled copy (what is converted to TFLite: a compiled model carries its loss, which may not be loadable).

    Rebuilt from its layer config: ``clone_model`` and ``to_json`` both carry the compile state along.
    """
    clean = model.__class__.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    clean.save(path)
    return clean


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    start_from: str | Path | None = None,
) -> RunResult:
    """Train ``cfg.models`` and install them in ``out_dir`` atomically (other models there, and folders of other
    sets inside it, are kept).

    ``start_from``: a model folder whose ``<name>.keras`` each model goes on from (:func:`warm_start`), recorded
    in its metadata. Raises :class:`Cancelled` if ``cancel`` is set; ``out_dir`` is then exactly as before.
    """
    progress = progress or Progress()
    settings = cfg.settings
    target = Path(out_dir)
    started = time.perf_counter()
    data = prepare_data(cfg, settings, Path(data_dir) if data_dir else None, progress)
    if cancel is not None and cancel.is_set():
        raise Cancelled("training was cancelled")
    staging = store.staging_dir_for(target)
    shared: AugmentedEpochs | None = None
    try:
        if target.is_dir():
            for f in target.iterdir():
                if f.is_file() and f.suffix in {".keras", ".json", ".tflite"}:
                    shutil.copy2(f, staging / f.name)
                elif f.is_dir() and not f.name.startswith("."):  # another set inside (models/lecture) stays
                    shutil.copytree(f, staging / f.name)
        result = RunResult(out_dir=target)
        shared = AugmentedEpochs(data, settings, cfg)
        for index, name in enumerate(cfg.models):
            if cancel is not None and cancel.is_set():
                raise Cancelled("training was cancelled")
            t0 = time.perf_counter()
            listener = _Listener(name, index, len(cfg.models), cfg.epochs, progress, cancel)
            origin = Path(start_from) / f"{name}.keras" if start_from is not None else None
            model, history = fit_one(name, data, cfg, settings, listener, shared, origin)
            if cancel is not None and cancel.is_set():
                raise Cancelled("training was cancelled")
            seconds = time.perf_counter() - t0
            scores = score(model, data.x["test"], data.y["test"], cfg.labels)
            meta = build_meta(name, model, scores, history, cfg, settings, seconds, data)
            if origin is not None:
                digest = hashlib.sha256(origin.read_bytes()).hexdigest()
                meta["started_from"] = {"file": origin.name, "sha256": digest}
            keras_path = staging / f"{name}.keras"
            clean = save_for_inference(model, keras_path)
            meta["size_bytes"] = keras_path.stat().st_size
            meta["tflite"] = convert.export(
                clean, staging, name, data.x["train"], (data.x["validation"], data.y["validation"]), seed=cfg.seed
            )
            store.write_json_atomic(staging / f"{name}.json", meta)
            result.metas[name] = meta
            logger.info("%s: test accuracy %.4f in %.1f s", name, scores.accuracy, seconds)
            if progress.on_model_done:
                progress.on_model_done(name, meta)
        store.replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if shared is not None:
            shared.close()
    result.seconds = time.perf_counter() - started
    return result
