"""Tests for etl.inputs.barriers: buffer rules, zoning rules, sitable land, people inside."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pydantic import ValidationError
from shapely.geometry import Point, Polygon, box

from etl._errors import ConfigError, InputError
from etl.config import BufferRule, PoiSource, ZoningConfig
from etl.inputs.barriers import (
    BARRIER_COLUMNS,
    LEGAL_NOTE,
    POINT_CAVEAT,
    buffer_barriers,
    desert_and_blocked,
    people_inside,
    read_poi,
    read_zoning,
    sitable_land,
    zoning_barriers,
)

UTM = "EPSG:32617"
OHIO_RULE = {
    "name": "Ohio 500-ft rule",
    "citation": "Ohio Revised Code 5119.37(C)(4)",
    "applies_to": "treatment_program",
    "distance_ft": 500,
    "from": ["school", "child_care"],
}
#: a 64-gon (quad_segs=16) holds this share of its circle's area
POLYGON_SHARE = 64 / (2 * math.pi) * math.sin(2 * math.pi / 64)


def _points() -> gpd.GeoDataFrame:
    """Two schools 1 km apart and a child care centre, plus a library that no rule names."""
    xy = [(330_000, 4_425_000), (331_000, 4_425_000), (330_000, 4_426_000), (330_100, 4_425_000)]
    gdf = gpd.GeoDataFrame(
        {"poi_type": ["school", "school", "child_care", "library"]},
        geometry=[Point(p) for p in xy],
        crs=UTM,
    )
    return gdf.to_crs("EPSG:4326")


# --------------------------------------------------------------------------------------------
# buffer rules


def test_buffer_rule_model():
    rule = BufferRule.model_validate(OHIO_RULE)
    assert rule.metres == pytest.approx(152.4)
    assert rule.from_types == ["school", "child_care"]
    assert rule.describe() == ("No treatment program within 500 ft of: school, child care")
    assert BufferRule(name="x", citation="c", distance_m=100, from_types=["school"]).metres == 100
    with pytest.raises(ValidationError, match="exactly one"):
        BufferRule.model_validate({**OHIO_RULE, "distance_m": 152.4})
    with pytest.raises(ValidationError, match="exactly one"):
        BufferRule.model_validate({k: v for k, v in OHIO_RULE.items() if k != "distance_ft"})
    with pytest.raises(ValidationError, match="extra"):
        BufferRule.model_validate({**OHIO_RULE, "radius": 3})
    with pytest.raises(ValidationError):
        BufferRule.model_validate({**OHIO_RULE, "from": []})


def test_buffer_barriers_in_metres():
    rule = BufferRule.model_validate(OHIO_RULE)
    out = buffer_barriers(_points(), rule, crs=UTM)
    assert list(out.columns) == list(BARRIER_COLUMNS)
    assert len(out) == 1 and out.crs == UTM
    row = out.iloc[0]
    assert row["n_features"] == 3  # the library is not in the rule
    assert (row["status"], row["kind"], row["citation"]) == (
        "prohibited",
        "buffer",
        "Ohio Revised Code 5119.37(C)(4)",
    )
    assert row["legal_note"] == LEGAL_NOTE and "New Directions" in LEGAL_NOTE
    assert "3d Cir. 2007" in LEGAL_NOTE and "ADA" in LEGAL_NOTE
    assert row["caveat"] == POINT_CAVEAT and "parcel" in POINT_CAVEAT
    circle = math.pi * 152.4**2
    assert row["area_km2"] == pytest.approx(3 * circle * POLYGON_SHARE / 1e6, rel=1e-3)
    # 152.4 m from a school is the edge, in metres
    school = Point(330_000, 4_425_000)
    assert row.geometry.contains(Point(330_000 + 150, 4_425_000))
    assert not row.geometry.contains(Point(330_000 + 155, 4_425_000))
    assert row.geometry.boundary.distance(school) == pytest.approx(152.4, abs=0.5)


def test_buffer_barriers_refuses_degrees_and_missing_crs():
    rule = BufferRule.model_validate(OHIO_RULE)
    with pytest.raises(ConfigError, match="not projected"):
        buffer_barriers(_points(), rule, crs="EPSG:4326")
    with pytest.raises(InputError, match="no CRS"):
        buffer_barriers(_points().set_crs(None, allow_override=True), rule, crs=UTM)


def test_buffer_barriers_with_no_matching_points_is_empty():
    rule = BufferRule(name="x", citation="c", distance_m=100, from_types=["prison"])
    out = buffer_barriers(_points(), rule, crs=UTM)
    assert len(out) == 1 and out["n_features"].iloc[0] == 0 and out.geometry.iloc[0].is_empty
    assert out["area_km2"].iloc[0] == 0


# --------------------------------------------------------------------------------------------
# zoning


def _zones(crs: str | None = UTM) -> gpd.GeoDataFrame:
    bowtie = Polygon([(2000, 0), (3000, 1000), (3000, 0), (2000, 1000)])  # self-intersecting
    zones = gpd.GeoDataFrame(
        {"ZONE": ["R1", "C2", "M1", "M1"]},
        geometry=[
            box(0, 0, 1000, 1000),
            box(1000, 0, 2000, 1000),
            bowtie,
            box(0, 1000, 1000, 2000),
        ],
        crs=None,
    )
    zones.geometry = zones.geometry.translate(330_000, 4_420_000)
    if crs is not None:
        zones = zones.set_crs(UTM).to_crs(crs)
    return zones


def _rules() -> pd.DataFrame:
    return pd.DataFrame({"ZONE": ["R1", "C2", "M1"], "treatment_program": ["P", "C", "x"]})


def test_zoning_barriers_prohibited_and_conditional():
    out = zoning_barriers(_zones(), _rules(), code_col="ZONE", use="treatment_program",
                          citation="City Code 3363")  # fmt: skip
    assert list(out.columns) == list(BARRIER_COLUMNS)
    assert out["status"].tolist() == ["prohibited", "conditional"]
    assert out["sources"].tolist() == ["M1", "C2"]
    assert out["n_features"].tolist() == [2, 1]
    assert out.attrs["repaired"] == 1
    # the bow-tie becomes its two triangles (0.5 km² of the 1 km² square) plus the square
    assert out["area_km2"].tolist() == pytest.approx([1.5, 1.0])
    assert (out["legal_note"] == LEGAL_NOTE).all() and (out["citation"] == "City Code 3363").all()
    assert out.geometry.is_valid.all()


def test_zoning_layer_in_another_crs_is_reprojected():
    out = zoning_barriers(
        _zones("EPSG:4326"), _rules(), code_col="ZONE", use="treatment_program", crs=UTM
    )
    assert out.crs == UTM
    assert out["area_km2"].tolist() == pytest.approx([1.5, 1.0], rel=1e-6)


def test_zoning_layer_without_crs_is_refused():
    zones = _zones(None)
    zones.attrs["path"] = "zoning.shp"
    with pytest.raises(InputError, match=r"zoning\.shp: the zoning layer declares no CRS"):
        zoning_barriers(zones, _rules(), code_col="ZONE", use="treatment_program", crs=UTM)


def test_zone_code_missing_from_rule_table_names_file_row_and_code():
    zones = _zones()
    zones.loc[3, "ZONE"] = "PUD"
    zones.attrs["path"] = "zoning.geojson"
    rules = _rules()
    rules.attrs["path"] = "rules.csv"
    with pytest.raises(
        InputError, match=r"zoning\.geojson: feature 4: zone code 'PUD' .*rules\.csv"
    ):
        zoning_barriers(zones, rules, code_col="ZONE", use="treatment_program")


def test_bad_rule_table_is_refused():
    rules = _rules()
    rules.loc[1, "treatment_program"] = "maybe"
    with pytest.raises(InputError, match=r"row 3, column 'treatment_program': 'maybe'"):
        zoning_barriers(_zones(), rules, code_col="ZONE", use="treatment_program")
    twice = pd.concat([_rules(), pd.DataFrame({"ZONE": ["R1"], "treatment_program": ["X"]})])
    with pytest.raises(InputError, match=r"rows 2 and 5: zone code 'R1' is listed twice"):
        zoning_barriers(_zones(), twice, code_col="ZONE", use="treatment_program")
    with pytest.raises(InputError, match="no column 'clinic'"):
        zoning_barriers(_zones(), _rules(), code_col="ZONE", use="clinic")
    with pytest.raises(ConfigError, match="not projected"):
        zoning_barriers(_zones("EPSG:4326"), _rules(), code_col="ZONE", use="treatment_program")


def test_read_zoning_from_files(tmp_path):
    _zones().to_file(tmp_path / "zones.gpkg", engine="pyogrio")
    (tmp_path / "rules.csv").write_text("code,treatment_program\nR1,P\nC2,C\n", encoding="utf-8")
    cfg = ZoningConfig(path="zones.gpkg", code_column="ZONE", rules="rules.csv",
                       rules_code_column="code")  # fmt: skip
    zones, rules = read_zoning(cfg, base_dir=tmp_path)
    assert len(zones) == 4 and zones.crs == UTM
    with pytest.raises(InputError, match=r"zones\.gpkg: feature 3: zone code 'M1'.*rules\.csv"):
        zoning_barriers(zones, rules, code_col="ZONE", use=cfg.rule_column,
                        rules_code_col=cfg.rules_code_column)  # fmt: skip
    with pytest.raises(InputError, match="not found"):
        read_zoning(cfg.model_copy(update={"rules": "nope.csv"}), base_dir=tmp_path)
    with pytest.raises(ValidationError, match="extra"):
        ZoningConfig(path="z", code_column="Z", rules="r", colour="x")


# --------------------------------------------------------------------------------------------
# sitable land, desert and blocked, people inside


def test_sitable_land_and_desert_and_blocked():
    barriers = zoning_barriers(_zones(), _rules(), code_col="ZONE", use="treatment_program")
    region = gpd.GeoSeries([box(330_000, 4_420_000, 333_000, 4_422_000)], crs=UTM)
    land = sitable_land(region, barriers)
    # 6 km² minus the 1.5 km² prohibited; conditional land stays sitable
    assert land.area / 1e6 == pytest.approx(4.5)
    assert sitable_land(region, barriers, statuses=("prohibited", "conditional")).area / 1e6 == (
        pytest.approx(3.5)
    )
    deserts = gpd.GeoDataFrame(
        {"category": ["methadone", "pharmacy"], "mode": ["drive", "walk"]},
        geometry=[box(330_500, 4_420_000, 333_000, 4_420_500), box(0, 0, 1, 1)],
        crs=UTM,
    ).to_crs("EPSG:4326")
    both = desert_and_blocked(deserts, barriers)
    assert len(both) == 1 and both["category"].iloc[0] == "methadone"
    assert both["rule"].iloc[0] == "Zoning" and both["status"].iloc[0] == "prohibited"
    # the desert strip crosses M1's bow-tie (two 0.125 km² triangle tips: 0.25 km² of 0.5 km²)
    assert both["area_km2"].iloc[0] == pytest.approx(0.25, rel=1e-3)
    assert both.crs == "EPSG:4326"


def _two_areas_half_blocked() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Areas A (1 km², 1,000 people) and B (1 km², 400); a barrier on A's western half;
    the desert covers both areas and holds all 1,400 people."""
    areas = gpd.GeoDataFrame(
        {"area_id": ["A", "B"], "population": [1000, 400]},
        geometry=[box(330_000, 4_420_000, 331_000, 4_421_000),
                  box(331_000, 4_420_000, 332_000, 4_421_000)],
        crs=UTM,
    )  # fmt: skip
    barriers = gpd.GeoDataFrame(
        {"rule": ["Zoning"], "status": ["prohibited"], "citation": ["§ 1"], "legal_note": ["n"],
         "caveat": [""]},
        geometry=[box(330_000, 4_420_000, 330_500, 4_421_000)],
        crs=UTM,
    )  # fmt: skip
    deserts = gpd.GeoDataFrame(
        {"category": ["methadone"], "mode": ["drive"], "threshold_min": [30.0],
         "population": [1400], "share": [1.0]},
        geometry=[box(330_000, 4_420_000, 332_000, 4_421_000)],
        crs=UTM,
    ).to_crs("EPSG:4326")  # fmt: skip
    return areas, barriers, deserts


def test_desert_blocked_counts_the_people_on_blocked_land_not_the_whole_desert():
    areas, barriers, deserts = _two_areas_half_blocked()
    # by hand: the barrier covers 0.5 of A's 1 km², so 0.5 x 1,000 = 500 people; B none
    by_area = desert_and_blocked(deserts, barriers, areas=areas, crs=UTM)
    assert len(by_area) == 1
    assert by_area["population"].iloc[0] == pytest.approx(500, rel=1e-3)
    assert by_area["share"].iloc[0] == pytest.approx(500 / 1400, rel=1e-3)
    assert by_area["area_km2"].iloc[0] == pytest.approx(0.5, rel=1e-3)
    # people points spread evenly over each area (a 10 x 10 lattice) give the same count
    xs = (np.arange(10) + 0.5) * 100
    pts, weights = [], []
    for x0, pop in ((330_000, 1000), (331_000, 400)):
        for x in xs:
            for y in xs:
                pts.append(Point(x0 + x, 4_420_000 + y))
                weights.append(pop / 100)
    points = gpd.GeoDataFrame({"weight": weights}, geometry=pts, crs=UTM).to_crs("EPSG:4326")
    by_point = desert_and_blocked(deserts, barriers, people=points)
    assert by_point["population"].iloc[0] == pytest.approx(500)
    assert by_point["population"].iloc[0] == pytest.approx(by_area["population"].iloc[0], rel=1e-3)
    # without people the whole desert's count is not passed off as the blocked land's
    bare = desert_and_blocked(deserts, barriers)
    assert "population" not in bare.columns and "share" not in bare.columns


def test_people_inside_by_areal_weighting():
    areas = gpd.GeoDataFrame(
        {"population": [1000, 400]},
        geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)],
        crs=UTM,
    )
    polys = gpd.GeoSeries([box(0, 0, 500, 1000), box(900, 0, 1500, 1000), box(5000, 0, 6000, 1)],
                          crs=UTM, index=[7, 8, 9])  # fmt: skip
    people = people_inside(polys, areas.to_crs("EPSG:4326"), crs=UTM)
    assert people.index.tolist() == [7, 8, 9]
    assert people.tolist() == pytest.approx([500, 100 + 200, 0], rel=1e-4)
    with pytest.raises(InputError, match="no column 'pop'"):
        people_inside(polys, areas, crs=UTM, population_col="pop")


# --------------------------------------------------------------------------------------------
# the POI reader


def test_read_poi_multiline_fields_and_types(tmp_path):
    text = (
        "\ufeffX,Y,LSN,POI_NAME,POI_TYPE,POI_SOURCE\n"
        '-83.0,39.9,1 MAIN ST,Little Ones,Education - Daycare,"ODJFS 1\r\n"\n'
        '-83.1,39.95,2 OAK ST,"Oak\nElementary",Education - Elementary,\n'
        "-83.2,39.97,3 ELM ST,Shop,Retail - Services,\n"
        "-83.3,39.98,4 ASH ST,Ash High,Education - High,\n"
    )
    path = tmp_path / "poi.csv"
    path.write_text(text, encoding="utf-8", newline="")
    pts = read_poi(PoiSource(path=str(path)), path)
    assert pts["poi_type"].tolist() == ["child_care", "school", "school"]
    assert pts["name"].tolist() == ["Little Ones", "Oak Elementary", "Ash High"]
    assert pts["row"].tolist() == [2, 3, 5]
    assert pts.crs == "EPSG:4326" and pts.geometry.x.tolist() == [-83.0, -83.1, -83.3]
    bad = tmp_path / "bad.csv"
    bad.write_text(text.replace("-83.3,", ","), encoding="utf-8", newline="")
    with pytest.raises(InputError, match=r"bad\.csv: row 5, column 'X': '' is not a coordinate"):
        read_poi(PoiSource(path=str(bad)), bad)


# --------------------------------------------------------------------------------------------
# Franklin County, the real data


@pytest.mark.shared
def test_franklin_500_ft_rule(franklin):
    src = PoiSource(path="columbus_points_of_interest.csv")
    pts = read_poi(src, franklin / "places" / "columbus_points_of_interest.csv")
    assert pts["poi_type"].value_counts().to_dict() == {"child_care": 479, "school": 210}
    rule = BufferRule.model_validate(OHIO_RULE)
    barrier = buffer_barriers(pts, rule, crs=UTM)
    assert barrier["n_features"].iloc[0] == 689
    assert barrier["area_km2"].iloc[0] == pytest.approx(44.69, abs=0.01)

    # people inside, by areal weighting of 2010 block groups
    bg = gpd.read_file(
        f"zip://{franklin / 'census' / 'tl_2010_39049_bg10.zip'}!tl_2010_39049_bg10.shp",
        engine="pyogrio",
    )
    pop = pd.read_excel(franklin / "census" / "morpc_blockgroup_population_2010.xlsx",
                        dtype={"GEOID": str})  # fmt: skip
    bg = bg.merge(
        pop[["GEOID", "2010 Total Population"]].rename(
            columns={"GEOID": "GEOID10", "2010 Total Population": "population"}
        ),
        on="GEOID10",
    )
    assert len(bg) == 887 and bg["population"].sum() == 1_163_414
    people = people_inside(barrier, bg, crs=UTM).iloc[0]
    assert people == pytest.approx(73_865, abs=5)

    # the OTPs in Columbus: none sits inside a 500-ft buffer drawn around a point
    otp = pd.read_csv(franklin / "providers" / "otp_us_geocoded_oeps.csv", encoding="latin-1")
    otp = otp[(otp["CITY"].str.strip() == "Columbus") & (otp["STATE"] == "OH")]
    assert len(otp) == 9
    sites = gpd.GeoDataFrame(
        otp, geometry=gpd.points_from_xy(otp["Longitude"], otp["Latitude"]), crs="EPSG:4326"
    ).to_crs(UTM)
    blocked = barrier.geometry.iloc[0]
    assert int(sites.within(blocked).sum()) == 0
    nearest = np.array([pts.to_crs(UTM).distance(g).min() for g in sites.geometry])
    assert round(nearest.min()) == 298  # Maryhaven's stabilization centre, near a school
    assert shapely.get_num_geometries(blocked) > 100
