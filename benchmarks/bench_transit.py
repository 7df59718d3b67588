"""Benchmark the transit engine: the whole 07:00-09:00 window, every stop and walk node.

Run: ``.venv/bin/python benchmarks/bench_transit.py [--reference-stops N]``

For the Terre Haute feed (../shared/data/terre-haute-in, its roads for walking; sites are
synthetic: the street nodes nearest five stops drawn with a fixed seed) and
for the fictional region's feed (geodata/raw/demo/transit, generated when missing; the demo
bundle's walk network and buprenorphine sites when built, else straight-line walks), it
prints CPU time, wall time and the load average (the machine is shared) for:

* reading the timetable and building patterns, footpaths and access walks (preparation);
* the engine: travel time to the nearest site from every stop at every minute of the
  window, and the median and 80th percentile for every walk-network node, by backward
  profiles (one reversed RAPTOR search per possible arrival at care: the default) and by
  forward profiles (one search per boarding event of every stop), checked equal;
* a What-if (a site added at the street node by a random stop, 20 draws): profiles for the
  new site alone and the minimum with the stored baseline node arrivals (exact: the nearest
  site is a minimum over sites), p50 and p95 wall time;
* baseline 1: the same engine searching once per stop and minute (no profiles), checked equal;
* baseline 2: the brute-force reference of the tests (a time-expanded graph searched with
  Dijkstra in Python) on ``--reference-stops`` stops × every 10th minute, checked equal and
  extrapolated to every stop and minute.

``--synthetic ROUTES`` adds a made-up feed of that size (no baselines), to see how the
engine scales beyond the two small real feeds. Skips a region, with a message, where its
inputs are absent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyproj

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl.engine import transit as te  # noqa: E402
from etl.engine.access import nearest_site_times, snap_points  # noqa: E402
from etl.engine.network import ModeNetwork, build_mode_network  # noqa: E402
from etl.engine.timetable import Timetable  # noqa: E402
from etl.inputs.osm import read_osm_file  # noqa: E402
from etl.inputs.timetable import read_timetable  # noqa: E402
from tests.test_transit_engine import TimeExpanded  # noqa: E402

SHARED = Path(os.environ.get("ACCESS_ATLAS_SHARED", ROOT.parent / "shared"))
TERRE_HAUTE = SHARED / "data" / "terre-haute-in"
DEMO_FEED = ROOT / "geodata" / "raw" / "demo" / "transit"
DEMO_BUNDLE = ROOT / "geodata" / "demo"
WINDOW = (7 * 3600, 9 * 3600)
MAX_WALK_M = 800.0  # transfers, access and egress
MAX_TRANSFERS = 3


def _timed(label: str, fn: Callable[[], object], rows: list) -> object:
    load0 = os.getloadavg()[0]
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    rows.append((label, cpu, wall, max(load0, os.getloadavg()[0])))
    print(f"  {label:<58} cpu {cpu:8.3f} s  wall {wall:8.3f} s  load {os.getloadavg()[0]:.2f}")
    return out


def _reference(table: Timetable, fp: te.Footpaths, egress: np.ndarray) -> TimeExpanded:
    ids = table.stop_id
    trips = []
    for t in range(table.n_trips):
        a, b = table.trip_start[t], table.trip_start[t + 1]
        trips.append(
            [
                (ids[table.stop[i]], int(table.arrival[i]), int(table.departure[i]),
                 bool(table.pickup[i]), bool(table.dropoff[i]))
                for i in range(a, b)
            ]
        )  # fmt: skip
    walks: dict[str, dict[str, int]] = {s: {} for s in ids}
    for a, b, s in zip(fp.src, fp.dst, fp.seconds, strict=True):
        walks[ids[a]][ids[b]] = int(s)
    eg = {ids[i]: math.ceil(e) for i, e in enumerate(egress) if np.isfinite(e)}
    return TimeExpanded(trips, walks, eg, max_rides=MAX_TRANSFERS + 1, slack=60)


def run_region(
    name: str,
    load_table: Callable[[], Timetable],
    net: ModeNetwork | None,
    site_nodes: np.ndarray | None,
    reference_stops: int,
    *,
    n_sites: int = 5,
    max_trip_s: int | None = None,
    baselines: bool = True,
) -> None:
    print(f"\n{name}: window 07:00-09:00 every minute, max walk {MAX_WALK_M:.0f} m, "
          f"max transfers {MAX_TRANSFERS}")  # fmt: skip
    rows: list = []
    table = _timed("read timetable (stop_times, calendar, frequencies)", load_table, rows)
    pat = _timed("build FIFO patterns", lambda: te.build_patterns(table), rows)
    print(f"  {table.n_stops} stops, {table.n_trips} trips, {pat.n_patterns} patterns, "
          f"{pat.n_columns} route-stops")  # fmt: skip
    access = direct = None
    n_nodes = None
    if net is not None:
        x, y = pyproj.Transformer.from_crs("EPSG:4326", net.crs, always_xy=True).transform(
            table.stop_lon, table.stop_lat
        )
        snap = snap_points(net, np.asarray(x), np.asarray(y))
        near = nearest_site_times(net, site_nodes)
        egress = near.time_s[snap.node] + snap.walk_s
        egress[egress > MAX_WALK_M / net.walk_speed_mps] = np.inf
        fp = _timed(
            "footpaths along the walk network",
            lambda: te.network_footpaths(net, snap.node, snap.walk_s, max_walk_m=MAX_WALK_M),
            rows,
        )
        access = _timed(
            "access walks node -> stop (walk network)",
            lambda: te.network_access(net, snap.node, snap.walk_s, max_walk_m=MAX_WALK_M),
            rows,
        )
        direct, n_nodes = near.time_s, net.n_nodes
        print(f"  walk network {net.n_nodes:,} nodes; {len(fp.src):,} footpaths; "
              f"{len(access.node):,} access pairs")  # fmt: skip
    else:
        fp = te.straight_line_footpaths(table.stop_lon, table.stop_lat, max_walk_m=MAX_WALK_M)
        rng = np.random.default_rng(5)
        egress = np.full(table.n_stops, np.inf)
        egress[rng.choice(table.n_stops, size=n_sites, replace=False)] = 120.0
        print(f"  no walk network: straight-line footpaths x 1.3, {n_sites} synthetic sites "
              "at stops (2 min walk from the stop)")  # fmt: skip
    rev = _timed(
        "build FIFO patterns of the reversed timetable",
        lambda: te.build_patterns(te.reverse_timetable(table)),
        rows,
    )
    opts = {"window": WINDOW, "max_transfers": MAX_TRANSFERS, "max_trip_s": max_trip_s}
    with_access = access is not None
    result = _timed(
        "ENGINE backward: every stop x minute" + (" + every node" if with_access else ""),
        lambda: te.transit_times(
            table,
            fp,
            egress,
            percentiles=(50, 80),
            access=access,
            direct_s=direct,
            n_nodes=n_nodes,
            reverse_patterns=rev,
            **opts,
        ),
        rows,
    )
    backward = _timed(
        "ENGINE backward: every stop x minute only",
        lambda: te.transit_times(table, fp, egress, reverse_patterns=rev, **opts),
        rows,
    )
    assert np.array_equal(backward.stop_seconds, result.stop_seconds)
    if not baselines:  # a large feed: the forward profiles would take minutes
        idle = len(result.stops_without_service)
        print(f"  searches: backward {backward.searches:,} (arrivals at care); "
              f"{idle} stops without service in the window")  # fmt: skip
        print(f"  => stops, whole window: backward {rows[-1][1]:.3f} s CPU")
        return
    forward = _timed(
        "ENGINE forward (per boarding event): every stop x minute",
        lambda: te.transit_times(table, fp, egress, method="forward", patterns=pat, **opts),
        rows,
    )
    deps = result.departures
    reached = np.isfinite(result.stop_summary[:, 0])
    print(
        f"  searches: backward {backward.searches:,} (arrivals at care), forward "
        f"{forward.searches:,} (boarding events), per minute {table.n_stops * len(deps):,}; "
        f"{len(result.stops_without_service)} stops without service in the window"
    )
    if reached.any():
        print(f"  stops: care reached from {reached.sum()}; median of the medians "
              f"{np.median(result.stop_summary[reached, 0]) / 60:.1f} min")  # fmt: skip
    if result.node_summary is not None:
        ok = np.isfinite(result.node_summary[:, 0])
        med, p80 = (np.median(result.node_summary[ok, i]) / 60 for i in (0, 1))
        print(f"  nodes: median {med:.1f} min, p80 {p80:.1f} min (medians over nodes)")
    assert np.array_equal(forward.stop_seconds, result.stop_seconds)
    engine_cpu = rows[-2][1]

    if with_access:
        _whatif(table, fp, egress, access, direct, n_nodes, net, rev, deps, max_trip_s)

    stops = np.repeat(np.arange(table.n_stops), len(deps))
    minutes = np.tile(deps, table.n_stops)
    per_minute = _timed(
        "BASELINE 1: one batched search per stop x minute",
        lambda: te.raptor(
            pat, fp, stops, minutes, max_transfers=MAX_TRANSFERS, egress_s=egress
        ).target.reshape(table.n_stops, len(deps)),
        rows,
    )
    assert np.array_equal(te.travel_seconds(per_minute, deps[None, :]), result.stop_seconds)

    ref = _reference(table, fp, egress)
    k = min(reference_stops, table.n_stops)
    chosen = np.random.default_rng(0).choice(table.n_stops, size=k, replace=False)
    ids = table.stop_id
    sample = np.arange(0, len(deps), 10)  # every 10th minute

    def brute() -> np.ndarray:
        out = np.empty((k, len(sample)))
        for r, s in enumerate(chosen):
            for m, d in enumerate(deps[sample]):
                sources = [(s2, int(d) + w) for s2, w in ref.walks[ids[s]].items()]
                _, target = ref.search(sources, int(d), ref.egress.get(ids[s], math.inf),
                                       walk_on=False)  # fmt: skip
                out[r, m] = target - d
        return out

    got = _timed(f"BASELINE 2: time-expanded Dijkstra, {k} stops x {len(sample)} minutes",
                 brute, rows)  # fmt: skip
    assert np.array_equal(got, result.stop_seconds[np.ix_(chosen, sample)])
    b1 = rows[-2][1]
    b2_all = rows[-1][1] * table.n_stops * len(deps) / max(k * len(sample), 1)
    print(f"  => stops, whole window: engine (backward) {engine_cpu:.3f} s CPU; forward "
          f"{rows[-3][1]:.3f} s; per-minute searches {b1:.3f} s ({b1 / engine_cpu:.0f}x); "
          f"time-expanded Dijkstra ~{b2_all:.1f} s for every stop and minute, extrapolated "
          f"({b2_all / engine_cpu:.0f}x); all equal")  # fmt: skip


def _whatif(table, fp, egress, access, direct, n_nodes, net, rev, deps, max_trip_s) -> None:
    """A site added: profiles for the new site alone, then min with stored node arrivals."""
    longest = int(access.seconds.max(initial=0))
    opts = {"start_s": WINDOW[0], "end_s": WINDOW[1] + longest, "max_transfers": MAX_TRANSFERS}
    _, base = te.backward_profiles(table, fp, egress, reverse=rev, max_trip_s=max_trip_s, **opts)
    stored = te.node_arrivals(base, access, deps, n_nodes, direct_s=direct)  # the baseline
    x, y = pyproj.Transformer.from_crs("EPSG:4326", net.crs, always_xy=True).transform(
        table.stop_lon, table.stop_lat
    )
    snap = snap_points(net, np.asarray(x), np.asarray(y))
    limit = MAX_WALK_M / net.walk_speed_mps
    rng = np.random.default_rng(11)
    walls, cpus = [], []
    for stop in rng.choice(table.n_stops, size=20, replace=False):
        node = int(snap.node[stop])  # a new site at the street node by a random stop
        c0, w0 = time.process_time(), time.perf_counter()
        near = nearest_site_times(net, np.array([node]))
        new_egress = near.time_s[snap.node] + snap.walk_s
        new_egress[new_egress > limit] = np.inf
        _, prof = te.backward_profiles(
            table, fp, new_egress, reverse=rev, max_trip_s=max_trip_s, **opts
        )
        touched = np.flatnonzero((np.diff(prof.ptr) > 0) | np.isfinite(new_egress))
        nodes = np.unique(access.node[np.isin(access.stop, touched)])
        nodes = np.union1d(nodes, np.flatnonzero(near.time_s < direct))  # walking is better
        arr = te.node_arrivals(prof, access, deps, n_nodes, direct_s=near.time_s, nodes=nodes)
        updated = np.minimum(stored[nodes], arr)
        te.nearest_rank(te.travel_seconds(updated, deps[None, :]), (50, 80))
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    print(f"  WHAT-IF, a site added (20 draws; new site's profiles + min with stored node "
          f"arrivals): wall p50 {np.median(walls) * 1000:.0f} ms, p95 "
          f"{np.percentile(walls, 95) * 1000:.0f} ms; cpu p95 {np.percentile(cpus, 95) * 1000:.0f}"
          f" ms; load {os.getloadavg()[0]:.2f}")  # fmt: skip


def synthetic_feed(folder: Path, n_routes: int, headway_s: int = 900) -> Path:
    """A large made-up feed: straight routes across a 20 km square, a stop every 400 m,
    both directions every ``headway_s`` from 05:00 to 23:00 (no real place)."""
    rng = np.random.default_rng(1)
    stops, times, trips = [], [], []
    for r in range(n_routes):
        ang, (cx, cy) = rng.uniform(0, np.pi), rng.uniform(-6000, 6000, 2)
        d = np.arange(-10000, 10000, 400.0)
        ids = [f"s{len(stops) + i}" for i in range(len(d))]
        for i, (x, y) in enumerate(zip(cx + d * np.cos(ang), cy + d * np.sin(ang), strict=True)):
            stops.append(f"{ids[i]},{ids[i]},{39.96 + y / 111000:.6f},{-83 + x / 85000:.6f}\n")
        for direction, seq in enumerate((ids, ids[::-1])):
            for t0 in range(5 * 3600 + int(rng.integers(0, headway_s)), 23 * 3600, headway_s):
                tid = f"r{r}d{direction}t{t0}"
                trips.append(f"r{r},WK,{tid}\n")
                t = t0
                for i, sid in enumerate(seq):
                    c = f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"
                    times.append(f"{tid},{c},{c},{sid},{i + 1}\n")
                    t += 72 + int(rng.integers(0, 20))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stops.txt").write_text("stop_id,stop_name,stop_lat,stop_lon\n" + "".join(stops))
    (folder / "routes.txt").write_text(
        "route_id,route_short_name\n" + "".join(f"r{r},{r}\n" for r in range(n_routes))
    )
    (folder / "trips.txt").write_text("route_id,service_id,trip_id\n" + "".join(trips))
    (folder / "stop_times.txt").write_text(
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" + "".join(times)
    )
    (folder / "calendar.txt").write_text(
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,"
        "end_date\nWK,1,1,1,1,1,0,0,20240101,20241231\n"
    )
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-stops", type=int, default=6)
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="ROUTES",
        help="also time a made-up feed of ROUTES routes (40: 2,000 stops, 288k stop times)",
    )
    args = parser.parse_args()
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; {os.cpu_count()} CPUs; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip

    zip_path = TERRE_HAUTE / "terre-haute-gtfs.zip"
    if zip_path.is_file():
        net = None
        roads = TERRE_HAUTE / "terre-haute-roads.osm.pbf"
        if roads.is_file():
            raw = read_osm_file(roads)
            net = build_mode_network(raw, "walk", crs="EPSG:32616")
            # No care list comes with the feed: five synthetic sites at the street nodes
            # nearest five stops drawn with a fixed seed.
            stops = read_timetable(zip_path, "2017-10-03")
            x, y = pyproj.Transformer.from_crs("EPSG:4326", net.crs, always_xy=True).transform(
                stops.stop_lon, stops.stop_lat
            )
            pick = np.random.default_rng(3).choice(stops.n_stops, size=5, replace=False)
            sites = snap_points(net, np.asarray(x)[pick], np.asarray(y)[pick]).node
        else:
            sites = None
        run_region(
            "Terre Haute Transit, 2017-10-03 (a Tuesday)",
            lambda: read_timetable(zip_path, "2017-10-03"),
            net,
            sites,
            args.reference_stops,
        )
    else:
        print(f"\nTerre Haute: skipped, {zip_path} not found (the project's ../shared)")

    feed = DEMO_FEED
    tmp = None
    if not (feed / "stop_times.txt").is_file():
        from etl.demo.generate import generate_demo

        tmp = tempfile.TemporaryDirectory()
        feed = generate_demo(tmp.name)["transit"].parent
    net, sites = None, None
    walk = DEMO_BUNDLE / "network" / "walk.npz"
    providers = DEMO_BUNDLE / "layers" / "providers.parquet"
    if walk.is_file() and providers.is_file():
        import pandas as pd

        net = ModeNetwork.load(walk)
        p = pd.read_parquet(providers, columns=["category", "node_walk"])
        sites = p.loc[p["category"] == "buprenorphine", "node_walk"].dropna().to_numpy(np.int64)
    run_region(
        "Millbrook County (fictional), 2020-06-02",
        lambda: read_timetable(feed, "2020-06-02"),
        net,
        sites,
        args.reference_stops,
    )
    if tmp is not None:
        tmp.cleanup()
    if args.synthetic:
        with tempfile.TemporaryDirectory() as big:
            path = synthetic_feed(Path(big), args.synthetic)
            for cap in (None, 7200):
                run_region(
                    f"Synthetic feed, {args.synthetic} routes, max trip "
                    + ("none" if cap is None else f"{cap // 60} min"),
                    lambda path=path: read_timetable(path, "2024-03-05"),
                    None,
                    None,
                    args.reference_stops,
                    n_sites=100,
                    max_trip_s=cap,
                    baselines=False,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
