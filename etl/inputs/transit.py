"""Transit stops from a GTFS feed: the ``transit_stops`` layer and the routes serving each stop.

A region config may name a GTFS feed (a folder, a ``.zip`` or the feed's ``stops.txt``)::

    transit:
      path: ../../../shared/data/franklin-oh/transit
      source: Central Ohio Transit Authority GTFS
      date: 2025-09-01

Stops (``location_type`` 0 or empty) and stations (1) become points; entrances, generic
nodes and boarding areas (2–4) are parts of a station, not places riders wait, and go to the
rejects report with that reason, as do rows with missing, out-of-range, (0, 0) or swapped
coordinates and repeated ``stop_id``. Stops farther than the region's ``buffer_km`` from
its outline are counted as outside, like providers.

Routes serving a stop come from ``stop_times.txt`` where the feed has it. Some published
feeds leave it out (the Franklin County sample does); then the routes are those whose
``shapes.txt`` line passes within :data:`SHAPE_NEAR_M` metres of the stop, and the layer
says so (``routes_from``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from etl._errors import InputError
from etl.engine.network import ModeNetwork
from etl.inputs.gtfs import Feed

logger = logging.getLogger(__name__)

#: A stop is taken to be served by a route whose shape passes this close (metres), when the
#: feed has no ``stop_times.txt``.
SHAPE_NEAR_M = 30.0

#: GTFS ``location_type`` codes kept as map points, and those reported as rejects.
KINDS = {"0": "stop", "1": "station"}
PARTS = {"2": "entrance or exit", "3": "generic node", "4": "boarding area"}
WHEELCHAIR = {"1": "yes", "2": "no"}

REQUIRED = ("stop_id", "stop_lat", "stop_lon")


@dataclass(frozen=True)
class TransitStops:
    """The stops layer of a feed and what was left out.

    Attributes
    ----------
    stops
        EPSG:4326 points: ``stop_id``, ``stop_code``, ``name``, ``description``, ``kind``
        (stop or station), ``wheelchair`` (yes, no, unknown), ``routes`` (short names, comma
        separated), ``n_routes``, ``row`` (line in ``stops.txt``, header = 1).
    rejects
        ``row``, ``stop_id``, ``name``, ``reason`` for every row not in ``stops``.
    feed
        Agency, publisher, validity dates and version where the feed has them, and
        ``routes_from`` (``stop_times``, ``shapes`` or ``none``).
    """

    stops: gpd.GeoDataFrame
    rejects: pd.DataFrame
    feed: dict[str, Any] = field(default_factory=dict)


def read_gtfs_stops(
    path: str | Path,
    *,
    region: shapely.Geometry | None = None,
    buffer_km: float = 0.0,
    crs: str = "EPSG:4326",
    role: str | None = "transit",
) -> TransitStops:
    """Read a GTFS feed's stops and stations, with the routes serving each.

    Parameters
    ----------
    path
        The feed: a folder, a ``.zip`` or the feed's ``stops.txt``.
    region
        The region outline in EPSG:4326; stops farther than ``buffer_km`` from it are
        rejected as outside. ``None`` keeps every stop.
    buffer_km
        How far beyond the outline stops are kept.
    crs
        Projected CRS for distances (the region's).
    role
        The feed's role in the build: control characters in its tables are replaced as they
        are read and recorded under it (:class:`etl.inputs.gtfs.Feed`).

    Returns
    -------
    TransitStops
        The stops layer, the rejects and facts about the feed.

    Raises
    ------
    InputError
        When the feed, ``stops.txt`` or one of its required columns is missing, or a file
        is not UTF-8 CSV.
    """
    feed = Feed(path, role=role)
    df = feed.table("stops.txt", required=REQUIRED)
    df["row"] = np.arange(len(df)) + 2
    for col in ("stop_code", "stop_name", "stop_desc", "location_type", "parent_station",
                "wheelchair_boarding"):  # fmt: skip
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].astype(str).str.strip()
    df["stop_id"] = df["stop_id"].astype(str).str.strip()
    lat = pd.to_numeric(df["stop_lat"].str.strip(), errors="coerce").to_numpy()
    lon = pd.to_numeric(df["stop_lon"].str.strip(), errors="coerce").to_numpy()
    reason = pd.Series("", index=df.index, dtype=object)

    def reject(mask: np.ndarray | pd.Series, why: str) -> None:
        mask = np.asarray(mask, dtype=bool) & (reason == "").to_numpy()
        reason[mask] = why

    kind_code = df["location_type"].replace("", "0")
    for code, what in PARTS.items():
        reject(kind_code == code, f"{what} (location_type {code}): part of a station, not a stop")
    reject(~kind_code.isin(list(KINDS) + list(PARTS)), "unknown location_type")
    reject(df["stop_id"] == "", "no stop_id")
    reject(df["stop_id"].duplicated(), "stop_id repeats an earlier row")
    reject(~np.isfinite(lat) | ~np.isfinite(lon), "stop_lat or stop_lon is missing or not a number")
    reject((np.abs(lat) > 90) | (np.abs(lon) > 180), "stop_lat or stop_lon out of range")
    reject((lat == 0) & (lon == 0), "coordinates are (0, 0)")
    if region is not None:
        outline = gpd.GeoSeries([region], crs="EPSG:4326").to_crs(crs).iloc[0]
        near = shapely.buffer(outline, buffer_km * 1000.0) if buffer_km > 0 else outline
        shapely.prepare(near)
        ok = (reason == "").to_numpy()
        pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326")
        inside = np.zeros(len(df), dtype=bool)
        inside[ok] = shapely.contains(near, pts[ok].to_crs(crs).to_numpy())
        swapped = np.zeros(len(df), dtype=bool)
        flip = ok & ~inside & (np.abs(lon) <= 90)
        if flip.any():
            alt = gpd.GeoSeries(gpd.points_from_xy(lat[flip], lon[flip]), crs="EPSG:4326")
            swapped[flip] = shapely.contains(near, alt.to_crs(crs).to_numpy())
        reject(swapped, "stop_lat and stop_lon look swapped (swapped, the stop lies in the region)")
        reject(ok & ~inside, f"outside the region and its {buffer_km:g} km buffer")
    kept = (reason == "").to_numpy()
    rejects = pd.DataFrame(
        {
            "row": df["row"][~kept].to_numpy(),
            "stop_id": df["stop_id"][~kept].to_numpy(),
            "name": df["stop_name"][~kept].to_numpy(),
            "reason": reason[~kept].to_numpy(),
        }
    )
    df = df.loc[kept]
    wheel = df["wheelchair_boarding"].map(WHEELCHAIR).fillna("unknown")
    # GTFS: a stop with no wheelchair information inherits its parent station's.
    parent_wheel = dict(zip(df["stop_id"], wheel, strict=True))
    inherit = (wheel == "unknown") & (df["parent_station"] != "")
    wheel = wheel.where(~inherit, df["parent_station"].map(parent_wheel).fillna("unknown"))
    stops = gpd.GeoDataFrame(
        {
            "stop_id": df["stop_id"].to_numpy(),
            "stop_code": df["stop_code"].to_numpy(),
            "name": df["stop_name"].replace("", "Transit stop").to_numpy(),
            "description": df["stop_desc"].to_numpy(),
            "kind": kind_code[kept].map(KINDS).to_numpy(),
            "parent_station": df["parent_station"].to_numpy(),
            "wheelchair": wheel.to_numpy(),
            "row": df["row"].to_numpy(),
        },
        geometry=gpd.points_from_xy(lon[kept], lat[kept]),
        crs="EPSG:4326",
    )
    routes, routes_from = stop_routes(feed, stops, crs=crs)
    stops["routes"] = [", ".join(r) for r in routes]
    stops["n_routes"] = np.array([len(r) for r in routes], dtype=np.int32)
    info = _feed_info(feed)
    info["routes_from"] = routes_from
    logger.info(
        "read %s: %d stops and stations kept, %d rejected; routes from %s",
        feed.where("stops.txt"),
        len(stops),
        len(rejects),
        routes_from,
    )
    return TransitStops(stops=stops, rejects=rejects, feed=info)


def _route_names(feed: Feed) -> dict[str, str]:
    routes = feed.table("routes.txt")
    if "route_id" not in routes.columns:
        msg = f"{feed.where('routes.txt')}: no column 'route_id'"
        raise InputError(msg)
    short = routes.get("route_short_name", pd.Series("", index=routes.index))
    long = routes.get("route_long_name", pd.Series("", index=routes.index))
    name = short.where(short.str.strip() != "", long).str.strip()
    return dict(zip(routes["route_id"].str.strip(), name.where(name != "", routes["route_id"]),
                    strict=True))  # fmt: skip


def _sorted_routes(names: set[str]) -> list[str]:
    """Route names in natural order: 1, 2, 10, 10X, CMAX."""

    def key(n: str) -> tuple[int, int, str]:
        digits = "".join(ch for ch in n[: len(n) - len(n.lstrip("0123456789"))])
        return (0, int(digits), n) if digits else (1, 0, n)

    return sorted(names, key=key)


def stop_routes(feed: Feed, stops: gpd.GeoDataFrame, *, crs: str) -> tuple[list[list[str]], str]:
    """The route names serving each stop, and where they come from.

    Parameters
    ----------
    feed
        The GTFS feed.
    stops
        The kept stops (``stop_id``, ``parent_station``, points in EPSG:4326).
    crs
        Projected CRS for the shape distances.

    Returns
    -------
    tuple
        One sorted list of route names per stop, and ``"stop_times"``, ``"shapes"`` or
        ``"none"``. A station lists the routes of its child stops.
    """
    empty: list[list[str]] = [[] for _ in range(len(stops))]
    if not (feed.has("routes.txt") and feed.has("trips.txt")) or stops.empty:
        return empty, "none"
    names = _route_names(feed)
    served: dict[str, set[str]] = {}
    if feed.has("stop_times.txt"):
        trips = feed.table("trips.txt", usecols=["trip_id", "route_id"])
        times = feed.table("stop_times.txt", usecols=["trip_id", "stop_id"])
        pairs = times.merge(trips, on="trip_id", how="inner")[["stop_id", "route_id"]]
        for stop_id, group in pairs.drop_duplicates().groupby("stop_id"):
            served[str(stop_id)] = {names.get(r, r) for r in group["route_id"]}
        source = "stop_times"
    elif feed.has("shapes.txt"):
        trips = feed.table("trips.txt")
        if "shape_id" not in trips.columns:
            return empty, "none"
        shape_routes = trips[trips["shape_id"] != ""][["shape_id", "route_id"]].drop_duplicates()
        lines = _shape_lines(feed, crs=crs)
        if lines.empty:
            return empty, "none"
        proj = stops.to_crs(crs)
        metres_per_unit = pyproj.CRS(crs).axis_info[0].unit_conversion_factor
        hit_stop, hit_shape = lines.sindex.query(
            proj.geometry.to_numpy(), predicate="dwithin", distance=SHAPE_NEAR_M / metres_per_unit
        )
        hits = pd.DataFrame(
            {"stop_id": proj["stop_id"].to_numpy()[hit_stop],
             "shape_id": lines["shape_id"].to_numpy()[hit_shape]}
        ).merge(shape_routes, on="shape_id")  # fmt: skip
        for stop_id, group in hits.groupby("stop_id"):
            served[str(stop_id)] = {names.get(r, r) for r in group["route_id"]}
        source = "shapes"
    else:
        return empty, "none"
    # A station is served by whatever serves its platforms.
    for stop_id, parent in zip(stops["stop_id"], stops["parent_station"], strict=True):
        if parent and stop_id in served:
            served.setdefault(parent, set()).update(served[stop_id])
    return [_sorted_routes(served.get(s, set())) for s in stops["stop_id"]], source


def _shape_lines(feed: Feed, *, crs: str) -> gpd.GeoDataFrame:
    shapes = feed.table(
        "shapes.txt", usecols=["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"]
    )
    for col in ("shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"):
        shapes[col] = pd.to_numeric(shapes[col], errors="coerce")
    shapes = shapes.dropna().sort_values(["shape_id", "shape_pt_sequence"], kind="stable")
    counts = shapes["shape_id"].value_counts()
    shapes = shapes[shapes["shape_id"].map(counts) >= 2]
    if shapes.empty:
        return gpd.GeoDataFrame({"shape_id": []}, geometry=[], crs=crs)
    ids, shape_ids = pd.factorize(shapes["shape_id"])
    coords = np.column_stack([shapes["shape_pt_lon"], shapes["shape_pt_lat"]])
    geoms = shapely.linestrings(coords, indices=ids)
    return gpd.GeoDataFrame(
        {"shape_id": np.asarray(shape_ids)}, geometry=geoms, crs="EPSG:4326"
    ).to_crs(crs)


def _feed_info(feed: Feed) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if feed.has("agency.txt"):
        agency = feed.table("agency.txt")
        if "agency_name" in agency.columns:
            info["agencies"] = [a for a in agency["agency_name"].str.strip() if a]
    if feed.has("feed_info.txt"):
        fi = feed.table("feed_info.txt")
        if len(fi):
            row = fi.iloc[0]
            for key in ("feed_publisher_name", "feed_start_date", "feed_end_date",
                        "feed_version"):  # fmt: skip
                if str(row.get(key, "")).strip():
                    info[key.removeprefix("feed_")] = str(row[key]).strip()
    return info


def stage_transit(ctx: Any) -> dict[str, Any]:
    """Write the ``transit_stops`` layer and its rejects report, where the config has a feed."""
    cfg = ctx.cfg
    if cfg.transit is None:
        return {"stops": 0, "note": "no transit feed in the config"}
    areas = ctx.layer("areas")
    outline = shapely.union_all(areas.geometry.to_numpy())
    result = read_gtfs_stops(
        cfg.resolve(cfg.transit.path), region=outline, buffer_km=cfg.buffer_km, crs=cfg.crs
    )
    stops = result.stops.drop(columns=["row"]).assign(routes_from=result.feed["routes_from"])
    ctx.writer.write_layer(
        "transit_stops", stops, description=f"transit stops and stations ({cfg.transit.name})"
    )
    report = ctx.writer.path("reports/transit_rejects.csv")
    result.rejects.to_csv(report, index=False)
    reasons = result.rejects["reason"].str.replace(r" \(.*", "", regex=True).value_counts()
    return {
        "stops": len(stops),
        "rejected": len(result.rejects),
        "with_routes": int((stops["n_routes"] > 0).sum()),
        "routes_from": result.feed["routes_from"],
        "reasons": {str(k): int(v) for k, v in reasons.items()},
        "feed": result.feed,
    }


def stop_walk_minutes(
    stops: gpd.GeoDataFrame,
    net: ModeNetwork,
    times: dict[str, np.ndarray],
    *,
    crs: str,
    max_snap_m: float,
) -> gpd.GeoDataFrame:
    """Add the walk in minutes from each stop to the nearest care of each category.

    Parameters
    ----------
    stops
        The stops layer (EPSG:4326 points).
    net
        The walk network.
    times
        Seconds from each node of ``net`` to the nearest site, by category; a column
        ``walk_min_<category>`` is added for each (NaN where no site is reachable or the stop
        is farther than ``max_snap_m`` from any footway).
    crs
        The region's projected CRS, for snapping.
    max_snap_m
        Stops farther from the walk network than this get no times.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``stops`` with the new columns, rounded to 0.1 minute, and earlier
        ``walk_min_*`` columns replaced.
    """
    from etl.engine.access import snap_points

    out = stops.drop(columns=[c for c in stops.columns if c.startswith("walk_min_")])
    if out.empty:
        return out
    proj = out.geometry.to_crs(crs)
    snap = snap_points(net, proj.x.to_numpy(), proj.y.to_numpy())
    for category, node_seconds in times.items():
        seconds = node_seconds[snap.node].astype(float) + snap.distance_m / net.walk_speed_mps
        seconds[snap.distance_m > max_snap_m] = np.nan
        out[f"walk_min_{category}"] = np.round(seconds / 60.0, 1)
    return out
