"""Release day in a real browser: the facilities layer, the panel and a click on a facility.

The demo region is built with the CLI (its generator writes fictional prisons and jails) and
served with gunicorn on 127.0.0.1; headless Chromium opens the map. Screenshots go to
``artifacts/screenshots/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import browser, geodata, page, server  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
READY = "() => window.atlas && atlas.drawn.surface && atlas.drawn.sites && atlas.drawn.streets"
MARKERS = ".leaflet-marker-pane .atlas-facility"

__all__ = ["browser", "geodata", "page", "server"]


def _open(pg: Any, server: str, query: str = "") -> None:
    pg.goto(server + "/" + query)
    pg.wait_for_function(READY, timeout=20_000)
    pg.wait_for_function(
        f"() => document.querySelectorAll('{MARKERS}').length > 0", timeout=10_000
    )


def test_release_day_panel_and_facility_click(page: Any, server: str) -> None:
    _open(page, server)
    section = page.locator("#release-day")
    assert section.is_visible()
    lead = page.inner_text("#release-lead")
    assert "3 prisons, jails or detention centres" in lead
    assert "1 releases people into a desert" in lead
    # The prison out by Stone Church is listed first, flagged as a desert.
    first = page.locator(".atlas-release-summary").first
    assert "Stone Church Correctional Institution" in first.inner_text()
    assert "desert" in first.inner_text()
    # Three facility markers on the map, one ringed as a desert; the legend says what they are.
    assert page.locator(MARKERS).count() == 3
    assert page.locator(MARKERS + ".atlas-facility--desert").count() == 1
    assert "prison, jail or detention centre" in page.inner_text(".atlas-legend")

    # A click on the jail's marker shows its release day: the nearest care of each kind,
    # with address and travel time by car and on foot.
    page.locator(MARKERS + ":not(.atlas-facility--desert)").first.click()
    page.wait_for_function(
        "() => document.querySelector('#release-selected h3') !== null", timeout=10_000
    )
    card = page.inner_text("#release-selected")
    assert any(n in card for n in ("Millbrook County Jail", "Millbrook Youth Detention Center"))
    for kind in ("Methadone", "Buprenorphine", "Naltrexone", "Naloxone"):
        assert kind in card
    assert "min by car" in card and "min on foot" in card
    assert "→" in card  # a site's name and address follow each time
    page.locator("#release-day").scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "20-release-day.png"))

    # Opening the desert facility's card in the list shows why it is a desert.
    first.click()
    text = page.locator(".atlas-release").first.inner_text()
    assert "Releases land in a desert" in text and "threshold" in text
    assert not page.errors
    assert not page.outside


def test_facilities_layer_switch(page: Any, server: str) -> None:
    _open(page, server)
    page.get_by_label("Prisons and jails (release day)", exact=True).uncheck()
    page.wait_for_function(
        f"() => document.querySelectorAll('{MARKERS}').length === 0", timeout=5000
    )
    page.get_by_label("Prisons and jails (release day)", exact=True).check()
    page.wait_for_function(
        f"() => document.querySelectorAll('{MARKERS}').length === 3", timeout=5000
    )
    assert not page.errors
