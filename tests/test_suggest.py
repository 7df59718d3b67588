"""Suggest sites: coverage direction, greedy maximal coverage against an exact ILP, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import sparse

from etl._errors import InputError
from etl.engine.access import nearest_site_times
from etl.engine.network import ModeNetwork, build_mode_network
from etl.engine.scenario import BaselineAccess, Scenario, evaluate
from etl.engine.suggest import (
    candidate_nodes,
    coverage_matrix,
    desert_people,
    greedy_max_coverage,
    max_coverage_exact,
    suggest_sites,
)
from tests.conftest import make_raw
from tests.test_scenario import CRS, grid_base

GAPS: list[dict] = []


def brute_coverage(
    base: BaselineAccess, cand: np.ndarray, people: np.ndarray, threshold_min: float
) -> np.ndarray:
    """Dense reference: one person → candidate search per candidate with the access engine."""
    pa = base._people_arrays()
    out = np.zeros((len(cand), len(people)), dtype=bool)
    for i, c in enumerate(cand):
        t = nearest_site_times(base.net, np.array([c])).time_s  # to the candidate
        out[i] = t[pa["node"][people]] + pa["walk_s"][people] <= threshold_min * 60
    return out


@pytest.fixture
def loop_base() -> BaselineAccess:
    """A one-way loop 1 → 2 → 3 → 4 → 1 (100 m blocks, 300 m back), one person per node."""
    lat0, step = 40.0, 100 / 111_195
    coords = {
        1: (-83.0, lat0),
        2: (-83.0, lat0 + step),
        3: (-83.0, lat0 + 2 * step),
        4: (-83.0, lat0 + 3 * step),
    }
    raw = make_raw(
        coords,
        [
            ([1, 2, 3, 4], {"highway": "residential", "oneway": "yes"}),
            ([4, 1], {"highway": "residential", "oneway": "yes"}),
        ],
    )
    net = build_mode_network(raw, "drive", crs=CRS, use_maxspeed=False)
    people = pd.DataFrame({"weight": [1.0, 2.0, 3.0, 4.0], "lon": net.lon, "lat": net.lat})
    providers = pd.DataFrame(
        {"id": ["far"], "category": ["methadone"], "lon": [-80.0], "lat": [40.0]}
    )
    return BaselineAccess.from_frames(net, providers, people, max_snap_m=50)


def test_coverage_runs_from_the_person_to_the_candidate(loop_base: BaselineAccess) -> None:
    base = loop_base
    node = {int(o): i for i, o in enumerate(base.net.osmid)}
    person = {
        int(o): int(np.flatnonzero(base._people_arrays()["node"] == i)[0]) for o, i in node.items()
    }
    cand = np.array([node[2]])
    ppl = np.array([person[1], person[3]])
    block_min = 100 / (40 / 3.6) / 60
    for direction in ("people", "candidates", "auto"):
        cov = coverage_matrix(base, cand, ppl, threshold_min=1.5 * block_min, direction=direction)
        # The person at 1 drives 1 → 2 (one block); the one at 3 must go round: 3 → 4 → 1 → 2.
        assert cov.toarray().tolist() == [[True, False]], direction
    # The trap: a search from the candidate on the forward graph answers care → person.
    wrong = nearest_site_times(base.net, cand, to_sites=False).time_s
    assert wrong[node[3]] < 1.5 * block_min * 60 < wrong[node[1]]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold_min", [0.5, 1.5])
def test_coverage_directions_agree_with_brute_force(seed: int, threshold_min: float) -> None:
    base = grid_base(seed)
    rng = np.random.default_rng(seed)
    cand = np.sort(rng.choice(base.net.n_nodes, size=25, replace=False))
    cand = np.append(cand, cand[0])  # a duplicate candidate gets its own row
    people = np.flatnonzero(base._people_arrays()["covered"])
    ref = brute_coverage(base, cand, people, threshold_min)
    assert 0 < ref.sum() < ref.size
    for direction in ("people", "candidates"):
        got = coverage_matrix(base, cand, people, threshold_min=threshold_min, direction=direction)
        np.testing.assert_array_equal(got.toarray(), ref)


def test_tiled_searches_on_a_walk_network() -> None:
    # A 12 x 12 walk grid (≈ 2 km across); a 2-minute walk (≈ 160 m) makes the searches tiled.
    rng = np.random.default_rng(3)
    coords, ways = {}, []
    for i in range(12):
        for j in range(12):
            coords[i * 12 + j + 1] = (
                -83.0 + j * 0.002 + rng.normal(0, 2e-4),
                40.0 + i * 0.002 + rng.normal(0, 2e-4),
            )
    for i in range(12):
        for j in range(11):
            ways.append(([i * 12 + j + 1, i * 12 + j + 2], {"highway": "footway"}))
            ways.append(([j * 12 + i + 1, (j + 1) * 12 + i + 1], {"highway": "residential"}))
    net = build_mode_network(make_raw(coords, ways), "walk", crs=CRS)
    people = pd.DataFrame({"weight": np.ones(net.n_nodes), "lon": net.lon + 2e-4, "lat": net.lat})
    base = BaselineAccess.from_frames(
        net, pd.DataFrame(columns=["id", "category", "lon", "lat"]), people
    )
    cand = np.arange(net.n_nodes)
    ppl = np.arange(len(people))
    ref = brute_coverage(base, cand, ppl, 2.0)
    assert 0 < ref.sum() < ref.size / 10
    for direction in ("people", "candidates"):
        got = coverage_matrix(base, cand, ppl, threshold_min=2.0, direction=direction)
        np.testing.assert_array_equal(got.toarray(), ref)


# ---------------------------------------------------------------------------------------
# Greedy against the exact solver
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["highs", "pulp"])
def test_greedy_on_the_textbook_case_and_the_ilp(solver: str) -> None:
    if solver == "pulp":
        pytest.importorskip("pulp", reason="PuLP not installed; the HiGHS case still runs")
    # Sets: A = {0,1,2,3}, B = {0,1,4}, C = {2,3,5}; greedy takes A then one more (5 people),
    # the optimum is B + C (6 people).
    rows = {0: [0, 1, 2, 3], 1: [0, 1, 4], 2: [2, 3, 5]}
    r = [i for i, cols in rows.items() for _ in cols]
    c = [col for cols in rows.values() for col in cols]
    cover = sparse.csr_matrix((np.ones(len(r), dtype=bool), (r, c)), shape=(3, 6))
    w = np.ones(6)
    picks, added = greedy_max_coverage(cover, w, 2)
    assert picks == [0, 1] and added == [4.0, 1.0]
    chosen, value = max_coverage_exact(cover, w, 2, solver=solver)
    assert sorted(chosen) == [1, 2] and value == pytest.approx(6.0)
    assert sum(added) >= (1 - 1 / math.e) * value


@pytest.mark.parametrize("seed", range(5))
def test_greedy_is_near_the_exact_optimum(seed: int) -> None:
    try:
        import pulp  # noqa: F401

        solvers = ["highs", "pulp"]
    except ImportError:
        solvers = ["highs"]
    base = grid_base(seed)
    rng = np.random.default_rng(50 + seed)
    people = desert_people(base, category="buprenorphine", threshold_min=1.0)
    assert len(people) > 20
    cand = np.sort(rng.choice(base.net.n_nodes, size=40, replace=False))
    cover = coverage_matrix(base, cand, people, threshold_min=1.0)
    w = base._people_arrays()["weight"][people]
    for k in (1, 2, 3, 5):
        _, added = greedy_max_coverage(cover, w, k)
        values = [max_coverage_exact(cover, w, k, solver=s)[1] for s in solvers]
        best = values[0]
        assert values == pytest.approx([best] * len(values))  # both exact solvers agree
        greedy = sum(added)
        assert greedy <= best + 1e-6
        assert greedy >= (1 - 1 / math.e) * best - 1e-6
        GAPS.append(
            {
                "seed": seed,
                "k": k,
                "greedy": greedy,
                "exact": best,
                "gap": 0.0 if best == 0 else max(0.0, 1 - greedy / best),
            }
        )
    if seed == 4:
        gaps = [g["gap"] for g in GAPS]
        print(
            f"\ngreedy vs exact MCLP on {len(gaps)} instances: mean gap {np.mean(gaps):.4f}, "
            f"max gap {max(gaps):.4f}, optimal in {sum(g < 1e-9 for g in gaps)}"
        )


# ---------------------------------------------------------------------------------------
# suggest_sites
# ---------------------------------------------------------------------------------------


def test_suggestions_cover_what_evaluate_says() -> None:
    base = grid_base(2)
    sug = suggest_sites(base, category="buprenorphine", mode="drive", threshold_min=1.0, k=3)
    assert [s.rank for s in sug] == [1, 2, 3]
    added = [s.people_added for s in sug]
    assert added == sorted(added, reverse=True) and added[-1] > 0
    assert sug[-1].people_cumulative == pytest.approx(sum(added))
    assert sug.people_in_desert >= sug.people_coverable >= sug[-1].people_cumulative
    assert "3 sites bring" in sug.message and "beyond 1 min by car" in sug.message
    # One click turns them into hypothetical sites; evaluate agrees on the people they add.
    r = evaluate(base, sug.to_scenario(), category="buprenorphine", threshold_min=1.0)
    assert r.people_gained == pytest.approx(sug[-1].people_cumulative, rel=1e-9)
    assert r.people_lost == 0
    assert sug[0].as_change().name == "Suggested site 1"
    # On top of the suggestions, nobody they covered is still counted as in the desert.
    more = suggest_sites(
        base, category="buprenorphine", threshold_min=1.0, k=1, scenario=sug.to_scenario()
    )
    assert more.people_in_desert == pytest.approx(sug.people_in_desert - sug[-1].people_cumulative)


def test_k_larger_than_the_candidates_is_answered() -> None:
    base = grid_base(0)
    people = desert_people(base, category="buprenorphine", threshold_min=1.0)
    node = base._people_arrays()["node"][people]
    sug = suggest_sites(
        base, category="buprenorphine", threshold_min=1.0, k=50, candidates=node[:2]
    )
    assert 1 <= len(sug) <= 2 and sug.k == 50 and sug.n_candidates <= 2
    assert f"{len(sug)} of the 50 sites asked for" in sug.message
    with pytest.raises(InputError, match="at least 1"):
        suggest_sites(base, category="buprenorphine", threshold_min=1.0, k=0)
    with pytest.raises(InputError, match="node indices"):
        suggest_sites(base, category="buprenorphine", threshold_min=1.0, candidates=[10**6])
    with pytest.raises(InputError, match="not 'walk'"):
        suggest_sites(base, category="buprenorphine", mode="walk", threshold_min=1.0)


def test_no_desert_needs_no_site() -> None:
    base = grid_base(0)
    sug = suggest_sites(base, category="buprenorphine", threshold_min=60.0, k=3)
    assert len(sug) == 0 and sug.people_in_desert == 0
    assert "no site is needed" in sug.message


def test_candidates_avoid_blocked_land_and_stay_in_the_region() -> None:
    src = grid_base(1)
    lon_mid = float(np.median(src.net.lon))
    outline = shapely.box(
        src.net.lon.min() - 1e-6, src.net.lat.min() - 1e-6, lon_mid, src.net.lat.max() + 1e-6
    )
    base = BaselineAccess.from_frames(
        src.net, src.providers, src.people, max_snap_m=300, region_outline=outline
    )
    every = candidate_nodes(base, res=-1)
    assert (base.net.lon[every] <= lon_mid).all()
    blocked = shapely.box(-90, float(np.median(base.net.lat)), -80, 50)
    free = candidate_nodes(base, blocked=blocked, res=-1)
    assert len(free) < len(every)
    assert not shapely.intersects_xy(blocked, base.net.lon[free], base.net.lat[free]).any()
    thinned = candidate_nodes(base, blocked=blocked)
    assert 0 < len(thinned) <= len(free) and set(thinned) <= set(free)
    sug = suggest_sites(base, category="buprenorphine", threshold_min=0.5, k=4, blocked=blocked)
    assert all(s.node in set(thinned) for s in sug)
    nothing = suggest_sites(
        base, category="buprenorphine", threshold_min=0.5, k=4, blocked=outline.buffer(1)
    )
    assert len(nothing) == 0 and "No candidate site" in nothing.message


# ---------------------------------------------------------------------------------------
# The real Franklin County walk network
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def franklin_walk(franklin) -> ModeNetwork:
    from etl.inputs.osm import read_osm_file

    raw = read_osm_file(franklin / "osm" / "columbus.osm.pbf")
    return build_mode_network(raw, "walk", crs=CRS)


@pytest.mark.shared
def test_franklin_walk_coverage_directions_agree(franklin_walk: ModeNetwork) -> None:
    net = franklin_walk
    rng = np.random.default_rng(11)
    ppl = rng.choice(net.n_nodes, size=2000, replace=False)
    people = pd.DataFrame(
        {
            "weight": rng.uniform(1, 50, 2000),
            "lon": net.lon[ppl] + rng.normal(0, 3e-4, 2000),
            "lat": net.lat[ppl] + rng.normal(0, 3e-4, 2000),
        }
    )
    site = rng.choice(net.n_nodes, size=3, replace=False)
    providers = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "category": "syringe_services",
            "lon": net.lon[site],
            "lat": net.lat[site],
        }
    )
    base = BaselineAccess.from_frames(net, providers, people)
    people_idx = desert_people(base, category="syringe_services", threshold_min=15.0)
    cand = candidate_nodes(base)[::20]
    a = coverage_matrix(base, cand, people_idx, threshold_min=15.0, direction="people")
    b = coverage_matrix(base, cand, people_idx, threshold_min=15.0, direction="candidates")
    assert a.nnz > 0 and (a != b).nnz == 0
    sub = rng.choice(len(cand), size=5, replace=False)
    ref = brute_coverage(base, cand[sub], people_idx, 15.0)
    np.testing.assert_array_equal(a[sub].toarray(), ref)
    sug = suggest_sites(base, category="syringe_services", threshold_min=15.0, k=3, candidates=cand)
    r = evaluate(
        base, sug.to_scenario(Scenario("walk")), category="syringe_services", threshold_min=15.0
    )
    assert r.people_gained == pytest.approx(sug[-1].people_cumulative, rel=1e-9)
