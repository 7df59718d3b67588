"""The What-if panel: its pure helpers (viewmodel/scenario.py) and its callbacks as functions.

A session fixture builds the fictional demo region (Millbrook County, about 6 s); its
methadone desert lies west of the river, where one suggested site brings 544 people within
30 minutes by car. Saved scenarios go to a temporary geodata folder per test.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from dash.exceptions import PreventUpdate

os.environ.setdefault("ACCESS_ATLAS_WARM", "0")

from etl._errors import InputError
from etl.config import load_config
from etl.engine.network import build_mode_network
from etl.engine.scenario import AddSite, BaselineAccess, CloseSite, Scenario, evaluate
from etl.pipeline import run_build
from tests.conftest import CONFIGS, make_raw
from viewmodel import scenario as aps
from viewmodel.data import RegionData, region_data

SETTLED = {"category": "methadone", "mode": "drive", "threshold": 30}


@pytest.fixture(scope="session")
def geo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("atlas-scenario")
    (root / "configs").mkdir()
    cfg = root / "configs" / "demo.yaml"
    shutil.copy(CONFIGS / "demo.yaml", cfg)
    run_build(load_config(cfg), root / "geodata", progress=False)
    return root / "geodata"


@pytest.fixture(scope="session")
def rd(geo: Path) -> RegionData:
    return region_data(geo, "demo")


@pytest.fixture(scope="session")
def base(rd: RegionData) -> BaselineAccess:
    return aps.baseline_access(rd, "drive")


@pytest.fixture(scope="session")
def desert_spot(base: BaselineAccess) -> tuple[float, float]:
    """Where the one useful methadone site goes (the first suggestion)."""
    data = aps.suggestions(base, Scenario(), category="methadone", threshold_min=30, k=1)
    item = data["items"][0]
    return item["lon"], item["lat"]


def _text(component: Any) -> str:
    """All text of a component tree (Dash components, lists, strings)."""
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    if isinstance(component, dict):
        return _text(component.get("props", {}).get("children"))
    return _text(getattr(component, "children", None))


def _find(component: Any, cid: str) -> Any:
    if isinstance(component, list | tuple):
        for c in component:
            hit = _find(c, cid)
            if hit is not None:
                return hit
        return None
    if getattr(component, "id", None) == cid:
        return component
    return _find(getattr(component, "children", None), cid) if component is not None else None


# ---------------------------------------------------------------------------------------
# Saving: names, folders and path traversal
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Two new sites, west side", "two-new-sites-west-side"),
        ("../../etc/passwd", "etc-passwd"),
        ("..\\..\\windows\\system32", "windows-system32"),
        ("/absolute/path.json", "absolute-path-json"),
        ("Clínica Esperanza — cierre", "clinica-esperanza-cierre"),
        ("", "scenario"),
        ("....", "scenario"),
        ("日本語", "scenario"),
        ("x" * 200, "x" * 60),
        (None, "scenario"),
    ],
)
def test_slugify(name: Any, slug: str) -> None:
    assert aps.slugify(name) == slug


@pytest.mark.parametrize("region", ["../demo", "a/b", ".hidden", "", "demo\x00", "dé"])
def test_scenario_dir_refuses_region_names_that_are_not_plain(tmp_path: Path, region: str) -> None:
    with pytest.raises(InputError, match="not a region name"):
        aps.scenario_dir(tmp_path, region)


@pytest.mark.parametrize("slug", ["../x", "A-b", "x.json", "", "-x", "a/b", "x" * 61, "..%2f"])
def test_scenario_path_refuses_slugs_it_does_not_make(tmp_path: Path, slug: str) -> None:
    with pytest.raises(InputError, match="not a saved scenario's name"):
        aps.scenario_path(tmp_path, "demo", slug)


def test_a_symlink_out_of_the_saved_folder_is_refused(tmp_path: Path) -> None:
    geodata, outside = tmp_path / "geodata", tmp_path / "outside"
    outside.mkdir()
    (geodata / "saved").mkdir(parents=True)
    (geodata / "saved" / "demo").symlink_to(outside, target_is_directory=True)
    scenario = Scenario(name="Sneaky").add_site("methadone", -40.0, 40.0)
    with pytest.raises(InputError, match="outside the saved folder"):
        aps.save_named(geodata, scenario, region="demo")
    with pytest.raises(InputError, match="outside the saved folder"):
        aps.load_saved(geodata, "demo", "sneaky")
    assert aps.list_saved(geodata, "demo") == []
    assert list(outside.rglob("*")) == []


def test_save_list_and_load_stay_inside_the_saved_folder(tmp_path: Path) -> None:
    geodata = tmp_path / "geodata"
    scenario = (
        Scenario(name="../../../../tmp/evil name")
        .add_site("methadone", -40.01, 40.02, name="West clinic")
        .close_site("otp-directory:abc")
    )
    path = aps.save_named(geodata, scenario, region="demo")
    assert path == (geodata / "saved" / "demo" / "scenarios" / "tmp-evil-name.json").resolve()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [path]
    data = json.loads(path.read_text())
    assert data["region"] == "demo" and data["name"] == "../../../../tmp/evil name"
    # a second scenario, a stray file and a broken one in the folder
    aps.save_named(geodata, Scenario(name="Second").add_site("pharmacy", -40, 40), region="demo")
    (path.parent / "notes.txt").write_text("not a scenario")
    (path.parent / "broken.json").write_text("{not json")
    listed = aps.list_saved(geodata, "demo")
    assert sorted((i["slug"], i["changes"]) for i in listed) == [
        ("second", 1),
        ("tmp-evil-name", 2),
    ]
    loaded = aps.load_saved(geodata, "demo", "tmp-evil-name")
    assert loaded.changes == scenario.changes and loaded.region == "demo"
    with pytest.raises(InputError, match="no saved scenario 'missing'"):
        aps.load_saved(geodata, "demo", "missing")
    with pytest.raises(InputError, match="not valid JSON"):
        aps.load_saved(geodata, "demo", "broken")
    # a file of another region copied in is refused
    other = Scenario(name="Other", region="franklin-oh").add_site("methadone", -83, 40)
    (path.parent / "other.json").write_text(other.to_json())
    with pytest.raises(InputError, match="region 'franklin-oh', not 'demo'"):
        aps.load_saved(geodata, "demo", "other")
    assert aps.list_saved(geodata, "nowhere") == [] and aps.list_saved(geodata, "../x") == []


def test_an_empty_scenario_is_not_saved(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no changes yet"):
        aps.save_named(tmp_path, Scenario(name="Empty"), region="demo")
    assert not (tmp_path / "saved").exists()


# ---------------------------------------------------------------------------------------
# The store and the edits
# ---------------------------------------------------------------------------------------


def test_store_round_trip_and_what_it_refuses() -> None:
    assert aps.scenario_from_store(None, region="demo") == Scenario(region="demo")
    s = Scenario(name="A\x07 plan\n", region="demo").add_site("methadone", -40, 40)
    back = aps.scenario_from_store(aps.scenario_to_store(s), region="demo")
    assert back.changes == s.changes and back.name == "A plan"
    # a stale tab of another region starts over instead of mixing regions
    other = Scenario(region="franklin-oh").add_site("methadone", -83, 40)
    assert len(aps.scenario_from_store(other.to_dict(), region="demo")) == 0
    too_many = Scenario(region="demo").extend(
        AddSite("pharmacy", -40, 40) for _ in range(aps.MAX_CHANGES + 1)
    )
    with pytest.raises(InputError, match=f"at most {aps.MAX_CHANGES} changes"):
        aps.scenario_from_store(too_many.to_dict(), region="demo")
    with pytest.raises(InputError, match="not an Access Atlas scenario"):
        aps.scenario_from_store({"changes": []}, region="demo")
    bad = {**s.to_dict(), "changes": [{"type": "add_site", "category": "x", "lon": 0, "lat": 0}]}
    with pytest.raises(InputError, match="change 1"):
        aps.scenario_from_store(bad, region="demo")


def test_edits_name_sites_close_once_and_undo(base: BaselineAccess) -> None:
    s = aps.add_site(Scenario(region="demo"), category="methadone", lon=-40, lat=40)
    s = aps.add_site(s, category="methadone", lon=-40.01, lat=40)
    assert [c.name for c in s.changes] == ["New site 1", "New site 2"]
    pid = str(base.providers["id"].iloc[0])
    s, note = aps.close_site(s, pid, providers=base.providers)
    assert note is None and s.changes[-1] == CloseSite(pid)
    same, note = aps.close_site(s, pid, providers=base.providers)
    assert same is s and "already closed" in note
    with pytest.raises(InputError, match="not in this region's provider lists"):
        aps.close_site(s, "no-such-site", providers=base.providers)
    assert aps.undo(s).changes == s.changes[:-1]
    assert len(aps.undo(Scenario())) == 0
    full = Scenario().extend(AddSite("pharmacy", -40, 40) for _ in range(aps.MAX_CHANGES))
    with pytest.raises(InputError, match="at most"):
        aps.add_site(full, category="pharmacy", lon=-40, lat=40)


# ---------------------------------------------------------------------------------------
# What the panel says
# ---------------------------------------------------------------------------------------


def test_a_site_in_the_desert_gains_people(
    base: BaselineAccess, desert_spot: tuple[float, float]
) -> None:
    lon, lat = desert_spot
    s = aps.add_site(Scenario(region="demo"), category="methadone", lon=lon, lat=lat)
    view = aps.scenario_view(base, s, category="methadone", threshold_min=30)
    result = evaluate(base, s, category="methadone", threshold_min=30)
    assert view.summary["people_gained"] == round(result.people_gained) == 544
    assert view.summary["people_lost"] == 0
    assert view.lead == (
        "Within 30 min by car of an opioid treatment program (methadone): 544 people gain "
        "access; nobody loses it."
    )
    rows = {r["label"]: r for r in view.comparison}
    assert rows["Sites of this care"] == {
        "label": "Sites of this care",
        "before": "3",
        "after": "4",
        "change": "+1",
    }
    desert = rows["People beyond 30 min (desert)"]
    assert desert["before"] == "1,216" and desert["change"] == "−544"
    assert desert["after"] == f"{round(result.people_in_desert):,}"
    assert rows["People within 30 min"]["change"] == "+544"
    assert any(s.startswith("Median travel time by car:") for s in view.statements)
    assert any("not published by area" in s for s in view.statements)  # county figures only
    kinds = [f["properties"]["kind"] for f in view.change_geojson["features"]]
    assert kinds == ["gain"]
    gain = shapely.geometry.shape(view.change_geojson["features"][0]["geometry"])
    assert gain.area < result.desert_polygon(before=True).area  # only the cells that change
    # drawn like the map's minute bands: not clipped to the county (the desert runs past it)
    assert gain.area > result.desert_change()["left"].area
    sites = view.sites_geojson["features"]
    assert [f["properties"]["status"] for f in sites] == ["added"]
    assert view.changes == [
        {
            "text": f"Add 'New site 1' (opioid treatment program (methadone)) at {lat:.5f}, "
            f"{lon:.5f}",
            "relevant": True,
        }
    ]
    assert view.areas and view.areas[0]["gained"] != "0"
    json.dumps(view.summary)  # JSON-ready


def test_the_map_updates_sit_on_the_served_baseline(
    rd: RegionData, base: BaselineAccess, desert_spot: tuple[float, float]
) -> None:
    """The bands and area values sent replace exactly what the served layers hold."""
    from viewmodel.scenario_map import area_values, band_minutes

    cells, best = rd.cell_times("methadone", "drive")
    base_cells, base_best = base.baseline_cells("methadone")
    np.testing.assert_array_equal(cells, base_cells)
    np.testing.assert_array_equal(band_minutes(best), band_minutes(base_best))
    layer = rd.layer("areas").set_index("area_id")["t_methadone_drive"]
    shown = {k: None if pd.isna(v) else round(float(v), 1) for k, v in layer.items()}
    empty = evaluate(base, Scenario(), category="methadone", threshold_min=30)
    assert area_values(empty, changed_only=False) == shown

    lon, lat = desert_spot
    s = aps.add_site(Scenario(region="demo", name="West"), category="methadone", lon=lon, lat=lat)
    view = aps.scenario_view(base, s, category="methadone", threshold_min=30)
    assert view.showing == "Showing: scenario “West” (1 change)"
    bands = view.bands_geojson["features"]
    assert bands and {f["properties"]["scn"] for f in bands} == {"band"}
    # the new site's neighbourhood is now a few minutes away
    assert min(f["properties"]["m"] for f in bands) <= 5
    over = view.area_overrides
    assert over["prop"] == "t_methadone_drive" and over["changes"] == 1
    assert over["areas"] and all(over["areas"][k] != shown[k] for k in over["areas"])
    assert all(v is None or v < shown[k] for k, v in over["areas"].items())  # only faster
    grid = rd.layer("grid")
    assert base.grid_res == rd.manifest["settings"]["h3_resolution"]
    assert over["grid"] and set(over["grid"]) <= set(grid["h3"])
    json.dumps(over)


def test_closing_every_site_says_what_it_means(base: BaselineAccess) -> None:
    s = Scenario(region="demo")
    for pid in base.providers.loc[base.offers("methadone"), "id"]:
        s, _ = aps.close_site(s, str(pid), providers=base.providers)
    view = aps.scenario_view(base, s, category="methadone", threshold_min=30)
    assert view.summary["sites_after"] == 0
    assert view.summary["people_gained"] == 0 and view.summary["people_lost"] == 149_553
    assert "nobody gains access and 149,553 people lose access" in view.lead
    assert any("leaves no opioid treatment program" in n for n in view.notes)
    assert [f["properties"]["kind"] for f in view.change_geojson["features"]] == ["loss"]
    assert {f["properties"]["status"] for f in view.sites_geojson["features"]} == {"closed"}
    assert view.statements[0] == (
        "Median travel time by car: 4.4 min before; after, nobody can reach this care by car."
    )
    assert (
        view.statements[1] == "People in the desert (beyond 30 min): 1,216 before, 150,770 after."
    )


def test_a_site_far_off_the_network_says_how_far_it_moved(base: BaselineAccess) -> None:
    s = aps.add_site(Scenario(region="demo"), category="methadone", lon=-41.0, lat=40.0)
    view = aps.scenario_view(base, s, category="methadone", threshold_min=30)
    assert any("m from the nearest street" in n and "moved there" in n for n in view.notes)
    moved = view.sites_geojson["features"][0]["properties"]["moved_m"]
    assert moved > 60_000


def test_changes_for_other_care_are_kept_and_said(base: BaselineAccess) -> None:
    pharmacy = str(base.providers.loc[base.providers["category"] == "pharmacy", "id"].iloc[0])
    s = Scenario(region="demo").add_site("buprenorphine", -40.0, 40.0).close_site(pharmacy)
    view = aps.scenario_view(base, s, category="methadone", threshold_min=30)
    assert view.lead.startswith("None of the changes concern opioid treatment program")
    assert [c["relevant"] for c in view.changes] == [False, False]
    assert any("2 of the changes concern other care" in n for n in view.notes)
    assert [f["properties"]["relevant"] for f in view.sites_geojson["features"]] == [False, False]


def _area_death_base() -> BaselineAccess:
    """Five nodes 500 m apart on a street; a site at node 0; areas A (0-1), B (2-3), C (4).

    B's overdose count is suppressed (NaN, flagged), A has 12 deaths, C 25.
    """
    step = 500 / 111_195
    coords = {k + 1: (-83.0, 40.0 + k * step) for k in range(5)}
    raw = make_raw(coords, [([1, 2, 3, 4, 5], {"highway": "residential"})])
    net = build_mode_network(raw, "drive", crs="EPSG:32617", use_maxspeed=False)
    lat = 40.0 + np.arange(5) * step
    providers = pd.DataFrame(
        {"id": ["p0"], "name": ["Clinic"], "category": ["methadone"], "lon": [-83.0], "lat": [40.0]}
    )
    people = pd.DataFrame(
        {
            "area_id": ["A", "A", "B", "B", "C"],
            "weight": [10.0, 20, 30, 40, 50],
            "lon": -83.0,
            "lat": lat,
        }
    )
    cut = [40.0 + 1.5 * step, 40.0 + 3.5 * step]
    areas = gpd.GeoDataFrame(
        {
            "area_id": ["A", "B", "C"],
            "name": ["Area A", "Area B", "Area C"],
            "population": [30, 70, 50],
            "deaths": [12.0, np.nan, 25.0],
            "suppressed": [False, True, False],
            "period": "2019-2023",
        },
        geometry=[
            shapely.box(-84, 39, -82, cut[0]),
            shapely.box(-84, cut[0], -82, cut[1]),
            shapely.box(-84, cut[1], -82, 41),
        ],
        crs="EPSG:4326",
    )
    return BaselineAccess.from_frames(
        net, providers, people, areas=areas, thresholds_min={"methadone": {"drive": 0.5}}
    )


def test_deaths_in_changed_areas_never_include_a_suppressed_count() -> None:
    base = _area_death_base()
    s = Scenario().add_site("methadone", -83.0, 40.0 + 4 * 500 / 111_195)  # at node 4
    view = aps.scenario_view(base, s, category="methadone", threshold_min=0.5)
    deaths = next(t for t in view.statements if t.startswith("Overdose deaths"))
    assert deaths == (
        "Overdose deaths in the 2 areas whose access changes: 25 (2019-2023); 1 of these "
        "areas has its count suppressed for privacy (1–9 deaths) or not published, not "
        "included."
    )
    assert [a["name"] for a in view.areas] == ["Area C", "Area B"]


def _top_areas_row_by_row(areas: pd.DataFrame, n: int = 5) -> list[dict[str, Any]]:
    """The panel's top areas read one ``iloc`` row at a time (the reference)."""
    moved = areas["people_gained"].to_numpy(float) + areas["people_lost"].to_numpy(float)
    dt = np.abs(np.nan_to_num(areas["minutes_change"].to_numpy(float)))
    out = []
    for i in np.lexsort((-dt, -moved))[:n]:
        row = areas.iloc[int(i)]
        name = row.get("name") if "name" in areas else None
        out.append(
            {
                "area_id": str(row["area_id"]),
                "name": str(name) if isinstance(name, str) and name else str(row["area_id"]),
                "gained": aps.people(row["people_gained"]),
                "lost": aps.people(row["people_lost"]),
                "before": aps.minutes(
                    None if np.isnan(row["minutes_before"]) else row["minutes_before"]
                ),
                "after": aps.minutes(
                    None if np.isnan(row["minutes_after"]) else row["minutes_after"]
                ),
            }
        )
    return out


@pytest.mark.parametrize("names", [True, False])
@pytest.mark.parametrize("ids", ["text", "numbers"])
def test_top_areas_read_as_their_rows(ids: str, names: bool) -> None:
    from types import SimpleNamespace

    areas = pd.DataFrame(
        {
            "area_id": list("ABCDEF") if ids == "text" else [11, 12, 13, 14, 15, 16],
            "name": ["Area A", None, "", "Area D", "Area E", "Area F"],
            "minutes_before": [10.0, np.nan, 12.5, 3.0, 8.0, 9.0],
            "minutes_after": [8.0, 20.0, np.nan, 3.0, 7.5, 9.0],
            "minutes_change": [-2.0, np.nan, np.nan, 0.0, -0.5, 0.0],
            "people_gained": [120.4, 0.0, 0.0, 0.0, 35.6, 0.0],
            "people_lost": [0.0, 0.0, 44.5, 0.0, 0.0, 2.0],
        }
    )
    if not names:  # with numeric ids, every column a number: iloc gives the rows as floats
        areas = areas.drop(columns="name")
    got = aps._top_areas(SimpleNamespace(areas=areas))
    assert got == _top_areas_row_by_row(areas)
    assert len(got) == 5 and got[1]["lost"] == "44" and got[1]["after"] == "—"
    if ids == "text":
        assert [a["name"] for a in got] == (
            ["Area A", "C", "Area E", "Area F", "B"] if names else ["A", "C", "E", "F", "B"]
        )


def test_change_lines_name_the_closed_sites(base: BaselineAccess) -> None:
    pid = str(base.providers["id"].iloc[0])
    for change in (
        CloseSite(pid),
        CloseSite("no-such-site"),
        AddSite("methadone", -83.0, 40.0, name="New clinic"),
    ):
        assert aps._describe(base, change) == aps.describe_change(change, base.providers)


# ---------------------------------------------------------------------------------------
# Suggestions and export
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 11, "abc", 2.5, None, float("nan")])
def test_k_out_of_range_is_refused(base: BaselineAccess, k: Any) -> None:
    with pytest.raises(InputError, match="whole number from 1 to 10"):
        aps.suggestions(base, Scenario(), category="methadone", threshold_min=30, k=k)


def test_suggestions_more_than_useful_are_answered_and_accepted(base: BaselineAccess) -> None:
    data = aps.suggestions(base, Scenario(), category="methadone", threshold_min=30, k="10")
    assert data["k"] == 10 and len(data["items"]) == 1
    assert data["items"][0]["people_added"] == 544 and data["blocked"] is True
    assert data["message"].startswith("1 of the 10 sites asked for are suggested")
    layer = aps.suggestions_geojson(data)
    assert [f["properties"]["rank"] for f in layer["features"]] == [1]
    s = aps.accept_suggestions(Scenario(region="demo"), data)
    assert s.changes == (
        AddSite("methadone", data["items"][0]["lon"], data["items"][0]["lat"], "Suggested site 1"),
    )
    with pytest.raises(InputError, match="no suggestions"):
        aps.accept_suggestions(s, {"items": []})
    with pytest.raises(InputError, match="malformed"):
        aps.accept_suggestions(s, {"category": "methadone", "items": [{"lon": 1}]})
    # on top of the accepted site nothing more is needed within reach
    again = aps.suggestions(base, s, category="methadone", threshold_min=30, k=3)
    assert again["items"] == [] and "stay beyond" in again["message"]


@pytest.mark.parametrize("fmt", ["geojson", "csv"])
def test_export_zip_holds_the_layers_and_no_internal_columns(
    base: BaselineAccess, rd: RegionData, desert_spot: tuple[float, float], fmt: str
) -> None:
    pid = str(base.providers.loc[base.offers("methadone"), "id"].iloc[0])
    s = Scenario(name="West clinic", region="demo").add_site("methadone", *desert_spot)
    s = s.close_site(pid)
    result = evaluate(base, s, category="methadone", threshold_min=30)
    name, data = aps.export_zip(result, fmt=fmt, manifest=rd.manifest)
    assert name == f"demo-west-clinic-methadone-drive-{fmt}.zip"
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(zf.namelist()) == sorted(
        [f"scenario_{x}.{fmt}" for x in ("sites", "areas", "desert")]
        + ["scenario.json", "README.txt"]
    )
    readme = zf.read("README.txt").decode()
    assert "FICTIONAL" in readme and "Threshold: 30 min" in readme and "1-9" in readme
    assert Scenario.from_json(zf.read("scenario.json").decode()).changes == s.changes
    if fmt == "geojson":
        sites = gpd.read_file(io.BytesIO(zf.read("scenario_sites.geojson")))
        desert = gpd.read_file(io.BytesIO(zf.read("scenario_desert.geojson")))
        assert desert["when"].tolist() == ["before", "after"]
        assert desert.geometry.iloc[1].area < desert.geometry.iloc[0].area
    else:
        sites = pd.read_csv(io.BytesIO(zf.read("scenario_sites.csv")))
        areas = pd.read_csv(io.BytesIO(zf.read("scenario_areas.csv")))
        assert "geometry" not in areas and len(areas) == len(base.areas)
    assert sorted(sites["status"]) == ["added", "closed", "open", "open"]
    assert not {"node", "provider_row", "offset_s"} & set(sites.columns)
    with pytest.raises(InputError, match="unknown export format"):
        aps.export_zip(result, fmt="shp")


def test_the_baseline_is_loaded_once_per_build_and_mode(rd: RegionData) -> None:
    a = aps.baseline_access(rd, "drive")
    assert aps.baseline_access(rd, "drive") is a and aps.is_loaded(rd, "drive")
    walk = aps.baseline_access(rd, "walk")
    assert walk is not a and walk.mode == "walk"


# ---------------------------------------------------------------------------------------
# The callbacks as plain functions
# ---------------------------------------------------------------------------------------


def _respond(rd: RegionData, trigger: str, store: Any = None, **kw: Any):
    from callbacks.scenario import respond

    kw.setdefault("settled", SETTLED)
    return respond(trigger, rd=rd, store=store, **kw)


def test_respond_opens_the_scenario_a_link_carried(
    rd: RegionData, desert_spot: tuple[float, float]
) -> None:
    from dash import no_update
    from dash.exceptions import PreventUpdate

    from viewmodel.state import decode_scenario, encode_scenario

    lon, lat = desert_spot
    added = _respond(rd, "scenario-action", action={"kind": "add", "lon": lon, "lat": lat})
    linked = decode_scenario(encode_scenario(added.store))  # what the page gets from w=
    r = _respond(rd, "scenario-action", action={"kind": "restore", "scenario": linked})
    assert r.store["changes"] == added.store["changes"]
    assert _text(_find(r.result, "scenario-gained")) == _text(
        _find(added.result, "scenario-gained")
    )
    message = _text(r.message)
    assert "Opened the scenario in the link" in message and message.endswith("1 change.")
    # A link whose change is not valid says so; an empty one does nothing.
    bad = {**linked, "changes": [{"type": "add_site", "category": "unicorns", "lon": 0}]}
    r_bad = _respond(rd, "scenario-action", action={"kind": "restore", "scenario": bad})
    assert r_bad.store is no_update  # the panel keeps what it had
    assert _text(r_bad.message) == (
        "The scenario in this link cannot be opened (change 1: add_site change has no 'lat' "
        "field); the map shows the data."
    )
    with pytest.raises(PreventUpdate):
        _respond(rd, "scenario-action", action={"kind": "restore", "scenario": None})


def test_respond_adds_undoes_and_starts_over(
    rd: RegionData, desert_spot: tuple[float, float], tmp_path: Path
) -> None:
    from dash import no_update

    lon, lat = desert_spot
    r = _respond(rd, "scenario-action", action={"kind": "add", "lon": lon, "lat": lat, "n": 1})
    assert len(r.store["changes"]) == 1 and r.store["region"] == "demo"
    assert "Added New site 1" in _text(r.message)
    assert _text(_find(r.result, "scenario-gained")) == "544"
    assert r.undo_disabled is False and r.suggestions is no_update
    assert [f["properties"]["kind"] for f in r.change["features"]] == ["gain"]
    assert r.bands["features"] and r.areas["prop"] == "t_methadone_drive"
    assert r.areas["showing"].startswith("Showing: scenario")
    # the map centre, as dash-leaflet reports it
    r2 = _respond(rd, "scenario-add-centre", r.store, centre=[40.0, -39.97])
    assert [c["name"] for c in r2.store["changes"]] == ["New site 1", "New site 2"]
    r3 = _respond(rd, "scenario-undo", r2.store)
    assert r3.store["changes"] == r.store["changes"]
    assert "Undone: Add 'New site 2'" in _text(r3.message)
    r4 = _respond(rd, "scenario-reset", r3.store)
    assert r4.store["changes"] == [] and r4.undo_disabled is True
    assert "No changes yet" in _text(r4.result) and r4.change["features"] == []
    # back to the baseline: no scenario bands, no area values
    assert r4.bands["features"] == [] and r4.areas is None
    assert _text(_respond(rd, "scenario-undo", r4.store).message) == "Nothing to undo."


def test_respond_clears_the_map_when_the_new_view_cannot_be_answered(
    rd: RegionData, desert_spot: tuple[float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    lon, lat = desert_spot
    r = _respond(rd, "scenario-action", action={"kind": "add", "lon": lon, "lat": lat, "n": 1})
    assert r.bands["features"]

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise InputError("no sites of this care on foot")

    monkeypatch.setattr(aps, "scenario_view", refuse)
    r2 = _respond(rd, "atlas-settled", r.store)
    assert "no sites of this care" in _text(r2.message)
    assert r2.bands["features"] == [] and r2.change["features"] == [] and r2.areas is None
    # other actions that fail leave the scenario, and what the map shows of it, alone
    r3 = _respond(rd, "scenario-add-centre", r.store, centre=[40.0, -39.97])
    assert r3.bands is no_update_value() and r3.store is no_update_value()


def no_update_value() -> Any:
    from dash import no_update

    return no_update


def test_respond_adds_at_an_address_and_says_when_none_matches(rd: RegionData) -> None:
    from dash import no_update

    site = rd.layer("providers").query("category == 'pharmacy'").iloc[0]
    r = _respond(
        rd, "scenario-address-add", address=f"{site['address']}, {site['city']} {site['zip']}"
    )
    assert r.store["changes"][0]["name"].startswith("Site at ")
    assert "Added a site at" in _text(r.message)
    none = _respond(rd, "scenario-address", address="1 Nowhere Boulevard, Atlantis 00000")
    assert "No address matching" in _text(none.message) and none.store is no_update
    empty = _respond(rd, "scenario-address", address="   ")
    assert _text(empty.message) == "Type an address first."


def test_respond_closes_a_site_once(rd: RegionData) -> None:
    providers = rd.layer("providers")
    site = providers[providers["category"] == "methadone"].iloc[0]
    r = _respond(rd, "scenario-action", action={"kind": "close", "id": site["id"], "n": 1})
    assert r.store["changes"] == [{"type": "close_site", "provider_id": site["id"]}]
    assert f"Closed {site['name']}" in _text(r.message)
    again = _respond(rd, "scenario-action", r.store, action={"kind": "close", "id": site["id"]})
    assert "already closed" in _text(again.message)
    bad = _respond(rd, "scenario-action", action={"kind": "close", "id": "../../etc"})
    assert "not in this region" in _text(bad.message)


def test_respond_suggests_accepts_and_clears(rd: RegionData) -> None:
    r = _respond(rd, "scenario-suggest", k=12)
    assert "whole number from 1 to 10" in _text(r.message)
    r = _respond(rd, "scenario-suggest", k=4)
    assert r.accept_disabled is False and len(r.suggestions["items"]) == 1
    assert "1 of the 4 sites asked for are suggested" in _text(r.suggest_panel)
    assert "+544" in _text(r.suggest_panel)
    a = _respond(rd, "scenario-accept", suggestions=r.suggestions)
    assert a.store["changes"][0]["name"] == "Suggested site 1"
    assert a.suggestions is None and a.accept_disabled is True and a.suggest_panel == []
    assert _text(_find(a.result, "scenario-gained")) == "544"
    # suggestions for another threshold are dropped when the map changes
    moved = _respond(
        rd,
        "atlas-settled",
        a.store,
        settled={**SETTLED, "threshold": 20},
        suggestions=r.suggestions,
    )
    assert moved.suggestions is None and "threshold 20 min" in _text(moved.result)
    stale = _respond(
        rd, "scenario-accept", settled={**SETTLED, "mode": "walk"}, suggestions=r.suggestions
    )
    assert "suggest again" in _text(stale.message)


def test_respond_ignores_nonsense_and_answers_a_broken_store(rd: RegionData) -> None:
    with pytest.raises(PreventUpdate):
        _respond(rd, "atlas-settled", settled={"category": "x", "mode": "drive", "threshold": 5})
    with pytest.raises(PreventUpdate):
        _respond(rd, "atlas-settled", settled={"threshold": "abc"})
    with pytest.raises(PreventUpdate):
        _respond(rd, "scenario-action", action={"kind": "explode"})
    with pytest.raises(PreventUpdate):
        _respond(rd, "scenario-add-centre", centre="nowhere")
    broken = _respond(rd, "scenario-undo", {"format": "nope"})
    assert "Start over" in _text(broken.message)


def test_save_load_and_export_callbacks(
    rd: RegionData,
    desert_spot: tuple[float, float],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from callbacks.scenario import export, save
    from viewmodel import editing

    editing.WRITES.clear()
    s = Scenario(region="demo").add_site("methadone", *desert_spot)
    # Read-only by default: nobody saves until the operator sets an editor token.
    monkeypatch.delenv(editing.TOKEN_ENV, raising=False)
    status, _options, _value = save(rd, s.to_dict(), "Plan", geodata=tmp_path)
    assert "Saving is turned off on this site" in _text(status)
    monkeypatch.setenv(editing.TOKEN_ENV, "secret-token")
    status, _options, _value = save(rd, s.to_dict(), "Plan", geodata=tmp_path, token="wrong")
    assert "Wrong or missing editor token" in _text(status)
    assert not (tmp_path / "saved").exists()
    status, options, value = save(
        rd, s.to_dict(), "../West side\x00 plan", geodata=tmp_path, token="secret-token"
    )
    assert "Saved “../West side plan” as west-side-plan.json" in _text(status)
    assert value == "west-side-plan" and options[0]["value"] == "west-side-plan"
    assert (tmp_path / "saved" / "demo" / "scenarios" / "west-side-plan.json").is_file()
    status, options, _ = save(rd, None, "Nothing", geodata=tmp_path, token="secret-token")
    assert "no changes yet" in _text(status)
    r = _respond(rd, "scenario-load", saved="west-side-plan", geodata=tmp_path)
    assert r.name == "../West side plan" and len(r.store["changes"]) == 1
    assert "Loaded “../West side plan” (1 changes)" in _text(r.message)
    bad = _respond(rd, "scenario-load", saved="../../manifest", geodata=tmp_path)
    assert "not a saved scenario's name" in _text(bad.message)
    status, download = export(rd, s.to_dict(), SETTLED, "West side", fmt="csv")
    assert download["filename"] == "demo-west-side-methadone-drive-csv.zip"
    assert download["base64"] is True
    status, download = export(rd, None, SETTLED, "x", fmt="csv")
    assert download is None and "nothing to export" in _text(status)


def test_the_close_button_in_a_sites_details(rd: RegionData) -> None:
    from layouts.panels import provider_details

    props = {"id": "otp-directory:x", "name": "Clinic", "category": "methadone"}
    button = provider_details(props)[-1]
    assert button.className.endswith("atlas-scenario-close")
    assert button.to_plotly_json()["props"]["data-site-id"] == "otp-directory:x"
    assert "What if this site closed?" in _text(button)
    assert not any(
        "atlas-scenario-close" in str(getattr(c, "className", "")) for c in provider_details({})
    )


def test_the_callback_through_the_server(geo: Path, desert_spot: tuple[float, float]) -> None:
    import app as atlas_app
    import callbacks.map as map_callbacks

    map_callbacks.configure(geodata=geo, default_region="demo")
    client = atlas_app.server.test_client()
    outputs = [
        "scenario-store.data",
        "scenario-message.children",
        "scenario-result.children",
        "layer-scenario-change.data",
        "layer-scenario-bands.data",
        "scenario-areas.data",
        "layer-scenario-sites.data",
        "scenario-suggestions.data",
        "scenario-suggest-result.children",
        "layer-scenario-suggest.data",
        "scenario-accept.disabled",
        "scenario-name.value",
        "scenario-undo.disabled",
        "scenario-reset.disabled",
    ]
    lon, lat = desert_spot
    values = {
        "scenario-action.data": {"kind": "add", "lon": lon, "lat": lat, "n": 1},
        "atlas-settled.data": SETTLED,
    }
    inputs = [
        "scenario-add-centre.n_clicks",
        "scenario-address-add.n_clicks",
        "scenario-address.n_submit",
        "scenario-action.data",
        "scenario-undo.n_clicks",
        "scenario-reset.n_clicks",
        "scenario-suggest.n_clicks",
        "scenario-accept.n_clicks",
        "scenario-load.n_clicks",
        "atlas-settled.data",
    ]
    states = [
        "map.center",
        "scenario-address.value",
        "scenario-k.value",
        "scenario-suggestions.data",
        "scenario-saved.value",
        "scenario-store.data",
        "atlas-region.data",
    ]
    values["atlas-region.data"] = {"region": "demo"}

    def dep(key: str) -> dict[str, Any]:
        cid, prop = key.rsplit(".", 1)
        return {"id": cid, "property": prop, "value": values.get(key)}

    body = {
        "output": ".." + "...".join(outputs) + "..",
        "outputs": [dict(zip(("id", "property"), o.rsplit(".", 1), strict=True)) for o in outputs],
        "inputs": [dep(k) for k in inputs],
        "state": [dep(k) for k in states],
        "changedPropIds": ["scenario-action.data"],
    }
    r = client.post("/_dash-update-component", json=body)
    assert r.status_code == 200, r.data[:300]
    response = r.get_json()["response"]
    assert len(response["scenario-store"]["data"]["changes"]) == 1
    assert "544" in json.dumps(response["scenario-result"]["children"])
    bands = response["layer-scenario-bands"]["data"]["features"]
    assert bands and all(f["properties"]["scn"] == "band" for f in bands)
    areas = response["scenario-areas"]["data"]
    assert areas["prop"] == "t_methadone_drive" and areas["areas"]
    assert areas["showing"] == "Showing: scenario “Untitled scenario” (1 change)"


def test_an_added_site_on_blocked_land_says_which_rule(base: BaselineAccess) -> None:
    barriers = base.barriers.to_crs("EPSG:4326")
    zoning = barriers[(barriers["kind"] == "zoning") & (barriers["status"] == "prohibited")]
    spot = zoning.geometry.iloc[0].representative_point()
    s = Scenario(region="demo").add_site("methadone", spot.x, spot.y, name="Blocked clinic")
    notes = aps.siting_notes(base, s)
    rule = zoning["rule"].iloc[0]
    assert any(f"“Blocked clinic” stands where “{rule}” prohibits it" in n for n in notes)
    view = aps.scenario_view(base, s, category="methadone", threshold_min=30)
    assert any("Blocked clinic" in n for n in view.notes)
    # A pharmacy is no treatment program: the rule does not apply to it.
    pharmacy = Scenario(region="demo").add_site("pharmacy", spot.x, spot.y, name="Corner pharmacy")
    assert aps.siting_notes(base, pharmacy) == []
    # Outside every barrier: no warning.
    union = shapely.union_all(barriers.geometry.to_numpy())
    x0, y0, x1, y1 = barriers.total_bounds
    free = next(
        shapely.Point(x, y)
        for x in np.linspace(x0 - 0.2, x1 + 0.2, 25)
        for y in np.linspace(y0 - 0.2, y1 + 0.2, 25)
        if not union.contains(shapely.Point(x, y))
    )
    clear = Scenario(region="demo").add_site("methadone", free.x, free.y, name="Open clinic")
    assert aps.siting_notes(base, clear) == []
