"""GTFS feeds: one reader for their tables, and stop names as a geocoding reference.

Transit agencies name stops after where they stand, and a feed covers its whole service
area (a county, not only the city centre that a city's address file covers). Two kinds of
names are useful to the offline geocoder (:mod:`etl.inputs.geocode`):

``"495 METRO PL S"``
    a house number and street: the stop stands at the kerb by that address, so it becomes
    a numbered point on the street (``stop_desc`` can hold one too, "5202 FOREST DR & S 5TH
    ST"). It is used for exact matches and for interpolation like any address point, but a
    match on the stop alone is worth "street", not "address_point": on the Franklin County
    feed such stops lie a median 60 m (up to 400 m) from the city's point for the address;
``"FISHINGER BLVD & RIDGE MILL DR"``
    an intersection: the stop stands at the corner, so it is a **point on each named
    street** (with the other street as its cross street). Such points carry no house number:
    they say where a street is, not where along it a number lies.

``stop_desc`` often spells the same corner differently ("US 62 & OLD RIDENOUR RD" vs "US 62
& OLDE RIDENOUR RD", "HAMILTON RD & REINEAU DR" vs "S HAMILTON RD & REINBEAU DR"); both
spellings are kept. House number 0 ("0 N HIGH ST & E 15TH AVE") is no address; "OPPOSITE
433 OBETZ RD" stands across the street, so it only says where Obetz Rd is. Names that are
not streets ("COTA TRANSIT TERMINAL BAY 4", "STELZER RD AT SAMS CLUB"'s second half,
"PARK & RIDE") are left out (see :func:`etl.inputs.addresses.parse_named_street`). Entrances,
generic nodes and boarding areas (``location_type`` 2-4) are parts of stations and skipped.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import shapely

from etl._errors import InputError
from etl.controls import any_controls, clean_input, record_cleaned
from etl.inputs.addresses import (
    ROUTE_NAME,
    STREET_TYPES,
    clean_text,
    parse_address,
    parse_intersection,
    parse_named_street,
)

log = logging.getLogger(__name__)

STOPS_FILE: Final[str] = "stops.txt"
_OPPOSITE = re.compile(r"^(?:OPPOSITE|OPP|ACROSS FROM|NEAR)\s+", re.IGNORECASE)
_PARK_AND_RIDE = re.compile(r"\bPARK\s*(?:&|AND|N)\s*RIDE\b", re.IGNORECASE)
_SPLIT = re.compile(r"\s*(?:&|@)\s*|\s+(?:AND|AT)\s+", re.IGNORECASE)
_TYPE_CODES: Final[frozenset[str]] = frozenset(STREET_TYPES.values())


@dataclass(frozen=True)
class StopName:
    """What a stop name says about where the stop stands.

    Attributes
    ----------
    number
        House number of an address name ("495"), or "".
    street
        The street of the address, normalised ("METRO PL S"), or "".
    streets
        Normalised streets the stop stands on or at (an address's street, both streets of
        an intersection, the street of an "opposite" name).
    """

    number: str = ""
    street: str = ""
    streets: tuple[str, ...] = ()

    @property
    def is_address(self) -> bool:
        """True when the name is a house number and street."""
        return bool(self.number and self.street)


def _numbered(part: str) -> tuple[str, str] | None:
    p = parse_address(part)
    if p.kind != "street" or not p.number_int or p.unit:
        return None  # no number, number 0, or a unit swallowed the street ("2050 Unit KINGSTON")
    if p.street_type not in _TYPE_CODES and not ROUTE_NAME.match(p.name):
        return None
    return p.number, p.street_key


def parse_stop_name(name: object) -> StopName:
    """Parse a GTFS ``stop_name`` (or ``stop_desc``) into an address and/or streets.

    Parameters
    ----------
    name
        The name as published ("495 METRO PL S", "S HAMILTON RD & HAMILTON SQUARE BLVD",
        "1130 KOEBEL RD & LOCKBOURNE RD", "OPPOSITE 433 OBETZ RD").

    Returns
    -------
    StopName
        The address (number and street) where the name is one, and every street named.
    """
    text = clean_text(name)
    if not text:
        return StopName()
    text = _PARK_AND_RIDE.sub("PARK-AND-RIDE", text)
    opposite = bool(_OPPOSITE.match(text))
    text = _OPPOSITE.sub("", text)
    pair = parse_intersection(text)
    if pair is not None:
        return StopName(streets=(pair[0].street_key, pair[1].street_key))
    number, street = "", ""
    streets: list[str] = []
    for i, part in enumerate(p for p in _SPLIT.split(text) if p):
        addr = _numbered(part) if i == 0 else None
        if addr is not None:
            if not opposite:
                number, street = addr
            streets.append(addr[1])
            continue
        named = parse_named_street(re.sub(r"^0+\s+", "", part))  # "0 N HIGH ST & E 15TH AVE"
        if named is not None:
            streets.append(named.street_key)
    return StopName(number=number, street=street, streets=tuple(dict.fromkeys(streets)))


def is_gtfs(path: str | Path) -> bool:
    """Whether a path is a GTFS ``stops.txt``, a folder holding one, or a zip holding one.

    Parameters
    ----------
    path
        A file or folder.

    Returns
    -------
    bool
        True for a GTFS feed (or its stops file).
    """
    path = Path(path)
    if path.name.lower() == STOPS_FILE:
        return True
    if path.is_dir():
        return (path / STOPS_FILE).is_file()
    if path.suffix.lower() == ".zip" and path.is_file():
        try:
            with zipfile.ZipFile(path) as zf:
                return any(Path(n).name == STOPS_FILE for n in zf.namelist())
        except zipfile.BadZipFile:
            return False
    return False


class Feed:
    """The member tables of a GTFS feed stored as a folder, a zip file, or given by its stops.txt.

    Parameters
    ----------
    path
        The feed folder, the ``.zip`` (members may sit in a sub-folder) or its ``stops.txt``.
    role
        The feed's role in the build (``transit``, ``geocoding.reference.<k>``): control
        characters in any member table are replaced as it is read, said in one line and, with
        a role, recorded for ``reports/inputs_cleaned.csv`` (:mod:`etl.controls`).

    Raises
    ------
    InputError
        When the path does not exist or a file that is not ``stops.txt`` is not a zip.
    """

    def __init__(self, path: str | Path, *, role: str | None = None) -> None:
        self.role = role
        path = Path(path)
        if path.is_file() and path.name == "stops.txt":
            path = path.parent
        if not path.exists():
            msg = f"{path}: GTFS feed not found (a folder, a .zip or its stops.txt)"
            raise InputError(msg)
        self.path = path
        self._zip = None
        if path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                msg = f"{path}: not a zip file; give a GTFS feed as a folder, a .zip or stops.txt"
                raise InputError(msg) from None
            self._names = {Path(n).name: n for n in self._zip.namelist()}
        else:
            self._names = {p.name: p.name for p in path.iterdir() if p.is_file()}

    def has(self, name: str) -> bool:
        """Whether the feed holds the member ``name`` (e.g. ``"stop_times.txt"``)."""
        return name in self._names

    def where(self, name: str) -> str:
        """Where member ``name`` is (or would be), for messages."""
        return f"{self.path}!{name}" if self._zip else str(self.path / name)

    def table(
        self, name: str, *, required: Sequence[str] = (), usecols: list[str] | None = None
    ) -> pd.DataFrame:
        """A GTFS table as strings (UTF-8, a byte-order mark allowed, as the spec says).

        Parameters
        ----------
        name
            The member, e.g. ``"stops.txt"``.
        required
            Columns that must be present (all columns are returned).
        usecols
            Columns that must be present and are the only ones returned.

        Raises
        ------
        InputError
            When the member is missing, not UTF-8 or not CSV, or lacks a column asked for.
        """
        if not self.has(name):
            msg = f"{self.where(name)}: missing; a GTFS feed needs {name}"
            raise InputError(msg)
        raw = (
            self._zip.read(self._names[name])
            if self._zip
            else (self.path / self._names[name]).read_bytes()
        )
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            msg = (
                f"{self.where(name)}: line {line} is not UTF-8 (GTFS files must be UTF-8); "
                "re-save the file as UTF-8"
            )
            raise InputError(msg) from None
        try:
            frame = pd.read_csv(
                io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            msg = f"{self.where(name)}: cannot read as CSV ({exc})"
            raise InputError(msg) from None
        frame.columns = [c.strip() for c in frame.columns]
        # One line per record and no control character in the text: no cell holds one (the
        # fast path for a large stop_times.txt). Rows as a spreadsheet numbers them (the
        # header is row 1), like the rejects.
        lines = text.count("\n") + (not text.endswith("\n"))
        if lines != len(frame) + 1 or any_controls(text, allow="\r\n"):
            frame = clean_input(frame.reset_index(drop=True), role=self.role, file=self.where(name))
        else:
            record_cleaned(self.role, self.where(name), [])
        missing = [c for c in (*required, *(usecols or ())) if c not in frame.columns]
        if missing:
            msg = (
                f"{self.where(name)}: no column {', '.join(map(repr, dict.fromkeys(missing)))}; "
                f"the header has {', '.join(frame.columns)}"
            )
            raise InputError(msg)
        return frame[usecols] if usecols is not None else frame


def read_stops_table(path: str | Path, *, role: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read a feed's ``stops.txt`` as strings.

    Parameters
    ----------
    path
        A ``stops.txt``, a feed folder or a feed ``.zip``.
    role
        The feed's role in the build (see :class:`Feed`).

    Returns
    -------
    frame : pandas.DataFrame
        The table, every column as str ("" for empty cells).
    where : str
        The file read (for messages).

    Raises
    ------
    InputError
        When the feed or its ``stops.txt`` is missing, not UTF-8, not CSV, or lacks
        ``stop_lat``/``stop_lon``/``stop_name``.
    """
    feed = Feed(path, role=role)
    frame = feed.table(STOPS_FILE, required=("stop_name", "stop_lat", "stop_lon"))
    return frame, feed.where(STOPS_FILE)


def feed_agency(path: str | Path, *, role: str | None = None) -> str:
    """Return the feed's first ``agency_name`` ("" when the feed has no readable agency.txt).

    Parameters
    ----------
    path
        A ``stops.txt``, a feed folder or a feed ``.zip``.
    role
        The feed's role in the build (see :class:`Feed`).

    Returns
    -------
    str
        The agency's name, or "".
    """
    try:
        feed = Feed(path, role=role)
        if not feed.has("agency.txt"):
            return ""
        frame = feed.table("agency.txt")
    except InputError:
        return ""
    if "agency_name" not in frame.columns or not len(frame):
        return ""
    return clean_text(frame["agency_name"].iloc[0])


def read_gtfs_reference(
    path: str | Path, *, source: str = "", role: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a GTFS feed's stops as address points and points on named streets.

    Parameters
    ----------
    path
        A ``stops.txt``, a feed folder or a feed ``.zip``.
    source
        Source label of the points; default "<agency_name> GTFS stops".
    role
        The feed's role in the build (see :class:`Feed`).

    Returns
    -------
    points : pandas.DataFrame
        One row per stop whose name (or description) is an address: ``address`` ("495
        METRO PL S"), ``lon``, ``lat``, ``source``, ``label`` ("transit stop 7109") and
        ``quality`` "street": a geocode resting on a stop alone is worth "street", since
        the stop stands at the kerb, not at the building.
    street_points : pandas.DataFrame
        One row per stop and street it stands on or at: ``name`` (the normalised street),
        ``cross`` (the other street of an intersection, or ""), ``geometry`` (a shapely
        Point in WGS84) and ``source``. For :meth:`etl.inputs.geocode.ReferenceIndex.from_frames`
        as street points.

    Raises
    ------
    InputError
        See :func:`read_stops_table`.
    """
    frame, where = read_stops_table(path, role=role)
    if not source:
        agency = feed_agency(path, role=role)
        source = f"{agency} GTFS stops" if agency else "GTFS stops"
    n = len(frame)

    def col(name: str) -> np.ndarray:
        return frame[name].to_numpy(object) if name in frame.columns else np.full(n, "", object)

    lat = pd.to_numeric(frame["stop_lat"].str.strip(), errors="coerce").to_numpy(float)
    lon = pd.to_numeric(frame["stop_lon"].str.strip(), errors="coerce").to_numpy(float)
    kind = np.array([clean_text(k) or "0" for k in col("location_type")], dtype=object)
    ok = (
        np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        & ~((lat == 0) & (lon == 0)) & np.isin(kind, ["0", "1"])
    )  # fmt: skip
    names, descs = col("stop_name"), col("stop_desc")
    codes = [
        clean_text(c) or clean_text(i)
        for c, i in zip(col("stop_code"), col("stop_id"), strict=True)
    ]
    points: list[tuple[str, float, float, str]] = []
    on_street: list[tuple[str, str, float, float]] = []
    for i in np.nonzero(ok)[0]:
        seen_address = False
        for text in dict.fromkeys((clean_text(names[i]), clean_text(descs[i]))):
            parsed = parse_stop_name(text)
            if parsed.is_address and not seen_address:
                points.append((f"{parsed.number} {parsed.street}", lon[i], lat[i], codes[i]))
                seen_address = True
            others = parsed.streets
            for s in others:
                cross = next((o for o in others if o != s), "") if len(others) == 2 else ""
                on_street.append((s, cross, lon[i], lat[i]))
    pts = pd.DataFrame(points, columns=["address", "lon", "lat", "code"])
    pts["source"] = source
    pts["label"] = [f"transit stop {c}" if c else "transit stop" for c in pts.pop("code")]
    pts["quality"] = "street"  # at the kerb by the address, not the building
    street_points = pd.DataFrame(on_street, columns=["name", "cross", "lon", "lat"])
    street_points = street_points.drop_duplicates(ignore_index=True)
    street_points = pd.DataFrame(
        {
            "name": street_points["name"],
            "cross": street_points["cross"],
            "geometry": shapely.points(
                street_points["lon"].to_numpy(float), street_points["lat"].to_numpy(float)
            ),
            "source": source,
        }
    )
    log.info(
        "read_gtfs_reference: %s of %s stops in %s: %s address points, %s points on %s streets",
        f"{int(ok.sum()):,}",
        f"{n:,}",
        where,
        f"{len(pts):,}",
        f"{len(street_points):,}",
        f"{street_points['name'].nunique():,}",
    )
    return pts, street_points
