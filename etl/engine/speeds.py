"""The explicit speed table used to turn street lengths into travel times.

Driving speeds are set per OSM ``highway`` class, in km/h, as free-flow speeds for a US
county. They replace OSMnx's default fallback (the mean of the tagged ``maxspeed`` values of
each class), which on sparsely tagged extracts gives residential streets motorway speeds.
Where a way carries a parseable ``maxspeed`` tag and the region config allows it
(``network.use_maxspeed``), the tag wins; otherwise the class speed applies.

==================  =====  ==============================================================
highway class       km/h   rationale
==================  =====  ==============================================================
motorway            100    limited-access freeway, 60-65 mph posted
motorway_link        50    ramps
trunk                80    divided expressway
trunk_link           40
primary              55    urban arterial, 35 mph
primary_link         35
secondary            50    30-35 mph
secondary_link       30
tertiary             45    collector, 25-30 mph
tertiary_link        30
unclassified         40    minor road, 25 mph
residential          40    25 mph
living_street        15
service              15    driveways, parking aisles
road                 30    class unknown
==================  =====  ==============================================================

Walking is 4.8 km/h (3 mph) on every street a person may walk on, whatever its class.
Travel times from a speed table are optimistic (no signals, no congestion): multiply them
with ``network.congestion_factor`` (OEPS publishes a "2x time" variant) and the factor used is
written to the manifest.
"""

from __future__ import annotations

import math
import re
from typing import Final

DRIVE_SPEEDS_KPH: Final[dict[str, float]] = {
    "motorway": 100.0,
    "motorway_link": 50.0,
    "trunk": 80.0,
    "trunk_link": 40.0,
    "primary": 55.0,
    "primary_link": 35.0,
    "secondary": 50.0,
    "secondary_link": 30.0,
    "tertiary": 45.0,
    "tertiary_link": 30.0,
    "unclassified": 40.0,
    "residential": 40.0,
    "living_street": 15.0,
    "service": 15.0,
    "road": 30.0,
}

WALK_SPEED_KPH: Final[float] = 4.8

_MAXSPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$", re.IGNORECASE)

#: Implicit limits (``maxspeed=<country>:<zone>``), km/h: the country-specific values OSRM's car
#: profile knows for the zones met most, then a default per zone (OSRM's ``maxspeed_table``).
MAXSPEED_ZONES_KPH: Final[dict[str, float]] = {
    "ru:urban": 60.0,
    "ru:rural": 90.0,
    "ru:motorway": 110.0,
    "ru:living_street": 20.0,
    "de:rural": 100.0,
    "de:living_street": 7.0,
    "fr:rural": 80.0,
    "gb:nsl_single": 60 * 1.609344,
    "gb:nsl_dual": 70 * 1.609344,
    "gb:motorway": 70 * 1.609344,
    "uk:nsl_single": 60 * 1.609344,
    "uk:nsl_dual": 70 * 1.609344,
    "uk:motorway": 70 * 1.609344,
}
MAXSPEED_ZONE_DEFAULTS_KPH: Final[dict[str, float]] = {
    "urban": 50.0,
    "rural": 90.0,
    "trunk": 110.0,
    "motorway": 130.0,
}
_ZONE = re.compile(r"^\s*([a-z]{2}(?:-[a-z]+)?):([a-z_]+)\s*$")


def parse_maxspeed(value: object) -> float:
    """Parse an OSM ``maxspeed`` tag into km/h.

    Parameters
    ----------
    value
        The raw tag, e.g. ``"35 mph"``, ``"50"`` (km/h by OSM convention), an implicit
        zone limit ``"RU:urban"`` (:data:`MAXSPEED_ZONES_KPH`, else the zone's default in
        :data:`MAXSPEED_ZONE_DEFAULTS_KPH`) or a list-like ``"25 mph;35 mph"`` (the lowest
        value is taken).

    Returns
    -------
    float
        The speed in km/h, or NaN where the tag is absent or names no speed (``"signals"``,
        ``"walk"``, an unknown zone, and ``"none"``: no posted limit, so the class speed
        applies rather than OSRM's 140 km/h).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    speeds = []
    for part in str(value).split(";"):
        match = _MAXSPEED.match(part)
        if match is None:
            zone = _ZONE.match(part.lower())
            if zone is not None:
                kph = MAXSPEED_ZONES_KPH.get(
                    zone.group(0).strip(), MAXSPEED_ZONE_DEFAULTS_KPH.get(zone.group(2), 0.0)
                )
                if kph > 0:
                    speeds.append(kph)
            continue
        speed = float(match.group(1))
        if (match.group(2) or "").lower() == "mph":
            speed *= 1.609344
        if speed > 0:
            speeds.append(speed)
    return min(speeds) if speeds else math.nan
