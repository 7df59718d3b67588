"""What-if scenarios: add or close sites and recompute who can reach care within a threshold.

A :class:`Scenario` is a named, ordered list of changes (:class:`AddSite`, :class:`CloseSite`).
It is immutable: :meth:`Scenario.add`, :meth:`Scenario.undo` and friends return new objects,
so a stack of changes can be undone step by step, and it round-trips through JSON to be saved
with the region (:func:`save_scenario`, :func:`load_scenario`).

:func:`evaluate` answers a scenario for one (category, mode, threshold) on a
:class:`BaselineAccess` (the network, people, providers and areas of a bundle, loaded once).
It uses the same definitions as the ``compute-access`` stage (:func:`etl.pipeline.stage_access`):

* a site offers a category by its own category or its services
  (:func:`etl.categories.site_mask`); it is snapped to its nearest node and its snap distance
  is walked at walking speed; providers more than ``max_snap_m`` from the network, or located
  only by their city, are not used for that mode (:func:`routable_sites`);
* a person's time is the time of their node plus their own snap walk; people more than
  ``max_snap_m`` from the network are *not covered* (neither within reach nor in a desert);
* travel runs from the person to care (Dijkstra on the reversed graph).

Recompute rules
---------------
* An **added** site needs one Dijkstra from it (on the reversed graph), and each node's new
  time is ``min(old, new)``. The search is bounded by the largest current node time, beyond
  which no node can improve, so the result is exact everywhere. With ``horizon_min`` the
  search stops at ``max(horizon, threshold, largest band)`` instead: everything measured
  against the threshold and the bands stays exact, times beyond the horizon are kept from
  before the change (upper bounds), and :attr:`ScenarioResult.exact_within_min` says so.
* A **closure** searches again only the nodes whose nearest site it closes (every other node
  keeps its time and site): one Dijkstra on that part of the network, entered from its
  border with the kept times (:meth:`BaselineAccess._close`); added sites are applied on
  top, as above.
* A **stack** reuses the last state it has computed: further adds are applied incrementally,
  a new closure recomputes the category once. States are memoised on the
  :class:`BaselineAccess` (a small LRU), which never changes a result.

Either way the node times equal a full rebuild with the same sites
(:func:`etl.engine.access.nearest_site_times` on the modified site list), which the tests check.

Bad input is answered, not crashed on: a site placed more than ``max_snap_m`` from any street
(in water, off the network) is moved to the nearest street node and the result says how far;
closing the last site of a category says that everyone covered by the network is then beyond
the threshold; closing a site that is unknown, of another category or off this mode's network
is noted and changes nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Final, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy import sparse
from scipy.sparse import csgraph

from etl._errors import BundleError, InputError
from etl.categories import CATEGORIES, CATEGORY_LABELS, DEFAULT_BANDS_MIN, MODE_LABELS, site_mask
from etl.engine.access import nearest_site_times, routable_sites, snap_points
from etl.engine.counting import covered_mask, drawn_cell_times
from etl.engine.isochrones import band_polygons, cells_to_polygon
from etl.engine.network import ModeNetwork
from etl.engine.streets import StreetSamples, cells_of, sample_streets, sample_times

logger = logging.getLogger(__name__)

#: Format tag and version of saved scenarios.
SCENARIO_FORMAT: Final[str] = "access-atlas-scenario"
SCENARIO_VERSION: Final[int] = 1

#: How many computed node states a :class:`BaselineAccess` keeps for stacking (about 1 MB each
#: on the Franklin County network).
STATE_CACHE_SIZE: Final[int] = 24

#: Default ``max_snap_m`` where a bundle's manifest has none (the config's default).
DEFAULT_MAX_SNAP_M: Final[float] = 1500.0

#: Area columns that hold overdose death counts, in order of preference.
DEATH_COLUMNS: Final[tuple[str, ...]] = ("deaths", "overdose_deaths", "od_deaths")

#: Tolerances for "this area's value changed": minutes of mean time, people.
_AREA_TOL_MIN: Final[float] = 1e-6
_AREA_TOL_PEOPLE: Final[float] = 1e-6

#: The dtype pandas gives a column of Python strings.
_STR_DTYPE: Final = pd.Series(np.array(["a"], dtype=object)).dtype


class BundleReader(Protocol):
    """What :meth:`BaselineAccess.from_bundle` reads of a bundle (:class:`etl.bundle.store.Bundle`).

    The engine does not import the bundle layer; anything with these members will do.
    """

    path: Path
    manifest: dict[str, Any]

    @property
    def layer_names(self) -> list[str]: ...  # noqa: D102

    def read_layer(self, name: str) -> pd.DataFrame: ...  # noqa: D102

    def network(self, mode: str) -> ModeNetwork: ...  # noqa: D102

    def access_arrays(self, mode: str) -> dict[str, np.ndarray]: ...  # noqa: D102


# ---------------------------------------------------------------------------------------
# Changes and scenarios
# ---------------------------------------------------------------------------------------


def _check_category(category: str, where: str = "") -> None:
    if category not in CATEGORIES:
        msg = f"{where}unknown category {category!r}; use one of {', '.join(CATEGORIES)}"
        raise InputError(msg)


@dataclass(frozen=True)
class AddSite:
    """A hypothetical site of ``category`` at WGS84 ``lon``, ``lat``.

    Raises
    ------
    InputError
        If the category is not canonical or the coordinates are not finite WGS84 degrees.
    """

    category: str
    lon: float
    lat: float
    name: str = "Hypothetical site"
    kind: ClassVar[str] = "add_site"

    def __post_init__(self) -> None:
        _check_category(self.category, "AddSite: ")
        lon, lat = float(self.lon), float(self.lat)
        if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lon) > 180 or abs(lat) > 90:
            msg = (
                f"AddSite {self.name!r}: lon={self.lon!r}, lat={self.lat!r} are not WGS84 "
                "degrees (lon in -180..180, lat in -90..90; swapped?)"
            )
            raise InputError(msg)
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "name", str(self.name))

    def describe(self) -> str:
        """One line for the panel."""
        label = CATEGORY_LABELS[self.category]
        return f"Add {label.lower()} {self.name!r} at {self.lon:.5f}, {self.lat:.5f}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "type": self.kind,
            "category": self.category,
            "lon": self.lon,
            "lat": self.lat,
            "name": self.name,
        }


@dataclass(frozen=True)
class CloseSite:
    """Close the existing site with id ``provider_id`` (the providers layer's ``id``)."""

    provider_id: str
    kind: ClassVar[str] = "close_site"

    def __post_init__(self) -> None:
        if not isinstance(self.provider_id, str) or not self.provider_id:
            msg = f"CloseSite: provider_id must be a non-empty string, got {self.provider_id!r}"
            raise InputError(msg)

    def describe(self) -> str:
        """One line for the panel."""
        return f"Close site {self.provider_id}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"type": self.kind, "provider_id": self.provider_id}


Change = AddSite | CloseSite


def change_from_dict(data: dict[str, Any], *, where: str = "") -> Change:
    """Build a change from its :meth:`to_dict` form.

    Raises
    ------
    InputError
        If the type is unknown or a field is missing or invalid; ``where`` prefixes the message.
    """
    if not isinstance(data, dict):
        msg = f"{where}a change must be an object, got {type(data).__name__}"
        raise InputError(msg)
    kind = data.get("type")
    try:
        if kind == AddSite.kind:
            return AddSite(
                category=data["category"],
                lon=data["lon"],
                lat=data["lat"],
                name=data.get("name", "Hypothetical site"),
            )
        if kind == CloseSite.kind:
            return CloseSite(provider_id=data["provider_id"])
    except KeyError as exc:
        msg = f"{where}{kind} change has no {exc.args[0]!r} field"
        raise InputError(msg) from exc
    except (TypeError, ValueError) as exc:
        msg = f"{where}{kind} change is invalid ({exc})"
        raise InputError(msg) from exc
    except InputError as exc:
        msg = f"{where}{exc}"
        raise InputError(msg) from exc
    msg = f"{where}unknown change type {kind!r}; use {AddSite.kind!r} or {CloseSite.kind!r}"
    raise InputError(msg)


@dataclass(frozen=True)
class Scenario:
    """A named, ordered stack of changes. Immutable: every edit returns a new scenario.

    Attributes
    ----------
    name
        Shown in the panel and used for the file name when saved.
    changes
        The changes, oldest first.
    region
        The region (bundle) it belongs to, if known.
    """

    name: str = "Untitled scenario"
    changes: tuple[Change, ...] = ()
    region: str | None = None

    def __post_init__(self) -> None:
        changes = tuple(self.changes)
        for i, c in enumerate(changes):
            if not isinstance(c, AddSite | CloseSite):
                msg = f"scenario {self.name!r}: change {i} is a {type(c).__name__}, not a change"
                raise InputError(msg)
        object.__setattr__(self, "changes", changes)

    def __len__(self) -> int:
        return len(self.changes)

    def add(self, change: Change) -> Scenario:
        """Return the scenario with ``change`` stacked on top."""
        return replace(self, changes=(*self.changes, change))

    def extend(self, changes: Iterable[Change]) -> Scenario:
        """Return the scenario with several changes stacked on top, in order."""
        return replace(self, changes=(*self.changes, *changes))

    def add_site(
        self, category: str, lon: float, lat: float, *, name: str = "Hypothetical site"
    ) -> Scenario:
        """Return the scenario with a hypothetical site added."""
        return self.add(AddSite(category=category, lon=lon, lat=lat, name=name))

    def close_site(self, provider_id: str) -> Scenario:
        """Return the scenario with an existing site closed."""
        return self.add(CloseSite(provider_id=provider_id))

    def undo(self, steps: int = 1) -> Scenario:
        """Return the scenario without its last ``steps`` changes (unchanged if it has none)."""
        if steps < 0:
            msg = f"undo: steps must be >= 0, got {steps}"
            raise InputError(msg)
        return replace(self, changes=self.changes[: max(0, len(self.changes) - steps)])

    def remove(self, index: int) -> Scenario:
        """Return the scenario without the change at ``index``."""
        if not -len(self.changes) <= index < len(self.changes):
            msg = f"scenario {self.name!r} has {len(self.changes)} changes; no change {index}"
            raise InputError(msg)
        index %= len(self.changes)
        return replace(self, changes=self.changes[:index] + self.changes[index + 1 :])

    def renamed(self, name: str) -> Scenario:
        """Return the scenario under another name."""
        return replace(self, name=str(name))

    def describe(self) -> list[str]:
        """One line per change, oldest first."""
        return [c.describe() for c in self.changes]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (see :data:`SCENARIO_FORMAT`)."""
        return {
            "format": SCENARIO_FORMAT,
            "version": SCENARIO_VERSION,
            "name": self.name,
            "region": self.region,
            "changes": [c.to_dict() for c in self.changes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "scenario") -> Scenario:
        """Build a scenario from :meth:`to_dict` output.

        Raises
        ------
        InputError
            Naming ``source`` and the change at fault.
        """
        if not isinstance(data, dict) or data.get("format") != SCENARIO_FORMAT:
            msg = f"{source}: not an Access Atlas scenario (expected format {SCENARIO_FORMAT!r})"
            raise InputError(msg)
        if data.get("version") != SCENARIO_VERSION:
            msg = f"{source}: scenario version {data.get('version')!r}, expected {SCENARIO_VERSION}"
            raise InputError(msg)
        raw = data.get("changes", [])
        if not isinstance(raw, list):
            msg = f"{source}: 'changes' must be a list"
            raise InputError(msg)
        changes = tuple(
            change_from_dict(c, where=f"{source}: change {i + 1}: ") for i, c in enumerate(raw)
        )
        return cls(
            name=str(data.get("name") or "Untitled scenario"),
            changes=changes,
            region=data.get("region"),
        )

    def to_json(self) -> str:
        """Serialise to a JSON string."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str, *, source: str = "scenario") -> Scenario:
        """Parse :meth:`to_json` output.

        Raises
        ------
        InputError
            If the text is not JSON or not a scenario.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"{source}: not valid JSON ({exc})"
            raise InputError(msg) from exc
        return cls.from_dict(data, source=source)


def save_scenario(scenario: Scenario, path: str | Path) -> Path:
    """Write a scenario as JSON (atomically: a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(scenario.to_json() + "\n", encoding="utf-8")
    os.replace(tmp, path)
    logger.info("save_scenario: %r with %d changes to %s", scenario.name, len(scenario), path)
    return path


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario written by :func:`save_scenario`.

    Raises
    ------
    InputError
        If the file is missing or is not a valid scenario.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{path}: cannot read the scenario ({exc})"
        raise InputError(msg) from exc
    return Scenario.from_json(text, source=str(path))


# ---------------------------------------------------------------------------------------
# The baseline
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NodeState:
    """Per-node times for one site set: ``key`` is a provider row, ``P + j`` for added site j."""

    time_s: np.ndarray
    key: np.ndarray
    exact_s: float = math.inf


@dataclass(frozen=True, eq=False)
class BaselineAccess:
    """What scenarios are evaluated against, for one travel mode. Build with :meth:`from_bundle`.

    Attributes
    ----------
    mode
        ``"drive"`` or ``"walk"``.
    net
        The mode's network.
    providers
        The providers layer (``id``, ``name``, ``category``, ``lon``, ``lat``,
        ``node_<mode>``, ``snap_m_<mode>``), one row per site, in layer order.
    people
        The people layer (``area_id``, ``weight``, ``node_<mode>``, ``snap_m_<mode>``).
    areas
        The areas layer (``area_id``, optional ``name``, ``population``, death counts,
        geometry), or None.
    max_snap_m
        Farther than this from the network, providers are not used and people not covered.
    bands_min
        Isochrone bands, minutes.
    thresholds_min
        Desert thresholds, ``{category: {mode: minutes}}``.
    region_outline
        The region's outline (WGS84): deserts are clipped to it, suggestions kept in it.
    barriers
        The barriers layer (WGS84) if the bundle has one.
    region
        The region's name.
    grid_res
        H3 resolution of the bundle's hexagon grid layer (``access.h3_resolution``), or None.
    cover_m
        People whose nearest node is farther than this are not covered (``access.cover_m``);
        None (bundles built before it): ``max_snap_m``.
    """

    mode: str
    net: ModeNetwork
    providers: pd.DataFrame
    people: pd.DataFrame
    areas: pd.DataFrame | None = None
    max_snap_m: float = DEFAULT_MAX_SNAP_M
    bands_min: tuple[float, ...] = tuple(float(b) for b in DEFAULT_BANDS_MIN)
    thresholds_min: dict[str, dict[str, float]] = field(default_factory=dict)
    region_outline: shapely.Geometry | None = None
    barriers: gpd.GeoDataFrame | None = None
    region: str | None = None
    grid_res: int | None = None
    cover_m: float | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)
    _lock: Any = field(default_factory=threading.RLock, repr=False, compare=False)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_bundle(cls, bundle: BundleReader, mode: str) -> BaselineAccess:
        """Load a bundle's network, people, providers, areas and settings for ``mode``.

        Parameters
        ----------
        bundle
            An opened bundle (:meth:`etl.bundle.store.Bundle.open`).
        mode
            The travel mode.

        Raises
        ------
        BundleError
            If the bundle lacks the mode or a layer it needs.
        """
        settings = bundle.manifest.get("settings", {})
        modes = settings.get("modes")
        if modes is not None and mode not in modes:
            msg = f"{bundle.path}: no {mode!r} network in this bundle (modes: {', '.join(modes)})"
            raise BundleError(msg)
        names = bundle.layer_names
        areas = bundle.read_layer("areas") if "areas" in names else None
        outline = None
        if "region" in names:
            outline = shapely.union_all(bundle.read_layer("region").geometry.to_numpy())
        barriers = bundle.read_layer("barriers") if "barriers" in names else None
        base = cls.from_frames(
            bundle.network(mode),
            bundle.read_layer("providers"),
            bundle.read_layer("people"),
            areas=areas,
            max_snap_m=float(settings.get("max_snap_m", DEFAULT_MAX_SNAP_M)),
            bands_min=settings.get("bands_min", DEFAULT_BANDS_MIN),
            thresholds_min=settings.get("thresholds_min", {}),
            region_outline=outline,
            barriers=barriers,
            region=bundle.manifest.get("region"),
            grid_res=settings.get("h3_resolution"),
            cover_m=settings.get("cover_m"),
        )
        try:
            stored = bundle.access_arrays(mode)
        except BundleError:
            stored = {}
        for cat in base.categories:
            key = f"time_{cat}"
            if key in stored:
                diff = np.abs(base.baseline_state(cat).time_s - stored[key].astype(float))
                diff = diff[np.isfinite(diff)]
                if len(diff) and diff.max() > 0.01 * max(1.0, float(np.nanmax(stored[key]))):
                    logger.warning(
                        "BaselineAccess: %s/%s times recomputed from the providers layer differ "
                        "from the bundle's access arrays by up to %.1f s; rebuild the bundle",
                        cat,
                        mode,
                        float(diff.max()),
                    )
        logger.info(
            "BaselineAccess.from_bundle(%s): %s nodes, %s providers, %s people points, "
            "categories %s",
            mode,
            f"{base.net.n_nodes:,}",
            f"{len(base.providers):,}",
            f"{len(base.people):,}",
            ", ".join(base.categories) or "none",
        )
        return base

    @classmethod
    def from_frames(
        cls,
        net: ModeNetwork,
        providers: pd.DataFrame,
        people: pd.DataFrame,
        *,
        areas: pd.DataFrame | None = None,
        max_snap_m: float = DEFAULT_MAX_SNAP_M,
        bands_min: Sequence[float] = DEFAULT_BANDS_MIN,
        thresholds_min: dict[str, dict[str, float]] | None = None,
        region_outline: shapely.Geometry | None = None,
        barriers: gpd.GeoDataFrame | None = None,
        region: str | None = None,
        grid_res: int | None = None,
        cover_m: float | None = None,
    ) -> BaselineAccess:
        """Build from plain frames; providers and people without ``node_<mode>`` are snapped.

        ``providers`` needs ``id``, ``category``, ``lon``, ``lat`` (``name`` optional);
        ``people`` needs ``weight`` and either ``node_<mode>``/``snap_m_<mode>`` or ``lon``,
        ``lat`` (``area_id`` optional).

        Raises
        ------
        BundleError
            If a required column is missing.
        """
        mode = net.mode
        node_col, snap_col = f"node_{mode}", f"snap_m_{mode}"
        providers = providers.reset_index(drop=True).copy()
        people = people.reset_index(drop=True).copy()
        for what, frame, need in (
            ("providers", providers, ("id", "category", "lon", "lat")),
            ("people", people, ("weight",)),
        ):
            missing = [c for c in need if c not in frame.columns]
            if missing:
                msg = f"{what} layer has no column(s) {', '.join(missing)}; rebuild the bundle"
                raise BundleError(msg)
        if "name" not in providers:
            providers["name"] = providers["id"]
        if "area_id" not in people:
            people["area_id"] = "region"
        to_xy = Transformer.from_crs("EPSG:4326", net.crs, always_xy=True)
        for what, frame in (("providers", providers), ("people", people)):
            if node_col not in frame or snap_col not in frame:
                if "lon" not in frame or "lat" not in frame:
                    msg = f"{what} layer has neither {node_col}/{snap_col} nor lon/lat"
                    raise BundleError(msg)
                x, y = to_xy.transform(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
                snap = snap_points(net, np.asarray(x), np.asarray(y))
                frame[node_col] = snap.node
                frame[snap_col] = snap.distance_m
        providers["id"] = providers["id"].astype(str)
        return cls(
            mode=mode,
            net=net,
            providers=providers,
            people=people,
            areas=None if areas is None else areas.reset_index(drop=True),
            max_snap_m=float(max_snap_m),
            bands_min=tuple(float(b) for b in bands_min),
            thresholds_min={c: dict(m) for c, m in (thresholds_min or {}).items()},
            region_outline=region_outline,
            barriers=barriers,
            region=region,
            grid_res=None if grid_res is None else int(grid_res),
            cover_m=None if cover_m is None else float(cover_m),
        )

    # -- cached pieces ---------------------------------------------------------------------
    def _cached(self, key: Any, make: Any) -> Any:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    @property
    def categories(self) -> list[str]:
        """Canonical categories offered by at least one provider (used or not), in order."""
        return [c for c in CATEGORIES if self.offers(c).any()]

    def offers(self, category: str) -> np.ndarray:
        """Which providers offer ``category`` (:func:`etl.categories.site_mask`, cached)."""
        return self._cached(("offers", category), lambda: site_mask(self.providers, category))

    def threshold(self, category: str) -> float | None:
        """Return the bundle's desert threshold for ``category`` in this mode (minutes, or None)."""
        value = self.thresholds_min.get(category, {}).get(self.mode)
        return None if value is None else float(value)

    @property
    def provider_ids(self) -> dict[str, int]:
        """Provider id → row."""
        return self._cached("ids", lambda: {s: i for i, s in enumerate(self.providers["id"])})

    def _provider_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Node, snap walk (s) and usable flag of every provider for this mode."""

        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            snap = self.providers[f"snap_m_{self.mode}"].to_numpy(dtype=float)
            usable = routable_sites(self.providers, self.mode, max_snap_m=self.max_snap_m)
            node = np.where(usable, self.providers[f"node_{self.mode}"].to_numpy(dtype=float), 0)
            walk = np.where(usable, snap, 0.0) / self.net.walk_speed_mps
            return node.astype(np.int64), walk, usable

        return self._cached("provider_arrays", make)

    def _provider_columns(self) -> dict[str, np.ndarray]:
        """Every provider's id, name, category, lon, lat and this mode's snap_m (cached)."""

        def make() -> dict[str, np.ndarray]:
            pv = self.providers
            return {
                "id": pv["id"].to_numpy(),
                "name": pv["name"].to_numpy(),
                "category": pv["category"].to_numpy(),
                "lon": pv["lon"].to_numpy(float),
                "lat": pv["lat"].to_numpy(float),
                "snap_m": pv[f"snap_m_{self.mode}"].to_numpy(float),
            }

        return self._cached("provider_columns", make)

    def site_rows(self, category: str) -> np.ndarray:
        """Return the provider rows used for ``category`` in this mode (as the pipeline)."""
        return np.flatnonzero(self.offers(category) & self._provider_arrays()[2])

    def _people_arrays(self) -> dict[str, np.ndarray]:
        def make() -> dict[str, np.ndarray]:
            snap = self.people[f"snap_m_{self.mode}"].to_numpy(dtype=float)
            covered = covered_mask(snap, self.max_snap_m if self.cover_m is None else self.cover_m)
            node = np.where(covered, self.people[f"node_{self.mode}"].to_numpy(dtype=float), 0)
            if self.areas is not None and "area_id" in self.areas:
                idx = pd.Index(self.areas["area_id"].astype(str)).get_indexer(
                    self.people["area_id"].astype(str)
                )
            else:
                idx = np.full(len(self.people), -1)
            return {
                "weight": self.people["weight"].to_numpy(dtype=float),
                "node": node.astype(np.int64),
                "walk_s": np.where(covered, snap, 0.0) / self.net.walk_speed_mps,
                "covered": covered,
                "area": idx.astype(np.int64),
            }

        return self._cached("people_arrays", make)

    def samples(self) -> StreetSamples:
        """Street samples of the network (as the pipeline's), computed once."""
        return self._cached("samples", lambda: sample_streets(self.net))

    def person_cells(self) -> np.ndarray:
        """Each people point's fine H3 cell at the street samples' resolution (cached).

        Empty where the people layer has no ``lon``/``lat`` (then only streets are drawn).
        """

        def make() -> np.ndarray:
            if not {"lon", "lat"} <= set(self.people.columns):
                return np.array([], dtype=np.uint64)
            return cells_of(
                self.people["lat"].to_numpy(dtype=float),
                self.people["lon"].to_numpy(dtype=float),
                self.samples().res,
            )

        return self._cached("person_cells", make)

    def map_cell_times(
        self, cell_best_s: np.ndarray, person_time_s: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The cells the map colours and their times: streets plus the people counted there.

        :func:`etl.engine.counting.drawn_cell_times` on :meth:`cell_times`'s cells, so a
        desert drawn at any threshold holds every person it counts.
        """
        cells = self._cell_groups()[2]
        pc = self.person_cells()
        if len(pc) != len(person_time_s):
            return cells, cell_best_s
        weight = self.people["weight"].to_numpy(dtype=float)
        return drawn_cell_times(cells, cell_best_s, pc, person_time_s, weight)

    def _cell_groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            cells = self.samples().cell
            order = np.argsort(cells, kind="stable")
            c = cells[order]
            starts = np.flatnonzero(np.concatenate([[True], c[1:] != c[:-1]]))
            return order, starts, c[starts]

        return self._cached("cell_groups", make)

    def _node_cell_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Per node, the cell groups (:meth:`_cell_groups` order) of the samples on its streets."""

        def make() -> tuple[np.ndarray, np.ndarray]:
            order, starts, _ = self._cell_groups()
            group = self._cached("sample_group", lambda: _group_of(order, starts))
            return _node_groups(self.samples(), group, self.net.n_nodes)

        return self._cached("node_cell_groups", make)

    def cell_times(
        self,
        node_time_s: np.ndarray,
        *,
        like: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fine cells with streets and the best street-sample time in each (seconds).

        Equal to :func:`etl.engine.isochrones.cell_times` on :meth:`samples`, with the grouping
        cached.
        With ``like = (other_node_time_s, other_best)`` (an earlier answer of this method),
        only the cells holding a street whose end-node times differ are recomputed.
        """
        order, starts, cells = self._cell_groups()
        samples = self.samples()
        if len(samples) == 0:
            return cells, np.array([], dtype=float)
        if like is None:
            s_time = sample_times(samples, node_time_s)
            return cells, np.minimum.reduceat(s_time[order], starts)
        other_time, other_best = like
        changed = node_time_s != other_time
        if not changed.any():
            return cells, other_best
        groups = _touched_groups(self._node_cell_groups(), changed)
        ends = np.append(starts, len(order))
        counts = ends[groups + 1] - ends[groups]
        first = np.repeat(ends[groups] - np.cumsum(counts) + counts, counts)
        pos = first + np.arange(int(counts.sum()))  # positions in ``order`` of those cells
        sub = _time_subset(samples, order[pos])
        sub_starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        best = other_best.copy()
        best[groups] = np.minimum.reduceat(sample_times(sub, node_time_s), sub_starts)
        return cells, best

    def baseline_cells(self, category: str) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`cell_times` of the baseline of ``category`` (cached)."""
        return self._cached(
            ("baseline_cells", category),
            lambda: self.cell_times(self.baseline_state(category).time_s),
        )

    def baseline_state(self, category: str) -> _NodeState:
        """Node times and nearest provider rows before any change (float64, cached)."""
        return self._cached(("baseline", category), lambda: self._full(category, (), ()))

    def blocked_land(self, *, statuses: Sequence[str] = ("prohibited",)) -> shapely.Geometry | None:
        """Union (WGS84) of the barrier rows with these statuses, or None without barriers."""
        if self.barriers is None or len(self.barriers) == 0:
            return None
        rows = self.barriers
        if "status" in rows.columns:
            rows = rows[rows["status"].isin(list(statuses))]
        if rows.empty:
            return None
        return shapely.union_all(rows.to_crs("EPSG:4326").geometry.to_numpy())

    def to_xy(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project WGS84 points to the network's CRS."""
        tr = self._cached(
            "to_xy", lambda: Transformer.from_crs("EPSG:4326", self.net.crs, always_xy=True)
        )
        x, y = tr.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(y, dtype=float))

    # -- node states -------------------------------------------------------------------------
    def _full(
        self, category: str, closed: tuple[int, ...], adds: tuple[_Placed, ...]
    ) -> _NodeState:
        """One multi-source Dijkstra over the category's sites less ``closed`` plus ``adds``."""
        p_node, p_walk, _ = self._provider_arrays()
        rows = self.site_rows(category)
        if closed:
            rows = rows[~np.isin(rows, np.asarray(closed, dtype=np.int64))]
        n_prov = len(self.providers)
        nodes = np.concatenate([p_node[rows], [a.node for a in adds]]).astype(np.int64)
        offsets = np.concatenate([p_walk[rows], [a.offset_s for a in adds]]).astype(float)
        keys = np.concatenate([rows, n_prov + np.arange(len(adds))]).astype(np.int64)
        res = nearest_site_times(self.net, nodes, site_offsets_s=offsets)
        if len(keys) == 0:
            return _NodeState(time_s=res.time_s, key=np.full(len(res.time_s), -1, np.int64))
        key = np.where(res.nearest >= 0, keys[np.maximum(res.nearest, 0)], -1)
        return _NodeState(time_s=res.time_s, key=key)

    def _close(self, prev: _NodeState, category: str, closed: tuple[int, ...]) -> _NodeState:
        """Close provider rows ``closed`` in ``prev`` (an exact state without added sites).

        Only the nodes whose nearest site is closed can change: every other node keeps its
        time and its site (closing a site removes no street, and its path does not lead to a
        closed site). The affected nodes are searched again as a small graph of their own:
        one Dijkstra from a super-source tied to each affected node by its best way out of
        the affected set (a neighbour's kept time plus the street between them) and to the
        open sites standing on affected nodes (their walk). The result equals
        :meth:`_full` with the same closures, at the cost of the region the closed sites
        served rather than the whole network.
        """
        closed_arr = np.asarray(closed, dtype=np.int64)
        affected = np.isin(prev.key, closed_arr)
        if not affected.any():
            return prev
        a_nodes = np.flatnonzero(affected)
        m = len(a_nodes)
        local = np.full(len(prev.time_s), -1, dtype=np.int64)
        local[a_nodes] = np.arange(m)
        # The streets leaving each affected node (person -> care direction), gathered from
        # the forward CSR without copying it.
        fwd = self.net.csr()
        starts, ends = fwd.indptr[a_nodes], fwd.indptr[a_nodes + 1]
        counts = (ends - starts).astype(np.int64)
        row = np.repeat(np.arange(m), counts)
        pos = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        col = fwd.indices[pos].astype(np.int64)
        cost = fwd.data[pos]
        inside = affected[col]
        # Ways out: a neighbour outside the affected set keeps its time and its site.
        out = ~inside & np.isfinite(prev.time_s[col])
        seed_row = [row[out]]
        seed_t = [cost[out] + prev.time_s[col[out]]]
        seed_key = [prev.key[col[out]]]
        # Open sites of the category standing on affected nodes.
        p_node, p_walk, _ = self._provider_arrays()
        rows = self.site_rows(category)
        rows = rows[~np.isin(rows, closed_arr)]
        on = affected[p_node[rows]]
        seed_row.append(local[p_node[rows[on]]])
        seed_t.append(p_walk[rows[on]].astype(float))
        seed_key.append(rows[on].astype(np.int64))
        s_row, s_t, s_key = (np.concatenate(x) for x in (seed_row, seed_t, seed_key))
        # The best seed per affected node (ties: the lowest key, as a full search would pick
        # among equal sites is not defined either; any site at that time is correct).
        order = np.lexsort((s_key, s_t, s_row))
        s_row, s_t, s_key = s_row[order], s_t[order], s_key[order]
        first = np.ones(len(s_row), dtype=bool)
        first[1:] = s_row[1:] != s_row[:-1]
        s_row, s_t, s_key = s_row[first], s_t[first], s_key[first]
        # Reversed streets among affected nodes: head w -> tail v where v -> w, plus the
        # super-source (index m) -> each seeded node. Parallel entries keep the cheapest.
        tails = np.concatenate([local[col[inside]], np.full(len(s_row), m, dtype=np.int64)])
        heads = np.concatenate([row[inside], s_row])
        weights = np.concatenate([cost[inside], s_t])
        order = np.lexsort((weights, heads, tails))
        tails, heads, weights = tails[order], heads[order], weights[order]
        keep = np.ones(len(tails), dtype=bool)
        keep[1:] = (tails[1:] != tails[:-1]) | (heads[1:] != heads[:-1])
        tails, heads, weights = tails[keep], heads[keep], weights[keep]
        indptr = np.zeros(m + 2, dtype=np.int64)
        np.cumsum(np.bincount(tails, minlength=m + 1), out=indptr[1:])
        graph = sparse.csr_matrix(
            (weights.astype(np.float64), heads.astype(np.int32), indptr), shape=(m + 1, m + 1)
        )
        dist, pred = csgraph.dijkstra(graph, directed=True, indices=m, return_predecessors=True)
        sub_t = dist[:m]
        parent = pred[:m].astype(np.int64)
        root_mask = (parent == m) | (parent < 0)
        parent[root_mask] = np.flatnonzero(root_mask)
        while True:  # pointer jumping to the node each path entered from the super-source
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt
        key_of_seed = np.full(m, -1, dtype=np.int64)
        key_of_seed[s_row] = s_key
        sub_key = np.where(np.isfinite(sub_t), key_of_seed[parent], -1)
        time_s = prev.time_s.copy()
        key = prev.key.copy()
        time_s[a_nodes] = sub_t
        key[a_nodes] = sub_key
        return _NodeState(time_s=time_s, key=key, exact_s=prev.exact_s)

    def _incremental(
        self, prev: _NodeState, adds: Sequence[_Placed], first: int, horizon_s: float
    ) -> _NodeState:
        """Apply added sites ``first, first+1, ...`` to ``prev`` with one bounded Dijkstra."""
        finite = np.isfinite(prev.time_s)
        exact_bound = float(prev.time_s.max()) if finite.all() and len(finite) else math.inf
        limit = min(exact_bound, horizon_s)
        exact_s = prev.exact_s if limit >= exact_bound else min(prev.exact_s, limit)
        nodes = np.array([a.node for a in adds], dtype=np.int64)
        offsets = np.array([a.offset_s for a in adds], dtype=float)
        res = nearest_site_times(self.net, nodes, site_offsets_s=offsets, limit_s=limit)
        better = res.time_s < prev.time_s
        n_prov = len(self.providers)
        time_s = np.where(better, res.time_s, prev.time_s)
        key = np.where(better, n_prov + first + res.nearest, prev.key)
        return _NodeState(time_s=time_s, key=key, exact_s=exact_s)

    def state(
        self,
        category: str,
        closed: Sequence[int],
        adds: Sequence[_Placed],
        *,
        horizon_s: float = math.inf,
    ) -> _NodeState:
        """Node state after closing provider rows ``closed`` and adding ``adds`` (memoised).

        Reuses the longest memoised prefix of ``adds`` with the same closures; otherwise,
        with closures, recomputes the category once.
        """
        closed_t = tuple(sorted({int(r) for r in closed}))
        adds_t = tuple(adds)
        keys = tuple(a.key for a in adds_t)

        def ck(m: int) -> tuple:
            return ("state", category, closed_t, keys[:m], horizon_s)

        with self._lock:
            lru: OrderedDict = self._cache.setdefault("states", OrderedDict())
            hit = lru.get(ck(len(adds_t)))
            if hit is not None:
                lru.move_to_end(ck(len(adds_t)))
                return hit
            prev, start = None, 0
            for m in range(len(adds_t) - 1, -1, -1):
                if ck(m) in lru:
                    prev, start = lru[ck(m)], m
                    break
        if prev is None and not closed_t:
            prev, start = self.baseline_state(category), 0
        if prev is None:
            # Closures: a bounded search of what the closed sites served (no full Dijkstra),
            # memoised, then the adds on top of it.
            with self._lock:
                closed_state = lru.get(ck(0))
            if closed_state is None:
                closed_state = self._close(self.baseline_state(category), category, closed_t)
                with self._lock:
                    lru[ck(0)] = closed_state
            out = (
                closed_state
                if not adds_t
                else self._incremental(closed_state, adds_t, 0, horizon_s)
            )
        elif start == len(adds_t):
            out = prev
        else:
            out = self._incremental(prev, adds_t[start:], start, horizon_s)
        with self._lock:
            lru[ck(len(adds_t))] = out
            while len(lru) > STATE_CACHE_SIZE:
                lru.popitem(last=False)
        return out


@dataclass(frozen=True)
class _Placed:
    """An added site placed on the network."""

    change: AddSite
    node: int
    snap_m: float
    offset_s: float
    moved: bool

    @property
    def key(self) -> tuple:
        return (self.change.lon, self.change.lat, self.node, self.offset_s)


def place_sites(base: BaselineAccess, adds: Sequence[AddSite]) -> list[_Placed]:
    """Snap added sites to the network (see the module docstring for the snap rule)."""
    if not adds:
        return []
    x, y = base.to_xy([a.lon for a in adds], [a.lat for a in adds])
    snap = snap_points(base.net, x, y)
    out = []
    for a, node, dist in zip(adds, snap.node.tolist(), snap.distance_m.tolist(), strict=True):
        moved = dist > base.max_snap_m
        offset = 0.0 if moved else dist / base.net.walk_speed_mps
        out.append(
            _Placed(
                change=a, node=int(node), snap_m=float(dist), offset_s=offset, moved=bool(moved)
            )
        )
    return out


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ScenarioResult:
    """A scenario evaluated for one (category, mode, threshold), next to the baseline.

    Attributes
    ----------
    scenario, category, mode, threshold_min
        What was evaluated.
    time_s, base_time_s
        Per network node: seconds to the nearest site after and before (``inf``: none).
    nearest
        Per node: row of :attr:`sites` of the nearest site after the scenario (-1: none).
    sites
        The sites of the category in use after the scenario: existing ones (``provider_row``
        >= 0) then added ones (``hypothetical``), with ``node``, ``snap_m``, ``offset_s``.
    placed
        One row per added site of the category: requested and placed lon/lat, ``snap_m``,
        ``moved`` (True where it lay farther than ``max_snap_m`` and was moved to the node).
    closed_ids
        Providers of the category actually closed (in use for this mode before).
    person_time_s, base_person_time_s
        Per people point: seconds after and before (NaN: not covered by the network).
    gained, lost
        Per people point: now within the threshold and not before / the reverse.
    people_gained, people_lost
        Weighted sums of :attr:`gained` and :attr:`lost` (people).
    people_within, base_people_within, people_in_desert, base_people_in_desert
        People within / beyond the threshold after and before (covered people only).
    median_min, base_median_min, median_change_min
        Population-weighted median travel time of covered people who can reach a site, in
        minutes (None where nobody can), as in the manifest summary; and its change.
    areas
        One row per area whose value changed: population-weighted mean minutes, share within
        the threshold and people beyond it, before and after, deaths where the areas layer
        has them.
    deaths_in_changed_areas
        Sum of the shown death counts of :attr:`areas` (None without a deaths column);
        suppressed counts are never included.
    desert_cells, base_desert_cells
        Fine H3 cells (uint64) whose streets are all beyond the threshold, after and before.
    notes
        Plain-language statements: snapped or moved sites, closures that change nothing,
        the last site of a category closed.
    exact_within_min
        Node times are exact up to this many minutes (``inf``: everywhere).
    cells, cell_best_s, base_cell_best_s
        Fine H3 cells along the streets (uint64) and the best street-sample time in each
        after and before, seconds (:meth:`BaselineAccess.cell_times`): what the map's minute
        bands are drawn from (:mod:`viewmodel.scenario_map`).
    """

    scenario: Scenario
    category: str
    mode: str
    threshold_min: float
    time_s: np.ndarray
    base_time_s: np.ndarray
    nearest: np.ndarray
    sites: pd.DataFrame
    placed: pd.DataFrame
    closed_ids: tuple[str, ...]
    person_time_s: np.ndarray
    base_person_time_s: np.ndarray
    gained: np.ndarray
    lost: np.ndarray
    people_gained: float
    people_lost: float
    people_within: float
    base_people_within: float
    people_in_desert: float
    base_people_in_desert: float
    median_min: float | None
    base_median_min: float | None
    median_change_min: float | None
    areas: pd.DataFrame
    deaths_in_changed_areas: float | None
    desert_cells: np.ndarray
    base_desert_cells: np.ndarray
    notes: tuple[str, ...]
    exact_within_min: float
    base: BaselineAccess = field(repr=False, compare=False)
    cells: np.ndarray | None = field(default=None, repr=False, compare=False)
    cell_best_s: np.ndarray | None = field(default=None, repr=False, compare=False)
    base_cell_best_s: np.ndarray | None = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """Return the panel's numbers as a JSON-ready dict (threshold always beside them)."""
        r2 = _round_or_none
        return {
            "scenario": self.scenario.name,
            "category": self.category,
            "mode": self.mode,
            "threshold_min": self.threshold_min,
            "sites_before": len(self.base.site_rows(self.category)),
            "sites_after": len(self.sites),
            "people_gained": round(self.people_gained),
            "people_lost": round(self.people_lost),
            "people_within_before": round(self.base_people_within),
            "people_within_after": round(self.people_within),
            "people_in_desert_before": round(self.base_people_in_desert),
            "people_in_desert_after": round(self.people_in_desert),
            "median_minutes_before": r2(self.base_median_min),
            "median_minutes_after": r2(self.median_min),
            "median_change_minutes": r2(self.median_change_min),
            "areas_changed": len(self.areas),
            "deaths_in_changed_areas": self.deaths_in_changed_areas,
            "exact_within_min": (
                None if math.isinf(self.exact_within_min) else self.exact_within_min
            ),
            "notes": list(self.notes),
        }

    def headline(self) -> str:
        """One sentence for the panel."""
        how = "by car" if self.mode == "drive" else "on foot"
        parts = [
            f"Within {self.threshold_min:g} min {how}: "
            f"{round(self.people_gained):,} people gain access, "
            f"{round(self.people_lost):,} lose it"
        ]
        if self.median_change_min is not None:
            parts.append(f"median travel time {self.median_change_min:+.1f} min")
        return "; ".join(parts) + "."

    def nearest_ids(self) -> np.ndarray:
        """Per node: id of the nearest site after the scenario (None where none)."""
        ids = np.append(self.sites["id"].to_numpy(dtype=object), None)
        return ids[np.where(self.nearest >= 0, self.nearest, len(self.sites))]

    def desert_polygon(self, *, before: bool = False, clip: bool = True) -> shapely.Geometry:
        """Return the desert as a (multi)polygon of fine cells, clipped as the pipeline does."""
        cells = self.base_desert_cells if before else self.desert_cells
        poly = cells_to_polygon(cells)
        if clip and self.base.region_outline is not None and not poly.is_empty:
            poly = shapely.intersection(poly, self.base.region_outline)
        return poly

    def desert_change(self, *, clip: bool = True) -> dict[str, shapely.Geometry]:
        """Cells that left the desert (``"left"``) and that fell into it (``"entered"``).

        Small next to the whole desert, so quick to draw over the baseline desert layer.
        ``clip=False`` keeps the cells beyond the region's outline (as the map's minute bands
        draw them).
        """
        left = np.setdiff1d(self.base_desert_cells, self.desert_cells)
        entered = np.setdiff1d(self.desert_cells, self.base_desert_cells)
        out = {"left": cells_to_polygon(left), "entered": cells_to_polygon(entered)}
        if clip and self.base.region_outline is not None:
            out = {
                k: v if v.is_empty else shapely.intersection(v, self.base.region_outline)
                for k, v in out.items()
            }
        return out

    def band_polygons(
        self, bands_min: Sequence[float] | None = None, *, before: bool = False
    ) -> list[shapely.Geometry]:
        """Isochrone band polygons after (or before) the scenario, as the pipeline draws them."""
        bands = list(self.base.bands_min if bands_min is None else bands_min)
        cells, best = self.base.cell_times(self.base_time_s if before else self.time_s)
        return band_polygons(cells, best, [float(b) for b in bands])

    def to_layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Return exportable layers: ``scenario_sites``, ``scenario_areas``, ``scenario_desert``."""
        sites = self.sites.assign(status=np.where(self.sites["hypothetical"], "added", "open"))
        if self.closed_ids:
            rows = [self.base.provider_ids[i] for i in self.closed_ids]
            closed = self.base.providers.iloc[rows][["id", "name", "category", "lon", "lat"]]
            closed = closed.assign(status="closed", hypothetical=False, provider_row=rows)
            sites = pd.concat([sites, closed], ignore_index=True)
        sites = sites.assign(scenario=self.scenario.name)
        sites_gdf = gpd.GeoDataFrame(
            sites, geometry=gpd.points_from_xy(sites["lon"], sites["lat"]), crs="EPSG:4326"
        )
        areas = self.area_table(changed_only=False)
        if self.base.areas is not None and "geometry" in self.base.areas:
            geom = gpd.GeoSeries(self.base.areas.geometry.to_numpy(), crs="EPSG:4326")
            areas_gdf = gpd.GeoDataFrame(areas, geometry=geom.to_numpy(), crs="EPSG:4326")
        else:
            areas_gdf = gpd.GeoDataFrame(areas, geometry=[None] * len(areas), crs="EPSG:4326")
        desert = gpd.GeoDataFrame(
            {
                "scenario": [self.scenario.name] * 2,
                "when": ["before", "after"],
                "category": self.category,
                "mode": self.mode,
                "threshold_min": self.threshold_min,
                "population": [round(self.base_people_in_desert), round(self.people_in_desert)],
            },
            geometry=[self.desert_polygon(before=True), self.desert_polygon()],
            crs="EPSG:4326",
        )
        return {"scenario_sites": sites_gdf, "scenario_areas": areas_gdf, "scenario_desert": desert}

    def area_table(self, *, changed_only: bool = True) -> pd.DataFrame:
        """Per-area values before and after (all areas, or only those that changed)."""
        if changed_only:
            return self.areas
        return _area_table(
            self.base, self.category, self.person_time_s, self.threshold_min, changed_only=False
        )


def _sites_frame(base: BaselineAccess, category: str, rows: np.ndarray) -> pd.DataFrame:
    """The existing sites ``rows`` of ``category`` as :attr:`ScenarioResult.sites` lists them."""
    pc = base._provider_columns()
    p_node, p_walk, _ = base._provider_arrays()
    return pd.DataFrame(
        {
            "id": pc["id"][rows],
            "name": pc["name"][rows],
            "category": category,
            "lon": pc["lon"][rows],
            "lat": pc["lat"][rows],
            "node": p_node[rows],
            "snap_m": pc["snap_m"][rows],
            "offset_s": p_walk[rows],
            "hypothetical": False,
            "provider_row": rows,
        }
    )


def _round_or_none(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


def weighted_median_min(values_s: np.ndarray, weights: np.ndarray) -> float | None:
    """Population-weighted median in minutes of finite values (the pipeline's definition)."""
    ok = np.isfinite(values_s) & (weights > 0)
    if not ok.any():
        return None
    v, w = values_s[ok], weights[ok]
    order = np.argsort(v)
    cum = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cum, cum[-1] / 2)]) / 60.0


def _base_sorted_times(base: BaselineAccess, category: str) -> tuple[np.ndarray, np.ndarray]:
    """Covered people's seconds before any change, and those that count, fastest first.

    The positions (among covered people) of the reachable ones with a weight, in ascending
    order of time (cached): :func:`_median_after` merges a scenario's changes into them.
    """

    def make() -> tuple[np.ndarray, np.ndarray]:
        pa = base._people_arrays()
        cov = pa["covered"]
        v, w = _base_person_times(base, category)[cov], pa["weight"][cov]
        idx = np.flatnonzero(np.isfinite(v) & (w > 0))
        return v, idx[np.argsort(v[idx], kind="stable")]

    return base._cached(("base_sorted_times", category), make)


def _median_after(
    base: BaselineAccess, category: str, values_s: np.ndarray, weights: np.ndarray
) -> float | None:
    """:func:`weighted_median_min` of covered people's times after a change, sorted by merging.

    Only the people whose time changed are sorted, then merged into the baseline's order.
    Where two counted times tie, the order among them is the sort's own, so the function
    itself answers: otherwise both sort the same and sum the weights in the same order.
    """
    v_old, order = _base_sorted_times(base, category)
    same = (values_s == v_old) | (np.isnan(values_s) & np.isnan(v_old))
    keep = order[same[order]]
    new = np.flatnonzero(~same & np.isfinite(values_s) & (weights > 0))
    new = new[np.argsort(values_s[new], kind="stable")]
    merged = np.insert(keep, np.searchsorted(values_s[keep], values_s[new]), new)
    v = values_s[merged]
    if len(v) == 0:
        return None
    if np.any(v[1:] == v[:-1]):
        return weighted_median_min(values_s, weights)
    cum = np.cumsum(weights[merged])
    return float(v[np.searchsorted(cum, cum[-1] / 2)]) / 60.0


def _area_people(base: BaselineAccess) -> dict[str, Any]:
    """People points in an area: their rows (None: all), area, weight, coverage (cached).

    With the covered people per area (``pop_cov``), which no change moves.
    """

    def make() -> dict[str, Any]:
        pa = base._people_arrays()
        n_areas = 0 if base.areas is None else len(base.areas)
        ok = pa["area"] >= 0
        rows = None if ok.all() else np.flatnonzero(ok)
        a, w, covered = (
            pa[k] if rows is None else pa[k][rows] for k in ("area", "weight", "covered")
        )
        pop_cov = np.bincount(a, weights=np.where(covered, w, 0.0), minlength=n_areas)
        return {"rows": rows, "a": a, "w": w, "covered": covered, "pop_cov": pop_cov, "n": n_areas}

    return base._cached("area_people", make)


def _area_values(base: BaselineAccess, t_person: np.ndarray, thr_s: float) -> dict[str, np.ndarray]:
    ap = _area_people(base)
    n_areas, a, w, covered = ap["n"], ap["a"], ap["w"], ap["covered"]
    t = t_person if ap["rows"] is None else t_person[ap["rows"]]
    reach = np.isfinite(t)
    wr = np.where(reach, w, 0.0)
    wt = np.bincount(a, weights=wr, minlength=n_areas)
    tot = np.bincount(a, weights=np.where(reach, t, 0.0) * wr, minlength=n_areas) / 60.0
    pop_cov = ap["pop_cov"]
    within = covered & (t <= thr_s)
    w_in = np.bincount(a, weights=np.where(within, w, 0.0), minlength=n_areas)
    w_out = np.bincount(a, weights=np.where(covered & ~within, w, 0.0), minlength=n_areas)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(wt > 0, tot / wt, np.nan)
        share = np.where(pop_cov > 0, w_in / pop_cov, np.nan)
    return {"minutes": mean, "share_within": share, "people_beyond": w_out}


def _area_static(base: BaselineAccess) -> dict[str, np.ndarray]:
    """The areas' own columns shown beside their values (cached)."""

    def make() -> dict[str, np.ndarray]:
        areas = base.areas
        out = {"area_id": areas["area_id"].to_numpy()}
        for col in ("name", "population"):
            if col in areas:
                out[col] = areas[col].to_numpy()
        for col in DEATH_COLUMNS:
            if col in areas:
                out[col] = areas[col].to_numpy()
                break
        return out

    return base._cached("area_static", make)


def _base_person_times(base: BaselineAccess, category: str) -> np.ndarray:
    """Seconds per people point before any change (NaN: not covered), cached."""

    def make() -> np.ndarray:
        pa = base._people_arrays()
        t = base.baseline_state(category).time_s[pa["node"]] + pa["walk_s"]
        return np.where(pa["covered"], t, np.nan)

    return base._cached(("base_people", category), make)


def _area_table(
    base: BaselineAccess,
    category: str,
    after: np.ndarray,
    threshold_min: float,
    *,
    changed_only: bool,
) -> pd.DataFrame:
    """Per-area values before (the baseline) and ``after`` (person times)."""
    if base.areas is None:
        return pd.DataFrame(columns=["area_id"])
    thr_s = threshold_min * 60.0
    before = _base_person_times(base, category)
    old = base._cached(("base_areas", category, thr_s), lambda: _area_values(base, before, thr_s))
    new = _area_values(base, after, thr_s)
    ap = _area_people(base)
    rows, a, w, cov = ap["rows"], ap["a"], ap["w"], ap["covered"]
    if rows is not None:
        before, after = before[rows], after[rows]
    in_old = cov & (before <= thr_s)
    in_new = cov & (after <= thr_s)
    n_areas = len(base.areas)
    gained = np.bincount(a, weights=np.where(in_new & ~in_old, w, 0.0), minlength=n_areas)
    lost = np.bincount(a, weights=np.where(in_old & ~in_new, w, 0.0), minlength=n_areas)
    if changed_only:
        dt = new["minutes"] - old["minutes"]
        nan_flip = np.isnan(new["minutes"]) != np.isnan(old["minutes"])
        keep = (np.abs(np.nan_to_num(dt)) > _AREA_TOL_MIN) | nan_flip
        keep |= np.abs(new["people_beyond"] - old["people_beyond"]) > _AREA_TOL_PEOPLE
        keep |= (gained > _AREA_TOL_PEOPLE) | (lost > _AREA_TOL_PEOPLE)
    else:
        keep = np.ones(n_areas, dtype=bool)
    data = {k: v[keep] for k, v in _area_static(base).items()}
    for key, values in old.items():
        data[f"{key}_before"] = values[keep]
        data[f"{key}_after"] = new[key][keep]
    data["minutes_change"] = (new["minutes"] - old["minutes"])[keep]
    data["people_gained"] = gained[keep]
    data["people_lost"] = lost[keep]
    return pd.DataFrame(data)


def _split_changes(
    base: BaselineAccess, scenario: Scenario, category: str
) -> tuple[list[int], list[AddSite], list[str]]:
    """Return closed provider rows (in use for this category and mode), adds and notes."""
    usable = base._provider_arrays()[2]
    offers = base.offers(category)
    closed: list[int] = []
    adds: list[AddSite] = []
    notes: list[str] = []
    for change in scenario.changes:
        if isinstance(change, AddSite):
            if change.category == category:
                adds.append(change)
            continue
        row = base.provider_ids.get(change.provider_id)
        if row is None:
            notes.append(
                f"Site {change.provider_id} is not in this region's data (removed from "
                "the provider lists since the scenario was saved?); its closure is "
                "ignored."
            )
        elif not offers[row]:
            continue  # a site that does not offer this category: its closure does not matter
        elif not usable[row]:
            notes.append(
                f"{base.providers['name'].iloc[row]} ({change.provider_id}) was not "
                f"counted before (more than {base.max_snap_m:g} m from the {base.mode} "
                "network, or located only by its city); closing it changes nothing "
                "here."
            )
        elif row in closed:
            notes.append(
                f"{base.providers['name'].iloc[row]} ({change.provider_id}) is closed "
                "more than once; counted once."
            )
        else:
            closed.append(row)
    return closed, adds, notes


def evaluate(
    base: BaselineAccess,
    scenario: Scenario,
    *,
    category: str,
    mode: str | None = None,
    threshold_min: float | None = None,
    horizon_min: float | None = None,
) -> ScenarioResult:
    """Evaluate a scenario for one category and mode against the baseline.

    Parameters
    ----------
    base
        From :meth:`BaselineAccess.from_bundle`.
    scenario
        The changes; only adds of ``category`` and closures of its sites matter here.
    category
        Canonical category.
    mode
        Must be ``base.mode`` (checked); None takes it.
    threshold_min
        Desert threshold in minutes; None takes the bundle's for (category, mode).
    horizon_min
        None (default) for exact node times everywhere; a number bounds the Dijkstra of an
        added site at ``max(horizon_min, threshold_min, largest band)`` (see the module
        docstring): faster on large networks, exact for everything the threshold decides.

    Returns
    -------
    ScenarioResult

    Raises
    ------
    InputError
        If the category is unknown, the mode is not the baseline's, or no positive threshold
        is given or set in the bundle.
    """
    _check_category(category)
    if mode is not None and mode != base.mode:
        msg = f"evaluate: this baseline is for {base.mode!r}, not {mode!r}; load the {mode} one"
        raise InputError(msg)
    mode = base.mode
    if threshold_min is None:
        threshold_min = base.threshold(category)
        if threshold_min is None:
            msg = (
                f"no threshold for {category}/{mode} in the region config; pass threshold_min "
                f"or set access.thresholds_min.{category}.{mode}"
            )
            raise InputError(msg)
    threshold_min = float(threshold_min)
    if not threshold_min > 0:
        msg = f"threshold_min must be positive minutes, got {threshold_min}"
        raise InputError(msg)
    thr_s = threshold_min * 60.0
    horizon_s = math.inf
    if horizon_min is not None:
        horizon_s = max(float(horizon_min), threshold_min, *base.bands_min) * 60.0
    label = CATEGORY_LABELS[category]

    closed, adds, notes = _split_changes(base, scenario, category)
    placed = place_sites(base, adds)
    for p in placed:
        if p.moved:
            notes.append(
                f"{p.change.name} lay {p.snap_m:,.0f} m from the nearest street (in "
                f"water or off the {mode} network?); it was moved there."
            )
        elif p.snap_m >= 1.0:
            walk_min = p.offset_s / 60
            notes.append(
                f"{p.change.name} is {p.snap_m:,.0f} m from the nearest street; "
                f"that walk ({walk_min:.1f} min) is added, as for any site."
            )
    before = base.baseline_state(category)
    after = base.state(category, closed, placed, horizon_s=horizon_s)

    # Sites in use after the scenario, and the node → site-row mapping.
    n_prov = len(base.providers)
    rows = base.site_rows(category)
    rows = rows[~np.isin(rows, closed)]
    pc = base._provider_columns()
    if closed:
        sites = _sites_frame(base, category, rows)
    else:  # the baseline's sites (built once; a shallow copy under pandas' copy-on-write)
        sites = base._cached(
            ("sites_frame", category), lambda: _sites_frame(base, category, rows)
        ).copy(deep=False)
    net = base.net
    added = {
        "id": [f"scenario:{i + 1}" for i in range(len(placed))],
        "name": [p.change.name for p in placed],
        "category": category,
        "lon": [float(net.lon[p.node]) if p.moved else p.change.lon for p in placed],
        "lat": [float(net.lat[p.node]) if p.moved else p.change.lat for p in placed],
        "node": np.array([p.node for p in placed], dtype=np.int64),
        "snap_m": [p.snap_m for p in placed],
        "offset_s": [p.offset_s for p in placed],
    }

    def placed_table() -> pd.DataFrame:
        return pd.DataFrame(
            {
                **{k: added[k] for k in ("id", "name", "category")},
                "lon_requested": [p.change.lon for p in placed],
                "lat_requested": [p.change.lat for p in placed],
                **{k: added[k] for k in ("lon", "lat", "node", "snap_m", "offset_s")},
                "moved": [p.moved for p in placed],
            }
        )

    if placed:
        placed_frame = placed_table()
    else:  # the same empty table every time: built once
        placed_frame = base._cached(("placed_frame", category), placed_table).copy(deep=False)
    if placed and len(rows) and all(sites[c].dtype == _STR_DTYPE for c in ("id", "name")):
        # One frame from the columns: what concatenating the added sites' frame makes, as
        # their ids and names are strings too (the other columns are numbers and flags).
        p_node, p_walk, _ = base._provider_arrays()
        n_add = len(placed)
        sites = pd.DataFrame(
            {
                "id": np.concatenate([pc["id"][rows], np.array(added["id"], dtype=object)]),
                "name": np.concatenate([pc["name"][rows], np.array(added["name"], dtype=object)]),
                "category": category,
                "lon": np.concatenate([pc["lon"][rows], added["lon"]]),
                "lat": np.concatenate([pc["lat"][rows], added["lat"]]),
                "node": np.concatenate([p_node[rows], added["node"]]),
                "snap_m": np.concatenate([pc["snap_m"][rows], added["snap_m"]]),
                "offset_s": np.concatenate([p_walk[rows], added["offset_s"]]),
                "hypothetical": np.repeat([False, True], [len(rows), n_add]),
                "provider_row": np.concatenate([rows, np.full(n_add, -1, dtype=rows.dtype)]),
            }
        )
    elif placed:
        added_frame = pd.DataFrame({**added, "hypothetical": True, "provider_row": -1})
        sites = pd.concat([sites, added_frame], ignore_index=True)
    to_site = np.full(n_prov + len(placed) + 1, -1, dtype=np.int64)
    to_site[rows] = np.arange(len(rows))
    to_site[n_prov : n_prov + len(placed)] = len(rows) + np.arange(len(placed))
    nearest = np.where(after.key >= 0, to_site[after.key], -1)

    if len(sites) == 0 and closed:
        notes.append(
            f"Closing {'this site' if len(closed) == 1 else 'these sites'} leaves no "
            f"{label.lower()} reachable ({MODE_LABELS[mode].lower()}): everyone the "
            f"network covers is beyond {threshold_min:g} min, so all who had access "
            "lose it and travel times to this care become undefined."
        )
    elif len(sites) == 0:
        notes.append(
            f"The region has no {label.lower()} within {base.max_snap_m:g} m of the "
            f"{mode} network: everyone the network covers is beyond "
            f"{threshold_min:g} min."
        )

    # People.
    pa = base._people_arrays()
    w, cov = pa["weight"], pa["covered"]
    t_old = _base_person_times(base, category)
    t_new = np.where(cov, after.time_s[pa["node"]] + pa["walk_s"], np.nan)
    in_old = cov & (t_old <= thr_s)
    in_new = cov & (t_new <= thr_s)
    gained, lost = in_new & ~in_old, in_old & ~in_new
    people_cov = float(w[cov].sum())
    med_old = base._cached(
        ("base_median", category), lambda: weighted_median_min(t_old[cov], w[cov])
    )
    med_new = _median_after(base, category, t_new[cov], w[cov])
    areas = _area_table(base, category, t_new, threshold_min, changed_only=True)
    deaths = None
    for col in DEATH_COLUMNS:
        if col in areas:
            deaths = float(pd.to_numeric(areas[col], errors="coerce").fillna(0).sum())
            break

    base_cells = base.baseline_cells(category)
    cells, best_new = base.cell_times(after.time_s, like=(before.time_s, base_cells[1]))
    base_desert = base._cached(
        ("base_desert", category, thr_s), lambda: _desert_cells(*base_cells, thr_s)
    )
    result = ScenarioResult(
        scenario=scenario,
        category=category,
        mode=mode,
        threshold_min=threshold_min,
        time_s=after.time_s,
        base_time_s=before.time_s,
        nearest=nearest,
        sites=sites,
        placed=placed_frame,
        closed_ids=tuple(pc["id"][closed]),
        person_time_s=t_new,
        base_person_time_s=t_old,
        gained=gained,
        lost=lost,
        people_gained=float(w[gained].sum()),
        people_lost=float(w[lost].sum()),
        people_within=float(w[in_new].sum()),
        base_people_within=float(w[in_old].sum()),
        people_in_desert=people_cov - float(w[in_new].sum()),
        base_people_in_desert=people_cov - float(w[in_old].sum()),
        median_min=med_new,
        base_median_min=med_old,
        median_change_min=None if med_new is None or med_old is None else med_new - med_old,
        areas=areas,
        deaths_in_changed_areas=deaths,
        desert_cells=_desert_cells(cells, best_new, thr_s),
        base_desert_cells=base_desert,
        notes=tuple(notes),
        exact_within_min=after.exact_s / 60.0,
        base=base,
        cells=cells,
        cell_best_s=best_new,
        base_cell_best_s=base_cells[1],
    )
    logger.info(
        "evaluate(%s, %s/%s, %g min): %d changes, %d sites, %s people gain and %s lose access",
        scenario.name,
        category,
        mode,
        threshold_min,
        len(scenario),
        len(sites),
        f"{result.people_gained:,.0f}",
        f"{result.people_lost:,.0f}",
    )
    return result


def _node_groups(
    samples: StreetSamples, group: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per network node, the groups of the street samples whose street ends at it.

    Parameters
    ----------
    samples
        Street samples.
    group
        The group (a non-negative int) of each sample.
    n_nodes
        Number of network nodes.

    Returns
    -------
    tuple of numpy.ndarray
        ``(indptr, groups)``: node ``n``'s groups are ``groups[indptr[n]:indptr[n + 1]]``,
        ascending and unique (for :func:`_touched_groups`).
    """
    group = np.asarray(group, dtype=np.int64)
    if len(group) == 0:
        return np.zeros(n_nodes + 1, dtype=np.int64), np.array([], dtype=np.int64)
    n_groups = int(group.max()) + 1
    nodes = np.concatenate([samples.a, samples.b]).astype(np.int64)
    key = np.unique(nodes * n_groups + np.concatenate([group, group]))
    indptr = np.searchsorted(key // n_groups, np.arange(n_nodes + 1))
    return indptr.astype(np.int64), key % n_groups


def _touched_groups(csr: tuple[np.ndarray, np.ndarray], changed: np.ndarray) -> np.ndarray:
    """The groups of the samples on a street with a ``changed`` end node, ascending (int64).

    Equal to ``np.unique(group[changed[samples.a] | changed[samples.b]])`` for the
    :func:`_node_groups` ``csr`` of ``group``, without a pass over every sample.
    """
    indptr, groups = csr
    nodes = np.flatnonzero(changed)
    lo = indptr[nodes]
    counts = indptr[nodes + 1] - lo
    pos = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    return np.unique(groups[pos])


def _time_subset(samples: StreetSamples, idx: np.ndarray) -> StreetSamples:
    """The samples ``idx`` with only what :func:`etl.engine.streets.sample_times` reads.

    ``lon``, ``lat`` and ``cell`` are left empty: the subset is for travel times only.
    """
    return StreetSamples(
        a=samples.a[idx],
        b=samples.b[idx],
        frac=samples.frac[idx],
        time_ab=samples.time_ab[idx],
        time_ba=samples.time_ba[idx],
        lon=samples.lon[:0],
        lat=samples.lat[:0],
        cell=samples.cell[:0],
        res=samples.res,
    )


def _group_of(order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cell group of every sample (by sample index)."""
    group = np.empty(len(order), dtype=np.int64)
    counts = np.diff(np.append(starts, len(order)))
    group[order] = np.repeat(np.arange(len(starts)), counts)
    return group


def _desert_cells(cells: np.ndarray, best_s: np.ndarray, thr_s: float) -> np.ndarray:
    return cells[~(best_s <= thr_s)]
