r"""Capacity-aware access: a two-step floating catchment area (2SFCA) with a Gaussian decay.

Where a provider list says how much care a site offers — practitioners per address from the
SAMHSA buprenorphine locator (one row per practitioner, collapsed to one site per address with
``capacity`` = distinct practitioners, :mod:`etl.inputs.providers`), or a ``capacity`` column
a list maps (slots) — the nearest-site travel time is not the whole story: ten prescribers at
one address serve more people than one. The Gaussian 2SFCA (Dai 2010; the enhanced 2SFCA of
Luo & Qi 2009 with a continuous decay) spreads each site's capacity over the people who can
reach it:

1. for each site *j*, its capacity over the decay-weighted people within the catchment,
   :math:`R_j = S_j / \sum_k P_k\, G(t_{kj})`;
2. for each people point *i*, the decay-weighted sum of the ratios it can reach,
   :math:`A_i = \sum_j R_j\, G(t_{ij})`;

with the Gaussian weight of Dai (2010) truncated at the catchment :math:`d_0` (the category's
desert threshold):

.. math:: G(t) = \frac{e^{-\frac12 (t/d_0)^2} - e^{-\frac12}}{1 - e^{-\frac12}}
          \quad (t \le d_0), \qquad G(t) = 0 \quad (t > d_0),

so a site at the door counts fully and one at the threshold not at all. Times
:math:`t_{ij}` are the engine's: network travel time on the mode's graph from the person's
node to the site's node (reversed-graph Dijkstra, as :mod:`etl.engine.access`), plus both snap
distances walked; people not covered by the mode (:mod:`etl.engine.counting`) are neither
demand nor given a value. An area's value is the population-weighted mean of its covered
people's :math:`A_i`, times 10,000: practitioners (or places) per 10,000 people. Every unit of
capacity that some covered person can reach is handed out exactly once:
:math:`\sum_i P_i A_i = \sum_{j \text{ reached}} S_j` (the tests check this).

References
----------
Luo W, Qi Y (2009). An enhanced two-step floating catchment area (E2SFCA) method for
measuring spatial accessibility to primary care physicians. Health & Place 15(4): 1100-1107.

Dai D (2010). Black residential segregation, disparities in spatial access to health care
facilities, and late-stage breast cancer diagnosis in metropolitan Detroit. Health & Place
16(5): 1038-1052.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from etl.engine.access import routable_sites
from etl.engine.counting import covered_mask
from etl.engine.network import ModeNetwork

#: Rates are given per this many people.
PER_PEOPLE: Final[int] = 10_000

#: What the manifest, the methods page and the data dictionary say about the method.
METHOD: Final[str] = "Gaussian two-step floating catchment area (Dai 2010; Luo & Qi 2009)"
DECAY: Final[str] = (
    "Gaussian truncated at the catchment d0: w(t) = (exp(-(t/d0)^2/2) - exp(-1/2)) / "
    "(1 - exp(-1/2)) for t <= d0, 0 beyond"
)

#: Mapped columns that make a provider list's ``capacity`` a count: practitioner identity
#: (rows collapsed to one site per address) or a capacity column (slots, places).
PRACTITIONER_COLUMNS: Final[frozenset[str]] = frozenset({"practitioner", "first_name", "last_name"})

_HALF: Final[float] = float(np.exp(-0.5))


@dataclass(frozen=True)
class CostMatrix:
    """Travel times from people points to sites, within a catchment (a sparse list).

    Attributes
    ----------
    person, site
        int64 row (people point) and column (site) of each entry.
    minutes
        Travel time of each entry, minutes (``<=`` the catchment; zero is a valid time).
    shape
        ``(n_people, n_sites)``.
    """

    person: np.ndarray
    site: np.ndarray
    minutes: np.ndarray
    shape: tuple[int, int]

    def nearest_minutes(self) -> np.ndarray:
        """Minutes to the nearest site per person (``inf`` where none is within the catchment)."""
        out = np.full(self.shape[0], np.inf)
        np.minimum.at(out, self.person, self.minutes)
        return out


@dataclass(frozen=True)
class FcaResult:
    r"""The two steps of a floating catchment.

    Attributes
    ----------
    access
        Capacity per person for every people point (the :math:`A_i`; multiply by
        :data:`PER_PEOPLE` for a rate); NaN where the point is not covered.
    ratio
        Capacity per decay-weighted person of every site (:math:`R_j`; 0 where no one
        reaches the site).
    demand
        Decay-weighted people within each site's catchment (:math:`\sum_k P_k G(t_{kj})`).
    """

    access: np.ndarray
    ratio: np.ndarray
    demand: np.ndarray


@dataclass
class CapacityResult:
    """Area columns and the manifest's summary of :func:`capacity_access`.

    Attributes
    ----------
    columns
        ``cap_<category>_<mode>`` → per-area rate (capacity per :data:`PER_PEOPLE` people;
        NaN where the area has no covered people).
    summary
        ``method``, ``decay``, ``per_people``, ``unit``, ``sources`` and, per
        ``<category>_<mode>``, the catchment and the figures (empty when no list has capacity).
    person_access
        ``<category>_<mode>`` → :attr:`FcaResult.access` per people point (for the tests).
    """

    columns: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    person_access: dict[str, np.ndarray] = field(default_factory=dict)


def gaussian_decay(minutes: np.ndarray, catchment_min: float) -> np.ndarray:
    """Dai's (2010) Gaussian weight, 1 at zero, 0 at and beyond the catchment.

    Parameters
    ----------
    minutes
        Travel times (NaN and ``inf`` weigh 0).
    catchment_min
        The catchment :math:`d_0`, same unit as ``minutes`` (> 0).

    Returns
    -------
    numpy.ndarray
        Weights in [0, 1].
    """
    if not catchment_min > 0:
        msg = f"the catchment must be positive, got {catchment_min!r}"
        raise ValueError(msg)
    t = np.asarray(minutes, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        g = (np.exp(-0.5 * (t / catchment_min) ** 2) - _HALF) / (1.0 - _HALF)
    return np.where(np.isfinite(t) & (t <= catchment_min), np.clip(g, 0.0, 1.0), 0.0)


def person_site_times(
    net: ModeNetwork,
    site_nodes: np.ndarray,
    person_nodes: np.ndarray,
    *,
    site_offsets_s: np.ndarray | None = None,
    person_offsets_s: np.ndarray | None = None,
    limit_s: float,
    chunk: int = 32,
) -> CostMatrix:
    """Travel times from every people point to every site within ``limit_s``, person → care.

    One Dijkstra per site on the mode's *reversed* graph (the direction
    :func:`etl.engine.access.nearest_site_times` uses), cut at ``limit_s``, read at the
    people's nodes; the site's and the person's snap walks are added.

    Parameters
    ----------
    net
        The mode's network.
    site_nodes
        Node of each site.
    person_nodes
        Node of each people point (only covered points should be passed, or their entries
        dropped afterwards).
    site_offsets_s, person_offsets_s
        Seconds added at each site and each person (their snap walks); zeros if None.
    limit_s
        The catchment, seconds: longer trips are left out.
    chunk
        Sites per Dijkstra call (memory: ``chunk × n_nodes`` floats).

    Returns
    -------
    CostMatrix
        Entries sorted by person then site.
    """
    site_nodes = np.asarray(site_nodes, dtype=np.int64)
    person_nodes = np.asarray(person_nodes, dtype=np.int64)
    n_sites, n_people = len(site_nodes), len(person_nodes)
    s_off = np.zeros(n_sites) if site_offsets_s is None else np.asarray(site_offsets_s, float)
    p_off = np.zeros(n_people) if person_offsets_s is None else np.asarray(person_offsets_s, float)
    rows, cols, secs = [], [], []
    if n_sites and n_people:
        graph = net.csr_reverse()
        # One search per distinct node (several sites may share a node).
        uniq, inverse = np.unique(site_nodes, return_inverse=True)
        for start in range(0, len(uniq), chunk):
            part = uniq[start : start + chunk]
            dist = csgraph.dijkstra(graph, directed=True, indices=part, limit=limit_s)
            at_people = dist[:, person_nodes]  # (len(part), n_people), node → site node
            for j in np.flatnonzero((inverse >= start) & (inverse < start + len(part))):
                t = at_people[inverse[j] - start] + s_off[j] + p_off
                ok = np.flatnonzero(t <= limit_s)
                rows.append(ok)
                cols.append(np.full(len(ok), j, dtype=np.int64))
                secs.append(t[ok])
    person = np.concatenate(rows) if rows else np.array([], dtype=np.int64)
    site = np.concatenate(cols) if cols else np.array([], dtype=np.int64)
    minutes = np.concatenate(secs) / 60.0 if secs else np.array([], dtype=float)
    order = np.lexsort((site, person))
    return CostMatrix(
        person=person[order].astype(np.int64),
        site=site[order],
        minutes=minutes[order],
        shape=(n_people, n_sites),
    )


def two_step_fca(
    cost: CostMatrix,
    demand: np.ndarray,
    supply: np.ndarray,
    catchment_min: float,
    *,
    covered: np.ndarray | None = None,
) -> FcaResult:
    """The two steps of the Gaussian 2SFCA on a cost matrix (vectorised, sparse).

    Parameters
    ----------
    cost
        Person → site minutes (:func:`person_site_times`, or any sparse list).
    demand
        People at each point (:math:`P_i`).
    supply
        Capacity of each site (:math:`S_j`).
    catchment_min
        The catchment :math:`d_0`, minutes; the weight is :func:`gaussian_decay`.
    covered
        Which points count (default: all); the others are no demand and get NaN.

    Returns
    -------
    FcaResult
    """
    n_people, n_sites = cost.shape
    demand = np.asarray(demand, dtype=float)
    supply = np.asarray(supply, dtype=float)
    if demand.shape != (n_people,) or supply.shape != (n_sites,):
        msg = (
            f"demand has {demand.shape} and supply {supply.shape} values for a "
            f"{n_people} × {n_sites} cost matrix"
        )
        raise ValueError(msg)
    cov = np.ones(n_people, dtype=bool) if covered is None else np.asarray(covered, dtype=bool)
    w = gaussian_decay(cost.minutes, catchment_min) * cov[cost.person]
    weights = sparse.csr_matrix((w, (cost.person, cost.site)), shape=cost.shape)
    site_demand = np.asarray(weights.T @ np.where(cov, demand, 0.0)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(site_demand > 0, supply / site_demand, 0.0)
    access = np.asarray(weights @ ratio).ravel()
    return FcaResult(access=np.where(cov, access, np.nan), ratio=ratio, demand=site_demand)


def area_rates(
    access: np.ndarray,
    weight: np.ndarray,
    area_index: np.ndarray,
    n_areas: int,
    *,
    per: float = PER_PEOPLE,
) -> np.ndarray:
    """Population-weighted mean of the people's access per area, per ``per`` people.

    Parameters
    ----------
    access
        Capacity per person for each people point (NaN: not covered, left out).
    weight
        People per point.
    area_index
        Area row of each point.
    n_areas
        Number of areas.
    per
        Rate base (10,000).

    Returns
    -------
    numpy.ndarray
        Rate per area; NaN where no covered person lives.
    """
    a = np.asarray(access, dtype=float)
    ok = np.isfinite(a)
    w = np.where(ok, np.asarray(weight, dtype=float), 0.0)
    wt = np.bincount(area_index, weights=w, minlength=n_areas)
    total = np.bincount(area_index, weights=np.where(ok, a, 0.0) * w, minlength=n_areas)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wt > 0, per * total / wt, np.nan)


def capacity_sources(sources: Iterable[Any]) -> dict[str, str]:
    """Provider lists whose ``capacity`` is a count, with what it counts.

    Parameters
    ----------
    sources
        The config's provider sources (anything with ``name`` and ``columns``).

    Returns
    -------
    dict
        Source name → ``"practitioners"`` (practitioner rows collapsed per address) or
        ``"places"`` (a mapped ``capacity`` column, e.g. treatment slots).
    """
    out = {}
    for src in sources:
        cols = set(getattr(src, "columns", {}) or {})
        if cols & PRACTITIONER_COLUMNS:
            out[src.name] = "practitioners"
        elif "capacity" in cols:
            out[src.name] = "places"
    return out


def known_capacity(providers: pd.DataFrame, sources: Mapping[str, str]) -> np.ndarray:
    """Which sites' ``capacity`` comes from a list that counts it (:func:`capacity_sources`).

    A merged site lists its sources as ``"a; b"``; it counts when any of them does.
    """
    if "source" not in providers or not sources:
        return np.zeros(len(providers), dtype=bool)
    names = providers["source"].fillna("").astype(str).str.split(r"\s*;\s*")
    return np.array([any(s in sources for s in row) for row in names], dtype=bool)


def capacity_access(
    providers: pd.DataFrame,
    people: pd.DataFrame,
    networks: Mapping[str, ModeNetwork],
    thresholds_min: Mapping[tuple[str, str], float],
    *,
    sources: Mapping[str, str],
    area_index: np.ndarray,
    n_areas: int,
    max_snap_m: float,
    cover_m: float,
) -> CapacityResult:
    """Gaussian 2SFCA per category with a known capacity and per mode with a threshold.

    A category is measured when at least one of its own sites (``category`` equal to it, not a
    merged service) has a capacity from a list that counts it; its other sites count with
    capacity 1, the minimum a listed site has (the summary says how many). Sites are those the
    engine routes to (:func:`etl.engine.access.routable_sites`); the catchment is the
    category's desert threshold for the mode.

    Parameters
    ----------
    providers
        The providers layer (``category``, ``capacity``, ``source``, ``node_<mode>``,
        ``snap_m_<mode>``, ``geocode_quality``).
    people
        The people layer (``weight``, ``node_<mode>``, ``snap_m_<mode>``).
    networks
        Network per mode.
    thresholds_min
        ``(category, mode)`` → catchment, minutes.
    sources
        :func:`capacity_sources` of the config's provider lists.
    area_index, n_areas
        Area row of each people point, number of areas.
    max_snap_m, cover_m
        The engine's routing and coverage rules (``network.max_snap_m``, ``access.cover_m``).

    Returns
    -------
    CapacityResult
    """
    result = CapacityResult()
    known = known_capacity(providers, sources)
    if not known.any():
        return result
    weight = people["weight"].to_numpy(dtype=float)
    category = providers["category"].to_numpy(object)
    capacity = pd.to_numeric(providers["capacity"], errors="coerce").fillna(1).to_numpy(float)
    capacity = np.maximum(capacity, 1.0)
    by: dict[str, Any] = {}
    for (cat, mode), catchment in thresholds_min.items():
        own = category == cat
        if not (own & known).any() or mode not in networks or catchment is None:
            continue
        net = networks[mode]
        sites = np.flatnonzero(own & routable_sites(providers, mode, max_snap_m=max_snap_m))
        snap_p = people[f"snap_m_{mode}"].to_numpy(dtype=float)
        covered = covered_mask(snap_p, cover_m)
        who = np.flatnonzero(covered)
        cost = person_site_times(
            net,
            providers[f"node_{mode}"].to_numpy()[sites],
            people[f"node_{mode}"].to_numpy()[who],
            site_offsets_s=providers[f"snap_m_{mode}"].to_numpy(float)[sites] / net.walk_speed_mps,
            person_offsets_s=snap_p[who] / net.walk_speed_mps,
            limit_s=float(catchment) * 60.0,
        )
        fca = two_step_fca(cost, weight[who], capacity[sites], float(catchment))
        access = np.full(len(people), np.nan)
        access[who] = fca.access
        key = f"{cat}_{mode}"
        rates = area_rates(access, weight, area_index, n_areas)
        result.columns[f"cap_{key}"] = rates.round(2)
        result.person_access[key] = access
        reached = fca.demand > 0
        people_cov = float(weight[who].sum())
        supply_reached = float(capacity[sites][reached].sum())
        by[key] = {
            "catchment_min": float(catchment),
            "sites": len(sites),
            "sites_capacity_known": int(known[sites].sum()),
            "sites_capacity_assumed_1": int((~known[sites]).sum()),
            "capacity": round(float(capacity[sites].sum())),
            "capacity_reached": round(supply_reached),
            "people_covered": round(people_cov),
            "people_with_none": round(float(weight[who][~(fca.access > 0)].sum())),
            "region_per_10k": round(PER_PEOPLE * supply_reached / people_cov, 2)
            if people_cov
            else None,
            "median_per_10k_people": _weighted_median(PER_PEOPLE * fca.access, weight[who]),
            "median_per_10k_areas": (
                round(float(np.nanmedian(rates)), 2) if np.isfinite(rates).any() else None
            ),
        }
    if by:
        kinds = sorted(set(sources.values()))
        result.summary = {
            "method": METHOD,
            "decay": DECAY,
            "catchment": "the category's desert threshold for the mode (access.thresholds_min)",
            "per_people": PER_PEOPLE,
            "unit": " or ".join(kinds),
            "sources": sorted(sources),
            "by": by,
        }
    return result


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float | None:
    ok = np.isfinite(values) & (weights > 0)
    if not ok.any():
        return None
    v, w = values[ok], weights[ok]
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    return round(float(v[order][np.searchsorted(cum, cum[-1] / 2)]), 2)
