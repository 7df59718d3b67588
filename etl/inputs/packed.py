"""Provider lists whose address packs street, city, state and ZIP into one field.

The Ohio COVID-19 vaccine site list (vaccinateoh, 2021) gives ``address`` as
``"4548 E. MAIN ST.|Whitehall, OH 43213"`` or, without the bar,
``"2290 STRINGTOWN RD GROVE CITY, OH 43123"``; ``city`` and ``state`` are often empty.
:func:`split_packed` separates the parts (the street ends at its last street-type word,
unit or direction; the rest before the comma is the city); :func:`unpack_addresses` fills a
provider source's empty city, state and ZIP from them (``address_format: packed``).
"""

from __future__ import annotations

import re
from typing import Final

import pandas as pd

#: Words that end a street name (upper case, without a full stop).
STREET_WORDS: Final[frozenset[str]] = frozenset(
    [
        "ST",
        "STREET",
        "RD",
        "ROAD",
        "AVE",
        "AVENUE",
        "AV",
        "BLVD",
        "BOULEVARD",
        "DR",
        "DRIVE",
        "PIKE",
        "WAY",
        "LN",
        "LANE",
        "CT",
        "COURT",
        "PKWY",
        "PARKWAY",
        "HWY",
        "HIGHWAY",
        "CENTER",
        "CTR",
        "MALL",
        "PLAZA",
        "PLZ",
        "CIR",
        "CIRCLE",
        "PL",
        "PLACE",
        "TRL",
        "TRAIL",
        "SQ",
        "SQUARE",
        "TER",
        "TERRACE",
        "LOOP",
        "ROW",
        "RUN",
        "PATH",
        "CROSSING",
        "XING",
        "COMMONS",
    ]
)
DIRECTIONS: Final[frozenset[str]] = frozenset(
    ["N", "S", "E", "W", "NE", "NW", "SE", "SW", "NORTH", "SOUTH", "EAST", "WEST"]
)
UNITS: Final[frozenset[str]] = frozenset(["SUITE", "STE", "UNIT", "APT", "BLDG", "#"])
_TAIL: Final[re.Pattern[str]] = re.compile(
    r",\s*(?P<state>[A-Za-z]{2})\.?\s+(?P<zip>\d{5})(?:-\d{0,4}|\.+)?\s*$|"
    r",\s*(?P<state2>[A-Za-z]{2})\.?\s+(?P<zip2>\d{3,4})\.+\s*$"
)


def split_packed(text: str) -> tuple[str, str, str, str]:
    """Split a packed address into (street, city, state, ZIP); parts not found are "".

    Examples
    --------
    >>> split_packed("4548 E. MAIN ST.|Whitehall, OH 43213")
    ('4548 E. MAIN ST.', 'Whitehall', 'OH', '43213')
    >>> split_packed("2290 STRINGTOWN RD GROVE CITY, OH 43123")
    ('2290 STRINGTOWN RD', 'GROVE CITY', 'OH', '43123')
    >>> split_packed("3433 Agler Rd Suite 2800|Columbus, OH 43219-1234")
    ('3433 Agler Rd Suite 2800', 'Columbus', 'OH', '43219')
    """
    text = " ".join(str(text or "").split())
    if not text:
        return "", "", "", ""
    state = zip_ = ""
    m = _TAIL.search(text)
    head = text
    if m is not None:
        state = (m["state"] or m["state2"] or "").upper()
        zip_ = m["zip"] or ""
        head = text[: m.start()].strip()
    if "|" in head:
        street, _, city = head.partition("|")
        return street.strip(), city.strip(), state, zip_
    if m is None:
        return text, "", "", ""
    tokens = head.split(" ")
    end = 0
    for i, tok in enumerate(tokens):
        if tok.upper().rstrip(".,") in STREET_WORDS and i > 0:
            end = i + 1
    if end == 0:  # no street word: the last word is the city
        end = max(len(tokens) - 1, 1)
    while end < len(tokens):
        word = tokens[end].upper().rstrip(".,")
        if word in DIRECTIONS:
            end += 1
        elif (word in UNITS or word.startswith("#")) and end + 1 < len(tokens):
            end += 1 if word.startswith("#") and len(word) > 1 else 2
        else:
            break
    street, city = " ".join(tokens[:end]), " ".join(tokens[end:])
    return street.strip(" ,"), city.strip(" ,"), state, zip_


def unpack_addresses(work: pd.DataFrame) -> None:
    """Replace a packed ``address`` by its street; fill empty city, state and ZIP from it."""
    from etl.inputs.addresses import normalize_state, normalize_zip

    parts = [split_packed(a) for a in work["address"].fillna("")]
    work["address"] = [p[0] for p in parts]
    city = pd.Series([p[1] for p in parts], index=work.index)
    city = city.map(lambda v: v.title() if v.isupper() or v.islower() else v)
    empty = work["city"].fillna("") == ""
    work.loc[empty, "city"] = city[empty]
    for col, k, norm in (("state", 2, normalize_state), ("zip", 3, normalize_zip)):
        vals = pd.Series([norm(p[k]) for p in parts], index=work.index)
        empty = work[col].fillna("") == ""
        work.loc[empty, col] = vals[empty]
