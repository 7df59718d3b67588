"""Geocode US addresses: offline against a local reference first, online only when allowed.

Offline (:class:`OfflineGeocoder`) matches a parsed, normalised address
(:mod:`etl.inputs.addresses`) against a :class:`ReferenceIndex` built from address points (a
city's points-of-interest file, OSM ``addr:*`` features, any county address-point layer, transit
stops named after an address), street centrelines (OSM ``highway=*`` ways with a ``name``) and
points on named streets (transit stops named after an intersection, :mod:`etl.inputs.gtfs`).
Levels, best first — each result carries its quality:

``address_point``
    the house number and street found among the reference points (street names matched
    exactly, with direction/type relaxed, or fuzzily for typos such as "Olenatngy");
``street``
    the street found with numbered points on it: the number is interpolated between the
    nearest lower and higher numbers (same side of the street preferred) and snapped onto
    the street's centreline. Two more kinds of match are "street" too, being known to
    about a street's width rather than to the building: an address found only as a
    transit stop named after it (the stop stands at the kerb by the address; on the
    Franklin County data such stops lie a median 60 m, at most 400 m, from the city's
    point for the same address), and an intersection address ("Main St & High St")
    placed where its two streets cross;
``street_center``
    the street found, but nothing to say where along it the number lies (a centreline, or
    intersection points without numbers): the point of that street nearest to the ZIP's
    centre, or, for a centreline shorter than :data:`SHORT_STREET_M`, nearest to the
    town's centre (or its middle when the row names no town);
``zip`` / ``city``
    the centre (median) of the reference points in that ZIP or city.

A ZIP or city centre also disambiguates streets that share a name in several towns: matches
farther than ``max_hint_km`` from it are ignored. A row whose ZIP is unknown but whose town
is known looks up to ``2.5 * max_hint_km`` from the town's centre (such matches say so in
``geocode_match`` and score lower). A row whose ZIP and town the reference does not know at
all is left unmatched: even a street name found once in the reference is, for a row from
another town, most likely that town's own street ("200 E State St" is in most Ohio towns).
Give the reference ZIP centres (``use: centroids``) to reach such suburbs.

Online (only with ``online: true``): :class:`CensusBatchGeocoder` (the US Census Bureau's
batch geocoder, one POST per up to 10,000 addresses) and :class:`NominatimGeocoder`
(OpenStreetMap's Nominatim through geopy), each rate-limited, with every answer — "no match"
included — kept in an on-disk SQLite cache (:class:`GeocodeCache`) so that a rebuild never
asks twice. :class:`GeocoderChain` asks each geocoder in turn for the rows the previous
ones did not place at an accepted quality.

Every geocoder returns, for an input frame with columns ``address``, ``address2``, ``city``,
``state``, ``zip``, a frame on the same index with ``lon``, ``lat``, ``geocode_quality``
("" when not found), ``geocode_score`` (0-100), ``geocode_match`` (what was matched) and
``geocoder`` (which geocoder answered).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from rapidfuzz import fuzz, process

from etl._errors import InputError
from etl.config import (
    DEFAULT_ACCEPT,
    CensusConfig,
    GeocodingConfig,
    NominatimConfig,
    ReferenceSource,
)
from etl.hashing import sha256
from etl.inputs.addresses import (
    ParsedAddress,
    clean_text,
    normalize_city,
    normalize_state,
    normalize_zip,
    parse_address,
    parse_street_name,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from etl.config import RegionConfig

log = logging.getLogger(__name__)

#: Geocode quality levels, best first. "source" means the provider list gave coordinates.
QUALITY_LEVELS: Final[tuple[str, ...]] = (
    "source",
    "address_point",
    "street",
    "street_center",
    "zip",
    "city",
)
QUALITY_RANK: Final[dict[str, int]] = {q: i for i, q in enumerate(QUALITY_LEVELS)}

RESULT_COLUMNS: Final[tuple[str, ...]] = (
    "lon",
    "lat",
    "geocode_quality",
    "geocode_score",
    "geocode_match",
    "geocoder",
)
ADDRESS_COLUMNS: Final[tuple[str, ...]] = ("address", "address2", "city", "state", "zip")


#: A street this short (metres, its centreline's extent) may stand for an address on it with
#: no number to place (``street_center``) even when only a town's centre, or nothing, says
#: where to look.
SHORT_STREET_M: Final[float] = 1500.0
#: Address points (or crossings) this far apart are one place, not two.
ONE_PLACE_M: Final[float] = 500.0

#: OSM highway classes whose names are used as street centrelines.
_STREET_HIGHWAYS: Final[frozenset[str]] = frozenset(
    {
        "motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential",
        "living_street", "service", "road", "motorway_link", "trunk_link", "primary_link",
        "secondary_link", "tertiary_link", "pedestrian",
    }
)  # fmt: skip


# --------------------------------------------------------------------------------------
# The geocoder interface
# --------------------------------------------------------------------------------------


@runtime_checkable
class Geocoder(Protocol):
    """Anything that turns an address frame into a result frame (see the module docstring)."""

    name: str

    def geocode(self, addresses: pd.DataFrame) -> pd.DataFrame:
        """Geocode every row of ``addresses``; return :data:`RESULT_COLUMNS` on its index."""
        ...


def empty_result(index: pd.Index) -> pd.DataFrame:
    """Return a result frame with every row unmatched.

    Parameters
    ----------
    index
        The index of the input frame.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESULT_COLUMNS`; NaN coordinates, empty quality.
    """
    return pd.DataFrame(
        {
            "lon": np.full(len(index), np.nan),
            "lat": np.full(len(index), np.nan),
            "geocode_quality": pd.Series([""] * len(index), index=index, dtype=object),
            "geocode_score": np.zeros(len(index)),
            "geocode_match": pd.Series([""] * len(index), index=index, dtype=object),
            "geocoder": pd.Series([""] * len(index), index=index, dtype=object),
        },
        index=index,
    )


def _address_frame(addresses: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=addresses.index)
    for col in ADDRESS_COLUMNS:
        out[col] = addresses[col].map(clean_text) if col in addresses else ""
    return out


def _parse_rows(addresses: pd.DataFrame) -> list[ParsedAddress]:
    frame = _address_frame(addresses)
    return [
        parse_address(a, a2, c, s, z)
        for a, a2, c, s, z in zip(
            frame["address"],
            frame["address2"],
            frame["city"],
            frame["state"],
            frame["zip"],
            strict=True,
        )
    ]


# --------------------------------------------------------------------------------------
# Reference index
# --------------------------------------------------------------------------------------


@dataclass
class _StreetPoints:
    numbers: np.ndarray  # int
    x: np.ndarray
    y: np.ndarray


@dataclass
class ReferenceIndex:
    """Address points, street centrelines and ZIP/city centres in a metric CRS.

    Build it with :meth:`from_frames`; see :func:`read_reference` and
    :func:`read_osm_reference` for reading files.

    Attributes
    ----------
    points
        One row per address point: number, number_int, street_key, base, city, state,
        zip, lon, lat, source, label, quality, x, y.
    streets
        street_key → a (Multi)LineString in the metric CRS.
    crs
        The metric CRS of x/y and street geometry.
    street_points
        street_key → an (n, 2) array of metric points known to lie on that street, with no
        house number (transit stops at an intersection).
    """

    points: pd.DataFrame
    streets: dict[str, shapely.Geometry]
    crs: str
    street_points: dict[str, np.ndarray] = field(default_factory=dict)
    zip_centres: dict[str, tuple[float, float]] = field(default_factory=dict)
    city_centres: dict[str, tuple[float, float]] = field(default_factory=dict)
    _by_address: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)
    _by_street: dict[str, _StreetPoints] = field(default_factory=dict, repr=False)
    _by_base: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _bases: list[str] = field(default_factory=list, repr=False)
    _city_state: dict[str, str] = field(default_factory=dict, repr=False)
    _by_squashed: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _crossings: dict[frozenset[str], np.ndarray] = field(default_factory=dict, repr=False)
    _extent: dict[str, float] = field(default_factory=dict, repr=False)
    _to_metric: Transformer | None = field(default=None, repr=False)
    _to_wgs84: Transformer | None = field(default=None, repr=False)
    #: how the index was had (see :func:`cached_reference_index`); empty: built, no cache
    cache_record: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_frames(
        cls,
        points: pd.DataFrame | None = None,
        *,
        streets: pd.DataFrame | None = None,
        centroids: pd.DataFrame | None = None,
        crs: str | None = None,
    ) -> ReferenceIndex:
        """Build an index from address points, named street lines and centroid-only points.

        Parameters
        ----------
        points
            Address points: ``lon``, ``lat`` (WGS84) and either ``address`` (a street line)
            or ``number`` + ``street``; optional ``city``, ``state``, ``zip``, ``source``,
            ``label`` (shown in the match, "transit stop 7109") and ``quality`` (what a
            match on the point is worth: "address_point", the default, or "street" for a
            point known only to stand on the street by that address, such as a bus stop).
        streets
            Street centrelines: ``name`` and ``geometry`` (shapely lines in WGS84). Rows
            whose geometry is a Point are points on that street with no house number; an
            optional ``cross`` column names the other street at such a point (a corner).
        centroids
            Points that only inform ZIP and city centres: ``lon``, ``lat``, ``zip``/``city``.
        crs
            Metric CRS for distances; default: the UTM zone of the data.

        Returns
        -------
        ReferenceIndex
            The index, ready for :class:`OfflineGeocoder`.
        """
        pts = _normalise_points(points if points is not None else pd.DataFrame())
        cen = _normalise_centroids(centroids if centroids is not None else pd.DataFrame())
        lon_all = np.concatenate([pts["lon"].to_numpy(float), cen["lon"].to_numpy(float)])
        lat_all = np.concatenate([pts["lat"].to_numpy(float), cen["lat"].to_numpy(float)])
        if crs is None:
            if streets is not None and len(streets) and not len(lon_all):
                c = shapely.centroid(shapely.union_all(list(streets["geometry"])))
                lon_all, lat_all = np.array([c.x]), np.array([c.y])
            crs = _utm_for(lon_all, lat_all)
        to_metric = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        x, y = to_metric.transform(pts["lon"].to_numpy(float), pts["lat"].to_numpy(float))
        pts = pts.assign(x=np.asarray(x, float), y=np.asarray(y, float)).reset_index(drop=True)

        street_geoms: dict[str, list[shapely.Geometry]] = defaultdict(list)
        on_street: dict[str, list[tuple[float, float]]] = defaultdict(list)
        corners: dict[frozenset[str], list[tuple[float, float]]] = defaultdict(list)
        if streets is not None and len(streets):
            crosses = streets["cross"] if "cross" in streets else [""] * len(streets)
            for name, geom, cross in zip(
                streets["name"], streets["geometry"], crosses, strict=True
            ):
                if geom is None or shapely.is_empty(geom):
                    continue
                key = parse_street_name(name).street_key
                if not key:
                    continue
                if geom.geom_type == "Point":
                    x, y = to_metric.transform(geom.x, geom.y)
                    on_street[key].append((float(x), float(y)))
                    other = parse_street_name(clean_text(cross)).street_key
                    if other and other != key:
                        corners[frozenset((key, other))].append((float(x), float(y)))
                else:
                    street_geoms[key].append(shapely.transform(geom, _xy_transform(to_metric)))
        merged = {k: shapely.line_merge(shapely.union_all(v)) for k, v in street_geoms.items()}

        index = cls(
            points=pts,
            streets=merged,
            crs=str(crs),
            street_points={k: np.unique(np.array(v), axis=0) for k, v in on_street.items()},
            _crossings={k: np.unique(np.array(v), axis=0) for k, v in corners.items()},
            _to_metric=to_metric,
            _to_wgs84=to_wgs84,
        )
        index._build(cen)
        log.info(
            "reference index: %s address points, %s named streets, %s streets known by "
            "points on them, %s ZIP and %s city centres",
            f"{len(pts):,}",
            f"{len(merged):,}",
            f"{len(index.street_points):,}",
            f"{len(index.zip_centres):,}",
            f"{len(index.city_centres):,}",
        )
        return index

    def _build(self, centroids: pd.DataFrame) -> None:
        pts = self.points
        numbered = pts[pts["number_int"].notna() & (pts["street_key"] != "")]
        groups = numbered.groupby(["number", "street_key"], sort=False).indices
        positions = numbered.index.to_numpy()
        self._by_address = {k: positions[np.asarray(v)] for k, v in groups.items()}
        for key, idx in numbered.groupby("street_key", sort=False).indices.items():
            sub = numbered.iloc[idx]
            order = np.argsort(sub["number_int"].to_numpy(float), kind="stable")
            self._by_street[key] = _StreetPoints(
                numbers=sub["number_int"].to_numpy(float)[order].astype(np.int64),
                x=sub["x"].to_numpy(float)[order],
                y=sub["y"].to_numpy(float)[order],
            )
        keys = set(self._by_street) | set(self.streets) | set(self.street_points)
        by_base: dict[str, list[str]] = defaultdict(list)
        for key in sorted(keys):
            by_base[parse_street_name(key).name or key].append(key)
        self._by_base = dict(by_base)
        self._bases = sorted(self._by_base)
        squashed: dict[str, list[str]] = defaultdict(list)
        for base, keys_ in self._by_base.items():
            squashed[base.replace(" ", "")].extend(keys_)
        self._by_squashed = dict(squashed)

        cx, cy = self._to_metric.transform(
            centroids["lon"].to_numpy(float), centroids["lat"].to_numpy(float)
        )
        allx = np.concatenate([pts["x"].to_numpy(float), np.asarray(cx, float)])
        ally = np.concatenate([pts["y"].to_numpy(float), np.asarray(cy, float)])

        def both(col: str) -> np.ndarray:
            return np.concatenate([pts[col].to_numpy(object), centroids[col].to_numpy(object)])

        zips, cities, states = both("zip"), both("city"), both("state")
        self.zip_centres = _medians(zips, allx, ally)
        # a city is keyed "CITY|ST"; the bare "CITY" only where one state has that name
        pairs = zip(cities, states, strict=True)
        keyed = np.array([f"{c}|{s}" if c and s else "" for c, s in pairs], dtype=object)
        self.city_centres = _medians(keyed, allx, ally)
        city_states: dict[str, set[str]] = defaultdict(set)
        for c, s in zip(cities, states, strict=True):
            if c:
                city_states[c].add(s)
        bare = _medians(cities, allx, ally)
        for c, centre in bare.items():
            named = city_states[c] - {""}
            if len(named) <= 1:
                self.city_centres[c] = centre
                self._city_state[c] = next(iter(named), "")

    def set_zip_centres(self, zips: pd.DataFrame) -> int:
        """Take each row (``zip``, ``lon``, ``lat``) as the centre of its ZIP.

        An independent reference (e.g. the Census ZCTA internal points): its centre wins over
        the median of the other references' points in that ZIP, so a row placed at ``zip``
        quality is placed from it alone. Rows without a 5-digit ZIP or coordinates are
        skipped; a ZIP given twice keeps its first row.

        Returns
        -------
        int
            ZIP centres set.
        """
        if self._to_metric is None or zips.empty:
            return 0
        cen = _normalise_centroids(zips)
        ok = np.isfinite(cen["lon"].to_numpy(float)) & np.isfinite(cen["lat"].to_numpy(float))
        ok &= cen["zip"].astype(str).str.fullmatch(r"\d{5}").to_numpy(dtype=bool)
        cen = cen[ok].drop_duplicates("zip")
        x, y = self._to_metric.transform(cen["lon"].to_numpy(float), cen["lat"].to_numpy(float))
        for z, xx, yy in zip(cen["zip"], np.asarray(x, float), np.asarray(y, float), strict=True):
            self.zip_centres[str(z)] = (float(xx), float(yy))
        log.info("reference index: %s ZIP centres from an independent list", f"{len(cen):,}")
        return len(cen)

    # -- helpers used by the geocoder -----------------------------------------------------

    def centres_lonlat(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Return the ZIPs with a centre and the centres' WGS84 lon and lat."""
        zips = list(self.zip_centres)
        if not zips:
            return [], np.empty(0), np.empty(0)
        xy = np.array([self.zip_centres[z] for z in zips])
        lon, lat = self._to_wgs84.transform(xy[:, 0], xy[:, 1])
        return zips, np.asarray(lon, float), np.asarray(lat, float)

    def to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        """Return WGS84 lon/lat of a metric point."""
        lon, lat = self._to_wgs84.transform(x, y)
        return float(lon), float(lat)

    def city_centre(self, city: str, state: str) -> tuple[float, float] | None:
        """Return the centre of a city (in that state when given), or None."""
        if not city:
            return None
        if state and f"{city}|{state}" in self.city_centres:
            return self.city_centres[f"{city}|{state}"]
        if state and self._city_state.get(city, "") not in ("", state):
            return None  # a town of that name in another state
        return self.city_centres.get(city)

    def street_extent(self, key: str) -> float:
        """Return the bounding-box diagonal (metres) of everything known about a street.

        Numbered points, centreline and points on the street together: a street name
        found in two towns has a large extent, a short street in one place a small one.
        """
        if key in self._extent:
            return self._extent[key]
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        sp = self._by_street.get(key)
        if sp is not None:
            xs.append(sp.x)
            ys.append(sp.y)
        if key in self.street_points:
            xs.append(self.street_points[key][:, 0])
            ys.append(self.street_points[key][:, 1])
        if key in self.streets:
            x0, y0, x1, y1 = shapely.bounds(self.streets[key])
            xs.append(np.array([x0, x1]))
            ys.append(np.array([y0, y1]))
        if not xs:
            extent = np.inf
        else:
            x, y = np.concatenate(xs), np.concatenate(ys)
            extent = float(np.hypot(np.ptp(x), np.ptp(y)))
        self._extent[key] = extent
        return extent

    def crossing_points(self, a: str, b: str) -> np.ndarray:
        """Return metric points where streets ``a`` and ``b`` meet ((n, 2), maybe empty).

        From points on the streets that name both (transit stops at that corner) where
        there are any; else from where the two centrelines cross or come within 30 m; else
        from points on one street within 60 m of the other's points or centreline.
        """
        corner = self._crossings.get(frozenset((a, b)))
        if corner is not None and len(corner):
            return corner
        la, lb = self.streets.get(a), self.streets.get(b)
        found: list[tuple[float, float]] = []
        if la is not None and lb is not None:
            inter = shapely.intersection(la, lb)
            for g in shapely.get_parts(inter):
                c = shapely.centroid(g)
                if not shapely.is_empty(c):
                    found.append((float(c.x), float(c.y)))
            if not found and shapely.distance(la, lb) <= 30.0:
                ends = shapely.get_coordinates(shapely.shortest_line(la, lb))
                found.append((float(ends[:, 0].mean()), float(ends[:, 1].mean())))
        if not found:
            pa_, pb_ = self.street_points.get(a), self.street_points.get(b)
            for pts, other_pts, other_line in ((pa_, pb_, lb), (pb_, pa_, la)):
                if pts is None:
                    continue
                for x, y in pts:
                    near_pt = other_pts is not None and bool(
                        (np.hypot(other_pts[:, 0] - x, other_pts[:, 1] - y) <= 60.0).any()
                    )
                    near_line = other_line is not None and (
                        shapely.distance(other_line, shapely.Point(x, y)) <= 60.0
                    )
                    if near_pt or near_line:
                        found.append((float(x), float(y)))
        return np.array(found, dtype=float).reshape(-1, 2)

    def known_zips(self) -> set[str]:
        """Return every ZIP that has a centre in the index."""
        return set(self.zip_centres)

    def street_keys_for(
        self, parsed: ParsedAddress, *, fuzzy_min: float, exact_only: bool = True
    ) -> list[tuple[str, float]]:
        """Return candidate street keys for a parsed address with a match score each.

        An exact key known to the index is the only candidate unless ``exact_only`` is
        False; then the same name with another direction or type follows it ("BROAD ST"
        also tries "E BROAD ST" and "W BROAD ST").
        """
        key = parsed.street_key
        known = key in self._by_street or key in self.streets or key in self.street_points
        if known and exact_only:
            return [(key, 100.0)]
        base = parsed.name
        out: list[tuple[str, float]] = [(key, 100.0)] if known else []
        for cand in self._by_base.get(base, []):
            s = _compat_score(parsed, parse_street_name(cand))
            if s and cand != key:
                out.append((cand, s))
        if not out:
            # "City Gate" for "Citygate Dr", "Blue Ash" for "Blueash Rd": compare without spaces
            for squash in {base.replace(" ", ""), f"{base}{parsed.street_type}".replace(" ", "")}:
                for cand in self._by_squashed.get(squash, []):
                    ref = parse_street_name(cand)
                    if not parsed.predir or not ref.predir or parsed.predir == ref.predir:
                        out.append((cand, 90.0))
        if not out and base and len(base) >= 4:
            for cand_base, score, _ in process.extract(
                base, self._bases, scorer=fuzz.ratio, score_cutoff=fuzzy_min, limit=5
            ):
                for cand in self._by_base[cand_base]:
                    s = _compat_score(parsed, parse_street_name(cand))
                    if s:
                        out.append((cand, s * score / 100.0 * 0.95))
        out.sort(key=lambda t: -t[1])
        return out


def _xy_transform(tr: Transformer) -> Callable[[np.ndarray], np.ndarray]:
    def f(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return f


def _utm_for(lon: np.ndarray, lat: np.ndarray) -> str:
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return "EPSG:3857"
    lon0, lat0 = float(np.median(lon[ok])), float(np.median(lat[ok]))
    zone = int((lon0 + 180) // 6) + 1
    return f"EPSG:{32600 + zone if lat0 >= 0 else 32700 + zone}"


def _medians(keys: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    frame = pd.DataFrame({"k": keys, "x": x, "y": y})
    frame = frame[(frame["k"] != "") & frame["k"].notna() & np.isfinite(frame["x"])]
    for k, sub in frame.groupby("k", sort=False):
        out[str(k)] = (float(sub["x"].median()), float(sub["y"].median()))
    return out


def _compat_score(q: ParsedAddress, ref: ParsedAddress) -> float:
    """Score how well a reference street's direction/type fit the query's (0 = not at all)."""
    score = 98.0
    for a, b, weight in ((q.predir, ref.predir, 6.0), (q.postdir, ref.postdir, 6.0)):
        if a and b and a != b:
            return 0.0
        if a != b:
            score -= weight
    if q.street_type and ref.street_type and q.street_type != ref.street_type:
        score -= 15.0
    elif q.street_type != ref.street_type:
        score -= 4.0
    return score


def _normalise_points(points: pd.DataFrame) -> pd.DataFrame:
    cols = [
        "number",
        "number_int",
        "street_key",
        "base",
        "city",
        "state",
        "zip",
        "lon",
        "lat",
        "source",
        "label",
        "quality",
    ]
    if points is None or not len(points):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols}).astype(
            {"lon": float, "lat": float}
        )
    lon = pd.to_numeric(points["lon"], errors="coerce").to_numpy(float)
    lat = pd.to_numeric(points["lat"], errors="coerce").to_numpy(float)
    n = len(points)

    def col(name: str) -> list[str]:
        return [clean_text(v) for v in points[name]] if name in points else [""] * n

    city, state, zips = col("city"), col("state"), col("zip")
    if "address" in points:
        lines = col("address")
    else:
        lines = [f"{a} {b}".strip() for a, b in zip(col("number"), col("street"), strict=True)]
    rows = []
    for i in range(n):
        p = parse_address(lines[i], "", city[i], state[i], zips[i])
        rows.append((p.number, p.number_int, p.street_key, p.name, p.city, p.state, p.zip))
    out = pd.DataFrame(rows, columns=cols[:7], index=range(n))
    out["number_int"] = pd.array(
        [v if v is not None else pd.NA for v in out["number_int"]], dtype="Int64"
    )
    out["lon"], out["lat"] = lon, lat
    out["source"] = col("source") if "source" in points else ""
    out["label"] = col("label") if "label" in points else ""
    out["quality"] = [q or "address_point" for q in col("quality")]
    ok = np.isfinite(lon) & np.isfinite(lat) & ~((lon == 0) & (lat == 0))
    return out[ok].reset_index(drop=True)


def _normalise_centroids(centroids: pd.DataFrame) -> pd.DataFrame:
    if centroids is None or not len(centroids):
        return pd.DataFrame({"lon": [], "lat": [], "zip": [], "city": [], "state": []}).astype(
            {"zip": object, "city": object, "state": object}
        )
    lon = pd.to_numeric(centroids["lon"], errors="coerce").to_numpy(float)
    lat = pd.to_numeric(centroids["lat"], errors="coerce").to_numpy(float)
    n = len(centroids)
    zips = [normalize_zip(v) for v in centroids["zip"]] if "zip" in centroids else [""] * n
    cities = [normalize_city(v) for v in centroids["city"]] if "city" in centroids else [""] * n
    states = [normalize_state(v) for v in centroids["state"]] if "state" in centroids else [""] * n
    out = pd.DataFrame({"lon": lon, "lat": lat, "zip": zips, "city": cities, "state": states})
    ok = np.isfinite(lon) & np.isfinite(lat) & ~((lon == 0) & (lat == 0))
    return out[ok].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Reading reference files
# --------------------------------------------------------------------------------------


def read_osm_reference(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read address points and named street lines from an OSM file with pyosmium.

    Parameters
    ----------
    path
        An ``.osm.pbf``, ``.osm`` or ``.osm.bz2`` file. Clipped extracts are fine: way
        nodes missing from the file are skipped.

    Returns
    -------
    points : pandas.DataFrame
        ``number``, ``street``, ``city``, ``state``, ``zip``, ``lon``, ``lat``, ``source``
        for every node and way with ``addr:housenumber`` and ``addr:street`` (ways: the
        centroid of their nodes).
    streets : pandas.DataFrame
        ``name`` and ``geometry`` (WGS84 LineString) for every named ``highway=*`` way of
        a road class, once per name variant (``name``, ``name_1``, ``alt_name``,
        ``old_name``, and each route number in ``ref`` such as "US 62").

    Raises
    ------
    InputError
        If the file is missing or cannot be read.
    """
    import osmium

    path = Path(path)
    if not path.is_file():
        msg = f"{path}: OSM reference file not found; check `geocoding.reference[].path`."
        raise InputError(msg)
    points: list[tuple[str, str, str, str, str, float, float, str]] = []
    names: list[str] = []
    geoms: list[shapely.Geometry] = []
    try:
        fp = osmium.FileProcessor(str(path)).with_locations()
        for obj in fp:
            tags = obj.tags
            if "addr:housenumber" in tags and "addr:street" in tags:
                if obj.is_node():
                    lon, lat = obj.location.lon, obj.location.lat
                elif obj.is_way():
                    coords = [(n.lon, n.lat) for n in obj.nodes if n.location.valid()]
                    if not coords:
                        continue
                    arr = np.asarray(coords)
                    lon, lat = float(arr[:, 0].mean()), float(arr[:, 1].mean())
                else:
                    continue
                points.append(
                    (
                        tags.get("addr:housenumber"),
                        tags.get("addr:street"),
                        tags.get("addr:city", ""),
                        tags.get("addr:state", ""),
                        tags.get("addr:postcode", ""),
                        lon,
                        lat,
                        f"osm:{obj.type_str()}{obj.id}",
                    )
                )
            if obj.is_way() and tags.get("highway") in _STREET_HIGHWAYS:
                variants = {tags.get(k) for k in ("name", "name_1", "alt_name", "old_name")}
                # route numbers ("US 62;SR 3"): transit stops and addresses use them as names
                variants |= {r.strip() for r in (tags.get("ref") or "").split(";")}
                variants -= {None, ""}
                if not variants:
                    continue
                coords = [(n.lon, n.lat) for n in obj.nodes if n.location.valid()]
                if len(coords) < 2:
                    continue
                line = shapely.LineString(coords)
                for v in sorted(variants):
                    names.append(v)
                    geoms.append(line)
    except (RuntimeError, OSError) as exc:
        msg = f"{path}: could not read the OSM file: {exc}"
        raise InputError(msg) from exc
    pts = pd.DataFrame(
        points, columns=["number", "street", "city", "state", "zip", "lon", "lat", "source"]
    )
    streets = pd.DataFrame({"name": names, "geometry": geoms})
    log.info(
        "read_osm_reference read %s address points and %s named street ways from %s",
        f"{len(pts):,}",
        f"{len(streets):,}",
        path.name,
    )
    return pts, streets


def read_reference(
    ref: ReferenceSource, *, resolve: Callable[[str], Path] = Path, role: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read one reference file into address points (or centroid points) and street lines.

    Parameters
    ----------
    ref
        The reference source from the config.
    resolve
        Turns a config path into a file path (``RegionConfig.resolve``).
    role
        The reference's role in the build (``geocoding.reference.<k>``): the cells whose
        control characters were replaced are recorded under it (:mod:`etl.controls`).

    Returns
    -------
    points : pandas.DataFrame
        Columns as accepted by :meth:`ReferenceIndex.from_frames` (``address`` or
        ``number``/``street``, ``city``, ``state``, ``zip``, ``lon``, ``lat``, ``source``;
        ``label`` for transit stops).
    streets : pandas.DataFrame
        ``name``/``geometry``: centrelines of an OSM file, points on streets (with
        ``cross``) of a GTFS feed, empty for other files.

    Raises
    ------
    InputError
        If the file is missing or unreadable, or a mapped column is absent.
    """
    from etl.inputs.gtfs import is_gtfs, read_gtfs_reference
    from etl.inputs.tables import read_table  # shared reader (encoding checks, BOM, columns)

    path = resolve(ref.path)
    fmt = ref.format
    if fmt == "auto":
        name = path.name.lower()
        if ".osm" in name or name.endswith(".pbf"):
            fmt = "osm"
        elif is_gtfs(path):
            fmt = "gtfs"
        else:
            fmt = _format_from_suffix(name)
    if fmt == "osm":
        return read_osm_reference(path)
    if fmt == "gtfs":
        return read_gtfs_reference(path, source=ref.source, role=role)
    frame, lonlat = read_table(
        path,
        fmt=fmt,
        encoding=ref.encoding,
        layer=ref.layer,
        crs=ref.crs if "crs" in ref.model_fields_set else None,
        reader_path=str(path),
        role=role,
    )
    cols = dict(ref.columns)
    missing = sorted(c for c in cols.values() if c not in frame.columns)
    if missing:
        msg = (
            f"{path}: reference column(s) {', '.join(map(repr, missing))} not in the file; "
            f"its columns are: {', '.join(map(str, frame.columns))}"
        )
        raise InputError(msg)
    out = pd.DataFrame(index=frame.index)
    for fld in ("address", "number", "street", "city", "state", "zip"):
        if fld in cols:
            out[fld] = frame[cols[fld]]
    if "lon" in cols and "lat" in cols:
        lon = pd.to_numeric(frame[cols["lon"]], errors="coerce").to_numpy(float)
        lat = pd.to_numeric(frame[cols["lat"]], errors="coerce").to_numpy(float)
        if CRS.from_user_input(ref.crs) != CRS.from_epsg(4326):
            tr = Transformer.from_crs(ref.crs, "EPSG:4326", always_xy=True)
            lon, lat = tr.transform(lon, lat)
        out["lon"], out["lat"] = lon, lat
    elif lonlat is not None:
        out["lon"], out["lat"] = lonlat
    else:
        msg = f"{path}: a reference CSV needs `lon` and `lat` in `columns` (it has no geometry)"
        raise InputError(msg)
    out["source"] = ref.source or path.name
    log.info("read_reference read %s rows from %s", f"{len(out):,}", path.name)
    return out, pd.DataFrame({"name": [], "geometry": []})


def _format_from_suffix(name: str) -> str:
    suffixes = {".csv": "csv", ".txt": "csv", ".gpkg": "gpkg", ".shp": "shp", ".zip": "shp"}
    suffixes |= {".geojson": "geojson", ".json": "geojson"}
    for suffix, fmt in suffixes.items():
        if name.endswith(suffix):
            return fmt
    return "csv"


def build_reference_index(
    refs: Sequence[ReferenceSource],
    *,
    resolve: Callable[[str], Path] = Path,
    crs: str | None = None,
) -> ReferenceIndex:
    """Read every reference file and build one :class:`ReferenceIndex`.

    Parameters
    ----------
    refs
        Reference sources (``geocoding.reference`` of a region config).
    resolve
        Turns a config path into a file path.
    crs
        Metric CRS (the region's); default: the data's UTM zone.

    Returns
    -------
    ReferenceIndex
        The combined index.
    """
    points, streets, centroids, zip_points = [], [], [], []
    for k, ref in enumerate(refs):
        pts, lines = read_reference(ref, resolve=resolve, role=f"geocoding.reference.{k}")
        if ref.use == "zip_centres":
            zip_points.append(pts)
            continue
        (centroids if ref.use == "centroids" else points).append(pts)
        if len(lines):
            streets.append(lines)
    index = ReferenceIndex.from_frames(
        pd.concat(points, ignore_index=True) if points else None,
        streets=pd.concat(streets, ignore_index=True) if streets else None,
        centroids=pd.concat(centroids, ignore_index=True) if centroids else None,
        crs=crs,
    )
    if zip_points:
        index.set_zip_centres(pd.concat(zip_points, ignore_index=True))
    return index


# --------------------------------------------------------------------------------------
# Offline geocoder
# --------------------------------------------------------------------------------------


class OfflineGeocoder:
    """Match addresses against a :class:`ReferenceIndex` (see the module docstring).

    Parameters
    ----------
    index
        The reference index.
    fuzzy_min_score
        Minimum rapidfuzz ratio for a misspelt street name.
    max_hint_km
        Ignore matches farther than this from the row's ZIP (or city) centre.
    """

    name = "offline"

    def __init__(
        self, index: ReferenceIndex, *, fuzzy_min_score: float = 88.0, max_hint_km: float = 12.0
    ):
        self.index = index
        self.fuzzy_min_score = fuzzy_min_score
        self.max_hint_m = max_hint_km * 1000.0
        pts = index.points
        self._px = pts["x"].to_numpy(float)
        self._py = pts["y"].to_numpy(float)
        self._labels = pts["label"].to_numpy(object) if "label" in pts else None
        self._quality = pts["quality"].to_numpy(object) if "quality" in pts else None

    def geocode(self, addresses: pd.DataFrame) -> pd.DataFrame:
        """Geocode every row; see the module docstring for the result columns.

        Parameters
        ----------
        addresses
            Columns ``address`` and optionally ``address2``, ``city``, ``state``, ``zip``.

        Returns
        -------
        pandas.DataFrame
            :data:`RESULT_COLUMNS` on the input's index.
        """
        out = empty_result(addresses.index)
        parsed = _parse_rows(addresses)
        cols = {c: out[c].to_numpy(copy=True) for c in RESULT_COLUMNS}
        for i, p in enumerate(parsed):
            res = self.geocode_parsed(p)
            if res is None:
                continue
            x, y, quality, score, match = res
            lon, lat = self.index.to_lonlat(x, y)
            cols["lon"][i], cols["lat"][i] = lon, lat
            cols["geocode_quality"][i], cols["geocode_score"][i] = quality, score
            cols["geocode_match"][i], cols["geocoder"][i] = match, self.name
        for c in RESULT_COLUMNS:
            out[c] = cols[c]
        counts = out["geocode_quality"].replace("", "unmatched").value_counts().to_dict()
        log.info(
            "offline geocoder placed %s of %s rows: %s",
            f"{(out['geocode_quality'] != '').sum():,}",
            f"{len(out):,}",
            counts,
        )
        return out

    # -- one address ------------------------------------------------------------------------

    def _hint(self, p: ParsedAddress) -> tuple[tuple[float, float] | None, str]:
        if p.zip and p.zip in self.index.zip_centres:
            return self.index.zip_centres[p.zip], f"ZIP {p.zip}"
        centre = self.index.city_centre(p.city, p.state)
        if centre is not None:
            return centre, p.city
        return None, ""

    def geocode_parsed(self, p: ParsedAddress) -> tuple[float, float, str, float, str] | None:
        """Geocode one parsed address.

        Parameters
        ----------
        p
            The parsed address.

        Returns
        -------
        tuple or None
            ``(x, y, quality, score, matched)`` in the index's metric CRS, or None.
        """
        idx = self.index
        hint, hint_label = self._hint(p)
        by_zip = hint_label.startswith("ZIP")
        if hint is None and (p.zip or p.city):
            # The row names a ZIP or town the reference does not know: a street of the same
            # name in the reference is most likely another town's (a "200 E State St" is in
            # most Ohio towns), however unique it is in the reference.
            return None
        if p.kind == "intersection":
            hit = self._intersection(p, hint, hint_label)
            if hit is not None:
                return hit
        if p.name:
            cands = idx.street_keys_for(p, fuzzy_min=self.fuzzy_min_score)
            if p.number and cands:
                for method in (self._address_point, self._interpolate):
                    hits = [
                        h for c in _best_group(cands) if (h := method(p, [c], hint)) is not None
                    ]
                    if not hits and len(cands) > len(_best_group(cands)):
                        hits = [h for c in cands if (h := method(p, [c], hint)) is not None][:1]
                    if hits:
                        return _closest(hits, hint)
            if p.number and cands and hint is not None and not by_zip:
                hit = self._wide(p, cands, hint)
                if hit is not None:
                    return hit
            for key, score in cands:
                if score < 85:
                    continue  # a different street type ("Metro Pl" vs "Metro Ave")
                if by_zip:
                    pt = self._street_center(key, hint)
                    where = f" near {hint_label}"
                elif key in idx.streets and idx.street_extent(key) <= SHORT_STREET_M:
                    # only a town's centre (or, for a row with no ZIP or town, nothing) says
                    # where to look: a short street still places the row within its length.
                    # Its centreline says how long it is; a street known only from a stop or
                    # two may run on for kilometres.
                    pt = self._street_center(key, hint, radius=self._far_m)
                    length = f"a street of {idx.street_extent(key):,.0f} m"
                    where = f" ({length} near {hint_label})" if hint_label else f" ({length})"
                else:
                    continue  # a long street and only a town's centre: the town is honest
                if pt is not None:
                    return pt[0], pt[1], "street_center", round(score * 0.8, 1), f"{key}{where}"
        if p.zip and p.zip in idx.zip_centres:
            x, y = idx.zip_centres[p.zip]
            return x, y, "zip", 40.0, f"ZIP {p.zip}"
        centre = idx.city_centre(p.city, p.state)
        if centre is not None:
            return centre[0], centre[1], "city", 25.0, p.city
        return None

    @property
    def _far_m(self) -> float:
        return 2.5 * self.max_hint_m

    def _near_hint(
        self, x: np.ndarray, y: np.ndarray, hint: tuple[float, float] | None
    ) -> np.ndarray:
        if hint is None:
            return np.ones(len(x), dtype=bool)
        return np.hypot(x - hint[0], y - hint[1]) <= self.max_hint_m

    def _label(self, rows: np.ndarray | list[int]) -> str:
        if self._labels is None:
            return ""
        labels = self._labels[np.asarray(rows, dtype=int)]
        named = sorted({str(v) for v in labels if v})
        return f" ({named[0]})" if len(named) == 1 else ""

    def _address_point(
        self, p: ParsedAddress, cands: list[tuple[str, float]], hint: tuple[float, float] | None
    ) -> tuple[float, float, str, float, str] | None:
        for key, score in cands:
            rows = self._address_rows(p, key)
            if rows is None:
                continue
            x, y = self._px[rows], self._py[rows]
            ok = self._near_hint(x, y, hint)
            if not ok.any():
                # One place only, a little beyond the ZIP's reach: the ZIP is likely wrong.
                one_place = float(np.hypot(x - x.mean(), y - y.mean()).max()) <= ONE_PLACE_M
                if hint is None or not one_place:
                    continue
                if np.hypot(x.mean() - hint[0], y.mean() - hint[1]) > self._far_m:
                    continue
                rows, x, y, quality = self._best_points(rows, x, y)
                k = int(np.argmin(np.hypot(x - x.mean(), y - y.mean())))
                return (
                    float(x[k]), float(y[k]), quality, round(score * 0.7, 1),
                    f"{p.number} {key}{self._label(rows[[k]])} (far from its ZIP/city)",
                )  # fmt: skip
            rows, x, y = rows[ok], x[ok], y[ok]
            if hint is not None:
                j = int(np.argmin(np.hypot(x - hint[0], y - hint[1])))
                # several points at one address (tenants): take the one nearest the others
                near = np.hypot(x - x[j], y - y[j]) <= 300
                rows, xs, ys = rows[near], x[near], y[near]
            else:
                xs, ys = x, y
            rows, xs, ys, quality = self._best_points(rows, xs, ys)
            mx, my = float(np.median(xs)), float(np.median(ys))
            k = int(np.argmin(np.hypot(xs - mx, ys - my)))
            return (
                float(xs[k]), float(ys[k]), quality, score,
                f"{p.number} {key}{self._label(rows[[k]])}",
            )  # fmt: skip
        return None

    def _best_points(
        self, rows: np.ndarray, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """Keep the points of the best quality among copies of one address, and that quality.

        A building's own point ("address_point") beats a bus stop named after the address
        (a "street" point: it stands at the kerb, often tens of metres away).
        """
        if self._quality is None:
            return rows, x, y, "address_point"
        quality = self._quality[rows]
        best = min(quality, key=lambda q: QUALITY_RANK.get(q, 99))
        keep = quality == best
        return rows[keep], x[keep], y[keep], str(best)

    def _address_rows(self, p: ParsedAddress, key: str) -> np.ndarray | None:
        rows = self.index._by_address.get((p.number, key))
        if rows is None and p.number_int is not None and str(p.number_int) != p.number:
            rows = self.index._by_address.get((str(p.number_int), key))
        return rows

    def _interpolate(
        self,
        p: ParsedAddress,
        cands: list[tuple[str, float]],
        hint: tuple[float, float] | None,
        *,
        radius: float | None = None,
    ) -> tuple[float, float, str, float, str] | None:
        n = p.number_int
        if n is None:
            return None
        for key, score in cands:
            sp = self.index._by_street.get(key)
            if sp is None:
                continue
            if hint is None:
                ok = np.ones(len(sp.x), dtype=bool)
            else:
                reach = self.max_hint_m if radius is None else radius
                ok = np.hypot(sp.x - hint[0], sp.y - hint[1]) <= reach
            if ok.sum() == 0:
                continue
            nums, xs, ys = sp.numbers[ok], sp.x[ok], sp.y[ok]
            est = _interpolate_number(n, nums, xs, ys)
            if est is None:
                continue
            x, y, span = est
            line = self.index.streets.get(key)
            if line is not None:
                snapped = _nearest_on(line, x, y)
                if snapped is not None and np.hypot(snapped[0] - x, snapped[1] - y) <= 150:
                    x, y = snapped
            q = round(score * (0.9 if span <= 200 else 0.8), 1)
            return x, y, "street", q, f"{p.number} {key} (between {span} numbers)"
        return None

    def _wide(
        self, p: ParsedAddress, cands: list[tuple[str, float]], hint: tuple[float, float]
    ) -> tuple[float, float, str, float, str] | None:
        """Second look for a row whose ZIP is unknown but whose town is known.

        A town's centre says little about where along a long street the row lies (Columbus
        spans 30 km): address points and numbers up to ``2.5 * max_hint_km`` from it are
        taken, the nearest first, for street names of a compatible type only.
        """
        why = "far from its town centre"
        cands = [c for c in cands if c[1] >= 85]
        for key, score in cands:
            rows = self._address_rows(p, key)
            if rows is None:
                continue
            x, y = self._px[rows], self._py[rows]
            ok = np.hypot(x - hint[0], y - hint[1]) <= self._far_m
            rows, x, y = rows[ok], x[ok], y[ok]
            if not len(x):
                continue
            j = int(np.argmin(np.hypot(x - hint[0], y - hint[1])))
            near = np.hypot(x - x[j], y - y[j]) <= ONE_PLACE_M
            rows, x, y, quality = self._best_points(rows[near], x[near], y[near])
            k = int(np.argmin(np.hypot(x - np.median(x), y - np.median(y))))
            return (
                float(x[k]), float(y[k]), quality, round(score * 0.8, 1),
                f"{p.number} {key}{self._label(rows[[k]])} ({why})",
            )  # fmt: skip
        for key, score in cands:
            hit = self._interpolate(p, [(key, score)], hint, radius=self._far_m)
            if hit is not None:
                x, y, quality, q, match = hit
                return x, y, quality, round(q * 0.9, 1), f"{match[:-1]}; {why})"
        return None

    def _intersection(
        self, p: ParsedAddress, hint: tuple[float, float] | None, hint_label: str
    ) -> tuple[float, float, str, float, str] | None:
        """Place "Main St & High St" where the two streets meet (quality "street")."""
        idx = self.index
        fuzzy = self.fuzzy_min_score
        a_cands = idx.street_keys_for(p, fuzzy_min=fuzzy, exact_only=False)[:4]
        cross = parse_street_name(p.cross)
        b_cands = idx.street_keys_for(cross, fuzzy_min=fuzzy, exact_only=False)[:4]
        if hint is None:
            reach = None
        else:
            reach = self.max_hint_m if hint_label.startswith("ZIP") else self._far_m
        found: list[tuple[float, str, str, np.ndarray]] = []
        for ka, sa in a_cands:
            for kb, sb in b_cands:
                if ka == kb:
                    continue
                pts = idx.crossing_points(ka, kb)
                if hint is not None and len(pts):
                    pts = pts[np.hypot(pts[:, 0] - hint[0], pts[:, 1] - hint[1]) <= reach]
                if len(pts):
                    found.append((min(sa, sb), ka, kb, pts))
        if not found:
            return None
        found.sort(key=lambda t: -t[0])
        score, ka, kb, pts = found[0]
        if hint is not None:
            j = int(np.argmin(np.hypot(pts[:, 0] - hint[0], pts[:, 1] - hint[1])))
            pts = pts[np.hypot(pts[:, 0] - pts[j, 0], pts[:, 1] - pts[j, 1]) <= ONE_PLACE_M]
        elif np.hypot(*np.ptp(pts, axis=0)) > ONE_PLACE_M:
            return None  # the two names meet in several places: no telling which
        x, y = float(pts[:, 0].mean()), float(pts[:, 1].mean())
        return x, y, "street", round(score * 0.9, 1), f"{ka} & {kb}"

    def _street_center(
        self, key: str, hint: tuple[float, float] | None, *, radius: float | None = None
    ) -> tuple[float, float] | None:
        """The point of a street nearest ``hint`` (within ``radius``), or its middle."""
        idx = self.index
        line = idx.streets.get(key)
        on_street = idx.street_points.get(key)
        sp = idx._by_street.get(key)
        if hint is None:
            if line is not None:
                c = shapely.line_interpolate_point(line, 0.5, normalized=True)
                return float(c.x), float(c.y)
            if on_street is not None:
                xy = on_street
            elif sp is not None:
                xy = np.column_stack([sp.x, sp.y])
            else:
                return None
            k = int(np.argmin(np.hypot(*(xy - np.median(xy, axis=0)).T)))
            return float(xy[k, 0]), float(xy[k, 1])
        reach = self.max_hint_m if radius is None else radius
        options: list[tuple[float, float]] = []
        if line is not None and (pt := _nearest_on(line, *hint)) is not None:
            options.append(pt)
        if on_street is not None:
            k = int(np.argmin(np.hypot(on_street[:, 0] - hint[0], on_street[:, 1] - hint[1])))
            options.append((float(on_street[k, 0]), float(on_street[k, 1])))
        options = [o for o in options if np.hypot(o[0] - hint[0], o[1] - hint[1]) <= reach]
        if options:
            return min(options, key=lambda o: np.hypot(o[0] - hint[0], o[1] - hint[1]))
        if line is None and on_street is None and sp is not None:
            ok = np.hypot(sp.x - hint[0], sp.y - hint[1]) <= reach
            if ok.any():
                return float(np.median(sp.x[ok])), float(np.median(sp.y[ok]))
        return None


def _best_group(cands: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Candidates scoring within 1 point of the best ("E 12TH AVE" and "W 12TH AVE")."""
    top = cands[0][1]
    return [c for c in cands if c[1] >= top - 1.0]


def _closest(
    hits: list[tuple[float, float, str, float, str]], hint: tuple[float, float] | None
) -> tuple[float, float, str, float, str]:
    if hint is None or len(hits) == 1:
        return hits[0]
    return min(hits, key=lambda h: np.hypot(h[0] - hint[0], h[1] - hint[1]))


def _interpolate_number(
    n: int, nums: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> tuple[float, float, int] | None:
    """Estimate where number ``n`` lies from numbered points on one street.

    Brackets ``n`` with the nearest lower and higher numbers (same parity first) and
    interpolates linearly; with numbers on one side only, extrapolates from the two nearest
    when they are close in number, or takes the nearest within 100 numbers.

    Returns
    -------
    tuple or None
        ``(x, y, span)`` where span is the number gap interpolated across, or None.
    """
    for parity_only in (True, False):
        sel = (nums % 2 == n % 2) if parity_only else np.ones(len(nums), dtype=bool)
        if not sel.any():
            continue
        nn, xx, yy = nums[sel], xs[sel], ys[sel]
        lo = np.nonzero(nn < n)[0]
        hi = np.nonzero(nn > n)[0]
        if len(lo) and len(hi):
            i, j = lo[-1], hi[0]
            gap = float(nn[j] - nn[i])
            dist = float(np.hypot(xx[j] - xx[i], yy[j] - yy[i]))
            if gap <= 2000 and dist <= 3000:
                t = (n - nn[i]) / gap
                return xx[i] + t * (xx[j] - xx[i]), yy[i] + t * (yy[j] - yy[i]), int(gap)
        if parity_only:
            continue
        side = lo[::-1] if len(lo) else hi
        if len(side) >= 2:
            i, j = side[0], side[1]
            gap = float(nn[i] - nn[j])
            if gap != 0 and abs(n - nn[i]) <= 400 and abs(gap) <= 1000:
                t = (n - nn[i]) / gap
                dist = float(np.hypot(xx[i] - xx[j], yy[i] - yy[j]))
                if dist * abs(t) <= 800:
                    return (
                        xx[i] + t * (xx[i] - xx[j]),
                        yy[i] + t * (yy[i] - yy[j]),
                        int(abs(n - nn[i])),
                    )
        if len(side) >= 1 and abs(n - nn[side[0]]) <= 100:
            return float(xx[side[0]]), float(yy[side[0]]), int(abs(n - nn[side[0]]))
    return None


def _nearest_on(line: shapely.Geometry, x: float, y: float) -> tuple[float, float] | None:
    if line is None or shapely.is_empty(line):
        return None
    pt = shapely.Point(x, y)
    d = (
        shapely.line_locate_point(line, pt)
        if line.geom_type in ("LineString", "MultiLineString")
        else None
    )
    if d is None:
        return None
    q = shapely.line_interpolate_point(line, d)
    return float(q.x), float(q.y)


# --------------------------------------------------------------------------------------
# Online geocoders: cache, rate limit, Census batch, Nominatim
# --------------------------------------------------------------------------------------


class GeocodeCache:
    """An on-disk SQLite cache of online geocoder answers, "no match" included.

    Parameters
    ----------
    path
        The SQLite file (created with its folder if missing).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS answers (service TEXT NOT NULL, query TEXT NOT NULL, "
                "answer TEXT NOT NULL, saved REAL NOT NULL, PRIMARY KEY (service, query))"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            with con:  # commits, or rolls back on error
                yield con
        finally:
            con.close()

    def get_many(self, service: str, queries: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Return cached answers for the queries that have one."""
        queries = list(dict.fromkeys(queries))
        out: dict[str, dict[str, Any]] = {}
        with self._connect() as con:
            for start in range(0, len(queries), 500):
                chunk = queries[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for q, a in con.execute(
                    f"SELECT query, answer FROM answers WHERE service = ? AND query IN ({marks})",
                    [service, *chunk],
                ):
                    out[q] = json.loads(a)
        return out

    def put_many(self, service: str, answers: dict[str, dict[str, Any]]) -> None:
        """Store answers (one JSON object per query)."""
        now = time.time()
        with self._connect() as con:
            con.executemany(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)",
                [(service, q, json.dumps(a, sort_keys=True), now) for q, a in answers.items()],
            )

    def __len__(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM answers").fetchone()[0])


class _RateLimiter:
    """Wait so that calls are at least ``min_delay_s`` apart."""

    def __init__(self, min_delay_s: float):
        self.min_delay_s = min_delay_s
        self._last = -np.inf

    def wait(self) -> None:
        delay = self._last + self.min_delay_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._last = time.monotonic()


def _query_text(p: ParsedAddress) -> str:
    return p.one_line


def _apply_answers(
    out: pd.DataFrame, queries: list[str], answers: dict[str, dict[str, Any]], name: str
) -> pd.DataFrame:
    cols = {c: out[c].to_numpy(copy=True) for c in RESULT_COLUMNS}
    for i, q in enumerate(queries):
        a = answers.get(q)
        if not a or not a.get("quality"):
            continue
        cols["lon"][i], cols["lat"][i] = float(a["lon"]), float(a["lat"])
        cols["geocode_quality"][i] = a["quality"]
        cols["geocode_score"][i] = float(a.get("score", 0.0))
        cols["geocode_match"][i] = a.get("match", "")
        cols["geocoder"][i] = name
    for c in RESULT_COLUMNS:
        out[c] = cols[c]
    return out


class CensusBatchGeocoder:
    """The US Census Bureau batch geocoder (address ranges of TIGER/Line), cached.

    The service takes a CSV of ``id, street, city, state, zip`` (no header, at most 10,000
    rows) posted as ``addressFile`` with a ``benchmark`` field, and answers with a CSV of
    ``id, input, Match|No_Match|Tie, Exact|Non_Exact, matched address, "lon,lat",
    tigerLineId, side`` in any order. Matches are interpolated along address ranges, so
    their quality is "street".

    Parameters
    ----------
    config
        URL, benchmark, batch size, timeout and delay between requests.
    cache
        Where answers are kept; None keeps nothing (tests only).
    session
        A ``requests.Session`` (default: a new one).
    """

    name = "census"

    def __init__(
        self,
        config: CensusConfig | None = None,
        *,
        cache: GeocodeCache | None = None,
        session: Any = None,
    ):
        import requests

        self.config = config or CensusConfig()
        self.cache = cache
        self.session = session or requests.Session()
        self._limiter = _RateLimiter(self.config.min_delay_s)
        self.requests_sent = 0

    def geocode(self, addresses: pd.DataFrame) -> pd.DataFrame:
        """Geocode rows (cache first, then batches); see the module docstring."""
        out = empty_result(addresses.index)
        parsed = _parse_rows(addresses)
        queries = [_query_text(p) if p.ok else "" for p in parsed]
        wanted = sorted({q for q in queries if q})
        answers = self.cache.get_many(self.name, wanted) if self.cache is not None else {}
        todo = [q for q in wanted if q not in answers]
        by_query = {q: p for q, p in zip(queries, parsed, strict=True) if q}
        for start in range(0, len(todo), self.config.batch_size):
            batch = todo[start : start + self.config.batch_size]
            try:
                got = self._post([by_query[q] for q in batch])
            except Exception as exc:  # network down, HTTP error: leave the rows unmatched
                log.warning(
                    "census geocoder unavailable (%s); %s addresses left for the next geocoder",
                    exc,
                    f"{len(todo) - start:,}",
                )
                break
            fresh = {q: got.get(str(i), {"quality": ""}) for i, q in enumerate(batch)}
            answers.update(fresh)
            if self.cache is not None:
                self.cache.put_many(self.name, fresh)
        out = _apply_answers(out, queries, answers, self.name)
        log.info(
            "census geocoder: %s rows, %s asked online, %s placed",
            f"{len(out):,}",
            f"{len(todo):,}",
            f"{(out['geocode_quality'] != '').sum():,}",
        )
        return out

    def _post(self, batch: list[ParsedAddress]) -> dict[str, dict[str, Any]]:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for i, p in enumerate(batch):
            writer.writerow([i, p.address_key, p.city, p.state, p.zip])
        self._limiter.wait()
        resp = self.session.post(
            self.config.url,
            data={"benchmark": self.config.benchmark},
            files={"addressFile": ("addresses.csv", buf.getvalue().encode("utf-8"), "text/csv")},
            timeout=self.config.timeout_s,
        )
        self.requests_sent += 1
        resp.raise_for_status()
        return parse_census_batch(resp.text)


def parse_census_batch(text: str) -> dict[str, dict[str, Any]]:
    """Parse the Census batch geocoder's CSV answer.

    Parameters
    ----------
    text
        The response body.

    Returns
    -------
    dict
        id → ``{"lon", "lat", "quality", "score", "match"}`` (quality "" for No_Match/Tie).
    """
    out: dict[str, dict[str, Any]] = {}
    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0].strip():
            continue
        rid = row[0].strip()
        status = row[2].strip() if len(row) > 2 else ""
        if status == "Match" and len(row) >= 6 and "," in row[5]:
            lon_s, lat_s = row[5].split(",", 1)
            exact = row[3].strip() == "Exact"
            out[rid] = {
                "lon": float(lon_s),
                "lat": float(lat_s),
                "quality": "street",
                "score": 90.0 if exact else 75.0,
                "match": row[4].strip(),
            }
        else:
            out[rid] = {"quality": "", "status": status or "No_Match"}
    return out


def nominatim_quality(raw: dict[str, Any]) -> str:
    """Return the geocode quality of one Nominatim result (its ``raw`` JSON).

    Parameters
    ----------
    raw
        One element of Nominatim's ``format=json`` answer (with ``addressdetails=1``).

    Returns
    -------
    str
        "address_point" for a house/building (or any result with a house number),
        "street" for a road, "zip" for a postcode, "city" for a settlement, else "".
    """
    cls, typ = raw.get("class", ""), raw.get("type", "")
    address = raw.get("address") or {}
    if address.get("house_number") or cls == "building" or typ in {"house", "building"}:
        return "address_point"
    if cls == "highway" or typ in {"road", "street"}:
        return "street"
    if typ == "postcode" or cls == "postcode":
        return "zip"
    if cls in {"place", "boundary"} and typ in {
        "city",
        "town",
        "village",
        "hamlet",
        "administrative",
        "suburb",
    }:
        return "city"
    if cls in {"amenity", "shop", "office", "healthcare", "craft", "tourism"}:
        return "address_point"
    return ""


class NominatimGeocoder:
    """OpenStreetMap's Nominatim through geopy: structured queries, rate-limited, cached.

    Parameters
    ----------
    config
        Server, scheme, user agent, delay between requests and timeout.
    cache
        Where answers are kept; None keeps nothing (tests only).
    """

    name = "nominatim"

    def __init__(self, config: NominatimConfig | None = None, *, cache: GeocodeCache | None = None):
        from geopy.extra.rate_limiter import RateLimiter
        from geopy.geocoders import Nominatim

        self.config = config or NominatimConfig()
        self.cache = cache
        self._client = Nominatim(
            user_agent=self.config.user_agent,
            domain=self.config.domain,
            scheme=self.config.scheme,
            timeout=self.config.timeout_s,
        )
        self._geocode = RateLimiter(
            self._client.geocode,
            min_delay_seconds=self.config.min_delay_s,
            max_retries=1,
            error_wait_seconds=max(self.config.min_delay_s, 0.1),
            swallow_exceptions=False,
        )
        self.requests_sent = 0

    def geocode(self, addresses: pd.DataFrame) -> pd.DataFrame:
        """Geocode rows (cache first, then one request per address); see the module docstring."""
        out = empty_result(addresses.index)
        parsed = _parse_rows(addresses)
        queries = [_query_text(p) if (p.ok or p.kind == "street_only") else "" for p in parsed]
        by_query = {q: p for q, p in zip(queries, parsed, strict=True) if q}
        wanted = sorted(by_query)
        answers = self.cache.get_many(self.name, wanted) if self.cache is not None else {}
        todo = [q for q in wanted if q not in answers]
        for q in todo:
            p = by_query[q]
            query = {k: v for k, v in {
                "street": p.address_key or p.street_key,
                "city": p.city.title(),
                "state": p.state,
                "postalcode": p.zip,
            }.items() if v}  # fmt: skip
            try:
                loc = self._geocode(
                    query, addressdetails=True, country_codes=self.config.country_codes
                )
            except Exception as exc:  # geopy raises GeocoderServiceError and friends
                log.warning(
                    "nominatim unavailable (%s); %s addresses left unmatched",
                    exc,
                    f"{len(todo) - todo.index(q):,}",
                )
                break
            self.requests_sent += 1
            if loc is None:
                ans: dict[str, Any] = {"quality": ""}
            else:
                quality = nominatim_quality(loc.raw)
                ans = {
                    "lon": float(loc.longitude),
                    "lat": float(loc.latitude),
                    "quality": quality,
                    "score": 85.0 if quality == "address_point" else 60.0,
                    "match": loc.address,
                }
            answers[q] = ans
            if self.cache is not None:
                self.cache.put_many(self.name, {q: ans})
        out = _apply_answers(out, queries, answers, self.name)
        log.info(
            "nominatim geocoder: %s rows, %s asked online, %s placed",
            f"{len(out):,}",
            f"{len(todo):,}",
            f"{(out['geocode_quality'] != '').sum():,}",
        )
        return out


class GeocoderChain:
    """Ask geocoders in turn; each gets only the rows not yet placed at an accepted quality.

    Parameters
    ----------
    geocoders
        Geocoders, first asked first (offline first).
    accept
        Qualities at which a row is settled.
    """

    name = "chain"

    def __init__(self, geocoders: Sequence[Geocoder], *, accept: Sequence[str] = DEFAULT_ACCEPT):
        self.geocoders = list(geocoders)
        self.accept = set(accept)

    def geocode(self, addresses: pd.DataFrame) -> pd.DataFrame:
        """Geocode rows with each geocoder in turn, keeping the best quality per row."""
        best = empty_result(addresses.index)
        for g in self.geocoders:
            todo = ~best["geocode_quality"].isin(self.accept)
            if not todo.any():
                break
            res = g.geocode(addresses.loc[todo])
            rank_new = res["geocode_quality"].map(lambda q: QUALITY_RANK.get(q, 99))
            rank_old = best.loc[todo, "geocode_quality"].map(lambda q: QUALITY_RANK.get(q, 99))
            better = res.index[(rank_new < rank_old).to_numpy()]
            best.loc[better, list(RESULT_COLUMNS)] = res.loc[better, list(RESULT_COLUMNS)]
        return best


def geocoder_from_config(
    cfg: RegionConfig,
    geocoding: GeocodingConfig | None = None,
    *,
    cache_dir: Path | None = None,
    reference_cache_dir: Path | None = None,
) -> Geocoder | None:
    """Build the geocoder a region config asks for.

    Parameters
    ----------
    cfg
        The region config (paths resolve against it; its ``crs`` is the metric CRS).
    geocoding
        The geocoding section; default ``cfg.geocoding`` when the config has one.
    cache_dir
        Folder for the online cache when ``geocoding.cache`` is not set.
    reference_cache_dir
        Folder where the parsed reference index is cached by its inputs
        (:func:`cached_reference_index`), e.g. ``<geodata>/.cache/geocode``; None builds
        it anew.

    Returns
    -------
    Geocoder or None
        An :class:`OfflineGeocoder`, or a :class:`GeocoderChain` with the online ones
        when ``online: true``; None when the config has no geocoding section.
    """
    gcfg = geocoding if geocoding is not None else getattr(cfg, "geocoding", None)
    if gcfg is None:
        return None
    chain: list[Geocoder] = []
    if gcfg.reference:
        if reference_cache_dir is not None:
            index = cached_reference_index(
                gcfg.reference, resolve=cfg.resolve, crs=cfg.crs, cache_dir=reference_cache_dir
            )
        else:
            index = build_reference_index(gcfg.reference, resolve=cfg.resolve, crs=cfg.crs)
        chain.append(
            OfflineGeocoder(
                index, fuzzy_min_score=gcfg.fuzzy_min_score, max_hint_km=gcfg.max_hint_km
            )
        )
    if gcfg.online:
        if gcfg.cache:
            cache_path = cfg.resolve(gcfg.cache)
        elif cache_dir is not None:
            cache_path = Path(cache_dir) / "geocode_cache.sqlite"
        else:
            cache_path = cfg.base_dir / ".cache" / f"{cfg.name}_geocode_cache.sqlite"
        cache = GeocodeCache(cache_path)
        if gcfg.census is not None:
            chain.append(CensusBatchGeocoder(gcfg.census, cache=cache))
        if gcfg.nominatim is not None:
            chain.append(NominatimGeocoder(gcfg.nominatim, cache=cache))
    if not chain:
        return None
    return chain[0] if len(chain) == 1 else GeocoderChain(chain, accept=gcfg.accept)


# --------------------------------------------------------------------------------------
# The parsed reference, cached by its inputs
# --------------------------------------------------------------------------------------

#: Bump when reading, parsing or indexing the references changes what an index holds, or
#: when the cache files' layout changes: every cached index is then rebuilt once.
REFERENCE_CACHE_VERSION: Final[int] = 1
#: What a cache file says it is (a file without it is foreign and ignored).
REFERENCE_CACHE_FORMAT: Final[str] = "access-atlas geocoding reference index"
#: Modules whose code shapes the index: their source is part of the cache key too, so that an
#: edit there cannot re-use an index built by the old code even if the version is not bumped.
_REFERENCE_CODE: Final[tuple[str, ...]] = (
    "etl/controls.py",
    "etl/inputs/addresses.py",
    "etl/inputs/geocode.py",
    "etl/inputs/gtfs.py",
    "etl/inputs/tables.py",
)
#: Packages whose versions shape the index (address parsing, projections, geometry, readers).
_REFERENCE_PACKAGES: Final[tuple[str, ...]] = (
    "usaddress", "pyproj", "shapely", "numpy", "pandas", "pyarrow", "pyogrio", "osmium",
)  # fmt: skip


def _reference_files(ref: ReferenceSource, path: Path) -> list[Path]:
    """The files one reference is read from: the file or folder, and the side files it needs."""
    files = [path]
    if path.is_file() and path.suffix.lower() == ".shp":
        files += sorted(p for p in path.parent.glob(f"{path.stem}.*") if p != path)
    if path.is_file() and path.name == "stops.txt":  # a GTFS stops.txt: its agency names it
        agency = path.parent / "agency.txt"
        if agency.is_file():
            files.append(agency)
    return files


def _code_versions() -> dict[str, str]:
    from importlib import metadata

    root = Path(__file__).resolve().parents[2]
    out = {name: sha256(root / name) for name in _REFERENCE_CODE if (root / name).is_file()}
    for pkg in _REFERENCE_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = ""
    return out


def reference_cache_key(
    refs: Sequence[ReferenceSource],
    *,
    resolve: Callable[[str], Path] = Path,
    crs: str | None = None,
) -> tuple[str, list[dict[str, Any]]] | None:
    """The cache key of the index that :func:`build_reference_index` would build.

    Parameters
    ----------
    refs
        Reference sources (``geocoding.reference`` of a region config), in order.
    resolve
        Turns a config path into a file path.
    crs
        The metric CRS the index is built in.

    Returns
    -------
    (str, list of dict) or None
        The SHA-256 (hex) of :data:`REFERENCE_CACHE_VERSION`, the code and package versions
        that shape the index, ``crs``, every reference's settings and the SHA-256 of its
        files; and one record per reference (``role``, ``path``, ``resolved``, ``sha256``,
        ``bytes``). None when a reference file is missing (the build then says so).
    """
    import hashlib

    inputs: list[dict[str, Any]] = []
    settings: list[dict[str, Any]] = []
    for k, ref in enumerate(refs):
        path = resolve(ref.path)
        if not path.exists():
            return None
        files = _reference_files(ref, path)
        digests = [sha256(f) for f in files]
        size = sum(
            sum(p.stat().st_size for p in f.rglob("*") if p.is_file()) if f.is_dir()
            else f.stat().st_size
            for f in files
        )  # fmt: skip
        inputs.append(
            {
                "role": f"geocoding.reference.{k}",
                "path": ref.path,
                "resolved": str(path),
                "sha256": digests[0],
                "bytes": size,
            }
        )
        settings.append(
            {
                "settings": ref.model_dump(mode="json"),
                "set": sorted(ref.model_fields_set),  # an explicit crs is read differently
                "files": [[f.name, d] for f, d in zip(files, digests, strict=True)],
            }
        )
    payload = {
        "format": REFERENCE_CACHE_FORMAT,
        "version": REFERENCE_CACHE_VERSION,
        "code": _code_versions(),
        "crs": crs,
        "references": settings,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest(), inputs


def _pack_strings(values: Sequence[str]) -> np.ndarray:
    # a fixed-width unicode array (no pickling); "" kept as ""
    return np.array(list(values), dtype=str) if len(values) else np.array([], dtype="<U1")


def _pack_ragged(
    groups: Sequence[np.ndarray], *, dtype: Any, width: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate arrays (rows of ``width`` columns when given) with their offsets."""
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    shape: tuple[int, ...] = (0,) if width is None else (0, width)
    flat = np.concatenate([np.asarray(g, dtype=dtype) for g in groups]) if len(groups) else None
    return (flat if flat is not None else np.empty(shape, dtype=dtype)), offsets


def _unpack_ragged(flat: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def _index_arrays(index: ReferenceIndex) -> dict[str, np.ndarray]:
    """Everything of an index but its points table, as plain arrays (for ``np.savez``)."""
    out: dict[str, np.ndarray] = {}
    keys = list(index.streets)
    wkb = [np.frombuffer(shapely.to_wkb(index.streets[k]), dtype=np.uint8) for k in keys]
    out["streets_keys"] = _pack_strings(keys)
    out["streets_wkb"], out["streets_off"] = _pack_ragged(wkb, dtype=np.uint8)

    keys = list(index.street_points)
    out["sp_keys"] = _pack_strings(keys)
    out["sp_xy"], out["sp_off"] = _pack_ragged(
        [index.street_points[k] for k in keys], dtype=float, width=2
    )
    pairs = list(index._crossings)
    ends = [sorted(p) for p in pairs]
    out["cr_a"] = _pack_strings([e[0] for e in ends])
    out["cr_b"] = _pack_strings([e[-1] for e in ends])
    out["cr_xy"], out["cr_off"] = _pack_ragged(
        [index._crossings[p] for p in pairs], dtype=float, width=2
    )
    for name, centres in (("zc", index.zip_centres), ("cc", index.city_centres)):
        out[f"{name}_keys"] = _pack_strings(list(centres))
        out[f"{name}_xy"] = np.array(list(centres.values()), dtype=float).reshape(-1, 2)

    addresses = list(index._by_address)
    out["ba_number"] = _pack_strings([a[0] for a in addresses])
    out["ba_street"] = _pack_strings([a[1] for a in addresses])
    out["ba_rows"], out["ba_off"] = _pack_ragged(
        [index._by_address[a] for a in addresses], dtype=np.int64
    )
    streets = list(index._by_street)
    out["bs_keys"] = _pack_strings(streets)
    for part in ("numbers", "x", "y"):
        dtype = np.int64 if part == "numbers" else float
        groups = [getattr(index._by_street[k], part) for k in streets]
        out[f"bs_{part}"], out["bs_off"] = _pack_ragged(groups, dtype=dtype)
    for name, lists in (("bb", index._by_base), ("bq", index._by_squashed)):
        out[f"{name}_keys"] = _pack_strings(list(lists))
        values = [_pack_strings(v) for v in lists.values()]
        out[f"{name}_vals"], out[f"{name}_off"] = _pack_ragged(values, dtype=str)
    out["bases"] = _pack_strings(index._bases)
    out["cs_keys"] = _pack_strings(list(index._city_state))
    out["cs_vals"] = _pack_strings(list(index._city_state.values()))
    return out


def _index_from_arrays(points: pd.DataFrame, a: dict[str, np.ndarray], crs: str) -> ReferenceIndex:
    """The inverse of :func:`_index_arrays` (and of writing ``points``)."""

    def strings(name: str) -> list[str]:
        return [str(s) for s in a[name].tolist()]

    wkb = _unpack_ragged(a["streets_wkb"], a["streets_off"])
    geoms = shapely.from_wkb([w.tobytes() for w in wkb]) if wkb else []
    streets = dict(zip(strings("streets_keys"), geoms, strict=True))
    street_points = dict(
        zip(strings("sp_keys"), _unpack_ragged(a["sp_xy"], a["sp_off"]), strict=True)
    )
    pairs = [frozenset((x, y)) for x, y in zip(strings("cr_a"), strings("cr_b"), strict=True)]
    crossings = dict(zip(pairs, _unpack_ragged(a["cr_xy"], a["cr_off"]), strict=True))
    index = ReferenceIndex(
        points=points,
        streets=streets,
        crs=crs,
        street_points=street_points,
        _crossings=crossings,
        _to_metric=Transformer.from_crs("EPSG:4326", crs, always_xy=True),
        _to_wgs84=Transformer.from_crs(crs, "EPSG:4326", always_xy=True),
    )
    index.zip_centres = {
        k: (float(x), float(y)) for k, (x, y) in zip(strings("zc_keys"), a["zc_xy"], strict=True)
    }
    index.city_centres = {
        k: (float(x), float(y)) for k, (x, y) in zip(strings("cc_keys"), a["cc_xy"], strict=True)
    }
    rows = _unpack_ragged(a["ba_rows"], a["ba_off"])
    addresses = zip(strings("ba_number"), strings("ba_street"), strict=True)
    index._by_address = dict(zip(addresses, rows, strict=True))
    parts = {p: _unpack_ragged(a[f"bs_{p}"], a["bs_off"]) for p in ("numbers", "x", "y")}
    index._by_street = {
        k: _StreetPoints(numbers=parts["numbers"][i], x=parts["x"][i], y=parts["y"][i])
        for i, k in enumerate(strings("bs_keys"))
    }
    for name, attr in (("bb", "_by_base"), ("bq", "_by_squashed")):
        vals = _unpack_ragged(a[f"{name}_vals"], a[f"{name}_off"])
        keys = strings(f"{name}_keys")
        lists = {k: [str(s) for s in v.tolist()] for k, v in zip(keys, vals, strict=True)}
        setattr(index, attr, lists)
    index._bases = strings("bases")
    index._city_state = dict(zip(strings("cs_keys"), strings("cs_vals"), strict=True))
    return index


def _write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write a file through a temporary file in the same folder and ``os.replace``."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_reference_cache(
    index: ReferenceIndex,
    cache_dir: str | Path,
    key: str,
    *,
    cleaned: Sequence[dict[str, Any]] = (),
    read: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write an index as ``<cache_dir>/<key>.parquet`` (points) and ``<key>.npz`` (the rest).

    Each file is written atomically; the ``.npz``, written last, holds the key, the format,
    :data:`REFERENCE_CACHE_VERSION` and the SHA-256 of the ``.parquet``, so that a pair left
    mixed by two writers, a truncated file or a file of anything else is found out on reading.

    Parameters
    ----------
    index
        The index as :func:`build_reference_index` built it.
    cache_dir
        The cache folder (created when missing).
    key
        Its :func:`reference_cache_key`.
    cleaned
        The cleaned-cell rows (:mod:`etl.controls`) that reading the references recorded,
        replayed when the index is re-used.
    read
        The (role, file) of every reference file read.

    Returns
    -------
    pathlib.Path
        The ``.npz`` file.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    points_path, arrays_path = cache_dir / f"{key}.parquet", cache_dir / f"{key}.npz"
    buf = io.BytesIO()
    index.points.to_parquet(buf, index=True)
    data = buf.getvalue()
    _write_atomic(points_path, lambda f: f.write(data))
    import hashlib

    meta = {
        "format": REFERENCE_CACHE_FORMAT,
        "version": REFERENCE_CACHE_VERSION,
        "key": key,
        "crs": index.crs,
        "points_sha256": hashlib.sha256(data).hexdigest(),
        "cleaned": list(cleaned),
        "read": [list(r) for r in read],
    }
    arrays = _index_arrays(index)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    _write_atomic(arrays_path, lambda f: np.savez(f, **arrays))
    return arrays_path


def load_reference_cache(
    cache_dir: str | Path, key: str
) -> tuple[ReferenceIndex, dict[str, Any]] | None:
    """Read an index that :func:`save_reference_cache` wrote, or None.

    A missing cache gives None silently; an unreadable, truncated, mixed or foreign one gives
    None with one warning line (the caller rebuilds it).

    Parameters
    ----------
    cache_dir
        The cache folder.
    key
        The :func:`reference_cache_key` wanted.

    Returns
    -------
    (ReferenceIndex, dict) or None
        The index and the cache's meta data (``cleaned``, ``read``…).
    """
    import hashlib

    cache_dir = Path(cache_dir)
    points_path, arrays_path = cache_dir / f"{key}.parquet", cache_dir / f"{key}.npz"
    if not points_path.exists() and not arrays_path.exists():
        return None
    try:
        # read into memory first: np.load leaves a file it opened open when it is no zip
        with np.load(io.BytesIO(arrays_path.read_bytes()), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != REFERENCE_CACHE_FORMAT or meta.get("key") != key:
            msg = "not a reference index of this key"
            raise ValueError(msg)
        if meta.get("version") != REFERENCE_CACHE_VERSION:
            msg = f"cache version {meta.get('version')}, not {REFERENCE_CACHE_VERSION}"
            raise ValueError(msg)
        data = points_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != meta.get("points_sha256"):
            msg = f"{points_path.name} does not match {arrays_path.name}"
            raise ValueError(msg)
        points = pd.read_parquet(io.BytesIO(data))
        index = _index_from_arrays(points, arrays, str(meta["crs"]))
    except Exception as exc:  # anything unreadable is rebuilt, never trusted
        log.warning(
            "geocoding reference cache %s ignored (%s: %s); rebuilding it",
            arrays_path,
            type(exc).__name__,
            str(exc)[:200],
        )
        return None
    return index, meta


def _replay_cleaned(
    rows: Sequence[dict[str, Any]], read: Sequence[Sequence[str]], *, say: bool = True
) -> None:
    """Record again, in the running :func:`etl.controls.recording`, what reading recorded.

    Parameters
    ----------
    rows
        Cleaned-cell rows (keys of :data:`etl.controls.REPORT_COLUMNS`).
    read
        The (role, file) of every file read, cleaned or not.
    say
        Also say, in one warning line per file, how many cells were cleaned.
    """
    from etl.controls import record_cleaned

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {(r, f): [] for r, f in read}
    for row in rows:
        groups.setdefault((row["input"], row["file"]), []).append(row)
    for (role, file), cells in groups.items():
        changes = [
            {"column": c["column"], "position": i, "found": c["found"]} for i, c in enumerate(cells)
        ]
        record_cleaned(role, file, changes, rows=[int(c["row"]) for c in cells])
        if cells and say:
            log.warning(
                "%s: %d cell%s with control characters replaced by spaces (as when the cached "
                "geocoding reference index was built; see reports/inputs_cleaned.csv)",
                file,
                len(cells),
                "s" * (len(cells) != 1),
            )


def cached_reference_index(
    refs: Sequence[ReferenceSource],
    *,
    resolve: Callable[[str], Path] = Path,
    crs: str | None = None,
    cache_dir: str | Path,
) -> ReferenceIndex:
    """:func:`build_reference_index`, re-used from ``cache_dir`` while its inputs are unchanged.

    The key (:func:`reference_cache_key`) covers the references' files (SHA-256), their
    settings, ``crs``, the code and package versions and :data:`REFERENCE_CACHE_VERSION`.
    A cache that cannot be read is ignored with one log line and rebuilt; one that cannot be
    written is said so, and the build goes on. The index is the same either way, and the
    control characters cleaned while reading the references are recorded either way
    (:mod:`etl.controls`).

    Parameters
    ----------
    refs, resolve, crs
        As for :func:`build_reference_index`.
    cache_dir
        The cache folder, e.g. ``<geodata>/.cache/geocode``.

    Returns
    -------
    ReferenceIndex
        The index; its ``cache_record`` says whether the cache was used (``used``,
        ``status`` "hit", "built" or "rebuilt", ``key``, ``file``, ``seconds``, ``inputs``).
    """
    from etl.controls import recording

    t0 = time.perf_counter()
    keyed = reference_cache_key(refs, resolve=resolve, crs=crs)
    if keyed is None:  # a file is missing: let the reader say which, as without a cache
        return build_reference_index(refs, resolve=resolve, crs=crs)
    key, inputs = keyed
    cache_dir = Path(cache_dir)
    file = cache_dir / f"{key}.npz"
    found_any = file.exists() or (cache_dir / f"{key}.parquet").exists()
    loaded = load_reference_cache(cache_dir, key)
    if loaded is not None:
        index, meta = loaded
        _replay_cleaned(meta.get("cleaned", []), meta.get("read", []))
        status = "hit"
        log.info(
            "reference index: re-used %s (%s address points, %s named streets) in %.2f s",
            file,
            f"{len(index.points):,}",
            f"{len(index.streets):,}",
            time.perf_counter() - t0,
        )
    else:
        with recording() as ledger:
            index = build_reference_index(refs, resolve=resolve, crs=crs)
        rows = sorted(ledger.rows, key=lambda r: (r["input"], r["file"], r["row"], r["column"]))
        read = sorted(ledger.inputs)
        _replay_cleaned(rows, read, say=False)  # the readers have said it already
        status = "rebuilt" if found_any else "built"
        try:
            save_reference_cache(index, cache_dir, key, cleaned=rows, read=read)
        except (OSError, ValueError, TypeError) as exc:
            log.warning("geocoding reference cache not written to %s: %s", cache_dir, exc)
    index.cache_record = {
        "used": status == "hit",
        "status": status,
        "key": key,
        "file": str(file),
        "version": REFERENCE_CACHE_VERSION,
        "seconds": round(time.perf_counter() - t0, 2),
        "inputs": inputs,
    }
    return index


def reference_cache_record(geocoder: Geocoder | None) -> dict[str, Any] | None:
    """What the offline geocoder's reference index says about the cache (None without one).

    Parameters
    ----------
    geocoder
        What :func:`geocoder_from_config` returned.

    Returns
    -------
    dict or None
        The index's ``cache_record`` (see :func:`cached_reference_index`); ``{"used": False,
        "status": "off"}`` when the index was built without a cache.
    """
    chain = geocoder.geocoders if isinstance(geocoder, GeocoderChain) else [geocoder]
    for g in chain:
        if isinstance(g, OfflineGeocoder):
            return dict(g.index.cache_record) or {"used": False, "status": "off"}
    return None
