"""A What-if scenario as printed maps, fact sheets and exports show it.

The page evaluates a scenario (sites added or closed) with :func:`etl.engine.scenario.evaluate`
and shows its figures; a file made while the scenario is open must show the same figures,
counted the same way, not the baseline. :class:`WhatIf` carries what the files need, already
worded by the page's own functions (:func:`viewmodel.scenario_print.what_if` builds it), so
there is one definition of each figure:

* the map's travel-time choropleth uses the areas' times *with* the scenario, the desert
  drawn is the scenario's desert, added sites are drawn as stars and closed sites crossed
  out, and the land that leaves (or enters) the desert is outlined;
* the legend's big number and the fact sheet's "What-if" note give the people in the desert
  with the scenario beside the baseline;
* an export adds the scenario's own layers (``scenario_sites``, ``scenario_areas``,
  ``scenario_desert``) and ``metadata.json``/``README.txt`` record the scenario, its changes
  and its figures.

This module is plain data and small helpers: it imports nothing from the app.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WhatIf:
    """An evaluated What-if scenario, worded as the page words it.

    Attributes
    ----------
    name
        The scenario's name.
    category, mode
        The care and travel mode it was evaluated for (the map's).
    threshold_min
        The desert threshold it was evaluated at (the one on screen).
    changes
        One line per change, in order ("Add “Suggested site 1” (methadone) at …").
    statements
        The panel's sentences (median time, people in the desert, deaths).
    comparison
        The panel's before/after table: dicts with ``label``, ``before``, ``after``, ``change``.
    people_within, people_in_desert
        People within / beyond the threshold with the scenario (covered people only).
    base_people_within, base_people_in_desert
        The same figures without it (the baseline the page shows).
    layers
        The scenario's exportable layers (``scenario_sites``, ``scenario_areas``,
        ``scenario_desert``), EPSG:4326.
    area_minutes
        Area id -> population-weighted minutes with the scenario (NaN: no travel time).
    cell_minutes
        H3 cell (as the grid layer writes it) -> minutes with the scenario, where known.
    gain, loss
        Land that leaves / enters the desert (EPSG:4326 geometry or None).
    """

    name: str
    category: str
    mode: str
    threshold_min: float
    changes: tuple[str, ...]
    statements: tuple[str, ...]
    comparison: tuple[dict[str, str], ...]
    people_within: float
    people_in_desert: float
    base_people_within: float
    base_people_in_desert: float
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict, repr=False)
    area_minutes: dict[str, float] = field(default_factory=dict, repr=False)
    cell_minutes: dict[str, float] = field(default_factory=dict, repr=False)
    gain: Any = field(default=None, repr=False)
    loss: Any = field(default=None, repr=False)

    @property
    def title(self) -> str:
        """``What-if scenario “West side” (2 changes)``."""
        n = len(self.changes)
        return f"What-if scenario “{self.name}” ({n:,} change{'s' if n != 1 else ''})"

    @property
    def sites(self) -> gpd.GeoDataFrame:
        """Added and closed sites of the scenario (``status`` ``added`` or ``closed``)."""
        sites = self.layers.get("scenario_sites")
        if sites is None or len(sites) == 0 or "status" not in sites:
            return gpd.GeoDataFrame({"status": []}, geometry=[], crs="EPSG:4326")
        return sites[sites["status"].isin(["added", "closed"])]

    @property
    def desert(self) -> Any:
        """The desert with the scenario (EPSG:4326 geometry; None when there is none)."""
        frame = self.layers.get("scenario_desert")
        if frame is None or len(frame) == 0:
            return None
        after = frame[frame["when"] == "after"]
        return after.geometry.iloc[0] if len(after) else None

    def record(self) -> dict[str, Any]:
        """What ``metadata.json`` says about the scenario (JSON-ready)."""
        return {
            "name": self.name,
            "category": self.category,
            "mode": self.mode,
            "threshold_min": self.threshold_min,
            "changes": list(self.changes),
            "people_within": round(self.people_within),
            "people_in_desert": round(self.people_in_desert),
            "baseline_people_within": round(self.base_people_within),
            "baseline_people_in_desert": round(self.base_people_in_desert),
            "statements": list(self.statements),
            "comparison": [dict(r) for r in self.comparison],
        }

    def readme_lines(self) -> list[str]:
        """The scenario in ``README.txt`` (figures as the page gives them)."""
        out = [f"{self.title}, open on the page: the figures and layers are WITH it."]
        out += [f"  - {c}" for c in self.changes]
        out += [f"  {s}" for s in self.statements]
        out += [
            f"  {r['label']}: {r['before']} before, {r['after']} after ({r['change']})"
            for r in self.comparison
        ]
        out.append(
            "  Its sites, areas and desert are in scenario_sites, scenario_areas and "
            "scenario_desert; scenario sites are hypothetical."
        )
        return out


#: Field descriptions of the scenario layers in an export's data dictionary.
FIELDS: dict[tuple[str, str], tuple[str, str]] = {
    ("scenario_sites", "id"): ("", "site id (a hypothetical site's id starts with the scenario)"),
    ("scenario_sites", "name"): ("", "site name"),
    ("scenario_sites", "category"): ("", "kind of care"),
    ("scenario_sites", "lon"): ("degrees", "longitude (WGS 84) where the site is routed from"),
    ("scenario_sites", "lat"): ("degrees", "latitude (WGS 84) where the site is routed from"),
    ("scenario_sites", "node"): ("", "street network node the site is routed from"),
    ("scenario_sites", "snap_m"): ("m", "distance from the site to its street node"),
    ("scenario_sites", "offset_s"): ("s", "walk from the street node to the site's door"),
    ("scenario_sites", "hypothetical"): ("", "true: a site the scenario adds (not real)"),
    ("scenario_sites", "status"): ("", "open (today), added or closed by the scenario"),
    ("scenario_sites", "scenario"): ("", "the scenario's name"),
    ("scenario_areas", "area_id"): ("", "area id, as in the areas layer"),
    ("scenario_areas", "name"): ("", "area name"),
    ("scenario_areas", "population"): ("people", "census population of the area"),
    ("scenario_areas", "minutes_before"): ("minutes", "population-weighted travel time today"),
    ("scenario_areas", "minutes_after"): ("minutes", "the same with the scenario"),
    ("scenario_areas", "share_within_before"): ("share", "share of people within the threshold"),
    ("scenario_areas", "share_within_after"): ("share", "the same with the scenario"),
    ("scenario_areas", "people_beyond_before"): ("people", "people beyond the threshold today"),
    ("scenario_areas", "people_beyond_after"): ("people", "the same with the scenario"),
    ("scenario_areas", "minutes_change"): ("minutes", "minutes_after minus minutes_before"),
    ("scenario_areas", "people_gained"): ("people", "people brought within the threshold"),
    ("scenario_areas", "people_lost"): ("people", "people put beyond the threshold"),
    ("scenario_desert", "scenario"): ("", "the scenario's name"),
    ("scenario_desert", "when"): ("", "before (today) or after (with the scenario)"),
    ("scenario_desert", "category"): ("", "kind of care"),
    ("scenario_desert", "mode"): ("", "travel mode"),
    ("scenario_desert", "threshold_min"): ("minutes", "desert threshold"),
    ("scenario_desert", "population"): ("people", "people in the desert"),
}


def scenario_label(scenario: str | WhatIf | None) -> str | None:
    """One line naming a scenario given either way (None: no scenario)."""
    if scenario is None or scenario == "":
        return None
    return scenario.title if isinstance(scenario, WhatIf) else str(scenario)


def apply_to_frames(
    frames: dict[str, gpd.GeoDataFrame], whatif: WhatIf, *, column: str, crs: str
) -> dict[str, gpd.GeoDataFrame]:
    """The map's layers with the scenario's times and desert (copies; input unchanged).

    Parameters
    ----------
    frames
        The layers :class:`etl.outputs.render.MapData` draws, in ``crs``.
    whatif
        The evaluated scenario.
    column
        The travel-time column of the pair (``t_<category>_<mode>``).
    crs
        The map's CRS.

    Returns
    -------
    dict
        ``areas`` (and ``grid``) with ``column`` replaced where the scenario gives a time;
        ``deserts`` holding only the scenario's desert for the pair.
    """
    out = dict(frames)
    areas = frames.get("areas")
    if areas is not None and column in areas and whatif.area_minutes:
        ids = areas["area_id"].astype(str)
        new = ids.map(whatif.area_minutes)
        known = ids.isin(list(whatif.area_minutes))
        out["areas"] = areas.assign(**{column: np.where(known, new, areas[column])})
    grid = frames.get("grid")
    if grid is not None and column in grid and "h3" in grid and whatif.cell_minutes:
        cells = grid["h3"].astype(str)
        new = cells.map(whatif.cell_minutes)
        out["grid"] = grid.assign(**{column: new.where(new.notna(), grid[column])})
    geom = whatif.desert
    desert = gpd.GeoDataFrame(
        {"category": [whatif.category], "mode": [whatif.mode]},
        geometry=[geom] if geom is not None else [None],
        crs="EPSG:4326",
    ).to_crs(crs)
    out["deserts"] = desert[desert.geometry.notna()]
    return out


def change_frame(whatif: WhatIf, crs: str) -> gpd.GeoDataFrame:
    """Land leaving (``gain``) and entering (``loss``) the desert, in ``crs``."""
    kinds, geoms = [], []
    for kind, geom in (("gain", whatif.gain), ("loss", whatif.loss)):
        if geom is not None and not geom.is_empty:
            kinds.append(kind)
            geoms.append(geom)
    return gpd.GeoDataFrame({"kind": kinds}, geometry=geoms, crs="EPSG:4326").to_crs(crs)


def export_frames(whatif: WhatIf) -> dict[str, pd.DataFrame]:
    """The scenario's layers for an export, without internal columns."""
    out: dict[str, pd.DataFrame] = {}
    for name, frame in whatif.layers.items():
        drop = [c for c in frame.columns if str(c).startswith("_") or c == "provider_row"]
        frame = frame.drop(columns=drop)
        if frame.geometry.isna().all():
            frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        out[name] = frame
    return out


def numbers(whatif: WhatIf) -> Mapping[str, float]:
    """People within and beyond the threshold with the scenario (for the legend)."""
    return {"within": whatif.people_within, "beyond": whatif.people_in_desert}
