"""A real-shaped region built in code, unlike Franklin and unlike the demo: "Two Rivers".

Everything a new user's county brings that ours did not, written as that user's files:

* a **state line** through the region (lon -84.82: Indiana to the west, Ohio to the east) and
  **four counties** (two in each state) that the area ids cannot name;
* a street extract **clipped to corridors**: an east-west arterial that stops short of the
  east edge, two north-south roads with side streets; the east column of areas has people
  and no street within 1 km (the old engine walked them 1-2 km to the network and counted
  them in a desert it could not draw);
* census-block-like **areas without an id column**, their population in the area file itself
  (column ``people``), unit "block";
* a **national provider list** (SAMHSA-locator-shaped: ``name1``, ``street1``, ``state``,
  ``latitude``, ``longitude``, ``type``) with sites in both states, one beyond the region in
  its buffer, one 2 km from any street, and a row from Texas;
* **no naltrexone, pharmacy or syringe services site** anywhere;
* overdose tables shaped like the user's: a FIPS-keyed table with counts (and a county from
  Wyoming that must never show) and an OEPS-style table of modelled rates without counts.

All names are fictional; the county FIPS codes are real ones on that state line (Dearborn
and Ohio counties, Indiana; Hamilton and Butler, Ohio) so that the GEOID rules are tested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import yaml

#: The region's extent (WGS84 degrees).
WEST, EAST, SOUTH, NORTH = -84.87, -84.77, 39.10, 39.16
#: The state line: Indiana west of it, Ohio east.
STATE_LINE = -84.82
#: The latitude splitting each state's two counties.
COUNTY_SPLIT = 39.13
#: The four counties: (FIPS, name, state); NW, SW, NE, SE.
COUNTIES: tuple[tuple[str, str, str], ...] = (
    ("18029", "Dearborn County", "IN"),
    ("18115", "Ohio County", "IN"),
    ("39017", "Butler County", "OH"),
    ("39061", "Hamilton County", "OH"),
)
#: A county of another state that the overdose table also holds (must never be shown).
ELSEWHERE = ("56043", "Washakie County", "WY")
#: Areas: a 6 x 5 grid of blocks.
NX, NY = 6, 5
#: East edge of the streets: the east column of areas has none within 1 km.
STREETS_EAST = -84.805
#: The people of the east column (beyond the network).
EAST_PEOPLE = 300


def county_of(lon: float, lat: float) -> str:
    """FIPS of the county a point is in."""
    west = lon < STATE_LINE
    north = lat >= COUNTY_SPLIT
    return {
        (True, True): "18029",
        (True, False): "18115",
        (False, True): "39017",
        (False, False): "39061",
    }[(west, north)]


def write_osm(path: Path) -> dict[str, Any]:
    """The corridor-clipped street extract; returns facts about it for the tests."""
    nodes: dict[tuple[float, float], int] = {}
    ways: list[tuple[list[int], dict[str, str]]] = []

    def nid(lon: float, lat: float) -> int:
        key = (round(lon, 6), round(lat, 6))
        if key not in nodes:
            nodes[key] = len(nodes) + 1
        return nodes[key]

    def line(points: list[tuple[float, float]], tags: dict[str, str]) -> None:
        ways.append(([nid(x, y) for x, y in points], tags))

    step = 0.002  # ~170 m east-west, ~220 m north-south
    # The arterial: west edge to STREETS_EAST along the county split.
    xs = np.arange(WEST - 0.01, STREETS_EAST + 1e-9, step)
    line([(x, COUNTY_SPLIT) for x in xs], {"highway": "primary", "name": "River Road"})
    # Two north-south roads with residential side streets 400 m either side.
    for x0, name in ((-84.855, "Dearborn Pike"), (-84.815, "State Line Road")):
        ys = np.arange(SOUTH - 0.01, NORTH + 0.01 + 1e-9, step)
        line([(x0, y) for y in ys], {"highway": "secondary", "name": name})
        for k, y in enumerate(ys[::2]):
            side = np.arange(x0 - 0.004, x0 + 0.004 + 1e-9, step / 2)
            line([(x, y) for x in side], {"highway": "residential", "name": f"{name} Lane {k}"})
        for dx in (-0.004, 0.004):  # back streets joining the lanes
            line([(x0 + dx, y) for y in ys[::2]], {"highway": "residential", "name": "Back St"})
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for (lon, lat), i in nodes.items():
        out.append(f'  <node id="{i}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for w, (refs, tags) in enumerate(ways, start=1000):
        nd = "".join(f'<nd ref="{r}"/>' for r in refs)
        tg = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        out.append(f'  <way id="{w}" version="1">{nd}{tg}</way>')
    out.append("</osm>")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    lons = np.array([k[0] for k in nodes])
    return {"nodes": len(nodes), "east_edge": float(lons.max())}


def areas_frame() -> gpd.GeoDataFrame:
    """Blocks without ids; population in the ``people`` column; the east column far off."""
    dx, dy = (EAST - WEST) / NX, (NORTH - SOUTH) / NY
    rows = []
    for j in range(NY):
        for i in range(NX):
            x0, y0 = WEST + i * dx, SOUTH + j * dy
            box = shapely.box(x0, y0, x0 + dx, y0 + dy)
            east = i == NX - 1
            people = EAST_PEOPLE // NY if east else 400 + 37 * ((i * 7 + j * 3) % 11)
            rows.append({"block_name": f"Block {j}-{i}", "people": people, "geometry": box})
    return gpd.GeoDataFrame(rows, crs="EPSG:4269")


def providers_frame() -> pd.DataFrame:
    """A national-list-shaped provider table: both states, the buffer, off-network, Texas."""
    rows = [
        # name, street, city, state, zip, lat, lon, type
        ("Riverside Treatment Center", "10 State Line Road", "Harrison", "OH", "45030",
         39.131, -84.8155, "methadone"),
        ("Dearborn Recovery Services", "2 Dearborn Pike", "Lawrenceburg", "IN", "47025",
         39.121, -84.8552, "methadone"),
        ("West Bank Clinic", "5 River Road", "Aurora", "IN", "47001",
         39.130, -84.878, "methadone"),  # west of the region, inside its buffer
        ("Hilltop Program", "900 Ridge Top Road", "Harrison", "OH", "45030",
         39.155, -84.775, "methadone"),  # about 2 km from any street of the extract
        ("Harrison Family Medicine", "14 State Line Road", "Harrison", "OH", "45030",
         39.145, -84.8148, "buprenorphine"),
        ("Harrison Family Medicine", "14 State Line Road", "Harrison", "OH", "45030",
         39.145, -84.8148, "buprenorphine"),  # a second practitioner at the same address
        ("Lawrenceburg Health", "3 Dearborn Pike Lane 2", "Lawrenceburg", "IN", "47025",
         39.109, -84.8580, "buprenorphine"),
        ("Austin Clinic", "1 Congress Ave", "Austin", "TX", "78701",
         30.27, -97.74, "methadone"),  # another state, far outside the buffer
    ]  # fmt: skip
    cols = ["name1", "street1", "city", "state", "zip", "latitude", "longitude", "type"]
    return pd.DataFrame(rows, columns=cols)


def overdose_tables(raw: Path) -> tuple[Path, Path]:
    """A FIPS-keyed table with counts (and Wyoming), and OEPS-style modelled rates only."""
    counts = pd.DataFrame(
        [
            ("18029", "Dearborn County, IN", 2020, 31, 49_458),
            ("18115", "Ohio County, IN", 2020, 4, 5_940),  # a small count: suppressed
            ("39017", "Butler County, OH", 2020, 160, 390_357),
            ("39061", "Hamilton County, OH", 2020, 402, 830_639),
            (ELSEWHERE[0], "Washakie County, WY", 2020, 3, 7_685),
        ],
        columns=["fips", "county", "year", "deaths", "population"],
    )
    rates = pd.DataFrame(
        {
            "FIPS": ["18029", "18115", "39017", "39061", ELSEWHERE[0]],
            "OdMortRt": [48.2, 31.0, 39.9, 51.5, 22.0],
        }
    )
    a, b = raw / "county_deaths.csv", raw / "oeps_rates.csv"
    counts.to_csv(a, index=False)
    rates.to_csv(b, index=False)
    return a, b


def write_region(root: Path, *, counties: bool = True, **overrides: Any) -> Path:
    """Write Two Rivers' raw inputs and config under ``root``; return the config path.

    Parameters
    ----------
    root
        Folder to write into.
    counties
        Name the region's four counties in the config (``counties:``); without it the
        counties cannot be known (the area ids are generated, not GEOIDs).
    overrides
        Top-level config keys to replace.
    """
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    write_osm(raw / "corridors.osm")
    areas_frame().to_file(raw / "blocks.gpkg")
    providers_frame().to_csv(raw / "national_providers.csv", index=False)
    deaths, rates = overdose_tables(raw)
    config: dict[str, Any] = {
        "name": "two-rivers",
        "title": "Two Rivers (test region)",
        "fictional": True,
        "crs": "EPSG:32616",
        "buffer_km": 3,
        "network": {
            "osm": {"path": "raw/corridors.osm", "source": "test extract", "licence": "CC0"}
        },
        "providers": [
            {
                "name": "national-locator",
                "path": "raw/national_providers.csv",
                "source": "national list (test)",
                "columns": {
                    "name": "name1",
                    "address": "street1",
                    "city": "city",
                    "state": "state",
                    "zip": "zip",
                    "lat": "latitude",
                    "lon": "longitude",
                    "category": "type",
                },
                "category_map": {"methadone": "methadone", "buprenorphine": "buprenorphine"},
            }
        ],
        "areas": {
            "path": "raw/blocks.gpkg",
            "unit": "block",
            "name_column": "block_name",
            "population": {"column": "people"},
            "source": "test blocks",
        },
        "access": {
            "bands_min": [5, 10, 15],
            "thresholds_min": {
                "methadone": {"drive": 10, "walk": 30},
                "buprenorphine": {"drive": 10, "walk": 20},
                "naltrexone": {"drive": 10},
            },
        },
        "overdose": [
            {
                "path": f"raw/{deaths.name}",
                "format": "table",
                "key_column": "fips",
                "county_column": "county",
                "year_column": "year",
                "deaths_column": "deaths",
                "population_column": "population",
                "source": "county deaths (test)",
            },
            {
                "path": f"raw/{rates.name}",
                "format": "oeps",
                "period": "2021",
                "source": "OEPS-style modelled rates (test)",
            },
        ],
    }
    if counties:
        config["counties"] = [c[0] for c in COUNTIES]
    config.update(overrides)
    path = root / "two-rivers.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path
