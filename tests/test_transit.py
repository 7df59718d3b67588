"""Transit stops from GTFS feeds: reading, rejects, routes per stop and the walk to care."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely

from etl._errors import InputError
from etl.inputs.transit import SHAPE_NEAR_M, read_gtfs_stops, stop_walk_minutes
from tests.conftest import FRANKLIN

CRS = "EPSG:32617"  # UTM 17N: metres around lon -83

STOPS = """\
stop_id,stop_code,stop_name,stop_desc,stop_lat,stop_lon,location_type,parent_station,\
wheelchair_boarding
HUB,,Central Station,,40.0000,-83.0000,1,,1
HUB-A,11,Central Station Platform A,,40.0001,-83.0001,0,HUB,0
HUB-E,,Central Station entrance,,40.0002,-83.0000,2,HUB,
S1,12,MAIN ST & 1ST AVE,,40.0000,-83.0100,,,2
S2,13,MAIN ST & 2ND AVE,,40.0000,-83.0200,0,,
S2,14,MAIN ST & 2ND AVE (again),,40.0000,-83.0210,0,,
S3,15,no coordinates,,,,0,,
S4,16,null island,,0,0,0,,
S5,17,swapped,,-83.0300,40.0000,0,,
S6,18,far away,,41.5000,-81.0000,0,,
S7,19,out of range,,140.0,-83.0,0,,
"""
ROUTES = """route_id,agency_id,route_short_name,route_long_name,route_type
R10,A,10,Main,3
R2,A,2,Crosstown,3
RX,A,,Airport Express,3
"""
TRIPS = """route_id,service_id,trip_id,shape_id
R10,WK,t1,sh1
R2,WK,t2,sh2
RX,WK,t3,sh3
"""
STOP_TIMES = """trip_id,arrival_time,departure_time,stop_id,stop_sequence
t1,07:00:00,07:00:00,HUB-A,1
t1,07:03:00,07:03:00,S1,2
t2,07:00:00,07:00:00,S1,1
t2,07:05:00,07:05:00,S2,2
"""
# sh1 runs along lat 40.0 (the stops lie on it); sh2 runs 0.0002 deg (~22 m) north of S1;
# sh3 runs 0.001 deg (~111 m) north: too far to serve anything.
SHAPES = """shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence
sh1,40.0000,-83.0300,1
sh1,40.0000,-82.9900,2
sh2,40.0002,-83.0150,2
sh2,40.0002,-83.0050,1
sh3,40.0010,-83.0300,1
sh3,40.0010,-82.9900,2
"""
REGION = shapely.box(-83.05, 39.98, -82.98, 40.02)


def write_feed(folder: Path, *, stop_times: bool = True, shapes: bool = True) -> Path:
    """A small GTFS feed as a folder."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"stops.txt": STOPS, "routes.txt": ROUTES, "trips.txt": TRIPS}
    if stop_times:
        files["stop_times.txt"] = STOP_TIMES
    if shapes:
        files["shapes.txt"] = SHAPES
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_stops_kept_and_rejected_with_reasons(tmp_path: Path) -> None:
    res = read_gtfs_stops(write_feed(tmp_path / "feed"), region=REGION, buffer_km=1, crs=CRS)
    assert list(res.stops["stop_id"]) == ["HUB", "HUB-A", "S1", "S2"]
    assert list(res.stops["kind"]) == ["station", "stop", "stop", "stop"]
    reasons = dict(zip(res.rejects["stop_id"], res.rejects["reason"], strict=True))
    assert reasons["HUB-E"].startswith("entrance or exit (location_type 2)")
    assert reasons["S2"] == "stop_id repeats an earlier row"
    assert reasons["S3"] == "stop_lat or stop_lon is missing or not a number"
    assert reasons["S4"] == "coordinates are (0, 0)"
    assert reasons["S5"].startswith("stop_lat and stop_lon look swapped")
    assert reasons["S6"] == "outside the region and its 1 km buffer"
    assert reasons["S7"] == "stop_lat or stop_lon out of range"
    # Every row is in the layer or the rejects, with its line in stops.txt.
    assert len(res.stops) + len(res.rejects) == 11
    assert sorted([*res.stops["row"], *res.rejects["row"]]) == list(range(2, 13))
    assert res.rejects.loc[res.rejects["stop_id"] == "S4", "row"].item() == 9


def test_wheelchair_inherits_from_the_station(tmp_path: Path) -> None:
    stops = read_gtfs_stops(write_feed(tmp_path / "feed")).stops.set_index("stop_id")
    assert stops.loc["HUB", "wheelchair"] == "yes"
    assert stops.loc["HUB-A", "wheelchair"] == "yes"  # 0 = ask the parent station
    assert stops.loc["S1", "wheelchair"] == "no"
    assert stops.loc["S2", "wheelchair"] == "unknown"


def test_routes_from_stop_times(tmp_path: Path) -> None:
    res = read_gtfs_stops(write_feed(tmp_path / "feed"), region=REGION, crs=CRS)
    routes = dict(zip(res.stops["stop_id"], res.stops["routes"], strict=True))
    assert res.feed["routes_from"] == "stop_times"
    assert routes == {"HUB": "10", "HUB-A": "10", "S1": "2, 10", "S2": "2"}  # natural order
    assert list(res.stops["n_routes"]) == [1, 1, 2, 1]


def test_routes_from_shapes_when_the_feed_has_no_timetable(tmp_path: Path) -> None:
    res = read_gtfs_stops(write_feed(tmp_path / "feed", stop_times=False), region=REGION, crs=CRS)
    routes = dict(zip(res.stops["stop_id"], res.stops["routes"], strict=True))
    assert res.feed["routes_from"] == "shapes"
    # sh1 passes through every stop; sh2 (~22 m north) is within SHAPE_NEAR_M of S1 only
    # (it ends 0.005 deg short of HUB and S2); sh3 (~111 m north) serves no stop.
    assert SHAPE_NEAR_M == 30.0
    assert routes == {"HUB": "10", "HUB-A": "10", "S1": "2, 10", "S2": "10"}


def test_no_routes_without_timetable_or_shapes(tmp_path: Path) -> None:
    res = read_gtfs_stops(write_feed(tmp_path / "feed", stop_times=False, shapes=False))
    assert res.feed["routes_from"] == "none"
    assert set(res.stops["routes"]) == {""}


@pytest.mark.parametrize("form", ["folder", "zip", "stops.txt"])
def test_a_feed_as_folder_zip_or_stops_file(tmp_path: Path, form: str) -> None:
    folder = write_feed(tmp_path / "feed")
    if form == "zip":
        path = tmp_path / "feed.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for f in folder.iterdir():
                zf.write(f, f"gtfs/{f.name}")  # members inside a folder, as some agencies ship
    else:
        path = folder if form == "folder" else folder / "stops.txt"
    res = read_gtfs_stops(path, region=REGION, crs=CRS)
    assert len(res.stops) == 4 and res.feed["routes_from"] == "stop_times"


def test_feed_errors_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="GTFS feed not found"):
        read_gtfs_stops(tmp_path / "nothing")
    bad_zip = tmp_path / "feed.zip"
    bad_zip.write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"feed\.zip: not a zip file"):
        read_gtfs_stops(bad_zip)
    folder = tmp_path / "latin"
    folder.mkdir()
    (folder / "stops.txt").write_bytes(
        "stop_id,stop_name,stop_lat,stop_lon\nA,Plaza,40,-83\nB,Niño,40,-83\n".encode("latin-1")
    )
    with pytest.raises(InputError, match=r"latin/stops.txt: line 3 is not UTF-8"):
        read_gtfs_stops(folder)
    (folder / "stops.txt").write_text("stop_id,stop_name,lat,lon\nA,Plaza,40,-83\n")
    with pytest.raises(InputError, match=r"no column 'stop_lat', 'stop_lon'; the header has"):
        read_gtfs_stops(folder)
    (folder / "stops.txt").write_text("\ufeffstop_id,stop_lat,stop_lon\nA,40,-83\n")
    assert list(read_gtfs_stops(folder).stops["stop_id"]) == ["A"]  # a BOM is allowed


def test_walk_minutes_follow_the_node_times() -> None:
    import geopandas as gpd

    from tests.test_access import _random_grid

    net = _random_grid(5)
    times = {"methadone": np.arange(net.n_nodes, dtype=np.float32) * 60.0}
    near = shapely.Point(net.x[7] + 30.0, net.y[7])  # 30 m east of node 7
    far = shapely.Point(net.x[0] + 5000.0, net.y[0])
    stops = gpd.GeoDataFrame(
        {"stop_id": ["a", "b"], "walk_min_old": [1.0, 2.0]},
        geometry=[near, far],
        crs=net.crs,
    ).to_crs("EPSG:4326")
    out = stop_walk_minutes(stops, net, times, crs=net.crs, max_snap_m=1000.0)
    assert "walk_min_old" not in out.columns  # a re-run replaces earlier columns
    snap = shapely.distance(near, shapely.points(net.x, net.y))
    node = int(np.argmin(snap))
    expected = (node * 60.0 + snap[node] / net.walk_speed_mps) / 60.0
    assert out["walk_min_methadone"].iloc[0] == pytest.approx(expected, abs=0.05)
    assert np.isnan(out["walk_min_methadone"].iloc[1])  # 5 km from any footway


@pytest.mark.shared
def test_franklin_cota_feed() -> None:
    feed = FRANKLIN / "transit"
    if not (feed / "stops.txt").exists():
        pytest.skip(f"{feed} not present (../shared holds the real Franklin County data)")
    res = read_gtfs_stops(feed, crs=CRS)
    assert len(res.stops) == 2985 and res.rejects.empty
    assert res.feed["routes_from"] == "shapes"  # the sample has no stop_times.txt
    assert res.feed["agencies"] == ["Central Ohio Transit Authority"]
    assert (res.stops["n_routes"] > 0).sum() >= 2950
    high_long = res.stops.loc[res.stops["name"] == "N HIGH ST & W LONG ST", "routes"].iloc[0]
    assert {"1", "2", "CMAX"} <= set(high_long.split(", "))


def test_exports_describe_the_stop_fields() -> None:
    from etl.outputs.export import describe_field, shapefile_names

    unit, meaning = describe_field("transit_stops", "walk_min_buprenorphine")
    assert unit == "minutes" and "nearest buprenorphine prescriber" in meaning
    assert describe_field("transit_stops", "kind")[1] == "stop, or station (a group of platforms)"
    names = shapefile_names(["walk_min_naloxone", "walk_min_naltrexone", "routes_from"])
    assert names == {
        "walk_min_naloxone": "wk_min_nlx",
        "walk_min_naltrexone": "wk_min_ntx",
        "routes_from": "routes_fro",
    }
