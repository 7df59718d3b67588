"""Benchmark what-if scenarios and site suggestions on the Franklin County bundle.

Run: ``.venv/bin/python benchmarks/bench_scenario.py [--bundle PATH] [--changes 50]``

Without ``--bundle`` it builds the Franklin County bundle into a temporary folder first
(about 20 s; needs ../shared). It then prints, per mode, the server time of one change as the
map would ask for it (p50 / p95 over random changes):

* **add**: one hypothetical site (exact: Dijkstra from it bounded by the largest baseline time),
* **add, horizon**: the same, bounded by max(threshold, largest band) (``horizon_min``),
* **close**: one existing site closed (the category recomputed),
* **stack of 3**: add, close, add stacked one at a time (each step reuses the last state),
* **stack of 3, cold**: the three-change scenario answered at once from the baseline,

each as ``evaluate`` alone (wall and CPU time: on a shared machine the CPU time is what an
idle server would take), with the polygons of the cells that left or entered the desert,
and with the whole new desert polygon; then ``suggest_sites`` with k=5.

A second table times what the map gets on each change (:mod:`viewmodel.scenario_map`): the
minute bands whose band changed, merged per band (``bands_overlay(band_change(r))``), and
the areas' and hexagons' new travel times (``area_overrides``), with the cells changed and
the overlay's size; and the whole server side of a change, ``scenario_view`` (evaluate,
panel numbers, desert change cells, bands and areas), against the 100 ms target.
The issue's target is under 100 ms p95 per change. Skips with a message where ../shared is
absent and no bundle is given.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl.bundle.store import Bundle  # noqa: E402
from etl.engine.scenario import AddSite, BaselineAccess, CloseSite, Scenario, evaluate  # noqa: E402
from etl.engine.suggest import suggest_sites  # noqa: E402
from viewmodel.scenario import scenario_view  # noqa: E402
from viewmodel.scenario_map import area_overrides, band_change, bands_overlay  # noqa: E402
from viewmodel.scenario_map import prepare as prepare_map  # noqa: E402

FRANKLIN = ROOT.parent / "shared" / "data" / "franklin-oh"
CONFIG = ROOT / "geodata" / "configs" / "franklin-oh.yaml"
TARGET_MS = 100.0


def _bundle(path: str | None, tmp: Path) -> Path | None:
    if path:
        return Path(path)
    if not FRANKLIN.is_dir():
        return None
    from etl.config import load_config
    from etl.pipeline import run_build

    t0 = time.perf_counter()
    out = run_build(load_config(CONFIG), tmp, progress=False)
    print(f"built the Franklin County bundle in {time.perf_counter() - t0:.1f} s: {out}")
    return out


def _pct(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values) * 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def _random_add(base: BaselineAccess, category: str, rng: np.random.Generator) -> AddSite:
    """A site about 0-150 m off a random street node inside the region."""
    node = int(rng.integers(base.net.n_nodes))
    dlon, dlat = rng.normal(0, 8e-4, 2)
    return AddSite(
        category,
        float(base.net.lon[node] + dlon),
        float(base.net.lat[node] + dlat),
        name="Benchmark site",
    )


def _random_close(base: BaselineAccess, category: str, rng: np.random.Generator) -> CloseSite:
    rows = base.site_rows(category)
    return CloseSite(str(base.providers["id"].iloc[int(rng.choice(rows))]))


#: CPU seconds of every timed ``evaluate`` call, by row label (the machine may be shared).
CPU: dict[str, list[float]] = {}

#: Map updates per row label: (map update s, scenario_view s, cells changed, overlay bytes,
#: scenario_view CPU s).
MAP: dict[str, list[tuple[float, float, int, int, float]]] = {}


def _map_update(r) -> tuple[dict, dict, int]:
    change = band_change(r)
    return bands_overlay(change), area_overrides(r), len(change)


def _time_map(key: str, base: BaselineAccess, sc: Scenario, r, thr: float) -> None:
    """Time the map's update of result ``r`` and the whole ``scenario_view`` of ``sc``."""
    import json

    (overlay, _, n_cells), t_map = _timed(_map_update, r)
    base._cache.pop("states", None)
    c0 = time.process_time()
    _, t_view = _timed(scenario_view, base, sc, category=r.category, threshold_min=thr)
    c_view = time.process_time() - c0
    MAP.setdefault(key, []).append((t_map, t_view, n_cells, len(json.dumps(overlay)), c_view))


def _timed(fn, *args, cpu: str | None = None, **kwargs) -> tuple[object, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    wall = time.perf_counter() - t0
    if cpu is not None:
        CPU.setdefault(cpu, []).append(time.process_time() - c0)
    return out, wall


def bench_mode(bundle: Bundle, mode: str, category: str, n: int, seed: int) -> list[tuple]:
    rows: list[tuple] = []
    t0 = time.perf_counter()
    base = BaselineAccess.from_bundle(bundle, mode)
    base.samples()
    base.cell_times(base.baseline_state(category).time_s)
    prepare_map(base, category=category)  # as the app's warm_baseline does
    gc.collect()
    gc.freeze()  # as the app's baseline_access does (viewmodel.scenario.FREEZE_GC)
    load_s = time.perf_counter() - t0
    thr = base.threshold(category)
    print(
        f"\n{mode}: {base.net.n_nodes:,} nodes, {base.net.n_edges:,} edges, "
        f"{len(base.site_rows(category))} {category} sites, threshold {thr:g} min; "
        f"baseline loaded and warmed in {load_s * 1000:.0f} ms"
    )
    rng = np.random.default_rng(seed)

    def key(label: str) -> str:
        return f"{mode}/{category}/{label}"

    def run(label: str, scenarios: list[Scenario], **kw) -> None:
        ev, full, whole = [], [], []
        for sc in scenarios:
            base._cache.pop("states", None)  # no memoised answer: every change is new
            r, t = _timed(
                evaluate, base, sc, category=category, threshold_min=thr, cpu=key(label), **kw
            )
            ev.append(t)
            full.append(t + _timed(r.desert_change)[1])
            whole.append(t + _timed(r.desert_polygon)[1])
            if not kw:
                _time_map(key(label), base, sc, r, thr)
        rows.append((mode, category, label, len(scenarios), *_pct(ev), *_pct(full), *_pct(whole)))

    adds = [Scenario(changes=(_random_add(base, category, rng),)) for _ in range(n)]
    run("add", adds)
    adds_h = [Scenario(changes=(_random_add(base, category, rng),)) for _ in range(n)]
    run("add, horizon", adds_h, horizon_min=0.0)
    closes = [Scenario(changes=(_random_close(base, category, rng),)) for _ in range(n)]
    run("close", closes)

    # Stacks: add, close, add, evaluated one change at a time as the panel would.
    steps, steps_full, steps_whole, cold = [], [], [], []
    for _ in range(n):
        sc = Scenario()
        for change in (
            _random_add(base, category, rng),
            _random_close(base, category, rng),
            _random_add(base, category, rng),
        ):
            sc = sc.add(change)
            r, t = _timed(
                evaluate,
                base,
                sc,
                category=category,
                threshold_min=thr,
                cpu=key("stack of 3, per step"),
            )
            steps.append(t)
            steps_full.append(t + _timed(r.desert_change)[1])
            steps_whole.append(t + _timed(r.desert_polygon)[1])
            _time_map(key("stack of 3, per step"), base, sc, r, thr)
        base._cache.pop("states", None)  # forget the stack: answer it again from scratch
        cold.append(
            _timed(
                evaluate,
                base,
                sc,
                category=category,
                threshold_min=thr,
                cpu=key("stack of 3, cold"),
            )[1]
        )
    nan2 = (float("nan"), float("nan"))
    rows.append(
        (
            mode,
            category,
            "stack of 3, per step",
            len(steps),
            *_pct(steps),
            *_pct(steps_full),
            *_pct(steps_whole),
        )
    )
    rows.append((mode, category, "stack of 3, cold", len(cold), *_pct(cold), *nan2, *nan2))

    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        sug = suggest_sites(base, category=category, threshold_min=thr, k=5)
        times.append(time.perf_counter() - t0)
    print(f"suggest_sites(k=5) on {sug.n_candidates:,} candidates: {sug.message}")
    rows.append((mode, category, "suggest_sites k=5", 3, *_pct(times), *nan2, *nan2))
    return rows


CALLBACK_OUTPUTS = [
    "scenario-store.data",
    "scenario-message.children",
    "scenario-result.children",
    "layer-scenario-change.data",
    "layer-scenario-bands.data",
    "scenario-areas.data",
    "layer-scenario-sites.data",
    "scenario-suggestions.data",
    "scenario-suggest-result.children",
    "layer-scenario-suggest.data",
    "scenario-accept.disabled",
    "scenario-name.value",
    "scenario-undo.disabled",
    "scenario-reset.disabled",
]
CALLBACK_INPUTS = [
    "scenario-add-centre.n_clicks",
    "scenario-address-add.n_clicks",
    "scenario-address.n_submit",
    "scenario-action.data",
    "scenario-undo.n_clicks",
    "scenario-reset.n_clicks",
    "scenario-suggest.n_clicks",
    "scenario-accept.n_clicks",
    "scenario-load.n_clicks",
    "atlas-settled.data",
]
CALLBACK_STATES = [
    "map.center",
    "scenario-address.value",
    "scenario-k.value",
    "scenario-suggestions.data",
    "scenario-saved.value",
    "scenario-store.data",
    "atlas-region.data",
]


def bench_callback(path: Path, mode: str, category: str, n: int, seed: int) -> tuple:
    """The What-if callback through the app's HTTP endpoint (Flask test client): add a site,
    add another, undo, as the panel sends them; wall ms per request and response KB."""
    import os

    os.environ.setdefault("ACCESS_ATLAS_WARM", "0")
    import app as atlas_app
    import callbacks.map as map_callbacks
    from viewmodel.data import region_data
    from viewmodel.scenario import baseline_access, warm_baseline

    region = path.name
    map_callbacks.configure(geodata=path.parent, default_region=region)
    client = atlas_app.server.test_client()
    rd = region_data(path.parent, region)
    base = baseline_access(rd, mode)
    thr = base.threshold(category)
    settled = {"category": category, "mode": mode, "threshold": thr}
    warm_baseline(rd, mode, category=category, threshold_min=thr)  # as the page does
    rng = np.random.default_rng(seed)

    def post(values: dict, changed: str) -> tuple[dict, float, int]:
        def dep(key: str) -> dict:
            cid, prop = key.rsplit(".", 1)
            return {"id": cid, "property": prop, "value": values.get(key)}

        body = {
            "output": ".." + "...".join(CALLBACK_OUTPUTS) + "..",
            "outputs": [
                dict(zip(("id", "property"), o.rsplit(".", 1), strict=True))
                for o in CALLBACK_OUTPUTS
            ],
            "inputs": [dep(k) for k in CALLBACK_INPUTS],
            "state": [dep(k) for k in CALLBACK_STATES],
            "changedPropIds": [changed],
        }
        c0, t0 = time.process_time(), time.perf_counter()
        r = client.post("/_dash-update-component", json=body)
        wall = time.perf_counter() - t0
        cpu.append(time.process_time() - c0)
        assert r.status_code == 200, r.data[:300]
        return r.get_json()["response"], wall, len(r.data)

    times, sizes, cpu = [], [], []
    for i in range(n):
        store = None
        for step in ("add", "add", "undo"):
            values = {
                "atlas-settled.data": settled,
                "atlas-region.data": {"region": region},
                "scenario-store.data": store,
            }
            if step == "add":
                site = _random_add(base, category, rng)
                values["scenario-action.data"] = {
                    "kind": "add",
                    "lon": site.lon,
                    "lat": site.lat,
                    "n": i,
                }
                changed = "scenario-action.data"
            else:
                values["scenario-undo.n_clicks"] = i + 1
                changed = "scenario-undo.n_clicks"
            base._cache.pop("states", None)
            response, wall, size = post(values, changed)
            store = response["scenario-store"]["data"]
            times.append(wall)
            sizes.append(size)
    p50, p95 = _pct(times)
    c50, c95 = _pct(cpu)
    return (
        mode,
        category,
        len(times),
        p50,
        p95,
        c50,
        c95,
        np.median(sizes) / 1024,
        max(sizes) / 1024,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="a built Franklin County bundle (default: build one)")
    parser.add_argument("--changes", type=int, default=50, help="random changes per kind")
    parser.add_argument(
        "--category",
        nargs="+",
        default=["buprenorphine", "methadone"],
        help="categories (each with the modes it has a threshold for)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        path = _bundle(args.bundle, Path(tmp))
        if path is None:
            print(f"SKIP: {FRANKLIN} not found (the project's ../shared folder) and no --bundle")
            return 0
        bundle = Bundle.open(path)
        rows = []
        thresholds = bundle.manifest["settings"].get("thresholds_min", {})
        calls = []
        for mode in bundle.manifest["settings"]["modes"]:
            for category in args.category:
                if mode in thresholds.get(category, {}):
                    rows += bench_mode(bundle, mode, category, args.changes, args.seed)
                    calls.append(
                        bench_callback(Path(path), mode, category, args.changes, args.seed)
                    )
    print(f"\nserver time per change, ms (target: p95 < {TARGET_MS:.0f} ms)")
    print("eval: evaluate() alone (wall; cpu: its CPU time, what an idle server would take);")
    print("+change: and the polygons of the cells that left/entered the desert;")
    print("+desert: and the whole new desert polygon instead (all wall time)")
    head = (
        f"{'mode':5} {'category':13} {'change':22} {'n':>4} {'eval p50':>8} {'p95':>6} "
        f"{'cpu p50':>7} {'p95':>6} {'+change p50':>11} {'p95':>6} {'+desert p50':>11} {'p95':>6}"
    )
    print(head)
    print("-" * len(head))
    for mode, cat, label, n, p50, p95, c50, c95, d50, d95 in rows:
        unit = 1000.0 if label.startswith("suggest") else 1.0
        suffix = " (s)" if unit > 1 else ""
        u50, u95 = (
            _pct(CPU[f"{mode}/{cat}/{label}"])
            if f"{mode}/{cat}/{label}" in CPU
            else (
                float("nan"),
                float("nan"),
            )
        )
        print(
            f"{mode:5} {cat:13} {label + suffix:22} {n:4d} {p50 / unit:8.1f} {p95 / unit:6.1f} "
            f"{u50:7.1f} {u95:6.1f} {c50:11.1f} {c95:6.1f} {d50:11.1f} {d95:6.1f}".replace(
                "nan", "  -"
            )
        )
    print("\nthe map's update per change, ms: bands whose minute changed + area/hexagon values")
    print("(viewmodel.scenario_map), and the whole scenario_view (one change's cost to the server)")
    head = (
        f"{'mode':5} {'category':13} {'change':22} {'n':>4} {'map p50':>8} {'p95':>6} "
        f"{'view p50':>8} {'p95':>6} {'cpu p50':>7} {'p95':>6} {'cells p50':>9} {'max':>6} "
        f"{'KB p50':>6} {'max':>5}"
    )
    print(head)
    print("-" * len(head))
    for label, values in MAP.items():
        mode, cat, what = label.split("/", 2)
        arr = np.asarray(values)
        m50, m95 = _pct(list(arr[:, 0]))
        v50, v95 = _pct(list(arr[:, 1]))
        c50, c95 = _pct(list(arr[:, 4]))
        print(
            f"{mode:5} {cat:13} {what:22} {len(arr):4d} {m50:8.1f} {m95:6.1f} {v50:8.1f} "
            f"{v95:6.1f} {c50:7.1f} {c95:6.1f} {np.median(arr[:, 2]):9.0f} {arr[:, 2].max():6.0f} "
            f"{np.median(arr[:, 3]) / 1024:6.1f} {arr[:, 3].max() / 1024:5.0f}"
        )
    print("\nthe whole What-if callback over HTTP (Flask test client: Dash, the panel's")
    print("components and the JSON of every output), add / add / undo, ms per request")
    head = (
        f"{'mode':5} {'category':13} {'n':>4} {'p50':>7} {'p95':>7} {'cpu p50':>7} {'p95':>6} "
        f"{'KB p50':>7} {'max':>6}"
    )
    print(head)
    print("-" * len(head))
    for mode, cat, n, p50, p95, c50, c95, k50, kmax in calls:
        print(
            f"{mode:5} {cat:13} {n:4d} {p50:7.1f} {p95:7.1f} {c50:7.1f} {c95:6.1f} "
            f"{k50:7.1f} {kmax:6.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
