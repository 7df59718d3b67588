"""The What-if scenario open on the page, for prints and exports (a ``WhatIf``).

A print or a download made while a scenario is open shows the scenario's figures, evaluated
exactly as the What-if panel evaluates them (:func:`viewmodel.scenario.scenario_view`: the
same baseline, category, mode and threshold, the same sentences and table), so the page, the
PDF and the export agree to the person.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import shapely.geometry

from etl._errors import AtlasError
from etl.engine.scenario import evaluate
from etl.outputs.whatif import WhatIf
from viewmodel import scenario as aps
from viewmodel.data import RegionData
from viewmodel.state import decode_scenario

logger = logging.getLogger(__name__)


def what_if(
    rd: RegionData, token: str, *, category: str, mode: str, threshold: float
) -> WhatIf | None:
    """Evaluate the scenario of a share-link token for a file; None without a scenario.

    Parameters
    ----------
    rd
        The region.
    token
        The page's ``w=`` token ("" or an empty scenario: None).
    category, mode
        The care and travel mode on the map.
    threshold
        The threshold on screen (minutes).

    Returns
    -------
    WhatIf or None

    Raises
    ------
    AtlasError
        When the scenario cannot be evaluated for this care and mode (the message says why,
        as the panel does); the caller decides whether the file is still made.
    """
    store = decode_scenario(token)
    if not store:
        return None
    scenario = aps.scenario_from_store(store, region=rd.region)
    if len(scenario) == 0:
        return None
    base = aps.baseline_access(rd, mode)
    result = evaluate(base, scenario, category=category, threshold_min=float(threshold))
    areas = result.area_table(changed_only=False)
    area_minutes: dict[str, float] = {}
    if len(areas) and "minutes_after" in areas:
        area_minutes = dict(
            zip(
                areas["area_id"].astype(str).tolist(),
                areas["minutes_after"].to_numpy(float).tolist(),
                strict=True,
            )
        )
    cell_minutes: dict[str, float] = {}
    if result.cells is not None and result.cell_best_s is not None:
        times = np.asarray(result.cell_best_s, dtype=float) / 60.0
        cells = np.asarray(result.cells, dtype=np.uint64)
        cell_minutes = {
            format(int(c), "x"): float(t)
            for c, t in zip(cells.tolist(), times.tolist(), strict=True)
            if np.isfinite(t)
        }
    gain = loss = None
    for feature in aps.change_geojson(result)["features"]:
        geom = shapely.geometry.shape(feature["geometry"])
        if feature["properties"]["kind"] == "gain":
            gain = geom
        else:
            loss = geom
    whatif = WhatIf(
        name=scenario.name,
        category=category,
        mode=mode,
        threshold_min=float(threshold),
        changes=tuple(aps._describe(base, c) for c in scenario.changes),
        statements=tuple(aps._statements(result)),
        comparison=tuple(aps._comparison(result)),
        people_within=float(result.people_within),
        people_in_desert=float(result.people_in_desert),
        base_people_within=float(result.base_people_within),
        base_people_in_desert=float(result.base_people_in_desert),
        layers=result.to_layers(),
        area_minutes=area_minutes,
        cell_minutes=cell_minutes,
        gain=gain,
        loss=loss,
    )
    logger.info(
        "what_if(%s, %s/%s, %g min): %d changes; desert %s -> %s people",
        scenario.name, category, mode, threshold, len(scenario),
        f"{result.base_people_in_desert:,.0f}", f"{result.people_in_desert:,.0f}",
    )  # fmt: skip
    return whatif


def what_if_or_note(
    rd: RegionData, token: str, *, category: str, mode: str, threshold: float
) -> WhatIf | str | None:
    """:func:`what_if`, or one line saying why the files show the baseline instead."""
    try:
        return what_if(rd, token, category=category, mode=mode, threshold=threshold)
    except AtlasError as exc:
        logger.info("what_if: %s; the file shows the baseline", exc)
        store: dict[str, Any] = decode_scenario(token) or {}
        name = str(store.get("name") or "unnamed")[:60]
        return f"“{name}” (not applied here: {str(exc).splitlines()[0][:160]})"
