"""Practitioners per 10,000 people in a real browser: the layer, its legend and its property.

Gridton with a prescriber count (tests/test_capacity.py) is built and served with gunicorn on
127.0.0.1; headless Chromium opens the capacity layer. The screenshot goes to
``artifacts/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl.config import load_config
from etl.pipeline import run_build
from tests.browser_support import browser, page, serve  # fixtures
from tests.test_capacity import gridton_with_capacity

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
DRAWN = "() => window.atlas && atlas.drawn.capacity && atlas.drawn.sites"

__all__ = ["browser", "page", "server"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("atlas-browser-capacity")
    run_build(load_config(gridton_with_capacity(root)), root / "geo", progress=False)
    with serve(root / "geo", ready_path="/healthz") as url:
        yield url


def test_capacity_layer_legend_and_switching_pairs(page: Any, server: str) -> None:
    page.goto(server + "/?region=gridton&cat=buprenorphine&mode=walk&layers=capacity,sites")
    page.wait_for_function(DRAWN, timeout=20_000)
    drawn = page.evaluate("() => atlas.drawn.capacity.prop")
    assert drawn == "cap_buprenorphine_walk"
    legend = page.inner_text(".atlas-legend")
    assert "per 10,000 people" in legend and "within 8 min" in legend
    assert "0 (none within 8 min)" in legend
    # The areas are filled: some path on the map has a PuBu fill from the legend's classes.
    fills = page.evaluate(
        "() => Array.from(document.querySelectorAll('.leaflet-overlay-pane path, "
        ".leaflet-pane path')).map(p => (p.getAttribute('fill') || '').toUpperCase())"
    )
    from layouts.theme import CAPACITY_COLOURS

    assert set(fills) & set(CAPACITY_COLOURS) or page.evaluate(
        "() => !!document.querySelector('canvas')"
    )  # preferCanvas: the fills are drawn on a canvas
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "30-capacity.png"))
    # Another category and mode: the same layer reads the pair's column.
    page.get_by_label("Driving", exact=True).check()
    page.locator("#category-select label", has_text="Opioid treatment program").click()
    page.wait_for_function(
        "() => atlas.drawn.capacity && atlas.drawn.capacity.prop === 'cap_methadone_drive'",
        timeout=10_000,
    )
    page.wait_for_function(
        "() => document.querySelector('.atlas-legend').innerText.includes('within 2 min')",
        timeout=10_000,
    )
    assert not page.errors
    assert not page.outside
