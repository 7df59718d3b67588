"""A transit timetable as plain arrays: the engine's view of a GTFS feed on one date.

Read by :mod:`etl.inputs.timetable`, routed by :mod:`etl.engine.transit`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import numpy as np

#: Seconds in a day (GTFS times run past 24:00 for trips after midnight).
DAY_S: Final[int] = 86_400


@dataclass(frozen=True)
class Timetable:
    """The trips of a feed running on one date, stop times flat and sorted by trip and order.

    Times are int64 seconds after midnight of :attr:`date` (noon minus 12 h, as GTFS says;
    daylight-saving days are not special-cased). Trips of the previous day that run past
    midnight have negative times before midnight.

    Attributes
    ----------
    date
        The service date.
    source
        The feed read (for messages and the manifest).
    stop_id, stop_name, stop_lon, stop_lat
        Per stop (``location_type`` 0 or empty in ``stops.txt``, i.e. where riders board).
    route_id, route_name
        Per route (``route_short_name``, else ``route_long_name``).
    trip_id
        Per trip (frequency-expanded trips are named ``<trip_id>@HH:MM:SS``).
    trip_route
        Index into :attr:`route_id` of each trip.
    trip_start
        Offset of each trip's first stop time in the flat arrays; ``trip_start[-1]`` is their
        length (CSR pointer, ``len(trip_id) + 1`` entries).
    stop, arrival, departure, pickup, dropoff
        Per stop time: stop index, arrival and departure seconds, whether boarding and
        alighting are allowed.
    """

    date: dt.date
    source: str
    stop_id: np.ndarray
    stop_name: np.ndarray
    stop_lon: np.ndarray
    stop_lat: np.ndarray
    route_id: np.ndarray
    route_name: np.ndarray
    trip_id: np.ndarray
    trip_route: np.ndarray
    trip_start: np.ndarray
    stop: np.ndarray
    arrival: np.ndarray
    departure: np.ndarray
    pickup: np.ndarray
    dropoff: np.ndarray

    @property
    def n_stops(self) -> int:
        """Number of stops."""
        return len(self.stop_id)

    @property
    def n_trips(self) -> int:
        """Number of trips running on the date."""
        return len(self.trip_id)

    def stops_without_service(self, start_s: int, end_s: int) -> np.ndarray:
        """Stops where no trip can be boarded or left between ``start_s`` and ``end_s``.

        Parameters
        ----------
        start_s, end_s
            The window, seconds after midnight (inclusive).

        Returns
        -------
        numpy.ndarray
            Sorted indices of the stops with no departure (boarding allowed) and no arrival
            (alighting allowed) in the window.
        """
        dep_in = self.pickup & (self.departure >= start_s) & (self.departure <= end_s)
        arr_in = self.dropoff & (self.arrival >= start_s) & (self.arrival <= end_s)
        served = np.zeros(self.n_stops, dtype=bool)
        served[self.stop[dep_in | arr_in]] = True
        return np.flatnonzero(~served)
