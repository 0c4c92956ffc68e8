"""Try it's noise control: real background noise mixed into the shown clip, every model answering again."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from kws.ui import cards, state

#: The noise control's choices: off, then 30 dB (barely audible) down to -5 dB (noise louder than the word).
NOISE_SNRS: tuple[str | int, ...] = ("off", *range(30, -10, -5))


@st.cache_resource(show_spinner="Sorting the background noise…", max_entries=2)  # read-only
def _noise_bank(noise_dir: str, stamp: float) -> dict[str, list[Path]]:
    from kws import noise

    return noise.by_kind(noise.noise_clips(Path(noise_dir).parent))


def _noisy(result: dict, prediction, snr: int, kind: str, bank: dict[str, list[Path]]) -> dict:
    """The noisy clip's prediction and the line that says how it was made, for ``(snr, kind)`` on the shown
    view (the loudest second or a spotted word's): made once, then kept in ``result["noisy"]``."""
    import zlib
    from dataclasses import replace

    import numpy as np

    from kws import noise

    made = result.setdefault("noisy", {})
    cache_key = (snr, kind, prediction.window.start_s)
    if cache_key in made:
        return made[cache_key]
    # seeded by the kind and the clip: reruns and other SNRs keep the same noise, another clip draws afresh
    rng = np.random.default_rng(zlib.crc32(f"{kind}|{result['source']}".encode()))
    pool = [p for clips in bank.values() for p in clips] if kind == noise.RANDOM else bank[kind]
    clip, window = prediction.clip, prediction.window
    path = noise.choose(sorted(pool), rng)
    rate = clip.sample_rate
    span = (round(window.start_s * rate), round(window.end_s * rate))  # the clean clip's heard second
    try:
        mix = noise.mix_at_snr(clip.samples, noise.read_noise(path), snr, rng, span=span)
    except noise.NoiseError as err:
        made[cache_key] = {"prediction": None, "line": str(err)}
        return made[cache_key]
    noisy = replace(clip, samples=mix.samples, notices=())
    if prediction is result["prediction"]:
        answered = state.get_predictor().predict_clip(noisy)
    else:  # a spotted word's second: answer the same stretch of the noisy take
        answered = state.get_predictor().predict_span(noisy, window.start_s, window.end_s)
    named = next(k for k, clips in bank.items() if path in clips)
    line = (
        f"Noise: `{noise.NOISE_FOLDER}/{path.name}` ({named}) at **{snr} dB** SNR over the second the models hear"
        f" · all {len(answered.answers)} models again in {answered.elapsed_ms:.1f} ms"
    )
    if mix.scaled_down:
        line += f" · the mix went past full scale, so all of it was turned down {-20 * np.log10(mix.scale):.1f} dB"
    made[cache_key] = {"prediction": answered, "line": line}
    return made[cache_key]


def noise_control(result: dict, prediction, right: dict[str, bool] | None, key: str) -> tuple:
    """Try it's noise control: real background noise mixed into the shown clip at a chosen SNR
    (:mod:`kws.noise`), every model answering again; returns the prediction and grades the cards then show (the
    noisy ones while noise is on, else those given).

    Widgets are keyed ``{key}_snr`` and ``{key}_kind``. Without the dataset's noise folder the control is one
    line saying where noise would come from; a clip with no speech has nothing for noise to cover, and says so.
    """
    from kws import noise, pictures
    from kws.config import data_dir
    from kws.examples import graded

    st.markdown("**:material/noise_aware: Add background noise**")
    folder = noise.noise_folder(data_dir())
    bank = _noise_bank(str(folder), folder.stat().st_mtime) if folder.is_dir() else {}
    if not bank:
        st.caption(f"Background noise comes from the dataset's `{noise.NOISE_FOLDER}` folder, not found at {folder}.")
        return prediction, right
    if not prediction.window.has_speech:
        st.caption("No speech in this clip, so there is nothing for noise to cover.")
        return prediction, right
    left, middle = st.columns([3, 1])
    snr = left.select_slider(
        "Signal-to-noise ratio (speech over noise, in the second the models hear)",
        NOISE_SNRS,
        value="off",
        format_func=lambda v: v if isinstance(v, str) else f"{v} dB",
        key=f"{key}_snr",
    )
    kind = middle.selectbox("Noise", [noise.RANDOM, *bank], key=f"{key}_kind")
    if snr == "off":
        return prediction, right
    made = _noisy(result, prediction, int(snr), kind, bank)
    noisy = made["prediction"]
    if noisy is None:
        st.caption(made["line"])
        return prediction, right
    st.caption(made["line"])
    kept = sum(a.word == b.word for a, b in zip(noisy.answers, prediction.answers)) if not noisy.no_speech else 0
    st.markdown(
        f"With noise: **{noisy.summary}** · {kept} of {len(noisy.answers)} models keep their answer "
        f"(without noise: {prediction.summary}) · the cards below answer the noisy clip"
    )
    if noisy.no_speech:
        st.caption(noisy.no_speech_reason)
    wave, spectrum = st.columns(2)
    heard = (noisy.window.start_s, noisy.window.end_s)
    if "wave" not in made:  # drawn once per noisy clip, like its answer
        made["wave"] = pictures.waveform_picture(
            noisy.clip.samples, noisy.clip.sample_rate, heard, "Waveform with noise"
        )
        made["mfcc"] = pictures.mfcc_picture(noisy.features, noisy.feature_settings, "MFCC with noise")
    cards.show_picture(wave, made["wave"], pictures.waveform_caption(heard))
    cards.show_picture(spectrum, made["mfcc"])
    cards.players(noisy.clip, noisy.window)
    true_word = result.get("true_word")
    return noisy, (graded(noisy, true_word) if true_word else right)
