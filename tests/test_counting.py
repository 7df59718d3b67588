"""etl.engine.counting: who is counted, and that every person counted is drawn."""

from __future__ import annotations

import h3
import numpy as np

from etl.engine.counting import (
    band_cells,
    covered_mask,
    desert_cells,
    drawn_cell_times,
    people_times,
)

RING = sorted(h3.str_to_int(c) for c in h3.grid_disk(h3.latlng_to_cell(40.0, -83.0, 10), 2))
CELLS = np.array(RING[:4], dtype=np.uint64)  # four street cells
OFF = np.uint64(RING[10])  # a cell with no street


def test_people_beyond_cover_m_have_no_time() -> None:
    t = people_times(
        np.array([0.0, 600.0, np.inf]),
        np.array([0, 1, 2, 1]),
        np.array([80.0, 0.0, 10.0, 301.0]),
        walk_speed_mps=1.0,
        cover_m=300.0,
    )
    assert t[0] == 80.0 and t[1] == 600.0 and np.isinf(t[2]) and np.isnan(t[3])
    assert covered_mask(np.array([300.0, 300.1]), 300).tolist() == [True, False]


def test_a_desert_holds_the_people_its_walk_pushes_over() -> None:
    best = np.array([60.0, 120.0, 900.0, np.inf])
    # person 0 lives off the streets, 250 m out: 120 s at the node + 250 s walk > 300 s
    person_cells = np.array([OFF, CELLS[0], CELLS[2]], dtype=np.uint64)
    person_t = np.array([370.0, 60.0, np.nan])  # the last is not covered
    weight = np.array([10.0, 5.0, 7.0])
    desert = desert_cells(CELLS, best, 300.0, person_cells, person_t, weight)
    assert set(desert.tolist()) == {int(CELLS[2]), int(CELLS[3]), int(OFF)}
    band = band_cells(CELLS, best, 300.0, person_cells, person_t, weight)
    assert set(band.tolist()) == {int(CELLS[0]), int(CELLS[1])}
    cells, t = drawn_cell_times(CELLS, best, person_cells, person_t, weight)
    drawn = dict(zip(cells.tolist(), t.tolist(), strict=True))
    assert drawn[int(OFF)] == 370.0  # drawn in the desert at a 5-minute threshold
    assert drawn[int(CELLS[0])] == 60.0 and drawn[int(CELLS[2])] == 900.0
    # at any threshold, everyone counted beyond it lies in a cell drawn beyond it
    for threshold in (100.0, 300.0, 400.0):
        beyond = ~np.isnan(person_t) & (person_t > threshold)
        for c in person_cells[beyond].tolist():
            assert drawn[c] > threshold


def test_a_cell_shared_with_a_slower_person_is_drawn_at_their_time() -> None:
    cells, t = drawn_cell_times(
        CELLS[:1], np.array([60.0]), CELLS[:1], np.array([400.0]), np.array([1.0])
    )
    assert t.tolist() == [400.0]
    # a point with nobody living there changes nothing
    cells, t = drawn_cell_times(
        CELLS[:1], np.array([60.0]), np.array([OFF]), np.array([400.0]), np.array([0.0])
    )
    assert cells.tolist() == [int(CELLS[0])] and t.tolist() == [60.0]
