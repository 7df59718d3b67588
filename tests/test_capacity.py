"""Capacity-aware access (Gaussian 2SFCA): a hand-computed toy, PySAL ``access``, Gridton, Franklin.

The toy has two sites and three areas whose numbers can be checked with a pencil; PySAL's
``access`` package (a test-only dependency) is the independent implementation, run on the same
cost matrix; Gridton runs it through the pipeline, the export's dictionary and the map; Franklin
(real data in ../shared) gives the figures of the report.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from etl.bundle.store import Bundle
from etl.config import load_config
from etl.engine.access import nearest_site_times
from etl.engine.capacity import (
    PER_PEOPLE,
    CostMatrix,
    area_rates,
    capacity_sources,
    gaussian_decay,
    known_capacity,
    person_site_times,
    two_step_fca,
)
from etl.engine.network import ModeNetwork, build_mode_network
from etl.pipeline import run_build
from tests.conftest import CONFIGS, make_raw
from tests.region_fixture import write_region

access_pkg = pytest.importorskip(
    "access", reason="PySAL access (the `test` extra) is not installed"
)

G15 = (math.exp(-0.125) - math.exp(-0.5)) / (1 - math.exp(-0.5))  # weight at half the catchment


def _matrix(entries: list[tuple[int, int, float]], shape: tuple[int, int]) -> CostMatrix:
    p, s, t = (np.array(v) for v in zip(*entries, strict=True))
    return CostMatrix(person=p.astype(np.int64), site=s.astype(np.int64), minutes=t, shape=shape)


# --------------------------------------------------------------------------------------
# The decay and the two steps, by hand
# --------------------------------------------------------------------------------------


def test_gaussian_decay_is_one_at_the_door_and_zero_at_the_catchment() -> None:
    t = np.array([0.0, 15.0, 29.999, 30.0, 31.0, np.inf, np.nan])
    w = gaussian_decay(t, 30.0)
    assert w[0] == 1.0
    assert w[1] == pytest.approx(G15, abs=1e-12)
    assert round(G15, 6) == 0.701367
    assert 0 < w[2] < 1e-3
    assert w[3:].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert np.all(np.diff(gaussian_decay(np.linspace(0, 30, 61), 30.0)) < 0)
    with pytest.raises(ValueError, match="positive"):
        gaussian_decay(t, 0.0)


def test_two_sites_three_areas_by_hand() -> None:
    """Areas a, b, c (100, 200 and 300 people); site 1 (2 practitioners), site 2 (3).

    a is at site 1's door; b is at both doors; c is at site 2's door and exactly at the
    catchment of site 1 (weight 0). With weights 1 and 0 only, the 2SFCA is a ratio of counts:
    site 1 serves a and b (2 / 300), site 2 serves b and c (3 / 500).
    """
    cost = _matrix([(0, 0, 0.0), (1, 0, 0.0), (1, 1, 0.0), (2, 1, 0.0), (2, 0, 30.0)], (3, 2))
    fca = two_step_fca(cost, np.array([100.0, 200.0, 300.0]), np.array([2.0, 3.0]), 30.0)
    np.testing.assert_allclose(fca.demand, [300.0, 500.0])
    np.testing.assert_allclose(fca.ratio, [2 / 300, 3 / 500])
    np.testing.assert_allclose(fca.access, [2 / 300, 2 / 300 + 3 / 500, 3 / 500])
    rates = area_rates(fca.access, np.array([100.0, 200.0, 300.0]), np.arange(3), 3)
    np.testing.assert_allclose(rates, [66.666667, 126.666667, 60.0], rtol=1e-6)
    # Every practitioner is handed out once: sum of people × access = 2 + 3.
    assert float(np.dot([100, 200, 300], fca.access)) == pytest.approx(5.0)


def test_two_sites_three_areas_with_the_decay() -> None:
    """The same areas with b 15 minutes (half the catchment) from both sites."""
    cost = _matrix([(0, 0, 0.0), (1, 0, 15.0), (1, 1, 15.0), (2, 1, 0.0), (2, 0, 40.0)], (3, 2))
    pop, cap = np.array([100.0, 200.0, 300.0]), np.array([2.0, 3.0])
    fca = two_step_fca(cost, pop, cap, 30.0)
    d1, d2 = 100 + 200 * G15, 200 * G15 + 300
    np.testing.assert_allclose(fca.demand, [d1, d2])
    np.testing.assert_allclose(fca.access, [2 / d1, G15 * (2 / d1 + 3 / d2), 3 / d2])
    assert float(pop @ fca.access) == pytest.approx(5.0)
    # Per 10,000 people: d1 = 100 + 200 g = 240.27, d2 = 200 g + 300 = 440.27 (g = 0.70137),
    # a = 2 / d1 = 83.24, c = 3 / d2 = 68.14, b = g (83.24 + 68.14) = 106.17.
    np.testing.assert_allclose(PER_PEOPLE * fca.access, [83.24, 106.17, 68.14], atol=0.01)


def test_people_not_covered_are_no_demand_and_have_no_value() -> None:
    cost = _matrix([(0, 0, 0.0), (1, 0, 0.0), (2, 0, 0.0)], (3, 1))
    fca = two_step_fca(
        cost, np.array([100.0, 100.0, 800.0]), np.array([4.0]), 30.0,
        covered=np.array([True, True, False]),
    )  # fmt: skip
    assert fca.demand.tolist() == [200.0]
    assert fca.access[:2].tolist() == [0.02, 0.02] and np.isnan(fca.access[2])


def test_a_site_nobody_reaches_and_a_person_beyond_every_site() -> None:
    cost = _matrix([(0, 0, 10.0)], (2, 2))
    fca = two_step_fca(cost, np.array([50.0, 50.0]), np.array([1.0, 9.0]), 30.0)
    assert fca.ratio[1] == 0.0 and fca.demand[1] == 0.0
    assert fca.access[1] == 0.0  # covered, no practitioner within reach: zero, not empty


def test_area_rates_are_population_weighted_over_covered_people() -> None:
    access = np.array([0.001, 0.003, np.nan, np.nan])
    weight = np.array([300.0, 100.0, 50.0, 70.0])
    rates = area_rates(access, weight, np.array([0, 0, 0, 1]), 3)
    assert rates[0] == pytest.approx(10_000 * (0.3 + 0.3) / 400)  # 15 per 10,000
    assert np.isnan(rates[1]) and np.isnan(rates[2])  # no covered people / no people


def test_shapes_are_checked() -> None:
    cost = _matrix([(0, 0, 1.0)], (2, 1))
    with pytest.raises(ValueError, match="cost matrix"):
        two_step_fca(cost, np.ones(3), np.ones(1), 30.0)


# --------------------------------------------------------------------------------------
# Travel times on a network
# --------------------------------------------------------------------------------------


@pytest.fixture
def oneway_net() -> ModeNetwork:
    """A one-way loop 1 → 2 → 3 → 4 → 1 of 100 m residential blocks (as tests/test_access.py)."""
    step = 100 / 111_195
    coords = {k: (-83.0, 40.0 + (k - 1) * step) for k in (1, 2, 3, 4)}
    raw = make_raw(
        coords,
        [
            ([1, 2, 3, 4], {"highway": "residential", "oneway": "yes"}),
            ([4, 1], {"highway": "residential", "oneway": "yes"}),
        ],
    )
    return build_mode_network(raw, "drive", crs="EPSG:32617", use_maxspeed=False)


def test_times_run_from_the_person_to_the_site(oneway_net: ModeNetwork) -> None:
    net = oneway_net
    node = {int(o): i for i, o in enumerate(net.osmid)}
    sites = np.array([node[2], node[4]])
    people = np.array([node[1], node[3], node[2]])
    cost = person_site_times(
        net, sites, people, site_offsets_s=np.array([10.0, 0.0]),
        person_offsets_s=np.array([0.0, 5.0, 0.0]), limit_s=3600.0,
    )  # fmt: skip
    got = np.full(cost.shape, np.inf)
    got[cost.person, cost.site] = cost.minutes * 60.0
    # Each column is the engine's nearest-site time for that one site, plus the person's walk.
    for j, (s, off) in enumerate(zip(sites, [10.0, 0.0], strict=True)):
        ref = nearest_site_times(net, np.array([s]), site_offsets_s=np.array([off])).time_s
        np.testing.assert_allclose(got[:, j], ref[people] + [0.0, 5.0, 0.0], atol=1e-9)
    block = 100 / (40 / 3.6)
    assert got[0, 0] == pytest.approx(block + 10.0, rel=1e-3)  # 1 → 2, one block
    assert got[1, 0] > 4 * block  # 3 → 4 → 1 → 2 on the one-way loop
    assert got[2, 0] == pytest.approx(10.0)  # at the site's node: only its snap walk
    # A catchment of two blocks leaves the long trips out (and keeps a zero-minute one).
    short = person_site_times(net, sites, people, limit_s=2.1 * block)
    kept = set(zip(short.person.tolist(), short.site.tolist(), strict=True))
    assert (2, 0) in kept and (1, 0) not in kept
    assert short.minutes[short.person == 2].min() == 0.0


# --------------------------------------------------------------------------------------
# PySAL access, on the same cost matrix
# --------------------------------------------------------------------------------------


def pysal_gaussian_2sfca(
    cost: CostMatrix, demand: np.ndarray, supply: np.ndarray, catchment_min: float
) -> np.ndarray:
    """Access per person from PySAL ``access`` (``two_stage_fca``) with Dai's Gaussian weight.

    The weight is built from PySAL's own ``weights.gaussian`` (sigma = the catchment),
    shifted and rescaled to reach 0 at the catchment, which ``max_cost`` then cuts.
    """
    from access import Access, weights

    g = weights.gaussian(catchment_min)
    g0 = float(g(catchment_min))

    def dai(t: float) -> float:
        return (g(t) - g0) / (1.0 - g0)

    demand_df = pd.DataFrame({"pid": np.arange(cost.shape[0]), "pop": demand})
    supply_df = pd.DataFrame({"sid": np.arange(cost.shape[1]), "cap": supply})
    cost_df = pd.DataFrame({"origin": cost.person, "dest": cost.site, "cost": cost.minutes})
    with warnings.catch_warnings():  # PySAL uses pandas' deprecated `inplace=True`
        warnings.simplefilter("ignore")
        model = Access(
            demand_df=demand_df, demand_index="pid", demand_value="pop",
            supply_df=supply_df, supply_index="sid", supply_value="cap",
            cost_df=cost_df, cost_origin="origin", cost_dest="dest", cost_name="cost",
        )  # fmt: skip
        out = model.two_stage_fca(name="g2sfca", cost="cost", max_cost=catchment_min, weight_fn=dai)
    return out["g2sfca_cap"].reindex(np.arange(cost.shape[0])).fillna(0.0).to_numpy()


def test_pysal_agrees_on_the_toy() -> None:
    cost = _matrix([(0, 0, 0.0), (1, 0, 15.0), (1, 1, 15.0), (2, 1, 0.0), (2, 0, 40.0)], (3, 2))
    pop, cap = np.array([100.0, 200.0, 300.0]), np.array([2.0, 3.0])
    ref = pysal_gaussian_2sfca(cost, pop, cap, 30.0)
    np.testing.assert_allclose(two_step_fca(cost, pop, cap, 30.0).access, ref, rtol=1e-12)


def test_pysal_agrees_on_a_random_matrix() -> None:
    rng = np.random.default_rng(16)
    n_people, n_sites, d0 = 400, 25, 20.0
    t = rng.uniform(0, 1.5 * d0, size=(n_people, n_sites))
    t[rng.random(t.shape) < 0.4] = np.inf  # no route
    keep = t <= d0
    person, site = np.nonzero(keep)
    cost = CostMatrix(person=person, site=site, minutes=t[keep], shape=t.shape)
    pop = rng.integers(0, 300, n_people).astype(float)
    cap = rng.integers(1, 12, n_sites).astype(float)
    ours = two_step_fca(cost, pop, cap, d0).access
    ref = pysal_gaussian_2sfca(cost, pop, cap, d0)
    assert ours.max() > 0
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-15)


# --------------------------------------------------------------------------------------
# Which lists count capacity
# --------------------------------------------------------------------------------------


def test_capacity_sources_and_known_capacity() -> None:
    class Src:
        def __init__(self, name: str, columns: dict[str, str]) -> None:
            self.name, self.columns = name, columns

    sources = capacity_sources(
        [
            Src("locator", {"first_name": "First", "last_name": "Last"}),
            Src("slots", {"capacity": "Beds"}),
            Src("oeps", {"name": "name1"}),
        ]
    )
    assert sources == {"locator": "practitioners", "slots": "places"}
    prov = pd.DataFrame({"source": ["oeps; locator", "oeps", "slots", None]})
    assert known_capacity(prov, sources).tolist() == [True, False, True, False]
    assert not known_capacity(prov, {}).any()


# --------------------------------------------------------------------------------------
# Through the pipeline: Gridton with a prescriber count
# --------------------------------------------------------------------------------------

PRESCRIBERS = [3, 2, 4, 1]  # Gridton's four provider rows (the last is outside the region)


def gridton_with_capacity(root: Path) -> Path:
    """Gridton (tests/region_fixture.py) whose provider list maps a ``capacity`` column."""
    path = write_region(root)
    raw = pd.read_csv(root / "raw" / "providers.csv")
    raw["Prescribers"] = PRESCRIBERS
    raw.to_csv(root / "raw" / "providers.csv", index=False)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["providers"][0]["columns"]["capacity"] = "Prescribers"
    cfg.setdefault("tiles", {})["enabled"] = False
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def gridton_geo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The geodata folder holding Gridton's bundle (built once for the module)."""
    root = tmp_path_factory.mktemp("gridton-capacity")
    run_build(load_config(gridton_with_capacity(root)), root / "geodata", progress=False)
    return root / "geodata"


@pytest.fixture(scope="module")
def gridton(gridton_geo: Path) -> Bundle:
    return Bundle.open(gridton_geo / "gridton")


def test_pipeline_writes_rates_and_states_the_method(gridton: Bundle) -> None:
    areas = gridton.read_layer("areas")
    cap_cols = sorted(c for c in areas.columns if c.startswith("cap_"))
    # Capacity is known for both categories of the list; a catchment only where a threshold is.
    assert cap_cols == ["cap_buprenorphine_walk", "cap_methadone_drive", "cap_methadone_walk"]
    cap = gridton.manifest["stages"]["access"]["capacity"]
    assert cap["method"].startswith("Gaussian two-step floating catchment")
    assert "exp(-(t/d0)^2/2)" in cap["decay"] and cap["per_people"] == 10_000
    assert cap["sources"] == ["clinics"] and cap["unit"] == "places"
    bup = cap["by"]["buprenorphine_walk"]
    assert bup["catchment_min"] == 8 and bup["sites"] == 2 and bup["capacity"] == 6
    assert bup["sites_capacity_assumed_1"] == 0
    # Conservation through the bundle: covered people × rate / 10,000 summed over areas is
    # the capacity some covered person reaches.
    covered = areas["population"] - areas["not_covered_walk"]
    handed_out = float((covered * areas["cap_buprenorphine_walk"].fillna(0)).sum()) / PER_PEOPLE
    assert handed_out == pytest.approx(bup["capacity_reached"], rel=1e-3)
    assert bup["capacity_reached"] > 0
    # The area with no people has no value; every populated area has one.
    empty = areas["population"] == 0
    assert areas.loc[empty, "cap_buprenorphine_walk"].isna().all()
    assert areas.loc[~empty, "cap_buprenorphine_walk"].notna().all()


def test_pipeline_matches_pysal_on_the_bundle_arrays(gridton: Bundle) -> None:
    providers, people = gridton.read_layer("providers"), gridton.read_layer("people")
    areas = gridton.read_layer("areas")
    net = gridton.network("walk")
    sites = np.flatnonzero(providers["category"].eq("buprenorphine").to_numpy())
    covered = people["snap_m_walk"].to_numpy() <= gridton.manifest["settings"]["cover_m"]
    who = np.flatnonzero(covered)
    cost = person_site_times(
        net, providers["node_walk"].to_numpy()[sites], people["node_walk"].to_numpy()[who],
        site_offsets_s=providers["snap_m_walk"].to_numpy()[sites] / net.walk_speed_mps,
        person_offsets_s=people["snap_m_walk"].to_numpy()[who] / net.walk_speed_mps,
        limit_s=8 * 60.0,
    )  # fmt: skip
    weight = people["weight"].to_numpy(float)
    ref = pysal_gaussian_2sfca(cost, weight[who], providers["capacity"].to_numpy(float)[sites], 8)
    per_person = np.full(len(people), np.nan)
    per_person[who] = ref
    index = pd.Index(areas["area_id"]).get_indexer(people["area_id"])
    expected = area_rates(per_person, weight, index, len(areas))
    np.testing.assert_allclose(
        areas["cap_buprenorphine_walk"].to_numpy(float), expected.round(2), atol=0.005
    )


def test_export_dictionary_describes_the_rate(gridton: Bundle) -> None:
    from etl.outputs.export import describe_field, shapefile_names

    th = gridton.manifest["settings"]["thresholds_min"]
    unit, text = describe_field("areas", "cap_buprenorphine_walk", thresholds=th)
    assert unit == "per 10,000 people"
    assert "two-step floating catchment" in text and "8 minutes" in text and "on foot" in text
    names = shapefile_names(list(gridton.read_layer("areas").columns))
    assert names["cap_buprenorphine_walk"] == "cap_bup_wk"
    assert names["cap_methadone_drive"] == "cap_mth_dr"


def test_shapefile_export_carries_the_rate_and_its_dictionary_row(
    gridton: Bundle, tmp_path: Path
) -> None:
    import csv
    import io
    import zipfile

    import geopandas as gpd

    from etl.outputs.export import export_layers

    out = export_layers(gridton, tmp_path, layers=["areas"], fmt="shp")
    with zipfile.ZipFile(out) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("data_dictionary.csv").decode("utf-8"))))
    row = next(r for r in rows if r["full_name"] == "cap_buprenorphine_walk")
    assert row["field"] == "cap_bup_wk" and row["unit"] == "per 10,000 people"
    assert row["type"] == "number"
    shp = gpd.read_file(f"zip://{out}!areas.shp")
    want = gridton.read_layer("areas").set_index("area_id")["cap_buprenorphine_walk"]
    got = shp.set_index("area_id")["cap_bup_wk"].reindex(want.index)
    np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), atol=1e-9)


def test_a_region_without_capacity_has_no_rate(tmp_path: Path) -> None:
    cfg = yaml.safe_load(write_region(tmp_path).read_text(encoding="utf-8"))
    cfg["tiles"] = {"enabled": False}
    (tmp_path / "gridton.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    run_build(load_config(tmp_path / "gridton.yaml"), tmp_path / "geodata", progress=False)
    bundle = Bundle.open(tmp_path / "geodata" / "gridton")
    assert not [c for c in bundle.read_layer("areas").columns if c.startswith("cap_")]
    assert "capacity" not in bundle.manifest["stages"]["access"]


# --------------------------------------------------------------------------------------
# Franklin County (real data): PySAL on the same cost matrix, and the figures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def franklin_bundle(franklin: Path, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    cfg = load_config(CONFIGS / "franklin-oh.yaml")
    cfg = cfg.model_copy(update={"tiles": cfg.tiles.model_copy(update={"enabled": False})})
    geo = tmp_path_factory.mktemp("franklin-capacity")
    run_build(cfg, geo, progress=False)
    return Bundle.open(geo / "franklin-oh")


@pytest.mark.shared
@pytest.mark.xdist_group("franklin")
@pytest.mark.parametrize("mode", ["drive", "walk"])
def test_franklin_against_pysal(franklin_bundle: Bundle, mode: str) -> None:
    from etl.engine.access import routable_sites

    b = franklin_bundle
    providers, people = b.read_layer("providers"), b.read_layer("people")
    areas = b.read_layer("areas")
    cap = b.manifest["stages"]["access"]["capacity"]
    assert cap["sources"] == ["samhsa-bup-locator"] and cap["unit"] == "practitioners"
    info = cap["by"][f"buprenorphine_{mode}"]
    d0 = {"drive": 30.0, "walk": 20.0}[mode]
    assert info["catchment_min"] == d0
    net = b.network(mode)
    max_snap = b.manifest["settings"]["max_snap_m"]
    sites = np.flatnonzero(
        providers["category"].eq("buprenorphine").to_numpy()
        & routable_sites(providers, mode, max_snap_m=max_snap)
    )
    assert len(sites) == info["sites"] and 150 <= len(sites) <= 200
    # The locator's practitioners per address survive the merge: more practitioners than sites.
    assert providers["capacity"].to_numpy()[sites].sum() == info["capacity"] > len(sites)
    snap = people[f"snap_m_{mode}"].to_numpy(float)
    who = np.flatnonzero(snap <= b.manifest["settings"]["cover_m"])
    cost = person_site_times(
        net, providers[f"node_{mode}"].to_numpy()[sites], people[f"node_{mode}"].to_numpy()[who],
        site_offsets_s=providers[f"snap_m_{mode}"].to_numpy(float)[sites] / net.walk_speed_mps,
        person_offsets_s=snap[who] / net.walk_speed_mps, limit_s=d0 * 60.0,
    )  # fmt: skip
    # The cost matrix agrees with the engine's nearest-site times (access/<mode>.npz) wherever
    # the engine's nearest site is one of these (it also routes to sites that list
    # buprenorphine among their services, whose practitioners are not counted).
    arrays = b.access_arrays(mode)
    node = people[f"node_{mode}"].to_numpy()[who]
    engine_min = (
        arrays["time_buprenorphine"].astype(float)[node] + snap[who] / net.walk_speed_mps
    ) / 60
    own = np.isin(arrays["nearest_buprenorphine"][node], sites)
    nearest = cost.nearest_minutes()
    within = own & (engine_min <= d0 - 0.01)
    assert within.sum() > 0.5 * len(who) if mode == "drive" else within.sum() > 1000
    np.testing.assert_allclose(nearest[within], engine_min[within], atol=1e-3)  # float32 times
    assert np.isinf(nearest[own & (engine_min > d0 + 0.01)]).all()
    assert (nearest >= engine_min - 1e-3).all()  # never nearer than the engine's nearest

    weight = people["weight"].to_numpy(float)
    capacity = providers["capacity"].to_numpy(float)[sites]
    ours = two_step_fca(cost, weight[who], capacity, d0).access
    ref = pysal_gaussian_2sfca(cost, weight[who], capacity, d0)
    abs_diff = float(np.max(np.abs(ours - ref)))
    rel_diff = float(np.max(np.abs(ours - ref)[ref > 0] / ref[ref > 0]))
    print(
        f"\nFranklin buprenorphine {mode}: {len(cost.person):,} person-site pairs, "
        f"max abs diff {abs_diff:.3g} practitioners per person, max rel diff {rel_diff:.3g}; "
        f"median {info['median_per_10k_people']} per 10,000 (people), "
        f"{info['median_per_10k_areas']} (areas); region {info['region_per_10k']}"
    )
    assert abs_diff < 1e-12 and rel_diff < 1e-9
    # The areas layer holds the same numbers, aggregated by population.
    per_person = np.full(len(people), np.nan)
    per_person[who] = ref
    index = pd.Index(areas["area_id"]).get_indexer(people["area_id"])
    expected = area_rates(per_person, weight, index, len(areas)).round(2)
    np.testing.assert_allclose(
        areas[f"cap_buprenorphine_{mode}"].to_numpy(float), expected, atol=0.005
    )
    # Every practitioner some covered person reaches is handed out once.
    assert float(weight[who] @ ours) == pytest.approx(info["capacity_reached"], abs=0.5)
    # The figures: by car nearly everyone covered reaches a practice (5-7 per 10,000); on
    # foot half the covered people have none within 20 minutes.
    if mode == "drive":
        assert 4.0 <= info["median_per_10k_people"] <= 8.0
        assert info["people_with_none"] < 0.01 * info["people_covered"]
    else:
        assert info["median_per_10k_people"] < 2.0
        assert 0.3 < info["people_with_none"] / info["people_covered"] < 0.7


# --------------------------------------------------------------------------------------
# The map and the methods page (Gridton's bundle through the app's server)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(gridton_geo: Path):
    import app as atlas_app
    import callbacks.map as map_callbacks

    saved = dict(map_callbacks._SETTINGS)
    map_callbacks.configure(geodata=gridton_geo, default_region="gridton")
    yield atlas_app.server.test_client()
    map_callbacks._SETTINGS.update(saved)


def _tree_text(component) -> str:
    if isinstance(component, dict):
        return (
            _tree_text(component.get("props", {}).get("children")) if "props" in component else ""
        )
    if isinstance(component, list):
        return " ".join(_tree_text(c) for c in component)
    return "" if component is None else str(component)


def _find(component, wanted: str):
    if isinstance(component, dict):
        props = component.get("props", {})
        if props.get("id") == wanted:
            return props
        for v in props.values():
            found = _find(v, wanted)
            if found is not None:
                return found
    elif isinstance(component, list):
        for c in component:
            found = _find(c, wanted)
            if found is not None:
                return found
    return None


def _page(client, search: str = "", path: str = "/"):
    from tests.dash_support import call

    resp = call(
        client,
        [("page", "children")],
        [("url", "pathname", path)],
        [("url", "search", search), ("atlas-rendered", "data", None)],
    )
    return resp["page"]["children"]


def test_map_offers_practitioners_per_10000_as_a_choropleth(client, gridton: Bundle) -> None:
    from layouts.theme import CAPACITY_BREAKS, CAPACITY_COLOURS
    from viewmodel.data import areas_geojson

    page = _page(client, "?cat=buprenorphine&mode=walk&layers=capacity,sites")
    checklist = _find(page, "layers-checklist")
    labels = {o["value"]: o["label"] for o in checklist["options"]}
    assert labels["capacity"] == "Practitioners per 10,000 people (by area)"
    assert "capacity" in checklist["value"]
    layer = _find(page, "layer-capacity")
    hide = layer["hideout"]
    assert hide["show"] is True and hide["prop"] == "cap_buprenorphine_walk"
    assert hide["breaks"] == list(CAPACITY_BREAKS) and hide["colours"] == list(CAPACITY_COLOURS)
    assert layer["url"].startswith("/atlas/layers/gridton/areas.geojson")
    # The areas' GeoJSON carries the values the style reads.
    fc = json.loads(areas_geojson(gridton.read_layer("areas")))
    values = [f["properties"].get("cap_buprenorphine_walk") for f in fc["features"]]
    assert any(v and v > 0 for v in values) and None in values  # the empty area: no value
    # The legend names the unit, the catchment and every class.
    legend = _tree_text(_find(page, "legend")["children"])
    assert "Capacity per 10,000 people: buprenorphine prescriber, walking" in legend
    assert "within 8 min, Gaussian decay" in legend
    assert "0 (none within 8 min)" in legend and "over 12" in legend
    assert "no covered people" in legend
    # Off by default: the layer has no URL until it is switched on.
    off = _find(_page(client, "?cat=buprenorphine&mode=walk"), "layer-capacity")
    assert off["url"] is None and off["hideout"]["show"] is False


def test_legend_says_when_a_pair_has_no_capacity(client) -> None:
    from tests.dash_support import call

    state = {"layers": ["capacity"], "sites": [], "category": "buprenorphine", "mode": "drive",
             "threshold": 30}  # fmt: skip
    resp = call(
        client,
        [("legend", "children")],
        [("atlas-legend-state", "data", state)],
        [("atlas-region", "data", {"region": "gridton"})],
    )
    text = _tree_text(resp["legend"]["children"])
    # Gridton sets no drive threshold for buprenorphine: no catchment, no measure.
    assert "not measured for buprenorphine prescriber, driving; measured for: " in text
    assert "buprenorphine prescriber, walking" in text


def test_area_details_list_the_rates(gridton: Bundle) -> None:
    from dash import html

    from layouts.panels import area_details

    areas = gridton.read_layer("areas")
    row = areas[areas["population"] > 0].iloc[0]
    props = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
    parts = area_details(props, categories=["methadone", "buprenorphine"], modes=["drive", "walk"])
    tables = [p for p in parts if isinstance(p, html.Table)]
    caption = tables[-1].children[0].children
    assert caption.startswith("Practitioners per 10,000 people")
    assert f"{row['cap_buprenorphine_walk']:.1f}" in str(tables[-1].children[2])


def test_methods_page_states_method_catchment_and_decay(client) -> None:
    text = _tree_text(_page(client, "", "/methods"))
    assert "Practitioners per 10,000 people (capacity)" in text
    assert "Gaussian two-step floating catchment area (2SFCA; Luo & Qi 2009, Dai 2010)" in text
    assert "exp(-(t/d0)^2/2)" in text
    assert "Buprenorphine prescriber, on foot: catchment 8 min; 2 sites with 6 places" in text
