"""The map app on a real bundle: layers as GeoJSON, live deserts, look-ups, routes, callbacks.

One session fixture builds the fictional demo region (Millbrook County) into a temporary
folder with the real pipeline (about 10 s); every test reads that bundle.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import shape

os.environ.setdefault("ACCESS_ATLAS_WARM", "0")

from etl.config import load_config
from etl.engine.access import snap_points
from etl.engine.isochrones import band_polygons, desert_polygon
from etl.pipeline import run_build
from tests.dash_support import call as _call
from viewmodel import data as app_data
from viewmodel.data import (
    Payload,
    access_summary,
    area_at,
    band_people,
    class_breaks,
    feature_collection,
    map_options,
    people_times,
    region_data,
    threshold_summary,
    time_bands,
    time_histogram,
)
from viewmodel.lookup import (
    find_place,
    nearest_care,
    parse_coordinates,
    route_seconds,
    route_to,
)
from viewmodel.state import default_state, parse_state

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def geo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo region built into a temporary geodata folder (raw inputs generated there too)."""
    root = tmp_path_factory.mktemp("atlas-app")
    (root / "configs").mkdir()
    cfg_path = root / "configs" / "demo.yaml"
    shutil.copy(ROOT / "geodata" / "configs" / "demo.yaml", cfg_path)
    run_build(load_config(cfg_path), root / "geodata", progress=False)
    return root / "geodata"


@pytest.fixture(scope="session")
def rd(geo: Path) -> app_data.RegionData:
    return region_data(geo, "demo")


def _geojson(payload: Payload) -> dict[str, Any]:
    return json.loads(gzip.decompress(payload.body))


# ---------------------------------------------------------------------------------------
# GeoJSON encoding
# ---------------------------------------------------------------------------------------


def test_feature_collection_rounds_and_drops_empty_geometries() -> None:
    data = feature_collection(
        [shapely.Point(-83.123456789, 40.987654321), None, shapely.Polygon()],
        [{"a": np.float64(1.5), "b": math.nan}, {"a": 2}, {"a": 3}],
    )
    fc = json.loads(data)
    assert len(fc["features"]) == 1
    feature = fc["features"][0]
    assert feature["geometry"]["coordinates"] == [-83.12346, 40.98765]
    assert feature["properties"] == {"a": 1.5, "b": None}


def test_feature_collection_checks_lengths() -> None:
    with pytest.raises(ValueError, match="2 geometries but 1 property rows"):
        feature_collection([shapely.Point(0, 0), shapely.Point(1, 1)], [{}])


def test_payload_is_gzip_with_a_stable_etag() -> None:
    data = feature_collection([shapely.Point(1, 2)], [{"x": 1}])
    a, b = Payload.from_geojson(data), Payload.from_geojson(data)
    assert a.etag == b.etag and a.body == b.body
    assert gzip.decompress(a.body) == data
    assert a.features == 1


def test_class_breaks_are_increasing_and_rounded() -> None:
    breaks = class_breaks(np.array([1.234, 5.67, 10.1, 22.9, 48.0, np.nan, 100.0]), k=4)
    assert breaks == sorted(breaks)
    assert len(breaks) == 3
    assert all(b == float(f"{b:.2g}") for b in breaks)
    assert class_breaks(np.array([np.nan])) == []


# ---------------------------------------------------------------------------------------
# Live deserts from minute bands
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "mode"), [("methadone", "drive"), ("syringe_services", "walk")]
)
def test_minute_bands_give_the_engine_desert_and_bands_at_any_threshold(
    rd: app_data.RegionData, category: str, mode: str
) -> None:
    cells, best = rd.cell_times(category, mode)
    minutes, polys = time_bands(cells, best)
    assert minutes == sorted(minutes)
    for threshold in (5, 10, 17, 30):
        desert = shapely.union_all(
            [p for m, p in zip(minutes, polys, strict=True) if m > threshold]
        )
        expected = desert_polygon(cells, best, threshold)
        assert (
            shapely.symmetric_difference(desert, expected).area
            < 1e-9 * max(expected.area, 1e-9) + 1e-12
        )
    for band, expected in zip((10, 20, 30), band_polygons(cells, best, [10, 20, 30]), strict=True):
        inside = shapely.union_all([p for m, p in zip(minutes, polys, strict=True) if m <= band])
        assert shapely.symmetric_difference(inside, expected).area < 1e-12


def test_time_bands_put_unreachable_cells_in_the_no_route_band() -> None:
    cells = np.array([0x89283082803FFFF, 0x89283082807FFFF, 0x8928308280BFFFF], dtype=np.uint64)
    minutes, polys = time_bands(cells, np.array([30.0, 4000.0, np.inf]), max_min=60)
    assert minutes == [1, 61, app_data.NO_ROUTE]
    assert all(p.geom_type == "MultiPolygon" and not p.is_empty for p in polys)


def test_people_summary_matches_the_bundle_at_configured_thresholds(
    rd: app_data.RegionData,
) -> None:
    summary = rd.manifest["stages"]["access"]["summary"]
    checked = 0
    for key, entry in summary.items():
        if "threshold_min" not in entry:
            continue
        category, mode = key.rsplit("_", 1)
        s = rd.summary(category, mode, entry["threshold_min"])
        assert round(s.within) == entry["people_within"]
        assert round(s.beyond) == entry["people_in_desert"]
        checked += 1
    assert checked >= 6


def test_people_times_leave_far_people_uncovered() -> None:
    t = people_times(
        np.array([0.0, 60.0, np.inf]),
        node=np.array([0, 1, 2, 1]),
        snap_m=np.array([10.0, 0.0, 5.0, 2000.0]),
        walk_speed_mps=1.0,
        cover_m=1500.0,
    )
    assert t[0] == 10.0 and t[1] == 60.0 and np.isinf(t[2]) and np.isnan(t[3])
    s = threshold_summary(t, np.array([1.0, 2.0, 3.0, 4.0]), threshold_min=1)
    assert (s.within, s.beyond, s.no_route, s.not_covered) == (3.0, 3.0, 3.0, 4.0)


def test_histogram_and_bands_count_every_covered_person(rd: app_data.RegionData) -> None:
    times = rd.people_times("buprenorphine", "walk")
    weights = rd.people_weights()
    covered = float(weights[~np.isnan(times)].sum())
    hist = time_histogram(times, weights)
    assert sum(b["people"] for b in hist) == pytest.approx(covered)
    assert hist[-1]["label"] == "no route" and hist[-2]["label"] == "over 60"
    bands = band_people(times, weights, [10, 20, 30])
    assert [b["label"] for b in bands] == ["≤ 10 min", "10–20 min", "20–30 min", "over 30 min"]
    assert sum(b["people"] for b in bands) == pytest.approx(covered)


def test_access_summary_reports_deserts_barriers_and_county_overdoses(
    rd: app_data.RegionData,
) -> None:
    s = access_summary(rd, "methadone", "drive", 10)
    assert s["focus"]["beyond"] > 0
    assert s["blocked"] is not None and 0 <= s["blocked"] <= s["focus"]["beyond"]
    assert {r["category"] for r in s["categories"]} == set(rd.categories)
    county = {r["county"]: r for r in s["county"]}
    assert county["Millbrook County"]["rate_per_100k"] == pytest.approx(23.0)
    assert county["Millbrook County"]["rate_basis"] == "crude"
    # only the region's own county is shown, not its neighbours
    assert set(county) == {"Millbrook County"}
    # the desert grows as the threshold shrinks
    assert access_summary(rd, "methadone", "drive", 5)["focus"]["beyond"] > s["focus"]["beyond"]


def test_summaries_are_memoised_per_input_and_handed_out_as_copies(
    rd: app_data.RegionData,
) -> None:
    for threshold in (5, 12.5, 30, 240):
        direct = threshold_summary(
            rd.people_times("buprenorphine", "walk"), rd.people_weights(), threshold
        )
        assert rd.summary("buprenorphine", "walk", threshold) == direct
        assert rd.summary("buprenorphine", "walk", float(threshold)) is rd.summary(
            "buprenorphine", "walk", threshold
        )
    first = access_summary(rd, "methadone", "drive", 20)
    assert first == app_data._access_summary(rd, "methadone", "drive", 20.0)
    first["focus"]["within"] = -1.0
    first["categories"].clear()
    first["county"][0]["rate_per_100k"] = -1.0
    again = access_summary(rd, "methadone", "drive", 20)
    assert again == app_data._access_summary(rd, "methadone", "drive", 20.0)
    assert again["focus"]["within"] > 0 and len(again["categories"]) == len(rd.categories)
    assert app_data.county_overdose(rd)[0]["rate_per_100k"] == pytest.approx(23.0)


def test_memo_keeps_only_the_most_recently_used_results(rd: app_data.RegionData) -> None:
    fresh = app_data.RegionData(bundle=rd.bundle)
    made: list[str] = []

    def make(key: str) -> str:
        made.append(key)
        return key.upper()

    assert fresh.memo("a", lambda: make("a"), size=2) == "A"
    assert fresh.memo("b", lambda: make("b"), size=2) == "B"
    assert fresh.memo("a", lambda: make("a"), size=2) == "A"  # kept, now the most recent
    assert fresh.memo("c", lambda: make("c"), size=2) == "C"  # drops "b", the oldest
    assert fresh.memo("a", lambda: make("a"), size=2) == "A"
    assert fresh.memo("b", lambda: make("b"), size=2) == "B"
    assert made == ["a", "b", "c", "b"]


def test_region_data_is_reused_until_the_link_points_at_a_new_build(
    geo: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "geodata"
    shutil.copytree(geo, copy, symlinks=True)
    first = region_data(copy, "demo")
    assert region_data(copy, "demo") is first
    # a rebuild: a new build folder with its own build id, then the link swapped to it
    old = (copy / "demo").resolve()
    new = old.with_name("20990101T000000-rebuilt")
    shutil.copytree(old, new)
    manifest = json.loads((new / "manifest.json").read_text())
    manifest["build_id"] = new.name
    (new / "manifest.json").write_text(json.dumps(manifest))
    (copy / "demo").unlink()
    (copy / "demo").symlink_to(new.relative_to(copy), target_is_directory=True)
    rebuilt = region_data(copy, "demo")
    assert rebuilt is not first and rebuilt.build_id == new.name
    assert region_data(copy, "demo") is rebuilt
    # the link swapped back: the first build again
    (copy / "demo").unlink()
    (copy / "demo").symlink_to(old.relative_to(copy), target_is_directory=True)
    assert region_data(copy, "demo").build_id == first.build_id


# ---------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------


def test_providers_layer_never_shows_a_generalized_site_exactly(rd: app_data.RegionData) -> None:
    fc = _geojson(rd.payload("providers"))
    providers = rd.layer("providers")
    assert len(fc["features"]) == len(providers)
    approx = [f for f in fc["features"] if f["properties"]["approx"]]
    assert approx, "the demo has syringe services sites that asked not to be shown exactly"
    for f in approx:
        assert f["geometry"]["type"] == "Point"
        assert f["properties"].get("address") in (None, "")
        row = providers[providers["id"] == f["properties"]["id"]].iloc[0]
        assert row.geometry.geom_type == "Polygon"
        assert shape(f["geometry"]).within(row.geometry.buffer(1e-6))
    cats = {f["properties"]["category"] for f in fc["features"]}
    assert {"methadone", "buprenorphine", "pharmacy", "syringe_services"} <= cats


def test_basemap_streets_and_labels(rd: app_data.RegionData) -> None:
    major = _geojson(rd.payload("streets", "major"))
    minor = _geojson(rd.payload("streets", "minor"))
    assert major["features"] and minor["features"]
    assert all(
        f["geometry"]["type"] == "MultiLineString" for f in major["features"] + minor["features"]
    )
    assert {f["properties"]["r"] for f in major["features"]} <= {0, 1, 2, 3}
    assert {f["properties"]["r"] for f in minor["features"]} <= {4, 5}
    labels = _geojson(rd.payload("labels"))
    names = [f["properties"]["name"] for f in labels["features"]]
    assert len(names) == len(set(names)) > 5
    assert [f["properties"]["k"] for f in labels["features"]] == list(range(len(names)))


def test_every_listed_layer_builds(rd: app_data.RegionData) -> None:
    for name, args in [
        ("areas", ()),
        ("grid", ()),
        ("region", ()),
        ("barriers", ()),
        ("sitable", ()),
        ("bands", ("pharmacy", "walk")),
    ]:
        fc = _geojson(rd.payload(name, *args))
        assert fc["features"], name
    areas = _geojson(rd.payload("areas"))
    props = areas["features"][0]["properties"]
    assert "t_methadone_drive" in props and "population" in props


def test_unknown_layers_are_refused(rd: app_data.RegionData) -> None:
    from etl._errors import BundleError

    with pytest.raises(BundleError, match="no map layer"):
        rd.payload("secrets")
    with pytest.raises(BundleError, match="no travel times"):
        rd.payload("bands", "unicorns", "drive")
    with pytest.raises(BundleError, match="no 'teleport' network"):
        rd.payload("bands", "methadone", "teleport")


def test_transit_stops_layer(rd: app_data.RegionData) -> None:
    fc = _geojson(rd.payload("transit_stops"))
    props = {f["properties"]["name"]: f["properties"] for f in fc["features"]}
    hub = props["Millbrook Transit Center"]
    assert hub["routes"] == "1, 2" and hub["wheelchair"] == "yes"
    assert 0 < hub["walk_min_methadone"] < 60
    assert all(f["geometry"]["type"] == "Point" for f in fc["features"])


def test_map_options_of_the_demo(rd: app_data.RegionData) -> None:
    o = map_options(rd, ["demo"])
    assert {"barriers", "sitable", "sites", "desert", "bands", "streets", "areas"} <= set(o.layers)
    assert "transit" in o.layers  # the fictional bus network's stops
    assert o.modes == ("drive", "walk")
    assert o.thresholds["methadone/drive"] == 30.0
    assert o.units == ("areas", "grid")
    (s, w), (n, e) = o.bounds
    assert s < n and w < e
    state = default_state("demo", o)
    assert (state.category, state.mode, state.threshold) == ("methadone", "drive", 30)


def test_area_at_finds_the_area_holding_a_point(rd: app_data.RegionData) -> None:
    areas = rd.layer("areas")
    pt = areas.geometry.iloc[3].representative_point()
    props = area_at(rd, pt.x, pt.y)
    assert props["area_id"] == areas["area_id"].iloc[3]
    assert area_at(rd, 0.0, 0.0) is None


# ---------------------------------------------------------------------------------------
# Address look-up and routes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("39.96, -83.0", (-83.0, 39.96)),
        ("39.96 -83.0", (-83.0, 39.96)),
        ("-100.5, 39.96", (-100.5, 39.96)),  # a first number beyond ±90 is the longitude
        ("100, 200", None),
        ("240 Parsons Ave", None),
        ("", None),
    ],
)
def test_parse_coordinates(text: str, expected: tuple[float, float] | None) -> None:
    assert parse_coordinates(text) == expected


def test_find_place_finds_a_provider_address(rd: app_data.RegionData) -> None:
    providers = rd.layer("providers")
    row = providers[(providers["address"].fillna("") != "") & providers["zip"].notna()].iloc[0]
    place = find_place(rd, f"{row['address']}, {row['city']} {row['zip']}")
    assert place is not None
    assert place.quality in {"address_point", "street", "street_center"}
    assert abs(place.lon - row.geometry.x) < 0.01 and abs(place.lat - row.geometry.y) < 0.01


def test_find_place_says_when_nothing_matches(rd: app_data.RegionData) -> None:
    assert find_place(rd, "1 Nowhere Boulevard, Atlantis 00000") is None
    assert find_place(rd, "   ") is None


def test_route_time_equals_the_access_time(rd: app_data.RegionData) -> None:
    net = rd.network("drive")
    arrays = rd.access("drive")
    providers = rd.layer("providers")
    rng = np.random.default_rng(3)
    for node in rng.choice(net.n_nodes, size=5, replace=False):
        row = int(arrays["nearest_methadone"][node])
        target = int(providers["node_drive"].iloc[row])
        path = route_to(net, int(node), target)
        walk = providers["snap_m_drive"].iloc[row] / rd.walk_speed_mps
        assert route_seconds(net, path) + walk == pytest.approx(
            float(arrays["time_methadone"][node]), abs=1e-3
        )


def test_nearest_care_from_a_place(rd: app_data.RegionData) -> None:
    providers = rd.layer("providers")
    site = providers[
        (providers["category"] == "pharmacy") & providers.geometry.geom_type.eq("Point")
    ].iloc[0]
    place = find_place(rd, f"{site.geometry.y:.6f}, {site.geometry.x:.6f}")
    lookup = nearest_care(rd, place)
    assert lookup.covered == {"drive": True, "walk": True}
    by = {(n.category, n.mode): n for n in lookup.nearest}
    assert set(by) == {(c, m) for c in rd.categories for m in rd.modes}
    pharmacy = by[("pharmacy", "walk")]
    assert pharmacy.minutes is not None and pharmacy.minutes < 3
    assert pharmacy.route[0] == [round(place.lat, 6), round(place.lon, 6)]
    # the table's minutes are the bundle's access times at the snapped node plus the snap walk
    net = rd.network("drive")
    to_xy = Transformer.from_crs("EPSG:4326", rd.manifest["crs"], always_xy=True)
    x, y = to_xy.transform(place.lon, place.lat)
    snap = snap_points(net, np.array([x]), np.array([y]))
    expected = rd.access("drive")["time_methadone"][snap.node[0]] + snap.walk_s[0]
    assert by[("methadone", "drive")].minutes == pytest.approx(expected / 60.0, abs=0.06)
    # each row names its site as the providers layer does, and the route ends at it
    for n in lookup.nearest:
        row = providers.iloc[n.provider_row]
        assert n.name == row["name"] and n.provider_id == str(row["id"])
        assert n.address is not None and str(row["city"]) in n.address
        if row.geometry.geom_type == "Point":
            assert n.route[-1] == [round(row.geometry.y, 6), round(row.geometry.x, 6)]


def test_nearest_care_far_from_the_network(rd: app_data.RegionData) -> None:
    place = find_place(rd, "41.5, -35.0")  # open ocean
    lookup = nearest_care(rd, place)
    assert lookup.covered == {"drive": False, "walk": False}
    assert all(n.minutes is None and not n.route for n in lookup.nearest)


# ---------------------------------------------------------------------------------------
# Flask routes and callbacks, through the server as a browser calls them
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(geo: Path):
    import app as atlas_app
    import callbacks.map as map_callbacks

    map_callbacks.configure(geodata=geo, default_region="demo")
    return atlas_app.server.test_client()


def test_layer_route_serves_gzip_with_etag_and_304(client, rd: app_data.RegionData) -> None:
    url = f"/atlas/layers/demo/bands/methadone/drive.geojson?v={rd.build_id}"
    r = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Content-Type"] == "application/geo+json"
    assert "max-age" in r.headers["Cache-Control"]
    fc = json.loads(gzip.decompress(r.data))
    assert fc["type"] == "FeatureCollection" and fc["features"]
    again = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    plain = client.get(url)
    assert "Content-Encoding" not in plain.headers
    assert json.loads(plain.data) == fc


@pytest.mark.parametrize(
    "url",
    [
        "/atlas/layers/demo/secrets.geojson",
        "/atlas/layers/demo/providers.json",
        "/atlas/layers/atlantis/providers.geojson",
        "/atlas/layers/demo/bands/../../manifest.geojson",
        "/atlas/layers/demo/bands/methadone.geojson",
        "/atlas/layers/demo/bands/unicorns/drive.geojson",
        "/atlas/layers/demo/providers/extra/args.geojson",
        "/atlas/layers/..%2F..%2Fetc/providers.geojson",
    ],
)
def test_layer_route_refuses_bad_urls_without_a_traceback(client, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 404
    assert b"Traceback" not in r.data
    if r.mimetype == "application/json":
        assert "error" in json.loads(r.data)


def test_dash_scripts_are_compressed(client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    script = next(
        s for s in page.data.decode().split('src="')[1:] if "dash_leaflet" in s.split('"')[0]
    ).split('"')[0]
    r = client.get(script, headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert len(r.data) < 0.5 * len(gzip.decompress(r.data))




def _text(component: Any) -> str:
    if isinstance(component, dict):
        return _text(component.get("props", {}).get("children")) if "props" in component else ""
    if isinstance(component, list):
        return " ".join(_text(c) for c in component)
    return "" if component is None else str(component)


def _ids(component: Any, out: set[str]) -> set[str]:
    if isinstance(component, dict):
        props = component.get("props", {})
        if isinstance(props.get("id"), str):
            out.add(props["id"])
        for v in props.values():
            _ids(v, out)
    elif isinstance(component, list):
        for c in component:
            _ids(c, out)
    return out


def _page(client, search: str = "", path: str = "/") -> dict[str, Any]:
    resp = _call(
        client,
        [("page", "children")],
        [("url", "pathname", path)],
        [("url", "search", search), ("atlas-rendered", "data", None)],
    )
    return resp["page"]["children"]


def test_map_page_renders_and_every_callback_id_exists(client) -> None:
    import app as atlas_app

    page = _page(client)
    text = _text(page)
    assert "Millbrook County (fictional)" in text
    assert "Fictional data" in text
    ids = _ids(page, {"url", "page", "atlas-rendered", "atlas-title-sink"})  # the page shell
    missing = set()
    for cb in atlas_app.app.callback_map.values():
        for dep in cb["inputs"] + cb["state"]:
            if dep["id"] not in ids and dep["id"] != "region-select":  # one region: no switcher
                missing.add(dep["id"])
    for key in atlas_app.app.callback_map:
        for part in key.strip(".").split("..."):
            if part.rsplit(".", 1)[0] not in ids:
                missing.add(part)
    assert not missing


def test_methods_page_lists_sources_thresholds_and_privacy_rules(client) -> None:
    text = _text(_page(client, "", "/methods"))
    assert "Methods and sources" in text
    assert "CC0 (fictional data)" in text
    assert "Fictional data" in text
    assert "30 min" in text and "4.8 km/h" in text
    assert "1 to 9" in text and "fewer than 20 deaths" in text
    assert "New Directions" in text  # the demo has zoning barriers
    assert "transit stops are shown" in text and "from the feed's timetable" in text


def test_shared_url_restores_the_view_and_runs_the_look_up(client, rd: app_data.RegionData) -> None:
    providers = rd.layer("providers")
    site = providers[providers["category"] == "pharmacy"].iloc[0]
    q = f"{site.geometry.y:.5f},{site.geometry.x:.5f}"
    page = _page(client, f"?cat=pharmacy&mode=walk&t=12&layers=sites,desert&q={q}")
    ids = json.dumps(page)
    assert '"value": 12' in ids or '"value":12' in ids
    text = _text(page)
    assert "within 12 minutes on foot of the nearest pharmacy" in text
    assert "Found:" in text


def test_nonsense_url_opens_the_default_view(client) -> None:
    text = _text(_page(client, "?cat=%3Cscript%3E&t=-4&mode=rocket&region=../../etc&z=banana"))
    assert "within 30 minutes by car of the nearest opioid treatment program" in text


def test_summary_callback(client) -> None:
    resp = _call(
        client,
        [("summary", "children")],
        [("atlas-settled", "data", {"category": "naloxone", "mode": "drive", "threshold": 7})],
        [("atlas-region", "data", {"region": "demo"})],
    )
    text = _text(resp["summary"]["children"])
    assert "within 7 minutes by car of the nearest naloxone distribution" in text
    assert "Overdose deaths, Millbrook County" in text
    # nonsense from the browser is ignored, not an error
    for bad in ({"category": "x", "mode": "drive", "threshold": 7}, {"threshold": "abc"}, None):
        assert (
            _call(
                client,
                [("summary", "children")],
                [("atlas-settled", "data", bad)],
                [("atlas-region", "data", {"region": "demo"})],
            )
            == {}
        )


def test_callback_answers_are_compressed_once_per_content(client) -> None:
    def summary(threshold: int) -> bytes:
        body = {
            "output": "summary.children",
            "outputs": {"id": "summary", "property": "children"},
            "inputs": [
                {
                    "id": "atlas-settled",
                    "property": "data",
                    "value": {"category": "naloxone", "mode": "drive", "threshold": threshold},
                }
            ],
            "changedPropIds": ["atlas-settled.data"],
            "state": [{"id": "atlas-region", "property": "data", "value": {"region": "demo"}}],
        }
        r = client.post("/_dash-update-component", json=body, headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
        assert int(r.headers["Content-Length"]) == len(r.data)
        return r.data

    first, again, other = summary(9), summary(9), summary(25)
    assert first == again and first != other
    plain = json.loads(gzip.decompress(first))
    assert "within 9 minutes" in json.dumps(plain, ensure_ascii=False)
    assert "within 25 minutes" in gzip.decompress(other).decode()


def test_layout_carries_the_page_named_by_the_referer(client) -> None:
    r = client.get("/_dash-layout", headers={"Referer": "http://localhost/?cat=pharmacy&t=12"})
    layout = r.get_json()
    text = _text(layout)
    assert "within 12 minutes by car of the nearest pharmacy" in text
    rendered = next(
        c["props"]["data"]
        for c in layout["props"]["children"]
        if c["props"].get("id") == "atlas-rendered"
    )
    assert rendered == {"path": "/", "search": "cat=pharmacy&t=12"}
    # the page callback then leaves the page alone
    assert (
        _call(
            client,
            [("page", "children")],
            [("url", "pathname", "/")],
            [("url", "search", "?cat=pharmacy&t=12"), ("atlas-rendered", "data", rendered)],
        )
        == {}
    )
    # no referer: the shell only, the callback renders the page
    bare = client.get("/_dash-layout").get_json()
    assert "Loading the map" in _text(bare)


def test_details_callback_for_a_site_and_a_place(client, rd: app_data.RegionData) -> None:
    fc = _geojson(rd.payload("providers"))
    feature = next(f for f in fc["features"] if f["properties"]["category"] == "methadone")
    resp = _call(
        client,
        [("details", "children"), ("layer-selection", "data")],
        [("layer-sites", "clickData", feature), ("map", "clickData", None)],
        [("atlas-region", "data", {"region": "demo"})],
    )
    text = _text(resp["details"]["children"])
    assert feature["properties"]["name"] in text
    assert "Location quality" in text
    area = rd.layer("areas").iloc[5]
    pt = area.geometry.representative_point()
    resp = _call(
        client,
        [("details", "children"), ("layer-selection", "data")],
        [
            ("layer-sites", "clickData", feature),
            ("map", "clickData", {"latlng": {"lat": pt.y, "lng": pt.x}}),
        ],
        [("atlas-region", "data", {"region": "demo"})],
        changed="map.clickData",
    )
    text = _text(resp["details"]["children"])
    assert str(area["area_id"]) in text and "Travel time to the nearest site" in text
    assert (
        resp["layer-selection"]["data"]["features"][0]["properties"]["area_id"] == area["area_id"]
    )


def test_look_up_callback_found_and_not_found(client, rd: app_data.RegionData) -> None:
    def look(query: str) -> dict[str, Any]:
        return _call(
            client,
            [
                ("lookup-result", "children"),
                ("layer-routes", "children"),
                ("map", "viewport"),
                ("atlas-query", "data"),
            ],
            [
                ("address-button", "n_clicks", 1),
                ("address-input", "n_submit", None),
                ("mode-select", "value", "drive"),
            ],
            [("address-input", "value", query), ("atlas-region", "data", {"region": "demo"})],
        )

    providers = rd.layer("providers")
    site = providers[providers["category"] == "methadone"].iloc[0]
    resp = look(f"{site['address']}, {site['city']} {site['zip']}")
    assert "Found:" in _text(resp["lookup-result"]["children"])
    routes = resp["layer-routes"]["children"]
    assert any(r["type"] == "Polyline" for r in routes)
    assert resp["map"]["viewport"]["transition"] == "flyTo"
    resp = look("1 Nowhere Boulevard, Atlantis 00000")
    assert "No address matching" in _text(resp["lookup-result"]["children"])
    assert resp["layer-routes"]["children"] == []


def test_missing_and_corrupt_bundles_give_a_page_that_says_how_to_rebuild(tmp_path: Path) -> None:
    import callbacks.map as map_callbacks

    old = dict(map_callbacks._SETTINGS)
    try:
        map_callbacks.configure(geodata=tmp_path, default_region="demo")
        text = _text(map_callbacks.render("/", "").to_plotly_json())
        assert "'demo' has not been built yet" in text and "access-atlas build" in text
        assert str(tmp_path) not in text  # never a server path on the page
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "manifest.json").write_text("{not json", encoding="utf-8")
        text = _text(map_callbacks.render("/", "?region=broken").to_plotly_json())
        assert "the manifest is corrupt (not JSON)" in text and "being rebuilt or is broken" in text
        assert "Traceback" not in text and str(tmp_path) not in text
    finally:
        map_callbacks._SETTINGS.update(old)


def test_render_page_state_matches_parse_state(rd: app_data.RegionData) -> None:
    o = map_options(rd, ["demo"])
    s = parse_state("?cat=buprenorphine&mode=walk&t=22", o, default_region="demo")
    assert (s.category, s.mode, s.threshold) == ("buprenorphine", "walk", 22)


# ---------------------------------------------------------------------------------------
# Overdose choropleth (drawn when a bundle carries area or county rates with geometry)
# ---------------------------------------------------------------------------------------


def _fake_region(areas: Any) -> app_data.RegionData:
    from types import SimpleNamespace

    manifest = {
        "region": "fake",
        "build_id": "b1",
        "layers": {
            "areas": {"crs": "EPSG:4326", "columns": [c for c in areas.columns if c != "geometry"]}
        },
    }
    bundle = SimpleNamespace(
        manifest=manifest, path=Path("/nonexistent"), read_layer=lambda name: areas
    )
    return app_data.RegionData(bundle=bundle)


def test_overdose_layer_from_area_rates_keeps_suppressed_values_out_of_the_breaks() -> None:
    import geopandas as gpd

    import callbacks.map as map_callbacks

    boxes = [shapely.box(i, 0, i + 1, 1) for i in range(6)]
    areas = gpd.GeoDataFrame(
        {
            "area_id": [f"3904900010{i}" for i in range(6)],
            "population": [1000] * 6,
            "deaths": [None, 12.0, 25.0, 40.0, 80.0, 160.0],
            "rate_per_100k": [None, 12.0, 25.0, 40.0, 80.0, 160.0],
            "rate_basis": ["crude"] * 6,
            "period": ["2018-2022"] * 6,
            "suppressed": [True, False, False, False, False, False],
            "unstable": [False, True, False, False, False, False],
        },
        geometry=boxes,
        crs="EPSG:4326",
    )
    rd = _fake_region(areas)
    assert app_data.overdose_source(rd) == "areas"
    model = map_callbacks.overdose_model(rd)
    assert model["prop"] == "rate_per_100k"
    assert model["breaks"] == sorted(model["breaks"]) and len(model["breaks"]) >= 3
    assert "crude" in model["label"] and "2018-2022" in model["label"]
    fc = json.loads(gzip.decompress(rd.payload("areas").body))
    first = fc["features"][0]["properties"]
    assert (
        first["suppressed"] is True and first["rate_per_100k"] is None and first["deaths"] is None
    )
    assert fc["features"][1]["properties"]["unstable"] is True


def test_overdose_text_never_prints_a_suppressed_number() -> None:
    from layouts.panels import overdose_text

    assert "suppressed" in overdose_text({"suppressed": True, "period": "2020"})
    assert "12.0 per 100,000" in overdose_text(
        {"rate_per_100k": 12.0, "deaths": 25, "rate_basis": "crude", "unstable": True}
    )
    assert "unstable" in overdose_text({"rate_per_100k": 12.0, "unstable": True})
    assert "not published" in overdose_text({"rate_per_100k": None})


def test_unknown_addresses_are_a_real_404_and_pages_say_their_language(client) -> None:
    for path in ("/", "/methods", "/present", "/methods/"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert b'<html lang="en">' in r.data, path
    for path in ("/nope", "/map/old-link", "/index.php"):
        r = client.get(path)
        assert r.status_code == 404, path
        text = r.get_data(as_text=True)
        assert "There is no page at this address." in text and 'href="/"' in text
        assert 'lang="en"' in text
    # What Dash and the app's own routes serve is not caught by the 404 page.
    assert client.get("/_dash-layout").status_code == 200
    r = client.get("/assets/atlas.css", buffered=True)
    assert r.status_code == 200
    r.close()


def test_each_page_has_its_own_title() -> None:
    import app as atlas_app

    assert atlas_app.page_of("/") == "" and atlas_app.page_of("") == ""
    assert atlas_app.page_of("/methods/") == "/methods"
    assert atlas_app.page_of("/present") == "/present"
    assert atlas_app.page_of("/elsewhere") is None
    titles = set(atlas_app.PAGE_TITLES.values())
    assert len(titles) == len(atlas_app.PAGE_TITLES)  # three pages, three titles


def test_the_lookup_example_is_an_address_of_the_region_that_it_finds(
    rd: app_data.RegionData,
) -> None:
    from viewmodel.lookup import address_example, find_place

    example = address_example(rd)
    # the fictional county's own town and state, never the Columbus example of old
    assert "Columbus" not in example and re.fullmatch(r"\d+ .+, [A-Za-z ]+, ZZ 99\d{3}", example)
    place = find_place(rd, example)
    assert place is not None
    region = rd.layer("region").to_crs("EPSG:4326").geometry.union_all()
    assert region.buffer(0.01).contains(shapely.Point(place.lon, place.lat))
