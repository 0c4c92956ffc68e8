"""Background training for the Retrain page: one run at a time, observable by every session, cancellable.

- :mod:`kws.jobs.manager`: :class:`TrainingManager` starts a run in a child process and watches it (the locks,
  the status file other server processes read).
- :mod:`kws.jobs.state`: :class:`Job`, a run's state, its progress and what it says in words.
- :mod:`kws.jobs.child`: the child process's entry point, the only place TensorFlow loads.

The expected time comes from :mod:`kws.estimate`; what a run is asked to do from :mod:`kws.options`.
"""

from kws.jobs.manager import Busy, TrainingManager
from kws.jobs.state import Job

__all__ = ["Busy", "Job", "TrainingManager"]
