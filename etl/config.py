"""Region configs: one YAML file per region, validated before anything is built.

A config names every input with its format, column mapping, source, date and licence, and
sets the thresholds, bands, travel modes and speeds. Unknown keys and wrong types are errors
(:class:`ConfigError` names the file, the key and the problem). Relative paths are resolved
against the config file's folder, so a checked-in config may point at
``../../../shared/data/franklin-oh/...``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from etl._errors import ConfigError
from etl.categories import CATEGORIES, DEFAULT_BANDS_MIN, DEFAULT_THRESHOLDS_MIN, MODES
from etl.engine.speeds import DRIVE_SPEEDS_KPH, WALK_SPEED_KPH
from etl.fips import COUNTY_NAME_TABLES, STATE_FIPS

Mode = Literal["drive", "walk"]

#: Qualities good enough that later (online) geocoders are not asked.
DEFAULT_ACCEPT: Final[tuple[str, ...]] = ("address_point", "street")

CENSUS_BATCH_URL: Final[str] = "https://geocoding.geo.census.gov/geocoder/locations/addressbatch"

NOMINATIM_DOMAIN: Final[str] = "nominatim.openstreetmap.org"

FT_TO_M: Final[float] = 0.3048

#: Columbus points-of-interest types used by Ohio's OTP siting rule.
COLUMBUS_SITING_TYPES: Final[dict[str, str]] = {
    "Education - Elementary": "school",
    "Education - Middle": "school",
    "Education - High": "school",
    "Education - Daycare": "child_care",
}

RateBasis = Literal["crude", "age-adjusted", "modelled"]

#: Column names each format reads when the config does not name them.
OVERDOSE_FORMAT_DEFAULTS: Final[dict[str, dict[str, str | None]]] = {
    "cdc_wonder": {
        "key_column": "County Code", "county_column": "County", "year_column": "Year",
        "deaths_column": "Deaths", "population_column": "Population",
        "rate_column": "Crude Rate", "age_adjusted_column": "Age Adjusted Rate",
        "basis": "crude",
    },
    "ohio_county": {
        "key_column": None, "county_column": "CountyName", "year_column": "DeathYear",
        "deaths_column": "Deaths", "population_column": "Population", "rate_column": None,
        "age_adjusted_column": None, "basis": "crude", "state": "OH",
    },
    "oeps": {
        "key_column": "FIPS", "county_column": None, "year_column": None,
        "deaths_column": None, "population_column": None, "rate_column": "OdMortRt",
        "age_adjusted_column": None, "basis": "modelled",
    },
    "table": {},
}  # fmt: skip


#: Longest travel time, minutes, a band or threshold may name (a day).
MAX_MINUTES: Final[float] = 24 * 60.0
#: Fastest class speed a config may set for driving, km/h.
MAX_DRIVE_KPH: Final[float] = 300.0
#: Fastest walking speed a config may set, km/h.
MAX_WALK_KPH: Final[float] = 30.0
#: Widest isochrone buffer, metres.
MAX_ISOCHRONE_BUFFER_M: Final[float] = 10_000.0


class _Model(BaseModel):
    # Every number must be finite: YAML's .nan and .inf (and "nan" strings) are refused.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Geocoding (etl.inputs.geocode reads these)


class ReferenceSource(_Model):
    """A local file of known addresses used by the offline geocoder.

    ``columns`` maps reference fields to the file's columns: ``address`` (a whole street
    line such as "3750 ZANE TRACE DR") or ``number`` + ``street``; optionally ``city``,
    ``state``, ``zip``; and for CSV files ``lon`` + ``lat`` (in ``crs``). OSM files
    (``.osm.pbf``/``.osm``) need no columns: ``addr:*`` tags give points, named
    ``highway=*`` ways give streets. GTFS feeds (``format: gtfs``, or found by name: a
    ``stops.txt``, or a folder or ``.zip`` holding one) need no columns either: stops
    named after an address give address points, stops named after an intersection give
    points on both streets (:mod:`etl.inputs.gtfs`). ``use: centroids`` takes the file only for
    ZIP and city centres (e.g. a geocoded provider list whose points should not count as
    address points). ``use: zip_centres`` takes each row as *the* centre of its ZIP
    (``columns: {zip, lon, lat}``, e.g. the Census ZCTA internal points): an independent
    fallback, quality ``zip``, that wins over centres computed from the other references.
    """

    path: str
    format: Literal["auto", "csv", "gpkg", "shp", "geojson", "osm", "gtfs"] = "auto"
    layer: str | None = None
    encoding: str = "utf-8"
    crs: str = "EPSG:4326"
    columns: dict[str, str] = Field(default_factory=dict)
    use: Literal["address_points", "centroids", "zip_centres"] = "address_points"
    source: str = ""
    date: str = ""
    licence: str = ""


class CensusConfig(_Model):
    """US Census Bureau batch geocoder settings (used only with ``online: true``)."""

    url: str = CENSUS_BATCH_URL
    benchmark: str = "Public_AR_Current"
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    timeout_s: float = Field(default=300.0, gt=0)
    min_delay_s: float = Field(default=1.0, ge=0)


class NominatimConfig(_Model):
    """Nominatim settings (used only with ``online: true``).

    The public server allows at most one request per second and asks for a descriptive
    user agent; keep ``min_delay_s`` at 1 or more unless ``domain`` is your own server.
    """

    domain: str = NOMINATIM_DOMAIN
    scheme: Literal["http", "https"] = "https"
    user_agent: str = "access-atlas (opioid treatment access mapping)"
    min_delay_s: float = Field(default=1.0, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)
    country_codes: str = "us"


class GeocodingConfig(_Model):
    """The ``geocoding`` section of a region config.

    Attributes
    ----------
    reference
        Offline reference files (address points, OSM extract, centroid-only lists).
    online
        Ask the Census and Nominatim geocoders for rows the offline one could not place at
        an accepted quality. Off by default: a build never goes online unless told to.
    census, nominatim
        Online services; set one to null to skip it.
    cache
        SQLite file for online answers; default ``<cache_dir>/geocode_cache.sqlite``.
    accept
        Qualities at which a row is not sent on to the next geocoder.
    fuzzy_min_score
        Minimum rapidfuzz ratio (0-100) for a misspelt street name to match.
    max_hint_km
        A match farther than this from the row's ZIP (or city) centre is ignored.
    """

    reference: list[ReferenceSource] = Field(default_factory=list)
    online: bool = False
    census: CensusConfig | None = Field(default_factory=CensusConfig)
    nominatim: NominatimConfig | None = Field(default_factory=NominatimConfig)
    cache: str | None = None
    accept: list[Literal["address_point", "street", "street_center", "zip", "city"]] = Field(
        default_factory=lambda: list(DEFAULT_ACCEPT)
    )
    fuzzy_min_score: float = Field(default=88.0, ge=50, le=100)
    max_hint_km: float = Field(default=12.0, gt=0)


# Siting rules (etl.inputs.barriers, etl.inputs.siting)


class BufferRule(_Model):
    """A rule that keeps a use a set distance from some kinds of place.

    Attributes
    ----------
    name
        Short name shown on the map, e.g. "Ohio 500-ft rule".
    citation
        Where the rule is written, e.g. "Ohio Revised Code 5119.37(C)(4)".
    applies_to
        The use it restricts, e.g. ``treatment_program``.
    distance_ft, distance_m
        The buffer distance; give exactly one.
    from_types
        POI types the distance is measured from (``from:`` in YAML), e.g.
        ``[school, child_care]``.
    text
        The rule in plain words.
    note
        Anything else to show with it (e.g. the state's waiver process).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, allow_inf_nan=False
    )

    name: str
    citation: str
    applies_to: str = "treatment_program"
    distance_ft: float | None = Field(default=None, gt=0)
    distance_m: float | None = Field(default=None, gt=0)
    from_types: list[str] = Field(alias="from", min_length=1)
    text: str = ""
    note: str = ""

    @model_validator(mode="after")
    def _one_distance(self) -> BufferRule:
        if (self.distance_ft is None) == (self.distance_m is None):
            msg = f"buffer rule {self.name!r}: give exactly one of `distance_ft` or `distance_m`"
            raise ValueError(msg)
        return self

    @property
    def metres(self) -> float:
        """The buffer distance in metres."""
        if self.distance_m is not None:
            return float(self.distance_m)
        return float(self.distance_ft) * FT_TO_M  # type: ignore[arg-type]

    def describe(self) -> str:
        """Return the rule text, or one built from its fields."""
        if self.text:
            return self.text
        dist = f"{self.distance_ft:g} ft" if self.distance_ft else f"{self.distance_m:g} m"
        places = ", ".join(t.replace("_", " ") for t in self.from_types)
        return f"No {self.applies_to.replace('_', ' ')} within {dist} of: {places}"


class PoiSource(_Model):
    """A points-of-interest CSV and how its columns map (defaults: Columbus POI file).

    Attributes
    ----------
    path, source, date, licence
        The file and its provenance.
    encoding
        Text encoding (the default strips a byte-order mark).
    x_column, y_column, crs
        Coordinate columns and their CRS.
    type_column, name_column, address_column
        The POI type, name and street address columns.
    type_map
        Source type -> canonical type used by :attr:`BufferRule.from_types`; rows of other
        types are left out.
    """

    path: str
    source: str = ""
    date: str = ""
    licence: str = ""
    encoding: str = "utf-8-sig"
    x_column: str = "X"
    y_column: str = "Y"
    crs: str = "EPSG:4326"
    type_column: str = "POI_TYPE"
    name_column: str | None = "POI_NAME"
    address_column: str | None = "LSN"
    type_map: dict[str, str] = Field(default_factory=lambda: dict(COLUMBUS_SITING_TYPES))


class ZoningConfig(_Model):
    """Zoning districts and the rule table saying what each zone code allows.

    Attributes
    ----------
    path, layer, source, date, licence
        The zoning polygons (any format pyogrio reads) and their provenance.
    code_column
        The zone code column of the polygons.
    rules
        The rule table (CSV or Excel), one row per zone code.
    rules_code_column
        Its zone code column (defaults to ``code_column``).
    rule_column
        Its column for the use mapped: permitted / conditional / prohibited (or P / C / X).
    sheet
        Sheet of an Excel rule table.
    name, citation, applies_to
        How the rule is shown (e.g. "Zoning code, treatment programs", "City Code 3363").
    """

    path: str
    layer: str | None = None
    source: str = ""
    date: str = ""
    licence: str = ""
    code_column: str
    rules: str
    rules_code_column: str | None = None
    rule_column: str = "treatment_program"
    sheet: str | None = None
    name: str = "Zoning"
    citation: str = ""
    applies_to: str = "treatment_program"


# Overdose tables (etl.inputs.overdose)


class OverdoseSource(BaseModel):
    """One overdose table and how to read it (a ``overdose:`` entry of a region config).

    Attributes
    ----------
    path
        The file, relative to the config's folder.
    source, date, licence
        Provenance, copied into the manifest and into each row's ``source``.
    format
        ``cdc_wonder`` (a WONDER export), ``ohio_county`` (Ohio's table keyed by county name),
        ``oeps`` (OEPS county table with ``FIPS`` and the modelled rate ``OdMortRt``) or
        ``table`` (any table keyed by FIPS/GEOID, columns named below).
    unit
        What the key identifies; sets its length (county 5, tract 11, block group 12).
    encoding
        Text encoding; the default also strips a byte-order mark.
    key_column, county_column, year_column, deaths_column, population_column, rate_column, \
age_adjusted_column
        Column names; each format has defaults (e.g. WONDER's ``County Code``).
    state
        Two-letter state of a table keyed by county name (only ``OH`` is built in).
    period
        Label for a table without a year column, e.g. ``"2009-2018 pooled"``.
    years
        Keep only these years.
    basis
        Basis of ``rate_column``; defaults to ``crude`` (WONDER, Ohio) or ``modelled`` (OEPS).
    skip_names
        County-name rows that are not counties and are left out (Ohio's ``NonOH``,
        ``Unknown``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    path: str
    source: str = ""
    date: str = ""
    licence: str = ""
    format: Literal["cdc_wonder", "ohio_county", "oeps", "table"]
    unit: Literal["county", "tract", "block group"] = "county"
    encoding: str = "utf-8-sig"
    key_column: str | None = None
    county_column: str | None = None
    year_column: str | None = None
    deaths_column: str | None = None
    population_column: str | None = None
    rate_column: str | None = None
    age_adjusted_column: str | None = None
    state: str | None = None
    period: str | None = None
    years: list[int] | None = None
    basis: RateBasis | None = None
    skip_names: list[str] = Field(default_factory=lambda: ["NonOH", "Unknown", "Total"])
    fictional: bool = False

    @field_validator("state")
    @classmethod
    def _state(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in STATE_FIPS.values():
            msg = f"state {value!r} is not a two-letter US state abbreviation"
            raise ValueError(msg)
        return None if value is None else value.upper()

    @model_validator(mode="after")
    def _complete(self) -> OverdoseSource:
        if self.format == "table":
            if self.key_column is None and self.county_column is None:
                msg = "overdose table: give `key_column` (FIPS/GEOID) or `county_column`"
                raise ValueError(msg)
            if self.key_column is None and self.state not in COUNTY_NAME_TABLES:
                known = ", ".join(COUNTY_NAME_TABLES)
                msg = f"overdose table keyed by county name needs `state` (built in: {known})"
                raise ValueError(msg)
            if self.basis is None and self.rate_column is not None:
                msg = "overdose table: give `basis` (crude, age-adjusted or modelled)"
                raise ValueError(msg)
            if self.deaths_column is None and self.rate_column is None:
                msg = "overdose table: give `deaths_column` or `rate_column`"
                raise ValueError(msg)
        if self.format == "ohio_county" and self.state not in (None, "OH"):
            msg = f"format 'ohio_county' reads Ohio's table; state {self.state!r} is not OH"
            raise ValueError(msg)
        if self.unit != "county" and self.format in ("ohio_county", "oeps"):
            msg = f"format {self.format!r} is county-level; unit must be 'county'"
            raise ValueError(msg)
        return self

    def setting(self, name: str) -> str | None:
        """Return a column name or setting: the config's value, else the format's default."""
        value = getattr(self, name)
        if value is not None:
            return value
        return OVERDOSE_FORMAT_DEFAULTS[self.format].get(name)


class InputFile(_Model):
    """A raw input file and where it came from (copied into the manifest)."""

    path: str
    source: str = ""
    date: str = ""
    licence: str = ""


class NetworkConfig(_Model):
    """Where the street network comes from and how travel time is computed."""

    osm: InputFile | None = None
    online: bool = False
    place: str | None = None
    polygon: list[tuple[float, float]] | None = None
    overpass_url: str | None = None
    nominatim_url: str | None = None
    modes: list[Mode] = Field(default_factory=lambda: list(MODES))
    drive_speeds_kph: dict[str, float] = Field(default_factory=lambda: dict(DRIVE_SPEEDS_KPH))
    walk_speed_kph: float = Field(default=WALK_SPEED_KPH, gt=0, le=MAX_WALK_KPH)
    use_maxspeed: bool = True
    #: Share of a tagged ``maxspeed`` driven (OSRM's car profile: 0.8); 1.0 = at the limit.
    maxspeed_factor: float = Field(default=1.0, gt=0.0, le=1.0)
    #: Seconds added per ``highway=traffic_signals`` node passed by car (OSRM: 2); 0 = none.
    signal_delay_s: float = Field(default=0.0, ge=0.0, le=120.0)
    congestion_factor: float = Field(default=1.0, ge=1.0, le=5.0)
    max_snap_m: float = Field(default=1500.0, gt=0)

    def speed_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`etl.engine.network.build_mode_network` it sets.

        One place names them, for the pipeline, the manifest's settings and the benchmarks.
        """
        return {
            "drive_speeds_kph": dict(self.drive_speeds_kph),
            "walk_speed_kph": self.walk_speed_kph,
            "use_maxspeed": self.use_maxspeed,
            "congestion_factor": self.congestion_factor,
            "maxspeed_factor": self.maxspeed_factor,
            "signal_delay_s": self.signal_delay_s,
        }

    @field_validator("drive_speeds_kph")
    @classmethod
    def _drive_speeds(cls, value: dict[str, float]) -> dict[str, float]:
        # A speed of 0 or less would make travel times infinite or negative (the engine's
        # Dijkstra then never ends); the values are already finite (allow_inf_nan=False).
        for highway, kph in value.items():
            if not 0 < kph <= MAX_DRIVE_KPH:
                msg = (
                    f"drive_speeds_kph.{highway} is {kph:g}; a speed must be above 0 and at "
                    f"most {MAX_DRIVE_KPH:g} km/h"
                )
                raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> NetworkConfig:
        if self.osm is None and not self.online:
            msg = "network: give `osm` (a local .osm.pbf/.osm/.osm.bz2) or set `online: true`"
            raise ValueError(msg)
        if self.online and self.osm is None and not (self.place or self.polygon):
            msg = "network: `online: true` needs `place` or `polygon`"
            raise ValueError(msg)
        if not self.modes:
            raise ValueError("network.modes must name at least one mode")
        return self


class ProviderSource(InputFile):
    """One provider list and how its columns map onto the providers schema."""

    name: str
    format: Literal["auto", "csv", "gpkg", "shp", "geojson"] = "auto"
    layer: str | None = None
    encoding: str = "utf-8"
    crs: str = "EPSG:4326"
    columns: dict[str, str] = Field(default_factory=dict)
    category: str | None = None
    category_map: dict[str, str] = Field(default_factory=dict)
    partial_ok: bool = True
    #: ``packed``: the address column holds "street|city, ST ZIP" (etl.inputs.packed).
    address_format: Literal["plain", "packed"] = "plain"
    #: The list is known to be partial: this note goes with its sites (``list_note``) into
    #: the legend, the methods page and the fact sheet, e.g. "2021 vaccine sites only".
    partial: str = ""

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9_\-]+", value):
            raise ValueError(
                f"provider source name {value!r} must be lower-case letters, digits, _ or -"
            )
        return value

    @model_validator(mode="after")
    def _categories(self) -> ProviderSource:
        for cat in [self.category, *self.category_map.values()]:
            if cat is not None and cat not in CATEGORIES and cat != "drop":
                raise ValueError(
                    f"unknown category {cat!r}; use one of {', '.join(CATEGORIES)} or 'drop'"
                )
        if self.category is None and "category" not in self.columns:
            raise ValueError(
                f"provider source {self.name!r}: give `category` or a `category` column"
            )
        return self


class PopulationTable(InputFile):
    """A table of population keyed by id (joined on ``key``).

    ``key`` is one column, or several whose values are joined into the id (e.g. a census
    table's ``[STATE, COUNTY, TRACT, BLOCK]``); ``key_widths`` zero-pads each part to its width
    first (``[2, 3, 6, 4]`` gives a 15-digit block GEOID).
    """

    key: str | list[str]
    key_widths: list[int] | None = None
    column: str
    sheet: str | None = None
    encoding: str = "utf-8-sig"

    @model_validator(mode="after")
    def _widths(self) -> PopulationTable:
        parts = self.key if isinstance(self.key, list) else [self.key]
        if not parts:
            raise ValueError("population.key: name at least one column")
        if self.key_widths is not None and (
            len(self.key_widths) != len(parts) or min(self.key_widths) < 1
        ):
            msg = (
                f"population.key_widths: give one positive width per key column "
                f"({len(parts)}: {', '.join(parts)})"
            )
            raise ValueError(msg)
        return self

    @property
    def key_columns(self) -> list[str]:
        """The key as a list of columns."""
        return self.key if isinstance(self.key, list) else [self.key]


class PopulationColumn(_Model):
    """Population held in a column of the file itself (``population: {column: people}``)."""

    column: str


class PeoplePoints(InputFile):
    """Population points that place each area's people (e.g. census block internal points).

    Any table or GIS file: a CSV or a ``.dbf``/GeoPackage attribute table with ``lon`` and
    ``lat`` columns (in ``crs``; default: the file's own CRS, else EPSG:4326), or a point layer.
    Population comes from ``population_column`` of the file or from ``population``, a table
    joined on ``id_column``. A point lying outside every area goes to the nearest area within
    ``max_distance_m``; points further away are reported and left out.
    """

    layer: str | None = None
    lon: str | None = None
    lat: str | None = None
    crs: str | None = None
    id_column: str | None = None
    population_column: str | None = None
    population: PopulationTable | None = None
    encoding: str = "utf-8-sig"
    max_distance_m: float = Field(default=1000.0, ge=0)

    @model_validator(mode="after")
    def _one_population(self) -> PeoplePoints:
        if (self.population_column is None) == (self.population is None):
            msg = "areas.people: give exactly one of `population_column` or `population`"
            raise ValueError(msg)
        if self.population is not None and self.id_column is None:
            msg = "areas.people: a `population` table joins on `id_column`; name it"
            raise ValueError(msg)
        if (self.lon is None) != (self.lat is None):
            raise ValueError("areas.people: give both `lon` and `lat` columns, or neither")
        return self


class AreasConfig(InputFile):
    """Areas: polygons of any kind (census units, ZIPs, wards), their ids and population.

    ``unit`` is free text shown to people (block, block group, tract, ZIP, ward...).
    ``id_column`` is optional: without it each area gets a stable id from its geometry.
    Population is a column of the area file (``population: {column: ...}`` or
    ``population_column``), a table keyed by id (``population: {path, key, column}``), or,
    where neither is given, the sum of the ``people`` points inside each area.
    """

    layer: str | None = None
    id_column: str | None = None
    unit: str = "block group"
    name_column: str | None = None
    population_column: str | None = None
    population: PopulationTable | PopulationColumn | None = None
    people: PeoplePoints | None = None

    @field_validator("unit")
    @classmethod
    def _unit_text(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("areas.unit: name what the areas are, e.g. 'block group' or 'ward'")
        return value

    @model_validator(mode="after")
    def _has_population(self) -> AreasConfig:
        if self.population_column is not None and self.population is not None:
            raise ValueError("areas: give one of `population_column` or `population`, not both")
        if self.population_column is None and self.population is None and self.people is None:
            msg = (
                "areas: give the population: `population: {column: ...}` (a column of the "
                "area file), `population: {path, key, column}` (a table) or `people` (points)"
            )
            raise ValueError(msg)
        return self

    @property
    def population_in_file(self) -> str | None:
        """The area file's population column, however the config names it."""
        if isinstance(self.population, PopulationColumn):
            return self.population.column
        return self.population_column

    @property
    def population_table(self) -> PopulationTable | None:
        """The population table joined on the area ids, if any."""
        return self.population if isinstance(self.population, PopulationTable) else None


class BoundaryFile(InputFile):
    """The region's explicit boundary: any polygon file pyogrio reads (CRS from the file)."""

    layer: str | None = None


class AccessConfig(_Model):
    """Bands, thresholds, grid and isochrone settings."""

    bands_min: list[int] = Field(default_factory=lambda: list(DEFAULT_BANDS_MIN))
    thresholds_min: dict[str, dict[Mode, float]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_THRESHOLDS_MIN.items()}
    )
    h3_resolution: int = Field(default=8, ge=5, le=10)
    isochrone_buffer_m: dict[Mode, float] = Field(
        default_factory=lambda: {"drive": 120.0, "walk": 60.0}
    )
    #: A person (a people point) is *covered* by a mode when the mode's nearest street node is
    #: within this many metres; everyone else is "not covered", never in a desert or a band.
    #: 300 m (≈ 4 min on foot) from the data: where the street data is complete, people points
    #: lie close to a street: on the demo region every point is within 107 m of both networks;
    #: in central Franklin County (within 5 km of downtown, 132,786 people at 2010 census block
    #: points) 99.8 % are within 200 m and 99.86 % within 300 m. Farther than that, the extract
    #: lacks the person's streets (county-wide 591,452 of 1,163,414 people by car lie beyond
    #: 300 m, 450,435 beyond 1 km, of a clipped extract). ``network.max_snap_m`` stays for sites.
    cover_m: float = Field(default=300.0, gt=0)

    @field_validator("bands_min")
    @classmethod
    def _bands(cls, value: list[int]) -> list[int]:
        if not value or any(b <= 0 for b in value) or sorted(set(value)) != value:
            raise ValueError("bands_min must be increasing positive minutes, e.g. [10, 20, 30]")
        if value[-1] > MAX_MINUTES:
            msg = f"bands_min: {value[-1]} minutes is more than a day ({MAX_MINUTES:g} min)"
            raise ValueError(msg)
        return value

    @field_validator("thresholds_min")
    @classmethod
    def _thresholds(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for cat, per_mode in value.items():
            if cat not in CATEGORIES:
                raise ValueError(f"unknown category {cat!r} in thresholds_min")
            for mode, minutes in per_mode.items():
                if minutes <= 0:
                    raise ValueError(f"thresholds_min.{cat}.{mode} must be positive")
                if minutes > MAX_MINUTES:
                    msg = (
                        f"thresholds_min.{cat}.{mode} is {minutes:g} minutes, more than a day "
                        f"({MAX_MINUTES:g} min)"
                    )
                    raise ValueError(msg)
        return value

    @field_validator("isochrone_buffer_m")
    @classmethod
    def _buffers(cls, value: dict[str, float]) -> dict[str, float]:
        for mode, metres in value.items():
            if not 0 <= metres <= MAX_ISOCHRONE_BUFFER_M:
                msg = (
                    f"isochrone_buffer_m.{mode} is {metres:g}; give 0 to "
                    f"{MAX_ISOCHRONE_BUFFER_M:g} metres"
                )
                raise ValueError(msg)
        return value


class FacilitySource(InputFile):
    """A list of correctional facilities (prisons, jails, detention centres) for re-entry.

    ``columns`` maps ``name`` and, for a table, ``lon`` + ``lat`` (in ``crs``); optionally
    ``type`` (the list's facility type, e.g. "State prison"), ``city``, ``county`` and ``id``.
    Each facility gets a ``kind`` (prison, jail, detention or other) from ``type_map`` (raw
    type -> kind, case-insensitive), else from words in its type. Facilities up to
    ``buffer_km`` beyond the region count (default: the region's ``buffer_km``): a state
    prison releases people into many counties. Facility locations are public; a list's
    population columns are never read.
    """

    name: str = "facilities"
    format: Literal["auto", "csv", "gpkg", "shp", "geojson"] = "auto"
    layer: str | None = None
    encoding: str = "utf-8-sig"
    crs: str = "EPSG:4326"
    columns: dict[str, str] = Field(default_factory=dict)
    type_map: dict[str, Literal["prison", "jail", "detention", "other"]] = Field(
        default_factory=dict
    )
    buffer_km: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _needs_name(self) -> FacilitySource:
        if "name" not in self.columns:
            raise ValueError("facilities: map the facility name column (`columns: {name: ...}`)")
        if ("lon" in self.columns) != ("lat" in self.columns):
            raise ValueError("facilities: give both `lon` and `lat` columns, or neither")
        return self


class TransitConfig(InputFile):
    """A GTFS feed (folder, ``.zip`` or its ``stops.txt``) for the transit stops layer.

    The timetable settings are for the transit mode (:mod:`etl.engine.transit`), which needs
    ``stop_times.txt``. ``service_date`` is the day whose timetable is routed (``date`` is
    the feed's own date, for the manifest); ``window`` the first and last departure,
    ``HH:MM``, every ``step_min``; ``percentiles`` of the travel time over the window;
    ``max_walk_m`` the longest walk to, from and between stops; ``max_trip_min`` the
    longest journey counted (none: any).
    """

    name: str = "Transit stops"
    service_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    window: tuple[str, str] = ("07:00", "09:00")
    step_min: int = Field(default=1, ge=1, le=60)
    percentiles: list[float] = Field(default_factory=lambda: [50.0, 80.0], min_length=1)
    max_walk_m: float = Field(default=800.0, gt=0, le=5000)
    max_transfers: int = Field(default=3, ge=0, le=8)
    max_trip_min: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _timetable_settings(self) -> TransitConfig:
        clock = [re.fullmatch(r"(\d{1,2}):([0-5]\d)", t.strip()) for t in self.window]
        if not all(clock):
            raise ValueError(f"transit.window: {list(self.window)}: write [HH:MM, HH:MM]")
        start, end = (int(m[1]) * 60 + int(m[2]) for m in clock)
        if end < start:
            raise ValueError("transit.window: the last departure is before the first")
        if not all(0 < p <= 100 for p in self.percentiles):
            raise ValueError("transit.percentiles: each must be above 0 and at most 100")
        return self


class TilesConfig(_Model):
    """Offline basemap tiles pre-rendered from the region's own streets."""

    enabled: bool = True
    min_zoom: int = Field(default=10, ge=0, le=19)
    max_zoom: int = Field(default=15, ge=0, le=19)

    @model_validator(mode="after")
    def _order(self) -> TilesConfig:
        if self.max_zoom < self.min_zoom:
            raise ValueError("tiles.max_zoom must not be below tiles.min_zoom")
        return self


class GenerateConfig(_Model):
    """For the built-in region: generate the raw inputs with the project's own code."""

    kind: Literal["demo"] = "demo"
    seed: int = 7
    out: str = "../raw/demo"


class CountyOutlines(InputFile):
    """County polygons that tell which counties a region's areas lie in (a spatial join).

    Attributes
    ----------
    id_column
        The column holding each county's 5-digit FIPS code (TIGER's ``GEOID``).
    layer
        The layer of a multi-layer file (GeoPackage).
    name_column
        The column holding the county's name (TIGER's ``NAMELSAD``: "Franklin County").
    """

    id_column: str
    layer: str | None = None
    name_column: str | None = None


class RegionConfig(_Model):
    """A whole region: its name, CRS, inputs and settings.

    ``crs`` is the projected (metric) CRS distances are measured in; when it is omitted,
    the build uses the UTM zone of the areas' centre (:func:`utm_zone`, chosen by
    :func:`etl.validate.resolve_crs`, which ``validate`` prints).
    """

    name: str
    title: str
    fictional: bool = False
    crs: str | None = None
    buffer_km: float = Field(default=5.0, ge=0)
    generate: GenerateConfig | None = None
    network: NetworkConfig
    providers: list[ProviderSource] = Field(min_length=1)
    areas: AreasConfig
    boundary: BoundaryFile | None = None
    access: AccessConfig = Field(default_factory=AccessConfig)
    overdose: list[OverdoseSource] = Field(default_factory=list)
    places: PoiSource | None = None
    barriers: list[BufferRule] = Field(default_factory=list)
    zoning: ZoningConfig | None = None
    geocoding: GeocodingConfig | None = None
    tiles: TilesConfig = Field(default_factory=TilesConfig)
    transit: TransitConfig | None = None
    #: Prisons, jails and detention centres for the re-entry view (etl.inputs.facilities).
    facilities: list[FacilitySource] = Field(default_factory=list)
    #: The region's counties (5-digit FIPS); wins over GEOIDs and ``county_outlines``.
    counties: list[str] | None = None
    county_outlines: CountyOutlines | None = None

    #: Folder of the config file; relative paths resolve against it. Not read from YAML.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9\-]*", value):
            raise ValueError("name must be a lower-case slug such as 'franklin-oh'")
        return value

    @field_validator("crs")
    @classmethod
    def _projected(cls, value: str | None) -> str | None:
        from pyproj import CRS

        if value is None:
            return None
        try:
            crs = CRS.from_user_input(value)
        except Exception as exc:  # pyproj raises CRSError
            raise ValueError(f"crs {value!r} is not a CRS pyproj knows: {exc}") from exc
        if not crs.is_projected:
            raise ValueError(f"crs {value!r} must be projected (metres), e.g. a UTM zone")
        return value

    @model_validator(mode="after")
    def _county_codes(self) -> RegionConfig:
        if self.counties is None:
            return self
        states = {**STATE_FIPS, "99": "ZZ"} if self.fictional else STATE_FIPS
        for code in self.counties:
            if not re.fullmatch(r"\d{5}", code) or code[2:] == "000":
                msg = f"counties: {code!r} is not a 5-digit county FIPS code such as '39049'"
                raise ValueError(msg)
            if code[:2] not in states:
                msg = f"counties: {code!r} starts with {code[:2]!r}, which is no state's FIPS code"
                raise ValueError(msg)
        if len(set(self.counties)) != len(self.counties):
            raise ValueError("counties: a county is listed twice")
        return self

    @model_validator(mode="after")
    def _rules_need_places(self) -> RegionConfig:
        if self.barriers and self.places is None:
            msg = "barriers: buffer rules measure from points of interest; add a `places` section"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _unique_sources(self) -> RegionConfig:
        names = [p.name for p in self.providers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"provider source names must be unique; repeated: {', '.join(dupes)}")
        return self

    def resolve(self, path: str) -> Path:
        """Return the file on disk that a config path names, resolved against the config.

        For ``zip://archive.zip!member.shp`` this is the archive.
        """
        if path.startswith("zip://"):
            path = path[len("zip://") :].partition("!")[0]
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def reader_path(self, path: str) -> str:
        """Return a path string for GDAL/pyogrio, keeping a ``zip://…!member`` suffix."""
        if path.startswith("zip://"):
            member = path.partition("!")[2]
            return f"zip://{self.resolve(path)}" + (f"!{member}" if member else "")
        return str(self.resolve(path))

    def threshold(self, category: str, mode: str) -> float | None:
        """Return the desert threshold in minutes, or None where none is set."""
        return self.access.thresholds_min.get(category, {}).get(mode)


def utm_zone(lon: float, lat: float) -> tuple[str, str]:
    """Return the WGS84 UTM zone holding a point, as a CRS and a label.

    Parameters
    ----------
    lon, lat
        The point in degrees (WGS84).

    Returns
    -------
    crs : str
        E.g. ``"EPSG:32617"``.
    label : str
        E.g. ``"UTM 17N"``.
    """
    zone = min(max(int((lon + 180.0) // 6.0) + 1, 1), 60)
    north = lat >= 0
    code = (32600 if north else 32700) + zone
    return f"EPSG:{code}", f"UTM {zone}{'N' if north else 'S'}"


def load_config(path: str | Path) -> RegionConfig:
    """Read and validate a region config.

    Parameters
    ----------
    path
        A ``.yaml``/``.yml`` file.

    Returns
    -------
    RegionConfig
        The validated config, with ``base_dir`` set to the file's folder.

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or fails validation; the message names the
        file, the key and the problem.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: config file not found. Region configs live in geodata/configs/."
        raise ConfigError(msg)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        msg = f"{path}: not valid YAML: {exc}"
        raise ConfigError(msg) from exc
    if not isinstance(raw, dict):
        msg = f"{path}: expected a mapping of settings at the top level, got {type(raw).__name__}"
        raise ConfigError(msg)
    try:
        cfg = RegionConfig.model_validate({**raw, "base_dir": path.parent.resolve()})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problem = (
                "unknown key (check its spelling)"
                if err["type"] == "extra_forbidden"
                else err["msg"].removeprefix("Value error, ")
            )
            if err["type"] == "finite_number":
                problem += f" (got {err['input']!r})"
            lines.append(f"{where}: {problem}")
        if len(lines) == 1:  # one problem, one line
            msg = f"{path}: invalid region config: {lines[0]}"
        else:
            msg = f"{path}: invalid region config:\n" + "\n".join(f"  {ln}" for ln in lines)
        raise ConfigError(msg) from None
    return cfg
