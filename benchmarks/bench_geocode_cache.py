"""Benchmark: a ``load-providers`` stage with the geocoding reference cache cold, then warm.

Run:  .venv/bin/python benchmarks/bench_geocode_cache.py [--config CONFIG] [--geodata DIR]
      [--rounds N]

Builds the region once in ``--geodata`` when it has no bundle there (not timed), then runs
``load-providers`` (the stage and those after it, as the CLI's stage command does) in rounds of
two side by side: with ``<geodata>/.cache/geocode`` emptied (cold: the reference is read and
parsed) and with it left from the run before (warm: the parsed reference is re-used). Each run
is a fresh Python process (as a CLI command is: the parsers' in-memory caches start empty). For
each run it prints the providers stage's wall and CPU seconds, the part spent getting the
reference index, the whole command's wall and CPU seconds (imports included), the 1-minute
load average before and after, and whether the manifest says the cache was used. Finally it
checks that the providers layers of the cold and warm runs are equal.

Skips (exit 0, with a message) when the config's input files are absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from etl import pipeline  # noqa: E402
from etl.bundle.store import Bundle  # noqa: E402
from etl.config import load_config  # noqa: E402


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed_stage(record: dict[str, float]) -> Any:
    """Wrap the providers stage to time it (wall and CPU) on its own."""
    inner = pipeline.STAGE_FUNCS["providers"]

    def stage(ctx: pipeline.BuildContext) -> dict[str, Any]:
        w0, c0 = time.perf_counter(), _cpu()
        out = inner(ctx)
        record["stage_wall"], record["stage_cpu"] = time.perf_counter() - w0, _cpu() - c0
        return out

    return stage


def run_once(cfg: Any, geodata: Path) -> dict[str, Any]:
    """One ``load-providers`` command in this process (the child side of :func:`run_child`)."""
    record: dict[str, Any] = {}
    original = pipeline.STAGE_FUNCS["providers"]
    pipeline.STAGE_FUNCS["providers"] = _timed_stage(record)
    try:
        pipeline.run_build(cfg, geodata, start="providers", overwrite=True, progress=False)
    finally:
        pipeline.STAGE_FUNCS["providers"] = original
    return record


def run_child(config: str, geodata: Path, *, cold: bool) -> dict[str, Any]:
    """Run one ``load-providers`` command in a fresh process; cold empties the cache first."""
    cache = geodata / ".cache" / "geocode"
    if cold and cache.exists():
        shutil.rmtree(cache)
    record: dict[str, Any] = {"run": "cold" if cold else "warm"}
    cmd = [sys.executable, __file__, "--config", config, "--geodata", str(geodata), "--child"]
    record["load_before"] = os.getloadavg()[0]
    w0, c0 = time.perf_counter(), _cpu()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    record["wall"], record["cpu"] = time.perf_counter() - w0, _cpu() - c0
    record["load_after"] = os.getloadavg()[0]
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    record |= json.loads(res.stdout.strip().splitlines()[-1])
    bundle = Bundle.open(geodata / load_config(config).name)
    ref = bundle.manifest["stages"]["providers"].get("geocode_reference", {})
    record["reference_s"] = ref.get("seconds", float("nan"))
    record["cache_used"] = ref.get("used")
    record["providers"] = bundle.read_layer("providers")
    return record


def main() -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", default=str(ROOT / "geodata" / "configs" / "franklin-oh.yaml"))
    parser.add_argument("--geodata", default=None, help="bundle folder (default: a temporary one)")
    parser.add_argument("--rounds", type=int, default=1, help="cold/warm pairs to run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    cfg = load_config(args.config)
    if args.child:
        print(json.dumps(run_once(cfg, Path(args.geodata))))
        return 0
    missing = [r.path for r in cfg.geocoding.reference if not cfg.resolve(r.path).exists()]
    if missing:
        print(f"skipped: input files not found: {', '.join(missing)}")
        return 0
    geodata = Path(args.geodata) if args.geodata else Path(tempfile.mkdtemp(prefix="geocache-"))
    if not (geodata / cfg.name / "manifest.json").exists():
        t0 = time.perf_counter()
        pipeline.run_build(cfg, geodata, progress=False)
        print(f"base bundle built in {time.perf_counter() - t0:.1f} s (not part of the figures)")

    runs = []
    for _ in range(args.rounds):
        runs.append(run_child(args.config, geodata, cold=True))
        runs.append(run_child(args.config, geodata, cold=False))

    print(f"\n{cfg.name}: load-providers (and the stages after it), {os.cpu_count()} CPUs")
    head = (
        f"{'run':<5} {'cache used':>10} {'reference s':>11} {'stage wall':>10} {'stage CPU':>9} "
        f"{'command wall':>12} {'command CPU':>11} {'load 1m before/after':>21}"
    )
    print(head)
    print("-" * len(head))
    for r in runs:
        print(
            f"{r['run']:<5} {r['cache_used']!s:>10} {r['reference_s']:>11.2f} "
            f"{r['stage_wall']:>10.2f} {r['stage_cpu']:>9.2f} {r['wall']:>12.2f} "
            f"{r['cpu']:>11.2f} {r['load_before']:>10.2f} / {r['load_after']:<8.2f}"
        )
    base = runs[0]["providers"]
    for r in runs[1:]:
        pd.testing.assert_frame_equal(r["providers"], base, check_exact=True)
    print(f"\nproviders layers of all {len(runs)} runs equal ({len(base):,} sites)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
