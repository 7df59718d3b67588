"""Layer exports: every format opened with geopandas/pyogrio and checked against the bundle."""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from etl._errors import BundleError
from etl.bundle.store import Bundle, write_bundle, write_manifest
from etl.cli_export import COMMANDS, register, run
from etl.config import load_config
from etl.outputs.export import (
    FORMATS,
    OSM_ATTRIBUTION,
    ExportError,
    attribution_lines,
    export_layers,
    safe_name,
    safe_path,
    shapefile_names,
)
from etl.pipeline import run_build
from tests.region_fixture import write_region

ROOT = Path(__file__).resolve().parents[1]
SHARED_FRANKLIN = ROOT.parent / "shared" / "data" / "franklin-oh"

# A county table with one suppressed row (its count and rate must stay empty everywhere).
COUNTIES = {
    "fips": ["99001", "99003", "99005"],
    "name": ["North County", "Middle County", "South County"],
    "deaths": [25.0, np.nan, 140.0],
    "population": [120_000, 40_000, 900_000],
    "rate_per_100k": [20.8, np.nan, 15.6],
    "suppressed": [False, True, False],
    "unstable": [False, False, False],
}


def build_gridton(root: Path) -> Path:
    """Build the tiny fictional Gridton bundle with the real pipeline; add a counties layer."""
    cfg = load_config(write_region(root))
    path = run_build(cfg, root / "geodata", progress=False)
    boxes = [shapely.box(-83.01 + 0.01 * k, 39.99, -83.0 + 0.01 * k, 40.03) for k in range(3)]
    counties = gpd.GeoDataFrame(COUNTIES, geometry=boxes, crs="EPSG:4326")
    add_layers(root / "geodata", "gridton", {"counties": counties})
    return path


def add_layers(geodata: Path, region: str, frames: dict[str, pd.DataFrame]) -> None:
    """Write a new build of ``region`` with extra layers (the rest from the current build)."""
    old = Bundle.open(geodata / region).manifest
    with write_bundle(geodata, region, seed_from_current=True) as writer:
        for name, frame in frames.items():
            writer.write_layer(name, frame)
        keep = {k: v for k, v in old.items() if k not in ("format_version", "build_id", "layers")}
        write_manifest(writer, keep)


def make_bundle(geodata: Path, region: str, frames: dict[str, pd.DataFrame], **manifest) -> Bundle:
    """A bundle holding just ``frames`` (no pipeline), for edge cases."""
    with write_bundle(geodata, region) as writer:
        for name, frame in frames.items():
            writer.write_layer(name, frame)
        write_manifest(writer, {"region": region, "title": region.title(), "fictional": True,
                                "built_at": "2026-01-01T00:00:00+00:00", **manifest})  # fmt: skip
    return Bundle.open(geodata / region)


def shared_gridton(factory: pytest.TempPathFactory) -> Bundle:
    """Gridton built once per test session (read-only: tests never write into it)."""
    root = factory.getbasetemp() / "gridton-shared"
    if (root / "geodata" / "gridton" / "manifest.json").exists():
        return Bundle.open(root / "geodata" / "gridton")
    root.mkdir(exist_ok=True)
    return Bundle.open(build_gridton(root))


@pytest.fixture(scope="module")
def gridton(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return shared_gridton(tmp_path_factory)


def _zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


def _read_zip_text(path: Path, member: str) -> str:
    with zipfile.ZipFile(path) as zf:
        return zf.read(member).decode("utf-8")


def _dictionary(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_read_zip_text(path, "data_dictionary.csv"))))


def _read_back(path: Path, fmt: str, layer: str, tmp: Path) -> pd.DataFrame:
    """Open one exported layer with geopandas/pyogrio; full field names restored."""
    if fmt == "shp" and f"{layer}.csv" in _zip_names(path):  # a table without geometry
        with zipfile.ZipFile(path) as zf:
            return pd.read_csv(zf.open(f"{layer}.csv"), dtype={"fips": str})
    if fmt == "shp":
        frame = gpd.read_file(f"zip://{path}!{layer}.shp")
        short = {r["field"]: r["full_name"] for r in _dictionary(path) if r["layer"] == layer}
        return frame.rename(columns=short)
    if fmt == "gpkg":
        with zipfile.ZipFile(path) as zf:
            zf.extractall(tmp)
        gpkg = next(tmp.glob("*.gpkg"))
        return pyogrio.read_dataframe(gpkg, layer=layer)
    if fmt == "geojson":
        return gpd.read_file(f"zip://{path}!{layer}.geojson")
    with zipfile.ZipFile(path) as zf:
        return pd.read_csv(zf.open(f"{layer}.csv"), dtype={"area_id": str, "fips": str})


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_opens_and_matches_the_bundle(gridton, fmt, tmp_path):
    out = export_layers(gridton, tmp_path / "out", fmt=fmt)
    assert out.parent == (tmp_path / "out").resolve()
    assert out.name == f"gridton-{FORMATS[fmt][1]}.zip"
    names = _zip_names(out)
    assert {"metadata.json", "README.txt", "data_dictionary.csv"} <= set(names)
    assert all("/" not in n and ".." not in n for n in names)

    layers = ["providers", "areas", "counties", "isochrones", "deserts", "grid", "region", "people",
              "street_names"]  # fmt: skip
    assert sorted(json.loads(_read_zip_text(out, "metadata.json"))["layers"]) == sorted(layers)
    for layer in layers:
        expected = gridton.read_layer(layer)
        got = _read_back(out, fmt, layer, tmp_path / f"x-{layer}")
        assert len(got) == len(expected), layer
        if fmt != "csv":
            assert isinstance(got, gpd.GeoDataFrame)
            assert got.crs.to_epsg() == 4326, layer
        else:
            assert "geometry" not in got.columns
    # values, per layer, against the bundle
    areas = gridton.read_layer("areas")
    got = _read_back(out, fmt, "areas", tmp_path / "a").set_index("area_id").loc[areas["area_id"]]
    assert got["population"].tolist() == areas["population"].tolist()
    np.testing.assert_allclose(got["t_methadone_drive"], areas["t_methadone_drive"], rtol=1e-9)
    np.testing.assert_allclose(got["share_methadone_drive"], areas["share_methadone_drive"])
    providers = gridton.read_layer("providers")
    got = _read_back(out, fmt, "providers", tmp_path / "p").set_index("id").loc[providers["id"]]
    assert got["name"].tolist() == providers["name"].tolist()
    assert got["category"].tolist() == providers["category"].tolist()
    np.testing.assert_allclose(got["lon"], providers["lon"])
    if fmt != "csv":
        np.testing.assert_allclose(got.geometry.x, providers.geometry.x, atol=1e-7)
    iso = gridton.read_layer("isochrones")
    got = _read_back(out, fmt, "isochrones", tmp_path / "i")
    assert got["population"].tolist() == iso["population"].tolist()
    if fmt != "csv":
        area = shapely.area(got.geometry.array)
        np.testing.assert_allclose(area, shapely.area(iso.geometry.array), rtol=1e-4)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_no_suppressed_value_leaks(gridton, fmt, tmp_path):
    out = export_layers(gridton, tmp_path, layers=["counties"], fmt=fmt)
    got = _read_back(out, fmt, "counties", tmp_path / "x").set_index("fips")
    assert pd.isna(got.loc["99003", "deaths"])
    assert pd.isna(got.loc["99003", "rate_per_100k"])
    assert got.loc["99001", "deaths"] == 25
    assert got.loc["99005", "rate_per_100k"] == pytest.approx(15.6)
    for member in _zip_names(out):
        if member.endswith((".csv", ".geojson", ".json", ".txt")):
            text = _read_zip_text(out, member)
            assert "99003,Middle County,0" not in text


def test_a_small_count_in_a_bundle_stops_the_export(tmp_path):
    bad = pd.DataFrame({"fips": ["1"], "deaths": [4.0], "lon": [0.0], "lat": [0.0]})
    bundle = make_bundle(tmp_path / "geo", "leaky", {"counties": bad})
    with pytest.raises(BundleError, match=r"counties.*deaths.*between 1 and 9"):
        export_layers(bundle, tmp_path / "out", fmt="csv")
    assert list((tmp_path / "out").iterdir()) == []


def test_shapefile_parts_names_and_dictionary(gridton, tmp_path):
    out = export_layers(gridton, tmp_path, layers=["areas", "providers"], fmt="shp")
    names = set(_zip_names(out))
    for layer in ("areas", "providers"):
        assert {f"{layer}{ext}" for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg")} <= names
        assert _read_zip_text(out, f"{layer}.cpg").strip() == "UTF-8"
        assert "WGS_1984" in _read_zip_text(out, f"{layer}.prj")
    dictionary = _dictionary(out)
    for layer in ("areas", "providers"):
        fields = pyogrio.read_info(f"/vsizip/{out}/{layer}.shp")["fields"].tolist()
        rows = [r for r in dictionary if r["layer"] == layer]
        assert [r["field"] for r in rows] == fields
        assert all(len(f.encode("utf-8")) <= 10 for f in fields)
        assert len({f.lower() for f in fields}) == len(fields)
    by_full = {r["full_name"]: r for r in dictionary if r["layer"] == "areas"}
    assert by_full["t_methadone_drive"]["field"] == "t_mth_dr"
    assert by_full["t_methadone_drive"]["unit"] == "minutes"
    assert by_full["desert_people_methadone_drive"]["field"] == "dp_mth_dr"
    assert "more than 2 minutes by car" in by_full["desert_people_methadone_drive"]["description"]
    assert by_full["not_covered_drive"]["field"] == "not_cov_dr"
    assert by_full["not_covered_drive"]["unit"] == "people"
    by_full = {r["full_name"]: r for r in dictionary if r["layer"] == "providers"}
    assert by_full["geocode_quality"]["field"] == "geocode_q"
    assert by_full["snap_m_drive"]["unit"] == "metres"


def test_shapefile_names_cut_long_and_colliding_names():
    cols = ["population_covered", "population_covered_2020", "abcdefghijklmnop",
            "abcdefghijklmnoq", "t_naltrexone_walk", "T_NALTREXONE_WALK", "éééééééééé"]  # fmt: skip
    short = shapefile_names(cols)
    assert list(short) == cols
    values = list(short.values())
    assert all(len(v.encode("utf-8")) <= 10 for v in values)
    assert len({v.lower() for v in values}) == len(values)
    assert short["abcdefghijklmnop"] == "abcdefghij"
    assert short["abcdefghijklmnoq"] == "abcdefgh_1"
    assert short["t_naltrexone_walk"] == "t_ntx_wk"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=40, unique=True))
def test_shapefile_names_are_always_short_and_unique(cols):
    short = shapefile_names(cols)
    values = list(short.values())
    assert all(0 < len(v.encode("utf-8")) <= 10 for v in values)
    assert len({v.lower() for v in values}) == len(values)


def test_metadata_carries_sources_settings_privacy_and_fictional(gridton, tmp_path):
    out = export_layers(gridton, tmp_path, layers="providers", fmt="geojson")
    meta = json.loads(_read_zip_text(out, "metadata.json"))
    readme = _read_zip_text(out, "README.txt")
    assert meta["fictional"] is True
    assert "FICTIONAL" in meta["title"]
    assert readme.startswith("*** FICTIONAL DATA ***")
    assert meta["built_at"] == gridton.manifest["built_at"]
    assert meta["settings"]["thresholds_min"]["methadone"] == {"drive": 2.0, "walk": 10.0}
    assert meta["settings"]["drive_speeds_kph"]["residential"] > 0
    assert meta["settings"]["congestion_factor"] == 1.0
    assert any("1 to 9" in rule for rule in meta["privacy"])
    assert {i["role"] for i in meta["inputs"]} >= {"network.osm", "areas"}
    assert all(i["licence"] for i in meta["inputs"])
    assert "Opioid treatment program (methadone): driving 2, walking 10" in readme
    # no local folder of the machine that built the bundle
    text = json.dumps(meta)
    assert str(gridton.path.parent.parent) not in text
    assert "/" not in "".join(i["file"] for i in meta["inputs"])


def test_osm_attribution_is_added_for_openstreetmap_inputs():
    manifest = {"inputs": [
        {"role": "network.osm", "source": "OpenStreetMap extract", "date": "2015",
         "licence": "ODbL 1.0, © OpenStreetMap contributors"},
        {"role": "areas", "source": "TIGER/Line", "date": "2010", "licence": "Public domain"},
    ]}  # fmt: skip
    lines = attribution_lines(manifest)
    assert lines[0] == (
        "OpenStreetMap extract (2015); licence: ODbL 1.0, © OpenStreetMap contributors"
    )
    assert lines[-1] == OSM_ATTRIBUTION
    assert "ODbL" not in "".join(attribution_lines({"inputs": manifest["inputs"][1:]}))


def test_filters_select_rows_and_metric_columns(gridton, tmp_path):
    filters = {"category": "methadone", "mode": ["walk"], "minutes": [4, 6]}
    layers = ["providers", "areas", "isochrones"]
    out = export_layers(gridton, tmp_path, layers=layers, fmt="csv", filters=filters)
    with zipfile.ZipFile(out) as zf:
        providers = pd.read_csv(zf.open("providers.csv"))
        areas = pd.read_csv(zf.open("areas.csv"))
        iso = pd.read_csv(zf.open("isochrones.csv"))
    assert providers["category"].unique().tolist() == ["methadone"]
    assert len(providers) == (gridton.read_layer("providers")["category"] == "methadone").sum()
    metric = [c for c in areas.columns if c.startswith(("t_", "share_", "desert_", "nearest_"))]
    assert metric and all(c.endswith("_methadone_walk") for c in metric)
    assert len(areas) == len(gridton.read_layer("areas"))
    assert sorted(set(zip(iso["category"], iso["mode"], iso["minutes"], strict=True))) == [
        ("methadone", "walk", 4.0), ("methadone", "walk", 6.0)]  # fmt: skip
    meta = json.loads(_read_zip_text(out, "metadata.json"))
    assert meta["filters"]["category"] == ["methadone"]


def test_bbox_filter_keeps_features_that_intersect(gridton, tmp_path):
    providers = gridton.read_layer("providers")
    first = providers.geometry.iloc[0]
    bbox = (first.x - 0.0005, first.y - 0.0005, first.x + 0.0005, first.y + 0.0005)
    out = export_layers(gridton, tmp_path, layers=["providers", "people"], fmt="geojson",
                        filters={"bbox": bbox})  # fmt: skip
    got = gpd.read_file(f"zip://{out}!providers.geojson")
    assert got["id"].tolist() == [providers["id"].iloc[0]]
    people = gpd.read_file(f"zip://{out}!people.geojson")
    assert 0 < len(people) < len(gridton.read_layer("people"))
    assert people.geometry.x.between(bbox[0], bbox[2]).all()


def test_empty_selection_says_so_and_writes_nothing(gridton, tmp_path):
    with pytest.raises(ExportError, match=r"nothing to export: providers .*category=pharmacy"):
        export_layers(gridton, tmp_path, layers=["providers"], fmt="shp",
                      filters={"category": "pharmacy"})  # fmt: skip
    with pytest.raises(ExportError, match="nothing to export"):
        export_layers(gridton, tmp_path, layers=["providers"], fmt="gpkg",
                      filters={"bbox": (10, 10, 11, 11)})  # fmt: skip
    assert list(tmp_path.iterdir()) == []
    # a partly empty selection writes the layers that have rows and says which were left out
    out = export_layers(gridton, tmp_path, layers=["providers", "deserts"], fmt="csv",
                        filters={"category": "buprenorphine", "mode": "drive"})  # fmt: skip
    meta = json.loads(_read_zip_text(out, "metadata.json"))
    assert list(meta["layers"]) == ["providers"]
    assert meta["omitted_layers"] == {"deserts": "no rows match the filters"}
    assert "deserts.csv" not in _zip_names(out)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"fmt": "kml"}, r"unknown export format 'kml'; valid formats: shp, gpkg, geojson, csv"),
        ({"fmt": "csv", "layers": ["roads"]}, r"unknown layer 'roads'; valid layers: providers"),
        ({"fmt": "csv", "layers": ["barriers"]}, r"'barriers' is not in this bundle.*present"),
        ({"fmt": "csv", "layers": []}, r"no layer selected; choose from: providers"),
        ({"fmt": "csv", "filters": {"colour": "red"}}, r"unknown filter 'colour'; valid filters"),
        ({"fmt": "csv", "filters": {"category": "opioid"}}, r"category 'opioid'; valid: methadone"),
        ({"fmt": "csv", "filters": {"mode": "bike"}}, r"unknown mode 'bike'; valid: drive, walk"),
        ({"fmt": "csv", "filters": {"bbox": (1, 2, 0, 3)}}, r"west < east"),
        ({"fmt": "csv", "filters": {"bbox": "nowhere"}}, r"four numbers"),
        ({"fmt": "csv", "filters": {"bbox": (0, 0, 500000, 4000000)}}, r"degrees"),
    ],
)  # fmt: skip
def test_bad_requests_give_clear_errors(gridton, tmp_path, kwargs, pattern):
    with pytest.raises(ExportError, match=pattern):
        export_layers(gridton, tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("layer", ["../../etc", "/etc/passwd", "..", "areas/../../x", "~root"])
def test_path_traversal_in_layer_names_is_refused(gridton, tmp_path, layer):
    out_dir = tmp_path / "exports"
    with pytest.raises(ExportError, match="unknown layer"):
        export_layers(gridton, out_dir, layers=[layer], fmt="shp")
    assert list(tmp_path.iterdir()) == []  # validated before anything is created


def test_path_traversal_in_region_and_layer_names_of_a_bundle(tmp_path):
    frame = gpd.GeoDataFrame({"id": ["a"]}, geometry=[shapely.Point(1, 2)], crs="EPSG:4326")
    bundle = make_bundle(tmp_path / "geo", "evil", {"a": frame, "b": frame, "c": frame})
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    manifest["region"] = "../../etc"
    layers = manifest["layers"]
    manifest["layers"] = {"../../evil": layers["a"], "evil": layers["b"], "/README": layers["c"]}
    (bundle.path / "manifest.json").write_text(json.dumps(manifest))
    bundle = Bundle.open(bundle.path)
    out_dir = tmp_path / "deep" / "exports"
    out_dir.mkdir(parents=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    for fmt in FORMATS:
        out = export_layers(bundle, out_dir, fmt=fmt)
        assert out.parent == out_dir.resolve()
        assert out.name.startswith("etc-")
        assert all("/" not in n and not n.startswith("..") for n in _zip_names(out))
    names = _zip_names(out_dir / "etc-geojson.zip")
    assert {"evil.geojson", "evil_1.geojson", "README_1.geojson", "README.txt"} <= set(names)
    assert len(names) == len(set(names))
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["exports"]


def test_safe_path_and_safe_name(tmp_path):
    assert safe_path(tmp_path, "a.zip") == tmp_path.resolve() / "a.zip"
    for bad in ("../a.zip", "/etc/passwd", "x/../../a", ".", ""):
        with pytest.raises(ExportError, match="outside the export folder"):
            safe_path(tmp_path, bad)
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(ExportError):
        safe_path(tmp_path, "link/escape.zip")
    assert safe_name("../../etc") == "etc"
    assert safe_name("..") == "export"
    assert safe_name("Franklin County, OH") == "Franklin_County_OH"


def test_mixed_points_and_polygons_split_in_shapefile(tmp_path):
    frame = gpd.GeoDataFrame(
        {"id": ["a", "b", "c"], "category": ["methadone", "syringe_services", "pharmacy"],
         "generalized": [False, True, False], "address": ["1 Main St", "2 Hidden Rd", "3 Elm"],
         "lon": [1.0, 0.4, 3.0], "lat": [2.0, 0.6, 4.0], "node_drive": [7, 8, 9],
         "snap_m_drive": [12.5, 30.0, 4.0]},
        geometry=[shapely.Point(1, 2), shapely.box(0, 0, 1, 1), shapely.Point(3, 4)],
        crs="EPSG:4326",
    )  # fmt: skip
    bundle = make_bundle(tmp_path / "geo", "mixed", {"providers": frame})
    out = export_layers(bundle, tmp_path / "out", fmt="shp")
    points = gpd.read_file(f"zip://{out}!providers_points.shp")
    polygons = gpd.read_file(f"zip://{out}!providers_polygons.shp")
    assert points["id"].tolist() == ["a", "c"]
    assert polygons["id"].tolist() == ["b"]
    assert polygons["gen"].tolist() == [1]
    # the generalized site keeps no address, coordinates or snap; node indices never leave
    assert polygons[["address", "lon", "lat", "snap_m_dr"]].isna().all(axis=None)
    assert points["address"].tolist() == ["1 Main St", "3 Elm"]
    assert points["snap_m_dr"].tolist() == [12.5, 4.0]
    assert "node_drive" not in points.columns and "node_drive" not in polygons.columns
    out = export_layers(bundle, tmp_path / "out", fmt="gpkg")
    with zipfile.ZipFile(out) as zf:
        zf.extractall(tmp_path / "g")
    got = pyogrio.read_dataframe(tmp_path / "g" / "mixed.gpkg", layer="providers")
    assert got.geom_type.tolist() == ["Point", "Polygon", "Point"]


@pytest.mark.slow
@pytest.mark.shared
def test_franklin_exports(tmp_path):
    """The real region: every layer in every format (≈25 s build + exports)."""
    if not SHARED_FRANKLIN.is_dir():
        pytest.skip(f"real data not found at {SHARED_FRANKLIN}")
    cfg = load_config(ROOT / "geodata" / "configs" / "franklin-oh.yaml")
    bundle = Bundle.open(run_build(cfg, tmp_path / "geo", progress=False))
    for fmt in FORMATS:
        out = export_layers(bundle, tmp_path / "out", fmt=fmt)
        meta = json.loads(_read_zip_text(out, "metadata.json"))
        assert meta["fictional"] is False
        assert OSM_ATTRIBUTION in meta["attribution"]
        areas = _read_back(out, fmt, "areas", tmp_path / fmt)
        assert len(areas) == 887
        assert int(areas["population"].sum()) == 1_163_414


# --------------------------------------------------------------------------------------------
# CLI: `run()` with parsed arguments now; through the real command once etl/cli.py wires it


def parse_cli(argv: list[str]) -> argparse.Namespace:
    """Parse like `access-atlas`, with the commands of etl.cli_export registered."""
    parser = argparse.ArgumentParser(prog="access-atlas")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--geodata-dir", type=Path, default=None)
    common.add_argument("-q", "--quiet", action="store_true")
    register(sub, common)
    return parser.parse_args(argv)


def cli_wired() -> bool:
    from etl.cli import _parser

    actions = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return bool(actions) and set(COMMANDS) <= set(actions[0].choices)


def test_cli_export_by_region_name(gridton, tmp_path, capsys):
    geodata = gridton.path.parents[2]
    args = parse_cli(["export", "gridton", "--format", "csv", "--out", str(tmp_path / "x"),
                      "--category", "methadone", "--mode", "drive",
                      "--layers", "providers,areas"])  # fmt: skip
    assert run(args, geodata) == 0
    out = Path(capsys.readouterr().out.strip())
    assert out == (tmp_path / "x" / "gridton-csv.zip").resolve()
    assert {"providers.csv", "areas.csv"} <= set(_zip_names(out))
    meta = json.loads(_read_zip_text(out, "metadata.json"))
    assert meta["filters"] == {"category": ["methadone"], "mode": ["drive"]}


def test_cli_export_by_bundle_folder_and_bbox(gridton, tmp_path, capsys):
    args = parse_cli(["export", str(gridton.path), "--format", "geojson", "--out", str(tmp_path),
                      "--bbox", "-84", "39", "-82", "41", "--layers", "providers"])  # fmt: skip
    assert run(args, tmp_path / "no-geodata-needed") == 0
    out = Path(capsys.readouterr().out.strip())
    got = gpd.read_file(f"zip://{out}!providers.geojson")
    assert len(got) == len(gridton.read_layer("providers"))


@pytest.mark.parametrize("region", ["../../etc", "/etc", "a/b", "..", "nowhere"])
def test_cli_refuses_bad_region_names(gridton, tmp_path, region):
    args = parse_cli(["export", region, "--out", str(tmp_path / "x")])
    pattern = "not a region bundle|no region bundle|neither a bundle folder nor a region name"
    with pytest.raises(BundleError, match=pattern):
        run(args, gridton.path.parents[2])
    assert not (tmp_path / "x").exists()


def test_cli_export_bad_layer_is_an_atlas_error(gridton, tmp_path):
    args = parse_cli(["export", "gridton", "--layers", "../../etc", "--out", str(tmp_path)])
    with pytest.raises(ExportError, match=r"unknown layer '\.\./\.\./etc'"):
        run(args, gridton.path.parents[2])


def test_cli_export_through_the_real_command(gridton, tmp_path):
    if not cli_wired():
        pytest.skip("etl/cli.py does not register etl.cli_export's commands yet")
    geodata = str(gridton.path.parents[2])
    cmd = [sys.executable, "-m", "etl", "export", "gridton", "--geodata-dir", geodata,
           "--format", "shp", "--out", str(tmp_path), "-q"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).name == "gridton-shapefile.zip"
    bad = subprocess.run([*cmd[:-1], "--layers", "roads"], capture_output=True, text=True,
                         cwd=ROOT, check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "unknown layer 'roads'; valid layers:" in bad.stderr
    empty = subprocess.run([*cmd[:-1], "--category", "pharmacy", "--layers", "providers"],
                           capture_output=True, text=True, cwd=ROOT, check=False)  # fmt: skip
    assert empty.returncode == 2
    assert "nothing to export" in empty.stderr


# --------------------------------------------------------------------------------------------
# the built-in fictional region, through the real pipeline


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """Millbrook County (fictional), generated and built in a temporary folder."""
    root = tmp_path_factory.mktemp("demo")
    (root / "configs").mkdir()
    shutil.copy(ROOT / "geodata" / "configs" / "demo.yaml", root / "configs" / "demo.yaml")
    cfg = load_config(root / "configs" / "demo.yaml")
    return Bundle.open(run_build(cfg, root / "geodata", progress=False))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_demo_region_exports(demo, fmt, tmp_path):
    out = export_layers(demo, tmp_path, fmt=fmt)
    meta = json.loads(_read_zip_text(out, "metadata.json"))
    assert meta["fictional"] is True
    assert "FICTIONAL" in _read_zip_text(out, "README.txt").splitlines()[0]
    assert set(meta["layers"]) == set(demo.layer_names)
    counties = _read_back(out, fmt, "counties", tmp_path / "c").set_index("fips")
    bundle_counties = demo.read_layer("counties").set_index("fips")
    # the region's one county only: its neighbours in the table are not the region's
    assert set(bundle_counties.index) == {"99001"}
    hidden = bundle_counties.index[bundle_counties["suppressed"].astype(bool)]
    assert counties.loc[hidden, ["deaths", "rate_per_100k"]].isna().all(axis=None)
    shown = bundle_counties.index[~bundle_counties["suppressed"].astype(bool)]
    assert (counties.loc[shown, "deaths"].astype(float) >= 10).all()
    if fmt == "shp":
        parts = [gpd.read_file(f"zip://{out}!providers_{k}.shp") for k in ("points", "polygons")]
        sites = pd.concat(parts).rename(columns={"gen": "generalized"})
    else:
        sites = _read_back(out, fmt, "providers", tmp_path / "p")
    hidden_sites = sites[sites["generalized"].astype(bool)]
    assert len(hidden_sites) >= 1
    assert hidden_sites[["lon", "lat", "address"]].isna().all(axis=None)
    assert not any(c.startswith("node_") for c in sites.columns)
    if fmt != "csv":
        assert set(hidden_sites.geometry.geom_type) == {"Polygon"}
