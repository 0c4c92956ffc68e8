"""Streamlit glue shared by the pages, one job per module:

- :mod:`kws.ui.state`: the visitor's model set, the models loaded once per server, the warm-up, cached tables;
- :mod:`kws.ui.layout`: fixed-width cards and rows of boxes that wrap;
- :mod:`kws.ui.cards`: Try it's answer cards, players and "what each model listened to";
- :mod:`kws.ui.noisy`: Try it's background-noise control;
- :mod:`kws.ui.spotting`: live spotting and the spotted words' result view;
- :mod:`kws.ui.compare`: the Compare page's tables, charts, robustness view and downloads;
- :mod:`kws.ui.sets`: the sidebar's set switch and the Retrain page's model sets.

Pages call these names from here (``ui.model_cards``); tests that replace one patch the module that defines it.
"""

from __future__ import annotations

from kws.ui.cards import clip_pictures, listened_view, model_card, model_cards, players, show_picture
from kws.ui.compare import (
    MISTAKES_PER_PAGE,
    comparison_columns,
    det_view,
    latencies,
    mistake_card,
    model_downloads,
    page_of,
    robustness_view,
    training_curves,
)
from kws.ui.layout import CARD_WIDTH, ONE_PER_ROW_PX, TWO_PER_ROW_PX, boxes, in_groups
from kws.ui.noisy import NOISE_SNRS, noise_control
from kws.ui.sets import SET_CHOICES, model_set_switch, model_sets, new_vs_current
from kws.ui.spotting import in_recording, live_spotting, live_status, spotted_line, spotted_view
from kws.ui.state import (
    SET_KEY,
    active_models_dir,
    analyse,
    cannot_load,
    dataset_items,
    dataset_stats,
    evaluation,
    example_clips,
    get_predictor,
    is_new_file,
    model_infos,
    model_table,
    predictor_problem,
    through_router,
    training_manager,
    warm_up,
)

__all__ = [
    "page_of",
    "mistake_card",
    "MISTAKES_PER_PAGE",
    "SET_KEY",
    "active_models_dir",
    "through_router",
    "get_predictor",
    "warm_up",
    "cannot_load",
    "predictor_problem",
    "analyse",
    "is_new_file",
    "training_manager",
    "model_table",
    "model_infos",
    "example_clips",
    "evaluation",
    "dataset_stats",
    "dataset_items",
    "CARD_WIDTH",
    "in_groups",
    "TWO_PER_ROW_PX",
    "ONE_PER_ROW_PX",
    "boxes",
    "model_cards",
    "model_card",
    "show_picture",
    "clip_pictures",
    "players",
    "listened_view",
    "NOISE_SNRS",
    "noise_control",
    "live_status",
    "live_spotting",
    "spotted_line",
    "in_recording",
    "spotted_view",
    "comparison_columns",
    "latencies",
    "training_curves",
    "det_view",
    "robustness_view",
    "model_downloads",
    "SET_CHOICES",
    "model_set_switch",
    "model_sets",
    "new_vs_current",
]
