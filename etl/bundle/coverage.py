"""Who a bundle's networks cover: the one "not covered" number per mode, read from the bundle.

The access stage stores it once (manifest ``stages.access.coverage``); the page, the methods
page, prints and exports read it here. A bundle built before that gets the same figures
from its people layer and its areas stage, with the same rule
(:func:`etl.engine.counting.covered_mask`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from etl._errors import BundleError
from etl.engine.counting import covered_mask

#: ``max_snap_m``'s default: what bundles built before ``cover_m`` counted people by.
LEGACY_COVER_M = 1500.0


def cover_distance(manifest: Mapping[str, Any]) -> float:
    """Metres within which a people point is covered (``settings.cover_m``).

    Bundles built before ``access.cover_m`` existed counted people by ``max_snap_m``.
    """
    settings = manifest.get("settings", {})
    return float(settings.get("cover_m", settings.get("max_snap_m", LEGACY_COVER_M)))


def mode_coverage(
    bundle: Any, mode: str, *, people: pd.DataFrame | None = None
) -> dict[str, Any] | None:
    """Who ``mode``'s network covers: ``cover_m``, ``people``, ``covered``, ``not_covered``.

    Parameters
    ----------
    bundle
        An opened bundle (:class:`etl.bundle.store.Bundle`).
    mode
        The travel mode.
    people
        The bundle's people layer, when the caller holds it already (old bundles only).

    Returns
    -------
    dict or None
        Integers with ``people = covered + not_covered``; None where the bundle has neither
        the stored figure nor a people layer with the mode's snap distances.
    """
    stages = bundle.manifest.get("stages", {})
    stored = stages.get("access", {}).get("coverage", {}).get(mode)
    if stored is not None:
        return dict(stored)
    cover_m = cover_distance(bundle.manifest)
    if people is None:
        try:
            people = bundle.read_layer("people")
        except (BundleError, OSError, KeyError):
            return None
    col = f"snap_m_{mode}"
    if col not in people.columns:
        return None
    weight = people["weight"].to_numpy(dtype=float)
    covered = round(float(weight[covered_mask(people[col].to_numpy(dtype=float), cover_m)].sum()))
    areas = stages.get("areas", {})
    total = areas.get("population")
    if total is None:
        total = round(float(weight.sum()) + float(areas.get("population_uncovered") or 0))
    total = max(int(total), covered)
    return {"cover_m": cover_m, "people": total, "covered": covered, "not_covered": total - covered}
