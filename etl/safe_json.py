"""JSON from people and browsers, read with limits: size, nesting depth, UTF-8.

Saved views, saved scenarios and the scenario a share link carries (``w=``) are JSON that
anyone may have written. :func:`loads_limited` parses such text only when it is small
(:data:`MAX_BYTES`), UTF-8 and nested at most :data:`MAX_DEPTH` levels, so a 50 MB file, a
file saved in cp1252 or one nested 1,100 levels deep (which makes Python's parser raise
``RecursionError``) becomes one :class:`UnsafeJsonError` with a plain message instead of a
crash. The depth is measured before parsing, on the text with its strings taken out.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Final

from etl._errors import InputError

#: Largest JSON document read (bytes).
MAX_BYTES: Final[int] = 2 * 1024 * 1024
#: Deepest nesting of arrays and objects accepted.
MAX_DEPTH: Final[int] = 32

_STRING: Final[re.Pattern[str]] = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET: Final[re.Pattern[str]] = re.compile(r"[^\[\]{}]+")


class UnsafeJsonError(InputError):
    """A JSON document too large, too deep, not UTF-8 or not JSON (the message says which)."""


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text (brackets inside strings not counted)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub('""', text))
    depth = deepest = 0
    for ch in brackets:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(depth - 1, 0)
    return deepest


def loads_limited(
    data: bytes | str,
    *,
    what: str,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Parse JSON that may be hostile.

    Parameters
    ----------
    data
        The document (bytes are decoded as UTF-8, strictly).
    what
        What the document is, for the message (``"saved views of 'demo'"``); never a path
        a visitor should not see.
    max_bytes, max_depth
        The limits.

    Raises
    ------
    UnsafeJsonError
        Too large, not UTF-8, nested too deep, or not JSON.
    """
    size = len(data)
    if size > max_bytes:
        msg = f"{what}: {size:,} bytes, more than the {max_bytes:,} accepted"
        raise UnsafeJsonError(msg)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            msg = (
                f"{what}: not UTF-8 text (byte 0x{data[exc.start]:02x} at position "
                f"{exc.start}); save it as UTF-8"
            )
            raise UnsafeJsonError(msg) from None
    else:
        text = data
    depth = nesting_depth(text)
    if depth > max_depth:
        msg = f"{what}: nested {depth} levels deep, more than the {max_depth} accepted"
        raise UnsafeJsonError(msg)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        detail = str(exc).splitlines()[0][:120] if isinstance(exc, ValueError) else "too deep"
        msg = f"{what}: not valid JSON ({detail})"
        raise UnsafeJsonError(msg) from None


def read_limited(path: str | Path, *, what: str, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a file, refusing one larger than ``max_bytes`` before reading it.

    Raises
    ------
    UnsafeJsonError
        The file is larger than ``max_bytes``.
    OSError
        It cannot be opened or read (``FileNotFoundError`` when missing).
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            msg = f"{what}: {size:,} bytes, more than the {max_bytes:,} accepted"
            raise UnsafeJsonError(msg)
        return f.read(max_bytes + 1)


def load_file(path: str | Path, *, what: str, max_bytes: int = MAX_BYTES) -> Any:
    """:func:`read_limited` then :func:`loads_limited`."""
    return loads_limited(read_limited(path, what=what, max_bytes=max_bytes), what=what,
                         max_bytes=max_bytes)  # fmt: skip
