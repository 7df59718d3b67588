"""Tests for etl.inputs.overdose: the real tables' quirks; bad input refused with file and row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from etl._errors import ConfigError, InputError
from etl.config import OverdoseSource
from etl.fips import OHIO_COUNTIES, OHIO_COUNTY_FIPS
from etl.inputs.overdose import COUNTY_COLUMNS, read_overdose

WONDER_POOLED = "overdose/cdc_wonder_drug_deaths_county_2009-2018.csv"
WONDER_YEARLY = "overdose/cdc_wonder_drug_poisoning_county_1999-2016.csv"
OHIO = "overdose/ohio_opioid_deaths_county_2007-2023.csv"
OEPS = "overdose/oeps_county_2021.csv"


def _src(path: Path, **kw) -> OverdoseSource:
    return OverdoseSource(path=str(path), **kw)


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture(scope="module")
def yearly(franklin: Path) -> pd.DataFrame:
    path = franklin / WONDER_YEARLY
    return read_overdose(_src(path, format="cdc_wonder"), path)


# --------------------------------------------------------------------------------------------
# the real files


@pytest.mark.shared
def test_wonder_pooled_2009_2018(franklin):
    path = franklin / WONDER_POOLED
    df = read_overdose(
        _src(path, format="cdc_wonder", period="2009-2018 pooled", source="CDC WONDER"), path
    )
    assert list(df.columns) == list(COUNTY_COLUMNS)
    assert len(df) == 2516  # 2,515 counties with counts + Clifton Forge city, VA ("Missing")
    fr = df.set_index("fips").loc["39049"]
    assert (fr["county"], fr["state"]) == ("Franklin County", "OH")
    assert (fr["deaths"], fr["population"], fr["rate_per_100k"]) == (1520, 12255335, 12.4)
    assert (fr["period"], fr["rate_basis"], fr["source"]) == (
        "2009-2018 pooled",
        "crude",
        "CDC WONDER",
    )
    assert not fr["suppressed"] and not fr["unstable"] and pd.isna(fr["year"])
    # 4-digit county codes regain their leading zero; "Unreliable" rate: computed, flagged
    barbour = df.set_index("fips").loc["01005"]
    assert barbour["deaths"] == 17 and barbour["unstable"]
    assert barbour["rate_per_100k"] == pytest.approx(6.4)
    missing = df.set_index("fips").loc["51560"]
    assert pd.isna(missing["deaths"]) and not missing["suppressed"]
    assert df["fips"].str.fullmatch(r"\d{5}").all()


@pytest.mark.shared
def test_wonder_yearly_file_with_shifted_header_reads_correctly(yearly):
    df = yearly
    assert len(df) == 56646
    assert df["fips"].str.fullmatch(r"\d{5}").all()
    assert df["state"].notna().all()
    fr = df[df["fips"] == "39049"].set_index("year")
    assert len(fr) == 18 and fr["county"].unique().tolist() == ["Franklin County"]
    # checked by hand in the file: line 37278 and line 37272
    assert fr.loc[2016, ["deaths", "population"]].tolist() == [339, 1264518]
    assert fr.loc[2016, "rate_per_100k"] == 26.8 and fr.loc[2016, "age_adjusted_rate"] == 26.0
    assert fr.loc[2009, ["deaths", "population"]].tolist() == [132, 1155408]
    assert fr.loc[2009, "age_adjusted_rate"] == 11.2
    assert fr.loc[2016, "period"] == "2016" and not fr["suppressed"].any()
    # suppressed values are blank: missing and flagged; population is still there
    autauga = df[(df["fips"] == "01001") & (df["year"] == 1999)].iloc[0]
    assert autauga["county"] == "Autauga County" and autauga["state"] == "AL"
    assert pd.isna(autauga["deaths"]) and autauga["suppressed"] and autauga["unstable"]
    assert autauga["population"] == 42963
    assert int(df["suppressed"].sum()) == 44734
    # "8.0 (Unreliable)": the number is kept and flagged
    baldwin = df[(df["fips"] == "01003") & (df["year"] == 1999)].iloc[0]
    assert (baldwin["deaths"], baldwin["rate_per_100k"], baldwin["age_adjusted_rate"]) == (
        11,
        8.0,
        8.3,
    )
    assert baldwin["unstable"]


@pytest.mark.shared
def test_ohio_names_map_to_fips_and_match_wonder(franklin, yearly):
    path = franklin / OHIO
    df = read_overdose(_src(path, format="ohio_county"), path)
    assert len(df) == 88 * 17  # NonOH and Unknown rows left out
    fr = df[(df["fips"] == "39049") & (df["year"] == 2020)].iloc[0]
    assert (fr["county"], fr["deaths"], fr["population"]) == ("Franklin County", 746, 1324624)
    assert fr["rate_per_100k"] == pytest.approx(56.3) and fr["rate_basis"] == "crude"
    assert not fr["provisional"] and fr["period"] == "2020"
    prov = df[df["year"] >= 2021]
    assert prov["provisional"].all() and len(prov) == 88 * 3
    assert set(prov["period"]) == {"2021 (provisional)", "2022 (provisional)", "2023 (provisional)"}
    assert not df.loc[df["year"] <= 2020, "provisional"].any()
    # the built-in Ohio table agrees with CDC WONDER's county codes for all 88 counties
    wonder = yearly[yearly["state"] == "OH"].drop_duplicates("fips")
    from_wonder = dict(
        zip(wonder["county"].str.removesuffix(" County"), wonder["fips"], strict=True)
    )
    assert from_wonder == OHIO_COUNTY_FIPS
    assert len(OHIO_COUNTIES) == 88 and OHIO_COUNTY_FIPS["Wyandot"] == "39175"


@pytest.mark.shared
def test_oeps_modelled_rate(franklin):
    path = franklin / OEPS
    df = read_overdose(_src(path, format="oeps", period="2021"), path)
    assert len(df) == 3222
    fr = df.set_index("fips").loc["39049"]
    assert fr["rate_per_100k"] == 51.5 and fr["rate_basis"] == "modelled"
    assert fr["period"] == "2021" and pd.isna(fr["deaths"]) and not fr["suppressed"]
    assert np.isnan(df.set_index("fips").loc["72153", "rate_per_100k"])  # blank in the file


def test_oeps_needs_a_period(tmp_path):
    path = _write(tmp_path, "oeps.csv", '"HEROP_ID","FIPS","OdMortRt"\n"050US39049","39049",51.5\n')
    with pytest.raises(ConfigError, match="set `period`"):
        read_overdose(_src(path, format="oeps"), path)


# --------------------------------------------------------------------------------------------
# the malformed WONDER export: repaired only when consistent


HEADER = ",County,County Code,Year,Year Code,Deaths,Population,Crude Rate,Age Adjusted Rate\n"


def test_shifted_header_is_repaired(tmp_path):
    text = HEADER + (
        "0,Autauga County, AL,01001,1999,1999,,42963,,\n"
        "1,Franklin County, OH,39049,2016,2016,339,1264518,26.8,26.0\n"
    )
    path = _write(tmp_path, "wonder.csv", text)
    df = read_overdose(_src(path, format="cdc_wonder"), path)
    assert df["fips"].tolist() == ["01001", "39049"]
    assert df["county"].tolist() == ["Autauga County", "Franklin County"]
    assert df["deaths"].tolist() == [pd.NA, 339] and df["suppressed"].tolist() == [True, False]


def test_inconsistently_shifted_file_is_refused(tmp_path):
    text = HEADER + (
        "0,Autauga County, AL,01001,1999,1999,,42963,,\n"
        '1,"Baldwin County, AL",01003,1999,1999,11,137555,8.0 (Unreliable),8.3\n'
        "2,Franklin County, OH,39049,2016,2016,339,1264518,26.8,26.0\n"
    )
    path = _write(tmp_path, "wonder_mixed.csv", text)
    with pytest.raises(
        InputError, match=r"wonder_mixed\.csv: row 3 has 9 fields but most rows have 10"
    ):
        read_overdose(_src(path, format="cdc_wonder"), path)


def test_shift_that_is_not_a_state_is_refused(tmp_path):
    text = HEADER + (
        "0,Autauga County, AL,01001,1999,1999,,42963,,\n"
        "1,Franklin County, Ohio,39049,2016,2016,339,1264518,26.8,26.0\n"
    )
    path = _write(tmp_path, "wonder_state.csv", text)
    with pytest.raises(
        InputError, match=r"wonder_state\.csv: row 3: .*'Franklin County' \+ ' Ohio'"
    ):
        read_overdose(_src(path, format="cdc_wonder"), path)


def test_shift_with_a_bad_code_after_repair_is_refused(tmp_path):
    text = HEADER + (
        "0,Autauga County, AL,01001,1999,1999,,42963,,\n"
        "1,Franklin County, OH,39-49,2016,2016,339,1264518,26.8,26.0\n"
    )
    path = _write(tmp_path, "wonder_code.csv", text)
    with pytest.raises(InputError, match=r"wonder_code\.csv: row 3: .*'County Code' holds '39-49'"):
        read_overdose(_src(path, format="cdc_wonder"), path)


def test_wonder_tab_export_with_notes_totals_markers_and_footer(tmp_path):
    text = (
        '"Notes"\t"County"\t"County Code"\t"Deaths"\t"Population"\t"Crude Rate"\n'
        '\t"Franklin County, OH"\t"39049"\t1520\t12255335\t12.4\n'
        '\t"Vinton County, OH"\t"39163"\tSuppressed\t131000\tSuppressed\n'
        '\t"Noble County, OH"\t"39121"\t14\t144000\tUnreliable\n'
        '"Total"\t\t\t1534\t12530335\t12.2\n'
        '"---"\n'
        '"Dataset: Multiple Cause of Death, 1999-2020"\n'
        '"Query Parameters:"\n'
    )
    path = _write(tmp_path, "wonder.txt", "\ufeff" + text)
    df = read_overdose(_src(path, format="cdc_wonder", period="2009-2018 pooled"), path)
    assert df["fips"].tolist() == ["39049", "39121", "39163"]
    assert df["deaths"].tolist() == [1520, 14, pd.NA]
    assert df["suppressed"].tolist() == [False, False, True]
    assert df["unstable"].tolist() == [False, True, True]
    assert df["rate_per_100k"].iloc[1] == pytest.approx(9.7)  # 14 / 144,000, computed


# --------------------------------------------------------------------------------------------
# bad input: file, row, column, value


def test_unmapped_county_name_names_row_and_close_matches(tmp_path):
    text = (
        "DeathYear,CountyName,Deaths,Population,SORT\n"
        "2020,Franklin,746,1324624,0\n2020,Frankln,3,1000,1\n"
    )
    path = _write(tmp_path, "ohio.csv", text)
    with pytest.raises(
        InputError, match=r"ohio\.csv: row 3, column 'CountyName': 'Frankln' .*'Franklin'"
    ):
        read_overdose(_src(path, format="ohio_county"), path)


@pytest.mark.parametrize(
    ("cell", "problem"),
    [("-4", "is negative"), ("many", "is not a number"), ("1.5", "is not a whole number")],
)
def test_bad_counts_are_refused(tmp_path, cell, problem):
    text = f"GEOID,deaths,pop\n39049,746,1324624\n39041,{cell},200000\n"
    path = _write(tmp_path, "t.csv", text)
    src = _src(
        path,
        format="table",
        key_column="GEOID",
        deaths_column="deaths",
        population_column="pop",
        period="2020",
    )
    with pytest.raises(InputError, match=rf"t\.csv: row 3, column 'deaths': '{cell}' {problem}"):
        read_overdose(src, path)


@pytest.mark.parametrize("key", ["99001", "3904x", "390490", "39000", ""])
def test_unknown_fips_is_refused(tmp_path, key):
    path = _write(tmp_path, "t.csv", f"FIPS,deaths\n39049,746\n{key},12\n")
    src = _src(path, format="table", key_column="FIPS", deaths_column="deaths", period="2020")
    with pytest.raises(InputError, match=rf"t\.csv: row 3, column 'FIPS': '{key}' is not a county"):
        read_overdose(src, path)


def test_duplicated_keys_in_a_period_are_refused(tmp_path):
    text = "GEOID,year,deaths\n39049,2019,504\n39049,2020,746\n0500000US39049,2020,700\n"
    path = _write(tmp_path, "t.csv", text)
    src = _src(path, format="table", key_column="GEOID", year_column="year", deaths_column="deaths")
    with pytest.raises(InputError, match=r"t\.csv: rows 3, 4: area 39049 .* period '2020'"):
        read_overdose(src, path)


def test_generic_table_geoid_forms_years_and_units(tmp_path):
    text = (
        "geo,yr,n,pop,r\n"
        "0500000US39049,2020,746,1324624,56.3\n"
        "050US39041,2020,30,209177,14.3\n"
        "1001,2020,12,55869,21.5\n"
        "39049,2019,504,1318766,38.2\n"
    )
    path = _write(tmp_path, "t.csv", text)
    src = _src(
        path,
        format="table",
        key_column="geo",
        year_column="yr",
        deaths_column="n",
        population_column="pop",
        rate_column="r",
        basis="age-adjusted",
        years=[2020],
    )
    df = read_overdose(src, path)
    assert df["fips"].tolist() == ["01001", "39041", "39049"]
    assert df["state"].tolist() == ["AL", "OH", "OH"]
    assert df["rate_basis"].unique().tolist() == ["age-adjusted"]
    assert df["unstable"].tolist() == [True, False, False]
    tracts = _write(tmp_path, "tracts.csv", "GEOID,deaths\n39049000110,22\n39049000120,0\n")
    df = read_overdose(
        _src(
            tracts,
            format="table",
            unit="tract",
            key_column="GEOID",
            deaths_column="deaths",
            period="2016-2020 pooled",
        ),
        tracts,
    )
    assert df["geoid"].tolist() == ["39049000110", "39049000120"]
    assert df["fips"].unique().tolist() == ["39049"]


def test_missing_column_and_latin1_and_missing_file(tmp_path):
    path = _write(tmp_path, "t.csv", "FIPS,deaths\n39049,746\n")
    src = _src(path, format="table", key_column="FIPS", deaths_column="Deaths", period="2020")
    with pytest.raises(InputError, match=r"no column 'Deaths' \(deaths_column\)"):
        read_overdose(src, path)
    latin = _write(tmp_path, "l.csv", "FIPS,deaths,name\n39049,746,Müller\n", encoding="latin-1")
    src = _src(latin, format="table", key_column="FIPS", deaths_column="deaths", period="2020")
    with pytest.raises(InputError, match="encoding: latin-1"):
        read_overdose(src, latin)
    ok = read_overdose(src.model_copy(update={"encoding": "latin-1"}), latin)
    assert ok["deaths"].tolist() == [746]
    with pytest.raises(InputError, match="not found"):
        read_overdose(src, tmp_path / "nope.csv")


def test_config_model_is_strict():
    with pytest.raises(ValidationError, match="extra"):
        OverdoseSource(path="x.csv", format="oeps", colour="red")
    with pytest.raises(ValidationError, match="key_column"):
        OverdoseSource(path="x.csv", format="table", deaths_column="d")
    with pytest.raises(ValidationError, match="basis"):
        OverdoseSource(path="x.csv", format="table", key_column="k", rate_column="r")
    src = OverdoseSource(path="x.csv", format="cdc_wonder")
    with pytest.raises(ValidationError):
        src.period = "2020"  # frozen
    assert src.setting("key_column") == "County Code"
