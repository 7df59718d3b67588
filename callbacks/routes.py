"""Flask routes on the Dash server: map layers served by URL, and compression for the rest.

``/atlas/layers/<region>/<name>[/<arg>...].geojson?v=<build>`` serves a layer of a region
bundle (:data:`viewmodel.data.LAYER_BUILDERS`) gzip-compressed, with an ETag and a long cache
lifetime (the ``v`` parameter changes with every build, so a rebuilt bundle gets new URLs).
A layer that cannot be built answers 404 with a one-line JSON reason, never a traceback.

:func:`install_compression` gzips Dash's own JavaScript, CSS and JSON responses (Dash
compresses only with the optional ``flask-compress``); compressed static files are cached by
path and ETag, other compressed bodies (callback answers, pages) by their content.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import flask

from etl._errors import AtlasError
from viewmodel.data import LAYER_BUILDERS, region_data

logger = logging.getLogger(__name__)

LAYER_PREFIX = "/atlas/layers"
STATUS_PATH = "/atlas/status"

#: This worker's warm-up state, set by ``app.warm``: ``warm`` (bool) and ``region``.
WARM_STATE: dict[str, object] = {"warm": False, "region": None}
_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
_MIN_BYTES = 1024
_CACHE_ENTRIES = 128
_MAX_CACHED_BYTES = 512 * 1024
#: gzip level of responses made per request: 3 compresses a page callback's 57 kB in a
#: quarter of level 6's time, for a body 14 % larger (8.7 kB instead of 7.6 kB).
DYNAMIC_GZIP_LEVEL = 3


def layer_url(region: str, name: str, *args: str, build: str = "") -> str:
    """URL of a map layer (``build`` busts caches when the bundle is rebuilt)."""
    path = "/".join([LAYER_PREFIX, region, name, *args]) + ".geojson"
    return f"{path}?v={build}" if build else path


def register_routes(server: flask.Flask, geodata: Callable[[], Path]) -> None:
    """Add the layer route to a Flask server.

    Parameters
    ----------
    server
        ``app.server``.
    geodata
        Returns the folder of region bundles (read per request, so tests may change it).
    """

    @server.route(STATUS_PATH)
    def atlas_status() -> flask.Response:
        """Whether this worker has built its first-view layers (for benchmarks and probes)."""
        body = {"pid": os.getpid(), **WARM_STATE}
        return flask.Response(
            flask.json.dumps(body),
            mimetype="application/json",
            headers={"Cache-Control": "no-store"},
        )

    @server.route(f"{LAYER_PREFIX}/<region>/<path:rest>")
    def atlas_layer(region: str, rest: str) -> flask.Response:
        if not rest.endswith(".geojson"):
            return _not_found("layer URLs end in .geojson")
        parts = rest[: -len(".geojson")].split("/")
        if not all(_NAME.match(p) for p in [region, *parts]) or parts[0] not in LAYER_BUILDERS:
            return _not_found("no such layer")
        try:
            payload = region_data(geodata(), region).payload(parts[0], *parts[1:])
        except AtlasError as exc:
            return _not_found(str(exc))
        except TypeError:  # wrong number of path arguments for this layer
            return _not_found("no such layer")
        etag = f'"{payload.etag}"'
        headers = {
            "ETag": etag,
            "Cache-Control": "public, max-age=86400" if flask.request.args.get("v") else "no-cache",
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        if etag in flask.request.headers.get("If-None-Match", ""):
            return flask.Response(status=304, headers=headers)
        if "gzip" in flask.request.headers.get("Accept-Encoding", ""):
            body = payload.body
            headers["Content-Encoding"] = "gzip"
        else:
            body = gzip.decompress(payload.body)
        return flask.Response(body, mimetype="application/geo+json", headers=headers)


def _not_found(reason: str) -> flask.Response:
    return flask.Response(
        flask.json.dumps({"error": reason}), status=404, mimetype="application/json"
    )


class _GzipCache:
    """Compressed bodies, keyed by path and ETag or by a hash of the content (LRU)."""

    def __init__(self, size: int = _CACHE_ENTRIES) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], make: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        body = make()
        with self._lock:
            self._data[key] = body
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return body


def install_compression(server: flask.Flask) -> None:
    """Gzip compressible responses of ``server`` for clients that accept it."""
    cache = _GzipCache()

    @server.after_request
    def _compress(response: flask.Response) -> flask.Response:
        if (
            response.status_code != 200
            or "gzip" not in flask.request.headers.get("Accept-Encoding", "")
            or "Content-Encoding" in response.headers
            or not (response.mimetype or "").startswith(_COMPRESSIBLE)
        ):
            return response
        response.direct_passthrough = False
        data = response.get_data()
        if len(data) < _MIN_BYTES:
            return response
        etag = response.headers.get("ETag", "")
        path = flask.request.path
        # Fingerprinted component suites never change under one path; assets carry an ETag.
        static = path.startswith("/_dash-component-suites/") or (
            path.startswith("/assets/") and etag
        )
        if static:
            body = cache.get((flask.request.path, etag), lambda: gzip.compress(data, 6, mtime=0))
        elif len(data) <= _MAX_CACHED_BYTES:
            # Callback answers and pages repeat (every first visit asks for the default
            # view): keyed by their content, a repeat costs a hash, not a compression.
            key = ("", hashlib.blake2b(data, digest_size=16).hexdigest())
            body = cache.get(key, lambda: gzip.compress(data, DYNAMIC_GZIP_LEVEL, mtime=0))
        else:
            body = gzip.compress(data, DYNAMIC_GZIP_LEVEL, mtime=0)
        response.set_data(body)
        response.headers["Content-Encoding"] = "gzip"
        response.headers["Content-Length"] = str(len(body))
        vary = response.headers.get("Vary")
        response.headers["Vary"] = f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"
        return response
