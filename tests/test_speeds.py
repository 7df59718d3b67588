"""Speed-model costs beyond the class table: maxspeed parsing, its factor, traffic signals."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from etl.config import NetworkConfig
from etl.engine.network import build_mode_network
from etl.engine.speeds import parse_maxspeed
from etl.inputs.osm import read_osm_file
from tests.conftest import make_raw

CRS = "EPSG:32617"
# Three nodes on a line, about 111 m apart; node 2 is the middle one.
COORDS = {1: (-83.0, 40.0), 2: (-83.0, 40.001), 3: (-83.0, 40.002)}


@pytest.mark.parametrize(
    ("tag", "kph"),
    [
        ("30 mph", 30 * 1.609344),
        ("50", 50.0),
        ("50 km/h", 50.0),
        ("RU:urban", 60.0),
        ("ru:rural", 90.0),
        ("US:urban", 50.0),  # no country value: the zone default
        ("DE:motorway", 130.0),
        ("25 mph;35 mph", 25 * 1.609344),
    ],
)
def test_parse_maxspeed(tag: str, kph: float) -> None:
    assert parse_maxspeed(tag) == pytest.approx(kph)


@pytest.mark.parametrize("tag", ["none", "signals", "walk", "xx:nowhere", "", None])
def test_parse_maxspeed_no_speed(tag: object) -> None:
    # "none" (no posted limit) falls back to the class speed, unlike OSRM's 140 km/h.
    assert math.isnan(parse_maxspeed(tag))


def _edge_time(net, a: int, b: int) -> float:
    ia, ib = int(np.flatnonzero(net.osmid == a)[0]), int(np.flatnonzero(net.osmid == b)[0])
    k = np.flatnonzero((net.tail == ia) & (net.head == ib))
    assert len(k) == 1
    return float(net.time_s[k[0]])


def test_signal_adds_exactly_its_delay() -> None:
    raw = make_raw(COORDS, [([1, 2, 3], {"highway": "residential"})])
    plain = build_mode_network(raw, "drive", crs=CRS)
    signalled = replace(raw, signals=np.array([1], dtype=np.int64))  # node index 1 = id 2
    net = build_mode_network(signalled, "drive", crs=CRS, signal_delay_s=7.0)
    # Edges entering the signal node (1→2 and 3→2) gain 7 s; edges leaving it do not.
    assert _edge_time(net, 1, 2) == pytest.approx(_edge_time(plain, 1, 2) + 7.0)
    assert _edge_time(net, 3, 2) == pytest.approx(_edge_time(plain, 3, 2) + 7.0)
    assert _edge_time(net, 2, 3) == pytest.approx(_edge_time(plain, 2, 3))
    assert _edge_time(net, 2, 1) == pytest.approx(_edge_time(plain, 2, 1))
    # The default (0 s) and the walk network ignore signals.
    assert np.array_equal(build_mode_network(signalled, "drive", crs=CRS).time_s, plain.time_s)
    walk = build_mode_network(signalled, "walk", crs=CRS, signal_delay_s=7.0)
    assert np.array_equal(walk.time_s, build_mode_network(raw, "walk", crs=CRS).time_s)


def test_signal_delay_is_scaled_by_congestion() -> None:
    raw = replace(
        make_raw(COORDS, [([1, 2, 3], {"highway": "residential"})]),
        signals=np.array([1], dtype=np.int64),
    )
    base = build_mode_network(raw, "drive", crs=CRS)
    net = build_mode_network(raw, "drive", crs=CRS, signal_delay_s=5.0, congestion_factor=2.0)
    assert _edge_time(net, 1, 2) == pytest.approx(2 * (_edge_time(base, 1, 2) + 5.0))


def test_maxspeed_factor_applies_to_tagged_ways_only() -> None:
    raw = make_raw(
        COORDS,
        [([1, 2], {"highway": "primary", "maxspeed": "40 mph"}), ([2, 3], {"highway": "primary"})],
    )
    full = build_mode_network(raw, "drive", crs=CRS)
    slow = build_mode_network(raw, "drive", crs=CRS, maxspeed_factor=0.8)
    assert _edge_time(slow, 1, 2) == pytest.approx(_edge_time(full, 1, 2) / 0.8)
    assert _edge_time(slow, 2, 3) == pytest.approx(_edge_time(full, 2, 3))  # class speed


def test_reader_keeps_traffic_signals(tmp_path: Path) -> None:
    osm = tmp_path / "signals.osm"
    osm.write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\">\n"
        '<node id="1" lat="40.0" lon="-83.0"/>\n'
        '<node id="2" lat="40.001" lon="-83.0"><tag k="highway" v="traffic_signals"/></node>\n'
        '<node id="3" lat="40.002" lon="-83.0"><tag k="highway" v="crossing"/></node>\n'
        '<node id="9" lat="41.0" lon="-83.0"><tag k="highway" v="traffic_signals"/></node>\n'
        '<way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/>'
        '<tag k="highway" v="residential"/></way>\n</osm>\n',
        encoding="utf-8",
    )
    raw = read_osm_file(osm)
    # Only the signal on a street is kept (node 9 is on no way), as an index into node_id.
    assert raw.node_id[raw.signals].tolist() == [2]


def test_config_defaults_leave_times_unchanged() -> None:
    nc = NetworkConfig(osm={"path": "x.osm.pbf"})
    assert nc.maxspeed_factor == 1.0 and nc.signal_delay_s == 0.0
    with pytest.raises(ValueError, match="maxspeed_factor"):
        NetworkConfig(osm={"path": "x.osm.pbf"}, maxspeed_factor=1.5)
