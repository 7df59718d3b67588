"""Callbacks of the What-if panel, thin: one action → :mod:`viewmodel.scenario` → components.

The scenario lives in the browser (``scenario-store``), so any server process answers any
change. One server callback takes every action that changes the scenario or the
suggestions (a map click in add mode, sent by ``assets/atlas.js``; "Add at the map centre";
an address; "What if this site closed?" from a site's details; undo, start over, suggest,
accept, load) and the map's settled category, mode and threshold; it answers with the new
store, the panel, and the small map layers of the change (:func:`respond`, a plain function
the tests call): the minute bands the scenario changes, the outlines of the cells that left
or entered the desert, the sites, and the areas' new travel times, which a clientside
callback (``atlas.scenarioAreas``) puts into the area layer's hideout with the legend's
"Showing: scenario …" line; an empty scenario sends none of them (the baseline again).
Saving, loading the list and exporting are a second callback (:func:`files`). The add-mode
switch and the "show the changes" switch run in the browser (``assets/atlas.js``,
scenario section).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, fields
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
    dcc,
    no_update,
)
from dash.exceptions import PreventUpdate

from etl._errors import AtlasError
from etl.engine.scenario import Scenario, evaluate
from layouts import map_page as mp
from layouts import scenario as sc
from layouts import townhall as th
from viewmodel import editing, serving
from viewmodel import scenario as aps
from viewmodel.data import RegionData, region_data
from viewmodel.lookup import QUALITY_LABELS, find_place

logger = logging.getLogger(__name__)


def _geodata() -> Path:
    # The app's configured geodata folder (callbacks.map holds it; app.py sets it).
    from callbacks.map import geodata_dir

    return geodata_dir()


@dataclass
class Reply:
    """Outputs of :func:`update_scenario`; ``no_update`` where an output stays as it is."""

    store: Any = no_update
    message: Any = no_update
    result: Any = no_update
    change: Any = no_update
    bands: Any = no_update
    areas: Any = no_update
    sites: Any = no_update
    suggestions: Any = no_update
    suggest_panel: Any = no_update
    suggest_layer: Any = no_update
    accept_disabled: Any = no_update
    name: Any = no_update
    undo_disabled: Any = no_update
    reset_disabled: Any = no_update

    def outputs(self) -> tuple:
        """The values in the order of the callback's outputs."""
        return tuple(getattr(self, f.name) for f in fields(self))


def settled_view(settled: dict[str, Any] | None, rd: RegionData) -> tuple[str, str, float]:
    """Category, mode and threshold of the map (PreventUpdate when the store makes no sense)."""
    settled = settled or {}
    category, mode = settled.get("category"), settled.get("mode")
    try:
        threshold = float(settled.get("threshold"))
    except (TypeError, ValueError) as exc:
        raise PreventUpdate from exc
    if category not in rd.categories or mode not in rd.modes or not 0 < threshold <= 240:
        raise PreventUpdate
    return category, mode, threshold


def _latlng(value: Any) -> tuple[float, float] | None:
    """(lon, lat) from a dash-leaflet ``clickData`` latlng or a ``center`` prop."""
    try:
        if isinstance(value, dict):
            value = value.get("latlng", value)
            return float(value["lng"]), float(value["lat"])
        if isinstance(value, list | tuple) and len(value) == 2:
            return float(value[1]), float(value[0])
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _no_suggestions() -> dict[str, Any]:
    return {
        "suggestions": None,
        "suggest_panel": [],
        "suggest_layer": sc.EMPTY,
        "accept_disabled": True,
    }


def show(
    rd: RegionData, scenario: Scenario, *, category: str, mode: str, threshold: float
) -> dict[str, Any]:
    """Panel and map layers of a scenario for the map's category, mode and threshold."""
    empty = len(scenario) == 0
    base = {
        "store": aps.scenario_to_store(scenario),
        "undo_disabled": empty,
        "reset_disabled": empty,
    }
    if empty:
        return base | {
            "result": sc.empty_result(category, mode, threshold),
            "change": sc.EMPTY,
            "bands": sc.EMPTY,
            "areas": None,
            "sites": sc.EMPTY,
        }
    access = aps.baseline_access(rd, mode)
    view = aps.scenario_view(access, scenario, category=category, threshold_min=threshold)
    return base | {
        "result": sc.result_panel(view, category=category, mode=mode, threshold=threshold),
        "change": view.change_geojson,
        "bands": view.bands_geojson,
        "areas": view.area_overrides | {"showing": view.showing},
        "sites": view.sites_geojson,
    }


def respond(
    trigger: str,
    *,
    rd: RegionData,
    store: dict[str, Any] | None,
    settled: dict[str, Any] | None,
    centre: Any = None,
    address: str | None = None,
    action: dict[str, Any] | None = None,
    k: Any = None,
    suggestions: dict[str, Any] | None = None,
    saved: str | None = None,
    geodata: Path | None = None,
) -> Reply:
    """Apply one action of the What-if panel and say what changed.

    Parameters
    ----------
    trigger
        The component that fired: ``scenario-add-centre``,
        ``scenario-address-add``/``scenario-address``, ``scenario-action`` (``{"kind":
        "close", "id": ...}`` from a site's details, ``{"kind": "add", "lon", "lat"}``
        from a click on the map in add mode, or ``{"kind": "restore", "scenario": ...}``
        for a scenario that came with the link), ``scenario-undo``, ``scenario-reset``,
        ``scenario-suggest``, ``scenario-accept``, ``scenario-load`` or
        :data:`layouts.map_page.SETTLED`.
    rd
        The region.
    store
        The scenario the page holds.
    settled
        The map's category, mode and threshold.
    centre, address, action, k, suggestions, saved
        The values of the inputs and states that go with ``trigger``.
    geodata
        The geodata folder (saved scenarios); defaults to the app's.

    Returns
    -------
    Reply

    Raises
    ------
    PreventUpdate
        For input it cannot act on (nonsense from the browser).
    """
    category, mode, threshold = settled_view(settled, rd)
    try:
        scenario = aps.scenario_from_store(store, region=rd.region)
    except AtlasError as exc:
        return Reply(message=sc.message(f"{exc}. Start over to continue.", alert=True))
    geodata = geodata or _geodata()
    extra: dict[str, Any] = {}
    try:
        if trigger == mp.SETTLED:
            note = None
            if suggestions and (
                suggestions.get("category"),
                suggestions.get("mode"),
                suggestions.get("threshold_min"),
            ) != (category, mode, threshold):
                extra |= _no_suggestions()
            if len(scenario) == 0 and not extra:
                return Reply(result=sc.empty_result(category, mode, threshold))
        elif trigger == sc.ADD_CENTRE or (
            trigger == sc.ACTION and isinstance(action, dict) and action.get("kind") == "add"
        ):
            if trigger == sc.ADD_CENTRE:
                where = _latlng(centre)
            else:
                where = _latlng({"lng": action.get("lon"), "lat": action.get("lat")})
            if where is None:
                raise PreventUpdate
            scenario = aps.add_site(scenario, category=category, lon=where[0], lat=where[1])
            added = scenario.changes[-1]
            note = f"Added {added.name} at {where[1]:.5f}, {where[0]:.5f}."
        elif trigger in (sc.ADDRESS_GO, sc.ADDRESS):
            text = (address or "").strip()
            if not text:
                return Reply(message=sc.message("Type an address first.", alert=True))
            place = find_place(rd, text[:200])
            if place is None:
                return Reply(
                    message=sc.message(
                        f"No address matching “{text[:200]}” was found in this region; try a "
                        "street address with its city or ZIP code, or “lat, lon”.",
                        alert=True,
                    )
                )
            scenario = aps.add_site(
                scenario,
                category=category,
                lon=place.lon,
                lat=place.lat,
                name=f"Site at {place.matched}",
            )
            note = f"Added a site at {place.matched}."
            if not place.trusted:
                note += f" Approximate: {QUALITY_LABELS.get(place.quality, place.quality)}."
        elif (
            trigger == sc.ACTION and isinstance(action, dict) and action.get("kind") == "restore"
        ):
            try:
                scenario = aps.scenario_from_store(action.get("scenario"), region=rd.region)
            except AtlasError as exc:
                text = str(exc).removeprefix("the scenario held by the page: ")
                msg = f"The scenario in this link cannot be opened ({text}); the map shows "
                msg += "the data."
                return Reply(message=sc.message(msg, alert=True))
            if len(scenario) == 0:
                raise PreventUpdate
            n = len(scenario)
            note = f"Opened the scenario in the link: “{scenario.name}”, {n} change"
            note += "s." if n != 1 else "."
            extra["name"] = scenario.name
        elif trigger == sc.ACTION:
            if not isinstance(action, dict) or action.get("kind") != "close":
                raise PreventUpdate
            access = aps.baseline_access(rd, mode)
            scenario, note = aps.close_site(
                scenario, str(action.get("id") or ""), providers=access.providers
            )
            if note is None:
                note = f"Closed {aps.site_label(str(action.get('id')), access.providers)}."
        elif trigger == sc.UNDO:
            if len(scenario) == 0:
                return Reply(message=sc.message("Nothing to undo."))
            last = scenario.changes[-1]
            scenario = aps.undo(scenario)
            access = aps.baseline_access(rd, mode)
            note = f"Undone: {aps.describe_change(last, access.providers)}."
        elif trigger == sc.RESET:
            scenario = Scenario(name=scenario.name, region=rd.region)
            note = "Started over: no changes."
        elif trigger == sc.SUGGEST:
            access = aps.baseline_access(rd, mode)
            data = aps.suggestions(
                access, scenario, category=category, threshold_min=threshold, k=k
            )
            return Reply(
                suggestions=data,
                suggest_panel=sc.suggestions_panel(data),
                suggest_layer=aps.suggestions_geojson(data),
                accept_disabled=not data["items"],
                message=sc.message(
                    f"{len(data['items'])} site(s) suggested in {data['elapsed_ms']:.0f} ms."
                ),
            )
        elif trigger == sc.ACCEPT:
            if suggestions and (
                suggestions.get("category"),
                suggestions.get("mode"),
            ) != (category, mode):
                return Reply(
                    message=sc.message(
                        "These suggestions were for other care or travel; suggest again.",
                        alert=True,
                    ),
                    **_no_suggestions(),
                )
            n = len((suggestions or {}).get("items") or [])
            scenario = aps.accept_suggestions(scenario, suggestions)
            note = f"Added the {n} suggested site{'s' if n != 1 else ''}."
            extra |= _no_suggestions()
        elif trigger == sc.LOAD:
            if not saved:
                return Reply(message=sc.message("Choose a saved scenario first.", alert=True))
            scenario = aps.load_saved(geodata, rd.region, str(saved))
            note = f"Loaded “{scenario.name}” ({len(scenario)} changes)."
            extra["name"] = scenario.name
            extra |= _no_suggestions()
        else:
            raise PreventUpdate
        out = show(rd, scenario, category=category, mode=mode, threshold=threshold)
    except AtlasError as exc:
        reply = Reply(message=sc.message(str(exc), alert=True))
        if trigger == mp.SETTLED:  # the layers drawn were for other care or travel
            reply.change, reply.bands, reply.areas = sc.EMPTY, sc.EMPTY, None
        return reply
    if note is not None:
        out["message"] = sc.message(note)
    return Reply(**(out | extra))


def _region(store: dict[str, Any] | None) -> RegionData:
    if not store or "region" not in store:
        raise PreventUpdate
    try:
        return region_data(_geodata(), store["region"])
    except AtlasError as exc:
        raise PreventUpdate from exc


@callback(
    Output(sc.STORE, "data"),
    Output(sc.MESSAGE, "children"),
    Output(sc.RESULT, "children"),
    Output(sc.CHANGE_LAYER, "data"),
    Output(sc.BANDS_LAYER, "data"),
    Output(sc.AREAS_STORE, "data"),
    Output(sc.SITES_LAYER, "data"),
    Output(sc.SUGGESTIONS, "data"),
    Output(sc.SUGGEST_RESULT, "children"),
    Output(sc.SUGGEST_LAYER, "data"),
    Output(sc.ACCEPT, "disabled"),
    Output(sc.NAME, "value"),
    Output(sc.UNDO, "disabled"),
    Output(sc.RESET, "disabled"),
    Input(sc.ADD_CENTRE, "n_clicks"),
    Input(sc.ADDRESS_GO, "n_clicks"),
    Input(sc.ADDRESS, "n_submit"),
    Input(sc.ACTION, "data"),
    Input(sc.UNDO, "n_clicks"),
    Input(sc.RESET, "n_clicks"),
    Input(sc.SUGGEST, "n_clicks"),
    Input(sc.ACCEPT, "n_clicks"),
    Input(sc.LOAD, "n_clicks"),
    Input(mp.SETTLED, "data"),
    State(mp.MAP, "center"),
    State(sc.ADDRESS, "value"),
    State(sc.K, "value"),
    State(sc.SUGGESTIONS, "data"),
    State(sc.SAVED, "value"),
    State(sc.STORE, "data"),
    State(mp.REGION_STORE, "data"),
    prevent_initial_call=True,
)
def update_scenario(
    _centre_clicks: int,
    _address_clicks: int,
    _address_submits: int,
    action: dict[str, Any] | None,
    _undo: int,
    _reset: int,
    _suggest: int,
    _accept: int,
    _load: int,
    settled: dict[str, Any] | None,
    centre: Any,
    address: str | None,
    k: Any,
    suggestions: dict[str, Any] | None,
    saved: str | None,
    store: dict[str, Any] | None,
    region: dict[str, Any] | None,
) -> tuple:
    """Every change of the scenario or the suggestions, in one round trip (see :func:`respond`)."""
    rd = _region(region)
    reply = respond(
        str(ctx.triggered_id),
        rd=rd,
        store=store,
        settled=settled,
        centre=centre,
        address=address,
        action=action,
        k=k,
        suggestions=suggestions,
        saved=saved,
    )
    return reply.outputs()


# ---------------------------------------------------------------------------------------
# Files: save, list, export
# ---------------------------------------------------------------------------------------


def save(
    rd: RegionData,
    store: dict[str, Any] | None,
    name: str | None,
    *,
    geodata: Path,
    token: Any = None,
) -> tuple[Any, Any, Any]:
    """Save the scenario under its name; returns the status, the saved list and its value.

    Only an editor may (:func:`viewmodel.editing.check_write`, the token typed under
    "Town-hall views" or sent in a header).
    """
    try:
        editing.check_write(token, what="save scenario")
        scenario = aps.scenario_from_store(store, region=rd.region)
        scenario = scenario.renamed(aps.clean_name(name, fallback="Untitled scenario"))
        path = aps.save_named(geodata, scenario, region=rd.region)
    except AtlasError as exc:
        return sc.message(str(exc), alert=True), no_update, no_update
    except OSError as exc:
        logger.error("save scenario of %s: %s: %s", rd.region, type(exc).__name__, exc)
        text = f"The scenario was not saved: {serving.os_error_text(exc)}."
        return sc.message(text, alert=True), no_update, no_update
    options = sc.saved_options(aps.list_saved(geodata, rd.region))
    return (
        sc.message(f"Saved “{scenario.name}” as {path.name} with the region {rd.region}."),
        options,
        path.stem,
    )


def export(
    rd: RegionData,
    store: dict[str, Any] | None,
    settled: dict[str, Any] | None,
    name: str | None,
    *,
    fmt: str,
) -> tuple[Any, Any]:
    """The scenario's layers as a zip to download; returns the status and the download."""
    category, mode, threshold = settled_view(settled, rd)
    try:
        scenario = aps.scenario_from_store(store, region=rd.region)
        if len(scenario) == 0:
            msg = "This scenario has no changes yet; nothing to export."
            return sc.message(msg, alert=True), None
        scenario = scenario.renamed(aps.clean_name(name, fallback="Untitled scenario"))
        base = aps.baseline_access(rd, mode)
        result = evaluate(base, scenario, category=category, threshold_min=threshold)
        filename, data = aps.export_zip(result, fmt=fmt, manifest=rd.manifest)
    except AtlasError as exc:
        return sc.message(str(exc), alert=True), None
    return sc.message(f"Downloading {filename}."), dcc.send_bytes(data, filename)


@callback(
    Output(sc.FILE_STATUS, "children"),
    Output(sc.SAVED, "options"),
    Output(sc.SAVED, "value"),
    Output(sc.DOWNLOAD, "data"),
    Input(sc.SAVE, "n_clicks"),
    Input(sc.EXPORT_GEOJSON, "n_clicks"),
    Input(sc.EXPORT_CSV, "n_clicks"),
    State(sc.NAME, "value"),
    State(sc.STORE, "data"),
    State(mp.SETTLED, "data"),
    State(mp.REGION_STORE, "data"),
    State(th.EDITOR_TOKEN, "value"),
    prevent_initial_call=True,
)
def files(
    _save: int,
    _geojson: int,
    _csv: int,
    name: str | None,
    store: dict[str, Any] | None,
    settled: dict[str, Any] | None,
    region: dict[str, Any] | None,
    token: str | None = None,
) -> tuple:
    """Save the scenario with the region (editors only), or download its layers."""
    rd = _region(region)
    if ctx.triggered_id == sc.SAVE:
        return (*save(rd, store, name, geodata=_geodata(), token=token), no_update)
    fmt = "geojson" if ctx.triggered_id == sc.EXPORT_GEOJSON else "csv"
    status, download = export(rd, store, settled, name, fmt=fmt)
    return status, no_update, no_update, download if download is not None else no_update


@callback(
    Output(sc.SAVED, "options", allow_duplicate=True),
    Output(sc.WARM, "data"),
    Input(mp.REGION_STORE, "data"),
    State(mp.SETTLED, "data"),
    prevent_initial_call="initial_duplicate",
)
def open_panel(region: dict[str, Any] | None, settled: dict[str, Any] | None) -> tuple:
    """When the page opens: list the saved scenarios and warm the baseline in the background."""
    rd = _region(region)
    try:
        category, mode, threshold = settled_view(settled, rd)
    except PreventUpdate:
        category, mode, threshold = None, (rd.modes or [None])[0], None
    warming = False
    if mode is not None and not aps.is_loaded(rd, mode):
        threading.Thread(
            target=aps.warm_baseline,
            args=(rd, mode),
            kwargs={"category": category, "threshold_min": threshold},
            name="atlas-scenario-warm",
            daemon=True,
        ).start()
        warming = True
    return sc.saved_options(aps.list_saved(_geodata(), rd.region)), {"warming": warming}


# ---------------------------------------------------------------------------------------
# Clientside (assets/atlas.js, scenario section)
# ---------------------------------------------------------------------------------------


def _cs(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="atlas", function_name=name)


clientside_callback(
    _cs("scenarioAddMode"),
    Output(sc.ADD_MODE, "data"),
    Output(sc.ADD_TOGGLE, "children"),
    Output(sc.ADD_HINT, "children"),
    Input(sc.ADD_TOGGLE, "n_clicks"),
    State(sc.ADD_MODE, "data"),
    prevent_initial_call=True,
)
clientside_callback(
    _cs("scenarioReveal"),
    Output(sc.REVEALED, "data"),
    Input(sc.RESULT, "children"),
    prevent_initial_call=True,
)
clientside_callback(
    _cs("scenarioShow"),
    Output(sc.CHANGE_LAYER, "hideout"),
    Output(sc.SITES_LAYER, "hideout"),
    Output(sc.SUGGEST_LAYER, "hideout"),
    Output(sc.BANDS_LAYER, "hideout"),
    Input(sc.SHOW, "value"),
    State(sc.CHANGE_LAYER, "hideout"),
    State(sc.SITES_LAYER, "hideout"),
    State(sc.SUGGEST_LAYER, "hideout"),
    State(sc.BANDS_LAYER, "hideout"),
    prevent_initial_call=True,
)
# A scenario that came with the link is opened once the page is up; the address bar and the
# share link carry the scenario the panel holds (``w=``), so a view with changes can be shared.
clientside_callback(
    _cs("scenarioRestore"),
    Output(sc.LINKED, "data"),
    Input(sc.RESTORE, "data"),
)
clientside_callback(
    _cs("scenarioLink"),
    Output(sc.LINKED, "data", allow_duplicate=True),
    Input(sc.STORE, "data"),
    prevent_initial_call=True,
)
# The area colours follow the scenario: its values go into the area layer's hideout (the
# map's own callback keeps the other keys of that hideout), and the legend says so.
clientside_callback(
    _cs("scenarioAreas"),
    Output(mp.AREAS_LAYER, "hideout", allow_duplicate=True),
    Output(sc.SHOWING, "children"),
    Output(sc.SHOWING, "hidden"),
    Input(sc.AREAS_STORE, "data"),
    Input(sc.SHOW, "value"),
    State(mp.AREAS_LAYER, "hideout"),
    prevent_initial_call=True,
)


__all__ = ["Reply", "export", "respond", "save", "show"]
