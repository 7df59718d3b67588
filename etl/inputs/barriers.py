"""Zoning barriers: buffer rules and zoning districts that keep new treatment sites out.

Two kinds of rule (DESIGN.md, "Zoning barriers"):

* **Buffer rules** (:class:`BufferRule`), e.g. Ohio Revised Code 5119.37(C)(4): no opioid
  treatment program within 500 ft (152.4 m) of a school or licensed child care. Distances are
  measured in the region's projected CRS (metres), never in degrees.
* **Zoning districts** (:class:`ZoningConfig`): polygons with a zone code, and a rule table
  saying whether a use (a treatment program, a clinic) is permitted, conditional or prohibited
  in each code.

Every barrier row carries the rule's text, its citation and :data:`LEGAL_NOTE`: rules like
these have been struck down under the ADA (New Directions Treatment Services v. City of
Reading, 3d Cir. 2007), so the map presents them as barriers a coalition may contest, not as
settled facts about where care cannot go. Buffers drawn around points carry
:data:`POINT_CAVEAT`: the statute measures from parcel boundaries.

The barrier layer schema (:data:`BARRIER_COLUMNS`): ``rule``, ``kind`` (buffer / zoning),
``status`` (prohibited / conditional), ``applies_to``, ``text``, ``citation``, ``distance_m``,
``sources`` (the POI types or zone codes), ``n_features``, ``legal_note``, ``caveat``,
``note``, ``area_km2``, ``geometry`` (in the projected CRS given).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from etl._errors import ConfigError, InputError
from etl.config import BufferRule, PoiSource, ZoningConfig
from etl.controls import FEATURE_FIRST_ROW, clean_input

logger = logging.getLogger(__name__)

Geometry = shapely.Geometry


#: Legal context shown with every barrier.
LEGAL_NOTE: Final[str] = (
    "Siting rules that single out treatment programs have been challenged under the Americans "
    "with Disabilities Act: in New Directions Treatment Services v. City of Reading, 490 F.3d "
    "293 (3d Cir. 2007), a 500-ft rule for methadone clinics was held to violate the ADA and "
    "the Rehabilitation Act. Shown as a barrier a coalition may contest, not as a settled fact "
    "about where care cannot go. Not legal advice."
)

#: Caveat for buffers drawn around points.
POINT_CAVEAT: Final[str] = (
    "Approximate: buffers are drawn around points that stand in for parcels, while the rule "
    "measures from parcel boundaries, so the blocked area is likely larger than shown."
)

#: Columns of the barrier layer, in order.
BARRIER_COLUMNS: Final[tuple[str, ...]] = (
    "rule", "kind", "status", "applies_to", "text", "citation", "distance_m", "sources",
    "n_features", "legal_note", "caveat", "note", "area_km2", "geometry",
)  # fmt: skip


Status = Literal["permitted", "conditional", "prohibited"]

_STATUS_WORDS: Final[dict[str, Status]] = {
    "permitted": "permitted", "permit": "permitted", "allowed": "permitted", "p": "permitted",
    "yes": "permitted", "y": "permitted", "by right": "permitted", "a": "permitted",
    "conditional": "conditional", "conditional use": "conditional", "c": "conditional",
    "cu": "conditional", "special use": "conditional", "sup": "conditional",
    "s": "conditional", "special exception": "conditional", "se": "conditional",
    "prohibited": "prohibited", "not permitted": "prohibited", "not allowed": "prohibited",
    "no": "prohibited", "n": "prohibited", "x": "prohibited", "-": "prohibited",
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# readers


def read_poi(src: PoiSource, path: Path, *, role: str | None = "places") -> gpd.GeoDataFrame:
    """Read the points of interest a buffer rule measures from.

    Parameters
    ----------
    src
        Columns and the type mapping.
    path
        The CSV on disk (quoted fields may span lines).
    role
        Its role in the build: control characters in its cells are replaced as it is read
        (one line) and recorded under it (:mod:`etl.controls`).

    Returns
    -------
    geopandas.GeoDataFrame
        In ``src.crs``: ``poi_type`` (canonical, e.g. ``school``), ``poi_type_source``,
        ``name``, ``address``, ``row`` (spreadsheet row, header = 1), ``geometry``; only the
        types in ``src.type_map``.

    Raises
    ------
    InputError
        For a missing file, a missing column, or a selected row without numeric coordinates.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, encoding=src.encoding, keep_default_na=False)
    except FileNotFoundError:
        msg = f"{path}: points-of-interest file not found"
        raise InputError(msg) from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        msg = f"{path}: cannot read as CSV ({exc}); check `encoding`"
        raise InputError(msg) from exc
    df = clean_input(df.reset_index(drop=True), role=role, file=path)
    for col in (src.x_column, src.y_column, src.type_column, src.name_column, src.address_column):
        if col is not None and col not in df.columns:
            msg = f"{path}: no column {col!r}; the header has {', '.join(df.columns)}"
            raise InputError(msg)
    rows = np.arange(len(df)) + 2
    kind = df[src.type_column].str.strip()
    keep = kind.isin(list(src.type_map)).to_numpy()
    df, rows, kind = df.loc[keep], rows[keep], kind[keep]
    x = pd.to_numeric(df[src.x_column].str.strip(), errors="coerce").to_numpy()
    y = pd.to_numeric(df[src.y_column].str.strip(), errors="coerce").to_numpy()
    bad = ~np.isfinite(x) | ~np.isfinite(y)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        col = src.x_column if not np.isfinite(x[i]) else src.y_column
        msg = (
            f"{path}: row {rows[i]}, column {col!r}: {df[col].iloc[i]!r} is not a coordinate "
            f"(a {kind.iloc[i]!r} point)"
        )
        raise InputError(msg)

    def _text(col: str | None) -> np.ndarray:
        if col is None:
            return np.full(len(df), None, dtype=object)
        return df[col].str.replace(r"\s+", " ", regex=True).str.strip().to_numpy(dtype=object)

    out = gpd.GeoDataFrame(
        {
            "poi_type": kind.map(src.type_map).to_numpy(),
            "poi_type_source": kind.to_numpy(),
            "name": _text(src.name_column),
            "address": _text(src.address_column),
            "row": rows,
        },
        geometry=gpd.points_from_xy(x, y),
        crs=src.crs,
    )
    counts = out["poi_type"].value_counts().to_dict()
    logger.info("read_poi: %s points %s from %s", f"{len(out):,}", counts, path.name)
    return out


def read_zoning(
    cfg: ZoningConfig, *, base_dir: Path, role: str | None = "zoning"
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Read the zoning polygons and the rule table a :class:`ZoningConfig` names.

    Parameters
    ----------
    cfg
        The zoning config.
    base_dir
        The folder relative paths resolve against (the config file's folder).
    role
        The polygons' role in the build (the rule table's is ``<role>.rules``): control
        characters are replaced as they are read (one line each) and recorded under it.

    Returns
    -------
    tuple of geopandas.GeoDataFrame and pandas.DataFrame
        The polygons as read, and the rule table as strings.

    Raises
    ------
    InputError
        For a missing or unreadable file.
    """

    def _on_disk(path: str) -> Path:
        p = Path(path.removeprefix("zip://").partition("!")[0])
        return (p if p.is_absolute() else base_dir / p).resolve()

    zpath = _on_disk(cfg.path)
    rpath = _on_disk(cfg.rules)
    for p, what in ((zpath, "zoning polygons"), (rpath, "zoning rule table")):
        if not p.exists():
            msg = f"{p}: {what} not found"
            raise InputError(msg)
    member = cfg.path.partition("!")[2] if cfg.path.startswith("zip://") else ""
    reader = f"zip://{zpath}!{member}" if cfg.path.startswith("zip://") else str(zpath)
    try:
        zones = gpd.read_file(reader, layer=cfg.layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        msg = f"{zpath}: cannot read the zoning polygons: {exc}"
        raise InputError(msg) from exc
    try:
        if rpath.suffix.lower() in (".xlsx", ".xls"):
            rules = pd.read_excel(rpath, sheet_name=cfg.sheet or 0, dtype=str)
        else:
            rules = pd.read_csv(rpath, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        msg = f"{rpath}: cannot read the zoning rule table: {exc}"
        raise InputError(msg) from exc
    zones = clean_input(
        zones.reset_index(drop=True), role=role, file=zpath, first_row=FEATURE_FIRST_ROW
    )
    rules = clean_input(
        rules.reset_index(drop=True), role=role and f"{role}.rules", file=rpath
    )
    zones.attrs["path"] = str(zpath)
    rules.attrs["path"] = str(rpath)
    return zones, rules


# --------------------------------------------------------------------------------------------
# barriers


def _projected(crs: str) -> CRS:
    try:
        out = CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises CRSError
        msg = f"crs {crs!r} is not a CRS pyproj knows: {exc}"
        raise ConfigError(msg) from exc
    if not out.is_projected:
        msg = f"crs {crs!r} is not projected; barrier distances need metres (e.g. a UTM zone)"
        raise ConfigError(msg)
    return out


def _to_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries, crs: CRS, what: str) -> gpd.GeoSeries:
    if gdf.crs is None:
        msg = f"{what}: the layer declares no CRS; set one (e.g. EPSG:4326) before use"
        raise InputError(msg)
    geoms = gdf.geometry if isinstance(gdf, gpd.GeoDataFrame) else gdf
    if CRS(gdf.crs) != crs:
        logger.info("%s: reprojected from %s to %s", what, CRS(gdf.crs).to_string(), crs)
        geoms = geoms.to_crs(crs)
    return geoms


def _layer(rows: list[dict], crs: CRS) -> gpd.GeoDataFrame:
    frame = (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
        if rows
        else gpd.GeoDataFrame({c: [] for c in BARRIER_COLUMNS}, geometry="geometry", crs=crs)
    )
    frame["area_km2"] = frame.geometry.area / 1e6
    return frame[list(BARRIER_COLUMNS)]


def buffer_barriers(points: gpd.GeoDataFrame, rule: BufferRule, *, crs: str) -> gpd.GeoDataFrame:
    """Draw a buffer rule: the union of circles around the places it measures from.

    Parameters
    ----------
    points
        Places with a ``poi_type`` column (see :func:`read_poi`); those of the rule's
        ``from_types`` are used. Without the column every point is used.
    rule
        The buffer rule.
    crs
        A projected CRS (metres) to buffer in; the result is in it.

    Returns
    -------
    geopandas.GeoDataFrame
        One row (:data:`BARRIER_COLUMNS`), status ``prohibited``, its geometry the dissolved
        (multi)polygon (empty where no point matched).

    Raises
    ------
    ConfigError
        If ``crs`` is not projected.
    InputError
        If the points have no CRS.
    """
    target = _projected(crs)
    pts = points
    if "poi_type" in points.columns:
        pts = points.loc[points["poi_type"].isin(rule.from_types)]
    geoms = _to_crs(pts, target, f"buffer rule {rule.name!r} points").to_numpy()
    geoms = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
    blocked = shapely.union_all(shapely.buffer(geoms, rule.metres, quad_segs=16))
    if blocked.is_empty:
        blocked = shapely.MultiPolygon()
    logger.info(
        "buffer_barriers: %r: %d points (%s), %.0f m, %.2f km² blocked",
        rule.name, len(geoms), ", ".join(rule.from_types), rule.metres, blocked.area / 1e6,
    )  # fmt: skip
    row = {
        "rule": rule.name,
        "kind": "buffer",
        "status": "prohibited",
        "applies_to": rule.applies_to,
        "text": rule.describe(),
        "citation": rule.citation,
        "distance_m": rule.metres,
        "sources": ", ".join(rule.from_types),
        "n_features": len(geoms),
        "legal_note": LEGAL_NOTE,
        "caveat": POINT_CAVEAT,
        "note": rule.note,
        "geometry": blocked,
    }
    return _layer([row], target)


def _rule_table(rules: pd.DataFrame, *, code_col: str, use: str, path: str) -> dict[str, Status]:
    for col in (code_col, use):
        if col not in rules.columns:
            have = ", ".join(map(str, rules.columns))
            msg = f"{path}: no column {col!r} in the zoning rule table; it has {have}"
            raise InputError(msg)
    table: dict[str, Status] = {}
    where: dict[str, int] = {}
    for i, (code, value) in enumerate(zip(rules[code_col], rules[use], strict=True)):
        row = i + 2
        key = "" if pd.isna(code) else str(code).strip()
        word = "" if pd.isna(value) else str(value).strip().lower()
        if not key:
            msg = f"{path}: row {row}, column {code_col!r}: empty zone code"
            raise InputError(msg)
        status = _STATUS_WORDS.get(word)
        if status is None:
            msg = (
                f"{path}: row {row}, column {use!r}: {value!r} for zone {key!r} is not one of "
                "permitted / conditional / prohibited (or P / C / X)"
            )
            raise InputError(msg)
        if key in table and table[key] != status:
            msg = (
                f"{path}: rows {where[key]} and {row}: zone code {key!r} is listed twice with "
                f"different rules ({table[key]}, {status}); keep one row per code"
            )
            raise InputError(msg)
        table[key] = status
        where[key] = row
    return table


def zoning_barriers(
    zones: gpd.GeoDataFrame,
    rules: pd.DataFrame,
    *,
    code_col: str,
    use: str,
    rules_code_col: str | None = None,
    crs: str | None = None,
    name: str = "Zoning",
    citation: str = "",
    applies_to: str | None = None,
) -> gpd.GeoDataFrame:
    """Map which zoning districts prohibit, or only conditionally allow, a use.

    Parameters
    ----------
    zones
        Zoning district polygons with a code column. ``zones.attrs["path"]`` (set by
        :func:`read_zoning`) names the file in messages.
    rules
        The rule table: a zone code column and a column per use.
    code_col
        The zone code column of ``zones``.
    use
        The rule table's column for the use (e.g. ``treatment_program``).
    rules_code_col
        The rule table's code column (defaults to ``code_col``).
    crs
        Projected CRS of the result; defaults to the zones' own CRS, which must then be
        projected.
    name, citation, applies_to
        How the rule is shown; ``applies_to`` defaults to ``use``.

    Returns
    -------
    geopandas.GeoDataFrame
        Up to two rows (:data:`BARRIER_COLUMNS`), ``status`` ``prohibited`` and
        ``conditional``, each the union of the districts so ruled; ``sources`` lists the
        codes. ``attrs["repaired"]`` counts invalid polygons repaired with
        ``shapely.make_valid``.

    Raises
    ------
    InputError
        If the zones have no CRS, a code column is missing, a zone has no geometry, a zone
        code is missing from the rule table, or a rule value is not understood; the message
        names the file, the row (zones: feature number; rule table: header = row 1) and the
        code.
    """
    zpath = zones.attrs.get("path", "zoning layer")
    rpath = rules.attrs.get("path", "zoning rule table")
    if zones.crs is None:
        msg = f"{zpath}: the zoning layer declares no CRS (.prj missing?); add one"
        raise InputError(msg)
    target = _projected(crs) if crs is not None else _projected(CRS(zones.crs).to_string())
    if code_col not in zones.columns:
        msg = f"{zpath}: no column {code_col!r}; columns: {', '.join(map(str, zones.columns))}"
        raise InputError(msg)
    table = _rule_table(rules, code_col=rules_code_col or code_col, use=use, path=rpath)
    codes = zones[code_col].astype(str).str.strip().to_numpy()
    missing = ~np.isin(codes, list(table))
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        absent = sorted(set(codes[missing]))
        msg = (
            f"{zpath}: feature {i + 1}: zone code {codes[i]!r} is not in the rule table "
            f"{rpath} (codes missing there: {', '.join(absent)}); add a row for each"
        )
        raise InputError(msg)
    geoms = _to_crs(zones, target, str(zpath)).to_numpy()
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        msg = f"{zpath}: feature {i + 1} (zone {codes[i]!r}) has no geometry"
        raise InputError(msg)
    invalid = ~shapely.is_valid(geoms)
    repaired = int(invalid.sum())
    if repaired:
        fixed = shapely.make_valid(geoms[invalid])
        geoms = geoms.copy()
        geoms[invalid] = [_polygonal(g) for g in fixed]
        logger.info("zoning_barriers: repaired %d invalid polygons in %s", repaired, zpath)
    status = np.array([table[c] for c in codes])
    rows = []
    for st in ("prohibited", "conditional"):
        sel = status == st
        if not sel.any():
            continue
        rows.append(
            {
                "rule": name,
                "kind": "zoning",
                "status": st,
                "applies_to": applies_to or use,
                "text": f"{(applies_to or use).replace('_', ' ').capitalize()}: {st} in zones "
                + ", ".join(sorted(set(codes[sel]))),
                "citation": citation,
                "distance_m": np.nan,
                "sources": ", ".join(sorted(set(codes[sel]))),
                "n_features": int(sel.sum()),
                "legal_note": LEGAL_NOTE,
                "caveat": "",
                "note": "Conditional: allowed only with a special permit or hearing."
                if st == "conditional"
                else "",
                "geometry": shapely.union_all(geoms[sel]),
            }
        )
    out = _layer(rows, target)
    out.attrs["repaired"] = repaired
    logger.info(
        "zoning_barriers: %d zones (%d prohibited, %d conditional, %d repaired) for %r",
        len(codes), int((status == "prohibited").sum()), int((status == "conditional").sum()),
        repaired, use,
    )  # fmt: skip
    return out


def _polygonal(geom: Geometry) -> Geometry:
    """Keep the polygonal parts of a repaired geometry."""
    parts = shapely.get_parts(geom)
    polys = parts[np.isin(shapely.get_type_id(parts), [3, 6])]
    return shapely.union_all(polys) if len(polys) else shapely.Polygon()


def _union(
    obj: Geometry | gpd.GeoSeries | gpd.GeoDataFrame | None,
    crs: CRS | None,
    statuses: tuple[str, ...] | None = None,
) -> Geometry:
    if obj is None:
        return shapely.Polygon()
    if isinstance(obj, shapely.Geometry):
        return obj
    if statuses is not None and isinstance(obj, gpd.GeoDataFrame) and "status" in obj.columns:
        obj = obj.loc[obj["status"].isin(statuses)]
    geoms = obj.geometry if isinstance(obj, gpd.GeoDataFrame) else obj
    if crs is not None and geoms.crs is not None and CRS(geoms.crs) != crs:
        geoms = geoms.to_crs(crs)
    return shapely.union_all(geoms.to_numpy())


def sitable_land(
    region: Geometry | gpd.GeoSeries | gpd.GeoDataFrame,
    barriers: Geometry | gpd.GeoSeries | gpd.GeoDataFrame | None,
    *,
    statuses: tuple[str, ...] = ("prohibited",),
) -> Geometry:
    """Return the region minus what the barriers block.

    Parameters
    ----------
    region
        The region (a geometry, or a layer whose union is taken).
    barriers
        The barrier layer (or a geometry); with a ``status`` column only ``statuses`` count.
        Layers in another CRS are reprojected to the region's.
    statuses
        Which statuses block: by default conditional zones stay sitable (with a permit).

    Returns
    -------
    shapely.Geometry
        The sitable land, in the region's CRS.
    """
    crs = getattr(region, "crs", None)
    target = CRS(crs) if crs is not None else None
    area = _union(region, None)
    blocked = _union(barriers, target, statuses)
    out = shapely.difference(area, blocked) if not blocked.is_empty else area
    logger.info(
        "sitable_land: %.1f%% of the region is not blocked", 100 * out.area / max(area.area, 1e-12)
    )
    return out


def desert_and_blocked(
    desert_polys: gpd.GeoDataFrame,
    barriers: gpd.GeoDataFrame,
    *,
    statuses: tuple[str, ...] = ("prohibited",),
    people: gpd.GeoDataFrame | None = None,
    areas: gpd.GeoDataFrame | None = None,
    crs: str | None = None,
    weight_col: str = "weight",
) -> gpd.GeoDataFrame:
    """Where a desert meets a barrier: desert land where no new site may go.

    Parameters
    ----------
    desert_polys
        The deserts layer (one row per category x mode, say).
    barriers
        The barrier layer (:data:`BARRIER_COLUMNS`); reprojected to the deserts' CRS.
    statuses
        Which barrier statuses count.
    people
        People points (``weight_col`` people each): an overlap's ``population`` is the
        people whose points fall on it.
    areas
        Without ``people``: census areas with ``population``, spread evenly over their land
        (:func:`people_inside`, measured in the projected ``crs``).
    crs
        Projected CRS for the areal weighting (default: the deserts' CRS).
    weight_col
        People per point in ``people``.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per (desert row, barrier row) that overlap: the desert's columns, then
        ``rule``, ``status``, ``citation``, ``legal_note``, ``caveat``, ``area_km2`` and the
        overlap as geometry, in the deserts' CRS. With ``people`` or ``areas``,
        ``population`` is the people on the blocked desert land and ``share`` their share
        of the desert's people; without either, both columns are left out (the desert's
        own counts are not the people on blocked land).
    """
    if desert_polys.crs is None or barriers.crs is None:
        msg = "desert_and_blocked: both layers need a CRS"
        raise InputError(msg)
    bar = barriers.loc[barriers["status"].isin(statuses)] if "status" in barriers else barriers
    bar = bar.to_crs(desert_polys.crs)
    keep = [c for c in desert_polys.columns if c != desert_polys.geometry.name]
    extra = ["rule", "status", "citation", "legal_note", "caveat"]
    d_geoms = desert_polys.geometry.to_numpy()
    b_geoms = bar.geometry.to_numpy()
    rows = []
    for i in range(len(desert_polys)):
        for j in range(len(bar)):
            if d_geoms[i] is None or b_geoms[j] is None:
                continue
            inter = shapely.intersection(d_geoms[i], b_geoms[j])
            if inter.is_empty or inter.area <= 0:
                continue
            row = {c: desert_polys[c].iloc[i] for c in keep}
            row |= {c: bar[c].iloc[j] if c in bar else "" for c in extra}
            row["geometry"] = _polygonal(inter)
            rows.append(row)
    out = gpd.GeoDataFrame(
        rows if rows else {c: [] for c in [*keep, *extra, "geometry"]},
        geometry="geometry",
        crs=desert_polys.crs,
    )
    metric = out.to_crs(out.estimate_utm_crs()) if out.crs.is_geographic and len(out) else out
    out["area_km2"] = metric.geometry.area.to_numpy() / 1e6 if len(out) else []
    desert_people = pd.to_numeric(
        out["population"] if "population" in out else pd.Series(np.nan, index=out.index),
        errors="coerce",
    ).to_numpy(float)
    if people is not None or areas is not None:
        blocked = _people_on(out, people=people, areas=areas, crs=crs, weight_col=weight_col)
        out["population"] = np.round(blocked, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["share"] = np.where(desert_people > 0, np.round(blocked / desert_people, 4), np.nan)
    else:
        out = out.drop(columns=[c for c in ("population", "share") if c in out.columns])
    logger.info(
        "desert_and_blocked: %d overlaps, %.2f km², %s people on blocked desert land",
        len(out),
        float(out["area_km2"].sum()),
        f"{float(out['population'].sum()):,.0f}" if "population" in out else "no count of",
    )
    return out


def _people_on(
    overlaps: gpd.GeoDataFrame,
    *,
    people: gpd.GeoDataFrame | None,
    areas: gpd.GeoDataFrame | None,
    crs: str | None,
    weight_col: str,
) -> np.ndarray:
    """People on each overlap: the weights of the points on it, else areal weighting."""
    if len(overlaps) == 0:
        return np.zeros(0)
    if people is not None:
        if weight_col not in people.columns:
            msg = f"desert_and_blocked: the people points have no column {weight_col!r}"
            raise InputError(msg)
        pts = _to_crs(people, CRS(overlaps.crs), "desert_and_blocked people").to_numpy()
        weight = pd.to_numeric(people[weight_col], errors="coerce").fillna(0).to_numpy(float)
        tree = shapely.STRtree(pts)
        oi, pi = tree.query(overlaps.geometry.to_numpy(), predicate="intersects")
        return np.bincount(oi, weights=weight[pi], minlength=len(overlaps))
    target = crs or (str(overlaps.crs) if not CRS(overlaps.crs).is_geographic else None)
    if target is None:
        target = str(overlaps.estimate_utm_crs())
    return people_inside(overlaps.geometry, areas, crs=target).to_numpy(float)


def people_inside(
    polys: gpd.GeoDataFrame | gpd.GeoSeries,
    areas_with_population: gpd.GeoDataFrame,
    *,
    crs: str,
    population_col: str = "population",
) -> pd.Series:
    """Estimate the people inside each polygon by areal weighting of census areas.

    Each area's population is taken as spread evenly over its land: a polygon covering a
    third of an area gets a third of its people.

    Parameters
    ----------
    polys
        The polygons (e.g. the barrier layer).
    areas_with_population
        Census areas with a population column.
    crs
        Projected CRS the areas are measured in.
    population_col
        The population column.

    Returns
    -------
    pandas.Series
        People inside each polygon (float), indexed like ``polys``.

    Raises
    ------
    InputError
        If a layer has no CRS or the population column is missing.
    """
    target = _projected(crs)
    if population_col not in areas_with_population.columns:
        msg = f"people_inside: the areas have no column {population_col!r}"
        raise InputError(msg)
    p = _to_crs(polys, target, "people_inside polygons").to_numpy()
    a = _to_crs(areas_with_population, target, "people_inside areas").to_numpy()
    pop = pd.to_numeric(areas_with_population[population_col], errors="coerce").to_numpy(float)
    area = shapely.area(a)
    tree = shapely.STRtree(a)
    pi, ai = tree.query(p, predicate="intersects")
    share = np.zeros(len(pi))
    ok = area[ai] > 0
    share[ok] = shapely.area(shapely.intersection(p[pi[ok]], a[ai[ok]])) / area[ai[ok]]
    people = np.bincount(pi, weights=np.nan_to_num(pop[ai]) * share, minlength=len(p))
    index = polys.index
    return pd.Series(people, index=index, name="people")
