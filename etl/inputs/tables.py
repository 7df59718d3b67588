"""Read any table a user brings: CSV (encoding checked, BOM removed) or a GIS file.

The provider lists, the geocoding references and the other readers share these, so every
input is decoded, checked and reported the same way (the file, the byte and line, the fix).
Control characters in text cells (NUL, CR/LF inside a quoted field, C0 and C1 controls) are
replaced by a space as the table is read; each changed cell is listed in
``frame.attrs["control_chars"]`` (only where there are any; see :mod:`etl.controls`; a reader
pops it) and one line says how many. Given the input's ``role``, the cells are also recorded
for the build's ``reports/inputs_cleaned.csv`` (:func:`etl.controls.record_cleaned`).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from etl._errors import InputError
from etl.controls import (
    FEATURE_FIRST_ROW,
    TABLE_FIRST_ROW,
    any_controls,
    clean_frame,
    log_cleaned,
    record_cleaned,
)
from etl.inputs.addresses import clean_text

logger = logging.getLogger(__name__)

_ENCODINGS_TO_TRY: Final[tuple[str, ...]] = ("utf-8", "cp1252", "latin-1")
#: Key of ``frame.attrs`` listing the cells whose control characters were replaced.
CONTROL_CHARS_ATTR: Final[str] = "control_chars"


def source_format(src: Any, path: Path) -> str:
    """Return a source's format: the declared one, or guessed from the file suffix."""
    fmt = getattr(src, "format", "auto")
    if fmt != "auto":
        return fmt
    name = path.name.lower()
    for suffix, guess in ((".csv", "csv"), (".txt", "csv"), (".tsv", "csv"), (".gpkg", "gpkg")):
        if name.endswith(suffix):
            return guess
    if name.endswith((".shp", ".zip")):
        return "shp"
    if name.endswith((".geojson", ".json")):
        return "geojson"
    msg = f"{path}: cannot tell the format from the suffix; set `format` (csv, gpkg, shp, geojson)"
    raise InputError(msg)


def decode_csv_bytes(data: bytes, *, encoding: str, path: Path | str) -> str:
    """Decode a CSV file's bytes, raising a helpful error when the encoding is wrong.

    A UTF-8 byte-order mark is removed. On failure the message names the file, the byte
    offset and line, and an encoding that does decode the file.

    Parameters
    ----------
    data
        The file's bytes.
    encoding
        The declared encoding.
    path
        The file (for messages).

    Returns
    -------
    str
        The text.

    Raises
    ------
    InputError
        If the bytes are not valid in ``encoding``.
    """
    enc = encoding.lower().replace("_", "-")
    if enc in {"utf-8", "utf8"}:
        enc = "utf-8-sig"
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        snippet = data[max(0, exc.start - 20) : exc.end + 20].decode("latin-1", errors="replace")
        works = [e for e in _ENCODINGS_TO_TRY if e != enc.replace("-sig", "") and _decodes(data, e)]
        hint = ""
        if works:
            # latin-1 reads any bytes; cp1252 is what most "latin-1" exports really are
            hint = f"; it decodes as {' and as '.join(works)}: set `encoding: {works[-1]}`"
            hint += f" (or {works[0]})" if len(works) > 1 else ""
            hint += " for this source"
        msg = (
            f"{path}: not valid {encoding} at byte {exc.start:,} (line {line:,}, near {snippet!r})"
            f"{hint}."
        )
        raise InputError(msg) from None
    except LookupError:
        msg = f"{path}: unknown encoding {encoding!r}; use e.g. utf-8, cp1252 or latin-1"
        raise InputError(msg) from None


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def read_table(
    path: Path,
    *,
    fmt: str,
    encoding: str = "utf-8",
    layer: str | None = None,
    crs: str | None = None,
    reader_path: str | None = None,
    role: str | None = None,
) -> tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray] | None]:
    """Read a CSV or vector file into text columns and (for vector files) WGS84 lon/lat.

    Parameters
    ----------
    path
        The file on disk (for existence checks and messages).
    fmt
        "csv", "gpkg", "shp" or "geojson".
    encoding
        CSV encoding (a UTF-8 BOM is always accepted).
    layer
        Layer of a multi-layer file (default: the first).
    crs
        CRS to assume for a vector layer that declares none (None: such a layer is an error).
    reader_path
        Path string for GDAL (``zip://…!member.shp``); default ``path``.
    role
        The input's role in the build (as in the manifest's ``inputs``, e.g.
        ``providers.clinics``): its cleaned cells are recorded under it (rows of a CSV as a
        spreadsheet numbers them, the header being row 1; features of a GIS file from 1).
        None: only ``attrs`` and the log line.

    Returns
    -------
    frame : pandas.DataFrame
        Every attribute column as text ("" for missing), index 0..n-1 in file order.
    lonlat : tuple of numpy.ndarray or None
        WGS84 lon and lat of each feature (a representative point for lines/polygons),
        NaN where a feature has no geometry; None for CSV.

    Raises
    ------
    InputError
        If the file is missing, undecodable, unreadable, or a layer has no CRS.
    """
    if not path.exists():
        msg = f"{path}: file not found; check the `path` of this source in the region config."
        raise InputError(msg)
    if fmt == "csv":
        text = decode_csv_bytes(path.read_bytes(), encoding=encoding, path=path)
        try:
            frame = pd.read_csv(
                io.StringIO(text),
                dtype=str,
                keep_default_na=False,
                sep="\t" if path.suffix == ".tsv" else ",",
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            msg = f"{path}: not a readable CSV: {exc}"
            raise InputError(msg) from None
        frame.columns = [str(c).strip() for c in frame.columns]
        frame = frame.reset_index(drop=True)
        # A cell holding a line break spreads its record over two or more lines: with one
        # line per record and no other control character, no cell holds one (fast path).
        lines = text.count("\n") + (not text.endswith("\n"))
        if lines != len(frame) + 1 or any_controls(text, allow="\r\n"):
            frame = _clean_controls(frame, path, role=role, first_row=TABLE_FIRST_ROW)
        else:
            record_cleaned(role, path, [])
        return frame, None
    import pyogrio

    rp = reader_path or str(path)
    try:
        gdf = pyogrio.read_dataframe(rp, layer=layer)
    except Exception as exc:  # pyogrio raises DataSourceError/DataLayerError and friends
        msg = f"{path}: could not read {fmt} file{f' layer {layer!r}' if layer else ''}: {exc}"
        raise InputError(msg) from None
    if gdf.crs is None:
        if crs is None:
            msg = (
                f"{path}: the layer declares no CRS; add `crs:` (e.g. EPSG:4326) to this source "
                "in the region config, or fix the file's .prj"
            )
            raise InputError(msg)
        gdf = gdf.set_crs(crs)
    elif crs is not None and CRS.from_user_input(crs) != gdf.crs:
        msg = (
            f"{path}: the file's CRS is {gdf.crs.to_string()} but the config declares {crs}; "
            "remove `crs` from this source (the file's own CRS is used) or fix the file"
        )
        raise InputError(msg)
    geom = gdf.geometry
    pts = geom.where(geom.geom_type == "Point", geom.representative_point())
    pts = gpd.GeoSeries(pts, crs=gdf.crs).to_crs("EPSG:4326")
    empty = pts.isna() | pts.is_empty
    lon = np.where(empty, np.nan, pts.x.to_numpy(float, na_value=np.nan))
    lat = np.where(empty, np.nan, pts.y.to_numpy(float, na_value=np.nan))
    frame = _clean_controls(
        pd.DataFrame(gdf.drop(columns=gdf.geometry.name)),
        path,
        role=role,
        first_row=FEATURE_FIRST_ROW,
    )
    changes = frame.attrs.pop(CONTROL_CHARS_ATTR, [])
    for c in frame.columns:
        frame[c] = frame[c].map(clean_text).astype(object)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.reset_index(drop=True)
    if changes:
        frame.attrs[CONTROL_CHARS_ATTR] = changes
    return frame, (lon, lat)


def _clean_controls(
    frame: pd.DataFrame, path: Path, *, role: str | None, first_row: int
) -> pd.DataFrame:
    """Replace control characters in a table's text cells; list, log and record the cells.

    Parameters
    ----------
    frame
        The table as read (index 0..n-1 in file order).
    path
        Its file (for the log line and the record).
    role
        The input's role (None: not recorded for the build's report).
    first_row
        Number of the first data row (2 for a CSV, the header being row 1; 1 for features).

    Returns
    -------
    pandas.DataFrame
        The cleaned table; where any cell changed, ``attrs["control_chars"]`` lists each
        (``column``, ``position``: 0-based row, ``found``: the characters, named).
    """
    cleaned, changes = clean_frame(frame)
    if changes:
        # Only when there are any: pandas deep-copies attrs on every operation.
        cleaned.attrs[CONTROL_CHARS_ATTR] = changes
    log_cleaned(path, changes, first_row=first_row)
    record_cleaned(role, path, changes, first_row=first_row)
    return cleaned
