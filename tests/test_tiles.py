"""Offline basemap tiles: XYZ layout, tile maths, what is drawn, skipped and capped."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from etl.bundle.store import Bundle
from etl.cli_export import run
from etl.outputs.export import ExportError
from etl.outputs.tiles import LAND, OUTSIDE, TILE_SIZE, build_tiles, tile_bounds, tile_range
from tests.test_export import parse_cli, shared_gridton


def osm_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The slippy-map formula from the OpenStreetMap wiki, as an independent reference."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def hexrgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


@pytest.fixture(scope="module")
def gridton(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return shared_gridton(tmp_path_factory)


@pytest.fixture(scope="module")
def tiles(gridton: Bundle, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("tiles") / "gridton"
    return out, build_tiles(gridton, out, zooms=range(12, 17))


def test_tiles_are_written_in_xyz_layout(tiles):
    out, count = tiles
    files = sorted(out.glob("*/*/*.png"))
    assert count == len(files) > 0
    zooms = sorted({int(p.parts[-3]) for p in files})
    assert zooms == [12, 13, 14, 15, 16]
    for path in files:
        with Image.open(path) as img:
            assert img.size == (TILE_SIZE, TILE_SIZE)
            assert img.format == "PNG"


def test_metadata_describes_the_tile_set(tiles, gridton):
    out, count = tiles
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["tiles"] == count
    assert (meta["minzoom"], meta["maxzoom"]) == (12, 16)
    assert meta["url"] == "{z}/{x}/{y}.png" and meta["tile_size"] == 256
    assert meta["background"] == OUTSIDE
    assert meta["fictional"] is True and meta["attribution"].startswith("FICTIONAL DATA")
    west, south, east, north = meta["bounds"]
    region = gridton.read_layer("region").total_bounds
    assert west <= region[0] and south <= region[1] and east >= region[2] and north >= region[3]
    assert meta["bytes"] > 0


def test_tiles_cover_exactly_the_region_tiles(tiles, gridton):
    out, _ = tiles
    net = gridton.network("drive")
    for z in (14, 16):
        x, y = osm_tile(float(net.lon[0]), float(net.lat[0]), z)
        assert (out / str(z) / str(x) / f"{y}.png").exists()
        # a tile well away from the region is neither rendered nor listed
        assert not (out / str(z) / str(x + 50)).exists()


def test_streets_are_drawn_where_the_network_is(tiles, gridton):
    out, _ = tiles
    net = gridton.network("drive")
    z = 16
    # the middle of the first edge, in the tile's pixels
    lon = (net.lon[net.tail[0]] + net.lon[net.head[0]]) / 2
    lat = (net.lat[net.tail[0]] + net.lat[net.head[0]]) / 2
    x, y = osm_tile(lon, lat, z)
    n = 2**z * TILE_SIZE
    px = (lon + 180) / 360 * n - x * TILE_SIZE
    py = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n - y * TILE_SIZE
    with Image.open(out / str(z) / str(x) / f"{y}.png") as img:
        rgb = np.asarray(img.convert("RGB")).astype(int)
    window = rgb[max(0, int(py) - 3) : int(py) + 4, max(0, int(px) - 3) : int(px) + 4]
    # a street pixel is near white or a casing grey, never the plain land colour everywhere
    assert (np.abs(window - hexrgb(LAND)).sum(axis=-1) > 12).any()
    assert (window.min(axis=-1) > 235).any()  # the white street fill


def test_plain_and_empty_tiles(gridton, tmp_path):
    count = build_tiles(gridton, tmp_path / "t", zooms=[17])
    meta = json.loads((tmp_path / "t" / "metadata.json").read_text())
    assert meta["tiles"] == count
    # plain land tiles are one shared file, hard-linked
    land = tmp_path / "t" / "land.png"
    assert land.exists()
    inode = land.stat().st_ino
    linked = [p for p in (tmp_path / "t").glob("*/*/*.png") if p.stat().st_ino == inode]
    assert len(linked) == meta["plain_tiles"]
    x0, y0, x1, y1 = tile_range(tuple(meta["bounds"]), 17)
    assert count <= (x1 - x0 + 1) * (y1 - y0 + 1)


def test_highest_zooms_are_dropped_to_stay_under_the_cap(gridton, tmp_path):
    count = build_tiles(gridton, tmp_path / "t", zooms=range(12, 19), max_tiles=40)
    meta = json.loads((tmp_path / "t" / "metadata.json").read_text())
    assert count <= 40
    assert meta["maxzoom"] < 18
    drawn = {int(p.parts[-3]) for p in (tmp_path / "t").glob("*/*/*.png")}
    assert drawn <= set(range(12, meta["maxzoom"] + 1))


def test_rebuild_replaces_the_folder_atomically(gridton, tmp_path):
    out = tmp_path / "tiles" / "gridton"
    build_tiles(gridton, out, zooms=[14, 15])
    (out / "stale.txt").write_text("old")
    build_tiles(gridton, out, zooms=[13])
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["13"]
    assert [p.name for p in out.parent.iterdir()] == ["gridton"]  # no staging left behind


@pytest.mark.parametrize("zooms", [[], [-1], [25]])
def test_bad_zooms_are_refused(gridton, tmp_path, zooms):
    with pytest.raises(ExportError, match="zoom levels must be between 0 and 19"):
        build_tiles(gridton, tmp_path / "t", zooms=zooms)
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    ("lon", "lat", "z"),
    [(-83.0, 40.0, 12), (-0.1, 51.5, 15), (151.2, -33.9, 9), (0.0, 0.0, 0), (-179.9, 85.0, 3)],
)
def test_tile_maths_matches_the_slippy_map_formula(lon, lat, z):
    x, y = osm_tile(lon, lat, z)
    assert tile_range((lon, lat, lon, lat), z) == (x, y, x, y)
    west, south, east, north = tile_bounds(z, x, y)
    assert west <= lon <= east and south <= lat <= north
    assert tile_bounds(0, 0, 0) == pytest.approx((-180, -85.0511287798, 180, 85.0511287798))


def test_cli_build_tiles(gridton, tmp_path, capsys):
    args = parse_cli(["build-tiles", str(gridton.path), "--out", str(tmp_path / "t"),
                      "--min-zoom", "13", "--max-zoom", "14"])  # fmt: skip
    assert run(args, tmp_path) == 0
    printed = capsys.readouterr().out.strip()
    count = json.loads((tmp_path / "t" / "metadata.json").read_text())["tiles"]
    assert printed == f"{tmp_path / 't'} ({count:,} tiles)"
    assert sorted(p.name for p in (tmp_path / "t").iterdir() if p.is_dir()) == ["13", "14"]
