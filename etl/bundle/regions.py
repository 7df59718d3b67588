"""Find the region bundles the app can show."""

from __future__ import annotations

from pathlib import Path

from etl._errors import BundleError
from etl.bundle.store import Bundle


def list_regions(geodata_dir: str | Path) -> list[str]:
    """Names of the built region bundles in ``geodata_dir``, sorted, the built-in demo first."""
    geodata_dir = Path(geodata_dir)
    if not geodata_dir.is_dir():
        return []
    names = [
        p.name
        for p in geodata_dir.iterdir()
        if not p.name.startswith(".") and (p / "manifest.json").exists()
    ]
    return sorted(names, key=lambda n: (n != "demo", n))


def open_region(geodata_dir: str | Path, region: str) -> Bundle:
    """Open one region's bundle.

    Raises
    ------
    BundleError
        If the region has no bundle or it is unreadable; the message says how to build it.
    """
    if "/" in region or region.startswith("."):
        msg = f"{region!r} is not a region name"
        raise BundleError(msg)
    path = Path(geodata_dir) / region
    if not path.exists():
        msg = (
            f"no bundle for region {region!r} in {geodata_dir}. Build it with "
            f"`access-atlas build geodata/configs/{region}.yaml`"
        )
        raise BundleError(msg)
    return Bundle.open(path)
