"""Hostile and broken inputs on the serving side (issue 17), through the real app.

One module fixture generates the fictional demo region's raw inputs, renames four of its
pharmacies to spreadsheet formulas (``=HYPERLINK(...)``, ``+…``, ``-…``, ``@…``) and builds it
with the real pipeline (about 10 s). Every test then serves it from a geodata folder of its own
(a link to that build, or a copy it may break) through the Flask test client of the real
app (``app.server``) and the real Dash callbacks, posted as the browser posts them:

* a broken live bundle (manifest deleted, not JSON, build folder gone): ``/healthz`` and the
  pages name the region and the problem with no server path, and ``build --overwrite``
  (the real CLI) repairs it;
* CSV formula injection: the CLI export, the web export route and the What-if scenario CSV
  opened from a share link defuse the formulas with a leading ``'``; GeoJSON and GeoPackage
  keep the names as they are;
* hostile saved views files (cp1252, 1,100 levels deep, 3 MB, a link out of geodata) and
  share links (``w=`` nested 1,090 arrays, too long, garbage): the page works, says why in
  one plain note, and each file version is read once;
* privacy: a saved view never keeps an address look-up or a point, and ``/present`` never
  sends one;
* writes: the editor token (form field or header), the per-client rate limit (behind a
  proxy too) and the cap on saved scenarios (oldest untitled drafts expire first);
* junk callback input: an error answer and one log line per request, no traceback;
* a full disk: "Save this view", the scenario's Save and the exports say so, with no path.
"""

from __future__ import annotations

import base64
import csv
import errno
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("ACCESS_ATLAS_WARM", "0")

from layouts import map_page as mp
from layouts import scenario as sc
from layouts import townhall as th
from viewmodel import editing, serving
from viewmodel import saved_views as sv
from viewmodel import scenario as aps
from viewmodel.state import MAX_SCENARIO_CHARS, encode_scenario

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hostile-serve-editor-token"
#: Pharmacy names a hostile provider list may carry (each a live formula in a spreadsheet).
HOSTILE_NAMES: tuple[str, ...] = (
    '=HYPERLINK("http://x","click")',
    "+SUM(1,2)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A2)",
)
#: A scenario name and an added site's name carried by a share link.
SCENARIO_NAME = '=HYPERLINK("http://evil.example","Open")'
SITE_NAME = "@SUM(9,9)"
PHARMACY_DRIVE = {"category": "pharmacy", "mode": "drive", "threshold": 10}
#: First characters that make a spreadsheet run a cell (OWASP), and a plain number.
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _cli() -> list[str]:
    """The ``access-atlas`` command of this venv (or ``python -m etl``)."""
    exe = Path(sys.executable).with_name("access-atlas")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "etl"]


def _run_cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI from the project folder.

    Parameters
    ----------
    *args
        The command line after ``access-atlas``.
    timeout
        Seconds before the run is killed (a bound, never reached when all is well).

    Returns
    -------
    subprocess.CompletedProcess
        With ``stdout`` and ``stderr`` as text; a non-zero exit does not raise.
    """
    return subprocess.run(
        [*_cli(), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``configs/demo.yaml``, ``raw/demo`` (hostile names) and ``geo/demo``."""
    from etl.config import load_config
    from etl.pipeline import ensure_generated_inputs, run_build

    root = tmp_path_factory.mktemp("atlas-hostile")
    (root / "configs").mkdir()
    config = root / "configs" / "demo.yaml"
    shutil.copy(ROOT / "geodata" / "configs" / "demo.yaml", config)
    raw = ensure_generated_inputs(load_config(config))
    pharmacies = raw / "providers" / "pharmacies.csv"
    with pharmacies.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == "name" and len(rows) > len(HOSTILE_NAMES)
    for i, name in enumerate(HOSTILE_NAMES):
        rows[1 + i][0] = name
    with pharmacies.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    run_build(load_config(config), root / "geo", progress=False)  # the CLI's build, in-process
    return root


@pytest.fixture(scope="module")
def build_dir(built: Path) -> Path:
    """The build folder the module's ``demo`` link points at."""
    return (built / "geo" / "demo").resolve()


def linked(build_dir: Path, geo: Path) -> Path:
    """A geodata folder of its own whose ``demo`` links to the module's build."""
    geo.mkdir(parents=True)
    (geo / "demo").symlink_to(build_dir)
    return geo


def copied(build_dir: Path, geo: Path) -> Path:
    """A geodata folder holding a copy of the build, linked as a real build is."""
    builds = geo / ".builds" / "demo"
    builds.mkdir(parents=True)
    shutil.copytree(build_dir, builds / build_dir.name)
    (geo / "demo").symlink_to(Path(".builds") / "demo" / build_dir.name)
    return geo


def break_bundle(geo: Path, how: str) -> None:
    """Break the live bundle of a geodata folder, as a crash or an unlucky operator would.

    Parameters
    ----------
    geo
        A geodata folder from :func:`copied` (its build is its own).
    how
        ``missing`` (the manifest deleted), ``corrupt`` (cut short, not JSON) or ``gone``
        (the build folder the link points at removed).
    """
    build = (geo / "demo").resolve()
    if how == "missing":
        (build / "manifest.json").unlink()
    elif how == "corrupt":
        (build / "manifest.json").write_text('{"format_version": 1, "layers": {', "utf-8")
    elif how == "gone":
        shutil.rmtree(build)
    else:  # pragma: no cover
        raise ValueError(how)


@pytest.fixture
def atlas(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], Any]]:
    """A function giving the real app's test client serving a geodata folder.

    Editing is on with :data:`TOKEN` (not sent unless a test sends it), the rate limit is
    reset, and ``/healthz`` answers afresh on each request.
    """
    import app as atlas_app
    import callbacks.map as map_callbacks

    old = dict(map_callbacks._SETTINGS)
    monkeypatch.setattr(serving, "HEALTH_TTL_S", 0.0)
    monkeypatch.setenv(editing.TOKEN_ENV, TOKEN)
    editing.WRITES.clear()

    def client_for(geodata: Path) -> Any:
        map_callbacks.configure(geodata=geodata, default_region="demo")
        return atlas_app.server.test_client()

    yield client_for
    map_callbacks._SETTINGS.update(old)
    editing.WRITES.clear()


# ---------------------------------------------------------------------------------------
# Helpers: callbacks as the browser posts them, text of components, server paths
# ---------------------------------------------------------------------------------------


def post_callback(
    client: Any,
    outputs: list[tuple[str, str]],
    inputs: list[tuple[str, str, Any]],
    state: list[tuple[str, str, Any]] = (),  # type: ignore[assignment]
    *,
    changed: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST one callback request as Dash's renderer does.

    Parameters
    ----------
    client
        The app's Flask test client.
    outputs
        ``(id, property)`` of each output, in the callback's order.
    inputs, state
        ``(id, property, value)`` of each input and state, in the callback's order.
    changed
        The ``id.property`` that fired (default: the first input).
    headers
        Extra request headers (an editor token, ``X-Forwarded-For``).

    Returns
    -------
    werkzeug.test.TestResponse
        The answer, whatever its status.
    """
    multi = len(outputs) > 1
    body = {
        "output": "..{}..".format("...".join(f"{i}.{p}" for i, p in outputs))
        if multi
        else f"{outputs[0][0]}.{outputs[0][1]}",
        "outputs": [{"id": i, "property": p} for i, p in outputs]
        if multi
        else {"id": outputs[0][0], "property": outputs[0][1]},
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [changed or f"{inputs[0][0]}.{inputs[0][1]}"],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }
    return client.post("/_dash-update-component", json=body, headers=headers or {})


def answer(resp: Any) -> dict[str, Any]:
    """The values of a callback answer by output id (200 expected, no traceback)."""
    assert b"Traceback" not in resp.data
    assert resp.status_code == 200, resp.data[:500]
    return resp.get_json()["response"]


def page(client: Any, search: str = "", path: str = "/") -> Any:
    """The page the app renders for a URL (the page callback, as on first load)."""
    import callbacks.map as map_callbacks

    resp = post_callback(
        client,
        [(map_callbacks.PAGE, "children")],
        [(mp.URL, "pathname", path)],
        [(mp.URL, "search", search), (map_callbacks.RENDERED, "data", None)],
    )
    return answer(resp)[map_callbacks.PAGE]["children"]


def text(component: Any) -> str:
    """All the text of a component tree (as JSON)."""
    if isinstance(component, dict):
        return text(component.get("props", {}).get("children")) if "props" in component else ""
    if isinstance(component, list):
        return " ".join(text(c) for c in component)
    return "" if component is None else str(component)


def walk(component: Any) -> Iterator[dict[str, Any]]:
    """Every component of a tree (as JSON)."""
    if isinstance(component, dict):
        if "props" in component:
            yield component
        for v in component.get("props", {}).values():
            yield from walk(v)
    elif isinstance(component, list):
        for c in component:
            yield from walk(c)


def find(component: Any, cid: str) -> dict[str, Any]:
    """The component with id ``cid`` (fails when absent)."""
    for c in walk(component):
        if c["props"].get("id") == cid:
            return c
    raise AssertionError(f"no component {cid!r} on the page")


def assert_no_server_path(payload: Any, *roots: Path) -> None:
    """Check that no server folder appears in what was sent to a browser.

    Parameters
    ----------
    payload
        A response body or a component tree (as JSON).
    *roots
        Folders of the test; the project folder is always checked.
    """
    blob = payload if isinstance(payload, str) else json.dumps(payload)
    for root in (*roots, ROOT):
        for form in {str(root), str(Path(root).resolve())}:
            assert form not in blob, form
    assert ".builds" not in blob and "/tmp/" not in blob


def assert_plain_sentence(message: str) -> None:
    """A message with no absolute path at all (what :func:`serving.scrub_paths` removes)."""
    assert message and serving.scrub_paths(message) == message, message


def is_map_page(content: Any) -> bool:
    """Whether a rendered page is the map (not the error page)."""
    return any(c["props"].get("id") == mp.MAP for c in walk(content))


# ---------------------------------------------------------------------------------------
# 1. A broken live bundle
# ---------------------------------------------------------------------------------------

BROKEN_DETAIL = {
    "missing": "its build has no manifest.json (the manifest is missing)",
    "corrupt": "the manifest is corrupt (not JSON)",
    "gone": "the bundle link points to a build that does not exist (its build folder is gone)",
}


@pytest.mark.parametrize("how", list(BROKEN_DETAIL))
def test_a_broken_live_bundle_is_named_without_a_server_path(
    atlas: Callable[[Path], Any], build_dir: Path, tmp_path: Path, how: str
) -> None:
    geo = copied(build_dir, tmp_path / "geo")
    client = atlas(geo)
    assert client.get("/healthz").status_code == 200
    break_bundle(geo, how)

    r = client.get("/healthz")
    assert r.status_code == 503
    body = r.get_json()
    expected = f"region 'demo': {BROKEN_DETAIL[how]}; rebuild it"
    assert body["reason"] == expected and body["regions"]["demo"] == {"error": expected}
    assert_no_server_path(r.get_data(as_text=True), tmp_path)
    assert_plain_sentence(body["reason"])

    sentence = (
        f"The map of 'demo' cannot be shown right now: its data is being rebuilt or is broken "
        f"({BROKEN_DETAIL[how]}). Try again in a few minutes; if this stays, tell the site's "
        "operator."
    )
    for path in ("/", "/present", "/methods"):
        content = page(client, "?region=demo", path)
        assert not is_map_page(content)
        alert = next(c for c in walk(content) if c["props"].get("role") == "alert")
        assert sentence in text(alert), text(alert)
        assert_no_server_path(content, tmp_path)
        assert "Traceback" not in json.dumps(content)


def _repair(built: Path, build_dir: Path, tmp_path: Path, how: str) -> None:
    geo = copied(build_dir, tmp_path / "geo")
    break_bundle(geo, how)
    res = _run_cli(
        "build",
        built / "configs" / "demo.yaml",
        "--geodata-dir",
        geo,
        "--overwrite",
        "--no-progress",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith(str(geo / "demo"))
    new = (geo / "demo").resolve()
    assert new.parent == (geo / ".builds" / "demo").resolve() and new.name != build_dir.name
    assert json.loads((new / "manifest.json").read_text("utf-8"))["region"] == "demo"
    assert not list((geo / ".builds" / "demo").glob("*.tmp"))
    status, body = serving.check_health(geo)
    assert status == 200 and body["regions"]["demo"]["build_id"] == new.name


def test_build_overwrite_repairs_a_bundle_whose_manifest_is_corrupt(
    atlas: Callable[[Path], Any], built: Path, build_dir: Path, tmp_path: Path
) -> None:
    # Before the fix `build --overwrite` said "the manifest is corrupt ...; rebuild with
    # `access-atlas build CONFIG --overwrite`" and exited 2: the advice could not be followed.
    _repair(built, build_dir, tmp_path, "corrupt")
    client = atlas(tmp_path / "geo")
    assert client.get("/healthz").status_code == 200
    content = page(client, "?region=demo")
    assert is_map_page(content) and "being rebuilt or is broken" not in text(content)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["missing", "gone"])
def test_build_overwrite_repairs_a_missing_manifest_or_build(
    built: Path, build_dir: Path, tmp_path: Path, how: str
) -> None:
    _repair(built, build_dir, tmp_path, how)


@pytest.mark.slow
def test_a_stage_command_on_a_corrupt_bundle_says_to_rebuild_with_overwrite(
    built: Path, build_dir: Path, tmp_path: Path
) -> None:
    geo = copied(build_dir, tmp_path / "geo")
    break_bundle(geo, "corrupt")
    before = (geo / "demo" / "manifest.json").read_bytes()
    res = _run_cli("render-tiles", built / "configs" / "demo.yaml", "--geodata-dir", geo, "-q")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "the manifest is corrupt" in lines[0]
    assert "access-atlas build CONFIG --overwrite" in lines[0]
    assert (geo / "demo" / "manifest.json").read_bytes() == before  # nothing changed


# ---------------------------------------------------------------------------------------
# 2. CSV formula injection
# ---------------------------------------------------------------------------------------


def live_formulas(archive: bytes) -> list[tuple[str, str]]:
    """Every CSV cell of a zip that a spreadsheet would run as a formula (file, cell)."""
    found = []
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        for name in zf.namelist():
            if not name.endswith(".csv"):
                continue
            rows = csv.reader(io.StringIO(zf.read(name).decode("utf-8-sig")))
            for row in rows:
                for cell in row:
                    if cell.startswith(FORMULA_LEADS) and not _NUMBER.fullmatch(cell):
                        found.append((name, cell))
    return found


def csv_column(archive: bytes, member: str, column: str) -> list[str]:
    """One column of one CSV in a zip."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        rows = csv.DictReader(io.StringIO(zf.read(member).decode("utf-8-sig")))
        return [row[column] for row in rows]


def test_the_cli_csv_export_defuses_formulas(built: Path, tmp_path: Path) -> None:
    res = _run_cli("export", built / "geo" / "demo", "--format", "csv", "--out", tmp_path, "-q")
    assert res.returncode == 0, res.stderr[-2000:]
    (archive,) = tmp_path.glob("*.zip")
    data = archive.read_bytes()
    names = csv_column(data, "providers.csv", "name")
    for name in HOSTILE_NAMES:
        assert "'" + name in names and name not in names
    assert live_formulas(data) == []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        readme = zf.read("README.txt").decode("utf-8")
    assert "is written with an apostrophe (') in front" in readme


def test_the_web_exports_defuse_csv_and_keep_geojson_and_gpkg_as_they_came(
    atlas: Callable[[Path], Any], build_dir: Path, tmp_path: Path
) -> None:
    import geopandas as gpd

    client = atlas(linked(build_dir, tmp_path / "geo"))
    query = "cat=pharmacy&mode=drive&data=providers"
    r = client.get(buffered=True, path=f"{th.EXPORT_PREFIX}/demo/csv?{query}")
    assert r.status_code == 200, r.data[:300]
    names = csv_column(r.data, "providers.csv", "name")
    assert sorted(n for n in names if n.startswith("'")) == sorted("'" + n for n in HOSTILE_NAMES)
    assert live_formulas(r.data) == []

    r = client.get(buffered=True, path=f"{th.EXPORT_PREFIX}/demo/geojson?{query}")
    assert r.status_code == 200, r.data[:300]
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        doc = json.loads(zf.read("providers.geojson"))
    geo_names = {f["properties"]["name"] for f in doc["features"]}
    assert set(HOSTILE_NAMES) <= geo_names and not any(n.startswith("'") for n in geo_names)

    r = client.get(buffered=True, path=f"{th.EXPORT_PREFIX}/demo/gpkg?{query}")
    assert r.status_code == 200, r.data[:300]
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        (member,) = [n for n in zf.namelist() if n.endswith(".gpkg")]
        zf.extract(member, tmp_path / "gpkg")
    providers = gpd.read_file(tmp_path / "gpkg" / member, layer="providers")
    assert set(HOSTILE_NAMES) <= set(providers["name"])
    assert not providers["name"].str.startswith("'").any()


def _scenario_files(
    client: Any,
    trigger: str,
    *,
    name: str | None,
    store: Any,
    settled: Any = PHARMACY_DRIVE,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """The What-if panel's Save / export callback, posted as the page posts it."""
    inputs = [
        (sc.SAVE, "n_clicks", 0),
        (sc.EXPORT_GEOJSON, "n_clicks", 0),
        (sc.EXPORT_CSV, "n_clicks", 0),
    ]
    inputs = [(i, p, 1 if i == trigger else v) for i, p, v in inputs]
    return post_callback(
        client,
        [
            (sc.FILE_STATUS, "children"),
            (sc.SAVED, "options"),
            (sc.SAVED, "value"),
            (sc.DOWNLOAD, "data"),
        ],
        inputs,
        [
            (sc.NAME, "value", name),
            (sc.STORE, "data", store),
            (mp.SETTLED, "data", settled),
            (mp.REGION_STORE, "data", {"region": "demo"}),
            (th.EDITOR_TOKEN, "value", token),
        ],
        changed=f"{trigger}.n_clicks",
        headers=headers,
    )


def _restore(client: Any, data: Any) -> dict[str, Any]:
    """Open the scenario a link carried, as ``atlas.scenarioRestore`` asks the server to."""
    return _update_scenario(client, sc.ACTION, {"kind": "restore", "scenario": data})


def _update_scenario(
    client: Any, trigger: str, value: Any, *, saved: str | None = None
) -> dict[str, Any]:
    """The What-if panel's main callback fired by ``trigger`` (``value`` its new value)."""
    ins = [
        sc.ADD_CENTRE,
        sc.ADDRESS_GO,
        sc.ADDRESS,
        sc.ACTION,
        sc.UNDO,
        sc.RESET,
        sc.SUGGEST,
        sc.ACCEPT,
        sc.LOAD,
        mp.SETTLED,
    ]
    props = {sc.ADDRESS: "n_submit", sc.ACTION: "data", mp.SETTLED: "data"}
    values = {trigger: value, mp.SETTLED: PHARMACY_DRIVE}
    outs = [
        (sc.STORE, "data"),
        (sc.MESSAGE, "children"),
        (sc.RESULT, "children"),
        (sc.CHANGE_LAYER, "data"),
        (sc.BANDS_LAYER, "data"),
        (sc.AREAS_STORE, "data"),
        (sc.SITES_LAYER, "data"),
        (sc.SUGGESTIONS, "data"),
        (sc.SUGGEST_RESULT, "children"),
        (sc.SUGGEST_LAYER, "data"),
        (sc.ACCEPT, "disabled"),
        (sc.NAME, "value"),
        (sc.UNDO, "disabled"),
        (sc.RESET, "disabled"),
    ]
    states = [
        (mp.MAP, "center", None),
        (sc.ADDRESS, "value", None),
        (sc.K, "value", 1),
        (sc.SUGGESTIONS, "data", None),
        (sc.SAVED, "value", saved),
        (sc.STORE, "data", None),
        (mp.REGION_STORE, "data", {"region": "demo"}),
    ]
    resp = post_callback(
        client,
        outs,
        [(i, props.get(i, "n_clicks"), values.get(i)) for i in ins],
        states,
        changed=f"{trigger}.{props.get(trigger, 'n_clicks')}",
    )
    return answer(resp)


def _pharmacy_point(build_dir: Path) -> tuple[float, float]:
    """A point in the region where a pharmacy could go (a hostile pharmacy's, moved a little)."""
    import pandas as pd

    providers = pd.read_parquet(build_dir / "layers" / "providers.parquet")
    row = providers[providers["name"] == HOSTILE_NAMES[0]].iloc[0]
    return float(row["lon"]) + 0.01, float(row["lat"]) - 0.01


def pharmacy_scenario(build_dir: Path, name: str, *, site: str = "New site 1") -> dict[str, Any]:
    """The browser's store of a scenario adding one pharmacy."""
    from etl.engine.scenario import Scenario

    lon, lat = _pharmacy_point(build_dir)
    return Scenario(name=name, region="demo").add_site("pharmacy", lon, lat, name=site).to_dict()


def test_the_scenario_csv_from_a_share_link_defuses_formulas(
    atlas: Callable[[Path], Any], build_dir: Path, tmp_path: Path
) -> None:
    client = atlas(linked(build_dir, tmp_path / "geo"))
    link_store = pharmacy_scenario(build_dir, SCENARIO_NAME, site=SITE_NAME)
    token = encode_scenario(link_store)
    assert token
    content = page(client, f"?region=demo&cat=pharmacy&mode=drive&t=10&w={token}")
    restored = find(content, sc.RESTORE)["props"]["data"]
    assert restored["name"] == SCENARIO_NAME
    store = _restore(client, restored)[sc.STORE]["data"]
    assert store["name"] == SCENARIO_NAME and store["changes"][0]["name"] == SITE_NAME

    got = answer(_scenario_files(client, sc.EXPORT_CSV, name=store["name"], store=store))
    download = got[sc.DOWNLOAD]["data"]
    assert download["base64"] is True and download["filename"].endswith("-csv.zip")
    data = base64.b64decode(download["content"])
    assert live_formulas(data) == []
    names = csv_column(data, "scenario_sites.csv", "name")
    assert "'" + SITE_NAME in names
    assert {"'" + n for n in HOSTILE_NAMES} <= set(names)
    assert set(csv_column(data, "scenario_sites.csv", "scenario")) == {"'" + SCENARIO_NAME}
    assert set(csv_column(data, "scenario_desert.csv", "scenario")) == {"'" + SCENARIO_NAME}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert json.loads(zf.read("scenario.json"))["name"] == SCENARIO_NAME  # JSON as it is

    got = answer(_scenario_files(client, sc.EXPORT_GEOJSON, name=store["name"], store=store))
    data = base64.b64decode(got[sc.DOWNLOAD]["data"]["content"])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        sites = json.loads(zf.read("scenario_sites.geojson"))["features"]
    assert {SITE_NAME, *HOSTILE_NAMES} <= {f["properties"]["name"] for f in sites}


# ---------------------------------------------------------------------------------------
# 3. Hostile saved views files
# ---------------------------------------------------------------------------------------


def _write_hostile_views(geo: Path, kind: str, outside: Path) -> Path:
    path = geo / "saved" / "demo" / sv.VIEWS_FILE
    path.parent.mkdir(parents=True)
    if kind == "cp1252":
        doc = {"views": [{"title": "Café Millbrook", "query": "cat=methadone"}]}
        path.write_bytes(json.dumps(doc, ensure_ascii=False).encode("cp1252"))
    elif kind == "deep":
        path.write_text('{"views": ' + "[" * 1100 + "]" * 1100 + "}", "utf-8")
    elif kind == "big":
        title = "x" * 70
        views = [{"title": title, "text": "y" * 250, "query": "cat=methadone"}] * 9_500
        path.write_text(json.dumps({"views": views}), "utf-8")
        assert path.stat().st_size > 3_000_000
    elif kind == "outside":
        outside.mkdir()
        secret = outside / "secret-views.json"
        secret.write_text(json.dumps({"views": [{"title": "From outside", "query": ""}]}))
        path.symlink_to(secret)
    return path


HOSTILE_VIEWS = {
    "cp1252": "The saved views of 'demo': not UTF-8 text (byte 0xe9 at position ",
    "deep": "The saved views of 'demo': nested 1101 levels deep, more than the 32 accepted",
    "big": "bytes, more than the 2,097,152 accepted; town-hall mode shows the default sequence",
    "outside": (
        "The saved views of 'demo' are not used: their file is a link that leads outside the "
        "saved folder; the site's operator should replace it."
    ),
}


@pytest.mark.parametrize("kind", list(HOSTILE_VIEWS))
def test_a_hostile_views_file_leaves_the_pages_working(
    atlas: Callable[[Path], Any],
    build_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    geo = linked(build_dir, tmp_path / "geo")
    path = _write_hostile_views(geo, kind, tmp_path / "outside")
    client = atlas(geo)
    reads: list[Path] = []
    real_load = sv.load_file

    def counting_load(p: Any, **kw: Any) -> Any:
        reads.append(Path(p))
        return real_load(p, **kw)

    monkeypatch.setattr(sv, "load_file", counting_load)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            content = page(client, "?region=demo")
            assert is_map_page(content)
            listing = find(content, th.VIEWS_LIST)
            notes = [c for c in walk(listing) if "atlas-warning" in c["props"].get("className", "")]
            assert len(notes) == 1, [text(n) for n in notes]
            assert HOSTILE_VIEWS[kind] in text(notes[0])
            assert "From outside" not in json.dumps(content)
            assert "No views saved yet" in text(listing)  # the default sequence instead
            assert_plain_sentence(text(notes[0]))
            assert_no_server_path(content, tmp_path)

            deck = find(page(client, "?region=demo", "/present"), th.PRESENT)
            views = json.loads(deck["props"]["data-deck"])["views"]
            assert len(views) == 4 and "Café" not in json.dumps(views)
            assert "From outside" not in json.dumps(views)
            assert_no_server_path(deck, tmp_path)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].name == "viewmodel.saved_views" and warnings[0].exc_info is None
    # Four page renders, each asking for the views more than once: one read of the file.
    assert reads == ([] if kind == "outside" else [path.resolve()])

    if kind != "outside":  # a new version of the file is read again, once
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        page(client, "?region=demo")
        page(client, "?region=demo", "/present")
        assert len(reads) == 2

    # Saving a view works again: an unusable file is set aside (kept for a person to look
    # at); a link out of the saved folder is left alone and saving says why.
    status = status_of(save_view(client, title="Fresh start", token=TOKEN))
    if kind == "outside":
        assert status == "t" + HOSTILE_VIEWS[kind][1:].rstrip(".")
        assert path.is_symlink()
    else:
        assert status.startswith("Saved as view 1")
        assert [v["title"] for v in json.loads(path.read_text("utf-8"))["views"]] == ["Fresh start"]
        assert len(list(path.parent.glob("views.corrupt-*.json"))) == 1


def test_a_good_views_file_is_read_once_per_modification(
    atlas: Callable[[Path], Any], build_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    geo = linked(build_dir, tmp_path / "geo")
    client = atlas(geo)
    path = geo / "saved" / "demo" / sv.VIEWS_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"views": [{"title": "First", "query": "cat=methadone"}]}))
    reads: list[Path] = []
    real_load = sv.load_file
    monkeypatch.setattr(sv, "load_file", lambda p, **kw: reads.append(p) or real_load(p, **kw))

    def titles() -> list[str]:
        deck = find(page(client, "?region=demo", "/present"), th.PRESENT)
        return [v["title"] for v in json.loads(deck["props"]["data-deck"])["views"]]

    for _ in range(3):
        assert titles() == ["First"]
        assert "1. First" in json.dumps(find(page(client, "?region=demo"), th.VIEWS_LIST))
    assert len(reads) == 1
    path.write_text(json.dumps({"views": [{"title": "Second version", "query": ""}]}))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert titles() == ["Second version"] and titles() == ["Second version"]
    assert len(reads) == 2


def _write_hostile_scenarios(folder: Path, outside: Path) -> dict[str, str]:
    """Saved scenario files that are not usable; returns slug -> what the page says."""
    folder.mkdir(parents=True)
    (folder / "deep.json").write_text('{"changes": ' + "[" * 1100 + "]" * 1100 + "}")
    (folder / "cafe.json").write_bytes('{"name": "Café", "changes": []}'.encode("cp1252"))
    (folder / "big.json").write_text(json.dumps({"name": "x" * (aps.MAX_SAVED_BYTES + 10)}))
    outside.mkdir()
    (outside / "elsewhere.json").write_text("{}")
    (folder / "out.json").symlink_to(outside / "elsewhere.json")
    return {
        "deep": "deep.json: nested 1101 levels deep, more than the 32 accepted",
        "cafe": "cafe.json: not UTF-8 text (byte 0xe9 at position 13); save it as UTF-8",
        "big": f"big.json: {(folder / 'big.json').stat().st_size:,} bytes, more than the "
        f"{aps.MAX_SAVED_BYTES:,} accepted",
        "out": (
            "refusing the saved scenario 'out.json': it is a link that leads outside the "
            "saved folder; the site's operator should replace it"
        ),
    }


def test_hostile_saved_scenarios_leave_the_list_save_and_load_working(
    atlas: Callable[[Path], Any],
    build_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    geo = linked(build_dir, tmp_path / "geo")
    client = atlas(geo)
    folder = geo / "saved" / "demo" / "scenarios"
    problems = _write_hostile_scenarios(folder, tmp_path / "outside")
    reads: list[str] = []
    real_read = aps.read_saved
    monkeypatch.setattr(aps, "read_saved", lambda p: reads.append(p.name) or real_read(p))
    header = {editing.TOKEN_HEADER: TOKEN}
    store = pharmacy_scenario(build_dir, "Plan")

    with caplog.at_level(logging.WARNING):
        for n in range(3):
            got = answer(_scenario_files(client, sc.SAVE, name="Plan", store=store, headers=header))
            status = text(got[sc.FILE_STATUS]["children"])
            assert status == "Saved “Plan” as plan.json with the region demo."
            assert got[sc.SAVED]["options"] == [{"label": "Plan (1 change)", "value": "plan"}]
            # A version of its own even if the next save lands in the same nanosecond.
            os.utime(folder / "plan.json", ns=(0, (n + 1) * 1_000_000_000))
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("list_saved")]
    assert len(skipped) == 4  # one line per unusable file, not one per listing
    # Each unusable file read once; plan.json once per version (three saves).
    assert sorted(reads) == sorted(
        ["deep.json", "cafe.json", "big.json", "plan.json", "plan.json", "plan.json"]
    )

    for slug, problem in problems.items():
        message = text(_update_scenario(client, sc.LOAD, 1, saved=slug)[sc.MESSAGE]["children"])
        assert message == problem
        assert_plain_sentence(message)
    loaded = _update_scenario(client, sc.LOAD, 1, saved="plan")
    assert text(loaded[sc.MESSAGE]["children"]) == "Loaded “Plan” (1 changes)."


# ---------------------------------------------------------------------------------------
# 4. Share links whose scenario token is hostile
# ---------------------------------------------------------------------------------------


def _token(text_: str) -> str:
    return base64.urlsafe_b64encode(text_.encode("utf-8")).decode("ascii").rstrip("=")


HOSTILE_TOKENS: dict[str, tuple[Callable[[], str], str]] = {
    "nested": (
        lambda: _token('{"changes": ' + "[" * 1090 + "]" * 1090 + "}"),
        "the scenario in this link is nested 1091 levels deep, more than the 32 accepted",
    ),
    "too-long": (
        lambda: "A" * (MAX_SCENARIO_CHARS + 1),
        "the scenario in this link is longer than the 3,000 characters a link may carry; "
        "save it and share its name instead",
    ),
    "garbage": (
        lambda: "%3Cscript%3E!!**",
        "the scenario in this link is damaged (it holds characters a link never writes)",
    ),
    "not-utf8": (
        lambda: base64.urlsafe_b64encode(b'{"name": "Caf\xe9"}').decode().rstrip("="),
        "the scenario in this link is not UTF-8 text (byte 0xe9 at position 13); save it as UTF-8",
    ),
    "not-a-scenario": (
        lambda: _token('["changes"]'),
        "the scenario in this link is not a scenario of this map",
    ),
}


@pytest.mark.parametrize("kind", list(HOSTILE_TOKENS))
def test_a_hostile_share_link_token_gives_a_plain_message_and_a_working_map(
    atlas: Callable[[Path], Any], build_dir: Path, tmp_path: Path, kind: str
) -> None:
    client = atlas(linked(build_dir, tmp_path / "geo"))
    make, problem = HOSTILE_TOKENS[kind]
    token = make()
    assert len(token) < 3_200
    content = page(client, f"?region=demo&cat=methadone&w={token}")
    assert is_map_page(content)
    assert "people" in text(find(content, mp.SUMMARY))  # the map's numbers are there
    message = text(find(content, sc.MESSAGE))
    assert message == (
        f"The scenario in this link cannot be opened: {problem}; the map shows the data."
    )
    assert find(content, sc.RESTORE)["props"].get("data") is None
    assert "Rebuilding the bundle" not in text(content)
    share = find(content, mp.SHARE)["props"]["href"]
    assert "w=" not in share  # the broken token is not passed on
    assert_no_server_path(content, tmp_path)


# ---------------------------------------------------------------------------------------
# 5 and 6. Saving views: privacy, the editor token, the rate limit
# ---------------------------------------------------------------------------------------


def save_view(
    client: Any,
    *,
    title: str = "A view",
    share_href: str = "/?region=demo&cat=buprenorphine&mode=walk",
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """Press "Save this view" (the real callback, as the page posts it)."""
    return post_callback(
        client,
        [
            (th.VIEW_STATUS, "children"),
            (th.VIEWS_LIST, "children"),
            (th.VIEW_TITLE, "value"),
            (th.VIEW_TEXT, "value"),
        ],
        [(th.VIEW_SAVE, "n_clicks", 1), (th.VIEWS_REMOVE, "n_clicks", 0)],
        [
            (th.VIEW_TITLE, "value", title),
            (th.VIEW_TEXT, "value", "One sentence."),
            (mp.SHARE, "href", share_href),
            (th.VIEWS_PICK, "value", []),
            (mp.REGION_STORE, "data", {"region": "demo"}),
            (th.EDITOR_TOKEN, "value", token),
        ],
        changed=f"{th.VIEW_SAVE}.n_clicks",
        headers=headers,
    )


def status_of(resp: Any) -> str:
    return text(answer(resp)[th.VIEW_STATUS]["children"])


def saved_queries(geo: Path) -> list[str]:
    path = geo / "saved" / "demo" / sv.VIEWS_FILE
    if not path.exists():
        return []
    return [v["query"] for v in json.loads(path.read_text("utf-8"))["views"]]


ADDRESS = "12 Hidden Lane, Millbrook"
LOOKED_UP = (
    "/?region=demo&cat=buprenorphine&mode=walk&t=25&q=12+Hidden+Lane%2C+Millbrook"
    "&lat=40.01234&lon=-39.98765&z=15"
)


def test_a_saved_view_never_keeps_an_address_or_a_point(
    atlas: Callable[[Path], Any], build_dir: Path, tmp_path: Path
) -> None:
    geo = linked(build_dir, tmp_path / "geo")
    client = atlas(geo)
    content = page(client, "?region=demo&q=" + ADDRESS.replace(" ", "+"))
    assert sv.PRIVACY_NOTE in text(content)  # the save dialog says so
    assert "Saved as view 1" in status_of(save_view(client, share_href=LOOKED_UP, token=TOKEN))
    assert saved_queries(geo) == ["cat=buprenorphine&mode=walk&t=25"]
    raw = (geo / "saved" / "demo" / sv.VIEWS_FILE).read_text("utf-8")
    for leak in ("Hidden", "40.01234", "-39.98765", "q=", "lat=", "lon=", "z="):
        assert leak not in raw


def test_present_never_sends_an_address_or_point_from_an_older_file(
    atlas: Callable[[Path], Any], build_dir: Path, tmp_path: Path
) -> None:
    geo = linked(build_dir, tmp_path / "geo")
    path = geo / "saved" / "demo" / sv.VIEWS_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"views": [{"title": "Old", "query": LOOKED_UP}]}), "utf-8")
    client = atlas(geo)
    for content in (page(client, "?region=demo", "/present"), page(client, "?region=demo")):
        blob = json.dumps(content)
        for leak in ("Hidden", "40.01234", "-39.98765", "q=12", "lat=40", "lon=-39.98765"):
            assert leak not in blob, leak
    deck = json.loads(
        find(page(client, "?region=demo", "/present"), th.PRESENT)["props"]["data-deck"]
    )
    (view,) = deck["views"]
    assert view["title"] == "Old" and "center" not in view["viewport"]
    assert "cat=buprenorphine&mode=walk&t=25" in view["href"]
    # The same older file is cleaned when the next view is saved.
    assert "Saved as view 2" in status_of(save_view(client, token=TOKEN))
    assert saved_queries(geo) == ["cat=buprenorphine&mode=walk&t=25", "cat=buprenorphine&mode=walk"]


def test_writes_need_the_editor_token(
    atlas: Callable[[Path], Any],
    build_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    geo = linked(build_dir, tmp_path / "geo")
    client = atlas(geo)
    monkeypatch.delenv(editing.TOKEN_ENV)
    assert text(find(page(client, "?region=demo"), th.EDITING_NOTE)) == editing.OFF_TEXT
    assert status_of(save_view(client, token=TOKEN)) == editing.OFF_TEXT
    assert saved_queries(geo) == []

    monkeypatch.setenv(editing.TOKEN_ENV, TOKEN)
    assert text(find(page(client, "?region=demo"), th.EDITING_NOTE)) == editing.ON_TEXT
    wrong = "Wrong or missing editor token"
    assert status_of(save_view(client)).startswith(wrong)
    assert status_of(save_view(client, token="not-" + TOKEN)).startswith(wrong)
    header = {editing.TOKEN_HEADER: TOKEN[:-1]}
    assert status_of(save_view(client, headers=header)).startswith(wrong)
    assert saved_queries(geo) == []

    assert "Saved as view 1" in status_of(save_view(client, title="Form", token=f" {TOKEN} "))
    header = {editing.TOKEN_HEADER: TOKEN}
    assert "Saved as view 2" in status_of(save_view(client, title="Header", headers=header))
    assert len(saved_queries(geo)) == 2

    # Removing is for editors too.
    remove = [(th.VIEW_SAVE, "n_clicks", 0), (th.VIEWS_REMOVE, "n_clicks", 1)]
    state = [
        (th.VIEW_TITLE, "value", ""),
        (th.VIEW_TEXT, "value", ""),
        (mp.SHARE, "href", "/"),
        (th.VIEWS_PICK, "value", [0, 1]),
        (mp.REGION_STORE, "data", {"region": "demo"}),
        (th.EDITOR_TOKEN, "value", "guess"),
    ]
    outs = [
        (th.VIEW_STATUS, "children"),
        (th.VIEWS_LIST, "children"),
        (th.VIEW_TITLE, "value"),
        (th.VIEW_TEXT, "value"),
    ]
    resp = post_callback(client, outs, remove, state, changed=f"{th.VIEWS_REMOVE}.n_clicks")
    assert status_of(resp).startswith(wrong) and len(saved_queries(geo)) == 2


def test_the_rate_limit_refuses_the_eleventh_write_in_a_minute(
    atlas: Callable[[Path], Any], build_dir: Path, tmp_path: Path
) -> None:
    geo = linked(build_dir, tmp_path / "geo")
    client = atlas(geo)
    assert editing.WRITES_PER_MINUTE == 10
    proxy = {"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}  # behind nginx on this machine
    for i in range(10):  # wrong tokens count too: nobody guesses the token quickly
        token = TOKEN if i % 2 else "guess"
        status = status_of(save_view(client, title=f"View {i}", token=token, headers=proxy))
        assert ("Saved as view" in status) == bool(i % 2), status
    status = status_of(save_view(client, title="Eleventh", token=TOKEN, headers=proxy))
    assert status == (
        "Too many changes from your network in a minute (at most 10); wait a minute and try again."
    )
    assert len(saved_queries(geo)) == 5
    # Another network is not held back; the same /24 is.
    same = {"X-Forwarded-For": "203.0.113.200"}
    assert status_of(save_view(client, token=TOKEN, headers=same)).startswith("Too many")
    other = {"X-Forwarded-For": "198.51.100.9"}
    assert "Saved as view 6" in status_of(save_view(client, token=TOKEN, headers=other))


@pytest.mark.parametrize(
    ("remote", "forwarded", "key"),
    [
        ("127.0.0.1", "203.0.113.7, 10.0.0.1", "203.0.113.0"),  # nginx on this machine
        ("10.1.2.3", "198.51.100.77", "198.51.100.0"),  # a proxy on the private network
        ("", "203.0.113.7", "203.0.113.0"),  # gunicorn on a unix socket behind nginx
        (None, "2001:db8:1:2::5", "2001:db8:1::"),  # no address at all
        ("8.8.4.4", "203.0.113.7", "8.8.4.0"),  # a public client cannot pick a key
        ("127.0.0.1", "", "127.0.0.0"),
        ("", "", "-"),
    ],
)
def test_client_key_uses_the_forwarded_address_only_behind_a_local_proxy(
    remote: str | None, forwarded: str, key: str
) -> None:
    import app as atlas_app

    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    with atlas_app.server.test_request_context(
        "/", headers=headers, environ_base={"REMOTE_ADDR": remote}
    ):
        import flask

        assert flask.request.remote_addr == remote
        assert editing.client_key() == key
    assert editing.client_key() == "-"  # outside a request


def test_the_scenario_cap_expires_the_oldest_drafts_and_never_a_named_one(
    atlas: Callable[[Path], Any],
    build_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    geo = linked(build_dir, tmp_path / "geo")
    client = atlas(geo)
    monkeypatch.setattr(aps, "MAX_SAVED", 3)
    store = pharmacy_scenario(build_dir, "x")
    folder = geo / "saved" / "demo" / "scenarios"
    header = {editing.TOKEN_HEADER: TOKEN}

    def save(name: str | None, **kw: Any) -> str:
        resp = _scenario_files(client, sc.SAVE, name=name, store=store, **kw)
        return text(answer(resp)[sc.FILE_STATUS]["children"])

    def slugs() -> list[str]:
        return sorted(p.stem for p in folder.glob("*.json"))

    assert save(None).startswith("Wrong or missing editor token") and not folder.exists()
    # Two untitled drafts (the oldest first), then named plans.
    assert "as untitled-scenario.json" in save(None, token=TOKEN)
    assert "as scenario-2.json" in save("Scenario 2", headers=header)
    for age, slug in ((300, "untitled-scenario"), (200, "scenario-2")):
        st = (folder / f"{slug}.json").stat()
        os.utime(folder / f"{slug}.json", (st.st_atime - age, st.st_mtime - age))
    assert "as plan-a.json" in save("Plan A", headers=header)
    assert slugs() == ["plan-a", "scenario-2", "untitled-scenario"]
    assert "as plan-b.json" in save("Plan B", headers=header)
    assert slugs() == ["plan-a", "plan-b", "scenario-2"]  # the oldest draft went first
    assert "as plan-c.json" in save("Plan C", headers=header)
    assert slugs() == ["plan-a", "plan-b", "plan-c"]
    assert save("Plan D", headers=header) == (
        "this region already holds 3 saved scenarios; save under the name of one to replace "
        "it, or ask the site's operator to remove old ones"
    )
    assert slugs() == ["plan-a", "plan-b", "plan-c"]  # named ones are never removed
    assert "as plan-b.json" in save("Plan B", headers=header)  # replacing one is allowed
    assert slugs() == ["plan-a", "plan-b", "plan-c"]


# ---------------------------------------------------------------------------------------
# 7. Junk callback input: one log line per request
# ---------------------------------------------------------------------------------------

JUNK = {
    "site details from a string": (
        [(mp.DETAILS, "children"), (mp.SELECTION, "data")],
        [(mp.SITES_LAYER, "clickData", {"properties": "<script>"}), (mp.MAP, "clickData", None)],
        [(mp.REGION_STORE, "data", {"region": "demo"})],
        500,
        "failed on its input (500): AttributeError",
    ),
    "a look-up of a number": (
        [
            (mp.LOOKUP, "children"),
            (mp.ROUTES, "children"),
            (mp.MAP, "viewport"),
            (mp.QUERY_STORE, "data"),
        ],
        [
            (mp.ADDRESS_GO, "n_clicks", 1),
            (mp.ADDRESS, "n_submit", None),
            (mp.MODE, "value", "drive"),
        ],
        [(mp.ADDRESS, "value", 12345), (mp.REGION_STORE, "data", {"region": "demo"})],
        500,
        "failed on its input (500): AttributeError",
    ),
    "an output no page has": (
        [("no-such-output", "children")],
        [(mp.ADDRESS_GO, "n_clicks", 1)],
        [],
        400,
        "callback request refused (400) for no-such-output.children",
    ),
}


@pytest.mark.parametrize("kind", list(JUNK))
def test_junk_callback_input_is_one_log_line_per_request(
    atlas: Callable[[Path], Any],
    build_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    client = atlas(linked(build_dir, tmp_path / "geo"))
    outputs, inputs, state, status, logged = JUNK[kind]
    for n in range(1, 4):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            resp = post_callback(client, outputs, inputs, state)
        assert resp.status_code == status
        assert resp.get_json() == {"error": serving._ERROR_TEXT[status], "status": status}
        assert b"Traceback" not in resp.data and b"AttributeError" not in resp.data
        lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(lines) == 1, (n, [r.getMessage() for r in lines])
        (line,) = lines
        assert logged in line.getMessage() and line.exc_info is None
        assert "\n" not in line.getMessage() and len(line.getMessage()) < 400
        assert "Traceback" not in caplog.text


# ---------------------------------------------------------------------------------------
# 8. A full disk
# ---------------------------------------------------------------------------------------

DISK_FULL = "the server's disk is full; tell the site's operator"


def _enospc(path: Path) -> Callable[..., Any]:
    def fail(*_args: Any, **_kw: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    return fail


def test_a_full_disk_is_said_on_the_page_without_a_path(
    atlas: Callable[[Path], Any],
    build_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import etl.outputs.export as export_module

    geo = linked(build_dir, tmp_path / "geo")
    client = atlas(geo)
    header = {editing.TOKEN_HEADER: TOKEN}
    monkeypatch.setattr(sv, "write_views", _enospc(geo / "saved" / "demo" / "views.json"))
    monkeypatch.setattr(aps, "save_scenario", _enospc(geo / "saved" / "demo" / "scenarios"))
    monkeypatch.setattr(export_module, "export_layers", _enospc(geo / ".cache" / "exports"))

    with caplog.at_level(logging.ERROR):
        got = answer(save_view(client, headers=header))
        assert text(got[th.VIEW_STATUS]["children"]) == f"The view was not saved: {DISK_FULL}"
        assert th.VIEWS_LIST not in got
        assert_no_server_path(got, tmp_path)

        store = pharmacy_scenario(build_dir, "Plan")
        got = answer(_scenario_files(client, sc.SAVE, name="Plan", store=store, headers=header))
        assert text(got[sc.FILE_STATUS]["children"]) == f"The scenario was not saved: {DISK_FULL}."
        assert_no_server_path(got, tmp_path)

        r = client.get(
            buffered=True,
            path=f"{th.EXPORT_PREFIX}/demo/csv?cat=pharmacy&mode=drive&data=providers",
        )
        assert r.status_code == 503
        assert r.get_json() == {"error": f"The export was not made: {DISK_FULL}.", "status": 503}
        assert r.headers["Cache-Control"] == "no-store"

        buttons = [
            (th.export_button_id(k), "n_clicks", 1 if k == "csv" else 0) for k in th.EXPORT_KINDS
        ]
        got = answer(
            post_callback(
                client,
                [(th.EXPORT_STATUS, "children"), (th.EXPORT_LINK, "data")],
                buttons,
                [
                    (mp.SHARE, "href", "/?region=demo&cat=pharmacy&mode=drive&t=12"),
                    (th.EXPORT_IN_VIEW, "value", []),
                    (mp.MAP, "bounds", None),
                    (mp.REGION_STORE, "data", {"region": "demo"}),
                ],
                changed=f"{th.export_button_id('csv')}.n_clicks",
            )
        )
        assert text(got[th.EXPORT_STATUS]["children"]) == f"The download was not made: {DISK_FULL}."
        assert got[th.EXPORT_LINK]["data"] is None
        assert_no_server_path(got, tmp_path)
    # The server's log has what happened, with the path (the public never sees it).
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 4 and all("No space left on device" in m for m in logged), logged
    assert not list((geo / "saved").rglob("*.json"))  # nothing half-written was left
    exports = geo / ".cache" / "exports"
    assert not [p for p in exports.rglob("*") if p.name.startswith(".")]  # no temp left


@pytest.mark.slow
def test_junk_callback_input_is_one_json_line_in_gunicorns_error_log(
    build_dir: Path, tmp_path: Path
) -> None:
    """The same through a real gunicorn on 127.0.0.1, whose error log is JSON lines."""
    import urllib.error
    import urllib.request

    from tests.browser_support import serve

    geo = linked(build_dir, tmp_path / "geo")
    outputs, inputs, state, status, logged = JUNK["site details from a string"]
    body = {
        "output": "..{}..".format("...".join(f"{i}.{p}" for i, p in outputs)),
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }
    with serve(geo, ready_path="/healthz") as url:
        for _ in range(5):
            request = urllib.request.Request(
                url + "/_dash-update-component",
                data=json.dumps(body).encode("utf-8"),
                headers={"Content-Type": "application/json"},
            )
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=30)
            assert caught.value.code == status
            assert b"Traceback" not in caught.value.read()
        (log,) = geo.parent.glob("gunicorn-*.log")
        records = []
        for line in log.read_text("utf-8").splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
    failed = [r for r in records if logged in r.get("message", "")]
    assert len(failed) == 5 and not any("exception" in r for r in failed)
    assert not any("Traceback" in json.dumps(r) for r in records)
