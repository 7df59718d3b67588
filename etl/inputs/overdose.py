"""Overdose death tables: CDC WONDER, Ohio's county table, OEPS rates and FIPS-keyed tables.

Every reader returns the same *counties* schema (:data:`COUNTY_COLUMNS`), one row per area and
period, so the basis of each number travels with it:

``fips``
    5-character county FIPS (the first five digits of ``geoid``).
``geoid``
    The area's full key: equal to ``fips`` for counties, 11 digits for tracts, 12 for block
    groups.
``county``, ``state``
    County name ("Franklin County") and two-letter state ("OH"), where known.
``year``
    The year for yearly tables, missing for pooled periods.
``period``
    A label: ``"2020"``, ``"2021 (provisional)"``, ``"2009-2018 pooled"``.
``deaths``, ``population``
    Nullable integers; ``deaths`` is missing where the publisher suppressed it (or did not
    report it).
``rate_per_100k``, ``rate_basis``
    The publisher's rate (or deaths / population x 100,000 where only the counts are given)
    and its basis: ``"crude"``, ``"age-adjusted"`` or ``"modelled"``.
``age_adjusted_rate``
    Where the source publishes one (CDC WONDER by year).
``source``
    The config's ``source`` text (or the file name).
``suppressed``, ``unstable``, ``provisional``
    The publisher suppressed the count; the rate rests on fewer than 20 deaths or the publisher
    marked it unreliable (NCHS standard); the publisher marks the year as provisional.

Readers never suppress anything themselves (Ohio publishes counts from 1 to 9): the pipeline
applies :func:`etl.bundle.privacy.suppress_counts` before anything is written.

Quirks handled (see ``../shared/README.md``): byte-order marks, WONDER's ``"---"`` notes footer
and ``Notes``/``Total`` rows, ``Suppressed``/``Missing``/``Unreliable`` markers, 4-digit FIPS
that lost their leading zero, and WONDER exports whose county name holds an unquoted comma
("Autauga County, AL") so that every data row has one field more than the header. Such a file
is repaired only when every row is shifted the same way and the repaired county codes are all
5 digits; otherwise it is refused with the file and row, never misread silently.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
import re
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from etl._errors import ConfigError, InputError
from etl.config import OverdoseSource
from etl.controls import clean_input
from etl.fips import COUNTY_NAME_TABLES, STATE_FIPS

logger = logging.getLogger(__name__)


#: Columns of the counties schema, in order.
COUNTY_COLUMNS: Final[tuple[str, ...]] = (
    "fips", "geoid", "county", "state", "year", "period", "deaths", "population",
    "rate_per_100k", "rate_basis", "age_adjusted_rate", "source", "suppressed", "unstable",
    "provisional",
)  # fmt: skip

#: NCHS: rates based on fewer than this many deaths are unreliable.
UNSTABLE_BELOW: Final[int] = 20





_KEY_LENGTH: Final[dict[str, int]] = {"county": 5, "tract": 11, "block group": 12}


_SUPPRESSED_MARKERS: Final[frozenset[str]] = frozenset({"suppressed", "s", "*"})
_MISSING_MARKERS: Final[frozenset[str]] = frozenset(
    {"", "missing", "not applicable", "n/a", "na", "nan", "null", "<null>", "."}
)
_UNRELIABLE = re.compile(r"^\s*(?P<num>[-+]?\d[\d,]*(?:\.\d+)?)?\s*\(?unreliable\)?\s*$", re.I)
_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
_YEAR = re.compile(r"^\s*(?P<year>\d{4})(?:\.0)?\s*(?P<mark>\*+|\(?provisional\)?|p)?\s*$", re.I)
_GEOID = re.compile(r"^(?:\d{3}0000US|\d{3}US)?(?P<digits>\d+)$")


# --------------------------------------------------------------------------------------------
# raw rows


def _read_rows(path: Path, encoding: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Read a delimited text file as strings: header, data rows and their spreadsheet rows.

    Stops at WONDER's ``"---"`` footer; skips blank lines and WONDER ``Total`` rows.
    """
    try:
        text = path.read_text(encoding=encoding)
    except FileNotFoundError:
        msg = f"{path}: overdose table not found (config key overdose[].path)"
        raise InputError(msg) from None
    except UnicodeDecodeError as exc:
        msg = f"{path}: not readable as {encoding} ({exc}); set `encoding: latin-1` in the config"
        raise InputError(msg) from exc
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        msg = f"{path}: the file is empty"
        raise InputError(msg) from None
    notes = header.index("Notes") if "Notes" in header else None
    rows: list[list[str]] = []
    numbers: list[int] = []
    for rownum, cells in enumerate(reader, start=2):
        if cells and cells[0].strip().startswith("---"):
            break  # WONDER's notes footer: query criteria, citation, caveats
        if not any(c.strip() for c in cells):
            continue
        if notes is not None and notes < len(cells):
            if cells[notes].strip() == "Total":
                continue
            others = [c for i, c in enumerate(cells) if i != notes]
            if not any(c.strip() for c in others):
                continue  # a note on a line of its own
        rows.append(cells)
        numbers.append(rownum)
    return header, rows, numbers


def _repair_shift(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    numbers: list[int],
    *,
    name_col: str | None,
    key_col: str | None,
    key_length: int,
) -> list[list[str]]:
    """Check every row has the header's width; rejoin a name split by an unquoted comma."""
    width = len(header)
    if all(len(r) == width for r in rows):
        return rows
    lengths = pd.Series([len(r) for r in rows])
    common = int(lengths.mode().iloc[0])
    odd = np.flatnonzero(lengths.to_numpy() != common)
    if len(odd):
        i = int(odd[0])
        msg = (
            f"{path}: row {numbers[i]} has {len(rows[i])} fields but most rows have {common} "
            f"(the header has {width}). The file is inconsistently shifted, probably a name "
            "with an unquoted comma; refusing to guess. Re-export it with quoted fields."
        )
        raise InputError(msg)
    if common != width + 1 or name_col is None or name_col not in header:
        msg = (
            f"{path}: every data row has {common} fields but the header has {width}; cannot "
            "tell which column is split. Re-export the file with quoted fields."
        )
        raise InputError(msg)
    c = header.index(name_col)
    logger.info(
        "read_overdose: %s: header is one field short; rejoining %r split at an unquoted comma",
        path.name, name_col,
    )  # fmt: skip
    fixed = []
    for cells, rownum in zip(rows, numbers, strict=True):
        tail = cells[c + 1]
        if not re.fullmatch(r"\s?[A-Z]{2}", tail):
            msg = (
                f"{path}: row {rownum}: the header is one field short, but {cells[c]!r} + "
                f"{tail!r} does not read as 'County, ST'; refusing to guess. Re-export the "
                "file with quoted fields."
            )
            raise InputError(msg)
        fixed.append([*cells[:c], f"{cells[c]},{tail}", *cells[c + 2 :]])
    if key_col is not None and key_col in header:
        k = header.index(key_col)
        for cells, rownum in zip(fixed, numbers, strict=True):
            if not re.fullmatch(rf"\d{{{key_length}}}", cells[k].strip()):
                msg = (
                    f"{path}: row {rownum}: after rejoining the split {name_col!r}, column "
                    f"{key_col!r} holds {cells[k]!r}, not a {key_length}-digit code; the file "
                    "is shifted in a way this reader does not understand. Re-export it."
                )
                raise InputError(msg)
    return fixed


# --------------------------------------------------------------------------------------------
# cell parsing


def _bad(path: Path, row: int, column: str, value: object, problem: str) -> InputError:
    msg = f"{path}: row {row}, column {column!r}: {value!r} {problem}"
    return InputError(msg)


def _numbers(
    values: pd.Series,
    rows: np.ndarray,
    path: Path,
    column: str,
    *,
    integer: bool,
    blank_is_suppressed: bool,
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse counts or rates: values, publisher-suppressed mask, publisher-unreliable mask."""
    s = values.fillna("").astype(str).str.strip()
    low = s.str.lower()
    suppressed = low.isin(_SUPPRESSED_MARKERS).to_numpy(dtype=bool, copy=True)
    missing = low.isin(_MISSING_MARKERS).to_numpy(dtype=bool, copy=True)
    if blank_is_suppressed:
        suppressed |= (s == "").to_numpy()
        missing &= ~suppressed
    unrel = s.str.extract(_UNRELIABLE)
    unreliable = s.str.match(_UNRELIABLE).to_numpy(dtype=bool, copy=True)
    numeric_text = np.where(unreliable, unrel["num"].fillna("").to_numpy(), s.to_numpy())
    numeric_text = pd.Series(numeric_text, index=s.index)
    is_number = numeric_text.str.fullmatch(_NUMBER).to_numpy()
    bad = ~(suppressed | missing | is_number | (unreliable & (numeric_text == "").to_numpy()))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _bad(path, int(rows[i]), column, values.iloc[i], "is not a number")
    out = pd.to_numeric(
        numeric_text.where(is_number).str.replace(",", "", regex=False), errors="coerce"
    )
    negative = (out < 0).fillna(False).to_numpy()
    if negative.any():
        i = int(np.flatnonzero(negative)[0])
        raise _bad(path, int(rows[i]), column, values.iloc[i], "is negative")
    if integer:
        frac = ((out % 1).fillna(0) != 0).to_numpy()
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise _bad(path, int(rows[i]), column, values.iloc[i], "is not a whole number")
        out = out.round().astype("Int64")
    else:
        out = out.astype("float64")
    return out.reset_index(drop=True), suppressed, unreliable


#: The state code of Access Atlas's fictional built-in region (no real state uses 99).
FICTIONAL_STATE: Final[dict[str, str]] = {"99": "ZZ"}


def _states(src: OverdoseSource) -> dict[str, str]:
    """Known state codes; the fictional region's ``99`` only where the source says fictional."""
    return {**STATE_FIPS, **FICTIONAL_STATE} if src.fictional else STATE_FIPS


def _keys(
    values: pd.Series,
    rows: np.ndarray,
    path: Path,
    column: str,
    unit: str,
    states: dict[str, str] = STATE_FIPS,
) -> pd.Series:
    """Normalise FIPS/GEOID keys and check them: digits, right length, a real state prefix."""
    length = _KEY_LENGTH[unit]
    s = values.fillna("").astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    digits = s.str.extract(_GEOID)["digits"]
    # numeric columns lose leading zeros (1001 for 01001)
    short = digits.str.len() == length - 1
    digits = digits.where(~short, "0" + digits)
    ok = (digits.str.len() == length) & digits.str[:2].isin(list(states))
    ok &= digits.str[2:5] != "000"
    ok = ok.fillna(False).to_numpy()
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise _bad(
            path, int(rows[i]), column, values.iloc[i],
            f"is not a {unit} FIPS/GEOID ({length} digits starting with a state code)",
        )  # fmt: skip
    return digits.reset_index(drop=True)


def _years(
    values: pd.Series, rows: np.ndarray, path: Path, column: str
) -> tuple[pd.Series, np.ndarray]:
    """Parse years; a trailing ``**``/``(provisional)`` marks a provisional year."""
    s = values.fillna("").astype(str)
    m = s.str.extract(_YEAR)
    bad = m["year"].isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _bad(path, int(rows[i]), column, values.iloc[i], "is not a year")
    return m["year"].astype(int).reset_index(drop=True), m["mark"].notna().to_numpy()


def _norm_name(name: str) -> str:
    name = re.sub(r"\s+(county|parish|borough)$", "", name.strip().lower())
    return re.sub(r"[^a-z]", "", name)


def _names_to_fips(
    names: pd.Series, rows: np.ndarray, path: Path, column: str, state: str
) -> pd.Series:
    table = {_norm_name(n): f for n, f in COUNTY_NAME_TABLES[state].items()}
    keys = names.fillna("").astype(str).map(_norm_name)
    fips = keys.map(table)
    missing = fips.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        close = difflib.get_close_matches(
            str(names.iloc[i]).strip(), list(COUNTY_NAME_TABLES[state]), n=3, cutoff=0.6
        )
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        msg = (
            f"{path}: row {int(rows[i])}, column {column!r}: {names.iloc[i]!r} is not a "
            f"{state} county name{hint} Fix the name, or list it in `skip_names` if the row "
            "is not a county."
        )
        raise InputError(msg)
    return fips.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# the reader


def _column(frame: pd.DataFrame, name: str | None, path: Path, what: str) -> pd.Series | None:
    if name is None:
        return None
    if name not in frame.columns:
        cols = ", ".join(repr(c) for c in frame.columns)
        msg = f"{path}: no column {name!r} ({what}); the header has {cols}"
        raise InputError(msg)
    return frame[name]


def read_overdose(src: OverdoseSource, path: Path, *, role: str | None = None) -> pd.DataFrame:
    """Read one overdose table into the counties schema.

    Parameters
    ----------
    src
        How to read the table (format, columns, period, basis).
    path
        The file on disk (the config's ``path`` resolved against the config's folder).
    role
        The table's role in the build (``overdose.<k>``): control characters in its cells are
        replaced as it is read (one line) and recorded under it with their spreadsheet rows
        (:mod:`etl.controls`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COUNTY_COLUMNS`, one row per area and period, sorted by key and year.

    Raises
    ------
    InputError
        For a missing or unreadable file, a shifted header that cannot be repaired
        consistently, a missing column, a key that is not a FIPS/GEOID, a county name that
        does not map, a negative or non-numeric count, or a key repeated within a period; the
        message names the file, row (the header is row 1), column and value.
    ConfigError
        If the table has no year column and the config gives no ``period``, or ``years`` is
        set for a table without years.
    """
    path = Path(path)
    key_length = _KEY_LENGTH[src.unit]
    name_col = src.setting("county_column")
    key_col = src.setting("key_column")
    header, rows, numbers = _read_rows(path, src.encoding)
    rows = _repair_shift(
        path, header, rows, numbers, name_col=name_col, key_col=key_col, key_length=key_length
    )
    frame = pd.DataFrame(rows, columns=header).astype("string[pyarrow]")
    rownum = np.asarray(numbers, dtype=np.int64)
    frame = clean_input(frame, role=role, file=path, rows=numbers)

    names = _column(frame, name_col, path, "county_column")
    state_abbr = src.setting("state")
    skipped = 0
    if key_col is None and names is not None:
        skip = {_norm_name(n) for n in src.skip_names}
        keep = ~names.fillna("").astype(str).map(_norm_name).isin(skip).to_numpy()
        skipped = int((~keep).sum())
        frame, rownum = frame.loc[keep].reset_index(drop=True), rownum[keep]
        names = frame[name_col]
        keys = _names_to_fips(names, rownum, path, name_col, str(state_abbr))
    else:
        raw_keys = _column(frame, key_col, path, "key_column")
        assert raw_keys is not None  # key_col or county_column is validated by the model
        keys = _keys(raw_keys, rownum, path, str(key_col), src.unit, _states(src))

    # years / period
    year_col = src.setting("year_column")
    if year_col is not None and year_col not in frame.columns and src.year_column is None:
        year_col = None  # a pooled WONDER export has no Year column
    years_raw = _column(frame, year_col, path, "year_column")
    if years_raw is not None:
        years, provisional = _years(years_raw, rownum, path, str(year_col))
        period = years.astype(str).where(~provisional, years.astype(str) + " (provisional)")
        if src.years is not None:
            keep = years.isin(src.years).to_numpy()
            frame, rownum, keys = frame.loc[keep], rownum[keep], keys[keep]
            years, period, provisional = years[keep], period[keep], provisional[keep]
            frame, keys = frame.reset_index(drop=True), keys.reset_index(drop=True)
            years, period = years.reset_index(drop=True), period.reset_index(drop=True)
        year = years.astype("Int64")
    else:
        if src.period is None:
            msg = (
                f"{path}: the table has no year column; set `period` for it in the config "
                "(e.g. period: '2009-2018 pooled')"
            )
            raise ConfigError(msg)
        if src.years is not None:
            msg = f"{path}: `years` is set but the table has no year column"
            raise ConfigError(msg)
        year = pd.Series(pd.NA, index=range(len(frame)), dtype="Int64")
        period = pd.Series(src.period, index=range(len(frame)), dtype=object)
        provisional = np.zeros(len(frame), dtype=bool)

    # numbers
    n = len(frame)
    blank_supp = src.format == "cdc_wonder"
    deaths = pd.Series(pd.NA, index=range(n), dtype="Int64")
    suppressed = np.zeros(n, dtype=bool)
    unstable = np.zeros(n, dtype=bool)
    dcol = src.setting("deaths_column")
    if (raw := _column(frame, dcol, path, "deaths_column")) is not None:
        deaths, suppressed, unreliable = _numbers(
            raw, rownum, path, str(dcol), integer=True, blank_is_suppressed=blank_supp
        )
        unstable |= unreliable
    population = pd.Series(pd.NA, index=range(n), dtype="Int64")
    pcol = src.setting("population_column")
    if (raw := _column(frame, pcol, path, "population_column")) is not None:
        population, _, _ = _numbers(
            raw, rownum, path, str(pcol), integer=True, blank_is_suppressed=False
        )
    rate = pd.Series(np.nan, index=range(n), dtype="float64")
    rcol = src.setting("rate_column")
    if (raw := _column(frame, rcol, path, "rate_column")) is not None:
        rate, _, unreliable = _numbers(
            raw, rownum, path, str(rcol), integer=False, blank_is_suppressed=blank_supp
        )
        unstable |= unreliable
    aa = pd.Series(np.nan, index=range(n), dtype="float64")
    acol = src.setting("age_adjusted_column")
    if acol is not None and (src.age_adjusted_column is not None or acol in frame.columns):
        raw = _column(frame, acol, path, "age_adjusted_column")
        assert raw is not None
        aa, _, unreliable = _numbers(
            raw, rownum, path, str(acol), integer=False, blank_is_suppressed=blank_supp
        )
        unstable |= unreliable
    basis = src.setting("basis") or "crude"
    if basis == "crude":
        computed = deaths.astype("float64") / population.astype("float64") * 1e5
        fill = rate.isna() & deaths.notna() & population.notna() & (population > 0)
        rate = rate.where(~fill.to_numpy(), computed.round(1))
    has_deaths = deaths.notna().to_numpy()
    unstable |= has_deaths & (deaths.fillna(0).to_numpy() < UNSTABLE_BELOW)
    unstable |= suppressed
    deaths = deaths.mask(pd.Series(suppressed))

    # names and states
    if names is not None:
        county_text = names.fillna("").astype(str).str.strip().reset_index(drop=True)
        parts = county_text.str.extract(r"^(?P<name>.*?),\s*(?P<st>[A-Z]{2})$")
        county = parts["name"].fillna(county_text)
        if src.format in ("ohio_county",) or (key_col is None):
            county = county.where(county.str.contains(r"\s(?:County|Parish)$"), county + " County")
    else:
        county = pd.Series(pd.NA, index=range(n), dtype=object)
    state = keys.str[:2].map(_states(src))

    out = pd.DataFrame(
        {
            "fips": keys.str[:5].to_numpy(),
            "geoid": keys.to_numpy(),
            "county": county.to_numpy(),
            "state": state.to_numpy(),
            "year": year.to_numpy(),
            "period": np.asarray(period, dtype=object),
            "deaths": deaths.to_numpy(),
            "population": population.to_numpy(),
            "rate_per_100k": rate.to_numpy(),
            "rate_basis": basis,
            "age_adjusted_rate": aa.to_numpy(),
            "source": src.source or path.name,
            "suppressed": suppressed,
            "unstable": unstable,
            "provisional": np.asarray(provisional, dtype=bool),
        }
    )
    out["deaths"] = out["deaths"].astype("Int64")
    out["population"] = out["population"].astype("Int64")
    out["year"] = out["year"].astype("Int64")
    _check_unique(out, rownum, path)
    out = out.sort_values(["geoid", "year", "period"], kind="stable").reset_index(drop=True)
    logger.info(
        "read_overdose: %s rows (%s areas, %s periods, %s suppressed by the publisher, "
        "%s skipped non-county rows) from %s",
        f"{len(out):,}", f"{out['geoid'].nunique():,}", out["period"].nunique(),
        f"{int(out['suppressed'].sum()):,}", skipped, path.name,
    )  # fmt: skip
    return out


def _check_unique(out: pd.DataFrame, rownum: np.ndarray, path: Path) -> None:
    dup = out.duplicated(["geoid", "period"], keep=False).to_numpy()
    if dup.any():
        first = int(np.flatnonzero(dup)[0])
        same = (out["geoid"] == out["geoid"].iloc[first]) & (
            out["period"] == out["period"].iloc[first]
        )
        where = ", ".join(str(int(r)) for r in rownum[same.to_numpy()])
        msg = (
            f"{path}: rows {where}: area {out['geoid'].iloc[first]} appears more than once "
            f"for period {out['period'].iloc[first]!r}; keep one row per area and period"
        )
        raise InputError(msg)
