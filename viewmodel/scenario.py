"""Scenario planning on the map: the pure layer between the What-if panel and the engine.

The panel keeps the scenario in the browser (a ``dcc.Store`` holding
:meth:`etl.engine.scenario.Scenario.to_dict`), so any server process can answer any change: each
request parses the store (:func:`scenario_from_store`), applies one edit (:func:`add_site`,
:func:`close_site`, :func:`undo`, :func:`accept_suggestions`) and evaluates the result for
the map's category, mode and threshold (:func:`scenario_view`) on a
:class:`~etl.engine.scenario.BaselineAccess` kept per (region build, mode) in the process
(:func:`baseline_access`, loaded on first use and kept).

What the panel shows is plain language and plain numbers: people who gain or lose access
within the threshold (always printed beside them), the change in median travel time,
overdose deaths in the areas that change where the areas layer has counts (suppressed
counts are never included), a before/after table, and the engine's notes (a site moved
onto the network, the last site of a category closed). The map shows the scenario, never
redrawing a whole layer: the fine cells whose minute band changed, merged per new band
(:mod:`viewmodel.scenario_map`), drawn over the baseline bands and desert, which they replace
beneath them; the cells that left or entered the desert
(:meth:`etl.engine.scenario.ScenarioResult.desert_change`) outlined; and the areas' new travel
times, which recolour the area layer through its ``hideout``.

Saved scenarios live in ``<geodata>/saved/<region>/scenarios/<slug>.json``
(:func:`scenario_path`): the region and slug are checked or sanitised and the resolved path
must stay inside ``<geodata>/saved``, so no name typed in the browser can write elsewhere.

Settings
--------
MAX_CHANGES : int
    Most changes a scenario may hold (a request never recomputes more than this).
MAX_NAME_CHARS : int
    Longest scenario or site name kept.
K_RANGE : tuple of int
    Smallest and largest number of suggested sites.
FREEZE_GC : bool
    After a baseline loads, move everything alive to the garbage collector's permanent
    generation (:func:`gc.freeze`): the baseline's many long-lived objects are then never
    scanned again, which otherwise makes one change in twenty wait 50-60 ms for a full
    collection on a county (measured on Franklin County).
"""

from __future__ import annotations

import gc
import io
import json
import logging
import math
import re
import threading
import time
import unicodedata
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import shapely

from etl._errors import InputError
from etl.categories import CATEGORY_LABELS
from etl.engine.scenario import (
    DEATH_COLUMNS,
    AddSite,
    BaselineAccess,
    CloseSite,
    Scenario,
    ScenarioResult,
    evaluate,
    save_scenario,
)
from etl.engine.suggest import suggest_sites
from etl.outputs.cells import safe_table, spreadsheet_note
from etl.safe_json import load_file
from viewmodel.data import RegionData, clean_value, feature_collection
from viewmodel.scenario_map import (
    area_overrides,
    band_change,
    bands_overlay,
    cells_geometry,
)
from viewmodel.scenario_map import prepare as prepare_map

logger = logging.getLogger(__name__)

MAX_CHANGES: Final[int] = 100
MAX_NAME_CHARS: Final[int] = 80
K_RANGE: Final[tuple[int, int]] = (1, 10)
FREEZE_GC: Final[bool] = True

#: Folder under the geodata folder for what users save, and the scenarios' sub-folder.
SAVED_FOLDER: Final[str] = "saved"
SCENARIO_FOLDER: Final[str] = "scenarios"

#: How a mode is said in a sentence.
HOW: Final[dict[str, str]] = {"drive": "by car", "walk": "on foot"}

_REGION_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")
_MAX_SAVED_LISTED = 200
#: Most scenarios stored per region; saving one more first removes the oldest untitled
#: drafts, and is refused when there is none.
MAX_SAVED: int = 100
#: Largest saved scenario file read (bytes; 100 changes take about 30 kB).
MAX_SAVED_BYTES: Final[int] = 512 * 1024
#: Slugs of scenarios saved without a name of their own (drafts, which expire first).
_DRAFT = re.compile(r"^(untitled-scenario|scenario)(-[0-9]+)?$")
_KEEP_BASES = 6


# ---------------------------------------------------------------------------------------
# The baseline, one per (region build, mode) in the process
# ---------------------------------------------------------------------------------------

_BASES: OrderedDict[tuple[str, str, str], BaselineAccess] = OrderedDict()
_BASES_LOCK = threading.Lock()
_KEY_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}


def _base_key(rd: RegionData, mode: str) -> tuple[str, str, str]:
    return (str(rd.bundle.path), rd.build_id, mode)


def baseline_access(rd: RegionData, mode: str) -> BaselineAccess:
    """Return the region build's :class:`BaselineAccess` for ``mode``, loading it once.

    Loading reads the network, people, providers and areas (about 0.6 s for a county); later
    calls return the same object, whose own caches then keep every computed state. Threads
    asking for the same baseline at once wait for one load; other baselines are not held up.

    Raises
    ------
    BundleError
        If the bundle lacks the mode or a layer the engine needs.
    """
    key = _base_key(rd, mode)
    with _BASES_LOCK:
        base = _BASES.get(key)
        if base is not None:
            _BASES.move_to_end(key)
            return base
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:
        with _BASES_LOCK:
            base = _BASES.get(key)
        if base is None:
            t0 = time.perf_counter()
            base = BaselineAccess.from_bundle(rd.bundle, mode)
            logger.info(
                "baseline_access(%s, %s): loaded in %.2f s",
                rd.region,
                mode,
                time.perf_counter() - t0,
            )
            with _BASES_LOCK:
                _BASES[key] = base
                while len(_BASES) > _KEEP_BASES:
                    old, _ = _BASES.popitem(last=False)
                    _KEY_LOCKS.pop(old, None)
            if FREEZE_GC:
                gc.collect()
                gc.freeze()
    return base


def is_loaded(rd: RegionData, mode: str) -> bool:
    """Whether the baseline of ``mode`` is already in memory."""
    with _BASES_LOCK:
        return _base_key(rd, mode) in _BASES


def warm_baseline(
    rd: RegionData, mode: str, *, category: str | None = None, threshold_min: float | None = None
) -> None:
    """Load the baseline and answer an empty scenario, so the first real change is fast.

    Errors are logged, never raised (this runs in a background thread).
    """
    try:
        base = baseline_access(rd, mode)
        known = category is not None and category in base.categories
        if known and threshold_min is not None:
            evaluate(
                base, Scenario(region=rd.region), category=category, threshold_min=threshold_min
            )
        prepare_map(base, category=category if known else None)
    except Exception as exc:  # a region without the mode, a broken bundle: shown later
        logger.info("warm_baseline(%s, %s) skipped: %s", rd.region, mode, exc)


def clear_baselines() -> None:
    """Forget every cached baseline (tests)."""
    with _BASES_LOCK:
        _BASES.clear()
        _KEY_LOCKS.clear()


# ---------------------------------------------------------------------------------------
# The browser's store and the edits
# ---------------------------------------------------------------------------------------


def scenario_from_store(data: Mapping[str, Any] | None, *, region: str) -> Scenario:
    """Read the scenario the browser holds; an empty store is a new, empty scenario.

    A store of another region (a stale tab) starts a new scenario for ``region``.

    Raises
    ------
    InputError
        If the store is not a scenario or holds more than :data:`MAX_CHANGES` changes.
    """
    if not data:
        return Scenario(region=region)
    if not isinstance(data, Mapping):
        msg = "the scenario held by the page is not an object; start over"
        raise InputError(msg)
    if data.get("region") not in (None, region):
        return Scenario(region=region)
    changes = data.get("changes")
    if isinstance(changes, list) and len(changes) > MAX_CHANGES:
        msg = f"a scenario holds at most {MAX_CHANGES} changes; this one has {len(changes)}"
        raise InputError(msg)
    scenario = Scenario.from_dict(dict(data), source="the scenario held by the page")
    name = clean_name(scenario.name, fallback="Untitled scenario")
    return Scenario(name=name, changes=scenario.changes, region=region)


def scenario_to_store(scenario: Scenario) -> dict[str, Any]:
    """The scenario as the browser keeps it (:meth:`Scenario.to_dict`)."""
    return scenario.to_dict()


def clean_name(name: Any, *, fallback: str) -> str:
    """A name without control characters, trimmed to :data:`MAX_NAME_CHARS`."""
    text = "" if name is None else str(name)
    text = "".join(ch for ch in text if ch.isprintable()).strip()
    return text[:MAX_NAME_CHARS].strip() or fallback


def _check_room(scenario: Scenario, more: int = 1) -> None:
    if len(scenario) + more > MAX_CHANGES:
        msg = (
            f"a scenario holds at most {MAX_CHANGES} changes; undo some or save this one "
            "and start another"
        )
        raise InputError(msg)


def next_site_name(scenario: Scenario) -> str:
    """``New site N``: N one more than the added sites so far."""
    n = sum(isinstance(c, AddSite) for c in scenario.changes)
    return f"New site {n + 1}"


def add_site(
    scenario: Scenario, *, category: str, lon: float, lat: float, name: str | None = None
) -> Scenario:
    """Return the scenario with a hypothetical site of ``category`` at ``lon``, ``lat``.

    Raises
    ------
    InputError
        If the scenario is full, the category unknown or the coordinates not WGS84.
    """
    _check_room(scenario)
    label = clean_name(name, fallback=next_site_name(scenario))
    return scenario.add_site(category, lon, lat, name=label)


def close_site(
    scenario: Scenario, provider_id: str, *, providers: pd.DataFrame
) -> tuple[Scenario, str | None]:
    """Return the scenario with an existing site closed, and a note when nothing was added.

    Parameters
    ----------
    scenario
        The scenario.
    provider_id
        The providers layer's ``id``.
    providers
        The providers layer (to check the id and name the site).

    Returns
    -------
    tuple
        The new scenario (unchanged when the site is already closed) and a note or None.

    Raises
    ------
    InputError
        If the id is not a site of this region or the scenario is full.
    """
    provider_id = str(provider_id or "")
    match = providers.index[providers["id"].astype(str) == provider_id]
    if not provider_id or len(match) == 0:
        msg = f"site {provider_id!r} is not in this region's provider lists; nothing closed"
        raise InputError(msg)
    name = str(providers.loc[match[0], "name"])
    if any(isinstance(c, CloseSite) and c.provider_id == provider_id for c in scenario.changes):
        return scenario, f"{name} is already closed in this scenario."
    _check_room(scenario)
    return scenario.close_site(provider_id), None


def undo(scenario: Scenario) -> Scenario:
    """Return the scenario without its last change (unchanged when it has none)."""
    return scenario.undo(1)


# ---------------------------------------------------------------------------------------
# Evaluation for the panel and the map
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioView:
    """What the panel and the map show for a scenario, JSON-ready.

    Attributes
    ----------
    summary
        :meth:`ScenarioResult.summary` (threshold beside every number).
    lead
        The headline sentence.
    statements
        Further plain-language sentences (median time, desert, overdose deaths).
    comparison
        Before/after rows: ``label``, ``before``, ``after``, ``change`` (formatted text).
    areas
        The areas that change most: ``name``, ``gained``, ``lost``, ``before``, ``after``.
    notes
        The engine's notes and the panel's own (changes that concern other care).
    changes
        One row per change: ``text`` and ``relevant`` (it counts for this category and mode).
    change_geojson
        Cells that left (``gain``) or entered (``loss``) the desert, as a FeatureCollection.
    sites_geojson
        Added and closed sites as points (``status`` ``added``/``closed``).
    elapsed_ms
        Server time of the evaluation.
    bands_geojson
        The fine cells whose minute band changes, merged per new band
        (:func:`viewmodel.scenario_map.bands_overlay`), drawn over the baseline bands.
    area_overrides
        The areas' and hexagons' new travel times for the area layer's ``hideout``
        (:func:`viewmodel.scenario_map.area_overrides`).
    showing
        What the map shows, for the legend: ``Showing: scenario “X” (2 changes)``.
    """

    summary: dict[str, Any]
    lead: str
    statements: list[str]
    comparison: list[dict[str, str]]
    areas: list[dict[str, Any]]
    notes: list[str]
    changes: list[dict[str, Any]]
    change_geojson: dict[str, Any]
    sites_geojson: dict[str, Any]
    elapsed_ms: float = 0.0
    bands_geojson: dict[str, Any] = field(default_factory=dict)
    area_overrides: dict[str, Any] = field(default_factory=dict)
    showing: str = ""


def people(value: float | None) -> str:
    """People as a whole number with thousands separators."""
    if value is None or not math.isfinite(float(value)):
        return "—"
    return f"{round(float(value)):,}"


def minutes(value: float | None) -> str:
    """Minutes with one decimal ("—" where undefined)."""
    if value is None or not math.isfinite(float(value)):
        return "—"
    return f"{float(value):.1f} min"


def _signed(value: float | None, unit: str = "") -> str:
    if value is None or not math.isfinite(float(value)):
        return "—"
    v = float(value)
    if unit:
        if abs(v) < 0.05:
            return f"0 {unit}".rstrip()
        return f"{v:+.1f} {unit}".replace("-", "−")
    if round(v) == 0:
        return "0"
    return f"{round(v):+,}".replace("-", "−")


def _care(category: str) -> str:
    return CATEGORY_LABELS.get(category, category).lower()


def site_label(provider_id: str, providers: pd.DataFrame | None = None) -> str:
    """``Name (care)`` of an existing site, or its id when unknown."""
    if providers is not None:
        rows = providers.index[providers["id"].astype(str) == provider_id]
        if len(rows):
            row = providers.loc[rows[0]]
            return f"{row['name']} ({_care(str(row['category']))})"
    return provider_id


def describe_change(change: AddSite | CloseSite, providers: pd.DataFrame | None = None) -> str:
    """One line for the list of changes."""
    if isinstance(change, AddSite):
        return (
            f"Add {change.name!r} ({_care(change.category)}) at {change.lat:.5f}, {change.lon:.5f}"
        )
    return f"Close {site_label(change.provider_id, providers)}"


def _site_labels(base: BaselineAccess) -> dict[str, str]:
    """:func:`site_label` of every provider id of the baseline (its first row), built once."""

    def make() -> dict[str, str]:
        pc = base._provider_columns()
        out: dict[str, str] = {}
        for pid, name, cat in zip(
            pc["id"].tolist(), pc["name"].tolist(), pc["category"].tolist(), strict=True
        ):
            out.setdefault(str(pid), f"{name} ({_care(str(cat))})")
        return out

    return base._cached("site_labels", make)


def _describe(base: BaselineAccess, change: AddSite | CloseSite) -> str:
    """:func:`describe_change` against the baseline's providers, closures looked up once."""
    if isinstance(change, AddSite):
        return describe_change(change)
    return f"Close {_site_labels(base).get(change.provider_id, change.provider_id)}"


def _relevant(base: BaselineAccess, change: AddSite | CloseSite, category: str) -> bool:
    if isinstance(change, AddSite):
        return change.category == category
    row = base.provider_ids.get(change.provider_id)
    return row is not None and bool(base.offers(category)[row])


def deaths_statement(result: ScenarioResult) -> str:
    """Overdose deaths in the areas whose access changes, or why they cannot be counted.

    Only counts the bundle shows are summed (the ETL suppresses 1-9 before publishing);
    areas whose count is suppressed or missing are named as left out.
    """
    areas = result.areas
    base_areas = result.base.areas
    col = next((c for c in DEATH_COLUMNS if base_areas is not None and c in base_areas), None)
    if col is None:
        return (
            "Overdose deaths are not published by area in this region's data, so deaths in "
            "the areas that change cannot be counted."
        )
    if len(areas) == 0:
        return "No area's access changes, so no overdose deaths are affected."
    values = pd.to_numeric(areas[col], errors="coerce")
    hidden = values.isna()
    if "suppressed" in base_areas:
        flags = base_areas.set_index(base_areas["area_id"].astype(str))["suppressed"]
        sup = flags.reindex(areas["area_id"].astype(str)).fillna(False).astype(bool).to_numpy()
        hidden = hidden | sup
    shown = float(values[~hidden].sum())
    n = len(areas)
    where = f"the {n:,} areas whose access changes" if n != 1 else "the area whose access changes"
    text = f"Overdose deaths in {where}: {people(shown)}"
    period = None
    if "period" in base_areas:
        periods = base_areas["period"].dropna().astype(str).unique()
        period = periods[0] if len(periods) == 1 else None
    if period:
        text += f" ({period})"
    k = int(hidden.sum())
    if k:
        what = "of these areas have counts" if k != 1 else "of these areas has its count"
        text += f"; {k:,} {what} suppressed for privacy (1–9 deaths) or not published, not included"
    return text + "."


def _lead(result: ScenarioResult, relevant: int) -> str:
    how = HOW.get(result.mode, result.mode)
    care = _care(result.category)
    thr = f"{result.threshold_min:g} min"
    if relevant == 0:
        return f"None of the changes concern {care} {how}: access within {thr} is as before."
    gained, lost = round(result.people_gained), round(result.people_lost)
    gain = f"{gained:,} people gain access" if gained else "nobody gains access"
    lose = f"{lost:,} people lose it" if lost else "nobody loses it"
    if not gained and lost:
        lose = f"{lost:,} people lose access"
        return f"Within {thr} {how} of {_a(care)}: nobody gains access and {lose}."
    return f"Within {thr} {how} of {_a(care)}: {gain}; {lose}."


def _a(care: str) -> str:
    return f"an {care}" if care[:1] in "aeiou" else f"a {care}"


def _statements(result: ScenarioResult) -> list[str]:
    how = HOW.get(result.mode, result.mode)
    out = []
    before, after = result.base_median_min, result.median_min
    if before is None and after is None:
        out.append(f"Nobody can reach this care {how}, before or after.")
    elif after is None:
        out.append(
            f"Median travel time {how}: {minutes(before)} before; after, nobody can reach "
            f"this care {how}."
        )
    elif before is None:
        out.append(
            f"Median travel time {how}: nobody could reach this care before; "
            f"{minutes(after)} after."
        )
    elif result.median_change_min is not None and abs(result.median_change_min) < 0.05:
        out.append(f"Median travel time {how}: unchanged at {minutes(after)}.")
    else:
        change = (
            f" ({_signed(result.median_change_min, 'min')})"
            if result.median_change_min is not None
            else ""
        )
        out.append(
            f"Median travel time {how}: {minutes(before)} before, {minutes(after)} after{change}."
        )
    out.append(
        f"People in the desert (beyond {result.threshold_min:g} min): "
        f"{people(result.base_people_in_desert)} before, {people(result.people_in_desert)} after."
    )
    out.append(deaths_statement(result))
    return out


def _comparison(result: ScenarioResult) -> list[dict[str, str]]:
    s = result.summary()
    thr = f"{result.threshold_min:g} min"
    rows = [
        {
            "label": "Sites of this care",
            "before": f"{s['sites_before']:,}",
            "after": f"{s['sites_after']:,}",
            "change": _signed(s["sites_after"] - s["sites_before"]),
        },
        {
            "label": f"People within {thr}",
            "before": people(result.base_people_within),
            "after": people(result.people_within),
            "change": _signed(result.people_within - result.base_people_within),
        },
        {
            "label": f"People beyond {thr} (desert)",
            "before": people(result.base_people_in_desert),
            "after": people(result.people_in_desert),
            "change": _signed(result.people_in_desert - result.base_people_in_desert),
        },
        {
            "label": "Median travel time",
            "before": minutes(result.base_median_min),
            "after": minutes(result.median_min),
            "change": _signed(result.median_change_min, "min"),
        },
    ]
    return rows


def _top_areas(result: ScenarioResult, n: int = 5) -> list[dict[str, Any]]:
    areas = result.areas
    if len(areas) == 0:
        return []
    moved = areas["people_gained"].to_numpy(float) + areas["people_lost"].to_numpy(float)
    dt = np.abs(np.nan_to_num(areas["minutes_change"].to_numpy(float)))
    order = np.lexsort((-dt, -moved))[:n]
    cols = ["area_id", "people_gained", "people_lost", "minutes_before", "minutes_after"]
    if pd.api.types.is_numeric_dtype(areas["area_id"]):  # rows as iloc gives them (upcast)
        recs = [areas.iloc[int(i)] for i in order]
        rows = {c: [r[c] for r in recs] for c in cols}
        names = [r.get("name") if "name" in areas else None for r in recs]
    else:  # a text column: iloc would give every value as it is
        rows = {c: areas[c].to_numpy()[order].tolist() for c in cols}
        names = areas["name"].to_numpy()[order].tolist() if "name" in areas else [None] * len(order)
    out = []
    for i, name in enumerate(names):
        area_id = rows["area_id"][i]
        out.append(
            {
                "area_id": str(area_id),
                "name": str(name) if isinstance(name, str) and name else str(area_id),
                "gained": people(rows["people_gained"][i]),
                "lost": people(rows["people_lost"][i]),
                "before": minutes(clean_value(rows["minutes_before"][i])),
                "after": minutes(clean_value(rows["minutes_after"][i])),
            }
        )
    return out


def change_geojson(result: ScenarioResult) -> dict[str, Any]:
    """Cells that left the desert (``kind`` ``gain``) and that entered it (``loss``).

    Only the cells that change, over the baseline desert the map already draws (the whole
    desert is never sent again); like the map's minute bands, not clipped to the region.
    """
    # As the map's minute bands: not clipped (result.desert_change(clip=False), written
    # straight from the H3 cells).
    if result.cells is not None and result.cell_best_s is not None:
        # The cells' times before and after: no set difference of two whole deserts.
        thr_s = result.threshold_min * 60.0
        was_in, now_in = result.base_cell_best_s <= thr_s, result.cell_best_s <= thr_s
        left, entered = result.cells[now_in & ~was_in], result.cells[was_in & ~now_in]
    else:
        left = np.setdiff1d(result.base_desert_cells, result.desert_cells)
        entered = np.setdiff1d(result.desert_cells, result.base_desert_cells)
    features = []
    for cells, kind, text in (
        (left, "gain", "Leaves the desert: now within reach"),
        (entered, "loss", "Falls into the desert: now beyond reach"),
    ):
        if len(cells):
            features.append(
                {
                    "type": "Feature",
                    "geometry": cells_geometry(cells),
                    "properties": {"kind": kind, "label": text},
                }
            )
    return {"type": "FeatureCollection", "features": features}


def sites_geojson(
    result: ScenarioResult | None, scenario: Scenario, base: BaselineAccess
) -> dict[str, Any]:
    """Added and closed sites of the scenario as points for the map.

    Added sites of the evaluated category sit where the engine placed them (on the street
    when they were moved); added sites of other categories at the point given, marked not
    ``relevant``. Closed sites appear at their published location; a site shown only as an
    area (generalized) is drawn at its area's centre with ``approx``.
    """
    geoms: list[shapely.Geometry] = []
    props: list[dict[str, Any]] = []
    placed = {}
    if result is not None and len(result.placed):
        table = result.placed
        cols = {c: table[c].to_numpy().tolist() for c in ("lon", "lat", "snap_m", "moved")}
        for j, i in enumerate(table.index.tolist()):
            placed[int(i)] = {c: v[j] for c, v in cols.items()}
    k = 0
    pv = base.providers
    pc = base._provider_columns()
    category = result.category if result is not None else None
    for i, change in enumerate(scenario.changes):
        if isinstance(change, AddSite):
            row = placed.get(k) if change.category == category else None
            if change.category == category:
                k += 1
            lon, lat = (
                (float(row["lon"]), float(row["lat"]))
                if row is not None
                else (
                    change.lon,
                    change.lat,
                )
            )
            props.append(
                {
                    "status": "added",
                    "step": i + 1,
                    "name": change.name,
                    "category": change.category,
                    "relevant": change.category == category,
                    "moved_m": round(float(row["snap_m"]))
                    if row is not None and row["moved"]
                    else None,
                }
            )
            geoms.append(shapely.Point(lon, lat))
            continue
        r = base.provider_ids.get(change.provider_id)
        if r is None:
            continue
        lon, lat = pc["lon"][r], pc["lat"][r]
        approx = False
        if not (np.isfinite(lon) and np.isfinite(lat)):
            geom = pv["geometry"].iloc[r] if "geometry" in pv else None
            if geom is None or geom.is_empty:
                continue
            centre = geom.centroid
            lon, lat, approx = centre.x, centre.y, True
        props.append(
            {
                "status": "closed",
                "step": i + 1,
                "name": str(pc["name"][r]),
                "category": str(pc["category"][r]),
                "relevant": category is not None and bool(base.offers(category)[r]),
                "approx": approx,
            }
        )
        geoms.append(shapely.Point(float(lon), float(lat)))
    return json.loads(feature_collection(geoms, props))


#: Categories a rule about "treatment programs" restricts (opioid treatment programs and
#: treatment facilities; an office-based prescriber or a pharmacy is no such program).
TREATMENT_PROGRAMS: Final[frozenset[str]] = frozenset({"methadone", "treatment_facility"})


def _rule_applies(applies_to: Any, category: str) -> bool:
    """Whether a siting rule's ``applies_to`` restricts sites of ``category``."""
    text = str(applies_to or "treatment_program").strip().lower()
    if text in ("treatment_program", "treatment_programs", "otp"):
        return category in TREATMENT_PROGRAMS
    if text in CATEGORY_LABELS:
        return text == category
    return True  # a use the rule names in its own words: say it for every site


def siting_notes(base: BaselineAccess, scenario: Scenario) -> list[str]:
    """A warning for each added site standing where a local siting rule applies to it.

    ``"“New clinic” stands where “Zoning code (treatment programs)” prohibits it: Treatment
    program: prohibited in zones AG, … (Fictional Millbrook County zoning code)."`` —
    prohibited and conditional rules (the barriers layer), for the site's kind of care.
    """
    barriers = base.barriers
    adds = [c for c in scenario.changes if isinstance(c, AddSite)]
    if barriers is None or len(barriers) == 0 or not adds:
        return []
    frame = base._cached("barriers_wgs84", lambda: barriers.to_crs("EPSG:4326"))
    tree = base._cached("barriers_tree", lambda: shapely.STRtree(frame.geometry.to_numpy()))
    points = shapely.points([c.lon for c in adds], [c.lat for c in adds])
    pt, geom = tree.query(points, predicate="within")
    notes = []
    for i, j in sorted(zip(pt.tolist(), geom.tolist(), strict=True)):
        row = frame.iloc[j]
        change = adds[i]
        if not _rule_applies(row.get("applies_to"), change.category):
            continue
        rule = str(row.get("rule") or "a local siting rule")
        status = str(row.get("status") or "prohibited")
        verb = "prohibits it" if status == "prohibited" else "allows it only with a permit"
        text = str(row.get("text") or "").strip()
        cite = str(row.get("citation") or "").strip()
        detail = f": {text}" + (f" ({cite})" if cite else "") if text else ""
        notes.append(f"“{change.name}” stands where “{rule}” {verb}{detail}.")
    return notes


def showing_text(scenario: Scenario) -> str:
    """What the map shows with a scenario: ``Showing: scenario “X” (2 changes)``."""
    n = len(scenario)
    return f"Showing: scenario “{scenario.name}” ({n:,} change{'s' if n != 1 else ''})"


def scenario_view(
    base: BaselineAccess, scenario: Scenario, *, category: str, threshold_min: float
) -> ScenarioView:
    """Evaluate a scenario for the map's category and threshold; everything the panel shows.

    Raises
    ------
    InputError
        If the category has no sites in this mode's data or the threshold is not positive.
    """
    t0 = time.perf_counter()
    result = evaluate(base, scenario, category=category, threshold_min=threshold_min)
    relevant = [_relevant(base, c, category) for c in scenario.changes]
    notes = list(result.notes)
    others = [c for c, ok in zip(scenario.changes, relevant, strict=True) if not ok]
    if others:
        cats = sorted(
            {
                _care(c.category)
                if isinstance(c, AddSite)
                else _care(str(base.providers["category"].iloc[base.provider_ids[c.provider_id]]))
                for c in others
                if isinstance(c, AddSite) or c.provider_id in base.provider_ids
            }
        )
        what = f" ({', '.join(cats)})" if cats else ""
        notes.append(
            f"{len(others)} of the changes concern other care{what}; they are kept and count "
            "when that care is chosen under Care."
        )
    notes += siting_notes(base, scenario)
    view = ScenarioView(
        summary=json_ready(result.summary()),
        lead=_lead(result, sum(relevant)),
        statements=_statements(result),
        comparison=_comparison(result),
        areas=_top_areas(result),
        notes=notes,
        changes=[
            {"text": _describe(base, c), "relevant": ok}
            for c, ok in zip(scenario.changes, relevant, strict=True)
        ],
        change_geojson=change_geojson(result),
        sites_geojson=sites_geojson(result, scenario, base),
        elapsed_ms=0.0,
        bands_geojson=bands_overlay(band_change(result)),
        area_overrides=area_overrides(result),
        showing=showing_text(scenario),
    )
    elapsed = (time.perf_counter() - t0) * 1000.0
    logger.info(
        "scenario_view(%s, %s/%s, %g min): %d changes in %.1f ms",
        scenario.name,
        category,
        base.mode,
        threshold_min,
        len(scenario),
        elapsed,
    )
    return replace(view, elapsed_ms=elapsed)


# ---------------------------------------------------------------------------------------
# Suggestions
# ---------------------------------------------------------------------------------------


def check_k(k: Any) -> int:
    """The number of suggested sites asked for, as an int in :data:`K_RANGE`.

    Raises
    ------
    InputError
        If ``k`` is not a whole number in range.
    """
    lo, hi = K_RANGE
    try:
        value = float(k)
    except (TypeError, ValueError) as exc:
        msg = f"the number of sites must be a whole number from {lo} to {hi}, not {k!r}"
        raise InputError(msg) from exc
    if not math.isfinite(value) or value != round(value) or not lo <= value <= hi:
        msg = f"the number of sites must be a whole number from {lo} to {hi}, not {k!r}"
        raise InputError(msg)
    return int(value)


def suggestions(
    base: BaselineAccess,
    scenario: Scenario,
    *,
    category: str,
    threshold_min: float,
    k: Any,
) -> dict[str, Any]:
    """Suggest up to ``k`` sites on sitable land on top of ``scenario`` (JSON-ready).

    Candidates are street nodes outside the prohibiting zoning barriers
    (:meth:`BaselineAccess.blocked_land`, computed once per baseline).

    Returns
    -------
    dict
        ``items`` (``rank``, ``lon``, ``lat``, ``people_added``, ``people_cumulative``),
        ``message``, ``k``, ``category``, ``mode``, ``threshold_min``, ``n_candidates``,
        ``people_in_desert``.
    """
    k = check_k(k)
    blocked = base._cached("blocked_land", base.blocked_land)
    t0 = time.perf_counter()
    found = suggest_sites(
        base,
        category=category,
        threshold_min=threshold_min,
        k=k,
        blocked=blocked,
        scenario=scenario,
    )
    out = {
        "items": [
            {
                "rank": s.rank,
                "lon": round(s.lon, 6),
                "lat": round(s.lat, 6),
                "people_added": round(s.people_added),
                "people_cumulative": round(s.people_cumulative),
            }
            for s in found
        ],
        "message": found.message,
        "k": k,
        "category": category,
        "mode": base.mode,
        "threshold_min": float(threshold_min),
        "n_candidates": found.n_candidates,
        "people_in_desert": round(found.people_in_desert),
        "blocked": blocked is not None,
        "elapsed_ms": round((time.perf_counter() - t0) * 1000.0, 1),
    }
    return out


def accept_suggestions(scenario: Scenario, data: Mapping[str, Any] | None) -> Scenario:
    """Return the scenario with every suggested site added as a hypothetical site.

    Raises
    ------
    InputError
        If there are no suggestions, they are malformed, or the scenario would be too long.
    """
    items = (data or {}).get("items") or []
    category = (data or {}).get("category")
    if not items:
        msg = "there are no suggestions to add; ask for suggestions first"
        raise InputError(msg)
    _check_room(scenario, len(items))
    adds = []
    for item in items:
        try:
            adds.append(
                AddSite(
                    category=str(category),
                    lon=float(item["lon"]),
                    lat=float(item["lat"]),
                    name=f"Suggested site {int(item['rank'])}",
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"a suggestion is malformed ({exc}); ask for suggestions again"
            raise InputError(msg) from exc
    return scenario.extend(adds)


def suggestions_geojson(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Suggested sites as numbered points (empty without suggestions)."""
    items = (data or {}).get("items") or []
    geoms = [shapely.Point(float(i["lon"]), float(i["lat"])) for i in items]
    props = [
        {"rank": int(i["rank"]), "people_added": i["people_added"], "category": data["category"]}
        for i in items
    ]
    return json.loads(feature_collection(geoms, props))


# ---------------------------------------------------------------------------------------
# Saving and loading
# ---------------------------------------------------------------------------------------


def slugify(name: Any) -> str:
    """A file-name slug: lower-case ASCII letters, digits and single hyphens, at most 60.

    ``"../../etc/passwd"`` becomes ``"etc-passwd"``; a name with nothing usable becomes
    ``"scenario"``.
    """
    text = unicodedata.normalize("NFKD", "" if name is None else str(name))
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:60].strip("-")
    return text or "scenario"


def saved_root(geodata_dir: str | Path) -> Path:
    """``<geodata>/saved``: everything users save, and nothing outside it."""
    return Path(geodata_dir) / SAVED_FOLDER


def scenario_dir(geodata_dir: str | Path, region: str) -> Path:
    """``<geodata>/saved/<region>/scenarios`` (not created).

    Raises
    ------
    InputError
        If ``region`` is not a plain region name or the folder resolves outside
        ``<geodata>/saved`` (a symbolic link out).
    """
    if not isinstance(region, str) or not _REGION_NAME.match(region):
        msg = f"{region!r} is not a region name (letters, digits, '-' and '_')"
        raise InputError(msg)
    folder = saved_root(geodata_dir) / region / SCENARIO_FOLDER
    _inside(geodata_dir, folder)
    return folder


def _inside(geodata_dir: str | Path, path: Path) -> Path:
    root = saved_root(geodata_dir).resolve()
    resolved = path.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        logger.warning("refusing %s: it resolves outside the saved folder %s", path, root)
        msg = (
            f"refusing the saved scenario {path.name!r}: it is a link that leads outside the "
            "saved folder; the site's operator should replace it"
        )
        raise InputError(msg)
    return resolved


def scenario_path(geodata_dir: str | Path, region: str, slug: str) -> Path:
    """The file of a saved scenario, checked to stay inside ``<geodata>/saved``.

    Raises
    ------
    InputError
        If the slug is not one :func:`slugify` makes, or the path leaves the saved folder.
    """
    if not isinstance(slug, str) or not _SLUG.match(slug):
        msg = (
            f"{slug!r} is not a saved scenario's name (lower-case letters, digits and "
            "hyphens); choose one from the list"
        )
        raise InputError(msg)
    folder = scenario_dir(geodata_dir, region)
    path = folder / f"{slug}.json"
    _inside(geodata_dir, path)
    return path


def save_named(geodata_dir: str | Path, scenario: Scenario, *, region: str) -> Path:
    """Save a scenario with its region as ``<slug of its name>.json`` (replacing one there).

    Raises
    ------
    InputError
        If the region name is invalid, the path would leave the saved folder, or the
        scenario has no changes.
    """
    if len(scenario) == 0:
        msg = "this scenario has no changes yet; add or close a site before saving"
        raise InputError(msg)
    path = scenario_path(geodata_dir, region, slugify(scenario.name))
    path.parent.mkdir(parents=True, exist_ok=True)
    _inside(geodata_dir, path)  # again, now that the folders exist
    named = Scenario(name=scenario.name, changes=scenario.changes, region=region)
    if not path.exists():
        _make_room(path.parent)
    return save_scenario(named, path)


def _make_room(folder: Path) -> None:
    """Keep fewer than :data:`MAX_SAVED` scenarios in a folder before one more is saved.

    The oldest untitled drafts are removed first; when only named scenarios are left, the
    save is refused (a named scenario is never removed without a person deciding it).

    Raises
    ------
    InputError
        When the folder holds :data:`MAX_SAVED` named scenarios.
    """
    files = [p for p in folder.glob("*.json") if _SLUG.match(p.stem)]
    if len(files) < MAX_SAVED:
        return
    drafts = sorted((p for p in files if _DRAFT.match(p.stem)), key=lambda p: p.stat().st_mtime)
    expired = drafts[: len(files) - MAX_SAVED + 1]
    for old in expired:
        old.unlink(missing_ok=True)
        logger.info("save_named: removed the old draft %s to make room", old.name)
    if len(files) - len(expired) >= MAX_SAVED:
        msg = (
            f"this region already holds {MAX_SAVED} saved scenarios; save under the name of "
            "one to replace it, or ask the site's operator to remove old ones"
        )
        raise InputError(msg)


def read_saved(path: Path) -> Scenario:
    """A saved scenario file, read with limits (:mod:`etl.safe_json`).

    Raises
    ------
    InputError
        Too large, nested too deep, not UTF-8, not JSON or not a scenario; the message
        names the file, never its folder.
    """
    data = load_file(path, what=path.name, max_bytes=MAX_SAVED_BYTES)
    try:
        return Scenario.from_dict(data, source=path.name)
    except InputError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        msg = f"{path.name}: not an Access Atlas scenario ({type(exc).__name__})"
        raise InputError(msg) from None


def list_saved(geodata_dir: str | Path, region: str) -> list[dict[str, Any]]:
    """Saved scenarios of a region: ``slug``, ``name``, ``changes``, newest first.

    Files that are not scenarios (too large, too deep, not UTF-8, not JSON, a link out of
    the saved folder) are skipped and logged once. Each file is read once per version (its
    modification time, size and inode), not on every listing.
    """
    try:
        folder = scenario_dir(geodata_dir, region)
    except InputError:
        return []
    if not folder.is_dir():
        return []
    out = []
    stamps: dict[Path, tuple[int, int, int]] = {}
    for path in folder.glob("*.json"):
        try:
            st = path.stat()
        except OSError:  # removed meanwhile, or a link to nothing
            continue
        stamps[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
    files = sorted(stamps, key=lambda p: stamps[p][0], reverse=True)
    for path in files[:_MAX_SAVED_LISTED]:
        if not _SLUG.match(path.stem):
            continue
        entry = _listed(geodata_dir, path, stamps[path])
        if entry is not None:
            out.append(dict(entry))
    return out


#: What each saved scenario file gave the list, per version: path -> (stamp, entry or None).
_LISTED: OrderedDict[str, tuple[tuple[int, int, int], dict[str, Any] | None]] = OrderedDict()
_LISTED_LOCK = threading.Lock()
_LISTED_MAX: Final[int] = 4 * _MAX_SAVED_LISTED


def _listed(
    geodata_dir: str | Path, path: Path, stamp: tuple[int, int, int]
) -> dict[str, Any] | None:
    """One saved scenario's entry in the list, read once per version of its file.

    A version is the file's modification time, size and inode; None (logged once per
    version) when the file is not a usable scenario.
    """
    key = str(path)
    with _LISTED_LOCK:
        hit = _LISTED.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    entry: dict[str, Any] | None
    try:
        scenario = read_saved(_inside(geodata_dir, path))
        entry = {"slug": path.stem, "name": scenario.name, "changes": len(scenario)}
    except (InputError, OSError) as exc:
        logger.warning("list_saved: skipping %s: %s", path, exc)
        entry = None
    with _LISTED_LOCK:
        _LISTED[key] = (stamp, entry)
        _LISTED.move_to_end(key)
        while len(_LISTED) > _LISTED_MAX:
            _LISTED.popitem(last=False)
    return entry


def load_saved(geodata_dir: str | Path, region: str, slug: str) -> Scenario:
    """Load a saved scenario of a region.

    Raises
    ------
    InputError
        If the slug is invalid, the file is missing or not a scenario, or it belongs to
        another region.
    """
    path = scenario_path(geodata_dir, region, slug)
    if not path.is_file():
        msg = f"no saved scenario {slug!r} for region {region!r}"
        raise InputError(msg)
    try:
        scenario = read_saved(path)
    except OSError as exc:
        logger.warning("load_saved: %s: %s", path, exc)
        msg = f"the saved scenario {slug!r} cannot be read; the site's operator can check it"
        raise InputError(msg) from None
    if scenario.region not in (None, region):
        msg = f"{path.name} is a scenario of region {scenario.region!r}, not {region!r}"
        raise InputError(msg)
    if len(scenario) > MAX_CHANGES:
        msg = f"{path.name} holds {len(scenario)} changes; at most {MAX_CHANGES} can be loaded"
        raise InputError(msg)
    return Scenario(
        name=clean_name(scenario.name, fallback=slug), changes=scenario.changes, region=region
    )


# ---------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------

#: Export formats of the scenario layers: key -> label.
EXPORT_FORMATS: Final[dict[str, str]] = {"geojson": "GeoJSON", "csv": "CSV"}

#: Internal columns never exported (node indices could locate a generalized site).
_INTERNAL: Final[tuple[str, ...]] = ("node", "provider_row", "offset_s")


def export_zip(
    result: ScenarioResult, *, fmt: str, manifest: Mapping[str, Any] | None = None
) -> tuple[str, bytes]:
    """The scenario's layers (:meth:`ScenarioResult.to_layers`) as a zip to download.

    The zip holds ``scenario_sites``, ``scenario_areas`` and ``scenario_desert`` (GeoJSON in
    EPSG:4326, or CSV without geometry: sites with lon/lat, areas keyed by ``area_id``), the
    scenario itself (``scenario.json``) and a ``README.txt`` saying what was computed.

    Returns
    -------
    tuple
        The file name and the zip's bytes.

    Raises
    ------
    InputError
        If the format is not one of :data:`EXPORT_FORMATS`.
    """
    if fmt not in EXPORT_FORMATS:
        msg = f"unknown export format {fmt!r}; use {', '.join(EXPORT_FORMATS)}"
        raise InputError(msg)
    manifest = manifest or {}
    region = slugify(result.base.region or manifest.get("region") or "region")
    stem = f"{region}-{slugify(result.scenario.name)}-{result.category}-{result.mode}"
    layers = result.to_layers()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, gdf in layers.items():
            gdf = gdf.drop(columns=[c for c in _INTERNAL if c in gdf.columns])
            if fmt == "geojson":
                zf.writestr(f"{name}.geojson", gdf.to_json(drop_id=True, to_wgs84=True))
            else:
                table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
                zf.writestr(f"{name}.csv", safe_table(table).to_csv(index=False))
        zf.writestr("scenario.json", result.scenario.to_json() + "\n")
        zf.writestr("README.txt", _readme(result, manifest, fmt))
    logger.info("export_zip(%s, %s): %s bytes", stem, fmt, f"{buf.tell():,}")
    return f"{stem}-{fmt}.zip", buf.getvalue()


def _readme(result: ScenarioResult, manifest: Mapping[str, Any], fmt: str) -> str:
    s = result.summary()
    how = HOW.get(result.mode, result.mode)
    lines = [
        f"Access Atlas scenario: {result.scenario.name}",
        f"Region: {manifest.get('title') or result.base.region or ''}",
    ]
    if manifest.get("fictional"):
        lines.append("FICTIONAL: this region and its data are invented (demo).")
    lines += [
        f"Care: {CATEGORY_LABELS.get(result.category, result.category)}, {how}",
        f"Threshold: {result.threshold_min:g} min",
        f"Exported: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"Bundle build: {manifest.get('build_id', '')}",
        "",
        "Changes:",
        *[
            f"  {i + 1}. {describe_change(c, result.base.providers)}"
            for i, c in enumerate(result.scenario.changes)
        ],
        "",
        f"People gaining access within {result.threshold_min:g} min: {s['people_gained']:,}",
        f"People losing access within {result.threshold_min:g} min: {s['people_lost']:,}",
        f"Median travel time (min): {s['median_minutes_before']} before, "
        f"{s['median_minutes_after']} after",
        "",
        "Files:",
        f"  scenario_sites.{fmt}: sites of this care after the scenario (status open, added, "
        "closed)",
        f"  scenario_areas.{fmt}: every area, travel time (population-weighted mean minutes), "
        "share within the threshold and people beyond it, before and after",
        f"  scenario_desert.{fmt}: the desert before and after"
        + (" (polygons)" if fmt == "geojson" else " (population only; geometry in GeoJSON)"),
        "  scenario.json: the scenario, to load again in Access Atlas",
        "",
        "Privacy: overdose counts of 1-9 are never shown or exported (suppressed in the",
        "bundle); sites that asked not to be shown exactly have no coordinates here.",
        "People are counted from census population; travel times follow the methods page",
        "of the map (speed table, walking speed, snapping rules).",
    ]
    if fmt == "csv":
        lines += ["", "Spreadsheets:", *[f"  {line}" for line in spreadsheet_note()]]
    return "\n".join(lines) + "\n"


def json_ready(value: Any) -> Any:
    """Recursively JSON-safe (numpy scalars unwrapped, NaN as None)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return clean_value(value)
