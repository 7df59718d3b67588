"""A tiny region built in code — OSM XML, a provider CSV, block groups and population — for
fast pipeline and CLI tests. Everything is fictional ("Gridton", near lon -83.0, lat 40.0)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
import yaml

LON0, LAT0, STEP = -83.0, 40.0, 0.002  # ≈ 170 m east-west, 222 m north-south
N = 12  # 12 x 12 street grid


def node_id(i: int, j: int) -> int:
    return 1 + i * N + j


def write_osm(path: Path, *, streets: bool = True) -> Path:
    """A 12x12 grid: residential streets, one primary avenue, one one-way street."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for i in range(N):
        for j in range(N):
            lines.append(
                f'  <node id="{node_id(i, j)}" version="1" lat="{LAT0 + i * STEP:.7f}" '
                f'lon="{LON0 + j * STEP:.7f}"/>'
            )
    way = 1000
    if streets:
        for i in range(N):  # east-west streets
            tags = {
                "highway": "primary" if i == N // 2 else "residential",
                "name": f"Row {i} Street",
            }
            if i == 2:
                tags["oneway"] = "yes"
            refs = [node_id(i, j) for j in range(N)]
            lines.append(_way(way, refs, tags))
            way += 1
        for j in range(N):  # north-south avenues
            refs = [node_id(i, j) for i in range(N)]
            lines.append(_way(way, refs, {"highway": "residential", "name": f"Column {j} Avenue"}))
            way += 1
    else:
        lines.append(_way(way, [node_id(0, 0), node_id(0, 1)], {"building": "yes"}))
    lines.append("</osm>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _way(way_id: int, refs: list[int], tags: dict[str, str]) -> str:
    nd = "".join(f'<nd ref="{r}"/>' for r in refs)
    tg = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
    return f'  <way id="{way_id}" version="1">{nd}{tg}</way>'


def write_region(root: Path, **overrides: object) -> Path:
    """Write raw inputs and a config for Gridton under ``root``; return the config path."""
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    write_osm(raw / "gridton.osm")
    providers = pd.DataFrame(
        {
            "Program": [
                "Gridton Recovery Clinic",
                "East Side Health",
                "North Pharmacy",
                "Far Away Clinic",
            ],
            "Kind": ["methadone", "buprenorphine", "buprenorphine", "methadone"],
            "Street": [
                "10 Row 1 Street",
                "5 Column 10 Avenue",
                "20 Row 10 Street",
                "1 Nowhere Road",
            ],
            "Latitude": [LAT0 + 1 * STEP, LAT0 + 5 * STEP, LAT0 + 10 * STEP, 45.0],
            "Longitude": [LON0 + 2 * STEP, LON0 + 10 * STEP, LON0 + 3 * STEP, -100.0],
        }
    )
    providers.to_csv(raw / "providers.csv", index=False)
    half = (N - 1) / 2
    quads, ids = [], []
    for k, (a, b) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        x0 = LON0 - STEP / 2 + b * (half + 0.5) * STEP
        y0 = LAT0 - STEP / 2 + a * (half + 0.5) * STEP
        quads.append(shapely.box(x0, y0, x0 + (half + 0.5) * STEP, y0 + (half + 0.5) * STEP))
        ids.append(f"99001000100{k + 1}")
    gpd.GeoDataFrame({"GEOID": ids}, geometry=quads, crs="EPSG:4269").to_file(raw / "bg.gpkg")
    pd.DataFrame({"GEOID": ids, "population": [1200, 800, 0, 2000]}).to_csv(
        raw / "population.csv", index=False
    )
    config = {
        "name": "gridton",
        "title": "Gridton (test fixture)",
        "fictional": True,
        "crs": "EPSG:32617",
        "buffer_km": 1,
        "network": {"osm": {"path": "raw/gridton.osm", "source": "test", "licence": "CC0"}},
        "providers": [
            {
                "name": "clinics",
                "path": "raw/providers.csv",
                "source": "test",
                "columns": {
                    "name": "Program",
                    "category": "Kind",
                    "address": "Street",
                    "lat": "Latitude",
                    "lon": "Longitude",
                },
                "category_map": {"methadone": "methadone", "buprenorphine": "buprenorphine"},
            }
        ],
        "areas": {
            "path": "raw/bg.gpkg",
            "id_column": "GEOID",
            "population": {"path": "raw/population.csv", "key": "GEOID", "column": "population"},
        },
        "access": {
            "bands_min": [2, 4, 6],
            "thresholds_min": {"methadone": {"drive": 2, "walk": 10}, "buprenorphine": {"walk": 8}},
        },
    }
    for key, value in overrides.items():
        config[key] = value
    path = root / "gridton.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def osm_fixture():
    """Gridton as a :class:`tests.fixtures_osm.OsmFixture` (for an Overpass stand-in)."""
    from tests.fixtures_osm import OsmFixture

    fx = OsmFixture()
    for i in range(N):
        for j in range(N):
            fx.nodes[node_id(i, j)] = (round(LON0 + j * STEP, 7), round(LAT0 + i * STEP, 7), {})
    way = 1000
    for i in range(N):
        tags = {"highway": "primary" if i == N // 2 else "residential", "name": f"Row {i} Street"}
        if i == 2:
            tags["oneway"] = "yes"
        fx.ways.append((way, [node_id(i, j) for j in range(N)], tags))
        way += 1
    for j in range(N):
        refs = [node_id(i, j) for i in range(N)]
        fx.ways.append((way, refs, {"highway": "residential", "name": f"Column {j} Avenue"}))
        way += 1
    return fx


#: A polygon (lon, lat) around Gridton with room to spare.
POLYGON = [
    (LON0 - 0.005, LAT0 - 0.005),
    (LON0 + N * STEP + 0.005, LAT0 - 0.005),
    (LON0 + N * STEP + 0.005, LAT0 + N * STEP + 0.005),
    (LON0 - 0.005, LAT0 + N * STEP + 0.005),
    (LON0 - 0.005, LAT0 - 0.005),
]
