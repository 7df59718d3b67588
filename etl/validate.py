"""Check a region config against its input files, catching what ``build`` would hit later.

:func:`validate_config` opens every input file a config names (providers, areas and their
population, overdose tables, places, zoning, the transit feed, the geocoding references, the
street extract), checks that every mapped column exists (naming the file, the column, the
file's columns and close matches), chooses the CRS where the config leaves it out
(:func:`resolve_crs`, which ``build`` calls too), checks that the street extract covers the
areas plus ``buffer_km``, and warns of categories that no provider list can yield. It never
geocodes or routes. Every problem is one line; all are reported, not only the first.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from etl._errors import AtlasError, InputError
from etl.categories import CATEGORIES
from etl.config import RegionConfig, utm_zone

logger = logging.getLogger(__name__)

Level = Literal["error", "warning", "note"]

#: Show at most this many of a file's columns in a message.
_MAX_COLUMNS: Final[int] = 40
#: A shortfall smaller than this (km) is rounding, not a gap.
_COVERAGE_SLACK_KM: Final[float] = 0.05
_KM_PER_DEG_LAT: Final[float] = 111.32
_TEXT_SUFFIXES: Final[tuple[str, ...]] = (".csv", ".txt", ".tsv")
_EXCEL_SUFFIXES: Final[tuple[str, ...]] = (".xlsx", ".xls")
#: Region keys other parts of the config may add; each is checked where present.
_EXTRA_INPUTS: Final[tuple[str, ...]] = ("counties", "county_outlines", "boundary")


@dataclass(frozen=True)
class Problem:
    """One finding: its level, the config key it concerns and what is wrong (one line)."""

    level: Level
    where: str
    text: str

    def line(self) -> str:
        """The finding as printed: ``error: providers[oeps]: column ...``."""
        prefix = "" if self.level == "note" else f"{self.level}: "
        return f"{prefix}{self.where}: {self.text}"


@dataclass
class Report:
    """What :func:`validate_config` found.

    Attributes
    ----------
    problems
        Errors, warnings and notes, in the order found.
    crs
        The CRS a build will use (given or chosen), None where it could not be chosen.
    files
        Input files opened.
    seconds
        Time taken.
    """

    problems: list[Problem] = field(default_factory=list)
    crs: str | None = None
    files: int = 0
    seconds: float = 0.0

    @property
    def errors(self) -> list[Problem]:
        """The problems that would stop a build."""
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems a build survives."""
        return [p for p in self.problems if p.level == "warning"]


# --------------------------------------------------------------------------------------
# The CRS
# --------------------------------------------------------------------------------------


def areas_bounds(cfg: RegionConfig) -> tuple[float, float, float, float]:
    """Return the areas' bounding box in WGS84 (lon/lat), read from the file's header.

    Raises
    ------
    InputError
        If the areas file is missing, unreadable or declares no CRS.
    """
    import pyogrio
    from pyproj import CRS, Transformer

    path = cfg.resolve(cfg.areas.path)
    if not path.exists():
        msg = f"{path}: areas file not found; check `areas.path` in the region config"
        raise InputError(msg)
    try:
        info = pyogrio.read_info(cfg.reader_path(cfg.areas.path), force_total_bounds=True)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        msg = f"{path}: cannot read the areas layer: {exc}"
        raise InputError(msg) from None
    if not info.get("crs"):
        msg = f"{path}: the areas layer declares no CRS (.prj missing?); add one, e.g. EPSG:4269"
        raise InputError(msg)
    tr = Transformer.from_crs(CRS.from_user_input(info["crs"]), "EPSG:4326", always_xy=True)
    return tuple(float(v) for v in tr.transform_bounds(*info["total_bounds"]))  # type: ignore[return-value]


def choose_crs(cfg: RegionConfig) -> tuple[str, str | None]:
    """Return the CRS a build uses and, when the config leaves it out, why it was chosen.

    Returns
    -------
    crs : str
        The config's ``crs``, or the UTM zone of the areas' centre.
    note : str or None
        E.g. "not given; using EPSG:32617 (UTM 17N) from the areas' centre"; None when
        the config gives a CRS.
    """
    if cfg.crs is not None:
        return cfg.crs, None
    west, south, east, north = areas_bounds(cfg)
    crs, label = utm_zone((west + east) / 2, (south + north) / 2)
    return crs, f"not given; using {crs} ({label}) from the areas' centre"


def resolve_crs(cfg: RegionConfig) -> RegionConfig:
    """Return the config with ``crs`` set: as given, or chosen by :func:`choose_crs`."""
    if cfg.crs is not None:
        return cfg
    crs, note = choose_crs(cfg)
    logger.info("crs: %s", note)
    return cfg.model_copy(update={"crs": crs})


# --------------------------------------------------------------------------------------
# Reading headers
# --------------------------------------------------------------------------------------


def _header(
    cfg: RegionConfig,
    path_str: str,
    *,
    layer: str | None = None,
    sheet: str | int | None = None,
    encoding: str = "utf-8",
) -> list[str]:
    """Open a table or GIS file and return its column names (a CSV is decoded whole)."""
    import pyogrio

    from etl.inputs.tables import decode_csv_bytes

    path = cfg.resolve(path_str)
    if not path.exists():
        msg = f"{path}: file not found; check `path` in the region config"
        raise InputError(msg)
    name = path.name.lower()
    if name.endswith(_EXCEL_SUFFIXES):
        try:
            frame = pd.read_excel(path, sheet_name=sheet or 0, nrows=0)
        except (ValueError, OSError, KeyError) as exc:
            where = f" sheet {sheet!r}" if sheet else ""
            msg = f"{path}: cannot read the spreadsheet{where}: {exc}"
            raise InputError(msg) from None
        return [str(c).strip() for c in frame.columns]
    if name.endswith(_TEXT_SUFFIXES) and not path_str.startswith("zip://"):
        text = decode_csv_bytes(path.read_bytes(), encoding=encoding, path=path)
        first = text.split("\n", 1)[0]
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
        row = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), None)
        if not row:
            msg = f"{path}: the file is empty (no header row)"
            raise InputError(msg)
        return [c.strip() for c in row]
    try:
        info = pyogrio.read_info(cfg.reader_path(path_str), layer=layer)
    except Exception as exc:  # pyogrio raises DataSourceError/DataLayerError and friends
        msg = f"{path}: cannot open{f' layer {layer!r}' if layer else ''}: {exc}"
        raise InputError(msg) from None
    return [str(c) for c in info["fields"]]


def missing_column(file: str, column: str, columns: Iterable[str], key: str = "") -> str | None:
    """Return the one-line message for a mapped column the file lacks, or None if present.

    A column present with other capitals or spaces counts as present (the readers match
    them so). The message names the file, the column, the file's columns and close matches.

    Parameters
    ----------
    file
        The file's name, for the message.
    column
        The column the config maps.
    columns
        The file's columns.
    key
        The config key that names the column (e.g. ``columns.name``).
    """
    cols = [str(c) for c in columns]
    if column in cols or column.strip().lower() in {c.strip().lower() for c in cols}:
        return None
    shown = ", ".join(cols[:_MAX_COLUMNS]) + (", ..." if len(cols) > _MAX_COLUMNS else "")
    close = difflib.get_close_matches(column, cols, n=3, cutoff=0.6)
    if not close:
        lower = {c.lower(): c for c in cols}
        close = [lower[c] for c in difflib.get_close_matches(column.lower(), list(lower), n=3)]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    what = f" ({key})" if key else ""
    return f"column {column!r}{what} not in {file}; columns: {shown or '(none)'}{hint}"


# --------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------


class _Checker:
    def __init__(self, cfg: RegionConfig) -> None:
        self.cfg = cfg
        self.report = Report()
        self.failed: set[str] = set()  # files already reported as missing or unreadable
        self.area_frame: Any = None  # the areas as read, when they could be

    def add(self, level: Level, where: str, text: str) -> None:
        self.report.problems.append(Problem(level, where, text))

    def run(self, where: str, check: Callable[[], Any]) -> Any:
        """Run one check; an error a reader raises becomes one line, and None is returned."""
        try:
            return check()
        except AtlasError as exc:
            text = " ".join(str(exc).split())
            file = text.split(": ", 1)[0]
            if file not in self.failed:  # one line per broken file, not one per reader
                self.failed.add(file)
                self.add("error", where, text)
        return None

    def header(self, where: str, path_str: str, **kwargs: Any) -> list[str] | None:
        cols = self.run(where, lambda: _header(self.cfg, path_str, **kwargs))
        if cols is not None:
            self.report.files += 1
        return cols

    def columns(
        self, where: str, path_str: str, cols: list[str], wanted: dict[str, str | None]
    ) -> bool:
        """Report every mapped column absent from a file; True when all are present."""
        ok = True
        name = self.cfg.resolve(path_str).name
        for key, column in wanted.items():
            if column is None:
                continue
            msg = missing_column(name, column, cols, key)
            if msg is not None:
                self.add("error", where, msg)
                ok = False
        return ok

    # --- the region's own inputs ------------------------------------------------------

    def crs(self) -> None:
        chosen = self.run("areas", lambda: choose_crs(self.cfg))
        if chosen is None:
            return
        self.report.crs, note = chosen
        if note is not None:
            self.add("note", "crs", note)

    def providers(self) -> None:
        from etl.inputs.tables import read_table, source_format

        yields: set[str] = set()
        for src in self.cfg.providers:
            where = f"providers[{src.name}]"
            path = self.cfg.resolve(src.path)

            def read(src: Any = src, path: Path = path) -> tuple[pd.DataFrame, Any]:
                return read_table(
                    path,
                    fmt=source_format(src, path),
                    encoding=src.encoding,
                    layer=src.layer,
                    crs=src.crs if "crs" in src.model_fields_set else None,
                    reader_path=self.cfg.reader_path(src.path),
                )

            got = self.run(where, read)
            if got is None:
                yields |= _static_yield(src)
                continue
            self.report.files += 1
            frame = got[0]
            if frame.empty:
                self.add("error", where, f"{path.name} has no rows (a header at most)")
            wanted = {f"columns.{k}": v for k, v in src.columns.items()}
            if self.columns(where, src.path, list(frame.columns), wanted):
                yields |= _category_yield(src, frame)
            else:
                yields |= _static_yield(src)
        if yields:
            wanted_cats = [c for c in CATEGORIES if c in self.cfg.access.thresholds_min]
            none = [c for c in wanted_cats if c not in yields]
            if none and "*" not in yields:
                self.add(
                    "warning",
                    "providers",
                    f"no sites: {', '.join(none)} (no provider list's `category` or "
                    "`category_map` yields them); their travel times and deserts will be empty",
                )

    def areas(self) -> None:
        ac = self.cfg.areas
        cols = self.header("areas", ac.path, layer=getattr(ac, "layer", None))
        ok = cols is not None
        if cols is not None:
            wanted = {
                "areas.id_column": getattr(ac, "id_column", None),
                "areas.name_column": getattr(ac, "name_column", None),
                "areas.population_column": getattr(ac, "population_column", None),
            }
            ok = self.columns("areas", ac.path, cols, wanted)
        ok &= self.population("areas.population", ac.path, cols, getattr(ac, "population", None))
        people = getattr(ac, "people", None)
        if people is not None:
            ok &= self.people(people)
        if ok and self.report.crs is not None:
            from etl.inputs.areas import read_areas

            cfg = self.cfg.model_copy(update={"crs": self.report.crs})
            self.area_frame = self.run("areas", lambda: read_areas(cfg))

    def population(
        self, where: str, own_path: str, own_cols: list[str] | None, pop: Any
    ) -> bool:
        """Check a population table (its key and column) or a column of the file itself."""
        if pop is None:
            return True
        path_str = getattr(pop, "path", None)
        if path_str is None:  # population held in a column of the file itself
            if own_cols is None:
                return False
            return self.columns(where, own_path, own_cols, {f"{where}.column": pop.column})
        cols = self.header(
            where,
            path_str,
            sheet=getattr(pop, "sheet", None),
            encoding=getattr(pop, "encoding", "utf-8-sig"),
        )
        if cols is None:
            return False
        key = getattr(pop, "key", None)
        keys = key if isinstance(key, list) else [key]
        wanted = {f"{where}.key": k for k in keys if k is not None}
        if len(keys) > 1:
            wanted = {f"{where}.key[{i}]": k for i, k in enumerate(keys)}
        wanted[f"{where}.column"] = pop.column
        return self.columns(where, path_str, cols, wanted)

    def people(self, people: Any) -> bool:
        where = "areas.people"
        cols = self.header(
            where,
            people.path,
            layer=getattr(people, "layer", None),
            encoding=getattr(people, "encoding", "utf-8-sig"),
        )
        ok = cols is not None
        if cols is not None:
            wanted = {
                f"{where}.{k}": getattr(people, k, None)
                for k in ("lon", "lat", "id_column", "population_column")
            }
            ok = self.columns(where, people.path, cols, wanted)
        pop = getattr(people, "population", None)
        return self.population(f"{where}.population", people.path, cols, pop) and ok

    def overdose(self) -> None:
        from etl.inputs.overdose import read_overdose

        names = (
            "key_column", "county_column", "year_column", "deaths_column",
            "population_column", "rate_column", "age_adjusted_column",
        )  # fmt: skip
        for k, src in enumerate(self.cfg.overdose):
            where = f"overdose[{k}]"
            cols = self.header(where, src.path, encoding=src.encoding)
            if cols is None:
                continue
            given = {n: getattr(src, n) for n in names if n in src.model_fields_set}
            if self.columns(where, src.path, cols, given):
                self.run(where, lambda src=src: read_overdose(src, self.cfg.resolve(src.path)))

    def places(self) -> None:
        from etl.inputs.barriers import read_poi

        src = self.cfg.places
        if src is None:
            return
        cols = self.header("places", src.path, encoding=src.encoding)
        if cols is None:
            return
        wanted = {
            f"places.{n}": getattr(src, n)
            for n in ("x_column", "y_column", "type_column", "name_column", "address_column")
        }
        if self.columns("places", src.path, cols, wanted):
            self.run("places", lambda: read_poi(src, self.cfg.resolve(src.path)))

    def zoning(self) -> None:
        z = self.cfg.zoning
        if z is None:
            return
        cols = self.header("zoning", z.path, layer=z.layer)
        if cols is not None:
            self.columns("zoning", z.path, cols, {"zoning.code_column": z.code_column})
        rules = self.header("zoning.rules", z.rules, sheet=z.sheet, encoding="utf-8-sig")
        if rules is not None:
            wanted = {
                "zoning.rules_code_column": z.rules_code_column or z.code_column,
                "zoning.rule_column": z.rule_column,
            }
            self.columns("zoning.rules", z.rules, rules, wanted)

    def transit(self) -> None:
        from etl.inputs.gtfs import read_stops_table

        if self.cfg.transit is None:
            return
        if self.run("transit", lambda: read_stops_table(self.cfg.resolve(self.cfg.transit.path))):
            self.report.files += 1

    def references(self) -> None:
        from etl.inputs.geocode import read_reference
        from etl.inputs.gtfs import is_gtfs, read_stops_table

        g = self.cfg.geocoding
        for k, ref in enumerate(g.reference if g is not None else []):
            where = f"geocoding.reference[{k}]"
            path = self.cfg.resolve(ref.path)
            name = path.name.lower()
            fmt = ref.format
            if fmt == "auto" and (".osm" in name or name.endswith(".pbf")):
                fmt = "osm"
            elif fmt == "auto" and is_gtfs(path):
                fmt = "gtfs"
            if fmt == "osm":
                opened = self.run(where, lambda path=path: osm_extent(path, scan=False) or True)
                if opened is not None:
                    self.report.files += 1
            elif fmt == "gtfs":
                if self.run(where, lambda path=path: read_stops_table(path)) is not None:
                    self.report.files += 1
            else:
                cols = self.header(where, ref.path, layer=ref.layer, encoding=ref.encoding)
                wanted = {f"columns.{f}": c for f, c in ref.columns.items()}
                if cols is not None and self.columns(where, ref.path, cols, wanted):
                    self.run(where, lambda ref=ref: read_reference(ref, resolve=self.cfg.resolve))

    def extras(self) -> None:
        """Inputs other config keys name (counties, outlines, boundary): open, columns exist."""
        for key in _EXTRA_INPUTS:
            value = getattr(self.cfg, key, None)
            path_str = getattr(value, "path", None)
            if not isinstance(path_str, str):
                continue
            cols = self.header(key, path_str, layer=getattr(value, "layer", None))
            if cols is None:
                continue
            wanted = {
                f"{key}.{n}": getattr(value, n)
                for n in type(value).model_fields
                if n.endswith("_column") and isinstance(getattr(value, n), str)
            }
            self.columns(key, path_str, cols, wanted)

    def counties(self) -> None:
        """The county outlines against the areas and ``counties:``, as the build joins them."""
        cfg, areas = self.cfg, self.area_frame
        if cfg.county_outlines is None or areas is None or not len(areas):
            return
        from etl.fips import geoid_counties
        from etl.inputs.counties import outline_join

        found = self.run("county_outlines", lambda: outline_join(cfg, areas))
        if found is None:
            return
        joined = found[0]
        outside = joined.isna().to_numpy()
        if outside.any():
            people = areas["population"].to_numpy(dtype="float64", na_value=0.0)
            share = people[outside].sum() / max(people.sum(), 1.0)
            self.add(
                "warning",
                "county_outlines",
                f"{int(outside.sum()):,} of {len(areas):,} areas ({share:.1%} of people) lie "
                "inside no county outline and get no county's overdose rows; check that "
                f"{Path(cfg.county_outlines.path).name} covers the whole region",
            )
        inside = sorted(joined.dropna().unique().tolist())
        if cfg.counties is not None:
            listed = set(cfg.counties)
            if extra := [f for f in inside if f not in listed]:
                self.add(
                    "warning",
                    "counties",
                    f"areas lie in county {', '.join(extra)} by the outlines, which "
                    "`counties:` does not list; add them or check the outlines",
                )
            if absent := sorted(listed - set(inside)):
                self.add(
                    "warning",
                    "counties",
                    f"`counties:` lists {', '.join(absent)}, but no area lies in that "
                    "outline; check the list",
                )
        ids = areas["area_id"].astype(str).str.strip()
        if geoid_counties(ids, unit=cfg.areas.unit) is not None:
            differ = joined.notna() & (ids.str[:5] != joined)
            if differ.any():
                i, n = int(np.flatnonzero(differ.to_numpy())[0]), int(differ.sum())
                whose = "1 area's GEOID names" if n == 1 else f"{n:,} areas' GEOIDs name"
                self.add(
                    "warning",
                    "county_outlines",
                    f"{whose} another county than the "
                    f"outline they lie in (e.g. {ids.iloc[i]} in {joined.iloc[i]}); the "
                    "outlines may be in another CRS or of another vintage",
                )

    def network(self) -> None:
        net = self.cfg.network
        if net.osm is None:
            self.add("note", "network", "read online (Overpass); coverage not checked")
            return
        path = self.cfg.resolve(net.osm.path)
        extent = self.run("network.osm", lambda: osm_extent(path))
        if extent is None:
            return
        self.report.files += 1
        bounds = self.run("areas", lambda: areas_bounds(self.cfg))
        if bounds is not None:
            self.coverage(path.name, extent, bounds)

    def coverage(
        self,
        name: str,
        extent: tuple[float, float, float, float],
        areas: tuple[float, float, float, float],
    ) -> None:
        buffer_km = self.cfg.buffer_km
        short = coverage_shortfall(extent, areas, buffer_km)
        ow, os_, oe, on = extent
        aw, as_, ae, an = areas
        if oe < aw or ow > ae or on < as_ or os_ > an:
            self.add(
                "error",
                "network.osm",
                f"{name} (lon {ow:.3f}..{oe:.3f}, lat {os_:.3f}..{on:.3f}) does not overlap "
                f"the areas (lon {aw:.3f}..{ae:.3f}, lat {as_:.3f}..{an:.3f}); "
                "use an extract of this region",
            )
            return
        if short:
            sides = ", ".join(f"{side} by {km:.1f} km" for side, km in short.items())
            self.add(
                "warning",
                "network.osm",
                f"{name} stops short of the areas plus buffer_km {buffer_km:g}: {sides} "
                f"(extract lon {ow:.3f}..{oe:.3f}, lat {os_:.3f}..{on:.3f}); people and sites "
                "there are not reached: use a larger extract",
            )


def coverage_shortfall(
    extent: tuple[float, float, float, float],
    areas: tuple[float, float, float, float],
    buffer_km: float,
) -> dict[str, float]:
    """Return, per side, how many km the extract stops short of the areas plus the buffer.

    Parameters
    ----------
    extent, areas
        Bounding boxes (west, south, east, north) in degrees.
    buffer_km
        How far beyond the areas the extract should reach.

    Returns
    -------
    dict
        ``{"north": 8.6, "west": 1.2}``: only the sides that fall short, in that order
        (north, south, east, west).
    """
    ow, os_, oe, on = extent
    aw, as_, ae, an = areas
    lat = math.radians((as_ + an) / 2)
    kx = _KM_PER_DEG_LAT * math.cos(lat)
    gaps = {
        "north": (an - on) * _KM_PER_DEG_LAT + buffer_km,
        "south": (os_ - as_) * _KM_PER_DEG_LAT + buffer_km,
        "east": (ae - oe) * kx + buffer_km,
        "west": (ow - aw) * kx + buffer_km,
    }
    return {side: round(km, 1) for side, km in gaps.items() if km > _COVERAGE_SLACK_KM}


def osm_extent(path: Path, *, scan: bool = True) -> tuple[float, float, float, float] | None:
    """Return an OSM file's bounding box: the header's, else (``scan``) its nodes' extent.

    Raises
    ------
    InputError
        If the file is missing or not readable as OSM.
    """
    import osmium

    if not path.exists():
        msg = f"{path}: OSM extract not found; check `path` in the region config"
        raise InputError(msg)
    try:
        reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
        box = reader.header().box()
        reader.close()
        if box.valid():
            return (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)
        if not scan:
            return None
        west = south = math.inf
        east = north = -math.inf
        for node in osmium.FileProcessor(str(path), osmium.osm.NODE):
            loc = node.location
            if loc.valid():
                x, y = loc.lon, loc.lat
                west, east = min(west, x), max(east, x)
                south, north = min(south, y), max(north, y)
    except RuntimeError as exc:  # osmium reports unreadable files as RuntimeError
        msg = f"{path}: not readable as OSM (.osm.pbf, .osm, .osm.bz2): {exc}"
        raise InputError(msg) from None
    if not math.isfinite(west):
        msg = f"{path}: the OSM extract holds no nodes; export the region again"
        raise InputError(msg)
    return (west, south, east, north)


def _static_yield(src: Any) -> set[str]:
    """Categories a source can yield, judged from its config alone."""
    if "services" in src.columns:
        return {"*"}  # a services column may name any category
    out = {src.category, *src.category_map.values()}
    if "category" in src.columns:
        out |= set(CATEGORIES)  # unmapped raw values pass through when they are categories
    if "naloxone" in src.columns:
        out.add("naloxone")
    return {c for c in out if c and c != "drop"}


def _category_yield(src: Any, frame: pd.DataFrame) -> set[str]:
    """Categories a source's rows map to (the same rule the providers reader applies)."""
    from etl.inputs.providers import _resolve_categories

    if "services" in src.columns:
        return {"*"}
    out = {src.category}
    col = src.columns.get("category")
    if col is not None:
        lookup = {c.strip().lower(): c for c in frame.columns}
        raw = frame[lookup.get(col.strip().lower(), col)].astype(str).drop_duplicates()
        work = pd.DataFrame({"_category_raw": raw.to_numpy()})
        out = set(_resolve_categories(src, work))
    if "naloxone" in src.columns:
        out.add("naloxone")
    return {c for c in out if c and c != "drop"}


def _generated_present(cfg: RegionConfig) -> bool:
    """Whether a generated region's inputs have been written."""
    paths = [s.path for s in cfg.providers] + [cfg.areas.path]
    if cfg.network.osm is not None:
        paths.append(cfg.network.osm.path)
    return all(cfg.resolve(p).exists() for p in paths)


def validate_config(cfg: RegionConfig) -> Report:
    """Check everything ``build`` will need from a config's input files, without building.

    Parameters
    ----------
    cfg
        A config :func:`etl.config.load_config` accepted.

    Returns
    -------
    Report
        Every problem found (errors, warnings, notes), the CRS a build will use, the number
        of files opened and the seconds taken.
    """
    t0 = time.perf_counter()
    check = _Checker(cfg)
    if cfg.generate is not None and not _generated_present(cfg):
        check.add(
            "note",
            "generate",
            f"the inputs are generated into {cfg.resolve(cfg.generate.out)} by `build` "
            "(or `access-atlas generate-demo`); run it, then validate again to check them",
        )
        check.report.seconds = time.perf_counter() - t0
        return check.report
    check.crs()
    check.network()
    check.providers()
    check.areas()
    check.overdose()
    check.places()
    check.zoning()
    check.transit()
    check.references()
    check.extras()
    check.counties()
    report = check.report
    report.seconds = time.perf_counter() - t0
    logger.info(
        "validate %s: %d files opened, %d errors, %d warnings in %.1f s",
        cfg.name,
        report.files,
        len(report.errors),
        len(report.warnings),
        report.seconds,
    )
    return report
