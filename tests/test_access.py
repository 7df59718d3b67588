"""The access engine against a NetworkX reference, on small fixtures and the real network."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from etl.engine.access import nearest_site_times, point_times, snap_points
from etl.engine.network import ModeNetwork, build_mode_network
from tests.conftest import make_raw

CRS = "EPSG:32617"


def _reference(net: ModeNetwork, site_nodes, offsets) -> np.ndarray:
    """Travel time from every node to the nearest site, with NetworkX on the forward graph."""
    g = nx.MultiDiGraph()
    g.add_nodes_from(range(net.n_nodes))
    for a, b, t in zip(net.tail.tolist(), net.head.tolist(), net.time_s.tolist(), strict=True):
        g.add_edge(a, b, weight=t)
    sink = "care"
    for node, off in zip(site_nodes, offsets, strict=True):
        # Multi-edges: the sink edge with the smallest offset wins, as in the engine.
        g.add_edge(int(node), sink, weight=float(off))
    dist = nx.single_source_dijkstra_path_length(g.reverse(copy=True), sink, weight="weight")
    return np.array([dist.get(i, np.inf) for i in range(net.n_nodes)])


@pytest.fixture
def oneway_net() -> ModeNetwork:
    """A one-way loop: 1 → 2 → 3 → 4 → 1, each 100 m of residential street."""
    lat0 = 40.0
    step = 100 / 111_195  # about 100 m in degrees of latitude
    coords = {
        1: (-83.0, lat0),
        2: (-83.0, lat0 + step),
        3: (-83.0, lat0 + 2 * step),
        4: (-83.0, lat0 + 3 * step),
    }
    raw = make_raw(
        coords,
        [
            ([1, 2, 3, 4], {"highway": "residential", "oneway": "yes"}),
            ([4, 3, 2, 1], {"highway": "residential", "oneway": "no", "access": "no"}),
            ([4, 1], {"highway": "residential", "oneway": "yes"}),
        ],
    )
    return build_mode_network(raw, "drive", crs=CRS, use_maxspeed=False)


def test_direction_is_person_to_care(oneway_net: ModeNetwork) -> None:
    net = oneway_net
    site = int(np.flatnonzero(net.osmid == 2)[0])
    res = nearest_site_times(net, np.array([site]))
    sec_100m = 100 / (40 / 3.6)  # residential at 40 km/h
    by_osm = dict(zip(net.osmid.tolist(), res.time_s.tolist(), strict=True))
    # From node 1 a person drives 1 → 2: one block.
    assert by_osm[1] == pytest.approx(sec_100m, rel=1e-3)
    # From node 3 the one-way loop forces 3 → 4 → 1 → 2: three blocks plus the 300 m link back.
    assert by_osm[3] > 4 * sec_100m
    # Care → person is a different answer on one-way streets.
    back = nearest_site_times(net, np.array([site]), to_sites=False)
    assert dict(zip(net.osmid.tolist(), back.time_s.tolist(), strict=True))[3] == pytest.approx(
        sec_100m, rel=1e-3
    )
    np.testing.assert_allclose(res.time_s, _reference(net, [site], [0.0]), rtol=0, atol=1e-6)


def test_parallel_edges_take_the_minimum() -> None:
    coords = {1: (-83.0, 40.0), 2: (-83.0, 40.001)}
    raw = make_raw(
        coords,
        [
            ([1, 2], {"highway": "residential"}),
            ([1, 2], {"highway": "motorway_link"}),
            ([1, 2], {"highway": "service"}),
        ],
    )
    net = build_mode_network(raw, "drive", crs=CRS, use_maxspeed=False)
    assert net.n_edges == 2  # one per direction: parallel ways collapse to the fastest
    fast = raw.length_m[0] / (50 / 3.6)
    assert net.time_s.min() == pytest.approx(fast)


def _random_grid(seed: int, size: int = 12) -> ModeNetwork:
    rng = np.random.default_rng(seed)
    coords, ways = {}, []
    for i in range(size):
        for j in range(size):
            coords[i * size + j + 1] = (
                -83.0 + j * 0.002 + rng.normal(0, 2e-4),
                40.0 + i * 0.002 + rng.normal(0, 2e-4),
            )
    classes = ["residential", "secondary", "primary", "tertiary", "service"]
    for i in range(size):
        for j in range(size - 1):
            a, b = i * size + j + 1, i * size + j + 2
            tags = {"highway": str(rng.choice(classes))}
            if rng.random() < 0.25:
                tags["oneway"] = str(rng.choice(["yes", "-1"]))
            ways.append(([a, b], tags))
            a, b = j * size + i + 1, (j + 1) * size + i + 1
            tags = {"highway": str(rng.choice(classes))}
            if rng.random() < 0.25:
                tags["oneway"] = "yes"
            ways.append(([a, b], tags))
    return build_mode_network(make_raw(coords, ways), "drive", crs=CRS, use_maxspeed=False)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_networkx_with_snap_offsets(seed: int) -> None:
    net = _random_grid(seed)
    rng = np.random.default_rng(100 + seed)
    sites = rng.choice(net.n_nodes, size=5, replace=False)
    sites = np.concatenate([sites, sites[:2]])  # two sites share a node: the closer one wins
    offsets = rng.uniform(0, 300, size=len(sites))
    res = nearest_site_times(net, sites, site_offsets_s=offsets)
    np.testing.assert_allclose(res.time_s, _reference(net, sites, offsets), rtol=0, atol=1e-6)
    # The reported nearest site is one whose own travel time equals the minimum.
    for node in rng.choice(net.n_nodes, size=20, replace=False):
        k = res.nearest[node]
        alone = nearest_site_times(net, sites[[k]], site_offsets_s=offsets[[k]])
        assert alone.time_s[node] == pytest.approx(res.time_s[node], abs=1e-6)


def test_snap_walks_the_gap() -> None:
    net = _random_grid(5)
    x = net.x[:3] + np.array([30.0, 0.0, 120.0])
    y = net.y[:3]
    snap = snap_points(net, x, y)
    assert snap.node.tolist() == [0, 1, 2] or snap.distance_m[1] == 0.0
    assert snap.walk_s[0] == pytest.approx(30.0 / (4.8 / 3.6))
    res = nearest_site_times(net, np.array([10]))
    t, nearest = point_times(res, snap)
    assert t[1] == pytest.approx(res.time_s[snap.node[1]])
    assert (nearest == 0).all()


def test_no_sites_means_unreachable() -> None:
    net = _random_grid(6)
    res = nearest_site_times(net, np.array([], dtype=np.int64))
    assert np.isinf(res.time_s).all() and (res.nearest == -1).all()


def test_largest_strongly_connected_component_is_kept() -> None:
    coords = {
        1: (-83.0, 40.0),
        2: (-83.0, 40.001),
        3: (-83.0, 40.002),
        8: (-82.9, 40.0),
        9: (-82.9, 40.001),
    }
    raw = make_raw(
        coords,
        [
            ([1, 2, 3], {"highway": "residential"}),
            ([8, 9], {"highway": "residential"}),
            ([3, 8], {"highway": "residential", "oneway": "yes"}),
        ],
    )
    net = build_mode_network(raw, "drive", crs=CRS)
    assert sorted(net.osmid.tolist()) == [1, 2, 3]


@pytest.mark.shared
def test_real_columbus_network_matches_networkx(franklin) -> None:
    from etl.inputs.osm import read_osm_file

    raw = read_osm_file(franklin / "osm" / "columbus.osm.pbf")
    net = build_mode_network(raw, "drive", crs=CRS)
    rng = np.random.default_rng(42)
    sites = rng.choice(net.n_nodes, size=8, replace=False)
    offsets = rng.uniform(0, 120, size=8)
    res = nearest_site_times(net, sites, site_offsets_s=offsets)
    np.testing.assert_allclose(res.time_s, _reference(net, sites, offsets), rtol=0, atol=1e-6)
    assert np.isfinite(res.time_s).all()  # one strongly connected component


@pytest.mark.parametrize("seed", range(4))
def test_one_site_search_equals_the_super_source_search(seed: int) -> None:
    """A single site is searched from its node (no CSR copy); the times are the same."""
    from scipy.sparse import csgraph

    from etl.engine.access import _with_super_source
    from tests.test_scenario import random_grid

    net = random_grid(seed)
    rng = np.random.default_rng(seed)
    node, offset = int(rng.integers(net.n_nodes)), float(rng.uniform(0, 90))
    for limit in (np.inf, 240.0, offset / 2):
        got = nearest_site_times(net, np.array([node]), site_offsets_s=np.array([offset]),
                                 limit_s=limit)  # fmt: skip
        graph = _with_super_source(net.csr_reverse(), np.array([node]), np.array([offset]))
        want = csgraph.dijkstra(graph, directed=True, indices=net.n_nodes, limit=limit)
        np.testing.assert_allclose(got.time_s, want[: net.n_nodes], rtol=0, atol=1e-9)
        assert ((got.nearest == 0) == np.isfinite(got.time_s)).all()
