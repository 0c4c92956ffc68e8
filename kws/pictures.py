"""Feature pictures (MFCC, log-mel) as PNG images with their axes drawn in, for the Try it page.

A Plotly heatmap is a whole chart for the browser to build (SVG axes, hover layer, a canvas per trace), and Try
it showed two after every answer: with ten pages answering at once on two cores, the browsers' drawing was what
the answers waited for (``bench/README.md``). A PNG is decoded and placed. The axes, their ticks and titles and
the colour bar are drawn into it here, so the picture still says what across, up and colour mean; only the
hover read-out of single cells is lost.
"""

from __future__ import annotations

import io
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
    step = nice_step(t_high - t_low, 6)
    for t in _ticks(t_low, t_high, 6):
        x = x0 + (t - t_low) / (t_high - t_low) * (x1 - x0)
        draw.line([(x, y1), (x, y1 + 8)], fill=_GRID, width=2)
        draw.text((x, y1 + 12), _label(t, step), fill=_INK, font=font, anchor="mt")
    draw.text(((x0 + x1) / 2, HEIGHT - 12), "time (s)", fill=_INK, font=font, anchor="md")

    for r in _ticks(0, rows - 1, 6) if rows else []:
        y = y1 - (r + 0.5) / rows * (y1 - y0)
        draw.line([(x0 - 8, y), (x0, y)], fill=_GRID, width=2)
        draw.text((x0 - 12, y), f"{r + 0.0:.0f}", fill=_INK, font=font, anchor="rm")
    side = Image.new("RGBA", (y1 - y0, _FONT_PX + 8), (255, 255, 255, 0))
    ImageDraw.Draw(side).text(((y1 - y0) / 2, 0), axis, fill=_INK, font=font, anchor="mt")
    rotated = side.rotate(90, expand=True)
    image.paste(rotated, (8, y0), rotated)

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

    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)  # zlib's fastest: a third of the default's time, ~1.5x the bytes
    return out.getvalue()


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
