"""Colours and class breaks shared by the map's layers, its legend and its charts.

Category colours and marker shapes come from :mod:`etl.categories` (Okabe-Ito, so they stay
distinguishable with the common colour-vision deficiencies, and each category has its own
shape so colour is never the only cue). Sequential ramps are ColorBrewer schemes marked
colour-blind safe.
"""

from __future__ import annotations

from typing import Final

#: Fill of the desert (people beyond the threshold).
DESERT_COLOUR: Final[str] = "#B35806"

#: Travel-time bands, nearest first (ColorBrewer YlGnBu, reversed: near is dark).
BAND_COLOURS: Final[tuple[str, ...]] = ("#225EA8", "#41B6C4", "#A1DAB4", "#E3F4C6", "#F7FCE0")

#: Travel time by area, in minutes: class breaks and colours (YlGnBu, 7 classes).
TIME_BREAKS_MIN: Final[tuple[float, ...]] = (5, 10, 15, 20, 30, 45)
TIME_COLOURS: Final[tuple[str, ...]] = (
    "#FFFFCC",
    "#C7E9B4",
    "#7FCDBB",
    "#41B6C4",
    "#1D91C0",
    "#225EA8",
    "#0C2C84",
)

#: Practitioners per 10,000 people (capacity-aware access, etl.engine.capacity): class breaks
#: (the first class is exactly 0: none within the catchment) and colours. Zero is PuOr's light
#: orange (the desert's hue family, told apart from blue with every common colour-vision
#: deficiency, and from the grey of areas with no covered people); then PuBu, 7 classes.
CAPACITY_BREAKS: Final[tuple[float, ...]] = (0, 1, 2, 4, 6, 8, 12)
CAPACITY_COLOURS: Final[tuple[str, ...]] = (
    "#FDB863",
    "#ECE7F2",
    "#D0D1E6",
    "#A6BDDB",
    "#74A9CF",
    "#3690C0",
    "#0570B0",
    "#034E7B",
)

#: Overdose death rates (RdPu, 5 classes); breaks are quantiles of the shown rates.
OVERDOSE_COLOURS: Final[tuple[str, ...]] = ("#FEEBE2", "#FBB4B9", "#F768A1", "#C51B8A", "#7A0177")
SUPPRESSED_COLOUR: Final[str] = "#BDBDBD"

#: Zoning barriers and sitable land.
BARRIER_COLOUR: Final[str] = "#6A3D9A"
SITABLE_COLOUR: Final[str] = "#5AAE61"

#: Radius (m) drawn for a site shown only as its H3 cell (res 8 edge ≈ 460 m).
APPROX_RADIUS_M: Final[int] = 460


def band_colours(n: int) -> list[str]:
    """Colours for ``n`` bands, nearest first."""
    return [BAND_COLOURS[min(i, len(BAND_COLOURS) - 1)] for i in range(n)]
