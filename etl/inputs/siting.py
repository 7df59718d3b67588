"""The barriers stage: siting rules → barrier polygons and the sitable land.

Buffer rules (e.g. Ohio ORC 5119.37(C)(4): no opioid treatment program within 500 ft of a
school or child care) are measured from the region's points of interest in its projected CRS;
zoning districts are mapped through their rule table. Each barrier row carries its rule's
citation and a legal note that such rules have been struck down under the ADA, so the map
presents them as barriers a coalition may contest, not as settled facts.
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from etl.categories import site_mask
from etl.inputs.barriers import (
    buffer_barriers,
    people_inside,
    read_poi,
    read_zoning,
    sitable_land,
    zoning_barriers,
)

logger = logging.getLogger(__name__)


def stage_barriers(ctx: Any) -> dict[str, Any]:
    """Build the ``barriers`` and ``sitable`` layers; report area and people inside."""
    cfg = ctx.cfg
    if not cfg.barriers and cfg.zoning is None:
        return {"rules": 0, "note": "no siting rules in the config"}
    areas = ctx.layer("areas")
    region = gpd.GeoDataFrame(
        geometry=[shapely.union_all(areas.geometry.to_numpy())], crs="EPSG:4326"
    )
    parts = []
    counts: dict[str, Any] = {}
    if cfg.barriers:
        assert cfg.places is not None
        poi = read_poi(cfg.places, cfg.resolve(cfg.places.path))
        counts["places"] = {str(k): int(v) for k, v in poi["poi_type"].value_counts().items()}
        for rule in cfg.barriers:
            parts.append(buffer_barriers(poi, rule, crs=cfg.crs))
    if cfg.zoning is not None:
        zones, rules = read_zoning(cfg.zoning, base_dir=cfg.base_dir)
        z = cfg.zoning
        parts.append(
            zoning_barriers(
                zones,
                rules,
                code_col=z.code_column,
                use=z.rule_column,
                rules_code_col=z.rules_code_column,
                crs=cfg.crs,
                name=z.name or "Zoning",
                citation=z.citation or "",
                applies_to=z.applies_to,
            )
        )
    barriers = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs).to_crs(
        "EPSG:4326"
    )
    sitable = sitable_land(region, barriers)
    sitable_gdf = gpd.GeoDataFrame(
        {
            "name": ["Land where a new clinic may open"],
            "note": [
                "The region minus land where a rule prohibits a new treatment program; "
                "conditional zones count as sitable with a permit."
            ],
        },
        geometry=[sitable],
        crs="EPSG:4326",
    )
    ctx.writer.write_layer("barriers", barriers, description="land where a siting rule blocks care")
    ctx.writer.write_layer(
        "sitable", sitable_gdf, description="land where no rule blocks a new site"
    )
    areas_proj = areas.to_crs(cfg.crs)
    inside = people_inside(barriers, areas_proj, crs=cfg.crs)
    report = []
    providers = ctx.layer("providers")
    for i, row in barriers.reset_index(drop=True).iterrows():
        entry = {
            "rule": row["rule"],
            "status": row.get("status"),
            "area_km2": round(float(row["area_km2"]), 2),
            "people_inside": round(float(inside.iloc[i])),
        }
        otp = providers[site_mask(providers, "methadone")]
        entry["otps_inside"] = int(otp.within(row.geometry).sum())
        report.append(entry)
    counts.update(rules=len(barriers), barriers=report)
    return counts
