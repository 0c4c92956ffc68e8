"""Try it's answer: every model's card, the players, and what each model listened to."""

from __future__ import annotations

import streamlit as st

from kws.ui import layout, state


def model_cards(prediction, right: dict[str, bool] | None, key: str) -> None:
    """Every model's card for ``prediction`` (marked right or wrong where the true word is known)."""
    layout.in_groups(
        prediction.answers,
        lambda a: model_card(a, prediction.no_speech, None if right is None else right[a.name]),
        key=key,
    )


def model_card(answer, no_speech: bool, correct: bool | None = None) -> None:
    """One model's answer: word, confidence, probabilities on the shared 0-1 scale, architecture, latency, size.

    With no speech detected the word and bars are withheld: a model always picks some label, which would
    read as a claim that a word was heard. The probabilities are progress bars, not a chart: six charts per answer
    would be most of what a browser draws for it, which a classroom answering at once on one machine waits for.
    """
    # Material icons come with Streamlit's own font: they render even where the system has no emoji font
    mark = "" if correct is None else (" :green[:material/check_circle:]" if correct else " :red[:material/cancel:]")
    st.markdown(f"**{answer.name}**{mark}")
    if no_speech:
        st.metric("predicted", "—", help="No word is named: see why above the cards.")
    else:
        flag = "low confidence" if answer.low_confidence else None
        st.metric("predicted", answer.word, delta=flag, delta_color="orange", delta_arrow="off")
        st.markdown(f"confidence **{answer.confidence:.0%}**")
        with st.container(key=f"ui_bars_{answer.name}", gap="small"):
            for label, p in answer.probabilities.items():
                st.progress(min(max(p, 0.0), 1.0), text=f"{label} {p:.0%}")
    # the architecture last: "CNN, two convolutions + dropout" takes two lines, and above the word it put that
    # card's word a line lower than its neighbours'
    st.caption(f"{answer.architecture}  \n{answer.latency_ms:.1f} ms · {answer.params:,} parameters")


def players(clip, window) -> None:
    """The recording and, where it is longer than what the models hear, that window alone.

    In a take of several seconds, hearing which second was picked explains an answer that the whole take
    does not (a cough chosen over the word, say).
    """
    from kws.audio import to_wav_bytes

    whole = to_wav_bytes(clip.samples)
    if clip.duration <= window.end_s - window.start_s + 0.05:
        st.audio(whole, format="audio/wav")
        return
    left, right = st.columns(2)
    left.caption(f"The whole recording ({clip.duration:.1f} s)")
    left.audio(whole, format="audio/wav")
    right.caption(f"What the models hear: {window.start_s:.2f}–{window.end_s:.2f} s")
    right.audio(to_wav_bytes(window.samples), format="audio/wav")


def listened_view(prediction, key: str) -> None:
    """The "What each model listened to" view, behind a switch: every model's occlusion map on one colour scale
    (:func:`kws.explain.occlusion_maps`), then the first convolution's feature maps of a chosen CNN.

    The maps cost ~70 ms of both cores per clip (``bench/occlusion.py``), so they are made only once the switch is on, and kept for the
    prediction they explain (``st.session_state[f"{key}_maps"]``): reruns for other widgets, ten users' worth,
    cost nothing, and a new clip or a spotted word's second gets its own.
    """
    from kws import explain, plots

    if not st.toggle(
        "What each model listened to",
        key=key,
        help="Silences each patch of the clip's picture in turn and shows how much each model's answer drops.",
    ):
        return
    predictor = state.get_predictor()
    names = [a.name for a in prediction.answers]
    if names != predictor.names:
        st.info("The models changed since this answer: give the clip again to see what they listened to.")
        return
    cached = st.session_state.get(f"{key}_maps")
    if cached is None or cached[0] is not prediction:  # the prediction itself, not its id: ids are reused
        with st.spinner("Silencing the clip patch by patch…"):
            cached = (prediction, explain.occlusion_maps(predictor, prediction))
        st.session_state[f"{key}_maps"] = cached
    maps = cached[1]
    z_range = explain.shared_range(maps)
    st.caption(
        f"Red: where silencing a patch ({explain.PATCH_SECONDS:.1f} s by {explain.PATCH_BANDS} mel bands) lowered "
        "the probability of the word that model named, and by how much; blue: where it raised it; one colour scale "
        "for every model. Each map is the second the models heard (shaded on the waveform), so nothing more is "
        "marked; the perceptron hears it centred on its loudness."
    )
    words = dict(zip(names, (a.word for a in prediction.answers)))
    for start in range(0, len(predictor.models), 3):
        for column, model in zip(st.columns(3), predictor.models[start : start + 3]):
            feats = explain.heard(predictor, prediction, model.settings)
            title = f"{model.name}: {words[model.name]}"
            column.plotly_chart(plots.occlusion_heatmap(maps[model.name], feats, model.settings, title, z_range))
    _first_convolution(predictor, prediction, key)


@st.cache_resource(show_spinner=False, max_entries=4)
def _convolution_runners(models_dir: str, stamp: float) -> dict:
    """The CNNs' debugging interpreters (:func:`kws.explain.convolution_runners`), made once per model set."""
    from kws import explain

    return explain.convolution_runners(state._predictor(models_dir, stamp).models)


def _first_convolution(predictor, prediction, key: str) -> None:
    """The strongest channels of a chosen CNN's first convolution on this clip, read from its ``.tflite`` file."""
    from kws import explain, plots

    models_dir = state.active_models_dir()
    runners = _convolution_runners(str(models_dir), state._dir_stamp(models_dir))
    if not runners:
        return
    name = st.selectbox("First convolution of", list(runners), key=f"{key}_conv", help="Its 8 busiest channels")
    model = next(m for m in predictor.models if m.name == name)
    maps = runners[name].first_convolution(explain.heard(predictor, prediction, model.settings)[None])
    channels = explain.strongest_channels(maps)
    title = f"{name}: first convolution, its {len(channels)} busiest of {maps.shape[-1]} channels"
    st.plotly_chart(plots.feature_maps(maps, channels, model.settings, title))


def show_picture(container, png: bytes, caption: str | None = None) -> None:
    """A :mod:`kws.pictures` PNG in ``container``, sent as it is: ``st.image`` would otherwise decode an RGB
    PNG and encode it again as JPEG, on every rerun, for a bigger file."""
    container.image(png, caption=caption, width="stretch", output_format="PNG")


def clip_pictures(result: dict, prediction, marks: list) -> dict[str, bytes]:
    """The shown clip's waveform (the heard second shaded, ``marks`` outlined), MFCC and log-mel pictures, made
    once per shown view and kept in ``result["pictures"]``: a rerun for another widget draws them again for
    nothing (three PNGs are most of an answer's server time)."""
    from kws import pictures

    window = (prediction.window.start_s, prediction.window.end_s)
    made = result.setdefault("pictures", {})
    key = (window, tuple(marks))
    if key not in made:
        clip, feats, settings = prediction.clip, prediction.features, prediction.feature_settings
        made[key] = {
            "wave": pictures.waveform_picture(clip.samples, clip.sample_rate, window, marks=marks),
            "caption": pictures.waveform_caption(window, marks),
            "mfcc": pictures.mfcc_picture(feats, settings),
            "mel": pictures.log_mel_picture(feats, settings),
        }
    return made[key]
