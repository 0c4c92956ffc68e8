"""Try it's pictures (waveform, MFCC, log-mel) as PNG images with their axes drawn in.

A Plotly chart is a whole chart for the browser to build (SVG axes, hover layer, a canvas per trace), and the
first one on a page makes the browser load and compile Plotly's JavaScript; with many pages answering at once on
one machine, that drawing is what the answers wait for (``bench/load.py``). A PNG is decoded and placed. The axes,
their ticks and titles and the colour bar are drawn into it here, so the picture still says what across, up and
colour mean; the hover read-out is lost, and the waveform's caption says in words what it marks.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kws.features import FeatureSettings, log_mel_from_mfcc, shapes

#: Plotly's Viridis stops (``plotly.colors.sequential.Viridis``): the same colours its heatmaps used.
_VIRIDIS = "#440154 #482878 #3e4989 #31688e #26828e #1f9e89 #35b779 #6ece58 #b5de2b #fde725".split()
#: The narrowest colour range of :func:`mfcc_picture`, in MFCC units: a spoken word spans ~40-60 between its 1st
#: and 99th percentiles, digital silence ~1e-6, which a stretched scale painted as bright stripes.
MIN_MFCC_SPAN = 10.0

#: The image's size in pixels, twice what a half-page column shows, so that text stays sharp on a fine screen.
WIDTH, HEIGHT = 960, 560
_LEFT, _RIGHT, _TOP, _BOTTOM = 120, 170, 64, 96  # room for the y ticks and title, colour bar, title, x ticks
_BAR_GAP, _BAR_WIDTH = 24, 28
_FONT_PX, _TITLE_PX = 22, 28
_INK, _GRID = (49, 51, 63), (120, 120, 120)  # Streamlit's text colour; tick marks
_WAVE, _MARK = (76, 120, 168), (84, 162, 75)  # the waveform's blue; a spotted word's green


@cache
def _lookup() -> np.ndarray:
    """256 RGB colours interpolated between the Viridis stops."""
    stops = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in _VIRIDIS], dtype=float)
    at = np.linspace(0, len(stops) - 1, 256)
    return np.stack([np.interp(at, np.arange(len(stops)), stops[:, k]) for k in range(3)], 1).round().astype(np.uint8)


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def colours(z: np.ndarray, z_range: tuple[float, float]) -> np.ndarray:
    """``z`` as Viridis RGB (uint8, one more axis of 3), ``z_range`` spread over the whole scale, outside it clipped."""
    low, high = z_range
    share = np.clip((np.asarray(z, dtype=float) - low) / ((high - low) or 1.0), 0.0, 1.0)
    return _lookup()[np.round(share * 255).astype(int)]


def nice_step(span: float, most: int) -> float:
    """The smallest of 1, 2 or 5 times a power of ten that cuts ``span`` into at most ``most`` steps."""
    if span <= 0:
        return 1.0
    power = 10 ** np.floor(np.log10(span / most))
    return float(next(m * power for m in (1, 2, 5, 10) if span / (m * power) <= most))


def _ticks(low: float, high: float, most: int) -> list[float]:
    step = nice_step(high - low, most)
    first = np.ceil(low / step - 1e-9) * step
    return [float(v) for v in np.arange(first, high + step * 1e-6, step)]


def _label(value: float, step: float) -> str:
    value = 0.0 if abs(value) < step * 1e-6 else value  # no "-0.0" from a tick's rounding
    return f"{value:.0f}" if step >= 1 else f"{value:.{max(0, -int(np.floor(np.log10(step))))}f}"


def picture(
    z: np.ndarray,
    times: np.ndarray,
    title: str,
    axis: str,
    unit: str,
    z_range: tuple[float, float] | None = None,
) -> bytes:
    """``z`` (frames, rows) as a PNG: time (s, frame centres ``times``) across, row index up (titled ``axis``),
    value as Viridis colour over ``z_range`` (default: the values' own range), with a colour bar titled ``unit``."""
    z = np.asarray(z, dtype=float)
    frames, rows = z.shape
    if z_range is None:
        z_range = (float(z.min()), float(z.max())) if z.size else (0.0, 1.0)
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font, big = _font(_FONT_PX), _font(_TITLE_PX)
    x0, y0, x1, y1 = _LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM
    if frames and rows:  # row 0 at the bottom, as on a spectrogram
        cells = Image.fromarray(colours(z.T[::-1], z_range))
        image.paste(cells.resize((x1 - x0, y1 - y0), Image.Resampling.NEAREST), (x0, y0))
    draw.text((x0, y0 / 2), title, fill=_INK, font=big, anchor="lm")

    dt = float(times[1] - times[0]) if len(times) > 1 else 1.0
    t_low, t_high = (float(times[0]) - dt / 2, float(times[-1]) + dt / 2) if len(times) else (0.0, 1.0)
    _time_axis(draw, (x0, y0, x1, y1), t_low, t_high)

    for r in _ticks(0, rows - 1, 6) if rows else []:
        y = y1 - (r + 0.5) / rows * (y1 - y0)
        draw.line([(x0 - 8, y), (x0, y)], fill=_GRID, width=2)
        draw.text((x0 - 12, y), f"{r + 0.0:.0f}", fill=_INK, font=font, anchor="rm")
    _side_title(image, axis, y0, y1)

    bar_x = x1 + _BAR_GAP
    ramp = colours(np.linspace(z_range[1], z_range[0], y1 - y0)[:, None].repeat(_BAR_WIDTH, 1), z_range)
    image.paste(Image.fromarray(ramp), (bar_x, y0))
    low, high = z_range
    step = nice_step(high - low, 5)
    for v in _ticks(low, high, 5):
        y = y1 - (v - low) / ((high - low) or 1.0) * (y1 - y0)
        draw.line([(bar_x + _BAR_WIDTH, y), (bar_x + _BAR_WIDTH + 6, y)], fill=_GRID, width=2)
        draw.text((bar_x + _BAR_WIDTH + 10, y), _label(v, step), fill=_INK, font=font, anchor="lm")
    draw.text((bar_x, y0 - 10), unit, fill=_INK, font=font, anchor="ld")

    return _png(image)


def _time_axis(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], t_low: float, t_high: float) -> None:
    """Time ticks (s) along the bottom of ``box`` (x0, y0, x1, y1), ``t_low`` to ``t_high`` across, and its title."""
    x0, _, x1, y1 = box
    font, step = _font(_FONT_PX), nice_step(t_high - t_low, 6)
    for t in _ticks(t_low, t_high, 6):
        x = x0 + (t - t_low) / ((t_high - t_low) or 1.0) * (x1 - x0)
        draw.line([(x, y1), (x, y1 + 8)], fill=_GRID, width=2)
        draw.text((x, y1 + 12), _label(t, step), fill=_INK, font=font, anchor="mt")
    draw.text(((x0 + x1) / 2, HEIGHT - 12), "time (s)", fill=_INK, font=font, anchor="md")


def _side_title(image: Image.Image, text: str, y0: int, y1: int) -> None:
    """``text`` up the left edge, centred between ``y0`` and ``y1``."""
    side = Image.new("RGBA", (y1 - y0, _FONT_PX + 8), (255, 255, 255, 0))
    ImageDraw.Draw(side).text(((y1 - y0) / 2, 0), text, fill=_INK, font=_font(_FONT_PX), anchor="mt")
    rotated = side.rotate(90, expand=True)
    image.paste(rotated, (8, y0), rotated)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)  # zlib's fastest: a third of the default's time, ~1.5x the bytes
    return out.getvalue()


def waveform_picture(
    samples: np.ndarray,
    sample_rate: int,
    window: tuple[float, float] | None = None,
    title: str = "Waveform",
    marks: Sequence[tuple[float, float, str]] = (),
) -> bytes:
    """The recording as a PNG: its envelope (each pixel column's lowest to highest sample), the 1-second
    ``window`` the models heard shaded, and ``marks`` (start, end, word), the words spotted during a live take,
    outlined and named along the bottom. Amplitude runs over +-1.05 for a loud clip (any sample past 0.5), else
    over the clip's own peak, so a quiet word still shows its shape."""
    x = np.asarray(samples, dtype=np.float32).ravel()
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image, "RGBA")
    font = _font(_FONT_PX)
    x0, y0, x1, y1 = _LEFT, _TOP, WIDTH - _BAR_GAP, HEIGHT - _BOTTOM
    duration = len(x) / sample_rate if len(x) else 1.0
    peak = float(np.abs(x).max(initial=0.0))
    top = 1.05 if peak > 0.5 else max(peak * 1.05, 1e-3)

    def at_x(t: float) -> float:
        return x0 + t / duration * (x1 - x0)

    def at_y(v):  # a float or an array of them
        return y0 + (top - v) / (2 * top) * (y1 - y0)

    if window is not None:
        draw.rectangle([at_x(window[0]), y0, at_x(window[1]), y1], fill=(245, 133, 24, 46))
    if len(x):  # one pixel column per slice of samples, filled from its lowest to its highest
        starts = np.minimum(np.linspace(0, len(x), x1 - x0 + 1).astype(int)[:-1], len(x) - 1)
        high, low = (np.clip(at_y(np.ufunc.reduceat(f, x, starts)), y0, y1) for f in (np.maximum, np.minimum))
        rows = np.arange(y0, y1 + 1)[:, None]
        inside = (rows >= np.floor(high)) & (rows <= np.ceil(low))
        plot = np.asarray(image.crop((x0, y0, x1, y1 + 1))).copy()
        plot[inside] = _WAVE
        image.paste(Image.fromarray(plot), (x0, y0))
        draw = ImageDraw.Draw(image, "RGBA")
    if window is not None:
        draw.text((at_x(window[0]) + 6, y0 + 6), "heard by the models", fill=_INK, font=font, anchor="lt")
    for start, end, word in marks:
        _dotted_box(draw, (at_x(start), y0, at_x(end), y1))
        draw.text((at_x(start) + 6, y1 - 6), word, fill=_MARK, font=font, anchor="lb")
    draw.rectangle([x0, y0, x1, y1], outline=_GRID, width=1)
    draw.text((x0, y0 / 2), title, fill=_INK, font=_font(_TITLE_PX), anchor="lm")
    _time_axis(draw, (x0, y0, x1, y1), 0.0, duration)
    step = nice_step(2 * top, 4)
    for v in _ticks(-top, top, 4):
        draw.line([(x0 - 8, at_y(v)), (x0, at_y(v))], fill=_GRID, width=2)
        draw.text((x0 - 12, at_y(v)), _label(v, step), fill=_INK, font=font, anchor="rm")
    _side_title(image, "amplitude", y0, y1)
    return _png(image)


def _dotted_box(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], dash: int = 8) -> None:
    """A dotted outline (PIL draws only solid lines): short dashes along each side."""
    left, upper, right, lower = box
    for a in np.arange(upper, lower, 2 * dash):
        for side in (left, right):
            draw.line([(side, a), (side, min(a + dash, lower))], fill=_MARK, width=3)
    for a in np.arange(left, right, 2 * dash):
        for side in (upper, lower):
            draw.line([(a, side), (min(a + dash, right), side)], fill=_MARK, width=3)


def waveform_caption(window: tuple[float, float] | None, marks: Sequence[tuple[float, float, str]] = ()) -> str:
    """What :func:`waveform_picture` marks, in words (a picture has no hover read-out): the heard second and each
    spotted word's span."""
    parts = [f"Shaded: the second the models heard, {window[0]:.2f}–{window[1]:.2f} s"] if window else []
    parts += [f"{word} {start:.2f}–{end:.2f} s" for start, end, word in marks]
    return " · ".join(parts)


def mfcc_range(feats: np.ndarray) -> tuple[float, float] | None:
    """The MFCC picture's colour range: coefficients 1 and up, 1st to 99th percentile, at least
    :data:`MIN_MFCC_SPAN` wide.

    Coefficient 0 (overall loudness) is hundreds of units below the rest; on a full-range scale it leaves every
    other row one flat colour. Its row saturates instead, and the shape of the word shows.
    """
    rest = np.asarray(feats)[:, 1:]
    if not rest.size:
        return None
    lo, hi = (float(v) for v in np.percentile(rest, [1, 99]))
    if hi - lo < MIN_MFCC_SPAN:  # near-constant input (digital silence): do not blow rounding noise up
        mid = (hi + lo) / 2
        lo, hi = mid - MIN_MFCC_SPAN / 2, mid + MIN_MFCC_SPAN / 2
    return lo, hi


def mfcc_picture(feats: np.ndarray, settings: FeatureSettings, title: str = "MFCC spectrogram") -> bytes:
    """The MFCCs every model takes in: time across, coefficient up, colour over :func:`mfcc_range`."""
    times = shapes(settings).frame_times(settings)
    return picture(feats, times, title, "MFCC coefficient", "value", z_range=mfcc_range(feats))


def log_mel_picture(
    feats: np.ndarray, settings: FeatureSettings, title: str = "Log-mel picture: what the CNNs see"
) -> bytes:
    """The log-mel spectrogram the MFCCs keep (low to high mel band up), as the convolutional models see it."""
    times = shapes(settings).frame_times(settings)
    return picture(log_mel_from_mfcc(feats, settings), times, title, "mel band", "dB")
