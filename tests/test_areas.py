"""Any area file, an explicit region boundary, and people placed at population points.

Areas are made in code: a ring of eight 200 m squares in UTM 17N around a missing centre (a
hole), with a 2 m sliver between the first two columns; population in a ``people`` column
and no id column. People points are census-block-like internal points with a P1-style table
keyed by STATE/COUNTY/TRACT/BLOCK.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely
from pyproj import Transformer

from etl._errors import InputError
from etl.config import RegionConfig, load_config
from etl.fips import geoid_counties
from etl.inputs.areas import (
    assign_points,
    generated_ids,
    read_areas,
    read_people_points,
    region_boundary,
)
from etl.inputs.providers import load_providers
from tests.region_fixture import LAT0, LON0, STEP, N, write_region

CRS = "EPSG:32617"
TO_M = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
TO_LL = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
X0, Y0 = TO_M.transform(LON0, LAT0)
CRS4269 = pyproj.CRS("EPSG:4269")
SIDE = 200.0
GAP = 2.0  # the sliver between column 0 and column 1


def ring_cells() -> list[tuple[int, int]]:
    return [(i, j) for i in range(3) for j in range(3) if (i, j) != (1, 1)]


def ward_frame() -> gpd.GeoDataFrame:
    """Eight wards in UTM metres around an empty centre; people in a column, no ids."""
    rows = []
    for k, (i, j) in enumerate(ring_cells()):
        x = X0 + j * SIDE + (GAP if j >= 1 else 0.0)
        y = Y0 + i * SIDE
        box = shapely.box(x, y, x + SIDE - (GAP if j == 0 else 0.0), y + SIDE)
        rows.append({"ward": f"Ward {k + 1}", "people": 100 * (k + 1), "geometry": box})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)


def config(tmp_path: Path, areas: dict, **top: object) -> RegionConfig:
    return RegionConfig.model_validate(
        {
            "name": "wards",
            "title": "Wards (test)",
            "crs": CRS,
            "buffer_km": 0.5,
            "network": {"osm": {"path": "x.osm"}},
            "providers": [
                {
                    "name": "sites",
                    "path": "sites.csv",
                    "category": "methadone",
                    "columns": {"name": "Name", "lon": "Lon", "lat": "Lat"},
                }
            ],
            "areas": areas,
            "base_dir": tmp_path,
            **top,
        }
    )


WARDS = {
    "path": "wards.gpkg",
    "unit": "ward",
    "name_column": "ward",
    "population": {"column": "people"},
}


def lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = TO_LL.transform(x, y)
    return float(lon), float(lat)


# -- the area file ---------------------------------------------------------------------------


def test_areas_without_ids_and_population_in_a_column(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ward_frame().to_file(tmp_path / "wards.gpkg")
    cfg = config(tmp_path, WARDS)
    with caplog.at_level(logging.WARNING, logger="etl"):
        areas = read_areas(cfg)
    assert len(areas) == 8
    assert areas["unit"].unique().tolist() == ["ward"]
    assert areas["population"].tolist() == [100 * (k + 1) for k in range(8)]
    assert areas["name"].tolist()[:2] == ["Ward 1", "Ward 2"]
    assert areas["area_id"].str.fullmatch(r"area-[0-9a-f]{12}").all()
    assert areas["area_id"].is_unique
    warned = [r for r in caplog.records if "generated ids for 8 areas" in r.getMessage()]
    assert len(warned) == 1 and "wards.gpkg" in warned[0].getMessage()
    assert geoid_counties(areas["area_id"], unit="ward") is None
    assert abs(areas["area_km2"].iloc[0] - (SIDE - GAP) * SIDE / 1e6) < 1e-6


def test_generated_ids_are_stable_across_reads_and_order(tmp_path: Path) -> None:
    wards = ward_frame()
    wards.to_file(tmp_path / "wards.gpkg")
    cfg = config(tmp_path, WARDS)
    first = read_areas(cfg).set_index("name")["area_id"]
    second = read_areas(cfg).set_index("name")["area_id"]
    assert first.to_dict() == second.to_dict()
    wards.iloc[::-1].to_file(tmp_path / "wards.gpkg")  # the same wards in reverse order
    reordered = read_areas(cfg).set_index("name")["area_id"]
    assert reordered.to_dict() == first.to_dict()
    twins = generated_ids(gpd.GeoSeries([shapely.box(0, 0, 1, 1)] * 2 + [shapely.box(0, 0, 2, 1)]))
    assert twins[1] == twins[0] + "-2" and twins[2] != twins[0]


def test_an_old_config_keeps_block_group_and_population_column(tmp_path: Path) -> None:
    frame = ward_frame().assign(GEOID=[f"39049000{k}001" for k in range(8)])
    frame.to_file(tmp_path / "bg.gpkg")
    cfg = config(tmp_path, {"path": "bg.gpkg", "id_column": "GEOID", "population_column": "people"})
    areas = read_areas(cfg)
    assert cfg.areas.unit == "block group"
    assert areas["area_id"].tolist()[0] == "390490000001"
    assert geoid_counties(areas["area_id"], unit=cfg.areas.unit) == ["39049"]


@pytest.mark.parametrize(
    ("ids", "problem", "rows"),
    [
        (["a", "b", "", "d", "e", None, "g", "h"], "2 areas have no", "[3, 6]"),
        (["a", "b", "a", "d", "e", "f", "g", "h"], "duplicated code a", "[1, 3]"),
    ],
)
def test_bad_ids_name_the_file_the_features_and_the_fix(
    tmp_path: Path, ids: list, problem: str, rows: str
) -> None:
    ward_frame().assign(code=ids).to_file(tmp_path / "wards.gpkg")
    cfg = config(tmp_path, {**WARDS, "id_column": "code"})
    with pytest.raises(InputError) as err:
        read_areas(cfg)
    msg = str(err.value)
    assert "wards.gpkg" in msg and problem in msg and f"features {rows}" in msg
    assert "leave areas.id_column out" in msg and "\n" not in msg


def test_unit_is_free_text_but_not_blank(tmp_path: Path) -> None:
    assert config(tmp_path, {**WARDS, "unit": "  ZIP   code "}).areas.unit == "ZIP code"
    with pytest.raises(ValueError, match=r"areas\.unit"):
        config(tmp_path, {**WARDS, "unit": "  "})
    with pytest.raises(ValueError, match="give the population"):
        config(tmp_path, {"path": "wards.gpkg"})


# -- the region: explicit or the areas with holes filled --------------------------------------


def sites_csv(tmp_path: Path, points: dict[str, tuple[float, float]]) -> None:
    rows = [{"Name": n, "Lon": lonlat(*p)[0], "Lat": lonlat(*p)[1]} for n, p in points.items()]
    pd.DataFrame(rows).to_csv(tmp_path / "sites.csv", index=False)


def test_region_without_boundary_fills_holes_and_keeps_sites_on_its_edge(tmp_path: Path) -> None:
    ward_frame().to_file(tmp_path / "wards.gpkg")
    cfg = config(tmp_path, WARDS)
    areas = read_areas(cfg)
    region, source = region_boundary(cfg, areas)
    assert source == "areas"
    region_m = gpd.GeoSeries([region], crs="EPSG:4326").to_crs(CRS).iloc[0]
    assert region_m.geom_type == "Polygon" and len(region_m.interiors) == 0
    assert abs(region_m.area - (3 * SIDE + GAP) * 3 * SIDE) < 50.0  # the whole square
    dissolved = shapely.union_all(ward_frame().geometry.to_numpy())
    assert dissolved.geom_type == "MultiPolygon"  # the sliver splits it; the centre is empty
    mid_y = Y0 + 1.5 * SIDE
    sites_csv(
        tmp_path,
        {
            "three metres west": (X0 - 3.0, Y0 + 0.5 * SIDE),
            "in the empty centre": (X0 + 1.5 * SIDE, mid_y),
            "in the sliver": (X0 + SIDE - GAP / 2, Y0 + 0.5 * SIDE),
            "two hundred metres west": (X0 - 200.0, Y0 + 0.5 * SIDE),
        },
    )
    # The dissolved wards alone would miss three of them.
    for x, y in [(X0 - 3.0, Y0 + 0.5 * SIDE), (X0 + 1.5 * SIDE, mid_y), (X0 + SIDE - 1, Y0)]:
        assert not dissolved.contains(shapely.Point(x, y))
    providers = load_providers(cfg, region).providers.set_index("name")
    assert providers["in_region"].to_dict() == {
        "three metres west": True,
        "in the empty centre": True,
        "in the sliver": True,
        "two hundred metres west": False,
    }


def test_an_explicit_boundary_is_the_region(tmp_path: Path) -> None:
    ward_frame().to_file(tmp_path / "wards.gpkg")
    # A boundary in another CRS (Web Mercator) reaching 300 m west of the wards.
    box = shapely.box(X0 - 300.0, Y0, X0 + 3 * SIDE, Y0 + 3 * SIDE)
    gpd.GeoDataFrame({"name": ["city"]}, geometry=[box], crs=CRS).to_crs("EPSG:3857").to_file(
        tmp_path / "city.geojson"
    )
    cfg = config(tmp_path, WARDS, boundary={"path": "city.geojson", "source": "test"})
    region, source = region_boundary(cfg, read_areas(cfg))
    assert source == "boundary"
    region_m = gpd.GeoSeries([region], crs="EPSG:4326").to_crs(CRS).iloc[0]
    assert abs(region_m.area - box.area) / box.area < 1e-3
    sites_csv(
        tmp_path,
        {"beyond the wards, in the city": (X0 - 200.0, Y0 + 50.0), "east": (X0 + 700.0, Y0 + 50)},
    )
    flags = load_providers(cfg, region).providers.set_index("name")["in_region"].to_dict()
    assert flags == {"beyond the wards, in the city": True, "east": False}
    bad = config(tmp_path, WARDS, boundary={"path": "missing.gpkg"})
    with pytest.raises(InputError, match=r"missing.gpkg: file not found \(config key boundary"):
        region_boundary(bad, read_areas(bad))


# -- people at population points (census blocks) ---------------------------------------------


def block_inputs(tmp_path: Path) -> None:
    """A block table (.dbf with a .prj, internal points as text) and a P1 CSV without GEOID."""
    ward_frame().to_file(tmp_path / "wards.gpkg")
    points = {  # block -> (x, y) inside ward cells; one just outside, one far away
        "1000": (X0 + 50, Y0 + 50),  # ward 1
        "1001": (X0 + 150, Y0 + 150),  # ward 1
        "1002": (X0 + 3 * SIDE - 20, Y0 + 3 * SIDE - 20),  # ward 8
        "1003": (X0 - 30, Y0 + 100),  # 30 m west of ward 1: joins it
        "1004": (X0 - 5000, Y0),  # 5 km away: left out
        "1005": (X0 + 300, Y0 + 100),  # ward 2, but nobody lives there
    }
    rows = []
    for block, (x, y) in points.items():
        lon, lat = lonlat(x, y)
        rows.append(
            {
                "GEOID10": f"39049001100{block}",
                "INTPTLAT10": f"{lat:+011.7f}",
                "INTPTLON10": f"{lon:+012.7f}",
            }
        )
    pyogrio.write_dataframe(pd.DataFrame(rows), tmp_path / "blocks.dbf", driver="ESRI Shapefile")
    (tmp_path / "blocks.prj").write_text(CRS4269.to_wkt("WKT1_ESRI"), encoding="ascii")
    pd.DataFrame(
        {
            "STATE": [39] * 6,
            "COUNTY": [49] * 6,
            "TRACT": [1100] * 6,
            "BLOCK": [int(b) for b in points],
            "P0010001": [10, 30, 60, 5, 99, 0],
        }
    ).to_csv(tmp_path / "p1.csv", index=False)


PEOPLE = {
    "path": "blocks.dbf",
    "lon": "INTPTLON10",
    "lat": "INTPTLAT10",
    "id_column": "GEOID10",
    "max_distance_m": 100,
    "population": {
        "path": "p1.csv",
        "key": ["STATE", "COUNTY", "TRACT", "BLOCK"],
        "key_widths": [2, 3, 6, 4],
        "column": "P0010001",
    },
}


def test_block_points_join_a_p1_table_by_padded_key_parts(tmp_path: Path) -> None:
    block_inputs(tmp_path)
    cfg = config(tmp_path, {**WARDS, "people": PEOPLE})
    pts = read_people_points(cfg)
    assert pts["point_id"].tolist()[0] == "390490011001000"
    assert pts["population"].tolist() == [10, 30, 60, 5, 99, 0]
    assert abs(pts["lon"].iloc[0] - lonlat(X0 + 50, Y0 + 50)[0]) < 1e-5  # NAD83 ~ WGS84
    placed = assign_points(read_areas(cfg), pts, crs=CRS, max_distance_m=100)
    assert placed.area.tolist() == [0, 0, 7, 0]  # block 1003 joins ward 1; 1005 has nobody
    assert (placed.nearest, placed.dropped, placed.dropped_people) == (1, 1, 99.0)
    unpadded = {**PEOPLE, "population": {**PEOPLE["population"], "key_widths": None}}
    with pytest.raises(InputError, match=r"6 of 6 people points have no population row"):
        read_people_points(config(tmp_path, {**WARDS, "people": unpadded}))


def test_areas_without_population_take_their_points_people(tmp_path: Path) -> None:
    block_inputs(tmp_path)
    ward_frame().drop(columns="people").to_file(tmp_path / "wards.gpkg")
    cfg = config(tmp_path, {"path": "wards.gpkg", "unit": "ward", "people": PEOPLE})
    areas = read_areas(cfg)
    assert areas["population"].tolist() == [45, 0, 0, 0, 0, 0, 0, 60]


def test_a_build_places_people_at_block_points(tmp_path: Path) -> None:
    """Gridton's four areas, people at block points: every person is a point, totals kept."""
    from etl.pipeline import run_build

    quads = gpd.read_file(write_region(tmp_path).parent / "raw" / "bg.gpkg")
    pop = [1200, 800, 0, 2000]
    rng = np.random.default_rng(3)
    rows = []
    for k, geom in enumerate(quads.geometry):
        minx, miny, maxx, maxy = geom.bounds
        for b in range(5):
            rows.append(
                {
                    "block": f"{k}{b}",
                    "lon": rng.uniform(minx, maxx),
                    "lat": rng.uniform(miny, maxy),
                    "pop": pop[k] // 5 if k != 3 else [100, 100, 100, 100, 1600][b],
                }
            )
    rows.append({"block": "far", "lon": LON0 + N * STEP + 0.02, "lat": LAT0, "pop": 7})
    pd.DataFrame(rows).to_csv(tmp_path / "raw" / "blocks.csv", index=False)
    cfg_path = write_region(
        tmp_path,
        areas={
            "path": "raw/bg.gpkg",
            "id_column": "GEOID",
            "population": {"path": "raw/population.csv", "key": "GEOID", "column": "population"},
            "people": {
                "path": "raw/blocks.csv",
                "lon": "lon",
                "lat": "lat",
                "population_column": "pop",
                "max_distance_m": 200,
            },
        },
    )
    bundle = run_build(load_config(cfg_path), tmp_path / "geo", progress=False)
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    info = manifest["stages"]["areas"]
    assert info["people_placement"] == "points" and info["region_source"] == "areas"
    assert info["ids_are_geoids"] is False  # state code 99 is no state
    assert info["people_from_points"]["points_dropped"] == 1
    assert "areas.people" in {r["role"] for r in manifest["inputs"]}
    people = pd.read_parquet(bundle / "layers" / "people.parquet")
    assert len(people) == 15  # 20 blocks, less the five empty ones; the far one left out
    assert round(people["weight"].sum()) == 4000
    by_area = people.groupby("area_id")["weight"].sum().round().to_dict()
    assert by_area == {"990010001001": 1200, "990010001002": 800, "990010001004": 2000}
    assert {f"snap_m_{m}" for m in ("drive", "walk")} <= set(people.columns)
    region = gpd.read_parquet(bundle / "layers" / "region.parquet")
    assert len(region) == 1 and region["source"].iloc[0] == "areas"


@pytest.mark.shared
def test_franklin_blocks_hold_every_block_groups_people(franklin: Path) -> None:
    """Franklin's 22,826 census blocks: 1,163,414 people, each block group's own total."""
    from tests.conftest import CONFIGS

    cfg = load_config(CONFIGS / "franklin-oh.yaml")
    pts = read_people_points(cfg)
    assert len(pts) == 22_826 and int(pts["population"].sum()) == 1_163_414
    assert pts["point_id"].str.len().eq(15).all() and pts["point_id"].is_unique
    areas = read_areas(cfg)
    placed = assign_points(areas, pts, crs=cfg.crs, max_distance_m=cfg.areas.people.max_distance_m)
    assert (placed.nearest, placed.dropped) == (0, 0)
    sums = np.bincount(placed.area, weights=placed.population, minlength=len(areas))
    assert np.array_equal(sums.astype(np.int64), areas["population"].to_numpy())
    # Each block sits in the block group its GEOID names.
    kept = pts[pts["population"] > 0]["point_id"].str[:12].to_numpy()
    assert (areas["area_id"].to_numpy()[placed.area] == kept).all()
    region, source = region_boundary(cfg, areas)
    assert source == "areas"
    assert all(len(p.interiors) == 0 for p in shapely.get_parts(region))
