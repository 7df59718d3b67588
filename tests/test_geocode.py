"""Tests for etl.inputs.geocode: offline reference matching, and the online geocoders against
recorded responses served from 127.0.0.1 (see tests/data/recorded/README.md)."""

from __future__ import annotations

import csv
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest
import shapely
from pydantic import ValidationError
from pyproj import Geod

from etl._errors import InputError
from etl.config import (
    CensusConfig,
    GeocodingConfig,
    NominatimConfig,
    ReferenceSource,
    RegionConfig,
    load_config,
)
from etl.inputs.geocode import (
    CensusBatchGeocoder,
    GeocodeCache,
    GeocoderChain,
    NominatimGeocoder,
    OfflineGeocoder,
    ReferenceIndex,
    build_reference_index,
    geocoder_from_config,
    nominatim_quality,
    parse_census_batch,
    read_osm_reference,
    read_reference,
)
from etl.inputs.gtfs import is_gtfs, parse_stop_name, read_gtfs_reference

ROOT = Path(__file__).resolve().parents[1]
RECORDED = Path(__file__).parent / "data" / "recorded"
GEOD = Geod(ellps="WGS84")


def dist_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# -- a small reference built in code -----------------------------------------------------------

HIGH_ST = shapely.LineString([(-83.0, 39.95), (-83.0, 39.98)])
OLENTANGY = shapely.LineString([(-83.03, 40.00), (-83.02, 40.03)])


def reference() -> ReferenceIndex:
    pts = pd.DataFrame(
        {
            "address": [
                "100 N HIGH ST",
                "200 N HIGH ST",
                "300 N HIGH ST",
                "101 N HIGH ST",
                "50 E BROAD ST",
                "10 MAIN ST",  # Columbus
                "10 MAIN ST",  # Groveport: same address, another town
                "20 MAIN ST",
                "1791 ALUM CREEK DR",
            ],
            "zip": [
                "43215",
                "43215",
                "43215",
                "43215",
                "43215",
                "43215",
                "43125",
                "43125",
                "43207",
            ],
            "city": ["", "", "", "", "", "COLUMBUS", "GROVEPORT", "GROVEPORT", ""],
            "lon": [-83.0, -83.0, -83.0, -82.9998, -82.998, -82.99, -82.88, -82.881, -82.9404],
            "lat": [39.960, 39.962, 39.964, 39.960, 39.962, 39.955, 39.85, 39.851, 39.9304],
        }
    )
    streets = pd.DataFrame(
        {"name": ["North High Street", "Olentangy River Road"], "geometry": [HIGH_ST, OLENTANGY]}
    )
    centroids = pd.DataFrame(
        {"zip": ["43214", "43214"], "city": ["COLUMBUS", "COLUMBUS"], "state": ["OH", "OH"],
         "lon": [-83.05, -83.04], "lat": [40.02, 40.02]}
    )  # fmt: skip
    return ReferenceIndex.from_frames(pts, streets=streets, centroids=centroids, crs="EPSG:32617")


@pytest.fixture(scope="module")
def offline() -> OfflineGeocoder:
    return OfflineGeocoder(reference())


def one(
    geocoder: OfflineGeocoder, address: str, zip_: str = "", city: str = "", address2: str = ""
) -> dict:
    frame = pd.DataFrame(
        {
            "address": [address],
            "address2": [address2],
            "city": [city],
            "state": ["OH"],
            "zip": [zip_],
        }
    )
    return geocoder.geocode(frame).iloc[0].to_dict()


def test_address_point_matches_any_spelling(offline: OfflineGeocoder) -> None:
    for spelling in (
        "100 North High Street, Suite 4",
        "100 N. HIGH ST.",
        "100 n high street 2nd floor",
    ):
        r = one(offline, spelling, "43215")
        assert r["geocode_quality"] == "address_point", spelling
        assert (r["lon"], r["lat"]) == pytest.approx((-83.0, 39.96))
        assert r["geocode_match"] == "100 N HIGH ST"
        assert r["geocoder"] == "offline"


def test_name_in_first_line_uses_the_second(offline: OfflineGeocoder) -> None:
    r = one(offline, "Maryhaven Inc", "43207", address2="1791 Alum Creek Dr.")
    assert r["geocode_quality"] == "address_point"
    assert r["lat"] == pytest.approx(39.9304)


def test_interpolates_between_numbers_same_side(offline: OfflineGeocoder) -> None:
    r = one(offline, "150 N High St", "43215")
    assert r["geocode_quality"] == "street"
    assert r["lat"] == pytest.approx(39.961, abs=1e-5)
    assert r["lon"] == pytest.approx(-83.0, abs=1e-5)  # snapped onto the centreline
    assert "between 100 numbers" in r["geocode_match"]


def test_fuzzy_street_name_and_street_center(offline: OfflineGeocoder) -> None:
    r = one(offline, "3600 Olenatngy River Road", "43214")  # misspelt, no numbered points
    assert r["geocode_quality"] == "street_center"
    assert r["geocode_match"] == "OLENTANGY RIVER RD near ZIP 43214"
    # the point of the street nearest the ZIP centre
    assert shapely.distance(OLENTANGY, shapely.Point(r["lon"], r["lat"])) < 1e-5  # ~1 m
    assert r["lat"] == pytest.approx(40.0168, abs=1e-3)


def test_zip_city_and_unmatched(offline: OfflineGeocoder) -> None:
    r = one(offline, "77 Nowhere Blvd", "43214")
    assert r["geocode_quality"] == "zip"
    assert (r["lon"], r["lat"]) == pytest.approx((-83.045, 40.02))
    r = one(offline, "77 Nowhere Blvd", "", city="Columbus")
    assert r["geocode_quality"] == "city"
    r = one(offline, "77 Nowhere Blvd", "99999", city="Springfield")
    assert r["geocode_quality"] == ""
    assert np.isnan(r["lon"])


def test_same_street_in_two_towns_is_told_apart_by_zip(offline: OfflineGeocoder) -> None:
    cols = one(offline, "10 Main St", "43215")
    grove = one(offline, "10 Main Street", "43125")
    assert (cols["lon"], grove["lon"]) == pytest.approx((-82.99, -82.88))
    # a town the reference does not know: no guess from another town's Main St
    assert one(offline, "10 Main St", "43054", city="New Albany")["geocode_quality"] == ""


def test_geocode_keeps_index_and_order(offline: OfflineGeocoder) -> None:
    frame = pd.DataFrame(
        {
            "address": ["300 N High St", "nothing here", "50 East Broad Street"],
            "zip": ["43215"] * 3,
        },
        index=[7, 3, 5],
    )
    res = offline.geocode(frame)
    assert res.index.tolist() == [7, 3, 5]
    assert res["geocode_quality"].tolist() == ["address_point", "zip", "address_point"]


# -- reading reference files --------------------------------------------------------------------

OSM_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  <node id="1" lat="39.950" lon="-83.000" version="1"/>
  <node id="2" lat="39.980" lon="-83.000" version="1"/>
  <node id="3" lat="39.9600" lon="-82.9990" version="1">
    <tag k="addr:housenumber" v="120"/><tag k="addr:street" v="North High Street"/>
    <tag k="addr:postcode" v="43215"/><tag k="addr:city" v="Columbus"/>
  </node>
  <node id="4" lat="39.9700" lon="-82.9900" version="1"/>
  <node id="5" lat="39.9701" lon="-82.9900" version="1"/>
  <node id="6" lat="39.9701" lon="-82.9899" version="1"/>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="99"/>
    <tag k="highway" v="primary"/><tag k="name" v="North High Street"/><tag k="name_1" v="US 23"/>
    <tag k="ref" v="US 23;SR 3"/>
  </way>
  <way id="11" version="1"><nd ref="4"/><nd ref="5"/><nd ref="6"/><nd ref="4"/>
    <tag k="building" v="yes"/><tag k="addr:housenumber" v="181"/>
    <tag k="addr:street" v="Taylor Avenue"/>
  </way>
  <way id="12" version="1"><nd ref="1"/><nd ref="4"/>
    <tag k="highway" v="footway"/><tag k="name" v="Path"/></way>
</osm>
"""


def test_read_osm_reference_points_and_streets(tmp_path: Path) -> None:
    path = tmp_path / "tiny.osm"
    path.write_text(OSM_XML, encoding="utf-8")
    pts, streets = read_osm_reference(path)
    assert sorted(pts["number"]) == ["120", "181"]
    taylor = pts[pts["number"] == "181"].iloc[0]
    assert taylor["lat"] == pytest.approx((39.97 + 39.9701 * 2 + 39.97) / 4, abs=1e-4)
    # footway skipped; route numbers from ref are names too
    assert sorted(streets["name"]) == ["North High Street", "SR 3", "US 23"]
    assert streets["geometry"].iloc[0].length == pytest.approx(0.03)  # missing node 99 cut
    index = ReferenceIndex.from_frames(pts, streets=streets, crs="EPSG:32617")
    r = OfflineGeocoder(index).geocode(
        pd.DataFrame({"address": ["120 N High St"], "zip": ["43215"]})
    )
    assert r["geocode_quality"].iloc[0] == "address_point"


def test_read_osm_reference_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="OSM reference file not found"):
        read_osm_reference(tmp_path / "none.osm.pbf")


def test_reference_csv_with_column_mapping(tmp_path: Path) -> None:
    (tmp_path / "poi.csv").write_text(
        '\ufeffX,Y,LSN,POI_NAME\n-83.0,39.96,100 N HIGH ST,"Clinic\nsecond line"\n'
        "-82.99,39.97,5 E LONG ST,Shop\n",
        encoding="utf-8",
    )
    ref = ReferenceSource(
        path=str(tmp_path / "poi.csv"), columns={"address": "LSN", "lon": "X", "lat": "Y"}
    )
    index = build_reference_index([ref], crs="EPSG:32617")
    assert len(index.points) == 2
    assert set(index.points["street_key"]) == {"N HIGH ST", "E LONG ST"}
    bad = ReferenceSource(
        path=str(tmp_path / "poi.csv"), columns={"address": "ADDRESS", "lon": "X", "lat": "Y"}
    )
    with pytest.raises(
        InputError, match=r"'ADDRESS' not in the file; its columns are: X, Y, LSN, POI_NAME"
    ):
        build_reference_index([bad])


# -- config ---------------------------------------------------------------------------------------


def test_geocoding_config_defaults_and_strictness() -> None:
    g = GeocodingConfig()
    assert g.online is False
    assert g.accept == ["address_point", "street"]
    assert g.census is not None and g.census.url.endswith("/geocoder/locations/addressbatch")
    assert g.nominatim is not None and g.nominatim.min_delay_s == 1.0
    with pytest.raises(ValidationError):
        GeocodingConfig.model_validate({"onlin": True})
    with pytest.raises(ValidationError):
        GeocodingConfig.model_validate({"census": {"batch_size": 20_000}})


def _region_cfg(tmp_path: Path) -> RegionConfig:
    return RegionConfig.model_validate(
        {
            "name": "t",
            "title": "T",
            "crs": "EPSG:32617",
            "network": {"osm": {"path": "x.osm"}},
            "providers": [{"name": "p", "path": "p.csv", "category": "methadone"}],
            "areas": {"path": "a.shp", "id_column": "G", "population_column": "p"},
            "base_dir": tmp_path,
        }
    )


def test_geocoder_from_config(tmp_path: Path) -> None:
    (tmp_path / "poi.csv").write_text("X,Y,LSN\n-83.0,39.96,100 N HIGH ST\n", encoding="utf-8")
    ref = {"path": "poi.csv", "columns": {"address": "LSN", "lon": "X", "lat": "Y"}}
    cfg = _region_cfg(tmp_path)
    g = geocoder_from_config(cfg, GeocodingConfig.model_validate({"reference": [ref]}))
    assert isinstance(g, OfflineGeocoder)
    assert g.index.crs == "EPSG:32617"
    chain = geocoder_from_config(
        cfg,
        GeocodingConfig.model_validate({"reference": [ref], "online": True}),
        cache_dir=tmp_path / "c",
    )
    assert isinstance(chain, GeocoderChain)
    assert [x.name for x in chain.geocoders] == ["offline", "census", "nominatim"]
    assert (tmp_path / "c" / "geocode_cache.sqlite").is_file()
    assert geocoder_from_config(cfg, None) is None


# -- online geocoders against recorded responses on 127.0.0.1 -------------------------------


class _StandIn(BaseHTTPRequestHandler):
    """Serves the recorded Census batch CSV and Nominatim JSON; counts requests."""

    census_lines: ClassVar[dict[str, list[str]]] = {}
    nominatim: ClassVar[dict[str, list]] = {}
    log: ClassVar[list[tuple[str, str]]] = []

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        type(self).log.append(("POST", self.path))
        # the uploaded addressFile part: "id,street,city,state,zip" lines
        text = body.decode("utf-8")
        assert 'name="benchmark"' in text and "Public_AR_Current" in text
        part = text.split('name="addressFile"; filename="addresses.csv"')[1].split("\r\n\r\n", 1)[1]
        part = part.split("\r\n--", 1)[0]
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for rid, street, city, state, zip_ in csv.reader(io.StringIO(part)):
            echo = f"{street}, {city}, {state}, {zip_}"
            rec = self.census_lines.get(echo, [rid, echo, "No_Match"])
            writer.writerow([rid, *rec[1:]])
        data = out.getvalue().encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        type(self).log.append(("GET", url.path))
        q = parse_qs(url.query)
        assert url.path == "/search" and q["format"] == ["json"] and q["addressdetails"] == ["1"]
        data = json.dumps(self.nominatim.get(q.get("street", [""])[0], [])).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def stand_in() -> Iterator[str]:
    text = (RECORDED / "census_addressbatch_response.csv").read_text(encoding="utf-8")
    lines = list(csv.reader(io.StringIO(text)))
    _StandIn.census_lines = {row[1]: row for row in lines}
    _StandIn.nominatim = json.loads(
        (RECORDED / "nominatim_search.json").read_text(encoding="utf-8")
    )
    _StandIn.log = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


ONLINE_ROWS = pd.DataFrame(
    {
        "address": [
            "100 North High Street",
            "547 East 11th Ave.",
            "77 Nowhere Blvd",
            "1 Main St",
            "100 N High St",
        ],
        "city": ["Columbus"] * 5,
        "state": ["OH"] * 5,
        "zip": ["43215", "43211", "43215", "43215", "43215"],
    },
    index=[10, 11, 12, 13, 14],
)


def test_parse_census_batch_recorded() -> None:
    parsed = parse_census_batch(
        (RECORDED / "census_addressbatch_response.csv").read_text(encoding="utf-8")
    )
    assert parsed["1"] == {
        "lon": -83.000412,
        "lat": 39.963157,
        "quality": "street",
        "score": 90.0,
        "match": "100 N HIGH ST, COLUMBUS, OH, 43215",
    }
    assert parsed["2"]["score"] == 75.0  # Non_Exact
    assert parsed["3"] == {"quality": "", "status": "No_Match"}
    assert parsed["4"] == {"quality": "", "status": "Tie"}


def test_census_batch_with_cache_never_asks_twice(stand_in: str, tmp_path: Path) -> None:
    cache = GeocodeCache(tmp_path / "cache.sqlite")
    cfg = CensusConfig(
        url=f"http://{stand_in}/geocoder/locations/addressbatch", min_delay_s=0, batch_size=2
    )
    census = CensusBatchGeocoder(cfg, cache=cache)
    res = census.geocode(ONLINE_ROWS)
    assert res.index.tolist() == [10, 11, 12, 13, 14]
    assert res["geocode_quality"].tolist() == ["street", "street", "", "", "street"]
    assert res.loc[10, ["lon", "lat"]].tolist() == [-83.000412, 39.963157]
    assert res.loc[14, "lon"] == res.loc[10, "lon"]  # same normalised address, asked once
    assert res.loc[11, "geocode_match"] == "547 E 11TH AVE, COLUMBUS, OH, 43201"
    assert census.requests_sent == 2  # 4 distinct addresses in batches of 2
    assert len(cache) == 4  # no-matches are cached too
    again = CensusBatchGeocoder(cfg, cache=GeocodeCache(tmp_path / "cache.sqlite"))
    res2 = again.geocode(ONLINE_ROWS)
    assert again.requests_sent == 0
    pd.testing.assert_frame_equal(res, res2)
    assert [m for m, _ in _StandIn.log] == ["POST", "POST"]


def test_census_unreachable_leaves_rows_unmatched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = CensusConfig(url="http://127.0.0.1:9/none", min_delay_s=0, timeout_s=2)
    cache = GeocodeCache(tmp_path / "cache.sqlite")
    res = CensusBatchGeocoder(cfg, cache=cache).geocode(ONLINE_ROWS)
    assert (res["geocode_quality"] == "").all()
    assert len(cache) == 0  # failures are not cached: the next build asks again
    assert "census geocoder unavailable" in caplog.text


def test_nominatim_through_geopy_rate_limited_and_cached(stand_in: str, tmp_path: Path) -> None:
    cfg = NominatimConfig(
        domain=stand_in, scheme="http", min_delay_s=0, user_agent="access-atlas-tests"
    )
    cache = GeocodeCache(tmp_path / "cache.sqlite")
    nom = NominatimGeocoder(cfg, cache=cache)
    rows = pd.DataFrame(
        {"address": ["1791 Alum Creek Drive", "9999 Gantz Road", "5 Unknown Way"], "city": ["Columbus"] * 3,  # noqa: E501
         "state": ["OH"] * 3, "zip": ["43207", "43123", "43215"]}
    )  # fmt: skip
    res = nom.geocode(rows)
    assert res["geocode_quality"].tolist() == ["address_point", "street", ""]
    assert res.loc[0, ["lon", "lat"]].tolist() == [-82.9403561, 39.9304412]
    assert res.loc[0, "geocoder"] == "nominatim"
    assert nom.requests_sent == 3
    again = NominatimGeocoder(cfg, cache=cache)
    again.geocode(rows)
    assert again.requests_sent == 0
    assert len(_StandIn.log) == 3


def test_nominatim_quality_levels() -> None:
    assert (
        nominatim_quality({"class": "place", "type": "house", "address": {"house_number": "5"}})
        == "address_point"
    )
    assert nominatim_quality({"class": "highway", "type": "residential"}) == "street"
    assert nominatim_quality({"class": "place", "type": "postcode"}) == "zip"
    assert nominatim_quality({"class": "boundary", "type": "administrative"}) == "city"
    assert nominatim_quality({"class": "natural", "type": "water"}) == ""


def test_chain_asks_online_only_for_rows_offline_could_not_place(
    stand_in: str, tmp_path: Path
) -> None:
    offline = OfflineGeocoder(reference())
    census = CensusBatchGeocoder(
        CensusConfig(url=f"http://{stand_in}/x", min_delay_s=0),
        cache=GeocodeCache(tmp_path / "c.sqlite"),
    )
    chain = GeocoderChain([offline, census])
    rows = pd.DataFrame(
        {"address": ["100 N High St", "547 E 11th Ave"], "city": ["Columbus"] * 2, "state": ["OH"] * 2,  # noqa: E501
         "zip": ["43215", "43211"]}
    )  # fmt: skip
    res = chain.geocode(rows)
    assert res["geocoder"].tolist() == ["offline", "census"]
    assert res["geocode_quality"].tolist() == ["address_point", "street"]
    assert census.requests_sent == 1
    body_rows = len(_StandIn.log)
    assert body_rows == 1


def test_offline_accuracy_on_reference_points(offline: OfflineGeocoder) -> None:
    """Every reference point geocodes back onto itself (within a metre)."""
    pts = offline.index.points
    frame = pd.DataFrame(
        {
            "address": [f"{n} {s}" for n, s in zip(pts["number"], pts["street_key"], strict=True)],
            "zip": pts["zip"],
        }
    )
    res = offline.geocode(frame)
    errors = [
        dist_m(a, b, c, d)
        for a, b, c, d in zip(res["lon"], res["lat"], pts["lon"], pts["lat"], strict=True)
    ]
    assert max(errors) < 1.0


# -- GTFS stops as a reference ------------------------------------------------------------------

STOPS_TXT = (
    "\ufeffstop_id,stop_code,stop_name,stop_desc,stop_lat,stop_lon,location_type\n"
    "METS495E,7109,495 METRO PL S,,40.093614,-83.132103,\n"
    "METS565S,7108,565 METRO PL S,,40.095083,-83.133166,0\n"
    "FISRIDN,5503,FISHINGER BLVD & RIDGE MILL DR,,40.031631,-83.115909,\n"
    "FISRIDS,5504,FISHINGER BLVD & RIDGE MILL DR,,40.031431,-83.115709,\n"
    "US6OLDW,7655,US 62 & OLD RIDENOUR RD,US 62 & OLDE RIDENOUR RD,40.018934,-82.882543,\n"
    "SOUTER4,411,COTA TRANSIT TERMINAL BAY 4,,39.957151,-82.999079,\n"
    "ENT1,,100 MAIN ENTRANCE ST,,39.95,-83.0,2\n"
    "ZERO,1,0 N HIGH ST & E 15TH AVE,,0,0,\n"
    "OPP433,2,OPPOSITE 433 OBETZ RD,,39.88,-82.95,\n"
)
AGENCY_TXT = "agency_id,agency_name,agency_url,agency_timezone\nT,Test Transit,http://t,UTC\n"
STOP_495 = (-83.132103, 40.093614)
RIDGE_MILL_CORNER = (-83.115809, 40.031531)  # mean of the two corner stops


def write_feed(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stops.txt").write_text(STOPS_TXT, encoding="utf-8")
    (folder / "agency.txt").write_text(AGENCY_TXT, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("name", "number", "street", "streets"),
    [
        ("495 METRO PL S", "495", "METRO PL S", ("METRO PL S",)),
        (
            "S HAMILTON RD & HAMILTON SQUARE BLVD",
            "",
            "",
            ("S HAMILTON RD", "HAMILTON SQUARE BLVD"),
        ),
        ("US 62 & OLDE RIDENOUR RD", "", "", ("US 62", "OLD RIDENOUR RD")),
        ("STATE RTE 161 AND CLEVELAND AVE", "", "", ("SR 161", "CLEVELAND AVE")),
        ("1130 KOEBEL RD & LOCKBOURNE RD", "1130", "KOEBEL RD", ("KOEBEL RD", "LOCKBOURNE RD")),
        ("0 N HIGH ST & E 15TH AVE", "", "", ("N HIGH ST", "E 15TH AVE")),  # 0 is no number
        ("OPPOSITE 433 OBETZ RD", "", "", ("OBETZ RD",)),  # across the street
        ("STELZER RD AT SAMS CLUB", "", "", ("STELZER RD",)),
        ("CLEVELAND AVE & NORTHERN LIGHTS PARK & RIDE", "", "", ("CLEVELAND AVE",)),
        ("MCNAUGHTEN & CHERRY HILL DR", "", "", ("CHERRY HILL DR",)),  # no type: too vague
        ("COTA TRANSIT TERMINAL BAY 4", "", "", ()),
        ("2050 Unit KINGSTON", "", "", ()),
        ("", "", "", ()),
    ],
)
def test_parse_stop_name(name: str, number: str, street: str, streets: tuple[str, ...]) -> None:
    parsed = parse_stop_name(name)
    assert (parsed.number, parsed.street, parsed.streets) == (number, street, streets)
    assert parsed.is_address == bool(number)


def test_read_gtfs_reference_folder_zip_and_stops_txt(tmp_path: Path) -> None:
    folder = write_feed(tmp_path / "feed")
    archive = tmp_path / "feed.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(folder / "stops.txt", "gtfs/stops.txt")
        zf.write(folder / "agency.txt", "gtfs/agency.txt")
    for path in (folder, folder / "stops.txt", archive):
        assert is_gtfs(path)
        pts, on_street = read_gtfs_reference(path)
        assert pts["address"].tolist() == ["495 METRO PL S", "565 METRO PL S"]
        assert pts["label"].tolist() == ["transit stop 7109", "transit stop 7108"]
        assert set(pts["quality"]) == {"street"}
        assert set(pts["source"]) == {"Test Transit GTFS stops"}
        # entrances (location_type 2) and (0, 0) are skipped; both spellings of a corner
        # normalise to one; the terminal bay names no street
        counts = on_street["name"].value_counts().to_dict()
        assert counts == {
            "METRO PL S": 2, "FISHINGER BLVD": 2, "RIDGE MILL DR": 2, "US 62": 1,
            "OLD RIDENOUR RD": 1, "OBETZ RD": 1,
        }  # fmt: skip
        ridge = on_street[on_street["name"] == "RIDGE MILL DR"]
        assert set(ridge["cross"]) == {"FISHINGER BLVD"}
        assert all(g.geom_type == "Point" for g in on_street["geometry"])
    assert not is_gtfs(tmp_path / "poi.csv")
    pts, _ = read_gtfs_reference(folder, source="COTA GTFS stops")
    assert set(pts["source"]) == {"COTA GTFS stops"}


def test_read_gtfs_reference_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="GTFS feed not found"):
        read_gtfs_reference(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"missing; a GTFS feed needs stops\.txt"):
        read_gtfs_reference(tmp_path / "empty")
    bad = tmp_path / "bad" / "stops.txt"
    bad.parent.mkdir()
    bad.write_text("stop_id,stop_lat,stop_lon\nA,40,-83\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"stops.txt: no column 'stop_name'"):
        read_gtfs_reference(bad)
    bad.write_bytes(b"stop_id,stop_name,stop_lat,stop_lon\nA,CAF\xe9 ST,40,-83\n")
    with pytest.raises(InputError, match="line 2 is not UTF-8"):
        read_gtfs_reference(bad)


def transit_index(tmp_path: Path, *, poi: bool = False) -> ReferenceIndex:
    """The test feed (found by name) + ZIP centres for Dublin, Hilliard and Gahanna."""
    refs = [ReferenceSource(path=str(write_feed(tmp_path / "feed")), source="COTA GTFS stops")]
    (tmp_path / "zips.csv").write_text(
        "zip,lon,lat\n43017,-83.12,40.09\n43026,-83.13,40.03\n43230,-82.88,40.02\n",
        encoding="utf-8",
    )
    refs.append(
        ReferenceSource(
            path=str(tmp_path / "zips.csv"),
            use="centroids",
            columns={"zip": "zip", "lon": "lon", "lat": "lat"},
        )
    )
    if poi:
        (tmp_path / "poi.csv").write_text(
            "X,Y,LSN\n-83.1325,40.0932,495 METRO PL S\n", encoding="utf-8"
        )
        refs.append(
            ReferenceSource(
                path=str(tmp_path / "poi.csv"), columns={"address": "LSN", "lon": "X", "lat": "Y"}
            )
        )
    return build_reference_index(refs, crs="EPSG:32617")


def test_transit_stop_named_after_an_address_is_street_quality(tmp_path: Path) -> None:
    geocoder = OfflineGeocoder(transit_index(tmp_path))
    r = one(geocoder, "495 Metro Place South, Suite 160", "43017", city="Dublin")
    assert r["geocode_quality"] == "street"  # the stop is at the kerb, not the building
    assert r["geocode_match"] == "495 METRO PL S (transit stop 7109)"
    assert (r["lon"], r["lat"]) == pytest.approx(STOP_495, abs=1e-6)
    # two numbered stops bracket the number: interpolated between them
    r = one(geocoder, "530 Metro Pl S", "43017")
    assert r["geocode_quality"] == "street"
    assert "between 70 numbers" in r["geocode_match"]
    assert 40.0936 < r["lat"] < 40.0951
    # the city's own point for the address wins over the stop
    with_poi = OfflineGeocoder(transit_index(tmp_path / "b", poi=True))
    r = one(with_poi, "495 Metro Place South", "43017")
    assert r["geocode_quality"] == "address_point"
    assert (r["lon"], r["lat"]) == pytest.approx((-83.1325, 40.0932), abs=1e-6)


def test_street_known_only_from_intersection_stops_is_street_center(tmp_path: Path) -> None:
    geocoder = OfflineGeocoder(transit_index(tmp_path))
    r = one(geocoder, "3720 Ridge Mill Drive", "43026", city="Hilliard")
    # no number anywhere on the street: where along it is unknown, so not "street"
    assert r["geocode_quality"] == "street_center"
    assert r["geocode_match"] == "RIDGE MILL DR near ZIP 43026"
    assert dist_m(r["lon"], r["lat"], *RIDGE_MILL_CORNER) < 30
    r = one(geocoder, "349 Olde Ridenour Road", "43230", city="Gahanna")
    assert r["geocode_quality"] == "street_center"
    assert r["geocode_match"] == "OLD RIDENOUR RD near ZIP 43230"  # "Olde" is "Old"
    assert (r["lon"], r["lat"]) == pytest.approx((-82.882543, 40.018934), abs=1e-6)


def test_intersection_address_from_stops_and_from_centrelines(tmp_path: Path) -> None:
    geocoder = OfflineGeocoder(transit_index(tmp_path))
    r = one(geocoder, "Fishinger Blvd & Ridge Mill Dr", "43026")
    assert r["geocode_quality"] == "street"
    assert r["geocode_match"] == "FISHINGER BLVD & RIDGE MILL DR"
    assert (r["lon"], r["lat"]) == pytest.approx(RIDGE_MILL_CORNER, abs=1e-6)
    # OSM-like centrelines that cross
    broad = shapely.LineString([(-83.02, 39.962), (-82.98, 39.962)])
    streets = pd.DataFrame(
        {"name": ["North High Street", "East Broad Street"], "geometry": [HIGH_ST, broad]}
    )
    lines = OfflineGeocoder(ReferenceIndex.from_frames(streets=streets, crs="EPSG:32617"))
    r = one(lines, "corner of N High St and E Broad St")
    assert r["geocode_quality"] == "street"
    assert dist_m(r["lon"], r["lat"], -83.0, 39.962) < 1.0
    # the same two names meeting in two towns 10 km apart, nothing to tell which: unmatched
    far_high = shapely.LineString([(-82.88, 39.95), (-82.88, 39.98)])
    far_broad = shapely.LineString([(-82.90, 39.962), (-82.86, 39.962)])
    twice = pd.DataFrame(
        {"name": ["N High St", "E Broad St", "N High St", "E Broad St"],
         "geometry": [HIGH_ST, broad, far_high, far_broad]}
    )  # fmt: skip
    two_towns = OfflineGeocoder(ReferenceIndex.from_frames(streets=twice, crs="EPSG:32617"))
    assert one(two_towns, "N High St & E Broad St")["geocode_quality"] == ""


def test_unknown_zip_and_town_is_not_guessed_even_for_a_rare_street(tmp_path: Path) -> None:
    """A street found once in the reference may still be another town's (Ohio-wide lists)."""
    pts = pd.DataFrame(
        {"address": ["3700 RIDGE MILL DR", "3740 RIDGE MILL DR", "10 E LONG ST"],
         "zip": ["", "", "43215"], "lon": [-83.1116, -83.1110, -83.0],
         "lat": [40.0291, 40.0303, 39.96]}
    )  # fmt: skip
    geocoder = OfflineGeocoder(ReferenceIndex.from_frames(pts, crs="EPSG:32617"))
    assert one(geocoder, "3720 Ridge Mill Dr", "43026", city="Hilliard")["geocode_quality"] == ""
    r = one(geocoder, "3720 Ridge Mill Dr")  # no ZIP, no town: nothing says it is elsewhere
    assert r["geocode_quality"] == "street"


def test_town_known_zip_unknown_looks_farther_from_the_town_centre() -> None:
    # Columbus's centre from two points downtown; E Main St numbers 18 km east of it
    pts = pd.DataFrame(
        {"address": ["1 W BROAD ST", "2 W BROAD ST", "5000 E MAIN ST", "6000 E MAIN ST"],
         "city": ["COLUMBUS", "COLUMBUS", "", ""], "state": ["OH", "OH", "", ""],
         "lon": [-83.0, -83.0, -82.80, -82.78], "lat": [39.96, 39.961, 39.955, 39.955]}
    )  # fmt: skip
    oberlin = shapely.LineString([(-83.07, 39.99), (-83.07, 39.9938)])  # ~420 m
    streets = pd.DataFrame({"name": ["Oberlin Drive"], "geometry": [oberlin]})
    geocoder = OfflineGeocoder(ReferenceIndex.from_frames(pts, streets=streets, crs="EPSG:32617"))
    r = one(geocoder, "5500 E Main St", "43213", city="Columbus")
    assert r["geocode_quality"] == "street"
    assert r["geocode_match"] == "5500 E MAIN ST (between 1000 numbers; far from its town centre)"
    assert r["lon"] == pytest.approx(-82.79, abs=1e-4)
    # a short street and only the town to go by: a point on the street, not the town centre
    r = one(geocoder, "1006 Oberlin Dr", "43221", city="Columbus")
    assert r["geocode_quality"] == "street_center"
    assert r["geocode_match"].startswith("OBERLIN DR (a street of 42")
    assert shapely.distance(oberlin, shapely.Point(r["lon"], r["lat"])) < 1e-6


# -- the real Franklin County data -------------------------------------------------------------


@pytest.fixture(scope="module")
def franklin_frames(franklin: Path) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, str]]:
    cfg = load_config(ROOT / "geodata" / "configs" / "franklin-oh.yaml")
    assert cfg.geocoding is not None
    out = {}
    for ref in cfg.geocoding.reference:
        pts, lines = read_reference(ref, resolve=cfg.resolve)
        out[ref.path] = (pts, lines, ref.use)
    return out


def _franklin_index(frames: dict, *, centroids: bool) -> ReferenceIndex:
    points = [p for p, _, use in frames.values() if use == "address_points"]
    lines = [s for _, s, _ in frames.values() if len(s)]
    cen = [p for p, _, use in frames.values() if use == "centroids"] if centroids else []
    return ReferenceIndex.from_frames(
        pd.concat(points, ignore_index=True),
        streets=pd.concat(lines, ignore_index=True),
        centroids=pd.concat(cen, ignore_index=True) if cen else None,
        crs="EPSG:32617",
    )


@pytest.mark.shared
def test_franklin_match_rates_do_not_regress(
    franklin: Path, franklin_frames: dict[str, tuple[pd.DataFrame, pd.DataFrame, str]]
) -> None:
    """OEPS Franklin providers from their addresses alone vs OEPS's published points.

    Figures reached with the City of Columbus POI + OSM + COTA GTFS stops: 47/59 (79.7 %)
    at address_point/street with nothing from the provider lists, 52/59 (88.1 %) with the
    SAMHSA lists as ZIP centres; buprenorphine locator 339/469 and 374/469.
    """
    import geopandas as gpd

    oeps = gpd.read_file(franklin / "providers" / "moud_us_oeps_2021.gpkg")
    cols = {"address": "street1", "address2": "street2", "city": "city", "state": "state",
            "zip": "zip"}  # fmt: skip
    fr = oeps[oeps["countyGEOID"] == "39049"].reset_index(drop=True)
    elsewhere = oeps[
        oeps["countyGEOID"].str.startswith("39") & (oeps["countyGEOID"] != "39049")
    ].reset_index(drop=True)
    bup = pd.read_csv(
        franklin / "providers" / "samhsa_bup_locator_OH_2020-07-04.csv",
        dtype=str,
        encoding="utf-8-sig",
    )
    fb = bup[bup["County"].str.upper() == "FRANKLIN"].reset_index(drop=True)
    qb = pd.DataFrame(
        {"address": fb["Address"], "address2": fb["Address Complement"], "city": fb["City"],
         "state": fb["State"], "zip": fb["Postal Code"]}
    )  # fmt: skip
    good = ["address_point", "street"]
    for centroids, oeps_min, bup_min in ((False, 47, 339), (True, 52, 374)):
        geocoder = OfflineGeocoder(_franklin_index(franklin_frames, centroids=centroids))
        res = geocoder.geocode(pd.DataFrame({k: fr[v] for k, v in cols.items()}))
        placed = res["geocode_quality"].isin(good).to_numpy()
        assert placed.sum() >= oeps_min, res["geocode_quality"].value_counts()
        err = GEOD.inv(
            res["lon"][placed], res["lat"][placed], fr.geometry.x[placed], fr.geometry.y[placed]
        )[2]
        assert np.median(err) < 40
        assert np.percentile(err, 90) < 150
        assert err.max() < 250
        assert res["geocode_quality"].eq("").sum() <= (10 if not centroids else 1)
        assert geocoder.geocode(qb)["geocode_quality"].isin(good).sum() >= bup_min
        # rows from elsewhere in Ohio are not put on a Columbus street of the same name
        other = geocoder.geocode(pd.DataFrame({k: elsewhere[v] for k, v in cols.items()}))
        assert not other["geocode_quality"].isin(good).any()
    metro = res[fr["street1"].str.startswith("495 Metro")].iloc[0]
    assert metro["geocode_quality"] == "street"
    assert metro["geocode_match"] == "495 METRO PL S (transit stop 7109)"
