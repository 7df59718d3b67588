"""Benchmark the map against gunicorn on 127.0.0.1 with the Franklin County bundle.

Run: ``.venv/bin/python benchmarks/bench_app.py [--geodata DIR] [--region franklin-oh]``

Without ``--geodata`` it builds Franklin County from ../shared into a temporary folder first
(skips with a message where ../shared is absent). It then starts gunicorn (2 workers) on a
free 127.0.0.1 port and measures, in headless Chromium (Debian's /usr/bin/chromium):

* **first load**: bytes transferred (every response, headers included, empty cache) and
  time to interactive: from navigation start until the first view's layers (desert, sites,
  streets) are drawn and the controls respond; the very first load after start-up (cold
  caches) is reported apart from the median of later fresh-cache loads;
* **change latency**: from the key press or click to the redrawn map (the layer's style pass
  done and two animation frames painted), p50/p95, for the threshold by car and on foot, a
  care-site filter and a layer switch;
* **load**: ``benchmarks/loadtest.py`` in a second process, 50 concurrent users on the main
  callbacks and the desert layer URL, a fixed number of requests.

Targets (issue 5): first load < 2 MB and < 2 s; change p95 < 150 ms; zero errors at 50 users
with 2 workers. Results are printed and written to ``artifacts/bench_app.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "franklin-oh"
CONFIG = ROOT / "geodata" / "configs" / "franklin-oh.yaml"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
READY = "window.atlas && atlas.drawn.surface && atlas.drawn.sites && atlas.drawn.streets"
BIN = Path(sys.executable).parent

# Press a key or click, then wait for the layer's next style pass and two painted frames.
MEASURE_JS = """async ([layer, before]) => {
    const t0 = window.__atlasT0;
    const until = performance.now() + 5000;
    while (!(atlas.drawn[layer] && atlas.drawn[layer].n > before)) {
        if (performance.now() > until) { return -1; }
        await new Promise(r => setTimeout(r, 1));
    }
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    return performance.now() - t0;
}"""
STAMP_JS = """() => {
    if (window.__atlasStamp) { return; }
    window.__atlasStamp = true;
    for (const type of ['keydown', 'pointerdown', 'mousedown']) {
        document.addEventListener(type, () => { window.__atlasT0 = performance.now(); }, true);
    }
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_franklin(target: Path) -> Path:
    cmd = [str(BIN / "access-atlas"), "build", str(CONFIG), "--geodata-dir", str(target)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=900)
    return target


def start_server(
    geodata: Path, region: str, workers: int, log: Path
) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, ACCESS_ATLAS_GEODATA=str(geodata), ACCESS_ATLAS_REGION=region)
    out = log.open("wb")
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "app:server",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    msg = f"gunicorn did not start; see {log}"
    raise SystemExit(msg)


def wait_warm(url: str, workers: int, *, timeout_s: float = 180.0) -> float:
    """Wait until every worker reports its caches built (``/atlas/status``); seconds waited."""
    t0 = time.perf_counter()
    warm: set[int] = set()
    while time.perf_counter() - t0 < timeout_s:
        with urllib.request.urlopen(url + "/atlas/status", timeout=10) as r:
            status = json.loads(r.read())
        if status.get("warm"):
            warm.add(status["pid"])
        if len(warm) >= workers:
            break
        time.sleep(0.2)
    return time.perf_counter() - t0


def first_load(browser: Any, url: str) -> dict[str, Any]:
    """One load with an empty cache: bytes by kind and time to interactive."""
    # bypass_csp: Playwright evaluates its wait_for_function strings in the page, which the
    # app's CSP (no 'unsafe-eval') forbids; the CSP is tested in tests/test_serving.py.
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=True)
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    sizes: dict[str, int] = {}
    kinds: dict[str, str] = {}
    outside: list[str] = []

    def on_response(ev: dict[str, Any]) -> None:
        kinds[ev["requestId"]] = ev["type"]
        if not ev["response"]["url"].startswith(("http://127.0.0.1", "data:")):
            outside.append(ev["response"]["url"])

    cdp.on("Network.responseReceived", on_response)
    cdp.on(
        "Network.loadingFinished",
        lambda ev: sizes.__setitem__(ev["requestId"], int(ev["encodedDataLength"])),
    )
    page.goto(url + "/")
    page.wait_for_function(READY, timeout=60_000)
    page.wait_for_selector("#threshold-slider [role=slider]")
    tti = page.evaluate(
        "Math.max(atlas.drawn.surface.first, atlas.drawn.sites.first, atlas.drawn.streets.first)"
    )
    page.wait_for_timeout(1500)  # late requests (labels, lazy chunks) count as first load
    by_kind: dict[str, int] = {}
    for rid, n in sizes.items():
        k = kinds.get(rid, "Other")
        by_kind[k] = by_kind.get(k, 0) + n
    ctx.close()
    return {
        "bytes": sum(sizes.values()),
        "requests": len(sizes),
        "by_kind": by_kind,
        "tti_ms": round(tti, 1),
        "outside_requests": outside,
    }


def change_latency(browser: Any, url: str, query: str, n: int) -> dict[str, list[float]]:
    """Latency of threshold, filter and layer changes in one page."""
    # bypass_csp: Playwright evaluates its wait_for_function strings in the page, which the
    # app's CSP (no 'unsafe-eval') forbids; the CSP is tested in tests/test_serving.py.
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=True)
    page = ctx.new_page()
    page.goto(url + "/" + query)
    page.wait_for_function(READY, timeout=60_000)
    page.wait_for_timeout(800)
    page.evaluate(STAMP_JS)
    out: dict[str, list[float]] = {"threshold": [], "filter": [], "layer": []}
    thumb = page.locator("#threshold-slider [role=slider]")
    thumb.focus()
    for i in range(n):
        before = page.evaluate("atlas.drawn.surface.n")
        thumb.press("ArrowLeft" if (i // 5) % 2 == 0 else "ArrowRight")
        out["threshold"].append(page.evaluate(MEASURE_JS, ["surface", before]))
    labels = page.locator("#sites-checklist label")
    for i in range(max(n // 2, 6)):
        before = page.evaluate("atlas.drawn.sites.n")
        labels.nth(i % 2).click()
        out["filter"].append(page.evaluate(MEASURE_JS, ["sites", before]))
    desert = page.get_by_label("Desert (beyond the threshold)")
    for _ in range(max(n // 2, 6)):
        before = page.evaluate("atlas.drawn.surface.n")
        desert.click()
        out["layer"].append(page.evaluate(MEASURE_JS, ["surface", before]))
    ctx.close()
    return out


def pct(values: list[float]) -> dict[str, float]:
    a = np.array([v for v in values if v >= 0])
    return {
        "n": len(values),
        "missed": int(sum(v < 0 for v in values)),
        "p50": round(float(np.percentile(a, 50)), 1),
        "p95": round(float(np.percentile(a, 95)), 1),
        "max": round(float(a.max()), 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--geodata", type=Path, help="folder holding the built bundle")
    ap.add_argument("--region", default="franklin-oh")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--loads", type=int, default=5, help="fresh-cache loads to time")
    ap.add_argument("--changes", type=int, default=30, help="threshold changes to time")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--requests", type=int, default=1000)
    args = ap.parse_args(argv)
    if args.geodata is None and not SHARED.is_dir():
        print(f"skipped: real data not found at {SHARED} (the project's ../shared folder)")
        return 0
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        geodata = args.geodata
        if geodata is None:
            t0 = time.perf_counter()
            geodata = build_franklin(tmp_path / "geo")
            print(f"built {args.region} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        proc, url = start_server(geodata, args.region, args.workers, tmp_path / "gunicorn.log")
        results: dict[str, Any] = {
            "url": url,
            "region": args.region,
            "workers": args.workers,
            "load_average_before": os.getloadavg(),
        }
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                results["first_load_cold"] = first_load(browser, url)
                results["warm_up_s"] = round(wait_warm(url, args.workers), 1)
                loads = [first_load(browser, url) for _ in range(args.loads)]
                results["first_load"] = {
                    "bytes_median": int(statistics.median(r["bytes"] for r in loads)),
                    "tti_ms_median": round(statistics.median(r["tti_ms"] for r in loads), 1),
                    "tti_ms_max": max(r["tti_ms"] for r in loads),
                    "requests": loads[0]["requests"],
                    "by_kind": loads[0]["by_kind"],
                    "outside_requests": sorted({u for r in loads for u in r["outside_requests"]}),
                }
                drive = change_latency(browser, url, "", args.changes)
                walk = change_latency(browser, url, "?cat=buprenorphine&mode=walk", args.changes)
                results["change_ms"] = {
                    "threshold_drive": pct(drive["threshold"]),
                    "threshold_walk": pct(walk["threshold"]),
                    "site_filter": pct(drive["filter"] + walk["filter"]),
                    "layer_switch": pct(drive["layer"] + walk["layer"]),
                }
                browser.close()
            lt = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "benchmarks" / "loadtest.py"),
                    "--url",
                    url,
                    "--region",
                    args.region,
                    "--users",
                    str(args.users),
                    "--requests",
                    str(args.requests),
                ],
                capture_output=True,
                text=True,
                timeout=1800,
            )
            results["load_test"] = (
                json.loads(lt.stdout) if lt.stdout.strip() else {"error": lt.stderr}
            )
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    results["load_average_after"] = os.getloadavg()
    out = ROOT / "artifacts" / "bench_app.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    fl, ch, lt = results["first_load"], results["change_ms"], results["load_test"]
    cold = results["first_load_cold"]
    print(
        "load average before/after:",
        results["load_average_before"],
        "/",
        results["load_average_after"],
    )
    print(f"workers warm {results['warm_up_s']} s after the first (cold) load")
    print(
        f"first load, cold server: {cold['bytes'] / 1e6:.2f} MB, "
        f"interactive in {cold['tti_ms']:.0f} ms"
    )
    print(
        f"first load, median of {args.loads}: {fl['bytes_median'] / 1e6:.2f} MB in "
        f"{fl['requests']} requests, interactive in {fl['tti_ms_median']:.0f} ms "
        f"(max {fl['tti_ms_max']:.0f} ms); requests leaving 127.0.0.1: "
        f"{len(fl['outside_requests'])}"
    )
    for k, v in ch.items():
        line = f"change {k:16s} p50 {v['p50']:6.1f} ms  p95 {v['p95']:6.1f} ms"
        print(f"{line}  (n={v['n']}, missed {v['missed']})")
    if "latency_ms" in lt:
        a = lt["latency_ms"]["all"]
        print(
            f"load test: {lt['users']} users, {lt['requests']} requests in {lt['seconds']} s "
            f"({lt['rps']} req/s), errors {lt['errors']}, p50 {a['p50']} ms, p95 {a['p95']} ms, "
            f"p99 {a['p99']} ms"
        )
        for kind, v in lt["latency_ms"].items():
            line = f"  {kind:8s} n={v['n']:4d} p50 {v['p50']:7.1f} ms  p95 {v['p95']:7.1f} ms"
            print(f"{line}  p99 {v['p99']:7.1f} ms")
    else:
        print(f"load test failed: {lt}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
