"""Benchmark loading the Columbus streets: etl.inputs.osm.read_osm_file vs OSMnx graph_from_xml.

Run: ``.venv/bin/python benchmarks/bench_osm_load.py [--repeat N]``

Times, on the real extract in ../shared/data/franklin-oh/osm:

* ``read_osm_file`` on ``columbus.osm.pbf`` and on ``columbus.osm.bz2`` (best of N);
* ``osmnx.graph_from_xml`` with ``simplify=False`` and ``simplify=True`` (``retain_all=True``,
  so both sides keep every street), and with OSMnx's defaults (``simplify=True``,
  ``retain_all=False``), on the bz2 filtered first to highway ways and the nodes they use,
  written to a temporary .osm file as the shared README says OSMnx needs. Only
  ``graph_from_xml`` is timed (one run each), not the filtering.

Prints a side-by-side table with each time's ratio to ``read_osm_file`` on the same bz2.
Skips with a message where ../shared is absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl.inputs.osm import read_osm_file  # noqa: E402

OSM_DIR = ROOT.parent / "shared" / "data" / "franklin-oh" / "osm"
PBF = OSM_DIR / "columbus.osm.pbf"
BZ2 = OSM_DIR / "columbus.osm.bz2"


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _filter_to_roads(src: Path, dst: Path) -> tuple[int, int]:
    """Write the highway ways of ``src`` and the nodes they use to the OSM XML file ``dst``."""
    import osmium

    refs: set[int] = set()
    n_ways = 0
    for way in osmium.FileProcessor(str(src), osmium.osm.WAY):
        if "highway" in way.tags:
            refs.update(n.ref for n in way.nodes)
            n_ways += 1
    with osmium.SimpleWriter(str(dst)) as writer:
        for obj in osmium.FileProcessor(str(src), osmium.osm.NODE | osmium.osm.WAY):
            if (obj.is_node() and obj.id in refs) or (obj.is_way() and "highway" in obj.tags):
                writer.add(obj)
    return n_ways, len(refs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of read_osm_file (best of)")
    args = parser.parse_args(argv)
    if not (PBF.is_file() and BZ2.is_file()):
        print(f"skipped: the Columbus extracts are not in {OSM_DIR} (../shared beside the repo)")
        return 0

    import osmnx as ox

    rows: list[tuple[str, float, str]] = []
    t_pbf, net_pbf = _best(lambda: read_osm_file(PBF), args.repeat)
    t_bz2, net_bz2 = _best(lambda: read_osm_file(BZ2), args.repeat)
    for t, net, name in ((t_pbf, net_pbf, PBF.name), (t_bz2, net_bz2, BZ2.name)):
        counts = f"{len(net.ways):,} ways, {len(net.u):,} segments, {len(net.node_id):,} nodes"
        rows.append((f"read_osm_file({name}) best of {args.repeat}", t, counts))

    with tempfile.TemporaryDirectory() as tmp:
        roads = Path(tmp) / "roads.osm"
        t0 = time.perf_counter()
        n_ways, n_nodes = _filter_to_roads(BZ2, roads)
        t_filter = time.perf_counter() - t0
        for simplify, retain_all in ((False, True), (True, True), (True, False)):
            t0 = time.perf_counter()
            graph = ox.graph_from_xml(roads, simplify=simplify, retain_all=retain_all)
            t = time.perf_counter() - t0
            counts = f"{len(graph):,} nodes, {graph.number_of_edges():,} edges (directed)"
            label = f"osmnx.graph_from_xml(simplify={simplify}, retain_all={retain_all})"
            rows.append((label, t, counts))

    print(f"Columbus extract: {PBF.name} {PBF.stat().st_size / 1e6:.1f} MB,")
    print(f"  {BZ2.name} {BZ2.stat().st_size / 1e6:.1f} MB")
    print(
        f"OSMnx input: {n_ways:,} highway ways and {n_nodes:,} nodes filtered to a temporary"
        f" .osm in {t_filter:.2f} s (not timed below)"
    )
    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'loader':<{width}}  {'seconds':>8}  {'vs bz2':>7}  result")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 7}  {'-' * 50}")
    for name, t, counts in rows:
        print(f"{name:<{width}}  {t:8.2f}  {t / t_bz2:6.1f}x  {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
