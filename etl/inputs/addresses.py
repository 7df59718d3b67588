"""Parse and normalise US street addresses with ``usaddress`` for matching and merging.

Provider lists spell one address many ways ("547 East 11th Ave.", "547 E 11TH AVENUE",
"Crossroads Care / 7211 Sawmill Road, Ste. #200"). This module turns each into a
:class:`ParsedAddress` whose :attr:`ParsedAddress.street_key` is the same for every spelling:
upper case, punctuation removed, USPS abbreviations for directions and street types
("North" → "N", "Street" → "ST", "Boulevard" → "BLVD"), ordinal words as numbers ("First" →
"1ST"), and the unit (suite, floor, room, "#12") stripped into :attr:`ParsedAddress.unit`.

Functions are pure; parsing results are cached per input string because the same street
names recur thousands of times in reference files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import usaddress

from etl.controls import CONTROL_RE

#: Directional words → USPS abbreviations.
DIRECTIONS: Final[dict[str, str]] = {
    "NORTH": "N",
    "SOUTH": "S",
    "EAST": "E",
    "WEST": "W",
    "NORTHEAST": "NE",
    "NORTHWEST": "NW",
    "SOUTHEAST": "SE",
    "SOUTHWEST": "SW",
    "N": "N",
    "S": "S",
    "E": "E",
    "W": "W",
    "NE": "NE",
    "NW": "NW",
    "SE": "SE",
    "SW": "SW",
    "NO": "N",
    "SO": "S",
}

#: Street types (USPS Publication 28, the common ones) → USPS abbreviations.
STREET_TYPES: Final[dict[str, str]] = {
    "ALLEY": "ALY", "ALY": "ALY", "ALLY": "ALY",
    "AVENUE": "AVE", "AVE": "AVE", "AV": "AVE", "AVEN": "AVE", "AVNUE": "AVE",
    "BOULEVARD": "BLVD", "BLVD": "BLVD", "BOUL": "BLVD", "BLV": "BLVD",
    "BYPASS": "BYP", "BYP": "BYP",
    "CIRCLE": "CIR", "CIR": "CIR", "CIRC": "CIR", "CRCL": "CIR",
    "COURT": "CT", "CT": "CT", "CRT": "CT",
    "COVE": "CV", "CV": "CV",
    "CROSSING": "XING", "XING": "XING",
    "DRIVE": "DR", "DR": "DR", "DRV": "DR", "DRIV": "DR",
    "EXPRESSWAY": "EXPY", "EXPY": "EXPY",
    "FREEWAY": "FWY", "FWY": "FWY",
    "GREEN": "GRN", "GRN": "GRN",
    "HIGHWAY": "HWY", "HWY": "HWY", "HIWAY": "HWY",
    "LANE": "LN", "LN": "LN",
    "LOOP": "LOOP",
    "MALL": "MALL",
    "OVAL": "OVAL",
    "PARK": "PARK",
    "PARKWAY": "PKWY", "PKWY": "PKWY", "PKY": "PKWY", "PARKWY": "PKWY",
    "PASS": "PASS",
    "PATH": "PATH",
    "PIKE": "PIKE", "PK": "PIKE",
    "PLACE": "PL", "PL": "PL",
    "PLAZA": "PLZ", "PLZ": "PLZ",
    "POINT": "PT", "PT": "PT",
    "ROAD": "RD", "RD": "RD",
    "ROUTE": "RTE", "RTE": "RTE",
    "ROW": "ROW",
    "RUN": "RUN",
    "SQUARE": "SQ", "SQ": "SQ",
    "STREET": "ST", "ST": "ST", "STR": "ST", "STRT": "ST",
    "TERRACE": "TER", "TER": "TER", "TERR": "TER",
    "TRACE": "TRCE", "TRCE": "TRCE",
    "TRAIL": "TRL", "TRL": "TRL",
    "TURNPIKE": "TPKE", "TPKE": "TPKE",
    "WALK": "WALK",
    "WAY": "WAY", "WY": "WAY",
    "COMMONS": "CMNS", "CMNS": "CMNS",
    "CENTER": "CTR", "CTR": "CTR", "CENTRE": "CTR",
    "CROSSROAD": "XRD",
    "HEIGHTS": "HTS", "HTS": "HTS",
    "HILL": "HL", "HL": "HL",
    "GLEN": "GLN", "GLN": "GLN",
    "RIDGE": "RDG", "RDG": "RDG",
    "VIEW": "VW", "VW": "VW",
    "BEND": "BND", "BND": "BND",
}  # fmt: skip

#: Leading words written several ways ("Olde Ridenour" is "Old Ridenour" on the street sign
#: of the same road; "Mt Vernon" and "Mount Vernon"), and numbered routes.
_NAME_WORDS: Final[dict[str, str]] = {"OLDE": "OLD", "MT": "MOUNT", "FT": "FORT"}
_ROUTE_RE = re.compile(
    r"^(?:(?P<sr>STATE (?:ROUTE|RTE|RT|HWY|HIGHWAY)|ST RT|ST RTE|OH|OHIO)"
    r"|(?P<us>US (?:ROUTE|RTE|HWY|HIGHWAY)|U S|US)"
    r"|(?P<i>INTERSTATE|I))\s*(?P<n>\d+[A-Z]?)$"
)
#: Street names that are numbered routes ("US 62", "SR 161", "I 270").
ROUTE_NAME = re.compile(r"^(?:US|SR|I|CR|RTE|HWY) \d+[A-Z]?$")
_TYPE_CODES: Final[frozenset[str]] = frozenset(STREET_TYPES.values())

#: Ordinal words in street names → numerals ("FIRST AVE" and "1ST AVE" match).
ORDINALS: Final[dict[str, str]] = {
    "FIRST": "1ST", "SECOND": "2ND", "THIRD": "3RD", "FOURTH": "4TH", "FIFTH": "5TH",
    "SIXTH": "6TH", "SEVENTH": "7TH", "EIGHTH": "8TH", "NINTH": "9TH", "TENTH": "10TH",
    "ELEVENTH": "11TH", "TWELFTH": "12TH",
}  # fmt: skip

#: US state names → two-letter codes (the 50 states, DC and Puerto Rico).
STATES: Final[dict[str, str]] = {
    "ALABAMA": "AL", "ALASKA": "AK", "ARIZONA": "AZ", "ARKANSAS": "AR", "CALIFORNIA": "CA",
    "COLORADO": "CO", "CONNECTICUT": "CT", "DELAWARE": "DE", "DISTRICT OF COLUMBIA": "DC",
    "FLORIDA": "FL", "GEORGIA": "GA", "HAWAII": "HI", "IDAHO": "ID", "ILLINOIS": "IL",
    "INDIANA": "IN", "IOWA": "IA", "KANSAS": "KS", "KENTUCKY": "KY", "LOUISIANA": "LA",
    "MAINE": "ME", "MARYLAND": "MD", "MASSACHUSETTS": "MA", "MICHIGAN": "MI", "MINNESOTA": "MN",
    "MISSISSIPPI": "MS", "MISSOURI": "MO", "MONTANA": "MT", "NEBRASKA": "NE", "NEVADA": "NV",
    "NEW HAMPSHIRE": "NH", "NEW JERSEY": "NJ", "NEW MEXICO": "NM", "NEW YORK": "NY",
    "NORTH CAROLINA": "NC", "NORTH DAKOTA": "ND", "OHIO": "OH", "OKLAHOMA": "OK",
    "OREGON": "OR", "PENNSYLVANIA": "PA", "RHODE ISLAND": "RI", "SOUTH CAROLINA": "SC",
    "SOUTH DAKOTA": "SD", "TENNESSEE": "TN", "TEXAS": "TX", "UTAH": "UT", "VERMONT": "VT",
    "VIRGINIA": "VA", "WASHINGTON": "WA", "WEST VIRGINIA": "WV", "WISCONSIN": "WI",
    "WYOMING": "WY", "PUERTO RICO": "PR",
}  # fmt: skip

_STATE_CODES: Final[frozenset[str]] = frozenset(STATES.values())

#: Words that start a unit designator when they follow the street ("Suite 200", "Fl 4").
UNIT_WORDS: Final[frozenset[str]] = frozenset(
    {
        "APT", "APARTMENT", "BLDG", "BUILDING", "DEPT", "FL", "FLOOR", "FLR", "LEVEL", "LVL",
        "OFC", "OFFICE", "RM", "ROOM", "STE", "SUITE", "SUIT", "UNIT", "LOWR", "UPPR", "LOWER",
        "UPPER", "MAIL", "MAILCODE",
    }
)  # fmt: skip

_NUMBER_RE = re.compile(r"^\s*(\d+)")
_GLUED_NUMBER = re.compile(r"^(\d+)([A-Za-z]{3,})")  # "126Norwell Drive"
_GLUED_DIRECTION = re.compile(r"\b([NSEWnsew])\.(?=[A-Za-z]{2})")  # "5150 E.Main St"
_STARTS_WITH_NUMBER = re.compile(r"^\s*\d+[A-Za-z]?(?:[-–/]\d+[A-Za-z]?)?\s+\S")
_PUNCT_RE = re.compile(r"[.,;:#'’`\"()]")
_INTERSECTION_SPLIT = re.compile(r"\s*(?:&|@)\s*|\s+(?:AND|AT)\s+", re.IGNORECASE)
_CORNER = re.compile(
    r"^(?:THE\s+|(?:N|S|E|W|NE|NW|SE|SW)\s+)?(?:CORNER|INTERSECTION)(?:\s+OF)?\s*,?\s+",
    re.IGNORECASE,
)
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class ParsedAddress:
    """A US street address split into normalised parts.

    Attributes
    ----------
    number
        House number as written, first of a range ("1387-1389" → "1387"), upper case.
    number_int
        The house number's leading digits as an int, or None.
    predir, name, street_type, postdir
        Normalised parts of the street name ("E", "MAIN", "ST", "").
    unit
        Suite/floor/room text that was stripped ("STE 200"), or "".
    city, state, zip
        Upper-case city, two-letter state, five-digit ZIP ("" where unknown).
    kind
        "street" (number and street), "street_only" (a street without a number),
        "intersection" (two streets: "Main St & High St"), "po_box", or "unparsed".
    raw
        The input text the parts came from.
    cross
        For an intersection, the normalised second street (``"S HIGH ST"``); else "".
    """

    number: str
    number_int: int | None
    predir: str
    name: str
    street_type: str
    postdir: str
    unit: str
    city: str
    state: str
    zip: str
    kind: str
    raw: str
    cross: str = ""

    @property
    def street_key(self) -> str:
        """Normalised street: ``"E MAIN ST"``; empty when no street was found."""
        return " ".join(p for p in (self.predir, self.name, self.street_type, self.postdir) if p)

    @property
    def base_key(self) -> str:
        """Street name without direction or type (``"MAIN"``), for fuzzy matching."""
        return self.name

    @property
    def address_key(self) -> str:
        """Number and street (``"5320 E MAIN ST"``), or "" when either is missing."""
        if not self.number or not self.name:
            return ""
        return f"{self.number} {self.street_key}"

    @property
    def one_line(self) -> str:
        """Normalised one-line address (``"5320 E MAIN ST, COLUMBUS, OH 43213"``)."""
        tail = " ".join(p for p in (self.state, self.zip) if p)
        street = self.address_key or self.street_key
        if self.cross:
            street = f"{street} & {self.cross}"
        parts = [p for p in (street, self.city, tail) if p]
        return ", ".join(parts)

    @property
    def ok(self) -> bool:
        """True when a house number and a street name were found."""
        return self.kind == "street"


def clean_text(value: object) -> str:
    """Return a stripped single-spaced string, or "" for None/NaN/"nan"/"null".

    Control characters (NUL, CR/LF, C0 and C1 controls) become spaces like any whitespace.

    Parameters
    ----------
    value
        Any cell value.

    Returns
    -------
    str
        The cleaned text.
    """
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    text = _SPACE_RE.sub(" ", CONTROL_RE.sub(" ", str(value))).strip()
    if text.lower() in {"nan", "none", "null", "n/a", "na", "<na>"}:
        return ""
    return text


def normalize_zip(value: object) -> str:
    """Return the five-digit ZIP of a value, or "".

    Handles ZIP+4 ("43229-5432"), nine digits run together ("432140000"), numbers that lost
    their leading zero ("8879" → "08879") and floats read from spreadsheets ("43215.0").

    Parameters
    ----------
    value
        A ZIP as text or number.

    Returns
    -------
    str
        Five digits, or "" when the value holds no ZIP.
    """
    text = clean_text(value)
    if text.endswith(".0"):
        text = text[:-2]
    digits = re.match(r"^\s*(\d{3,9})(?:\s*-\s*\d{4})?\s*$", text)
    if not digits:
        return ""
    d = digits.group(1)
    if len(d) == 9:
        return d[:5]
    if len(d) in (3, 4):
        return d.zfill(5)
    return d[:5] if len(d) >= 5 else ""


def normalize_state(value: object) -> str:
    """Return a two-letter state code ("Ohio" → "OH"), or the upper-cased input.

    Parameters
    ----------
    value
        A state name or code.

    Returns
    -------
    str
        The code, "" for an empty value.
    """
    text = _PUNCT_RE.sub("", clean_text(value)).upper()
    if text in _STATE_CODES:
        return text
    return STATES.get(text, text)


def normalize_city(value: object) -> str:
    """Return an upper-case city name without punctuation or repeated spaces.

    Parameters
    ----------
    value
        A city name.

    Returns
    -------
    str
        The normalised name ("" when empty).
    """
    text = _PUNCT_RE.sub(" ", clean_text(value)).upper()
    text = _SPACE_RE.sub(" ", text).strip()
    text = re.sub(r"^(TWP|TOWNSHIP) OF ", "", text)
    return re.sub(r"^ST ", "SAINT ", text)


def normalize_phone(value: object) -> str:
    """Return a US phone number as ``614-224-4506``, or the stripped input.

    Parameters
    ----------
    value
        A phone number in any common notation.

    Returns
    -------
    str
        The formatted number ("" when empty).
    """
    text = clean_text(value)
    if text.endswith(".0"):
        text = text[:-2]
    digits = re.sub(r"\D", "", text)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    return text


def _norm_token(token: str) -> str:
    return _PUNCT_RE.sub("", token).upper().strip()


def normalize_street_name(name: str) -> str:
    """Normalise the core of a street name ("Olde Ridenour" → "OLDE RIDENOUR").

    Hyphens become spaces, punctuation is dropped, ordinal words become numerals.

    Parameters
    ----------
    name
        The street name without number, direction or type.

    Returns
    -------
    str
        The normalised name.
    """
    text = _PUNCT_RE.sub("", name.upper().replace("-", " ").replace("–", " "))
    text = _SPACE_RE.sub(" ", text).strip()
    route = _ROUTE_RE.match(text)
    if route:
        prefix = "SR" if route["sr"] else "US" if route["us"] else "I"
        return f"{prefix} {route['n']}"
    words = [ORDINALS.get(w, w) for w in text.split()]
    words = ["SAINT" if w == "ST" and i == 0 and len(words) > 1 else w for i, w in enumerate(words)]
    words = [_NAME_WORDS.get(w, w) if i == 0 and len(words) > 1 else w for i, w in enumerate(words)]
    return " ".join(words)


def _first_number(text: str) -> tuple[str, int | None]:
    token = _norm_token(text).replace("–", "-")
    token = re.split(r"[-/ ]", token)[0] if token else ""
    m = _NUMBER_RE.match(token)
    return token, (int(m.group(1)) if m else None)


@lru_cache(maxsize=200_000)
def _tag(text: str) -> tuple[tuple[str, str], ...]:
    """Tag a street line with usaddress, keeping the first value of a repeated label."""
    try:
        tagged, _ = usaddress.tag(text)
        return tuple(tagged.items())
    except usaddress.RepeatedLabelError as exc:
        out: dict[str, str] = {}
        last = ""
        for token, label in exc.parsed_string:
            if label in out and label != last:
                continue  # a label repeated later ("Level 3 Suite 3A"): keep its first run
            out[label] = f"{out[label]} {token}" if label in out else token
            last = label
        return tuple(out.items())
    except Exception:  # usaddress can raise on odd input; treat as unparsed
        return ()


def _strip_units(text: str) -> tuple[str, str]:
    """Split "5320 E Main St, Suite 800" into the street part and the unit part."""
    words = text.replace(",", " , ").split()
    for i, w in enumerate(words):
        if i < 2:
            continue
        wn = _norm_token(w)
        nxt = _norm_token(words[i + 1]) if i + 1 < len(words) else ""
        floor_ordinal = bool(re.fullmatch(r"\d+(ST|ND|RD|TH)", wn)) and nxt in {
            "FL",
            "FLOOR",
            "FLR",
        }
        if wn in UNIT_WORDS or w.startswith("#") or floor_ordinal:
            street = " ".join(x for x in words[:i] if x != ",")
            unit = " ".join(x for x in words[i:] if x != ",")
            return street, unit
    return " ".join(x for x in words if x != ","), ""


def _parse_street_line(line: str) -> dict[str, str]:
    street_part, unit = _strip_units(line)
    tags = dict(_tag(street_part))
    if unit:
        tags["_unit"] = unit
    return tags


def _looks_like_street(line: str) -> bool:
    return bool(_STARTS_WITH_NUMBER.match(line))


@lru_cache(maxsize=200_000)
def parse_address(
    street: object,
    address2: object = "",
    city: object = "",
    state: object = "",
    zip: object = "",
) -> ParsedAddress:
    """Parse one US address into normalised parts.

    When the first line holds a name rather than a street ("Crossroads Care") and the
    second line holds the street ("7211 Sawmill Road, Ste. #200"), the second line is used.
    A street line with city, state and ZIP run together ("240 Parsons Ave, Columbus, OH
    43215") is split with usaddress when the separate fields are empty.

    Parameters
    ----------
    street
        The street line (number and street, perhaps with a unit).
    address2
        A second line (unit, building, or the street when line one is a name).
    city, state, zip
        The other parts, if the source has them.

    Returns
    -------
    ParsedAddress
        The parts; :attr:`ParsedAddress.kind` says whether a number and street were found.
    """
    line1 = _GLUED_DIRECTION.sub(r"\1. ", _GLUED_NUMBER.sub(r"\1 \2", clean_text(street)))
    line2 = _GLUED_DIRECTION.sub(r"\1. ", _GLUED_NUMBER.sub(r"\1 \2", clean_text(address2)))
    if not _looks_like_street(line1) and not _looks_like_street(line2):
        for line in (line1, line2):
            pair = parse_intersection(line) if line else None
            if pair is not None:
                return _intersection(pair, line1, line2, city, state, zip)
    chosen, extra = line1, line2
    tags = _parse_street_line(chosen) if chosen else {}
    if _looks_like_street(line2) and (
        not _looks_like_street(line1)
        or ("StreetNamePostType" not in tags and "StreetNamePostType" in _parse_street_line(line2))
    ):
        # Line one is a name ("Crossroads Care") or a building ("760 Prior Hall").
        chosen, extra = line2, line1
        tags = _parse_street_line(chosen)

    city_n = normalize_city(city) or normalize_city(tags.get("PlaceName", ""))
    state_n = normalize_state(state) or normalize_state(tags.get("StateName", ""))
    zip_n = normalize_zip(zip) or normalize_zip(tags.get("ZipCode", ""))

    number_raw = tags.get("AddressNumber", "")
    number, number_int = _first_number(number_raw) if number_raw else ("", None)
    if number and number_int is None:
        number = ""  # "ONE" or a letter-only number: keep as unparsed rather than guess

    predir = DIRECTIONS.get(_norm_token(tags.get("StreetNamePreDirectional", "")), "")
    postdir = DIRECTIONS.get(_norm_token(tags.get("StreetNamePostDirectional", "")), "")
    stype_raw = _norm_token(tags.get("StreetNamePostType", ""))
    street_type = STREET_TYPES.get(stype_raw, stype_raw)
    pretype = _norm_token(tags.get("StreetNamePreType", ""))
    name = normalize_street_name(tags.get("StreetName", ""))
    if pretype:  # "State Route 161", "US Highway 23"
        pre = {"STATE ROUTE": "SR", "STATE RT": "SR", "SR": "SR", "ROUTE": "RTE"}.get(
            pretype, pretype
        )
        name = normalize_street_name(f"{pre} {name}".strip())
    # A direction word alone as the name ("North St") stays as the name.
    if not name and predir and street_type:
        name, predir = {v: k for k, v in DIRECTIONS.items() if len(k) > 2}.get(predir, predir), ""

    unit_parts = [tags.get("_unit", "")]
    for label in ("OccupancyType", "OccupancyIdentifier", "SubaddressType", "SubaddressIdentifier"):
        if tags.get(label):
            unit_parts.append(tags[label])
    if extra and extra != chosen and _looks_like_street(chosen):
        unit_parts.append(extra)
    unit = _SPACE_RE.sub(" ", " ".join(_norm_token(u) for u in unit_parts if u)).strip()

    if tags.get("USPSBoxID") or tags.get("USPSBoxType"):
        kind = "po_box"
    elif number and name:
        kind = "street"
    elif name:
        kind = "street_only"
    else:
        kind = "unparsed"
    return ParsedAddress(
        number=number,
        number_int=number_int,
        predir=predir,
        name=name,
        street_type=street_type,
        postdir=postdir,
        unit=unit,
        city=city_n,
        state=state_n,
        zip=zip_n,
        kind=kind,
        raw=", ".join(p for p in (line1, line2) if p),
    )


def _intersection(
    pair: tuple[ParsedAddress, ParsedAddress],
    line1: str,
    line2: str,
    city: object,
    state: object,
    zip: object,
) -> ParsedAddress:
    a, b = pair
    return ParsedAddress(
        number="",
        number_int=None,
        predir=a.predir,
        name=a.name,
        street_type=a.street_type,
        postdir=a.postdir,
        unit="",
        city=normalize_city(city),
        state=normalize_state(state),
        zip=normalize_zip(zip),
        kind="intersection",
        raw=", ".join(p for p in (line1, line2) if p),
        cross=b.street_key,
    )


def parse_named_street(text: object) -> ParsedAddress | None:
    """Parse a bare street name, or return None when it does not look like one.

    A street name looks like one when it ends in a known street type ("Hamilton Square
    Blvd") or is a numbered route ("US 62", "State Rte 161"). Place names ("Sams Club",
    "Eastland NB Lot", "Westwoods Park & Ride") and bare names without a type
    ("McNaughten") return None: too vague to match.

    Parameters
    ----------
    text
        A street name without a house number.

    Returns
    -------
    ParsedAddress or None
        As :func:`parse_street_name`, or None.
    """
    p = parse_street_name(text)
    if p.kind != "street_only" or p.name.startswith("UNNAMED"):
        return None
    if p.street_type in _TYPE_CODES or ROUTE_NAME.match(p.name):
        return p
    return None


@lru_cache(maxsize=100_000)
def parse_intersection(text: object) -> tuple[ParsedAddress, ParsedAddress] | None:
    """Split an intersection ("Main St & High St", "corner of E Main St and S High St").

    Separators: "&", "@", " and ", " at ". Both sides must look like streets (see
    :func:`parse_named_street`) and differ; a line starting with a house number is an
    address, not an intersection.

    Parameters
    ----------
    text
        The street line.

    Returns
    -------
    tuple of ParsedAddress, or None
        The two streets, or None when the text is not an intersection.
    """
    line = clean_text(text)
    if not line or _looks_like_street(line):
        return None
    parts = _INTERSECTION_SPLIT.split(_CORNER.sub("", line))
    if len(parts) != 2:
        return None
    a, b = parse_named_street(parts[0]), parse_named_street(parts[1])
    if a is None or b is None or a.street_key == b.street_key:
        return None
    return a, b


@lru_cache(maxsize=100_000)
def parse_street_name(name: object) -> ParsedAddress:
    """Parse a bare street name such as an OSM ``name`` tag ("East Broad Street").

    Parameters
    ----------
    name
        A street name without a house number.

    Returns
    -------
    ParsedAddress
        Parts with an empty number; ``kind`` is "street_only" when a name was found.
    """
    text = clean_text(name)
    if not text:
        return parse_address("")
    parsed = parse_address(f"1 {text}")
    return ParsedAddress(
        number="",
        number_int=None,
        predir=parsed.predir,
        name=parsed.name,
        street_type=parsed.street_type,
        postdir=parsed.postdir,
        unit=parsed.unit,
        city="",
        state="",
        zip="",
        kind="street_only" if parsed.name else "unparsed",
        raw=text,
    )


def address_key(
    street: object,
    address2: object = "",
    city: object = "",
    state: object = "",
    zip: object = "",
) -> str:
    """Return the normalised "number street" key of an address ("" when it has none).

    Parameters
    ----------
    street, address2, city, state, zip
        As for :func:`parse_address`.

    Returns
    -------
    str
        For example ``"547 E 11TH AVE"``.
    """
    return parse_address(
        clean_text(street),
        clean_text(address2),
        clean_text(city),
        clean_text(state),
        clean_text(zip),
    ).address_key
