"""Release day (re-entry): prisons and jails, travel time to the nearest care of each kind.

Built through the real CLI: the demo region (its generator writes fictional facilities) and a
Franklin-like fixture (Two Rivers with a New-York-Times-shaped list: two jails at one point, a
state prison beyond the region inside its buffer, one far away, one off the streets, a row
without coordinates). Times are checked against an independent single-source Dijkstra from
each facility's node (forward), not the engine's multi-source reverse search.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csgraph

from etl.bundle.store import Bundle
from etl.engine.network import ModeNetwork
from etl.engine.reentry import facility_times
from etl.inputs.facilities import facility_kind
from tests import real_shaped_region as tr
from tests.browser_support import build_demo

CLI = [str(Path(sys.executable).with_name("access-atlas"))]

NYT_COLUMNS = {
    "name": "facility_name", "type": "facility_type", "city": "facility_city",
    "county": "facility_county", "lon": "facility_lng", "lat": "facility_lat", "id": "nyt_id",
}  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, check=False)


# -- the engine rule -----------------------------------------------------------------------


def test_facility_times_follow_the_people_rule() -> None:
    node_time = np.array([60.0, 600.0, np.inf, 120.0])
    node_nearest = np.array([4, 7, -1, 4])
    ft = facility_times(
        node_time,
        node_nearest,
        node=np.array([0, 1, 2, 3]),
        snap_m=np.array([12.0, 50.0, 10.0, 900.0]),
        walk_speed_mps=1.2,
        cover_m=300.0,
        threshold_min=5.0,
    )
    assert ft.minutes[0] == pytest.approx((60 + 10) / 60)
    assert ft.minutes[1] == pytest.approx((600 + 50 / 1.2) / 60)
    assert np.isinf(ft.minutes[2])  # covered, no site reachable: in the desert
    assert np.isnan(ft.minutes[3])  # 900 m from the streets: not covered, in no desert
    assert ft.desert.tolist() == [False, True, True, False]
    assert ft.nearest.tolist() == [4, 7, -1, -1]
    assert ft.covered.tolist() == [True, True, True, False]


@pytest.mark.parametrize(
    ("raw", "kind"),
    [("State prison", "prison"), ("Jail", "jail"), ("Detention center", "detention"),
     ("State facility", "prison"), ("Halfway house", "other")],
)  # fmt: skip
def test_facility_kind(raw: str, kind: str) -> None:
    assert facility_kind(raw) == kind
    assert facility_kind("Halfway house", {"halfway HOUSE": "detention"}) == "detention"


# -- the demo region -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("reentry-demo"))


def _independent_minutes(
    bundle: Bundle, fac: gpd.GeoDataFrame, category: str, mode: str
) -> np.ndarray:
    """Single-source forward Dijkstra from each facility's node to every site of the kind."""
    net = ModeNetwork.load(bundle.path / "network" / f"{mode}.npz")
    prov = bundle.read_layer("providers")
    from etl.categories import site_mask

    ok = site_mask(prov, category) & (prov[f"snap_m_{mode}"].to_numpy(float) <= 1500)
    ok &= (prov["geocode_quality"] != "city").to_numpy()
    nodes = prov[f"node_{mode}"].to_numpy()[ok].astype(int)
    offsets = prov[f"snap_m_{mode}"].to_numpy(float)[ok] / net.walk_speed_mps
    proj = fac.geometry.to_crs(bundle.manifest["crs"])
    xy = np.column_stack([net.x, net.y])
    out = []
    for x, y in zip(proj.x, proj.y, strict=True):
        d = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
        start = int(np.argmin(d))
        dist = csgraph.dijkstra(net.csr(), directed=True, indices=start)
        out.append((np.min(dist[nodes] + offsets) + d[start] / net.walk_speed_mps) / 60.0)
    return np.array(out)


def test_demo_build_writes_facilities_with_independent_times(demo: Path) -> None:
    bundle = Bundle.open(demo / "demo")
    fac = bundle.read_layer("facilities")
    assert sorted(fac["kind"]) == ["detention", "jail", "prison"]
    counts = bundle.manifest["stages"]["access"]["facilities"]
    assert counts["sources"]["facilities"] == {
        "rows": 5, "kept": 3, "in_region": 3, "outside": 1, "rejected": 1, "merged": 0,
    }  # fmt: skip
    rejects = pd.read_csv(demo / "demo" / "reports" / "facilities_rejects.csv")
    assert rejects["reason"].tolist() == ["missing or unreadable coordinates"]
    for cat in ("methadone", "buprenorphine", "naltrexone", "naloxone"):
        for mode in ("drive", "walk"):
            want = _independent_minutes(bundle, fac, cat, mode)
            got = fac[f"t_{cat}_{mode}"].to_numpy(float)
            np.testing.assert_allclose(got, want, atol=0.06, err_msg=f"{cat}/{mode}")
    prison = fac.set_index("name").loc["Stone Church Correctional Institution"]
    assert prison["in_desert"] and prison["desert_methadone_drive"]
    assert prison["t_methadone_drive"] > 30 and "methadone" in prison["desert_for"]
    jail = fac.set_index("name").loc["Millbrook County Jail"]
    assert not jail["in_desert"] and jail["desert_for"] == ""
    # nothing about people: no population column of the list is carried
    assert not [c for c in fac.columns if "population" in c or "inmate" in c]
    assert any(i["role"] == "facilities.0" for i in bundle.manifest["inputs"])


def test_demo_fact_sheet_has_a_release_day_page(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.pdf"
    res = run("fact-sheet", "demo", str(out), "--geodata-dir", str(demo))
    assert res.returncode == 0, res.stderr[-1500:]
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True)
    assert "Pages:           2" in info.stdout
    text = subprocess.run(
        ["pdftotext", "-layout", "-f", "2", "-l", "2", str(out), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Release day: from prison or jail to care" in text
    assert "Facilities whose releases land in a desert" in text
    assert "Stone Church Correctional Institution" in text
    assert "min by car" in text and "min on foot" in text
    assert "338 East Main Street" in text  # the nearest methadone's address


def test_demo_export_holds_the_facilities_layer(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    res = run("export", "demo", "--layers", "facilities", "--format", "geojson",
              "--out", str(out), "--geodata-dir", str(demo))  # fmt: skip
    assert res.returncode == 0, res.stderr[-1500:]
    import zipfile

    archive = next(out.rglob("*.zip"))
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        gj = json.loads(z.read(next(n for n in names if n.endswith("facilities.geojson"))))
        dictionary = z.read(next(n for n in names if n.endswith("data_dictionary.csv"))).decode()
    assert len(gj["features"]) == 3
    assert "travel time by car from the facility to the nearest" in dictionary


def test_methods_page_explains_release_day(demo: Path) -> None:
    from layouts.methods import methods_page

    manifest = json.loads((demo / "demo" / "manifest.json").read_text())
    text = str(methods_page(manifest).to_plotly_json())
    assert "Release day (re-entry)" in text
    assert "3 prisons, jails and detention centres" in text
    assert "No bus times" in text


# -- a Franklin-like region ----------------------------------------------------------------


def _nyt_list(path: Path) -> None:
    rows = [
        ("A1", "Two Rivers County jail I", "Jail", -84.8152, 39.1380),
        ("A2", "Two Rivers County jail II", "Jail", -84.8152, 39.1380),  # the same point
        ("B1", "Ridge State Prison", "State prison", -84.8790, 39.1302),  # beyond, in buffer
        ("C1", "Lakeshore Correctional", "State prison", -83.0, 40.0),  # far away
        ("D1", "Hill Detention Center", "Detention center", -84.775, 39.155),  # no streets
        ("E1", "Records annex", "State facility", None, None),
    ]
    pd.DataFrame(
        [
            {"nyt_id": i, "facility_name": n, "facility_type": t, "facility_city": "Harrison",
             "facility_county": "Hamilton", "facility_lng": x, "facility_lat": y,
             "latest_inmate_population": 900, "note": ""}
            for i, n, t, x, y in rows
        ]
    ).to_csv(path, index=False)  # fmt: skip


@pytest.fixture(scope="module")
def two_rivers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reentry-tr")
    (root / "raw").mkdir()
    _nyt_list(root / "raw" / "prisons_jails.csv")
    cfg = tr.write_region(
        root,
        facilities=[{"path": "raw/prisons_jails.csv", "columns": NYT_COLUMNS,
                     "source": "NYT-shaped list (test)", "licence": "CC BY-NC 4.0"}],
    )  # fmt: skip
    res = run("build", str(cfg), "--geodata-dir", str(root / "geo"), "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    return root


def test_franklin_like_facilities_buffer_merge_and_cover(two_rivers: Path) -> None:
    bundle = Bundle.open(two_rivers / "geo" / "two-rivers")
    fac = bundle.read_layer("facilities").set_index("name")
    assert sorted(fac.index) == [
        "Hill Detention Center", "Ridge State Prison",
        "Two Rivers County jail I / Two Rivers County jail II",
    ]  # fmt: skip
    counts = bundle.manifest["stages"]["access"]["facilities"]["sources"]["facilities"]
    assert counts == {"rows": 6, "kept": 3, "in_region": 2, "outside": 1, "rejected": 1,
                      "merged": 1}  # fmt: skip
    ridge = fac.loc["Ridge State Prison"]
    assert not ridge["in_region"]  # beyond the outline, within the buffer: counted
    assert ridge["nearest_methadone_drive"].startswith("national-locator:")
    assert ridge["t_methadone_drive"] < 3
    hill = fac.loc["Hill Detention Center"]
    assert not hill["covered_drive"] and np.isnan(hill["t_methadone_drive"])
    assert not hill["in_desert"]  # not covered: in no desert
    # no naltrexone list in this region: no column, and the view says so
    assert "t_naltrexone_drive" not in fac.columns
    from etl.outputs.reentry import bundle_release_day

    view = bundle_release_day(bundle)
    assert view is not None and "naltrexone" in view.missing
    card = next(f for f in view.facilities if f.name == "Ridge State Prison")
    trip = card.care[0].trips[0]
    assert trip.site_name == "West Bank Clinic" and "5 River Road" in trip.site_address


def test_facilities_config_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    _nyt_list(tmp_path / "raw" / "prisons_jails.csv")
    cfg = tr.write_region(tmp_path, facilities=[{"path": "raw/prisons_jails.csv",
                                                 "columns": {"lon": "facility_lng"}}])  # fmt: skip
    res = run("validate", str(cfg))
    assert res.returncode == 2
    assert "facilities" in res.stderr and "name" in res.stderr
    bad = dict(NYT_COLUMNS, name="Facility Name")
    cfg = tr.write_region(tmp_path, facilities=[{"path": "raw/prisons_jails.csv", "columns": bad}])
    res = run("build", str(cfg), "--geodata-dir", str(tmp_path / "geo"), "--no-progress")
    assert res.returncode == 2
    line = [ln for ln in res.stderr.splitlines() if ln.startswith("access-atlas: error:")]
    assert line and "'Facility Name' not found" in line[0] and "prisons_jails.csv" in line[0]
