"""Tests for etl.geocode: offline reference matching, and the online geocoders against
recorded responses served from 127.0.0.1 (see tests/data/recorded/README.md)."""

from __future__ import annotations

import csv
import io
import json
import threading
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
from etl.config import RegionConfig
from etl.geocode import (
    CensusBatchGeocoder,
    CensusConfig,
    GeocodeCache,
    GeocoderChain,
    GeocodingConfig,
    NominatimConfig,
    NominatimGeocoder,
    OfflineGeocoder,
    ReferenceIndex,
    ReferenceSource,
    build_reference_index,
    geocoder_from_config,
    nominatim_quality,
    parse_census_batch,
    read_osm_reference,
)

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
    assert sorted(streets["name"]) == ["North High Street", "US 23"]  # footway skipped
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
