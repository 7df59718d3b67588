"""The ``access-atlas`` command, run as a user runs it: builds, stage commands, bad input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml

from etl.bundle.store import Bundle
from tests.region_fixture import write_osm, write_region

ROOT = Path(__file__).resolve().parents[1]


def atlas(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (``python -m etl``) and capture its output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "etl", *map(str, args), "--no-progress"],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=300,
        check=False,
    )


def tree_digest(path: Path) -> str:
    """A digest of every file under a bundle (resolved), to prove it is byte-identical."""
    h = hashlib.sha256()
    root = path.resolve()
    for f in sorted(root.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("gridton")
    cfg = write_region(root)
    geo = root / "geo"
    res = atlas("build", cfg, "--geodata-dir", geo)
    assert res.returncode == 0, res.stderr
    return cfg, geo


def test_build_writes_a_complete_bundle(built: tuple[Path, Path]) -> None:
    cfg, geo = built
    bundle = Bundle.open(geo / "gridton")
    m = bundle.manifest
    assert m["region"] == "gridton" and m["fictional"] is True
    assert (geo / "gridton").is_symlink()
    roles = {i["role"]: i for i in m["inputs"]}
    assert set(roles) == {"network.osm", "providers.clinics", "areas", "areas.population"}
    raw_osm = cfg.parent / "raw" / "gridton.osm"
    assert roles["network.osm"]["sha256"] == hashlib.sha256(raw_osm.read_bytes()).hexdigest()
    assert set(m["layers"]) >= {
        "providers",
        "areas",
        "people",
        "isochrones",
        "deserts",
        "grid",
        "region",
    }
    assert m["stages"]["network"]["drive"] == {
        "nodes": 144,
        "edges": 517,
        "junctions": 140,
        "file": "network/drive.npz",
    }
    assert (
        m["stages"]["network"]["walk"]["edges"] == 528
    )  # one one-way street: 11 fewer drive edges
    assert m["stages"]["areas"]["population"] == 4000
    assert m["stages"]["providers"]["by_category"] == {"buprenorphine": 2, "methadone": 1}
    assert m["settings"]["thresholds_min"]["methadone"] == {"drive": 2, "walk": 10}
    assert m["software"]["scipy"]
    areas = bundle.read_layer("areas")
    assert len(areas) == 4 and areas.crs.to_epsg() == 4326
    assert {
        "t_methadone_drive",
        "share_methadone_drive",
        "desert_people_methadone_drive",
        "nearest_methadone_drive",
        "t_buprenorphine_walk",
    } <= set(areas.columns)
    # The 0-population quadrant has no people, so no travel time.
    assert areas.loc[areas["population"] == 0, "t_methadone_drive"].isna().all()
    iso = bundle.read_layer("isochrones")
    assert len(iso) == 2 * 2 * 3  # categories x modes x bands
    mins = iso[(iso["category"] == "methadone") & (iso["mode"] == "walk")].sort_values("minutes")
    assert mins["population"].is_monotonic_increasing
    assert mins.geometry.to_crs(32617).area.is_monotonic_increasing
    deserts = bundle.read_layer("deserts")
    assert set(zip(deserts["category"], deserts["mode"], strict=True)) == {
        ("methadone", "drive"),
        ("methadone", "walk"),
        ("buprenorphine", "walk"),
    }
    people = bundle.read_layer("people")
    assert people["weight"].sum() == pytest.approx(4000)
    summary = m["stages"]["access"]["summary"]["methadone_drive"]
    assert summary["people_within"] + summary["people_in_desert"] == 4000
    # Layer desert count agrees with the area metrics.
    assert deserts.set_index(["category", "mode"]).loc[
        ("methadone", "drive"), "population"
    ] == round(areas["desert_people_methadone_drive"].sum())


def test_build_refuses_to_overwrite_without_flag(built: tuple[Path, Path]) -> None:
    cfg, geo = built
    res = atlas("build", cfg, "--geodata-dir", geo)
    assert res.returncode == 2
    assert "already exists; pass --overwrite" in res.stderr
    assert atlas("build", cfg, "--geodata-dir", geo, "--if-missing").returncode == 0


def test_stage_command_does_not_parse_osm_again(tmp_path: Path) -> None:
    cfg = write_region(tmp_path)
    geo = tmp_path / "geo"
    assert atlas("build", cfg, "--geodata-dir", geo).returncode == 0
    network_before = (geo / "gridton" / "network" / "drive.npz").read_bytes()
    (tmp_path / "raw" / "gridton.osm").write_text("not OSM any more")
    # Change a threshold and recompute access only.
    data = yaml.safe_load(cfg.read_text())
    data["access"]["thresholds_min"]["methadone"]["drive"] = 5
    cfg.write_text(yaml.safe_dump(data))
    res = atlas("compute-access", cfg, "--geodata-dir", geo)
    assert res.returncode == 0, res.stderr
    bundle = Bundle.open(geo / "gridton")
    assert bundle.manifest["settings"]["thresholds_min"]["methadone"]["drive"] == 5
    assert bundle.manifest["stages"]["access"]["summary"]["methadone_drive"]["threshold_min"] == 5
    assert (geo / "gridton" / "network" / "drive.npz").read_bytes() == network_before
    # Only the last two builds are kept.
    assert len([p for p in (geo / ".builds" / "gridton").iterdir() if p.is_dir()]) == 2


def _break(tmp_path: Path, how: str) -> Path:
    """Write a good region, build it, then break one input; return the config path."""
    cfg = write_region(tmp_path)
    raw = tmp_path / "raw"
    data = yaml.safe_load(cfg.read_text())
    if how == "missing file":
        (raw / "population.csv").unlink()
    elif how == "unreadable osm":
        (raw / "gridton.osm").write_bytes(b"\x00\x01garbage" * 100)
    elif how == "truncated pbf":
        data["network"]["osm"]["path"] = "raw/gridton.osm.pbf"
        (raw / "gridton.osm.pbf").write_bytes(b"\x00\x00\x00\x0d\n\tOSMHeader\x18")
    elif how == "empty network":
        write_osm(raw / "gridton.osm", streets=False)
    elif how == "disconnected network":
        # Every street one-way and pointing away: no two nodes reach each other.
        text = (raw / "gridton.osm").read_text()
        lines = [ln for ln in text.splitlines() if "<way" not in ln or "Row 0 " in ln]
        (raw / "gridton.osm").write_text(
            "\n".join(lines).replace(
                'name" v="Row 0 Street"/>', 'name" v="Row 0 Street"/><tag k="oneway" v="yes"/>'
            )
        )
    elif how == "providers outside the network":
        frame = pd.read_csv(raw / "providers.csv")
        # Inside the region, in the middle of blocks: ~140 m from the nearest street corner.
        frame["Latitude"] = 40.0 + 0.002 * 3.5
        frame["Longitude"] = -83.0 + 0.002 * np.array([1.5, 4.5, 7.5, 9.5])
        frame.to_csv(raw / "providers.csv", index=False)
        data["network"]["max_snap_m"] = 60
    elif how == "unknown key":
        data["acess"] = {"bands_min": [5]}
    elif how == "wrong type":
        data["access"]["bands_min"] = "ten, twenty"
    elif how == "no crs":
        areas = gpd.read_file(raw / "bg.gpkg")
        with pytest.warns(UserWarning, match="'crs' was not provided"):
            areas.set_crs(None, allow_override=True).to_file(raw / "bg.shp")
        (raw / "bg.prj").unlink(missing_ok=True)
        data["areas"]["path"] = "raw/bg.shp"
    elif how == "population does not join":
        pop = pd.read_csv(raw / "population.csv", dtype=str)
        pop["GEOID"] = pop["GEOID"].str.replace("99001", "39049")
        pop.to_csv(raw / "population.csv", index=False)
    else:  # pragma: no cover
        raise AssertionError(how)
    cfg.write_text(yaml.safe_dump(data))
    return cfg


BAD_INPUT = {
    "missing file": "population.csv: input file not found",
    "unreadable osm": "gridton.osm",
    "truncated pbf": "gridton.osm.pbf",
    "empty network": "no streets",
    "disconnected network": "no connected streets",
    "providers outside the network": "do not overlap",
    "unknown key": "acess: unknown key",
    "wrong type": "access.bands_min",
    "no crs": "declares no CRS",
    "population does not join": "have no population row",
}


@pytest.mark.parametrize("how", sorted(BAD_INPUT))
def test_bad_input_stops_with_one_clear_message_and_keeps_the_bundle(
    tmp_path: Path, how: str
) -> None:
    good = write_region(tmp_path / "good")
    geo = tmp_path / "geo"
    assert atlas("build", good, "--geodata-dir", geo).returncode == 0
    before = tree_digest(geo / "gridton")
    cfg = _break(tmp_path / "bad", how)
    res = atlas("build", cfg, "--geodata-dir", geo, "--overwrite")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert BAD_INPUT[how] in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("access-atlas: error:")]
    assert len(errors) == 1
    assert tree_digest(geo / "gridton") == before
    leftovers = [p.name for p in (geo / ".builds" / "gridton").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_failing_stage_leaves_the_previous_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etl import pipeline
    from etl.config import load_config

    cfg = load_config(write_region(tmp_path))
    geo = tmp_path / "geo"
    pipeline.run_build(cfg, geo, progress=False)
    before = tree_digest(geo / "gridton")

    def boom(ctx: pipeline.BuildContext) -> dict:
        raise RuntimeError("disk full")

    monkeypatch.setitem(pipeline.STAGE_FUNCS, "access", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        pipeline.run_build(cfg, geo, overwrite=True, progress=False)
    assert tree_digest(geo / "gridton") == before
    assert not [p for p in (geo / ".builds" / "gridton").iterdir() if p.name.endswith(".tmp")]


def test_validate_and_info(built: tuple[Path, Path]) -> None:
    cfg, geo = built
    res = atlas("validate", cfg)
    assert res.returncode == 0 and "valid region config 'gridton'" in res.stdout
    res = atlas("info", "gridton", "--geodata-dir", geo)
    assert res.returncode == 0
    assert "FICTIONAL" in res.stdout and "methadone_drive" in res.stdout
    res = atlas("info", "gridton", "--geodata-dir", geo, "--json")
    assert json.loads(res.stdout)["region"] == "gridton"


def test_build_without_crs_uses_the_zone_validate_prints(tmp_path: Path) -> None:
    cfg = write_region(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    del data["crs"]
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    shown = atlas("validate", cfg)
    assert "using EPSG:32617 (UTM 17N) from the areas' centre" in shown.stdout
    res = atlas("build", cfg, "--geodata-dir", tmp_path / "geo")
    assert res.returncode == 0, res.stderr
    assert "crs: not given; using EPSG:32617 (UTM 17N)" in res.stderr
    assert Bundle.open(tmp_path / "geo" / "gridton").manifest["crs"] == "EPSG:32617"


def test_info_into_head_or_a_closed_pipe_has_no_traceback(built: tuple[Path, Path]) -> None:
    """`access-atlas info X | head -1`: the first line, then a quiet stop (issue 12)."""
    _, geo = built
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "etl", "info", "gridton", "--geodata-dir", str(geo), "--json"]
    shell = subprocess.run(
        " ".join(f"'{c}'" for c in cmd) + " | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert shell.stdout == "{\n" and shell.returncode == 0
    assert "Traceback" not in shell.stderr and "BrokenPipe" not in shell.stderr
    # The same with the pipe closed before a byte is written (what `head` may do any time).
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_missing_bundle_and_missing_config_are_clear(tmp_path: Path) -> None:
    res = atlas("info", "nowhere", "--geodata-dir", tmp_path)
    assert res.returncode == 2 and "no region bundle here" in res.stderr
    res = atlas("build", tmp_path / "nope.yaml")
    assert res.returncode == 2 and "config file not found" in res.stderr
    res = atlas("compute-access", write_region(tmp_path), "--geodata-dir", tmp_path / "empty")
    assert res.returncode == 2 and "no bundle to update" in res.stderr


def test_people_times_match_a_direct_engine_call(built: tuple[Path, Path]) -> None:
    """Area travel times are population-weighted means of people times from the engine."""
    from etl.engine.access import nearest_site_times

    _, geo = built
    bundle = Bundle.open(geo / "gridton")
    net = bundle.network("walk")
    prov = bundle.read_layer("providers")
    meth = prov[prov["category"] == "methadone"]
    res = nearest_site_times(
        net,
        meth["node_walk"].to_numpy(),
        site_offsets_s=meth["snap_m_walk"].to_numpy() / net.walk_speed_mps,
    )
    arrays = bundle.access_arrays("walk")
    np.testing.assert_allclose(arrays["time_methadone"], res.time_s, rtol=1e-6)
    people = bundle.read_layer("people")
    t = res.time_s[people["node_walk"]] + people["snap_m_walk"] / net.walk_speed_mps
    areas = bundle.read_layer("areas").set_index("area_id")
    checked = 0
    for area_id, grp in people.assign(t=t).groupby("area_id"):
        if grp["weight"].sum() == 0:
            continue
        checked += 1
        expected = np.average(grp["t"], weights=grp["weight"]) / 60
        assert areas.loc[area_id, "t_methadone_walk"] == pytest.approx(expected, abs=0.01)
    assert checked == 3


@pytest.mark.parametrize("command", ["build-network", "load-areas", "load-providers",
                                     "build-barriers", "load-transit", "load-overdose",
                                     "compute-access",
                                     "render-tiles"])  # fmt: skip
def test_every_stage_command_publishes_a_new_build(tmp_path: Path, command: str) -> None:
    from etl import pipeline
    from etl.config import load_config

    cfg = write_region(tmp_path)
    geo = tmp_path / "geo"
    pipeline.run_build(load_config(cfg), geo, progress=False)
    before = Bundle.open(geo / "gridton").manifest
    res = atlas(command, cfg, "--geodata-dir", geo)
    assert res.returncode == 0, res.stderr
    after = Bundle.open(geo / "gridton").manifest
    assert after["build_id"] != before["build_id"]
    assert set(after["layers"]) == set(before["layers"])
    stage = pipeline.STAGE_COMMANDS[command]
    # The stage and every later one ran; earlier stages were taken from the bundle.
    order = pipeline.STAGES
    for s in order[order.index(stage) :]:
        assert f"stage {s:<9s} done" in res.stderr, s
    for s in order[: order.index(stage)]:
        assert f"stage {s:<9s} done" not in res.stderr, s
