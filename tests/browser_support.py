"""What the browser tests share: the Chromium launch, the demo region built with the CLI and
gunicorn serving it on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_demo(root: Path) -> Path:
    """Build the demo region with the real CLI under ``root``; return its geodata folder.

    The config is copied into ``root/configs`` so its raw inputs are generated under
    ``root/raw`` and parallel test processes never share them.
    """
    (root / "configs").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "geodata" / "configs" / "demo.yaml", root / "configs" / "demo.yaml")
    cli = Path(sys.executable).with_name("access-atlas")
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "etl"]
    res = subprocess.run(
        [*cmd, "build", str(root / "configs" / "demo.yaml"), "--geodata-dir", str(root / "geo")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return root / "geo"


#: The editor token of the servers the browser tests start (they type it to save).
EDITOR_TOKEN = "browser-editor-token"


@contextmanager
def serve(geodata: Path, *, ready_path: str = "/") -> Iterator[str]:
    """Run gunicorn (two workers) on the bundles in ``geodata``; yield its base URL."""
    port = free_port()
    env = dict(os.environ, ACCESS_ATLAS_GEODATA=str(geodata), ACCESS_ATLAS_REGION="demo")
    env.setdefault("ACCESS_ATLAS_EDITOR_TOKEN", EDITOR_TOKEN)  # saving is for editors
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = (geodata.parent / f"gunicorn-{port}.log").open("wb")
    proc = subprocess.Popen(
        [str(gunicorn), "app:server", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--timeout", "60"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(url + ready_path, timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"gunicorn did not start; see {log.name}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright, or skip where it is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def cancelled_tile(url: str, failure: str | None) -> bool:
    """Whether a failed request is a map tile Leaflet cancelled on purpose.

    Leaflet aborts the tiles still loading when the map zooms or flies elsewhere; Chromium
    reports those as ``net::ERR_ABORTED``. They are the map working, not an error.
    """
    return "/atlas/tiles/" in url and "ERR_ABORTED" in (failure or "")


def guarded_page(context: Any) -> Any:
    """A page that blocks (and records) every request leaving 127.0.0.1 and records errors.

    The page gains ``errors`` (page errors, console errors other than the 404 of an empty
    tile, failed requests to the app other than tiles Leaflet cancelled), ``outside`` (blocked
    requests) and ``tiles`` (status and content type of each tile response).
    """
    pg = context.new_page()
    pg.errors, pg.outside, pg.tiles = [], [], []

    def guard(route: Any) -> None:
        if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            pg.outside.append(route.request.url)
            route.abort()

    def console(message: Any) -> None:
        text, where = message.text, (message.location or {}).get("url", "")
        if message.type != "error":
            return
        if text.startswith("Failed to load resource: net::"):
            return  # a network failure: recorded (or not) by failed() and guard() below
        if "status of 404" in text and "/atlas/tiles/" in where:
            return  # an empty tile is skipped on purpose
        pg.errors.append(f"{text} ({where})" if where else text)

    def response(resp: Any) -> None:
        if "/atlas/tiles/" in resp.url:
            pg.tiles.append((resp.status, resp.headers.get("content-type", "")))

    def failed(request: Any) -> None:
        if request.url.startswith("http://127.0.0.1") and not cancelled_tile(
            request.url, request.failure
        ):
            pg.errors.append(f"{request.url}: {request.failure}")

    pg.route("**/*", guard)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", console)
    pg.on("response", response)
    pg.on("requestfailed", failed)
    return pg


# -- fixtures: each browser test module imports them, so it gets its own demo bundle and
# server (the town-hall tests write saved views into theirs) -------------------------------


@pytest.fixture(scope="module")
def geodata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo region built with the CLI into a temporary folder."""
    return build_demo(tmp_path_factory.mktemp("atlas-browser"))


@pytest.fixture(scope="module")
def server(geodata: Path) -> Iterator[str]:
    """gunicorn serving the demo bundle on 127.0.0.1 with two workers."""
    with serve(geodata, ready_path="/healthz") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (skipped where it is missing)."""
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    """A fresh page under the app's own CSP (see :func:`guarded_page`); downloads allowed.

    Waits must be given as functions (``"() => ..."``): Playwright evaluates plain
    expressions with eval, which the CSP forbids.
    """
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    pg = guarded_page(context)
    yield pg
    context.close()
