"""Access Atlas: the Dash app. ``gunicorn app:server`` serves it.

The region bundles come from ``$ACCESS_ATLAS_GEODATA`` (default ``geodata/``) and the region
shown first from ``$ACCESS_ATLAS_REGION`` (default: the built-in ``demo``). The page is
rendered from the URL (``/?region=…&cat=…``, ``/methods``), so every view can be shared.
Map layers are served as compressed GeoJSON under ``/atlas/layers/``. With
``$ACCESS_ATLAS_WARM`` not ``0``, the default region's first-view layers are built in a
background thread at start-up, so the first visitor does not wait for them.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import flask
from dash import Dash, dcc, html

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
        ]
    )


app.layout = serve_layout

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
