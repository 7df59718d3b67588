"""Tests for etl.inputs.osm: the offline file reader and the Overpass path through OSMnx."""

from __future__ import annotations

import json
import math
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest

from etl._errors import ConfigError, InputError, NetworkError
from etl.inputs.osm import (
    EXCLUDED_HIGHWAYS,
    OVERPASS_FILTER,
    WAY_TAGS,
    RawNetwork,
    _network_from_graph,
    _trails,
    fetch_overpass,
    is_street,
    read_osm_file,
)
from tests import fixtures_osm as fo

FORMATS = [".osm", ".osm.bz2", ".osm.gz", ".osm.pbf"]
#: one grid step north: 6_371_009 m * pi / 180 * 0.001
STEP_NORTH_M = 6_371_009 * math.pi / 180 * fo.STEP


def _segments(net: RawNetwork) -> pd.DataFrame:
    """Segments as (way osmid, u node id, v node id, length), in the network's order."""
    return pd.DataFrame(
        {
            "way": net.ways["osmid"].to_numpy()[net.way],
            "u": net.node_id[net.u],
            "v": net.node_id[net.v],
            "length_m": net.length_m,
        }
    )


def _way_nodes(net: RawNetwork, osmid: int) -> list[tuple[int, int]]:
    seg = _segments(net)
    seg = seg[seg["way"] == osmid]
    return list(zip(seg["u"].tolist(), seg["v"].tolist(), strict=True))


def _assert_same_network(a: RawNetwork, b: RawNetwork, *, ordered: bool = True) -> None:
    """Same nodes, ways and segments; ``ordered=False`` compares segments as a set."""
    np.testing.assert_array_equal(a.node_id, b.node_id)
    np.testing.assert_allclose(a.lon, b.lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.lat, b.lat, rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(a.ways, b.ways)
    sa, sb = _segments(a), _segments(b)
    if not ordered:
        sa = sa.sort_values(["way", "u", "v"]).reset_index(drop=True)
        sb = sb.sort_values(["way", "u", "v"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(sa[["way", "u", "v"]], sb[["way", "u", "v"]])
    np.testing.assert_allclose(sa["length_m"], sb["length_m"], rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- file reader


@pytest.fixture(params=FORMATS)
def clipped(request: pytest.FixtureRequest, tmp_path: Path) -> RawNetwork:
    path = fo.write_osm(fo.clipped_town(), tmp_path / f"clipped{request.param}")
    return read_osm_file(path)


def test_counts_and_dtypes(clipped: RawNetwork) -> None:
    assert len(clipped.node_id) == 22
    assert len(clipped.u) == 21
    assert len(clipped.ways) == 11
    assert clipped.ways["osmid"].tolist() == [100, 101, 102, 103, 104, 105, 106, 111, 120, 121, 200]
    assert list(clipped.ways.columns) == ["osmid", *WAY_TAGS]
    assert clipped.ways["osmid"].dtype == np.int64
    for name in ("node_id", "u", "v", "way"):
        assert getattr(clipped, name).dtype == np.int64, name
    for name in ("lon", "lat", "length_m"):
        assert getattr(clipped, name).dtype == np.float64, name
    # nodes sorted by id; only those used by a segment (12 is on a proposed way, 24 is isolated)
    assert clipped.node_id.tolist() == sorted(clipped.node_id.tolist())
    assert not {12, 13, 16, 24, 30} & set(clipped.node_id.tolist())
    assert set(np.concatenate([clipped.u, clipped.v]).tolist()) == set(range(22))


def test_tags_survive(clipped: RawNetwork) -> None:
    ways = clipped.ways.set_index("osmid")
    assert ways.loc[102, "oneway"] == "yes"
    assert ways.loc[102, "maxspeed"] == "35 mph"
    assert ways.loc[103, "oneway"] == "-1"
    assert ways.loc[104, "junction"] == "roundabout"
    assert ways.loc[105, "name"] == "Fish & Chips Alley"
    assert ways.loc[105, "access"] == "private"
    assert ways.loc[105, "service"] == "driveway"
    assert ways.loc[106, "foot"] == "designated"
    assert ways.loc[200, "motor_vehicle"] == "no"
    assert ways.loc[100, "sidewalk"] == "both"
    assert ways.loc[100, "oneway"] is None
    assert ways.loc[101, "area"] is None


def test_not_streets_are_dropped(clipped: RawNetwork) -> None:
    osmids = set(clipped.ways["osmid"].tolist())
    assert 107 not in osmids  # highway=proposed
    assert 108 not in osmids  # area=yes
    assert 109 not in osmids  # highway=platform
    assert 110 not in osmids  # building, no highway tag
    assert 122 not in osmids  # every node missing


def test_segments_in_digitised_order(clipped: RawNetwork) -> None:
    assert _way_nodes(clipped, 100) == [(1, 2), (2, 3)]
    assert _way_nodes(clipped, 102) == [(5, 6), (6, 7)]
    # oneway=-1 is still stored as digitised: the mode filter reverses it
    assert _way_nodes(clipped, 103) == [(7, 1)]
    assert _way_nodes(clipped, 104) == [(8, 9), (9, 10), (10, 8)]
    assert _way_nodes(clipped, 111) == [(6, 40)]  # doubled node ref 6-6 makes no segment
    assert _way_nodes(clipped, 200) == [(40, 41), (41, 42), (42, 43), (43, 41), (41, 44)]


def test_clipped_way_is_cut_at_missing_nodes(clipped: RawNetwork) -> None:
    assert _way_nodes(clipped, 120) == [(20, 21), (22, 23)]
    assert _way_nodes(clipped, 121) == [(25, 26)]


def test_segment_lengths(clipped: RawNetwork) -> None:
    seg = _segments(clipped).set_index(["u", "v"])["length_m"]
    assert seg[(1, 2)] == pytest.approx(STEP_NORTH_M, abs=1e-6)
    assert seg[(1, 2)] == pytest.approx(111.195, abs=1e-3)
    # one step east at 39.962 N is shorter by cos(latitude)
    assert seg[(3, 4)] == pytest.approx(STEP_NORTH_M * math.cos(math.radians(39.962)), rel=1e-6)
    assert clipped.length_m.sum() == pytest.approx(2299.30, abs=0.01)
    # every length agrees with the spherical law of cosines on the node coordinates
    lon, lat = np.radians(clipped.lon), np.radians(clipped.lat)
    u, v = clipped.u, clipped.v
    cos_angle = np.sin(lat[u]) * np.sin(lat[v]) + np.cos(lat[u]) * np.cos(lat[v]) * np.cos(
        lon[v] - lon[u]
    )
    expected = 6_371_009 * np.arccos(np.clip(cos_angle, -1, 1))
    np.testing.assert_allclose(clipped.length_m, expected, rtol=1e-6)


def test_node_coordinates(clipped: RawNetwork) -> None:
    i = int(np.searchsorted(clipped.node_id, 9))
    assert clipped.node_id[i] == 9
    assert clipped.lon[i] == -82.9865
    assert clipped.lat[i] == 39.9635


def test_all_formats_identical(tmp_path: Path) -> None:
    nets = [read_osm_file(fo.write_osm(fo.clipped_town(), tmp_path / f"t{s}")) for s in FORMATS]
    for net in nets[1:]:
        _assert_same_network(nets[0], net)
    assert nets[0].source == str(tmp_path / "t.osm")


def test_missing_refs_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="etl.inputs.osm")
    read_osm_file(fo.write_osm(fo.clipped_town(), tmp_path / "t.osm.pbf"))
    assert "41 node refs, 6 of them to nodes missing from t.osm.pbf" in caplog.text
    assert "returned 11 ways, 21 segments and 22 nodes" in caplog.text


def test_accepts_str_path(tmp_path: Path) -> None:
    path = fo.write_osm(fo.town(), tmp_path / "t.osm")
    net = read_osm_file(str(path))
    assert (len(net.ways), len(net.u), len(net.node_id)) == (9, 18, 16)


def test_is_street() -> None:
    assert is_street({"highway": "residential"})
    assert is_street({"highway": "footway", "area": "no"})
    assert not is_street({"highway": "pedestrian", "area": "yes"})
    assert not is_street({"building": "yes"})
    for value in ("proposed", "construction", "abandoned", "platform", "raceway", "elevator"):
        assert value in EXCLUDED_HIGHWAYS
        assert not is_street({"highway": value})


def test_trails_rebuild_way_order() -> None:
    assert _trails([(2, 3), (1, 2)]) == [[1, 2, 3]]
    assert _trails([(9, 10), (8, 9), (10, 8)]) == [[8, 9, 10, 8]]
    assert _trails([(41, 44), (40, 41), (43, 41), (41, 42), (42, 43)]) == [[40, 41, 42, 43, 41, 44]]
    assert _trails([(1, 2), (5, 6), (2, 3)]) == [[1, 2, 3], [5, 6]]


# --------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere\.osm\.pbf: file not found"):
        read_osm_file(tmp_path / "nowhere.osm.pbf")


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "x.osm"
    folder.mkdir()
    with pytest.raises(InputError, match="is a folder, not a file"):
        read_osm_file(folder)


@pytest.mark.parametrize("name", ["streets.geojson", "streets.o5m", "streets.osm.zip"])
def test_unsupported_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("{}")
    with pytest.raises(InputError, match=r"unsupported OSM file type; use one of \.osm\.pbf"):
        read_osm_file(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.osm.pbf"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="the file is empty"):
        read_osm_file(path)


def test_truncated_pbf(tmp_path: Path) -> None:
    whole = fo.write_osm(fo.town(), tmp_path / "whole.osm.pbf").read_bytes()
    path = tmp_path / "half.osm.pbf"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"half\.osm\.pbf: .*truncated or not OSM data"):
        read_osm_file(path)


def test_truncated_bz2(tmp_path: Path) -> None:
    whole = fo.write_osm(fo.town(), tmp_path / "whole.osm.bz2").read_bytes()
    path = tmp_path / "half.osm.bz2"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="re-download or re-export it"):
        read_osm_file(path)


@pytest.mark.parametrize("suffix", FORMATS)
def test_garbage_bytes(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(b"this is not OSM data \x00\xff\xfe" * 64)
    with pytest.raises(InputError, match="the file is truncated or not OSM data"):
        read_osm_file(path)


def test_only_missing_nodes(tmp_path: Path) -> None:
    fx = fo.no_streets()
    fx.ways.append((3, [998, 999], {"highway": "residential"}))
    path = fo.write_osm(fx, tmp_path / "ghost.osm")
    with pytest.raises(NetworkError, match=r"ghost\.osm: no streets .*\(2 node refs point at"):
        read_osm_file(path)


@pytest.mark.parametrize("suffix", [".osm", ".osm.pbf"])
def test_no_streets(tmp_path: Path, suffix: str) -> None:
    path = fo.write_osm(fo.no_streets(), tmp_path / f"buildings{suffix}")
    with pytest.raises(NetworkError, match=r"no streets \(ways tagged highway=\*\) in this file"):
        read_osm_file(path)


# --------------------------------------------------------------------------- Overpass


PLACE = "Testville, Nowhere"
#: Testville's boundary as (lon, lat): covers every fixture node with room to spare.
BOUNDARY = [
    (fo.LON0 - 0.01, fo.LAT0 - 0.01),
    (fo.LON0 + 0.02, fo.LAT0 - 0.01),
    (fo.LON0 + 0.02, fo.LAT0 + 0.02),
    (fo.LON0 - 0.01, fo.LAT0 + 0.02),
    (fo.LON0 - 0.01, fo.LAT0 - 0.01),
]
STATUS = (
    "Connected as: 2130706433\nCurrent time: 2024-01-01T00:00:00Z\nAnnounced endpoint: none\n"
    "Rate limit: 2\n2 slots available now.\n"
    "Currently running queries (pid, space limit, time limit, start time):\n"
)


def _nominatim_result() -> dict:
    lons = [p[0] for p in BOUNDARY]
    lats = [p[1] for p in BOUNDARY]
    return {
        "place_id": 1,
        "licence": "stand-in",
        "osm_type": "relation",
        "osm_id": 1,
        "boundingbox": [str(min(lats)), str(max(lats)), str(min(lons)), str(max(lons))],
        "lat": str(fo.LAT0 + 0.005),
        "lon": str(fo.LON0 + 0.005),
        "display_name": PLACE,
        "class": "boundary",
        "type": "administrative",
        "importance": 0.5,
        "geojson": {"type": "Polygon", "coordinates": [[list(p) for p in BOUNDARY]]},
    }


class StandIn:
    """Nominatim and Overpass on 127.0.0.1, answering from the town fixture."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []
        self.queries: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, body: str, content_type: str = "application/json") -> None:
                data = body.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                stand_in.requests.append(("GET", url.path, url.query))
                if url.path == "/nominatim/search":
                    query = parse_qs(url.query).get("q", [""])[0]
                    found = [_nominatim_result()] if query == PLACE else []
                    self._send(json.dumps(found))
                elif url.path == "/overpass/status":
                    self._send(STATUS, "text/plain")
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
                stand_in.requests.append(("POST", self.path, body))
                if self.path == "/overpass/interpreter":
                    stand_in.queries.append(parse_qs(body)["data"][0])
                    self._send(json.dumps(fo.overpass_json(fo.town())))
                else:
                    self.send_error(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.server.server_address[1]
        self.nominatim_url = f"http://127.0.0.1:{port}/nominatim/"
        self.overpass_url = f"http://127.0.0.1:{port}/overpass"


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> StandIn:
    import osmnx

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    # OSMnx pins hostnames by patching socket.getaddrinfo: undo that after the test
    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)
    # skip the polite 1 s pause before each Nominatim request
    monkeypatch.setattr(osmnx._nominatim, "time", SimpleNamespace(sleep=lambda _s: None))
    server = StandIn()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    thread.join()


@pytest.fixture
def town_file(tmp_path: Path) -> RawNetwork:
    return read_osm_file(fo.write_osm(fo.town(), tmp_path / "town.osm"))


def _fetch(stand_in: StandIn, cache: Path, **where: object) -> RawNetwork:
    return fetch_overpass(
        overpass_url=stand_in.overpass_url,
        nominatim_url=stand_in.nominatim_url,
        cache_dir=cache,
        **where,
    )


def test_overpass_place_equals_file(
    stand_in: StandIn, town_file: RawNetwork, tmp_path: Path
) -> None:
    net = _fetch(stand_in, tmp_path / "cache", place=PLACE)
    assert net.source == f"overpass:{PLACE}"
    assert (len(net.ways), len(net.u), len(net.node_id)) == (9, 18, 16)
    _assert_same_network(net, town_file)  # same order too: the ring 8-9-10-8 starts at 8
    assert _way_nodes(net, 103) == [(7, 1)]  # oneway=-1 back in digitised order
    assert net.ways.set_index("osmid").loc[103, "oneway"] == "-1"
    assert [r[1] for r in stand_in.requests] == [
        "/nominatim/search",
        "/overpass/status",
        "/overpass/interpreter",
    ]
    (query,) = stand_in.queries
    assert f"way{OVERPASS_FILTER}(poly:" in query


def test_overpass_cache_asks_once(stand_in: StandIn, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _fetch(stand_in, cache, place=PLACE)
    n_requests = len(stand_in.requests)
    assert n_requests == 3
    assert len(list(cache.glob("*.json"))) == 2  # the Nominatim and the Overpass answers
    second = _fetch(stand_in, cache, place=PLACE)
    assert len(stand_in.requests) == n_requests
    _assert_same_network(first, second)


def test_overpass_polygon_equals_file(
    stand_in: StandIn, town_file: RawNetwork, tmp_path: Path
) -> None:
    net = _fetch(stand_in, tmp_path / "cache", polygon=BOUNDARY[:-1])
    assert net.source == "overpass:polygon"
    _assert_same_network(net, town_file)
    assert [r[1] for r in stand_in.requests] == ["/overpass/status", "/overpass/interpreter"]


def test_overpass_polygon_cuts_ways_at_the_boundary(
    stand_in: StandIn, town_file: RawNetwork, tmp_path: Path
) -> None:
    # west of lon index 2.5 and north of lat index -1.5: OSMnx keeps a node outside only
    # when a neighbour is inside, so the ring 8-9-10 goes and path 200 keeps only 40-41
    west, east = fo.LON0 - 0.01, fo.LON0 + 2.5 * fo.STEP
    south, north = fo.LAT0 - 1.5 * fo.STEP, fo.LAT0 + 0.02
    net = _fetch(
        stand_in,
        tmp_path / "cache",
        polygon=[(west, south), (east, south), (east, north), (west, north)],
    )
    assert net.ways["osmid"].tolist() == [100, 101, 102, 103, 105, 106, 111, 200]
    assert (len(net.u), len(net.node_id)) == (11, 11)
    assert _way_nodes(net, 105) == [(5, 8)]  # node 8 is outside, its neighbour 5 inside
    assert _way_nodes(net, 200) == [(40, 41)]
    whole = set(map(tuple, _segments(town_file)[["way", "u", "v"]].to_numpy().tolist()))
    assert set(map(tuple, _segments(net)[["way", "u", "v"]].to_numpy().tolist())) <= whole


def test_graph_conversion_rebuilds_cut_and_reversed_ways() -> None:
    import networkx as nx

    graph = nx.MultiDiGraph()
    for n in range(1, 8):
        graph.add_node(n, x=fo.LON0 + n * fo.STEP, y=fo.LAT0)
    street = {"osmid": 7, "highway": "residential", "name": "Cut Street", "reversed": False}
    # way 7 is 1-2-3-4-5-6 with node 4 removed by truncation: pieces 1-2-3 and 5-6
    graph.add_edges_from([(5, 6), (2, 3), (1, 2)], **street)
    # way 8 is 6-7 tagged oneway=-1: OSMnx (all_oneway) stores it reversed, as 7-6
    graph.add_edge(7, 6, osmid=8, highway="secondary", oneway="-1", reversed=False)
    graph.add_edge(1, 7, osmid=9, highway="construction", reversed=False)
    net = _network_from_graph(graph, source="test")
    assert net.ways["osmid"].tolist() == [7, 8]
    assert _way_nodes(net, 7) == [(1, 2), (2, 3), (5, 6)]
    assert _way_nodes(net, 8) == [(6, 7)]
    assert net.ways["oneway"].tolist() == [None, "-1"]
    assert net.ways["name"].tolist() == ["Cut Street", None]
    assert net.node_id.tolist() == [1, 2, 3, 5, 6, 7]
    np.testing.assert_allclose(
        net.length_m, STEP_NORTH_M * math.cos(math.radians(fo.LAT0)), rtol=1e-6
    )


def test_overpass_polygon_wins_over_place(stand_in: StandIn, tmp_path: Path) -> None:
    net = _fetch(stand_in, tmp_path / "cache", place="Atlantis", polygon=BOUNDARY)
    assert net.source == "overpass:Atlantis"
    assert len(net.u) == 18
    assert [r[1] for r in stand_in.requests] == ["/overpass/status", "/overpass/interpreter"]


def test_overpass_restores_osmnx_settings(stand_in: StandIn, tmp_path: Path) -> None:
    import osmnx as ox

    before = (ox.settings.overpass_url, ox.settings.cache_folder, ox.settings.all_oneway)
    tags_before = list(ox.settings.useful_tags_way)
    _fetch(stand_in, tmp_path / "cache", place=PLACE)
    assert (ox.settings.overpass_url, ox.settings.cache_folder, ox.settings.all_oneway) == before
    assert ox.settings.useful_tags_way == tags_before


def test_overpass_unknown_place(stand_in: StandIn, tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match=r"overpass:Atlantis: no street network returned"):
        _fetch(stand_in, tmp_path / "cache", place="Atlantis")


def test_overpass_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import osmnx

    monkeypatch.setattr(osmnx._nominatim, "time", SimpleNamespace(sleep=lambda _s: None))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkError, match=r"cannot reach .*use a local \.osm\.pbf extract"):
        fetch_overpass(
            place=PLACE,
            nominatim_url=f"http://127.0.0.1:{port}/",
            cache_dir=tmp_path / "cache",
        )


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({}, "give a `place` name or a `polygon`"),
        ({"polygon": [(0.0, 0.0), (1.0, 1.0)]}, "at least 3 distinct"),
        ({"polygon": [(0.0, 0.0), (1.0, 0.0), (100.0, 100.0)]}, r"\(100.0, 100.0\) is not"),
        ({"polygon": [(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)]}, "edges cross"),
    ],
)
def test_overpass_bad_arguments(where: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        fetch_overpass(**where)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def columbus(franklin: Path) -> tuple[RawNetwork, RawNetwork]:
    """The real extract read from its .osm.pbf and its .osm.bz2 copy."""
    osm = franklin / "osm"
    return read_osm_file(osm / "columbus.osm.pbf"), read_osm_file(osm / "columbus.osm.bz2")


@pytest.mark.shared
def test_columbus_counts(columbus: tuple[RawNetwork, RawNetwork]) -> None:
    net, _ = columbus
    # 12,006 highway ways minus 25 proposed, 4 raceway, 1 construction and 9 area=yes
    assert len(net.ways) == 11_967
    assert len(net.u) == 82_464
    assert len(net.node_id) == 72_813
    assert net.length_m.sum() / 1000 == pytest.approx(3995.09, abs=0.01)
    counts = net.ways["highway"].value_counts()
    assert counts["residential"] == 6_750
    assert counts["service"] == 2_036
    assert counts["motorway"] == 641
    assert counts["footway"] == 663
    assert not set(counts.index) & EXCLUDED_HIGHWAYS
    assert net.ways["oneway"].value_counts().to_dict() == {"yes": 1_902, "no": 69, "-1": 13}
    assert net.ways["area"].isna().sum() + (net.ways["area"] == "no").sum() == 11_967
    # inside the extract's bbox (lon -83.245..-82.788, lat 39.859..40.112, rounded)
    assert (net.lon.min(), net.lon.max()) == (-83.2453029, -82.7875929)
    assert (net.lat.min(), net.lat.max()) == (39.8766929, 40.1052719)


@pytest.mark.shared
def test_columbus_pbf_and_bz2_identical(columbus: tuple[RawNetwork, RawNetwork]) -> None:
    pbf, bz2 = columbus
    _assert_same_network(pbf, bz2)
    np.testing.assert_array_equal(pbf.length_m, bz2.length_m)


@pytest.mark.slow
@pytest.mark.shared
def test_columbus_osmnx_graph_converts_to_same_network(
    columbus: tuple[RawNetwork, RawNetwork],
    franklin: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The graph conversion fetch_overpass uses, on OSMnx's reading of the real XML (~20 s)."""
    import osmium
    import osmnx as ox

    bz2_path = str(franklin / "osm" / "columbus.osm.bz2")
    roads = tmp_path / "roads.osm"
    refs: set[int] = set()
    for way in osmium.FileProcessor(bz2_path, osmium.osm.WAY):
        if "highway" in way.tags:
            refs.update(n.ref for n in way.nodes)
    with osmium.SimpleWriter(str(roads)) as writer:
        for obj in osmium.FileProcessor(bz2_path):
            if (obj.is_node() and obj.id in refs) or (obj.is_way() and "highway" in obj.tags):
                writer.add(obj)
    monkeypatch.setattr(ox.settings, "all_oneway", True)
    monkeypatch.setattr(ox.settings, "useful_tags_way", list(WAY_TAGS))
    graph = ox.graph_from_xml(roads, simplify=False, retain_all=True)
    net = _network_from_graph(graph, source="osmnx")
    # closed ways (roundabouts, parking loops) may start at another node: compare as sets
    _assert_same_network(net, columbus[1], ordered=False)
