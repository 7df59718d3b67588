"""The region outline and what is made from it, once per build and once per export.

* compute-access: the region's res-9 cells (for the share of land beyond each network) are
  made once per build (:func:`etl.pipeline._region_parent_counts`), not once per mode;
  :func:`reference_mode_coverage` is the per-mode original, kept here as the reference.
* export: the outline deserts are clipped to and each mode's street samples are made once
  for all the deserts of one export (:func:`etl.outputs.export._views`), not once per desert.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h3
import numpy as np
import pytest
import shapely

import etl.outputs.export as export
import etl.pipeline as pipeline
from etl.bundle.store import Bundle
from etl.config import load_config
from etl.engine.streets import sample_streets
from etl.pipeline import _mode_coverage, _region_parent_counts, run_build
from tests.region_fixture import write_region
from tests.test_streets import generated_network


def reference_mode_coverage(
    mode: str,
    covered: np.ndarray,
    weight: np.ndarray,
    population: float,
    cover_m: float,
    samples: Any,
    outline: shapely.Geometry,
) -> dict[str, Any]:
    """``_mode_coverage`` before the region cells were made once (its own cells per mode)."""
    people = round(float(population))
    n_covered = min(round(float(weight[covered].sum())), people)
    not_covered = people - n_covered
    street = {h3.cell_to_parent(h3.int_to_str(int(c)), 8) for c in np.unique(samples.cell)}
    near: set[str] = set()
    for c in street:
        near.update(h3.grid_disk(c, 1))
    region_cells: set[str] = set()
    for part in getattr(outline, "geoms", [outline]):
        if not part.is_empty:
            region_cells.update(h3.geo_to_cells(part.__geo_interface__, 9))
    inside = sum(h3.cell_to_parent(c, 8) in near for c in region_cells)
    area_beyond = 1.0 - inside / len(region_cells) if region_cells else 0.0
    return {
        "cover_m": float(cover_m),
        "people": people,
        "covered": n_covered,
        "not_covered": not_covered,
        "area_beyond_share": round(area_beyond, 4),
    }


OUTLINES = {
    "box": shapely.box(-83.1, 39.9, -82.95, 40.0),
    "two overlapping boxes": shapely.MultiPolygon(
        [shapely.box(-83.15, 39.85, -83.0, 39.95), shapely.box(-83.02, 39.93, -82.7, 40.2)]
    ),
    "beyond the streets": shapely.box(-82.5, 39.0, -82.3, 39.2),
    "empty": shapely.MultiPolygon(),
}


@pytest.mark.parametrize("name", sorted(OUTLINES))
@pytest.mark.parametrize("mode", ["drive", "walk"])
def test_mode_coverage_matches_reference(name: str, mode: str) -> None:
    outline = OUTLINES[name]
    samples = sample_streets(generated_network(4, mode=mode))
    rng = np.random.default_rng(1)
    weight = rng.uniform(0.0, 30.0, 500)
    covered = rng.random(500) < 0.8
    args = (mode, covered, weight, float(weight.sum()) + 12.0, 300.0, samples)
    got = _mode_coverage(*args, _region_parent_counts(outline))
    want = reference_mode_coverage(*args, outline)
    for key, value in want.items():
        assert got[key] == value, key
    if name != "empty":
        assert sum(_region_parent_counts(outline).values()) > 10


@pytest.fixture(scope="module")
def gridton(tmp_path_factory: pytest.TempPathFactory) -> tuple[Bundle, int]:
    """Gridton built with a count of the region-cell computations."""
    root = tmp_path_factory.mktemp("outline-once")
    calls = {"n": 0}
    real = pipeline._region_parent_counts

    def counting(outline: shapely.Geometry) -> dict[str, int]:
        calls["n"] += 1
        return real(outline)

    mp = pytest.MonkeyPatch()
    mp.setattr(pipeline, "_region_parent_counts", counting)
    try:
        path = run_build(load_config(write_region(root)), root / "geodata", progress=False)
    finally:
        mp.undo()
    return Bundle.open(path), calls["n"]


def test_build_makes_the_region_cells_once(gridton: tuple[Bundle, int]) -> None:
    bundle, calls = gridton
    modes = bundle.manifest["settings"]["modes"]
    assert len(modes) == 2
    assert calls == 1


def test_build_coverage_equals_reference(gridton: tuple[Bundle, int]) -> None:
    """The stored coverage of each mode is the per-mode original's, from the bundle's layers."""
    from etl.engine.counting import covered_mask

    bundle, _ = gridton
    coverage = bundle.manifest["stages"]["access"]["coverage"]
    people = bundle.read_layer("people")
    outline = shapely.union_all(bundle.read_layer("region").geometry.to_numpy())
    cover_m = float(bundle.manifest["settings"]["cover_m"])
    population = float(bundle.read_layer("areas")["population"].sum())
    for mode in bundle.manifest["settings"]["modes"]:
        covered = covered_mask(people[f"snap_m_{mode}"].to_numpy(), cover_m)
        want = reference_mode_coverage(
            mode,
            covered,
            people["weight"].to_numpy(),
            population,
            cover_m,
            sample_streets(bundle.network(mode)),
            outline,
        )
        for key, value in want.items():
            assert coverage[mode][key] == value, (mode, key)


def _same_desert(a: export.DesertAt, b: export.DesertAt) -> None:
    assert (a.category, a.mode, a.threshold_min) == (b.category, b.mode, b.threshold_min)
    assert (a.within, a.beyond, a.not_covered) == (b.within, b.beyond, b.not_covered)
    assert shapely.to_wkb(a.geometry) == shapely.to_wkb(b.geometry)
    assert a.area_beyond.equals(b.area_beyond)
    assert a.area_share_within.equals(b.area_share_within)


def test_export_views_make_outline_and_samples_once(
    gridton: tuple[Bundle, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, _ = gridton
    # Each desert on its own, as before: its own outline and its own street samples.
    alone = {(c, m): export.desert_at(bundle, c, m, 12.0) for c, m in export._pairs(bundle, {})}
    assert len(alone) >= 2
    assert len({m for _, m in alone}) == 2
    calls = {"outline": 0, "samples": 0}
    real_outline = export.region_outline

    def count_outline(b: Bundle) -> shapely.Geometry | None:
        calls["outline"] += 1
        return real_outline(b)

    import etl.engine.streets as streets

    real_samples = streets.sample_streets

    def count_samples(*args: Any, **kwargs: Any) -> Any:
        calls["samples"] += 1
        return real_samples(*args, **kwargs)

    monkeypatch.setattr(export, "region_outline", count_outline)
    monkeypatch.setattr(streets, "sample_streets", count_samples)
    views = export._views(bundle, {}, 12.0)
    assert calls == {"outline": 1, "samples": 2}
    assert [(v.category, v.mode) for v in views] == list(alone)
    for view in views:
        _same_desert(view, alone[(view.category, view.mode)])
    # Clipped to the region, as before.
    outline = real_outline(bundle)
    assert outline is not None
    for view in views:
        assert shapely.difference(view.geometry, outline).area < 1e-12


def test_region_outline_absent_without_layers(tmp_path: Path) -> None:
    from tests.test_export import make_bundle

    bundle = make_bundle(tmp_path / "geodata", "bare", {})
    assert export.region_outline(bundle) is None
