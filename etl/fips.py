"""US geography codes: state FIPS codes and the county name tables built in.

A base module (it imports nothing from the project), read by the config schema, the overdose
readers and whatever links a region's areas to their counties.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

#: State FIPS code -> USPS abbreviation (50 states, DC and the territories).
STATE_FIPS: Final[dict[str, str]] = {
    "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT",
    "10": "DE", "11": "DC", "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL",
    "18": "IN", "19": "IA", "20": "KS", "21": "KY", "22": "LA", "23": "ME", "24": "MD",
    "25": "MA", "26": "MI", "27": "MN", "28": "MS", "29": "MO", "30": "MT", "31": "NE",
    "32": "NV", "33": "NH", "34": "NJ", "35": "NM", "36": "NY", "37": "NC", "38": "ND",
    "39": "OH", "40": "OK", "41": "OR", "42": "PA", "44": "RI", "45": "SC", "46": "SD",
    "47": "TN", "48": "TX", "49": "UT", "50": "VT", "51": "VA", "53": "WA", "54": "WV",
    "55": "WI", "56": "WY", "60": "AS", "66": "GU", "69": "MP", "72": "PR", "78": "VI",
}  # fmt: skip

#: Ohio's 88 counties in alphabetical order; their FIPS are 39001, 39003, ... 39175.
OHIO_COUNTIES: Final[tuple[str, ...]] = (
    "Adams", "Allen", "Ashland", "Ashtabula", "Athens", "Auglaize", "Belmont", "Brown",
    "Butler", "Carroll", "Champaign", "Clark", "Clermont", "Clinton", "Columbiana", "Coshocton",
    "Crawford", "Cuyahoga", "Darke", "Defiance", "Delaware", "Erie", "Fairfield", "Fayette",
    "Franklin", "Fulton", "Gallia", "Geauga", "Greene", "Guernsey", "Hamilton", "Hancock",
    "Hardin", "Harrison", "Henry", "Highland", "Hocking", "Holmes", "Huron", "Jackson",
    "Jefferson", "Knox", "Lake", "Lawrence", "Licking", "Logan", "Lorain", "Lucas", "Madison",
    "Mahoning", "Marion", "Medina", "Meigs", "Mercer", "Miami", "Monroe", "Montgomery",
    "Morgan", "Morrow", "Muskingum", "Noble", "Ottawa", "Paulding", "Perry", "Pickaway", "Pike",
    "Portage", "Preble", "Putnam", "Richland", "Ross", "Sandusky", "Scioto", "Seneca", "Shelby",
    "Stark", "Summit", "Trumbull", "Tuscarawas", "Union", "Van Wert", "Vinton", "Warren",
    "Washington", "Wayne", "Williams", "Wood", "Wyandot",
)  # fmt: skip

#: County name -> FIPS for Ohio.
OHIO_COUNTY_FIPS: Final[dict[str, str]] = {
    name: f"39{2 * i + 1:03d}" for i, name in enumerate(OHIO_COUNTIES)
}

#: Name-keyed tables per state (only Ohio is built in).
COUNTY_NAME_TABLES: Final[dict[str, dict[str, str]]] = {"OH": OHIO_COUNTY_FIPS}

#: Census GEOID length -> the geography it identifies.
GEOID_LENGTHS: Final[dict[int, str]] = {5: "county", 11: "tract", 12: "block group", 15: "block"}


def geoid_counties(ids: Iterable[object], *, unit: str | None = None) -> list[str] | None:
    """Return the county FIPS codes that census GEOIDs name, or None when they are not GEOIDs.

    Ids count as GEOIDs only when every one is all digits, all have one length of
    :data:`GEOID_LENGTHS` (county 5, tract 11, block group 12, block 15) and every state
    code (the first two digits) is a real one (:data:`STATE_FIPS`). Anything else (ward
    names, generated ids, ZIP codes, ids whose first digits are no state) gives None, so a
    caller never takes the first five characters of a non-GEOID for a county. Five-digit ids
    are taken for county GEOIDs only with ``unit="county"`` (a ZIP code is five digits too),
    and a census ``unit`` must match the ids' length.

    Parameters
    ----------
    ids
        Area ids, as read (numbers are turned into text).
    unit
        What the areas are (the config's free-text ``unit``), when known.

    Returns
    -------
    list of str or None
        Sorted distinct 5-digit county FIPS codes, or None.
    """
    text = [str(i).strip() for i in ids]
    if not text or any(not t.isdigit() for t in text):
        return None
    lengths = {len(t) for t in text}
    if len(lengths) != 1:
        return None
    kind = GEOID_LENGTHS.get(lengths.pop())
    named = (unit or "").strip().lower()
    if kind is None or (kind == "county" and named != "county"):
        return None
    if named and named != kind and (named in GEOID_LENGTHS.values() or kind == "county"):
        return None
    if named and named not in GEOID_LENGTHS.values() and named not in {"area", "census unit"}:
        return None  # wards, ZIP codes, neighbourhoods: not census geographies
    if any(t[:2] not in STATE_FIPS for t in text):
        return None
    return sorted({t[:5] for t in text})
