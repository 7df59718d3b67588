"""Any real region, right numbers: Two Rivers (tests/real_shaped_region.py) built end to end.

A region shaped unlike ours — a state line, four counties its ids cannot name, areas without
ids with their people in the area file, a street extract clipped to corridors, a national
provider list, a category with no sites — must build, and every figure it shows must be true:
the right counties and only those, modelled rates kept, one "not covered" number on every
surface, no desert or band that counts people it does not draw, sites across the line kept
and sites off the network listed.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import shapely

from etl.bundle.store import Bundle
from etl.config import load_config
from etl.pipeline import run_build
from tests import real_shaped_region as tr

pytestmark = pytest.mark.xdist_group("two_rivers")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Bundle, list[str]]:
    """Two Rivers with its four counties named in the config, and the build's warnings."""
    root = tmp_path_factory.mktemp("two-rivers")
    cfg = load_config(tr.write_region(root))
    records: list[logging.LogRecord] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = _Keep(level=logging.WARNING)
    logging.getLogger("etl").addHandler(handler)
    try:
        path = run_build(cfg, root / "geodata", progress=False)
    finally:
        logging.getLogger("etl").removeHandler(handler)
    return Bundle.open(path), [r.getMessage() for r in records]


@pytest.fixture(scope="module")
def unnamed(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """Two Rivers without `counties:`: its generated ids name no county."""
    root = tmp_path_factory.mktemp("two-rivers-unnamed")
    cfg = load_config(tr.write_region(root, counties=False))
    return Bundle.open(run_build(cfg, root / "geodata", progress=False))


def stage(bundle: Bundle, name: str) -> dict:
    return bundle.manifest["stages"][name]


# -- areas and people ----------------------------------------------------------------------


def test_areas_without_ids_get_generated_ones_and_keep_every_person(built) -> None:
    bundle, warnings = built
    areas = bundle.read_layer("areas")
    assert len(areas) == tr.NX * tr.NY
    assert areas["area_id"].is_unique and areas["area_id"].notna().all()
    assert areas["population"].sum() == tr.areas_frame()["people"].sum()
    assert any("id" in w.lower() and "generated" in w.lower() for w in warnings), warnings


# -- counties and overdose -----------------------------------------------------------------


def test_the_region_has_its_four_counties_and_no_other(built) -> None:
    bundle, _ = built
    info = stage(bundle, "counties")
    four = sorted(c[0] for c in tr.COUNTIES)
    assert info["region_counties"] == four
    assert info["counties_from"] == "config"
    counties = bundle.read_layer("counties")
    assert tr.ELSEWHERE[0] not in set(counties["fips"])
    for source, rows in counties.groupby("source"):
        assert sorted(rows["fips"].unique()) == four, source


def test_modelled_rates_without_counts_are_kept_with_their_basis(built) -> None:
    bundle, _ = built
    counties = bundle.read_layer("counties")
    oeps = counties[counties["rate_basis"] == "modelled"].set_index("fips")
    assert len(oeps) == 4
    assert oeps.loc["39061", "rate_per_100k"] == pytest.approx(51.5)
    assert oeps.loc["39017", "rate_per_100k"] == pytest.approx(39.9)
    # a rates-only table publishes no total: only the rate that derives a small count goes
    assert oeps.loc["18029", "rate_per_100k"] == pytest.approx(48.2)  # 24 derived deaths
    assert pd.isna(oeps.loc["18115", "rate_per_100k"])  # 31.0 of 5,940 people: 2 deaths


def test_small_counts_stay_hidden(built) -> None:
    bundle, _ = built
    counties = bundle.read_layer("counties")
    table = counties[counties["rate_basis"] != "modelled"].set_index("fips")
    assert pd.isna(table.loc["18115", "deaths"])  # 4 deaths: never shown
    assert pd.isna(table.loc["18115", "rate_per_100k"])  # ... nor derivable from a rate
    assert table.loc["39061", "deaths"] == 402


def test_without_counties_the_region_names_none(unnamed) -> None:
    info = stage(unnamed, "counties")
    assert info["region_counties"] == []
    assert info["counties_from"] == "none"
    assert len(unnamed.read_layer("counties")) == 0  # the tables' counties are none of its


# -- who is counted ------------------------------------------------------------------------


def test_one_not_covered_number_per_mode_adds_up(built) -> None:
    bundle, _ = built
    total = int(tr.areas_frame()["people"].sum())
    coverage = stage(bundle, "access")["coverage"]
    for mode in ("drive", "walk"):
        c = coverage[mode]
        assert c["covered"] + c["not_covered"] == c["people"] == total
        # the east column has no street within 1 km: none of its people is covered
        assert c["not_covered"] >= tr.EAST_PEOPLE


def test_the_build_warns_that_the_extract_falls_short(built) -> None:
    _, warnings = built
    assert any("extract" in w and "%" in w for w in warnings), warnings


def test_every_desert_and_band_that_counts_people_draws_them(built) -> None:
    bundle, _ = built
    for name in ("deserts", "isochrones"):
        layer = bundle.read_layer(name)
        col = "people" if "people" in layer.columns else "population"
        counted = layer[layer[col].fillna(0) > 0]
        assert len(counted), name
        geoms = counted.geometry.to_numpy()
        assert not (shapely.is_missing(geoms) | shapely.is_empty(geoms)).any(), name


def test_nobody_beyond_the_network_is_in_a_desert(built) -> None:
    bundle, _ = built
    deserts = bundle.read_layer("deserts")
    col = "people" if "people" in deserts.columns else "population"
    coverage = stage(bundle, "access")["coverage"]
    for _, row in deserts.iterrows():
        assert row[col] <= coverage[row["mode"]]["covered"] + 0.5
    # the east column (lon > STREETS_EAST + 1 km) lies in no desert polygon
    far = shapely.box(tr.EAST - (tr.EAST - tr.WEST) / tr.NX + 0.004, tr.SOUTH, tr.EAST, tr.NORTH)
    drive = deserts[(deserts["mode"] == "drive") & (deserts["category"] == "methadone")]
    desert = shapely.union_all(drive.to_crs("EPSG:4326").geometry.to_numpy())
    assert shapely.area(shapely.intersection(desert, far)) < 0.05 * shapely.area(far)


# -- sites ---------------------------------------------------------------------------------


def test_sites_across_the_state_line_and_in_the_buffer_are_kept(built) -> None:
    bundle, _ = built
    providers = bundle.read_layer("providers")
    names = set(providers["name"])
    assert {"Dearborn Recovery Services", "West Bank Clinic", "Riverside Treatment Center"} <= (
        names
    )
    assert "Austin Clinic" not in names
    west_bank = providers[providers["name"] == "West Bank Clinic"].iloc[0]
    assert not bool(west_bank["in_region"])


def test_sites_off_the_network_are_listed_with_their_distance(built) -> None:
    bundle, warnings = built
    off = stage(bundle, "providers")["off_network"]
    hilltop = [o for o in off if o["name"] == "Hilltop Program"]
    assert {o["mode"] for o in hilltop} >= {"drive"}
    assert all(o["snap_m"] > 1500 for o in hilltop)
    assert any("Hilltop Program" in w for w in warnings), warnings


def test_people_points_carry_the_distance_that_decides_coverage(built) -> None:
    bundle, _ = built
    people = bundle.read_layer("people")
    cover_m = stage(bundle, "access")["coverage"]["drive"]["cover_m"]
    assert 200 <= cover_m <= 400
    assert np.isfinite(people["snap_m_drive"].to_numpy()).all()
    # nobody is placed a kilometre east of the streets: those areas' people have no point
    assert not (people["lon"].to_numpy() > tr.STREETS_EAST + 0.012).any()
    # not covered = people without a point + people at points beyond cover_m, exactly
    far = people["snap_m_drive"].to_numpy() > cover_m
    assert far.any()
    weight = people["weight"].to_numpy()
    not_covered = stage(bundle, "access")["coverage"]["drive"]["not_covered"]
    assert round(weight[far].sum() + _unplaced(bundle)) == not_covered


# -- what the page and the prints say -----------------------------------------------------


def test_the_overdose_panel_names_the_four_counties_and_no_other(built, unnamed) -> None:
    from etl.inputs.counties import NO_COUNTY_TEXT, county_label, overdose_text
    from viewmodel.data import RegionData, county_overdose

    bundle, _ = built
    rows = county_overdose(RegionData(bundle=bundle))
    assert len(rows) == 8  # four counties x two sources
    assert {county_label(r) for r in rows} == {c[1] for c in tr.COUNTIES}
    text = " ".join(overdose_text(r) for r in rows)
    assert "Washakie" not in text and "56043" not in text
    assert "51.5 per 100,000" in text and "modelled" in text
    assert county_overdose(RegionData(bundle=unnamed)) == [{"note": NO_COUNTY_TEXT}]


def test_a_category_with_no_sites_is_no_data_not_methadone(built) -> None:
    from viewmodel.data import RegionData, map_options
    from viewmodel.state import parse_state

    bundle, _ = built
    options = map_options(RegionData(bundle=bundle), ["two-rivers"])
    assert "naltrexone" not in options.categories and "naltrexone" in options.no_data
    state = parse_state("?cat=naltrexone", options, default_region="two-rivers")
    assert state.category == "naltrexone"


def test_the_fact_sheet_counts_at_the_threshold_asked_for(built) -> None:
    from etl.outputs.export import desert_at

    bundle, _ = built
    at_15 = desert_at(bundle, "buprenorphine", "walk", 15)
    at_20 = desert_at(bundle, "buprenorphine", "walk", 20)
    stored = bundle.read_layer("deserts")
    row = stored[(stored["category"] == "buprenorphine") & (stored["mode"] == "walk")].iloc[0]
    assert round(at_20.beyond) == row["population"]  # the configured threshold: as built
    assert at_15.beyond >= at_20.beyond
    coverage = stage(bundle, "access")["coverage"]["walk"]
    assert round(at_15.not_covered) == coverage["not_covered"] - _unplaced(bundle)


def _unplaced(bundle: Bundle) -> int:
    """People of the areas with no people point (not covered by any mode)."""
    people = bundle.read_layer("people")
    return round(bundle.read_layer("areas")["population"].sum() - people["weight"].sum())
