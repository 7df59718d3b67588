"""Downloads from the app: offline basemap tiles, and exports of the current map.

Routes (added by :func:`register_download_routes`):

``/atlas/tiles/<region>/<z>/<x>/<y>.png?v=<build>``
    A basemap tile the pipeline pre-rendered into the bundle (``<bundle>/tiles``). Cached for
    a year (``immutable``) when ``v`` is the region's current build, else revalidated. A
    tile that was not rendered (empty, outside the region) answers 404; the map's
    background colour covers it.
``/atlas/export/<region>/<kind>?cat=…&mode=…&layers=…&bbox=w,s,e,n``
    An export of the region for the map state in the query (the map page's parameters):
    ``shp``, ``gpkg``, ``geojson`` or ``csv`` (zipped, with metadata and a data dictionary;
    :func:`etl.outputs.export.export_layers`), a ``png`` or ``pdf`` map
    (:func:`etl.outputs.render.render_map`) or the one-page ``factsheet``
    (:func:`etl.outputs.render.fact_sheet`). An unknown kind answers 404, a bad parameter or an
    empty selection 422, each with a one-line JSON ``error``.

Exports are written under the cache folder (``<geodata>/.cache/exports`` unless
:func:`configure` says otherwise) as ``<region>/<build>/<kind>-<digest>/``: the digest is a
hash of the normalised parameters, so the same request is built once per build and no text
from a request ever becomes part of a path. Older builds' exports are removed, and at most
:data:`MAX_CACHED` exports are kept per build. An export is built in a hidden temporary
folder beside it; those an interrupted build left behind are removed at start-up and then
every :data:`STALE_TEMP_S` seconds, once nothing in them has changed for that long
(:func:`clean_stale_temp`).

The map page's buttons call :func:`export_click`: it builds the file (or finds it cached),
and either hands the browser the route's URL to download or says in the page why there is
nothing to download.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlencode

import flask
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, html
from dash.exceptions import PreventUpdate

from etl._errors import AtlasError, BundleError, ExportError
from etl.bundle.regions import list_regions
from etl.outputs.export import FORMATS, KNOWN_LAYERS, safe_path
from layouts import map_page as mp
from layouts import townhall as th
from viewmodel.data import RegionData, map_options, region_data
from viewmodel.scenario_print import what_if_or_note
from viewmodel.serving import os_error_text, scrub_paths
from viewmodel.state import Options, decode_scenario, parse_state

logger = logging.getLogger(__name__)

#: Most exports kept per region build (the least recently used go first).
MAX_CACHED: int = 64
#: Highest zoom of a tile URL.
MAX_TILE_ZOOM: Final[int] = 19
ONE_YEAR_S: Final[int] = 31_536_000

#: Layers a data export from the page holds (those in the bundle), in this order.
EXPORT_LAYERS: Final[tuple[str, ...]] = (
    "providers",
    "areas",
    "counties",
    "isochrones",
    "deserts",
    "desert_blocked",
    "grid",
    "barriers",
    "sitable",
    "region",
)

#: Map page layer keys -> the layers :func:`etl.outputs.render.render_map` draws for them.
_RENDER_LAYERS: Final[dict[str, tuple[str, ...]]] = {
    "streets": ("streets",),
    "bands": ("isochrones",),
    "desert": ("deserts",),
    "barriers": ("barriers",),
    "sites": ("providers",),
}
_MIME: Final[dict[str, str]] = {
    ".zip": "application/zip",
    ".png": "image/png",
    ".pdf": "application/pdf",
}
_NAME: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_BUILD: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

#: Age (seconds, by modification time) after which a hidden temporary entry in the export
#: cache is an abandoned build (a worker killed mid-export) and is removed.
STALE_TEMP_S: float = 600.0

_SETTINGS: dict[str, Any] = {"cache": None}
#: When each cache folder was last swept for abandoned temporary folders (monotonic seconds).
_SWEPT: dict[str, float] = {}
#: Locks serialising the builds of one export within a process (striped by its folder).
_LOCKS: tuple[threading.Lock, ...] = tuple(threading.Lock() for _ in range(32))


def configure(*, cache_dir: str | Path | None) -> None:
    """Set the export cache folder (None: ``<geodata>/.cache/exports``)."""
    _SETTINGS["cache"] = None if cache_dir is None else Path(cache_dir)


def cache_dir(geodata_dir: str | Path) -> Path:
    """The export cache folder for a geodata folder."""
    configured = _SETTINGS["cache"]
    return Path(configured) if configured else Path(geodata_dir) / ".cache" / "exports"


# ---------------------------------------------------------------------------------------
# Tiles
# ---------------------------------------------------------------------------------------


def tile_file(geodata_dir: str | Path, region: str, z: int, x: int, y: int) -> Path | None:
    """The tile file of a region's current build, or None when there is none.

    Only a plain region name and a tile inside the XYZ grid are looked up, and the file
    found must lie inside the bundle's ``tiles`` folder.
    """
    if not _NAME.match(region) or not 0 <= z <= MAX_TILE_ZOOM:
        return None
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        return None
    bundle = Path(geodata_dir) / region
    try:
        tiles = (bundle.resolve(strict=True) / "tiles").resolve(strict=True)
        path = (tiles / str(z) / str(x) / f"{y}.png").resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(tiles) or not path.is_file():
        return None
    return path


def current_build(geodata_dir: str | Path, region: str) -> str | None:
    """The build a region's link points at (its folder name), or None."""
    if not _NAME.match(region):
        return None
    try:
        return Path(os.readlink(Path(geodata_dir) / region)).name
    except OSError:
        return None


# ---------------------------------------------------------------------------------------
# Export requests
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRequest:
    """What to export, normalised: the same request always has the same :meth:`key`.

    Attributes
    ----------
    kind
        One of :data:`layouts.townhall.EXPORT_KINDS`.
    category, mode
        The care category and travel mode shown on the map.
    layers
        Map layer keys shown (they choose what a printed map draws).
    unit
        Area unit of the travel-time choropleth.
    bbox
        ``(west, south, east, north)`` to keep only what is in view, or None.
    data
        Layer names for a data export (None: every one of :data:`EXPORT_LAYERS` present).
    threshold
        The threshold on the map (minutes): every file draws and counts the desert at it.
    scenario
        The What-if scenario token open on the page (``w=``), or ``""``; files built with
        one draw and count it as its panel does (:mod:`viewmodel.scenario_print`).
    """

    kind: str
    category: str
    mode: str
    layers: tuple[str, ...] = ()
    unit: str = "areas"
    bbox: tuple[float, float, float, float] | None = None
    data: tuple[str, ...] | None = None
    threshold: int = 30
    scenario: str = ""

    def key(self) -> str:
        """A hash of what changes the file (the threshold and an open scenario do)."""
        fields = asdict(self)
        if self.kind in th.DATA_EXPORTS:
            fields.pop("layers")
            fields.pop("unit")
        else:
            fields.pop("data")
            fields.pop("bbox")
            if self.kind == "factsheet":
                fields.pop("layers")
                fields.pop("unit")
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]

    def query(self) -> str:
        """The route's query string for this request (without ``?``)."""
        params: dict[str, str] = {"cat": self.category, "mode": self.mode, "t": str(self.threshold)}
        if self.kind not in th.DATA_EXPORTS and self.kind != "factsheet":
            params["layers"] = ",".join(self.layers)
            params["unit"] = self.unit
        if self.kind in th.DATA_EXPORTS:
            if self.bbox is not None:
                params["bbox"] = ",".join(f"{v:.4f}" for v in self.bbox)
            if self.data is not None:
                params["data"] = ",".join(self.data)
        if self.scenario:
            params["w"] = self.scenario
        return urlencode(params, safe=",")


def export_request(kind: str, query: str | None, options: Options) -> ExportRequest:
    """Read an export request from a kind and a map-page query string.

    Parameters
    ----------
    kind
        One of :data:`layouts.townhall.EXPORT_KINDS`.
    query
        The map page's parameters (``cat``, ``mode``, ``layers``, ``unit``, ``t``) and
        optionally ``bbox=w,s,e,n`` and ``data=layer,…``.
    options
        What the region offers (:func:`viewmodel.data.map_options`).

    Raises
    ------
    ExportError
        For an unknown kind, a category or mode the region lacks, a bad box or a data
        layer that does not exist; the message lists what is valid.
    """
    if kind not in th.EXPORT_KINDS:
        msg = f"unknown export {kind!r}; valid: {', '.join(th.EXPORT_KINDS)}"
        raise ExportError(msg)
    query = (query or "").lstrip("?")
    params = parse_qs(query, keep_blank_values=True)
    for key, valid in (("cat", options.categories), ("mode", options.modes)):
        given = params.get(key)
        if given and given[-1] not in valid and given[-1] not in options.no_data:
            what = "category" if key == "cat" else "travel mode"
            msg = f"unknown {what} {given[-1][:40]!r} for this region; valid: {', '.join(valid)}"
            raise ExportError(msg)
    state = parse_state(query, options, default_region=options.regions[0])
    if not options.has_data(state.category):
        reason = options.no_data.get(state.category, "no sites")
        msg = (
            f"no data for {state.category} in this region ({reason}), so there is nothing to "
            "print or export for it; choose another kind of care"
        )
        raise ExportError(msg)
    bbox = _bbox(params.get("bbox", [None])[-1])
    data = None
    if params.get("data") and params["data"][-1].strip():
        data = tuple(dict.fromkeys(p.strip() for p in params["data"][-1].split(",") if p.strip()))
        bad = [d for d in data if d not in KNOWN_LAYERS]
        if bad:
            msg = f"unknown layer {bad[0][:40]!r}; valid layers: {', '.join(EXPORT_LAYERS)}"
            raise ExportError(msg)
    return ExportRequest(
        kind=kind,
        category=state.category,
        mode=state.mode,
        layers=tuple(state.layers),
        unit=state.unit,
        bbox=bbox,
        data=data,
        threshold=state.threshold,
        scenario=state.scenario,
    )


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``w,s,e,n`` in degrees, rounded to 4 decimals (about 10 m), or None when absent."""
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(abs(v) <= 180 for v in values):
        msg = f"bbox must be four numbers west,south,east,north in degrees, got {text[:60]!r}"
        raise ExportError(msg)
    w, s, e, n = (round(v, 4) for v in values)
    if not (w < e and s < n and abs(s) <= 90 and abs(n) <= 90):
        msg = f"bbox must have west < east and south < north, got {text[:60]!r}"
        raise ExportError(msg)
    return (w, s, e, n)


def bbox_of(bounds: Any) -> tuple[float, float, float, float] | None:
    """``(w, s, e, n)`` from a Leaflet map's ``bounds`` (``[[s, w], [n, e]]``), or None."""
    try:
        (s, w), (n, e) = bounds
        box = ",".join(str(float(v)) for v in (w, s, e, n))
    except (TypeError, ValueError):
        return None
    return _bbox(box)


def render_layers(request: ExportRequest) -> tuple[str, ...]:
    """What a printed map draws for the map's layers (the region outline always)."""
    out: list[str] = []
    if "areas" in request.layers:
        out.append("grid" if request.unit == "grid" else "areas")
    for key in request.layers:
        out += _RENDER_LAYERS.get(key, ())
    out.append("region")
    from etl.outputs.render import MAP_LAYERS

    return tuple(k for k in MAP_LAYERS if k in out)


def download_name(region: str, request: ExportRequest) -> str:
    """The file name the browser saves (``demo-methadone-drive-30min-shapefile.zip`` …).

    The name carries the view's threshold, so two downloads at different thresholds never
    overwrite each other in a Downloads folder.
    """
    stem = f"{region}-{request.category}-{request.mode}-{request.threshold:g}min"
    if request.kind in th.DATA_EXPORTS:
        return f"{stem}-{FORMATS[request.kind][1]}.zip"
    if request.kind == "factsheet":
        return f"{stem}-fact-sheet.pdf"
    return f"{stem}-map.{request.kind}"


def export_href(region: str, build: str, request: ExportRequest) -> str:
    """The route that serves an export."""
    query = request.query()
    return f"{th.EXPORT_PREFIX}/{region}/{request.kind}?{query}&v={build}"


# ---------------------------------------------------------------------------------------
# Building (cached)
# ---------------------------------------------------------------------------------------


def _lock(key: str) -> threading.Lock:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=2).digest()
    return _LOCKS[int.from_bytes(digest, "big") % len(_LOCKS)]


def prepare_export(rd: RegionData, request: ExportRequest, *, cache: str | Path) -> Path:
    """Build an export into the cache (or find it there); return the file.

    Parameters
    ----------
    rd
        The region, opened for the app.
    request
        What to export (:func:`export_request`).
    cache
        The export cache folder; nothing is written outside it.

    Returns
    -------
    pathlib.Path
        The file: ``<cache>/<region>/<build>/<kind>-<digest>/<file>``.

    Raises
    ------
    ExportError
        For an empty selection (nothing is written), or a region or build name that is not
        plain.
    """
    region, build = rd.region, rd.build_id
    if not _NAME.match(region) or not _BUILD.match(build):
        msg = f"refusing to export region {region!r} build {build!r}: not a plain name"
        raise ExportError(msg)
    cache = Path(cache)
    folder = safe_path(cache, f"{region}/{build}/{request.kind}-{request.key()}")
    with _lock(str(folder)):
        found = _cached(folder)
        if found is not None:
            os.utime(folder)
            logger.info("prepare_export: %s %s from the cache", region, request.kind)
            return found
        folder.parent.mkdir(parents=True, exist_ok=True)
        _prune(safe_path(cache, region), keep=build)
        _sweep(cache)
        t0 = time.perf_counter()
        work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{request.kind}-"))
        try:
            _build(rd, request, work)
            try:
                os.rename(work, folder)
            except OSError:  # another process finished the same export first
                shutil.rmtree(work, ignore_errors=True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        found = _cached(folder)
        if found is None:  # pragma: no cover - the builders always write one file
            msg = f"export {request.kind} of {region!r} wrote no file"
            raise ExportError(msg)
        _prune_entries(folder.parent)
        logger.info(
            "prepare_export: %s %s built in %.2f s (%s bytes)",
            region,
            request.kind,
            time.perf_counter() - t0,
            f"{found.stat().st_size:,}",
        )
        return found


def _newest_mtime(path: Path) -> float:
    """The latest modification time of a path and, for a folder, of what it holds."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for child in path.rglob("*"):
            try:
                newest = max(newest, child.lstat().st_mtime)
            except OSError:
                continue
    return newest


def clean_stale_temp(
    cache: str | Path, *, max_age_s: float = STALE_TEMP_S, now: float | None = None
) -> int:
    """Remove the temporary folders and files that interrupted export builds left behind.

    Only hidden entries (``.<kind>-…``, as :func:`prepare_export` makes them) inside the
    export cache are touched, and only those nothing under has changed for ``max_age_s``
    seconds: an export being built right now, in any process, stays. Links are never
    followed or removed.

    Parameters
    ----------
    cache
        The export cache folder (:func:`cache_dir`).
    max_age_s
        Age after which an entry is abandoned (default :data:`STALE_TEMP_S`).
    now
        The current time (``time.time()``), for tests.

    Returns
    -------
    int
        How many entries were removed (one log line says so when any were).
    """
    cache = Path(cache)
    if not cache.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    stack = [cache]
    while stack:
        folder = stack.pop()
        try:
            children = list(folder.iterdir())
        except OSError:
            continue
        for child in children:
            if child.is_symlink():
                continue
            if not child.name.startswith("."):
                if child.is_dir():
                    stack.append(child)
                continue
            try:
                if now - _newest_mtime(child) < max_age_s:
                    continue
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            except OSError:
                continue
            removed += 1
    if removed:
        logger.info(
            "export cache: removed %d abandoned temporary export folder%s",
            removed,
            "" if removed == 1 else "s",
        )
    return removed


def _sweep(cache: Path) -> None:
    """:func:`clean_stale_temp` at most once per :data:`STALE_TEMP_S` for a cache folder."""
    key = str(cache)
    at = time.monotonic()
    if at - _SWEPT.get(key, -1e18) < STALE_TEMP_S:
        return
    _SWEPT[key] = at
    clean_stale_temp(cache)


def _cached(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return files[0] if len(files) == 1 else None


def _build(rd: RegionData, request: ExportRequest, work: Path) -> None:
    """Write the one file of an export into ``work``."""
    bundle = rd.bundle
    # The scenario open on the page, evaluated as its panel evaluates it (or a line why not).
    scenario = None
    if request.scenario:
        scenario = what_if_or_note(
            rd,
            request.scenario,
            category=request.category,
            mode=request.mode,
            threshold=request.threshold,
        )
    if request.kind in th.DATA_EXPORTS:
        from etl.outputs.export import export_layers

        names = request.data or tuple(n for n in EXPORT_LAYERS if n in bundle.layer_names)
        filters: dict[str, Any] = {"category": [request.category], "mode": [request.mode]}
        if request.bbox is not None:
            filters["bbox"] = request.bbox
        export_layers(
            bundle,
            work,
            layers=list(names),
            fmt=request.kind,
            filters=filters,
            threshold=request.threshold,
            scenario=scenario,
        )
        return
    from etl.outputs.render import fact_sheet, render_map

    view = {"threshold": request.threshold, "scenario": scenario}
    if request.kind == "factsheet":
        out = work / "fact-sheet.pdf"
        fact_sheet(bundle, out, category=request.category, mode=request.mode, **view)
    else:
        out = work / f"map.{request.kind}"
        render_map(
            bundle,
            out,
            category=request.category,
            mode=request.mode,
            layers=render_layers(request),
            **view,
        )


def _view_line(request: ExportRequest) -> str:
    """What the file was built for, as the page says it."""
    from etl.outputs.export import view_text

    text = view_text(request.category, request.mode, request.threshold)
    store = decode_scenario(request.scenario) if request.scenario else None
    if store and store.get("changes"):
        name = str(store.get("name") or "unnamed")[:60]
        text += f"; with the What-if scenario “{name}”"
    return text


def _prune(region_dir: Path, *, keep: str) -> None:
    """Remove the exports of a region's older builds."""
    if not region_dir.is_dir():
        return
    for child in region_dir.iterdir():
        if child.name != keep and child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
            logger.info("prepare_export: removed the exports of old build %s", child.name)


def _prune_entries(build_dir: Path) -> None:
    """Keep at most :data:`MAX_CACHED` exports of a build (least recently used go)."""
    entries = [p for p in build_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(entries) <= MAX_CACHED:
        return
    entries.sort(key=lambda p: p.stat().st_mtime)
    for old in entries[: len(entries) - MAX_CACHED]:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------


def _error(status: int, reason: str) -> flask.Response:
    return flask.Response(
        json.dumps({"error": reason, "status": status}),
        status=status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )


def register_download_routes(server: flask.Flask, geodata: Callable[[], Path]) -> None:
    """Add the tile and export routes to a Flask server.

    Parameters
    ----------
    server
        ``app.server``.
    geodata
        Returns the folder of region bundles (read per request, so tests may change it).
        Abandoned temporary export folders in its cache are removed now (start-up) and
        then at most every :data:`STALE_TEMP_S` seconds, when an export is built.
    """
    _sweep(cache_dir(geodata()))

    @server.route(f"{th.TILE_PREFIX}/<region>/<int:z>/<int:x>/<int:y>.png")
    def atlas_tile(region: str, z: int, x: int, y: int) -> flask.Response:
        folder = geodata()
        path = tile_file(folder, region, z, x, y)
        if path is None:
            return _error(404, "no such tile")
        # Tiles are a few kB: read whole (no open file left to a slow client).
        response = flask.Response(path.read_bytes(), mimetype="image/png")
        response.add_etag()
        response.make_conditional(flask.request)
        v = flask.request.args.get("v")
        if v and v == current_build(folder, region):
            response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR_S}, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response

    @server.route(f"{th.EXPORT_PREFIX}/<region>/<kind>")
    def atlas_export(region: str, kind: str) -> flask.Response:
        folder = geodata()
        if kind not in th.EXPORT_KINDS:
            return _error(404, f"unknown export {kind[:40]!r}; valid: {', '.join(th.EXPORT_KINDS)}")
        regions = list_regions(folder)
        if region not in regions:
            return _error(404, "no such region")
        try:
            rd = region_data(folder, region)
            request = export_request(
                kind, flask.request.query_string.decode(), map_options(rd, regions)
            )
            path = prepare_export(rd, request, cache=cache_dir(folder))
        except ExportError as exc:
            return _error(422, _plain(str(exc), folder))
        except AtlasError as exc:
            return _error(404, _plain(str(exc), folder))
        except OSError as exc:  # a full disk, read-only geodata: say so (never a path)
            logger.error("export %s of %s: %s: %s", kind, region, type(exc).__name__, exc)
            return _error(503, f"The export was not made: {os_error_text(exc)}.")
        response = flask.send_file(
            path,
            mimetype=_MIME.get(path.suffix, "application/octet-stream"),
            as_attachment=True,
            download_name=download_name(region, request),
            conditional=True,
        )
        response.headers["Cache-Control"] = "private, no-cache"
        return response


def _plain(message: str, geodata_dir: Path) -> str:
    """A message without server paths."""
    for form in {str(Path(geodata_dir).resolve()), str(geodata_dir)}:
        message = message.replace(form, "<geodata>")
    message = scrub_paths(message)
    return message.splitlines()[0] if message else message


# ---------------------------------------------------------------------------------------
# The map page's export buttons
# ---------------------------------------------------------------------------------------


def export_outcome(
    geodata_dir: Path,
    *,
    region: str,
    kind: str,
    share_href: str | None,
    in_view: bool,
    bounds: Any,
) -> tuple[list, dict[str, Any] | None]:
    """The status shown after an export button, and the download (None: nothing to get).

    The map state comes from the share link the page keeps current; with ``in_view`` the
    data exports keep only what the map's ``bounds`` show.
    """
    regions = list_regions(geodata_dir)
    if region not in regions:
        return [_warning("This region is no longer available; reload the page.")], None
    try:
        rd = region_data(geodata_dir, region)
        options = map_options(rd, regions)
        query = (share_href or "").split("?", 1)[1] if "?" in (share_href or "") else ""
        query = "&".join(p for p in query.split("&") if p and not p.startswith("bbox="))
        if in_view and kind in th.DATA_EXPORTS:
            box = bbox_of(bounds)
            if box is not None:
                query += "&bbox=" + ",".join(f"{v:.4f}" for v in box)
        request = export_request(kind, query, options)
        path = prepare_export(rd, request, cache=cache_dir(geodata_dir))
    except ExportError as exc:
        text = str(exc)
        if text.startswith("nothing to export"):
            text = (
                "Nothing to download: no features of this region lie in the map view for "
                "this care and travel mode. Zoom out, move the map over the region or untick "
                "“Only what is in the map view”."
            )
        return [_warning(_plain(text, geodata_dir))], None
    except BundleError as exc:
        return [_warning(_plain(str(exc), geodata_dir))], None
    except OSError as exc:  # a full disk, read-only geodata: say so (never a path)
        logger.error("export %s of %s: %s: %s", kind, region, type(exc).__name__, exc)
        return [_warning(f"The download was not made: {os_error_text(exc)}.")], None
    name = download_name(region, request)
    href = export_href(region, rd.build_id, request)
    size = path.stat().st_size
    note: list = [
        "Downloading ",
        html.A(name, href=href, download=name),
        f" ({size / 1e6:.1f} MB)." if size >= 100_000 else f" ({size / 1e3:.0f} kB).",
    ]
    note.append(f" {_view_line(request)}.")
    return [html.P(note, className="atlas-small")], {"href": href, "name": name, "t": time.time()}


def _warning(text: str) -> html.P:
    return html.P(text, className="atlas-warning", role="alert")


@callback(
    Output(th.EXPORT_STATUS, "children"),
    Output(th.EXPORT_LINK, "data"),
    *[Input(th.export_button_id(k), "n_clicks") for k in th.EXPORT_KINDS],
    State(mp.SHARE, "href"),
    State(th.EXPORT_IN_VIEW, "value"),
    State(mp.MAP, "bounds"),
    State(mp.REGION_STORE, "data"),
    prevent_initial_call=True,
)
def export_click(*args: Any) -> tuple[list, Any]:
    """Build the export of the button pressed and start its download (or say why not)."""
    from callbacks.map import geodata_dir

    share_href, in_view, bounds, store = args[-4:]
    trigger = ctx.triggered_id
    kind = str(trigger or "").removeprefix("export-")
    if kind not in th.EXPORT_KINDS or not isinstance(store, Mapping) or "region" not in store:
        raise PreventUpdate
    status, link = export_outcome(
        geodata_dir(),
        region=str(store["region"]),
        kind=kind,
        share_href=share_href if isinstance(share_href, str) else None,
        in_view=bool(in_view),
        bounds=bounds,
    )
    return status, link


# The download starts in the browser (an <a download> clicked): the file comes from the route.
clientside_callback(
    ClientsideFunction(namespace="atlasTownhall", function_name="download"),
    Output(th.EXPORT_FIRED, "data"),
    Input(th.EXPORT_LINK, "data"),
    prevent_initial_call=True,
)


__all__ = [
    "ExportRequest",
    "clean_stale_temp",
    "configure",
    "export_outcome",
    "export_request",
    "prepare_export",
    "register_download_routes",
    "tile_file",
]
