"""Pieces every page shares: the fictional-data banner, manifest tables and the error page."""

from __future__ import annotations

from typing import Any

from dash import html

from etl.categories import CATEGORY_LABELS, MODE_LABELS
from viewmodel.serving import scrub_paths

FICTIONAL_BANNER_ID = "fictional-banner"
SUMMARY_TABLE_ID = "access-summary"


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


def _fmt_min(value: Any) -> str:
    return f"{value:.1f} min" if isinstance(value, int | float) else "—"


def summary_table(manifest: dict[str, Any]) -> html.Table:
    """People within and beyond each category's threshold, the threshold printed beside them."""
    summary = manifest.get("stages", {}).get("access", {}).get("summary", {})
    rows = []
    for key, entry in summary.items():
        if "threshold_min" not in entry:
            continue
        category, mode = key.rsplit("_", 1)
        rows.append(
            html.Tr(
                [
                    html.Th(CATEGORY_LABELS.get(category, category), scope="row"),
                    html.Td(MODE_LABELS.get(mode, mode)),
                    html.Td(f"{entry['threshold_min']:g} min"),
                    html.Td(_fmt_int(entry.get("people_within"))),
                    html.Td(_fmt_int(entry.get("people_in_desert"))),
                    html.Td(_fmt_min(entry.get("median_minutes"))),
                    html.Td(_fmt_int(entry.get("sites"))),
                ]
            )
        )
    names = (
        "Care",
        "Travel",
        "Threshold",
        "People within",
        "People beyond (desert)",
        "Median travel time",
        "Sites",
    )
    head = html.Thead(html.Tr([html.Th(h, scope="col") for h in names]))
    return html.Table([head, html.Tbody(rows)], id=SUMMARY_TABLE_ID, className="atlas-table")


def sources_list(manifest: dict[str, Any]) -> html.Table:
    """Every input with its source, date and licence."""
    rows = [
        html.Tr(
            [
                html.Td(i["role"]),
                html.Td(i.get("source") or "—"),
                html.Td(i.get("date") or "—"),
                html.Td(i.get("licence") or "—"),
                html.Td(html.Code(i["sha256"][:12])),
            ]
        )
        for i in manifest.get("inputs", [])
    ]
    head = html.Thead(
        html.Tr(
            [html.Th(h, scope="col") for h in ("Input", "Source", "Date", "Licence", "SHA-256")]
        )
    )
    return html.Table([head, html.Tbody(rows)], className="atlas-table atlas-table--small")


def error_page(message: str) -> html.Div:
    """A page that says what is wrong and how to fix it (never a traceback nor a server path)."""
    message = scrub_paths(message)
    return html.Div(
        [
            html.H1("Access Atlas"),
            html.Div(
                [html.H2("The region's data cannot be shown"), html.P(message)],
                className="atlas-error",
                role="alert",
            ),
            html.P(
                [
                    "To build the built-in region run ",
                    html.Code("./scripts/run.sh"),
                    " or ",
                    html.Code("access-atlas build geodata/configs/demo.yaml --overwrite"),
                    ".",
                ]
            ),
        ],
        className="atlas-page",
    )
