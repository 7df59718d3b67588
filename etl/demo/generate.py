"""Generate the raw inputs of the fictional built-in region, Millbrook County (fictional).

Nothing written here describes a real place, real providers or real people. The county
(state "ZZ", FIPS 99001) is placed in the open North Atlantic, around 40° N 40° W, so that it
can never be mistaken for a real community, and every file says it is fictional where a
person reads it. The files come in the formats and with the quirks of the real inputs, so the
demo region exercises the same readers as a real one:

- ``osm/millbrook.osm``: OSM XML 0.6 street network. A town grid with a one-way couplet,
  radial arterials, a motorway with interchanges, a river crossed by three bridges, a
  village, suburban loops and cul-de-sacs, rural roads, paths; one way clipped at the
  extract's bounding box and one disconnected fragment.
- ``providers/otp_directory_geocoded.csv``: SAMHSA-style OTP directory (latin-1).
- ``providers/moud_providers.gpkg``: OEPS-style MOUD providers (layer ``moud``).
- ``providers/syringe_services.csv``: syringe services programs.
- ``providers/pharmacies.csv``: pharmacies, with two deliberately bad rows.
- ``census/tl_2099_99001_bg.zip``: TIGER-style block groups (EPSG:4269).
- ``census/population.csv``: population by block group.
- ``overdose/cdc_wonder_drug_deaths_county.csv``: CDC-WONDER-style county export.
- ``places/points_of_interest.csv``: Columbus-style points of interest.
- ``zoning/zoning.zip`` and ``zoning/zoning_rules.csv``: zoning districts and their rules.
- ``README.txt``: what each file is, and that nothing is real.

Geometry is built in metres in EPSG:32624 (UTM zone 24N) around the county centre and
converted to WGS84 (OSM, CSVs, GeoPackage) or NAD83 (EPSG:4269, the shapefiles). The street
layout is fixed; the seed moves the small things (road wiggles, block-group shapes, provider
positions, populations, names drawn from pools). The same seed gives byte-identical files:
no timestamps in any content, fixed zip, DBF and GeoPackage dates.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPoint, Point, Polygon, box
from shapely.ops import substring

from etl._errors import ConfigError, InputError
from etl.demo.transit import ROUTES, transit_feed

logger = logging.getLogger(__name__)

#: The county's title as shown everywhere.
COUNTY_TITLE: Final[str] = "Millbrook County (fictional)"
STATE_ABBR: Final[str] = "ZZ"
STATE_NAME: Final[str] = "Fictional State"
STATE_FIPS: Final[str] = "99"
COUNTY_FIPS: Final[str] = "99001"
#: Projected CRS the geometry is built in (UTM zone 24N, metres).
LOCAL_CRS: Final[str] = "EPSG:32624"
#: Lon/lat of the county centre.
CENTER_LONLAT: Final[tuple[float, float]] = (-40.0, 40.0)
#: The county is the square of this half-size (metres) around the centre.
COUNTY_HALF_M: Final[float] = 12_000.0
#: The OSM extract covers this half-size (metres) around the centre.
EXTRACT_HALF_M: Final[float] = 15_000.0

#: Output files, relative to ``out_dir``, by role.
FILES: Final[dict[str, str]] = {
    "osm": "osm/millbrook.osm",
    "otp": "providers/otp_directory_geocoded.csv",
    "moud": "providers/moud_providers.gpkg",
    "syringe": "providers/syringe_services.csv",
    "pharmacies": "providers/pharmacies.csv",
    "blockgroups": "census/tl_2099_99001_bg.zip",
    "population": "census/population.csv",
    "overdose": "overdose/cdc_wonder_drug_deaths_county.csv",
    "poi": "places/points_of_interest.csv",
    "zoning": "zoning/zoning.zip",
    "zoning_rules": "zoning/zoning_rules.csv",
    "transit": "transit/stops.txt",
    "facilities": "places/correctional_facilities.csv",
    "readme": "README.txt",
}

#: Fictional correctional facilities (name, type, local x, y metres): a jail in town, a state
#: prison out by the hamlet of Stone Church, a youth detention centre near the village, one
#: beyond the region's buffer (counted as outside) and one row without coordinates (rejected).
_FACILITIES: Final[tuple[tuple[str, str, float | None, float | None], ...]] = (
    ("Millbrook County Jail", "Jail", 1650.0, 180.0),
    ("Stone Church Correctional Institution", "State prison", -9600.0, -10300.0),
    ("Millbrook Youth Detention Center", "Detention center", -5600.0, 6200.0),
    ("Far Valley Correctional Institution", "State prison", 40_000.0, 0.0),
    ("Records Office Annex (no location)", "State facility", None, None),
)

#: Name of the deliberately disconnected road fragment.
FRAGMENT_NAME: Final[str] = "Hidden Pond Lane"
#: Name of the way clipped at the extract's bounding box.
CLIPPED_NAME: Final[str] = "Atlantic Highway"
#: OSM id of the node the clipped way references but the file does not hold.
MISSING_NODE_ID: Final[int] = 1_999_999
#: Names of the roads that bridge the river.
BRIDGE_NAMES: Final[tuple[str, ...]] = ("Mill Road", "Millbrook Expressway", "Township Line Road")

_FICTIONAL: Final[str] = "Fictional (Access Atlas demo)"
_TIMESTAMP: Final[str] = "2020-01-01T00:00:00Z"
_ZIP_DATE: Final[tuple[int, int, int, int, int, int]] = (2020, 1, 1, 0, 0, 0)
_GPKG_DATE: Final[str] = "2020-01-01T00:00:00.000Z"
_DBF_DATE: Final[str] = "2020-01-01"
_README_MARK: Final[str] = "Access Atlas demo region"

# ---------------------------------------------------------------------------------------
# Fixed layout, local metres (x east, y north) from the county centre
# ---------------------------------------------------------------------------------------

_TOWN: Final[tuple[float, float, float, float]] = (-900.0, -2700.0, 4500.0, 2700.0)
_BLOCK: Final[float] = 150.0
_HIGH_X: Final[float] = 1800.0
_MAIN_Y: Final[float] = 0.0
_VILLAGE: Final[tuple[float, float]] = (-6000.0, 6500.0)
_VILLAGE_STEP: Final[float] = 120.0
#: The hamlet of Stone Church, at the crossroads of Stone Church Road and County Road 12.
_HAMLET: Final[tuple[float, float]] = (-10000.0, -10500.0)
_INDUSTRIAL: Final[tuple[float, float, float, float]] = (5600.0, -3300.0, 6900.0, -2300.0)
_MOTORWAY_Y: Final[float] = -3600.0
#: Where the motorway ends (west, east): it becomes an at-grade trunk road beyond.
_MOTORWAY_ENDS: Final[tuple[float, float]] = (-9400.0, 9800.0)
_INTERCHANGES: Final[tuple[tuple[str, float], ...]] = (
    ("South High Street", _HIGH_X),
    ("Station Road", 7500.0),
)
_RIVER_HALF_WIDTH: Final[float] = 30.0
_RIVER_CORRIDOR: Final[float] = 40.0
_EDGE: Final[float] = EXTRACT_HALF_M - 100.0

_COLUMN_TREES: Final[tuple[str, ...]] = (
    "Ash", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel", "Juniper", "Laurel",
    "Maple", "Oak", "Pine", "Spruce", "Sycamore", "Walnut", "Willow",
)  # fmt: skip
_ROWS_NORTH: Final[tuple[str, ...]] = (
    "Church Street", "Court Street", "Union Street", "Spring Street", "Academy Street",
    "Liberty Street", "Summit Street", "Chestnut Street", "Locust Street", "Mulberry Street",
    "Poplar Street", "Hickory Street", "Magnolia Street", "Linden Street", "Aspen Street",
    "Sumac Street", "Hawthorn Street", "Northview Avenue",
)  # fmt: skip
_ROWS_SOUTH: Final[tuple[str, ...]] = (
    "Market Street", "Commerce Street", "Depot Street", "Canal Street", "Mercer Street",
    "Fulton Street", "Harrison Street", "Jackson Street", "Monroe Street", "Madison Street",
    "Adams Street", "Tyler Street", "Grant Street", "Lincoln Street", "Pierce Street",
    "Polk Street", "Taylor Street", "Southview Avenue",
)  # fmt: skip
_VILLAGE_COLUMNS: Final[tuple[str, ...]] = (
    "Schoolhouse Lane", "Grist Mill Street", "Pond Street", "Cooper Street",
)  # fmt: skip
_VILLAGE_ROWS: Final[tuple[str, ...]] = (
    "Orchard Street", "Meeting House Road", "Bridge Street", "Tanner Street",
)  # fmt: skip
_HAMLET_STREETS: Final[tuple[str, ...]] = (
    "Chapel Street", "Smithy Lane", "Granary Lane", "Elder Street",
)  # fmt: skip
_COURT_NAMES: Final[tuple[str, ...]] = (
    "Wren", "Finch", "Heron", "Plover", "Sparrow", "Thrush", "Warbler", "Kinglet", "Vireo",
    "Tanager", "Oriole", "Bunting", "Junco", "Nuthatch", "Phoebe", "Swallow", "Towhee", "Veery",
    "Killdeer", "Dunlin", "Egret", "Osprey", "Merlin", "Kestrel", "Grouse", "Pipit", "Siskin",
    "Catbird", "Flicker", "Starling", "Chickadee", "Goldcrest", "Redpoll", "Waxwing", "Bluebird",
    "Sandpiper", "Curlew", "Avocet", "Godwit", "Whimbrel", "Bittern", "Rail", "Sora", "Gannet",
    "Puffin", "Tern", "Petrel", "Shearwater", "Skua", "Fulmar", "Kittiwake", "Cormorant",
    "Loon", "Grebe", "Teal", "Wigeon", "Gadwall", "Pintail", "Scaup", "Eider",
)  # fmt: skip
_COURT_TYPES: Final[tuple[str, ...]] = ("Court", "Place", "Way", "Terrace", "Circle")

#: (name, centre, width, height, entry host streets, walkway host street or None).
_SUBDIVISIONS: Final[
    tuple[tuple[str, tuple[float, float], float, float, tuple[str, ...], str | None], ...]
] = (
    ("Meadowbrook", (6200.0, 1300.0), 1000.0, 600.0, ("East Main Street",), "18th Street"),
    ("Fox Run", (4900.0, 4600.0), 800.0, 500.0, ("Orchard Pike",), None),
    ("Quail Ridge", (6400.0, -1000.0), 900.0, 500.0, ("East Main Street",), None),
    ("Brookside", (2700.0, -5200.0), 900.0, 600.0, ("South High Street",), None),
    ("Orchard Hills", (700.0, 4300.0), 800.0, 600.0, ("North High Street",), "Northview Avenue"),
    ("Westbrook North", (-4000.0, 900.0), 900.0, 600.0, ("West Main Street",), None),
    ("Westbrook South", (-4000.0, -900.0), 900.0, 600.0, ("West Main Street",), None),
    ("Alder Glen Estates", (-5000.0, 7700.0), 600.0, 400.0, ("Glen Road",), None),
)

_SUFFIX_ABBR: Final[dict[str, str]] = {
    "Street": "St", "Road": "Rd", "Avenue": "Ave", "Drive": "Dr", "Lane": "Ln", "Court": "Ct",
    "Circle": "Cir", "Way": "Way", "Place": "Pl", "Trail": "Trl", "Parkway": "Pkwy",
    "Pike": "Pike", "Highway": "Hwy", "Terrace": "Ter", "Loop": "Loop", "Boulevard": "Blvd",
}  # fmt: skip


# ---------------------------------------------------------------------------------------
# Small geometry helpers
# ---------------------------------------------------------------------------------------


def _river_x(y: np.ndarray | float) -> np.ndarray:
    """Return the river centreline's x (metres) at each y: a meander west of the town."""
    y = np.asarray(y, dtype=float)
    return (
        -1800.0
        + 250.0 * np.sin(2 * np.pi * y / 7000.0 + 0.6)
        + 120.0 * np.sin(2 * np.pi * y / 2300.0 + 1.9)
    )


def _river_coords(y0: float, y1: float, step: float = 50.0) -> list[tuple[float, float]]:
    ys = np.arange(y0, y1 + step / 2, step)
    return list(zip(_river_x(ys).tolist(), ys.tolist(), strict=True))


def _motorway_y(x: np.ndarray | float) -> np.ndarray:
    """Return the motorway centreline's y at each x: a gentle curve south of the town."""
    x = np.asarray(x, dtype=float)
    return _MOTORWAY_Y + 120.0 * np.sin(2 * np.pi * (x + 3000.0) / 18000.0)


def _wiggle(
    p0: tuple[float, float],
    p1: tuple[float, float],
    rng: np.random.Generator,
    *,
    step: float = 60.0,
    amp: float = 45.0,
    calm: tuple[tuple[float, float, float], ...] = (),
) -> list[tuple[float, float]]:
    """Return a gently wiggling polyline from p0 to p1 (ends exact, straight in calm zones)."""
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    length = float(np.hypot(*(b - a)))
    n = max(math.ceil(length / step), 1)
    s = np.linspace(0.0, length, n + 1)
    d = (b - a) / length
    normal = np.array([-d[1], d[0]])
    ph1, ph2 = rng.uniform(0.0, 2 * np.pi, 2)
    off = amp * (
        0.65 * np.sin(2 * np.pi * s / 2900.0 + ph1) + 0.35 * np.sin(2 * np.pi * s / 1100.0 + ph2)
    )
    taper = np.clip(np.minimum(s, length - s) / 400.0, 0.0, 1.0)
    pts = a + np.outer(s, d)
    for cx, cy, r in calm:
        dist = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy)
        taper = taper * np.clip((dist - r) / 500.0, 0.0, 1.0)
    pts = pts + np.outer(off * taper, normal)
    pts[0], pts[-1] = a, b
    return [(float(x), float(y)) for x, y in pts]


def _bezier(p0: Any, p1: Any, p2: Any, n: int = 9) -> list[tuple[float, float]]:
    t = np.linspace(0.0, 1.0, n)[:, None]
    a, b, c = (np.asarray(p, float) for p in (p0, p1, p2))
    pts = (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c
    return [(float(x), float(y)) for x, y in pts]


def _point_at(
    line: LineString, *, x: float | None = None, y: float | None = None
) -> tuple[float, float]:
    """Return the (first) point of ``line`` at the given x or y."""
    big = 1e6
    cut = LineString([(x, -big), (x, big)]) if x is not None else LineString([(-big, y), (big, y)])
    hit = line.intersection(cut)
    pts = [p for p in shapely.get_parts(hit) if p.geom_type == "Point"]
    if not pts:
        msg = f"demo layout: line does not reach x={x} y={y}"
        raise RuntimeError(msg)
    pts.sort(key=line.project)
    return (pts[0].x, pts[0].y)


def _points_of(geom: shapely.Geometry) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for part in shapely.get_parts(geom):
        if part.is_empty:
            continue
        if part.geom_type == "Point":
            out.append((part.x, part.y))
        else:  # a shared stretch (not in the fixed layout): keep its ends
            out.extend((float(x), float(y)) for x, y in shapely.get_coordinates(part.boundary))
    return out


def _abbr(street: str) -> str:
    """Return the postal spelling: "East Main Street" → "E Main St"."""
    words = street.split(" ")
    if len(words) > 2 and words[0] in ("North", "South", "East", "West"):
        words[0] = words[0][0]
    words[-1] = _SUFFIX_ABBR.get(words[-1], words[-1])
    return " ".join(words)


# ---------------------------------------------------------------------------------------
# The street network
# ---------------------------------------------------------------------------------------


@dataclass
class _Road:
    """One way under construction: local coordinates, OSM tags and how it joins others."""

    coords: list[tuple[float, float]]
    tags: dict[str, str]
    planar: bool = True  # gets a node wherever it crosses another planar road
    bridge: bool = False  # already a bridge piece (exempt from the river cut)
    bridge_ok: bool = False  # crosses the river on a bridge
    clipped: bool = False  # ends at a node outside the extract
    end_tags: dict[str, str] = field(default_factory=dict)  # tags of the last node


@dataclass
class _Network:
    """The road layout: ways, street axes (for house numbers) and street groups."""

    roads: list[_Road]
    axes: dict[str, LineString]
    groups: dict[str, list[str]]
    river: LineString


class _LayoutBuilder:
    """Build the fixed layout with seed-driven wiggles; checks new roads against old ones."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.roads: list[_Road] = []
        self.axes: dict[str, LineString] = {}
        self.groups: dict[str, list[str]] = {
            k: [] for k in ("town", "suburb", "village", "west", "rural", "arterial")
        }
        self._lines: list[LineString] = []
        combos = [f"{n} {t}" for n in _COURT_NAMES for t in _COURT_TYPES]
        self.court_names = [combos[k] for k in self.rng.permutation(len(combos)).tolist()]

    # -- bookkeeping ----------------------------------------------------------------------

    def add(
        self,
        coords: list[tuple[float, float]],
        tags: dict[str, str],
        *,
        group: str | None = None,
        axis: bool = True,
        **flags: Any,
    ) -> _Road:
        road = _Road(coords=list(coords), tags=dict(tags), **flags)
        self.roads.append(road)
        self._lines.append(LineString(road.coords))
        name = tags.get("name")
        if axis and name:
            if name in self.axes:
                msg = f"demo layout: street name {name!r} used twice"
                raise RuntimeError(msg)
            self.axes[name] = LineString(road.coords)
            if group:
                self.groups[group].append(name)
        return road

    def clear(
        self, line: LineString, *, gap: float, trim_start: bool = True, trim_end: bool = False
    ) -> bool:
        """Return whether ``line`` keeps ``gap`` metres from every road so far.

        The stretch within ``gap`` of a trimmed end (where it joins its host) is not checked.
        """
        a = gap + 1.0 if trim_start else 0.0
        b = line.length - (gap + 1.0 if trim_end else 0.0)
        if b - a < 1.0:
            return False
        probe = substring(line, a, b)
        return not bool(np.any(shapely.dwithin(probe, np.array(self._lines, dtype=object), gap)))

    # -- pieces of the layout -----------------------------------------------------------------

    def build(self) -> _Network:
        self._arterials()
        self._town_grid()
        self._motorway()
        self._rural()
        self._village()
        self._river_roads()
        self._industrial()
        for spec in _SUBDIVISIONS:
            self._subdivision(*spec)
        self._paths()
        self._service_spurs()
        self._fragment()
        river = LineString(_river_coords(-_EDGE, _EDGE))
        return _Network(self.roads, self.axes, self.groups, river)

    def _arterials(self) -> None:
        rng = self.rng
        town_calm = ((_HIGH_X, _MAIN_Y, 2800.0),)
        main = _wiggle(
            (-_EDGE, _MAIN_Y), (_EDGE, _MAIN_Y), rng, step=80.0, amp=60.0, calm=town_calm
        )
        west, east = _halves(main, x=_HIGH_X)
        self._split(
            west,
            "West Main Street",
            "x",
            [
                (None, _TOWN[0], {"highway": "primary", "maxspeed": "25 mph"}),
                (_TOWN[0], None, {"highway": "secondary"}),
            ],
        )
        self._split(
            east,
            "East Main Street",
            "x",
            [
                (None, _TOWN[2], {"highway": "primary", "maxspeed": "25 mph"}),
                (_TOWN[2], None, {"highway": "secondary", "maxspeed": "35 mph"}),
            ],
        )
        high = _wiggle(
            (_HIGH_X, -_EDGE),
            (_HIGH_X, _EDGE),
            rng,
            step=80.0,
            amp=60.0,
            calm=((_HIGH_X, _MAIN_Y, 4300.0),),
        )
        south, north = _halves(high, y=_MAIN_Y)
        self._split(
            south,
            "South High Street",
            "y",
            [
                (None, -6000.0, {"highway": "primary"}),
                (-6000.0, None, {"highway": "secondary", "maxspeed": "45 mph"}),
            ],
        )
        self._split(
            north,
            "North High Street",
            "y",
            [
                (None, _TOWN[3], {"highway": "primary"}),
                (_TOWN[3], None, {"highway": "secondary"}),
            ],
        )
        vx, vy = _VILLAGE
        half = 2 * _VILLAGE_STEP
        mill = _wiggle((_TOWN[0], _TOWN[3]), (vx + half, vy - half), rng, step=70.0, amp=70.0)
        self.add(
            mill,
            {"highway": "secondary", "name": "Mill Road", "maxspeed": "35 mph"},
            group="arterial",
            bridge_ok=True,
        )
        pike = _wiggle((_TOWN[2], _TOWN[3]), (_EDGE, 11500.0), rng, step=70.0, amp=70.0)
        self.add(pike, {"highway": "secondary", "name": "Orchard Pike"}, group="arterial")
        quarry = _wiggle((_TOWN[2], _TOWN[1]), (_EDGE, -12500.0), rng, step=70.0, amp=70.0)
        self.add(
            quarry,
            {"highway": "secondary", "name": "Quarry Road", "maxspeed": "45 mph"},
            group="arterial",
        )

    def _split(
        self,
        coords: list[tuple[float, float]],
        name: str,
        by: str,
        parts: list[tuple[float | None, float | None, dict[str, str]]],
        **flags: Any,
    ) -> None:
        """Add one street as consecutive ways with different tags, cut where x (or y) is given.

        ``parts`` run from the street's start (None) to its end (None).
        """
        axis = LineString(coords)
        self.axes[name] = axis
        self.groups["arterial"].append(name)

        def dist(v: float | None, default: float) -> float:
            if v is None:
                return default
            pt = _point_at(axis, x=v) if by == "x" else _point_at(axis, y=v)
            return axis.project(Point(pt))

        for lo, hi, tags in parts:
            lo_d, hi_d = dist(lo, 0.0), dist(hi, axis.length)
            piece = substring(axis, lo_d, hi_d)
            self.add(list(piece.coords), {**tags, "name": name}, axis=False, **flags)

    def _town_grid(self) -> None:
        x0, y0, x1, y1 = _TOWN
        n = round((x1 - x0) / _BLOCK)
        names = [
            "Water Street",
            *(f"{t} Street" for t in _COLUMN_TREES),
            "High",
            *(f"{_ordinal(k)} Street" for k in range(1, n - 17)),
        ]
        for i in range(n + 1):
            x = x0 + i * _BLOCK
            name = names[i]
            if name == "High":
                continue
            tags = {"highway": "residential", "name": name}
            coords = [(x, y0), (x, y1)]
            if i in (0, n):
                tags["highway"] = "tertiary"
            elif name == "2nd Street":  # the couplet: southbound ...
                tags.update(highway="secondary", oneway="yes", maxspeed="25 mph")
                coords = coords[::-1]
            elif name == "3rd Street":  # ... and northbound
                tags.update(highway="secondary", oneway="yes", maxspeed="25 mph")
            elif i % 6 == 0:
                tags["highway"] = "tertiary"
            self.add(coords, tags, group="town")
        rows = [*reversed(_ROWS_SOUTH), "Main", *_ROWS_NORTH]
        for j in range(n + 1):
            y = y0 + j * _BLOCK
            name = rows[j]
            if name == "Main":
                continue
            tags = {"highway": "residential", "name": name}
            if j in (0, n) or name in ("Market Street", "Church Street") or j % 6 == 0:
                tags["highway"] = "tertiary"
            self.add([(x0, y), (x1, y)], tags, group="town")

    def _motorway(self) -> None:
        step = 100.0
        x_w, x_e = _MOTORWAY_ENDS
        xs = np.arange(x_w + 300.0, x_e - 300.0 + 1.0, step) + 37.0
        xs = xs[xs < x_e - 300.0]
        mw = (x_w, float(_motorway_y(x_w)))
        me = (x_e, float(_motorway_y(x_e)))
        eb = [mw, *zip(xs.tolist(), (_motorway_y(xs) - 15.0).tolist(), strict=True), me]
        wb = [me, *zip(xs[::-1].tolist(), (_motorway_y(xs[::-1]) + 15.0).tolist(), strict=True), mw]
        tags = {
            "highway": "motorway",
            "name": "Millbrook Expressway",
            "oneway": "yes",
            "maxspeed": "65 mph",
            "lanes": "2",
        }
        self.add(eb, tags, axis=False, planar=False, bridge_ok=True)
        self.add(wb, tags, axis=False, planar=False, bridge_ok=True)
        self.axes["Millbrook Expressway"] = LineString(eb)
        trunk = {"highway": "trunk", "name": CLIPPED_NAME, "maxspeed": "55 mph"}
        xw = np.arange(-_EDGE, x_w, step)
        west = [*zip(xw.tolist(), _motorway_y(xw).tolist(), strict=True), mw]
        xe = np.arange(x_e + step, _EDGE + 1.0, step)
        east = [me, *zip(xe.tolist(), _motorway_y(xe).tolist(), strict=True)]
        # west: a limited-access expressway on to the next county, with no exit in this one;
        # east: an ordinary highway at grade (it crosses Bell Hollow Road)
        self.add(west, {**trunk, "foot": "no", "bicycle": "no"}, axis=False, planar=False)
        self.add(east, trunk, clipped=True)
        self._eb, self._wb = LineString(eb), LineString(wb)

    def _interchanges(self) -> None:
        link = {"highway": "motorway_link", "oneway": "yes"}
        for host_name, xa in _INTERCHANGES:
            host = self.axes[host_name]
            ym = float(_motorway_y(xa))
            ts = _point_at(host, y=ym - 160.0)
            tn = _point_at(host, y=ym + 160.0)
            west, east = xa - 110.0, xa + 110.0
            ctrl = {k: float(_motorway_y(v)) for k, v in (("w", west), ("e", east))}
            ramps = [  # off and on, eastbound (south side) then westbound (north side)
                _bezier(_point_at(self._eb, x=xa - 400.0), (west, ctrl["w"] - 35.0), ts),
                _bezier(ts, (east, ctrl["e"] - 35.0), _point_at(self._eb, x=xa + 400.0)),
                _bezier(_point_at(self._wb, x=xa + 400.0), (east, ctrl["e"] + 35.0), tn),
                _bezier(tn, (west, ctrl["w"] + 35.0), _point_at(self._wb, x=xa - 400.0)),
            ]
            for coords in ramps:
                self.add(coords, link, planar=False)

    def _rural(self) -> None:
        rng = self.rng
        vx, vy = _VILLAGE
        calm_ns = tuple((x, float(_motorway_y(x)), 300.0) for _, x in _INTERCHANGES)
        village_calm = ((vx, vy, 450.0), (*_HAMLET, 350.0))
        specs = [
            ("Stone Church Road", "unclassified", (-10000.0, -_EDGE), (-10000.0, _EDGE), None),
            ("Glen Road", "tertiary", (vx, -_EDGE), (vx, _EDGE), None),
            ("Station Road", "tertiary", (7500.0, -_EDGE), (7500.0, _EDGE), "45 mph"),
            ("Bell Hollow Road", "unclassified", (10500.0, -_EDGE), (10500.0, _EDGE), None),
            ("County Road 12", "unclassified", (-_EDGE, -10500.0), (_EDGE, -10500.0), None),
            ("Ferry Road", "unclassified", (-_EDGE, -7000.0), (_EDGE, -7000.0), None),
            ("Alder Road", "tertiary", (-_EDGE, vy), (_EDGE, vy), None),
            ("Township Line Road", "unclassified", (-_EDGE, 10500.0), (_EDGE, 10500.0), None),
        ]
        for name, hw, p0, p1, speed in specs:
            coords = _wiggle(p0, p1, rng, step=60.0, amp=45.0, calm=calm_ns + village_calm)
            tags = {"highway": hw, "name": name}
            if speed:
                tags["maxspeed"] = speed
            self.add(coords, tags, group="rural", bridge_ok=name == "Township Line Road")
        self._interchanges()

    def _village(self) -> None:
        hx, hy = _HAMLET
        s = _VILLAGE_STEP
        names = iter(_HAMLET_STREETS)
        for off in (-s, s):
            self.add(
                [(hx + off, hy - 1.5 * s), (hx + off, hy + 1.5 * s)],
                {"highway": "residential", "name": next(names)},
                group="rural",
            )
            self.add(
                [(hx - 1.5 * s, hy + off), (hx + 1.5 * s, hy + off)],
                {"highway": "residential", "name": next(names)},
                group="rural",
            )
        vx, vy = _VILLAGE
        s = _VILLAGE_STEP
        offsets = (-2 * s, -s, s, 2 * s)
        for off, name in zip(offsets, _VILLAGE_COLUMNS, strict=True):
            self.add(
                [(vx + off, vy - 2 * s), (vx + off, vy + 2 * s)],
                {"highway": "residential", "name": name},
                group="village",
            )
        for off, name in zip(offsets, _VILLAGE_ROWS, strict=True):
            self.add(
                [(vx - 2 * s, vy + off), (vx + 2 * s, vy + off)],
                {"highway": "residential", "name": name},
                group="village",
            )

    def _river_roads(self) -> None:
        ys = np.arange(-_EDGE, _EDGE + 1.0, 60.0)
        xr = _river_x(ys)
        east = list(zip((xr + 300.0).tolist(), ys.tolist(), strict=True))
        west = list(zip((xr - 300.0).tolist(), ys.tolist(), strict=True))
        self.add(east, {"highway": "tertiary", "name": "River Road"}, group="rural")
        self.add(west, {"highway": "unclassified", "name": "West River Road"}, group="west")

    def _industrial(self) -> None:
        x0, y0, _, y1 = _INDUSTRIAL
        ym = (y0 + y1) / 2
        start = _point_at(self.axes["Station Road"], y=ym)
        coords = [start, *[(x, ym) for x in np.arange(7300.0, x0 + 99.0, -200.0).tolist()]]
        self.add(coords, {"highway": "tertiary", "name": "Industrial Parkway"}, group="rural")
        for x in (x0 + 400.0, x0 + 900.0):
            for dy in (-180.0, 180.0):
                self.add(
                    [(x, ym), (x, ym + dy / 2), (x, ym + dy)], {"highway": "service"}, planar=False
                )

    def _subdivision(
        self,
        name: str,
        centre: tuple[float, float],
        w: float,
        h: float,
        hosts: tuple[str, ...],
        walk_host: str | None,
    ) -> None:
        rng = self.rng
        cx, cy = centre
        r = 70.0
        ring = (
            box(cx - w / 2 + r, cy - h / 2 + r, cx + w / 2 - r, cy + h / 2 - r)
            .buffer(r, quad_segs=4)
            .exterior
        )
        ring = shapely.segmentize(ring, 50.0)
        poly = Polygon(ring)
        group = "west" if cx < -2000 else "suburb"
        loop_name = f"{name} Circle"
        self.add(list(ring.coords), {"highway": "residential", "name": loop_name}, group=group)
        taken: list[float] = []
        for host_name in hosts:
            host = self.axes[host_name]
            hp = host.interpolate(host.project(Point(cx, cy)))
            lp = ring.interpolate(ring.project(hp))
            entry = shapely.segmentize(LineString([lp, hp]), 60.0)
            self.add(
                list(entry.coords), {"highway": "residential", "name": f"{name} Drive"}, group=group
            )
            taken.append(ring.project(lp))
        if walk_host is not None:
            host = self.axes[walk_host]
            hp = host.interpolate(host.project(Point(cx, cy)))
            lp = ring.interpolate(ring.project(hp))
            walk = shapely.segmentize(LineString([lp, hp]), 40.0)
            if self.clear(walk, gap=10.0, trim_end=True):
                self.add(
                    list(walk.coords), {"highway": "footway", "name": f"{name} Walk"}, axis=False
                )
                taken.append(ring.project(lp))
        # a spine street along the long axis, with courts off both sides
        if w >= h:
            spine = LineString([(cx - w / 2, cy), (cx + w / 2, cy)])
        else:
            spine = LineString([(cx, cy - h / 2), (cx, cy + h / 2)])
        self.add(
            list(shapely.segmentize(spine, 50.0).coords),
            {"highway": "residential", "name": f"{name} Lane"},
            group=group,
        )
        half = min(w, h) / 2
        for s in np.arange(110.0, spine.length - 100.0, 95.0).tolist():
            if rng.random() < 0.25:
                continue
            p = spine.interpolate(s)
            sign = 1.0 if rng.random() < 0.5 else -1.0
            length = float(rng.uniform(0.45, 0.7)) * (half - 20.0)
            dx, dy = (0.0, sign) if w >= h else (sign, 0.0)
            self._court((p.x, p.y), (dx, dy), length, group)
        # courts off the loop, pointing out
        positions = rng.uniform(0.0, ring.length, 24).tolist()
        added, wanted = 0, int(rng.integers(4, 8))
        for s in positions:
            if added >= wanted:
                break
            if any(min(abs(s - t), ring.length - abs(s - t)) < 70.0 for t in taken):
                continue
            p = ring.interpolate(s)
            q = ring.interpolate((s + 1.0) % ring.length)
            tx, ty = q.x - p.x, q.y - p.y
            norm = math.hypot(tx, ty) or 1.0
            nx_, ny_ = -ty / norm, tx / norm
            if poly.contains(Point(p.x + nx_ * 5, p.y + ny_ * 5)):
                nx_, ny_ = -nx_, -ny_
            if self._court((p.x, p.y), (nx_, ny_), float(rng.uniform(100.0, 190.0)), group):
                taken.append(s)
                added += 1

    def _court(
        self, start: tuple[float, float], direction: tuple[float, float], length: float, group: str
    ) -> bool:
        """Add a cul-de-sac with a gentle bend and a turning circle, if it clears other roads."""
        bend = float(self.rng.uniform(-0.3, 0.3))
        (px, py), (dx, dy) = start, direction
        mid = (
            px + dx * length * 0.55 - dy * length * bend * 0.3,
            py + dy * length * 0.55 + dx * length * bend * 0.3,
        )
        end = (px + dx * length - dy * length * bend, py + dy * length + dx * length * bend)
        line = LineString([start, mid, end])
        if not self.clear(line, gap=22.0):
            return False
        self.add(
            list(line.coords),
            {"highway": "residential", "name": self.court_names.pop()},
            group=group,
            end_tags={"highway": "turning_circle"},
        )
        return True

    def _paths(self) -> None:
        ys = np.arange(-2600.0, 2600.0 + 1.0, 50.0)
        walk = list(zip((_river_x(ys) + 100.0).tolist(), ys.tolist(), strict=True))
        self.add(walk, {"highway": "footway", "name": "Riverwalk Trail", "surface": "paved"})
        for y in (-2600.0, 2600.0):
            x = float(_river_x(y)) + 100.0
            self.add(
                [(x, y), ((x + _TOWN[0]) / 2, y), (_TOWN[0], y)], {"highway": "footway"}, axis=False
            )
        trail = _wiggle(
            _point_at(self.axes["Station Road"], y=9000.0),
            _point_at(self.axes["Bell Hollow Road"], y=8800.0),
            self.rng,
            step=40.0,
            amp=80.0,
        )
        self.add(trail, {"highway": "path", "name": "Mill Pond Trail", "surface": "dirt"})

    def _service_spurs(self) -> None:
        rng = self.rng
        x0, y0, _, _ = _TOWN
        kinds = ("parking_aisle", "driveway", "alley")
        added = 0
        for _ in range(60):
            if added >= 16:
                break
            i = int(rng.integers(1, 35))
            j = int(rng.integers(1, 36))
            if j == 18:
                continue
            x = x0 + (i + 0.5) * _BLOCK
            y = y0 + j * _BLOCK
            dy = 55.0 if rng.random() < 0.5 else -55.0
            line = LineString([(x, y), (x, y + dy)])
            if not self.clear(line, gap=10.0):
                continue
            self.add(
                list(line.coords),
                {"highway": "service", "service": str(rng.choice(kinds))},
                axis=False,
                planar=False,
            )
            added += 1
        rural = [n for n in self.groups["rural"] if n not in ("Industrial Parkway", "River Road")]
        river = LineString(_river_coords(-_EDGE, _EDGE))
        added = 0
        for _ in range(60):
            if added >= 10:
                break
            host = self.axes[str(rng.choice(rural))]
            s = float(rng.uniform(0.1, 0.9)) * host.length
            p, q = host.interpolate(s), host.interpolate(s + 1.0)
            tx, ty = q.x - p.x, q.y - p.y
            norm = math.hypot(tx, ty) or 1.0
            sign = 1.0 if rng.random() < 0.5 else -1.0
            length = float(rng.uniform(100.0, 220.0))
            end = (p.x - sign * ty / norm * length, p.y + sign * tx / norm * length)
            line = LineString([(p.x, p.y), end])
            if abs(end[0]) > COUNTY_HALF_M or abs(end[1]) > COUNTY_HALF_M:
                continue
            if line.distance(river) < 150.0:
                continue
            if not self.clear(line, gap=40.0):
                continue
            self.add(
                list(line.coords),
                {"highway": "service", "service": "driveway"},
                axis=False,
                planar=False,
            )
            added += 1

    def _fragment(self) -> None:
        coords = [
            (8900.0, 11500.0),
            (9050.0, 11580.0),
            (9200.0, 11600.0),
            (9330.0, 11590.0),
            (9450.0, 11540.0),
        ]
        line = LineString(coords)
        if not self.clear(line, gap=300.0, trim_start=False):
            msg = "demo layout: the disconnected fragment touches another road"
            raise RuntimeError(msg)
        self.add(
            coords,
            {"highway": "residential", "name": FRAGMENT_NAME},
            planar=False,
            end_tags={"highway": "turning_circle"},
        )
        self.add(
            [(9200.0, 11600.0), (9210.0, 11680.0)],
            {"highway": "service", "service": "driveway"},
            axis=False,
            planar=False,
        )


def _halves(
    coords: list[tuple[float, float]], *, x: float | None = None, y: float | None = None
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Cut a street at the town centre into two halves that both start at the centre."""
    line = LineString(coords)
    d = line.project(Point(_point_at(line, x=x, y=y)))
    first = list(substring(line, 0.0, d).coords)[::-1]
    return first, list(substring(line, d, line.length).coords)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _cut_river(roads: list[_Road], river: LineString) -> list[_Road]:
    """Split bridge roads into approach/bridge/approach; cut every other road at the river."""
    corridor = river.buffer(_RIVER_CORRIDOR, cap_style="flat")
    out: list[_Road] = []
    for road in roads:
        line = LineString(road.coords)
        if not line.intersects(corridor):
            out.append(road)
            continue
        if road.bridge_ok:
            inside = line.intersection(corridor)
            ds = sorted(
                line.project(Point(c)) for part in shapely.get_parts(inside) for c in part.coords
            )
            d0, d1 = ds[0], ds[-1]
            pieces = [(0.0, d0, False), (d0, d1, True), (d1, line.length, False)]
            for a, b, is_bridge in pieces:
                if b - a < 1e-6:
                    continue
                tags = dict(road.tags)
                if is_bridge:
                    tags.update(bridge="yes", layer="1")
                out.append(
                    _Road(
                        list(substring(line, a, b).coords),
                        tags,
                        planar=road.planar and not is_bridge,
                        bridge=is_bridge,
                        clipped=road.clipped and b >= line.length,
                        end_tags=road.end_tags if b >= line.length else {},
                    )
                )
            continue
        rest = line.difference(corridor)
        for part in shapely.get_parts(rest):
            if part.length < 5.0:
                continue
            coords = list(part.coords)
            if line.project(Point(coords[0])) > line.project(Point(coords[-1])):
                coords.reverse()
            keeps_end = Point(coords[-1]).distance(Point(road.coords[-1])) < 1e-6
            out.append(
                _Road(
                    coords,
                    dict(road.tags),
                    planar=road.planar,
                    clipped=road.clipped and keeps_end,
                    end_tags=road.end_tags if keeps_end else {},
                )
            )
    return out


def _planarize(roads: list[_Road]) -> None:
    """Insert a shared vertex wherever planar roads cross and wherever a road ends on another."""
    lines = np.array([LineString(r.coords) for r in roads], dtype=object)
    tree = shapely.STRtree(lines)
    extra: list[list[tuple[float, float]]] = [[] for _ in roads]
    planar = np.array([r.planar for r in roads])
    idx = np.flatnonzero(planar)
    left, right = tree.query(lines[idx], predicate="intersects")
    for a, j in zip(idx[left].tolist(), right.tolist(), strict=True):
        if j <= a or not planar[j]:
            continue
        for p in _points_of(lines[a].intersection(lines[j])):
            extra[a].append(p)
            extra[j].append(p)
    ends = [(i, r.coords[k]) for i, r in enumerate(roads) for k in (0, -1)]
    pts = shapely.points(np.array([e[1] for e in ends]))
    left, right = tree.query(pts, predicate="dwithin", distance=0.5)
    for a, j in zip(left.tolist(), right.tolist(), strict=True):
        i, p = ends[a]
        if j != i:
            extra[j].append(p)
    for road, line, pts_i in zip(roads, lines, extra, strict=True):
        if pts_i:
            road.coords = _insert_points(line, road.coords, pts_i)


def _insert_points(
    line: LineString, coords: list[tuple[float, float]], pts: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    arr = np.asarray(coords)
    seg = np.hypot(*np.diff(arr, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    entries = [(float(cum[k]), 0, tuple(coords[k])) for k in range(len(coords))]
    for p in pts:
        if np.min(np.hypot(arr[:, 0] - p[0], arr[:, 1] - p[1])) < 0.01:
            continue
        entries.append((line.project(Point(p)), 1, p))
    entries.sort(key=lambda e: (e[0], e[1]))
    if line.is_closed:  # keep the closing vertex last
        last = [e for e in entries if e[1] == 0 and e[0] == cum[-1]]
        entries = [e for e in entries if not (e[1] == 0 and e[0] == cum[-1])] + last
    return [e[2] for e in entries]


@dataclass(frozen=True)
class _OsmData:
    """Nodes and ways ready to write."""

    node_xy: np.ndarray  # (n, 2) local metres
    node_tags: dict[int, dict[str, str]]  # by node index
    ways: list[tuple[list[int], dict[str, str]]]  # node indices (-1: the missing node)
    river_nodes: list[int]


def _to_nodes(roads: list[_Road], river: LineString) -> _OsmData:
    """Merge coincident vertices into nodes and turn roads into node lists."""
    from scipy.spatial import cKDTree

    arr = np.asarray([c for r in roads for c in r.coords] + list(river.coords), dtype=float)
    n_road = len(arr) - len(river.coords)
    parent = list(range(len(arr)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in sorted(cKDTree(arr[:n_road]).query_pairs(0.05)):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    # one node per set, numbered in order of first appearance
    first: dict[int, int] = {}
    canon = np.empty(len(arr), dtype=np.int64)
    for k in range(len(arr)):
        top = root(k)
        if top not in first:
            first[top] = len(first)
        canon[k] = first[top]
    node_xy = np.zeros((len(first), 2))
    seen = np.zeros(len(first), dtype=bool)
    for k in range(len(arr)):
        c = canon[k]
        if not seen[c]:
            node_xy[c] = arr[k]
            seen[c] = True
    ways: list[tuple[list[int], dict[str, str]]] = []
    node_tags: dict[int, dict[str, str]] = {}
    pos = 0
    for road in roads:
        ids = canon[pos : pos + len(road.coords)].tolist()
        pos += len(road.coords)
        dedup = [n for k, n in enumerate(ids) if k == 0 or n != ids[k - 1]]
        if len(dedup) < 2:
            continue
        if road.end_tags:
            node_tags.setdefault(dedup[-1], {}).update(road.end_tags)
        if road.clipped:
            dedup.append(-1)
        ways.append((dedup, road.tags))
    river_ids = canon[pos:].tolist()
    return _OsmData(node_xy, node_tags, ways, river_ids)


def _signals(data: _OsmData) -> None:
    """Tag traffic signals where two main streets meet inside the town."""
    main = {"primary", "secondary"}
    count: dict[int, int] = {}
    for nodes, tags in data.ways:
        if tags.get("highway") in main and tags.get("bridge") != "yes":
            for n in set(nodes):
                count[n] = count.get(n, 0) + 1
    x0, y0, x1, y1 = _TOWN
    for n, c in count.items():
        if c >= 2 and n >= 0:
            x, y = data.node_xy[n]
            if x0 <= x <= x1 and y0 <= y <= y1:
                data.node_tags.setdefault(n, {}).setdefault("highway", "traffic_signals")


# ---------------------------------------------------------------------------------------
# Coordinate conversion
# ---------------------------------------------------------------------------------------


class _Crs:
    """Convert local metres to UTM, WGS84 and NAD83."""

    def __init__(self) -> None:
        to_utm = Transformer.from_crs("EPSG:4326", LOCAL_CRS, always_xy=True)
        self.e0, self.n0 = to_utm.transform(*CENTER_LONLAT)
        self._wgs = Transformer.from_crs(LOCAL_CRS, "EPSG:4326", always_xy=True)
        self._nad = Transformer.from_crs(LOCAL_CRS, "EPSG:4269", always_xy=True)

    def lonlat(self, x: Any, y: Any, *, nad83: bool = False) -> tuple[np.ndarray, np.ndarray]:
        tr = self._nad if nad83 else self._wgs
        lon, lat = tr.transform(np.asarray(x, float) + self.e0, np.asarray(y, float) + self.n0)
        return np.asarray(lon), np.asarray(lat)

    def geom(self, g: shapely.Geometry, *, nad83: bool = False) -> shapely.Geometry:
        def f(xy: np.ndarray) -> np.ndarray:
            lon, lat = self.lonlat(xy[:, 0], xy[:, 1], nad83=nad83)
            return np.column_stack([np.round(lon, 9), np.round(lat, 9)])

        return shapely.transform(g, f)


# ---------------------------------------------------------------------------------------
# Addresses, cities and ZIP codes
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Address:
    number: int
    street: str
    x: float
    y: float
    city: str
    zip: str

    def line(self, *, style: str = "abbr") -> str:
        street = _abbr(self.street) if style in ("abbr", "upper") else self.street
        text = f"{self.number} {street}"
        return text.upper() if style == "upper" else text


def _zip_city(x: float, y: float) -> tuple[str, str]:
    vx, vy = _VILLAGE
    if math.hypot(x - vx, y - vy) < 2500.0:
        return "Alder Glen", "99014"
    if math.hypot(x - _HAMLET[0], y - _HAMLET[1]) < 1500.0:
        return "Stone Church", "99017"
    west = x < float(_river_x(y))
    if west:
        return (
            ("Westbrook", "99013") if x > -5500.0 and abs(y) < 4000.0 else ("Alder Glen", "99016")
        )
    if math.hypot(x - _HIGH_X, y - _MAIN_Y) < 1300.0:
        return "Millbrook", "99011"
    x0, y0, x1, y1 = _TOWN
    if x0 - 3000 < x < x1 + 3500 and y0 - 3000 < y < y1 + 2500:
        return "Millbrook", "99012"
    return "Millbrook", "99015"


class _Addresser:
    """Place points along named streets with house numbers that follow the position."""

    def __init__(self, net: _Network, rng: np.random.Generator) -> None:
        self.net = net
        self.rng = rng
        self.corridor = net.river.buffer(90.0)

    def at(
        self,
        street: str,
        target: tuple[float, float] | None = None,
        *,
        jitter: float = 40.0,
        setback: float = 16.0,
        side: int | None = None,
    ) -> _Address:
        axis = self.net.axes[street]
        for _ in range(200):
            if target is not None:
                d = axis.project(Point(target)) + float(self.rng.uniform(-jitter, jitter))
            else:
                d = float(self.rng.uniform(0.0, axis.length))
            d = min(max(d, 5.0), axis.length - 5.0)
            p, q = axis.interpolate(d), axis.interpolate(min(d + 1.0, axis.length))
            tx, ty = q.x - p.x, q.y - p.y
            norm = math.hypot(tx, ty) or 1.0
            s = side if side is not None else (1 if self.rng.random() < 0.5 else -1)
            x, y = p.x - s * ty / norm * setback, p.y + s * tx / norm * setback
            inside = max(abs(x), abs(y)) < COUNTY_HALF_M - 200.0
            if inside and not self.corridor.contains(Point(x, y)):
                break
            target = None  # retry anywhere along the street
        else:
            msg = f"demo layout: no address place found on {street}"
            raise RuntimeError(msg)
        number = 100 + int(d / 1.5)
        number = number - number % 2 + (0 if s > 0 else 1)  # even left, odd right
        city, zipc = _zip_city(x, y)
        return _Address(number, street, x, y, city, zipc)

    def anywhere(self, group: str) -> _Address:
        names = self.net.groups[group]
        return self.at(str(self.rng.choice(np.array(names))))


# ---------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------


def _write_text(path: Path, text: str, *, encoding: str = "utf-8", newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.replace("\n", newline) if newline != "\n" else text
    path.write_bytes(data.encode(encoding))


def _csv_text(header: list[str], rows: list[list[Any]], *, crlf: bool = False) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _zip_dir(src: Path, members: list[str], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w") as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, (src / name).read_bytes())


def _shp_xml(title: str, abstract: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<metadata>\n  <idinfo>\n    <citation>\n'
        f"      <citeinfo><title>{escape(title)}</title>"
        "<origin>Access Atlas (etl/demo/generate.py)</origin>"
        "<pubdate>generated</pubdate></citeinfo>\n"
        "    </citation>\n"
        f"    <descript><abstract>{escape(abstract)}</abstract>"
        "<purpose>Demonstration and testing only. FICTIONAL: nothing here describes a real "
        "place.</purpose></descript>\n"
        "    <useconst>CC0 (fictional data)</useconst>\n  </idinfo>\n</metadata>\n"
    )


def _write_shapefile_zip(gdf: Any, stem: str, dest: Path, xml: str) -> None:
    import pyogrio

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        pyogrio.write_dataframe(
            gdf,
            tmpdir / f"{stem}.shp",
            driver="ESRI Shapefile",
            layer_options={"ENCODING": "UTF-8", "DBF_DATE_LAST_UPDATE": _DBF_DATE},
        )
        (tmpdir / f"{stem}.shp.xml").write_text(xml, encoding="utf-8")
        members = sorted(p.name for p in tmpdir.iterdir())
        _zip_dir(tmpdir, members, dest)


def _osm_xml(data: _OsmData, crs: _Crs, seed: int) -> tuple[str, dict[str, int]]:
    lon, lat = crs.lonlat(data.node_xy[:, 0], data.node_xy[:, 1])
    edge = shapely.segmentize(
        box(-EXTRACT_HALF_M, -EXTRACT_HALF_M, EXTRACT_HALF_M, EXTRACT_HALF_M).exterior, 500.0
    )
    blon, blat = crs.lonlat(*np.asarray(edge.coords).T)
    note = (
        f"{COUNTY_TITLE}: FICTIONAL street network generated by Access Atlas "
        f"(etl/demo/generate.py, seed {seed}). Nothing in this file describes a real place."
    )
    node_id0, way_id0 = 1_000_001, 2_000_001
    used = {n for nodes, _ in data.ways for n in nodes if n >= 0} | set(data.river_nodes)
    node_tags = dict(data.node_tags)
    first_node = min(used)
    node_tags.setdefault(first_node, {})["note"] = note
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<!-- {escape(note)} -->",
        '<osm version="0.6" generator="Access Atlas etl/demo/generate.py (fictional data)">',
        f'  <bounds minlat="{blat.min():.7f}" minlon="{blon.min():.7f}" '
        f'maxlat="{blat.max():.7f}" maxlon="{blon.max():.7f}"/>',
    ]
    for n in sorted(used):
        head = (
            f'  <node id="{node_id0 + n}" version="1" timestamp="{_TIMESTAMP}" '
            f'lat="{lat[n]:.7f}" lon="{lon[n]:.7f}"'
        )
        tags = node_tags.get(n)
        if not tags:
            out.append(head + "/>")
            continue
        out.append(head + ">")
        out.extend(
            f'    <tag k="{k}" v="{escape(v, {chr(34): "&quot;"})}"/>'
            for k, v in sorted(tags.items())
        )
        out.append("  </node>")
    way_id = way_id0
    order = ("highway", "name")
    for nodes, tags in data.ways:
        out.append(f'  <way id="{way_id}" version="1" timestamp="{_TIMESTAMP}">')
        out.extend(f'    <nd ref="{node_id0 + n if n >= 0 else MISSING_NODE_ID}"/>' for n in nodes)
        keys = [k for k in order if k in tags] + sorted(k for k in tags if k not in order)
        out.extend(f'    <tag k="{k}" v="{escape(tags[k], {chr(34): "&quot;"})}"/>' for k in keys)
        out.append("  </way>")
        way_id += 1
    out.append(f'  <way id="{way_id}" version="1" timestamp="{_TIMESTAMP}">')
    out.extend(f'    <nd ref="{node_id0 + n}"/>' for n in data.river_nodes)
    out.extend(
        [
            '    <tag k="waterway" v="river"/>',
            '    <tag k="name" v="Millbrook River"/>',
            f'    <tag k="note" v="{escape(note)}"/>',
            "  </way>",
            "</osm>",
        ]
    )
    road_nodes = {n for nodes, _ in data.ways for n in nodes if n >= 0}
    stats = {"nodes": len(used), "road_nodes": len(road_nodes), "ways": len(data.ways) + 1}
    return "\n".join(out) + "\n", stats


# ---------------------------------------------------------------------------------------
# Block groups and population
# ---------------------------------------------------------------------------------------


def _town_distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = _TOWN
    dx = np.maximum(np.maximum(x0 - x, x - x1), 0.0)
    dy = np.maximum(np.maximum(y0 - y, y - y1), 0.0)
    return np.hypot(dx, dy)


def _seeds(rng: np.random.Generator, region: shapely.Geometry) -> list[tuple[float, float]]:
    """Block-group seed points: dense in the town and village, sparse in the country."""
    vx, vy = _VILLAGE
    accepted: list[tuple[float, float, float]] = []
    grids = (
        (950.0, lambda x, y: _town_distance(x, y) <= 0.0),
        (1800.0, lambda x, y: (_town_distance(x, y) > 0.0) & (_town_distance(x, y) < 2600.0)),
        (700.0, lambda x, y: np.hypot(x - vx, y - vy) < 700.0),
        (
            4200.0,
            lambda x, y: (_town_distance(x, y) >= 2600.0) & (np.hypot(x - vx, y - vy) >= 1300.0),
        ),
    )
    for spacing, keep in grids:
        g = np.arange(-COUNTY_HALF_M + spacing / 2, COUNTY_HALF_M, spacing)
        gx, gy = np.meshgrid(g, g)
        gx = gx.ravel() + rng.uniform(-0.3, 0.3, gx.size) * spacing
        gy = gy.ravel() + rng.uniform(-0.3, 0.3, gy.size) * spacing
        mask = keep(gx, gy) & shapely.contains_xy(region, gx, gy)
        for x, y in zip(gx[mask].tolist(), gy[mask].tolist(), strict=True):
            if all(math.hypot(x - a, y - b) > 0.45 * min(spacing, s) for a, b, s in accepted):
                accepted.append((x, y, spacing))
    return [(a, b) for a, b, _ in accepted]


def _tessellate(rng: np.random.Generator, region: shapely.Geometry) -> list[shapely.Geometry]:
    """Voronoi cells of seed points, clipped to ``region``; stray pieces join a neighbour."""
    seeds = _seeds(rng, region)
    if len(seeds) == 1:
        return [region]
    env = box(-3 * COUNTY_HALF_M, -3 * COUNTY_HALF_M, 3 * COUNTY_HALF_M, 3 * COUNTY_HALF_M)
    vor = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=env, ordered=True)
    cells: list[shapely.Geometry] = []
    strays: list[shapely.Geometry] = []
    for cell, seed in zip(shapely.get_parts(vor), seeds, strict=True):
        clipped = cell.intersection(region)
        parts = [p for p in shapely.get_parts(clipped) if p.geom_type == "Polygon" and p.area > 0]
        if not parts:
            continue
        parts.sort(key=lambda p: (not p.contains(Point(seed)), -p.area))
        cells.append(parts[0])
        strays.extend(parts[1:])
    for stray in strays:
        shared = [c.boundary.intersection(stray.boundary).length for c in cells]
        k = int(np.argmax(shared))
        cells[k] = cells[k].union(stray)
    return cells


def _valid(geom: shapely.Geometry) -> shapely.Geometry:
    """Repair a polygon that reprojection left touching itself (rare, sub-millimetre)."""
    return geom if geom.is_valid else _polygonal(shapely.make_valid(geom))


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Keep the polygon parts of a geometry (``make_valid`` may add slivers of lines)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts)


@dataclass(frozen=True)
class _BlockGroups:
    geoid: list[str]
    tract: list[str]
    bg: list[str]
    geom: list[shapely.Geometry]  # local metres
    population: list[int]
    zero_reason: dict[str, str]


def _river_sides() -> tuple[Polygon, Polygon]:
    """Return the county west and east of the river centreline (sharing its vertices)."""
    h = COUNTY_HALF_M
    river = _river_coords(-h, h)
    return Polygon([*river, (-h, h), (-h, -h)]), Polygon([*river, (h, h), (h, -h)][::-1])


def _block_groups(rng: np.random.Generator) -> _BlockGroups:
    h = COUNTY_HALF_M
    west, east = _river_sides()
    x0, y0, _, y1 = _TOWN
    park_y = np.arange(y0, y1 + 1.0, 50.0)
    park = Polygon(
        [*zip(_river_x(park_y).tolist(), park_y.tolist(), strict=True), (x0, y1), (x0, y0)]
    )
    industrial = box(*_INDUSTRIAL)
    east_rest = east.difference(park).difference(industrial)
    cells = _tessellate(rng, west) + _tessellate(rng, east_rest) + [park, industrial]
    specials = {len(cells) - 2: "Riverfront Park", len(cells) - 1: "Industrial park"}
    # make shared edges carry the same vertices (no T-junctions), so reprojection keeps the tiling
    verts = MultiPoint(
        np.unique(np.round(np.vstack([shapely.get_coordinates(c) for c in cells]), 6), axis=0)
    )
    cells = [shapely.snap(c, verts, 0.01) for c in cells]
    cells = [c if c.is_valid else _polygonal(shapely.make_valid(c)) for c in cells]
    # tracts: group cells by a coarse grid (finer in town), at most four per tract
    cent = np.array([[c.centroid.x, c.centroid.y] for c in cells])
    near = _town_distance(cent[:, 0], cent[:, 1]) < 1500.0
    size = np.where(near, 2200.0, 6500.0)
    side = np.array([0 if c.centroid.within(west) else 1 for c in cells])
    key = [
        (
            int(side[k]),
            int(not near[k]),
            int(np.floor(cent[k, 1] / size[k])),
            int(np.floor(cent[k, 0] / size[k])),
        )
        for k in range(len(cells))
    ]
    order = sorted(range(len(cells)), key=lambda k: (key[k], -cent[k, 1], cent[k, 0]))
    groups: list[list[int]] = []
    for k in order:
        if groups and key[groups[-1][0]] == key[k] and len(groups[-1]) < 4:
            groups[-1].append(k)
        else:
            groups.append([k])
    # population: integrate a density surface on a 100 m grid
    g = np.arange(-h + 50.0, h, 100.0)
    gx, gy = (a.ravel() for a in np.meshgrid(g, g))
    density = np.full(gx.shape, 18.0)  # people per km²
    dt = _town_distance(gx, gy)
    density += np.where(dt <= 0, 3000.0, np.clip(900.0 * (1 - dt / 1500.0), 0.0, None))
    core = np.hypot(gx - _HIGH_X, gy - _MAIN_Y) < 700.0
    density[core] = 1200.0
    for _, (cx, cy), w, hh, _, _ in _SUBDIVISIONS:
        inside = (np.abs(gx - cx) < w / 2 + 150.0) & (np.abs(gy - cy) < hh / 2 + 150.0)
        density[inside] = np.maximum(density[inside], 2600.0)
    vx, vy = _VILLAGE
    vill = (np.abs(gx - vx) < 550.0) & (np.abs(gy - vy) < 550.0)
    density[vill] = np.maximum(density[vill], 1500.0)
    hx, hy = _HAMLET
    hamlet = (np.abs(gx - hx) < 300.0) & (np.abs(gy - hy) < 300.0)
    density[hamlet] = np.maximum(density[hamlet], 1200.0)
    zero = (
        (np.abs(gx - _river_x(gy)) < 80.0)
        | shapely.contains_xy(park, gx, gy)
        | (shapely.contains_xy(industrial, gx, gy))
    )
    density[zero] = 0.0
    people = density * 0.01
    tree = shapely.STRtree(np.array(cells, dtype=object))
    pi, ci = tree.query(shapely.points(gx, gy), predicate="intersects")
    raw = np.zeros(len(cells))
    first = np.full(len(gx), -1)
    for p, c in zip(pi.tolist(), ci.tolist(), strict=True):
        if first[p] < 0:
            first[p] = c
            raw[c] += people[p]
    raw *= rng.lognormal(0.0, 0.2, len(cells))
    for k in specials:
        raw[k] = 0.0
    target = 150_000 + int(rng.integers(-2000, 2001))
    pop = np.round(raw / raw.sum() * target).astype(int)
    for k in range(len(cells)):
        if k not in specials:
            pop[k] = max(int(pop[k]), 12)
    geoid, tract, bgc, geom, population = [], [], [], [], []
    zero_reason: dict[str, str] = {}
    for t, members in enumerate(groups, start=1):
        tract_code = f"{t * 100:06d}"
        for b, k in enumerate(members, start=1):
            gid = f"{COUNTY_FIPS}{tract_code}{b}"
            geoid.append(gid)
            tract.append(tract_code)
            bgc.append(str(b))
            geom.append(cells[k])
            population.append(int(pop[k]))
            if k in specials:
                zero_reason[gid] = specials[k]
    return _BlockGroups(geoid, tract, bgc, geom, population, zero_reason)


# ---------------------------------------------------------------------------------------
# Providers and places
# ---------------------------------------------------------------------------------------


class _Phones:
    def __init__(self) -> None:
        self.next = 100

    def take(self, *, style: str = "dash") -> str:
        if self.next > 199:
            self.next = 150
        n = self.next
        self.next += 1
        return f"(999) 555-{n:04d}" if style == "paren" else f"999-555-{n:04d}"


def _fmt(v: float, nd: int = 7) -> str:
    return f"{v:.{nd}f}"


@dataclass(frozen=True)
class _Site:
    name: str
    addr: _Address
    lon: float
    lat: float
    phone: str
    extra: dict[str, str] = field(default_factory=dict)


def _providers(
    net: _Network, rng: np.random.Generator, crs: _Crs, phones: _Phones
) -> dict[str, list[_Site]]:
    ad = _Addresser(net, rng)

    def site(
        name: str,
        street: str,
        target: tuple[float, float],
        *,
        style: str = "dash",
        side: int | None = None,
        **extra: str,
    ) -> _Site:
        a = ad.at(street, target, side=side)
        lon, lat = crs.lonlat(a.x, a.y)
        return _Site(name, a, float(lon), float(lat), phones.take(style=style), extra)

    otp = [
        site("Millbrook Treatment Center", "East Main Street", (2175.0, 0.0), side=1),
        site("Clínica Esperanza Recovery Services", "Market Street", (3000.0, -150.0)),
        site("Northside Recovery Services", "North High Street", (_HIGH_X, 1650.0)),
    ]
    bup_specs = [
        ("Millbrook Family Medicine", "West Main Street", (1100.0, 0.0)),
        ("High Street Health Associates", "South High Street", (_HIGH_X, -1200.0)),
        ("Church Street Primary Care", "Church Street", (2600.0, 150.0)),
        ("Court Street Internal Medicine", "Court Street", (900.0, 300.0)),
        ("Elm Street Community Health Center", "Elm Street", (-300.0, 900.0)),
        ("Harborview Recovery Clinic", "Depot Street", (3600.0, -450.0)),
        ("Canal Street Counseling and Medicine", "Canal Street", (2400.0, -600.0)),
        ("Millbrook General Hospital Bridge Clinic", "Liberty Street", (3000.0, 750.0)),
        ("Lighthouse Behavioral Health", "Juniper Street", (450.0, -1500.0)),
        ("Eastside Medical Group", "East Main Street", (5200.0, 0.0)),
        ("Meadowbrook Pediatrics and Family Care", "Meadowbrook Drive", (6200.0, 500.0)),
        ("Brookside Health Partners", "South High Street", (_HIGH_X, -5000.0)),
        ("Westbrook Family Practice", "West Main Street", (-3200.0, 0.0)),
        ("Alder Glen Community Health", "Alder Road", (-6060.0, 6500.0)),
        ("Station Road Rural Health Clinic", "Station Road", (7500.0, 2500.0)),
    ]
    bup = [site(n, s, t, style="paren") for n, s, t in bup_specs]
    nal_specs = [
        ("Millbrook General Hospital", "Liberty Street", (3300.0, 750.0)),
        ("Union Street Wellness Center", "Union Street", (1500.0, 450.0)),
        ("New Horizons Counseling", "Commerce Street", (600.0, -300.0)),
        ("Summit Recovery Associates", "Summit Street", (2700.0, 900.0)),
        ("Quail Ridge Medical Offices", "Quail Ridge Drive", (6400.0, -600.0)),
        ("Orchard Hills Health Center", "Orchard Hills Drive", (1300.0, 4300.0)),
        ("Alder Glen Family Medicine", "Meeting House Road", (-5900.0, 6380.0)),
        ("Millbrook County Reentry Program", "Industrial Parkway", (6500.0, -2800.0)),
    ]
    nal = [site(n, s, t, style="paren") for n, s, t in nal_specs]
    ssp = [
        site(
            "Millbrook Harm Reduction Project",
            "Depot Street",
            (2000.0, -450.0),
            show_exact="yes",
            hours="Mon-Fri 10:00-18:00",
        ),
        site(
            "Westbrook Mobile Outreach",
            "West Main Street",
            (-3000.0, 0.0),
            show_exact="no",
            hours="Tue and Thu 13:00-16:00 (mobile van; call for the stop)",
        ),
        site(
            "Eastside Health Station",
            "18th Street",
            (4500.0, -900.0),
            show_exact="yes",
            hours="Mon, Wed, Fri 09:00-15:00",
        ),
    ]
    pharm_names = {
        "town": (
            "Harbor Drug", "Millbrook Family Pharmacy", "Greenleaf Pharmacy",
            "Main Street Apothecary", "Corner Care Pharmacy", "Beacon Pharmacy", "Northview Drug",
            "Riverside Rx", "Keystone Pharmacy", "Cedar Pharmacy",
        ),
        "suburb": ("Summit Pharmacy", "Hearthside Pharmacy", "Lantern Hill Drug",
                   "Crossroads Pharmacy"),
        "village": ("Alder Glen Pharmacy", "Village Drug Store"),
        "west": ("Westbrook Pharmacy", "West Side Drug"),
        "rural": ("Country Care Pharmacy", "Farmstead Drug"),
    }  # fmt: skip
    pharm = []
    for group, names in pharm_names.items():
        for name in names:
            a = ad.anywhere(group)
            lon, lat = crs.lonlat(a.x, a.y)
            naloxone = "Y" if rng.random() < 0.7 else "N"
            pharm.append(
                _Site(name, a, float(lon), float(lat), phones.take(), {"naloxone": naloxone})
            )
    return {"otp": otp, "bup": bup, "nal": nal, "ssp": ssp, "pharm": pharm}


_POI_POOLS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "Retail - Restaurant": (
        ("Harbor", "Corner", "Old Mill", "Lighthouse", "Blue Heron", "Copper Kettle",
         "Golden Wheat", "Red Barn", "Maple Leaf", "Sunrise", "Twin Oaks", "Northstar", "Anchor",
         "Driftwood", "Harvest Moon", "Iron Bridge", "Granite", "Tidewater", "Saltbox",
         "Gull Point"),
        ("Diner", "Cafe", "Pizza", "Grill", "Bakery", "Noodle House", "Taqueria", "Deli"),
    ),
    "Retail - Services": (
        ("Main Street", "Northview", "Millbrook", "Canal", "Eastside", "Westbrook", "Summit",
         "Depot", "Pinecrest", "Bayside"),
        ("Barber Shop", "Laundromat", "Auto Repair", "Tailor", "Hair Salon", "Shoe Repair",
         "Dry Cleaners", "Tax Service"),
    ),
    "Retail - Commercial/Retail": (
        ("Millbrook", "Harbor", "Lantern", "Cobblestone", "Kestrel", "Foghorn", "Brightwater",
         "Oakmoss", "Sandpiper", "Heron"),
        ("Hardware", "Books", "Outfitters", "Florist", "Gifts", "Furniture", "Bike Shop",
         "Thrift Store"),
    ),
    "Retail - Grocery": (
        ("Millbrook", "Fresh Harbor", "Valley", "Alder Glen", "Westbrook"),
        ("Market", "Grocery", "Food Co-op"),
    ),
    "Retail - Gas Station": (
        ("Expressway", "Quick", "Station Road", "Crossroads"), ("Fuel Stop", "Gas and Go"),
    ),
    "Office - Corporate": (
        ("Granite", "Anchor", "Beacon", "Keel", "Lighthouse", "Millbrook"),
        ("Insurance Agency", "Law Office", "Accounting", "Realty", "Engineering"),
    ),
    "Office - Bank": (
        ("Millbrook", "Harbor", "Atlantic", "Alder Glen"), ("Credit Union", "Savings Bank"),
    ),
    "Public Places - House of Worship": (
        ("Grace", "Trinity", "Calvary", "Hope", "Faith", "Bethel", "Zion", "Emmanuel",
         "Mount Olive", "New Life", "Good Shepherd", "Living Water", "Cornerstone", "Harvest",
         "Peace"),
        ("Baptist Church", "Lutheran Church", "Methodist Church", "Community Church",
         "Fellowship", "Presbyterian Church", "Chapel"),
    ),
    "Medical - Dental": (("Bright", "Harbor", "Gentle", "Family"), ("Dental", "Smiles")),
}  # fmt: skip
_POI_COUNTS: Final[dict[str, int]] = {
    "Retail - Restaurant": 40, "Retail - Services": 30, "Retail - Commercial/Retail": 30,
    "Retail - Grocery": 7, "Retail - Gas Station": 6, "Office - Corporate": 18,
    "Office - Bank": 5, "Public Places - House of Worship": 25, "Medical - Dental": 6,
}  # fmt: skip
_SCHOOL_STEMS: Final[tuple[str, ...]] = (
    "Birchwood", "Cedar Hill", "Meadowbrook", "Northview", "Southview", "Westbrook", "Fox Run",
    "Orchard Hills", "Brookside", "Kestrel", "Maple Grove", "Summit", "Stonebridge",
    "Willow Creek", "Harbor Light", "Quail Ridge", "Alder Glen", "Canal Street", "Liberty",
    "Riverbend", "Hawthorn", "Lantern Hill", "Pine Hollow", "Granite Ridge", "Bayberry",
)  # fmt: skip


def _pois(
    net: _Network,
    rng: np.random.Generator,
    crs: _Crs,
    phones: _Phones,
    prov: dict[str, list[_Site]],
) -> tuple[list[list[Any]], dict[str, int]]:
    ad = _Addresser(net, rng)
    rows: list[tuple[_Address, str, str, str, str]] = []

    def add(name: str, ptype: str, a: _Address, phone: str = "", source: str = _FICTIONAL) -> None:
        rows.append((a, name, ptype, source, phone))

    # schools: 14 elementary, 6 middle, 5 high; spread over town, suburbs, west and village
    stems = [str(s) for s in rng.permutation(np.array(_SCHOOL_STEMS))]
    school_groups = ["town"] * 11 + ["suburb"] * 6 + ["west"] * 4 + ["village"] * 2 + ["rural"] * 2
    kinds = ["Elementary"] * 14 + ["Middle"] * 6 + ["High"] * 5
    for stem, grp, kind in zip(
        stems, rng.permutation(np.array(school_groups)).tolist(), kinds, strict=True
    ):
        a = ad.anywhere(str(grp))
        add(f"{stem} {kind} School", f"Education - {kind}", a, phones.take())
    # child care: 30, one of them within 500 ft of the first opioid treatment program
    adjs = ("Little", "Bright", "Happy", "Tiny", "Busy", "Sunny", "Growing", "Gentle", "Blue",
            "Golden", "Kind", "Wonder")  # fmt: skip
    nouns = ("Acorns", "Sprouts", "Stars", "Bees", "Steps", "Hearts", "Minds", "Owls", "Ducks",
             "Lambs", "Sparrows", "Seedlings")  # fmt: skip
    kinds_cc = ("Child Care", "Learning Center", "Early Learning", "Preschool", "Daycare")
    combos = [f"{a} {n} {k}" for a in adjs for n in nouns for k in kinds_cc]
    picks = rng.choice(len(combos), 30, replace=False)
    otp1 = prov["otp"][0].addr
    for k, idx in enumerate(picks.tolist()):
        if k == 0:
            a = ad.at("East Main Street", (otp1.x + 110.0, 0.0), jitter=5.0, side=-1)
        else:
            grp = str(rng.choice(np.array(["town"] * 5 + ["suburb"] * 3 + ["west", "village"])))
            a = ad.anywhere(grp)
        add(
            combos[idx],
            "Education - Daycare",
            a,
            phones.take() if k % 3 == 0 else "",
            source="Fictional licence 99-" + f"{1000 + k:04d}" + (" \r\n" if k == 7 else ""),
        )
    # the provider sites themselves, as clinic/office points (an address-point reference)
    for key, ptype in (
        ("otp", "Medical - Clinic"),
        ("bup", "Medical - Physician"),
        ("nal", "Medical - Clinic"),
        ("pharm", "Retail - Commercial/Retail"),
    ):
        for s in prov[key]:
            if s.name == "Millbrook General Hospital":
                ptype_k = "Medical - Hospital/Medical Center"
            else:
                ptype_k = ptype
            add(s.name, ptype_k, s.addr)
    # everything else
    weights = {"town": 6, "suburb": 2, "west": 1, "village": 1, "rural": 1}
    grps = np.array([g for g, w in weights.items() for _ in range(w)])
    for ptype, n in _POI_COUNTS.items():
        first_words, second_words = _POI_POOLS[ptype]
        combos2 = [f"{a} {b}" for a in first_words for b in second_words]
        for idx in rng.choice(len(combos2), n, replace=False).tolist():
            add(combos2[idx], ptype, ad.anywhere(str(rng.choice(grps))))
    civic = [
        ("Millbrook Public Library", "Public Places - Library", "Court Street", (1500.0, 300.0)),
        (
            "Alder Glen Branch Library",
            "Public Places - Library",
            "Bridge Street",
            (-5950.0, 6620.0),
        ),
        (
            "Millbrook Community Center",
            "Public Places - Community/Recreation Center",
            "Spring Street",
            (2400.0, 600.0),
        ),
        (
            "Millbrook Fire Station 1",
            "Emergency Response - Fire/EMS",
            "Depot Street",
            (1200.0, -450.0),
        ),
        (
            "Westbrook Fire Station 2",
            "Emergency Response - Fire/EMS",
            "West Main Street",
            (-4300.0, 0.0),
        ),
        (
            "Millbrook Police Department",
            "Emergency Response - Police",
            "Court Street",
            (2100.0, 300.0),
        ),
        ("Millbrook County Courthouse", "Government - County", "Court Street", (1900.0, 300.0)),
        ("Millbrook Post Office", "Government - Post Office", "Market Street", (1700.0, -150.0)),
        (
            "Millbrook Warehouse and Logistics",
            "Industrial - Warehouse",
            "Industrial Parkway",
            (6000.0, -2800.0),
        ),
        (
            "Atlantic Fabrication",
            "Industrial - Manufacturing",
            "Industrial Parkway",
            (6700.0, -2800.0),
        ),
    ]
    for name, ptype, street, target in civic:
        add(name, ptype, ad.at(street, target))
    # a few landmarks without a street address (as in the real file)
    landmarks = [
        ("Riverfront Park", "Public Places - Other", -1500.0, 300.0),
        ("Mill Pond Conservation Area", "Public Places - Other", 9000.0, 8700.0),
        ("Millbrook Cemetery", "Public Places - Cemetery", 5300.0, -600.0),
    ]
    out: list[list[Any]] = []
    for k, (a, name, ptype, source, phone) in enumerate(rows):
        lon, lat = crs.lonlat(a.x, a.y)
        out.append(
            [
                f"{float(lon):.15f}",
                f"{float(lat):.15f}",
                5_000_001 + k,
                a.line(style="upper"),
                name,
                ptype,
                source,
                phone,
            ]
        )
    for k, (name, ptype, x, y) in enumerate(landmarks, start=len(out)):
        lon, lat = crs.lonlat(x + rng.uniform(-30, 30), y + rng.uniform(-30, 30))
        out.append(
            [
                f"{float(lon):.15f}",
                f"{float(lat):.15f}",
                5_000_001 + k,
                "",
                name,
                ptype,
                _FICTIONAL,
                "",
            ]
        )
    counts: dict[str, int] = {}
    for r in out:
        counts[r[5]] = counts.get(r[5], 0) + 1
    return out, counts


# ---------------------------------------------------------------------------------------
# Overdose (CDC WONDER style)
# ---------------------------------------------------------------------------------------


def _wonder(rng: np.random.Generator, population: int) -> tuple[str, list[str]]:
    from scipy.special import gammaincinv

    counties = [
        ("Millbrook County, ZZ", 99001, population, float(rng.uniform(22.0, 27.0))),
        (
            "Harlow County, ZZ",
            99003,
            int(rng.integers(55_000, 70_000)),
            float(rng.uniform(15.0, 20.0)),
        ),
        (
            "Kestrel County, ZZ",
            99005,
            int(rng.integers(190_000, 230_000)),
            float(rng.uniform(28.0, 33.0)),
        ),
        ("Pellham County, ZZ", 99007, int(rng.integers(8_500, 11_000)), 7.0),
        ("Thornbury County, ZZ", 99009, int(rng.integers(28_000, 34_000)), 5.5),
    ]

    def rate(v: float) -> str:
        s = f"{v:.1f}"
        return s[:-2] if s.endswith(".0") else s

    rows = []
    suppressed = []
    for name, code, pop, r in counties:
        person_years = round(pop * 10 * float(rng.uniform(0.97, 0.99)))
        deaths = round(r * person_years / 1e5)
        if name.startswith("Pellham"):
            deaths = min(deaths, 7)
        if deaths < 10:
            rows.append(
                [
                    STATE_NAME,
                    STATE_FIPS,
                    name,
                    code,
                    "Suppressed",
                    person_years,
                    "Suppressed",
                    "Suppressed",
                    "Suppressed",
                ]
            )
            suppressed.append(name)
            continue
        crude = deaths / person_years * 1e5
        if deaths < 100:
            lo = float(gammaincinv(deaths, 0.025)) / person_years * 1e5  # exact Poisson
            hi = float(gammaincinv(deaths + 1, 0.975)) / person_years * 1e5
        else:
            lo = crude - 1.96 * crude / math.sqrt(deaths)
            hi = crude + 1.96 * crude / math.sqrt(deaths)
        shown = "Unreliable" if deaths < 20 else rate(crude)
        rows.append(
            [STATE_NAME, STATE_FIPS, name, code, deaths, person_years, shown, rate(lo), rate(hi)]
        )
    header = [
        "State",
        "State Code",
        "County",
        "County Code",
        "Deaths",
        "Population",
        "Crude Rate",
        "Crude Rate Lower 95% Confidence Interval",
        "Crude Rate Upper 95% Confidence Interval",
    ]
    text = _csv_text(header, rows, crlf=True)
    notes = [
        "---",
        "Dataset: Multiple Cause of Death, 2009-2018 - FICTIONAL data generated by Access Atlas "
        "(etl/demo/generate.py) in the layout of a CDC WONDER export; these are not CDC figures "
        "and describe no real place.",
        "Query Parameters:",
        f"States: {STATE_NAME} ({STATE_FIPS})",
        "Counties: Millbrook County (fictional) and its fictional neighbours",
        "UCD - Drug/Alcohol Induced: Drug-induced causes",
        "Year/Month: 2009; 2010; 2011; 2012; 2013; 2014; 2015; 2016; 2017; 2018",
        "Group By: County",
        "Show Totals: False",
        "Show Zero Values: False",
        "Show Suppressed: True",
        "Calculate Rates Per: 100,000",
        "Rate Options: Default intercensal populations for years 2001-2009",
        "---",
        "Help: this is a fictional demonstration file; it has no help page.",
        "---",
        "Messages:",
        "1. Death counts of 1 to 9 are shown as Suppressed, as CDC WONDER does.",
        "2. Rates based on fewer than 20 deaths are marked Unreliable.",
        "3. Population is the sum of the ten yearly populations (person-years).",
        "---",
    ]
    text += "".join(f'"{line}"\r\n' for line in notes)
    return text, suppressed


# ---------------------------------------------------------------------------------------
# Zoning
# ---------------------------------------------------------------------------------------

_ZONES: Final[tuple[tuple[str, str, str, str, str], ...]] = (
    (
        "OS",
        "Open space and floodplain",
        "prohibited",
        "prohibited",
        "Parks and the river floodplain.",
    ),
    (
        "M-1",
        "Light industrial",
        "permitted",
        "conditional",
        "Treatment programs are permitted by right only here, far from homes and transit - a "
        "common real-world barrier.",
    ),
    (
        "C-2",
        "Central business",
        "conditional",
        "permitted",
        "Conditional use permit and a public hearing required for a treatment program.",
    ),
    (
        "C-1",
        "Neighbourhood commercial",
        "prohibited",
        "permitted",
        "Medical offices permitted; treatment programs are not.",
    ),
    (
        "PUD",
        "Planned unit development",
        "prohibited",
        "conditional",
        "Uses as set by each development's plan.",
    ),
    ("R-2", "Multi-family residential", "prohibited", "conditional", ""),
    ("R-1", "Single-family residential", "prohibited", "prohibited", ""),
    ("AG", "Agricultural", "prohibited", "conditional", "Rural clinics by special exception."),
)


def _zoning(net: _Network) -> list[tuple[str, shapely.Geometry]]:
    h = COUNTY_HALF_M
    county = box(-h, -h, h, h)
    x0, y0, x1, y1 = _TOWN
    park_y = np.arange(y0, y1 + 1.0, 50.0)
    park = Polygon(
        [*zip(_river_x(park_y).tolist(), park_y.tolist(), strict=True), (x0, y1), (x0, y0)]
    )
    vx, vy = _VILLAGE
    subs = {
        name: box(cx - w / 2 - 200, cy - hh / 2 - 200, cx + w / 2 + 200, cy + hh / 2 + 200)
        for name, (cx, cy), w, hh, _, _ in _SUBDIVISIONS
    }
    arteries = shapely.union_all(
        [
            net.axes[n]
            for n in (
                "West Main Street",
                "East Main Street",
                "North High Street",
                "South High Street",
            )
        ]
    )
    wanted = {
        "OS": shapely.union_all([park, net.river.buffer(_RIVER_CORRIDOR)]),
        "M-1": shapely.union_all([box(*_INDUSTRIAL), box(8600.0, -9200.0, 9600.0, -8200.0)]),
        "C-2": box(_HIGH_X - 600, _MAIN_Y - 600, _HIGH_X + 600, _MAIN_Y + 600),
        "C-1": shapely.union_all(
            [
                arteries.buffer(80.0).intersection(box(x0 - 250, y0 - 700, x1 + 700, y1 + 700)),
                box(vx - 130, vy - 130, vx + 130, vy + 130),
                box(-3400.0, -150.0, -2700.0, 150.0),
            ]
        ),
        "PUD": shapely.union_all([subs["Meadowbrook"], subs["Fox Run"]]),
        "R-2": box(*_TOWN),
        "R-1": shapely.union_all(
            [
                *(g for n, g in subs.items() if n not in ("Meadowbrook", "Fox Run")),
                box(x0 - 1200, y0 - 1200, x1 + 1200, y1 + 1200).intersection(_river_sides()[1]),
                box(vx - 500, vy - 500, vx + 500, vy + 500),
                box(_HAMLET[0] - 300, _HAMLET[1] - 300, _HAMLET[0] + 300, _HAMLET[1] + 300),
            ]
        ),
    }
    # overlays on a 0.5 m grid, so no sliver thinner than that survives to trip reprojection
    remaining = county
    out: list[tuple[str, shapely.Geometry]] = []
    for code, *_ in _ZONES:
        if code == "AG":
            geom = remaining
        else:
            geom = shapely.intersection(wanted[code], remaining, grid_size=0.5)
            remaining = shapely.difference(remaining, geom, grid_size=0.5)
        for part in shapely.get_parts(geom):
            if part.geom_type == "Polygon" and part.area > 1.0:
                out.append((code, part))
    return out


# ---------------------------------------------------------------------------------------
# README
# ---------------------------------------------------------------------------------------


def _readme(seed: int, facts: dict[str, Any]) -> str:
    return f"""Millbrook County (fictional) - raw inputs of the Access Atlas demo region
========================================================================

EVERYTHING IN THIS FOLDER IS FICTIONAL. {_README_MARK}, generated by etl/demo/generate.py
with seed {seed}. Millbrook County, state "ZZ" (FIPS 99, county 99001), its streets,
river, providers, people, overdose counts and zoning do not exist. The county is placed
in the open North Atlantic (about 40 N, 40 W; UTM zone 24N, EPSG:32624) so that it can
never be mistaken for a real community. Phone numbers use the fictional 555-01xx range.
Regenerate with `access-atlas generate-demo`; the same seed gives byte-identical files.

Files
-----
osm/millbrook.osm
    OpenStreetMap XML 0.6 street network ({facts["osm_nodes"]:,} nodes, {facts["osm_ways"]:,} ways).
    The town of Millbrook on a 150 m grid, with a one-way couplet (2nd Street southbound,
    3rd Street northbound); radial arterials (East/West Main Street, North/South High
    Street, Mill Road, Orchard Pike, Quarry Road); the Millbrook Expressway (a motorway
    of two one-way carriageways with interchanges at South High Street and Station Road,
    and no exit west of the river, where it runs on into the next county as a
    limited-access highway); the Millbrook River, crossed by only three bridges (Mill
    Road, the expressway, and Township Line Road far to the north; Main Street ends at
    both banks); the village of Alder Glen and the hamlet of Stone Church; suburban loops
    and cul-de-sacs; rural roads; footways and paths; service roads.
    Deliberate quirks: the way "{CLIPPED_NAME}" is clipped at the extract's bounding box
    (its last node ref {MISSING_NODE_ID} is not in the file); "{FRAGMENT_NAME}" is a small
    road fragment connected to nothing.
providers/otp_directory_geocoded.csv
    Opioid treatment programs (methadone), SAMHSA-directory style, latin-1 encoded:
    ID, ADDRESS, CITY, STATE, POSTAL, Latitude, Longitude (+ NOTE). All three are in or near
    the town centre east of the river.
providers/moud_providers.gpkg
    Layer "moud" (EPSG:4326), OEPS style: name1, street1, city, state, zip, category, phone
    ... with buprenorphine, naltrexone/vivitrol and one methadone row that repeats the
    first opioid treatment program at the same address (a cross-list duplicate).
providers/syringe_services.csv
    Syringe services programs; one asks not to be shown exactly (show_exact = no).
providers/pharmacies.csv
    Pharmacies with naloxone Y/N. Two deliberately bad rows for the rejects report:
    "{facts["bad_empty"]}" (no address, no coordinates) and "{facts["bad_swapped"]}"
    (latitude and longitude swapped).
census/tl_2099_99001_bg.zip
    TIGER-style block groups (EPSG:4269), {facts["n_bg"]} polygons tiling the county; GEOID
    is 12 digits. Read with zip://.../tl_2099_99001_bg.zip!tl_2099_99001_bg.shp
census/population.csv
    GEOID, population (total {facts["population"]:,}). Two block groups have no residents:
    {facts["zero"]}.
overdose/cdc_wonder_drug_deaths_county.csv
    CDC-WONDER-style export (UTF-8 with BOM, CRLF) for Millbrook County and four fictional
    neighbours; one county's count is "Suppressed"; a trailing "---" notes block.
places/points_of_interest.csv
    Columbus-style points of interest (X, Y in WGS84, LSN street address, POI_NAME,
    POI_TYPE): schools, child care, clinics, houses of worship, shops. House numbers follow
    the position along the street, so the file doubles as an address-point reference.
zoning/zoning.zip, zoning/zoning_rules.csv
    Zoning districts (EPSG:4269, ZONE_CODE) and what each allows for an opioid treatment
    program or a clinic (permitted / conditional / prohibited). Fictional rules: treatment
    programs are permitted by right only in the M-1 industrial districts.

Built-in facts worth knowing
----------------------------
- All three opioid treatment programs are in the town east of the river, so the far
  south-west of the county (around Stone Church) is more than 30 minutes' drive away
  with the default speed table.
- A child care centre lies within 500 ft (152.4 m) of the first opioid treatment program.
- The methadone row of moud_providers.gpkg and the first row of the OTP directory are the
  same program at the same address (spelled "Street" in one, "St" in the other).
"""


# ---------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------


def generate_demo(out_dir: str | Path, *, seed: int = 7) -> dict[str, Path]:
    """Write the raw inputs of the fictional demo region, Millbrook County (fictional).

    Everything is generated from ``seed``: the same seed gives byte-identical files. The
    files are written to a temporary folder beside ``out_dir`` and moved into place at the
    end, so a half-written folder never remains; an existing ``out_dir`` that holds a
    previous demo (or nothing) is replaced.

    Parameters
    ----------
    out_dir
        Folder to write, e.g. ``geodata/raw/demo``.
    seed
        Non-negative integer seed.

    Returns
    -------
    dict[str, Path]
        Path of each file written, by role: ``osm``, ``otp``, ``moud``, ``syringe``,
        ``pharmacies``, ``blockgroups``, ``population``, ``overdose``, ``poi``,
        ``zoning``, ``zoning_rules``, ``transit`` (the GTFS feed's ``stops.txt``), ``readme``.

    Raises
    ------
    ConfigError
        If ``seed`` is not a non-negative integer.
    InputError
        If ``out_dir`` exists and holds something other than a previous demo.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        msg = f"demo seed must be a non-negative integer, got {seed!r}; set generate.seed"
        raise ConfigError(msg)
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not _replaceable(out):
        msg = (
            f"{out}: exists and is not a generated demo folder (no README.txt saying "
            f"'{_README_MARK}'); refusing to replace it. Choose another folder or remove it."
        )
        raise InputError(msg)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _generate_into(tmp, int(seed))
        os.chmod(tmp, 0o755)
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex}"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "generate_demo wrote %d files to %s in %.2f s (seed %d)",
        len(FILES),
        out,
        time.perf_counter() - t0,
        seed,
    )
    return {role: out / rel for role, rel in FILES.items()}


def _replaceable(path: Path) -> bool:
    if not path.is_dir():
        return False
    if not any(path.iterdir()):
        return True
    readme = path / FILES["readme"]
    try:
        return _README_MARK in readme.read_text(encoding="utf-8")
    except OSError:
        return False


def _generate_into(root: Path, seed: int) -> None:
    import pyogrio

    crs = _Crs()
    p = {role: root / rel for role, rel in FILES.items()}

    # streets
    t = time.perf_counter()
    net = _LayoutBuilder(np.random.default_rng([seed, 1])).build()
    roads = _cut_river(net.roads, net.river)
    _planarize(roads)
    data = _to_nodes(roads, net.river)
    _signals(data)
    xml, stats = _osm_xml(data, crs, seed)
    _write_text(p["osm"], xml)
    logger.info(
        "demo streets: %s nodes (%s on roads), %s ways in %.2f s",
        f"{stats['nodes']:,}",
        f"{stats['road_nodes']:,}",
        f"{stats['ways']:,}",
        time.perf_counter() - t,
    )

    # buses: a small GTFS feed along the arterials
    feed = transit_feed(
        net.axes, net.roads, (_HIGH_X, _MAIN_Y), np.random.default_rng([seed, 9]), crs.lonlat, _abbr
    )
    for name, (header, rows) in feed.items():
        _write_text(p["transit"].parent / name, _csv_text(header, rows))
    logger.info("demo transit: %d routes, %d stops", len(ROUTES), len(feed["stops.txt"][1]))

    # providers
    phones = _Phones()
    prov = _providers(net, np.random.default_rng([seed, 2]), crs, phones)
    otp_rows = [
        [
            s.name,
            s.addr.line(style="full"),
            s.addr.city,
            STATE_ABBR,
            s.addr.zip,
            _fmt(s.lat),
            _fmt(s.lon),
            "Fictional program (Access Atlas demo)",
        ]
        for s in prov["otp"]
    ]
    _write_text(
        p["otp"],
        _csv_text(
            ["ID", "ADDRESS", "CITY", "STATE", "POSTAL", "Latitude", "Longitude", "NOTE"], otp_rows
        ),
        encoding="latin-1",
    )
    _write_moud(p["moud"], prov, pyogrio)
    ssp_rows = [
        [
            s.name,
            s.addr.line(),
            s.addr.city,
            s.addr.zip,
            s.phone,
            _fmt(s.lat, 6),
            _fmt(s.lon, 6),
            s.extra["show_exact"],
            s.extra["hours"],
            "fictional",
        ]
        for s in prov["ssp"]
    ]
    _write_text(
        p["syringe"],
        _csv_text(
            [
                "name",
                "address",
                "city",
                "zip",
                "phone",
                "latitude",
                "longitude",
                "show_exact",
                "hours",
                "note",
            ],
            ssp_rows,
        ),
    )
    pharm_rows = [
        [
            s.name,
            s.addr.line(),
            s.addr.city,
            s.addr.zip,
            s.phone,
            _fmt(s.lat, 6),
            _fmt(s.lon, 6),
            s.extra["naloxone"],
            "fictional",
        ]
        for s in prov["pharm"]
    ]
    swapped = prov["pharm"][3]
    bad_empty, bad_swapped = "Quickstop Pharmacy", "Lantern Pharmacy"
    pharm_rows.append(
        [
            bad_empty,
            "",
            "Millbrook",
            "99012",
            phones.take(),
            "",
            "",
            "N",
            "fictional; deliberately bad row: no address and no coordinates",
        ]
    )
    pharm_rows.append(
        [
            bad_swapped,
            f"{swapped.addr.number + 14} {_abbr(swapped.addr.street)}",
            swapped.addr.city,
            swapped.addr.zip,
            phones.take(),
            _fmt(swapped.lon + 0.0002, 6),
            _fmt(swapped.lat, 6),
            "Y",
            "fictional; deliberately bad row: latitude and longitude swapped",
        ]
    )
    _write_text(
        p["pharmacies"],
        _csv_text(
            [
                "name",
                "address",
                "city",
                "zip",
                "phone",
                "latitude",
                "longitude",
                "naloxone",
                "note",
            ],
            pharm_rows,
        ),
    )
    logger.info(
        "demo providers: %d OTP, %d buprenorphine, %d naltrexone, %d syringe services, "
        "%d pharmacies (+2 bad rows)",
        len(prov["otp"]),
        len(prov["bup"]),
        len(prov["nal"]),
        len(prov["ssp"]),
        len(prov["pharm"]),
    )

    # block groups and population
    t = time.perf_counter()
    bgs = _block_groups(np.random.default_rng([seed, 3]))
    _write_block_groups(p["blockgroups"], bgs, crs)
    names = [
        f"Block Group {b}, Census Tract {int(tr) / 100:g}, {COUNTY_TITLE}, {STATE_ABBR}"
        for tr, b in zip(bgs.tract, bgs.bg, strict=True)
    ]
    _write_text(
        p["population"],
        _csv_text(
            ["GEOID", "population", "NAME"],
            [[g, n, name] for g, n, name in zip(bgs.geoid, bgs.population, names, strict=True)],
        ),
    )
    total = sum(bgs.population)
    logger.info(
        "demo census: %d block groups, population %s in %.2f s",
        len(bgs.geoid),
        f"{total:,}",
        time.perf_counter() - t,
    )

    # overdose
    wonder, suppressed = _wonder(np.random.default_rng([seed, 4]), total)
    _write_text(p["overdose"], wonder, encoding="utf-8-sig")
    logger.info("demo overdose: 5 counties, suppressed: %s", ", ".join(suppressed))

    # points of interest
    poi_rows, poi_counts = _pois(net, np.random.default_rng([seed, 5]), crs, phones, prov)
    header = ["X", "Y", "OBJECTID", "LSN", "POI_NAME", "POI_TYPE", "POI_SOURCE", "PHONE_NUM"]
    _write_text(p["poi"], _csv_text(header, poi_rows), encoding="utf-8-sig")
    n_school = sum(
        v
        for k, v in poi_counts.items()
        if k in ("Education - Elementary", "Education - Middle", "Education - High")
    )
    logger.info(
        "demo places: %d points of interest (%d schools, %d child care)",
        len(poi_rows),
        n_school,
        poi_counts.get("Education - Daycare", 0),
    )

    # zoning
    zones = _zoning(net)
    _write_zoning(p["zoning"], zones, crs)
    rules = [
        [c, d, tp, cl, (n + " " if n else "") + "Fictional rule (Access Atlas demo)."]
        for c, d, tp, cl, n in _ZONES
    ]
    _write_text(
        p["zoning_rules"],
        _csv_text(["zone_code", "description", "treatment_program", "clinic", "note"], rules),
    )
    logger.info("demo zoning: %d district polygons, %d zone codes", len(zones), len(_ZONES))

    # correctional facilities, shaped like The New York Times' prisons-and-jails table
    fac_rows = []
    for k, (name, kind, fx, fy) in enumerate(_FACILITIES):
        if fx is None or fy is None:
            lon_s = lat_s = ""
        else:
            lon, lat = crs.lonlat(fx, fy)
            lon_s, lat_s = _fmt(float(lon)), _fmt(float(lat))
        fac_rows.append(
            [f"MB{k + 1:03d}", name, kind, "Millbrook", "Millbrook",
             "99001", lon_s, lat_s, "fictional"]
        )  # fmt: skip
    _write_text(
        p["facilities"],
        _csv_text(
            ["nyt_id", "facility_name", "facility_type", "facility_city", "facility_county",
             "facility_county_fips", "facility_lng", "facility_lat", "note"],
            fac_rows,
        ),
    )

    zero = ", ".join(f"{g} ({why})" for g, why in sorted(bgs.zero_reason.items()))
    facts = {
        "osm_nodes": stats["nodes"],
        "osm_ways": stats["ways"],
        "n_bg": len(bgs.geoid),
        "population": total,
        "zero": zero,
        "bad_empty": bad_empty,
        "bad_swapped": bad_swapped,
    }
    _write_text(p["readme"], _readme(seed, facts))


def _write_moud(path: Path, prov: dict[str, list[_Site]], pyogrio: Any) -> None:
    import geopandas as gpd

    rows = []
    for key, cat in (("bup", "buprenorphine"), ("nal", "naltrexone/vivitrol")):
        for k, s in enumerate(prov[key]):
            rows.append(
                {
                    "name1": s.name,
                    "name2": None,
                    "street1": s.addr.line(),
                    "street2": "Suite 200" if k % 5 == 2 else None,
                    "city": s.addr.city,
                    "state": STATE_ABBR,
                    "zip": s.addr.zip,
                    "category": cat,
                    "phone": s.phone,
                    "lon": s.lon,
                    "lat": s.lat,
                }
            )
    dup = prov["otp"][0]
    rows.insert(
        4,
        {
            "name1": dup.name.upper() + " LLC",
            "name2": None,
            "street1": dup.addr.line(),
            "street2": None,
            "city": dup.addr.city,
            "state": STATE_ABBR,
            "zip": dup.addr.zip,
            "category": "methadone",
            "phone": dup.phone,
            "lon": dup.lon + 0.00004,
            "lat": dup.lat - 0.00002,
        },
    )
    lon = np.array([r.pop("lon") for r in rows])
    lat = np.array([r.pop("lat") for r in rows])
    gdf = gpd.GeoDataFrame(
        rows, geometry=gpd.points_from_xy(np.round(lon, 7), np.round(lat, 7)), crs="EPSG:4326"
    )
    gdf["countyGEOID"] = COUNTY_FIPS
    gdf["source"] = _FICTIONAL
    gdf["Longitude"] = np.round(lon, 7)
    gdf["Latitude"] = np.round(lat, 7)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _GPKG_DATE})
    try:
        pyogrio.write_dataframe(
            gdf,
            path,
            layer="moud",
            driver="GPKG",
            layer_options={
                "IDENTIFIER": "moud",
                "DESCRIPTION": (
                    f"{COUNTY_TITLE}: FICTIONAL MOUD providers in the layout of the OEPS list "
                    "(Access Atlas demo). Nothing here describes real providers."
                ),
            },
        )
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})


def _write_block_groups(path: Path, bgs: _BlockGroups, crs: _Crs) -> None:
    import geopandas as gpd

    geoms = [_valid(crs.geom(g, nad83=True)) for g in bgs.geom]
    river = LineString(_river_coords(-COUNTY_HALF_M - 100, COUNTY_HALF_M + 100))
    water_poly = river.buffer(_RIVER_HALF_WIDTH, cap_style="flat")
    awater = [round(g.intersection(water_poly).area) for g in bgs.geom]
    aland = [round(g.area) - w for g, w in zip(bgs.geom, awater, strict=True)]
    reps = [g.representative_point() for g in geoms]
    gdf = gpd.GeoDataFrame(
        {
            "STATEFP": STATE_FIPS,
            "COUNTYFP": COUNTY_FIPS[2:],
            "TRACTCE": bgs.tract,
            "BLKGRPCE": bgs.bg,
            "GEOID": bgs.geoid,
            "NAMELSAD": [f"Block Group {b}" for b in bgs.bg],
            "MTFCC": "G5030",
            "FUNCSTAT": "S",
            "ALAND": np.array(aland, dtype=np.int64),
            "AWATER": np.array(awater, dtype=np.int64),
            "INTPTLAT": [f"{p.y:+011.7f}" for p in reps],
            "INTPTLON": [f"{p.x:+012.7f}" for p in reps],
        },
        geometry=geoms,
        crs="EPSG:4269",
    )
    xml = _shp_xml(
        f"{COUNTY_TITLE}, {STATE_ABBR}: block groups (TIGER-style, generated)",
        "FICTIONAL block groups of the Access Atlas demo region. They tile the county "
        "exactly; GEOID = state (99) + county (001) + tract (6) + block group (1).",
    )
    _write_shapefile_zip(gdf, "tl_2099_99001_bg", path, xml)


def _write_zoning(path: Path, zones: list[tuple[str, shapely.Geometry]], crs: _Crs) -> None:
    import geopandas as gpd

    names = {c: d for c, d, *_ in _ZONES}
    gdf = gpd.GeoDataFrame(
        {
            "ZONE_CODE": [c for c, _ in zones],
            "ZONE_NAME": [names[c] for c, _ in zones],
            "NOTE": "Fictional zoning (Access Atlas demo)",
        },
        geometry=[_valid(crs.geom(g, nad83=True)) for _, g in zones],
        crs="EPSG:4269",
    )
    xml = _shp_xml(
        f"{COUNTY_TITLE}: zoning districts (generated)",
        "FICTIONAL zoning districts of the Access Atlas demo region; the rules for "
        "each ZONE_CODE are in zoning_rules.csv.",
    )
    _write_shapefile_zip(gdf, "zoning", path, xml)
