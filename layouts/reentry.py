"""The map page's "Release day" panel: from a prison or jail to the nearest care.

:func:`release_day_section` lists the region's correctional facilities (those whose
releases land in a desert first); each opens to the nearest care of each kind with its
address and the travel time by car and on foot. Selecting a facility on the map fills
:data:`RELEASE_SELECTED` with the same card (callbacks/reentry.py). Pure: values in,
components out.
"""

from __future__ import annotations

from typing import Any

import dash_leaflet as dl
from dash import html
from dash_extensions.javascript import Namespace

from viewmodel.reentry import FacilityView, ReleaseDay

ns = Namespace("atlas")

FACILITIES_LAYER = "layer-facilities"
RELEASE_SECTION = "release-day"
RELEASE_SELECTED = "release-selected"


def facility_card(f: FacilityView, view: ReleaseDay, *, heading: bool = False) -> list:
    """What a facility's release day looks like: the nearest care of each kind."""
    where = f.kind_label + (f", {f.city}" if f.city else "")
    if not f.in_region:
        where += " (beyond the region, within its buffer)"
    items: list = []
    for row in f.care:
        trips = []
        for t in row.trips:
            text = t.text
            bits: list = [html.Span(text, className="atlas-trip-time")]
            if t.desert:
                bits.append(
                    html.Span(
                        f" desert: above {t.threshold_min:g} min" if t.threshold_min else " desert",
                        className="atlas-badge atlas-badge--desert",
                    )
                )
            if t.site_name:
                bits += [
                    " → ",
                    html.Strong(t.site_name),
                    html.Br(),
                    html.Span(t.site_address, className="atlas-small"),
                ]
            trips.append(html.Li(bits))
        label: list = [row.label]
        note = view.partial.get(row.category)
        if note:
            label.append(html.Span(f" (partial list: {note})", className="atlas-small"))
        items.append(html.Li([html.Span(label, className="atlas-care-kind"), html.Ul(trips)]))
    for cat, why in view.missing.items():
        items.append(html.Li(html.Span(f"{cat.capitalize()}: {why}.", className="atlas-small")))
    head = [html.H3(f.name)] if heading else []
    return [
        *head,
        html.P(where, className="atlas-small"),
        html.P(f"Releases land in a desert: {f.desert_for}.", className="atlas-release-desert")
        if f.in_desert
        else html.P("Every kind of care is within its threshold.", className="atlas-small"),
        html.Ul(items, className="atlas-release-care"),
    ]


def release_day_section(view: ReleaseDay | None) -> list:
    """The "Release day" section of the side panel (empty without facilities)."""
    if view is None:
        return []
    n = len(view.facilities)
    deserts = view.in_desert
    lead = (
        f"{n} prison{'s' if n != 1 else ''}, jail{'s' if n != 1 else ''} or detention "
        f"centre{'s' if n != 1 else ''} in or near the region. "
        f"{len(deserts)} release{'s' if len(deserts) == 1 else ''} people into a desert for at "
        "least one kind of care. People leaving need a medication for opioid use disorder and "
        "naloxone on the day they walk out."
    )
    cards = [
        html.Details(
            [
                html.Summary(
                    [f.name, html.Span(" · desert", className="atlas-badge atlas-badge--desert")]
                    if f.in_desert
                    else f.name,
                    className="atlas-release-summary",
                ),
                html.Div(facility_card(f, view), className="atlas-release-card"),
            ],
            id={"type": "release-facility", "index": k},
            className="atlas-release",
        )
        for k, f in enumerate(view.facilities)
    ]
    return [
        html.Section(
            [
                html.H2("Release day"),
                html.P(lead, className="atlas-small", id="release-lead"),
                html.Div(
                    html.P(
                        "Select a facility (□ on the map) or open one below.",
                        className="atlas-small",
                    ),
                    id=RELEASE_SELECTED,
                    **{"aria-live": "polite"},
                ),
                html.Div(cards, className="atlas-release-list"),
                html.P(
                    "Travel time from the facility's door to the nearest site, by the same rule "
                    "as for people (nearest street, walked to it). No transit timetable: bus "
                    "times are not given."
                    + (f" Facilities: {view.source}." if view.source else ""),
                    className="atlas-small",
                ),
            ],
            className="atlas-section",
            id=RELEASE_SECTION,
        )
    ]


def facilities_map_layer(url: str | None, *, show: bool = True) -> Any:
    """The facilities' markers (clicking one fills the release-day panel)."""
    return dl.GeoJSON(
        id=FACILITIES_LAYER,
        url=url if show else None,
        pointToLayer=ns("facilityPoint"),
        filter=ns("showFilter"),
        hideout={"show": bool(show and url)},
    )


def facilities_legend() -> list:
    """The legend entry of the facilities layer."""
    return [
        html.Li(
            [
                html.Span(
                    className="atlas-facility atlas-facility--legend", **{"aria-hidden": "true"}
                ),
                " prison, jail or detention centre (select: release day)",
            ]
        ),
        html.Li(
            [
                html.Span(
                    className="atlas-facility atlas-facility--desert atlas-facility--legend",
                    **{"aria-hidden": "true"},
                ),
                " … whose releases land in a desert",
            ]
        ),
    ]


def partial_categories(manifest: dict[str, Any]) -> set[str]:
    """Categories whose provider list the config marks partial (from the manifest inputs)."""
    return {
        str(i.get("category"))
        for i in manifest.get("inputs", [])
        if i.get("partial") and i.get("category")
    }
