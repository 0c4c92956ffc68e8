"""Plotly figures for the pages: waveform with the heard window, MFCC heatmap, probabilities, confusion, curves.

Pages only place these figures; every number on them is computed here or in the modules they come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from kws.config import LABELS
from kws.features import FeatureSettings, log_mel_from_mfcc, shapes

#: One colour per label, the same on every chart.
LABEL_COLOURS = {"bed": "#4C78A8", "happy": "#F58518", "cat": "#54A24B"}
_MAX_POINTS = 4000
#: The narrowest colour range of :func:`mfcc_heatmap_robust`, in MFCC units: a spoken word spans ~40-60 between
#: its 1st and 99th percentiles, digital silence ~1e-6, which a stretched scale painted as bright stripes.
_MIN_MFCC_SPAN = 10.0


def _layout(fig: go.Figure, title: str, height: int = 260) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=40, r=10, t=40, b=40), showlegend=False)
    return fig


def waveform(
    samples: np.ndarray, sample_rate: int, window: tuple[float, float] | None = None, title: str = "Waveform"
) -> go.Figure:
    """The recording (decimated for drawing) with the 1-second window the models heard shaded."""
    x = np.asarray(samples, dtype=np.float32)
    step = max(1, len(x) // _MAX_POINTS)
    t = np.arange(0, len(x), step) / sample_rate
    if step > 1:  # keep the envelope visible: draw the peak of each block
        blocks = x[: len(x) // step * step].reshape(-1, step)
        y = np.where(blocks.max(1) > -blocks.min(1), blocks.max(1), blocks.min(1))
        t = t[: len(y)]
    else:
        y = x
    fig = go.Figure(go.Scatter(x=t, y=y, mode="lines", line=dict(width=1, color="#4C78A8"), name="audio"))
    if window is not None:
        fig.add_vrect(
            x0=window[0],
            x1=window[1],
            fillcolor="#F58518",
            opacity=0.18,
            line_width=0,
            annotation_text="heard by the models",
            annotation_position="top left",
        )
    fig.update_xaxes(title="time (s)")
    fig.update_yaxes(title="amplitude", range=[-1.05, 1.05] if np.abs(x).max(initial=0) > 0.5 else None)
    return _layout(fig, title)


def _time_heatmap(
    z: np.ndarray, settings: FeatureSettings, title: str, row: str, unit: str, axis: str | None = None
) -> go.Figure:
    """``z`` (frames, rows) as an image: time (s) across, ``row`` index up (titled ``axis``, default ``row``),
    value as colour."""
    times = shapes(settings).frame_times(settings)
    fig = go.Figure(
        go.Heatmap(
            z=np.asarray(z).T,
            x=times,
            y=np.arange(z.shape[1]),
            colorscale="Viridis",
            colorbar=dict(title=unit),
            hovertemplate=f"t=%{{x:.2f}}s<br>{row} %{{y}}<br>%{{z:.1f}}<extra></extra>",
        )
    )
    fig.update_xaxes(title="time (s)")
    fig.update_yaxes(title=axis or row)
    return _layout(fig, title, height=300)


def mfcc_heatmap(feats: np.ndarray, settings: FeatureSettings, title: str = "MFCC spectrogram") -> go.Figure:
    """MFCCs as an image: time (s) across, coefficient index up, value as colour."""
    return _time_heatmap(feats, settings, title, "coefficient", "value", axis="MFCC coefficient")


def log_mel_heatmap(
    feats: np.ndarray, settings: FeatureSettings, title: str = "Log-mel picture: what the CNNs see"
) -> go.Figure:
    """The log-mel spectrogram the MFCCs keep (low to high mel band up), as the convolutional models see it."""
    return _time_heatmap(log_mel_from_mfcc(feats, settings), settings, title, "mel band", "dB")


def probability_bars(probabilities: dict[str, float], title: str = "") -> go.Figure:
    """The probabilities of the labels, on a fixed 0-1 scale so every model's chart compares."""
    labels = list(probabilities)
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=[probabilities[k] for k in labels],
            marker_color=[LABEL_COLOURS.get(k, "#888") for k in labels],
            text=[f"{probabilities[k]:.0%}" for k in labels],
            textposition="outside",
        )
    )
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%", title="probability")
    fig = _layout(fig, title, height=220 if title else 190)
    return fig if title else fig.update_layout(margin_t=10)  # no title: no blank band above the bars


def confusion_heatmap(
    confusion: Sequence[Sequence[int]], labels: Sequence[str] = LABELS, title: str = "", zmax: float | None = None
) -> go.Figure:
    """Confusion matrix as row-normalised colours with counts written in: rows true, columns predicted."""
    c = np.asarray(confusion, dtype=float)
    rows = c.sum(axis=1, keepdims=True)
    share = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    fig = go.Figure(
        go.Heatmap(
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
    )
    fig.update_xaxes(title="predicted", side="bottom")
    fig.update_yaxes(title="true", autorange="reversed")
    return _layout(fig, title, height=280)


def training_curves(
    histories: dict[str, dict[str, list[float]]], metric: str = "accuracy", title: str | None = None
) -> go.Figure:
    """Training (solid) and validation (dashed) ``metric`` per epoch for each model."""
    fig = go.Figure()
    palette = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D"]
    for i, (name, hist) in enumerate(histories.items()):
        colour = palette[i % len(palette)]
        for key, dash, suffix in ((metric, "solid", "train"), (f"val_{metric}", "dash", "validation")):
            values = hist.get(key) or []
            if values:
                fig.add_trace(
                    go.Scatter(
                        x=list(range(1, len(values) + 1)),
                        y=values,
                        mode="lines+markers",
                        name=f"{name} ({suffix})",
                        line=dict(color=colour, dash=dash),
                    )
                )
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title=metric)
    fig = _layout(fig, title or f"Training {metric}", height=380)
    # the legend under the plot: at its side it took half the width of a half-page chart on a laptop screen
    fig.update_layout(showlegend=True, legend=dict(orientation="h", x=0, xanchor="left", y=-0.25, yanchor="top"))
    return fig


def tradeoff_scatter(
    rows: Sequence[dict[str, Any]], x: str = "latency_ms", y: str = "accuracy", title: str = ""
) -> go.Figure:
    """One point per model: accuracy against latency (or parameters), labelled with its name."""
    fig = go.Figure(
        go.Scatter(
            x=[r[x] for r in rows],
            y=[r[y] for r in rows],
            mode="markers+text",
            text=[r["model"] for r in rows],
            textposition="top center",
            marker=dict(size=12, color="#4C78A8"),
        )
    )
    fig.update_xaxes(title=x.replace("_", " "), type="log" if x == "params" else None)
    fig.update_yaxes(title=y.replace("_", " "), tickformat=".1%")
    return _layout(fig, title, height=360)


def histogram(values: Sequence[float], title: str, x_title: str, bins: int = 40) -> go.Figure:
    """A plain histogram (clip durations, loudness)."""
    fig = go.Figure(go.Histogram(x=list(values), nbinsx=bins, marker_color="#4C78A8"))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title="clips")
    return _layout(fig, title, height=280)


def mfcc_heatmap_robust(feats: np.ndarray, settings: FeatureSettings, title: str = "MFCC spectrogram") -> go.Figure:
    """:func:`mfcc_heatmap` with the colours spread over coefficients 1 and up (1st-99th percentile).

    Coefficient 0 (overall loudness) is hundreds of units below the rest; on a full-range scale it leaves every
    other row one flat colour. Its row saturates instead, and the shape of the word shows.
    """
    fig = mfcc_heatmap(feats, settings, title)
    rest = np.asarray(feats)[:, 1:]
    if rest.size:
        lo, hi = (float(v) for v in np.percentile(rest, [1, 99]))
        if hi - lo < _MIN_MFCC_SPAN:  # near-constant input (digital silence): do not blow rounding noise up
            mid = (hi + lo) / 2
            lo, hi = mid - _MIN_MFCC_SPAN / 2, mid + _MIN_MFCC_SPAN / 2
        fig.update_traces(zmin=lo, zmax=hi)
    return fig
