"""Region bundles: the folder of layers and arrays that the ETL writes and the app reads.

Layout of ``geodata/<region>`` (a symlink to the current build)::

    manifest.json            region, build, inputs, settings, counts, layers
    layers/<name>.parquet    GeoParquet (EPSG:4326) or Parquet tables
    network/<mode>.npz       routable network arrays (CSR edges, node coordinates)
    access/<mode>.npz        baseline travel time per node for each category
    reports/                 rejects and data quality reports

Writes are atomic: a build is written into ``geodata/.builds/<region>/<build id>.tmp``,
renamed to its final folder only when every stage succeeded, and the region symlink is then
swapped with one ``os.replace``. A failed build removes its temporary folder and leaves the
previous bundle untouched; readers that already resolved the old build keep working.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from etl._errors import BundleError
from etl.engine.network import ModeNetwork

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
BUNDLE_FORMAT_VERSION = 1
KEEP_BUILDS = 2


def bundle_path(geodata_dir: str | Path, region: str) -> Path:
    """Return the path of a region's bundle (the symlink to its current build)."""
    return Path(geodata_dir) / region


@dataclass
class BundleWriter:
    """Write a bundle into a temporary folder; :meth:`commit` moves it into place.

    Use through :func:`write_bundle`.
    """

    geodata_dir: Path
    region: str
    build_id: str
    tmp: Path
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def path(self, relative: str) -> Path:
        """Return a path inside the build folder, creating its parent folder."""
        p = self.tmp / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_layer(self, name: str, frame: pd.DataFrame, *, description: str = "") -> Path:
        """Write a layer as GeoParquet (GeoDataFrame, reprojected to EPSG:4326) or Parquet."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            msg = f"layer name {name!r} must be lower-case letters, digits and _"
            raise BundleError(msg)
        path = self.path(f"layers/{name}.parquet")
        info: dict[str, Any] = {"file": f"layers/{name}.parquet", "rows": len(frame)}
        if isinstance(frame, gpd.GeoDataFrame):
            if frame.crs is None:
                msg = f"layer {name!r} has no CRS; set one before writing"
                raise BundleError(msg)
            frame = frame.to_crs("EPSG:4326")
            frame.to_parquet(path, index=False, compression="zstd", write_covering_bbox=False)
            types = sorted(set(frame.geometry.geom_type.dropna()))
            info.update(crs="EPSG:4326", geometry_types=types)
        else:
            frame.to_parquet(path, index=False, compression="zstd")
        info["columns"] = [c for c in frame.columns if c != "geometry"]
        info["bytes"] = path.stat().st_size
        if description:
            info["description"] = description
        self.layers[name] = info
        return path

    def write_network(self, net: ModeNetwork) -> Path:
        """Write a mode's network arrays."""
        return net.save(self.path(f"network/{net.mode}.npz"))

    def write_arrays(self, relative: str, **arrays: np.ndarray) -> Path:
        """Write named arrays to an ``.npz`` file in the build."""
        path = self.path(relative)
        np.savez(path, **arrays)
        return path


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@contextmanager
def write_bundle(
    geodata_dir: str | Path, region: str, *, seed_from_current: bool = False
) -> Iterator[BundleWriter]:
    """Open a new build of ``region``; on success it becomes the current bundle.

    Parameters
    ----------
    geodata_dir
        The folder holding region bundles (``geodata/``).
    region
        Region name (the config's ``name``).
    seed_from_current
        Start from (hard links to) the files of the current bundle, so that a stage command
        rewrites only its own layers.

    Yields
    ------
    BundleWriter
        Write layers into it, then write ``manifest.json`` with :func:`write_manifest`.
        If the block raises, the temporary build is removed and nothing else changes.
    """
    geodata_dir = Path(geodata_dir)
    builds = geodata_dir / ".builds" / region
    builds.mkdir(parents=True, exist_ok=True)
    build_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    tmp = builds / f"{build_id}.tmp"
    tmp.mkdir()
    writer = BundleWriter(geodata_dir=geodata_dir, region=region, build_id=build_id, tmp=tmp)
    try:
        if seed_from_current:
            current = bundle_path(geodata_dir, region)
            manifest = read_manifest(current)
            for src in current.resolve().rglob("*"):
                if src.is_file() and src.name != MANIFEST:
                    _link_or_copy(src, tmp / src.relative_to(current.resolve()))
            writer.layers.update(manifest.get("layers", {}))
        yield writer
        if not (tmp / MANIFEST).exists():
            msg = f"build of {region!r} wrote no manifest; nothing was changed"
            raise BundleError(msg)
        final = builds / build_id
        tmp.rename(final)
        _swap_link(bundle_path(geodata_dir, region), final)
        _prune(builds, keep=final)
        logger.info("write_bundle: %s is now %s", bundle_path(geodata_dir, region), final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_link(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` atomically (a relative symlink replaced by os.replace)."""
    if link.exists() and not link.is_symlink():
        msg = f"{link} is a folder, not a bundle link; move it away and rebuild"
        raise BundleError(msg)
    staging = link.with_name(f".{link.name}.{uuid.uuid4().hex[:6]}.link")
    os.symlink(os.path.relpath(target, link.parent), staging)
    os.replace(staging, link)


def _prune(builds: Path, *, keep: Path) -> None:
    done = sorted(p for p in builds.iterdir() if p.is_dir() and not p.name.endswith(".tmp"))
    for old in done[:-KEEP_BUILDS]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def write_manifest(writer: BundleWriter, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` (with the layers written so far) into the build."""
    manifest = {
        "format_version": BUNDLE_FORMAT_VERSION,
        "build_id": writer.build_id,
        **manifest,
        "layers": writer.layers,
    }
    path = writer.path(MANIFEST)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=_json_default) + "\n")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    msg = f"cannot write {type(value).__name__} to the manifest"
    raise TypeError(msg)


def read_manifest(bundle: str | Path) -> dict[str, Any]:
    """Read and sanity-check a bundle's manifest.

    Raises
    ------
    BundleError
        If the bundle or its manifest is missing, not JSON, or of another format version;
        the message says how to rebuild.
    """
    bundle = Path(bundle)
    path = bundle / MANIFEST
    if not path.exists():
        msg = (
            f"{bundle}: no region bundle here (no {MANIFEST}); "
            "build it with `access-atlas build CONFIG`"
        )
        raise BundleError(msg)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = (
            f"{path}: the manifest is corrupt ({exc}); "
            "rebuild with `access-atlas build CONFIG --overwrite`"
        )
        raise BundleError(msg) from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != BUNDLE_FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else "?"
        msg = f"{path}: bundle format {found} is not {BUNDLE_FORMAT_VERSION}; rebuild it"
        raise BundleError(msg)
    return manifest


@dataclass
class Bundle:
    """A built region bundle, opened for reading (resolved to one build)."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> Bundle:
        """Open the bundle at ``path`` (a region link or a build folder)."""
        # Resolve the region link first: a rebuild may swap it at any moment, and the
        # manifest must come from the same build as the files read later.
        resolved = Path(path).resolve()
        manifest = read_manifest(resolved)
        return cls(path=resolved, manifest=manifest)

    @property
    def layer_names(self) -> list[str]:
        """Names of the layers present."""
        return list(self.manifest.get("layers", {}))

    def read_layer(self, name: str) -> pd.DataFrame:
        """Read a layer (a GeoDataFrame where it has geometry)."""
        info = self.manifest.get("layers", {}).get(name)
        if info is None:
            msg = f"{self.path}: no layer {name!r}; layers: {', '.join(self.layer_names)}"
            raise BundleError(msg)
        path = self.path / info["file"]
        try:
            if info.get("crs"):
                return gpd.read_parquet(path)
            return pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            msg = f"{path}: layer {name!r} is unreadable ({exc}); rebuild the bundle"
            raise BundleError(msg) from exc

    def network(self, mode: str) -> ModeNetwork:
        """Load a mode's network."""
        return ModeNetwork.load(self.path / "network" / f"{mode}.npz")

    def access_arrays(self, mode: str) -> dict[str, np.ndarray]:
        """Load the baseline per-node travel times of a mode."""
        path = self.path / "access" / f"{mode}.npz"
        if not path.exists():
            msg = f"{path}: missing; run `access-atlas compute-access CONFIG`"
            raise BundleError(msg)
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
