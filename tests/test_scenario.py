"""What-if scenarios: stacking, JSON, and results equal to a full rebuild with the same sites."""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.sparse import csgraph

from etl._errors import InputError
from etl.bundle.store import Bundle
from etl.engine.access import nearest_site_times, snap_points
from etl.engine.isochrones import cell_times
from etl.engine.network import ModeNetwork, build_mode_network
from etl.engine.scenario import (
    AddSite,
    BaselineAccess,
    CloseSite,
    Scenario,
    evaluate,
    load_scenario,
    place_sites,
    save_scenario,
)
from tests.conftest import CONFIGS, make_raw

CRS = "EPSG:32617"
STEP = 500 / 111_195  # about 500 m in degrees of latitude
SEC_500M = None  # filled from the network (haversine lengths)


# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------


def random_grid(seed: int, size: int = 12) -> ModeNetwork:
    """A jittered street grid with mixed classes and one-way streets (drive)."""
    rng = np.random.default_rng(seed)
    coords, ways = {}, []
    for i in range(size):
        for j in range(size):
            coords[i * size + j + 1] = (
                -83.0 + j * 0.002 + rng.normal(0, 2e-4),
                40.0 + i * 0.002 + rng.normal(0, 2e-4),
            )
    classes = ["residential", "secondary", "primary", "tertiary", "service"]
    for i in range(size):
        for j in range(size - 1):
            tags = {"highway": str(rng.choice(classes))}
            if rng.random() < 0.25:
                tags["oneway"] = str(rng.choice(["yes", "-1"]))
            ways.append(([i * size + j + 1, i * size + j + 2], tags))
            tags = {"highway": str(rng.choice(classes))}
            if rng.random() < 0.25:
                tags["oneway"] = "yes"
            ways.append(([j * size + i + 1, (j + 1) * size + i + 1], tags))
    return build_mode_network(make_raw(coords, ways), "drive", crs=CRS, use_maxspeed=False)


def grid_base(seed: int, *, max_snap_m: float = 300.0) -> BaselineAccess:
    """Providers (two categories, one far off the network), people in four areas."""
    net = random_grid(seed)
    rng = np.random.default_rng(1000 + seed)
    lon0, lat0 = net.lon.min(), net.lat.min()
    lon1, lat1 = net.lon.max(), net.lat.max()
    n_b, n_m = 6, 2
    pick = rng.choice(net.n_nodes, size=n_b + n_m, replace=False)
    jitter = rng.normal(0, 3e-4, size=(n_b + n_m, 2))
    providers = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n_b + n_m)] + ["far"],
            "name": [f"Site {i}" for i in range(n_b + n_m)] + ["Far site"],
            "category": ["buprenorphine"] * n_b + ["methadone"] * n_m + ["buprenorphine"],
            "lon": np.append(net.lon[pick] + jitter[:, 0], lon1 + 0.05),
            "lat": np.append(net.lat[pick] + jitter[:, 1], lat1),
        }
    )
    n_people = 120
    plon = rng.uniform(lon0, lon1, n_people)
    plat = rng.uniform(lat0, lat1, n_people)
    plon[:2] = lon1 + 0.04  # two people far beyond the streets: not covered
    mid_lon, mid_lat = (lon0 + lon1) / 2, (lat0 + lat1) / 2
    quad = (plon > mid_lon).astype(int) + 2 * (plat > mid_lat).astype(int)
    weight = rng.uniform(5, 50, n_people)
    people = pd.DataFrame(
        {"area_id": [f"a{q}" for q in quad], "weight": weight, "lon": plon, "lat": plat}
    )
    boxes = [
        shapely.box(lon0 - 1, lat0 - 1, mid_lon, mid_lat),
        shapely.box(mid_lon, lat0 - 1, lon1 + 1, mid_lat),
        shapely.box(lon0 - 1, mid_lat, mid_lon, lat1 + 1),
        shapely.box(mid_lon, mid_lat, lon1 + 1, lat1 + 1),
    ]
    areas = gpd.GeoDataFrame(
        {
            "area_id": [f"a{q}" for q in range(4)],
            "name": list("ABCD"),
            "population": [1000, 2000, 3000, 4000],
            "deaths": [12.0, np.nan, 30.0, 0.0],
        },
        geometry=boxes,
        crs="EPSG:4326",
    )
    return BaselineAccess.from_frames(
        net,
        providers,
        people,
        areas=areas,
        max_snap_m=max_snap_m,
        bands_min=(2, 4),
        thresholds_min={"buprenorphine": {"drive": 2.0}, "methadone": {"drive": 3.0}},
    )


def line_base() -> BaselineAccess:
    """Five nodes on a two-way residential street, 500 m apart; one site at node 0.

    People stand on the nodes (weights 1..5); nodes 0-1 are area A, 2-4 area B.
    """
    coords = {k + 1: (-83.0, 40.0 + k * STEP) for k in range(5)}
    raw = make_raw(coords, [([1, 2, 3, 4, 5], {"highway": "residential"})])
    net = build_mode_network(raw, "drive", crs=CRS, use_maxspeed=False)
    order = np.argsort(net.osmid)
    lon, lat = net.lon[order], net.lat[order]
    providers = pd.DataFrame(
        {
            "id": ["p0", "m0"],
            "name": ["Clinic", "OTP"],
            "category": ["buprenorphine", "methadone"],
            "lon": [lon[0], lon[0]],
            "lat": [lat[0], lat[0]],
        }
    )
    people = pd.DataFrame(
        {"area_id": ["A", "A", "B", "B", "B"], "weight": [1.0, 2, 3, 4, 5], "lon": lon, "lat": lat}
    )
    areas = gpd.GeoDataFrame(
        {"area_id": ["A", "B"], "name": ["A", "B"], "population": [3, 12], "deaths": [12.0, 25.0]},
        geometry=[
            shapely.box(-84, 39, -82, 40.0 + 1.5 * STEP),
            shapely.box(-84, 40.0 + 1.5 * STEP, -82, 41),
        ],
        crs="EPSG:4326",
    )
    return BaselineAccess.from_frames(
        net,
        providers,
        people,
        areas=areas,
        max_snap_m=1500,
        thresholds_min={"buprenorphine": {"drive": 1.0}},
    )


def reference_times(
    base: BaselineAccess, category: str, closed: set[str], added: list[tuple[float, float]]
) -> np.ndarray:
    """A full rebuild: one multi-source Dijkstra on the modified site list (pipeline rules)."""
    pv = base.providers
    mode = base.mode
    ok = (pv["category"] == category) & (pv[f"snap_m_{mode}"] <= base.max_snap_m)
    if "geocode_quality" in pv:
        ok &= pv["geocode_quality"] != "city"
    ok &= ~pv["id"].isin(closed)
    nodes = list(pv.loc[ok, f"node_{mode}"].astype(int))
    offs = list(pv.loc[ok, f"snap_m_{mode}"] / base.net.walk_speed_mps)
    if added:
        x, y = base.to_xy([a[0] for a in added], [a[1] for a in added])
        snap = snap_points(base.net, x, y)
        nodes += snap.node.tolist()
        offs += [
            d / base.net.walk_speed_mps if d <= base.max_snap_m else 0.0 for d in snap.distance_m
        ]
    nodes_arr = np.array(nodes, dtype=np.int64)
    res = nearest_site_times(base.net, nodes_arr, site_offsets_s=np.array(offs))
    return res.time_s


def check_nearest(result, base: BaselineAccess) -> None:
    """Each node's nearest site is one whose own travel time equals the node's time."""
    rev = base.net.csr_reverse()
    sites = result.sites
    for k in range(len(sites)):
        own = csgraph.dijkstra(rev, indices=int(sites["node"].iloc[k])) + sites["offset_s"].iloc[k]
        mine = result.nearest == k
        np.testing.assert_allclose(own[mine], result.time_s[mine], rtol=0, atol=1e-6)
    assert ((result.nearest >= 0) == np.isfinite(result.time_s)).all()


# ---------------------------------------------------------------------------------------
# Scenario objects
# ---------------------------------------------------------------------------------------


def test_scenario_stacks_undoes_and_stays_immutable() -> None:
    s0 = Scenario(name="Plan A", region="demo")
    s1 = s0.add_site("methadone", -83.0, 40.0, name="New OTP")
    s2 = s1.close_site("oeps-moud:1")
    s3 = s2.add(AddSite("naloxone", -83.1, 40.1))
    assert len(s0) == 0 and len(s1) == 1 and len(s2) == 2 and len(s3) == 3
    assert s3.undo() == s2 and s3.undo(2) == s1 and s3.undo(10) == s0
    assert s0.undo() == s0
    assert s3.remove(0).changes == (CloseSite("oeps-moud:1"), AddSite("naloxone", -83.1, 40.1))
    assert s3.renamed("Plan B").name == "Plan B" and s3.name == "Plan A"
    assert s3.describe()[1] == "Close site oeps-moud:1"
    with pytest.raises(InputError, match="no change 3"):
        s3.remove(3)


def test_scenario_json_round_trip(tmp_path) -> None:
    s = (
        Scenario(name="Plan A", region="franklin-oh")
        .add_site("buprenorphine", -82.99, 39.96, name="Clinic on Main")
        .close_site("oeps-moud:3a4a573662")
    )
    data = json.loads(s.to_json())
    assert data["format"] == "access-atlas-scenario" and data["version"] == 1
    assert data["changes"][0] == {
        "type": "add_site",
        "category": "buprenorphine",
        "lon": -82.99,
        "lat": 39.96,
        "name": "Clinic on Main",
    }
    assert Scenario.from_json(s.to_json()) == s
    path = save_scenario(s, tmp_path / "scenarios" / "plan-a.json")
    assert load_scenario(path) == s
    assert not list(path.parent.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "bad.json: not valid JSON"),
        ('{"format": "other"}', "not an Access Atlas scenario"),
        ('{"format": "access-atlas-scenario", "version": 9}', "version 9"),
        (
            '{"format": "access-atlas-scenario", "version": 1, "changes": [{"type": "close_site", '
            '"provider_id": "x"}, {"type": "move_site"}]}',
            "change 2: unknown change type 'move_site'",
        ),
        (
            '{"format": "access-atlas-scenario", "version": 1, "changes": [{"type": "add_site", '
            '"category": "methadone", "lon": 1}]}',
            "change 1: add_site change has no 'lat'",
        ),
        (
            '{"format": "access-atlas-scenario", "version": 1, "changes": [{"type": "add_site", '
            '"category": "opioids", "lon": 1, "lat": 2}]}',
            "unknown category 'opioids'",
        ),
        (
            '{"format": "access-atlas-scenario", "version": 1, "changes": [{"type": "add_site", '
            '"category": "methadone", "lon": 40, "lat": -95}]}',
            "not WGS84 degrees",
        ),
    ],
)
def test_bad_scenario_files_say_what_is_wrong(text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        Scenario.from_json(text, source="bad.json")


# ---------------------------------------------------------------------------------------
# Evaluation: hand-checked numbers
# ---------------------------------------------------------------------------------------


def test_line_add_and_close_by_hand() -> None:
    base = line_base()
    order = np.argsort(base.net.osmid)  # node indices from south to north
    t_block = float(base.net.time_s.min())  # 500 m at 40 km/h ≈ 45 s
    assert t_block == pytest.approx(500 / (40 / 3.6), rel=2e-3)
    north = (float(base.net.lon[order[4]]), float(base.net.lat[order[4]]))

    add = Scenario("north").add_site("buprenorphine", *north, name="North clinic")
    r = evaluate(base, add, category="buprenorphine", mode="drive", threshold_min=1.0)
    # Before: nodes 0, 1 within a minute (weights 1 + 2); after: also nodes 3, 4 (4 + 5).
    assert r.base_people_within == pytest.approx(3.0) and r.people_within == pytest.approx(12.0)
    assert r.people_gained == pytest.approx(9.0) and r.people_lost == 0.0
    assert r.gained[order].tolist() == [False, False, False, True, True]
    # Weighted medians: before 3 blocks (135 s), after 1 block (45 s).
    assert r.base_median_min == pytest.approx(3 * t_block / 60)
    assert r.median_min == pytest.approx(t_block / 60)
    assert r.median_change_min == pytest.approx(-2 * t_block / 60)
    # Only area B changed; its shown deaths are reported.
    assert r.areas["area_id"].tolist() == ["B"]
    assert r.areas["people_gained"].tolist() == pytest.approx([9.0])
    assert r.deaths_in_changed_areas == 25.0
    assert r.sites["id"].tolist() == ["p0", "scenario:1"]
    assert r.sites["hypothetical"].tolist() == [False, True]
    assert r.nearest[order].tolist() == [0, 0, 0, 1, 1] or r.nearest[order[2]] == 1
    summary = r.summary()
    assert summary["threshold_min"] == 1.0 and summary["people_gained"] == 9
    assert "9 people gain access" in r.headline()

    both = add.close_site("p0")
    r2 = evaluate(base, both, category="buprenorphine", threshold_min=1.0)
    assert r2.people_gained == pytest.approx(9.0) and r2.people_lost == pytest.approx(3.0)
    assert r2.closed_ids == ("p0",)
    expected = np.array([4, 3, 2, 1, 0]) * t_block
    np.testing.assert_allclose(r2.time_s[order], expected, rtol=0, atol=1e-6)
    assert set(r2.areas["area_id"]) == {"A", "B"}


def test_closing_the_last_site_says_what_it_means() -> None:
    base = line_base()
    r = evaluate(base, Scenario().close_site("p0"), category="buprenorphine", threshold_min=1.0)
    assert len(r.sites) == 0
    assert np.isinf(r.time_s).all() and (r.nearest == -1).all()
    assert r.people_lost == pytest.approx(3.0) and r.people_within == 0.0
    assert r.people_in_desert == pytest.approx(15.0)
    assert r.median_min is None and r.median_change_min is None
    assert any("leaves no buprenorphine prescriber reachable" in n for n in r.notes)
    assert len(r.desert_cells) > len(r.base_desert_cells)
    assert not r.desert_polygon().is_empty
    assert r.summary()["median_minutes_after"] is None
    # Adding a site back to the empty category is incremental from "no site at all".
    lon0, lat0 = float(base.net.lon[0]), float(base.net.lat[0])
    again = Scenario().close_site("p0").add_site("buprenorphine", lon0, lat0)
    r3 = evaluate(base, again, category="buprenorphine", threshold_min=1.0)
    assert np.isfinite(r3.time_s).all()


def test_off_network_site_is_moved_and_near_one_walks() -> None:
    base = line_base()
    lon, lat = float(base.net.lon[0]), float(base.net.lat[0])
    far = AddSite("buprenorphine", lon + 0.1, lat, name="Lake site")  # ≈ 8.5 km east
    near = AddSite("buprenorphine", lon + 0.001, lat, name="Side street")  # ≈ 85 m east
    placed = place_sites(base, [far, near])
    assert placed[0].moved and placed[0].offset_s == 0.0
    assert placed[0].snap_m == pytest.approx(8_540, rel=0.01)
    assert not placed[1].moved
    assert placed[1].offset_s == pytest.approx(placed[1].snap_m / base.net.walk_speed_mps)
    r = evaluate(base, Scenario(changes=(far,)), category="buprenorphine", threshold_min=1.0)
    assert r.placed["moved"].tolist() == [True]
    assert r.placed["lon"].iloc[0] == pytest.approx(float(base.net.lon[placed[0].node]))
    assert r.time_s[placed[0].node] == 0.0
    assert any("Lake site lay 8,5" in n and "moved" in n for n in r.notes)
    r2 = evaluate(base, Scenario(changes=(near,)), category="buprenorphine", threshold_min=1.0)
    assert any("Side street is 8" in n and "walk" in n for n in r2.notes)


def test_closures_that_change_nothing_are_noted() -> None:
    base = grid_base(0)
    sc = (
        Scenario()
        .close_site("nope")
        .close_site("far")
        .close_site("m0")
        .close_site("p1")
        .close_site("p1")
    )
    sc = Scenario(
        changes=tuple(c if c.provider_id != "m0" else CloseSite("p6") for c in sc.changes)
    )
    r = evaluate(base, sc, category="buprenorphine")
    notes = " ".join(r.notes)
    assert "nope is not in this region's data" in notes
    assert "Far site (far) was not counted before (more than 300 m from the drive" in notes
    assert "closed more than once" in notes
    assert r.closed_ids == ("p1",)  # p6 is methadone: no effect on buprenorphine
    np.testing.assert_allclose(
        r.time_s, reference_times(base, "buprenorphine", {"p1"}, []), rtol=0, atol=1e-6
    )


def test_a_category_without_sites_is_answered() -> None:
    base = grid_base(0)
    r = evaluate(base, Scenario(), category="naloxone", threshold_min=5.0)
    assert len(r.sites) == 0 and np.isinf(r.time_s).all()
    assert r.people_gained == 0 and r.base_people_within == 0
    assert any("has no naloxone distribution within 300 m" in n for n in r.notes)
    r2 = evaluate(
        base, Scenario().add_site("naloxone", -82.99, 40.01), category="naloxone", threshold_min=5.0
    )
    assert np.isfinite(r2.time_s).all() and r2.people_gained > 0


def test_bad_arguments() -> None:
    base = line_base()
    with pytest.raises(InputError, match="not 'walk'"):
        evaluate(base, Scenario(), category="buprenorphine", mode="walk")
    with pytest.raises(InputError, match="no threshold for naloxone/drive"):
        evaluate(base, Scenario(), category="naloxone")
    with pytest.raises(InputError, match="unknown category"):
        evaluate(base, Scenario(), category="opioids", threshold_min=5)
    with pytest.raises(InputError, match="positive"):
        evaluate(base, Scenario(), category="buprenorphine", threshold_min=0)


# ---------------------------------------------------------------------------------------
# Evaluation: identical to a full rebuild
# ---------------------------------------------------------------------------------------


def _random_changes(base: BaselineAccess, rng: np.random.Generator, n: int) -> list:
    ids = base.providers["id"].tolist()
    lon0, lon1 = base.net.lon.min(), base.net.lon.max()
    lat0, lat1 = base.net.lat.min(), base.net.lat.max()
    out = []
    for _ in range(n):
        if rng.random() < 0.6:
            cat = "buprenorphine" if rng.random() < 0.8 else "methadone"
            out.append(AddSite(cat, float(rng.uniform(lon0, lon1)), float(rng.uniform(lat0, lat1))))
        else:
            out.append(CloseSite(str(rng.choice(ids))))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_stacked_changes_equal_a_full_rebuild(seed: int) -> None:
    base = grid_base(seed)
    cold = grid_base(seed)  # same inputs, empty memo: every answer computed from scratch
    rng = np.random.default_rng(seed)
    changes = _random_changes(base, rng, 7)
    if seed == 0:  # one add far off the network, moved to the nearest node
        changes.insert(
            1,
            AddSite("buprenorphine", float(base.net.lon.max()) + 0.02, float(base.net.lat.mean())),
        )
    scenario = Scenario(name=f"seed {seed}")
    for change in changes:
        scenario = scenario.add(change)
        closed = {c.provider_id for c in scenario.changes if isinstance(c, CloseSite)}
        added = [
            (c.lon, c.lat)
            for c in scenario.changes
            if isinstance(c, AddSite) and c.category == "buprenorphine"
        ]
        ref = reference_times(base, "buprenorphine", closed, added)
        warm = evaluate(base, scenario, category="buprenorphine")
        np.testing.assert_allclose(warm.time_s, ref, rtol=0, atol=1e-6)
        check_nearest(warm, base)
        # The desert, updated cell by cell, equals the pipeline's recipe from scratch.
        cells, best = cell_times(base.samples(), warm.time_s)
        np.testing.assert_array_equal(warm.desert_cells, cells[~(best <= 2.0 * 60)])
        fresh = evaluate(cold, scenario, category="buprenorphine")
        np.testing.assert_allclose(fresh.time_s, warm.time_s, rtol=0, atol=1e-6)
        assert fresh.people_gained == pytest.approx(warm.people_gained)
        assert fresh.people_lost == pytest.approx(warm.people_lost)
        cold._cache.clear()
    # Undo walks back to the baseline.
    r0 = evaluate(base, scenario.undo(len(scenario)), category="buprenorphine")
    np.testing.assert_array_equal(r0.time_s, r0.base_time_s)
    assert r0.people_gained == 0 and r0.people_lost == 0 and r0.areas.empty


def test_rebuild_through_a_modified_providers_layer() -> None:
    base = grid_base(3)
    sc = (
        Scenario()
        .close_site("p0")
        .add_site("buprenorphine", -82.985, 40.012)
        .close_site("p4")
        .add_site("buprenorphine", -82.995, 40.004)
    )
    r = evaluate(base, sc, category="buprenorphine")
    pv = base.providers
    kept = pv[~pv["id"].isin(["p0", "p4"])][["id", "name", "category", "lon", "lat"]]
    new = r.placed[["id", "name", "category", "lon", "lat"]]
    rebuilt = BaselineAccess.from_frames(
        base.net, pd.concat([kept, new], ignore_index=True), base.people, max_snap_m=base.max_snap_m
    )
    after = rebuilt.baseline_state("buprenorphine")
    np.testing.assert_allclose(r.time_s, after.time_s, rtol=0, atol=1e-6)
    ids = rebuilt.providers["id"].to_numpy()[after.key]
    assert (r.nearest_ids() == ids).mean() > 0.95  # equal but for exact ties


def test_horizon_mode_is_exact_within_the_threshold() -> None:
    src = grid_base(4)
    base = BaselineAccess.from_frames(
        src.net, src.providers, src.people, max_snap_m=300, bands_min=(0.5, 1.5)
    )
    assert base.baseline_state("buprenorphine").time_s.max() > 2 * 60
    sc = Scenario().add_site("buprenorphine", -82.99, 40.02).add_site("buprenorphine", -82.98, 40.0)
    exact = evaluate(base, sc, category="buprenorphine", threshold_min=1.0)
    fast = evaluate(base, sc, category="buprenorphine", threshold_min=1.0, horizon_min=0.5)
    assert math.isinf(exact.exact_within_min)
    assert fast.exact_within_min == pytest.approx(1.5)  # the largest band is the largest bound
    assert fast.summary()["exact_within_min"] == pytest.approx(1.5)
    inside = exact.time_s <= 1.5 * 60
    np.testing.assert_allclose(fast.time_s[inside], exact.time_s[inside], rtol=0, atol=1e-6)
    assert (fast.time_s >= exact.time_s - 1e-9).all()
    np.testing.assert_array_equal(fast.gained, exact.gained)
    np.testing.assert_array_equal(fast.desert_cells, exact.desert_cells)


def test_direction_is_person_to_care_on_one_way_streets() -> None:
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
    node = {int(o): i for i, o in enumerate(net.osmid)}
    people = pd.DataFrame({"weight": [1.0] * 4, "lon": net.lon, "lat": net.lat})
    providers = pd.DataFrame(
        {
            "id": ["x"],
            "category": ["methadone"],
            "lon": [net.lon[node[1]]],
            "lat": [net.lat[node[1]]],
        }
    )
    base = BaselineAccess.from_frames(net, providers, people)
    sc = Scenario().add_site("buprenorphine", float(net.lon[node[2]]), float(net.lat[node[2]]))
    r = evaluate(base, sc, category="buprenorphine", threshold_min=1.0)
    block = 100 / (40 / 3.6)
    assert r.time_s[node[1]] == pytest.approx(block, rel=1e-3)  # 1 → 2 directly
    assert r.time_s[node[3]] == pytest.approx(5 * block, rel=1e-2)  # 3 → 4 → 1 → 2
    assert r.people_gained == 4.0  # from nothing: every covered person now within 1 min


# ---------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------


def test_layers_polygons_and_bands() -> None:
    base = grid_base(1)
    outline = shapely.box(
        base.net.lon.min(), base.net.lat.min(), base.net.lon.max(), base.net.lat.max()
    )
    base = BaselineAccess.from_frames(
        base.net,
        base.providers,
        base.people,
        areas=base.areas,
        max_snap_m=300,
        bands_min=(2, 4),
        region_outline=outline,
        thresholds_min=base.thresholds_min,
    )
    sc = Scenario("Plan").close_site("p2").add_site("buprenorphine", -82.99, 40.01, name="New")
    r = evaluate(base, sc, category="buprenorphine", threshold_min=1.0)
    layers = r.to_layers()
    sites = layers["scenario_sites"]
    assert sorted(sites["status"]) == ["added"] + ["closed"] + ["open"] * 5
    assert set(sites["scenario"]) == {"Plan"} and sites.crs == "EPSG:4326"
    assert len(layers["scenario_areas"]) == 4
    expected = {"minutes_before", "minutes_after", "share_within_after"}
    assert expected <= set(layers["scenario_areas"])
    desert = layers["scenario_desert"]
    assert desert["when"].tolist() == ["before", "after"]
    pops = [round(r.base_people_in_desert), round(r.people_in_desert)]
    assert desert["population"].tolist() == pops
    assert desert.geometry.iloc[1].within(outline.buffer(1e-9))
    change = r.desert_change()
    assert set(change) == {"left", "entered"}
    assert change["entered"].is_empty == (
        r.people_lost == 0 and len(np.setdiff1d(r.desert_cells, r.base_desert_cells)) == 0
    )
    assert not change["left"].is_empty
    bands = r.band_polygons()
    assert len(bands) == 2 and bands[0].area <= bands[1].area
    assert r.area_table(changed_only=False)["area_id"].tolist() == ["a0", "a1", "a2", "a3"]


def test_from_bundle_reads_a_written_bundle(tmp_path) -> None:
    from etl.bundle.store import write_bundle, write_manifest

    src = grid_base(2)
    net = src.net
    points = gpd.points_from_xy(src.providers.lon, src.providers.lat)
    providers = src.providers.assign(geometry=points)
    with write_bundle(tmp_path, "toy") as w:
        w.write_network(net)
        w.write_layer("providers", gpd.GeoDataFrame(providers, crs="EPSG:4326"))
        w.write_layer("people", src.people)
        w.write_layer("areas", src.areas)
        outline = gpd.GeoDataFrame(
            {"name": ["toy"]}, geometry=[src.areas.union_all()], crs="EPSG:4326"
        )
        w.write_layer("region", outline)
        res = nearest_site_times(net, src.providers["node_drive"].to_numpy()[:6])
        w.write_arrays("access/drive.npz", time_buprenorphine=res.time_s.astype(np.float32))
        write_manifest(
            w,
            {
                "region": "toy",
                "settings": {
                    "modes": ["drive"],
                    "bands_min": [5, 10],
                    "max_snap_m": 300.0,
                    "thresholds_min": {"buprenorphine": {"drive": 2.0}},
                },
            },
        )
    base = BaselineAccess.from_bundle(Bundle.open(tmp_path / "toy"), "drive")
    assert base.region == "toy" and base.bands_min == (5.0, 10.0) and base.max_snap_m == 300.0
    assert base.threshold("buprenorphine") == 2.0 and base.region_outline is not None
    assert base.categories == ["methadone", "buprenorphine"]  # canonical order
    r = evaluate(base, Scenario().close_site("p0"), category="buprenorphine")
    assert r.threshold_min == 2.0
    from etl._errors import BundleError

    with pytest.raises(BundleError, match="no 'walk' network"):
        BaselineAccess.from_bundle(Bundle.open(tmp_path / "toy"), "walk")


# ---------------------------------------------------------------------------------------
# The real Franklin County network
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def franklin_drive(franklin) -> ModeNetwork:
    from etl.inputs.osm import read_osm_file

    raw = read_osm_file(franklin / "osm" / "columbus.osm.pbf")
    return build_mode_network(raw, "drive", crs=CRS)


@pytest.mark.shared
def test_franklin_stack_equals_full_rebuild(franklin_drive: ModeNetwork) -> None:
    net = franklin_drive
    rng = np.random.default_rng(7)
    pick = rng.choice(net.n_nodes, size=8, replace=False)
    providers = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(8)],
            "category": "methadone",
            "lon": net.lon[pick] + rng.normal(0, 3e-4, 8),
            "lat": net.lat[pick] + rng.normal(0, 3e-4, 8),
        }
    )
    ppl = rng.choice(net.n_nodes, size=3000, replace=False)
    people = pd.DataFrame(
        {
            "weight": rng.uniform(1, 100, 3000),
            "lon": net.lon[ppl] + rng.normal(0, 2e-4, 3000),
            "lat": net.lat[ppl] + rng.normal(0, 2e-4, 3000),
        }
    )
    base = BaselineAccess.from_frames(
        net, providers, people, max_snap_m=1500, thresholds_min={"methadone": {"drive": 10.0}}
    )
    new = rng.choice(net.n_nodes, size=3, replace=False)
    spot = [(float(net.lon[k]) + 0.002, float(net.lat[k])) for k in new]  # ≈ 170 m off a node
    changes = [
        AddSite("methadone", *spot[0]),
        CloseSite("s3"),
        AddSite("methadone", *spot[1]),
        AddSite("methadone", -83.5, 39.9),
        CloseSite("s5"),
        AddSite("methadone", *spot[2]),
    ]
    sc = Scenario("franklin")
    for ch in changes:
        sc = sc.add(ch)
        r = evaluate(base, sc, category="methadone")
        closed = {c.provider_id for c in sc.changes if isinstance(c, CloseSite)}
        added = [(c.lon, c.lat) for c in sc.changes if isinstance(c, AddSite)]
        np.testing.assert_allclose(
            r.time_s, reference_times(base, "methadone", closed, added), rtol=0, atol=1e-6
        )
        assert np.isfinite(r.time_s).all()
    assert r.placed["moved"].tolist() == [False, False, True, False]  # -83.5 is off the extract
    assert r.people_gained + r.people_lost > 0


@pytest.mark.slow
@pytest.mark.shared
def test_franklin_bundle_baseline_matches_the_pipeline(tmp_path) -> None:
    """The baseline recomputed from a real bundle equals what compute-access stored."""
    from etl.config import load_config
    from etl.pipeline import run_build

    path = run_build(load_config(CONFIGS / "franklin-oh.yaml"), tmp_path, progress=False)
    bundle = Bundle.open(path)
    summary = bundle.manifest.get("stages", {}).get("access", {}).get("summary", {})
    areas = bundle.read_layer("areas")
    for mode in ("drive", "walk"):
        base = BaselineAccess.from_bundle(bundle, mode)
        stored = bundle.access_arrays(mode)
        for cat in base.categories:
            state = base.baseline_state(cat)
            np.testing.assert_allclose(state.time_s, stored[f"time_{cat}"], rtol=1e-6)
            assert (state.key == stored[f"nearest_{cat}"]).mean() > 0.999
            thr = base.threshold(cat) or 30.0
            r = evaluate(base, Scenario(), category=cat, threshold_min=thr)
            assert r.people_gained == 0 and r.areas.empty
            col = f"t_{cat}_{mode}"
            mine = r.area_table(changed_only=False)["minutes_before"].round(2)
            np.testing.assert_allclose(mine, areas[col], rtol=0, atol=0.011)
            entry = summary[f"{cat}_{mode}"]
            assert round(r.base_median_min, 2) == pytest.approx(entry["median_minutes"], abs=0.011)
            if "people_in_desert" in entry:
                desert = entry["people_in_desert"]
                assert round(r.base_people_in_desert) == pytest.approx(desert, abs=1)


def test_touched_groups_are_the_groups_of_streets_at_changed_nodes() -> None:
    from etl.engine.scenario import _node_groups, _touched_groups

    base = grid_base(2)
    samples = base.samples()
    rng = np.random.default_rng(4)
    group = rng.integers(0, 40, len(samples))
    csr = _node_groups(samples, group, base.net.n_nodes)
    for share in (0.0, 0.01, 0.2, 1.0):
        changed = rng.random(base.net.n_nodes) < share
        want = np.unique(group[changed[samples.a] | changed[samples.b]])
        got = _touched_groups(csr, changed)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


def test_sites_table_is_the_existing_sites_then_the_added_ones() -> None:
    base = grid_base(5)
    add = AddSite("buprenorphine", float(base.net.lon[3]), float(base.net.lat[3]), name="New")
    first = evaluate(base, Scenario(), category="buprenorphine")
    first.sites["name"] = "changed"  # a caller's edit does not reach the next result
    for scenario in (
        Scenario(),
        Scenario(changes=(add,)),
        Scenario(changes=(add, CloseSite("p1"), add)),
        Scenario(changes=(*(CloseSite(f"p{i}") for i in range(6)), add)),
    ):
        r = evaluate(base, scenario, category="buprenorphine")
        rows = base.site_rows("buprenorphine")
        rows = rows[~np.isin(rows, [base.provider_ids[i] for i in r.closed_ids])]
        existing = pd.DataFrame(
            {
                "id": base.providers["id"].to_numpy()[rows],
                "name": base.providers["name"].to_numpy()[rows],
                "category": "buprenorphine",
                "lon": base.providers["lon"].to_numpy(float)[rows],
                "lat": base.providers["lat"].to_numpy(float)[rows],
                "node": base.providers["node_drive"].to_numpy()[rows],
                "snap_m": base.providers["snap_m_drive"].to_numpy(float)[rows],
                "offset_s": base.providers["snap_m_drive"].to_numpy(float)[rows]
                / base.net.walk_speed_mps,
                "hypothetical": False,
                "provider_row": rows,
            }
        )
        added = r.placed[["id", "name", "category", "lon", "lat", "node", "snap_m", "offset_s"]]
        want = pd.concat(
            [existing, added.assign(hypothetical=True, provider_row=-1)]
            if len(added)
            else [existing],
            ignore_index=True,
        )
        pd.testing.assert_frame_equal(r.sites, want, check_exact=True)
        assert r.placed["name"].tolist() == ["New"] * scenario.changes.count(add)


def test_median_after_a_change_equals_sorting_everyone() -> None:
    from etl.engine.scenario import _base_sorted_times, _median_after, weighted_median_min

    base = grid_base(3)
    pa = base._people_arrays()
    w = pa["weight"][pa["covered"]].copy()
    v_old, order = _base_sorted_times(base, "buprenorphine")
    assert len(order) > 20 and np.all(np.diff(v_old[order]) >= 0)
    rng = np.random.default_rng(8)
    tied = 0
    for trial in range(200):
        v = v_old.copy()
        hit = rng.random(len(v)) < rng.choice([0.0, 0.05, 0.3, 1.0])
        v[hit] = rng.uniform(0, 2 * np.nanmax(v_old[np.isfinite(v_old)]), int(hit.sum()))
        v[hit & (rng.random(len(v)) < 0.1)] = np.inf
        v[hit & (rng.random(len(v)) < 0.05)] = np.nan
        if trial % 4 == 3 and hit.any():  # a changed time equal to another person's
            v[np.flatnonzero(hit)[0]] = v_old[order[len(order) // 2]]
            tied += 1
        assert _median_after(base, "buprenorphine", v, w) == weighted_median_min(v, w)
    assert tied
    unreachable = np.full(len(v_old), np.inf)
    assert _median_after(base, "buprenorphine", unreachable, w) is None


# ---------------------------------------------------------------------------------------
# Bounded closure: only what the closed sites served is searched again
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_bounded_close_equals_a_full_search(seed: int) -> None:
    base = grid_base(seed)
    rng = np.random.default_rng(50 + seed)
    baseline = base.baseline_state("buprenorphine")
    rows = base.site_rows("buprenorphine")
    for k in (1, 2, len(rows) - 1, len(rows)):  # one, two, all but one, every site
        closed = tuple(sorted(int(r) for r in rng.choice(rows, size=k, replace=False)))
        got = base._close(baseline, "buprenorphine", closed)
        want = base._full("buprenorphine", closed, ())
        np.testing.assert_allclose(got.time_s, want.time_s, rtol=0, atol=1e-6)
        assert ((got.key >= 0) == np.isfinite(got.time_s)).all()
        assert not np.isin(got.key, closed).any()  # nobody is sent to a closed site
        # each node's site is one whose own time equals the node's time
        p_node, p_walk, _ = base._provider_arrays()
        rev = base.net.csr_reverse()
        for r in np.unique(got.key[got.key >= 0]):
            own = csgraph.dijkstra(rev, indices=int(p_node[r])) + p_walk[r]
            mine = got.key == r
            np.testing.assert_allclose(own[mine], got.time_s[mine], rtol=0, atol=1e-6)
        # only the nodes the closed sites served changed
        untouched = ~np.isin(baseline.key, closed)
        np.testing.assert_array_equal(got.time_s[untouched], baseline.time_s[untouched])


def test_bounded_close_with_two_sites_on_one_node() -> None:
    base = grid_base(2)
    pv = base.providers.copy()
    twin = pv.iloc[[0]].assign(id="twin", name="Twin site")
    twin["lon"] = twin["lon"] + 1e-6  # the same street node, a slightly longer walk
    both = BaselineAccess.from_frames(
        base.net, pd.concat([pv, twin], ignore_index=True), base.people, max_snap_m=300.0
    )
    baseline = both.baseline_state("buprenorphine")
    closed = (int(both.provider_ids["p0"]),)
    got = both._close(baseline, "buprenorphine", closed)
    want = both._full("buprenorphine", closed, ())
    np.testing.assert_allclose(got.time_s, want.time_s, rtol=0, atol=1e-6)
    served = baseline.key == closed[0]
    assert served.any() and (got.key[served] == both.provider_ids["twin"]).mean() > 0.5
