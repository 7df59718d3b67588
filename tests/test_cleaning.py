"""Control characters in every input, cleaned where each is read (issue 17), through the CLI.

Gridton (:mod:`tests.region_fixture`) gets an area file, a population table, an overdose table
and a GTFS feed whose names hold NUL, CR/LF, ESC, TAB, DEL, C1 controls and U+2028/U+2029.
The build must leave no control character in any layer, never need the last guard of
:meth:`etl.bundle.store.BundleWriter.write_layer`, and list each dirty cell in
``reports/inputs_cleaned.csv`` with its input, file, row and column. A stage command keeps the
rows of the inputs it does not re-read, and never writes through to the live bundle.

Also here: ``build --if-missing`` started while another build of the region runs waits for it
and then finds its bundle (two ``scripts/run.sh`` started at once), as a real command.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml

from etl.bundle.store import Bundle
from tests.region_fixture import LAT0, LON0, STEP, write_region
from tests.test_cli import ROOT, atlas, tree_digest
from tests.test_hostile_build import (
    CONTROL,
    REGION,
    _env,
    error_lines,
    temp_folders,
    wait_for_temp,
    wait_for_text,
)

#: Area names (and a note) as a careless export has them; feature k is row k + 1.
AREA_NAMES = ["South\x1bWest", "South East\x85", "North\r\nWest", "North East"]
AREA_NOTES = ["", "", "", "kept\u2028apart"]


def _stop(i: int, j: int) -> str:
    return f"{LAT0 + i * STEP:.6f},{LON0 + j * STEP:.6f}"


#: stops.txt: a NUL, a LF inside a quoted name, a C1 control (CSI) in a description.
STOPS = (
    "stop_id,stop_name,stop_desc,stop_lat,stop_lon\n"
    f's1,"Row 1 Street\x00 & Column 2 Avenue",,{_stop(1, 2)}\n'
    f's2,"Central\nStation","Platform\x9b A",{_stop(5, 5)}\n'
    f"s3,Row 9 Street & Column 9 Avenue,,{_stop(9, 9)}\n"
)
ROUTES = "route_id,route_short_name,route_long_name,route_type\nR1,1,\"Main\u2029Line\",3\n"
TRIPS = "route_id,service_id,trip_id\nR1,WK,t1\n"
STOP_TIMES = (
    "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
    "t1,07:00:00,07:00:00,s1,1\n"
    "t1,07:05:00,07:05:00,s2,2\n"
)
#: A CDC WONDER export: a blank line (row 2) before the county's row (row 3).
WONDER = (
    '"Notes","County","County Code","Deaths","Population","Crude Rate"\n'
    "\n"
    ',"Gridton\x00 County, ZZ","99001",120,40000,"300.0\t"\n'
)
#: Every dirty cell, as reports/inputs_cleaned.csv must list it (sorted by input, file, row).
EXPECTED = [
    ["areas", "bg.gpkg", 1, "NAME", "ESC"],
    ["areas", "bg.gpkg", 2, "NAME", "NEL"],
    ["areas", "bg.gpkg", 3, "NAME", "LF, CR"],
    ["areas", "bg.gpkg", 4, "NOTE", "LINE SEPARATOR"],
    ["areas.population", "population.csv", 2, "label", "NUL"],
    ["areas.population", "population.csv", 5, "label", "DEL"],
    ["overdose.0", "wonder.csv", 3, "County", "NUL"],
    ["overdose.0", "wonder.csv", 3, "Crude Rate", "TAB"],
    ["transit", "routes.txt", 2, "route_long_name", "PARAGRAPH SEPARATOR"],
    ["transit", "stops.txt", 2, "stop_name", "NUL"],
    ["transit", "stops.txt", 3, "stop_desc", "U+009B"],
    ["transit", "stops.txt", 3, "stop_name", "LF"],
]


def write_dirty_region(root: Path) -> Path:
    """Gridton with control characters in its areas, population, overdose and GTFS files."""
    cfg = write_region(root)
    raw = root / "raw"
    areas = gpd.read_file(raw / "bg.gpkg")
    areas["NAME"], areas["NOTE"] = AREA_NAMES, AREA_NOTES
    areas.to_file(raw / "bg.gpkg")
    ids = areas["GEOID"].tolist()
    labels = ["Block group\x00 one", "two", "three", "four\x7f"]
    pops = [1200, 800, 0, 2000]
    lines = ["GEOID,population,label"] + [
        f'{i},{p},"{lab}"' for i, p, lab in zip(ids, pops, labels, strict=True)
    ]
    (raw / "population.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (raw / "wonder.csv").write_text(WONDER, encoding="utf-8")
    feed = raw / "gtfs"
    feed.mkdir()
    for name, text in {
        "stops.txt": STOPS,
        "routes.txt": ROUTES,
        "trips.txt": TRIPS,
        "stop_times.txt": STOP_TIMES,
    }.items():
        (feed / name).write_text(text, encoding="utf-8")
    data = yaml.safe_load(cfg.read_text())
    data["areas"]["name_column"] = "NAME"
    data["counties"] = ["99001"]
    data["overdose"] = [
        {"path": "raw/wonder.csv", "format": "cdc_wonder", "period": "2018-2022 pooled",
         "source": "test", "fictional": True},
    ]  # fmt: skip
    data["transit"] = {"path": "raw/gtfs", "name": "Gridton Transit", "source": "test"}
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    return cfg


def control_cells(bundle: Bundle) -> list[tuple[str, str, str]]:
    """Every (layer, column, text) of a bundle whose text holds a control character."""
    found = []
    for name in bundle.layer_names:
        frame = bundle.read_layer(name)
        for col in frame.columns:
            if col == "geometry":
                continue
            for value in frame[col]:
                texts = list(value) if isinstance(value, list | tuple | np.ndarray) else [value]
                found += [(name, col, t) for t in texts if isinstance(t, str) and CONTROL.search(t)]
    return found


def report(geo: Path) -> list[list[object]]:
    """The rows of the bundle's ``reports/inputs_cleaned.csv``."""
    table = pd.read_csv(geo / REGION / "reports" / "inputs_cleaned.csv", keep_default_na=False)
    assert list(table.columns) == ["input", "file", "row", "column", "found"]
    return table.values.tolist()


def test_every_input_is_cleaned_where_read_and_each_cell_listed_with_its_row(
    tmp_path: Path,
) -> None:
    cfg = write_dirty_region(tmp_path)
    geo = tmp_path / "geo"
    res = atlas("build", cfg, "--geodata-dir", geo)
    assert res.returncode == 0, res.stderr
    bundle = Bundle.open(geo / REGION)
    assert control_cells(bundle) == []
    # Each reader cleaned its own file: the last guard before a layer found nothing to do.
    assert not re.search(r"layer '\w+': replaced control characters", res.stderr), res.stderr

    assert report(geo) == EXPECTED
    # One line per file, with its rows (a table's header being row 1, a GIS file's features).
    said = [ln for ln in res.stderr.splitlines() if "replaced control characters" in ln]
    for line in (
        "bg.gpkg: replaced control characters (CR, ESC, LF, LINE SEPARATOR, NEL) by spaces in "
        "4 cells of 4 features (features 1, 2, 3, 4)",
        "population.csv: replaced control characters (DEL, NUL) by spaces in 2 cells of 2 rows "
        "(rows 2, 5, the header being row 1)",
        "wonder.csv: replaced control characters (NUL, TAB) by spaces in 2 cells of 1 row "
        "(rows 3, the header being row 1)",
        "stops.txt: replaced control characters (LF, NUL, U+009B) by spaces in 3 cells of 2 "
        "rows (rows 2, 3, the header being row 1)",
    ):
        assert any(line in ln for ln in said), (line, said)
    (total,) = [ln for ln in said if "build gridton:" in ln]
    assert (
        "replaced control characters by spaces in 12 cells of 4 inputs (areas 4, "
        "areas.population 2, overdose.0 2, transit 4); each is listed in "
        "reports/inputs_cleaned.csv" in total
    ), total

    manifest = bundle.manifest
    assert manifest["inputs_cleaned"] == {
        "cells": 12,
        "inputs": {"areas": 4, "areas.population": 2, "overdose.0": 2, "transit": 4},
        "report": "reports/inputs_cleaned.csv",
    }
    stages = manifest["stages"]
    assert stages["areas"]["cleaned"] == 6 and stages["counties"]["cleaned"] == 2
    assert stages["transit"]["cleaned"] == 4 and stages["providers"]["cleaned"] == 0

    # The cleaned values are the ones used.
    areas = bundle.read_layer("areas").set_index("area_id")
    assert sorted(areas["name"]) == ["North East", "North West", "South East", "South West"]
    assert areas["population"].sum() == 4000
    stops = bundle.read_layer("transit_stops").set_index("stop_id")
    assert stops.loc["s1", "name"] == "Row 1 Street & Column 2 Avenue"
    assert stops.loc["s2", "name"] == "Central Station"
    assert stops.loc["s2", "description"] == "Platform A"
    counties = bundle.read_layer("counties")
    assert not counties.empty
    texts = [v for v in counties.to_numpy().ravel() if isinstance(v, str)]
    assert any("Gridton County" in t for t in texts), texts


def test_a_stage_command_keeps_the_rows_of_inputs_it_does_not_read(tmp_path: Path) -> None:
    cfg = write_dirty_region(tmp_path)
    geo = tmp_path / "geo"
    assert atlas("build", cfg, "--geodata-dir", geo).returncode == 0
    first = (geo / REGION).resolve()
    before = tree_digest(first)
    # The feed is fixed; `load-transit` re-reads it (and the overdose table), not the areas.
    feed = tmp_path / "raw" / "gtfs"
    fixed = STOPS.replace("\x00", "").replace("\x9b", "").replace('"Central\nStation"', "Central")
    (feed / "stops.txt").write_text(fixed, encoding="utf-8")
    (feed / "routes.txt").write_text(ROUTES.replace("\u2029", " "), encoding="utf-8")
    res = atlas("load-transit", cfg, "--geodata-dir", geo)
    assert res.returncode == 0, res.stderr
    assert report(geo) == [row for row in EXPECTED if row[0] != "transit"]
    manifest = Bundle.open(geo / REGION).manifest
    assert manifest["inputs_cleaned"]["cells"] == 8
    assert manifest["stages"]["transit"]["cleaned"] == 0
    assert manifest["stages"]["areas"]["cleaned"] == 6  # from the first build
    # The first build (still on disk) is byte-identical: nothing was written through its
    # hard links (the report, the layers, the quality report).
    assert (geo / REGION).resolve() != first and tree_digest(first) == before


def test_no_control_character_means_an_empty_report_and_no_line(tmp_path: Path) -> None:
    cfg = write_region(tmp_path)
    geo = tmp_path / "geo"
    res = atlas("build", cfg, "--geodata-dir", geo)
    assert res.returncode == 0, res.stderr
    assert report(geo) == []
    assert "replaced control characters" not in res.stderr
    assert "build gridton: no control character in any input" in res.stderr
    manifest = Bundle.open(geo / REGION).manifest
    assert manifest["inputs_cleaned"] == {
        "cells": 0,
        "inputs": {},
        "report": "reports/inputs_cleaned.csv",
    }


# -- build --if-missing while another build runs --------------------------------------------


def _start(cfg: Path, geo: Path, log: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "etl", "build", str(cfg), "--geodata-dir", str(geo)]
    with log.open("w") as err:
        return subprocess.Popen(
            [*cmd, "--no-progress", *extra],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


@pytest.mark.parametrize("extra", [(), ("--wait",)])
def test_if_missing_waits_for_a_running_build_and_then_finds_its_bundle(
    tmp_path: Path, extra: tuple[str, ...]
) -> None:
    """Two ``scripts/run.sh`` at once: both ``build --if-missing`` exit 0, one bundle built."""
    cfg = write_region(tmp_path)
    geo = tmp_path / "geo"
    first = _start(cfg, geo, tmp_path / "a.log", "--if-missing")
    tmp_a = wait_for_temp(geo, first, tmp_path / "a.log")
    first.send_signal(signal.SIGSTOP)  # it holds the lock, mid-way; no bundle yet
    try:
        assert not (geo / REGION).exists()
        second = _start(cfg, geo, tmp_path / "b.log", "--if-missing", *extra)
        wait_for_text(
            tmp_path / "b.log", f"waiting for the build of 'gridton' by pid {first.pid}", second
        )
        assert second.poll() is None  # still waiting, not refused
    finally:
        first.send_signal(signal.SIGCONT)
    first.communicate(timeout=120)
    assert first.returncode == 0, (tmp_path / "a.log").read_text()
    out, _ = second.communicate(timeout=120)
    log = (tmp_path / "b.log").read_text()
    assert second.returncode == 0, log
    assert error_lines(log) == [] and "Traceback" not in log
    assert f"bundle {geo / REGION} exists; nothing to do" in log
    assert out.strip() == str(geo / REGION)
    # Only the first build was made; the second built nothing and left nothing behind.
    builds = sorted(p.name for p in (geo / ".builds" / REGION).iterdir())
    assert builds == [tmp_a.name.removesuffix(".tmp")] and temp_folders(geo) == []
    assert Bundle.open(geo / REGION).manifest["build_id"] == builds[0]


# -- the other readers, in-process -----------------------------------------------------------


def test_places_zoning_reference_and_zipped_feed_readers_record_their_cells(
    tmp_path: Path,
) -> None:
    """Each reader cleans and records under its role, rows counted as the report says."""
    import zipfile

    import shapely

    from etl.config import PoiSource, ZoningConfig
    from etl.controls import cleaned_table, recording
    from etl.inputs.barriers import read_poi, read_zoning
    from etl.inputs.gtfs import read_stops_table
    from etl.inputs.tables import read_table

    places = tmp_path / "poi.csv"
    places.write_text(
        "X,Y,POI_TYPE,POI_NAME,LSN\n"
        '-83.0,40.0,Education - High,"West\x00 High",1 Main St\n'
        "-83.1,40.1,Education - Daycare,Little Ones,\"2 Elm\tSt\"\n",
        encoding="utf-8",
    )
    zones = tmp_path / "zones.gpkg"
    gpd.GeoDataFrame(
        {"ZONE": ["R-1", "C\x1b2"]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
        crs="EPSG:4326",
    ).to_file(zones)
    rules = tmp_path / "rules.csv"
    rules.write_text("ZONE,treatment_program\nR-1,prohibited\nC2,\"permitted\x85\"\n")
    ref = tmp_path / "ref.gpkg"
    gpd.GeoDataFrame(
        {"street": ["Main St", "Elm\u2028St"]},
        geometry=gpd.points_from_xy([-83.0, -83.1], [40.0, 40.1]),
        crs="EPSG:4326",
    ).to_file(ref)
    feed = tmp_path / "feed.zip"
    with zipfile.ZipFile(feed, "w") as zf:
        zf.writestr("gtfs/stops.txt", "stop_id,stop_name,stop_lat,stop_lon\na,\"A\x07B\",40,-83\n")

    with recording() as ledger:
        poi = read_poi(PoiSource(path=str(places)), places)
        zoned, table = read_zoning(
            ZoningConfig(path=str(zones), code_column="ZONE", rules=str(rules)),
            base_dir=tmp_path,
        )
        frame, _ = read_table(ref, fmt="gpkg", role="geocoding.reference.0")
        stops, _ = read_stops_table(feed, role="transit")
    assert sorted(poi["name"]) == ["Little Ones", "West High"]
    assert list(zoned["ZONE"]) == ["R-1", "C 2"] and list(table["treatment_program"]) == [
        "prohibited",
        "permitted",
    ]
    assert list(frame["street"]) == ["Main St", "Elm St"] and list(stops["stop_name"]) == ["A B"]
    assert cleaned_table(ledger.rows).values.tolist() == [
        ["geocoding.reference.0", "ref.gpkg", 2, "street", "LINE SEPARATOR"],
        ["places", "poi.csv", 2, "POI_NAME", "NUL"],
        ["places", "poi.csv", 3, "LSN", "TAB"],
        ["transit", "feed.zip!stops.txt", 2, "stop_name", "U+0007"],
        ["zoning", "zones.gpkg", 2, "ZONE", "ESC"],
        ["zoning.rules", "rules.csv", 3, "treatment_program", "NEL"],
    ]
    assert ("zoning", "zones.gpkg") in ledger.inputs and ("transit", "feed.zip!stops.txt") in (
        ledger.inputs
    )
