"""Tests for etl.demo.generate: the raw inputs of the fictional demo region, Millbrook County."""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
import sqlite3
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import osmium
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point

import etl.demo.generate as demo_module
from etl._errors import ConfigError, InputError
from etl.demo.generate import (
    BRIDGE_NAMES,
    CLIPPED_NAME,
    COUNTY_FIPS,
    COUNTY_HALF_M,
    FILES,
    FRAGMENT_NAME,
    LOCAL_CRS,
    MISSING_NODE_ID,
    generate_demo,
)

ROOT = Path(__file__).resolve().parents[1]
TO_UTM = Transformer.from_crs("EPSG:4326", LOCAL_CRS, always_xy=True)
COUNTY_AREA = (2 * COUNTY_HALF_M) ** 2
DRIVE = {
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "service",
    "living_street",
}
NO_WALK = {"motorway", "motorway_link"}


# ---------------------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate_demo(tmp_path_factory.mktemp("gen") / "demo", seed=7)


@dataclass
class Osm:
    nodes: dict[int, tuple[float, float]]  # id -> UTM x, y
    node_tags: dict[int, dict[str, str]]
    ways: list[tuple[int, list[int], dict[str, str]]]
    bounds: tuple[float, float, float, float]  # lon/lat


def read_osm(path: Path) -> Osm:
    fp = osmium.FileProcessor(str(path))
    box = fp.header.box()
    lonlat: dict[int, tuple[float, float]] = {}
    node_tags: dict[int, dict[str, str]] = {}
    ways = []
    for obj in fp:
        if obj.is_node():
            lonlat[obj.id] = (obj.location.lon, obj.location.lat)
            if len(obj.tags):
                node_tags[obj.id] = dict(obj.tags)
        elif obj.is_way():
            ways.append((obj.id, [n.ref for n in obj.nodes], dict(obj.tags)))
    ids = list(lonlat)
    x, y = TO_UTM.transform(*np.array([lonlat[i] for i in ids]).T)
    nodes = dict(zip(ids, zip(x.tolist(), y.tolist(), strict=True), strict=True))
    bounds = (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)
    return Osm(nodes, node_tags, ways, bounds)


@pytest.fixture(scope="module")
def osm(demo: dict[str, Path]) -> Osm:
    return read_osm(demo["osm"])


def drive_graph(o: Osm) -> nx.DiGraph:
    g = nx.DiGraph()
    for _, refs, tags in o.ways:
        if tags.get("highway") not in DRIVE:
            continue
        refs = [r for r in refs if r in o.nodes]  # cut at the missing node
        g.add_nodes_from(refs)
        for u, v in itertools.pairwise(refs):
            g.add_edge(u, v)
            if tags.get("oneway") != "yes":
                g.add_edge(v, u)
    return g


def walk_graph(o: Osm) -> nx.Graph:
    g = nx.Graph()
    for _, refs, tags in o.ways:
        hw = tags.get("highway")
        if hw is None or hw in NO_WALK or tags.get("foot") == "no":
            continue
        refs = [r for r in refs if r in o.nodes]
        g.add_nodes_from(refs)
        g.add_edges_from(itertools.pairwise(refs))
    return g


def fragment_nodes(o: Osm) -> set[int]:
    frag = {n for _, refs, t in o.ways if t.get("name") == FRAGMENT_NAME for n in refs}
    assert frag
    # ways hanging off the fragment (its driveway) belong to it too
    grown = True
    while grown:
        grown = False
        for _, refs, t in o.ways:
            if t.get("highway") and frag.intersection(refs) and not frag.issuperset(refs):
                frag.update(refs)
                grown = True
    return frag


def check_network(o: Osm) -> None:
    """The structural promises of the street network, for any seed."""
    # one strongly connected drive network plus the deliberate fragment
    g = drive_graph(o)
    frag = fragment_nodes(o)
    largest = max(nx.strongly_connected_components(g), key=len)
    assert set(g.nodes) - largest == frag
    assert len(largest) > 5000
    weak = list(nx.weakly_connected_components(g))
    assert len(weak) == 2
    assert frag in weak
    # walking: one network plus the fragment
    w = walk_graph(o)
    comps = sorted(nx.connected_components(w), key=len, reverse=True)
    assert len(comps) == 2
    assert comps[1] == frag
    # the river is crossed only on bridges, at three places
    river = next(refs for _, refs, t in o.ways if t.get("waterway") == "river")
    river_line = LineString([o.nodes[n] for n in river])
    crossings: list[Point] = []
    crossing_names: set[str] = set()
    for _, refs, tags in o.ways:
        if "highway" not in tags:
            continue
        pts = [o.nodes[r] for r in refs if r in o.nodes]
        line = LineString(pts)
        if line.intersects(river_line):
            assert tags.get("bridge") == "yes", tags
            crossing_names.add(tags["name"])
            crossings.append(line.intersection(river_line).centroid)
    assert crossing_names == set(BRIDGE_NAMES)
    places: list[Point] = []
    for p in crossings:
        if all(p.distance(q) > 200.0 for q in places):
            places.append(p)
    assert len(places) == 3
    assert min(p.distance(q) for p in places for q in places if p is not q) > 1000.0


# ---------------------------------------------------------------------------------------
# files, determinism, atomic writes
# ---------------------------------------------------------------------------------------


def test_every_role_written(demo: dict[str, Path]) -> None:
    assert set(demo) == set(FILES)
    roles = {
        "osm",
        "otp",
        "moud",
        "syringe",
        "pharmacies",
        "blockgroups",
        "population",
        "overdose",
        "poi",
        "zoning",
        "zoning_rules",
    }
    assert roles <= set(demo)
    for role, path in demo.items():
        assert path.is_file(), role
        assert path.stat().st_size > 100, role
    assert demo["osm"].name == "millbrook.osm"
    assert demo["blockgroups"].name == "tl_2099_99001_bg.zip"


def _digests(files: dict[str, Path]) -> dict[str, str]:
    return {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in files.items()}


def test_same_seed_gives_identical_bytes(demo: dict[str, Path], tmp_path: Path) -> None:
    again = generate_demo(tmp_path / "again", seed=7)
    assert _digests(again) == _digests(demo)
    other = generate_demo(tmp_path / "other", seed=8)
    differ = {k for k, v in _digests(other).items() if v != _digests(demo)[k]}
    assert {"osm", "blockgroups", "population", "poi", "pharmacies"} <= differ


def test_regenerating_replaces_the_folder_atomically(tmp_path: Path) -> None:
    out = tmp_path / "raw" / "demo"
    first = generate_demo(out, seed=7)
    (out / "stale.txt").write_text("left over", encoding="utf-8")
    second = generate_demo(out, seed=7)
    assert first == second
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["demo"]  # no temp folders left
    assert oct(out.stat().st_mode & 0o777) == oct(0o755)


def test_a_failed_run_leaves_the_previous_folder_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "demo"
    files = generate_demo(out, seed=7)
    before = _digests(files)

    def half_written(root: Path, seed: int) -> None:
        (root / "osm").mkdir()
        (root / "osm" / "millbrook.osm").write_text("<osm", encoding="utf-8")
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr(demo_module, "_generate_into", half_written)
    with pytest.raises(OSError, match="disk full"):
        generate_demo(out, seed=7)
    assert _digests(files) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_refuses_to_replace_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match="not a generated demo folder"):
        generate_demo(precious)
    assert (precious / "thesis.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_rejects_bad_seed(tmp_path: Path, seed: object) -> None:
    with pytest.raises(ConfigError, match="seed"):
        generate_demo(tmp_path / "demo", seed=seed)  # type: ignore[arg-type]


def test_importable_and_runs_from_a_fresh_interpreter(tmp_path: Path) -> None:
    code = f"from etl.demo.generate import generate_demo; generate_demo({str(tmp_path / 'd')!r})"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env, timeout=120)
    assert (tmp_path / "d" / "osm" / "millbrook.osm").is_file()


def test_everything_says_fictional(demo: dict[str, Path]) -> None:
    readme = demo["readme"].read_text(encoding="utf-8")
    assert "FICTIONAL" in readme
    assert "seed 7" in readme
    head = demo["osm"].read_text(encoding="utf-8")[:2000]
    assert "fictional" in head.lower()
    assert "fictional" in demo["overdose"].read_text(encoding="utf-8-sig").lower()
    assert "fictional" in demo["zoning_rules"].read_text(encoding="utf-8").lower()
    for role, stem in (("blockgroups", "tl_2099_99001_bg"), ("zoning", "zoning")):
        with zipfile.ZipFile(demo[role]) as zf:
            assert "FICTIONAL" in zf.read(f"{stem}.shp.xml").decode("utf-8")
    with sqlite3.connect(demo["moud"]) as con:
        (description,) = con.execute(
            "SELECT description FROM gpkg_contents WHERE table_name = 'moud'"
        ).fetchone()
    assert "FICTIONAL" in description
    otp = pd.read_csv(demo["otp"], encoding="latin-1")
    assert otp.NOTE.str.contains("Fictional").all()


# ---------------------------------------------------------------------------------------
# the street network
# ---------------------------------------------------------------------------------------


def test_osm_header_nodes_and_fictional_note(osm: Osm) -> None:
    road_nodes = {r for _, refs, t in osm.ways if "highway" in t for r in refs if r in osm.nodes}
    assert 6000 <= len(road_nodes) <= 15000
    first = min(osm.nodes)
    assert "fictional" in osm.node_tags[first]["note"].lower()
    lon0, lat0, lon1, lat1 = osm.bounds
    assert lon0 < -40.0 < lon1
    assert lat0 < 40.0 < lat1


def test_osm_versions_and_timestamps_are_fixed(demo: dict[str, Path]) -> None:
    text = demo["osm"].read_text(encoding="utf-8")
    stamps = set(re.findall(r'timestamp="([^"]+)"', text))
    assert stamps == {"2020-01-01T00:00:00Z"}
    assert {v for _, v in re.findall(r'<(node|way) [^>]*version="([^"]+)"', text)} == {"1"}


def test_exactly_one_way_is_clipped_at_the_bounding_box(osm: Osm) -> None:
    clipped = [(wid, refs, t) for wid, refs, t in osm.ways if any(r not in osm.nodes for r in refs)]
    assert len(clipped) == 1
    _, refs, tags = clipped[0]
    assert tags["name"] == CLIPPED_NAME
    assert refs[-1] == MISSING_NODE_ID
    assert all(r in osm.nodes for r in refs[:-1])


def test_network_structure(osm: Osm) -> None:
    check_network(osm)


def test_network_structure_holds_for_another_seed(tmp_path: Path) -> None:
    files = generate_demo(tmp_path / "demo", seed=12345)
    check_network(read_osm(files["osm"]))


def test_road_classes_oneways_and_speeds(osm: Osm) -> None:
    classes = {t.get("highway") for _, _, t in osm.ways}
    assert {
        "motorway",
        "motorway_link",
        "trunk",
        "primary",
        "secondary",
        "tertiary",
        "unclassified",
        "residential",
        "service",
        "footway",
        "path",
    } <= classes
    by_name: dict[str, list[list[int]]] = {}
    for _, refs, t in osm.ways:
        by_name.setdefault(t.get("name", ""), []).append(refs)
        if t.get("highway") in ("motorway", "motorway_link"):
            assert t.get("oneway") == "yes"
    # the couplet: 2nd Street runs south, 3rd Street runs north, both one-way
    for name, sign in (("2nd Street", -1), ("3rd Street", 1)):
        tags = [t for _, _, t in osm.ways if t.get("name") == name]
        assert tags and all(t["oneway"] == "yes" for t in tags)
        for refs in by_name[name]:
            dy = osm.nodes[refs[-1]][1] - osm.nodes[refs[0]][1]
            assert math.copysign(1, dy) == sign
    links = [t for _, _, t in osm.ways if t.get("highway") == "motorway_link"]
    assert len(links) == 8  # two diamond interchanges
    roads = [t for _, _, t in osm.ways if t.get("highway") in DRIVE - {"service"}]
    speeds = [t["maxspeed"] for t in roads if "maxspeed" in t]
    assert "35 mph" in speeds
    assert all(re.fullmatch(r"\d+ mph", s) for s in speeds)
    assert len(speeds) < 0.3 * len(roads)
    circles = [t for t in osm.node_tags.values() if t.get("highway") == "turning_circle"]
    assert len(circles) > 20


# ---------------------------------------------------------------------------------------
# census
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bgs(demo: dict[str, Path]) -> gpd.GeoDataFrame:
    return gpd.read_file(f"zip://{demo['blockgroups']}!tl_2099_99001_bg.shp")


def test_block_group_shapefile_layout(demo: dict[str, Path], bgs: gpd.GeoDataFrame) -> None:
    with zipfile.ZipFile(demo["blockgroups"]) as zf:
        names = set(zf.namelist())
        assert {f"tl_2099_99001_bg.{e}" for e in ("shp", "dbf", "shx", "prj", "cpg")} <= names
        assert zf.read("tl_2099_99001_bg.cpg").decode().strip() == "UTF-8"
    assert bgs.crs.to_epsg() == 4269
    assert bgs.is_valid.all()
    assert 60 <= len(bgs) <= 100
    for col in (
        "STATEFP",
        "COUNTYFP",
        "TRACTCE",
        "BLKGRPCE",
        "GEOID",
        "NAMELSAD",
        "ALAND",
        "AWATER",
    ):
        assert col in bgs.columns
    assert bgs.GEOID.str.fullmatch(r"99001\d{7}").all()
    assert (bgs.GEOID == bgs.STATEFP + bgs.COUNTYFP + bgs.TRACTCE + bgs.BLKGRPCE).all()
    assert bgs.GEOID.is_unique
    assert (bgs.ALAND > 0).all()
    assert bgs.AWATER.sum() > 0


def test_block_groups_tile_the_county(bgs: gpd.GeoDataFrame) -> None:
    utm = bgs.to_crs(LOCAL_CRS)
    union = shapely.union_all(utm.geometry.values)
    assert union.area == pytest.approx(COUNTY_AREA, rel=1e-4)
    assert utm.geometry.area.sum() == pytest.approx(union.area, rel=1e-6)  # no overlaps
    assert union.geom_type == "Polygon" and not list(union.interiors)  # no holes
    assert utm.geometry.is_valid.all()
    area_km2 = utm.geometry.area / 1e6
    assert area_km2.min() > 0.2
    assert area_km2.max() < 40.0


def test_population(demo: dict[str, Path], bgs: gpd.GeoDataFrame) -> None:
    pop = pd.read_csv(demo["population"], dtype={"GEOID": str})
    assert pop.GEOID.str.len().eq(12).all()
    assert set(pop.GEOID) == set(bgs.GEOID)
    assert 140_000 <= pop.population.sum() <= 160_000
    assert (pop.population == 0).sum() == 2
    assert pop.NAME.str.contains("fictional").all()
    merged = bgs.to_crs(LOCAL_CRS).merge(pop, on="GEOID")
    density = merged.population / (merged.geometry.area / 1e6)
    assert density.max() > 2000  # town
    assert density[merged.population > 0].min() < 50  # countryside


# ---------------------------------------------------------------------------------------
# providers
# ---------------------------------------------------------------------------------------


def _utm(lon: pd.Series, lat: pd.Series) -> np.ndarray:
    x, y = TO_UTM.transform(lon.to_numpy(float), lat.to_numpy(float))
    return np.column_stack([x, y])


@pytest.fixture(scope="module")
def county(bgs: gpd.GeoDataFrame) -> shapely.Geometry:
    return shapely.union_all(bgs.to_crs(LOCAL_CRS).geometry.values)


def test_otp_directory_is_latin1(demo: dict[str, Path], county: shapely.Geometry, osm: Osm) -> None:
    with pytest.raises(UnicodeDecodeError):
        demo["otp"].read_bytes().decode("utf-8")
    otp = pd.read_csv(demo["otp"], encoding="latin-1", dtype={"POSTAL": str})
    assert list(otp.columns[:7]) == [
        "ID",
        "ADDRESS",
        "CITY",
        "STATE",
        "POSTAL",
        "Latitude",
        "Longitude",
    ]
    assert len(otp) == 3
    assert otp.ID.str.contains("Clínica Esperanza").any()
    assert (otp.STATE == "ZZ").all()
    assert otp.POSTAL.str.fullmatch(r"99\d{3}").all()
    xy = _utm(otp.Longitude, otp.Latitude)
    assert shapely.contains_xy(county, xy[:, 0], xy[:, 1]).all()
    # all in or near the town centre, east of the river
    river = next(refs for _, refs, t in osm.ways if t.get("waterway") == "river")
    river_x = np.mean([osm.nodes[n][0] for n in river])
    centre = np.array(TO_UTM.transform(-40.0, 40.0))
    assert (xy[:, 0] > river_x + 1000).all()
    assert (np.hypot(*(xy - centre).T) < 5000).all()


def test_moud_geopackage(demo: dict[str, Path], county: shapely.Geometry) -> None:
    assert pyogrio.list_layers(demo["moud"])[:, 0].tolist() == ["moud"]
    moud = gpd.read_file(demo["moud"], layer="moud")
    assert moud.crs.to_epsg() == 4326
    assert set(moud.geom_type) == {"Point"}
    for col in ("name1", "street1", "city", "state", "zip", "category", "phone"):
        assert col in moud.columns
    counts = moud.category.value_counts().to_dict()
    assert counts == {"buprenorphine": 15, "naltrexone/vivitrol": 8, "methadone": 1}
    xy = _utm(moud.geometry.x, moud.geometry.y)
    assert shapely.contains_xy(county, xy[:, 0], xy[:, 1]).all()
    assert moud.phone.str.contains(r"555-01\d\d").all()
    # the methadone row repeats the first OTP of the directory at the same address
    otp = pd.read_csv(demo["otp"], encoding="latin-1")
    meth = moud[moud.category == "methadone"].iloc[0]
    number, rest = otp.ADDRESS[0].split(" ", 1)
    assert meth.street1.startswith(number + " ")
    assert meth.street1.split(" ")[2] == rest.split(" ")[1]  # "E Main St" ~ "East Main Street"
    o = _utm(otp.Longitude[:1], otp.Latitude[:1])[0]
    m = _utm(
        moud.geometry.x[moud.category == "methadone"], moud.geometry.y[moud.category == "methadone"]
    )[0]
    assert 0 < np.hypot(*(o - m)) < 15.0


def test_syringe_services(demo: dict[str, Path], county: shapely.Geometry) -> None:
    ssp = pd.read_csv(demo["syringe"], encoding="utf-8", dtype={"zip": str})
    assert list(ssp.columns[:9]) == [
        "name",
        "address",
        "city",
        "zip",
        "phone",
        "latitude",
        "longitude",
        "show_exact",
        "hours",
    ]
    assert len(ssp) == 3
    assert ssp.show_exact.tolist().count("no") == 1
    xy = _utm(ssp.longitude, ssp.latitude)
    assert shapely.contains_xy(county, xy[:, 0], xy[:, 1]).all()


def test_pharmacies_with_two_bad_rows(demo: dict[str, Path], county: shapely.Geometry) -> None:
    ph = pd.read_csv(demo["pharmacies"], encoding="utf-8", dtype={"zip": str})
    assert list(ph.columns[:8]) == [
        "name",
        "address",
        "city",
        "zip",
        "phone",
        "latitude",
        "longitude",
        "naloxone",
    ]
    assert len(ph) == 22
    assert set(ph.naloxone) == {"Y", "N"}
    empty = ph[ph.latitude.isna()]
    assert empty.name.tolist() == ["Quickstop Pharmacy"]
    assert empty.longitude.isna().all() and empty.address.isna().all()
    swapped = ph[ph.latitude < 0]
    assert swapped.name.tolist() == ["Lantern Pharmacy"]
    assert swapped.longitude.iloc[0] == pytest.approx(40.0, abs=0.2)
    good = ph.drop(index=[*empty.index, *swapped.index])
    xy = _utm(good.longitude, good.latitude)
    assert shapely.contains_xy(county, xy[:, 0], xy[:, 1]).all()
    fixed = _utm(swapped.latitude, swapped.longitude)  # swapped back, it lies in the county
    assert shapely.contains_xy(county, fixed[:, 0], fixed[:, 1]).all()


# ---------------------------------------------------------------------------------------
# overdose, places, zoning
# ---------------------------------------------------------------------------------------


WONDER_COLUMNS = [
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


def test_cdc_wonder_style_export(demo: dict[str, Path]) -> None:
    raw = demo["overdose"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    df = pd.read_csv(demo["overdose"], dtype=str)
    assert list(df.columns) == WONDER_COLUMNS
    data = df[df["State Code"].notna()]
    notes = df[df["State Code"].isna()]
    assert data["County Code"].tolist() == ["99001", "99003", "99005", "99007", "99009"]
    assert (data.Deaths == "Suppressed").sum() == 1
    assert notes.State.iloc[0] == "---" and notes.State.iloc[-1] == "---"
    mill = data[data["County Code"] == COUNTY_FIPS].iloc[0]
    assert int(mill.Deaths) >= 20
    assert float(mill["Crude Rate"]) == pytest.approx(
        int(mill.Deaths) / int(mill.Population) * 1e5, abs=0.05
    )


@pytest.mark.shared
def test_cdc_wonder_columns_match_the_real_export(franklin: Path) -> None:
    real = franklin / "overdose" / "cdc_wonder_drug_deaths_county_2009-2018.csv"
    assert list(pd.read_csv(real, nrows=1).columns) == WONDER_COLUMNS


@pytest.mark.shared
def test_poi_columns_are_a_subset_of_the_real_file(franklin: Path, demo: dict[str, Path]) -> None:
    real = pd.read_csv(franklin / "places" / "columbus_points_of_interest.csv", nrows=1)
    ours = pd.read_csv(demo["poi"], nrows=1)
    assert set(ours.columns) <= set(real.columns)


_ABBR = {
    "Street": "ST",
    "Road": "RD",
    "Avenue": "AVE",
    "Drive": "DR",
    "Lane": "LN",
    "Court": "CT",
    "Circle": "CIR",
    "Way": "WAY",
    "Place": "PL",
    "Terrace": "TER",
    "Pike": "PIKE",
    "Parkway": "PKWY",
    "Trail": "TRL",
    "Highway": "HWY",
}


def _lsn_street(name: str) -> str:
    words = name.split(" ")
    if len(words) > 2 and words[0] in ("North", "South", "East", "West"):
        words[0] = words[0][0]
    words[-1] = _ABBR.get(words[-1], words[-1])
    return " ".join(words).upper()


def test_points_of_interest(demo: dict[str, Path], osm: Osm) -> None:
    raw = demo["poi"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    poi = pd.read_csv(demo["poi"], dtype={"LSN": str, "PHONE_NUM": str})
    for col in ("X", "Y", "LSN", "POI_NAME", "POI_TYPE"):
        assert col in poi.columns
    types = poi.POI_TYPE.value_counts()
    schools = types[["Education - Elementary", "Education - Middle", "Education - High"]]
    assert (schools > 0).all() and schools.sum() == 25
    assert types["Education - Daycare"] == 30
    assert poi.LSN.notna().mean() > 0.9
    assert poi.POI_SOURCE.str.contains("\n").sum() == 1  # a multi-line field, as in the real file
    # house numbers follow the position along the street
    lines: dict[str, list[LineString]] = {}
    for _, refs, t in osm.ways:
        if "highway" in t and "name" in t:
            pts = [osm.nodes[r] for r in refs if r in osm.nodes]
            lines.setdefault(_lsn_street(t["name"]), []).append(LineString(pts))
    merged = {k: shapely.line_merge(shapely.union_all(v)) for k, v in lines.items()}
    xy = _utm(poi.X, poi.Y)
    checked = 0
    streets = poi.LSN.dropna().str.split(" ", n=1).str[1]
    for street, group in poi.loc[streets.index].groupby(streets):
        assert street in merged, street
        line = merged[street]
        if len(group) < 4 or line.geom_type != "LineString":
            continue
        pos = [line.project(Point(*xy[i])) for i in group.index]
        nums = group.LSN.str.split(" ").str[0].astype(int).to_numpy()
        rho = np.corrcoef(np.argsort(np.argsort(pos)), np.argsort(np.argsort(nums)))[0, 1]
        assert abs(rho) > 0.95, street
        checked += 1
    assert checked >= 5
    # one child care centre lies within 500 ft of the first opioid treatment program
    otp = pd.read_csv(demo["otp"], encoding="latin-1")
    o = _utm(otp.Longitude[:1], otp.Latitude[:1])[0]
    care = xy[(poi.POI_TYPE == "Education - Daycare").to_numpy()]
    assert np.hypot(*(care - o).T).min() < 152.4


def test_zoning(demo: dict[str, Path]) -> None:
    zon = gpd.read_file(f"zip://{demo['zoning']}!zoning.shp")
    assert zon.crs.to_epsg() == 4269
    assert zon.is_valid.all()
    assert zon.to_crs(LOCAL_CRS).is_valid.all()
    assert {"R-1", "R-2", "C-1", "C-2", "M-1", "AG", "PUD"} <= set(zon.ZONE_CODE)
    utm = zon.to_crs(LOCAL_CRS)
    union = shapely.union_all(utm.geometry.values)
    assert union.area == pytest.approx(COUNTY_AREA, rel=1e-4)
    assert utm.geometry.area.sum() == pytest.approx(union.area, rel=1e-5)
    rules = pd.read_csv(demo["zoning_rules"], encoding="utf-8")
    assert list(rules.columns) == [
        "zone_code",
        "description",
        "treatment_program",
        "clinic",
        "note",
    ]
    assert set(rules.zone_code) == set(zon.ZONE_CODE)
    allowed = {"permitted", "conditional", "prohibited"}
    assert set(rules.treatment_program) <= allowed and set(rules.clinic) <= allowed
    assert set(rules.treatment_program) == allowed
