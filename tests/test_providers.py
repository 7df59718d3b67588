"""Tests for etl.inputs.providers: provider lists read into one layer, every row accounted for."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from etl._errors import InputError
from etl.config import RegionConfig
from etl.inputs.geocode import OfflineGeocoder, ReferenceIndex
from etl.inputs.providers import PROVIDER_COLUMNS, load_providers

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "franklin-oh"

# A small box in central Columbus, Ohio (lon/lat), and a 1 km buffer.
REGION = shapely.box(-83.05, 39.93, -82.95, 40.01)
INSIDE = (-83.00, 39.96)


def make_cfg(tmp_path: Path, providers: list[dict], *, buffer_km: float = 1.0) -> RegionConfig:
    return RegionConfig.model_validate(
        {
            "name": "test-region",
            "title": "Test region",
            "crs": "EPSG:32617",
            "buffer_km": buffer_km,
            "network": {"osm": {"path": "x.osm"}},
            "providers": providers,
            "areas": {"path": "bg.shp", "id_column": "GEOID", "population_column": "pop"},
            "base_dir": tmp_path,
        }
    )


def write_csv(path: Path, rows: list[dict], *, encoding: str = "utf-8") -> Path:
    pd.DataFrame(rows).to_csv(path, index=False, encoding=encoding)
    return path


CSV_COLUMNS = {
    "name": "Name",
    "address": "Street",
    "city": "City",
    "state": "State",
    "zip": "Zip",
    "lon": "Longitude",
    "lat": "Latitude",
    "phone": "Phone",
}


def otp_source(path: str = "otp.csv", **kw: object) -> dict:
    return {"name": "otp", "path": path, "category": "methadone", "columns": CSV_COLUMNS, **kw}


def row(
    name: str, street: str, lon: object, lat: object, *, zip_: str = "43215", **kw: object
) -> dict:
    return {
        "Name": name,
        "Street": street,
        "City": "Columbus",
        "State": "OH",
        "Zip": zip_,
        "Longitude": lon,
        "Latitude": lat,
        "Phone": "(614) 555-0100",
        **kw,
    }


def small_geocoder() -> OfflineGeocoder:
    pts = pd.DataFrame(
        {
            "address": ["100 N HIGH ST", "200 N HIGH ST", "50 E BROAD ST", "300 N HIGH ST"],
            "zip": ["43215", "43215", "43215", "43215"],
            "lon": [-83.0000, -83.0000, -82.9980, -83.0000],
            "lat": [39.9630, 39.9650, 39.9620, 39.9670],
        }
    )
    return OfflineGeocoder(ReferenceIndex.from_frames(pts, crs="EPSG:32617"))


def accounting_ok(report: dict) -> None:
    for rep in report.values():
        total = rep["rows_out"] + rep["rejected"] + rep["outside"] + rep["merged"] + rep["dropped"]
        assert total == rep["rows_in"], rep


# -- reading and the schema ----------------------------------------------------------------


def test_csv_with_coordinates_gives_schema_and_stable_ids(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "otp.csv",
        [
            row("Clinic A", "10 N High St", -83.000, 39.960),
            row("Clinic B", "500 E Main St", -82.980, 39.950, zip_="43205"),
        ],
    )
    cfg = make_cfg(tmp_path, [otp_source(date="2020-07-04")])
    res = load_providers(cfg, REGION)
    p = res.providers
    assert list(p.columns[: len(PROVIDER_COLUMNS)]) == list(PROVIDER_COLUMNS)
    assert p.crs.to_epsg() == 4326
    assert len(p) == 2
    assert set(p["category"]) == {"methadone"}
    assert set(p["geocode_quality"]) == {"source"}
    assert p["phone"].tolist() == ["614-555-0100"] * 2
    assert p["capacity"].tolist() == [1, 1]
    assert p["show_exact"].tolist() == [True, True]
    assert p["source_date"].tolist() == ["2020-07-04"] * 2
    assert p["in_region"].all()
    assert p.geometry.x.round(3).tolist() == [-83.0, -82.98]
    # ids are stable across rebuilds and across reordering of the file
    again = load_providers(cfg, REGION).providers
    assert again["id"].tolist() == p["id"].tolist()
    write_csv(
        tmp_path / "otp.csv",
        [
            row("Clinic B", "500 E Main St", -82.980, 39.950, zip_="43205"),
            row("Clinic A", "10 N High St", -83.000, 39.960),
        ],
    )
    reordered = load_providers(cfg, REGION).providers
    assert sorted(reordered["id"]) == sorted(p["id"])
    assert res.report["otp"]["rows_in"] == 2
    assert res.report["otp"]["rows_out"] == 2
    assert res.report["otp"]["quality"] == {"source": 2}
    assert res.rejects.empty


def test_utf8_bom_header_is_read(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "otp.csv", [row("Clinic A", "10 N High St", -83.0, 39.96)], encoding="utf-8-sig"
    )
    assert (tmp_path / "otp.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    res = load_providers(make_cfg(tmp_path, [otp_source()]), REGION)
    assert res.providers["name"].tolist() == ["Clinic A"]


def test_wrong_encoding_names_file_offset_and_working_encoding(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "otp.csv",
        [
            row("Clinic A", "10 N High St", -83.0, 39.96),
            row("Clínica Peña", "20 N High St", -83.0, 39.961),
        ],
        encoding="latin-1",
    )
    with pytest.raises(InputError) as err:
        load_providers(make_cfg(tmp_path, [otp_source()]), REGION)
    msg = str(err.value)
    assert "otp.csv" in msg
    assert "not valid utf-8 at byte" in msg
    assert "line 3" in msg
    assert "latin-1" in msg
    # with the declared encoding it reads
    res = load_providers(make_cfg(tmp_path, [otp_source(encoding="latin-1")]), REGION)
    assert "Clínica Peña" in set(res.providers["name"])


def test_unknown_column_lists_the_file_columns(tmp_path: Path) -> None:
    write_csv(tmp_path / "otp.csv", [row("Clinic A", "10 N High St", -83.0, 39.96)])
    cols = {**CSV_COLUMNS, "address": "Street Address"}
    with pytest.raises(InputError) as err:
        load_providers(make_cfg(tmp_path, [otp_source(columns=cols)]), REGION)
    msg = str(err.value)
    assert "otp.csv" in msg
    assert "'Street Address'" in msg
    assert "'Street'" in msg and "'Latitude'" in msg


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.csv: file not found"):
        load_providers(make_cfg(tmp_path, [otp_source(path="nope.csv")]), REGION)


# -- coordinates ---------------------------------------------------------------------------


def test_coordinate_checks_zero_swapped_outside(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "otp.csv",
        [
            row("Good", "10 N High St", -83.0, 39.96),  # row 2
            row("Zero", "11 N High St", 0, 0),  # row 3: reject
            row("Swapped", "500 E Main St", 39.95, -82.98),  # row 4: fixed
            row(
                "Far away",
                "1 Market St",
                -122.4,
                37.79,
                zip_="94105",
                City="San Francisco",
                State="CA",
            ),  # row 5: outside
            row("Wrong point", "12 N High St", -84.5, 39.1),  # row 6: ZIP in region -> reject
            row("Not numbers", "13 N High St", "abc", "def"),  # row 7: reject
            row(
                "In buffer", "9 Buffer Rd", -82.945, 39.97, zip_="43219"
            ),  # row 8: kept, not in region
        ],
    )
    res = load_providers(make_cfg(tmp_path, [otp_source()]), REGION)
    p = res.providers.set_index("name")
    assert set(p.index) == {"Good", "Swapped", "In buffer"}
    assert p.loc["Swapped", "notes"] == "swapped lon/lat"
    assert (p.loc["Swapped", "lon"], p.loc["Swapped", "lat"]) == (-82.98, 39.95)
    assert not p.loc["In buffer", "in_region"]
    assert p.loc["Good", "in_region"]
    rej = res.rejects.set_index("row")
    assert rej.loc[3, "reason"] == "coordinates (0, 0)"
    assert rej.loc[6, "reason"].startswith("coordinates outside region + buffer")
    assert rej.loc[7, "reason"] == "coordinates are not numbers"
    assert rej.loc[3, "Name"] == "Zero"  # raw fields kept
    assert set(rej["file"]) == {str(tmp_path / "otp.csv")}
    rep = res.report["otp"]
    assert (rep["rows_in"], rep["rows_out"], rep["rejected"], rep["outside"]) == (7, 3, 3, 1)
    assert rep["swapped"] == 1
    accounting_ok(res.report)


def test_projected_coordinates_declared_as_lonlat_is_an_error(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "otp.csv", [row("A", "10 N High St", 330000.0 + i, 4425000.0) for i in range(3)]
    )
    with pytest.raises(InputError, match=r"cannot be lon/lat.*Set `crs:`"):
        load_providers(make_cfg(tmp_path, [otp_source()]), REGION)
    # declared in the right CRS they are reprojected
    res = load_providers(make_cfg(tmp_path, [otp_source(crs="EPSG:32617")]), REGION)
    assert len(res.providers) == 1  # three rows at one address merge into one site
    assert res.report["otp"]["merged"] == 2


# -- addresses, geocoding and rejects ------------------------------------------------------


def test_address_only_rows_are_geocoded_or_rejected_with_reasons(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "list.csv",
        [
            row("Geocodes", "100 North High Street, Suite 4", "", ""),  # row 2: address point
            row("Nothing", "", "", ""),  # row 3: reject
            row("PO box", "PO Box 12", "", ""),  # row 4: reject
            row("Unparseable", "Behind the library", "", ""),  # row 5: reject
            row(
                "Elsewhere", "1 Main St", "", "", zip_="45202", City="Cincinnati"
            ),  # row 6: outside
            row("Unknown street", "77 Nowhere Blvd", "", ""),  # row 7: ZIP level
            # row 8: ZIP unknown to the reference, but Columbus, OH is where row 2 was placed
            row("Lost", "5 Nowhere Ln", "", "", zip_="43230"),
        ],
    )
    cfg = make_cfg(tmp_path, [otp_source(path="list.csv")])
    res = load_providers(cfg, REGION, geocoder=small_geocoder())
    p = res.providers.set_index("name")
    assert p.loc["Geocodes", "geocode_quality"] == "address_point"
    assert p.loc["Geocodes", "lon"] == pytest.approx(-83.0)
    assert p.loc["Unknown street", "geocode_quality"] == "zip"
    assert "geocoded by offline" in p.loc["Geocodes", "notes"]
    rej = res.rejects.set_index("row")["reason"].to_dict()
    assert rej == {
        3: "no address and no coordinates",
        4: "PO box is not a site address: 'PO Box 12'",
        5: "unparseable address 'Behind the library' (no house number and street)",
        8: "address not found by the geocoder",
    }
    assert res.report["otp"]["outside"] == 1
    assert res.report["otp"]["quality"] == {"address_point": 1, "zip": 1}
    accounting_ok(res.report)

    # without a geocoder, address-only rows in the area are rejected saying so
    write_csv(
        tmp_path / "list.csv",
        [
            row("Anchor", "1 N High St", -83.0, 39.96),
            row("Needs geocoding", "100 N High St", "", ""),
        ],
    )
    res = load_providers(cfg, REGION)
    assert res.rejects["reason"].tolist() == ["no coordinates and no geocoder configured"]


def test_partial_ok_false_stops_the_build(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "otp.csv", [row("A", "10 N High St", -83.0, 39.96), row("Zero", "1 X St", 0, 0)]
    )
    with pytest.raises(
        InputError, match=r"1 rows of source 'otp' cannot be used.*row 3: coordinates \(0, 0\)"
    ):
        load_providers(make_cfg(tmp_path, [otp_source(partial_ok=False)]), REGION)


def test_category_map_unknown_and_drop(tmp_path: Path) -> None:
    rows = [
        {**row("A", "10 N High St", -83.0, 39.96), "Type": "OTP"},
        {**row("B", "20 N High St", -83.0, 39.962), "Type": "Detox"},
        {**row("C", "30 N High St", -83.0, 39.964), "Type": "mystery"},
        {**row("D", "40 N High St", -83.0, 39.966), "Type": "naltrexone"},
    ]
    write_csv(tmp_path / "mixed.csv", rows)
    src = {
        "name": "mixed",
        "path": "mixed.csv",
        "columns": {**CSV_COLUMNS, "category": "Type"},
        "category_map": {"OTP": "methadone", "Detox": "drop"},
    }
    res = load_providers(make_cfg(tmp_path, [src]), REGION)
    assert sorted(res.providers["category"]) == ["methadone", "naltrexone"]
    assert res.rejects["reason"].tolist() == [
        "unknown category value 'mystery'; add it to `category_map`"
    ]
    assert res.report["mixed"]["dropped"] == 1
    accounting_ok(res.report)


# -- merging ---------------------------------------------------------------------------------


def test_same_site_in_two_lists_is_merged_with_both_sources(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "a.csv",
        [row("CompDrug", "547 East 11th Ave.", -82.99190, 39.99361, zip_="43211")],
    )
    write_csv(
        tmp_path / "b.csv",
        [
            row(
                "COMPDRUG INC", "547 E ELEVENTH AVENUE", -82.99150, 39.99370, zip_="43211"
            ),  # same address
            row("Maryhaven", "1791 Alum Creek Dr", -82.94035, 39.93045, zip_="43207"),
            row(
                "Maryhaven Inc.", "1793 Alum Creek Drive", -82.94040, 39.93050, zip_="43207"
            ),  # 5 m away
        ],
    )
    write_csv(
        tmp_path / "c.csv", [row("CompDrug", "547 E 11th Ave", -82.99190, 39.99361, zip_="43211")]
    )
    cfg = make_cfg(
        tmp_path,
        [
            otp_source(path="a.csv", name="a", date="2020"),
            otp_source(path="b.csv", name="b", date="2021"),
            {**otp_source(path="c.csv", name="c"), "category": "buprenorphine"},
        ],
    )
    res = load_providers(cfg, REGION)
    p = res.providers
    meth = p[p["category"] == "methadone"].set_index("name")
    assert len(meth) == 2
    assert meth.loc["CompDrug", "source"] == "a; b"
    assert meth.loc["CompDrug", "source_date"] == "2020; 2021"
    assert meth.loc["CompDrug", "services"] == "methadone; buprenorphine"
    assert meth.loc["Maryhaven", "source"] == "b"
    bup = p[p["category"] == "buprenorphine"]
    assert bup["services"].tolist() == ["buprenorphine; methadone"]  # not merged across categories
    assert res.report["b"]["merged"] == 2
    assert res.report["a"]["rows_out"] == 1
    how = res.merges.set_index(["source", "row"])["how"].to_dict()
    assert how == {("b", 2): "same address", ("b", 4): "within 30 m, similar name"}
    assert set(res.merges["kept_id"]) <= set(p["id"])
    accounting_ok(res.report)


def test_practitioner_rows_collapse_to_sites_with_capacity(tmp_path: Path) -> None:
    rows = [
        ("Ann", "Lee", "100 N High St", "", "FRANKLIN"),
        ("Ann", "Lee", "100 North High Street", "", "DELAWARE"),  # same person, other county
        ("Bo", "Ng", "100 N. High St.", "Suite 2", "FRANKLIN"),
        ("Cy", "Diaz", "Crossroads Care", "100 N High St, Ste. #200", "FRANKLIN"),
        ("Di", "Fox", "50 E Broad St", "", "FRANKLIN"),
        ("Ed", "Gray", "9 Elm St", "", "HAMILTON"),  # not in the reference, ZIP elsewhere
    ]
    frame = pd.DataFrame(
        [
            {"First": f, "Last": la, "Address": a, "Address Complement": a2,
             "City": "Cincinnati" if c == "HAMILTON" else "Columbus",
             "County": c, "State": "Ohio",
             "Postal Code": "43215-1234" if c != "HAMILTON" else "45202",
             "Telephone": "614-555-0101"}
            for f, la, a, a2, c in rows
        ]
    )  # fmt: skip
    frame.to_csv(tmp_path / "bup.csv", index=False, encoding="utf-8-sig")
    src = {
        "name": "bup-locator",
        "path": "bup.csv",
        "category": "buprenorphine",
        "columns": {
            "first_name": "First",
            "last_name": "Last",
            "address": "Address",
            "address2": "Address Complement",
            "city": "City",
            "state": "State",
            "zip": "Postal Code",
            "phone": "Telephone",
        },
    }
    res = load_providers(make_cfg(tmp_path, [src]), REGION, geocoder=small_geocoder())
    p = res.providers.set_index("address")
    assert len(p) == 2
    high = p.loc["100 N High St"]
    assert high["capacity"] == 3
    assert high["name"] == "Buprenorphine prescribers (3)"
    assert high["state"] == "OH" and high["zip"] == "43215"
    assert p.loc["50 E Broad St", "capacity"] == 1
    assert p.loc["50 E Broad St", "name"] == "Buprenorphine prescriber"
    assert set(p["geocode_quality"]) == {"address_point"}
    rep = res.report["bup-locator"]
    assert (rep["rows_in"], rep["rows_out"], rep["merged"], rep["outside"]) == (6, 2, 3, 1)
    assert set(res.merges["how"]) == {"practitioners at one address"}
    accounting_ok(res.report)


# -- vector formats --------------------------------------------------------------------------


def _gdf(crs: object) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "name1": ["A clinic", "B clinic"],
            "street1": ["10 N High St", "20 N High St"],
            "zip": ["43215", "43215"],
            "category": ["methadone", "naltrexone/vivitrol"],
        },
        geometry=gpd.points_from_xy([-83.0, -83.0], [39.96, 39.962]),
        crs=crs,
    )


VECTOR_SOURCE = {
    "name": "moud",
    "columns": {"name": "name1", "address": "street1", "zip": "zip", "category": "category"},
    "category_map": {"methadone": "methadone", "naltrexone/vivitrol": "naltrexone"},
}


@pytest.mark.parametrize("suffix", ["gpkg", "geojson", "shp"])
def test_vector_formats_read_geometry(tmp_path: Path, suffix: str) -> None:
    gdf = _gdf("EPSG:4326").to_crs("EPSG:3735")  # Ohio South state plane (ft)
    if suffix == "geojson":
        gdf = gdf.to_crs(4326)
    gdf.to_file(tmp_path / f"moud.{suffix}")
    res = load_providers(make_cfg(tmp_path, [{**VECTOR_SOURCE, "path": f"moud.{suffix}"}]), REGION)
    p = res.providers.sort_values("name")
    assert p["category"].tolist() == ["methadone", "naltrexone"]
    np.testing.assert_allclose(p["lat"], [39.96, 39.962], atol=1e-6)


@pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")
def test_layer_without_crs_needs_config_crs(tmp_path: Path) -> None:
    _gdf(None).to_file(tmp_path / "moud.shp")  # a shapefile without .prj, as handed over
    assert not (tmp_path / "moud.prj").exists()
    with pytest.raises(InputError, match="declares no CRS; add `crs:`"):
        load_providers(make_cfg(tmp_path, [{**VECTOR_SOURCE, "path": "moud.shp"}]), REGION)
    cfg = make_cfg(tmp_path, [{**VECTOR_SOURCE, "path": "moud.shp", "crs": "EPSG:4326"}])
    assert len(load_providers(cfg, REGION).providers) == 2


# -- real data -------------------------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.skipif(
    not SHARED.is_dir(), reason="needs ../shared/data/franklin-oh (real Franklin data)"
)
def test_franklin_oeps_providers() -> None:
    from etl.config import load_config

    full = load_config(ROOT / "geodata" / "configs" / "franklin-oh.yaml")
    # The OEPS list alone (the config also reads four SAMHSA lists and geocodes them).
    cfg = full.model_copy(
        update={
            "providers": [p for p in full.providers if p.name == "oeps-moud"],
            "geocoding": None,
        }
    )
    region = gpd.read_file(cfg.reader_path(cfg.areas.path)).to_crs(4326).union_all()
    res = load_providers(cfg, region)
    rep = res.report["oeps-moud"]
    # 59 OEPS rows lie in Franklin County (countyGEOID 39049) and none in the 5 km buffer;
    # 6 are the same site listed twice (SAMHSA and vivitrol.com naltrexone rows).
    assert rep["rows_in"] == 14_773
    assert rep["rows_in"] - rep["outside"] == 59
    assert (rep["rows_out"], rep["merged"], rep["rejected"]) == (53, 6, 0)
    p = res.providers
    assert p["category"].value_counts().to_dict() == {
        "naltrexone": 38,
        "buprenorphine": 13,
        "methadone": 2,
    }
    assert p["in_region"].all()
    compdrug = p[p["address"] == "547 East 11th Avenue"]
    assert set(compdrug["category"]) == {"methadone", "buprenorphine", "naltrexone"}
    accounting_ok(res.report)


# -- quality report ------------------------------------------------------------------------------


def test_quality_report_html_and_csv(tmp_path: Path) -> None:
    from etl.outputs.quality_report import summary_table, write_quality_report

    write_csv(
        tmp_path / "a.csv",
        [
            row("Clinic A", "10 N High St", -83.0, 39.96),
            row("Zero <b>", "11 N High St", 0, 0),
            row("Clinic A", "10 North High Street", -83.0, 39.96),
            row(
                "Far", "1 Market St", -122.4, 37.79, zip_="94105", City="San Francisco", State="CA"
            ),
        ],
    )
    res = load_providers(make_cfg(tmp_path, [otp_source(path="a.csv", name="a")]), REGION)
    table = summary_table(res)
    assert table["source"].tolist() == ["a", "TOTAL"]
    first = table.iloc[0]
    assert (
        first["rows_in"],
        first["rows_out"],
        first["rejected"],
        first["outside"],
        first["merged"],
    ) == (4, 1, 1, 1, 1)
    assert first["quality_source"] == 1
    assert table["adds_up"].all()
    paths = write_quality_report(res, tmp_path / "out", region="Test region")
    assert sorted(p.name for p in paths.values()) == [
        "providers_merges.csv",
        "providers_quality.csv",
        "providers_quality.html",
        "providers_rejects.csv",
    ]
    page = paths["html"].read_text(encoding="utf-8")
    assert "Every input row is accounted for" in page
    assert "coordinates (0, 0)" in page
    assert "Zero &lt;b&gt;" in page and "Zero <b>" not in page  # raw fields are escaped
    rejects = pd.read_csv(paths["rejects"])
    assert rejects[["row", "reason"]].values.tolist() == [[3, "coordinates (0, 0)"]]
    merges = pd.read_csv(paths["merges"])
    assert merges[["source", "row", "how"]].values.tolist() == [["a", 4, "same address"]]
