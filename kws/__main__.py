"""``python -m kws``: the command line (see :mod:`kws.cli`)."""

from kws.cli import main

raise SystemExit(main())
