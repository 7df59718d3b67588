"""Re-entry callbacks: the facilities layer follows the layer switches; a click shows a card.

The facilities layer (layouts/reentry.py) is fetched when its switch is first turned on and
hidden through its hideout afterwards; selecting a facility on the map puts its release-day
card (the nearest care of each kind, with address and travel time) into the panel.
"""

from __future__ import annotations

from typing import Any

from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, html
from dash.exceptions import PreventUpdate

from layouts import map_page as mp
from layouts.reentry import FACILITIES_LAYER, RELEASE_SELECTED, facility_card
from viewmodel.data import region_data
from viewmodel.reentry import ReleaseDay, region_release_day

clientside_callback(
    ClientsideFunction(namespace="atlasReentry", function_name="facilitiesShown"),
    Output(FACILITIES_LAYER, "url"),
    Output(FACILITIES_LAYER, "hideout"),
    Input(mp.LAYER_CHECKLIST, "value"),
    State(mp.REGION_STORE, "data"),
    State(FACILITIES_LAYER, "hideout"),
    State(FACILITIES_LAYER, "url"),
    prevent_initial_call=True,
)


def selected_card(view: ReleaseDay | None, feature: dict[str, Any] | None) -> list:
    """The release-day card of the facility a map click selected (by its ``id``)."""
    if view is None or not isinstance(feature, dict):
        raise PreventUpdate
    fid = str((feature.get("properties") or {}).get("id", ""))
    for f in view.facilities:
        if f.id == fid:
            return facility_card(f, view, heading=True)
    return [html.P("That facility is not in this build.", className="atlas-small")]


@callback(
    Output(RELEASE_SELECTED, "children"),
    Input(FACILITIES_LAYER, "clickData"),
    State(mp.REGION_STORE, "data"),
    prevent_initial_call=True,
)
def show_release_day(feature: dict[str, Any] | None, store: dict[str, Any] | None) -> list:
    """Fill the release-day panel with the selected facility's card."""
    from callbacks.map import geodata_dir

    region = (store or {}).get("region")
    if not region:
        raise PreventUpdate
    return selected_card(region_release_day(region_data(geodata_dir(), region)), feature)
