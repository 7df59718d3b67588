"""Street samples' H3 cells and the region outline: before and after, side by side.

Run: ``.venv/bin/python benchmarks/bench_streets.py [--bundle PATH] [--tiles 7] [--repeat 3]``

``sample_streets`` on the Franklin County drive and walk networks (read from
``../shared/data/franklin-oh/osm/columbus.osm.pbf`` and built as the pipeline builds them, or
``--bundle``'s ``network/*.npz``) and on the drive network tiled ``tiles × tiles`` times
(``tile_network`` of ``bench_close.py``; 7 × 7 ≈ 3.0 M nodes, with the streets' real lengths
so that every street is sampled as at home):

* **old**: one ``str_to_int(latlng_to_cell(...))`` per sample (the reference kept in
  ``tests/test_streets.py``);
* **new**: :func:`etl.engine.streets.sample_streets`, the int API (``h3.api.numpy_int``) and
  each street end node's cell computed once.

Both are checked equal (every array, element for element). With ``--bundle`` (a built
``franklin-oh`` bundle) it also times the region's res-9 cells made once per build against
once per mode, and one export's deserts (:func:`etl.outputs.export._views`) against one
``desert_at`` per desert, each making its own outline and street samples.

Each row prints the CPU time (``time.process_time``, best of ``--repeat``), the wall time
(best) and the load average when the row started: the machine is shared, so other work
slows the wall times, not the CPU times.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_close import tile_network  # noqa: E402

from etl.engine.network import ModeNetwork  # noqa: E402
from etl.engine.streets import StreetSamples, sample_streets  # noqa: E402
from tests.test_streets import FIELDS, reference_sample_streets  # noqa: E402

FRANKLIN = ROOT.parent / "shared" / "data" / "franklin-oh"
CONFIG = ROOT / "geodata" / "configs" / "franklin-oh.yaml"


def tile_streets(net: ModeNetwork, k: int) -> ModeNetwork:
    """:func:`bench_close.tile_network` with each copy's real street lengths.

    ``tile_network`` gives every edge 1 m (Dijkstra needs no lengths), which would sample
    each street at its two ends only; here the copies keep the original lengths and the
    links between tiles get 100 m.
    """
    tiled, _ = tile_network(net, k)
    n_links = tiled.n_edges - net.n_edges * k * k
    length = np.concatenate([np.tile(net.length_m, k * k), np.full(n_links, 100.0)])
    return dataclasses.replace(tiled, length_m=length, _cache={})


def franklin_networks(bundle: Path | None) -> dict[str, ModeNetwork]:
    """The Franklin County drive and walk networks, from a bundle or from the OSM extract."""
    if bundle is not None:
        return {m: ModeNetwork.load(bundle / "network" / f"{m}.npz") for m in ("drive", "walk")}
    from etl.config import load_config
    from etl.engine.network import build_mode_network
    from etl.inputs.osm import read_osm_file
    from etl.validate import resolve_crs

    cfg = resolve_crs(load_config(CONFIG))
    nc = cfg.network
    raw = read_osm_file(FRANKLIN / "osm" / "columbus.osm.pbf")
    return {
        mode: build_mode_network(raw, mode, crs=cfg.crs, **nc.speed_options())
        for mode in ("drive", "walk")
    }


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, float, Any]:
    """Best CPU and wall seconds over ``repeat`` runs, the 1-min load average, the result."""
    load = os.getloadavg()[0]
    cpu = wall = float("inf")
    out = None
    for _ in range(repeat):
        out = None  # free the previous result first (memory at 3 M nodes)
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return cpu, wall, load, out


def same(a: StreetSamples, b: StreetSamples) -> bool:
    """Every array of the samples equal, element for element, with the same dtype."""
    return a.res == b.res and all(
        getattr(a, f).dtype == getattr(b, f).dtype and np.array_equal(getattr(a, f), getattr(b, f))
        for f in FIELDS
    )


HEADER = (
    f"{'case':<34} {'size':>22}  {'old CPU s':>9} {'new CPU s':>9} {'CPU x':>6}  "
    f"{'old wall s':>10} {'new wall s':>10}  {'load old/new':>12}  {'same':>4}"
)


def row(case: str, size: str, old: tuple, new: tuple, same_out: bool) -> str:
    """One printed line: old and new side by side."""
    return (
        f"{case:<34} {size:>22}  {old[0]:>9.2f} {new[0]:>9.2f} {old[0] / new[0]:>5.1f}x  "
        f"{old[1]:>10.2f} {new[1]:>10.2f}  {old[2]:>5.2f}/{new[2]:<6.2f}  "
        f"{'yes' if same_out else 'NO':>4}"
    )


def bench_samples(nets: dict[str, ModeNetwork], tiles: int, repeat: int) -> list[str]:
    """``sample_streets`` old vs new on each network; returns the printed lines."""
    lines = []
    cases = [(f"sample_streets franklin {m}", net, repeat) for m, net in nets.items()]
    if tiles > 1:
        tiled = tile_streets(nets["drive"], tiles)
        cases.append((f"sample_streets drive {tiles}x{tiles} tiles", tiled, max(1, repeat // 2)))
    for case, net, rep in cases:
        old = timed(lambda net=net: reference_sample_streets(net), rep)
        new = timed(lambda net=net: sample_streets(net), rep)
        size = f"{net.n_nodes:,} nodes {len(new[3]):,} samples"
        lines.append(row(case, size, old, new, same(old[3], new[3])))
        print(lines[-1], flush=True)
        del old, new
    return lines


def bench_outline(bundle_path: Path, repeat: int) -> list[str]:
    """Region cells once per build vs per mode, and one export's deserts; printed lines."""
    import shapely

    import etl.outputs.export as export
    from etl.bundle.store import Bundle
    from etl.pipeline import _mode_coverage, _region_parent_counts
    from tests.test_outline_once import reference_mode_coverage

    lines = []
    bundle = Bundle.open(bundle_path)
    modes = list(bundle.manifest["settings"]["modes"])
    outline = shapely.union_all(bundle.read_layer("region").geometry.to_numpy())
    samples = {m: sample_streets(bundle.network(m)) for m in modes}
    rng = np.random.default_rng(0)
    weight = rng.uniform(0.0, 10.0, 1000)
    covered = rng.random(1000) < 0.8
    args = (weight, float(weight.sum()), 300.0)

    def per_mode() -> list[dict[str, Any]]:
        return [reference_mode_coverage(m, covered, *args, samples[m], outline) for m in modes]

    def once() -> list[dict[str, Any]]:
        parents = _region_parent_counts(outline)
        return [_mode_coverage(m, covered, *args, samples[m], parents) for m in modes]

    old = timed(per_mode, repeat)
    new = timed(once, repeat)
    lines.append(row("coverage: region cells", f"{len(modes)} modes", old, new, old[3] == new[3]))
    print(lines[-1], flush=True)

    pairs = export._pairs(bundle, {})
    threshold = 20.0

    def per_desert() -> list[Any]:
        return [export.desert_at(bundle, c, m, threshold) for c, m in pairs]

    old = timed(per_desert, repeat)
    new = timed(lambda: export._views(bundle, {}, threshold), repeat)
    ok = all(
        shapely.to_wkb(a.geometry) == shapely.to_wkb(b.geometry)
        and (a.within, a.beyond, a.not_covered) == (b.within, b.beyond, b.not_covered)
        for a, b in zip(old[3], new[3], strict=True)
    )
    lines.append(row("export: deserts at 20 min", f"{len(pairs)} deserts", old, new, ok))
    print(lines[-1], flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a built franklin-oh bundle folder")
    parser.add_argument("--tiles", type=int, default=7, help="k for the k × k tiled network")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best kept)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.bundle is None and not FRANKLIN.is_dir():
        print(f"skipped: {FRANKLIN} not found and no --bundle given")
        return 0
    nets = franklin_networks(args.bundle)
    print(f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()}")
    print(HEADER)
    lines = bench_samples(nets, args.tiles, args.repeat)
    if args.bundle is not None:
        lines += bench_outline(args.bundle, args.repeat)
    return 0 if all(line.rstrip().endswith("yes") for line in lines) else 1


if __name__ == "__main__":
    raise SystemExit(main())
