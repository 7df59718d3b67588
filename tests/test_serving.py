"""Serving in production: health check, headers, plain errors, JSON logs, faults and fuzzing.

The first tests install :mod:`viewmodel.serving` on a bare Flask server (no Dash app, so nothing is
shared with the real app's module). The rest run the real app under gunicorn with
``gunicorn.conf.py`` (2 workers, 127.0.0.1, a free port) on the tiny Gridton region built in
a fixture: response headers, the page in headless Chromium under the Content Security Policy,
hypothesis fuzzing of the callback endpoint and the layer and export URLs, a bundle rebuilt
while clients keep requesting, and a worker killed with SIGKILL while requests are in flight.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import logging
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import flask
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.config import load_config
from etl.pipeline import run_build
from tests.region_fixture import write_region
from viewmodel import serving

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
TRACEBACK = re.compile(rb"Traceback|File \"|line \d+, in |/site-packages/|/work/")
GENERIC_500 = {"error": serving._ERROR_TEXT[500], "status": 500}


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Gridton built in process: (config, geodata folder)."""
    root = tmp_path_factory.mktemp("serving")
    cfg = write_region(root / "inputs")
    geo = root / "geo"
    run_build(load_config(cfg), geo, progress=False)
    return cfg, geo


def _copy_geo(geo: Path, dest: Path) -> Path:
    shutil.copytree(geo, dest, symlinks=True)
    return dest


# ---------------------------------------------------------------------------------------
# The health check
# ---------------------------------------------------------------------------------------


def test_health_ok_names_each_region_and_its_build(region: tuple[Path, Path]) -> None:
    _, geo = region
    status, body = serving.check_health(geo)
    build = os.readlink(geo / "gridton").split("/")[-1]
    assert status == 200
    assert body["status"] == "ok"
    assert body["regions"]["gridton"]["build_id"] == build
    assert body["regions"]["gridton"]["layers"] == 8
    # configs/ and raw/ folders beside the bundles are not bundles
    (geo / "configs").mkdir(exist_ok=True)
    assert serving.bundle_links(geo) == [geo / "gridton"]


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("no bundle", "no region bundle in <geodata>"),
        ("dangling link", "points to a build that does not exist"),
        ("corrupt manifest", "the manifest is corrupt"),
        ("truncated layer", "layer 'areas': areas.parquet: truncated"),
        ("missing network", "network/walk.npz: walk.npz: unreadable"),
    ],
)
def test_health_503_says_why_without_server_paths(
    region: tuple[Path, Path], tmp_path: Path, breakage: str, reason: str
) -> None:
    geo = _copy_geo(region[1], tmp_path / "geo")
    build = (geo / "gridton").resolve()
    if breakage == "no bundle":
        (geo / "gridton").unlink()
    elif breakage == "dangling link":
        shutil.rmtree(build)
    elif breakage == "corrupt manifest":
        (build / "manifest.json").write_text('{"format_version": 1, "lay')
    elif breakage == "truncated layer":
        data = (build / "layers" / "areas.parquet").read_bytes()
        (build / "layers" / "areas.parquet").write_bytes(data[: len(data) // 2])
    elif breakage == "missing network":
        (build / "network" / "walk.npz").unlink()
    status, body = serving.check_health(geo)
    assert status == 503
    assert body["status"] == "error"
    assert reason in body["reason"], body
    text = json.dumps(body)
    assert str(tmp_path) not in text and "Traceback" not in text


# ---------------------------------------------------------------------------------------
# A bare Flask server with serving installed
# ---------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html><html><head><title>t</title></head><body>
<!--[if IE]><script>alert("old browser");</script><![endif]-->
<script id="_dash-config" type="application/json">{"a": 1}</script>
<script src="/assets/x.js"></script>
<script id="_dash-renderer" type="application/javascript">RENDERER</script>
</body></html>""".replace("RENDERER", "var renderer = new DashRenderer();")


@pytest.fixture
def bare(region: tuple[Path, Path]) -> flask.Flask:
    server = flask.Flask("bare")

    @server.route("/")
    def index() -> str:
        return PAGE

    @server.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail /srv/atlas/config.yaml")

    @server.route("/_dash-update-component", methods=["POST"])
    def update() -> flask.Response:
        return flask.jsonify(flask.request.get_json())

    @server.route("/atlas/layers/<region>/<path:rest>")
    def layer(region: str, rest: str) -> flask.Response:
        return flask.Response(b"{}", mimetype="application/geo+json")

    serving.install(server, geodata_dir=region[1])
    return server


def test_page_gets_a_csp_allowing_exactly_its_inline_scripts(bare: flask.Flask) -> None:
    r = bare.test_client().get("/")
    csp = r.headers["Content-Security-Policy"]
    renderer = hashlib.sha256(b"var renderer = new DashRenderer();").digest()
    token = f"'sha256-{base64.b64encode(renderer).decode()}'"
    script_src = next(d for d in csp.split("; ") if d.startswith("script-src"))
    # the renderer bootstrap only: not the JSON config, not the script inside a comment
    assert script_src == f"script-src 'self' {token}"
    assert "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "img-src 'self' data: blob: https://tile.openstreetmap.org" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert r.headers["Cache-Control"] == "no-cache"


def test_every_response_gets_the_security_headers(bare: flask.Flask) -> None:
    c = bare.test_client()
    for r in (c.get("/healthz"), c.get("/atlas/layers/gridton/providers.geojson"), c.get("/x")):
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


def test_frame_ancestors_can_name_the_coalition_site(region: tuple[Path, Path]) -> None:
    server = flask.Flask("framed")
    server.add_url_rule("/", "index", lambda: PAGE)
    serving.install(server, geodata_dir=region[1], frame_ancestors=["https://coalition.example"])
    r = server.test_client().get("/")
    assert "frame-ancestors https://coalition.example" in r.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in r.headers
    r = server.test_client().get("/healthz")
    assert "frame-ancestors https://coalition.example" in r.headers["Content-Security-Policy"]


def test_cache_headers(region: tuple[Path, Path], bare: flask.Flask) -> None:
    _, geo = region
    build = os.readlink(geo / "gridton").split("/")[-1]
    year = "public, max-age=31536000, immutable"

    def cc(path: str, **args: str) -> str | None:
        return serving.cache_control(path, args, method="GET", status=200, geodata_dir=geo)

    assert cc("/_dash-component-suites/dash/deps/react@18.v4_4_1m1795458130.3.1.min.js") == year
    assert cc("/_dash-component-suites/dash/deps/react@18.3.1.min.js") == "no-cache"
    assert cc("/assets/atlas.js", m="1795459752.49") == year
    assert cc("/assets/atlas.js") == "no-cache"
    assert cc("/atlas/layers/gridton/providers.geojson", v=build) == year
    assert cc("/atlas/layers/gridton/providers.geojson", v="20200101T000000-old") == "no-cache"
    assert cc("/atlas/layers/../providers.geojson", v=build) == "no-cache"
    assert cc("/_dash-layout") == "no-cache"
    assert cc("/healthz") == "no-store"
    c = bare.test_client()
    assert c.get(f"/atlas/layers/gridton/areas.geojson?v={build}").headers["Cache-Control"] == year
    assert c.get("/healthz").headers["Cache-Control"] == "no-store"


def test_errors_are_plain_pages_and_the_traceback_goes_to_the_log(
    bare: flask.Flask, caplog: pytest.LogCaptureFixture
) -> None:
    c = bare.test_client()
    with caplog.at_level(logging.ERROR, logger="viewmodel.serving"):
        r = c.get("/boom")
    assert r.status_code == 500
    assert r.mimetype == "text/html"
    assert b"Something went wrong" in r.data
    assert not TRACEBACK.search(r.data) and b"secret detail" not in r.data
    assert "secret detail" in caplog.text and "Traceback" in caplog.text
    r = c.get("/no/such/page/anywhere")
    assert r.status_code == 404 and b"There is no page at this address" in r.data
    r = c.get("/atlas/nothing")
    assert r.status_code == 404 and r.get_json() == {
        "error": serving._ERROR_TEXT[404],
        "status": 404,
    }
    r = c.delete("/")
    assert r.status_code == 405 and not TRACEBACK.search(r.data)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"output": 1, "outputs": [], "inputs": []}',
        b'{"output": "a.children", "inputs": []}',
        b'{"output": "a.children", "outputs": {}, "inputs": {}}',
    ],
)
def test_malformed_callback_requests_get_400(bare: flask.Flask, body: bytes) -> None:
    r = bare.test_client().post(
        "/_dash-update-component", data=body, content_type="application/json"
    )
    assert r.status_code == 400
    assert r.get_json()["status"] == 400


def test_too_large_a_body_gets_413(bare: flask.Flask) -> None:
    big = json.dumps({"output": "a.b", "outputs": {}, "inputs": ["x" * serving.MAX_BODY_BYTES]})
    r = bare.test_client().post(
        "/_dash-update-component", data=big, content_type="application/json"
    )
    assert r.status_code == 413 and not TRACEBACK.search(r.data)


def test_json_access_log_truncates_addresses_and_hides_look_ups() -> None:
    atoms = {
        "h": "203.0.113.77",
        "m": "GET",
        "U": "/",
        "q": "region=franklin-oh&q=240+Parsons+Ave&lat=39.95&lon=-82.98&cat=methadone",
        "s": "200",
        "B": "5364",
        "D": "12345",
        "f": "https://atlas.example/?q=12+Main+St",
        "a": 'Mozilla/5.0 \\"quoted\\"',
    }
    record = logging.LogRecord("gunicorn.access", logging.INFO, "", 0, "%(m)s %(U)s", (), None)
    record.args = atoms
    line = json.loads(serving.JsonFormatter().format(record))
    assert line["type"] == "access"
    assert line["remote"] == "203.0.113.0"
    assert line["query"] == "region=franklin-oh&q=-&lat=-&lon=-&cat=methadone"
    assert "Parsons" not in json.dumps(line) and "Main" not in json.dumps(line)
    assert line["status"] == 200 and line["bytes"] == 5364 and line["duration_ms"] == 12.35
    assert line["referer"] == "https://atlas.example/"
    assert line["user_agent"] == 'Mozilla/5.0 "quoted"'
    assert serving.anonymize_ip("2001:db8:1234:5678::1") == "2001:db8:1234::"
    assert serving.anonymize_ip("garbage") == "-"


def test_json_error_log_keeps_the_traceback_for_the_server() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord(
            "viewmodel.serving", logging.ERROR, "", 0, "failed %s", ("x",), sys.exc_info()
        )
    line = json.loads(serving.JsonFormatter().format(record))
    assert line["message"] == "failed x" and line["level"] == "error"
    assert "ValueError: bad" in line["exception"]


def test_gunicorn_conf_freezes_the_master_before_forking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCESS_ATLAS_WARM", "1")  # restored after the test
    monkeypatch.setenv("ACCESS_ATLAS_PRELOAD", "1")
    monkeypatch.setenv("ACCESS_ATLAS_THREADS", "6")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["worker_class"] == "gthread" and conf["threads"] == 6
    assert conf["preload_app"] and os.environ["ACCESS_ATLAS_WARM"] == "0"  # held off in master
    before = gc.get_freeze_count()
    try:
        conf["pre_fork"](None, None)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


# ---------------------------------------------------------------------------------------
# The real app under gunicorn
# ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> set[int]:
    """Worker processes of a gunicorn master."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _app_target(tmp: Path) -> tuple[str, list[str]]:
    """``app:server`` once app.py installs serving; until then a shim that installs it."""
    installs = r"viewmodel\.serving|from viewmodel import .*\bserving"
    if re.search(installs, (ROOT / "app.py").read_text()):
        return "app:server", []
    shim = tmp / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "atlas_entry.py").write_text(
        "import callbacks.map as m\n"
        "from app import server\n"
        "from viewmodel import serving\n"
        "serving.install(server, geodata_dir=m.geodata_dir)\n"
    )
    return "atlas_entry:server", ["--pythonpath", str(shim)]


class Server:
    """A gunicorn master serving the app; its logs go to files."""

    def __init__(self, geo: Path, tmp: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = tmp / "access.log"
        self.error_log = tmp / "error.log"
        target, extra = _app_target(tmp)
        env = dict(
            os.environ,
            ACCESS_ATLAS_GEODATA=str(geo),
            ACCESS_ATLAS_REGION="gridton",
            WEB_CONCURRENCY="2",
            TMPDIR=str(tmp / "tmpdir"),
        )
        (tmp / "tmpdir").mkdir(exist_ok=True)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        bind = ["--bind", f"127.0.0.1:{self.port}"]
        self._out = self.access_log.open("wb")
        self._err = self.error_log.open("wb")
        self.proc = subprocess.Popen(
            [str(gunicorn), target, "-c", str(ROOT / "gunicorn.conf.py"), *extra, *bind],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=self._err,
        )
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"gunicorn did not start: {self.error_log.read_text()[-3000:]}")

    def workers(self) -> set[int]:
        return _children(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # quick shutdown: tests need no grace
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        self._err.close()


@pytest.fixture(scope="module")
def server(region: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(region[1], tmp_path_factory.mktemp("gunicorn"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def deps(server: Server) -> list[dict[str, Any]]:
    return requests.get(server.url + "/_dash-dependencies", timeout=10).json()


def _spec(prop_id: str) -> dict[str, Any]:
    ident, prop = prop_id.rsplit(".", 1)
    return {"id": ident, "property": prop}


def callback_body(dep: dict[str, Any], values: dict[str, Any] | None = None) -> dict[str, Any]:
    """A callback request as the Dash renderer sends it, with ``values`` by property."""
    values = values or {}
    out = dep["output"]
    outputs = (
        [_spec(s) for s in out.strip(".").split("...")] if out.startswith("..") else _spec(out)
    )

    def items(key: str) -> list[dict[str, Any]]:
        return [
            {"id": d["id"], "property": d["property"], "value": values.get(d["property"])}
            for d in dep[key]
        ]

    first = dep["inputs"][0] if dep["inputs"] else None
    return {
        "output": out,
        "outputs": outputs,
        "inputs": items("inputs"),
        "state": items("state"),
        "changedPropIds": [f"{first['id']}.{first['property']}"] if first else [],
    }


def _page_callback(deps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The server callback that renders the page from the URL (input ``pathname``)."""
    for dep in deps:
        if dep.get("clientside_function"):
            continue
        if any(i["property"] == "pathname" for i in dep["inputs"]):
            return dep
    return None


def _build(server: Server) -> str:
    return requests.get(server.url + "/healthz", timeout=5).json()["regions"]["gridton"]["build_id"]


@pytest.mark.xdist_group("serving")
def test_served_app_headers_compression_and_no_debug(server: Server) -> None:
    s = requests.Session()
    r = s.get(server.url + "/", timeout=10)
    assert r.status_code == 200
    assert "script-src 'self' 'sha256-" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    assert '"ui":false' in r.text and ".min.js" in r.text and ".dev.js" not in r.text
    scripts = re.findall(r'src="(/_dash-component-suites/[^"]+)"', r.text)
    js = s.get(server.url + scripts[0], timeout=10)
    assert js.headers["Content-Encoding"] == "gzip"
    assert js.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    build = _build(server)
    layer = s.get(f"{server.url}/atlas/layers/gridton/providers.geojson?v={build}", timeout=10)
    assert layer.status_code == 200 and layer.headers["Content-Encoding"] == "gzip"
    assert layer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert layer.json()["type"] == "FeatureCollection"
    deps = s.get(server.url + "/_dash-dependencies", timeout=10)
    assert deps.headers["Content-Encoding"] == "gzip"  # large JSON is compressed
    # the access log is JSON lines, the error log too
    time.sleep(0.2)
    lines = [json.loads(x) for x in server.access_log.read_text().splitlines() if x.strip()]
    assert any(x.get("path") == "/healthz" and x.get("status") == 200 for x in lines)
    assert all(x["remote"] == "127.0.0.0" for x in lines if x.get("type") == "access")
    for x in server.error_log.read_text().splitlines():
        if x.startswith("{"):
            assert {"time", "level", "logger", "message"} <= set(json.loads(x))


@pytest.mark.xdist_group("serving")
@pytest.mark.browser
def test_page_runs_in_chromium_without_csp_violations(server: Server) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            outside: list[str] = []

            def guard(route: Any) -> None:
                if route.request.url.startswith((server.url, "data:", "blob:")):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", guard)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "console",
                lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.add_init_script(
                "window.__csp = []; document.addEventListener('securitypolicyviolation', "
                "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' "
                "+ e.sourceFile));"
            )
            page.goto(server.url + "/")
            page.wait_for_selector(".leaflet-container", timeout=20_000)
            page.get_by_text("Walking", exact=True).first.click()  # a server callback
            page.wait_for_timeout(1500)
            assert page.locator(".leaflet-container").count() == 1
            assert page.evaluate("window.__csp") == []
            assert errors == []
            assert outside == []
            assert "Gridton" in page.content()
        finally:
            browser.close()


def _junk() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats(allow_nan=False)
        | st.text(max_size=50)
        | st.sampled_from(["../../etc/passwd", "<script>alert(1)</script>", "%00", "' OR 1=1"])
        | st.integers(0, 200_000).map(lambda n: "x" * n)
    )
    return st.recursive(
        scalars,
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=8,
    )


def _assert_clean(r: requests.Response) -> None:
    assert not TRACEBACK.search(r.content), r.content[:500]
    if r.status_code == 500:
        assert r.json() == GENERIC_500


@pytest.mark.xdist_group("serving")
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    derandomize="FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzz_callbacks_never_leak_a_traceback(
    server: Server, deps: list[dict[str, Any]], data: st.DataObject
) -> None:
    server_side = [d for d in deps if not d.get("clientside_function")]
    dep = data.draw(st.sampled_from(server_side))
    props = {d["property"] for d in dep["inputs"] + dep["state"]}
    values = {p: data.draw(_junk(), label=p) for p in sorted(props)}
    how = data.draw(st.sampled_from(["values", "broken structure", "raw bytes"]))
    body = callback_body(dep, values if how == "values" else {})
    if how == "broken structure":
        key = data.draw(st.sampled_from(sorted(body)))
        body[key] = data.draw(_junk(), label="replacement")
    payload = (
        data.draw(st.binary(max_size=300)) if how == "raw bytes" else json.dumps(body).encode()
    )
    r = requests.post(
        server.url + "/_dash-update-component",
        data=payload,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code in (200, 204, 400, 413, 500), r.status_code
    if how != "values":
        assert r.status_code in (200, 204, 400), (how, r.status_code, r.content[:300])
    _assert_clean(r)


@pytest.mark.xdist_group("serving")
@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    segs=st.lists(
        st.sampled_from(
            [
                "..",
                "%2e%2e",
                "gridton",
                "providers",
                "streets",
                "major",
                "etc",
                "passwd",
                "",
                ".builds",
                "manifest.json",
                "%00",
                "a" * 300,
            ]
        )
        | st.text(max_size=12),
        min_size=1,
        max_size=5,
    ),
    query=st.dictionaries(
        st.sampled_from(["v", "format", "layers", "region", "category", "mode", "bbox"]),
        st.text(max_size=20) | st.sampled_from(["../../x", "shp", "gpkg", "geojson", "csv"]),
        max_size=3,
    ),
)
def test_fuzz_layer_and_export_urls(
    server: Server, export_prefixes: list[str], segs: list[str], query: dict[str, str]
) -> None:
    for prefix in ["/atlas/layers", *export_prefixes]:
        url = server.url + prefix + "/" + "/".join(quote(x, safe="%") for x in segs)
        if not url.endswith(".geojson") and len(segs) % 2:
            url += ".geojson"
        r = requests.get(url, params=query, timeout=30)
        assert r.status_code in (200, 304, 400, 404, 405), (url, r.status_code)
        _assert_clean(r)


@pytest.fixture
def export_prefixes(server: Server, region: tuple[Path, Path]) -> Iterator[list[str]]:
    """Export/download routes of the app (none yet is fine); checks no file lands outside."""
    os.environ.setdefault("ACCESS_ATLAS_WARM", "0")
    import app as atlas_app

    prefixes = sorted(
        {
            "/" + r.rule.strip("/").split("<")[0].strip("/")
            for r in atlas_app.server.url_map.iter_rules()
            if re.search(r"export|download", r.rule)
        }
    )
    root = region[1].parent
    before = {p for p in root.rglob("*") if p.is_file()}
    yield prefixes
    after = {p for p in root.rglob("*") if p.is_file()}
    new = sorted(after - before)
    outside = [p for p in new if not re.search(r"export", str(p.relative_to(root)))]
    assert outside == [], f"files written outside an export folder: {outside[:5]}"


class Clients:
    """Threads requesting the page, the health check, a layer and the page callback."""

    def __init__(self, server: Server, deps: list[dict[str, Any]], *, threads: int) -> None:
        self.server = server
        self.results: list[tuple[float, str, int | str]] = []
        self._stop = threading.Event()
        dep = _page_callback(deps)
        self.callback = (
            callback_body(dep, {"pathname": "/", "search": "", "href": server.url + "/"})
            if dep
            else None
        )
        self._threads = [threading.Thread(target=self._run, args=(k,)) for k in range(threads)]

    def _run(self, k: int) -> None:
        s = requests.Session()
        i = k
        while not self._stop.is_set():
            i += 1
            which = i % 4
            t = time.monotonic()
            try:
                if which == 0:
                    r = s.get(self.server.url + "/healthz", timeout=10)
                elif which == 1:
                    r = s.get(self.server.url + "/", timeout=10)
                elif which == 2:
                    r = s.get(
                        self.server.url + "/atlas/layers/gridton/providers.geojson", timeout=10
                    )
                elif self.callback is not None:
                    r = s.post(
                        self.server.url + "/_dash-update-component", json=self.callback, timeout=10
                    )
                else:
                    continue
                outcome: int | str = r.status_code
            except requests.RequestException as exc:
                outcome = type(exc).__name__
                s = requests.Session()
            self.results.append((t, ("healthz", "page", "layer", "callback")[which], outcome))

    def __enter__(self) -> Clients:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)

    def failures(self, since: float = 0.0) -> list[tuple[float, str, int | str]]:
        return [r for r in self.results if r[0] >= since and r[2] not in (200, 204)]


@pytest.mark.xdist_group("serving")
def test_bundle_rebuilt_while_serving_is_picked_up_without_a_failed_request(
    server: Server, deps: list[dict[str, Any]], region: tuple[Path, Path]
) -> None:
    cfg, geo = region
    old = _build(server)
    cli = [sys.executable, "-m", "etl", "build", str(cfg), "--geodata-dir", str(geo)]
    with Clients(server, deps, threads=2) as clients:
        time.sleep(0.3)
        t0 = time.monotonic()
        res = subprocess.run(
            [*cli, "--overwrite", "--no-progress", "-q"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        t1 = time.monotonic()
        new = os.readlink(geo / "gridton").split("/")[-1]
        assert new != old
        # every worker serves the new build: health check, and the page's layer URLs
        seen: set[str] = set()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and seen != {"health", "page"}:
            if _build(server) == new:
                seen.add("health")
            if clients.callback is not None:
                r = requests.post(
                    server.url + "/_dash-update-component", json=clients.callback, timeout=10
                )
                if f"v={new}" in r.text:
                    seen.add("page")
            else:
                seen.add("page")
            time.sleep(0.2)
        time.sleep(0.5)
        print(f"rebuild {t1 - t0:.1f} s, picked up {time.monotonic() - t1:.1f} s later")
    during = [r for r in clients.results if t0 <= r[0] <= t1]
    assert seen == {"health", "page"}
    assert len(during) >= 10, len(during)
    assert clients.failures() == []
    assert {r[1] for r in during} >= {"healthz", "page", "layer"}


@pytest.mark.xdist_group("serving")
def test_worker_killed_mid_request_leaves_the_other_serving(
    server: Server, deps: list[dict[str, Any]]
) -> None:
    before = server.workers()
    assert len(before) == 2
    victim = min(before)
    with Clients(server, deps, threads=4) as clients:
        time.sleep(0.5)
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        time.sleep(2.5)
    after_kill = [r for r in clients.results if r[0] > t_kill]
    late_failures = clients.failures(since=t_kill + 0.5)
    assert len(after_kill) >= 20, len(after_kill)
    assert late_failures == []
    # only requests the dead worker held can fail: at most one per client thread
    assert len(clients.failures()) <= 4
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = server.workers()
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.2)
    assert len(now) == 2 and victim not in now and (now & before)
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
    log = server.error_log.read_text()
    assert f"{victim}" in log and "SIGKILL" in log
