"""Pages in a real browser: each tab has its own title, the language is set, and a wrong
address shows a 404 page with a way back (not the map under a wrong name)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser_support import browser, geodata, page, server  # fixtures

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

__all__ = ["browser", "geodata", "page", "server"]


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
