"""What each model listened to: occlusion maps over the log-mel picture, the same way for every architecture.

A patch of the picture (a tenth of a second by five mel bands) is masked, and the model answers again; how far
the probability of the word it named falls is that patch's share in the answer. Every copy goes through the
serving path (:meth:`kws.inference.LoadedModel.predict_batch` on the model's TFLite file), one batch per model,
so the map explains the model the app serves, int8 or float32, with no gradients and no TensorFlow.

The patches are masked in log-mel space and sent back through :func:`kws.features.mfcc_from_log_mel`, the DCT
of the feature path. A band of MFCC coefficients is not a region of the sound: masking coefficients 5-9 changes
every frequency a little. A band of the log-mel picture is a stretch of time and pitch, and since every model
takes MFCCs, re-projecting the edited picture gives each of them the same edit, whatever it does next (the CNNs
undo the DCT in their first layer, the LSTM and the perceptron read coefficients). For a model with fewer
coefficients than mel bands (the perceptron's 20 of 40), its picture is the smoothed one its MFCCs keep, and
the mask reaches it smoothed the same way.

The masked value is the clip's own quiet level, the minimum of its picture: the patch becomes silence, as if
that part of the sound had not been there, rather than zero, which in dB is a loud, flat hum.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from kws.features import FeatureSettings, log_mel_from_mfcc, mfcc_from_log_mel
from kws.lite import LiteRunner

logger = logging.getLogger(__name__)

#: A patch's length in seconds: five 20-ms frames of the standard features, one 87-ms frame of the lecture's.
PATCH_SECONDS = 0.1
#: A patch's height in mel bands: eight bands over the 40 of both presets.
PATCH_BANDS = 5


class Model(Protocol):
    """What occlusion needs of a model: :class:`kws.inference.LoadedModel` is one."""

    settings: FeatureSettings
    labels: tuple[str, ...]

    def predict_batch(self, x: np.ndarray) -> np.ndarray: ...


def patch_frames(settings: FeatureSettings, seconds: float = PATCH_SECONDS) -> int:
    """How many frames of ``settings`` make a patch ``seconds`` long (at least one)."""
    return max(1, round(seconds * settings.sample_rate / (settings.hop_length * settings.decimate)))


def patches(n_frames: int, n_bands: int, frames: int, bands: int) -> list[tuple[slice, slice]]:
    """The (frames, bands) slices that tile a picture, stride = patch size; the last row and column may be short."""
    return [
        (slice(t, min(t + frames, n_frames)), slice(b, min(b + bands, n_bands)))
        for t in range(0, n_frames, frames)
        for b in range(0, n_bands, bands)
    ]


def masked_inputs(
    features: np.ndarray, settings: FeatureSettings, frames: int, bands: int
) -> tuple[np.ndarray, list[tuple[slice, slice]]]:
    """MFCCs ``(1 + patches, n_frames, n_mfcc)``: the clip's own first, then one copy per patch with that patch
    of its log-mel picture set to the picture's minimum; and the patches, in the copies' order."""
    picture = log_mel_from_mfcc(features, settings)
    tiles = patches(*picture.shape, frames, bands)
    copies = np.repeat(picture[None], len(tiles), axis=0)
    quiet = picture.min()
    for copy, (t, b) in zip(copies, tiles):
        copy[t, b] = quiet
    masked = mfcc_from_log_mel(copies, settings)
    return np.concatenate([np.asarray(features, np.float32)[None], masked]), tiles


def occlusion(
    model: Model,
    features: np.ndarray,
    word_index: int,
    frames: int | None = None,
    bands: int = PATCH_BANDS,
) -> np.ndarray:
    """How much ``model``'s probability of label ``word_index`` falls when each patch of the clip's picture is
    silenced: ``(n_frames, n_mels)``, each cell holding its patch's drop (negative where masking raised it).

    ``features`` are the MFCCs ``(n_frames, n_mfcc)`` the model heard; ``frames`` defaults to
    :func:`patch_frames` of its settings. One :meth:`predict_batch` call answers the clip and every masked copy.
    """
    settings = model.settings
    x, tiles = masked_inputs(features, settings, frames or patch_frames(settings), bands)
    word = model.predict_batch(x)[:, word_index]
    drop = np.zeros((x.shape[1], settings.n_mels), np.float32)
    for (t, b), p in zip(tiles, word[1:]):
        drop[t, b] = word[0] - p
    return drop


def heard(predictor, prediction, settings: FeatureSettings) -> np.ndarray:
    """The MFCCs a model of ``settings`` heard for ``prediction``: its window through that model's settings."""
    if settings == prediction.feature_settings:
        return prediction.features
    return predictor.features_for(prediction.window.samples, settings)[1]


def occlusion_maps(predictor, prediction, workers: int = 2) -> dict[str, np.ndarray]:
    """Every model's :func:`occlusion` map for ``prediction`` (a :class:`kws.inference.Prediction` of
    ``predictor``), by model name, for the word that model named.

    Each model gets the window the prediction heard, through its own settings (the one feature path), so a spotted
    word's second is explained, not the take's loudest. The models run on ``workers`` threads, since the
    interpreter lets go of the GIL: two halve the ~110 ms of six models one after another on a two-core machine.
    """
    t0 = time.perf_counter()
    words = {a.name: a.word for a in prediction.answers}

    def one(model) -> np.ndarray:
        feats = heard(predictor, prediction, model.settings)
        return occlusion(model, feats, model.labels.index(words[model.name]))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kws-occlusion") as pool:
        maps = dict(zip(predictor.names, pool.map(one, predictor.models)))
    logger.info("occlusion maps of %d models in %.0f ms", len(maps), (time.perf_counter() - t0) * 1000)
    return maps


def shared_range(maps: dict[str, np.ndarray], floor: float = 0.05) -> tuple[float, float]:
    """One colour scale for all ``maps``, symmetric about zero: ``(-m, m)`` with ``m`` the largest drop or rise,
    at least ``floor`` (a map of near-zero drops stays pale rather than having its noise stretched to full colour).
    """
    largest = max((float(np.abs(m).max()) for m in maps.values() if m.size), default=0.0)
    top = max(largest, floor)
    return -top, top


def convolution_runners(models: list) -> dict[str, LiteRunner]:
    """A debugging interpreter (:class:`kws.lite.LiteRunner` with ``preserve_all_tensors``) for each of ``models``
    (:class:`kws.inference.LoadedModel`) whose ``.tflite`` file has a 2-D convolution, by name.

    Separate from the serving interpreters, which do not keep their intermediate tensors; made once per model set
    (the app caches them), since six cost ~130 ms.
    """
    runners = {}
    for model in models:
        runner = LiteRunner(model.info.flatbuffer(model.precision), preserve_all_tensors=True)
        if runner.has_convolution:
            runners[model.name] = runner
    return runners


def strongest_channels(maps: np.ndarray, count: int = 8) -> list[int]:
    """The ``count`` channels of a convolution's output ``(frames, bands, channels)`` with the most activity on
    this clip, strongest first: a ReLU leaves many channels dark on any one clip, and those say nothing."""
    return [int(c) for c in np.argsort(-maps.mean(axis=(0, 1)), kind="stable")[:count]]
