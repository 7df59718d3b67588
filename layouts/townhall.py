"""Town-hall mode and exports: the presentation page, the offline basemap, download buttons.

:func:`present_page` is a full-screen map with large type and few controls that steps
through saved views like slides (the keys are handled in ``assets/atlas.js``, town-hall
section). Every view's layer settings are computed here from the same
:func:`layouts.map_page.map_layers` the map page uses and carried in the page's
``data-deck`` attribute, so stepping only restyles the map in the browser.

:func:`offline_tiles` is the basemap of every map: the tiles the pipeline pre-renders into
the bundle, served by the app (``/atlas/tiles/…``), so the map needs no internet.
:func:`export_section` and :func:`views_section` are the map page's "Download and print" and
"Town-hall views" panels. No I/O here: callers pass what they read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import dash_leaflet as dl
from dash import dcc, html

from etl.categories import CATEGORY_LABELS, MODE_LABELS
from viewmodel.editing import controls_text
from viewmodel.saved_views import PRIVACY_NOTE

# Component ids (kebab-case, as in layouts.map_page).
PRESENT = "present"
PRESENT_PREV = "present-prev"
PRESENT_NEXT = "present-next"
PRESENT_FULL = "present-full"
PRESENT_LEAVE = "present-leave"
PRESENT_PREFIX = "present-"
PRESENT_MAP = "present-map"
OFFLINE_TILES = "layer-offline-tiles"
EXPORT_IN_VIEW = "export-in-view"
EXPORT_STATUS = "export-status"
EXPORT_LINK = "export-link"
EXPORT_FIRED = "export-fired"
VIEW_TITLE = "view-title"
VIEW_TEXT = "view-text"
VIEW_SAVE = "view-save"
VIEW_STATUS = "view-status"
VIEWS_LIST = "views-list"
VIEWS_PICK = "views-pick"
VIEWS_REMOVE = "views-remove"
#: The editor token field (saving views and scenarios needs it; viewmodel/editing.py).
EDITOR_TOKEN = "editor-token"
EDITING_NOTE = "editing-note"

TILE_PREFIX: Final[str] = "/atlas/tiles"
EXPORT_PREFIX: Final[str] = "/atlas/export"
PRESENT_PATH: Final[str] = "/present"

#: Data exports: kind -> button label.
DATA_EXPORTS: Final[dict[str, str]] = {
    "shp": "Shapefile (zip)",
    "gpkg": "GeoPackage",
    "geojson": "GeoJSON",
    "csv": "CSV tables",
}
#: Maps on paper: kind -> button label.
PRINT_EXPORTS: Final[dict[str, str]] = {
    "png": "Map (PNG)",
    "pdf": "Map (PDF)",
    "factsheet": "Fact sheet (PDF)",
}
EXPORT_KINDS: Final[tuple[str, ...]] = (*DATA_EXPORTS, *PRINT_EXPORTS)

#: Colour behind the tiles: the pipeline skips empty tiles outside the region (etl.outputs.tiles).
TILE_BACKGROUND: Final[str] = "#dedad3"
TRANSPARENT_PNG: Final[str] = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)

#: Layers of the map a view restyles (id -> props carried per view).
VIEW_LAYER_IDS: Final[tuple[str, ...]] = (
    "layer-surface",
    "layer-sites",
    "layer-areas",
    "layer-overdose",
    "layer-barriers",
    "layer-sitable",
    "layer-transit",
    "layer-streets-major",
    "layer-streets-minor",
    "layer-labels",
)


def export_button_id(kind: str) -> str:
    """The id of an export button."""
    return f"export-{kind}"


def tile_url(region: str, build: str) -> str:
    """Leaflet URL template of a region's offline tiles (``?v=`` the build, for caching)."""
    path = f"{TILE_PREFIX}/{region}/{{z}}/{{x}}/{{y}}.png"
    return f"{path}?v={build}" if build else path


def present_href(region: str, view: int | None = None) -> str:
    """Link to town-hall mode (``view`` counts from 1)."""
    href = f"{PRESENT_PATH}?region={region}"
    return href if view is None else f"{href}&view={view}"


# ---------------------------------------------------------------------------------------
# Offline basemap
# ---------------------------------------------------------------------------------------


def tile_bounds(
    bounds: Sequence[Sequence[float]] | None, *, pad_km: float = 5.0
) -> list[list[float]] | None:
    """Region bounds ``[[s, w], [n, e]]`` grown by ``pad_km`` (the network's buffer)."""
    if bounds is None:
        return None
    (s, w), (n, e) = bounds
    dlat = pad_km / 111.0
    dlon = pad_km / (111.0 * max(math.cos(math.radians((s + n) / 2.0)), 0.05))
    return [[round(s - dlat, 5), round(w - dlon, 5)], [round(n + dlat, 5), round(e + dlon, 5)]]


def offline_tiles(model: Any) -> list:
    """The bundle's pre-rendered basemap as a tile layer ([] when the bundle has none).

    ``model`` is a :class:`layouts.map_page.PageModel`: the tile stage of its manifest gives
    the zoom levels, its options the bounds (tiles are only requested inside them, so a
    zoomed-out map does not ask for thousands of missing tiles).
    """
    manifest = model.manifest
    stage = manifest.get("stages", {}).get("tiles") or {}
    zooms = stage.get("zooms")
    if not stage.get("tiles") or not zooms:
        return []
    region = str(manifest.get("region", model.state.region))
    build = str(manifest.get("build_id", ""))
    pad = float(manifest.get("settings", {}).get("buffer_km") or 5.0) + 1.0
    bounds = tile_bounds(getattr(model.options, "bounds", None), pad_km=pad)
    extra = {"bounds": bounds} if bounds else {}
    attribution = getattr(model, "osm_attribution", "") or "Streets: the region's own data"
    return [
        dl.TileLayer(
            id=OFFLINE_TILES,
            url=tile_url(region, build),
            minNativeZoom=int(min(zooms)),
            maxNativeZoom=int(max(zooms)),
            maxZoom=19,
            tileSize=256,
            errorTileUrl=TRANSPARENT_PNG,
            className="atlas-offline-tiles",
            attribution=attribution,
            **extra,
        )
    ]


# ---------------------------------------------------------------------------------------
# Map page: download and print, saved views
# ---------------------------------------------------------------------------------------


def export_section(region: str) -> html.Section:
    """Buttons for the data (current category and mode) and for maps on paper."""
    data_buttons = [
        html.Button(
            label,
            id=export_button_id(kind),
            n_clicks=0,
            type="button",
            className="atlas-button atlas-button--light",
        )
        for kind, label in DATA_EXPORTS.items()
    ]
    print_buttons = [
        html.Button(
            label,
            id=export_button_id(kind),
            n_clicks=0,
            type="button",
            className="atlas-button atlas-button--light",
        )
        for kind, label in PRINT_EXPORTS.items()
    ]
    return html.Section(
        [
            html.H2("Download and print"),
            html.P(
                "Layers for your own GIS, for the care and travel mode shown on the map, "
                "with a data dictionary and the sources and licences:",
                className="atlas-small",
            ),
            html.Div(data_buttons, className="atlas-button-row", id="export-data"),
            dcc.Checklist(
                id=EXPORT_IN_VIEW,
                options=[{"label": "Only what is in the map view", "value": "view"}],
                value=[],
                className="atlas-checks",
            ),
            html.P("Maps on paper and slides, and a one-page fact sheet:", className="atlas-small"),
            html.Div(print_buttons, className="atlas-button-row", id="export-print"),
            html.Div(id=EXPORT_STATUS, role="status", **{"aria-live": "polite"}),
            dcc.Store(id=EXPORT_LINK),
            dcc.Store(id=EXPORT_FIRED),
        ],
        className="atlas-section atlas-export",
        id="export-section",
        **{"data-region": region},
    )


def views_section(region: str) -> html.Section:
    """The form that saves the current map as a town-hall view, and the saved views."""
    return html.Section(
        [
            html.H2("Town-hall views"),
            html.P(
                [
                    "Save the map as it is now as a slide for ",
                    html.A("town-hall mode", href=present_href(region), id="present-link"),
                    " (full screen, large type, works without internet).",
                ],
                className="atlas-small",
            ),
            html.Label("Title", htmlFor=VIEW_TITLE, className="atlas-label"),
            dcc.Input(
                id=VIEW_TITLE,
                type="text",
                maxLength=80,
                value="",
                debounce=False,
                placeholder="e.g. No methadone within 30 minutes in the west",
                className="atlas-input atlas-input--block",
            ),
            html.Label("One sentence", htmlFor=VIEW_TEXT, className="atlas-label"),
            dcc.Textarea(
                id=VIEW_TEXT,
                maxLength=280,
                value="",
                rows=2,
                placeholder="What should the room take away from this map?",
                className="atlas-input atlas-input--block",
            ),
            html.P(PRIVACY_NOTE, className="atlas-small", id="view-privacy"),
            html.P(controls_text(), className="atlas-small", id=EDITING_NOTE),
            html.Label("Editor token", htmlFor=EDITOR_TOKEN, className="atlas-label"),
            dcc.Input(
                id=EDITOR_TOKEN,
                type="password",
                value="",
                maxLength=200,
                autoComplete="off",
                persistence=True,
                persistence_type="session",
                placeholder="Only editors: the token from the site's operator",
                className="atlas-input atlas-input--block",
            ),
            html.Button(
                "Save this view", id=VIEW_SAVE, n_clicks=0, type="button", className="atlas-button"
            ),
            html.Div(id=VIEW_STATUS, role="status", **{"aria-live": "polite"}),
            html.Div(id=VIEWS_LIST),
        ],
        className="atlas-section atlas-views",
        id="views-section",
    )


def views_list(region: str, views: Sequence[Any], *, saved: bool, hrefs: Sequence[str]) -> list:
    """The list of views: saved ones with a box to tick for removal; else the default sequence."""

    def label(i: int, view: Any) -> html.Span:
        return html.Span(
            [
                html.A(
                    f"{i + 1}. {view.title}",
                    href=present_href(region, i + 1),
                    className="atlas-view-title",
                    title="Present from this view",
                ),
                " · ",
                html.A("on the map", href=hrefs[i], className="atlas-small"),
            ]
        )

    if not saved:
        return [
            html.P(
                "No views saved yet: town-hall mode shows this default sequence. "
                "Saving a view starts your own.",
                className="atlas-small",
            ),
            html.Ul(
                [html.Li(label(i, v)) for i, v in enumerate(views)],
                className="atlas-view-list",
            ),
            # The remove callback's inputs exist on every map page.
            dcc.Checklist(id=VIEWS_PICK, options=[], value=[], style={"display": "none"}),
            html.Button(id=VIEWS_REMOVE, n_clicks=0, style={"display": "none"}, type="button"),
        ]
    count = f"{len(views)} saved view{'s' if len(views) != 1 else ''} (tick to remove):"
    return [
        html.P(count, className="atlas-small"),
        dcc.Checklist(
            id=VIEWS_PICK,
            options=[{"label": label(i, v), "value": i} for i, v in enumerate(views)],
            value=[],
            className="atlas-checks atlas-view-list",
        ),
        html.Button(
            "Remove the ticked views",
            id=VIEWS_REMOVE,
            n_clicks=0,
            type="button",
            className="atlas-button atlas-button--light",
        ),
    ]


# ---------------------------------------------------------------------------------------
# The presentation page
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slide:
    """One step of the presentation.

    Attributes
    ----------
    title, text
        What the slide says.
    model
        The :class:`layouts.map_page.PageModel` of its map state.
    href
        The view on the normal map page.
    """

    title: str
    text: str
    model: Any
    href: str


def _walk(components: Any) -> Iterator[Any]:
    """Every component of a tree (lists, children)."""
    stack = [components]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
            continue
        if item is None or isinstance(item, (str, int, float)):
            continue
        yield item
        children = getattr(item, "children", None)
        if children is not None:
            stack.append(children)


def present_id(cid: str) -> str:
    """The id a map component gets on the presentation page.

    The map page's callbacks listen to its layers (a click on a site, the map's zoom);
    Dash reports an error when only some inputs of a callback are on the page, so the
    presentation's map uses ids of its own.
    """
    return PRESENT_PREFIX + cid


def rename_ids(components: Any) -> Any:
    """Give every component with a string id its presentation id (in place)."""
    for comp in _walk(components):
        cid = getattr(comp, "id", None)
        if isinstance(cid, str) and not cid.startswith(PRESENT_PREFIX):
            comp.id = present_id(cid)
    return components


def layer_props(layers: list) -> dict[str, dict[str, Any]]:
    """``url`` and ``hideout`` of each restyled layer of :func:`map_layers`, by presentation id."""
    out = {}
    wanted = set(VIEW_LAYER_IDS)
    for comp in _walk(layers):
        cid = getattr(comp, "id", None)
        if not isinstance(cid, str):
            continue
        base = cid.removeprefix(PRESENT_PREFIX)
        if base not in wanted:
            continue
        props: dict[str, Any] = {"hideout": getattr(comp, "hideout", None)}
        url = getattr(comp, "url", None)
        if url:
            props["url"] = url
        out[present_id(base)] = props
    return out


def viewport(model: Any) -> dict[str, Any]:
    """Where the map goes for a slide: its saved centre and zoom, else the whole region."""
    s = model.state
    if s.lat is not None and s.lon is not None and s.zoom is not None:
        return {"center": [s.lat, s.lon], "zoom": s.zoom}
    bounds = getattr(model.options, "bounds", None)
    if bounds is None:
        return {}
    return {"bounds": [list(b) for b in bounds]}


_EXTRA_LAYERS: Final[dict[str, str]] = {
    "areas": "travel time by area",
    "overdose": "overdose deaths",
    "barriers": "zoning barriers",
    "sitable": "sitable land",
    "transit": "transit stops",
}


def what_line(model: Any) -> str:
    """What the map shows, with the threshold beside it (printed under each slide)."""
    s = model.state
    shown = set(s.layers)
    extras = [label for key, label in _EXTRA_LAYERS.items() if key in shown]
    if not {"bands", "desert", "areas"} & shown:
        every = tuple(getattr(model.options, "site_categories", ()) or ())
        if "sites" in shown and s.sites and tuple(s.sites) == every:
            text = "Care sites of every kind"
        elif "sites" in shown:
            cats = ", ".join(CATEGORY_LABELS.get(c, c) for c in s.sites) or "no care sites"
            text = f"Care sites: {cats}"
        else:
            text = "Streets"
        return " · ".join([text, *extras])
    mode = MODE_LABELS.get(s.mode, s.mode).lower()
    text = f"{CATEGORY_LABELS.get(s.category, s.category)}, {mode}"
    if "desert" in shown:
        text += f" · desert beyond {s.threshold} min"
    return " · ".join([text, *extras])


#: Space kept clear of the title, the slide and the legend when the map frames a view (px).
FRAME_PADDING: Final[dict[str, list[int]]] = {
    "paddingTopLeft": [24, 250],
    "paddingBottomRight": [440, 90],
}


def present_page(
    slides: Sequence[Slide],
    *,
    index: int,
    layers: Sequence[list],
    legends: Sequence[list],
    region_title: str,
    fictional: bool,
    leave_href: str,
) -> html.Div:
    """The town-hall page: a full-screen map, the slides, the legend and four buttons.

    Parameters
    ----------
    slides
        The views, in order.
    index
        The slide shown first (0-based).
    layers
        The map's children for every slide (:func:`layouts.map_page.map_layers`); the
        slide at ``index`` is drawn, the others' restyled layers are carried in the deck.
    legends
        Legend entries of every slide (:func:`layouts.map_page.legend`).
    region_title
        The region's title.
    fictional
        Whether to stamp the page "fictional data".
    leave_href
        Where Esc and "Leave" go (the map page).
    """
    n = len(slides)
    first = slides[index].model
    deck = {
        "index": index,
        "region": first.state.region,
        "leave": leave_href,
        "minor": first.urls.get("streets_minor"),
        "bounds": _region_bounds(first),
        "views": [
            {
                "title": s.title,
                "href": s.href,
                "props": layer_props(layers[i]),
                "viewport": viewport(s.model),
            }
            for i, s in enumerate(slides)
        ],
    }
    cards = [
        html.Section(
            [
                html.P(f"{i + 1} / {n}", className="atlas-present-count"),
                html.H2(s.title, className="atlas-present-title"),
                html.P(s.text, className="atlas-present-text") if s.text else None,
                html.P(what_line(s.model), className="atlas-present-what"),
            ],
            id=f"present-slide-{i}",
            className="atlas-present-slide",
            hidden=i != index,
            **{"aria-roledescription": "slide", "aria-label": f"{i + 1} of {n}: {s.title}"},
        )
        for i, s in enumerate(slides)
    ]
    legend_boxes = [
        html.Div(entries, id=f"present-legend-{i}", hidden=i != index)
        for i, entries in enumerate(legends)
    ]
    view = viewport(first)
    map_view: dict[str, Any]
    if "center" in view:
        map_view = {"center": view["center"], "zoom": view["zoom"]}
    elif "bounds" in view:
        map_view = {
            "bounds": view["bounds"],
            "center": _middle(view["bounds"]),
            "boundsOptions": FRAME_PADDING,
        }
    else:
        map_view = {"center": [0, 0], "zoom": 3}
    children = [c for c in layers[index] if type(c).__name__ != "ScaleControl"]
    children.append(dl.ScaleControl(position="bottomleft", imperial=True, metric=True))
    rename_ids(children)
    top = [html.P("Access Atlas", className="atlas-present-app"), html.P(region_title)]
    if fictional:
        top.append(
            html.P(
                "Fictional data",
                className="atlas-present-stamp",
                role="note",
            )
        )
    nav = html.Nav(
        [
            html.Button(
                "◀ Back",
                id=PRESENT_PREV,
                type="button",
                **{"data-present": "prev", "aria-label": "Previous view"},
            ),
            html.Button(
                "Next ▶",
                id=PRESENT_NEXT,
                type="button",
                **{"data-present": "next", "aria-label": "Next view"},
            ),
            html.Button("Full screen", id=PRESENT_FULL, type="button", **{"data-present": "full"}),
            html.A("Leave", id=PRESENT_LEAVE, href=leave_href, **{"data-present": "leave"}),
            html.P("← → or Space to move · Esc to leave", className="atlas-present-keys"),
        ],
        className="atlas-present-nav",
        **{"aria-label": "Slides"},
    )
    band = html.Header(
        [
            html.Div(
                cards,
                className="atlas-present-slides",
                id="present-slides",
                **{"aria-live": "polite"},
            ),
            html.Div(top, className="atlas-present-brand"),
        ],
        className="atlas-present-band",
    )
    return html.Div(
        [
            band,
            html.Main(
                [
                    dl.Map(
                        children,
                        id=PRESENT_MAP,
                        preferCanvas=True,
                        minZoom=6,
                        maxZoom=18,
                        zoomSnap=0.25,
                        zoomDelta=0.5,
                        keyboard=False,
                        zoomControl=False,
                        className="atlas-map atlas-present-map",
                        **map_view,
                    ),
                    html.Div(
                        [html.H2("Legend", className="atlas-present-legend-title"), *legend_boxes],
                        className="atlas-present-legend",
                        role="region",
                        **{"aria-label": "Legend"},
                    ),
                    nav,
                ],
                id="main",
            ),
        ],
        id=PRESENT,
        className="atlas-present",
        **{"data-deck": json.dumps(deck, separators=(",", ":"))},
    )


def _region_bounds(model: Any) -> list[list[float]] | None:
    bounds = getattr(model.options, "bounds", None)
    return [list(b) for b in bounds] if bounds else None


def _middle(bounds: Any) -> list[float]:
    (s, w), (n, e) = bounds
    return [(s + n) / 2.0, (w + e) / 2.0]
