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

One build of a region runs at a time: :func:`region_lock` holds an ``fcntl.flock`` on
``geodata/.locks/<region>.lock``, which names its holder (pid, host, start time). A second
build is refused with that name (:class:`RegionLockedError`) or waits for it. The kernel drops the
lock of a process that dies, so a lock file left by a killed build is taken over with one
line; the temporary folders such a build left behind are removed by the next build of the
region (:func:`remove_stale_builds`), which runs only while it holds the lock. A full disk or
a file over the size limit while writing (``ENOSPC``, ``EDQUOT``, ``EFBIG``) becomes one
:class:`DiskFullError` naming the file, the free space and the space needed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import os
import re
import resource
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd

from etl._errors import BundleError
from etl.controls import clean_layer
from etl.engine.network import ModeNetwork

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
BUNDLE_FORMAT_VERSION = 1
KEEP_BUILDS = 2
#: Folder of ``geodata/`` holding one lock file per region.
LOCKS_DIR: Final[str] = ".locks"
#: Errors that mean "no room to write": disk full, quota exceeded, file over the size limit.
DISK_FULL_ERRNOS: Final[frozenset[int]] = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_MB: Final[float] = 1024.0 * 1024.0


#: The end of a disk-full message for a build.
BUILD_NOT_PUBLISHED: Final[str] = (
    "nothing was published and the previous bundle is untouched; free some space (or raise "
    "the limit) and build again"
)


class RegionLockedError(BundleError):
    """Another build of the region holds its lock (the message names it)."""


class DiskFullError(BundleError):
    """The disk filled up (or a file grew past the size limit) while a build was writing."""


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
        """Return a path inside the build folder to write, creating its parent folder.

        A file already there is removed first: in a stage command's build it is a hard link
        to the current bundle's file (:func:`write_bundle`), which writing through it would
        change in place.
        """
        p = self.tmp / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        p.unlink(missing_ok=True)
        return p

    def write_layer(self, name: str, frame: pd.DataFrame, *, description: str = "") -> Path:
        """Write a layer as GeoParquet (GeoDataFrame, reprojected to EPSG:4326) or Parquet.

        Control characters left in text cells are replaced by spaces (one warning line).
        """
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            msg = f"layer name {name!r} must be lower-case letters, digits and _"
            raise BundleError(msg)
        path = self.path(f"layers/{name}.parquet")
        info: dict[str, Any] = {"file": f"layers/{name}.parquet", "rows": len(frame)}
        # The readers clean every table they read (and count it); this is the last guard, so
        # that no control character reaches a layer, GeoJSON or an export from any source.
        frame, changed = clean_layer(frame)
        if changed:
            logger.warning(
                "layer %r: replaced control characters by spaces in %d text cell%s",
                name,
                changed,
                "s" * (changed != 1),
            )
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
    except BaseException as exc:
        full = is_disk_full(exc)
        if full:
            written = tree_bytes(tmp)
            failed = getattr(exc, "filename", None) or _newest_file(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            assert isinstance(exc, OSError)
            previous = bundle_path(geodata_dir, region)
            prev_bytes = tree_bytes(previous.resolve()) if previous.exists() else 0
            where = Path(failed).relative_to(tmp) if failed and _inside(failed, tmp) else failed
            msg = disk_full_message(
                exc,
                file=f"{where or 'a file'} (build of {region!r} in {builds})",
                folder=builds,
                needs_bytes=max(written, prev_bytes),
            )
            raise DiskFullError(msg) from exc
        raise


def format_mb(n_bytes: float) -> str:
    """A size for a message: ``0.42 MB``, ``14 MB``, ``<0.01 MB``."""
    mb = n_bytes / _MB
    if 0 < mb < 0.01:
        return "<0.01 MB"
    return f"{mb:.2f} MB" if mb < 10 else f"{mb:,.0f} MB"


def is_disk_full(exc: BaseException) -> bool:
    """Whether an exception means there was no room to write (ENOSPC, EDQUOT, EFBIG)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full_message(
    exc: OSError,
    *,
    file: str,
    folder: Path,
    needs_bytes: int | None,
    outcome: str = BUILD_NOT_PUBLISHED,
) -> str:
    """One line for a write that found no room: what, which file, free and needed space.

    Parameters
    ----------
    exc
        The ``OSError`` (``ENOSPC``, ``EDQUOT`` or ``EFBIG``).
    file
        The file being written, as shown to the user.
    folder
        A folder on the file system written to (for the free space).
    needs_bytes
        The estimated size of the whole build (what it wrote so far, or the previous
        bundle's size when larger); None where it is not known (left out of the message).
    outcome
        What happened and what to do, after the sizes.

    Returns
    -------
    str
        E.g. ``disk full while writing layers/areas.parquet (...): free 3 MB, needs about
        14 MB; nothing was published ...``.
    """
    what = {
        errno.ENOSPC: "disk full",
        errno.EDQUOT: "disk quota exceeded",
        errno.EFBIG: "file too large",
    }.get(exc.errno or 0, "no room")
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        free = 0
    needs = ""
    if needs_bytes is not None:
        needs = f", needs about {max(math.ceil(needs_bytes / _MB), 1):,} MB"
    limit = ""
    if exc.errno == errno.EFBIG:
        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            limit = f" (files may not exceed {soft / _MB:.2f} MB here: `ulimit -f`)"
    return f"{what} while writing {file}{limit}: free {free / _MB:,.0f} MB{needs}; {outcome}"


def tree_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (0 where it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def _newest_file(path: Path) -> Path | None:
    """The file modified last under ``path`` (the one a failed write was writing)."""
    newest, stamp = None, -1.0
    for root, _dirs, files in os.walk(path):
        for name in files:
            f = Path(root, name)
            try:
                mtime = f.lstat().st_mtime_ns
            except OSError:
                continue
            if mtime >= stamp:
                newest, stamp = f, mtime
    return newest


def _inside(path: str | Path, folder: Path) -> bool:
    try:
        Path(path).relative_to(folder)
    except ValueError:
        return False
    return True


def lock_path(geodata_dir: str | Path, region: str) -> Path:
    """Return the lock file of a region's builds (``geodata/.locks/<region>.lock``)."""
    return Path(geodata_dir) / LOCKS_DIR / f"{region}.lock"


def _read_holder(fd: int) -> dict[str, Any] | None:
    """The holder recorded in a lock file: pid, host, started; None when empty or garbled."""
    try:
        raw = os.pread(fd, 4096, 0)
    except OSError:
        return None
    if not raw.strip():
        return None
    try:
        info = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        return {"pid": None, "host": "?", "started": "?"}
    return info if isinstance(info, dict) else None


def _describe_holder(info: dict[str, Any] | None) -> str:
    if not info:
        return "another build (it has not written its name yet)"
    return (
        f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, "
        f"started {info.get('started', '?')}"
    )


@contextmanager
def region_lock(geodata_dir: str | Path, region: str, *, wait: bool = False) -> Iterator[Path]:
    """Hold the one build lock of ``region`` for the duration of the block.

    Parameters
    ----------
    geodata_dir
        The folder holding region bundles.
    region
        Region name.
    wait
        Wait for another build to release the lock (one line says whose), instead of
        raising :class:`RegionLockedError`.

    Yields
    ------
    pathlib.Path
        The lock file, holding this process's pid, host and start time while the block runs.

    Raises
    ------
    RegionLockedError
        If another build holds the lock and ``wait`` is false; the message names it.

    Notes
    -----
    The lock is an ``fcntl.flock`` on the file, which the kernel releases when its holder
    exits, however it exits. A holder that ends normally empties the file; a file still
    naming a holder when the lock is free was left by a build that was killed: it is taken
    over with one warning.
    """
    path = lock_path(geodata_dir, region)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            for _ in range(20):  # the holder writes its name right after taking the lock
                if holder:
                    break
                time.sleep(0.05)
                holder = _read_holder(fd)
            if not wait:
                msg = (
                    f"region {region!r} is being built by {_describe_holder(holder)} "
                    f"(lock {path}); wait for that build to finish, or pass --wait to start "
                    "when it does"
                )
                raise RegionLockedError(msg) from None
            logger.warning(
                "waiting for the build of %r by %s to finish (lock %s)",
                region,
                _describe_holder(holder),
                path,
            )
            fcntl.flock(fd, fcntl.LOCK_EX)
        held = True
        left = _read_holder(fd)
        if left:
            logger.warning(
                "taking over the lock of %r left by %s, which no longer runs (lock %s)",
                region,
                _describe_holder(left),
                path,
            )
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        yield path
    finally:
        if held:
            with suppress(OSError):  # a clean end: the next build finds no stale holder
                os.ftruncate(fd, 0)
        os.close(fd)  # releases the flock


def remove_stale_builds(geodata_dir: str | Path, region: str) -> tuple[int, int]:
    """Remove what earlier, killed builds of ``region`` left: ``.tmp`` folders, staging links.

    Call it only while holding :func:`region_lock`: no other build of the region is then
    running, so every temporary folder found belongs to a build that died.

    Parameters
    ----------
    geodata_dir
        The folder holding region bundles.
    region
        Region name.

    Returns
    -------
    tuple of int
        The number of temporary build folders removed and their size in bytes. One warning
        line says so when there were any.
    """
    geodata_dir = Path(geodata_dir)
    builds = geodata_dir / ".builds" / region
    stale = (
        sorted(p for p in builds.iterdir() if p.name.endswith(".tmp") and p.is_dir())
        if builds.is_dir()
        else []
    )
    size = 0
    for folder in stale:
        size += tree_bytes(folder)
        shutil.rmtree(folder, ignore_errors=True)
    for link in geodata_dir.glob(f".{region}.*.link"):  # killed between symlink and replace
        if link.is_symlink():
            link.unlink(missing_ok=True)
    if stale:
        logger.warning(
            "removed %d stale temporary build folder%s of %r (%s) left by earlier builds "
            "that did not finish",
            len(stale),
            "s" * (len(stale) != 1),
            region,
            format_mb(size),
        )
    return len(stale), size


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
