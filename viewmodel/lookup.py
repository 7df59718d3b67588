"""Address look-up for the map: find an address offline, then the nearest care by travel time.

The address is found with the ETL's offline geocoder (:class:`etl.inputs.geocode.OfflineGeocoder`)
over a reference built from the bundle: its ``addresses`` layer (address points) and
``street_names`` layer (named centrelines) where present, else the named streets and
``addr:*`` points of the OSM file the bundle was built from (when it is still on disk),
plus the providers' own addresses. Typed coordinates ("39.96, -83.00") are taken as is.

From the point, per travel mode: snap to the nearest network node (the snap walked at
walking speed, as everywhere), read the nearest site of every category and its time from the
bundle's access arrays, and draw the route with one bounded Dijkstra from that node
(:func:`route_to`), the same engine as the ETL, so the route's time equals the table's.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy.sparse import csgraph

from etl.categories import CATEGORY_LABELS
from etl.engine.access import snap_points
from etl.engine.network import ModeNetwork
from etl.inputs.geocode import OfflineGeocoder, ReferenceIndex
from viewmodel.data import RegionData

logger = logging.getLogger(__name__)

#: Qualities at which a found address is trusted without a warning.
GOOD_QUALITIES: Final[frozenset[str]] = frozenset({"source", "address_point", "street"})

QUALITY_LABELS: Final[dict[str, str]] = {
    "source": "coordinates given by the source",
    "address_point": "matched to an address point",
    "street": "placed along the street between known house numbers",
    "street_center": "street found, house number not: placed on the street",
    "zip": "only the ZIP code was found: placed at its centre",
    "city": "only the city was found: placed at its centre",
    "coordinates": "coordinates typed in",
}

_COORDS = re.compile(
    r"^\s*(?P<a>[-+]?\d{1,3}(?:\.\d+)?)\s*[,;\s]\s*(?P<b>[-+]?\d{1,3}(?:\.\d+)?)\s*$"
)


@dataclass(frozen=True)
class Place:
    """A found address.

    Attributes
    ----------
    lon, lat
        WGS84.
    quality
        Geocode quality (see :data:`QUALITY_LABELS`).
    matched
        What was matched ("1000 E BROAD ST", "ZIP 43215").
    query
        The text typed.
    """

    lon: float
    lat: float
    quality: str
    matched: str
    query: str

    @property
    def trusted(self) -> bool:
        """Whether the place is precise enough to route from without a warning."""
        return self.quality in GOOD_QUALITIES or self.quality == "coordinates"


@dataclass(frozen=True)
class Nearest:
    """The nearest site of one category from a place, by one mode."""

    category: str
    mode: str
    minutes: float | None
    provider_row: int
    provider_id: str | None
    name: str | None
    address: str | None
    route: list[list[float]]  # [[lat, lon], ...]


@dataclass(frozen=True)
class Lookup:
    """Everything the look-up panel shows."""

    place: Place
    snap_m: dict[str, float]
    covered: dict[str, bool]
    nearest: list[Nearest]


def parse_coordinates(text: str) -> tuple[float, float] | None:
    """Read "lat, lon" (or "lon, lat" when unambiguous) typed coordinates; None if not such."""
    m = _COORDS.match(text or "")
    if not m:
        return None
    a, b = float(m["a"]), float(m["b"])
    if abs(a) <= 90 and abs(b) <= 180:
        return b, a  # lat, lon as people write them
    if abs(b) <= 90 and abs(a) <= 180:
        return a, b
    return None


def reference_index(rd: RegionData) -> ReferenceIndex:
    """The geocoder reference of a region (built once per bundle build)."""

    def make() -> ReferenceIndex:
        points: list[pd.DataFrame] = []
        if rd.has_layer("addresses"):
            points.append(
                pd.DataFrame(rd.layer("addresses")).drop(columns="geometry", errors="ignore")
            )
        streets = rd.street_names()
        osm_points = rd._cache.get(("osm_points",))
        if osm_points is not None and len(osm_points):
            points.append(osm_points)
        prov = rd.layer("providers")
        cols = [c for c in ("address", "city", "state", "zip", "lon", "lat") if c in prov.columns]
        if {"address", "lon", "lat"} <= set(cols):
            p = pd.DataFrame(prov[cols]).dropna(subset=["lon", "lat"])
            p = p[p["address"].notna() & (p["address"].astype(str).str.strip() != "")]
            points.append(p.assign(source="providers"))
        frame = pd.concat(points, ignore_index=True) if points else None
        crs = rd.manifest.get("crs")
        return ReferenceIndex.from_frames(frame, streets=streets if len(streets) else None, crs=crs)

    return rd.cached("reference_index", make)


def address_example(rd: RegionData) -> str:
    """An address of the region itself for the look-up box's example (cached per region).

    A published care site's street address in the town with the most sites (never one shown
    only as an area), written as a person would type it: ``"3422 S High St, Millbrook, ZZ
    99012"``. Without addresses: ``"a street address, or latitude, longitude"``.
    """

    def make() -> str:
        fallback = "a street address, or latitude, longitude"
        try:
            pv = rd.layer("providers")
        except Exception:  # a region without providers: the generic example
            return fallback
        if pv is None or len(pv) == 0 or not {"address", "city"} <= set(pv.columns):
            return fallback
        ok = pv["address"].fillna("").astype(str).str.strip().str.match(r"^\d+\s+\S")
        ok &= pv["city"].fillna("").astype(str).str.strip() != ""
        if "show_exact" in pv:
            ok &= pv["show_exact"].fillna(True).astype(bool)
        if "generalized" in pv:
            ok &= ~pv["generalized"].fillna(False).astype(bool)
        if "in_region" in pv:
            ok &= pv["in_region"].fillna(True).astype(bool)
        rows = pv[ok]
        if rows.empty:
            return fallback
        city = rows["city"].astype(str).str.strip().value_counts().index[0]
        row = rows[rows["city"].astype(str).str.strip() == city].sort_values("id").iloc[0]
        tail = " ".join(
            str(row[c]).strip()
            for c in ("state", "zip")
            if c in rows and isinstance(row[c], str) and row[c].strip()
        )
        return f"{str(row['address']).strip()}, {city}" + (f", {tail}" if tail else "")

    return rd.cached("address_example", make)


def find_place(rd: RegionData, text: str) -> Place | None:
    """Find an address (or typed coordinates) offline; None when nothing matches."""
    text = (text or "").strip()
    if not text:
        return None
    coords = parse_coordinates(text)
    if coords is not None:
        return Place(
            lon=coords[0],
            lat=coords[1],
            quality="coordinates",
            matched=f"{coords[1]:.5f}, {coords[0]:.5f}",
            query=text,
        )
    geocoder = rd.cached("geocoder", lambda: OfflineGeocoder(reference_index(rd)))
    result = geocoder.geocode(pd.DataFrame({"address": [text]}))
    row = result.iloc[0]
    if not row["geocode_quality"] or not np.isfinite(row["lon"]):
        return None
    return Place(
        lon=float(row["lon"]),
        lat=float(row["lat"]),
        quality=str(row["geocode_quality"]),
        matched=str(row["geocode_match"]),
        query=text,
    )


def route_to(net: ModeNetwork, source: int, target: int, *, limit_s: float = np.inf) -> list[int]:
    """Node path of the fastest route from ``source`` to ``target`` (empty if unreachable).

    One Dijkstra from ``source`` on the forward graph (the direction a person travels),
    stopped beyond ``limit_s``.
    """
    if source == target:
        return [int(source)]
    dist, pred = csgraph.dijkstra(
        net.csr(), directed=True, indices=int(source), return_predecessors=True, limit=limit_s
    )
    if not np.isfinite(dist[target]):
        return []
    path = [int(target)]
    node = int(target)
    while node != source:
        node = int(pred[node])
        if node < 0:
            return []
        path.append(node)
    return path[::-1]


def route_seconds(net: ModeNetwork, path: list[int]) -> float:
    """Travel time along a node path (the fastest edge between each pair)."""
    if len(path) < 2:
        return 0.0
    csr = net.csr()
    total = 0.0
    for a, b in itertools.pairwise(path):
        row = slice(csr.indptr[a], csr.indptr[a + 1])
        hit = np.flatnonzero(csr.indices[row] == b)
        total += float(csr.data[row][hit[0]])
    return total


def nearest_care(rd: RegionData, place: Place, *, categories: list[str] | None = None) -> Lookup:
    """Nearest site of each category by each mode from a place, with routes.

    Parameters
    ----------
    rd
        The region.
    place
        Where the person is.
    categories
        Categories to look up; default: every category with travel times.

    Returns
    -------
    Lookup
    """
    categories = categories or rd.categories
    rows = rd.cached("lookup_providers", lambda: _provider_rows(rd))
    crs = rd.manifest.get("crs") or rd.network(rd.modes[0]).crs
    to_xy = rd.cached(
        ("to_xy", crs), lambda: Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    )
    x, y = to_xy.transform(place.lon, place.lat)
    out: list[Nearest] = []
    snap_m: dict[str, float] = {}
    covered: dict[str, bool] = {}
    for mode in rd.modes:
        net = rd.network(mode)
        snap = snap_points(net, np.array([x]), np.array([y]))
        node, dist = int(snap.node[0]), float(snap.distance_m[0])
        snap_m[mode] = round(dist, 1)
        covered[mode] = dist <= rd.cover_m
        arrays = rd.access(mode)
        found: list[tuple[str, float, int]] = []
        for cat in categories:
            t = arrays.get(f"time_{cat}")
            if t is None:
                continue
            row = int(arrays[f"nearest_{cat}"][node])
            seconds = float(t[node]) + dist / rd.walk_speed_mps
            ok = covered[mode] and row >= 0 and math.isfinite(seconds)
            found.append((cat, seconds if ok else math.nan, row if ok else -1))
        finite = [s for _, s, r in found if r >= 0]
        limit = (max(finite) + 60.0) if finite else 0.0
        nodes = rows.get(f"node_{mode}", [])
        paths = _routes(net, node, [int(nodes[r]) for _, _, r in found if r >= 0], limit)
        for cat, seconds, row in found:
            if row < 0:
                out.append(Nearest(cat, mode, None, -1, None, None, None, []))
                continue
            path = paths.get(int(nodes[row]), [])
            line = [[round(place.lat, 6), round(place.lon, 6)]]
            line += [[round(float(net.lat[n]), 6), round(float(net.lon[n]), 6)] for n in path]
            if rows["point"][row] is not None:
                line.append(list(rows["point"][row]))
            out.append(
                Nearest(
                    category=cat,
                    mode=mode,
                    minutes=round(seconds / 60.0, 1),
                    provider_row=row,
                    provider_id=rows["id"][row],
                    name=rows["name"][row],
                    address=rows["address"][row],
                    route=line,
                )
            )
    logger.info(
        "nearest_care(%s): %s, %d categories × %d modes",
        rd.region,
        place.matched,
        len(categories),
        len(rd.modes),
    )
    return Lookup(place=place, snap_m=snap_m, covered=covered, nearest=out)


def _routes(
    net: ModeNetwork, source: int, targets: list[int], limit_s: float
) -> dict[int, list[int]]:
    """Paths from one source to several targets with a single bounded Dijkstra."""
    if not targets:
        return {}
    dist, pred = csgraph.dijkstra(
        net.csr(), directed=True, indices=source, return_predecessors=True, limit=limit_s
    )
    out: dict[int, list[int]] = {}
    for target in set(targets):
        if not np.isfinite(dist[target]):
            out[target] = []
            continue
        path, node = [target], target
        while node != source:
            node = int(pred[node])
            path.append(node)
        out[target] = path[::-1]
    return out


def _provider_rows(rd: RegionData) -> dict[str, list[Any]]:
    """What a look-up reads of each provider, as plain lists, once per build.

    Reading rows out of the frame cost a look-up more time than its routing.
    """
    providers = rd.layer("providers")
    records = [
        {k: v for k, v in r.items() if k != providers.geometry.name}
        for r in pd.DataFrame(providers).to_dict("records")
    ]
    points = [
        (round(g.y, 6), round(g.x, 6)) if g is not None and g.geom_type == "Point" else None
        for g in providers.geometry
    ]
    out: dict[str, list[Any]] = {
        "id": [_text(r.get("id")) for r in records],
        "name": [_text(r.get("name")) for r in records],
        "address": [_address(r) for r in records],
        "point": points,
    }
    for mode in rd.modes:
        column = f"node_{mode}"
        if column in providers.columns:
            out[column] = list(providers[column].to_numpy())
    return out


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _address(row: pd.Series | dict[str, Any]) -> str | None:
    parts = [_text(row.get(k)) for k in ("address", "city")]
    tail = " ".join(p for p in (_text(row.get("state")), _text(row.get("zip"))) if p)
    text = ", ".join(p for p in [*parts, tail] if p)
    return text or None


def lookup_summary(lookup: Lookup) -> list[dict[str, Any]]:
    """Rows for the look-up table: category, then minutes and site per mode."""
    rows: dict[str, dict[str, Any]] = {}
    for n in lookup.nearest:
        row = rows.setdefault(
            n.category,
            {"category": n.category, "label": CATEGORY_LABELS.get(n.category, n.category)},
        )
        row[n.mode] = {"minutes": n.minutes, "name": n.name, "address": n.address}
    return list(rows.values())
