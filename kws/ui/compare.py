"""The Compare page's views: table formats, latencies, training curves, the DET chart, robustness to noise
and the model downloads; the robustness result is stored and measured in the background."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from kws import store
from kws.ui import state


def comparison_columns(rows: list[dict]) -> dict:
    """Titles and number formats in ``st.dataframe`` for rows keyed like :func:`kws.insights.comparison_rows`
    (the Compare table, and :func:`kws.modelsets.compare_rows` on the Retrain page)."""
    from kws.insights import column_help, column_title

    keys = list(rows[0]) if rows else []
    formats = {"params": "localized", "latency_ms": "%.1f", "train_s": "%.0f"}
    rates = ("accuracy", "keyword_accuracy", "false_accept_rate", "false_reject_rate")
    formats |= {k: "percent" for k in keys if k in rates or k.startswith("acc_")}
    config: dict = {}
    for k in keys:
        label, tip = column_title(k), column_help(k)
        if k == "model":
            config[k] = st.column_config.TextColumn(label, pinned=True)
        elif k in formats:
            config[k] = st.column_config.NumberColumn(label, help=tip, format=formats[k])
        else:
            config[k] = st.column_config.Column(label, help=tip)
    return config


def latencies() -> tuple[dict[str, float], str]:
    """Median latency per clip of each active model, and what it was measured on: the predictor's own timing,
    made as it loaded (:attr:`kws.inference.Predictor.latency_ms`), so Compare times nothing again on its first
    visit."""
    return state.get_predictor().latency_ms, (
        "a synthetic one-second clip as the models loaded (15 calls each; the cost does not depend on what is said)"
    )


def training_curves(histories: dict, key: str) -> None:
    """Accuracy and loss per epoch side by side, training solid and validation dashed, one colour per model: the
    same pair, in the same order, on the Compare page (saved curves) and the Retrain page (live ones)."""
    from kws.plots import training_curves as chart

    left, right = st.columns(2)
    left.plotly_chart(chart(histories, "accuracy"), key=f"{key}_accuracy")
    right.plotly_chart(chart(histories, "loss"), key=f"{key}_loss")


def det_view(key: str) -> None:
    """Every model's DET curve on the test split on one chart, the app's operating point marked on each; a
    caption instead where there is no dataset or the models cannot load (the page's last part says why)."""
    from kws import plots
    from kws.config import LOW_CONFIDENCE
    from kws.dataset import DatasetMissingError

    try:
        result = state.evaluation("test")
    except (DatasetMissingError, store.ModelStoreError):
        st.caption("The curves need the test split and loadable models: see below.")
        return
    if not any(s.other_clips and s.keyword_clips for s in result.open.values()):
        st.info("The test split holds no clips of other words or noise, so there are no false accepts to count.")
        return
    curves = {name: result.det(name) for name in result.predictions}
    st.plotly_chart(plots.det_chart(curves, LOW_CONFIDENCE), key=key)
    first = next(iter(result.open.values()))
    st.caption(
        f"Each line moves the confidence a keyword answer needs from 0 to 100%: {first.other_clips:,} test clips "
        f"of other words and noise give the false accepts, {first.keyword_clips:,} keyword clips the false "
        f"rejects (answered other, or not sure). Dots: the app's operating point, {LOW_CONFIDENCE:.0%}. Lower "
        "left is better; a three-label model cannot answer other, so it starts at 100% false accepts."
    )


def _robustness_chart(result: dict, key: str) -> None:
    from kws import plots

    st.plotly_chart(plots.robustness_lines(result["snrs"], result["accuracy"]), key=f"{key}_chart")
    accepts = {name: row for name, row in result.get("false_accepts", {}).items() if any(v is not None for v in row)}
    if accepts:  # a test split without other words has no false accepts to draw
        title, y_title = "False accepts against background noise", "other clips named as a keyword"
        st.plotly_chart(plots.robustness_lines(result["snrs"], accepts, title, y_title), key=f"{key}_accepts")
    others = f" and {result['other_clips']} of other words and noise" if result.get("other_clips") else ""
    st.caption(
        f"{result['clips']} keyword test clips{others}, each mixed with one of {result['noise_clips']} clips of the dataset's "
        f"`_background_noise_` folder (drawn with seed {result['seed']}; same clip and offset at every level), the "
        "SNR measured over the second the models hear. 0 dB: the noise is as loud as the word."
    )


@st.cache_data(show_spinner=False, max_entries=8)
def _robustness_target(
    models_dir: str, stamp: float, data_dir: str, data_stamp: float, noise_stamp: float
) -> tuple[str, float]:
    """Where the active set's robustness result is stored, and about how long measuring it takes: both read the
    dataset's test split, the noise folder's 408 clips and the set's JSONs (~0.2 s), so once per state of them,
    not on every rerun of Compare or every poll of the progress."""
    from kws import robustness

    items = robustness.test_items(data_dir)  # one scan of the dataset for both
    path = robustness.result_path(models_dir, data_dir, items=items)
    return str(path), robustness.estimate_seconds(models_dir, data_dir, items=items)


def _robustness_key() -> tuple[Path, float]:
    from kws.config import data_dir
    from kws.noise import noise_folder

    models_dir, data = state.active_models_dir(), data_dir()
    noise = noise_folder(data)
    path, seconds = _robustness_target(
        str(models_dir),
        state._dir_stamp(models_dir),
        str(data),
        state._data_stamp(data),
        noise.stat().st_mtime if noise.is_dir() else 0.0,
    )
    return Path(path), seconds


def robustness_view(key: str) -> None:
    """The stored robustness chart of the active set at once; else a button that measures it in a background
    thread (:func:`kws.robustness.start`) and a fragment that shows its progress, then the chart."""
    from kws import robustness
    from kws.config import data_dir
    from kws.dataset import DatasetMissingError, missing_message

    data = data_dir()
    try:
        path, seconds = _robustness_key()
    except DatasetMissingError as err:
        st.info(missing_message(data) if not (data / "bed").is_dir() else str(err))
        return
    result = robustness.read(path)
    if result is not None:
        _robustness_chart(result, key)
        return
    if robustness.job(path) is None:
        if not st.button(f"Measure (about {seconds:.0f} s)", key=f"{key}_measure"):
            st.caption("Every model on every test clip, clean and with noise at 30 dB down to -5 dB SNR.")
            return
        robustness.start(state.active_models_dir(), data)
    _robustness_progress(key)


@st.fragment(run_every=1.0)
def _robustness_progress(key: str) -> None:
    """Reruns every second (the page around it does not) until the job has a result or an error."""
    from kws import robustness

    path, _ = _robustness_key()
    job = robustness.job(path)
    if job is None:
        return
    if job.error is not None:
        st.warning(f"Measuring failed: {job.error}")
    elif robustness.read(path) is not None:
        st.rerun()  # the whole page, which now draws the stored result: this fragment stops polling
    elif job.result is not None:  # done, but it could not be stored
        _robustness_chart(job.result, key)
    else:
        st.progress(job.fraction, text=f"Mixing noise into the test clips… {job.fraction:.0%}")


def model_downloads(infos: list[store.ModelInfo], key: str) -> None:
    """Download buttons for one chosen model's files and for the whole set as a zip; the bytes are read only when
    a button is pressed, and pressing one does not rerun the page."""
    name = st.selectbox("Model", [i.name for i in infos], key=f"{key}_model")
    info = next(i for i in infos if i.name == name)
    files = store.model_files(info)
    with st.container(horizontal=True):
        for kind, path in files.items():
            size = path.stat().st_size / 1024
            st.download_button(
                f"{kind} ({size:,.0f} KB)",
                data=lambda path=path: path.read_bytes(),
                file_name=path.name,
                mime="application/octet-stream",
                on_click="ignore",
                key=f"{key}_{name}_{kind}",
            )
        st.download_button(
            f"Whole set, {len(infos)} models (.zip)",
            data=lambda: store.set_archive(infos),
            file_name="keyword-studio-models.zip",
            mime="application/zip",
            on_click="ignore",
            type="primary",
            key=f"{key}_set",
        )


#: Wrong clips shown per page of Compare's mistakes view.
MISTAKES_PER_PAGE = 5


def page_of(items: list, key: str, per_page: int = MISTAKES_PER_PAGE) -> list:
    """The part of ``items`` that a page-number box keyed ``key`` chooses (no box for a single page); a number
    past the last page (another model may have fewer mistakes) starts again at 1."""
    pages = (len(items) + per_page - 1) // per_page
    if st.session_state.get(key, 1) > pages:
        st.session_state[key] = 1
    page = st.number_input(f"Page (of {pages})", 1, pages, key=key) if pages > 1 else 1
    return items[(page - 1) * per_page : page * per_page]


def mistake_card(mistake, model: str, settings) -> None:
    """One test clip ``model`` gets wrong: its name, true word and what the model said, a player, what every
    model said, and the MFCC picture the model heard."""
    from kws import insights, pictures
    from kws.ui import cards

    with st.container(border=True):
        left, right = st.columns([2, 3])
        said = mistake.predicted
        left.markdown(
            f"`{mistake.name}` · true word **{mistake.true_word}**, {model} said **{said.word}** ({said.confidence:.0%})"
        )
        left.audio(Path(mistake.path).read_bytes(), format="audio/wav")
        percent = st.column_config.NumberColumn(format="percent")
        left.dataframe(insights.answers_table(mistake), hide_index=True, column_config={"confidence": percent})
        view = insights.clip_view(mistake.path, settings)
        cards.show_picture(right, pictures.mfcc_picture(view.features, settings, title=f"What {model} heard"))
