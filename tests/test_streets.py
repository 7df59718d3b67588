"""Tests for etl.engine.streets: the H3 int API path gives the cells the string path gave.

:func:`reference_sample_streets` and :func:`reference_cells_of` are the implementation before
the int API (one ``str_to_int(latlng_to_cell(...))`` per sample), kept here verbatim as the
reference; ``benchmarks/bench_streets.py`` times the two side by side.
"""

from __future__ import annotations

from pathlib import Path

import h3
import numpy as np
import pytest

import etl.engine.streets as streets
from etl.config import load_config
from etl.engine.network import ModeNetwork, build_mode_network
from etl.engine.streets import DEFAULT_FINE_RES, StreetSamples, cells_of, sample_streets
from etl.inputs.osm import read_osm_file

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "geodata" / "configs" / "demo.yaml"
FIELDS = ("a", "b", "frac", "time_ab", "time_ba", "lon", "lat", "cell")


# -- the reference: sample_streets and cells_of before the int API -----------------------------
def reference_cells_of(lat: np.ndarray, lon: np.ndarray, res: int) -> np.ndarray:
    """Return the H3 cells (uint64) of WGS84 points (the per-point string path)."""
    to_cell = h3.latlng_to_cell
    to_int = h3.str_to_int
    return np.fromiter(
        (to_int(to_cell(y, x, res)) for y, x in zip(lat.tolist(), lon.tolist(), strict=True)),
        dtype=np.uint64,
        count=len(lat),
    )


def reference_sample_streets(
    net: ModeNetwork, *, spacing_m: float = 40.0, res: int | None = None
) -> StreetSamples:
    """Sample every street of ``net`` at most ``spacing_m`` apart (the string-path original)."""
    res = DEFAULT_FINE_RES.get(net.mode, 10) if res is None else res
    lo = np.minimum(net.tail, net.head).astype(np.int64)
    hi = np.maximum(net.tail, net.head).astype(np.int64)
    key = lo * net.n_nodes + hi
    uniq, inv = np.unique(key, return_inverse=True)
    a, b = uniq // net.n_nodes, uniq % net.n_nodes
    t_ab = np.full(len(uniq), np.inf)
    t_ba = np.full(len(uniq), np.inf)
    is_ab = net.tail == lo
    np.minimum.at(t_ab, inv[is_ab], net.time_s[is_ab])
    np.minimum.at(t_ba, inv[~is_ab], net.time_s[~is_ab])
    length = np.zeros(len(uniq))
    np.maximum.at(length, inv, net.length_m)

    pieces = np.maximum(1, np.ceil(length / spacing_m).astype(np.int64))
    counts = pieces + 1
    street = np.repeat(np.arange(len(uniq)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    step = np.arange(len(street)) - np.repeat(starts, counts)
    frac = step / np.repeat(pieces, counts)
    sa, sb = a[street], b[street]
    lon = net.lon[sa] + frac * (net.lon[sb] - net.lon[sa])
    lat = net.lat[sa] + frac * (net.lat[sb] - net.lat[sa])
    cell = reference_cells_of(lat, lon, res)
    return StreetSamples(
        a=sa,
        b=sb,
        frac=frac,
        time_ab=t_ab[street],
        time_ba=t_ba[street],
        lon=lon,
        lat=lat,
        cell=cell,
        res=res,
    )


# -- networks --------------------------------------------------------------------------------
#: Where generated networks lie: Columbus, and astride the equator and the prime meridian.
CENTRES = {"columbus": (-83.0, 39.95), "null-island": (0.0, 0.0)}


def generated_network(
    seed: int, *, n_nodes: int = 3000, mode: str = "walk", centre: str = "columbus"
) -> ModeNetwork:
    """A random network: one-way and two-way streets, parallel edges, isolated nodes.

    Around ``"null-island"`` coordinates change sign along streets, so many street ends at
    ``frac == 1`` are not bit-for-bit their node (``a + 1.0 * (b - a) != b``) and take the
    per-point path.
    """
    rng = np.random.default_rng(seed)
    lon0, lat0 = CENTRES[centre]
    lon = lon0 + 0.4 * (rng.random(n_nodes) - 0.5)
    lat = lat0 + 0.3 * (rng.random(n_nodes) - 0.5)
    n_streets = 2 * n_nodes
    tail = rng.integers(0, n_nodes - 50, n_streets)  # the last 50 nodes have no street
    head = np.clip(tail + rng.integers(1, 40, n_streets), 0, n_nodes - 51)
    keep = tail != head
    tail, head = tail[keep], head[keep]
    two_way = rng.random(len(tail)) < 0.7
    tails = np.concatenate([tail, head[two_way], tail[:25]])  # 25 parallel edges
    heads = np.concatenate([head, tail[two_way], head[:25]])
    length = np.concatenate(
        [
            rng.exponential(120.0, len(tail)) + 1.0,
            rng.exponential(120.0, int(two_way.sum())) + 1.0,
            rng.exponential(120.0, 25) + 1.0,
        ]
    )
    n_edges = len(tails)
    return ModeNetwork(
        mode=mode,
        crs="EPSG:32617",
        osmid=np.arange(n_nodes, dtype=np.int64),
        lon=lon,
        lat=lat,
        x=np.zeros(n_nodes),
        y=np.zeros(n_nodes),
        tail=tails.astype(np.int32),
        head=heads.astype(np.int32),
        time_s=length / rng.uniform(1.0, 25.0, n_edges),
        length_m=length,
        highway=np.zeros(n_edges, dtype=np.int16),
        highway_classes=("residential",),
        walk_speed_mps=1.33,
    )


@pytest.fixture(scope="module")
def demo_networks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModeNetwork]:
    """The demo region's drive and walk networks, built as the pipeline builds them."""
    from etl.demo.generate import generate_demo
    from etl.validate import resolve_crs

    files = generate_demo(tmp_path_factory.mktemp("streets") / "demo", seed=7)
    cfg = resolve_crs(load_config(DEMO_CONFIG))
    nc = cfg.network
    raw = read_osm_file(files["osm"])
    return {
        mode: build_mode_network(raw, mode, crs=cfg.crs, **nc.speed_options())
        for mode in nc.modes
    }


def assert_same_samples(new: StreetSamples, old: StreetSamples) -> None:
    """Every array equal element for element (same order, same dtype), same resolution."""
    assert new.res == old.res
    for name in FIELDS:
        got, want = getattr(new, name), getattr(old, name)
        assert got.dtype == want.dtype, name
        assert np.array_equal(got, want), name


# -- tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("centre", sorted(CENTRES))
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("mode", "res"), [("walk", None), ("drive", None), ("drive", 11)])
def test_generated_network_matches_reference(
    centre: str, seed: int, mode: str, res: int | None
) -> None:
    net = generated_network(seed, mode=mode, centre=centre)
    new = sample_streets(net, res=res)
    old = reference_sample_streets(net, res=res)
    assert_same_samples(new, old)
    assert len(new) > 2 * 3000


def test_generated_network_exercises_both_paths() -> None:
    """Street ends that are not bit-for-bit their node exist, and still get their own cell."""
    net = generated_network(0, centre="null-island")
    s = sample_streets(net)
    at_b = s.frac == 1.0
    moved = at_b & ((s.lat != net.lat[s.b]) | (s.lon != net.lon[s.b]))
    assert moved.sum() > 100
    assert (at_b & ~moved).sum() > 100
    assert np.array_equal(s.cell[moved], reference_cells_of(s.lat[moved], s.lon[moved], s.res))


def test_spacing_changes_nothing_but_the_samples() -> None:
    net = generated_network(3, centre="null-island")
    for spacing in (5.0, 40.0, 1000.0):
        assert_same_samples(
            sample_streets(net, spacing_m=spacing), reference_sample_streets(net, spacing_m=spacing)
        )


def test_demo_networks_match_reference(demo_networks: dict[str, ModeNetwork]) -> None:
    assert set(demo_networks) == {"drive", "walk"}
    for net in demo_networks.values():
        new = sample_streets(net)
        assert_same_samples(new, reference_sample_streets(net))
        assert len(np.unique(new.cell)) > 100


@pytest.mark.parametrize("mode", ["drive", "walk"])
def test_built_demo_bundle_matches_reference(
    mode: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.test_townhall import demo_geodata

    # The demo bundle as the pipeline builds it (once per session), not a local geodata/.
    geo = demo_geodata(tmp_path_factory)
    net = ModeNetwork.load(geo / "demo" / "network" / f"{mode}.npz")
    assert_same_samples(sample_streets(net), reference_sample_streets(net))


def test_cells_of_matches_reference_across_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    lat = rng.uniform(-89.9, 89.9, 2500)
    lon = rng.uniform(-180.0, 180.0, 2500)
    lat[:3], lon[:3] = [0.0, -0.0, 45.0], [-0.0, 180.0, -180.0]
    want = {res: reference_cells_of(lat, lon, res) for res in (0, 9, 15)}
    for batch in (1000, 2500, 1 << 20):
        monkeypatch.setattr(streets, "CELLS_BATCH", batch)
        for res, cells in want.items():
            got = cells_of(lat, lon, res)
            assert got.dtype == np.uint64
            assert np.array_equal(got, cells)
    assert len(cells_of(np.array([]), np.array([]), 9)) == 0


def test_cells_of_rejects_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="2 latitudes but 1 longitudes"):
        cells_of(np.array([40.0, 40.1]), np.array([-83.0]), 9)


def test_cells_of_invalid_point_raises_like_reference() -> None:
    lat, lon = np.array([40.0, np.nan]), np.array([-83.0, -83.0])
    with pytest.raises(h3.H3BaseException):
        reference_cells_of(lat, lon, 9)
    with pytest.raises(h3.H3BaseException):
        cells_of(lat, lon, 9)
