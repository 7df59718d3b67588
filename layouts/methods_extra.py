"""Methods-page sections for release day (re-entry), capacity and partial provider lists.

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


def capacity_methods(manifest: dict[str, Any]) -> list:
    """How practitioners per 10,000 people are computed (only where a list counts capacity)."""
    from etl.categories import CATEGORY_LABELS

    cap = manifest.get("stages", {}).get("access", {}).get("capacity") or {}
    by = cap.get("by") or {}
    if not by:
        return []
    how = {"drive": "by car", "walk": "on foot"}
    unit = cap.get("unit") or "practitioners"
    sources = ", ".join(cap.get("sources", []))
    rows = []
    for key, v in by.items():
        cat, mode = key.rsplit("_", 1)
        label = CATEGORY_LABELS.get(cat, cat)
        assumed = v.get("sites_capacity_assumed_1", 0)
        rows.append(
            html.Li(
                f"{label}, {how.get(mode, mode)}: catchment {v['catchment_min']:g} min; "
                f"{v['sites']} sites with {v['capacity']:,} {unit}"
                + (f" ({assumed} without a count, counted as 1)" if assumed else "")
                + f"; median {_num(v.get('median_per_10k_people'))} per 10,000 people "
                f"(median area {_num(v.get('median_per_10k_areas'))}); "
                f"{v.get('people_with_none', 0):,} covered people reach none."
            )
        )
    cover = manifest.get("settings", {}).get("cover_m", 300)
    return [
        html.H2("Practitioners per 10,000 people (capacity)", id="methods-capacity"),
        html.P(
            "Where a provider list says how many practitioners work at an address (the SAMHSA "
            "buprenorphine locator lists one row per practitioner; its rows at one address "
            "become one site whose capacity is the number of distinct practitioners) or maps a "
            "capacity column (slots), the map can show practitioners per 10,000 people by "
            "area. The method is the Gaussian two-step floating catchment area (2SFCA; Luo & "
            "Qi 2009, Dai 2010). Step 1: each site's practitioners are divided by the people "
            "who can reach it within the catchment, each person weighted by a Gaussian decay "
            "of the travel time. Step 2: each person's value is the sum of the ratios of the "
            "sites they can reach, weighted by the same decay. The catchment is the category's "
            "desert threshold for the mode; the decay is 1 at the door and falls to 0 at the "
            f"threshold ({cap.get('decay', '')}). Travel times are the engine's network "
            "times from the person's street node to the site's, with both walks to the street "
            f"added; people more than {cover:g} m from a mode's streets are not covered and "
            "are neither counted as demand nor given a value. An area's value is the "
            "population-weighted mean over its covered people, times 10,000; an area whose "
            "covered people reach no site within the catchment shows 0. Every practitioner "
            "someone can reach is shared out once, so the region's average equals the "
            "practitioners reached over the people covered."
        ),
        html.Ul(rows),
        html.P(
            "Caveats: a practitioner listed at several addresses counts at each; people living "
            "beyond the region who use sites near its edge are not counted as demand, so rates "
            "near the border read high; a count of practitioners is not their caseload "
            f"(patient limits, hours). Capacity from: {sources}.",
            className="atlas-small",
        ),
    ]


def _num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{float(value):.1f}" if abs(float(value)) >= 1 else f"{float(value):.2f}"


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
    return [*reentry_methods(manifest), *capacity_methods(manifest), *partial_methods(manifest)]
