"""What a scenario changes on the map: the minute bands and the area colours, as small updates.

The map draws travel time as *minute bands* (:func:`viewmodel.data.time_bands`): every fine H3
cell along the streets falls in the band of its best time rounded up to the minute, and the
browser colours each band as an isochrone band or as desert for the threshold chosen. The
area layers colour census areas (or H3 hexagons) by their travel time. A scenario changes
both, but only near the sites it adds or closes, so the map is updated by what changed:

* :func:`band_change` lists the fine cells whose minute band differs from the baseline's,
  with their band before and after; :func:`bands_overlay` merges them into one feature per
  new minute (property ``m`` as in the baseline layer, ``scn`` marking it). The browser draws
  these over the baseline bands in the same pane, first clearing what the baseline drew
  beneath them (``assets/atlas.js``, ``scenarioBandStyle``), so the picture is the one a
  full rebuild with the scenario's sites would draw: baseline bands outside the changed
  cells, the scenario's band inside them, for every threshold and band setting.
* :func:`area_values` and :func:`grid_values` recompute the areas' population-weighted mean
  minutes and the hexagons' median street minutes (the pipeline's ``t_<category>_<mode>``,
  :func:`etl.pipeline.stage_access`) for the areas and hexagons whose value changes, rounded
  as the served layers round them; :func:`area_overrides` packs them for the area layer's
  ``hideout``, so the browser recolours the areas without new geometry.

Nothing here reads files: everything comes from a :class:`~etl.engine.scenario.ScenarioResult`.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from h3.api import numpy_int

from etl.engine.grid import parent_cells
from etl.engine.scenario import (
    BaselineAccess,
    ScenarioResult,
    _area_values,
    _node_groups,
    _time_subset,
    _touched_groups,
)
from etl.engine.streets import sample_times
from viewmodel.data import MAX_BAND_MIN, NO_ROUTE, PRECISION

logger = logging.getLogger(__name__)

#: Decimals of the areas' minutes as the pipeline stores them, then as the map layer sends them.
AREA_DECIMALS: Final[tuple[int, int]] = (2, 1)
#: Decimals of the hexagons' minutes sent (the layer sends them unrounded).
GRID_DECIMALS: Final[int] = 6
#: Up to this many hexagons, their medians are partitioned one by one (else sorted at once).
_PARTITION_RUNS: Final[int] = 200


# ---------------------------------------------------------------------------------------
# Minute bands
# ---------------------------------------------------------------------------------------


def band_minutes(best_s: np.ndarray, *, max_min: int = MAX_BAND_MIN) -> np.ndarray:
    """The minute band of each cell, as :func:`viewmodel.data.time_bands` assigns it.

    Parameters
    ----------
    best_s
        Shortest travel time from a street in each cell, seconds (``inf``: no route).
    max_min
        Minutes beyond this go into one band ``max_min + 1``.

    Returns
    -------
    numpy.ndarray
        int64: 0..``max_min + 1``, or :data:`viewmodel.data.NO_ROUTE`.
    """
    best_s = np.asarray(best_s, dtype=float)
    with np.errstate(invalid="ignore"):
        minute = np.ceil(best_s / 60.0)
    return np.where(np.isfinite(minute), np.clip(minute, 0, max_min + 1), NO_ROUTE).astype(np.int64)


@dataclass(frozen=True)
class BandChange:
    """Fine cells whose minute band a scenario changes.

    Attributes
    ----------
    cells
        The cells (uint64 H3, the fine resolution of the mode), ascending.
    before, after
        Their minute band in the baseline and in the scenario (:func:`band_minutes`).
    """

    cells: np.ndarray
    before: np.ndarray
    after: np.ndarray

    def __len__(self) -> int:
        return len(self.cells)

    @property
    def faster(self) -> np.ndarray:
        """Cells whose band is lower (sooner) in the scenario."""
        return self.cells[self.after < self.before]

    @property
    def slower(self) -> np.ndarray:
        """Cells whose band is higher (later, or no route) in the scenario."""
        return self.cells[self.after > self.before]


def band_change(result: ScenarioResult) -> BandChange:
    """The cells whose minute band differs between the baseline and ``result``.

    Raises
    ------
    ValueError
        If the result carries no cell times (built by hand, not by :func:`evaluate`).
    """
    cells, before_s, after_s = _cell_times(result)
    before = band_minutes(before_s)
    after = band_minutes(after_s)
    diff = before != after
    return BandChange(cells=cells[diff], before=before[diff], after=after[diff])


def _cell_times(result: ScenarioResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if result.cells is None or result.cell_best_s is None or result.base_cell_best_s is None:
        msg = "band_change: the result has no cell times; make it with etl.engine.scenario.evaluate"
        raise ValueError(msg)
    base = result.base
    cells, before = base.map_cell_times(result.base_cell_best_s, result.base_person_time_s)
    _, after = base.map_cell_times(result.cell_best_s, result.person_time_s)
    return cells, before, after


def bands_overlay(change: BandChange) -> dict[str, Any]:
    """The changed cells merged per new minute band, as a GeoJSON FeatureCollection.

    Each feature has ``m`` (the band, as in the baseline layer), ``scn`` (``"band"``: drawn
    over the baseline, clearing it first) and ``cells`` (how many cells it merges). Cells
    whose band did not change are never sent.
    """
    if len(change) == 0:
        return {"type": "FeatureCollection", "features": []}
    order = np.argsort(change.after, kind="stable")
    after, cells = change.after[order], change.cells[order]
    starts = np.flatnonzero(np.concatenate([[True], after[1:] != after[:-1]]))
    ends = np.append(starts[1:], len(after))
    features = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        features.append(
            {
                "type": "Feature",
                "geometry": cells_geometry(cells[s:e]),
                "properties": {"m": int(after[s]), "scn": "band", "cells": int(e - s)},
            }
        )
    logger.debug("bands_overlay: %d cells in %d bands", len(change), len(features))
    return {"type": "FeatureCollection", "features": features}


def cells_geometry(cells: np.ndarray, *, precision: int = PRECISION) -> dict[str, Any]:
    """The union of H3 cells as a GeoJSON MultiPolygon, coordinates rounded to ``precision``.

    The outline :func:`etl.engine.isochrones.cells_to_polygon` makes (the map's baseline bands are
    made with it), written straight from H3's rings: no shapely round trip, as it is
    answered on every change.
    """
    if len(cells) == 0:
        return {"type": "MultiPolygon", "coordinates": []}
    shape = numpy_int.cells_to_h3shape(np.asarray(cells, dtype=np.uint64), tight=False)
    # The shape's (lat, lng) loops as its __geo_interface__ writes them, (lng, lat) and each
    # ring closed, with every point swapped and rounded at once.
    polygons = [[poly.outer, *poly.holes] for poly in shape.polys]
    rings = [ring for polygon in polygons for ring in polygon]
    points = np.array(list(itertools.chain.from_iterable(rings)), dtype=float).reshape(-1, 2)
    flat = np.round(points[:, ::-1], precision).tolist()
    cut, end = [], 0
    for ring in rings:
        start, end = end, end + len(ring)
        ring_xy = flat[start:end]
        if ring_xy and ring[0] != ring[-1]:
            ring_xy.append(list(ring_xy[0]))
        cut.append(ring_xy)
    ends = itertools.accumulate(len(polygon) for polygon in polygons)
    coords = [cut[e - len(polygon) : e] for polygon, e in zip(polygons, ends, strict=True)]
    return {"type": "MultiPolygon", "coordinates": coords}


# ---------------------------------------------------------------------------------------
# Areas and hexagons
# ---------------------------------------------------------------------------------------


def _round_area(value: float) -> float | None:
    if not np.isfinite(value):
        return None
    first, second = AREA_DECIMALS
    return round(round(float(value), first), second)


def area_values(result: ScenarioResult, *, changed_only: bool = True) -> dict[str, float | None]:
    """Population-weighted mean minutes per area id after the scenario, as the map shows them.

    The pipeline's ``t_<category>_<mode>`` (people's time to the nearest site, their snap
    walk included, weighted by the people they stand for; areas nobody in them can reach
    are None), rounded as the bundle stores it and the area layer sends it. With
    ``changed_only`` only the areas whose shown value differs from the baseline's.
    """
    base = result.base
    if base.areas is None or "area_id" not in base.areas:
        return {}
    if changed_only:  # the areas whose value moved at all are in the result already
        table = result.areas
        ids = table["area_id"].astype(str).tolist()
        before = table["minutes_before"].to_numpy(dtype=float).tolist()
        after = table["minutes_after"].to_numpy(dtype=float).tolist()
    else:
        thr_s = result.threshold_min * 60.0
        ids = base.areas["area_id"].astype(str).tolist()
        after = _area_values(base, result.person_time_s, thr_s)["minutes"].tolist()
        before = [np.nan] * len(ids)
    out = {}
    for i, b, a in zip(ids, before, after, strict=True):
        new = _round_area(a)
        if not changed_only or new != _round_area(b):
            out[i] = new
    return out


def _grid_groups(base: BaselineAccess) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Street samples grouped by hexagon: order, group starts, hexagon ids, group per sample."""

    def make() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        samples = base.samples()
        parent = parent_cells(samples.cell, int(base.grid_res))
        order = np.argsort(parent, kind="stable")
        p = parent[order]
        starts = np.flatnonzero(np.concatenate([[True], p[1:] != p[:-1]]))
        group = np.empty(len(order), dtype=np.int64)
        group[order] = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(order))))
        return order, starts, p[starts], group

    return base._cached(("grid_groups", base.grid_res), make)


def _grid_node_groups(base: BaselineAccess) -> tuple[np.ndarray, np.ndarray]:
    """Per network node, the hexagon groups of the samples on its streets (CSR)."""

    def make() -> tuple[np.ndarray, np.ndarray]:
        return _node_groups(base.samples(), _grid_groups(base)[3], base.net.n_nodes)

    return base._cached(("grid_node_groups", base.grid_res), make)


def prepare(base: BaselineAccess, *, category: str | None = None) -> None:
    """Compute once what every change's map update reuses.

    Which fine cells and hexagons the streets at each node cross, and with ``category`` the
    baseline's median minutes per hexagon for that category (:func:`grid_values` compares
    against them).
    """
    if len(base.samples()):
        base._node_cell_groups()
    if base.grid_res is not None and len(base.samples()):
        _grid_node_groups(base)
        if category is not None:
            _grid_base_minutes(base, category)


def _segment_medians(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of each run of ``values`` (runs of ``counts`` values, one after the other).

    Equal to ``pandas.Series(values).groupby(run).median()``: NaN values are skipped, a run of
    only NaN gives NaN, an even count the mean of the two middle values. A few runs are
    partitioned one by one, many sorted at once.
    """
    n_runs = len(counts)
    if n_runs == 0 or len(values) == 0:
        return np.full(n_runs, np.nan)
    run = np.repeat(np.arange(n_runs), counts)
    valid = ~np.isnan(values)
    n_valid = np.bincount(run[valid], minlength=n_runs)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    hi_k, lo_k = n_valid // 2, np.maximum(n_valid - 1, 0) // 2
    if n_runs <= _PARTITION_RUNS:
        hi, lo = np.full(n_runs, np.nan), np.full(n_runs, np.nan)
        for i, (s, k, h, lw) in enumerate(
            zip(starts.tolist(), counts.tolist(), hi_k.tolist(), lo_k.tolist(), strict=True)
        ):
            if k:
                part = np.partition(values[s : s + k], [lw, h])  # NaN last
                hi[i], lo[i] = part[h], part[lw]
    else:
        by_value = np.argsort(values)  # NaN last
        run_dtype = np.uint16 if n_runs <= np.iinfo(np.uint16).max else np.int64
        ordered = values[by_value[np.argsort(run[by_value].astype(run_dtype), kind="stable")]]
        last = len(values) - 1
        hi, lo = ordered[np.minimum(starts + hi_k, last)], ordered[np.minimum(starts + lo_k, last)]
    with np.errstate(invalid="ignore"):  # inf + inf and the like, as pandas computes them
        even = (hi + lo) / 2
    return np.where(n_valid == 0, np.nan, np.where(n_valid % 2 == 1, hi, even))


def _grid_base_minutes(base: BaselineAccess, category: str) -> np.ndarray:
    """Median street minutes per hexagon (:func:`_grid_groups` order) before any change."""

    def make() -> np.ndarray:
        order, starts, _, _ = _grid_groups(base)
        minutes = sample_times(base.samples(), base.baseline_state(category).time_s) / 60.0
        return _segment_medians(minutes[order], np.diff(np.append(starts, len(order))))

    return base._cached(("grid_base_minutes", base.grid_res, category), make)


def grid_values(result: ScenarioResult) -> dict[str, float | None]:
    """Median street minutes per hexagon (the grid layer's ``h3`` id) where the scenario changes it.

    As :func:`etl.engine.grid.grid_minutes`: the median of the travel times of the street samples
    in each hexagon, None where most of them reach no site. Only hexagons holding a street
    whose end-node times changed are recomputed; empty without a grid resolution.
    """
    base = result.base
    if base.grid_res is None or len(base.samples()) == 0:
        return {}
    changed = result.time_s != result.base_time_s
    if not changed.any():
        return {}
    samples = base.samples()
    order, starts, hexes, _ = _grid_groups(base)
    groups = _touched_groups(_grid_node_groups(base), changed)
    ends = np.append(starts, len(order))
    counts = ends[groups + 1] - ends[groups]
    first = np.repeat(ends[groups] - np.cumsum(counts) + counts, counts)
    idx = order[first + np.arange(int(counts.sum()))]
    sub = _time_subset(samples, idx)
    new = _segment_medians(sample_times(sub, result.time_s) / 60.0, counts)
    if result.base_time_s is base.baseline_state(result.category).time_s:
        old = _grid_base_minutes(base, result.category)[groups]
    else:  # a result built against other node times: recompute those hexagons
        old = _segment_medians(sample_times(sub, result.base_time_s) / 60.0, counts)
    out = {}
    for g, n, o in zip(groups.tolist(), new.tolist(), old.tolist(), strict=True):
        if n == o:
            continue
        out[f"{int(hexes[g]):x}"] = round(n, GRID_DECIMALS) if np.isfinite(n) else None
    return out


def area_overrides(result: ScenarioResult) -> dict[str, Any]:
    """What the area layer's ``hideout`` needs to colour the scenario (JSON-ready).

    Returns
    -------
    dict
        ``prop`` (``t_<category>_<mode>``: the property the values replace), ``areas``
        (area id -> minutes or None) and ``grid`` (hexagon id -> minutes or None), the
        areas and hexagons whose value changes; ``scenario`` and ``changes`` (its name and
        length, for the legend).
    """
    return {
        "prop": f"t_{result.category}_{result.mode}",
        "areas": area_values(result),
        "grid": grid_values(result),
        "scenario": result.scenario.name,
        "changes": len(result.scenario),
    }


__all__ = [
    "BandChange",
    "area_overrides",
    "area_values",
    "band_change",
    "band_minutes",
    "bands_overlay",
    "cells_geometry",
    "grid_values",
    "prepare",
]
