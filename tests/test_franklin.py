"""Facts a person can check about the Franklin County, Ohio build (real data in ../shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from etl.bundle.store import Bundle
from etl.config import load_config
from etl.pipeline import run_build
from tests.conftest import CONFIGS

pytestmark = [pytest.mark.shared, pytest.mark.xdist_group("franklin")]


@pytest.fixture(scope="module")
def bundle(franklin: Path, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    geo = tmp_path_factory.mktemp("franklin-geo")
    run_build(load_config(CONFIGS / "franklin-oh.yaml"), geo, progress=False)
    return Bundle.open(geo / "franklin-oh")


def test_networks(bundle: Bundle) -> None:
    net = bundle.manifest["stages"]["network"]
    # The extract: 11,967 street ways (12,006 highway ways less proposed/raceway/construction/
    # area=yes), 72,813 nodes, no dangling node references.
    assert net["osm_ways"] == 11_967 and net["osm_nodes"] == 72_813
    # Unsimplified drive network, largest strongly connected component.
    assert net["drive"]["nodes"] == 61_858 and net["drive"]["edges"] == 131_981
    # Its junctions (what OSMnx's simplified graph keeps) match the ≈17.3k the data notes give.
    assert 17_000 <= net["drive"]["junctions"] <= 17_600
    assert net["walk"]["nodes"] == 64_131
    drive = bundle.network("drive")
    assert drive.crs == "EPSG:32617"
    assert drive.lon.min() >= -83.245 and drive.lon.max() <= -82.787
    assert drive.lat.min() >= 39.859 and drive.lat.max() <= 40.112


def test_areas_and_people(bundle: Bundle) -> None:
    areas = bundle.read_layer("areas")
    assert len(areas) == 887
    assert (
        areas["area_id"].str.len().eq(12).all() and areas["area_id"].str.startswith("39049").all()
    )
    assert int(areas["population"].sum()) == 1_163_414
    # Every person sits at one of the 15,127 populated 2010 census blocks (22,826 in all).
    people = bundle.read_layer("people")
    assert len(people) == 15_127
    assert people["weight"].sum() == pytest.approx(1_163_414, abs=1)
    # The OSM extract covers central Columbus only: people more than 300 m from its streets
    # (half the county) are not covered, never reached or in a desert; one number per mode.
    coverage = bundle.manifest["stages"]["access"]["coverage"]
    for mode in ("drive", "walk"):
        c = coverage[mode]
        assert c["cover_m"] == 300 and c["people"] == 1_163_414
        assert 540_000 < c["covered"] < 600_000
        assert c["covered"] + c["not_covered"] == 1_163_414


def test_providers_from_five_lists(bundle: Bundle) -> None:
    prov = bundle.read_layer("providers")
    report = bundle.manifest["stages"]["providers"]["sources"]
    # OEPS lists 59 Franklin providers (44 naltrexone/vivitrol, 13 buprenorphine, 2 methadone);
    # 6 are listed twice (SAMHSA and vivitrol.com) and merge.
    assert report["oeps-moud"]["rows_in"] == 14_773
    assert report["oeps-moud"]["rows_out"] + report["oeps-moud"]["merged"] == 59
    for src in report.values():  # every input row is accounted for
        assert src["rows_in"] == (
            src["rows_out"] + src["rejected"] + src["outside"] + src["merged"] + src["dropped"]
        )
    counts = prov["category"].value_counts().to_dict()
    # Rows whose address is not found fall back to the Census ZIP centre (us/zcta centres):
    # 58 locator prescribers and one OTP directory row are placed at their ZIP (quality "zip").
    assert counts == {
        "buprenorphine": 266,
        "pharmacy": 108,
        "treatment_facility": 48,
        "naltrexone": 38,
        "methadone": 12,
    }
    assert report["samhsa-bup-locator"]["quality"]["zip"] == 58
    # Pharmacies: the 2021 vaccine sites (a partial list, said so on every surface).
    assert report["ohio-vaccine-pharmacies"]["rows_out"] == 108
    # OTPs: the SAMHSA directory and the geocoded list merge into one site each.
    otp = prov[prov["category"] == "methadone"]
    assert otp["source"].str.contains("samhsa-otp-directory").sum() >= 9
    inside = prov[prov["on_network"]]["category"].value_counts().to_dict()
    assert inside == {
        "buprenorphine": 172,
        "pharmacy": 68,
        "treatment_facility": 39,
        "naltrexone": 27,
        "methadone": 8,
    }
    assert (prov.loc[prov["on_network"], "snap_m_drive"] <= 1500).all()
    assert (bundle.path / bundle.manifest["stages"]["providers"]["reports"]["html"]).exists()


def test_barriers_and_counties(bundle: Bundle) -> None:
    barriers = bundle.manifest["stages"]["barriers"]["barriers"]
    assert barriers == [{"rule": "Ohio 500-ft rule", "status": "prohibited", "area_km2": 44.69,
                         "people_inside": 73_865, "otps_inside": 0}]  # fmt: skip
    counties = bundle.read_layer("counties")
    franklin = counties[(counties["fips"] == "39049")]
    wonder = franklin[franklin["period"] == "2009-2018 pooled"].iloc[0]
    assert wonder["deaths"] == 1520 and wonder["rate_per_100k"] == pytest.approx(12.4)
    ohio = franklin[franklin["source"].str.contains("Ohio") & (franklin["year"] == 2020)]
    assert int(ohio["deaths"].iloc[0]) == 746
    # No count from 1 to 9 anywhere.
    deaths = counties["deaths"].dropna()
    assert not ((deaths >= 1) & (deaths <= 9)).any()


def test_access_summary(bundle: Bundle) -> None:
    summary = bundle.manifest["stages"]["access"]["summary"]
    meth = summary["methadone_drive"]
    assert meth["threshold_min"] == 30
    total = meth["people_within"] + meth["people_in_desert"] + meth["people_not_covered"]
    assert total == pytest.approx(1_163_414, abs=2)
    times = bundle.access_arrays("drive")["time_methadone"]
    assert np.isfinite(times).all()  # one strongly connected component: every node reaches care
    iso = bundle.read_layer("isochrones")
    # methadone, buprenorphine, naltrexone, treatment facilities, pharmacies × modes × bands
    assert len(iso) == 5 * 2 * 3
