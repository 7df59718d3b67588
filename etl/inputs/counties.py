"""The counties stage: overdose tables → one suppressed, flagged counties layer.

Every source is read with :func:`etl.inputs.overdose.read_overdose`, then CDC WONDER's rule is
applied per period (counts 1-9 hidden, with complementary suppression so no hidden count
can be recovered by subtraction) and rates from fewer than 20 deaths are marked unstable.
The basis of every number (crude / age-adjusted / modelled, years pooled) travels with it.
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import pandas as pd

from etl.bundle.privacy import mark_unstable, suppress_counts

logger = logging.getLogger(__name__)


def stage_counties(ctx: Any) -> dict[str, Any]:
    """Read, suppress and write the overdose tables as the ``counties`` layer."""
    from etl.inputs.overdose import read_overdose

    cfg = ctx.cfg
    frames = []
    for src in cfg.overdose:
        frame = read_overdose(src, cfg.resolve(src.path))
        frames.append(frame)
    if not frames:
        return {"counties": 0, "note": "no overdose sources in the config"}
    table = pd.concat(frames, ignore_index=True)
    # Suppress per source and period, so a county's value is never recoverable within
    # one published table.
    table["_group"] = table["source"].astype(str) + " | " + table["period"].astype(str)
    table = suppress_counts(table, count_cols=["deaths"], group_col="_group")
    table = mark_unstable(table, "deaths")
    table = table.drop(columns="_group")
    # Counties of the region get their outline (the union of their census areas), so the
    # map can draw rates; other counties of a national table keep no geometry.
    areas = ctx.layer("areas")
    outlines = (
        gpd.GeoDataFrame(
            {"fips": areas["area_id"].astype(str).str[:5]}, geometry=areas.geometry, crs=areas.crs
        )
        .dissolve(by="fips")
        .geometry
    )
    geometry = gpd.GeoSeries(table["fips"].map(outlines), crs=areas.crs)
    layer = gpd.GeoDataFrame(table, geometry=geometry.to_numpy(), crs=areas.crs)
    ctx.writer.write_layer("counties", layer, description="overdose deaths by county (suppressed)")
    region_fips = sorted(set(table["fips"]) & set(outlines.index))
    logger.info(
        "stage_counties: %s rows from %d sources; %s suppressed, %s unstable",
        f"{len(table):,}",
        len(frames),
        f"{int(table['suppressed'].sum()):,}",
        f"{int(table['unstable'].sum()):,}",
    )
    return {
        "rows": len(table),
        "sources": len(frames),
        "suppressed": int(table["suppressed"].sum()),
        "unstable": int(table["unstable"].sum()),
        "region_counties": region_fips,
    }
