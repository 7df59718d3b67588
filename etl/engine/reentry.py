"""Release day: travel time from a correctional facility to the nearest care of each kind.

A facility is treated like a people point (:mod:`etl.engine.counting`): it is snapped to its
nearest node of a mode's network, it is *covered* by the mode when that node lies within
``access.cover_m`` metres, and its time is the node's time to the nearest site (from the
engine's per-node arrays, :mod:`etl.engine.access`) plus the snap distance walked. A
facility not covered has no time (NaN) and is in no desert; a covered facility with no
reachable site has an infinite time and is in the desert. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from etl.engine.counting import covered_mask, people_times

#: The kinds of care the release-day view looks for, in the order shown: the three
#: medications for opioid use disorder, naloxone, and pharmacies (where naloxone can be had
#: without a prescription in many states).
REENTRY_CATEGORIES: Final[tuple[str, ...]] = (
    "methadone",
    "buprenorphine",
    "naltrexone",
    "naloxone",
    "pharmacy",
)


@dataclass(frozen=True)
class FacilityTimes:
    """Travel time from each facility to the nearest site of one category by one mode.

    Attributes
    ----------
    minutes
        Minutes per facility: NaN where the mode does not cover it, ``inf`` where no site
        can be reached.
    nearest
        Row (into the providers layer) of the nearest site; -1 where none or not covered.
    covered
        Whether the mode covers each facility.
    desert
        True where a covered facility's time is above ``threshold_min`` (or there is no
        route); False within it; NaN-free: a facility not covered is False here and must be
        read with ``covered``. All False when no threshold is given.
    """

    minutes: np.ndarray
    nearest: np.ndarray
    covered: np.ndarray
    desert: np.ndarray


def facility_times(
    node_time_s: np.ndarray,
    node_nearest: np.ndarray,
    node: np.ndarray,
    snap_m: np.ndarray,
    *,
    walk_speed_mps: float,
    cover_m: float,
    threshold_min: float | None = None,
) -> FacilityTimes:
    """Apply the people-point rule to facilities for one (category, mode).

    Parameters
    ----------
    node_time_s
        Seconds from every node to the nearest site (``inf`` where none is reachable).
    node_nearest
        Row of the nearest site per node (-1 where none).
    node, snap_m
        Each facility's nearest node and its distance to it (metres).
    walk_speed_mps
        Walking speed for the snap distance.
    cover_m
        Facilities farther than this from the network are not covered.
    threshold_min
        The desert threshold of the pair, minutes; None for no desert.

    Returns
    -------
    FacilityTimes
    """
    node = np.asarray(node, dtype=np.int64)
    seconds = people_times(
        node_time_s, node, snap_m, walk_speed_mps=walk_speed_mps, cover_m=cover_m
    )
    covered = covered_mask(snap_m, cover_m)
    nearest = np.where(covered, np.asarray(node_nearest, dtype=np.int64)[node], -1)
    nearest = np.where(np.isfinite(seconds), nearest, -1)
    if threshold_min is None:
        desert = np.zeros(len(node), dtype=bool)
    else:
        desert = covered & ~(seconds <= float(threshold_min) * 60.0)
    return FacilityTimes(
        minutes=seconds / 60.0, nearest=nearest.astype(np.int64), covered=covered, desert=desert
    )
