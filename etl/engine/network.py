"""Turn a raw OSM street network into per-mode routable networks (CSR arrays).

A :class:`ModeNetwork` is what the engine, the bundle and the app share: node coordinates
(WGS84 and the region's projected CRS), one directed edge per (tail, head) pair holding the
minimum travel time over parallel ways, and the CSR matrix built from those edges. Only the
largest strongly connected component is kept, so every node can reach every other.

Mode rules
----------
drive
    Ways a car may use (see :data:`DRIVE_EXCLUDED_HIGHWAYS`, ``access``/``motor_vehicle``
    restrictions and private ``service`` roads); ``oneway`` honoured (``yes``/``true``/``1``,
    ``-1``/``reverse``, roundabouts, and motorways unless tagged ``oneway=no``). Speed from
    the explicit table in :mod:`etl.engine.speeds` (or the way's ``maxspeed`` tag where allowed),
    multiplied by the congestion factor.
walk
    Ways a person may walk on (no motorways, no ``foot=no``), in both directions, at the
    walking speed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy import sparse
from scipy.sparse import csgraph

from etl._errors import BundleError, NetworkError
from etl.engine.speeds import DRIVE_SPEEDS_KPH, WALK_SPEED_KPH, parse_maxspeed

logger = logging.getLogger(__name__)

DRIVE_EXCLUDED_HIGHWAYS: Final[frozenset[str]] = frozenset(
    {
        "abandoned",
        "bridleway",
        "bus_guideway",
        "busway",
        "construction",
        "corridor",
        "cycleway",
        "elevator",
        "escalator",
        "footway",
        "no",
        "path",
        "pedestrian",
        "planned",
        "platform",
        "proposed",
        "raceway",
        "razed",
        "steps",
        "track",
        "bus_stop",
        "via_ferrata",
    }
)
WALK_EXCLUDED_HIGHWAYS: Final[frozenset[str]] = frozenset(
    {
        "abandoned",
        "bus_guideway",
        "busway",
        "construction",
        "motorway",
        "motorway_link",
        "no",
        "planned",
        "platform",
        "proposed",
        "raceway",
        "razed",
        "bus_stop",
    }
)
_PRIVATE_SERVICE: Final[frozenset[str]] = frozenset(
    {"driveway", "emergency_access", "parking", "parking_aisle", "private"}
)
_NO: Final[frozenset[str]] = frozenset({"no", "private"})
_YES: Final[frozenset[str]] = frozenset({"yes", "true", "1"})
_REVERSE: Final[frozenset[str]] = frozenset({"-1", "reverse"})
_IMPLIED_ONEWAY: Final[frozenset[str]] = frozenset({"motorway"})

NETWORK_FORMAT_VERSION: Final[int] = 1


@dataclass(frozen=True)
class ModeNetwork:
    """A routable network for one travel mode.

    Attributes
    ----------
    mode
        ``"drive"`` or ``"walk"``.
    crs
        The projected CRS of :attr:`x` and :attr:`y` (metres).
    osmid, lon, lat, x, y
        Per node: OSM id, WGS84 and projected coordinates.
    tail, head, time_s, length_m, highway
        Per directed edge (unique tail-head pairs, minimum time over parallel ways):
        node indices, travel time in seconds, length in metres and the index of its
        highway class in :attr:`highway_classes`.
    highway_classes
        Names of the highway classes.
    walk_speed_mps
        Walking speed used for snap distances, metres per second.
    """

    mode: str
    crs: str
    osmid: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    tail: np.ndarray
    head: np.ndarray
    time_s: np.ndarray
    length_m: np.ndarray
    highway: np.ndarray
    highway_classes: tuple[str, ...]
    walk_speed_mps: float
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.osmid)

    @property
    def n_edges(self) -> int:
        """Number of directed edges."""
        return len(self.tail)

    def junction_count(self) -> int:
        """Nodes that are not mid-street (undirected degree other than 2).

        These are the nodes a topologically simplified graph (OSMnx ``simplify=True``) keeps,
        so this is comparable with the node counts OSMnx reports.
        """
        lo = np.minimum(self.tail, self.head).astype(np.int64)
        hi = np.maximum(self.tail, self.head).astype(np.int64)
        pairs = np.unique(lo * self.n_nodes + hi)
        degree = np.bincount(
            np.concatenate([pairs // self.n_nodes, pairs % self.n_nodes]), minlength=self.n_nodes
        )
        return int((degree != 2).sum())

    def csr(self) -> sparse.csr_matrix:
        """Return the forward CSR matrix (row = tail, column = head, value = seconds)."""
        if "csr" not in self._cache:
            self._cache["csr"] = _csr(self.tail, self.head, self.time_s, self.n_nodes)
        return self._cache["csr"]

    def csr_reverse(self) -> sparse.csr_matrix:
        """Return the reversed CSR matrix, for distances *to* a set of targets."""
        if "csr_reverse" not in self._cache:
            self._cache["csr_reverse"] = _csr(self.head, self.tail, self.time_s, self.n_nodes)
        return self._cache["csr_reverse"]

    def save(self, path: str | Path) -> Path:
        """Write the network to an ``.npz`` file (uncompressed: it loads in milliseconds)."""
        path = Path(path)
        np.savez(
            path,
            format_version=np.array(NETWORK_FORMAT_VERSION),
            mode=np.array(self.mode),
            crs=np.array(self.crs),
            osmid=self.osmid,
            lon=self.lon,
            lat=self.lat,
            x=self.x,
            y=self.y,
            tail=self.tail,
            head=self.head,
            time_s=self.time_s,
            length_m=self.length_m,
            highway=self.highway,
            highway_classes=np.array(self.highway_classes, dtype=str),
            walk_speed_mps=np.array(self.walk_speed_mps),
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> ModeNetwork:
        """Read a network written by :meth:`save`.

        Raises
        ------
        BundleError
            If the file is missing, not a network file or of another format version.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                version = int(z["format_version"])
                if version != NETWORK_FORMAT_VERSION:
                    expected = NETWORK_FORMAT_VERSION
                    msg = f"{path}: network format {version}, expected {expected}; rebuild"
                    raise BundleError(msg)
                return cls(
                    mode=str(z["mode"]),
                    crs=str(z["crs"]),
                    osmid=z["osmid"],
                    lon=z["lon"],
                    lat=z["lat"],
                    x=z["x"],
                    y=z["y"],
                    tail=z["tail"],
                    head=z["head"],
                    time_s=z["time_s"],
                    length_m=z["length_m"],
                    highway=z["highway"],
                    highway_classes=tuple(str(c) for c in z["highway_classes"]),
                    walk_speed_mps=float(z["walk_speed_mps"]),
                )
        except (OSError, KeyError, ValueError) as exc:
            msg = f"{path}: not a readable network file ({exc}); rebuild the bundle"
            raise BundleError(msg) from exc



@dataclass(frozen=True)
class RawNetwork:
    """Every highway way of an extract, as unsimplified node-to-node segments.

    Attributes
    ----------
    node_id
        int64 OSM ids of the nodes used by at least one kept segment.
    lon, lat
        float64 WGS84 coordinates of those nodes.
    u, v
        int64 indices into the node arrays: one segment per consecutive node pair of a way,
        in the way's digitised direction. Pairs with a node missing from the extract are cut.
    way
        int64 index into :attr:`ways` for each segment.
    length_m
        float64 great-circle length of each segment in metres.
    ways
        One row per way: ``osmid`` and the tags in :data:`etl.inputs.osm.WAY_TAGS` (str or None).
    source
        Where the network came from (a path or "overpass:<place>").
    signals
        Sorted int64 indices into the node arrays of nodes tagged
        ``highway=traffic_signals`` (empty where the source gave none).
    """

    node_id: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    u: np.ndarray
    v: np.ndarray
    way: np.ndarray
    length_m: np.ndarray
    ways: pd.DataFrame
    source: str
    signals: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))


def _csr(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int) -> sparse.csr_matrix:
    # Edges are unique (tail, head) pairs, so no duplicates are summed; explicit zeros
    # (zero-length segments) are kept as zero-weight edges by scipy.sparse.csgraph.
    order = np.lexsort((cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return sparse.csr_matrix((data.astype(np.float64), cols.astype(np.int32), indptr), shape=(n, n))


def _col(ways: pd.DataFrame, name: str) -> np.ndarray:
    if name not in ways:
        return np.full(len(ways), "", dtype=object)
    return ways[name].fillna("").astype(str).str.strip().str.lower().to_numpy(dtype=object)


def _way_rules(ways: pd.DataFrame, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per way: allowed (bool), forward (bool), backward (bool)."""
    highway = _col(ways, "highway")
    access = _col(ways, "access")
    if mode == "drive":
        motor = _col(ways, "motor_vehicle")
        motorcar = _col(ways, "motorcar")
        service = _col(ways, "service")
        allowed = ~np.isin(highway, list(DRIVE_EXCLUDED_HIGHWAYS)) & (highway != "")
        allowed &= ~np.isin(access, list(_NO)) | np.isin(motor, ["yes", "designated"])
        allowed &= ~np.isin(motor, list(_NO)) & ~np.isin(motorcar, list(_NO))
        allowed &= ~np.isin(service, list(_PRIVATE_SERVICE))
        oneway = _col(ways, "oneway")
        junction = _col(ways, "junction")
        reverse = np.isin(oneway, list(_REVERSE))
        forward_only = np.isin(oneway, list(_YES)) | np.isin(junction, ["roundabout", "circular"])
        forward_only |= np.isin(highway, list(_IMPLIED_ONEWAY)) & (oneway != "no")
        forward_only &= ~reverse
        forward = ~reverse
        backward = ~forward_only
        return allowed, forward, backward
    if mode == "walk":
        foot = _col(ways, "foot")
        allowed = ~np.isin(highway, list(WALK_EXCLUDED_HIGHWAYS)) & (highway != "")
        allowed &= ~np.isin(foot, list(_NO))
        allowed &= ~np.isin(access, list(_NO)) | np.isin(foot, ["yes", "designated", "permissive"])
        both = np.ones(len(ways), dtype=bool)
        return allowed, both, both
    msg = f"unknown travel mode {mode!r}; use 'drive' or 'walk'"
    raise ValueError(msg)


def _way_speeds_kph(
    ways: pd.DataFrame,
    speeds_kph: dict[str, float],
    *,
    use_maxspeed: bool,
    maxspeed_factor: float = 1.0,
) -> np.ndarray:
    highway = _col(ways, "highway")
    default = speeds_kph.get("road", DRIVE_SPEEDS_KPH["road"])
    speed = np.array([speeds_kph.get(h, default) for h in highway], dtype=np.float64)
    if use_maxspeed and "maxspeed" in ways:
        tagged = np.array([parse_maxspeed(v) for v in ways["maxspeed"].to_numpy()], dtype=float)
        ok = np.isfinite(tagged) & (tagged >= 5)
        speed[ok] = tagged[ok] * maxspeed_factor
    return speed


def build_mode_network(
    raw: RawNetwork,
    mode: str,
    *,
    crs: str,
    drive_speeds_kph: dict[str, float] | None = None,
    walk_speed_kph: float = WALK_SPEED_KPH,
    use_maxspeed: bool = True,
    congestion_factor: float = 1.0,
    maxspeed_factor: float = 1.0,
    signal_delay_s: float = 0.0,
) -> ModeNetwork:
    """Build the routable network of one mode, keeping the largest strongly connected component.

    Parameters
    ----------
    raw
        Segments and way tags from :func:`etl.inputs.osm.read_osm_file` or
        :func:`etl.inputs.osm.fetch_overpass`.
    mode
        ``"drive"`` or ``"walk"``.
    crs
        Projected CRS (metres) for the node coordinates.
    drive_speeds_kph
        Speed per highway class; defaults to :data:`etl.engine.speeds.DRIVE_SPEEDS_KPH`.
    walk_speed_kph
        Walking speed, used for ``walk`` edges and for snap distances in every mode.
    use_maxspeed
        Use a way's parseable ``maxspeed`` tag instead of its class speed (drive only).
    congestion_factor
        Multiplier (>= 1) on drive times.
    maxspeed_factor
        Multiplier on a tagged ``maxspeed`` (drive only): the share of the posted limit
        driven on average (OSRM's car profile uses 0.8); 1.0 drives at the limit.
    signal_delay_s
        Seconds added to every drive edge that ends at a node tagged
        ``highway=traffic_signals`` (:attr:`RawNetwork.signals`), before the congestion
        factor; OSRM's car profile adds 2 s per signal passed. 0 adds nothing.

    Returns
    -------
    ModeNetwork

    Raises
    ------
    NetworkError
        If no street of this mode exists, or the largest component is trivially small.
    """
    speeds = drive_speeds_kph or DRIVE_SPEEDS_KPH
    allowed, forward, backward = _way_rules(raw.ways, mode)
    seg_ok = allowed[raw.way]
    if not seg_ok.any():
        msg = f"{raw.source}: no streets usable for {mode!r} in this network"
        raise NetworkError(msg)
    if mode == "drive":
        kph = _way_speeds_kph(
            raw.ways, speeds, use_maxspeed=use_maxspeed, maxspeed_factor=maxspeed_factor
        )[raw.way]
        factor = congestion_factor
    else:
        kph = np.full(len(raw.way), walk_speed_kph)
        factor = 1.0
    seg_time = raw.length_m / (kph / 3.6)
    signal = np.zeros(len(raw.node_id), dtype=bool)
    if mode == "drive" and signal_delay_s > 0 and len(raw.signals):
        signal[raw.signals] = True
    # A signal delays the edge entering its node, in either direction of travel.
    delay_fwd = np.where(signal[raw.v], signal_delay_s, 0.0)
    delay_bwd = np.where(signal[raw.u], signal_delay_s, 0.0)
    hw_names, hw_codes = np.unique(_col(raw.ways, "highway"), return_inverse=True)
    seg_hw = hw_codes[raw.way]

    fwd = seg_ok & forward[raw.way]
    bwd = seg_ok & backward[raw.way]
    tail = np.concatenate([raw.u[fwd], raw.v[bwd]])
    head = np.concatenate([raw.v[fwd], raw.u[bwd]])
    time_s = np.concatenate([seg_time[fwd] + delay_fwd[fwd], seg_time[bwd] + delay_bwd[bwd]])
    time_s = time_s * factor
    length = np.concatenate([raw.length_m[fwd], raw.length_m[bwd]])
    hw = np.concatenate([seg_hw[fwd], seg_hw[bwd]])
    loops = tail == head
    tail, head, time_s, length, hw = (a[~loops] for a in (tail, head, time_s, length, hw))

    # Minimum over parallel edges: sort by (tail, head, time) and keep the first of each pair.
    order = np.lexsort((time_s, head, tail))
    tail, head, time_s, length, hw = (a[order] for a in (tail, head, time_s, length, hw))
    first = np.ones(len(tail), dtype=bool)
    first[1:] = (tail[1:] != tail[:-1]) | (head[1:] != head[:-1])
    tail, head, time_s, length, hw = (a[first] for a in (tail, head, time_s, length, hw))

    # Largest strongly connected component.
    n_all = len(raw.node_id)
    graph = _csr(tail, head, time_s, n_all)
    _, labels = csgraph.connected_components(graph, directed=True, connection="strong")
    used = np.zeros(n_all, dtype=bool)
    used[tail] = True
    used[head] = True
    counts = np.bincount(labels[used], minlength=labels.max() + 1)
    biggest = int(np.argmax(counts))
    keep_node = labels == biggest
    n_keep = int(keep_node.sum())
    if n_keep < 2:
        msg = (
            f"{raw.source}: the {mode} network has no connected streets "
            f"(largest component: {n_keep} node)"
        )
        raise NetworkError(msg)
    new_index = np.full(n_all, -1, dtype=np.int64)
    new_index[keep_node] = np.arange(n_keep)
    keep_edge = keep_node[tail] & keep_node[head]
    tail, head = new_index[tail[keep_edge]], new_index[head[keep_edge]]
    time_s, length, hw = time_s[keep_edge], length[keep_edge], hw[keep_edge]

    lon, lat = raw.lon[keep_node], raw.lat[keep_node]
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    net = ModeNetwork(
        mode=mode,
        crs=crs,
        osmid=raw.node_id[keep_node].astype(np.int64),
        lon=lon.astype(np.float64),
        lat=lat.astype(np.float64),
        x=np.asarray(x, dtype=np.float64),
        y=np.asarray(y, dtype=np.float64),
        tail=tail.astype(np.int32),
        head=head.astype(np.int32),
        time_s=time_s.astype(np.float64),
        length_m=length.astype(np.float64),
        highway=hw.astype(np.int16),
        highway_classes=tuple(str(h) for h in hw_names),
        walk_speed_mps=walk_speed_kph / 3.6,
    )
    logger.info(
        "build_mode_network(%s): %s nodes, %s edges in the largest strongly connected component "
        "(%s of %s nodes with %s streets dropped as disconnected)",
        mode,
        f"{net.n_nodes:,}",
        f"{net.n_edges:,}",
        f"{int(used.sum()) - n_keep:,}",
        f"{int(used.sum()):,}",
        mode,
    )
    return net
