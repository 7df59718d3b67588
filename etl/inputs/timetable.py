"""A GTFS feed's timetable on one service date, as flat numpy arrays for the transit engine.

:func:`read_timetable` reads ``stop_times.txt``, ``trips.txt``, ``routes.txt``,
``calendar.txt`` + ``calendar_dates.txt`` and ``frequencies.txt`` from a feed folder or
``.zip`` (through :class:`etl.inputs.gtfs.Feed`) and keeps the trips that run on the chosen
date:

* **Service**: a service runs on a date inside its ``calendar.txt`` span on a weekday it
  marks, unless ``calendar_dates.txt`` removes it that day (``exception_type`` 2); a
  ``calendar_dates.txt`` row with ``exception_type`` 1 adds it. A feed may have only one of
  the two files.
* **After midnight**: times may pass 24:00:00 ("25:10:00" is 01:10 the next morning). Trips
  of the *previous* service day still running after midnight are kept, their times shifted
  by -24 h, so an early-morning window sees them.
* **Frequencies**: a trip listed in ``frequencies.txt`` is a template: it is expanded into one
  trip every ``headway_secs`` from ``start_time`` while before ``end_time``, each keeping the
  template's time offsets. ``exact_times`` 1 means exactly those trips; ``exact_times`` 0
  (headway-based service, where the real departures are not published) is expanded the same
  way, starting at ``start_time`` — a simplification: Conveyal draws random offsets instead.
* **Missing times**: stops without ``arrival_time``/``departure_time`` (non-timepoints) get
  times interpolated between the trip's timed stops, by ``shape_dist_traveled`` where the trip
  has it, else evenly by stop order (as OpenTripPlanner does).
* ``pickup_type`` / ``drop_off_type`` 1 forbid boarding / alighting there (2 and 3, "phone"
  and "ask the driver", are taken as allowed).

Errors a user can fix are one line (:class:`etl._errors.InputError`): a feed without
``stop_times.txt`` (the Franklin County sample) has no timetable; a date outside the feed's
calendar names the calendar's span and the config key that sets the date (:data:`DATE_KEY`).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from etl._errors import InputError
from etl.engine.timetable import DAY_S, Timetable
from etl.inputs.gtfs import Feed

log = logging.getLogger(__name__)

#: The region config key that sets the service date.
DATE_KEY: Final[str] = "transit.service_date"  # transit.date is the feed's own date
_WEEKDAYS: Final[tuple[str, ...]] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


def parse_gtfs_time(values: pd.Series | np.ndarray | list[str]) -> np.ndarray:
    """Parse GTFS ``H:MM:SS`` times (past 24:00:00 allowed) to seconds.

    Parameters
    ----------
    values
        Strings such as ``"7:05:00"``, ``"25:10:30"``; empty strings are missing.

    Returns
    -------
    numpy.ndarray
        float64 seconds after midnight, NaN where empty.

    Raises
    ------
    ValueError
        For a non-empty value that is not ``H:MM:SS``, naming the first such value.
    """
    codes, uniq = pd.factorize(pd.Series(values, dtype=str), sort=False)
    s = pd.Series(uniq, dtype=str).str.strip()  # a feed repeats few distinct times: parse those
    parts = s.str.extract(r"^(\d{1,3}):([0-5]\d):([0-5]\d)$")
    bad = s.ne("") & parts[0].isna()
    if bad.any():
        raise ValueError(f"not a GTFS time (H:MM:SS): {s[bad].iloc[0]!r}")
    h, m, sec = (pd.to_numeric(parts[i]).to_numpy(float) for i in range(3))
    seconds = np.r_[h * 3600 + m * 60 + sec, np.nan]
    return seconds[np.where(codes < 0, len(uniq), codes)]


def _strip(col: pd.Series) -> pd.Series:
    """``col.str.strip()`` done once per distinct value (stop_times repeats them a lot)."""
    codes, uniq = pd.factorize(col, sort=False)
    clean = np.append(pd.Series(uniq, dtype=str).str.strip().to_numpy(dtype=object), "")
    return pd.Series(clean[np.where(codes < 0, len(uniq), codes)], index=col.index)


def _date(text: str) -> dt.date:
    return dt.datetime.strptime(text.strip(), "%Y%m%d").date()


def _services_on(feed: Feed, date: dt.date) -> tuple[set[str], tuple[dt.date, dt.date] | None]:
    """Service ids running on ``date`` and the calendar's whole span (None: no calendar)."""
    running: set[str] = set()
    starts: list[dt.date] = []
    ends: list[dt.date] = []
    if feed.has("calendar.txt"):
        cal = feed.table(
            "calendar.txt", required=("service_id", "start_date", "end_date", *_WEEKDAYS)
        )
        try:
            start = np.array([_date(v) for v in cal["start_date"]])
            end = np.array([_date(v) for v in cal["end_date"]])
        except ValueError:
            msg = f"{feed.where('calendar.txt')}: start_date/end_date must be YYYYMMDD"
            raise InputError(msg) from None
        starts += list(start)
        ends += list(end)
        day = cal[_WEEKDAYS[date.weekday()]].str.strip().eq("1").to_numpy()
        on = day & (start <= date) & (date <= end)
        running |= set(cal["service_id"].str.strip()[on])
    if feed.has("calendar_dates.txt"):
        ex = feed.table("calendar_dates.txt", required=("service_id", "date", "exception_type"))
        try:
            when = np.array([_date(v) for v in ex["date"]])
        except ValueError:
            msg = f"{feed.where('calendar_dates.txt')}: date must be YYYYMMDD"
            raise InputError(msg) from None
        kind = ex["exception_type"].str.strip().to_numpy()
        ids = ex["service_id"].str.strip().to_numpy()
        added = kind == "1"
        starts += list(when[added])
        ends += list(when[added])
        today = when == date
        running -= set(ids[today & (kind == "2")])
        running |= set(ids[today & added])
    if not feed.has("calendar.txt") and not feed.has("calendar_dates.txt"):
        msg = (
            f"{feed.where('calendar.txt')}: the feed has neither calendar.txt nor "
            "calendar_dates.txt, so no trip has a service day"
        )
        raise InputError(msg)
    span = (min(starts), max(ends)) if starts else None
    return running, span


def _interpolate(times: np.ndarray, trip: np.ndarray, dist: np.ndarray | None) -> np.ndarray:
    """Fill NaN times linearly between the timed stops of each trip (rows sorted by trip)."""
    n = len(times)
    known = ~np.isnan(times)
    if known.all():
        return times
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(known, idx, -1))
    nxt = np.minimum.accumulate(np.where(known, idx, n)[::-1])[::-1]
    ok = (prev >= 0) & (nxt < n)
    ok[ok] &= (trip[prev[ok]] == trip[idx[ok]]) & (trip[nxt[ok]] == trip[idx[ok]])
    missing = ~known
    if (missing & ~ok).any():
        raise ValueError("a trip's first or last stop time has no time")
    p, q = prev[missing], nxt[missing]
    frac = (idx[missing] - p) / (q - p)  # evenly by stop order
    if dist is not None:  # by distance along the shape, where the trip's rows have it
        d0, d1, d = dist[p], dist[q], dist[missing]
        with np.errstate(invalid="ignore", divide="ignore"):
            by_dist = (d - d0) / (d1 - d0)
        ok = np.isfinite(by_dist) & (d1 > d0) & (by_dist >= 0) & (by_dist <= 1)
        frac = np.where(ok, by_dist, frac)
    out = times.copy()
    out[missing] = np.round(times[p] + frac * (times[q] - times[p]))
    return out


def _stop_times(feed: Feed, trips: pd.DataFrame) -> pd.DataFrame:
    """The stop times of ``trips`` (columns trip_id), sorted, times in seconds, interpolated."""
    if not feed.has("stop_times.txt"):
        msg = (
            f"{feed.where('stop_times.txt')}: the feed has no stop_times.txt (no timetable), so "
            "there is no transit mode; the stops layer is still built"
        )
        raise InputError(msg)
    st = feed.table(
        "stop_times.txt",
        required=("trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"),
    )
    st["trip_id"] = _strip(st["trip_id"])
    st = st[st["trip_id"].isin(set(trips["trip_id"]))].copy()
    st["stop_id"] = _strip(st["stop_id"])
    seq = pd.to_numeric(_strip(st["stop_sequence"]), errors="coerce")
    if seq.isna().any():
        bad = st.loc[seq.isna(), "stop_sequence"].iloc[0]
        msg = f"{feed.where('stop_times.txt')}: stop_sequence {bad!r} is not a number"
        raise InputError(msg)
    st["seq"] = seq.to_numpy()
    st = st.sort_values(["trip_id", "seq"], kind="stable").reset_index(drop=True)
    try:
        arr = parse_gtfs_time(st["arrival_time"])
        dep = parse_gtfs_time(st["departure_time"])
    except ValueError as exc:
        raise InputError(f"{feed.where('stop_times.txt')}: {exc}") from None
    arr = np.where(np.isnan(arr), dep, arr)
    dep = np.where(np.isnan(dep), arr, dep)
    trip_code = pd.factorize(st["trip_id"])[0]
    dist = None
    if "shape_dist_traveled" in st.columns:
        dist = pd.to_numeric(_strip(st["shape_dist_traveled"]), errors="coerce").to_numpy(float)
    try:
        arr = _interpolate(arr, trip_code, dist)
        dep = np.where(np.isnan(dep), arr, dep)
        dep = _interpolate(dep, trip_code, dist)
    except ValueError as exc:
        raise InputError(f"{feed.where('stop_times.txt')}: {exc}") from None
    st["arr"] = arr.astype(np.int64)
    st["dep"] = np.maximum(dep, arr).astype(np.int64)

    def flag(col: str) -> np.ndarray:
        if col not in st.columns:
            return np.ones(len(st), dtype=bool)
        return _strip(st[col]).ne("1").to_numpy()

    st["pickup"] = flag("pickup_type")
    st["dropoff"] = flag("drop_off_type")
    return st[["trip_id", "stop_id", "arr", "dep", "pickup", "dropoff"]]


def _expand_frequencies(feed: Feed, st: pd.DataFrame) -> pd.DataFrame:
    """Replace each frequency template trip by its scheduled copies."""
    if not feed.has("frequencies.txt"):
        return st
    fr = feed.table(
        "frequencies.txt", required=("trip_id", "start_time", "end_time", "headway_secs")
    )
    fr = fr[fr["trip_id"].str.strip().isin(set(st["trip_id"]))]
    if fr.empty:
        return st
    try:
        start = parse_gtfs_time(fr["start_time"]).astype(np.int64)
        end = parse_gtfs_time(fr["end_time"]).astype(np.int64)
    except ValueError as exc:
        raise InputError(f"{feed.where('frequencies.txt')}: {exc}") from None
    headway = pd.to_numeric(fr["headway_secs"].str.strip(), errors="coerce").to_numpy(float)
    if not (np.isfinite(headway) & (headway > 0)).all():
        msg = f"{feed.where('frequencies.txt')}: headway_secs must be a positive number"
        raise InputError(msg)
    headway = headway.astype(np.int64)
    n = np.maximum(0, -(-(end - start) // headway))  # departures start + k*h < end
    template = np.repeat(fr["trip_id"].str.strip().to_numpy(), n)
    first = np.repeat(start, n) + headway.repeat(n) * (
        np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    )
    copies = pd.DataFrame({"template": template, "first": first})
    copies["trip_id"] = [
        f"{t}@{f // 3600:02d}:{f // 60 % 60:02d}:{f % 60:02d}"
        for t, f in zip(copies["template"], copies["first"], strict=True)
    ]
    tmpl = st[st["trip_id"].isin(set(template))].copy()
    tmpl["offset0"] = tmpl.groupby("trip_id")["dep"].transform("first")
    tmpl["order"] = np.arange(len(tmpl))
    out = copies.merge(tmpl, left_on="template", right_on="trip_id", suffixes=("", "_t"))
    shift = out["first"] - out["offset0"]
    out["arr"] = out["arr"] + shift
    out["dep"] = out["dep"] + shift
    out = out.sort_values(["trip_id", "order"], kind="stable")
    keep = st[~st["trip_id"].isin(set(template))]
    cols = ["trip_id", "stop_id", "arr", "dep", "pickup", "dropoff"]
    return pd.concat([keep, out[cols]], ignore_index=True)


def _trips_on(feed: Feed, trips: pd.DataFrame, date: dt.date) -> tuple[set[str], tuple | None]:
    services, span = _services_on(feed, date)
    return set(trips.loc[trips["service_id"].isin(services), "trip_id"]), span


def read_timetable(path: str | Path, date: dt.date | str) -> Timetable:
    """Read the trips of a GTFS feed that run on ``date``.

    Parameters
    ----------
    path
        A feed folder, ``.zip`` or its ``stops.txt``.
    date
        The service date (a :class:`datetime.date` or ``"YYYY-MM-DD"``).

    Returns
    -------
    Timetable

    Raises
    ------
    InputError
        One line: the feed has no ``stop_times.txt``; ``date`` lies outside the feed's
        calendar (naming its span and :data:`DATE_KEY`); no trip runs on ``date``; a table is
        unreadable or a stop time names a stop missing from ``stops.txt``.
    """
    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date.strip())
        except ValueError:
            msg = f"{DATE_KEY}: {date!r} is not a date; write it as YYYY-MM-DD"
            raise InputError(msg) from None
    feed = Feed(path, role="transit")
    if not feed.has("stop_times.txt"):
        _stop_times(feed, pd.DataFrame({"trip_id": []}))  # raises the one-line message
    trips = feed.table("trips.txt", required=("route_id", "service_id", "trip_id"))
    for col in ("route_id", "service_id", "trip_id"):
        trips[col] = trips[col].str.strip()
    today, span = _trips_on(feed, trips, date)
    if span is not None and not (span[0] <= date <= span[1]):
        msg = (
            f"{feed.path}: the feed's calendar runs {span[0]:%Y-%m-%d} to {span[1]:%Y-%m-%d}; "
            f"{date:%Y-%m-%d} is outside it: set {DATE_KEY} in the region config to a day inside it"
        )
        raise InputError(msg)
    if not today:
        msg = (
            f"{feed.path}: no trip runs on {date:%Y-%m-%d} (a {date:%A}); set {DATE_KEY} in the "
            "region config to a day with service"
        )
        raise InputError(msg)
    yesterday, _ = _trips_on(feed, trips, date - dt.timedelta(days=1))
    wanted = trips[trips["trip_id"].isin(today | yesterday)]
    st = _expand_frequencies(feed, _stop_times(feed, wanted))
    codes, uniq = pd.factorize(st["trip_id"], sort=False)
    base = pd.Series(pd.Series(uniq, dtype=str).str.split("@").str[0].to_numpy()[codes])
    parts = []
    if today:
        parts.append(st[base.isin(today)])
    if yesterday:
        prev = st[base.isin(yesterday)].copy()
        prev["arr"] -= DAY_S
        prev["dep"] -= DAY_S
        late = prev.groupby("trip_id")["arr"].transform("max") >= 0
        prev = prev[late]
        prev["trip_id"] = "yesterday:" + prev["trip_id"]
        parts.append(prev)
    st = pd.concat(parts, ignore_index=True)

    stops = feed.table("stops.txt", required=("stop_id", "stop_lat", "stop_lon"))
    stops["stop_id"] = stops["stop_id"].str.strip()
    if "location_type" in stops.columns:  # boarding stops only: not stations, entrances...
        kind = stops["location_type"].str.strip()
        stops = stops[(kind == "") | (kind == "0")].reset_index(drop=True)
    stop_index = pd.Index(stops["stop_id"])
    if not stop_index.is_unique:
        dup = stop_index[stop_index.duplicated()][0]
        raise InputError(f"{feed.where('stops.txt')}: stop_id {dup!r} appears twice")
    stop = stop_index.get_indexer(st["stop_id"])
    if (stop < 0).any():
        bad = st["stop_id"].to_numpy()[stop < 0][0]
        msg = f"{feed.where('stop_times.txt')}: stop_id {bad!r} is not a boarding stop in stops.txt"
        raise InputError(msg)

    routes = feed.table("routes.txt", required=("route_id",))
    routes["route_id"] = routes["route_id"].str.strip()
    short = routes.get("route_short_name", pd.Series("", index=routes.index)).str.strip()
    long_ = routes.get("route_long_name", pd.Series("", index=routes.index)).str.strip()
    route_index = pd.Index(routes["route_id"])
    trip_codes, trip_ids = pd.factorize(st["trip_id"], sort=False)
    first = np.r_[0, np.flatnonzero(np.diff(trip_codes)) + 1]
    starts = np.r_[first, len(st)].astype(np.int64)
    base_ids = pd.Series(trip_ids).str.replace("^yesterday:", "", regex=True).str.split("@").str[0]
    trip_route_id = base_ids.map(trips.drop_duplicates("trip_id").set_index("trip_id")["route_id"])
    trip_route = route_index.get_indexer(trip_route_id)
    if (trip_route < 0).any():
        bad = trip_route_id[trip_route < 0].iloc[0]
        raise InputError(f"{feed.where('trips.txt')}: route_id {bad!r} is not in routes.txt")
    table = Timetable(
        date=date,
        source=str(feed.path),
        stop_id=stops["stop_id"].to_numpy(dtype=str),
        stop_name=stops.get("stop_name", stops["stop_id"]).str.strip().to_numpy(dtype=str),
        stop_lon=pd.to_numeric(stops["stop_lon"], errors="coerce").to_numpy(float),
        stop_lat=pd.to_numeric(stops["stop_lat"], errors="coerce").to_numpy(float),
        route_id=routes["route_id"].to_numpy(dtype=str),
        route_name=np.where(short != "", short, long_).astype(str),
        trip_id=np.asarray(trip_ids, dtype=str),
        trip_route=trip_route.astype(np.int64),
        trip_start=starts,
        stop=stop.astype(np.int64),
        arrival=st["arr"].to_numpy(np.int64),
        departure=st["dep"].to_numpy(np.int64),
        pickup=st["pickup"].to_numpy(bool),
        dropoff=st["dropoff"].to_numpy(bool),
    )
    log.info(
        "read_timetable: %s trips, %s stop times on %s from %s",
        f"{table.n_trips:,}",
        f"{len(table.stop):,}",
        date,
        feed.path,
    )
    return table
