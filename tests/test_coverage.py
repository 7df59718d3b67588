"""One model of who is counted, and everything counted is drawn (issue 12).

Gridton (tests/region_fixture.py) gets a fifth block group east of the town: a small
neighbourhood about 1 km from the nearest drivable street, joined to the town only by a
footpath (so the drive network, clipped to its largest connected part, stops 1 km short of
it), with a buprenorphine site in it. Its people are covered on foot and not by car.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from etl._errors import BundleError
from etl.bundle.store import Bundle
from etl.config import load_config
from etl.outputs.export import export_metadata, metadata_text, mode_coverage
from etl.outputs.quality_report import off_network_table
from etl.outputs.render import MapData, _notes
from etl.pipeline import _check_drawn, run_build
from layouts.methods import methods_page
from layouts.panels import provider_details, summary_panel
from tests.region_fixture import write_region
from viewmodel.data import RegionData, access_summary, providers_geojson

CLUSTER_LON, CLUSTER_LAT = -82.966, 40.008  # south-west corner of the neighbourhood
CLUSTER_POP = 500
MAX_SNAP_M = 800.0  # the neighbourhood's site (≈ 1.2 km from a drivable street) is not routed


def _add_cluster(root: Path) -> None:
    """The neighbourhood: 3 x 3 residential streets, a footpath to the town, an area, a site."""
    osm = root / "raw" / "gridton.osm"
    nodes, ways = [], []
    ids = {}
    for a in range(3):
        for b in range(3):
            ids[a, b] = 500 + a * 3 + b
            nodes.append(
                f'  <node id="{ids[a, b]}" version="1" lat="{CLUSTER_LAT + a * 0.002:.7f}" '
                f'lon="{CLUSTER_LON + b * 0.002:.7f}"/>'
            )
    way = 5000
    for a in range(3):
        refs = "".join(f'<nd ref="{ids[a, b]}"/>' for b in range(3))
        ways.append(f'  <way id="{way}" version="1">{refs}<tag k="highway" v="residential"/></way>')
        way += 1
    for b in range(3):
        refs = "".join(f'<nd ref="{ids[a, b]}"/>' for a in range(3))
        ways.append(f'  <way id="{way}" version="1">{refs}<tag k="highway" v="residential"/></way>')
        way += 1
    # Footpath from the town's east edge (grid node 72: lat 40.010, lon -82.978) to the
    # neighbourhood's west middle node.
    path_ids = []
    for k, lon in enumerate((-82.975, -82.972, -82.969)):
        path_ids.append(600 + k)
        nodes.append(f'  <node id="{600 + k}" version="1" lat="40.0100000" lon="{lon:.7f}"/>')
    refs = "".join(f'<nd ref="{n}"/>' for n in [72, *path_ids, ids[1, 0]])
    ways.append(f'  <way id="{way}" version="1">{refs}<tag k="highway" v="footway"/></way>')
    text = osm.read_text(encoding="utf-8").replace("</osm>", "\n".join(nodes + ways) + "\n</osm>")
    osm.write_text(text, encoding="utf-8")

    bg = gpd.read_file(root / "raw" / "bg.gpkg")
    extra = gpd.GeoDataFrame(
        {"GEOID": ["990010001005"]},
        geometry=[shapely.box(-82.9705, 40.0045, -82.9575, 40.0155)],
        crs=bg.crs,
    )
    pd.concat([bg, extra]).to_file(root / "raw" / "bg.gpkg")
    pop = pd.read_csv(root / "raw" / "population.csv", dtype={"GEOID": str})
    pop.loc[len(pop)] = ["990010001005", CLUSTER_POP]
    pop.to_csv(root / "raw" / "population.csv", index=False)
    prov = pd.read_csv(root / "raw" / "providers.csv")
    prov.loc[len(prov)] = ["Riverside Clinic", "buprenorphine", "2 River Row", 40.010, -82.964]
    prov.to_csv(root / "raw" / "providers.csv", index=False)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("coverage")
    network = {
        "osm": {"path": "raw/gridton.osm", "source": "test", "licence": "CC0"},
        "max_snap_m": MAX_SNAP_M,
    }
    config = write_region(root, network=network)
    _add_cluster(root)
    handler = _Records()
    logging.getLogger("etl").addHandler(handler)
    try:
        path = run_build(load_config(config), root / "geodata", progress=False)
    finally:
        logging.getLogger("etl").removeHandler(handler)
    bundle = Bundle.open(path)
    people = bundle.read_layer("people")
    return SimpleNamespace(
        bundle=bundle,
        people=people,
        cluster=people["lon"].to_numpy() > -82.972,
        warnings=[r.getMessage() for r in handler.records if r.levelno >= logging.WARNING],
        coverage=bundle.manifest["stages"]["access"]["coverage"],
    )


def _times(bundle: Bundle, people: pd.DataFrame, category: str, mode: str) -> np.ndarray:
    """Seconds per people point, as the access stage counts them (before coverage)."""
    net = bundle.network(mode)
    node = people[f"node_{mode}"].to_numpy()
    t = bundle.access_arrays(mode)[f"time_{category}"].astype(float)[node]
    return t + people[f"snap_m_{mode}"].to_numpy() / net.walk_speed_mps


def _covers(geom: shapely.Geometry, people: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    pts = shapely.points(people["lon"].to_numpy()[mask], people["lat"].to_numpy()[mask])
    return shapely.covers(geom, pts)


def test_people_a_km_off_the_drive_network_are_not_covered(built: SimpleNamespace) -> None:
    people, cluster = built.people, built.cluster
    weight = people["weight"].to_numpy()
    assert cluster.sum() >= 5
    assert weight[cluster].sum() == pytest.approx(CLUSTER_POP, rel=0.02)
    snap_drive = people["snap_m_drive"].to_numpy()[cluster]
    assert snap_drive.min() > 900  # ≈ 1 km from the nearest drivable node
    assert snap_drive.max() < 1500  # the old rule (max_snap_m 1,500) counted them by car
    assert people["snap_m_walk"].to_numpy()[cluster].max() < 300  # covered on foot
    drive, walk = built.coverage["drive"], built.coverage["walk"]
    population = built.bundle.manifest["stages"]["areas"]["population"]
    for c in (drive, walk):
        assert c["people"] == population == c["covered"] + c["not_covered"]
        assert c["cover_m"] == 300.0
    assert drive["not_covered"] >= round(weight[cluster].sum())
    assert drive["covered"] == round(weight[~cluster].sum())
    assert walk["not_covered"] < drive["not_covered"]
    # Not in the desert by car: they would have been, with the walk to the street added.
    thr = 2.0
    t = _times(built.bundle, people, "methadone", "drive")
    assert (t[cluster] > thr * 60).all()
    deserts = built.bundle.read_layer("deserts").set_index(["category", "mode"])
    covered = people["snap_m_drive"].to_numpy() <= 300.0
    beyond = covered & ~(t <= thr * 60)
    assert deserts.loc[("methadone", "drive"), "population"] == round(weight[beyond].sum())
    summary = built.bundle.manifest["stages"]["access"]["summary"]["methadone_drive"]
    assert summary["people_not_covered"] == drive["not_covered"]
    assert summary["people_in_desert"] + summary["people_within"] == drive["covered"]


def test_build_warns_when_the_network_misses_people(built: SimpleNamespace) -> None:
    drive = built.coverage["drive"]
    lines = [w for w in built.warnings if "beyond the drive street network" in w]
    assert len(lines) == 1
    assert f"{drive['not_covered']:,} of {drive['people']:,} people" in lines[0]
    assert "README 'Street extracts'" in lines[0]
    assert "\n" not in lines[0]


def test_deserts_and_bands_draw_every_person_they_count(built: SimpleNamespace) -> None:
    bundle, people = built.bundle, built.people
    weight = people["weight"].to_numpy()
    checked = 0
    for row in bundle.read_layer("deserts").itertuples():
        t = _times(bundle, people, row.category, row.mode)
        covered = people[f"snap_m_{row.mode}"].to_numpy() <= 300.0
        counted = covered & ~(t <= row.threshold_min * 60) & (weight > 0)
        assert row.population == round(weight[counted].sum())
        if row.population > 0:
            assert row.geometry is not None and not row.geometry.is_empty
            assert _covers(row.geometry, people, counted).all(), (row.category, row.mode)
            checked += 1
    assert checked >= 2  # methadone by car and on foot, buprenorphine on foot
    for row in bundle.read_layer("isochrones").itertuples():
        t = _times(bundle, people, row.category, row.mode)
        covered = people[f"snap_m_{row.mode}"].to_numpy() <= 300.0
        counted = covered & (t <= row.minutes * 60) & (weight > 0)
        assert row.population == round(weight[counted].sum())
        if row.population > 0:
            assert _covers(row.geometry, people, counted).all(), (row.category, row.minutes)


def test_one_number_on_every_surface(built: SimpleNamespace) -> None:
    bundle = built.bundle
    drive = built.coverage["drive"]
    rd = RegionData(bundle=bundle)
    summary = access_summary(rd, "methadone", "drive", 2.0)
    assert summary["uncovered"] == drive["not_covered"]
    assert summary["coverage"] == drive
    assert abs(summary["focus"]["covered"] - drive["covered"]) < 1
    panel = _text(summary_panel(summary, category="methadone", mode="drive", threshold=2.0))
    assert f"{drive['not_covered']:,} people live beyond the street network" in panel
    page = methods_page(bundle.manifest)
    assert _by_id(page, "methods-not-covered-drive") == f"{drive['not_covered']:,}"
    assert _by_id(page, "methods-not-covered-walk") == f"{built.coverage['walk']['not_covered']:,}"
    notes = dict(_notes(bundle, MapData.load(bundle, category="methadone", mode="drive")))
    assert f"{drive['not_covered']:,} people live beyond" in notes["Who is counted"]
    assert f"{drive['covered']:,}" in notes["Who is counted"]
    meta = export_metadata(bundle)
    assert meta["coverage"]["drive"] == drive
    readme = metadata_text(meta)
    assert f"{drive['covered']:,} of {drive['people']:,} people covered" in readme
    assert f"{drive['not_covered']:,} not covered" in readme


def test_bundles_built_before_keep_their_numbers(built: SimpleNamespace) -> None:
    old = copy.deepcopy(built.bundle.manifest)
    del old["stages"]["access"]["coverage"]
    old["stages"]["providers"]["off_network"] = 1  # an old bundle's count of sites
    old_bundle = Bundle(path=built.bundle.path, manifest=old)
    for mode in ("drive", "walk"):
        want = {k: v for k, v in built.coverage[mode].items() if k != "area_beyond_share"}
        assert mode_coverage(old_bundle, mode) == want
        assert RegionData(bundle=old_bundle).coverage(mode) == want
    assert "1 sites lie far from every street" in _text(methods_page(old))


def test_off_network_sites_are_warned_and_listed(built: SimpleNamespace) -> None:
    bundle = built.bundle
    off = bundle.manifest["stages"]["providers"]["off_network"]
    assert [(r["name"], r["category"], r["mode"]) for r in off] == [
        ("Riverside Clinic", "buprenorphine", "drive")
    ]
    assert 1100 < off[0]["snap_m"] < 1300
    lines = [w for w in built.warnings if w.startswith("load-providers:")]
    assert len(lines) == 1
    assert "1 buprenorphine site(s)" in lines[0]
    assert f"Riverside Clinic ({off[0]['id']}): drive 1.2 km" in lines[0]
    html = (bundle.path / "reports" / "providers_quality.html").read_text(encoding="utf-8")
    assert "Sites beyond the street network" in html and "Riverside Clinic" in html
    assert off_network_table(off)["reason"].tolist() == [
        "not routed by car: 1.2 km from the street network"
    ]
    page = _text(methods_page(bundle.manifest))
    assert "Riverside Clinic (buprenorphine prescriber): not routed by car: 1.2 km" in page
    providers = bundle.read_layer("providers")
    features = providers_geojson(providers, max_snap_m=MAX_SNAP_M)
    import json

    props = {f["properties"]["name"]: f["properties"] for f in json.loads(features)["features"]}
    assert props["Riverside Clinic"]["not_routed"] == [
        "not routed by car: 1.2 km from the street network"
    ]
    assert "not_routed" not in props["Gridton Recovery Clinic"]
    details = _text(provider_details(props["Riverside Clinic"]))
    assert "Not routed by car: 1.2 km from the street network" in details


def test_publish_check_refuses_people_without_a_geometry(tmp_path: Path) -> None:
    (tmp_path / "layers").mkdir()
    rows = gpd.GeoDataFrame(
        {
            "category": ["methadone", "methadone"],
            "mode": ["drive", "walk"],
            "population": [0, 2321],
            "geometry": [shapely.MultiPolygon(), shapely.MultiPolygon()],
        },
        crs="EPSG:4326",
    )
    rows.to_parquet(tmp_path / "layers" / "deserts.parquet")
    writer = SimpleNamespace(
        tmp=tmp_path, layers={"deserts": {"file": "layers/deserts.parquet", "crs": "EPSG:4326"}}
    )
    with pytest.raises(BundleError, match=r"deserts\.parquet row 1 \(category methadone, mode "
                       r"walk\) counts 2,321 people but has an empty geometry"):  # fmt: skip
        _check_drawn(writer)
    rows.loc[1, "geometry"] = shapely.box(0, 0, 1, 1)
    rows.to_parquet(tmp_path / "layers" / "deserts.parquet")
    _check_drawn(writer)  # people with a geometry, and an empty row with nobody: published
    rows.loc[1, "geometry"] = None
    rows.to_parquet(tmp_path / "layers" / "deserts.parquet")
    with pytest.raises(BundleError, match="2,321 people"):
        _check_drawn(writer)


def _text(component: Any) -> str:
    if component is None:
        return ""
    if isinstance(component, (list, tuple)):
        return " ".join(_text(c) for c in component)
    if hasattr(component, "to_plotly_json"):
        return _text(getattr(component, "children", None))
    return str(component)


def _by_id(component: Any, wanted: str) -> str | None:
    if isinstance(component, (list, tuple)):
        for c in component:
            found = _by_id(c, wanted)
            if found is not None:
                return found
        return None
    if hasattr(component, "to_plotly_json"):
        if getattr(component, "id", None) == wanted:
            return _text(component)
        return _by_id(getattr(component, "children", None), wanted)
    return None
