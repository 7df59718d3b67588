"""Methods-page sections for release day (re-entry) and partial provider lists.

Each function reads only the manifest and returns components (empty when the bundle has
nothing of the kind), so :func:`layouts.methods.methods_page` can add them in one line.
"""

from __future__ import annotations

from typing import Any

from dash import html


def reentry_methods(manifest: dict[str, Any]) -> list:
    """How the release-day times are computed (only for a bundle with facilities)."""
    fac = manifest.get("stages", {}).get("access", {}).get("facilities")
    if not fac or not fac.get("facilities"):
        return []
    sources = [
        i for i in manifest.get("inputs", []) if str(i.get("role", "")).startswith("facilities")
    ]
    cover = manifest.get("settings", {}).get("cover_m", 300)
    src = "; ".join(
        " — ".join(b for b in (i.get("source"), i.get("licence")) if b) for i in sources
    )
    kinds = ", ".join(f"{v} {k}" for k, v in (fac.get("by_kind") or {}).items())
    return [
        html.H2("Release day (re-entry)", id="methods-reentry"),
        html.P(
            f"{fac['facilities']} prisons, jails and detention centres ({kinds}) in the region or "
            "within its buffer (a state prison releases people into many counties). Each is "
            "treated like a people point: snapped to its nearest street node of each mode, "
            f"covered when that node is within {cover:g} m, and its time is the node's time to "
            "the nearest methadone, buprenorphine and naltrexone care, naloxone and pharmacy, "
            "plus the snap distance walked. A facility whose time is above the threshold is "
            f"listed as releasing people into a desert ({fac.get('in_desert', 0)} here). "
            "No bus times: the engine has no timetable routing, so transit is not counted. "
            "Facility locations are public; nothing about the people inside is used (a list's "
            "population columns are never read). Facilities at one point (two jails in one "
            "building) are shown as one."
        ),
        html.P(f"Facility list: {src}." if src else "", className="atlas-small"),
    ]


def partial_methods(manifest: dict[str, Any]) -> list:
    """Provider lists marked partial in the config (e.g. vaccine-site pharmacies)."""
    rows = [
        i
        for i in manifest.get("inputs", [])
        if str(i.get("role", "")).startswith("providers.") and i.get("partial")
    ]
    if not rows:
        return []
    return [
        html.H2("Partial lists", id="methods-partial"),
        html.Ul([html.Li(f"{i.get('source') or i.get('role')}: {i.get('partial')}") for i in rows]),
    ]


def extra_methods(manifest: dict[str, Any]) -> list:
    """Every extra section, in page order."""
    return [*reentry_methods(manifest), *partial_methods(manifest)]
