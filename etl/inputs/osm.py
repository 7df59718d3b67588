"""Read OpenStreetMap street networks: fast offline from files, or online through OSMnx.

Both readers return the same :class:`RawNetwork`: every street way as unsimplified
node-to-node segments in the way's digitised direction, with the way's tags. What a mode may
use (one-way rules, access, speeds) is decided later, in :mod:`etl.engine.network`, identically for
both sources.

Which ways are streets
----------------------
Every way with a ``highway`` tag, except

- ways tagged ``area=yes`` (a pedestrian square or parking lot outline, not a line to travel
  along), and
- the ``highway`` values in :data:`EXCLUDED_HIGHWAYS`: ways that do not exist yet or any more
  (``proposed``, ``planned``, ``construction``, ``abandoned``, ``disused``, ``razed``,
  ``demolished``, ``no``), features that are not travelled along (``platform``,
  ``bus_stop``, ``rest_area``, ``services``, ``emergency_bay``), race tracks (``raceway``) and
  indoor vertical or corridor connections (``elevator``, ``escalator``, ``corridor``).

Files
-----
:func:`read_osm_file` reads ``.osm.pbf``, ``.osm``, ``.osm.bz2`` and ``.osm.gz`` with pyosmium
in one pass (node locations cached in memory, only ``highway`` ways and nodes handed to
Python; ``highway=traffic_signals`` nodes are kept in :attr:`RawNetwork.signals`).
Extracts clipped at a bounding box reference nodes they do not contain: a way is cut at each
missing node (segments touching it are dropped, the rest of the way is kept) and the number
of missing references is logged.

Online
------
:func:`fetch_overpass` asks Nominatim for a place's boundary (or takes a polygon), downloads
the streets inside it from Overpass through OSMnx, caching every HTTP response, and converts
OSMnx's graph back into segments. OSMnx settings are changed only for the duration of the
call.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from etl._errors import ConfigError, InputError, NetworkError
from etl.engine.network import RawNetwork

if TYPE_CHECKING:
    import networkx as nx

logger = logging.getLogger(__name__)

#: Way tags kept in :attr:`RawNetwork.ways` (missing tags are None).
WAY_TAGS: tuple[str, ...] = (
    "highway",
    "name",
    "oneway",
    "junction",
    "access",
    "motor_vehicle",
    "motorcar",
    "vehicle",
    "foot",
    "service",
    "area",
    "maxspeed",
    "sidewalk",
)

#: ``highway`` values that are not streets; such ways are dropped by both readers.
EXCLUDED_HIGHWAYS: Final[frozenset[str]] = frozenset(
    {
        "abandoned", "bus_stop", "construction", "corridor", "demolished", "disused",
        "elevator", "emergency_bay", "escalator", "no", "planned", "platform", "proposed",
        "raceway", "razed", "rest_area", "services",
    }
)  # fmt: skip

#: File suffixes :func:`read_osm_file` reads, with the pyosmium format each one names.
SUPPORTED_SUFFIXES: Final[dict[str, str]] = {
    ".osm.pbf": "pbf",
    ".pbf": "pbf",
    ".osm": "osm",
    ".osm.bz2": "osm.bz2",
    ".osm.gz": "osm.gz",
}

#: Earth radius in metres used for segment lengths (the one OSMnx uses).
EARTH_RADIUS_M: Final[float] = 6_371_009.0

#: Overpass QL way filter equivalent to the street rule above (anchored regexes).
OVERPASS_FILTER: Final[str] = (
    '["highway"]["area"!~"^yes$"]["highway"!~"^(' + "|".join(sorted(EXCLUDED_HIGHWAYS)) + ')$"]'
)

# oneway values for which OSMnx reverses a way's node order when settings.all_oneway is set
_OSMNX_REVERSED: Final[frozenset[str]] = frozenset({"-1", "reverse", "T"})
# pyosmium fixed-point coordinates are degrees * 1e7; missing locations lie outside this range
_FIX: Final[float] = 1e7
_MAX_X: Final[int] = 1_800_000_000
_MAX_Y: Final[int] = 900_000_000


def is_street(tags: Any) -> bool:
    """Tell whether a way with these tags is a street (see the module docstring).

    Parameters
    ----------
    tags
        A mapping with a ``get`` method: a dict, pyosmium ``TagList`` or edge attributes.

    Returns
    -------
    bool
        True if the way has a ``highway`` tag outside :data:`EXCLUDED_HIGHWAYS` and is not
        tagged ``area=yes``.
    """
    highway = tags.get("highway")
    return highway is not None and highway not in EXCLUDED_HIGHWAYS and tags.get("area") != "yes"


def great_circle_m(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    """Return haversine distances in metres between WGS84 points, element-wise.

    Parameters
    ----------
    lon1, lat1, lon2, lat2
        Coordinates in degrees.

    Returns
    -------
    np.ndarray
        float64 distances on a sphere of radius :data:`EARTH_RADIUS_M`.
    """
    y1, y2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dx = np.deg2rad(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin((y2 - y1) / 2) ** 2 + np.cos(y1) * np.cos(y2) * np.sin(dx / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def read_osm_file(path: str | Path) -> RawNetwork:
    """Read the street network of an OSM extract file.

    Parameters
    ----------
    path
        A ``.osm.pbf``, ``.osm``, ``.osm.bz2`` or ``.osm.gz`` file (see
        :data:`SUPPORTED_SUFFIXES`).

    Returns
    -------
    RawNetwork
        Ways sorted by OSM id, their segments in digitised order, nodes sorted by OSM id.

    Raises
    ------
    InputError
        If the file is missing, has an unsupported suffix, or is truncated or not OSM data.
    NetworkError
        If the file holds no streets.

    Notes
    -----
    One pass over the file; pyosmium caches node locations in C++ and hands Python only the
    ``highway`` ways. The log says how many node references point at missing nodes.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "file not found"
        msg = f"{path}: {what}; check the network `osm` path in the region config"
        raise InputError(msg)
    fmt = _file_format(path)
    if path.stat().st_size == 0:
        msg = f"{path}: the file is empty; re-download or re-export it"
        raise InputError(msg)

    scan = _scan_ways(path, fmt)
    osmids, n_other = scan.osmids, scan.n_other
    if not osmids:
        msg = (
            f"{path}: no streets (ways tagged highway=*) in this file"
            f" ({n_other:,} highway ways, all excluded as not streets);"
            " check that the extract covers the region and was not filtered to other features"
        )
        raise NetworkError(msg)

    refs_a = np.asarray(scan.refs, dtype=np.int64)
    x = np.asarray(scan.xs, dtype=np.int64)
    y = np.asarray(scan.ys, dtype=np.int64)
    missing = (np.abs(x) > _MAX_X) | (np.abs(y) > _MAX_Y)
    lon = np.where(missing, np.nan, x / _FIX)
    lat = np.where(missing, np.nan, y / _FIX)
    way_of_ref = np.repeat(np.arange(len(osmids), dtype=np.int64), scan.sizes)
    n_missing = int(missing.sum())
    logger.info(
        "read_osm_file read %s street ways (%s other highway ways excluded) with %s node refs,"
        " %s of them to nodes missing from %s (ways are cut there)",
        f"{len(osmids):,}",
        f"{n_other:,}",
        f"{len(refs_a):,}",
        f"{n_missing:,}",
        path.name,
    )
    net = _assemble(
        osmids,
        scan.tags,
        refs_a,
        lon,
        lat,
        way_of_ref,
        source=str(path),
        signal_ids=np.asarray(scan.signals, dtype=np.int64),
    )
    if len(net.u) == 0:
        msg = (
            f"{path}: no streets (ways tagged highway=*) with two nodes present in this file"
            f" ({n_missing:,} node refs point at missing nodes); re-export the extract with"
            " complete ways (osmium extract --strategy complete_ways)"
        )
        raise NetworkError(msg)
    _log_result("read_osm_file", net)
    return net


def fetch_overpass(
    *,
    place: str | None = None,
    polygon: Sequence[tuple[float, float]] | None = None,
    overpass_url: str | None = None,
    nominatim_url: str | None = None,
    cache_dir: Path | None = None,
) -> RawNetwork:
    """Download the streets of a place or polygon from Overpass through OSMnx.

    Every HTTP response is cached in ``cache_dir`` (OSMnx's cache), so a rebuild asks the
    servers nothing. Ways are cut where OSMnx truncates the graph at the boundary (nodes
    outside it are kept when a neighbour lies inside).

    Parameters
    ----------
    place
        A place name Nominatim resolves to a (multi)polygon, e.g. "Columbus, Ohio, USA".
    polygon
        The boundary as (lon, lat) pairs. If ``place`` is given too, the polygon is the area
        and the place only names the source.
    overpass_url
        Base URL of the Overpass API (without ``/interpreter``); None keeps OSMnx's setting.
    nominatim_url
        Base URL of Nominatim; None keeps OSMnx's setting.
    cache_dir
        Folder for cached responses; None keeps OSMnx's ``cache_folder`` setting.

    Returns
    -------
    RawNetwork
        As :func:`read_osm_file` returns; segments of a closed way start at its lowest node
        id (the way's first node is not known from OSMnx's graph).

    Raises
    ------
    ConfigError
        If neither ``place`` nor ``polygon`` is given, or the polygon is invalid.
    NetworkError
        If a server cannot be reached, the place is not found or has no boundary, or the
        area holds no streets.
    """
    import osmnx as ox
    import requests
    from osmnx._errors import InsufficientResponseError, ResponseStatusCodeError

    if place is None and polygon is None:
        msg = "fetch_overpass: give a `place` name or a `polygon` of (lon, lat) pairs"
        raise ConfigError(msg)
    source = f"overpass:{place}" if place is not None else "overpass:polygon"
    shape = _polygon(polygon) if polygon is not None else None

    overrides: dict[str, Any] = {
        "use_cache": True,
        "all_oneway": True,  # keeps digitised node order and the raw oneway tag
        "useful_tags_way": list(WAY_TAGS),
    }
    if overpass_url is not None:
        overrides["overpass_url"] = overpass_url
    if nominatim_url is not None:
        overrides["nominatim_url"] = nominatim_url
    if cache_dir is not None:
        overrides["cache_folder"] = Path(cache_dir)
    saved = {key: getattr(ox.settings, key) for key in overrides}
    options: dict[str, Any] = {
        "network_type": "all",
        "simplify": False,
        "retain_all": True,
        "truncate_by_edge": True,
        "custom_filter": OVERPASS_FILTER,
    }
    try:
        for key, value in overrides.items():
            setattr(ox.settings, key, value)
        if shape is not None:
            graph = ox.graph_from_polygon(shape, **options)
        else:
            graph = ox.graph_from_place(place, **options)
    except requests.RequestException as e:
        msg = (
            f"{source}: cannot reach {ox.settings.nominatim_url} or {ox.settings.overpass_url}"
            f" ({type(e).__name__}); check the connection or use a local .osm.pbf extract"
        )
        raise NetworkError(msg) from e
    except (InsufficientResponseError, ResponseStatusCodeError, TypeError, ValueError) as e:
        msg = (
            f"{source}: no street network returned ({e}); check the place name, give a"
            " `polygon` instead, or use a local .osm.pbf extract"
        )
        raise NetworkError(msg) from e
    finally:
        for key, value in saved.items():
            setattr(ox.settings, key, value)

    net = _network_from_graph(graph, source=source)
    _log_result("fetch_overpass", net)
    return net


def _file_format(path: Path) -> str:
    """Return the pyosmium format string for a file's suffix, or raise InputError."""
    name = path.name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUPPORTED_SUFFIXES[suffix]
    msg = (
        f"{path}: unsupported OSM file type; use one of "
        + ", ".join(SUPPORTED_SUFFIXES)
        + " (convert other formats with `osmium cat`)"
    )
    raise InputError(msg)


@dataclass
class _WayScan:
    """Street ways of a file: ids, tags, node refs with fixed-point x/y, refs per way."""

    osmids: list[int] = field(default_factory=list)
    tags: list[tuple[str | None, ...]] = field(default_factory=list)
    refs: list[int] = field(default_factory=list)
    xs: list[int] = field(default_factory=list)
    ys: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    n_other: int = 0
    signals: list[int] = field(default_factory=list)


def _scan_ways(path: Path, fmt: str) -> _WayScan:
    """Read the street ways of a file with node locations (a missing node's x/y is huge)."""
    import osmium
    from osmium.filter import EntityFilter, KeyFilter

    scan = _WayScan()
    osmids, tags, refs, xs, ys, sizes = (
        scan.osmids,
        scan.tags,
        scan.refs,
        scan.xs,
        scan.ys,
        scan.sizes,
    )
    n_other = 0
    processor = (
        osmium.FileProcessor(osmium.io.File(str(path), fmt))
        .with_locations()
        .with_filter(EntityFilter(osmium.osm.NODE | osmium.osm.WAY))
        .with_filter(KeyFilter("highway"))
    )
    add_ref, add_x, add_y = refs.append, xs.append, ys.append
    add_signal = scan.signals.append
    try:
        for way in processor:
            way_tags = way.tags
            if way.is_node():  # highway=* nodes: keep traffic signals for their delay
                if way_tags.get("highway") == "traffic_signals":
                    add_signal(way.id)
                continue
            if not is_street(way_tags):
                n_other += 1
                continue
            osmids.append(way.id)
            tags.append(tuple(way_tags.get(key) for key in WAY_TAGS))
            nodes = way.nodes
            for node in nodes:
                add_ref(node.ref)
                loc = node.location
                add_x(loc.x)
                add_y(loc.y)
            sizes.append(len(nodes))
    except (RuntimeError, ValueError, OSError) as e:
        msg = (
            f"{path}: cannot read OSM data ({str(e).strip()}); the file is truncated or not"
            " OSM data; re-download or re-export it"
        )
        raise InputError(msg) from e
    scan.n_other = n_other
    return scan


def _assemble(
    osmids: Sequence[int],
    tags: Sequence[tuple[str | None, ...]],
    refs: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    way_of_ref: np.ndarray,
    *,
    source: str,
    signal_ids: np.ndarray | None = None,
) -> RawNetwork:
    """Build a RawNetwork from ways' node sequences laid end to end.

    ``refs``, ``lon``, ``lat`` and ``way_of_ref`` hold one entry per node reference, ways in
    the order of ``osmids``; a NaN coordinate marks a node missing from the extract (the way
    is cut there). Segments join consecutive refs of the same way, both present and distinct.
    ``signal_ids`` are OSM ids of ``highway=traffic_signals`` nodes (those on no kept segment
    are ignored).
    """
    present = ~np.isnan(lon)
    seg = (way_of_ref[:-1] == way_of_ref[1:]) & present[:-1] & present[1:] & (refs[:-1] != refs[1:])
    first = np.flatnonzero(seg)
    k = len(first)
    ends = np.concatenate([first, first + 1])
    node_id, where, inverse = np.unique(refs[ends], return_index=True, return_inverse=True)
    node_lon = lon[ends][where]
    node_lat = lat[ends][where]
    u, v = inverse[:k].astype(np.int64), inverse[k:].astype(np.int64)

    # keep ways with at least one segment, ordered by OSM id; segments stay in way order
    kept, seg_way = np.unique(way_of_ref[first], return_inverse=True)
    kept_osmid = np.asarray(osmids, dtype=np.int64)[kept]
    order = np.argsort(kept_osmid, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    seg_way = rank[seg_way].astype(np.int64)
    perm = np.argsort(seg_way, kind="stable")
    u, v, seg_way = u[perm], v[perm], seg_way[perm]
    if len(kept) < len(osmids):
        logger.info(
            "%s: dropped %s ways with no segment left (every node missing or a single node)",
            source,
            f"{len(osmids) - len(kept):,}",
        )

    way_rows = [tags[i] for i in kept[order]]
    columns: dict[str, Any] = {"osmid": kept_osmid[order]}
    for j, key in enumerate(WAY_TAGS):
        columns[key] = pd.Series([row[j] for row in way_rows], dtype=object)
    ways = pd.DataFrame(columns)
    length = great_circle_m(node_lon[u], node_lat[u], node_lon[v], node_lat[v])
    signals = np.array([], dtype=np.int64)
    if signal_ids is not None and len(signal_ids) and len(node_id):
        at = np.minimum(np.searchsorted(node_id, signal_ids), len(node_id) - 1)
        signals = np.unique(at[node_id[at] == signal_ids]).astype(np.int64)
    return RawNetwork(
        node_id=node_id.astype(np.int64),
        lon=node_lon.astype(np.float64),
        lat=node_lat.astype(np.float64),
        u=u,
        v=v,
        way=seg_way,
        length_m=length,
        ways=ways,
        source=source,
        signals=signals,
    )


def _polygon(coords: Sequence[tuple[float, float]]) -> Any:
    """Return a valid shapely Polygon from (lon, lat) pairs, or raise ConfigError."""
    from shapely.geometry import Polygon

    pairs = [tuple(map(float, p)) for p in coords]
    bad = [p for p in pairs if len(p) != 2 or not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90)]
    if bad or len(set(pairs)) < 3:
        msg = "polygon: give at least 3 distinct (lon, lat) pairs in degrees" + (
            f"; {bad[0]} is not a WGS84 (lon, lat) pair" if bad else ""
        )
        raise ConfigError(msg)
    shape = Polygon(pairs)
    if not shape.is_valid:
        msg = "polygon: the (lon, lat) pairs do not form a valid polygon (edges cross)"
        raise ConfigError(msg)
    return shape


def _tag(value: Any) -> str | None:
    """Return an edge attribute as a tag string (None if absent)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def _network_from_graph(graph: nx.MultiDiGraph, *, source: str) -> RawNetwork:
    """Convert an OSMnx graph built with ``all_oneway=True`` into a RawNetwork.

    With ``all_oneway`` OSMnx adds each way once, in node order, except ways tagged
    ``oneway`` -1/reverse/T, which it reverses: those edges are flipped back here. Edges are
    grouped by way id and chained back into node sequences.
    """
    edges: dict[int, list[tuple[int, int]]] = defaultdict(list)
    way_tags: dict[int, tuple[str | None, ...]] = {}
    n_other = 0
    for a, b, data in graph.edges(data=True):
        if not is_street(data):
            n_other += 1
            continue
        osmid = int(data["osmid"])
        u, v = (b, a) if data.get("oneway") in _OSMNX_REVERSED else (a, b)
        edges[osmid].append((u, v))
        if osmid not in way_tags:
            way_tags[osmid] = tuple(_tag(data.get(key)) for key in WAY_TAGS)
    if not edges:
        msg = (
            f"{source}: no streets (ways tagged highway=*) in this area"
            f" ({n_other:,} non-street edges); check the place or polygon"
        )
        raise NetworkError(msg)
    logger.info(
        "fetch_overpass received %s ways (%s edges) in a graph of %s nodes",
        f"{len(edges):,}",
        f"{graph.number_of_edges():,}",
        f"{graph.number_of_nodes():,}",
    )

    osmids = sorted(edges)
    refs: list[int] = []
    way_of_ref: list[int] = []
    for i, osmid in enumerate(osmids):
        for trail in _trails(edges[osmid]):
            # a -1 ref with NaN coordinates separates the pieces of a cut way
            refs += [*trail, -1]
            way_of_ref += [i] * (len(trail) + 1)
    refs_a = np.asarray(refs, dtype=np.int64)
    nodes = graph.nodes
    lon = np.array([nodes[r]["x"] if r != -1 else np.nan for r in refs], dtype=np.float64)
    lat = np.array([nodes[r]["y"] if r != -1 else np.nan for r in refs], dtype=np.float64)
    signal_ids = [n for n, d in graph.nodes(data=True) if d.get("highway") == "traffic_signals"]
    return _assemble(
        osmids,
        [way_tags[o] for o in osmids],
        refs_a,
        lon,
        lat,
        np.asarray(way_of_ref, dtype=np.int64),
        source=source,
        signal_ids=np.asarray(sorted(signal_ids), dtype=np.int64),
    )


def _trails(pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Chain one way's directed segments back into node sequences (Hierholzer).

    Trails start where a node has more outgoing than incoming segments, in the order those
    nodes first appear; what is left is closed loops, started at their lowest node id.
    """
    out: dict[int, list[int]] = defaultdict(list)
    balance: dict[int, int] = defaultdict(int)
    for u, v in pairs:
        out[u].append(v)
        balance[u] += 1
        balance[v] -= 1
    for targets in out.values():
        targets.reverse()  # pop() then follows the segments in the order they were added
    starts = [n for n, b in balance.items() for _ in range(max(b, 0))]
    starts += sorted(out)
    trails: list[list[int]] = []
    for start in starts:
        if not out[start]:
            continue
        stack, trail = [start], []
        while stack:
            node = stack[-1]
            if out[node]:
                stack.append(out[node].pop())
            else:
                trail.append(stack.pop())
        trails.append(trail[::-1])
    return trails


def _log_result(func: str, net: RawNetwork) -> None:
    logger.info(
        "%s returned %s ways, %s segments and %s nodes (%.1f km of street) from %s",
        func,
        f"{len(net.ways):,}",
        f"{len(net.u):,}",
        f"{len(net.node_id):,}",
        float(net.length_m.sum()) / 1000,
        net.source,
    )
