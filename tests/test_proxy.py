"""nginx in front of gunicorn, as deploy/nginx/access-atlas.conf and scripts/serve.sh set it up.

The real nginx (Debian's, installed by ``scripts/setup.sh --dev``) and the real app under
gunicorn (``gunicorn.conf.py``, on a unix socket) serve the demo region; nginx listens on a
free 127.0.0.1 port with the configuration ``deploy/nginx_conf.py --local`` writes. Both are
stopped in the fixture's finalizer. Visitors connect from 127.0.0.2, the slow sockets from
127.0.0.3 (two client addresses, as on the internet: the per-address limits apply to each).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_townhall import demo_geodata, linked_geodata
from viewmodel import serving

ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
VISITOR = "127.0.0.2"
SLOW = "127.0.0.3"
SLOW_SOCKETS = 64

pytestmark = [
    pytest.mark.xdist_group("proxy"),
    pytest.mark.skipif(NGINX is None, reason="nginx not installed (scripts/setup.sh --dev does)"),
]


def _conf_module():
    spec = importlib.util.spec_from_file_location("nginx_conf", ROOT / "deploy" / "nginx_conf.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["nginx_conf"] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """nginx on ``port`` in front of gunicorn on ``run/gunicorn.sock``."""

    port: int
    run: Path
    geo: Path
    build: str

    def get(
        self, path: str, *, headers: dict[str, str] | None = None, source: str = VISITOR
    ) -> tuple[http.client.HTTPResponse, bytes]:
        return self.request("GET", path, headers=headers, source=source)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        source: str = VISITOR,
        timeout: float = 30,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=timeout, source_address=(source, 0)
        )
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r, r.read()
        finally:
            conn.close()

    def access_log(self) -> list[dict]:
        text = (self.run / "access-atlas.access.log").read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    geo = linked_geodata(
        demo_geodata(tmp_path_factory), tmp_path_factory.mktemp("proxy-geo") / "geodata"
    )
    run = tmp_path_factory.mktemp("proxy")
    (run / "temp").mkdir()
    sock = run / "gunicorn.sock"
    port = _free_port()
    user = ["--user", "root"] if os.geteuid() == 0 else []
    conf = subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy" / "nginx_conf.py"),
            "--local",
            str(run),
            "--socket",
            str(sock),
            "--listen",
            f"127.0.0.1:{port}",
            *user,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (run / "nginx.conf").write_text(conf)
    env = dict(
        os.environ,
        ACCESS_ATLAS_GEODATA=str(geo),
        ACCESS_ATLAS_REGION="demo",
        ACCESS_ATLAS_BIND=f"unix:{sock}",
        WEB_CONCURRENCY="2",
    )
    gunicorn = Path(sys.executable).with_name("gunicorn")
    logs = [(run / name).open("wb") for name in ("gunicorn.out", "gunicorn.err")]
    app = subprocess.Popen(
        [str(gunicorn), "app:server", "-c", str(ROOT / "gunicorn.conf.py")],
        cwd=ROOT,
        env=env,
        stdout=logs[0],
        stderr=logs[1],
    )
    nginx = subprocess.Popen(
        [NGINX, "-p", str(run), "-c", str(run / "nginx.conf"), "-e", str(run / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = Stack(port=port, run=run, geo=geo, build=os.readlink(geo / "demo").split("/")[-1])
    try:
        deadline = time.monotonic() + 45
        while True:
            if app.poll() is not None or nginx.poll() is not None:
                pytest.fail(
                    "gunicorn or nginx stopped: "
                    + (run / "gunicorn.err").read_text()[-2000:]
                    + (run / "error.log").read_text()[-2000:]
                )
            try:
                if proxy.request("GET", "/healthz", timeout=2)[0].status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the app did not answer through nginx within 45 s")
            time.sleep(0.2)
        yield proxy
    finally:
        _stop(nginx, signal.SIGTERM)
        _stop(app, signal.SIGQUIT)
        for f in logs:
            f.close()


# ---------------------------------------------------------------------------------------
# The configuration
# ---------------------------------------------------------------------------------------


def test_checked_in_site_config_is_the_generated_one_and_nginx_accepts_it(
    tmp_path: Path,
) -> None:
    conf = _conf_module()
    checked_in = (ROOT / "deploy" / "nginx" / "access-atlas.conf").read_text()
    assert checked_in == conf.site_config(conf.site_defaults()), (
        "deploy/nginx/access-atlas.conf is out of date: "
        "python deploy/nginx_conf.py > deploy/nginx/access-atlas.conf"
    )
    assert f"client_max_body_size {serving.MAX_BODY_BYTES // 1024}k;" in checked_in
    assert "proxy_request_buffering on;" in checked_in
    # the same site with a self-signed certificate and paths of the test: nginx -t accepts it
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=atlas.example.org",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    site = conf.Site(
        socket=str(tmp_path / "g.sock"),
        cache=str(tmp_path / "cache"),
        logs=str(tmp_path),
        certificate=str(cert),
        certificate_key=str(key),
    )
    (tmp_path / "site.conf").write_text(conf.site_config(site))
    temps = " ".join(
        f"{k}_temp_path {tmp_path / k};"
        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path / 'nginx.pid'}; events {{}} "
        f"http {{ {temps} include {tmp_path / 'site.conf'}; }}\n"
    )
    r = subprocess.run(
        [
            NGINX,
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-e",
            str(tmp_path / "error.log"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------------------
# Through the proxy
# ---------------------------------------------------------------------------------------


def _once(r: http.client.HTTPResponse, name: str) -> str:
    values = r.headers.get_all(name) or []
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def test_the_proxy_passes_pages_layers_tiles_exports_and_callbacks(stack: Stack) -> None:
    for path in ("/", "/methods", "/?region=demo&cat=pharmacy&mode=walk"):
        r, body = stack.get(path)
        assert r.status == 200 and b"_dash-renderer" in body, path
        assert "script-src 'self' 'sha256-" in _once(r, "Content-Security-Policy")
        assert _once(r, "X-Frame-Options") == "DENY"
        assert _once(r, "X-Content-Type-Options") == "nosniff"
        assert _once(r, "Cache-Control") == "no-cache"
    r, body = stack.get("/healthz")
    assert r.status == 200 and json.loads(body)["regions"]["demo"]["build_id"] == stack.build

    # a versioned layer: the app's year-long cache header, gzip kept, then served by nginx
    layer = f"/atlas/layers/demo/providers.geojson?v={stack.build}"
    gz = {"Accept-Encoding": "gzip"}
    r, body = stack.get(layer, headers=gz)
    assert r.status == 200 and _once(r, "Content-Encoding") == "gzip"
    assert _once(r, "Cache-Control") == "public, max-age=31536000, immutable"
    assert _once(r, "X-Content-Type-Options") == "nosniff"
    r2, body2 = stack.get(layer, headers=gz)
    assert body2 == body and _once(r2, "Cache-Control") == r.headers["Cache-Control"]
    r3, plain = stack.get(layer)
    assert r3.status == 200 and r3.headers.get("Content-Encoding") is None
    assert json.loads(plain)["type"] == "FeatureCollection"
    old, _ = stack.get("/atlas/layers/demo/providers.geojson?v=an-old-build", headers=gz)
    assert _once(old, "Cache-Control") == "no-cache"

    # a tile
    tiles = (stack.geo / "demo").resolve() / "tiles"
    tile = next(iter(sorted(tiles.glob("13/*/*.png"))))
    r, body = stack.get(f"/atlas/tiles/demo/13/{tile.parent.name}/{tile.stem}.png?v={stack.build}")
    assert r.status == 200 and body == tile.read_bytes()
    assert _once(r, "Cache-Control") == "public, max-age=31536000, immutable"

    # an export download
    r, body = stack.get("/atlas/export/demo/csv?cat=pharmacy&mode=walk")
    assert r.status == 200, body[:300]
    assert "attachment" in _once(r, "Content-Disposition")
    assert zipfile.ZipFile(io.BytesIO(body)).namelist()

    # a Dash callback (the export button), a POST read whole by nginx before gunicorn
    inputs = [
        {"id": f"export-{k}", "property": "n_clicks", "value": 1 if k == "csv" else 0}
        for k in ("shp", "gpkg", "geojson", "csv", "png", "pdf", "factsheet")
    ]
    call = {
        "output": "..export-status.children...export-link.data..",
        "outputs": [
            {"id": "export-status", "property": "children"},
            {"id": "export-link", "property": "data"},
        ],
        "inputs": inputs,
        "state": [
            {"id": "share-link", "property": "href", "value": "/?cat=pharmacy&mode=walk"},
            {"id": "export-in-view", "property": "value", "value": []},
            {"id": "map", "property": "bounds", "value": None},
            {"id": "atlas-region", "property": "data", "value": {"region": "demo"}},
        ],
        "changedPropIds": ["export-csv.n_clicks"],
    }
    r, body = stack.request(
        "POST",
        "/_dash-update-component",
        body=json.dumps(call).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 200, body[:300]
    link = json.loads(body)["response"]["export-link"]["data"]
    assert link["name"] == "demo-pharmacy-walk-15min-csv.zip"
    assert _once(r, "Cache-Control") == "no-store"

    # the app's own errors pass through; nginx's own answers carry the same headers
    r, body = stack.get("/atlas/export/demo/nonsense")
    assert r.status == 404 and json.loads(body)["status"] == 404
    big = b"x" * (serving.MAX_BODY_BYTES + 1)
    r, body = stack.request("POST", "/_dash-update-component", body=big)
    assert r.status == 413 and b"too large" in body
    assert _once(r, "X-Frame-Options") == "DENY" and _once(r, "X-Content-Type-Options")

    # nginx served the second layer request from its cache; no full address in its log
    log = stack.access_log()
    hits = [e for e in log if e["path"] == "/atlas/layers/demo/providers.geojson"]
    assert [e["cache"] for e in hits[:2]] == ["MISS", "HIT"]
    assert {e["remote"] for e in log} <= {"127.0.0.0"}
    assert not any("cat=" in json.dumps(e) for e in log)  # no query strings


def _slow_client(stop: threading.Event, opened: list[socket.socket]) -> None:
    """Open the slow sockets, then send a request's headers to each, one byte a second."""
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow\r\nX-Padding: " + b"a" * 200
    for _ in range(SLOW_SOCKETS):
        s = socket.socket()
        s.settimeout(2)
        s.bind((SLOW, 0))
        s.connect(("127.0.0.1", int(opened[0])))  # type: ignore[call-overload]
        opened.append(s)
    i = 0
    while not stop.is_set() and i < len(request):
        for s in opened[1:]:
            with contextlib.suppress(OSError):
                s.send(request[i : i + 1])
        i += 1
        stop.wait(1.0)


def _open(s: socket.socket) -> bool:
    """Whether the server still holds a socket open (it has not closed or reset it)."""
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def test_64_slow_sockets_do_not_stop_ordinary_visitors(stack: Stack) -> None:
    stop = threading.Event()
    opened: list = [stack.port]
    slow = threading.Thread(target=_slow_client, args=(stop, opened), daemon=True)
    slow.start()
    try:
        deadline = time.monotonic() + 10
        while len(opened) < SLOW_SOCKETS + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(opened) == SLOW_SOCKETS + 1, "could not open the slow sockets"
        time.sleep(1.5)  # every slow socket has started its headers
        times: dict[str, list[float]] = {"/healthz": [], "/": []}
        for _ in range(15):  # bounded: 30 requests, a few seconds
            for path, seconds in times.items():
                t0 = time.perf_counter()
                r, _ = stack.get(path)
                seconds.append(time.perf_counter() - t0)
                assert r.status == 200, path
        still_open = sum(_open(s) for s in opened[1:])
    finally:
        stop.set()
        slow.join(timeout=5)
    # the slow sockets were held the whole time, and the visitors did not wait for them
    assert still_open == SLOW_SOCKETS, f"only {still_open} slow sockets were still open"
    for path, seconds in times.items():
        assert _p95(seconds) < 1.0, f"{path}: p95 {_p95(seconds):.2f} s ({seconds})"
    # nginx drops a socket that has not sent its headers within client_header_timeout (10 s)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_open(s) for s in opened[1:]):
        time.sleep(0.5)
    assert not any(_open(s) for s in opened[1:]), "nginx kept a slow socket past its timeout"
    for s in opened[1:]:
        s.close()
