"""The H3 grid layer: travel time per (category, mode) for every cell with streets."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd


def parent_cells(cells: np.ndarray, res: int) -> np.ndarray:
    """Return the parent (uint64) at ``res`` of each fine cell (computed once per unique cell)."""
    uniq, inv = np.unique(cells, return_inverse=True)
    parents = np.fromiter(
        (h3.str_to_int(h3.cell_to_parent(h3.int_to_str(int(c)), res)) for c in uniq),
        dtype=np.uint64,
        count=len(uniq),
    )
    return parents[inv]


def grid_minutes(parent: np.ndarray, sample_s: np.ndarray) -> pd.Series:
    """Median travel time in minutes of the street samples in each grid cell.

    Unreachable samples count as infinitely far, so a cell whose streets mostly cannot reach
    any site gets ``inf`` (stored as NaN).
    """
    series = pd.Series(sample_s / 60.0).groupby(parent).median()
    return series.replace(np.inf, np.nan)


def cell_polygons(cells: np.ndarray) -> list:
    """Return shapely polygons (WGS84) of H3 cells."""
    import shapely

    out = []
    for c in cells:
        ring = h3.cell_to_boundary(h3.int_to_str(int(c)))
        out.append(shapely.Polygon([(lng, lat) for lat, lng in ring]))
    return out
