"""Callbacks of the map page, thin: inputs → a pure function in ``etl.app_*`` → components.

Server callbacks render the page from the URL, the summary, the legend, the details of a
clicked site or place and the address look-up. Everything that only restyles the map runs in
the browser (clientside callbacks in ``assets/atlas.js``): the threshold moves the desert
while the slider is dragged, with no request to the server.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from dash import (
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    ctx,
    html,
    no_update,
)
from dash.exceptions import PreventUpdate

from callbacks.routes import layer_url
from etl._errors import AtlasError
from etl.bundle.regions import list_regions
from etl.categories import CATEGORY_COLOURS
from layouts import map_page as mp
from layouts.methods import methods_page
from layouts.overview import error_page
from layouts.panels import (
    area_details,
    lookup_panel,
    no_data_panel,
    provider_details,
    summary_panel,
)
from viewmodel.data import (
    RegionData,
    access_summary,
    area_at,
    area_outline,
    class_breaks,
    map_options,
    overdose_source,
    provider_filters,
    region_data,
)
from viewmodel.lookup import address_example, find_place, nearest_care
from viewmodel.reentry import region_release_day
from viewmodel.serving import public_error
from viewmodel.state import MapState, Options, encode_state, parse_state, requested_region

logger = logging.getLogger(__name__)

PAGE = "page"
RENDERED = "atlas-rendered"

_SETTINGS: dict[str, Any] = {
    "geodata": Path(
        os.environ.get("ACCESS_ATLAS_GEODATA", Path(__file__).resolve().parents[1] / "geodata")
    ),
    "default_region": os.environ.get("ACCESS_ATLAS_REGION", "demo"),
}


def configure(*, geodata: str | Path, default_region: str) -> None:
    """Set where the bundles are and which region opens first (called by ``app.py``)."""
    _SETTINGS["geodata"] = Path(geodata)
    _SETTINGS["default_region"] = default_region


def geodata_dir() -> Path:
    """The folder of region bundles."""
    return Path(_SETTINGS["geodata"])


def default_region(regions: list[str]) -> str:
    """The region opened without a ``region`` parameter (the configured one, else the first)."""
    wanted = _SETTINGS["default_region"]
    return wanted if wanted in regions or not regions else regions[0]


# ---------------------------------------------------------------------------------------
# Page model
# ---------------------------------------------------------------------------------------


def layer_urls(rd: RegionData) -> dict[str, str]:
    """URLs of every layer of a region (cache-busted by the build id)."""
    r, b = rd.region, rd.build_id
    urls = {
        "bands": layer_url(r, "bands", "{category}", "{mode}", build=b),
        "providers": layer_url(r, "providers", build=b),
        "region": layer_url(r, "region", build=b),
        "streets_major": layer_url(r, "streets", "major", build=b),
        "streets_minor": layer_url(r, "streets", "minor", build=b),
        "labels": layer_url(r, "labels", build=b),
    }
    for key, name in (
        ("areas", "areas"),
        ("grid", "grid"),
        ("counties", "counties"),
        ("barriers", "barriers"),
        ("sitable", "sitable"),
        ("transit", "transit_stops"),
        ("facilities", "facilities"),
    ):
        if rd.has_layer(name):
            urls[key] = layer_url(r, name, build=b)
    source = overdose_source(rd)
    if source:
        urls["overdose"] = urls[source]
    return urls


def overdose_model(rd: RegionData) -> dict[str, Any] | None:
    """Property, class breaks and label of the overdose choropleth (None without data)."""
    model = rd.cached("overdose_model", lambda: _overdose_model(rd))
    return None if model is None else {**model, "breaks": list(model["breaks"])}


def _overdose_model(rd: RegionData) -> dict[str, Any] | None:
    source = overdose_source(rd)
    if source is None:
        return None
    frame = rd.layer(source)
    rates = frame["rate_per_100k"]
    if "suppressed" in frame.columns:
        rates = rates[~frame["suppressed"].fillna(False).astype(bool)]
    basis = (
        ", ".join(frame["rate_basis"].dropna().astype(str).unique()[:2])
        if "rate_basis" in frame
        else ""
    )
    period = (
        ", ".join(frame["period"].dropna().astype(str).unique()[:2]) if "period" in frame else ""
    )
    label = (
        "Overdose deaths per 100,000"
        + (f" ({basis}" if basis else "")
        + (f", {period})" if period else (")" if basis else ""))
    )
    return {
        "prop": "rate_per_100k",
        "breaks": class_breaks(rates.to_numpy(dtype=float)),
        "label": label,
    }


def osm_attribution(manifest: dict[str, Any]) -> str:
    """Attribution line for the street layers, from the OSM input's licence."""
    for item in manifest.get("inputs", []):
        if item.get("role") == "network.osm":
            licence = item.get("licence") or ""
            source = item.get("source") or ""
            if "openstreetmap" in licence.lower():
                return licence
            if "odbl" in licence.lower() or "openstreetmap" in source.lower():
                return f"Streets © OpenStreetMap contributors ({licence or 'ODbL'})"
            return f"Streets: {source or 'street network'}" + (f" ({licence})" if licence else "")
    return "Streets © OpenStreetMap contributors (ODbL)"


def page_model(rd: RegionData, state: MapState, options: Options, *, default: str) -> mp.PageModel:
    """Everything the map page needs, from the bundle and the state."""
    if options.has_data(state.category):
        summary = summary_panel(
            access_summary(rd, state.category, state.mode, state.threshold),
            category=state.category,
            mode=state.mode,
            threshold=state.threshold,
        )
    else:  # a link to a category without data: say so, never switch silently
        summary = no_data_panel(state.category, options.no_data.get(state.category, ""))
    return mp.PageModel(
        manifest=rd.manifest,
        state=state,
        options=options,
        urls=layer_urls(rd),
        summary=summary,
        defaults=mp.defaults_store(state, options, default_region=default),
        overdose=overdose_model(rd),
        filters=provider_filters(rd),
        osm_attribution=osm_attribution(rd.manifest),
        release_day=region_release_day(rd),  # re-entry (viewmodel/reentry.py)
        address_example=address_example(rd),
    )


def render(pathname: str | None, search: str | None) -> html.Div:
    """The page for a URL: the map, the methods page or a page saying what is wrong."""
    geodata = geodata_dir()
    regions = list_regions(geodata)
    default = default_region(regions)
    region = requested_region(search, regions, default=default)
    try:
        rd = region_data(geodata, region)
        options = map_options(rd, regions)
        state = parse_state(search, options, default_region=default)
        model = page_model(rd, state, options, default=default)
        if (pathname or "/").rstrip("/").endswith("/methods"):
            return methods_page(rd.manifest, header=mp.header(model, page="methods"))
        page = mp.map_page(model, share_href=share_link(state, options, default=default))
        if state.query:
            _prefill_lookup(page, rd, state)
        return page
    except AtlasError as exc:
        logger.warning("cannot show region %r: %s", region, exc)
        return error_page(public_error(region, exc, geodata))  # never a server path
    except Exception:  # never a traceback in the browser
        logger.exception("rendering region %r failed", region)
        return error_page(
            f"The region {region!r} could not be shown because of an unexpected error; the "
            "server log has the details. Rebuilding the bundle often helps."
        )


def _prefill_lookup(page: html.Div, rd: RegionData, state: MapState) -> None:
    """Run a look-up named in the URL so the shared view shows it (results into the layout)."""
    panel, routes, _ = lookup_outputs(rd, state.query, state.mode)
    for comp in _walk(page):
        cid = getattr(comp, "id", None)
        if cid == mp.LOOKUP:
            comp.children = panel
        elif cid == mp.ROUTES:
            comp.children = routes


def _walk(comp: Any):
    yield comp
    children = getattr(comp, "children", None)
    if isinstance(children, (list, tuple)):
        for c in children:
            yield from _walk(c)
    elif children is not None and hasattr(children, "children"):
        yield from _walk(children)


def lookup_outputs(
    rd: RegionData, query: str, mode: str
) -> tuple[list, list, dict[str, Any] | None]:
    """Look-up panel, route layers and the map viewport for an address typed."""
    import dash_leaflet as dl

    place = find_place(rd, query)
    if place is None:
        return lookup_panel(None, query=query, mode=mode), [], None
    lookup = nearest_care(rd, place)
    routes: list = []
    for n in lookup.nearest:
        if n.mode != mode or not n.route:
            continue
        routes.append(
            dl.Polyline(
                positions=n.route,
                color=CATEGORY_COLOURS.get(n.category, "#333"),
                weight=5,
                opacity=0.85,
                dashArray="8 6" if mode == "walk" else None,
                pane="atlas-routes",
                children=dl.Tooltip(f"{n.name}: {n.minutes:g} min"),
            )
        )
    routes.append(
        dl.CircleMarker(
            center=[place.lat, place.lon],
            radius=8,
            color="#000",
            weight=3,
            fillColor="#fff",
            fillOpacity=1,
            pane="atlas-routes",
            children=dl.Tooltip(f"{place.matched}"),
        )
    )
    viewport = {
        "center": [place.lat, place.lon],
        "zoom": 14 if mode == "walk" else 13,
        "transition": "flyTo",
    }
    return lookup_panel(lookup, query=query, mode=mode), routes, viewport


def _region(store: dict[str, Any] | None) -> RegionData:
    if not store or "region" not in store:
        raise PreventUpdate
    try:
        return region_data(geodata_dir(), store["region"])
    except AtlasError as exc:
        logger.warning("callback for a region that is gone: %s", exc)
        raise PreventUpdate from exc


# ---------------------------------------------------------------------------------------
# Server callbacks
# ---------------------------------------------------------------------------------------


@callback(
    Output(PAGE, "children"),
    Input(mp.URL, "pathname"),
    State(mp.URL, "search"),
    State(RENDERED, "data"),
)
def render_page(
    pathname: str | None, search: str | None, rendered: dict[str, Any] | None
) -> html.Div:
    """Render the page the URL asks for (unless the layout already holds it)."""
    if rendered and rendered == page_key(pathname, search):
        raise PreventUpdate
    return render(pathname, search)


def page_key(pathname: str | None, search: str | None) -> dict[str, str]:
    """What identifies a rendered page: its path and query string (normalised)."""
    return {"path": pathname or "/", "search": (search or "").lstrip("?")}


@callback(
    Output(mp.SUMMARY, "children"),
    Input(mp.SETTLED, "data"),
    State(mp.REGION_STORE, "data"),
    prevent_initial_call=True,
)
def update_summary(settled: dict[str, Any] | None, store: dict[str, Any]) -> list:
    """People within and beyond the threshold, with the charts (once the threshold settles)."""
    rd = _region(store)
    category, mode, threshold = _settled(settled, rd)
    summary = access_summary(rd, category, mode, threshold)
    return summary_panel(summary, category=category, mode=mode, threshold=threshold)


def _settled(settled: dict[str, Any] | None, rd: RegionData) -> tuple[str, str, float]:
    """Category, mode and threshold from the settled store, or PreventUpdate if invalid."""
    settled = settled or {}
    category, mode = settled.get("category"), settled.get("mode")
    try:
        threshold = float(settled.get("threshold"))
    except (TypeError, ValueError) as exc:
        raise PreventUpdate from exc
    if category not in rd.categories or mode not in rd.modes or not 0 < threshold <= 240:
        raise PreventUpdate
    return category, mode, threshold


@callback(
    Output(mp.LEGEND, "children"),
    Input(mp.LEGEND_STATE, "data"),
    State(mp.REGION_STORE, "data"),
    prevent_initial_call=True,
)
def update_legend(legend: dict[str, Any] | None, store: dict[str, Any]) -> list:
    """Legend entries for the layers shown (once the controls settle)."""
    rd = _region(store)
    legend = legend or {}
    category, mode, threshold = _settled(legend, rd)
    layers, sites = legend.get("layers") or [], legend.get("sites") or []
    if not isinstance(layers, list) or not isinstance(sites, list):
        raise PreventUpdate
    state = MapState(
        region=rd.region,
        category=category,
        mode=mode,
        threshold=round(threshold),
        layers=tuple(str(v) for v in layers),
        sites=tuple(str(v) for v in sites if v in rd.site_categories),
    )
    model = mp.PageModel(
        manifest=rd.manifest,
        state=state,
        options=None,  # type: ignore[arg-type]
        urls={},
        summary=[],
        defaults={},
        overdose=overdose_model(rd),
    )
    return mp.legend(model)


@callback(
    Output(mp.DETAILS, "children"),
    Output(mp.SELECTION, "data"),
    Input(mp.SITES_LAYER, "clickData"),
    Input(mp.MAP, "clickData"),
    State(mp.REGION_STORE, "data"),
    prevent_initial_call=True,
)
def show_details(
    site: dict[str, Any] | None, click: dict[str, Any] | None, store: dict[str, Any]
) -> tuple:
    """Details of the care site or the place selected on the map."""
    rd = _region(store)
    if ctx.triggered_id == mp.SITES_LAYER:
        props = (site or {}).get("properties") or {}
        if not props or props.get("cluster"):
            raise PreventUpdate
        return provider_details(props), None
    latlng = (click or {}).get("latlng") or {}
    try:
        lat, lon = float(latlng["lat"]), float(latlng["lng"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PreventUpdate from exc
    props = area_at(rd, lon, lat)
    if props is None:
        return [
            html.P("This place lies outside the region's census areas.", className="atlas-small")
        ], None
    index = props.pop("_index")
    return area_details(props, categories=rd.categories, modes=rd.modes), area_outline(rd, index)


@callback(
    Output(mp.LOOKUP, "children"),
    Output(mp.ROUTES, "children"),
    Output(mp.MAP, "viewport"),
    Output(mp.QUERY_STORE, "data"),
    Input(mp.ADDRESS_GO, "n_clicks"),
    Input(mp.ADDRESS, "n_submit"),
    Input(mp.MODE, "value"),
    State(mp.ADDRESS, "value"),
    State(mp.REGION_STORE, "data"),
    prevent_initial_call=True,
)
def look_up(
    _clicks: int, _submits: int, mode: str, query: str | None, store: dict[str, Any]
) -> tuple:
    """Find an address and the nearest care from it, with routes."""
    query = (query or "").strip()
    if not query:
        if ctx.triggered_id == mp.MODE:
            raise PreventUpdate
        return (
            [html.P("Type an address first.", className="atlas-warning", role="alert")],
            [],
            no_update,
            "",
        )
    if len(query) > 200:
        return (
            [html.P("That address is too long.", className="atlas-warning", role="alert")],
            [],
            no_update,
            "",
        )
    rd = _region(store)
    if mode not in rd.modes:
        raise PreventUpdate
    panel, routes, viewport = lookup_outputs(rd, query, mode)
    if ctx.triggered_id == mp.MODE:
        viewport = None
    return panel, routes, viewport or no_update, query if viewport is not None or routes else ""


@callback(
    Output(mp.TILES, "children"),
    Input(mp.LAYER_CHECKLIST, "value"),
    State(mp.TILES, "children"),
    prevent_initial_call=True,
)
def toggle_tiles(layers: list[str], children: list | None) -> list:
    """The online tile layer, only when asked for (no update when nothing changes)."""
    wanted = "tiles" in (layers or [])
    if wanted == bool(children):
        raise PreventUpdate
    return mp.tile_layer() if wanted else []


# ---------------------------------------------------------------------------------------
# Clientside callbacks (assets/atlas.js)
# ---------------------------------------------------------------------------------------


def _cs(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="atlas", function_name=name)


# One clientside callback for everything the controls change on the map: one pass of the
# Dash renderer per key press or click (each callback costs a pass); each output is
# `no_update` unless it changes. Category and mode also change the bands' URL and threshold.
MAP_STATE_OUTPUTS = [
    Output(mp.SURFACE, "hideout"),
    Output(mp.THRESHOLD_TEXT, "children"),
    Output(mp.SITES_LAYER, "hideout"),
    Output(mp.AREAS_LAYER, "url"),
    Output(mp.AREAS_LAYER, "hideout"),
    Output(mp.OVERDOSE_LAYER, "url"),
    Output(mp.OVERDOSE_LAYER, "hideout"),
    Output(mp.BARRIERS, "url"),
    Output(mp.BARRIERS, "hideout"),
    Output(mp.SITABLE, "url"),
    Output(mp.SITABLE, "hideout"),
    Output(mp.TRANSIT, "url"),
    Output(mp.TRANSIT, "hideout"),
    Output(mp.STREETS_MAJOR, "hideout"),
    Output(mp.STREETS_MINOR, "url"),
    Output(mp.STREETS_MINOR, "hideout"),
    Output(mp.LABELS, "hideout"),
]
clientside_callback(
    _cs("mapState"),
    *MAP_STATE_OUTPUTS,
    Input(mp.THRESHOLD, "drag_value"),
    Input(mp.THRESHOLD, "value"),
    Input(mp.LAYER_CHECKLIST, "value"),
    Input(mp.OPACITY, "value"),
    Input(mp.SITES, "value"),
    Input(mp.FILTERS, "value"),
    Input(mp.UNIT, "value"),
    Input(mp.CATEGORY, "value"),
    Input(mp.MODE, "value"),
    Input(mp.MAP, "zoom"),
    Input(mp.MAP, "center"),
    Input(mp.QUERY_STORE, "data"),
    State(mp.REGION_STORE, "data"),
    State(mp.DEFAULTS, "data"),
    State(mp.SURFACE, "hideout"),
    State(mp.SITES_LAYER, "hideout"),
    State(mp.AREAS_LAYER, "hideout"),
    State(mp.AREAS_LAYER, "url"),
    State(mp.OVERDOSE_LAYER, "hideout"),
    State(mp.OVERDOSE_LAYER, "url"),
    State(mp.BARRIERS, "hideout"),
    State(mp.BARRIERS, "url"),
    State(mp.SITABLE, "hideout"),
    State(mp.SITABLE, "url"),
    State(mp.TRANSIT, "hideout"),
    State(mp.TRANSIT, "url"),
    State(mp.STREETS_MAJOR, "hideout"),
    State(mp.STREETS_MINOR, "hideout"),
    State(mp.LABELS, "hideout"),
    State(mp.STREETS_MINOR, "url"),
    State(mp.SETTLED, "data"),
    prevent_initial_call=True,
)
clientside_callback(  # capacity-aware access: practitioners per 10,000 people by area
    _cs("capacityLayer"),
    Output(mp.CAPACITY_LAYER, "url"),
    Output(mp.CAPACITY_LAYER, "hideout"),
    Input(mp.LAYER_CHECKLIST, "value"),
    Input(mp.OPACITY, "value"),
    Input(mp.CATEGORY, "value"),
    Input(mp.MODE, "value"),
    State(mp.REGION_STORE, "data"),
    State(mp.CAPACITY_LAYER, "hideout"),
    State(mp.CAPACITY_LAYER, "url"),
    prevent_initial_call=True,
)
clientside_callback(
    _cs("surfaceUrl"),
    Output(mp.SURFACE, "url"),
    Input(mp.CATEGORY, "value"),
    Input(mp.MODE, "value"),
    State(mp.REGION_STORE, "data"),
    prevent_initial_call=True,
)
clientside_callback(
    _cs("defaultThreshold"),
    Output(mp.THRESHOLD, "value"),
    Input(mp.CATEGORY, "value"),
    Input(mp.MODE, "value"),
    State(mp.DEFAULTS, "data"),
    prevent_initial_call=True,
)
for _panel in (mp.DETAILS, mp.LOOKUP):
    clientside_callback(
        _cs("reveal"),
        Output(f"{_panel}-shown", "data"),
        Input(_panel, "children"),
        State(_panel, "id"),
        prevent_initial_call=True,
    )


def share_link(state: MapState, options: Options, *, default: str) -> str:
    """The shareable link of a state (the server-side twin of ``atlas.encodeState``)."""
    return "/" + encode_state(state, options, default_region=default)


__all__ = ["PAGE", "configure", "render", "share_link"]
