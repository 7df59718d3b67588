"""Calling a Dash callback over HTTP as the browser's Dash renderer does (for the app tests)."""

from __future__ import annotations

from typing import Any


def call(
    client,
    outputs: list[tuple[str, str]],
    inputs: list[tuple[str, str, Any]],
    state: list[tuple[str, str, Any]] = (),
    changed: str | None = None,
) -> dict[str, Any]:
    """POST a callback as the Dash renderer does; return the response's values by output."""
    multi = len(outputs) > 1
    output = (
        "..{}..".format("...".join(f"{i}.{p}" for i, p in outputs))
        if multi
        else f"{outputs[0][0]}.{outputs[0][1]}"
    )
    body = {
        "output": output,
        "outputs": [{"id": i, "property": p} for i, p in outputs]
        if multi
        else {"id": outputs[0][0], "property": outputs[0][1]},
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [changed or f"{inputs[0][0]}.{inputs[0][1]}"],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }
    r = client.post("/_dash-update-component", json=body)
    assert b"Traceback" not in r.data
    if r.status_code == 204:
        return {}
    assert r.status_code == 200, r.data[:500]
    return r.get_json()["response"]
