"""Which model set the app uses: the shipped ``models/`` or a retrained set under ``KWS_RUNS_DIR``.

The choice is one small JSON file (``<runs>/active.json``) replaced atomically, so switching sets is a
single step that a crash cannot leave half-done.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from kws import config

logger = logging.getLogger(__name__)

ACTIVE_FILE = "active.json"


def active_models_dir() -> Path:
    """The folder of the set in use: the retrained set named in ``active.json``, else the shipped models."""
    pointer = config.runs_dir() / ACTIVE_FILE
    try:
        name = json.loads(pointer.read_text()).get("set")
    except FileNotFoundError:
        return config.SHIPPED_MODELS_DIR
    except (OSError, ValueError, AttributeError) as err:
        logger.warning("ignoring unreadable %s: %s", pointer, err)
        return config.SHIPPED_MODELS_DIR
    if name and (config.runs_dir() / name).is_dir():
        return config.runs_dir() / name
    return config.SHIPPED_MODELS_DIR
