"""Production serving: a health check, security and cache headers, plain error pages, JSON logs.

:func:`install` adds to the Dash app's Flask server:

``/healthz``
    Opens every region bundle in the geodata folder (following its link to the current
    build), reads its manifest and checks that every layer, network and access file it names
    is present and whole (Parquet and ``.npz`` magic bytes). 200 with a JSON summary (region,
    build id, build time, layer count) when all are readable; 503 with a JSON ``reason`` when
    none is built or one is broken. Server paths are never shown: the geodata folder is
    written ``<geodata>``.
Security headers on every response
    A Content-Security-Policy that lets Dash run without ``'unsafe-eval'`` or inline scripts:
    the inline scripts of each HTML page (Dash's renderer bootstrap and any inline clientside
    callback) are allowed by their SHA-256 hash, computed from the page actually sent.
    Styles need ``'unsafe-inline'`` (Leaflet and the Dash components set ``style``
    attributes); images may come from the map tile hosts. Also ``X-Content-Type-Options:
    nosniff``, ``X-Frame-Options: DENY`` with ``frame-ancestors 'none'``, ``Referrer-Policy:
    strict-origin-when-cross-origin`` (tile servers still get the origin they ask for), a
    ``Permissions-Policy`` and ``Cross-Origin-Opener-Policy``.
Cache headers
    One year, ``immutable``, for what is fingerprinted: Dash's component suites
    (``…/name.v4_4_1m1700000000.min.js``), assets requested with their ``?m=`` stamp, and map
    layers whose ``?v=`` is the region's current build id. Pages, Dash's layout and
    dependencies: ``no-cache`` (revalidate, so a rebuilt bundle shows at once); the health
    check and callback answers: ``no-store``.
Errors
    404, 405, 413 and 500 answer with a short plain page (or JSON for API paths), never a
    traceback; the traceback goes to the error log. Requests larger than
    :data:`MAX_BODY_BYTES` are refused with 413. A callback request that does not have the
    shape of Dash's (a JSON object with ``output``, ``outputs``, ``inputs`` … of the right
    types), or that Dash cannot match to a callback (an unknown output, too few inputs),
    answers 400; an exception raised inside an app callback answers 500.

:class:`JsonFormatter` writes one JSON object per log line; ``gunicorn.conf.py`` uses it for
the access and error logs. Access lines keep the privacy of people looking for care: the
client address is truncated (IPv4 /24, IPv6 /48) and query values other than
:data:`LOGGED_QUERY_KEYS` (an address look-up ``q``, a map centre ``lat``/``lon``) are
replaced by ``-``.

Compression is done by :func:`callbacks.routes.install_compression` (gzip); this module does
not compress.
"""

from __future__ import annotations

import base64
import errno
import gzip
import hashlib
import ipaddress
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import flask
from werkzeug.exceptions import HTTPException

from etl._errors import AtlasError, BundleError
from etl.bundle.store import BUNDLE_FORMAT_VERSION, MANIFEST, read_manifest

logger = logging.getLogger(__name__)

#: One year, in seconds: the lifetime of fingerprinted responses.
ONE_YEAR_S: Final[int] = 31_536_000
#: Largest request body accepted (callback payloads are a few kilobytes).
MAX_BODY_BYTES: Final[int] = 2 * 1024 * 1024
#: Map tile hosts the page may load images from (the optional online basemap).
DEFAULT_TILE_HOSTS: Final[tuple[str, ...]] = ("https://tile.openstreetmap.org",)
#: Seconds a health result is reused (bounds the cost of a flood of health checks).
HEALTH_TTL_S: Final[float] = 2.0
#: Query parameters whose values are written to the access log; others become ``-``.
LOGGED_QUERY_KEYS: Final[frozenset[str]] = frozenset(
    {"region", "cat", "mode", "layers", "sites", "unit", "op", "t", "z", "f", "v", "m"}
)
#: Paths answered with JSON errors (API-like); everything else gets a plain HTML page.
JSON_PATH_PREFIXES: Final[tuple[str, ...]] = ("/_dash-", "/atlas/", "/healthz")

_FINGERPRINT = re.compile(r"\.v[\w-]+m[0-9a-f]{8,}\.")
_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S | re.I)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_TYPE = re.compile(r"""\btype\s*=\s*["']?([^"'\s>]+)""", re.I)
_EXECUTABLE_TYPES = frozenset({"", "text/javascript", "application/javascript", "module"})
_DASH_CALLBACK_KEYS = ("output", "outputs", "inputs")
#: Frames of Dash's that call an app's callback function (dash/_callback.py).
_CALLBACK_FRAMES = frozenset({"_invoke_callback", "_async_invoke_callback"})


# ---------------------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------------------


_ABS_PATH: Final[re.Pattern[str]] = re.compile(r"(?<![\w<.])/(?:[\w.@+~-]+/)*[\w.@+~-]+/?")


def scrub_paths(text: str) -> str:
    """Replace every absolute path in a message with ``…`` (a last guard before the public)."""
    return _ABS_PATH.sub("…", text)


def _redact(text: str, geodata_dir: Path) -> str:
    """Replace the geodata folder's absolute path with ``<geodata>``, and any other path."""
    for form in {str(geodata_dir.resolve()), str(geodata_dir)}:
        text = text.replace(form, "<geodata>")
    return scrub_paths(text)


def manifest_problem(bundle: Path) -> str | None:
    """What is wrong with a bundle's link or manifest, in plain words without a path.

    None when the manifest reads and has this app's bundle format.
    """
    if bundle.is_symlink() and not bundle.exists():
        return "the bundle link points to a build that does not exist (its build folder is gone)"
    if not bundle.is_dir():
        return "there is no bundle for it"
    path = bundle / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return f"its build has no {MANIFEST} (the manifest is missing)"
    except OSError as exc:
        return f"its manifest is unreadable ({exc.strerror or type(exc).__name__})"
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return "the manifest is corrupt (not JSON)"
    if not isinstance(manifest, dict) or manifest.get("format_version") != BUNDLE_FORMAT_VERSION:
        return "the manifest is of another bundle format"
    return None


def public_bundle_problem(region: str, bundle: Path | None = None) -> str:
    """What the page tells the public when a region's data cannot be shown (no path).

    ``"The map of 'demo' cannot be shown right now: its data is being rebuilt or is broken
    (the manifest is missing). Try again in a few minutes; if this stays, tell the site's
    operator."``
    """
    detail = manifest_problem(bundle) if bundle is not None else None
    if detail == "there is no bundle for it":
        return (
            f"The map of {region!r} has not been built yet (there is no bundle for it). "
            "If you run this site, build it; otherwise try again later."
        )
    why = f" ({detail})" if detail else ""
    return (
        f"The map of {region!r} cannot be shown right now: its data is being rebuilt or is "
        f"broken{why}. Try again in a few minutes; if this stays, tell the site's operator."
    )


def public_error(region: str, exc: Exception, geodata_dir: Path | None = None) -> str:
    """The page's sentence for an error opening a region: plain words, never a server path.

    A bundle that cannot be opened (:class:`~etl._errors.BundleError`) is "being rebuilt or
    is broken"; other errors a user can act on keep their message, with paths taken out.
    """
    if isinstance(exc, BundleError):
        safe = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", region) is not None
        bundle = Path(geodata_dir) / region if geodata_dir is not None and safe else None
        return public_bundle_problem(region, bundle)
    return scrub_paths(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _check_file(path: Path, magic: bytes, *, tail: bool) -> str | None:
    """Return a problem with a data file, or None when its magic bytes are in place."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(len(magic))
            if tail:
                f.seek(max(0, size - len(magic)))
                end = f.read(len(magic))
    except OSError as exc:
        return f"{path.name}: unreadable ({exc.strerror or exc})"
    if head != magic or (tail and end != magic):
        return f"{path.name}: truncated or not a {'Parquet' if tail else 'NumPy .npz'} file"
    return None


def check_bundle(bundle: str | Path) -> dict[str, Any]:
    """Check that one region bundle can be served.

    Parameters
    ----------
    bundle
        The region's bundle path (``geodata/<region>``, a link to its current build).

    Returns
    -------
    dict
        ``region``, ``build_id``, ``built_at`` and ``layers`` (the count) of the build.

    Raises
    ------
    BundleError
        If the link points nowhere, the manifest is missing or corrupt.
    AtlasError
        If a layer, network or access file named by the manifest is missing or truncated;
        the message names the file.
    """
    bundle = Path(bundle)
    name = bundle.name
    build = bundle.resolve()  # resolved first: one build, even during a swap
    problem = manifest_problem(build if build.exists() else bundle)
    if problem:
        raise BundleError(f"region {name!r}: {problem}; rebuild it")
    try:
        manifest = read_manifest(build)
    except BundleError as exc:  # changed between the two reads (a swap): say it plainly
        logger.info("check_bundle: %s", exc)
        problem = manifest_problem(build) or "the manifest changed while it was read"
        raise BundleError(f"region {name!r}: {problem}; rebuild it") from None
    problems = []
    layers = manifest.get("layers", {})
    for name, info in layers.items():
        problem = _check_file(build / str(info.get("file", "")), b"PAR1", tail=True)
        if problem:
            problems.append(f"layer {name!r}: {problem}")
    network = manifest.get("stages", {}).get("network", {})
    for mode in manifest.get("settings", {}).get("modes", []):
        files = [network.get(mode, {}).get("file", f"network/{mode}.npz")]
        if (build / "access" / f"{mode}.npz").exists() or "access" in manifest.get("stages", {}):
            files.append(f"access/{mode}.npz")
        for rel in files:
            problem = _check_file(build / rel, b"PK\x03\x04", tail=False)
            if problem:
                problems.append(f"{rel}: {problem}")
    if problems:
        msg = f"region {name!r}: " + "; ".join(problems) + "; rebuild the bundle"
        raise AtlasError(msg)
    return {
        "region": manifest.get("region", bundle.name),
        "build_id": manifest.get("build_id", build.name),
        "built_at": manifest.get("built_at"),
        "layers": len(layers),
    }


def bundle_links(geodata_dir: str | Path) -> list[Path]:
    """The region bundles of a geodata folder: links to builds, and folders with a manifest.

    Other folders (``configs/``, ``raw/``) and hidden entries (``.builds``) are not bundles.
    """
    geodata_dir = Path(geodata_dir)
    if not geodata_dir.is_dir():
        return []
    return sorted(
        p
        for p in geodata_dir.iterdir()
        if not p.name.startswith(".") and (p.is_symlink() or (p / MANIFEST).is_file())
    )


def check_health(
    geodata_dir: str | Path, *, regions: Iterable[str] | None = None
) -> tuple[int, dict[str, Any]]:
    """Check the bundles the app serves; return the HTTP status and the JSON body.

    Parameters
    ----------
    geodata_dir
        Folder of region bundles.
    regions
        Regions to check; default: every bundle in ``geodata_dir`` (:func:`bundle_links`).

    Returns
    -------
    tuple of int and dict
        ``(200, {"status": "ok", "regions": {...}})`` when every bundle checked is readable,
        else ``(503, {"status": "error", "reason": ..., "regions": {...}})``; a broken
        region's entry holds its ``error``. Paths are shown relative to ``<geodata>``.
    """
    geodata_dir = Path(geodata_dir)
    paths = [geodata_dir / r for r in regions] if regions is not None else bundle_links(geodata_dir)
    if not paths:
        reason = (
            "no region bundle in <geodata>; build one with "
            "`access-atlas build geodata/configs/<region>.yaml`"
        )
        return 503, {"status": "error", "reason": reason, "regions": {}}
    out: dict[str, Any] = {}
    errors = []
    for path in paths:
        try:
            out[path.name] = check_bundle(path)
        except (AtlasError, OSError, ValueError, RecursionError) as exc:
            message = _redact(str(exc) or type(exc).__name__, geodata_dir).splitlines()[0]
            out[path.name] = {"error": message}
            errors.append(message)
    if errors:
        return 503, {"status": "error", "reason": errors[0], "regions": out}
    return 200, {"status": "ok", "regions": out}


class _HealthCache:
    """The last health result, reused for :data:`HEALTH_TTL_S` seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at = -1e9
        self._value: tuple[int, dict[str, Any]] = (503, {})

    def get(self, make: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if time.monotonic() - self._at < HEALTH_TTL_S:
                return self._value
        value = make()
        with self._lock:
            self._value, self._at = value, time.monotonic()
        return value


# ---------------------------------------------------------------------------------------
# Content Security Policy
# ---------------------------------------------------------------------------------------


def inline_script_hashes(html: str) -> list[str]:
    """CSP source expressions (``'sha256-…'``) for the executable inline scripts of a page.

    Scripts with a ``src``, data blocks (``type="application/json"``) and scripts inside
    HTML comments are skipped.
    """
    hashes = []
    for m in _SCRIPT.finditer(_COMMENT.sub("", html)):
        attrs = m.group("attrs")
        if re.search(r"\bsrc\s*=", attrs, re.I):
            continue
        kind = _TYPE.search(attrs)
        if (kind.group(1).lower() if kind else "") not in _EXECUTABLE_TYPES:
            continue
        digest = hashlib.sha256(m.group("body").encode("utf-8")).digest()
        token = f"'sha256-{base64.b64encode(digest).decode('ascii')}'"
        if token not in hashes:
            hashes.append(token)
    return hashes


def page_policy(
    script_hashes: Iterable[str],
    *,
    tile_hosts: Iterable[str] = (),
    frame_ancestors: Iterable[str] = (),
) -> str:
    """The Content-Security-Policy of an HTML page.

    Parameters
    ----------
    script_hashes
        ``'sha256-…'`` tokens of the page's inline scripts.
    tile_hosts
        Origins map tile images may come from.
    frame_ancestors
        Origins allowed to embed the page in a frame; none: no site may.
    """
    hosts = " ".join(tile_hosts)
    ancestors = " ".join(frame_ancestors) or "'none'"
    directives = [
        "default-src 'self'",
        " ".join(["script-src 'self'", *script_hashes]),
        "style-src 'self' 'unsafe-inline'",
        f"img-src 'self' data: blob: {hosts}".rstrip(),
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        f"frame-ancestors {ancestors}",
    ]
    return "; ".join(directives)


#: The policy of every response that is not an HTML page (JSON, GeoJSON, scripts, files).
RESOURCE_POLICY: Final[str] = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"

SECURITY_HEADERS: Final[dict[str, str]] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), payment=(), usb=(), interest-cohort=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _body_text(response: flask.Response) -> str:
    data = response.get_data()
    if response.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return data.decode(response.mimetype_params.get("charset", "utf-8"), errors="replace")


# ---------------------------------------------------------------------------------------
# Cache headers
# ---------------------------------------------------------------------------------------


def _current_build(geodata_dir: Path, region: str) -> str | None:
    """The build id a region's link points at (the build folder's name), or None."""
    if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", region):
        return None
    try:
        return Path(os.readlink(geodata_dir / region)).name
    except OSError:
        return None


def cache_control(
    path: str,
    args: dict[str, str],
    *,
    method: str,
    status: int,
    geodata_dir: Path,
    mimetype: str = "",
) -> str | None:
    """The Cache-Control value for a response, or None to leave the app's own.

    Parameters
    ----------
    path, args, method, status, mimetype
        The request's path, query arguments and method, the response status and type.
    geodata_dir
        Folder of region bundles (a layer URL is immutable only when its ``v`` is the
        region's current build).
    """
    if path == "/healthz" or method == "POST":
        return "no-store"
    if status not in (200, 304):
        return "no-store" if status >= 500 else "no-cache"
    immutable = f"public, max-age={ONE_YEAR_S}, immutable"
    if path.startswith("/_dash-component-suites/"):
        return immutable if _FINGERPRINT.search(path) else "no-cache"
    if path.startswith("/assets/"):
        return immutable if args.get("m") else "no-cache"
    if path.startswith("/atlas/layers/"):
        parts = path.split("/")
        region = parts[3] if len(parts) > 3 else ""
        v = args.get("v")
        if v and v == _current_build(geodata_dir, region):
            return immutable
        return "no-cache"
    if path in ("/_dash-layout", "/_dash-dependencies") or mimetype == "text/html":
        return "no-cache"
    return None


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------

_ERROR_TEXT: Final[dict[int, str]] = {
    400: "The request could not be understood.",
    404: "There is no page at this address.",
    405: "This address does not accept that kind of request.",
    413: "The request is too large.",
    500: "Something went wrong on our side. The problem has been logged.",
}

_ERROR_PAGE: Final[str] = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{code} · Access Atlas</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>{title}</h1><p>{text}</p><p><a href="/">Back to the map</a></p></main></body>
</html>
"""


def error_response(code: int, *, title: str = "") -> flask.Response:
    """A short error answer: JSON for API paths, a plain HTML page otherwise."""
    text = _ERROR_TEXT.get(code, "The request could not be completed.")
    title = title or ("Page not found" if code == 404 else "Error")
    path = flask.request.path if flask.has_request_context() else ""
    if path.startswith(JSON_PATH_PREFIXES):
        return flask.Response(
            json.dumps({"error": text, "status": code}), status=code, mimetype="application/json"
        )
    body = _ERROR_PAGE.format(code=code, title=title, text=text)
    return flask.Response(body, status=code, mimetype="text/html")


#: errno -> what a server error means for the person who met it, in plain words.
_OS_ERROR_TEXT: Final[dict[int, str]] = {
    errno.ENOSPC: "the server's disk is full; tell the site's operator",
    errno.EDQUOT: "the server's disk quota is used up; tell the site's operator",
    errno.EROFS: "the server's files are read-only; tell the site's operator",
    errno.EACCES: "the server is not allowed to write its files; tell the site's operator",
    errno.EPERM: "the server is not allowed to write its files; tell the site's operator",
}


def os_error_text(exc: OSError) -> str:
    """Plain words for a server error a person can act on (full disk, read-only files).

    Never a path: ``"the server's disk is full; tell the site's operator"``.
    """
    return _OS_ERROR_TEXT.get(
        exc.errno or -1, "the server could not write its files; tell the site's operator"
    )


def _handle_http(exc: HTTPException) -> flask.Response:
    code = exc.code or 500
    if code >= 500:
        logger.error("HTTP %d on %s %s", code, flask.request.method, flask.request.path)
    return error_response(code)


def _in_callback(exc: BaseException) -> bool:
    """Whether an exception was raised inside an app callback (not while Dash read the request)."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in _CALLBACK_FRAMES:
            # Raised inside the app's function, not by calling it with the wrong arguments.
            return tb.tb_next is not None
        tb = tb.tb_next
    return False


#: Exceptions an app callback raises when a browser (or a script) sends it junk values.
_JUNK_ERRORS: Final[tuple[type[BaseException], ...]] = (
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    RecursionError,
)
#: Where in-callback errors of other kinds were raised: their traceback is logged once.
_TRACED: set[tuple[str, str, int]] = set()
_TRACED_MAX: Final[int] = 1000


def _callback_name() -> str:
    """The output a Dash callback request names (for the log), cut to 120 characters."""
    body = flask.request.get_json(silent=True)
    output = body.get("output") if isinstance(body, dict) else None
    return str(output)[:120] if output else "?"


def _where(exc: BaseException) -> tuple[str, int]:
    """The file name and line an exception was raised at (for the server's log only)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?", 0
    return Path(tb.tb_frame.f_code.co_filename).name, tb.tb_lineno


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}"


def _handle_exception(exc: Exception) -> flask.Response:
    from dash.exceptions import DependencyException, InvalidResourceError

    if isinstance(exc, DependencyException | InvalidResourceError):
        return error_response(404)
    if flask.request.path == "/_dash-update-component":
        name = _callback_name()
        if not _in_callback(exc):
            # Dash failed reading the request (an unknown output, inputs of the wrong
            # shape): the client sent something no page of this app sends. One line.
            logger.warning("callback request refused (400) for %s: %s", name, _one_line(exc))
            return error_response(400)
        file, line = _where(exc)
        if isinstance(exc, _JUNK_ERRORS):
            # Junk values a callback could not use: one line, never a traceback per request.
            logger.warning(
                "callback %s failed on its input (500): %s at %s:%d", name, _one_line(exc),
                file, line,
            )  # fmt: skip
            return error_response(500)
        key = (type(exc).__name__, file, line)
        if key in _TRACED:
            logger.error("callback %s failed (500): %s at %s:%d (traceback logged before)",
                         name, _one_line(exc), file, line)  # fmt: skip
            return error_response(500)
        if len(_TRACED) < _TRACED_MAX:
            _TRACED.add(key)
        logger.exception("callback %s failed (500); later ones from here are one line", name)
        return error_response(500)
    logger.exception("unhandled error on %s %s", flask.request.method, flask.request.path)
    return error_response(500)


def _is_prop(item: Any) -> bool:
    """A Dash ``{"id": …, "property": …}`` entry (or a list of them, for pattern matching)."""
    if isinstance(item, list):
        return all(_is_prop(x) for x in item)
    return (
        isinstance(item, dict)
        and isinstance(item.get("property"), str)
        and isinstance(item.get("id"), str | dict)
    )


def valid_callback_request(body: Any) -> bool:
    """Whether a body has the shape of a Dash callback request (not its values).

    ``output`` a string; ``outputs`` an entry or a list of entries; ``inputs`` and ``state``
    lists of entries; ``changedPropIds`` a list of strings (entries as :func:`_is_prop`).
    """
    if not isinstance(body, dict) or not all(k in body for k in _DASH_CALLBACK_KEYS):
        return False
    outputs = body["outputs"]
    return (
        isinstance(body["output"], str)
        and (outputs == [] or _is_prop(outputs))
        and isinstance(body["inputs"], list)
        and _is_prop(body["inputs"])
        and isinstance(body.get("state", []), list)
        and _is_prop(body.get("state", []))
        and isinstance(body.get("changedPropIds", []), list)
        and all(isinstance(x, str) for x in body.get("changedPropIds", []))
    )


def _check_callback_request() -> flask.Response | None:
    """Refuse a Dash callback request that does not have Dash's shape (400)."""
    if flask.request.path != "/_dash-update-component" or flask.request.method != "POST":
        return None
    if valid_callback_request(flask.request.get_json(silent=True)):
        return None
    return error_response(400)


# ---------------------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------------------


def install(
    server: flask.Flask,
    *,
    geodata_dir: str | Path | Callable[[], Path],
    regions: Callable[[], Iterable[str]] | None = None,
    tile_hosts: Iterable[str] = DEFAULT_TILE_HOSTS,
    frame_ancestors: Iterable[str] = (),
    max_body_bytes: int = MAX_BODY_BYTES,
) -> None:
    """Add the health check, security and cache headers and plain error pages to a server.

    Call it once, after the app's own routes and ``install_compression`` (so the headers are
    set on the uncompressed page, whose inline scripts are hashed).

    Parameters
    ----------
    server
        ``app.server`` (the Dash app's Flask server).
    geodata_dir
        Folder of region bundles, or a function returning it (read per request).
    regions
        Returns the regions ``/healthz`` checks; default: every bundle in the folder.
    tile_hosts
        Origins the page may load map tile images from.
    frame_ancestors
        Origins allowed to embed the map in a frame (e.g. a coalition's own site,
        ``https://coalition.example``); default none. When given, ``X-Frame-Options`` is
        left out (it cannot name an origin) and the CSP's ``frame-ancestors`` lists them.
    max_body_bytes
        Largest request body accepted; larger ones answer 413.
    """
    folder: Callable[[], Path] = (
        geodata_dir if callable(geodata_dir) else (lambda: Path(geodata_dir))  # type: ignore[arg-type]
    )
    hosts = tuple(tile_hosts)
    ancestors = tuple(frame_ancestors)
    headers = dict(SECURITY_HEADERS)
    if ancestors:
        del headers["X-Frame-Options"]
    allowed = " ".join(ancestors) or "'none'"
    resource_policy = RESOURCE_POLICY.replace(
        "frame-ancestors 'none'", f"frame-ancestors {allowed}"
    )
    health = _HealthCache()
    server.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    server.config["PROPAGATE_EXCEPTIONS"] = False
    server.config["TRAP_HTTP_EXCEPTIONS"] = False
    policies: dict[tuple[str, ...], str] = {}

    @server.route("/healthz", methods=["GET", "HEAD"])
    def healthz() -> flask.Response:
        status, body = health.get(
            lambda: check_health(folder(), regions=regions() if regions else None)
        )
        if status != 200:
            logger.warning("healthz: %s", body.get("reason"))
        return flask.Response(json.dumps(body), status=status, mimetype="application/json")

    server.before_request(_check_callback_request)
    server.register_error_handler(HTTPException, _handle_http)
    server.register_error_handler(Exception, _handle_exception)

    @server.after_request
    def _headers(response: flask.Response) -> flask.Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html" and not response.direct_passthrough:
            hashes = tuple(inline_script_hashes(_body_text(response)))
            if hashes not in policies:
                policies[hashes] = page_policy(hashes, tile_hosts=hosts, frame_ancestors=ancestors)
            response.headers["Content-Security-Policy"] = policies[hashes]
        else:
            response.headers["Content-Security-Policy"] = resource_policy
        value = cache_control(
            flask.request.path,
            flask.request.args.to_dict(),
            method=flask.request.method,
            status=response.status_code,
            geodata_dir=folder(),
            mimetype=response.mimetype or "",
        )
        if value:
            response.headers["Cache-Control"] = value
        return response

    logger.info(
        "serving: /healthz, security and cache headers installed (body limit %s bytes)",
        f"{max_body_bytes:,}",
    )


# ---------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------


def anonymize_ip(address: str) -> str:
    """Truncate a client address: IPv4 to its /24, IPv6 to its /48 (unparseable: ``-``)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "-"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def redact_query(query: str) -> str:
    """Keep the values of :data:`LOGGED_QUERY_KEYS`; write ``-`` for every other value."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v if k in LOGGED_QUERY_KEYS else "-") for k, v in pairs]
    return urlencode(kept, safe=",/-")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line; gunicorn access records become structured fields.

    Error and app records: ``time``, ``level``, ``logger``, ``pid``, ``message`` (and
    ``exception`` with the traceback — for the server's log only). Access records (from
    ``gunicorn.access``): ``time``, ``type: "access"``, ``remote`` (truncated), ``method``,
    ``path``, ``query`` (redacted), ``status``, ``bytes``, ``duration_ms``, ``referer``
    (without its query), ``user_agent``, ``pid``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Format a record as one line of JSON."""
        base: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
        }
        atoms = record.args if isinstance(record.args, dict) else None
        if record.name == "gunicorn.access" and atoms is not None:
            # gunicorn escapes quotes for its text format; JSON escapes them itself.
            atoms = {
                k: v.replace('\\"', '"') if isinstance(v, str) else v for k, v in atoms.items()
            }
            referer = str(atoms.get("f", "-")).split("?", 1)[0]
            duration = _int_or_none(atoms.get("D"))
            base.update(
                type="access",
                remote=anonymize_ip(str(atoms.get("h", ""))),
                method=atoms.get("m"),
                path=atoms.get("U"),
                query=redact_query(str(atoms.get("q", ""))),
                status=_int_or_none(atoms.get("s")),
                bytes=_int_or_none(atoms.get("B")),
                duration_ms=None if duration is None else round(duration / 1000, 2),
                referer=referer,
                user_agent=atoms.get("a"),
            )
            return json.dumps(base, ensure_ascii=False)
        base["message"] = record.getMessage()
        if record.exc_info:
            base["exception"] = self.formatException(record.exc_info)
        return json.dumps(base, ensure_ascii=False)
