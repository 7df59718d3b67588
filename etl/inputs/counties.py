"""The counties stage: overdose tables → one suppressed, flagged counties layer.

Every source is read with :func:`etl.inputs.overdose.read_overdose`, then CDC WONDER's rule is
applied per period (counts 1-9 hidden, with complementary suppression so no hidden count
can be recovered by subtraction) and rates from fewer than 20 deaths are marked unstable.
The basis of every number (crude / age-adjusted / modelled, years pooled) travels with it.
A rate published without a count (OEPS's modelled ``OdMortRt``) is kept, unless a count from
1 to 9 can be derived from it and the county's population.

The region's counties are explicit (:func:`resolve_region_counties`): the config's
``counties:``, else the counties its areas' census GEOIDs name, else a spatial join with the
config's ``county_outlines:``, else none, and then nothing is attributed to any county (the
panel and the fact sheet say :data:`NO_COUNTY_TEXT`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from etl._errors import InputError
from etl.bundle.privacy import RATE_COLUMNS, mark_unstable, suppress_counts
from etl.config import RegionConfig
from etl.controls import FEATURE_FIRST_ROW, clean_input
from etl.fips import COUNTY_NAME_TABLES, STATE_FIPS, geoid_counties

logger = logging.getLogger(__name__)

#: What the overdose panel and the fact sheet say when the region's counties are unknown.
NO_COUNTY_TEXT: Final[str] = (
    "No county is known for this region; add `counties:` (FIPS codes) to its config."
)

#: Where a region's counties came from (``stages.counties.counties_from``).
COUNTIES_FROM: Final[tuple[str, ...]] = ("config", "geoids", "outlines", "none")


@dataclass
class RegionCounties:
    """The counties a region lies in, and how that is known.

    Attributes
    ----------
    fips
        Sorted 5-digit county FIPS codes (empty when none is known).
    source
        One of :data:`COUNTIES_FROM`.
    names
        FIPS -> county name, where the outlines give one.
    outlines
        FIPS -> county polygon (in the areas' CRS), where the config gives outlines.
    per_area
        The county of each area (aligned with the areas), where it is known.
    """

    fips: list[str]
    source: str
    names: dict[str, str] = field(default_factory=dict)
    outlines: gpd.GeoSeries | None = None
    per_area: pd.Series | None = None


def _read_outlines(cfg: RegionConfig, crs: Any) -> tuple[gpd.GeoDataFrame, str]:
    """Read ``county_outlines``: polygons with a 5-digit ``fips`` and a ``name`` column."""
    item = cfg.county_outlines
    assert item is not None
    path = cfg.resolve(item.path)
    if not path.exists():
        msg = f"{path}: file not found (config key county_outlines.path); check the path"
        raise InputError(msg)
    try:
        gdf = gpd.read_file(cfg.reader_path(item.path), layer=item.layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        msg = f"{path}: cannot read the county outlines (config key county_outlines): {exc}"
        raise InputError(msg) from exc
    if gdf.crs is None:
        msg = f"{path}: the county outlines declare no CRS (.prj missing?); add one, e.g. EPSG:4269"
        raise InputError(msg)
    gdf = clean_input(
        gdf.reset_index(drop=True), role="county_outlines", file=path, first_row=FEATURE_FIRST_ROW
    )
    for key, col in (("id_column", item.id_column), ("name_column", item.name_column)):
        if col is not None and col not in gdf.columns:
            cols = ", ".join(repr(c) for c in gdf.columns if c != gdf.geometry.name)
            msg = f"{path}: no column {col!r} (county_outlines.{key}); the file has {cols}"
            raise InputError(msg)
    ids = gdf[item.id_column].astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    ids = ids.where(ids.str.len() != 4, "0" + ids)  # a numeric column lost the leading zero
    states = {**STATE_FIPS, "99": "ZZ"} if cfg.fictional else STATE_FIPS
    ok = ids.str.fullmatch(r"\d{5}") & ids.str[:2].isin(list(states))
    if not ok.all():
        i = int(np.flatnonzero(~ok.to_numpy())[0])
        msg = (
            f"{path}: row {i + 1}, column {item.id_column!r}: {gdf[item.id_column].iloc[i]!r} is "
            "not a 5-digit county FIPS code; point county_outlines.id_column at the county "
            "GEOID column (TIGER: GEOID)"
        )
        raise InputError(msg)
    names = (
        gdf[item.name_column].astype(str).str.strip()
        if item.name_column
        else pd.Series("", index=gdf.index)
    )
    out = gpd.GeoDataFrame(
        {"fips": ids.to_numpy(), "name": names.to_numpy()},
        geometry=gdf.geometry.to_numpy(),
        crs=gdf.crs,
    ).to_crs(crs)
    return out, str(path)


def outline_join(
    cfg: RegionConfig, areas: gpd.GeoDataFrame
) -> tuple[pd.Series, gpd.GeoDataFrame]:
    """Join each area to the county outline holding a point on its surface.

    Parameters
    ----------
    cfg
        The region config; ``county_outlines`` must be set.
    areas
        The areas (``area_id`` and polygons, any CRS).

    Returns
    -------
    tuple of (pandas.Series, geopandas.GeoDataFrame)
        Each area's county FIPS (missing where it lies in no outline), indexed like
        ``areas``, and the outlines (``fips``, ``name``) in the areas' CRS.

    Raises
    ------
    InputError
        If the outlines cannot be read, or no area lies in any of them.
    """
    shapes, path = _read_outlines(cfg, areas.crs)
    points = gpd.GeoDataFrame(
        {"_i": np.arange(len(areas))},
        geometry=shapely.point_on_surface(areas.geometry.to_numpy()),
        crs=areas.crs,
    )
    hit = gpd.sjoin(points, shapes, how="left", predicate="within")
    hit = hit.drop_duplicates("_i").sort_values("_i")
    joined = pd.Series(hit["fips"].to_numpy(), index=areas.index)
    if len(areas) and joined.isna().all():
        msg = (
            f"{path}: none of the region's {len(areas):,} areas lies inside a county "
            "outline; check that the file covers the region (and its CRS), or list the "
            "region's counties in `counties:`"
        )
        raise InputError(msg)
    logger.info(
        "outline_join: %d of %d areas joined to %d county outlines",
        int(joined.notna().sum()), len(areas), joined.nunique(),
    )  # fmt: skip
    return joined, shapes


def resolve_region_counties(cfg: RegionConfig, areas: gpd.GeoDataFrame) -> RegionCounties:
    """Decide which counties the region lies in: config, GEOIDs, outlines, or none.

    Parameters
    ----------
    cfg
        The region config (``counties``, ``areas.unit``, ``county_outlines``).
    areas
        The areas layer (``area_id`` and polygons).

    Returns
    -------
    RegionCounties
        The counties, their source, and what is known of their names and outlines.

    Raises
    ------
    InputError
        If the outlines cannot be read, or no area lies in any of them.
    """
    ids = areas["area_id"].astype(str).str.strip()
    geoids = geoid_counties(ids, unit=cfg.areas.unit) if len(ids) else None
    per_area = ids.str[:5] if geoids is not None else None
    outlines = names = None
    if cfg.county_outlines is not None:
        joined, shapes = outline_join(cfg, areas)
        per_area = joined if per_area is None else per_area
        outlines = shapes.dissolve(by="fips").geometry
        names = {f: n for f, n in zip(shapes["fips"], shapes["name"], strict=True) if n}
    if cfg.counties is not None:
        fips, source = sorted(cfg.counties), "config"
    elif geoids is not None:
        fips, source = geoids, "geoids"
    elif per_area is not None:
        fips, source = sorted(per_area.dropna().unique().tolist()), "outlines"
    else:
        fips, source = [], "none"
    if per_area is None and len(fips) == 1:
        per_area = pd.Series(fips[0], index=areas.index)  # one county holds every area
    if per_area is not None:
        per_area = per_area.where(per_area.isin(fips))
    if outlines is not None:
        outlines = outlines[outlines.index.isin(fips)]
    logger.info(
        "resolve_region_counties: %d counties from %s: %s",
        len(fips), source, ", ".join(fips) or "none known",
    )  # fmt: skip
    return RegionCounties(fips, source, names or {}, outlines, per_area)


def county_names(table: pd.DataFrame, counties: RegionCounties) -> dict[str, str]:
    """Name each region county: its outline's name, else an overdose table's, else built in."""
    names: dict[str, str] = {}
    built_in = {
        f: f"{n} County" for table_ in COUNTY_NAME_TABLES.values() for n, f in table_.items()
    }
    have = table[table["fips"].isin(counties.fips) & table["county"].notna()]
    by_table = have.groupby("fips")["county"].first().to_dict() if len(have) else {}
    for f in counties.fips:
        name = counties.names.get(f) or by_table.get(f) or built_in.get(f)
        if name:
            names[f] = str(name)
    return names


def suppress_table(table: pd.DataFrame) -> pd.DataFrame:
    """Apply the privacy rules to the counties schema, per source and period.

    Counts 1-9 are suppressed with complementary suppression within each source and period
    (so a county's value is never recoverable within one published table). A rate with no
    count is kept unless a count from 1 to 9 can be derived from it and a population: the
    row's own, else the smallest yearly population the tables give for that county (a
    pooled period's person-years divided by its years), times the row's years. A rate with
    no count and no population in any table cannot be checked (the census population is
    public, so a small count might follow from it): it is suppressed, and ``unchecked``
    marks it. Modelled rates are estimates: a source of modelled rates alone publishes no
    total to subtract from, so only its own rates that derive 1-9 deaths are hidden, not
    their neighbours. Rates on fewer than 20 deaths, known or derived, are marked unstable.

    Parameters
    ----------
    table
        Rows of :data:`etl.inputs.overdose.COUNTY_COLUMNS` from one or more sources.

    Returns
    -------
    pandas.DataFrame
        The same columns, suppressed and flagged.
    """
    out = table.copy()
    out["_group"] = out["source"].astype(str) + " | " + out["period"].astype(str)
    pop = pd.to_numeric(out["population"], errors="coerce").astype("float64").where(lambda p: p > 0)
    years = _years_pooled(out)
    smallest = (pop / years).groupby(out["fips"]).transform("min")  # per year, from any table
    out["_population"] = pop.where(pop.notna(), smallest * years.fillna(1.0))
    rates = [c for c in RATE_COLUMNS if c in out.columns]
    has_rate = out[rates].apply(pd.to_numeric, errors="coerce").notna().any(axis=1)
    unchecked = out["deaths"].isna() & has_rate & out["_population"].isna()
    unchecked &= ~out["suppressed"].fillna(False).astype(bool)
    out.loc[unchecked, rates] = np.nan
    out.loc[unchecked, "suppressed"] = True
    out["_estimate"] = out["rate_basis"].astype(str).eq("modelled")
    out = suppress_counts(
        out,
        count_cols=["deaths"],
        group_col="_group",
        population_col="_population",
        estimate_col="_estimate",
    )
    out = mark_unstable(out, "deaths", rate_cols=rates, population_col="_population")
    out = out.drop(columns=["_group", "_population", "_estimate"])
    out["unchecked"] = unchecked.to_numpy()
    if unchecked.any():
        logger.info(
            "suppress_table: %s rates without a count or any population hidden (cannot be "
            "checked for a count of 1-9)",
            f"{int(unchecked.sum()):,}",
        )
    return out


def _years_pooled(table: pd.DataFrame) -> pd.Series:
    """Years each row's population adds up (a pooled period's person-years); NaN: unknown.

    A yearly row counts 1; a pooled period labelled ``"2009-2018 pooled"`` counts 10; a
    pooled period without a span in its label is unknown, so its population is not used.
    """
    span = table["period"].astype(str).str.extract(r"(?P<a>\d{4})\s*[-–]\s*(?P<b>\d{4})")
    years = pd.to_numeric(span["b"], errors="coerce") - pd.to_numeric(span["a"], errors="coerce")
    pooled = (years + 1).where(years >= 0)
    one_year = pooled.isna() & table["period"].astype(str).str.match(r"\d{4}\b")
    yearly = table["year"].notna() | one_year
    return pooled.where(~yearly, 1.0)


def region_overdose(
    table: pd.DataFrame, fips: list[str], names: dict[str, str] | None = None
) -> pd.DataFrame:
    """Every region county's row of each source's latest period (the overdose panel's rows).

    Parameters
    ----------
    table
        The counties layer (geometry optional).
    fips
        The region's counties.
    names
        FIPS -> county name, used where a row has none.

    Returns
    -------
    pandas.DataFrame
        For each source, in the order the table lists them, its latest period holding any of
        the region's counties, and one row per region county in FIPS order; a county the
        source does not cover gets a row with ``missing`` True. Empty when ``fips`` is.
    """
    names = names or {}
    frame = pd.DataFrame(table).drop(columns="geometry", errors="ignore")
    frame = frame[frame["fips"].astype(str).isin(fips)]
    if "geoid" in frame.columns:  # county rows only, not a tract table's areas
        frame = frame[frame["geoid"].isna() | (frame["geoid"].astype(str) == frame["fips"])]
    cols = list(frame.columns)
    rows: list[dict[str, Any]] = []
    sources = pd.unique(pd.DataFrame(table)["source"].astype(str)) if len(table) else []
    for source in sources if fips else []:
        mine = frame[frame["source"].astype(str) == source]
        if mine.empty:
            rows += [{"fips": f, "source": source, "missing": True} for f in fips]
            continue
        order = mine.assign(
            _year=pd.to_numeric(mine["year"], errors="coerce"), _period=mine["period"].astype(str)
        ).sort_values(["_year", "_period"], na_position="first", kind="stable")
        period = order["period"].iloc[-1]
        latest = mine[mine["period"] == period]
        latest = latest.set_index(latest["fips"].astype(str))
        latest = latest[~latest.index.duplicated()]
        for f in fips:
            if f in latest.index:
                rows.append({**latest.loc[f, cols].to_dict(), "missing": False})
            else:
                rows.append({"fips": f, "source": source, "period": period, "missing": True})
    out = pd.DataFrame(rows, columns=[*cols, "missing"])
    if len(out):
        named = out["fips"].map(names)
        out["county"] = out["county"].where(out["county"].notna() & (out["county"] != ""), named)
    return out


def overdose_text(row: dict[str, Any], *, prefix: str = "Overdose deaths") -> str:
    """An overdose figure with its basis; suppressed and unstable values said as such.

    Parameters
    ----------
    row
        One row of the counties schema (or an area's overdose fields); ``missing`` True
        for a county the source does not cover.
    prefix
        What the figure is of ("Overdose deaths, Franklin County").

    Returns
    -------
    str
        One sentence; a count from 1 to 9 is never printed.
    """
    period = f" ({row['period']})" if _has(row.get("period")) else ""
    source = f". Source: {row['source']}" if _has(row.get("source")) else ""
    if row.get("missing"):
        return f"{prefix}{period}: not in this source{source}."
    if row.get("suppressed"):
        return f"{prefix}{period}: suppressed for privacy (1–9 deaths are never shown)."
    rate, deaths = row.get("rate_per_100k"), row.get("deaths")
    if not _has(rate):
        if _has(deaths):
            return f"{prefix}{period}: {round(deaths):,} deaths (no rate published){source}."
        return f"{prefix}{period}: not published."
    basis = row.get("rate_basis") if _has(row.get("rate_basis")) else "crude"
    text = f"{prefix}{period}: {rate:.1f} per 100,000 ({basis} rate"
    if _has(deaths):
        text += f", {round(deaths):,} deaths"
    text += ")"
    if row.get("unstable"):
        text += "; unstable: fewer than 20 deaths, interpret with care"
    if row.get("provisional"):
        text += "; provisional"
    return text + source + "."


def county_label(row: dict[str, Any]) -> str:
    """A county's name, else "County <FIPS>"."""
    name = row.get("county")
    return str(name) if _has(name) and name != "" else f"County {row.get('fips', '')}".strip()


def _has(value: Any) -> bool:
    if value is None:
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def stage_counties(ctx: Any) -> dict[str, Any]:
    """Read, suppress and write the overdose tables as the ``counties`` layer.

    The whole tables are suppressed (a national table's total is published), then only the
    region's counties are kept: the layer never holds a county from elsewhere, and is empty
    when no county of the region is known. Records the region's counties
    (``region_counties``), where they came from (``counties_from``: config, geoids, outlines
    or none) and their names (``county_names``) in the stage's manifest entry.
    """
    from etl.inputs.overdose import read_overdose

    cfg = ctx.cfg
    areas = ctx.layer("areas")
    counties = resolve_region_counties(cfg, areas)
    known: dict[str, Any] = {
        "region_counties": counties.fips,
        "counties_from": counties.source,
    }
    if not counties.fips:
        known["note_counties"] = NO_COUNTY_TEXT
    frames = [
        read_overdose(src, cfg.resolve(src.path), role=f"overdose.{k}")
        for k, src in enumerate(cfg.overdose)
    ]
    if not frames:
        return {"counties": 0, "note": "no overdose sources in the config", **known}
    table = suppress_table(pd.concat(frames, ignore_index=True))
    rows_read = len(table)
    names = county_names(table, counties)
    table = table[table["fips"].isin(counties.fips)].reset_index(drop=True)
    n_unchecked = int(table.pop("unchecked").sum())
    unnamed = table["county"].isna() | (table["county"].astype(str) == "")
    table.loc[unnamed, "county"] = table.loc[unnamed, "fips"].map(names)
    # Each county gets its outline (the county polygon from county_outlines, else the union
    # of its census areas), so the map can draw rates; several configured counties whose
    # areas cannot be told apart get none.
    if counties.outlines is not None:
        outlines = counties.outlines
    elif counties.per_area is not None:
        outlines = (
            gpd.GeoDataFrame({"fips": counties.per_area}, geometry=areas.geometry, crs=areas.crs)
            .dropna(subset=["fips"])
            .dissolve(by="fips")
            .geometry
        )
    else:
        outlines = gpd.GeoSeries([], crs=areas.crs)
    shapes = table["fips"].map(outlines) if len(outlines) else pd.Series(None, index=table.index)
    geometry = gpd.GeoSeries(shapes.astype(object), crs=areas.crs)
    layer = gpd.GeoDataFrame(table, geometry=geometry.to_numpy(), crs=areas.crs)
    ctx.writer.write_layer("counties", layer, description="overdose deaths by county (suppressed)")
    missing = sorted(set(counties.fips) - set(table["fips"]))
    logger.info(
        "stage_counties: %s of %s rows from %d sources are the region's %d counties (from "
        "%s); %s suppressed, %s unstable; %d counties in no table",
        f"{len(table):,}", f"{rows_read:,}", len(frames), len(counties.fips), counties.source,
        f"{int(table['suppressed'].sum()):,}", f"{int(table['unstable'].sum()):,}", len(missing),
    )  # fmt: skip
    return {
        "rows": len(table),
        "rows_read": rows_read,
        "sources": len(frames),
        "suppressed": int(table["suppressed"].sum()),
        "unstable": int(table["unstable"].sum()),
        "rates_without_count": int((table["deaths"].isna() & table["rate_per_100k"].notna()).sum()),
        "rates_unchecked": n_unchecked,
        **known,
        "county_names": names,
    }
