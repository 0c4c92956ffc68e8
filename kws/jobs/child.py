"""The training child process: ``python -m kws.jobs.child REQUEST``, started by :mod:`kws.jobs.manager`.

``REQUEST`` is JSON: ``{"cfg": TrainConfig fields, "out_dir": ..., "data_dir": ...}``. The child trains with
:func:`kws.train.train` (the only place TensorFlow loads) and reports JSON lines on stdout, one per event:
``stage`` (reading, features), ``epoch``, ``model_done``, and a last ``end`` with the outcome (``done``,
``cancelled`` or ``failed`` with an ``error``). A line ``cancel`` on stdin, or its end (the server went away),
stops the run within a batch or two; nothing is then written.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from kws.options import Cancelled, Progress, make_config

if TYPE_CHECKING:
    from kws.options import EpochReport

logger = logging.getLogger(__name__)


def run(request: dict[str, Any]) -> None:
    """Train ``request``, reporting events on stdout, until done, failed, or cancelled from stdin."""
    from kws.train import train  # TensorFlow loads here

    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries go to the log, never into the event stream
    emit_lock = threading.Lock()
    cancel = threading.Event()

    def emit(**event: Any) -> None:
        with emit_lock:
            events.write(json.dumps(event) + "\n")

    def listen() -> None:  # runs in a thread of the child: waits for "cancel" or the end of stdin
        for line in sys.stdin:
            if line.strip() == "cancel":
                break
        cancel.set()

    def on_stage(stage: str, done: int, total: int) -> None:  # featurization; stops early when cancelled
        if cancel.is_set():
            raise Cancelled("training was cancelled")
        emit(event="stage", stage=stage, done=done, total=total)

    def on_epoch(report: EpochReport) -> None:
        emit(event="epoch", model=report.model, model_index=report.model_index, epoch=report.epoch, logs=report.logs)

    threading.Thread(target=listen, daemon=True, name="cancel-listener").start()
    progress = Progress(
        on_stage=on_stage, on_epoch=on_epoch, on_model_done=lambda name, meta: emit(event="model_done", name=name)
    )
    try:
        train(make_config(**request["cfg"]), request["out_dir"], request["data_dir"], progress=progress, cancel=cancel)
        emit(event="end", state="cancelled" if cancel.is_set() else "done")
    except Cancelled:
        emit(event="end", state="cancelled")
    except Exception as err:  # reported on the page; the traceback goes to the server's log
        logger.exception("training failed")
        emit(event="end", state="failed", error=f"{type(err).__name__}: {err}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(json.loads(sys.argv[1]))
