"""What-if "close a site": the bounded re-search against a full Dijkstra, up to 3 M nodes.

Run: ``.venv/bin/python benchmarks/bench_close.py [--bundle PATH] [--tiles 7] [--closes 20]``

The Franklin County drive network (``--bundle``: a built ``franklin-oh`` bundle; without it the
bundle is built into a temporary folder first, about 2 minutes, needs ../shared) is tiled
``tiles × tiles`` times (7 × 7 ≈ 3.0 M nodes), neighbouring tiles joined by 50 two-way links,
with the bundle's buprenorphine sites copied into every tile (sites at constant density).
For random single closures it times, side by side in one run:

* **full**: :meth:`BaselineAccess._full` — one multi-source Dijkstra over the whole network
  without the closed site (what a closure cost before);
* **bounded**: :meth:`BaselineAccess._close` — a search of only the nodes the closed site
  served, entered from their border with the kept times;

and checks that both give the same time at every node (max abs difference printed); then a
What-if add (the engine's one search from the site's node) beside a search from a
super-source appended to a copy of the network (what an add cost before). It prints
p50 / p95 wall time, the CPU time of each and their ratio, the share of nodes re-searched and
the load average (other work on the machine slows the wall times, not the ratio of CPU times).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl.bundle.store import Bundle  # noqa: E402
from etl.engine.network import ModeNetwork  # noqa: E402
from etl.engine.scenario import AddSite, BaselineAccess, _Placed  # noqa: E402

FRANKLIN = ROOT.parent / "shared" / "data" / "franklin-oh"
CATEGORY = "buprenorphine"


def tile_network(net: ModeNetwork, k: int, *, links: int = 50) -> tuple[ModeNetwork, np.ndarray]:
    """``net`` copied ``k × k`` times side by side; returns it and each copy's node offset."""
    n = net.n_nodes
    dx = float(net.x.max() - net.x.min()) + 200.0
    dy = float(net.y.max() - net.y.min()) + 200.0
    dlon = float(net.lon.max() - net.lon.min()) + 0.003
    dlat = float(net.lat.max() - net.lat.min()) + 0.002
    offsets = np.arange(k * k, dtype=np.int64) * n
    east = np.argsort(-net.x)[:links]
    west = np.argsort(net.x)[:links]
    north = np.argsort(-net.y)[:links]
    south = np.argsort(net.y)[:links]
    tails, heads, times = [], [], []
    for t in range(k * k):
        tails.append(net.tail + offsets[t])
        heads.append(net.head + offsets[t])
        times.append(net.time_s)
    for a in range(k):
        for b in range(k):
            t = a * k + b
            for nb, (src, dst) in ((t + 1, (east, west)), (t + k, (north, south))):
                if (nb == t + 1 and b == k - 1) or nb >= k * k:
                    continue
                u, v = src + offsets[t], dst + offsets[nb]
                tails += [u, v]
                heads += [v, u]
                times += [np.full(links, 60.0), np.full(links, 60.0)]
    col = np.tile(np.arange(k), k)
    row = np.repeat(np.arange(k), k)

    def spread(values: np.ndarray, step: float, by: np.ndarray) -> np.ndarray:
        return np.concatenate([values + step * by[t] for t in range(k * k)])

    n_edges = sum(len(x) for x in tails)
    tiled = ModeNetwork(
        mode=net.mode,
        crs=net.crs,
        osmid=np.arange(n * k * k, dtype=np.int64),
        lon=spread(net.lon, dlon, col),
        lat=spread(net.lat, dlat, row),
        x=spread(net.x, dx, col),
        y=spread(net.y, dy, row),
        tail=np.concatenate(tails),
        head=np.concatenate(heads),
        time_s=np.concatenate(times),
        length_m=np.ones(n_edges),
        highway=np.zeros(n_edges, dtype=np.int16),
        highway_classes=net.highway_classes,
        walk_speed_mps=net.walk_speed_mps,
    )
    return tiled, offsets


def _bundle(path: str | None, tmp: Path) -> Path | None:
    if path:
        return Path(path)
    if not FRANKLIN.is_dir():
        return None
    from etl.config import load_config
    from etl.pipeline import run_build

    print("building the Franklin County bundle (about 2 minutes)…", flush=True)
    run_build(load_config(ROOT / "geodata" / "configs" / "franklin-oh.yaml"), tmp, progress=False)
    return tmp / "franklin-oh"


def _pct(values: list[float]) -> str:
    p50, p95 = np.percentile(values, [50, 95])
    return f"{p50 * 1000:8.1f} {p95 * 1000:8.1f}"


def _time_adds(
    base: BaselineAccess, baseline: Any, rng: np.random.Generator, n: int
) -> tuple[list[float], list[float]]:
    """A What-if add: the engine's path (one search from the site's node) and, side by side,
    the search from a super-source appended to a copy of the network (what it did before)."""
    from scipy.sparse import csgraph

    from etl.engine.access import _with_super_source

    new_w, old_w = [], []
    limit = float(baseline.time_s[np.isfinite(baseline.time_s)].max())
    for node in rng.choice(base.net.n_nodes, size=n, replace=False):
        placed = [_Placed(AddSite(CATEGORY, 0.0, 0.0), node=int(node), snap_m=0.0,
                          offset_s=30.0, moved=False)]  # fmt: skip
        t0 = time.perf_counter()
        base._incremental(baseline, placed, 0, math.inf)
        t1 = time.perf_counter()
        graph = _with_super_source(base.net.csr_reverse(), np.array([int(node)]), np.array([30.0]))
        dist = csgraph.dijkstra(graph, directed=True, indices=base.net.n_nodes, limit=limit)
        np.minimum(dist[: base.net.n_nodes], baseline.time_s)
        t2 = time.perf_counter()
        new_w.append(t1 - t0)
        old_w.append(t2 - t1)
    return new_w, old_w


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="a built franklin-oh bundle folder")
    parser.add_argument("--tiles", type=int, nargs="+", default=[1, 7], help="k for k × k tiles")
    parser.add_argument("--closes", type=int, default=20, help="random closures per size")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        path = _bundle(args.bundle, Path(tmp))
        if path is None:
            print(f"skipped: {FRANKLIN} not found and no --bundle given")
            return 0
        bundle = Bundle.open(path)
        net = bundle.network("drive")
        providers = bundle.read_layer("providers")
        providers = providers[(providers["category"] == CATEGORY) & providers["on_network"]]
        print(f"{'nodes':>10} {'sites':>6}  {'full p50/p95 ms':>17}  {'bounded p50/p95 ms':>18}"
              f"  {'CPU full/bounded':>16}  {'re-searched':>11}  {'max |diff| s':>12}")  # fmt: skip
        adds: list[tuple] = []
        for k in args.tiles:
            tiled, offsets = tile_network(net, k)
            nodes = providers["node_drive"].to_numpy(np.int64)
            frame = pd.DataFrame(
                {
                    "id": [f"t{t}-{i}" for t in range(k * k) for i in range(len(nodes))],
                    "category": CATEGORY,
                    "lon": 0.0,
                    "lat": 0.0,
                    "node_drive": np.concatenate([nodes + o for o in offsets]),
                    "snap_m_drive": np.tile(providers["snap_m_drive"].to_numpy(float), k * k),
                }
            )
            people = pd.DataFrame({"weight": [1.0], "node_drive": [0], "snap_m_drive": [0.0]})
            base = BaselineAccess.from_frames(tiled, frame, people, max_snap_m=1500.0)
            baseline = base.baseline_state(CATEGORY)
            tiled.csr()  # the forward graph, built once per baseline (as a server warms it)
            rows = base.site_rows(CATEGORY)
            rng = np.random.default_rng(0)
            full_w, bound_w, full_c, bound_c, share, diff = [], [], 0.0, 0.0, [], 0.0
            for r in rng.choice(rows, size=min(args.closes, len(rows)), replace=False):
                closed = (int(r),)
                c0, t0 = time.process_time(), time.perf_counter()
                want = base._full(CATEGORY, closed, ())
                t1, c1 = time.perf_counter(), time.process_time()
                got = base._close(baseline, CATEGORY, closed)
                t2, c2 = time.perf_counter(), time.process_time()
                full_w.append(t1 - t0)
                bound_w.append(t2 - t1)
                full_c += c1 - c0
                bound_c += c2 - c1
                share.append(float((baseline.key == r).mean()))
                fin = np.isfinite(want.time_s)
                assert (fin == np.isfinite(got.time_s)).all()
                diff = max(diff, float(np.abs(want.time_s[fin] - got.time_s[fin]).max()))
            print(f"{tiled.n_nodes:>10,} {len(rows):>6,}  {_pct(full_w):>17}  {_pct(bound_w):>18}"
                  f"  {full_c / max(bound_c, 1e-9):>15.1f}x  {np.median(share):>10.2%}"
                  f"  {diff:>12.2e}")  # fmt: skip
            adds.append((tiled.n_nodes, *_time_adds(base, baseline, rng, args.closes)))
        print(f"\n{'nodes':>10}  {'add p50/p95 ms':>16}  {'super-source add p50/p95 ms':>28}")
        for n_nodes, new_w, old_w in adds:
            print(f"{n_nodes:>10,}  {_pct(new_w):>16}  {_pct(old_w):>28}")
    print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())} on "
          f"{os.cpu_count()} cores")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
