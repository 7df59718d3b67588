"""A bounded load test of the map's main callbacks and layer URLs (127.0.0.1 only).

Run against a server that is already up (``bench_app.py`` starts one)::

    .venv/bin/python benchmarks/loadtest.py --url http://127.0.0.1:8050 --region franklin-oh \\
        --users 50 --requests 1000

Each of ``--users`` threads replays, in a loop until ``--requests`` requests have been made
in total, what a visitor does: open the page (the page callback), move the threshold (the
summary callback), click the map (the details callback), look up an address (the look-up
callback) and fetch the current desert layer. Prints requests per second, latency
percentiles per kind and overall, and every error; exits 1 if any request failed. Refuses
any URL that is not on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import numpy as np


def _post(
    outputs: list[tuple[str, str]],
    inputs: list[tuple[str, str, Any]],
    state: list,
    changed: str | None = None,
) -> dict:
    multi = len(outputs) > 1
    return {
        "output": "..{}..".format("...".join(f"{i}.{p}" for i, p in outputs))
        if multi
        else f"{outputs[0][0]}.{outputs[0][1]}",
        "outputs": [{"id": i, "property": p} for i, p in outputs]
        if multi
        else {"id": outputs[0][0], "property": outputs[0][1]},
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [changed or f"{inputs[0][0]}.{inputs[0][1]}"],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }


def scenario(region: str, center: tuple[float, float], k: int) -> list[tuple[str, str, Any]]:
    """The requests of one visit: (kind, path, JSON body or None for GET)."""
    store = {"region": region}
    lat, lon = center
    threshold = 10 + (k % 40)
    mode = "drive" if k % 2 == 0 else "walk"
    return [
        (
            "page",
            "/_dash-update-component",
            _post(
                [("page", "children")],
                [("url", "pathname", "/")],
                [
                    ("url", "search", f"?region={region}&t={threshold}"),
                    ("atlas-rendered", "data", None),
                ],
            ),
        ),
        (
            "summary",
            "/_dash-update-component",
            _post(
                [("summary", "children")],
                [
                    (
                        "atlas-settled",
                        "data",
                        {"category": "buprenorphine", "mode": mode, "threshold": threshold},
                    )
                ],
                [("atlas-region", "data", store)],
            ),
        ),
        (
            "details",
            "/_dash-update-component",
            _post(
                [("details", "children"), ("layer-selection", "data")],
                [
                    ("layer-sites", "clickData", None),
                    ("map", "clickData", {"latlng": {"lat": lat + 0.002 * (k % 7), "lng": lon}}),
                ],
                [("atlas-region", "data", store)],
                changed="map.clickData",
            ),
        ),
        (
            "lookup",
            "/_dash-update-component",
            _post(
                [
                    ("lookup-result", "children"),
                    ("layer-routes", "children"),
                    ("map", "viewport"),
                    ("atlas-query", "data"),
                ],
                [
                    ("address-button", "n_clicks", 1),
                    ("address-input", "n_submit", None),
                    ("mode-select", "value", mode),
                ],
                [
                    ("address-input", "value", f"{lat + 0.001 * (k % 9):.5f}, {lon:.5f}"),
                    ("atlas-region", "data", store),
                ],
            ),
        ),
        ("layer", f"/atlas/layers/{region}/bands/buprenorphine/{mode}.geojson", None),
    ]


def run(url: str, region: str, center: tuple[float, float], users: int, total: int) -> dict:
    """Run the load test; return the results."""
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        msg = f"refusing to load-test {url}: only 127.0.0.1 is allowed"
        raise SystemExit(msg)
    lock = threading.Lock()
    counter = iter(range(total))
    times: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    start = threading.Barrier(users)

    def next_index() -> int | None:
        with lock:
            return next(counter, None)

    def user(u: int) -> None:
        start.wait()
        k = u
        while True:
            for kind, path, body in scenario(region, center, k):
                i = next_index()
                if i is None:
                    return
                data = json.dumps(body).encode() if body is not None else None
                req = urllib.request.Request(
                    url + path, data=data, method="POST" if data else "GET"
                )
                req.add_header("Accept-Encoding", "gzip")
                if data:
                    req.add_header("Content-Type", "application/json")
                t0 = time.perf_counter()
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        payload = r.read()
                        ok = r.status in (200, 204) and b"Traceback" not in payload
                        status = r.status
                except urllib.error.HTTPError as exc:
                    ok, status = False, exc.code
                except OSError as exc:
                    ok, status = False, repr(exc)
                dt = time.perf_counter() - t0
                with lock:
                    times[kind].append(dt)
                    if not ok:
                        errors.append(f"{kind} {path}: {status}")
            k += users

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=users) as pool:
        list(pool.map(user, range(users)))
    wall = time.perf_counter() - t0
    every = [t for v in times.values() for t in v]
    result = {
        "users": users,
        "requests": len(every),
        "seconds": round(wall, 2),
        "rps": round(len(every) / wall, 1),
        "errors": len(errors),
        "error_samples": errors[:10],
        "latency_ms": {},
    }
    for kind, v in [*sorted(times.items()), ("all", every)]:
        a = np.array(v) * 1000
        result["latency_ms"][kind] = {
            "n": len(a),
            "p50": round(float(np.percentile(a, 50)), 1),
            "p95": round(float(np.percentile(a, 95)), 1),
            "p99": round(float(np.percentile(a, 99)), 1),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--region", default="franklin-oh")
    ap.add_argument("--center", default="39.9612,-82.9988", help="lat,lon inside the region")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--requests", type=int, default=1000)
    args = ap.parse_args(argv)
    lat, lon = (float(v) for v in args.center.split(","))
    result = run(args.url, args.region, (lat, lon), args.users, args.requests)
    print(json.dumps(result, indent=2))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
