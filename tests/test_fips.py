"""etl.fips.geoid_counties: which area ids are census GEOIDs, and their counties."""

from __future__ import annotations

import pytest

from etl.fips import geoid_counties


@pytest.mark.parametrize(
    ("ids", "unit", "expected"),
    [
        (["390490001001", "390490002002", "390410101001"], None, ["39041", "39049"]),
        (["390490001001"], "block group", ["39049"]),
        (["39049000100"], "tract", ["39049"]),
        (["390490001001001"], "block", ["39049"]),
        ([39049], "county", ["39049"]),
        (["72153"], None, None),  # five digits: a ZIP code as much as a county
        (["990010005001"], None, None),  # state 99 does not exist
        (["390490001001"], "tract", None),  # length does not match the unit
        (["390490001001"], "ward", None),  # not a census geography
        (["390490001001", "39049000100"], None, None),  # mixed lengths
        (["A-1", "A-2"], None, None),
        ([], None, None),
    ],
)
def test_geoid_counties(ids, unit, expected) -> None:
    assert geoid_counties(ids, unit=unit) == expected
