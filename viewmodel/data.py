"""Turn a region bundle into what the map draws: compact GeoJSON and live access numbers.

Everything here is pure (bundle in, bytes or numbers out) and cached per bundle build, so the
app's Flask routes and callbacks stay thin. Nothing in this module imports Dash.

GeoJSON is written with coordinates rounded to :data:`PRECISION` decimals (about 1 m) and
served gzip-compressed by URL; the browser styles and filters it with the functions in
``assets/atlas.js`` (through ``hideout``), so a filter or threshold change never resends
geometry.

The desert follows the threshold live through *minute bands*: for a (category, mode) the
fine H3 cells along the streets (the same cells the ETL's isochrones and deserts are built
from, :func:`etl.engine.isochrones.cell_times`) are grouped by their best travel time rounded up to
the minute, and each group is unioned into one polygon (:func:`time_bands`). The desert at a
threshold of T whole minutes is then exactly the bands above T, which is what
:func:`etl.engine.isochrones.desert_polygon` draws for T; the browser only restyles the bands.

Settings
--------
PRECISION : int
    Decimals kept in GeoJSON coordinates.
MAX_BAND_MIN : int
    Minute bands run from 1 to this; slower cells fall into one band ``MAX_BAND_MIN + 1``;
    cells from which no site is reached get :data:`NO_ROUTE`.
MEMO_SIZE : int
    Answers to user inputs (a summary per threshold, …) kept per bundle build
    (:meth:`RegionData.memo`); a few hundred small dicts.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import logging
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import shapely

from etl._errors import BundleError
from etl.bundle.coverage import cover_distance, mode_coverage
from etl.bundle.regions import open_region
from etl.bundle.store import Bundle
from etl.categories import CATEGORIES, DEFAULT_BANDS_MIN, MODES
from etl.engine.access import beyond_network
from etl.engine.counting import drawn_cell_times, people_times
from etl.engine.isochrones import cell_times, cells_to_polygon
from etl.engine.network import ModeNetwork
from etl.engine.streets import StreetSamples, cells_of, sample_streets
from etl.fips import geoid_counties
from etl.inputs.counties import NO_COUNTY_TEXT, region_overdose
from etl.inputs.counties import county_label as county_label  # re-exported for layouts
from etl.inputs.counties import overdose_text as overdose_text  # re-exported for layouts

logger = logging.getLogger(__name__)

PRECISION: Final[int] = 5
MAX_BAND_MIN: Final[int] = 60
NO_ROUTE: Final[int] = 9999
MEMO_SIZE: Final[int] = 512

#: Provider attributes a user may filter on, with their labels (shown where a bundle has them).
ATTRIBUTE_FILTERS: Final[dict[str, str]] = {
    "medicaid": "Accepts Medicaid",
    "telehealth": "Offers telehealth",
    "accepting_new": "Accepting new patients",
    "naloxone": "Has naloxone",
}

#: Street classes of the offline basemap: class -> (group, drawing rank; 0 is the widest).
STREET_CLASSES: Final[dict[str, tuple[str, int]]] = {
    "motorway": ("major", 0),
    "motorway_link": ("major", 1),
    "trunk": ("major", 0),
    "trunk_link": ("major", 1),
    "primary": ("major", 1),
    "primary_link": ("major", 2),
    "secondary": ("major", 2),
    "secondary_link": ("major", 3),
    "tertiary": ("major", 3),
    "tertiary_link": ("major", 3),
    "unclassified": ("minor", 4),
    "residential": ("minor", 4),
    "living_street": ("minor", 4),
    "road": ("minor", 4),
    "service": ("minor", 5),
}

#: Properties of the providers layer that the map shows (others stay on the server).
PROVIDER_FIELDS: Final[tuple[str, ...]] = (
    "id",
    "name",
    "category",
    "services",
    "address",
    "address2",
    "city",
    "state",
    "zip",
    "phone",
    "geocode_quality",
    "source",
    "source_date",
    "capacity",
    "medicaid",
    "telehealth",
    "languages",
    "accepting_new",
    "hours",
    "naloxone",
    "on_network",
)

#: Overdose fields carried by the areas or counties layer (etl.inputs.overdose's counties schema).
OVERDOSE_FIELDS: Final[tuple[str, ...]] = (
    "deaths",
    "population",
    "rate_per_100k",
    "rate_basis",
    "age_adjusted_rate",
    "period",
    "source",
    "suppressed",
    "unstable",
    "provisional",
    "county",
    "state",
    "fips",
)


# ---------------------------------------------------------------------------------------
# GeoJSON encoding
# ---------------------------------------------------------------------------------------


def clean_value(value: Any) -> Any:
    """Return a JSON-safe Python value (numpy scalars unwrapped, NaN/NA as None)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple, np.ndarray)):
        return [clean_value(v) for v in value]
    return value


def feature_collection(
    geometries: Sequence[shapely.Geometry] | np.ndarray,
    properties: Sequence[dict[str, Any]],
    *,
    precision: int = PRECISION,
) -> bytes:
    """Encode geometries and their properties as a GeoJSON FeatureCollection (UTF-8 bytes).

    Coordinates are snapped to a grid of ``10**-precision`` degrees; features whose
    geometry is missing or collapses to nothing are left out.

    Parameters
    ----------
    geometries
        Shapely geometries in WGS84.
    properties
        One dict per geometry.
    precision
        Decimals kept.

    Returns
    -------
    bytes
        The GeoJSON text.
    """
    geoms = np.asarray(geometries, dtype=object)
    if len(geoms) != len(properties):
        msg = f"feature_collection: {len(geoms)} geometries but {len(properties)} property rows"
        raise ValueError(msg)
    if len(geoms) == 0:
        return b'{"type":"FeatureCollection","features":[]}'
    missing = np.array([g is None for g in geoms])
    geoms = np.where(missing, shapely.Point(), geoms)
    snapped = shapely.set_precision(geoms, 10.0**-precision)
    keep = ~missing & ~shapely.is_empty(snapped)
    texts = shapely.to_geojson(snapped[keep])
    props = [p for p, k in zip(properties, keep, strict=True) if k]
    parts = [
        '{"type":"Feature","properties":'
        + json.dumps({k: clean_value(v) for k, v in p.items()}, separators=(",", ":"))
        + ',"geometry":'
        + t
        + "}"
        for p, t in zip(props, texts, strict=True)
    ]
    return ('{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}").encode()


def frame_properties(frame: pd.DataFrame, columns: Iterable[str]) -> list[dict[str, Any]]:
    """Rows of ``frame`` as dicts of the given columns that exist, JSON-safe."""
    cols = [c for c in columns if c in frame.columns]
    records = frame[cols].astype(object).to_dict("records")
    return [{k: clean_value(v) for k, v in r.items()} for r in records]


@dataclass(frozen=True)
class Payload:
    """A GeoJSON layer ready to serve: gzip body, an ETag and the uncompressed size."""

    body: bytes
    etag: str
    raw_bytes: int
    features: int

    @classmethod
    def from_geojson(cls, data: bytes) -> Payload:
        """Compress ``data`` and fingerprint it."""
        features = data.count(b'"type":"Feature"')
        return cls(
            body=gzip.compress(data, compresslevel=6, mtime=0),
            etag=hashlib.sha1(data, usedforsecurity=False).hexdigest()[:20],
            raw_bytes=len(data),
            features=features,
        )

    def json(self) -> dict[str, Any]:
        """Decode the payload (for tests and tools)."""
        return json.loads(gzip.decompress(self.body))


# ---------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------


def providers_geojson(providers: pd.DataFrame, *, max_snap_m: float = 1500.0) -> bytes:
    """The providers layer as points.

    A site the ETL generalized (``generalized`` true: shown only as the H3 cell holding it)
    becomes the cell's centre with ``approx`` true; the map draws it as an area, never as an
    exact marker. A site farther than ``max_snap_m`` from a mode's streets carries
    ``not_routed``: one line per mode ("not routed by car: 1.8 km from the street network"),
    shown in its details.
    """
    geoms = np.asarray(providers.geometry.to_numpy(), dtype=object)
    approx = (
        providers["generalized"].fillna(False).astype(bool).to_numpy()
        if "generalized" in providers
        else np.zeros(len(providers), dtype=bool)
    )
    not_point = np.array([g is not None and g.geom_type != "Point" for g in geoms], dtype=bool)
    approx = approx | not_point
    if approx.any():
        geoms = geoms.copy()
        geoms[approx] = shapely.centroid(geoms[approx])
    props = frame_properties(providers, PROVIDER_FIELDS)
    for p, a in zip(props, approx, strict=True):
        p["approx"] = bool(a)
        for key in ("medicaid", "telehealth", "accepting_new", "naloxone", "on_network"):
            if key in p and p[key] is not None:
                p[key] = _truthy(p[key])
    for p, lines in zip(props, not_routed_lines(providers, max_snap_m), strict=True):
        if lines:
            p["not_routed"] = lines
    return feature_collection(geoms, props)


def not_routed_lines(providers: pd.DataFrame, max_snap_m: float) -> list[list[str]]:
    """Per site: "not routed by car: 1.8 km from the street network" for each mode it is not.

    The pipeline's rule (:func:`etl.engine.access.beyond_network`).
    """
    out: list[list[str]] = [[] for _ in range(len(providers))]
    for mode, how in (("drive", "by car"), ("walk", "on foot")):
        col = f"snap_m_{mode}"
        if col not in providers.columns:
            continue
        snap = pd.to_numeric(providers[col], errors="coerce").to_numpy(dtype=float)
        for i in np.flatnonzero(beyond_network(providers, mode, max_snap_m=max_snap_m)):
            far = (
                f"{snap[i] / 1000:.1f} km from the street network"
                if np.isfinite(snap[i])
                else "no street network nearby"
            )
            out[i].append(f"not routed {how}: {far}")
    return out


def _truthy(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"true", "yes", "y", "1", "t"}:
        return True
    if text in {"false", "no", "n", "0", "f"}:
        return False
    return None


def attribute_filters(providers: pd.DataFrame) -> dict[str, str]:
    """The attribute filters that apply to this providers layer (some site has the attribute)."""
    out = {}
    for key, label in ATTRIBUTE_FILTERS.items():
        if key in providers.columns and any(_truthy(v) for v in providers[key].dropna()):
            out[key] = label
    return out


def simplified(geoms: np.ndarray, tolerance_deg: float) -> np.ndarray:
    """Simplify polygons (topology kept) for display."""
    return shapely.simplify(np.asarray(geoms, dtype=object), tolerance_deg, preserve_topology=True)


def areas_geojson(areas: pd.DataFrame, *, tolerance_deg: float = 0.00008) -> bytes:
    """Census areas with population, travel times per category × mode and overdose fields."""
    keep = ["area_id", "name", "unit", "population", "population_covered", "population_uncovered"]
    keep += [
        c
        for c in areas.columns
        if c.startswith(("t_", "share_", "desert_people_", "nearest_", "not_covered_", "cap_"))
    ]
    keep += [c for c in OVERDOSE_FIELDS if c in areas.columns and c not in keep]
    props = frame_properties(areas, keep)
    for p in props:
        for k, v in list(p.items()):
            if isinstance(v, float):
                p[k] = round(v, 3 if k.startswith("share_") else 2 if k.startswith("cap_") else 1)
    return feature_collection(simplified(areas.geometry.to_numpy(), tolerance_deg), props)


def capacity_info(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the build's capacity-aware access measured (``stages.access.capacity``; {} if none).

    Returns
    -------
    dict
        ``method``, ``decay``, ``unit``, ``per_people`` and ``by``: ``"<category>_<mode>"`` →
        its figures with ``catchment_min`` (:func:`etl.engine.capacity.capacity_access`).
    """
    cap = manifest.get("stages", {}).get("access", {}).get("capacity") or {}
    return cap if cap.get("by") else {}


def table_geojson(frame: pd.DataFrame, *, tolerance_deg: float = 0.00005) -> bytes:
    """Any polygon or point layer with all its non-geometry columns."""
    cols = [c for c in frame.columns if c != frame.geometry.name]
    props = frame_properties(frame, cols)
    geoms = frame.geometry.to_numpy()
    if tolerance_deg:
        geoms = simplified(geoms, tolerance_deg)
    return feature_collection(geoms, props)


def time_bands(
    cells: np.ndarray, best_s: np.ndarray, *, max_min: int = MAX_BAND_MIN
) -> tuple[list[int], list[shapely.Geometry]]:
    """Group fine cells by their travel time rounded up to the minute, one polygon per group.

    Parameters
    ----------
    cells
        Fine H3 cells (uint64) with streets.
    best_s
        Shortest travel time from a street in each cell, seconds (``inf`` if no route).
    max_min
        Minutes beyond this go into one band ``max_min + 1``.

    Returns
    -------
    minutes : list of int
        The band of each polygon: 1..max_min, ``max_min + 1``, or :data:`NO_ROUTE`.
    polygons : list of shapely.Geometry
        WGS84 (multi)polygons.
    """
    best_s = np.asarray(best_s, dtype=float)
    with np.errstate(invalid="ignore"):
        minute = np.ceil(best_s / 60.0)
    minute = np.where(np.isfinite(minute), np.clip(minute, 0, max_min + 1), NO_ROUTE).astype(int)
    out_m, out_g = [], []
    for m in np.unique(minute):
        out_m.append(int(m))
        out_g.append(cells_to_polygon(cells[minute == m]))
    return out_m, out_g


def bands_geojson(minutes: Sequence[int], polygons: Sequence[shapely.Geometry]) -> bytes:
    """Minute bands as GeoJSON (property ``m``: the band's minute)."""
    return feature_collection(list(polygons), [{"m": int(m)} for m in minutes])


def street_lines(
    net: ModeNetwork, *, group: str, tolerance_deg: float = 0.00004
) -> tuple[list[int], list[shapely.Geometry]]:
    """Streets of one basemap group as merged, simplified lines, one geometry per rank.

    Parameters
    ----------
    net
        A mode network (drive where built: the streets people know).
    group
        ``"major"`` or ``"minor"`` (see :data:`STREET_CLASSES`).
    tolerance_deg
        Simplification tolerance in degrees.

    Returns
    -------
    ranks : list of int
        Drawing rank of each geometry (0 widest).
    lines : list of shapely.Geometry
        MultiLineStrings in WGS84.
    """
    lo = np.minimum(net.tail, net.head).astype(np.int64)
    hi = np.maximum(net.tail, net.head).astype(np.int64)
    _, first = np.unique(lo * net.n_nodes + hi, return_index=True)
    a, b = lo[first], hi[first]
    classes = np.array(net.highway_classes, dtype=object)[net.highway[first]]
    rank = np.array(
        [
            STREET_CLASSES.get(c, ("", -1))[1] if STREET_CLASSES.get(c, ("",))[0] == group else -1
            for c in classes
        ]
    )
    ranks, lines = [], []
    for r in sorted(set(rank.tolist()) - {-1}):
        m = rank == r
        coords = np.stack(
            [
                np.column_stack([net.lon[a[m]], net.lat[a[m]]]),
                np.column_stack([net.lon[b[m]], net.lat[b[m]]]),
            ],
            axis=1,
        )
        merged = shapely.line_merge(shapely.multilinestrings(shapely.linestrings(coords)))
        parts = shapely.get_parts(merged)
        parts = shapely.simplify(parts, tolerance_deg, preserve_topology=False)
        parts = parts[~shapely.is_empty(parts)]
        ranks.append(int(r))
        lines.append(shapely.multilinestrings(parts))
    return ranks, lines


def streets_geojson(net: ModeNetwork, *, group: str) -> bytes:
    """The offline basemap's streets of one group (property ``r``: drawing rank)."""
    ranks, lines = street_lines(net, group=group)
    return feature_collection(lines, [{"r": r} for r in ranks])


def street_labels(
    streets: pd.DataFrame, *, max_labels: int = 60, min_length_deg: float = 0.01
) -> pd.DataFrame:
    """Label points for the longest named streets: one per name, at its longest piece's middle.

    Parameters
    ----------
    streets
        ``name`` and ``geometry`` (WGS84 lines), e.g. from
        :func:`etl.inputs.geocode.read_osm_reference` or a bundle's ``street_names`` layer.
    max_labels
        Most labels returned (the longest streets first).
    min_length_deg
        Streets shorter than this in total (degrees, ~1 km) are not labelled.

    Returns
    -------
    pandas.DataFrame
        ``name``, ``lon``, ``lat``, ``angle`` (degrees, text rotation), ``length``.
    """
    if streets is None or len(streets) == 0:
        return pd.DataFrame(columns=["name", "lon", "lat", "angle", "length"])
    frame = pd.DataFrame(
        {"name": streets["name"].astype(str), "geometry": list(streets["geometry"])}
    )
    frame["length"] = shapely.length(np.asarray(frame["geometry"].to_numpy(), dtype=object))
    totals = frame.groupby("name")["length"].sum().sort_values(ascending=False)
    totals = totals[totals >= min_length_deg].head(max_labels)
    rows = []
    for name in totals.index:
        geoms = np.asarray(frame.loc[frame["name"] == name, "geometry"].to_numpy(), dtype=object)
        merged = shapely.line_merge(shapely.union_all(geoms))
        parts = shapely.get_parts(merged)
        longest = parts[int(np.argmax(shapely.length(parts)))]
        mid = shapely.line_interpolate_point(longest, 0.5, normalized=True)
        a = shapely.line_interpolate_point(longest, 0.45, normalized=True)
        b = shapely.line_interpolate_point(longest, 0.55, normalized=True)
        dx = (b.x - a.x) * math.cos(math.radians(mid.y))
        angle = -math.degrees(math.atan2(b.y - a.y, dx))
        if angle > 90:
            angle -= 180
        elif angle < -90:
            angle += 180
        rows.append(
            {
                "name": name,
                "lon": mid.x,
                "lat": mid.y,
                "angle": round(angle, 1),
                "length": float(totals[name]),
            }
        )
    return pd.DataFrame(rows, columns=["name", "lon", "lat", "angle", "length"])


def labels_geojson(labels: pd.DataFrame) -> bytes:
    """Label points as GeoJSON (properties ``name``, ``angle`` and ``k``: 0 for the longest)."""
    geoms = (
        shapely.points(labels["lon"].to_numpy(float), labels["lat"].to_numpy(float))
        if len(labels)
        else []
    )
    props = frame_properties(labels, ["name", "angle"])
    for k, p in enumerate(props):
        p["k"] = k
    return feature_collection(geoms, props)


# ---------------------------------------------------------------------------------------
# Live access numbers
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdSummary:
    """People within and beyond a threshold (weights are people)."""

    threshold_min: float
    within: float
    beyond: float
    no_route: float
    not_covered: float
    median_min: float | None

    @property
    def covered(self) -> float:
        """People the street network covers."""
        return self.within + self.beyond

    @property
    def share_within(self) -> float | None:
        """Share of covered people within the threshold."""
        return self.within / self.covered if self.covered > 0 else None


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float | None:
    """Weighted median of the finite values (inf counts as larger than everything)."""
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    ok = ~np.isnan(values) & (weights > 0)
    if not ok.any():
        return None
    v, w = values[ok], weights[ok]
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    k = int(np.searchsorted(cum, cum[-1] / 2.0))
    med = float(v[order][min(k, len(v) - 1)])
    return med if math.isfinite(med) else math.inf


def threshold_summary(
    times_s: np.ndarray, weights: np.ndarray, threshold_min: float
) -> ThresholdSummary:
    """Count people within and beyond ``threshold_min`` minutes.

    Parameters
    ----------
    times_s
        Seconds per person (NaN: not covered; inf: no route), from :func:`people_times`.
    weights
        People per point.
    threshold_min
        The threshold.

    Returns
    -------
    ThresholdSummary
    """
    t = np.asarray(times_s, dtype=float)
    w = np.asarray(weights, dtype=float)
    covered = ~np.isnan(t)
    median = weighted_median(t[covered] / 60.0, w[covered])
    return _threshold_summary(t, w, threshold_min, median)


def _threshold_summary(
    t: np.ndarray, w: np.ndarray, threshold_min: float, median: float | None
) -> ThresholdSummary:
    """:func:`threshold_summary` with the median (which no threshold changes) given."""
    covered = ~np.isnan(t)
    within = covered & (t <= threshold_min * 60.0)
    return ThresholdSummary(
        threshold_min=float(threshold_min),
        within=float(w[within].sum()),
        beyond=float(w[covered & ~within].sum()),
        no_route=float(w[covered & np.isinf(t)].sum()),
        not_covered=float(w[~covered].sum()),
        median_min=None if median is None else round(median, 2),
    )


def time_histogram(
    times_s: np.ndarray, weights: np.ndarray, *, step_min: int = 5, max_min: int = MAX_BAND_MIN
) -> list[dict[str, Any]]:
    """People per travel-time bin: ``[0, step)``, ``[step, 2 step)``, …, over ``max_min``, no route.

    Returns
    -------
    list of dict
        ``lo``, ``hi`` (minutes; ``hi`` None for the open bins), ``label``, ``people``.
    """
    t = np.asarray(times_s, dtype=float) / 60.0
    w = np.asarray(weights, dtype=float)
    covered = ~np.isnan(t)
    t, w = t[covered], w[covered]
    edges = np.arange(0, max_min + step_min, step_min)
    finite = np.isfinite(t)
    counts, _ = np.histogram(np.minimum(t[finite], max_min), bins=edges, weights=w[finite])
    # np.histogram closes the last bin on the right; people exactly at max_min stay there.
    over = float(w[finite & (t > max_min)].sum())
    counts[-1] -= over
    bins = [
        {"lo": int(lo), "hi": int(hi), "label": f"{int(lo)}–{int(hi)}", "people": float(c)}
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    bins.append({"lo": max_min, "hi": None, "label": f"over {max_min}", "people": over})
    bins.append({"lo": None, "hi": None, "label": "no route", "people": float(w[~finite].sum())})
    return bins


def band_people(
    times_s: np.ndarray, weights: np.ndarray, bands_min: Sequence[float]
) -> list[dict[str, Any]]:
    """People by isochrone band: within the first band, between bands, beyond the last.

    Returns
    -------
    list of dict
        ``label`` and ``people``; the not-covered people are not included.
    """
    t = np.asarray(times_s, dtype=float) / 60.0
    w = np.asarray(weights, dtype=float)
    covered = ~np.isnan(t)
    out, lo = [], 0.0
    for b in bands_min:
        m = covered & (t > lo) & (t <= b) if lo > 0 else covered & (t <= b)
        out.append(
            {
                "label": f"{lo:g}–{b:g} min" if lo > 0 else f"≤ {b:g} min",
                "people": float(w[m].sum()),
            }
        )
        lo = float(b)
    out.append({"label": f"over {lo:g} min", "people": float(w[covered & ~(t <= lo)].sum())})
    return out


def area_desert_share(
    times_s: np.ndarray, weights: np.ndarray, area_ids: np.ndarray, threshold_min: float
) -> pd.Series:
    """Share of each area's covered people beyond the threshold (index: area id)."""
    t = np.asarray(times_s, dtype=float)
    w = np.asarray(weights, dtype=float)
    covered = ~np.isnan(t)
    beyond = covered & ~(t <= threshold_min * 60.0)
    frame = pd.DataFrame(
        {
            "area": np.asarray(area_ids),
            "cov": np.where(covered, w, 0.0),
            "out": np.where(beyond, w, 0.0),
        }
    )
    g = frame.groupby("area", sort=False)[["cov", "out"]].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        share = g["out"] / g["cov"]
    return share.where(g["cov"] > 0)


def deaths_in_deserts(
    areas: pd.DataFrame, desert_share: pd.Series, *, majority: float = 0.5
) -> dict[str, Any] | None:
    """Overdose deaths in areas where most covered people are beyond the threshold.

    Only counts the areas layer's shown ``deaths`` (the ETL has already suppressed counts
    from 1 to 9); areas whose count is suppressed are counted separately, never guessed.

    Returns
    -------
    dict or None
        ``deaths``, ``areas`` (desert areas), ``suppressed_areas``, ``period``, ``basis``;
        None when the areas layer carries no overdose deaths.
    """
    if "deaths" not in areas.columns:
        return None
    share = desert_share.reindex(areas["area_id"].to_numpy())
    desert = share.to_numpy(dtype=float) > majority
    deaths = pd.to_numeric(areas["deaths"], errors="coerce").to_numpy(dtype=float)
    suppressed = (
        areas["suppressed"].fillna(False).astype(bool).to_numpy()
        if "suppressed" in areas.columns
        else np.zeros(len(areas), dtype=bool)
    )
    shown = desert & ~suppressed & np.isfinite(deaths)
    period = areas["period"].dropna().astype(str).unique().tolist() if "period" in areas else []
    basis = (
        areas["rate_basis"].dropna().astype(str).unique().tolist() if "rate_basis" in areas else []
    )
    return {
        "deaths": float(deaths[shown].sum()),
        "areas": int(desert.sum()),
        "suppressed_areas": int((desert & (suppressed | ~np.isfinite(deaths))).sum()),
        "period": ", ".join(period[:3]),
        "basis": ", ".join(basis[:3]),
    }


def class_breaks(values: np.ndarray, *, k: int = 5) -> list[float]:
    """Quantile class breaks (k - 1 inner breaks) rounded to two significant figures."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return []
    qs = np.quantile(v, np.linspace(0, 1, k + 1)[1:-1])
    out: list[float] = []
    for q in qs:
        if q == 0:
            r = 0.0
        else:
            digits = 1 - math.floor(math.log10(abs(q)))
            r = round(float(q), digits)
        if not out or r > out[-1]:
            out.append(r)
    return out


# ---------------------------------------------------------------------------------------
# Per-region cache
# ---------------------------------------------------------------------------------------


@dataclass
class RegionData:
    """A region bundle opened for the app, with everything derived from it cached.

    One object per bundle build (a rebuilt bundle is a new object), shared by the threads
    of a process. Build with :func:`region_data`.
    """

    bundle: Bundle
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _memo: OrderedDict[Any, Any] = field(default_factory=OrderedDict, repr=False)
    # its own lock: `cached` holds `_lock` while it builds, which may take seconds
    _memo_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def manifest(self) -> dict[str, Any]:
        """The bundle's manifest."""
        return self.bundle.manifest

    @property
    def region(self) -> str:
        """Region name."""
        return str(self.manifest.get("region", self.bundle.path.name))

    @property
    def build_id(self) -> str:
        """The build id (changes when the bundle is rebuilt)."""
        return str(self.manifest.get("build_id", self.bundle.path.name))

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """Return ``make()`` computed once per key."""
        try:
            return self._cache[key]
        except KeyError:
            pass
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    def memo(self, key: Any, make: Callable[[], Any], *, size: int = MEMO_SIZE) -> Any:
        """Return ``make()`` for ``key``, keeping the ``size`` most recently used results.

        For answers that depend on a user's input (a threshold, a URL): bounded, unlike
        :meth:`cached`. ``make`` runs outside the lock, so a slow one never blocks other
        keys; two threads missing the same key at once may both compute it (same result).
        """
        with self._memo_lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        value = make()
        with self._memo_lock:
            self._memo[key] = value
            self._memo.move_to_end(key)
            while len(self._memo) > size:
                self._memo.popitem(last=False)
        return value

    # -- bundle contents ----------------------------------------------------------------
    def has_layer(self, name: str) -> bool:
        """Whether the bundle holds a layer."""
        return name in self.manifest.get("layers", {})

    def layer(self, name: str) -> pd.DataFrame:
        """A bundle layer, read once."""
        return self.cached(("layer", name), lambda: self.bundle.read_layer(name))

    @property
    def modes(self) -> list[str]:
        """Travel modes built."""
        modes = self.manifest.get("settings", {}).get("modes") or list(MODES)
        return [m for m in MODES if m in modes]

    @property
    def categories(self) -> list[str]:
        """Categories with travel times, in canonical order."""
        access = self.manifest.get("stages", {}).get("access", {})
        cats = access.get("categories")
        if cats is None:
            cats = list(self.manifest.get("stages", {}).get("providers", {}).get("by_category", {}))
        return [c for c in CATEGORIES if c in cats]

    @property
    def site_categories(self) -> list[str]:
        """Categories with at least one site in the providers layer."""
        by_cat = self.manifest.get("stages", {}).get("providers", {}).get("by_category", {})
        return [c for c in CATEGORIES if by_cat.get(c)] or self.categories

    @property
    def bands_min(self) -> list[float]:
        """Isochrone bands, minutes."""
        return [
            float(b) for b in self.manifest.get("settings", {}).get("bands_min", DEFAULT_BANDS_MIN)
        ]

    def threshold(self, category: str, mode: str) -> float | None:
        """The configured desert threshold of a (category, mode), minutes."""
        return (
            self.manifest.get("settings", {}).get("thresholds_min", {}).get(category, {}).get(mode)
        )

    @property
    def max_snap_m(self) -> float:
        """Sites farther than this from a street are not routed."""
        return float(self.manifest.get("settings", {}).get("max_snap_m", 1500.0))

    @property
    def cover_m(self) -> float:
        """People whose nearest node is farther than this are not covered (``access.cover_m``)."""
        return cover_distance(self.manifest)

    def coverage(self, mode: str) -> dict[str, Any]:
        """Who ``mode``'s network covers (:func:`etl.bundle.coverage.mode_coverage`)."""

        def make() -> dict[str, Any]:
            found = mode_coverage(self.bundle, mode, people=self.layer("people"))
            if found is None:
                msg = f"{self.bundle.path}: no people layer with {mode} snap distances"
                raise BundleError(msg)
            return found

        return dict(self.cached(("coverage", mode), make))

    @property
    def walk_speed_mps(self) -> float:
        """Walking speed for snap distances, m/s."""
        return float(self.manifest.get("settings", {}).get("walk_speed_kph", 4.8)) / 3.6

    def network(self, mode: str) -> ModeNetwork:
        """A mode's network."""
        self._check_mode(mode)
        return self.cached(("network", mode), lambda: self.bundle.network(mode))

    def access(self, mode: str) -> dict[str, np.ndarray]:
        """A mode's baseline access arrays."""
        self._check_mode(mode)
        return self.cached(("access", mode), lambda: self.bundle.access_arrays(mode))

    def samples(self, mode: str) -> StreetSamples:
        """Street samples of a mode at the ETL's fine resolution."""
        return self.cached(("samples", mode), lambda: sample_streets(self.network(mode)))

    def _check_mode(self, mode: str) -> None:
        if mode not in self.modes:
            modes = ", ".join(self.modes)
            msg = f"{self.bundle.path}: no {mode!r} network in this bundle; modes: {modes}"
            raise BundleError(msg)

    def _check_category(self, category: str, mode: str) -> np.ndarray:
        arrays = self.access(mode)
        key = f"time_{category}"
        if key not in arrays:
            msg = f"{self.bundle.path}: no travel times for {category!r} by {mode}"
            raise BundleError(msg)
        return arrays[key]

    # -- derived ---------------------------------------------------------------------------
    def node_times(self, category: str, mode: str) -> np.ndarray:
        """Seconds from every node of ``mode`` to the nearest site of ``category``."""
        return self._check_category(category, mode)

    def people_times(self, category: str, mode: str) -> np.ndarray:
        """Seconds per people point (NaN: not covered)."""

        def make() -> np.ndarray:
            people = self.layer("people")
            return people_times(
                self.node_times(category, mode),
                people[f"node_{mode}"].to_numpy(),
                people[f"snap_m_{mode}"].to_numpy(),
                walk_speed_mps=self.walk_speed_mps,
                cover_m=self.cover_m,
            )

        return self.cached(("people_times", category, mode), make)

    def person_cells(self, mode: str) -> np.ndarray:
        """Each people point's fine H3 cell at ``mode``'s street-sample resolution."""

        def make() -> np.ndarray:
            people = self.layer("people")
            return cells_of(
                people["lat"].to_numpy(dtype=float),
                people["lon"].to_numpy(dtype=float),
                self.samples(mode).res,
            )

        return self.cached(("person_cells", mode), make)

    def people_weights(self) -> np.ndarray:
        """People per point."""
        return self.cached("weights", lambda: self.layer("people")["weight"].to_numpy(dtype=float))

    def summary(self, category: str, mode: str, threshold_min: float) -> ThresholdSummary:
        """People within and beyond the threshold for a (category, mode) (memoised)."""
        threshold = float(threshold_min)

        def make() -> ThresholdSummary:
            times, weights = self.people_times(category, mode), self.people_weights()
            median = self.cached(
                ("median_min", category, mode),
                lambda: threshold_summary(times, weights, threshold).median_min,
            )
            return _threshold_summary(times, weights, threshold, median)

        return self.memo(("summary", category, mode, threshold), make)

    def cell_times(self, category: str, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """Fine cells along the streets and their best time (s) to a site of ``category``."""
        return self.cached(
            ("cells", category, mode),
            lambda: cell_times(self.samples(mode), self.node_times(category, mode)),
        )

    def basemap_network(self) -> ModeNetwork:
        """The network drawn as the offline basemap (drive where built)."""
        return self.network("drive" if "drive" in self.modes else self.modes[0])

    # -- payloads --------------------------------------------------------------------------
    def payload(self, name: str, *args: str) -> Payload:
        """A GeoJSON layer by name (see :data:`LAYER_BUILDERS`), built and compressed once.

        Raises
        ------
        BundleError
            If the layer is unknown or not in this bundle.
        """
        builder = LAYER_BUILDERS.get(name)
        if builder is None:
            msg = f"no map layer {name!r}; layers: {', '.join(sorted(LAYER_BUILDERS))}"
            raise BundleError(msg)

        def make() -> Payload:
            data = builder(self, *args)
            payload = Payload.from_geojson(data)
            logger.info(
                "layer %s/%s%s: %s features, %s bytes, %s gzip",
                self.region,
                name,
                "".join(f"/{a}" for a in args),
                f"{payload.features:,}",
                f"{payload.raw_bytes:,}",
                f"{len(payload.body):,}",
            )
            return payload

        return self.cached(("payload", name, *args), make)

    def street_names(self) -> pd.DataFrame:
        """Named street lines for labels and the geocoder (``name``, ``geometry``).

        From the bundle's ``street_names`` layer where present; otherwise read once from the
        OSM file named in the manifest when it is still on disk (empty if not).
        """

        def make() -> pd.DataFrame:
            if self.has_layer("street_names"):
                return self.layer("street_names")
            osm = osm_input(self.manifest)
            if osm is None:
                return pd.DataFrame({"name": [], "geometry": []})
            from etl.inputs.geocode import read_osm_reference

            points, streets = read_osm_reference(osm)
            self._cache[("osm_points",)] = points
            logger.info(
                "street names for %s read from %s (no street_names layer)", self.region, osm
            )
            return streets

        return self.cached("street_names", make)


def osm_input(manifest: dict[str, Any]) -> Path | None:
    """The OSM file a bundle was built from, if it is still on disk."""
    for item in manifest.get("inputs", []):
        if item.get("role") == "network.osm":
            path = Path(item.get("resolved") or "")
            if path.is_file():
                return path
    return None


def _providers(rd: RegionData) -> bytes:
    return providers_geojson(rd.layer("providers"), max_snap_m=rd.max_snap_m)


def _areas(rd: RegionData) -> bytes:
    return areas_geojson(rd.layer("areas"))


def _grid(rd: RegionData) -> bytes:
    return table_geojson(rd.layer("grid"), tolerance_deg=0)


def _region(rd: RegionData) -> bytes:
    return table_geojson(rd.layer("region"), tolerance_deg=0.0002)


def _bands(rd: RegionData, category: str, mode: str) -> bytes:
    # Streets plus the cells of the people counted there: every desert drawn holds its count.
    cells, best = drawn_cell_times(
        *rd.cell_times(category, mode),
        rd.person_cells(mode),
        rd.people_times(category, mode),
        rd.people_weights(),
    )
    return bands_geojson(*time_bands(cells, best))


def _streets(rd: RegionData, group: str) -> bytes:
    if group not in ("major", "minor"):
        msg = f"no street group {group!r}; use major or minor"
        raise BundleError(msg)
    return streets_geojson(rd.basemap_network(), group=group)


def _labels(rd: RegionData) -> bytes:
    return labels_geojson(street_labels(rd.street_names()))


def _optional(name: str, tolerance_deg: float = 0.00005) -> Callable[[RegionData], bytes]:
    def build(rd: RegionData) -> bytes:
        if not rd.has_layer(name):
            msg = f"{rd.bundle.path}: no {name!r} layer in this bundle"
            raise BundleError(msg)
        frame = rd.layer(name)
        if not hasattr(frame, "geometry"):
            msg = f"{rd.bundle.path}: layer {name!r} has no geometry"
            raise BundleError(msg)
        # Rows without geometry (e.g. counties of a national table outside the region)
        # cannot be drawn.
        frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
        return table_geojson(frame, tolerance_deg=tolerance_deg)

    return build


#: Map layers served by URL: name -> builder(region_data, *args).
LAYER_BUILDERS: Final[dict[str, Callable[..., bytes]]] = {
    "providers": _providers,
    "areas": _areas,
    "grid": _grid,
    "region": _region,
    "bands": _bands,
    "streets": _streets,
    "labels": _labels,
    "counties": _optional("counties", 0.0002),
    "barriers": _optional("barriers"),
    "sitable": _optional("sitable"),
    "transit_stops": _optional("transit_stops", 0),
    "facilities": _optional("facilities", 0),
}

_REGIONS: OrderedDict[str, RegionData] = OrderedDict()
_REGIONS_LOCK = threading.Lock()
_STAMPS: OrderedDict[tuple[str, str, int, int, int, int], RegionData] = OrderedDict()
_KEEP_REGIONS = 4


def region_data(geodata_dir: str | Path, region: str) -> RegionData:
    """Open a region's current bundle for the app (cached per build).

    A rebuilt bundle (its link now points at a new build) gets a fresh :class:`RegionData`;
    the old one is dropped once more than a few builds are cached.

    Raises
    ------
    BundleError
        If the region has no bundle or it is unreadable (the message says how to build it).
    """
    stamp = _manifest_stamp(geodata_dir, region)
    if stamp is not None:
        with _REGIONS_LOCK:
            rd = _STAMPS.get(stamp)
            if rd is not None:
                return rd
    bundle = open_region(geodata_dir, region)
    key = f"{bundle.path}|{bundle.manifest.get('build_id', '')}"
    with _REGIONS_LOCK:
        rd = _REGIONS.get(key)
        if rd is None:
            rd = _REGIONS[key] = RegionData(bundle=bundle)
            while len(_REGIONS) > _KEEP_REGIONS:
                _, dropped = _REGIONS.popitem(last=False)
                for old in [k for k, v in _STAMPS.items() if v is dropped]:
                    del _STAMPS[old]
        else:
            _REGIONS.move_to_end(key)
        if stamp is not None and stamp == _manifest_stamp(geodata_dir, region, bundle.path):
            _STAMPS[stamp] = rd
            while len(_STAMPS) > 2 * _KEEP_REGIONS:
                _STAMPS.popitem(last=False)
        return rd


def _manifest_stamp(
    geodata_dir: str | Path, region: str, folder: str | Path | None = None
) -> tuple[str, str, int, int, int, int] | None:
    """Which manifest file a region's link leads to: device, inode, size and time.

    Every request opens its region: this spares it reading and parsing the manifest while
    the link and the manifest are unchanged (a rebuild swaps the link to a new build folder,
    whose manifest is another file). ``folder``: stat the manifest there instead (the build
    folder a bundle was opened from), to check the two are the same file.
    """
    if "/" in region or region.startswith("."):
        return None
    try:
        st = os.stat(os.path.join(folder or os.path.join(geodata_dir, region), "manifest.json"))
    except OSError:
        return None
    return (str(geodata_dir), region, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def clear_cache() -> None:
    """Forget every cached region (tests)."""
    with _REGIONS_LOCK:
        _REGIONS.clear()
        _STAMPS.clear()


# ---------------------------------------------------------------------------------------
# Panels: numbers for the summary and the details of a clicked place
# ---------------------------------------------------------------------------------------


def access_summary(
    rd: RegionData, category: str, mode: str, threshold_min: float
) -> dict[str, Any]:
    """Everything the summary panel shows for a (category, mode, threshold).

    Computed once per bundle build and input (:meth:`RegionData.memo`); every call returns
    its own copy, so a caller may change it.

    Returns
    -------
    dict
        ``focus`` (:class:`ThresholdSummary` as a dict), ``categories`` (one row per category
        with travel times by this mode, at the same threshold), ``histogram``
        (:func:`time_histogram`), ``bands`` (:func:`band_people`), ``uncovered`` (people the
        mode's network does not cover: ``coverage["not_covered"]``), ``coverage``
        (:meth:`RegionData.coverage`: the manifest's one number per mode), ``deaths``
        (:func:`deaths_in_deserts` or None) and ``county`` (the county overdose rate row where
        the bundle has only county figures, else None).
    """
    threshold = float(threshold_min)
    summary = rd.memo(
        ("access_summary", category, mode, threshold),
        lambda: _access_summary(rd, category, mode, threshold),
    )
    return copy.deepcopy(summary)


def _access_summary(
    rd: RegionData, category: str, mode: str, threshold_min: float
) -> dict[str, Any]:
    weights = rd.people_weights()
    times = rd.people_times(category, mode)
    focus = rd.summary(category, mode, threshold_min)
    rows = []
    for cat in rd.categories:
        if f"time_{cat}" not in rd.access(mode):
            continue
        s = rd.summary(cat, mode, threshold_min)
        rows.append(
            {
                "category": cat,
                "within": s.within,
                "beyond": s.beyond,
                "share": s.share_within,
                "median_min": s.median_min,
                "configured": rd.threshold(cat, mode),
            }
        )
    coverage = rd.coverage(mode)
    uncovered = float(coverage["not_covered"])
    blocked = None
    inside = people_in_barriers(rd)
    if inside is not None:
        beyond = ~np.isnan(times) & ~(times <= threshold_min * 60.0)
        blocked = float(weights[beyond & inside].sum())
    deaths = None
    if rd.has_layer("areas"):
        areas = rd.layer("areas")
        if "deaths" in areas.columns:
            people = rd.layer("people")
            share = area_desert_share(times, weights, people["area_id"].to_numpy(), threshold_min)
            deaths = deaths_in_deserts(areas, share)
    return {
        "focus": asdict(focus) | {"covered": focus.covered, "share_within": focus.share_within},
        "categories": rows,
        "histogram": time_histogram(times, weights),
        "bands": band_people(times, weights, rd.bands_min),
        "uncovered": uncovered,
        "coverage": coverage,
        "deaths": deaths,
        "county": county_overdose(rd),
        "blocked": blocked,
    }


def people_in_barriers(rd: RegionData) -> np.ndarray | None:
    """Per people point: inside land where a siting rule prohibits new sites (None: no rules)."""

    def make() -> np.ndarray | None:
        if not rd.has_layer("barriers"):
            return None
        barriers = rd.layer("barriers")
        if "status" in barriers.columns:
            barriers = barriers[barriers["status"].astype(str) == "prohibited"]
        if barriers.empty:
            return None
        blocked = shapely.union_all(barriers.to_crs("EPSG:4326").geometry.to_numpy())
        shapely.prepare(blocked)
        people = rd.layer("people")
        return shapely.contains_xy(
            blocked, people["lon"].to_numpy(float), people["lat"].to_numpy(float)
        )

    return rd.cached("people_in_barriers", make)


def region_counties(rd: RegionData) -> list[str]:
    """County FIPS codes of the region, as its build recorded them.

    A bundle records them in ``stages.counties.region_counties`` (from the config, the areas'
    GEOIDs or county outlines; empty when none is known). For a bundle built before that was
    recorded, they come from the areas' ids only where those are census GEOIDs
    (:func:`etl.fips.geoid_counties`); never from the first digits of other ids.
    """

    def make() -> list[str]:
        stage = rd.manifest.get("stages", {}).get("counties", {})
        if "counties_from" in stage:
            return sorted(str(f) for f in stage.get("region_counties") or [])
        if not rd.has_layer("areas"):
            return []
        unit = rd.manifest.get("stages", {}).get("areas", {}).get("unit")
        return geoid_counties(rd.layer("areas")["area_id"], unit=unit) or []

    return rd.cached("region_counties", make)


def county_overdose(rd: RegionData) -> list[dict[str, Any]]:
    """The region's county overdose figures: every county of each source's latest period.

    Returns
    -------
    list of dict
        :data:`OVERDOSE_FIELDS` and ``missing`` (the source does not cover the county) per
        row, one per region county and source (suppressed values stay empty); empty without
        a counties layer; one row ``{"note": NO_COUNTY_TEXT}`` when no county of the region
        is known, so that no county from elsewhere is ever shown.
    """
    return copy.deepcopy(rd.cached("county_overdose", lambda: _county_overdose(rd)))


def _county_overdose(rd: RegionData) -> list[dict[str, Any]]:
    if not rd.has_layer("counties"):
        return []
    fips = region_counties(rd)
    if not fips:
        return [{"note": NO_COUNTY_TEXT}]
    names = rd.manifest.get("stages", {}).get("counties", {}).get("county_names") or {}
    rows = region_overdose(rd.layer("counties"), fips, names)
    keep = [k for k in (*OVERDOSE_FIELDS, "missing") if k in rows.columns]
    return [{k: clean_value(r[k]) for k in keep} for _, r in rows.iterrows()]


def area_at(rd: RegionData, lon: float, lat: float) -> dict[str, Any] | None:
    """The properties of the census area holding a point (None outside every area)."""
    if not rd.has_layer("areas"):
        return None
    areas = rd.layer("areas")
    tree = rd.cached("areas_tree", lambda: shapely.STRtree(areas.geometry.to_numpy()))
    hits = tree.query(shapely.Point(lon, lat), predicate="within")
    if len(hits) == 0:
        return None
    i = int(hits[0])
    cols = [c for c in areas.columns if c != areas.geometry.name]
    props = {c: clean_value(areas.iloc[i][c]) for c in cols}
    props["_index"] = i
    return props


def area_outline(rd: RegionData, index: int) -> dict[str, Any]:
    """GeoJSON (dict) of one area's outline, to highlight it."""
    areas = rd.layer("areas")
    data = feature_collection(
        [areas.geometry.iloc[index]], [{"area_id": clean_value(areas["area_id"].iloc[index])}]
    )
    return json.loads(data)


def overdose_source(rd: RegionData) -> str | None:
    """Which layer carries overdose rates with geometry: ``"areas"``, ``"counties"`` or None."""
    if rd.has_layer("areas") and "rate_per_100k" in rd.manifest["layers"]["areas"].get(
        "columns", []
    ):
        return "areas"
    info = rd.manifest.get("layers", {}).get("counties")
    drawn = info and info.get("crs") and info.get("geometry_types", ["?"])  # none: no county
    if drawn and "rate_per_100k" in info.get("columns", []):
        return "counties"
    return None


def provider_filters(rd: RegionData) -> dict[str, str]:
    """:func:`attribute_filters` of the region's providers (empty without them), once."""
    if not rd.has_layer("providers"):
        return {}
    return dict(rd.cached("provider_filters", lambda: attribute_filters(rd.layer("providers"))))


def map_options(rd: RegionData, regions: Sequence[str]) -> Any:
    """What a region offers the map (:class:`viewmodel.state.Options`, computed once per list)."""
    return rd.memo(("map_options", tuple(regions)), lambda: _map_options(rd, regions))


def _map_options(rd: RegionData, regions: Sequence[str]) -> Any:
    from viewmodel.state import Options

    layers = ["streets", "tiles"]
    if rd.has_layer("areas"):
        layers.append("areas")
        if capacity_info(rd.manifest):  # practitioners per 10,000 people (etl.engine.capacity)
            layers.append("capacity")
    if overdose_source(rd):
        layers.append("overdose")
    if rd.categories:
        layers += ["bands", "desert"]
    for key, name in (
        ("barriers", "barriers"),
        ("sitable", "sitable"),
        ("transit", "transit_stops"),
        ("facilities", "facilities"),
    ):
        if rd.has_layer(name):
            layers.append(key)
    if rd.has_layer("providers"):
        layers.append("sites")
    units = [u for u in ("areas", "grid") if rd.has_layer(u)]
    counties = rd.manifest.get("layers", {}).get("counties", {})
    if counties.get("crs") and any(c.startswith("t_") for c in counties.get("columns", [])):
        units.append("counties")
    filters = tuple(provider_filters(rd))
    thresholds = {
        f"{c}/{m}": float(t)
        for c in rd.categories
        for m in rd.modes
        if (t := rd.threshold(c, m)) is not None
    }
    bounds = None
    if rd.has_layer("region"):
        w, s, e, n = (float(v) for v in rd.layer("region").total_bounds)
        bounds = ((round(s, 5), round(w, 5)), (round(n, 5), round(e, 5)))
    return Options(
        regions=tuple(regions) or (rd.region,),
        categories=tuple(rd.categories),
        site_categories=tuple(rd.site_categories),
        modes=tuple(rd.modes),
        layers=tuple(layers),
        filters=filters,
        units=tuple(units) or ("areas",),
        thresholds=thresholds,
        bounds=bounds,
        no_data=no_data_reasons(rd),
    )


#: Plural nouns of each category's sites, for "no provider list has …".
_SITES_NOUN: dict[str, str] = {
    "methadone": "opioid treatment programs",
    "buprenorphine": "buprenorphine prescribers",
    "naltrexone": "naltrexone providers",
    "syringe_services": "syringe services programs",
    "pharmacy": "pharmacies",
    "naloxone": "naloxone sites",
    "treatment_facility": "treatment facilities",
}


def no_data_reasons(rd: RegionData) -> dict[str, str]:
    """Categories without travel times in this region, each with why (canonical order).

    Returns
    -------
    dict
        Category -> reason, e.g. ``{"pharmacy": "no provider list has pharmacies"}``; a
        category whose sites are all too far from the streets says so instead.
    """
    by_cat = rd.manifest.get("stages", {}).get("providers", {}).get("by_category", {}) or {}
    out: dict[str, str] = {}
    for c in CATEGORIES:
        if c in rd.categories:
            continue
        noun = _SITES_NOUN.get(c, c)
        n = int(by_cat.get(c) or 0)
        out[c] = (
            f"no provider list has {noun}"
            if n == 0
            else f"its {n:,} {noun} are all too far from the street network to route from"
        )
    return out
