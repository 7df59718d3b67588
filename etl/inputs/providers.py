"""Read provider lists of any shape into one providers layer, accounting for every row.

Each source in ``cfg.providers`` (CSV, GeoPackage, shapefile or GeoJSON) is read as its
publisher shaped it, its columns mapped onto the providers schema through the config's
``columns``, its categories through ``category``/``category_map``. Coordinates a source
gives are checked — (0, 0), swapped lon/lat (fixed and noted), values that cannot be in the
declared CRS, points outside the region — and rows without coordinates are geocoded from
their address (:mod:`etl.inputs.geocode`). The layer keeps the region's providers plus those within
``cfg.buffer_km`` beyond its edge (people near a border cross it for care).

Every input row ends in exactly one place, and the per-source report adds up::

    rows_in == rows_out + rejected + outside + merged + dropped

``rejected``
    a row in the area of interest that cannot be used (no address and no coordinates,
    unparseable address, address not found, unknown category, (0, 0) …): listed with its
    reason in :attr:`ProvidersResult.rejects`;
``outside``
    a row located (or, for address-only rows that could not be placed, addressed) beyond the
    region + buffer — counted, not listed, since a national file has tens of thousands;
``merged``
    a row folded into another: the same site in two lists or twice in one (same category
    and same normalised address, or within 30 m with similar names), and practitioner rows
    of a buprenorphine locator collapsed to one site per address (``capacity`` = distinct
    practitioners);
``dropped``
    a row whose category the config maps to ``"drop"``.

Special mapped fields (``columns`` keys) beyond the schema: ``practitioner`` or
``first_name`` + ``last_name`` (collapse practitioner rows to sites), ``lon``/``lat``; any
other key (e.g. ``name2``) is carried through as an extra text column.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from rapidfuzz import fuzz
from scipy.spatial import cKDTree
from tqdm import tqdm

from etl._errors import InputError
from etl.categories import CATEGORIES, CATEGORY_LABELS
from etl.inputs.addresses import (
    clean_text,
    normalize_city,
    normalize_phone,
    normalize_state,
    normalize_zip,
    parse_address,
)
from etl.inputs.tables import CONTROL_CHARS_ATTR, read_table, source_format

if TYPE_CHECKING:
    from etl.config import ProviderSource, RegionConfig
    from etl.inputs.geocode import Geocoder

log = logging.getLogger(__name__)

#: Columns of the providers layer, in order (extra mapped fields follow, then geometry).
PROVIDER_COLUMNS: Final[tuple[str, ...]] = (
    "id",
    "name",
    "category",
    "services",
    "address",
    "address2",
    "city",
    "state",
    "zip",
    "phone",
    "lon",
    "lat",
    "geocode_quality",
    "source",
    "source_date",
    "capacity",
    "medicaid",
    "telehealth",
    "languages",
    "accepting_new",
    "hours",
    "naloxone",
    "show_exact",
    "in_region",
    "notes",
)
#: Schema fields a source may map with ``columns``.
MAPPABLE_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "name", "category", "services", "address", "address2", "city", "state", "zip", "phone",
        "lon", "lat", "capacity", "medicaid", "telehealth", "languages", "accepting_new", "hours",
        "naloxone", "show_exact", "practitioner", "first_name", "last_name",
    }
)  # fmt: skip
BOOL_FIELDS: Final[tuple[str, ...]] = ("medicaid", "telehealth", "accepting_new", "naloxone")
TEXT_FIELDS: Final[tuple[str, ...]] = ("languages", "hours")
#: Two sites of one category this close (metres) with similar names are one site.
MERGE_DISTANCE_M: Final[float] = 30.0
#: Two sites of one category with the same normalised address this close are one site.
SAME_ADDRESS_DISTANCE_M: Final[float] = 300.0
#: A site this close (metres) to the region's outline counts as in the region.
IN_REGION_TOLERANCE_M: Final[float] = 10.0
#: Minimum rapidfuzz token-set ratio for "similar names".
NAME_SIMILARITY: Final[float] = 60.0
#: Show at most this many rejected rows in an InputError message.
_MAX_LISTED: Final[int] = 8

#: Columns of :attr:`ProvidersResult.cleaned`.
CLEANED_COLUMNS: Final[tuple[str, ...]] = ("source", "file", "row", "column", "found")

_TRUE = frozenset({"yes", "y", "true", "t", "1", "x", "si", "sí"})
_FALSE = frozenset({"no", "n", "false", "f", "0"})


@dataclass
class ProvidersResult:
    """What :func:`load_providers` returns.

    Attributes
    ----------
    providers
        EPSG:4326 GeoDataFrame, one row per site, columns :data:`PROVIDER_COLUMNS` (plus
        extra mapped fields) and geometry.
    rejects
        One row per rejected input row: source, file, row (as a spreadsheet shows it, the
        header being row 1), reason, and the row's raw fields.
    report
        Per source name: file, format, rows_in, rows_out, rejected, outside, merged,
        dropped, swapped, quality (counts per geocode quality of the rows out) and reasons
        (counts per reject reason).
    merges
        One row per folded input row: source, row, kept_id (the site it joined), kept_source,
        how ("same address", "within 30 m, similar name", "practitioners at one address").
    cleaned
        One row per input cell whose control characters (NUL, CR/LF, C0/C1 controls) were
        replaced by a space when the file was read: source, file, row (as in ``rejects``),
        column, found (the characters, named). ``report[source]["cleaned"]`` counts them.
    """

    providers: gpd.GeoDataFrame
    rejects: pd.DataFrame
    report: dict[str, dict[str, Any]]
    merges: pd.DataFrame = field(default_factory=pd.DataFrame)
    cleaned: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(CLEANED_COLUMNS))
    )


def _check_columns(src: ProviderSource, frame: pd.DataFrame, path: Path) -> dict[str, str]:
    """Return the mapping schema field → file column, matching names case-insensitively."""
    lookup = {c.lower(): c for c in frame.columns}
    mapping: dict[str, str] = {}
    missing = []
    for fld, col in src.columns.items():
        if col in frame.columns:
            mapping[fld] = col
        elif col.strip().lower() in lookup:
            mapping[fld] = lookup[col.strip().lower()]
        else:
            missing.append(f"{fld}: {col!r}")
    if missing:
        msg = (
            f"{path}: source {src.name!r} maps column(s) not in the file ({'; '.join(missing)}). "
            f"The file's columns are: {', '.join(map(repr, frame.columns))}. "
            "Fix `columns` for this source in the region config."
        )
        raise InputError(msg)
    return mapping


# --------------------------------------------------------------------------------------
# Mapping a source onto the schema
# --------------------------------------------------------------------------------------


def _parse_bool(value: str) -> Any:
    v = clean_text(value).lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return pd.NA


def _parse_capacity(value: str) -> int | None:
    v = clean_text(value)
    if not v:
        return None
    try:
        n = int(float(v))
    except ValueError:
        return None
    return n if n >= 1 else None


def _to_float(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return floats and a mask of cells that held text that is not a number."""
    text = values.map(clean_text)
    num = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce").to_numpy(float)
    bad = (text != "").to_numpy() & ~np.isfinite(num)
    return num, bad


def _map_source(
    src: ProviderSource, frame: pd.DataFrame, mapping: dict[str, str], lonlat: Any, path: Path
) -> pd.DataFrame:
    """Turn one source's rows into canonical working columns (one row per input row)."""
    n = len(frame)
    out = pd.DataFrame(index=range(n))
    out["_source"] = src.name
    out["_file"] = str(path)
    out["_row"] = np.arange(n) + 2  # header is row 1 in a spreadsheet
    out["_order"] = np.arange(n)

    def col(fld: str) -> pd.Series:
        if fld in mapping:
            return frame[mapping[fld]].map(clean_text)
        return pd.Series([""] * n, index=out.index, dtype=object)

    out["name"] = col("name")
    for fld in ("services", "address", "address2", "languages", "hours"):
        out[fld] = col(fld)
    out["city"] = col("city").map(lambda v: v.title() if v.isupper() or v.islower() else v)
    out["state"] = col("state").map(normalize_state)
    out["zip"] = col("zip").map(normalize_zip)
    out["phone"] = col("phone").map(normalize_phone)
    out["capacity_raw"] = col("capacity")
    for fld in BOOL_FIELDS:
        out[fld] = col(fld).map(_parse_bool) if fld in mapping else pd.NA
    out["show_exact"] = col("show_exact").map(_parse_bool) if "show_exact" in mapping else True
    out["show_exact"] = out["show_exact"].map(lambda v: True if v is pd.NA else bool(v))

    # practitioner identity (buprenorphine locator): collapse to sites later
    if "practitioner" in mapping:
        out["_practitioner"] = col("practitioner").str.upper()
    elif "first_name" in mapping or "last_name" in mapping:
        out["_practitioner"] = (col("first_name") + " " + col("last_name")).str.strip().str.upper()
    else:
        out["_practitioner"] = ""
    out["_collapse"] = bool(
        "practitioner" in mapping or "first_name" in mapping or "last_name" in mapping
    )

    # extra mapped fields carried through as text
    for fld in mapping:
        if fld not in MAPPABLE_FIELDS:
            out[f"x_{fld}"] = col(fld)

    # category
    if "category" in mapping:
        out["_category_raw"] = col("category")
    else:
        out["_category_raw"] = ""
    # coordinates
    out["_bad_coord"] = False
    if "lon" in mapping and "lat" in mapping:
        lon, bad_lon = _to_float(frame[mapping["lon"]])
        lat, bad_lat = _to_float(frame[mapping["lat"]])
        out["_bad_coord"] = bad_lon | bad_lat
        if CRS.from_user_input(src.crs) != CRS.from_epsg(4326):
            tr = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True)
            x, y = tr.transform(lon, lat)
            lon, lat = np.asarray(x, float), np.asarray(y, float)
        out["_lon"], out["_lat"] = lon, lat
    elif lonlat is not None:
        out["_lon"], out["_lat"] = lonlat
    else:
        out["_lon"], out["_lat"] = np.nan, np.nan
    out["_raw"] = frame.to_dict(orient="records")
    return out


def _resolve_categories(src: ProviderSource, work: pd.DataFrame) -> pd.Series:
    """Return the canonical category per row; "" = unknown value, "drop" = dropped."""
    if src.category is not None and "category" not in src.columns:
        return pd.Series([src.category] * len(work), index=work.index, dtype=object)
    cmap = {str(k).strip().lower(): v for k, v in src.category_map.items()}

    def one(raw: str) -> str:
        key = raw.strip().lower()
        if key in cmap:
            return cmap[key]
        if key in CATEGORIES:
            return key
        if not key and src.category is not None:
            return src.category
        return ""

    return work["_category_raw"].map(one)


# --------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------


def load_providers(
    cfg: RegionConfig,
    region_wgs84: shapely.Geometry,
    *,
    geocoder: Geocoder | None = None,
    cache_dir: Path | None = None,
) -> ProvidersResult:
    """Read every provider source of a region into one providers layer.

    Parameters
    ----------
    cfg
        The region config; ``cfg.providers`` lists the sources, ``cfg.buffer_km`` the buffer
        kept beyond the region, ``cfg.crs`` the metric CRS used for distances.
    region_wgs84
        The region's outline in EPSG:4326.
    geocoder
        Geocoder for rows without coordinates; default: built from ``cfg.geocoding`` when
        the config has that section, else none (address-only rows in the region are then
        rejected with the reason "no coordinates and no geocoder configured").
    cache_dir
        Folder for the online geocoding cache (when the config enables online geocoding).

    Returns
    -------
    ProvidersResult
        The layer, the rejects, the per-source report and the merges.

    Raises
    ------
    InputError
        If a file is missing or unreadable, its encoding is not the declared one, a mapped
        column is absent, a layer has no CRS, most coordinates cannot be in the declared
        CRS, or a source with ``partial_ok: false`` has rejected rows.
    """
    if geocoder is None and getattr(cfg, "geocoding", None) is not None:
        from etl.inputs.geocode import geocoder_from_config

        geocoder = geocoder_from_config(cfg, cache_dir=cache_dir)

    frames = []
    cleaned: list[dict[str, Any]] = []
    report: dict[str, dict[str, Any]] = {}
    sources = tqdm(cfg.providers, desc="load-providers", unit="list", disable=None, leave=False)
    for order, src in enumerate(sources):
        path = cfg.resolve(src.path)
        fmt = source_format(src, path)
        frame, lonlat = read_table(
            path,
            fmt=fmt,
            encoding=src.encoding,
            layer=src.layer,
            crs=src.crs if "crs" in src.model_fields_set else None,
            reader_path=cfg.reader_path(src.path),
            role=f"providers.{src.name}",
        )
        changes = frame.attrs.pop(CONTROL_CHARS_ATTR, [])
        cleaned += [
            {
                "source": src.name,
                "file": str(path),
                "row": c["position"] + 2,  # as a spreadsheet shows it, like `_row`
                "column": c["column"],
                "found": c["found"],
            }
            for c in changes
        ]
        if frame.empty:
            msg = (
                f"{path}: provider list {src.name!r} has no rows (a header at most); "
                "export the list again, or remove this source from the region config"
            )
            raise InputError(msg)
        mapping = _check_columns(src, frame, path)
        work = _map_source(src, frame, mapping, lonlat, path)
        if src.address_format == "packed":  # "street|city, ST ZIP" (etl.inputs.packed)
            from etl.inputs.packed import unpack_addresses

            unpack_addresses(work)
        if src.partial:
            work["x_list_note"] = src.partial
        work["_src_order"] = order
        work["_date"] = src.date
        work["category"] = _resolve_categories(src, work)
        _check_declared_crs(src, work, path)
        frames.append(work)
        report[src.name] = {
            "file": str(path),
            "format": fmt,
            "rows_in": len(work),
            "cleaned": len(changes),
        }
        log.info("read %s rows from source %r (%s)", f"{len(work):,}", src.name, path.name)

    cleaned_frame = pd.DataFrame(cleaned, columns=list(CLEANED_COLUMNS))
    if not frames:
        return _empty_result(report)
    work = pd.concat(frames, ignore_index=True)
    work["_status"] = ""  # "", "rejected", "outside", "dropped", "merged"
    work["_reason"] = ""
    work["notes"] = ""
    work["geocode_quality"] = ""

    _apply_category_status(work)
    area = _Area(cfg, region_wgs84)
    _check_coordinates(work, area)
    _geocode_missing(work, area, geocoder)
    _place_rows(work, area, has_geocoder=geocoder is not None)

    kept = work[work["_status"] == ""].copy()
    kept, merges = _merge_sites(kept, area)
    if len(merges):
        work.loc[merges["_idx"].to_numpy(), "_status"] = "merged"
    providers, ids = _finish(kept, area)
    merges["kept_id"] = [
        ids.get((s, r), "") for s, r in zip(merges["kept_source"], merges["kept_row"], strict=True)
    ]
    merges_out = merges[["source", "row", "kept_id", "kept_source", "kept_row", "how"]]
    rejects = _rejects_frame(work)
    _fill_report(report, work, providers)
    _check_partial(cfg, rejects)
    log.info(
        "load_providers: %s sites from %s rows (%s rejected, %s outside, %s merged, %s dropped)",
        f"{len(providers):,}",
        f"{len(work):,}",
        f"{(work['_status'] == 'rejected').sum():,}",
        f"{(work['_status'] == 'outside').sum():,}",
        f"{(work['_status'] == 'merged').sum():,}",
        f"{(work['_status'] == 'dropped').sum():,}",
    )
    return ProvidersResult(
        providers=providers,
        rejects=rejects,
        report=report,
        merges=merges_out,
        cleaned=cleaned_frame,
    )


def _empty_result(report: dict[str, dict[str, Any]]) -> ProvidersResult:
    cols = {c: pd.Series(dtype=object) for c in PROVIDER_COLUMNS}
    gdf = gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")
    rejects = pd.DataFrame(columns=["source", "file", "row", "reason"])
    return ProvidersResult(providers=gdf, rejects=rejects, report=report)


class _Area:
    """The region, its buffer, and the transforms between WGS84 and the metric CRS."""

    def __init__(self, cfg: RegionConfig, region_wgs84: shapely.Geometry):
        self.crs = cfg.crs
        self.buffer_m = cfg.buffer_km * 1000.0
        self.to_metric = Transformer.from_crs("EPSG:4326", cfg.crs, always_xy=True)
        region_m = gpd.GeoSeries([region_wgs84], crs="EPSG:4326").to_crs(cfg.crs).iloc[0]
        self.region_m = region_m
        self.buffered_m = region_m.buffer(self.buffer_m) if self.buffer_m > 0 else region_m
        shapely.prepare(self.region_m)
        shapely.prepare(self.buffered_m)
        minx, miny, maxx, maxy = (
            gpd.GeoSeries([self.buffered_m], crs=cfg.crs).to_crs(4326).total_bounds
        )
        self.bounds_wgs84 = (minx, miny, maxx, maxy)
        self.zips: set[str] = set()
        self.cities: set[tuple[str, str]] = set()

    def xy(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
        x = np.full(len(lon), np.nan)
        y = np.full(len(lon), np.nan)
        if ok.any():
            xx, yy = self.to_metric.transform(lon[ok], lat[ok])
            x[ok], y[ok] = xx, yy
        return x, y

    def inside(self, lon: np.ndarray, lat: np.ndarray, *, buffered: bool = True) -> np.ndarray:
        x, y = self.xy(np.asarray(lon, float), np.asarray(lat, float))
        ok = np.isfinite(x)
        res = np.zeros(len(x), dtype=bool)
        if ok.any():
            geom = self.buffered_m if buffered else self.region_m
            res[ok] = shapely.contains_xy(geom, x[ok], y[ok])
        return res


def _apply_category_status(work: pd.DataFrame) -> None:
    drop = work["category"] == "drop"
    work.loc[drop, "_status"] = "dropped"
    work.loc[drop, "_reason"] = "category mapped to 'drop'"
    unknown = work["category"] == ""
    raw = work.loc[unknown, "_category_raw"]
    work.loc[unknown, "_status"] = "rejected"
    work.loc[unknown, "_reason"] = [
        f"unknown category value {r!r}; add it to `category_map`" if r else "no category value"
        for r in raw
    ]


def _check_declared_crs(src: ProviderSource, work: pd.DataFrame, path: Path) -> None:
    """Raise when most coordinates cannot be in the declared CRS (e.g. metres read as degrees)."""
    lon, lat = work["_lon"].to_numpy(float), work["_lat"].to_numpy(float)
    have = np.isfinite(lon) & np.isfinite(lat)
    if not have.any():
        return
    impossible = have & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    if impossible.sum() > 0.5 * have.sum():
        i = int(np.nonzero(impossible)[0][0])
        msg = (
            f"{path}: {impossible.sum():,} of {have.sum():,} coordinates cannot be lon/lat "
            f"(row {work['_row'].iloc[i]} has {lon[i]:.1f}, {lat[i]:.1f}); they look projected. "
            f"Set `crs:` for source {src.name!r} to the CRS they are in (declared: {src.crs})."
        )
        raise InputError(msg)


def _reject(work: pd.DataFrame, mask: np.ndarray | pd.Series, reason: str | list[str]) -> None:
    mask = np.asarray(mask, dtype=bool) & (work["_status"] == "").to_numpy()
    if not mask.any():
        return
    work.loc[mask, "_status"] = "rejected"
    if isinstance(reason, list):
        work.loc[mask, "_reason"] = [r for r, m in zip(reason, mask, strict=True) if m]
    else:
        work.loc[mask, "_reason"] = reason


def _check_coordinates(work: pd.DataFrame, area: _Area) -> None:
    """Check source coordinates: text, (0, 0), impossible values, swapped lon/lat."""
    open_ = (work["_status"] == "").to_numpy()
    lon, lat = work["_lon"].to_numpy(float).copy(), work["_lat"].to_numpy(float).copy()
    bad_text = work["_bad_coord"].to_numpy(bool)
    _reject(work, open_ & bad_text, "coordinates are not numbers")
    have = np.isfinite(lon) & np.isfinite(lat) & ~bad_text
    zero = have & (lon == 0) & (lat == 0)
    _reject(work, open_ & zero, "coordinates (0, 0)")
    impossible = have & ~zero & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    _reject(work, open_ & impossible, "coordinates out of lon/lat range (not in the declared CRS?)")
    cand = have & ~zero & ~impossible
    inside = np.zeros(len(work), dtype=bool)
    inside[cand] = area.inside(lon[cand], lat[cand])
    swap = cand & ~inside
    if swap.any():
        swapped_inside = np.zeros(len(work), dtype=bool)
        swapped_inside[swap] = area.inside(lat[swap], lon[swap])
        fix = swap & swapped_inside & open_
        if fix.any():
            lon[fix], lat[fix] = lat[fix], lon[fix].copy()
            work.loc[fix, "notes"] = "swapped lon/lat"
            log.info("fixed %s rows with swapped lon/lat", f"{fix.sum():,}")
            inside |= fix
    work["_lon"], work["_lat"] = lon, lat
    work["_has_coord"] = cand
    work["_coord_inside"] = inside
    work.loc[cand & (work["_status"] == "").to_numpy(), "geocode_quality"] = "source"
    # The area of interest's ZIPs and cities: from rows whose own coordinates are inside.
    sel = inside & (work["_status"] == "").to_numpy()
    _learn_aoi(area, work.loc[sel])


def _learn_aoi(area: _Area, rows: pd.DataFrame) -> None:
    """Add the ZIPs and (city, state) pairs of rows placed inside the area to its lists."""
    area.zips |= set(rows["zip"]) - {""}
    area.cities |= {
        (normalize_city(c), s) for c, s in zip(rows["city"], rows["state"], strict=True) if c
    }


def _in_aoi(row_zip: str, row_city: str, row_state: str, area: _Area) -> bool:
    """Whether a row's ZIP, or its city (in its state), is one seen inside the area."""
    if row_zip and row_zip in area.zips:
        return True
    return bool(row_city) and (normalize_city(row_city), row_state) in area.cities


def _geocode_missing(work: pd.DataFrame, area: _Area, geocoder: Geocoder | None) -> None:
    """Geocode rows without usable coordinates, and suspect ones.

    Suspect: coordinates outside the region while the ZIP is inside it (a likely wrong point).
    """
    open_ = (work["_status"] == "").to_numpy()
    has = work["_has_coord"].to_numpy(bool)
    inside = work["_coord_inside"].to_numpy(bool)
    # ZIPs whose reference centre lies inside the area (offline geocoder's index)
    for g in getattr(geocoder, "geocoders", [geocoder]):
        index = getattr(g, "index", None)
        if index is None:
            continue
        zips, lon, lat = index.centres_lonlat()
        inside_zip = area.inside(lon, lat)
        area.zips |= {z for z, ok in zip(zips, inside_zip, strict=True) if ok}
    aoi = _aoi_mask(work, area)
    parsed = [
        parse_address(a, a2, c, s, z)
        for a, a2, c, s, z in zip(
            work["address"], work["address2"], work["city"], work["state"], work["zip"], strict=True
        )
    ]
    work["_addr_key"] = [p.address_key for p in parsed]
    work["_parse_kind"] = [p.kind for p in parsed]
    suspect = open_ & has & ~inside & aoi & (work["_addr_key"] != "").to_numpy()
    need = open_ & ~has & work["_parse_kind"].isin(["street", "intersection"]).to_numpy()
    ask = need | suspect
    work["_geo_lon"], work["_geo_lat"] = np.nan, np.nan
    work["_geo_quality"] = ""
    work["_geo_note"] = ""
    if geocoder is not None and ask.any():
        sub = work.loc[ask, ["address", "address2", "city", "state", "zip"]]
        res = geocoder.geocode(sub)
        work.loc[ask, "_geo_lon"] = res["lon"].to_numpy(float)
        work.loc[ask, "_geo_lat"] = res["lat"].to_numpy(float)
        work.loc[ask, "_geo_quality"] = res["geocode_quality"].to_numpy(object)
        work.loc[ask, "_geo_note"] = [
            f"geocoded by {g}: {m}" if q else "" for g, m, q in zip(
                res["geocoder"], res["geocode_match"], res["geocode_quality"], strict=True
            )
        ]  # fmt: skip
        # ZIPs and towns of addresses placed inside the area belong to it too: a row there
        # that could not be placed is a reject to list, not a row from elsewhere.
        placed = work["_geo_quality"].isin(["address_point", "street"]).to_numpy() & ask
        lon, lat = work["_geo_lon"].to_numpy(float), work["_geo_lat"].to_numpy(float)
        inside_geo = np.zeros(len(work), dtype=bool)
        inside_geo[placed] = area.inside(lon[placed], lat[placed])
        _learn_aoi(area, work.loc[inside_geo])
        aoi = _aoi_mask(work, area)
    work["_aoi"] = aoi


def _aoi_mask(work: pd.DataFrame, area: _Area) -> np.ndarray:
    rows = zip(work["zip"], work["city"], work["state"], strict=True)
    return np.array([_in_aoi(z, c, s, area) for z, c, s in rows], dtype=bool)


def _place_rows(work: pd.DataFrame, area: _Area, *, has_geocoder: bool) -> None:
    """Decide each open row's final position, or mark it rejected/outside."""
    open_ = (work["_status"] == "").to_numpy()
    has = work["_has_coord"].to_numpy(bool)
    inside = work["_coord_inside"].to_numpy(bool)
    aoi = work["_aoi"].to_numpy(bool)
    gq = work["_geo_quality"].to_numpy(object)
    glon, glat = work["_geo_lon"].to_numpy(float), work["_geo_lat"].to_numpy(float)
    geo_ok = gq != ""
    geo_inside = np.zeros(len(work), dtype=bool)
    geo_inside[geo_ok] = area.inside(glon[geo_ok], glat[geo_ok])
    lon, lat = work["_lon"].to_numpy(float).copy(), work["_lat"].to_numpy(float).copy()
    quality = work["geocode_quality"].to_numpy(object).copy()
    notes = work["notes"].to_numpy(object).copy()
    status = work["_status"].to_numpy(object).copy()
    reason = work["_reason"].to_numpy(object).copy()
    kinds = work["_parse_kind"].to_numpy(object)
    addr = work["address"].to_numpy(object)

    for i in np.nonzero(open_)[0]:
        if has[i] and inside[i]:
            continue
        if has[i]:  # outside
            if geo_ok[i] and geo_inside[i] and gq[i] in {"address_point", "street"}:
                lon[i], lat[i], quality[i] = glon[i], glat[i], gq[i]
                notes[i] = _join_notes(
                    notes[i], "published coordinates outside the region replaced by geocode"
                )
            elif aoi[i]:
                status[i], reason[i] = (
                    "rejected",
                    "coordinates outside region + buffer, but ZIP/city is in the region",
                )
            else:
                status[i] = "outside"
            continue
        # no coordinates
        if geo_ok[i]:
            if geo_inside[i]:
                lon[i], lat[i], quality[i] = glon[i], glat[i], gq[i]
                notes[i] = _join_notes(notes[i], work["_geo_note"].iat[i])
            elif aoi[i] and gq[i] in {"zip", "city"}:
                status[i], reason[i] = (
                    "rejected",
                    f"address not found; its {gq[i]} centre is outside the region",
                )
            else:
                status[i] = "outside"
            continue
        if not aoi[i]:
            status[i] = "outside"
            continue
        status[i] = "rejected"
        if not addr[i] and not work["address2"].iat[i]:
            reason[i] = "no address and no coordinates"
        elif kinds[i] == "po_box":
            reason[i] = f"PO box is not a site address: {addr[i]!r}"
        elif kinds[i] != "street":
            reason[i] = f"unparseable address {addr[i]!r} (no house number and street)"
        elif not has_geocoder:
            reason[i] = "no coordinates and no geocoder configured"
        else:
            reason[i] = "address not found by the geocoder"
    work["_lon"], work["_lat"] = lon, lat
    work["geocode_quality"] = quality
    work["notes"] = notes
    work["_status"] = status
    work["_reason"] = reason


def _join_notes(a: str, b: str) -> str:
    return "; ".join(x for x in (a, b) if x)


# --------------------------------------------------------------------------------------
# Collapsing and merging
# --------------------------------------------------------------------------------------


def _norm_name(name: str) -> str:
    text = re.sub(r"[^A-Z0-9 ]", " ", name.upper())
    text = re.sub(r"\b(INC|LLC|LP|LTD|CORP|CO|THE|OF|AND|DBA)\b", " ", text)
    return re.sub(r"\s+", " ", text).strip()


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _merge_sites(kept: pd.DataFrame, area: _Area) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Collapse practitioner rows per address, then merge the same site across lists."""
    from etl.inputs.geocode import QUALITY_RANK

    kept = kept.copy()
    kept["_idx"] = kept.index
    x, y = area.xy(kept["_lon"].to_numpy(float), kept["_lat"].to_numpy(float))
    kept["_x"], kept["_y"] = x, y
    kept["_qrank"] = kept["geocode_quality"].map(lambda q: QUALITY_RANK.get(q, 99))
    kept["_nname"] = kept["name"].map(_norm_name)
    kept["_generic_name"] = kept["name"] == ""
    kept["capacity"] = [_parse_capacity(v) or 1 for v in kept["capacity_raw"]]
    kept["_practitioners"] = [{p} if p else set() for p in kept["_practitioner"]]
    kept = kept.sort_values(["_qrank", "_src_order", "_order"], kind="stable").reset_index(
        drop=True
    )
    n = len(kept)
    uf = _UnionFind(n)
    how: dict[int, str] = {}

    # 1. practitioner rows at one address (within a collapsing source)
    coll = kept.index[kept["_collapse"].to_numpy(bool)]
    if len(coll):
        keyed = kept.loc[coll]
        site_key = keyed["_addr_key"].where(keyed["_addr_key"] != "", keyed["address"].str.upper())
        groups = keyed.groupby(
            [keyed["_source"], keyed["category"], site_key, keyed["zip"]]
        ).indices
        for idxs in groups.values():
            rows = coll[idxs]
            for r in rows[1:]:
                uf.union(rows[0], r)
                how[r] = "practitioners at one address"

    # 2. same site: same category and same address nearby, or very close with similar names
    xy = np.column_stack([np.nan_to_num(x_, nan=1e12) for x_ in (kept["_x"], kept["_y"])])
    tree = cKDTree(xy)
    pairs = tree.query_pairs(SAME_ADDRESS_DISTANCE_M, output_type="ndarray")
    cat = kept["category"].to_numpy(object)
    akey = kept["_addr_key"].to_numpy(object)
    nname = kept["_nname"].to_numpy(object)
    # a position only says "same place" when it is a real one, not a ZIP/city/street centre
    precise = kept["_qrank"].to_numpy() <= QUALITY_RANK["street"]
    for a, b in pairs:
        if cat[a] != cat[b]:
            continue
        d = float(np.hypot(xy[a, 0] - xy[b, 0], xy[a, 1] - xy[b, 1]))
        same_addr = bool(akey[a]) and akey[a] == akey[b]
        similar = (
            d <= MERGE_DISTANCE_M
            and precise[a]
            and precise[b]
            and bool(nname[a])
            and bool(nname[b])
            and fuzz.token_set_ratio(nname[a], nname[b]) >= NAME_SIMILARITY
        )
        if same_addr or similar:
            ra, rb = uf.find(a), uf.find(b)
            if ra != rb:
                uf.union(a, b)
                why = (
                    "same address"
                    if same_addr
                    else f"within {MERGE_DISTANCE_M:.0f} m, similar name"
                )
                how.setdefault(int(max(a, b)), why)
    roots = np.array([uf.find(i) for i in range(n)])
    merged_rows = []
    out_rows = []
    for root, members in pd.Series(range(n)).groupby(roots).groups.items():
        members = sorted(members)
        primary = kept.loc[root].copy()
        grp = kept.loc[members]
        primary["source"] = "; ".join(dict.fromkeys(grp["_source"]))
        primary["source_date"] = "; ".join(d for d in dict.fromkeys(grp["_date"]) if d)
        practitioners = set().union(*grp["_practitioners"])
        primary["capacity"] = max(int(grp["capacity"].max()), len(practitioners) or 1)
        if primary["_generic_name"]:
            names = [nm for nm in grp["name"] if nm]
            if names:
                primary["name"] = names[0]
                primary["_generic_name"] = False
        for fld in ("phone", "address2", "languages", "hours", "city", "zip", "state", *[
            c for c in kept.columns if c.startswith("x_")
        ]):  # fmt: skip
            if not primary[fld]:
                vals = [v for v in grp[fld] if v]
                if vals:
                    primary[fld] = vals[0]
        for fld in BOOL_FIELDS:
            if primary[fld] is pd.NA:
                vals = [v for v in grp[fld] if v is not pd.NA]
                if vals:
                    primary[fld] = bool(vals[0])
        primary["show_exact"] = bool(all(grp["show_exact"]))
        primary["services"] = "; ".join(
            dict.fromkeys(
                s.strip() for v in grp["services"] for s in re.split(r"[;,]", v) if s.strip()
            )
        )
        primary["notes"] = "; ".join(
            dict.fromkeys(n_ for v in grp["notes"] for n_ in v.split("; ") if n_)
        )
        out_rows.append(primary)
        for m in members:
            if m != root:
                merged_rows.append(
                    {
                        "_idx": kept.at[m, "_idx"],
                        "source": kept.at[m, "_source"],
                        "row": int(kept.at[m, "_row"]),
                        "kept_source": primary["_source"],
                        "kept_row": int(primary["_row"]),
                        "how": how.get(m, "same address"),
                    }
                )
    result = pd.DataFrame(out_rows).reset_index(drop=True)
    merges = pd.DataFrame(
        merged_rows, columns=["_idx", "source", "row", "kept_source", "kept_row", "how"]
    )
    if len(merged_rows):
        log.info(
            "merged %s rows into other sites (%s)", f"{len(merges):,}", dict(Counter(merges["how"]))
        )
    return result, merges


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def _site_id(
    source: str, name: str, addr_key: str, zip_: str, category: str, lon: float, lat: float
) -> str:
    where = f"{addr_key}|{zip_}" if addr_key else f"{lon:.5f},{lat:.5f}"
    digest = hashlib.sha1(f"{_norm_name(name)}|{where}|{category}".encode()).hexdigest()[:10]
    return f"{source}:{digest}"


def _finish(kept: pd.DataFrame, area: _Area) -> tuple[gpd.GeoDataFrame, dict[tuple[str, int], str]]:
    """Name, id, services and types of the kept sites; also (source, row) → id."""
    if not len(kept):
        return _empty_result({}).providers, {}
    df = kept.copy()
    label = {c: CATEGORY_LABELS.get(c, c) for c in CATEGORIES}
    generic = df["_generic_name"].to_numpy(bool)
    names = df["name"].to_numpy(object).copy()
    for i in np.nonzero(generic)[0]:
        cap = int(df["capacity"].iat[i])
        base = label.get(df["category"].iat[i], "Provider")
        names[i] = f"{base}s ({cap})" if df["_collapse"].iat[i] and cap > 1 else base
    df["name"] = names
    df["lon"], df["lat"] = df["_lon"].astype(float), df["_lat"].astype(float)
    ids = [
        _site_id(s, nm, k, z, c, lo, la)
        for s, nm, k, z, c, lo, la in zip(
            df["_source"],
            df["name"],
            df["_addr_key"],
            df["zip"],
            df["category"],
            df["lon"],
            df["lat"],
            strict=True,
        )
    ]
    seen: Counter[str] = Counter()
    unique = []
    for i in ids:
        seen[i] += 1
        unique.append(i if seen[i] == 1 else f"{i}-{seen[i]}")
    df["id"] = unique
    id_map = {(s, int(r)): i for s, r, i in zip(df["_source"], df["_row"], df["id"], strict=True)}

    # services: every category offered at the same place (same address, or within 30 m)
    x, y = df["_x"].to_numpy(float), df["_y"].to_numpy(float)
    tree = cKDTree(np.column_stack([x, y]))
    cats = df["category"].to_numpy(object)
    akey = df["_addr_key"].to_numpy(object)
    precise = df["geocode_quality"].isin(["source", "address_point", "street"]).to_numpy()
    groups: dict[int, set[str]] = defaultdict(set)
    for i in range(len(df)):
        groups[i].add(cats[i])
    for a, b in tree.query_pairs(SAME_ADDRESS_DISTANCE_M, output_type="ndarray"):
        d = float(np.hypot(x[a] - x[b], y[a] - y[b]))
        if (akey[a] and akey[a] == akey[b]) or (
            d <= MERGE_DISTANCE_M and precise[a] and precise[b]
        ):
            groups[a].add(cats[b])
            groups[b].add(cats[a])
    order = {c: i for i, c in enumerate(CATEGORIES)}
    services = []
    for i in range(len(df)):
        cs = sorted(groups[i], key=lambda c: (c != cats[i], order.get(c, 99)))
        extra = [s for s in df["services"].iat[i].split("; ") if s and s not in cs]
        services.append("; ".join([*cs, *extra]))
    df["services"] = services
    # In the region: on or within IN_REGION_TOLERANCE_M of its one outline (a geocode on the
    # street beside a boundary drawn along the street's centre line is still in the region).
    rx, ry = area.xy(df["lon"].to_numpy(float), df["lat"].to_numpy(float))
    has_xy = np.isfinite(rx)
    in_region = np.zeros(len(df), dtype=bool)
    in_region[has_xy] = shapely.dwithin(
        area.region_m, shapely.points(rx[has_xy], ry[has_xy]), IN_REGION_TOLERANCE_M
    )
    df["in_region"] = in_region
    df["capacity"] = df["capacity"].astype("int64")
    for fld in BOOL_FIELDS:
        df[fld] = pd.array(df[fld].tolist(), dtype="boolean")
    df["show_exact"] = df["show_exact"].astype(bool)
    extras = sorted(c for c in df.columns if c.startswith("x_"))
    out = df[list(PROVIDER_COLUMNS) + extras].rename(columns={c: c[2:] for c in extras})
    out = out.sort_values(["category", "name", "id"], kind="stable").reset_index(drop=True)
    gdf = gpd.GeoDataFrame(
        out, geometry=gpd.points_from_xy(out["lon"], out["lat"]), crs="EPSG:4326"
    )
    return gdf, id_map


def _rejects_frame(work: pd.DataFrame) -> pd.DataFrame:
    rej = work[work["_status"] == "rejected"]
    base = pd.DataFrame(
        {
            "source": rej["_source"].to_numpy(object),
            "file": rej["_file"].to_numpy(object),
            "row": rej["_row"].to_numpy(int),
            "reason": rej["_reason"].to_numpy(object),
        }
    )
    raw = pd.DataFrame(list(rej["_raw"])) if len(rej) else pd.DataFrame()
    raw = raw.rename(
        columns={
            c: f"raw_{c}" if c in {"source", "file", "row", "reason"} else c for c in raw.columns
        }
    )
    return pd.concat([base, raw.reset_index(drop=True)], axis=1)


def _fill_report(
    report: dict[str, dict[str, Any]], work: pd.DataFrame, providers: gpd.GeoDataFrame
) -> None:
    primary_source = (
        providers["source"].str.split("; ").str[0] if len(providers) else pd.Series(dtype=object)
    )
    for name, rep in report.items():
        sub = work[work["_source"] == name]
        status = sub["_status"]
        out_rows = providers[primary_source == name] if len(providers) else providers
        rep["rows_out"] = len(out_rows)
        rep["rejected"] = int((status == "rejected").sum())
        rep["outside"] = int((status == "outside").sum())
        rep["merged"] = int((status == "merged").sum())
        rep["dropped"] = int((status == "dropped").sum())
        rep["swapped"] = int(sub["notes"].str.contains("swapped lon/lat", regex=False).sum())
        rep["quality"] = (
            {str(k): int(v) for k, v in out_rows["geocode_quality"].value_counts().items()}
            if len(out_rows)
            else {}
        )
        rep["reasons"] = {
            str(k): int(v)
            for k, v in sub.loc[status == "rejected", "_reason"].value_counts().items()
        }
        total = rep["rows_out"] + rep["rejected"] + rep["outside"] + rep["merged"] + rep["dropped"]
        if total != rep["rows_in"]:  # a bug, not bad input
            msg = f"provider accounting does not add up for source {name!r}: {rep}"
            raise AssertionError(msg)


def _check_partial(cfg: RegionConfig, rejects: pd.DataFrame) -> None:
    for src in cfg.providers:
        if src.partial_ok:
            continue
        mine = rejects[rejects["source"] == src.name]
        if len(mine):
            listed = "; ".join(
                f"row {r}: {why}"
                for r, why in zip(
                    mine["row"][:_MAX_LISTED], mine["reason"][:_MAX_LISTED], strict=True
                )
            )
            more = f" (and {len(mine) - _MAX_LISTED:,} more)" if len(mine) > _MAX_LISTED else ""
            msg = (
                f"{cfg.resolve(src.path)}: {len(mine):,} rows of source {src.name!r} cannot be "
                f"used and `partial_ok` is false: {listed}{more}. "
                "Fix the rows or set `partial_ok: true`."
            )
            raise InputError(msg)
