"""What a scenario changes on the map equals what a full rebuild with the same sites would draw.

For random stacks of adds and closures on small street grids (the fixtures of
``tests/test_scenario.py``), the minute bands drawn as baseline-plus-overlay, the areas'
travel times and the hexagons' travel times are compared with the pipeline's recipes
(:func:`viewmodel.data.time_bands`, :func:`etl.pipeline.stage_access`,
:func:`etl.engine.grid.grid_minutes`) run from scratch on the modified site list.
"""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from etl.engine.counting import drawn_cell_times, people_times
from etl.engine.grid import grid_minutes, parent_cells
from etl.engine.isochrones import cell_times, cells_to_polygon
from etl.engine.scenario import AddSite, BaselineAccess, CloseSite, Scenario, evaluate
from etl.engine.streets import sample_times
from tests.test_scenario import _random_changes, grid_base, reference_times
from viewmodel.data import NO_ROUTE, time_bands
from viewmodel.scenario_map import (
    area_overrides,
    area_values,
    band_change,
    band_minutes,
    bands_overlay,
    grid_values,
)

GRID_RES = 9


def with_grid(base: BaselineAccess, res: int = GRID_RES) -> BaselineAccess:
    """The same baseline with a hexagon grid resolution."""
    return BaselineAccess.from_frames(
        base.net,
        base.providers,
        base.people,
        areas=base.areas,
        max_snap_m=base.max_snap_m,
        bands_min=base.bands_min,
        thresholds_min=base.thresholds_min,
        grid_res=res,
    )


def rebuild(base: BaselineAccess, scenario: Scenario, category: str) -> np.ndarray:
    """Node times of a full rebuild with the scenario's sites."""
    closed = {c.provider_id for c in scenario.changes if isinstance(c, CloseSite)}
    added = [
        (c.lon, c.lat)
        for c in scenario.changes
        if isinstance(c, AddSite) and c.category == category
    ]
    return reference_times(base, category, closed, added)


def pipeline_area_minutes(base: BaselineAccess, node_time_s: np.ndarray) -> dict[str, float]:
    """``t_<category>_<mode>`` as :func:`etl.pipeline.stage_access` computes it, as served."""
    people, areas, mode = base.people, base.areas, base.mode
    ws = base.net.walk_speed_mps
    idx = pd.Index(areas["area_id"]).get_indexer(people["area_id"])
    node = people[f"node_{mode}"].to_numpy()
    snap = people[f"snap_m_{mode}"].to_numpy()
    t = node_time_s[node] + snap / ws
    t = np.where(snap <= base.max_snap_m, t, np.nan)
    reach = np.isfinite(t)
    w = np.where(reach, people["weight"].to_numpy(), 0.0)
    wt = np.bincount(idx, weights=w, minlength=len(areas))
    mean = np.bincount(idx, weights=np.where(reach, t, 0.0) * w, minlength=len(areas)) / 60.0
    with np.errstate(invalid="ignore", divide="ignore"):
        stored = np.where(wt > 0, mean / wt, np.nan).round(2)  # the bundle's column
    served = [None if np.isnan(v) else round(float(v), 1) for v in stored]  # areas_geojson
    return dict(zip(areas["area_id"].astype(str), served, strict=True))


def map_times(base: BaselineAccess, node_time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a full rebuild colours: street cells and the cells of the people counted there."""
    _, best = cell_times(base.samples(), node_time_s)
    mode = base.mode
    t = people_times(
        node_time_s,
        base.people[f"node_{mode}"].to_numpy(),
        base.people[f"snap_m_{mode}"].to_numpy(),
        walk_speed_mps=base.net.walk_speed_mps,
        cover_m=base.max_snap_m if base.cover_m is None else base.cover_m,
    )
    return drawn_cell_times(
        np.unique(base.samples().cell), best, base.person_cells(), t,
        base.people["weight"].to_numpy(dtype=float),
    )  # fmt: skip


def band_picture(cells: np.ndarray, best_s: np.ndarray) -> dict[int, shapely.Geometry]:
    """The map's minute bands (:func:`viewmodel.data.time_bands`) by minute."""
    minutes, polys = time_bands(cells, best_s)
    return dict(zip(minutes, polys, strict=True))


def drawn_picture(
    base_bands: dict[int, shapely.Geometry], overlay: dict
) -> dict[int, shapely.Geometry]:
    """What the browser draws: baseline bands cleared under the overlay, then the overlay."""
    over = {
        f["properties"]["m"]: shapely.geometry.shape(f["geometry"]) for f in overlay["features"]
    }
    cleared = shapely.union_all(list(over.values())) if over else shapely.Polygon()
    out = {}
    for m in set(base_bands) | set(over):
        geom = base_bands.get(m, shapely.Polygon())
        if not cleared.is_empty:
            geom = shapely.difference(geom, cleared)
        if m in over:
            geom = shapely.union(geom, over[m])
        if not geom.is_empty and geom.area > 0:
            out[m] = geom
    return out


def test_band_minutes_are_the_maps_minute_bands() -> None:
    best = np.array([0.0, 1.0, 59.9, 60.0, 60.1, 3599.0, 3601.0, 9000.0, np.inf])
    assert band_minutes(best).tolist() == [0, 1, 1, 1, 2, 60, 61, 61, NO_ROUTE]
    ring = sorted(h3.grid_disk(h3.latlng_to_cell(40.0, -83.0, 10), 2))[: len(best)]
    cells = np.array([h3.str_to_int(c) for c in ring], dtype=np.uint64)
    minutes, _ = time_bands(cells, best)
    assert minutes == sorted(set(band_minutes(best).tolist()))


@pytest.mark.parametrize("seed", range(4))
def test_stacked_changes_draw_the_bands_of_a_full_rebuild(seed: int) -> None:
    base = grid_base(seed)
    rng = np.random.default_rng(100 + seed)
    scenario = Scenario(name=f"seed {seed}")
    cells0, best0 = map_times(base, base.baseline_state("buprenorphine").time_s)
    base_minutes = band_minutes(best0)
    base_bands = band_picture(cells0, best0)
    for change in _random_changes(base, rng, 6):
        scenario = scenario.add(change)
        result = evaluate(base, scenario, category="buprenorphine")
        ref = rebuild(base, scenario, "buprenorphine")
        cells, best = map_times(base, ref)
        np.testing.assert_array_equal(cells, cells0)
        ref_minutes = band_minutes(best)
        ch = band_change(result)
        # Per cell: the baseline's band outside the change, the rebuild's inside it.
        shown = base_minutes.copy()
        at = np.searchsorted(cells0, ch.cells)
        np.testing.assert_array_equal(ch.before, base_minutes[at])
        shown[at] = ch.after
        np.testing.assert_array_equal(shown, ref_minutes)
        # Exactly the cells whose band changed are sent.
        assert set(ch.cells.tolist()) == set(cells0[base_minutes != ref_minutes].tolist())
        # As drawn: the same polygons per minute as the rebuilt layer's.
        overlay = bands_overlay(ch)
        assert sum(f["properties"]["cells"] for f in overlay["features"]) == len(ch)
        assert all(f["properties"]["scn"] == "band" for f in overlay["features"])
        drawn = drawn_picture(base_bands, overlay)
        expected = band_picture(cells, best)
        assert set(expected) <= set(drawn)
        for m in set(drawn) | set(expected):
            # equal up to the 1e-5 degree rounding of the GeoJSON along the edges (a band
            # the rebuild lacks may keep a sliver of that width)
            a, b = drawn[m], expected.get(m, shapely.Polygon())
            assert shapely.symmetric_difference(a, b).area < 1e-5 * (a.length + b.length), m


def test_closures_send_slower_cells_and_undo_sends_none() -> None:
    base = grid_base(2)
    rows = base.site_rows("buprenorphine")
    pid = str(base.providers["id"].iloc[int(rows[0])])
    closed = evaluate(base, Scenario().close_site(pid), category="buprenorphine")
    ch = band_change(closed)
    assert len(ch) > 0 and len(ch.slower) == len(ch) and len(ch.faster) == 0
    for m in np.unique(ch.after):
        feature = next(f for f in bands_overlay(ch)["features"] if f["properties"]["m"] == int(m))
        poly = shapely.geometry.shape(feature["geometry"])
        want = cells_to_polygon(ch.cells[ch.after == m])
        assert shapely.symmetric_difference(poly, want).area < 1e-5 * want.length
    empty = evaluate(base, Scenario().close_site(pid).undo(), category="buprenorphine")
    assert len(band_change(empty)) == 0
    assert bands_overlay(band_change(empty)) == {"type": "FeatureCollection", "features": []}
    assert area_values(empty) == {} and grid_values(empty) == {}


@pytest.mark.parametrize("seed", range(4))
def test_area_and_hexagon_minutes_equal_a_full_rebuild(seed: int) -> None:
    base = with_grid(grid_base(seed))
    rng = np.random.default_rng(200 + seed)
    scenario = Scenario()
    samples = base.samples()
    parent = parent_cells(samples.cell, GRID_RES)
    t0 = base.baseline_state("buprenorphine").time_s
    grid0 = grid_minutes(parent, sample_times(samples, t0))
    area0 = pipeline_area_minutes(base, t0)
    for change in _random_changes(base, rng, 5):
        scenario = scenario.add(change)
        result = evaluate(base, scenario, category="buprenorphine")
        ref = rebuild(base, scenario, "buprenorphine")
        want = pipeline_area_minutes(base, ref)
        assert area_values(result, changed_only=False) == want
        changed = area_values(result)
        assert changed == {k: v for k, v in want.items() if v != area0[k]}
        grid_ref = grid_minutes(parent, sample_times(samples, ref))
        got = grid_values(result)
        for cell, value in grid_ref.items():
            key = f"{int(cell):x}"
            before = grid0.loc[cell]
            if key in got:
                assert got[key] == (None if np.isnan(value) else pytest.approx(value, abs=1e-6))
            else:  # not sent: the served (baseline) value stands and is right
                assert value == before or (np.isnan(value) and np.isnan(before)), key
        packed = area_overrides(result)
        assert packed["prop"] == "t_buprenorphine_drive"
        assert packed["areas"] == changed and packed["grid"] == got
        assert packed["changes"] == len(scenario)


def test_a_result_without_cell_times_is_refused() -> None:
    from dataclasses import replace

    base = grid_base(0)
    result = evaluate(
        base, Scenario().add_site("buprenorphine", -82.99, 40.01), category="buprenorphine"
    )
    with pytest.raises(ValueError, match="no cell times"):
        band_change(replace(result, cells=None))


@pytest.mark.parametrize("seed", range(3))
def test_desert_change_cells_from_cell_times_equal_the_set_difference(seed: int) -> None:
    from dataclasses import replace

    from viewmodel.scenario import change_geojson

    base = grid_base(seed)
    rng = np.random.default_rng(300 + seed)
    scenario = Scenario()
    seen: set[str] = set()
    for change in _random_changes(base, rng, 5):
        scenario = scenario.add(change)
        result = evaluate(base, scenario, category="buprenorphine", threshold_min=1.0)
        fast = change_geojson(result)
        slow = change_geojson(replace(result, cells=None, cell_best_s=None))
        assert fast == slow
        seen |= {f["properties"]["kind"] for f in fast["features"]}
    assert seen  # some cells did leave or enter the desert


@pytest.mark.parametrize("runs_partitioned", [200, 0])
def test_segment_medians_equal_pandas_groupby_median(monkeypatch, runs_partitioned: int) -> None:
    import viewmodel.scenario_map as scenario_map

    monkeypatch.setattr(scenario_map, "_PARTITION_RUNS", runs_partitioned)
    rng = np.random.default_rng(5)
    for trial in range(300):
        counts = rng.integers(1, 9, rng.integers(1, 12))
        n = int(counts.sum())
        values = np.round(rng.random(n) * 5) / 3 if trial % 2 else rng.random(n) * 1e4 / 7
        draw = rng.random(n)
        values[draw < 0.15] = np.inf  # unreachable samples
        if trial % 3 == 0:
            values[draw > 0.8] = np.nan
        want = pd.Series(values).groupby(np.repeat(np.arange(len(counts)), counts)).median()
        got = scenario_map._segment_medians(values, counts)
        np.testing.assert_array_equal(got, want.to_numpy())  # NaN in the same places
    assert scenario_map._segment_medians(np.array([]), np.array([], dtype=np.int64)).size == 0


def test_hexagons_against_other_node_times_are_recomputed() -> None:
    from dataclasses import replace

    base = with_grid(grid_base(1))
    scenario = Scenario()
    for change in _random_changes(base, np.random.default_rng(9), 4):
        scenario = scenario.add(change)
        result = evaluate(base, scenario, category="buprenorphine")
        # A copy of the baseline times is not the cached baseline: its medians are computed.
        copied = replace(result, base_time_s=result.base_time_s.copy())
        assert grid_values(copied) == grid_values(result)


def test_cells_geometry_is_h3s_outline_rounded() -> None:
    from viewmodel.scenario_map import cells_geometry

    def reference(cells: np.ndarray, precision: int) -> dict:
        shape = h3.cells_to_h3shape([h3.int_to_str(int(c)) for c in cells], tight=False)
        return {
            "type": "MultiPolygon",
            "coordinates": [
                [np.round(np.asarray(ring, dtype=float), precision).tolist() for ring in polygon]
                for polygon in shape.__geo_interface__["coordinates"]
            ],
        }

    centre = h3.latlng_to_cell(39.96, -83.0, 10)
    disk = np.array([h3.str_to_int(c) for c in h3.grid_disk(centre, 6)], dtype=np.uint64)
    ring = np.array([h3.str_to_int(c) for c in h3.grid_ring(centre, 2)], dtype=np.uint64)
    rng = np.random.default_rng(2)
    holes = 0
    for trial in range(60):
        cells = disk[rng.random(len(disk)) < rng.uniform(0.05, 0.9)] if trial else ring
        if len(cells) == 0:
            continue
        got = cells_geometry(cells, precision=5 if trial % 2 else 3)
        assert got == reference(cells, 5 if trial % 2 else 3)
        holes += sum(len(polygon) > 1 for polygon in got["coordinates"])
    assert holes  # the ring of cells around the centre encloses a hole
    assert cells_geometry(np.array([], dtype=np.uint64))["coordinates"] == []
