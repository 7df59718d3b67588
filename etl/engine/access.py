"""The access engine: travel time from every network node to the nearest site of a category.

One multi-source Dijkstra per (category, mode), run by :func:`scipy.sparse.csgraph.dijkstra`
on the *reversed* CSR matrix, so times run in the direction a person travels: from home to
care (on one-way streets that is not the same as care to home). Each site is snapped to its
nearest node; the snap distance is walked at walking speed and added, by starting the search
from a virtual super-source joined to every site's node with an edge of that walking time.
NetworkX is the reference in the tests, never the engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from etl.engine.network import ModeNetwork

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snap:
    """Points snapped to network nodes.

    Attributes
    ----------
    node
        int64 index of the nearest node of each point.
    distance_m
        Straight-line distance from each point to its node, metres.
    walk_s
        That distance walked at the network's walking speed, seconds.
    """

    node: np.ndarray
    distance_m: np.ndarray
    walk_s: np.ndarray


@dataclass(frozen=True)
class NearestResult:
    """Travel time from every node to its nearest site.

    Attributes
    ----------
    time_s
        float64 seconds per node, including the site's snap walk; ``inf`` where no site
        can be reached.
    nearest
        int64 index (into the sites passed in) of the nearest site per node; -1 where none.
    """

    time_s: np.ndarray
    nearest: np.ndarray


def snap_points(net: ModeNetwork, x: np.ndarray, y: np.ndarray) -> Snap:
    """Snap projected points to their nearest network node.

    Parameters
    ----------
    net
        The network.
    x, y
        Point coordinates in the network's projected CRS (metres).

    Returns
    -------
    Snap
    """
    tree = net._cache.get("kdtree")
    if tree is None:
        tree = net._cache["kdtree"] = cKDTree(np.column_stack([net.x, net.y]))
    pts = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    if len(pts) == 0:
        empty = np.array([], dtype=float)
        return Snap(node=np.array([], dtype=np.int64), distance_m=empty, walk_s=empty)
    dist, idx = tree.query(pts)
    return Snap(node=idx.astype(np.int64), distance_m=dist, walk_s=dist / net.walk_speed_mps)


def nearest_site_times(
    net: ModeNetwork,
    site_nodes: np.ndarray,
    *,
    site_offsets_s: np.ndarray | None = None,
    limit_s: float = np.inf,
    to_sites: bool = True,
) -> NearestResult:
    """Compute, for every node, the travel time to the nearest site and which site it is.

    Parameters
    ----------
    net
        The network of one mode.
    site_nodes
        Node index of each site (from :func:`snap_points`).
    site_offsets_s
        Seconds added at each site (its snap walk); zeros if None.
    limit_s
        Stop the search beyond this many seconds (nodes further away get ``inf``).
    to_sites
        True (the default) for person → care; False for care → person.

    Returns
    -------
    NearestResult
    """
    n = net.n_nodes
    site_nodes = np.asarray(site_nodes, dtype=np.int64)
    if len(site_nodes) == 0:
        return NearestResult(np.full(n, np.inf), np.full(n, -1, dtype=np.int64))
    offsets = (
        np.zeros(len(site_nodes)) if site_offsets_s is None else np.asarray(site_offsets_s, float)
    )
    # Per node, keep the site with the smallest offset (ties: the lowest index).
    order = np.lexsort((np.arange(len(site_nodes)), offsets, site_nodes))
    first = np.ones(len(order), dtype=bool)
    first[1:] = site_nodes[order][1:] != site_nodes[order][:-1]
    best = order[first]
    nodes, offs = site_nodes[best], offsets[best]

    base = net.csr_reverse() if to_sites else net.csr()
    if len(nodes) == 1 and limit_s - float(offs[0]) < 0:
        return NearestResult(np.full(n, np.inf), np.full(n, -1, dtype=np.int64))
    if len(nodes) == 1:
        # One site (a What-if add): search from its node, no super-source, so the network's
        # CSR is not copied for each call; the walk to the door is added after.
        dist = csgraph.dijkstra(base, directed=True, indices=int(nodes[0]),
                                limit=limit_s - float(offs[0]))  # fmt: skip
        time_s = dist + float(offs[0])
        nearest = np.where(np.isfinite(time_s), best[0], -1).astype(np.int64)
        return NearestResult(time_s=time_s, nearest=nearest)
    graph = _with_super_source(base, nodes, offs)
    dist, pred = csgraph.dijkstra(
        graph, directed=True, indices=n, return_predecessors=True, limit=limit_s
    )
    time_s = dist[:n]
    # Walk each node's predecessor chain back to the node hanging off the super-source
    # (pointer jumping: log2(depth) vectorised steps).
    parent = pred[:n].astype(np.int64)
    root_mask = (parent == n) | (parent < 0)
    parent[root_mask] = np.flatnonzero(root_mask)
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    site_at_node = np.full(n, -1, dtype=np.int64)
    site_at_node[nodes] = best
    nearest = np.where(np.isfinite(time_s), site_at_node[parent], -1)
    return NearestResult(time_s=time_s, nearest=nearest)


def _with_super_source(
    graph: sparse.csr_matrix, nodes: np.ndarray, offsets: np.ndarray
) -> sparse.csr_matrix:
    """Append one node (index n) with an edge to each of ``nodes`` weighing ``offsets``."""
    n = graph.shape[0]
    order = np.argsort(nodes, kind="stable")
    indptr = np.concatenate([graph.indptr, [graph.indptr[-1] + len(nodes)]])
    indices = np.concatenate([graph.indices, nodes[order].astype(graph.indices.dtype)])
    data = np.concatenate([graph.data, offsets[order]])
    return sparse.csr_matrix((data, indices, indptr), shape=(n + 1, n + 1))


def point_times(result: NearestResult, snap: Snap) -> tuple[np.ndarray, np.ndarray]:
    """Travel time and nearest site for snapped points (people), snap walk included.

    Returns
    -------
    tuple of numpy.ndarray
        Seconds per point (``inf`` where unreachable) and the nearest site index (-1).
    """
    return result.time_s[snap.node] + snap.walk_s, result.nearest[snap.node]


def beyond_network(providers: pd.DataFrame, mode: str, *, max_snap_m: float) -> np.ndarray:
    """Which providers lie farther than ``max_snap_m`` from the mode's network (or have no snap).

    The one rule the build's warning, the manifest's ``off_network`` list, the quality report
    and the map's site details use; such a site is never routed to (:func:`routable_sites`).
    """
    snap = providers[f"snap_m_{mode}"].to_numpy(dtype=float)
    return ~(snap <= max_snap_m)  # NaN (no snap) is beyond too


def routable_sites(providers: pd.DataFrame, mode: str, *, max_snap_m: float) -> np.ndarray:
    """Which providers the engine routes to in ``mode`` (the ``compute-access`` rule).

    A site is routed to when it lies within ``max_snap_m`` of the mode's network and was not
    placed only at its city's centre (``geocode_quality == "city"``: kilometres off, perhaps).

    Returns
    -------
    numpy.ndarray
        Boolean mask over the rows.
    """
    ok = ~beyond_network(providers, mode, max_snap_m=max_snap_m)
    if "geocode_quality" in providers:
        ok &= (providers["geocode_quality"] != "city").to_numpy(dtype=bool)
    return ok
