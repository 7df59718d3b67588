"""Correctional facilities for the re-entry view: the ``facilities`` layer.

A region config may name lists of prisons, jails and detention centres (any table with
coordinates, or a point file), mapped like provider lists::

    facilities:
      - path: ../../../shared/data/franklin-oh/places/ohio_prisons_jails_2020_nyt.csv
        columns: {name: facility_name, type: facility_type, city: facility_city,
                  county: facility_county, lon: facility_lng, lat: facility_lat, id: nyt_id}
        source: The New York Times, COVID-19 data (prisons and jails)
        licence: CC BY-NC 4.0

Facilities within the region, or up to ``buffer_km`` beyond it (default: the region's),
are kept: a state prison releases people into many counties. Rows without a name or with
missing, unreadable, (0, 0) or out-of-range coordinates go to
``reports/facilities_rejects.csv`` with their reason; rows of one list at the same point
(within :data:`SAME_POINT_M` metres, e.g. two jails in one building) become one facility.

For each facility and mode, :func:`facilities_layer` adds the time to the nearest care of
each release-day kind (:data:`etl.engine.reentry.REENTRY_CATEGORIES`), with the rule people
points follow (:mod:`etl.engine.reentry`). Only public facts are kept: names, kinds and
locations. A list's population or case columns are never read.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from etl.categories import CATEGORY_LABELS
from etl.engine.access import snap_points
from etl.engine.reentry import REENTRY_CATEGORIES, facility_times
from etl.inputs.addresses import clean_text
from etl.inputs.tables import read_table, source_format

if TYPE_CHECKING:
    from etl.config import FacilitySource, RegionConfig
    from etl.engine.network import ModeNetwork

logger = logging.getLogger(__name__)

#: Rows of one list closer than this (metres) are one facility.
SAME_POINT_M: Final[float] = 5.0

KINDS: Final[tuple[str, ...]] = ("prison", "jail", "detention", "other")
KIND_LABELS: Final[dict[str, str]] = {
    "prison": "Prison",
    "jail": "Jail",
    "detention": "Detention centre",
    "other": "Other facility",
}
MODE_WORDS: Final[dict[str, str]] = {"drive": "by car", "walk": "on foot"}


@dataclass(frozen=True)
class Facilities:
    """Facilities read from the config's lists.

    Attributes
    ----------
    facilities
        EPSG:4326 points: ``id``, ``name``, ``kind``, ``type``, ``city``, ``county``,
        ``in_region``, ``source``, ``source_date``, ``licence``, ``merged`` (rows folded in).
    rejects
        ``source``, ``row`` (file line, header = 1), ``name``, ``reason``.
    counts
        Per list: ``rows``, ``kept``, ``outside``, ``rejected``, ``merged``.
    """

    facilities: gpd.GeoDataFrame
    rejects: pd.DataFrame
    counts: dict[str, dict[str, int]]


def facility_kind(raw_type: str, type_map: dict[str, str] | None = None) -> str:
    """Return ``prison``, ``jail``, ``detention`` or ``other`` for a list's facility type.

    Parameters
    ----------
    raw_type
        The list's type text, e.g. "State prison", "County jail", "Detention center".
    type_map
        Raw type -> kind, matched case-insensitively first.
    """
    key = " ".join(str(raw_type).split()).lower()
    for k, v in (type_map or {}).items():
        if " ".join(str(k).split()).lower() == key:
            return v
    if "jail" in key:
        return "jail"
    if "detention" in key or "juvenile" in key:
        return "detention"
    if any(w in key for w in ("prison", "correction", "reformatory", "penitentiary", "state")):
        return "prison"
    return "other"


def _empty_layer() -> gpd.GeoDataFrame:
    cols = ["id", "name", "kind", "type", "city", "county", "in_region", "source",
            "source_date", "licence", "merged"]  # fmt: skip
    return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs="EPSG:4326")


def read_facilities(
    cfg: RegionConfig, outline: shapely.Geometry, *, crs: str | None = None
) -> Facilities:
    """Read every facility list of a config, keeping those in the region or its buffer.

    Parameters
    ----------
    cfg
        The region config (``facilities``, ``buffer_km``).
    outline
        The region's outline, EPSG:4326.
    crs
        Projected CRS for distances (default ``cfg.crs``).

    Returns
    -------
    Facilities
    """
    crs = crs or cfg.crs or "EPSG:3857"
    to_proj = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    outline_proj = shapely.transform(
        outline, lambda xy: np.column_stack(to_proj.transform(xy[:, 0], xy[:, 1]))
    )
    frames, rejects, counts = [], [], {}
    for k, src in enumerate(cfg.facilities):
        label = (
            src.name if src.name != "facilities" or len(cfg.facilities) == 1 else f"{src.name}-{k}"
        )
        kept, rej, count = _read_one(
            cfg, src, label, outline_proj, to_proj, role=f"facilities.{k}"
        )
        frames.append(kept)
        rejects.append(rej)
        counts[label] = count
    layer = (
        gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")
        if frames
        else _empty_layer()
    )
    rej = (
        pd.concat(rejects, ignore_index=True)
        if rejects
        else pd.DataFrame(columns=["source", "row", "name", "reason"])
    )
    return Facilities(facilities=layer, rejects=rej, counts=counts)


def _read_one(
    cfg: RegionConfig,
    src: FacilitySource,
    label: str,
    outline_proj: shapely.Geometry,
    to_proj: Transformer,
    *,
    role: str | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict[str, int]]:
    from etl._errors import InputError

    path = cfg.resolve(src.path)
    fmt = source_format(src, path)
    frame, lonlat = read_table(
        path,
        fmt=fmt,
        encoding=src.encoding,
        layer=src.layer,
        crs=None if fmt == "csv" else src.crs,
        reader_path=cfg.reader_path(src.path),
        role=role,
    )
    missing = sorted(v for v in src.columns.values() if v not in frame.columns)
    if missing:
        msg = (
            f"{path}: facilities column(s) {', '.join(repr(m) for m in missing)} not found; "
            f"the file has: {', '.join(frame.columns[:20])}. Fix `columns` of this list"
        )
        raise InputError(msg)
    n = len(frame)

    def col(key: str) -> pd.Series:
        name = src.columns.get(key)
        if name is None:
            return pd.Series([""] * n, dtype=object)
        return frame[name].map(clean_text).astype(object)

    if "lon" in src.columns:
        lon = pd.to_numeric(col("lon"), errors="coerce").to_numpy(float)
        lat = pd.to_numeric(col("lat"), errors="coerce").to_numpy(float)
        if CRS.from_user_input(src.crs) != CRS.from_epsg(4326):
            x, y = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True).transform(lon, lat)
            lon, lat = np.asarray(x, float), np.asarray(y, float)
    elif lonlat is not None:
        lon, lat = lonlat
    else:
        msg = f"{path}: a facilities table needs `lon` and `lat` columns in `columns`"
        raise InputError(msg)
    names = col("name")
    reason = np.full(n, "", dtype=object)
    reason[(names == "").to_numpy()] = "no name"
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    reason[(reason == "") & bad] = "missing or unreadable coordinates"
    zero = ~bad & (np.abs(lon) < 1e-9) & (np.abs(lat) < 1e-9)
    reason[(reason == "") & zero] = "coordinates are (0, 0)"
    out_range = ~bad & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    reason[(reason == "") & out_range] = "coordinates out of range"
    ok = reason == ""
    x, y = to_proj.transform(np.where(ok, lon, 0.0), np.where(ok, lat, 0.0))
    pts = shapely.points(np.asarray(x), np.asarray(y))
    dist = np.where(ok, shapely.distance(outline_proj, pts), np.inf)
    buffer_km = cfg.buffer_km if src.buffer_km is None else src.buffer_km
    inside = ok & (dist <= 1.0)
    near = ok & (dist <= buffer_km * 1000.0)
    rej = pd.DataFrame(
        {"source": label, "row": np.arange(n)[~ok] + 2, "name": names[~ok].to_numpy(),
         "reason": reason[~ok]}
    )  # fmt: skip
    keep = np.flatnonzero(near)
    ids = col("id")
    rows = []
    for i in keep:
        raw_id = (
            ids.iloc[i]
            or hashlib.sha1(f"{names.iloc[i]}|{lon[i]:.6f}|{lat[i]:.6f}".encode()).hexdigest()[:10]
        )
        rows.append(
            {
                "id": f"{label}:{raw_id}",
                "name": names.iloc[i],
                "kind": facility_kind(col("type").iloc[i], src.type_map),
                "type": col("type").iloc[i],
                "city": col("city").iloc[i],
                "county": col("county").iloc[i],
                "in_region": bool(inside[i]),
                "_x": float(x[i]),
                "_y": float(y[i]),
                "lon": float(lon[i]),
                "lat": float(lat[i]),
            }
        )
    kept = pd.DataFrame(rows, columns=["id", "name", "kind", "type", "city", "county",
                                       "in_region", "_x", "_y", "lon", "lat"])  # fmt: skip
    kept, merged = _merge_same_point(kept)
    gdf = gpd.GeoDataFrame(
        kept.drop(columns=["_x", "_y", "lon", "lat"]).assign(
            source=src.source, source_date=src.date, licence=src.licence
        ),
        geometry=gpd.points_from_xy(kept["lon"], kept["lat"]),
        crs="EPSG:4326",
    )
    count = {
        "rows": n,
        "kept": len(gdf),
        "in_region": int(gdf["in_region"].sum()) if len(gdf) else 0,
        "outside": int((ok & ~near).sum()),
        "rejected": int((~ok).sum()),
        "merged": merged,
    }
    return gdf, rej, count


def _merge_same_point(kept: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Fold rows at the same point into one facility (names joined with " / ")."""
    if kept.empty:
        return kept.assign(merged=pd.Series(dtype=int)), 0
    from scipy.spatial import cKDTree

    xy = kept[["_x", "_y"]].to_numpy(float)
    pairs = cKDTree(xy).query_pairs(SAME_POINT_M)
    group = np.arange(len(kept))
    for a, b in sorted(pairs):
        ga, gb = group[a], group[b]
        group[group == max(ga, gb)] = min(ga, gb)
    out = []
    for g in np.unique(group):
        part = kept[group == g]
        first = part.iloc[0].to_dict()
        first["name"] = " / ".join(dict.fromkeys(part["name"]))
        first["in_region"] = bool(part["in_region"].any())
        first["merged"] = len(part) - 1
        out.append(first)
    frame = pd.DataFrame(out)
    return frame.reset_index(drop=True), int(frame["merged"].sum())


def facilities_layer(
    facilities: gpd.GeoDataFrame,
    providers: pd.DataFrame,
    networks: dict[str, ModeNetwork],
    arrays: dict[str, dict[str, np.ndarray]],
    cfg: RegionConfig,
) -> gpd.GeoDataFrame:
    """Add, per mode and release-day kind, the time to the nearest care and its site id.

    Parameters
    ----------
    facilities
        From :func:`read_facilities`.
    providers
        The providers layer (``id``).
    networks
        Mode -> network.
    arrays
        Mode -> the access stage's per-node arrays (``time_<category>``, ``nearest_<category>``).
    cfg
        The region config (``crs``, ``access.cover_m``, thresholds).

    Returns
    -------
    geopandas.GeoDataFrame
        ``facilities`` with, per mode, ``snap_m_<mode>`` and ``covered_<mode>``; per category
        and mode, ``t_<category>_<mode>`` (minutes, 0.1; NaN: not covered or no route),
        ``nearest_<category>_<mode>`` (site id, "" for none) and, where a threshold is set,
        ``desert_<category>_<mode>``; then ``in_desert`` and ``desert_for`` (text).
    """
    out = facilities.copy()
    if out.empty:
        return out.assign(in_desert=pd.Series(dtype=bool), desert_for=pd.Series(dtype=object))
    proj = out.geometry.to_crs(cfg.crs)
    ids = providers["id"].astype(str).to_numpy()
    deserts: list[list[str]] = [[] for _ in range(len(out))]
    for mode, net in networks.items():
        snap = snap_points(net, proj.x.to_numpy(), proj.y.to_numpy())
        out[f"snap_m_{mode}"] = np.round(snap.distance_m, 1)
        out[f"covered_{mode}"] = snap.distance_m <= cfg.access.cover_m
        for cat in REENTRY_CATEGORIES:
            key = f"time_{cat}"
            if key not in arrays.get(mode, {}):
                continue
            threshold = cfg.threshold(cat, mode)
            ft = facility_times(
                arrays[mode][key],
                arrays[mode][f"nearest_{cat}"],
                snap.node,
                snap.distance_m,
                walk_speed_mps=net.walk_speed_mps,
                cover_m=cfg.access.cover_m,
                threshold_min=threshold,
            )
            minutes = np.where(np.isfinite(ft.minutes), np.round(ft.minutes, 1), np.nan)
            out[f"t_{cat}_{mode}"] = minutes
            out[f"nearest_{cat}_{mode}"] = np.where(
                ft.nearest >= 0, ids[np.maximum(ft.nearest, 0)], ""
            )
            if threshold is not None:
                out[f"desert_{cat}_{mode}"] = ft.desert
                for i in np.flatnonzero(ft.desert):
                    t = minutes[i]
                    when = f"{t:g} min" if np.isfinite(t) else "no route"
                    deserts[i].append(
                        f"{CATEGORY_LABELS[cat]} {MODE_WORDS.get(mode, mode)} "
                        f"({when}; threshold {threshold:g} min)"
                    )
    out["in_desert"] = [bool(d) for d in deserts]
    out["desert_for"] = ["; ".join(d) for d in deserts]
    return out


def stage_facilities(
    ctx: Any, arrays: dict[str, dict[str, np.ndarray]], outline: shapely.Geometry
) -> dict[str, Any]:
    """Write the ``facilities`` layer and its rejects report (called by compute-access).

    Returns
    -------
    dict
        Counts for the manifest (``facilities``, ``in_desert``, per-list counts).
    """
    cfg = ctx.cfg
    if not cfg.facilities:
        return {"facilities": 0, "note": "no facility list in the config"}
    read = read_facilities(cfg, outline)
    networks = {m: ctx.network(m) for m in cfg.network.modes}
    layer = facilities_layer(read.facilities, ctx.layer("providers"), networks, arrays, cfg)
    ctx.writer.write_layer(
        "facilities",
        layer,
        description="prisons, jails and detention centres with the time to the nearest care",
    )
    read.rejects.to_csv(ctx.writer.path("reports/facilities_rejects.csv"), index=False)
    by_kind = layer["kind"].value_counts().to_dict() if len(layer) else {}
    logger.info(
        "facilities: %d kept (%d in a desert), %d rejected",
        len(layer),
        int(layer["in_desert"].sum()) if len(layer) else 0,
        len(read.rejects),
    )
    return {
        "facilities": len(layer),
        "in_desert": int(layer["in_desert"].sum()) if len(layer) else 0,
        "by_kind": {str(k): int(v) for k, v in by_kind.items()},
        "sources": read.counts,
    }
