"""The map's shareable state: what the URL's query string holds, parsed and encoded.

A link such as ``/?region=franklin-oh&cat=buprenorphine&mode=walk&t=20&layers=sites,desert``
reopens the same view. Parsing never fails: a parameter that makes no sense for the region
(an unknown category, a threshold out of range, a zoom of "banana") is dropped and its default
used, so an old or hand-edited link still opens a sensible map. A category the region has no
data for (:attr:`Options.no_data`) is kept: the page opens it and says there is no data.

Parameters
----------
region
    Region bundle name.
cat, mode
    The category and travel mode whose travel times, bands and desert are shown.
t
    Desert threshold in whole minutes (:data:`THRESHOLD_RANGE`).
layers
    Comma-separated layer keys shown (:data:`LAYERS`); ``layers=`` (empty) shows none.
sites
    Comma-separated provider categories whose sites are shown (default: all).
f
    Comma-separated attribute filters (e.g. ``medicaid,telehealth``): only sites with all of
    them are shown.
unit
    Area unit of the travel-time choropleth (:data:`UNITS`).
op
    Fill opacity in percent (10-100).
lat, lon, z
    Map centre and zoom (omitted: fit the region).
q
    An address looked up.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import parse_qs, urlencode

from etl.safe_json import UnsafeJsonError, loads_limited

#: Layer keys, in drawing order, with their labels.
LAYERS: Final[dict[str, str]] = {
    "streets": "Streets (offline basemap)",
    "tiles": "Online map tiles (needs internet)",
    "areas": "Travel time by area",
    "capacity": "Practitioners per 10,000 people (by area)",
    "overdose": "Overdose deaths (rate)",
    "bands": "Travel-time bands",
    "desert": "Desert (beyond the threshold)",
    "barriers": "Zoning barriers",
    "sitable": "Land where a new clinic may open",
    "transit": "Transit stops",
    "facilities": "Prisons and jails (release day)",
    "sites": "Care sites",
}

#: Layers shown when the URL does not say.
DEFAULT_LAYERS: Final[tuple[str, ...]] = ("streets", "bands", "desert", "facilities", "sites")

#: Area units of the choropleth: key -> label.
UNITS: Final[dict[str, str]] = {
    "areas": "Census areas",
    "grid": "Hexagon grid (equal-size cells)",
    "counties": "Counties",
}

THRESHOLD_RANGE: Final[tuple[int, int]] = (5, 60)
OPACITY_RANGE: Final[tuple[int, int]] = (10, 100)
ZOOM_RANGE: Final[tuple[int, int]] = (3, 18)
DEFAULT_OPACITY: Final[int] = 60
MAX_QUERY_CHARS: Final[int] = 200
#: Longest scenario token a link may carry (``w=``): about 25 changes, well inside the
#: 4 KB request line gunicorn accepts.
MAX_SCENARIO_CHARS: Final[int] = 3000
_TOKEN_RE: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Options:
    """What a region offers: the valid values of each parameter.

    Attributes
    ----------
    regions
        Region bundles available.
    categories
        Categories with travel times.
    site_categories
        Categories with sites.
    modes
        Travel modes.
    layers
        Layer keys this region can show.
    filters
        Attribute filter keys that apply.
    units
        Area units available.
    thresholds
        Default threshold per ``"category/mode"`` (minutes).
    bounds
        ``[[south, west], [north, east]]`` of the region, or None.
    no_data
        Categories the picker lists without data for this region (no site in any provider
        list), each with the reason shown beside it; a link asking for one opens it and
        says so, it never switches to another category.
    """

    regions: tuple[str, ...]
    categories: tuple[str, ...]
    site_categories: tuple[str, ...]
    modes: tuple[str, ...]
    layers: tuple[str, ...]
    filters: tuple[str, ...] = ()
    units: tuple[str, ...] = ("areas",)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None
    no_data: Mapping[str, str] = field(default_factory=dict)

    def has_data(self, category: str) -> bool:
        """Whether a category has travel times here (False for one listed in ``no_data``)."""
        return category in self.categories

    def default_threshold(self, category: str, mode: str) -> int:
        """The configured threshold (minutes, rounded into range), or 30."""
        value = self.thresholds.get(f"{category}/{mode}", 30)
        return int(min(max(round(value), THRESHOLD_RANGE[0]), THRESHOLD_RANGE[1]))


@dataclass(frozen=True)
class MapState:
    """One view of the map; :func:`parse_state` and :func:`encode_state` convert it."""

    region: str
    category: str
    mode: str
    threshold: int
    layers: tuple[str, ...]
    sites: tuple[str, ...]
    filters: tuple[str, ...] = ()
    unit: str = "areas"
    opacity: int = DEFAULT_OPACITY
    lat: float | None = None
    lon: float | None = None
    zoom: int | None = None
    query: str = ""
    scenario: str = ""
    #: Why a scenario token in the link (``w=``) could not be opened ("" when none was bad).
    scenario_problem: str = ""

    def with_(self, **changes: Any) -> MapState:
        """A copy with some fields changed."""
        return replace(self, **changes)


def default_state(region: str, options: Options) -> MapState:
    """The state a region opens in."""
    category = _first_with_threshold(options)
    mode = _default_mode(options, category)
    return MapState(
        region=region,
        category=category,
        mode=mode,
        threshold=options.default_threshold(category, mode),
        layers=tuple(k for k in DEFAULT_LAYERS if k in options.layers),
        sites=tuple(options.site_categories),
        unit=options.units[0] if options.units else "areas",
    )


def _first_with_threshold(options: Options) -> str:
    """The first category (canonical order) that has a threshold, else the first one."""
    for c in options.categories:
        if any(f"{c}/{m}" in options.thresholds for m in options.modes):
            return c
    return options.categories[0] if options.categories else ""


def _default_mode(options: Options, category: str) -> str:
    for m in options.modes:
        if f"{category}/{m}" in options.thresholds:
            return m
    return options.modes[0] if options.modes else ""


def _one(params: Mapping[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    if not values:
        return None
    return values[-1].strip()


def _int_in(text: str | None, lo: int, hi: int) -> int | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value != round(value) or not lo <= value <= hi:
        return None
    return int(value)


def _float_in(text: str | None, lo: float, hi: float) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and lo <= value <= hi else None


def _subset(text: str | None, allowed: Iterable[str]) -> tuple[str, ...] | None:
    """Comma list restricted to ``allowed`` (in allowed's order); None when absent/garbage."""
    if text is None:
        return None
    allowed = tuple(allowed)
    given = {p.strip() for p in text.split(",") if p.strip()}
    if given and not given & set(allowed):
        return None  # nothing recognisable: ignore the parameter
    return tuple(a for a in allowed if a in given)


def parse_state(search: str | None, options: Options, *, default_region: str) -> MapState:
    """Read a map state from a URL query string, ignoring what makes no sense.

    Parameters
    ----------
    search
        The query string (with or without the leading ``?``).
    options
        What the region offers (see :func:`viewmodel.state.Options`); the caller builds it for
        the region the query names (:func:`requested_region`).
    default_region
        The region when the query names none it can show.

    Returns
    -------
    MapState
        Every field valid for the region.
    """
    params = parse_qs((search or "").lstrip("?"), keep_blank_values=True)
    region = requested_region(search, options.regions, default=default_region)
    state = default_state(region, options)

    category = _one(params, "cat")
    if category in options.categories or category in options.no_data:
        state = state.with_(category=category, mode=_default_mode(options, category))
    mode = _one(params, "mode")
    if mode in options.modes:
        state = state.with_(mode=mode)
    state = state.with_(threshold=options.default_threshold(state.category, state.mode))
    threshold = _int_in(_one(params, "t"), *THRESHOLD_RANGE)
    if threshold is not None:
        state = state.with_(threshold=threshold)

    layers_text = _one(params, "layers")
    if layers_text == "":
        state = state.with_(layers=())
    else:
        layers = _subset(layers_text, options.layers)
        if layers is not None:
            state = state.with_(layers=layers)
    sites_text = _one(params, "sites")
    if sites_text == "":
        state = state.with_(sites=())
    else:
        sites = _subset(sites_text, options.site_categories)
        if sites is not None:
            state = state.with_(sites=sites)
    filters = _subset(_one(params, "f"), options.filters)
    if filters is not None:
        state = state.with_(filters=filters)
    unit = _one(params, "unit")
    if unit in options.units:
        state = state.with_(unit=unit)
    opacity = _int_in(_one(params, "op"), *OPACITY_RANGE)
    if opacity is not None:
        state = state.with_(opacity=opacity)

    lat = _float_in(_one(params, "lat"), -85.0, 85.0)
    lon = _float_in(_one(params, "lon"), -180.0, 180.0)
    zoom = _int_in(_one(params, "z"), *ZOOM_RANGE)
    if lat is not None and lon is not None and zoom is not None and _near(options, lat, lon):
        state = state.with_(lat=round(lat, 5), lon=round(lon, 5), zoom=zoom)
    query = _one(params, "q")
    if query and len(query) <= MAX_QUERY_CHARS and query.isprintable():
        state = state.with_(query=query)
    token = _one(params, "w")
    if token:
        problem = scenario_token_problem(token)
        if problem:
            state = state.with_(scenario_problem=problem)
        elif decode_scenario(token) is not None:
            state = state.with_(scenario=token)
    return state


def encode_scenario(store: Mapping[str, Any] | None) -> str:
    """A what-if scenario (the browser's store) as a link token: base64url of its JSON.

    ``assets/atlas.js`` writes the same token; ``""`` for no scenario, an empty one, or one
    too long for a link (more than :data:`MAX_SCENARIO_CHARS`; save it and share its name).
    """
    if not store or not store.get("changes"):
        return ""
    text = json.dumps(store, separators=(",", ":"), ensure_ascii=False)
    token = base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")
    return token if len(token) <= MAX_SCENARIO_CHARS else ""


def decode_scenario(token: str | None) -> dict[str, Any] | None:
    """The scenario store a link token holds, or None for anything that is not one.

    Only the form is checked here (a JSON object with a list of changes);
    :func:`viewmodel.scenario.scenario_from_store` checks every change when it is opened.
    """
    if not token or scenario_token_problem(token):
        return None
    data = _token_json(token)
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        return None
    return data if data["changes"] else None


def _token_json(token: str) -> Any:
    """The JSON a token holds, decoded with limits (:mod:`etl.safe_json`); None when bad."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return loads_limited(raw, what="the scenario in this link", max_bytes=MAX_SCENARIO_CHARS)
    except (binascii.Error, ValueError, UnsafeJsonError):
        return None


def scenario_token_problem(token: str) -> str:
    """Why a link's scenario token cannot be opened, in plain words ("" when it can).

    The length is checked first, then the characters, then the decoded JSON (at most
    :data:`MAX_SCENARIO_CHARS`, nested at most 32 levels, UTF-8); an empty scenario is no
    problem (the link simply has none).
    """
    if len(token) > MAX_SCENARIO_CHARS:
        return (
            f"the scenario in this link is longer than the {MAX_SCENARIO_CHARS:,} characters a "
            "link may carry; save it and share its name instead"
        )
    if not _TOKEN_RE.fullmatch(token):
        return "the scenario in this link is damaged (it holds characters a link never writes)"
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return "the scenario in this link is damaged (cut short or mistyped)"
    try:
        data = loads_limited(raw, what="the scenario in this link", max_bytes=MAX_SCENARIO_CHARS)
    except UnsafeJsonError as exc:
        return str(exc).replace("the scenario in this link: ", "the scenario in this link is ")
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        return "the scenario in this link is not a scenario of this map"
    return ""


def _near(options: Options, lat: float, lon: float, *, pad_deg: float = 1.0) -> bool:
    """Whether a view centre lies within (a degree of) the region."""
    if options.bounds is None:
        return True
    (s, w), (n, e) = options.bounds
    return s - pad_deg <= lat <= n + pad_deg and w - pad_deg <= lon <= e + pad_deg


def requested_region(search: str | None, regions: Iterable[str], *, default: str) -> str:
    """The region a query string names if it is one of ``regions``, else ``default``."""
    params = parse_qs((search or "").lstrip("?"))
    region = _one(params, "region")
    return region if region in set(regions) else default


def encode_state(state: MapState, options: Options, *, default_region: str | None = None) -> str:
    """Write a map state as a query string (with ``?``), leaving out what is default.

    Parameters
    ----------
    state
        The state.
    options
        The region's options (to know the defaults).
    default_region
        Leave ``region`` out when it is this one.

    Returns
    -------
    str
        ``"?…"``, or ``""`` when everything is default.
    """
    base = default_state(state.region, options)
    params: dict[str, str] = {}
    if state.region != default_region:
        params["region"] = state.region
    if state.category != base.category:
        params["cat"] = state.category
    if state.mode != _default_mode(options, state.category):
        params["mode"] = state.mode
    if state.threshold != options.default_threshold(state.category, state.mode):
        params["t"] = str(state.threshold)
    if state.layers != base.layers:
        params["layers"] = ",".join(state.layers)
    if state.sites != base.sites:
        params["sites"] = ",".join(state.sites)
    if state.filters:
        params["f"] = ",".join(state.filters)
    if state.unit != base.unit:
        params["unit"] = state.unit
    if state.opacity != DEFAULT_OPACITY:
        params["op"] = str(state.opacity)
    if state.lat is not None and state.lon is not None and state.zoom is not None:
        params.update(lat=f"{state.lat:.5f}", lon=f"{state.lon:.5f}", z=str(state.zoom))
    if state.query:
        params["q"] = state.query
    if state.scenario:
        params["w"] = state.scenario
    return "?" + urlencode(params, safe=",/") if params else ""
