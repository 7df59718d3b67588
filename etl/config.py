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
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from etl._errors import ConfigError
from etl.barriers import BufferRule, PoiSource, ZoningConfig
from etl.categories import CATEGORIES, DEFAULT_BANDS_MIN, DEFAULT_THRESHOLDS_MIN, MODES
from etl.engine.speeds import DRIVE_SPEEDS_KPH, WALK_SPEED_KPH
from etl.geocode import GeocodingConfig
from etl.overdose import OverdoseSource

Mode = Literal["drive", "walk"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    walk_speed_kph: float = Field(default=WALK_SPEED_KPH, gt=0)
    use_maxspeed: bool = True
    congestion_factor: float = Field(default=1.0, ge=1.0, le=5.0)
    max_snap_m: float = Field(default=1500.0, gt=0)

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
    """A table of population keyed by area id (joined on ``key``)."""

    key: str
    column: str
    sheet: str | None = None


class AreasConfig(InputFile):
    """Census units: polygons with an id, and their population."""

    id_column: str
    unit: Literal["block group", "tract", "area"] = "block group"
    name_column: str | None = None
    population_column: str | None = None
    population: PopulationTable | None = None

    @model_validator(mode="after")
    def _has_population(self) -> AreasConfig:
        if (self.population_column is None) == (self.population is None):
            raise ValueError("areas: give exactly one of `population_column` or `population`")
        return self


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

    @field_validator("bands_min")
    @classmethod
    def _bands(cls, value: list[int]) -> list[int]:
        if not value or any(b <= 0 for b in value) or sorted(set(value)) != value:
            raise ValueError("bands_min must be increasing positive minutes, e.g. [10, 20, 30]")
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
        return value


class TransitConfig(InputFile):
    """A GTFS feed (folder, ``.zip`` or its ``stops.txt``) for the transit stops layer."""

    name: str = "Transit stops"


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


class RegionConfig(_Model):
    """A whole region: its name, CRS, inputs and settings."""

    name: str
    title: str
    fictional: bool = False
    crs: str
    buffer_km: float = Field(default=5.0, ge=0)
    generate: GenerateConfig | None = None
    network: NetworkConfig
    providers: list[ProviderSource] = Field(min_length=1)
    areas: AreasConfig
    access: AccessConfig = Field(default_factory=AccessConfig)
    overdose: list[OverdoseSource] = Field(default_factory=list)
    places: PoiSource | None = None
    barriers: list[BufferRule] = Field(default_factory=list)
    zoning: ZoningConfig | None = None
    geocoding: GeocodingConfig | None = None
    tiles: TilesConfig = Field(default_factory=TilesConfig)
    transit: TransitConfig | None = None

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
    def _projected(cls, value: str) -> str:
        from pyproj import CRS

        try:
            crs = CRS.from_user_input(value)
        except Exception as exc:  # pyproj raises CRSError
            raise ValueError(f"crs {value!r} is not a CRS pyproj knows: {exc}") from exc
        if not crs.is_projected:
            raise ValueError(f"crs {value!r} must be projected (metres), e.g. a UTM zone")
        return value

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
                else err["msg"]
            )
            lines.append(f"  {where}: {problem}")
        msg = f"{path}: invalid region config:\n" + "\n".join(lines)
        raise ConfigError(msg) from None
    return cfg
