"""Inference: load every model of a folder once, compile it, and answer a waveform in a few milliseconds.

``model.predict`` builds a data pipeline per call (~30 ms a model); instead each model answers one clip through
its TensorFlow Lite copy (:mod:`kws.lite`, ~0.3 ms a model), or, where a model will not convert, through an
XLA-compiled ``tf.function`` for one clip (a fixed shape, compiled once at load time; the XLA models that share
feature settings are fused into one call). Batches go through a plain graph function (XLA would recompile for
every new batch size). The models run on the predictor's own threads while the caller computes the next MFCCs
and checks the voice. A loaded model is never changed after loading, so one :class:`Predictor` can serve every
user of a server.
"""

from __future__ import annotations

import logging
import time
import zipfile
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kws import lite, store
from kws import zoo as _zoo  # noqa: F401  registers CepstralMeanNorm, which saved models contain
from kws._tf import keras, tf
from kws.audio import Clip, clip_from_array
from kws.features import FeatureSettings, mfcc, shapes
from kws.insights import median_latency_ms
from kws.segment import VOICE_THRESHOLD, Window, aperiodicity, find_window

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thresholds:
    """Decision rules that live outside the models (as in TensorFlow's command recognizer)."""

    #: Below this top probability an answer is flagged "low confidence".
    low_confidence: float = 0.6
    #: Above this :func:`kws.segment.aperiodicity` a loud window has no voice, and no word is named; None: no check.
    no_voice: float | None = VOICE_THRESHOLD


@dataclass
class LoadedModel:
    """One model, compiled for single-clip inference, with the settings it was trained on."""

    name: str
    info: store.ModelInfo
    model: Any
    settings: FeatureSettings
    labels: tuple[str, ...]
    #: Probabilities for one clip, numpy in and out, whatever the engine.
    _single: Any = field(repr=False, default=None)
    _batch: Any = field(repr=False, default=None)
    #: What answers one clip: ``"tflite"`` (the LiteRT interpreter), ``"xla"`` or ``"graph"`` (XLA failed).
    engine: str = "xla"

    @property
    def meta(self) -> dict[str, Any]:
        return self.info.meta

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for inputs ``(n, frames, coeffs)``: one clip through :attr:`engine`, more through the graph."""
        return self._single(x) if len(x) == 1 else self.predict_batch(x)

    def predict_batch(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Probabilities for many inputs at once (evaluation)."""
        if len(x) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return np.concatenate(
            [
                self._batch(tf.constant(x[i : i + batch_size], dtype=tf.float32)).numpy()
                for i in range(0, len(x), batch_size)
            ]
        )


#: How one clip is answered: TFLite where a model converts (else XLA), or XLA for every model (the bench's
#: comparison, and what a model that will not convert gets).
ENGINES: tuple[str, ...] = ("tflite", "xla")


def _batch_function(model: Any, input_shape: tuple[int, int]) -> Any:
    """A graph function for batches of any size, traced and warmed up now, not on a user's clips."""
    batch = tf.function(
        lambda x: model(x, training=False), input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)]
    )
    batch(tf.zeros((2, *input_shape)))
    return batch


def _on_numpy(fn: Any) -> Any:
    """A TensorFlow function as one that takes and returns numpy arrays (as a TFLite runner does)."""
    return lambda x: fn(tf.constant(x, dtype=tf.float32)).numpy()


def _compile(model: Any, input_shape: tuple[int, int], batch: Any) -> tuple[Any, str]:
    """(single-clip function on numpy, engine): XLA-compiled for one clip and warmed up now, else the plain
    graph."""
    single = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((1, *input_shape), tf.float32)],
        jit_compile=True,
    )
    try:
        single(tf.zeros((1, *input_shape)))
    except Exception as err:  # XLA cannot compile every op everywhere: the plain graph still works
        logger.warning("XLA compile failed for %s (%s); using a plain graph", model.name, err)
        return _on_numpy(batch), "graph"
    # the concrete function skips tf.function's argument binding: ~0.2 ms less per call
    return _on_numpy(single.get_concrete_function()), "xla"


def _checked_runner(blob: bytes, input_shape: tuple[int, int], batch: Any) -> tuple[lite.LiteRunner | None, str]:
    """A runner for ``blob`` once it answers a random input as Keras does (to 1e-4), else None and why not."""
    try:
        runner = lite.LiteRunner(blob)
        probe = np.random.default_rng(0).standard_normal((1, *input_shape)).astype(np.float32)
        gap = float(np.max(np.abs(runner(probe) - batch(tf.constant(probe)).numpy())))
    except Exception as err:  # a damaged file, or an op the interpreter lacks
        return None, f"does not run ({err})"
    if not gap < 1e-4:
        return None, f"answers differently (by {gap:.2g})"
    return runner, ""


def _lite_runner(info: store.ModelInfo, model: Any, input_shape: tuple[int, int], batch: Any) -> lite.LiteRunner | None:
    """The model's TFLite interpreter, checked against Keras; None (logged) where it cannot have one.

    A cached copy that fails the check is converted afresh once, replacing it, before the model falls back.
    """
    if not lite.AVAILABLE:
        logger.warning("LiteRT is not installed: %s answers through XLA", info.name)
        return None
    for fresh in (False, True):
        found = lite.flatbuffer_for(info.keras_path, model, input_shape, fresh=fresh)
        if found is None:
            break
        blob, cached = found
        runner, why = _checked_runner(blob, input_shape, batch)
        if runner is not None:
            return runner
        logger.warning("the TFLite copy of %s %s%s", info.name, why, "; converting it again" if cached else "")
        if not cached:
            break
    logger.warning("%s answers through XLA", info.name)
    return None


def load_models(models_dir: str | Path, engine: str = ENGINES[0]) -> list[LoadedModel]:
    """Load and compile every model in ``models_dir``; settings and labels come from each model's JSON.

    ``engine`` says how one clip is answered (:data:`ENGINES`): ``"tflite"`` falls back to XLA per model.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from: {', '.join(ENGINES)}")
    loaded = []
    for info in store.list_models(models_dir):
        if not zipfile.is_zipfile(info.keras_path):  # Keras would call a cut-off file "not found"
            raise store.ModelStoreError(f"{info.keras_path} is damaged or incomplete: it is not a .keras archive.")
        try:
            model = keras.saving.load_model(info.keras_path, compile=False)
        except Exception as err:
            raise store.ModelStoreError(f"{info.keras_path}: cannot load ({err})") from err
        settings = info.settings
        expected = shapes(settings).input_shape
        if tuple(model.input_shape[1:]) != expected:
            raise store.ModelStoreError(
                f"{info.keras_path}: model input {model.input_shape[1:]} does not match its settings {expected}"
            )
        batch = _batch_function(model, expected)
        runner = _lite_runner(info, model, expected, batch) if engine == "tflite" else None
        single, kind = (runner, "tflite") if runner is not None else _compile(model, expected, batch)
        loaded.append(LoadedModel(info.name, info, model, settings, info.labels, single, batch, kind))
    return loaded


@dataclass(frozen=True)
class ModelAnswer:
    """One model's answer for one clip."""

    name: str
    architecture: str
    probabilities: dict[str, float]
    word: str
    confidence: float
    #: This model alone on one clip, window and features included: the median of warm runs timed when the
    #: predictor was loaded (the models answer together in one fused call, which cannot be split per model).
    latency_ms: float
    params: int
    low_confidence: bool


@dataclass(frozen=True)
class Prediction:
    """Every model's answer for one recording, and what they all heard."""

    clip: Clip
    window: Window
    features: np.ndarray  # the MFCCs of :attr:`Predictor.display_settings`, for display
    feature_settings: FeatureSettings
    answers: list[ModelAnswer]
    #: No word is named: the window is too quiet, or loud but with no voice in it (:attr:`no_voice`).
    no_speech: bool
    #: Wall time of this prediction: window, features, the voice check and every model (decoding excluded), in ms.
    elapsed_ms: float = 0.0
    #: Loud enough, but nothing in the window has a pitch: a noise, a clap or a tap, which the models, knowing
    #: only three words, would still name (:func:`kws.segment.aperiodicity`).
    no_voice: bool = False
    #: :func:`kws.segment.aperiodicity` of the window; None when it is too quiet to measure or the check is off.
    aperiodicity: float | None = None

    @property
    def no_speech_reason(self) -> str | None:
        """Why no word is named, in one sentence for the app and CLI; None when one is."""
        if not self.no_speech:
            return None
        if self.no_voice:
            return (
                "There is sound but no voice in it (a noise, a clap or a tap?), so no word is named. "
                "Say the word aloud: a whisper has no voice either."
            )
        return "Too quiet to be a word, so no word is named. Speak closer to the microphone, or louder."

    def _leaders(self) -> tuple[int, list[str]]:
        """The most votes any word got and the words that got them, in label order; ``(0, [])`` with no speech."""
        if self.no_speech or not self.answers:
            return 0, []
        votes = Counter(a.word for a in self.answers)
        top = max(votes.values())
        return top, [w for w in self.answers[0].probabilities if votes.get(w) == top]

    @property
    def majority(self) -> str | None:
        """The word most models say (ties go to the earlier label); None when no speech was detected."""
        leaders = self._leaders()[1]
        return leaders[0] if leaders else None

    @property
    def split(self) -> list[str]:
        """The words that share the most votes when two or more do (three models against three), in label
        order; empty when one word leads or no speech was detected."""
        leaders = self._leaders()[1]
        return leaders if len(leaders) > 1 else []

    @property
    def summary(self) -> str:
        """The line the app and CLI show above the models: a tie or a mere plurality is said as one, not as what
        most models say."""
        votes, leaders = self._leaders()
        if not leaders:
            return "No voice detected" if self.no_voice else "No speech detected"
        if len(leaders) > 1:
            return f"The models are split: {' / '.join(leaders)} ({votes} each)"
        if 2 * votes <= len(self.answers):  # 3 of 6 is the most votes, not most models
            return f"No majority: {leaders[0]} leads with {votes} of {len(self.answers)}"
        return f"Most models say: {leaders[0]}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for ``predict --json``."""
        return {
            "duration_s": round(self.clip.duration, 3),
            "window": {"start_s": round(self.window.start_s, 3), "end_s": round(self.window.end_s, 3)},
            "level_db": round(self.window.level_db, 1),
            "no_speech": self.no_speech,
            "no_voice": self.no_voice,
            "aperiodicity": None if self.aperiodicity is None else round(self.aperiodicity, 3),
            "majority": self.majority,
            "split": self.split,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "notices": list(self.clip.notices),
            "models": [
                {
                    "name": a.name,
                    "word": None if self.no_speech else a.word,
                    "confidence": round(a.confidence, 4),
                    "low_confidence": a.low_confidence,
                    "probabilities": {k: round(v, 4) for k, v in a.probabilities.items()},
                    "latency_ms": round(a.latency_ms, 3),
                }
                for a in self.answers
            ],
        }


def _fuse(models: list[LoadedModel], settings: FeatureSettings) -> Any | None:
    """One XLA-compiled function answering one clip with every model of ``models``, which all take ``settings``.

    Returns None (each model is then called on its own) if XLA cannot compile the combination.
    """
    keras_models = [m.model for m in models]
    spec = tf.TensorSpec((1, *shapes(settings).input_shape), tf.float32)

    def run(x):
        return [model(x, training=False) for model in keras_models]

    fused = tf.function(run, input_signature=[spec], jit_compile=True)
    try:
        fused(tf.zeros(spec.shape))
    except Exception as err:  # fall back to the per-model functions, which have their own fallback
        logger.warning("could not fuse the models into one XLA call (%s); calling them one by one", err)
        return None
    return fused.get_concrete_function()


def _probe_clip(samples: int) -> np.ndarray:
    """A fixed, speech-loud noise burst: for warming up and timing (the cost does not depend on the content)."""
    return (np.random.default_rng(0).standard_normal(samples) * 0.1).astype(np.float32)


class Predictor:
    """Every model of a folder, loaded and compiled once; :meth:`predict` is safe to call from many threads."""

    def __init__(
        self,
        models: list[LoadedModel],
        thresholds: Thresholds | None = None,
        timing_runs: int = 3,
        overlap: bool = True,
    ):
        if not models:
            raise store.ModelStoreError("No models to predict with.")
        self.models = models
        self.thresholds = thresholds or Thresholds()
        uses = [m.settings for m in models]
        # the models of each feature settings answer in one call; the most used settings first (ties: the first
        # model's), so its call, the longest, starts while the other settings' MFCCs are still being computed
        self._settings = sorted(dict.fromkeys(uses), key=uses.count, reverse=True)
        #: The feature settings most models use: what the app draws.
        self.display_settings: FeatureSettings = self._settings[0]
        self._members = {s: [i for i, m in enumerate(models) if m.settings == s] for s in self._settings}
        #: Per settings, the models without a TFLite copy, which answer together in one fused XLA call.
        self._xla = {s: [i for i in self._members[s] if models[i].engine != "tflite"] for s in self._settings}
        self._fused = {s: _fuse([models[i] for i in self._xla[s]], s) if self._xla[s] else None for s in self._xla}
        #: Per settings, what one worker task answers: ``(True, the XLA models)`` for their fused call, and
        #: ``(False, [i])`` for each TFLite model alone (the interpreters let go of the GIL: two run at once).
        self._tasks: dict[FeatureSettings, list[tuple[bool, list[int]]]] = {
            s: ([(True, self._xla[s])] if self._xla[s] else [])
            + [(False, [i]) for i in self._members[s] if i not in self._xla[s]]
            for s in self._settings
        }
        #: Runs the models while the calling thread computes the next MFCCs and checks the voice (None: all on the
        #: caller's thread, one after another).
        self._worker = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kws-models") if overlap else None
        self.latency_ms: dict[str, float] = {}  # each model alone, filled in below
        # warm every path (filterbanks, FFT plans, compiled graphs) so the first user waits for nothing
        probe = _probe_clip(shapes(models[0].settings).clip_samples)
        self.predict(probe, models[0].settings.sample_rate)
        # each model alone, window and features included (warm-up call not counted): the compare page's timing
        self.latency_ms = median_latency_ms(models, [probe] * timing_runs)  # 5 rounds: 15 calls each

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def fused(self) -> bool:
        """True when the XLA models of each feature settings answer in one call (False: one call each for some,
        when fusing failed); TFLite models are called one by one."""
        return all(self._fused[s] is not None for s, xla in self._xla.items() if xla)

    def features_for(self, samples: np.ndarray, settings: FeatureSettings) -> tuple[Window, np.ndarray]:
        """The window and MFCCs of 16 kHz samples under ``settings`` (the one feature path)."""
        window = find_window(samples, settings)
        return window, mfcc(window.samples, settings)

    def _windows(self, samples: np.ndarray) -> dict[FeatureSettings, Window]:
        """The window of 16 kHz samples under each of the models' settings, found once per rate and length."""
        found: dict[tuple[int, int], Window] = {}
        windows = {}
        for s in self._settings:
            geometry = (s.sample_rate, shapes(s).clip_samples)
            if geometry not in found:
                found[geometry] = find_window(samples, s)
            windows[s] = found[geometry]
        return windows

    def _run(self, settings: FeatureSettings, task: tuple[bool, list[int]], x: np.ndarray) -> list[np.ndarray]:
        """The probabilities of the models of ``task`` (see ``_tasks``; all take ``settings``) for their MFCCs
        ``x``: one fused call for the XLA models, unless fusing failed, else one call per model."""
        together, members = task
        fused = self._fused[settings]
        if together and fused is not None:
            return [np.asarray(o)[0] for o in fused(tf.constant(x[None]))]
        return [self.models[i](x[None])[0] for i in members]

    def _answer(
        self, windows: dict[FeatureSettings, Window], check: bool
    ) -> tuple[dict[FeatureSettings, tuple[Window, np.ndarray]], list[np.ndarray], float | None]:
        """Window and MFCCs per settings, every model's probabilities (in model order), and, with ``check``, the
        aperiodicity of the shown window (else None).

        Each settings' models start on the worker threads as soon as their MFCCs are ready, while this thread
        computes the next MFCCs and the voice check: TensorFlow and the TFLite interpreter let go of the GIL, and
        TensorFlow's calls also run faster off the main thread (bench/results_latency.json).
        """
        inputs: dict[FeatureSettings, tuple[Window, np.ndarray]] = {}
        pending: list[tuple[tuple[bool, list[int]], Future[list[np.ndarray]] | list[np.ndarray]]] = []
        for s in self._settings:
            inputs[s] = (windows[s], x := mfcc(windows[s].samples, s))
            for task in self._tasks[s]:
                pending.append(
                    (task, self._worker.submit(self._run, s, task, x) if self._worker else self._run(s, task, x))
                )
        shown = self.display_settings
        aperiodic = aperiodicity(windows[shown].samples, shown.sample_rate) if check else None
        outputs: list[np.ndarray] = [np.empty(0)] * len(self.models)
        for (_, members), work in pending:
            for i, probs in zip(members, work.result() if isinstance(work, Future) else work):
                outputs[i] = probs
        return inputs, outputs, aperiodic

    def probabilities(
        self, samples: np.ndarray
    ) -> tuple[dict[FeatureSettings, tuple[Window, np.ndarray]], list[np.ndarray]]:
        """Windows and features per settings, and every model's probabilities, for 16 kHz samples."""
        inputs, outputs, _ = self._answer(self._windows(samples), check=False)
        return inputs, outputs

    def predict_clip(self, clip: Clip) -> Prediction:
        """Answer a decoded clip with every model."""
        t0 = time.perf_counter()
        windows = self._windows(clip.samples)
        shown = self.display_settings
        window = windows[shown]
        limit = self.thresholds.no_voice
        inputs, outputs, aperiodic = self._answer(windows, check=window.has_speech and limit is not None)
        no_voice = aperiodic is not None and limit is not None and aperiodic > limit
        feats = inputs[shown][1]
        elapsed = (time.perf_counter() - t0) * 1000
        answers = []
        for m, probs in zip(self.models, outputs):
            best = int(np.argmax(probs))
            conf = float(probs[best])
            answers.append(
                ModelAnswer(
                    name=m.name,
                    architecture=m.meta.get("architecture", m.name),
                    probabilities={label: float(p) for label, p in zip(m.labels, probs)},
                    word=m.labels[best],
                    confidence=conf,
                    latency_ms=self.latency_ms.get(m.name, 0.0),
                    params=int(m.meta.get("params", 0)),
                    low_confidence=conf < self.thresholds.low_confidence,
                )
            )
        return Prediction(
            clip=clip,
            window=window,
            features=feats,
            feature_settings=shown,
            answers=answers,
            no_speech=not window.has_speech or no_voice,
            elapsed_ms=elapsed,
            no_voice=no_voice,
            aperiodicity=aperiodic,
        )

    def predict_span(self, clip: Clip, start_s: float, end_s: float) -> Prediction:
        """Answer one stretch of ``clip`` (a word spotted in a long take), placed on the whole clip's clock: the
        prediction's clip is the whole recording and its window lies where the stretch does."""
        rate = clip.sample_rate
        part = self.predict_clip(replace(clip, samples=clip.samples[round(start_s * rate) : round(end_s * rate)]))
        window = replace(part.window, start_s=part.window.start_s + start_s, end_s=part.window.end_s + start_s)
        return replace(part, clip=clip, window=window)

    def predict(self, waveform: np.ndarray, sample_rate: int) -> Prediction:
        """Answer raw samples at any rate (mono or frames x channels) with every model."""
        return self.predict_clip(clip_from_array(waveform, sample_rate))


def load_predictor(models_dir: str | Path = "models", thresholds: Thresholds | None = None) -> Predictor:
    """Load every model in ``models_dir`` once (see :class:`Predictor`)."""
    return Predictor(load_models(models_dir), thresholds)
