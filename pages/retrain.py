"""Retrain: pick models and settings, train in the background, compare with the set in use, switch sets."""

from __future__ import annotations

import streamlit as st

from kws import config, forms, modelsets, ui
from kws.dataset import DatasetMissingError
from kws.estimate import estimate, split_counts
from kws.jobs import Busy
from kws.options import LIMIT_ENV, make_config, train_limit

ui.through_router()  # first: a page URL opened on a fresh server goes through app.py

st.title("Retrain the models")
if not config.retrain_enabled():
    st.info("Retraining is turned off on this server (`KWS_DISABLE_RETRAIN=1`); the app keeps its current models.")
    st.stop()

manager = ui.training_manager()
for key, value in {"retrain_job": None, "retrain_note": None}.items():
    if key not in st.session_state:
        st.session_state[key] = value


@st.fragment(run_every=1.0)
def live() -> None:
    """Polls the background job once a second; a full rerun shows the results once it ends."""
    job = manager.current()
    if job is None or not job.running:
        st.rerun()
    st.progress(job.fraction, text=job.status_text)
    st.caption(job.summary)
    if job.id == st.session_state.retrain_job and st.button("Cancel training", disabled=job.state == "cancelling"):
        manager.cancel(job.id)
    ui.training_curves(job.histories, key="retrain_curves")


job = manager.current()
limit = train_limit()
try:
    counts = split_counts(config.data_dir(), limit)
except DatasetMissingError as err:
    counts = None
    st.warning(str(err))

if job is not None and not job.running and job.id == st.session_state.retrain_job:
    if job.state == "done" and not modelsets.exists(job.id):
        st.info(f"The set this run made, `{job.id}`, has been deleted.")
    elif job.state == "done":
        st.subheader("New models vs the ones in use")
        st.success(f"{job.status_text}: new set `{job.id}`.")
        ui.new_vs_current(job.id)
        ui.training_curves(job.histories, key="retrain_curves")
        if modelsets.active_set() == job.id:
            st.info("The app uses these models.")
        elif st.button("Use these models", type="primary", key="retrain_use"):
            modelsets.adopt(job.id)
            st.session_state.retrain_note = f"The app now uses `{job.id}`."
            st.rerun()
    elif job.state == "cancelled":
        st.info("Training was cancelled: nothing was saved, and the app still uses the same models.")
    else:
        st.error(job.status_text)

if job is not None and job.running:
    live()
elif counts is not None:
    st.subheader("Train a new set")
    st.caption(
        "Runs in the background; the shipped models are never overwritten. Clips per split: "
        + ", ".join(f"{split} {n:,}" for split, n in counts.items())
        + (f" (limited by {LIMIT_ENV}={limit})" if limit else "")
    )
    chosen = forms.widgets("models")
    for column, name in zip(st.columns(4), ("preset", "epochs", "batch_size", "learning_rate")):
        with column:
            chosen |= forms.widgets(name)
    chosen |= forms.widgets("augment", "other")
    with st.expander("Networks, what to learn from, centring, and the seed"):
        chosen |= forms.widgets("zoo", "fit_on", "centre", "seed")
    owner = st.text_input("Your name (shown to others while you train)", key="retrain_owner")
    cfg = None
    try:
        cfg = make_config(**chosen) if chosen["models"] else None
    except ValueError as err:  # e.g. the lecture's networks have no best
        st.warning(f"Cannot train this choice: {err}.")
    if cfg is not None:
        read = counts if cfg.other else split_counts(config.data_dir(), limit, other=False)  # keywords only
        st.caption(estimate(cfg, read).describe())
    if st.button("Start training", type="primary", disabled=cfg is None, key="retrain_start"):
        try:
            st.session_state.retrain_job = manager.start(cfg, owner=owner).id
            st.rerun()
        except (Busy, DatasetMissingError) as err:
            st.warning(str(err))

ui.model_sets(key="retrain")
