"""Privacy rules applied in the ETL: small-count suppression, unstable rates, generalized sites.

Rules (DESIGN.md, "Privacy"):

* **Suppression** (CDC WONDER): a death count from 1 to 9 is never shown. Any value above 0
  and below :data:`MIN_SHOWN` is suppressed (so a fractional estimate such as 4.6 deaths is
  suppressed too).
* **Complementary suppression**: a suppressed value must not be recoverable by subtracting
  shown values from a shown total. Within every relation (the parts of a row and its total
  column; the cells of one column within one group, whose sum is taken to be published
  elsewhere, e.g. a county or region total) either nothing is suppressed, or at least two
  unknowns remain and the sum of the suppressed parts that a reader could derive is at least
  :data:`MIN_SHOWN`. Where that fails, the smallest shown non-zero part is suppressed too
  (then a zero, then the total), until every relation holds. A group of model estimates
  only (modelled rates, no count published) has no total to subtract from: only its
  derivable small counts are hidden, not their neighbours.
* Rates built on a suppressed count are suppressed with it.
* **Rates without a count** (a modelled rate, a table of rates only) are kept with their
  basis, unless a count from 1 to 9 can be derived from the rate and a population
  (``rate x population / 100,000`` rounds to 1..9): then the rate is suppressed like the count.
  A count that can be derived counts as shown in complementary suppression, one that cannot
  as unknown.
* **Unstable** (NCHS): a rate built on fewer than 20 deaths (known or derived) is flagged
  unstable.
* **Generalized sites**: a site flagged not to be shown exactly is replaced by the H3 cell
  that holds it; its coordinates, address and network snap are removed.

Which cells were suppressed for which reason is not recorded in the output: labelling a cell
"complementary" would tell a reader it is not in 1..9.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Final

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy import linalg, sparse
from scipy.sparse import csgraph

from etl._errors import BundleError, InputError

logger = logging.getLogger(__name__)

#: Counts below this (and above 0) are never shown (CDC WONDER: 1-9 suppressed).
MIN_SHOWN: Final[int] = 10

#: Rates on fewer deaths than this are unstable (NCHS).
MIN_STABLE: Final[int] = 20

#: Columns that hold death counts, checked by :func:`assert_no_small_counts`.
COUNT_PATTERN: Final[str] = r"(^|_)deaths($|_)|(^|_)overdoses?($|_)"

#: Rate columns derived from a ``deaths`` count; suppressed with it.
RATE_COLUMNS: Final[tuple[str, ...]] = ("rate_per_100k", "age_adjusted_rate", "rate")

#: Columns that give away where a generalized site is (cleared by :func:`generalize_points`).
LOCATION_PATTERN: Final[str] = (
    r"^(lon|lat|lng|long|longitude|latitude|x|y|easting|northing|coords?)$"
    r"|^(address|street|addr|house|zip|postal|postcode|snap|node|geocode|parcel|block)"
    r"|(_address|_street|_lon|_lat|_zip|_node)$"
)


# --------------------------------------------------------------------------------------------
# suppression


def _flag_name(col: str, count_cols: Sequence[str], total_col: str | None) -> str:
    if len(count_cols) == 1 and col == count_cols[0] and total_col is None:
        return "suppressed"
    return f"{col}_suppressed"


def _relations(
    n: int,
    m: int,
    n_parts: int,
    groups: np.ndarray | None,
    has_total: bool,
    published: np.ndarray | None = None,
) -> list[tuple[np.ndarray, int | None]]:
    """List the relations of a table: (flat indices of the parts, flat index of the total).

    ``published`` (shape ``(n, m)``) marks the cells whose count is, or is exactly derivable
    from, a published figure; a group in which no cell of a column is (a table of modelled
    rates only) has no total a reader could subtract from, so it forms no relation.
    """
    rel: list[tuple[np.ndarray, int | None]] = []
    flat = np.arange(n * m).reshape(n, m)
    if has_total:
        for i in range(n):
            rel.append((flat[i, :n_parts], int(flat[i, n_parts])))
    if groups is None:
        members = [np.arange(n)]
    else:
        codes, _ = pd.factorize(pd.Series(groups), use_na_sentinel=False)
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        members = np.split(order, bounds)
    for j in range(m):
        for rows in members:
            if len(rows) < 2:  # a group of one row has no total apart from the cell itself
                continue
            if published is not None and not published[rows, j].any():
                continue  # only model estimates: no total of them is published
            rel.append((flat[rows, j], None))
    return rel


def _smallest_shown(values: np.ndarray, cells: np.ndarray, hidden: np.ndarray) -> int | None:
    """Pick the shown cell to suppress next: the smallest non-zero, else a zero, else None."""
    shown = cells[~hidden[cells] & ~np.isnan(values[cells])]
    if len(shown) == 0:
        return None
    v = values[shown]
    nonzero = shown[v > 0]
    pool = nonzero if len(nonzero) else shown
    return int(pool[np.argmin(values[pool])])


def _complement(values: np.ndarray, hidden: np.ndarray, relations: list, min_shown: float) -> int:
    """Suppress further cells until no relation discloses a hidden value; return how many."""
    added = 0
    unfixable: set[int] = set()
    changed = True
    while changed:
        changed = False
        for r, (parts, total) in enumerate(relations):
            if r in unfixable:
                continue
            violated = _violated(values, hidden, parts, total, min_shown)
            while violated:
                nxt = _smallest_shown(values, parts, hidden)
                if nxt is None and total is not None and not hidden[total]:
                    nxt = total
                if nxt is None:
                    unfixable.add(r)
                    break
                hidden[nxt] = True
                added += 1
                changed = True
                violated = _violated(values, hidden, parts, total, min_shown)
    return added


def _break_links(values: np.ndarray, hidden: np.ndarray, relations: list, min_shown: float) -> int:
    """Suppress more until no combination of relations determines a hidden cell."""
    added = 0
    member: dict[int, list[int]] = {}
    for r, (parts, total) in enumerate(relations):
        for c in [*parts.tolist(), *([total] if total is not None else [])]:
            member.setdefault(int(c), []).append(r)
    stuck: set[int] = set()
    while True:
        pinned = [c for c in _determined(values, hidden, relations, min_shown) if c not in stuck]
        if not pinned:
            return added
        cell = pinned[0]
        nxt = None
        for r in member.get(cell, []):
            parts, total = relations[r]
            nxt = _smallest_shown(values, parts, hidden)
            if nxt is None and total is not None and not hidden[total]:
                nxt = total
            if nxt is not None:
                break
        if nxt is None:
            logger.warning("suppress_counts: cannot unlink hidden cell %d; check the totals", cell)
            stuck.add(cell)
            continue
        hidden[nxt] = True
        added += 1 + _complement(values, hidden, relations, min_shown)


def _active(values: np.ndarray, parts: np.ndarray, total: int | None, min_shown: float) -> bool:
    """Whether a relation's total is public (an explicit total, or a group total of 10+)."""
    if total is not None:
        return True
    part_vals = values[parts]
    return bool(np.isnan(part_vals).any() or part_vals.sum() >= min_shown)


def _determined(values: np.ndarray, hidden: np.ndarray, relations: list, min_shown: float) -> list:
    """Find hidden cells that the public relations pin down together (linear algebra).

    Each relation alone leaves two or more unknowns after :func:`_complement`, but several
    relations together can still determine a cell (a table with row and column totals). A
    cell is determined when every solution of the relations' homogeneous system leaves it
    unchanged, i.e. its row of the null space is zero. Only components of unknowns joined by
    two or more relations are checked.
    """
    unknown = np.flatnonzero(hidden)
    if len(unknown) == 0:
        return []
    col_of = np.full(len(hidden), -1)
    col_of[unknown] = np.arange(len(unknown))
    eq_rows, eq_cols, eq_vals = [], [], []
    n_eq = 0
    for parts, total in relations:
        if not _active(values, parts, total, min_shown):
            continue
        cells = [(int(c), 1.0) for c in parts if hidden[c]]
        if total is not None and hidden[total]:
            cells.append((int(total), -1.0))
        if not cells:
            continue
        for c, v in cells:
            eq_rows.append(n_eq)
            eq_cols.append(col_of[c])
            eq_vals.append(v)
        n_eq += 1
    if n_eq == 0:
        return []
    a = sparse.csr_matrix((eq_vals, (eq_rows, eq_cols)), shape=(n_eq, len(unknown)))
    # components of the bipartite graph unknowns <-> equations
    graph = sparse.bmat([[None, a], [a.T, None]]).tocsr()
    n_comp, labels = csgraph.connected_components(graph, directed=False)
    eq_label, var_label = labels[:n_eq], labels[n_eq:]
    found = []
    for comp in range(n_comp):
        vars_ = np.flatnonzero(var_label == comp)
        eqs = np.flatnonzero(eq_label == comp)
        if len(vars_) == 0 or len(eqs) < 2:
            continue  # one relation alone was handled by _complement
        block = a[eqs][:, vars_].toarray()
        null = linalg.null_space(block)
        pinned = np.abs(null).max(axis=1) < 1e-9 if null.size else np.ones(len(vars_), bool)
        found.extend(int(unknown[v]) for v in vars_[pinned])
    return found


def _violated(
    values: np.ndarray, hidden: np.ndarray, parts: np.ndarray, total: int | None, min_shown: float
) -> bool:
    """Whether a relation lets a reader recover a hidden value or a small hidden sum."""
    hid = hidden[parts]
    n_hidden = int(hid.sum()) + (int(hidden[total]) if total is not None else 0)
    if n_hidden == 0:
        return False
    part_vals = values[parts]
    if total is None:
        if not np.isnan(part_vals).any() and part_vals.sum() < min_shown:
            return False  # the group total is itself small, so it is not published
        return n_hidden == 1 or float(np.nansum(part_vals[hid])) < min_shown
    if hidden[total]:
        return n_hidden == 1
    derived = float(values[total] - np.nansum(part_vals[~hid]))
    return n_hidden == 1 or derived < min_shown


def derived_counts(
    df: pd.DataFrame, rate_cols: Sequence[str], population_col: str | None
) -> np.ndarray:
    """Counts a reader can derive from rates per 100,000 and a population.

    Parameters
    ----------
    df
        The table.
    rate_cols
        Rate columns (per 100,000) present in ``df``.
    population_col
        The population each rate is per; None derives nothing.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(df), len(rate_cols))``: ``rate x population / 100,000`` rounded to a
        whole number (half up), NaN where the rate or the population is missing.
    """
    out = np.full((len(df), len(rate_cols)), np.nan)
    if population_col is None or population_col not in df.columns:
        return out
    pop = pd.to_numeric(df[population_col], errors="coerce").astype("float64").to_numpy()
    pop = np.where(pop > 0, pop, np.nan)
    for k, col in enumerate(rate_cols):
        rate = pd.to_numeric(df[col], errors="coerce").astype("float64").to_numpy()
        out[:, k] = np.floor(rate * pop / 1e5 + 0.5)
    return out


def suppress_counts(
    df: pd.DataFrame,
    *,
    count_cols: Sequence[str],
    total_col: str | None = None,
    group_col: str | None = None,
    rate_cols: Mapping[str, Sequence[str]] | None = None,
    population_col: str | None = None,
    estimate_col: str | None = None,
    min_shown: float = MIN_SHOWN,
) -> pd.DataFrame:
    """Suppress small counts, with complementary suppression, and the rates built on them.

    Parameters
    ----------
    df
        One row per area (and period); count columns numeric, missing where unknown.
    count_cols
        The count columns to protect (e.g. ``["deaths"]``).
    total_col
        A column holding each row's total of ``count_cols`` (it is protected as well).
    group_col
        Rows whose counts add up to a published total (e.g. ``"period"``: the counties of
        one year add up to the state's count). ``None`` treats the whole frame as one group.
    rate_cols
        Rate columns per count column, suppressed where the count is. The default maps
        ``deaths`` to the :data:`RATE_COLUMNS` present.
    population_col
        The population the rates are per 100,000 of. Where a count is missing but not
        flagged suppressed, its rates are kept unless a count above 0 and below
        ``min_shown`` can be derived from a rate and this population
        (:func:`derived_counts`); a derivable count takes part in complementary suppression
        as a shown value (and is suppressed, with its rates, when chosen), but is never
        written into the count column. Without it, a missing count's rates are kept and the
        count is unknown to a reader.
    estimate_col
        A boolean column marking rows whose rates are model estimates (e.g. OEPS modelled
        mortality). A count derived from an estimate is not a count: a group whose rows are
        all estimates without a published count sums to no published total, so only their
        own derivable small counts are hidden. ``None``: every rate is exact.
    min_shown
        Counts above 0 and below this are suppressed.

    Returns
    -------
    pandas.DataFrame
        A copy with suppressed counts missing (nullable ``Int64`` where the column held whole
        numbers), rates missing beside them, and boolean flag columns: ``suppressed`` for a
        single count column, else ``<col>_suppressed`` per column. A missing count that was
        flagged suppressed on input stays suppressed; one that was not (the publisher's
        "Missing", a table of rates) is not flagged and keeps its rates, but counts as
        unknown to a reader, so the cells around it are protected as if it were suppressed;
        a count derivable from a kept rate is protected as if shown.

    Raises
    ------
    InputError
        If a count column is missing, not numeric or negative.
    """
    count_cols = list(count_cols)
    cols = count_cols + ([total_col] if total_col else [])
    out = df.copy()
    n, m = len(out), len(cols)
    values = np.full((n, m), np.nan)
    hidden = np.zeros((n, m), dtype=bool)
    unknown = np.zeros((n, m), dtype=bool)  # missing and not flagged: unknown, not suppressed
    published = np.zeros((n, m), dtype=bool)  # a count given, or exactly derivable
    estimated = (
        out[estimate_col].fillna(False).to_numpy(dtype=bool)
        if estimate_col is not None
        else np.zeros(n, dtype=bool)
    )
    derived = np.zeros((n, m), dtype=bool)  # missing, but derivable from a rate: not written
    rate_map = dict(rate_cols) if rate_cols is not None else {}
    if rate_cols is None and "deaths" in count_cols:
        rate_map["deaths"] = [c for c in RATE_COLUMNS if c in out.columns]
    for j, col in enumerate(cols):
        if col not in out.columns:
            msg = f"suppress_counts: no column {col!r}; columns: {', '.join(map(str, out.columns))}"
            raise InputError(msg)
        v = pd.to_numeric(out[col], errors="coerce").astype("float64").to_numpy()
        bad = np.isnan(v) & out[col].notna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            msg = f"suppress_counts: column {col!r}, row {i}: {out[col].iloc[i]!r} is not a count"
            raise InputError(msg)
        if (v < 0).any():
            i = int(np.flatnonzero(v < 0)[0])
            msg = f"suppress_counts: column {col!r}, row {i}: {v[i]} is a negative count"
            raise InputError(msg)
        published[:, j] = ~np.isnan(v) | ~estimated
        flag = _flag_name(col, count_cols, total_col)
        pre = out[flag].fillna(False).to_numpy(dtype=bool) if flag in out.columns else False
        rates = [r for r in rate_map.get(col, []) if r in out.columns]
        from_rates = derived_counts(out, rates, population_col)
        can = np.isnan(v) & ~pre & ~np.isnan(from_rates).all(axis=1)
        small_rate = ((from_rates > 0) & (from_rates < min_shown)).any(axis=1)
        first = np.full(n, np.nan)
        for k in range(from_rates.shape[1] - 1, -1, -1):  # the first rate that derives one
            first = np.where(np.isnan(from_rates[:, k]), first, from_rates[:, k])
        v = np.where(can, first, v)
        derived[:, j] = can
        values[:, j] = v
        hidden[:, j] = np.isnan(v) | pre | ((v > 0) & (v < min_shown)) | (can & small_rate)
        unknown[:, j] = np.isnan(v) & ~pre
    primary = int(hidden.sum())
    if group_col is not None and group_col not in out.columns:
        msg = f"suppress_counts: no group column {group_col!r}"
        raise InputError(msg)
    groups = out[group_col].to_numpy() if group_col else None
    relations = _relations(n, m, len(count_cols), groups, total_col is not None, published)
    flat_v, flat_h = values.ravel(), hidden.ravel()
    added = _complement(flat_v, flat_h, relations, min_shown)
    if total_col is not None or m > 1:
        added += _break_links(flat_v, flat_h, relations, min_shown)
    hidden = flat_h.reshape(n, m)

    for j, col in enumerate(cols):
        whole = np.isnan(values[:, j]) | (values[:, j] % 1 == 0)
        kept = np.where(hidden[:, j] | derived[:, j], np.nan, values[:, j])
        out[col] = pd.array(kept, dtype="Float64").round().astype("Int64") if whole.all() else kept
        out[_flag_name(col, count_cols, total_col)] = hidden[:, j] & ~unknown[:, j]
        for rate in rate_map.get(col, []):
            # a missing count's rate stays (it discloses no count); a suppressed one's goes
            out[rate] = out[rate].astype("float64").mask(hidden[:, j] & ~unknown[:, j])
    logger.info(
        "suppress_counts: %s cells, %s primary (unknown or 1-%d), %s complementary",
        f"{n * m:,}", f"{primary:,}", int(min_shown) - 1, f"{added:,}",
    )  # fmt: skip
    return out


def mark_unstable(
    df: pd.DataFrame,
    count_col: str,
    min_count: int = MIN_STABLE,
    *,
    flag_col: str = "unstable",
    rate_cols: Sequence[str] | None = None,
    population_col: str | None = None,
) -> pd.DataFrame:
    """Flag rates built on fewer than ``min_count`` deaths as unstable (NCHS).

    Parameters
    ----------
    df
        A frame with ``count_col`` (missing where suppressed or unknown).
    count_col
        The count the rate is built on.
    min_count
        Fewer deaths than this make the rate unstable.
    flag_col
        The flag column; an existing flag (e.g. the publisher's "Unreliable") is kept.
    rate_cols, population_col
        Where the count is unknown, a count derived from one of these rates and the
        population (:func:`derived_counts`) decides instead; default: the
        :data:`RATE_COLUMNS` present, and no population (nothing derived).

    Returns
    -------
    pandas.DataFrame
        A copy with ``flag_col`` set. A suppressed count (its ``suppressed`` flag set) is
        unstable; a count that is merely unknown is unstable only where a count below
        ``min_count`` can be derived, else it keeps its existing flag.
    """
    out = df.copy()
    counts = pd.to_numeric(out[count_col], errors="coerce").astype("float64").to_numpy()
    small = ~np.isnan(counts) & (counts < min_count)
    flag = _flag_name(count_col, [count_col], None)
    if flag not in out.columns:
        flag = f"{count_col}_suppressed"
    supp = out[flag].fillna(False).to_numpy(dtype=bool) if flag in out.columns else False
    prev = out[flag_col].fillna(False).to_numpy(dtype=bool) if flag_col in out.columns else False
    rates = [c for c in (RATE_COLUMNS if rate_cols is None else rate_cols) if c in out.columns]
    from_rates = derived_counts(out, rates, population_col)
    small |= np.isnan(counts) & (from_rates < min_count).any(axis=1)
    out[flag_col] = prev | small | (np.isnan(counts) & supp)
    logger.info("mark_unstable: %d of %d rows unstable", int(out[flag_col].sum()), len(out))
    return out


# --------------------------------------------------------------------------------------------
# generalized sites


def generalize_points(
    gdf: gpd.GeoDataFrame, mask: Sequence[bool] | np.ndarray | pd.Series, *, h3_resolution: int = 8
) -> gpd.GeoDataFrame:
    """Replace sites that must not be shown exactly by the H3 cell that holds them.

    Parameters
    ----------
    gdf
        Point sites with a CRS.
    mask
        True for each site not to be shown exactly (e.g. a syringe services program that
        asked for it).
    h3_resolution
        Cell size: 8 is about 0.74 km² (edge ≈ 460 m), 7 about 5 km².

    Returns
    -------
    geopandas.GeoDataFrame
        A copy in the same CRS. Masked rows get the cell polygon as geometry, ``h3_cell`` (the
        cell id) and ``generalized`` True; every coordinate, address and network-snap column
        (:data:`LOCATION_PATTERN`) is cleared in those rows.

    Raises
    ------
    InputError
        If the layer has no CRS, or a masked geometry is not a point.
    """
    if gdf.crs is None:
        msg = "generalize_points: the layer has no CRS; set one before generalizing"
        raise InputError(msg)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (len(gdf),):
        msg = f"generalize_points: mask has {mask.shape} entries for {len(gdf)} sites"
        raise InputError(msg)
    out = gdf.copy()
    out["generalized"] = mask
    out["h3_cell"] = pd.Series(pd.NA, index=out.index, dtype="string")
    if not mask.any():
        return out
    geoms = out.geometry.to_numpy()[mask]
    types = shapely.get_type_id(geoms)
    if (types != 0).any():
        i = int(np.flatnonzero(mask)[np.flatnonzero(types != 0)[0]])
        msg = f"generalize_points: site {i} is a {geoms[types != 0][0].geom_type}, not a point"
        raise InputError(msg)
    to_wgs = Transformer.from_crs(CRS(gdf.crs), "EPSG:4326", always_xy=True)
    lon, lat = to_wgs.transform(shapely.get_x(geoms), shapely.get_y(geoms))
    cells = [h3.latlng_to_cell(la, lo, h3_resolution) for la, lo in zip(lat, lon, strict=True)]
    polys = [shapely.Polygon([(p[1], p[0]) for p in h3.cell_to_boundary(c)]) for c in cells]
    polys_arr = gpd.GeoSeries(polys, crs="EPSG:4326").to_crs(gdf.crs).to_numpy()
    geometry = out.geometry.to_numpy().copy()
    geometry[mask] = polys_arr
    out = out.set_geometry(gpd.GeoSeries(geometry, index=out.index, crs=gdf.crs))
    out.loc[mask, "h3_cell"] = cells
    pattern = re.compile(LOCATION_PATTERN, re.I)
    geom_name = out.geometry.name
    cleared = [c for c in out.columns if c != geom_name and pattern.search(str(c))]
    for col in cleared:
        values = out[col]
        if pd.api.types.is_bool_dtype(values):
            values = values.astype("boolean")
        elif pd.api.types.is_integer_dtype(values):
            values = values.astype("Int64")
        out[col] = values.mask(mask)
    logger.info(
        "generalize_points: %d of %d sites shown as H3 res-%d cells; cleared %s",
        int(mask.sum()), len(out), h3_resolution, ", ".join(cleared) or "no columns",
    )  # fmt: skip
    return out


# --------------------------------------------------------------------------------------------
# bundle checks


def assert_no_small_counts(
    frames: Mapping[str, pd.DataFrame],
    *,
    pattern: str = COUNT_PATTERN,
    min_shown: float = MIN_SHOWN,
) -> None:
    """Check every layer before a bundle is written: no death count from 1 to 9 survives.

    Checks each column whose name matches ``pattern`` (``deaths``, ``deaths_inside``,
    ``overdose_deaths`` ...; flag columns ending in ``_suppressed`` are skipped): no value
    above 0 and below ``min_shown``; and where a ``suppressed`` flag is set, no count or rate
    in that row.

    Parameters
    ----------
    frames
        Layer name -> table (a GeoDataFrame or DataFrame).
    pattern
        Regular expression for count columns.
    min_shown
        Counts above 0 and below this must not be present.

    Raises
    ------
    BundleError
        Naming the layer, the column and the first offending row.
    """
    regex = re.compile(pattern, re.I)
    for layer, frame in frames.items():
        counts = [
            c for c in frame.columns
            if regex.search(str(c)) and not re.search(r"(suppressed|unstable|rate)", str(c), re.I)
        ]  # fmt: skip
        for col in counts:
            v = pd.to_numeric(frame[col], errors="coerce").astype("float64").to_numpy()
            small = (v > 0) & (v < min_shown)
            if small.any():
                i = int(np.flatnonzero(small)[0])
                msg = (
                    f"layer {layer!r}, column {col!r}, row {i}: count {v[i]:g} is between 1 and "
                    f"{min_shown - 1:g}; run etl.bundle.privacy.suppress_counts on it before "
                    "writing"
                )
                raise BundleError(msg)
        flags = [
            c for c in frame.columns if str(c) == "suppressed" or str(c).endswith("_suppressed")
        ]
        for flag in flags:
            on = frame[flag].fillna(False).to_numpy(dtype=bool)
            if not on.any():
                continue
            base = "deaths" if flag == "suppressed" else str(flag)[: -len("_suppressed")]
            guarded = [base] if base in frame.columns else []
            if base in ("deaths", *counts):
                guarded += [c for c in RATE_COLUMNS if c in frame.columns]
            for col in guarded:
                leak = on & frame[col].notna().to_numpy()
                if leak.any():
                    i = int(np.flatnonzero(leak)[0])
                    msg = (
                        f"layer {layer!r}, column {col!r}, row {i}: holds a value where "
                        f"{flag!r} is set; a suppressed count (or a rate built on it) must be "
                        "empty"
                    )
                    raise BundleError(msg)
    logger.info("assert_no_small_counts: %d layers checked", len(frames))


def assert_no_exact_points(frames: Mapping[str, pd.DataFrame]) -> None:
    """Check that no generalized site keeps a point geometry, coordinates or an address.

    Parameters
    ----------
    frames
        Layer name -> table; layers without a ``generalized`` column are skipped.

    Raises
    ------
    BundleError
        Naming the layer, the column and the first offending row.
    """
    pattern = re.compile(LOCATION_PATTERN, re.I)
    for layer, frame in frames.items():
        if "generalized" not in frame.columns:
            continue
        on = frame["generalized"].fillna(False).to_numpy(dtype=bool)
        if not on.any():
            continue
        if isinstance(frame, gpd.GeoDataFrame):
            points = on & (shapely.get_type_id(frame.geometry.to_numpy()) == 0)
            if points.any():
                i = int(np.flatnonzero(points)[0])
                msg = f"layer {layer!r}, row {i}: a generalized site still has a point geometry"
                raise BundleError(msg)
            geom_name = frame.geometry.name
        else:
            geom_name = None
        for col in frame.columns:
            if col == geom_name or not pattern.search(str(col)):
                continue
            leak = on & frame[col].notna().to_numpy()
            if leak.any():
                i = int(np.flatnonzero(leak)[0])
                msg = (
                    f"layer {layer!r}, column {col!r}, row {i}: a generalized site still "
                    "holds its location; run etl.bundle.privacy.generalize_points"
                )
                raise BundleError(msg)
    logger.info("assert_no_exact_points: %d layers checked", len(frames))
