"""The What-if panel: add or close sites, see who gains or loses access, suggest where to open.

:func:`scenario_section` is the panel beside the map (its controls and the places the
callbacks in ``callbacks/scenario.py`` fill); :func:`scenario_map_layers` are the map layers
it draws: the scenario's minute bands (over the baseline's, in their pane), the outlines of
the cells that left or entered the desert, the added and closed sites, and the suggested
sites; :func:`showing_banner` says in the legend which scenario the map shows.
:func:`result_panel` and :func:`suggestions_panel` turn the plain values of
:mod:`viewmodel.scenario` into components. No I/O here.
"""

from __future__ import annotations

from typing import Any, Final

import dash_leaflet as dl
from dash import dcc, html
from dash_extensions.javascript import Namespace

from etl.categories import CATEGORY_COLOURS, CATEGORY_LABELS, CATEGORY_SYMBOLS
from viewmodel.editing import scenario_editing_text
from viewmodel.scenario import K_RANGE, MAX_NAME_CHARS, ScenarioView
from viewmodel.state import MapState, decode_scenario

ns = Namespace("atlas")

# Component ids (kebab-case nouns, as layouts.map_page).
SECTION = "scenario-section"
STORE = "scenario-store"
ACTION = "scenario-action"
ADD_MODE = "scenario-add-mode"
ADD_TOGGLE = "scenario-add-toggle"
ADD_HINT = "scenario-add-hint"
ADD_CENTRE = "scenario-add-centre"
ADDRESS = "scenario-address"
ADDRESS_GO = "scenario-address-add"
MESSAGE = "scenario-message"
RESULT = "scenario-result"
UNDO = "scenario-undo"
RESET = "scenario-reset"
SHOW = "scenario-show-changes"
K = "scenario-k"
SUGGEST = "scenario-suggest"
SUGGESTIONS = "scenario-suggestions"
SUGGEST_RESULT = "scenario-suggest-result"
ACCEPT = "scenario-accept"
NAME = "scenario-name"
SAVE = "scenario-save"
FILE_STATUS = "scenario-file-status"
SAVED = "scenario-saved"
LOAD = "scenario-load"
EXPORT_GEOJSON = "scenario-export-geojson"
EXPORT_CSV = "scenario-export-csv"
DOWNLOAD = "scenario-download"
WARM = "scenario-warm"
REVEALED = "scenario-revealed"
RESTORE = "scenario-restore"
LINKED = "scenario-linked"
CHANGE_LAYER = "layer-scenario-change"
BANDS_LAYER = "layer-scenario-bands"
AREAS_STORE = "scenario-areas"
SHOWING = "scenario-showing"
SITES_LAYER = "layer-scenario-sites"
SUGGEST_LAYER = "layer-scenario-suggest"

#: The map pane of the change cells: above the desert (370), below the zoning rules (390).
PANE: Final[tuple[str, int]] = ("atlas-scenario", 380)
#: The pane of the baseline minute bands (layouts.map_page.PANES): the scenario's bands are
#: drawn in it, over the baseline's, which they clear beneath them first.
SURFACE_PANE: Final[str] = "atlas-surface"

#: Cells that left the desert (people gain access): light teal, dark teal rim.
GAIN_FILL: Final[str] = "#80CDC1"
GAIN_LINE: Final[str] = "#01665E"
#: Cells that fell into the desert (people lose access): dark crimson, darker than the desert.
LOSS_FILL: Final[str] = "#67001F"
LOSS_LINE: Final[str] = "#000000"

EMPTY: Final[dict[str, Any]] = {"type": "FeatureCollection", "features": []}

HOW: Final[dict[str, str]] = {"drive": "by car", "walk": "on foot"}


def _symbol(category: str, size: int = 14) -> html.Span:
    return html.Span(
        className=f"atlas-symbol atlas-symbol--{CATEGORY_SYMBOLS.get(category, 'circle')}",
        style={"--c": CATEGORY_COLOURS.get(category, "#333"), "--s": f"{size}px"},
        **{"aria-hidden": "true"},
    )


def _outline(line: str) -> html.Span:
    return html.Span(
        className="atlas-swatch",
        style={"background": "transparent", "border": f"2px solid {line}"},
        **{"aria-hidden": "true"},
    )


def showing_banner() -> html.P:
    """Above the legend: which scenario the map shows (filled by ``atlas.scenarioAreas``)."""
    return html.P("", id=SHOWING, hidden=True, className="atlas-scn-showing", role="status")


def context_line(category: str, mode: str, threshold: float) -> html.P:
    """What the numbers are for: the map's care, travel mode and threshold."""
    return html.P(
        [
            "For ",
            _symbol(category),
            " ",
            html.Strong(CATEGORY_LABELS.get(category, category)),
            f", {HOW.get(mode, mode)}, threshold {threshold:g} min ",
            html.Span("(set under Care, Travel and Desert threshold).", className="atlas-small"),
        ],
        id="scenario-context",
        className="atlas-scn-context",
    )


def empty_result(category: str, mode: str, threshold: float) -> list:
    """The panel before any change."""
    return [
        context_line(category, mode, threshold),
        html.P(
            "No changes yet. Add a site or close one to see who would gain or lose access "
            f"within {threshold:g} min {HOW.get(mode, mode)}.",
            id="scenario-lead",
            className="atlas-small",
        ),
    ]


def _number(value: int, label: str, *, kind: str, number_id: str) -> html.Div:
    return html.Div(
        [
            html.Strong(f"{value:,}", id=number_id, className="atlas-scn-number"),
            html.Span(label, className="atlas-small"),
        ],
        className=f"atlas-scn-stat atlas-scn-stat--{kind}",
    )


def result_panel(view: ScenarioView, *, category: str, mode: str, threshold: float) -> list:
    """The scenario's effect: headline numbers, sentences, before/after table, areas, notes."""
    s = view.summary
    stats = html.Div(
        [
            _number(
                int(s["people_gained"]),
                f"gain access within {threshold:g} min",
                kind="gain",
                number_id="scenario-gained",
            ),
            _number(
                int(s["people_lost"]),
                f"lose access within {threshold:g} min",
                kind="loss",
                number_id="scenario-lost",
            ),
        ],
        className="atlas-scn-stats",
    )
    table = html.Table(
        [
            html.Caption(
                f"Baseline and scenario side by side, threshold {threshold:g} min "
                f"{HOW.get(mode, mode)}"
            ),
            html.Thead(
                html.Tr(
                    [
                        html.Th("", scope="col"),
                        html.Th("Baseline", scope="col"),
                        html.Th("Scenario", scope="col"),
                        html.Th("Change", scope="col"),
                    ]
                )
            ),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Th(r["label"], scope="row"),
                            html.Td(r["before"]),
                            html.Td(r["after"]),
                            html.Td(r["change"]),
                        ]
                    )
                    for r in view.comparison
                ]
            ),
        ],
        className="atlas-table atlas-table--compact",
        id="scenario-compare",
    )
    parts: list = [
        context_line(category, mode, threshold),
        html.P(view.lead, id="scenario-lead", className="atlas-lead"),
        stats,
        html.Ul([html.Li(t) for t in view.statements], className="atlas-facts-list"),
        table,
        html.P(
            [
                "The map shows this scenario: travel-time bands, the desert and travel time "
                "by area. Outlined: ",
                html.Span([_outline(GAIN_LINE), " leaves the desert (gains access)"]),
                html.Span([_outline(LOSS_LINE), " falls into the desert (loses access)"]),
            ],
            className="atlas-small atlas-scn-key",
            id="scenario-map-key",
        ),
    ]
    if view.areas:
        parts.append(
            html.Details(
                [
                    html.Summary("Areas that change most"),
                    html.Table(
                        [
                            html.Thead(
                                html.Tr(
                                    [
                                        html.Th("Area", scope="col"),
                                        html.Th("Gain", scope="col"),
                                        html.Th("Lose", scope="col"),
                                        html.Th("Mean time", scope="col"),
                                    ]
                                )
                            ),
                            html.Tbody(
                                [
                                    html.Tr(
                                        [
                                            html.Th(a["name"], scope="row"),
                                            html.Td(a["gained"]),
                                            html.Td(a["lost"]),
                                            html.Td(f"{a['before']} → {a['after']}"),
                                        ]
                                    )
                                    for a in view.areas
                                ]
                            ),
                        ],
                        className="atlas-table atlas-table--compact",
                    ),
                ],
                className="atlas-scn-areas",
            )
        )
    if view.notes:
        parts.append(
            html.Ul(
                [html.Li(n) for n in view.notes],
                className="atlas-scn-notes",
                id="scenario-notes",
            )
        )
    parts.append(changes_list(view.changes))
    return parts


def changes_list(changes: list[dict[str, Any]]) -> html.Div:
    """The changes, oldest first; those for other care are marked."""
    items = [
        html.Li(
            [c["text"], *([] if c["relevant"] else [html.Em(" (other care: not counted here)")])]
        )
        for c in changes
    ]
    return html.Div(
        [
            html.H3(f"Changes ({len(changes)})", className="atlas-scn-h"),
            html.Ol(items, id="scenario-changes", className="atlas-scn-changes"),
        ]
    )


def suggestions_panel(data: dict[str, Any] | None) -> list:
    """Suggested sites with the people each adds, or the message why there are none."""
    if not data:
        return []
    items = data.get("items") or []
    how = HOW.get(data.get("mode", ""), "")
    out: list = [html.P(data.get("message", ""), id="scenario-suggest-message")]
    if items:
        out.append(
            html.Ol(
                [
                    html.Li(
                        [
                            html.Strong(f"+{i['people_added']:,}"),
                            f" people within {data['threshold_min']:g} min {how} ",
                            html.Span(f"({i['lat']:.4f}, {i['lon']:.4f})", className="atlas-small"),
                        ]
                    )
                    for i in items
                ],
                id="scenario-suggest-list",
                className="atlas-scn-suggest-list",
            )
        )
    out.append(
        html.P(
            f"From {data.get('n_candidates', 0):,} candidate street points"
            + (" outside zoning barriers" if data.get("blocked") else "")
            + ", one per ~350 m hexagon.",
            className="atlas-small",
        )
    )
    return out


def message(text: str, *, alert: bool = False) -> html.P:
    """A one-line status (an alert for errors)."""
    if alert:
        return html.P(text, className="atlas-warning", role="alert")
    return html.P(text, className="atlas-small atlas-scn-status")


def saved_options(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Dropdown options of the saved scenarios."""
    return [
        {
            "label": f"{i['name']} ({i['changes']} change{'s' if i['changes'] != 1 else ''})",
            "value": i["slug"],
        }
        for i in items
    ]


def close_site_button(props: dict[str, Any]) -> html.Button | None:
    """A button for a care site's details: close it in the What-if scenario (None: no id)."""
    site_id = props.get("id")
    if not site_id:
        return None
    return html.Button(
        "What if this site closed?",
        type="button",
        className="atlas-button atlas-scn-quiet atlas-scenario-close",
        title="Close this site in the What-if scenario (see the What if… panel)",
        **{"data-site-id": str(site_id), "data-site-name": str(props.get("name") or "")},
    )


def _button(text: str, button_id: str, *, quiet: bool = False, **extra: Any) -> html.Button:
    cls = "atlas-button atlas-scn-quiet" if quiet else "atlas-button"
    return html.Button(text, id=button_id, n_clicks=0, type="button", className=cls, **extra)


def _label(text: str, for_id: str) -> html.Label:
    return html.Label(text, htmlFor=for_id, className="atlas-label")


def scenario_section(state: MapState) -> html.Details:
    """The What-if panel, folded until opened (its results come from ``callbacks/scenario.py``)."""
    lo, hi = K_RANGE
    return html.Details(
        [
            html.Summary(
                [
                    html.H2("What if…", id="scenario-title"),
                    html.Span(
                        "add or close sites, see who gains or loses access, find where to open",
                        className="atlas-small",
                    ),
                ],
                className="atlas-scn-summary",
            ),
            html.P(
                "Try a new site or a closure and see who gains or loses access. Nothing "
                "changes in the data until you save a scenario.",
                className="atlas-small",
            ),
            html.Div(
                [
                    _button(
                        "Add sites by clicking the map",
                        ADD_TOGGLE,
                        **{"aria-pressed": "false", "aria-controls": "map"},
                    ),
                    _button("Add at the map centre", ADD_CENTRE, quiet=True),
                ],
                className="atlas-scn-row",
            ),
            html.P(
                "Switch on, then click the map where a new site would open. With the keyboard: "
                "move the map with the arrow keys and press “Add at the map centre”.",
                id=ADD_HINT,
                className="atlas-small",
                **{"aria-live": "polite"},
            ),
            html.Div(
                [
                    _label("…or add a site at an address", ADDRESS),
                    html.Div(
                        [
                            dcc.Input(
                                id=ADDRESS,
                                type="search",
                                debounce=False,
                                placeholder="street address, ZIP code or lat, lon",
                                autoComplete="off",
                                maxLength=200,
                                className="atlas-input",
                            ),
                            _button("Add", ADDRESS_GO),
                        ],
                        className="atlas-inline",
                    ),
                ],
                className="atlas-control",
            ),
            html.P(
                "To close a site: select it on the map and choose “What if this site closed?” "
                "in Details.",
                className="atlas-small",
            ),
            html.Div(
                message(
                    f"The scenario in this link cannot be opened: {state.scenario_problem}; the "
                    "map shows the data.",
                    alert=True,
                )
                if state.scenario_problem
                else message("New sites are of the care chosen under Care."),
                id=MESSAGE,
                **{"aria-live": "polite"},
            ),
            html.Div(
                empty_result(state.category, state.mode, state.threshold),
                id=RESULT,
                className="atlas-scn-result",
                **{"aria-live": "polite"},
            ),
            html.Div(
                [
                    _button("Undo last change", UNDO, quiet=True, disabled=True),
                    _button("Start over", RESET, quiet=True, disabled=True),
                ],
                className="atlas-scn-row",
            ),
            dcc.Checklist(
                id=SHOW,
                options=[{"label": "Show the changes on the map", "value": "show"}],
                value=["show"],
                className="atlas-checks",
            ),
            html.Fieldset(
                [
                    html.Legend("Suggest sites"),
                    html.P(
                        "Where would new sites bring the most people now in the desert within "
                        "reach? Only land outside zoning barriers is considered.",
                        className="atlas-small",
                    ),
                    html.Div(
                        [
                            _label("How many sites", K),
                            dcc.Input(
                                id=K,
                                type="number",
                                min=lo,
                                max=hi,
                                step=1,
                                value=3,
                                className="atlas-input atlas-input--short",
                            ),
                            _button("Suggest", SUGGEST),
                        ],
                        className="atlas-inline atlas-scn-row",
                    ),
                    html.Div(id=SUGGEST_RESULT, **{"aria-live": "polite"}),
                    _button("Add the suggested sites", ACCEPT, disabled=True),
                ],
                className="atlas-group atlas-scn-group",
            ),
            html.Fieldset(
                [
                    html.Legend("Save, load, export"),
                    _label("Scenario name", NAME),
                    html.Div(
                        [
                            dcc.Input(
                                id=NAME,
                                type="text",
                                value="Untitled scenario",
                                maxLength=MAX_NAME_CHARS,
                                className="atlas-input",
                            ),
                            _button("Save", SAVE),
                        ],
                        className="atlas-inline",
                    ),
                    html.P(
                        scenario_editing_text(), className="atlas-small", id="scenario-editing"
                    ),
                    _label("Saved scenarios", SAVED),
                    html.Div(
                        [
                            html.Div(
                                dcc.Dropdown(
                                    id=SAVED,
                                    options=[],
                                    placeholder="None saved yet",
                                    clearable=False,
                                    searchable=False,
                                ),
                                className="atlas-scn-grow",
                            ),
                            _button("Load", LOAD, quiet=True),
                        ],
                        className="atlas-inline",
                    ),
                    html.Div(
                        [
                            html.Span("Download the scenario's layers: ", className="atlas-small"),
                            _button("GeoJSON", EXPORT_GEOJSON, quiet=True),
                            _button("CSV", EXPORT_CSV, quiet=True),
                        ],
                        className="atlas-scn-row",
                    ),
                    html.Div(id=FILE_STATUS, **{"aria-live": "polite"}),
                    dcc.Download(id=DOWNLOAD),
                ],
                className="atlas-group atlas-scn-group",
            ),
            dcc.Store(id=STORE, data=None),
            dcc.Store(id=ACTION),
            dcc.Store(id=ADD_MODE, data=False),
            dcc.Store(id=SUGGESTIONS),
            dcc.Store(id=WARM),
            dcc.Store(id=REVEALED),
            dcc.Store(id=AREAS_STORE),
            # A scenario that came with the link (``w=``), opened once the page is up.
            dcc.Store(id=RESTORE, data=decode_scenario(state.scenario)),
            dcc.Store(id=LINKED),
        ],
        open=bool(state.scenario or state.scenario_problem),
        className="atlas-section atlas-scn",
        id=SECTION,
    )


def scenario_map_layers() -> list:
    """Map layers of the scenario: its minute bands, changed desert cells, sites, suggestions.

    The bands (:data:`BANDS_LAYER`) are drawn in the baseline bands' pane and styled like
    them (``atlas.scenarioBandStyle``); the area colours follow the scenario through the
    area layer's hideout (``atlas.scenarioAreas``), not a layer of their own.
    """
    styles = {
        c: {"colour": CATEGORY_COLOURS[c], "shape": CATEGORY_SYMBOLS[c], "label": lbl}
        for c, lbl in CATEGORY_LABELS.items()
    }
    name, z = PANE
    return [
        dl.Pane(name=name, style={"zIndex": z}),
        dl.GeoJSON(
            id=BANDS_LAYER,
            data=EMPTY,
            style=ns("scenarioBandStyle"),
            hideout={"show": True, "pane": SURFACE_PANE, "scenarioLayer": True},
        ),
        dl.GeoJSON(
            id=CHANGE_LAYER,
            data=EMPTY,
            style=ns("scenarioChangeStyle"),
            hideout={
                "show": True,
                "pane": name,
                "gain": [GAIN_FILL, GAIN_LINE],
                "loss": [LOSS_FILL, LOSS_LINE],
            },
        ),
        dl.GeoJSON(
            id=SUGGEST_LAYER,
            data=EMPTY,
            pointToLayer=ns("scenarioSuggestPoint"),
            hideout={"show": True},
        ),
        dl.GeoJSON(
            id=SITES_LAYER,
            data=EMPTY,
            pointToLayer=ns("scenarioSitePoint"),
            hideout={"show": True, "styles": styles},
        ),
    ]
