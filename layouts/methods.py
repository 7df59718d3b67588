"""The methods page: how the numbers are made, from the bundle's manifest.

Sources with dates and licences (OpenStreetMap's ODbL attribution), definitions, thresholds,
speeds, privacy rules and caveats. Everything shown is read from the manifest, so the page
always describes the bundle on screen.
"""

from __future__ import annotations

from typing import Any

from dash import html

from etl.categories import CATEGORY_LABELS, MODE_LABELS
from layouts.methods_extra import extra_methods
from layouts.overview import fictional_banner, sources_list, summary_table
from viewmodel.data import cover_distance

ODBL_URL = "https://opendatacommons.org/licenses/odbl/1-0/"
OSM_COPYRIGHT_URL = "https://www.openstreetmap.org/copyright"

#: Definitions shown on the methods page (term, text); ``{walk}`` and ``{bands}`` are filled in.
DEFINITIONS: tuple[tuple[str, str], ...] = (
    (
        "Travel time",
        "Minutes from where a person is to the nearest site of a kind of care, along the street "
        "network, in the direction a person travels (one-way streets count). The distance from "
        "a home or a site to its nearest street is walked at {walk} km/h and added.",
    ),
    (
        "Desert",
        "People whose travel time to the nearest site is beyond the threshold. The desert is "
        "drawn as the streets (small hexagons) from which no site is reached within the "
        "threshold, plus the spots where each person counted in it lives; the threshold used "
        "is printed beside every number.",
    ),
    (
        "Travel-time bands",
        "The land along streets within {bands} minutes of the nearest site. Bands follow the "
        "streets, so they never claim land no street reaches.",
    ),
    (
        "People",
        "Each area's people are placed at its census blocks where the region has them, otherwise "
        "spread along its residential streets (dasymetric points), so area values are weighted "
        "by where people live. A person farther than {cover} m from a travel mode's streets is "
        "not covered by that mode: counted neither as reached nor as in a desert.",
    ),
    ("Travel time by area", "The population-weighted mean travel time of the area's people."),
)

#: The privacy rules applied by the ETL (DESIGN.md, "Privacy").
PRIVACY_RULES: tuple[str, ...] = (
    "Overdose death counts from 1 to 9 are never shown, exported or derivable (CDC WONDER's "
    "rule); where a shown total would reveal a hidden count, further counts are hidden too "
    "(complementary suppression). Rates built on a hidden count are hidden with it. A rate "
    "published without a count (a modelled rate) is shown unless a count of 1 to 9 follows "
    "from it and the county's population, and is hidden where no population is known to check.",
    "Rates built on fewer than 20 deaths are marked unstable (NCHS standard) and drawn with a "
    "dashed outline.",
    "A syringe services site that asked not to be shown exactly appears only as the area (an H3 "
    "cell of about 0.7 km²) that holds it.",
    "These rules are applied when the bundle is built, so no layer holds a value that may not "
    "be shown.",
)


def _osm_inputs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        i
        for i in manifest.get("inputs", [])
        if "osm" in i.get("role", "") or "openstreetmap" in (i.get("source") or "").lower()
    ]


def osm_note(manifest: dict[str, Any], dates: str) -> html.P:
    """OpenStreetMap's attribution (ODbL) when the network is OSM data, else its own source."""
    osm = _osm_inputs(manifest)
    is_osm = any(
        "odbl" in (i.get("licence") or "").lower()
        or "openstreetmap" in ((i.get("source") or "") + (i.get("licence") or "")).lower()
        for i in osm
    )
    if is_osm:
        return html.P(
            [
                "Street network © ",
                html.A("OpenStreetMap contributors", href=OSM_COPYRIGHT_URL),
                ", available under the ",
                html.A("Open Database License (ODbL) 1.0", href=ODBL_URL),
                f". Extract date: {dates}.",
            ],
            id="methods-osm",
        )
    sources = (
        "; ".join(
            f"{i.get('source') or i.get('path')} ({i.get('licence') or 'no licence given'})"
            for i in osm
        )
        or "not recorded"
    )
    return html.P(f"Street network: {sources}.", id="methods-osm")


def thresholds_table(settings: dict[str, Any]) -> html.Table:
    """Desert thresholds per category and mode."""
    modes = settings.get("modes", ["drive", "walk"])
    th = settings.get("thresholds_min", {})
    head = html.Thead(
        html.Tr(
            [
                html.Th("Care", scope="col"),
                *[html.Th(MODE_LABELS.get(m, m), scope="col") for m in modes],
            ]
        )
    )
    rows = [
        html.Tr(
            [
                html.Th(CATEGORY_LABELS.get(c, c), scope="row"),
                *[html.Td(f"{per[m]:g} min" if m in per else "—") for m in modes],
            ]
        )
        for c, per in th.items()
    ]
    return html.Table(
        [head, html.Tbody(rows)],
        className="atlas-table atlas-table--compact",
        id="methods-thresholds",
    )


def speeds_table(settings: dict[str, Any]) -> html.Table:
    """The drive speed table per highway class."""
    speeds = settings.get("drive_speeds_kph", {})
    rows = [
        html.Tr([html.Th(k.replace("_", " "), scope="row"), html.Td(f"{v:g} km/h")])
        for k, v in speeds.items()
    ]
    head = html.Thead(
        html.Tr([html.Th("Street class (OSM highway)", scope="col"), html.Th("Speed", scope="col")])
    )
    return html.Table(
        [head, html.Tbody(rows)], className="atlas-table atlas-table--compact", id="methods-speeds"
    )


def methods_page(manifest: dict[str, Any], *, header: Any = None) -> html.Div:
    """The methods page for one bundle."""
    s = manifest.get("settings", {})
    osm = _osm_inputs(manifest)
    osm_dates = ", ".join(sorted({str(i.get("date")) for i in osm if i.get("date")})) or "unknown"
    cf = s.get("congestion_factor", 1)
    walk = s.get("walk_speed_kph", 4.8)
    bands = ", ".join(f"{b:g}" for b in s.get("bands_min", [10, 20, 30]))
    cover = f"{cover_distance(manifest):,.0f}"
    software = manifest.get("software", {})
    parts: list = [
        header,
        fictional_banner(manifest),
        html.Div(
            [
                html.H1(
                    f"Methods and sources · {manifest.get('title', manifest.get('region', ''))}"
                ),
                html.P(
                    [
                        "Built ",
                        html.Time(
                            manifest.get("built_at", "?"), dateTime=manifest.get("built_at", "")
                        ),
                        f" (build {manifest.get('build_id', '?')}) with Access Atlas "
                        f"{software.get('access-atlas', '?')}.",
                    ],
                    className="atlas-small",
                ),
                html.H2("What the map shows"),
                html.Dl(
                    [
                        item
                        for term, text in DEFINITIONS
                        for item in (
                            html.Dt(term),
                            html.Dd(text.format(walk=f"{walk:g}", bands=bands, cover=cover)),
                        )
                    ],
                    className="atlas-dl atlas-dl--wide",
                ),
                html.H2("Thresholds"),
                html.P(
                    "Default desert thresholds (the map's slider can change them for exploration):"
                ),
                thresholds_table(s),
                html.H2("Travel speeds"),
                html.P(
                    f"Driving: the speed table below, or a street's posted maxspeed where it is "
                    f"tagged{'' if s.get('use_maxspeed', True) else ' (not used in this build)'}; "
                    f"times multiplied by a congestion factor of {cf:g}×"
                    f"{' (free-flow: real trips at busy hours take longer)' if cf == 1 else ''}. "
                    f"Walking: {walk:g} km/h on every walkable way. Sites farther than "
                    f"{s.get('max_snap_m', 1500):g} m from a street are not routed. "
                    f"Direction: {s.get('direction', 'from people to care')}."
                ),
                speeds_table(s),
                osrm_check(s),
                *coverage_section(manifest),
                *extra_methods(manifest),  # re-entry, partial lists (methods_extra)
                html.H2("Results at the default thresholds"),
                summary_table(manifest),
                html.H2("Sources"),
                sources_list(manifest),
                osm_note(manifest, osm_dates),
                html.H2("Privacy rules"),
                html.Ul([html.Li(rule) for rule in PRIVACY_RULES]),
                html.H2("Caveats"),
                html.Ul(_caveats(manifest)),
                html.H2("Software"),
                html.P(", ".join(f"{k} {v}" for k, v in software.items()), className="atlas-small"),
            ],
            className="atlas-page atlas-methods",
        ),
    ]
    return html.Div([p for p in parts if p is not None], className="atlas-app atlas-app--page")


def coverage_section(manifest: dict[str, Any]) -> list:
    """The "Who is counted" section: covered / not covered per mode, and unrouted sites.

    Read from ``stages.access.coverage`` and ``stages.providers.off_network``; a bundle built
    before them shows nothing here (its caveats still say who was left out).
    """
    s = manifest.get("settings", {})
    stages = manifest.get("stages", {})
    coverage = stages.get("access", {}).get("coverage") or {}
    off = stages.get("providers", {}).get("off_network")
    off = off if isinstance(off, list) else []
    if not coverage and not off:
        return []
    cover_m = s.get("cover_m", next(iter(coverage.values()), {}).get("cover_m", 300))
    out: list = [
        html.H2("Who is counted"),
        html.P(
            f"A person counts for a travel mode only where the mode's nearest street node is "
            f"within {cover_m:g} m (about {cover_m / 80:.0f} minutes on foot) and the street data "
            "reaches the part of their census area where they live. Everyone else is not "
            'covered: never in a desert, a band or "within reach". The distance comes from the '
            "data: where street data is complete, nearly everyone lives within 200 m of a "
            "street (99.8 % of the people of central Franklin County, Ohio, at their census "
            "blocks); a person farther away lives where the street extract has no streets. The "
            "same number is on the map's summary, this page, the printed map, the fact sheet "
            "and every export."
        ),
    ]
    if coverage:
        rows = [
            html.Tr(
                [
                    html.Td(MODE_LABELS.get(mode, mode)),
                    html.Td(f"{c['covered']:,}"),
                    html.Td(f"{c['not_covered']:,}", id=f"methods-not-covered-{mode}"),
                    html.Td(f"{c['people']:,}"),
                ]
            )
            for mode, c in coverage.items()
        ]
        out.append(
            html.Table(
                [
                    html.Thead(
                        html.Tr(
                            [
                                html.Th(h, scope="col")
                                for h in ("Travel", "Covered", "Not covered", "People")
                            ]
                        )
                    ),
                    html.Tbody(rows),
                ],
                className="atlas-table",
                id="methods-coverage",
            )
        )
    if off:
        how = {"drive": "by car", "walk": "on foot"}
        items = [
            html.Li(
                f"{r['name']} ({CATEGORY_LABELS.get(r['category'], r['category']).lower()}): "
                f"not routed {how.get(r['mode'], r['mode'])}: "
                + (
                    f"{r['snap_m'] / 1000:.1f} km from the street network"
                    if r.get("snap_m") is not None
                    else "no street network"
                )
            )
            for r in off
        ]
        n_off = len({r["id"] for r in off})
        out += [
            html.P(
                f"{n_off:,} {'site lies' if n_off == 1 else 'sites lie'} more than "
                f"{s.get('max_snap_m', 1500):g} m from a mode's street network and are left out "
                "of that mode's travel times:"
            ),
            html.Ul(items, id="methods-off-network", className="atlas-small"),
        ]
    return out


def osrm_check(settings: dict[str, Any]) -> html.P:
    """How the drive times compare with OSRM's car profile (benchmarks/bench_osrm.py)."""
    sig = settings.get("signal_delay_s", 0) or 0
    msf = settings.get("maxspeed_factor", 1) or 1
    return html.P(
        [
            f"This build adds {sig:g} s per traffic signal and drives {msf:.0%} of a tagged "
            "maxspeed (network.signal_delay_s, network.maxspeed_factor). Checked against the "
            "OSRM routing engine (car profile, benchmarks/bench_osrm.py) on the Franklin County "
            "extract, 3,000 people to the nearest site of each of 5 kinds of care, door to "
            "door: with the default speed table the engine's times are 0.87–0.89 of OSRM's "
            "(median per kind; p10 0.72–0.78, p90 1.02–1.11), because the table drives "
            "residential and unclassified streets at 40 km/h where OSRM uses 25 km/h. OSRM's "
            "2 s per signal and 80 % of maxspeed alone bring the median to 0.89–0.92. With "
            "OSRM's class speeds as well (the Franklin County config uses them) the median is "
            "1.00–1.02, p10 0.91–0.95 and p90 1.12–1.23. The slowest tenth stays up to 23 % "
            "above OSRM because this engine walks from a person to the nearest street node "
            "where OSRM walks to the nearest point of a street: on short trips that walk is a "
            "large share (in drive time alone p90 is 1.00–1.01); OSRM's turn costs (up to "
            "about 7.5 s a turn, 20 s a U-turn) are not modelled, routing on nodes. The "
            "default table is kept as free-flow speeds for a US county; set "
            "network.drive_speeds_kph, signal_delay_s and maxspeed_factor (as the Franklin "
            "County config does) to follow OSRM."
        ],
        id="methods-osrm-check",
        className="atlas-small",
    )


def _caveats(manifest: dict[str, Any]) -> list:
    s = manifest.get("settings", {})
    stages = manifest.get("stages", {})
    out = [
        html.Li(
            "Travel times come from speed tables, not observed traffic: they are optimistic, "
            f"especially at rush hour (congestion factor used: {s.get('congestion_factor', 1):g}×)."
        ),
        html.Li(
            "Walking times assume every mapped street and path is walkable; missing sidewalks "
            "and unsafe crossings are not known."
        ),
        html.Li(
            "Provider directories age quickly; a listed site may have closed or stopped taking "
            "patients. Each site shows its source, date and how precisely it was located."
        ),
        html.Li("No transit timetable is used: public transport travel times are not computed."),
    ]
    transit = stages.get("transit", {})
    if transit.get("stops"):
        where = {
            "stop_times": "from the feed's timetable",
            "shapes": "from the route lines passing within 30 m, because the feed has no "
            "timetable (stop_times.txt)",
        }.get(transit.get("routes_from", ""), "not known: the feed lists no trips")
        out.append(
            html.Li(
                f"{transit['stops']:,} transit stops are shown with the walk from each stop to "
                f"the nearest care; the routes serving a stop are {where}."
            )
        )
    coverage = stages.get("access", {}).get("coverage")
    uncovered = stages.get("areas", {}).get("population_uncovered")
    if coverage:
        worst = max(coverage.values(), key=lambda c: c.get("not_covered", 0))
        if worst.get("not_covered"):
            out.append(
                html.Li(
                    f"Up to {worst['not_covered']:,} of {worst['people']:,} people live beyond "
                    "a mode's street network (for example outside a clipped map extract) and "
                    'are left out of every count: see "Who is counted".'
                )
            )
    elif uncovered:
        out.append(
            html.Li(
                f"{round(uncovered):,} people live beyond the street network's coverage "
                "(for example outside a clipped map extract) and are left out of every "
                "count."
            )
        )
    off = stages.get("providers", {}).get("off_network")
    if isinstance(off, int) and off:
        out.append(
            html.Li(
                f"{off:,} sites lie far from every street of the network and are not "
                "counted in travel times."
            )
        )
    if "barriers" in manifest.get("layers", {}):
        out.append(
            html.Li(
                "Zoning barriers are shown as rules a coalition may contest: siting rules "
                "that single out treatment programs have been held to violate the "
                "Americans with Disabilities Act (New Directions Treatment Services v. "
                "City of Reading, 3d Cir. 2007). Not legal advice."
            )
        )
    if manifest.get("fictional"):
        out.append(
            html.Li(
                "This region is fictional: its streets, sites, people and overdose "
                "figures were generated to demonstrate the tool."
            )
        )
    return out
