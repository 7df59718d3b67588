"""The map page: controls, the dash-leaflet map with its layers, the legend and the side panel.

:func:`map_page` builds the whole page from a :class:`PageModel` (plain values computed by
the page callback), so it does no I/O. Every layer is a ``dl.GeoJSON`` served by URL; what
changes with the controls goes through its ``hideout`` into the functions of
``assets/atlas.js`` (``window.atlas``), so filters, the threshold, layer switches and
opacity never resend geometry. Layers that are off when the page opens get their URL only
when first switched on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dash_leaflet as dl
from dash import dcc, html
from dash_extensions.javascript import Namespace

from etl.categories import CATEGORY_COLOURS, CATEGORY_LABELS, CATEGORY_SYMBOLS, MODE_LABELS
from layouts.overview import fictional_banner
from layouts.panels import symbol
from layouts.reentry import (  # re-entry: the release-day panel and facility markers
    facilities_legend,
    facilities_map_layer,
    partial_categories,
    release_day_section,
)
from layouts.scenario import (  # scenario: What-if panel
    scenario_map_layers,
    scenario_section,
    showing_banner,
)
from layouts.theme import (
    APPROX_RADIUS_M,
    BARRIER_COLOUR,
    CAPACITY_BREAKS,
    CAPACITY_COLOURS,
    DESERT_COLOUR,
    OVERDOSE_COLOURS,
    SITABLE_COLOUR,
    SUPPRESSED_COLOUR,
    TIME_BREAKS_MIN,
    TIME_COLOURS,
    band_colours,
)
from layouts.townhall import export_section, offline_tiles, views_section
from viewmodel.data import ATTRIBUTE_FILTERS, capacity_info
from viewmodel.state import LAYERS, OPACITY_RANGE, THRESHOLD_RANGE, UNITS, MapState, Options

ns = Namespace("atlas")

# Component ids (one naming style: kebab-case nouns).
URL = "url"
REGION_SELECT = "region-select"
CATEGORY = "category-select"
MODE = "mode-select"
THRESHOLD = "threshold-slider"
THRESHOLD_TEXT = "threshold-text"
LAYER_CHECKLIST = "layers-checklist"
SITES = "sites-checklist"
FILTERS = "filters-checklist"
UNIT = "unit-select"
OPACITY = "opacity-slider"
ADDRESS = "address-input"
ADDRESS_GO = "address-button"
MAP = "map"
SURFACE = "layer-surface"
SITES_LAYER = "layer-sites"
AREAS_LAYER = "layer-areas"
CAPACITY_LAYER = "layer-capacity"
OVERDOSE_LAYER = "layer-overdose"
STREETS_MAJOR = "layer-streets-major"
STREETS_MINOR = "layer-streets-minor"
LABELS = "layer-labels"
OUTLINE = "layer-outline"
BARRIERS = "layer-barriers"
SITABLE = "layer-sitable"
TRANSIT = "layer-transit"
TILES = "layer-tiles"
ROUTES = "layer-routes"
SELECTION = "layer-selection"
SUMMARY = "summary"
DETAILS = "details"
LOOKUP = "lookup-result"
LEGEND = "legend"
SHARE = "share-link"
DEFAULTS = "atlas-defaults"
QUERY_STORE = "atlas-query"
SETTLED = "atlas-settled"
LEGEND_STATE = "atlas-legend-state"
REGION_STORE = "atlas-region"

#: Map panes (name, z-index): fills under the streets, sites on top.
PANES: tuple[tuple[str, int], ...] = (
    ("atlas-fill", 350),
    ("atlas-surface", 370),
    ("atlas-rules", 390),
    ("atlas-streets", 410),
    ("atlas-routes", 450),
    ("atlas-labels", 590),
)

OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
TRANSPARENT_PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


@dataclass(frozen=True)
class PageModel:
    """What the map page needs, computed by the page callback from the bundle.

    Attributes
    ----------
    manifest
        The bundle's manifest.
    state
        The map state to open in (from the URL).
    options
        What the region offers.
    urls
        Layer URLs by key: ``bands`` (a template with ``{category}`` and ``{mode}``),
        ``providers``, ``areas``, ``grid``, ``counties``, ``overdose``, ``region``,
        ``streets_major``, ``streets_minor``, ``labels``, ``barriers``, ``sitable``,
        ``transit``.
    summary
        The initial summary panel (components).
    defaults
        For the URL writer in ``atlas.js`` (see :func:`defaults_store`).
    overdose
        ``prop``, ``breaks`` and ``label`` of the overdose choropleth, or None.
    filters
        Attribute filters available: key -> label.
    osm_attribution
        Attribution text for the street layers.
    """

    manifest: dict[str, Any]
    state: MapState
    options: Options
    urls: dict[str, str]
    summary: list
    defaults: dict[str, Any]
    overdose: dict[str, Any] | None = None
    filters: dict[str, str] = field(default_factory=dict)
    osm_attribution: str = "© OpenStreetMap contributors (ODbL)"
    #: Re-entry: :class:`viewmodel.reentry.ReleaseDay` of the region, or None.
    release_day: Any = None
    #: An address of this region for the look-up's example (viewmodel.lookup.address_example).
    address_example: str = "a street address, or latitude, longitude"


def defaults_store(state: MapState, options: Options, *, default_region: str) -> dict[str, Any]:
    """What ``atlas.encodeState`` compares against to leave defaults out of the URL."""
    from viewmodel.state import _default_mode, default_state

    base = default_state(state.region, options)
    return {
        "region": state.region,
        "defaultRegion": default_region,
        "category": base.category,
        "modeFor": {c: _default_mode(options, c) for c in options.categories},
        "thresholds": {
            f"{c}/{m}": options.default_threshold(c, m)
            for c in options.categories
            for m in options.modes
        },
        "allLayers": list(LAYERS),
        "layers": list(base.layers),
        "siteCategories": list(options.site_categories),
        "filters": list(options.filters),
        "unit": base.unit,
        "opacity": base.opacity,
    }


def _site_styles() -> dict[str, dict[str, str]]:
    return {
        c: {
            "colour": CATEGORY_COLOURS[c],
            "shape": CATEGORY_SYMBOLS[c],
            "label": CATEGORY_LABELS[c],
        }
        for c in CATEGORY_COLOURS
    }


def _label(text: str, for_id: str) -> html.Label:
    return html.Label(text, htmlFor=for_id, className="atlas-label")


def _group(legend: str, children: list, *, group_id: str | None = None) -> html.Fieldset:
    extra = {"id": group_id} if group_id else {}
    return html.Fieldset([html.Legend(legend), *children], className="atlas-group", **extra)


def controls(model: PageModel) -> html.Div:
    """The control panel: look-up, care, mode, threshold, layers, sites, filters, unit, opacity."""
    s, o = model.state, model.options
    cat_options = [
        {"label": html.Span([symbol(c), " ", CATEGORY_LABELS.get(c, c)]), "value": c}
        for c in o.categories
    ]
    # Categories without data stay in the list, greyed, with the reason (never a silent
    # switch); the one a link opened stays enabled so the keyboard can reach it.
    cat_options += [
        {
            "label": html.Span(
                [
                    symbol(c),
                    " ",
                    CATEGORY_LABELS.get(c, c),
                    html.Span(
                        f" — no data for this region: {reason}", className="atlas-no-data"
                    ),
                ],
                title=f"No data for this region: {reason}",
            ),
            "value": c,
            "disabled": c != s.category,
        }
        for c, reason in o.no_data.items()
    ]
    mode_options = [{"label": MODE_LABELS.get(m, m), "value": m} for m in o.modes]
    layer_options = [{"label": LAYERS[k], "value": k} for k in LAYERS if k in o.layers]
    site_options = [
        {"label": html.Span([symbol(c), " ", CATEGORY_LABELS.get(c, c)]), "value": c}
        for c in o.site_categories
    ]
    lo, hi = THRESHOLD_RANGE
    marks = {v: f"{v}" for v in (5, 15, 30, 45, 60) if lo <= v <= hi}
    parts: list = [
        html.Div(
            [
                _label("Look up an address", ADDRESS),
                html.Div(
                    [
                        dcc.Input(
                            id=ADDRESS,
                            type="search",
                            value=s.query,
                            debounce=False,
                            placeholder=f"e.g. {model.address_example}",
                            autoComplete="off",
                            className="atlas-input",
                        ),
                        html.Button(
                            "Find",
                            id=ADDRESS_GO,
                            n_clicks=0,
                            className="atlas-button",
                            type="button",
                        ),
                    ],
                    className="atlas-inline",
                ),
                html.P(
                    "Finds the address offline, then the nearest care by travel time.",
                    id="address-help",
                    className="atlas-small",
                ),
            ],
            className="atlas-control",
        ),
        _group(
            "Care",
            [
                dcc.RadioItems(
                    id=CATEGORY, options=cat_options, value=s.category, className="atlas-radios-col"
                )
            ],
        ),
        _group(
            "Travel",
            [
                dcc.RadioItems(
                    id=MODE,
                    options=mode_options,
                    value=s.mode,
                    inline=True,
                    className="atlas-radios",
                )
            ],
        ),
        html.Div(
            [
                html.Div(
                    [
                        _label("Desert threshold", THRESHOLD),
                        html.Output(
                            f"{s.threshold} min",
                            id=THRESHOLD_TEXT,
                            htmlFor=THRESHOLD,
                            className="atlas-output",
                        ),
                    ],
                    className="atlas-label-row",
                ),
                dcc.Slider(
                    id=THRESHOLD,
                    min=lo,
                    max=hi,
                    step=1,
                    value=s.threshold,
                    marks=marks,
                    updatemode="mouseup",
                    allow_direct_input=True,
                    tooltip={"placement": "bottom", "always_visible": False},
                ),
                html.P(
                    "People beyond this many minutes from the nearest site are in the desert.",
                    className="atlas-small",
                ),
            ],
            className="atlas-control",
        ),
        _group(
            "Layers",
            [
                dcc.Checklist(
                    id=LAYER_CHECKLIST,
                    options=layer_options,
                    value=list(s.layers),
                    className="atlas-checks",
                )
            ],
        ),
        _group(
            "Care sites shown",
            [
                dcc.Checklist(
                    id=SITES, options=site_options, value=list(s.sites), className="atlas-checks"
                )
            ],
        ),
    ]
    if model.filters:
        parts.append(
            _group(
                "Only sites that…",
                [
                    dcc.Checklist(
                        id=FILTERS,
                        options=[{"label": v, "value": k} for k, v in model.filters.items()],
                        value=list(s.filters),
                        className="atlas-checks",
                    ),
                    html.P(
                        "Filters change which sites are shown; travel times count every site.",
                        className="atlas-small",
                    ),
                ],
            )
        )
    else:
        parts.append(dcc.Checklist(id=FILTERS, options=[], value=[], style={"display": "none"}))
    unit_options = [{"label": UNITS[u], "value": u} for u in o.units]
    parts += [
        _group(
            "Area unit (travel time by area)",
            [dcc.RadioItems(id=UNIT, options=unit_options, value=s.unit, className="atlas-radios")],
        ),
        html.Div(
            [
                _label("Fill opacity", OPACITY),
                dcc.Slider(
                    id=OPACITY,
                    min=OPACITY_RANGE[0],
                    max=OPACITY_RANGE[1],
                    step=10,
                    value=s.opacity,
                    marks=None,
                    allow_direct_input=False,
                    tooltip={"placement": "bottom", "always_visible": False},
                ),
            ],
            className="atlas-control",
        ),
    ]
    return html.Div(parts, className="atlas-controls", id="controls")


def map_layers(model: PageModel) -> list:
    """The map's children: panes, basemap, fills, surface, rules, outline, routes, sites."""
    s, u = model.state, model.urls
    shown = set(s.layers)
    op = s.opacity / 100.0
    panes = [dl.Pane(name=name, style={"zIndex": z}) for name, z in PANES]
    bands = [float(b) for b in model.manifest.get("settings", {}).get("bands_min", [10, 20, 30])]
    surface = dl.GeoJSON(
        id=SURFACE,
        url=u["bands"].replace("{category}", s.category).replace("{mode}", s.mode),
        style=ns("surfaceStyle"),
        hideout={
            "threshold": s.threshold,
            "desert": "desert" in shown,
            "bands": "bands" in shown,
            "opacity": op,
            "bandsMin": bands,
            "bandColours": band_colours(len(bands)),
            "desertColour": DESERT_COLOUR,
            "pane": "atlas-surface",
        },
    )
    areas_url = u.get(s.unit) if "areas" in shown else None
    areas = dl.GeoJSON(
        id=AREAS_LAYER,
        url=areas_url,
        style=ns("choroplethStyle"),
        hideout={
            "show": "areas" in shown,
            "prop": f"t_{s.category}_{s.mode}",
            "breaks": list(TIME_BREAKS_MIN),
            "colours": list(TIME_COLOURS),
            "opacity": op,
            "pane": "atlas-fill",
        },
    )
    # Capacity-aware access: practitioners per 10,000 people, always by census area.
    capacity = dl.GeoJSON(
        id=CAPACITY_LAYER,
        url=u.get("areas") if "capacity" in shown else None,
        style=ns("choroplethStyle"),
        hideout={
            "show": "capacity" in shown,
            "prop": f"cap_{s.category}_{s.mode}",
            "breaks": list(CAPACITY_BREAKS),
            "colours": list(CAPACITY_COLOURS),
            "opacity": op,
            "pane": "atlas-fill",
            "mark": "capacity",
        },
    )
    od = model.overdose or {}
    overdose = dl.GeoJSON(
        id=OVERDOSE_LAYER,
        url=u.get("overdose") if "overdose" in shown else None,
        style=ns("overdoseStyle"),
        hideout={
            "show": "overdose" in shown,
            "prop": od.get("prop", "rate_per_100k"),
            "breaks": od.get("breaks", []),
            "colours": list(OVERDOSE_COLOURS),
            "opacity": op,
            "pane": "atlas-fill",
        },
    )
    streets_on = "streets" in shown
    streets = dl.LayerGroup(
        [
            dl.GeoJSON(
                id=STREETS_MAJOR,
                url=u["streets_major"],
                style=ns("streetStyle"),
                hideout={"show": streets_on, "pane": "atlas-streets"},
            ),
            dl.GeoJSON(
                id=STREETS_MINOR,
                url=u["streets_minor"] if streets_on and (s.zoom or 0) >= 13 else None,
                style=ns("streetStyle"),
                hideout={"show": streets_on and (s.zoom or 0) >= 13, "pane": "atlas-streets"},
            ),
            dl.GeoJSON(
                id=LABELS,
                url=u["labels"],
                pointToLayer=ns("labelPoint"),
                filter=ns("labelFilter"),
                hideout={"show": streets_on, "zoom": s.zoom or 11},
            ),
        ],
        attribution=model.osm_attribution,
    )
    rules = [
        dl.GeoJSON(
            id=BARRIERS,
            url=u.get("barriers") if "barriers" in shown else None,
            style=ns("barrierStyle"),
            hideout={"show": "barriers" in shown, "pane": "atlas-rules"},
        ),
        dl.GeoJSON(
            id=SITABLE,
            url=u.get("sitable") if "sitable" in shown else None,
            style=ns("sitableStyle"),
            hideout={"show": "sitable" in shown, "pane": "atlas-rules"},
        ),
        dl.GeoJSON(
            id=TRANSIT,
            url=u.get("transit") if "transit" in shown else None,
            pointToLayer=ns("stopPoint"),
            filter=ns("showFilter"),
            hideout={"show": "transit" in shown},
        ),
    ]
    outline = dl.GeoJSON(id=OUTLINE, url=u["region"], style=ns("outlineStyle"))
    sites = dl.GeoJSON(
        id=SITES_LAYER,
        url=u["providers"],
        cluster=True,
        zoomToBoundsOnClick=True,
        superClusterOptions={"radius": 48, "maxZoom": 14},
        pointToLayer=ns("sitePoint"),
        clusterToLayer=ns("siteCluster"),
        filter=ns("siteFilter"),
        hideout={
            "show": "sites" in shown,
            "cats": list(s.sites),
            "filters": list(s.filters),
            "styles": _site_styles(),
            "approxRadius": APPROX_RADIUS_M,
        },
    )
    tiles = dl.LayerGroup(id=TILES, children=tile_layer() if "tiles" in shown else [])
    return [
        *panes,
        *offline_tiles(model),  # town hall: the default basemap, tiles from the bundle
        tiles,
        streets,
        areas,
        capacity,
        overdose,
        surface,
        *rules,
        outline,
        dl.LayerGroup(id=ROUTES),
        dl.GeoJSON(id=SELECTION, style=ns("selectionStyle")),
        *scenario_map_layers(),  # scenario: What-if changes (layouts/scenario.py)
        facilities_map_layer(u.get("facilities"), show="facilities" in shown),  # re-entry
        sites,
        dl.ScaleControl(position="bottomleft", imperial=True, metric=True),
    ]


def tile_layer() -> list:
    """The optional online basemap (fails to a transparent tile when offline)."""
    return [
        dl.TileLayer(
            url=OSM_TILES,
            maxZoom=19,
            errorTileUrl=TRANSPARENT_PNG,
            opacity=0.55,
            attribution="Map tiles © OpenStreetMap contributors",
        )
    ]


def map_panel(model: PageModel) -> html.Div:
    """The map with its legend."""
    s, o = model.state, model.options
    view: dict[str, Any]
    if s.lat is not None and s.lon is not None and s.zoom is not None:
        view = {"center": [s.lat, s.lon], "zoom": s.zoom}
    elif o.bounds is not None:
        (south, west), (north, east) = o.bounds
        # dash-leaflet compares the map's centre with `center`: give one; `bounds` wins
        # over it as long as no `zoom` is given.
        view = {
            "bounds": [[south, west], [north, east]],
            "center": [(south + north) / 2.0, (west + east) / 2.0],
        }
    else:
        view = {"center": [0, 0], "zoom": 3}
    title = model.manifest.get("title", model.manifest.get("region", ""))
    return html.Div(
        [
            html.P(
                f"Map of {title}: use the arrow keys to pan and + or − to zoom; care sites can be "
                "reached with the Tab key.",
                id="map-help",
                className="atlas-sr-only",
            ),
            dl.Map(
                map_layers(model),
                id=MAP,
                preferCanvas=True,
                minZoom=6,
                maxZoom=18,
                zoomSnap=1,
                keyboard=True,
                className="atlas-map",
                **view,
            ),
            html.Details(
                [
                    html.Summary("Legend", className="atlas-legend-title"),
                    showing_banner(),  # scenario: which scenario the map shows
                    html.Div(legend(model), id=LEGEND),
                ],
                open=True,
                className="atlas-legend",
                role="region",
                **{"aria-label": "Legend"},
            ),
        ],
        className="atlas-map-wrap",
    )


def _swatch(colour: str, *, border: str | None = None, dashed: bool = False) -> html.Span:
    style = {"background": colour}
    if border:
        style["border"] = f"1.5px {'dashed' if dashed else 'solid'} {border}"
    return html.Span(className="atlas-swatch", style=style, **{"aria-hidden": "true"})


def legend(model: PageModel, *, state: MapState | None = None) -> list:
    """Legend entries for the layers shown."""
    s = state or model.state
    shown = set(s.layers)
    items: list = []
    if "sites" in shown and s.sites:
        items.append(html.Li(html.Strong("Care sites")))
        partial = partial_categories(model.manifest)  # e.g. vaccine-site pharmacies
        items += [
            html.Li([symbol(c), " ", CATEGORY_LABELS.get(c, c)]
                    + ([html.Span(" (partial list)", className="atlas-small")]
                       if c in partial else []))
            for c in s.sites
        ]  # fmt: skip
        items.append(
            html.Li(
                [
                    html.Span(
                        className="atlas-cluster atlas-cluster--legend", **{"aria-hidden": "true"}
                    ),
                    " several sites (select to zoom)",
                ]
            )
        )
    # The categories with travel times, as the build recorded them (the legend callback's
    # model carries no options).
    timed = model.manifest.get("stages", {}).get("access", {}).get("categories")
    no_data = timed is not None and s.category not in timed
    if "desert" in shown or "bands" in shown:
        items.append(
            html.Li(
                html.Strong(
                    f"{CATEGORY_LABELS.get(s.category, s.category)}, "
                    f"{MODE_LABELS.get(s.mode, s.mode).lower()}"
                )
            )
        )
        if no_data:  # nothing is drawn for it: say so instead of listing bands
            items.append(html.Li("no data for this region: no travel times drawn"))
            shown -= {"bands", "desert", "areas"}
    if "bands" in shown:
        bands = [
            float(b) for b in model.manifest.get("settings", {}).get("bands_min", [10, 20, 30])
        ]
        lo = 0.0
        for b, c in zip(bands, band_colours(len(bands)), strict=True):
            items.append(
                html.Li([_swatch(c), f" {lo:g}–{b:g} min" if lo else f" within {b:g} min"])
            )
            lo = b
    if "desert" in shown:
        items.append(
            html.Li([_swatch(DESERT_COLOUR), f" desert: beyond {s.threshold} min (or no route)"])
        )
    if "areas" in shown:
        items.append(html.Li(html.Strong("Travel time by area (minutes)")))
        edges = [0, *TIME_BREAKS_MIN]
        for i, c in enumerate(TIME_COLOURS):
            text = (
                f" {edges[i]:g}–{edges[i + 1]:g}" if i + 1 < len(edges) else f" over {edges[-1]:g}"
            )
            items.append(html.Li([_swatch(c), text]))
    if "capacity" in shown:
        items += capacity_legend(model.manifest, s.category, s.mode)
    if "overdose" in shown and model.overdose:
        od = model.overdose
        items.append(html.Li(html.Strong(od.get("label", "Overdose death rate per 100,000"))))
        edges = od.get("breaks", [])
        for i, c in enumerate(OVERDOSE_COLOURS[: len(edges) + 1]):
            if i == 0:
                text = f" up to {edges[0]:g}" if edges else " all"
            elif i < len(edges):
                text = f" {edges[i - 1]:g}–{edges[i]:g}"
            else:
                text = f" over {edges[-1]:g}"
            items.append(html.Li([_swatch(c), text]))
        items.append(
            html.Li(
                [_swatch("#fff", border="#222", dashed=True), " unstable (fewer than 20 deaths)"]
            )
        )
        items.append(
            html.Li(
                [
                    _swatch(SUPPRESSED_COLOUR, border="#555", dashed=True),
                    " suppressed (1–9 deaths) or not published",
                ]
            )
        )
    if "barriers" in shown:
        items.append(
            html.Li([_swatch(BARRIER_COLOUR), " zoning barrier (a rule blocks new sites)"])
        )
    if "sitable" in shown:
        items.append(html.Li([_swatch(SITABLE_COLOUR), " sitable land"]))
    if "transit" in shown:
        items.append(
            html.Li(
                [
                    html.Span(className="atlas-stop", **{"aria-hidden": "true"}),
                    " transit stop (hover: routes and the walk to care)",
                ]
            )
        )
    if "facilities" in shown:
        items += facilities_legend()
    if "streets" in shown:
        items.append(
            html.Li(
                [
                    html.Span(className="atlas-line", **{"aria-hidden": "true"}),
                    " streets (fictional)"
                    if model.manifest.get("fictional")
                    else " streets (OpenStreetMap)",
                ]
            )
        )
    if not items:
        items.append(html.Li("No layers shown."))
    return [html.Ul(items)]


def capacity_legend(manifest: dict[str, Any], category: str, mode: str) -> list:
    """Legend of the practitioners-per-10,000 choropleth (units, catchment, classes)."""
    cap = capacity_info(manifest)
    label = CATEGORY_LABELS.get(category, category)
    how = MODE_LABELS.get(mode, mode).lower()
    info = cap.get("by", {}).get(f"{category}_{mode}")
    if info is None:
        measured = [
            f"{CATEGORY_LABELS.get(c, c).lower()}, {MODE_LABELS.get(m, m).lower()}"
            for c, m in (k.rsplit("_", 1) for k in cap.get("by", {}))
        ]
        return [
            html.Li(html.Strong("Practitioners per 10,000 people")),
            html.Li(
                f"not measured for {label.lower()}, {how}; measured for: "
                + ("; ".join(measured) or "none")
                + " (capacity known, a desert threshold as the catchment)",
                className="atlas-small",
            ),
        ]
    d0 = info["catchment_min"]
    unit = "Practitioners" if cap.get("unit") == "practitioners" else "Capacity"
    items: list = [
        html.Li(html.Strong(f"{unit} per 10,000 people: {label.lower()}, {how}")),
        html.Li(
            f"within {d0:g} min, Gaussian decay (two-step floating catchment)",
            className="atlas-small",
        ),
    ]
    edges = list(CAPACITY_BREAKS)
    for i, c in enumerate(CAPACITY_COLOURS):
        if i == 0:
            text = f" 0 (none within {d0:g} min)"
        elif i < len(edges):
            text = f" {edges[i - 1]:g}–{edges[i]:g}"
        else:
            text = f" over {edges[-1]:g}"
        items.append(html.Li([_swatch(c), text]))
    items.append(html.Li([_swatch("#f0f0f0", border="#999"), " no covered people"]))
    return items


def side_panel(model: PageModel) -> html.Div:
    """Summary, details and look-up results."""
    return html.Div(
        [
            scenario_section(model.state),  # scenario: the What-if panel (layouts/scenario.py)
            html.Section(
                [
                    html.H2("Who can reach care"),
                    html.Div(model.summary, id=SUMMARY, **{"aria-live": "polite"}),
                ],
                className="atlas-section",
            ),
            *release_day_section(model.release_day),  # re-entry (layouts/reentry.py)
            html.Section(
                [
                    html.H2("Address look-up"),
                    html.Div(
                        html.P("Type an address in the box on the left.", className="atlas-small"),
                        id=LOOKUP,
                        **{"aria-live": "polite"},
                    ),
                ],
                className="atlas-section",
            ),
            html.Section(
                [
                    html.H2("Details"),
                    html.Div(
                        html.P(
                            "Select a care site or a place on the map.", className="atlas-small"
                        ),
                        id=DETAILS,
                        **{"aria-live": "polite"},
                    ),
                ],
                className="atlas-section",
            ),
            *_townhall_sections(model),  # town hall: download and print, saved views
        ],
        className="atlas-side",
        id="side",
    )


def _townhall_sections(model: PageModel) -> list:
    """Town hall: the export buttons and the saved-views form (layouts/townhall.py)."""
    return [export_section(model.state.region), views_section(model.state.region)]


def header(model: PageModel, *, page: str = "map", share_href: str = "") -> html.Header:
    """Title, region switcher, navigation and the share link."""
    s, o = model.state, model.options
    title = model.manifest.get("title", s.region)
    region_q = f"?region={s.region}"
    nav = [
        html.A(
            "Map",
            href=f"/{region_q}",
            className="atlas-nav-link",
            **({"aria-current": "page"} if page == "map" else {}),
        ),
        html.A(
            "Methods and sources",
            href=f"/methods{region_q}",
            className="atlas-nav-link",
            **({"aria-current": "page"} if page == "methods" else {}),
        ),
        html.A(  # town hall: presentation mode (layouts/townhall.py)
            "Town-hall mode",
            href=f"/present{region_q}",
            id="present-nav",
            className="atlas-nav-link",
            title="Full-screen slides of saved views; works without internet",
        ),
    ]
    if page == "map":
        nav.append(
            html.A(
                "Link to this view",
                id=SHARE,
                href=share_href or "/",
                className="atlas-nav-link",
                title="Copy this link to share the current map",
            )
        )
    region_picker = []
    if len(o.regions) > 1:
        # Plain links: switching region is a page load (every layer changes), so it needs no
        # callback, works without JavaScript and reads well in a screen reader.
        here = "/methods" if page == "methods" else "/"
        region_picker = [
            html.Details(
                [
                    html.Summary(f"Region: {s.region}", className="atlas-region-summary"),
                    html.Ul(
                        [
                            html.Li(
                                html.A(
                                    r,
                                    href=f"{here}?region={r}",
                                    **({"aria-current": "true"} if r == s.region else {}),
                                )
                            )
                            for r in o.regions
                        ],
                        className="atlas-region-list",
                    ),
                ],
                id=REGION_SELECT,
                className="atlas-region-picker",
            )
        ]
    return html.Header(
        [
            html.H1(["Access Atlas", html.Span(f" · {title}", className="atlas-title-region")]),
            html.Nav(nav, className="atlas-nav", **{"aria-label": "Pages"}),
            html.Div(region_picker, className="atlas-region"),
            dcc.Store(
                id=REGION_STORE,
                data={
                    "region": s.region,
                    "urls": model.urls,
                    "build": model.manifest.get("build_id", ""),
                },
            ),
        ],
        className="atlas-top",
    )


def map_page(model: PageModel, *, share_href: str = "") -> html.Div:
    """The whole map page."""
    return html.Div(
        [
            header(model, share_href=share_href),
            fictional_banner(model.manifest),
            html.Div(
                [
                    html.Aside(
                        controls(model), className="atlas-left", **{"aria-label": "Map controls"}
                    ),
                    html.Main(map_panel(model), className="atlas-center", id="main"),
                    html.Aside(
                        side_panel(model),
                        className="atlas-right",
                        **{"aria-label": "Summary and details"},
                    ),
                ],
                className="atlas-body",
            ),
            dcc.Store(id=DEFAULTS, data=model.defaults),
            dcc.Store(id=QUERY_STORE, data=model.state.query),
            dcc.Store(id=LEGEND_STATE),
            dcc.Store(id=f"{DETAILS}-shown"),
            dcc.Store(id=f"{LOOKUP}-shown"),
            dcc.Store(
                id=SETTLED,
                data={
                    "category": model.state.category,
                    "mode": model.state.mode,
                    "threshold": model.state.threshold,
                },
            ),
        ],
        className="atlas-app",
    )


def attribute_filter_labels() -> dict[str, str]:
    """Labels of every attribute filter (for documentation)."""
    return dict(ATTRIBUTE_FILTERS)
