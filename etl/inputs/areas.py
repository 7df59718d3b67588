"""Census areas with their population, and the people points that area metrics weigh over.

People are placed dasymetrically: each area's population is spread over the fine H3 cells
(res 10, ≈ 0.015 km²) holding its residential-type streets, in proportion to street length,
so an area's travel time is weighted by where its people can live rather than taken at its
geometric centroid. The part of an area outside the street network's coverage (e.g. beyond
a clipped OSM extract) is counted as *not covered*, never as reachable or as a desert.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from etl._errors import InputError
from etl.config import RegionConfig
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


def read_areas(cfg: RegionConfig) -> gpd.GeoDataFrame:
    """Read the region's census areas and join their population.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``area_id``, ``name``, ``unit``, ``population``, ``area_km2``,
        ``geometry``.

    Raises
    ------
    InputError
        For a missing or unreadable file, a layer without a CRS, a missing id column,
        duplicated ids, or a population table that does not join or holds bad values.
    """
    ac = cfg.areas
    path = cfg.resolve(ac.path)
    if not path.exists():
        msg = f"{path}: areas file not found (config key areas.path)"
        raise InputError(msg)
    try:
        gdf = gpd.read_file(cfg.reader_path(ac.path), engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        msg = f"{path}: cannot read the areas layer: {exc}"
        raise InputError(msg) from exc
    if gdf.crs is None:
        msg = f"{path}: the areas layer declares no CRS (.prj missing?); add one, e.g. EPSG:4269"
        raise InputError(msg)
    if ac.id_column not in gdf.columns:
        cols = ", ".join(gdf.columns)
        msg = f"{path}: no column {ac.id_column!r} (areas.id_column); columns: {cols}"
        raise InputError(msg)
    ids = _digits_key(gdf[ac.id_column])
    dupes = ids[ids.duplicated()].unique()
    if len(dupes):
        rows = (np.flatnonzero(ids.isin(dupes[:3]).to_numpy()) + 1).tolist()
        shown = ", ".join(dupes[:3])
        msg = f"{path}: duplicated {ac.id_column} {shown} (features {rows}); ids must be unique"
        raise InputError(msg)
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
    if ac.population_column:
        if ac.population_column not in gdf.columns:
            msg = f"{path}: no column {ac.population_column!r} (areas.population_column)"
            raise InputError(msg)
        pop = pd.Series(gdf[ac.population_column].to_numpy(), index=out["area_id"])
        out["population"] = _check_population(pop, path, ac.population_column).to_numpy()
    else:
        out["population"] = _join_population(cfg, out["area_id"])
    out["area_km2"] = out.to_crs(cfg.crs).area.to_numpy() / 1e6
    out = out.to_crs("EPSG:4326")
    logger.info(
        "read_areas: %s %ss, %s people, from %s",
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


def _join_population(cfg: RegionConfig, area_ids: pd.Series) -> np.ndarray:
    pt = cfg.areas.population
    assert pt is not None
    path = cfg.resolve(pt.path)
    if not path.exists():
        msg = f"{path}: population table not found (config key areas.population.path)"
        raise InputError(msg)
    try:
        if path.suffix.lower() in {".xlsx", ".xls"}:
            table = pd.read_excel(path, sheet_name=pt.sheet or 0, dtype={pt.key: str})
        else:
            table = pd.read_csv(path, dtype={pt.key: str}, encoding="utf-8-sig")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the population table: {exc}"
        raise InputError(msg) from exc
    for col in (pt.key, pt.column):
        if col not in table.columns:
            msg = f"{path}: no column {col!r}; columns: {', '.join(map(str, table.columns))}"
            raise InputError(msg)
    keys = _digits_key(table[pt.key])
    dupes = keys[keys.duplicated()]
    if len(dupes):
        row = int(np.flatnonzero(keys.duplicated().to_numpy())[0]) + 2
        msg = f"{path}: row {row}: {pt.key} {dupes.iloc[0]} appears more than once"
        raise InputError(msg)
    pop = _check_population(pd.Series(table[pt.column].to_numpy(), index=keys), path, pt.column)
    missing = ~area_ids.isin(pop.index)
    if missing.any():
        ids = ", ".join(area_ids[missing].head(5))
        msg = (
            f"{path}: {int(missing.sum())} of {len(area_ids)} areas have no population row "
            f"(e.g. {ids}); check that {pt.key} holds the same ids as the areas' id column"
        )
        raise InputError(msg)
    return pop.reindex(area_ids.to_numpy()).to_numpy()


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


__all__ = ["People", "allocate_people", "cells_of", "read_areas"]
