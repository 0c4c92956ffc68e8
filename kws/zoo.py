"""The model zoo by name: the lecture's five architectures and a modern small network.

Every model takes MFCCs shaped ``(n_frames, n_mfcc)``, normalises them with statistics of the training set
(a ``Normalization`` layer, saved inside the model), and ends in a softmax over the labels. The convolutional
ones first turn the coefficients back into a log-mel picture (:class:`InverseDCT`), where neighbouring rows
are neighbouring frequencies: that is what a 3x3 kernel assumes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kws._tf import keras, tf
from kws.config import ARCHITECTURES
from kws.features import inverse_dct
from kws.options import check_names

layers = keras.layers

__all__ = ["ARCHITECTURES", "LECTURE_ZOO", "ZOO", "ZOOS", "build", "check_names", "describe"]


@keras.saving.register_keras_serializable(package="kws")
class CepstralMeanNorm(layers.Layer):
    """Subtract each coefficient's mean over the clip: removes the microphone's colouring (channel effect).

    Classic cepstral mean normalisation; on this dataset it cut errors on unseen speakers by about a third.
    """

    def call(self, x):
        return x - tf.reduce_mean(x, axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="kws")
class InverseDCT(layers.Layer):
    """MFCCs back to the log-mel spectrum they came from: the inverse of the orthonormal DCT-II that made them.

    With as many coefficients as mel bands this is exact; with fewer it is the smoothed spectrum they keep.
    Fixed, no weights. The cepstral axis has no locality (coefficient 5 is not "near" 6 in any sense a
    3x3 kernel can use), the mel axis does. Same recipe, validation speakers, clean + stressed errors: the
    one-convolution CNN went from 13 + 96 to 6 + 48, the two-convolution one from 5 + 27 to 2 + 21.
    """

    def __init__(self, bands: int, **kwargs):
        super().__init__(**kwargs)
        self.bands = int(bands)

    def build(self, input_shape) -> None:
        coeffs = int(input_shape[-1])
        if coeffs > self.bands:
            raise ValueError(f"{coeffs} coefficients cannot come from {self.bands} mel bands")
        basis = inverse_dct(np.eye(coeffs), self.bands)  # row k: the spectrum of coefficient k alone
        self.basis = tf.constant(basis, dtype=self.compute_dtype)

    def call(self, x):
        return tf.einsum("...k,kb->...b", x, self.basis)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.bands)

    def get_config(self) -> dict:
        return super().get_config() | {"bands": self.bands}


def _stem(
    input_shape: tuple[int, int],
    stats: tuple[np.ndarray, np.ndarray] | None,
    cmn: bool = True,
    one_scale: bool = False,
) -> tuple:
    """Input, standardisation with training-set statistics, and cepstral mean normalisation.

    ``one_scale``: divide every coefficient by one common spread instead of each by its own, so that an
    inverse DCT afterwards gives the log-mel picture itself (per-coefficient scaling would re-weight it).
    """
    inputs = keras.Input(shape=input_shape, name="mfcc")
    if stats is None:
        norm = layers.Normalization(axis=-1, name="normalize")
        norm.build((None, *input_shape))
    else:
        mean, var = stats
        if one_scale:
            var = np.full_like(var, np.mean(var))
        norm = layers.Normalization(axis=-1, mean=mean, variance=var, name="normalize")
    x = norm(inputs)
    return inputs, CepstralMeanNorm(name="cepstral_mean_norm")(x) if cmn else x


def _image_stem(input_shape: tuple[int, int], stats, bands: int | None) -> tuple:
    """The CNNs' stem: standardise with one scale, remove the clip's mean, and back to a log-mel picture
    ``(frames, bands, 1)``; ``bands`` defaults to one per coefficient."""
    bands = bands or input_shape[-1]
    inputs, x = _stem(input_shape, stats, one_scale=True)
    x = InverseDCT(bands, name="to_log_mel")(x)
    return inputs, layers.Reshape((input_shape[0], bands, 1), name="as_image")(x)


def _head(x, n_classes: int):
    return layers.Dense(n_classes, activation="softmax", name="probabilities")(x)


def perceptron(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None) -> keras.Model:
    """flatten -> softmax. The lecture's first model: a linear classifier over every MFCC value.

    No cepstral mean normalisation here: a linear model needs the absolute levels (it cost it ~8 points). It
    does need the word in the same place every time: the shipped one learns from centred windows
    (``FeatureSettings.centre``: 95% against 81% cross-validated).
    """
    inputs, x = _stem(input_shape, stats, cmn=False)
    x = layers.Flatten()(x)
    return keras.Model(inputs, _head(x, n_classes), name="perceptron")


def cnn1(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None) -> keras.Model:
    """log-mel picture -> conv3x3(32) -> maxpool 3x3 -> dense 128 -> softmax. One convolution: image technique on audio."""
    inputs, x = _image_stem(input_shape, stats, bands)
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, _head(x, n_classes), name="cnn1")


def _two_convs(x, dropout: float):
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(2)(x)
    if dropout:
        x = layers.Dropout(dropout / 2)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(2)(x)
    if dropout:
        x = layers.Dropout(dropout / 2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    return x


def cnn2(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None) -> keras.Model:
    """log-mel picture -> [conv3x3 -> maxpool] x 2 (32, 64) -> dense 128 -> softmax. Fits the training set
    perfectly: overfits."""
    inputs, x = _image_stem(input_shape, stats, bands)
    x = _two_convs(x, dropout=0.0)
    return keras.Model(inputs, _head(x, n_classes), name="cnn2")


def cnn2_dropout(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None) -> keras.Model:
    """cnn2 with dropout after each block (0.25) and before the output (0.5): the lecture's fix."""
    inputs, x = _image_stem(input_shape, stats, bands)
    x = _two_convs(x, dropout=0.5)
    return keras.Model(inputs, _head(x, n_classes), name="cnn2_dropout")


def lstm(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None) -> keras.Model:
    """LSTM(64, sequences) -> LSTM(64) -> dense 64 -> softmax over time frames.

    The lecture squeezed its LSTM through one unit and got ~50% on new speakers; normalised input, real
    width and a second layer make it work.
    """
    inputs, x = _stem(input_shape, stats)
    x = layers.LSTM(64, return_sequences=True)(x)
    x = layers.LSTM(64)(x)
    x = layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, _head(x, n_classes), name="lstm")


#: How fast batch norm's running statistics follow the weights (see :func:`_bn`).
BN_MOMENTUM = 0.9


def _bn():
    """Batch norm whose running statistics follow the weights within ~10 batches (Keras's default: ~100).

    With the default, validation accuracy swings between ~40% and 99% from one epoch to the next while the
    learning rate is high (the statistics lag the weights); at 0.9 it stays steady.
    """
    return layers.BatchNormalization(momentum=BN_MOMENTUM)


def _residual(x, channels: int, conv=layers.Conv2D, kernel: int = 3, stride: int = 1, norm=None):
    """Two convolutions with batch norm and a shortcut (a strided 1x1 projection when the shape changes).

    ``conv``, ``kernel`` and ``stride`` choose the convolution (3x3 ``Conv2D`` for ``best``); ``norm`` makes the
    normalisation layers (default :func:`_bn`). The probes in ``experiments/probes.py`` build on these too.
    """
    norm = norm or _bn
    skip = x
    x = conv(channels, kernel, strides=stride, padding="same", use_bias=False)(x)
    x = norm()(x)
    x = layers.ReLU()(x)
    x = conv(channels, kernel, padding="same", use_bias=False)(x)
    x = norm()(x)
    if stride != 1 or skip.shape[-1] != channels:
        skip = conv(channels, 1, strides=stride, use_bias=False)(skip)
        skip = norm()(skip)
    return layers.ReLU()(layers.Add()([x, skip]))


def _best_body(x, norm=_bn):
    """``best``'s feature map: conv(24)+BN -> pool -> residual(32) -> pool -> residual(48). ``norm`` makes its
    normalisation layers (the probes in ``experiments/probes.py`` swap them)."""
    x = layers.Conv2D(24, 3, padding="same", use_bias=False)(x)
    x = norm()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D(2)(x)
    x = _residual(x, 32, norm=norm)
    x = layers.MaxPooling2D(2)(x)
    return _residual(x, 48, norm=norm)


def _frequency_rows(x):
    """(frames, rows, channels) -> mean over frames -> one vector per frequency row, flattened: the head knows
    *where* in the spectrum a pattern sits (formants are positions), which a global average throws away."""
    return layers.Flatten()(layers.AveragePooling2D(pool_size=(x.shape[1], 1))(x))


def best(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None) -> keras.Model:
    """log-mel picture -> conv(24)+BN -> pool -> residual(32) -> pool -> residual(48) -> average over time ->
    the frequency rows flattened -> dropout -> softmax.

    A small ResNet in the spirit of Tang & Lin's res8 for keyword spotting: batch norm for fast, stable
    training, residual shortcuts, ~56k parameters. Averaging over time means it cannot memorise when in the
    second a word sits; keeping the frequency rows lets it use where in the spectrum a pattern sits (rule
    ``head_2026_11_24`` in ``experiments/choice.json``: cross-validated, 22 errors in 4,215 clips against a global
    average's 30). A depthwise-separable variant scores the same but trains 2x slower on this CPU. The probes
    that did not replace it (another head, TC-ResNet8, SubSpectral Norm) live in ``experiments/probes.py``.
    """
    inputs, x = _image_stem(input_shape, stats, bands)
    x = _frequency_rows(_best_body(x))
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, _head(x, n_classes), name="best")


ZOO: dict[str, Callable[..., keras.Model]] = {
    "perceptron": perceptron,
    "cnn1": cnn1,
    "cnn2": cnn2,
    "cnn2_dropout": cnn2_dropout,
    "lstm": lstm,
    "best": best,
}


def _lecture_image(input_shape: tuple[int, int]) -> tuple:
    """The lecture's CNN input: the raw MFCCs as a one-channel picture, frames by coefficients (its
    coefficients-by-frames picture turned a quarter: a 3x3 kernel and 2x2 pooling see the same)."""
    inputs = keras.Input(shape=input_shape, name="mfcc")
    return inputs, layers.Reshape((*input_shape, 1), name="as_image")(inputs)


def lecture_perceptron(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None):
    """raw MFCCs -> flatten -> softmax. The lecture's perceptron: no normalisation, no centring."""
    inputs = keras.Input(shape=input_shape, name="mfcc")
    x = layers.Flatten()(inputs)
    return keras.Model(inputs, _head(x, n_classes), name="perceptron")


def lecture_cnn1(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None):
    """raw MFCC picture -> conv3x3(32) -> maxpool 2x2 -> dense 128 -> softmax. The lecture's one convolution,
    straight on the coefficients."""
    inputs, x = _lecture_image(input_shape)
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, _head(x, n_classes), name="cnn1")


def lecture_cnn2(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None):
    """raw MFCC picture -> [conv3x3 -> maxpool 2x2] x 2 (32, 64) -> dense 128 -> softmax. The lecture's two
    convolutions, which learn the training set by heart."""
    inputs, x = _lecture_image(input_shape)
    return keras.Model(inputs, _head(_two_convs(x, dropout=0.0), n_classes), name="cnn2")


def lecture_cnn2_dropout(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None):
    """lecture_cnn2 with dropout after each block (0.25) and before the output (0.5): the lecture's fix."""
    inputs, x = _lecture_image(input_shape)
    return keras.Model(inputs, _head(_two_convs(x, dropout=0.5), n_classes), name="cnn2_dropout")


def lecture_lstm(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None):
    """raw MFCCs read coefficient by coefficient -> LSTM(16, sigmoid) -> dense 1 (sigmoid) -> softmax.

    As the lecture wrote it: its reshape made the 20 coefficients the sequence (11 frames the features at each
    step), and everything it heard passes through one sigmoid unit before the answer.
    """
    inputs = keras.Input(shape=input_shape, name="mfcc")
    x = layers.Permute((2, 1), name="coefficients_as_steps")(inputs)
    x = layers.LSTM(16, activation="sigmoid")(x)
    x = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, _head(x, n_classes), name="lstm")


#: The lecture's own five networks at its sizes, under the same names (``TrainConfig.zoo = "lecture"``).
LECTURE_ZOO: dict[str, Callable[..., keras.Model]] = {
    "perceptron": lecture_perceptron,
    "cnn1": lecture_cnn1,
    "cnn2": lecture_cnn2,
    "cnn2_dropout": lecture_cnn2_dropout,
    "lstm": lecture_lstm,
}

#: The zoos by the name ``TrainConfig.zoo`` and the models' metadata use (``kws.config.ZOOS``).
ZOOS: dict[str, dict[str, Callable[..., keras.Model]]] = {"today": ZOO, "lecture": LECTURE_ZOO}


def _builder(name: str, which: str) -> Callable[..., keras.Model]:
    check_names([name])
    if which not in ZOOS:
        raise ValueError(f"unknown zoo {which!r}; choose from: {', '.join(ZOOS)}")
    if name not in ZOOS[which]:
        raise ValueError(f"the {which} zoo has no {name!r}; it has: {', '.join(ZOOS[which])}")
    return ZOOS[which][name]


def describe(name: str, which: str = "today") -> str:
    """The architecture's sketch for its metadata: the docstring's first paragraph on one line (its first line
    alone cut some sketches mid-arrow)."""
    doc = (_builder(name, which).__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def build(
    name: str,
    input_shape: tuple[int, int],
    n_classes: int,
    stats=None,
    bands: int | None = None,
    which: str = "today",
) -> keras.Model:
    """Build architecture ``name`` of zoo ``which`` ("today" or "lecture").

    ``stats``: (mean, variance) per coefficient for the input normaliser; ``bands``: the mel bands the
    coefficients came from (the feature settings' ``n_mels``), for the CNNs' log-mel picture. The lecture's
    networks take the raw coefficients and use neither.
    """
    return _builder(name, which)(input_shape, n_classes, stats, bands)
