"""Helpers for tests: generated audio, dataset folders and folders of untrained models (no real data needed), and
loading bench scripts."""

from __future__ import annotations

import functools
import importlib.util
import io
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import soundfile as sf

from kws import config
from kws.dataset import split_of
from kws.features import FeatureSettings

RATE = 16000


def bench_script(name: str, folder: str = "bench") -> ModuleType:
    """Import ``<folder>/<name>.py`` (a script, not a package module: ``bench/`` or ``experiments/``) so tests can
    call its functions."""
    path = config.PROJECT_ROOT / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"kws_{folder}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def real_data_dir() -> Path | None:
    """The real dataset (``KWS_DATA_DIR``, else the project default), or None where it is absent."""
    root = config.data_dir()
    return root if all((root / w).is_dir() for w in config.LABELS) else None


def tone(seconds: float, rate: int = RATE, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    """A sine tone, float32."""
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def word_like(seconds: float = 0.4, rate: int = RATE, seed: int = 0, amp: float = 0.3) -> np.ndarray:
    """A speech-like burst: harmonics of a gliding pitch under a smooth envelope."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    pitch = 120 + 60 * t / max(seconds, 1e-3) + rng.uniform(0, 40)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = np.sin(np.pi * np.arange(n) / max(n - 1, 1)) ** 2
    x = x * env + 0.01 * rng.standard_normal(n)
    return (amp * x / np.abs(x).max()).astype(np.float32)


def clap(seconds: float = 0.25, rate: int = RATE, seed: int = 0, amp: float = 0.3, decay_s: float = 0.02) -> np.ndarray:
    """A clap or a tap on the microphone: a burst of white noise that dies away, with no pitch in it."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    x = rng.standard_normal(n) * np.exp(-np.arange(n) / (decay_s * rate))
    return (amp * x / np.abs(x).max()).astype(np.float32)


def encode(samples: np.ndarray, rate: int = RATE, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    """Encode samples (1-D or frames x channels) with soundfile."""
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def speakers_by_split(n_per_split: int = 2) -> dict[str, list[str]]:
    """Made-up speaker ids (8 hex digits like the dataset's) that the stable hash puts in each split."""
    found: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    i = 0
    while any(len(v) < n_per_split for v in found.values()):
        speaker = f"{i:08x}"
        split = split_of(f"{speaker}_nohash_0.wav")
        if len(found[split]) < n_per_split:
            found[split].append(speaker)
        i += 1
    return found


def make_dataset(root: Path, per_split: int = 2, seconds: float = 1.0) -> list[Path]:
    """A tiny dataset in the Speech Commands layout with every word in every split; returns the files.

    Each word gets its own pitch range so that even a linear model can tell them apart a little.
    """
    paths = []
    for w, word in enumerate(config.LABELS):
        (root / word).mkdir(parents=True, exist_ok=True)
        for speakers in speakers_by_split(per_split).values():
            for s, speaker in enumerate(speakers):
                burst = word_like(0.5, seed=100 * w + s) * 0.5 + tone(0.5, freq=300 + 400 * w, amp=0.2)
                clip = np.zeros(int(seconds * RATE), np.float32)
                start = (len(clip) - len(burst)) // 2
                clip[start : start + len(burst)] = burst
                path = root / word / f"{speaker}_nohash_0.wav"
                sf.write(path, clip, RATE, subtype="PCM_16")
                paths.append(path)
    return paths


def make_noisy_dataset(root: Path, per_split: int = 2) -> Path:
    """:func:`make_dataset` with a ``_background_noise_`` folder of two generated clips (a hiss and a hum)."""
    make_dataset(root, per_split)
    (root / "_background_noise_").mkdir()
    hiss = 0.1 * np.random.default_rng(0).standard_normal(RATE)
    hum = 0.2 * np.sin(2 * np.pi * 90 * np.arange(RATE) / RATE)
    for name, samples in (("hiss", hiss), ("hum", hum)):
        sf.write(root / "_background_noise_" / f"{name}.wav", samples.astype(np.float32), RATE)
    return root


@functools.lru_cache(maxsize=1)
def shipped_models() -> tuple:
    """The shipped models, loaded and compiled once per test session (several test files share them)."""
    from kws.inference import load_models

    return tuple(load_models(config.SHIPPED_MODELS_DIR))


def have_shipped_models() -> bool:
    return any(config.SHIPPED_MODELS_DIR.glob("*.keras"))


def env_without(*names: str) -> dict[str, str]:
    """A copy of the environment without ``names``, with the project on ``PYTHONPATH`` (for subprocesses)."""
    env = {k: v for k, v in os.environ.items() if k not in names}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(config.PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def reference_log_mel(y: np.ndarray, s: FeatureSettings) -> np.ndarray:
    """librosa's own log-mel spectrogram with the settings' numbers: (frames, bands)."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=y[:: s.decimate].astype(np.float64),
        sr=s.sample_rate,
        n_fft=s.n_fft,
        hop_length=s.hop_length,
        win_length=s.win_length,
        window="hann",
        center=s.frame_pad is not None,
        pad_mode=s.frame_pad or "constant",
        power=2.0,
        n_mels=s.n_mels,
        fmin=s.fmin,
        fmax=s.fmax,
    )
    ref = np.max if s.level == "peak" else 1.0
    return librosa.power_to_db(mel, ref=ref, amin=1e-10, top_db=s.top_db).T


def fake_meta(name: str, architecture: str, settings_name: str, params: int = 0) -> dict:
    """Every field a model's JSON must hold, with made-up scores (for models saved by tests)."""
    from kws.features import PRESETS

    settings = PRESETS[settings_name]
    return {
        "name": name,
        "architecture": config.ARCHITECTURES.get(architecture, architecture),
        "feature_settings": settings.to_dict(),
        "labels": list(config.LABELS),
        "params": params,
        "size_bytes": 0,
        "test_accuracy": 0.5,
        "per_class_accuracy": dict.fromkeys(config.LABELS, 0.5),
        "confusion": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        "history": {"loss": [1.0]},
        "train_seconds": 0.1,
        "dataset_fingerprint": "test",
        "versions": {},
        "created": "2026-01-01T00:00:00+00:00",
    }


def save_model(folder: Path, name: str, architecture: str, settings_name: str, seed: int = 0):
    """Build an untrained model for the preset's input, save it with its float32 TFLite file and metadata; returns
    the Keras model."""
    from kws import convert, store, zoo
    from kws.features import PRESETS, shapes

    zoo.keras.utils.set_random_seed(seed)
    model = zoo.build(architecture, shapes(PRESETS[settings_name]).input_shape, len(config.LABELS))
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / f"{name}.keras")
    meta = fake_meta(name, architecture, settings_name, int(model.count_params()))
    meta["size_bytes"] = (folder / f"{name}.keras").stat().st_size
    blob = convert.float_flatbuffer(model, shapes(PRESETS[settings_name]).input_shape)
    meta["tflite"] = {
        "float32": convert.file_entry(folder / f"{name}.tflite", blob),
        "int8": {"shipped": False, "reason": "not made for test models"},
    }
    store.write_json_atomic(folder / f"{name}.json", meta)
    return model


def smallest_shipped_model():
    """The shipped model with the smallest file (a ``store.ModelInfo``)."""
    from kws import store

    return min(store.list_models(config.SHIPPED_MODELS_DIR), key=lambda i: i.keras_path.stat().st_size)


def make_model_set(runs: Path, name: str, accuracy: float = 0.5) -> str:
    """A complete one-model set ``runs/name``: the smallest shipped model's files, with another test accuracy (no
    training, no TensorFlow)."""
    import json
    import shutil

    model = smallest_shipped_model()
    folder = runs / name
    folder.mkdir(parents=True)
    for path in model.keras_path.parent.glob(f"{model.name}.*"):
        if path.suffix != ".json":
            shutil.copy2(path, folder / path.name)
    (folder / f"{model.name}.json").write_text(json.dumps(dict(model.meta, test_accuracy=accuracy, test_clips=6)))
    return name


def saying(prediction, *words: str):
    """``prediction`` with one answer per word in ``words`` (models ``m0``, ``m1``, ...), speech detected: how
    the verdict of any mix of answers is tested without models that give it."""
    import dataclasses

    answers = [dataclasses.replace(prediction.answers[0], name=f"m{i}", word=w) for i, w in enumerate(words)]
    return dataclasses.replace(prediction, answers=answers, no_speech=False)
