"""Suggest where to open new sites: greedy maximal coverage of the people now in a desert.

For a (category, mode, threshold), the people *in the desert* are those the network covers
whose travel time to the nearest site exceeds the threshold (the definitions of
:mod:`etl.engine.scenario` and the ``compute-access`` stage). A candidate site ``c`` (a network node
on sitable land) *covers* a person ``p`` when ``p`` reaches ``c`` within the threshold:
``walk(p) + d(node(p) → c) ≤ threshold``, travelling from the person to care.

Coverage is computed with bounded Dijkstra searches from whichever side has fewer sources:

* from each candidate on the **reversed** graph (distances *to* the candidate: ``d(v → c)``
  for every node ``v``), or
* from each desert person's node on the **forward** graph (``d(node(p) → v)`` for every
  candidate ``v``).

Both give the same pairs; on one-way streets the other two combinations would not, which the
tests check. :func:`greedy_max_coverage` then picks, ``k`` times, the candidate adding the most
people not yet covered (a (1 - 1/e)-approximation of the maximal covering location problem),
and :func:`max_coverage_exact` solves the same problem exactly as an integer programme (HiGHS
through SciPy, or PuLP/CBC where installed) to check the greedy answer on small instances.

Candidates are, by default, one network node per H3 cell of resolution :data:`CANDIDATE_RES`
with streets (the node closest to the middle of the cell's nodes), inside the region's
outline and outside ``blocked`` (the zoning barriers, see
:meth:`etl.engine.scenario.BaselineAccess.blocked_land`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from etl._errors import InputError
from etl.categories import CATEGORY_LABELS
from etl.engine.scenario import AddSite, BaselineAccess, Scenario, evaluate
from etl.engine.streets import cells_of

logger = logging.getLogger(__name__)

#: H3 resolution for thinning candidate sites to one node per cell (res 9: cells ≈ 0.1 km²,
#: about 350 m across), fine against a 10-minute walk and cheap enough for a live answer.
CANDIDATE_RES: int = 9

#: Largest dense distance block (sources × nodes) a coverage batch may allocate, in cells.
BATCH_CELLS: int = 4_000_000

_EPS = 1e-9


@dataclass(frozen=True)
class Suggestion:
    """One suggested site.

    Attributes
    ----------
    rank
        1 for the first pick.
    node
        Network node index.
    lon, lat
        WGS84 coordinates of the node.
    people_added
        People in the desert it brings within the threshold, beyond the earlier picks.
    people_cumulative
        People brought within reach by this and every earlier pick.
    category, mode, threshold_min
        What it was suggested for.
    """

    rank: int
    node: int
    lon: float
    lat: float
    people_added: float
    people_cumulative: float
    category: str
    mode: str
    threshold_min: float

    def as_change(self, *, name: str | None = None) -> AddSite:
        """Return the suggestion as a hypothetical site (:class:`~etl.engine.scenario.AddSite`)."""
        return AddSite(
            category=self.category,
            lon=self.lon,
            lat=self.lat,
            name=name or f"Suggested site {self.rank}",
        )


class Suggestions(list):
    """The list of :class:`Suggestion` returned by :func:`suggest_sites`, with context.

    Attributes
    ----------
    k
        How many sites were asked for.
    n_candidates
        Candidate sites considered.
    people_in_desert
        People beyond the threshold before the suggestions.
    people_coverable
        Of those, people at least one candidate could bring within reach.
    message
        Plain-language note, e.g. why fewer than ``k`` sites are suggested.
    """

    k: int = 0
    n_candidates: int = 0
    people_in_desert: float = 0.0
    people_coverable: float = 0.0
    message: str = ""

    def to_scenario(self, scenario: Scenario | None = None) -> Scenario:
        """Return ``scenario`` (or a new one) with every suggestion added as a site."""
        scenario = scenario or Scenario(name="Suggested sites")
        return scenario.extend(s.as_change() for s in self)


def candidate_nodes(
    base: BaselineAccess,
    *,
    blocked: shapely.Geometry | None = None,
    within: shapely.Geometry | None = None,
    res: int | None = None,
) -> np.ndarray:
    """Return network nodes where a site could open: one per H3 cell, on sitable land.

    Parameters
    ----------
    base
        The baseline (network, region outline).
    blocked
        Land where siting is blocked (WGS84), e.g. zoning barriers; None blocks nothing.
    within
        Keep candidates inside this (WGS84); defaults to the region's outline where known.
    res
        H3 resolution for thinning; defaults to :data:`CANDIDATE_RES`; ``-1`` keeps every node.

    Returns
    -------
    numpy.ndarray
        Sorted int64 node indices.
    """
    net = base.net
    ok = np.ones(net.n_nodes, dtype=bool)
    within = base.region_outline if within is None else within
    if within is not None and not within.is_empty:
        shapely.prepare(within)
        ok &= shapely.contains_xy(within, net.lon, net.lat)
    if blocked is not None and not blocked.is_empty:
        shapely.prepare(blocked)
        ok &= ~shapely.intersects_xy(blocked, net.lon, net.lat)
    nodes = np.flatnonzero(ok)
    res = CANDIDATE_RES if res is None else res
    if res < 0 or len(nodes) == 0:
        return nodes.astype(np.int64)
    cells = base._cached(("node_cells", res), lambda: cells_of(net.lat, net.lon, res))[nodes]
    order = np.lexsort((nodes, cells))
    c, n = cells[order], nodes[order]
    starts = np.flatnonzero(np.concatenate([[True], c[1:] != c[:-1]]))
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(c))))
    mx = np.bincount(group, weights=net.x[n]) / np.bincount(group)
    my = np.bincount(group, weights=net.y[n]) / np.bincount(group)
    d2 = (net.x[n] - mx[group]) ** 2 + (net.y[n] - my[group]) ** 2
    # The node nearest the middle of each cell's nodes (ties: the lowest node index).
    pick = np.lexsort((n, d2, group))
    first = np.ones(len(pick), dtype=bool)
    first[1:] = group[pick][1:] != group[pick][:-1]
    return np.sort(n[pick[first]]).astype(np.int64)


def coverage_matrix(
    base: BaselineAccess,
    candidates: np.ndarray,
    people: np.ndarray,
    *,
    threshold_min: float,
    direction: str = "auto",
) -> sparse.csr_matrix:
    """Which candidates bring which people within the threshold.

    Parameters
    ----------
    base
        The baseline.
    candidates
        Candidate node indices.
    people
        Indices into ``base.people`` (covered people only are meaningful).
    threshold_min
        Minutes.
    direction
        ``"candidates"`` (reversed-graph search from each candidate), ``"people"``
        (forward search from each person's node) or ``"auto"`` (the side with fewer sources).

    Returns
    -------
    scipy.sparse.csr_matrix
        Boolean, ``len(candidates)`` × ``len(people)``.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    people = np.asarray(people, dtype=np.int64)
    pa = base._people_arrays()
    thr_s = float(threshold_min) * 60.0
    shape = (len(candidates), len(people))
    budget = thr_s - pa["walk_s"][people]
    live = np.flatnonzero(budget >= 0)
    if len(candidates) == 0 or len(live) == 0:
        return sparse.csr_matrix(shape, dtype=bool)
    # People grouped by their node: the searches run per node, then expand to people.
    u_nodes, inv = np.unique(pa["node"][people][live], return_inverse=True)
    by_node = live[np.argsort(inv, kind="stable")]  # people positions, grouped by node
    bounds = np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=len(u_nodes)))])
    node_budget = np.full(len(u_nodes), -np.inf)
    np.maximum.at(node_budget, inv, budget[live])
    u_cand, cand_inv = np.unique(candidates, return_inverse=True)
    if direction == "auto":
        direction = "people" if len(u_nodes) <= len(u_cand) else "candidates"
    if direction == "candidates":
        # d(v → c) for every node v: a search from c on the reversed graph.
        ci, ui, d = _pairs_within(
            base, base.net.csr_reverse(), u_cand, np.full(len(u_cand), thr_s), u_nodes
        )
    elif direction == "people":
        # d(node(p) → v) for every node v: a search from the person's node, forward.
        ui, ci, d = _pairs_within(base, base.net.csr(), u_nodes, node_budget, u_cand)
    else:
        msg = f"direction must be 'auto', 'candidates' or 'people', not {direction!r}"
        raise InputError(msg)
    # Expand (candidate node, person node) pairs to people, keeping those within budget.
    counts = bounds[ui + 1] - bounds[ui]
    rep = np.repeat(np.arange(len(ui)), counts)
    offset = np.arange(len(rep)) - np.repeat(np.cumsum(counts) - counts, counts)
    person = by_node[bounds[ui][rep] + offset]
    keep = d[rep] <= budget[person]
    pair_c, pair_p = ci[rep][keep], person[keep]
    # Candidate nodes back to candidate rows (duplicates in ``candidates`` each get a row).
    order = np.argsort(cand_inv, kind="stable")
    c_bounds = np.concatenate([[0], np.cumsum(np.bincount(cand_inv, minlength=len(u_cand)))])
    c_counts = c_bounds[pair_c + 1] - c_bounds[pair_c]
    rep2 = np.repeat(np.arange(len(pair_c)), c_counts)
    off2 = np.arange(len(rep2)) - np.repeat(np.cumsum(c_counts) - c_counts, c_counts)
    rows = order[c_bounds[pair_c][rep2] + off2]
    cols = pair_p[rep2]
    mat = sparse.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=shape)
    mat.sum_duplicates()
    return mat


def _max_speed_mps(base: BaselineAccess) -> float:
    """Fastest straight-line progress any edge allows (metres of length per second)."""

    def make() -> float:
        net = base.net
        ok = net.time_s > 0
        if not ok.any():
            return math.inf
        return float((net.length_m[ok] / net.time_s[ok]).max())

    return base._cached("max_speed_mps", make)


def _pairs_within(
    base: BaselineAccess,
    graph: sparse.csr_matrix,
    sources: np.ndarray,
    limits_s: np.ndarray,
    targets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (source, target) pairs with ``graph`` distance within each source's limit.

    Searches run in spatial tiles: a path of ``L`` seconds cannot leave the disc of radius
    ``L × (fastest edge speed)`` around its source, so each tile's sources search only the
    subgraph within that radius of the tile (the whole graph where the radius is large).

    Returns
    -------
    tuple of numpy.ndarray
        Positions into ``sources`` and ``targets``, and the distances (seconds).
    """
    net = base.net
    n = net.n_nodes
    x, y = net.x, net.y
    radius = float(limits_s.max()) * _max_speed_mps(base) * 1.01 + 1.0
    extent = max(float(np.ptp(x)), float(np.ptp(y)))
    if not math.isfinite(radius) or 3 * radius >= extent:
        tiles = [np.arange(len(sources))]
        boxes = [None]
    else:
        size = max(2.0 * radius, 500.0)
        tx = np.floor((x[sources] - x.min()) / size).astype(np.int64)
        ty = np.floor((y[sources] - y.min()) / size).astype(np.int64)
        key = tx * (int(extent // size) + 2) + ty
        order = np.argsort(key, kind="stable")
        starts = np.flatnonzero(np.concatenate([[True], key[order][1:] != key[order][:-1]]))
        tiles = np.split(order, starts[1:])
        boxes = [
            (
                x[sources[t]].min() - radius,
                x[sources[t]].max() + radius,
                y[sources[t]].min() - radius,
                y[sources[t]].max() + radius,
            )
            for t in tiles
        ]
    out_s, out_t, out_d = [], [], []
    local = np.full(n, -1, dtype=np.int64)
    for tile, box in zip(tiles, boxes, strict=True):
        if box is None:
            nodes, sub = np.arange(n), graph
        else:
            x0, x1, y0, y1 = box
            nodes = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
            sub = graph[nodes][:, nodes]
        local[nodes] = np.arange(len(nodes))
        t_loc = local[targets]
        t_in = np.flatnonzero(t_loc >= 0)
        batch = max(1, BATCH_CELLS // len(nodes))
        for b in range(0, len(tile), batch):
            part = tile[b : b + batch]
            lim = limits_s[part]
            dist = csgraph.dijkstra(
                sub, directed=True, indices=local[sources[part]], limit=float(lim.max())
            )
            d = dist[:, t_loc[t_in]]
            si, tj = np.nonzero(d <= lim[:, None])
            out_s.append(part[si])
            out_t.append(t_in[tj])
            out_d.append(d[si, tj])
        local[nodes] = -1
    if not out_s:
        empty = np.array([], dtype=np.int64)
        return empty, empty, np.array([], dtype=float)
    return np.concatenate(out_s), np.concatenate(out_t), np.concatenate(out_d)


def greedy_max_coverage(
    cover: sparse.spmatrix, weights: np.ndarray, k: int
) -> tuple[list[int], list[float]]:
    """Pick up to ``k`` rows of ``cover`` greedily, each adding the most uncovered weight.

    Stops early when no row adds anything. Ties go to the lowest row.

    Returns
    -------
    tuple of list
        The picked rows and the weight each added.
    """
    cover = sparse.csr_matrix(cover, dtype=float)
    cols = cover.tocsc()
    w = np.asarray(weights, dtype=float)
    gain = np.asarray(cover @ w).ravel()
    done = np.zeros(cover.shape[1], dtype=bool)
    picks: list[int] = []
    added: list[float] = []
    for _ in range(min(k, cover.shape[0])):
        if len(gain) == 0:
            break
        j = int(np.argmax(gain))
        if gain[j] <= _EPS:
            break
        row = cover.indices[cover.indptr[j] : cover.indptr[j + 1]]
        new = row[~done[row]]
        done[new] = True
        picks.append(j)
        added.append(float(w[new].sum()))
        if len(new):
            sub = cols[:, new]
            gain -= np.asarray(sub @ w[new]).ravel()
        gain[j] = 0.0
    return picks, added


def max_coverage_exact(
    cover: sparse.spmatrix,
    weights: np.ndarray,
    k: int,
    *,
    solver: str = "highs",
    time_limit_s: float = 60.0,
) -> tuple[list[int], float]:
    """Solve the maximal covering location problem exactly, as an integer programme.

    maximise ``Σ w_p y_p`` subject to ``y_p ≤ Σ_{c covers p} x_c``, ``Σ x_c ≤ k``,
    ``x`` binary, ``0 ≤ y ≤ 1``. Meant for checking :func:`greedy_max_coverage` on instances of
    up to a few hundred candidates.

    Parameters
    ----------
    cover, weights, k
        As for :func:`greedy_max_coverage`.
    solver
        ``"highs"`` (:func:`scipy.optimize.milp`, no extra dependency) or ``"pulp"`` (PuLP with
        its bundled CBC; ``pip install "pulp>=3.3,<4"``).
    time_limit_s
        Give up after this long.

    Returns
    -------
    tuple
        The chosen rows and the covered weight.

    Raises
    ------
    InputError
        If the solver does not prove an optimum (or is unknown).
    """
    cover = sparse.csr_matrix(cover, dtype=float)
    w = np.asarray(weights, dtype=float)
    n_c, n_p = cover.shape
    if solver == "highs":
        from scipy.optimize import Bounds, LinearConstraint, milp

        # Variables [x (candidates), y (people)]; rows: y_p - Σ x_c <= 0, then Σ x <= k.
        link = sparse.hstack([-cover.T, sparse.identity(n_p)])
        budget = sparse.hstack([sparse.csr_matrix(np.ones((1, n_c))), sparse.csr_matrix((1, n_p))])
        a = sparse.vstack([link, budget]).tocsr()
        ub = np.concatenate([np.zeros(n_p), [float(k)]])
        res = milp(
            c=np.concatenate([np.zeros(n_c), -w]),
            integrality=np.concatenate([np.ones(n_c), np.zeros(n_p)]),
            bounds=Bounds(0, 1),
            constraints=LinearConstraint(a, -np.inf, ub),
            options={"time_limit": time_limit_s},
        )
        if res.status != 0 or res.x is None:
            msg = f"max_coverage_exact: HiGHS ended without a proven optimum ({res.message})"
            raise InputError(msg)
        chosen = [j for j in range(n_c) if res.x[j] > 0.5]
        covered = np.asarray(cover[chosen].sum(axis=0)).ravel() > 0
        return chosen, float(w[covered].sum())
    if solver == "pulp":
        return _exact_pulp(cover.tocsc(), w, k, time_limit_s)
    msg = f"solver must be 'highs' or 'pulp', not {solver!r}"
    raise InputError(msg)


def _exact_pulp(
    cover: sparse.csc_matrix, w: np.ndarray, k: int, time_limit_s: float
) -> tuple[list[int], float]:
    import warnings

    import pulp

    n_c, n_p = cover.shape
    with warnings.catch_warnings():
        # PuLP 3.3 announces its 4.0 API (Python >= 3.12 only) with DeprecationWarnings.
        warnings.simplefilter("ignore", DeprecationWarning)
        prob = pulp.LpProblem("max_coverage", pulp.LpMaximize)
        x = [pulp.LpVariable(f"x_{j}", 0, 1, cat=pulp.LpBinary) for j in range(n_c)]
        y = [pulp.LpVariable(f"y_{p}", 0, 1) for p in range(n_p)]
        prob += pulp.lpSum(float(w[p]) * y[p] for p in range(n_p))
        for p in range(n_p):
            rows = cover.indices[cover.indptr[p] : cover.indptr[p + 1]]
            prob += y[p] <= pulp.lpSum(x[j] for j in rows)
        prob += pulp.lpSum(x) <= k
        status = prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s))
    if pulp.LpStatus[status] != "Optimal":
        msg = f"max_coverage_exact: CBC ended {pulp.LpStatus[status]!r}, not optimal"
        raise InputError(msg)
    chosen = [j for j in range(n_c) if (x[j].value() or 0) > 0.5]
    covered = np.asarray(cover[chosen].sum(axis=0)).ravel() > 0
    return chosen, float(w[covered].sum())


def desert_people(
    base: BaselineAccess,
    *,
    category: str,
    threshold_min: float,
    scenario: Scenario | None = None,
) -> np.ndarray:
    """Return the indices of the people (points) the network covers beyond the threshold."""
    result = evaluate(
        base, scenario or Scenario(name="Baseline"), category=category, threshold_min=threshold_min
    )
    cov = base._people_arrays()["covered"]
    return np.flatnonzero(cov & ~(result.person_time_s <= threshold_min * 60.0))


def suggest_sites(
    base: BaselineAccess,
    *,
    category: str,
    mode: str | None = None,
    threshold_min: float | None = None,
    k: int = 3,
    candidates: Sequence[int] | np.ndarray | None = None,
    blocked: shapely.Geometry | None = None,
    scenario: Scenario | None = None,
) -> Suggestions:
    """Suggest up to ``k`` sites that bring the most people now in a desert within reach.

    Parameters
    ----------
    base
        The baseline of one mode.
    category
        Canonical category.
    mode
        Must be ``base.mode`` (checked); None takes it.
    threshold_min
        Minutes; None takes the bundle's threshold for (category, mode).
    k
        How many sites (at least 1). More than there are useful candidates is answered with
        fewer suggestions and a message.
    candidates
        Node indices to choose from; None builds them with :func:`candidate_nodes`.
    blocked
        Land where siting is blocked (WGS84); ignored when ``candidates`` is given.
    scenario
        Suggest on top of this scenario instead of the baseline.

    Returns
    -------
    Suggestions
        A list of :class:`Suggestion` in pick order, with context attributes.

    Raises
    ------
    InputError
        If ``k`` < 1, or the category, mode or threshold is invalid (see
        :func:`etl.engine.scenario.evaluate`).
    """
    if k < 1:
        msg = f"k must be at least 1, got {k}"
        raise InputError(msg)
    if mode is not None and mode != base.mode:
        msg = f"suggest_sites: this baseline is for {base.mode!r}, not {mode!r}"
        raise InputError(msg)
    if threshold_min is None:
        threshold_min = base.threshold(category)
        if threshold_min is None:
            msg = f"no threshold for {category}/{base.mode}; pass threshold_min"
            raise InputError(msg)
    threshold_min = float(threshold_min)
    people = desert_people(base, category=category, threshold_min=threshold_min, scenario=scenario)
    if candidates is None:
        cand = candidate_nodes(base, blocked=blocked)
    else:
        cand = np.unique(np.asarray(candidates, dtype=np.int64))
        if len(cand) and (cand.min() < 0 or cand.max() >= base.net.n_nodes):
            msg = f"candidates must be node indices in 0..{base.net.n_nodes - 1}"
            raise InputError(msg)
    weights = base._people_arrays()["weight"][people]
    cover = coverage_matrix(base, cand, people, threshold_min=threshold_min)
    picks, added = greedy_max_coverage(cover, weights, k)

    out = Suggestions()
    out.k, out.n_candidates = k, len(cand)
    out.people_in_desert = float(weights.sum())
    reachable = np.asarray(cover.sum(axis=0)).ravel() > 0
    out.people_coverable = float(weights[reachable].sum())
    cum = 0.0
    for rank, (j, gain) in enumerate(zip(picks, added, strict=True), start=1):
        cum += gain
        node = int(cand[j])
        out.append(
            Suggestion(
                rank=rank,
                node=node,
                lon=float(base.net.lon[node]),
                lat=float(base.net.lat[node]),
                people_added=gain,
                people_cumulative=cum,
                category=category,
                mode=base.mode,
                threshold_min=threshold_min,
            )
        )
    label = CATEGORY_LABELS[category].lower()
    how = "by car" if base.mode == "drive" else "on foot"
    if len(people) == 0:
        out.message = (
            f"Nobody the network covers is beyond {threshold_min:g} min {how} of a "
            f"{label}; no site is needed."
        )
    elif len(cand) == 0:
        out.message = "No candidate site: all land is blocked or outside the region."
    elif len(out) < k:
        left = out.people_in_desert - cum
        why = (
            f"only {len(cand)} candidate sites"
            if len(out) == len(cand)
            else "further sites would bring nobody else within reach"
        )
        out.message = (
            f"{len(out)} of the {k} sites asked for are suggested: {why}; "
            f"{left:,.0f} people stay beyond {threshold_min:g} min {how}."
        )
    else:
        out.message = (
            f"{k} sites bring {cum:,.0f} of the {out.people_in_desert:,.0f} people "
            f"beyond {threshold_min:g} min {how} within reach."
        )
    logger.info(
        "suggest_sites(%s/%s, %g min, k=%d): %d candidates, %d desert people points "
        "(%s people), %d picks covering %s",
        category,
        base.mode,
        threshold_min,
        k,
        len(cand),
        len(people),
        f"{out.people_in_desert:,.0f}",
        len(out),
        f"{cum:,.0f}",
    )
    return out
