"""Load test of the production setup: gunicorn with ``gunicorn.conf.py``, 2 and 4 workers.

Run::

    .venv/bin/access-atlas build geodata/configs/franklin-oh.yaml --geodata-dir /tmp/geo-srv
    .venv/bin/python benchmarks/loadtest_serving.py --geodata /tmp/geo-srv --region franklin-oh

For each worker count it starts gunicorn on a free 127.0.0.1 port (the app as ``app:server``,
or through a shim that installs :mod:`viewmodel.serving` while app.py does not yet), warms it up,
then runs ``--users`` concurrent visitors (threads with keep-alive connections) for
``--duration`` seconds, at most ``--max-requests`` requests. A visitor does what a browser
does on a fresh visit — the page, Dash's layout and dependencies, the page callback, every
layer URL of the first view — then moves the threshold (summary and legend callbacks),
clicks the map (details callback) and looks up a place (look-up callback), ``--think``
seconds apart (default 0: a closed loop, the worst case). Export URLs are included when the
app has any route with "export" or "download" in it.

With no think time every visitor starts its first visit at the same instant (``--start
together``, the default): for the first visits the 50 reach each step in lockstep, so the
heaviest callback arrives 50 times at once, a flash crowd that sets the p99. ``--start
staggered`` starts each visitor at a random step of its first visit instead; every later
visit, and so the request mix, is the same. With think time visitors always arrive spread
over the first ``4 * think`` seconds.

A closed loop with no think time keeps the server saturated by construction: a request's
latency is mostly its wait for the CPU (mean latency ≈ users / throughput), so compare runs by
throughput and by the server's CPU per request (printed, from ``/proc``), and note the load
average (printed before and after each run: other processes on the machine take their share).

Callback bodies are built from ``/_dash-dependencies`` and the values of the first rendered
page, so the script follows the app's component ids. Bodies are read raw (gzip is not
decoded), so the client spends its CPU on requests, not on inflating GeoJSON.

Prints, per worker count and request kind: requests, errors, requests per second, p50, p90,
p99 and max latency, and the CPU seconds of the server and of the load generator; writes
everything to ``artifacts/loadtest_serving.json``, with the 20 slowest requests and when they
started (a cluster shows a stall or a lockstep wave). Only 127.0.0.1 is ever contacted, and
every loop is bounded in time and count.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


# ---------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def app_target(tmp: Path) -> tuple[str, list[str]]:
    installs = r"viewmodel\.serving|from viewmodel import .*\bserving"
    if re.search(installs, (ROOT / "app.py").read_text()):
        return "app:server", []
    (tmp / "atlas_entry.py").write_text(
        "import callbacks.map as m\nfrom app import server\nfrom viewmodel import serving\n"
        "serving.install(server, geodata_dir=m.geodata_dir)\n"
    )
    return "atlas_entry:server", ["--pythonpath", str(tmp)]


class Gunicorn:
    def __init__(self, geodata: Path, region: str, workers: int, tmp: Path, logs: Path) -> None:
        self.url = f"http://{HOST}:{free_port()}"
        target, extra = app_target(tmp)
        env = dict(
            os.environ,
            ACCESS_ATLAS_GEODATA=str(geodata),
            ACCESS_ATLAS_REGION=region,
            WEB_CONCURRENCY=str(workers),
        )
        self.log = (logs / f"loadtest_serving-gunicorn-{workers}.log").open("wb")
        gunicorn = Path(sys.executable).with_name("gunicorn")
        bind = ["--bind", self.url.removeprefix("http://")]
        self.proc = subprocess.Popen(
            [str(gunicorn), target, "-c", str(ROOT / "gunicorn.conf.py"), *extra, *bind],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,  # the access log: one line per request
            stderr=self.log,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        msg = f"gunicorn did not become healthy; see {self.log.name}"
        raise SystemExit(msg)

    def _stats(self) -> Iterator[list[str]]:
        """``/proc/<pid>/stat`` fields (after the name) of the master and its workers."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid or int(stat.parent.name) == self.proc.pid:
                    yield fields
            except (OSError, IndexError, ValueError):
                continue

    def rss_mb(self) -> float:
        total = sum(int(f[21]) * os.sysconf("SC_PAGE_SIZE") for f in self._stats())
        return round(total / 2**20, 1)

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the master and its live workers have used."""
        ticks = sum(int(f[11]) + int(f[12]) for f in self._stats())
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------------------------------
# What a visitor requests
# ---------------------------------------------------------------------------------------


def _spec(prop_id: str) -> dict[str, Any]:
    ident, prop = prop_id.rsplit(".", 1)
    return {"id": ident, "property": prop}


def callback_body(dep: dict[str, Any], value: Any) -> dict[str, Any]:
    """A callback request; ``value(id, property)`` gives each input and state value."""
    out = dep["output"]
    outputs = (
        [_spec(s) for s in out.strip(".").split("...")] if out.startswith("..") else _spec(out)
    )

    def items(key: str) -> list[dict[str, Any]]:
        return [
            {"id": d["id"], "property": d["property"], "value": value(d["id"], d["property"])}
            for d in dep[key]
        ]

    first = dep["inputs"][0]
    return {
        "output": out,
        "outputs": outputs,
        "inputs": items("inputs"),
        "state": items("state"),
        "changedPropIds": [f"{first['id']}.{first['property']}"],
    }


def _components(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        if isinstance(tree.get("props"), dict):
            yield tree["props"]
        for v in tree.values():
            yield from _components(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _components(v)


class Site:
    """The requests of a visit, discovered from the running app."""

    def __init__(self, url: str, region: str) -> None:
        self.url = url
        s = requests.Session()
        deps = s.get(url + "/_dash-dependencies", timeout=30).json()
        self.deps = [d for d in deps if not d.get("clientside_function") and d["inputs"]]
        page = next(d for d in self.deps if any(i["property"] == "pathname" for i in d["inputs"]))
        self.search = f"?region={region}"
        self.page_body = callback_body(
            page,
            lambda i, p: {"pathname": "/", "search": self.search, "href": url + "/"}.get(p),
        )
        r = s.post(url + "/_dash-update-component", json=self.page_body, timeout=120)
        r.raise_for_status()
        self.props: dict[str, dict[str, Any]] = {}
        for props in _components(r.json()):
            if isinstance(props.get("id"), str):
                self.props[props["id"]] = props
        values = {p: v.get("value") for p, v in self.props.items()}
        cat = next((v for k, v in values.items() if "category" in k and isinstance(v, str)), "")
        mode = next((v for k, v in values.items() if "mode" in k and isinstance(v, str)), "")
        text = r.text.replace("\\u002f", "/")
        urls = set(re.findall(r"/atlas/layers/[^\"'\s?]+\.geojson\?v=[\w\-]+", text))
        self.layers = sorted({
            u.replace("%7Bcategory%7D", cat).replace("{category}", cat)
            .replace("%7Bmode%7D", mode).replace("{mode}", mode)
            for u in urls
        })  # fmt: skip
        served = [u for u in self.layers if s.get(url + u, timeout=120).status_code == 200]
        #: URLs the page lists but the server does not serve (the page never fetches them)
        self.unserved = sorted(set(self.layers) - set(served))
        self.layers = served
        self.center = self._center(s, region)
        self.callbacks = {self._kind(d): d for d in self.deps if d is not page}
        self.exports = self._exports()

    def _center(self, s: requests.Session, region: str) -> tuple[float, float]:
        region_url = next((u for u in self.layers if "/region." in u), None)
        if region_url is None:
            return (39.9612, -82.9988)
        geo = s.get(self.url + region_url, timeout=60).json()
        coords = np.array(re.findall(r"-?\d+\.\d+", json.dumps(geo["features"][0]["geometry"])))
        xy = coords.astype(float).reshape(-1, 2)
        lon, lat = xy.mean(axis=0)
        return float(lat), float(lon)

    @staticmethod
    def _kind(dep: dict[str, Any]) -> str:
        first = dep["output"].strip(".").split("...")[0]
        return "cb:" + first.rsplit(".", 1)[0]

    def _exports(self) -> list[str]:
        os.environ.setdefault("ACCESS_ATLAS_WARM", "0")
        sys.path.insert(0, str(ROOT))
        try:
            import app as atlas_app
        except Exception:  # the app is mid-edit: no exports then
            return []
        return sorted(
            r.rule
            for r in atlas_app.server.url_map.iter_rules()
            if re.search(r"export|download", r.rule) and "<" not in r.rule
        )

    def value(self, rng: random.Random, ident: str, prop: str) -> Any:
        """A realistic value for an input: a click in the region, a place to look up, …"""
        lat, lon = self.center
        if prop == "clickData":
            jitter = rng.uniform(-0.03, 0.03)
            if "map" in ident:
                return {"latlng": {"lat": lat + jitter, "lng": lon - jitter}}
            return None
        if prop in ("n_clicks", "n_submit"):
            return 1 if prop == "n_clicks" else None
        if prop == "value" and "threshold" in ident:
            return rng.choice([5, 10, 15, 20, 30, 45, 60])
        if prop == "value" and "address" in ident:
            return f"{lat + rng.uniform(-0.02, 0.02):.5f}, {lon + rng.uniform(-0.02, 0.02):.5f}"
        if prop == "pathname":
            return "/"
        if prop == "search":
            return self.search
        return self.props.get(ident, {}).get(prop)

    def visit(self, rng: random.Random) -> list[tuple[str, str, str, Any, bool]]:
        """(kind, method, path, body, think after it) of one visit.

        The page load (page, layout, dependencies, page callback, layers) comes at once, as
        a browser fetches it; the visitor thinks after each interaction that follows.
        """
        reqs: list[tuple[str, str, str, Any, bool]] = [
            ("page", "GET", "/" + self.search, None, False),
            ("dash-layout", "GET", "/_dash-layout", None, False),
            ("dash-deps", "GET", "/_dash-dependencies", None, False),
            ("cb:page", "POST", "/_dash-update-component", self.page_body, False),
        ]
        for u in self.layers:
            name = u.split("/")[4].split(".")[0]
            reqs.append((f"layer:{name}", "GET", u, None, False))
        reqs[-1] = (*reqs[-1][:4], True)
        for kind, dep in sorted(self.callbacks.items()):
            body = callback_body(dep, lambda i, p: self.value(rng, i, p))
            reqs.append((kind, "POST", "/_dash-update-component", body, True))
        reqs += [("export", "GET", u, None, True) for u in self.exports]
        return reqs


# ---------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------


def run_load(
    site: Site,
    *,
    users: int,
    duration: float,
    max_requests: int,
    think: float,
    seed: int = 1,
    start: str = "together",
) -> dict[str, Any]:
    """Run ``users`` visitors for ``duration`` seconds; latencies per request kind.

    ``start="together"``: with no think time every visitor begins its first visit at the
    same instant, so all of them reach each step (the page, the What-if callback, …) in
    lockstep for the first visits, a flash crowd. ``"staggered"``: each visitor begins its
    first visit at a random step instead (the requests of every later visit are the same),
    as visitors who arrived at different times would. With think time, visitors always
    arrive spread over the first ``4 * think`` seconds.
    """
    lock = threading.Lock()
    times: dict[str, list[float]] = defaultdict(list)
    slowest: list[tuple[float, float, str]] = []  # (seconds, started after, kind)
    statuses: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    errors: list[str] = []
    count = [0]
    start = time.perf_counter()
    stop_at = time.monotonic() + duration
    barrier = threading.Barrier(users)

    def user(u: int) -> None:
        rng = random.Random(seed * 1000 + u)
        s = requests.Session()
        s.headers["Accept-Encoding"] = "gzip"
        barrier.wait()
        if think:  # visitors arrive over the first seconds, not all at one instant
            time.sleep(rng.uniform(0, 4 * think))
        first = True
        while time.monotonic() < stop_at:
            visit = site.visit(rng)
            if first and start == "staggered" and not think:
                visit = visit[rng.randrange(len(visit)) :]
            first = False
            for kind, method, path, body, pause in visit:
                with lock:
                    if count[0] >= max_requests or time.monotonic() >= stop_at:
                        return
                    count[0] += 1
                t0 = time.perf_counter()
                try:
                    r = s.request(method, site.url + path, json=body, timeout=60, stream=True)
                    data = r.raw.read(decode_content=False)
                    r.close()
                    status: int | str = r.status_code
                    ok = r.status_code in (200, 204, 304) and b"Traceback" not in data
                except requests.RequestException as exc:
                    status, ok = type(exc).__name__, False
                    s = requests.Session()
                    s.headers["Accept-Encoding"] = "gzip"
                dt = time.perf_counter() - t0
                with lock:
                    times[kind].append(dt)
                    if len(slowest) < 20 or dt > slowest[0][0]:
                        heapq.heappush(slowest, (dt, t0 - start, kind))
                        if len(slowest) > 20:
                            heapq.heappop(slowest)
                    statuses[kind][str(status)] += 1
                    if not ok:
                        errors.append(f"{kind} {method} {path[:80]}: {status}")
                if think and pause:
                    time.sleep(
                        min(rng.uniform(0.5, 1.5) * think, max(0.0, stop_at - time.monotonic()))
                    )

    threads = [threading.Thread(target=user, args=(u,)) for u in range(users)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 120)
    wall = time.perf_counter() - t0
    every = [t for v in times.values() for t in v]
    out: dict[str, Any] = {
        "users": users,
        "think_s": think,
        "start": start,
        "seconds": round(wall, 1),
        "requests": len(every),
        "rps": round(len(every) / wall, 1),
        "errors": len(errors),
        "error_samples": errors[:10],
        # when the slowest requests started (s into the run): a stall shows as a cluster
        "slowest": [
            {"kind": k, "ms": round(dt * 1000, 1), "started_s": round(at, 2)}
            for dt, at, k in sorted(slowest, reverse=True)
        ],
        "kinds": {},
    }
    callbacks = [t for k, v in times.items() if k.startswith("cb:") for t in v]
    layers = [t for k, v in times.items() if k.startswith("layer:") for t in v]
    groups = [("all callbacks", callbacks), ("all layers", layers), ("all", every)]
    for kind, v in [*sorted(times.items()), *groups]:
        if not v:
            continue
        a = np.array(v) * 1000
        out["kinds"][kind] = {
            "n": len(a),
            "errors": sum(n for s, n in statuses[kind].items() if s not in ("200", "204", "304")),
            "rps": round(len(a) / wall, 1),
            "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p90_ms": round(float(np.percentile(a, 90)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1),
            "max_ms": round(float(a.max()), 1),
        }
    return out


def _cpu_s() -> float:
    """CPU seconds this process (the load generator) has used."""
    t = os.times()
    return t.user + t.system


def print_table(workers: int, res: dict[str, Any], rss: float) -> None:
    cpu = res.get("cpu", {})
    print(
        f"\n{workers} workers, {res['users']} users, think {res['think_s']} s, "
        f"start {res['start']}: "
        f"{res['requests']:,} requests in {res['seconds']} s = {res['rps']} req/s, "
        f"{res['errors']} errors; gunicorn RSS {rss:,.0f} MB"
    )
    if cpu:
        print(
            f"CPU: server {cpu['server_s']} s ({cpu['server_ms_per_request']} ms/request), "
            f"load generator {cpu['client_s']} s; load average (1 min) before/after "
            f"{cpu['loadavg_1min_before_after']} on {os.cpu_count()} CPUs"
        )
    print(f"{'kind':28s} {'n':>7s} {'err':>4s} {'req/s':>7s} {'p50':>7s} {'p90':>7s} "
          f"{'p99':>7s} {'max':>7s}  (ms)")  # fmt: skip
    for kind, k in res["kinds"].items():
        print(
            f"{kind:28s} {k['n']:>7,} {k['errors']:>4} {k['rps']:>7.1f} {k['p50_ms']:>7.1f} "
            f"{k['p90_ms']:>7.1f} {k['p99_ms']:>7.1f} {k['max_ms']:>7.1f}"
        )
    for e in res["error_samples"]:
        print("  error:", e)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--geodata", type=Path, default=Path("/tmp/geo-srv"))
    ap.add_argument("--region", default="franklin-oh")
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per run (max 300)")
    ap.add_argument("--max-requests", type=int, default=50_000, help="per run (max 200,000)")
    ap.add_argument(
        "--think",
        type=float,
        nargs="+",
        default=[0.0, 2.0],
        help="mean seconds between a visitor's requests; one run per value (0: closed loop)",
    )
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds per 2 workers")
    ap.add_argument(
        "--start",
        choices=["together", "staggered"],
        default="together",
        help="with think 0: visitors begin in lockstep (a flash crowd) or at random steps",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "loadtest_serving.json")
    args = ap.parse_args(argv)
    duration = min(args.duration, 300.0)
    max_requests = min(args.max_requests, 200_000)
    if not (args.geodata / args.region / "manifest.json").exists():
        print(f"no bundle {args.geodata / args.region}; build it first (see --help)")
        return 2
    results = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            server = Gunicorn(args.geodata, args.region, workers, Path(tmp), args.out.parent)
            try:
                site = Site(server.url, args.region)
                for u in site.unserved:
                    print(f"note: the page lists {u} but it answers 404; left out of the load")
                # every worker opens the bundle and builds its layers once: not measured
                warm = args.warmup * max(1.0, workers / 2)
                run_load(site, users=4 * workers, duration=warm, max_requests=20_000, think=0)
                for think in args.think:
                    load0, server0, client0 = os.getloadavg()[0], server.cpu_s(), _cpu_s()
                    res = run_load(
                        site,
                        users=args.users,
                        duration=duration,
                        max_requests=max_requests,
                        think=think,
                        start=args.start,
                    )
                    res["cpu"] = {
                        "server_s": round(server.cpu_s() - server0, 1),
                        "client_s": round(_cpu_s() - client0, 1),
                        "server_ms_per_request": round(
                            1000 * (server.cpu_s() - server0) / max(1, res["requests"]), 2
                        ),
                        "loadavg_1min_before_after": [
                            round(load0, 2),
                            round(os.getloadavg()[0], 2),
                        ],
                    }
                    rss = server.rss_mb()
                    print_table(workers, res, rss)
                    results.append({"workers": workers, "rss_mb": rss, **res})
            finally:
                server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "cpus": os.cpu_count(),
        "region": args.region,
        "layers": site.layers,
        "listed_not_served": site.unserved,
    }
    args.out.write_text(json.dumps({"meta": meta, "runs": results}, indent=2) + "\n")
    print(f"\nwritten to {args.out}")
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
