"""Check the engine's drive times against OSRM (car profile) on the Franklin County extract.

Run: ``OSRM_BIN=/path/to/osrm/bin .venv/bin/python benchmarks/bench_osrm.py [--sample N]``

OSRM is a benchmark here, never a runtime dependency. It is found through ``OSRM_BIN`` (a
folder holding ``osrm-extract``, ``osrm-contract`` and ``osrm-routed``) or the ``osrm``
Python package of the ``bench`` extra (``osrm-bindings``, whose wheel ships the same
executables under ``osrm/bin``); the car profile is ``profiles/car.lua`` of that install
(``OSRM_PROFILE`` overrides it). Without OSRM, or without ../shared, it prints why it skips
and exits 0.

What it compares, per provider category (the bundle's own sites: routable, as
``compute-access`` routes to them):

* people: a weighted sample (with replacement, probability ∝ people per point, seed 0) of
  the Franklin bundle's people points that the drive network covers (nearest node within
  ``access.cover_m``); people the engine counts as not covered are left out;
* engine time: what the bundle stores for that person: the nearest node's time to the
  nearest site (reversed-graph Dijkstra, the site's snap walk included) plus the person's
  snap walk (:func:`etl.engine.counting.people_times`), on the drive network built from the
  region config as the pipeline builds it;
* OSRM time: min over the category's sites of the ``table`` service duration, plus the walk
  from each coordinate to the point OSRM snapped it to (the waypoints' ``distance``) at the
  same walking speed, so both sides are door to door by the same rule.

It prints n, and the median, p10 and p90 of **engine / OSRM** per category (below 1: the
engine is faster than OSRM), also for the drive part alone (engine node-to-node time vs the
OSRM duration), with the load average.

The Franklin bundle is built into a temporary folder unless ``--geodata DIR`` names a folder
that already holds ``franklin-oh`` (built with ``access-atlas build``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl.categories import CATEGORIES, site_mask  # noqa: E402
from etl.config import load_config  # noqa: E402
from etl.engine.access import nearest_site_times, routable_sites, snap_points  # noqa: E402
from etl.engine.network import build_mode_network  # noqa: E402
from etl.inputs.osm import read_osm_file  # noqa: E402

FRANKLIN = ROOT.parent / "shared" / "data" / "franklin-oh"
CONFIG = ROOT / "geodata" / "configs" / "franklin-oh.yaml"
TOOLS = ("osrm-extract", "osrm-contract", "osrm-routed")
#: OSRM car.lua's ``speeds.highway`` table (km/h), for ``--osrm-speeds``.
OSRM_CAR_SPEEDS_KPH = {
    "motorway": 90.0, "motorway_link": 45.0, "trunk": 85.0, "trunk_link": 40.0,
    "primary": 65.0, "primary_link": 30.0, "secondary": 55.0, "secondary_link": 25.0,
    "tertiary": 40.0, "tertiary_link": 20.0, "unclassified": 25.0, "residential": 25.0,
    "living_street": 10.0, "service": 15.0, "road": 10.0,
}  # fmt: skip


def find_osrm() -> tuple[Path, Path] | str:
    """Return (bin folder, car.lua) or the reason OSRM is not available."""
    env = os.environ.get("OSRM_BIN")
    candidates: list[Path] = []
    if env:
        candidates.append(Path(env))
    else:
        try:
            import osrm  # type: ignore[import-not-found]

            candidates.append(Path(osrm.__file__).parent / "bin")
        except (ImportError, OSError):  # not installed, or its extension does not load
            pass
        on_path = shutil.which("osrm-routed")
        if on_path:
            candidates.append(Path(on_path).parent)
    for folder in candidates:
        if all((folder / t).is_file() for t in TOOLS):
            profile_env = os.environ.get("OSRM_PROFILE")
            profiles = [Path(profile_env)] if profile_env else [
                folder.parent / "share" / "profiles" / "car.lua",
                folder.parent / "profiles" / "car.lua",
                folder.parent / "share" / "osrm" / "profiles" / "car.lua",
            ]
            for profile in profiles:
                if profile.is_file():
                    return folder, profile
            return f"no car.lua beside {folder} (set OSRM_PROFILE to the source's profiles/car.lua)"
    if env:
        return f"OSRM_BIN={env} does not hold {', '.join(TOOLS)}"
    return (
        "OSRM not found: set OSRM_BIN to a folder with osrm-extract/osrm-contract/osrm-routed,"
        " or install the `bench` extra (osrm-bindings)"
    )


def prepare_osrm(bin_dir: Path, profile: Path, pbf: Path, work: Path) -> tuple[Path, float]:
    """Extract and contract the extract with the car profile; return the .osrm base, seconds."""
    work.mkdir(parents=True, exist_ok=True)
    local = work / pbf.name
    base = work / (pbf.name.split(".")[0] + ".osrm")
    stamp = work / "profile.txt"
    key = f"{profile.resolve()} {profile.stat().st_mtime} {pbf.stat().st_size}"
    if (base.with_suffix(".osrm.hsgr")).exists() and stamp.exists() and stamp.read_text() == key:
        return base, 0.0
    shutil.copyfile(pbf, local)
    local.chmod(0o644)
    t0 = time.perf_counter()
    for cmd in (
        [str(bin_dir / "osrm-extract"), "-p", str(profile), "-t", "2", str(local)],
        [str(bin_dir / "osrm-contract"), "-t", "2", str(base)],
    ):
        subprocess.run(["nice", "-n", "19", *cmd], check=True, cwd=work, capture_output=True)
    stamp.write_text(key)
    return base, time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_routed(bin_dir: Path, base: Path) -> tuple[subprocess.Popen, str]:
    """Start osrm-routed (contraction hierarchies) on 127.0.0.1; return process and URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(bin_dir / "osrm-routed"), "--algorithm", "ch", "-i", "127.0.0.1", "-p", str(port),
         "--max-table-size", "100000", "-t", "1", str(base)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"{url}/nearest/v1/driving/-82.99,39.96", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                msg = f"osrm-routed exited with {proc.returncode}"
                raise RuntimeError(msg) from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("osrm-routed did not answer on 127.0.0.1 within 20 s")


def osrm_min_times(
    url: str,
    src: np.ndarray,
    dst: np.ndarray,
    walk_mps: float,
    batch: int = 400,
) -> tuple[np.ndarray, np.ndarray]:
    """Min over destinations of the table duration: (door to door with snap walks, drive only)."""
    door = np.full(len(src), np.inf)
    drive = np.full(len(src), np.inf)
    dst_coords = ";".join(f"{x:.6f},{y:.6f}" for x, y in dst)
    n_dst = len(dst)
    for start in range(0, len(src), batch):
        chunk = src[start : start + batch]
        coords = ";".join(f"{x:.6f},{y:.6f}" for x, y in chunk) + ";" + dst_coords
        k = len(chunk)
        query = (
            f"sources={';'.join(map(str, range(k)))}"
            f"&destinations={';'.join(map(str, range(k, k + n_dst)))}&annotations=duration"
        )
        body = f"{url}/table/v1/driving/{coords}?{query}"
        with urllib.request.urlopen(body, timeout=120) as resp:
            data = json.load(resp)
        if data.get("code") != "Ok":
            msg = f"OSRM table: {data.get('code')} {data.get('message')}"
            raise RuntimeError(msg)
        dur = np.array(
            [[np.inf if v is None else v for v in row] for row in data["durations"]], dtype=float
        )
        s_walk = np.array([w["distance"] for w in data["sources"]]) / walk_mps
        d_walk = np.array([w["distance"] for w in data["destinations"]]) / walk_mps
        door[start : start + k] = (dur + d_walk[None, :]).min(axis=1) + s_walk
        drive[start : start + k] = dur.min(axis=1)
    return door, drive


def _franklin_bundle(geodata: Path | None, tmp: Path):
    from etl.bundle.store import Bundle
    from etl.pipeline import run_build

    cfg = load_config(CONFIG)
    if geodata is not None and (geodata / cfg.name / "manifest.json").exists():
        return cfg, Bundle.open(geodata / cfg.name)
    run_build(cfg, tmp, progress=False)
    return cfg, Bundle.open(tmp / cfg.name)


def _stats(ratio: np.ndarray) -> str:
    p10, med, p90 = np.percentile(ratio, [10, 50, 90])
    return f"{med:6.3f} {p10:6.3f} {p90:6.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=3000, help="people drawn (default 3000)")
    parser.add_argument("--geodata", type=Path, default=None, help="folder holding franklin-oh")
    parser.add_argument("--work", type=Path, default=None, help="folder for OSRM's files")
    parser.add_argument("--signal-delay", type=float, default=None,
                        help="override network.signal_delay_s (seconds per traffic signal)")
    parser.add_argument("--maxspeed-factor", type=float, default=None,
                        help="override network.maxspeed_factor (share of maxspeed driven)")
    parser.add_argument("--osrm-speeds", action="store_true",
                        help="use OSRM car.lua's class speeds instead of network.drive_speeds_kph")
    args = parser.parse_args()
    if not FRANKLIN.is_dir():
        print(f"skipped: {FRANKLIN} not found (the project's ../shared data)")
        return 0
    found = find_osrm()
    if isinstance(found, str):
        print(f"skipped: {found}")
        return 0
    bin_dir, profile = found
    pbf = FRANKLIN / "osm" / "columbus.osm.pbf"
    cpu0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        work = args.work or (Path(tempfile.gettempdir()) / "access-atlas-osrm")
        base, t_prep = prepare_osrm(bin_dir, profile, pbf, work)
        cfg, bundle = _franklin_bundle(args.geodata, tmp)
        nc = cfg.network
        speeds = OSRM_CAR_SPEEDS_KPH if args.osrm_speeds else nc.drive_speeds_kph
        msf = nc.maxspeed_factor if args.maxspeed_factor is None else args.maxspeed_factor
        sig = nc.signal_delay_s if args.signal_delay is None else args.signal_delay
        t0 = time.perf_counter()
        options = {**nc.speed_options(), "drive_speeds_kph": speeds, "maxspeed_factor": msf,
                   "signal_delay_s": sig}  # fmt: skip
        net = build_mode_network(read_osm_file(pbf), "drive", crs=cfg.crs, **options)
        t_net = time.perf_counter() - t0
        people = bundle.read_layer("people")
        providers = bundle.read_layer("providers")
        from pyproj import Transformer

        to_xy = Transformer.from_crs("EPSG:4326", cfg.crs, always_xy=True)
        px, py = to_xy.transform(people["lon"].to_numpy(float), people["lat"].to_numpy(float))
        psnap = snap_points(net, np.asarray(px), np.asarray(py))
        covered = psnap.distance_m <= cfg.access.cover_m
        weight = people["weight"].to_numpy(float) * covered
        rng = np.random.default_rng(0)
        pick = rng.choice(len(people), size=args.sample, replace=True, p=weight / weight.sum())
        uniq, inverse = np.unique(pick, return_inverse=True)
        src = people[["lon", "lat"]].to_numpy(float)[uniq]

        proc, url = start_routed(bin_dir, base)
        rows = []
        try:
            for category in CATEGORIES:
                ok = site_mask(providers, category) & routable_sites(
                    providers, "drive", max_snap_m=nc.max_snap_m
                )
                sites = providers[ok]
                if len(sites) == 0:
                    continue
                sx, sy = to_xy.transform(sites["lon"].to_numpy(float), sites["lat"].to_numpy(float))
                ssnap = snap_points(net, np.asarray(sx), np.asarray(sy))
                res = nearest_site_times(net, ssnap.node, site_offsets_s=ssnap.walk_s)
                engine_door = res.time_s[psnap.node[uniq]] + psnap.walk_s[uniq]
                # The drive part alone: node to node, no snap walks on either side.
                engine_drive = nearest_site_times(net, ssnap.node).time_s[psnap.node[uniq]]
                t1 = time.perf_counter()
                o_door, o_drive = osrm_min_times(
                    url, src, sites[["lon", "lat"]].to_numpy(float), net.walk_speed_mps
                )
                t_osrm = time.perf_counter() - t1
                door = (engine_door / o_door)[inverse]
                ok_drive = (o_drive > 30)[inverse]  # a ratio of two short times says little
                drive = (engine_drive / np.maximum(o_drive, 1e-9))[inverse][ok_drive]
                good = np.isfinite(door)
                rows.append((category, len(sites), int(good.sum()), door[good], drive, t_osrm,
                             float(np.median(o_door[inverse]) / 60)))  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    cpu = time.process_time() - cpu0
    print(f"\nengine / OSRM drive time, {args.sample} people drawn ∝ weight among the covered")
    print(f"(OSRM {bin_dir}, profile {profile.name}; engine settings from {CONFIG.name}"
          f"{', class speeds of car.lua' if args.osrm_speeds else ''}; maxspeed factor "
          f"{msf:g}, signal delay {sig:g} s)")
    print(f"{'category':20} {'sites':>5} {'n':>5}  {'door to door: median p10 p90':>30}"
          f"  {'drive only: median p10 p90':>28}  {'OSRM med min':>12}")  # fmt: skip
    for category, n_sites, n, door, drive, _t, med_min in rows:
        print(f"{category:20} {n_sites:5d} {n:5d}  {_stats(door):>30}  {_stats(drive):>28}"
              f"  {med_min:12.1f}")  # fmt: skip
    print(
        f"\nOSRM extract+contract {t_prep:.1f} s (0: reused), engine network {t_net:.1f} s, "
        f"OSRM tables {sum(r[5] for r in rows):.1f} s; this process CPU {cpu:.1f} s; "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
