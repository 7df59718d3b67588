"""``access-atlas validate``: every problem ``build`` would hit, found without building.

Run through the real command (``python -m etl validate``) on Gridton, the small region
:mod:`tests.region_fixture` writes in code, with one thing broken per test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from etl.config import load_config, utm_zone
from etl.validate import coverage_shortfall, missing_column, resolve_crs
from tests.region_fixture import write_region
from tests.test_cli import ROOT, atlas


def _edit(cfg: Path, change: dict) -> Path:
    """Apply a nested change to a config file (``None`` deletes a key)."""
    data = yaml.safe_load(cfg.read_text())

    def merge(into: dict, new: dict) -> None:
        for key, value in new.items():
            if value is None:
                into.pop(key, None)
            elif isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(data, change)
    cfg.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return cfg


def _lines(res: subprocess.CompletedProcess[str], prefix: str) -> list[str]:
    return [line for line in res.stdout.splitlines() if line.startswith(prefix)]


def test_gridton_validates(tmp_path: Path) -> None:
    res = atlas("validate", write_region(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert _lines(res, "error:") == []
    assert "valid region config 'gridton'" in res.stdout
    assert "4 input files opened" in res.stdout  # OSM, providers, areas, population
    assert "Traceback" not in res.stderr


def test_misspelt_provider_column_names_file_column_and_suggestion(tmp_path: Path) -> None:
    cfg = write_region(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    data["providers"][0]["columns"]["name"] = "Progam"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    res = atlas("validate", cfg)
    assert res.returncode == 2
    errors = _lines(res, "error:")
    assert errors == [
        "error: providers[clinics]: column 'Progam' (columns.name) not in providers.csv; "
        "columns: Program, Kind, Street, Latitude, Longitude; did you mean 'Program'?"
    ]
    assert "1 error" in res.stderr and "Traceback" not in res.stderr


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    """A missing provider file, a misspelt areas id and population column: three lines."""
    cfg = write_region(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    data["providers"][0]["path"] = "raw/no-such-list.csv"
    data["areas"]["id_column"] = "GEOID10"
    data["areas"]["population"]["column"] = "populaton"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    res = atlas("validate", cfg)
    assert res.returncode == 2
    errors = _lines(res, "error:")
    assert len(errors) == 3, res.stdout
    assert errors[0].startswith("error: providers[clinics]: ")
    assert "no-such-list.csv: file not found" in errors[0]
    assert errors[1] == (
        "error: areas: column 'GEOID10' (areas.id_column) not in bg.gpkg; columns: GEOID; "
        "did you mean 'GEOID'?"
    )
    assert errors[2] == (
        "error: areas.population: column 'populaton' (areas.population.column) not in "
        "population.csv; columns: GEOID, population; did you mean 'population'?"
    )
    assert "3 errors" in res.stderr


def test_population_that_does_not_join_is_caught_by_the_real_reader(tmp_path: Path) -> None:
    """Columns exist but the ids differ: what read_areas would raise during build."""
    cfg = write_region(tmp_path)
    pop = tmp_path / "raw" / "population.csv"
    pop.write_text(pop.read_text().replace("990010001001", "990010001009"))
    res = atlas("validate", cfg)
    assert res.returncode == 2
    (error,) = _lines(res, "error:")
    assert error.startswith("error: areas: ")
    assert "1 of 4 areas have no population row" in error and "990010001001" in error


def test_omitted_crs_is_chosen_from_the_areas_and_printed(tmp_path: Path) -> None:
    cfg = _edit(write_region(tmp_path), {"crs": None})
    res = atlas("validate", cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "crs: not given; using EPSG:32617 (UTM 17N) from the areas' centre" in res.stdout
    assert "crs EPSG:32617" in res.stdout
    # build takes the same choice
    loaded = load_config(cfg)
    assert loaded.crs is None
    assert resolve_crs(loaded).crs == "EPSG:32617"


def test_missing_areas_file_is_one_line_even_with_crs_omitted(tmp_path: Path) -> None:
    cfg = _edit(write_region(tmp_path), {"crs": None, "areas": {"path": "raw/nowhere.gpkg"}})
    res = atlas("validate", cfg)
    assert res.returncode == 2
    errors = _lines(res, "error:")
    assert len(errors) == 1, res.stdout
    assert errors[0].startswith("error: areas: ")
    assert "nowhere.gpkg: areas file not found" in errors[0]


def test_utm_zone() -> None:
    assert utm_zone(-83.0, 40.0) == ("EPSG:32617", "UTM 17N")
    assert utm_zone(151.2, -33.9) == ("EPSG:32756", "UTM 56S")
    assert utm_zone(-180.0, 10.0) == ("EPSG:32601", "UTM 1N")
    assert utm_zone(180.0, 10.0) == ("EPSG:32660", "UTM 60N")


def test_extract_short_of_the_buffer_is_a_warning_per_side(tmp_path: Path) -> None:
    # Gridton's streets end 0.001 degrees inside its areas on every side; 3 km more needed.
    cfg = _edit(write_region(tmp_path), {"buffer_km": 3})
    res = atlas("validate", cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    (warning,) = [w for w in _lines(res, "warning:") if "network.osm" in w]
    assert warning.startswith(
        "warning: network.osm: gridton.osm stops short of the areas plus buffer_km 3: "
        "north by 3.1 km, south by 3.1 km, east by 3.1 km, west by 3.1 km"
    )
    assert "1 warning" in res.stdout


def test_extract_elsewhere_is_an_error(tmp_path: Path) -> None:
    cfg = write_region(tmp_path)
    osm = tmp_path / "raw" / "gridton.osm"
    osm.write_text(osm.read_text().replace('lon="-8', 'lon="-7'))  # 10 degrees east
    res = atlas("validate", cfg)
    assert res.returncode == 2
    (error,) = [e for e in _lines(res, "error:") if "network.osm" in e]
    assert "does not overlap the areas" in error


def test_coverage_shortfall_names_only_short_sides() -> None:
    areas = (-83.0, 40.0, -82.9, 40.1)
    assert coverage_shortfall((-83.1, 39.9, -82.8, 40.2), areas, 5.0) == {}
    short = coverage_shortfall((-83.1, 39.9, -82.8, 40.05), areas, 0.0)
    assert short == {"north": 5.6}


def test_categories_no_list_yields_are_a_warning(tmp_path: Path) -> None:
    cfg = _edit(
        write_region(tmp_path),
        {"access": {"thresholds_min": {"methadone": {"drive": 2}, "pharmacy": {"drive": 5},
                                       "naloxone": {"walk": 10}}}},
    )  # fmt: skip
    res = atlas("validate", cfg)
    assert res.returncode == 0
    assert "warning: providers: no sites: pharmacy, naloxone" in res.stdout


def test_missing_column_suggests_close_names() -> None:
    cols = ["name1", "name2", "street1", "city"]
    assert missing_column("moud.gpkg", "nmae1", cols) == (
        "column 'nmae1' not in moud.gpkg; columns: name1, name2, street1, city; "
        "did you mean 'name1' or 'name2'?"
    )
    assert missing_column("moud.gpkg", "CITY", cols) is None  # readers match case-insensitively
    assert missing_column("x.csv", "zzz", cols) == (
        "column 'zzz' not in x.csv; columns: name1, name2, street1, city"
    )


@pytest.mark.shared
def test_franklin_validates_quickly(franklin: Path) -> None:
    t0 = time.perf_counter()
    res = atlas("validate", ROOT / "geodata" / "configs" / "franklin-oh.yaml")
    seconds = time.perf_counter() - t0
    assert res.returncode == 0, res.stdout + res.stderr
    assert _lines(res, "error:") == []
    assert "valid region config 'franklin-oh'" in res.stdout
    # The extract thins out well inside the county (shared/README.md): said, not fatal.
    assert any("network.osm: columbus.osm.pbf stops short" in w for w in _lines(res, "warning:"))
    assert "no sites: syringe_services, naloxone" in res.stdout  # pharmacies: vaccine sites
    assert seconds < 15


def test_closed_stdout_exits_quietly(tmp_path: Path) -> None:
    """Any command whose reader goes away early: no traceback, status 141."""
    cfg = write_region(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl", "validate", str(cfg), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_county_outlines_are_checked_against_the_areas_and_the_counties_list(
    tmp_path: Path,
) -> None:
    import geopandas as gpd
    import pandas as pd
    import shapely

    from tests.region_fixture import LAT0, LON0, STEP, N

    cfg = write_region(tmp_path)
    raw = tmp_path / "raw"
    areas = gpd.read_file(raw / "bg.gpkg")  # Gridton's ids made Franklin County GEOIDs
    areas["GEOID"] = [f"39049000100{k + 1}" for k in range(len(areas))]
    areas.to_file(raw / "bg.gpkg")
    pop = pd.read_csv(raw / "population.csv", dtype={"GEOID": str})
    pop.assign(GEOID=areas["GEOID"]).to_csv(raw / "population.csv", index=False)
    mid_x, mid_y = LON0 + (N - 1) / 2 * STEP, LAT0 + (N - 1) / 2 * STEP
    far = 1.0
    gpd.GeoDataFrame(
        {"GEOID": ["39049", "39041"], "NAME": ["West", "Northeast"]},
        geometry=[
            shapely.box(LON0 - far, LAT0 - far, mid_x, LAT0 + far),  # the two western areas
            shapely.box(mid_x, mid_y, LON0 + far, LAT0 + far),  # the north-east one
        ],
        crs="EPSG:4269",
    ).to_file(tmp_path / "raw" / "outlines.gpkg")
    _edit(
        cfg,
        {
            "county_outlines": {"path": "raw/outlines.gpkg", "id_column": "GEOID"},
            "counties": ["39049", "39045"],
        },
    )
    res = atlas("validate", cfg)
    assert res.returncode == 0, res.stdout + res.stderr  # warnings only
    warnings = _lines(res, "warning:")
    # the south-east area (800 of 4,000 people) lies in no outline
    assert any("1 of 4 areas (20.0% of people) lie inside no county outline" in w for w in warnings)
    assert any("county 39041 by the outlines, which `counties:` does not list" in w
               for w in warnings), warnings  # fmt: skip
    assert any("`counties:` lists 39045, but no area lies in that outline" in w for w in warnings)
    assert any("1 area's GEOID names another county" in w and "390490001004 in 39041" in w
               for w in warnings), warnings  # fmt: skip


def test_county_outlines_that_miss_every_area_are_an_error(tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    cfg = write_region(tmp_path)
    gpd.GeoDataFrame(
        {"GEOID": ["56043"]}, geometry=[shapely.box(-108, 43, -107, 44)], crs="EPSG:4326"
    ).to_file(tmp_path / "raw" / "far.gpkg")
    _edit(cfg, {"county_outlines": {"path": "raw/far.gpkg", "id_column": "GEOID"}})
    res = atlas("validate", cfg)
    assert res.returncode == 2
    assert any("far.gpkg: none of the region's 4 areas lies inside a county outline" in e
               for e in _lines(res, "error:")), res.stdout  # fmt: skip
