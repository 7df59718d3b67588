"""A What-if scenario open on the page follows into prints and exports, counted as the panel counts.

One scenario (a methadone site where the first suggestion puts it, fictional demo region) is
evaluated by the What-if panel (:func:`viewmodel.scenario.scenario_view`) and by the files
(:func:`viewmodel.scenario_print.what_if`); the map PDF, the fact sheet and the exports must
carry the panel's figures, not the baseline, and say which is which.
"""

from __future__ import annotations

import base64
import io
import json
import os
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

os.environ.setdefault("ACCESS_ATLAS_WARM", "0")

from callbacks import downloads
from etl.engine.scenario import Scenario
from etl.outputs.export import export_layers
from etl.outputs.render import MapData, fact_sheet, render_map
from etl.outputs.whatif import WhatIf
from tests.test_render import pdf_text
from tests.test_townhall import demo_geodata, linked_geodata
from viewmodel import scenario as aps
from viewmodel.data import RegionData, region_data
from viewmodel.scenario_print import what_if, what_if_or_note

DPI = 30


@pytest.fixture(scope="module")
def geo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linked_geodata(
        demo_geodata(tmp_path_factory), tmp_path_factory.mktemp("whatif") / "geodata"
    )


@pytest.fixture(scope="module")
def rd(geo: Path) -> RegionData:
    return region_data(geo, "demo")


@pytest.fixture(scope="module")
def scenario(rd: RegionData) -> Scenario:
    base = aps.baseline_access(rd, "drive")
    item = aps.suggestions(base, Scenario(), category="methadone", threshold_min=30, k=1)[
        "items"
    ][0]
    s = Scenario(region="demo", name="West side plan")
    return s.add_site("methadone", item["lon"], item["lat"], name="New clinic")


def _token(s: Scenario) -> str:
    raw = json.dumps(aps.scenario_to_store(s), separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@pytest.fixture(scope="module")
def token(scenario: Scenario) -> str:
    return _token(scenario)


def test_the_files_count_the_scenario_as_the_panel_does(
    rd: RegionData, scenario: Scenario, token: str
) -> None:
    base = aps.baseline_access(rd, "drive")
    panel = aps.scenario_view(base, scenario, category="methadone", threshold_min=30)
    w = what_if(rd, token, category="methadone", mode="drive", threshold=30)
    assert w is not None
    assert list(w.comparison) == panel.comparison
    assert list(w.statements) == panel.statements
    assert round(w.people_in_desert) == panel.summary["people_in_desert_after"]
    assert round(w.base_people_in_desert) == panel.summary["people_in_desert_before"]
    # the site helps: fewer people in the desert than today
    assert w.people_in_desert < w.base_people_in_desert
    assert w.title == "What-if scenario “West side plan” (1 change)"
    assert w.gain is not None and not w.gain.is_empty
    # no scenario in the link: no WhatIf
    assert what_if(rd, "", category="methadone", mode="drive", threshold=30) is None


def test_the_map_draws_the_scenarios_times_and_desert(rd: RegionData, token: str) -> None:
    w = what_if(rd, token, category="methadone", mode="drive", threshold=30)
    assert w is not None
    today = MapData.load(rd.bundle, category="methadone", mode="drive", threshold=30)
    data = MapData.load(rd.bundle, category="methadone", mode="drive", threshold=30, whatif=w)
    col = "t_methadone_drive"
    before = today.frames["areas"].set_index("area_id")[col]
    after = data.frames["areas"].set_index("area_id")[col]
    faster = (after < before - 0.05).sum()
    assert faster > 0 and not (after > before + 0.05).any()  # adding a site slows nobody
    desert_today = today.frames["deserts"]
    desert_today = desert_today[desert_today["category"] == "methadone"]
    desert_today = desert_today[desert_today["mode"] == "drive"].geometry.union_all()
    desert_after = data.frames["deserts"].geometry.union_all()
    assert desert_after.area < desert_today.area
    # a scenario evaluated for another pair is not drawn on this one
    other = MapData.load(rd.bundle, category="methadone", mode="walk", threshold=30, whatif=w)
    assert other.whatif is None


def test_printed_map_and_fact_sheet_carry_the_scenarios_figures(
    rd: RegionData, token: str, tmp_path: Path
) -> None:
    w = what_if(rd, token, category="methadone", mode="drive", threshold=30)
    assert w is not None
    after, before = f"{round(w.people_in_desert):,}", f"{round(w.base_people_in_desert):,}"
    out = render_map(rd.bundle, tmp_path / "map.pdf", category="methadone", mode="drive",
                     layers=("areas", "deserts", "region", "providers"), threshold=30,
                     scenario=w, dpi=DPI)  # fmt: skip
    text = pdf_text(out)
    assert "with What-if scenario “West side plan” (1 change)" in text
    assert f"{after} people" in text and f"{before} without it" in text
    assert "Added in the scenario (1)" in text and "Leaves the desert with the scenario" in text
    sheet = fact_sheet(rd.bundle, tmp_path / "sheet.pdf", category="methadone", mode="drive",
                       threshold=30, scenario=w, dpi=DPI)  # fmt: skip
    text = pdf_text(sheet)
    assert "What-if scenario “West side plan” (1 change)" in text
    assert f"{before} before, {after} after" in text
    assert "key numbers at the top are today's" in text
    # a scenario that could not be evaluated: the file says it shows the baseline
    note = render_map(rd.bundle, tmp_path / "note.pdf", category="methadone", mode="drive",
                      threshold=30, scenario="“X” (not applied here: reason)", dpi=DPI)  # fmt: skip
    assert "baseline, without the What-if scenario “X”" in pdf_text(note)


@pytest.mark.parametrize("fmt", ["gpkg", "csv"])
def test_exports_hold_the_scenarios_layers_and_figures(
    rd: RegionData, token: str, tmp_path: Path, fmt: str
) -> None:
    w = what_if(rd, token, category="methadone", mode="drive", threshold=30)
    assert w is not None
    path = export_layers(rd.bundle, tmp_path, fmt=fmt, threshold=30, scenario=w,
                         filters={"category": ["methadone"], "mode": ["drive"]})  # fmt: skip
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("metadata.json"))
        readme = zf.read("README.txt").decode("utf-8")
        dictionary = pd.read_csv(io.BytesIO(zf.read("data_dictionary.csv")))
        zf.extractall(tmp_path / "x")
    view = meta["view"]
    assert view["what_if"]["people_in_desert"] == round(w.people_in_desert)
    assert view["what_if"]["baseline_people_in_desert"] == round(w.base_people_in_desert)
    assert view["scenario"] == w.title and view["scenario_note"] is None
    assert "figures and layers are WITH it" in readme
    assert f"{round(w.people_in_desert):,} after" in readme
    assert "(today, without the What-if scenario)" in readme
    if fmt == "gpkg":
        desert = gpd.read_file(tmp_path / "x" / "demo.gpkg", layer="scenario_desert")
        sites = gpd.read_file(tmp_path / "x" / "demo.gpkg", layer="scenario_sites")
    else:
        assert {"scenario_sites.csv", "scenario_areas.csv", "scenario_desert.csv"} <= names
        desert = pd.read_csv(tmp_path / "x" / "scenario_desert.csv")
        sites = pd.read_csv(tmp_path / "x" / "scenario_sites.csv")
    got = dict(zip(desert["when"], desert["population"], strict=True))
    assert got == {"before": round(w.base_people_in_desert), "after": round(w.people_in_desert)}
    assert (sites["status"] == "added").sum() == 1
    described = dictionary[dictionary["layer"] == "scenario_areas"]
    assert len(described) >= 10
    assert "as given by the source (see metadata.json)" not in set(described["description"])


def test_the_download_route_applies_the_scenario_on_the_page(
    geo: Path, rd: RegionData, token: str, tmp_path: Path
) -> None:
    import app as atlas_app
    import callbacks.map as map_callbacks

    map_callbacks.configure(geodata=geo, default_region="demo")
    downloads.configure(cache_dir=None)
    client = atlas_app.server.test_client()
    w = what_if(rd, token, category="methadone", mode="drive", threshold=30)
    assert w is not None
    r = client.get(f"/atlas/export/demo/csv?cat=methadone&mode=drive&t=30&w={token}",
                   buffered=True)  # fmt: skip
    assert r.status_code == 200, r.data[:300]
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        meta = json.loads(zf.read("metadata.json"))
    assert meta["view"]["what_if"]["people_in_desert"] == round(w.people_in_desert)
    r = client.get(f"/atlas/export/demo/pdf?cat=methadone&mode=drive&t=30&layers=desert,sites"
                   f"&w={token}", buffered=True)  # fmt: skip
    assert r.status_code == 200 and r.data[:4] == b"%PDF"
    (tmp_path / "m.pdf").write_bytes(r.data)
    assert f"{round(w.people_in_desert):,} people" in pdf_text(tmp_path / "m.pdf")


def test_closing_every_site_and_a_refused_scenario(
    rd: RegionData, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed_all = Scenario(region="demo", name="No clinics")
    base = aps.baseline_access(rd, "drive")
    for pid in base.providers.loc[base.providers["category"] == "methadone", "id"]:
        closed_all = closed_all.close_site(str(pid))
    got = what_if_or_note(rd, _token(closed_all), category="methadone", mode="drive",
                          threshold=30)  # fmt: skip
    # Every covered person is then in the desert; nobody is within reach.
    assert isinstance(got, WhatIf)
    assert round(got.people_within) == 0
    assert round(got.people_in_desert) == round(got.base_people_within + got.base_people_in_desert)
    # A scenario the engine refuses: the files show the baseline and say why, in one line.
    import viewmodel.scenario_print as sp
    from etl._errors import InputError

    def refuse(*_a: object, **_k: object) -> None:
        raise InputError("the threshold must be positive")

    monkeypatch.setattr(sp, "evaluate", refuse)
    note = what_if_or_note(rd, _token(scenario), category="methadone", mode="drive",
                           threshold=30)  # fmt: skip
    assert note == "“West side plan” (not applied here: the threshold must be positive)"
