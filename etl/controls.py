r"""Control characters in text read from a user's files: found, named, replaced by a space.

A provider list exported by hand may hold a NUL byte, a line break inside a quoted name, an
escape sequence or a C1 control character (``\x80``-``\x9f``, what cp1252 text read as latin-1
often turns into). Kept, they end up in layers, in GeoJSON sent to browsers, in CSV exports
and in slides. Every table is cleaned when it is read (:func:`clean_frame`, called by
:func:`etl.inputs.tables.read_table`): each run of control characters becomes one space, runs
of spaces collapse, ends are stripped; each changed cell is recorded (column, row, what was
found) so that the quality report can list it. :func:`clean_layer` is the last guard before a
layer is written.

Every other reader (area files, population and overdose tables, GTFS members, places, zoning,
facilities, geocoding references) cleans what it reads with :func:`clean_input`, which also
says so in one line and records each changed cell in the build's :class:`CleanedLedger`
(opened by the pipeline with :func:`recording`, one per stage): the input's role (as in the
manifest's ``inputs``), the file's name, the row as the user counts it, the column and the
characters found. The pipeline writes them all to ``reports/inputs_cleaned.csv``.

Control characters here: C0 (``\x00``-``\x1f``, so also tab, LF and CR), DEL (``\x7f``), C1
(``\x80``-``\x9f``) and the Unicode line and paragraph separators (U+2028, U+2029).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

CONTROL_CHARS: Final[str] = "\x00-\x1f\x7f-\x9f\u2028\u2029"
CONTROL_RE: Final[re.Pattern[str]] = re.compile(f"[{CONTROL_CHARS}]+")
_SPACES_RE: Final[re.Pattern[str]] = re.compile(r" {2,}")

#: Short names of the control characters met most, for messages and the quality report.
_NAMES: Final[dict[str, str]] = {
    "\x00": "NUL",
    "\t": "TAB",
    "\n": "LF",
    "\r": "CR",
    "\x0b": "VT",
    "\x0c": "FF",
    "\x1b": "ESC",
    "\x7f": "DEL",
    "\x85": "NEL",
    "\u2028": "LINE SEPARATOR",
    "\u2029": "PARAGRAPH SEPARATOR",
}


#: Bytes of UTF-8 text that are no C0 control or DEL (every byte of a multi-byte character).
_NOT_C0: Final[bytes] = bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
#: C1 controls in UTF-8 (U+0080-U+009F).
_C1_UTF8: Final[re.Pattern[bytes]] = re.compile(b"\xc2[\x80-\x9f]")


def any_controls(text: str, *, allow: str = "") -> bool:
    r"""Whether ``text`` holds any control character other than those in ``allow``.

    Fast on long text (a whole file, a column joined): the check runs on UTF-8 bytes in C,
    where a character-class regex would take a second on 40 MB.

    Parameters
    ----------
    text
        The text.
    allow
        C0 control characters not to count (e.g. ``"\r\n"`` for a file's line ends).

    Returns
    -------
    bool
        True when a control character (of :data:`CONTROL_RE`) other than ``allow`` occurs.
    """
    return _utf8_has_controls(text.encode("utf-8", "surrogatepass"), allow=allow)


def _utf8_has_controls(data: bytes, *, allow: str = "") -> bool:
    if data.translate(None, _NOT_C0 + allow.encode("ascii")):
        return True  # a C0 control or DEL
    if data.isascii():
        return False
    return (
        _C1_UTF8.search(data) is not None or "\u2028".encode() in data or "\u2029".encode() in data
    )


def has_controls(value: object) -> bool:
    """Whether ``value`` is a string holding a control character."""
    return isinstance(value, str) and CONTROL_RE.search(value) is not None


def replace_controls(text: str) -> str:
    """Replace each run of control characters by a space, collapse spaces, strip the ends."""
    if CONTROL_RE.search(text) is None:
        return text
    return _SPACES_RE.sub(" ", CONTROL_RE.sub(" ", text)).strip()


def control_names(text: str) -> str:
    """Name the distinct control characters in ``text``, e.g. ``"NUL, CR, LF"``."""
    found = sorted({c for run in CONTROL_RE.findall(text) for c in run})
    return ", ".join(_NAMES.get(c) or f"U+{ord(c):04X}" for c in found)


def _text_columns(frame: pd.DataFrame) -> list[Any]:
    geometry = getattr(frame, "_geometry_column_name", None)
    return [
        c
        for c in frame.columns
        if c != geometry
        and (frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c].dtype))
    ]


def _may_hold_controls(values: pd.Series) -> bool:
    """A fast first look at a text column: False when no cell holds a control character.

    An Arrow-backed string column is checked on its data buffer (all its text, in one
    piece); another column on its strings joined. True may be a false alarm (a buffer may
    hold bytes beyond a slice); the caller then looks cell by cell.
    """
    if values.dtype != object and hasattr(values.array, "__arrow_array__"):
        try:
            chunks = values.array.__arrow_array__()
            buffers = [c.buffers()[-1] for c in getattr(chunks, "chunks", [chunks])]
        except (TypeError, ValueError, AttributeError, IndexError):
            buffers = None  # not a plain Arrow string array: look at the strings
        if buffers is not None:
            return any(b is not None and _utf8_has_controls(b.to_pybytes()) for b in buffers)
    texts = [v for v in values.to_numpy(object) if isinstance(v, str)]
    return bool(texts) and any_controls(" ".join(texts))


def clean_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Replace control characters in every text cell of a table.

    Parameters
    ----------
    frame
        A table as read (any index; positions are reported).

    Returns
    -------
    frame : pandas.DataFrame
        The same frame when nothing changed, else a copy with the cells cleaned.
    changes : list of dict
        One per changed cell: ``column``, ``position`` (0-based row position in ``frame``)
        and ``found`` (the characters, named as by :func:`control_names`).
    """
    changes: list[dict[str, Any]] = []
    out = frame
    for col in _text_columns(frame):
        if not _may_hold_controls(frame[col]):
            continue
        values = frame[col].to_numpy(object)
        hits = [i for i, v in enumerate(values) if has_controls(v)]
        if not hits:
            continue
        if out is frame:
            out = frame.copy()
        cleaned = values.copy()
        for pos in hits:
            changes.append(
                {"column": str(col), "position": int(pos), "found": control_names(cleaned[pos])}
            )
            cleaned[pos] = replace_controls(cleaned[pos])
        out[col] = pd.Series(cleaned, index=frame.index, dtype=frame[col].dtype)
    changes.sort(key=lambda c: (c["position"], c["column"]))
    return out, changes


def clean_layer(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Clean a layer's text cells, and strings inside list cells, before it is written.

    Returns
    -------
    frame : pandas.DataFrame
        The frame (a copy where anything changed).
    changed : int
        The number of cells changed.
    """
    out, changes = clean_frame(frame)
    changed = len(changes)
    for col in _text_columns(out):
        if out[col].dtype != object:  # only object columns hold lists
            continue
        values = out[col].to_numpy(object)
        listed = [
            i
            for i, v in enumerate(values)
            if isinstance(v, list | tuple | np.ndarray) and any(has_controls(x) for x in v)
        ]
        if not listed:
            continue
        if out is frame:
            out = frame.copy()
        values = values.copy()
        for i in listed:
            values[i] = [replace_controls(x) if isinstance(x, str) else x for x in values[i]]
        out[col] = values
        changed += len(listed)
    return out, changed


# -- the build's record of cleaned input cells ------------------------------------------------

#: Columns of ``reports/inputs_cleaned.csv`` (one row per cleaned cell of any input).
REPORT_COLUMNS: Final[tuple[str, ...]] = ("input", "file", "row", "column", "found")
#: First data row of a table as a spreadsheet shows it (the header is row 1).
TABLE_FIRST_ROW: Final[int] = 2
#: First feature of a GIS file as its attribute table numbers it (no header row).
FEATURE_FIRST_ROW: Final[int] = 1


@dataclass
class CleanedLedger:
    """The cleaned cells of every input read while a :func:`recording` block runs.

    Attributes
    ----------
    rows
        One dict per cleaned cell, keys :data:`REPORT_COLUMNS`.
    inputs
        The (role, file) of every input file read (cleaned or not, file as
        :func:`file_label` names it), so that a stage command knows which rows of the
        current bundle's report it replaces.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    inputs: set[tuple[str, str]] = field(default_factory=set)


_LEDGER: ContextVar[CleanedLedger | None] = ContextVar("etl_controls_ledger", default=None)


@contextmanager
def recording() -> Iterator[CleanedLedger]:
    """Record the cells that :func:`clean_input` cleans while the block runs.

    Yields
    ------
    CleanedLedger
        Filled as inputs are read; nested blocks each get their own.
    """
    ledger = CleanedLedger()
    token = _LEDGER.set(ledger)
    try:
        yield ledger
    finally:
        _LEDGER.reset(token)


def file_label(file: str | Path) -> str:
    """A file as the report names it: its name, without folders (``feed.zip!stops.txt`` kept).

    Parameters
    ----------
    file
        A path, a GDAL path (``zip://…/a.zip!b.shp``) or a feed member (``/…/feed.zip!stops.txt``).

    Returns
    -------
    str
        E.g. ``"bg.gpkg"``, ``"feed.zip!stops.txt"``.
    """
    text = str(file).removeprefix("zip://")
    outer, bang, member = text.partition("!")
    return Path(outer).name + (f"!{Path(member).name}" if bang else "")


def record_cleaned(
    role: str | None,
    file: str | Path,
    changes: Sequence[dict[str, Any]],
    *,
    rows: Sequence[int] | None = None,
    first_row: int = TABLE_FIRST_ROW,
) -> None:
    """Add the cleaned cells of one input file to the running :func:`recording`, if any.

    Parameters
    ----------
    role
        The input's role, as in the manifest's ``inputs`` (``areas``, ``providers.clinics``,
        ``overdose.0``, ``transit``…); None records nothing.
    file
        The file (its name is kept, see :func:`file_label`).
    changes
        As :func:`clean_frame` returns them (``column``, ``position``, ``found``); may be empty
        (the input is then only noted as read).
    rows
        The row number of each position of the table, where it is not simply
        ``position + first_row`` (e.g. a reader that skipped blank lines).
    first_row
        The number of the first data row: :data:`TABLE_FIRST_ROW` for tables (the header is
        row 1), :data:`FEATURE_FIRST_ROW` for the features of a GIS file.
    """
    ledger = _LEDGER.get()
    if ledger is None or role is None:
        return
    name = file_label(file)
    ledger.inputs.add((role, name))
    for c in changes:
        pos = int(c["position"])
        ledger.rows.append(
            {
                "input": role,
                "file": name,
                "row": int(rows[pos]) if rows is not None else pos + first_row,
                "column": str(c["column"]),
                "found": str(c["found"]),
            }
        )


def log_cleaned(
    file: str | Path,
    changes: Sequence[dict[str, Any]],
    *,
    rows: Sequence[int] | None = None,
    first_row: int = TABLE_FIRST_ROW,
) -> None:
    """Say in one warning line which characters were replaced in how many cells of which rows.

    Parameters
    ----------
    file
        The file (named without its folders).
    changes, rows, first_row
        As for :func:`record_cleaned`.
    """
    if not changes:
        return
    numbers = sorted(
        {int(rows[c["position"]]) if rows is not None else c["position"] + first_row
         for c in changes}
    )  # fmt: skip
    features = first_row == FEATURE_FIRST_ROW and rows is None
    unit = "feature" if features else "row"
    shown = ", ".join(map(str, numbers[:10])) + (" ..." if len(numbers) > 10 else "")
    found = sorted({name for c in changes for name in c["found"].split(", ")})
    logger.warning(
        "%s: replaced control characters (%s) by spaces in %d cell%s of %d %s%s (%ss %s%s)",
        file_label(file),
        ", ".join(found),
        len(changes),
        "s" * (len(changes) != 1),
        len(numbers),
        unit,
        "s" * (len(numbers) != 1),
        unit,
        shown,
        "" if features else ", the header being row 1",
    )


def clean_input(
    frame: pd.DataFrame,
    *,
    role: str | None,
    file: str | Path,
    rows: Sequence[int] | None = None,
    first_row: int = TABLE_FIRST_ROW,
) -> pd.DataFrame:
    """Clean a table as a reader reads it: replace, say so in one line, record each cell.

    Parameters
    ----------
    frame
        The table (or GeoDataFrame: its geometry is left alone) in file order.
    role
        The input's role (see :func:`record_cleaned`); None only cleans and logs.
    file
        The file it was read from.
    rows
        Row number of each position, where not ``position + first_row``.
    first_row
        :data:`TABLE_FIRST_ROW` (tables, header row 1) or :data:`FEATURE_FIRST_ROW` (GIS files).

    Returns
    -------
    pandas.DataFrame
        ``frame`` itself when no cell held a control character, else a cleaned copy (of the
        same type).
    """
    cleaned, changes = clean_frame(frame)
    log_cleaned(file, changes, rows=rows, first_row=first_row)
    record_cleaned(role, file, changes, rows=rows, first_row=first_row)
    return cleaned


def cleaned_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The rows of a ledger as the report's table: one per cell, duplicates dropped, sorted.

    A file read twice in a build (a GTFS member by two readers, say) lists its cells once.

    Parameters
    ----------
    rows
        Dicts with keys :data:`REPORT_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`REPORT_COLUMNS`, sorted by input, file, row and column.
    """
    table = pd.DataFrame(list(rows), columns=list(REPORT_COLUMNS))
    table["row"] = table["row"].astype("int64")
    table = table.drop_duplicates(subset=["input", "file", "row", "column"])
    return table.sort_values(["input", "file", "row", "column"], kind="stable").reset_index(
        drop=True
    )
