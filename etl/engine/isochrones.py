"""Isochrone bands and deserts as unions of fine H3 cells along the streets.

A band of ``B`` minutes for a (category, mode) is the union of the fine cells holding at
least one street sample that reaches the nearest site within ``B`` minutes. A desert is the
union of the cells whose every street sample is beyond the category's threshold. Both follow
the streets, so neither claims land that no street reaches (no convex hulls), and a river
crossed by few bridges shows as the gap it is.
"""

from __future__ import annotations

import h3
import numpy as np
import shapely
from shapely.geometry import shape

from etl.engine.streets import StreetSamples, min_by_cell, sample_times


def cells_to_polygon(cells: np.ndarray) -> shapely.Geometry:
    """Union H3 cells (uint64, one resolution) into a WGS84 (multi)polygon."""
    if len(cells) == 0:
        return shapely.MultiPolygon()
    as_str = [h3.int_to_str(int(c)) for c in cells]
    geom = shape(h3.cells_to_h3shape(as_str, tight=False).__geo_interface__)
    if geom.geom_type == "Polygon":
        geom = shapely.MultiPolygon([geom])
    return geom


def cell_times(samples: StreetSamples, node_time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fine cells with streets and the shortest travel time (seconds) from a street in each."""
    return min_by_cell(samples.cell, sample_times(samples, node_time_s))


def band_polygons(
    cells: np.ndarray, best_s: np.ndarray, bands_min: list[float]
) -> list[shapely.Geometry]:
    """One polygon per band: land within ``band`` minutes of the nearest site (nested)."""
    return [cells_to_polygon(cells[best_s <= b * 60.0]) for b in bands_min]


def desert_polygon(cells: np.ndarray, best_s: np.ndarray, threshold_min: float) -> shapely.Geometry:
    """Streets (as fine cells) from which no site is reached within the threshold."""
    return cells_to_polygon(cells[~(best_s <= threshold_min * 60.0)])
