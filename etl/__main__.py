"""``python -m etl`` runs the ``access-atlas`` command line."""

from __future__ import annotations

import sys

from etl.cli import main

sys.exit(main())
