"""The What-if panel in a real browser: headless Chromium (Debian's) driven by Playwright.

A session fixture builds the fictional demo region with the CLI into a temporary folder and
serves it with gunicorn (two workers, so consecutive changes may reach different processes:
the scenario lives in the page). The tests add a site by clicking the map and read the people
it brings within reach, undo it, add one from the keyboard, close a site from its details,
ask for suggestions, accept them, save, load and download. With a site added, the map shows
the scenario: its minute bands replace the baseline's (read pixel by pixel from the bands'
canvas), the areas take the colours of their new travel times, the legend names the
scenario; undo brings the baseline back. Every request outside 127.0.0.1 is blocked.
Screenshots go to ``artifacts/screenshots/scenario-*.png``.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import EDITOR_TOKEN, browser, geodata, guarded_page, page, server

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
READY = "() => window.atlas && atlas.drawn.surface && atlas.drawn.sites && atlas.drawn.streets"


@pytest.fixture(scope="module")
def base(geodata: Path) -> Any:
    """The engine's baseline of the same bundle, to check the numbers the page shows."""
    from etl.bundle.store import Bundle
    from etl.engine.scenario import BaselineAccess

    return BaselineAccess.from_bundle(Bundle.open(geodata / "demo"), "drive")


def _open(pg: Any, server: str, query: str = "") -> None:
    pg.goto(server + "/" + query)
    pg.wait_for_function(READY, timeout=20_000)
    pg.click("#scenario-section > summary")
    pg.wait_for_selector("#scenario-add-toggle", state="visible")


def _shot(pg: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.evaluate("document.getElementById('scenario-section').scrollIntoView()")
    pg.screenshot(path=str(SHOTS / name))


def _point(pg: Any, lat: float, lon: float) -> tuple[float, float]:
    """Page pixel of a map coordinate."""
    x, y = pg.evaluate(
        """([lat, lon]) => {
            const p = atlas.map.latLngToContainerPoint([lat, lon]);
            const r = document.getElementById('map').getBoundingClientRect();
            return [p.x + r.left, p.y + r.top];
        }""",
        [lat, lon],
    )
    return x, y


def _lead_has(pg: Any, text: str) -> None:
    pg.wait_for_function(
        "(t) => (document.querySelector('#scenario-lead') || {}).innerText?.includes(t)",
        arg=text,
        timeout=10_000,
    )


CHANGE_CELLS = """(kind) => {
    let n = 0;
    atlas.map.eachLayer((l) => {
        const p = l.feature && l.options.pane === 'atlas-scenario' ? l.feature.properties : {};
        if (p.kind === kind) { n++; }
    });
    return n;
}"""


FIT_CHANGES = """() => {
    const b = L.latLngBounds([]);
    atlas.map.eachLayer((l) => {
        if (l.feature && l.options.pane === 'atlas-scenario') { b.extend(l.getBounds()); }
    });
    atlas.map.fitBounds(b.pad(0.15), {animate: false});
}"""


def _changes_drawn(pg: Any, kind: str, *, present: bool = True) -> None:
    """Wait until the map shows (or no longer shows) change cells of a kind (gain, loss)."""
    test = CHANGE_CELLS.replace("return n;", f"return n {'>' if present else '==='} 0;")
    pg.wait_for_function(test, arg=kind, timeout=5000)


def _gained(pg: Any) -> int:
    return int(pg.inner_text("#scenario-gained").replace(",", ""))


def test_add_by_clicking_the_map_undo_and_add_from_the_keyboard(
    page: Any, server: str, base: Any
) -> None:
    from etl.engine.scenario import Scenario, evaluate
    from etl.engine.suggest import suggest_sites

    spot = suggest_sites(base, category="methadone", threshold_min=30, k=1)[0]
    _open(page, server)
    toggle = page.locator("#scenario-add-toggle")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert page.evaluate("document.body.classList.contains('atlas-adding')")
    page.mouse.click(*_point(page, spot.lat, spot.lon))
    page.wait_for_selector("#scenario-gained", timeout=10_000)
    # the number shown is the engine's for the point clicked
    message = page.inner_text("#scenario-message")
    lat, lon = map(float, re.search(r"at (-?\d+\.\d+), (-?\d+\.\d+)", message).groups())
    expected = evaluate(
        base, Scenario().add_site("methadone", lon, lat), category="methadone", threshold_min=30
    )
    assert _gained(page) == round(expected.people_gained) > 500
    assert "nobody loses it" in page.inner_text("#scenario-lead")
    assert "Baseline" in page.inner_text("#scenario-compare")
    _changes_drawn(page, "gain")
    assert page.locator(".atlas-scn-pin--added").count() == 1
    # a map click in add mode does not open the place's details
    assert "Select a care site" in page.inner_text("#details")
    page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-pressed") == "false"
    page.mouse.move(5, 5)
    _shot(page, "scenario-01-site-added.png")

    page.click("#scenario-undo")
    _lead_has(page, "No changes yet")
    _changes_drawn(page, "gain", present=False)
    assert page.locator(".atlas-scn-pin--added").count() == 0
    assert page.is_disabled("#scenario-undo")

    # keyboard only: focus the button and press Enter (adds at the map's centre)
    page.focus("#scenario-add-centre")
    page.keyboard.press("Enter")
    page.wait_for_selector("#scenario-gained", timeout=10_000)
    assert "Added New site 1" in page.inner_text("#scenario-message")
    assert not page.errors and not page.outside


def test_close_a_site_from_its_details(page: Any, server: str, base: Any) -> None:
    from etl.engine.scenario import Scenario, evaluate

    rows = base.providers[base.offers("methadone")].set_index("id")
    lost = {
        pid: evaluate(
            base, Scenario().close_site(pid), category="methadone", threshold_min=30
        ).people_lost
        for pid in rows.index
    }
    # (a site drawn for a cluster whose other sites are filtered out opens no details: go
    # close enough for every site to stand alone)
    pid = max(lost, key=lost.get)
    site = rows.loc[pid]
    _open(page, server, f"?sites=methadone&lat={site['lat']:.5f}&lon={site['lon']:.5f}&z=15")
    page.locator(f'[data-site-id="{pid}"]').click()
    page.wait_for_selector(".atlas-scenario-close", timeout=5000)
    page.click(".atlas-scenario-close")
    page.wait_for_selector("#scenario-lost", timeout=10_000)
    assert int(page.inner_text("#scenario-lost").replace(",", "")) == round(lost[pid]) > 0
    assert f"Close {site['name']}" in page.inner_text("#scenario-changes")
    compare = page.inner_text("#scenario-compare")
    assert re.search(r"Sites of this care\s+3\s+2\s+−1", compare), compare
    _changes_drawn(page, "loss")
    # the closure's slower bands replace the baseline's (drawn clearing what lies beneath)
    page.wait_for_function(f"() => ({SCENARIO_BANDS})() > 0", timeout=5000)
    assert page.locator(".atlas-scn-pin--closed").count() == 1
    page.evaluate(FIT_CHANGES)
    page.mouse.move(5, 5)
    _shot(page, "scenario-02-site-closed.png")
    assert not page.errors and not page.outside


UNNAMED_JS = """() => {
    const out = [];
    const els = document.querySelectorAll(
        '#scenario-section input, #scenario-section button, #scenario-section [role=combobox]');
    for (const el of els) {
        if (el.getAttribute('aria-hidden') === 'true') continue;
        const named = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
            || (el.id && document.querySelector(`label[for="${el.id}"]`))
            || el.closest('label') || (el.tagName === 'BUTTON' && el.innerText.trim());
        if (!named) out.push(el.outerHTML.slice(0, 120));
    }
    return out;
}"""


def test_suggest_accept_save_load_and_download(
    page: Any, server: str, base: Any, geodata: Path
) -> None:
    _open(page, server)
    page.wait_for_timeout(300)  # the page names the widgets inside labelled components
    assert page.evaluate(UNNAMED_JS) == []
    page.fill("#scenario-k", "5")
    page.click("#scenario-suggest")
    page.wait_for_selector("#scenario-suggest-list", timeout=15_000)
    message = page.inner_text("#scenario-suggest-message")
    assert message.startswith("1 of the 5 sites asked for are suggested")  # k > useful sites
    assert "+544 people within 30 min by car" in page.inner_text("#scenario-suggest-list")
    assert page.locator(".atlas-scn-suggest").count() == 1
    page.locator("#scenario-suggest-result").scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "scenario-03-suggestions.png"))

    page.click("#scenario-accept")
    _lead_has(page, "544 people gain access")
    assert _gained(page) == 544
    assert page.locator(".atlas-scn-suggest").count() == 0
    assert page.locator(".atlas-scn-pin--added").count() == 1
    assert page.is_disabled("#scenario-accept")
    _shot(page, "scenario-04-suggestions-accepted.png")

    page.fill("#scenario-name", "West of the river")
    page.fill("#editor-token", EDITOR_TOKEN)
    page.click("#scenario-save")
    page.wait_for_selector("#scenario-file-status >> text=Saved", timeout=10_000)
    saved = geodata / "saved" / "demo" / "scenarios" / "west-of-the-river.json"
    assert saved.is_file()

    with page.expect_download(timeout=10_000) as dl:
        page.click("#scenario-export-geojson")
    download = dl.value
    assert download.suggested_filename == "demo-west-of-the-river-methadone-drive-geojson.zip"
    names = zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())).namelist()
    assert "scenario_desert.geojson" in names and "scenario.json" in names

    page.click("#scenario-reset")
    _lead_has(page, "No changes yet")
    page.click("#scenario-saved")
    page.get_by_role("dialog").get_by_text("West of the river (1 change)").click()
    page.click("#scenario-load")
    _lead_has(page, "544 people gain access")
    assert "Loaded “West of the river”" in page.inner_text("#scenario-message")
    assert not page.errors and not page.outside


SURFACE_PIXELS = """() => {
    // The minute bands' canvas alone (the baseline's and the scenario's share it), pixel by
    // pixel: each pixel is a band colour, the desert colour, clear, an antialiased edge
    // ("other") or drawn twice over ("overlap": more opaque than any one fill can be).
    const c = document.querySelector('.leaflet-atlas-surface-pane canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const h = atlas.latest.surface || atlas.surfaceSeen;
    const hex = (s) => [1, 3, 5].map((i) => parseInt(s.slice(i, i + 2), 16));
    const bands = h.bandColours.map(hex);
    const desert = hex(h.desertColour);
    const aBand = 255 * h.opacity * 0.8, aDesert = 255 * Math.min(1, h.opacity * 1.15);
    const near = (p, i, col) => Math.abs(p[i] - col[0]) + Math.abs(p[i + 1] - col[1])
        + Math.abs(p[i + 2] - col[2]) <= 9;
    const out = {bands: bands.map(() => 0), desert: 0, clear: 0, other: 0, overlap: 0};
    for (let i = 0; i < d.length; i += 4) {
        const a = d[i + 3];
        if (a === 0) { out.clear++; continue; }
        if (a > Math.max(aBand, aDesert) + 6) { out.overlap++; continue; }
        if (Math.abs(a - aDesert) <= 3 && near(d, i, desert)) { out.desert++; continue; }
        const k = Math.abs(a - aBand) <= 3 ? bands.findIndex((col) => near(d, i, col)) : -1;
        if (k >= 0) { out.bands[k]++; } else { out.other++; }
    }
    return out;
}"""

AREA_FILLS = """() => {
    const out = {};
    atlas.map.eachLayer((l) => {
        const p = l.feature && l.options.pane === 'atlas-fill' ? l.feature.properties : null;
        if (p && p.area_id != null) { out[p.area_id] = l.options.fillColor; }
    });
    return out;
}"""

SCENARIO_BANDS = """() => {
    let n = 0;
    atlas.map.eachLayer((l) => {
        if (l.feature && l.feature.properties.scn === 'band'
            && l.options.pane === 'atlas-surface' && l.options.knockout) { n++; }
    });
    return n;
}"""


def _time_colour(value: float | None) -> str | None:
    from layouts.theme import TIME_BREAKS_MIN, TIME_COLOURS

    if value is None:
        return None
    return TIME_COLOURS[sum(value > b for b in TIME_BREAKS_MIN)]


def _settled_pixels(pg: Any) -> dict[str, Any]:
    """The bands' canvas once two reads 150 ms apart agree (the renderer draws per frame)."""
    last = None
    for _ in range(40):
        now = pg.evaluate(SURFACE_PIXELS)
        if now == last:
            return now
        last = now
        pg.wait_for_timeout(150)
    return last


def test_the_map_shows_the_scenarios_bands_desert_and_areas(
    page: Any, server: str, base: Any
) -> None:
    from etl.engine.scenario import Scenario, evaluate
    from etl.engine.suggest import suggest_sites
    from viewmodel.scenario_map import area_values, band_change

    spot = suggest_sites(base, category="methadone", threshold_min=30, k=1)[0]
    _open(page, server, f"?layers=streets,bands,desert,sites,areas&lat={spot.lat:.5f}"
          f"&lon={spot.lon:.5f}&z=12")  # fmt: skip
    page.wait_for_function("() => atlas.drawn.choropleth", timeout=10_000)
    page.mouse.move(5, 5)
    before = _settled_pixels(page)
    fills_before = page.evaluate(AREA_FILLS)
    assert before["desert"] > 0 and before["overlap"] < 0.01 * sum(before["bands"])
    assert page.is_hidden("#scenario-showing")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "scenario-05-baseline.png"))

    page.click("#scenario-add-toggle")
    page.mouse.click(*_point(page, spot.lat, spot.lon))
    page.wait_for_selector("#scenario-gained", timeout=10_000)
    page.keyboard.press("Escape")
    message = page.inner_text("#scenario-message")
    lat, lon = map(float, re.search(r"at (-?\d+\.\d+), (-?\d+\.\d+)", message).groups())
    result = evaluate(
        base, Scenario().add_site("methadone", lon, lat), category="methadone", threshold_min=30
    )
    change = band_change(result)
    n_bands = len(set(change.after.tolist()))
    page.wait_for_function(f"() => ({SCENARIO_BANDS})() === {n_bands}", timeout=10_000)
    assert page.inner_text("#scenario-showing") == (
        "Showing: scenario “Untitled scenario” (1 change)"
    )
    # The areas whose travel time changes take the colour of their new time, the others
    # keep theirs.
    expected = area_values(result)
    assert expected
    page.wait_for_function(
        "([id, colour]) => (" + AREA_FILLS + ")()[id] === colour",
        arg=[next(iter(expected)), _time_colour(next(iter(expected.values())))],
        timeout=10_000,
    )
    fills = page.evaluate(AREA_FILLS)
    for area_id, colour in fills.items():
        if area_id in expected and _time_colour(expected[area_id]):
            assert colour == _time_colour(expected[area_id]), area_id
        else:
            assert colour == fills_before[area_id], area_id
    assert any(fills[a] != fills_before[a] for a in expected)
    # The bands: the nearest band grows and the desert shrinks, and the scenario's bands
    # replace the baseline's beneath them instead of blending over them.
    page.mouse.move(5, 5)
    after = _settled_pixels(page)
    gained = after["bands"][0] - before["bands"][0]
    assert gained > 2000, (before, after)
    assert after["desert"] < before["desert"]
    assert after["overlap"] <= before["overlap"] + 0.01 * gained, (before, after)
    page.screenshot(path=str(SHOTS / "scenario-06-scenario-bands-and-areas.png"))

    # Live threshold: the scenario's bands restyle with the baseline's (no round trip).
    page.evaluate(
        "() => window.dash_clientside.atlas.surfaceHideout(10, 10, "
        "['streets', 'bands', 'desert', 'sites', 'areas'], 60, atlas.surfaceSeen)"
    )
    page.wait_for_timeout(300)
    tight = _settled_pixels(page)
    assert tight["desert"] > after["desert"] and tight["overlap"] <= after["overlap"] + 50
    page.evaluate(
        "() => window.dash_clientside.atlas.surfaceHideout(30, 30, "
        "['streets', 'bands', 'desert', 'sites', 'areas'], 60, atlas.surfaceSeen)"
    )

    # Undo: the baseline again (up to a few antialiased edge pixels of partial redraws).
    page.click("#scenario-undo")
    _lead_has(page, "No changes yet")
    page.wait_for_function(f"() => ({SCENARIO_BANDS})() === 0", timeout=10_000)
    page.wait_for_function("() => document.getElementById('scenario-showing').hidden")
    page.wait_for_function(
        "(want) => JSON.stringify((" + AREA_FILLS + ")()) === JSON.stringify(want)",
        arg=fills_before,
        timeout=10_000,
    )
    page.mouse.move(5, 5)
    again = _settled_pixels(page)
    for k, n in enumerate(before["bands"]):
        assert abs(again["bands"][k] - n) <= 0.001 * n + 5, (before, again)
    assert abs(again["desert"] - before["desert"]) <= 0.001 * before["desert"] + 5
    assert again["overlap"] <= before["overlap"] + 5
    page.screenshot(path=str(SHOTS / "scenario-07-undone.png"))
    assert not page.errors and not page.outside


def test_a_scenario_travels_in_the_link(page: Any, server: str, base: Any) -> None:
    from etl.engine.suggest import suggest_sites

    spot = suggest_sites(base, category="methadone", threshold_min=30, k=1)[0]
    _open(page, server)
    page.click("#scenario-add-toggle")
    page.mouse.click(*_point(page, spot.lat, spot.lon))
    page.wait_for_selector("#scenario-gained", timeout=10_000)
    gained = _gained(page)
    page.wait_for_function("location.search.includes('w=')", timeout=5000)
    link = page.get_attribute("#share-link", "href")
    assert link.startswith("/?") and "w=" in link

    # Someone else opens the link: the panel opens on the same scenario and numbers.
    other = guarded_page(page.context)
    other.goto(server + link)
    other.wait_for_function(READY, timeout=20_000)
    other.wait_for_selector("#scenario-gained", timeout=15_000)
    assert _gained(other) == gained
    assert "Opened the scenario in the link" in other.inner_text("#scenario-message")
    assert other.evaluate("document.getElementById('scenario-section').open")
    _changes_drawn(other, "gain")
    _shot(other, "scenario-08-opened-from-link.png")
    # Undo empties the scenario, and the link no longer carries one.
    other.click("#scenario-undo")
    _lead_has(other, "No changes yet")
    other.wait_for_function("!location.search.includes('w=')", timeout=5000)
    assert "w=" not in other.get_attribute("#share-link", "href")
    assert not other.errors and not other.outside and not page.errors
