"""Partial pharmacy lists with packed addresses, and ZIP centres as an independent fallback.

The vaccine-site reader (``address_format: packed``) is tested on the address shapes of the
real Ohio list and through the CLI on a Franklin-like fixture (Two Rivers with a
vaccine-site-shaped pharmacy list, one row in another state). The ZIP-centre reference
(``use: zip_centres``) is tested on a small index and, where ../shared is present, on the
OEPS Franklin rows (geocoded share at least 90 % from independent references only).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from etl.config import ReferenceSource
from etl.inputs.geocode import OfflineGeocoder, ReferenceIndex, build_reference_index
from etl.inputs.packed import split_packed
from tests import real_shaped_region as tr

CLI = [str(Path(sys.executable).with_name("access-atlas"))]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("4548 E. MAIN ST.|Whitehall, OH 43213", ("4548 E. MAIN ST.", "Whitehall", "OH", "43213")),
        ("2290 STRINGTOWN RD GROVE CITY, OH 43123",
         ("2290 STRINGTOWN RD", "GROVE CITY", "OH", "43123")),
        ("6201 E Broad St Columbus, OH 43213-5500", ("6201 E Broad St", "Columbus", "OH", "43213")),
        ("3433 Agler Rd Suite 2800|Columbus, OH 43219",
         ("3433 Agler Rd Suite 2800", "Columbus", "OH", "43219")),
        ("299 West Bridge Street Dublin, OH 43017",
         ("299 West Bridge Street", "Dublin", "OH", "43017")),
        ("4890 N HIGH ST COLUMBUS, OH 43214-1552", ("4890 N HIGH ST", "COLUMBUS", "OH", "43214")),
        ("1444 W 5TH AVE|GRANDVIEW HEIGHTS, OH 4321..",
         ("1444 W 5TH AVE", "GRANDVIEW HEIGHTS", "OH", "")),
        ("60 Worthington Mall|Columbus, OH 43085-5206",
         ("60 Worthington Mall", "Columbus", "OH", "43085")),
        ("no zip here", ("no zip here", "", "", "")),
    ],
)  # fmt: skip
def test_split_packed_addresses(text: str, want: tuple[str, str, str, str]) -> None:
    assert split_packed(text) == want


def _small_index() -> ReferenceIndex:
    points = pd.DataFrame(
        {
            "address": ["10 MAIN ST", "20 MAIN ST"],
            "city": ["TOWN", "TOWN"],
            "zip": ["45030", "45030"],
            "lon": [-84.80, -84.81],
            "lat": [39.13, 39.13],
        }
    )
    return ReferenceIndex.from_frames(points, crs="EPSG:32616")


def test_zip_centres_are_an_independent_fallback() -> None:
    index = _small_index()
    before = OfflineGeocoder(index).geocode(
        pd.DataFrame({"address": ["5 Unknown Rd"], "city": [""], "state": ["OH"], "zip": ["45031"]})
    )
    assert before["geocode_quality"].iloc[0] in ("", None)  # ZIP 45031 unknown: not placed
    n = index.set_zip_centres(
        pd.DataFrame({"zip": ["45031", "45030", "bad"], "lon": [-84.70, -84.90, 0.0],
                      "lat": [39.20, 39.10, 0.0]})
    )  # fmt: skip
    assert n == 2
    geo = OfflineGeocoder(index).geocode(
        pd.DataFrame({"address": ["5 Unknown Rd", "7 Nowhere Ln"], "city": ["", ""],
                      "state": ["OH", "OH"], "zip": ["45031", "45030"]})
    )  # fmt: skip
    assert geo["geocode_quality"].tolist() == ["zip", "zip"]
    assert geo["lon"].iloc[0] == pytest.approx(-84.70, abs=1e-6)
    assert geo["lat"].iloc[0] == pytest.approx(39.20, abs=1e-6)
    # the independent centre wins over the median of the other references' points
    assert geo["lon"].iloc[1] == pytest.approx(-84.90, abs=1e-6)


def _vaccine_list(path: Path) -> None:
    rows = [
        (1, "Kroger Pharmacy", "10 State Line Road|Harrison, OH 45030", "", 39.1315, -84.8150),
        (2, "Walgreens #1234", "2 Dearborn Pike LAWRENCEBURG, IN 47025", "47025", 39.121,
         -84.8548),
        (3, "Giant Eagle Pharmacy", "14 State Line Road|Harrison, OH 45030", "45030", 39.1452,
         -84.8150),
        (4, "OhioHealth Kenton Clinic", "1 Main St|Kenton, OH 43326", "43326", 40.64, -75.21),
    ]  # fmt: skip
    pd.DataFrame(
        [{"id": i, "name": n, "address": a, "address2": "", "city": "", "state": "", "zip": z,
          "phone": "(614) 555-0100", "latitude": la, "longitude": lo}
         for i, n, a, z, la, lo in rows]
    ).to_csv(path, index=False)  # fmt: skip


@pytest.fixture(scope="module")
def two_rivers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pharm-tr")
    (root / "raw").mkdir()
    _vaccine_list(root / "raw" / "vaccine_sites.csv")
    base = yaml_providers()
    base.append(
        {"name": "vaccine-pharmacies", "path": "raw/vaccine_sites.csv", "category": "pharmacy",
         "address_format": "packed", "partial": "2021 vaccine sites only",
         "source": "vaccine sites (test)",
         "columns": {"name": "name", "address": "address", "city": "city", "state": "state",
                     "zip": "zip", "phone": "phone", "lat": "latitude", "lon": "longitude"}}
    )  # fmt: skip
    cfg = tr.write_region(root, providers=base)
    cmd = [*CLI, "build", str(cfg), "--geodata-dir", str(root / "geo"), "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return root / "geo" / "two-rivers"


def yaml_providers() -> list[dict]:
    import yaml

    tmp = Path(__import__("tempfile").mkdtemp())
    cfg = yaml.safe_load(tr.write_region(tmp).read_text())
    return cfg["providers"]


def test_franklin_like_pharmacies_are_read_and_labelled_partial(two_rivers: Path) -> None:
    prov = gpd.read_parquet(two_rivers / "layers" / "providers.parquet")
    ph = prov[prov["category"] == "pharmacy"].set_index("name")
    assert sorted(ph.index) == ["Giant Eagle Pharmacy", "Kroger Pharmacy", "Walgreens #1234"]
    assert ph.loc["Kroger Pharmacy", "address"] == "10 State Line Road"
    assert ph.loc["Kroger Pharmacy", "city"] == "Harrison"
    assert ph.loc["Kroger Pharmacy", "zip"] == "45030"
    assert ph.loc["Walgreens #1234", "city"] == "Lawrenceburg"
    assert ph.loc["Walgreens #1234", "state"] == "IN"
    assert (ph["list_note"] == "2021 vaccine sites only").all()
    manifest = json.loads((two_rivers / "manifest.json").read_text())
    report = manifest["stages"]["providers"]
    src = next(v for k, v in report.get("sources", {}).items() if k == "vaccine-pharmacies")
    assert src["rows_in"] == 4 and src.get("outside") == 1  # the row in another state
    # partial everywhere it appears: legend, methods page
    from layouts.methods import methods_page
    from layouts.reentry import partial_categories

    assert partial_categories(manifest) == {"pharmacy"}
    text = str(methods_page(manifest).to_plotly_json())
    assert "Partial lists" in text and "2021 vaccine sites only" in text


@pytest.mark.skipif(not (SHARED / "us").is_dir(), reason="../shared/data/us not present")
def test_franklin_oeps_rows_geocoded_from_independent_references() -> None:
    """≥ 90 % of the OEPS Franklin rows placed from references that share nothing with OEPS."""
    fr_data = SHARED / "franklin-oh"
    refs = [
        ReferenceSource(path=str(fr_data / "places" / "columbus_points_of_interest.csv"),
                        columns={"address": "LSN", "lon": "X", "lat": "Y"}),
        ReferenceSource(path=str(fr_data / "osm" / "columbus.osm.pbf")),
        ReferenceSource(path=str(fr_data / "transit" / "stops.txt"), format="gtfs"),
    ]  # fmt: skip
    oeps = gpd.read_file(fr_data / "providers" / "moud_us_oeps_2021.gpkg")
    fr = oeps[oeps["countyGEOID"] == "39049"].reset_index(drop=True)
    q = pd.DataFrame({"address": fr["street1"], "address2": fr["street2"], "city": fr["city"],
                      "state": fr["state"], "zip": fr["zip"]})  # fmt: skip
    before = OfflineGeocoder(build_reference_index(refs, crs="EPSG:32617")).geocode(q)
    zcta = ReferenceSource(path=str(SHARED / "us" / "zcta_centroids_2020.csv"), use="zip_centres",
                           columns={"zip": "GEOID", "lon": "LONG", "lat": "LAT"})  # fmt: skip
    after = OfflineGeocoder(build_reference_index([*refs, zcta], crs="EPSG:32617")).geocode(q)
    share_before = (before["geocode_quality"].fillna("") != "").mean()
    share_after = (after["geocode_quality"].fillna("") != "").mean()
    assert share_after >= 0.9 > share_before
    # the better levels are untouched by the fallback
    good = ["address_point", "street"]
    assert after["geocode_quality"].isin(good).sum() >= before["geocode_quality"].isin(good).sum()
