"""Access Atlas: the Dash app. ``gunicorn app:server`` serves it.

The region bundles come from ``$ACCESS_ATLAS_GEODATA`` (default ``geodata/``) and the region
shown first from ``$ACCESS_ATLAS_REGION`` (default: the built-in ``demo``). The page is
rendered from the URL (``/?region=…&cat=…``, ``/methods``), so every view can be shared.
Map layers are served as compressed GeoJSON under ``/atlas/layers/``. With
``$ACCESS_ATLAS_WARM`` not ``0``, the default region's first-view layers are built in a
background thread at start-up, so the first visitor does not wait for them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import flask
from dash import Dash, Input, Output, clientside_callback, dcc, html

import callbacks.map as map_callbacks
import callbacks.reentry  # re-entry: the release-day panel's callbacks
import callbacks.scenario  # noqa: F401  (scenario: the What-if panel's callbacks)
import callbacks.townhall as townhall_callbacks  # town hall: /present and saved views
from callbacks.downloads import register_download_routes  # town hall: tiles and exports
from callbacks.routes import WARM_STATE, install_compression, register_routes
from layouts.map_page import URL
from viewmodel import serving

ROOT = Path(__file__).resolve().parent
GEODATA = Path(os.environ.get("ACCESS_ATLAS_GEODATA", ROOT / "geodata"))
DEFAULT_REGION = os.environ.get("ACCESS_ATLAS_REGION", "demo")
#: A store the page-title callback writes to (Dash needs an output).
TITLE_SINK = "atlas-title-sink"

logger = logging.getLogger(__name__)

map_callbacks.configure(geodata=GEODATA, default_region=DEFAULT_REGION)

app = Dash(
    __name__,
    title="Access Atlas",
    assets_folder=str(ROOT / "assets"),
    suppress_callback_exceptions=True,
    update_title=None,
)
server = app.server
# Screen readers read the page in its language; every page says it is English.
app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)

#: Pages of the app (the path's end) and the title a browser tab shows for each.
PAGE_TITLES: dict[str, str] = {
    "": "Map · Access Atlas",
    "/methods": "Methods and sources · Access Atlas",
    "/present": "Town-hall mode · Access Atlas",
}
#: Paths served by Dash, the layer and export routes and the health check.
_SERVED_PREFIXES: tuple[str, ...] = ("/_dash-", "/_reload-hash", "/_favicon", "/assets/",
                                     "/atlas/", "/healthz")  # fmt: skip


def page_of(path: str) -> str | None:
    """The page a path shows (a key of :data:`PAGE_TITLES`), or None for no page."""
    path = path.rstrip("/")
    for key in sorted(PAGE_TITLES, key=len, reverse=True):
        if (key and path.endswith(key)) or (not key and path == ""):
            return key
    return None


@server.before_request
def _not_found() -> flask.Response | None:
    """A real 404 page for an address that is no page (not the map under a wrong name)."""
    path = flask.request.path
    if flask.request.method not in ("GET", "HEAD") or path.startswith(_SERVED_PREFIXES):
        return None
    if page_of(path) is None:
        return serving.error_response(404)
    return None


register_routes(server, map_callbacks.geodata_dir)
# --- town hall: offline tiles, export downloads, /present (callbacks/townhall.py) ---
map_callbacks.render = townhall_callbacks.with_present(map_callbacks.render)
register_download_routes(server, map_callbacks.geodata_dir)
# --- end town hall ---
install_compression(server)
serving.install(
    server,
    geodata_dir=map_callbacks.geodata_dir,
    frame_ancestors=os.environ.get("ACCESS_ATLAS_FRAME_ANCESTORS", "").split(),
)


def serve_layout() -> html.Div:
    """The page shell, with the page itself when the request says which one.

    The Dash renderer fetches the layout from the page it is on, so the ``Referer`` names
    the URL (path and query) to render: the page comes with the layout, saving a round
    trip. Without it, the page callback renders it from ``dcc.Location``.
    """
    page, key = html.P("Loading the map…", className="atlas-loading"), None
    ref = flask.request.referrer if flask.has_request_context() else None
    if ref:
        url = urlparse(ref)
        if url.netloc == flask.request.host:
            key = map_callbacks.page_key(url.path, url.query)
            page = map_callbacks.render(url.path, url.query)
    return html.Div(
        [
            dcc.Location(id=URL, refresh=False),
            html.A("Skip to the map", href="#main", className="atlas-skip"),
            html.Div(page, id=map_callbacks.PAGE),
            dcc.Store(id=map_callbacks.RENDERED, data=key),
            dcc.Store(id=TITLE_SINK),
        ]
    )


app.layout = serve_layout

# Each page its own tab title (screen readers announce it; tabs and history tell them apart).
_TITLE_JS = r"""(path) => {
    const titles = __TITLES__;
    const p = (path || "/").replace(/\/+$/, "");
    const key = Object.keys(titles).sort((a, b) => b.length - a.length)
        .find((k) => (k ? p.endsWith(k) : p === ""));
    document.title = titles[key === undefined ? "" : key];
    return document.title;
}"""
clientside_callback(
    _TITLE_JS.replace("__TITLES__", json.dumps(PAGE_TITLES)),
    Output(TITLE_SINK, "data"),
    Input(URL, "pathname"),
)

# Dash sets itself up on a worker's first request and marks that done before it is: with
# threaded workers, requests racing the first one find no registered scripts and answer 500.
# Set up now, once, before any request (in gunicorn's master when the app is preloaded).
with server.test_request_context("/"):
    app._setup_server()


def warm(region: str | None = None) -> None:
    """Build the first-view layers of a region now (errors are logged, never raised)."""
    from etl.bundle.regions import list_regions
    from viewmodel.data import map_options, region_data
    from viewmodel.lookup import reference_index
    from viewmodel.state import default_state

    try:
        regions = list_regions(GEODATA)
        region = region or map_callbacks.default_region(regions)
        rd = region_data(GEODATA, region)
        state = default_state(region, map_options(rd, regions))
        map_callbacks.page_model(rd, state, map_options(rd, regions), default=region)
        for name, args in (
            ("providers", ()),
            ("region", ()),
            ("streets", ("major",)),
            ("bands", (state.category, state.mode)),
            ("labels", ()),
        ):
            rd.payload(name, *args)
        WARM_STATE.update(region=region, layers=True)
        reference_index(rd)
        WARM_STATE.update(warm=True)
    except Exception as exc:  # a missing bundle shows as a page; nothing to warm
        logger.info("warm-up of %s skipped: %s", region, exc)
        WARM_STATE.update(warm=True, error=str(exc))


if os.environ.get("ACCESS_ATLAS_WARM", "1") != "0":
    threading.Thread(target=warm, name="atlas-warm", daemon=True).start()


if __name__ == "__main__":  # pragma: no cover
    app.run(debug=False, host="127.0.0.1", port=int(os.environ.get("PORT", "8050")))
