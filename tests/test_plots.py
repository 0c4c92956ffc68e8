"""plots: the colour ranges that make a figure honest (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from _audio_util import bench_script, word_like

from kws import pictures, plots
from kws.features import PRESETS, log_mel_from_mfcc, mfcc, shapes

#: The frame every page's figure shares: narrow margins, no legend.
MARGIN = {"l": 40, "r": 10, "t": 40, "b": 40}


def _layout(fig: go.Figure) -> dict:
    """The layout the figure sends, less its theme, which must be the default every ``go.Figure`` gets."""
    layout = fig.to_plotly_json()["layout"]
    assert layout.pop("template") == go.Figure().to_plotly_json()["layout"]["template"]
    return layout


def _z_range(fig) -> tuple[float, float]:
    trace = fig.data[0]
    return trace.zmin, trace.zmax


def test_mfcc_colours_spread_over_a_words_range_but_not_over_rounding_noise() -> None:
    settings = PRESETS["standard"]
    clip = np.zeros(settings.sample_rate, np.float32)
    clip[4000:12000] = word_like(0.5, seed=2)
    lo, hi = _z_range(plots.mfcc_heatmap_robust(mfcc(clip, settings), settings))
    word = mfcc(clip, settings)[:, 1:]
    assert (lo, hi) == tuple(np.percentile(word, [1, 99]))  # a word: its own 1st-99th percentile
    assert hi - lo > pictures.MIN_MFCC_SPAN

    silent = mfcc(np.zeros(settings.sample_rate, np.float32), settings)
    assert np.ptp(silent[:, 1:]) < 1e-3  # all but constant: only rounding differs
    lo, hi = _z_range(plots.mfcc_heatmap_robust(silent, settings))
    assert hi - lo == pictures.MIN_MFCC_SPAN  # one flat colour, not stripes of noise
    assert lo <= silent[:, 1:].min() and silent[:, 1:].max() <= hi


def test_scatter_names_move_out_of_each_others_way() -> None:
    assert plots.label_positions([0.5], [0.5], ["best"]) == ["top center"]  # alone: above its point
    # cnn2 and cnn2_dropout share a parameter count and differ by half a point: on top of each other.
    spots = plots.label_positions([0.9, 0.9, 0.88], [0.8, 0.7, 0.68], ["cnn2", "cnn2_dropout", "cnn1"])
    assert len(set(spots)) == 3
    assert plots.label_positions([0.99], [0.5], ["cnn2_dropout"])[0] not in {"middle right", "top right"}  # room


def test_scatter_names_stay_apart_on_the_plot_areas_chromium_draws() -> None:
    """The Compare page's scatter at the sizes Chromium draws it (812 x 255 px on a laptop, 470 x 255 at 1,024 px),
    for many sets of latencies around the shipped models' (the browser test meets one set, timed at load): no
    name covers another name or another point. Planning for 640 x 280 failed about one set in six."""
    rng = np.random.default_rng(0)
    names = ["perceptron", "cnn1", "cnn2", "cnn2_dropout", "lstm", "best"]
    accuracy = np.array([0.939, 0.947, 0.979, 0.977, 0.960, 0.973])
    latency = np.array([0.35, 0.45, 0.6, 0.6, 1.3, 0.6])
    gap = plots._MARKER_PX / 2 + 2
    ys, _ = plots._fractions(list(accuracy), False, pad=0.15)
    for _ in range(300):
        xs, _ = plots._fractions(list(latency * rng.uniform(0.5, 2.0, len(names))), False, pad=0.12)
        spots = plots.label_positions(xs, ys, names)
        for width, height in [(812, 255), (470, 255)]:
            points = [(x * width, y * height) for x, y in zip(xs, ys)]
            boxes = []
            for (px, py), name, spot in zip(points, names, spots):
                dx, dy = plots._LABEL_SPOTS[spot]
                w, h = plots._CHAR_PX * len(name), plots._TEXT_PX
                cx, cy = px + dx * (gap + w / 2), py + dy * (gap + h / 2)
                boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
            half = plots._MARKER_PX / 2
            markers = [(px - half, py - half, px + half, py + half) for px, py in points]
            for i, box in enumerate(boxes):
                others = [j for j in range(len(names)) if j != i]
                assert all(plots._overlap(box, boxes[j]) < 0.5 for j in others), (width, names[i], spots)
                assert all(plots._overlap(box, markers[j]) < 0.5 for j in others), (width, names[i], spots)


def test_scatter_axes_are_set_so_every_point_and_name_fit() -> None:
    rows = [
        {"model": "perceptron", "params": 663, "accuracy": 0.943},
        {"model": "cnn2", "params": 1_002_371, "accuracy": 0.994},
        {"model": "cnn2_dropout", "params": 1_002_371, "accuracy": 0.990},
    ]
    fig = plots.tradeoff_scatter(rows, x="params")
    low, high = fig.layout.xaxis.range
    assert fig.layout.xaxis.type == "log" and low < np.log10(663) and np.log10(1_002_371) < high
    low, high = fig.layout.yaxis.range
    assert low < 0.943 and 0.994 < high
    assert fig.layout.xaxis.title.text == "parameters (log scale)"
    assert fig.data[0].textposition[1] != fig.data[0].textposition[2]


def test_scatter_leaves_out_a_model_without_the_measure() -> None:
    rows = [
        {"model": "cnn1", "latency_ms": 1.1, "accuracy": 0.987},
        {"model": "lstm", "latency_ms": None, "accuracy": 0.979},
    ]
    assert list(plots.tradeoff_scatter(rows).data[0].text) == ["cnn1"]
    assert not plots.tradeoff_scatter(rows[1:]).data  # nothing to draw, and no error


def test_waveform_shades_the_heard_second_and_outlines_the_spotted_words() -> None:
    clip = np.zeros(3 * 16000, np.float32)
    clip[12000], clip[24000] = 0.8, -0.9
    fig = plots.waveform(clip, 16000, (0.75, 1.75), marks=[(0.9, 1.4, "bed"), (2.1, 2.6, "cat")])
    layout = _layout(fig)
    span = {"type": "rect", "xref": "x", "y0": 0, "y1": 1, "yref": "y domain"}
    word = {"line": {"color": "#54A24B", "width": 1.5, "dash": "dot"}}
    assert layout.pop("shapes") == [
        span | {"x0": 0.75, "x1": 1.75, "fillcolor": "#F58518", "opacity": 0.18, "line": {"width": 0}},
        span | {"x0": 0.9, "x1": 1.4} | word,
        span | {"x0": 2.1, "x1": 2.6} | word,
    ]
    label = {"showarrow": False, "xanchor": "left", "xref": "x", "yref": "y domain"}
    green = {"font": {"color": "#54A24B"}}
    assert layout.pop("annotations") == [
        label | {"x": 0.75, "y": 1, "yanchor": "top", "text": "heard by the models"},
        label | {"x": 0.9, "y": 0, "yanchor": "bottom", "text": "bed"} | green,
        label | {"x": 2.1, "y": 0, "yanchor": "bottom", "text": "cat"} | green,
    ]
    assert layout == {
        "title": {"text": "Waveform"},
        "height": 260,
        "margin": MARGIN,
        "showlegend": False,
        "xaxis": {"title": {"text": "time (s)"}},
        "yaxis": {"title": {"text": "amplitude"}, "range": [-1.05, 1.05]},  # a loud clip: the full scale
    }
    (trace,) = fig.data
    assert (trace.type, trace.mode, trace.name, trace.line.width, trace.line.color) == (
        "scatter",
        "lines",
        "audio",
        1,
        "#4C78A8",
    )
    assert len(trace.x) == len(trace.y) == 2 * 300  # each of 300 blocks' highest and lowest sample, 160 apart
    np.testing.assert_array_equal(trace.x[:4], np.array([0, 0, 160, 160]) / 16000)
    assert list(trace.y[150:152]) == [np.float32(0.8), 0]  # sample 12,000 in block 75: its high, then its low
    assert trace.y.max() == np.float32(0.8) and trace.y.min() == np.float32(-0.9)  # no peak is lost
    short = plots.waveform(clip[:500], 16000).data[0]
    assert len(short.y) == 500 and short.x[1] == 1 / 16000  # a short clip: every sample

    quiet = _layout(plots.waveform(clip / 4, 16000))
    assert quiet["yaxis"] == {"title": {"text": "amplitude"}} and "shapes" not in quiet  # Plotly's own range


def test_heatmaps_draw_time_across_rows_up_and_value_as_colour() -> None:
    settings = PRESETS["standard"]
    clip = np.zeros(settings.sample_rate, np.float32)
    clip[4000:12000] = word_like(0.5, seed=2)
    feats = mfcc(clip, settings)
    viridis = go.Heatmap(colorscale="Viridis").colorscale
    figures = [
        (plots.mfcc_heatmap_robust(feats, settings), feats, "coefficient", "MFCC coefficient", "value"),
        (plots.mfcc_heatmap(feats, settings, "t"), feats, "coefficient", "MFCC coefficient", "value"),
        (plots.log_mel_heatmap(feats, settings), log_mel_from_mfcc(feats, settings), "mel band", "mel band", "dB"),
    ]
    titles = ["MFCC spectrogram", "t", "Log-mel picture: what the CNNs see"]
    for (fig, z, row, axis, unit), title in zip(figures, titles):
        (trace,) = fig.data
        np.testing.assert_array_equal(trace.z, z.T)
        np.testing.assert_array_equal(trace.x, shapes(settings).frame_times(settings))
        np.testing.assert_array_equal(trace.y, np.arange(z.shape[1]))
        assert trace.colorscale == viridis and trace.colorbar.title.text == unit
        assert trace.hovertemplate == f"t=%{{x:.2f}}s<br>{row} %{{y}}<br>%{{z:.1f}}<extra></extra>"
        assert _layout(fig) == {
            "title": {"text": title},
            "height": 300,
            "margin": MARGIN,
            "showlegend": False,
            "xaxis": {"title": {"text": "time (s)"}},
            "yaxis": {"title": {"text": axis}},
        }
    assert figures[0][0].data[0].zmin is not None  # the robust picture's own colour range
    assert figures[1][0].data[0].zmin is None and figures[2][0].data[0].zmin is None  # Plotly's: the values'


def test_confusion_colours_each_row_by_share_and_writes_the_counts() -> None:
    fig = plots.confusion_heatmap([[8, 2, 0], [0, 0, 0], [1, 1, 2]], title="cnn1", zmax=0.5)
    (trace,) = fig.data
    np.testing.assert_array_equal(trace.z, [[0.8, 0.2, 0], [0, 0, 0], [0.25, 0.25, 0.5]])  # an empty row: no share
    np.testing.assert_array_equal(trace.text, [[8, 2, 0], [0, 0, 0], [1, 1, 2]])
    assert trace.x == trace.y == ("bed", "happy", "cat")
    assert (trace.zmin, trace.zmax, trace.showscale, trace.texttemplate) == (0, 0.5, False, "%{text}")
    assert trace.colorscale == go.Heatmap(colorscale="Blues").colorscale
    assert trace.hovertemplate == "true %{y}, predicted %{x}: %{text} clips<extra></extra>"
    assert _layout(fig) == {
        "title": {"text": "cnn1"},
        "height": 280,
        "margin": MARGIN,
        "showlegend": False,
        "xaxis": {"title": {"text": "predicted"}, "side": "bottom"},
        "yaxis": {"title": {"text": "true"}, "autorange": "reversed"},
    }
    assert plots.confusion_heatmap([[1]], ["bed"]).data[0].zmax == 1


def test_training_curves_draw_each_model_in_its_colour_with_the_legend_below() -> None:
    histories = {"cnn1": {"accuracy": [0.5, 0.9], "val_accuracy": [0.6, 0.8]}, "lstm": {"accuracy": [0.7]}}
    fig = plots.training_curves(histories)
    assert fig.to_plotly_json()["data"] == [
        {
            "type": "scatter",
            "x": [1, 2],
            "y": [0.5, 0.9],
            "mode": "lines+markers",
            "name": "cnn1 (train)",
            "line": {"color": "#4C78A8", "dash": "solid"},
        },
        {
            "type": "scatter",
            "x": [1, 2],
            "y": [0.6, 0.8],
            "mode": "lines+markers",
            "name": "cnn1 (validation)",
            "line": {"color": "#4C78A8", "dash": "dash"},
        },
        {
            "type": "scatter",
            "x": [1],
            "y": [0.7],
            "mode": "lines+markers",
            "name": "lstm (train)",
            "line": {"color": "#F58518", "dash": "solid"},
        },
    ]
    assert _layout(fig) == {
        "title": {"text": "Training accuracy"},
        "height": 380,
        "margin": MARGIN,
        "showlegend": True,
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.25, "yanchor": "top"},
        "xaxis": {"title": {"text": "epoch"}},
        "yaxis": {"title": {"text": "accuracy"}},
    }
    assert plots.training_curves({}, "loss", "Loss").layout.title.text == "Loss"


def test_scatter_and_histogram_keep_the_shared_frame() -> None:
    rows = [
        {"model": "cnn1", "latency_ms": 1.0, "accuracy": 0.98},
        {"model": "lstm", "latency_ms": 3.0, "accuracy": 0.97},
    ]
    layout = _layout(plots.tradeoff_scatter(rows, title="speed"))
    assert layout.pop("xaxis")["title"] == {"text": "median latency per clip (ms)"}
    assert layout.pop("yaxis")["tickformat"] == ".1%"
    frame = {"title": {"text": "speed"}, "height": 360, "margin": MARGIN, "showlegend": False}
    assert layout == frame
    assert _layout(plots.tradeoff_scatter([], title="speed")) == frame
    (points,) = plots.tradeoff_scatter(rows).data
    assert (points.mode, points.marker.size, points.marker.color, points.cliponaxis) == (
        "markers+text",
        plots._MARKER_PX,
        "#4C78A8",
        False,
    )

    fig = plots.histogram([0.5, 1.0, 1.0], "Clip durations", "seconds", bins=5)
    assert fig.to_plotly_json()["data"] == [
        {"type": "histogram", "x": [0.5, 1.0, 1.0], "nbinsx": 5, "marker": {"color": "#4C78A8"}}
    ]
    assert _layout(fig) == {
        "title": {"text": "Clip durations"},
        "height": 280,
        "margin": MARGIN,
        "showlegend": False,
        "xaxis": {"title": {"text": "seconds"}},
        "yaxis": {"title": {"text": "clips"}},
    }


def test_the_figure_bench_builds_every_figure_it_times() -> None:
    """bench/figures.py's inputs stay valid for the builders it times (the timing itself is not tested)."""
    assert all(isinstance(build(), go.Figure) for build in bench_script("figures").builders().values())


def test_occlusion_maps_share_the_scale_they_are_given_and_show_the_picture_beneath() -> None:
    settings = PRESETS["standard"]
    feats = np.random.default_rng(0).standard_normal((49, 40)).astype(np.float32)
    fig = plots.occlusion_heatmap(np.zeros((49, 40)), feats, settings, "cnn1: cat", (-0.3, 0.3))
    picture, drop = fig.data
    assert (drop.zmin, drop.zmax) == (-0.3, 0.3) and fig.layout.title.text == "cnn1: cat"
    assert np.asarray(picture.z).shape == (40, 49)  # mel bands up, time across


@pytest.mark.parametrize("count", [1, 5, 8])
def test_feature_maps_draw_one_small_image_per_channel(count: int) -> None:
    maps = np.random.default_rng(0).random((49, 40, 16)).astype(np.float32)
    fig = plots.feature_maps(maps, list(range(count)), PRESETS["standard"], "first convolution")
    assert len(fig.data) == count
    assert [a.text for a in fig.layout.annotations] == [f"channel {c}" for c in range(count)]


def test_pictures_are_pngs_of_the_features_in_viridis_with_row_zero_at_the_bottom() -> None:
    from io import BytesIO

    from PIL import Image

    settings = PRESETS["standard"]
    feats = np.zeros((shapes(settings).n_frames, shapes(settings).n_coeffs), np.float32)
    feats[:, 0] = 1.0  # coefficient 0 at the top of the range, every other at the bottom
    image = Image.open(BytesIO(pictures.picture(feats, shapes(settings).frame_times(settings), "t", "row", "v")))
    assert image.format == "PNG" and image.size == (pictures.WIDTH, pictures.HEIGHT)
    x = (pictures._LEFT + pictures.WIDTH - pictures._RIGHT) // 2
    bottom, top = pictures.HEIGHT - pictures._BOTTOM - 2, pictures._TOP + 2
    assert image.getpixel((x, bottom)) == (253, 231, 37)  # Viridis' last stop: the highest value, row 0
    assert image.getpixel((x, top)) == (68, 1, 84)  # its first: the lowest

    lo, hi = pictures.mfcc_range(feats)
    assert hi - lo == pictures.MIN_MFCC_SPAN  # flat input: one colour, not stripes of rounding noise
    assert Image.open(BytesIO(pictures.log_mel_picture(feats, settings))).size == image.size


def test_ticks_fall_on_round_numbers() -> None:
    assert [pictures.nice_step(span, 6) for span in (1.0, 39, 3.0, 0.0)] == [0.2, 10, 0.5, 1.0]
    assert pictures._ticks(-0.01, 0.99, 6) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])


def test_the_waveform_picture_shades_the_heard_second_and_outlines_spotted_words() -> None:
    from io import BytesIO

    from PIL import Image

    rate, clip = 16000, np.zeros(48000, np.float32)
    clip[19200:20800] = 0.9 * np.sin(np.arange(1600) / 3)  # a loud burst at 1.2-1.3 s
    png = pictures.waveform_picture(clip, rate, (0.75, 1.75), marks=[(2.1, 2.6, "cat")])
    image = Image.open(BytesIO(png)).convert("RGB")
    assert png.startswith(b"\x89PNG") and image.size == (pictures.WIDTH, pictures.HEIGHT)
    x0, x1 = pictures._LEFT, pictures.WIDTH - pictures._BAR_GAP
    y0, y1 = pictures._TOP, pictures.HEIGHT - pictures._BOTTOM

    def at(t: float, share: float) -> tuple[int, int, int]:  # share: 0 at the top of the plot, 1 at its bottom
        return image.getpixel((round(x0 + t / 3.0 * (x1 - x0)), round(y0 + share * (y1 - y0))))

    assert at(1.25, 0.1) == pictures._WAVE  # the burst reaches +-0.9 of a +-1.05 scale
    assert at(0.3, 0.1) == (255, 255, 255) and at(0.3, 0.5) == pictures._WAVE  # silence: a flat line at zero
    shaded = at(1.6, 0.1)
    assert shaded != (255, 255, 255) and shaded[0] > shaded[2]  # the heard second, an orange wash
    assert at(2.1, 0.52) == pictures._MARK or at(2.1, 0.53) == pictures._MARK  # the dotted outline of "cat"
    assert pictures.waveform_caption((0.75, 1.75), [(2.1, 2.6, "cat")]) == (
        "Shaded: the second the models heard, 0.75–1.75 s · cat 2.10–2.60 s"
    )

    quiet = Image.open(BytesIO(pictures.waveform_picture(clip / 100, rate))).convert("RGB")  # its own peak
    assert quiet.getpixel((round(x0 + 1.25 / 3.0 * (x1 - x0)), round(y0 + 0.1 * (y1 - y0)))) == pictures._WAVE
    for odd in (np.zeros(0, np.float32), clip[:100]):  # empty, shorter than the picture is wide
        assert Image.open(BytesIO(pictures.waveform_picture(odd, rate))).size == (pictures.WIDTH, pictures.HEIGHT)
