"""The bad-input corpus through the ``access-atlas`` CLI: one clear message, the bundle kept.

Each case takes the tiny Gridton region (``tests/region_fixture.py``), swaps one input for a
broken file from ``tests/data/bad_inputs/`` (or breaks it in code, for the truncated PBF and
the config) and runs ``access-atlas build --overwrite`` over a geodata folder that holds a
good bundle. Refused inputs exit with status 2 and one ``access-atlas: error:`` line naming
the file and the problem, no traceback, and leave the previous bundle byte-identical. Inputs
the pipeline can repair (swapped lon/lat, self-intersecting polygons) build, and the repair is
recorded. These complement the ten cases of ``tests/test_cli.py``.

The CLI runs in process (``etl.cli.main``, the console script's entry point) to keep the
corpus fast; one case also runs as a separate process to check the exit status and output.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import shapely
import yaml

from etl.bundle.store import Bundle
from etl.cli import main as cli_main
from tests.region_fixture import write_region

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "bad_inputs"
CLI = [sys.executable, "-m", "etl"]


def tree_digest(path: Path) -> str:
    """A digest of every file under a bundle (resolved), to prove it is byte-identical."""
    h = hashlib.sha256()
    root = path.resolve()
    for f in sorted(root.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def atlas(*args: str | Path) -> tuple[int, str]:
    """Run the CLI in process; return its exit status and what it printed to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = cli_main([*map(str, args), "--no-progress"])
    return status, err.getvalue()


@pytest.fixture(scope="module")
def good_geo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A geodata folder with a good Gridton bundle."""
    root = tmp_path_factory.mktemp("good")
    geo = root / "geo"
    status, err = atlas("build", write_region(root / "inputs"), "--geodata-dir", geo)
    assert status == 0, err
    return geo


@pytest.fixture
def geo(good_geo: Path, tmp_path: Path) -> Path:
    """A private copy of the good geodata folder (the bundle link is relative)."""
    return Path(shutil.copytree(good_geo, tmp_path / "geo", symlinks=True))


# ---------------------------------------------------------------------------------------
# Breaking one input
# ---------------------------------------------------------------------------------------

Breaker = Callable[[Path, dict[str, Any]], None]


def _use(name: str) -> str:
    """Copy a corpus file into the region's raw folder; return its config path."""
    return f"raw/{name}"


def _providers(file: str) -> Breaker:
    def brk(raw: Path, cfg: dict[str, Any]) -> None:
        shutil.copy(CORPUS / file, raw / file)
        cfg["providers"][0]["path"] = _use(file)

    return brk


def _areas(file: str) -> Breaker:
    def brk(raw: Path, cfg: dict[str, Any]) -> None:
        shutil.copy(CORPUS / file, raw / file)
        cfg["areas"]["path"] = _use(file)

    return brk


def _population(file: str) -> Breaker:
    def brk(raw: Path, cfg: dict[str, Any]) -> None:
        shutil.copy(CORPUS / file, raw / file)
        cfg["areas"]["population"]["path"] = _use(file)

    return brk


def _overdose(file: str, fmt: str) -> Breaker:
    def brk(raw: Path, cfg: dict[str, Any]) -> None:
        shutil.copy(CORPUS / file, raw / file)
        cfg["overdose"] = [{"path": _use(file), "format": fmt, "source": "test corpus"}]

    return brk


def _zoning(raw: Path, cfg: dict[str, Any]) -> None:
    for file in ("zoning_districts.geojson", "zoning_rules_missing_code.csv"):
        shutil.copy(CORPUS / file, raw / file)
    cfg["zoning"] = {
        "path": _use("zoning_districts.geojson"),
        "code_column": "ZONE",
        "rules": _use("zoning_rules_missing_code.csv"),
        "source": "test corpus",
    }


def _transit(folder: str) -> Breaker:
    def brk(raw: Path, cfg: dict[str, Any]) -> None:
        shutil.copytree(CORPUS / folder, raw / folder)
        cfg["transit"] = {"path": _use(folder), "source": "test corpus"}

    return brk


def _truncated_pbf(raw: Path, cfg: dict[str, Any]) -> None:
    """The region's own street grid as a real PBF, cut off at 60 % (a broken download)."""
    import osmium

    pbf = raw / "gridton.osm.pbf"
    writer = osmium.SimpleWriter(str(pbf))
    for obj in osmium.FileProcessor(str(raw / "gridton.osm")):
        writer.add(obj)
    writer.close()
    data = pbf.read_bytes()
    pbf.write_bytes(data[: int(len(data) * 0.6)])
    cfg["network"]["osm"]["path"] = "raw/gridton.osm.pbf"


def _unknown_nested_keys(raw: Path, cfg: dict[str, Any]) -> None:
    cfg["providers"][0]["colums"] = cfg["providers"][0].pop("columns")
    cfg["access"]["band_min"] = cfg["access"].pop("bands_min")


def _no_provider_lists(raw: Path, cfg: dict[str, Any]) -> None:
    cfg["providers"] = []


#: case -> (how to break the region, fragments the one error line must hold)
REFUSED: dict[str, tuple[Breaker, list[str]]] = {
    "provider csv in the wrong encoding": (
        _providers("providers_cp1252.csv"),
        [
            "providers_cp1252.csv",
            "not valid utf-8",
            "line 3",
            "it decodes as cp1252",
            "set `encoding: latin-1`",
        ],
    ),
    "overdose table in latin-1": (
        _overdose("ohio_overdose_latin1.csv", "ohio_county"),
        ["ohio_overdose_latin1.csv", "not readable as utf-8-sig", "`encoding: latin-1`"],
    ),
    "duplicated GEOIDs in areas": (
        _areas("areas_duplicated_geoid.geojson"),
        ["areas_duplicated_geoid.geojson", "duplicated GEOID 990010001002", "must be unique"],
    ),
    "duplicated GEOIDs in population": (
        _population("population_duplicated_geoid.csv"),
        ["population_duplicated_geoid.csv", "row 4", "990010001002 appears more than once"],
    ),
    "duplicated rows in an overdose table": (
        _overdose("ohio_overdose_duplicated_rows.csv", "ohio_county"),
        ["ohio_overdose_duplicated_rows.csv", "rows 2, 3", "39049 appears more than once"],
    ),
    "malformed CDC WONDER file": (
        _overdose("cdc_wonder_inconsistent_shift.txt", "cdc_wonder"),
        [
            "cdc_wonder_inconsistent_shift.txt",
            "row 3 has 6 fields but most rows have 7",
            "refusing to guess",
        ],
    ),
    "transit stops not in UTF-8": (
        _transit("gtfs_cp1252"),
        ["gtfs_cp1252/stops.txt", "line 3 is not UTF-8", "GTFS files must be UTF-8"],
    ),
    "overdose county that does not map": (
        _overdose("ohio_overdose_unmapped_county.csv", "ohio_county"),
        [
            "ohio_overdose_unmapped_county.csv",
            "row 3",
            "'Frankln' is not a OH county name",
            "did you mean 'Franklin'",
        ],
    ),
    "zoning code missing from the rule table": (
        _zoning,
        [
            "zoning_districts.geojson",
            "feature 4",
            "zone code 'C-9' is not in the rule table",
            "zoning_rules_missing_code.csv",
        ],
    ),
    "empty provider file": (
        _providers("providers_header_only.csv"),
        ["providers_header_only.csv", "no rows"],
    ),
    "no provider lists": (
        _no_provider_lists,
        ["gridton.yaml", "providers: List should have at least 1 item"],
    ),
    "pbf truncated mid-file": (
        _truncated_pbf,
        ["gridton.osm.pbf", "unexpected EOF", "truncated"],
    ),
    "unknown keys deep in the config": (
        _unknown_nested_keys,
        ["gridton.yaml", "providers.0.colums: unknown key", "access.band_min: unknown key"],
    ),
}


def _broken_region(root: Path, brk: Breaker) -> Path:
    cfg_path = write_region(root)
    cfg = yaml.safe_load(cfg_path.read_text())
    brk(root / "raw", cfg)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg_path


#: Cases whose message does not yet name the file and problem (kept visible, strict).
KNOWN_GAPS: dict[str, str] = {}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[c]))
        if c in KNOWN_GAPS
        else c
        for c in sorted(REFUSED)
    ],
)
def test_refused_input_names_file_and_problem_and_keeps_the_bundle(
    geo: Path, tmp_path: Path, case: str
) -> None:
    brk, fragments = REFUSED[case]
    before = tree_digest(geo / "gridton")
    link = os.readlink(geo / "gridton")
    cfg = _broken_region(tmp_path / "bad", brk)
    status, err = atlas("build", cfg, "--geodata-dir", geo, "--overwrite")
    assert status == 2, err
    errors = [ln for ln in err.splitlines() if ln.startswith("access-atlas: error:")]
    assert len(errors) == 1, err
    message = err[err.index("access-atlas: error:") :]
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "Traceback" not in err
    assert os.readlink(geo / "gridton") == link
    assert tree_digest(geo / "gridton") == before
    assert not [p for p in (geo / ".builds" / "gridton").iterdir() if p.name.endswith(".tmp")]


def test_the_real_console_command_exits_2_with_one_line(geo: Path, tmp_path: Path) -> None:
    before = tree_digest(geo / "gridton")
    brk, fragments = REFUSED["provider csv in the wrong encoding"]
    cfg = _broken_region(tmp_path / "bad", brk)
    res = subprocess.run(
        [*CLI, "build", str(cfg), "--geodata-dir", str(geo), "--overwrite", "--no-progress"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("access-atlas: error:")]
    assert len(lines) == 1 and all(f in lines[0] for f in fragments), res.stderr
    assert "Traceback" not in res.stderr
    assert tree_digest(geo / "gridton") == before


# ---------------------------------------------------------------------------------------
# Inputs the pipeline repairs, and says so
# ---------------------------------------------------------------------------------------


def test_swapped_lon_lat_is_fixed_and_flagged(geo: Path, tmp_path: Path) -> None:
    old = Bundle.open(geo / "gridton").manifest["build_id"]
    cfg = _broken_region(tmp_path / "bad", _providers("providers_swapped_lonlat.csv"))
    status, err = atlas("build", cfg, "--geodata-dir", geo, "--overwrite")
    assert status == 0, err
    bundle = Bundle.open(geo / "gridton")
    assert bundle.manifest["build_id"] != old
    report = bundle.manifest["stages"]["providers"]["sources"]["clinics"]
    assert report["swapped"] == 1
    prov = bundle.read_layer("providers").set_index("name")
    east = prov.loc["East Side Health"]
    assert "swapped lon/lat" in east["notes"]
    assert east.geometry.x == pytest.approx(-82.980) and east.geometry.y == pytest.approx(40.010)
    assert prov.loc["North Pharmacy", "notes"] in ("", None)


def test_self_intersecting_area_is_repaired_and_counted(
    geo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = _broken_region(tmp_path / "bad", _areas("areas_invalid_geometry.geojson"))
    with caplog.at_level(logging.INFO, logger="etl.inputs.areas"):
        status, err = atlas("build", cfg, "--geodata-dir", geo, "--overwrite")
    assert status == 0, err
    assert "repaired 1 invalid polygons" in caplog.text
    assert "areas_invalid_geometry.geojson" in caplog.text
    areas = Bundle.open(geo / "gridton").read_layer("areas")
    assert len(areas) == 4 and shapely.is_valid(areas.geometry.to_numpy()).all()
    assert int(areas["population"].sum()) == 4000
