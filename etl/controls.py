r"""Control characters in text read from a user's files: found, named, replaced by a space.

A provider list exported by hand may hold a NUL byte, a line break inside a quoted name, an
escape sequence or a C1 control character (``\x80``-``\x9f``, what cp1252 text read as latin-1
often turns into). Kept, they end up in layers, in GeoJSON sent to browsers, in CSV exports
and in slides. Every table is cleaned when it is read (:func:`clean_frame`, called by
:func:`etl.inputs.tables.read_table`): each run of control characters becomes one space, runs
of spaces collapse, ends are stripped; each changed cell is recorded (column, row, what was
found) so that the quality report can list it. :func:`clean_layer` is the last guard before a
layer is written.

Control characters here: C0 (``\x00``-``\x1f``, so also tab, LF and CR), DEL (``\x7f``), C1
(``\x80``-``\x9f``) and the Unicode line and paragraph separators (U+2028, U+2029).
"""

from __future__ import annotations

import re
from typing import Any, Final

import numpy as np
import pandas as pd

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
