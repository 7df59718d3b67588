"""Panels beside the map: summary with small charts, details of a clicked place, look-up results.

Each function takes plain numbers (from :mod:`viewmodel.data` / :mod:`viewmodel.lookup`) and
returns Dash components; no I/O. Charts are HTML lists with bars drawn in CSS, so they cost
no JavaScript, print well and read out as lists in a screen reader.
"""

from __future__ import annotations

import math
from typing import Any

from dash import html

from etl.categories import CATEGORY_COLOURS, CATEGORY_LABELS, CATEGORY_SYMBOLS, MODE_LABELS
from layouts.theme import BAND_COLOURS, DESERT_COLOUR
from viewmodel.data import county_label
from viewmodel.data import overdose_text as _overdose_text
from viewmodel.lookup import QUALITY_LABELS, Lookup

MODE_VERBS = {"drive": "by car", "walk": "on foot"}


def fmt_people(value: float | None) -> str:
    """People as a rounded whole number with thousands separators."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{round(value):,}"


def fmt_minutes(value: float | None) -> str:
    """Minutes with one decimal below 10, whole above; "no route" for infinity."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return "no route"
    return f"{value:.1f} min" if value < 10 else f"{round(value)} min"


def fmt_share(value: float | None) -> str:
    """A share as a whole percentage."""
    return "—" if value is None else f"{100 * value:.0f}%"


def symbol(category: str, *, size: int = 16) -> html.Span:
    """A category's legend symbol (its shape in its colour), hidden from screen readers."""
    return html.Span(
        className=f"atlas-symbol atlas-symbol--{CATEGORY_SYMBOLS.get(category, 'circle')}",
        style={"--c": CATEGORY_COLOURS.get(category, "#333"), "--s": f"{size}px"},
        **{"aria-hidden": "true"},
    )


def bar_chart(
    title: str,
    rows: list[dict[str, Any]],
    *,
    chart_id: str,
    highlight: set[int] | None = None,
    colours: list[str] | None = None,
) -> html.Figure:
    """A horizontal bar chart of people per row (``label``, ``people``)."""
    top = max((r["people"] for r in rows), default=0.0) or 1.0
    total = sum(r["people"] for r in rows) or 1.0
    items = []
    for i, r in enumerate(rows):
        width = 100.0 * r["people"] / top
        style = {"width": f"{width:.1f}%"}
        if colours:
            style["background"] = colours[i]
        elif highlight and i in highlight:
            style["background"] = DESERT_COLOUR
        items.append(
            html.Li(
                [
                    html.Span(r["label"], className="atlas-bar-label"),
                    html.Span(
                        html.Span(className="atlas-bar", style=style), className="atlas-bar-track"
                    ),
                    html.Span(
                        f"{fmt_people(r['people'])} ({100 * r['people'] / total:.0f}%)",
                        className="atlas-bar-value",
                    ),
                ]
            )
        )
    return html.Figure(
        [
            html.Figcaption(title, id=f"{chart_id}-title"),
            html.Ol(items, className="atlas-bars", **{"aria-labelledby": f"{chart_id}-title"}),
        ],
        className="atlas-chart",
        id=chart_id,
    )


def no_data_panel(category: str, reason: str) -> list:
    """The summary for a category the region has no data for: says so plainly, no numbers."""
    label = CATEGORY_LABELS.get(category, category)
    return [
        html.P(
            [
                html.Strong(f"No data for this region: {label.lower()}."),
                f" {reason[:1].upper()}{reason[1:]}, so there are no travel times, bands or "
                "desert to show. This is missing data, not an absence of need: choose "
                "another kind of care to see the map.",
            ],
            className="atlas-lead atlas-no-data-message",
            id="summary-no-data",
            role="status",
        )
    ]


def summary_panel(summary: dict[str, Any], *, category: str, mode: str, threshold: float) -> list:
    """The summary: people within and beyond the threshold, deserts, overdoses, charts."""
    focus = summary["focus"]
    label = CATEGORY_LABELS.get(category, category)
    verb = MODE_VERBS.get(mode, mode)
    lead = html.P(
        [
            html.Strong(fmt_people(focus["within"])),
            f" people ({fmt_share(focus['share_within'])}) live within {threshold:g} minutes "
            f"{verb} of the nearest {label.lower()}; ",
            html.Strong(fmt_people(focus["beyond"]), className="atlas-desert-number"),
            " live beyond it, in the desert.",
        ],
        className="atlas-lead",
        id="summary-lead",
    )
    facts = [
        html.Li(f"Median travel time: {fmt_minutes(focus['median_min'])} {verb}."),
    ]
    if focus.get("no_route"):
        facts.append(
            html.Li(
                f"{fmt_people(focus['no_route'])} people cannot reach any site "
                f"{verb} on this street network."
            )
        )
    if summary.get("uncovered"):
        cover_m = (summary.get("coverage") or {}).get("cover_m")
        how_far = f" (more than {cover_m:g} m from its streets)" if cover_m else ""
        facts.append(
            html.Li(
                f"{fmt_people(summary['uncovered'])} people live beyond the "
                f"{'street' if mode == 'drive' else 'walking'} network{how_far}: not "
                "covered, counted neither as reached nor as in a desert.",
                id="summary-not-covered",
            )
        )
    if summary.get("blocked") is not None:
        facts.append(
            html.Li(
                [
                    html.Strong(fmt_people(summary["blocked"])),
                    " of the people in the desert live where a siting rule prohibits new treatment "
                    "programs: there, changing a rule would matter.",
                ],
                id="summary-blocked",
            )
        )
    deaths = summary.get("deaths")
    if deaths is not None:
        text = (
            f"Overdose deaths in desert areas (most people beyond {threshold:g} min): "
            f"{fmt_people(deaths['deaths'])} in {deaths['areas']:,} areas"
        )
        if deaths.get("period"):
            text += f", {deaths['period']}"
        if deaths["suppressed_areas"]:
            text += (
                f"; {deaths['suppressed_areas']:,} of these areas have counts suppressed "
                "for privacy (1–9 deaths) and are not included"
            )
        facts.append(html.Li(text + "."))
    county = summary.get("county") or []
    for row in county:
        if row.get("note"):  # no county of the region is known: none from elsewhere is shown
            facts.append(html.Li(row["note"], className="atlas-overdose"))
            continue
        facts.append(
            html.Li(
                overdose_text(row, prefix=f"Overdose deaths, {county_label(row)}"),
                className="atlas-overdose",
            )
        )
    if deaths is None and not county:
        facts.append(html.Li("No overdose data in this region's bundle yet."))
    table = categories_table(summary["categories"], mode=mode, threshold=threshold, focus=category)
    hist = summary["histogram"]
    beyond = {i for i, b in enumerate(hist) if b["lo"] is None or b["lo"] >= threshold}
    charts = [
        bar_chart(
            f"People by travel time {verb} to the nearest {label.lower()} (minutes)",
            hist,
            chart_id="chart-times",
            highlight=beyond,
        ),
        bar_chart(
            "People by travel-time band",
            summary["bands"],
            chart_id="chart-bands",
            colours=[*BAND_COLOURS[: len(summary["bands"]) - 1], DESERT_COLOUR],
        ),
    ]
    return [lead, html.Ul(facts, className="atlas-facts-list"), table, *charts]


def categories_table(
    rows: list[dict[str, Any]], *, mode: str, threshold: float, focus: str
) -> html.Table:
    """People within the threshold of each category (same mode and threshold)."""
    head = html.Thead(
        html.Tr(
            [
                html.Th("Care", scope="col"),
                html.Th(f"Within {threshold:g} min", scope="col"),
                html.Th("Beyond", scope="col"),
                html.Th("Median", scope="col"),
            ]
        )
    )
    body = []
    for r in rows:
        body.append(
            html.Tr(
                [
                    html.Th(
                        [
                            symbol(r["category"]),
                            " ",
                            CATEGORY_LABELS.get(r["category"], r["category"]),
                        ],
                        scope="row",
                    ),
                    html.Td(f"{fmt_people(r['within'])} ({fmt_share(r['share'])})"),
                    html.Td(fmt_people(r["beyond"])),
                    html.Td(fmt_minutes(r["median_min"])),
                ],
                className="atlas-row--focus" if r["category"] == focus else None,
            )
        )
    return html.Table(
        [
            html.Caption(
                f"Every kind of care, {MODE_LABELS.get(mode, mode).lower()}, "
                f"threshold {threshold:g} min"
            ),
            head,
            html.Tbody(body),
        ],
        className="atlas-table atlas-table--compact",
        id="summary-categories",
    )


def overdose_text(row: dict[str, Any], *, prefix: str = "Overdose deaths") -> str:
    """An overdose figure with its basis; suppressed and unstable values said as such.

    The same sentence as the fact sheet's (:func:`etl.inputs.counties.overdose_text`).
    """
    return _overdose_text(row, prefix=prefix)


def _yes_no(value: Any) -> str | None:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return None


def provider_details(p: dict[str, Any]) -> list:
    """Details of a clicked care site."""
    cat = p.get("category", "")
    lines = [
        html.H3([symbol(cat, size=18), " ", p.get("name") or "Care site"], id="details-title"),
        html.P(CATEGORY_LABELS.get(cat, cat), className="atlas-small"),
    ]
    rows: list[tuple[str, Any]] = []
    if p.get("approx"):
        rows.append(("Location", "Shown only as an area: this site asked not to be shown exactly."))
    else:
        addr = ", ".join(x for x in (p.get("address"), p.get("address2")) if x)
        town = " ".join(x for x in (p.get("city"), p.get("state"), p.get("zip")) if x)
        rows.append(("Address", ", ".join(x for x in (addr, town) if x) or "—"))
    if p.get("phone"):
        rows.append(("Phone", html.A(p["phone"], href=f"tel:{p['phone']}")))
    if p.get("services"):
        rows.append(("Services", p["services"]))
    if p.get("capacity") is not None:
        rows.append(("Capacity", f"{p['capacity']} (e.g. prescribers at the site)"))
    for key, label in (
        ("medicaid", "Accepts Medicaid"),
        ("telehealth", "Telehealth"),
        ("accepting_new", "Accepting new patients"),
        ("naloxone", "Naloxone"),
    ):
        yn = _yes_no(p.get(key))
        if yn:
            rows.append((label, yn))
    for key, label in (("hours", "Hours"), ("languages", "Languages")):
        if p.get(key):
            rows.append((label, p[key]))
    src = p.get("source") or "—"
    if p.get("source_date"):
        src = f"{src} ({p['source_date']})"
    rows.append(("Source", src))
    quality = p.get("geocode_quality") or ""
    rows.append(("Location quality", QUALITY_LABELS.get(quality, quality or "—")))
    if p.get("not_routed"):
        rows.append(("Not routed", "; ".join(p["not_routed"]).capitalize()))
    elif p.get("on_network") is False:
        rows.append(("Note", "Far from every street of the network: not counted in travel times."))
    # scenario: "What if this site closed?" hands the site to the What-if panel.
    from layouts.scenario import close_site_button

    close = close_site_button(p)
    return [*lines, _dl(rows), *([close] if close is not None else [])]


def _dl(rows: list[tuple[str, Any]]) -> html.Dl:
    items: list = []
    for k, v in rows:
        items += [html.Dt(k), html.Dd(v)]
    return html.Dl(items, className="atlas-dl")


def area_details(p: dict[str, Any], *, categories: list[str], modes: list[str]) -> list:
    """Details of a clicked census area: people, travel time per category, overdoses."""
    title = p.get("name") or p.get("area_id") or "Area"
    unit = p.get("unit") or "area"
    rows = [
        ("Area", f"{unit} {p.get('area_id', '')}".strip()),
        ("People", fmt_people(p.get("population"))),
    ]
    for m in modes:  # the build's one rule per mode (bundles before it: the areas stage's)
        n = p.get(f"not_covered_{m}", p.get("population_uncovered"))
        if n:
            rows.append((f"Not covered {MODE_VERBS.get(m, m)}", fmt_people(n)))
    head = html.Thead(
        html.Tr(
            [
                html.Th("Care", scope="col"),
                *[html.Th(MODE_LABELS.get(m, m), scope="col") for m in modes],
            ]
        )
    )
    body = []
    for cat in categories:
        cells = [html.Td(fmt_minutes(p.get(f"t_{cat}_{m}"))) for m in modes]
        body.append(
            html.Tr(
                [html.Th([symbol(cat), " ", CATEGORY_LABELS.get(cat, cat)], scope="row"), *cells]
            )
        )
    table = html.Table(
        [
            html.Caption("Travel time to the nearest site (population-weighted)"),
            head,
            html.Tbody(body),
        ],
        className="atlas-table atlas-table--compact",
    )
    parts = [html.H3(str(title), id="details-title"), _dl(rows), table]
    parts += capacity_table(p, categories=categories, modes=modes)
    if any(k in p for k in ("rate_per_100k", "deaths", "suppressed")):
        parts.append(html.P(overdose_text(p), className="atlas-overdose"))
    return parts


def capacity_table(p: dict[str, Any], *, categories: list[str], modes: list[str]) -> list:
    """An area's practitioners per 10,000 people (``cap_<cat>_<mode>``), where measured."""
    cats = [c for c in categories if any(f"cap_{c}_{m}" in p for m in modes)]
    if not cats:
        return []

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "—"
        return f"{float(v):.1f}"

    body = [
        html.Tr(
            [
                html.Th([symbol(c), " ", CATEGORY_LABELS.get(c, c)], scope="row"),
                *[html.Td(cell(p.get(f"cap_{c}_{m}"))) for m in modes],
            ]
        )
        for c in cats
    ]
    head = html.Thead(
        html.Tr(
            [
                html.Th("Care", scope="col"),
                *[html.Th(MODE_LABELS.get(m, m), scope="col") for m in modes],
            ]
        )
    )
    return [
        html.Table(
            [
                html.Caption("Practitioners per 10,000 people (two-step floating catchment)"),
                head,
                html.Tbody(body),
            ],
            className="atlas-table atlas-table--compact",
        )
    ]


def lookup_panel(lookup: Lookup | None, *, query: str, mode: str) -> list:
    """Results of an address look-up (or why there are none)."""
    if lookup is None:
        return [
            html.P(
                [
                    f"No address matching “{query}” was found in this region. Try a street "
                    "address with its city or ZIP code, a ZIP code alone, or coordinates "
                    "such as “39.96, -83.00”."
                ],
                className="atlas-warning",
                role="alert",
            )
        ]
    place = lookup.place
    out = [
        html.P(
            [
                html.Strong("Found: "),
                place.matched,
                " — ",
                QUALITY_LABELS.get(place.quality, place.quality),
            ],
            id="lookup-found",
        )
    ]
    if not place.trusted:
        out.append(
            html.P(
                "Approximate location: travel times are for that point, not the exact address.",
                className="atlas-warning",
            )
        )
    if not any(lookup.covered.values()):
        far = min(lookup.snap_m.values()) if lookup.snap_m else float("nan")
        out.append(
            html.P(
                f"This place is {far / 1000:.1f} km from the nearest street of the "
                "region's network, beyond its coverage: no travel times.",
                className="atlas-warning",
                role="alert",
            )
        )
        return out
    modes = list(dict.fromkeys(n.mode for n in lookup.nearest))
    head = html.Thead(
        html.Tr(
            [
                html.Th("Nearest", scope="col"),
                *[html.Th(MODE_LABELS.get(m, m), scope="col") for m in modes],
            ]
        )
    )
    by_cat: dict[str, dict[str, Any]] = {}
    for n in lookup.nearest:
        by_cat.setdefault(n.category, {})[n.mode] = n
    body = []
    for cat, per_mode in by_cat.items():
        cells = []
        for m in modes:
            n = per_mode.get(m)
            if n is None or n.minutes is None:
                cells.append(html.Td("—"))
            else:
                cells.append(
                    html.Td(
                        [
                            html.Strong(fmt_minutes(n.minutes)),
                            html.Br(),
                            html.Span(n.name or "", className="atlas-small"),
                        ]
                    )
                )
        body.append(
            html.Tr(
                [html.Th([symbol(cat), " ", CATEGORY_LABELS.get(cat, cat)], scope="row"), *cells]
            )
        )
    out.append(
        html.Table(
            [html.Caption(f"Routes drawn {MODE_VERBS.get(mode, mode)}"), head, html.Tbody(body)],
            className="atlas-table atlas-table--compact",
            id="lookup-table",
        )
    )
    return out
