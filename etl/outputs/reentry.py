"""Release day: what the map page and the fact sheet say about each correctional facility.

Reads a bundle's ``facilities`` layer (written by :mod:`etl.inputs.facilities`) and its
providers layer, and turns them into plain values: for each facility, the nearest care of
each release-day kind by each mode (site name, address, minutes, whether the time is above
the desert threshold), and the facilities whose releases land in a desert. Pure (frames
in, values out); nothing about people (facility locations are public).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from etl.categories import CATEGORY_LABELS
from etl.engine.reentry import REENTRY_CATEGORIES

KIND_LABELS: Final[dict[str, str]] = {
    "prison": "Prison",
    "jail": "Jail",
    "detention": "Detention centre",
    "other": "Facility",
}
MODE_WORDS: Final[dict[str, str]] = {"drive": "by car", "walk": "on foot"}

#: What the release-day view calls each kind of care (short, person-first).
KIND_OF_CARE: Final[dict[str, str]] = {
    "methadone": "Methadone (opioid treatment program)",
    "buprenorphine": "Buprenorphine prescriber",
    "naltrexone": "Naltrexone provider",
    "naloxone": "Naloxone",
    "pharmacy": "Pharmacy",
}


@dataclass(frozen=True)
class Trip:
    """The nearest site of one kind by one mode, from one facility."""

    mode: str
    minutes: float | None
    site_id: str
    site_name: str
    site_address: str
    desert: bool | None
    threshold_min: float | None
    covered: bool

    @property
    def text(self) -> str:
        """E.g. "12 min by car" or "no route by car" or "beyond the streets mapped"."""
        words = MODE_WORDS.get(self.mode, self.mode)
        if not self.covered:
            return f"not reached {words} (the street data stops short of it)"
        if self.minutes is None:
            return f"no route {words}"
        return f"{self.minutes:g} min {words}"


@dataclass(frozen=True)
class CareRow:
    """One kind of care from one facility, by every mode."""

    category: str
    label: str
    trips: tuple[Trip, ...]


@dataclass(frozen=True)
class FacilityView:
    """One facility on release day."""

    id: str
    name: str
    kind: str
    kind_label: str
    city: str
    in_region: bool
    lon: float
    lat: float
    in_desert: bool
    desert_for: str
    care: tuple[CareRow, ...]


@dataclass(frozen=True)
class ReleaseDay:
    """Every facility of a region and what the view notes about the data.

    Attributes
    ----------
    facilities
        Facilities, those whose releases land in a desert first, then by name.
    categories
        The release-day kinds with travel times in this bundle.
    missing
        Release-day kinds without any list in this region: category -> why.
    partial
        Kinds whose list is partial: category -> the note (e.g. the vaccine-site pharmacies).
    source
        Where the facility list comes from (source and licence).
    """

    facilities: tuple[FacilityView, ...]
    categories: tuple[str, ...]
    missing: dict[str, str] = field(default_factory=dict)
    partial: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def in_desert(self) -> tuple[FacilityView, ...]:
        """Facilities whose releases land in a desert for at least one kind and mode."""
        return tuple(f for f in self.facilities if f.in_desert)


def _address(row: pd.Series) -> str:
    if bool(row.get("generalized", False)):
        return "exact location not shown (privacy)"
    parts = [str(row.get(k) or "").strip() for k in ("address", "city")]
    state_zip = " ".join(str(row.get(k) or "").strip() for k in ("state", "zip")).strip()
    text = ", ".join(p for p in [*parts, state_zip] if p and p.lower() != "nan")
    return text or "address not given"


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def release_day(
    facilities: pd.DataFrame,
    providers: pd.DataFrame,
    manifest: dict[str, Any],
    *,
    modes: list[str],
    thresholds: dict[tuple[str, str], float | None],
    partial: dict[str, str] | None = None,
) -> ReleaseDay:
    """Build the release-day view of a bundle (pure: frames and manifest in, values out).

    Parameters
    ----------
    facilities
        The ``facilities`` layer (a GeoDataFrame of points).
    providers
        The providers layer (``id``, ``name``, address columns, ``generalized``).
    manifest
        The bundle's manifest (inputs, access categories).
    modes
        The bundle's travel modes, in order.
    thresholds
        (category, mode) -> desert threshold in minutes (None for none).
    partial
        Category -> note, for kinds whose list is partial.

    Returns
    -------
    ReleaseDay
    """
    by_id = providers.set_index(providers["id"].astype(str)) if len(providers) else providers
    cats = tuple(
        c for c in REENTRY_CATEGORIES if any(f"t_{c}_{m}" in facilities.columns for m in modes)
    )
    views = []
    for _, row in facilities.iterrows():
        care = []
        for c in cats:
            trips = []
            for m in modes:
                if f"t_{c}_{m}" not in facilities.columns:
                    continue
                site = str(row.get(f"nearest_{c}_{m}") or "")
                covered = bool(row.get(f"covered_{m}", True))
                minutes = _num(row.get(f"t_{c}_{m}"))
                desert_v = row.get(f"desert_{c}_{m}")
                desert = None if desert_v is None or pd.isna(desert_v) else bool(desert_v)
                name, addr = "", ""
                if site and site in by_id.index:
                    prow = by_id.loc[site]
                    if isinstance(prow, pd.DataFrame):
                        prow = prow.iloc[0]
                    name, addr = str(prow.get("name") or ""), _address(prow)
                trips.append(
                    Trip(
                        mode=m,
                        minutes=minutes,
                        site_id=site,
                        site_name=name,
                        site_address=addr,
                        desert=desert if covered else None,
                        threshold_min=thresholds.get((c, m)),
                        covered=covered,
                    )
                )
            care.append(CareRow(category=c, label=KIND_OF_CARE.get(c, CATEGORY_LABELS[c]),
                                trips=tuple(trips)))  # fmt: skip
        geom = row.geometry
        views.append(
            FacilityView(
                id=str(row["id"]),
                name=str(row["name"]),
                kind=str(row.get("kind") or "other"),
                kind_label=KIND_LABELS.get(str(row.get("kind")), "Facility"),
                city=str(row.get("city") or ""),
                in_region=bool(row.get("in_region", True)),
                lon=float(geom.x),
                lat=float(geom.y),
                in_desert=bool(row.get("in_desert", False)),
                desert_for=str(row.get("desert_for") or ""),
                care=tuple(care),
            )
        )
    views.sort(key=lambda f: (not f.in_desert, f.name))
    missing = {
        c: f"no provider list for this region says where {KIND_OF_CARE[c].lower()} is"
        for c in REENTRY_CATEGORIES
        if c not in cats
    }
    source = ""
    for item in manifest.get("inputs", []):
        if str(item.get("role", "")).startswith("facilities"):
            bits = [item.get("source") or "", item.get("licence") or ""]
            source = "; ".join(b for b in bits if b)
            break
    return ReleaseDay(
        facilities=tuple(views),
        categories=cats,
        missing=missing,
        partial=dict(partial or {}),
        source=source,
    )


def partial_notes(providers: pd.DataFrame) -> dict[str, str]:
    """Category -> note for kinds whose sites come from a list marked partial.

    A provider source marked ``partial`` in the config tags its rows' ``list_note``; a
    category is partial when any of its sites carries one.
    """
    if "list_note" not in providers.columns or providers.empty:
        return {}
    notes = providers["list_note"].fillna("").astype(str)
    out: dict[str, str] = {}
    for cat, note in zip(providers["category"].astype(str), notes, strict=True):
        if note and cat not in out:
            out[cat] = note
    return out


def bundle_release_day(bundle: Any) -> ReleaseDay | None:
    """:func:`release_day` of an opened bundle (None when it has no ``facilities`` layer)."""
    if "facilities" not in bundle.layer_names:
        return None
    m = bundle.manifest
    settings = m.get("settings", {})
    modes = list(settings.get("modes") or ["drive", "walk"])
    th = settings.get("thresholds_min", {}) or {}
    thresholds = {(c, md): th.get(c, {}).get(md) for c in REENTRY_CATEGORIES for md in modes}
    providers = (
        bundle.read_layer("providers") if "providers" in bundle.layer_names else pd.DataFrame()
    )
    return release_day(
        bundle.read_layer("facilities"),
        providers,
        m,
        modes=modes,
        thresholds=thresholds,
        partial=partial_notes(providers),
    )


def release_day_text(view: ReleaseDay, *, limit: int = 12) -> list[tuple[str, list[str]]]:
    """The fact sheet's release-day section as (heading, lines) blocks.

    The first block lists the facilities whose releases land in a desert; then one block
    per facility (up to ``limit``, deserts first): the nearest care of each kind with its
    address and the time by each mode.
    """
    deserts = view.in_desert
    n = len(view.facilities)
    head = [
        f"{n} prisons, jails or detention centres in or near the region; {len(deserts)} "
        f"release{'s' if len(deserts) == 1 else ''} people into a desert (time above the "
        "threshold) for at least one kind of care."
    ]
    head += [f"• {f.name}: {f.desert_for}" for f in deserts]
    blocks: list[tuple[str, list[str]]] = [("Facilities whose releases land in a desert", head)]
    for f in view.facilities[:limit]:
        where = f.kind_label + (f", {f.city}" if f.city else "")
        if not f.in_region:
            where += ", beyond the region (within its buffer)"
        lines = [where]
        for row in f.care:
            by_site: dict[tuple[str, str], list[str]] = {}
            for t in row.trips:
                flag = " (desert)" if t.desert else ""
                by_site.setdefault((t.site_name, t.site_address), []).append(t.text + flag)
            for (name, addr), times in by_site.items():
                site = f" → {name}, {addr}" if name else ""
                lines.append(f"{row.label}: {'; '.join(times)}{site}")
            note = view.partial.get(row.category)
            if note:
                lines[-1] += f" [partial list: {note}]"
        for cat, why in view.missing.items():
            lines.append(f"{cat.capitalize()}: {why}.")
        blocks.append((f.name, lines))
    if n > limit:
        blocks.append(("More", [f"{n - limit} more facilities in the app and the exports."]))
    return blocks


def release_day_figure(view: ReleaseDay, *, title: str, fictional: bool, source: str) -> Any:
    """A Letter page with the release-day section of the fact sheet (matplotlib Figure)."""
    import textwrap

    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 11), facecolor="white")
    fig.text(0.05, 0.962, "Release day: from prison or jail to care", fontsize=18,
             fontweight="bold", color="#1b2a41", va="top")  # fmt: skip
    sub = title + (" — FICTIONAL DATA, an invented region" if fictional else "")
    fig.text(0.05, 0.928, sub, fontsize=11, color="#1b2a41", va="top")
    intro = textwrap.wrap(
        "Travel time from each facility's door to the nearest care of each kind, by the rule "
        "used for people (nearest street, walked to it). A desert: time above the threshold. "
        "People leaving need a medication for opioid use disorder and naloxone on the day "
        "they walk out.",
        130,
    )
    fig.text(0.05, 0.908, "\n".join(intro), fontsize=8, color="#555", va="top")
    y = 0.862
    for head, lines in release_day_text(view):
        if y < 0.08:
            fig.text(0.05, y, "… (more in the app and the exports)", fontsize=7.5, color="#555")
            break
        fig.text(0.05, y, head, fontsize=9.5, fontweight="bold", color="#1b2a41", va="top")
        y -= 0.018
        for line in lines:
            wrapped = textwrap.wrap(line, 125) or [""]
            fig.text(0.065, y, "\n".join(wrapped), fontsize=7.2, color="#333", va="top",
                     linespacing=1.25)  # fmt: skip
            y -= 0.0125 * len(wrapped) + 0.002
        y -= 0.008
    foot = textwrap.wrap(("Facilities: " + view.source + ". " if view.source else "") + source, 160)
    fig.text(0.05, 0.02 + 0.009 * len(foot), "\n".join(foot), fontsize=6, color="#555", va="top")
    return fig


_FACILITY_FIELDS: Final[dict[str, tuple[str, str]]] = {
    "id": ("", "facility identifier (list:id)"),
    "name": ("", "facility name as the list gives it (several at one point joined by ' / ')"),
    "kind": ("", "prison, jail, detention or other"),
    "type": ("", "facility type as the list gives it"),
    "county": ("", "county as the list gives it"),
    "in_region": ("yes/no", "inside the region's outline (else within its buffer)"),
    "merged": ("count", "other rows of the list at the same point folded into this one"),
    "licence": ("", "licence of the facility list"),
    "in_desert": ("yes/no", "releases land in a desert for at least one kind of care and mode"),
    "desert_for": ("", "the kinds of care and modes whose time is above the threshold"),
}


def extra_field(
    layer: str, column: str, thresholds: Mapping[str, Mapping[str, float]] | None = None
) -> tuple[str, str] | None:
    """``(unit, meaning)`` of a facilities-layer field, else None."""
    import re

    from etl.categories import CATEGORIES

    cats = "|".join(sorted(CATEGORIES, key=len, reverse=True))
    m = re.fullmatch(rf"(?P<metric>t|nearest|desert)_(?P<cat>{cats})_(?P<mode>drive|walk)", column)
    if layer != "facilities":
        return None
    if column in _FACILITY_FIELDS:
        return _FACILITY_FIELDS[column]
    cov = re.fullmatch(r"covered_(?P<mode>drive|walk)", column)
    if cov is not None:
        return "yes/no", f"the {cov['mode']} network reaches the facility (nearest node close)"
    if m is None:
        return None
    label = CATEGORY_LABELS.get(m["cat"], m["cat"]).lower()
    how = "by car" if m["mode"] == "drive" else "on foot"
    if m["metric"] == "t":
        return "minutes", (f"travel time {how} from the facility to the nearest {label} "
                           "(empty: not covered or no route)")  # fmt: skip
    if m["metric"] == "nearest":
        return "", f"id of the {label} nearest to the facility {how} (providers layer)"
    limit = (thresholds or {}).get(m["cat"], {}).get(m["mode"])
    within = f"{limit:g} minutes" if limit is not None else "the threshold"
    return "yes/no", f"the facility is more than {within} {how} from any {label} (a desert)"
