"""The overview page: what a region bundle holds, read from its manifest."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from etl.categories import CATEGORY_LABELS, MODE_LABELS

FICTIONAL_BANNER_ID = "fictional-banner"
SUMMARY_TABLE_ID = "access-summary"
REGION_SELECT_ID = "region-select"


def fictional_banner(manifest: dict[str, Any]) -> html.Div | None:
    """A banner saying the region is fictional, or None for a real region."""
    if not manifest.get("fictional"):
        return None
    return html.Div(
        "Fictional data: this county, its providers and its people are made up by Access Atlas "
        "to demonstrate the tool. Nothing here describes a real place.",
        id=FICTIONAL_BANNER_ID,
        className="atlas-banner atlas-banner--fictional",
        role="note",
    )


def _fmt_int(value: Any) -> str:
    return f"{round(value):,}" if isinstance(value, int | float) else "—"


def summary_table(manifest: dict[str, Any]) -> html.Table:
    """People within and beyond each category's threshold, the threshold printed beside them."""
    summary = manifest.get("stages", {}).get("access", {}).get("summary", {})
    rows = []
    for key, entry in summary.items():
        if "threshold_min" not in entry:
            continue
        category, mode = key.rsplit("_", 1)
        rows.append(
            html.Tr([
                html.Th(CATEGORY_LABELS.get(category, category), scope="row"),
                html.Td(MODE_LABELS.get(mode, mode)),
                html.Td(f"{entry['threshold_min']:g} min"),
                html.Td(_fmt_int(entry.get("people_within"))),
                html.Td(_fmt_int(entry.get("people_in_desert"))),
                html.Td(f"{entry['median_minutes']:.1f} min" if entry.get("median_minutes") is not None else "—"),
                html.Td(_fmt_int(entry.get("sites"))),
            ])
        )  # fmt: skip
    head = html.Thead(html.Tr([html.Th(h, scope="col") for h in (
        "Care", "Travel", "Threshold", "People within", "People beyond (desert)",
        "Median travel time", "Sites")]))  # fmt: skip
    return html.Table([head, html.Tbody(rows)], id=SUMMARY_TABLE_ID, className="atlas-table")


def sources_list(manifest: dict[str, Any]) -> html.Table:
    """Every input with its source, date and licence."""
    rows = [
        html.Tr([html.Td(i["role"]), html.Td(i.get("source") or "—"), html.Td(i.get("date") or "—"),
                 html.Td(i.get("licence") or "—"), html.Td(html.Code(i["sha256"][:12]))])
        for i in manifest.get("inputs", [])
    ]  # fmt: skip
    head = html.Thead(html.Tr([html.Th(h, scope="col") for h in ("Input", "Source", "Date", "Licence", "SHA-256")]))
    return html.Table([head, html.Tbody(rows)], className="atlas-table atlas-table--small")


def overview_page(manifest: dict[str, Any], regions: list[str]) -> html.Div:
    """The page for one region."""
    stages = manifest.get("stages", {})
    net = stages.get("network", {})
    areas = stages.get("areas", {})
    prov = stages.get("providers", {})
    settings = manifest.get("settings", {})
    facts = [
        f"{_fmt_int(areas.get('population'))} people in {_fmt_int(areas.get('areas'))} {areas.get('unit', 'area')}s",
        f"{_fmt_int(prov.get('providers'))} care sites",
        f"drive network {_fmt_int(net.get('drive', {}).get('nodes'))} nodes; "
        f"walk network {_fmt_int(net.get('walk', {}).get('nodes'))} nodes",
        f"travel times: congestion factor {settings.get('congestion_factor', 1)}×, "
        f"walking {settings.get('walk_speed_kph', '?')} km/h",
    ]
    if areas.get("population_uncovered"):
        facts.append(f"{_fmt_int(areas['population_uncovered'])} people live beyond the street "
                     "network's coverage and are not counted as reached or as in a desert")  # fmt: skip
    return html.Div([
        html.Header([
            html.H1(manifest.get("title", manifest.get("region", "Access Atlas"))),
            html.Label("Region", htmlFor=REGION_SELECT_ID, className="atlas-label"),
            dcc.Dropdown(options=regions, value=manifest.get("region"), id=REGION_SELECT_ID,
                         clearable=False, style={"minWidth": "14rem"}),
        ], className="atlas-header"),  # fmt: skip
        fictional_banner(manifest),
        html.P(" · ".join(facts), className="atlas-facts"),
        html.H2("Who can reach care, and who cannot"),
        summary_table(manifest),
        html.P(f"Built {manifest.get('built_at', '?')} · layers: {', '.join(manifest.get('layers', {}))}",
               className="atlas-small"),  # fmt: skip
        html.H2("Sources"),
        sources_list(manifest),
    ], className="atlas-page")  # fmt: skip


def error_page(message: str) -> html.Div:
    """A page that says what is wrong and how to fix it (never a traceback)."""
    return html.Div([
        html.H1("Access Atlas"),
        html.Div([html.H2("The region's data cannot be shown"), html.P(message)],
                 className="atlas-error", role="alert"),  # fmt: skip
        html.P(["To build the built-in region run ", html.Code("./scripts/run.sh"),
                " or ", html.Code("access-atlas build geodata/configs/demo.yaml --overwrite"), "."]),
    ], className="atlas-page")  # fmt: skip
