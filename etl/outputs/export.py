"""Export a region bundle's layers for planners: zipped Shapefile, GeoPackage, GeoJSON or CSV.

Every export is one ``.zip`` in the export folder holding the data files and

``metadata.json`` / ``README.txt``
    Sources, dates and licences of every input (with OpenStreetMap's ODbL attribution),
    thresholds, speeds, congestion factor, the privacy (suppression) rules, the build time,
    the filters applied, and ``FICTIONAL`` for an invented region.
``data_dictionary.csv``
    One row per field: layer, field name as written, full name, type, unit and meaning.
    Shapefile field names are cut to 10 bytes (``t_methadone_drive`` becomes ``t_mth_dr``);
    this file maps them back.

Every CSV table (and the data dictionary) is written through
:func:`etl.outputs.cells.safe_table`: a text cell that would start a spreadsheet formula
(``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a leading ``'``; ``README.txt`` says so.
GeoJSON, Shapefile and GeoPackage values are written unchanged (GIS tools do not evaluate
them).

Formats
-------
shp
    One Shapefile per layer (``.shp .shx .dbf .prj .cpg``, UTF-8, EPSG:4326); a layer that
    mixes points and polygons (a generalized site) is split into ``<layer>_points`` and
    ``<layer>_polygons``. Tables without geometry are written as CSV.
gpkg
    One GeoPackage holding every layer (tables without geometry as attribute tables).
geojson
    One RFC 7946 GeoJSON file per layer, EPSG:4326.
csv
    One CSV table per layer without geometry (areas with their metrics, providers with
    lon/lat, ...), UTF-8.

Filters (``filters=``) select what the page shows: ``category`` and ``mode`` keep the rows of
those categories/modes and, in wide layers (``areas``, ``grid``), only the metric columns of
those categories/modes; ``bbox`` (lon/lat) keeps features that intersect it; ``minutes`` keeps
those isochrone bands. An export whose selection is empty raises :class:`ExportError` instead
of writing an empty file. Names that reach the file system (region, layers) are sanitised and
every path is checked to stay inside the export folder.
"""

from __future__ import annotations

import csv
import importlib
import json
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from etl import __version__
from etl._errors import ExportError
from etl.bundle.coverage import cover_distance, mode_coverage
from etl.bundle.store import Bundle
from etl.categories import CATEGORIES, CATEGORY_LABELS, MODE_LABELS, MODES
from etl.outputs.cells import safe_row, safe_table, spreadsheet_note
from etl.outputs.whatif import FIELDS as WHATIF_FIELDS
from etl.outputs.whatif import WhatIf, export_frames, scenario_label

logger = logging.getLogger(__name__)

Format = Literal["shp", "gpkg", "geojson", "csv"]


#: Export formats: key -> (label shown on buttons, tag used in the file name).
FORMATS: Final[dict[str, tuple[str, str]]] = {
    "shp": ("Shapefile (zipped)", "shapefile"),
    "gpkg": ("GeoPackage", "geopackage"),
    "geojson": ("GeoJSON (EPSG:4326)", "geojson"),
    "csv": ("CSV tables", "csv"),
}

#: Layers a bundle may hold, in export order (a bundle holds a subset).
KNOWN_LAYERS: Final[tuple[str, ...]] = (
    "providers", "areas", "counties", "isochrones", "deserts", "desert_blocked", "grid",
    "barriers", "sitable", "region", "people", "facilities",
)  # fmt: skip

#: Keys accepted in ``filters``.
FILTER_KEYS: Final[tuple[str, ...]] = ("category", "mode", "bbox", "minutes")

#: Longest text a dBASE field holds.
DBF_TEXT_MAX: Final[int] = 254

#: OpenStreetMap's attribution (ODbL 1.0).
OSM_ATTRIBUTION: Final[str] = (
    "Contains information from OpenStreetMap, © OpenStreetMap contributors, which is made "
    "available under the Open Database License (ODbL 1.0): "
    "https://www.openstreetmap.org/copyright. A database derived from it must be shared "
    "under the ODbL."
)

FICTIONAL_NOTICE: Final[str] = (
    "FICTIONAL: this region, its providers, people and numbers are invented for "
    "demonstration. Nothing here describes a real place."
)

_CAT_ABBR: Final[dict[str, str]] = {
    "methadone": "mth", "buprenorphine": "bup", "naltrexone": "ntx",
    "syringe_services": "ssp", "pharmacy": "phm", "naloxone": "nlx",
    "treatment_facility": "tfc",
}  # fmt: skip
_MODE_ABBR: Final[dict[str, str]] = {"drive": "dr", "walk": "wk"}
_METRIC_ABBR: Final[dict[str, str]] = {
    "t": "t", "share": "sh", "desert_people": "dp", "nearest": "nr", "deaths": "dth",
    "population": "pop", "capacity": "cap", "cap": "cap", "score": "sc", "access": "acc",
    "desert": "ds",
}  # fmt: skip
_WORD_ABBR: Final[dict[str, str]] = {
    "population": "pop", "covered": "cov", "uncovered": "uncov",
    "quality": "q", "source": "src", "detail": "det", "accepting": "accept",
    "threshold": "thresh",
    "suppressed": "supp", "unstable": "unst", "minutes": "min",
    "address": "addr", "generalized": "gen", "deaths": "dth", "per": "", "rate": "rate",
}  # fmt: skip

_METRIC_RE: Final[re.Pattern[str]] = re.compile(
    r"^(?P<metric>[a-z0-9_]+?)_(?P<cat>" + "|".join(sorted(CATEGORIES, key=len, reverse=True))
    + r")_(?P<mode>" + "|".join(MODES) + r")$"
)  # fmt: skip

# (unit, meaning) by field name; "{layer}" entries below override per layer.
_FIELDS: Final[dict[str, tuple[str, str]]] = {
    "id": ("", "stable site identifier (source:hash)"),
    "area_id": ("", "area identifier (the area file's id, e.g. a GEOID, or one generated)"),
    "name": ("", "name"),
    "name2": ("", "second name (doing business as)"),
    "unit": ("", "kind of area (block, block group, tract, ZIP, ward ...)"),
    "category": ("", "care category: " + ", ".join(CATEGORIES)),
    "services": ("", "every care category offered at the site, separated by ';'"),
    "address": ("", "street address"),
    "address2": ("", "address line 2"),
    "city": ("", "city"),
    "state": ("", "state (two-letter code)"),
    "zip": ("", "ZIP code"),
    "phone": ("", "telephone number"),
    "lon": ("degrees", "longitude, WGS84 (EPSG:4326)"),
    "lat": ("degrees", "latitude, WGS84 (EPSG:4326)"),
    "geocode_quality": ("", "how the location was found (source coordinates, address match ...)"),
    "source": ("", "input list the row came from"),
    "source_date": ("", "date of the input list"),
    "source_detail": ("", "rows of the input lists merged into this site"),
    "capacity": ("count", "capacity where known (e.g. prescribers at the site); 1 if unknown"),
    "medicaid": ("yes/no", "accepts Medicaid (empty: unknown)"),
    "telehealth": ("yes/no", "offers telehealth (empty: unknown)"),
    "languages": ("", "languages spoken"),
    "accepting_new": ("yes/no", "accepting new patients (empty: unknown)"),
    "hours": ("", "opening hours as published"),
    "naloxone": ("yes/no", "hands out naloxone (empty: unknown)"),
    "show_exact": ("yes/no", "the site may be shown at its exact location"),
    "generalized": ("yes/no", "location generalized to an area at the site's request"),
    "in_region": ("yes/no", "inside the region's outline"),
    "notes": ("", "notes"),
    "on_network": ("yes/no", "within the snap distance of a routable street"),
    "node_drive": ("", "index of the nearest node of the driving network"),
    "node_walk": ("", "index of the nearest node of the walking network"),
    "snap_m_drive": ("metres", "distance to the nearest node of the driving network"),
    "snap_m_walk": ("metres", "distance to the nearest node of the walking network"),
    "population": ("people", "resident population (census)"),
    "area_km2": ("km²", "area"),
    "population_covered": ("people", "people within the snap distance of the street network"),
    "population_uncovered": ("people", "people farther than the snap distance from any street"),
    "not_covered_drive": ("people", "people of the area the driving network does not cover"),
    "not_covered_walk": ("people", "people of the area the walking network does not cover"),
    "weight": ("people", "people represented by this point (dasymetric allocation)"),
    "fictional": ("yes/no", "the region is invented"),
    "mode": ("", "travel mode: " + ", ".join(MODES)),
    "minutes": ("minutes", "upper bound of the travel-time band"),
    "threshold_min": ("minutes", "desert threshold: farther than this is a desert"),
    "share": ("fraction 0-1", "share of the covered people beyond the threshold"),
    "label": ("", "plain-language description"),
    "h3": ("", "H3 cell index (hexadecimal)"),
    "fips": ("", "county FIPS code"),
    "deaths": ("deaths", "overdose deaths (counts 1-9 suppressed, empty)"),
    "rate_per_100k": ("per 100,000", "deaths per 100,000 people (empty where suppressed)"),
    "rate": ("per 100,000", "deaths per 100,000 people (empty where suppressed)"),
    "age_adjusted_rate": ("per 100,000", "age-adjusted deaths per 100,000 people"),
    "suppressed": ("yes/no", "the count is suppressed (1-9 deaths, or to protect one that is)"),
    "unstable": ("yes/no", "the rate rests on fewer than 20 deaths (NCHS: unstable)"),
    "period": ("", "years the counts cover"),
    "rule": ("", "siting rule"),
    "rule_text": ("", "text of the rule"),
    "legal_note": ("", "legal note on rules that single out treatment programs"),
    "h3_cell": ("", "H3 cell shown instead of the exact location of a generalized site"),
    "geoid": ("", "census GEOID"),
    "county": ("", "county name"),
    "year": ("", "year of the counts (empty for pooled periods)"),
    "rate_basis": ("", "crude or age-adjusted"),
    "provisional": ("yes/no", "counts are provisional"),
    "kind": ("", "kind of rule: zoning district table or buffer around places"),
    "status": ("", "what the rule says for a treatment program: prohibited or conditional"),
    "applies_to": ("", "the kind of site the rule applies to"),
    "text": ("", "the rule in plain language"),
    "citation": ("", "where the rule is written"),
    "distance_m": ("metres", "buffer distance of the rule"),
    "sources": ("", "places or zones the rule is drawn from"),
    "n_features": ("count", "features (places or zone polygons) behind the rule"),
    "caveat": ("", "limits of how the rule was mapped"),
    "note": ("", "note"),
}
_LAYER_FIELDS: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("isochrones", "population"): ("people", "people within the band (along streets)"),
    ("deserts", "population"): ("people", "people beyond the threshold (in the desert)"),
    ("region", "name"): ("", "region name"),
    ("people", "area_id"): ("", "census area the point belongs to"),
    ("counties", "population"): ("people", "county population"),
    ("barriers", "area_km2"): ("km²", "land where the rule blocks a new treatment program"),
    ("desert_blocked", "population"): ("people", "people in the desert on land the rule blocks"),
    ("desert_blocked", "area_km2"): ("km²", "desert land where the rule blocks new sites"),
    ("desert_blocked", "share"): ("fraction 0-1", "share of the desert's people on blocked land"),
    ("sitable", "name"): ("", "land where no rule prohibits a new treatment program"),
    ("areas", "area_km2"): ("km²", "land and water area"),
    ("transit_stops", "stop_id"): ("", "GTFS stop_id"),
    ("transit_stops", "stop_code"): ("", "the code riders see at the stop (GTFS stop_code)"),
    ("transit_stops", "name"): ("", "stop name as the transit agency gives it"),
    ("transit_stops", "description"): ("", "the agency's description of the stop"),
    ("transit_stops", "kind"): ("", "stop, or station (a group of platforms)"),
    ("transit_stops", "parent_station"): ("", "stop_id of the station a platform belongs to"),
    ("transit_stops", "wheelchair"): ("", "wheelchair boarding: yes, no or unknown"),
    ("transit_stops", "routes"): ("", "short names of the routes serving the stop"),
    ("transit_stops", "n_routes"): ("count", "routes serving the stop"),
    ("transit_stops", "routes_from"): (
        "", "where the routes come from: stop_times (timetable) or shapes (route lines "
        "within 30 m)"
    ),
}

#: Short care names for a view's one-line description ("Methadone, by car, …").
_VIEW_CARE: Final[dict[str, str]] = {
    "methadone": "Methadone", "buprenorphine": "Buprenorphine", "naltrexone": "Naltrexone",
    "syringe_services": "Syringe services", "pharmacy": "Pharmacy", "naloxone": "Naloxone",
    "treatment_facility": "Treatment facilities",
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# the view on screen: a chosen threshold, recomputed from the bundle's per-person times


@dataclass(frozen=True)
class DesertAt:
    """People and land beyond a chosen threshold for one (category, mode).

    Attributes
    ----------
    category, mode, threshold_min
        The view.
    within, beyond
        People on the street network within / beyond the threshold (``beyond`` includes
        people with no route), counted like the map page's summary.
    not_covered
        People points too far from a street to have a travel time.
    geometry
        The desert: fine street cells slower than the threshold, inside the region
        (EPSG:4326), as the pipeline draws it.
    area_beyond, area_share_within
        Per ``area_id``: people beyond the threshold, and the covered people's share within.
    """

    category: str
    mode: str
    threshold_min: float
    within: float
    beyond: float
    not_covered: float
    geometry: shapely.Geometry
    area_beyond: pd.Series
    area_share_within: pd.Series

    @property
    def share_beyond(self) -> float | None:
        """Share of the covered people beyond the threshold."""
        covered = self.within + self.beyond
        return self.beyond / covered if covered > 0 else None


_NOT_WORD: Final[re.Pattern[str]] = re.compile(r"[^0-9a-z]+")


def place_keys(providers: pd.DataFrame) -> pd.Series:
    """One key per distinct place: the normalised address, else the snapped location.

    The address (street, ZIP) is lower-cased with punctuation and spacing folded
    (``"240 Parsons Ave."`` = ``"240 parsons ave"``); a row without one (a site shown
    only as an area) is keyed by its street node, else its location to about a metre.
    """
    idx = providers.index

    def text(col: str) -> pd.Series:
        if col not in providers.columns:
            return pd.Series("", index=idx)
        return providers[col].fillna("").astype(str).str.lower().str.replace(
            _NOT_WORD, " ", regex=True).str.strip()  # fmt: skip

    street = text("address")
    keys = "a:" + street + "|" + text("zip").str[:5]
    if "node_drive" in providers.columns:
        node = pd.to_numeric(providers["node_drive"], errors="coerce")
        where = "n:" + node.astype("Int64").astype(str)
    elif {"lon", "lat"} <= set(providers.columns):
        where = ("p:" + pd.to_numeric(providers["lon"], errors="coerce").round(5).astype(str)
                 + "," + pd.to_numeric(providers["lat"], errors="coerce").round(5).astype(str))
    else:
        where = "r:" + pd.Series(range(len(idx)), index=idx).astype(str)
    return keys.where(street != "", where)


def count_places(providers: pd.DataFrame, category: str | None = None) -> tuple[int, int]:
    """``(places, services)``: distinct addresses and rows (of one category, or all)."""
    rows = providers if category is None else providers[providers["category"] == category]
    return int(place_keys(rows).nunique()), len(rows)


def view_text(category: str, mode: str, threshold_min: float | None) -> str:
    """The view in one line: ``"Methadone, by car, 15-minute threshold"``."""
    care = _VIEW_CARE.get(category, CATEGORY_LABELS.get(category, category))
    how = "by car" if mode == "drive" else "on foot" if mode == "walk" else mode
    if threshold_min is None:
        return f"{care}, {how}, no desert threshold"
    return f"{care}, {how}, {threshold_min:g}-minute threshold"


def region_outline(bundle: Bundle) -> shapely.Geometry | None:
    """The outline (WGS84) deserts are clipped to: the ``region`` layer, else the areas.

    Parameters
    ----------
    bundle
        An opened bundle.

    Returns
    -------
    shapely.Geometry or None
        The union of the layer's geometries; None for a bundle with neither layer.
    """
    region = "region" if "region" in bundle.layer_names else "areas"
    if region not in bundle.layer_names:
        return None
    return shapely.union_all(bundle.read_layer(region).to_crs("EPSG:4326").geometry)


def desert_at(
    bundle: Bundle,
    category: str,
    mode: str,
    threshold_min: float,
    *,
    outline: shapely.Geometry | None = None,
    samples_by_mode: dict[str, Any] | None = None,
) -> DesertAt:
    """The desert of one (category, mode) at any threshold, from the bundle's arrays.

    Each person is counted as the build and the map page count them
    (:func:`etl.engine.counting.people_times`: people farther than ``cover_m`` from the
    network are not covered), and the land is drawn as the build draws it
    (:func:`etl.engine.counting.desert_cells`: the street cells slower than the threshold plus
    the cells of every person counted in the desert), clipped to the region.

    Parameters
    ----------
    bundle
        An opened bundle.
    category, mode
        The pair.
    threshold_min
        The threshold, minutes.
    outline
        :func:`region_outline` of the bundle, when the caller holds it (computed once for
        several deserts); computed here when None.
    samples_by_mode
        Street samples (:func:`etl.engine.streets.sample_streets` of the bundle's networks)
        by mode, shared by the caller across several deserts: the mode's are taken from it,
        or made and put in it. None: made here for this desert alone.

    Raises
    ------
    ExportError
        For a threshold that is not a positive number, or a pair without travel times.
    """
    from etl.engine.counting import desert_cells, people_times
    from etl.engine.isochrones import cell_times, cells_to_polygon
    from etl.engine.streets import cells_of, sample_streets

    if not isinstance(threshold_min, (int, float)) or not 0 < float(threshold_min) < 1e4:
        msg = f"threshold must be a positive number of minutes, got {threshold_min!r}"
        raise ExportError(msg)
    threshold = float(threshold_min)
    arrays = bundle.access_arrays(mode)
    key = f"time_{category}"
    if key not in arrays:
        msg = (
            f"no travel times for {category} by {mode} in region "
            f"{bundle.manifest.get('region')!r} (no such sites); choose another category"
        )
        raise ExportError(msg)
    settings = bundle.manifest.get("settings", {})
    walk_mps = float(settings.get("walk_speed_kph", 4.8)) / 3.6
    people = bundle.read_layer("people")
    node_time = np.asarray(arrays[key], dtype=float)
    t = people_times(
        node_time,
        people[f"node_{mode}"].to_numpy(dtype=np.int64),
        people[f"snap_m_{mode}"].to_numpy(dtype=float),
        walk_speed_mps=walk_mps,
        cover_m=cover_distance(bundle.manifest),
    )
    covered = ~np.isnan(t)
    weight = people["weight"].to_numpy(dtype=float)
    within = covered & (t <= threshold * 60.0)
    beyond = covered & ~within
    frame = pd.DataFrame({
        "area": people["area_id"].to_numpy(),
        "cov": np.where(covered, weight, 0.0),
        "in": np.where(within, weight, 0.0),
        "out": np.where(beyond, weight, 0.0),
    })  # fmt: skip
    by_area = frame.groupby("area", sort=False)[["cov", "in", "out"]].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (by_area["in"] / by_area["cov"]).where(by_area["cov"] > 0)
    samples = None if samples_by_mode is None else samples_by_mode.get(mode)
    if samples is None:
        samples = sample_streets(bundle.network(mode))
        if samples_by_mode is not None:
            samples_by_mode[mode] = samples
    cells, best = cell_times(samples, node_time)
    person_cells = cells_of(
        people["lat"].to_numpy(dtype=float), people["lon"].to_numpy(dtype=float), samples.res
    )
    land = cells_to_polygon(
        desert_cells(cells, best, threshold * 60.0, person_cells, t, weight)
    )
    if outline is None:
        outline = region_outline(bundle)
    if outline is not None:
        land = shapely.intersection(land, outline)
    out = DesertAt(
        category=category, mode=mode, threshold_min=threshold,
        within=float(weight[within].sum()), beyond=float(weight[beyond].sum()),
        not_covered=float(weight[~covered].sum()), geometry=land,
        area_beyond=by_area["out"].round(1), area_share_within=share.round(4),
    )  # fmt: skip
    logger.info("desert_at: %s, %s people beyond, %s within", view_text(category, mode, threshold),
                f"{out.beyond:,.0f}", f"{out.within:,.0f}")  # fmt: skip
    return out


def at_threshold(
    bundle: Bundle, frames: Mapping[str, pd.DataFrame], desert: DesertAt
) -> dict[str, pd.DataFrame]:
    """Layers as exported, with one pair's desert, area counts and blocked land at ``desert``.

    The ``deserts`` row of the pair gets the recomputed land, people, share and threshold;
    ``areas`` its ``share_``/``desert_people_`` columns; ``desert_blocked`` its overlaps with
    the barriers, counting the people on blocked desert land. Other rows stay as built.
    """
    out = dict(frames)
    cat, mode, thr = desert.category, desert.mode, desert.threshold_min
    key = f"{cat}_{mode}"
    row = {
        "category": cat, "mode": mode, "threshold_min": thr, "population": round(desert.beyond),
        "share": None if desert.share_beyond is None else round(desert.share_beyond, 4),
        "label": f"{CATEGORY_LABELS.get(cat, cat)}: more than {thr:g} min "
                 f"{'by car' if mode == 'drive' else 'on foot'}",
    }  # fmt: skip
    if "deserts" in out:
        d = out["deserts"]
        others = d[~((d["category"] == cat) & (d["mode"] == mode))]
        new = gpd.GeoDataFrame([row], geometry=[desert.geometry], crs="EPSG:4326")
        out["deserts"] = gpd.GeoDataFrame(
            pd.concat([others.to_crs("EPSG:4326"), new], ignore_index=True),
            geometry="geometry", crs="EPSG:4326",
        )  # fmt: skip
    if "areas" in out and "area_id" in out["areas"].columns:
        a = out["areas"].copy()
        ids = a["area_id"]
        a[f"desert_people_{key}"] = ids.map(desert.area_beyond).fillna(0.0).to_numpy(float)
        a[f"share_{key}"] = ids.map(desert.area_share_within).to_numpy(float)
        out["areas"] = a
    if "desert_blocked" in out and "barriers" in bundle.layer_names:
        from etl.inputs.barriers import desert_and_blocked

        b = out["desert_blocked"]
        others = b[~((b["category"] == cat) & (b["mode"] == mode))].to_crs("EPSG:4326")
        people = bundle.read_layer("people")
        points = gpd.GeoDataFrame(
            {"weight": people["weight"].to_numpy(float)},
            geometry=gpd.points_from_xy(people["lon"], people["lat"]), crs="EPSG:4326",
        )  # fmt: skip
        single = gpd.GeoDataFrame([row], geometry=[desert.geometry], crs="EPSG:4326")
        crs = bundle.manifest.get("crs") or single.estimate_utm_crs()
        new = desert_and_blocked(single.to_crs(crs), bundle.read_layer("barriers"), people=points)
        out["desert_blocked"] = gpd.GeoDataFrame(
            pd.concat([others, new.to_crs("EPSG:4326")], ignore_index=True),
            geometry="geometry", crs="EPSG:4326",
        )  # fmt: skip
    return out


# --------------------------------------------------------------------------------------------
# public API


def export_layers(
    bundle: Bundle,
    out_dir: str | Path,
    *,
    layers: Sequence[str] | str | None = None,
    fmt: Format,
    filters: Mapping[str, Any] | None = None,
    threshold: float | None = None,
    scenario: str | WhatIf | None = None,
) -> Path:
    """Export layers of a bundle into one ``.zip`` with metadata and a data dictionary.

    Parameters
    ----------
    bundle
        The opened region bundle.
    out_dir
        The export folder (created if missing). Nothing is written outside it.
    layers
        Layer names, ``"all"`` or ``None`` for every layer present in the bundle.
    fmt
        ``"shp"``, ``"gpkg"``, ``"geojson"`` or ``"csv"``.
    filters
        Optional selection, keys from :data:`FILTER_KEYS` (see the module docstring).
    threshold
        The desert threshold on screen (minutes): the deserts, the areas' desert counts and
        the blocked desert land of every selected (category, mode) are recomputed at it
        (:func:`desert_at`), and ``metadata.json``/``README.txt`` name the view. None: the
        thresholds the bundle was built with.
    scenario
        The What-if scenario open on the page. A :class:`~etl.outputs.whatif.WhatIf` adds
        its layers (``scenario_sites``, ``scenario_areas``, ``scenario_desert``) and its
        changes and figures to ``metadata.json`` and ``README.txt``; a one-line text (a
        scenario that could not be evaluated) makes the files say their figures are the
        baseline.

    Returns
    -------
    pathlib.Path
        The ``.zip`` written, ``<out_dir>/<region>-<format>.zip`` (replaced atomically).

    Raises
    ------
    ExportError
        Unknown format, layer or filter (the message lists the valid ones), a selection with
        no rows, or a path that would leave ``out_dir``.
    """
    if fmt not in FORMATS:
        msg = f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}"
        raise ExportError(msg)
    names = resolve_layers(bundle, layers)
    clean_filters = validate_filters(filters)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    region = safe_name(str(bundle.manifest.get("region", "region")), fallback="region")
    target = safe_path(out_dir, f"{region}-{FORMATS[fmt][1]}.zip")

    raw = {name: bundle.read_layer(name) for name in names}
    views = _views(bundle, clean_filters, threshold)
    for desert in views:
        raw = at_threshold(bundle, raw, desert)
    frames: dict[str, pd.DataFrame] = {}
    empty: list[str] = []
    for name in names:
        frame = _scrub(select(raw[name], name, clean_filters), name)
        if len(frame) == 0:
            empty.append(name)
        else:
            frames[name] = frame
    if not frames:
        what = f" with filters {_filters_text(clean_filters)}" if clean_filters else ""
        msg = (
            f"nothing to export: {', '.join(names)} of region {region!r} hold no rows{what}; "
            "widen the selection (other categories, modes or map extent)"
        )
        raise ExportError(msg)
    if empty:
        logger.info("export_layers: no rows in %s after filters; left out", ", ".join(empty))
    if isinstance(scenario, WhatIf):
        frames.update(export_frames(scenario))
    _privacy_checks(frames)

    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as tmp:
        work = Path(tmp)
        writer = _WRITERS[fmt]
        thresholds = bundle.manifest.get("settings", {}).get("thresholds_min") or {}
        written, dictionary = writer(frames, work, region, thresholds)
        meta = export_metadata(bundle, layers=frames, fmt=fmt, filters=clean_filters,
                               omitted=empty)  # fmt: skip
        meta["view"] = _view_record(bundle, clean_filters, views, threshold, scenario)
        meta["files"] = sorted(written)
        (work / "metadata.json").write_text(json.dumps(meta, indent=2, default=str) + "\n",
                                            encoding="utf-8")  # fmt: skip
        (work / "README.txt").write_text(metadata_text(meta), encoding="utf-8")
        _write_dictionary(work / "data_dictionary.csv", dictionary)
        members = [*sorted(written), "data_dictionary.csv", "metadata.json", "README.txt"]
        partial = work / "export.zip"
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for member in members:
                zf.write(safe_path(work, member), arcname=_arcname(member))
        os.replace(partial, target)
    logger.info(
        "export_layers: %s (%s) with %s; %s bytes",
        target, fmt, ", ".join(f"{k} {len(v):,}" for k, v in frames.items()),
        f"{target.stat().st_size:,}",
    )  # fmt: skip
    return target


def _pairs(bundle: Bundle, filters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (category, mode) pairs with travel times that the filters select."""
    stages = bundle.manifest.get("stages", {})
    built = stages.get("access", {}).get("categories")
    if built is None:
        built = list(stages.get("providers", {}).get("by_category", {}))
    modes = bundle.manifest.get("settings", {}).get("modes") or list(MODES)
    cats = [c for c in CATEGORIES if c in built and c in (filters.get("category") or built)]
    return [(c, m) for m in MODES if m in modes and m in (filters.get("mode") or modes)
            for c in cats]  # fmt: skip


def _views(
    bundle: Bundle, filters: Mapping[str, Any], threshold: float | None
) -> list[DesertAt]:
    """The selected pairs recomputed at the threshold on screen (none without one)."""
    if threshold is None:
        return []
    pairs = _pairs(bundle, filters)
    if not pairs:
        msg = (
            f"no travel times for the selected care and travel mode in region "
            f"{bundle.manifest.get('region')!r}, so there is no desert at {threshold:g} min; "
            "choose a category with sites"
        )
        raise ExportError(msg)
    # The outline and each mode's street samples are the same for every pair: made once.
    outline = region_outline(bundle)
    samples_by_mode: dict[str, Any] = {}
    return [
        desert_at(bundle, c, m, threshold, outline=outline, samples_by_mode=samples_by_mode)
        for c, m in pairs
    ]


def _view_record(
    bundle: Bundle,
    filters: Mapping[str, Any],
    views: Sequence[DesertAt],
    threshold: float | None,
    scenario: str | WhatIf | None,
) -> dict[str, Any]:
    """What ``metadata.json`` says about the view: pairs, threshold, people, scenario."""
    summary = bundle.manifest.get("stages", {}).get("access", {}).get("summary", {})
    pairs: list[dict[str, Any]] = []
    if views:
        for d in views:
            pairs.append({
                "category": d.category, "mode": d.mode, "threshold_min": d.threshold_min,
                "people_within": round(d.within), "people_in_desert": round(d.beyond),
                "text": view_text(d.category, d.mode, d.threshold_min),
            })  # fmt: skip
    else:
        for c, m in _pairs(bundle, filters):
            entry = summary.get(f"{c}_{m}", {})
            thr = entry.get("threshold_min")
            pairs.append({
                "category": c, "mode": m, "threshold_min": thr,
                "people_within": entry.get("people_within"),
                "people_in_desert": entry.get("people_in_desert"),
                "text": view_text(c, m, thr),
            })  # fmt: skip
    return {
        "text": "; ".join(p["text"] for p in pairs) if len(pairs) <= 3 else (
            f"{len(pairs)} care × travel pairs"
            + (f", {threshold:g}-minute threshold" if threshold is not None else
               ", the thresholds the bundle was built with")
        ),
        "threshold_min": threshold,
        "threshold_source": "chosen on the page" if threshold is not None else "region config",
        "pairs": pairs,
        "scenario": scenario_label(scenario),
        "scenario_note": (
            None if not scenario or isinstance(scenario, WhatIf) else
            f"A What-if scenario was open ({scenario}); these figures are the baseline, "
            "without it: download the scenario from its own panel."
        ),
        "what_if": scenario.record() if isinstance(scenario, WhatIf) else None,
        "what_if_text": scenario.readme_lines() if isinstance(scenario, WhatIf) else None,
    }  # fmt: skip


def resolve_layers(bundle: Bundle, layers: Sequence[str] | str | None) -> list[str]:
    """Check requested layer names against the bundle; return them in export order.

    Raises
    ------
    ExportError
        For an empty request, an unknown name (listing the valid ones) or a layer this
        bundle was built without.
    """
    present = [n for n in KNOWN_LAYERS if n in bundle.layer_names]
    present += [n for n in bundle.layer_names if n not in present]
    if layers is None or (isinstance(layers, str) and layers.strip().lower() == "all"):
        return present
    if isinstance(layers, str):
        layers = [p for p in (s.strip() for s in layers.split(",")) if p]
    requested = list(dict.fromkeys(layers))
    if not requested:
        msg = f"no layer selected; choose from: {', '.join(present)} (or 'all')"
        raise ExportError(msg)
    for name in requested:
        if name in present:
            continue
        if name in KNOWN_LAYERS:
            msg = (
                f"layer {name!r} is not in this bundle (region {bundle.manifest.get('region')!r}"
                f" was built without it); layers present: {', '.join(present)}"
            )
        else:
            msg = f"unknown layer {name!r}; valid layers: {', '.join(present)} (or 'all')"
        raise ExportError(msg)
    return [n for n in present if n in requested]


def validate_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check and normalise export filters (lists for category/mode/minutes, a 4-tuple bbox).

    Raises
    ------
    ExportError
        Naming the bad key or value and the valid ones.
    """
    if not filters:
        return {}
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if key not in FILTER_KEYS:
            msg = f"unknown filter {key!r}; valid filters: {', '.join(FILTER_KEYS)}"
            raise ExportError(msg)
        if value is None or (isinstance(value, (list, tuple, set)) and not value):
            continue
        if key in ("category", "mode"):
            valid = CATEGORIES if key == "category" else MODES
            values = [value] if isinstance(value, str) else list(value)
            bad = [v for v in values if v not in valid]
            if bad:
                msg = f"unknown {key} {bad[0]!r}; valid: {', '.join(valid)}"
                raise ExportError(msg)
            out[key] = values
        elif key == "minutes":
            values = [value] if isinstance(value, (int, float)) else list(value)
            try:
                out[key] = [float(v) for v in values]
            except (TypeError, ValueError) as exc:
                msg = f"filter 'minutes' must be numbers, got {value!r}"
                raise ExportError(msg) from exc
        else:
            out[key] = _check_bbox(value)
    return out


def select(frame: pd.DataFrame, layer: str, filters: Mapping[str, Any]) -> pd.DataFrame:
    """Apply validated filters to one layer (rows and, for wide layers, metric columns)."""
    if not filters:
        return frame
    keep = np.ones(len(frame), dtype=bool)
    cats, modes = filters.get("category"), filters.get("mode")
    if cats is not None and "category" in frame.columns:
        keep &= frame["category"].isin(cats).to_numpy()
    if modes is not None and "mode" in frame.columns:
        keep &= frame["mode"].isin(modes).to_numpy()
    if "minutes" in filters and layer == "isochrones" and "minutes" in frame.columns:
        keep &= np.isin(frame["minutes"].to_numpy(dtype=float), filters["minutes"])
    if "bbox" in filters:
        keep &= _in_bbox(frame, filters["bbox"])
    out = frame.loc[keep]
    drop = []
    for col in out.columns:
        m = _METRIC_RE.match(str(col))
        if m is None:
            continue
        if (cats is not None and m["cat"] not in cats) or (
            modes is not None and m["mode"] not in modes
        ):
            drop.append(col)
    return out.drop(columns=drop).reset_index(drop=True)


def export_metadata(
    bundle: Bundle,
    *,
    layers: Mapping[str, pd.DataFrame] | Iterable[str] = (),
    fmt: str = "",
    filters: Mapping[str, Any] | None = None,
    omitted: Sequence[str] = (),
) -> dict[str, Any]:
    """Build the metadata record that travels with every export (and every printed map).

    Parameters
    ----------
    bundle
        The region bundle.
    layers
        The exported layers (frames, for row counts) or their names.
    fmt
        The export format.
    filters
        The filters applied.
    omitted
        Layers requested but left out because no row matched.

    Returns
    -------
    dict
        JSON-serialisable: region, title, fictional, build, inputs (source, date, licence,
        file name, checksum; never a local path), settings, privacy rules, attribution.
    """
    m = bundle.manifest
    inputs = [
        {
            "role": rec.get("role", ""),
            "source": rec.get("source", ""),
            "date": rec.get("date", ""),
            "licence": rec.get("licence") or "not recorded in the region config",
            "file": _basename(rec.get("path", "")),
            "sha256": rec.get("sha256", ""),
        }
        for rec in m.get("inputs", [])
    ]
    settings = m.get("settings", {})
    layer_info: dict[str, Any] = {}
    if isinstance(layers, Mapping):
        for name, frame in layers.items():
            columns = [c for c in frame.columns if c != "geometry"]
            info: dict[str, Any] = {"rows": len(frame), "columns": columns}
            if isinstance(frame, gpd.GeoDataFrame):
                info["crs"] = "EPSG:4326"
                info["geometry_types"] = sorted(set(frame.geometry.geom_type.dropna()))
            layer_info[name] = info
    else:
        layer_info = {name: {} for name in layers}
    fictional = bool(m.get("fictional"))
    meta: dict[str, Any] = {
        "title": f"{m.get('title', m.get('region', ''))}{' — FICTIONAL' if fictional else ''}",
        "region": m.get("region"),
        "fictional": fictional,
        "fictional_notice": FICTIONAL_NOTICE if fictional else None,
        "built_at": m.get("built_at"),
        "build_id": m.get("build_id"),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "software": f"Access Atlas {m.get('software', {}).get('access-atlas', __version__)}",
        "format": fmt,
        "crs": "EPSG:4326 (WGS84 longitude/latitude)",
        "layers": layer_info,
        "omitted_layers": {name: "no rows match the filters" for name in omitted},
        "filters": dict(filters or {}),
        "inputs": inputs,
        "attribution": attribution_lines(m),
        "settings": {
            "direction": settings.get("direction", "from people to care"),
            "modes": settings.get("modes"),
            "thresholds_min": settings.get("thresholds_min"),
            "bands_min": settings.get("bands_min"),
            "drive_speeds_kph": settings.get("drive_speeds_kph"),
            "walk_speed_kph": settings.get("walk_speed_kph"),
            "use_maxspeed": settings.get("use_maxspeed"),
            "congestion_factor": settings.get("congestion_factor"),
            "max_snap_m": settings.get("max_snap_m"),
            "cover_m": settings.get("cover_m"),
            "h3_resolution": settings.get("h3_resolution"),
        },
        "coverage": coverage_by_mode(bundle),
        "off_network": _off_network(m),
        "privacy": privacy_rules(),
        "not_exported": "node_<mode> columns (indices into the bundle's network arrays)",
        "method": (
            "Travel time from people to the nearest site of each category along the street "
            "network (multi-source Dijkstra on the reversed graph) at the speeds listed, times "
            "the congestion factor; the walk to and from the nearest street node is added. "
            "Area values are population-weighted over the area's people. A desert is the "
            "people whose time exceeds the category's threshold."
        ),
    }
    return meta


def coverage_by_mode(bundle: Bundle) -> dict[str, dict[str, Any]]:
    """:func:`mode_coverage` for every mode of the bundle that has it."""
    modes = bundle.manifest.get("settings", {}).get("modes") or list(MODES)
    found = {mode: mode_coverage(bundle, mode) for mode in modes}
    return {mode: c for mode, c in found.items() if c is not None}


def _off_network(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    off = manifest.get("stages", {}).get("providers", {}).get("off_network")
    return list(off) if isinstance(off, list) else []


def attribution_lines(manifest: Mapping[str, Any]) -> list[str]:
    """One line per input (source, date, licence), with OpenStreetMap's ODbL attribution."""
    lines = []
    osm = False
    for rec in manifest.get("inputs", []):
        source = rec.get("source") or _basename(rec.get("path", "")) or rec.get("role", "input")
        date = f" ({rec['date']})" if rec.get("date") else ""
        licence = f"; licence: {rec.get('licence') or 'not recorded in the region config'}"
        lines.append(f"{source}{date}{licence}")
        text = f"{rec.get('role', '')} {source} {rec.get('licence', '')}".lower()
        osm = osm or "openstreetmap" in text or "odbl" in text
    if osm:
        lines.append(OSM_ATTRIBUTION)
    return lines


def privacy_rules() -> list[str]:
    """Return the privacy rules applied in the ETL, in plain language."""
    try:
        privacy = importlib.import_module("etl.bundle.privacy")
        min_shown = int(getattr(privacy, "MIN_SHOWN", 10))
        min_stable = int(getattr(privacy, "MIN_STABLE", 20))
    except ImportError:  # pragma: no cover - privacy module absent
        min_shown, min_stable = 10, 20
    return [
        f"Overdose death counts from 1 to {min_shown - 1} are never shown, exported or "
        "derivable (CDC WONDER rule); where one could be recovered by subtraction, another "
        "value is suppressed too. A suppressed value is empty, never zero. A rate published "
        "without a count is kept unless a count in that range follows from it and the "
        "county's population, and hidden where no population is known to check it.",
        f"Rates built on fewer than {min_stable} deaths are marked unstable (NCHS).",
        "Syringe services sites that asked not to be shown exactly appear only as a "
        "generalized area, without address or coordinates.",
    ]


def metadata_text(meta: Mapping[str, Any]) -> str:
    """Render the metadata record as a plain-text README."""
    out = []
    if meta.get("fictional"):
        out += ["*** FICTIONAL DATA ***", str(meta.get("fictional_notice")), ""]
    out += [
        f"Access Atlas export: {meta.get('title')}",
        f"Region: {meta.get('region')}    Format: {meta.get('format')}    CRS: {meta.get('crs')}",
        f"Bundle built: {meta.get('built_at')} (build {meta.get('build_id')})",
        f"Exported: {meta.get('exported_at')} by {meta.get('software')}",
    ]
    view = meta.get("view") or {}
    if view.get("pairs"):
        out.append(f"View: {view.get('text')}")
        for p in view["pairs"]:
            if p.get("people_in_desert") is not None:
                today = " (today, without the What-if scenario)" if view.get("what_if") else ""
                out.append(f"  {p['text']}: {p['people_in_desert']:,} people in the desert, "
                           f"{p['people_within']:,} within reach{today}")  # fmt: skip
    if view.get("scenario_note"):
        out.append(str(view["scenario_note"]))
    out += [str(line) for line in view.get("what_if_text") or []]
    out += [
        "",
        "Layers:",
    ]
    for name, info in meta.get("layers", {}).items():
        out.append(f"  {name}: {info.get('rows', '?')} rows")
    for name, why in meta.get("omitted_layers", {}).items():
        out.append(f"  {name}: not written ({why})")
    if meta.get("filters"):
        out.append(f"Filters: {_filters_text(meta['filters'])}")
    out += ["", "Field names and units: data_dictionary.csv", "", "Sources and licences:"]
    out += [f"  - {line}" for line in meta.get("attribution", [])]
    s = meta.get("settings", {})
    out += ["", "Method:", f"  {meta.get('method', '')}", f"  Direction: {s.get('direction')}"]
    thresholds = s.get("thresholds_min") or {}
    if thresholds:
        out.append("  Desert thresholds (minutes):")
        for cat, by_mode in thresholds.items():
            parts = ", ".join(f"{MODE_LABELS.get(k, k).lower()} {v:g}" for k, v in by_mode.items())
            out.append(f"    {CATEGORY_LABELS.get(cat, cat)}: {parts}")
    if s.get("drive_speeds_kph"):
        speeds = ", ".join(f"{k} {v:g}" for k, v in s["drive_speeds_kph"].items())
        out.append(f"  Driving speeds (km/h): {speeds}")
    out.append(f"  Walking speed: {s.get('walk_speed_kph')} km/h; "
               f"congestion factor: {s.get('congestion_factor')} "
               "(travel times multiplied by it; 1 = free-flow)")  # fmt: skip
    coverage = meta.get("coverage") or {}
    if coverage:
        out.append("  Who is counted: a person counts for a mode only where its nearest street "
                   "node is within the distance below; the rest are not covered (never in a "
                   "desert or a band):")  # fmt: skip
        for mode, c in coverage.items():
            out.append(f"    {MODE_LABELS.get(mode, mode)} (within {c['cover_m']:g} m): "
                       f"{c['covered']:,} of {c['people']:,} people covered, "
                       f"{c['not_covered']:,} not covered")  # fmt: skip
    off = meta.get("off_network") or []
    if off:
        out.append(f"  Sites not routed (more than {s.get('max_snap_m')} m from a mode's "
                   "streets):")  # fmt: skip
        for r in off:
            far = f"{r['snap_m'] / 1000:.1f} km" if r.get("snap_m") is not None else "no street"
            out.append(f"    {r['name']} ({r['category']}): not routed "
                       f"{'by car' if r['mode'] == 'drive' else 'on foot'}, {far} from the "
                       "street network")  # fmt: skip
    out += ["", "Privacy:"] + [f"  - {rule}" for rule in meta.get("privacy", [])]
    out += ["", "Spreadsheets:", *[f"  {line}" for line in spreadsheet_note()]]
    if meta.get("fictional"):
        out += ["", "*** FICTIONAL DATA ***"]
    return "\n".join(out) + "\n"


def data_dictionary(
    layer: str,
    columns: Sequence[str],
    short: Mapping[str, str] | None = None,
    dtypes: Mapping[str, str] | None = None,
    *,
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
) -> list[dict[str, str]]:
    """Rows of the data dictionary for one layer.

    Parameters
    ----------
    layer
        Layer name.
    columns
        Full field names (without ``geometry``).
    short
        Full name -> name as written (Shapefile); identity if omitted.
    dtypes
        Full name -> type description.
    thresholds
        Desert thresholds in minutes per category and mode (printed beside the meaning).

    Returns
    -------
    list of dict
        Keys ``layer, field, full_name, type, unit, description``.
    """
    rows = []
    for col in columns:
        unit, meaning = describe_field(layer, col, thresholds=thresholds)
        rows.append({
            "layer": layer,
            "field": (short or {}).get(col, col),
            "full_name": col,
            "type": (dtypes or {}).get(col, ""),
            "unit": unit,
            "description": meaning,
        })  # fmt: skip
    return rows


def describe_field(
    layer: str, column: str, *, thresholds: Mapping[str, Mapping[str, float]] | None = None
) -> tuple[str, str]:
    """Return ``(unit, meaning)`` of a field, in plain language."""
    if (layer, column) in _LAYER_FIELDS:
        return _LAYER_FIELDS[(layer, column)]
    if (layer, column) in WHATIF_FIELDS:
        return WHATIF_FIELDS[(layer, column)]
    if layer == "facilities":  # re-entry fields (etl.outputs.reentry)
        from etl.outputs.reentry import extra_field

        found = extra_field(layer, column, thresholds)
        if found is not None:
            return found
    m = _METRIC_RE.match(column)
    if m is not None:
        label = CATEGORY_LABELS.get(m["cat"], m["cat"]).lower()
        how = "by car" if m["mode"] == "drive" else "on foot"
        limit = (thresholds or {}).get(m["cat"], {}).get(m["mode"])
        within = f"{limit:g} minutes" if limit is not None else "the desert threshold"
        metric = m["metric"]
        if metric == "t" and layer == "grid":
            return "minutes", f"travel time {how} from the cell's streets to the nearest {label}"
        if metric == "t":
            return "minutes", (f"population-weighted mean travel time {how} from the area's "
                               f"people to the nearest {label}")  # fmt: skip
        if metric == "share":
            return "fraction 0-1", (f"share of the area's people within {within} {how} of "
                                    f"the nearest {label}")  # fmt: skip
        if metric == "desert_people":
            return "people", f"people in the area more than {within} {how} from any {label}"
        if metric == "nearest":
            return "", f"id of the {label} nearest to most of the area's people {how}"
        if metric == "cap":  # capacity-aware access (etl.engine.capacity)
            return "per 10,000 people", (
                f"capacity of {label} sites (practitioners; places where a list gives them) "
                f"per 10,000 people, {how}: Gaussian two-step floating catchment, catchment "
                f"{within}; mean over the area's covered people (empty: none covered)"
            )
        return "", f"{metric.replace('_', ' ')} for {label} {how}"
    walk = re.fullmatch(r"walk_min_(?P<cat>[a-z_]+)", column)
    if walk is not None:
        label = CATEGORY_LABELS.get(walk["cat"], walk["cat"]).lower()
        return "minutes", f"walk from the stop to the nearest {label} (empty: not reachable)"
    if column in _FIELDS:
        return _FIELDS[column]
    return "", "as given by the source (see metadata.json)"


def shapefile_names(columns: Sequence[str], *, limit: int = 10) -> dict[str, str]:
    """Map field names to unique names of at most ``limit`` bytes (dBASE), readable.

    Category, mode and metric words are abbreviated first (``desert_people_methadone_walk``
    → ``dp_mth_wk``), then names are cut; a collision gets a numeric suffix.
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    for col in columns:
        base = _abbreviate(str(col))
        base = re.sub(r"[^A-Za-z0-9_]", "_", base).strip("_") or "field"
        base = _cut(base, limit)
        name, k = base, 1
        while name.lower() in used:
            suffix = f"_{k}"
            name = _cut(base, limit - len(suffix)) + suffix
            k += 1
        used.add(name.lower())
        out[col] = name
    return out


def safe_name(name: str, *, fallback: str = "export") -> str:
    """Turn any text into a file-name stem without path separators or leading dots."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("._-")[:80]
    return cleaned or fallback


def safe_path(root: str | Path, relative: str) -> Path:
    """Join ``relative`` to ``root`` and check that the result stays inside ``root``.

    Raises
    ------
    ExportError
        If the resolved path leaves ``root`` (``..``, an absolute path, a symlink out).
    """
    root_r = Path(root).resolve()
    path = (root_r / relative).resolve()
    if path == root_r or not path.is_relative_to(root_r):
        msg = f"refusing to write {relative!r}: it resolves outside the export folder {root_r}"
        raise ExportError(msg)
    return path


# --------------------------------------------------------------------------------------------
# writers


_Written = tuple[list[str], list[dict[str, str]]]
_Thresholds = Mapping[str, Mapping[str, float]]


def _write_shp(
    frames: Mapping[str, pd.DataFrame], work: Path, region: str, thresholds: _Thresholds
) -> _Written:
    written: list[str] = []
    dictionary: list[dict[str, str]] = []
    stems = _stems(frames)
    for layer, frame in frames.items():
        stem = stems[layer]
        gdf = _as_geo(frame)
        if gdf is None:
            written.append(_write_csv_file(frame, work, f"{stem}.csv"))
            dictionary += _rows(layer, frame, list(frame.columns), thresholds)
            continue
        columns = [c for c in gdf.columns if c != gdf.geometry.name]
        short = shapefile_names(columns)
        parts = _split_families(gdf)
        for family, part in parts.items():
            name = stem if len(parts) == 1 else f"{stem}_{family}"
            out = _dbf_ready(part[columns]).rename(columns=short)
            out = gpd.GeoDataFrame(out, geometry=part.geometry.to_numpy(), crs="EPSG:4326")
            path = safe_path(work, f"{name}.shp")
            pyogrio.write_dataframe(out, path, driver="ESRI Shapefile", encoding="UTF-8",
                                    promote_to_multi=family != "points")  # fmt: skip
            for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                if not path.with_suffix(ext).exists():
                    msg = f"Shapefile writer left out {name}{ext}"
                    raise ExportError(msg)
                written.append(f"{name}{ext}")
        dictionary += _rows(layer, gdf, columns, thresholds, short)
    return written, dictionary


def _write_gpkg(
    frames: Mapping[str, pd.DataFrame], work: Path, region: str, thresholds: _Thresholds
) -> _Written:
    file = f"{region}.gpkg"
    path = safe_path(work, file)
    dictionary: list[dict[str, str]] = []
    stems = _stems(frames)
    for layer, frame in frames.items():
        gdf = _as_geo(frame)
        data = _text_ready(gdf if gdf is not None else frame)
        kwargs: dict[str, Any] = {}
        if gdf is not None:
            family = set(_split_families(gdf))
            kwargs["promote_to_multi"] = len(family) == 1 and "points" not in family
        pyogrio.write_dataframe(data, path, layer=stems[layer],
                                driver="GPKG", append=path.exists(), **kwargs)  # fmt: skip
        columns = [c for c in frame.columns if c != "geometry"]
        dictionary += _rows(layer, frame, columns, thresholds)
    return [file], dictionary


def _write_geojson(
    frames: Mapping[str, pd.DataFrame], work: Path, region: str, thresholds: _Thresholds
) -> _Written:
    written: list[str] = []
    dictionary: list[dict[str, str]] = []
    stems = _stems(frames)
    for layer, frame in frames.items():
        stem = stems[layer]
        gdf = _as_geo(frame)
        if gdf is None:
            gdf = gpd.GeoDataFrame(frame, geometry=[None] * len(frame), crs="EPSG:4326")
        file = f"{stem}.geojson"
        pyogrio.write_dataframe(_text_ready(gdf.to_crs("EPSG:4326")), safe_path(work, file),
                                driver="GeoJSON", layer_options={"RFC7946": "YES"})  # fmt: skip
        written.append(file)
        columns = [c for c in frame.columns if c != "geometry"]
        dictionary += _rows(layer, frame, columns, thresholds)
    return written, dictionary


def _write_csv(
    frames: Mapping[str, pd.DataFrame], work: Path, region: str, thresholds: _Thresholds
) -> _Written:
    written: list[str] = []
    dictionary: list[dict[str, str]] = []
    stems = _stems(frames)
    for layer, frame in frames.items():
        table = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
        written.append(_write_csv_file(table, work, f"{stems[layer]}.csv"))
        dictionary += _rows(layer, table, list(table.columns), thresholds)
    return written, dictionary


_Writer = Callable[[Mapping[str, pd.DataFrame], Path, str, _Thresholds], _Written]
_WRITERS: Final[dict[str, _Writer]] = {
    "shp": _write_shp,
    "gpkg": _write_gpkg,
    "geojson": _write_geojson,
    "csv": _write_csv,
}


# --------------------------------------------------------------------------------------------
# helpers


def _stems(frames: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """Return a safe, unique file stem per layer (``../../evil`` → ``evil``)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for layer in frames:
        base = safe_name(layer, fallback="layer")
        stem, k = base, 1
        while stem.lower() in used or stem.lower() in ("metadata", "readme", "data_dictionary"):
            stem, k = f"{base}_{k}", k + 1
        used.add(stem.lower())
        out[layer] = stem
    return out


def _scrub(frame: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Drop internal network indices; clear location fields of generalized sites.

    ``node_<mode>`` columns index the bundle's private network arrays and mean nothing
    outside it. A site shown only as a generalized area must not carry coordinates, an
    address or a network snap in any export, whatever the bundle holds.
    """
    internal = [c for c in frame.columns if re.fullmatch(r"node_[a-z]+", str(c))]
    out = frame.drop(columns=internal)
    if "generalized" not in out.columns:
        return out
    hidden = out["generalized"].fillna(False).to_numpy(dtype=bool)
    if not hidden.any():
        return out
    try:
        pattern = re.compile(importlib.import_module("etl.bundle.privacy").LOCATION_PATTERN, re.I)
    except (ImportError, AttributeError):  # pragma: no cover - privacy module absent
        pattern = re.compile(r"^(lon|lat|x|y)$|^(address|zip|snap|geocode)", re.I)
    geom = out.geometry.name if isinstance(out, gpd.GeoDataFrame) else None
    out = out.copy()
    cleared = 0
    for col in out.columns:
        if col == geom or not pattern.search(str(col)):
            continue
        leak = hidden & out[col].notna().to_numpy()
        if leak.any():
            if out[col].dtype != object and not pd.api.types.is_extension_array_dtype(out[col]):
                out[col] = out[col].astype("float64" if pd.api.types.is_numeric_dtype(out[col])
                                           else object)  # fmt: skip
            out.loc[leak, col] = None
            cleared += int(leak.sum())
    if cleared:
        logger.info("export_layers: %s: cleared %d location values of %d generalized sites",
                    layer, cleared, int(hidden.sum()))  # fmt: skip
    return out


def _privacy_checks(frames: Mapping[str, pd.DataFrame]) -> None:
    """Run the privacy module's checks when it offers them (it raises on a leak)."""
    try:
        privacy = importlib.import_module("etl.bundle.privacy")
    except ImportError:  # pragma: no cover - privacy module absent
        return
    for hook in ("assert_no_small_counts", "assert_no_exact_points"):
        fn = getattr(privacy, hook, None)
        if callable(fn):
            fn(dict(frames))


def _as_geo(frame: pd.DataFrame) -> gpd.GeoDataFrame | None:
    """Return the frame as a GeoDataFrame in EPSG:4326 (points from lon/lat for tables)."""
    if isinstance(frame, gpd.GeoDataFrame):
        return frame.to_crs("EPSG:4326") if frame.crs is not None else frame.set_crs("EPSG:4326")
    if {"lon", "lat"} <= set(frame.columns):
        geom = gpd.points_from_xy(frame["lon"], frame["lat"], crs="EPSG:4326")
        return gpd.GeoDataFrame(frame, geometry=geom, crs="EPSG:4326")
    return None


_FAMILY: Final[dict[str, str]] = {
    "Point": "points", "MultiPoint": "points", "LineString": "lines",
    "MultiLineString": "lines", "LinearRing": "lines", "Polygon": "polygons",
    "MultiPolygon": "polygons",
}  # fmt: skip


def _split_families(gdf: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    """Split a layer by geometry family; collections keep their dominant family's parts."""
    geoms = gdf.geometry.to_numpy()
    kinds = np.array([_FAMILY.get(g.geom_type, "") if g is not None and not g.is_empty else ""
                      for g in geoms], dtype=object)  # fmt: skip
    present = [f for f in ("points", "lines", "polygons") if (kinds == f).any()]
    if not present:
        present = ["polygons"]
    main = max(present, key=lambda f: int((kinds == f).sum()))
    fixed = np.array([_only_family(g, main) if k == "" else g
                      for g, k in zip(geoms, kinds, strict=True)], dtype=object)  # fmt: skip
    kinds = np.where(kinds == "", main, kinds)
    out = {}
    for family in present if present else [main]:
        sel = kinds == family
        part = gdf.loc[sel].copy()
        part = part.set_geometry(gpd.GeoSeries(fixed[sel], index=part.index, crs=gdf.crs))
        out[family] = part
    return out


def _only_family(geom: Any, family: str) -> Any:
    """Keep the parts of a (collection) geometry that belong to ``family``; None if none."""
    if geom is None or geom.is_empty:
        return None
    parts = [p for p in shapely.get_parts(geom) if _FAMILY.get(p.geom_type) == family]
    if not parts:
        return None
    if family == "polygons":
        return shapely.union_all(parts)
    if family == "lines":
        return shapely.MultiLineString(parts)
    return shapely.MultiPoint(parts)


def _text_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn lists, dicts and arrays into JSON text and datetimes into ISO text."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out, gpd.GeoDataFrame) and col == out.geometry.name:
            continue
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            out[col] = s.dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object).where(s.notna(), None)
        elif s.dtype == object and s.map(_is_nested).any():
            out[col] = s.map(_json_text)
    return out


def _is_nested(value: Any) -> bool:
    return isinstance(value, (list, dict, tuple, np.ndarray))


def _json_text(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return json.dumps(value, default=str) if _is_nested(value) else value


def _dbf_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cut to the dBASE limit (254 bytes of UTF-8), booleans as 0/1 integers."""
    out = _text_ready(frame)
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_bool_dtype(s):
            out[col] = s.astype("Int64")
        elif pd.api.types.is_string_dtype(s) or s.dtype == object:
            out[col] = s.map(lambda v: _cut_bytes(v, DBF_TEXT_MAX) if isinstance(v, str) else v)
    return out


def _cut_bytes(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")


def _write_csv_file(frame: pd.DataFrame, work: Path, file: str) -> str:
    table = _text_ready(pd.DataFrame(frame.drop(columns="geometry", errors="ignore")))
    table = safe_table(table)  # no live spreadsheet formulas (etl.outputs.cells)
    table.to_csv(safe_path(work, file), index=False, encoding="utf-8", lineterminator="\n")
    return file


def _rows(
    layer: str,
    frame: pd.DataFrame,
    columns: list[str],
    thresholds: _Thresholds,
    short: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    return data_dictionary(layer, columns, short, _types(frame[columns]), thresholds=thresholds)


def _write_dictionary(path: Path, rows: list[dict[str, str]]) -> None:
    fields = ["layer", "field", "full_name", "type", "unit", "description"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(safe_row(r) for r in rows)


def _types(frame: pd.DataFrame) -> dict[str, str]:
    out = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s):
            out[col] = "boolean (1 = yes, 0 = no)"
        elif pd.api.types.is_integer_dtype(s):
            out[col] = "integer"
        elif pd.api.types.is_float_dtype(s):
            out[col] = "number"
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[col] = "date-time (ISO 8601)"
        else:
            out[col] = "text"
    return out


def _abbreviate(name: str, limit: int = 10) -> str:
    m = _METRIC_RE.match(name)
    if m is not None:
        metric = _METRIC_ABBR.get(m["metric"], m["metric"])
        return f"{metric}_{_CAT_ABBR[m['cat']]}_{_MODE_ABBR[m['mode']]}"
    walk = re.fullmatch(r"walk_min_(?P<cat>[a-z_]+)", name)
    if walk is not None and walk["cat"] in _CAT_ABBR:
        return f"wk_min_{_CAT_ABBR[walk['cat']]}"
    words = name.split("_")
    # Abbreviate the longest words first, only as far as needed.
    for i in sorted(range(len(words)), key=lambda k: -len(words[k])):
        if len("_".join(w for w in words if w).encode("utf-8")) <= limit:
            break
        words[i] = _MODE_ABBR.get(words[i], _WORD_ABBR.get(words[i], words[i]))
    return "_".join(w for w in words if w)


def _cut(name: str, limit: int) -> str:
    return _cut_bytes(name, limit).rstrip("_") or name[:1]


def _check_bbox(value: Any) -> tuple[float, float, float, float]:
    try:
        bbox = tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        msg = f"filter 'bbox' must be four numbers (west, south, east, north), got {value!r}"
        raise ExportError(msg) from exc
    if len(bbox) != 4 or not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
        msg = (
            "filter 'bbox' must be (west, south, east, north) with west < east and "
            f"south < north, got {value!r}"
        )
        raise ExportError(msg)
    if not (-180 <= bbox[0] <= 180 and -180 <= bbox[2] <= 180 and -90 <= bbox[1] <= 90
            and -90 <= bbox[3] <= 90):  # fmt: skip
        msg = f"filter 'bbox' is in degrees of longitude/latitude (EPSG:4326), got {value!r}"
        raise ExportError(msg)
    return bbox  # type: ignore[return-value]


def _in_bbox(frame: pd.DataFrame, bbox: tuple[float, float, float, float]) -> np.ndarray:
    if isinstance(frame, gpd.GeoDataFrame):
        geoms = frame.to_crs("EPSG:4326").geometry.to_numpy()
        return np.asarray(shapely.intersects(geoms, shapely.box(*bbox)), dtype=bool)
    if {"lon", "lat"} <= set(frame.columns):
        lon, lat = frame["lon"].to_numpy(dtype=float), frame["lat"].to_numpy(dtype=float)
        return (lon >= bbox[0]) & (lon <= bbox[2]) & (lat >= bbox[1]) & (lat <= bbox[3])
    return np.ones(len(frame), dtype=bool)


def _filters_text(filters: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{k}={', '.join(str(v) for v in val) if isinstance(val, (list, tuple)) else val}"
        for k, val in filters.items()
    )


def _basename(path: str) -> str:
    """Return the file name of an input path (``zip://a.zip!b.shp`` → ``a.zip!b.shp``)."""
    text = str(path).removeprefix("zip://")
    return re.split(r"[\\/]", text)[-1] if text else ""


def _arcname(member: str) -> str:
    """Return a zip member name: no folders, no ``..``, no absolute paths."""
    name = Path(member).name
    if name in ("", ".", "..") or name != member:
        msg = f"refusing to add {member!r} to the export zip: not a plain file name"
        raise ExportError(msg)
    return name
