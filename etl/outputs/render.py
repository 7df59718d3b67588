"""Render maps and a one-page fact sheet on the server (matplotlib, no browser), PNG or PDF.

:func:`render_map` draws the current map — travel time to the nearest site of one category
by one mode — with a title, legend, scale bar (kilometres and miles), north arrow, a source
and date line, the region's own street network as the basemap, and a large "FICTIONAL DATA"
stamp for an invented region. :func:`fact_sheet` lays out one Letter page in plain language:
key numbers with the threshold printed beside each, a map, and a chart of people by
travel-time band, like the county fact sheets coalitions print.

Colours: categories keep their Okabe-Ito colour and marker shape (:mod:`etl.categories`);
travel time uses the ColorBrewer ``YlGnBu`` sequence (light = near, dark = far), which stays
readable with the common colour-vision deficiencies and in greyscale print.

Settings
--------
MAP_DPI : int
    Resolution of PNG output and of the rasterised street layer in PDFs.
"""

from __future__ import annotations

import itertools
import logging
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrow, Patch, Rectangle
from pyproj import CRS, Transformer

from etl import __version__
from etl._errors import BundleError, ExportError
from etl.bundle.coverage import cover_distance
from etl.bundle.store import Bundle
from etl.categories import (
    CATEGORIES,
    CATEGORY_COLOURS,
    CATEGORY_LABELS,
    CATEGORY_SYMBOLS,
    MODE_LABELS,
    MODES,
)
from etl.engine.counting import people_times as counted_times
from etl.fips import geoid_counties
from etl.inputs.counties import NO_COUNTY_TEXT, county_label, overdose_text, region_overdose
from etl.outputs.export import (
    DesertAt,
    at_threshold,
    count_places,
    desert_at,
    mode_coverage,
    view_text,
)
from etl.outputs.reentry import bundle_release_day, release_day_figure
from etl.outputs.whatif import WhatIf, apply_to_frames, change_frame

logger = logging.getLogger(__name__)

MAP_DPI: int = 200

#: Layers :func:`render_map` can draw, bottom to top.
MAP_LAYERS: Final[tuple[str, ...]] = (
    "areas", "grid", "streets", "isochrones", "deserts", "barriers", "region", "providers",
)  # fmt: skip
DEFAULT_LAYERS: Final[tuple[str, ...]] = ("areas", "streets", "region", "providers")

#: Travel-time colours, near to far (ColorBrewer YlGnBu, 7 classes).
TIME_COLOURS: Final[tuple[str, ...]] = (
    "#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#0c2c84",
)  # fmt: skip
NO_DATA_COLOUR: Final[str] = "#e6e6e6"
BACKGROUND: Final[str] = "#f7f7f4"
INK: Final[str] = "#222222"
MUTED: Final[str] = "#5a5a5a"
HEADER: Final[str] = "#0c2c84"
DESERT_EDGE: Final[str] = "#b2182b"
#: What-if overlays (Okabe-Ito: bluish green, vermillion; safe for colour-blind readers).
GAIN_COLOUR: Final[str] = "#009e73"
LOSS_COLOUR: Final[str] = "#d55e00"
ADDED_COLOUR: Final[str] = "#000000"
STAMP: Final[str] = "#c0392b"
_LETTER_LANDSCAPE: Final[tuple[float, float]] = (11.0, 8.5)
_LETTER_PORTRAIT: Final[tuple[float, float]] = (8.5, 11.0)

_MARKERS: Final[dict[str, str]] = {
    "square": "s", "circle": "o", "triangle": "^", "diamond": "D", "cross": "P",
    "star": "*", "hexagon": "h",
}  # fmt: skip

_MAJOR: Final[frozenset[str]] = frozenset(
    {"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link"}
)
_MEDIUM: Final[frozenset[str]] = frozenset(
    {"secondary", "secondary_link", "tertiary", "tertiary_link"}
)
_PATHS: Final[frozenset[str]] = frozenset(
    {"footway", "path", "steps", "cycleway", "pedestrian", "track", "bridleway", "corridor"}
)


# --------------------------------------------------------------------------------------------
# public API


def render_map(
    bundle: Bundle,
    out_path: str | Path,
    *,
    category: str,
    mode: str,
    layers: Sequence[str] = DEFAULT_LAYERS,
    title: str | None = None,
    dpi: int | None = None,
    threshold: float | None = None,
    scenario: str | WhatIf | None = None,
) -> Path:
    """Render the map of one category and mode to PNG or PDF (by the file suffix).

    Parameters
    ----------
    bundle
        The opened region bundle.
    out_path
        ``.png`` or ``.pdf`` file to write (its folder is created).
    category
        Care category (one of :data:`etl.categories.CATEGORIES`).
    mode
        ``"drive"`` or ``"walk"``.
    layers
        Layers to draw, from :data:`MAP_LAYERS`; layers the bundle lacks are skipped.
    title
        Title; by default the category and mode in plain language.
    dpi
        Resolution of PNGs and of the rasterised streets (default :data:`MAP_DPI`).
    threshold
        The desert threshold on screen (minutes): the desert is drawn and counted at it,
        recomputed from the bundle's per-person and per-cell times; None: the configured one.
    scenario
        The What-if scenario open on the page: a :class:`~etl.outputs.whatif.WhatIf`
        (evaluated for this category, mode and threshold) is drawn and counted — its times,
        desert, added and closed sites, the land leaving the desert, its figures in the
        legend; a one-line text (a scenario that could not be evaluated) makes the map say
        its figures are the baseline.

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    ExportError
        Unknown suffix, category, mode or layer, or no travel times for the pair.
    """
    out_path = Path(out_path)
    suffix = _check_suffix(out_path, (".png", ".pdf"))
    layers = _check_layers(layers)
    whatif = scenario if isinstance(scenario, WhatIf) else None
    data = MapData.load(bundle, category=category, mode=mode, threshold=threshold,
                        whatif=whatif)  # fmt: skip
    fig = Figure(figsize=_LETTER_LANDSCAPE, facecolor="white")
    m = bundle.manifest
    subtitle = f"{m.get('title', m.get('region'))} · {data.view}"
    if data.whatif is not None:
        subtitle += f" · with {data.whatif.title}"
    elif scenario:
        subtitle += f" · baseline, without the What-if scenario {scenario}"
    heading = title or f"{data.label}: travel time {data.how}"
    fig.text(0.035, 0.955, heading, fontsize=19, fontweight="bold", color=INK, va="top")
    fig.text(0.035, 0.905, subtitle, fontsize=11.5, color=MUTED, va="top")
    ax = fig.add_axes((0.03, 0.1, 0.64, 0.78))
    legend_ax = fig.add_axes((0.695, 0.1, 0.285, 0.78))
    legend_ax.set_axis_off()
    handles = draw_map(ax, data, layers=layers, dpi=dpi or MAP_DPI)
    scale_bar(ax)
    north_arrow(ax, data.crs)
    _legend(legend_ax, data, handles)
    fig.text(0.035, 0.025, "\n".join(textwrap.wrap(source_line(m), 190)), fontsize=7,
             color=MUTED, va="bottom")  # fmt: skip
    if data.fictional:
        fictional_stamp(fig, ax)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, format=suffix[1:], dpi=dpi or MAP_DPI, facecolor="white",
                metadata=_file_metadata(heading, m, suffix))  # fmt: skip
    logger.info("render_map: %s (%s; layers %s)", out_path, data.view, ", ".join(layers))
    return out_path


def fact_sheet(
    bundle: Bundle,
    out_pdf: str | Path,
    *,
    category: str | None = None,
    mode: str | None = None,
    dpi: int | None = None,
    threshold: float | None = None,
    scenario: str | WhatIf | None = None,
) -> Path:
    """Write a one-page fact sheet (Letter, portrait) for the region.

    Parameters
    ----------
    bundle
        The opened region bundle.
    out_pdf
        ``.pdf`` (or ``.png``) file to write.
    category, mode
        The pair shown on the map; default: methadone by car if present, else the first
        pair with a desert threshold.
    dpi
        Resolution of the rasterised streets (and of a PNG).
    threshold
        The desert threshold on screen (minutes) for the pair on the map: its map and its
        key number are counted at it (:func:`etl.outputs.export.desert_at`); other key
        numbers keep their configured thresholds, each printed beside it.
    scenario
        The What-if scenario open on the page: a :class:`~etl.outputs.whatif.WhatIf` for
        the pair on the map is drawn on its map and told in a "What-if scenario" note with
        the panel's figures (the key numbers stay today's, and say so); a one-line text
        makes the sheet say its figures are the baseline.

    Returns
    -------
    pathlib.Path
        ``out_pdf``.
    """
    out_pdf = Path(out_pdf)
    suffix = _check_suffix(out_pdf, (".pdf", ".png"))
    m = bundle.manifest
    summary = m.get("stages", {}).get("access", {}).get("summary", {})
    category, mode = _headline_pair(summary, category, mode)
    whatif = scenario if isinstance(scenario, WhatIf) else None
    data = MapData.load(bundle, category=category, mode=mode, threshold=threshold,
                        whatif=whatif)  # fmt: skip
    fig = Figure(figsize=_LETTER_PORTRAIT, facecolor="white")

    # header band
    fig.patches.append(Rectangle((0, 0.885), 1, 0.115, transform=fig.transFigure,
                                 facecolor=HEADER, edgecolor="none", zorder=0))  # fmt: skip
    fig.text(0.05, 0.968, "Reaching care for opioid use disorder", fontsize=20,
             fontweight="bold", color="white", va="top")  # fmt: skip
    fig.text(0.05, 0.928, str(m.get("title", m.get("region"))), fontsize=14, color="white",
             va="top")  # fmt: skip
    fig.text(0.95, 0.928, f"Fact sheet · data built {_date(m.get('built_at'))}", fontsize=9,
             color="#dde6f5", va="top", ha="right")  # fmt: skip
    if data.fictional:
        fig.patches.append(Rectangle((0, 0.857), 1, 0.028, transform=fig.transFigure,
                                     facecolor=STAMP, edgecolor="none"))  # fmt: skip
        fig.text(0.5, 0.871, "FICTIONAL DATA — an invented region for demonstration; "
                 "no real place, provider or person", fontsize=9.5, fontweight="bold",
                 color="white", ha="center", va="center")  # fmt: skip

    # key numbers
    cards = key_numbers(bundle, view=data.desert)
    top = 0.862 if not data.fictional else 0.842
    _number_cards(fig, cards, top=top)

    # map and chart
    map_ax = fig.add_axes((0.04, 0.285, 0.52, 0.34))
    draw_map(map_ax, data, layers=("areas", "streets", "region", "providers"),
             dpi=dpi or MAP_DPI, light=True)  # fmt: skip
    scale_bar(map_ax, fontsize=6.5)
    north_arrow(map_ax, data.crs, size=0.07)
    if data.whatif is not None:
        view = f"{data.view}; with {data.whatif.title}"
    elif scenario:
        view = f"{data.view}; baseline, without the What-if scenario {scenario}"
    else:
        view = data.view
    # With a scenario the line names it instead of repeating the care's long label.
    line = view if view != data.view else f"{data.label}; {view}"
    view_lines = textwrap.wrap(line, 92)[:3]
    lift = 0.0115 * (len(view_lines) - 1)  # a longer view line pushes the title up
    title = _wrap(f"Travel time {data.how} to the nearest {_site_noun(category)}", 52)
    fig.text(0.04, 0.655 + lift, title, fontsize=9.8, fontweight="bold", color=INK,
             va="bottom", linespacing=1.15)  # fmt: skip
    fig.text(0.04, 0.637, "\n".join(view_lines), fontsize=7.5, color=MUTED, va="bottom",
             linespacing=1.2)  # fmt: skip
    _map_key(fig, data, (0.04, 0.215, 0.52, 0.05))
    chart_ax = fig.add_axes((0.745, 0.36, 0.215, 0.265))
    _band_chart(chart_ax, bundle, fig, edges=data.edges)
    if data.fictional:
        fictional_stamp(fig, map_ax, fontsize=30)

    # notes
    notes = _notes(bundle, data)
    if data.whatif is not None:
        notes.insert(0, _whatif_note(data.whatif))
    y = 0.192
    for head, body in notes:
        fig.text(0.04, y, head, fontsize=8.2, fontweight="bold", color=INK, va="top")
        wrapped = textwrap.wrap(body, 150)
        fig.text(0.04, y - 0.0135, "\n".join(wrapped), fontsize=7.2, color=MUTED, va="top",
                 linespacing=1.3)  # fmt: skip
        y -= 0.019 + 0.0118 * len(wrapped)
    source = textwrap.wrap(source_line(m), 165)
    fig.text(0.04, min(y - 0.004, 0.012 + 0.0098 * len(source)), "\n".join(source),
             fontsize=6, color=MUTED, va="top", linespacing=1.25)  # fmt: skip
    out_pdf.parent.mkdir(parents=True, exist_ok=True)
    # Re-entry: a second page, release day, where the region has prisons and jails.
    release = bundle_release_day(bundle) if suffix == ".pdf" else None
    if release is not None and release.facilities:
        from matplotlib.backends.backend_pdf import PdfPages

        page2 = release_day_figure(release, title=str(m.get("title", m.get("region"))),
                                   fictional=data.fictional, source=source_line(m))  # fmt: skip
        meta = _file_metadata(f"Fact sheet: {m.get('title')}", m, suffix)
        with PdfPages(out_pdf, metadata=meta) as pdf:
            pdf.savefig(fig, dpi=dpi or MAP_DPI, facecolor="white")
            pdf.savefig(page2, dpi=dpi or MAP_DPI, facecolor="white")
    else:
        meta = _file_metadata(f"Fact sheet: {m.get('title')}", m, suffix)
        fig.savefig(out_pdf, format=suffix[1:], dpi=dpi or MAP_DPI, facecolor="white",
                    metadata=meta)  # fmt: skip
    logger.info("fact_sheet: %s (%d key numbers; map %s by %s)", out_pdf, len(cards), category,
                mode)  # fmt: skip
    return out_pdf


@dataclass
class MapData:
    """What a map of one (category, mode) needs, projected to the region's CRS."""

    bundle: Bundle
    category: str
    mode: str
    crs: str
    label: str
    how: str
    threshold: float | None
    fictional: bool
    column: str
    frames: dict[str, gpd.GeoDataFrame]
    edges: np.ndarray
    threshold_text: str = ""
    desert: DesertAt | None = None
    #: The What-if scenario drawn and counted (None: today's sites).
    whatif: WhatIf | None = None

    @property
    def view(self) -> str:
        """The view in one line: ``"Methadone, by car, 15-minute threshold"``."""
        return view_text(self.category, self.mode, self.threshold)

    @classmethod
    def load(
        cls,
        bundle: Bundle,
        *,
        category: str,
        mode: str,
        threshold: float | None = None,
        whatif: WhatIf | None = None,
    ) -> MapData:
        """Read and project the layers of a bundle for one (category, mode).

        With ``threshold`` (minutes, the one on screen) the pair's desert is recomputed at
        it (:func:`etl.outputs.export.desert_at`): drawn, counted and printed at it. With
        ``whatif`` (evaluated for this pair and threshold) the areas' times and the desert
        are the scenario's (:func:`etl.outputs.whatif.apply_to_frames`).

        Raises
        ------
        ExportError
            For an unknown category or mode, or a pair the bundle has no travel times for.
        """
        if category not in CATEGORIES:
            msg = f"unknown category {category!r}; valid: {', '.join(CATEGORIES)}"
            raise ExportError(msg)
        modes = bundle.manifest.get("settings", {}).get("modes") or list(MODES)
        if mode not in MODES or mode not in modes:
            msg = f"unknown mode {mode!r}; this bundle has: {', '.join(modes)}"
            raise ExportError(msg)
        column = f"t_{category}_{mode}"
        areas = bundle.read_layer("areas") if "areas" in bundle.layer_names else None
        if areas is None or column not in areas.columns:
            pairs = sorted(c[2:] for c in (areas.columns if areas is not None else [])
                           if str(c).startswith("t_"))  # fmt: skip
            msg = (
                f"no travel times for {category} by {mode} in bundle "
                f"{bundle.manifest.get('region')!r} (no such sites); available: "
                f"{', '.join(pairs) or 'none'}"
            )
            raise ExportError(msg)
        crs = str(bundle.manifest.get("crs") or _utm_for(areas))
        frames: dict[str, gpd.GeoDataFrame] = {"areas": areas.to_crs(crs)}
        for name in ("grid", "isochrones", "deserts", "barriers", "region", "providers"):
            if name in bundle.layer_names:
                frames[name] = bundle.read_layer(name).to_crs(crs)
        desert = None
        if threshold is not None:
            desert = desert_at(bundle, category, mode, threshold)
            if "deserts" in frames:
                frames["deserts"] = at_threshold(
                    bundle, {"deserts": frames["deserts"]}, desert
                )["deserts"].to_crs(crs)
        else:
            thresholds = bundle.manifest.get("settings", {}).get("thresholds_min", {})
            threshold = thresholds.get(category, {}).get(mode)
        if whatif is not None and (whatif.category, whatif.mode) != (category, mode):
            logger.info("MapData: the scenario was evaluated for %s/%s, not %s/%s; not drawn",
                        whatif.category, whatif.mode, category, mode)  # fmt: skip
            whatif = None
        if whatif is not None:
            frames = apply_to_frames(frames, whatif, column=column, crs=crs)
        data = cls(
            bundle=bundle, category=category, mode=mode, crs=crs,
            label=CATEGORY_LABELS[category], how="by car" if mode == "drive" else "on foot",
            threshold=None if threshold is None else float(threshold),
            fictional=bool(bundle.manifest.get("fictional")), column=column, frames=frames,
            edges=time_edges(bundle.manifest.get("settings", {}).get("bands_min") or (10, 20, 30),
                             threshold),
            desert=desert, whatif=whatif,
        )  # fmt: skip
        data.threshold_text = _threshold_text(data)
        return data

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """Map extent (the region's outline, else the areas), with a small margin."""
        frame = self.frames.get("region", self.frames["areas"])
        x0, y0, x1, y1 = frame.total_bounds
        pad = 0.03 * max(x1 - x0, y1 - y0)
        return x0 - pad, y0 - pad, x1 + pad, y1 + pad


def draw_map(
    ax: Axes, data: MapData, *, layers: Sequence[str], dpi: int = MAP_DPI, light: bool = False
) -> list[Any]:
    """Draw the map layers on ``ax``; return legend handles (label, artist) for the key."""
    handles: list[Any] = []
    x0, y0, x1, y1 = data.extent
    ax.set_facecolor(BACKGROUND)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor("#9a9a9a")
        spine.set_linewidth(0.6)
    lw_scale = 0.7 if light else 1.0
    for layer in layers:
        if layer not in ("areas", "streets") and layer not in data.frames:
            logger.info("render: layer %r is not in this bundle; skipped", layer)
    if "areas" in layers:
        _draw_choropleth(ax, data.frames["areas"], data.column, data.edges)
    if "grid" in layers and data.column in data.frames.get("grid", pd.DataFrame()).columns:
        _draw_choropleth(ax, data.frames["grid"], data.column, data.edges, edge=False)
    if "streets" in layers:
        drawn = draw_streets(ax, data.bundle, data.crs, dpi=dpi, scale=lw_scale)
        if drawn:
            handles.append(("Streets (from the region's data)", Line2D([], [], color="#ffffff")))
    if "isochrones" in layers and "isochrones" in data.frames:
        iso = data.frames["isochrones"]
        iso = iso[(iso["category"] == data.category) & (iso["mode"] == data.mode)]
        styles = ["-", "--", ":"]
        for k, (minutes, row) in enumerate(iso.sort_values("minutes").groupby("minutes")):
            _plot_lines(ax, row.geometry.boundary, color=INK, lw=0.9 * lw_scale,
                        ls=styles[k % 3], zorder=4)  # fmt: skip
            handles.append((f"Within {minutes:g} min {data.how}",
                            Line2D([], [], color=INK, lw=1, ls=styles[k % 3])))  # fmt: skip
    if "deserts" in layers and "deserts" in data.frames:
        d = data.frames["deserts"]
        d = d[(d["category"] == data.category) & (d["mode"] == data.mode) & ~d.geometry.is_empty]
        if len(d):
            d.plot(ax=ax, facecolor="none", edgecolor=DESERT_EDGE, hatch="////", lw=0.5,
                   alpha=0.7, hatch_linewidth=0.45, zorder=5)  # fmt: skip
            patch = Patch(facecolor="none", edgecolor=DESERT_EDGE, hatch="////")
            with_it = " with the scenario" if data.whatif is not None else ""
            handles.append((f"Desert{with_it}: more than {data.threshold:g} min {data.how}",
                            patch))  # fmt: skip
    if data.whatif is not None and ("deserts" in layers or "areas" in layers):
        outline = data.frames.get("region")
        clip = outline.geometry.union_all() if outline is not None and len(outline) else None
        handles += _draw_changes(ax, data.whatif, data.crs, clip=clip)
    if "barriers" in layers and "barriers" in data.frames and len(data.frames["barriers"]):
        data.frames["barriers"].plot(ax=ax, facecolor="none", edgecolor="#4d4d4d", lw=0.3,
                                     alpha=0.6, hatch="\\\\\\", hatch_linewidth=0.35,
                                     zorder=5)  # fmt: skip
        patch = Patch(facecolor="none", edgecolor="#4d4d4d", hatch="\\\\\\")
        handles.append(("Siting barrier (local rule)", patch))
    if "region" in layers and "region" in data.frames:
        _plot_lines(ax, data.frames["region"].boundary, color="#333333", lw=1.1 * lw_scale,
                    ls=(0, (5, 2)), zorder=6)  # fmt: skip
        handles.append(("Region boundary", Line2D([], [], color="#333", lw=1.1, ls=(0, (5, 2)))))
    if "providers" in layers and "providers" in data.frames:
        handles += _draw_providers(ax, data, size=52 if not light else 30)
        if data.whatif is not None:
            handles += _draw_scenario_sites(ax, data.whatif, data.crs, size=90 if not light else 55)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("")
    ax.set_ylabel("")
    return handles


def draw_streets(ax: Axes, bundle: Bundle, crs: str, *, dpi: int = MAP_DPI,
                 scale: float = 1.0) -> int:  # fmt: skip
    """Draw the bundle's street network (rasterised in vector output); return segments drawn."""
    segments = street_segments(bundle, crs)
    if segments is None:
        return 0
    xy, klass = segments
    # Sparse networks (a small town) get wider lines; dense ones (a county) thin lines.
    scale *= float(np.clip(math.sqrt(20_000 / max(len(xy), 1)), 1.0, 4.0))
    n = 0
    for level, (width, colour, alpha) in enumerate(
        [(0.25, "#ffffff", 0.6), (0.35, "#ffffff", 0.75), (0.7, "#ffffff", 0.9),
         (1.3, "#ffffff", 1.0)]
    ):  # fmt: skip
        sel = klass == level
        if not sel.any():
            continue
        casing = LineCollection(xy[sel], colors="#7a7a7a", linewidths=(width + 0.45) * scale,
                                alpha=0.35 if level <= 1 else 0.55, zorder=2,
                                capstyle="round")  # fmt: skip
        line = LineCollection(xy[sel], colors=colour, linewidths=width * scale, alpha=alpha,
                              zorder=3, capstyle="round")  # fmt: skip
        casing.set_rasterized(True)
        ax.add_collection(casing)
        line.set_rasterized(True)
        ax.add_collection(line)
        n += int(sel.sum())
    return n


def street_segments(bundle: Bundle, crs: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Undirected street segments projected to ``crs`` and their level.

    Levels: 0 footpath, 1 minor street, 2 secondary/tertiary, 3 motorway/trunk/primary.
    Uses the drive network and adds the walk network's paths where both exist;
    ``"EPSG:4326"`` gives longitude/latitude. ``None`` if the bundle has no network.

    Returns
    -------
    tuple of numpy.ndarray or None
        Segments, shape ``(n, 2, 2)``, and their levels, shape ``(n,)``.
    """
    nets = []
    for mode in ("drive", "walk"):
        try:
            nets.append(bundle.network(mode))
        except BundleError:
            continue
    if not nets:
        return None
    parts, classes = [], []
    for k, net in enumerate(nets):
        names = np.array(net.highway_classes, dtype=object)
        hw = names[net.highway] if len(names) else np.full(net.n_edges, "", dtype=object)
        keep = net.tail < net.head  # one of each two-way pair...
        reverse_only = ~np.isin(
            net.tail.astype(np.int64) * net.n_nodes + net.head,
            net.head.astype(np.int64) * net.n_nodes + net.tail,
        )
        keep |= reverse_only  # ...and every one-way edge
        if k > 0:  # walk network: only what the drive network has not drawn
            keep &= np.isin(hw, list(_PATHS))
        if net.crs == crs:
            x, y = net.x, net.y
        elif CRS.from_user_input(crs).equals(CRS.from_epsg(4326)):
            x, y = net.lon, net.lat
        else:
            to_map = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
            x, y = (np.asarray(a) for a in to_map.transform(net.lon, net.lat))
        t, h = net.tail[keep], net.head[keep]
        start, end = np.column_stack([x[t], y[t]]), np.column_stack([x[h], y[h]])
        parts.append(np.stack([start, end], axis=1))
        level = np.select([np.isin(hw[keep], list(_MAJOR)), np.isin(hw[keep], list(_MEDIUM)),
                           np.isin(hw[keep], list(_PATHS))], [3, 2, 0], default=1)  # fmt: skip
        classes.append(level)
    return np.concatenate(parts), np.concatenate(classes)


def time_edges(bands: Sequence[float], threshold: float | None) -> list[float]:
    """Class edges in minutes for travel-time colours: the bands, the threshold, then 1.5x, 2x."""
    edges = sorted({float(b) for b in bands if b > 0})
    if threshold is not None:
        edges = sorted({*edges, float(threshold)})
    top = edges[-1] if edges else 30.0
    edges += [top * 1.5, top * 2]
    return [0.0, *edges[: len(TIME_COLOURS) - 1]]


def scale_bar(ax: Axes, *, fontsize: float = 8) -> None:
    """Draw a scale bar in kilometres and miles in the lower left of a metre-based map."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    width = x1 - x0
    km = _nice(width * 0.22 / 1000.0)
    miles = _nice(width * 0.22 / 1609.344)
    left, base = x0 + width * 0.03, y0 + (y1 - y0) * 0.04
    h = (y1 - y0) * 0.008
    ax.add_patch(Rectangle((left - width * 0.012, base - (y1 - y0) * 0.022),
                           max(km * 1000, miles * 1609.344) + width * 0.11, (y1 - y0) * 0.085,
                           facecolor="white", alpha=0.85, edgecolor="none", zorder=9))  # fmt: skip
    for k, (length, unit, yb) in enumerate(((km * 1000, "km", base + 3.2 * h),
                                            (miles * 1609.344, "mi", base))):  # fmt: skip
        for i in range(2):
            ax.add_patch(Rectangle((left + i * length / 2, yb), length / 2, h,
                                   facecolor=INK if i == 0 else "white", edgecolor=INK, lw=0.6,
                                   zorder=10))  # fmt: skip
        value = km if k == 0 else miles
        ax.text(left + length + width * 0.008, yb + h / 2, f"{value:g} {unit}", fontsize=fontsize,
                va="center", ha="left", color=INK, zorder=10)  # fmt: skip


def north_arrow(ax: Axes, crs: str, *, size: float = 0.06) -> None:
    """Draw a north arrow in the upper right, turned to true north at the map's centre."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    angle = 0.0
    try:
        to_geo = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        to_map = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        lon, lat = to_geo.transform(cx, cy)
        nx, ny = to_map.transform(lon, lat + 0.05)
        angle = math.atan2(nx - cx, ny - cy)
    except Exception:
        angle = 0.0
    ax_x, ax_y = 0.93, 0.86
    dx, dy = size * math.sin(angle), size * math.cos(angle)
    ax.add_patch(FancyArrow(ax_x - dx / 2, ax_y - dy / 2, dx, dy, width=size * 0.16,
                            head_width=size * 0.42, head_length=size * 0.42,
                            length_includes_head=True, transform=ax.transAxes, color=INK,
                            zorder=10))  # fmt: skip
    ax.text(ax_x + dx / 2 * 1.5, ax_y + dy / 2 + size * 0.3, "N", transform=ax.transAxes,
            ha="center", va="bottom", fontsize=11, fontweight="bold", color=INK,
            zorder=10)  # fmt: skip


def fictional_stamp(fig: Figure, ax: Axes, *, fontsize: float = 46) -> None:
    """Stamp "FICTIONAL DATA" across the map and at the top right of the page."""
    ax.text(0.5, 0.5, "FICTIONAL DATA", transform=ax.transAxes, rotation=28, ha="center",
            va="center", fontsize=fontsize, fontweight="bold", color=STAMP, alpha=0.28,
            zorder=20)  # fmt: skip
    fig.text(0.985, 0.985, "FICTIONAL DATA", ha="right", va="top", fontsize=10,
             fontweight="bold", color="white",
             bbox={"boxstyle": "round,pad=0.35", "facecolor": STAMP,
                   "edgecolor": "none"})  # fmt: skip


def source_line(manifest: Mapping[str, Any]) -> str:
    """One line: sources with dates and licences, build date, software, attribution."""
    parts = []
    osm = False
    for rec in manifest.get("inputs", []):
        source = rec.get("source") or rec.get("role", "input")
        date = f", {rec['date']}" if rec.get("date") and rec["date"] != "generated" else ""
        parts.append(f"{source}{date}")
        text = f"{rec.get('role', '')} {source} {rec.get('licence', '')}".lower()
        osm = osm or "openstreetmap" in text or "odbl" in text
    line = "Sources: " + "; ".join(parts) + "." if parts else "Sources: see the bundle manifest."
    if osm:
        line += " Streets © OpenStreetMap contributors (ODbL)."
    congestion = manifest.get("settings", {}).get("congestion_factor")
    if congestion:
        line += f" Congestion factor {congestion:g}."
    line += (f" Data built {_date(manifest.get('built_at'))}; Access Atlas "
             f"{manifest.get('software', {}).get('access-atlas', __version__)}.")  # fmt: skip
    if manifest.get("fictional"):
        line = "FICTIONAL DATA. " + line
    return line


def key_numbers(bundle: Bundle, *, view: DesertAt | None = None) -> list[dict[str, str]]:
    """Plain-language key numbers for the fact sheet, each with its threshold.

    Parameters
    ----------
    bundle
        The region bundle.
    view
        The pair on screen at its threshold (:func:`etl.outputs.export.desert_at`): its
        card comes first among the desert cards and is counted at that threshold.

    Returns
    -------
    list of dict
        Keys ``number`` (formatted), ``text`` (a sentence) and ``note`` (threshold, base).
    """
    m = bundle.manifest
    stages = m.get("stages", {})
    summary = stages.get("access", {}).get("summary", {})
    areas = stages.get("areas", {})
    providers = stages.get("providers", {})
    cards = []
    population = areas.get("population")
    if population:
        unit = str(areas.get("unit", "census area"))
        cards.append({
            "number": f"{population:,}",
            "text": f"people live in {m.get('title', m.get('region'))}",
            "note": f"census population, {areas.get('areas', '?'):,} {unit}s",
        })  # fmt: skip
    by_cat = providers.get("by_category") or {}
    if by_cat:
        total = sum(by_cat.values())
        ranked = sorted(by_cat.items(), key=lambda kv: -kv[1])
        parts = [f"{_CATEGORY_SHORT.get(c, c)} {n:,}" for c, n in ranked]
        places = None
        if "providers" in bundle.manifest.get("layers", {}):
            places, total = count_places(bundle.read_layer("providers"))
        if places is None:  # no layer to tell addresses apart: count services only
            cards.append({"number": f"{total:,}", "text": "services offering care in the data",
                          "note": "services: " + " · ".join(parts)})  # fmt: skip
        else:
            cards.append({"number": f"{places:,}",
                          "text": "places (distinct addresses) offering care in the data",
                          "note": f"{total:,} services: " + " · ".join(parts)})  # fmt: skip
    transit = _transit_card(bundle, summary)
    room = 4 if transit is not None else 5  # cards before the transit and good-news ones
    reached: dict[tuple[str, float], list[str]] = {}
    ordered = _pairs_by_importance(summary)
    if view is not None:
        summary = dict(summary)
        view_key = f"{view.category}_{view.mode}"
        summary[view_key] = {**summary.get(view_key, {}), "threshold_min": view.threshold_min,
                             "people_within": round(view.within),
                             "people_in_desert": round(view.beyond)}  # fmt: skip
        ordered = [view_key, *(k for k in ordered if k != view_key)]
    for key in ordered:
        entry = summary[key]
        category, mode = key.rsplit("_", 1)
        within, desert = entry.get("people_within"), entry.get("people_in_desert")
        if within is None or desert is None or within + desert <= 0:
            continue
        threshold = entry["threshold_min"]
        if desert == 0:  # told once below, as good news
            reached.setdefault((mode, threshold), []).append(category)
            continue
        if len(cards) >= room:
            continue
        share = desert / (within + desert)
        how = "drive" if mode == "drive" else "walk"
        cards.append({
            "number": f"{desert:,}",
            "text": (f"people ({_pct(share)}) live more than a {threshold:g}-minute {how} "
                     f"from the nearest {_site_noun(category)}"),
            "note": f"threshold: {threshold:g} min {MODE_LABELS[mode].lower()}; "
                    f"{within:,} within reach",
        })  # fmt: skip
    if transit is not None:
        cards.append(transit)
    if reached and len(cards) < 6:
        (mode, threshold), cats = max(reached.items(), key=lambda kv: len(kv[1]))
        how = "drive" if mode == "drive" else "walk"
        nouns = [_CATEGORY_SHORT.get(c, c) for c in cats]
        listed = nouns[0] if len(nouns) == 1 else ", ".join(nouns[:-1]) + " and " + nouns[-1]
        cards.append({
            "number": "100%",
            "text": f"of people live within a {threshold:g}-minute {how} of {listed} care",
            "note": f"threshold: {threshold:g} min {MODE_LABELS[mode].lower()}",
        })  # fmt: skip
    if len(cards) < 6:
        for key in _pairs_by_importance(summary):
            entry = summary[key]
            if entry.get("median_minutes") is None:
                continue
            category, mode = key.rsplit("_", 1)
            how = "by car" if mode == "drive" else "on foot"
            cards.append({
                "number": f"{entry['median_minutes']:.0f} min",
                "text": f"{how} to the nearest {_site_noun(category)} for half of the people",
                "note": "median over people on the street network",
            })  # fmt: skip
            break
    return cards


def _transit_card(bundle: Bundle, summary: Mapping[str, Any]) -> dict[str, str] | None:
    """How many transit stops lie within the walking threshold of the first category's care."""
    if "transit_stops" not in bundle.manifest.get("layers", {}):
        return None
    for key in _pairs_by_importance(summary):
        category, mode = key.rsplit("_", 1)
        threshold = summary[key].get("threshold_min")
        if mode != "walk" or threshold is None:
            continue
        stops = bundle.read_layer("transit_stops")
        column = f"walk_min_{category}"
        if column not in stops.columns or stops.empty:
            return None
        minutes = stops[column].to_numpy(dtype=float)
        known = np.isfinite(minutes)
        near = int((minutes[known] <= threshold).sum())
        note = f"threshold: {threshold:g} min on foot"
        if (~known).any():
            note += f"; {int((~known).sum()):,} stops off the street map"
        return {
            "number": f"{near:,} of {int(known.sum()):,}",
            "text": f"transit stops are within a {threshold:g}-minute walk of the nearest "
            f"{_site_noun(category)}",
            "note": note,
        }
    return None


def people_times(bundle: Bundle, category: str, mode: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-person travel time (minutes; NaN off the network), weights, and uncovered people.

    Recomputes the pipeline's per-person time from the bundle's access arrays with the
    pipeline's own rule (:func:`etl.engine.counting.people_times`); people with no route
    are NaN here too (they are drawn grey).
    """
    people = bundle.read_layer("people")
    arrays = bundle.access_arrays(mode)
    key = f"time_{category}"
    if key not in arrays:
        msg = f"no travel times for {category} by {mode} in {bundle.path}"
        raise ExportError(msg)
    net = bundle.network(mode)
    seconds = counted_times(
        arrays[key],
        people[f"node_{mode}"].to_numpy(),
        people[f"snap_m_{mode}"].to_numpy(),
        walk_speed_mps=net.walk_speed_mps,
        cover_m=cover_distance(bundle.manifest),
    )
    weight = people["weight"].to_numpy(dtype=float)
    covered = ~np.isnan(seconds)
    t = np.where(np.isfinite(seconds), seconds / 60.0, np.nan)
    return t, weight, float(weight[~covered].sum())


# --------------------------------------------------------------------------------------------
# pieces


def _plot_lines(ax: Axes, geoms: Any, *, color: str, lw: float, ls: Any, zorder: int) -> None:
    """Draw (multi)line geometries as one LineCollection."""
    paths = []
    for geom in np.asarray(geoms, dtype=object):
        if geom is None or geom.is_empty:
            continue
        for part in shapely.get_parts(geom):
            coords = shapely.get_coordinates(part)
            if len(coords) > 1:
                paths.append(coords)
    if paths:
        ax.add_collection(LineCollection(paths, colors=color, linewidths=lw, linestyles=ls,
                                         zorder=zorder))  # fmt: skip


def _draw_choropleth(ax: Axes, frame: gpd.GeoDataFrame, column: str, edges: Sequence[float],
                     *, edge: bool = True) -> None:  # fmt: skip
    values = frame[column].to_numpy(dtype=float)
    cls = np.clip(np.searchsorted(np.asarray(edges[1:]), values, side="left"), 0,
                  len(edges) - 1)  # fmt: skip
    colours = np.array([TIME_COLOURS[i] for i in cls], dtype=object)
    colours[~np.isfinite(values)] = NO_DATA_COLOUR
    frame.plot(ax=ax, color=list(colours), edgecolor="white" if edge else "none",
               lw=0.15 if edge else 0, zorder=1)  # fmt: skip


def _draw_providers(ax: Axes, data: MapData, *, size: float) -> list[Any]:
    providers = data.frames["providers"]
    sel = providers[providers["category"] == data.category]
    if "in_region" in sel.columns:
        sel = sel[sel["in_region"].fillna(True).astype(bool)]
    colour = CATEGORY_COLOURS[data.category]
    marker = _MARKERS[CATEGORY_SYMBOLS[data.category]]
    points = sel[sel.geometry.geom_type == "Point"]
    areas = sel[sel.geometry.geom_type != "Point"]
    handles: list[Any] = []
    if len(areas):
        areas.plot(ax=ax, facecolor=colour, alpha=0.45, edgecolor=colour, lw=0.8, zorder=7)
        handles.append((f"{data.label} (approximate area)",
                        Patch(facecolor=colour, alpha=0.45, edgecolor=colour)))  # fmt: skip
    ax.scatter(points.geometry.x, points.geometry.y, s=size, marker=marker, c=colour,
               edgecolors="white", linewidths=0.9, zorder=8)  # fmt: skip
    handles.insert(0, (f"{data.label} ({len(sel):,})",
                       Line2D([], [], ls="none", marker=marker, markersize=8,
                              markerfacecolor=colour, markeredgecolor="white")))  # fmt: skip
    return handles


def _draw_changes(ax: Axes, whatif: WhatIf, crs: str, *, clip: Any = None) -> list[Any]:
    """Outline the land the scenario takes out of the desert (and puts into it).

    ``clip`` (the region's outline in ``crs``) keeps the outline inside the region, as the
    desert is drawn.
    """
    handles: list[Any] = []
    frame = change_frame(whatif, crs)
    if clip is not None and len(frame):
        frame = frame.assign(geometry=frame.geometry.intersection(clip))
        frame = frame[~frame.geometry.is_empty]
    for kind, colour, hatch, label in (
        ("gain", GAIN_COLOUR, "....", "Leaves the desert with the scenario"),
        ("loss", LOSS_COLOUR, "xxxx", "Falls into the desert with the scenario"),
    ):
        part = frame[frame["kind"] == kind]
        if len(part):
            part.plot(ax=ax, facecolor="none", edgecolor=colour, hatch=hatch, lw=1.0,
                      hatch_linewidth=0.5, zorder=5.5)  # fmt: skip
            handles.append((label, Patch(facecolor="none", edgecolor=colour, hatch=hatch)))
    return handles


def _draw_scenario_sites(ax: Axes, whatif: WhatIf, crs: str, *, size: float) -> list[Any]:
    """Added sites as stars, closed sites crossed out (the What-if panel's symbols)."""
    sites = whatif.sites
    if len(sites) == 0:
        return []
    sites = sites.to_crs(crs)
    handles: list[Any] = []
    added = sites[sites["status"] == "added"]
    closed = sites[sites["status"] == "closed"]
    if len(added):
        ax.scatter(added.geometry.x, added.geometry.y, s=size * 1.6, marker="*",
                   c=ADDED_COLOUR, edgecolors="white", linewidths=0.9, zorder=9)  # fmt: skip
        handles.append((f"Added in the scenario ({len(added):,})",
                        Line2D([], [], ls="none", marker="*", markersize=11,
                               markerfacecolor=ADDED_COLOUR)))  # fmt: skip
    if len(closed):
        ax.scatter(closed.geometry.x, closed.geometry.y, s=size * 1.2, marker="X",
                   c=LOSS_COLOUR, edgecolors="white", linewidths=0.8, zorder=9)  # fmt: skip
        handles.append((f"Closed in the scenario ({len(closed):,})",
                        Line2D([], [], ls="none", marker="X", markersize=9,
                               markerfacecolor=LOSS_COLOUR)))  # fmt: skip
    return handles


def _whatif_note(whatif: WhatIf) -> tuple[str, str]:
    """The fact sheet's note on the scenario: its changes and the panel's figures."""
    changes = "; ".join(whatif.changes[:6])
    if len(whatif.changes) > 6:
        changes += f"; and {len(whatif.changes) - 6:,} more"
    body = (f"{changes}. " + " ".join(whatif.statements) + " The map shows the scenario; "
            "the key numbers at the top are today's, without it.")  # fmt: skip
    return (whatif.title, body)


def _legend(ax: Axes, data: MapData, handles: list[Any]) -> None:
    y = 0.98
    ax.text(0.0, y, f"Travel time {data.how} to the nearest", fontsize=10, fontweight="bold",
            color=INK, va="top", transform=ax.transAxes)  # fmt: skip
    y -= 0.035
    ax.text(0.0, y, _wrap(data.label.lower(), 40), fontsize=10, fontweight="bold", color=INK,
            va="top", transform=ax.transAxes)  # fmt: skip
    y -= 0.04 + 0.03 * _wrap(data.label.lower(), 40).count("\n")
    ax.text(0.0, y, "minutes, population-weighted per census area", fontsize=8, color=MUTED,
            va="top", transform=ax.transAxes)  # fmt: skip
    y -= 0.045
    for label, colour in _class_labels(data):
        ax.add_patch(Rectangle((0.0, y - 0.028), 0.09, 0.028, facecolor=colour,
                               edgecolor="#888", lw=0.4, transform=ax.transAxes))  # fmt: skip
        ax.text(0.12, y - 0.014, label, fontsize=8.8, va="center", color=INK,
                transform=ax.transAxes)  # fmt: skip
        y -= 0.036
    y -= 0.025
    for label, artist in handles:
        _legend_symbol(ax, artist, 0.045, y - 0.014)
        ax.text(0.12, y - 0.014, _wrap(label, 38), fontsize=8.8, va="center", color=INK,
                transform=ax.transAxes)  # fmt: skip
        y -= 0.04 + 0.022 * _wrap(label, 38).count("\n")
    summary = data.bundle.manifest.get("stages", {}).get("access", {}).get("summary", {})
    entry = summary.get(f"{data.category}_{data.mode}", {})
    if data.desert is not None:  # the threshold on screen, recomputed
        entry = {**entry, "people_within": round(data.desert.within),
                 "people_in_desert": round(data.desert.beyond)}  # fmt: skip
    if data.whatif is not None:  # the scenario's figures, as the What-if panel counts them
        entry = {**entry, "people_within": round(data.whatif.people_within),
                 "people_in_desert": round(data.whatif.people_in_desert),
                 "median_minutes": None}  # fmt: skip
    y -= 0.02
    if entry.get("people_in_desert") is not None and data.threshold is not None:
        within, desert = entry["people_within"], entry["people_in_desert"]
        share = desert / (within + desert) if within + desert else 0.0
        big = f"{desert:,} people ({_pct(share)})" if desert else "No one"
        ax.text(0.0, y, big, fontsize=13, fontweight="bold", va="top", transform=ax.transAxes,
                color=DESERT_EDGE if desert else HEADER)  # fmt: skip
        verb = "live" if desert else "lives"
        text = (f"{verb} more than {data.threshold:g} min {data.how} from the nearest "
                f"{_site_noun(data.category)} (threshold {data.threshold:g} min)")  # fmt: skip
        if data.whatif is not None:
            text += (f" with the scenario; {round(data.whatif.base_people_in_desert):,} "
                     "without it")  # fmt: skip
        ax.text(0.0, y - 0.045, _wrap(text, 44), fontsize=8.8, color=INK, va="top",
                transform=ax.transAxes)  # fmt: skip
        y -= 0.07 + 0.03 * _wrap(text, 44).count("\n")
    if entry.get("median_minutes") is not None:
        text = (f"Half of the people with a travel time live within "
                f"{entry['median_minutes']:.0f} min {data.how} of one.")  # fmt: skip
        ax.text(0.0, y, _wrap(text, 48), fontsize=8.8, color=INK, va="top",
                transform=ax.transAxes)  # fmt: skip
        y -= 0.045 + 0.03 * _wrap(text, 48).count("\n")
    coverage = mode_coverage(data.bundle, data.mode)
    if coverage and coverage["not_covered"]:
        text = (f"Grey: no travel time — {coverage['not_covered']:,} people live beyond the "
                f"mapped street network (more than {coverage['cover_m']:g} m from its "
                "streets): not covered.")  # fmt: skip
        ax.text(0.0, y, _wrap(text, 48), fontsize=8, color=MUTED, va="top", transform=ax.transAxes)


def _legend_symbol(ax: Axes, artist: Any, x: float, y: float) -> None:
    if isinstance(artist, Patch):
        ax.add_patch(Rectangle((x - 0.045, y - 0.014), 0.09, 0.028,
                               facecolor=artist.get_facecolor(),
                               edgecolor=artist.get_edgecolor(), hatch=artist.get_hatch(),
                               lw=0.8, transform=ax.transAxes))  # fmt: skip
    elif isinstance(artist, Line2D) and artist.get_marker() not in (None, "None", "none", ""):
        ax.plot([x], [y], ls="none", marker=artist.get_marker(), markersize=9,
                markerfacecolor=artist.get_markerfacecolor(), markeredgecolor="#333",
                markeredgewidth=0.6, transform=ax.transAxes)  # fmt: skip
    elif isinstance(artist, Line2D) and artist.get_color() == "#ffffff":
        ax.plot([x - 0.045, x + 0.045], [y, y], color="#8c8c8c", lw=3.2, transform=ax.transAxes,
                solid_capstyle="round")  # fmt: skip
        ax.plot([x - 0.045, x + 0.045], [y, y], color="white", lw=2, transform=ax.transAxes,
                solid_capstyle="round")  # fmt: skip
    elif isinstance(artist, Line2D):
        ax.plot([x - 0.045, x + 0.045], [y, y], color=artist.get_color(), lw=1.3,
                ls=artist.get_linestyle(), transform=ax.transAxes)  # fmt: skip


def _class_labels(data: MapData) -> list[tuple[str, str]]:
    edges = data.edges
    out = []
    for i in range(len(edges)):
        lo = edges[i]
        if i == len(edges) - 1:
            label = f"more than {lo:g} min"
        elif i == 0:
            label = f"up to {edges[1]:g} min"
        else:
            label = f"{lo:g}–{edges[i + 1]:g} min"
        if data.threshold is not None and i > 0 and lo >= data.threshold:
            label += "  (beyond threshold)"
        out.append((label, TIME_COLOURS[i]))
    out.append(("no travel time (off the street network)", NO_DATA_COLOUR))
    return out


def _map_key(fig: Figure, data: MapData, box: tuple[float, float, float, float]) -> None:
    """A compact horizontal colour key under the fact sheet's map."""
    ax = fig.add_axes(box)
    ax.set_axis_off()
    labels = _class_labels(data)
    n = len(labels)
    w = 1.0 / n
    for i, (label, colour) in enumerate(labels):
        ax.add_patch(Rectangle((i * w, 0.55), w * 0.96, 0.3, facecolor=colour, edgecolor="#888",
                               lw=0.4, transform=ax.transAxes))  # fmt: skip
        short = (
            label.replace("  (beyond threshold)", "*")
            .replace("no travel time (off the street network)", "off network")
            .replace("more than ", ">")
        )
        short = short.replace("up to ", "≤")
        ax.text(i * w + w * 0.48, 0.4, short, fontsize=6.3, ha="center", va="top", color=INK,
                transform=ax.transAxes)  # fmt: skip
    note = f"* beyond the {data.threshold:g}-minute threshold" if data.threshold else ""
    ax.text(0, 1.05, f"Minutes {data.how} (population-weighted per census area). {note}",
            fontsize=6.8, color=MUTED, transform=ax.transAxes, va="bottom")  # fmt: skip


def _band_chart(ax: Axes, bundle: Bundle, fig: Figure, *, edges: Sequence[float]) -> None:
    """Stacked bars: share of people by travel-time band, one bar per (category, mode)."""
    summary = bundle.manifest.get("stages", {}).get("access", {}).get("summary", {})
    pairs = _pairs_by_importance(summary)[:6]
    bounds = [*edges, np.inf]
    labels = [f"≤{edges[1]:g}"] + [f"{a:g}–{b:g}" for a, b in itertools.pairwise(edges[1:])]
    labels.append(f">{edges[-1]:g} min")
    rows, names = [], []
    for key in pairs:
        category, mode = key.rsplit("_", 1)
        try:
            t, w, _ = people_times(bundle, category, mode)
        except (BundleError, ExportError, KeyError):
            continue
        ok = np.isfinite(t)
        total = w[ok].sum()
        if total <= 0:
            continue
        cls = np.searchsorted(np.asarray(bounds[1:-1]), t[ok], side="left")
        rows.append(np.bincount(cls, weights=w[ok], minlength=len(edges)) / total)
        names.append(f"{_site_noun(category).capitalize()}\n{MODE_LABELS[mode].lower()}")
    fig.text(0.58, 0.655, "People by travel time", fontsize=10.5, fontweight="bold", color=INK,
             va="bottom")  # fmt: skip
    fig.text(0.58, 0.637, "to the nearest site, share of people on the street network",
             fontsize=7.5, color=MUTED, va="bottom")  # fmt: skip
    if not rows:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No per-person travel times in this bundle", ha="center", fontsize=8)
        return
    data = np.array(rows)
    y = np.arange(len(rows))[::-1]
    left = np.zeros(len(rows))
    for j in range(data.shape[1]):
        ax.barh(y, data[:, j], left=left, color=TIME_COLOURS[j], edgecolor="white", lw=0.6,
                height=0.62, label=labels[j])  # fmt: skip
        for i, v in enumerate(data[:, j]):
            if v >= 0.1:
                ax.text(left[i] + v / 2, y[i], f"{v * 100:.0f}%", ha="center", va="center",
                        fontsize=6.8, color="white" if j >= 3 else INK)  # fmt: skip
        left += data[:, j]
    ax.set_yticks(y, names, fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.5, 1.0], ["0", "50%", "100%"], fontsize=7)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.legend(loc="upper left", bbox_to_anchor=(-0.75, -0.1), ncol=len(labels), fontsize=6.5,
              frameon=False, handlelength=1.1, columnspacing=0.7, handletextpad=0.4)  # fmt: skip


def _number_cards(fig: Figure, cards: list[dict[str, str]], *, top: float) -> None:
    n = len(cards)
    if not n:
        return
    cols = min(n, 3)
    width, gap = (0.92 - 0.02 * (cols - 1)) / cols, 0.02
    height = 0.076
    for i, card in enumerate(cards):
        r, c = divmod(i, cols)
        x = 0.04 + c * (width + gap)
        y = top - (r + 1) * height - r * 0.01
        fig.patches.append(Rectangle((x, y), width, height, transform=fig.transFigure,
                                     facecolor="#eef3fa", edgecolor="none"))  # fmt: skip
        fig.patches.append(Rectangle((x, y), 0.006, height, transform=fig.transFigure,
                                     facecolor=HEADER, edgecolor="none"))  # fmt: skip
        fig.text(x + 0.018, y + height - 0.009, card["number"], fontsize=17, fontweight="bold",
                 color=HEADER, va="top")  # fmt: skip
        text = _wrap(card["text"], 44)
        fig.text(x + 0.018, y + height - 0.037, text, fontsize=7.6, color=INK, va="top",
                 linespacing=1.2)  # fmt: skip
        below = y + height - 0.037 - 0.0118 * (text.count("\n") + 1) - 0.003
        fig.text(x + 0.018, min(below, y + 0.016), _wrap(card["note"], 56), fontsize=6.3,
                 color=MUTED, va="top")  # fmt: skip


def _notes(bundle: Bundle, data: MapData) -> list[tuple[str, str]]:
    m = bundle.manifest
    s = m.get("settings", {})
    notes = []
    coverage = mode_coverage(bundle, data.mode)
    if coverage and coverage["not_covered"]:
        share = coverage["covered"] / coverage["people"] if coverage["people"] else 0.0
        notes.append(("Who is counted",
                      f"Travel times {data.how} are computed for the {coverage['covered']:,} "
                      f"people ({_pct(share)}) who live within {coverage['cover_m']:,.0f} m of "
                      f"the mapped street network; {coverage['not_covered']:,} people live beyond "
                      "it: not covered, and not in the percentages."))  # fmt: skip
    congestion = s.get("congestion_factor", 1)
    notes.append(("How travel time is measured",
                  "From where people live to the nearest site, along streets, at typical speeds "
                  f"by road type (walking {s.get('walk_speed_kph', 4.8)} km/h); congestion "
                  f"factor {congestion:g} ({'no traffic delay assumed' if congestion == 1 else 'times scaled for traffic'}). "  # noqa: E501
                  "A 'desert' is everyone beyond the threshold printed beside each number. "
                  "Real trips can take longer: parking, waiting, transit schedules."))  # fmt: skip
    overdose = overdose_lines(bundle)
    if overdose:
        notes.append(("Overdose deaths by county", " ".join(overdose)))
    partial = [
        f"{i.get('source')}: {i['partial']}" for i in m.get("inputs", []) if i.get("partial")
    ]
    if partial:
        notes.append(("Partial lists", "; ".join(partial) + "."))
    notes.append(("Privacy", "Overdose counts from 1 to 9 are never shown; rates on fewer than "
                  "20 deaths are marked unstable; syringe services sites that ask are shown only "
                  "as an approximate area."))  # fmt: skip
    return notes


def overdose_lines(bundle: Bundle) -> list[str]:
    """The fact sheet's overdose sentences: every county of the region, per source.

    Parameters
    ----------
    bundle
        The opened region bundle.

    Returns
    -------
    list of str
        One sentence per region county and source (its latest period), led by the source's
        short name; :data:`etl.inputs.counties.NO_COUNTY_TEXT` alone when the build knew no
        county of the region; empty without a counties layer.
    """
    stage = bundle.manifest.get("stages", {}).get("counties", {})
    if "counties" not in bundle.manifest.get("layers", {}):
        return []
    fips = [str(f) for f in stage.get("region_counties") or []]
    if "counties_from" not in stage:  # built before the region's counties were recorded
        fips = geoid_counties(bundle.read_layer("areas")["area_id"],
                              unit=bundle.manifest.get("stages", {}).get("areas", {}).get("unit"))
        fips = fips or []
    if not fips:
        return [NO_COUNTY_TEXT]
    rows = region_overdose(bundle.read_layer("counties"), fips, stage.get("county_names") or {})
    lines = []
    for row in rows.to_dict("records"):
        short = str(row.get("source") or "").split(",")[0].strip()
        text = overdose_text({**row, "source": None}, prefix=county_label(row))
        lines.append(f"{short}: {text}" if short else text)
    return lines


def _headline_pair(summary: Mapping[str, Any], category: str | None,
                   mode: str | None) -> tuple[str, str]:  # fmt: skip
    if category and mode:
        return category, mode
    ordered = _pairs_by_importance(summary)
    for key in ordered:
        c, m_ = key.rsplit("_", 1)
        if (category in (None, c)) and (mode in (None, m_)):
            return c, m_
    for key in summary:
        c, m_ = key.rsplit("_", 1)
        if (category in (None, c)) and (mode in (None, m_)):
            return c, m_
    msg = "the bundle has no access summary to draw a fact sheet from; rebuild it"
    raise ExportError(msg)


def _pairs_by_importance(summary: Mapping[str, Any]) -> list[str]:
    """Pairs with a threshold: categories in canonical order, driving before walking."""
    keys = [k for k, v in summary.items() if v.get("threshold_min") is not None]

    def order(k: str) -> tuple[int, int]:
        c, m = k.rsplit("_", 1)
        return (CATEGORIES.index(c) if c in CATEGORIES else 99, MODES.index(m) if m in MODES else 9)

    return sorted(keys, key=order)


def _threshold_text(data: MapData) -> str:
    if data.threshold is None:
        return f"{MODE_LABELS[data.mode]}; no desert threshold set"
    return f"{MODE_LABELS[data.mode]} · desert threshold {data.threshold:g} min"


def _site_noun(category: str) -> str:
    return {
        "methadone": "methadone program", "buprenorphine": "buprenorphine prescriber",
        "naltrexone": "naltrexone provider", "syringe_services": "syringe services program",
        "pharmacy": "pharmacy", "naloxone": "naloxone site",
        "treatment_facility": "treatment facility",
    }.get(category, category)  # fmt: skip


_CATEGORY_SHORT: Final[dict[str, str]] = {
    "methadone": "methadone", "buprenorphine": "buprenorphine", "naltrexone": "naltrexone",
    "syringe_services": "syringe services", "pharmacy": "pharmacy", "naloxone": "naloxone",
    "treatment_facility": "treatment facility",
}  # fmt: skip


def _pct(share: float) -> str:
    if 0 < share < 0.01:
        return "under 1%"
    if 0.99 < share < 1:
        return "over 99%"
    return f"{share * 100:.0f}%"


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _nice(value: float) -> float:
    """Largest 1, 2 or 5 × 10^k not above ``value``."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for m in (5, 2, 1):
        if m * 10**exp <= value:
            return float(m * 10**exp)
    return float(10**exp)


def _date(text: Any) -> str:
    try:
        return datetime.fromisoformat(str(text)).strftime("%B %-d, %Y")
    except ValueError:
        return str(text or "unknown")


def _utm_for(frame: gpd.GeoDataFrame) -> str:
    crs = frame.estimate_utm_crs() if len(frame) else CRS.from_epsg(3857)
    return crs.to_string()


def _check_suffix(path: Path, allowed: Sequence[str]) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        msg = (f"{path}: unsupported file type {suffix or '(none)'!r}; "
               f"use one of {', '.join(allowed)}")  # fmt: skip
        raise ExportError(msg)
    return suffix


def _check_layers(layers: Sequence[str] | str) -> list[str]:
    if isinstance(layers, str):
        layers = [p.strip() for p in layers.split(",") if p.strip()]
    bad = [name for name in layers if name not in MAP_LAYERS]
    if bad:
        msg = f"unknown map layer {bad[0]!r}; valid layers: {', '.join(MAP_LAYERS)}"
        raise ExportError(msg)
    if not layers:
        msg = f"no map layer selected; choose from: {', '.join(MAP_LAYERS)}"
        raise ExportError(msg)
    return list(layers)


def _file_metadata(title: str, manifest: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"Title": title, "Software": f"Access Atlas {__version__}"}
    if suffix == ".pdf":
        meta = {"Title": title, "Creator": f"Access Atlas {__version__}",
                "Subject": source_line(manifest)[:500]}  # fmt: skip
    else:
        meta["Source"] = source_line(manifest)[:500]
    return meta
