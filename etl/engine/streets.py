"""Sample points along the streets of a network, each tagged with its fine H3 cell.

Isochrones, deserts and the H3 grid are all built from these samples: a sample's travel
time is interpolated along its street from the times of the street's two end nodes, in the
directions the street may be travelled. Polygons are then unions of the fine H3 cells that
hold reached samples, so they follow the streets and never claim land no street reaches
(no convex hulls).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import repeat

import h3.api.numpy_int as h3int
import numpy as np

from etl.engine.network import ModeNetwork

logger = logging.getLogger(__name__)

#: Fine H3 resolution per mode for polygons (res 9 ≈ 174 m edge, res 10 ≈ 66 m edge).
DEFAULT_FINE_RES: dict[str, int] = {"drive": 9, "walk": 10}

#: Points per batch handed to h3 in :func:`cells_of` (bounds the Python floats held at once).
CELLS_BATCH: int = 1 << 20


@dataclass(frozen=True)
class StreetSamples:
    """Points every ``spacing_m`` metres along each street (both end nodes included).

    Attributes
    ----------
    a, b
        End nodes of the street each sample lies on.
    frac
        Position from ``a`` (0) to ``b`` (1).
    time_ab, time_ba
        Travel time along the whole street from a to b and from b to a (``inf`` where that
        direction is not allowed, e.g. one-way streets).
    lon, lat
        WGS84 coordinates.
    cell
        Fine H3 cell of each sample (uint64).
    res
        The fine H3 resolution.
    """

    a: np.ndarray
    b: np.ndarray
    frac: np.ndarray
    time_ab: np.ndarray
    time_ba: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    cell: np.ndarray
    res: int

    def __len__(self) -> int:
        return len(self.a)


def sample_streets(
    net: ModeNetwork, *, spacing_m: float = 40.0, res: int | None = None
) -> StreetSamples:
    """Sample every street of ``net`` at most ``spacing_m`` apart.

    Parameters
    ----------
    net
        The network.
    spacing_m
        Largest gap between two samples on a street, metres.
    res
        Fine H3 resolution; :data:`DEFAULT_FINE_RES` of the mode if None.

    Returns
    -------
    StreetSamples
    """
    res = DEFAULT_FINE_RES.get(net.mode, 10) if res is None else res
    # One record per undirected street with the time in each direction.
    lo = np.minimum(net.tail, net.head).astype(np.int64)
    hi = np.maximum(net.tail, net.head).astype(np.int64)
    key = lo * net.n_nodes + hi
    uniq, inv = np.unique(key, return_inverse=True)
    a, b = uniq // net.n_nodes, uniq % net.n_nodes
    t_ab = np.full(len(uniq), np.inf)
    t_ba = np.full(len(uniq), np.inf)
    is_ab = net.tail == lo
    np.minimum.at(t_ab, inv[is_ab], net.time_s[is_ab])
    np.minimum.at(t_ba, inv[~is_ab], net.time_s[~is_ab])
    length = np.zeros(len(uniq))
    np.maximum.at(length, inv, net.length_m)

    pieces = np.maximum(1, np.ceil(length / spacing_m).astype(np.int64))
    counts = pieces + 1
    street = np.repeat(np.arange(len(uniq)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    step = np.arange(len(street)) - np.repeat(starts, counts)
    frac = step / np.repeat(pieces, counts)
    sa, sb = a[street], b[street]
    lon = net.lon[sa] + frac * (net.lon[sb] - net.lon[sa])
    lat = net.lat[sa] + frac * (net.lat[sb] - net.lat[sa])
    cell = _sample_cells(net, sa, sb, frac, lat, lon, res)
    samples = StreetSamples(
        a=sa,
        b=sb,
        frac=frac,
        time_ab=t_ab[street],
        time_ba=t_ba[street],
        lon=lon,
        lat=lat,
        cell=cell,
        res=res,
    )
    logger.info(
        "sample_streets(%s): %s samples on %s streets, %s H3 res-%d cells",
        net.mode,
        f"{len(samples):,}",
        f"{len(uniq):,}",
        f"{len(np.unique(cell)):,}",
        res,
    )
    return samples


def cells_of(lat: np.ndarray, lon: np.ndarray, res: int) -> np.ndarray:
    """Return the H3 cells of WGS84 points.

    Parameters
    ----------
    lat, lon
        WGS84 coordinates, degrees (same length).
    res
        H3 resolution.

    Returns
    -------
    numpy.ndarray
        One cell (uint64) per point, in the order given.

    Notes
    -----
    h3-py 4 has no array form of ``latlng_to_cell`` (uber/h3-py#341), so this is one call per
    point, but of the integer API (:mod:`h3.api.numpy_int`), mapped over the coordinates in
    batches of :data:`CELLS_BATCH`: no hexadecimal string is made and parsed back per point
    (about twice as fast as ``str_to_int(latlng_to_cell(...))``), same cells.
    """
    lat = np.asarray(lat)
    lon = np.asarray(lon)
    if len(lat) != len(lon):
        msg = f"cells_of: {len(lat)} latitudes but {len(lon)} longitudes"
        raise ValueError(msg)
    out = np.empty(len(lat), dtype=np.uint64)
    to_cell = h3int.latlng_to_cell
    for start in range(0, len(lat), CELLS_BATCH):
        ys = lat[start : start + CELLS_BATCH].tolist()
        xs = lon[start : start + CELLS_BATCH].tolist()
        out[start : start + len(ys)] = np.fromiter(
            map(to_cell, ys, xs, repeat(res, len(ys))), dtype=np.uint64, count=len(ys)
        )
    return out


def _sample_cells(
    net: ModeNetwork,
    a: np.ndarray,
    b: np.ndarray,
    frac: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    res: int,
) -> np.ndarray:
    """Fine H3 cell of each street sample, each street end node's cell computed once.

    Most samples are street ends (about 70 % on Franklin County's networks at 40 m), and a
    node is the end of every street that meets it, so its cell is computed once and shared.
    A sample takes its node's cell only where its coordinates are bit-for-bit the node's, so
    every cell is the one :func:`cells_of` gives for the sample's own coordinates.

    Parameters
    ----------
    net
        The network the samples lie on.
    a, b, frac
        Each sample's street end nodes and its position from ``a`` (0) to ``b`` (1).
    lat, lon
        Each sample's WGS84 coordinates (float64).
    res
        H3 resolution.

    Returns
    -------
    numpy.ndarray
        One cell (uint64) per sample.
    """
    node_lat = np.asarray(net.lat, dtype=np.float64)
    node_lon = np.asarray(net.lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    node = np.where(frac == 0.0, a, b)
    at_node = (
        ((frac == 0.0) | (frac == 1.0))
        & (lat.view(np.int64) == node_lat[node].view(np.int64))
        & (lon.view(np.int64) == node_lon[node].view(np.int64))
    )
    used = np.zeros(net.n_nodes, dtype=bool)
    used[node[at_node]] = True
    ids = np.flatnonzero(used)
    node_cell = np.zeros(net.n_nodes, dtype=np.uint64)
    node_cell[ids] = cells_of(node_lat[ids], node_lon[ids], res)
    cell = node_cell[node]
    off = np.flatnonzero(~at_node)
    cell[off] = cells_of(lat[off], lon[off], res)
    return cell


def sample_times(samples: StreetSamples, node_time_s: np.ndarray) -> np.ndarray:
    """Travel time from each sample to the nearest site, given the node times.

    A person at a sample travels along its street to either end (where the street allows
    that direction) and on from there.
    """
    ta = node_time_s[samples.a]
    tb = node_time_s[samples.b]
    with np.errstate(invalid="ignore"):  # 0 × inf at the end nodes of one-way streets
        via_b = (1.0 - samples.frac) * samples.time_ab + tb
        via_a = samples.frac * samples.time_ba + ta
    # At the end nodes themselves the node time is exact.
    via_a = np.where(samples.frac == 0.0, ta, via_a)
    via_b = np.where(samples.frac == 1.0, tb, via_b)
    return np.minimum(via_a, via_b)


def min_by_cell(cells: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the unique cells and the minimum value in each."""
    order = np.argsort(cells, kind="stable")
    c, v = cells[order], values[order]
    starts = np.flatnonzero(np.concatenate([[True], c[1:] != c[:-1]]))
    return c[starts], np.minimum.reduceat(v, starts)
