"""CLI commands that take a built bundle out of the browser: exports, maps, fact sheets, tiles.

``access-atlas export REGION``
    Layers as a zipped Shapefile, GeoPackage, GeoJSON or CSV tables, with metadata and a
    data dictionary (:func:`etl.outputs.export.export_layers`).
``access-atlas render-map REGION OUT.png|OUT.pdf --category C --mode M [--threshold MIN]``
    The map of one category and mode on paper or a slide (:func:`etl.outputs.render.render_map`).
``access-atlas fact-sheet REGION OUT.pdf``
    A one-page fact sheet (:func:`etl.outputs.render.fact_sheet`).
``access-atlas build-tiles REGION``
    Offline basemap tiles from the region's street network (:func:`etl.outputs.tiles.build_tiles`).

``REGION`` is a region name (its bundle in the geodata folder) or a bundle folder. Each
command prints what it wrote; errors are :class:`etl._errors.AtlasError` for the CLI to print.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, Final

from etl._errors import BundleError
from etl.bundle.store import Bundle, bundle_path
from etl.categories import CATEGORIES, MODES

COMMANDS: Final[tuple[str, ...]] = ("export", "render-map", "fact-sheet", "build-tiles")

_REGION_NAME: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_THRESHOLD_HELP: Final[str] = (
    "desert threshold in minutes: the desert is drawn and counted at it, recomputed from the "
    "bundle's travel times (default: the region config's)"
)


def register(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Add the ``export``, ``render-map``, ``fact-sheet`` and ``build-tiles`` commands.

    Parameters
    ----------
    subparsers
        The object returned by ``ArgumentParser.add_subparsers``.
    common_parent
        Parser with the shared options (``--geodata-dir``, ``--quiet`` ...), used as a parent.
    """
    from etl.outputs.export import FORMATS
    from etl.outputs.render import DEFAULT_LAYERS, MAP_LAYERS

    p = subparsers.add_parser(
        "export", parents=[common_parent],
        help="export layers as Shapefile, GeoPackage, GeoJSON or CSV (zipped, with metadata)",
    )  # fmt: skip
    p.add_argument("region", help="region name or bundle folder")
    p.add_argument("--format", dest="fmt", choices=list(FORMATS), default="gpkg",
                   help="file format (default: gpkg)")  # fmt: skip
    p.add_argument("--layers", default="all",
                   help="comma-separated layer names, or 'all' (default)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("exports"),
                   help="export folder (default: ./exports); nothing goes outside it")  # fmt: skip
    p.add_argument("--category", action="append", choices=list(CATEGORIES),
                   help="keep only this category (repeatable)")  # fmt: skip
    p.add_argument("--mode", action="append", choices=list(MODES),
                   help="keep only this travel mode (repeatable)")  # fmt: skip
    p.add_argument("--bbox", nargs=4, type=float, metavar=("WEST", "SOUTH", "EAST", "NORTH"),
                   help="keep features intersecting this lon/lat box")  # fmt: skip
    p.add_argument("--minutes", type=float, action="append",
                   help="keep only this isochrone band (repeatable)")  # fmt: skip
    p.add_argument("--threshold", type=float, default=None, metavar="MIN",
                   help=_THRESHOLD_HELP)  # fmt: skip

    p = subparsers.add_parser("render-map", parents=[common_parent],
                              help="render the map of a category and mode, PNG or PDF")  # fmt: skip
    p.add_argument("region", help="region name or bundle folder")
    p.add_argument("out", type=Path, help="output file, .png or .pdf")
    p.add_argument("--category", required=True, choices=list(CATEGORIES))
    p.add_argument("--mode", default="drive", choices=list(MODES))
    p.add_argument("--layers", default=",".join(DEFAULT_LAYERS),
                   help=f"comma-separated, from: {', '.join(MAP_LAYERS)}")  # fmt: skip
    p.add_argument("--title", default=None, help="map title (default: category and mode)")
    p.add_argument("--dpi", type=int, default=None, help="PNG resolution (default 200)")
    p.add_argument("--threshold", type=float, default=None, metavar="MIN",
                   help=_THRESHOLD_HELP)  # fmt: skip

    p = subparsers.add_parser("fact-sheet", parents=[common_parent],
                              help="write a one-page fact sheet PDF for the region")  # fmt: skip
    p.add_argument("region", help="region name or bundle folder")
    p.add_argument("out", type=Path, help="output file, .pdf (or .png)")
    p.add_argument("--category", default=None, choices=list(CATEGORIES),
                   help="category on the map (default: methadone, else the first)")  # fmt: skip
    p.add_argument("--mode", default=None, choices=list(MODES))
    p.add_argument("--dpi", type=int, default=None)
    p.add_argument("--threshold", type=float, default=None, metavar="MIN",
                   help=_THRESHOLD_HELP)  # fmt: skip

    p = subparsers.add_parser("build-tiles", parents=[common_parent],
                              help="pre-render offline basemap tiles from the streets")  # fmt: skip
    p.add_argument("region", help="region name or bundle folder")
    p.add_argument("--out", type=Path, default=None,
                   help="tile folder (default: <bundle>/tiles)")  # fmt: skip
    p.add_argument("--min-zoom", type=int, default=10)
    p.add_argument("--max-zoom", type=int, default=15)
    p.add_argument("--max-tiles", type=int, default=None,
                   help="cap on the number of tiles (default 20,000)")  # fmt: skip


def run(args: argparse.Namespace, geodata_dir: str | Path) -> int:
    """Run one of :data:`COMMANDS`; return the exit status (errors are raised).

    Parameters
    ----------
    args
        Parsed arguments (``args.command`` names the command).
    geodata_dir
        Folder of region bundles.

    Returns
    -------
    int
        0 on success.

    Raises
    ------
    etl._errors.AtlasError
        For a missing bundle or a bad request; the CLI prints the message and exits with 2.
    """
    bundle = open_bundle(args.region, geodata_dir)
    if args.command == "export":
        from etl.outputs.export import export_layers

        filters = {
            "category": args.category, "mode": args.mode,
            "bbox": tuple(args.bbox) if args.bbox else None, "minutes": args.minutes,
        }  # fmt: skip
        filters = {k: v for k, v in filters.items() if v}
        path = export_layers(bundle, args.out, layers=args.layers, fmt=args.fmt,
                             filters=filters or None, threshold=args.threshold)  # fmt: skip
    elif args.command == "render-map":
        from etl.outputs.render import render_map

        path = render_map(bundle, args.out, category=args.category, mode=args.mode,
                          layers=args.layers, title=args.title, dpi=args.dpi,
                          threshold=args.threshold)  # fmt: skip
    elif args.command == "fact-sheet":
        from etl.outputs.render import fact_sheet

        path = fact_sheet(bundle, args.out, category=args.category, mode=args.mode, dpi=args.dpi,
                          threshold=args.threshold)  # fmt: skip
    elif args.command == "build-tiles":
        from etl.outputs.tiles import build_tiles

        path = args.out or bundle.path / "tiles"
        count = build_tiles(bundle, path, zooms=range(args.min_zoom, args.max_zoom + 1),
                            max_tiles=args.max_tiles)  # fmt: skip
        print(f"{path} ({count:,} tiles)")
        return 0
    else:  # pragma: no cover - argparse only dispatches known commands
        msg = f"unknown command {args.command!r}; known: {', '.join(COMMANDS)}"
        raise AssertionError(msg)
    print(path)
    return 0


def open_bundle(region: str, geodata_dir: str | Path) -> Bundle:
    """Open a bundle given a region name (in ``geodata_dir``) or a bundle folder.

    Raises
    ------
    BundleError
        If no bundle is found, or a region name holds path characters.
    """
    path = Path(region)
    if path.is_dir() and (path / "manifest.json").exists():
        return Bundle.open(path)
    if not _REGION_NAME.match(region) or ".." in region:
        msg = (
            f"{region!r} is neither a bundle folder nor a region name (letters, digits, "
            "'-', '_' and '.'); pass a name such as 'franklin-oh' or a bundle folder"
        )
        raise BundleError(msg)
    return Bundle.open(bundle_path(geodata_dir, region))
