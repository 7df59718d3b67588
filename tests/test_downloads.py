"""Downloads: offline tiles served from the bundle, exports of the current map (cached, safe).

Every export is opened again (geopandas/pyogrio for the data, magic bytes for PNG and PDF)
and compared with the bundle; requests that try to leave the export folder are refused and
leave the file system as it was.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest

os.environ.setdefault("ACCESS_ATLAS_WARM", "0")

from callbacks import downloads
from callbacks.downloads import (
    bbox_of,
    export_outcome,
    export_request,
    prepare_export,
    render_layers,
    tile_file,
)
from etl._errors import ExportError
from tests.test_townhall import demo_geodata, linked_geodata
from viewmodel.data import map_options, region_data


@pytest.fixture(scope="module")
def geo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linked_geodata(
        demo_geodata(tmp_path_factory), tmp_path_factory.mktemp("downloads") / "geodata"
    )


@pytest.fixture(scope="module")
def rd(geo: Path):
    return region_data(geo, "demo")


@pytest.fixture(scope="module")
def options(rd):
    return map_options(rd, ["demo"])


@pytest.fixture(scope="module")
def client(geo: Path):
    import app as atlas_app
    import callbacks.map as map_callbacks

    map_callbacks.configure(geodata=geo, default_region="demo")
    downloads.configure(cache_dir=None)
    return atlas_app.server.test_client()


def _get(client, url: str, **kwargs: Any):
    """GET, with the body read and the file closed (exports are streamed from disk)."""
    return client.get(url, buffered=True, **kwargs)


def _tree(root: Path) -> set[str]:
    """Every path under ``root`` (files and folders), relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ---------------------------------------------------------------------------------------
# Tiles
# ---------------------------------------------------------------------------------------


def _a_tile(rd) -> tuple[int, int, int]:
    tiles = rd.bundle.path / "tiles"
    path = next(p for p in sorted(tiles.glob("13/*/*.png")))
    return 13, int(path.parent.name), int(path.stem)


def test_tile_route_serves_the_bundles_tiles_with_long_caching(client, rd) -> None:
    z, x, y = _a_tile(rd)
    r = _get(client, f"/atlas/tiles/demo/{z}/{x}/{y}.png?v={rd.build_id}")
    assert r.status_code == 200
    assert r.mimetype == "image/png" and r.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert r.data == (rd.bundle.path / "tiles" / str(z) / str(x) / f"{y}.png").read_bytes()
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["ETag"]
    again = _get(
        client,
        f"/atlas/tiles/demo/{z}/{x}/{y}.png?v={rd.build_id}",
        headers={"If-None-Match": r.headers["ETag"]},
    )
    assert again.status_code == 304
    old = _get(client, f"/atlas/tiles/demo/{z}/{x}/{y}.png?v=an-old-build")
    assert old.status_code == 200 and old.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "url",
    [
        "/atlas/tiles/demo/13/0/0.png",  # not rendered (outside the region)
        "/atlas/tiles/demo/25/0/0.png",  # zoom out of range
        "/atlas/tiles/demo/2/9/1.png",  # x outside the grid
        "/atlas/tiles/atlantis/13/3181/3098.png",
        "/atlas/tiles/..%2F..%2Fetc/13/1/1.png",
        "/atlas/tiles/demo/13/..%2F..%2Fmanifest.png",
        "/atlas/tiles/demo/13/-1/2.png",
        "/atlas/tiles/demo/metadata.json",
    ],
)
def test_missing_or_bad_tiles_answer_404(client, url: str) -> None:
    r = _get(client, url)
    assert b"Traceback" not in r.data
    assert r.mimetype != "image/png"
    # a path the tile route does not match is Dash's page (which says "not found" itself)
    assert r.status_code == 404 or r.mimetype == "text/html"


def test_tile_file_never_leaves_the_tiles_folder(tmp_path: Path) -> None:
    build = tmp_path / ".builds" / "b1"
    (build / "tiles" / "3" / "1").mkdir(parents=True)
    (build / "tiles" / "3" / "1" / "2.png").write_bytes(b"\x89PNG")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"secret")
    (build / "tiles" / "3" / "1" / "3.png").symlink_to(secret)
    (tmp_path / "demo").symlink_to(build)
    assert tile_file(tmp_path, "demo", 3, 1, 2) == (build / "tiles" / "3" / "1" / "2.png").resolve()
    assert tile_file(tmp_path, "demo", 3, 1, 3) is None  # a link out of the folder
    assert tile_file(tmp_path, "..", 3, 1, 2) is None
    assert tile_file(tmp_path, "demo", 3, 8, 2) is None


def test_the_map_uses_the_offline_tiles_as_its_basemap(rd, options) -> None:
    import callbacks.map as map_callbacks
    from layouts.map_page import map_layers
    from layouts.townhall import OFFLINE_TILES
    from viewmodel.state import default_state

    model = map_callbacks.page_model(rd, default_state("demo", options), options, default="demo")
    layers = map_layers(model)
    tiles = next(c for c in layers if getattr(c, "id", None) == OFFLINE_TILES)
    assert tiles.url == f"/atlas/tiles/demo/{{z}}/{{x}}/{{y}}.png?v={rd.build_id}"
    meta = json.loads((rd.bundle.path / "tiles" / "metadata.json").read_text(encoding="utf-8"))
    assert (tiles.minNativeZoom, tiles.maxNativeZoom) == (meta["minzoom"], meta["maxzoom"])
    (s, w), (n, e) = tiles.bounds
    west, south, east, north = meta["bounds"]
    assert s <= south and w <= west and n >= north and e >= east  # tiles cover the region
    assert layers.index(tiles) < [getattr(c, "id", None) for c in layers].index("layer-tiles")


# ---------------------------------------------------------------------------------------
# Export requests
# ---------------------------------------------------------------------------------------


def test_export_request_reads_the_map_state(options) -> None:
    req = export_request(
        "shp",
        "cat=buprenorphine&mode=walk&t=25&layers=streets,desert&bbox=-40.1,39.9,-39.9,40.1",
        options,
    )
    assert (req.category, req.mode, req.threshold) == ("buprenorphine", "walk", 25)
    assert req.bbox == (-40.1, 39.9, -39.9, 40.1)
    default = export_request("csv", "", options)
    assert (default.category, default.mode) == ("methadone", "drive")
    # map layers do not change a data export's file; the threshold does (it is counted at it)
    assert (
        req.key()
        == export_request(
            "shp",
            "?cat=buprenorphine&mode=walk&t=25&layers=sites&bbox=-40.1,39.9,-39.9,40.1",
            options,
        ).key()
    )
    assert (
        req.key()
        != export_request(
            "shp", "?cat=buprenorphine&mode=walk&layers=sites&bbox=-40.1,39.9,-39.9,40.1", options
        ).key()
    )
    assert req.key() != export_request("gpkg", "cat=buprenorphine&mode=walk", options).key()
    png = export_request("png", "cat=pharmacy&layers=streets,bands,desert,sites,barriers", options)
    assert render_layers(png) == (
        "streets",
        "isochrones",
        "deserts",
        "barriers",
        "region",
        "providers",
    )
    assert render_layers(export_request("png", "layers=areas&unit=grid", options)) == (
        "grid",
        "region",
    )


@pytest.mark.parametrize(
    ("kind", "query", "message"),
    [
        ("xls", "", "unknown export 'xls'; valid: shp, gpkg, geojson, csv, png, pdf, factsheet"),
        ("shp", "cat=unicorns", "unknown category 'unicorns' for this region; valid: methadone"),
        ("shp", "mode=rocket", "unknown travel mode 'rocket'"),
        ("csv", "bbox=1,2,3", "bbox must be four numbers"),
        ("csv", "bbox=a,b,c,d", "bbox must be four numbers"),
        ("csv", "bbox=3,2,1,4", "west < east"),
        ("csv", "bbox=0,0,1,500", "four numbers"),
        ("gpkg", "data=providers,secrets", "unknown layer 'secrets'; valid layers: providers"),
        ("gpkg", "data=../../etc/passwd", "unknown layer '../../etc/passwd'"),
    ],
)
def test_bad_export_requests_say_what_is_valid(
    options, kind: str, query: str, message: str
) -> None:
    with pytest.raises(ExportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        export_request(kind, query, options)


def test_bbox_of_reads_leaflet_bounds() -> None:
    assert bbox_of([[39.9, -40.1], [40.1, -39.9]]) == (-40.1, 39.9, -39.9, 40.1)
    assert bbox_of(None) is None
    assert bbox_of("junk") is None


# ---------------------------------------------------------------------------------------
# Building and caching
# ---------------------------------------------------------------------------------------


def test_exports_are_cached_by_build_and_parameters(
    rd, options, tmp_path: Path, monkeypatch
) -> None:
    calls = []
    real = downloads._build

    def counting(*args: Any) -> None:
        calls.append(args[1].kind)
        real(*args)

    monkeypatch.setattr(downloads, "_build", counting)
    cache = tmp_path / "cache"
    old = cache / "demo" / "an-old-build" / "csv-0"
    old.mkdir(parents=True)
    (old / "x.zip").write_bytes(b"old")
    req = export_request("csv", "cat=pharmacy&mode=walk", options)
    first = prepare_export(rd, req, cache=cache)
    assert first.parent.parent == cache / "demo" / rd.build_id
    assert first.parent.name == f"csv-{req.key()}"
    again = prepare_export(
        rd, export_request("csv", "cat=pharmacy&mode=walk", options), cache=cache
    )
    assert again == first and calls == ["csv"]  # built once
    # another threshold is another file (the desert is counted at it)
    other = prepare_export(
        rd, export_request("csv", "cat=pharmacy&mode=walk&t=9", options), cache=cache
    )
    assert other != first and calls == ["csv", "csv"]
    assert not old.exists()  # the old build's exports are gone
    prepare_export(rd, export_request("csv", "cat=pharmacy&mode=drive", options), cache=cache)
    assert calls == ["csv", "csv", "csv"]
    # nothing but finished exports in the build folder (no temporary folders left)
    assert all(not p.name.startswith(".") for p in (cache / "demo" / rd.build_id).iterdir())


def test_only_the_most_recent_exports_are_kept(rd, options, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(downloads, "MAX_CACHED", 2)
    cache = tmp_path / "cache"
    paths = []
    for cat in ("pharmacy", "methadone", "buprenorphine"):
        paths.append(prepare_export(rd, export_request("csv", f"cat={cat}", options), cache=cache))
        os.utime(paths[-1].parent, (1e9 + len(paths), 1e9 + len(paths)))
    kept = sorted(p.name for p in (cache / "demo" / rd.build_id).iterdir())
    assert len(kept) == 2 and not paths[0].exists()


def test_an_empty_selection_writes_nothing(rd, options, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    req = export_request("geojson", "cat=methadone&bbox=10,10,11,11", options)
    with pytest.raises(ExportError, match="nothing to export"):
        prepare_export(rd, req, cache=cache)
    assert not list((cache / "demo" / rd.build_id).iterdir())


# ---------------------------------------------------------------------------------------
# The export route: every format opened again
# ---------------------------------------------------------------------------------------


def _unzip(data: bytes, target: Path) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert all(not n.startswith("/") and ".." not in n for n in names)
        zf.extractall(target)
    return names


def _expected(rd, category: str) -> dict[str, int]:
    providers = rd.layer("providers")
    return {
        "providers": int((providers["category"] == category).sum()),
        "areas": len(rd.layer("areas")),
        "region": len(rd.layer("region")),
    }


@pytest.mark.parametrize("fmt", ["shp", "gpkg", "geojson", "csv"])
def test_data_exports_open_with_the_bundles_rows(client, rd, fmt: str, tmp_path: Path) -> None:
    r = _get(client, f"/atlas/export/demo/{fmt}?cat=buprenorphine&mode=walk&v={rd.build_id}")
    assert r.status_code == 200, r.data[:300]
    assert r.mimetype == "application/zip"
    tag = {"shp": "shapefile", "gpkg": "geopackage", "geojson": "geojson", "csv": "csv"}[fmt]
    assert f"filename=demo-buprenorphine-walk-20min-{tag}.zip" in r.headers["Content-Disposition"]
    names = _unzip(r.data, tmp_path)
    assert {"metadata.json", "README.txt", "data_dictionary.csv"} <= set(names)
    meta = json.loads((tmp_path / "metadata.json").read_text(encoding="utf-8"))
    assert "FICTIONAL" in json.dumps(meta)
    expected = _expected(rd, "buprenorphine")

    def read(layer: str) -> pd.DataFrame:
        if fmt == "shp":
            return gpd.read_file(tmp_path / f"{layer}.shp")
        if fmt == "gpkg":
            return gpd.read_file(tmp_path / "demo.gpkg", layer=layer)
        if fmt == "geojson":
            return gpd.read_file(tmp_path / f"{layer}.geojson")
        return pd.read_csv(tmp_path / f"{layer}.csv")

    for layer, n in expected.items():
        frame = read(layer)
        assert len(frame) == n, (layer, len(frame), n)
        if fmt != "csv":
            assert frame.crs is not None and frame.crs.to_epsg() == 4326
    providers = read("providers")
    assert set(providers["category"]) == {"buprenorphine"}
    areas = read("areas")
    cols = set(areas.columns)
    # only the chosen category's and mode's metric columns (short names in a Shapefile)
    if fmt == "shp":
        assert "t_bup_wk" in cols and not any(c.startswith("t_mth") for c in cols)
    else:
        assert "t_buprenorphine_walk" in cols and "t_methadone_drive" not in cols
    if fmt == "gpkg":
        assert set(pyogrio.list_layers(tmp_path / "demo.gpkg")[:, 0]) >= set(expected)


@pytest.mark.parametrize(("kind", "magic"), [("png", b"\x89PNG"), ("factsheet", b"%PDF")])
def test_print_exports(client, rd, kind: str, magic: bytes) -> None:
    r = _get(
        client, f"/atlas/export/demo/{kind}?cat=pharmacy&mode=walk&layers=streets,desert,sites"
    )
    assert r.status_code == 200
    assert r.data[:4] == magic
    ext = "png" if kind == "png" else "pdf"
    name = "map.png" if kind == "png" else "fact-sheet.pdf"
    assert f"filename=demo-pharmacy-walk-15min-{name}" in r.headers["Content-Disposition"]
    assert r.mimetype == ("image/png" if ext == "png" else "application/pdf")


def test_empty_selection_and_bad_requests_answer_with_a_reason(client) -> None:
    r = _get(client, "/atlas/export/demo/csv?cat=methadone&bbox=10,10,11,11")
    assert r.status_code == 422
    assert "nothing to export" in r.get_json()["error"]
    r = _get(client, "/atlas/export/demo/xlsx")
    assert r.status_code == 404 and "valid: shp, gpkg" in r.get_json()["error"]
    r = _get(client, "/atlas/export/demo/gpkg?data=nope")
    assert r.status_code == 422 and "unknown layer 'nope'" in r.get_json()["error"]


@pytest.mark.parametrize(
    "url",
    [
        "/atlas/export/..%2F..%2Ftmp/csv",
        "/atlas/export/../csv",
        "/atlas/export/demo/..%2F..%2F..%2Fcsv",
        "/atlas/export/demo/csv?data=../../../../tmp/evil",
        "/atlas/export/demo/csv?cat=../../evil&mode=../../x",
        "/atlas/export/demo/shp?bbox=../../../evil",
        "/atlas/export/demo/png?layers=../../evil&unit=/etc/passwd",
        "/atlas/export/.cache/csv",
        "/atlas/export/saved/csv",
    ],
)
def test_export_parameters_never_write_outside_the_cache(client, geo: Path, url: str) -> None:
    before = _tree(geo.parent)
    r = _get(client, url)
    assert b"Traceback" not in r.data
    after = _tree(geo.parent)
    cache = "geodata/.cache/exports/demo"  # the export cache (and its parents, made once)
    created = {
        p
        for p in after - before
        if not (p == cache or p.startswith(cache + "/") or cache.startswith(p + "/"))
    }
    assert created == set(), created
    if r.mimetype == "text/html":  # the route did not match: Dash's page, no file
        assert "attachment" not in r.headers.get("Content-Disposition", "")
    elif r.status_code == 200:  # a nonsense map layer is ignored: a normal map
        assert r.data[:4] == b"\x89PNG"
    else:
        assert r.status_code in (404, 422)


# ---------------------------------------------------------------------------------------
# The map page's buttons
# ---------------------------------------------------------------------------------------


def test_export_button_gives_a_download_link_or_says_why_not(client, geo: Path, rd) -> None:
    status, link = export_outcome(
        geo,
        region="demo",
        kind="gpkg",
        share_href="/?cat=naltrexone&mode=drive",
        in_view=True,
        bounds=[[39.9, -40.1], [40.1, -39.9]],
    )
    assert link is not None
    assert link["name"] == "demo-naltrexone-drive-30min-geopackage.zip"
    assert link["href"].startswith("/atlas/export/demo/gpkg?cat=naltrexone&mode=drive&t=30&bbox=")
    r = _get(client, link["href"])
    assert r.status_code == 200 and r.mimetype == "application/zip"
    status, link = export_outcome(
        geo,
        region="demo",
        kind="csv",
        share_href="/?cat=methadone",
        in_view=True,
        bounds=[[10, 10], [11, 11]],
    )
    assert link is None
    assert "Nothing to download" in json.dumps(status[0].to_plotly_json())
    status, link = export_outcome(
        geo, region="atlantis", kind="csv", share_href="/", in_view=False, bounds=None
    )
    assert link is None and "no longer available" in str(status[0].children)


def test_export_callback_through_the_server(client) -> None:
    body = {
        "output": "..export-status.children...export-link.data..",
        "outputs": [
            {"id": "export-status", "property": "children"},
            {"id": "export-link", "property": "data"},
        ],
        "inputs": [
            {"id": f"export-{k}", "property": "n_clicks", "value": 1 if k == "csv" else 0}
            for k in ("shp", "gpkg", "geojson", "csv", "png", "pdf", "factsheet")
        ],
        "state": [
            {"id": "share-link", "property": "href", "value": "/?cat=pharmacy&mode=walk"},
            {"id": "export-in-view", "property": "value", "value": []},
            {"id": "map", "property": "bounds", "value": None},
            {"id": "atlas-region", "property": "data", "value": {"region": "demo"}},
        ],
        "changedPropIds": ["export-csv.n_clicks"],
    }
    r = client.post("/_dash-update-component", json=body)
    assert r.status_code == 200, r.data[:300]
    resp = r.get_json()["response"]
    assert resp["export-link"]["data"]["name"] == "demo-pharmacy-walk-15min-csv.zip"
    assert "Downloading" in json.dumps(resp["export-status"]["children"])
