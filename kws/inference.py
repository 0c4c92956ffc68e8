"""Inference: load every model of a folder once and answer a waveform in a few milliseconds, without TensorFlow.

Each model answers through its TensorFlow Lite file (:mod:`kws.lite`; float32, or the int8 copy), checked against
the checksum in its JSON. The models run on the predictor's own threads while the caller computes the next MFCCs
and checks the voice (the interpreter lets go of the GIL). A loaded model is never changed after loading, so one
:class:`Predictor` can serve every user of a server. Neither TensorFlow nor Keras is imported here: the app's server
answers with this alone.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kws import config, lite, store
from kws.audio import Clip, clip_from_array
from kws.features import FeatureSettings, shapes
from kws.segment import VOICE_THRESHOLD, Window, aperiodicity, find_window, model_input
from kws.timing import median_latency_ms

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thresholds:
    """Decision rules that live outside the models (as in TensorFlow's command recognizer)."""

    #: Below this top probability an answer is flagged "low confidence".
    low_confidence: float = config.LOW_CONFIDENCE
    #: Above this :func:`kws.segment.aperiodicity` a loud window has no voice, and no word is named; None: no check.
    no_voice: float | None = VOICE_THRESHOLD


@dataclass
class LoadedModel:
    """One model's interpreter, with the settings it was trained on."""

    name: str
    info: store.ModelInfo
    settings: FeatureSettings
    labels: tuple[str, ...]
    runner: lite.LiteRunner = field(repr=False)
    #: Which of the model's files answers (:data:`kws.store.PRECISIONS`).
    precision: str = store.PRECISIONS[0]

    @property
    def meta(self) -> dict[str, Any]:
        return self.info.meta

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for inputs ``(n, frames, coeffs)``."""
        return self.runner(x) if len(x) == 1 else self.predict_batch(x)

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for many inputs at once (evaluation), ``(n, labels)``."""
        if len(x) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.runner.batch(np.asarray(x, np.float32))


def load_models(models_dir: str | Path, precision: str = store.PRECISIONS[0]) -> list[LoadedModel]:
    """Load every model in ``models_dir`` from its TFLite file in ``precision`` (float32 for a model that ships no
    copy in it: :attr:`LoadedModel.precision` says which answers); settings and labels come from each
    model's JSON. Raises :class:`kws.store.ModelStoreError` in one sentence for a file that is missing, changed,
    or not a model of the input its settings make."""
    loaded = []
    for info in store.list_models(models_dir):
        # a model whose int8 copy did not keep its accuracy (so was not shipped) answers in float32
        own = precision if info.tflite_path(precision) is not None else store.PRECISIONS[0]
        blob = info.flatbuffer(own)
        try:
            runner = lite.LiteRunner(blob)
        except Exception as err:  # a file the interpreter cannot read despite its checksum: made by another tool
            raise store.ModelStoreError(f"{info.tflite_path(own)}: cannot load ({err})") from err
        settings = info.settings
        expected = (1, *shapes(settings).input_shape)
        if runner.input_shape != expected:
            raise store.ModelStoreError(
                f"{info.tflite_path(own)}: model input {runner.input_shape[1:]} does not match its settings "
                f"{expected[1:]}"
            )
        loaded.append(LoadedModel(info.name, info, settings, info.labels, runner, own))
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
    #: predictor was loaded (a clip's models run at once, on several threads, which cannot be split per model).
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
        # in the four-label order, whatever mix of three- and four-label models answered
        return top, [w for w in config.LABEL_SETS[0] if votes.get(w) == top]

    @property
    def majority(self) -> str | None:
        """The word most models say (ties go to the earlier label, ``other`` last); ``"other"`` when that is
        what most say (not one of the three words); None when no speech was detected."""
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
            return f"The models are split: {' / '.join(map(said, leaders))} ({votes} each)"
        if 2 * votes <= len(self.answers):  # 3 of 6 is the most votes, not most models
            return f"No majority: {said(leaders[0])} leads with {votes} of {len(self.answers)}"
        if leaders[0] == config.OTHER:
            return f"Not one of the three words ({votes} of {len(self.answers)} models say other)"
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


def said(word: str) -> str:
    """A model's answer as the app and CLI say it: the word, or "other" as what it means."""
    return "none of the three (other)" if word == config.OTHER else word


def balanced(members: list[int], latency_ms: dict[str, float], models: list[LoadedModel], bins: int) -> list[list[int]]:
    """``members`` (model indices) dealt into at most ``bins`` groups of about equal time, slowest first, each to the
    group with the least so far (the models of a group answer in turn on one worker)."""
    groups: list[list[int]] = [[] for _ in range(max(1, min(bins, len(members))))]
    load = [0.0] * len(groups)
    for i in sorted(members, key=lambda i: -latency_ms.get(models[i].name, 0.0)):
        k = load.index(min(load))
        groups[k].append(i)
        load[k] += latency_ms.get(models[i].name, 0.0)
    return [sorted(g) for g in groups if g]


def _probe_clip(samples: int) -> np.ndarray:
    """A fixed, speech-loud noise burst: for warming up and timing (the cost does not depend on the content)."""
    return (np.random.default_rng(0).standard_normal(samples) * 0.1).astype(np.float32)


class Predictor:
    """Every model of a folder, loaded once; :meth:`predict` is safe to call from many threads."""

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
        # the most used settings first (ties: the first model's), so their models start while the other settings'
        # MFCCs are still being computed
        self._settings = sorted(dict.fromkeys(uses), key=uses.count, reverse=True)
        #: The feature settings most models use: what the app draws.
        self.display_settings: FeatureSettings = self._settings[0]
        self._members = {s: [i for i, m in enumerate(models) if m.settings == s] for s in self._settings}
        #: Per settings, the models each worker task answers in turn: one model a task until they are timed, then
        #: as many balanced groups as there are cores (a task per model cost more in hand-offs than small models
        #: take: the perceptron answers in microseconds).
        self._groups = {s: [[i] for i in members] for s, members in self._members.items()}
        #: Runs the models while the calling thread computes the next MFCCs and checks the voice (None: all on the
        #: caller's thread, one after another).
        self._worker = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kws-models") if overlap else None
        self.latency_ms: dict[str, float] = {}  # each model alone, filled in below
        # warm every path (filterbanks, FFT plans, interpreters) so the first user waits for nothing
        probe = _probe_clip(shapes(models[0].settings).clip_samples)
        self.predict(probe, models[0].settings.sample_rate)
        # each model alone, window and features included (warm-up call not counted): the compare page's timing
        self.latency_ms = median_latency_ms(models, [probe] * timing_runs)  # 5 rounds: 15 calls each
        if self.latency_ms:
            cores = os.cpu_count() or 2
            self._groups = {
                s: balanced(members, self.latency_ms, models, cores) for s, members in self._members.items()
            }

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def features_for(self, samples: np.ndarray, settings: FeatureSettings) -> tuple[Window, np.ndarray]:
        """The window and MFCCs of 16 kHz samples under ``settings``: :func:`kws.segment.model_input`."""
        return model_input(samples, settings)

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

    def _run(self, group: list[int], x: np.ndarray) -> list[np.ndarray]:
        """The probabilities of the models of ``group``, one after another, for the MFCCs ``x`` they all take."""
        return [self.models[i](x) for i in group]

    def _answer(
        self, samples: np.ndarray, windows: dict[FeatureSettings, Window], check: bool
    ) -> tuple[dict[FeatureSettings, tuple[Window, np.ndarray]], list[np.ndarray], float | None]:
        """Window (from ``windows``, found in ``samples``) and MFCCs per settings, every model's probabilities (in
        model order), and, with ``check``, the aperiodicity of the shown window (else None).

        Each settings' models start on the worker threads as soon as their MFCCs are ready, while this thread
        computes the next MFCCs and the voice check: the interpreter lets go of the GIL while it computes.
        """
        inputs: dict[FeatureSettings, tuple[Window, np.ndarray]] = {}
        pending: list[tuple[list[int], Future[list[np.ndarray]] | list[np.ndarray]]] = []
        for s in self._settings:
            inputs[s] = model_input(samples, s, windows[s])
            x = inputs[s][1][None]
            # the last settings' one group runs here, right after its MFCCs, while the others' run on the workers
            last = s == self._settings[-1] and len(self._settings) > 1 and len(self._groups[s]) == 1
            for group in self._groups[s]:
                inline = self._worker is None or last
                pending.append((group, self._run(group, x) if inline else self._worker.submit(self._run, group, x)))
        shown = self.display_settings
        aperiodic = aperiodicity(windows[shown].samples, shown.sample_rate) if check else None
        outputs: list[np.ndarray] = [np.empty(0)] * len(self.models)
        for group, work in pending:
            for i, probs in zip(group, work.result() if isinstance(work, Future) else work):
                outputs[i] = probs[0]
        return inputs, outputs, aperiodic

    def probabilities(
        self, samples: np.ndarray
    ) -> tuple[dict[FeatureSettings, tuple[Window, np.ndarray]], list[np.ndarray]]:
        """Windows and features per settings, and every model's probabilities, for 16 kHz samples."""
        inputs, outputs, _ = self._answer(samples, self._windows(samples), check=False)
        return inputs, outputs

    def predict_clip(self, clip: Clip) -> Prediction:
        """Answer a decoded clip with every model."""
        t0 = time.perf_counter()
        windows = self._windows(clip.samples)
        shown = self.display_settings
        window = windows[shown]
        limit = self.thresholds.no_voice
        inputs, outputs, aperiodic = self._answer(clip.samples, windows, check=window.has_speech and limit is not None)
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


def load_predictor(
    models_dir: str | Path = "models", thresholds: Thresholds | None = None, precision: str = store.PRECISIONS[0]
) -> Predictor:
    """Load every model in ``models_dir`` once, from its TFLite file in ``precision`` (see :class:`Predictor`)."""
    return Predictor(load_models(models_dir, precision), thresholds)
