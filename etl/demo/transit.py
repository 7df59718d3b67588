"""The fictional region's bus network: a small GTFS feed written by the demo generator.

Four routes of the fictional *Millbrook Area Transit* run along the county's arterials,
with a stop at a cross street every few hundred metres in town and farther apart outside
it, and a transit center (a GTFS station with two platforms and an entrance) where Main
and High Streets meet. The feed has ``stop_times.txt``, so the stops layer takes each stop's
routes from the timetable (the Franklin County sample lacks it and uses the route shapes).
Nothing here describes a real transit agency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry import LineString, Point

#: route id, name, the streets it runs along (in order), colour (Okabe-Ito).
ROUTES: Final[tuple[tuple[str, str, tuple[str, ...], str], ...]] = (
    ("1", "Main Street", ("West Main Street", "East Main Street"), "0072B2"),
    ("2", "High Street", ("South High Street", "North High Street"), "D55E00"),
    ("3", "Mill Road", ("Mill Road",), "009E73"),
    ("4", "Orchard Pike", ("Orchard Pike",), "CC79A7"),
)
AGENCY: Final[str] = "Millbrook Area Transit (fictional)"
#: How far routes reach from the transit center, and the stop spacing in and out of town.
REACH_M: Final[float] = 9000.0
TOWN_RADIUS_M: Final[float] = 2500.0
GAP_TOWN_M: Final[float] = 350.0
GAP_OUT_M: Final[float] = 900.0
#: Stops stand this far to the right of the street's centre line.
CURB_M: Final[float] = 9.0
#: Average bus speed for the fictional timetable.
BUS_KPH: Final[float] = 22.0


def _route_line(axes: dict[str, LineString], streets: tuple[str, ...], centre: Point) -> LineString:
    """The streets of a route joined into one line, cut to :data:`REACH_M` of the centre."""
    merged = shapely.line_merge(shapely.MultiLineString([axes[s] for s in streets]))
    reach = merged.intersection(centre.buffer(REACH_M))
    parts = [p for p in shapely.get_parts(reach) if p.geom_type == "LineString"]
    return max(parts, key=lambda p: p.length)


def _crossings(line: LineString, roads: list[Any], own: tuple[str, ...]) -> list[tuple[float, str]]:
    """(distance along ``line``, cross-street name) of every named road crossing it."""
    out: dict[str, list[float]] = {}
    for road in roads:
        name = road.tags.get("name")
        if not name or name in own or road.tags.get("highway") in ("motorway", "motorway_link"):
            continue
        hit = line.intersection(LineString(road.coords))
        for pt in shapely.get_parts(hit):
            if pt.geom_type == "Point":
                out.setdefault(name, []).append(line.project(pt))
    return sorted((d, name) for name, ds in out.items() for d in ds)


def _offset(line: LineString, along: float, side: float = 1.0) -> tuple[float, float]:
    """A point ``CURB_M`` to the right of ``line`` at ``along``."""
    a = line.interpolate(max(along - 5.0, 0.0))
    b = line.interpolate(min(along + 5.0, line.length))
    dx, dy = b.x - a.x, b.y - a.y
    norm = float(np.hypot(dx, dy)) or 1.0
    p = line.interpolate(along)
    return p.x + side * CURB_M * dy / norm, p.y - side * CURB_M * dx / norm


def transit_feed(
    axes: dict[str, LineString],
    roads: list[Any],
    centre: tuple[float, float],
    rng: np.random.Generator,
    lonlat: Callable[..., tuple[np.ndarray, np.ndarray]],
    abbr: Callable[[str], str],
) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """The GTFS tables of the fictional bus network.

    Parameters
    ----------
    axes
        Street centre lines by name, in the generator's local metres.
    roads
        The generator's ways (``coords``, ``tags``), for cross-street names.
    centre
        Where Main and High Streets meet (local metres): the transit center.
    rng
        Random generator (wheelchair information).
    lonlat
        Local metres to WGS84 longitude and latitude.
    abbr
        Postal abbreviation of a street name ("East Main Street" -> "E Main St").

    Returns
    -------
    dict
        File name -> (header, rows) for ``agency.txt``, ``feed_info.txt``, ``calendar.txt``,
        ``routes.txt``, ``stops.txt``, ``trips.txt``, ``stop_times.txt`` and ``shapes.txt``.
    """
    hub = Point(centre)
    lon0, lat0 = lonlat([centre[0] - 25, centre[0] + 25, centre[0]], [centre[1] + 25] * 3)
    stops: list[list[Any]] = [
        [
            "MTC",
            "",
            "Millbrook Transit Center",
            "Main St & High St",
            f"{lat0[2]:.6f}",
            f"{lon0[2]:.6f}",
            "1",
            "",
            "1",
        ],
        [
            "MTC-A",
            "100",
            "Millbrook Transit Center Platform A",
            "",
            f"{lat0[0]:.6f}",
            f"{lon0[0]:.6f}",
            "0",
            "MTC",
            "0",
        ],
        [
            "MTC-B",
            "101",
            "Millbrook Transit Center Platform B",
            "",
            f"{lat0[1]:.6f}",
            f"{lon0[1]:.6f}",
            "0",
            "MTC",
            "0",
        ],
        [
            "MTC-E",
            "",
            "Millbrook Transit Center entrance",
            "",
            f"{lat0[2] + 0.0002:.6f}",
            f"{lon0[2]:.6f}",
            "2",
            "MTC",
            "1",
        ],
    ]
    routes, trips, times, shapes = [], [], [], []
    code = 1000
    for route_id, name, streets, colour in ROUTES:
        line = _route_line(axes, streets, hub)
        routes.append([route_id, "MAT", route_id, name, "3", colour, "FFFFFF"])
        served: list[tuple[str, float]] = []
        if line.distance(hub) < 60.0:
            served.append(("MTC-A" if route_id == "1" else "MTC-B", line.project(hub)))
        last = -1e9
        for along, cross in _crossings(line, roads, streets):
            p = line.interpolate(along)
            gap = GAP_TOWN_M if p.distance(hub) < TOWN_RADIUS_M else GAP_OUT_M
            if along - last < gap or p.distance(hub) < 150.0:
                continue
            last = along
            x, y = _offset(line, along)
            lon, lat = lonlat([x], [y])
            stop_id = f"MAT{code}"
            wheel = str(int(rng.choice([0, 1, 1, 1, 2])))
            street = abbr(_street_at(along, line, axes, streets)).upper()
            stops.append(
                [
                    stop_id,
                    str(code),
                    f"{street} & {abbr(cross).upper()}",
                    "",
                    f"{lat[0]:.6f}",
                    f"{lon[0]:.6f}",
                    "",
                    "",
                    wheel,
                ]
            )
            served.append((stop_id, along))
            code += 1
        served.sort(key=lambda s: s[1])
        xy = np.asarray(line.coords)
        lon, lat = lonlat(xy[:, 0], xy[:, 1])
        for direction, order in ((0, served), (1, served[::-1])):
            shape_id = f"{route_id}-{direction}"
            pts = list(zip(lat, lon, strict=True))
            if direction:
                pts = pts[::-1]
            shapes += [[shape_id, f"{a:.6f}", f"{o:.6f}", str(k)] for k, (a, o) in enumerate(pts)]
            trip_id = f"{route_id}-{direction}-0700"
            trips.append(
                [
                    route_id,
                    "WEEKDAY",
                    trip_id,
                    f"{name} {('outbound', 'inbound')[direction]}",
                    str(direction),
                    shape_id,
                ]
            )
            start = order[0][1]
            for seq, (stop_id, along) in enumerate(order, start=1):
                secs = 7 * 3600 + round(abs(along - start) / (BUS_KPH / 3.6))
                clock = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
                times.append([trip_id, clock, clock, stop_id, str(seq)])
    return {
        "agency.txt": (
            ["agency_id", "agency_name", "agency_url", "agency_timezone"],
            [["MAT", AGENCY, "https://example.invalid/millbrook-transit", "Atlantic/Azores"]],
        ),
        "feed_info.txt": (
            [
                "feed_publisher_name",
                "feed_publisher_url",
                "feed_lang",
                "feed_start_date",
                "feed_end_date",
                "feed_version",
            ],
            [
                [
                    AGENCY,
                    "https://example.invalid/millbrook-transit",
                    "en",
                    "20200101",
                    "20201231",
                    "fictional-1",
                ]
            ],
        ),
        "calendar.txt": (
            [
                "service_id",
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
                "start_date",
                "end_date",
            ],
            [["WEEKDAY", "1", "1", "1", "1", "1", "0", "0", "20200101", "20201231"]],
        ),
        "routes.txt": (
            [
                "route_id",
                "agency_id",
                "route_short_name",
                "route_long_name",
                "route_type",
                "route_color",
                "route_text_color",
            ],
            routes,
        ),
        "stops.txt": (
            [
                "stop_id",
                "stop_code",
                "stop_name",
                "stop_desc",
                "stop_lat",
                "stop_lon",
                "location_type",
                "parent_station",
                "wheelchair_boarding",
            ],
            stops,
        ),
        "trips.txt": (
            ["route_id", "service_id", "trip_id", "trip_headsign", "direction_id", "shape_id"],
            trips,
        ),
        "stop_times.txt": (
            ["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"],
            times,
        ),
        "shapes.txt": (["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"], shapes),
    }


def _street_at(
    along: float, line: LineString, axes: dict[str, LineString], streets: tuple[str, ...]
) -> str:
    """Which of the route's streets the point ``along`` the line lies on."""
    p = line.interpolate(along)
    return min(streets, key=lambda s: axes[s].distance(p))
