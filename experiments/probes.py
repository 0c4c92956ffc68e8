"""Networks probed for ``best``'s place and not adopted, built on ``kws.zoo``'s pieces so that they can be rerun.

``experiments/cv.py`` trains them in ``best``'s place (``--head pool``, ``--body tc``, ``--body ssn``); the
product never imports this module. Each probe's rule in ``experiments/choice.json`` gives its verdict:

- ``head="pool"``: ``best`` summed up by a global average over time and frequency, the head before rule
  ``head_2026_11_24`` (30 errors in 4,215 cross-validated clips against the frequency head's 22).
- :func:`tc_resnet8`: temporal convolutions only (rule ``tc_2026_11_25``: 55 errors against 22).
- :class:`SubSpectralNorm` in every batch norm's place (rule ``ssn_2026_11_26``: 28 errors against 22).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from kws import zoo
from kws._tf import keras, tf

layers = keras.layers

#: How ``best`` sums up its last feature map: "freq" (the zoo's: an average over time that keeps the frequency
#: rows) or "pool" (an average over time and frequency).
BEST_HEADS = ("freq", "pool")
#: The zoo's head.
BEST_HEAD = BEST_HEADS[0]


@keras.saving.register_keras_serializable(package="kws_probes")
class SubSpectralNorm(layers.Layer):
    """Batch norm with its own statistics and scale for each of ``sub_bands`` stretches of the frequency axis.

    SubSpectral Normalization (Chang et al., "Subspectral normalization for neural audio data processing",
    ICASSP 2021): one batch norm per picture treats a low band like a high one, though what a channel
    measures there differs (formants against fricatives). Input ``(batch, frames, rows, channels)``; ``rows``
    must divide into ``sub_bands``.
    """

    def __init__(self, sub_bands: int, momentum: float = zoo.BN_MOMENTUM, **kwargs):
        super().__init__(**kwargs)
        self.sub_bands = int(sub_bands)
        self.momentum = float(momentum)
        self.norm = layers.BatchNormalization(momentum=self.momentum, name="norm")

    def build(self, input_shape) -> None:
        _, frames, rows, channels = input_shape
        if rows % self.sub_bands:
            raise ValueError(f"{rows} frequency rows do not split into {self.sub_bands} sub-bands")
        self.norm.build((None, frames, rows // self.sub_bands, self.sub_bands * channels))

    def call(self, x, training=None):
        _, frames, rows, channels = x.shape
        s = self.sub_bands
        y = tf.reshape(x, (-1, frames, s, rows // s, channels))  # (b, t, band, row within band, c)
        y = tf.reshape(tf.transpose(y, (0, 1, 3, 2, 4)), (-1, frames, rows // s, s * channels))
        y = self.norm(y, training=training)  # one statistic per (band, channel)
        y = tf.transpose(tf.reshape(y, (-1, frames, rows // s, s, channels)), (0, 1, 3, 2, 4))
        return tf.reshape(y, (-1, frames, rows, channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return super().get_config() | {"sub_bands": self.sub_bands, "momentum": self.momentum}


def _ssn(sub_bands: int) -> Callable[[], layers.Layer]:
    """A norm factory for ``kws.zoo._residual``: SubSpectral Norm in ``sub_bands`` bands (five suit ``best``: its
    40, 20 and 10 rows divide)."""
    return lambda: SubSpectralNorm(sub_bands)


def best(
    input_shape: tuple[int, int],
    n_classes: int,
    stats=None,
    bands: int | None = None,
    head: str = BEST_HEAD,
    sub_bands: int = 0,
) -> keras.Model:
    """``kws.zoo.best`` with a choice of head (:data:`BEST_HEADS`) and, for ``sub_bands`` > 0,
    :class:`SubSpectralNorm` in every batch norm's place; with neither it is the zoo's network."""
    if head not in BEST_HEADS:
        raise ValueError(f"unknown head {head!r}; choose from: {', '.join(BEST_HEADS)}")
    if head == BEST_HEAD and not sub_bands:
        return zoo.best(input_shape, n_classes, stats, bands)
    inputs, x = zoo._image_stem(input_shape, stats, bands)
    x = zoo._best_body(x, norm=_ssn(sub_bands) if sub_bands else zoo._bn)
    x = zoo._frequency_rows(x) if head == "freq" else layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, zoo._head(x, n_classes), name="best")


def best_builder(head: str = BEST_HEAD, sub_bands: int = 0) -> Callable[..., keras.Model]:
    """A builder with the zoo's signature for :func:`best` with these options (for ``zoo.ZOO["best"]``)."""
    return functools.partial(best, head=head, sub_bands=sub_bands)


def tc_resnet8(input_shape: tuple[int, int], n_classes: int, stats=None, bands: int | None = None) -> keras.Model:
    """MFCC frames, coefficients as channels -> conv(16, 3 frames)+BN -> 3 temporal residual blocks (24, 32, 48
    channels, 9 frames, stride 2) -> average over time -> dropout -> softmax.

    TC-ResNet8 (Choi et al., "Temporal Convolution for Real-time Keyword Spotting on Mobile Devices", 2019):
    one-dimensional convolutions over time see the whole spectrum at every layer, where a 3x3 kernel sees
    three bands, and cost a fraction of the 2-D ones on a CPU. ~65k parameters. Named "best": it is a candidate
    for ``best``'s place, not a seventh model.
    """
    inputs, x = zoo._stem(input_shape, stats)
    x = layers.Conv1D(16, 3, padding="same", use_bias=False)(x)
    x = zoo._bn()(x)
    x = layers.ReLU()(x)
    for channels in (24, 32, 48):
        x = zoo._residual(x, channels, conv=layers.Conv1D, kernel=9, stride=2)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, zoo._head(x, n_classes), name="best")
