"""Hostile and unlucky builds (issue 17, the build side), through the real command.

Each test builds Gridton (:mod:`tests.region_fixture`, a 12 x 12 street grid built in a second)
and then does what an attacker or an unlucky operator does: two builds of one region at once,
SIGKILL, SIGTERM and Ctrl-C mid-build, a full disk, a file over the size limit, numbers that
are not numbers in the config, control characters in a provider list. Every test asserts the
message, the exit status, that no temporary folder is left and that the last good bundle is
byte-identical.

A build "mid-way" is caught by watching for its ``.tmp`` folder (it exists only while the build
holds the region's lock and writes), then stopping (SIGSTOP), killing or signalling it.
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.bundle.store import Bundle, format_mb, lock_path, tree_bytes
from tests.region_fixture import write_region
from tests.test_cli import ROOT, atlas, tree_digest

REGION = "gridton"
BUILD = [sys.executable, "-m", "etl", "build"]
#: Control characters as the issue lists them: NUL, CR/LF, other C0, DEL, C1, separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def region(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Gridton's config and a geodata folder holding one good bundle (built in-process)."""
    from etl import pipeline
    from etl.config import load_config

    cfg = write_region(tmp_path)
    geo = tmp_path / "geo"
    pipeline.run_build(load_config(cfg), geo, progress=False)
    yield cfg, geo


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def start_build(cfg: Path, geo: Path, log: Path, *extra: str, **popen: Any) -> subprocess.Popen:
    """Start ``python -m etl build CONFIG --overwrite`` in the background, stderr to ``log``."""
    cmd = [sys.executable, "-m", "etl", "build", str(cfg), "--geodata-dir", str(geo)]
    cmd += ["--overwrite", "--no-progress", *extra]
    with log.open("w") as err:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=err, **popen
        )


def temp_folders(geo: Path) -> list[Path]:
    """The temporary build folders of Gridton (``geodata/.builds/gridton/*.tmp``)."""
    builds = geo / ".builds" / REGION
    return sorted(builds.glob("*.tmp")) if builds.is_dir() else []


def wait_for_temp(
    geo: Path, proc: subprocess.Popen, log: Path, *, holding: str | None = None
) -> Path:
    """Wait until ``proc`` writes its temporary build folder (and, optionally, a file in it)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = temp_folders(geo)
        if found and (holding is None or (found[0] / holding).exists()):
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"the build ended ({proc.returncode}) first:\n{log.read_text()}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail("no temporary build folder appeared within 120 s")


def wait_for_text(log: Path, text: str, proc: subprocess.Popen) -> None:
    """Wait until ``text`` appears in a process's stderr log."""
    deadline = time.monotonic() + 120
    while text not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{text!r} never came:\n{log.read_text()}")
        time.sleep(0.02)


def error_lines(stderr: str) -> list[str]:
    """The ``access-atlas: error:`` lines of a run."""
    return [ln for ln in stderr.splitlines() if ln.startswith("access-atlas: error:")]


def assert_clean_failure(stderr: str, geo: Path, before: str) -> None:
    """No traceback, no temporary folder, and the bundle byte-identical."""
    assert "Traceback" not in stderr, stderr
    assert temp_folders(geo) == []
    assert tree_digest(geo / REGION) == before


# -- 1. one lock per region ------------------------------------------------------------------


def test_a_second_build_names_the_running_one_and_exits_2_or_waits_with_wait(
    region: tuple[Path, Path], tmp_path: Path
) -> None:
    cfg, geo = region
    first = start_build(cfg, geo, tmp_path / "a.log")
    tmp_a = wait_for_temp(geo, first, tmp_path / "a.log")
    first.send_signal(signal.SIGSTOP)  # the first build holds the lock, mid-way
    try:
        waiter = start_build(cfg, geo, tmp_path / "c.log", "--wait")
        refused = atlas("build", cfg, "--geodata-dir", geo, "--overwrite")
        assert refused.returncode == 2, refused.stderr
        (line,) = error_lines(refused.stderr)
        assert f"region 'gridton' is being built by pid {first.pid} on host {os.uname()[1]}" in line
        assert re.search(r"started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line), line
        assert "pass --wait" in line and "Traceback" not in refused.stderr
        assert tmp_a.is_dir()  # the running build's folder is never touched
        wait_for_text(
            tmp_path / "c.log", f"waiting for the build of 'gridton' by pid {first.pid}", waiter
        )
        assert waiter.poll() is None  # still waiting
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 0, (tmp_path / "a.log").read_text()
    assert waiter.wait(timeout=120) == 0, (tmp_path / "c.log").read_text()
    waited = (tmp_path / "c.log").read_text()
    assert "taking over" not in waited and "stale" not in waited  # the first ended cleanly
    # Both builds ran, one after the other: the waiting one is the current bundle.
    builds = sorted(p.name for p in (geo / ".builds" / REGION).iterdir())
    assert len(builds) == 2 and builds[0] == tmp_a.name.removesuffix(".tmp")
    assert Bundle.open(geo / REGION).manifest["build_id"] == builds[1]
    assert lock_path(geo, REGION).read_text() == ""  # released


# -- 1 + 3. a killed build: its lock and its temporary folder --------------------------------


def test_a_killed_build_leaves_a_lock_and_a_folder_that_the_next_build_cleans(
    region: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from etl import pipeline
    from etl.config import load_config

    cfg, geo = region
    before = tree_digest(geo / REGION)
    killed = start_build(cfg, geo, tmp_path / "a.log")
    tmp = wait_for_temp(geo, killed, tmp_path / "a.log", holding="network/walk.npz")
    killed.kill()  # SIGKILL: no clean-up at all
    killed.wait(timeout=30)
    assert tmp.is_dir() and tree_digest(geo / REGION) == before
    left = json.loads(lock_path(geo, REGION).read_text())
    assert left["pid"] == killed.pid
    size = tree_bytes(tmp)
    assert size > 0

    res = atlas("build", cfg, "--geodata-dir", geo, "--overwrite")
    assert res.returncode == 0, res.stderr
    took = [ln for ln in res.stderr.splitlines() if "taking over the lock" in ln]
    assert len(took) == 1 and f"left by pid {killed.pid} on host" in took[0], res.stderr
    removed = [ln for ln in res.stderr.splitlines() if "stale temporary build" in ln]
    assert len(removed) == 1, res.stderr
    assert f"removed 1 stale temporary build folder of 'gridton' ({format_mb(size)})" in removed[0]
    assert not tmp.exists() and temp_folders(geo) == []
    # A third build (in-process, for time) finds nothing to clean and no stale lock.
    with caplog.at_level(logging.INFO, logger="etl"):
        pipeline.run_build(load_config(cfg), geo, overwrite=True, progress=False)
    assert "build gridton: bundle" in caplog.text
    assert "stale" not in caplog.text and "taking over" not in caplog.text


# -- 2. SIGTERM like SIGINT ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sig", "status", "said"),
    [
        (
            signal.SIGTERM,
            143,
            "access-atlas: terminated (SIGTERM); the previous bundle is untouched",
        ),
        pytest.param(
            signal.SIGINT,
            130,
            "access-atlas: interrupted; the previous bundle is untouched",
            marks=pytest.mark.slow,  # the same path as SIGTERM's, long handled
        ),
    ],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_mid_build_removes_the_temp_folder_and_keeps_the_bundle(
    region: tuple[Path, Path], tmp_path: Path, sig: int, status: int, said: str
) -> None:
    cfg, geo = region
    before = tree_digest(geo / REGION)
    log = tmp_path / "a.log"
    proc = start_build(cfg, geo, log)
    tmp = wait_for_temp(geo, proc, log, holding="network/drive.npz")
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == status, log.read_text()
    stderr = log.read_text()
    assert [ln for ln in stderr.splitlines() if ln.startswith("access-atlas:")] == [said]
    assert not tmp.exists()
    assert_clean_failure(stderr, geo, before)
    assert lock_path(geo, REGION).read_text() == ""  # released: the next build finds no holder


# -- 4. disk full, file too large ------------------------------------------------------------


def test_disk_full_while_writing_a_layer_is_one_line(
    region: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """ENOSPC halfway through the providers layer (as pyarrow raises it: no file name)."""
    from etl import cli
    from etl.bundle.store import BundleWriter

    cfg, geo = region
    before = tree_digest(geo / REGION)
    previous = tree_bytes((geo / REGION).resolve())
    real = BundleWriter.write_layer

    def full_disk(self: BundleWriter, name: str, frame: pd.DataFrame, **kw: Any) -> Path:
        if name != "providers":
            return real(self, name, frame, **kw)
        self.path("layers/providers.parquet").write_bytes(b"PAR1" + b"\0" * 5000)
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: No space left on device")

    monkeypatch.setattr(BundleWriter, "write_layer", full_disk)
    status = cli.main(
        ["build", str(cfg), "--geodata-dir", str(geo), "--overwrite", "--no-progress"]
    )
    err = capsys.readouterr().err
    assert status == 2
    (line,) = error_lines(err)
    m = re.fullmatch(
        r"access-atlas: error: disk full while writing layers/providers\.parquet \(build of "
        r"'gridton' in .*\.builds/gridton\): free ([\d,]+) MB, needs about ([\d,]+) MB; nothing "
        r"was published and the previous bundle is untouched; free some space \(or raise the "
        r"limit\) and build again",
        line,
    )
    assert m, line
    free_mb = os.statvfs(geo).f_bavail * os.statvfs(geo).f_frsize / 2**20
    assert abs(int(m[1].replace(",", "")) - free_mb) < 50
    assert int(m[2]) == max(1, -(-previous // 2**20))  # the previous bundle's size, rounded up
    assert_clean_failure(err, geo, before)
    assert lock_path(geo, REGION).read_text() == ""


def test_file_too_large_is_one_line_with_the_limit(region: tuple[Path, Path]) -> None:
    """A real EFBIG: the build runs under ``ulimit -f`` (16 KiB), below its network files."""
    cfg, geo = region
    before = tree_digest(geo / REGION)
    limit = 16 * 1024

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    res = subprocess.run(
        [*BUILD, str(cfg), "--geodata-dir", str(geo), "--overwrite", "--no-progress"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=300,
        check=False,
        preexec_fn=small_files,
    )
    assert res.returncode == 2, res.stderr
    (line,) = error_lines(res.stderr)
    m = re.search(r"file too large while writing (\S+) \(build of 'gridton' in ", line)
    assert m, line
    assert (geo / REGION / m[1]).stat().st_size > limit  # the file that did not fit, named
    assert "(files may not exceed 0.02 MB here: `ulimit -f`): free " in line
    assert "needs about 1 MB; nothing was published" in line
    assert_clean_failure(res.stderr, geo, before)


# -- 5. numbers that are not numbers ---------------------------------------------------------

#: (config change, the key the message names, words of the message)
BAD_NUMBERS: dict[str, tuple[dict, str, str]] = {
    "NaN threshold": (
        {"access": {"thresholds_min": {"methadone": {"drive": ".nan"}}}},
        "access.thresholds_min.methadone.drive",
        "finite number",
    ),
    "infinite threshold": (
        {"access": {"thresholds_min": {"methadone": {"walk": ".inf"}}}},
        "access.thresholds_min.methadone.walk",
        "finite number",
    ),
    "negative threshold": (
        {"access": {"thresholds_min": {"methadone": {"drive": -5}}}},
        "thresholds_min.methadone.drive",
        "must be positive",
    ),
    "threshold beyond a day": (
        {"access": {"thresholds_min": {"buprenorphine": {"walk": 5000}}}},
        "thresholds_min.buprenorphine.walk",
        "more than a day",
    ),
    "band of infinity": ({"access": {"bands_min": [2, 4, ".inf"]}}, "access.bands_min", ""),
    "zero drive speed": (
        {"network": {"drive_speeds_kph": {"residential": 0}}},
        "drive_speeds_kph.residential",
        "above 0",
    ),
    "negative drive speed": (
        {"network": {"drive_speeds_kph": {"primary": -40}}},
        "drive_speeds_kph.primary",
        "above 0",
    ),
    "NaN drive speed": (
        {"network": {"drive_speeds_kph": {"primary": ".nan"}}},
        "network.drive_speeds_kph.primary",
        "finite number",
    ),
    "infinite drive speed": (
        {"network": {"drive_speeds_kph": {"primary": ".inf"}}},
        "network.drive_speeds_kph.primary",
        "finite number",
    ),
    "zero walk speed": ({"network": {"walk_speed_kph": 0}}, "network.walk_speed_kph", "greater"),
    "NaN walk speed": (
        {"network": {"walk_speed_kph": ".nan"}},
        "network.walk_speed_kph",
        "finite number",
    ),
    "infinite walk speed": (
        {"network": {"walk_speed_kph": ".inf"}},
        "network.walk_speed_kph",
        "finite number",
    ),
    "negative isochrone buffer": (
        {"access": {"isochrone_buffer_m": {"drive": -10}}},
        "isochrone_buffer_m.drive",
        "give 0 to",
    ),
    "NaN isochrone buffer": (
        {"access": {"isochrone_buffer_m": {"walk": ".nan"}}},
        "access.isochrone_buffer_m.walk",
        "finite number",
    ),
    "infinite buffer_km": ({"buffer_km": ".inf"}, "buffer_km", "finite number"),
    "NaN max_snap_m": ({"network": {"max_snap_m": ".nan"}}, "network.max_snap_m", "finite"),
    "infinite cover_m": ({"access": {"cover_m": ".inf"}}, "access.cover_m", "finite number"),
}


def _bad_config(tmp_path: Path, change: dict) -> Path:
    """Gridton's config with one change, written as YAML text (so `.nan`, `.inf` stay YAML's)."""
    cfg = write_region(tmp_path)
    data = yaml.safe_load(cfg.read_text())

    def merge(into: dict, new: dict) -> None:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(data, change)
    text = yaml.safe_dump(data, sort_keys=False)
    # YAML's own spellings of NaN and infinity, unquoted, as a user would type them.
    text = re.sub(r"'(\.nan|\.inf)'", r"\1", text)
    assert "'.nan'" not in text and "'.inf'" not in text
    cfg.write_text(text, encoding="utf-8")
    return cfg


@pytest.mark.parametrize("case", sorted(BAD_NUMBERS))
def test_every_bad_number_is_one_line_naming_the_key_for_validate_and_build(
    tmp_path: Path,
    case: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """The CLI's main() in-process (the subprocess runs are below), the engine guarded."""
    from etl import cli, pipeline

    def engine(*args: object, **kwargs: object) -> None:
        raise AssertionError("a bad number reached the engine")

    monkeypatch.setattr(pipeline, "build_mode_network", engine)
    change, key, words = BAD_NUMBERS[case]
    cfg = _bad_config(tmp_path, change)
    geo = tmp_path / "geo"
    for command in (["validate", str(cfg)], ["build", str(cfg), "--geodata-dir", str(geo)]):
        assert cli.main([*command, "--no-progress"]) == 2, command
        err = capsys.readouterr().err
        (line,) = err.splitlines()
        assert line.startswith(f"access-atlas: error: {cfg}: invalid region config: "), line
        assert key in line and words in line, line
    assert not geo.exists()  # nothing built, not even a lock or a temporary folder


def test_nan_threshold_and_negative_speed_through_the_real_commands(
    region: tuple[Path, Path], tmp_path: Path
) -> None:
    """`validate` (NaN threshold) and `build` (negative drive speed) as a user runs them.

    Both exit 2 in seconds with one line (a negative speed once grew memory for 6 minutes
    and died of ``std::bad_alloc``); the last good bundle is byte-identical.
    """
    _, geo = region
    before = tree_digest(geo / REGION)
    runs = {}
    for case, command in (("NaN threshold", "validate"), ("negative drive speed", "build")):
        cfg = _bad_config(tmp_path / case.replace(" ", "_"), BAD_NUMBERS[case][0])
        cmd = [sys.executable, "-m", "etl", command, str(cfg), "--no-progress"]
        if command == "build":
            cmd += ["--geodata-dir", str(geo), "--overwrite"]
        runs[case, command] = subprocess.Popen(
            cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    for (case, command), proc in runs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (case, command, out, err)
        (line,) = error_lines(err)
        assert BAD_NUMBERS[case][1] in line and "Traceback" not in err, line
    assert_clean_failure("", geo, before)


# -- 6. control characters -------------------------------------------------------------------

#: Provider names and streets as a hostile or careless export has them.
DIRTY = {
    "Program": [
        "Gridton\x00Recovery Clinic",
        "East Side\r\nHealth",
        "North \x1b[31mPharmacy\x9b",
        "Far Away Clinic",
    ],
    "Street": [
        "10 Row 1 Street\x7f",
        "5 Column 10 Avenue",
        "20 Row 10\u2028Street",
        "1 Nowhere Rd",
    ],
    "Hours": ["Mon-Fri\t8-5", "24/7", "Mon\rTue", ""],
}


def test_control_characters_are_cleaned_counted_and_never_reach_a_layer(tmp_path: Path) -> None:
    cfg = write_region(tmp_path)
    raw = tmp_path / "raw"
    providers = pd.read_csv(raw / "providers.csv", dtype=str)
    for col, values in DIRTY.items():
        providers[col] = values
    # As a spreadsheet on Windows exports it: CRLF line ends (not counted), every field quoted.
    providers.to_csv(
        raw / "providers.csv", index=False, quoting=csv.QUOTE_ALL, lineterminator="\r\n"
    )
    assert b"\x00" in (raw / "providers.csv").read_bytes()
    # The areas get names with control characters too (read by another reader: the last guard).
    areas = gpd.read_file(raw / "bg.gpkg")
    areas["NAME"] = ["South\x1bWest", "South East\x85", "North\r\nWest", "North East"]
    areas.to_file(raw / "bg.gpkg")
    data = yaml.safe_load(cfg.read_text())
    data["providers"][0]["columns"]["hours"] = "Hours"
    data["areas"]["name_column"] = "NAME"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    geo = tmp_path / "geo"
    res = atlas("build", cfg, "--geodata-dir", geo)
    assert res.returncode == 0, res.stderr
    said = [ln for ln in res.stderr.splitlines() if "replaced control characters" in ln]
    assert any(
        "providers.csv: replaced control characters (CR, DEL, ESC, LF, LINE SEPARATOR, NUL, "
        "TAB, U+009B) by spaces in 7 cells of 3 rows (rows 2, 3, 4, the header being row 1)" in ln
        for ln in said
    ), said

    bundle = Bundle.open(geo / REGION)
    # No control character in any text cell (or list of texts) of any layer.
    scanned = 0
    for name in bundle.layer_names:
        frame = bundle.read_layer(name)
        for col in frame.columns:
            if col == "geometry":
                continue
            for value in frame[col]:
                texts = list(value) if isinstance(value, list | tuple | np.ndarray) else [value]
                for text in texts:
                    if isinstance(text, str):
                        scanned += 1
                        assert not CONTROL.search(text), (name, col, text)
    assert scanned > 100
    sites = bundle.read_layer("providers").set_index("name")
    assert {"Gridton Recovery Clinic", "East Side Health", "North [31mPharmacy"} <= set(sites.index)
    assert sites.loc["Gridton Recovery Clinic", "address"].startswith("10 Row 1 Street")
    # The areas' names were cleaned by the area reader (one line, features counted from 1);
    # the last guard before a layer is written found nothing left to clean.
    names = set(bundle.read_layer("areas")["name"])
    assert names == {"South West", "South East", "North West", "North East"}
    assert any(
        "bg.gpkg: replaced control characters (CR, ESC, LF, NEL) by spaces in 3 cells of 3 "
        "features (features 1, 2, 3)" in ln
        for ln in said
    ), said
    assert not any(ln for ln in said if "layer '" in ln), said
    # Both files are in the build-wide report, each cell with its row and column.
    listed = pd.read_csv(geo / REGION / "reports" / "inputs_cleaned.csv")
    assert listed.groupby("input").size().to_dict() == {"areas": 3, "providers.clinics": 7}
    assert listed[listed["input"] == "areas"].values.tolist() == [
        ["areas", "bg.gpkg", 1, "NAME", "ESC"],
        ["areas", "bg.gpkg", 2, "NAME", "NEL"],
        ["areas", "bg.gpkg", 3, "NAME", "LF, CR"],
    ]
    assert bundle.manifest["inputs_cleaned"]["cells"] == 10

    # Counted in the quality report, with the source, the row and the column.
    sources = bundle.manifest["stages"]["providers"]["sources"]
    assert sources["clinics"]["cleaned"] == 7
    cleaned = pd.read_csv(geo / REGION / "reports" / "providers_cleaned.csv")
    assert cleaned[["source", "row", "column", "found"]].values.tolist() == [
        ["clinics", 2, "Hours", "TAB"],
        ["clinics", 2, "Program", "NUL"],
        ["clinics", 2, "Street", "DEL"],
        ["clinics", 3, "Program", "LF, CR"],
        ["clinics", 4, "Hours", "CR"],
        ["clinics", 4, "Program", "ESC, U+009B"],
        ["clinics", 4, "Street", "LINE SEPARATOR"],
    ]
    summary = pd.read_csv(geo / REGION / "reports" / "providers_quality.csv").set_index("source")
    assert summary.loc["clinics", "cleaned"] == 7 and summary.loc["TOTAL", "cleaned"] == 7
    page = (geo / REGION / "reports" / "providers_quality.html").read_text(encoding="utf-8")
    assert "Control characters replaced" in page and "7 cells in 3 rows" in page


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=12))
def test_the_fast_check_agrees_with_the_definition_and_cleaning_leaves_none(text: str) -> None:
    from etl.controls import CONTROL_RE, any_controls, clean_frame

    assert any_controls(text) == bool(CONTROL_RE.search(text))
    frame = pd.DataFrame(
        {
            "arrow": pd.array([text, None, "plain"], dtype="string"),
            "objects": pd.Series([1, text, None], dtype=object),
        }
    )
    cleaned, changes = clean_frame(frame)
    assert len(changes) == 2 * bool(CONTROL_RE.search(text))
    for value in cleaned.stack().tolist():
        assert not (isinstance(value, str) and CONTROL_RE.search(value)), value
    assert cleaned["arrow"].dtype == frame["arrow"].dtype


def test_read_table_cleans_unquoted_cells_and_leaves_clean_files_alone(tmp_path: Path) -> None:
    from etl.inputs.tables import CONTROL_CHARS_ATTR, read_table

    clean = tmp_path / "clean.csv"
    clean.write_bytes(b"name,hours\r\nA,9-5\r\nB,24/7\r\n")
    frame, _ = read_table(clean, fmt="csv")
    assert CONTROL_CHARS_ATTR not in frame.attrs and frame["hours"].tolist() == ["9-5", "24/7"]
    dirty = tmp_path / "dirty.csv"
    dirty.write_bytes(b"name,hours\nA\x00B,Mon\tFri\nC,\x1b[0m9-5\n")
    frame, _ = read_table(dirty, fmt="csv")
    assert frame.to_dict("list") == {"name": ["A B", "C"], "hours": ["Mon Fri", "[0m9-5"]}
    assert frame.attrs[CONTROL_CHARS_ATTR] == [
        {"column": "hours", "position": 0, "found": "TAB"},
        {"column": "name", "position": 0, "found": "NUL"},
        {"column": "hours", "position": 1, "found": "ESC"},
    ]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_a_full_disk_under_an_export_is_one_line_too(
    region: tuple[Path, Path], tmp_path: Path
) -> None:
    """A real ENOSPC: the map is written to /dev/full (through a link named like a PNG)."""
    _, geo = region
    before = tree_digest(geo / REGION)
    out = tmp_path / "map.png"
    out.symlink_to("/dev/full")
    res = atlas("render-map", REGION, out, "--category", "methadone", "--geodata-dir", geo)
    assert res.returncode == 2, res.stderr
    (line,) = error_lines(res.stderr)
    assert re.fullmatch(
        rf"access-atlas: error: disk full while writing {re.escape(str(out))}: free [\d,]+ MB; "
        r"no bundle was changed; free some space \(or raise the limit\) and try again",
        line,
    ), line
    assert_clean_failure(res.stderr, geo, before)
