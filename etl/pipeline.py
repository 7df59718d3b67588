"""The build pipeline: stages that turn a region config into a region bundle.

Stages, in order (each is also a CLI command that re-runs it and every stage after it,
reading earlier stages' outputs from the current bundle instead of the raw inputs):

``build-network``   OSM file or Overpass → drive and walk networks (largest SCC, speeds)
``load-areas``      census areas + population → areas layer, dasymetric people points
``load-providers``  provider lists → one providers layer, snapped to each network, rejects
``build-barriers``  siting rules (buffers around schools and child care, zoning) → barriers,
                    sitable land
``load-overdose``   overdose tables → counties layer, small counts suppressed
``compute-access``  nearest-site travel times per (category, mode) → access arrays, area
                    metrics, isochrone bands, H3 grid, deserts
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from tqdm import tqdm

from etl import __version__
from etl._errors import BundleError, InputError, NetworkError
from etl.bundle.privacy import assert_no_exact_points, assert_no_small_counts, generalize_points
from etl.bundle.store import (
    Bundle,
    BundleWriter,
    bundle_path,
    region_lock,
    remove_stale_builds,
    write_bundle,
    write_manifest,
)
from etl.categories import CATEGORIES, CATEGORY_LABELS, site_mask
from etl.config import RegionConfig
from etl.controls import REPORT_COLUMNS, CleanedLedger, cleaned_table, recording
from etl.engine.access import beyond_network, nearest_site_times, routable_sites, snap_points
from etl.engine.capacity import capacity_access, capacity_sources
from etl.engine.counting import band_cells, covered_mask, desert_cells, people_times
from etl.engine.grid import cell_polygons, grid_minutes, parent_cells
from etl.engine.isochrones import cell_times, cells_to_polygon
from etl.engine.network import ModeNetwork, build_mode_network
from etl.engine.streets import cells_of, sample_streets, sample_times
from etl.fips import geoid_counties
from etl.hashing import sha256
from etl.inputs.areas import (
    People,
    allocate_people,
    place_people,
    read_areas,
    read_people_points,
    region_boundary,
)
from etl.inputs.counties import stage_counties
from etl.inputs.siting import stage_barriers
from etl.inputs.transit import stage_transit
from etl.outputs.cells import safe_cell, safe_table
from etl.validate import resolve_crs

logger = logging.getLogger(__name__)

STAGES: tuple[str, ...] = (
    "network",
    "areas",
    "providers",
    "barriers",
    "transit",
    "counties",
    "access",
    "tiles",
)
STAGE_COMMANDS: dict[str, str] = {
    "build-network": "network",
    "load-areas": "areas",
    "load-providers": "providers",
    "build-barriers": "barriers",
    "load-transit": "transit",
    "load-overdose": "counties",
    "compute-access": "access",
    "render-tiles": "tiles",
}
_PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "geopandas",
    "shapely",
    "pyproj",
    "pyogrio",
    "osmium",
    "osmnx",
    "h3",
    "networkx",
    "pyarrow",
    "dash",
    "dash-leaflet",
)


@dataclass
class BuildContext:
    """What the stages share: the config, the bundle being written and stage results."""

    cfg: RegionConfig
    writer: BundleWriter
    previous: Bundle | None
    progress: bool = True
    networks: dict[str, ModeNetwork] = field(default_factory=dict)
    providers: gpd.GeoDataFrame | None = None
    areas: gpd.GeoDataFrame | None = None
    people: pd.DataFrame | None = None
    region: shapely.Geometry | None = None
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)

    # -- earlier stages' outputs: from this run, or the files seeded from the current bundle --
    def network(self, mode: str) -> ModeNetwork:
        """The network of ``mode`` built in this run or seeded from the current bundle."""
        if mode not in self.networks:
            path = self.writer.tmp / "network" / f"{mode}.npz"
            if not path.exists():
                raise BundleError(self._missing(f"network/{mode}.npz"))
            self.networks[mode] = ModeNetwork.load(path)
        return self.networks[mode]

    def layer(self, name: str) -> pd.DataFrame:
        """A layer written earlier in this run or seeded from the current bundle."""
        cached = getattr(self, name, None) if name in {"providers", "areas", "people"} else None
        if cached is not None:
            return cached
        info = self.writer.layers.get(name)
        if info is None:
            raise BundleError(self._missing(f"layer {name!r}"))
        path = self.writer.tmp / info["file"]
        return gpd.read_parquet(path) if info.get("crs") else pd.read_parquet(path)

    def _missing(self, what: str) -> str:
        return (
            f"{what} is not in the bundle of {self.cfg.name!r}; run "
            f"`access-atlas build <config> --overwrite` to build every stage"
        )


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _input_record(cfg: RegionConfig, role: str, item: Any) -> dict[str, Any]:
    path = cfg.resolve(item.path)
    if not path.exists():
        msg = f"{path}: input file not found (config: {role}). Check the path in {cfg.base_dir}"
        raise InputError(msg)
    return {
        "role": role,
        "path": item.path,
        "resolved": str(path),
        "sha256": sha256(path),
        "bytes": _size(path),
        "source": item.source,
        "date": item.date,
        "licence": item.licence,
        # a provider list marked partial (e.g. vaccine-site pharmacies): shown as partial
        **(
            {"partial": item.partial, "category": getattr(item, "category", None)}
            if getattr(item, "partial", "")
            else {}
        ),
    }


# ---------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------


def stage_network(ctx: BuildContext) -> dict[str, Any]:
    """Read the street network and build one routable network per mode."""
    from etl.inputs import osm

    cfg = ctx.cfg
    nc = cfg.network
    if nc.osm is not None:
        raw = osm.read_osm_file(cfg.resolve(nc.osm.path))
    else:
        polygon = [tuple(p) for p in nc.polygon] if nc.polygon else None
        raw = osm.fetch_overpass(
            place=nc.place,
            polygon=polygon,
            overpass_url=nc.overpass_url,
            nominatim_url=nc.nominatim_url,
            cache_dir=ctx.writer.geodata_dir / ".cache" / "overpass",
        )
    counts: dict[str, Any] = {
        "osm_nodes": len(raw.node_id),
        "osm_ways": len(raw.ways),
        "segments": len(raw.u),
        "source": raw.source,
    }
    names = street_names(raw)
    ctx.writer.write_layer(
        "street_names", names, description="named streets, for labels and look-ups"
    )
    counts["named_streets"] = len(names)
    for mode in nc.modes:
        net = build_mode_network(raw, mode, crs=cfg.crs, **nc.speed_options())
        ctx.networks[mode] = net
        path = ctx.writer.write_network(net)
        counts[mode] = {
            "nodes": net.n_nodes,
            "edges": net.n_edges,
            "junctions": net.junction_count(),
            "file": str(path.relative_to(ctx.writer.tmp)),
        }
    return counts


def street_names(raw: Any) -> gpd.GeoDataFrame:
    """One (multi)line per named street way, from the raw network (file or Overpass)."""
    names = raw.ways["name"].fillna("").astype(str).str.strip().to_numpy()
    named = names[raw.way] != ""
    if not named.any():
        return gpd.GeoDataFrame({"name": [], "highway": []}, geometry=[], crs="EPSG:4326")
    u, v, way = raw.u[named], raw.v[named], raw.way[named]
    coords = np.stack(
        [np.column_stack([raw.lon[u], raw.lat[u]]), np.column_stack([raw.lon[v], raw.lat[v]])],
        axis=1,
    )
    segments = shapely.linestrings(coords)
    ways, index = np.unique(way, return_inverse=True)
    lines = shapely.line_merge(shapely.multilinestrings(segments, indices=index))
    return gpd.GeoDataFrame(
        {"name": names[ways], "highway": raw.ways["highway"].to_numpy()[ways]},
        geometry=lines,
        crs="EPSG:4326",
    )


def _address_points(cfg: RegionConfig) -> gpd.GeoDataFrame | None:
    """The address points of the config's geocoding references, for the app's look-ups."""
    if cfg.geocoding is None:
        return None
    from etl.inputs.geocode import read_reference

    frames = []
    for k, ref in enumerate(cfg.geocoding.reference):
        if ref.use != "address_points":
            continue
        points, _ = read_reference(ref, resolve=cfg.resolve, role=f"geocoding.reference.{k}")
        frames.append(points)
    if not frames:
        return None
    table = pd.concat(frames, ignore_index=True)
    table = table[np.isfinite(table["lon"]) & np.isfinite(table["lat"])].reset_index(drop=True)
    for col in table.columns:
        if col not in {"lon", "lat"}:
            table[col] = table[col].astype("string")
    return gpd.GeoDataFrame(
        table, geometry=gpd.points_from_xy(table["lon"], table["lat"]), crs="EPSG:4326"
    )


def _region_outline(ctx: BuildContext) -> shapely.Geometry:
    """The region's one geometry (EPSG:4326): the ``region`` layer the areas stage wrote.

    ``boundary:`` when the config gives one, else the dissolved areas with holes filled
    (:func:`etl.inputs.areas.region_boundary`); providers' ``in_region``, deserts, the printed
    map and the counts all use it.
    """
    if ctx.region is None:
        ctx.region = shapely.union_all(ctx.layer("region").geometry.to_numpy())
    return ctx.region


def stage_providers(ctx: BuildContext) -> dict[str, Any]:
    """Read every provider list into one layer and snap each site to each network."""
    from etl.inputs.geocode import geocoder_from_config, reference_cache_record
    from etl.inputs.providers import load_providers

    cfg = ctx.cfg
    cache_dir = ctx.writer.geodata_dir / ".cache"
    # the parsed geocoding reference is re-used from <geodata>/.cache/geocode while its inputs
    # are unchanged; the manifest says whether it was (stages.providers.geocode_reference)
    geocoder = geocoder_from_config(
        cfg, cache_dir=cache_dir, reference_cache_dir=cache_dir / "geocode"
    )
    result = load_providers(cfg, _region_outline(ctx), geocoder=geocoder, cache_dir=cache_dir)
    providers = result.providers.to_crs("EPSG:4326").reset_index(drop=True)
    hidden = (
        ~providers["show_exact"].fillna(True).astype(bool).to_numpy()
        if "show_exact" in providers
        else None
    )
    if providers.empty:
        msg = (
            f"{cfg.base_dir / (cfg.name + '.yaml')}: no provider of any list lies in the region "
            f"or within {cfg.buffer_km} km of it; check the provider files and the region"
        )
        raise InputError(msg)
    if hidden is not None and hidden.any():
        # Sites that asked not to be shown exactly: route from, and show, only their H3 cell.
        providers = generalize_points(providers, hidden, h3_resolution=cfg.access.h3_resolution)
        centres = providers.geometry.to_crs(cfg.crs).centroid.to_crs("EPSG:4326")
        routing = providers.geometry.where(~hidden, centres)
    else:
        routing = providers.geometry
    proj = gpd.GeoSeries(routing, crs="EPSG:4326").to_crs(cfg.crs)
    far_everywhere = np.ones(len(providers), dtype=bool)
    for mode in cfg.network.modes:
        net = ctx.network(mode)
        snap = snap_points(net, proj.x.to_numpy(), proj.y.to_numpy())
        providers[f"node_{mode}"] = snap.node
        providers[f"snap_m_{mode}"] = snap.distance_m.round(1)
        far_everywhere &= snap.distance_m > cfg.network.max_snap_m
    providers["on_network"] = ~far_everywhere
    off_network = _off_network_sites(providers, cfg.network.modes, cfg.network.max_snap_m)
    if far_everywhere.all():
        msg = (
            f"all {len(providers)} providers are more than {cfg.network.max_snap_m:.0f} m from "
            "every street of the network: the provider lists and the OSM extract do not overlap "
            "(wrong region, swapped lon/lat, or a CRS other than declared?)"
        )
        raise NetworkError(msg)
    ctx.providers = providers
    ctx.writer.write_layer("providers", providers, description="one row per site, all lists merged")
    from etl.outputs.quality_report import write_quality_report

    written = write_quality_report(
        result,
        ctx.writer.path("reports/.keep").parent,
        region=cfg.title,
        off_network=off_network,
        max_snap_m=cfg.network.max_snap_m,
    )
    report_files = {k: str(Path(v).relative_to(ctx.writer.tmp)) for k, v in written.items()}
    addresses = _address_points(cfg)
    if addresses is not None:
        ctx.writer.write_layer("addresses", addresses, description="address points for look-ups")
    by_cat = providers["category"].value_counts().to_dict()
    return {
        "providers": len(providers),
        "by_category": {k: int(v) for k, v in sorted(by_cat.items())},
        "off_network": off_network,
        "off_network_sites": len({row["id"] for row in off_network}),
        "rejected": len(result.rejects),
        "sources": result.report,
        "reports": report_files,
        **({"geocode_reference": ref} if (ref := reference_cache_record(geocoder)) else {}),
    }


def _off_network_sites(
    providers: pd.DataFrame, modes: list[str], max_snap_m: float
) -> list[dict[str, Any]]:
    """Sites farther than ``max_snap_m`` from a mode's network, warned once per category.

    Such a site is left out of that mode's travel times (:func:`routable_sites`); the build
    says so here, the manifest lists them (``stages.providers.off_network``) and the quality
    report, the methods page and the site's details on the map repeat it.

    Returns
    -------
    list of dict
        ``id``, ``name``, ``category``, ``mode``, ``snap_m`` per (site, mode), by category.
    """
    rows: list[dict[str, Any]] = []
    for mode in modes:
        snap = providers[f"snap_m_{mode}"].to_numpy(dtype=float)
        for i in np.flatnonzero(beyond_network(providers, mode, max_snap_m=max_snap_m)):
            site = providers.iloc[i]
            rows.append(
                {
                    "id": str(site["id"]),
                    "name": str(site.get("name") or site["id"]),
                    "category": str(site["category"]),
                    "mode": mode,
                    "snap_m": round(float(snap[i]), 1) if np.isfinite(snap[i]) else None,
                }
            )
    rows.sort(key=lambda r: (r["category"], r["name"], r["mode"]))
    for category in sorted({r["category"] for r in rows}):
        sites: dict[str, list[str]] = {}
        for r in rows:
            if r["category"] == category:
                far = f"{r['snap_m'] / 1000:.1f} km" if r["snap_m"] is not None else "no street"
                sites.setdefault(f"{r['name']} ({r['id']})", []).append(f"{r['mode']} {far}")
        listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in list(sites.items())[:10])
        more = f"; and {len(sites) - 10} more" if len(sites) > 10 else ""
        logger.warning(
            "load-providers: %d %s site(s) lie more than %.0f m from a mode's street network and "
            "are left out of its travel times (the OSM extract does not reach them): %s%s "
            "(all in manifest stages.providers.off_network); use an OSM extract that covers the "
            "region plus its buffer: see README 'Street extracts'",
            len(sites), category, max_snap_m, listed, more,
        )  # fmt: skip
    return rows


def stage_areas(ctx: BuildContext) -> dict[str, Any]:
    """Read the areas, write the region's outline and place the areas' people.

    People go at the ``areas.people`` points (e.g. census blocks) where the config names
    them, else along each area's residential streets. Every people point is snapped to each
    mode's network (``snap_m_<mode>``), also those beyond the streets: the access stage
    decides from the snap distance who is covered.
    """
    cfg = ctx.cfg
    areas = ctx.areas if ctx.areas is not None else read_areas(cfg)
    ids_are_geoids = geoid_counties(areas["area_id"], unit=cfg.areas.unit) is not None
    if not ids_are_geoids:
        logger.info(
            "load-areas: the %s ids are not census GEOIDs (e.g. %s), so GEOID-based features "
            "(the county link) are off; name the region's counties under `counties:` in %s "
            "to switch them on",
            cfg.areas.unit,
            areas["area_id"].iloc[0] if len(areas) else "-",
            cfg.base_dir / f"{cfg.name}.yaml",
        )
    region, region_source = region_boundary(cfg, areas)
    ctx.region = region
    base_mode = "walk" if "walk" in cfg.network.modes else cfg.network.modes[0]
    points_counts: dict[str, int | float] = {}
    if cfg.areas.people is not None:
        people, coverage, points_counts = place_people(
            areas,
            read_people_points(cfg),
            ctx.network(base_mode),
            crs=cfg.crs,
            max_distance_m=cfg.areas.people.max_distance_m,
        )
    else:
        people, coverage = allocate_people(areas, ctx.network(base_mode), crs=cfg.crs)
    areas = areas.merge(coverage, on="area_id", how="left")
    frame = pd.DataFrame(
        {"area_id": people.area_id, "weight": people.weight, "lon": people.lon, "lat": people.lat}
    )
    proj_x, proj_y = _project(people, cfg.crs)
    for mode in cfg.network.modes:
        snap = snap_points(ctx.network(mode), proj_x, proj_y)
        frame[f"node_{mode}"] = snap.node
        frame[f"snap_m_{mode}"] = snap.distance_m
    ctx.areas, ctx.people = areas, frame
    placement = "points" if cfg.areas.people is not None else "streets"
    ctx.writer.write_layer(
        "people",
        frame,
        description=(
            "population points: each area's people at its population points"
            if placement == "points"
            else "dasymetric population points"
        ),
    )
    outline = gpd.GeoDataFrame(
        {"name": [cfg.title], "fictional": [cfg.fictional], "source": [region_source]},
        geometry=[region],
        crs="EPSG:4326",
    )
    ctx.writer.write_layer("region", outline, description="the region's outline")
    # The areas layer is written by the access stage with its metrics.
    ctx.writer.write_layer("areas", areas, description="areas (metrics added by compute-access)")
    region_km2 = float(gpd.GeoSeries([region], crs="EPSG:4326").to_crs(cfg.crs).area.iloc[0])
    return {
        "areas": len(areas),
        "unit": cfg.areas.unit,
        "ids_are_geoids": ids_are_geoids,
        "ids_generated": cfg.areas.id_column is None,
        "region_source": region_source,
        "region_km2": round(region_km2 / 1e6, 2),
        "population": int(areas["population"].sum()),
        "population_covered": round(float(areas["population_covered"].sum())),
        "population_uncovered": round(float(areas["population_uncovered"].sum())),
        "people_placement": placement,
        "people_points": len(frame),
        **({"people_from_points": points_counts} if points_counts else {}),
    }


def _area_inputs(cfg: RegionConfig) -> list[tuple[str, Any]]:
    """The files the areas stage reads beside the area file: (manifest role, config item)."""
    ac = cfg.areas
    items: list[tuple[str, Any]] = []
    if ac.population_table is not None:
        items.append(("areas.population", ac.population_table))
    if ac.people is not None:
        items.append(("areas.people", ac.people))
        if ac.people.population is not None:
            items.append(("areas.people.population", ac.people.population))
    if cfg.boundary is not None:
        items.append(("boundary", cfg.boundary))
    return items


def _project(people: People, crs: str) -> tuple[np.ndarray, np.ndarray]:
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(people.lon, people.lat)
    return np.asarray(x), np.asarray(y)


def stage_access(ctx: BuildContext) -> dict[str, Any]:
    """Travel times, area metrics, isochrones, grid and deserts for every (category, mode)."""
    cfg = ctx.cfg
    providers = ctx.layer("providers")
    areas = ctx.layer("areas")
    people = ctx.layer("people")
    areas = areas[
        [
            c
            for c in areas.columns
            if not c.startswith(("t_", "share_", "desert_", "nearest_", "not_covered_", "cap_"))
        ]
    ]
    bands = [float(b) for b in cfg.access.bands_min]
    categories = [c for c in CATEGORIES if site_mask(providers, c).any()]
    weight = people["weight"].to_numpy()
    area_index = pd.Index(areas["area_id"]).get_indexer(people["area_id"])
    n_areas = len(areas)
    total_people = float(areas["population"].sum())

    iso_rows, desert_rows, grid_frames = [], [], []
    summary: dict[str, dict[str, Any]] = {}
    metrics: dict[str, np.ndarray] = {}
    tasks = [(c, m) for m in cfg.network.modes for c in categories]
    bar = tqdm(tasks, desc="compute-access", unit="pair", disable=not ctx.progress, leave=False)
    samples_by_mode = {}
    outline = _region_outline(ctx)
    # The region's res-9 cells by res-8 parent: the same for every mode, so computed once.
    region_parents = _region_parent_counts(outline)
    # One model of who is counted: a people point is covered by a mode when the mode's nearest
    # node is within access.cover_m; people the areas stage left beyond the network have no
    # point at all. Everyone else is "not covered", never in a desert, a band or within reach.
    covered_by_mode: dict[str, np.ndarray] = {}
    person_cells: dict[str, np.ndarray] = {}
    coverage: dict[str, dict[str, Any]] = {}
    for mode in cfg.network.modes:
        net = ctx.network(mode)
        samples_by_mode[mode] = samples = sample_streets(net)
        samples_by_mode[mode + "_parent"] = parent_cells(samples.cell, cfg.access.h3_resolution)
        snap_people = people[f"snap_m_{mode}"].to_numpy()
        covered_by_mode[mode] = covered_mask(snap_people, cfg.access.cover_m)
        # Per area, the same rule: its people minus those of its points the mode covers.
        area_covered = np.bincount(
            area_index, weights=np.where(covered_by_mode[mode], weight, 0.0), minlength=n_areas
        )
        metrics[f"not_covered_{mode}"] = np.clip(
            areas["population"].to_numpy(dtype=float) - area_covered, 0.0, None
        ).round(1)
        # Each point's fine cell at the mode's polygon resolution: drawn wherever it is counted.
        person_cells[mode] = cells_of(
            people["lat"].to_numpy(float), people["lon"].to_numpy(float), samples.res
        )
        coverage[mode] = _mode_coverage(
            mode,
            covered_by_mode[mode],
            weight,
            total_people,
            cfg.access.cover_m,
            samples,
            region_parents,
        )
    arrays: dict[str, dict[str, np.ndarray]] = {m: {} for m in cfg.network.modes}
    for category, mode in bar:
        bar.set_postfix_str(f"{category}/{mode}")
        net = ctx.network(mode)
        reachable = routable_sites(providers, mode, max_snap_m=cfg.network.max_snap_m)
        offers = site_mask(providers, category)
        sites = np.flatnonzero(offers & reachable)
        if len(sites) == 0:
            logger.info(
                "compute-access: no %s site within %.0f m of the %s network",
                category,
                cfg.network.max_snap_m,
                mode,
            )
        snap_walk = providers[f"snap_m_{mode}"].to_numpy()[sites] / net.walk_speed_mps
        res = nearest_site_times(
            net, providers[f"node_{mode}"].to_numpy()[sites], site_offsets_s=snap_walk
        )
        nearest_row = np.where(res.nearest >= 0, sites[np.maximum(res.nearest, 0)], -1)
        arrays[mode][f"time_{category}"] = res.time_s.astype(np.float32)
        arrays[mode][f"nearest_{category}"] = nearest_row.astype(np.int32)

        # People: time, then area aggregates.
        node = people[f"node_{mode}"].to_numpy()
        t_person = people_times(
            res.time_s,
            node,
            people[f"snap_m_{mode}"].to_numpy(),
            walk_speed_mps=net.walk_speed_mps,
            cover_m=cfg.access.cover_m,
        )
        covered = covered_by_mode[mode]
        key = f"{category}_{mode}"
        reach = np.isfinite(t_person)
        w = np.where(reach, weight, 0.0)
        wt = np.bincount(area_index, weights=w, minlength=n_areas)
        mean_min = (
            np.bincount(area_index, weights=np.where(reach, t_person, 0.0) * w, minlength=n_areas)
            / 60.0
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            metrics[f"t_{key}"] = np.where(wt > 0, mean_min / wt, np.nan).round(2)
        nearest_person = nearest_row[node]
        metrics[f"nearest_{key}"] = _area_mode_provider(
            area_index, nearest_person, w, providers["id"].to_numpy(), n_areas
        )
        threshold = cfg.threshold(category, mode)
        covered_w = np.where(covered, weight, 0.0)
        pop_cov = np.bincount(area_index, weights=covered_w, minlength=n_areas)
        if threshold is not None:
            within = covered & (t_person <= threshold * 60.0)
            beyond = covered & ~(t_person <= threshold * 60.0)
            w_in = np.bincount(area_index, weights=np.where(within, weight, 0.0), minlength=n_areas)
            w_out = np.bincount(
                area_index, weights=np.where(beyond, weight, 0.0), minlength=n_areas
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                metrics[f"share_{key}"] = np.where(pop_cov > 0, w_in / pop_cov, np.nan).round(4)
            metrics[f"desert_people_{key}"] = w_out.round(1)

        # Street samples → isochrones, deserts and the grid.
        samples = samples_by_mode[mode]
        s_time = sample_times(samples, res.time_s)
        cells, best = cell_times(samples, res.time_s)
        for band in bands:
            in_band = covered & (t_person <= band * 60.0)
            people_in = float(weight[in_band].sum())
            # The band's streets plus the cells of every point counted within it.
            poly = cells_to_polygon(
                band_cells(cells, best, band * 60.0, person_cells[mode], t_person, weight)
            )
            iso_rows.append(
                {
                    "category": category,
                    "mode": mode,
                    "minutes": band,
                    "population": round(people_in),
                    "geometry": poly,
                }
            )
        gm = grid_minutes(samples_by_mode[mode + "_parent"], s_time).rename(f"t_{key}")
        grid_frames.append(gm)
        entry: dict[str, Any] = {
            "sites": len(sites),
            "sites_off_network": int((offers & ~reachable).sum()),
            "median_minutes": _weighted_median(t_person[covered], weight[covered]),
        }
        if threshold is not None:
            # Streets beyond the threshold plus the cells of every point counted in the desert
            # (whose own walk to the street may be what puts them beyond), clipped to the region.
            desert_poly = shapely.intersection(
                cells_to_polygon(
                    desert_cells(
                        cells, best, threshold * 60.0, person_cells[mode], t_person, weight
                    )
                ),
                outline,
            )
            people_out = float(weight[beyond].sum())
            people_cov = float(weight[covered].sum())
            desert_rows.append(
                {
                    "category": category,
                    "mode": mode,
                    "threshold_min": threshold,
                    "population": round(people_out),
                    "share": round(people_out / people_cov, 4) if people_cov else None,
                    "label": f"{CATEGORY_LABELS[category]}: more than {threshold:g} min "
                    f"{'by car' if mode == 'drive' else 'on foot'}",
                    "geometry": desert_poly,
                }
            )
            entry.update(
                threshold_min=threshold,
                people_within=round(people_cov - people_out),
                people_in_desert=round(people_out),
                people_not_covered=coverage[mode]["not_covered"],
            )
        summary[key] = entry
    bar.close()

    for mode, arrs in arrays.items():
        ctx.writer.write_arrays(f"access/{mode}.npz", **arrs)
    facility_counts: dict[str, Any] = {}
    if cfg.facilities:  # re-entry: prisons and jails, like people points (etl.inputs.facilities)
        from etl.inputs.facilities import stage_facilities

        facility_counts = stage_facilities(ctx, arrays, outline)
    if "transit_stops" in ctx.writer.layers and "walk" in arrays:
        from etl.inputs.transit import stop_walk_minutes

        stops = stop_walk_minutes(
            ctx.layer("transit_stops"),
            ctx.network("walk"),
            {c: arrays["walk"][f"time_{c}"] for c in categories},
            crs=cfg.crs,
            max_snap_m=cfg.network.max_snap_m,
        )
        ctx.writer.write_layer(
            "transit_stops",
            stops,
            description="transit stops with the walk to the nearest care of each category",
        )
    # Capacity-aware access (Gaussian 2SFCA) where a provider list counts capacity.
    capacity = capacity_access(
        providers, people, {m: ctx.network(m) for m in cfg.network.modes},
        {(c, m): t for c in categories for m in cfg.network.modes
         if (t := cfg.threshold(c, m)) is not None},
        sources=capacity_sources(cfg.providers), area_index=area_index, n_areas=n_areas,
        max_snap_m=cfg.network.max_snap_m, cover_m=cfg.access.cover_m,
    )  # fmt: skip
    metrics.update(capacity.columns)
    # The areas stage's placement figures give way to the one per-mode rule above.
    areas = areas.drop(columns=["population_covered", "population_uncovered"], errors="ignore")
    for name, values in metrics.items():
        areas[name] = values
    ctx.writer.write_layer(
        "areas",
        gpd.GeoDataFrame(areas, geometry="geometry", crs="EPSG:4326"),
        description="census areas with population-weighted access metrics",
    )
    iso = gpd.GeoDataFrame(iso_rows, geometry="geometry", crs="EPSG:4326")
    ctx.writer.write_layer("isochrones", iso, description="land within each band, along streets")
    deserts = gpd.GeoDataFrame(
        desert_rows
        or {
            "category": [],
            "mode": [],
            "threshold_min": [],
            "population": [],
            "share": [],
            "label": [],
            "geometry": [],
        },
        geometry="geometry",
        crs="EPSG:4326",
    )
    ctx.writer.write_layer("deserts", deserts, description="people beyond each threshold")
    blocked_rows = 0
    if "barriers" in ctx.writer.layers and len(deserts):
        from etl.inputs.barriers import desert_and_blocked

        points = gpd.GeoDataFrame(
            {"weight": weight},
            geometry=gpd.points_from_xy(people["lon"], people["lat"]),
            crs="EPSG:4326",
        )
        blocked = desert_and_blocked(deserts.to_crs(cfg.crs), ctx.layer("barriers"), people=points)
        ctx.writer.write_layer(
            "desert_blocked",
            blocked.to_crs("EPSG:4326"),
            description="desert land where a rule blocks a new site",
        )
        blocked_rows = len(blocked)
    grid = pd.concat(grid_frames, axis=1) if grid_frames else pd.DataFrame()
    grid.index.name = "cell"
    grid = grid.reset_index()
    grid_gdf = gpd.GeoDataFrame(
        grid.assign(h3=[f"{int(c):x}" for c in grid["cell"]]).drop(columns="cell"),
        geometry=cell_polygons(grid["cell"].to_numpy()),
        crs="EPSG:4326",
    )
    ctx.writer.write_layer(
        "grid", grid_gdf, description=f"H3 res {cfg.access.h3_resolution} travel times"
    )
    return {
        "categories": categories,
        "pairs": len(tasks),
        "isochrones": len(iso),
        "deserts": len(deserts),
        "desert_blocked": blocked_rows,
        "grid_cells": len(grid_gdf),
        "coverage": coverage,
        "summary": summary,
        **({"facilities": facility_counts} if facility_counts else {}),
        **({"capacity": capacity.summary} if capacity.summary else {}),
    }


#: Share of the people or of the region's area beyond a mode's network above which the build
#: warns that the street extract does not cover the region.
COVERAGE_WARN_SHARE = 0.05


def _region_parent_counts(outline: shapely.Geometry) -> dict[str, int]:
    """The region's res-9 H3 cells counted by res-8 parent, for :func:`_mode_coverage`.

    Parameters
    ----------
    outline
        The region's outline (WGS84).

    Returns
    -------
    dict
        Res-8 cell → number of the region's res-9 cells (``h3.geo_to_cells`` of each part of
        the outline, cells shared by two parts counted once) whose parent it is.
    """
    import h3

    region_cells: set[str] = set()
    for part in getattr(outline, "geoms", [outline]):
        if not part.is_empty:
            region_cells.update(h3.geo_to_cells(part.__geo_interface__, 9))
    counts: dict[str, int] = {}
    for c in region_cells:
        parent = h3.cell_to_parent(c, 8)
        counts[parent] = counts.get(parent, 0) + 1
    return counts


def _mode_coverage(
    mode: str,
    covered: np.ndarray,
    weight: np.ndarray,
    population: float,
    cover_m: float,
    samples: Any,
    region_parents: Mapping[str, int],
) -> dict[str, Any]:
    """Who a mode's network covers: the one number every page, print and export shows.

    Parameters
    ----------
    mode
        The travel mode.
    covered
        Per people point: its nearest node of the mode is within ``cover_m``.
    weight
        People per point.
    population
        The region's population (people without a point are not covered).
    cover_m
        ``access.cover_m``.
    samples
        The mode's street samples (:func:`etl.engine.streets.sample_streets`).
    region_parents
        The region's res-9 cells counted by res-8 parent (:func:`_region_parent_counts` of
        the outline, computed once per build for every mode).

    Returns
    -------
    dict
        ``cover_m``, ``people``, ``covered``, ``not_covered`` (integers, people = covered +
        not_covered = the region's population) and ``area_beyond_share`` (share of the
        region's land farther than about 0.5-1 km from the mode's streets).
    """
    import h3

    people = round(float(population))
    n_covered = min(round(float(weight[covered].sum())), people)
    not_covered = people - n_covered
    # Land beyond the network, as the areas stage measures it (etl.inputs.areas._coverage):
    # res-9 cells of the region whose res-8 parent is not within one res-8 ring (≈ 0.5-1 km)
    # of a street. Fields and woods between country roads are not "beyond"; a clipped
    # extract's missing kilometres are.
    street = {h3.cell_to_parent(h3.int_to_str(int(c)), 8) for c in np.unique(samples.cell)}
    near: set[str] = set()
    for c in street:
        near.update(h3.grid_disk(c, 1))
    n_region = sum(region_parents.values())
    inside = sum(n for parent, n in region_parents.items() if parent in near)
    area_beyond = 1.0 - inside / n_region if n_region else 0.0
    share_people = not_covered / people if people else 0.0
    logger.info(
        "compute-access: %s network covers %s of %s people (nearest node within %g m); "
        "%s not covered; %.1f %% of the region's land beyond it",
        mode, f"{n_covered:,}", f"{people:,}", cover_m, f"{not_covered:,}", 100 * area_beyond,
    )  # fmt: skip
    if share_people > COVERAGE_WARN_SHARE or area_beyond > COVERAGE_WARN_SHARE:
        logger.warning(
            "compute-access: %s of %s people (%.1f %%) and %.1f %% of the region's land lie "
            "beyond the %s street network (people farther than %g m from it are counted as not "
            "covered); use an OSM extract that covers the region plus its buffer: "
            "see README 'Street extracts'",
            f"{not_covered:,}", f"{people:,}", 100 * share_people, 100 * area_beyond, mode,
            cover_m,
        )  # fmt: skip
    return {
        "cover_m": float(cover_m),
        "people": people,
        "covered": n_covered,
        "not_covered": not_covered,
        "area_beyond_share": round(area_beyond, 4),
    }


def stage_tiles(ctx: BuildContext) -> dict[str, Any]:
    """Pre-render the offline basemap (XYZ PNG tiles of the region's streets) into the bundle."""
    from etl.outputs.tiles import build_tiles

    cfg = ctx.cfg
    if not cfg.tiles.enabled:
        return {"tiles": 0, "note": "tiles disabled in the config"}
    partial = Bundle(
        path=ctx.writer.tmp,
        manifest={"region": cfg.name, "title": cfg.title, "fictional": cfg.fictional,
                  "layers": ctx.writer.layers},
    )  # fmt: skip
    zooms = range(cfg.tiles.min_zoom, cfg.tiles.max_zoom + 1)
    count = build_tiles(partial, ctx.writer.tmp / "tiles", zooms=zooms)
    return {"tiles": count, "zooms": [cfg.tiles.min_zoom, cfg.tiles.max_zoom], "folder": "tiles"}


def _area_mode_provider(
    area_index: np.ndarray, provider_row: np.ndarray, w: np.ndarray, ids: np.ndarray, n_areas: int
) -> np.ndarray:
    """The provider id nearest to most of each area's people."""
    ok = (provider_row >= 0) & (w > 0)
    out = np.full(n_areas, None, dtype=object)
    if not ok.any():
        return out
    frame = pd.DataFrame({"a": area_index[ok], "p": provider_row[ok], "w": w[ok]})
    top = (
        frame.groupby(["a", "p"])["w"]
        .sum()
        .reset_index()
        .sort_values("w")
        .drop_duplicates("a", keep="last")
    )
    out[top["a"].to_numpy()] = ids[top["p"].to_numpy()]
    return out


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float | None:
    ok = np.isfinite(values) & (weights > 0)
    if not ok.any():
        return None
    v, w = values[ok], weights[ok]
    order = np.argsort(v)
    cum = np.cumsum(w[order])
    return round(float(v[order][np.searchsorted(cum, cum[-1] / 2)]) / 60.0, 2)


STAGE_FUNCS: dict[str, Callable[[BuildContext], dict[str, Any]]] = {
    "network": stage_network,
    "areas": stage_areas,
    "providers": stage_providers,
    "barriers": stage_barriers,
    "transit": stage_transit,
    "counties": stage_counties,
    "access": stage_access,
    "tiles": stage_tiles,
}


def ensure_generated_inputs(cfg: RegionConfig, *, force: bool = False) -> Path:
    """Generate the built-in region's raw inputs where missing, stale or when forced.

    The inputs are stale when they were written by another version of the generator or
    with another seed (recorded in ``.generated.json`` beside them).
    """
    from etl.demo import generate as demo
    from etl.demo.generate import generate_demo

    assert cfg.generate is not None
    out = cfg.resolve(cfg.generate.out)
    from etl.demo import transit as demo_transit

    generator = hashlib.sha256(
        "".join(sha256(Path(m.__file__)) for m in (demo, demo_transit)).encode()
    ).hexdigest()
    stamp = {"seed": cfg.generate.seed, "generator_sha256": generator}
    stamp_path = out / ".generated.json"
    try:
        current = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = None
    missing = [r for r in _config_paths(cfg) if not r.exists()]
    if force or missing or current != stamp:
        logger.info(
            "generating the fictional region's raw inputs into %s (seed %d)",
            out,
            cfg.generate.seed,
        )
        generate_demo(out, seed=cfg.generate.seed)
        stamp_path.write_text(json.dumps(stamp) + "\n", encoding="utf-8")
    return out


def _config_paths(cfg: RegionConfig) -> list[Path]:
    paths = [cfg.resolve(s.path) for s in cfg.providers] + [cfg.resolve(cfg.areas.path)]
    if cfg.network.osm is not None:
        paths.append(cfg.resolve(cfg.network.osm.path))
    paths += [cfg.resolve(item.path) for _, item in _area_inputs(cfg)]
    paths += [cfg.resolve(o.path) for o in cfg.overdose]
    if cfg.places is not None:
        paths.append(cfg.resolve(cfg.places.path))
    if cfg.zoning is not None:
        paths += [cfg.resolve(cfg.zoning.path), cfg.resolve(cfg.zoning.rules)]
    if cfg.transit is not None:
        paths.append(cfg.resolve(cfg.transit.path))
    paths += [cfg.resolve(f.path) for f in cfg.facilities]
    return paths


def _inputs(cfg: RegionConfig) -> list[dict[str, Any]]:
    records = []
    if cfg.network.osm is not None:
        records.append(_input_record(cfg, "network.osm", cfg.network.osm))
    for src in cfg.providers:
        records.append(_input_record(cfg, f"providers.{src.name}", src))
    records.append(_input_record(cfg, "areas", cfg.areas))
    records += [_input_record(cfg, role, item) for role, item in _area_inputs(cfg)]
    for k, src in enumerate(cfg.overdose):
        records.append(_input_record(cfg, f"overdose.{k}", src))
    if cfg.places is not None:
        records.append(_input_record(cfg, "places", cfg.places))
    if cfg.zoning is not None:
        records.append(_input_record(cfg, "zoning", cfg.zoning))
        rules = _Path(cfg.zoning.rules, like=cfg.zoning)
        records.append(_input_record(cfg, "zoning.rules", rules))
    if cfg.transit is not None:
        records.append(_input_record(cfg, "transit", cfg.transit))
    if cfg.county_outlines is not None:
        records.append(_input_record(cfg, "county_outlines", cfg.county_outlines))
    for k, fac in enumerate(cfg.facilities):
        records.append(_input_record(cfg, f"facilities.{k}", fac))
    return records


class _Path:
    """A path that shares the provenance of another input (e.g. a zoning rule table)."""

    def __init__(self, path: str, *, like: Any) -> None:
        self.path, self.source, self.date, self.licence = path, like.source, like.date, like.licence


def _versions() -> dict[str, str]:
    out = {"access-atlas": __version__, "python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def run_build(
    cfg: RegionConfig,
    geodata_dir: str | Path,
    *,
    start: str = "network",
    overwrite: bool = False,
    progress: bool = True,
    wait: bool = False,
    if_missing: bool = False,
) -> Path:
    """Run the pipeline from ``start`` to the end and publish the bundle atomically.

    One build of a region runs at a time (:func:`etl.bundle.store.region_lock`); with the
    lock held, the temporary folders of earlier builds that were killed are removed first.
    Control characters cleaned in any input are listed in ``reports/inputs_cleaned.csv``,
    counted per stage (``stages.<stage>.cleaned``) and in the manifest's ``inputs_cleaned``.

    Parameters
    ----------
    cfg
        The region config.
    geodata_dir
        Folder of region bundles.
    start
        First stage to run (earlier stages are taken from the current bundle).
    overwrite
        Replace an existing bundle (``start="network"``) or its stages.
    progress
        Show progress bars.
    wait
        When another build of the region runs, wait for it instead of raising
        :class:`etl.bundle.store.RegionLockedError`.
    if_missing
        Build only when the region has no bundle: the check is made with the lock held, so
        a build that another process is running is waited for (whatever ``wait`` says) and
        its bundle, once published, found; nothing is then built.

    Returns
    -------
    pathlib.Path
        The bundle path (``geodata/<region>``).
    """
    geodata_dir = Path(geodata_dir)
    with region_lock(geodata_dir, cfg.name, wait=wait or if_missing):
        target = bundle_path(geodata_dir, cfg.name)
        if if_missing and (target / "manifest.json").exists():
            logger.info("bundle %s exists; nothing to do", target)
            return target
        remove_stale_builds(geodata_dir, cfg.name)
        return _run_build(cfg, geodata_dir, start=start, overwrite=overwrite, progress=progress)


def _run_build(
    cfg: RegionConfig, geodata_dir: Path, *, start: str, overwrite: bool, progress: bool
) -> Path:
    """:func:`run_build`, with the region's lock held."""
    target = bundle_path(geodata_dir, cfg.name)
    exists = (target / "manifest.json").exists()
    if start == "network" and exists and not overwrite:
        msg = f"{target} already exists; pass --overwrite to rebuild it"
        raise BundleError(msg)
    previous = None
    if exists:
        try:
            previous = Bundle.open(target)
        except BundleError as exc:
            if start != "network":
                raise
            # A full build needs nothing from the current bundle: a corrupt manifest (or
            # one of another format) is what `build --overwrite` is advised to repair.
            logger.warning(
                "build %s: the current bundle is broken; building anew: %s", cfg.name, exc
            )
    if start != "network" and previous is None:
        msg = f"{target}: no bundle to update; run `access-atlas build CONFIG` first"
        raise BundleError(msg)
    if cfg.generate is not None:
        ensure_generated_inputs(cfg)
    cfg = resolve_crs(cfg)  # the config's crs, or the UTM zone validate prints
    inputs = _inputs(cfg)
    t_all = time.perf_counter()
    with write_bundle(geodata_dir, cfg.name, seed_from_current=start != "network") as writer:
        ctx = BuildContext(cfg=cfg, writer=writer, previous=previous, progress=progress)
        stage_counts = dict(previous.manifest.get("stages", {})) if previous else {}
        ledger = CleanedLedger()
        for stage in STAGES[STAGES.index(start) :]:
            t0 = time.perf_counter()
            with recording() as found:
                counts = STAGE_FUNCS[stage](ctx)
            counts["cleaned"] = len(cleaned_table(found.rows))
            ledger.rows += found.rows
            ledger.inputs |= found.inputs
            counts["seconds"] = round(time.perf_counter() - t0, 2)
            stage_counts[stage] = counts
            logger.info("stage %-9s done in %6.2f s: %s", stage, counts["seconds"], _brief(counts))
        cleaned = _write_inputs_cleaned(writer, ledger, cfg.name)
        _check_privacy(writer)
        _check_drawn(writer)
        manifest = _manifest(cfg, inputs, stage_counts)
        manifest["inputs_cleaned"] = cleaned
        write_manifest(writer, manifest)
    logger.info("build %s: bundle %s in %.1f s", cfg.name, target, time.perf_counter() - t_all)
    return target


#: The build-wide list of input cells whose control characters were replaced.
INPUTS_CLEANED_REPORT: str = "reports/inputs_cleaned.csv"


def _write_inputs_cleaned(
    writer: BundleWriter, ledger: CleanedLedger, region: str
) -> dict[str, Any]:
    """Write ``reports/inputs_cleaned.csv``, say how many cells in one line, return the counts.

    A stage command re-reads only its stages' inputs: the rows of the input files it did not
    read are kept from the current bundle's report (seeded into the build folder).

    Parameters
    ----------
    writer
        The build being written.
    ledger
        The cells the stages of this run cleaned, and the inputs they read.
    region
        The region's name (for the log line).

    Returns
    -------
    dict
        ``cells`` (the number of cells cleaned), ``inputs`` (cells per input role, only
        those with any) and ``report`` (the report's path in the bundle).
    """
    path = writer.tmp / INPUTS_CLEANED_REPORT
    rows = list(ledger.rows)
    if path.exists():  # a stage command: the current bundle's rows for inputs not re-read
        try:
            kept = pd.read_csv(path, dtype={"input": str, "file": str, "column": str,
                                            "found": str}, keep_default_na=False)  # fmt: skip
        except (ValueError, pd.errors.ParserError) as exc:
            logger.warning("%s of the current bundle is unreadable (%s); not kept", path.name, exc)
            kept = pd.DataFrame(columns=list(REPORT_COLUMNS))
        if list(kept.columns) == list(REPORT_COLUMNS):
            # as written: the report's cells are defused for spreadsheets (safe_cell)
            done = {(safe_cell(i), safe_cell(f)) for i, f in ledger.inputs}
            pairs = zip(kept["input"], kept["file"], strict=True)
            read = np.array([pair in done for pair in pairs], dtype=bool)
            rows += kept[~read].to_dict("records")
        path.unlink()  # a hard link to the current bundle's file: never written through
    table = cleaned_table(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    safe_table(table).to_csv(path, index=False)
    per_input = {str(k): int(v) for k, v in table["input"].value_counts(sort=False).items()}
    per_input = dict(sorted(per_input.items()))
    if len(table):
        logger.warning(
            "build %s: replaced control characters by spaces in %d cell%s of %d input%s (%s); "
            "each is listed in %s",
            region,
            len(table),
            "s" * (len(table) != 1),
            len(per_input),
            "s" * (len(per_input) != 1),
            ", ".join(f"{k} {v:,}" for k, v in per_input.items()),
            INPUTS_CLEANED_REPORT,
        )
    else:
        logger.info("build %s: no control character in any input", region)
    return {"cells": len(table), "inputs": per_input, "report": INPUTS_CLEANED_REPORT}


def _check_privacy(writer: BundleWriter) -> None:
    """Refuse to publish a bundle in which any layer holds a suppressed or exact value."""
    frames = {}
    for name, info in writer.layers.items():
        path = writer.tmp / info["file"]
        frames[name] = gpd.read_parquet(path) if info.get("crs") else pd.read_parquet(path)
    assert_no_small_counts(frames)
    # A generalized site's node and snap columns are computed from its H3 cell's centre, not
    # from the site (see stage_providers), so they reveal nothing the cell does not.
    if "providers" in frames:
        prov = frames["providers"]
        frames["providers"] = prov.drop(
            columns=[c for c in prov.columns if c.startswith(("node_", "snap_m_"))]
        )
    assert_no_exact_points(frames)


#: Layers whose rows count people inside their geometry (``population``).
DRAWN_LAYERS: tuple[str, ...] = ("deserts", "isochrones", "desert_blocked")


def _check_drawn(writer: BundleWriter) -> None:
    """Refuse to publish a bundle that counts people in a row with nothing to draw.

    A desert, band or blocked-desert row with ``population`` > 0 must carry a non-empty
    geometry (stage_access adds the cells of every counted people point), or the map and the
    slides would show nothing where the number says people are.

    Raises
    ------
    BundleError
        Naming the layer, the row (category, mode, minutes) and the people counted.
    """
    for name in DRAWN_LAYERS:
        info = writer.layers.get(name)
        if info is None:
            continue
        frame = gpd.read_parquet(writer.tmp / info["file"])
        if "population" not in frame.columns or frame.empty:
            continue
        people = pd.to_numeric(frame["population"], errors="coerce").fillna(0).to_numpy()
        geom = frame.geometry
        blank = (geom.isna() | geom.is_empty).to_numpy()
        bad = np.flatnonzero((people > 0) & blank)
        if len(bad):
            row = frame.iloc[bad[0]]
            what = ", ".join(
                f"{k} {row[k]}" for k in ("category", "mode", "minutes", "rule") if k in frame
            )
            msg = (
                f"layers/{name}.parquet row {int(bad[0])} ({what}) counts {int(people[bad[0]]):,} "
                f"people but has an empty geometry ({len(bad)} such row(s), "
                f"{int(people[bad].sum()):,} people): nothing would be drawn where they are "
                "counted; rebuild with `access-atlas compute-access <config>`"
            )
            raise BundleError(msg)
    logger.info("check_drawn: %d layers checked", sum(n in writer.layers for n in DRAWN_LAYERS))


def _brief(counts: dict[str, Any]) -> str:
    parts = []
    for k, v in counts.items():
        if k in {
            "seconds",
            "summary",
            "sources",
            "reports",
            "feed",
            "coverage",
            "off_network",
            "capacity",
            "geocode_reference",
        }:
            continue
        if k == "cleaned" and not v:
            continue  # said only where a stage cleaned any cell
        if isinstance(v, dict):
            v = ", ".join(
                f"{kk} {vv:,}" if isinstance(vv, int) else f"{kk} {vv}" for kk, vv in v.items()
            )
            parts.append(f"{k} ({v})")
        elif isinstance(v, int):
            parts.append(f"{k} {v:,}")
        else:
            parts.append(f"{k} {v}")
    return "; ".join(parts)


def _manifest(
    cfg: RegionConfig, inputs: list[dict[str, Any]], stages: dict[str, Any]
) -> dict[str, Any]:
    nc = cfg.network
    return {
        "region": cfg.name,
        "title": cfg.title,
        "fictional": cfg.fictional,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "crs": cfg.crs,
        "software": _versions(),
        "inputs": inputs,
        "settings": {
            "modes": list(nc.modes),
            "bands_min": list(cfg.access.bands_min),
            "thresholds_min": {k: dict(v) for k, v in cfg.access.thresholds_min.items()},
            **nc.speed_options(),  # the speeds the networks were built with
            "max_snap_m": nc.max_snap_m,
            "cover_m": cfg.access.cover_m,
            "h3_resolution": cfg.access.h3_resolution,
            "buffer_km": cfg.buffer_km,
            "direction": "from people to care (reversed-graph Dijkstra)",
        },
        "stages": stages,
    }
