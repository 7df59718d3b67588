"""The transit engine (etl.engine.transit) and the timetable reader (etl.inputs.timetable).

The engine is checked against a brute-force reference: a time-expanded graph (one node per
"ready to board at stop s at time t after k rides", per departure and per arrival of every
trip at every stop) searched with Dijkstra (heapq), built straight from the generated feed's
own description (service days, frequencies and calendar exceptions applied here, not by the
reader). Random feeds have transfers, footpaths, overtaking trips, loops, pickup/drop-off
restrictions, frequencies (exact_times 0 and 1), trips past midnight and calendar_dates
exceptions. Plus hand-checked trips of the real Terre Haute feed (../shared).
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import math
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl._errors import InputError
from etl.engine import transit as te
from etl.inputs.timetable import parse_gtfs_time, read_timetable
from tests.conftest import SHARED

TERRE_HAUTE = SHARED / "data" / "terre-haute-in" / "terre-haute-gtfs.zip"
DATE = dt.date(2024, 3, 5)  # a Tuesday
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --------------------------------------------------------------------------- feed generator


def _clock(s: int) -> str:
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def random_feed(seed: int) -> dict:
    """A small random GTFS feed described as plain Python (what the reference reads)."""
    rng = np.random.default_rng(seed)
    n_stops = int(rng.integers(5, 11))
    lat = 39.46 + rng.uniform(0, 0.012, n_stops)
    lon = -87.41 + rng.uniform(0, 0.015, n_stops)
    stops = [(f"S{i}", float(lat[i]), float(lon[i])) for i in range(n_stops)]
    # Services: WK (Mon-Fri), SAT, MON (Mondays: yesterday), ADD (only added on DATE),
    # and some removed on DATE through calendar_dates.
    calendar = [
        ("WK", (1, 1, 1, 1, 1, 0, 0), "20240101", "20241231"),
        ("SAT", (0, 0, 0, 0, 0, 1, 0), "20240101", "20241231"),
        ("MON", (1, 0, 0, 0, 0, 0, 0), "20240101", "20241231"),
        ("OFF", (1, 1, 1, 1, 1, 1, 1), "20240101", "20241231"),
    ]
    cdates = [("ADD", "20240305", 1), ("OFF", "20240305", 2), ("SAT", "20240305", 1)]
    if rng.random() < 0.5:
        cdates.append(("WK", "20240305", 2))  # a holiday: weekday service removed
        cdates.append(("ADD2", "20240305", 1))
    services = ["WK", "SAT", "ADD", "OFF", "ADD2"]
    routes, trips, freqs = [], [], []
    n_routes = int(rng.integers(2, 5))
    for r in range(n_routes):
        route = f"R{r}"
        routes.append(route)
        length = int(rng.integers(2, min(6, n_stops) + 1))
        seq = [f"S{i}" for i in rng.choice(n_stops, size=length, replace=False)]
        if rng.random() < 0.2:
            seq.append(seq[0])  # a loop: the first stop again at the end
        hops = rng.integers(60, 600, len(seq) - 1)
        for k in range(int(rng.integers(1, 6))):
            start = int(rng.integers(6 * 3600 + 1800, 8 * 3600 + 1800))
            service = services[int(rng.integers(len(services)))] if r or k else "ADD"
            speed = 1.0 if rng.random() < 0.7 else float(rng.uniform(0.4, 1.8))  # overtaking
            rows, t = [], start
            for i, stop in enumerate(seq):
                arr = t
                dwell = int(rng.integers(0, 60)) if rng.random() < 0.3 else 0
                dep = arr + dwell
                pickup = int(rng.random() < 0.1)
                drop = int(rng.random() < 0.1)
                rows.append((stop, arr, dep, pickup, drop))
                if i < len(seq) - 1:
                    t = dep + max(30, int(hops[i] * speed))
            trips.append((f"{route}-T{k}", route, service, rows))
        if rng.random() < 0.5:  # one frequency-based template trip on this route
            rows, t = [], 0
            for i, stop in enumerate(seq):
                rows.append((stop, 6 * 3600 + t, 6 * 3600 + t, 0, 0))
                if i < len(seq) - 1:
                    t += int(hops[i])
            tid = f"{route}-F"
            trips.append((tid, route, "WK" if rng.random() < 0.5 else "ADD", rows))
            head = int(rng.integers(5, 25)) * 60
            a = int(rng.integers(6 * 3600, 7 * 3600 + 1800))
            freqs.append((tid, a, a + int(rng.integers(1, 4)) * 1800, head, int(rng.integers(2))))
    # Yesterday's (Monday) service running past midnight into this morning.
    seq = [f"S{i}" for i in rng.choice(n_stops, size=min(3, n_stops), replace=False)]
    start = 24 * 3600 + int(rng.integers(6 * 3600 + 1800, 7 * 3600 + 1800))
    rows = [(s, start + 300 * i, start + 300 * i, 0, 0) for i, s in enumerate(seq)]
    routes.append("NIGHT")
    trips.append(("NIGHT-1", "NIGHT", "MON", rows))
    return {
        "stops": stops,
        "routes": routes,
        "trips": trips,
        "frequencies": freqs,
        "calendar": calendar,
        "calendar_dates": cdates,
    }


def write_feed(feed: dict, folder: Path, *, as_zip: bool = False) -> Path:
    """Write the feed as GTFS text files (in a folder, or zipped in a sub-folder)."""
    files = {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n"
        "A,Test,https://example.invalid,America/Chicago\n",
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type\n"
        + "".join(f"{i},Stop {i},{la:.7f},{lo:.7f},0\n" for i, la, lo in feed["stops"])
        + f"P1,A station,{feed['stops'][0][1]:.7f},{feed['stops'][0][2]:.7f},1\n",
        "routes.txt": "route_id,route_short_name,route_long_name,route_type\n"
        + "".join(f"{r},{r},Route {r},3\n" for r in feed["routes"]),
        "trips.txt": "route_id,service_id,trip_id\n"
        + "".join(f"{r},{s},{t}\n" for t, r, s, _ in feed["trips"]),
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence,"
        "pickup_type,drop_off_type\n"
        + "".join(
            f"{t},{_clock(a)},{_clock(d)},{s},{10 * (i + 1)},{p},{o}\n"
            for t, _, _, rows in feed["trips"]
            for i, (s, a, d, p, o) in enumerate(rows)
        ),
        "calendar.txt": "service_id,"
        + ",".join(WEEKDAYS)
        + ",start_date,end_date\n"
        + "".join(f"{s},{','.join(map(str, w))},{a},{b}\n" for s, w, a, b in feed["calendar"]),
        "calendar_dates.txt": "service_id,date,exception_type\n"
        + "".join(f"{s},{d},{k}\n" for s, d, k in feed["calendar_dates"]),
        "frequencies.txt": "trip_id,start_time,end_time,headway_secs,exact_times\n"
        + "".join(
            f"{t},{_clock(a)},{_clock(b)},{h},{e}\n" for t, a, b, h, e in feed["frequencies"]
        ),
    }
    if as_zip:
        path = folder / "feed.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for name, text in files.items():
                zf.writestr(f"gtfs/{name}", text)
        return path
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# --------------------------------------------------------------------------- the reference


def runs_on(feed: dict, service: str, day: dt.date) -> bool:
    """Whether a service runs on a day, straight from the feed's description."""
    stamp = day.strftime("%Y%m%d")
    for s, d, kind in feed["calendar_dates"]:
        if s == service and d == stamp:
            return kind == 1
    for s, week, a, b in feed["calendar"]:
        if s == service and a <= stamp <= b and week[day.weekday()]:
            return True
    return False


def active_trips(feed: dict, day: dt.date) -> list[list[tuple]]:
    """Trips running on ``day`` (and yesterday's after midnight), frequencies expanded."""
    freq = defaultdict(list)
    for t, a, b, h, _ in feed["frequencies"]:
        freq[t].append((a, b, h))
    out = []
    for shift, when in ((0, day), (-86_400, day - dt.timedelta(days=1))):
        for tid, _, service, rows in feed["trips"]:
            if not runs_on(feed, service, when):
                continue
            copies = [0]
            if tid in freq:  # the template's copies: start + k * headway while before end
                first = rows[0][2]
                copies = []
                for a, b, h in freq[tid]:
                    t = a
                    while t < b:
                        copies.append(t - first)
                        t += h
            for c in copies:
                trip = [(s, a + c + shift, d + c + shift, p == 0, o == 0) for s, a, d, p, o in rows]
                if shift and max(r[1] for r in trip) < 0:
                    continue
                out.append(trip)
    return out


def stop_walks(feed: dict, max_walk_m: float, detour: float = 1.3) -> dict[str, dict[str, int]]:
    """Walking seconds between stops (haversine × detour at 4.8 km/h, + 45 s from a lower to a
    higher stop id), within the limit."""
    walks: dict[str, dict[str, int]] = defaultdict(dict)
    for a, la1, lo1 in feed["stops"]:
        for b, la2, lo2 in feed["stops"]:
            p1, p2 = math.radians(la1), math.radians(la2)
            h = (
                math.sin((p2 - p1) / 2) ** 2
                + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lo2 - lo1) / 2) ** 2
            )
            metres = 2 * 6_371_009 * math.asin(math.sqrt(h)) * detour
            if a == b:
                walks[a][b] = 0
            elif metres <= max_walk_m:
                # Asymmetric (a slope, a crossing on one side) so that direction bugs show.
                walks[a][b] = math.ceil(metres / (4.8 / 3.6)) + (45 if a < b else 0)
    return walks


class TimeExpanded:
    """The brute-force reference: a time-expanded graph searched with Dijkstra.

    Nodes: ``("R", k, stop, t)`` ready to board at ``stop`` at ``t`` after ``k`` rides;
    ``("D", k, trip, i)`` / ``("A", k, trip, i)`` on the ``k``-th ride, departing from /
    arriving at position ``i`` of ``trip``. Edges: waiting (R to the next R of the same stop
    and ``k``), boarding (R to D at the same second), riding (D to the next A), staying on (A
    to D), alighting (A to R of every stop a walk away, walk + slack later). Edge weights are
    the time differences, so Dijkstra's distance is the time since departure.
    """

    def __init__(self, trips, walks, egress, *, max_rides, slack):
        self.trips, self.walks, self.egress = trips, walks, egress
        self.max_rides, self.slack = max_rides, slack
        self.boards: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
        times: dict[str, set[int]] = defaultdict(set)
        for j, trip in enumerate(trips):
            for i, (s, _, d, pick, _) in enumerate(trip[:-1]):
                if pick:
                    self.boards[s, d].append((j, i))
                    times[s].add(d)
        self.times = {s: sorted(v) for s, v in times.items()}

    def _next_ready(self, stop: str, t: int) -> int | None:
        ts = self.times.get(stop, [])
        i = bisect.bisect_right(ts, t)
        return ts[i] if i < len(ts) else None

    def search(self, sources: list[tuple[str, int]], depart: int, direct: float, *, walk_on: bool):
        """Earliest arrival per stop and at the target from ready-at-(stop, time) sources.

        ``direct`` is the walk from the origin to the target; ``walk_on`` whether the target
        may be walked to from a source stop too (from a network node, not from a stop).
        """
        arrival: dict[str, int] = {}
        target = depart + direct if math.isfinite(direct) else math.inf
        heap = []
        for s, t in sources:
            heapq.heappush(heap, (t, ("R", 0, s, t)))
            arrival[s] = min(arrival.get(s, math.inf), t)
            if walk_on:
                target = min(target, t + self.egress.get(s, math.inf))
        done = set()
        while heap:
            t, node = heapq.heappop(heap)
            if node in done:
                continue
            done.add(node)
            if node[0] == "R":
                _, k, s, _ = node
                if k < self.max_rides:
                    for j, i in self.boards.get((s, t), ()):
                        heapq.heappush(heap, (t, ("D", k + 1, j, i)))
                nxt = self._next_ready(s, t)
                if nxt is not None:
                    heapq.heappush(heap, (nxt, ("R", k, s, nxt)))
            elif node[0] == "D":
                _, k, j, i = node
                heapq.heappush(heap, (self.trips[j][i + 1][1], ("A", k, j, i + 1)))
            else:
                _, k, j, i = node
                s, a, d, _, drop = self.trips[j][i]
                if i + 1 < len(self.trips[j]):
                    heapq.heappush(heap, (d, ("D", k, j, i)))
                if drop:
                    target = min(target, a + self.egress.get(s, math.inf))
                    for s2, w in self.walks[s].items():
                        arrival[s2] = min(arrival.get(s2, math.inf), a + w)
                        heapq.heappush(heap, (a + w + self.slack, ("R", k, s2, a + w + self.slack)))
        return arrival, target


# --------------------------------------------------------------------------- helpers


def engine_inputs(feed: dict, tmp: Path, max_walk_m: float, *, as_zip: bool = False):
    table = read_timetable(write_feed(feed, tmp, as_zip=as_zip), DATE)
    walks = stop_walks(feed, max_walk_m)
    index = {s: i for i, s in enumerate(table.stop_id)}
    src = [index[a] for a in walks for b in walks[a] if a != b]
    dst = [index[b] for a in walks for b in walks[a] if a != b]
    secs = [walks[a][b] for a in walks for b in walks[a] if a != b]
    fp = te.Footpaths.from_edges(table.n_stops, src, dst, secs, max_walk_m=max_walk_m)
    return table, fp, walks, index


def random_egress(feed: dict, rng: np.random.Generator) -> dict[str, int]:
    ids = [s for s, _, _ in feed["stops"]]
    chosen = rng.choice(len(ids), size=max(1, len(ids) // 3), replace=False)
    return {ids[i]: int(rng.integers(0, 900)) for i in chosen}


def check_feed(seed: int, tmp: Path, *, as_zip: bool = False) -> None:
    """Engine == reference on one random feed: raptor, window profiles and node access."""
    rng = np.random.default_rng(seed + 1000)
    feed = random_feed(seed)
    max_walk = float(rng.choice([0.0, 300.0, 700.0]))
    max_transfers = int(rng.integers(0, 4))
    slack = int(rng.choice([0, 60, 120]))
    table, fp, walks, index = engine_inputs(feed, tmp, max_walk, as_zip=as_zip)
    egress = random_egress(feed, rng)
    egress_arr = np.full(table.n_stops, np.inf)
    for s, e in egress.items():
        egress_arr[index[s]] = e
    ref = TimeExpanded(
        active_trips(feed, DATE), walks, egress, max_rides=max_transfers + 1, slack=slack
    )
    opts = {"max_transfers": max_transfers, "transfer_slack_s": slack}
    pat = te.build_patterns(table)

    # 1. Single searches: earliest arrival at every stop and at the target.
    ids = list(table.stop_id)
    origins = rng.integers(0, table.n_stops, 12)
    departs = rng.integers(6 * 3600 + 1800, 9 * 3600, 12)
    res = te.raptor(pat, fp, origins, departs, egress_s=egress_arr, **opts)
    for q, (o, d) in enumerate(zip(origins, departs, strict=True)):
        sources = [(s2, int(d) + w) for s2, w in walks[ids[o]].items()]
        direct = egress.get(ids[o], math.inf)
        arrival, target = ref.search(sources, int(d), direct, walk_on=False)
        want = np.array([arrival.get(s, te.INF) for s in ids], dtype=np.int64)
        got = res.arrival[q]
        assert np.array_equal(got, want), (seed, q, ids[o], int(d), got - want)
        assert res.target[q] == min(target, te.INF), (seed, q)

    # 2. The window: every stop, every minute, from the profiles (both directions).
    window = (7 * 3600, 8 * 3600)
    minutes = te.departure_times(*window)
    outs = {
        method: te.transit_times(
            table, fp, egress_arr, window=window, percentiles=(50, 80), method=method, **opts
        )
        for method in ("forward", "backward")
    }
    out = outs["forward"]
    assert np.array_equal(outs["backward"].stop_seconds, out.stop_seconds), seed
    for s in range(table.n_stops):
        for m in range(0, len(minutes), 7):
            d = int(minutes[m])
            sources = [(s2, d + w) for s2, w in walks[ids[s]].items()]
            _, target = ref.search(sources, d, egress.get(ids[s], math.inf), walk_on=False)
            assert out.stop_seconds[s, m] == target - d, (seed, ids[s], d)
    ranked = np.sort(out.stop_seconds, axis=1)
    assert np.array_equal(out.stop_summary[:, 0], ranked[:, 30])  # 61 minutes: the 31st
    assert np.array_equal(out.stop_summary[:, 1], ranked[:, 48])  # ceil(0.8 * 61) = 49th

    # 3. Network nodes: access walks to stops (arbitrary seconds) and a direct walk.
    n_nodes = 6
    node, stop, secs = [], [], []
    for v in range(n_nodes):
        for s in rng.choice(table.n_stops, size=int(rng.integers(0, 4)), replace=False):
            node.append(v)
            stop.append(int(s))
            secs.append(int(rng.integers(0, 600)))
    access = te.AccessPairs.from_arrays(np.array(node), np.array(stop), np.array(secs))
    direct = np.where(rng.random(n_nodes) < 0.5, rng.integers(300, 4000, n_nodes), np.inf)
    longest = int(access.seconds.max(initial=0))
    forward = te.stop_profiles(
        pat,
        fp,
        egress_arr,
        start_s=window[0],
        end_s=window[1] + longest,
        origin_walk=False,
        **opts,
    )
    _, backward = te.backward_profiles(
        table, fp, egress_arr, start_s=window[0], end_s=window[1] + longest, **opts
    )
    for prof in (forward, backward):
        arr = te.node_arrivals(prof, access, minutes, n_nodes, direct_s=direct)
        for v in range(n_nodes):
            pairs = [(ids[s], w) for n, s, w in zip(node, stop, secs, strict=True) if n == v]
            for m in range(0, len(minutes), 5):
                d = int(minutes[m])
                sources = [(s, d + w) for s, w in pairs]
                _, target = ref.search(sources, d, float(direct[v]), walk_on=True)
                assert arr[v, m] == min(target, te.INF), (seed, v, d)
    want = te.nearest_rank(te.travel_seconds(arr, minutes[None, :]), (50, 80))
    for method in ("forward", "backward"):
        res_nodes = te.transit_times(
            table,
            fp,
            egress_arr,
            window=window,
            access=access,
            direct_s=direct,
            n_nodes=n_nodes,
            method=method,
            **opts,
        )
        assert np.array_equal(res_nodes.node_summary, want), (seed, method)


# --------------------------------------------------------------------------- engine tests


@pytest.mark.parametrize("seed", range(12))
def test_engine_matches_time_expanded_reference(seed: int, tmp_path: Path) -> None:
    check_feed(seed, tmp_path, as_zip=seed % 3 == 0)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(min_value=100, max_value=10**6))
def test_engine_matches_reference_property(seed: int, tmp_path_factory) -> None:
    check_feed(seed, tmp_path_factory.mktemp("feed"))


def test_reference_is_not_trivial(tmp_path: Path) -> None:
    """The random feeds exercise transfers, footpaths and reaching care by transit."""
    rides, walked, reached = 0, 0, 0
    for seed in range(12):
        feed = random_feed(seed)
        walks = stop_walks(feed, 700.0)
        trips = active_trips(feed, DATE)
        few = TimeExpanded(trips, walks, {}, max_rides=1, slack=0)
        many = TimeExpanded(trips, walks, {}, max_rides=4, slack=0)
        for s, _, _ in feed["stops"]:
            a1, _ = few.search([(s, 7 * 3600)], 7 * 3600, math.inf, walk_on=False)
            a4, _ = many.search([(s, 7 * 3600)], 7 * 3600, math.inf, walk_on=False)
            rides += sum(a4[k] < a1.get(k, math.inf) for k in a4)
            walked += len(walks[s]) > 1
        reached += len(trips)
    assert rides > 10 and walked > 10 and reached > 50


def test_patterns_split_overtaking_trips() -> None:
    """Trips that overtake go to separate FIFO patterns; columns are globally sorted."""
    feed = {
        "stops": [("A", 39.46, -87.41), ("B", 39.47, -87.41), ("C", 39.48, -87.41)],
        "routes": ["R"],
        "trips": [
            ("slow", "R", "WK", [("A", 25200, 25200, 0, 0), ("B", 27000, 27000, 0, 0),
                                 ("C", 28800, 28800, 0, 0)]),
            ("fast", "R", "WK", [("A", 25500, 25500, 0, 0), ("B", 26000, 26000, 0, 0),
                                 ("C", 26500, 26500, 0, 0)]),
        ],
        "frequencies": [],
        "calendar": [("WK", (1, 1, 1, 1, 1, 0, 0), "20240101", "20241231")],
        "calendar_dates": [],
    }  # fmt: skip
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        table = read_timetable(write_feed(feed, Path(tmp)), DATE)
    pat = te.build_patterns(table)
    assert pat.n_patterns == 2
    assert (np.diff(pat.keys) >= 0).all()
    fp = te.Footpaths.from_edges(3, [], [], [], max_walk_m=0)
    res = te.raptor(pat, fp, [0], [25200], max_transfers=0)
    # Boarding the slow bus at 07:00 must not hide the fast one leaving A at 07:05.
    assert list(res.arrival[0]) == [25200, 26000, 26500]


def test_straight_line_footpaths_match_haversine() -> None:
    feed = random_feed(3)
    walks = stop_walks(feed, 700.0)
    walks = {a: {b: w - (45 if a < b else 0) for b, w in ws.items()} for a, ws in walks.items()}
    lat = np.array([s[1] for s in feed["stops"]])
    lon = np.array([s[2] for s in feed["stops"]])
    fp = te.straight_line_footpaths(lon, lat, max_walk_m=700.0)
    got = {(int(a), int(b)): int(s) for a, b, s in zip(fp.src, fp.dst, fp.seconds, strict=True)}
    want = {(int(a[1:]), int(b[1:])): w for a in walks for b, w in walks[a].items()}
    close = {k for k, w in want.items() if w < 0.98 * 700 / (4.8 / 3.6)}
    assert close <= set(got)
    for k in close:
        assert abs(got[k] - want[k]) <= 1


def test_reverse_timetable_runs_trips_backwards(tmp_path: Path) -> None:
    table = read_timetable(_tiny(tmp_path), "2024-03-05")
    rev = te.reverse_timetable(table)
    i = list(table.trip_id).index("t2")
    sl = slice(table.trip_start[i], table.trip_start[i + 1])
    assert list(table.stop_id[rev.stop[sl]]) == ["C", "B", "A"]
    assert list(2 * 86400 - rev.departure[sl]) == [91200, 90300, 90000]  # arrivals, reversed
    assert list(2 * 86400 - rev.arrival[sl]) == [91200, 90360, 90000]  # departures


def test_max_trip_counts_longer_journeys_as_not_reaching_care(tmp_path: Path) -> None:
    table, fp, _, _ = engine_inputs(random_feed(3), tmp_path, 300.0)
    egress = np.full(table.n_stops, np.inf)
    egress[0] = 60.0
    full = te.transit_times(table, fp, egress, window=(25200, 28800))
    finite = full.stop_seconds[np.isfinite(full.stop_seconds)]
    cap = int(np.median(finite))
    capped = te.transit_times(table, fp, egress, window=(25200, 28800), max_trip_s=cap)
    keep = full.stop_seconds <= cap
    assert np.array_equal(capped.stop_seconds[keep], full.stop_seconds[keep])
    assert np.isinf(capped.stop_seconds[~keep]).all()
    assert (~keep & np.isfinite(full.stop_seconds)).any() and keep.any()


def test_percentiles_nearest_rank_with_unreachable() -> None:
    times = np.array([[1.0, 2.0, 3.0, np.inf, np.inf]])
    assert list(te.nearest_rank(times, (50, 80, 100))[0]) == [3.0, np.inf, np.inf]
    assert list(te.nearest_rank(np.arange(121.0)[None, :], (50,))[0]) == [60.0]


def test_profile_refuses_times_beyond_its_horizon(tmp_path: Path) -> None:
    table, fp, _, _ = engine_inputs(random_feed(1), tmp_path, 300.0)
    prof = te.stop_profiles(
        te.build_patterns(table), fp, np.zeros(table.n_stops), start_s=25200, end_s=28800
    )
    with pytest.raises(ValueError, match="horizon"):
        prof.arrival(np.array([0]), np.array([28801]))


# --------------------------------------------------------------------------- reader tests


def _tiny(tmp: Path, **extra: str) -> Path:
    files = {
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nA,A,39.46,-87.41\n"
        "B,B,39.47,-87.41\nC,C,39.48,-87.41\nD,Unserved,39.49,-87.41\n",
        "routes.txt": "route_id,route_short_name,route_long_name\nR,4,Main\n",
        "trips.txt": "route_id,service_id,trip_id\nR,WK,t1\nR,WK,t2\n",
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence,"
        "shape_dist_traveled\n"
        "t1,07:00:00,07:00:00,A,1,0\nt1,,,B,2,300\nt1,07:10:00,07:10:00,C,3,1000\n"
        "t2,25:00:00,25:00:00,A,1,0\nt2,25:05:00,25:06:00,B,2,300\nt2,25:20:00,25:20:00,C,3,\n",
        "calendar.txt": "service_id," + ",".join(WEEKDAYS) + ",start_date,end_date\n"
        "WK,1,1,1,1,1,0,0,20240101,20240630\n",
    }
    files.update(extra)
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    return tmp


def test_times_past_midnight_and_interpolation(tmp_path: Path) -> None:
    table = read_timetable(_tiny(tmp_path), "2024-03-05")
    by_trip = {t: slice(table.trip_start[i], table.trip_start[i + 1])
               for i, t in enumerate(table.trip_id)}  # fmt: skip
    t1 = by_trip["t1"]
    # B has no time: interpolated by shape_dist_traveled, 300 of 1000 m of 10 minutes.
    assert list(table.arrival[t1]) == [25200, 25200 + 180, 25800]
    t2 = by_trip["t2"]
    assert list(table.arrival[t2]) == [90000, 90300, 91200]
    assert list(table.departure[t2]) == [90000, 90360, 91200]
    # Monday's t2 runs past midnight into Tuesday morning: kept, 24 h earlier.
    prev = by_trip["yesterday:t2"]
    assert list(table.arrival[prev]) == [3600, 3900, 4800]
    assert list(parse_gtfs_time(["7:05:00", "25:10:30", ""])[:2]) == [25500, 90630]
    with pytest.raises(ValueError, match="H:MM:SS"):
        parse_gtfs_time(["7h05"])


def test_interpolation_evenly_without_distances(tmp_path: Path) -> None:
    st_txt = (
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        "t1,07:00:00,07:00:00,A,1\nt1,,,B,2\nt1,,,D,3\nt1,07:09:00,07:09:00,C,4\n"
    )
    trips = "route_id,service_id,trip_id\nR,WK,t1\n"
    table = read_timetable(
        _tiny(tmp_path, **{"stop_times.txt": st_txt, "trips.txt": trips}), "2024-03-05"
    )
    assert list(table.arrival) == [25200, 25380, 25560, 25740]


def test_frequencies_expand_exact_and_headway(tmp_path: Path) -> None:
    freq = (
        "trip_id,start_time,end_time,headway_secs,exact_times\n"
        "t1,08:00:00,09:00:00,1200,1\nt1,17:00:00,17:30:00,900,0\n"
    )
    table = read_timetable(_tiny(tmp_path, **{"frequencies.txt": freq}), "2024-03-05")
    ids = sorted(t for t in table.trip_id if t.startswith("t1"))
    assert ids == ["t1@08:00:00", "t1@08:20:00", "t1@08:40:00", "t1@17:00:00", "t1@17:15:00"]
    i = list(table.trip_id).index("t1@08:20:00")
    sl = slice(table.trip_start[i], table.trip_start[i + 1])
    assert list(table.arrival[sl]) == [30000, 30180, 30600]


def test_calendar_dates_add_and_remove(tmp_path: Path) -> None:
    cd = "service_id,date,exception_type\nWK,20240305,2\nHOL,20240305,1\n"
    trips = "route_id,service_id,trip_id\nR,WK,t1\nR,HOL,t2\n"
    table = read_timetable(
        _tiny(tmp_path, **{"calendar_dates.txt": cd, "trips.txt": trips}), "2024-03-05"
    )
    assert sorted(table.trip_id) == ["t2"]  # t1 removed; t2 added; Monday's t2 not in service
    table = read_timetable(
        _tiny(tmp_path, **{"calendar_dates.txt": cd, "trips.txt": trips}), "2024-03-06"
    )
    assert sorted(table.trip_id) == ["t1", "yesterday:t2"]  # the 5th's t2 runs past midnight


def test_stops_without_service(tmp_path: Path) -> None:
    table = read_timetable(_tiny(tmp_path), "2024-03-05")
    idle = table.stop_id[table.stops_without_service(7 * 3600, 9 * 3600)]
    assert list(idle) == ["D"]
    idle = table.stop_id[table.stops_without_service(7 * 3600 + 120, 7 * 3600 + 240)]
    assert list(idle) == ["A", "C", "D"]  # B's time (07:03, interpolated) only


def test_date_outside_calendar_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        read_timetable(_tiny(tmp_path), "2025-03-04")
    msg = str(err.value)
    assert "\n" not in msg
    assert "2024-01-01 to 2024-06-30" in msg and "transit.service_date" in msg


def test_no_service_on_date_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no trip runs on 2024-03-09 \(a Saturday\)"):
        read_timetable(_tiny(tmp_path), "2024-03-09")


def test_feed_without_stop_times_is_one_line(tmp_path: Path) -> None:
    _tiny(tmp_path)
    (tmp_path / "stop_times.txt").unlink()
    with pytest.raises(InputError) as err:
        read_timetable(tmp_path, "2024-03-05")
    assert "no stop_times.txt" in str(err.value) and "\n" not in str(err.value)


def test_bad_date_text(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"transit\.service_date"):
        read_timetable(_tiny(tmp_path), "March 5")


# --------------------------------------------------------------------------- Terre Haute


@pytest.fixture(scope="module")
def terre_haute():
    if not TERRE_HAUTE.is_file():
        pytest.skip(f"Terre Haute feed not found at {TERRE_HAUTE} (the project's ../shared)")
    table = read_timetable(TERRE_HAUTE, "2017-10-03")  # a Tuesday inside its calendar
    return table, te.build_patterns(table)


def _hm(s: int) -> str:
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


@pytest.mark.shared
def test_terre_haute_calendar_is_expired_and_says_so() -> None:
    if not TERRE_HAUTE.is_file():
        pytest.skip(f"Terre Haute feed not found at {TERRE_HAUTE}")
    with pytest.raises(InputError) as err:
        read_timetable(TERRE_HAUTE, "2025-10-07")
    assert "2015-01-01 to 2018-01-01" in str(err.value) and "transit.service_date" in str(err.value)
    with pytest.raises(InputError, match="Sunday"):
        read_timetable(TERRE_HAUTE, "2017-10-08")
    with pytest.raises(InputError, match="Thursday"):  # Thanksgiving: every service removed
        read_timetable(TERRE_HAUTE, "2017-11-23")


@pytest.mark.shared
def test_terre_haute_real_trips(terre_haute) -> None:
    table, pat = terre_haute
    assert table.n_trips == 144 and table.n_stops == 115
    idx = {s: i for i, s in enumerate(table.stop_id)}
    no_walk = te.Footpaths.from_edges(table.n_stops, [], [], [], max_walk_m=0)
    btc = idx["782593"]  # Bus Transfer Center
    res = te.raptor(pat, no_walk, [btc], [7 * 3600 + 10 * 60], max_transfers=0)
    got = {s: _hm(int(res.arrival[0, idx[s]])) for s in ("782563", "782518", "782526", "782628")}
    # ISU Campus t_76514_b_236_tn_1 leaves at 07:15, 6th & Cherry 07:18 (trips.txt,
    # stop_times.txt); Plaza North t_76517_b_236_tn_2 leaves at 07:15: 12 Points 07:25,
    # Plaza North Shopping Center 07:40, and 13th & Plum, a stop without a time, 2,776 of the
    # 3,472 m from the transfer center to 12 Points: 07:15 + 0.7996 × 10 min = 07:23:00.
    assert got == {
        "782563": "07:18:00",
        "782518": "07:25:00",
        "782526": "07:23:00",
        "782628": "07:40:00",
    }
    # ISU Campus: 6th & Tippecanoe (no time) is 209 of the 1,377 m from 6th & Spruce (07:30)
    # to the transfer center (07:35): 07:30:46.
    assert _hm(int(res.arrival[0, idx["782619"]])) == "07:30:46"


@pytest.mark.shared
def test_terre_haute_transfer_at_the_transfer_center(terre_haute) -> None:
    table, pat = terre_haute
    idx = {s: i for i, s in enumerate(table.stop_id)}
    no_walk = te.Footpaths.from_edges(table.n_stops, [], [], [], max_walk_m=0)
    # From 6th & Cherry at 07:17 to Walmart South (South 7th): the ISU Campus bus reaches the
    # transfer center at 07:35; South 7th leaves there at 07:15 and 08:15 (Walmart 07:45 and
    # 08:45). With one transfer the 08:15 is caught: Walmart at 08:45. Without, no way there.
    one = te.raptor(pat, no_walk, [idx["782563"]], [7 * 3600 + 17 * 60], max_transfers=1)
    zero = te.raptor(pat, no_walk, [idx["782563"]], [7 * 3600 + 17 * 60], max_transfers=0)
    assert _hm(int(one.arrival[0, idx["782649"]])) == "08:45:00"
    assert zero.arrival[0, idx["782649"]] == te.INF


@pytest.mark.shared
def test_terre_haute_window_is_fast_and_consistent(terre_haute) -> None:
    table, pat = terre_haute
    fp = te.straight_line_footpaths(table.stop_lon, table.stop_lat, max_walk_m=400.0)
    egress = np.full(table.n_stops, np.inf)
    egress[[0, 40, 80]] = 300.0
    out = te.transit_times(table, fp, egress, patterns=pat)
    assert out.stop_seconds.shape == (115, 121)
    # The profile answer equals a search per minute for every stop (121 × 115 searches).
    stops = np.repeat(np.arange(table.n_stops), 121)
    deps = np.tile(out.departures, table.n_stops)
    per_minute = te.raptor(pat, fp, stops, deps, egress_s=egress).target.reshape(115, 121)
    assert np.array_equal(te.travel_seconds(per_minute, out.departures[None, :]), out.stop_seconds)
    assert out.searches < 115 * 121 / 4
    assert 0 < len(out.stops_without_service) < 30


# --------------------------------------------------------------------------- config


def test_transit_config_timetable_settings() -> None:
    from pydantic import ValidationError

    from etl.config import TransitConfig

    cfg = TransitConfig(path="feed.zip")
    assert (cfg.service_date, cfg.window, cfg.step_min) == (None, ("07:00", "09:00"), 1)
    assert (cfg.percentiles, cfg.max_walk_m, cfg.max_transfers) == ([50.0, 80.0], 800.0, 3)
    cfg = TransitConfig(path="f", service_date="2017-10-03", window=["06:30", "08:30"])
    assert cfg.window == ("06:30", "08:30")
    for bad in (
        {"window": ["09:00", "07:00"]},
        {"window": ["7h", "9:00"]},
        {"percentiles": [0]},
        {"percentiles": []},
        {"service_date": "2017/10/03"},
        {"max_transfers": -1},
        {"max_walk_m": 0},
        {"timetable": True},
    ):
        with pytest.raises(ValidationError):
            TransitConfig(path="f", **bad)


@pytest.mark.parametrize("seed", [1, 3, 6])
def test_nearest_of_two_site_sets_is_the_minimum(seed: int, tmp_path: Path) -> None:
    """What-if: adding a site is min(old, new site alone), stops and nodes alike."""
    table, fp, _, _ = engine_inputs(random_feed(seed), tmp_path, 500.0)
    rng = np.random.default_rng(seed)
    old = np.where(rng.random(table.n_stops) < 0.3, rng.integers(0, 600, table.n_stops), np.inf)
    new = np.full(table.n_stops, np.inf)
    new[int(rng.integers(table.n_stops))] = 100.0
    nodes = te.AccessPairs.from_arrays(
        np.arange(table.n_stops) % 4, np.arange(table.n_stops), rng.integers(0, 500, table.n_stops)
    )
    runs = {
        name: te.transit_times(
            table, fp, eg, window=(25200, 28800), access=nodes, n_nodes=4, percentiles=(50,)
        )
        for name, eg in (("old", old), ("new", new), ("both", np.minimum(old, new)))
    }
    both = np.minimum(runs["old"].stop_seconds, runs["new"].stop_seconds)
    assert np.array_equal(runs["both"].stop_seconds, both)
    minutes = te.departure_times(25200, 28800)
    arr = {}
    for name, eg in (("old", old), ("new", new), ("both", np.minimum(old, new))):
        _, prof = te.backward_profiles(table, fp, eg, start_s=25200, end_s=28800 + 500)
        arr[name] = te.node_arrivals(prof, nodes, minutes, 4)
    assert np.array_equal(arr["both"], np.minimum(arr["old"], arr["new"]))
    assert (arr["new"] < arr["old"]).any() or (runs["new"].stop_seconds < np.inf).any()
