"""A What-if scenario carried by the page's link (``w=``): token, parsing and encoding."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_app_state import OPTIONS
from viewmodel.state import (
    MAX_SCENARIO_CHARS,
    decode_scenario,
    encode_scenario,
    encode_state,
    parse_state,
)

STORE = {
    "format": "access-atlas-scenario",
    "version": 1,
    "name": "Clínica Niño on Main",
    "region": "demo",
    "changes": [
        {"type": "add_site", "category": "methadone", "lon": -82.99, "lat": 39.96,
         "name": "New site 1"},
        {"type": "close_site", "provider_id": "otp-3"},
    ],
}  # fmt: skip


def test_token_round_trip_is_url_safe() -> None:
    token = encode_scenario(STORE)
    assert token and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    assert decode_scenario(token) == STORE
    # the browser's own encoding (btoa of the UTF-8 bytes, base64url, no padding) reads back
    browser = base64.b64encode(json.dumps(STORE).encode()).decode()
    browser = browser.replace("+", "-").replace("/", "_").rstrip("=")
    assert decode_scenario(browser) == STORE


def test_no_token_for_no_changes_or_too_many() -> None:
    assert encode_scenario(None) == "" and encode_scenario({**STORE, "changes": []}) == ""
    many = {**STORE, "changes": STORE["changes"][:1] * 60}
    assert encode_scenario(many) == ""  # too long for a link: save it and share its name
    assert len(encode_scenario({**STORE, "changes": STORE["changes"][:1] * 20})) < (
        MAX_SCENARIO_CHARS
    )


def test_tokens_that_are_not_scenarios_are_ignored() -> None:
    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    for token in ["", "!!!", "a" * (MAX_SCENARIO_CHARS + 1), b64("[1, 2]"), b64("not json"),
                  b64('{"changes": "x"}'), b64('{"changes": []}'), "%00%ff"]:  # fmt: skip
        assert decode_scenario(token) is None, token


def test_parse_and_encode_carry_the_scenario() -> None:
    token = encode_scenario(STORE)
    state = parse_state(f"?cat=buprenorphine&w={token}", OPTIONS, default_region="demo")
    assert state.scenario == token and state.category == "buprenorphine"
    assert f"w={token}" in encode_state(state, OPTIONS, default_region="demo")
    nonsense = parse_state("?w=!!not-a-token!!", OPTIONS, default_region="demo")
    assert nonsense.scenario == ""


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_scenario_or_nothing(text: str) -> None:
    data = decode_scenario(text)
    assert data is None or (isinstance(data, dict) and data["changes"])
