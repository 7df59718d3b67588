"""Benchmark the access engine on the Franklin County drive network, side by side with
NetworkX and with the isochrone recipe of OSMnx's examples.

Run: ``.venv/bin/python benchmarks/bench_access.py [--recipe-sites N]``

It prints, in one run on this machine:
  * loading the network from the OSM file (this project's reader) vs OSMnx ``graph_from_xml``
    on the same extract filtered to roads,
  * the engine: one multi-source Dijkstra per category (scipy CSR) + band polygons,
  * NetworkX ``multi_source_dijkstra_path_length`` for the same travel times (checked equal),
  * the OSMnx example recipe: ``ego_graph`` per provider node and band, then a convex hull,
  * the whole ``compute-access`` stage (every category, both modes, bands, grid, deserts).
Skips with a message where ../shared is absent.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import networkx as nx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl.config import load_config  # noqa: E402
from etl.engine.access import nearest_site_times  # noqa: E402
from etl.engine.isochrones import band_polygons, cell_times  # noqa: E402
from etl.engine.network import build_mode_network  # noqa: E402
from etl.engine.streets import sample_streets  # noqa: E402
from etl.inputs.osm import read_osm_file  # noqa: E402

FRANKLIN = ROOT.parent / "shared" / "data" / "franklin-oh"
CONFIG = ROOT / "geodata" / "configs" / "franklin-oh.yaml"


def _best(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _osmnx_load(bz2_path: Path) -> float:
    import osmium
    import osmnx as ox

    with tempfile.TemporaryDirectory() as tmp:
        roads = Path(tmp) / "roads.osm"
        # Filter to highway ways and their nodes, as the shared README says OSMnx needs.
        need: set[int] = set()
        for w in osmium.FileProcessor(str(bz2_path), osmium.osm.WAY):
            if "highway" in w.tags:
                need.update(n.ref for n in w.nodes)
        with osmium.SimpleWriter(str(roads)) as writer:
            for obj in osmium.FileProcessor(str(bz2_path)):
                if (obj.is_node() and obj.id in need) or (obj.is_way() and "highway" in obj.tags):
                    writer.add(obj)
        t0 = time.perf_counter()
        ox.graph_from_xml(roads, simplify=True, retain_all=False)
        return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipe-sites",
        type=int,
        default=0,
        help="run the OSMnx recipe on this many sites only (0: all)",
    )
    parser.add_argument("--skip-osmnx-load", action="store_true")
    args = parser.parse_args()
    if not FRANKLIN.is_dir():
        print(f"skipped: {FRANKLIN} not found (the project's ../shared data)")
        return 0
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(CONFIG)
    pbf = FRANKLIN / "osm" / "columbus.osm.pbf"
    rows: list[tuple[str, float, str]] = []

    t_load, raw = _best(lambda: read_osm_file(pbf))
    rows.append(("load network: this reader (pbf)", t_load, ""))
    t_load_bz2, _ = _best(lambda: read_osm_file(FRANKLIN / "osm" / "columbus.osm.bz2"), repeat=1)
    rows.append(("load network: this reader (osm.bz2)", t_load_bz2, ""))
    if not args.skip_osmnx_load:
        t_ox = _osmnx_load(FRANKLIN / "osm" / "columbus.osm.bz2")
        rows.append(
            (
                "load network: OSMnx graph_from_xml (roads only)",
                t_ox,
                f"{t_ox / t_load:,.0f}x slower",
            )
        )

    net = build_mode_network(raw, "drive", crs=cfg.crs)
    # Franklin MOUD providers from the OEPS list, as the pipeline reads them.
    import geopandas as gpd

    from etl.engine.access import snap_points

    prov = gpd.read_file(FRANKLIN / "providers" / "moud_us_oeps_2021.gpkg")
    prov = prov[prov["countyGEOID"].astype(str).str.zfill(5) == "39049"].to_crs(cfg.crs)
    snap = snap_points(net, prov.geometry.x.to_numpy(), prov.geometry.y.to_numpy())
    cats = {c: np.flatnonzero(prov["category"].to_numpy() == c) for c in prov["category"].unique()}
    bands = [10.0, 20.0, 30.0]
    samples = sample_streets(net)

    def engine() -> dict:
        out = {}
        for c, idx in cats.items():
            res = nearest_site_times(net, snap.node[idx], site_offsets_s=snap.walk_s[idx])
            cells, best = cell_times(samples, res.time_s)
            out[c] = (res, band_polygons(cells, best, bands))
        return out

    t_engine, _answer = _best(engine)
    rows.append((f"engine: {len(cats)} categories x 3 bands (Dijkstra + polygons)", t_engine, ""))

    def dijkstra_only() -> None:
        for idx in cats.values():
            nearest_site_times(net, snap.node[idx], site_offsets_s=snap.walk_s[idx])

    t_dij, _ = _best(dijkstra_only, repeat=5)
    rows.append(
        (f"engine: Dijkstra only, {len(cats)} categories, {net.n_nodes:,} nodes", t_dij, "")
    )

    g = nx.DiGraph()
    g.add_weighted_edges_from(
        zip(net.head.tolist(), net.tail.tolist(), net.time_s.tolist(), strict=True), weight="t"
    )  # reversed graph: times run to care
    t0 = time.perf_counter()
    max_err = 0.0
    for _c, idx in cats.items():
        # Zero snap offsets in NetworkX (it cannot start sources at different times); compare
        # against the engine run the same way.
        ref = nx.multi_source_dijkstra_path_length(g, set(snap.node[idx].tolist()), weight="t")
        ours = nearest_site_times(net, snap.node[idx]).time_s
        ref_arr = np.array([ref.get(i, np.inf) for i in range(net.n_nodes)])
        max_err = max(max_err, float(np.max(np.abs(ref_arr - ours))))
    t_nx = time.perf_counter() - t0
    rows.append(
        (
            "NetworkX multi_source_dijkstra_path_length (same answer)",
            t_nx,
            f"{t_nx / t_dij:,.0f}x slower; max diff {max_err:.2e} s",
        )
    )

    # The OSMnx example recipe: ego_graph per provider node and band, then a convex hull.
    import shapely

    fwd = nx.MultiDiGraph()
    for i in range(net.n_nodes):
        fwd.add_node(i, x=float(net.lon[i]), y=float(net.lat[i]))
    fwd.add_weighted_edges_from(
        zip(net.tail.tolist(), net.head.tolist(), net.time_s.tolist(), strict=True), weight="time"
    )
    centres = np.unique(snap.node)
    if args.recipe_sites:
        centres = centres[: args.recipe_sites]
    t0 = time.perf_counter()
    for node in centres.tolist():
        for band in bands:
            sub = nx.ego_graph(fwd, node, radius=band * 60, distance="time")
            shapely.convex_hull(
                shapely.multipoints([(d["x"], d["y"]) for _, d in sub.nodes(data=True)])
            )
    t_recipe = time.perf_counter() - t0
    scale = len(np.unique(snap.node)) / len(centres)
    rows.append(
        (
            f"OSMnx recipe: ego_graph + convex hull, {len(centres)} nodes x 3 bands",
            t_recipe,
            f"{t_recipe * scale / t_engine:,.0f}x slower than the engine"
            + (f" (scaled x{scale:.1f})" if scale > 1 else ""),
        )
    )

    # The whole compute-access stage, on a bundle built into a temporary folder.
    from etl.pipeline import run_build

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_build(cfg, tmp, progress=False)
        t_build = time.perf_counter() - t0
        from etl.bundle.store import Bundle

        stages = Bundle.open(Path(tmp) / cfg.name).manifest["stages"]
        for name in ("network", "areas", "providers", "access"):
            rows.append((f"build stage {name} (Franklin, both modes)", stages[name]["seconds"], ""))
        rows.append(("build, all stages", t_build, ""))

    width = max(len(r[0]) for r in rows)
    print(f"\n{'what':{width}}  {'seconds':>9}  note")
    for name, sec, note in rows:
        print(f"{name:{width}}  {sec:9.3f}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
