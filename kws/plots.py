"""Plotly figures for the pages: waveform with the heard window, MFCC heatmap, probabilities, confusion, curves.

Pages only place these figures; every number on them is computed here or in the modules they come from.

Each builder writes its figure as plain dicts and hands them to one ``go.Figure`` call, which validates the
whole figure once. Plotly validates again at every ``update_layout``, ``update_traces`` or ``add_vrect`` step,
walking its property tree each time, so a figure built step by step costs several times what ``st.plotly_chart``
spends sending it, and the Try it page draws nine per answer (``bench/figures.py`` times each). Builders return a
``go.Figure``, not the dicts: ``st.plotly_chart`` sends a Figure as it is, but validates a dict by building a
Figure from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from kws.config import LABELS
from kws.features import FeatureSettings, log_mel_from_mfcc, shapes
from kws.pictures import mfcc_range

#: The waveform's blocks, each drawn as its highest and lowest sample: 600 points show a 3-s clip's envelope
#: as 4,000 did (a half-page chart is ~600 px wide), and a browser draws 600 points faster.
_ENVELOPE_BLOCKS = 300


def _axis(title: str, **settings: Any) -> dict[str, Any]:
    """An axis titled ``title`` with ``settings``, leaving out those set to None (Plotly's default then)."""
    return {"title": {"text": title}, **{k: v for k, v in settings.items() if v is not None}}


def _figure(traces: list[dict[str, Any]], title: str, height: int = 260, **layout: Any) -> go.Figure:
    """The figure of ``traces`` (trace dicts with their ``type``) in the pages' common frame: ``title``, ``height``,
    narrow margins, no legend; ``layout`` adds to or overrides that frame."""
    frame = {"title": {"text": title}, "height": height, "margin": dict(l=40, r=10, t=40, b=40), "showlegend": False}
    return go.Figure({"data": traces, "layout": frame | layout})


def waveform(
    samples: np.ndarray,
    sample_rate: int,
    window: tuple[float, float] | None = None,
    title: str = "Waveform",
    marks: Sequence[tuple[float, float, str]] = (),
) -> go.Figure:
    """The recording (its min/max envelope over :data:`_ENVELOPE_BLOCKS` blocks) with the 1-second window the models heard shaded, and ``marks``
    (start, end, word): the words spotted during a live take, outlined and named along the bottom."""
    x = np.asarray(samples, dtype=np.float32)
    step = -(-len(x) // _ENVELOPE_BLOCKS) if len(x) > 2 * _ENVELOPE_BLOCKS else 1
    if step > 1:  # each block's highest and lowest sample, one after the other: the line fills the envelope
        starts = np.arange(0, len(x), step)
        t = np.repeat(starts / sample_rate, 2)
        y = np.stack([np.maximum.reduceat(x, starts), np.minimum.reduceat(x, starts)], 1).ravel()
    else:
        t, y = np.arange(len(x)) / sample_rate, x
    trace = dict(type="scatter", x=t, y=y, mode="lines", line=dict(width=1, color="#4C78A8"), name="audio")
    # what add_vrect draws: a rectangle over the plot's full height, its label inside one of its corners
    span = dict(type="rect", xref="x", y0=0, y1=1, yref="y domain")
    label = dict(showarrow=False, xanchor="left", xref="x", yref="y domain")
    rects, labels = [], []
    if window is not None:
        rects.append(span | dict(x0=window[0], x1=window[1], fillcolor="#F58518", opacity=0.18, line=dict(width=0)))
        labels.append(label | dict(x=window[0], y=1, yanchor="top", text="heard by the models"))
    for start, end, word in marks:
        rects.append(span | dict(x0=start, x1=end, line=dict(color="#54A24B", width=1.5, dash="dot")))
        labels.append(label | dict(x=start, y=0, yanchor="bottom", text=word, font=dict(color="#54A24B")))
    loud = np.abs(x).max(initial=0) > 0.5
    return _figure(
        [trace],
        title,
        shapes=rects,
        annotations=labels,
        xaxis=_axis("time (s)"),
        yaxis=_axis("amplitude", range=[-1.05, 1.05] if loud else None),
    )


def _time_heatmap(
    z: np.ndarray,
    settings: FeatureSettings,
    title: str,
    row: str,
    unit: str,
    axis: str | None = None,
    z_range: tuple[float, float] | None = None,
) -> go.Figure:
    """``z`` (frames, rows) as an image: time (s) across, ``row`` index up (titled ``axis``, default ``row``),
    value as colour, spread over ``z_range`` (default: the values' own range)."""
    times = shapes(settings).frame_times(settings)
    trace = dict(
        type="heatmap",
        z=np.asarray(z).T,
        x=times,
        y=np.arange(z.shape[1]),
        colorscale="Viridis",
        colorbar=dict(title=dict(text=unit)),
        hovertemplate=f"t=%{{x:.2f}}s<br>{row} %{{y}}<br>%{{z:.1f}}<extra></extra>",
    )
    if z_range is not None:
        trace["zmin"], trace["zmax"] = z_range
    return _figure([trace], title, height=300, xaxis=_axis("time (s)"), yaxis=_axis(axis or row))


def mfcc_heatmap(feats: np.ndarray, settings: FeatureSettings, title: str = "MFCC spectrogram") -> go.Figure:
    """MFCCs as an image: time (s) across, coefficient index up, value as colour."""
    return _time_heatmap(feats, settings, title, "coefficient", "value", axis="MFCC coefficient")


def log_mel_heatmap(
    feats: np.ndarray, settings: FeatureSettings, title: str = "Log-mel picture: what the CNNs see"
) -> go.Figure:
    """The log-mel spectrogram the MFCCs keep (low to high mel band up), as the convolutional models see it."""
    return _time_heatmap(log_mel_from_mfcc(feats, settings), settings, title, "mel band", "dB")


def confusion_heatmap(
    confusion: Sequence[Sequence[int]], labels: Sequence[str] = LABELS, title: str = "", zmax: float | None = None
) -> go.Figure:
    """Confusion matrix as row-normalised colours with counts written in: rows true, columns predicted."""
    c = np.asarray(confusion, dtype=float)
    rows = c.sum(axis=1, keepdims=True)
    share = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    trace = dict(
        type="heatmap",
        z=share,
        x=list(labels),
        y=list(labels),
        zmin=0,
        zmax=zmax if zmax is not None else 1,
        colorscale="Blues",
        text=c.astype(int),
        texttemplate="%{text}",
        hovertemplate="true %{y}, predicted %{x}: %{text} clips<extra></extra>",
        showscale=False,
    )
    xaxis, yaxis = _axis("predicted", side="bottom"), _axis("true", autorange="reversed")
    return _figure([trace], title, height=280, xaxis=xaxis, yaxis=yaxis)


def training_curves(
    histories: dict[str, dict[str, list[float]]], metric: str = "accuracy", title: str | None = None
) -> go.Figure:
    """Training (solid) and validation (dashed) ``metric`` per epoch for each model."""
    palette = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D"]
    traces = []
    for i, (name, hist) in enumerate(histories.items()):
        colour = palette[i % len(palette)]
        for key, dash, suffix in ((metric, "solid", "train"), (f"val_{metric}", "dash", "validation")):
            values = hist.get(key) or []
            if values:
                traces.append(
                    dict(
                        type="scatter",
                        x=list(range(1, len(values) + 1)),
                        y=values,
                        mode="lines+markers",
                        name=f"{name} ({suffix})",
                        line=dict(color=colour, dash=dash),
                    )
                )
    return _figure(
        traces,
        title or f"Training {metric}",
        height=380,
        xaxis=_axis("epoch"),
        yaxis=_axis(metric),
        showlegend=True,
        # the legend under the plot: at its side it takes half the width of a half-page chart on a laptop screen
        legend=dict(orientation="h", x=0, xanchor="left", y=-0.25, yanchor="top"),
    )


def robustness_lines(
    snrs: Sequence[int | str],
    accuracy: dict[str, Sequence[float]],
    title: str = "Keyword accuracy against background noise",
    y_title: str = "keyword accuracy (test)",
) -> go.Figure:
    """A rate against SNR, one line per model: "clean" at the left, then louder and louder noise (30 dB down to
    -5 dB), so accuracy falls to the right (and false accepts move as they will). The x axis is categorical:
    "clean" is no number of dB."""
    palette = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D"]
    x = [s if isinstance(s, str) else f"{s} dB" for s in snrs]
    traces = [
        dict(
            type="scatter",
            x=x,
            y=list(values),
            mode="lines+markers",
            name=name,
            line=dict(color=palette[i % len(palette)]),
            hovertemplate=f"{name}<br>%{{x}}: %{{y:.1%}}<extra></extra>",
        )
        for i, (name, values) in enumerate(accuracy.items())
    ]
    return _figure(
        traces,
        title,
        height=380,
        xaxis=_axis("signal-to-noise ratio", type="category"),
        yaxis=_axis(y_title, tickformat=".0%"),
        showlegend=True,
        legend=dict(orientation="h", x=0, xanchor="left", y=-0.25, yanchor="top"),
    )


#: What the scatter's axes are called, by row key.
_AXIS_TITLES = {
    "latency_ms": "median latency per clip (ms)",
    "params": "parameters (log scale)",
    "accuracy": "test accuracy",
}
#: Plotly's text positions around a marker, most preferred first, as (dx, dy) directions (y up).
_LABEL_SPOTS = {
    "top center": (0, 1),
    "bottom center": (0, -1),
    "middle right": (1, 0),
    "middle left": (-1, 0),
    "top right": (1, 1),
    "top left": (-1, 1),
    "bottom right": (1, -1),
    "bottom left": (-1, -1),
}
_CHAR_PX, _TEXT_PX, _MARKER_PX = 6.5, 16.0, 12.0  # 12-px sans labels measured ~6 px a character in Chromium
#: The scatter's plot area (px) at the widths :func:`label_positions` plans for: Chromium draws Compare's at
#: 812 x 255 on a 1,366-px laptop page and 470 x 255 at 1,024 px. A name clear of a point at one width can cover it
#: at another (the points spread, the names keep their size), so a placement has to hold at each; planning for
#: 640 x 280 alone let two names cross for about one set of latencies in six.
PLOT_AREAS = ((470.0, 255.0), (640.0, 255.0), (812.0, 255.0))


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Area shared by two boxes (left, bottom, right, top)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0)


def label_positions(
    xs: Sequence[float],
    ys: Sequence[float],
    labels: Sequence[str],
    sizes_px: Sequence[tuple[float, float]] = PLOT_AREAS,
) -> list[str]:
    """A Plotly ``textposition`` per point so that no label covers another label or another point.

    Plotly does not move labels out of each other's way: ``cnn2``, ``cnn2_dropout`` and ``best`` sit within a few
    pixels of each other on the Compare page, and every label "top center" overlapped. ``xs`` and ``ys`` are
    fractions of the plot area (0 to 1); a placement has to hold at each of ``sizes_px`` (the plot area's sizes
    in pixels, :data:`PLOT_AREAS`). Greedy over the points first, three passes, each label taking its least-covered
    spot (earlier spots win ties); where that leaves an overlap, the first clear placement in order of preference
    (:func:`_clear_spots`), inside the plot area if there is one.
    """
    n, gap = len(xs), _MARKER_PX / 2 + 2
    sizes = list(sizes_px)
    points = [[(x * w, y * h) for x, y in zip(xs, ys)] for w, h in sizes]
    half = _MARKER_PX / 2
    markers = [[(px - half, py - half, px + half, py + half) for px, py in pts] for pts in points]

    def box(k: int, i: int, spot: str) -> tuple[float, float, float, float]:
        (px, py), (dx, dy) = points[k][i], _LABEL_SPOTS[spot]
        w, h = _CHAR_PX * len(labels[i]), _TEXT_PX
        cx, cy = px + dx * (gap + w / 2), py + dy * (gap + h / 2)
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

    area = {(k, i, s): box(k, i, s) for k in range(len(sizes)) for i in range(n) for s in _LABEL_SPOTS}

    def on_points(i: int, spot: str) -> float:
        return sum(_overlap(area[k, i, spot], markers[k][j]) for k in range(len(sizes)) for j in range(n) if j != i)

    def on_label(i: int, spot: str, j: int, other: str) -> float:
        return sum(_overlap(area[k, i, spot], area[k, j, other]) for k in range(len(sizes)))

    def outside(i: int, spot: str) -> float:
        total = 0.0
        for k, (w, h) in enumerate(sizes):
            b = area[k, i, spot]
            total += (b[2] - b[0]) * (b[3] - b[1]) - _overlap(b, (0.0, 0.0, w, h))
        return total

    chosen = ["top center"] * n

    def cost(i: int, spot: str) -> float:
        return on_points(i, spot) + sum(on_label(i, spot, j, chosen[j]) for j in range(n) if j != i)

    for _ in range(3):
        for i in range(n):
            chosen[i] = min(_LABEL_SPOTS, key=lambda spot: cost(i, spot) + outside(i, spot))  # first of equal costs
    if all(cost(i, chosen[i]) < 0.5 for i in range(n)):
        return chosen
    for inside in (True, False):
        fits = {
            (i, s): on_points(i, s) < 0.5 and (not inside or outside(i, s) < 0.5)
            for i in range(n)
            for s in _LABEL_SPOTS
        }
        found = _clear_spots(n, fits, lambda i, s, j, t: on_label(i, s, j, t) < 0.5)
        if found:
            return found
    return chosen


def _clear_spots(
    n: int, fits: dict[tuple[int, str], bool], apart: Callable[[int, str, int, str], bool], budget: int = 200_000
) -> list[str] | None:
    """The first spots, in order of preference point by point, where each label ``fits`` on its own and every two
    are ``apart``; None if there are none or the search takes more than ``budget`` steps. The greedy passes miss
    such a placement where three points crowd together (about one set of latencies in twenty on Compare)."""
    steps = [budget]

    def search(chosen: list[str]) -> list[str] | None:
        i = len(chosen)
        if i == n:
            return chosen
        for spot in _LABEL_SPOTS:
            steps[0] -= 1
            if steps[0] < 0:
                return None
            if fits[i, spot] and all(apart(i, spot, j, chosen[j]) for j in range(i)):
                found = search([*chosen, spot])
                if found:
                    return found
        return None

    return search([])


def _fractions(values: Sequence[float], log: bool, pad: float) -> tuple[list[float], list[float]]:
    """Where each value falls on an axis padded by ``pad`` of its span, and that axis's range (log10 if ``log``)."""
    v = np.log10(np.asarray(values, dtype=float)) if log else np.asarray(values, dtype=float)
    low, high = float(v.min()), float(v.max())
    span = high - low or (abs(high) or 1.0)
    low, high = low - pad * span, high + pad * span
    return list((v - low) / (high - low)), [low, high]


def tradeoff_scatter(
    rows: Sequence[dict[str, Any]], x: str = "latency_ms", y: str = "accuracy", title: str = ""
) -> go.Figure:
    """One point per model: accuracy against latency (or parameters), labelled with its name.

    The axes' ranges are set here, not left to Plotly, so :func:`label_positions` knows where each point lands
    and can keep the names clear of each other.
    """
    rows = [r for r in rows if r.get(x) is not None and r.get(y) is not None]  # e.g. a model not timed
    if not rows:
        return _figure([], title, height=360)
    log_x = x == "params"
    xs, x_range = _fractions([r[x] for r in rows], log_x, pad=0.12)
    ys, y_range = _fractions([r[y] for r in rows], False, pad=0.15)
    names = [r["model"] for r in rows]
    points = dict(
        type="scatter",
        x=[r[x] for r in rows],
        y=[r[y] for r in rows],
        mode="markers+text",
        text=names,
        textposition=label_positions(xs, ys, names),
        marker=dict(size=_MARKER_PX, color="#4C78A8"),
        cliponaxis=False,
    )
    xaxis = _axis(_AXIS_TITLES.get(x, x), type="log" if log_x else None, range=x_range, dtick=1 if log_x else None)
    yaxis = _axis(_AXIS_TITLES.get(y, y), tickformat=".1%", range=y_range)
    return _figure([points], title, height=360, xaxis=xaxis, yaxis=yaxis)


def histogram(values: Sequence[float], title: str, x_title: str, bins: int = 40) -> go.Figure:
    """A plain histogram (clip durations, loudness)."""
    trace = dict(type="histogram", x=list(values), nbinsx=bins, marker=dict(color="#4C78A8"))
    return _figure([trace], title, height=280, xaxis=_axis(x_title), yaxis=_axis("clips"))


def mfcc_heatmap_robust(feats: np.ndarray, settings: FeatureSettings, title: str = "MFCC spectrogram") -> go.Figure:
    """:func:`mfcc_heatmap` with the colours spread over coefficients 1 and up (:func:`kws.pictures.mfcc_range`:
    the 1st-99th percentile), so that coefficient 0's row saturates and the shape of the word shows."""
    return _time_heatmap(
        feats, settings, title, "coefficient", "value", axis="MFCC coefficient", z_range=mfcc_range(feats)
    )


#: Occlusion's colours: transparent at zero, so the log-mel picture shows through where masking changed nothing;
#: red where the word's probability fell (the model listened there), blue where it rose.
_DROP_COLOURS = [[0.0, "rgba(33,102,172,0.85)"], [0.5, "rgba(255,255,255,0)"], [1.0, "rgba(178,24,43,0.85)"]]


def occlusion_heatmap(
    drop: np.ndarray,
    feats: np.ndarray,
    settings: FeatureSettings,
    title: str,
    z_range: tuple[float, float],
    colourbar: bool = True,
) -> go.Figure:
    """What a model listened to: the fall in its word's probability when each patch is silenced (``drop``,
    frames x mel bands, :func:`kws.explain.occlusion`) over the log-mel picture of ``feats`` in greys.

    ``z_range`` is shared by every model's map on a page, so equal colours mean equal drops; zero is transparent.
    """
    times = shapes(settings).frame_times(settings)
    bands = np.arange(settings.n_mels)
    picture = dict(
        type="heatmap",
        z=log_mel_from_mfcc(feats, settings).T,
        x=times,
        y=bands,
        colorscale="Greys",
        reversescale=True,
        showscale=False,
        hoverinfo="skip",
    )
    occluded = dict(
        type="heatmap",
        z=np.asarray(drop).T,
        x=times,
        y=bands,
        zmin=z_range[0],
        zmax=z_range[1],
        colorscale=_DROP_COLOURS,
        showscale=colourbar,
        colorbar=dict(title=dict(text="drop"), tickformat=".0%"),
        hovertemplate="t=%{x:.2f}s<br>mel band %{y}<br>probability falls %{z:.1%}<extra></extra>",
    )
    return _figure([picture, occluded], title, height=260, xaxis=_axis("time (s)"), yaxis=_axis("mel band"))


def feature_maps(
    maps: np.ndarray, channels: Sequence[int], settings: FeatureSettings, title: str, per_row: int = 4
) -> go.Figure:
    """Some ``channels`` of a convolution's output ``(frames, bands, channels)`` on one clip, one small image each
    (time across, mel band up), in rows of ``per_row``, each channel on its own colour scale."""
    rows = -(-len(channels) // per_row)
    times = shapes(settings).frame_times(settings)[: maps.shape[0]]
    traces, axes, labels = [], {}, []
    gap_x, gap_y = 0.03, 0.12
    width, height = (1 - gap_x * (per_row - 1)) / per_row, (1 - gap_y * (rows - 1)) / rows
    for i, channel in enumerate(channels):
        row, col = divmod(i, per_row)
        n = "" if i == 0 else str(i + 1)
        x0, y1 = col * (width + gap_x), 1 - row * (height + gap_y)
        x1, y0 = min(x0 + width, 1.0), max(y1 - height, 0.0)  # rounding must not leave [0, 1]
        axes[f"xaxis{n}"] = dict(domain=[x0, x1], anchor=f"y{n}", showticklabels=row == rows - 1)
        axes[f"yaxis{n}"] = dict(domain=[y0, y1], anchor=f"x{n}", showticklabels=col == 0)
        traces.append(
            dict(
                type="heatmap",
                z=maps[:, :, channel].T,
                x=times,
                xaxis=f"x{n}",
                yaxis=f"y{n}",
                colorscale="Viridis",
                showscale=False,
                hovertemplate=f"channel {channel}<br>t=%{{x:.2f}}s<br>band %{{y}}<br>%{{z:.2f}}<extra></extra>",
            )
        )
        labels.append(
            dict(text=f"channel {channel}", x=x0, y=y1, xref="paper", yref="paper", xanchor="left", yanchor="bottom")
        )
        labels[-1] |= dict(showarrow=False, font=dict(size=11))
    return _figure(traces, title, height=150 * rows + 70, annotations=labels, **axes)


#: One colour per model on a shared chart (Plotly's default sequence).
_PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880")

#: The smallest rate a DET chart's log axes show: a rate of zero sits on this floor.
DET_FLOOR = 1e-3


def det_chart(curves: dict[str, dict[str, list[float]]], operating: float, title: str = "") -> go.Figure:
    """False rejects against false accepts as the threshold moves (:func:`kws.evaluate.det_curve`), one line per
    model on log axes (rates of zero on :data:`DET_FLOOR`), each with a dot at threshold ``operating``."""
    traces: list[dict[str, Any]] = []
    for i, (name, det) in enumerate(curves.items()):
        colour = _PALETTE[i % len(_PALETTE)]
        fa = np.maximum(np.nan_to_num(det["false_accept_rate"], nan=1.0), DET_FLOOR)
        fr = np.maximum(np.nan_to_num(det["false_reject_rate"], nan=1.0), DET_FLOOR)
        at = int(np.argmin(np.abs(np.asarray(det["threshold"]) - operating)))
        line = dict(color=colour, width=2)
        traces.append(dict(type="scatter", x=fa.tolist(), y=fr.tolist(), mode="lines", name=name, line=line))
        traces.append(
            dict(
                type="scatter",
                x=[float(fa[at])],
                y=[float(fr[at])],
                mode="markers",
                name=f"{name} at {operating:.0%}",
                marker=dict(size=9, color=colour),
                showlegend=False,
                hovertemplate=f"{name} at {operating:.0%}: %{{x:.1%}} false accepts, %{{y:.1%}} false rejects<extra></extra>",
            )
        )
    axis = dict(type="log", range=[np.log10(DET_FLOOR), 0], tickformat=".1%")
    return _figure(
        traces,
        title,
        height=380,
        showlegend=True,
        xaxis=_axis("false accepts (other words named as a keyword)", **axis),
        yaxis=_axis("false rejects (keywords missed)", **axis),
    )
