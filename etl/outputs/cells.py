"""Spreadsheet-safe tables: text cells that a spreadsheet would run as a formula are defused.

A provider list is written by many hands; a name such as ``=HYPERLINK("http://x","click")``
is a live formula when a CSV export is opened in Excel, LibreOffice or Google Sheets (CSV
or formula injection). Every table a person downloads passes through :func:`safe_table`
on its way out (CSV files in the export zips, the What-if scenario's CSV, the data
dictionary): a **text** cell whose first character is ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return gets a leading apostrophe ``'`` (OWASP's advice), which spreadsheets show as
text and never evaluate. Numbers are never touched: a numeric column keeps ``-3.5``, and a
text cell that is a plain number (``"-3.5"``) stays as it is, since it is not a formula.

GeoJSON, Shapefile (``.dbf``) and GeoPackage attribute values are left as they are: GIS
tools show them as values and never evaluate them, and a GIS user joining on a name must
find it unchanged.
"""

from __future__ import annotations

import re
from typing import Any, Final

import pandas as pd

#: First characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_LEADS: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r")
#: What is put in front of such a cell.
ESCAPE: Final[str] = "'"

_NUMBER: Final[re.Pattern[str]] = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet will not evaluate: text starting a formula gets a ``'`` in front.

    Anything that is not a string, and strings that are plain numbers, come back unchanged.
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_LEADS):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return ESCAPE + value


def safe_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a table with every text cell passed through :func:`safe_cell`.

    Numeric, boolean and datetime columns are returned as they are; so is a frame with no
    text cell to change (no copy made then). Column names are text cells too.
    """
    out = frame
    for col in frame.columns:
        s = frame[col]
        if not (s.dtype == object or pd.api.types.is_string_dtype(s)):
            continue
        risky = s.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_LEADS))
        if not bool(risky.any()):
            continue
        if out is frame:
            out = frame.copy()
        out[col] = s.map(safe_cell)
    names = [safe_cell(c) if isinstance(c, str) else c for c in out.columns]
    if names != list(out.columns):
        out = out.set_axis(names, axis=1) if out is not frame else frame.set_axis(names, axis=1)
    return out


def safe_row(row: dict[str, Any]) -> dict[str, Any]:
    """One record (a ``csv.DictWriter`` row) with its text values defused; keys untouched."""
    return {k: safe_cell(v) for k, v in row.items()}


def spreadsheet_note() -> list[str]:
    """The lines an export's README uses to say what :func:`safe_table` did."""
    return [
        "In the CSV tables, a text cell that begins with = + - @ (or a tab or a carriage",
        "return) is written with an apostrophe (') in front, so that a spreadsheet shows it",
        "as text and never runs it as a formula; remove the apostrophe to get the value as",
        "it came. Numbers are unchanged. GeoJSON, Shapefile and GeoPackage values are written",
        "as they came (GIS tools do not evaluate them).",
    ]
