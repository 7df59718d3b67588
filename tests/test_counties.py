"""The region's counties (config, GEOIDs, outlines or none) and the overdose rows shown for them.

Also: rates published without a count survive suppression, with their basis, unless a count
from 1 to 9 can be derived from them and a population. Every table is written here, in code.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from etl.bundle.privacy import assert_no_small_counts, suppress_counts
from etl.bundle.store import Bundle, BundleWriter
from etl.config import OverdoseSource, RegionConfig
from etl.inputs.counties import (
    NO_COUNTY_TEXT,
    overdose_text,
    region_overdose,
    stage_counties,
    suppress_table,
)
from etl.inputs.overdose import read_overdose
from etl.outputs.render import overdose_lines
from layouts.panels import summary_panel
from tests.test_privacy import _ranges, _relations
from viewmodel import data as app_data

#: Four counties in two states, laid out west to east (lon -84 .. -80), and one elsewhere.
COUNTIES = {
    "18057": ("Hamilton County", "IN", 300_000),
    "18097": ("Marion County", "IN", 950_000),
    "39041": ("Delaware County", "OH", 210_000),
    "39049": ("Franklin County", "OH", 1_300_000),
}
ELSEWHERE = ("56043", "Washakie County", "WY", 7_700)


def _box(k: int) -> shapely.Polygon:
    return shapely.box(-84.0 + k, 40.0, -83.0 + k, 41.0)


def _cfg(tmp_path: Path, **extra: Any) -> RegionConfig:
    raw = {
        "name": "four-counties",
        "title": "Four counties",
        "crs": "EPSG:32617",
        "network": {"online": True, "place": "nowhere"},
        "providers": [{"name": "p", "path": "p.csv", "category": "methadone"}],
        "areas": {"path": "areas.gpkg", "id_column": "GEOID", "population_column": "pop"},
        "overdose": [
            {"path": "wonder.csv", "format": "cdc_wonder", "period": "2009-2018 pooled",
             "source": "CDC WONDER, pooled"},
            {"path": "ohio.csv", "format": "ohio_county", "source": "Ohio, by year"},
            {"path": "oeps.csv", "format": "oeps", "period": "2021", "source": "OEPS, modelled"},
        ],
        "base_dir": tmp_path,
        **extra,
    }
    return RegionConfig.model_validate(raw)


def _areas(ids: list[str]) -> gpd.GeoDataFrame:
    """Two areas per county box: ids are given in box order (k // 2)."""
    geoms = []
    for k in range(len(ids)):
        box = _box(k // 2)
        x0, y0, x1, y1 = box.bounds
        half = (x0 + x1) / 2
        geoms.append(shapely.box(x0, y0, half, y1) if k % 2 == 0 else shapely.box(half, y0, x1, y1))
    return gpd.GeoDataFrame({"area_id": ids}, geometry=geoms, crs="EPSG:4326")


GEOIDS = [f"{f}00010{i}1" for f in sorted(COUNTIES) for i in (1, 2)]  # 12-digit block groups
WARDS = [f"ward-{i}" for i in range(1, 9)]


def _write_tables(tmp_path: Path) -> None:
    fips = [*sorted(COUNTIES), ELSEWHERE[0]]
    names = [COUNTIES[f][0] for f in sorted(COUNTIES)] + [ELSEWHERE[1]]
    states = [COUNTIES[f][1] for f in sorted(COUNTIES)] + [ELSEWHERE[2]]
    pops = [COUNTIES[f][2] for f in sorted(COUNTIES)] + [ELSEWHERE[3]]
    # WONDER: pooled counts; Hamilton IN "Missing" with a published rate (3,000,000
    # person-years x 14.1 / 1e5 = 423 deaths: shown).
    deaths = ["Missing", "1480", "260", "1520", "15"]
    rates = ["14.1", "15.6", "12.4", "11.7", "19.5"]
    lines = ['"Notes","County","County Code","Deaths","Population","Crude Rate"']
    for f, n, state, p, d, r in zip(fips, names, states, pops, deaths, rates, strict=True):
        lines.append(f',"{n}, {state}","{f}",{d},{p * 10},{r}')
    (tmp_path / "wonder.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # Ohio: by year, county names only; Delaware 2020 is a count of 7 (suppressed).
    ohio = ["CountyName,DeathYear,Deaths,Population"]
    ohio += ["Delaware,2019,12,209000", "Franklin,2019,500,1310000"]
    ohio += ["Delaware,2020,7,210000", "Franklin,2020,746,1324624", "Adams,2020,30,27000"]
    (tmp_path / "ohio.csv").write_text("\n".join(ohio) + "\n", encoding="utf-8")
    # OEPS: modelled rates only, no counts, no population.
    oeps = ["FIPS,OdMortRt"] + [f"{f},{r}" for f, r in zip(fips, [20.5, 33.0, 25.0, 51.5, 60.0],
                                                         strict=True)]  # fmt: skip
    (tmp_path / "oeps.csv").write_text("\n".join(oeps) + "\n", encoding="utf-8")


def _build(tmp_path: Path, cfg: RegionConfig, ids: list[str]) -> tuple[dict, Bundle]:
    """Run the counties stage on areas made here; return its manifest entry and a bundle."""
    areas = _areas(ids)
    writer = BundleWriter(geodata_dir=tmp_path, region=cfg.name, build_id="t", tmp=tmp_path / "b")
    writer.write_layer("areas", areas)
    ctx = SimpleNamespace(cfg=cfg, writer=writer, layer=lambda name: areas)
    result = stage_counties(ctx)
    manifest = {
        "region": cfg.name,
        "layers": writer.layers,
        "stages": {"counties": result, "areas": {"unit": cfg.areas.unit}},
    }
    return result, Bundle(path=writer.tmp, manifest=manifest)


def _panel_texts(rows: list[dict]) -> list[str]:
    summary = {
        "focus": {"within": 10.0, "beyond": 5.0, "share_within": 2 / 3, "median_min": 12.0},
        "categories": [],
        "histogram": [],
        "bands": [],
        "county": rows,
    }
    parts = summary_panel(summary, category="methadone", mode="drive", threshold=30)
    facts = parts[1].children
    return [li.children for li in facts if getattr(li, "className", "") == "atlas-overdose"]


# --------------------------------------------------------------------------------------------
# region counties


def test_four_counties_from_geoids_get_four_rows_per_source(tmp_path):
    _write_tables(tmp_path)
    result, bundle = _build(tmp_path, _cfg(tmp_path), GEOIDS)
    assert result["counties_from"] == "geoids"
    assert result["region_counties"] == ["18057", "18097", "39041", "39049"]
    rd = app_data.RegionData(bundle=bundle)
    rows = app_data.county_overdose(rd)
    assert len(rows) == 12  # 4 counties x 3 sources, each its latest period
    by = {(r["source"], r["fips"]): r for r in rows}
    assert {r["period"] for r in rows if r["source"] == "Ohio, by year"} == {"2020"}
    # Indiana is not in Ohio's table: said so, never filled from elsewhere
    assert by[("Ohio, by year", "18097")]["missing"] is True
    assert by[("Ohio, by year", "39049")]["deaths"] == 746
    # Delaware 2020 (7 deaths) is suppressed, its rate with it
    assert by[("Ohio, by year", "39041")]["suppressed"] is True
    assert by[("Ohio, by year", "39041")]["rate_per_100k"] is None
    # modelled OEPS rates are kept with their basis and named from another table
    oeps = by[("OEPS, modelled", "39049")]
    assert (oeps["rate_per_100k"], oeps["rate_basis"], oeps["county"]) == (
        51.5, "modelled", "Franklin County"
    )  # fmt: skip
    # the WONDER rate published without a count is kept (423 derived deaths: no risk)
    hamilton = by[("CDC WONDER, pooled", "18057")]
    assert hamilton["deaths"] is None and hamilton["rate_per_100k"] == 14.1
    assert not hamilton["suppressed"] and not hamilton["unstable"]
    assert "Washakie" not in str(rows)
    texts = _panel_texts(rows)
    assert len(texts) == 12
    assert "Overdose deaths, Franklin County (2021): 51.5 per 100,000 (modelled rate)" in texts[-1]
    assert any("Marion County (2020): not in this source" in t for t in texts)
    sheet = overdose_lines(bundle)
    assert len(sheet) == 12 and sum("Franklin County" in line for line in sheet) == 3
    assert "OEPS: Franklin County (2021): 51.5 per 100,000 (modelled rate)." in sheet
    # the layer holds the four counties only, each drawn (the union of its areas)
    layer = bundle.read_layer("counties")
    assert set(layer["fips"]) == set(COUNTIES) and layer.geometry.notna().all()
    assert result["rows"] == 4 + 4 + 4 and result["rows_read"] == 5 + 5 + 5
    assert_no_small_counts({"counties": layer})


def test_non_geoid_ids_without_counties_give_none_and_the_panel_says_so(tmp_path):
    _write_tables(tmp_path)
    result, bundle = _build(tmp_path, _cfg(tmp_path), WARDS)
    assert (result["counties_from"], result["region_counties"]) == ("none", [])
    assert len(bundle.read_layer("counties")) == 0  # no county from elsewhere is kept
    rows = app_data.county_overdose(app_data.RegionData(bundle=bundle))
    assert rows == [{"note": NO_COUNTY_TEXT}]
    assert _panel_texts(rows) == [NO_COUNTY_TEXT]
    assert overdose_lines(bundle) == [NO_COUNTY_TEXT]
    assert "add `counties:` (FIPS codes) to its config" in NO_COUNTY_TEXT


def test_counties_from_config_win_over_geoids(tmp_path):
    _write_tables(tmp_path)
    cfg = _cfg(tmp_path, counties=["39049"])
    result, bundle = _build(tmp_path, cfg, GEOIDS)
    assert (result["counties_from"], result["region_counties"]) == ("config", ["39049"])
    rows = app_data.county_overdose(app_data.RegionData(bundle=bundle))
    assert {r["fips"] for r in rows} == {"39049"} and len(rows) == 3
    # wards and one configured county: the county's outline is the union of the areas
    result, bundle = _build(tmp_path, cfg, WARDS)
    layer = bundle.read_layer("counties")
    assert set(layer["fips"]) == {"39049"} and layer.geometry.notna().all()


def test_old_bundle_without_counties_from_falls_back_to_geoids(tmp_path):
    _write_tables(tmp_path)
    _, bundle = _build(tmp_path, _cfg(tmp_path), WARDS)
    for key in ("counties_from", "region_counties"):
        bundle.manifest["stages"]["counties"].pop(key)
    assert app_data.region_counties(app_data.RegionData(bundle=bundle)) == []
    _, bundle = _build(tmp_path, _cfg(tmp_path), GEOIDS)
    bundle.manifest["stages"]["counties"].pop("counties_from")
    got = app_data.region_counties(app_data.RegionData(bundle=bundle))
    assert got == sorted(COUNTIES)


def test_outlines_join_names_and_draws_the_counties(tmp_path):
    _write_tables(tmp_path)
    fips = sorted(COUNTIES)
    outlines = gpd.GeoDataFrame(
        {"GEOID": [*fips, ELSEWHERE[0]], "NAMELSAD": [f"{COUNTIES[f][0]} (outline)" for f in fips]
         + [ELSEWHERE[1]]},
        geometry=[_box(k) for k in range(4)] + [shapely.box(-108, 43, -107, 44)],
        crs="EPSG:4326",
    ).to_crs("EPSG:4269")  # fmt: skip
    outlines.to_file(tmp_path / "counties.gpkg", layer="tl_counties")
    cfg = _cfg(
        tmp_path,
        county_outlines={"path": "counties.gpkg", "layer": "tl_counties", "id_column": "GEOID",
                         "name_column": "NAMELSAD"},
    )  # fmt: skip
    # ids that are not GEOIDs, areas in only three of the four counties
    result, bundle = _build(tmp_path, cfg, WARDS[:6])
    assert result["counties_from"] == "outlines"
    assert result["region_counties"] == ["18057", "18097", "39041"]
    assert result["county_names"]["18057"] == "Hamilton County (outline)"
    layer = bundle.read_layer("counties")
    assert layer.geometry.notna().all()
    drawn = layer.drop_duplicates("fips").set_index("fips")
    assert set(drawn.index) == {"18057", "18097", "39041"}
    # the county's own outline, not the union of its areas
    assert drawn.loc["39041"].geometry.equals_exact(_box(2), 1e-6)
    rows = app_data.county_overdose(app_data.RegionData(bundle=bundle))
    assert len(rows) == 9


def test_outlines_that_miss_the_region_are_refused(tmp_path):
    _write_tables(tmp_path)
    gpd.GeoDataFrame(
        {"GEOID": ["56043"]}, geometry=[shapely.box(-108, 43, -107, 44)], crs="EPSG:4326"
    ).to_file(tmp_path / "far.gpkg")
    cfg = _cfg(tmp_path, county_outlines={"path": "far.gpkg", "id_column": "GEOID"})
    with pytest.raises(Exception, match=r"far.gpkg: none of the region's 8 areas lies inside"):
        _build(tmp_path, cfg, WARDS)


def test_counties_key_is_validated(tmp_path):
    for bad, problem in (("3949", "5-digit"), ("03049", "no state's"), ("39000", "5-digit")):
        with pytest.raises(ValidationError, match=problem):
            _cfg(tmp_path, counties=[bad])
    with pytest.raises(ValidationError, match="listed twice"):
        _cfg(tmp_path, counties=["39049", "39049"])
    assert _cfg(tmp_path, counties=["99001"], fictional=True).counties == ["99001"]
    with pytest.raises(ValidationError, match="no state's"):
        _cfg(tmp_path, counties=["99001"])


# --------------------------------------------------------------------------------------------
# rates without counts, per reader


def _src(path: Path, **kw: Any) -> OverdoseSource:
    return OverdoseSource(path=str(path), **kw)


def test_cdc_wonder_rate_without_count_is_kept_unless_a_small_count_follows(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text(
        '"County","County Code","Deaths","Population","Crude Rate"\n'
        '"A County, OH","39001",Missing,300000,14.1\n'  # 42 deaths: kept
        '"B County, OH","39003",Missing,300000,2.0\n'  # 6 deaths: suppressed
        '"E County, OH","39009",Missing,200000,3.5\n'  # 7: suppressed (6 + 7 hide each other)
        '"C County, OH","39005",Missing,Missing,20.0\n'  # no population: cannot be checked
        '"D County, OH","39007",250,200000,125.0\n',
        encoding="utf-8",
    )
    out = suppress_table(read_overdose(_src(path, format="cdc_wonder", period="2018"), path))
    out = out.set_index("fips")
    assert out.loc["39001", "rate_per_100k"] == 14.1 and not out.loc["39001", "suppressed"]
    assert pd.isna(out.loc["39001", "deaths"])  # the derived count is never written
    assert out.loc["39003", "suppressed"] and np.isnan(out.loc["39003", "rate_per_100k"])
    assert out.loc["39009", "suppressed"] and not out.loc["39009", "unchecked"]
    # a rate with no count and no population anywhere could hide a small count: hidden
    assert out.loc["39005", "suppressed"] and out.loc["39005", "unchecked"]
    assert np.isnan(out.loc["39005", "rate_per_100k"])
    assert out["suppressed"].sum() == 3 and out["unchecked"].sum() == 1
    assert out.loc["39007", "deaths"] == 250


def test_ohio_county_rate_without_count_is_kept_and_marked_unstable_when_derived_small(
    tmp_path,
):
    path = tmp_path / "o.csv"
    path.write_text(
        "CountyName,DeathYear,Deaths,Population,Rate\n"
        "Adams,2020,,50000,30.0\n"  # 15 derived deaths: shown, unstable
        "Allen,2020,,100000,45.0\n"  # 45: shown, stable
        "Ashland,2020,120,53000,\n",
        encoding="utf-8",
    )
    src = _src(path, format="ohio_county", rate_column="Rate", source="Ohio")
    out = suppress_table(read_overdose(src, path)).set_index("fips")
    assert out.loc["39001", "rate_per_100k"] == 30.0 and out.loc["39001", "unstable"]
    assert out.loc["39003", "rate_per_100k"] == 45.0 and not out.loc["39003", "unstable"]
    assert out.loc["39005", "rate_per_100k"] == pytest.approx(226.4)
    assert not out["suppressed"].any()


def test_oeps_rate_is_kept_unless_another_tables_population_gives_a_small_count(tmp_path):
    oeps = tmp_path / "oeps.csv"
    oeps.write_text(
        "FIPS,OdMortRt\n39001,50.0\n39049,51.5\n39003,\n39005,60.0\n", encoding="utf-8"
    )
    ohio = tmp_path / "ohio.csv"
    ohio.write_text(
        "CountyName,DeathYear,Deaths,Population\nAdams,2021,12,8000\nAshland,2021,10,10000\n"
        "Franklin,2021,900,1320000\n",
        encoding="utf-8",
    )
    table = pd.concat(
        [
            read_overdose(_src(oeps, format="oeps", period="2021", source="OEPS"), oeps),
            read_overdose(_src(ohio, format="ohio_county", source="Ohio"), ohio),
        ],
        ignore_index=True,
    )
    out = suppress_table(table)
    o = out[out["source"] == "OEPS"].set_index("fips")
    # Franklin: 51.5 (modelled) kept; Adams: 50 x 8,000 / 1e5 = 4 deaths and Ashland
    # 60 x 10,000 / 1e5 = 6: suppressed (together 10, so no complement is needed)
    assert o.loc["39049", "rate_per_100k"] == 51.5 and o.loc["39049", "rate_basis"] == "modelled"
    assert not o.loc["39049", "suppressed"] and not o.loc["39049", "unstable"]
    assert o.loc["39001", "suppressed"] and np.isnan(o.loc["39001", "rate_per_100k"])
    assert o.loc["39005", "suppressed"] and int(o["suppressed"].sum()) == 2
    assert np.isnan(o.loc["39003", "rate_per_100k"]) and not o.loc["39003", "suppressed"]
    assert_no_small_counts({"counties": out})


def test_a_derivable_count_takes_part_in_complementary_suppression():
    df = pd.DataFrame(
        {
            "deaths": pd.array([5, pd.NA, 100], dtype="Int64"),
            "population": [100_000, 100_000, 100_000],
            "rate_per_100k": [5.0, 40.0, 100.0],
        }
    )
    out = suppress_counts(df, count_cols=["deaths"], population_col="population")
    # 5 is suppressed; B's 40 deaths can be derived from its rate, so it is the complement
    assert out["suppressed"].tolist() == [True, True, False]
    assert out["rate_per_100k"].isna().tolist() == [True, True, False]
    assert out["deaths"].isna().tolist() == [True, True, False]
    # without a population B is unknown to a reader: its rate stays, C protects A
    alone = suppress_counts(df.drop(columns="population"), count_cols=["deaths"])
    assert alone["rate_per_100k"].tolist()[1] == 40.0 and not alone["suppressed"].iloc[1]
    assert alone["suppressed"].tolist() == [True, False, True]


def test_overdose_text_for_a_county_a_source_does_not_cover():
    row = {"fips": "18097", "county": "Marion County", "period": "2020", "missing": True,
           "source": "Ohio"}  # fmt: skip
    assert overdose_text(row, prefix="Marion County") == (
        "Marion County (2020): not in this source. Source: Ohio."
    )
    empty = region_overdose(pd.DataFrame(columns=["fips", "source", "period", "county"]), [], {})
    assert empty.empty


@pytest.mark.shared
def test_oeps_franklin_2021_rate_survives(franklin):
    oeps = franklin / "overdose/oeps_county_2021.csv"
    wonder = franklin / "overdose/cdc_wonder_drug_deaths_county_2009-2018.csv"
    table = pd.concat(
        [
            read_overdose(_src(oeps, format="oeps", period="2021", source="OEPS"), oeps),
            read_overdose(_src(wonder, format="cdc_wonder", period="2009-2018 pooled",
                               source="WONDER"), wonder),
        ],
        ignore_index=True,
    )
    out = suppress_table(table)
    rows = region_overdose(out, ["39049"], {"39049": "Franklin County"})
    fr = rows.set_index("source").loc["OEPS"]
    assert fr["rate_per_100k"] == 51.5 and fr["rate_basis"] == "modelled"
    assert fr["county"] == "Franklin County" and not fr["suppressed"]
    wonder_fr = rows.set_index("source").loc["WONDER"]
    assert wonder_fr["deaths"] == 1520 and wonder_fr["rate_per_100k"] == pytest.approx(12.4)
    assert_no_small_counts({"counties": out})


# --------------------------------------------------------------------------------------------
# an attacker who also multiplies the shown rates by the populations


@st.composite
def rate_tables(draw):
    n = draw(st.integers(2, 7))
    true = draw(st.lists(st.one_of(st.just(0), st.integers(1, 9), st.integers(10, 60)),
                         min_size=n, max_size=n))  # fmt: skip
    # each row: count published, only a rate with its population, or nothing at all
    kind = draw(st.lists(st.sampled_from(["count", "rate", "none"]), min_size=n, max_size=n))
    groups = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    pop = 50_000.0
    df = pd.DataFrame(
        {
            "deaths": pd.array(
                [t if k == "count" else pd.NA for t, k in zip(true, kind, strict=True)],
                dtype="Int64",
            ),
            "population": pop,
            "rate_per_100k": [
                t * 1e5 / pop if k != "none" else np.nan for t, k in zip(true, kind, strict=True)
            ],
            "g": groups,
        }
    )
    return df, np.array(true, dtype="float64"), groups


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate_tables())
def test_no_small_count_is_recoverable_from_counts_rates_and_totals(table):
    df, true, groups = table
    out = suppress_counts(df, count_cols=["deaths"], group_col="g", population_col="population")
    rates = out["rate_per_100k"].to_numpy(dtype="float64")
    derived = np.floor(rates * df["population"].to_numpy() / 1e5 + 0.5)
    counts = out["deaths"].to_numpy(dtype="float64", na_value=np.nan)
    known = ~np.isnan(counts) | ~np.isnan(derived)
    # nothing from 1 to 9 is shown, directly or through a rate
    assert not ((counts > 0) & (counts < 10)).any()
    assert not ((derived > 0) & (derived < 10)).any()
    # no group total (published when 10 or more) pins down a hidden cell
    hidden = ~known
    rel = _relations(len(df), 1, 1, groups, False)
    for cell, (lo, hi) in _ranges(true.reshape(-1, 1), hidden.reshape(-1, 1), rel).items():
        if 1 <= true[cell] <= 9:
            assert hi - lo >= 1 - 1e-6, (cell, lo, hi)


def test_no_overdose_map_layer_when_no_county_is_drawn(tmp_path):
    _write_tables(tmp_path)
    _, bundle = _build(tmp_path, _cfg(tmp_path), WARDS)
    assert app_data.overdose_source(app_data.RegionData(bundle=bundle)) is None
    _, bundle = _build(tmp_path, _cfg(tmp_path), GEOIDS)
    assert app_data.overdose_source(app_data.RegionData(bundle=bundle)) == "counties"
