"""Town-hall mode and exports in a real browser, with every request outside 127.0.0.1 blocked.

The demo region is built with the CLI into a temporary folder and served by gunicorn on a free
127.0.0.1 port. The tests step through the slides with the keyboard and check the map, the
offline basemap tiles and the legend, download every export from the map page and open the
files again, and save a view that town-hall mode then presents by link. Screenshots go to
``artifacts/screenshots/townhall-*.png``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import EDITOR_TOKEN, browser, geodata, page, server  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
MAP_READY = "() => window.atlas && atlas.drawn.surface && atlas.drawn.sites && atlas.drawn.streets"
PRESENT_READY = (
    "() => window.atlas && atlas.present && atlas.present.framed > 0 && atlas.drawn.surface"
    " && atlas.drawn.sites && atlas.drawn.streets"
)
# Offline tiles shown: images of the tile layer loaded from /atlas/tiles/ (not the error tile).
TILES_SHOWN = """() => [...document.querySelectorAll('.atlas-offline-tiles img')]
    .filter(i => i.src.includes('/atlas/tiles/') && i.complete && i.naturalWidth === 256).length"""
DESERT_PIXELS = """([r, g, b]) => {
    const c = document.querySelector('.leaflet-atlas-surface-pane canvas');
    if (!c) { return 0; }
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] > 40 && Math.abs(d[i] - r) < 14 && Math.abs(d[i + 1] - g) < 14
            && Math.abs(d[i + 2] - b) < 14) { n++; }
    }
    return n;
}"""
DESERT_RGB = [0xB3, 0x58, 0x06]  # layouts.theme.DESERT_COLOUR


def _shot(pg: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / name))


def _slide(pg: Any, index: int) -> str:
    pg.wait_for_function(f"() => atlas.present.index === {index}", timeout=5000)
    pg.wait_for_selector(f"#present-slide-{index}:not([hidden])", timeout=5000)
    pg.wait_for_selector(f"#present-legend-{index}:not([hidden])", timeout=5000)
    assert pg.locator(".atlas-present-slide:not([hidden])").count() == 1
    return pg.inner_text(f"#present-slide-{index}")


def _settle(pg: Any) -> None:
    """Wait for the flight to the view to end and the layers to draw."""
    pg.wait_for_timeout(100)
    pg.wait_for_function("() => !atlas.present.flying", timeout=5000)
    pg.wait_for_timeout(200)


def test_town_hall_offline_steps_through_the_views_with_the_keyboard(
    page: Any, server: str
) -> None:
    page.goto(server + "/present?region=demo")
    page.wait_for_function(PRESENT_READY, timeout=20_000)
    page.wait_for_function(f"{TILES_SHOWN} > 4", timeout=10_000)
    _settle(page)
    assert "where care is" in _slide(page, 0)
    legend = page.inner_text(".atlas-present-legend")
    assert "Care sites" in legend and "Pharmacy" in legend
    assert page.is_visible(".atlas-present-stamp")  # fictional data, said on screen
    assert page.locator(
        ".leaflet-marker-pane .atlas-site, .leaflet-marker-pane .atlas-cluster"
    ).count()
    _shot(page, "townhall-1-overview.png")

    page.keyboard.press("ArrowRight")
    text = _slide(page, 1)
    assert "the desert by car" in text and "30 minutes' drive" in text
    page.wait_for_function(
        "() => atlas.drawn.surface.url.includes('methadone/drive')"
        " && atlas.drawn.surface.desert > 0",
        timeout=5000,
    )
    _settle(page)
    assert "desert: beyond 30 min" in page.inner_text("#present-legend-1")
    assert page.evaluate(DESERT_PIXELS, DESERT_RGB) > 0
    assert "view=2" in page.evaluate("() => location.search")
    _shot(page, "townhall-2-methadone-by-car.png")

    page.keyboard.press("PageDown")
    text = _slide(page, 2)
    assert "a 20-minute walk" in text
    page.wait_for_function(
        "() => atlas.drawn.surface.url.includes('buprenorphine/walk')"
        " && atlas.drawn.surface.threshold === 20",
        timeout=5000,
    )
    _settle(page)
    walk_desert = page.evaluate(DESERT_PIXELS, DESERT_RGB)
    assert walk_desert > 1000
    assert "Buprenorphine prescriber, walking" in page.inner_text("#present-legend-2")
    _shot(page, "townhall-3-buprenorphine-on-foot.png")

    page.keyboard.press(" ")
    text = _slide(page, 3)
    assert "in this desert live where a zoning rule blocks" in text
    page.wait_for_function(
        "() => atlas.drawn.surface.url.includes('methadone/drive')", timeout=5000
    )
    _settle(page)
    assert "zoning barrier" in page.inner_text("#present-legend-3")
    _shot(page, "townhall-4-desert-and-barriers.png")

    page.keyboard.press(" ")  # the last slide stays
    page.wait_for_timeout(200)
    assert page.evaluate("() => atlas.present.index") == 3
    page.keyboard.press("ArrowLeft")
    _slide(page, 2)
    page.keyboard.press("PageUp")
    _slide(page, 1)
    page.keyboard.press("Home")
    _slide(page, 0)
    page.keyboard.press("End")
    _slide(page, 3)
    page.click("#present-prev")
    _slide(page, 2)

    ok = [t for t in page.tiles if t[0] == 200]
    assert len(ok) >= 8 and all(ctype == "image/png" for _, ctype in ok)
    assert all(status in (200, 304, 404) for status, _ in page.tiles)
    assert page.evaluate(f"{TILES_SHOWN}") > 4
    assert not page.outside, page.outside  # nothing tried to leave 127.0.0.1
    assert not page.errors, page.errors

    page.keyboard.press("Escape")  # leaves to the map page, on the view shown
    page.wait_for_url("**/?region=demo&cat=buprenorphine&mode=walk*", timeout=10_000)
    page.wait_for_function(MAP_READY, timeout=20_000)
    assert page.get_by_label("Walking").is_checked()
    assert not page.outside


def _bundle_counts(geodata: Path, category: str) -> dict[str, int]:
    import pandas as pd

    layers = geodata / "demo" / "layers"
    providers = pd.read_parquet(layers / "providers.parquet", columns=["category"])
    return {
        "providers": int((providers["category"] == category).sum()),
        "areas": len(pd.read_parquet(layers / "areas.parquet", columns=["area_id"])),
    }


def test_exports_from_the_page_open_in_gis(
    page: Any, server: str, geodata: Path, tmp_path: Path
) -> None:
    import geopandas as gpd
    import pandas as pd

    page.goto(server + "/?region=demo&cat=buprenorphine&mode=walk")
    page.wait_for_function(MAP_READY, timeout=20_000)
    files = {}
    for kind in ("shp", "gpkg", "geojson", "csv", "png", "pdf", "factsheet"):
        with page.expect_download(timeout=30_000) as info:
            page.click(f"#export-{kind}")
        download = info.value
        files[kind] = tmp_path / download.suggested_filename
        download.save_as(files[kind])
        assert "Downloading" in page.inner_text("#export-status")
    assert files["shp"].name == "demo-buprenorphine-walk-20min-shapefile.zip"
    expected = _bundle_counts(geodata, "buprenorphine")
    readers = {
        "shp": lambda d, layer: gpd.read_file(d / f"{layer}.shp"),
        "gpkg": lambda d, layer: gpd.read_file(d / "demo.gpkg", layer=layer),
        "geojson": lambda d, layer: gpd.read_file(d / f"{layer}.geojson"),
        "csv": lambda d, layer: pd.read_csv(d / f"{layer}.csv"),
    }
    for kind, read in readers.items():
        folder = tmp_path / kind
        with zipfile.ZipFile(files[kind]) as zf:
            zf.extractall(folder)
        for layer, n in expected.items():
            frame = read(folder, layer)
            assert len(frame) == n, (kind, layer, len(frame), n)
            if kind != "csv":
                assert frame.crs.to_epsg() == 4326
        assert set(read(folder, "providers")["category"]) == {"buprenorphine"}
        assert (folder / "metadata.json").is_file() and (folder / "data_dictionary.csv").is_file()
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert files["pdf"].read_bytes()[:5] == b"%PDF-"
    assert files["factsheet"].read_bytes()[:5] == b"%PDF-"

    # An empty selection says so in the page and downloads nothing.
    downloads: list[Any] = []
    page.on("download", lambda d: downloads.append(d))
    page.get_by_label("Only what is in the map view").check()
    page.evaluate("() => atlas.map.setView([10, 10], 12, {animate: false})")
    page.wait_for_timeout(300)
    page.click("#export-csv")
    page.wait_for_selector("#export-status .atlas-warning", timeout=10_000)
    assert "Nothing to download" in page.inner_text("#export-status")
    page.wait_for_timeout(300)
    assert downloads == []
    page.locator("#export-section").scroll_into_view_if_needed()
    _shot(page, "townhall-6-export-empty-selection.png")
    assert not page.outside
    assert not page.errors, page.errors


def test_a_saved_view_is_presented_by_link(page: Any, server: str, geodata: Path) -> None:
    page.goto(server + "/?region=demo&cat=pharmacy&mode=walk&layers=streets,desert,sites")
    page.wait_for_function(MAP_READY, timeout=20_000)
    page.wait_for_timeout(400)
    page.fill("#view-title", "Pharmacies on foot")
    page.fill("#view-text", "Where a pharmacy is more than 15 minutes' walk away.")
    page.fill("#editor-token", EDITOR_TOKEN)
    page.click("#view-save")
    page.wait_for_selector("#view-status >> text=Saved as view 1", timeout=10_000)
    assert "Pharmacies on foot" in page.inner_text("#views-list")
    page.locator("#views-section").scroll_into_view_if_needed()
    _shot(page, "townhall-7-save-a-view.png")
    saved = geodata / "saved" / "demo" / "views.json"
    try:
        assert "cat=pharmacy&mode=walk" in saved.read_text(encoding="utf-8")
        page.goto(server + "/present?region=demo&view=1")
        page.wait_for_function(PRESENT_READY, timeout=20_000)
        text = _slide(page, 0)
        assert "Pharmacies on foot" in text and "1 / 1" in text
        assert "desert beyond 15 min" in text
        page.wait_for_function(
            "() => atlas.drawn.surface.url.includes('pharmacy/walk')", timeout=5000
        )
        _settle(page)
        _shot(page, "townhall-5-saved-view.png")
        assert not page.outside
        assert not page.errors, page.errors
    finally:
        saved.unlink(missing_ok=True)
