"""Pages in a real browser: each tab has its own title, the language is set, and a wrong
address shows a 404 page with a way back (not the map under a wrong name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import browser, geodata, page, server  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

__all__ = ["browser", "geodata", "page", "server"]

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


def test_titles_language_and_not_found(page: Any, server: str) -> None:
    page.goto(server + "/")
    page.wait_for_function("() => document.title === 'Map · Access Atlas'", timeout=20_000)
    assert page.evaluate("() => document.documentElement.lang") == "en"
    page.goto(server + "/methods")
    page.wait_for_function(
        "() => document.title === 'Methods and sources · Access Atlas'", timeout=20_000
    )
    response = page.goto(server + "/no-such-page")
    assert response is not None and response.status == 404
    assert "There is no page at this address." in page.inner_text("main")
    page.click("text=Back to the map")
    page.wait_for_function("() => document.title === 'Map · Access Atlas'", timeout=20_000)


def test_the_share_link_copies_instead_of_reloading(page: Any, server: str) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page.goto(server + "/?cat=buprenorphine&mode=walk")
    page.wait_for_function("() => window.atlas && atlas.drawn && atlas.drawn.sites",
                           timeout=20_000)  # fmt: skip
    page.evaluate("() => { window.__stay = 1; }")
    page.click("#share-link")
    page.wait_for_function(
        "() => (document.getElementById('share-status') || {}).textContent"
        " && document.getElementById('share-status').textContent.startsWith('Link copied')",
        timeout=10_000,
    )
    assert page.evaluate("() => window.__stay") == 1  # no page load
    copied = page.get_attribute("#share-link", "data-copied") or ""
    assert copied.startswith(server) and "cat=buprenorphine" in copied and "mode=walk" in copied
    assert page.evaluate("() => navigator.clipboard.readText()") == copied
    # The keyboard does the same (Enter on the focused link).
    page.evaluate("() => { document.getElementById('share-status').textContent = ''; }")
    page.focus("#share-link")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.getElementById('share-status').textContent.startsWith('Link copied')",
        timeout=10_000,
    )
    assert page.evaluate("() => window.__stay") == 1


def test_a_server_that_cannot_be_reached_is_said(page: Any, server: str) -> None:
    page.goto(server + "/")
    page.wait_for_function("() => window.atlas && atlas.drawn && atlas.drawn.sites",
                           timeout=20_000)  # fmt: skip
    assert page.locator("#atlas-offline").count() == 0 or page.is_hidden("#atlas-offline")
    page.route("**/_dash-update-component*", lambda route: route.abort())
    page.check("#category-select input[value='buprenorphine']")
    page.wait_for_selector("#atlas-offline:not([hidden])", timeout=10_000)
    assert "cannot be reached" in page.inner_text("#atlas-offline")
    assert page.get_attribute("#atlas-offline", "role") == "alert"
    page.screenshot(path=str(SHOTS / "31-server-unreachable.png"))
    page.unroute("**/_dash-update-component*")
    page.check("#category-select input[value='methadone']")
    page.wait_for_selector("#atlas-offline[hidden]", state="attached", timeout=10_000)
