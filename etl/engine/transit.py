"""Travel time by public transit: a round-based RAPTOR vectorised with numpy, over a window.

The engine answers, for every stop of a feed (and, through access walks, for every node of
the walk network), "how long from here to the nearest site of a category, leaving at each
minute of the departure window?", and summarises those times as a median and pessimistic
percentiles, as Conveyal's accessibility tools do.

Algorithm
---------
**RAPTOR** (Delling, Pajor and Werneck, *Round-Based Public Transit Routing*, 2012). Trips
with the same stop sequence and the same boarding/alighting rules form a *pattern*; trips that
overtake one another are split into separate patterns, so within a pattern trip ``j`` is never
later than trip ``j + 1`` at any stop (FIFO). Round ``k`` rides one more trip:

1. at each (pattern, position) column, the first trip departing at or after the time the
   rider can be at that stop: one :func:`numpy.searchsorted` over all columns at once (the
   departure columns are concatenated with a per-column offset, so they form one sorted
   array);
2. the trip the rider is on at a position is the earliest trip boardable at any *earlier*
   position of the pattern: a segmented running minimum (:func:`numpy.minimum.accumulate`
   with each pattern shifted below the previous one), so no Python loop over trips or stops;
3. arrivals are gathered from the padded arrival columns and reduced to stops
   (:func:`numpy.minimum.reduceat`), and one footpath (walking at most ``max_walk_m``) is
   relaxed, plus a transfer slack, before the next round.

Many queries run as one batch: every array has a leading query axis. A round scans only
the patterns with a stop some query of the batch has reached (route marking, per batch);
rounds stop after ``max_transfers + 1`` rides or when no label improves.

**Profiles instead of one search per minute.** As range-RAPTOR (rRAPTOR) observes, only
the times at which something happens matter, not every minute. Two exact ways are built:

*Backward* (:func:`backward_profiles`, the default). Care is reached at ``A = arrival +
egress`` of some trip at a stop within walking distance of a site. For each such ``A`` one
RAPTOR search on the time-reversed timetable (:func:`reverse_timetable`: trips run
backwards, boarding and alighting swap) gives, for **every stop at once**, the latest
departure that still reaches care by ``A``; leaving stop ``s`` at ``τ`` one arrives at the
first ``A`` whose latest departure from ``s`` is ``≥ τ``. The searches scale with the stops
near care, not with the feed's stops: nearest-site access is a one-target problem, as the
drive and walk modes' reversed Dijkstra (:mod:`etl.engine.access`). Labels that would leave
before the window (or take longer than ``max_trip_s``) are pruned.

*Forward* (:func:`stop_profiles`). Leaving stop ``s`` at ``τ``, the best journey walks
straight to care or first boards at ``s`` (or a stop a footpath away) at some ``d ≥ τ``;
leaving at exactly ``d`` does no worse. So one search per *boarding event* of each stop
suffices. Kept as a cross-check and for one-to-many questions; it does more searches.

Either way a :class:`StopProfile` answers ``arrival(s, τ) = min(τ + egress(s), value[first
event ≥ τ])`` for any second ``τ``, which makes walk-network nodes exact too: a node's
access walk puts it at a stop at an arbitrary second (:func:`node_arrivals`). Where rRAPTOR
reuses labels from one departure to the next, this engine batches the searches into
vectorised steps instead.

Cost and scale (``benchmarks/bench_transit.py``): one search costs about
``rounds × route-stops`` vectorised element operations, so the engine suits small and
medium feeds: Terre Haute's whole 07:00-09:00 window for every stop takes milliseconds and
every walk node a fraction of a second. For a feed of thousands of stops (a made-up one of
2,000 stops, 288k stop times, 100 sites) the backward profiles take seconds with a
``max_trip_s`` of 2 h and tens of seconds without; compiled code (numba) or sparse
per-query route marking would be the next step there.

The nearest site is a minimum over sites, so a What-if site needs only the new site's own
profiles, combined by ``min`` with the stored result (about 0.1 s on Terre Haute for every
walk node).

Semantics
---------
From a **stop** a footpath may be walked before the first ride; from a **network node** the
access walk (within the limit, :func:`network_access`) goes straight to the boarding stop.
Care is reached by walking from the last stop (``egress_s``) or all the way (``direct_s``).

What is simplified
------------------
* One footpath between two rides (footpaths are not chained; GTFS ``transfers.txt`` is not
  read); a ``transfer_slack_s`` (60 s by default, as Conveyal's board slack) is added when
  changing vehicles, none at the first boarding.
* The journey reaches care by walking from the stop it alights at (``egress_s``), or by
  walking all the way from the origin; it does not walk to another stop and then to care.
* ``frequencies.txt`` trips with ``exact_times`` 0 are taken as scheduled from their
  ``start_time`` (see :mod:`etl.inputs.timetable`); Conveyal draws random offsets instead.
* No journey reconstruction (which route, when to leave): only times.
* Percentiles are nearest-rank over the departure minutes (the median of 121 minutes is the
  61st smallest); unreachable minutes count as infinite.
* Times are seconds after midnight of the service date; time zones and daylight-saving
  days are not special-cased. Walking times are rounded up to whole seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from etl.engine.network import ModeNetwork
from etl.engine.speeds import WALK_SPEED_KPH
from etl.engine.timetable import DAY_S, Timetable

#: "Never": larger than any time, small enough that adding walks never overflows int64.
INF: Final[int] = 2**50
#: Per-column key stride of the concatenated departure columns (seconds; > 48 days).
_BIG: Final[int] = 2**22
#: Times are shifted by a day inside keys so that previous-day trips (negative) stay positive.
_OFF: Final[int] = DAY_S
#: Upper bound on elements of one batch array (queries × columns), to bound memory.
_CHUNK_ELEMENTS: Final[int] = 2_000_000
WALK_SPEED_MPS: Final[float] = WALK_SPEED_KPH / 3.6


@dataclass(frozen=True)
class Patterns:
    """A timetable reorganised for RAPTOR: FIFO patterns as flat, padded columns.

    A *column* is one position of one pattern. Column ``m`` holds its trips' departures and
    arrivals in ``dep_pad``/``arr_pad`` from ``col_pad_start[m]``, ``col_ntrips[m]`` of them
    in trip order, followed by one ``INF`` pad entry (the "no trip" sentinel).

    Attributes
    ----------
    n_stops
        Number of stops of the timetable.
    col_stop, col_pattern
        Stop and pattern index of each column.
    col_board, col_alight
        Whether a trip can be boarded (not the last position, pickup allowed) or left (not
        the first position, drop-off allowed) at the column.
    col_first
        Whether the column is the first position of its pattern.
    col_ntrips, col_pad_start
        Trips of the column's pattern; offset of the column in the padded arrays.
    dep_pad, arr_pad
        Padded departure and arrival seconds.
    keys
        ``column * 2**22 + departure + 86400`` (pad: ``column * 2**22 + 2**22 - 1``):
        the concatenated, globally sorted search keys.
    pattern_route, pattern_trips
        Route index of each pattern; trip indices (into the timetable) of each pattern, CSR
        by ``pattern_trip_start``.
    """

    n_stops: int
    col_stop: np.ndarray
    col_pattern: np.ndarray
    col_board: np.ndarray
    col_alight: np.ndarray
    col_first: np.ndarray
    col_ntrips: np.ndarray
    col_pad_start: np.ndarray
    dep_pad: np.ndarray
    arr_pad: np.ndarray
    keys: np.ndarray
    pattern_route: np.ndarray
    pattern_trips: np.ndarray
    pattern_trip_start: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_columns(self) -> int:
        """Number of (pattern, position) columns."""
        return len(self.col_stop)

    @property
    def n_patterns(self) -> int:
        """Number of FIFO patterns."""
        return len(self.pattern_route)

    def _stop_reduce(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Column order grouped by stop, group starts and the stops that have columns."""
        if "reduce" not in self._cache:
            order = np.argsort(self.col_stop, kind="stable")
            stops, starts = np.unique(self.col_stop[order], return_index=True)
            self._cache["reduce"] = (order, starts, stops)
        return self._cache["reduce"]


def build_patterns(table: Timetable) -> Patterns:
    """Group a timetable's trips into FIFO patterns (see :class:`Patterns`).

    Parameters
    ----------
    table
        The trips running on the service date.

    Returns
    -------
    Patterns
    """
    starts = table.trip_start
    n_trips = table.n_trips
    groups: dict[tuple, list[int]] = {}
    stop, pick, drop = table.stop, table.pickup, table.dropoff
    for t in range(n_trips):  # preparation, once per feed: not on the routing path
        a, b = starts[t], starts[t + 1]
        key = (
            int(table.trip_route[t]),
            stop[a:b].tobytes(),
            pick[a:b].tobytes(),
            drop[a:b].tobytes(),
        )
        groups.setdefault(key, []).append(t)

    col_stop, col_pattern, col_board, col_alight, col_first, col_ntrips = [], [], [], [], [], []
    dep_cols: list[np.ndarray] = []
    arr_cols: list[np.ndarray] = []
    pattern_route: list[int] = []
    pattern_trips: list[np.ndarray] = []
    for (route, *_), trips in groups.items():
        a0 = starts[trips[0]]
        length = starts[trips[0] + 1] - a0
        idx = starts[np.asarray(trips)][:, None] + np.arange(length)[None, :]
        dep, arr = table.departure[idx], table.arrival[idx]
        order = np.lexsort((arr[:, -1], dep[:, 0]))
        # Split into FIFO chains: a trip joins the first chain whose last trip it never
        # precedes (at every position, both arrival and departure).
        chains: list[list[int]] = []
        for j in order:
            for chain in chains:
                last = chain[-1]
                if (dep[j] >= dep[last]).all() and (arr[j] >= arr[last]).all():
                    chain.append(j)
                    break
            else:
                chains.append([j])
        s = stop[a0 : a0 + length]
        p, d = pick[a0 : a0 + length], drop[a0 : a0 + length]
        for chain in chains:
            k = len(pattern_route)
            pattern_route.append(route)
            pattern_trips.append(np.asarray(trips)[chain])
            col_stop.append(s)
            col_pattern.append(np.full(length, k))
            board = p.copy()
            board[-1] = False
            alight = d.copy()
            alight[0] = False
            col_board.append(board)
            col_alight.append(alight)
            first = np.zeros(length, dtype=bool)
            first[0] = True
            col_first.append(first)
            col_ntrips.append(np.full(length, len(chain)))
            dep_cols.append(dep[chain].T)  # (length, trips)
            arr_cols.append(arr[chain].T)

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    ntrips = cat(col_ntrips, np.int64)
    pad_start = np.r_[0, np.cumsum(ntrips + 1)[:-1]].astype(np.int64) if len(ntrips) else ntrips
    total = int((ntrips + 1).sum())
    dep_pad = np.full(total, INF, dtype=np.int64)
    arr_pad = np.full(total, INF, dtype=np.int64)
    keys = np.empty(total, dtype=np.int64)
    m = 0
    for dcols, acols in zip(dep_cols, arr_cols, strict=True):
        length, n = dcols.shape
        pos = pad_start[m : m + length, None] + np.arange(n)[None, :]
        dep_pad[pos] = dcols
        arr_pad[pos] = acols
        m += length
    col = np.repeat(np.arange(len(ntrips), dtype=np.int64), ntrips + 1)
    is_pad = np.zeros(total, dtype=bool)
    is_pad[pad_start + ntrips] = True
    keys[:] = col * _BIG + np.where(is_pad, _BIG - 1, dep_pad + _OFF)
    if len(keys) and (np.diff(keys) < 0).any():  # pragma: no cover - guarded by FIFO split
        raise AssertionError("pattern columns are not sorted")
    trip_counts = np.array([len(t) for t in pattern_trips], dtype=np.int64)
    return Patterns(
        n_stops=table.n_stops,
        col_stop=cat(col_stop, np.int64),
        col_pattern=cat(col_pattern, np.int64),
        col_board=cat(col_board, bool),
        col_alight=cat(col_alight, bool),
        col_first=cat(col_first, bool),
        col_ntrips=ntrips,
        col_pad_start=pad_start,
        dep_pad=dep_pad,
        arr_pad=arr_pad,
        keys=keys,
        pattern_route=np.asarray(pattern_route, dtype=np.int64),
        pattern_trips=cat(pattern_trips, np.int64),
        pattern_trip_start=np.r_[0, np.cumsum(trip_counts)].astype(np.int64),
    )


@dataclass(frozen=True)
class Footpaths:
    """Walks between stops, one edge per (from, to) pair, sorted by ``to`` stop.

    Every stop has a zero-second edge to itself, so each ``to`` group is non-empty.

    Attributes
    ----------
    n_stops
        Number of stops.
    src, dst
        From and to stop of each edge.
    seconds
        int64 walking seconds.
    dst_start
        Offset of each stop's group of incoming edges (``n_stops + 1`` entries).
    max_walk_m
        The walking limit the edges were built with (metres).
    """

    n_stops: int
    src: np.ndarray
    dst: np.ndarray
    seconds: np.ndarray
    dst_start: np.ndarray
    max_walk_m: float

    @classmethod
    def from_edges(
        cls,
        n_stops: int,
        src: np.ndarray,
        dst: np.ndarray,
        seconds: np.ndarray,
        *,
        max_walk_m: float,
    ) -> Footpaths:
        """Footpaths from edge arrays (self edges added, the shortest of duplicates kept).

        Parameters
        ----------
        n_stops
            Number of stops.
        src, dst, seconds
            Edges: from stop, to stop, walking seconds (rounded up to whole seconds).
        max_walk_m
            The walking limit, recorded.

        Returns
        -------
        Footpaths
        """
        selfs = np.arange(n_stops, dtype=np.int64)
        src = np.r_[np.asarray(src, dtype=np.int64), selfs]
        dst = np.r_[np.asarray(dst, dtype=np.int64), selfs]
        secs = np.r_[np.ceil(np.asarray(seconds, dtype=float)).astype(np.int64), 0 * selfs]
        order = np.lexsort((secs, src, dst))
        src, dst, secs = src[order], dst[order], secs[order]
        keep = np.ones(len(src), dtype=bool)
        keep[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        src, dst, secs = src[keep], dst[keep], secs[keep]
        dst_start = np.searchsorted(dst, np.arange(n_stops + 1)).astype(np.int64)
        return cls(n_stops, src, dst, secs, dst_start, float(max_walk_m))


def straight_line_footpaths(
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    max_walk_m: float,
    detour: float = 1.3,
    speed_mps: float = WALK_SPEED_MPS,
) -> Footpaths:
    """Footpaths between stops whose straight-line distance × ``detour`` is within the limit.

    Parameters
    ----------
    lon, lat
        WGS84 stop coordinates.
    max_walk_m
        Longest walk between two stops, metres (after the detour factor).
    detour
        Ratio of the walk along streets to the straight line (1.3 is typical of city grids).
    speed_mps
        Walking speed, metres per second (default 4.8 km/h).

    Returns
    -------
    Footpaths
    """
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    lat0 = float(np.nanmean(lat)) if len(lat) else 0.0
    r = 6_371_009.0
    x = np.radians(lon) * r * math.cos(math.radians(lat0))
    y = np.radians(lat) * r
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(max_walk_m / detour, output_type="ndarray")
    a, b = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    metres = np.hypot(x[a] - x[b], y[a] - y[b]) * detour
    return Footpaths.from_edges(
        len(lon), np.r_[a, b], np.r_[b, a], np.r_[metres, metres] / speed_mps, max_walk_m=max_walk_m
    )


def _bounded_dijkstra(graph, sources: np.ndarray, limit_s: float, n: int):
    """Yield (source positions, dense distance block) over chunks of ``sources``."""
    per = max(1, _CHUNK_ELEMENTS // max(n, 1))
    for i in range(0, len(sources), per):
        chunk = sources[i : i + per]
        yield i, csgraph.dijkstra(graph, directed=True, indices=chunk, limit=limit_s)


def network_footpaths(
    net: ModeNetwork, stop_node: np.ndarray, stop_snap_s: np.ndarray, *, max_walk_m: float
) -> Footpaths:
    """Footpaths between stops along the walk network, within ``max_walk_m``.

    Parameters
    ----------
    net
        The walk network.
    stop_node, stop_snap_s
        Each stop's nearest node and the walk to it (:func:`etl.engine.access.snap_points`).
    max_walk_m
        Longest walk between stops, metres, at the network's walking speed.

    Returns
    -------
    Footpaths
    """
    stop_node = np.asarray(stop_node, dtype=np.int64)
    snap = np.asarray(stop_snap_s, dtype=float)
    limit = max_walk_m / net.walk_speed_mps
    src, dst, secs = [], [], []
    for i, dist in _bounded_dijkstra(net.csr(), stop_node, limit, net.n_nodes):
        block = dist[:, stop_node] + snap[i : i + len(dist), None] + snap[None, :]
        a, b = np.nonzero(block <= limit)
        src.append(a + i)
        dst.append(b)
        secs.append(block[a, b])
    cat = (lambda p: np.concatenate(p)) if src else (lambda p: np.zeros(0))
    return Footpaths.from_edges(
        len(stop_node), cat(src), cat(dst), cat(secs), max_walk_m=max_walk_m
    )


@dataclass(frozen=True)
class AccessPairs:
    """Walks from network nodes to stops within a limit, sorted by node.

    Attributes
    ----------
    node, stop
        Node and stop index of each pair.
    seconds
        int64 walking seconds from the node to the stop (snap walk included).
    """

    node: np.ndarray
    stop: np.ndarray
    seconds: np.ndarray

    @classmethod
    def from_arrays(cls, node: np.ndarray, stop: np.ndarray, seconds: np.ndarray) -> AccessPairs:
        """Pairs from arrays (sorted by node; seconds rounded up)."""
        node = np.asarray(node, dtype=np.int64)
        order = np.argsort(node, kind="stable")
        secs = np.ceil(np.asarray(seconds, dtype=float)).astype(np.int64)
        return cls(node[order], np.asarray(stop, dtype=np.int64)[order], secs[order])


def network_access(
    net: ModeNetwork, stop_node: np.ndarray, stop_snap_s: np.ndarray, *, max_walk_m: float
) -> AccessPairs:
    """Walks from every walk-network node to each stop within ``max_walk_m``.

    Parameters
    ----------
    net
        The walk network.
    stop_node, stop_snap_s
        Each stop's nearest node and the walk from it to the stop.
    max_walk_m
        Longest access walk, metres.

    Returns
    -------
    AccessPairs
    """
    stop_node = np.asarray(stop_node, dtype=np.int64)
    snap = np.asarray(stop_snap_s, dtype=float)
    limit = max_walk_m / net.walk_speed_mps
    nodes, stops, secs = [], [], []
    for i, dist in _bounded_dijkstra(net.csr_reverse(), stop_node, limit, net.n_nodes):
        block = dist + snap[i : i + len(dist), None]
        s, n = np.nonzero(block <= limit)
        nodes.append(n)
        stops.append(s + i)
        secs.append(block[s, n])
    cat = (lambda p: np.concatenate(p)) if nodes else (lambda p: np.zeros(0))
    return AccessPairs.from_arrays(cat(nodes), cat(stops), cat(secs))


def _walk(fp: Footpaths, at: np.ndarray) -> np.ndarray:
    """One footpath from labels ``at`` (queries × stops): min over incoming edges."""
    return np.minimum.reduceat(at[:, fp.src] + fp.seconds, fp.dst_start[:-1], axis=1)


def _ride(pat: Patterns, ready: np.ndarray) -> np.ndarray:
    """One RAPTOR round: arrival at each stop riding one trip boarded from ``ready``.

    Only patterns with a boardable stop that some query of the batch has reached are
    scanned (RAPTOR's route marking, per batch).
    """
    q = ready.shape[0]
    out = np.full((q, pat.n_stops), INF, dtype=np.int64)
    if pat.n_columns == 0:
        return out
    reached = (ready < INF).any(axis=0)
    live = np.zeros(pat.n_patterns, dtype=bool)
    live[pat.col_pattern[pat.col_board & reached[pat.col_stop]]] = True
    if not live.any():
        return out
    if live.all():
        cols = np.arange(pat.n_columns, dtype=np.int64)
        order, starts, stops = pat._stop_reduce()
    else:
        cols = np.flatnonzero(live[pat.col_pattern])
        order = np.argsort(pat.col_stop[cols], kind="stable")
        stops, starts = np.unique(pat.col_stop[cols][order], return_index=True)
    col_stop, pattern = pat.col_stop[cols], pat.col_pattern[cols]
    pad_start, ntrips, first = pat.col_pad_start[cols], pat.col_ntrips[cols], pat.col_first[cols]
    r = np.minimum(ready[:, col_stop] + _OFF, _BIG - 2)
    pos = np.searchsorted(pat.keys, (r + cols * _BIG).ravel(), side="left").reshape(r.shape)
    pos -= pad_start
    pos = np.where(pat.col_board[cols], pos, ntrips)
    shift = pattern * _BIG  # later patterns lie below earlier ones
    run = np.minimum.accumulate(pos - shift, axis=1)
    trip = np.empty_like(run)
    trip[:, 1:] = run[:, :-1] + shift[1:]
    trip[:, first] = ntrips[first]
    arr = pat.arr_pad[pad_start + trip]
    arr[:, ~pat.col_alight[cols]] = INF
    out[:, stops] = np.minimum.reduceat(arr[:, order], starts, axis=1)
    return out


@dataclass(frozen=True)
class RaptorResult:
    """Earliest arrivals of a batch of queries.

    Attributes
    ----------
    arrival
        int64 (queries × stops): earliest time at each stop (by ride or footpath), ``INF``
        where not reached within the transfer limit.
    target
        int64 per query: earliest arrival at the target (care) through ``egress_s``, or
        ``INF``; all ``INF`` when no egress was given.
    rounds
        Rounds run (trips ridden at most).
    """

    arrival: np.ndarray
    target: np.ndarray
    rounds: int


def raptor(
    pat: Patterns,
    fp: Footpaths,
    origin: np.ndarray,
    depart: np.ndarray,
    *,
    max_transfers: int = 3,
    transfer_slack_s: int = 60,
    egress_s: np.ndarray | None = None,
    origin_walk: bool = True,
) -> RaptorResult:
    """Earliest arrivals from (origin stop, departure time) queries, in one vectorised batch.

    Parameters
    ----------
    pat
        Patterns of the timetable (:func:`build_patterns`).
    fp
        Footpaths between stops (one may be walked before each ride).
    origin
        Origin stop index of each query.
    depart
        Departure second of each query.
    max_transfers
        Changes of vehicle allowed (``max_transfers + 1`` rides).
    transfer_slack_s
        Seconds added between alighting (and walking) and boarding the next vehicle.
    egress_s
        Per stop, walking seconds from the stop to the target (``INF`` or ``inf`` where
        beyond the walking limit); the target is also reached by walking from the origin.
    origin_walk
        Whether a footpath may be walked from the origin stop before the first ride (True
        for journeys from a stop; False when the caller's access walks already reach every
        stop within the limit, as for network nodes).

    Returns
    -------
    RaptorResult
    """
    origin = np.asarray(origin, dtype=np.int64)
    depart = np.asarray(depart, dtype=np.int64)
    q, n = len(origin), pat.n_stops
    egress = None if egress_s is None else _as_int_seconds(egress_s)
    ready = np.full((q, n), INF, dtype=np.int64)
    ready[np.arange(q), origin] = depart
    if origin_walk:
        ready = _walk(fp, ready)
    target = np.full(q, INF, dtype=np.int64) if egress is None else depart + egress[origin]
    arrival, _, target, rounds = _rounds(
        pat, fp, ready, egress, target, max_transfers=max_transfers, slack=transfer_slack_s
    )
    return RaptorResult(arrival=arrival, target=target, rounds=rounds)


def _rounds(
    pat: Patterns,
    fp: Footpaths,
    ready: np.ndarray,
    egress: np.ndarray | None,
    target: np.ndarray,
    *,
    max_transfers: int,
    slack: int,
    bound: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """RAPTOR rounds from initial labels ``ready`` (queries × stops).

    Returns the earliest time at each stop by ride or walk (``arrival``), by ride alone or
    at the start (``rode_best``, no footpath after the last ride), the target and the rounds.
    Labels later than ``bound`` (per query) are dropped: they cannot matter (pruning).
    """
    arrival = ready.copy()
    rode_best = ready.copy()
    rounds = 0
    for _ in range(max_transfers + 1):
        rounds += 1
        rode = _ride(pat, ready)
        if bound is not None:
            rode[rode > bound[:, None]] = INF
        np.minimum(rode_best, rode, out=rode_best)
        if egress is not None:
            target = np.minimum(target, (rode + egress).min(axis=1))
        walked = _walk(fp, rode)
        np.minimum(arrival, walked, out=arrival)
        nxt = np.minimum(ready, walked + slack)
        if np.array_equal(nxt, ready):
            break
        ready = nxt
    cap = np.int64(INF)
    return np.minimum(arrival, cap), np.minimum(rode_best, cap), np.minimum(target, cap), rounds


def _as_int_seconds(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v), np.ceil(v), INF).astype(np.int64)


@dataclass(frozen=True)
class StopProfile:
    """Earliest arrival at the target from each stop, as a function of the time one is there.

    For stop ``s`` the boarding events ``event[ptr[s]:ptr[s+1]]`` (sorted) carry ``value``,
    the earliest arrival at the target leaving ``s`` at that event (a suffix minimum).
    ``arrival(s, τ) = min(τ + egress[s], value[first event ≥ τ])``, valid for
    ``τ <= horizon``.

    Attributes
    ----------
    event, value
        int64 event seconds and earliest arrival at the target.
    ptr
        CSR offsets per stop.
    egress
        int64 walking seconds from each stop to the target (``INF`` beyond the limit).
    horizon
        Last time the profile answers for (seconds).
    queries
        RAPTOR searches run to build it.
    """

    event: np.ndarray
    value: np.ndarray
    ptr: np.ndarray
    egress: np.ndarray
    horizon: int
    queries: int
    keys: np.ndarray = field(repr=False)

    def arrival(self, stop: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Earliest arrival at the target from ``stop`` at time ``tau`` (broadcast, int64).

        Raises
        ------
        ValueError
            When a time lies beyond :attr:`horizon`.
        """
        stop = np.asarray(stop, dtype=np.int64)
        tau = np.asarray(tau, dtype=np.int64)
        stop, tau = np.broadcast_arrays(stop, tau)
        if tau.size and int(tau.max()) > self.horizon:
            raise ValueError(f"time {int(tau.max())} s is beyond the profile's horizon")
        keys = stop * _BIG + tau + _OFF
        idx = np.searchsorted(self.keys, keys.ravel(), side="left").reshape(keys.shape)
        ok = idx < self.ptr[stop + 1]
        if len(self.value):
            got = np.where(ok, self.value[np.minimum(idx, len(self.value) - 1)], INF)
        else:  # no boarding event at all in the window
            got = np.full(keys.shape, INF, dtype=np.int64)
        return np.minimum(got, np.minimum(tau + self.egress[stop], INF))


def _events(
    pat: Patterns, fp: Footpaths, start_s: int, end_s: int, *, origin_walk: bool
) -> tuple[np.ndarray, ...]:
    """Boarding events per stop: (stop, time) sorted, within [start, end] plus the next one."""
    real = np.ones(len(pat.dep_pad), dtype=bool)
    real[pat.col_pad_start + pat.col_ntrips] = False
    col = np.repeat(np.arange(pat.n_columns, dtype=np.int64), pat.col_ntrips + 1)
    real &= pat.col_board[col]
    at, dep = pat.col_stop[col[real]], pat.dep_pad[real]
    if not origin_walk:
        fp = Footpaths.from_edges(pat.n_stops, [], [], [], max_walk_m=0.0)  # self edges only
    # An event at stop s' is an event at every stop s a footpath s -> s' away, w earlier.
    deg = np.diff(fp.dst_start)[at]
    first = np.repeat(fp.dst_start[at], deg)
    within = np.arange(deg.sum()) - np.repeat(np.cumsum(deg) - deg, deg)
    edge = first + within
    stop = fp.src[edge]
    time = np.repeat(dep, deg) - fp.seconds[edge]
    keys = np.unique(stop * _BIG + time + _OFF)
    stop, time = keys // _BIG, keys % _BIG - _OFF
    keep = (time >= start_s) & (time <= end_s)
    # ... and the first event after the end, per stop (the next bus after the horizon).
    after = np.flatnonzero(time > end_s)
    if len(after):
        firsts = after[np.r_[True, stop[after][1:] != stop[after][:-1]]]
        keep[firsts] = True
    return stop[keep], time[keep]


def stop_profiles(
    pat: Patterns,
    fp: Footpaths,
    egress_s: np.ndarray,
    *,
    start_s: int,
    end_s: int,
    max_transfers: int = 3,
    transfer_slack_s: int = 60,
    origin_walk: bool = True,
) -> StopProfile:
    """Earliest arrival at the target from every stop, at any time from start to end.

    Parameters
    ----------
    pat, fp
        Patterns and footpaths of the feed.
    egress_s
        Per stop, walking seconds to the target (``inf`` beyond the walking limit).
    start_s, end_s
        The times one may be at a stop: the departure window, extended by the longest
        access walk when nodes are to be answered for.
    max_transfers, transfer_slack_s, origin_walk
        See :func:`raptor`.

    Returns
    -------
    StopProfile
    """
    egress = _as_int_seconds(egress_s)
    stop, time = _events(pat, fp, int(start_s), int(end_s), origin_walk=origin_walk)
    value = np.empty(len(stop), dtype=np.int64)
    per = max(1, _CHUNK_ELEMENTS // max(pat.n_columns, len(fp.src), pat.n_stops, 1))
    for i in range(0, len(stop), per):
        res = raptor(
            pat,
            fp,
            stop[i : i + per],
            time[i : i + per],
            max_transfers=max_transfers,
            transfer_slack_s=transfer_slack_s,
            egress_s=egress_s,
            origin_walk=origin_walk,
        )
        value[i : i + per] = res.target
    # Suffix minimum per stop (leaving later never helps; this makes it exact by definition).
    ptr = np.searchsorted(stop, np.arange(pat.n_stops + 1)).astype(np.int64)
    if len(value):
        # Segmented suffix minimum: times clipped below 2**22, each stop shifted above the
        # ones before it, so a reversed running minimum restarts at every stop.
        shift = stop * _BIG
        clipped = np.minimum(value + _OFF, _BIG - 1) + shift
        run = np.minimum.accumulate(clipped[::-1])[::-1] - shift
        value = np.where(run >= _BIG - 1, INF, run - _OFF)
    return StopProfile(
        event=time,
        value=value,
        ptr=ptr,
        egress=egress,
        horizon=int(end_s),
        queries=len(stop),
        keys=stop * _BIG + time + _OFF,
    )


#: Reversed time: t' = _FLIP - t keeps every reversed time positive in the search keys.
_FLIP: Final[int] = 2 * DAY_S


def reverse_timetable(table: Timetable) -> Timetable:
    """The timetable run backwards in time: each trip reversed, ``t' = 2 days - t``.

    Boarding becomes alighting and vice versa, so the earliest arrival in reversed time from
    the target is the latest departure towards it (the backward search of RAPTOR).

    Parameters
    ----------
    table
        A timetable.

    Returns
    -------
    Timetable
        Same stops and trips, stop times reversed within each trip.
    """
    starts = table.trip_start
    trip = np.repeat(np.arange(table.n_trips), np.diff(starts))
    idx = starts[trip] + starts[trip + 1] - 1 - np.arange(len(trip))  # reverse within trips
    return replace(
        table,
        stop=table.stop[idx],
        arrival=_FLIP - table.departure[idx],
        departure=_FLIP - table.arrival[idx],
        pickup=table.dropoff[idx],
        dropoff=table.pickup[idx],
    )


def _profile_from_latest(
    latest: np.ndarray, deadline: np.ndarray, egress: np.ndarray, horizon: int, queries: int
) -> StopProfile:
    """A :class:`StopProfile` from latest departures (deadlines × stops, deadlines ascending).

    Per stop the breakpoints where the latest departure rises are kept: leaving at or before
    ``latest[i]`` one reaches the target by ``deadline[i]``.
    """
    n_stops = latest.shape[1]
    rises = np.zeros(latest.shape, dtype=bool)
    if len(latest):
        rises[0] = latest[0] > -INF // 2
        rises[1:] = latest[1:] > latest[:-1]
    stop, row = np.nonzero(rises.T)  # sorted by stop, then deadline
    event = latest[row, stop]
    value = deadline[row]
    ptr = np.searchsorted(stop, np.arange(n_stops + 1)).astype(np.int64)
    return StopProfile(
        event=event,
        value=value,
        ptr=ptr,
        egress=egress,
        horizon=int(horizon),
        queries=queries,
        keys=stop * _BIG + np.clip(event + _OFF, 0, _BIG - 1),
    )


def backward_profiles(
    table: Timetable,
    fp: Footpaths,
    egress_s: np.ndarray,
    *,
    start_s: int,
    end_s: int,
    max_trip_s: int | None = None,
    max_transfers: int = 3,
    transfer_slack_s: int = 60,
    reverse: Patterns | None = None,
) -> tuple[StopProfile, StopProfile]:
    """Stop profiles from backward searches: one per possible arrival time at the target.

    The target is reached at ``arrival + egress`` of some trip at some stop near it; for each
    such time ``A`` (from ``start_s`` on, up to ``end_s + max_trip_s`` when given) one RAPTOR
    search on the reversed timetable gives, for every stop at once, the latest departure that
    still reaches the target by ``A``. Leaving stop ``s`` at ``τ`` one arrives at the first
    ``A`` whose latest departure is at or after ``τ`` (or walks). The searches scale with the
    stops near care, not with the stops of the feed: for the nearest site of a category this
    is much less work than searching from every stop (:func:`stop_profiles`).

    Parameters
    ----------
    table, fp, egress_s
        Timetable, footpaths and per-stop walking seconds to the target.
    start_s, end_s
        Earliest and latest time one may be at a stop (the window; extend ``end_s`` by the
        longest access walk for network nodes).
    max_trip_s
        Longest journey counted (None: any, exact to the end of service).
    max_transfers, transfer_slack_s
        See :func:`raptor`.
    reverse
        :func:`build_patterns` of :func:`reverse_timetable` (built when None).

    Returns
    -------
    from_stop, from_walk : StopProfile
        Profiles for journeys from a stop (a footpath may precede the first ride) and for
        journeys whose access walk already reached the boarding stop (network nodes).
    """
    egress = _as_int_seconds(egress_s)
    rev = build_patterns(reverse_timetable(table)) if reverse is None else reverse
    back_fp = Footpaths.from_edges(fp.n_stops, fp.dst, fp.src, fp.seconds, max_walk_m=fp.max_walk_m)
    # Possible arrivals at the target: alighting (a boarding, reversed) near it, then walking.
    real = np.ones(len(rev.dep_pad), dtype=bool)
    real[rev.col_pad_start + rev.col_ntrips] = False
    col = np.repeat(np.arange(rev.n_columns, dtype=np.int64), rev.col_ntrips + 1)
    real &= rev.col_board[col] & (egress[rev.col_stop[col]] < INF)
    deadline = _FLIP - rev.dep_pad[real] + egress[rev.col_stop[col[real]]]
    last = np.iinfo(np.int64).max if max_trip_s is None else int(end_s) + int(max_trip_s)
    deadline = np.unique(deadline[(deadline >= start_s) & (deadline <= last)])
    n = table.n_stops
    near = np.flatnonzero(egress < INF)
    walk_best = np.full((len(deadline), n), -INF, dtype=np.int64)
    ride_best = np.full((len(deadline), n), -INF, dtype=np.int64)
    per = max(1, _CHUNK_ELEMENTS // max(rev.n_columns, len(back_fp.src), n, 1))
    for i in range(0, len(deadline), per):
        a = deadline[i : i + per]
        ready = np.full((len(a), n), INF, dtype=np.int64)
        ready[:, near] = _FLIP - (a[:, None] - egress[near][None, :])
        # Prune: departures before the window, or journeys longer than max_trip_s.
        earliest = np.full(len(a), int(start_s), dtype=np.int64)
        if max_trip_s is not None:
            earliest = np.maximum(earliest, a - int(max_trip_s))
        arrival, rode, _, _ = _rounds(
            rev,
            back_fp,
            ready,
            None,
            np.full(len(a), INF, dtype=np.int64),
            max_transfers=max_transfers,
            slack=transfer_slack_s,
            bound=_FLIP - earliest,
        )
        walk_best[i : i + per] = np.where(arrival < INF, _FLIP - arrival, -INF)
        ride_best[i : i + per] = np.where(rode < INF, _FLIP - rode, -INF)
    # A later deadline never allows a later departure to be worse: running maximum.
    np.maximum.accumulate(walk_best, axis=0, out=walk_best)
    np.maximum.accumulate(ride_best, axis=0, out=ride_best)
    q = len(deadline)
    return (
        _profile_from_latest(walk_best, deadline, egress, end_s, q),
        _profile_from_latest(ride_best, deadline, egress, end_s, q),
    )


def departure_times(start_s: int, end_s: int, step_s: int = 60) -> np.ndarray:
    """Departure seconds of a window, both ends included (07:00-09:00 every minute: 121).

    Parameters
    ----------
    start_s, end_s, step_s
        Window start and end and the step, seconds.

    Returns
    -------
    numpy.ndarray
    """
    return np.arange(int(start_s), int(end_s) + 1, int(step_s), dtype=np.int64)


def node_arrivals(
    prof: StopProfile,
    access: AccessPairs,
    departures: np.ndarray,
    n_nodes: int,
    direct_s: np.ndarray | None = None,
    nodes: np.ndarray | None = None,
) -> np.ndarray:
    """Earliest arrival at the target from network nodes at each departure time.

    Parameters
    ----------
    prof
        Stop profiles (horizon at least the last departure plus the longest access walk).
    access
        Walks from nodes to stops.
    departures
        Departure seconds (D).
    n_nodes
        Number of network nodes.
    direct_s
        Per node, walking seconds straight to the target (``inf`` for none); None: no walk.
    nodes
        Nodes to answer for (default all).

    Returns
    -------
    numpy.ndarray
        int64 (len(nodes) × D) arrival seconds, ``INF`` where not reached.
    """
    departures = np.asarray(departures, dtype=np.int64)
    nodes = np.arange(n_nodes, dtype=np.int64) if nodes is None else np.asarray(nodes, np.int64)
    if len(nodes) > 1 and (np.diff(nodes) <= 0).any():
        raise ValueError("nodes must be sorted and unique")
    out = np.full((len(nodes), len(departures)), INF, dtype=np.int64)
    if direct_s is not None:
        direct = _as_int_seconds(direct_s)[nodes]
        out = np.minimum(out, departures[None, :] + direct[:, None])
    lo = np.searchsorted(access.node, nodes, side="left")
    hi = np.searchsorted(access.node, nodes, side="right")
    per = max(1, _CHUNK_ELEMENTS // max(len(departures), 1))  # access pairs per chunk
    row = 0
    while row < len(nodes):  # chunks of consecutive nodes, holding about `per` pairs
        end = max(int(np.searchsorted(lo, lo[row] + per, side="left")), row + 1)
        counts = hi[row:end] - lo[row:end]
        first, last = int(lo[row]), int(hi[end - 1])
        if last > first:
            idx = slice(first, last)  # nodes are sorted, so their pairs are contiguous
            tau = departures[None, :] + access.seconds[idx][:, None]
            got = prof.arrival(access.stop[idx][:, None], tau)
            has = counts > 0
            starts = (np.cumsum(counts) - counts)[has]
            sub = out[row:end]
            sub[has] = np.minimum(sub[has], np.minimum.reduceat(got, starts, axis=0))
        row = end
    return out


def nearest_rank(times_s: np.ndarray, percentiles: Sequence[float]) -> np.ndarray:
    """Nearest-rank percentiles over the last axis (departure minutes); inf counts as inf.

    Parameters
    ----------
    times_s
        Travel seconds (... × D), ``inf`` where unreachable.
    percentiles
        E.g. ``(50, 80)``.

    Returns
    -------
    numpy.ndarray
        (... × len(percentiles)) seconds.
    """
    times_s = np.sort(np.asarray(times_s, dtype=float), axis=-1)
    d = times_s.shape[-1]
    idx = [min(d - 1, max(0, math.ceil(p / 100 * d) - 1)) for p in percentiles]
    return times_s[..., idx]


def travel_seconds(arrival: np.ndarray, departures: np.ndarray) -> np.ndarray:
    """Arrival seconds (int64, ``INF`` unreached) minus departures: float, ``inf`` unreached."""
    out = (arrival - np.asarray(departures, dtype=np.int64)).astype(float)
    out[arrival >= INF] = np.inf
    return out


@dataclass(frozen=True)
class TransitTimes:
    """Travel time by transit to the nearest site over a departure window.

    Attributes
    ----------
    departures
        Departure seconds of the window (D).
    percentiles
        The percentiles summarised (e.g. ``(50.0, 80.0)``).
    stop_seconds
        float (stops × D) travel seconds from each stop, ``inf`` where care is not reached.
    stop_summary
        float (stops × P): the percentiles of :attr:`stop_seconds` (nearest rank).
    node_summary
        float (nodes × P) for walk-network nodes, or None when no access walks were given.
    stops_without_service
        Stops where no trip stops in the window.
    searches
        RAPTOR searches (origin stop × boarding event) run.
    """

    departures: np.ndarray
    percentiles: tuple[float, ...]
    stop_seconds: np.ndarray
    stop_summary: np.ndarray
    node_summary: np.ndarray | None
    stops_without_service: np.ndarray
    searches: int


def transit_times(
    table: Timetable,
    fp: Footpaths,
    egress_s: np.ndarray,
    *,
    window: tuple[int, int] = (7 * 3600, 9 * 3600),
    step_s: int = 60,
    percentiles: Sequence[float] = (50.0, 80.0),
    max_transfers: int = 3,
    transfer_slack_s: int = 60,
    max_trip_s: int | None = None,
    access: AccessPairs | None = None,
    direct_s: np.ndarray | None = None,
    n_nodes: int | None = None,
    method: str = "backward",
    patterns: Patterns | None = None,
    reverse_patterns: Patterns | None = None,
) -> TransitTimes:
    """Travel time by transit to the nearest site from every stop (and node) over a window.

    Parameters
    ----------
    table
        The timetable on the service date.
    fp
        Footpaths between stops.
    egress_s
        Per stop, walking seconds to the nearest site (``inf`` beyond the walking limit).
    window
        First and last departure, seconds after midnight.
    step_s
        Seconds between departures (60: every minute).
    percentiles
        Percentiles of the travel time over the window to report.
    max_transfers, transfer_slack_s
        See :func:`raptor`.
    max_trip_s
        Journeys longer than this count as not reaching care (None: no limit).
    access, direct_s, n_nodes
        Walks from network nodes to stops, each node's walk straight to the nearest site, and
        the number of nodes: when given, :attr:`TransitTimes.node_summary` is computed.
    method
        ``"backward"`` (the default): one search per possible arrival at care
        (:func:`backward_profiles`); ``"forward"``: one search per boarding event of every
        stop (:func:`stop_profiles`). Both give the same times.
    patterns, reverse_patterns
        Prebuilt :func:`build_patterns` of ``table`` (for ``"forward"``) and of
        :func:`reverse_timetable` of it (for ``"backward"``); built when None.

    Returns
    -------
    TransitTimes
    """
    deps = departure_times(window[0], window[1], step_s)
    opts = {"max_transfers": max_transfers, "transfer_slack_s": transfer_slack_s}
    longest = int(access.seconds.max(initial=0)) if access is not None else 0
    if method == "backward":
        rev = reverse_patterns
        if rev is None:
            rev = build_patterns(reverse_timetable(table))
        prof, node_prof = backward_profiles(
            table,
            fp,
            egress_s,
            start_s=window[0],
            end_s=window[1] + longest,
            max_trip_s=max_trip_s,
            reverse=rev,
            **opts,
        )
        searches = prof.queries
    elif method == "forward":
        pat = build_patterns(table) if patterns is None else patterns
        prof = stop_profiles(pat, fp, egress_s, start_s=window[0], end_s=window[1], **opts)
        searches = prof.queries
        node_prof = None
        if access is not None:
            # From a node the access walks reach every stop within the limit: no footpath.
            node_prof = stop_profiles(
                pat,
                fp,
                egress_s,
                start_s=window[0],
                end_s=window[1] + longest,
                origin_walk=False,
                **opts,
            )
            searches += node_prof.queries
    else:
        raise ValueError(f"method must be 'backward' or 'forward', not {method!r}")

    def seconds(arrival: np.ndarray) -> np.ndarray:
        out = travel_seconds(arrival, deps[None, :])
        if max_trip_s is not None:
            out[out > max_trip_s] = np.inf
        return out

    stops = np.arange(table.n_stops, dtype=np.int64)
    stop_sec = seconds(prof.arrival(stops[:, None], deps[None, :]))
    node_summary = None
    if access is not None:
        n = int(n_nodes) if n_nodes is not None else int(access.node.max(initial=-1) + 1)
        parts = []
        per = max(1, _CHUNK_ELEMENTS // max(len(deps), 1))
        for a in range(0, n, per):
            nodes = np.arange(a, min(n, a + per))
            arr = node_arrivals(node_prof, access, deps, n, direct_s=direct_s, nodes=nodes)
            parts.append(nearest_rank(seconds(arr), percentiles))
        node_summary = np.concatenate(parts) if parts else np.zeros((0, len(percentiles)))
    return TransitTimes(
        departures=deps,
        percentiles=tuple(float(p) for p in percentiles),
        stop_seconds=stop_sec,
        stop_summary=nearest_rank(stop_sec, percentiles),
        node_summary=node_summary,
        stops_without_service=table.stops_without_service(window[0], window[1]),
        searches=searches,
    )
