"""Who is counted, and where they are drawn: one definition for the build, page, print and export.

A *people point* (an area's people placed along its streets or at its census blocks) is
**covered** by a mode when its nearest node of that mode's network lies within ``cover_m``
metres (``access.cover_m``). A covered person's travel time is the node's time to the
nearest site plus the snap distance walked; a person not covered has no time (NaN) and is
never within reach, in a band or in a desert. :func:`people_times` is that rule; the
pipeline's access stage, the page's live numbers and the exports' re-thresholded deserts all
call it.

Everything counted is drawn. A band or a desert is the fine H3 cells of the streets whose best
time is within (beyond) the limit **plus** the cells of every people point counted in it, so
a person whose own walk to the street puts them beyond the threshold is inside the polygon
that counts them (:func:`band_cells`, :func:`desert_cells`). For the page's minute bands,
:func:`drawn_cell_times` gives each person's cell at least that person's time.
"""

from __future__ import annotations

import numpy as np


def covered_mask(snap_m: np.ndarray, cover_m: float) -> np.ndarray:
    """Return which people points a mode covers (nearest node within ``cover_m`` metres)."""
    return np.asarray(snap_m, dtype=float) <= float(cover_m)


def people_times(
    node_time_s: np.ndarray,
    node: np.ndarray,
    snap_m: np.ndarray,
    *,
    walk_speed_mps: float,
    cover_m: float,
) -> np.ndarray:
    """Travel time of each person to the nearest site, seconds.

    Parameters
    ----------
    node_time_s
        Seconds from every node to the nearest site (``inf`` where none is reachable).
    node
        Each person's nearest node.
    snap_m
        Each person's distance to that node, metres.
    walk_speed_mps
        Walking speed for the snap distance.
    cover_m
        People farther than this from the network are not covered.

    Returns
    -------
    numpy.ndarray
        Seconds per person: NaN where not covered, ``inf`` where no site is reachable.
    """
    node = np.asarray(node, dtype=np.int64)
    snap_m = np.asarray(snap_m, dtype=float)
    t = np.asarray(node_time_s, dtype=float)[node] + snap_m / walk_speed_mps
    return np.where(covered_mask(snap_m, cover_m), t, np.nan)


def band_cells(
    cells: np.ndarray,
    best_s: np.ndarray,
    limit_s: float,
    person_cells: np.ndarray,
    person_time_s: np.ndarray,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """Fine cells of a band: streets within ``limit_s`` plus the cells of people within it.

    Parameters
    ----------
    cells, best_s
        Fine street cells and the best street-sample time in each (seconds).
    limit_s
        The band's limit, seconds.
    person_cells, person_time_s
        Each people point's fine cell and time (NaN: not covered).
    weight
        People per point; points with no people are not drawn (default: all drawn).
    """
    t = np.asarray(person_time_s, dtype=float)
    counted = t <= limit_s
    if weight is not None:
        counted &= np.asarray(weight, dtype=float) > 0
    return np.union1d(cells[np.asarray(best_s) <= limit_s], person_cells[counted])


def desert_cells(
    cells: np.ndarray,
    best_s: np.ndarray,
    threshold_s: float,
    person_cells: np.ndarray,
    person_time_s: np.ndarray,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """Fine cells of a desert: streets beyond the threshold plus the cells of people beyond it.

    Parameters are those of :func:`band_cells`; people not covered (NaN) are never in a desert.
    """
    t = np.asarray(person_time_s, dtype=float)
    counted = ~np.isnan(t) & ~(t <= threshold_s)
    if weight is not None:
        counted &= np.asarray(weight, dtype=float) > 0
    return np.union1d(cells[~(np.asarray(best_s) <= threshold_s)], person_cells[counted])


def drawn_cell_times(
    cells: np.ndarray,
    best_s: np.ndarray,
    person_cells: np.ndarray,
    person_time_s: np.ndarray,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Street cells with their best time, and people's cells with at least their people's time.

    The page colours each fine cell by its minute; a covered person's cell takes the larger of
    its streets' best time and its slowest person's time, so a desert drawn at any threshold
    holds every person counted in it (a cell shared with a faster person is drawn as desert:
    the desert is never smaller than its count).

    Returns
    -------
    cells : numpy.ndarray
        Sorted unique fine cells (uint64).
    time_s : numpy.ndarray
        Seconds per cell (``inf``: no route).
    """
    t = np.asarray(person_time_s, dtype=float)
    keep = ~np.isnan(t)
    if weight is not None:
        keep &= np.asarray(weight, dtype=float) > 0
    pc, pt = np.asarray(person_cells)[keep], t[keep]
    all_cells = np.union1d(cells, pc)
    out = np.full(len(all_cells), -np.inf)
    np.maximum.at(out, np.searchsorted(all_cells, cells), np.asarray(best_s, dtype=float))
    np.maximum.at(out, np.searchsorted(all_cells, pc), pt)
    return all_cells.astype(np.uint64), out
