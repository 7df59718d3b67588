"""Release day for the app: :func:`etl.outputs.reentry.release_day` of a region, cached.

The values (facilities, the nearest care of each kind, deserts) are built by
:mod:`etl.outputs.reentry`, which the fact sheet shares.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from etl.engine.reentry import REENTRY_CATEGORIES
from etl.outputs.reentry import (
    CareRow,
    FacilityView,
    ReleaseDay,
    Trip,
    partial_notes,
    release_day,
)

__all__ = [
    "CareRow",
    "FacilityView",
    "ReleaseDay",
    "Trip",
    "region_release_day",
    "release_day",
]


def region_release_day(rd: Any) -> ReleaseDay | None:
    """:func:`release_day` of a region's bundle, once per build; None without facilities."""
    if not rd.has_layer("facilities"):
        return None

    def make() -> ReleaseDay:
        providers = rd.layer("providers") if rd.has_layer("providers") else pd.DataFrame()
        modes = list(rd.modes)
        thresholds = {(c, m): rd.threshold(c, m) for c in REENTRY_CATEGORIES for m in modes}
        return release_day(
            rd.layer("facilities"),
            providers,
            rd.manifest,
            modes=modes,
            thresholds=thresholds,
            partial=partial_notes(providers),
        )

    return rd.cached("release_day", make)
