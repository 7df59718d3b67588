"""Write the per-build data quality report for providers: HTML for people, CSV for tools.

The report answers, per source: how many rows came in and how many sites went out; how many
rows were rejected (and why), lay outside the region and its buffer, were merged into another
site, or were dropped by the config's ``category_map``; the mix of geocode qualities; and
which rows were merged into which site. The counts add up:
``rows_in == rows_out + rejected + outside + merged + dropped``.

Files written (:func:`write_quality_report`):

``providers_quality.csv``
    one row per source (and a ``TOTAL`` row) with the counts and one ``quality_<level>``
    column per geocode quality;
``providers_rejects.csv``
    every rejected row: source, file, row (as a spreadsheet shows it), reason, raw fields;
``providers_merges.csv``
    every merged row and the site it joined;
``providers_off_network.csv``
    every site farther than ``network.max_snap_m`` from a mode's streets, with the reason;
``providers_cleaned.csv``
    where any input cell held control characters (NUL, CR/LF, C0/C1 controls), each such
    cell: source, file, row, column and the characters found, which were replaced by a space
    when the file was read (the ``cleaned`` count of each source);
``providers_quality.html``
    the same in one self-contained page (rejects listed up to ``max_html_rows``).
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pandas as pd

from etl.categories import CATEGORY_LABELS
from etl.inputs.geocode import QUALITY_LEVELS
from etl.outputs.cells import safe_table

if TYPE_CHECKING:
    from etl.inputs.providers import ProvidersResult

log = logging.getLogger(__name__)

COUNT_COLUMNS: Final[tuple[str, ...]] = (
    "rows_in",
    "rows_out",
    "rejected",
    "outside",
    "merged",
    "dropped",
    "swapped",
    "cleaned",
)

QUALITY_LABELS: Final[dict[str, str]] = {
    "source": "coordinates given by the source",
    "address_point": "address point",
    "street": "interpolated along the street",
    "street_center": "street, position along it unknown",
    "zip": "ZIP code centre",
    "city": "city centre",
}

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:0.25rem 0.5rem;text-align:left;font-size:0.9rem}
th{background:#f2f2f2}td.num,th.num{text-align:right}
.ok{color:#1a7f37}.bad{color:#b42318}
"""


def summary_table(result: ProvidersResult) -> pd.DataFrame:
    """Return one row per source plus a TOTAL row with the counts and the quality mix.

    Parameters
    ----------
    result
        What :func:`etl.inputs.providers.load_providers` returned.

    Returns
    -------
    pandas.DataFrame
        Columns: source, file, format, :data:`COUNT_COLUMNS`, ``quality_<level>`` for each
        level in :data:`etl.inputs.geocode.QUALITY_LEVELS`, and ``adds_up`` (the accounting check).
    """
    rows = []
    for name, rep in result.report.items():
        row = {"source": name, "file": rep.get("file", ""), "format": rep.get("format", "")}
        for c in COUNT_COLUMNS:
            row[c] = int(rep.get(c, 0))
        for q in QUALITY_LEVELS:
            row[f"quality_{q}"] = int(rep.get("quality", {}).get(q, 0))
        rows.append(row)
    cols = ["source", "file", "format", *COUNT_COLUMNS, *(f"quality_{q}" for q in QUALITY_LEVELS)]
    table = pd.DataFrame(rows, columns=cols)
    if len(table):
        total = {c: int(table[c].sum()) for c in cols[3:]}
        table = pd.concat(
            [table, pd.DataFrame([{"source": "TOTAL", "file": "", "format": "", **total}])],
            ignore_index=True,
        )
    out = (
        table["rows_out"]
        + table["rejected"]
        + table["outside"]
        + table["merged"]
        + table["dropped"]
    )
    table["adds_up"] = out == table["rows_in"]
    return table


def reasons_table(result: ProvidersResult) -> pd.DataFrame:
    """Return reject counts per source and reason, most frequent first."""
    rej = result.rejects
    if rej is None or not len(rej):
        return pd.DataFrame(columns=["source", "reason", "rows"])
    return (
        rej.groupby(["source", "reason"], sort=False)
        .size()
        .rename("rows")
        .reset_index()
        .sort_values(["source", "rows"], ascending=[True, False], kind="stable")
        .reset_index(drop=True)
    )


def layer_quality_table(result: ProvidersResult) -> pd.DataFrame:
    """Return the geocode-quality mix of the providers layer per category."""
    p = result.providers
    if not len(p):
        return pd.DataFrame(columns=["category", *QUALITY_LEVELS, "sites"])
    table = pd.crosstab(p["category"], p["geocode_quality"])
    table = table.reindex(columns=[q for q in QUALITY_LEVELS], fill_value=0)
    table["sites"] = table.sum(axis=1)
    return table.reset_index()


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, border=0, na_rep="")


def render_html(
    result: ProvidersResult,
    *,
    title: str = "Providers: data quality report",
    region: str = "",
    max_html_rows: int = 500,
    off_network: list[dict] | None = None,
    max_snap_m: float | None = None,
) -> str:
    """Return the report as one self-contained HTML page.

    Parameters
    ----------
    result
        What :func:`etl.inputs.providers.load_providers` returned.
    title
        Page title.
    region
        Region name shown under the title.
    max_html_rows
        List at most this many rejected and merged rows (the CSV files hold them all).
    off_network
        Sites farther than ``max_snap_m`` from a mode's streets (``id``, ``name``,
        ``category``, ``mode``, ``snap_m``), left out of that mode's travel times.
    max_snap_m
        The distance, metres, printed with them.

    Returns
    -------
    str
        The HTML text.
    """
    summary = summary_table(result)
    esc = html.escape
    built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{esc(region)} · built {esc(built)}</p>" if region else f"<p>built {esc(built)}</p>",
    ]
    ok = bool(summary["adds_up"].all()) if len(summary) else True
    parts.append(
        '<p class="ok">Every input row is accounted for: rows in = sites out + rejected + outside'
        " + merged + dropped.</p>"
        if ok
        else '<p class="bad">The counts do not add up: please report this as a bug.</p>'
    )
    parts += ["<h2>Rows per source</h2>", _html_table(summary.drop(columns=["adds_up"]))]
    parts += [
        "<p>outside: rows located beyond the region and its buffer (not listed). "
        "merged: rows folded into another site (same site in two lists, or practitioners "
        "at one address). dropped: categories the config maps to 'drop'.</p>"
    ]
    parts += ["<h2>Geocode quality of the sites, per category</h2>"]
    lq = layer_quality_table(result)
    lq["category"] = [CATEGORY_LABELS.get(c, c) for c in lq["category"]]
    parts.append(_html_table(lq))
    parts.append(
        "<ul>"
        + "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in QUALITY_LABELS.items())
        + "</ul>"
    )
    parts += ["<h2>Rejected rows: reasons</h2>", _html_table(reasons_table(result))]
    rej = result.rejects
    if rej is not None and len(rej):
        shown = rej.head(max_html_rows)
        more = (
            f" (first {max_html_rows:,} of {len(rej):,}; all in providers_rejects.csv)"
            if len(rej) > max_html_rows
            else ""
        )
        parts += [f"<h2>Rejected rows{esc(more)}</h2>", _html_table(shown)]
    merges = result.merges
    if merges is not None and len(merges):
        more = (
            f" (first {max_html_rows:,} of {len(merges):,})" if len(merges) > max_html_rows else ""
        )
        parts += [f"<h2>Merged rows{esc(more)}</h2>", _html_table(merges.head(max_html_rows))]
    cleaned = getattr(result, "cleaned", None)
    if cleaned is not None and len(cleaned):
        more = (
            f" (first {max_html_rows:,} of {len(cleaned):,}; all in providers_cleaned.csv)"
            if len(cleaned) > max_html_rows
            else ""
        )
        rows = cleaned.groupby("source")["row"].nunique()
        parts += [
            f"<h2>Control characters replaced{esc(more)}</h2>",
            f"<p>{len(cleaned):,} cells in {int(rows.sum()):,} rows held control characters "
            "(NUL, line breaks, other C0/C1 controls); each was replaced by a space when the "
            "file was read.</p>",
            _html_table(cleaned.head(max_html_rows)),
        ]
    if off_network:
        far = f"more than {max_snap_m:g} m" if max_snap_m else "too far"
        parts += [
            "<h2>Sites beyond the street network</h2>",
            f'<p class="bad">{len({r["id"] for r in off_network}):,} sites lie {esc(far)} '
            "from a mode's streets and are left out of that mode's travel times (listed in "
            "providers_off_network.csv). Use an OSM extract that covers the region plus its "
            "buffer: see README 'Street extracts'.</p>",
            _html_table(off_network_table(off_network)),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def off_network_table(off_network: list[dict]) -> pd.DataFrame:
    """One row per (site, mode) beyond the street network, with the reason in words."""
    frame = pd.DataFrame(off_network, columns=["id", "name", "category", "mode", "snap_m"])
    how = {"drive": "by car", "walk": "on foot"}
    frame["reason"] = [
        f"not routed {how.get(r['mode'], r['mode'])}: "
        + (
            f"{r['snap_m'] / 1000:.1f} km from the street network"
            if r.get("snap_m") is not None
            else "no street network nearby"
        )
        for r in off_network
    ]
    return frame


def write_quality_report(
    result: ProvidersResult,
    out_dir: str | Path,
    *,
    title: str = "Providers: data quality report",
    region: str = "",
    max_html_rows: int = 500,
    off_network: list[dict] | None = None,
    max_snap_m: float | None = None,
) -> dict[str, Path]:
    """Write the HTML and CSV quality report files into a folder.

    Parameters
    ----------
    result
        What :func:`etl.inputs.providers.load_providers` returned.
    out_dir
        Folder to write into (created if missing).
    title, region, max_html_rows, off_network, max_snap_m
        As for :func:`render_html`.

    Returns
    -------
    dict
        ``{"html", "summary", "rejects", "merges"}`` → the paths written, and
        ``"off_network"`` where ``off_network`` is given (even empty), ``"cleaned"`` where
        any input cell held control characters.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": out / "providers_quality.html",
        "summary": out / "providers_quality.csv",
        "rejects": out / "providers_rejects.csv",
        "merges": out / "providers_merges.csv",
    }
    # In a stage command's build these are hard links to the current bundle's files: remove
    # them, never write through them (and no list of cleaned cells of an earlier build stays).
    for name in ("providers_off_network.csv", "providers_cleaned.csv", *map(str, paths.values())):
        (out / Path(name).name).unlink(missing_ok=True)
    if off_network is not None:
        paths["off_network"] = out / "providers_off_network.csv"
        safe_table(off_network_table(off_network)).to_csv(paths["off_network"], index=False)
    safe_table(summary_table(result)).to_csv(paths["summary"], index=False)
    rejects = result.rejects if result.rejects is not None else pd.DataFrame()
    safe_table(rejects).to_csv(paths["rejects"], index=False)
    merges = result.merges if result.merges is not None else pd.DataFrame()
    safe_table(merges).to_csv(paths["merges"], index=False)
    cleaned = getattr(result, "cleaned", None)
    if cleaned is not None and len(cleaned):
        paths["cleaned"] = out / "providers_cleaned.csv"
        safe_table(cleaned).to_csv(paths["cleaned"], index=False)
    paths["html"].write_text(
        render_html(
            result,
            title=title,
            region=region,
            max_html_rows=max_html_rows,
            off_network=off_network,
            max_snap_m=max_snap_m,
        ),
        encoding="utf-8",
    )
    log.info(
        "write_quality_report wrote %s files to %s (%s rejects, %s merges)",
        len(paths),
        out,
        f"{len(rejects):,}",
        f"{len(merges):,}",
    )
    return paths
