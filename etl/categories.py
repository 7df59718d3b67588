"""Care categories, travel modes and their default thresholds (from the design card).

The category keys are the canonical values of the ``category`` field in every layer.
Labels are person-first, plain-language and shown in the app, the exports and the manifest.
Colours are the Okabe-Ito palette, which stays distinguishable with the common forms of
colour-vision deficiency; every category also has a distinct marker shape so colour is
never the only cue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CATEGORIES: Final[tuple[str, ...]] = (
    "methadone",
    "buprenorphine",
    "naltrexone",
    "syringe_services",
    "pharmacy",
    "naloxone",
    "treatment_facility",
)

MODES: Final[tuple[str, ...]] = ("drive", "walk")

CATEGORY_LABELS: Final[dict[str, str]] = {
    "methadone": "Opioid treatment program (methadone)",
    "buprenorphine": "Buprenorphine prescriber",
    "naltrexone": "Naltrexone provider",
    "syringe_services": "Syringe services program",
    "pharmacy": "Pharmacy",
    "naloxone": "Naloxone distribution",
    "treatment_facility": "Substance use treatment facility",
}

#: Okabe-Ito colours, one per category.
CATEGORY_COLOURS: Final[dict[str, str]] = {
    "methadone": "#0072B2",
    "buprenorphine": "#E69F00",
    "naltrexone": "#009E73",
    "syringe_services": "#CC79A7",
    "pharmacy": "#56B4E9",
    "naloxone": "#D55E00",
    "treatment_facility": "#000000",
}

#: Marker shapes, one per category, so colour is never the only cue.
CATEGORY_SYMBOLS: Final[dict[str, str]] = {
    "methadone": "square",
    "buprenorphine": "circle",
    "naltrexone": "triangle",
    "syringe_services": "diamond",
    "pharmacy": "cross",
    "naloxone": "star",
    "treatment_facility": "hexagon",
}

MODE_LABELS: Final[dict[str, str]] = {"drive": "Driving", "walk": "Walking"}

#: Default desert thresholds in minutes per category and mode (DESIGN.md, "Access metrics").
#: A (category, mode) pair absent here gets travel times but no desert.
DEFAULT_THRESHOLDS_MIN: Final[dict[str, dict[str, float]]] = {
    "methadone": {"drive": 30.0},
    "buprenorphine": {"drive": 30.0, "walk": 20.0},
    "naltrexone": {"drive": 30.0},
    "syringe_services": {"walk": 20.0},
    "pharmacy": {"drive": 10.0, "walk": 15.0},
    "naloxone": {"drive": 10.0, "walk": 15.0},
}

#: Default isochrone bands in minutes.
DEFAULT_BANDS_MIN: Final[tuple[int, ...]] = (10, 20, 30)


def site_mask(providers: pd.DataFrame, category: str) -> np.ndarray:
    """Which sites offer ``category``: their own category, a merged service, or naloxone stock.

    Parameters
    ----------
    providers
        The providers layer (``category``; optional ``services`` as "a; b" and ``naloxone``).
    category
        A key of :data:`CATEGORY_LABELS`.

    Returns
    -------
    numpy.ndarray
        Boolean mask over the rows.
    """
    import numpy as np

    mask = np.array(providers["category"] == category, dtype=bool)
    if "services" in providers:
        services = providers["services"].fillna("").astype(str)
        mask = mask | services.str.split(r"\s*;\s*").apply(lambda s: category in s).to_numpy(
            dtype=bool
        )
    if category == "naloxone" and "naloxone" in providers:
        mask = mask | np.array(providers["naloxone"].fillna(False).astype(bool), dtype=bool)
    return np.asarray(mask, dtype=bool)
