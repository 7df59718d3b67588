"""Town-hall mode: the ``/present`` page, and saving the map's current view as a slide.

``/present?region=<r>&view=<n>`` shows a region's saved views (``geodata/saved/<r>/
views.json``, :mod:`viewmodel.saved_views`) or, when none are saved, the default sequence, as a
full-screen presentation; the keyboard steps through them in the browser
(``assets/atlas.js``, town-hall section). :func:`with_present` wraps the map page's render
function so the same page shell serves it.

On the map page, "Save this view" stores the current map state (read from the share link
the page keeps current) with a title and one sentence; ticked views can be removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from dash import Input, Output, State, callback, ctx, html, no_update
from dash.exceptions import PreventUpdate

from etl._errors import AtlasError, InputError
from etl.bundle.regions import list_regions
from layouts import map_page as mp
from layouts import townhall as th
from layouts.overview import error_page
from viewmodel import editing, serving
from viewmodel.data import RegionData, map_options, region_data
from viewmodel.saved_views import (
    View,
    add_view,
    clean_view,
    default_views,
    read_views,
    remove_views,
    view_state,
)
from viewmodel.state import MapState, Options, requested_region

logger = logging.getLogger(__name__)


def _map() -> Any:
    import callbacks.map as map_callbacks

    return map_callbacks


def is_present(pathname: str | None) -> bool:
    """Whether a path is town-hall mode."""
    return (pathname or "/").rstrip("/").endswith(th.PRESENT_PATH)


def with_present(render: Callable[[str | None, str | None], html.Div]) -> Callable:
    """Wrap the map page's render function to add town-hall mode.

    ``/present`` renders the presentation; the map page gets its list of saved views.
    """

    def render_with_present(pathname: str | None, search: str | None) -> html.Div:
        if is_present(pathname):
            return render_present(search)
        page = render(pathname, search)
        _prefill_views(page)
        return page

    render_with_present.__wrapped__ = render  # type: ignore[attr-defined]
    render_with_present.__doc__ = render.__doc__
    return render_with_present


def _walk(comp: Any):
    yield comp
    children = getattr(comp, "children", None)
    if isinstance(children, (list, tuple)):
        for c in children:
            yield from _walk(c)
    elif children is not None and hasattr(children, "children"):
        yield from _walk(children)


def _prefill_views(page: Any) -> None:
    """Fill the map page's list of views (the region comes from its store)."""
    target = region = None
    for comp in _walk(page):
        cid = getattr(comp, "id", None)
        if cid == th.VIEWS_LIST:
            target = comp
        elif cid == mp.REGION_STORE:
            region = (getattr(comp, "data", None) or {}).get("region")
    if target is None or not region:
        return
    try:
        target.children = views_panel(region)
    except AtlasError as exc:
        logger.warning("views of %s not listed: %s", region, exc)


# ---------------------------------------------------------------------------------------
# Views of a region
# ---------------------------------------------------------------------------------------


def _region(region: str) -> tuple[RegionData, Options]:
    geodata = _map().geodata_dir()
    regions = list_regions(geodata)
    rd = region_data(geodata, region)
    return rd, map_options(rd, regions)


def region_views(rd: RegionData, options: Options) -> tuple[list[View], bool]:
    """The views of a region and whether they were saved (False: the default sequence).

    A views file that cannot be used (too large, too deep, not UTF-8, not JSON, a link out
    of the saved folder) gives the default sequence; :func:`views_note` says why.
    """
    saved, _note = read_views(_map().geodata_dir(), rd.region, options)
    if saved:
        return saved, True
    # Computed once per build (their numbers come from the bundle).
    return list(rd.cached(("townhall", "default_views"), lambda: default_views(rd, options))), False


def map_href(state: MapState, options: Options) -> str:
    """The map page link of a state (always naming the region)."""
    return _map().share_link(state, options, default="")


def views_note(rd: RegionData, options: Options) -> str | None:
    """One plain sentence when the region's views file exists but cannot be used, else None."""
    return read_views(_map().geodata_dir(), rd.region, options)[1]


def views_panel(region: str) -> list:
    """The list of a region's views for the map page (with a note on an unusable file)."""
    rd, options = _region(region)
    views, saved = region_views(rd, options)
    hrefs = [map_href(view_state(v, options, region=region), options) for v in views]
    listing = th.views_list(region, views, saved=saved, hrefs=hrefs)
    note = views_note(rd, options)
    if note:
        listing = [_warning(_sentence(note)), *listing]
    return listing


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]) if text else text


# ---------------------------------------------------------------------------------------
# The presentation page
# ---------------------------------------------------------------------------------------


def _index(search: str | None, n: int) -> int:
    """The slide asked for by ``view=`` (1-based), clamped; the first when absent or bad."""
    values = parse_qs((search or "").lstrip("?")).get("view")
    try:
        value = int(values[-1]) if values else 1
    except ValueError:
        value = 1
    return min(max(value, 1), max(n, 1)) - 1


def present_model(rd: RegionData, state: MapState, options: Options) -> mp.PageModel:
    """The map page's model for a state, without the summary panel (not shown here)."""
    m = _map()
    return mp.PageModel(
        manifest=rd.manifest,
        state=state,
        options=options,
        urls=m.layer_urls(rd),
        summary=[],
        defaults={},
        overdose=m.overdose_model(rd),
        osm_attribution=m.osm_attribution(rd.manifest),
    )


def render_present(search: str | None) -> html.Div:
    """Town-hall mode for the region the query names (its saved views, or the defaults)."""
    m = _map()
    geodata = m.geodata_dir()
    regions = list_regions(geodata)
    region = requested_region(search, regions, default=m.default_region(regions))
    try:
        rd = region_data(geodata, region)
        options = map_options(rd, regions)
        views, _saved = region_views(rd, options)
        if not views:
            return error_page(f"The region {region!r} has nothing to present yet.")
        slides = []
        for v in views:
            state = view_state(v, options, region=region)
            model = present_model(rd, state, options)
            slides.append(th.Slide(v.title, v.text, model, map_href(state, options)))
        index = _index(search, len(slides))
        layers = [mp.map_layers(s.model) for s in slides]
        legends = [mp.legend(s.model) for s in slides]
        return th.present_page(
            slides,
            index=index,
            layers=layers,
            legends=legends,
            region_title=str(rd.manifest.get("title", region)),
            fictional=bool(rd.manifest.get("fictional")),
            leave_href=slides[index].href,
        )
    except AtlasError as exc:
        logger.warning("cannot present region %r: %s", region, exc)
        return error_page(serving.public_error(region, exc, geodata))
    except Exception:  # never a traceback in the browser
        logger.exception("town-hall mode of %r failed", region)
        return error_page(
            f"Town-hall mode of {region!r} could not be shown because of an unexpected error; "
            "the server log has the details."
        )


# ---------------------------------------------------------------------------------------
# Saving and removing views (map page)
# ---------------------------------------------------------------------------------------


def save_view(
    region: str, *, title: Any, text: Any, share_href: Any, token: Any = None
) -> tuple[list, list]:
    """Save the map's current state as a view; return the status and the new list.

    Only an editor may (:func:`viewmodel.editing.check_write`); the view never keeps an
    address looked up or a point (:data:`viewmodel.saved_views.PRIVATE_KEYS`).
    """
    try:
        editing.check_write(token, what="save view")
    except AtlasError as exc:
        return [_warning(str(exc))], no_update
    _rd, options = _region(region)
    view = clean_view(
        {"title": title, "text": text, "query": share_href if isinstance(share_href, str) else ""},
        options,
        region=region,
    )
    if view is None:
        return [_warning("Give the view a title first.")], no_update
    try:
        views = add_view(_map().geodata_dir(), region, view, options)
    except InputError as exc:
        return [_warning(str(exc))], no_update
    except OSError as exc:
        return [_warning(server_problem(exc, "The view was not saved"))], no_update
    status = [
        html.P(
            [
                f"Saved as view {len(views)}: “{view.title}”. ",
                html.A("Present it", href=th.present_href(region, len(views))),
            ],
            className="atlas-small",
        )
    ]
    return status, views_panel(region)


def drop_views(region: str, picked: Any, *, token: Any = None) -> tuple[list, list]:
    """Remove the ticked views; return the status and the new list (editors only)."""
    indices = [int(i) for i in (picked or []) if isinstance(i, int) and not isinstance(i, bool)]
    if not indices:
        return [_warning("Tick the views to remove first.")], no_update
    try:
        editing.check_write(token, what="remove views")
    except AtlasError as exc:
        return [_warning(str(exc))], no_update
    _rd, options = _region(region)
    try:
        kept = remove_views(_map().geodata_dir(), region, indices, options)
    except OSError as exc:
        return [_warning(server_problem(exc, "Nothing was removed"))], no_update
    removed = len(indices)
    text = f"Removed {removed} view{'s' if removed != 1 else ''}; {len(kept)} left."
    if not kept:
        text += " Town-hall mode shows the default sequence again."
    return [html.P(text, className="atlas-small")], views_panel(region)


def _warning(text: str) -> html.P:
    return html.P(text, className="atlas-warning", role="alert")


def server_problem(exc: OSError, what: str) -> str:
    """A plain sentence for a server error a person can act on (full disk, read-only files).

    The log gets the error (with its path); the page gets no path.
    """
    logger.error("%s: %s: %s", what, type(exc).__name__, exc)
    return f"{what}: {serving.os_error_text(exc)}"


@callback(
    Output(th.VIEW_STATUS, "children"),
    Output(th.VIEWS_LIST, "children"),
    Output(th.VIEW_TITLE, "value"),
    Output(th.VIEW_TEXT, "value"),
    Input(th.VIEW_SAVE, "n_clicks"),
    Input(th.VIEWS_REMOVE, "n_clicks"),
    State(th.VIEW_TITLE, "value"),
    State(th.VIEW_TEXT, "value"),
    State(mp.SHARE, "href"),
    State(th.VIEWS_PICK, "value"),
    State(mp.REGION_STORE, "data"),
    State(th.EDITOR_TOKEN, "value"),
    prevent_initial_call=True,
)
def manage_views(
    _save: int,
    _remove: int,
    title: str | None,
    text: str | None,
    share_href: str | None,
    picked: list | None,
    store: dict[str, Any] | None,
    token: str | None = None,
) -> tuple:
    """Save the current view, or remove the ticked ones."""
    if not isinstance(store, dict) or not isinstance(store.get("region"), str):
        raise PreventUpdate
    region = store["region"]
    try:
        if ctx.triggered_id == th.VIEW_SAVE:
            status, listing = save_view(
                region, title=title, text=text, share_href=share_href, token=token
            )
            cleared = "" if listing is not no_update else no_update
            return status, listing, cleared, cleared
        if ctx.triggered_id == th.VIEWS_REMOVE:
            status, listing = drop_views(region, picked, token=token)
            return status, listing, no_update, no_update
    except AtlasError as exc:
        logger.warning("views of %s: %s", region, exc)
        return [_warning(serving.scrub_paths(str(exc)))], no_update, no_update, no_update
    raise PreventUpdate


__all__ = ["is_present", "render_present", "save_view", "with_present"]
