"""The map in a real browser: headless Chromium (Debian's) driven by Playwright.

A session fixture builds the fictional demo region with the CLI into a temporary folder and
serves it with gunicorn on a free 127.0.0.1 port. The tests load the page, switch layers,
move the threshold and watch the desert change, click a care site, look up an address,
restore a shared URL, check keyboard access and labels, and run with every request outside
127.0.0.1 blocked. Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import browser, geodata, page, server  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
DESERT_RGB = (0xB3, 0x58, 0x06)  # layouts.theme.DESERT_COLOUR
READY = "() => window.atlas && atlas.drawn.surface && atlas.drawn.sites && atlas.drawn.streets"


def _open(pg: Any, server: str, query: str = "", path: str = "/") -> None:
    pg.goto(server + path + query)
    try:
        pg.wait_for_function(READY, timeout=20_000)
    except Exception:
        drawn = pg.evaluate("JSON.stringify(window.atlas && Object.keys(atlas.drawn))")
        pytest.fail(f"map not drawn: {drawn}; errors {pg.errors}; blocked {pg.outside}")
    pg.wait_for_timeout(300)


def _shot(pg: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / name))


def _desert_pixels(pg: Any) -> int:
    """Pixels of the desert colour on the surface canvas."""
    return pg.evaluate(
        """([r, g, b]) => {
            const c = document.querySelector('.leaflet-atlas-surface-pane canvas');
            if (!c) { return 0; }
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) {
                if (d[i + 3] > 40 && Math.abs(d[i] - r) < 12 && Math.abs(d[i + 1] - g) < 12
                    && Math.abs(d[i + 2] - b) < 12) { n++; }
            }
            return n;
        }""",
        list(DESERT_RGB),
    )


def test_page_loads_with_map_legend_summary_and_fictional_notice(page: Any, server: str) -> None:
    _open(page, server)
    assert page.is_visible("#fictional-banner")
    assert "Fictional data" in page.inner_text("#fictional-banner")
    assert "within 30 minutes by car" in page.inner_text("#summary-lead")
    legend = page.inner_text(".atlas-legend")
    assert "Opioid treatment program" in legend and "desert" in legend
    assert page.locator(".atlas-site, .atlas-cluster:not(.atlas-cluster--legend)").count() > 0
    assert page.locator(".atlas-maplabel").count() > 0  # street names, offline
    assert not page.errors
    assert not page.outside  # nothing left 127.0.0.1
    _shot(page, "01-map-default.png")


def test_switch_layers(page: Any, server: str) -> None:
    _open(page, server)
    markers = ".leaflet-marker-pane .atlas-site, .leaflet-marker-pane .atlas-cluster"
    assert page.locator(markers).count() > 0
    page.get_by_label("Care sites", exact=True).uncheck()
    page.wait_for_function(
        f"() => document.querySelectorAll('{markers}').length === 0", timeout=5000
    )
    with page.expect_response(lambda r: "/barriers.geojson" in r.url) as resp:
        page.get_by_label("Zoning barriers").check()
    assert resp.value.status == 200
    page.wait_for_function(
        "() => document.querySelector('.atlas-legend').innerText.includes('zoning barrier')"
    )
    page.get_by_label("Travel time by area").check()
    page.wait_for_function("() => atlas.drawn.choropleth !== undefined", timeout=5000)
    page.wait_for_timeout(300)
    _shot(page, "02-layers-barriers-areas.png")
    assert "?" in page.evaluate("location.search")
    assert "barriers" in page.evaluate("location.search")
    assert not page.errors


def test_threshold_moves_the_desert_live(page: Any, server: str) -> None:
    _open(page, server, "?cat=pharmacy&mode=walk&layers=streets,desert,sites")
    assert page.evaluate("atlas.drawn.surface.threshold") == 15
    before = _desert_pixels(page)
    desert_before = page.evaluate("atlas.drawn.surface.desert")
    _shot(page, "03-threshold-15.png")
    thumb = page.locator("#threshold-slider [role=slider]")
    thumb.focus()
    for _ in range(10):
        thumb.press("ArrowLeft")
    page.wait_for_function("() => atlas.drawn.surface.threshold === 5", timeout=5000)
    page.wait_for_function(
        "() => document.querySelector('#summary-lead').innerText.includes('within 5 minutes')",
        timeout=5000,
    )
    page.wait_for_timeout(200)
    after = _desert_pixels(page)
    assert page.evaluate("atlas.drawn.surface.desert") > desert_before
    assert after > before * 1.1, (before, after)
    assert page.inner_text("#threshold-text") == "5 min"
    assert "t=5" in page.evaluate("location.search")
    _shot(page, "04-threshold-5.png")
    assert not page.errors


def test_click_a_care_site(page: Any, server: str, geodata: Path) -> None:
    import geopandas as gpd

    providers = gpd.read_parquet(geodata / "demo" / "layers" / "providers.parquet")
    site = providers[providers["category"] == "methadone"].iloc[0]
    x, y = site.geometry.x, site.geometry.y
    _open(page, server, f"?sites=methadone&layers=streets,sites&lat={y:.5f}&lon={x:.5f}&z=16")
    marker = page.locator(".atlas-site--methadone").first
    marker.click()
    page.wait_for_selector("#details-title", timeout=5000)
    details = page.inner_text("#details")
    assert site["name"] in details
    assert "Source" in details and "Location quality" in details
    _shot(page, "05-site-details.png")
    assert not page.errors


def test_address_look_up(page: Any, server: str, geodata: Path) -> None:
    import geopandas as gpd

    providers = gpd.read_parquet(geodata / "demo" / "layers" / "providers.parquet")
    site = providers[
        (providers["category"] == "buprenorphine") & providers["address"].notna()
    ].iloc[1]
    _open(page, server)
    page.fill("#address-input", "1 Nowhere Boulevard, Atlantis 00000")
    page.press("#address-input", "Enter")
    page.wait_for_selector("text=No address matching", timeout=10_000)
    page.fill("#address-input", f"{site['address']}, {site['city']} {site['zip']}")
    page.click("#address-button")
    page.wait_for_selector("#lookup-table", timeout=10_000)
    table = page.inner_text("#lookup-table")
    assert "Buprenorphine prescriber" in table and "min" in table
    page.wait_for_function("() => location.search.includes('q=')", timeout=5000)
    page.wait_for_timeout(1200)  # the map flies to the address
    _shot(page, "06-address-look-up.png")
    assert not page.errors


def test_shared_url_restores_the_view(page: Any, server: str, browser: Any) -> None:
    _open(page, server)
    page.get_by_label("Walking").check()
    page.get_by_label("Travel-time bands").uncheck()
    thumb = page.locator("#threshold-slider [role=slider]")
    thumb.focus()
    for _ in range(3):
        thumb.press("ArrowRight")
    page.wait_for_function("() => location.search.includes('t=')", timeout=5000)
    page.wait_for_timeout(300)
    shared = page.evaluate("location.href")
    threshold = page.evaluate("atlas.drawn.surface.threshold")
    assert "mode=walk" in shared and "layers=" in shared

    other = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    other.goto(shared)
    other.wait_for_function(READY, timeout=20_000)
    assert other.evaluate("atlas.drawn.surface.threshold") == threshold
    assert other.get_by_label("Walking").is_checked()
    assert not other.get_by_label("Travel-time bands").is_checked()
    assert other.get_by_label("Desert (beyond the threshold)").is_checked()
    assert other.inner_text("#threshold-text") == f"{threshold} min"
    assert f"within {threshold} minutes on foot" in other.inner_text("#summary-lead")
    _shot(other, "07-shared-url.png")
    other.context.close()


def test_nonsense_url_gives_the_default_view(page: Any, server: str) -> None:
    _open(
        page, server, "?cat=%3Cscript%3Ealert(1)%3C/script%3E&t=9999&mode=rocket&z=banana&layers=x"
    )
    assert page.evaluate("atlas.drawn.surface.threshold") == 30
    assert "within 30 minutes by car" in page.inner_text("#summary-lead")
    assert not page.errors


def test_methods_page(page: Any, server: str) -> None:
    page.goto(server + "/methods")
    page.wait_for_selector("#methods-thresholds", timeout=10_000)
    text = page.inner_text("body")
    assert "Fictional data" in text
    assert "Sources" in text and "CC0 (fictional data)" in text
    assert "1 to 9" in text and "congestion factor" in text
    _shot(page, "08-methods.png")


# Controls without an accessible name (aria-label, aria-labelledby, a <label> or its text).
UNNAMED_JS = """() => {
    const out = [];
    const els = document.querySelectorAll(
        '#controls input, #controls [role=slider], #controls [role=combobox], #controls button');
    for (const el of els) {
        if (el.getAttribute('aria-hidden') === 'true') continue;
        const toggle = el.type === 'radio' || el.type === 'checkbox';
        if (el.offsetParent === null && !toggle) continue;
        const named = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
            || (el.id && document.querySelector(`label[for="${el.id}"]`))
            || el.closest('label') || (el.tagName === 'BUTTON' && el.innerText.trim());
        if (!named) out.push(el.outerHTML.slice(0, 120));
    }
    return out;
}"""


def test_controls_are_labelled_and_keyboard_reachable(page: Any, server: str) -> None:
    _open(page, server)
    page.wait_for_timeout(300)
    unnamed = page.evaluate(UNNAMED_JS)
    assert unnamed == []
    reached = set()
    page.focus("#address-input")
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.add(
            page.evaluate(
                "(() => { const a = document.activeElement;"
                " return a.getAttribute('role') === 'slider'"
                " ? 'slider' : (a.type || a.className || a.tagName); })()"
            )
        )
    assert {"slider", "checkbox", "radio"} <= reached
    # care sites are focusable markers that open their details with Enter
    marker = page.locator(".leaflet-marker-pane .atlas-site").first
    if marker.count():
        marker.focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("#details-title", timeout=5000)


def test_offline_with_online_tiles_switched_on(page: Any, server: str) -> None:
    _open(page, server)
    page.get_by_label("Online map tiles (needs internet)").check()
    page.wait_for_timeout(1500)
    assert any("tile.openstreetmap.org" in u for u in page.outside)  # tried, blocked
    assert page.locator(".leaflet-tile-pane img").count() > 0
    assert page.evaluate("atlas.drawn.streets.n") > 0  # the offline basemap is still drawn
    assert not page.errors
    _shot(page, "09-offline-tiles-blocked.png")


STOP_JS = """(id) => {
    let found = null;
    atlas.map.eachLayer((l) => {
        if (l.feature && l.feature.properties && l.feature.properties.stop_id === id) found = l;
    });
    if (!found) return null;
    const p = atlas.map.latLngToContainerPoint(found.getLatLng());
    const box = atlas.map.getContainer().getBoundingClientRect();
    return [box.left + p.x, box.top + p.y];
}"""


def test_transit_stop_tells_routes_and_the_walk_to_care(
    page: Any, server: str, geodata: Path
) -> None:
    import geopandas as gpd

    stops = gpd.read_parquet(geodata / "demo" / "layers" / "transit_stops.parquet")
    hub = stops.set_index("stop_id").loc["MTC"]
    _open(page, server, f"?cat=buprenorphine&mode=walk&layers=streets,sites,transit"
                        f"&lat={hub.geometry.y:.5f}&lon={hub.geometry.x:.5f}&z=16")  # fmt: skip
    assert "transit stop" in page.inner_text("#legend")
    page.wait_for_function(
        "() => { let n = 0; atlas.map.eachLayer((l) => {"
        " if (l.feature && l.feature.properties.stop_id) n++; }); return n > 0; }",
        timeout=10_000,
    )
    xy = page.evaluate(STOP_JS, "MTC")
    assert xy is not None
    page.mouse.move(*xy)
    tip = page.wait_for_selector(".leaflet-tooltip", timeout=5000)
    text = tip.inner_text()
    minutes = max(1, round(hub["walk_min_buprenorphine"]))
    assert "Millbrook Transit Center" in text and "Routes 1, 2" in text
    assert f"{minutes} min walk to the nearest buprenorphine prescriber" in text
    _shot(page, "10-transit-stop.png")
    assert not page.errors and not page.outside
