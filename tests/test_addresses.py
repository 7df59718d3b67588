"""Tests for etl.inputs.addresses: US address parsing and normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.inputs.addresses import (
    address_key,
    normalize_city,
    normalize_phone,
    normalize_state,
    normalize_zip,
    parse_address,
    parse_intersection,
    parse_named_street,
    parse_street_name,
)


@pytest.mark.parametrize(
    ("raw", "key", "unit"),
    [
        ("1791 Alum Creek Dr.", "1791 ALUM CREEK DR", ""),
        ("5320 East Main Street, Suite 800", "5320 E MAIN ST", "SUITE 800"),
        ("3242 E Main St 2nd Floor", "3242 E MAIN ST", "2ND FLOOR"),
        ("1387-1389 Georgesville Road", "1387 GEORGESVILLE RD", ""),
        ("500 S 4TH ST  1", "500 S 4TH ST", "1"),
        (
            "380 Butterfly Gardens Drive, Level 3 Suite 3A",
            "380 BUTTERFLY GARDENS DR",
            "LEVEL 3 SUITE 3A",
        ),
        ("495 Metro Place South, Suite 160", "495 METRO PL S", "SUITE 160"),
        ("547 East 11th Ave.", "547 E 11TH AVE", ""),
        ("547 E ELEVENTH AVENUE", "547 E 11TH AVE", ""),
        ("2300 W Dublin-Granville Rd", "2300 W DUBLIN GRANVILLE RD", ""),
        ("1570 CLEVELAND AVE,", "1570 CLEVELAND AVE", ""),
        ("6434 E. Main St Suite 101", "6434 E MAIN ST", "SUITE 101"),
        ("4461 Broadway", "4461 BROADWAY", ""),
        ("126Norwell Drive", "126 NORWELL DR", ""),
        ("1980 St Clair Ave", "1980 SAINT CLAIR AVE", ""),
    ],
)
def test_street_lines_normalise(raw: str, key: str, unit: str) -> None:
    p = parse_address(raw)
    assert p.address_key == key
    assert p.unit == unit
    assert p.kind == "street"


def test_spellings_of_one_address_share_a_key() -> None:
    spellings = [
        "547 East 11th Avenue",
        "547 E. 11TH AVE",
        "547 e eleventh ave",
        "547 East Eleventh Av.",
    ]
    assert {address_key(s) for s in spellings} == {"547 E 11TH AVE"}


def test_name_on_line_one_street_on_line_two() -> None:
    p = parse_address(
        "Crossroads Care", "7211 Sawmill Road, Ste. #200", "Dublin", "Ohio", "43016-1234"
    )
    assert p.address_key == "7211 SAWMILL RD"
    assert "STE 200" in p.unit and "CROSSROADS CARE" in p.unit
    assert (p.city, p.state, p.zip) == ("DUBLIN", "OH", "43016")
    # a building name that looks like a street ("760 Prior Hall") gives way to the real street
    q = parse_address("760 Prior Hall", "376 West 10th Avenue")
    assert q.address_key == "376 W 10TH AVE"


def test_one_line_address_with_city_state_zip() -> None:
    p = parse_address("240 Parsons Ave, Columbus, OH 43215")
    assert (p.address_key, p.city, p.state, p.zip) == ("240 PARSONS AVE", "COLUMBUS", "OH", "43215")
    assert p.one_line == "240 PARSONS AVE, COLUMBUS, OH 43215"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("PO Box 123", "po_box"),
        ("", "unparsed"),
        ("State Route 161", "street_only"),
        ("10 N High St", "street"),
    ],
)
def test_kinds(raw: str, kind: str) -> None:
    assert parse_address(raw).kind == kind


def test_street_names_from_osm() -> None:
    assert parse_street_name("East Broad Street").street_key == "E BROAD ST"
    assert parse_street_name("West Dublin-Granville Road").street_key == "W DUBLIN GRANVILLE RD"
    assert parse_street_name("Olentangy River Road").street_key == "OLENTANGY RIVER RD"
    assert parse_street_name("North High Street").base_key == "HIGH"
    assert parse_street_name("").kind == "unparsed"


@pytest.mark.parametrize(
    ("raw", "zip_"),
    [("43229-5432", "43229"), ("432140000", "43214"), (8879, "08879"), ("43215.0", "43215"),
     ("", ""), ("n/a", ""), ("43235-1", "")],
)  # fmt: skip
def test_normalize_zip(raw: object, zip_: str) -> None:
    assert normalize_zip(raw) == zip_


def test_normalize_state_city_phone() -> None:
    assert normalize_state("Ohio") == "OH"
    assert normalize_state("oh") == "OH"
    assert normalize_state("District of Columbia") == "DC"
    assert normalize_city("  upper   arlington ") == "UPPER ARLINGTON"
    assert normalize_city("St. Louis") == "SAINT LOUIS"
    assert normalize_phone("(614) 224-4506") == "614-224-4506"
    assert normalize_phone("1-614-224-4506") == "614-224-4506"
    assert normalize_phone("6142244506.0") == "614-224-4506"
    assert normalize_phone("ext 12") == "ext 12"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.text(max_size=20))
def test_parse_never_raises_and_keys_are_normalised(line1: str, line2: str) -> None:
    p = parse_address(line1, line2)
    assert p.kind in {"street", "street_only", "po_box", "unparsed"}
    assert p.street_key == p.street_key.upper().strip()
    assert "," not in p.street_key and "." not in p.street_key
    if p.kind == "street":
        assert p.number_int is not None and p.address_key.startswith(p.number)


@pytest.mark.parametrize(
    ("raw", "key", "unit"),
    [
        ("349 Olde Ridenour Road", "349 OLD RIDENOUR RD", ""),  # the street sign says "Old"
        ("470 Olde Worthington Road", "470 OLD WORTHINGTON RD", ""),
        ("525 Metro Place N Suite 150A", "525 METRO PL N", "SUITE 150A"),
        ("5150  E.Main St Suite 105", "5150 E MAIN ST", "SUITE 105"),  # glued direction
        ("3964 Hamilton Square Blvd.", "3964 HAMILTON SQUARE BLVD", ""),
        ("6991 Margarum Bend", "6991 MARGARUM BND", ""),
        ("1100 Mt Vernon Ave", "1100 MOUNT VERNON AVE", ""),
        ("4000 State Route 161", "4000 SR 161", ""),
        ("4000 State Rte 161", "4000 SR 161", ""),
        ("10 US Highway 23 N", "10 US 23 N", ""),
    ],
)
def test_street_name_variants_normalise(raw: str, key: str, unit: str) -> None:
    p = parse_address(raw)
    assert (p.address_key, p.unit, p.kind) == (key, unit, "street")


def test_olde_and_route_names_match_their_street_sign_spelling() -> None:
    assert parse_street_name("OLDE RIDENOUR RD").street_key == "OLD RIDENOUR RD"
    assert parse_street_name("STATE RTE 161").street_key == "SR 161"
    assert parse_street_name("US 62").street_key == "US 62"
    assert parse_street_name("Olde Town Rd").street_key == "OLD TOWN RD"
    assert parse_street_name("Olde").street_key == "OLDE"  # a one-word name stays


@pytest.mark.parametrize(
    ("raw", "first", "cross"),
    [
        ("Main St & High St", "MAIN ST", "HIGH ST"),
        ("corner of E Main St and S High St", "E MAIN ST", "S HIGH ST"),
        ("NE Corner, 21st St. & Washington Ave.", "21ST ST", "WASHINGTON AVE"),
        ("US 62 @ Old Ridenour Rd", "US 62", "OLD RIDENOUR RD"),
        ("Stelzer Rd at Easton Way", "STELZER RD", "EASTON WAY"),
    ],
)
def test_intersections(raw: str, first: str, cross: str) -> None:
    p = parse_address(raw, "", "Columbus", "OH", "43215")
    assert (p.kind, p.street_key, p.cross, p.number) == ("intersection", first, cross, "")
    assert p.one_line == f"{first} & {cross}, COLUMBUS, OH 43215"
    assert not p.ok
    assert parse_intersection(raw) is not None


@pytest.mark.parametrize(
    "raw",
    [
        "1130 Koebel Rd & Lockbourne Rd",  # a house number: an address, not a corner
        "Stelzer Rd at Sams Club",  # a shop is no street
        "Tom & Jerry Clinic",
        "Crossroads Care / 7211 Sawmill Road",
        "Main St & Main St",
        "Westwoods Blvd & Westwoods Park & Ride",  # three parts
    ],
)
def test_not_intersections(raw: str) -> None:
    assert parse_intersection(raw) is None
    assert parse_address(raw).kind != "intersection"


def test_parse_named_street_needs_a_type_or_route_number() -> None:
    assert parse_named_street("Hamilton Square Blvd").street_key == "HAMILTON SQUARE BLVD"
    assert parse_named_street("State Rte 161").street_key == "SR 161"
    for vague in ("McNaughten", "Sams Club", "Eastland NB Lot", "Unnamed Aly", ""):
        assert parse_named_street(vague) is None, vague
