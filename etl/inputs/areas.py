"""Census areas with their population, and the people points that area metrics weigh over.

People are placed dasymetrically: each area's population is spread over the fine H3 cells
(res 10, ≈ 0.015 km²) holding its residential-type streets, in proportion to street length,
so an area's travel time is weighted by where its people can live rather than taken at its
geometric centroid. The part of an area outside the street network's coverage (e.g. beyond
a clipped OSM extract) is counted as *not covered*, never as reachable or as a desert.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from etl._errors import InputError
from etl.config import PopulationTable, RegionConfig
from etl.controls import FEATURE_FIRST_ROW, TABLE_FIRST_ROW, clean_input
from etl.engine.network import ModeNetwork
from etl.engine.streets import cells_of, sample_streets

logger = logging.getLogger(__name__)

#: Street classes that do not count as places people live along.
NON_RESIDENTIAL_STREETS: frozenset[str] = frozenset(
    {
        "footway",
        "path",
        "cycleway",
        "steps",
        "track",
        "bridleway",
        "service",
        "pedestrian",
        "corridor",
        "motorway",
        "motorway_link",
        "trunk_link",
        "primary_link",
    }
)
PEOPLE_RES = 10


@dataclass(frozen=True)
class People:
    """Population points: one per fine H3 cell with streets, per area.

    Attributes
    ----------
    area_id
        The area each point belongs to.
    weight
        People represented by the point.
    lon, lat
        WGS84 coordinates (the cell's centre).
    """

    area_id: np.ndarray
    weight: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


def _digits_key(values: pd.Series) -> pd.Series:
    """Normalise GEOID-like keys: strings of digits, ``.0`` and spaces removed."""
    s = values.astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    return s


def _blank(values: pd.Series) -> np.ndarray:
    """Where an id column holds nothing: missing values or empty text."""
    text = values.astype(str).str.strip()
    return (values.isna() | (text == "") | text.str.lower().isin({"nan", "none"})).to_numpy()


def generated_ids(geometry: gpd.GeoSeries, *, prefix: str = "area-") -> np.ndarray:
    """Stable ids for areas that have none: a hash of each normalised geometry's WKB.

    The id depends only on the geometry (as read, in the file's CRS), so re-reading the
    file, or the same areas in another order, gives the same ids. Identical geometries get
    ``-2``, ``-3``... in file order.

    Parameters
    ----------
    geometry
        The areas' polygons.
    prefix
        Text before the hash.

    Returns
    -------
    numpy.ndarray
        One id per area, e.g. ``"area-3f9c0a1b2c4d"``.
    """
    wkb = shapely.to_wkb(shapely.normalize(geometry.to_numpy()), output_dimension=2)
    ids = [prefix + hashlib.sha1(b, usedforsecurity=False).hexdigest()[:12] for b in wkb]
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}-{seen[i]}")
    return np.array(out, dtype=object)


def _read_polygons(cfg: RegionConfig, item: str, layer: str | None, key: str) -> gpd.GeoDataFrame:
    """Read a polygon layer that a config key names, with its CRS, its text cleaned.

    Control characters in the attributes are replaced (one line) and recorded under the
    key's role (``areas.path`` → ``areas``), features numbered from 1 (:mod:`etl.controls`).
    """
    path = cfg.resolve(item)
    if not path.exists():
        msg = f"{path}: file not found (config key {key}); check the path"
        raise InputError(msg)
    try:
        gdf = gpd.read_file(cfg.reader_path(item), layer=layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        msg = f"{path}: cannot read the layer of {key}: {exc}"
        raise InputError(msg) from exc
    if gdf.crs is None:
        msg = f"{path}: the layer of {key} declares no CRS (.prj missing?); add one, e.g. EPSG:4269"
        raise InputError(msg)
    role = key.removesuffix(".path")
    return clean_input(
        gdf.reset_index(drop=True), role=role, file=path, first_row=FEATURE_FIRST_ROW
    )


def _area_ids(gdf: gpd.GeoDataFrame, column: str | None, path: Path) -> pd.Series:
    """The areas' ids: from ``column``, or generated from the geometry where it is None."""
    if column is None:
        ids = pd.Series(generated_ids(gdf.geometry))
        logger.warning(
            "read_areas: %s names no id column (areas.id_column): generated ids for %s areas "
            "from their geometry (e.g. %s); set areas.id_column to keep the file's own ids",
            path,
            f"{len(ids):,}",
            ids.iloc[0] if len(ids) else "-",
        )
        return ids
    if column not in gdf.columns:
        cols = ", ".join(c for c in gdf.columns if c != "geometry")
        msg = (
            f"{path}: no column {column!r} (areas.id_column); columns: {cols}; "
            "name one of them, or leave areas.id_column out to generate ids"
        )
        raise InputError(msg)
    blank = _blank(gdf[column])
    if blank.any():
        rows = (np.flatnonzero(blank)[:5] + 1).tolist()
        msg = (
            f"{path}: {int(blank.sum())} areas have no {column} (features {rows}); "
            f"fill in their ids, or leave areas.id_column out to generate ids for every area"
        )
        raise InputError(msg)
    ids = _digits_key(gdf[column])
    dupes = ids[ids.duplicated()].unique()
    if len(dupes):
        rows = (np.flatnonzero(ids.isin(dupes[:3]).to_numpy()) + 1).tolist()
        shown = ", ".join(dupes[:3])
        msg = (
            f"{path}: duplicated {column} {shown} (features {rows}); ids must be unique: "
            f"dissolve the repeated features, or leave areas.id_column out to generate ids"
        )
        raise InputError(msg)
    return ids


def read_areas(cfg: RegionConfig) -> gpd.GeoDataFrame:
    """Read the region's areas and their population.

    Any polygon file pyogrio reads; ``unit`` is free text. Without ``areas.id_column`` ids
    are generated from each geometry (:func:`generated_ids`). Population comes from a column
    of the area file, a table keyed by id, or (where neither is configured) the sum of the
    ``areas.people`` points inside each area.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``area_id``, ``name``, ``unit``, ``population``, ``area_km2``,
        ``geometry``.

    Raises
    ------
    InputError
        For a missing or unreadable file, a layer without a CRS, a missing id column,
        blank or duplicated ids, or a population that does not join or holds bad values.
    """
    ac = cfg.areas
    path = cfg.resolve(ac.path)
    gdf = _read_polygons(cfg, ac.path, ac.layer, "areas.path")
    ids = _area_ids(gdf, ac.id_column, path)
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        logger.info("read_areas: repaired %d invalid polygons in %s", int(invalid.sum()), path)
        gdf.loc[invalid, "geometry"] = shapely.make_valid(gdf.geometry[invalid].to_numpy())
    out = gpd.GeoDataFrame(
        {"area_id": ids.to_numpy(), "unit": ac.unit},
        geometry=gdf.geometry.to_numpy(),
        crs=gdf.crs,
    )
    out["name"] = gdf[ac.name_column].astype(str).to_numpy() if ac.name_column else out["area_id"]
    column = ac.population_in_file
    if column is not None:
        if column not in gdf.columns:
            cols = ", ".join(c for c in gdf.columns if c != "geometry")
            msg = f"{path}: no population column {column!r} (areas.population); columns: {cols}"
            raise InputError(msg)
        pop = pd.Series(gdf[column].to_numpy(), index=out["area_id"])
        out["population"] = _check_population(pop, path, column).to_numpy()
    elif ac.population_table is not None:
        out["population"] = _join_population(
            cfg, ac.population_table, out["area_id"], key="areas.population", what="areas"
        )
    out["area_km2"] = out.to_crs(cfg.crs).area.to_numpy() / 1e6
    out = out.to_crs("EPSG:4326")
    if "population" not in out:
        assert ac.people is not None
        placed = assign_points(
            out, read_people_points(cfg), crs=cfg.crs, max_distance_m=ac.people.max_distance_m
        )
        out["population"] = np.rint(
            np.bincount(placed.area, weights=placed.population, minlength=len(out))
        ).astype(np.int64)
        logger.info("read_areas: population of each %s from its people points", ac.unit)
    logger.info(
        "read_areas: %s areas (%s), %s people, from %s",
        f"{len(out):,}",
        ac.unit,
        f"{int(out['population'].sum()):,}",
        path,
    )
    return out[["area_id", "name", "unit", "population", "area_km2", "geometry"]]


def _check_population(pop: pd.Series, path: Path, column: str) -> pd.Series:
    values = pd.to_numeric(pop, errors="coerce")
    bad = values.isna() | (values < 0)
    if bad.any():
        first = np.flatnonzero(bad.to_numpy())[0]
        msg = (
            f"{path}: row {first + 2}, column {column!r}: population {pop.iloc[first]!r} "
            "is not a non-negative number"
        )
        raise InputError(msg)
    return values.astype(np.int64)


def _table_keys(table: pd.DataFrame, pt: PopulationTable) -> pd.Series:
    """The id of each row of a population table: its key columns, zero-padded and joined."""
    parts = [_digits_key(table[c]) for c in pt.key_columns]
    if pt.key_widths is not None:
        parts = [p.str.zfill(w) for p, w in zip(parts, pt.key_widths, strict=True)]
    keys = parts[0]
    for p in parts[1:]:
        keys = keys + p
    return keys


def _join_population(
    cfg: RegionConfig, pt: PopulationTable, ids: pd.Series, *, key: str, what: str
) -> np.ndarray:
    """Population of each id from a table keyed by id (one key column or several)."""
    path = cfg.resolve(pt.path)
    if not path.exists():
        msg = f"{path}: population table not found (config key {key}.path)"
        raise InputError(msg)
    as_text = dict.fromkeys(pt.key_columns, str)
    try:
        if path.suffix.lower() in {".xlsx", ".xls"}:
            table = pd.read_excel(path, sheet_name=pt.sheet or 0, dtype=as_text)
        else:
            table = pd.read_csv(path, dtype=as_text, encoding=pt.encoding)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the population table: {exc}"
        raise InputError(msg) from exc
    table = clean_input(table.reset_index(drop=True), role=key, file=path)
    for col in (*pt.key_columns, pt.column):
        if col not in table.columns:
            msg = (
                f"{path}: no column {col!r} ({key}); columns: {', '.join(map(str, table.columns))}"
            )
            raise InputError(msg)
    keys = _table_keys(table, pt)
    dupes = keys[keys.duplicated()]
    if len(dupes):
        row = int(np.flatnonzero(keys.duplicated().to_numpy())[0]) + 2
        msg = f"{path}: row {row}: key {dupes.iloc[0]} appears more than once; keys must be unique"
        raise InputError(msg)
    pop = _check_population(pd.Series(table[pt.column].to_numpy(), index=keys), path, pt.column)
    missing = ~ids.isin(pop.index)
    if missing.any():
        shown = ", ".join(ids[missing].head(5))
        example = keys.iloc[0] if len(keys) else "-"
        msg = (
            f"{path}: {int(missing.sum())} of {len(ids)} {what} have no population row "
            f"(e.g. {shown}; the table's first key is {example}); check that {key}.key"
            f"{' and key_widths' if len(pt.key_columns) > 1 else ''} build the same ids"
        )
        raise InputError(msg)
    return pop.reindex(ids.to_numpy()).to_numpy()


def allocate_people(
    areas: gpd.GeoDataFrame, net: ModeNetwork, *, crs: str
) -> tuple[People, pd.DataFrame]:
    """Spread each area's population over its streets (dasymetric people points).

    Parameters
    ----------
    areas
        From :func:`read_areas` (EPSG:4326).
    net
        The network whose streets locate people (the walk network where built).
    crs
        Projected CRS for areas.

    Returns
    -------
    People
        The points.
    pandas.DataFrame
        Per area: ``area_id``, ``population_covered``, ``population_uncovered``.
    """
    samples = sample_streets(net, spacing_m=25.0, res=PEOPLE_RES)
    classes = np.array(net.highway_classes, dtype=object)
    # Street class of each sample: the class of any edge between its end nodes.
    edge_class = dict(
        zip(
            (net.tail.astype(np.int64) * net.n_nodes + net.head).tolist(),
            net.highway.tolist(),
            strict=True,
        )
    )
    lo = np.minimum(samples.a, samples.b)
    hi = np.maximum(samples.a, samples.b)
    keys = np.concatenate([lo * net.n_nodes + hi, hi * net.n_nodes + lo])
    cls = np.array([edge_class.get(k, -1) for k in keys.tolist()]).reshape(2, -1).max(axis=0)
    residential = ~np.isin(classes[cls], list(NON_RESIDENTIAL_STREETS))
    cells = samples.cell[residential]
    uniq, length = np.unique(cells, return_counts=True)  # samples ~ street length
    lat, lon = (
        np.array([h3_center(int(c)) for c in uniq]).reshape(-1, 2).T if len(uniq) else ([], [])
    )
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    idx_pt, idx_area = areas.sindex.query(pts, predicate="within")
    area_ids = areas["area_id"].to_numpy()
    pt_area = np.full(len(pts), -1)
    pt_area[idx_pt] = idx_area
    inside = pt_area >= 0
    lon, lat, length, pt_area = lon[inside], lat[inside], length[inside], pt_area[inside]

    # Coverage: the part of each area within reach of the network's streets.
    coverage = _coverage(samples.cell, samples.res)
    proj = areas.to_crs(crs)
    cov_proj = gpd.GeoSeries([coverage], crs="EPSG:4326").to_crs(crs).iloc[0]
    frac = np.clip(
        shapely.area(shapely.intersection(proj.geometry.to_numpy(), cov_proj))
        / proj.area.to_numpy(),
        0.0,
        1.0,
    )
    pop = areas["population"].to_numpy(dtype=float)
    street_len = np.bincount(pt_area, weights=length, minlength=len(areas))
    has_pts = street_len > 0
    covered = np.where(has_pts, pop * frac, 0.0)
    weight = covered[pt_area] * length / street_len[pt_area]

    # Areas with coverage but no residential street inside: one point at a representative point.
    lonely = (~has_pts) & (frac > 0) & (pop > 0)
    if lonely.any():
        rep = areas.geometry[lonely].representative_point()
        lon = np.concatenate([lon, rep.x.to_numpy()])
        lat = np.concatenate([lat, rep.y.to_numpy()])
        weight = np.concatenate([weight, pop[lonely] * frac[lonely]])
        pt_area = np.concatenate([pt_area, np.flatnonzero(lonely)])
        covered[lonely] = pop[lonely] * frac[lonely]
    people = People(area_id=area_ids[pt_area], weight=weight, lon=lon, lat=lat)
    table = pd.DataFrame(
        {"area_id": area_ids, "population_covered": covered, "population_uncovered": pop - covered}
    )
    logger.info(
        "allocate_people: %s people points; %s people covered by the network, %s outside it",
        f"{len(weight):,}",
        f"{covered.sum():,.0f}",
        f"{(pop - covered).sum():,.0f}",
    )
    return people, table


@dataclass(frozen=True)
class PlacedPoints:
    """Population points matched to areas (:func:`assign_points`).

    Attributes
    ----------
    area
        Row of the area each kept point belongs to.
    population, lon, lat
        The kept points' people and WGS84 coordinates.
    nearest
        How many points lay outside every area and went to the nearest one.
    dropped, dropped_people
        Points (and their people) further than ``max_distance_m`` from every area.
    """

    area: np.ndarray
    population: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    nearest: int
    dropped: int
    dropped_people: float


def read_people_points(cfg: RegionConfig) -> pd.DataFrame:
    """Read the ``areas.people`` points (e.g. census block internal points) and their people.

    Returns
    -------
    pandas.DataFrame
        ``point_id``, ``lon``, ``lat`` (EPSG:4326) and ``population``, one row per point.

    Raises
    ------
    InputError
        For a missing or unreadable file, a missing column, coordinates that are not numbers,
        or a population that does not join or holds bad values.
    """
    pp = cfg.areas.people
    if pp is None:
        msg = "areas.people is not configured"
        raise InputError(msg)
    path = cfg.resolve(pp.path)
    if not path.exists():
        msg = f"{path}: people points not found (config key areas.people.path)"
        raise InputError(msg)
    crs = pp.crs
    try:
        if path.suffix.lower() in {".csv", ".txt"}:
            table = pd.read_csv(path, dtype=str, encoding=pp.encoding)
        else:
            table = pyogrio.read_dataframe(
                cfg.reader_path(pp.path), layer=pp.layer, read_geometry=pp.lon is None
            )
            info_crs = getattr(table, "crs", None)
            prj = path.with_suffix(".prj")
            if crs is None and info_crs is not None:
                crs = info_crs.to_string()
            elif crs is None and prj.exists():  # a .dbf alone, its .prj beside it
                from pyproj import CRS

                crs = CRS.from_wkt(prj.read_text(encoding="latin-1")).to_string()
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        msg = f"{path}: cannot read the people points (areas.people): {exc}"
        raise InputError(msg) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the people points (areas.people): {exc}"
        raise InputError(msg) from exc
    is_table = path.suffix.lower() in {".csv", ".txt"}
    table = clean_input(
        table.reset_index(drop=True),
        role="areas.people",
        file=path,
        first_row=TABLE_FIRST_ROW if is_table else FEATURE_FIRST_ROW,
    )
    crs = crs or "EPSG:4326"
    wanted = [c for c in (pp.lon, pp.lat, pp.id_column, pp.population_column) if c]
    for col in wanted:
        if col not in table.columns:
            cols = ", ".join(str(c) for c in table.columns if c != "geometry")
            msg = f"{path}: no column {col!r} (areas.people); columns: {cols}"
            raise InputError(msg)
    if pp.lon is not None and pp.lat is not None:
        coords = []
        for name, col in (("lon", pp.lon), ("lat", pp.lat)):
            values = pd.to_numeric(table[col].astype(str).str.strip(), errors="coerce")
            bad = values.isna().to_numpy()
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                msg = (
                    f"{path}: row {row + 2}, column {col!r}: {table[col].iloc[row]!r} is not a "
                    f"coordinate; fix the row or remove it (areas.people.{name})"
                )
                raise InputError(msg)
            coords.append(values.to_numpy(float))
        x, y = coords
    else:
        geom = table.geometry
        if not (geom.geom_type == "Point").all():
            msg = f"{path}: areas.people holds non-point features; give `lon` and `lat` columns"
            raise InputError(msg)
        x, y = geom.x.to_numpy(), geom.y.to_numpy()
    ids = _digits_key(table[pp.id_column]) if pp.id_column else pd.Series(np.arange(len(table)))
    if pp.population is not None:
        pop = _join_population(
            cfg, pp.population, ids, key="areas.people.population", what="people points"
        )
    else:
        assert pp.population_column is not None
        pop = _check_population(
            pd.Series(table[pp.population_column].to_numpy()), path, pp.population_column
        ).to_numpy()
    if str(crs) != "EPSG:4326":
        from pyproj import Transformer

        x, y = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    out = pd.DataFrame(
        {"point_id": ids.to_numpy(), "lon": np.asarray(x), "lat": np.asarray(y), "population": pop}
    )
    logger.info(
        "read_people_points: %s points, %s people, from %s",
        f"{len(out):,}",
        f"{int(out['population'].sum()):,}",
        path,
    )
    return out


def assign_points(
    areas: gpd.GeoDataFrame, points: pd.DataFrame, *, crs: str, max_distance_m: float = 1000.0
) -> PlacedPoints:
    """Match population points to the area holding them; strays go to the nearest area.

    Parameters
    ----------
    areas
        EPSG:4326 polygons.
    points
        From :func:`read_people_points`; points without people are left out.
    crs
        Projected CRS for distances.
    max_distance_m
        A point outside every area joins the nearest one within this distance; points
        further away are counted as dropped.

    Returns
    -------
    PlacedPoints
        The points kept, with their area rows.
    """
    pts = points[points["population"].to_numpy() > 0].reset_index(drop=True)
    geom = gpd.GeoSeries(gpd.points_from_xy(pts["lon"], pts["lat"]), crs="EPSG:4326")
    idx_pt, idx_area = areas.sindex.query(geom, predicate="intersects")
    area = np.full(len(pts), -1, dtype=np.int64)
    area[idx_pt[::-1]] = idx_area[::-1]  # a point on a shared edge: the first area
    stray = np.flatnonzero(area < 0)
    nearest = 0
    if len(stray):
        proj = areas.to_crs(crs)
        near_pt, near_area = proj.sindex.nearest(
            geom.iloc[stray].to_crs(crs), max_distance=max_distance_m, return_all=False
        )
        area[stray[near_pt]] = near_area
        nearest = len(near_pt)
    keep = area >= 0
    dropped_people = float(pts["population"].to_numpy()[~keep].sum())
    return PlacedPoints(
        area=area[keep],
        population=pts["population"].to_numpy(float)[keep],
        lon=pts["lon"].to_numpy(float)[keep],
        lat=pts["lat"].to_numpy(float)[keep],
        nearest=nearest,
        dropped=int((~keep).sum()),
        dropped_people=dropped_people,
    )


def place_people(
    areas: gpd.GeoDataFrame,
    points: pd.DataFrame,
    net: ModeNetwork,
    *,
    crs: str,
    max_distance_m: float = 1000.0,
) -> tuple[People, pd.DataFrame, dict[str, int | float]]:
    """Place each area's people at its population points (e.g. census block internal points).

    Each point carries its own people, scaled so that an area's points add up to the area's
    population (the area file stays the authority on totals; the points say where inside the
    area people live). An area with people but no point gets one at a representative point.
    A point counts as covered where it lies within reach of the network's streets, the same
    coverage :func:`allocate_people` uses; points beyond it stay people points (the access
    stage decides from each point's snap distance).

    Parameters
    ----------
    areas
        From :func:`read_areas` (EPSG:4326).
    points
        From :func:`read_people_points`.
    net
        The network whose streets define coverage.
    crs
        Projected CRS.
    max_distance_m
        How far outside every area a point may lie and still join the nearest area.

    Returns
    -------
    People
        The points.
    pandas.DataFrame
        Per area: ``area_id``, ``population_covered``, ``population_uncovered``.
    dict
        Counts: points kept, sent to the nearest area, dropped (and their people), areas whose
        points' total differs from their population, areas given a representative point.
    """
    placed = assign_points(areas, points, crs=crs, max_distance_m=max_distance_m)
    n = len(areas)
    pop = areas["population"].to_numpy(dtype=float)
    point_sum = np.bincount(placed.area, weights=placed.population, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(point_sum > 0, pop / point_sum, 0.0)
    weight = placed.population * scale[placed.area]
    lon, lat, pt_area = placed.lon, placed.lat, placed.area
    lonely = (point_sum <= 0) & (pop > 0)
    if lonely.any():
        rep = areas.geometry[lonely].representative_point()
        lon = np.concatenate([lon, rep.x.to_numpy()])
        lat = np.concatenate([lat, rep.y.to_numpy()])
        weight = np.concatenate([weight, pop[lonely]])
        pt_area = np.concatenate([pt_area, np.flatnonzero(lonely)])
    mismatch = (point_sum > 0) & (np.abs(point_sum - pop) > 0.5)
    samples = sample_streets(net, spacing_m=25.0, res=PEOPLE_RES)
    coverage = gpd.GeoSeries([_coverage(samples.cell, samples.res)], crs="EPSG:4326")
    cov_proj = coverage.to_crs(crs).iloc[0]
    shapely.prepare(cov_proj)
    from pyproj import Transformer

    px, py = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    inside = shapely.contains_xy(cov_proj, np.asarray(px), np.asarray(py))
    covered = np.bincount(pt_area, weights=np.where(inside, weight, 0.0), minlength=n)
    area_ids = areas["area_id"].to_numpy()
    people = People(area_id=area_ids[pt_area], weight=weight, lon=lon, lat=lat)
    table = pd.DataFrame(
        {"area_id": area_ids, "population_covered": covered, "population_uncovered": pop - covered}
    )
    counts: dict[str, int | float] = {
        "points": len(placed.area),
        "points_to_nearest_area": placed.nearest,
        "points_dropped": placed.dropped,
        "people_dropped": round(placed.dropped_people),
        "areas_points_differ": int(mismatch.sum()),
        "areas_without_points": int(lonely.sum()),
    }
    logger.info(
        "place_people: %s people points (%s joined the nearest area, %s with %s people beyond "
        "%.0f m of every area left out); %s people covered by the network, %s outside it; "
        "%s areas whose points' total differs from their population, %s without points",
        f"{len(weight):,}",
        f"{placed.nearest:,}",
        f"{placed.dropped:,}",
        f"{placed.dropped_people:,.0f}",
        max_distance_m,
        f"{covered.sum():,.0f}",
        f"{(pop - covered).sum():,.0f}",
        f"{int(mismatch.sum()):,}",
        f"{int(lonely.sum()):,}",
    )
    return people, table, counts


#: Gaps narrower than twice this (slivers between areas) are closed in the default region.
CLOSE_SLIVERS_M = 5.0


def region_boundary(cfg: RegionConfig, areas: gpd.GeoDataFrame) -> tuple[shapely.Geometry, str]:
    """The region's one outline (EPSG:4326): ``boundary:`` when given, else the areas'.

    Without ``boundary:`` the areas are dissolved, slivers between them closed (a buffer out
    and back in by :data:`CLOSE_SLIVERS_M` in the projected CRS) and interior holes filled
    (unpopulated or missing areas inside the region are still the region).

    Returns
    -------
    shapely.Geometry
        The outline.
    str
        Where it came from: ``"boundary"`` or ``"areas"``.

    Raises
    ------
    InputError
        For a missing or unreadable boundary file, one without a CRS or without polygons.
    """
    if cfg.boundary is not None:
        gdf = _read_polygons(cfg, cfg.boundary.path, cfg.boundary.layer, "boundary.path")
        geom = shapely.make_valid(gdf.geometry.to_numpy())
        polys = [g for g in geom if g is not None and g.geom_type in {"Polygon", "MultiPolygon"}]
        if not polys:
            path = cfg.resolve(cfg.boundary.path)
            msg = f"{path}: the boundary (config key boundary.path) holds no polygon"
            raise InputError(msg)
        region = gpd.GeoSeries([shapely.union_all(polys)], crs=gdf.crs).to_crs("EPSG:4326")
        return region.iloc[0], "boundary"
    proj = areas.to_crs(cfg.crs).geometry.to_numpy()
    merged = shapely.union_all(shapely.buffer(proj, CLOSE_SLIVERS_M, join_style="mitre"))
    merged = shapely.buffer(merged, -CLOSE_SLIVERS_M, join_style="mitre")
    parts = shapely.get_parts(merged)
    filled = shapely.union_all([shapely.Polygon(shapely.get_exterior_ring(p)) for p in parts])
    region = gpd.GeoSeries([filled], crs=cfg.crs).to_crs("EPSG:4326")
    return region.iloc[0], "areas"


def h3_center(cell: int) -> tuple[float, float]:
    """Return (lat, lon) of an H3 cell given as an integer."""
    import h3

    return h3.cell_to_latlng(h3.int_to_str(cell))


def _coverage(cells: np.ndarray, res: int, *, coarse_res: int = 8) -> shapely.Geometry:
    """Land within about one coarse cell (≈ 0.5 km) of a street: street cells grown by a ring."""
    import h3

    from etl.engine.isochrones import cells_to_polygon

    coarse = {
        h3.cell_to_parent(h3.int_to_str(int(c)), min(coarse_res, res)) for c in np.unique(cells)
    }
    grown = set(coarse)
    for c in coarse:
        grown.update(h3.grid_disk(c, 1))
    return cells_to_polygon(np.array([h3.str_to_int(c) for c in grown], dtype=np.uint64))


__all__ = [
    "People",
    "PlacedPoints",
    "allocate_people",
    "assign_points",
    "cells_of",
    "generated_ids",
    "place_people",
    "read_areas",
    "read_people_points",
    "region_boundary",
]
